/*
 * batchjobs.c - the router's part of batch mode as a quota of its own
 * (shm/batchjob.h, docs/BATCH.md): make or adopt the batch record next
 * to the table, name a pool for every (project, model) of the config and
 * write its limits (batch_tokens, batch_jobs), notice when an unfinished
 * job ends and give its hold back, and free the claims of submitters that
 * died.
 *
 * Someone must notice a job's end even if its submitter never asks: the
 * router polls every unfinished job with gr_batch_poll() (client/
 * batchjob.c, the same HTTP code as every call), DESIGN.md's second
 * exception to "the router never calls Google", on a thread of its own
 * as probe.c does: the main loop hands it one poll at a time and applies
 * the result, so the loop stays the one that frees records.  Rate: at
 * most one poll in flight and one started per POLL_GAP_NS (4 a second at
 * most, whatever the number of jobs); each job at most once per
 * poll_every (a twelfth of the window, 100 ms to 10 s).
 *
 * A project that leaves the config keeps its pool (limits 0: nothing new
 * is admitted there) and its jobs are polled with the key the router knew
 * it by, until they end.  Keys stay in this file's private memory, wiped
 * at close; they are never logged.
 */
#include "router.h"
#include "worker.h"
#include "sidefile.h"
#include "batchjob.h"
#include "clock.h"
#include "gemroute.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define POLL_GAP_NS (INT64_C(250) * 1000000)
#define POLL_TIMEOUT_NS (INT64_C(20) * 1000000000)
#define REAP_EVERY_NS (INT64_C(1000000000))
#define SYNC_EVERY_NS (INT64_C(5) * 1000000000)
#define SAVE_EVERY_NS (INT64_C(5) * 1000000000)
#define BJ_MAGIC "gemroute-batchjobs 1"
#define MAX_SAVED GR_BJ_MAX_JOBS

struct poll_job {
    uint32_t index;                 /* job record */
    char name[GR_BATCH_NAME_MAX];
    char base_url[GR_URL_MAX];
    char proxy[GR_URL_MAX];
    char key[GR_KEY_MAX];           /* secret: wiped after use */
    int rc;
    struct gr_batch_job job;
    struct gr_verdict v;
};

struct gr_rtr_bj {
    struct gr_shm_bjtab bt;
    struct gr_rtr_worker w;         /* runs pj, one poll at a time */
    struct poll_job pj;
    char (*key)[GR_KEY_MAX];        /* [npools]: last key of the pool's
                                       project; secret */
    bool *no_key_said;              /* [npools] */
    int64_t *next_poll_ns;          /* [njobs] */
    uint32_t cursor;                /* next job record to look at */
    const struct gr_cfg *synced;    /* the config the pools follow */
    int64_t next_sync_ns, next_reap_ns, next_poll_ns_any, next_save_ns;
};

static void bj_restore(struct gr_rtr *r, struct gr_rtr_bj *b);
static void bj_save(struct gr_rtr *r, struct gr_rtr_bj *b);

/* On the worker thread: the poll of pj. */
static void
run_poll(void *arg)
{
    struct gr_rtr_bj *b = arg;

    b->pj.rc = gr_batch_poll(b->pj.base_url, b->pj.proxy, b->pj.key,
                             b->pj.name, gr_now_ns() + POLL_TIMEOUT_NS,
                             &b->pj.job, &b->pj.v);
    explicit_bzero(b->pj.key, sizeof(b->pj.key));
}

static void
free_bj(struct gr_rtr_bj *b)
{
    if (b->key != NULL)
        explicit_bzero(b->key, (size_t)b->bt.npools * sizeof(*b->key));
    free(b->key);
    free(b->no_key_said);
    free(b->next_poll_ns);
    gr_shm_bj_detach(&b->bt);
    free(b);
}

