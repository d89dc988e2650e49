/*
 * config.c - read a gemroute config file with libconfig, check all of it,
 * and build a struct gr_cfg.
 *
 * The invariant this file protects: gr_cfg_load() returns either a config
 * in which every value has been checked and every key resolved, or no
 * config at all and every error it found, each one line "FILE:LINE: what
 * is wrong".  A half-checked config never reaches the router, so a bad
 * reload cannot change what is running (DESIGN.md, "parse -> validate ->
 * swap").  Checking goes on after an error so that one run of
 * `gemrouted --check` shows everything to fix.
 *
 * libconfig is used only in config/ (STYLE.md: one module per library).
 * Two of its habits are worked around: with libconfig 1.5 (Debian 12) an
 * integer written without an "L" suffix that does not fit in 32 bits
 * silently wraps, which would turn a limit into another, smaller or
 * negative, limit;
 * and it names a setting's file as written in the @include line.  Both
 * are handled in settings.c, which also reads every scalar setting from
 * its section's table (router_settings, project_settings below).
 */
#include "config_priv.h"
#include "gateway_priv.h"
#include "cache_priv.h"
#include "aliases_priv.h"
#include "pricing_priv.h"
#include "settings_priv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MSG_MAX 512
#define SHOWN_MAX 48                /* how much of a value an error echoes */

/* Upper bounds of the geometry: the segment must stay a sane size. */
#define MAX_PROJECTS_LIMIT 65536
#define MAX_MODELS_LIMIT 64
#define MAX_LEASES_LIMIT 65536
#define MAX_CALL_S_LIMIT 86400
#define BATCH_CALLS_LIMIT 1024
#define WINDOW_MS_MIN 10
#define WINDOW_MS_MAX 600000
#define WEIGHT_MAX 1000000
#define CONTROL_PATH_MAX 107         /* sun_path minus its NUL */
#define PRIORITY_ABS_MAX 1000000

/* The aggregates read by hand; scalars go through settings.c. */
enum kind {
    K_GROUP,
    K_LIST,
    K_STRINGS,
};

static const char *const kind_names[] = {
    [K_GROUP] = "a group { ... }",
    [K_LIST] = "a list ( ... )",
    [K_STRINGS] = "an array of strings [ ... ]",
};

static const char *const dim_names[GR_CFG_NDIMS] = {
    [GR_CFG_RPM] = "rpm",
    [GR_CFG_TPM] = "tpm",
    [GR_CFG_RPD] = "rpd",
    [GR_CFG_IPM] = "ipm",
    [GR_CFG_TPD] = "tpd",
};

/* The sections of the file: each read by its own loader below. */
static const struct gr_cfg_setting top_settings[] = {
    GR_CFG_HAND("router", NULL, 0),
    GR_CFG_HAND("models", NULL, 0),
    GR_CFG_HAND("projects", NULL, 0),
    GR_CFG_HAND("gateway", NULL, 0),           /* gateway.c */
    GR_CFG_HAND("cache", NULL, 0),             /* cache.c */
    GR_CFG_HAND("cluster", NULL, 0),           /* cluster.c */
    GR_CFG_HAND("pricing", NULL, 0),           /* pricing.c */
    GR_CFG_HAND("spend", NULL, 0),             /* pricing.c */
    GR_CFG_HAND("aliases", NULL, 0),           /* aliases.c */
    GR_CFG_END,
};

/*
 * The settings of a model, a project and a project's limits: read by
 * hand below (names, keys, limits), or by the table (weight, priority,
 * enabled); every name has a row, so that a typo is an unknown key.
 */
static const struct gr_cfg_setting model_settings[] = {
    GR_CFG_HAND("name", NULL, 0),
    GR_CFG_HAND("rpm", NULL, 0),
    GR_CFG_HAND("tpm", NULL, 0),
    GR_CFG_HAND("rpd", NULL, 0),
    GR_CFG_HAND("ipm", NULL, 0),
    GR_CFG_HAND("tpd", NULL, 0),
    GR_CFG_HAND("batch_tokens", NULL, 0),      /* load_batch_limits() */
    GR_CFG_HAND("batch_jobs", NULL, 0),
    GR_CFG_HAND("fallback", NULL, 0),          /* read by cache.c */
    GR_CFG_HAND("fallback_allow", NULL, 0),    /* read by cache.c */
    GR_CFG_END,
};

#define P struct gr_cfg_project
static const struct gr_cfg_setting project_settings[] = {
    GR_CFG_HAND("name", NULL, 0),
    GR_CFG_HAND("key", NULL, 0),
    GR_CFG_HAND("keys", NULL, 0),
    GR_CFG_UINT(P, weight, 1, WEIGHT_MAX, 1, 0),
    GR_CFG_INT(P, priority, -PRIORITY_ABS_MAX, PRIORITY_ABS_MAX, 0, 0),
    GR_CFG_BOOL(P, enabled, true, 0),
    GR_CFG_HAND("limits", NULL, 0),
    GR_CFG_END,
};
#undef P

static const struct gr_cfg_setting override_settings[] = {
    GR_CFG_HAND("model", NULL, 0),
    GR_CFG_HAND("rpm", NULL, 0),
    GR_CFG_HAND("tpm", NULL, 0),
    GR_CFG_HAND("rpd", NULL, 0),
    GR_CFG_HAND("ipm", NULL, 0),
    GR_CFG_HAND("tpd", NULL, 0),
    GR_CFG_HAND("batch_tokens", NULL, 0),      /* load_batch_limits() */
    GR_CFG_HAND("batch_jobs", NULL, 0),
    GR_CFG_END,
};

/* Where a project's pieces came from, for cross-checks after the loop. */
struct proj_src {
    bool name_ok;
    const config_setting_t *keys[GR_CFG_MAX_KEYS];
    bool resolved[GR_CFG_MAX_KEYS];
    bool in_list[GR_CFG_MAX_KEYS];  /* from keys = [...] rather than key */
};

struct load {
    const char *path;               /* the main file, as the caller gave it */
    char dir[PATH_MAX];             /* its directory */
    struct gr_cfg *cfg;
    struct gr_cfg_errlist el;
    struct gr_cfg_srcs srcs;
    struct gr_cfg_rd rd;            /* the above, for settings.c */
    bool nomem;
    bool bad_max_projects;          /* no too-many check on a bad bound */
    bool bad_max_models;
    bool model_names_ok;            /* else "unknown model" would cascade */
    const config_setting_t **model_groups;
    struct proj_src *psrc;
};

