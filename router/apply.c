/*
 * apply.c - write a validated config into the segment.
 *
 * Invariants protected: a project that stays (same name) keeps its slot,
 * generation, windows, cooldowns and learned limits; a removed project
 * takes no new lease from the moment it is marked and its slot is reused
 * only after its last lease ended (slots.c), with a new generation; model
 * indices never move while the segment lives.  Readers never wait: names
 * and keys change under seqlocks, numbers as single atomic words.
 */
#include "health.h"
#include "router.h"
#include "cluster.h"
#include "seqlock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Model index of name in the segment, adding it if new; -1 when full. */
static int
model_slot(struct gr_rtr *r, const char *name)
{
    struct gr_shm *t = &r->t;
    uint32_t n = r->m.n_models, i;
    char padded[GR_SHM_NAME_MAX] = {0};

    for (i = 0; i < n; i++)
        if (strncmp(r->m.model[i], name, GR_SHM_NAME_MAX) == 0)
            return (int)i;
    if (n >= t->max_models)
        return -1;
    snprintf(padded, sizeof(padded), "%s", name);
    memcpy(r->m.model[n], padded, sizeof(padded));
    r->m.n_models = n + 1;
    gr_shm_seq_write_begin(&t->hdr->models_seq);
    gr_shm_seq_copy_in(t->models[n].name, padded, sizeof(padded));
    /* release: the name is written before the count that exposes it */
    atomic_store_explicit(&t->hdr->n_models, n + 1, memory_order_release);
    gr_shm_seq_write_end(&t->hdr->models_seq);
    return (int)n;
}

static int
find_project(const struct gr_rtr *r, const char *name)
{
    uint32_t i;

    for (i = 0; i < r->t.max_projects; i++)
        if (r->m.state[i] != GR_PROJ_FREE &&
            strncmp(r->m.name[i], name, GR_SHM_NAME_MAX) == 0)
            return (int)i;
    return -1;
}

/*
 * A configured limit times the headroom, as a count can hold it: at most
 * GR_LIMIT_NONE - 1 (the largest a cell stores), at least 1.  The clamp
 * comes before the conversion: a product at or beyond 2^63 (rpm =
 * INT64_MAX) does not fit an int64_t, and converting it is undefined
 * (here it gave INT64_MIN, then 1).
 */
static int64_t
effective(int64_t limit, double headroom)
{
    const int64_t most = (int64_t)GR_LIMIT_NONE - 1;
    double e;

    if (limit <= 0)
        return limit;       /* unlimited (-1) or unavailable (0) */
    e = floor((double)limit * headroom);
    if (!(e < (double)most))
        return most;        /* also NaN, which validation rules out */
    return e < 1 ? 1 : (int64_t)e;
}

/*
 * Whether the config gives a slot other keys than the segment holds.  The
 * one decision the router takes from what it reads back (router.h): an
 * adopted segment's keys are known nowhere else.  A scribble can only
 * make it clear GR_PROJ_AUTH_FAILED, i.e. give a bad key one more try.
 */
static bool
keys_differ(const struct gr_shm *t, uint32_t slot,
            const struct gr_cfg_project *cp)
{
    uint32_t k;

    if (t->projects[slot].n_keys != cp->n_keys)
        return true;
    for (k = 0; k < cp->n_keys; k++)
        if (strncmp(gr_shm_key(t, slot, k), cp->keys[k], GR_SHM_KEY_MAX) != 0)
            return true;
    return false;
}

static void
write_project(struct gr_rtr *r, uint32_t slot,
              const struct gr_cfg_project *cp)
{
    struct gr_shm *t = &r->t;
    struct gr_shm_project *p = &t->projects[slot];
    uint32_t k;
    bool rotated = keys_differ(t, slot, cp);
    char name[GR_SHM_NAME_MAX] = {0};

    snprintf(name, sizeof(name), "%s", cp->name);
    memcpy(r->m.name[slot], name, sizeof(name));
    gr_shm_seq_write_begin(&p->seq);
    gr_shm_seq_copy_in(p->name, name, sizeof(name));
    /* release stores under the seqlock (see seqlock.h) */
    __atomic_store_n(&p->weight, cp->weight ? cp->weight : 1,
                     __ATOMIC_RELEASE);
    __atomic_store_n(&p->priority, cp->priority, __ATOMIC_RELEASE);
    __atomic_store_n(&p->flags, cp->enabled ? 0u : GR_PROJ_CFG_DISABLED,
                     __ATOMIC_RELEASE);
    for (k = 0; k < GR_SHM_MAX_KEYS; k++) {
        char key[GR_SHM_KEY_MAX] = {0};

        if (k < cp->n_keys)
            snprintf(key, sizeof(key), "%s", cp->keys[k]);
        gr_shm_seq_copy_in(gr_shm_key(t, slot, k), key, sizeof(key));
    }
    __atomic_store_n(&p->n_keys, cp->n_keys, __ATOMIC_RELEASE);
    gr_shm_seq_write_end(&p->seq);
    if (rotated) {
        /* relaxed: advice; a new key deserves a new chance */
        atomic_store_explicit(&p->key_bad, 0, memory_order_relaxed);
        atomic_fetch_and_explicit(&p->health, ~GR_PROJ_AUTH_FAILED,
                                  memory_order_relaxed);
    }
}

