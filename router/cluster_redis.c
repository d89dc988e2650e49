/*
 * cluster_redis.c - the one place that speaks hiredis: a blocking
 * connection with timeouts (connect and every reply), used only by the
 * cluster's own thread (cluster.c), never by the router's loop.  Calls
 * are pipelined: queue every cell's EVALSHA, then read the replies.  A
 * timeout or an error leaves the connection unusable; the caller closes
 * it and connects again later.
 */
#include "cluster.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gr_rtr_redis {
    redisContext *c;
    char sha[41];           /* the script's SHA1, "" until loaded */
    const char *script;
};

int
gr_rtr_redis_connect(struct gr_rtr_redis **out, const char *addr,
                     const char *password, unsigned timeout_ms, char *err,
                     size_t errlen)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000),
                         (suseconds_t)(timeout_ms % 1000) * 1000};
    struct gr_rtr_redis *rd;
    redisReply *rep;
    char host[256];
    const char *colon;

    *out = NULL;
    rd = calloc(1, sizeof(*rd));
    if (rd == NULL)
        return -ENOMEM;
    if (strncmp(addr, "unix:", 5) == 0) {
        rd->c = redisConnectUnixWithTimeout(addr + 5, tv);
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
            snprintf(err, errlen, "redis %s: not host:port", addr);
            free(rd);
            return -EINVAL;
        }
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = '\0';
        }
        rd->c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    }
    if (rd->c == NULL || rd->c->err) {
        snprintf(err, errlen, "redis %s: %s", addr,
                 rd->c != NULL ? rd->c->errstr : "out of memory");
        gr_rtr_redis_close(rd);
        return -ECONNREFUSED;
    }
    if (redisSetTimeout(rd->c, tv) != REDIS_OK) {
        snprintf(err, errlen, "redis %s: cannot set a timeout", addr);
        gr_rtr_redis_close(rd);
        return -EIO;
    }
    if (password != NULL && password[0] != '\0') {
        rep = redisCommand(rd->c, "AUTH %s", password);
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
            /* never the password: only that it was refused */
            snprintf(err, errlen, "redis %s: AUTH refused%s", addr,
                     rep == NULL ? " (no answer)" : "");
            if (rep != NULL)
                freeReplyObject(rep);
            gr_rtr_redis_close(rd);
            return -EACCES;
        }
        freeReplyObject(rep);
    }
    *out = rd;
    return 0;
}

void
gr_rtr_redis_close(struct gr_rtr_redis *rd)
{
    if (rd == NULL)
        return;
    if (rd->c != NULL)
        redisFree(rd->c);
    free(rd);
}

static int
load_script(struct gr_rtr_redis *rd, const char *script)
{
    redisReply *rep = redisCommand(rd->c, "SCRIPT LOAD %s", script);
    int rc = -EIO;

    if (rep != NULL && rep->type == REDIS_REPLY_STRING && rep->len == 40) {
        memcpy(rd->sha, rep->str, 40);
        rd->sha[40] = '\0';
        rd->script = script;
        rc = 0;
    }
    if (rep != NULL)
        freeReplyObject(rep);
    return rc;
}

int
gr_rtr_redis_append(struct gr_rtr_redis *rd, const char *script,
                    const char *key, unsigned argc, const char **argv)
{
    const char *v[64];
    size_t len[64];
    unsigned i, n = 0;

    if (argc + 4 > 64)
        return -E2BIG;
    /* A Redis that restarted lost its scripts: load it on every
     * connection (a new connection follows every failure). */
    if (rd->script != script && load_script(rd, script) != 0)
        return -EIO;
    v[n++] = "EVALSHA";
    v[n++] = rd->sha;
    v[n++] = "1";
    v[n++] = key;
    for (i = 0; i < argc; i++)
        v[n++] = argv[i];
    for (i = 0; i < n; i++)
        len[i] = strlen(v[i]);
    return redisAppendCommandArgv(rd->c, (int)n, v, len) == REDIS_OK ? 0
                                                                     : -EIO;
}

int
gr_rtr_redis_reply(struct gr_rtr_redis *rd, int64_t *out, unsigned nout,
                   char *names, size_t name_len, unsigned max_names,
                   char *err, size_t errlen)
{
    redisReply *rep = NULL;
    unsigned i, n = 0, k = 0;

    if (redisGetReply(rd->c, (void **)&rep) != REDIS_OK || rep == NULL) {
        snprintf(err, errlen, "redis: %s",
                 rd->c->err ? rd->c->errstr : "no reply");
        return -EIO;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %.*s", (int)rep->len, rep->str);
        freeReplyObject(rep);
        return -EPROTO;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "redis: the script answered no array");
        freeReplyObject(rep);
        return -EPROTO;
    }
    for (i = 0; i < rep->elements && n < nout; i++) {
        const redisReply *e = rep->element[i];

        if (e->type == REDIS_REPLY_STRING && names != NULL) {
            if (k < max_names)
                snprintf(names + k * name_len, name_len, "%.*s",
                         (int)e->len, e->str);
            k++;
            out[n++] = -2;
        } else {
            out[n++] = e->type == REDIS_REPLY_INTEGER ? (int64_t)e->integer
                                                      : -1;
        }
    }
    freeReplyObject(rep);
    return (int)n;
}
