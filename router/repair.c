/*
 * repair.c - the router's private copy of what it owns in the segment,
 * and the repair of the segment from it.
 *
 * Invariant protected: the segment is untrusted input for the router too.
 * The router does not decide from what it reads back of its own state
 * (names, slot states, models, the choice array, limits, keys, the
 * geometry, the header's strings; the one exception is apply.c's
 * keys_differ(), see router.h); it decides from its private copy and
 * the running config, and once a second it rewrites whatever a buggy or
 * hostile process changed.  Every byte of every router-written string is
 * compared, the padding after its NUL included: base_url, proxy,
 * config_path and last_reload_error in the header; the name, every key
 * (not only the first), weight, priority and flags of each slot; the
 * model names.  Counters that clients own (windows, leases, health) are
 * not repaired here: they are range-checked by every reader instead.
 */
#include "router.h"
#include "seqlock.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The header line that holds the offsets of the parts. */
#define OFFSETS_LINE offsetof(struct gr_shm_header, off_models)
_Static_assert(OFFSETS_LINE % GR_SHM_LINE == 0, "offsets on their line");

int
gr_rtr_mirror_init(struct gr_rtr *r)
{
    struct gr_shm *t = &r->t;
    size_t cells = (size_t)t->max_projects * t->max_models, i;
    struct gr_rtr_mirror *m = &r->m;

    memcpy(m->head, t->base, sizeof(m->head));
    memcpy(m->offsets, t->base + OFFSETS_LINE, sizeof(m->offsets));
    /* Outside both lines: the offset of ABI 6's spend section, and
     * whether spend is counted (relaxed: no other router is alive). */
    m->off_spend = t->hdr->off_spend;
    m->spend_on = atomic_load_explicit(&t->hdr->spend_on,
                                       memory_order_relaxed);
    m->state = calloc(t->max_projects, sizeof(*m->state));
    m->freed_at = calloc(t->max_projects, sizeof(*m->freed_at));
    m->name = calloc(t->max_projects, sizeof(*m->name));
    m->cfg_at = calloc(t->max_projects, sizeof(*m->cfg_at));
    m->model = calloc(t->max_models, sizeof(*m->model));
    m->choice = calloc((size_t)GR_CHOICE_PER_PROJECT * t->max_projects,
                       sizeof(*m->choice));
    m->limit = calloc(cells, sizeof(*m->limit));
    m->config_limit = calloc(cells, sizeof(*m->config_limit));
    if (!m->state || !m->freed_at || !m->name || !m->cfg_at || !m->model ||
        !m->choice || !m->limit || !m->config_limit) {
        gr_rtr_mirror_free(r);
        return -1;
    }
    /* An adopted segment is taken as its last router left it (checked
     * for shape by attach; names sanitised); apply then rewrites it. */
    /* relaxed for all: no other router is alive (checked by the caller) */
    m->n_models = atomic_load_explicit(&t->hdr->n_models,
                                       memory_order_relaxed);
    if (m->n_models > t->max_models)
        m->n_models = t->max_models;
    for (i = 0; i < m->n_models; i++) {
        memcpy(m->model[i], t->models[i].name, GR_SHM_NAME_MAX);
        m->model[i][GR_SHM_NAME_MAX - 1] = '\0';
    }
    memcpy(m->reload_error, t->hdr->last_reload_error,
           sizeof(m->reload_error));
    m->reload_error[sizeof(m->reload_error) - 1] = '\0';
    for (i = 0; i < t->max_projects; i++) {
        uint32_t st = atomic_load_explicit(&t->projects[i].state,
                                           memory_order_relaxed);

        m->state[i] = st <= GR_PROJ_REMOVING ? st : GR_PROJ_FREE;
        memcpy(m->name[i], t->projects[i].name, GR_SHM_NAME_MAX);
        m->name[i][GR_SHM_NAME_MAX - 1] = '\0';
    }
    for (i = 0; i < cells; i++)
        for (unsigned d = 0; d < GR_NDIM; d++) {
            m->limit[i][d] = gr_shm_limit_unpack(atomic_load_explicit(
                &t->cells[i].limit[d], memory_order_relaxed));
            m->config_limit[i][d] = atomic_load_explicit(
                &t->cells[i].config_limit[d], memory_order_relaxed);
        }
    return 0;
}

