/*
 * batchjob.c - batch mode's gauges and jobs (batchjob.h): map the
 * companion segment, admit a job on a pool (CAS, all or nothing), record
 * the job through its submission, and the router's side: naming pools,
 * writing their limits, freeing ended jobs and those of dead submitters.
 *
 * Invariants protected:
 *   - no over-admission: a pool's used_tokens and used_jobs never pass
 *     their limits because of an admission (each is raised by a CAS from
 *     a value that left room; a job whose second gauge has no room gives
 *     the first back);
 *   - a hold is given back exactly once: only the process whose CAS
 *     moves the job record out of a held state (SUBMITTING, WRITING,
 *     LIVE) releases it, and a record's sequence moves with every claim,
 *     so a stale word never frees a new job;
 *   - every reader treats the segment as untrusted: indices come from the
 *     private geometry, names are cut at their buffers.
 * A killed submitter between its pool CAS and its publish of SUBMITTING
 * (a few instructions) leaks that job's hold: the record says CLAIMED,
 * which holds nothing, and the router frees it without giving back.
 */
#include "batchjob.h"
#include "companion.h"
#include "seqlock.h"
#include "table.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CAS_TRIES 1000      /* admission CAS attempts before -EAGAIN */
#define COPY_TRIES 64

static uint64_t
bj_word(uint32_t pid, uint64_t seq, uint32_t pool, unsigned state)
{
    return (uint64_t)pid << 32 | (seq & 0xffff) << 16 |
           (uint64_t)(pool & 0xfff) << 4 | (state & 0xf);
}

static unsigned bj_state(uint64_t w) { return (unsigned)(w & 0xf); }
static uint32_t bj_pool(uint64_t w) { return (uint32_t)(w >> 4 & 0xfff); }
static uint64_t bj_seq(uint64_t w) { return w >> 16 & 0xffff; }
static uint32_t bj_pid(uint64_t w) { return (uint32_t)(w >> 32); }

static bool
held(unsigned st)
{
    return st == GR_BJ_SUBMITTING || st == GR_BJ_WRITING ||
           st == GR_BJ_LIVE;
}

static void
anomaly(const struct gr_shm_bjtab *bt)
{
    if (!bt->writable)
        return;     /* a reader that mapped it read-only writes nothing */
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&bt->hdr->anomalies, 1, memory_order_relaxed);
}

int
gr_shm_bj_segname(const char *table, char *out, size_t n)
{
    return gr_shm_comp_name(table, ".bj", out, n);
}

size_t
gr_shm_bj_size(uint32_t npools, uint32_t njobs)
{
    if (npools == 0 || npools > GR_BJ_MAX_POOLS || njobs == 0 ||
        njobs > GR_BJ_MAX_JOBS)
        return 0;
    return sizeof(struct gr_shm_bj_hdr) +
           (size_t)npools * sizeof(struct gr_shm_bpool) +
           (size_t)njobs * sizeof(struct gr_shm_bjob);
}

int
gr_shm_bj_check_mapping(void *base, size_t size, bool writable,
                        struct gr_shm_bjtab *bt, char *err, size_t errlen)
{
    const struct gr_shm_bj_hdr *h = base;

    if (size < sizeof(*h) || h->magic != GR_BJ_MAGIC) {
        gr_shm_say(err, errlen, "gemroute: %s is not a gemroute batch record",
            bt->name);
        return -EPROTO;
    }
    if (h->abi_major != GR_BJ_ABI_MAJOR) {
        gr_shm_say(err, errlen, "gemroute: %s has batch ABI %u.%u; this "
            "process speaks %u.x - rebuild it", bt->name, h->abi_major,
            h->abi_minor, GR_BJ_ABI_MAJOR);
        return -EPROTO;
    }
    if (gr_shm_bj_size(h->npools, h->njobs) == 0 || h->size != size ||
        gr_shm_bj_size(h->npools, h->njobs) != size) {
        gr_shm_say(err, errlen, "gemroute: %s has a damaged header (its size "
            "does not match its records)", bt->name);
        return -EPROTO;
    }
    bt->base = base;
    bt->size = size;
    bt->npools = h->npools;
    bt->njobs = h->njobs;
    bt->writable = writable;
    bt->hdr = base;
    bt->pools = (struct gr_shm_bpool *)(bt->base + sizeof(*h));
    bt->jobs = (struct gr_shm_bjob *)(bt->base + sizeof(*h) +
                                      (size_t)bt->npools *
                                          sizeof(struct gr_shm_bpool));
    return 0;
}

