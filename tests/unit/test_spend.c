/*
 * test_spend.c - spend caps: the price arithmetic (worst case, real
 * cost, the long-prompt tier), the day and month counters in the table
 * (reserve the worst case, settle the real cost, refuse at a cap, the
 * pool's cap, the day and month resets, a reap that gives back or
 * keeps), and the pricing and spend sections of the config (the shipped
 * pricing file loads; bad values are FILE:LINE).  Time and days are
 * passed in explicitly: nothing sleeps.
 */
#include "clock.h"
#include "config.h"
#include "health.h"
#include "pricing.h"
#include "reserve.h"
#include "spend.h"
#include "table.h"
#include "testlib.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define W_NS (INT64_C(60) * 1000000000)
#define T0 (INT64_C(1000) * W_NS)
#define DAY 20000                   /* 2024-10-04, a Friday */

static char name[64];
static struct gr_shm tab;
static char dir[128];

/* gemini-2.5-pro's prices as the shipped file gives them. */
static const struct gr_shm_price pro = {
    .input = 1250000, .output = 10000000, .cached = 125000,
    .thinking = 10000000, .input_long = 2500000, .output_long = 15000000,
    .cached_long = 250000, .thinking_long = 15000000, .long_above = 200000,
    .max_output = 65536, .flags = GR_PRICE_SET,
};

static int
setup(void)
{
    char err[256];

    snprintf(name, sizeof(name), "/grtest-spend-%d", (int)getpid());
    snprintf(dir, sizeof(dir), "/tmp/grtest-spend-%d", (int)getpid());
    mkdir(dir, 0700);
    shm_unlink(name);
    return gr_shm_router_create(name, 4, 2, 16, W_NS, 0600, (gid_t)-1,
                                &tab, err, sizeof(err)) == 0 ? 0 : -1;
}