void
gr_rtr_mirror_free(struct gr_rtr *r)
{
    free(r->m.state);
    free(r->m.freed_at);
    free(r->m.name);
    free(r->m.cfg_at);
    free(r->m.model);
    free(r->m.choice);
    free(r->m.limit);
    free(r->m.config_limit);
    memset(&r->m, 0, sizeof(r->m));
}

/* A sequence counter left odd: nobody is writing (only the router
 * writes), so even it out. */
static unsigned
fix_seq(_Atomic uint32_t *seq)
{
    /* relaxed: only the router writes sequence counters */
    if ((atomic_load_explicit(seq, memory_order_relaxed) & 1u) == 0)
        return 0;
    gr_shm_seq_write_end(seq);
    return 1;
}

/* The config's project for slot i: where it was last time if the name
 * still matches (a repair pass over 10,000 projects would otherwise
 * search the config 10,000 times), else searched and remembered. */
static const struct gr_cfg_project *
cfg_project_of(struct gr_rtr *r, uint32_t i)
{
    const struct gr_cfg *cfg = r->cfg;
    uint32_t at = r->m.cfg_at[i];
    const struct gr_cfg_project *cp;

    if (cfg == NULL)
        return NULL;
    if (at < cfg->n_projects &&
        strcmp(cfg->projects[at].name, r->m.name[i]) == 0)
        return &cfg->projects[at];
    cp = gr_cfg_project_find(cfg, r->m.name[i]);
    if (cp != NULL)
        r->m.cfg_at[i] = (uint32_t)(cp - cfg->projects);
    return cp;
}

/*
 * Whether the cap bytes at shm hold want as the router writes it: cut to
 * cap - 1 bytes, then NULs to the end (the bytes after the NUL count:
 * a reader that copies the whole field must find nothing there).  Reads
 * the secret in place rather than copying it.
 */
static bool
same_padded(const char *shm, const char *want, size_t cap)
{
    size_t n = strnlen(want, cap - 1), i;

    if (memcmp(shm, want, n) != 0)
        return false;
    for (i = n; i < cap; i++)
        if (shm[i] != '\0')
            return false;
    return true;
}

/* Whether slot i holds what write_project() (apply.c) wrote for cp:
 * n_keys, every key slot (the unused ones NUL), weight, priority, flags. */
static bool
slot_matches(const struct gr_shm *t, uint32_t i,
             const struct gr_cfg_project *cp)
{
    const struct gr_shm_project *p = &t->projects[i];
    uint32_t k;

    /* relaxed for the words: compared with the config; a torn or racing
     * value only makes this pass rewrite them */
    if (__atomic_load_n(&p->n_keys, __ATOMIC_RELAXED) != cp->n_keys ||
        __atomic_load_n(&p->weight, __ATOMIC_RELAXED) !=
            (cp->weight ? cp->weight : 1) ||
        __atomic_load_n(&p->priority, __ATOMIC_RELAXED) != cp->priority ||
        __atomic_load_n(&p->flags, __ATOMIC_RELAXED) !=
            (cp->enabled ? 0u : GR_PROJ_CFG_DISABLED))
        return false;
    for (k = 0; k < GR_SHM_MAX_KEYS; k++)
        if (!same_padded(gr_shm_key(t, i, k),
                         k < cp->n_keys ? cp->keys[k] : "", GR_SHM_KEY_MAX))
            return false;
    return true;
}

