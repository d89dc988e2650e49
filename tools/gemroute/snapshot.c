/*
 * snapshot.c - copy the table for the status views, and judge it.
 *
 * Everything read is checked: indices against the mapping's own
 * geometry, strings copied under their seqlocks and cut at their size,
 * enums clamped.  A slot whose seqlock never settles is skipped.  The
 * copy is taken at clock readings the caller may give, and everything
 * the views print (health, reasons, the pool's headroom, the project
 * counts) is decided here, once, so the table, the JSON and the
 * Prometheus output can never disagree.  Keys never leave this file
 * beyond their last four characters.
 */
#include "snapshot.h"
#include "clock.h"
#include "gemroute.h"
#include "health.h"
#include "reserve.h"
#include "seqlock.h"
#include "window.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *dim_names[GR_NDIM] = {"rpm", "tpm", "rpd", "ipm"};

static double
secs_left(int64_t until, int64_t now)
{
    return until > now ? (double)(until - now) / 1e9 : 0.0;
}

/* "26s", "4m05s", "7h12m": whole seconds, rounded up (a cooldown of
 * 0.3 s is not over). */
static void
fmt_dur(double s, char *buf, size_t n)
{
    long v = (long)ceil(s);

    if (v < 60)
        snprintf(buf, n, "%lds", v);
    else if (v < 3600)
        snprintf(buf, n, "%ldm%02lds", v / 60, v % 60);
    else
        snprintf(buf, n, "%ldh%02ldm", v / 3600, v / 60 % 60);
}

/* 950, 12.3k, 250k, 1M, 1.5M: short enough for a table cell. */
void
gr_snap_num(int64_t v, char *buf, size_t n)
{
    static const char units[] = "kMG";
    double x = (double)v;
    int u = -1;

    while ((v >= 10000 || u >= 0) && x >= 1000 && u < 2) {
        x /= 1000;
        u++;
    }
    if (u < 0)
        snprintf(buf, n, "%lld", (long long)v);
    else if (x >= 100 || x == floor(x))
        snprintf(buf, n, "%.0f%c", x, units[u]);
    else
        snprintf(buf, n, "%.1f%c", x, units[u]);
}

static bool
copy_project(const struct gr_shm *t, uint32_t slot, struct gr_snap_project *sp,
             uint32_t *flags)
{
    const struct gr_shm_project *p = &t->projects[slot];
    int tries;

    for (tries = 0; tries < GR_SEQ_TRIES; tries++) {
        uint32_t s = gr_shm_seq_read_begin((_Atomic uint32_t *)&p->seq);
        char key[GR_SHM_KEY_MAX];
        size_t n;

        gr_shm_seq_copy_out(sp->name, p->name, GR_SHM_NAME_MAX);
        gr_shm_seq_copy_out(key, gr_shm_key(t, slot, 0), GR_SHM_KEY_MAX);
        /* acquire: under the seqlock (see seqlock.h) */
        *flags = __atomic_load_n(&p->flags, __ATOMIC_ACQUIRE);
        sp->n_keys = __atomic_load_n(&p->n_keys, __ATOMIC_ACQUIRE);
        if (!gr_shm_seq_read_ok((_Atomic uint32_t *)&p->seq, s))
            continue;
        sp->name[GR_SHM_NAME_MAX - 1] = '\0';
        key[GR_SHM_KEY_MAX - 1] = '\0';
        n = strlen(key);
        /* Keys are shown as their last 4 characters, never more. */
        snprintf(sp->key_tail, sizeof(sp->key_tail), "...%s",
                 n >= 8 ? key + n - 4 : "");
        explicit_bzero(key, sizeof(key));
        if (sp->n_keys > GR_SHM_MAX_KEYS)
            sp->n_keys = GR_SHM_MAX_KEYS;
        return true;
    }
    return false;
}

