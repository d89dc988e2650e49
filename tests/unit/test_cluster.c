/*
 * test_cluster.c - the share arithmetic of a cluster (router/
 * cluster_math.c): water-filling, the next share of a node, what a node
 * wants and publishes, and a simulation of hosts with shifting demand
 * that checks, at every step, that the shares sum to at most the limit
 * and that no host's window holds more than its share.  Also the config's
 * cluster section: defaults, a password from the environment, and that
 * no password ever shows up in an error.
 */
#include "cluster.h"
#include "config.h"
#include "testlib.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t
sum(const int64_t *v, unsigned n)
{
    int64_t s = 0;
    unsigned i;

    for (i = 0; i < n; i++)
        s += v[i];
    return s;
}

static void
test_waterfill(void)
{
    int64_t w1[3] = {1000, 1000, 1000}, o[4];
    int64_t w2[3] = {10, 1000, 1000};
    int64_t w3[3] = {10, 20, 30};
    int64_t w4[2] = {0, 0};
    int64_t w5[4] = {700, 5, 700, 700};

    gr_rtr_cl_waterfill(w1, 3, 100, o);
    CU_ASSERT_EQUAL(o[0], 33);
    CU_ASSERT_EQUAL(o[1], 33);
    CU_ASSERT_EQUAL(o[2], 33);
    gr_rtr_cl_waterfill(w2, 3, 100, o);
    CU_ASSERT_EQUAL(o[0], 10);
    CU_ASSERT_EQUAL(o[1], 45);
    CU_ASSERT_EQUAL(o[2], 45);
    gr_rtr_cl_waterfill(w3, 3, 100, o);     /* all fit: all granted */
    CU_ASSERT_EQUAL(o[0], 10);
    CU_ASSERT_EQUAL(o[2], 30);
    gr_rtr_cl_waterfill(w4, 2, 100, o);
    CU_ASSERT_EQUAL(sum(o, 2), 0);
    gr_rtr_cl_waterfill(w1, 3, -5, o);      /* a limit gone below 0 */
    CU_ASSERT_EQUAL(sum(o, 3), 0);
    gr_rtr_cl_waterfill(w5, 4, 1000, o);
    CU_ASSERT_EQUAL(o[1], 5);
    CU_ASSERT_TRUE(sum(o, 4) <= 1000 && sum(o, 4) >= 1000 - 3);
}

static void
test_random_waterfill_never_over(void)
{
    uint64_t rng = 42;
    int64_t w[8], o[8];
    unsigned it, i, bad = 0;

    for (it = 0; it < 100000; it++) {
        unsigned n = 1 + (unsigned)(gr_test_rand(&rng) % 8);
        int64_t cap = (int64_t)(gr_test_rand(&rng) % 5000);

        for (i = 0; i < n; i++)
            w[i] = (int64_t)(gr_test_rand(&rng) % 3000);
        gr_rtr_cl_waterfill(w, n, cap, o);
        if (sum(o, n) > cap)
            bad++;
        for (i = 0; i < n; i++)
            if (o[i] > w[i] || o[i] < 0)
                bad++;
        /* no capacity left idle while someone wants more (bar rounding) */
        if (sum(o, n) < cap - (int64_t)n && sum(o, n) < sum(w, n))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void
test_next_share(void)
{
    /* grow by at most what is free, and not in the grace */
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(10, 50, 10, 100, false), 50);
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(10, 50, 10, 15, false), 25);
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(10, 50, 10, 0, false), 10);
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(10, 50, 10, -20, false), 10);
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(10, 50, 10, 100, true), 10);
    /* shrink to the target, never below what the table holds */
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(50, 20, 5, 0, false), 20);
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(50, 20, 30, 0, false), 30);
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(50, 20, 80, 0, false), 50);
    /* shrinking is allowed in the grace (it only gives back) */
    CU_ASSERT_EQUAL(gr_rtr_cl_next_share(50, 20, 5, 0, true), 20);
}

