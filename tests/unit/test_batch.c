/*
 * test_batch.c - batch leases (client/batch.c) against a real router: a
 * thread that calls often takes its calls from one lease of the table
 * admitted for several, and the table ends up counting exactly the calls
 * that were sent, whoever commits them and however the thread ends.
 *
 * The counts are read from the table itself (attached read-only) while
 * the window still holds them: the window is a minute, and every check
 * comes right after the calls it counts.
 */
#include "gemroute.h"
#include "reserve.h"
#include "testlib.h"
#include "testrouter.h"
#include "window.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_MS 60000
#define SMALL_RPM 100       /* per project; two projects */

static struct gr_test_router rt;
static const char *shm = rt.shm;

static int
setup(void)
{
    FILE *f;

    if (gr_test_router_paths(&rt, "batch") != 0 ||
        (f = fopen(rt.conf, "w")) == NULL)
        return -1;
    /* "big": ample room, so calls in a row are batched; one model per
     * test that counts, so that no test sees another's calls. */
    fprintf(f, "router = { shm = \"%s\"; window_ms = %d; headroom = 1.0; "
            "state_file = \"state\"; max_models = 8; };\n"
            "models = (\n"
            "  { name = \"big\"; rpm = 100000; tpm = 100000000; "
            "rpd = 1000000; },\n"
            "  { name = \"big-2\"; rpm = 100000; tpm = 100000000; },\n"
            "  { name = \"big-3\"; rpm = 100000; tpm = 100000000; },\n"
            "  { name = \"big-4\"; rpm = 100000; tpm = 100000000; },\n"
            "  { name = \"big-5\"; rpm = 100000; tpm = 100000000; },\n"
            "  { name = \"big-6\"; rpm = 100000; tpm = 100000000; },\n"
            "  { name = \"big-7\"; rpm = 100000; tpm = 100000000; },\n"
            "  { name = \"small\"; rpm = %d; tpm = 100000000; } );\n"
            "projects = ( { name = \"a\"; key = \"batch-SECRET-a\"; },\n"
            "             { name = \"b\"; key = \"batch-SECRET-b\"; } );\n",
            rt.shm, WINDOW_MS, SMALL_RPM);
    fclose(f);
    rt.pid = gr_test_router_start(rt.conf, rt.shm, NULL);
    return rt.pid > 0 ? 0 : -1;
}

static int
teardown(void)
{
    return gr_test_router_end(&rt);
}

/* What the table counts for a model, summed over the projects. */
struct counts {
    int64_t rpm, tpm, rpd;      /* held in the windows and the day */
    int64_t admitted;           /* the cells' admission counters */
    int64_t in_flight;          /* requests of open leases */
};

static struct counts
table_counts(const char *model)
{
    struct counts n = {0, 0, 0, 0, 0};
    struct gr_shm t;
    char err[256];
    int m;

    CU_ASSERT_FATAL(gr_shm_attach(shm, false, &t, err, sizeof(err)) == 0);
    m = gr_shm_model_index(&t, model);
    CU_ASSERT_FATAL(m >= 0);
    for (uint32_t p = 0; p < t.max_projects; p++) {
        struct gr_shm_cell *c = gr_shm_cell(&t, p, (uint32_t)m);
        int64_t now = gr_now_ns();

        n.rpm += gr_shm_window_used(&t, c, GR_W_RPM, now);
        n.tpm += gr_shm_window_used(&t, c, GR_W_TPM, now);
        n.rpd += gr_shm_day_used(&c->day, gr_shm_pacific_day_in(
                                              t.hdr, time(NULL), NULL, NULL));
        n.admitted += (int64_t)atomic_load(&c->admitted);
        n.in_flight += gr_shm_cell_in_flight(&t, p * t.max_models +
                                                     (uint32_t)m,
                                             UINT32_MAX);
    }
    gr_shm_detach(&t);
    return n;
}

/* Leases of the table behind n calls: calls of one batch share one. */
static int
distinct_leases(const struct gr_lease *l, int n)
{
    int d = 0;

    for (int i = 0; i < n; i++) {
        int seen = 0;

        for (int j = 0; j < i && !seen; j++)
            seen = l[j].slot == l[i].slot && l[j].ticket == l[i].ticket;
        d += !seen;
    }
    return d;
}

#define ROW 300

/*
 * Calls in a row share leases of the table, and what the table counts
 * once the handle is closed is exactly what was sent: the calls a batch
 * did not hand out are given back to the window and the day at once.
 */
