/*
 * test_router.c - what applying a config does to the table: projects
 * keep their slot and counts by name, removed projects drain and then
 * give their slot back with a new generation (a late report for the old
 * occupant changes nothing), limits and keys change in place, a
 * geometry change is refused, and a reload that runs out of memory
 * changes nothing at all (calloc is wrapped: -Wl,--wrap=calloc).
 */
#include "audit.h"
#include "clock.h"
#include "config.h"
#include "gemroute.h"
#include "health.h"
#include "reserve.h"
#include "router.h"
#include "testinproc.h"
#include "testlib.h"
#include "window.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char dir[64], shm[64];

/* calloc, as linked into this test: the fail_at-th call from arming on
 * returns NULL (0 = never). */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static int fail_at, calls;

void *
__wrap_calloc(size_t n, size_t size)
{
    if (fail_at > 0 && ++calls == fail_at)
        return NULL;
    return __real_calloc(n, size);
}
static struct gr_rtr rtr;
static uint64_t rng = 99;

static struct gr_cfg *
cfg_of(const char *body)
{
    return gr_test_cfg_load(dir, "router = { shm = \"%s\"; max_projects = 3; "
                            "max_models = 2; max_leases = 8; "
                            "window_ms = 60000; };\n%s", shm, body);
}

static int
apply(const char *body)
{
    struct gr_cfg *cfg = cfg_of(body);
    char err[512];
    int rc;

    if (cfg == NULL)
        return -1;
    rc = gr_rtr_apply(&rtr, cfg, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "apply: %s\n", err);
    gr_cfg_free(cfg);
    return rc;
}

static int
slot_of(const char *name)
{
    return gr_test_slot_of(&rtr, name);
}

static int
reserve(struct gr_shm_grant *g)
{
    struct gr_shm_ask a = {.model = 0, .cost = {1, 10, 0},
                           .now_ns = gr_shm_now_mono(), .today = 1,
                           .pid = (uint32_t)getpid(), .rng = &rng};

    return gr_shm_reserve(&rtr.t, &a, g);
}

static const char *two =
    "models = ( { name = \"m\"; rpm = 100; tpm = 1000; } );\n"
    "projects = ( { name = \"a\"; key = \"SECRET-of-a-0001\"; },\n"
    "             { name = \"b\"; key = \"SECRET-of-b-0002\"; } );\n";

static int
setup(void)
{
    struct gr_cfg *cfg;

    if (gr_test_names(dir, sizeof(dir), shm, sizeof(shm), "rtr") != 0)
        return -1;
    cfg = cfg_of(two);
    if (gr_test_rtr_open(&rtr, cfg) != 0)
        return -1;
    gr_cfg_free(cfg);
    return 0;
}

static int
teardown(void)
{
    return gr_test_rtr_end(&rtr, dir, shm);
}

static void
test_first_apply(void)
{
    int a = slot_of("a");
    struct gr_shm_cell *c;

    CU_ASSERT_FATAL(a >= 0);
    c = gr_shm_cell(&rtr.t, (uint32_t)a, 0);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_RPM), 95);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_TPM), 950);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_RPD), -1);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.hdr->n_choice), 2);
    CU_ASSERT_STRING_EQUAL(gr_shm_key(&rtr.t, (uint32_t)a, 0),
                           "SECRET-of-a-0001");
    CU_ASSERT_EQUAL(gr_shm_model_index(&rtr.t, "m"), 0);
    CU_ASSERT_EQUAL(gr_shm_model_index(&rtr.t, "other"), -1);
}

