/*
 * test_history.c - the router's history ring (router/history.c,
 * shm/history.h) read through gr_stat_history(), and gr_ctl_send(), the
 * one client of the control socket, against a real router.
 *
 * Waits are polls of a condition with a bounded count, never timed
 * assertions: the router samples every 5 s, so a new sample is waited
 * for by its count.
 */
#include "gemroute.h"
#include "gemroute_stat.h"
#include "testlib.h"
#include "testrouter.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MS INT64_C(1000000)

static struct gr_test_router rt;

static int
setup(void)
{
    FILE *f;

    if (gr_test_router_paths(&rt, "hist") != 0 ||
        (f = fopen(rt.conf, "w")) == NULL)
        return -1;
    fprintf(f, "router = { shm = \"%s\"; window_ms = 60000; "
            "headroom = 1.0; max_models = 2; };\n"
            "models = ( { name = \"m\"; rpm = 50; tpm = 100000; },\n"
            "           { name = \"n\"; rpm = 7; tpm = 1000; } );\n"
            "projects = ( { name = \"pa\"; key = \"hist-SECRET-aaaa\"; },\n"
            "             { name = \"pb\"; key = \"hist-SECRET-bbbb\"; } );\n",
            rt.shm);
    fclose(f);
    rt.pid = gr_test_router_start(rt.conf, rt.shm, NULL);
    return rt.pid > 0 ? 0 : -1;
}

static int
teardown(void)
{
    char name[128];
    int rc = gr_test_router_end(&rt), fd;

    /* The router removed its history with its table. */
    snprintf(name, sizeof(name), "%s.hist", rt.shm);
    fd = shm_open(name, O_RDONLY, 0);
    if (fd >= 0) {
        close(fd);
        shm_unlink(name);
        return -1;
    }
    return rc;
}

/* A snapshot and its history, taken together. */
static void
take(struct gr_stat *st, struct gr_stat_snap *s, struct gr_stat_hist *h)
{
    CU_ASSERT_EQUAL_FATAL(gr_stat_take(st, s), GR_OK);
    CU_ASSERT_EQUAL_FATAL(gr_stat_history(st, s, h), GR_OK);
}

static int
cell_of(const struct gr_stat_snap *s, const char *p, const char *m)
{
    unsigned i;

    for (i = 0; i < s->n_cells; i++)
        if (strcmp(s->cells[i].project, p) == 0 &&
            strcmp(s->cells[i].model, m) == 0)
            return (int)i;
    return -1;
}

static void
test_history_samples_every_cell(void)
{
    char err[256];
    struct gr_stat *st = gr_stat_open(rt.shm, err, sizeof(err));
    struct gr *g = gr_open(rt.shm, err, sizeof(err));
    struct gr_cost one = {1, 10, 0};
    struct gr_stat_snap s;
    struct gr_stat_hist h;
    struct gr_lease l;
    unsigned before, i, n_admitted = 0;
    int tries, c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    /* The first sample is taken on the router's first tick. */
    for (tries = 0; tries < 200; tries++) {
        take(st, &s, &h);
        if (h.n_samples >= 1)
            break;
        gr_stat_history_free(&h);
        gr_stat_free(&s);
        gr_test_sleep_ns(50 * MS);
    }
    CU_ASSERT_FATAL(h.n_samples >= 1);
    CU_ASSERT_EQUAL(h.n_cells, s.n_cells);
    CU_ASSERT_EQUAL(s.n_cells, 4);
    CU_ASSERT(h.period_s == 5.0);
    CU_ASSERT(h.wall_ms[0] > 0);
    before = h.n_samples;
    gr_stat_history_free(&h);
    gr_stat_free(&s);

    /* Eight calls admitted on model n: the next sample counts them. */
    for (i = 0; i < 8; i++)
        if (gr_reserve(g, "n", &one, 0, &l) == GR_OK)
            n_admitted++;
    CU_ASSERT_EQUAL(n_admitted, 8);
    for (tries = 0; tries < 400; tries++) {
        take(st, &s, &h);
        if (h.n_samples > before)
            break;
        gr_stat_history_free(&h);
        gr_stat_free(&s);
        gr_test_sleep_ns(50 * MS);
    }
    CU_ASSERT_FATAL(h.n_samples > before);
    {
        unsigned last = h.n_samples - 1;
        uint32_t used = 0, admitted = 0;
        int pa = cell_of(&s, "pa", "n"), pb = cell_of(&s, "pb", "n");

        CU_ASSERT_FATAL(pa >= 0 && pb >= 0);
        for (c = 0; c < 2; c++) {
            const struct gr_stat_hist_point *p =
                &h.points[(size_t)(c ? pb : pa) * h.n_samples + last];

            used += p->used[GR_DIM_RPM];
            admitted += p->admitted;
        }
        CU_ASSERT_EQUAL(used, 8);
        CU_ASSERT_EQUAL(admitted, 8);
        /* Oldest first, one period apart or more. */
        CU_ASSERT(h.wall_ms[last] > h.wall_ms[0]);
    }
    gr_stat_history_free(&h);
    gr_stat_free(&s);
    gr_close(g);
    gr_stat_close(st);
}

