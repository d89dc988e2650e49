/*
 * cluster.c - the cluster section of the config:
 *
 *   cluster = { redis = "unix:/run/redis/redis.sock";  # or "host:port"
 *               node = "host-a";
 *               password = "env:REDIS_PASSWORD";       # or "file:PATH"
 *               tls = true;  tls_ca = "/etc/gemroute/redis-ca.pem";
 *               tls_cert = "...";  tls_key = "...";
 *               tls_server_name = "redis.example";
 *               insecure = false;  lease_ms = 10000;  sync_ms = 100;
 *               timeout_ms = 500;  prefix = "gemroute"; };
 *
 * Without the section nothing changes.  The password is never taken
 * literally (only env: or file:).  TLS is on by default for an address
 * that is not local, and tls = false there is refused unless
 * insecure = true says that the traffic may go in clear; tls = true
 * forces it on a loopback address (docs/CLUSTER.md, "TLS").  The TLS
 * files must be readable at load (relative paths are the config's
 * folder's).  Every error is "FILE:LINE: what".
 */
#include "config_priv.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const cluster_keys[] = {
    "redis", "node", "password", "insecure", "lease_ms", "sync_ms",
    "timeout_ms", "prefix", "tls", "tls_ca", "tls_cert", "tls_key",
    "tls_server_name", NULL,
};

struct cl_load {
    gr_cfg_err_fn *err;
    void *ctx;
    bool bad;
};

static void cl_err(struct cl_load *cl, const config_setting_t *s,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cl_err(struct cl_load *cl, const config_setting_t *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cl->err(cl->ctx, s, msg);
    cl->bad = true;
}

static const char *
cl_str(struct cl_load *cl, const config_setting_t *g, const char *name)
{
    const config_setting_t *s = config_setting_get_member(g, name);

    if (s == NULL)
        return NULL;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cl_err(cl, s, "wrong type for '%s' in cluster: expected a string",
               name);
        return NULL;
    }
    return config_setting_get_string(s);
}

static void
cl_uint(struct cl_load *cl, const config_setting_t *g, const char *name,
        unsigned lo, unsigned hi, unsigned *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    long long v;

    if (s == NULL)
        return;
    if (config_setting_type(s) != CONFIG_TYPE_INT &&
        config_setting_type(s) != CONFIG_TYPE_INT64) {
        cl_err(cl, s, "wrong type for '%s' in cluster: expected an integer",
               name);
        return;
    }
    v = config_setting_get_int64(s);
    if (config_setting_type(s) == CONFIG_TYPE_INT)
        v = config_setting_get_int(s);
    if (v < (long long)lo || v > (long long)hi) {
        cl_err(cl, s, "cluster.%s must be between %u and %u (found %lld)",
               name, lo, hi, v);
        return;
    }
    *out = (unsigned)v;
}

/* A name: letters, digits, '-', '_', '.'; it goes into Redis keys. */
static bool
name_ok(const char *v)
{
    const char *p;

    if (v[0] == '\0')
        return false;
    for (p = v; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
              *p == '.'))
            return false;
    return true;
}

/* unix:/path, or host:port on the loopback. */
static bool
is_local(const char *addr)
{
    return strncmp(addr, "unix:", 5) == 0 ||
           strncmp(addr, "127.", 4) == 0 ||
           strncmp(addr, "localhost:", 10) == 0 ||
           strncmp(addr, "[::1]:", 6) == 0;
}

static void
load_redis(struct cl_load *cl, const config_setting_t *g,
           struct gr_cfg_cluster *c)
{
    const config_setting_t *s = config_setting_get_member(g, "redis");
    const char *v = cl_str(cl, g, "redis"), *colon;