static int
teardown(void)
{
    char cmd[256];

    gr_shm_detach(&tab);
    shm_unlink(name);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A table of n projects serving model 0 with room on every window, and
 * no cap anywhere. */
static void
fresh(uint32_t n)
{
    uint32_t s;

    memset(tab.projects, 0, sizeof(*tab.projects) * tab.max_projects);
    memset(tab.cells, 0, sizeof(*tab.cells) * tab.max_projects *
                             tab.max_models);
    memset(tab.leases, 0, sizeof(*tab.leases) * tab.max_leases);
    memset(tab.spend, 0, sizeof(*tab.spend) * (tab.max_projects + 1));
    atomic_store(&tab.hdr->n_choice, 0);
    strcpy(tab.models[0].name, "m");
    atomic_store(&tab.hdr->n_models, 1);
    gr_shm_price_publish(&tab, &pro, 1);
    for (s = 0; s < n; s++) {
        struct gr_shm_cell *c = gr_shm_cell(&tab, s, 0);
        unsigned d;

        snprintf(tab.projects[s].name, GR_SHM_NAME_MAX, "p%u", s);
        tab.projects[s].n_keys = 1;
        for (d = 0; d < GR_NDIM; d++) {
            atomic_store(&c->limit[d], GR_LIMIT_NONE);
            gr_shm_set_learned(&tab, c, d, -1);
        }
        atomic_store(&tab.projects[s].state, GR_PROJ_ACTIVE);
        atomic_store(&tab.choice[s], s);
    }
    atomic_store(&tab.hdr->n_choice, n);
}

static int
reserve(int32_t today, int64_t spend, struct gr_shm_grant *g)
{
    static uint64_t rng = 7;
    struct gr_shm_ask a = {.model = 0, .cost = {1, 1000, 0}, .now_ns = T0,
                           .today = today, .pid = (uint32_t)getpid(),
                           .rng = &rng, .spend = spend};

    return gr_shm_reserve(&tab, &a, g);
}

static int64_t
day_used(uint32_t slot, int32_t day)
{
    return gr_shm_spend_used(&tab.spend[slot].day, day);
}

static int64_t
month_used(uint32_t slot, int32_t day)
{
    return gr_shm_spend_used(&tab.spend[slot].month,
                             gr_shm_month_of_day(day));
}

static void
test_month_of_day(void)
{
    CU_ASSERT_EQUAL(gr_shm_month_of_day(0), 0);              /* 1970-01 */
    CU_ASSERT_EQUAL(gr_shm_month_of_day(30), 0);             /* 01-31 */
    CU_ASSERT_EQUAL(gr_shm_month_of_day(31), 1);             /* 02-01 */
    CU_ASSERT_EQUAL(gr_shm_month_of_day(
        (int32_t)gr_shm_days_from_civil(2025, 12, 31)), 55 * 12 + 11);
    CU_ASSERT_EQUAL(gr_shm_month_of_day(
        (int32_t)gr_shm_days_from_civil(2026, 1, 1)), 56 * 12);
    CU_ASSERT_EQUAL(gr_shm_month_of_day(
        (int32_t)gr_shm_days_from_civil(2024, 2, 29)), 54 * 12 + 1);
    CU_ASSERT_EQUAL(gr_shm_month_of_day(
        (int32_t)gr_shm_days_from_civil(2024, 3, 1)), 54 * 12 + 2);
}

static void
test_prices(void)
{
    struct gr_shm_spend_use u = {1000, 400, 100, 50};
    struct gr_shm_spend_use big = {300000, 0, 1000, 0};
    struct gr_shm_spend_use none = {-1, -1, -1, -1};

    /* 1,000 input at $1.25/M and 2,000 output at $10/M. */
    CU_ASSERT_EQUAL(gr_shm_spend_worst(&pro, 1000, 2000), 1250 + 20000);
    /* No maxOutputTokens: the model's 65,536. */
    CU_ASSERT_EQUAL(gr_shm_spend_worst(&pro, 1000, -1), 1250 + 655360);
    /* Above 200k prompt tokens the whole call is at the long prices. */
    CU_ASSERT_EQUAL(gr_shm_spend_worst(&pro, 300000, 2000),
                    750000 + 30000);
    /* Rounded up: one token at $1.25/M is 2 micro-USD, never 1. */
    CU_ASSERT_EQUAL(gr_shm_spend_worst(&pro, 1, 0) >= 2, 1);
    /* Real: 600 fresh input, 400 cached at $0.125, 100 output and 50
     * thinking tokens at $10. */
    CU_ASSERT_EQUAL(gr_shm_spend_actual(&pro, &u), 750 + 50 + 1000 + 500);
    CU_ASSERT_EQUAL(gr_shm_spend_actual(&pro, &big), 750000 + 15000);
    CU_ASSERT_EQUAL(gr_shm_spend_actual(&pro, &none), 0);
}

/* The reservation is the worst case; the settle replaces it by the real
 * cost, on the project and on the pool; a call without spend writes
 * nothing. */
static void
test_reserve_settle(void)
{
    struct gr_shm_grant g;
    int64_t act[GR_NWINDOWS] = {-1, -1, -1};
    uint32_t pool = tab.max_projects;

    fresh(1);
    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 21250, &g), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY), 21250);
    CU_ASSERT_EQUAL(month_used(0, DAY), 21250);
    CU_ASSERT_EQUAL(day_used(pool, DAY), 21250);
    CU_ASSERT(atomic_load(&tab.leases[g.lease].held) & GR_HELD_SPEND);
    CU_ASSERT_EQUAL(gr_shm_settle_spend(&tab, g.lease, g.ticket, T0, act,
                                        T0, 2300), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY), 2300);
    CU_ASSERT_EQUAL(month_used(0, DAY), 2300);
    CU_ASSERT_EQUAL(day_used(pool, DAY), 2300);
    CU_ASSERT_EQUAL(month_used(pool, DAY), 2300);

    /* More than the worst case (an input estimate too low): counted. */
    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 1000, &g), 0);
    CU_ASSERT_EQUAL(gr_shm_settle_spend(&tab, g.lease, g.ticket, T0, act,
                                        T0, 1500), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY), 3800);

    /* gr_shm_settle() (no usage known) keeps the worst case. */
    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 1000, &g), 0);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g.lease, g.ticket, T0, act, T0), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY), 4800);

    /* No spend asked (no cap configured): no counter moves. */
    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 0, &g), 0);
    CU_ASSERT_FALSE(atomic_load(&tab.leases[g.lease].held) &
                    (GR_HELD_SPEND | GR_HELD_SPEND_POOL));
    CU_ASSERT_EQUAL(gr_shm_settle_spend(&tab, g.lease, g.ticket, T0, act,
                                        T0, 99999), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY), 4800);
}

