/*
 * cluster.c - many hosts, one quota: the router's shares of every cell's
 * limits, held in Redis (docs/CLUSTER.md has the whole argument).
 *
 * Per cell (project, model) Redis holds one hash, PREFIX:{project}:model,
 * with each node's share (s<d>:<node>), want (w<d>:<node>) and use
 * (u<d>:<node>) per dimension, its lease (e:<node>, Redis' clock), the
 * day it last spoke (y:<node>), its instance (i:<node>), and the shared
 * registers (r_<name>, v_<name>).
 * One Lua script (SCRIPT below) renews the caller's lease,
 * frees the shares of nodes dead for a lease plus a window, water-fills
 * the limit among the live nodes' wants, and grows or shrinks the
 * caller's share toward its fair part: grows only by units no node holds,
 * shrinks only down to what the caller says its table holds (keep).
 *
 * The router publishes min(share, target) as the local limit of each
 * cell.  To shrink, it lowers the local limit first, waits until every
 * reservation that may have read the old limit has ended (the INTENT
 * leases seen after the lowering have moved on), and only then reports a
 * keep below the old limit.  So on every host, what its windows hold is
 * at most its share, and the shares sum to at most the limit.
 *
 * Redis is spoken to by one thread of our own (cluster_redis.c, with
 * timeouts); the router's loop only hands it a request and takes its
 * answer under a mutex it never waits for (trylock).  A node whose last
 * exchange that succeeded was sent more than half a lease ago publishes
 * 0: its lease may be running out, after which others take its share.
 * Operator flags, cooldowns and learned limits travel in the same call
 * as versioned registers (take_regs(), put_regs()); every node's share
 * and use go to the companion segment for status (view_put()).
 */
#include "router.h"
#include "cluster.h"
#include "clock.h"
#include "companion.h"
#include "cluster_view.h"
#include "health.h"
#include "reserve.h"
#include "seqlock.h"
#include "window.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEAK_BUCKETS 8u          /* over PEAK_SPAN of a window */
#define PEAK_SPAN 2             /* the peak is over 1/PEAK_SPAN window */
#define KEY_MAX (GR_CFG_NAME_MAX * 3 + 8)
#define NREG (2 + 2 * GR_NDIM)  /* registers: op, cool[GR_NDIM], cell
                                   cool, learned[GR_NDIM] */
#define NARGS (4 + 5 * GR_NDIM + NREG + 2)
#define NOUT_FIXED (2 * GR_NDIM + 2 + 2 * NREG + 2)
#define NOUT (NOUT_FIXED + GR_CV_NODES * (1 + 2 * GR_NDIM))
#define REG_OP 0
#define REG_COOL 1              /* + d */
#define REG_CELL_COOL (1 + GR_NDIM)
#define REG_LEARNED (2 + GR_NDIM)   /* + d */
/* The script below is written for these numbers (ND, NREG there). */
_Static_assert(GR_NDIM == 5 && NREG == 12, "the script's ND and NREG");
#define ND_S "5"
#define NREG_S "12"
/* the operator and disable flags a cluster shares: the cell's, and the
 * project's shifted by 8 */
#define OP_CELL_BITS (GR_CELL_OP_DISABLED | GR_CELL_OP_DRAINING | \
                      GR_CELL_DISABLED_MODEL)
#define OP_PROJ_BITS (GR_PROJ_OP_DISABLED | GR_PROJ_OP_DRAINING)
#define SNAP_MAX 256u
#define IDLE_MAX_NS (INT64_C(800) * 1000000)

/*
 * KEYS[1] the cell's hash.  ARGV: node, lease_ms, window_ms, Pacific
 * day; per dimension: limit (-1 unlimited), want, keep, reg (the share
 * to register when Redis has none for us: it lost it), used (for
 * status); one value per register (operator flags, cooldown deadlines
 * in Redis ms x 8 + source, learned limits), "" when unchanged here; the
 * router's instance (another instance under our name with a live lease
 * is an error); the hash's birth as we last saw it (0 never).
 * Returns the shares, the targets, 1 while in the grace (no growth),
 * Redis' time (ms), each register's value and version (bumped by every
 * change), the hash's birth, then up to 8 nodes: name, shares, uses.
 * The day dimensions (RPD, TPD: d = 2 and 4) keep a dead node's share
 * and use until its day ends.
 */
