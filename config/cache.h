/*
 * cache.h - the `cache` section of the config file (the shared response
 * cache) and the models' fallback chains (`fallback`, `fallback_allow`
 * in a model's group).  Parsed and checked with the rest of the file by
 * gr_cfg_load(); the router publishes both in the table.
 */
#ifndef GR_CFG_CACHE_H
#define GR_CFG_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define GR_CFG_FALLBACK_MAX 4       /* models in one chain */

/* One model's chain: indices into cfg->models, in order. */
struct gr_cfg_fallback {
    unsigned n;
    unsigned chain[GR_CFG_FALLBACK_MAX];
    bool allow;                     /* calls may fall back unless they say
                                       no; default false */
};

struct gr_cfg_cache {
    bool present;                   /* the file has a cache section */
    int line;                       /* where it starts; 0 = absent */
    bool enabled;                   /* default true with a section, false
                                       without one */
    char path[GR_CFG_URL_MAX];      /* the cache directory, absolute */
    int64_t max_bytes;              /* default 256 MiB */
    int64_t ttl_s;                  /* default 86400 */
    bool generate;                  /* cache every non-streamed
                                       generateContent; default false */
    unsigned n_models;              /* = cfg->n_models */
    struct gr_cfg_fallback *fallback;   /* [n_models] */
};

/* The cache section and chains of cfg (defaults when absent). */
const struct gr_cfg_cache *gr_cfg_cache(const struct gr_cfg *cfg);

#endif