/* A project at its day cap refuses; the refusal names the project and
 * the day; nothing stays counted; the next day admits again. */
static void
test_refuse_at_cap(void)
{
    struct gr_shm_grant g1, g2;
    int64_t act[GR_NWINDOWS] = {-1, -1, -1};

    fresh(1);
    atomic_store(&tab.spend[0].cap_day, 30000);
    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 21250, &g1), 0);
    CU_ASSERT_EQUAL(reserve(DAY, 21250, &g2), -EDQUOT);
    CU_ASSERT_EQUAL(g2.spend.slot, 0);
    CU_ASSERT_EQUAL(g2.spend.which, 1);
    CU_ASSERT_EQUAL(day_used(0, DAY), 21250);
    CU_ASSERT_EQUAL(month_used(0, DAY), 21250);     /* rolled back */
    CU_ASSERT_EQUAL(atomic_load(&tab.spend[0].refused), 1);
    /* What fits still fits. */
    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 8750, &g2), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY), 30000);
    /* The settle gives back what was not spent: room again. */
    CU_ASSERT_EQUAL(gr_shm_settle_spend(&tab, g1.lease, g1.ticket, T0, act,
                                        T0, 1250), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY), 10000);
    CU_ASSERT_EQUAL(reserve(DAY, 20000, &g1), 0);
    CU_ASSERT_EQUAL(reserve(DAY, 1, &g1), -EDQUOT);
    /* The Pacific day after: the day counter starts from nothing. */
    CU_ASSERT_EQUAL(reserve(DAY + 1, 20000, &g1), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY + 1), 20000);
    CU_ASSERT_EQUAL(day_used(0, DAY), 0);   /* the old day reads 0 */
    /* A settle of a lease of the day before leaves the new day alone. */
    CU_ASSERT_EQUAL(gr_shm_settle_spend(&tab, g2.lease, g2.ticket, T0, act,
                                        T0, 0), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY + 1), 20000);
}

/* The month cap, and its reset on the 1st (Pacific). */
static void
test_month_cap(void)
{
    struct gr_shm_grant g;
    int32_t last = (int32_t)gr_shm_days_from_civil(2025, 12, 31);

    fresh(1);
    atomic_store(&tab.spend[0].cap_month, 50000);
    CU_ASSERT_EQUAL(reserve(last - 1, 30000, &g), 0);
    CU_ASSERT_EQUAL(reserve(last, 30000, &g), -EDQUOT);
    CU_ASSERT_EQUAL(g.spend.which, 2);
    CU_ASSERT_EQUAL(day_used(0, last), 0);  /* the day's add undone */
    CU_ASSERT_EQUAL(reserve(last + 1, 30000, &g), 0);    /* 2026-01-01 */
    CU_ASSERT_EQUAL(month_used(0, last + 1), 30000);
}

/* Another project with room takes the call; the pool's cap refuses
 * whichever project is chosen; a reload that raises a cap lets calls
 * through at once. */
static void
test_other_project_and_pool(void)
{
    struct gr_shm_grant g;
    uint32_t pool = tab.max_projects;
    int i;

    fresh(2);
    atomic_store(&tab.spend[0].cap_day, 1000);
    for (i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL_FATAL(reserve(DAY, 5000, &g), 0);
        CU_ASSERT_EQUAL(g.slot, 1);
    }
    CU_ASSERT_EQUAL(day_used(1, DAY), 40000);
    CU_ASSERT_EQUAL(day_used(0, DAY), 0);
    atomic_store(&tab.spend[pool].cap_day, 42000);
    CU_ASSERT_EQUAL(reserve(DAY, 5000, &g), -EDQUOT);
    CU_ASSERT_EQUAL(g.spend.slot, (int32_t)pool);
    CU_ASSERT_EQUAL(atomic_load(&tab.spend[pool].refused), 1);
    CU_ASSERT_EQUAL(day_used(1, DAY), 40000);   /* project's add undone */
    CU_ASSERT_EQUAL(day_used(pool, DAY), 40000);
    atomic_store(&tab.spend[pool].cap_day, 0);  /* a reload lifts it */
    CU_ASSERT_EQUAL(reserve(DAY, 5000, &g), 0);
}

