/*
 * reserve.h - the hot path: claim a lease, choose a cell, admit the cost
 * on every dimension or none, and settle it later.  Written once here and
 * used by the client library, the router (reaping) and the benchmarks.
 */
#ifndef GR_SHM_RESERVE_H
#define GR_SHM_RESERVE_H

#include "table.h"

#include <stdbool.h>
#include <stdint.h>

/* What a reservation asks for. */
struct gr_shm_ask {
    uint32_t model;                 /* model index */
    int64_t cost[GR_NWINDOWS];      /* requests, tokens, images */
    int64_t now_ns;                 /* CLOCK_MONOTONIC */
    int32_t today;                  /* Pacific day (gr_shm_pacific_day) */
    uint32_t pid;
    uint64_t *rng;                  /* the caller's random state */
    uint32_t lease_hint;            /* a lease slot to try first (the one
                                       the caller freed last); any value */
};

/* What a reservation got. */
struct gr_shm_grant {
    uint32_t lease;                 /* lease slot */
    uint64_t ticket;                /* lease state word while ACTIVE */
    uint32_t cell;                  /* cell index */
    uint32_t slot;                  /* project slot */
    uint32_t project_gen;
    int64_t retry_at_ns;            /* -EAGAIN: when room may come */
};

/*
 * 0 with *g filled; -EAGAIN when no cell has room (g->retry_at_ns says
 * when one may); -ENOENT when no project serves the model; -ENOSPC when
 * every lease slot is taken.
 */
int gr_shm_reserve(const struct gr_shm *t, const struct gr_shm_ask *a,
                   struct gr_shm_grant *g);

/*
 * Settle a lease the caller owns: from first_byte_ns on, its cost leaves
 * the windows one window later.  first_byte_ns must not be earlier than
 * the real first byte, nor later than now_ns (it is clamped to it): a
 * now_ns read from the coarse clock is short, so a first byte it has not
 * reached needs a precise now_ns (gr_commit() reads one).  actual[w] < 0
 * keeps the admitted cost.
 * Returns 0, or -ESTALE when the lease was already settled (by the router
 * reaping it, or by an earlier call).
 */
int gr_shm_settle(const struct gr_shm *t, uint32_t lease, uint64_t ticket,
                  int64_t first_byte_ns, const int64_t actual[GR_NWINDOWS],
                  int64_t now_ns);

/*
 * Router only: settle lease i whatever its state, as if its answer's first
 * byte came now (its owner died, or it outlived max_call_s).  Returns true
 * when the lease was in a state where the last step of its owner may not
 * have been recorded (the cell is then marked for an audit).
 */
bool gr_shm_router_reap(const struct gr_shm *t, uint32_t i, uint64_t seen,
                        int64_t now_ns);

/*
 * Requests in flight on cell (admitted and not yet settled), counted from
 * the leases, leaving out lease `except` (UINT32_MAX: none).  A scan of
 * every lease: for a day roll and for status, not for every call.
 */
int64_t gr_shm_cell_in_flight(const struct gr_shm *t, uint32_t cell,
                              uint32_t except);

/* The same for every cell at once: per_cell has max_projects x
 * max_models entries. */
void gr_shm_in_flight_all(const struct gr_shm *t, int64_t *per_cell);

/* Effective limit of a cell on dimension d (learned limits applied);
 * -1 = unlimited. */
int64_t gr_shm_cell_limit(const struct gr_shm_cell *c, unsigned d);

/* Lease state word pieces. */
static inline unsigned
gr_shm_lease_state(uint64_t s)
{
    return (unsigned)(s & 0xff);
}

static inline uint32_t
gr_shm_lease_pid(uint64_t s)
{
    return (uint32_t)(s >> 32);
}

/* A random number from the caller's xorshift state. */
static inline uint64_t
gr_shm_rand(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

#endif