int
gr_shm_bj_attach(const char *table, bool writable, struct gr_shm_bjtab *bt,
                 char *err, size_t errlen)
{
    struct gr_shm_comp c;
    int rc;

    memset(bt, 0, sizeof(*bt));
    if (gr_shm_bj_segname(table, bt->name, sizeof(bt->name)) != 0) {
        gr_shm_say(err, errlen, "gemroute: table name too long");
        return -ENAMETOOLONG;
    }
    rc = gr_shm_comp_map(bt->name, writable, sizeof(struct gr_shm_bj_hdr),
                         "batch record", &c, err, errlen);
    if (rc != 0)
        return rc;
    rc = gr_shm_bj_check_mapping(c.base, c.size, writable, bt, err,
                                 errlen);
    if (rc != 0)
        gr_shm_comp_unmap(&c);
    return rc;
}

void
gr_shm_bj_detach(struct gr_shm_bjtab *bt)
{
    if (bt->base != NULL)
        munmap(bt->base, bt->size);
    bt->base = NULL;
    bt->hdr = NULL;
    bt->pools = NULL;
    bt->jobs = NULL;
    bt->npools = bt->njobs = 0;
}

int
gr_shm_bj_router_open(const char *table, uint32_t npools, uint32_t njobs,
                      unsigned mode, gid_t gid, struct gr_shm_bjtab *bt,
                      bool *created, char *err, size_t errlen)
{
    size_t size = gr_shm_bj_size(npools, njobs);
    struct gr_shm_bj_hdr *h;
    struct gr_shm_comp c;
    int rc;

    *created = false;
    memset(bt, 0, sizeof(*bt));
    if (size == 0) {
        gr_shm_say(err, errlen, "gemroute: %u batch pools, %u jobs is out of "
            "range", npools, njobs);
        return -EINVAL;
    }
    if (gr_shm_bj_segname(table, bt->name, sizeof(bt->name)) != 0)
        return -ENAMETOOLONG;
    /* Ours, of this geometry: adopt it, holds and jobs kept. */
    rc = gr_shm_comp_adopt(bt->name, size, "batch record", &c, err, errlen);
    if (rc == 0) {
        rc = gr_shm_bj_check_mapping(c.base, c.size, true, bt, err,
                                     errlen);
        if (rc == 0 && bt->npools == npools && bt->njobs == njobs)
            return 0;
        gr_shm_comp_unmap(&c);
        rc = -ESTALE;
    }
    rc = gr_shm_comp_create(bt->name, size, mode, gid, rc != -ENOENT, &c,
                            err, errlen);
    if (rc != 0)
        return rc;
    h = c.base;
    h->abi_major = GR_BJ_ABI_MAJOR;
    h->abi_minor = GR_BJ_ABI_MINOR;
    h->size = size;
    h->npools = npools;
    h->njobs = njobs;
    gr_shm_comp_publish(&h->magic, GR_BJ_MAGIC);
    rc = gr_shm_bj_check_mapping(c.base, size, true, bt, err, errlen);
    if (rc != 0) {
        gr_shm_comp_unmap(&c);
        return rc;
    }
    *created = true;
    return 0;
}