/*
 * A project shut by its cap while another only waits for its minute
 * window: the call waits for that room (-EAGAIN with a time), it is not
 * refused; once no other project expects room, it is refused.
 */
static void
test_wait_for_room_elsewhere(void)
{
    struct gr_shm_grant g;
    struct gr_shm_cell *c1;
    int64_t act[GR_NWINDOWS] = {-1, -1, -1};

    fresh(2);
    c1 = gr_shm_cell(&tab, 1, 0);
    atomic_store(&c1->limit[GR_D_RPM], gr_shm_limit_pack(1));
    atomic_store(&tab.spend[0].cap_day, 1000);
    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 5000, &g), 0);  /* p1's one call */
    CU_ASSERT_EQUAL(g.slot, 1);
    CU_ASSERT_EQUAL(gr_shm_settle_spend(&tab, g.lease, g.ticket, T0, act,
                                        T0, 10), 0);
    CU_ASSERT_EQUAL(reserve(DAY, 5000, &g), -EAGAIN);
    CU_ASSERT(g.retry_at_ns > T0);
    CU_ASSERT_EQUAL(atomic_load(&tab.spend[0].refused), 0);
    /* p1 taken out of the pool: nothing expects room any more. */
    atomic_store(&tab.projects[1].health, GR_PROJ_OP_DISABLED);
    CU_ASSERT_EQUAL(reserve(DAY, 5000, &g), -EDQUOT);
    CU_ASSERT_EQUAL(g.spend.slot, 0);
}

/*
 * A reaped lease: one in flight keeps its worst case (the call may have
 * been billed up to it); one still being admitted (INTENT: no call was
 * sent) gives its reservation back.
 */
static void
test_reap(void)
{
    struct gr_shm_grant g;
    uint64_t s;
    uint32_t pool = tab.max_projects;

    fresh(1);
    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 7000, &g), 0);
    s = atomic_load(&tab.leases[g.lease].state);
    CU_ASSERT_FALSE(gr_shm_router_reap(&tab, g.lease, s, T0));
    CU_ASSERT_EQUAL(day_used(0, DAY), 7000);
    CU_ASSERT_EQUAL(day_used(pool, DAY), 7000);
    CU_ASSERT_EQUAL(atomic_load(&tab.leases[g.lease].held), 0);

    CU_ASSERT_EQUAL_FATAL(reserve(DAY, 3000, &g), 0);
    CU_ASSERT_EQUAL(day_used(0, DAY), 10000);
    /* As if its owner died before the reservation returned. */
    s = (atomic_load(&tab.leases[g.lease].state) & ~UINT64_C(0xff)) |
        GR_LEASE_INTENT;
    atomic_store(&tab.leases[g.lease].state, s);
    CU_ASSERT_TRUE(gr_shm_router_reap(&tab, g.lease, s, T0));
    CU_ASSERT_EQUAL(day_used(0, DAY), 7000);
    CU_ASSERT_EQUAL(month_used(0, DAY), 7000);
    CU_ASSERT_EQUAL(day_used(pool, DAY), 7000);
    CU_ASSERT_EQUAL(atomic_load(&tab.leases[g.lease].held), 0);
}

/*
 * Threads over one mapping (the CAS logic is the same between processes):
 * each reserves random amounts against one cap and settles each call at
 * a random real cost up to its reservation; a sampler reads the day
 * counter meanwhile.  The counter never passes the cap, and at the end
 * it holds exactly the sum of the real costs of the calls admitted.
 */
#define STRESS_THREADS 4
#define STRESS_CALLS 20000
#define STRESS_CAP 2000000

