/*
 * gateway.c - the `gateway` section of the config file, read and checked
 * with the rest of it (config.c calls gr_cfg_gateway_load()):
 *
 *   gateway = {
 *     listen = "127.0.0.1:8787";
 *     tokens = [ "env:GEMROUTE_TOKEN" ];
 *     admin_tokens = [ "file:/etc/gemroute/admin.token" ];
 *     queue_s = 30.0;  max_body = 20971520;  workers = 64;
 *     timeout_s = 30;  project_header = true;  insecure = false;
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

#include <arpa/inet.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 512
#define SHOWN_MAX 48
#define QUEUE_S_MAX 3600.0
#define MAX_BODY_MAX (INT64_C(1) << 30)
#define WORKERS_MAX 4096
#define TIMEOUT_S_MAX 3600

static const char *const gateway_keys[] = {
    "listen", "tokens", "admin_tokens", "queue_s", "max_body", "workers",
    "timeout_s", "project_header", "insecure", "tls_cert", "tls_key", NULL,
};

struct gw_load {
    const char *path;
    const char *dir;
    struct gr_cfg_errlist *el;
};

static void err_at(struct gw_load *ld, const config_setting_t *s,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The file of s as config.c names it (libconfig 1.5 records an included
 * file relative to the include directory). */
static void
err_at(struct gw_load *ld, const config_setting_t *s, const char *fmt, ...)
{
    char msg[MSG_MAX], buf[PATH_MAX];
    const char *f = config_setting_source_file(s);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (f == NULL)
        f = ld->path;
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7
    else if (strcmp(f, ld->path) != 0 &&
             gr_cfg_path_join(ld->dir, f, buf, sizeof(buf)) == 0)
        f = buf;
#endif
    gr_cfg_err_add(ld->el, f, (int)config_setting_source_line(s), "%s",
                   msg);
}

static void
defaults(struct gr_cfg_gateway *gw)
{
    snprintf(gw->listen, sizeof(gw->listen), "127.0.0.1:8787");
    snprintf(gw->host, sizeof(gw->host), "127.0.0.1");
    gw->port = 8787;
    gw->loopback = true;
    gw->queue_s = 30.0;
    gw->max_body = 20 << 20;
    gw->workers = 64;
    gw->timeout_s = 30;
    gw->project_header = true;
}

/* "A.B.C.D:PORT" or "[v6]:PORT". */
static void
load_listen(struct gw_load *ld, const config_setting_t *s,
            struct gr_cfg_gateway *gw)
{
    char shown[SHOWN_MAX], host[GR_CFG_GW_HOST_MAX];
    const char *v = config_setting_get_string(s), *colon, *h = v;
    unsigned char addr[16];
    size_t hl;
    long port;
    char *end;
    bool v6 = false;

    if (v == NULL) {
        err_at(ld, s, "wrong type for 'listen' in gateway: expected a "
               "string");
        return;
    }
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
        err_at(ld, s, "gateway.listen must be \"ADDRESS:PORT\" with a "
               "numeric address (found \"%s\")", shown);
        return;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        err_at(ld, s, "gateway.listen: the port must be between 0 and "
               "65535 (found \"%s\")", shown);
        return;
    }
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1) {
        err_at(ld, s, "gateway.listen: \"%s\" is not a numeric IP%s "
               "address", gr_cfg_shown(host, shown, sizeof(shown)),
               v6 ? "v6" : "v4");
        return;
    }
    snprintf(gw->listen, sizeof(gw->listen), "%s", v);
    snprintf(gw->host, sizeof(gw->host), "%s", host);
    gw->port = (unsigned)port;
    gw->loopback = v6 ? strcmp(host, "::1") == 0 : addr[0] == 127;
}

static void
load_tokens(struct gw_load *ld, const config_setting_t *s, const char *name,
            char (*out)[GR_CFG_KEY_MAX], unsigned *n)
{
    char why[MSG_MAX - 64];
    int i, len;

    if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
        config_setting_type(s) != CONFIG_TYPE_LIST) {
        err_at(ld, s, "wrong type for '%s' in gateway: expected an array "
               "of strings [ ... ]", name);
        return;
    }
    len = config_setting_length(s);
    if (len > GR_CFG_GW_TOKENS_MAX) {
        err_at(ld, s, "gateway.%s has %d entries; at most %d", name, len,
               GR_CFG_GW_TOKENS_MAX);
        return;
    }
    for (i = 0; i < len; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *spec = config_setting_get_string(e);

        if (spec == NULL) {
            err_at(ld, e, "gateway.%s: token %d: not a string", name, i + 1);
            continue;
        }
        if (gr_cfg_key_resolve(spec, ld->dir, out[*n], why,
                               sizeof(why)) != 0) {
            err_at(ld, e, "gateway.%s: token %d: %s", name, i + 1, why);
            continue;
        }
        if (strlen(out[*n]) < 8) {
            explicit_bzero(out[*n], GR_CFG_KEY_MAX);
            err_at(ld, e, "gateway.%s: token %d: shorter than 8 "
                   "characters", name, i + 1);
            continue;
        }
        (*n)++;
    }
}

