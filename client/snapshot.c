/*
 * snapshot.c - the read-only snapshot API (include/gemroute_stat.h).
 *
 * Copies the table for display and judges it.  The table is mapped
 * read-only (gr_shm_attach(..., false, ...): O_RDONLY, PROT_READ), so no
 * reader can change it.  Everything read is checked: indices against the
 * mapping's own geometry, strings copied under their seqlocks with the
 * one bounded reader (gr_shm_seq_read()) and cut at their size, enums
 * clamped.  Invariant protected: nothing torn is ever shown - a project
 * slot whose seqlock never settles is skipped and counted (n_torn), torn
 * header text is reported as such (text_ok) and shown as "".  The copy
 * is taken at clock readings the caller may give, and everything the
 * views print (health, reasons, the pool's headroom, the project counts)
 * is decided here, once, so the table, the JSON, the Prometheus output
 * and the gateway's /metrics can never disagree.  Keys never leave this
 * file beyond their last four characters, URLs never with credentials.
 */
#include "gemroute_stat.h"
#include "clock.h"
#include "cluster_view.h"
#include "companion.h"
#include "health.h"
#include "reserve.h"
#include "seqlock.h"
#include "spend.h"
#include "table.h"
#include "window.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert((int)GR_NDIMS == (int)GR_NDIM, "dimensions as in the layout");
_Static_assert(GR_NAME_MAX == GR_SHM_NAME_MAX, "names as in the layout");
_Static_assert(GR_URL_MAX == GR_SHM_URL_MAX, "URLs as in the layout");
_Static_assert(GR_STAT_ERR_MAX == GR_SHM_ERR_MAX, "errors as in the layout");
_Static_assert(GR_STAT_QID_MAX == sizeof(((struct gr_shm_cell *)0)->last_qid),
               "quota ids as in the layout");
_Static_assert(GR_STAT_SOCK_MAX == GR_SHM_SOCK_MAX, "socket path");
_Static_assert(GR_STAT_MAX_MODELS == GR_SHM_MAX_MODELS, "models");

struct gr_stat {
    struct gr_shm t;
    const struct gr_cv_header *view;    /* "<shm>.cluster", or NULL */
    void *view_map;                     /* the same, as mmap() gave it */
    size_t view_size;
};

static void view_open(struct gr_stat *st);

static const char *dim_names[GR_NDIM] = {"rpm", "tpm", "rpd", "ipm", "tpd"};

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

void
gr_stat_num(int64_t v, char *buf, size_t n)
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

struct project_copy {
    const struct gr_shm *t;
    const struct gr_shm_project *p;
    uint32_t slot;
    struct gr_stat_project *sp;
    char key[GR_SHM_KEY_MAX];
    uint32_t flags;
};

static void
project_copy(void *arg)
{
    struct project_copy *pc = arg;

    gr_shm_seq_copy_out(pc->sp->name, pc->p->name, GR_SHM_NAME_MAX);
    gr_shm_seq_copy_out(pc->key, gr_shm_key(pc->t, pc->slot, 0),
                        GR_SHM_KEY_MAX);
    /* acquire: under the seqlock (see seqlock.h) */
    pc->flags = __atomic_load_n(&pc->p->flags, __ATOMIC_ACQUIRE);
    pc->sp->n_keys = __atomic_load_n(&pc->p->n_keys, __ATOMIC_ACQUIRE);
}

/* The project's router-written part; false when it never settled (the
 * slot is then skipped and counted as torn). */
static bool
copy_project(const struct gr_shm *t, uint32_t slot, struct gr_stat_project *sp,
             uint32_t *flags)
{
    struct project_copy pc = {.t = t, .p = &t->projects[slot], .slot = slot,
                              .sp = sp};
    bool ok = gr_shm_seq_read(&pc.p->seq, project_copy, &pc);
    size_t n;

    if (ok) {
        sp->name[GR_SHM_NAME_MAX - 1] = '\0';
        pc.key[GR_SHM_KEY_MAX - 1] = '\0';
        n = strlen(pc.key);
        /* Keys are shown as their last 4 characters, never more. */
        snprintf(sp->key_tail, sizeof(sp->key_tail), "...%s",
                 n >= 8 ? pc.key + n - 4 : "");
        if (sp->n_keys > GR_SHM_MAX_KEYS)
            sp->n_keys = GR_SHM_MAX_KEYS;
        *flags = pc.flags;
    }
    explicit_bzero(pc.key, sizeof(pc.key));
    return ok;
}

