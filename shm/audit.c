/*
 * audit.c - the router's repair of leaked counts on a quiet cell.
 *
 * Why it cannot under-count: we read the window word W first, then find
 * no lease on the cell, then sum the ring, then CAS W.  A lease that was
 * admitted before W was read is either still not free when we look (we
 * give up), or freed, and then its releases were parked before it was
 * freed (release/acquire on the lease state), so the ring sum sees them.
 * A lease admitted after W was read changed W, so the CAS fails.  The
 * version bits in W make the CAS fail even if the count came back to
 * the same value.
 */
#include "audit.h"
#include "reserve.h"
#include "window.h"

#include <errno.h>

static bool
cell_has_lease(const struct gr_shm *t, uint32_t cell)
{
    uint32_t i;

    for (i = 0; i < t->max_leases; i++) {
        const struct gr_shm_lease *l = &t->leases[i];
        /* acquire: pairs with free_lease() in reserve.c, so a free lease's
         * parked releases are visible to the ring scan that follows */
        uint64_t s = atomic_load_explicit(&l->state, memory_order_acquire);

        if (gr_shm_lease_state(s) != GR_LEASE_FREE && l->cell == cell)
            return true;
    }
    return false;
}

/* What the ring still owes: every amount not yet drained. */
static uint64_t
ring_owed(const struct gr_shm *t, const struct gr_shm_cell *c, unsigned w,
          uint64_t word)
{
    uint64_t e = gr_shm_word_epoch(word), owed = 0;
    unsigned i;

    for (i = 0; i < GR_RING; i++) {
        /* acquire: pairs with the adds in release_at() */
        uint64_t s = atomic_load_explicit(gr_shm_ring_slot(t, c, i, w),
                                          memory_order_acquire);
        uint64_t amt = s & ((UINT64_C(1) << GR_SLOT_AMOUNT_BITS) - 1);
        uint64_t tag = (s >> GR_SLOT_AMOUNT_BITS) & GR_EPOCH_MASK;

        if (amt == 0)
            continue;
        if (!(s & GR_SLOT_CLOSED) || gr_shm_epoch_diff(tag, e) > 0)
            owed += amt;
    }
    return owed;
}

int64_t
gr_shm_router_audit(const struct gr_shm *t, uint32_t cell)
{
    struct gr_shm_cell *c = gr_shm_cell_at(t, cell);
    int64_t repaired = 0;
    unsigned w;

    if (c == NULL)
        return -EINVAL;
    for (w = 0; w < GR_NWINDOWS; w++) {
        /* acquire: the CAS below compares against this exact word */
        uint64_t word = atomic_load_explicit(&c->word[w],
                                             memory_order_acquire);
        uint64_t used = gr_shm_word_used(word), owed;

        if (cell_has_lease(t, cell))
            return -EBUSY;
        owed = ring_owed(t, c, w, word);
        if (used <= owed)
            continue;
        /* acq_rel: one step in the word's order, like any admission */
        if (!atomic_compare_exchange_strong_explicit(
                &c->word[w], &word,
                gr_shm_word_pack(owed, gr_shm_word_epoch(word), word),
                memory_order_acq_rel, memory_order_relaxed))
            return -EBUSY;
        repaired += (int64_t)(used - owed);
    }
    return repaired;
}
