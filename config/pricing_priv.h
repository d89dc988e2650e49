/*
 * pricing_priv.h - config.c's hooks into pricing.c.
 */
#ifndef GR_CFG_PRICING_PRIV_H
#define GR_CFG_PRICING_PRIV_H

#include "config_priv.h"
#include "pricing.h"

/*
 * Read the pricing and spend sections of root (a config_setting_t *),
 * after cfg->models and cfg->projects are loaded.  Errors go to rd
 * (settings_priv.h).  NULL only when out of memory.
 */
struct gr_cfg_rd;
struct gr_cfg_spend *gr_cfg_spend_load(const void *root,
                                       const struct gr_cfg *cfg,
                                       struct gr_cfg_rd *rd);
void gr_cfg_spend_free(struct gr_cfg_spend *s);

#endif