struct stress_arg {
    int64_t settled;            /* sum of real costs of admitted calls */
    unsigned admitted, refused;
    uint64_t rng;
};

static _Atomic int stress_done;

static void *
stress_worker(void *p)
{
    struct stress_arg *sa = p;
    int64_t act[GR_NWINDOWS] = {-1, -1, -1};
    int i;

    for (i = 0; i < STRESS_CALLS; i++) {
        struct gr_shm_grant g;
        struct gr_shm_ask a = {.model = 0, .cost = {1, 10, 0},
                               .now_ns = T0, .today = DAY,
                               .pid = (uint32_t)getpid(), .rng = &sa->rng};
        int64_t real;
        int rc;

        a.spend = 1 + (int64_t)(gr_test_rand(&sa->rng) % 5000);
        rc = gr_shm_reserve(&tab, &a, &g);
        if (rc == -EDQUOT) {
            sa->refused++;
            continue;
        }
        if (rc != 0)
            continue;       /* a lease slot race: not a spend matter */
        real = (int64_t)(gr_test_rand(&sa->rng) % (uint64_t)(a.spend + 1));
        if (gr_shm_settle_spend(&tab, g.lease, g.ticket, T0, act, T0,
                                real) == 0) {
            sa->settled += real;
            sa->admitted++;
        }
    }
    return NULL;
}

static void *
stress_sampler(void *p)
{
    int64_t *most = p;

    while (!atomic_load(&stress_done)) {
        int64_t u = day_used(0, DAY);

        if (u > *most)
            *most = u;
    }
    return NULL;
}

static void
test_threads_never_pass_cap(void)
{
    pthread_t th[STRESS_THREADS], sampler;
    struct stress_arg sa[STRESS_THREADS];
    int64_t most = 0, settled = 0;
    unsigned refused = 0, admitted = 0;
    int i;

    fresh(1);
    atomic_store(&tab.spend[0].cap_day, STRESS_CAP);
    atomic_store(&stress_done, 0);
    CU_ASSERT_FATAL(pthread_create(&sampler, NULL, stress_sampler,
                                   &most) == 0);
    for (i = 0; i < STRESS_THREADS; i++) {
        memset(&sa[i], 0, sizeof(sa[i]));
        sa[i].rng = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1);
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, stress_worker,
                                       &sa[i]) == 0);
    }
    for (i = 0; i < STRESS_THREADS; i++) {
        pthread_join(th[i], NULL);
        settled += sa[i].settled;
        refused += sa[i].refused;
        admitted += sa[i].admitted;
    }
    atomic_store(&stress_done, 1);
    pthread_join(sampler, NULL);
    CU_ASSERT(most <= STRESS_CAP);
    CU_ASSERT_EQUAL(day_used(0, DAY), settled);
    CU_ASSERT_EQUAL(month_used(0, DAY), settled);
    CU_ASSERT_EQUAL(day_used(tab.max_projects, DAY), settled);
    /* The cap was reached: the test exercised refusals, not only room. */
    CU_ASSERT(refused > 0);
    CU_ASSERT(admitted > 0);
    CU_ASSERT_EQUAL(atomic_load(&tab.spend[0].refused), refused);
}

/* ---- the config ------------------------------------------------------ */

static const char *
put(const char *file, const char *text)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
    return path;
}

static bool
has_error(const struct gr_cfg_errors *e, const char *want)
{
    unsigned i;

    for (i = 0; i < e->n; i++)
        if (strstr(e->lines[i], want) != NULL)
            return true;
    return false;
}

/* The shipped pricing file loads with the shipped tiers; its numbers
 * come out in micro-USD; caps need a price for every model, and the
 * shipped file leaves the embedding model out on purpose. */
