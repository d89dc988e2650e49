/*
 * cache_priv.h - config.c's hooks into cache.c.
 */
#ifndef GR_CFG_CACHE_PRIV_H
#define GR_CFG_CACHE_PRIV_H

#include "cache.h"
#include "config_priv.h"

/*
 * Read the cache section of root (a config_setting_t *) and the
 * fallback keys of the models list, after cfg->models is loaded.
 * Errors go to rd (settings_priv.h).  NULL only when out of memory.
 */
struct gr_cfg_rd;
struct gr_cfg_cache *gr_cfg_cache_load(const void *root,
                                       const struct gr_cfg *cfg,
                                       struct gr_cfg_rd *rd);
void gr_cfg_cache_free(struct gr_cfg_cache *c);

#endif
