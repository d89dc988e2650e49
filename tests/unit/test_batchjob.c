/*
 * test_batchjob.c - batch mode's gauges and job records (shm/batchjob.h):
 * limits hold (tokens and jobs, all or nothing), many processes admitting
 * at once never pass a limit and every hold comes back exactly once, a
 * job record's life (claim, held, submitted, finished by the router), a
 * dead submitter's claim reaped (its hold given back when it had one), a
 * pool that left the config admits nothing, a scribbled record never
 * crashes a reader.  Nothing sleeps or measures time.
 */
#include "batchjob.h"
#include "testlib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static char table[64];

static void
make(struct gr_shm_bjtab *bt)
{
    bool created = false;
    char err[256] = "", seg[GR_BJ_SEGNAME_MAX];

    CU_ASSERT_FATAL(gr_shm_bj_segname(table, seg, sizeof(seg)) == 0);
    shm_unlink(seg);
    CU_ASSERT_FATAL(gr_shm_bj_router_open(table, 16, 64, 0600, (gid_t)-1,
                                          bt, &created, err,
                                          sizeof(err)) == 0);
    CU_ASSERT(created);
}

static void
unmake(struct gr_shm_bjtab *bt)
{
    char seg[GR_BJ_SEGNAME_MAX];

    gr_shm_bj_detach(bt);
    gr_shm_bj_segname(table, seg, sizeof(seg));
    shm_unlink(seg);
}

static void
test_limits(void)
{
    struct gr_shm_bjtab bt;
    struct gr_shm_bpool_view v;
    int p, q;

    make(&bt);
    p = gr_shm_bj_router_pool(&bt, "p1", "m");
    q = gr_shm_bj_router_pool(&bt, "p2", "m");
    CU_ASSERT_FATAL(p >= 0 && q >= 0 && p != q);
    CU_ASSERT(gr_shm_bj_router_pool(&bt, "p1", "m") == p);  /* found again */
    gr_shm_bj_router_limits(&bt, (uint32_t)p, true, 1000, 2);
    gr_shm_bj_router_limits(&bt, (uint32_t)q, true, GR_BJ_UNLIMITED,
                            GR_BJ_UNLIMITED);
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)p, 600) == 0);
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)p, 500) == -EAGAIN); /* tokens */
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)p, 400) == 0);
    /* jobs full: the tokens it would fit are given back (all or nothing) */
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)p, 0) == -EAGAIN);
    CU_ASSERT(gr_shm_bj_pool_read(&bt, (uint32_t)p, &v) == 0);
    CU_ASSERT_EQUAL(v.used_tokens, 1000);
    CU_ASSERT_EQUAL(v.used_jobs, 2);
    CU_ASSERT_EQUAL(v.admitted, 2);
    CU_ASSERT_EQUAL(v.refused, 2);
    CU_ASSERT_STRING_EQUAL(v.project, "p1");
    gr_shm_bj_release(&bt, (uint32_t)p, 400, true);
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)p, 400) == 0);
    /* unlimited */
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)q, INT64_C(1) << 40) == 0);
    /* left the config: admits nothing, keeps what it holds */
    gr_shm_bj_router_limits(&bt, (uint32_t)p, false, 1000, 2);
    gr_shm_bj_release(&bt, (uint32_t)p, 400, true);
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)p, 1) == -EAGAIN);
    CU_ASSERT(gr_shm_bj_pool_read(&bt, (uint32_t)p, &v) == 0);
    CU_ASSERT(!v.configured);
    CU_ASSERT_EQUAL(v.used_tokens, 600);
    CU_ASSERT(gr_shm_bj_admit(&bt, 15, 1) == -EAGAIN);    /* never named */
    CU_ASSERT(gr_shm_bj_admit(&bt, 9999, 1) == -ENOENT);
    unmake(&bt);
}