static unsigned
fix_project(struct gr_rtr *r, uint32_t i)
{
    struct gr_shm *t = &r->t;
    struct gr_shm_project *p = &t->projects[i];
    const struct gr_cfg_project *cp = NULL;
    unsigned fixed = fix_seq(&p->seq), k;

    /* relaxed: compared with the router's own copy */
    if (atomic_load_explicit(&p->state, memory_order_relaxed) !=
        r->m.state[i]) {
        gr_rtr_set_state(r, i, r->m.state[i]);
        fixed++;
    }
    if (r->m.state[i] == GR_PROJ_FREE)
        return fixed;
    cp = cfg_project_of(r, i);
    if (memcmp(p->name, r->m.name[i], GR_SHM_NAME_MAX) != 0 ||
        (cp != NULL && !slot_matches(t, i, cp))) {
        gr_shm_seq_write_begin(&p->seq);
        gr_shm_seq_copy_in(p->name, r->m.name[i], GR_SHM_NAME_MAX);
        for (k = 0; cp != NULL && k < GR_SHM_MAX_KEYS; k++) {
            char key[GR_SHM_KEY_MAX] = {0};

            if (k < cp->n_keys)
                memcpy(key, cp->keys[k], strnlen(cp->keys[k],
                                                 GR_SHM_KEY_MAX - 1));
            gr_shm_seq_copy_in(gr_shm_key(t, i, k), key, sizeof(key));
            explicit_bzero(key, sizeof(key));
        }
        if (cp != NULL) {
            /* release stores under the seqlock (see seqlock.h), as
             * write_project() in apply.c makes them */
            __atomic_store_n(&p->weight, cp->weight ? cp->weight : 1,
                             __ATOMIC_RELEASE);
            __atomic_store_n(&p->priority, cp->priority, __ATOMIC_RELEASE);
            __atomic_store_n(&p->flags,
                             cp->enabled ? 0u : GR_PROJ_CFG_DISABLED,
                             __ATOMIC_RELEASE);
            __atomic_store_n(&p->n_keys, cp->n_keys, __ATOMIC_RELEASE);
        }
        gr_shm_seq_write_end(&p->seq);
        fixed++;
    }
    return fixed;
}

/* One header string: rewritten (under text_seq) when it differs. */
static unsigned
fix_string(struct gr_shm_header *h, char *field, const char *want,
           size_t cap)
{
    char buf[GR_SHM_URL_MAX > GR_SHM_ERR_MAX ? GR_SHM_URL_MAX
                                             : GR_SHM_ERR_MAX] = {0};

    if (same_padded(field, want, cap))
        return 0;
    memcpy(buf, want, strnlen(want, cap - 1));
    gr_shm_seq_write_begin(&h->text_seq);
    gr_shm_seq_copy_in(field, buf, cap);
    gr_shm_seq_write_end(&h->text_seq);
    explicit_bzero(buf, sizeof(buf));       /* a proxy may hold a password */
    return 1;
}

/*
 * The header's strings: base_url, config_path and proxy as apply.c writes
 * them from the running config (clients copy base_url and proxy into
 * every lease, so a scribbled one would send keys elsewhere), and the
 * last reload error as gr_rtr_note_reload() last wrote it.
 */
static unsigned
fix_text(struct gr_rtr *r)
{
    struct gr_shm_header *h = r->t.hdr;
    const struct gr_cfg *cfg = r->cfg;
    unsigned fixed;

    fixed = fix_string(h, h->last_reload_error, r->m.reload_error,
                       sizeof(h->last_reload_error));
    if (cfg == NULL)
        return fixed;
    fixed += fix_string(h, h->base_url, cfg->router.base_url,
                        sizeof(h->base_url));
    fixed += fix_string(h, h->config_path, cfg->path,
                        sizeof(h->config_path));
    fixed += fix_string(h, h->proxy, cfg->router.proxy, sizeof(h->proxy));
    return fixed;
}

