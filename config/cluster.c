/*
 * cluster.c - the cluster section of the config:
 *
 *   cluster = { redis = "unix:/run/redis/redis.sock";  # or "host:port"
 *               node = "host-a";
 *               password = "env:REDIS_PASSWORD";       # or "file:PATH"
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
#include "settings_priv.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* node and prefix */
static bool
check_name(struct gr_cfg_rd *rd, const void *s,
           const struct gr_cfg_setting *row, const char *what,
           const char *label, const char *v, void *base)
{
    (void)what;
    (void)base;
    if (name_ok(v) && strlen(v) < row->size)
        return true;
    gr_cfg_err_at(rd, s, "%s must be 1 to %zu letters, digits, '-', '_' or "
                  "'.'", label, row->size - 1);
    return false;
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

static bool
check_redis(struct gr_cfg_rd *rd, const void *s,
            const struct gr_cfg_setting *row, const char *what,
            const char *label, const char *v, void *base)
{
    const char *colon;

    (void)what;
    (void)base;
    if (strlen(v) >= row->size) {
        gr_cfg_err_at(rd, s, "%s is longer than %zu characters", label,
                      row->size - 1);
        return false;
    }
    if (strncmp(v, "unix:", 5) == 0) {
        if (v[5] != '/') {
            gr_cfg_err_at(rd, s, "%s: a unix socket needs an absolute "
                          "path (unix:/path)", label);
            return false;
        }
        return true;
    }
    colon = strrchr(v, ':');
    if (colon == NULL || colon == v || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        atoi(colon + 1) < 1 || atoi(colon + 1) > 65535) {
        gr_cfg_err_at(rd, s, "%s must be \"unix:/path\" or \"host:port\"",
                      label);
        return false;
    }
    return true;
}

/* A name checked against the server's certificate: a host or an IP. */
static bool
check_server_name(struct gr_cfg_rd *rd, const void *s,
                  const struct gr_cfg_setting *row, const char *what,
                  const char *label, const char *v, void *base)
{
    (void)row;
    (void)what;
    (void)base;
    if (name_ok(v) || strspn(v, "0123456789abcdefABCDEF:.") == strlen(v))
        return true;
    gr_cfg_err_at(rd, s, "%s must be a host name or an IP address "
                  "(letters, digits, '-', '_', '.')", label);
    return false;
}

/* The cluster's settings, read in this order. */
#define C struct gr_cfg_cluster
static const struct gr_cfg_setting cluster_settings[] = {
    {.name = "redis", .type = GR_CFG_T_STRING, .flags = GR_CFG_F_REQUIRED,
     GR_CFG_FIELD(C, redis), .hook = check_redis,
     .need = "\"unix:/path\" or \"host:port\""},
    {.name = "node", .type = GR_CFG_T_STRING, .flags = GR_CFG_F_REQUIRED,
     GR_CFG_FIELD(C, node), .hook = check_name, .need = "this host's name"},
    GR_CFG_STRING(C, prefix, "gemroute", check_name, 0),
    GR_CFG_SECRET(C, password, 0),  /* env: or file: only */
    GR_CFG_BOOL(C, insecure, false, 0),
    GR_CFG_UINT(C, lease_ms, 100, 3600000, 10000, 0),
    GR_CFG_UINT(C, sync_ms, 10, 1000, 100, 0),
    GR_CFG_UINT(C, timeout_ms, 10, 60000, 500, 0),
    GR_CFG_HAND("tls", NULL, 0),    /* its default follows redis: below */
    GR_CFG_PATH(C, tls_ca, 0, 0),
    GR_CFG_PATH(C, tls_cert, 0, 0),
    GR_CFG_PATH(C, tls_key, 0, 0),
    {.name = "tls_server_name", .type = GR_CFG_T_STRING,
     GR_CFG_FIELD(C, tls_server_name), .hook = check_server_name},
    GR_CFG_END,
};
#undef C

/*
 * tls, and what it needs: its default follows the address (on unless
 * local), the TLS files must be readable, and a remote address in clear
 * needs insecure = true.  The table has read the paths already.
 */
static void
load_tls(struct gr_cfg_rd *rd, const config_setting_t *g,
         struct gr_cfg_cluster *c)
{
    const config_setting_t *s = config_setting_get_member(g, "tls");
    static const char *const files[] = {"tls_ca", "tls_cert", "tls_key",
                                        "tls_server_name"};
    const char *paths[] = {c->tls_ca, c->tls_cert, c->tls_key};
    bool local = is_local(c->redis), v;
    unsigned i;

    c->tls = !local;
    if (s != NULL && gr_cfg_get_bool(rd, s, "'tls' in cluster", &v))
        c->tls = v;
    if (c->redis[0] == '\0')
        return;
    if (c->tls && strncmp(c->redis, "unix:", 5) == 0) {
        gr_cfg_err_at(rd, s, "cluster.tls: Redis speaks TLS on a TCP port "
                      "only: set redis = \"host:port\" (its tls-port)");
        return;
    }
    if (!c->tls) {
        if (!local && !c->insecure)
            gr_cfg_err_at(rd, s != NULL ? s :
                          config_setting_get_member(g, "redis"),
                          "cluster.redis '%s' is not local and tls is off: "
                          "set insecure = true to send the traffic in clear",
                          c->redis);
        for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            if (config_setting_get_member(g, files[i]) != NULL)
                gr_cfg_err_at(rd, config_setting_get_member(g, files[i]),
                              "cluster.%s is set but TLS is off (tls = "
                              "false, or a local address without tls = "
                              "true)", files[i]);
        return;
    }
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (paths[i][0] != '\0' && access(paths[i], R_OK) != 0)
            gr_cfg_err_at(rd, config_setting_get_member(g, files[i]),
                          "cluster.%s: cannot read %s", files[i], paths[i]);
    if ((c->tls_cert[0] != '\0') != (c->tls_key[0] != '\0'))
        gr_cfg_err_at(rd, g, "cluster: tls_cert and tls_key go together (a "
                      "client certificate and its key)");
}

void
gr_cfg_cluster_load(const void *group, struct gr_cfg_cluster *c,
                    struct gr_cfg_rd *rd)
{
    const config_setting_t *g = group;
    unsigned before = rd->el->errs->n;

    memset(c, 0, sizeof(*c));
    gr_cfg_settings_defaults(cluster_settings, c);
    c->line = (int)config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        gr_cfg_err_at(rd, g, "wrong type for 'cluster': expected a group "
                      "{ ... }");
        return;
    }
    gr_cfg_settings_unknown(rd, g, cluster_settings, "in cluster");
    gr_cfg_settings_read(rd, g, cluster_settings, "cluster", NULL, c, NULL);
    load_tls(rd, g, c);
    if (c->lease_ms < 4 * c->sync_ms)
        gr_cfg_err_at(rd, g, "cluster.lease_ms (%u) must be at least 4 "
                      "times sync_ms (%u)", c->lease_ms, c->sync_ms);
    /* Any error in the section, or an out-of-memory, leaves it off. */
    c->on = rd->el->errs->n == before && !rd->el->nomem;
    if (!c->on)
        explicit_bzero(c->password, sizeof(c->password));
}