static void
test_job_life(void)
{
    struct gr_shm_bjtab bt;
    struct gr_shm_bjob_view j;
    struct gr_shm_bpool_view v;
    uint32_t me = (uint32_t)getpid(), rec, rec2;
    int p;

    make(&bt);
    p = gr_shm_bj_router_pool(&bt, "p1", "m");
    gr_shm_bj_router_limits(&bt, (uint32_t)p, true, 1000, 4);
    CU_ASSERT_FATAL(gr_shm_bj_claim(&bt, (uint32_t)p, 300, me, &rec) == 0);
    CU_ASSERT(gr_shm_bj_job_read(&bt, rec, &j) == -ENOENT);  /* claimed */
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)p, 300) == 0);
    CU_ASSERT(gr_shm_bj_held(&bt, rec, me) == 0);
    CU_ASSERT(gr_shm_bj_job_read(&bt, rec, &j) == 0);
    CU_ASSERT_EQUAL(j.state, GR_BJ_SUBMITTING);
    CU_ASSERT(gr_shm_bj_held(&bt, rec, me + 1) == -ESTALE);  /* not his */
    CU_ASSERT(gr_shm_bj_submitted(&bt, rec, me, "batches/abc", 1) == 0);
    CU_ASSERT(gr_shm_bj_find(&bt, "batches/abc", &j) == (int)rec);
    CU_ASSERT_EQUAL(j.tokens, 300);
    CU_ASSERT_EQUAL(j.pool, (uint32_t)p);
    /* a submitter cannot abandon a LIVE job: only the router ends it */
    CU_ASSERT(gr_shm_bj_abandon(&bt, rec, me) == -ESTALE);
    CU_ASSERT(gr_shm_bj_router_finish(&bt, rec) == 0);
    CU_ASSERT(gr_shm_bj_router_finish(&bt, rec) == -EAGAIN);  /* once */
    CU_ASSERT(gr_shm_bj_find(&bt, "batches/abc", &j) == -ENOENT);
    CU_ASSERT(gr_shm_bj_pool_read(&bt, (uint32_t)p, &v) == 0);
    CU_ASSERT_EQUAL(v.used_tokens, 0);
    CU_ASSERT_EQUAL(v.used_jobs, 0);
    CU_ASSERT_EQUAL(v.finished, 1);
    /* a failed submission: abandoned, the caller gives the hold back */
    CU_ASSERT_FATAL(gr_shm_bj_claim(&bt, (uint32_t)p, 200, me, &rec2) == 0);
    CU_ASSERT(gr_shm_bj_admit(&bt, (uint32_t)p, 200) == 0);
    CU_ASSERT(gr_shm_bj_held(&bt, rec2, me) == 0);
    CU_ASSERT(gr_shm_bj_abandon(&bt, rec2, me) == 0);
    gr_shm_bj_release(&bt, (uint32_t)p, 200, false);
    CU_ASSERT(gr_shm_bj_pool_read(&bt, (uint32_t)p, &v) == 0);
    CU_ASSERT_EQUAL(v.used_tokens, 0);
    CU_ASSERT_EQUAL(v.finished, 1);
    unmake(&bt);
}

/* Children admit, hold and finish jobs on one pool at once: the gauges
 * never pass the limits, and end at 0. */
static void
test_processes(void)
{
    struct gr_shm_bjtab bt;
    struct gr_shm_bpool_view v;
    enum { KIDS = 6, ROUNDS = 400 };
    int p, k, status, ok = 1;

    make(&bt);
    p = gr_shm_bj_router_pool(&bt, "p1", "m");
    gr_shm_bj_router_limits(&bt, (uint32_t)p, true, 1000, 3);
    for (k = 0; k < KIDS; k++) {
        pid_t pid = fork();

        CU_ASSERT_FATAL(pid >= 0);
        if (pid == 0) {
            struct gr_shm_bjtab c;
            struct gr_shm_bpool_view cv;
            char err[256];
            uint64_t seed = (uint64_t)k + 1;
            int r, bad = 0;

            if (gr_shm_bj_attach(table, true, &c, err, sizeof(err)) != 0)
                _exit(3);
            for (r = 0; r < ROUNDS; r++) {
                int64_t t = (int64_t)(gr_test_rand(&seed) % 600);

                if (gr_shm_bj_admit(&c, (uint32_t)p, t) != 0)
                    continue;
                if (gr_shm_bj_pool_read(&c, (uint32_t)p, &cv) != 0 ||
                    cv.used_tokens > 1000 || cv.used_jobs > 3)
                    bad = 1;
                gr_shm_bj_release(&c, (uint32_t)p, t, true);
            }
            _exit(bad ? 1 : 0);
        }
    }
    for (k = 0; k < KIDS; k++) {
        wait(&status);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ok = 0;
    }
    CU_ASSERT(ok);
    CU_ASSERT(gr_shm_bj_pool_read(&bt, (uint32_t)p, &v) == 0);
    CU_ASSERT_EQUAL(v.used_tokens, 0);
    CU_ASSERT_EQUAL(v.used_jobs, 0);
    CU_ASSERT_EQUAL(v.admitted, v.finished);
    CU_ASSERT(v.admitted > 0);
    unmake(&bt);
}