static void
test_calls_in_a_row_share_a_lease(void)
{
    static struct gr_lease l[ROW];
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost cost = {1, 100, 0};
    struct counts n;

    CU_ASSERT_FATAL(g != NULL);
    for (int i = 0; i < ROW; i++) {
        CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "big", &cost, 0, &l[i]), GR_OK);
        CU_ASSERT_STRING_EQUAL(l[i].model, "big");
        CU_ASSERT(strcmp(l[i].project, "a") == 0 ||
                  strcmp(l[i].project, "b") == 0);
        CU_ASSERT_STRING_EQUAL(l[i].key, strcmp(l[i].project, "a") == 0
                                             ? "batch-SECRET-a"
                                             : "batch-SECRET-b");
    }
    printf("\n  %d calls in a row took %d leases of the table\n", ROW,
           distinct_leases(l, ROW));
    CU_ASSERT(distinct_leases(l, ROW) <= ROW / 4);
    /* Open calls count in flight: at least each call once. */
    n = table_counts("big");
    CU_ASSERT(n.in_flight >= ROW);
    for (int i = 0; i < ROW; i++)
        gr_commit(g, &l[i], NULL);
    gr_close(g);
    n = table_counts("big");
    CU_ASSERT_EQUAL(n.rpm, ROW);
    CU_ASSERT_EQUAL(n.tpm, ROW * 100);
    CU_ASSERT_EQUAL(n.rpd, ROW);
    /* and nothing else: the launcher waits for the router without
     * taking a lease (tests/testrouter.c) */
    CU_ASSERT_EQUAL(n.admitted, ROW);
    CU_ASSERT_EQUAL(n.in_flight, 0);
}

/*
 * Near a limit every call still fits: a batch takes at most a sixteenth
 * of the room left, so the calls in a row use the whole limit of both
 * projects and not one call more.
 */
static void
test_the_whole_limit_and_no_more(void)
{
    static struct gr_lease l[2 * SMALL_RPM + 1];
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost cost = {1, 10, 0};
    struct counts n;
    int got = 0;

    CU_ASSERT_FATAL(g != NULL);
    while (got <= 2 * SMALL_RPM &&
           gr_reserve(g, "small", &cost, 0, &l[got]) == GR_OK)
        got++;
    CU_ASSERT_EQUAL(got, 2 * SMALL_RPM);
    CU_ASSERT(distinct_leases(l, got) < got);
    n = table_counts("small");
    CU_ASSERT_EQUAL(n.rpm, 2 * SMALL_RPM);
    for (int i = 0; i < got; i++)
        gr_commit(g, &l[i], NULL);
    gr_close(g);
    n = table_counts("small");
    CU_ASSERT_EQUAL(n.rpm, 2 * SMALL_RPM);
    CU_ASSERT_EQUAL(n.admitted, 2 * SMALL_RPM);
    CU_ASSERT_EQUAL(n.in_flight, 0);
}

/*
 * Make calls in a row until one is the first of a new batch lease, after
 * enough calls that the batch is large: it will serve more calls.
 */
static void
batch_up(struct gr *g, const char *model, struct gr_lease *first)
{
    struct gr_cost cost = {1, 10, 0};
    struct gr_lease prev;

    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, model, &cost, 0, &prev), GR_OK);
    for (int i = 0; i < 10000; i++) {
        CU_ASSERT_EQUAL_FATAL(gr_reserve(g, model, &cost, 0, first), GR_OK);
        gr_commit(g, &prev, NULL);
        if (i >= 100 &&
            (first->slot != prev.slot || first->ticket != prev.ticket))
            return;
        prev = *first;
    }
    CU_FAIL_FATAL("no new batch lease after 10000 calls in a row");
}

static void
quota_429(struct gr_verdict *v)
{
    memset(v, 0, sizeof(*v));
    v->status = 429;
    v->cls = GR_CLASS_QUOTA;
    v->dims = GR_DIM_BIT(GR_DIM_RPM);
    v->cooldown_s = 30;
    v->retryable = true;
    for (int d = 0; d < GR_NDIMS; d++)
        v->learned[d] = -1;
}

/*
 * A bad answer on this thread ends its batch: the next call is free to
 * go to the other project (the cell cools down), and the calls the batch
 * did not hand out are given back.
 */
