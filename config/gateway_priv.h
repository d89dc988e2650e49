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

/*
 * tls_cert and tls_key of the gateway section g (a config_setting_t *
 * without its type), from gateway_tls.c: each "file:PATH" (relative to
 * dir) or "env:NAME", a PEM of at most GR_CFG_GW_PEM_MAX - 1 bytes; both
 * or neither.  Sets gw->tls when both were read.  Neither the key nor
 * anything of its spec appears in an error.
 */
struct gr_cfg_rd;
void gr_cfg_gateway_tls_load(const void *g, struct gr_cfg_rd *rd,
                             struct gr_cfg_gateway *gw);

/* Wipes the tokens and frees. */
void gr_cfg_gateway_free(struct gr_cfg_gateway *gw);

#endif