static const char SCRIPT[] =
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
"local ND, NREG = " ND_S ", " NREG_S "\n"
"local key, me = KEYS[1], ARGV[1]\n"
"local inst = ARGV[4 + 5 * ND + NREG + 1]\n"
"local lease, win, day = tonumber(ARGV[2]), tonumber(ARGV[3]),"
" tonumber(ARGV[4])\n"
"local h = redis.call('HGETALL', key)\n"
"local nodes, g = {}, {}\n"
"for i = 1, #h, 2 do\n"
"  local a, n = string.match(h[i], '^(%a%d?):(.+)$')\n"
"  if a then\n"
"    local x = nodes[n]\n"
"    if not x then x = {}; nodes[n] = x end\n"
"    x[a] = h[i + 1]\n"
"  else\n"
"    g[h[i]] = h[i + 1]\n"
"  end\n"
"end\n"
"local mine = nodes[me]\n"
"if mine and mine['i'] and mine['i'] ~= inst and\n"
"   (tonumber(mine['e']) or 0) >= now then\n"
"  return redis.error_reply('node ' .. me .. ' is held by another router' ..\n"
"    ' (the same cluster.node on two hosts?)')\n"
"end\n"
"if not mine then mine = {}; nodes[me] = mine end\n"
"local set, dels = {}, {}\n"
"local born = tonumber(g['born'])\n"
"local seen = tonumber(ARGV[4 + 5 * ND + NREG + 2]) or 0\n"
"if not born then\n"
"  born = now; set[#set + 1] = 'born'; set[#set + 1] = now\n"
"end\n"
"local gu = tonumber(g['gu']) or born + lease\n"
"if seen > 0 and seen ~= born and born + lease + win > gu then\n"
"  gu = born + lease + win\n"
"end\n"
"set[#set + 1] = 'gu'; set[#set + 1] = gu\n"
"local grace = now < gu\n"
"for n, x in pairs(nodes) do\n"
"  if n ~= me then\n"
"    local e, y = tonumber(x['e']), tonumber(x['y']) or 0\n"
"    if (e and now > e + win) or (not e and y < day) then\n"
"      for a, _ in pairs(x) do\n"
"        if not ((a == 's2' or a == 'u2' or a == 's4' or a == 'u4' or\n"
"                 a == 'y') and y >= day) then\n"
"          dels[#dels + 1] = a .. ':' .. n; x[a] = nil\n"
"        end\n"
"      end\n"
"    end\n"
"  end\n"
"end\n"
"mine['e'] = tostring(now + lease)\n"
"set[#set + 1] = 'e:' .. me; set[#set + 1] = now + lease\n"
"set[#set + 1] = 'y:' .. me; set[#set + 1] = day\n"
"set[#set + 1] = 'i:' .. me; set[#set + 1] = inst\n"
"local live = {}\n"
"for n, x in pairs(nodes) do\n"
"  local e = tonumber(x['e'])\n"
"  if e and e >= now then live[n] = true end\n"
"end\n"
"local out = {}\n"
"for d = 0, ND - 1 do\n"
"  local b = 5 + 5 * d\n"
"  local L, want, keep = tonumber(ARGV[b]), tonumber(ARGV[b + 1]),\n"
"    tonumber(ARGV[b + 2])\n"
"  local reg, used = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])\n"
"  local sd, wd, ud = 's' .. d, 'w' .. d, 'u' .. d\n"
"  if L < 0 then\n"
"    out[d + 1] = -1; out[d + 1 + ND] = -1\n"
"    if mine[sd] then dels[#dels + 1] = sd .. ':' .. me; mine[sd] = nil end\n"
"  else\n"
"    local cur = tonumber(mine[sd]) or reg\n"
"    local total, dead, wants = cur, 0, {want}\n"
"    for n, x in pairs(nodes) do\n"
"      if n ~= me then\n"
"        local s = tonumber(x[sd])\n"
"        if s then\n"
"          total = total + s\n"
"          if not live[n] then dead = dead + s end\n"
"        end\n"
"        if live[n] then wants[#wants + 1] = tonumber(x[wd]) or 0 end\n"
"      end\n"
"    end\n"
"    table.sort(wants)\n"
"    local left, level = L - dead, nil\n"
"    if left < 0 then left = 0 end\n"
"    for i = 1, #wants do\n"
"      local fair = math.floor(left / (#wants - i + 1))\n"
"      if wants[i] > fair then level = fair; break end\n"
"      left = left - wants[i]\n"
"    end\n"
"    local tgt = want\n"
"    if level ~= nil and level < tgt then tgt = level end\n"
"    local new = cur\n"
"    if cur > tgt then\n"
"      new = math.max(tgt, keep); if new > cur then new = cur end\n"
"    elseif cur < tgt and not grace and L - total > 0 then\n"
"      new = cur + math.min(tgt - cur, L - total)\n"
"    end\n"
"    if new < 0 then new = 0 end\n"
"    mine[sd] = tostring(new); mine[ud] = tostring(used)\n"
"    set[#set + 1] = sd .. ':' .. me; set[#set + 1] = new\n"
"    set[#set + 1] = wd .. ':' .. me; set[#set + 1] = want\n"
"    set[#set + 1] = ud .. ':' .. me; set[#set + 1] = used\n"
"    set[#set + 1] = 'L' .. d; set[#set + 1] = L\n"
"    out[d + 1] = new; out[d + 1 + ND] = tgt\n"
"  end\n"
"end\n"
"out[2 * ND + 1] = grace and 1 or 0\n"
"out[2 * ND + 2] = now\n"
"local regs = {'op'}\n"
"for d = 0, ND - 1 do regs[#regs + 1] = 'c' .. d end\n"
"regs[#regs + 1] = 'cc'\n"
"for d = 0, ND - 1 do regs[#regs + 1] = 'l' .. d end\n"
"for i, name in ipairs(regs) do\n"
"  local a = ARGV[4 + 5 * ND + i]\n"
"  local dflt = 0\n"
"  if string.sub(name, 1, 1) == 'l' then dflt = -1 end\n"
"  local v = tonumber(g['r_' .. name]) or dflt\n"
"  local ver = tonumber(g['v_' .. name]) or 0\n"
"  if a ~= nil and a ~= '' then\n"
"    v = tonumber(a); ver = ver + 1\n"
"    set[#set + 1] = 'r_' .. name; set[#set + 1] = v\n"
"    set[#set + 1] = 'v_' .. name; set[#set + 1] = ver\n"
"  end\n"
"  out[2 * ND + 1 + 2 * i] = v; out[2 * ND + 2 + 2 * i] = ver\n"
"end\n"
"if #dels > 0 then redis.call('HDEL', key, unpack(dels)) end\n"
"redis.call('HSET', key, unpack(set))\n"
"redis.call('PEXPIRE', key, 2 * (lease + win) + 86400000)\n"
"local names = {}\n"
"for n, x in pairs(nodes) do\n"
"  if next(x) ~= nil then names[#names + 1] = n end\n"
"end\n"
"table.sort(names)\n"
"local nn = math.min(#names, 8)\n"
"out[2 * ND + 2 + 2 * NREG + 1] = born\n"
"out[2 * ND + 2 + 2 * NREG + 2] = nn\n"
"for i = 1, nn do\n"
"  local x = nodes[names[i]]\n"
"  out[#out + 1] = names[i]\n"
"  for d = 0, ND - 1 do out[#out + 1] = tonumber(x['s' .. d]) or -1 end\n"
"  for d = 0, ND - 1 do out[#out + 1] = tonumber(x['u' .. d]) or -1 end\n"
"end\n"
"return out\n";