static void
test_a_429_moves_the_next_call(void)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost cost = {1, 10, 0};
    struct gr_verdict v;
    struct gr_lease l, next;
    struct counts n;

    CU_ASSERT_FATAL(g != NULL);
    batch_up(g, "big-2", &l);
    quota_429(&v);
    gr_report(g, &l, &v);
    gr_commit(g, &l, NULL);
    CU_ASSERT_EQUAL(gr_reserve(g, "big-2", &cost, 0, &next), GR_OK);
    CU_ASSERT_STRING_NOT_EQUAL(next.project, l.project);
    gr_commit(g, &next, NULL);
    gr_close(g);
    /* Every call sent counted once; none of the unsent. */
    n = table_counts("big-2");
    CU_ASSERT_EQUAL(n.rpm, n.admitted);
    CU_ASSERT_EQUAL(n.in_flight, 0);
}

/*
 * A call that used more than its estimate is counted at once, while its
 * batch is still open (Google counted it already); one that used less
 * is given back only when the batch settles.
 */
static void
test_an_overrun_counts_at_once(void)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost cost = {1, 10, 0};
    struct gr_usage more = {5000, -1, 0}, less = {1, -1, 0};
    struct gr_lease l, m;
    struct counts before, n;

    CU_ASSERT_FATAL(g != NULL);
    batch_up(g, "big-6", &l);
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "big-6", &cost, 0, &m), GR_OK);
    CU_ASSERT_FATAL(m.slot == l.slot && m.ticket == l.ticket);
    before = table_counts("big-6");
    gr_commit(g, &l, &more);
    n = table_counts("big-6");
    CU_ASSERT_EQUAL(n.tpm, before.tpm + 5000 - 10);
    gr_commit(g, &m, &less);
    n = table_counts("big-6");
    CU_ASSERT_EQUAL(n.tpm, before.tpm + 5000 - 10);
    gr_close(g);
    /* Settled: every call's usage, nothing of the unsent. */
    n = table_counts("big-6");
    CU_ASSERT_EQUAL(n.rpm, n.admitted);
    CU_ASSERT_EQUAL(n.tpm, (n.rpm - 2) * 10 + 5000 + 1);
    CU_ASSERT_EQUAL(n.in_flight, 0);
}

static int64_t
coarse_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct report_arg {
    struct gr *g;
    struct gr_lease lease;
};

static void *
report_429(void *p)
{
    struct report_arg *a = p;
    struct gr_verdict v;

    quota_429(&v);
    gr_report(a->g, &a->lease, &v);
    return NULL;
}

/*
 * A cooldown set elsewhere (here: another thread's report on the cell)
 * stops the batch once the clock has moved: the batch reads its cell's
 * health at most once per step of the coarse clock.
 */
static void
test_a_cooldown_from_elsewhere_stops_the_batch(void)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost cost = {1, 10, 0};
    struct report_arg a;
    struct gr_lease next;
    pthread_t th;
    int64_t t0;

    CU_ASSERT_FATAL(g != NULL);
    batch_up(g, "big-3", &a.lease);
    a.g = g;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, report_429, &a) == 0);
    pthread_join(th, NULL);
    t0 = coarse_now();
    while (coarse_now() == t0)
        gr_test_sleep_ns(1000000);
    CU_ASSERT_EQUAL(gr_reserve(g, "big-3", &cost, 0, &next), GR_OK);
    CU_ASSERT_STRING_NOT_EQUAL(next.project, a.lease.project);
    gr_commit(g, &next, NULL);
    gr_commit(g, &a.lease, NULL);
    gr_close(g);
}

struct commit_arg {
    struct gr *g;
    struct gr_lease *l;
    int n;
};

static void *
commit_all(void *p)
{
    struct commit_arg *a = p;
    struct gr_usage use = {50, -1, 0};

    for (int i = 0; i < a->n; i++)
        gr_commit(a->g, &a->l[i], &use);
    return NULL;
}

/*
 * Calls committed by another thread: each batch is settled when the last
 * of its calls is in, there or here, with the usage they reported (50
 * tokens each, not the 100 estimated).
 */
static void
test_calls_committed_by_another_thread(void)
{
    static struct gr_lease l[ROW];
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost cost = {1, 100, 0};
    struct commit_arg a = {g, l, ROW};
    struct counts n;
    pthread_t th;

    CU_ASSERT_FATAL(g != NULL);
    for (int i = 0; i < ROW; i++)
        CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "big-4", &cost, 0, &l[i]),
                              GR_OK);
    CU_ASSERT(distinct_leases(l, ROW) <= ROW / 4);
    CU_ASSERT_FATAL(pthread_create(&th, NULL, commit_all, &a) == 0);
    pthread_join(th, NULL);
    /* Every batch this thread gave up on is settled already, by the
     * other thread's last commit: only the one it still holds, most of
     * it unsent, is in flight.  That one settles when the handle closes. */
    n = table_counts("big-4");
    CU_ASSERT(n.in_flight > 0);
    CU_ASSERT(n.in_flight < ROW / 2);
    gr_close(g);
    n = table_counts("big-4");
    CU_ASSERT_EQUAL(n.rpm, ROW);
    CU_ASSERT_EQUAL(n.tpm, ROW * 50);
    CU_ASSERT_EQUAL(n.admitted, ROW);
    CU_ASSERT_EQUAL(n.in_flight, 0);
}

