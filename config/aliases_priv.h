/*
 * aliases_priv.h - config.c's hooks into aliases.c.
 */
#ifndef GR_CFG_ALIASES_PRIV_H
#define GR_CFG_ALIASES_PRIV_H

#include "aliases.h"
#include "config_priv.h"

/*
 * Read the aliases list of root (a config_setting_t *), after
 * cfg->models is loaded.  Errors go to el.  NULL only when out of
 * memory.
 */
struct gr_cfg_aliases *gr_cfg_aliases_load(const void *root,
                                           const char *path,
                                           const char *dir,
                                           const struct gr_cfg *cfg,
                                           struct gr_cfg_errlist *el);
void gr_cfg_aliases_free(struct gr_cfg_aliases *a);

#endif