/* Errors. */

static const char *
file_of(const struct load *ld, const config_setting_t *s, char *buf,
        size_t len)
{
    return gr_cfg_file_of(&ld->rd, s, buf, len);
}

static int
line_of(const config_setting_t *s)
{
    return gr_cfg_line_of(s);
}

static void err_at(struct load *ld, const config_setting_t *s,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
err_at(struct load *ld, const config_setting_t *s, const char *fmt, ...)
{
    char msg[MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gr_cfg_err_at(&ld->rd, s, "%s", msg);
}

/* Typed access to settings.  Each reports its own error. */

static bool
is_kind(const config_setting_t *s, enum kind k)
{
    int t = config_setting_type(s);

    switch (k) {
    case K_GROUP:
        return t == CONFIG_TYPE_GROUP;
    case K_LIST:
        return t == CONFIG_TYPE_LIST;
    case K_STRINGS:
        return t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST;
    }
    return false;
}

/* what: "'rpm' in model 'x'", "model #2", ... */
static bool
want(struct load *ld, const config_setting_t *s, enum kind k,
     const char *what)
{
    if (is_kind(s, k))
        return true;
    err_at(ld, s, "wrong type for %s: expected %s, found %s", what,
           kind_names[k], gr_cfg_found(s));
    return false;
}

static bool
get_int(struct load *ld, const config_setting_t *s, const char *what,
        int64_t *v)
{
    return gr_cfg_get_int(&ld->rd, s, what, v);
}

static bool
get_str(struct load *ld, const config_setting_t *s, const char *what,
        const char **v)
{
    return gr_cfg_get_string(&ld->rd, s, what, v);
}

/* where: "in model 'x'" */
static bool
get_limit(struct load *ld, const config_setting_t *s, const char *where,
          int64_t *v)
{
    const char *name = config_setting_name(s);
    char what[160];
    int64_t x;

    snprintf(what, sizeof(what), "'%s' %s", name, where);
    if (!get_int(ld, s, what, &x))
        return false;
    if (x < 0) {
        err_at(ld, s, "negative limit '%s' (%lld) %s", name, (long long)x,
               where);
        return false;
    }
    *v = x;
    return true;
}

static const config_setting_t *
member(const config_setting_t *g, const char *name)
{
    return config_setting_get_member(g, name);
}

static bool
name_chars_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if (!(isalnum((unsigned char)*s) || *s == '.' || *s == '-' ||
              *s == '_'))
            return false;
    return true;
}

static bool
text_chars_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/*
 * The name of a model or project.  Names become URL path segments, status
 * labels and `gemroute drain P/M` arguments, hence the small alphabet.
 * where gets "in KIND 'name'" when the name is good, else "in KIND #i".
 */
static bool
load_name(struct load *ld, const config_setting_t *g, const char *kind,
          unsigned i, char *dst, char *where, size_t wlen)
{
    const config_setting_t *s;
    char what[96], shown[SHOWN_MAX];
    const char *v;

    snprintf(where, wlen, "in %s #%u", kind, i + 1);
    s = member(g, "name");
    if (s == NULL) {
        err_at(ld, g, "missing name %s", where);
        return false;
    }
    snprintf(what, sizeof(what), "'name' %s", where);
    if (!get_str(ld, s, what, &v))
        return false;
    if (v[0] == '\0') {
        err_at(ld, s, "empty name %s", where);
        return false;
    }
    if (strlen(v) >= GR_CFG_NAME_MAX) {
        err_at(ld, s, "name longer than %d characters %s",
               GR_CFG_NAME_MAX - 1, where);
        return false;
    }
    if (!name_chars_ok(v)) {
        err_at(ld, s, "bad name \"%s\" %s: use letters, digits, '.', '-' "
               "and '_'", gr_cfg_shown(v, shown, sizeof(shown)), where);
        return false;
    }
    strcpy(dst, v);
    snprintf(where, wlen, "in %s '%s'", kind, v);
    return true;
}

/* Duplicates: first[k] = the first k' <= k with strs[k'] equal, else k. */

struct dup_ent {
    const char *s;
    unsigned pos;
};

static int
dup_cmp(const void *a, const void *b)
{
    const struct dup_ent *x = a, *y = b;
    int c = strcmp(x->s, y->s);

    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sorting keeps this O(n log n) with 65536 projects of 8 keys. */
static int
find_dups(const char *const *strs, unsigned n, unsigned *first)
{
    struct dup_ent *ents;
    unsigned i, m = 0, run = 0;

    for (i = 0; i < n; i++)
        first[i] = i;
    ents = malloc((n ? n : 1) * sizeof(*ents));
    if (ents == NULL)
        return -ENOMEM;
    for (i = 0; i < n; i++)
        if (strs[i] != NULL)
            ents[m++] = (struct dup_ent){strs[i], i};
    qsort(ents, m, sizeof(*ents), dup_cmp);
    for (i = 1; i < m; i++) {
        if (strcmp(ents[i].s, ents[run].s) == 0)
            first[ents[i].pos] = ents[run].pos;
        else
            run = i;
    }
    free(ents);
    return 0;
}

/* The router group. */

/* router.shm: a POSIX shm name. */
static bool
check_shm(struct gr_cfg_rd *rd, const void *s,
          const struct gr_cfg_setting *row, const char *what,
          const char *label, const char *v, void *base)
{
    char shown[SHOWN_MAX];

    (void)row;
    (void)what;
    (void)base;
    if (v[0] != '/' || v[1] == '\0' || strchr(v + 1, '/') != NULL) {
        gr_cfg_err_at(rd, s, "%s must be '/' followed by a name without "
                      "'/' (found \"%s\")", label,
                      gr_cfg_shown(v, shown, sizeof(shown)));
        return false;
    }
    return true;
}

/* router.mode: a string, since libconfig has no octal integers. */
static bool
read_mode(struct gr_cfg_rd *rd, const void *s,
          const struct gr_cfg_setting *row, const char *what,
          const char *label, const char *unused, void *base)
{
    struct gr_cfg_router *r = base;
    char shown[SHOWN_MAX];
    unsigned long mode = 0;
    const char *v, *p;

    (void)row;
    (void)unused;
    if (!gr_cfg_get_string(rd, s, what, &v))
        return false;
    for (p = v; *p >= '0' && *p <= '7' && p - v < 5; p++)
        mode = mode * 8 + (unsigned long)(*p - '0');
    if (p == v || *p != '\0' || (mode != 0600 && mode != 0660)) {
        gr_cfg_err_at(rd, s, "%s must be \"0600\" or \"0660\" (found "
                      "\"%s\")", label,
                      gr_cfg_shown(v, shown, sizeof(shown)));
        return false;
    }
    r->mode = (unsigned)mode;
    return true;
}

/* router.base_url: kept without its trailing '/'. */
static bool
read_base_url(struct gr_cfg_rd *rd, const void *s,
              const struct gr_cfg_setting *row, const char *what,
              const char *label, const char *unused, void *base)
{
    struct gr_cfg_router *r = base;
    char shown[SHOWN_MAX];
    const char *v, *host;
    size_t n;

    (void)row;
    (void)unused;
    if (!gr_cfg_get_string(rd, s, what, &v))
        return false;
    gr_cfg_shown(v, shown, sizeof(shown));
    if (strncasecmp(v, "https://", 8) == 0)
        host = v + 8;
    else if (strncasecmp(v, "http://", 7) == 0)
        host = v + 7;
    else {
        gr_cfg_err_at(rd, s, "%s must start with http:// or https:// "
                      "(found \"%s\")", label, shown);
        return false;
    }
    if (!text_chars_ok(v)) {
        gr_cfg_err_at(rd, s, "%s holds a space or control character",
                      label);
        return false;
    }
    if (host[0] == '\0' || host[0] == '/') {
        gr_cfg_err_at(rd, s, "%s has no host (found \"%s\")", label,
                      shown);
        return false;
    }
    /* Without its trailing '/': the client appends "/v1beta/...". */
    n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        n--;
    if (n >= sizeof(r->base_url)) {
        gr_cfg_err_at(rd, s, "%s is longer than %zu characters", label,
                      sizeof(r->base_url) - 1);
        return false;
    }
    memcpy(r->base_url, v, n);
    r->base_url[n] = '\0';
    return true;
}

/* router.proxy: a URL that may carry a password, so never echoed. */
static bool
check_proxy(struct gr_cfg_rd *rd, const void *s,
            const struct gr_cfg_setting *row, const char *what,
            const char *label, const char *v, void *base)
{
    (void)what;
    (void)base;
    if (strlen(v) >= row->size) {
        gr_cfg_err_at(rd, s, "%s is longer than %zu characters", label,
                      row->size - 1);
        return false;
    }
    if (!text_chars_ok(v)) {
        gr_cfg_err_at(rd, s, "%s holds a space or control character",
                      label);
        return false;
    }
    return true;
}

static const char *const choices[] = {"p2c", "weighted", "priority", NULL};

/*
 * The router's settings.  GR_CFG_F_RESTART: the segment's name and
 * geometry; a reload that changes one is refused (router/apply.c).
 */
#define R struct gr_cfg_router
static const struct gr_cfg_setting router_settings[] = {
    GR_CFG_STRING(R, shm, "/gemroute", check_shm, GR_CFG_F_RESTART),
    GR_CFG_HANDF("mode", R, mode, 0600, NULL, read_mode, 0),
    GR_CFG_STRING(R, group, NULL, NULL, 0),
    GR_CFG_HANDF("base_url", R, base_url, 0,
                 "https://generativelanguage.googleapis.com", read_base_url,
                 0),
    GR_CFG_DOUBLE(R, headroom, 0.0, 1.0, 0.95, GR_CFG_F_LO_OPEN),
    GR_CFG_UINT(R, max_projects, 1, MAX_PROJECTS_LIMIT, 64,
                GR_CFG_F_RESTART),
    GR_CFG_UINT(R, max_models, 1, MAX_MODELS_LIMIT, 8, GR_CFG_F_RESTART),
    GR_CFG_UINT(R, max_leases, 1, MAX_LEASES_LIMIT, 4096, GR_CFG_F_RESTART),
    GR_CFG_UINT(R, max_call_s, 1, MAX_CALL_S_LIMIT, 600, 0),
    GR_CFG_UINT(R, batch_calls, 1, BATCH_CALLS_LIMIT, 128, 0),
    GR_CFG_BOOL(R, tpm_counts_cached, true, 0),
    GR_CFG_UINT(R, window_ms, WINDOW_MS_MIN, WINDOW_MS_MAX, 60000,
                GR_CFG_F_RESTART),
    GR_CFG_ENUM(R, choice, "p2c", choices, 0),
    GR_CFG_STRING(R, proxy, NULL, check_proxy, 0),
    GR_CFG_PATH(R, state_file, 0, 0),
    GR_CFG_PATH(R, control, CONTROL_PATH_MAX, 0),  /* sun_path */
    GR_CFG_END,
};
#undef R

/* What gr_cfg_settings_read() found of the router's setting name. */
static unsigned char
router_state(const unsigned char *state, const char *name)
{
    const struct gr_cfg_setting *row = gr_cfg_settings_row(router_settings,
                                                           name);

    return row != NULL ? state[row - router_settings] : GR_CFG_ABSENT;
}

static void
load_router(struct load *ld, const config_setting_t *root)
{
    struct gr_cfg_router *r = &ld->cfg->router;
    unsigned char state[sizeof(router_settings) / sizeof(router_settings[0])];
    const config_setting_t *g;
    bool mode_ok, group_ok;

    g = member(root, "router");
    if (g == NULL)
        return;
    if (!want(ld, g, K_GROUP, "'router'")) {
        ld->bad_max_projects = ld->bad_max_models = true;
        return;
    }
    gr_cfg_settings_unknown(&ld->rd, g, router_settings, "in router");
    gr_cfg_settings_read(&ld->rd, g, router_settings, "router", NULL, r,
                         state);
    ld->bad_max_projects = router_state(state, "max_projects") == GR_CFG_BAD;
    ld->bad_max_models = router_state(state, "max_models") == GR_CFG_BAD;

    /* Each of these only when both settings are themselves good. */
    mode_ok = router_state(state, "mode") != GR_CFG_BAD;
    group_ok = router_state(state, "group") != GR_CFG_BAD;
    if (router_state(state, "mode") == GR_CFG_SET && group_ok &&
        r->mode == 0660 && r->group[0] == '\0')
        err_at(ld, member(g, "mode"), "router.mode \"0660\" needs "
               "router.group");
    if (router_state(state, "group") != GR_CFG_ABSENT && mode_ok &&
        r->mode != 0660 && r->group[0] != '\0')
        err_at(ld, member(g, "group"), "router.group is set but "
               "router.mode is not \"0660\"");
}

unsigned
gr_cfg_restart_changes(const struct gr_cfg *old, const struct gr_cfg *cur,
                       char *out, size_t outlen)
{
    if (old == NULL || cur == NULL) {
        if (outlen > 0)
            out[0] = '\0';
        return 0;
    }
    return gr_cfg_settings_changed(router_settings, &old->router,
                                   &cur->router, GR_CFG_F_RESTART, out,
                                   outlen);
}

/*
 * Batch mode's gauges (docs/BATCH.md): batch_tokens (input tokens held
 * by unfinished batch jobs) and batch_jobs (unfinished jobs) of a group;
 * set[] (may be NULL) says which were given.
 */
static void
load_batch_limits(struct load *ld, const config_setting_t *g,
                  const char *where, int64_t v[GR_CFG_NBATCH], bool *set)
{
    static const char *const names[GR_CFG_NBATCH] = {"batch_tokens",
                                                     "batch_jobs"};
    unsigned b;

    for (b = 0; b < GR_CFG_NBATCH; b++) {
        const config_setting_t *s = member(g, names[b]);

        if (s != NULL && get_limit(ld, s, where, &v[b]) && set != NULL)
            set[b] = true;
    }
}

/* Models. */

static bool
load_model(struct load *ld, const config_setting_t *g, unsigned i,
           struct gr_cfg_model *m)
{
    char where[96], what[32];
    bool name_ok;
    unsigned d;

    for (d = 0; d < GR_CFG_NDIMS; d++)
        m->limits[d] = GR_CFG_UNLIMITED;
    for (d = 0; d < GR_CFG_NBATCH; d++)
        m->batch[d] = GR_CFG_UNLIMITED;
    m->line = line_of(g);
    snprintf(what, sizeof(what), "model #%u", i + 1);
    if (!want(ld, g, K_GROUP, what))
        return false;
    name_ok = load_name(ld, g, "model", i, m->name, where, sizeof(where));
    gr_cfg_settings_unknown(&ld->rd, g, model_settings, where);
    for (d = 0; d < GR_CFG_NDIMS; d++) {
        const config_setting_t *s = member(g, dim_names[d]);

        if (s != NULL)
            get_limit(ld, s, where, &m->limits[d]);
    }
    load_batch_limits(ld, g, where, m->batch, NULL);
    return name_ok;
}

static void
load_models(struct load *ld, const config_setting_t *root)
{
    struct gr_cfg *cfg = ld->cfg;
    const config_setting_t *l = member(root, "models");
    const char **names;
    unsigned i, n, *first;
    bool names_ok = true;

    if (l == NULL) {
        gr_cfg_err_add(&ld->el, ld->path, GR_CFG_NO_LINE,
                       "missing 'models' list");
        return;
    }
    if (!want(ld, l, K_LIST, "'models'"))
        return;
    n = (unsigned)config_setting_length(l);
    if (n == 0) {
        err_at(ld, l, "'models' is empty");
        return;
    }
    if (!ld->bad_max_models && n > cfg->router.max_models)
        err_at(ld, l, "too many models: %u, router.max_models is %u", n,
               cfg->router.max_models);
    cfg->models = calloc(n, sizeof(*cfg->models));
    ld->model_groups = calloc(n, sizeof(*ld->model_groups));
    if (cfg->models == NULL || ld->model_groups == NULL) {
        ld->nomem = true;
        return;
    }
    cfg->n_models = n;
    for (i = 0; i < n; i++) {
        ld->model_groups[i] = config_setting_get_elem(l, i);
        if (!load_model(ld, ld->model_groups[i], i, &cfg->models[i]))
            names_ok = false;
    }

    names = calloc(n, sizeof(*names));
    first = calloc(n, sizeof(*first));
    if (names == NULL || first == NULL) {
        ld->nomem = true;
        goto out;
    }
    for (i = 0; i < n; i++)
        names[i] = cfg->models[i].name[0] ? cfg->models[i].name : NULL;
    if (find_dups(names, n, first) < 0) {
        ld->nomem = true;
        goto out;
    }
    for (i = 0; i < n; i++) {
        char buf[PATH_MAX];

        if (first[i] == i)
            continue;
        err_at(ld, member(ld->model_groups[i], "name"),
               "duplicate model '%s' (first at %s:%d)", names[i],
               file_of(ld, ld->model_groups[first[i]], buf, sizeof(buf)),
               line_of(ld->model_groups[first[i]]));
    }
    ld->model_names_ok = names_ok;
out:
    free(names);
    free(first);
}

static int
model_index(const struct gr_cfg *cfg, const char *name)
{
    unsigned i;

    for (i = 0; i < cfg->n_models; i++)
        if (strcmp(cfg->models[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Projects. */

/* An error names the key by project and position, never by its spec. */
static void
resolve_key(struct load *ld, const config_setting_t *s, const char *spec,
            char *out, const char *label, bool *ok)
{
    char why[MSG_MAX - 64];

    *ok = gr_cfg_key_resolve(spec, ld->dir, out, why, sizeof(why)) == 0;
    if (!*ok)
        err_at(ld, s, "%s: %s", label, why);
    else if (strncmp(spec, "env:", 4) != 0 && strncmp(spec, "file:", 5) != 0)
        ld->cfg->n_literal_keys++;  /* the router warns if others can read */
}

static void
load_keys(struct load *ld, const config_setting_t *g,
          struct gr_cfg_project *p, struct proj_src *ps, const char *where)
{
    const config_setting_t *k = member(g, "key"), *ks = member(g, "keys");
    const char *who = where + 3;    /* "project 'x'" */
    char what[128], label[128];
    const char *spec;
    unsigned j, n;

    if (k != NULL && ks != NULL) {
        err_at(ld, ks, "both 'key' and 'keys' %s", where);
        return;
    }
    if (k == NULL && ks == NULL) {
        err_at(ld, g, "no key %s: set 'key' or 'keys'", where);
        return;
    }
    if (k != NULL) {
        snprintf(what, sizeof(what), "'key' %s", where);
        if (!get_str(ld, k, what, &spec))
            return;
        snprintf(label, sizeof(label), "%s: key 1", who);
        ps->keys[0] = k;
        resolve_key(ld, k, spec, p->keys[0], label, &ps->resolved[0]);
        p->n_keys = 1;
        return;
    }
    snprintf(what, sizeof(what), "'keys' %s", where);
    if (!want(ld, ks, K_STRINGS, what))
        return;
    n = (unsigned)config_setting_length(ks);
    if (n == 0) {
        err_at(ld, ks, "'keys' is empty %s", where);
        return;
    }
    if (n > GR_CFG_MAX_KEYS) {
        err_at(ld, ks, "too many keys %s: %u, at most %d", where, n,
               GR_CFG_MAX_KEYS);
        return;
    }
    for (j = 0; j < n; j++) {
        const config_setting_t *e = config_setting_get_elem(ks, j);

        snprintf(what, sizeof(what), "key #%u %s", j + 1, where);
        if (!get_str(ld, e, what, &spec))
            continue;
        snprintf(label, sizeof(label), "%s: key %u", who, j + 1);
        ps->keys[j] = e;
        ps->in_list[j] = true;
        resolve_key(ld, e, spec, p->keys[j], label, &ps->resolved[j]);
    }
    p->n_keys = n;
}

static void
load_overrides(struct load *ld, const config_setting_t *g,
               struct gr_cfg_project *p, const char *where)
{
    const config_setting_t *l = member(g, "limits");
    char what[160], owhere[128], shown[SHOWN_MAX];
    unsigned j, n, d;

    if (l == NULL)
        return;
    snprintf(what, sizeof(what), "'limits' %s", where);
    if (!want(ld, l, K_LIST, what))
        return;
    n = (unsigned)config_setting_length(l);
    if (n == 0)
        return;
    p->overrides = calloc(n, sizeof(*p->overrides));
    if (p->overrides == NULL) {
        ld->nomem = true;
        return;
    }
    snprintf(owhere, sizeof(owhere), "in limits of %s", where + 3);
    for (j = 0; j < n; j++) {
        const config_setting_t *e = config_setting_get_elem(l, j), *ms;
        struct gr_cfg_override *o = &p->overrides[p->n_overrides];
        const char *model = NULL;
        int idx = -1;
        unsigned k;
        bool ok = true;

        snprintf(what, sizeof(what), "limits #%u %s", j + 1, where);
        if (!want(ld, e, K_GROUP, what))
            continue;
        gr_cfg_settings_unknown(&ld->rd, e, override_settings, owhere);
        ms = member(e, "model");
        snprintf(what, sizeof(what), "'model' %s", owhere);
        if (ms == NULL) {
            err_at(ld, e, "missing model %s", owhere);
            ok = false;
        } else if (!get_str(ld, ms, what, &model)) {
            ok = false;
        } else if ((idx = model_index(ld->cfg, model)) < 0) {
            if (ld->model_names_ok)
                err_at(ld, ms, "unknown model '%s' %s",
                       gr_cfg_shown(model, shown, sizeof(shown)), owhere);
            ok = false;
        } else {
            for (k = 0; k < p->n_overrides; k++)
                if (p->overrides[k].model_index == (unsigned)idx)
                    break;
            if (k < p->n_overrides) {
                err_at(ld, ms, "duplicate limits for model '%s' %s", model,
                       where);
                ok = false;
            }
        }
        for (d = 0; d < GR_CFG_NDIMS; d++) {
            const config_setting_t *s = member(e, dim_names[d]);

            if (s != NULL && get_limit(ld, s, owhere, &o->limits[d]))
                o->set[d] = true;
        }
        load_batch_limits(ld, e, owhere, o->batch, o->batch_set);
        if (!ok) {
            memset(o, 0, sizeof(*o));
            continue;
        }
        strcpy(o->model, model);
        o->model_index = (unsigned)idx;
        o->line = line_of(e);
        p->n_overrides++;
    }
}

static void
load_project(struct load *ld, const config_setting_t *g, unsigned i,
             struct gr_cfg_project *p, struct proj_src *ps)
{
    char where[96], what[128];

    gr_cfg_settings_defaults(project_settings, p);
    p->line = line_of(g);
    snprintf(what, sizeof(what), "project #%u", i + 1);
    if (!want(ld, g, K_GROUP, what))
        return;
    ps->name_ok = load_name(ld, g, "project", i, p->name, where,
                            sizeof(where));
    gr_cfg_settings_unknown(&ld->rd, g, project_settings, where);
    load_keys(ld, g, p, ps, where);
    gr_cfg_settings_read(&ld->rd, g, project_settings, NULL, where, p,
                         NULL);
    load_overrides(ld, g, p, where);
}

static void
key_label(const struct gr_cfg_project *p, const struct proj_src *ps,
          unsigned j, char *out, size_t len)
{
    if (ps->in_list[j])
        snprintf(out, len, "key %u of project '%s'", j + 1, p->name);
    else
        snprintf(out, len, "key of project '%s'", p->name);
}

/*
 * Two entries with one key are one Google project counted twice: gemroute
 * would admit twice its quota.  Only resolved keys of named projects take
 * part; the messages name keys by position, never by value.
 */
static void
check_shared_keys(struct load *ld)
{
    struct gr_cfg *cfg = ld->cfg;
    unsigned i, j, k, n = 0, *first = NULL, *proj = NULL, *slot = NULL;
    const char **keys = NULL;

    for (i = 0; i < cfg->n_projects; i++)
        n += cfg->projects[i].n_keys;
    keys = calloc(n ? n : 1, sizeof(*keys));
    first = calloc(n ? n : 1, sizeof(*first));
    proj = calloc(n ? n : 1, sizeof(*proj));
    slot = calloc(n ? n : 1, sizeof(*slot));
    if (keys == NULL || first == NULL || proj == NULL || slot == NULL) {
        ld->nomem = true;
        goto out;
    }
    for (i = 0, k = 0; i < cfg->n_projects; i++) {
        for (j = 0; j < cfg->projects[i].n_keys; j++, k++) {
            const struct proj_src *ps = &ld->psrc[i];

            keys[k] = ps->name_ok && ps->resolved[j]
                      ? cfg->projects[i].keys[j] : NULL;
            proj[k] = i;
            slot[k] = j;
        }
    }
    if (find_dups(keys, n, first) < 0) {
        ld->nomem = true;
        goto out;
    }
    for (k = 0; k < n; k++) {
        char a[128], b[128];
        unsigned f = first[k];

        if (f == k)
            continue;
        key_label(&cfg->projects[proj[k]], &ld->psrc[proj[k]], slot[k], a,
                  sizeof(a));
        key_label(&cfg->projects[proj[f]], &ld->psrc[proj[f]], slot[f], b,
                  sizeof(b));
        err_at(ld, ld->psrc[proj[k]].keys[slot[k]], "%s is the same as %s",
               a, b);
    }
out:
    free(keys);
    free(first);
    free(proj);
    free(slot);
}

static void
load_projects(struct load *ld, const config_setting_t *root)
{
    struct gr_cfg *cfg = ld->cfg;
    const config_setting_t *l = member(root, "projects");
    const char **names = NULL;
    unsigned i, n, *first = NULL;

    if (l == NULL) {
        gr_cfg_err_add(&ld->el, ld->path, GR_CFG_NO_LINE,
                       "missing 'projects' list");
        return;
    }
    if (!want(ld, l, K_LIST, "'projects'"))
        return;
    n = (unsigned)config_setting_length(l);
    if (n == 0) {
        err_at(ld, l, "'projects' is empty");
        return;
    }
    if (!ld->bad_max_projects && n > cfg->router.max_projects)
        err_at(ld, l, "too many projects: %u, router.max_projects is %u", n,
               cfg->router.max_projects);
    cfg->projects = calloc(n, sizeof(*cfg->projects));
    ld->psrc = calloc(n, sizeof(*ld->psrc));
    if (cfg->projects == NULL || ld->psrc == NULL) {
        ld->nomem = true;
        return;
    }
    cfg->n_projects = n;
    for (i = 0; i < n; i++)
        load_project(ld, config_setting_get_elem(l, i), i, &cfg->projects[i],
                     &ld->psrc[i]);

    names = calloc(n, sizeof(*names));
    first = calloc(n, sizeof(*first));
    if (names == NULL || first == NULL) {
        ld->nomem = true;
        goto out;
    }
    for (i = 0; i < n; i++)
        names[i] = ld->psrc[i].name_ok ? cfg->projects[i].name : NULL;
    if (find_dups(names, n, first) < 0) {
        ld->nomem = true;
        goto out;
    }
    for (i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(l, i);
        const config_setting_t *f = config_setting_get_elem(l, first[i]);
        char buf[PATH_MAX];

        if (first[i] == i)
            continue;
        err_at(ld, member(g, "name"), "duplicate project '%s' (first at "
               "%s:%d)", names[i], file_of(ld, f, buf, sizeof(buf)),
               line_of(f));
    }
    check_shared_keys(ld);
out:
    free(names);
    free(first);
}

/* The whole file. */

static void
check_top(struct load *ld, const config_setting_t *root)
{
    gr_cfg_settings_unknown(&ld->rd, root, top_settings, "at the top level");
}

static void
wipe_string(const config_setting_t *s)
{
    char *v;

    if (s == NULL || config_setting_type(s) != CONFIG_TYPE_STRING)
        return;
    /* libconfig owns this heap copy; it is ours to wipe before it frees.
     * Its getter returns it const; the public struct has it as it is. */
    v = s->value.sval;
    if (v != NULL)
        explicit_bzero(v, strlen(v));
}

/* Literal keys also sit in libconfig's settings: wipe them there too. */
static void
wipe_keys(const config_setting_t *root)
{
    const config_setting_t *l = member(root, "projects");
    int i, j, n;

    if (l == NULL || !config_setting_is_aggregate(l))
        return;
    n = config_setting_length(l);
    for (i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);
        const config_setting_t *ks;

        if (config_setting_type(g) != CONFIG_TYPE_GROUP)
            continue;
        wipe_string(member(g, "key"));
        ks = member(g, "keys");
        if (ks == NULL || !config_setting_is_aggregate(ks))
            continue;
        for (j = 0; j < config_setting_length(ks); j++)
            wipe_string(config_setting_get_elem(ks, (unsigned)j));
    }
}

static int
add_file(struct load *ld, const char *path)
{
    struct gr_cfg *cfg = ld->cfg;
    char **files;
    unsigned i;

    for (i = 0; i < cfg->n_files; i++)
        if (strcmp(cfg->files[i], path) == 0)
            return 0;
    files = realloc(cfg->files, (cfg->n_files + 1) * sizeof(*files));
    if (files == NULL)
        return -ENOMEM;
    cfg->files = files;
    files[cfg->n_files] = strdup(path);
    if (files[cfg->n_files] == NULL)
        return -ENOMEM;
    cfg->n_files++;
    return 0;
}

static int
collect_files(struct load *ld, const config_setting_t *s)
{
    char buf[PATH_MAX];
    int i, n, rc;

    if (config_setting_source_file(s) != NULL) {
        rc = add_file(ld, file_of(ld, s, buf, sizeof(buf)));
        if (rc < 0)
            return rc;
    }
    if (!config_setting_is_aggregate(s))
        return 0;
    n = config_setting_length(s);
    for (i = 0; i < n; i++) {
        rc = collect_files(ld, config_setting_get_elem(s, (unsigned)i));
        if (rc < 0)
            return rc;
    }
    return 0;
}

/*
 * libconfig stops at the first syntax error and gives its file, line and
 * text.  For a missing @include file it does not say which one: take the
 * name from the line and ask the system why it cannot be opened.
 */
static void
report_parse_error(struct load *ld, const config_t *lc)
{
    char buf[PATH_MAX], tried[PATH_MAX], name[PATH_MAX], shown[128];
    const char *file = gr_cfg_file_named(&ld->rd, config_error_file(lc),
                                         buf, sizeof(buf));
    const char *text = config_error_text(lc), *line, *p, *q;
    int lno = config_error_line(lc), fd;
    size_t len;

    if (text == NULL)
        text = "syntax error";
    if (strcmp(text, "cannot open include file") != 0 ||
        (line = gr_cfg_src_line(&ld->srcs, file, lno, &len)) == NULL ||
        (p = memmem(line, len, "@include", 8)) == NULL ||
        (p = memchr(p, '"', len - (size_t)(p - line))) == NULL ||
        (q = memchr(p + 1, '"', len - (size_t)(p + 1 - line))) == NULL ||
        (size_t)(q - p - 1) >= sizeof(name)) {
        gr_cfg_err_add(&ld->el, file, lno, "%s", text);
        return;
    }
    memcpy(name, p + 1, (size_t)(q - p - 1));
    name[q - p - 1] = '\0';
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7
    /* 1.5 puts the include directory in front of an absolute path too. */
    if (name[0] == '/') {
        gr_cfg_err_add(&ld->el, file, lno, "%s '%s': this libconfig takes "
                       "@include paths relative to '%s' only", text,
                       gr_cfg_shown(name, shown, sizeof(shown)), ld->dir);
        return;
    }
#endif
    if (gr_cfg_path_join(ld->dir, name, tried, sizeof(tried)) < 0)
        snprintf(tried, sizeof(tried), "%s", name);
    gr_cfg_shown(tried, shown, sizeof(shown));
    fd = open(tried, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        gr_cfg_err_add(&ld->el, file, lno, "%s '%s': %s", text, shown,
                       strerror(errno));
        return;
    }
    close(fd);
    gr_cfg_err_add(&ld->el, file, lno, "%s '%s'", text, shown);
}

/* errno of open_regular() for a FIFO, a socket or a device. */
#define EFTYPE_NOTREG ENODEV

/*
 * A config file opened for reading, only when it is a regular file.  The
 * open does not block (O_NONBLOCK): a FIFO put where a config file was
 * expected would otherwise wait for a writer forever, and in the router
 * a reload runs on the thread that reaps and sweeps.  Returns the stream
 * or NULL with errno set: EISDIR for a directory, EFTYPE_NOTREG for
 * anything else that is not a regular file.
 */
static FILE *
open_regular(const char *path)
{
    struct stat st;
    FILE *f;
    int fd, e;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) < 0) {
        e = errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        e = S_ISDIR(st.st_mode) ? EISDIR : EFTYPE_NOTREG;
        goto fail;
    }
    f = fdopen(fd, "r");
    if (f != NULL)
        return f;
    e = errno;
fail:
    close(fd);
    errno = e;
    return NULL;
}

/* errno of opening path, so a missing file gets -ENOENT, not a parse error */
static int
check_readable(const char *path)
{
    FILE *f = open_regular(path);

    if (f == NULL)
        return -errno;
    fclose(f);
    return 0;
}

/* Files text_is_sane() has already looked at in one load. */
struct seen_files {
    unsigned n;
    char path[32][PATH_MAX];
};

/*
 * libconfig 1.5's scanner exit()s the whole process on some bytes it
 * cannot scan (a NUL inside an @include path, found by fuzzing): a bad
 * file must never take the router down, so every file about to be read
 * is checked for NUL bytes first, @included ones too (each file once;
 * only @include directives at the start of a line count, as in
 * libconfig's scanner).  Each must also be a regular file: libconfig
 * opens an @included file with a blocking fopen(), and a FIFO there would
 * hang the load.  (A file swapped for a FIFO between this check and
 * libconfig's open is not caught; that needs a writer of the config
 * directory, who can do worse.)  Returns false with the error recorded.
 */
static bool
text_is_sane(struct load *ld, const char *path, struct seen_files *seen)
{
    size_t cap = 16u << 20, n, dl = strlen(ld->dir);
    char *buf, *nul, *p;
    bool sane = true, full;
    unsigned k;
    FILE *f;

    for (k = 0; k < seen->n; k++)
        if (strcmp(seen->path[k], path) == 0)
            return true;
    full = seen->n == sizeof(seen->path) / sizeof(seen->path[0]);
    if (!full)
        snprintf(seen->path[seen->n++], PATH_MAX, "%s", path);
    f = open_regular(path);
    if (f == NULL && errno == EFTYPE_NOTREG) {
        gr_cfg_err_add(&ld->el, path, GR_CFG_NO_LINE,
                       "not a regular file");
        return false;
    }
    if (f == NULL)
        return true;    /* unreadable: libconfig says so, in its words */
    if (full) {
        /* Past 32 files: still a regular file, but not read through
         * (nothing bounds the work once a cycle cannot be seen). */
        fclose(f);
        return true;
    }
    buf = malloc(cap + 1);
    if (buf == NULL) {
        fclose(f);
        return true;
    }
    n = fread(buf, 1, cap, f);
    fclose(f);
    buf[n] = '\0';
    nul = memchr(buf, '\0', n);
    if (nul != NULL) {
        int line = 1;

        for (p = buf; p < nul; p++)
            line += *p == '\n';
        gr_cfg_err_add(&ld->el, path, line, "a NUL byte: not a text file");
        free(buf);
        return false;
    }
    for (p = buf; sane && p != NULL && *p != '\0'; p = strchr(p, '\n')) {
        char *q, *e, inc[PATH_MAX];
        size_t len;

        while (*p == '\n' || *p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "@include", 8) != 0)
            continue;
        q = strchr(p, '"');
        e = q != NULL ? strchr(q + 1, '"') : NULL;
        if (q == NULL || e == NULL ||
            memchr(p, '\n', (size_t)(e - p)) != NULL)
            continue;
        len = (size_t)(e - q - 1);
        if (dl + 1 + len >= sizeof(inc))
            continue;
#if !(LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7)
        if (q[1] == '/') {          /* taken as it is */
            memcpy(inc, q + 1, len);
            inc[len] = '\0';
            sane = text_is_sane(ld, inc, seen);
            continue;
        }
#endif
        /* 1.5 puts the include directory before an absolute path too. */
        memcpy(inc, ld->dir, dl);
        inc[dl] = '/';
        memcpy(inc + dl + 1, q + 1, len);
        inc[dl + 1 + len] = '\0';
        sane = text_is_sane(ld, inc, seen);
    }
    free(buf);
    return sane;
}

int
gr_cfg_load(const char *path, struct gr_cfg **out,
            struct gr_cfg_errors *errs)
{
    struct gr_cfg_errors local = {0, NULL};
    struct load ld;
    config_t lc;
    config_setting_t *root;
    int rc = 0;

    memset(&ld, 0, sizeof(ld));
    ld.path = path != NULL ? path : "(null)";
    gr_cfg_err_init(&ld.el, errs != NULL ? errs : &local, ld.path);
    ld.rd = (struct gr_cfg_rd){ld.path, ld.dir, &ld.el, &ld.srcs};
    errs = ld.el.errs;
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL) {
        gr_cfg_err_add(&ld.el, ld.path, GR_CFG_NO_LINE, "cannot read: %s",
                       strerror(EINVAL));
        rc = -EINVAL;
        goto done;
    }
    rc = check_readable(path);
    if (rc == -EFTYPE_NOTREG) {
        gr_cfg_err_add(&ld.el, path, GR_CFG_NO_LINE, "not a regular file");
        rc = -EINVAL;
        goto done;
    }
    if (rc == 0 && strlen(path) >= sizeof(ld.cfg->path))
        rc = -ENAMETOOLONG;
    if (rc == 0)
        rc = gr_cfg_path_dir(path, ld.dir, sizeof(ld.dir));
    if (rc < 0) {
        gr_cfg_err_add(&ld.el, path, GR_CFG_NO_LINE, "cannot read: %s",
                       strerror(-rc));
        goto done;
    }
    ld.cfg = calloc(1, sizeof(*ld.cfg));
    if (ld.cfg == NULL) {
        ld.nomem = true;
        goto done;
    }
    strcpy(ld.cfg->path, path);
    gr_cfg_settings_defaults(router_settings, &ld.cfg->router);

    {
        struct seen_files *seen = calloc(1, sizeof(*seen));
        bool sane = seen == NULL || text_is_sane(&ld, path, seen);

        free(seen);
        if (!sane) {
            rc = -EINVAL;
            goto done;
        }
    }
    config_init(&lc);
    /* @include "x" means x next to the main file, wherever we run from. */
    config_set_include_dir(&lc, ld.dir);
    if (!config_read_file(&lc, path)) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO) {
            gr_cfg_err_add(&ld.el, path, GR_CFG_NO_LINE, "cannot read: %s",
                           strerror(EIO));
            rc = -EIO;
        } else {
            report_parse_error(&ld, &lc);
            rc = -EINVAL;
        }
    } else {
        root = config_root_setting(&lc);
        check_top(&ld, root);
        load_router(&ld, root);
        load_models(&ld, root);
        load_projects(&ld, root);
        ld.cfg->gateway = gr_cfg_gateway_load(root, &ld.rd);
        if (ld.cfg->gateway == NULL)
            ld.nomem = true;
        ld.cfg->cache = gr_cfg_cache_load(root, ld.cfg, &ld.rd);
        if (ld.cfg->cache == NULL)
            ld.nomem = true;
        ld.cfg->spend = gr_cfg_spend_load(root, ld.cfg, &ld.rd);
        if (ld.cfg->spend == NULL)
            ld.nomem = true;
        ld.cfg->aliases = gr_cfg_aliases_load(root, ld.cfg, &ld.rd);
        if (ld.cfg->aliases == NULL)
            ld.nomem = true;
        if (member(root, "cluster") != NULL)
            gr_cfg_cluster_load(member(root, "cluster"), &ld.cfg->cluster,
                                &ld.rd);
        if (!ld.nomem && errs->n == 0 && collect_files(&ld, root) < 0)
            ld.nomem = true;
    }
    wipe_keys(config_root_setting(&lc));
    config_destroy(&lc);