/* A name of a pool, cut at its buffer. */
static void
copy_name(char *dst, const char *src, size_t n)
{
    memcpy(dst, src, n);
    dst[n - 1] = '\0';
}

int
gr_shm_bj_router_pool(const struct gr_shm_bjtab *bt, const char *project,
                      const char *model)
{
    struct gr_shm_bpool *p;
    char pn[GR_BJ_PROJECT_MAX], mn[GR_BJ_MODEL_MAX];
    uint32_t i;

    for (i = 0; i < bt->npools; i++) {
        p = &bt->pools[i];
        /* relaxed: the router wrote live itself (one writer) */
        if (!atomic_load_explicit(&p->live, memory_order_relaxed))
            break;
        copy_name(pn, p->project, sizeof(pn));
        copy_name(mn, p->model, sizeof(mn));
        if (strcmp(pn, project) == 0 && strcmp(mn, model) == 0)
            return (int)i;
    }
    if (i == bt->npools)
        return -ENOSPC;
    p = &bt->pools[i];
    memset(p->project, 0, sizeof(p->project));
    memset(p->model, 0, sizeof(p->model));
    snprintf(p->project, sizeof(p->project), "%s", project);
    snprintf(p->model, sizeof(p->model), "%s", model);
    /* relaxed: published by the release store of live below */
    atomic_store_explicit(&p->used_tokens, 0, memory_order_relaxed);
    atomic_store_explicit(&p->used_jobs, 0, memory_order_relaxed);
    atomic_store_explicit(&p->limit_tokens, 0, memory_order_relaxed);
    atomic_store_explicit(&p->limit_jobs, 0, memory_order_relaxed);
    /* release: a reader that sees live sees the names above */
    atomic_store_explicit(&p->live, 1, memory_order_release);
    return (int)i;
}

void
gr_shm_bj_router_limits(const struct gr_shm_bjtab *bt, uint32_t pool,
                        bool configured, int64_t limit_tokens,
                        int64_t limit_jobs)
{
    struct gr_shm_bpool *p;

    if (pool >= bt->npools)
        return;
    p = &bt->pools[pool];
    /* relaxed: each limit is read on its own by an admission, which
     * re-checks it against the gauge in its CAS loop */
    atomic_store_explicit(&p->limit_tokens, configured ? limit_tokens : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&p->limit_jobs, configured ? limit_jobs : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&p->configured, configured ? 1 : 0,
                          memory_order_relaxed);
}

int
gr_shm_bj_pool_read(const struct gr_shm_bjtab *bt, uint32_t i,
                    struct gr_shm_bpool_view *out)
{
    const struct gr_shm_bpool *p;

    if (i >= bt->npools)
        return -ENOENT;
    p = &bt->pools[i];
    /* acquire: pairs with the release of live in router_pool(): the
     * names are written before */
    if (!atomic_load_explicit(&p->live, memory_order_acquire))
        return -ENOENT;
    copy_name(out->project, p->project, sizeof(out->project));
    copy_name(out->model, p->model, sizeof(out->model));
    /* relaxed: gauges and counters, each a value of its own */
    out->configured = atomic_load_explicit(&p->configured,
                                           memory_order_relaxed) != 0;
    out->limit_tokens = atomic_load_explicit(&p->limit_tokens,
                                             memory_order_relaxed);
    out->limit_jobs = atomic_load_explicit(&p->limit_jobs,
                                           memory_order_relaxed);
    out->used_tokens = atomic_load_explicit(&p->used_tokens,
                                            memory_order_relaxed);
    out->used_jobs = atomic_load_explicit(&p->used_jobs,
                                          memory_order_relaxed);
    out->admitted = atomic_load_explicit(&p->admitted, memory_order_relaxed);
    out->refused = atomic_load_explicit(&p->refused, memory_order_relaxed);
    out->finished = atomic_load_explicit(&p->finished, memory_order_relaxed);
    return 0;
}