static void
test_shipped_pricing(void)
{
    char *tiers = gr_test_read("examples/tiers-2025.conf", NULL);
    char *prices = gr_test_read("examples/pricing-2025.conf", NULL);
    const struct gr_cfg_spend *sp;
    struct gr_cfg_errors errs = {0, NULL};
    struct gr_cfg *cfg = NULL;
    const char *path;
    int i;

    CU_ASSERT_FATAL(tiers != NULL && prices != NULL);
    put("tiers-2025.conf", tiers);
    put("pricing-2025.conf", prices);
    path = put("a.conf",
               "@include \"tiers-2025.conf\"\n"
               "@include \"pricing-2025.conf\"\n"
               "projects = ( { name = \"p1\"; key = \"SECRET-a\"; } );\n");
    CU_ASSERT_EQUAL_FATAL(gr_cfg_load(path, &cfg, &errs), 0);
    sp = gr_cfg_spend(cfg);
    CU_ASSERT_FATAL(sp != NULL);
    CU_ASSERT_TRUE(sp->priced);
    CU_ASSERT_FALSE(sp->capped);
    CU_ASSERT_EQUAL(sp->batch_ppm, 500000);
    i = gr_cfg_model_index(cfg, "gemini-2.5-pro");
    CU_ASSERT_FATAL(i >= 0);
    CU_ASSERT_TRUE(sp->prices[i].set);
    CU_ASSERT_EQUAL(sp->prices[i].input, 1250000);
    CU_ASSERT_EQUAL(sp->prices[i].output, 10000000);
    CU_ASSERT_EQUAL(sp->prices[i].thinking, 10000000);  /* as output */
    CU_ASSERT_EQUAL(sp->prices[i].cached, 1250000);     /* as input */
    CU_ASSERT_EQUAL(sp->prices[i].long_above, 200000);
    CU_ASSERT_EQUAL(sp->prices[i].input_long, 2500000);
    CU_ASSERT_EQUAL(sp->prices[i].output_long, 15000000);
    CU_ASSERT_EQUAL(sp->prices[i].thinking_long, 15000000);
    i = gr_cfg_model_index(cfg, "gemini-2.5-flash");
    CU_ASSERT_FATAL(i >= 0);
    CU_ASSERT_EQUAL(sp->prices[i].input, 300000);
    CU_ASSERT_EQUAL(sp->prices[i].input_long, 300000);  /* one tier */
    i = gr_cfg_model_index(cfg, "gemini-embedding-001");
    CU_ASSERT_FATAL(i >= 0);
    CU_ASSERT_FALSE(sp->prices[i].set);
    gr_cfg_free(cfg);
    gr_cfg_errors_free(&errs);

    /* With caps: the unpriced model is named, at the spend section. */
    path = put("b.conf",
               "@include \"tiers-2025.conf\"\n"
               "@include \"pricing-2025.conf\"\n"
               "projects = ( { name = \"p1\"; key = \"SECRET-b\"; } );\n"
               "spend = { day = 10.0; };\n");
    CU_ASSERT_EQUAL(gr_cfg_load(path, &cfg, &errs), -EINVAL);
    CU_ASSERT_EQUAL(errs.n, 1);
    CU_ASSERT_TRUE(has_error(&errs, "b.conf:4: spend caps need a price "
                             "for every model: 'gemini-embedding-001'"));
    gr_cfg_errors_free(&errs);
    free(tiers);
    free(prices);
}

/* Caps per project and for the pool, in micro-USD; a project's own
 * entry overrides the default. */
