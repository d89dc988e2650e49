/*
 * gateway_priv.h - how config.c hands the gateway section to gateway.c.
 * Private to config/.
 */
#ifndef GR_CFG_GATEWAY_PRIV_H
#define GR_CFG_GATEWAY_PRIV_H

#include "config_priv.h"
#include "gateway.h"

/*
 * Read the gateway section of root (libconfig's root setting, as a
 * pointer without its type) into a new struct, defaults filled in;
 * errors go to rd (settings_priv.h).  Returns the struct, or NULL when
 * out of memory.
 */
struct gr_cfg_rd;
struct gr_cfg_gateway *gr_cfg_gateway_load(const void *root,
                                           struct gr_cfg_rd *rd);

/* Wipes the tokens and frees. */
void gr_cfg_gateway_free(struct gr_cfg_gateway *gw);

#endif