/* A submitter that dies holding: the router gives its hold back; one that
 * dies with a bare claim: freed, nothing given. */
static void
test_dead_submitter(void)
{
    struct gr_shm_bjtab bt;
    struct gr_shm_bpool_view v;
    int p, status;
    pid_t pid;

    make(&bt);
    p = gr_shm_bj_router_pool(&bt, "p1", "m");
    gr_shm_bj_router_limits(&bt, (uint32_t)p, true, 1000, 4);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct gr_shm_bjtab c;
        char err[256];
        uint32_t me = (uint32_t)getpid(), a, b;

        if (gr_shm_bj_attach(table, true, &c, err, sizeof(err)) != 0 ||
            gr_shm_bj_claim(&c, (uint32_t)p, 300, me, &a) != 0 ||
            gr_shm_bj_admit(&c, (uint32_t)p, 300) != 0 ||
            gr_shm_bj_held(&c, a, me) != 0 ||
            gr_shm_bj_claim(&c, (uint32_t)p, 100, me, &b) != 0)
            _exit(1);
        _exit(0);       /* dies holding 300, with one bare claim */
    }
    waitpid(pid, &status, 0);
    CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT(gr_shm_bj_pool_read(&bt, (uint32_t)p, &v) == 0);
    CU_ASSERT_EQUAL(v.used_tokens, 300);
    CU_ASSERT_EQUAL(gr_shm_bj_router_reap(&bt), 2u);
    CU_ASSERT_EQUAL(gr_shm_bj_router_reap(&bt), 0u);
    CU_ASSERT(gr_shm_bj_pool_read(&bt, (uint32_t)p, &v) == 0);
    CU_ASSERT_EQUAL(v.used_tokens, 0);
    CU_ASSERT_EQUAL(v.used_jobs, 0);
    CU_ASSERT_EQUAL(v.finished, 0);
    CU_ASSERT_EQUAL(atomic_load(&bt.hdr->lost), 1u);
    unmake(&bt);
}

static void
test_scribbled(void)
{
    struct gr_shm_bjtab bt;
    struct gr_shm_bjob_view j;
    struct gr_shm_bpool_view v;
    uint32_t i;

    make(&bt);
    gr_shm_bj_router_pool(&bt, "p1", "m");
    /* garbage everywhere after the header */
    memset(bt.base + sizeof(struct gr_shm_bj_hdr), 0xa5,
           bt.size - sizeof(struct gr_shm_bj_hdr));
    /* a LIVE record naming a pool past the end: counted, skipped */
    atomic_store(&bt.jobs[0].state, (uint64_t)4000 << 4 | GR_BJ_LIVE);
    CU_ASSERT(gr_shm_bj_job_read(&bt, 0, &j) == -EAGAIN);
    CU_ASSERT(atomic_load(&bt.hdr->anomalies) >= 1u);
    CU_ASSERT(gr_shm_bj_router_finish(&bt, 0) == 0);  /* no release */
    for (i = 0; i < bt.njobs + 2; i++)
        (void)gr_shm_bj_job_read(&bt, i, &j);
    for (i = 0; i < bt.npools + 2; i++)
        if (gr_shm_bj_pool_read(&bt, i, &v) == 0)
            CU_ASSERT(strlen(v.project) < sizeof(v.project));
    CU_ASSERT(gr_shm_bj_find(&bt, "batches/x", &j) == -ENOENT);
    CU_ASSERT(gr_shm_bj_router_reap(&bt) <= bt.njobs);
    unmake(&bt);
}

static void
test_bad_header(void)
{
    struct gr_shm_bjtab bt;
    char err[256] = "";
    static unsigned char buf[4096];

    memset(&bt, 0, sizeof(bt));
    CU_ASSERT(gr_shm_bj_check_mapping(buf, sizeof(buf), false, &bt, err,
                                      sizeof(err)) == -EPROTO);
    CU_ASSERT(strstr(err, "not a gemroute batch record") != NULL);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"limits: tokens and jobs, all or nothing", test_limits},
        {"a job's life, finished once", test_job_life},
        {"processes at once never pass a limit", test_processes},
        {"a dead submitter's hold comes back", test_dead_submitter},
        {"a scribbled record never crashes a reader", test_scribbled},
        {"a damaged header is refused", test_bad_header},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"batchjob", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    snprintf(table, sizeof(table), "/grtest-bj-%d", (int)getpid());
    return gr_test_main("test_batchjob", suites, 60);
}