static void
test_reload_keeps_counts_and_changes_limits(void)
{
    int a = slot_of("a");
    struct gr_shm_cell *c = gr_shm_cell(&rtr.t, (uint32_t)a, 0);
    uint32_t gen = atomic_load(&rtr.t.projects[a].generation);
    int64_t now = gr_shm_now_mono();

    CU_ASSERT_EQUAL(gr_shm_window_admit(&rtr.t, c, GR_W_RPM, 7, 95, now), 0);
    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 200; },\n"
                          "  { name = \"n\"; rpm = 5; } );\n"
                          "projects = ( { name = \"b\"; key = "
                          "\"SECRET-key-b\"; },\n"
                          "  { name = \"a\"; key = \"SECRET-a-rotated\"; } "
                          ");\n"),
                    0);
    CU_ASSERT_EQUAL(slot_of("a"), a);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.projects[a].generation), gen);
    CU_ASSERT_EQUAL(gr_shm_window_used(&rtr.t, c, GR_W_RPM, now), 7);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_RPM), 190);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_TPM), -1);
    CU_ASSERT_STRING_EQUAL(gr_shm_key(&rtr.t, (uint32_t)a, 0),
                           "SECRET-a-rotated");
    /* A new model gets a cell in every project. */
    CU_ASSERT_EQUAL(gr_shm_model_index(&rtr.t, "n"), 1);
    CU_ASSERT_EQUAL(atomic_load(&gr_shm_cell(&rtr.t, (uint32_t)a, 1)
                                     ->limit[GR_D_RPM]), 4);
}

static void
test_removed_project_drains_then_frees(void)
{
    struct gr_shm_grant g;
    struct gr_shm_outcome o = {.cls = GR_OUT_MODEL, .status = 404,
                               .learned = {-1, -1, -1, -1, -1}};
    int b, i;
    uint32_t gen;

    CU_ASSERT_EQUAL(apply(two), 0);
    b = slot_of("b");
    CU_ASSERT_FATAL(b >= 0);
    gen = atomic_load(&rtr.t.projects[b].generation);
    /* Hold a lease on b, then remove b. */
    for (i = 0; i < 20; i++) {
        CU_ASSERT_FATAL(reserve(&g) == 0);
        if (g.slot == (uint32_t)b)
            break;
        gr_shm_settle(&rtr.t, g.lease, g.ticket, 0, NULL, gr_shm_now_mono());
    }
    CU_ASSERT_FATAL(g.slot == (uint32_t)b);
    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 100; } );\n"
                          "projects = ( { name = \"a\"; key = "
                          "\"SECRET-k-a\"; } );\n"),
                    0);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.projects[b].state), GR_PROJ_REMOVING);
    /* No new lease goes to b. */
    for (i = 0; i < 10; i++) {
        struct gr_shm_grant h;

        CU_ASSERT_FATAL(reserve(&h) == 0);
        CU_ASSERT_NOT_EQUAL(h.slot, (uint32_t)b);
        gr_shm_settle(&rtr.t, h.lease, h.ticket, 0, NULL, gr_shm_now_mono());
    }
    gr_rtr_tick(&rtr, gr_shm_now_mono());
    rtr.next_reap_ns = 0;
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.projects[b].state), GR_PROJ_REMOVING);
    gr_shm_settle(&rtr.t, g.lease, g.ticket, 0, NULL, gr_shm_now_mono());
    gr_rtr_tick(&rtr, gr_shm_now_mono());
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.projects[b].state), GR_PROJ_FREE);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.projects[b].generation), gen + 1);
    CU_ASSERT_EQUAL(gr_shm_key(&rtr.t, (uint32_t)b, 0)[0], '\0');
    /* A new project takes the slot; a late report for b is dropped. */
    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 100; } );\n"
                          "projects = ( { name = \"a\"; key = "
                          "\"SECRET-k-a\"; },\n"
                          "  { name = \"c\"; key = \"SECRET-k-c\"; },\n"
                          "  { name = \"d\"; key = \"SECRET-k-d\"; } );\n"), 0);
    CU_ASSERT(slot_of("c") == b || slot_of("d") == b);
    CU_ASSERT_EQUAL(gr_shm_report(&rtr.t, (uint32_t)b, 0, gen, &o,
                                  gr_shm_now_mono(), &rng), -ESTALE);
    CU_ASSERT_FALSE(atomic_load(&gr_shm_cell(&rtr.t, (uint32_t)b, 0)->health)
                    & GR_CELL_DISABLED_MODEL);
}