static bool
get_number(struct gw_load *ld, const config_setting_t *s, const char *name,
           double lo, double hi, double *v)
{
    int t = config_setting_type(s);
    double x;

    if (t == CONFIG_TYPE_FLOAT)
        x = config_setting_get_float(s);
    else if (t == CONFIG_TYPE_INT)
        x = config_setting_get_int(s);
    else if (t == CONFIG_TYPE_INT64)
        x = (double)config_setting_get_int64(s);
    else {
        err_at(ld, s, "wrong type for '%s' in gateway: expected a number",
               name);
        return false;
    }
    if (!(x >= lo && x <= hi)) {
        err_at(ld, s, "gateway.%s must be between %.10g and %.10g "
               "(found %.10g)", name, lo, hi, x);
        return false;
    }
    *v = x;
    return true;
}

static bool
get_bool(struct gw_load *ld, const config_setting_t *s, const char *name,
         bool *v)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        err_at(ld, s, "wrong type for '%s' in gateway: expected a boolean",
               name);
        return false;
    }
    *v = config_setting_get_bool(s) != 0;
    return true;
}

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
gr_cfg_gateway_load(const void *rootp, const char *path, const char *dir,
                    struct gr_cfg_errlist *el)
{
    const config_setting_t *root = rootp;
    struct gr_cfg_gateway *gw = calloc(1, sizeof(*gw));
    struct gw_load ld = {path, dir, el};
    config_setting_t *g, *s;
    double x;
    int i;

    if (gw == NULL)
        return NULL;
    defaults(gw);
    g = config_setting_get_member(root, "gateway");
    if (g == NULL)
        return gw;
    gw->present = true;
    gw->line = (int)config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err_at(&ld, g, "wrong type for gateway: expected a group { ... }");
        return gw;
    }
    for (i = 0; i < config_setting_length(g); i++) {
        const char *name;
        unsigned k;

        s = config_setting_get_elem(g, (unsigned)i);
        name = config_setting_name(s);
        for (k = 0; gateway_keys[k] != NULL; k++)
            if (strcmp(gateway_keys[k], name) == 0)
                break;
        if (gateway_keys[k] == NULL)
            err_at(&ld, s, "unknown key '%s' in gateway", name);
    }
    if ((s = config_setting_get_member(g, "listen")) != NULL)
        load_listen(&ld, s, gw);
    if ((s = config_setting_get_member(g, "tokens")) != NULL)
        load_tokens(&ld, s, "tokens", gw->tokens, &gw->n_tokens);
    if ((s = config_setting_get_member(g, "admin_tokens")) != NULL)
        load_tokens(&ld, s, "admin_tokens", gw->admin_tokens,
                    &gw->n_admin_tokens);
    if ((s = config_setting_get_member(g, "queue_s")) != NULL &&
        get_number(&ld, s, "queue_s", 0, QUEUE_S_MAX, &x))
        gw->queue_s = x;
    if ((s = config_setting_get_member(g, "max_body")) != NULL &&
        get_number(&ld, s, "max_body", 1024, (double)MAX_BODY_MAX, &x))
        gw->max_body = (int64_t)x;
    if ((s = config_setting_get_member(g, "workers")) != NULL &&
        get_number(&ld, s, "workers", 1, WORKERS_MAX, &x))
        gw->workers = (unsigned)x;
    if ((s = config_setting_get_member(g, "timeout_s")) != NULL &&
        get_number(&ld, s, "timeout_s", 1, TIMEOUT_S_MAX, &x))
        gw->timeout_s = (unsigned)x;
    if ((s = config_setting_get_member(g, "project_header")) != NULL)
        get_bool(&ld, s, "project_header", &gw->project_header);
    if ((s = config_setting_get_member(g, "insecure")) != NULL)
        get_bool(&ld, s, "insecure", &gw->insecure);
    gr_cfg_gateway_tls_load(g, path, dir, el, gw);
    if (!gw->loopback && !gw->insecure && !gw->tls) {
        s = config_setting_get_member(g, "listen");
        err_at(&ld, s != NULL ? s : g, "gateway.listen %s is not a "
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

const struct gr_cfg_gateway *
gr_cfg_gateway(const struct gr_cfg *cfg)
{
    return cfg != NULL ? cfg->gateway : NULL;
}
