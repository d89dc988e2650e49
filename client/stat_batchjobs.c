/*
 * stat_batchjobs.c - gr_stat_batch_pools(): batch mode's gauges as the
 * tools show them, read through a read-only mapping of the companion
 * segment (shm/batchjob.h); every value range-checked there.
 */
#include "gemroute_stat.h"
#include "batchjob.h"

#include <stdio.h>
#include <string.h>

int
gr_stat_batch_pools(const struct gr_stat *st, struct gr_stat_batch_pool *out,
                    int max, struct gr_stat_batch_counts *counts)
{
    struct gr_shm_bjtab bt;
    struct gr_shm_bpool_view v;
    struct gr_shm_bjob_view j;
    struct gr_stat_batch_counts c;
    char err[256];
    uint32_t i;
    int n = 0;

    memset(&c, 0, sizeof(c));
    if (counts != NULL)
        *counts = c;
    if (st == NULL ||
        gr_shm_bj_attach(gr_stat_name(st), false, &bt, err,
                         sizeof(err)) != 0)
        return -1;
    c.present = true;
    c.job_capacity = bt.njobs;
    /* relaxed: statistics */
    c.refused = atomic_load_explicit(&bt.hdr->refused, memory_order_relaxed);
    c.polls = atomic_load_explicit(&bt.hdr->polls, memory_order_relaxed);
    c.lost = atomic_load_explicit(&bt.hdr->lost, memory_order_relaxed);
    for (i = 0; i < bt.njobs; i++) {
        if (gr_shm_bj_job_read(&bt, i, &j) != 0)
            continue;
        if (j.state == GR_BJ_LIVE)
            c.live_jobs++;
        else
            c.submitting++;
    }
    for (i = 0; i < bt.npools; i++) {
        if (gr_shm_bj_pool_read(&bt, i, &v) != 0)
            continue;
        if (out != NULL && n < max) {
            struct gr_stat_batch_pool *p = &out[n];

            snprintf(p->project, sizeof(p->project), "%s", v.project);
            snprintf(p->model, sizeof(p->model), "%s", v.model);
            p->configured = v.configured;
            p->tokens_used = v.used_tokens;
            p->tokens_limit = v.limit_tokens;
            p->jobs_used = v.used_jobs;
            p->jobs_limit = v.limit_jobs;
            p->admitted = v.admitted;
            p->refused = v.refused;
            p->finished = v.finished;
        }
        n++;
    }
    gr_shm_bj_detach(&bt);
    if (counts != NULL)
        *counts = c;
    return n;
}