static void
test_geometry_change_refused(void)
{
    struct gr_cfg *cfg;
    char err[512];
    uint64_t gen = atomic_load(&rtr.t.hdr->config_generation);

    cfg = cfg_of(two);
    CU_ASSERT_FATAL(cfg != NULL);
    cfg->router.max_projects = 4;
    CU_ASSERT_EQUAL(gr_rtr_apply(&rtr, cfg, err, sizeof(err)), -EINVAL);
    CU_ASSERT(strstr(err, "needs a restart") != NULL);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.hdr->config_generation), gen);
    gr_cfg_free(cfg);
    /* A reload (a running config): the refusal names what changed. */
    rtr.cfg = cfg_of(two);
    cfg = cfg_of(two);
    CU_ASSERT_FATAL(rtr.cfg != NULL && cfg != NULL);
    cfg->router.window_ms = 1000;
    CU_ASSERT_EQUAL(gr_rtr_apply(&rtr, cfg, err, sizeof(err)), -EINVAL);
    CU_ASSERT(strstr(err, ": window_ms changed: that needs a restart") !=
              NULL);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.hdr->config_generation), gen);
    gr_cfg_free(cfg);
    gr_cfg_free(rtr.cfg);
    rtr.cfg = NULL;
    /* Too many projects for the free slots (all three are taken). */
    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 1; } );\n"
                          "projects = ( { name = \"x\"; key = "
                          "\"SECRET-k-x\"; } );\n"),
                    0);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.hdr->config_generation), gen + 1);
}

static void
test_new_project_waits_for_a_draining_slot(void)
{
    struct gr_shm_grant g;
    int x;

    /* The table is full (3 slots): x, y, z.  Hold a lease on x. */
    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 100; } );\n"
                          "projects = ( { name = \"x\"; key = "
                          "\"SECRET-k-x\"; },\n"
                          "  { name = \"y\"; key = \"SECRET-k-y\"; },\n"
                          "  { name = \"z\"; key = \"SECRET-k-z\"; } );\n"), 0);
    x = slot_of("x");
    CU_ASSERT_FATAL(x >= 0);
    do {
        CU_ASSERT_FATAL(reserve(&g) == 0);
        if (g.slot != (uint32_t)x)
            gr_shm_settle(&rtr.t, g.lease, g.ticket, 0, NULL,
                          gr_shm_now_mono());
    } while (g.slot != (uint32_t)x);
    /* Replace x by w: w waits until x's call ends. */
    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 100; } );\n"
                          "projects = ( { name = \"w\"; key = "
                          "\"SECRET-k-w\"; },\n"
                          "  { name = \"y\"; key = \"SECRET-k-y\"; },\n"
                          "  { name = \"z\"; key = \"SECRET-k-z\"; } );\n"), 0);
    CU_ASSERT_EQUAL(slot_of("w"), -1);
    CU_ASSERT_TRUE(rtr.pending);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.hdr->n_choice), 2);
    /* The router's next tick after the call ends gives w the slot. */
    rtr.cfg = cfg_of("models = ( { name = \"m\"; rpm = 100; } );\n"
                     "projects = ( { name = \"w\"; key = \"SECRET-k-w\"; },\n"
                     "  { name = \"y\"; key = \"SECRET-k-y\"; },\n"
                     "  { name = \"z\"; key = \"SECRET-k-z\"; } );\n");
    gr_shm_settle(&rtr.t, g.lease, g.ticket, 0, NULL, gr_shm_now_mono());
    rtr.next_reap_ns = 0;
    gr_rtr_tick(&rtr, gr_shm_now_mono());
    CU_ASSERT_EQUAL(slot_of("w"), x);
    CU_ASSERT_FALSE(rtr.pending);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.hdr->n_choice), 3);
    gr_cfg_free(rtr.cfg);
    rtr.cfg = NULL;
}