static void
test_want_and_local(void)
{
    /* quiet: what the window held at most, plus a little */
    CU_ASSERT_EQUAL(gr_rtr_cl_want(40, 60, 320, false), 50);
    /* waiting: more than it has */
    CU_ASSERT_EQUAL(gr_rtr_cl_want(60, 60, 320, true), 100);
    CU_ASSERT_EQUAL(gr_rtr_cl_want(300, 300, 320, true), 320);
    CU_ASSERT_EQUAL(gr_rtr_cl_want(0, 0, 2, false), 1);
    CU_ASSERT_EQUAL(gr_rtr_cl_want(5, 5, 0, true), 0);
    CU_ASSERT_EQUAL(gr_rtr_cl_local(50, 80, false), 50);
    CU_ASSERT_EQUAL(gr_rtr_cl_local(50, 20, false), 20);
    CU_ASSERT_EQUAL(gr_rtr_cl_local(50, 80, true), 0);
}

/*
 * Hosts and the script's twin, stepped in lockstep.  A host admits up
 * to its local limit; an admission is held W steps.  Every step each
 * host publishes min(share, target), then syncs: the "script" renews
 * it, water-fills, and moves its share.  Checked at every step: the
 * shares sum to <= L, every host's count <= its share, the counts sum
 * to <= L.
 */
#define HOSTS 3
#define W 20
#define STEPS 4000

struct host {
    int64_t share, target, local, want, peak;
    int64_t ring[W];                    /* admitted at step s % W */
    int64_t used;
    bool waited;
};

static void
sim_sync(struct host *h, unsigned me, int64_t L, bool grace)
{
    int64_t wants[HOSTS], tg[HOSTS], total = 0;
    unsigned i;

    for (i = 0; i < HOSTS; i++) {
        wants[i] = h[i].want;
        total += h[i].share;
    }
    gr_rtr_cl_waterfill(wants, HOSTS, L, tg);
    h[me].target = tg[me];
    h[me].share = gr_rtr_cl_next_share(h[me].share, tg[me],
                                       h[me].local > h[me].used
                                           ? h[me].local : h[me].used,
                                       L - total, grace);
}

static void
test_simulated_hosts(void)
{
    struct host h[HOSTS];
    uint64_t rng = 7;
    const int64_t L = 300;
    int64_t admitted_total = 0;
    unsigned s, i, over_share = 0, over_sum = 0, over_count = 0;

    memset(h, 0, sizeof(h));
    for (s = 0; s < STEPS; s++) {
        int64_t shares = 0, counts = 0;
        unsigned phase = (s / 500) % 4;

        for (i = 0; i < HOSTS; i++) {
            struct host *x = &h[i];
            int64_t demand, room, take;

            /* releases one window after admission */
            x->used -= x->ring[s % W];
            x->ring[s % W] = 0;
            /* demand: even, skewed, moving, quiet */
            demand = phase == 0 ? 40 : phase == 1 ? (i == 0 ? 64 : 8)
                   : phase == 2 ? (i == 1 ? 80 : 0)
                   : (int64_t)(gr_test_rand(&rng) % 30);
            room = x->local - x->used;
            take = demand < room ? demand : room;
            if (take < 0)
                take = 0;
            x->waited = take < demand;
            x->used += take;
            x->ring[s % W] = take;
            admitted_total += take;
            if (x->used > x->peak)
                x->peak = x->used;
            if (s % W == 0)
                x->peak = x->used;
        }
        for (i = 0; i < HOSTS; i++) {
            struct host *x = &h[i];

            x->want = gr_rtr_cl_want(x->peak, x->local, L,
                                     x->waited &&
                                         x->used + x->local / 16 + 1 >=
                                             x->local);
            sim_sync(h, i, L, s < 5);
            /* lower first, raise only what is granted */
            x->local = gr_rtr_cl_local(x->share, x->target, false);
        }
        for (i = 0; i < HOSTS; i++) {
            if (h[i].used > h[i].share)
                over_share++;
            shares += h[i].share;
            counts += h[i].used;
        }
        if (shares > L)
            over_sum++;
        if (counts > L)
            over_count++;
    }
    CU_ASSERT_EQUAL(over_share, 0);
    CU_ASSERT_EQUAL(over_sum, 0);
    CU_ASSERT_EQUAL(over_count, 0);
    /* and the pool is used: over the saturated phases the hosts admit
     * most of what the limit allows (L per W steps) */
    CU_ASSERT_TRUE(admitted_total > (int64_t)STEPS / W * L / 2);
}

