/*
 * mock_config.c - read gemroute-mock's libconfig file into a checked
 * struct gr_mock_config.
 *
 * Invariant protected: the mock starts only from a config that is whole
 * and valid (every name legal and unique, every key owned by exactly one
 * project, every limit and probability in range), and a bad file is
 * reported as "FILE:LINE: what is wrong" without ever printing a key.
 * This is the only file of the mock that includes libconfig.h.
 */
#include "mock_config.h"

#include "files.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct loader {
    const char *path;
    char dir[4096]; /* the config's folder, for file: keys */
    char *err;
    size_t errlen;
};

static const char *const tier_names[] = {"FreeTier", "PaidTier1", "PaidTier2",
                                         "PaidTier3"};

static const char *const state_names[GR_MOCK_KEY_STATES] = {
    "ok", "invalid", "leaked", "service_disabled", "suspended",
    "billing_disabled",
};

static const char *const dim_names[GR_MOCK_NDIMS] = {"rpm", "tpm", "rpd",
                                                     "ipm", "tpd"};

const char *
gr_mock_tier_name(enum gr_mock_tier tier)
{
    return (unsigned)tier < 4 ? tier_names[tier] : "FreeTier";
}

const char *
gr_mock_dim_name(enum gr_mock_dim dim)
{
    return (unsigned)dim < GR_MOCK_NDIMS ? dim_names[dim] : "?";
}

const char *
gr_mock_key_state_name(enum gr_mock_key_state st)
{
    return (unsigned)st < 3 ? state_names[st] : "?";
}

/* Record "FILE:LINE: message" once (the first error is the one to fix). */
static int
fail(struct loader *ld, const config_setting_t *at, const char *fmt, ...)
{
    const char *file = NULL;
    unsigned line = 1;
    char msg[512];
    va_list ap;

    if (at != NULL) {
        file = config_setting_source_file(at);
        line = config_setting_source_line(at);
        if (line == 0)
            line = 1;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%u: %s", file != NULL ? file : ld->path,
             line, msg);
    return -EINVAL;
}

/* Names go into JSON, URLs and logs unescaped, so keep them plain. */
static int
valid_name(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n >= GR_MOCK_NAME_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* A key must fit in an HTTP header and a query string as it is. */
static int
valid_key(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n >= GR_MOCK_KEY_MAX)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= 0x20 || c >= 0x7f || c == '&' || c == '#' || c == '%')
            return 0;
    }
    return 1;
}

/* Refuse settings we do not know: a typo like "rmp" must not pass. */
static int
check_known(struct loader *ld, const config_setting_t *group,
            const char *const *known, const char *where)
{
    int i, n = config_setting_length(group);

    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, i);
        const char *name = config_setting_name(s);
        const char *const *k;

        for (k = known; *k != NULL; k++)
            if (name != NULL && strcmp(name, *k) == 0)
                break;
        if (*k == NULL)
            return fail(ld, s, "unknown setting \"%s\" in %s",
                        name != NULL ? name : "?", where);
    }
    return 0;
}

/*
 * libconfig 1.5 (Debian 12) wraps an integer above 2147483647 written
 * without an L suffix to 32 bits, silently.  Read the number back from
 * the file and refuse the value if the two disagree.
 */