    if (s == NULL) {
        cl_err(cl, g, "cluster needs 'redis' (\"unix:/path\" or "
               "\"host:port\")");
        return;
    }
    if (v == NULL)
        return;
    if (strlen(v) >= sizeof(c->redis)) {
        cl_err(cl, s, "cluster.redis is longer than %zu characters",
               sizeof(c->redis) - 1);
        return;
    }
    if (strncmp(v, "unix:", 5) == 0) {
        if (v[5] != '/') {
            cl_err(cl, s, "cluster.redis: a unix socket needs an absolute "
                   "path (unix:/path)");
            return;
        }
    } else {
        colon = strrchr(v, ':');
        if (colon == NULL || colon == v || colon[1] == '\0' ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
            atoi(colon + 1) < 1 || atoi(colon + 1) > 65535) {
            cl_err(cl, s, "cluster.redis must be \"unix:/path\" or "
                   "\"host:port\"");
            return;
        }
    }
    strcpy(c->redis, v);
}

/* A TLS file: a readable path (relative: to dir) into out. */
static void
load_tls_file(struct cl_load *cl, const config_setting_t *g,
              const char *name, const char *dir, char *out, size_t outlen)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    const char *v = cl_str(cl, g, name);
    int n;

    if (v == NULL)
        return;
    if (v[0] == '\0') {
        cl_err(cl, s, "cluster.%s is empty", name);
        return;
    }
    if (v[0] == '/' || dir == NULL || dir[0] == '\0')
        n = snprintf(out, outlen, "%s", v);
    else
        n = snprintf(out, outlen, "%s/%s", dir, v);
    if (n < 0 || (size_t)n >= outlen) {
        cl_err(cl, s, "cluster.%s is longer than %zu characters", name,
               outlen - 1);
        out[0] = '\0';
        return;
    }
    if (access(out, R_OK) != 0) {
        cl_err(cl, s, "cluster.%s: cannot read %s", name, out);
        out[0] = '\0';
    }
}

/* tls, its files and name; the refusal of a remote address in clear. */
static void
load_tls(struct cl_load *cl, const config_setting_t *g, const char *dir,
         struct gr_cfg_cluster *c)
{
    const config_setting_t *s = config_setting_get_member(g, "tls");
    const char *const files[] = {"tls_ca", "tls_cert", "tls_key",
                                 "tls_server_name"};
    bool local = is_local(c->redis);
    const char *v;
    unsigned i;

    c->tls = !local;
    if (s != NULL) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            cl_err(cl, s, "wrong type for 'tls' in cluster: expected a "
                   "boolean");
        else
            c->tls = config_setting_get_bool(s) != 0;
    }
    if (c->redis[0] == '\0')
        return;
    if (c->tls && strncmp(c->redis, "unix:", 5) == 0) {
        cl_err(cl, s, "cluster.tls: Redis speaks TLS on a TCP port only: "
               "set redis = \"host:port\" (its tls-port)");
        return;
    }
    if (!c->tls) {
        if (!local && !c->insecure)
            cl_err(cl, s != NULL ? s : config_setting_get_member(g, "redis"),
                   "cluster.redis '%s' is not local and tls is off: set "
                   "insecure = true to send the traffic in clear",
                   c->redis);
        for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            if (config_setting_get_member(g, files[i]) != NULL)
                cl_err(cl, config_setting_get_member(g, files[i]),
                       "cluster.%s is set but TLS is off (tls = false, or "
                       "a local address without tls = true)", files[i]);
        return;
    }
    load_tls_file(cl, g, "tls_ca", dir, c->tls_ca, sizeof(c->tls_ca));
    load_tls_file(cl, g, "tls_cert", dir, c->tls_cert, sizeof(c->tls_cert));
    load_tls_file(cl, g, "tls_key", dir, c->tls_key, sizeof(c->tls_key));
    if ((config_setting_get_member(g, "tls_cert") != NULL) !=
        (config_setting_get_member(g, "tls_key") != NULL))
        cl_err(cl, g, "cluster: tls_cert and tls_key go together (a client "
               "certificate and its key)");
    s = config_setting_get_member(g, "tls_server_name");
    v = cl_str(cl, g, "tls_server_name");
    if (v != NULL && ((!name_ok(v) && strspn(v, "0123456789abcdefABCDEF:.")
                                          != strlen(v)) ||
                      strlen(v) >= sizeof(c->tls_server_name)))
        cl_err(cl, s, "cluster.tls_server_name must be a host name or an IP "
               "address (letters, digits, '-', '_', '.')");
    else if (v != NULL)
        strcpy(c->tls_server_name, v);
}