void
gr_rtr_bj_open(struct gr_rtr *r)
{
    struct gr_rtr_bj *b;
    gid_t gid = gr_rtr_group(r->cfg);
    bool created = false;
    char err[256];
    int rc;

    if (r->bj != NULL)
        return;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        goto nomem;
    rc = gr_shm_bj_router_open(r->t.name, GR_BJ_DEFAULT_POOLS,
                               GR_BJ_DEFAULT_JOBS, r->cfg->router.mode, gid,
                               &b->bt, &created, err, sizeof(err));
    if (rc != 0) {
        gr_rtr_log("%s: batch jobs are not held (gr_batch_submit refuses)",
                   err);
        free(b);
        return;
    }
    gr_rtr_log("%s: %s", b->bt.name,
               created ? "made" : "adopted, holds and jobs kept");
    b->key = calloc(b->bt.npools, sizeof(*b->key));
    b->no_key_said = calloc(b->bt.npools, sizeof(*b->no_key_said));
    b->next_poll_ns = calloc(b->bt.njobs, sizeof(*b->next_poll_ns));
    if (b->key == NULL || b->no_key_said == NULL || b->next_poll_ns == NULL)
        goto fail;
    if (gr_rtr_worker_start(&b->w, run_poll, b) != 0)
        goto fail;
    r->bj = b;
    if (created)
        bj_restore(r, b);
    return;
fail:
    free_bj(b);
nomem:
    gr_rtr_log("batch jobs: out of memory; they are not held");
}

void
gr_rtr_bj_close(struct gr_rtr *r, bool unlink_it)
{
    struct gr_rtr_bj *b = r->bj;

    if (b == NULL)
        return;
    r->bj = NULL;
    bj_save(r, b);
    if (unlink_it)
        shm_unlink(b->bt.name);
    /* A poll under way ends by its own timeout; its memory is left to
     * the exit (as probe.c's). */
    if (gr_rtr_worker_stop(&b->w))
        free_bj(b);
}

/* Pools follow the config: every (project, model) named, limits written;
 * pools of projects that left it keep their jobs and admit nothing. */
static void
sync_pools(struct gr_rtr *r, struct gr_rtr_bj *b)
{
    const struct gr_cfg *cfg = r->cfg;
    struct gr_shm_bpool_view v;
    bool *seen;
    unsigned p, m;
    uint32_t i;
    int k;

    seen = calloc(b->bt.npools, sizeof(*seen));
    if (seen == NULL)
        return;
    for (p = 0; p < cfg->n_projects; p++) {
        const struct gr_cfg_project *cp = &cfg->projects[p];

        for (m = 0; m < cfg->n_models; m++) {
            k = gr_shm_bj_router_pool(&b->bt, cp->name, cfg->models[m].name);
            if (k < 0) {
                gr_rtr_log("batch pools: all %u named; %s/%s has none",
                           b->bt.npools, cp->name, cfg->models[m].name);
                continue;
            }
            seen[k] = true;
            gr_shm_bj_router_limits(
                &b->bt, (uint32_t)k, cp->enabled,
                gr_cfg_batch_limit(cfg, cp, m, GR_CFG_BATCH_TOKENS),
                gr_cfg_batch_limit(cfg, cp, m, GR_CFG_BATCH_JOBS));
            if (cp->n_keys > 0)
                snprintf(b->key[k], sizeof(b->key[k]), "%s", cp->keys[0]);
        }
    }
    for (i = 0; i < b->bt.npools; i++)
        if (!seen[i] && gr_shm_bj_pool_read(&b->bt, i, &v) == 0 &&
            v.configured)
            gr_shm_bj_router_limits(&b->bt, i, false, 0, 0);
    free(seen);
}

/* A twelfth of the window, 100 ms .. 10 s: how often one job is polled. */
static int64_t
poll_every(const struct gr_rtr *r)
{
    int64_t w = r->t.window_ns / 12;

    return w < 100000000 ? 100000000 : w > INT64_C(10000000000)
                                           ? INT64_C(10000000000) : w;
}

/* The result of the last poll. */
static void
apply_result(struct gr_rtr *r, struct gr_rtr_bj *b)
{
    struct poll_job *pj = &b->pj;
    struct gr_shm_bjob_view v;
    bool gone;

    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&b->bt.hdr->polls, 1, memory_order_relaxed);
    gone = pj->rc == GR_ECALL &&
           (pj->v.status == 404 ||
            (pj->v.status == 403 && pj->v.cls != GR_CLASS_AUTH));
    if (!(pj->rc == GR_OK && pj->job.done) && !gone)
        return;
    /* Still the job we polled?  Only this loop frees LIVE records. */
    if (gr_shm_bj_job_read(&b->bt, pj->index, &v) != 0 ||
        v.state != GR_BJ_LIVE || strcmp(v.name, pj->name) != 0)
        return;
    if (gr_shm_bj_router_finish(&b->bt, pj->index) == 0)
        gr_rtr_log("batch %s %s: its hold of %lld tokens is given back",
                   pj->name, gone ? "is gone (403/404)" : pj->job.state,
                   (long long)v.tokens);
    (void)r;
}

