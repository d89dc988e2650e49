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
#include "settings_priv.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BYTES_MIN (INT64_C(1) << 20)
#define MAX_BYTES_MAX (INT64_C(1) << 40)
#define TTL_MAX (INT64_C(365) * 86400)

/* The cache's settings, read in this order; path is read by hand after
 * them, since whether it is needed depends on enabled. */
#define C struct gr_cfg_cache
static const struct gr_cfg_setting cache_settings[] = {
    GR_CFG_BOOL(C, enabled, true, 0),   /* true with a section */
    GR_CFG_BOOL(C, generate, false, 0),
    GR_CFG_I64(C, max_bytes, MAX_BYTES_MIN, MAX_BYTES_MAX,
               INT64_C(256) << 20, 0),
    GR_CFG_I64(C, ttl_s, 1, TTL_MAX, 86400, 0),
    GR_CFG_HAND("path", NULL, 0),
    GR_CFG_END,
};
#undef C

static void
load_section(struct gr_cfg_rd *rd, const config_setting_t *g,
             struct gr_cfg_cache *c)
{
    const config_setting_t *s;
    const char *v;

    c->present = true;
    c->enabled = true;
    c->line = (int)config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        gr_cfg_err_at(rd, g, "wrong type for cache: expected a group "
                      "{ ... }");
        return;
    }
    gr_cfg_settings_unknown(rd, g, cache_settings, "in cache");
    gr_cfg_settings_read(rd, g, cache_settings, "cache", NULL, c, NULL);
    s = config_setting_get_member(g, "path");
    if (s == NULL) {
        if (c->enabled)
            gr_cfg_err_at(rd, g, "cache.path is missing (the directory the "
                          "cache lives in)");
        return;
    }
    if (!gr_cfg_get_string(rd, s, "'path' in cache", &v))
        return;
    if (v[0] == '\0' ||
        gr_cfg_path_join(rd->dir, v, c->path, sizeof(c->path)) < 0 ||
        strlen(c->path) >= 200) {
        c->path[0] = '\0';
        gr_cfg_err_at(rd, s, "cache.path must be a directory name shorter "
                      "than 200 characters");
    }
}

static void
load_chain(struct gr_cfg_rd *rd, const struct gr_cfg *cfg, unsigned i,
           const config_setting_t *s, struct gr_cfg_fallback *fb)
{
    const char *me = cfg->models[i].name;
    int k, n = config_setting_length(s);

    if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
        config_setting_type(s) != CONFIG_TYPE_LIST) {
        gr_cfg_err_at(rd, s, "wrong type for 'fallback' in model '%s': "
                      "expected an array of strings [ ... ]", me);
        return;
    }
    if (n > GR_CFG_FALLBACK_MAX) {
        gr_cfg_err_at(rd, s, "model '%s' falls back to %d models; at most "
                      "%d", me, n, GR_CFG_FALLBACK_MAX);
        return;
    }
    for (k = 0; k < n; k++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)k);
        const char *v = config_setting_get_string(e);
        char shown[64];
        int m;
        unsigned j;

        if (v == NULL) {
            gr_cfg_err_at(rd, e, "wrong type in 'fallback' of model '%s': "
                          "expected a model name", me);
            return;
        }
        gr_cfg_shown(v, shown, sizeof(shown));
        m = gr_cfg_model_index(cfg, v);
        if (m < 0) {
            gr_cfg_err_at(rd, e, "model '%s' falls back to '%s', which is "
                          "not in 'models'", me, shown);
            return;
        }
        if ((unsigned)m == i) {
            gr_cfg_err_at(rd, e, "model '%s' falls back to itself", me);
            return;
        }
        for (j = 0; j < fb->n; j++)
            if (fb->chain[j] == (unsigned)m) {
                gr_cfg_err_at(rd, e, "model '%s' names '%s' twice in "
                              "'fallback'", me, shown);
                return;
            }
        fb->chain[fb->n++] = (unsigned)m;
    }
}

struct gr_cfg_cache *
gr_cfg_cache_load(const void *rootp, const struct gr_cfg *cfg,
                  struct gr_cfg_rd *rd)
{
    const config_setting_t *root = rootp, *l, *s;
    struct gr_cfg_cache *c = calloc(1, sizeof(*c));
    unsigned i;

    if (c == NULL)
        return NULL;
    gr_cfg_settings_defaults(cache_settings, c);
    c->enabled = false;             /* no section, no cache */
    c->fallback = calloc(cfg->n_models ? cfg->n_models : 1,
                         sizeof(*c->fallback));
    if (c->fallback == NULL) {
        free(c);
        return NULL;
    }
    c->n_models = cfg->n_models;
    if ((s = config_setting_get_member(root, "cache")) != NULL)
        load_section(rd, s, c);
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
            load_chain(rd, cfg, i, s, &c->fallback[i]);
        if ((s = config_setting_get_member(g, "fallback_allow")) != NULL)
            gr_cfg_get_bool(rd, s, "'fallback_allow' in a model",
                            &c->fallback[i].allow);
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
