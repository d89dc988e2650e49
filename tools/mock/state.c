/*
 * state.c - build the running mock from its config: the sorted model
 * list, one quota cell per (project, model), the key -> project table,
 * and the knobs /mock/ endpoints may turn.
 *
 * Invariant protected: quota belongs to a project, never to a key; every
 * key of a project resolves to the same cells.  A model some project
 * lists but this project does not gets a cell with limit 0 on RPM and
 * TPM, which is how Google answers a model the project's tier does
 * not include ("limit: 0").  After construction only the cells (under
 * their own locks) and the atomics change, so lookups need no lock.
 */
#include "state.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static uint32_t
hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static int
cmp_model(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The union of every project's models, sorted for bsearch. */
static int
collect_models(struct gr_mock_state *st)
{
    const struct gr_mock_config *cfg = st->cfg;
    size_t total = 0, i, j, n = 0;

    for (i = 0; i < cfg->n_projects; i++)
        total += cfg->projects[i].n_limits;
    st->models = calloc(total ? total : 1, sizeof *st->models);
    if (st->models == NULL)
        return -ENOMEM;
    for (i = 0; i < cfg->n_projects; i++)
        for (j = 0; j < cfg->projects[i].n_limits; j++)
            memcpy(st->models[n++], cfg->projects[i].limits[j].model,
                   GR_MOCK_NAME_MAX);
    qsort(st->models, n, sizeof *st->models, cmp_model);
    st->n_models = 0;
    for (i = 0; i < n; i++)
        if (st->n_models == 0 ||
            strcmp(st->models[st->n_models - 1], st->models[i]) != 0)
            memmove(st->models[st->n_models++], st->models[i],
                    GR_MOCK_NAME_MAX);
    return 0;
}

static int
build_keys(struct gr_mock_state *st)
{
    const struct gr_mock_config *cfg = st->cfg;
    size_t total = 0, size = 16, i, k;

    for (i = 0; i < cfg->n_projects; i++)
        total += cfg->projects[i].n_keys;
    while (size < total * 2)
        size *= 2;
    st->keys = calloc(size, sizeof *st->keys);
    if (st->keys == NULL)
        return -ENOMEM;
    st->key_mask = size - 1;
    for (i = 0; i < cfg->n_projects; i++) {
        for (k = 0; k < cfg->projects[i].n_keys; k++) {
            const char *key = cfg->projects[i].keys[k];
            size_t len = strlen(key);
            uint32_t h = hash_bytes(key, len);
            size_t at = h & st->key_mask;

            while (st->keys[at].key != NULL)
                at = (at + 1) & st->key_mask;
            st->keys[at].key = key;
            st->keys[at].len = len;
            st->keys[at].hash = h;
            st->keys[at].project = (uint32_t)i;
        }
    }
    return 0;
}

static int
build_cells(struct gr_mock_state *st)
{
    /* Limit 0 per minute on requests and tokens: "this tier has no such
     * model", answered like Google with a short retry, not a day. */
    static const int64_t unlisted[GR_MOCK_NDIMS] = {0, 0, GR_MOCK_UNLIMITED,
                                                    GR_MOCK_UNLIMITED,
                                                    GR_MOCK_UNLIMITED};
    size_t n = st->n_projects * st->n_models, p, m, j;
    int rc;

    st->projects = calloc(st->n_projects, sizeof *st->projects);
    if (st->projects == NULL)
        return -ENOMEM;
    if (n > 0) {
        st->cells = aligned_alloc(64, n * sizeof *st->cells);
        if (st->cells == NULL)
            return -ENOMEM;
    }
    for (p = 0; p < st->n_projects; p++) {
        struct gr_mock_project *pr = &st->projects[p];
        const struct gr_mock_project_cfg *pc = &st->cfg->projects[p];

        pr->cfg = pc;
        atomic_init(&pr->key_state, (int)pc->state);
        pr->cells = st->cells + p * st->n_models;
        pr->listed = calloc(st->n_models ? st->n_models : 1, 1);
        if (pr->listed == NULL)
            return -ENOMEM;
        for (m = 0; m < st->n_models; m++) {
            const int64_t *lim = unlisted;

            for (j = 0; j < pc->n_limits; j++) {
                if (strcmp(pc->limits[j].model, st->models[m]) == 0) {
                    lim = pc->limits[j].limit;
                    pr->listed[m] = 1;
                    break;
                }
            }
            rc = gr_mock_cell_init(&pr->cells[m], lim);
            if (rc < 0) {
                /* Destroy only the cells made so far. */
                st->n_models = m;
                st->n_projects = p + 1;
                return rc;
            }
        }
    }
    return 0;
}

static uint32_t
to_ppb(double p)
{
    if (!(p > 0.0))
        return 0;
    if (p >= 1.0)
        return 1000000000u;
    return (uint32_t)(p * 1e9 + 0.5);
}

void
gr_mock_state_set_faults(struct gr_mock_state *st, double p503, double p500,
                         uint32_t lo_ms, uint32_t hi_ms)
{
    /* relaxed: each knob is read on its own; a request may see a mix of
     * old and new knobs while they change, which is harmless. */
    atomic_store_explicit(&st->p503_ppb, to_ppb(p503), memory_order_relaxed);
    atomic_store_explicit(&st->p500_ppb, to_ppb(p500), memory_order_relaxed);
    atomic_store_explicit(&st->latency_lo_ms, lo_ms, memory_order_relaxed);
    atomic_store_explicit(&st->latency_hi_ms, hi_ms, memory_order_relaxed);
}

int
gr_mock_state_new(struct gr_mock_config *cfg, int64_t window_ms,
                  int64_t clock_offset_s, struct gr_mock_state **out)
{
    struct gr_mock_state *st;
    int rc;

    *out = NULL;
    st = calloc(1, sizeof *st);
    if (st == NULL) {
        gr_mock_config_free(cfg);
        return -ENOMEM;
    }
    st->cfg = cfg;
    st->n_projects = cfg->n_projects;
    st->window_ns = window_ms * (GR_NS_PER_S / 1000);
    st->max_body = cfg->max_body;
    st->start_offset_ns = clock_offset_s * GR_NS_PER_S;
    atomic_init(&st->offset_ns, st->start_offset_ns);
    atomic_init(&st->p503_ppb, 0);
    atomic_init(&st->p500_ppb, 0);
    atomic_init(&st->latency_lo_ms, 0);
    atomic_init(&st->latency_hi_ms, 0);
    gr_mock_state_set_faults(st, cfg->p503, cfg->p500, cfg->latency_lo_ms,
                             cfg->latency_hi_ms);
    if ((rc = collect_models(st)) < 0 || (rc = build_keys(st)) < 0 ||
        (rc = build_cells(st)) < 0 ||
        (rc = gr_mock_files_new(st->n_projects, (size_t)cfg->max_files,
                                cfg->max_file_bytes, cfg->max_storage_bytes,
                                &st->files)) < 0 ||
        (rc = gr_mock_caches_new(&st->caches)) < 0 ||
        (rc = gr_mock_batchjobs_new(cfg->batch_pending_ms * 1000000,
                                    cfg->batch_running_ms * 1000000,
                                    &st->batches)) < 0) {
        gr_mock_state_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void
gr_mock_state_free(struct gr_mock_state *st)
{
    size_t p, m;

    if (st == NULL)
        return;
    if (st->projects != NULL) {
        for (p = 0; p < st->n_projects; p++) {
            if (st->projects[p].listed == NULL)
                continue;
            for (m = 0; m < st->n_models; m++)
                gr_mock_cell_destroy(&st->projects[p].cells[m]);
            free(st->projects[p].listed);
        }
    }
    gr_mock_files_free(st->files);
    gr_mock_caches_free(st->caches);
    gr_mock_batchjobs_free(st->batches);
    free(st->projects);
    free(st->cells);
    free(st->keys);
    free(st->models);
    gr_mock_config_free(st->cfg);
    free(st);
}

int
gr_mock_state_key(const struct gr_mock_state *st, const char *key)
{
    size_t len = strlen(key), at;
    uint32_t h = hash_bytes(key, len);

    for (at = h & st->key_mask; st->keys[at].key != NULL;
         at = (at + 1) & st->key_mask) {
        const struct gr_mock_key_slot *s = &st->keys[at];

        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return (int)s->project;
    }
    return -1;
}

int
gr_mock_state_model(const struct gr_mock_state *st, const char *model)
{
    const char(*hit)[GR_MOCK_NAME_MAX];

    if (strlen(model) >= GR_MOCK_NAME_MAX || st->n_models == 0)
        return -1;
    hit =
        bsearch(model, st->models, st->n_models, sizeof *st->models, cmp_model);
    return hit == NULL ? -1 : (int)(hit - st->models);
}

int
gr_mock_state_project(const struct gr_mock_state *st, const char *name)
{
    size_t p;

    for (p = 0; p < st->n_projects; p++)
        if (strcmp(st->projects[p].cfg->name, name) == 0)
            return (int)p;
    return -1;
}

struct gr_mock_cell *
gr_mock_state_cell(struct gr_mock_state *st, size_t project, size_t model)
{
    return &st->projects[project].cells[model];
}

void
gr_mock_state_reset(struct gr_mock_state *st)
{
    const struct gr_mock_config *cfg = st->cfg;
    size_t p, m;

    for (p = 0; p < st->n_projects; p++) {
        /* relaxed: a knob, read on its own by each request */
        atomic_store_explicit(&st->projects[p].key_state,
                              (int)cfg->projects[p].state,
                              memory_order_relaxed);
        for (m = 0; m < st->n_models; m++)
            gr_mock_cell_reset(&st->projects[p].cells[m]);
    }
    /* relaxed: counters and knobs, each read on its own */
    atomic_store_explicit(&st->offset_ns, st->start_offset_ns,
                          memory_order_relaxed);
    gr_mock_state_set_faults(st, cfg->p503, cfg->p500, cfg->latency_lo_ms,
                             cfg->latency_hi_ms);
    atomic_store_explicit(&st->g.requests, 0, memory_order_relaxed);
    atomic_store_explicit(&st->g.no_key, 0, memory_order_relaxed);
    atomic_store_explicit(&st->g.bad_key, 0, memory_order_relaxed);
    atomic_store_explicit(&st->g.leaked_key, 0, memory_order_relaxed);
    atomic_store_explicit(&st->g.model_not_found, 0, memory_order_relaxed);
    atomic_store_explicit(&st->g.unknown_path, 0, memory_order_relaxed);
    atomic_store_explicit(&st->g.bad_request, 0, memory_order_relaxed);
    atomic_store_explicit(&st->g.too_large, 0, memory_order_relaxed);
    atomic_store_explicit(&st->g.connections, 0, memory_order_relaxed);
    gr_mock_files_reset(st->files);
    gr_mock_caches_reset(st->caches);
    gr_mock_batchjobs_reset(st->batches);
}

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* xoshiro256**, one generator per thread so draws never contend. */
uint64_t
gr_mock_rand(void)
{
    static _Thread_local uint64_t s[4];
    static _Thread_local int seeded;
    uint64_t r, t;

    if (!seeded) {
        uint64_t seed = (uint64_t)gr_shm_now_mono() ^
                        (uint64_t)(uintptr_t)&seeded ^
                        ((uint64_t)pthread_self() << 1);

        s[0] = splitmix64(&seed);
        s[1] = splitmix64(&seed);
        s[2] = splitmix64(&seed);
        s[3] = splitmix64(&seed);
        seeded = 1;
    }
    r = rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}