/* The next LIVE job due for a poll, from the cursor on; -1 none. */
static int64_t
next_due(struct gr_rtr_bj *b, int64_t now, struct gr_shm_bjob_view *v)
{
    uint32_t n, i;

    for (n = 0; n < b->bt.njobs; n++) {
        i = (b->cursor + n) % b->bt.njobs;
        if (gr_shm_bj_job_read(&b->bt, i, v) != 0 || v->state != GR_BJ_LIVE)
            continue;
        if (now < b->next_poll_ns[i])
            continue;
        b->cursor = (i + 1) % b->bt.njobs;
        return i;
    }
    return -1;
}

void
gr_rtr_bj_tick(struct gr_rtr *r, int64_t now)
{
    struct gr_rtr_bj *b = r->bj;
    struct gr_shm_bjob_view v;
    int64_t i;
    unsigned n;

    if (b == NULL)
        return;
    if (r->cfg != b->synced || now >= b->next_sync_ns) {
        sync_pools(r, b);
        b->synced = r->cfg;
        b->next_sync_ns = now + SYNC_EVERY_NS;
    }
    if (now >= b->next_save_ns) {
        b->next_save_ns = now + SAVE_EVERY_NS;
        bj_save(r, b);
    }
    if (now >= b->next_reap_ns) {
        b->next_reap_ns = now + REAP_EVERY_NS;
        n = gr_shm_bj_router_reap(&b->bt);
        if (n > 0)
            gr_rtr_log("batch jobs: %u claims of dead submitters freed", n);
    }
    pthread_mutex_lock(&b->w.mu);
    if (b->w.stage == GR_RTR_WORK_DONE) {
        apply_result(r, b);
        b->w.stage = GR_RTR_WORK_IDLE;
    }
    if (b->w.stage != GR_RTR_WORK_IDLE || now < b->next_poll_ns_any) {
        pthread_mutex_unlock(&b->w.mu);
        return;
    }
    pthread_mutex_unlock(&b->w.mu);
    if (!gr_rtr_upstream_allowed(r->cfg->router.base_url))
        return;
    i = next_due(b, now, &v);
    if (i < 0)
        return;
    b->next_poll_ns[i] = now + poll_every(r);
    if (b->key[v.pool][0] == '\0') {
        if (!b->no_key_said[v.pool]) {
            struct gr_shm_bpool_view pv;

            b->no_key_said[v.pool] = true;
            if (gr_shm_bj_pool_read(&b->bt, v.pool, &pv) == 0)
                gr_rtr_log("batch %s: no key of project %s is known "
                           "(it left the config before this router "
                           "started): it stays held", v.name, pv.project);
        }
        return;
    }
    pthread_mutex_lock(&b->w.mu);
    memset(&b->pj, 0, sizeof(b->pj));
    b->pj.index = (uint32_t)i;
    snprintf(b->pj.name, sizeof(b->pj.name), "%s", v.name);
    snprintf(b->pj.base_url, sizeof(b->pj.base_url), "%s",
             r->cfg->router.base_url);
    snprintf(b->pj.proxy, sizeof(b->pj.proxy), "%s", r->cfg->router.proxy);
    snprintf(b->pj.key, sizeof(b->pj.key), "%s", b->key[v.pool]);
    b->w.stage = GR_RTR_WORK_WAITING;
    b->next_poll_ns_any = now + POLL_GAP_NS;
    gr_rtr_worker_kick(&b->w);
    pthread_mutex_unlock(&b->w.mu);
}

/* ---- the jobs in a file beside the state file (STATE_FILE.bj) --------- */

/*
 * The segment survives a router restart; a reboot (or a table recreated)
 * does not, while Google still holds the jobs.  So the LIVE jobs are
 * written beside the state file every 5 s and at exit (a new temporary
 * file, never through a symlink, fsync, rename, mode 0600: as the state
 * file), and a new segment is filled from it: each job recorded LIVE
 * again with its hold.  A file is used only when it is a regular file of
 * the router's user, whole and intact; else it is logged and ignored.
 * Names of jobs, projects and models are not secrets; no key is written.
 */