/* How many entries of the choice array a project gets. */
static uint32_t
entries_for(const struct gr_cfg *cfg, const struct gr_cfg_project *cp,
            uint32_t room, uint64_t total_weight)
{
    uint64_t e;

    if (!cp->enabled)
        return 0;
    if (strcmp(cfg->router.choice, "weighted") != 0)
        return 1;
    e = (uint64_t)(cp->weight ? cp->weight : 1) * room / total_weight;
    return e < 1 ? 1 : (uint32_t)e;
}

/*
 * The choice array: the slots clients sample from.  Weighted mode gives a
 * project entries in proportion to its weight; priority mode lists
 * projects by priority, lowest first, and clients scan it in order.
 * order is scratch room for n_projects entries, allocated by the caller
 * before its first write, so nothing here can fail half-way.
 */
static void
write_choice(struct gr_rtr *r, const struct gr_cfg *cfg, const int *slots,
             uint32_t *order)
{
    struct gr_shm *t = &r->t;
    bool hide = r->hide_choice;
    uint32_t room = GR_CHOICE_PER_PROJECT * t->max_projects, n = 0, i, j;
    uint64_t total = 0;

    for (i = 0; i < cfg->n_projects; i++) {
        order[i] = i;
        total += cfg->projects[i].weight ? cfg->projects[i].weight : 1;
    }
    if (strcmp(cfg->router.choice, "priority") == 0) {
        for (i = 1; i < cfg->n_projects; i++) {     /* stable insertion */
            uint32_t v = order[i];

            for (j = i; j > 0 && cfg->projects[order[j - 1]].priority >
                                     cfg->projects[v].priority; j--)
                order[j] = order[j - 1];
            order[j] = v;
        }
    }
    for (i = 0; i < cfg->n_projects; i++) {
        const struct gr_cfg_project *cp = &cfg->projects[order[i]];

        if (slots[order[i]] < 0)
            continue;       /* waiting for a slot */
        for (j = entries_for(cfg, cp, room, total ? total : 1);
             j > 0 && n < room; j--)
        {
            r->m.choice[n] = (uint32_t)slots[order[i]];
            /* relaxed: readers range-check every entry */
            atomic_store_explicit(&t->choice[n], r->m.choice[n],
                                  memory_order_relaxed);
            n++;
        }
    }
    /* release: a reader that sees the count sees the entries below it */
    r->m.n_choice = hide ? 0 : n;
    atomic_store_explicit(&t->hdr->n_choice, r->m.n_choice,
                          memory_order_release);
}

_Static_assert((int)GR_CFG_NDIMS == (int)GR_NDIM,
               "the config's dimensions are the table's, in order");

static void
write_limits(struct gr_rtr *r, const struct gr_cfg *cfg, uint32_t slot,
             const struct gr_cfg_project *cp, const int *model_idx)
{
    struct gr_shm *t = &r->t;
    uint32_t m, i;
    unsigned d;

    for (m = 0; m < t->max_models; m++) {
        struct gr_shm_cell *c = gr_shm_cell(t, slot, m);
        int cfg_model = -1;

        for (i = 0; i < cfg->n_models; i++)
            if (model_idx[i] == (int)m)
                cfg_model = (int)i;
        for (d = 0; d < GR_NDIM; d++) {
            int64_t raw = cfg_model < 0 ? 0 :
                gr_cfg_limit(cfg, cp, (unsigned)cfg_model, d);
            size_t cell = (size_t)slot * t->max_models + m;

            r->m.config_limit[cell][d] = raw;
            r->m.limit[cell][d] = effective(raw, cfg->router.headroom);
            /* clustered: this host's share of it (cluster.c) */
            r->m.limit[cell][d] = gr_rtr_cluster_limit(r, cell, d,
                                                       r->m.limit[cell][d]);

            /* relaxed: each limit is read on its own; the next
             * reservation sees it */
            atomic_store_explicit(&c->config_limit[d], raw,
                                  memory_order_relaxed);
            atomic_store_explicit(&c->limit[d],
                                  gr_shm_limit_pack(r->m.limit[cell][d]),
                                  memory_order_relaxed);
            /* The cap of a learned limit follows a new headroom. */
            gr_shm_set_learned(t, c, d, atomic_load_explicit(
                &c->learned[d], memory_order_relaxed));
        }
    }
}