static void
test_history_of_another_router_is_not_shown(void)
{
    char err[256];
    struct gr_stat *st = gr_stat_open(rt.shm, err, sizeof(err));
    struct gr_stat_snap s;
    struct gr_stat_hist h;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL_FATAL(gr_stat_take(st, &s), GR_OK);
    s.router_pid += 1;      /* as if another router served the table */
    CU_ASSERT_EQUAL(gr_stat_history(st, &s, &h), GR_OK);
    CU_ASSERT_EQUAL(h.n_samples, 0);
    CU_ASSERT_PTR_NULL(h.points);
    gr_stat_history_free(&h);
    gr_stat_free(&s);
    gr_stat_close(st);
}

static void
test_ctl_send(void)
{
    struct gr_ctl_answer a;
    char want[64];

    snprintf(want, sizeof(want), "gemrouted %d", rt.pid);
    CU_ASSERT_EQUAL(gr_ctl_send(rt.shm, "ping", NULL, &a), 0);
    CU_ASSERT_STRING_EQUAL(a.text, want);
    /* Applied, with a label, and visible in the table at once. */
    CU_ASSERT_EQUAL(gr_ctl_send(rt.shm, "drain pb", "test:ctl#1", &a), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.text, "draining"));
    {
        char err[256];
        struct gr_stat *st = gr_stat_open(rt.shm, err, sizeof(err));
        struct gr_stat_snap s;
        unsigned i;

        CU_ASSERT_PTR_NOT_NULL_FATAL(st);
        CU_ASSERT_EQUAL_FATAL(gr_stat_take(st, &s), GR_OK);
        for (i = 0; i < s.n_projects; i++)
            if (strcmp(s.projects[i].name, "pb") == 0)
                CU_ASSERT_EQUAL(s.projects[i].op, GR_STAT_OP_DRAINING);
        gr_stat_free(&s);
        gr_stat_close(st);
    }
    CU_ASSERT_EQUAL(gr_ctl_send(rt.shm, "enable pb", NULL, &a), 0);
    /* Refused by the router: status 1 and its reason. */
    CU_ASSERT_EQUAL(gr_ctl_send(rt.shm, "drain nosuch", NULL, &a), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.text, "nosuch"));
    /* Refused before asking: status 2. */
    CU_ASSERT_EQUAL(gr_ctl_send(rt.shm, "drain pa\nenable pa", NULL, &a), 2);
    CU_ASSERT_EQUAL(gr_ctl_send(rt.shm, "drain pa", "bad label", &a), 2);
    CU_ASSERT_EQUAL(gr_ctl_send(rt.shm, "", NULL, &a), 2);
    CU_ASSERT_EQUAL(gr_ctl_send("/grtest-no-such-table", "ping", NULL, &a),
                    2);
    CU_ASSERT_PTR_NOT_NULL(strstr(a.text, "grtest-no-such-table"));
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"history: every cell sampled, calls counted",
         test_history_samples_every_cell},
        {"history: another router's is not shown",
         test_history_of_another_router_is_not_shown},
        {"gr_ctl_send: ok, refused, not asked", test_ctl_send},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"history", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_history", suites, 120);
}