/* Load text as a config file; the errors joined in why. */
static int
load_text(const char *text, struct gr_cfg **cfg, char *why, size_t n)
{
    char path[] = "/tmp/gr-test-cluster-XXXXXX";
    struct gr_cfg_errors errs = {0, NULL};
    unsigned i;
    size_t at = 0;
    int fd, rc;

    fd = mkstemp(path);
    if (fd < 0)
        return -1;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        unlink(path);
        return -1;
    }
    close(fd);
    rc = gr_cfg_load(path, cfg, &errs);
    why[0] = '\0';
    for (i = 0; i < errs.n && at < n; i++)
        at += (size_t)snprintf(why + at, n - at, "%s\n", errs.lines[i]);
    gr_cfg_errors_free(&errs);
    unlink(path);
    return rc;
}

#define BASE "models = ( { name = \"m\"; rpm = 10; } );\n" \
             "projects = ( { name = \"p\"; key = \"SECRET-k-1\"; } );\n"

static void
test_config_section(void)
{
    struct gr_cfg *cfg = NULL;
    char why[2048];

    /* no section: off */
    CU_ASSERT_EQUAL(load_text(BASE, &cfg, why, sizeof(why)), 0);
    if (cfg != NULL)
        CU_ASSERT_FALSE(cfg->cluster.on);
    gr_cfg_free(cfg);
    cfg = NULL;

    /* the smallest section: defaults */
    CU_ASSERT_EQUAL(load_text(BASE "cluster = { redis = \"unix:/r.sock\"; "
                              "node = \"host-a\"; };\n", &cfg, why,
                              sizeof(why)), 0);
    if (cfg != NULL) {
        CU_ASSERT_TRUE(cfg->cluster.on);
        CU_ASSERT_STRING_EQUAL(cfg->cluster.redis, "unix:/r.sock");
        CU_ASSERT_STRING_EQUAL(cfg->cluster.node, "host-a");
        CU_ASSERT_STRING_EQUAL(cfg->cluster.prefix, "gemroute");
        CU_ASSERT_EQUAL(cfg->cluster.lease_ms, 10000);
        CU_ASSERT_EQUAL(cfg->cluster.sync_ms, 100);
        CU_ASSERT_EQUAL(cfg->cluster.timeout_ms, 500);
        CU_ASSERT_EQUAL(cfg->cluster.password[0], '\0');
    }
    gr_cfg_free(cfg);
    cfg = NULL;

    /* host:port on the loopback, a password from the environment */
    setenv("GR_TEST_REDIS_PW", "SECRET-redis-pw", 1);
    CU_ASSERT_EQUAL(load_text(BASE "cluster = { redis = \"127.0.0.1:6379\"; "
                              "node = \"b\"; password = "
                              "\"env:GR_TEST_REDIS_PW\"; sync_ms = 50; };\n",
                              &cfg, why, sizeof(why)), 0);
    if (cfg != NULL) {
        CU_ASSERT_STRING_EQUAL(cfg->cluster.password, "SECRET-redis-pw");
        CU_ASSERT_EQUAL(cfg->cluster.sync_ms, 50);
    }
    gr_cfg_free(cfg);
    cfg = NULL;

    /* a remote address: TLS by default, verified against the system's
     * CAs; in clear only with insecure = true */
    CU_ASSERT_EQUAL(load_text(BASE "cluster = { redis = \"10.1.2.3:6379\"; "
                              "node = \"c\"; };\n", &cfg, why,
                              sizeof(why)), 0);
    if (cfg != NULL) {
        CU_ASSERT_TRUE(cfg->cluster.tls);
        CU_ASSERT_EQUAL(cfg->cluster.tls_ca[0], '\0');
    }
    gr_cfg_free(cfg);
    cfg = NULL;
    CU_ASSERT_EQUAL(load_text(BASE "cluster = { redis = \"10.1.2.3:6379\"; "
                              "node = \"c\"; tls = false; insecure = true; "
                              "};\n", &cfg, why, sizeof(why)), 0);
    if (cfg != NULL)
        CU_ASSERT_FALSE(cfg->cluster.tls);
    gr_cfg_free(cfg);
    cfg = NULL;
    CU_ASSERT_NOT_EQUAL(load_text(BASE "cluster = { redis = "
                                  "\"10.1.2.3:6379\"; node = \"c\"; "
                                  "tls = false; };\n", &cfg, why,
                                  sizeof(why)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, ":3: cluster.redis '10.1.2.3:6379' "
                                  "is not local and tls is off"));
    /* the loopback: in clear unless tls = true; a name to check */
    CU_ASSERT_EQUAL(load_text(BASE "cluster = { redis = \"127.0.0.1:6380\"; "
                              "node = \"c\"; tls = true; tls_server_name = "
                              "\"redis.test\"; };\n", &cfg, why,
                              sizeof(why)), 0);
    if (cfg != NULL) {
        CU_ASSERT_TRUE(cfg->cluster.tls);
        CU_ASSERT_STRING_EQUAL(cfg->cluster.tls_server_name, "redis.test");
    }
    gr_cfg_free(cfg);
    cfg = NULL;
    CU_ASSERT_EQUAL(load_text(BASE "cluster = { redis = \"127.0.0.1:6379\"; "
                              "node = \"c\"; };\n", &cfg, why,
                              sizeof(why)), 0);
    if (cfg != NULL)
        CU_ASSERT_FALSE(cfg->cluster.tls);
    gr_cfg_free(cfg);
    cfg = NULL;

    /* refusals, each with its line; never the password */
    CU_ASSERT_NOT_EQUAL(load_text(BASE "cluster = { node = \"a\"; };\n",
                                  &cfg, why, sizeof(why)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, ":3: cluster needs 'redis'"));
    CU_ASSERT_NOT_EQUAL(load_text(BASE "cluster = { redis = \"unix:/r\"; "
                                  "node = \"a\"; password = "
                                  "\"SECRET-in-clear\"; };\n", &cfg, why,
                                  sizeof(why)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "never the password itself"));
    CU_ASSERT_PTR_NULL(strstr(why, "SECRET"));
    CU_ASSERT_NOT_EQUAL(load_text(BASE "cluster = { redis = \"unix:/r\"; "
                                  "node = \"a\"; lease_ms = 200; "
                                  "sync_ms = 100; };\n", &cfg, why,
                                  sizeof(why)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "at least 4 times"));
    CU_ASSERT_NOT_EQUAL(load_text(BASE "cluster = { redis = \"nowhere\"; "
                                  "node = \"a\"; colour = 1; };\n", &cfg,
                                  why, sizeof(why)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "\"unix:/path\" or \"host:port\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "unknown key 'colour' in cluster"));
    CU_ASSERT_PTR_NULL(cfg);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"water-fill", test_waterfill},
        {"water-fill never over the cap", test_random_waterfill_never_over},
        {"next share", test_next_share},
        {"want and local limit", test_want_and_local},
        {"simulated hosts keep the invariant", test_simulated_hosts},
        {"the config's cluster section", test_config_section},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"cluster", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_cluster", suites, 30);
}
