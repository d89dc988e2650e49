/*
 * window.h - admission on one minute window and on the day counter.
 *
 * A minute window counts cost that is admitted and not yet released.  An
 * admission holds its cost from the instant it is admitted until one
 * window after the answer's first byte (DESIGN.md, "count as Google
 * counts"); the release is parked in a ring slot for the first tick at or
 * after that instant and drained from the count when that tick comes.
 * See docs/ADMISSION.md for the argument that this never over-admits.
 */
#ifndef GR_SHM_WINDOW_H
#define GR_SHM_WINDOW_H

#include "table.h"

#include <stdint.h>

/* Pieces of a window word. */
static inline uint64_t
gr_shm_word_used(uint64_t w)
{
    return w & UINT32_MAX;
}

static inline uint64_t
gr_shm_word_epoch(uint64_t w)
{
    return (w >> 32) & GR_EPOCH_MASK;
}

/* A word with this count and epoch, and the version after old's. */
static inline uint64_t
gr_shm_word_pack(uint64_t used, uint64_t epoch, uint64_t old)
{
    uint64_t version = ((old >> 52) + 1) & 0xfff;

    return (used & UINT32_MAX) | ((epoch & GR_EPOCH_MASK) << 32) |
           (version << 52);
}

/* Serial difference a - b of two 20-bit tick numbers, in [-2^19, 2^19). */
static inline int64_t
gr_shm_epoch_diff(uint64_t a, uint64_t b)
{
    int64_t d = (int64_t)((a - b) & GR_EPOCH_MASK);

    return d >= (int64_t)1 << (GR_WORD_EPOCH_BITS - 1)
               ? d - ((int64_t)1 << GR_WORD_EPOCH_BITS)
               : d;
}

/* The tick of an instant, and the first tick boundary at or after it. */
static inline uint64_t
gr_shm_tick(int64_t ns, int64_t tick_ns)
{
    return (uint64_t)(ns / tick_ns);
}

static inline uint64_t
gr_shm_tick_ceil(int64_t ns, int64_t tick_ns)
{
    return (uint64_t)((ns + tick_ns - 1) / tick_ns);
}

/*
 * Window w (GR_W_*) of cell c of table t (its ring is apart, in t).  The
 * hot path names instants by their tick (one division per reservation,
 * not one per window); the other forms take CLOCK_MONOTONIC ns.
 */

/*
 * Admit cost if the count plus cost stays <= limit (after draining the
 * ticks that have elapsed up to now).  0, or -EAGAIN when it does not fit.
 */
int gr_shm_window_admit_tick(const struct gr_shm *t, struct gr_shm_cell *c,
                             unsigned w, int64_t cost, int64_t limit,
                             uint64_t now_tick);

static inline int
gr_shm_window_admit(const struct gr_shm *t, struct gr_shm_cell *c,
                    unsigned w, int64_t cost, int64_t limit, int64_t now_ns)
{
    return gr_shm_window_admit_tick(t, c, w, cost, limit,
                                    gr_shm_tick(now_ns, t->tick_ns));
}

/* Give cost back at once: an admission rolled back before anything was
 * sent, or the part of an estimate that Google did not count. */
void gr_shm_window_give_back(const struct gr_shm *t, struct gr_shm_cell *c,
                             unsigned w, int64_t cost);

/*
 * Add cost that was used but not admitted (an estimate that was short).
 * The count saturates at UINT32_MAX: returns what was really added,
 * which is what the caller may release later (and no more).
 */
int64_t gr_shm_window_force(const struct gr_shm *t, struct gr_shm_cell *c,
                            unsigned w, int64_t cost);

/* Release cost when tick at_tick comes (at once if it has come).  A cost
 * above UINT32_MAX (more than any count holds) is kept counted. */
void gr_shm_window_release_tick(const struct gr_shm *t, struct gr_shm_cell *c,
                                unsigned w, int64_t cost, uint64_t at_tick,
                                uint64_t now_tick);

/* Release cost at the first tick boundary at or after at_ns. */
static inline void
gr_shm_window_release_at(const struct gr_shm *t, struct gr_shm_cell *c,
                         unsigned w, int64_t cost, int64_t at_ns,
                         int64_t now_ns)
{
    gr_shm_window_release_tick(t, c, w, cost,
                               gr_shm_tick_ceil(at_ns, t->tick_ns),
                               gr_shm_tick(now_ns, t->tick_ns));
}

/* Drain every tick up to now (the router's sweep).  whole: scan the
 * whole ring, which also finds releases stranded behind the epoch. */
void gr_shm_window_drain(const struct gr_shm *t, struct gr_shm_cell *c,
                         unsigned w, int64_t now_ns, bool whole);

/* The count as of now, without writing (releases due but not drained are
 * subtracted): what status shows. */
int64_t gr_shm_window_used(const struct gr_shm *t,
                           const struct gr_shm_cell *c, unsigned w,
                           int64_t now_ns);

/*
 * The earliest instant (ns) at which cost fits under limit, counting only
 * releases already parked; now_ns + window_ns when the parked releases
 * are not enough (the rest is in flight).
 */
int64_t gr_shm_window_room_at(const struct gr_shm *t,
                              const struct gr_shm_cell *c, unsigned w,
                              int64_t cost, int64_t limit, int64_t now_ns);

/*
 * The day counter.  Admit cost requests on Pacific day `today` if they
 * fit.  When the stored day is older, the counter starts the new day at
 * the number of requests in flight (they may arrive on either day), as
 * in_flight(arg) counts them (not these requests).  0 or -EAGAIN.
 */
typedef int64_t (*gr_shm_in_flight_fn)(const void *arg);
int gr_shm_day_admit(_Atomic uint64_t *day, int64_t limit, int32_t today,
                     gr_shm_in_flight_fn in_flight, const void *arg,
                     int64_t cost);

/* Requests counted on `today` (0 if the counter is still on another day). */
int64_t gr_shm_day_used(const _Atomic uint64_t *day, int32_t today);

/* Give requests back (an admission rolled back before it was sent). */
void gr_shm_day_give_back(_Atomic uint64_t *day, int64_t cost);

/* Count more on whatever day the counter holds, whatever the limit (a
 * settle that learned the call used more tokens than its estimate; Google
 * counted them already).  Saturates; returns what was added. */
int64_t gr_shm_day_force(_Atomic uint64_t *day, int64_t extra);

#endif