static void
bj_file(const struct gr_rtr *r, char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s.bj", r->state_path) >= n)
        out[0] = '\0';
}

static void
bj_save(struct gr_rtr *r, struct gr_rtr_bj *b)
{
    struct gr_shm_bjob_view j;
    struct gr_shm_bpool_view pv;
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    unsigned lines = 0;
    uint32_t i;
    FILE *f;
    int rc;

    if (r->state_path[0] == '\0')
        return;
    bj_file(r, path, sizeof(path));
    if (path[0] == '\0' ||
        (f = gr_rtr_file_begin(path, "batch file", tmp, sizeof(tmp),
                               &rc)) == NULL)
        return;
    fprintf(f, "%s\n", BJ_MAGIC);
    for (i = 0; i < b->bt.njobs; i++) {
        if (gr_shm_bj_job_read(&b->bt, i, &j) != 0 ||
            j.state != GR_BJ_LIVE ||
            gr_shm_bj_pool_read(&b->bt, j.pool, &pv) != 0 ||
            strpbrk(j.name, " \t\n") != NULL || j.name[0] == '\0' ||
            strpbrk(pv.project, " \t\n") != NULL ||
            strpbrk(pv.model, " \t\n") != NULL)
            continue;
        fprintf(f, "job %s %s %s %lld %lld\n", j.name, pv.project, pv.model,
                (long long)j.tokens, (long long)j.submitted_s);
        lines++;
    }
    fprintf(f, "end %u\n", lines);
    (void)gr_rtr_file_commit(f, tmp, path, "batch file");
}

struct saved_job {
    char name[GR_BJ_NAME_MAX];
    char project[GR_BJ_PROJECT_MAX];
    char model[GR_BJ_MODEL_MAX];
    long long tokens, submitted;
};

/* One line "job NAME PROJECT MODEL TOKENS SUBMITTED" of the file. */
static int
bj_line(const char *line, unsigned lineno, void *elem, void *arg)
{
    struct saved_job *s = elem;
    int used = 0;

    (void)lineno;
    (void)arg;
    if (sscanf(line, "job %103s %63s %63s %lld %lld%n", s->name,
               s->project, s->model, &s->tokens, &s->submitted,
               &used) != 5 ||
        line[used] != '\n' || strncmp(s->name, "batches/", 8) != 0 ||
        s->tokens < 0)
        return -EINVAL;
    return 0;
}

/* The whole file, or -EINVAL with the damaged line in why. */
static int
bj_parse(FILE *f, struct saved_job **out, unsigned *n, char *why,
         size_t whylen)
{
    void *v;
    int rc;

    rc = gr_rtr_file_records(f, BJ_MAGIC, "batch file", 0, sizeof(**out),
                             MAX_SAVED, bj_line, NULL, &v, n, why, whylen);
    *out = v;
    return rc;
}

static void
bj_restore(struct gr_rtr *r, struct gr_rtr_bj *b)
{
    struct saved_job *v = NULL;
    char path[PATH_MAX], why[128];
    uint32_t me = (uint32_t)getpid(), rec;
    unsigned n = 0, i, put = 0;
    struct stat st;
    FILE *f;
    int k;

    if (r->state_path[0] == '\0')
        return;
    bj_file(r, path, sizeof(path));
    if ((f = gr_rtr_file_open(path, "batch file", "ignored", &st,
                              &k)) == NULL)
        return;
    k = bj_parse(f, &v, &n, why, sizeof(why));
    fclose(f);
    if (k != 0) {
        gr_rtr_log("batch file %s: %s; ignored", path, why);
        return;
    }
    for (i = 0; i < n; i++) {
        k = gr_shm_bj_router_pool(&b->bt, v[i].project, v[i].model);
        if (k < 0 ||
            gr_shm_bj_claim(&b->bt, (uint32_t)k, v[i].tokens, me, &rec) != 0)
            continue;
        gr_shm_bj_router_hold(&b->bt, (uint32_t)k, v[i].tokens);
        if (gr_shm_bj_held(&b->bt, rec, me) == 0 &&
            gr_shm_bj_submitted(&b->bt, rec, me, v[i].name,
                                v[i].submitted) == 0)
            put++;
    }
    free(v);
    gr_rtr_log("batch file %s: restored %u jobs of %u (with their holds)",
               path, put, n);
}