done:
    gr_cfg_src_free(&ld.srcs);
    free(ld.model_groups);
    free(ld.psrc);
    if (ld.nomem || ld.el.nomem) {
        rc = -ENOMEM;
        gr_cfg_err_add(&ld.el, ld.path, GR_CFG_NO_LINE, "out of memory");
    } else if (rc == 0 && errs->n > 0) {
        rc = -EINVAL;
    }
    gr_cfg_err_done(&ld.el);
    if (rc < 0)
        gr_cfg_free(ld.cfg);
    else
        *out = ld.cfg;
    if (errs == &local)
        gr_cfg_errors_free(&local);
    return rc;
}

void
gr_cfg_free(struct gr_cfg *cfg)
{
    unsigned i;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->n_projects; i++)
        free(cfg->projects[i].overrides);
    if (cfg->projects != NULL) {
        /* Resolved keys live here and nowhere else: wipe, then free. */
        explicit_bzero(cfg->projects,
                       cfg->n_projects * sizeof(*cfg->projects));
        free(cfg->projects);
    }
    free(cfg->models);
    gr_cfg_gateway_free(cfg->gateway);
    gr_cfg_cache_free(cfg->cache);
    gr_cfg_spend_free(cfg->spend);
    gr_cfg_aliases_free(cfg->aliases);
    for (i = 0; i < cfg->n_files; i++)
        free(cfg->files[i]);
    free(cfg->files);
    /* The proxy URL may hold a password. */
    explicit_bzero(cfg, sizeof(*cfg));
    free(cfg);
}

