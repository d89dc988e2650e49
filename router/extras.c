/*
 * extras.c - publish what the table's extras hold (shm/layout.h, ABI
 * 4.2): each model's fallback chain and (ABI 6) the model aliases, under
 * the header's models_seq, and the response cache's settings, under the
 * extras' own seq.
 *
 * Invariant protected: a chain in the table names only model indices
 * the table has (below n_models, never the model itself), so a client
 * that range-checks what it reads never falls back to a name it cannot
 * find.  A table of ABI 4.1 (adopted from an older router) has no
 * extras: nothing is published and clients neither fall back nor cache.
 */
#include "router.h"
#include "aliases.h"
#include "cache.h"
#include "seqlock.h"

#include <stdio.h>
#include <string.h>

/* The table's alias list: each alias of the config whose model has a
 * table index, in the config's order, the rest empty. */
static void
publish_aliases(const struct gr_shm *t, const struct gr_cfg *cfg,
                const int *model_idx, struct gr_shm_alias (*al)[GR_ALIAS_MAX])
{
    const struct gr_cfg_aliases *ca = gr_cfg_aliases(cfg);
    unsigned i, n = 0;

    memset(*al, 0, sizeof(*al));
    for (i = 0; ca != NULL && i < ca->n && n < GR_ALIAS_MAX; i++) {
        unsigned m = ca->v[i].model;
        int to = m < cfg->n_models ? model_idx[m] : -1;

        if (to < 0 || (uint32_t)to >= t->max_models)
            continue;
        snprintf((*al)[n].name, sizeof((*al)[n].name), "%s", ca->v[i].name);
        (*al)[n].model = (uint32_t)to;
        n++;
    }
}

void
gr_rtr_publish_extras(struct gr_rtr *r, const struct gr_cfg *cfg,
                      const int *model_idx)
{
    struct gr_shm *t = &r->t;
    const struct gr_cfg_cache *cc = gr_cfg_cache(cfg);
    struct gr_shm_fallback fb[GR_SHM_MAX_MODELS];
    struct gr_shm_alias al[GR_ALIAS_MAX];
    char path[GR_SHM_URL_MAX] = {0};
    uint32_t flags = 0;
    uint64_t max_bytes;
    int64_t ttl_s;
    unsigned i, k, n = 0;

    if (t->extra == NULL || cc == NULL)
        return;
    max_bytes = (uint64_t)cc->max_bytes;
    ttl_s = cc->ttl_s;
    memset(fb, 0, sizeof(fb));
    for (i = 0; i < t->max_models && i < GR_SHM_MAX_MODELS; i++)
        memset(fb[i].chain, GR_FALLBACK_END, sizeof(fb[i].chain));
    for (i = 0; i < cfg->n_models && i < cc->n_models &&
                i < GR_SHM_MAX_MODELS; i++) {
        const struct gr_cfg_fallback *f = &cc->fallback[i];
        int from = model_idx[i];

        if (from < 0 || (uint32_t)from >= t->max_models)
            continue;
        for (k = 0, n = 0; k < f->n && k < GR_FALLBACK_MAX; k++) {
            int to = f->chain[k] < cfg->n_models ? model_idx[f->chain[k]]
                                                 : -1;

            if (to >= 0 && to != from)
                fb[from].chain[n++] = (uint8_t)to;
        }
        fb[from].flags = f->allow ? GR_FB_DEFAULT_ALLOW : 0;
    }
    publish_aliases(t, cfg, model_idx, &al);
    gr_shm_seq_write_begin(&t->hdr->models_seq);
    for (i = 0; i < t->max_models && i < GR_SHM_MAX_MODELS; i++)
        gr_shm_seq_copy_in(&t->fallback[i], &fb[i], sizeof(fb[i]));
    for (i = 0; i < GR_ALIAS_MAX; i++)
        gr_shm_seq_copy_in(&t->aliases[i], &al[i], sizeof(al[i]));
    gr_shm_seq_write_end(&t->hdr->models_seq);

    if (cc->enabled && cc->path[0] != '\0') {
        flags = GR_CACHE_ON | (cc->generate ? GR_CACHE_GENERATE : 0);
        snprintf(path, sizeof(path), "%s", cc->path);
    }
    gr_shm_seq_write_begin(&t->extra->seq);
    gr_shm_seq_copy_in(&t->extra->flags, &flags, sizeof(flags));
    gr_shm_seq_copy_in(&t->extra->max_bytes, &max_bytes, sizeof(max_bytes));
    gr_shm_seq_copy_in(&t->extra->ttl_s, &ttl_s, sizeof(ttl_s));
    gr_shm_seq_copy_in(t->extra->cache_path, path, sizeof(path));
    gr_shm_seq_write_end(&t->extra->seq);
}