static void
test_repair_from_the_private_copy(void)
{
    struct gr_shm *t = &rtr.t;
    int a;
    unsigned fixed;

    CU_ASSERT_EQUAL(apply(two), 0);
    a = slot_of("a");
    CU_ASSERT_FATAL(a >= 0);
    /* Damage what the router owns: geometry, a seqlock, a name, a limit,
     * a key, the choice array, a slot state. */
    t->hdr->max_leases = 12345;
    atomic_store(&t->hdr->text_seq, 7);
    strcpy(t->projects[a].name, "evil");
    atomic_store(&gr_shm_cell(t, (uint32_t)a, 0)->limit[GR_D_RPM], 999999);
    strcpy(gr_shm_key(t, (uint32_t)a, 0), "SECRET-not-the-key");
    atomic_store(&t->choice[0], 77);
    atomic_store(&t->hdr->n_choice, 40);
    atomic_store(&t->projects[a].state, GR_PROJ_FREE);
    rtr.cfg = cfg_of(two);      /* the running config holds the keys */
    fixed = gr_rtr_repair(&rtr);
    CU_ASSERT_EQUAL(fixed, 7);  /* name and keys are one rewrite */
    CU_ASSERT_EQUAL(t->hdr->max_leases, 8);
    CU_ASSERT_EQUAL(atomic_load(&t->hdr->text_seq) & 1u, 0);
    CU_ASSERT_STRING_EQUAL(t->projects[a].name, "a");
    CU_ASSERT_EQUAL(atomic_load(&gr_shm_cell(t, (uint32_t)a, 0)
                                     ->limit[GR_D_RPM]), 95);
    CU_ASSERT_STRING_EQUAL(gr_shm_key(t, (uint32_t)a, 0),
                           "SECRET-of-a-0001");
    CU_ASSERT(atomic_load(&t->choice[0]) < t->max_projects);
    CU_ASSERT_EQUAL(atomic_load(&t->hdr->n_choice), 2);
    CU_ASSERT_EQUAL(atomic_load(&t->projects[a].state), GR_PROJ_ACTIVE);
    /* Nothing left to repair. */
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);
    gr_cfg_free(rtr.cfg);
    rtr.cfg = NULL;
}

static void
test_returning_project_keeps_its_counts(void)
{
    int64_t now = gr_shm_now_mono();
    struct gr_shm_cell *c;
    int x, y;

    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 100; } );\n"
                          "projects = ( { name = \"x\"; key = \"SECRET-x1\"; "
                          "},\n"
                          "  { name = \"y\"; key = \"SECRET-y1\"; } );\n"), 0);
    x = slot_of("x");
    CU_ASSERT_FATAL(x >= 0);
    c = gr_shm_cell(&rtr.t, (uint32_t)x, 0);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&rtr.t, c, GR_W_RPM, 40, 95, now), 0);
    /* x leaves (idle: its slot is freed at once), a newcomer arrives. */
    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 100; } );\n"
                          "projects = ( { name = \"y\"; key = \"SECRET-y1\"; "
                          "},\n"
                          "  { name = \"n\"; key = \"SECRET-n1\"; } );\n"), 0);
    CU_ASSERT_EQUAL(atomic_load(&rtr.t.projects[x].state), GR_PROJ_FREE);
    CU_ASSERT_NOT_EQUAL(slot_of("n"), x);   /* x's slot is kept for x */
    /* x comes back within the minute: Google still counts its 40. */
    CU_ASSERT_EQUAL(apply("models = ( { name = \"m\"; rpm = 100; } );\n"
                          "projects = ( { name = \"y\"; key = \"SECRET-y1\"; "
                          "},\n"
                          "  { name = \"n\"; key = \"SECRET-n1\"; },\n"
                          "  { name = \"x\"; key = \"SECRET-x1\"; } );\n"), 0);
    CU_ASSERT_EQUAL(slot_of("x"), x);
    CU_ASSERT_EQUAL(gr_shm_window_used(&rtr.t, c, GR_W_RPM, now), 40);
    y = slot_of("y");
    CU_ASSERT(y >= 0 && y != x);
}

/*
 * Start-up: the router writes the names while the choice array is still
 * hidden (it restores the state file next), then publishes.  A client
 * asking in between must hear "not ready yet", never "no such model".
 */