/* One cell's exchange, built by the loop, sent by the thread. */
struct cl_ent {
    uint32_t cell;
    char key[KEY_MAX];
    int64_t arg[GR_NDIM][5];        /* limit, want, keep, reg, used */
    int64_t reg[NREG];              /* a register's new value */
    bool push[NREG];                /* ... when it changed here */
    int64_t out[NOUT];
    char names[GR_CV_NODES][GR_SHM_NAME_MAX];
    bool ok;
};

struct gr_rtr_cluster {
    struct gr_cfg_cluster cfg;
    uint32_t ncells;
    int64_t window_ms;

    /* the loop's state, per cell and dimension */
    int64_t (*global)[GR_NDIM];     /* effective limit from apply; -1 */
    int64_t (*share)[GR_NDIM];      /* granted, as last heard */
    int64_t (*target)[GR_NDIM];
    int64_t (*local)[GR_NDIM];      /* published in the table */
    int64_t (*pending)[GR_NDIM];    /* highest limit a reservation may
                                       still act on; 0 once clean */
    uint64_t (*lowered)[GR_NDIM];   /* round of the last lowering */
    int64_t (*peak)[GR_NDIM][PEAK_BUCKETS];
    uint64_t *rejected;             /* the cell's counter, last seen */
    bool *known;                    /* apply gave it limits */
    int64_t *next_sync;             /* ns: a settled cell's next exchange */
    int64_t *born_seen;             /* the cell's hash's birth (Redis ms)
                                       as last heard; 0 never */
    int64_t (*sent)[GR_NDIM][5];    /* the arguments last sent */
    char (*owner)[KEY_MAX];         /* the Redis key its shares are for */
    int64_t (*seen)[NREG];          /* register values as last synced, in
                                       local terms (ns CLOCK_MONOTONIC
                                       x 8 + source for cooldowns) */
    uint32_t (*seen_ver)[NREG];
    bool (*force)[NREG];            /* push this one next time */
    int64_t offset_ms;              /* Redis' ms - local monotonic ms */
    bool have_offset;
    int32_t today;                  /* the Pacific day the loop counted
                                       the exchange's uses on, for the
                                       script (handed over with ent) */

    /* the companion segment for status (shm/cluster_view.h) */
    char instance[24];              /* see gr_cv_header.instance */
    char view_name[GR_SHM_NAME_MAX + 16];
    struct gr_cv_header *view;
    size_t view_size;
    uint64_t round;
    int64_t next_ns;
    int64_t bucket;                 /* current peak bucket number */

    /* leases in INTENT after a round's lowerings, and when all of them
     * had moved on: the reservations that may have read a higher limit */
    uint32_t snap_idx[SNAP_MAX];
    uint64_t snap_word[SNAP_MAX];
    unsigned snap_n;
    uint64_t snap_round;            /* 0 = none pending */
    uint64_t clean_round;

    /* the exchange with the thread, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    bool started, stop, req_ready, busy, res_ready;
    struct cl_ent *ent;             /* [ncells] */
    unsigned n_ent;
    int64_t req_sent_ns;
    int64_t last_ok_ns;             /* send time of the last success */
    bool lost_logged;
    char err[256];
    bool err_new;
    char err_said[256];             /* the loop's: last error logged */
    int64_t err_next_ns;
};

/* The Redis thread: take a request, send it, post the answer. */
static void *
cl_thread(void *arg)
{
    struct gr_rtr_cluster *cl = arg;
    struct gr_rtr_redis *rd = NULL;
    char err[256] = "";
    char num[NARGS][24];
    const char *argv[NARGS];
    unsigned i, k, d;
    int rc;

    pthread_mutex_lock(&cl->mu);
    for (;;) {
        while (!cl->stop && !cl->req_ready)
            pthread_cond_wait(&cl->cv, &cl->mu);
        if (cl->stop)
            break;
        cl->req_ready = false;
        cl->busy = true;
        pthread_mutex_unlock(&cl->mu);

        err[0] = '\0';
        rc = 0;
        if (rd == NULL)
            rc = gr_rtr_redis_connect(&rd, &cl->cfg, err, sizeof(err));
        for (i = 0; i < cl->n_ent; i++)
            cl->ent[i].ok = false;
        for (i = 0; rc == 0 && i < cl->n_ent; i++) {
            struct cl_ent *e = &cl->ent[i];

            k = 0;
            argv[k++] = cl->cfg.node;
            snprintf(num[1], sizeof(num[1]), "%u", cl->cfg.lease_ms);
            argv[k++] = num[1];
            snprintf(num[2], sizeof(num[2]), "%lld",
                     (long long)cl->window_ms);
            argv[k++] = num[2];
            snprintf(num[3], sizeof(num[3]), "%d",
                     cl->today);
            argv[k++] = num[3];
            for (d = 0; d < GR_NDIM; d++) {
                unsigned j;

                for (j = 0; j < 5; j++) {
                    snprintf(num[k], sizeof(num[k]), "%lld",
                             (long long)e->arg[d][j]);
                    argv[k] = num[k];
                    k++;
                }
            }
            for (d = 0; d < NREG; d++) {
                if (e->push[d]) {
                    snprintf(num[k], sizeof(num[k]), "%lld",
                             (long long)e->reg[d]);
                    argv[k] = num[k];
                } else {
                    argv[k] = "";
                }
                k++;
            }
            argv[k++] = cl->instance;
            snprintf(num[k], sizeof(num[k]), "%lld",
                     (long long)cl->born_seen[e->cell]);
            argv[k] = num[k];
            k++;
            rc = gr_rtr_redis_append(rd, SCRIPT, e->key, k, argv);
            if (rc != 0)
                snprintf(err, sizeof(err), "redis: cannot send");
        }
        for (i = 0; rc == 0 && i < cl->n_ent; i++) {
            struct cl_ent *e = &cl->ent[i];

            rc = gr_rtr_redis_reply(rd, e->out, NOUT, &e->names[0][0],
                                    sizeof(e->names[0]), GR_CV_NODES, err,
                                    sizeof(err));
            if (rc >= NOUT_FIXED) {
                e->ok = true;
                rc = 0;
            } else if (rc >= 0) {
                snprintf(err, sizeof(err), "redis: short answer");
                rc = -EPROTO;
            }
        }
        if (rc != 0 && rd != NULL) {
            gr_rtr_redis_close(rd);
            rd = NULL;
        }

        pthread_mutex_lock(&cl->mu);
        cl->busy = false;
        cl->res_ready = true;
        if (err[0] != '\0') {
            snprintf(cl->err, sizeof(cl->err), "%s", err);
            cl->err_new = true;
        }
    }
    pthread_mutex_unlock(&cl->mu);
    gr_rtr_redis_close(rd);
    return NULL;
}

