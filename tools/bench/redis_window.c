/*
 * redis_window.c - the Redis contenders of the reservation benchmark,
 * through hiredis on a unix socket (the server is started by
 * tools/bench.sh with no persistence).
 *
 * Both keep, per (project, model), the sorted set of the admissions of
 * the last window (score: the admission instant in microseconds), which
 * is the sliding window that rate-limiting tutorials recommend:
 *
 *   redis-zset  the tutorial: ZREMRANGEBYSCORE (drop what left the
 *               window), ZCARD, ZADD, PEXPIRE in one pipeline, then admit
 *               when the count was under the limit.  The count is read
 *               before the add and other clients' commands run in
 *               between, so concurrent clients can all see room for one
 *               and all add: it over-admits.  A refused request removes
 *               its member again (ZREM), or refusals would fill the set.
 *   redis-lua   the same check made atomic in a Lua script (EVALSHA),
 *               on the server's clock (TIME), so scripts see each other
 *               in the order they run: correct.
 *
 * Both check one dimension (requests) and have no commit step: the
 * admission counts from its own instant.  gemroute's reserve + commit
 * also checks tokens and the day, counts the call in flight and moves
 * its window to the answer's first byte, so this comparison favours
 * Redis.
 */
#include "bench.h"

#include <hiredis/hiredis.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_MAX 48

