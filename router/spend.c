/*
 * spend.c - publish the price table and the spend caps (config/pricing.h)
 * in the table's spend section (shm/layout.h, ABI 6), and say whether
 * reservations count spend at all (header.spend_on: only when some cap
 * is configured, so that a pool without caps pays nothing for them).
 *
 * Invariant protected: a reload changes caps and prices, never the
 * counters of a project that stays (identity is its slot, which the
 * project keeps); a slot given to a new project starts from nothing
 * (gr_rtr_take_slot()).
 */
#include "router.h"
#include "pricing.h"
#include "spend.h"

#include <string.h>

static uint32_t
u32(int64_t v)
{
    return v < 0 ? 0 : v > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void
gr_rtr_publish_spend(struct gr_rtr *r, const struct gr_cfg *cfg,
                     const int *model_idx, const int *slots)
{
    struct gr_shm *t = &r->t;
    const struct gr_cfg_spend *sp = gr_cfg_spend(cfg);
    struct gr_shm_price prices[GR_SHM_MAX_MODELS];
    uint32_t i;
    bool on = sp != NULL && sp->capped;

    if (t->spend == NULL || t->prices == NULL)
        return;
    memset(prices, 0, sizeof(prices));
    for (i = 0; sp != NULL && i < cfg->n_models && i < sp->n_models &&
                i < GR_SHM_MAX_MODELS; i++) {
        const struct gr_cfg_price *p = &sp->prices[i];
        int m = model_idx[i];

        if (!p->set || m < 0 || (uint32_t)m >= t->max_models)
            continue;
        prices[m].input = u32(p->input);
        prices[m].output = u32(p->output);
        prices[m].cached = u32(p->cached);
        prices[m].thinking = u32(p->thinking);
        prices[m].input_long = u32(p->input_long);
        prices[m].output_long = u32(p->output_long);
        prices[m].cached_long = u32(p->cached_long);
        prices[m].thinking_long = u32(p->thinking_long);
        prices[m].long_above = u32(p->long_above);
        prices[m].max_output = u32(p->max_output);
        prices[m].flags = GR_PRICE_SET;
    }
    gr_shm_price_publish(t, prices, t->max_models);
    /* relaxed for the caps: each is one word read on its own, and any
     * value is a valid cap */
    for (i = 0; i < t->max_projects; i++) {
        atomic_store_explicit(&t->spend[i].cap_day, 0, memory_order_relaxed);
        atomic_store_explicit(&t->spend[i].cap_month, 0,
                              memory_order_relaxed);
    }
    for (i = 0; on && i < cfg->n_projects && i < sp->n_projects; i++) {
        if (slots[i] < 0 || (uint32_t)slots[i] >= t->max_projects)
            continue;
        atomic_store_explicit(&t->spend[slots[i]].cap_day,
                              sp->project_day[i], memory_order_relaxed);
        atomic_store_explicit(&t->spend[slots[i]].cap_month,
                              sp->project_month[i], memory_order_relaxed);
    }
    atomic_store_explicit(&t->spend[t->max_projects].cap_day,
                          on ? sp->pool_day : 0, memory_order_relaxed);
    atomic_store_explicit(&t->spend[t->max_projects].cap_month,
                          on ? sp->pool_month : 0, memory_order_relaxed);
    /* relaxed: a setting; the prices it needs were published above
     * under models_seq, and the generation's release follows */
    atomic_store_explicit(&t->hdr->spend_on, on ? 1u : 0u,
                          memory_order_relaxed);
}