/*
 * A thread that stops calling holds nothing for long: the sweeper closes
 * its batch once the batch's end (a tick, 0.94 s here) has passed, and
 * the unsent calls go back although the thread never calls again.
 */
static void
test_the_sweeper_ends_an_idle_batch(void)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_lease l;
    struct counts n;
    int waited = 0;

    CU_ASSERT_FATAL(g != NULL);
    batch_up(g, "big-7", &l);
    gr_commit(g, &l, NULL);
    n = table_counts("big-7");
    CU_ASSERT(n.in_flight > 0);     /* the batch's unsent calls */
    /* The watchdog bounds the wait; a tick is all it should take. */
    while (n.in_flight > 0) {
        gr_test_sleep_ns(10000000);
        waited++;
        n = table_counts("big-7");
    }
    printf("\n  the idle batch was settled after %d ms of waiting\n",
           waited * 10);
    CU_ASSERT_EQUAL(n.rpm, n.admitted);
    gr_close(g);
}

static void *
calls_then_exit(void *p)
{
    struct gr *g = p;
    struct gr_cost cost = {1, 100, 0};
    struct gr_lease l;

    for (int i = 0; i < ROW; i++) {
        if (gr_reserve(g, "big-5", &cost, 0, &l) != GR_OK)
            return (void *)1;
        gr_commit(g, &l, NULL);
    }
    return NULL;
}

/*
 * A thread that ends holding a batch gives its unsent calls back as it
 * exits, not when the handle closes; and a child forked while its parent
 * holds a batch makes its own leases.
 */
static void
test_thread_exit_and_fork(void)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost cost = {1, 100, 0};
    struct gr_lease held;
    struct counts n;
    void *rc = NULL;
    pthread_t th;
    int fd[2], st;
    pid_t child;
    uint32_t child_slot = UINT32_MAX;

    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT_FATAL(pthread_create(&th, NULL, calls_then_exit, g) == 0);
    pthread_join(th, &rc);
    CU_ASSERT_PTR_NULL(rc);
    n = table_counts("big-5");
    CU_ASSERT_EQUAL(n.rpm, ROW);
    CU_ASSERT_EQUAL(n.rpd, 0);      /* "big-5" has no day limit */
    CU_ASSERT_EQUAL(n.admitted, ROW);
    CU_ASSERT_EQUAL(n.in_flight, 0);

    batch_up(g, "big-5", &held);
    CU_ASSERT_FATAL(pipe(fd) == 0);
    child = fork();
    if (child == 0) {
        struct gr_lease mine;
        uint32_t slot = UINT32_MAX;

        if (gr_reserve(g, "big-5", &cost, 0, &mine) == GR_OK &&
            mine.batch == NULL)
            slot = mine.slot;
        if (write(fd[1], &slot, sizeof(slot)) != sizeof(slot))
            _exit(1);
        _exit(0);
    }
    CU_ASSERT_FATAL(child > 0);
    CU_ASSERT_EQUAL(read(fd[0], &child_slot, sizeof(child_slot)),
                    (ssize_t)sizeof(child_slot));
    waitpid(child, &st, 0);
    close(fd[0]);
    close(fd[1]);
    CU_ASSERT(child_slot != UINT32_MAX);
    CU_ASSERT(child_slot != held.slot);
    gr_commit(g, &held, NULL);
    gr_close(g);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"calls in a row share a lease; the unsent come back",
         test_calls_in_a_row_share_a_lease},
        {"near a limit: the whole limit and no more",
         test_the_whole_limit_and_no_more},
        {"a 429 on this thread moves the next call",
         test_a_429_moves_the_next_call},
        {"an overrun counts at once, a refund at the end",
         test_an_overrun_counts_at_once},
        {"a cooldown set elsewhere stops the batch",
         test_a_cooldown_from_elsewhere_stops_the_batch},
        {"the sweeper ends an idle thread's batch",
         test_the_sweeper_ends_an_idle_batch},
        {"calls committed by another thread",
         test_calls_committed_by_another_thread},
        {"thread exit gives back; a forked child leases its own",
         test_thread_exit_and_fork},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"batch", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_batch", suites, 60);
}