static int
check_int_text(struct loader *ld, const config_setting_t *s, long long v)
{
    const char *name = config_setting_name(s);
    const char *file = config_setting_source_file(s);
    unsigned line = config_setting_source_line(s), n = 0;
    char buf[4096], *p;
    size_t nl;
    FILE *f;

    if (name == NULL || line == 0)
        return 0;
    f = fopen(file != NULL ? file : ld->path, "r");
    if (f == NULL)
        return 0;
    while (n < line && fgets(buf, sizeof buf, f) != NULL)
        n++;
    fclose(f);
    if (n != line)
        return 0;
    nl = strlen(name);
    for (p = buf; (p = strstr(p, name)) != NULL; p += nl) {
        char *q = p + nl, *end;
        int base = 10;
        long long t;

        if (p > buf && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        while (*q == ' ' || *q == '\t')
            q++;
        if (*q != '=' && *q != ':')
            continue;
        q++;
        while (*q == ' ' || *q == '\t')
            q++;
        if ((q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) ||
            ((q[0] == '-' || q[0] == '+') && q[1] == '0' &&
             (q[2] == 'x' || q[2] == 'X')))
            base = 16;
        errno = 0;
        t = strtoll(q, &end, base);
        if (end == q)
            continue;
        if (errno == ERANGE || t != v)
            return fail(ld, s,
                        "%s = %.*s does not fit in 32 bits: this libconfig "
                        "needs an L suffix (%.*sL)",
                        name, (int)(end - q), q, (int)(end - q), q);
        return 0;
    }
    return 0;
}

static int
get_int64(struct loader *ld, const config_setting_t *s, const char *what,
          int64_t lo, int64_t hi, int64_t *out)
{
    int t = config_setting_type(s), rc;
    long long v;

    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return fail(ld, s, "%s must be an integer", what);
    v = config_setting_get_int64(s);
    rc = check_int_text(ld, s, v);
    if (rc < 0)
        return rc;
    if (v < lo || v > hi)
        return fail(ld, s, "%s must be between %lld and %lld, not %lld", what,
                    (long long)lo, (long long)hi, v);
    *out = v;
    return 0;
}

static int
get_prob(struct loader *ld, const config_setting_t *s, const char *what,
         double *out)
{
    int t = config_setting_type(s);
    double v;

    if (t == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        v = (double)config_setting_get_int64(s);
    else
        return fail(ld, s, "%s must be a number", what);
    if (!(v >= 0.0 && v <= 1.0))
        return fail(ld, s, "%s must be between 0 and 1", what);
    *out = v;
    return 0;
}

static int
get_string(struct loader *ld, const config_setting_t *s, const char *what,
           const char **out)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return fail(ld, s, "%s must be a string", what);
    *out = config_setting_get_string(s);
    return 0;
}

/* Read a file: key.  Trailing newlines and spaces are not part of it. */
static int
read_key_file(struct loader *ld, const config_setting_t *at, const char *path,
              char *out, size_t outlen)
{
    char full[8192];
    FILE *f;
    size_t n;

    if (path[0] == '/')
        snprintf(full, sizeof full, "%s", path);
    else
        snprintf(full, sizeof full, "%s/%s", ld->dir, path);
    f = fopen(full, "r");
    /* Not the path: it may be a key pasted after "file:" by mistake. */
    if (f == NULL)
        return fail(ld, at, "key file: %s", strerror(errno));
    n = fread(out, 1, outlen - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' ||
                     out[n - 1] == ' ' || out[n - 1] == '\t'))
        out[--n] = '\0';
    return 0;
}

static int
resolve_key(struct loader *ld, const config_setting_t *at, const char *spec,
            char **out)
{
    char buf[GR_MOCK_KEY_MAX + 2];
    const char *val = spec;
    int rc;

    if (strncmp(spec, "env:", 4) == 0) {
        val = getenv(spec + 4);
        /* Not the name: it may be a key pasted after "env:" by mistake. */
        if (val == NULL)
            return fail(ld, at, "key env: variable not set");
    } else if (strncmp(spec, "file:", 5) == 0) {
        rc = read_key_file(ld, at, spec + 5, buf, sizeof buf);
        if (rc < 0)
            return rc;
        val = buf;
    }
    if (!valid_key(val))
        return fail(ld, at,
                    "a key must be 1 to %d printable characters "
                    "without spaces, '&', '#' or '%%'",
                    GR_MOCK_KEY_MAX - 1);
    *out = strdup(val);
    if (*out == NULL)
        return fail(ld, at, "out of memory");
    return 0;
}