static void
test_spend_section(void)
{
    struct gr_cfg_errors errs = {0, NULL};
    struct gr_cfg *cfg = NULL;
    const struct gr_cfg_spend *sp;
    const char *path = put("c.conf",
        "models = ( { name = \"m1\"; rpm = 10; }, { name = \"m2\"; } );\n"
        "projects = ( { name = \"p1\"; key = \"SECRET-c1\"; },\n"
        "             { name = \"p2\"; key = \"SECRET-c2\"; } );\n"
        "pricing = { models = (\n"
        "  { name = \"m1\"; input = 1; output = 2; },\n"
        "  { name = \"m2\"; input = 0.5; output = 4; max_output = 100; } );\n"
        "};\n"
        "spend = { day = 100; month = 2000.5; project_day = 20.25;\n"
        "  projects = ( { name = \"p2\"; day = 5; month = 0; } ); };\n");

    CU_ASSERT_EQUAL_FATAL(gr_cfg_load(path, &cfg, &errs), 0);
    sp = gr_cfg_spend(cfg);
    CU_ASSERT_TRUE(sp->capped);
    CU_ASSERT_EQUAL(sp->pool_day, 100000000);
    CU_ASSERT_EQUAL(sp->pool_month, 2000500000);
    CU_ASSERT_EQUAL(sp->project_day[0], 20250000);
    CU_ASSERT_EQUAL(sp->project_month[0], 0);
    CU_ASSERT_EQUAL(sp->project_day[1], 5000000);
    CU_ASSERT_EQUAL(sp->project_month[1], 1);   /* $0: nothing fits */
    CU_ASSERT_EQUAL(sp->prices[1].max_output, 100);
    CU_ASSERT_EQUAL(sp->prices[0].max_output, 65536);
    gr_cfg_free(cfg);
    gr_cfg_errors_free(&errs);

    /* A pool cap of $0 is 1 micro-USD as well; an absent cap is none;
     * the pricing group's scalars; explicit long-tier prices. */
    path = put("c2.conf",
        "models = ( { name = \"m1\"; rpm = 10; } );\n"
        "projects = ( { name = \"p1\"; key = \"SECRET-c3\"; } );\n"
        "pricing = { source = \"https://example.test/p\";\n"
        "  date = \"2025-12-01\"; batch_discount = 0.25; models = (\n"
        "  { name = \"m1\"; input = 1; output = 2; cached = 0.1;\n"
        "    thinking = 3; long_above = 1000; input_long = 4;\n"
        "    output_long = 5; cached_long = 0.2; thinking_long = 6;\n"
        "    max_output = 0; } );\n"
        "};\n"
        "spend = { day = 0; project_month = 0.0; };\n");
    CU_ASSERT_EQUAL_FATAL(gr_cfg_load(path, &cfg, &errs), 0);
    sp = gr_cfg_spend(cfg);
    CU_ASSERT_TRUE(sp->capped);
    CU_ASSERT_STRING_EQUAL(sp->source, "https://example.test/p");
    CU_ASSERT_STRING_EQUAL(sp->date, "2025-12-01");
    CU_ASSERT_EQUAL(sp->batch_ppm, 250000);
    CU_ASSERT_EQUAL(sp->pool_day, 1);
    CU_ASSERT_EQUAL(sp->pool_month, 0);
    CU_ASSERT_EQUAL(sp->project_day[0], 0);
    CU_ASSERT_EQUAL(sp->project_month[0], 1);
    CU_ASSERT_EQUAL(sp->prices[0].input, 1000000);
    CU_ASSERT_EQUAL(sp->prices[0].output, 2000000);
    CU_ASSERT_EQUAL(sp->prices[0].cached, 100000);
    CU_ASSERT_EQUAL(sp->prices[0].thinking, 3000000);
    CU_ASSERT_EQUAL(sp->prices[0].long_above, 1000);
    CU_ASSERT_EQUAL(sp->prices[0].input_long, 4000000);
    CU_ASSERT_EQUAL(sp->prices[0].output_long, 5000000);
    CU_ASSERT_EQUAL(sp->prices[0].cached_long, 200000);
    CU_ASSERT_EQUAL(sp->prices[0].thinking_long, 6000000);
    CU_ASSERT_EQUAL(sp->prices[0].max_output, 0);
    gr_cfg_free(cfg);
    gr_cfg_errors_free(&errs);
}