#define ALLOC(p, n) ((p) = calloc((n), sizeof(*(p))))

/* Create (or take over) "<shm>.cluster", the view status reads.  A
 * failure only costs the view: logged, not fatal. */
static void
view_open(struct gr_rtr *r, struct gr_rtr_cluster *cl, unsigned mode)
{
    size_t size = sizeof(struct gr_cv_header) +
                  (size_t)cl->ncells * sizeof(struct gr_cv_cell);
    struct gr_shm_comp c;
    int rc;

    rc = gr_shm_comp_name(r->t.name, GR_CV_SUFFIX, cl->view_name,
                          sizeof(cl->view_name));
    /* Ours, of this size: taken over (its instance read below); anything
     * else under the name is replaced. */
    if (rc == 0)
        rc = gr_shm_comp_adopt(cl->view_name, size, "cluster view", &c,
                               NULL, 0);
    if (rc != 0 && rc != -ENAMETOOLONG)
        rc = gr_shm_comp_create(cl->view_name, size, mode, (gid_t)-1,
                                rc != -ENOENT, &c, NULL, 0);
    if (rc != 0) {
        gr_rtr_log("cluster: shm_open(%s): %s (no view for status)",
                   cl->view_name, strerror(-rc));
        return;
    }
    cl->view = c.base;
    cl->view_size = size;
    /* An adopted table keeps its instance: Redis still knows it. */
    if (cl->view->magic == GR_CV_MAGIC && cl->view->ncells == cl->ncells &&
        cl->view->instance != 0)
        snprintf(cl->instance, sizeof(cl->instance), "%llx",
                 (unsigned long long)cl->view->instance);
    else
        cl->view->instance = strtoull(cl->instance, NULL, 16);
    cl->view->version = GR_CV_VERSION;
    cl->view->ncells = cl->ncells;
    cl->view->max_models = r->t.max_models;
    snprintf(cl->view->node, sizeof(cl->view->node), "%s", cl->cfg.node);
    /* a reader that sees the magic sees the header */
    gr_shm_comp_publish(&cl->view->magic, GR_CV_MAGIC);
}

/* One cell's nodes, as the script answered, into the view. */
static void
view_put(struct gr_rtr_cluster *cl, const struct cl_ent *e)
{
    struct gr_cv_cell *vc, x;
    int64_t n;
    unsigned k, d, at = NOUT_FIXED;

    if (cl->view == NULL || e->cell >= cl->ncells)
        return;
    vc = (struct gr_cv_cell *)(cl->view + 1) + e->cell;
    n = e->out[NOUT_FIXED - 1];
    if (n < 0 || n > GR_CV_NODES)
        n = 0;
    memset(&x, 0, sizeof(x));
    x.n = (uint32_t)n;
    for (d = 0; d < GR_NDIM; d++)
        x.limit[d] = e->arg[d][0];
    for (k = 0; k < (unsigned)n; k++) {
        snprintf(x.node[k].name, sizeof(x.node[k].name), "%s",
                 e->names[k]);
        at++;       /* the name */
        for (d = 0; d < GR_NDIM; d++)
            x.node[k].share[d] = e->out[at++];
        for (d = 0; d < GR_NDIM; d++)
            x.node[k].used[d] = e->out[at++];
    }
    /* the record after its counter, with the seqlock's release stores */
    gr_shm_seq_write_begin(&vc->seq);
    gr_shm_seq_copy_in(&vc->n, &x.n,
                       sizeof(x) - offsetof(struct gr_cv_cell, n));
    gr_shm_seq_write_end(&vc->seq);
}