static void
test_client_waits_through_the_hidden_start(void)
{
    static struct gr_rtr r2;
    struct gr_cfg *cfg = cfg_of(two);
    char err[512];
    struct gr_cost one = {1, 10, 0};
    struct gr_lease l;
    struct gr *g;

    CU_ASSERT_FATAL(cfg != NULL);
    snprintf(cfg->router.shm, sizeof(cfg->router.shm), "/grtest-rtr2-%d",
             (int)getpid());
    shm_unlink(cfg->router.shm);
    CU_ASSERT_FATAL(gr_rtr_open_segment(&r2, cfg, err, sizeof(err)) == 0);
    r2.hide_choice = true;
    CU_ASSERT_FATAL(gr_rtr_apply(&r2, cfg, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(atomic_load(&r2.t.hdr->config_generation), 0);
    CU_ASSERT(gr_shm_model_index(&r2.t, "m") >= 0);  /* names are there */

    g = gr_open(cfg->router.shm, err, sizeof(err));
    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &one, 0, &l), GR_ENOROOM);
    CU_ASSERT(strstr(gr_errstr(g), "not applied its config") != NULL);
    CU_ASSERT_EQUAL(gr_reserve(g, "nope", &one, 0, &l), GR_ENOROOM);

    r2.hide_choice = false;
    CU_ASSERT_FATAL(gr_rtr_apply(&r2, cfg, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &one, 0, &l), GR_OK);
    gr_commit(g, &l, NULL);
    CU_ASSERT_EQUAL(gr_reserve(g, "nope", &one, 0, &l), GR_ENOMODEL);
    gr_close(g);
    gr_shm_detach(&r2.t);
    gr_rtr_mirror_free(&r2);
    shm_unlink(cfg->router.shm);
    gr_cfg_free(cfg);
}

/* A reload that runs out of memory at any allocation leaves the table as
 * it was: not one header string, slot, limit or choice entry written. */
static void
test_out_of_memory_applies_nothing(void)
{
    static const char *three =
        "models = ( { name = \"m\"; rpm = 50; tpm = 500; } );\n"
        "projects = ( { name = \"a\"; key = \"SECRET-of-a-0001\"; },\n"
        "             { name = \"c\"; key = \"SECRET-of-c-0003\"; } );\n";
    size_t size = rtr.t.size;
    unsigned char *before = malloc(size);
    struct gr_cfg *cfg;
    char err[512];
    int n, rc = 0;

    CU_ASSERT_FATAL(before != NULL);
    for (n = 1; n < 16; n++) {
        cfg = cfg_of(three);
        CU_ASSERT_FATAL(cfg != NULL);
        memcpy(before, rtr.t.base, size);
        calls = 0;
        fail_at = n;
        rc = gr_rtr_apply(&rtr, cfg, err, sizeof(err));
        fail_at = 0;
        gr_cfg_free(cfg);
        if (calls < n) {
            if (rc != 0)
                fprintf(stderr, "apply: %s\n", err);
            break;      /* apply made fewer than n allocations */
        }
        CU_ASSERT_EQUAL(rc, -ENOMEM);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "out of memory"));
        CU_ASSERT(memcmp(before, rtr.t.base, size) == 0);
    }
    CU_ASSERT(n > 1);           /* at least one allocation was failed */
    CU_ASSERT_EQUAL(rc, 0);     /* and with none failing it applies */
    CU_ASSERT(slot_of("c") >= 0);
    CU_ASSERT(memcmp(before, rtr.t.base, size) != 0);
    free(before);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"first apply", test_first_apply},
        {"repair from the private copy", test_repair_from_the_private_copy},
        {"reload keeps counts, changes limits",
         test_reload_keeps_counts_and_changes_limits},
        {"removed project drains, then frees",
         test_removed_project_drains_then_frees},
        {"geometry change refused", test_geometry_change_refused},
        {"new project waits for a draining slot",
         test_new_project_waits_for_a_draining_slot},
        {"a returning project keeps its counts",
         test_returning_project_keeps_its_counts},
        {"a client waits through the hidden start",
         test_client_waits_through_the_hidden_start},
        {"out of memory in a reload applies nothing",
         test_out_of_memory_applies_nothing},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"router", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_router", suites, 60);
}