/* Bad input, each error FILE:LINE. */
static void
test_bad(void)
{
    struct gr_cfg_errors errs = {0, NULL};
    struct gr_cfg *cfg = NULL;
    const char *path = put("d.conf",
        "models = ( { name = \"m1\"; rpm = 10; } );\n"
        "projects = ( { name = \"p1\"; key = \"SECRET-d\"; } );\n"
        "pricing = { colour = 1; models = (\n"
        "  { name = \"m1\"; input = -1; output = 2; },\n"
        "  { name = \"m1\"; input = 1; output = 2; },\n"
        "  { name = \"nosuch\"; input = 1; output = 2; },\n"
        "  { name = \"m1x\"; output = \"two\"; },\n"
        "  { name = \"m1\"; input = 5000; output = 1; } ); };\n"
        "spend = { day = -3; hourly = 1;\n"
        "  projects = ( { name = \"p9\"; day = 1; } ); };\n");

    CU_ASSERT_EQUAL(gr_cfg_load(path, &cfg, &errs), -EINVAL);
    CU_ASSERT_PTR_NULL(cfg);
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:3: unknown key 'colour' in "
                             "pricing"));
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:4: input in the price of 'm1' "
                             "must be between 0 and 1000 (found -1)"));
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:5: model 'm1' is priced twice "
                             "(first at line 4)"));
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:6: pricing names model "
                             "'nosuch', which is not in 'models'"));
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:7: pricing names model 'm1x'"));
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:8: model 'm1' is priced "
                             "twice"));
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:9: spend.day must be between "
                             "0 and 10000000 (found -3)"));
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:9: unknown key 'hourly' in "
                             "spend"));
    CU_ASSERT_TRUE(has_error(&errs, "d.conf:10: spend.projects names "
                             "project 'p9', which is not in 'projects'"));
    gr_cfg_errors_free(&errs);

    /* Caps without any price. */
    path = put("e.conf",
        "models = ( { name = \"m1\"; rpm = 10; } );\n"
        "projects = ( { name = \"p1\"; key = \"SECRET-e\"; } );\n"
        "spend = { project_month = 10; };\n");
    CU_ASSERT_EQUAL(gr_cfg_load(path, &cfg, &errs), -EINVAL);
    CU_ASSERT_TRUE(has_error(&errs, "e.conf:3: spend caps need a pricing "
                             "section"));
    gr_cfg_errors_free(&errs);

    /* A price above $1,000 per 1M tokens is a typo. */
    path = put("f.conf",
        "models = ( { name = \"m1\"; rpm = 10; } );\n"
        "projects = ( { name = \"p1\"; key = \"SECRET-f\"; } );\n"
        "pricing = { models = ( { name = \"m1\"; input = 1;\n"
        "  output = 1500; } ); };\n");
    CU_ASSERT_EQUAL(gr_cfg_load(path, &cfg, &errs), -EINVAL);
    CU_ASSERT_TRUE(has_error(&errs, "f.conf:4: output in the price of "
                             "'m1' must be between 0 and 1000 (found "
                             "1500)"));
    gr_cfg_errors_free(&errs);

    /* A pricing section without its list; a cap above $10M. */
    path = put("g.conf",
        "models = ( { name = \"m1\"; rpm = 10; } );\n"
        "projects = ( { name = \"p1\"; key = \"SECRET-g\"; } );\n"
        "pricing = { date = \"2025-12-01\"; };\n"
        "spend = { project_day = 20000000; };\n");
    CU_ASSERT_EQUAL(gr_cfg_load(path, &cfg, &errs), -EINVAL);
    CU_ASSERT_EQUAL(errs.n, 2);
    CU_ASSERT_TRUE(has_error(&errs, "g.conf:3: pricing needs 'models' (a "
                             "list of prices"));
    CU_ASSERT_TRUE(has_error(&errs, "g.conf:4: spend.project_day must be "
                             "between 0 and 10000000 (found 20000000)"));
    gr_cfg_errors_free(&errs);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"month of a Pacific day", test_month_of_day},
        {"worst case and real cost", test_prices},
        {"reserve worst case, settle real", test_reserve_settle},
        {"refuse at the day cap; the next day", test_refuse_at_cap},
        {"month cap and its reset", test_month_cap},
        {"another project; the pool's cap", test_other_project_and_pool},
        {"a capped project waits for room elsewhere",
         test_wait_for_room_elsewhere},
        {"reap keeps in-flight spend, gives back the rest", test_reap},
        {"threads never pass a cap; the count is exact",
         test_threads_never_pass_cap},
        {"shipped pricing file", test_shipped_pricing},
        {"spend section", test_spend_section},
        {"bad pricing and spend: FILE:LINE", test_bad},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"spend", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_spend", suites, 60);
}