static const char lua_window[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local old = now - tonumber(ARGV[2])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', old)\n"
    "if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then\n"
    "  redis.call('ZADD', KEYS[1], now, ARGV[3])\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "  return now\n"
    "end\n"
    "return -1\n";

struct redis_h {
    redisContext *c;
    int lua;
    unsigned n_keys;
    char (*keys)[KEY_MAX];
    char sha[48];
    int32_t pid;
    uint64_t seq;
    uint64_t rng;
    long long limit;
    long long window_us;
    long long window_ms;
    int checking;               /* read the clock after each reply */
};

static int run_id;      /* the parent's pid: keys of this run only */

static uint64_t
next_rand(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static int
redis_setup(const struct gr_bench_opts *o, char *err, size_t n)
{
    if (o->redis == NULL || o->projects < 1) {
        snprintf(err, n, "--redis SOCKET and --projects N are required");
        return -1;
    }
    run_id = (int)getpid();
    gr_bench_redis_zset.check_window_ns = o->window_ms * 1000000;
    gr_bench_redis_lua.check_window_ns = o->window_ms * 1000000;
    return 0;
}

static void
redis_close(void *p)
{
    struct redis_h *h = p;

    if (h->c != NULL)
        redisFree(h->c);
    free(h->keys);
    free(h);
}

static void *
redis_open_common(const struct gr_bench_opts *o, unsigned worker, int lua,
                  char *err, size_t n)
{
    struct redis_h *h = calloc(1, sizeof(*h));
    redisReply *r;
    unsigned i;

    if (h == NULL)
        goto nomem;
    h->keys = calloc(o->projects, KEY_MAX);
    if (h->keys == NULL)
        goto nomem;
    h->lua = lua;
    h->n_keys = o->projects;
    for (i = 0; i < o->projects; i++)
        snprintf(h->keys[i], KEY_MAX, "gr:%d:p%u:%s", run_id, i + 1,
                 o->model);
    h->pid = (int32_t)getpid();
    h->rng = ((uint64_t)gr_bench_mono_ns() ^ ((uint64_t)h->pid << 32) ^
              worker) | 1;
    h->limit = o->rpm;
    h->window_ms = o->window_ms;
    h->window_us = o->window_ms * 1000;
    h->checking = o->check;
    h->c = redisConnectUnix(o->redis);
    if (h->c == NULL || h->c->err) {
        snprintf(err, n, "redisConnectUnix(%s): %s", o->redis,
                 h->c != NULL ? h->c->errstr : "out of memory");
        redis_close(h);
        return NULL;
    }
    if (lua) {
        r = redisCommand(h->c, "SCRIPT LOAD %s", lua_window);
        if (r == NULL || r->type != REDIS_REPLY_STRING) {
            snprintf(err, n, "SCRIPT LOAD: %s",
                     r != NULL && r->str != NULL ? r->str : h->c->errstr);
            if (r != NULL)
                freeReplyObject(r);
            redis_close(h);
            return NULL;
        }
        snprintf(h->sha, sizeof(h->sha), "%s", r->str);
        freeReplyObject(r);
    }
    return h;

nomem:
    snprintf(err, n, "out of memory");
    if (h != NULL)
        free(h);
    return NULL;
}

static void *
zset_open(const struct gr_bench_opts *o, unsigned worker, char *err,
          size_t n)
{
    return redis_open_common(o, worker, 0, err, n);
}

static void *
lua_open(const struct gr_bench_opts *o, unsigned worker, char *err, size_t n)
{
    return redis_open_common(o, worker, 1, err, n);
}

/* Decimal text of v into buf (at least 24 bytes); returns its length.
 * hiredis' printf-like formatting costs more than the rest of the client
 * together, so the commands are built as argument vectors. */
static size_t
fmt_ll(char *buf, long long v)
{
    char tmp[24];
    size_t n = 0, i = 0;
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v
                                 : (unsigned long long)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        buf[i++] = '-';
    while (n > 0)
        buf[i++] = tmp[--n];
    buf[i] = '\0';
    return i;
}

/* "pid:seq": unique among every member any worker adds. */
static size_t
fmt_member(struct redis_h *h, char *buf)
{
    size_t n = fmt_ll(buf, h->pid);

    buf[n++] = ':';
    return n + fmt_ll(buf + n, (long long)++h->seq);
}

static void
append(redisContext *c, int argc, const char **argv, const size_t *len)
{
    redisAppendCommandArgv(c, argc, argv, len);
}

/* The tutorial: check, then add, in one pipeline but not atomically. */
static int
zset_op(void *p, struct gr_bench_adm *adm)
{
    struct redis_h *h = p;
    unsigned k = (unsigned)(next_rand(&h->rng) % h->n_keys), i;
    long long now = gr_bench_wall_ns() / 1000, count = -1;
    char member[48], old[24], at[24], ttl[24];
    const char *key = h->keys[k], *argv[4];
    size_t len[4], klen = strlen(key), mlen = fmt_member(h, member);
    redisReply *r;
    int bad = 0;

    argv[0] = "ZREMRANGEBYSCORE", len[0] = 16;
    argv[1] = key, len[1] = klen;
    argv[2] = "-inf", len[2] = 4;
    argv[3] = old, len[3] = fmt_ll(old, now - h->window_us);
    append(h->c, 4, argv, len);
    argv[0] = "ZCARD", len[0] = 5;
    append(h->c, 2, argv, len);
    argv[0] = "ZADD", len[0] = 4;
    argv[2] = at, len[2] = fmt_ll(at, now);
    argv[3] = member, len[3] = mlen;
    append(h->c, 4, argv, len);
    argv[0] = "PEXPIRE", len[0] = 7;
    argv[2] = ttl, len[2] = fmt_ll(ttl, h->window_ms);
    append(h->c, 3, argv, len);
    for (i = 0; i < 4; i++) {
        if (redisGetReply(h->c, (void **)&r) != REDIS_OK || r == NULL)
            return -1;
        if (r->type == REDIS_REPLY_ERROR)
            bad = 1;
        if (i == 1 && r->type == REDIS_REPLY_INTEGER)
            count = r->integer;
        freeReplyObject(r);
    }
    if (bad || count < 0)
        return -1;
    if (count >= h->limit) {
        argv[0] = "ZREM", len[0] = 4;
        argv[2] = member, len[2] = mlen;
        r = redisCommandArgv(h->c, 3, argv, len);
        if (r == NULL)
            return -1;
        freeReplyObject(r);
        return 1;
    }
    adm->cell = k;
    adm->a_ns = now * 1000;
    adm->s_ns = adm->a_ns;
    adm->sent_ns = h->checking ? gr_bench_wall_ns() : adm->a_ns;
    return 0;
}

/* The same check as one atomic script on the server's clock. */
static int
lua_op(void *p, struct gr_bench_adm *adm)
{
    struct redis_h *h = p;
    unsigned k = (unsigned)(next_rand(&h->rng) % h->n_keys);
    char member[48], lim[24], win[24], ttl[24];
    const char *argv[8];
    size_t len[8];
    redisReply *r;
    long long at;

    argv[0] = "EVALSHA", len[0] = 7;
    argv[1] = h->sha, len[1] = strlen(h->sha);
    argv[2] = "1", len[2] = 1;
    argv[3] = h->keys[k], len[3] = strlen(h->keys[k]);
    argv[4] = lim, len[4] = fmt_ll(lim, h->limit);
    argv[5] = win, len[5] = fmt_ll(win, h->window_us);
    argv[6] = member, len[6] = fmt_member(h, member);
    argv[7] = ttl, len[7] = fmt_ll(ttl, h->window_ms);
    r = redisCommandArgv(h->c, 8, argv, len);
    if (r == NULL)
        return -1;
    if (r->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        return -1;
    }
    at = r->integer;
    freeReplyObject(r);
    if (at < 0)
        return 1;
    adm->cell = k;
    adm->a_ns = at * 1000;
    adm->s_ns = adm->a_ns;
    adm->sent_ns = h->checking ? gr_bench_wall_ns() : adm->a_ns;
    return 0;
}

struct gr_bench_impl gr_bench_redis_zset = {
    .name = "redis-zset",
    .setup = redis_setup,
    .open = zset_open,
    .op = zset_op,
    .close = redis_close,
    .clock_ns = gr_bench_wall_ns,
};

struct gr_bench_impl gr_bench_redis_lua = {
    .name = "redis-lua",
    .setup = redis_setup,
    .open = lua_open,
    .op = lua_op,
    .close = redis_close,
    .clock_ns = gr_bench_wall_ns,
};
