/*
 * cache.c - the `cache` section of the config file and the models'
 * fallback chains, read and checked with the rest of it (config.c calls
 * gr_cfg_cache_load() once the models are loaded):
 *
 *   cache = {
 *     enabled = true;                  # default true with a section
 *     path = "/var/cache/gemroute";    # the directory (made 0700)
 *     max_bytes = 268435456;           # the store's size, 256 MiB
 *     ttl_s = 86400;                   # an entry's life
 *     generate = false;                # cache every generateContent
 *   };
 *   models = ( { name = "gemini-2.5-pro"; ...
 *                fallback = [ "gemini-2.5-flash" ];
 *                fallback_allow = true; } );
 *
 * Invariant protected: a chain names only models of the file, never the
 * model itself, never one twice, and at most GR_CFG_FALLBACK_MAX of
 * them; every error is FILE:LINE.
 */
#include "cache_priv.h"

#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 512
#define MAX_BYTES_MIN (INT64_C(1) << 20)
#define MAX_BYTES_MAX (INT64_C(1) << 40)
#define TTL_MAX (INT64_C(365) * 86400)

static const char *const cache_keys[] = {
    "enabled", "path", "max_bytes", "ttl_s", "generate", NULL,
};

struct c_load {
    const char *path;
    const char *dir;
    struct gr_cfg_errlist *el;
};

static void err_at(struct c_load *ld, const config_setting_t *s,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The file of s as config.c names it (libconfig 1.5 records an included
 * file relative to the include directory). */
static void
err_at(struct c_load *ld, const config_setting_t *s, const char *fmt, ...)
{
    char msg[MSG_MAX], buf[PATH_MAX];
    const char *f = config_setting_source_file(s);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (f == NULL)
        f = ld->path;
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7
    else if (strcmp(f, ld->path) != 0 &&
             gr_cfg_path_join(ld->dir, f, buf, sizeof(buf)) == 0)
        f = buf;
#else
    (void)buf;
#endif
    gr_cfg_err_add(ld->el, f, (int)config_setting_source_line(s), "%s",
                   msg);
}

static bool
get_bool(struct c_load *ld, const config_setting_t *s, const char *where,
         bool *v)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        err_at(ld, s, "wrong type for '%s' %s: expected a boolean",
               config_setting_name(s), where);
        return false;
    }
    *v = config_setting_get_bool(s) != 0;
    return true;
}

static bool
get_int(struct c_load *ld, const config_setting_t *s, int64_t lo, int64_t hi,
        int64_t *v)
{
    int t = config_setting_type(s);
    int64_t x;

    if (t == CONFIG_TYPE_INT)
        x = config_setting_get_int(s);
    else if (t == CONFIG_TYPE_INT64)
        x = config_setting_get_int64(s);
    else {
        err_at(ld, s, "wrong type for '%s' in cache: expected an integer",
               config_setting_name(s));
        return false;
    }
    if (x < lo || x > hi) {
        err_at(ld, s, "cache.%s must be between %lld and %lld (found %lld)",
               config_setting_name(s), (long long)lo, (long long)hi,
               (long long)x);
        return false;
    }
    *v = x;
    return true;
}

static void
load_section(struct c_load *ld, const config_setting_t *g,
             struct gr_cfg_cache *c)
{
    const config_setting_t *s;
    const char *v;
    int i;

    c->present = true;
    c->enabled = true;
    c->line = (int)config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err_at(ld, g, "wrong type for cache: expected a group { ... }");
        return;
    }
    for (i = 0; i < config_setting_length(g); i++) {
        unsigned k;

        s = config_setting_get_elem(g, (unsigned)i);
        for (k = 0; cache_keys[k] != NULL; k++)
            if (strcmp(cache_keys[k], config_setting_name(s)) == 0)
                break;
        if (cache_keys[k] == NULL)
            err_at(ld, s, "unknown key '%s' in cache",
                   config_setting_name(s));
    }
    if ((s = config_setting_get_member(g, "enabled")) != NULL)
        get_bool(ld, s, "in cache", &c->enabled);
    if ((s = config_setting_get_member(g, "generate")) != NULL)
        get_bool(ld, s, "in cache", &c->generate);
    if ((s = config_setting_get_member(g, "max_bytes")) != NULL)
        get_int(ld, s, MAX_BYTES_MIN, MAX_BYTES_MAX, &c->max_bytes);
    if ((s = config_setting_get_member(g, "ttl_s")) != NULL)
        get_int(ld, s, 1, TTL_MAX, &c->ttl_s);
    s = config_setting_get_member(g, "path");
    if (s == NULL) {
        if (c->enabled)
            err_at(ld, g, "cache.path is missing (the directory the "
                   "cache lives in)");
        return;
    }
    v = config_setting_get_string(s);
    if (v == NULL) {
        err_at(ld, s, "wrong type for 'path' in cache: expected a string");
        return;
    }
    if (v[0] == '\0' ||
        gr_cfg_path_join(ld->dir, v, c->path, sizeof(c->path)) < 0 ||
        strlen(c->path) >= 200) {
        c->path[0] = '\0';
        err_at(ld, s, "cache.path must be a directory name shorter than "
               "200 characters");
    }
}

