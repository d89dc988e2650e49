/*
 * gateway.h - the `gateway` section of the config file: what
 * gemroute-gateway serves and who may call it.  Parsed and checked with
 * the rest of the file by gr_cfg_load(); the router only validates it.
 */
#ifndef GR_CFG_GATEWAY_H
#define GR_CFG_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define GR_CFG_GW_TOKENS_MAX 16     /* tokens (and admin tokens) at most */
#define GR_CFG_GW_HOST_MAX 64
#define GR_CFG_GW_PEM_MAX 16384     /* a TLS certificate chain or key */

struct gr_cfg_gateway {
    bool present;                   /* the file has a gateway section */
    int line;                       /* where it starts; 0 = absent */
    char listen[GR_CFG_GW_HOST_MAX + 8];    /* as written, for messages */
    char host[GR_CFG_GW_HOST_MAX];  /* numeric IPv4 or IPv6 address */
    unsigned port;                  /* default 8787 */
    bool loopback;                  /* host is 127.0.0.0/8 or ::1 */
    unsigned n_tokens;
    char tokens[GR_CFG_GW_TOKENS_MAX][GR_CFG_KEY_MAX];      /* secret */
    unsigned n_admin_tokens;
    char admin_tokens[GR_CFG_GW_TOKENS_MAX][GR_CFG_KEY_MAX];/* secret */
    double queue_s;                 /* longest wait for room; default 30 */
    int64_t max_body;               /* bytes of a request body; 20 MiB */
    unsigned workers;               /* requests served at once; 64 */
    unsigned loops;                 /* event loops running calls; 0 =
                                       a thread per call (the old way) */
    unsigned timeout_s;             /* an idle or slow connection; 30 */
    bool project_header;            /* send x-gemroute-project; true */
    bool insecure;                  /* plain HTTP off loopback; false */
    bool tls;                       /* tls_cert and tls_key are set */
    char tls_cert[GR_CFG_GW_PEM_MAX];   /* PEM, NUL-terminated */
    char tls_key[GR_CFG_GW_PEM_MAX];    /* PEM; secret */
};

/* The gateway section of cfg (defaults when the file has none). */
const struct gr_cfg_gateway *gr_cfg_gateway(const struct gr_cfg *cfg);

/*
 * The settings the gateway takes at its start only (listen, workers,
 * timeout_s, insecure: rows of gateway.c's table) whose values differ
 * between old and cur: how many, and their names ", "-joined in out.
 */
unsigned gr_cfg_gateway_restart_changes(const struct gr_cfg_gateway *old,
                                        const struct gr_cfg_gateway *cur,
                                        char *out, size_t outlen);

#endif
