/*
 * aliases_priv.h - config.c's hooks into aliases.c.
 */
#ifndef GR_CFG_ALIASES_PRIV_H
#define GR_CFG_ALIASES_PRIV_H

#include "aliases.h"
#include "config_priv.h"

/*
 * Read the aliases list of root (a config_setting_t *), after
 * cfg->models is loaded.  Errors go to rd (settings_priv.h).  NULL only
 * when out of memory.
 */
struct gr_cfg_rd;
struct gr_cfg_aliases *gr_cfg_aliases_load(const void *root,
                                           const struct gr_cfg *cfg,
                                           struct gr_cfg_rd *rd);
void gr_cfg_aliases_free(struct gr_cfg_aliases *a);

#endif