void
gr_cfg_cluster_load(const void *group, const char *dir,
                    struct gr_cfg_cluster *c, gr_cfg_err_fn *err, void *ctx)
{
    const config_setting_t *g = group, *s;
    struct cl_load cl = {err, ctx, false};
    const char *v;
    char why[256];
    int i, n, rc;

    memset(c, 0, sizeof(*c));
    strcpy(c->prefix, "gemroute");
    c->lease_ms = 10000;
    c->sync_ms = 100;
    c->timeout_ms = 500;
    c->line = (int)config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        cl_err(&cl, g, "wrong type for 'cluster': expected a group { ... }");
        return;
    }
    n = config_setting_length(g);
    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *const *k;

        for (k = cluster_keys; *k != NULL; k++)
            if (strcmp(*k, config_setting_name(m)) == 0)
                break;
        if (*k == NULL)
            cl_err(&cl, m, "unknown key '%s' in cluster",
                   config_setting_name(m));
    }
    load_redis(&cl, g, c);

    s = config_setting_get_member(g, "node");
    v = cl_str(&cl, g, "node");
    if (s == NULL)
        cl_err(&cl, g, "cluster needs 'node' (this host's name)");
    else if (v != NULL && (!name_ok(v) || strlen(v) >= sizeof(c->node)))
        cl_err(&cl, s, "cluster.node must be 1 to %zu letters, digits, "
               "'-', '_' or '.'", sizeof(c->node) - 1);
    else if (v != NULL)
        strcpy(c->node, v);

    s = config_setting_get_member(g, "prefix");
    v = cl_str(&cl, g, "prefix");
    if (v != NULL && (!name_ok(v) || strlen(v) >= sizeof(c->prefix)))
        cl_err(&cl, s, "cluster.prefix must be 1 to %zu letters, digits, "
               "'-', '_' or '.'", sizeof(c->prefix) - 1);
    else if (v != NULL)
        strcpy(c->prefix, v);

    s = config_setting_get_member(g, "password");
    v = cl_str(&cl, g, "password");
    if (v != NULL) {
        if (strncmp(v, "env:", 4) != 0 && strncmp(v, "file:", 5) != 0) {
            cl_err(&cl, s, "cluster.password must be \"env:NAME\" or "
                   "\"file:PATH\", never the password itself");
        } else {
            rc = gr_cfg_key_resolve(v, dir, c->password, why, sizeof(why));
            if (rc < 0)
                cl_err(&cl, s, "cluster.password: %s", why);
        }
    }

    s = config_setting_get_member(g, "insecure");
    if (s != NULL) {
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            cl_err(&cl, s, "wrong type for 'insecure' in cluster: expected "
                   "a boolean");
        else
            c->insecure = config_setting_get_bool(s) != 0;
    }
    cl_uint(&cl, g, "lease_ms", 100, 3600000, &c->lease_ms);
    cl_uint(&cl, g, "sync_ms", 10, 1000, &c->sync_ms);
    cl_uint(&cl, g, "timeout_ms", 10, 60000, &c->timeout_ms);
    load_tls(&cl, g, dir, c);
    if (c->lease_ms < 4 * c->sync_ms)
        cl_err(&cl, g, "cluster.lease_ms (%u) must be at least 4 times "
               "sync_ms (%u)", c->lease_ms, c->sync_ms);
    c->on = !cl.bad;
    if (cl.bad)
        explicit_bzero(c->password, sizeof(c->password));
}
