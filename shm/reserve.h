/*
 * reserve.h - the hot path: claim a lease, choose a cell, admit the cost
 * on every dimension or none, and settle it later.  Written once here and
 * used by the client library, the router (reaping) and the benchmarks.
 */
#ifndef GR_SHM_RESERVE_H
#define GR_SHM_RESERVE_H

#include "spend.h"
#include "table.h"

#include <stdbool.h>
#include <stdint.h>

/* What a reservation asks for. */
struct gr_shm_ask {
    uint32_t model;                 /* model index */
    int64_t cost[GR_NWINDOWS];      /* requests, tokens, images */
    int64_t now_ns;                 /* CLOCK_MONOTONIC */
    int32_t today;                  /* Pacific day (gr_shm_pacific_day) */
    int64_t day_end_ns;             /* CLOCK_MONOTONIC of today's end (the
                                       next Pacific midnight), when a
                                       spent day has room again; 0 =
                                       unknown */
    uint32_t pid;
    uint64_t *rng;                  /* the caller's random state */
    uint32_t lease_hint;            /* a lease slot to try first (the one
                                       the caller freed last); any value */
    uint32_t batch;                 /* up to this many times the cost may
                                       be admitted at once, when the cell
                                       has ample room (0 or 1: exactly
                                       once; see batch_for()) */
    uint32_t pin;                   /* 0: any project; else only the
                                       project in slot pin - 1 (a
                                       resource lives there) */
    int64_t spend;                  /* micro-USD the call may cost at
                                       most, counted on the project's and
                                       the pool's spend records; 0 = no
                                       spend counted (no cap configured) */
};

/* What a reservation got. */
struct gr_shm_grant {
    uint32_t lease;                 /* lease slot */
    uint64_t ticket;                /* lease state word while ACTIVE */
    uint32_t cell;                  /* cell index */
    uint32_t slot;                  /* project slot */
    uint32_t project_gen;
    uint32_t batch;                 /* times the cost was admitted (>= 1);
                                       the lease holds cost x batch */
    int64_t retry_at_ns;            /* -EAGAIN: when room may come */
    struct gr_shm_spend_why spend;  /* -EDQUOT: which cap refused */
};

/*
 * 0 with *g filled; -EAGAIN when no cell has room (g->retry_at_ns says
 * when one may); -ENOENT when no project serves the model; -ENOSPC when
 * every lease slot is taken; -EDQUOT when a spend cap refused it (the
 * pool's, or a project's while no other cell expects room: g->spend
 * says which).
 */
int gr_shm_reserve(const struct gr_shm *t, const struct gr_shm_ask *a,
                   struct gr_shm_grant *g);

/*
 * What a batch lease (grant.batch > 1) watches before each call it
 * hands out: its cell and project, located once (bounds-checked) by
 * gr_shm_watch_init(), which is false when they are out of range.
 */
struct gr_shm_watch {
    const struct gr_shm_cell *cell;
    const struct gr_shm_project *project;
    uint32_t project_gen;
};

bool gr_shm_watch_init(const struct gr_shm *t, uint32_t cell, uint32_t gen,
                       struct gr_shm_watch *w);

/*
 * May a call still be taken from the batch lease now?  What a
 * reservation checks before it admits, read only and stricter: the
 * project is active, of the same generation, and neither it nor the cell
 * is disabled or draining; no cooldown of any dimension runs; no circuit
 * is open or probing.
 */
static inline bool
gr_shm_watch_open(const struct gr_shm_watch *w, int64_t now_ns)
{
    const struct gr_shm_cell *c = w->cell;
    const struct gr_shm_project *p = w->project;
    _Static_assert(GR_NDIM == 5, "one load per dimension below");

    /* relaxed for all: advice, as in a reservation; what the batch
     * hands out was admitted already */
    return atomic_load_explicit(&c->cell_cool_until,
                                memory_order_relaxed) <= now_ns &&
           atomic_load_explicit(&c->cool_until[0],
                                memory_order_relaxed) <= now_ns &&
           atomic_load_explicit(&c->cool_until[1],
                                memory_order_relaxed) <= now_ns &&
           atomic_load_explicit(&c->cool_until[2],
                                memory_order_relaxed) <= now_ns &&
           atomic_load_explicit(&c->cool_until[3],
                                memory_order_relaxed) <= now_ns &&
           atomic_load_explicit(&c->cool_until[4],
                                memory_order_relaxed) <= now_ns &&
           atomic_load_explicit(&c->circuit_until,
                                memory_order_relaxed) == 0 &&
           !(atomic_load_explicit(&c->health, memory_order_relaxed) &
             (GR_CELL_DISABLED_MODEL | GR_CELL_OP_DISABLED |
              GR_CELL_OP_DRAINING)) &&
           atomic_load_explicit(&p->state, memory_order_relaxed) ==
               GR_PROJ_ACTIVE &&
           atomic_load_explicit(&p->generation, memory_order_relaxed) ==
               w->project_gen &&
           !(atomic_load_explicit(&p->health, memory_order_relaxed) &
             (GR_PROJ_AUTH_FAILED | GR_PROJ_OP_DISABLED |
              GR_PROJ_OP_DRAINING));
}

/*
 * Settle a lease the caller owns: from first_byte_ns on, its cost leaves
 * the windows one window later.  first_byte_ns must not be earlier than
 * the real first byte, nor later than now_ns (it is clamped to it): a
 * now_ns read from the coarse clock is short, so a first byte it has not
 * reached needs a precise now_ns (gr_commit() reads one).  actual[w] < 0
 * keeps the admitted cost.  actual[GR_W_RPM] below the admitted requests
 * (a batch lease that sent fewer calls) gives the rest back to the
 * minute window and the day at once: they were never sent.
 * Returns 0, or -ESTALE when the lease was already settled (by the router
 * reaping it, or by an earlier call).
 */
int gr_shm_settle(const struct gr_shm *t, uint32_t lease, uint64_t ticket,
                  int64_t first_byte_ns, const int64_t actual[GR_NWINDOWS],
                  int64_t now_ns);

/*
 * gr_shm_settle() with the call's real cost in micro-USD: the spend the
 * lease reserved is replaced by spend (on the day and month it was
 * reserved on).  spend < 0 keeps the reservation, as gr_shm_settle()
 * and a reap of a lease that was in flight do (the call may have been
 * billed up to it).
 */
int gr_shm_settle_spend(const struct gr_shm *t, uint32_t lease,
                        uint64_t ticket, int64_t first_byte_ns,
                        const int64_t actual[GR_NWINDOWS], int64_t now_ns,
                        int64_t spend);

/*
 * Count the calls a batch lease sent in its cell's admission statistic
 * (a lease of its own counts its one call when it is admitted).
 */
void gr_shm_count_calls(const struct gr_shm *t, uint32_t cell,
                        uint64_t calls);

/*
 * A call of a batch lease used more than its estimate on window w: count
 * the excess there now (Google counted it already), then in the lease,
 * which releases it with the rest when it settles.  Returns what was
 * counted (>= 0: the window's count saturates, and a window the lease
 * does not hold counts nothing), or -ESTALE when the lease is no longer
 * the caller's (then nothing is counted).
 */
int64_t gr_shm_charge(const struct gr_shm *t, uint32_t lease, uint64_t ticket,
                  unsigned w, int64_t extra);

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