int
gr_rtr_cluster_open(struct gr_rtr *r, const struct gr_cfg_cluster *cfg,
                    char *err, size_t errlen)
{
    struct gr_rtr_cluster *cl;
    uint32_t n = r->t.max_projects * r->t.max_models;
    int rc;

    cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return -ENOMEM;
    cl->cfg = *cfg;
    cl->ncells = n;
    cl->window_ms = r->t.window_ns / 1000000;
    if (!ALLOC(cl->global, n) || !ALLOC(cl->share, n) ||
        !ALLOC(cl->target, n) || !ALLOC(cl->local, n) ||
        !ALLOC(cl->pending, n) || !ALLOC(cl->lowered, n) ||
        !ALLOC(cl->peak, n) || !ALLOC(cl->rejected, n) ||
        !ALLOC(cl->known, n) || !ALLOC(cl->owner, n) ||
        !ALLOC(cl->ent, n) || !ALLOC(cl->seen, n) ||
        !ALLOC(cl->seen_ver, n) || !ALLOC(cl->force, n) ||
        !ALLOC(cl->next_sync, n) || !ALLOC(cl->sent, n) ||
        !ALLOC(cl->born_seen, n)) {
        rc = -ENOMEM;
        snprintf(err, errlen, "cluster: out of memory");
        goto fail;
    }
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->cv, NULL);
    rc = -pthread_create(&cl->th, NULL, cl_thread, cl);
    if (rc != 0) {
        snprintf(err, errlen, "cluster: pthread_create: %s", strerror(-rc));
        goto fail;
    }
    {
        uint64_t id = 0;

        if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id) ||
            id == 0)
            id = (uint64_t)gr_shm_now_wall() ^ (uint64_t)getpid() << 32;
        snprintf(cl->instance, sizeof(cl->instance), "%llx",
                 (unsigned long long)id);
    }
    cl->started = true;
    r->cluster = cl;
    view_open(r, cl, r->cfg != NULL ? r->cfg->router.mode : 0600);
    gr_rtr_log("cluster: node %s, redis %s, lease %u ms: limits are "
               "shares granted through Redis", cfg->node, cfg->redis,
               cfg->lease_ms);
    return 0;

fail:
    free(cl->global);
    free(cl->share);
    free(cl->target);
    free(cl->local);
    free(cl->pending);
    free(cl->lowered);
    free(cl->peak);
    free(cl->rejected);
    free(cl->known);
    free(cl->owner);
    free(cl->ent);
    free(cl->seen);
    free(cl->seen_ver);
    free(cl->force);
    free(cl->next_sync);
    free(cl->sent);
    free(cl->born_seen);
    explicit_bzero(cl, sizeof(*cl));
    free(cl);
    return rc;
}

