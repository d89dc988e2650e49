/*
 * gateway.c - the `gateway` section of the config file, read and checked
 * with the rest of it (config.c calls gr_cfg_gateway_load()):
 *
 *   gateway = {
 *     listen = "127.0.0.1:8787";
 *     tokens = [ "env:GEMROUTE_TOKEN" ];
 *     admin_tokens = [ "file:/etc/gemroute/admin.token" ];
 *     queue_s = 30.0;  max_body = 20971520;  workers = 64;
 *     timeout_s = 30;  loops = 2;  project_header = true;
 *     insecure = false;
 *     tls_cert = "file:cert.pem";  tls_key = "file:key.pem";
 *   };
 *
 * Invariant protected: a gateway never listens off loopback in plain
 * HTTP unless the file says insecure = true (else it needs TLS:
 * gateway_tls.c), and
 * no token is ever echoed in a message (tokens are resolved like keys:
 * env:NAME, file:PATH or literal, and literal ones are wiped from
 * libconfig's copy once read).
 */
#include "gateway_priv.h"
#include "settings_priv.h"

#include <arpa/inet.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 512
#define SHOWN_MAX 48
#define QUEUE_S_MAX 3600.0
#define MAX_BODY_MAX (INT64_C(1) << 30)
#define WORKERS_MAX 4096
#define TIMEOUT_S_MAX 3600
#define LOOPS_MAX 64

/* "A.B.C.D:PORT" or "[v6]:PORT". */
static bool
read_listen(struct gr_cfg_rd *rd, const void *s,
            const struct gr_cfg_setting *row, const char *what,
            const char *label, const char *unused, void *base)
{
    struct gr_cfg_gateway *gw = base;
    char shown[SHOWN_MAX], host[GR_CFG_GW_HOST_MAX];
    const char *v, *colon, *h;
    unsigned char addr[16];
    size_t hl;
    long port;
    char *end;
    bool v6 = false;

    (void)row;
    (void)unused;
    if (!gr_cfg_get_string(rd, s, what, &v))
        return false;
    h = v;
    gr_cfg_shown(v, shown, sizeof(shown));
    colon = strrchr(v, ':');
    if (v[0] == '[') {
        const char *close = strchr(v, ']');

        v6 = true;
        h = v + 1;
        colon = close != NULL && close[1] == ':' ? close + 1 : NULL;
        hl = close != NULL ? (size_t)(close - h) : 0;
    } else {
        hl = colon != NULL ? (size_t)(colon - v) : 0;
    }
    if (colon == NULL || hl == 0 || hl >= sizeof(host)) {
        gr_cfg_err_at(rd, s, "%s must be \"ADDRESS:PORT\" with a numeric "
                      "address (found \"%s\")", label, shown);
        return false;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        gr_cfg_err_at(rd, s, "%s: the port must be between 0 and 65535 "
                      "(found \"%s\")", label, shown);
        return false;
    }
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1) {
        gr_cfg_err_at(rd, s, "%s: \"%s\" is not a numeric IP%s address",
                      label, gr_cfg_shown(host, shown, sizeof(shown)),
                      v6 ? "v6" : "v4");
        return false;
    }
    snprintf(gw->listen, sizeof(gw->listen), "%s", v);
    snprintf(gw->host, sizeof(gw->host), "%s", host);
    gw->port = (unsigned)port;
    gw->loopback = v6 ? strcmp(host, "::1") == 0 : addr[0] == 127;
    return true;
}

/* tokens and admin_tokens: resolved like keys, never echoed. */
static bool
read_tokens(struct gr_cfg_rd *rd, const void *sp,
            const struct gr_cfg_setting *row, const char *what,
            const char *label, const char *unused, void *base)
{
    const config_setting_t *s = sp;
    struct gr_cfg_gateway *gw = base;
    bool admin = strcmp(row->name, "admin_tokens") == 0;
    char (*out)[GR_CFG_KEY_MAX] = admin ? gw->admin_tokens : gw->tokens;
    unsigned *n = admin ? &gw->n_admin_tokens : &gw->n_tokens;
    char why[MSG_MAX - 64];
    int i, len;
    bool ok = true;

    (void)unused;
    if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
        config_setting_type(s) != CONFIG_TYPE_LIST) {
        gr_cfg_err_at(rd, s, "wrong type for %s: expected an array of "
                      "strings [ ... ]", what);
        return false;
    }
    len = config_setting_length(s);
    if (len > GR_CFG_GW_TOKENS_MAX) {
        gr_cfg_err_at(rd, s, "%s has %d entries; at most %d", label, len,
                      GR_CFG_GW_TOKENS_MAX);
        return false;
    }
    for (i = 0; i < len; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *spec = config_setting_get_string(e);

        ok = false;
        if (spec == NULL) {
            gr_cfg_err_at(rd, e, "%s: token %d: not a string", label, i + 1);
            continue;
        }
        if (gr_cfg_key_resolve(spec, rd->dir, out[*n], why,
                               sizeof(why)) != 0) {
            gr_cfg_err_at(rd, e, "%s: token %d: %s", label, i + 1, why);
            continue;
        }
        if (strlen(out[*n]) < 8) {
            explicit_bzero(out[*n], GR_CFG_KEY_MAX);
            gr_cfg_err_at(rd, e, "%s: token %d: shorter than 8 characters",
                          label, i + 1);
            continue;
        }
        ok = true;
        (*n)++;
    }
    return ok;
}