/* Check that cfg fits in the running segment before writing anything. */
static int
fits(const struct gr_rtr *r, const struct gr_cfg *cfg, char *err,
     size_t errlen)
{
    const struct gr_shm *t = &r->t;
    uint32_t i, m, new_models = 0, new_projects = 0, free_slots = 0;
    uint32_t n = r->m.n_models;
    char changed[160];

    /* The restart-only settings of the running config (config.c's
     * table), named one by one. */
    if (r->cfg != NULL && r->cfg != cfg &&
        gr_cfg_restart_changes(r->cfg, cfg, changed, sizeof(changed)) > 0) {
        snprintf(err, errlen, "%s: %s changed: that needs a restart of "
                 "gemrouted (running: %s, %u projects, %u models, %u "
                 "leases, %lld ms)", cfg->path, changed, t->name,
                 t->max_projects, t->max_models, t->max_leases,
                 (long long)(t->window_ns / 1000000));
        return -EINVAL;
    }
    /* The segment itself: another segment (shm) or another shape. */
    if (!gr_rtr_geometry_matches(t, cfg) ||
        strcmp(t->name, cfg->router.shm) != 0) {
        snprintf(err, errlen, "%s: shm, max_projects, max_models, "
                 "max_leases or window_ms changed: that needs a restart "
                 "of gemrouted (running: %s, %u projects, %u models, %u "
                 "leases, %lld ms)", cfg->path, t->name, t->max_projects,
                 t->max_models, t->max_leases,
                 (long long)(t->window_ns / 1000000));
        return -EINVAL;
    }
    for (i = 0; i < cfg->n_models; i++) {
        bool found = false;

        for (m = 0; m < n && !found; m++)
            found = strncmp(r->m.model[m], cfg->models[i].name,
                            GR_SHM_NAME_MAX) == 0;
        new_models += !found;
    }
    if (n + new_models > t->max_models) {
        snprintf(err, errlen, "%s: %u models in all since the start "
                 "exceed max_models %u: restart gemrouted", cfg->path,
                 n + new_models, t->max_models);
        return -EINVAL;
    }
    for (i = 0; i < cfg->n_projects; i++)
        new_projects += find_project(r, cfg->projects[i].name) < 0;
    for (i = 0; i < t->max_projects; i++) {
        uint32_t st = r->m.state[i];
        bool staying = false;

        for (m = 0; m < cfg->n_projects && !staying; m++)
            staying = strncmp(r->m.name[i], cfg->projects[m].name,
                              GR_SHM_NAME_MAX) == 0;
        /* A slot is free, or will be as soon as its project (removed by
         * this config) has no call in flight. */
        free_slots += st == GR_PROJ_FREE || (st != GR_PROJ_FREE && !staying);
    }
    if (new_projects > free_slots) {
        snprintf(err, errlen, "%s: %u new projects but only %u free slots "
                 "(removed projects free theirs when their calls end)",
                 cfg->path, new_projects, free_slots);
        return -ENOSPC;
    }
    return 0;
}

