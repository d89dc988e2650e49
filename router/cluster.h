/*
 * cluster.h - the router's side of a cluster: shares of every cell's
 * limits held in Redis (docs/CLUSTER.md).  Router-private; no hiredis
 * or OpenSSL type appears here (router/cluster_redis.c wraps both once).
 */
#ifndef GR_RTR_CLUSTER_H
#define GR_RTR_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gr_rtr;
struct gr_cfg_cluster;

/*
 * The share arithmetic (cluster_math.c), pure functions the unit tests
 * drive.  The same decisions are taken by the Lua script in cluster.c;
 * these are its C twin, and the router's own half (want, local limit).
 */

/* Water-fill cap among n wants: out[i] = min(want[i], level), the level
 * as high as sum(out) <= cap allows.  Wants and cap >= 0. */
void gr_rtr_cl_waterfill(const int64_t *want, unsigned n, int64_t cap,
                         int64_t *out);

/*
 * A node's next share, as the script decides it: cur is what it holds,
 * target its fair share, keep what it may not go below (what its table
 * holds or may still admit), free = limit - every node's share (may be
 * < 0 after a limit went down), grace: no growth (Redis came back empty).
 * Never above cur + max(free, 0); never below min(cur, keep).
 */
int64_t gr_rtr_cl_next_share(int64_t cur, int64_t target, int64_t keep,
                             int64_t free, bool grace);

/*
 * What a node asks for on one dimension of a cell: peak is the most its
 * count held over the last window, local its local limit, limit the
 * global one; hungry when callers waited on a count near its limit.
 */
int64_t gr_rtr_cl_want(int64_t peak, int64_t local, int64_t limit,
                       bool hungry);

/* The local limit to publish: the share, lowered to the target at once
 * (the rest goes back later), 0 when the lease may be lost. */
int64_t gr_rtr_cl_local(int64_t share, int64_t target, bool lost);

/*
 * The router's hooks.  _open() starts the Redis thread (after the
 * segment is open, before the first apply); _limit() is called by apply
 * for every cell and dimension with the effective global limit and
 * returns the local limit to write; _tick() runs every loop turn and
 * never blocks on Redis; _close() stops the thread.
 */
int gr_rtr_cluster_open(struct gr_rtr *r, const struct gr_cfg_cluster *cfg,
                        char *err, size_t errlen);
int64_t gr_rtr_cluster_limit(struct gr_rtr *r, size_t cell, unsigned d,
                             int64_t global);
void gr_rtr_cluster_tick(struct gr_rtr *r, int64_t now_ns);
void gr_rtr_cluster_close(struct gr_rtr *r);

/* cluster_redis.c: one connection (plain or TLS, as cfg says), one
 * script, pipelined calls. */
struct gr_rtr_redis;

int gr_rtr_redis_connect(struct gr_rtr_redis **out,
                         const struct gr_cfg_cluster *cfg, char *err,
                         size_t errlen);
void gr_rtr_redis_close(struct gr_rtr_redis *rd);
/* Queue EVALSHA of script (loaded on first use) on key with argv. */
int gr_rtr_redis_append(struct gr_rtr_redis *rd, const char *script,
                        const char *key, unsigned argc, const char **argv);
/* The next reply, an array of integers and strings, into out[0..nout)
 * (a string is -2 there, and its text goes to the next of the max_names
 * names of name_len bytes); returns how many, or -errno (the connection
 * is then unusable: close it). */
int gr_rtr_redis_reply(struct gr_rtr_redis *rd, int64_t *out, unsigned nout,
                       char *names, size_t name_len, unsigned max_names,
                       char *err, size_t errlen);

#endif