/* Raise gauge by n if it stays within limit (< 0: none). */
static bool
raise_gauge(_Atomic int64_t *gauge, _Atomic int64_t *limit, int64_t n)
{
    int64_t cur, lim;
    int tries;

    /* relaxed: the CAS below decides; nothing else is published with
     * the gauge */
    cur = atomic_load_explicit(gauge, memory_order_relaxed);
    for (tries = 0; tries < CAS_TRIES; tries++) {
        /* relaxed: a limit is a value of its own (router_limits()) */
        lim = atomic_load_explicit(limit, memory_order_relaxed);
        if (lim >= 0 && (cur < 0 || n > lim - cur))
            return false;
        /* relaxed: the gauge is the only state; a failed CAS reloads */
        if (atomic_compare_exchange_weak_explicit(gauge, &cur, cur + n,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

int
gr_shm_bj_admit(const struct gr_shm_bjtab *bt, uint32_t pool, int64_t tokens)
{
    struct gr_shm_bpool *p;

    if (pool >= bt->npools || tokens < 0)
        return -ENOENT;
    p = &bt->pools[pool];
    /* acquire: pairs with the release of live (the pool is named) */
    if (!atomic_load_explicit(&p->live, memory_order_acquire) ||
        !atomic_load_explicit(&p->configured, memory_order_relaxed))
        goto refused;
    if (!raise_gauge(&p->used_tokens, &p->limit_tokens, tokens))
        goto refused;
    if (!raise_gauge(&p->used_jobs, &p->limit_jobs, 1)) {
        /* all or nothing: give the tokens back (relaxed: a gauge) */
        atomic_fetch_sub_explicit(&p->used_tokens, tokens,
                                  memory_order_relaxed);
        goto refused;
    }
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&p->admitted, 1, memory_order_relaxed);
    return 0;
refused:
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&p->refused, 1, memory_order_relaxed);
    return -EAGAIN;
}

void
gr_shm_bj_release(const struct gr_shm_bjtab *bt, uint32_t pool,
                  int64_t tokens, bool finished)
{
    struct gr_shm_bpool *p;

    if (pool >= bt->npools || tokens < 0) {
        anomaly(bt);
        return;
    }
    p = &bt->pools[pool];
    /* relaxed: gauges; the CAS on the job record decided who releases */
    atomic_fetch_sub_explicit(&p->used_tokens, tokens, memory_order_relaxed);
    atomic_fetch_sub_explicit(&p->used_jobs, 1, memory_order_relaxed);
    if (finished)
        atomic_fetch_add_explicit(&p->finished, 1, memory_order_relaxed);
}

void
gr_shm_bj_router_hold(const struct gr_shm_bjtab *bt, uint32_t pool,
                      int64_t tokens)
{
    struct gr_shm_bpool *p;

    if (pool >= bt->npools || tokens < 0)
        return;
    p = &bt->pools[pool];
    /* relaxed: gauges; nobody else holds this job */
    atomic_fetch_add_explicit(&p->used_tokens, tokens, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->used_jobs, 1, memory_order_relaxed);
}

int
gr_shm_bj_claim(const struct gr_shm_bjtab *bt, uint32_t pool, int64_t tokens,
                uint32_t pid, uint32_t *job)
{
    uint32_t i;

    if (pool >= bt->npools)
        return -EINVAL;
    for (i = 0; i < bt->njobs; i++) {
        struct gr_shm_bjob *j = &bt->jobs[i];
        /* relaxed: the CAS below re-checks it */
        uint64_t w = atomic_load_explicit(&j->state, memory_order_relaxed);
        uint64_t c;

        if (bj_state(w) != GR_BJ_FREE)
            continue;
        c = bj_word(pid, bj_seq(w) + 1, pool, GR_BJ_CLAIMED);
        /* acquire: our writes come after the claim */
        if (!atomic_compare_exchange_strong_explicit(&j->state, &w, c,
                                                     memory_order_acquire,
                                                     memory_order_relaxed))
            continue;
        /* relaxed: published by the release in gr_shm_bj_held() */
        atomic_store_explicit(&j->tokens, tokens, memory_order_relaxed);
        atomic_store_explicit(&j->submitted_s, 0, memory_order_relaxed);
        {
            static const char zero[GR_BJ_NAME_MAX];

            /* release stores: a reader may be copying it (seqlock.h) */
            gr_shm_seq_copy_in(j->name, zero, sizeof(zero));
        }
        *job = i;
        return 0;
    }
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&bt->hdr->refused, 1, memory_order_relaxed);
    return -ENOSPC;
}

/* Move job from `from` to `to` if the holder is pid; 0 or -ESTALE. */
static int
move(const struct gr_shm_bjtab *bt, uint32_t job, uint32_t pid,
     unsigned from, unsigned to, uint32_t new_pid, uint64_t *was)
{
    struct gr_shm_bjob *j;
    uint64_t w;

    if (job >= bt->njobs)
        return -EINVAL;
    j = &bt->jobs[job];
    /* relaxed: the CAS below re-checks it */
    w = atomic_load_explicit(&j->state, memory_order_relaxed);
    if (bj_state(w) != from || bj_pid(w) != pid)
        return -ESTALE;
    /* acq_rel: release publishes what we wrote while holding it;
     * acquire orders what we write next after the move */
    if (!atomic_compare_exchange_strong_explicit(
            &j->state, &w,
            bj_word(new_pid, bj_seq(w), bj_pool(w), to),
            memory_order_acq_rel, memory_order_relaxed))
        return -ESTALE;
    if (was != NULL)
        *was = w;
    return 0;
}

int
gr_shm_bj_held(const struct gr_shm_bjtab *bt, uint32_t job, uint32_t pid)
{
    return move(bt, job, pid, GR_BJ_CLAIMED, GR_BJ_SUBMITTING, pid, NULL);
}

int
gr_shm_bj_submitted(const struct gr_shm_bjtab *bt, uint32_t job, uint32_t pid,
                    const char *name, int64_t now_s)
{
    struct gr_shm_bjob *j;
    char buf[GR_BJ_NAME_MAX];
    uint64_t w;
    int rc;

    rc = move(bt, job, pid, GR_BJ_SUBMITTING, GR_BJ_WRITING, pid, &w);
    if (rc != 0)
        return rc;
    j = &bt->jobs[job];
    memset(buf, 0, sizeof(buf));
    snprintf(buf, sizeof(buf), "%s", name);
    /* release stores: racy with a reader's copy by design (seqlock.h) */
    gr_shm_seq_copy_in(j->name, buf, sizeof(buf));
    /* relaxed: published by the release store of LIVE below */
    atomic_store_explicit(&j->submitted_s, now_s, memory_order_relaxed);
    /* release: a reader that sees LIVE sees the name; a new sequence,
     * so that a copy taken across the write is thrown away */
    atomic_store_explicit(&j->state,
                          bj_word(pid, bj_seq(w) + 1, bj_pool(w),
                                  GR_BJ_LIVE),
                          memory_order_release);
    return 0;
}

int
gr_shm_bj_abandon(const struct gr_shm_bjtab *bt, uint32_t job, uint32_t pid)
{
    int rc = move(bt, job, pid, GR_BJ_SUBMITTING, GR_BJ_FREE, pid, NULL);

    if (rc != 0)
        rc = move(bt, job, pid, GR_BJ_CLAIMED, GR_BJ_FREE, pid, NULL);
    return rc;
}

int
gr_shm_bj_job_read(const struct gr_shm_bjtab *bt, uint32_t i,
                   struct gr_shm_bjob_view *out)
{
    const struct gr_shm_bjob *j;
    uint64_t w1, w2;

    if (i >= bt->njobs)
        return -EAGAIN;
    j = &bt->jobs[i];
    /* acquire: pairs with the release that published the state */
    w1 = atomic_load_explicit(&j->state, memory_order_acquire);
    if (bj_state(w1) != GR_BJ_SUBMITTING && bj_state(w1) != GR_BJ_LIVE)
        return bj_state(w1) == GR_BJ_WRITING ? -EAGAIN : -ENOENT;
    /* acquire: the re-read of state below stays after these loads (no
     * fence: seqlock.h's way) */
    out->tokens = atomic_load_explicit(&j->tokens, memory_order_acquire);
    out->submitted_s = atomic_load_explicit(&j->submitted_s,
                                            memory_order_acquire);
    gr_shm_seq_copy_str(out->name, j->name, sizeof(out->name));
    /* relaxed: after the acquire loads above */
    w2 = atomic_load_explicit(&j->state, memory_order_relaxed);
    if (w1 != w2)
        return -EAGAIN;
    out->state = bj_state(w1);
    out->pool = bj_pool(w1);
    out->pid = bj_pid(w1);
    if (out->pool >= bt->npools || out->tokens < 0) {
        anomaly(bt);
        return -EAGAIN;
    }
    return 0;
}

int
gr_shm_bj_find(const struct gr_shm_bjtab *bt, const char *name,
               struct gr_shm_bjob_view *out)
{
    uint32_t i;
    int tries, rc;

    for (i = 0; i < bt->njobs; i++) {
        for (tries = 0; tries < COPY_TRIES; tries++)
            if ((rc = gr_shm_bj_job_read(bt, i, out)) != -EAGAIN)
                break;
        if (rc == 0 && out->state == GR_BJ_LIVE &&
            strcmp(out->name, name) == 0)
            return (int)i;
    }
    return -ENOENT;
}

int
gr_shm_bj_router_finish(const struct gr_shm_bjtab *bt, uint32_t i)
{
    struct gr_shm_bjob *j;
    uint64_t w;
    int64_t tokens;
    unsigned st;

    if (i >= bt->njobs)
        return -EINVAL;
    j = &bt->jobs[i];
    /* acquire: the hold's tokens were published before this state */
    w = atomic_load_explicit(&j->state, memory_order_acquire);
    st = bj_state(w);
    if (st == GR_BJ_FREE)
        return -EAGAIN;
    /* relaxed: after the acquire above; the CAS proves it is the same
     * claim's (the sequence moves with every claim) */
    tokens = atomic_load_explicit(&j->tokens, memory_order_relaxed);
    /* relaxed: FREE publishes nothing; the release of the hold below is
     * ours alone because this CAS won */
    if (!atomic_compare_exchange_strong_explicit(
            &j->state, &w,
            bj_word(0, bj_seq(w) + 1, bj_pool(w), GR_BJ_FREE),
            memory_order_relaxed, memory_order_relaxed))
        return -EAGAIN;
    if (held(st))
        gr_shm_bj_release(bt, bj_pool(w), tokens, st == GR_BJ_LIVE);
    return 0;
}

unsigned
gr_shm_bj_router_reap(const struct gr_shm_bjtab *bt)
{
    unsigned n = 0;
    uint32_t i;

    for (i = 0; i < bt->njobs; i++) {
        /* relaxed: router_finish() re-reads it with acquire */
        uint64_t w = atomic_load_explicit(&bt->jobs[i].state,
                                          memory_order_relaxed);
        unsigned st = bj_state(w);
        pid_t pid = (pid_t)bj_pid(w);

        if (st == GR_BJ_FREE || st == GR_BJ_LIVE || pid <= 0)
            continue;
        if (kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        if (gr_shm_bj_router_finish(bt, i) == 0) {
            n++;
            if (st == GR_BJ_CLAIMED)
                /* relaxed: a statistic */
                atomic_fetch_add_explicit(&bt->hdr->lost, 1,
                                          memory_order_relaxed);
        }
    }
    return n;
}