unsigned
gr_rtr_repair(struct gr_rtr *r)
{
    struct gr_shm *t = &r->t;
    size_t cells = (size_t)t->max_projects * t->max_models, i;
    unsigned fixed = 0, d;

    if (memcmp(t->base, r->m.head, sizeof(r->m.head)) != 0) {
        gr_shm_seq_copy_in(t->base, r->m.head, sizeof(r->m.head));
        fixed++;
    }
    if (memcmp(t->base + OFFSETS_LINE, r->m.offsets,
               sizeof(r->m.offsets)) != 0) {
        gr_shm_seq_copy_in(t->base + OFFSETS_LINE, r->m.offsets,
                           sizeof(r->m.offsets));
        fixed++;
    }
    /* A scribbled off_spend makes every new attach refuse the table. */
    if (t->hdr->off_spend != r->m.off_spend) {
        gr_shm_seq_copy_in(&t->hdr->off_spend, &r->m.off_spend,
                           sizeof(r->m.off_spend));
        fixed++;
    }
    /* relaxed: a setting, as gr_rtr_publish_spend() stores it */
    if (atomic_load_explicit(&t->hdr->spend_on, memory_order_relaxed) !=
        r->m.spend_on) {
        atomic_store_explicit(&t->hdr->spend_on, r->m.spend_on,
                              memory_order_relaxed);
        fixed++;
    }
    fixed += fix_seq(&t->hdr->text_seq) + fix_seq(&t->hdr->models_seq);
    fixed += fix_text(r);
    /* relaxed for the counts: compared with the router's own copy */
    if (atomic_load_explicit(&t->hdr->n_models, memory_order_relaxed) !=
        r->m.n_models) {
        atomic_store_explicit(&t->hdr->n_models, r->m.n_models,
                              memory_order_release);
        fixed++;
    }
    for (i = 0; i < r->m.n_models; i++) {
        if (memcmp(t->models[i].name, r->m.model[i], GR_SHM_NAME_MAX) != 0) {
            gr_shm_seq_write_begin(&t->hdr->models_seq);
            gr_shm_seq_copy_in(t->models[i].name, r->m.model[i],
                               GR_SHM_NAME_MAX);
            gr_shm_seq_write_end(&t->hdr->models_seq);
            fixed++;
        }
    }
    for (i = 0; i < r->m.n_choice; i++) {
        if (atomic_load_explicit(&t->choice[i], memory_order_relaxed) !=
            r->m.choice[i]) {
            atomic_store_explicit(&t->choice[i], r->m.choice[i],
                                  memory_order_relaxed);
            fixed++;
        }
    }
    if (atomic_load_explicit(&t->hdr->n_choice, memory_order_relaxed) !=
        r->m.n_choice) {
        atomic_store_explicit(&t->hdr->n_choice, r->m.n_choice,
                              memory_order_release);
        fixed++;
    }
    for (i = 0; i < t->max_projects; i++)
        fixed += fix_project(r, (uint32_t)i);
    for (i = 0; i < cells; i++) {
        struct gr_shm_cell *c = &t->cells[i];

        for (d = 0; d < GR_NDIM; d++) {
            uint32_t want = gr_shm_limit_pack(r->m.limit[i][d]);

            if (atomic_load_explicit(&c->limit[d], memory_order_relaxed) !=
                want) {
                atomic_store_explicit(&c->limit[d], want,
                                      memory_order_relaxed);
                fixed++;
            }
            if (atomic_load_explicit(&c->config_limit[d],
                                     memory_order_relaxed) !=
                r->m.config_limit[i][d]) {
                atomic_store_explicit(&c->config_limit[d],
                                      r->m.config_limit[i][d],
                                      memory_order_relaxed);
                fixed++;
            }
        }
    }
    if (fixed > 0) {
        /* relaxed: a statistic */
        atomic_fetch_add_explicit(&t->hdr->anomalies, fixed,
                                  memory_order_relaxed);
        gr_rtr_log("repaired %u damaged values in %s", fixed, t->name);
    }
    return fixed;
}