static void
load_chain(struct c_load *ld, const struct gr_cfg *cfg, unsigned i,
           const config_setting_t *s, struct gr_cfg_fallback *fb)
{
    const char *me = cfg->models[i].name;
    int k, n = config_setting_length(s);

    if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
        config_setting_type(s) != CONFIG_TYPE_LIST) {
        err_at(ld, s, "wrong type for 'fallback' in model '%s': expected "
               "an array of strings [ ... ]", me);
        return;
    }
    if (n > GR_CFG_FALLBACK_MAX) {
        err_at(ld, s, "model '%s' falls back to %d models; at most %d",
               me, n, GR_CFG_FALLBACK_MAX);
        return;
    }
    for (k = 0; k < n; k++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)k);
        const char *v = config_setting_get_string(e);
        char shown[64];
        int m;
        unsigned j;

        if (v == NULL) {
            err_at(ld, e, "wrong type in 'fallback' of model '%s': "
                   "expected a model name", me);
            return;
        }
        gr_cfg_shown(v, shown, sizeof(shown));
        m = gr_cfg_model_index(cfg, v);
        if (m < 0) {
            err_at(ld, e, "model '%s' falls back to '%s', which is not in "
                   "'models'", me, shown);
            return;
        }
        if ((unsigned)m == i) {
            err_at(ld, e, "model '%s' falls back to itself", me);
            return;
        }
        for (j = 0; j < fb->n; j++)
            if (fb->chain[j] == (unsigned)m) {
                err_at(ld, e, "model '%s' names '%s' twice in 'fallback'",
                       me, shown);
                return;
            }
        fb->chain[fb->n++] = (unsigned)m;
    }
}

struct gr_cfg_cache *
gr_cfg_cache_load(const void *rootp, const char *path, const char *dir,
                  const struct gr_cfg *cfg, struct gr_cfg_errlist *el)
{
    const config_setting_t *root = rootp, *l, *s;
    struct gr_cfg_cache *c = calloc(1, sizeof(*c));
    struct c_load ld = {path, dir, el};
    unsigned i;

    if (c == NULL)
        return NULL;
    c->max_bytes = INT64_C(256) << 20;
    c->ttl_s = 86400;
    c->fallback = calloc(cfg->n_models ? cfg->n_models : 1,
                         sizeof(*c->fallback));
    if (c->fallback == NULL) {
        free(c);
        return NULL;
    }
    c->n_models = cfg->n_models;
    if ((s = config_setting_get_member(root, "cache")) != NULL)
        load_section(&ld, s, c);
    l = config_setting_get_member(root, "models");
    if (l == NULL || !config_setting_is_list(l))
        return c;
    for (i = 0; i < cfg->n_models &&
                i < (unsigned)config_setting_length(l); i++) {
        const config_setting_t *g = config_setting_get_elem(l, i);

        if (g == NULL || config_setting_type(g) != CONFIG_TYPE_GROUP ||
            cfg->models[i].name[0] == '\0')
            continue;
        if ((s = config_setting_get_member(g, "fallback")) != NULL)
            load_chain(&ld, cfg, i, s, &c->fallback[i]);
        if ((s = config_setting_get_member(g, "fallback_allow")) != NULL)
            get_bool(&ld, s, "in a model", &c->fallback[i].allow);
    }
    return c;
}

void
gr_cfg_cache_free(struct gr_cfg_cache *c)
{
    if (c == NULL)
        return;
    free(c->fallback);
    free(c);
}

const struct gr_cfg_cache *
gr_cfg_cache(const struct gr_cfg *cfg)
{
    return cfg != NULL ? cfg->cache : NULL;
}