int
gr_rtr_apply(struct gr_rtr *r, const struct gr_cfg *cfg, char *err,
             size_t errlen)
{
    struct gr_shm *t = &r->t;
    int model_idx[GR_SHM_MAX_MODELS], *slots;
    uint32_t i, *order;
    int rc;
    char url[GR_SHM_URL_MAX] = {0}, path[GR_SHM_URL_MAX] = {0};
    char proxy[GR_SHM_URL_MAX] = {0};

    rc = fits(r, cfg, err, errlen);
    if (rc != 0)
        return rc;
    /* Everything that can fail is done before the first write to the
     * table: a config is applied whole or not at all (DESIGN.md). */
    slots = calloc(cfg->n_projects + 1, sizeof(*slots));
    order = calloc(cfg->n_projects + 1, sizeof(*order));
    if (slots == NULL || order == NULL) {
        free(slots);
        free(order);
        snprintf(err, errlen, "%s: out of memory: the running config stays",
                 cfg->path);
        return -ENOMEM;
    }
    for (i = 0; i < cfg->n_models && i < GR_SHM_MAX_MODELS; i++)
        model_idx[i] = model_slot(r, cfg->models[i].name);
    gr_rtr_publish_extras(r, cfg, model_idx);

    snprintf(url, sizeof(url), "%s", cfg->router.base_url);
    snprintf(path, sizeof(path), "%s", cfg->path);
    snprintf(proxy, sizeof(proxy), "%s", cfg->router.proxy);
    gr_shm_seq_write_begin(&t->hdr->text_seq);
    gr_shm_seq_copy_in(t->hdr->base_url, url, sizeof(url));
    gr_shm_seq_copy_in(t->hdr->config_path, path, sizeof(path));
    gr_shm_seq_copy_in(t->hdr->proxy, proxy, sizeof(proxy));
    explicit_bzero(proxy, sizeof(proxy));   /* it may hold a password */
    gr_shm_seq_write_end(&t->hdr->text_seq);
    /* relaxed for the settings: each is one word read on its own */
    atomic_store_explicit(&t->hdr->headroom_ppm,
                          (uint32_t)lround(cfg->router.headroom * 1e6),
                          memory_order_relaxed);
    atomic_store_explicit(&t->hdr->choice_mode,
                          strcmp(cfg->router.choice, "priority") == 0 ? 2u :
                          strcmp(cfg->router.choice, "weighted") == 0 ? 1u :
                          0u, memory_order_relaxed);
    atomic_store_explicit(&t->hdr->max_call_s, cfg->router.max_call_s,
                          memory_order_relaxed);
    atomic_store_explicit(&t->hdr->batch_calls, cfg->router.batch_calls,
                          memory_order_relaxed);
    atomic_store_explicit(&t->hdr->tpm_flags, cfg->router.tpm_counts_cached
                                              ? 0u : GR_TPM_NO_CACHED,
                          memory_order_relaxed);

    /* Removals first: their slots may serve the projects this config
     * adds as soon as their last call has ended. */
    for (i = 0; i < t->max_projects; i++) {
        uint32_t j;
        bool kept = false;

        for (j = 0; j < cfg->n_projects && !kept; j++)
            kept = strncmp(r->m.name[i], cfg->projects[j].name,
                           GR_SHM_NAME_MAX) == 0;
        if (!kept && r->m.state[i] == GR_PROJ_ACTIVE) {
            gr_rtr_set_state(r, i, GR_PROJ_REMOVING);
            gr_rtr_log("project '%s' removed: draining its calls",
                       r->m.name[i]);
        }
    }
    r->pending = false;
    gr_rtr_free_drained(r);
    for (i = 0; i < cfg->n_projects; i++) {
        const struct gr_cfg_project *cp = &cfg->projects[i];
        int slot = find_project(r, cp->name);

        if (slot < 0) {
            bool returning;

            slot = gr_rtr_free_slot(r, cp->name, &returning);
            if (slot < 0) {
                /* Its slot is still draining: added when it is free. */
                gr_rtr_log("project '%s' waits for a free slot", cp->name);
                r->pending = true;
                slots[i] = -1;
                continue;
            }
            if (returning)
                gr_rtr_log("project '%s' is back: its counts are kept",
                           cp->name);
            else
                gr_rtr_take_slot(t, (uint32_t)slot);
        }
        slots[i] = slot;
        write_project(r, (uint32_t)slot, cp);
        write_limits(r, cfg, (uint32_t)slot, cp, model_idx);
        /* name, keys and limits are visible with ACTIVE */
        gr_rtr_set_state(r, (uint32_t)slot, GR_PROJ_ACTIVE);
    }
    write_choice(r, cfg, slots, order);
    gr_rtr_publish_spend(r, cfg, model_idx, slots);
    free(slots);
    free(order);
    /* release: whoever sees the new generation sees everything above.
     * While the choice is hidden (restoring counts at start) the
     * generation stays 0: clients read 0 as "not ready yet". */
    if (!r->hide_choice)
        atomic_fetch_add_explicit(&t->hdr->config_generation, 1,
                                  memory_order_release);
    return 0;
}