/* The gateway's settings, read in this order.  GR_CFG_F_RESTART: taken
 * at the gateway's start only (gr_cfg_gateway_restart_changes()). */
#define G struct gr_cfg_gateway
static const struct gr_cfg_setting gateway_settings[] = {
    GR_CFG_HANDF("listen", G, listen, 0, "127.0.0.1:8787", read_listen,
                 GR_CFG_F_RESTART),
    GR_CFG_HAND("tokens", read_tokens, 0),
    GR_CFG_HAND("admin_tokens", read_tokens, 0),
    GR_CFG_DOUBLE(G, queue_s, 0.0, QUEUE_S_MAX, 30.0, 0),
    GR_CFG_I64(G, max_body, 1024, MAX_BODY_MAX, 20 << 20, 0),
    GR_CFG_UINT(G, workers, 1, WORKERS_MAX, 64, GR_CFG_F_RESTART),
    GR_CFG_UINT(G, timeout_s, 1, TIMEOUT_S_MAX, 30, GR_CFG_F_RESTART),
    GR_CFG_UINT(G, loops, 0, LOOPS_MAX, 2, GR_CFG_F_RESTART),
    GR_CFG_BOOL(G, project_header, true, 0),
    GR_CFG_BOOL(G, insecure, false, GR_CFG_F_RESTART),
    /* read by gateway_tls.c after the table; rows for the restart check */
    GR_CFG_HANDF("tls_cert", G, tls_cert, 0, "", NULL, GR_CFG_F_RESTART),
    GR_CFG_HANDF("tls_key", G, tls_key, 0, "", NULL, GR_CFG_F_RESTART),
    GR_CFG_END,
};
#undef G

/* Literal tokens must not stay in libconfig's memory. */
static void
wipe(config_setting_t *s)
{
    int i;

    if (s == NULL || !config_setting_is_aggregate(s))
        return;
    for (i = 0; i < config_setting_length(s); i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        /* libconfig's heap copy, ours to wipe: its getter returns it
         * const, the public struct has it as it is */
        char *v = e != NULL && config_setting_type(e) == CONFIG_TYPE_STRING
                      ? e->value.sval
                      : NULL;

        if (v != NULL)
            explicit_bzero(v, strlen(v));
    }
}

struct gr_cfg_gateway *
gr_cfg_gateway_load(const void *rootp, struct gr_cfg_rd *rd)
{
    const config_setting_t *root = rootp;
    struct gr_cfg_gateway *gw = calloc(1, sizeof(*gw));
    config_setting_t *g, *s;

    if (gw == NULL)
        return NULL;
    gr_cfg_settings_defaults(gateway_settings, gw);
    snprintf(gw->host, sizeof(gw->host), "127.0.0.1");
    gw->port = 8787;
    gw->loopback = true;
    g = config_setting_get_member(root, "gateway");
    if (g == NULL)
        return gw;
    gw->present = true;
    gw->line = (int)config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        gr_cfg_err_at(rd, g, "wrong type for gateway: expected a group "
                      "{ ... }");
        return gw;
    }
    gr_cfg_settings_unknown(rd, g, gateway_settings, "in gateway");
    gr_cfg_settings_read(rd, g, gateway_settings, "gateway", NULL, gw,
                         NULL);
    gr_cfg_gateway_tls_load(g, rd, gw);
    if (!gw->loopback && !gw->insecure && !gw->tls) {
        s = config_setting_get_member(g, "listen");
        gr_cfg_err_at(rd, s != NULL ? s : g, "gateway.listen %s is not a "
                      "loopback address: set tls_cert and tls_key to serve "
                      "HTTPS there, or insecure = true to serve plain HTTP",
                      gw->listen);
    }
    wipe(config_setting_get_member(g, "tokens"));
    wipe(config_setting_get_member(g, "admin_tokens"));
    return gw;
}

void
gr_cfg_gateway_free(struct gr_cfg_gateway *gw)
{
    if (gw == NULL)
        return;
    explicit_bzero(gw, sizeof(*gw));
    free(gw);
}

unsigned
gr_cfg_gateway_restart_changes(const struct gr_cfg_gateway *old,
                               const struct gr_cfg_gateway *cur, char *out,
                               size_t outlen)
{
    if (old == NULL || cur == NULL) {
        if (outlen > 0)
            out[0] = '\0';
        return 0;
    }
    return gr_cfg_settings_changed(gateway_settings, old, cur,
                                   GR_CFG_F_RESTART, out, outlen);
}

const struct gr_cfg_gateway *
gr_cfg_gateway(const struct gr_cfg *cfg)
{
    return cfg != NULL ? cfg->gateway : NULL;
}