static void
add_reason(struct gr_snap_cell *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add_reason(struct gr_snap_cell *sc, const char *fmt, ...)
{
    va_list ap;

    if (sc->n_reasons >= GR_SNAP_REASONS)
        return;
    va_start(ap, fmt);
    vsnprintf(sc->reasons[sc->n_reasons], GR_SNAP_REASON_MAX, fmt, ap);
    va_end(ap);
    sc->n_reasons++;
}

/* The cooldown of dimension d, as the operator wants to read it:
 * "rpd until 00:00 PT", "rpm 26s (RetryInfo)". */
static void
cooldown_reason(struct gr_snap_cell *sc, unsigned d)
{
    char left[32];

    if (sc->cool_src[d] == GR_COOL_MIDNIGHT) {
        add_reason(sc, "%s until 00:00 PT", dim_names[d]);
        return;
    }
    fmt_dur(sc->cooldown_s[d], left, sizeof(left));
    add_reason(sc, "%s %s (%s)", dim_names[d], left,
               sc->cool_src[d] == GR_COOL_RETRYINFO ? "RetryInfo" :
               sc->cool_src[d] == GR_COOL_MESSAGE ? "retry hint" :
               "backoff");
}

/*
 * Health, from the most to the least severe, and every reason that
 * applies: what stops the cell first, then what else would, then notes
 * (a learned limit that differs from the config).
 */
static void
judge(struct gr_snap_cell *sc, uint32_t pflags)
{
    uint32_t ph = sc->project_health, ch = sc->cell_health;
    bool cooling = false;
    char a[32], b[32];
    unsigned d;

    sc->health = NULL;
    if (ph & GR_PROJ_AUTH_FAILED) {
        if (sc->last_status > 0)
            add_reason(sc, "key rejected (HTTP %u)", sc->last_status);
        else
            add_reason(sc, "key rejected");
        sc->health = "disabled";
    }
    if (ph & GR_PROJ_OP_DISABLED) {
        add_reason(sc, "operator: disabled");
        sc->health = "disabled";
    }
    if (ch & GR_CELL_OP_DISABLED) {
        add_reason(sc, "operator: disabled (cell)");
        sc->health = "disabled";
    }
    if (pflags & GR_PROJ_CFG_DISABLED) {
        add_reason(sc, "enabled = false");
        sc->health = "disabled";
    }
    if (ch & GR_CELL_DISABLED_MODEL) {
        add_reason(sc, "%s", sc->last_status == 404 ?
                   "model not found (404)" : "no quota (learned limit 0)");
        sc->health = "disabled";
    }
    if (sc->removing || (ph & GR_PROJ_OP_DRAINING) ||
        (ch & GR_CELL_OP_DRAINING)) {
        add_reason(sc, "%s", sc->removing ? "removed from config: draining" :
                   (ch & GR_CELL_OP_DRAINING) ?
                   "operator: draining (cell)" : "operator: draining");
        if (sc->health == NULL)
            sc->health = "draining";
    }
    if (sc->circuit) {
        bool probing = ch & GR_CELL_PROBE_TAKEN;

        if (sc->circuit_s > 0 && !probing) {
            fmt_dur(sc->circuit_s, a, sizeof(a));
            add_reason(sc, "circuit open %s (5xx)", a);
        } else {
            add_reason(sc, "%s", probing ? "half-open: probe under way" :
                       "half-open: next call probes");
        }
        if (sc->health == NULL)
            sc->health = sc->circuit_s > 0 && !probing ? "open" :
                         "half_open";
    }
    for (d = 0; d < GR_NDIM; d++) {
        if (sc->cooldown_s[d] > 0) {
            cooldown_reason(sc, d);
            cooling = true;
        }
    }
    if (sc->cell_cool_s > 0) {
        fmt_dur(sc->cell_cool_s, a, sizeof(a));
        add_reason(sc, "429 backoff %s (no details)", a);
        cooling = true;
    }
    if (sc->health == NULL)
        sc->health = cooling ? "cooling" : "healthy";
    for (d = 0; d < GR_NDIM; d++) {
        if (sc->learned[d] < 0 || sc->learned[d] == sc->config_limit[d])
            continue;
        gr_snap_num(sc->learned[d], a, sizeof(a));
        if (sc->config_limit[d] < 0)
            add_reason(sc, "learned %s %s (config none)", dim_names[d], a);
        else {
            gr_snap_num(sc->config_limit[d], b, sizeof(b));
            add_reason(sc, "learned %s %s (config %s)", dim_names[d], a, b);
        }
    }
    snprintf(sc->reason, sizeof(sc->reason), "%s",
             sc->n_reasons > 0 ? sc->reasons[0] : "");
}

static void
copy_cell(const struct gr_shm *t, const struct gr_shm_cell *c,
          struct gr_snap_cell *sc, int64_t now_ns, int32_t today)
{
    unsigned d;

    /* relaxed for all: a snapshot for display */
    for (d = 0; d < GR_NDIM; d++) {
        uint8_t src;

        sc->limit[d] = gr_shm_cell_limit(c, d);
        sc->config_limit[d] = atomic_load_explicit(&c->config_limit[d],
                                                   memory_order_relaxed);
        sc->learned[d] = atomic_load_explicit(&c->learned[d],
                                              memory_order_relaxed);
        sc->cooldown_s[d] = secs_left(atomic_load_explicit(
            &c->cool_until[d], memory_order_relaxed), now_ns);
        src = __atomic_load_n(&c->cool_src[d], __ATOMIC_RELAXED);
        sc->cool_src[d] = src <= GR_COOL_MIDNIGHT ? src : GR_COOL_NONE;
    }
    sc->used[GR_D_RPM] = gr_shm_window_used(t, c, GR_W_RPM, now_ns);
    sc->used[GR_D_TPM] = gr_shm_window_used(t, c, GR_W_TPM, now_ns);
    sc->used[GR_D_IPM] = gr_shm_window_used(t, c, GR_W_IPM, now_ns);
    sc->used[GR_D_RPD] = gr_shm_day_used(&c->day, today);
    sc->cell_cool_s = secs_left(atomic_load_explicit(
        &c->cell_cool_until, memory_order_relaxed), now_ns);
    {
        int64_t circ = atomic_load_explicit(&c->circuit_until,
                                            memory_order_relaxed);

        sc->circuit = circ > 0;
        sc->circuit_s = secs_left(circ, now_ns);
    }
    sc->admitted = atomic_load_explicit(&c->admitted, memory_order_relaxed);
    sc->rejected = atomic_load_explicit(&c->rejected, memory_order_relaxed);
    sc->ok = atomic_load_explicit(&c->ok, memory_order_relaxed);
    sc->quota_429 = 0;
    for (d = 0; d <= GR_NDIM; d++) {
        sc->quota_429_dim[d] = atomic_load_explicit(&c->quota_429[d],
                                                    memory_order_relaxed);
        sc->quota_429 += sc->quota_429_dim[d];
    }
    sc->server_5xx = atomic_load_explicit(&c->server_5xx,
                                          memory_order_relaxed);
    sc->auth_err = atomic_load_explicit(&c->auth_err, memory_order_relaxed);
    sc->other_err = atomic_load_explicit(&c->other_err, memory_order_relaxed);
    sc->failures = atomic_load_explicit(&c->failures, memory_order_relaxed);
    sc->last_status = atomic_load_explicit(&c->last_status,
                                           memory_order_relaxed);
    if (sc->last_status > 999)
        sc->last_status = 0;
    sc->cell_health = atomic_load_explicit(&c->health, memory_order_relaxed);
    sc->op = (sc->cell_health & GR_CELL_OP_DISABLED) ? GR_SNAP_OP_DISABLED :
             (sc->cell_health & GR_CELL_OP_DRAINING) ? GR_SNAP_OP_DRAINING :
             GR_SNAP_OP_NONE;
    gr_shm_last_qid(c, sc->last_qid, sizeof(sc->last_qid));
}

static void
copy_header(const struct gr_shm *t, struct gr_snap *s, int64_t now_ns)
{
    const struct gr_shm_header *h = t->hdr;
    int tries;

    /* relaxed for all: a snapshot for display */
    s->router_pid = atomic_load_explicit(&h->router_pid, memory_order_relaxed);
    s->router_alive = gr_shm_router_alive(t);
    s->router_beat_age_s = (double)(now_ns - atomic_load_explicit(
        &h->router_beat_ns, memory_order_relaxed)) / 1e9;
    if (s->router_beat_age_s < 0)
        s->router_beat_age_s = 0;
    s->config_generation = atomic_load_explicit(&h->config_generation,
                                                memory_order_relaxed);
    s->last_reload_wall_s = atomic_load_explicit(
        &h->last_reload_wall_ns, memory_order_relaxed) / GR_NS_PER_S;
    s->last_reload_ok = atomic_load_explicit(&h->last_reload_ok,
                                             memory_order_relaxed) != 0;
    s->reloads_ok = atomic_load_explicit(&h->reloads_ok, memory_order_relaxed);
    s->reloads_failed = atomic_load_explicit(&h->reloads_failed,
                                             memory_order_relaxed);
    s->anomalies = atomic_load_explicit(&h->anomalies, memory_order_relaxed);
    s->reaped = atomic_load_explicit(&h->reaped, memory_order_relaxed);
    s->audits = atomic_load_explicit(&h->audits, memory_order_relaxed);
    s->window_s = (double)t->window_ns / 1e9;
    for (tries = 0; tries < GR_SEQ_TRIES; tries++) {
        uint32_t q = gr_shm_seq_read_begin((_Atomic uint32_t *)&h->text_seq);

        gr_shm_seq_copy_out(s->base_url, h->base_url, GR_SHM_URL_MAX);
        gr_shm_seq_copy_out(s->config_path, h->config_path, GR_SHM_URL_MAX);
        gr_shm_seq_copy_out(s->last_reload_error, h->last_reload_error,
                            GR_SHM_ERR_MAX);
        if (gr_shm_seq_read_ok((_Atomic uint32_t *)&h->text_seq, q))
            break;
    }
    s->base_url[GR_SHM_URL_MAX - 1] = '\0';
    s->config_path[GR_SHM_URL_MAX - 1] = '\0';
    s->last_reload_error[GR_SHM_ERR_MAX - 1] = '\0';
}

static void
copy_models(const struct gr_shm *t, struct gr_snap *s)
{
    /* relaxed: clamped below; names are read under models_seq */
    uint32_t n = atomic_load_explicit(&t->hdr->n_models,
                                      memory_order_relaxed), m;
    int tries;

    if (n > t->max_models)
        n = t->max_models;
    if (n > GR_SHM_MAX_MODELS)
        n = GR_SHM_MAX_MODELS;
    s->n_models = n;
    for (tries = 0; tries < GR_SEQ_TRIES; tries++) {
        uint32_t q = gr_shm_seq_read_begin(
            (_Atomic uint32_t *)&t->hdr->models_seq);

        for (m = 0; m < n; m++)
            gr_shm_seq_copy_out(s->models[m].name, t->models[m].name,
                                GR_SHM_NAME_MAX);
        if (gr_shm_seq_read_ok((_Atomic uint32_t *)&t->hdr->models_seq, q))
            break;
    }
    for (m = 0; m < n; m++)
        s->models[m].name[GR_SHM_NAME_MAX - 1] = '\0';
}

/* The pool of each model: what the cells that take calls can still
 * admit, over what the cells in rotation could. */
static void
pool(struct gr_snap *s)
{
    unsigned i, d;

    for (i = 0; i < s->n_cells; i++) {
        const struct gr_snap_cell *c = &s->cells[i];
        struct gr_snap_model *m = &s->models[c->model_index];
        bool in_pool = strcmp(c->health, "disabled") != 0 &&
                       strcmp(c->health, "draining") != 0;
        bool open = strcmp(c->health, "healthy") == 0;

        if (!in_pool)
            continue;
        for (d = 0; d < GR_NDIM; d++) {
            if (c->limit[d] < 0) {
                m->unlimited[d] = true;
            } else {
                m->capacity[d] += c->limit[d];
                if (open && c->limit[d] > c->used[d])
                    m->room[d] += c->limit[d] - c->used[d];
            }
        }
    }
}

/* A project's state for the summary line, from its cells. */
static void
judge_project(struct gr_snap *s, struct gr_snap_project *sp,
              uint32_t pflags, unsigned first, unsigned last)
{
    unsigned i, n_dis = 0, n_drain = 0, n_cool = 0;

    for (i = first; i < last; i++) {
        const char *h = s->cells[i].health;

        n_dis += strcmp(h, "disabled") == 0;
        n_drain += strcmp(h, "draining") == 0;
        n_cool += strcmp(h, "cooling") == 0 || strcmp(h, "open") == 0 ||
                  strcmp(h, "half_open") == 0;
    }
    if (sp->auth_failed || sp->op == GR_SNAP_OP_DISABLED ||
        (pflags & GR_PROJ_CFG_DISABLED) ||
        (last > first && n_dis == last - first))
        sp->state = "disabled";
    else if (sp->removing || sp->op == GR_SNAP_OP_DRAINING ||
             (last > first && n_drain > 0 && n_dis + n_drain == last - first))
        sp->state = "draining";
    else if (n_cool > 0)
        sp->state = "cooling";
    else
        sp->state = "healthy";
    s->healthy += strcmp(sp->state, "healthy") == 0;
    s->cooling += strcmp(sp->state, "cooling") == 0;
    s->disabled += strcmp(sp->state, "disabled") == 0;
    s->draining += strcmp(sp->state, "draining") == 0;
}

int
gr_snap_take_at(const struct gr_shm *t, struct gr_snap *s,
                int64_t now_mono_ns, int64_t now_wall_ns)
{
    int32_t today;
    uint32_t slot, m;
    int64_t *fl;

    memset(s, 0, sizeof(*s));
    snprintf(s->shm, sizeof(s->shm), "%s", t->name);
    s->now_wall_s = now_wall_ns / GR_NS_PER_S;
    s->next_rpd_reset_s = gr_shm_next_pacific_midnight(s->now_wall_s);
    today = gr_shm_pacific_day(s->now_wall_s);
    copy_header(t, s, now_mono_ns);
    copy_models(t, s);
    s->cells = calloc((size_t)t->max_projects *
                      (s->n_models ? s->n_models : 1), sizeof(*s->cells));
    s->projects = calloc(t->max_projects, sizeof(*s->projects));
    /* In flight per cell: one pass over the leases for all cells. */
    fl = calloc((size_t)t->max_projects * t->max_models, sizeof(*fl));
    if (s->cells == NULL || s->projects == NULL || fl == NULL) {
        free(fl);
        gr_snap_free(s);
        return -ENOMEM;
    }
    gr_shm_in_flight_all(t, fl);
    for (slot = 0; slot < t->max_projects; slot++) {
        const struct gr_shm_project *p = &t->projects[slot];
        struct gr_snap_project *sp = &s->projects[s->n_projects];
        /* relaxed: a snapshot */
        uint32_t st = atomic_load_explicit(&p->state, memory_order_relaxed);
        uint32_t ph = atomic_load_explicit(&p->health, memory_order_relaxed);
        unsigned first = s->n_cells;
        uint32_t flags;

        if (st != GR_PROJ_ACTIVE && st != GR_PROJ_REMOVING)
            continue;
        memset(sp, 0, sizeof(*sp));
        if (!copy_project(t, slot, sp, &flags)) {
            gr_shm_anomaly(t);
            continue;
        }
        sp->slot = slot;
        sp->removing = st == GR_PROJ_REMOVING;
        sp->config_enabled = !(flags & GR_PROJ_CFG_DISABLED);
        sp->auth_failed = ph & GR_PROJ_AUTH_FAILED;
        sp->op = (ph & GR_PROJ_OP_DISABLED) ? GR_SNAP_OP_DISABLED :
                 (ph & GR_PROJ_OP_DRAINING) ? GR_SNAP_OP_DRAINING :
                 GR_SNAP_OP_NONE;
        for (m = 0; m < s->n_models; m++) {
            struct gr_snap_cell *sc = &s->cells[s->n_cells];
            const struct gr_shm_cell *c = gr_shm_cell(t, slot, m);
            unsigned d;
            bool any = false;

            if (c == NULL)
                continue;
            memset(sc, 0, sizeof(*sc));
            copy_cell(t, c, sc, now_mono_ns, today);
            sc->in_flight = fl[slot * t->max_models + m];
            /* A model this project does not serve has every limit 0. */
            for (d = 0; d < GR_NDIM; d++)
                any |= sc->config_limit[d] != 0;
            if (!any)
                continue;
            memcpy(sc->project, sp->name, sizeof(sc->project));
            memcpy(sc->key_tail, sp->key_tail, sizeof(sc->key_tail));
            memcpy(sc->model, s->models[m].name, sizeof(sc->model));
            sc->slot = slot;
            sc->model_index = m;
            sc->removing = sp->removing;
            sc->project_health = ph;
            judge(sc, flags);
            s->n_cells++;
        }
        judge_project(s, sp, flags, first, s->n_cells);
        s->n_projects++;
    }
    free(fl);
    pool(s);
    return 0;
}

int
gr_snap_take(const struct gr_shm *t, struct gr_snap *s)
{
    return gr_snap_take_at(t, s, gr_shm_now_mono(), gr_shm_now_wall());
}

void
gr_snap_free(struct gr_snap *s)
{
    free(s->cells);
    free(s->projects);
    s->cells = NULL;
    s->projects = NULL;
}

const char *
gr_cli_take_shm(int *argc, char **argv)
{
    const char *name = NULL;
    int i, j;

    for (i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--shm") == 0 && i + 1 < *argc) {
            name = argv[i + 1];
            for (j = i; j + 2 <= *argc; j++)
                argv[j] = argv[j + 2];
            *argc -= 2;
            i--;
        } else if (strncmp(argv[i], "--shm=", 6) == 0) {
            name = argv[i] + 6;
            for (j = i; j + 1 <= *argc; j++)
                argv[j] = argv[j + 1];
            *argc -= 1;
            i--;
        }
    }
    return gr_shm_default_name(name);
}
