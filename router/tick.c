/*
 * tick.c - the router's housekeeping.
 *
 * None of it is needed for the no-over-admission invariant (clients
 * drain windows themselves); it keeps capacity from leaking: leases of
 * dead clients are settled within a reap interval (DESIGN.md 4), leaks
 * from clients killed mid-step are audited away when their cell is
 * quiet, idle windows are drained so their tick numbers never wrap, and
 * removed projects give their slot back once their last call ended
 * (slots.c).
 */
#include "router.h"
#include "cluster.h"
#include "audit.h"
#include "clock.h"
#include "reserve.h"
#include "seqlock.h"
#include "wake.h"
#include "window.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#define REAP_EVERY_NS (INT64_C(100) * 1000000)
#define SWEEP_SLICES 20u
#define SWEEP_WHOLE_EVERY 4u
#define REPAIR_EVERY_NS (INT64_C(1000) * 1000000)

/* A small per-scan cache: kill(pid, 0) once per pid per scan. */
struct pid_cache {
    uint32_t pid[64];
    bool alive[64];
    unsigned n;
};

static bool
pid_alive(struct pid_cache *pc, uint32_t pid)
{
    unsigned i;
    bool alive;

    if (pid == 0 || pid > INT32_MAX)
        return false;
    for (i = 0; i < pc->n; i++)
        if (pc->pid[i] == pid)
            return pc->alive[i];
    alive = kill((pid_t)pid, 0) == 0 || errno == EPERM;
    if (pc->n < 64) {
        pc->pid[pc->n] = pid;
        pc->alive[pc->n++] = alive;
    }
    return alive;
}

/*
 * How long ago lease l was admitted.  admitted_ns is written by a client:
 * a value before the clock's start or after now is scribbled, and its
 * difference could overflow.  It is counted and taken as "just admitted":
 * the lease of a live owner is then kept until its owner dies, never
 * settled while its call may be in flight (the conservative side).
 */
static int64_t
lease_age(const struct gr_shm *t, const struct gr_shm_lease *l, int64_t now)
{
    /* relaxed: the owner wrote it before its release of the state,
     * which our acquire load of the state saw */
    int64_t at = __atomic_load_n(&l->admitted_ns, __ATOMIC_RELAXED);

    if (at < 0 || at > now) {
        gr_shm_anomaly(t);
        return 0;
    }
    return now - at;
}

static void
reap(struct gr_rtr *r, int64_t now)
{
    struct gr_shm *t = &r->t;
    struct pid_cache pc = {.n = 0};
    /* relaxed: a setting */
    int64_t max_call = (int64_t)atomic_load_explicit(
        &t->hdr->max_call_s, memory_order_relaxed) * GR_NS_PER_S;
    uint32_t i;

    for (i = 0; i < t->max_leases; i++) {
        struct gr_shm_lease *l = &t->leases[i];
        /* acquire: pairs with the owner's release of its state */
        uint64_t s = atomic_load_explicit(&l->state, memory_order_acquire);
        unsigned st = gr_shm_lease_state(s);

        if (st == GR_LEASE_FREE)
            continue;
        if (!pid_alive(&pc, gr_shm_lease_pid(s))) {
            gr_shm_router_reap(t, i, s, now);
        } else if (st == GR_LEASE_ACTIVE && max_call > 0 &&
                   lease_age(t, l, now) > max_call) {
            gr_rtr_log("lease %u of pid %u outlived max_call_s: settled", i,
                       gr_shm_lease_pid(s));
            gr_shm_router_reap(t, i, s, now);
        }
    }
}

static void
audit_suspects(struct gr_rtr *r)
{
    struct gr_shm *t = &r->t;
    uint32_t n = t->max_projects * t->max_models, i;

    for (i = 0; i < n; i++) {
        struct gr_shm_cell *c = &t->cells[i];
        int64_t fixed;

        /* relaxed: a flag only the router acts on */
        if (!(atomic_load_explicit(&c->health, memory_order_relaxed) &
              GR_CELL_SUSPECT))
            continue;
        fixed = gr_shm_router_audit(t, i);
        if (fixed < 0)
            continue;       /* not quiet yet: next time */
        atomic_fetch_and_explicit(&c->health, ~GR_CELL_SUSPECT,
                                  memory_order_relaxed);
        if (fixed > 0) {
            atomic_fetch_add_explicit(&t->hdr->audits, (uint64_t)fixed,
                                      memory_order_relaxed);
            gr_rtr_log("audit: gave back %lld units a killed client had "
                       "leaked on cell %u", (long long)fixed, i);
        }
    }
}

/*
 * Drain a slice of the cells, so every window is visited every
 * SWEEP_SLICES ticks even if no client touches it.  A visit drains the
 * ticks that elapsed since the window's epoch; one round in
 * SWEEP_WHOLE_EVERY scans whole rings, which also gives back releases
 * stranded behind the epoch (rare: a settler stalled across a drain), so
 * every ring is scanned whole at least every SWEEP_SLICES *
 * SWEEP_WHOLE_EVERY ticks, about one and a quarter windows.
 */
static void
sweep(struct gr_rtr *r, int64_t now)
{
    struct gr_shm *t = &r->t;
    uint32_t n = t->max_projects * t->max_models;
    uint32_t per = (n + SWEEP_SLICES - 1) / SWEEP_SLICES, k;
    bool whole = r->sweep_round % SWEEP_WHOLE_EVERY == 0;
    unsigned w;

    for (k = 0; k < per; k++) {
        struct gr_shm_cell *c = &t->cells[r->sweep_next];

        for (w = 0; w < GR_NWINDOWS; w++)
            gr_shm_window_drain(t, c, w, now, whole);
        r->sweep_next = (r->sweep_next + 1) % n;
        if (r->sweep_next == 0) {
            r->sweep_round++;
            whole = r->sweep_round % SWEEP_WHOLE_EVERY == 0;
        }
    }
}

void
gr_rtr_tick(struct gr_rtr *r, int64_t now)
{
    struct gr_shm *t = &r->t;

    /* relaxed: a heartbeat for status */
    atomic_store_explicit(&t->hdr->router_beat_ns, now, memory_order_relaxed);
    sweep(r, now);
    gr_rtr_tz_tick(r);             /* the Pacific days, once a day */
    gr_rtr_cluster_tick(r, now);   /* never waits on Redis */
    if (now >= r->next_reap_ns) {
        reap(r, now);
        audit_suspects(r);
        gr_rtr_free_drained(r);
        r->next_reap_ns = now + REAP_EVERY_NS;
    }
    if (now >= r->next_repair_ns) {
        gr_rtr_repair(r);
        r->next_repair_ns = now + REPAIR_EVERY_NS;
    }
    gr_shm_wake_all(t);
}
