/*
 * slots.c - the life of a project slot, in one place.
 *
 *     FREE --take (new project) or return (same name)--> ACTIVE
 *     ACTIVE --removed from the config--> REMOVING     (apply.c)
 *     REMOVING --its last lease ended--> FREE          (gr_rtr_free_drained)
 *
 * Invariant protected: a slot is reused only after the in-flight leases
 * of its last occupant have ended (a REMOVING slot takes no new lease,
 * and it is freed only when no lease names one of its cells), and its
 * generation is bumped on every change of occupant: when a new project
 * takes it (gr_rtr_take_slot) and when it is freed (gr_rtr_free_drained),
 * so a report for a lease of the old occupant compares generations and
 * is dropped.  A project that comes back by name finds its old slot if it
 * is still free, with what Google has already counted; that is the same
 * occupant, so its generation stays.  Every state change goes through
 * gr_rtr_set_state(), in the segment and in the mirror at once.
 */
#include "router.h"
#include "spend.h"
#include "clock.h"
#include "health.h"
#include "reserve.h"
#include "seqlock.h"

#include <string.h>

static void
zero_shared(void *p, size_t n)
{
    static const unsigned char zeros[4096];

    while (n > 0) {
        size_t k = n < sizeof(zeros) ? n : sizeof(zeros);

        gr_shm_seq_copy_in(p, zeros, k);
        p = (unsigned char *)p + k;
        n -= k;
    }
}

/*
 * A free slot for a project called name.  Google counts per project, so
 * a project that was removed and comes back must find what it had spent:
 * its old slot if still free (kept as it was, counts and cooldowns and
 * all).  Any other project takes a slot never used, else the one freed
 * longest ago, which has the least left to forget.  *returning says
 * which.
 */
int
gr_rtr_free_slot(const struct gr_rtr *r, const char *name, bool *returning)
{
    int best = -1;
    uint32_t i;

    *returning = false;
    for (i = 0; i < r->t.max_projects; i++) {
        if (r->m.state[i] != GR_PROJ_FREE)
            continue;
        if (r->m.name[i][0] != '\0' &&
            strncmp(r->m.name[i], name, GR_SHM_NAME_MAX) == 0) {
            *returning = true;
            return (int)i;
        }
        if (best < 0 || r->m.freed_at[i] < r->m.freed_at[best])
            best = (int)i;
    }
    return best;
}

/* Set a slot's state, in the segment and in the mirror. */
void
gr_rtr_set_state(struct gr_rtr *r, uint32_t slot, uint32_t state)
{
    r->m.state[slot] = state;
    /* seq_cst: a slot leaving (REMOVING, FREE) pairs with the client's
     * seq_cst store of its lease's cell in try_cell() before the lease
     * scan that frees it; ACTIVE needs only release (names, keys and
     * limits first), which seq_cst includes */
    atomic_store_explicit(&r->t.projects[slot].state, state,
                          memory_order_seq_cst);
}

/* Give a slot to a new project: a fresh cell set and a new generation. */
void
gr_rtr_take_slot(struct gr_shm *t, uint32_t slot)
{
    struct gr_shm_project *p = &t->projects[slot];
    uint32_t m;

    for (m = 0; m < t->max_models; m++) {
        struct gr_shm_cell *c = gr_shm_cell(t, slot, m);
        unsigned d, tick;

        zero_shared(c, sizeof(*c));
        for (tick = 0; tick < GR_RING; tick++)
            zero_shared(gr_shm_ring_slot(t, c, tick, 0),
                        GR_NWINDOWS * sizeof(uint64_t));
        for (d = 0; d < GR_NDIM; d++)
            gr_shm_set_learned(t, c, d, -1);    /* none: no cap */
    }
    /* relaxed for all: published by the release store of ACTIVE */
    atomic_store_explicit(&p->health, 0, memory_order_relaxed);
    atomic_store_explicit(&p->key_bad, 0, memory_order_relaxed);
    if (t->spend != NULL)
        gr_shm_spend_clear(&t->spend[slot]);    /* ABI 6: a new project */
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_relaxed);
}

static bool
slot_has_lease(const struct gr_shm *t, uint32_t slot)
{
    uint32_t i;

    for (i = 0; i < t->max_leases; i++) {
        /* acquire: pairs with free_lease() */
        uint64_t s = atomic_load_explicit(&t->leases[i].state,
                                          memory_order_acquire);

        /* seq_cst: pairs with the client's seq_cst store of the cell in
         * try_cell() (reserve.c), against our seq_cst REMOVING store */
        if (gr_shm_lease_state(s) != GR_LEASE_FREE &&
            __atomic_load_n(&t->leases[i].cell, __ATOMIC_SEQ_CST) /
                    t->max_models == slot)
            return true;
    }
    return false;
}

void
gr_rtr_free_drained(struct gr_rtr *r)
{
    struct gr_shm *t = &r->t;
    uint32_t i, k;
    bool freed = false;

    for (i = 0; i < t->max_projects; i++) {
        struct gr_shm_project *p = &t->projects[i];
        char zero[GR_SHM_KEY_MAX] = {0};

        if (r->m.state[i] != GR_PROJ_REMOVING || slot_has_lease(t, i))
            continue;
        gr_shm_seq_write_begin(&p->seq);
        for (k = 0; k < GR_SHM_MAX_KEYS; k++)
            gr_shm_seq_copy_in(gr_shm_key(t, i, k), zero, sizeof(zero));
        __atomic_store_n(&p->n_keys, 0, __ATOMIC_RELEASE);
        gr_shm_seq_write_end(&p->seq);
        /* release: a late report compares generations and is dropped */
        atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
        gr_rtr_set_state(r, i, GR_PROJ_FREE);
        gr_rtr_log("project '%s' drained: slot %u free", r->m.name[i], i);
        /* The name stays in the mirror: if the project comes back, it
         * gets this slot and what Google has already counted. */
        r->m.freed_at[i] = gr_shm_now_mono();
        freed = true;
    }
    if (freed && r->pending && r->cfg != NULL) {
        char err[512];

        /* A project waited for a slot: apply the running config again. */
        if (gr_rtr_apply(r, r->cfg, err, sizeof(err)) != 0)
            gr_rtr_log("%s", err);
    }
}
