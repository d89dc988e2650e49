/*
 * test_lease.c - the public reservation API against a real router:
 * gr_open's name lookup, non-blocking refusals that say when room comes,
 * deadlines, and a blocked reservation that sleeps (not spins) until the
 * window gives room back.
 */
#include "gemroute.h"
#include "testlib.h"
#include "testrouter.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_MS 1000
#define MS INT64_C(1000000)
#define N_ONE 48            /* models "one-N": one request a window each */

static struct gr_test_router rt;
static const char *shm = rt.shm;

static int
setup(void)
{
    FILE *f;

    if (gr_test_router_paths(&rt, "lease") != 0 ||
        (f = fopen(rt.conf, "w")) == NULL)
        return -1;
    fprintf(f, "router = { shm = \"%s\"; window_ms = %d; headroom = 1.0; "
            "state_file = \"state\"; max_models = %d; };\n"
            "models = ( { name = \"m\"; rpm = 2; tpm = 1000; }",
            rt.shm, WINDOW_MS, N_ONE + 1);
    for (int i = 0; i < N_ONE; i++)
        fprintf(f, ",\n  { name = \"one-%d\"; rpm = 1; tpm = 1000; }", i);
    fprintf(f, " );\n"
            "projects = ( { name = \"only\";\n"
            "               key = \"lease-SECRET-key-1\"; } );\n");
    fclose(f);
    rt.pid = gr_test_router_start(rt.conf, rt.shm, NULL);
    return rt.pid > 0 ? 0 : -1;
}

static int
teardown(void)
{
    return gr_test_router_end(&rt);
}

static void
test_open_by_env_and_errors(void)
{
    char err[256];
    struct gr *g;

    setenv("GEMROUTE_SHM", shm, 1);
    g = gr_open(NULL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(g);
    gr_close(g);
    unsetenv("GEMROUTE_SHM");
    g = gr_open("/grtest-no-such-table", err, sizeof(err));
    CU_ASSERT_PTR_NULL(g);
    CU_ASSERT(strstr(err, "/grtest-no-such-table") != NULL);
}

static void
test_refusal_says_when(void)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost one = {1, 10, 0};
    struct gr_lease a, b, c;
    struct gr_usage use = {-1, -1, 0};
    int64_t now;

    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &one, 0, &a), GR_OK);
    CU_ASSERT_STRING_EQUAL(a.project, "only");
    CU_ASSERT_STRING_EQUAL(a.key, "lease-SECRET-key-1");
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &one, 0, &b), GR_OK);
    CU_ASSERT_EQUAL(gr_reserve(g, "nope", &one, 0, &c), GR_ENOMODEL);
    now = gr_now_ns();
    gr_commit(g, &a, &use);
    gr_commit(g, &b, &use);
    gr_commit(g, &b, &use);     /* twice: nothing happens */
    /* Full: no room now, and the table says when. */
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &one, 0, &c), GR_ENOROOM);
    CU_ASSERT(c.retry_at_ns >= now + WINDOW_MS * MS);
    /* A release is parked at the first tick boundary (window / 64) at
     * or after first byte + window, and a first byte of "now" is read
     * from the precise clock at the commit (docs/ADMISSION.md): at most a
     * tick past a window from now. */
    CU_ASSERT(c.retry_at_ns <= gr_now_ns() + WINDOW_MS * MS +
                                  WINDOW_MS * MS / 64 + 1);
    /* A deadline before that instant fails, with the same hint. */
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &one, gr_now_ns() + 20 * MS, &c),
                    GR_EDEADLINE);
    CU_ASSERT(c.retry_at_ns >= now + WINDOW_MS * MS);
    gr_close(g);
}

/*
 * A release is never computed from an instant before the first byte.  The
 * client counts with the coarse clock, which can lag the precise one by
 * more than its resolution (4-8 ms on this machine, 32 ms under load);
 * a first byte given as "now" (0), or one the coarse clock had not
 * reached yet, once came out that much early, and so did the release:
 * over-admission, which stress_admission's exact checker caught.  Each
 * "one-N" model admits one request a window: commit it with a first
 * byte just read from gr_now_ns() (or "now", read after it), and the
 * refusal that follows must not hint at room before first byte + window.
 * (The lag varies from call to call: 48 cells make sure some of them
 * see it.)
 */
static void
test_release_never_before_first_byte(void)
{
    char err[256], model[16];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost one = {1, 10, 0};
    struct gr_lease a, b;
    struct gr_usage use = {-1, -1, 0};
    int early = 0, refused = 0;

    CU_ASSERT_FATAL(g != NULL);
    for (int i = 0; i < N_ONE; i++) {
        int64_t p;

        /* each at another point of a tick (window / 64 = 15.6 ms) */
        usleep(WINDOW_MS * 1000 / 64 / N_ONE);
        snprintf(model, sizeof(model), "one-%d", i);
        CU_ASSERT_EQUAL_FATAL(gr_reserve(g, model, &one, 0, &a), GR_OK);
        p = gr_now_ns();
        use.first_byte_ns = i % 2 == 0 ? p : 0;
        gr_commit(g, &a, &use);
        if (gr_reserve(g, model, &one, 0, &b) != GR_ENOROOM)
            continue;
        refused++;
        if (b.retry_at_ns < p + WINDOW_MS * MS)
            early++;
    }
    CU_ASSERT_EQUAL(refused, N_ONE);
    CU_ASSERT_EQUAL(early, 0);
    gr_close(g);
}

static double
cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
test_blocked_reserve_sleeps_until_room(void)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost one = {1, 10, 0};
    struct gr_lease l;
    struct gr_usage use = {-1, -1, 0};
    int64_t t0, t1;
    double c0, c1;

    CU_ASSERT_FATAL(g != NULL);
    /* Fill the window (the previous test's leases may still hold it). */
    while (gr_reserve(g, "m", &one, 0, &l) == GR_OK)
        gr_commit(g, &l, &use);
    t0 = gr_now_ns();
    c0 = cpu_s();
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m", &one,
                                     t0 + 5 * WINDOW_MS * MS, &l), GR_OK);
    t1 = gr_now_ns();
    c1 = cpu_s();
    gr_commit(g, &l, &use);
    /* It waited for the window, and slept while it did: the CPU it used
     * is a small fraction of the time it waited (a ratio, not a time). */
    CU_ASSERT(t1 > t0);
    printf("\n  blocked %.3f s, using %.3f s of CPU\n",
           (double)(t1 - t0) / 1e9, c1 - c0);
    CU_ASSERT(c1 - c0 < 0.25 * (double)(t1 - t0) / 1e9 + 0.01);
    gr_close(g);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"gr_open: env name, clear errors", test_open_by_env_and_errors},
        {"refusal says when room comes", test_refusal_says_when},
        {"a release never before first byte + window",
         test_release_never_before_first_byte},
        {"blocked reserve sleeps until room",
         test_blocked_reserve_sleeps_until_room},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"lease", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_lease", suites, 60);
}