void
gr_cfg_errors_free(struct gr_cfg_errors *errs)
{
    unsigned i;

    if (errs == NULL)
        return;
    for (i = 0; i < errs->n; i++)
        free(errs->lines[i]);
    free(errs->lines);
    errs->lines = NULL;
    errs->n = 0;
}

int64_t
gr_cfg_limit(const struct gr_cfg *cfg, const struct gr_cfg_project *p,
             unsigned model_index, unsigned dim)
{
    unsigned i;

    /* Out of range means a caller bug: admit nothing rather than all. */
    if (cfg == NULL || model_index >= cfg->n_models || dim >= GR_CFG_NDIMS)
        return 0;
    if (p != NULL)
        for (i = 0; i < p->n_overrides; i++)
            if (p->overrides[i].model_index == model_index &&
                p->overrides[i].set[dim])
                return p->overrides[i].limits[dim];
    return cfg->models[model_index].limits[dim];
}

int64_t
gr_cfg_batch_limit(const struct gr_cfg *cfg, const struct gr_cfg_project *p,
                   unsigned model_index, unsigned which)
{
    unsigned i;

    /* Out of range means a caller bug: admit nothing rather than all. */
    if (cfg == NULL || model_index >= cfg->n_models ||
        which >= GR_CFG_NBATCH)
        return 0;
    if (p != NULL)
        for (i = 0; i < p->n_overrides; i++)
            if (p->overrides[i].model_index == model_index &&
                p->overrides[i].batch_set[which])
                return p->overrides[i].batch[which];
    return cfg->models[model_index].batch[which];
}

int
gr_cfg_model_index(const struct gr_cfg *cfg, const char *name)
{
    if (cfg == NULL || name == NULL)
        return -1;
    return model_index(cfg, name);
}

const struct gr_cfg_project *
gr_cfg_project_find(const struct gr_cfg *cfg, const char *name)
{
    unsigned i;

    if (cfg == NULL || name == NULL)
        return NULL;
    for (i = 0; i < cfg->n_projects; i++)
        if (strcmp(cfg->projects[i].name, name) == 0)
            return &cfg->projects[i];
    return NULL;
}