void
gr_rtr_cluster_close(struct gr_rtr *r)
{
    struct gr_rtr_cluster *cl = r->cluster;

    if (cl == NULL)
        return;
    pthread_mutex_lock(&cl->mu);
    cl->stop = true;
    pthread_cond_signal(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    pthread_join(cl->th, NULL);
    if (cl->view != NULL) {
        munmap(cl->view, cl->view_size);
        if (r->unlink_on_exit)
            shm_unlink(cl->view_name);
    }
    free(cl->global);
    free(cl->share);
    free(cl->target);
    free(cl->local);
    free(cl->pending);
    free(cl->lowered);
    free(cl->peak);
    free(cl->rejected);
    free(cl->known);
    free(cl->owner);
    free(cl->ent);
    free(cl->seen);
    free(cl->seen_ver);
    free(cl->force);
    free(cl->next_sync);
    free(cl->sent);
    free(cl->born_seen);
    explicit_bzero(cl->cfg.password, sizeof(cl->cfg.password));
    free(cl);
    r->cluster = NULL;
}

/* The local limit of a shared dimension; unlimited and 0 are not
 * shared (every host has the same). */
static bool
shared(int64_t global)
{
    return global > 0;
}

int64_t
gr_rtr_cluster_limit(struct gr_rtr *r, size_t cell, unsigned d,
                     int64_t global)
{
    struct gr_rtr_cluster *cl = r->cluster;

    if (cl == NULL || cell >= cl->ncells || d >= GR_NDIM)
        return global;
    cl->global[cell][d] = global;
    cl->known[cell] = true;
    if (!shared(global))
        return global;
    return cl->local[cell][d] < global ? cl->local[cell][d] : global;
}

/* Write cell's local limit on d into the table and the mirror. */
static void
publish(struct gr_rtr *r, uint32_t cell, unsigned d, int64_t v)
{
    struct gr_rtr_cluster *cl = r->cluster;

    if (v < cl->local[cell][d]) {
        /* a reservation may have read the higher one: it stays counted
         * until the leases seen after this lowering have moved on */
        if (cl->pending[cell][d] < cl->local[cell][d])
            cl->pending[cell][d] = cl->local[cell][d];
        cl->lowered[cell][d] = cl->round;
    }
    cl->local[cell][d] = v;
    r->m.limit[cell][d] = v;
    /* seq_cst: ordered before the seq_cst loads of the lease scan that
     * follows (scan_intents()), a store-load order: a reservation whose
     * INTENT the scan misses claimed it after, and its claim (a locked
     * read-modify-write) comes before its read of the limit */
    atomic_store_explicit(&r->t.cells[cell].limit[d], gr_shm_limit_pack(v),
                          memory_order_seq_cst);
}

/*
 * The leases in INTENT now: a reservation reads the limits after its
 * lease went INTENT and admits before it leaves INTENT, so once every
 * one seen here has moved on, none acts on a limit older than this scan.
 */
static void
scan_intents(struct gr_rtr *r)
{
    struct gr_rtr_cluster *cl = r->cluster;
    struct gr_shm *t = &r->t;
    uint32_t i;
    unsigned k;

    if (cl->snap_round != 0) {
        for (k = 0; k < cl->snap_n; k++)
            /* acquire: pairs with the owner's store of its state */
            if (atomic_load_explicit(&t->leases[cl->snap_idx[k]].state,
                                     memory_order_acquire) ==
                cl->snap_word[k])
                return;     /* still there: wait */
        cl->clean_round = cl->snap_round;
        cl->snap_round = 0;
    }
    cl->snap_n = 0;
    for (i = 0; i < t->max_leases; i++) {
        /* seq_cst: after the seq_cst stores of the limits (publish()) */
        uint64_t s = atomic_load_explicit(&t->leases[i].state,
                                          memory_order_seq_cst);

        if (gr_shm_lease_state(s) != GR_LEASE_INTENT)
            continue;
        if (cl->snap_n == SNAP_MAX) {
            cl->snap_n = 0;     /* too many: try again next round */
            return;
        }
        cl->snap_idx[cl->snap_n] = i;
        cl->snap_word[cl->snap_n++] = s;
    }
    cl->snap_round = cl->round;
    if (cl->snap_n == 0) {
        cl->clean_round = cl->round;
        cl->snap_round = 0;
    }
}

/* What cell holds on d now: the window's count, or the day's. */
static int64_t
used_of(struct gr_rtr *r, uint32_t cell, unsigned d, int64_t now,
        int32_t today)
{
    static const int win[GR_NDIM] = {GR_W_RPM, GR_W_TPM, -1, GR_W_IPM,
                                     -1};
    struct gr_shm_cell *c = &r->t.cells[cell];

    if (win[d] < 0)
        return gr_shm_day_used(d == GR_D_TPD ? &c->tday : &c->day, today);
    return gr_shm_window_used(&r->t, c, (unsigned)win[d], now);
}

/*
 * The registers: operator and disable flags, cooldowns and learned
 * limits, which a cluster shares as they are (last writer wins, every
 * change bumps a version in Redis).  Their local values, in local terms.
 */
static int64_t
reg_local(struct gr_rtr *r, uint32_t cell, unsigned i)
{
    struct gr_shm_cell *c = &r->t.cells[cell];
    struct gr_shm_project *p = &r->t.projects[cell / r->t.max_models];
    int64_t v;

    /* relaxed for all: advice fields (control.c, health.c) */
    if (i == REG_OP)
        return (atomic_load_explicit(&c->health, memory_order_relaxed) &
                OP_CELL_BITS) |
               (int64_t)(atomic_load_explicit(&p->health,
                                              memory_order_relaxed) &
                         OP_PROJ_BITS) << 8;
    if (i >= REG_COOL && i < REG_COOL + GR_NDIM) {
        v = atomic_load_explicit(&c->cool_until[i - REG_COOL],
                                 memory_order_relaxed);
        return v <= 0 ? 0 : v * 8 + (__atomic_load_n(
            &c->cool_src[i - REG_COOL], __ATOMIC_RELAXED) & 7);
    }
    if (i == REG_CELL_COOL) {
        v = atomic_load_explicit(&c->cell_cool_until, memory_order_relaxed);
        return v <= 0 ? 0 : v * 8;
    }
    return atomic_load_explicit(&c->learned[i - REG_LEARNED],
                                memory_order_relaxed);
}

/* A local value as Redis keeps it (cooldowns in Redis ms), and back. */
static int64_t
reg_to_redis(const struct gr_rtr_cluster *cl, unsigned i, int64_t v)
{
    if (i < REG_COOL || i > REG_CELL_COOL || v == 0)
        return v;
    return ((v / 8) / 1000000 + cl->offset_ms) * 8 + (v & 7);
}

static int64_t
reg_from_redis(const struct gr_rtr_cluster *cl, unsigned i, int64_t v)
{
    if (i < REG_COOL || i > REG_CELL_COOL || v <= 0)
        return i >= REG_COOL && i <= REG_CELL_COOL && v < 0 ? 0 : v;
    return ((v / 8 - cl->offset_ms) * 1000000) * 8 + (v & 7);
}

static void
bits(_Atomic uint32_t *w, uint32_t want, uint32_t mask)
{
    /* relaxed: advice, as control.c's set_bits() (set, then clear) */
    if (want & mask)
        atomic_fetch_or_explicit(w, want & mask, memory_order_relaxed);
    if (~want & mask)
        atomic_fetch_and_explicit(w, ~(~want & mask), memory_order_relaxed);
}

/* Write a register's value, as another host set it, into the table. */
static void
reg_apply(struct gr_rtr *r, uint32_t cell, unsigned i, int64_t v)
{
    struct gr_shm_cell *c = &r->t.cells[cell];
    struct gr_shm_project *p = &r->t.projects[cell / r->t.max_models];

    if (i == REG_OP) {
        bits(&c->health, (uint32_t)v & OP_CELL_BITS, OP_CELL_BITS);
        bits(&p->health, (uint32_t)(v >> 8) & OP_PROJ_BITS, OP_PROJ_BITS);
    } else if (i >= REG_COOL && i < REG_COOL + GR_NDIM) {
        /* relaxed: advice, as a client's report writes it */
        atomic_store_explicit(&c->cool_until[i - REG_COOL], v / 8,
                              memory_order_relaxed);
        __atomic_store_n(&c->cool_src[i - REG_COOL], (uint8_t)(v & 7),
                         __ATOMIC_RELAXED);
    } else if (i == REG_CELL_COOL) {
        /* relaxed: advice */
        atomic_store_explicit(&c->cell_cool_until, v / 8,
                              memory_order_relaxed);
    } else {
        gr_shm_set_learned(&r->t, c, i - REG_LEARNED, v < 0 ? -1 : v);
    }
}

/* One cell's registers from its answer. */
static void
take_regs(struct gr_rtr *r, const struct cl_ent *e)
{
    struct gr_rtr_cluster *cl = r->cluster;
    unsigned i;

    for (i = 0; i < NREG; i++) {
        int64_t v = e->out[2 * GR_NDIM + 2 + 2 * i];
        uint32_t ver = (uint32_t)e->out[2 * GR_NDIM + 3 + 2 * i];

        if (ver == cl->seen_ver[e->cell][i])
            continue;
        if (ver == 0) {
            /* Redis lost it (restarted empty): say ours again */
            cl->seen_ver[e->cell][i] = 0;
            cl->force[e->cell][i] = true;
            continue;
        }
        cl->seen_ver[e->cell][i] = ver;
        if (e->push[i])
            continue;       /* our own change, counted */
        v = reg_from_redis(cl, i, v);
        if (i >= REG_COOL && i <= REG_CELL_COOL && v != 0 &&
            llabs(v / 8 - reg_local(r, e->cell, i) / 8) < 50000000)
            v = reg_local(r, e->cell, i);   /* the same, give or take */
        else if (v != reg_local(r, e->cell, i))
            reg_apply(r, e->cell, i, v);
        cl->seen[e->cell][i] = reg_local(r, e->cell, i);
    }
}

/* What changed here since the last sync goes out with this one. */
static void
put_regs(struct gr_rtr *r, uint32_t cell, struct cl_ent *e)
{
    struct gr_rtr_cluster *cl = r->cluster;
    unsigned i;

    for (i = 0; i < NREG; i++) {
        int64_t v = reg_local(r, cell, i);

        e->push[i] = false;
        if (!cl->have_offset)
            continue;
        if (v == cl->seen[cell][i] && !cl->force[cell][i])
            continue;
        e->push[i] = true;
        e->reg[i] = reg_to_redis(cl, i, v);
        cl->seen[cell][i] = v;
        cl->force[cell][i] = false;
    }
}

/* Take the thread's answer: new shares and targets. */
static void
take_answer(struct gr_rtr *r)
{
    struct gr_rtr_cluster *cl = r->cluster;
    unsigned i, d;
    bool all = cl->n_ent > 0;

    for (i = 0; i < cl->n_ent; i++) {
        struct cl_ent *e = &cl->ent[i];

        if (!e->ok) {
            all = false;
            for (d = 0; d < NREG; d++)
                if (e->push[d])
                    cl->force[e->cell][d] = true;   /* send it again */
            cl->next_sync[e->cell] = 0;
            continue;
        }
        /* the slot may have changed hands since: drop the answer */
        if (strcmp(cl->owner[e->cell], e->key) != 0)
            continue;
        for (d = 0; d < GR_NDIM; d++) {
            if (e->out[d] < 0)
                continue;
            cl->share[e->cell][d] = e->out[d];
            cl->target[e->cell][d] = e->out[GR_NDIM + d];
        }
        if (!cl->have_offset || i == 0) {
            cl->offset_ms = e->out[2 * GR_NDIM + 1] -
                            cl->req_sent_ns / 1000000;
            cl->have_offset = true;
        }
        take_regs(r, e);
        view_put(cl, e);
        cl->born_seen[e->cell] = e->out[NOUT_FIXED - 2];
    }
    if (all) {
        cl->last_ok_ns = cl->req_sent_ns;
        if (cl->view != NULL)
            /* relaxed: a statistic */
            atomic_store_explicit(&cl->view->last_ok_wall_ns,
                                  gr_shm_now_wall(), memory_order_relaxed);
        if (cl->lost_logged)
            gr_rtr_log("cluster: redis answers again");
        cl->lost_logged = false;
    }
    if (cl->err_new) {
        int64_t now = gr_shm_now_mono();

        /* the same error again is said every 10 s, not every exchange */
        if (strcmp(cl->err, cl->err_said) != 0 || now >= cl->err_next_ns) {
            gr_rtr_log("cluster: %s", cl->err);
            snprintf(cl->err_said, sizeof(cl->err_said), "%s", cl->err);
            cl->err_next_ns = now + INT64_C(10) * GR_NS_PER_S;
        }
        cl->err_new = false;
    }
}

void
gr_rtr_cluster_tick(struct gr_rtr *r, int64_t now)
{
    struct gr_rtr_cluster *cl = r->cluster;
    struct gr_shm *t = &r->t;
    int64_t lease_ns, idle_ns, bucket;
    int32_t today;
    uint32_t cell, b;
    unsigned d, n = 0;
    bool lost;

    if (cl == NULL || now < cl->next_ns)
        return;
    if (pthread_mutex_trylock(&cl->mu) != 0)
        return;
    if (cl->busy || cl->req_ready) {
        pthread_mutex_unlock(&cl->mu);
        return;             /* the thread is still at it */
    }
    cl->next_ns = now + (int64_t)cl->cfg.sync_ms * 1000000;
    cl->round++;
    if (cl->res_ready) {
        take_answer(r);
        cl->res_ready = false;
    }
    lease_ns = (int64_t)cl->cfg.lease_ms * 1000000;
    /* a settled cell renews its lease and hears of others' demand and
     * operator actions every quarter lease, eighth of a window or 800 ms,
     * whichever comes first (actions reach every host within a second) */
    idle_ns = lease_ns / 4 < t->window_ns / 8 ? lease_ns / 4
                                              : t->window_ns / 8;
    if (idle_ns > IDLE_MAX_NS)
        idle_ns = IDLE_MAX_NS;
    if (idle_ns < (int64_t)cl->cfg.sync_ms * 1000000)
        idle_ns = (int64_t)cl->cfg.sync_ms * 1000000;
    lost = now - cl->last_ok_ns > lease_ns / 2 || cl->last_ok_ns == 0;
    if (lost && cl->last_ok_ns != 0 && !cl->lost_logged) {
        gr_rtr_log("cluster: no answer from redis for half a lease: "
                   "admitting nothing on shared limits until it answers");
        cl->lost_logged = true;
    }
    bucket = now / (t->window_ns / (PEAK_BUCKETS * PEAK_SPAN) > 0
                        ? t->window_ns / (PEAK_BUCKETS * PEAK_SPAN) : 1);
    /* the days the router published from the tz database (2007 rule
     * only as their fallback), as every client counts them */
    today = gr_shm_pacific_day_in(r->t.hdr, gr_shm_now_wall() / GR_NS_PER_S,
                                  NULL, NULL);

    /* 1. publish the local limits the last answer allows */
    for (cell = 0; cell < cl->ncells; cell++) {
        uint32_t slot = cell / t->max_models, m = cell % t->max_models;
        char key[KEY_MAX];

        if (!cl->known[cell] || r->m.state[slot] != GR_PROJ_ACTIVE ||
            m >= r->m.n_models) {
            continue;
        }
        snprintf(key, sizeof(key), "%s:{%s}:%s", cl->cfg.prefix,
                 r->m.name[slot], r->m.model[m]);
        if (strcmp(cl->owner[cell], key) != 0) {
            /* a new occupant: what was held is the old one's (its
             * lease runs out in Redis); start from nothing */
            snprintf(cl->owner[cell], sizeof(cl->owner[cell]), "%s", key);
            memset(cl->share[cell], 0, sizeof(cl->share[cell]));
            memset(cl->target[cell], 0, sizeof(cl->target[cell]));
            memset(cl->peak[cell], 0, sizeof(cl->peak[cell]));
            memset(cl->seen_ver[cell], 0, sizeof(cl->seen_ver[cell]));
            cl->born_seen[cell] = 0;
            for (d = 0; d < NREG; d++) {
                cl->seen[cell][d] = reg_local(r, cell, d);
                cl->force[cell][d] = false;
            }
        }
        for (d = 0; d < GR_NDIM; d++) {
            int64_t g = cl->global[cell][d], v;

            if (!shared(g))
                continue;
            v = gr_rtr_cl_local(cl->share[cell][d], cl->target[cell][d],
                                lost);
            if (v > g)
                v = g;
            if (v != cl->local[cell][d] ||
                r->m.limit[cell][d] != v)
                publish(r, cell, d, v);
        }
    }

    /* 2. which reservations may still act on a higher limit */
    scan_intents(r);

    /* 3. the next request */
    if (bucket != cl->bucket) {
        b = (uint32_t)(bucket % PEAK_BUCKETS);
        for (cell = 0; cell < cl->ncells; cell++)
            for (d = 0; d < GR_NDIM; d++)
                cl->peak[cell][d][b] = 0;
        cl->bucket = bucket;
    }
    b = (uint32_t)(bucket % PEAK_BUCKETS);
    for (cell = 0; cell < cl->ncells; cell++) {
        struct gr_shm_cell *c = &t->cells[cell];
        struct cl_ent *e;
        uint64_t rej;
        bool waited, busy;

        if (cl->owner[cell][0] == '\0' || !cl->known[cell] ||
            r->m.state[cell / t->max_models] != GR_PROJ_ACTIVE)
            continue;
        /* relaxed: a statistic */
        rej = atomic_load_explicit(&c->rejected, memory_order_relaxed);
        waited = rej != cl->rejected[cell];
        cl->rejected[cell] = rej;
        e = &cl->ent[n];
        e->cell = cell;
        snprintf(e->key, sizeof(e->key), "%s", cl->owner[cell]);
        put_regs(r, cell, e);
        busy = waited || lost || now >= cl->next_sync[cell];
        for (d = 0; d < NREG; d++)
            busy |= e->push[d];
        for (d = 0; d < GR_NDIM; d++) {
            int64_t g = cl->global[cell][d], used, peak = 0, keep, loc;
            /* relaxed: a learned cap, a client's write */
            int64_t cap = gr_shm_limit_unpack(atomic_load_explicit(
                &c->cap[d], memory_order_relaxed));
            unsigned k;

            if (!shared(g)) {
                e->arg[d][0] = -1;
                e->arg[d][1] = e->arg[d][2] = e->arg[d][3] = 0;
                e->arg[d][4] = 0;
                continue;
            }
            if (cap >= 0 && cap < g)
                g = cap;
            used = used_of(r, cell, d, now, today);
            if (used > cl->peak[cell][d][b])
                cl->peak[cell][d][b] = used;
            for (k = 0; k < PEAK_BUCKETS; k++)
                if (cl->peak[cell][d][k] > peak)
                    peak = cl->peak[cell][d][k];
            if (d == GR_D_RPD || d == GR_D_TPD)
                peak = used;
            loc = cl->local[cell][d];
            if (cl->pending[cell][d] != 0 &&
                cl->lowered[cell][d] <= cl->clean_round)
                cl->pending[cell][d] = 0;
            keep = loc > cl->pending[cell][d] ? loc : cl->pending[cell][d];
            if (used > keep)
                keep = used;
            e->arg[d][0] = g;
            e->arg[d][1] = gr_rtr_cl_want(peak, loc, g, waited &&
                                          used + loc / 16 + 1 >= loc);
            e->arg[d][2] = keep;
            e->arg[d][3] = lost ? keep : cl->share[cell][d];
            e->arg[d][4] = used;
            /* settled: granted what it publishes and wants, and nothing
             * moved since it last said so */
            busy |= cl->share[cell][d] != cl->target[cell][d] ||
                    loc != cl->share[cell][d] ||
                    memcmp(cl->sent[cell][d], e->arg[d],
                           sizeof(cl->sent[cell][d])) != 0;
        }
        if (!busy)
            continue;   /* a settled cell speaks every idle_ns only */
        for (d = 0; d < GR_NDIM; d++)
            memcpy(cl->sent[cell][d], e->arg[d], sizeof(cl->sent[cell][d]));
        cl->next_sync[cell] = now + idle_ns;
        n++;
    }
    cl->n_ent = n;
    cl->today = today;
    if (n > 0) {
        cl->req_sent_ns = now;
        cl->req_ready = true;
        pthread_cond_signal(&cl->cv);
    }
    pthread_mutex_unlock(&cl->mu);
}