static int
load_limit(struct loader *ld, const config_setting_t *s,
           struct gr_mock_limit_cfg *lim)
{
    static const char *const known[] = {"model", "rpm", "tpm", "rpd",
                                        "ipm", "tpd", "batch_tokens",
                                        "batch_jobs", NULL};
    static const char *const batch_keys[2] = {"batch_tokens", "batch_jobs"};
    const config_setting_t *m;
    const char *model = "";
    int d, rc;

    if (!config_setting_is_group(s))
        return fail(ld, s,
                    "each limits entry must be a group { model = ...; }");
    rc = check_known(ld, s, known, "limits");
    if (rc < 0)
        return rc;
    m = config_setting_get_member(s, "model");
    if (m == NULL)
        return fail(ld, s, "limits entry without a model");
    rc = get_string(ld, m, "model", &model);
    if (rc < 0)
        return rc;
    if (!valid_name(model))
        return fail(ld, m,
                    "model \"%s\" is not a valid name (letters, digits, "
                    "'.', '_', '-'; at most %d)",
                    model, GR_MOCK_NAME_MAX - 1);
    snprintf(lim->model, sizeof lim->model, "%s", model);
    for (d = 0; d < GR_MOCK_NDIMS; d++) {
        const config_setting_t *v = config_setting_get_member(s, dim_names[d]);

        lim->limit[d] = GR_MOCK_UNLIMITED;
        if (v == NULL)
            continue;
        rc = get_int64(ld, v, dim_names[d], INT64_MIN, INT64_C(1) << 52,
                       &lim->limit[d]);
        if (rc < 0)
            return rc;
        if (lim->limit[d] < 0)
            return fail(ld, v,
                        "%s must be >= 0 (leave it out for no limit), "
                        "not %lld",
                        dim_names[d], (long long)lim->limit[d]);
    }
    for (d = 0; d < 2; d++) {
        const config_setting_t *v = config_setting_get_member(s, batch_keys[d]);
        int64_t *to = d == 0 ? &lim->batch_tokens : &lim->batch_jobs;

        *to = GR_MOCK_UNLIMITED;
        if (v == NULL)
            continue;
        rc = get_int64(ld, v, batch_keys[d], 0, INT64_C(1) << 52, to);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int
lookup_enum(const char *s, const char *const *names, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int
load_project(struct loader *ld, const config_setting_t *s,
             struct gr_mock_project_cfg *p)
{
    static const char *const known[] = {"name",  "keys",   "tier",
                                        "state", "limits", NULL};
    const config_setting_t *v, *keys, *limits;
    const char *str = "";
    size_t i, j;
    int rc, e;

    if (!config_setting_is_group(s))
        return fail(ld, s, "each project must be a group { name = ...; }");
    rc = check_known(ld, s, known, "a project");
    if (rc < 0)
        return rc;
    v = config_setting_get_member(s, "name");
    if (v == NULL)
        return fail(ld, s, "project without a name");
    rc = get_string(ld, v, "name", &str);
    if (rc < 0)
        return rc;
    if (!valid_name(str))
        return fail(ld, v,
                    "project name \"%s\" is not valid (letters, digits, "
                    "'.', '_', '-'; at most %d)",
                    str, GR_MOCK_NAME_MAX - 1);
    snprintf(p->name, sizeof p->name, "%s", str);

    p->tier = GR_MOCK_FREE_TIER;
    v = config_setting_get_member(s, "tier");
    if (v != NULL) {
        rc = get_string(ld, v, "tier", &str);
        if (rc < 0)
            return rc;
        e = lookup_enum(str, tier_names, 4);
        if (e < 0)
            return fail(ld, v,
                        "tier \"%s\" is not one of FreeTier, PaidTier1, "
                        "PaidTier2, PaidTier3",
                        str);
        p->tier = (enum gr_mock_tier)e;
    }
    p->state = GR_MOCK_KEYS_OK;
    v = config_setting_get_member(s, "state");
    if (v != NULL) {
        rc = get_string(ld, v, "state", &str);
        if (rc < 0)
            return rc;
        e = lookup_enum(str, state_names, GR_MOCK_KEY_STATES);
        if (e < 0)
            return fail(ld, v, "state \"%s\" is not one of ok, invalid, "
                        "leaked, service_disabled, suspended, "
                        "billing_disabled", str);
        p->state = (enum gr_mock_key_state)e;
    }

    keys = config_setting_get_member(s, "keys");
    if (keys == NULL ||
        !(config_setting_is_array(keys) || config_setting_is_list(keys)) ||
        config_setting_length(keys) == 0)
        return fail(
            ld, keys != NULL ? keys : s,
            "project %s needs keys = [\"...\", ...] with at least one key",
            p->name);
    p->n_keys = (size_t)config_setting_length(keys);
    p->keys = calloc(p->n_keys, sizeof *p->keys);
    if (p->keys == NULL)
        return fail(ld, keys, "out of memory");
    for (i = 0; i < p->n_keys; i++) {
        v = config_setting_get_elem(keys, (unsigned)i);
        rc = get_string(ld, v, "a key", &str);
        if (rc < 0)
            return rc;
        rc = resolve_key(ld, v, str, &p->keys[i]);
        if (rc < 0)
            return rc;
    }

    limits = config_setting_get_member(s, "limits");
    if (limits == NULL)
        return 0; /* a project with no model at all */
    if (!config_setting_is_list(limits))
        return fail(ld, limits,
                    "limits must be a list ( { model = ...; }, ... )");
    p->n_limits = (size_t)config_setting_length(limits);
    p->limits = calloc(p->n_limits ? p->n_limits : 1, sizeof *p->limits);
    if (p->limits == NULL)
        return fail(ld, limits, "out of memory");
    for (i = 0; i < p->n_limits; i++) {
        v = config_setting_get_elem(limits, (unsigned)i);
        rc = load_limit(ld, v, &p->limits[i]);
        if (rc < 0)
            return rc;
        for (j = 0; j < i; j++)
            if (strcmp(p->limits[j].model, p->limits[i].model) == 0)
                return fail(ld, v, "model %s is listed twice in project %s",
                            p->limits[i].model, p->name);
    }
    return 0;
}

static int
load_faults(struct loader *ld, const config_setting_t *f,
            struct gr_mock_config *cfg)
{
    static const char *const known[] = {"p503", "p500", "latency_ms", NULL};
    const config_setting_t *v;
    int64_t lo, hi;
    int rc;

    if (!config_setting_is_group(f))
        return fail(ld, f, "faults must be a group { p503 = ...; }");
    rc = check_known(ld, f, known, "faults");
    if (rc < 0)
        return rc;
    if ((v = config_setting_get_member(f, "p503")) != NULL &&
        (rc = get_prob(ld, v, "p503", &cfg->p503)) < 0)
        return rc;
    if ((v = config_setting_get_member(f, "p500")) != NULL &&
        (rc = get_prob(ld, v, "p500", &cfg->p500)) < 0)
        return rc;
    if (cfg->p503 + cfg->p500 > 1.0)
        return fail(ld, f, "p503 + p500 must not exceed 1");
    v = config_setting_get_member(f, "latency_ms");
    if (v == NULL)
        return 0;
    if (!(config_setting_is_array(v) || config_setting_is_list(v)) ||
        config_setting_length(v) != 2)
        return fail(ld, v, "latency_ms must be [lo, hi] in milliseconds");
    rc = get_int64(ld, config_setting_get_elem(v, 0), "latency_ms lo", 0,
                   GR_MOCK_MAX_LATENCY_MS, &lo);
    if (rc < 0)
        return rc;
    rc = get_int64(ld, config_setting_get_elem(v, 1), "latency_ms hi", 0,
                   GR_MOCK_MAX_LATENCY_MS, &hi);
    if (rc < 0)
        return rc;
    if (lo > hi)
        return fail(ld, v, "latency_ms: lo %lld is above hi %lld",
                    (long long)lo, (long long)hi);
    cfg->latency_lo_ms = (uint32_t)lo;
    cfg->latency_hi_ms = (uint32_t)hi;
    return 0;
}

static int
load_top(struct loader *ld, const config_setting_t *root,
         struct gr_mock_config *cfg)
{
    static const char *const known[] = {"projects",
                                        "faults",
                                        "listen",
                                        "window_ms",
                                        "clock_offset_s",
                                        "max_body_bytes",
                                        "threads",
                                        "max_files",
                                        "max_file_bytes",
                                        "max_storage_bytes",
                                        "batch_pending_ms",
                                        "batch_running_ms",
                                        NULL};
    const config_setting_t *v, *projects;
    const char *str = "";
    int64_t n;
    size_t i, j, a, b;
    int rc;

    rc = check_known(ld, root, known, "the top level");
    if (rc < 0)
        return rc;
    if ((v = config_setting_get_member(root, "window_ms")) != NULL) {
        rc = get_int64(ld, v, "window_ms", 1, 86400000, &cfg->window_ms);
        if (rc < 0)
            return rc;
    }
    if ((v = config_setting_get_member(root, "clock_offset_s")) != NULL) {
        rc = get_int64(ld, v, "clock_offset_s", -(INT64_C(1) << 40),
                       INT64_C(1) << 40, &cfg->clock_offset_s);
        if (rc < 0)
            return rc;
    }
    if ((v = config_setting_get_member(root, "max_body_bytes")) != NULL) {
        rc = get_int64(ld, v, "max_body_bytes", 1024, GR_MOCK_MAX_BODY_LIMIT,
                       &n);
        if (rc < 0)
            return rc;
        cfg->max_body = (size_t)n;
    }
    if ((v = config_setting_get_member(root, "max_files")) != NULL) {
        rc = get_int64(ld, v, "max_files", 0, 1000000, &cfg->max_files);
        if (rc < 0)
            return rc;
    }
    if ((v = config_setting_get_member(root, "max_file_bytes")) != NULL) {
        rc = get_int64(ld, v, "max_file_bytes", 1, INT64_C(1) << 40,
                       &cfg->max_file_bytes);
        if (rc < 0)
            return rc;
    }
    if ((v = config_setting_get_member(root, "max_storage_bytes")) != NULL) {
        rc = get_int64(ld, v, "max_storage_bytes", 0, INT64_C(1) << 50,
                       &cfg->max_storage_bytes);
        if (rc < 0)
            return rc;
    }
    if ((v = config_setting_get_member(root, "batch_pending_ms")) != NULL) {
        rc = get_int64(ld, v, "batch_pending_ms", 0, 86400000,
                       &cfg->batch_pending_ms);
        if (rc < 0)
            return rc;
    }
    if ((v = config_setting_get_member(root, "batch_running_ms")) != NULL) {
        rc = get_int64(ld, v, "batch_running_ms", 0, 86400000,
                       &cfg->batch_running_ms);
        if (rc < 0)
            return rc;
    }
    if ((v = config_setting_get_member(root, "threads")) != NULL) {
        rc = get_int64(ld, v, "threads", 0, 256, &n);
        if (rc < 0)
            return rc;
        cfg->threads = (unsigned)n;
    }
    if ((v = config_setting_get_member(root, "listen")) != NULL) {
        rc = get_string(ld, v, "listen", &str);
        if (rc < 0)
            return rc;
        if (strlen(str) >= sizeof cfg->listen)
            return fail(ld, v, "listen is too long");
        snprintf(cfg->listen, sizeof cfg->listen, "%s", str);
    }
    if ((v = config_setting_get_member(root, "faults")) != NULL) {
        rc = load_faults(ld, v, cfg);
        if (rc < 0)
            return rc;
    }

    projects = config_setting_get_member(root, "projects");
    if (projects == NULL || !config_setting_is_list(projects) ||
        config_setting_length(projects) == 0)
        return fail(ld, projects,
                    "projects = ( { name = ...; keys = [...]; "
                    "limits = (...); } ) is required and must not be empty");
    cfg->n_projects = (size_t)config_setting_length(projects);
    cfg->projects = calloc(cfg->n_projects, sizeof *cfg->projects);
    if (cfg->projects == NULL)
        return fail(ld, projects, "out of memory");
    for (i = 0; i < cfg->n_projects; i++) {
        struct gr_mock_project_cfg *p = &cfg->projects[i];

        v = config_setting_get_elem(projects, (unsigned)i);
        rc = load_project(ld, v, p);
        if (rc < 0)
            return rc;
        for (j = 0; j < i; j++)
            if (strcmp(cfg->projects[j].name, p->name) == 0)
                return fail(ld, v, "project name %s is used twice", p->name);
        /* One key, one project: Google never maps a key to two projects. */
        for (j = 0; j <= i; j++)
            for (a = 0; a < cfg->projects[j].n_keys; a++)
                for (b = (j == i ? a + 1 : 0); b < p->n_keys; b++)
                    if (strcmp(cfg->projects[j].keys[a], p->keys[b]) == 0)
                        return fail(ld,
                                    config_setting_get_elem(
                                        config_setting_get_member(v, "keys"),
                                        (unsigned)b),
                                    "key #%zu of project %s is already a key "
                                    "of project %s",
                                    b + 1, p->name, cfg->projects[j].name);
    }
    return 0;
}

void
gr_mock_config_free(struct gr_mock_config *cfg)
{
    size_t i, k;

    if (cfg == NULL)
        return;
    for (i = 0; i < cfg->n_projects; i++) {
        struct gr_mock_project_cfg *p = &cfg->projects[i];

        for (k = 0; k < p->n_keys; k++) {
            if (p->keys[k] != NULL) {
                /* Scrub: freed heap should not keep keys for a core dump. */
                memset(p->keys[k], 0, strlen(p->keys[k]));
                free(p->keys[k]);
            }
        }
        free(p->keys);
        free(p->limits);
    }
    free(cfg->projects);
    free(cfg);
}

int
gr_mock_config_load(const char *path, struct gr_mock_config **out, char *err,
                    size_t errlen)
{
    struct loader ld = {.path = path, .err = err, .errlen = errlen};
    struct gr_mock_config *cfg;
    const char *slash;
    config_t lc;
    int rc;

    *out = NULL;
    cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL) {
        snprintf(err, errlen, "%s:1: out of memory", path);
        return -ENOMEM;
    }
    cfg->window_ms = GR_MOCK_DEFAULT_WINDOW_MS;
    cfg->max_body = GR_MOCK_DEFAULT_MAX_BODY;
    cfg->max_files = GR_MOCK_DEFAULT_MAX_FILES;
    cfg->max_file_bytes = GR_MOCK_DEFAULT_MAX_FILE_BYTES;
    cfg->max_storage_bytes = GR_MOCK_DEFAULT_MAX_STORAGE_BYTES;
    cfg->batch_pending_ms = GR_MOCK_DEFAULT_BATCH_PENDING_MS;
    cfg->batch_running_ms = GR_MOCK_DEFAULT_BATCH_RUNNING_MS;

    slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(ld.dir, sizeof ld.dir, ".");
    else if (slash == path)
        snprintf(ld.dir, sizeof ld.dir, "/");
    else
        snprintf(ld.dir, sizeof ld.dir, "%.*s", (int)(slash - path), path);

    config_init(&lc);
    config_set_include_dir(&lc, ld.dir);
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s:1: cannot read the file: %s", path,
                     config_error_text(&lc) != NULL ? config_error_text(&lc)
                                                    : "I/O error");
        else
            snprintf(err, errlen, "%s:%d: %s",
                     config_error_file(&lc) != NULL ? config_error_file(&lc)
                                                    : path,
                     config_error_line(&lc), config_error_text(&lc));
        rc = -EINVAL;
        goto fail;
    }
    rc = load_top(&ld, config_root_setting(&lc), cfg);
    if (rc < 0)
        goto fail;
    config_destroy(&lc);
    *out = cfg;
    return 0;

fail:
    config_destroy(&lc);
    gr_mock_config_free(cfg);
    return rc;
}