static void
add_reason(struct gr_stat_cell *sc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add_reason(struct gr_stat_cell *sc, const char *fmt, ...)
{
    va_list ap;

    if (sc->n_reasons >= GR_STAT_REASONS)
        return;
    va_start(ap, fmt);
    vsnprintf(sc->reasons[sc->n_reasons], GR_STAT_REASON_MAX, fmt, ap);
    va_end(ap);
    sc->n_reasons++;
}

/* The cooldown of dimension d, as the operator wants to read it:
 * "rpd until 00:00 PT", "rpm 26s (RetryInfo)". */
static void
cooldown_reason(struct gr_stat_cell *sc, unsigned d)
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
judge(struct gr_stat_cell *sc, const struct gr_stat_project *sp,
      uint32_t pflags, uint32_t ph, uint32_t ch)
{
    bool cooling = false;
    char a[32], b[32];
    unsigned d;

    sc->health = NULL;
    if (ph & GR_PROJ_AUTH_FAILED) {
        /* Every key refused one by one, or Google refused the project
         * (API off, billing off, suspended: issue 16). */
        uint32_t all = sp->n_keys >= 32 ? UINT32_MAX
                                        : (1u << sp->n_keys) - 1u;
        const char *who = all != 0 && sp->keys_refused == all
                              ? (sp->n_keys > 1 ? "keys rejected"
                                                : "key rejected")
                              : "project refused";

        if (sc->last_status > 0)
            add_reason(sc, "%s (HTTP %u)", who, sc->last_status);
        else
            add_reason(sc, "%s", who);
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
        gr_stat_num(sc->learned[d], a, sizeof(a));
        if (sc->config_limit[d] < 0)
            add_reason(sc, "learned %s %s (config none)", dim_names[d], a);
        else {
            gr_stat_num(sc->config_limit[d], b, sizeof(b));
            add_reason(sc, "learned %s %s (config %s)", dim_names[d], a, b);
        }
    }
    snprintf(sc->reason, sizeof(sc->reason), "%s",
             sc->n_reasons > 0 ? sc->reasons[0] : "");
}

/* Seconds until a probe_at_s instant (s CLOCK_MONOTONIC); -1 = none. */
static double
probe_in(uint32_t at_s, int64_t now_mono_ns)
{
    double left;

    if (at_s == 0)
        return -1;
    left = (double)at_s - (double)now_mono_ns / 1e9;
    return left > 0 ? left : 0;
}

/* Refused keys and the next probe, as notes after the other reasons. */
static void
probe_notes(struct gr_stat_cell *sc, const struct gr_stat_project *sp)
{
    char a[32];
    unsigned k;

    if (sp->keys_refused != 0 && !sp->auth_failed) {
        char which[64] = "";
        size_t at = 0;

        for (k = 0; k < 32 && at + 8 < sizeof(which); k++)
            if (sp->keys_refused & (1u << k))
                at += (size_t)snprintf(which + at, sizeof(which) - at,
                                       "%s#%u", at ? "," : "", k + 1);
        add_reason(sc, "key %s of %u refused", which, sp->n_keys);
    }
    if (sc->probe_in_s >= 0) {
        fmt_dur(sc->probe_in_s, a, sizeof(a));
        add_reason(sc, "next probe in %s", a);
    }
}

/* Returns the cell's health bits (GR_CELL_*), for judge(). */
static uint32_t
copy_cell(const struct gr_shm *t, const struct gr_shm_cell *c,
          struct gr_stat_cell *sc, int64_t now_ns, int32_t today)
{
    uint32_t health;
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
    sc->used[GR_D_TPD] = gr_shm_day_used(&c->tday, today);
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
    health = atomic_load_explicit(&c->health, memory_order_relaxed);
    sc->op = (health & GR_CELL_OP_DISABLED) ? GR_STAT_OP_DISABLED :
             (health & GR_CELL_OP_DRAINING) ? GR_STAT_OP_DRAINING :
             GR_STAT_OP_NONE;
    gr_shm_last_qid(c, sc->last_qid, sizeof(sc->last_qid));
    return health;
}

struct text_copy {
    const struct gr_shm_header *h;
    struct gr_stat_router *r;
};

static void
text_copy(void *arg)
{
    struct text_copy *tc = arg;

    gr_shm_seq_copy_out(tc->r->base_url, tc->h->base_url, GR_SHM_URL_MAX);
    gr_shm_seq_copy_out(tc->r->config_path, tc->h->config_path,
                        GR_SHM_URL_MAX);
    gr_shm_seq_copy_out(tc->r->last_reload_error, tc->h->last_reload_error,
                        GR_SHM_ERR_MAX);
    gr_shm_seq_copy_out(tc->r->control_path, tc->h->control_path,
                        GR_SHM_SOCK_MAX);
}

static void
read_router(const struct gr_shm *t, struct gr_stat_router *r, int64_t now_ns)
{
    const struct gr_shm_header *h = t->hdr;
    struct text_copy tc = {.h = h, .r = r};
    char url[GR_URL_MAX];

    memset(r, 0, sizeof(*r));
    /* relaxed, but for the two below: a snapshot for display */
    r->pid = atomic_load_explicit(&h->router_pid, memory_order_relaxed);
    r->alive = gr_shm_router_alive(t);
    r->beat_age_s = (double)(now_ns - atomic_load_explicit(
        &h->router_beat_ns, memory_order_relaxed)) / 1e9;
    if (r->beat_age_s < 0)
        r->beat_age_s = 0;
    /* acquire, this and reloads_failed: pair with the router's release
     * of each (apply.c, main.c), so the text read below is at least as
     * new as the reload they count (`gemroute reload` relies on it) */
    r->config_generation = atomic_load_explicit(&h->config_generation,
                                                memory_order_acquire);
    r->last_reload_wall_s = atomic_load_explicit(
        &h->last_reload_wall_ns, memory_order_relaxed) / GR_NS_PER_S;
    r->last_reload_ok = atomic_load_explicit(&h->last_reload_ok,
                                             memory_order_relaxed) != 0;
    r->reloads_ok = atomic_load_explicit(&h->reloads_ok, memory_order_relaxed);
    r->reloads_failed = atomic_load_explicit(&h->reloads_failed,
                                             memory_order_acquire);
    r->text_ok = gr_shm_seq_read(&h->text_seq, text_copy, &tc);
    if (!r->text_ok) {
        /* Torn: show nothing of it (the views say "torn/unavailable"). */
        r->base_url[0] = r->config_path[0] = '\0';
        r->last_reload_error[0] = r->control_path[0] = '\0';
        return;
    }
    r->base_url[GR_SHM_URL_MAX - 1] = '\0';
    r->config_path[GR_SHM_URL_MAX - 1] = '\0';
    r->last_reload_error[GR_SHM_ERR_MAX - 1] = '\0';
    r->control_path[GR_SHM_SOCK_MAX - 1] = '\0';
    gr_stat_url_safe(r->base_url, url, sizeof(url));
    memcpy(r->base_url, url, sizeof(url));
}

static void
copy_header(const struct gr_shm *t, struct gr_stat_snap *s, int64_t now_ns)
{
    const struct gr_shm_header *h = t->hdr;
    struct gr_stat_router r;

    read_router(t, &r, now_ns);
    s->router_pid = r.pid;
    s->router_alive = r.alive;
    s->router_beat_age_s = r.beat_age_s;
    s->config_generation = r.config_generation;
    s->last_reload_wall_s = r.last_reload_wall_s;
    s->last_reload_ok = r.last_reload_ok;
    s->reloads_ok = r.reloads_ok;
    s->reloads_failed = r.reloads_failed;
    s->text_ok = r.text_ok;
    memcpy(s->base_url, r.base_url, sizeof(s->base_url));
    memcpy(s->config_path, r.config_path, sizeof(s->config_path));
    memcpy(s->last_reload_error, r.last_reload_error,
           sizeof(s->last_reload_error));
    memcpy(s->control_path, r.control_path, sizeof(s->control_path));
    /* relaxed for all: a snapshot for display */
    s->anomalies = atomic_load_explicit(&h->anomalies, memory_order_relaxed);
    s->reaped = atomic_load_explicit(&h->reaped, memory_order_relaxed);
    s->audits = atomic_load_explicit(&h->audits, memory_order_relaxed);
    s->window_s = (double)t->window_ns / 1e9;
}

struct models_copy {
    const struct gr_shm *t;
    struct gr_stat_snap *s;
    struct gr_shm_alias *al;        /* [GR_ALIAS_MAX], or NULL */
};

static void
models_copy(void *arg)
{
    struct models_copy *mc = arg;
    uint32_t m;

    for (m = 0; m < mc->s->n_models; m++)
        gr_shm_seq_copy_out(mc->s->models[m].name, mc->t->models[m].name,
                            GR_SHM_NAME_MAX);
    if (mc->t->aliases != NULL && mc->al != NULL)
        gr_shm_seq_copy_out(mc->al, mc->t->aliases,
                            GR_ALIAS_MAX * sizeof(*mc->al));
}

/* Each model's aliases, from the copy of the table's list. */
static void
copy_aliases(const struct models_copy *mc, struct gr_stat_snap *s)
{
    unsigned i;

    for (i = 0; mc->al != NULL && i < GR_ALIAS_MAX; i++) {
        const struct gr_shm_alias *a = &mc->al[i];
        char *dst;
        size_t len, nl;

        if (a->name[0] == '\0')
            break;
        if (a->model >= s->n_models)
            continue;       /* untrusted: an index out of range */
        dst = s->models[a->model].aliases;
        len = strlen(dst);
        nl = strnlen(a->name, GR_SHM_NAME_MAX - 1);
        if (len + 2 + nl + 4 >= GR_STAT_ALIASES_MAX) {
            if (len + 4 < GR_STAT_ALIASES_MAX && strstr(dst, "...") == NULL)
                memcpy(dst + len, "...", 4);
            continue;
        }
        snprintf(dst + len, GR_STAT_ALIASES_MAX - len, "%s%.*s",
                 len > 0 ? ", " : "", (int)nl, a->name);
    }
}

/* The model names; torn, there are none (and no cell is shown: a cell
 * without its model's name would be a guess). */
static void
copy_models(const struct gr_shm *t, struct gr_stat_snap *s)
{
    /* relaxed: clamped below; names are read under models_seq */
    uint32_t n = atomic_load_explicit(&t->hdr->n_models,
                                      memory_order_relaxed), m;
    /* the aliases on the heap: 8 KiB, and none shown without them */
    struct models_copy mc = {.t = t, .s = s,
                             .al = calloc(GR_ALIAS_MAX,
                                          sizeof(struct gr_shm_alias))};

    if (n > t->max_models)
        n = t->max_models;
    if (n > GR_SHM_MAX_MODELS)
        n = GR_SHM_MAX_MODELS;
    s->n_models = n;
    s->models_ok = gr_shm_seq_read(&t->hdr->models_seq, models_copy, &mc);
    if (!s->models_ok) {
        memset(s->models, 0, sizeof(s->models));
        s->n_models = 0;
        free(mc.al);
        return;
    }
    for (m = 0; m < n; m++) {
        s->models[m].name[GR_SHM_NAME_MAX - 1] = '\0';
        s->models[m].aliases[0] = '\0';
    }
    copy_aliases(&mc, s);
    free(mc.al);
}

/* The pool of each model: what the cells that take calls can still
 * admit, over what the cells in rotation could. */
static void
pool(struct gr_stat_snap *s)
{
    unsigned i, d;

    for (i = 0; i < s->n_cells; i++) {
        const struct gr_stat_cell *c = &s->cells[i];
        struct gr_stat_model *m = &s->models[c->model_index];
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
judge_project(struct gr_stat_snap *s, struct gr_stat_project *sp,
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
    if (sp->auth_failed || sp->op == GR_STAT_OP_DISABLED ||
        (pflags & GR_PROJ_CFG_DISABLED) ||
        (last > first && n_dis == last - first))
        sp->state = "disabled";
    else if (sp->removing || sp->op == GR_STAT_OP_DRAINING ||
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

/* ---- taking the snapshot ---------------------------------------------- */

/* Record r's spend for Pacific day `today`, when spend is counted. */
static void
take_spend(const struct gr_shm *t, const struct gr_shm_spend *r,
           int32_t today, struct gr_stat_spend *out)
{
    memset(out, 0, sizeof(*out));
    /* relaxed for all: a snapshot */
    if (r == NULL ||
        atomic_load_explicit(&t->hdr->spend_on, memory_order_relaxed) == 0)
        return;
    out->counted = true;
    out->day = gr_shm_spend_used(&r->day, today);
    out->month = gr_shm_spend_used(&r->month, gr_shm_month_of_day(today));
    out->cap_day = atomic_load_explicit(&r->cap_day, memory_order_relaxed);
    out->cap_month = atomic_load_explicit(&r->cap_month,
                                          memory_order_relaxed);
    if (out->cap_day < 0)
        out->cap_day = 0;
    if (out->cap_month < 0)
        out->cap_month = 0;
    out->refused = atomic_load_explicit(&r->refused, memory_order_relaxed);
}

enum gr_err
gr_stat_take_at(const struct gr_stat *st, struct gr_stat_snap *s,
                int64_t now_mono_ns, int64_t now_wall_ns)
{
    const struct gr_shm *t = &st->t;
    int32_t today;
    uint32_t slot, m;
    int64_t *fl;

    memset(s, 0, sizeof(*s));
    snprintf(s->shm, sizeof(s->shm), "%s", t->name);
    s->now_wall_s = now_wall_ns / GR_NS_PER_S;
    today = gr_shm_pacific_day_in(t->hdr, s->now_wall_s,
                                  &s->next_rpd_reset_s, NULL);
    copy_header(t, s, now_mono_ns);
    copy_models(t, s);
    s->cells = calloc((size_t)t->max_projects *
                      (s->n_models ? s->n_models : 1), sizeof(*s->cells));
    s->projects = calloc(t->max_projects, sizeof(*s->projects));
    /* In flight per cell: one pass over the leases for all cells. */
    fl = calloc((size_t)t->max_projects * t->max_models, sizeof(*fl));
    if (s->cells == NULL || s->projects == NULL || fl == NULL) {
        free(fl);
        gr_stat_free(s);
        return GR_ENOMEM;
    }
    gr_shm_in_flight_all(t, fl);
    for (slot = 0; slot < t->max_projects; slot++) {
        const struct gr_shm_project *p = &t->projects[slot];
        struct gr_stat_project *sp = &s->projects[s->n_projects];
        /* relaxed: a snapshot */
        uint32_t state = atomic_load_explicit(&p->state, memory_order_relaxed);
        uint32_t ph = atomic_load_explicit(&p->health, memory_order_relaxed);
        unsigned first = s->n_cells;
        uint32_t flags = 0;

        if (state != GR_PROJ_ACTIVE && state != GR_PROJ_REMOVING)
            continue;
        memset(sp, 0, sizeof(*sp));
        if (!copy_project(t, slot, sp, &flags)) {
            memset(sp, 0, sizeof(*sp));
            s->n_torn++;
            continue;
        }
        sp->slot = slot;
        sp->removing = state == GR_PROJ_REMOVING;
        sp->config_enabled = !(flags & GR_PROJ_CFG_DISABLED);
        sp->auth_failed = ph & GR_PROJ_AUTH_FAILED;
        /* relaxed: a snapshot; range-checked against n_keys */
        sp->keys_refused = atomic_load_explicit(&p->key_bad,
                                                memory_order_relaxed) &
                           ((sp->n_keys >= 32 ? 0u : 1u << sp->n_keys) - 1u);
        sp->probe_in_s = probe_in(atomic_load_explicit(
                                      &p->probe_at_s, memory_order_relaxed),
                                  now_mono_ns);
        take_spend(t, t->spend != NULL ? &t->spend[slot] : NULL, today,
                   &sp->spend);
        sp->op = (ph & GR_PROJ_OP_DISABLED) ? GR_STAT_OP_DISABLED :
                 (ph & GR_PROJ_OP_DRAINING) ? GR_STAT_OP_DRAINING :
                 GR_STAT_OP_NONE;
        for (m = 0; m < s->n_models; m++) {
            struct gr_stat_cell *sc = &s->cells[s->n_cells];
            const struct gr_shm_cell *c = gr_shm_cell(t, slot, m);
            uint32_t ch;
            unsigned d;
            bool any = false;

            if (c == NULL)
                continue;
            memset(sc, 0, sizeof(*sc));
            ch = copy_cell(t, c, sc, now_mono_ns, today);
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
            judge(sc, sp, flags, ph, ch);
            /* relaxed: a snapshot */
            sc->probe_in_s = probe_in(atomic_load_explicit(
                                          &c->probe_at_s,
                                          memory_order_relaxed),
                                      now_mono_ns);
            if (sc->probe_in_s < 0 && (ph & GR_PROJ_AUTH_FAILED))
                sc->probe_in_s = sp->probe_in_s;
            probe_notes(sc, sp);
            s->n_cells++;
        }
        judge_project(s, sp, flags, first, s->n_cells);
        s->n_projects++;
    }
    free(fl);
    pool(s);
    (void)gr_stat_extras(st, &s->extras);
    take_spend(t, t->spend != NULL ? &t->spend[t->max_projects] : NULL,
               today, &s->spend_pool);
    return GR_OK;
}

enum gr_err
gr_stat_take(const struct gr_stat *st, struct gr_stat_snap *s)
{
    return gr_stat_take_at(st, s, gr_shm_now_mono(), gr_shm_now_wall());
}

void
gr_stat_free(struct gr_stat_snap *s)
{
    free(s->cells);
    free(s->projects);
    s->cells = NULL;
    s->projects = NULL;
}

/* ---- the handle ------------------------------------------------------- */

struct gr_stat *
gr_stat_open(const char *shm, char *err, size_t errlen)
{
    struct gr_stat *st = calloc(1, sizeof(*st));

    if (st == NULL) {
        snprintf(err, errlen, "gemroute: out of memory");
        return NULL;
    }
    /* Read-only: O_RDONLY and PROT_READ (table.c). */
    if (gr_shm_attach(shm, false, &st->t, err, errlen) != 0) {
        free(st);
        return NULL;
    }
    view_open(st);
    return st;
}

/* ---- a clustered router's view (shm/cluster_view.h) -------------------- */

/* Map "<shm>.cluster" read-only if it is there and fits this table. */
static void
view_open(struct gr_stat *st)
{
    char name[GR_SHM_NAME_MAX + 16];
    size_t size = sizeof(struct gr_cv_header) +
                  (size_t)st->t.max_projects * st->t.max_models *
                      sizeof(struct gr_cv_cell);
    const struct gr_cv_header *h;
    struct gr_shm_comp c;
    void *p;

    if (gr_shm_comp_name(st->t.name, GR_CV_SUFFIX, name, sizeof(name)) != 0 ||
        gr_shm_comp_map(name, false, size, "cluster view", &c, NULL, 0) != 0)
        return;
    if (c.size != size) {
        gr_shm_comp_unmap(&c);
        return;
    }
    p = c.base;
    h = p;
    /* acquire: pairs with the router's release of the magic */
    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != GR_CV_MAGIC ||
        h->version != GR_CV_VERSION ||
        h->ncells != st->t.max_projects * st->t.max_models) {
        munmap(p, size);
        return;
    }
    st->view = h;
    st->view_map = p;
    st->view_size = size;
}

struct view_copy {
    const struct gr_cv_cell *src;
    struct gr_cv_cell *dst;
};

static void
copy_view_cell(void *arg)
{
    struct view_copy *vc = arg;

    gr_shm_seq_copy_out(vc->dst, vc->src, sizeof(*vc->dst));
}

unsigned
gr_stat_cluster(const struct gr_stat *st, uint32_t slot, uint32_t model,
                struct gr_stat_node *out, unsigned max)
{
    struct gr_cv_cell copy;
    struct view_copy vc;
    char self[GR_SHM_NAME_MAX];
    unsigned k, d, n;

    if (st == NULL || st->view == NULL || slot >= st->t.max_projects ||
        model >= st->t.max_models)
        return 0;
    vc.src = (const struct gr_cv_cell *)(st->view + 1) +
             (size_t)slot * st->t.max_models + model;
    vc.dst = &copy;
    if (!gr_shm_seq_read(&vc.src->seq, copy_view_cell, &vc))
        return 0;
    gr_shm_seq_copy_str(self, st->view->node, sizeof(self));
    n = copy.n < GR_CV_NODES ? copy.n : GR_CV_NODES;
    if (n > max)
        n = max;
    for (k = 0; k < n; k++) {
        memcpy(out[k].name, copy.node[k].name, sizeof(out[k].name));
        out[k].name[sizeof(out[k].name) - 1] = '\0';
        out[k].self = strcmp(out[k].name, self) == 0;
        for (d = 0; d < GR_NDIM; d++) {
            out[k].share[d] = copy.node[k].share[d] < -1
                                  ? -1 : copy.node[k].share[d];
            out[k].used[d] = copy.node[k].used[d] < -1
                                 ? -1 : copy.node[k].used[d];
        }
    }
    return n;
}

void
gr_stat_close(struct gr_stat *st)
{
    if (st == NULL)
        return;
    if (st->view != NULL)
        munmap(st->view_map, st->view_size);
    gr_shm_detach(&st->t);
    free(st);
}

const char *
gr_stat_name(const struct gr_stat *st)
{
    return st->t.name;
}

void
gr_stat_router(const struct gr_stat *st, struct gr_stat_router *r)
{
    read_router(&st->t, r, gr_shm_now_mono());
}

/* ---- URLs as they may be shown ------------------------------------------ */

char *
gr_stat_url_safe(const char *url, char *out, size_t n)
{
    const char *auth, *end, *at = NULL, *p;
    size_t head;

    if (n == 0)
        return out;
    p = strstr(url, "://");
    auth = p != NULL ? p + 3 : url;
    end = auth + strcspn(auth, "/?#");
    /* The last '@' of the authority ends the userinfo (a password may
     * hold an unencoded '@'). */
    for (p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (at == NULL) {
        snprintf(out, n, "%s", url);
        return out;
    }
    head = (size_t)(auth - url);
    snprintf(out, n, "%.*s%s", (int)head, url, at + 1);
    return out;
}

/* ---- the extras: cache counters and fallback pairs ---------------------- */

struct extras_copy {
    const struct gr_shm *t;
    struct gr_stat_extras *out;
    uint32_t flags;
};

/* Under the extras' seqlock: the cache's flags. */
static void
cache_flags_copy(void *arg)
{
    struct extras_copy *ec = arg;

    gr_shm_seq_copy_out(&ec->flags, &ec->t->extra->flags, sizeof(ec->flags));
}

/* Under the models' seqlock: the pairs of models that fell back. */
static void
pairs_copy(void *arg)
{
    struct extras_copy *ec = arg;
    const struct gr_shm *t = ec->t;
    struct gr_stat_extras *out = ec->out;
    struct gr_shm_model m;
    uint32_t n, i, j;

    out->n_pairs = 0;
    /* acquire: stays before the seqlock's re-read (see seqlock.h) */
    n = atomic_load_explicit(&t->hdr->n_models, memory_order_acquire);
    if (n > t->max_models)
        n = t->max_models;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) {
            /* relaxed: a total for display */
            uint64_t v = atomic_load_explicit(
                &t->pairs[(size_t)i * t->max_models + j],
                memory_order_relaxed);
            struct gr_stat_fallback *p;

            if (v == 0 || out->n_pairs >= GR_STAT_MAX_PAIRS)
                continue;
            p = &out->pairs[out->n_pairs++];
            gr_shm_seq_copy_out(&m, &t->models[i], sizeof(m));
            m.name[GR_SHM_NAME_MAX - 1] = '\0';
            memcpy(p->from, m.name, GR_NAME_MAX);
            gr_shm_seq_copy_out(&m, &t->models[j], sizeof(m));
            m.name[GR_SHM_NAME_MAX - 1] = '\0';
            memcpy(p->to, m.name, GR_NAME_MAX);
            p->calls = v;
        }
}

enum gr_err
gr_stat_extras(const struct gr_stat *st, struct gr_stat_extras *out)
{
    const struct gr_shm *t;
    struct extras_copy ec;

    if (st == NULL || out == NULL)
        return GR_EINVAL;
    memset(out, 0, sizeof(*out));
    t = &st->t;
    if (t->extra == NULL)
        return GR_OK;
    out->present = true;
    /* relaxed for the counters: totals for display */
    out->cache_hits = atomic_load_explicit(&t->extra->cache_hits,
                                           memory_order_relaxed);
    out->cache_misses = atomic_load_explicit(&t->extra->cache_misses,
                                             memory_order_relaxed);
    out->cache_stores = atomic_load_explicit(&t->extra->cache_stores,
                                             memory_order_relaxed);
    out->cache_errors = atomic_load_explicit(&t->extra->cache_errors,
                                             memory_order_relaxed);
    out->fallbacks = atomic_load_explicit(&t->extra->fallbacks,
                                          memory_order_relaxed);
    out->fallback_denied = atomic_load_explicit(&t->extra->fallback_denied,
                                                memory_order_relaxed);
    ec.t = t;
    ec.out = out;
    ec.flags = 0;
    out->cache_on = gr_shm_seq_read(&t->extra->seq, cache_flags_copy, &ec) &&
                    (ec.flags & GR_CACHE_ON) != 0;
    if (gr_shm_seq_read(&t->hdr->models_seq, pairs_copy, &ec))
        return GR_OK;
    out->n_pairs = 0;
    return GR_ESHM;
}
