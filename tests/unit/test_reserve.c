/*
 * test_reserve.c - shm/reserve.c and the lease around it: the numbers an
 * answer, a config or a torn read can bring to the table, at their edges
 * (issue 13, "Hardening"):
 *
 *  item 2   usage a count cannot hold is clamped, and exactly what was
 *           added is released later (by gr_commit, by a batch lease, by
 *           a release wider than a ring slot);
 *  item 7   a key or base URL that cannot be read whole is never handed
 *           out: the grant is given back and the reservation fails;
 *  item 11  a learned limit of 1 stays 1 under the headroom;
 *  item 12  rpm = INT64_MAX becomes the largest count, not 1.
 *
 * The router runs in this process (its segment code, not its daemon), so
 * nothing repairs what a test tears on purpose; the client library
 * attaches to the same segment.  Windows are a minute long: the counts
 * one window later are read with a later "now", without sleeping.
 */
#include "config.h"
#include "gemroute.h"
#include "health.h"
#include "reserve.h"
#include "router.h"
#include "testinproc.h"
#include "testlib.h"
#include "window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define WINDOW_NS (INT64_C(60) * 1000000000)
#define USED_MAX INT64_C(4294967295)

static char dir[64], shm[64];
static struct gr_rtr rtr;

/* One project; a model per test, so no test sees another's counts. */
static const char *models =
    "models = (\n"
    "  { name = \"m2a\"; rpm = 100000; tpm = 1000000; },\n"
    "  { name = \"m2b\"; rpm = 100000; tpm = 1000000; },\n"
    "  { name = \"m2c\"; rpm = 100000; tpm = 100000000; },\n"
    "  { name = \"m2d\"; rpm = 100000; tpm = 1000000; },\n"
    "  { name = \"m7\"; rpm = 100000; tpm = 1000000; },\n"
    "  { name = \"m11\"; rpm = 100; tpm = 1000000; },\n"
    "  { name = \"m12\"; rpm = 9223372036854775807L; "
    "tpm = 1000000000000L; rpd = 100; } );\n"
    "projects = ( { name = \"p\"; key = \"bounds-SECRET-key-0001\"; } );\n";

static struct gr_cfg *
cfg_of(const char *headroom)
{
    return gr_test_cfg_load(dir, "router = { shm = \"%s\"; max_projects = 2; "
                            "max_models = 8; max_leases = 64; "
                            "window_ms = 60000; headroom = %s; };\n%s", shm,
                            headroom, models);
}

static int
setup(void)
{
    struct gr_cfg *cfg;

    if (gr_test_names(dir, sizeof(dir), shm, sizeof(shm), "bounds") != 0)
        return -1;
    cfg = cfg_of("0.95");
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

static struct gr_shm_cell *
cell_of(const char *model)
{
    int m = gr_shm_model_index(&rtr.t, model);

    CU_ASSERT_FATAL(m >= 0);
    return gr_shm_cell(&rtr.t, 0, (uint32_t)m);
}

/* What window w of model's cell counts at instant at (ns). */
static int64_t
used_at(const char *model, unsigned w, int64_t at)
{
    return gr_shm_window_used(&rtr.t, cell_of(model), w, at);
}

/* Two ticks past one window after now: every release of a first byte
 * at or before now is due by then. */
static int64_t
after_window(int64_t now)
{
    return now + WINDOW_NS + 2 * rtr.t.tick_ns;
}

static struct gr *
client(void)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));

    CU_ASSERT_FATAL(g != NULL);
    return g;
}

/* No lease of the table is taken. */
static bool
no_lease_held(void)
{
    for (uint32_t i = 0; i < rtr.t.max_leases; i++)
        if (gr_shm_lease_state(atomic_load(&rtr.t.leases[i].state)) !=
            GR_LEASE_FREE)
            return false;
    return true;
}

/*
 * A promptTokenCount of 2^40 + 100 once charged the count up to its top
 * and parked only 100 for release (the slot's 40 bits cut the rest): the
 * cell's TPM stayed at 4,294,967,195 for good.  Now the count takes what
 * it can hold and gives exactly that back one window after the answer.
 */
static void
test_huge_prompt_token_count_is_clamped(void)
{
    struct gr *g = client();
    struct gr_cost cost = {1, 500000, 0};
    struct gr_usage use = {INT64_C(1099511627876), -1, 0};
    struct gr_lease l;
    int64_t now;

    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m2a", &cost, 0, &l), GR_OK);
    gr_commit(g, &l, &use);
    now = gr_now_ns();
    /* Counted, as much as a count holds: the cell takes nothing now. */
    CU_ASSERT_EQUAL(used_at("m2a", GR_W_TPM, now), USED_MAX);
    CU_ASSERT_EQUAL(gr_reserve(g, "m2a", &cost, 0, &l), GR_ENOROOM);
    /* And all of it back one window later. */
    CU_ASSERT_EQUAL(used_at("m2a", GR_W_TPM, after_window(now)), 0);
    CU_ASSERT_EQUAL(used_at("m2a", GR_W_RPM, after_window(now)), 0);
    gr_close(g);
}

/*
 * 5e9 tokens on a lease of 500,000 raised the count by less than that
 * (it saturated) but released all of it: one window later the count
 * fell to 0 although another call still held 450,000, and 1.4 M tokens
 * were admitted in one window against a 950 k limit.  Only what was
 * added may go.
 */
static void
test_overrun_releases_only_what_it_added(void)
{
    struct gr *g = client();
    struct gr_cost other = {1, 450000, 0}, cost = {1, 500000, 0};
    struct gr_usage use = {INT64_C(5000000000), -1, 0};
    struct gr_usage same = {450000, -1, 0};
    struct gr_lease held, l;
    int64_t now;

    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m2b", &other, 0, &held), GR_OK);
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m2b", &cost, 0, &l), GR_OK);
    gr_commit(g, &l, &use);
    now = gr_now_ns();
    CU_ASSERT_EQUAL(used_at("m2b", GR_W_TPM, now), USED_MAX);
    /* One window later the call still in flight is still counted: no
     * room for 950 k more. */
    CU_ASSERT_EQUAL(used_at("m2b", GR_W_TPM, after_window(now)), 450000);
    CU_ASSERT_EQUAL(used_at("m2b", GR_W_RPM, after_window(now)), 1);
    gr_commit(g, &held, &same);
    now = gr_now_ns();
    CU_ASSERT_EQUAL(used_at("m2b", GR_W_TPM, after_window(now)), 0);
    gr_close(g);
}

/*
 * A call of a batch lease that reports far more than its estimate is
 * charged at once (gr_shm_charge()).  The lease recorded the claim, not
 * what the count took, so it held more than a count can, and its settle
 * kept everything counted for good.  Now it records what was added, and
 * the batch's settle gives exactly that back.
 */
static void
test_batch_overrun_is_released_as_counted(void)
{
    struct gr *g = client(), *g2 = client();
    struct gr_cost cost = {1, 1000, 0};
    struct gr_usage est = {1000, -1, 0};
    struct gr_usage huge = {INT64_C(5000000000), -1, 0};
    struct gr_lease held, l[20];
    int n, batched = -1;
    int64_t now;

    /* A call of another handle stays in flight throughout. */
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g2, "m2c", &cost, 0, &held), GR_OK);
    for (n = 0; n < 20 && batched < 0; n++) {
        CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m2c", &cost, 0, &l[n]), GR_OK);
        if (l[n].batch != NULL)
            batched = n;
    }
    CU_ASSERT_FATAL(batched >= 0);      /* calls in a row share a lease */
    for (int i = 0; i < n; i++)
        gr_commit(g, &l[i], i == batched ? &huge : &est);
    gr_close(g);                        /* settles the batch */
    now = gr_now_ns();
    /* Counted up to the top, less the calls the batch never sent. */
    CU_ASSERT(used_at("m2c", GR_W_TPM, now) >= USED_MAX - 20 * 1000);
    CU_ASSERT_EQUAL(used_at("m2c", GR_W_TPM, after_window(now)), 1000);
    CU_ASSERT_EQUAL(used_at("m2c", GR_W_RPM, after_window(now)), 1);
    gr_commit(g2, &held, &est);
    now = gr_now_ns();
    CU_ASSERT_EQUAL(used_at("m2c", GR_W_TPM, after_window(now)), 0);
    CU_ASSERT_TRUE(no_lease_held());
    gr_close(g2);
}

/*
 * A release wider than a ring slot's 40 bits was cut to its low bits
 * when parked (2^40 + 100 parked 100).  No count can have held it: it
 * stays counted, and nothing else is taken out with it.
 */
static void
test_release_wider_than_a_slot_is_not_cut(void)
{
    struct gr_shm_cell *c = cell_of("m2d");
    int64_t now = gr_now_ns(), at = now + WINDOW_NS;

    CU_ASSERT_EQUAL(gr_shm_window_force(&rtr.t, c, GR_W_TPM, 1000), 1000);
    gr_shm_window_release_at(&rtr.t, c, GR_W_TPM,
                             INT64_C(1099511627876), at, now);
    CU_ASSERT_EQUAL(used_at("m2d", GR_W_TPM, after_window(now)), 1000);
    /* A release of what was really added goes as before. */
    gr_shm_window_release_at(&rtr.t, c, GR_W_TPM, 1000, at, now);
    CU_ASSERT_EQUAL(used_at("m2d", GR_W_TPM, after_window(now)), 0);
    /* And a force reports what the count could take. */
    CU_ASSERT_EQUAL(gr_shm_window_force(&rtr.t, c, GR_W_IPM, USED_MAX - 5),
                    USED_MAX - 5);
    CU_ASSERT_EQUAL(gr_shm_window_force(&rtr.t, c, GR_W_IPM, 100), 5);
    CU_ASSERT_EQUAL(gr_shm_window_force(&rtr.t, c, GR_W_IPM, 100), 0);
    gr_shm_window_give_back(&rtr.t, c, GR_W_IPM, USED_MAX);
}

/*
 * A router killed in the middle of rewriting a project's keys leaves its
 * seqlock odd.  The client used to hand out whatever it copied (a torn
 * x-goog-api-key, which Google would call invalid, disabling the
 * project).  Now it gives the grant back, tries again a few times, and
 * fails with a sentence; the table keeps nothing of it.
 */
static void
test_torn_key_is_never_sent(void)
{
    struct gr_shm_project *p = gr_shm_project(&rtr.t, 0);
    struct gr *g = client();
    struct gr_cost cost = {1, 100, 0};
    char *key = gr_shm_key(&rtr.t, 0, 0);
    char kept[GR_SHM_KEY_MAX];
    uint32_t seq = atomic_load(&p->seq);
    struct gr_lease l;
    int64_t now;

    memcpy(kept, key, sizeof(kept));
    atomic_store(&p->seq, seq | 1u);    /* the router died mid-write */
    memcpy(key, "bounds-SECRET-ha", 16);        /* half a new key */
    CU_ASSERT_EQUAL(gr_reserve(g, "m7", &cost, 0, &l), GR_ESHM);
    CU_ASSERT_PTR_NOT_NULL(strstr(gr_errstr(g), "half-written"));
    CU_ASSERT_EQUAL(l.key[0], '\0');
    now = gr_now_ns();
    CU_ASSERT_EQUAL(used_at("m7", GR_W_RPM, now), 0);
    CU_ASSERT_EQUAL(used_at("m7", GR_W_TPM, now), 0);
    CU_ASSERT_TRUE(no_lease_held());
    /* The router's repair makes it whole: reservations pass again. */
    memcpy(key, kept, sizeof(kept));
    atomic_store(&p->seq, (seq | 1u) + 1u);
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m7", &cost, 0, &l), GR_OK);
    CU_ASSERT_STRING_EQUAL(l.key, kept);
    gr_commit(g, &l, NULL);
    gr_close(g);
}

/* The same for the base URL, the other string a call needs. */
static void
test_torn_base_url_is_never_used(void)
{
    _Atomic uint32_t *seq = &rtr.t.hdr->text_seq;
    struct gr *g = client();        /* a new handle reads the URL anew */
    struct gr_cost cost = {1, 100, 0};
    uint32_t s = atomic_load(seq);
    int64_t before = used_at("m7", GR_W_RPM, gr_now_ns());
    struct gr_lease l;

    atomic_store(seq, s | 1u);
    CU_ASSERT_EQUAL(gr_reserve(g, "m7", &cost, 0, &l), GR_ESHM);
    CU_ASSERT_EQUAL(l.key[0], '\0');
    CU_ASSERT_EQUAL(used_at("m7", GR_W_RPM, gr_now_ns()), before);
    CU_ASSERT_TRUE(no_lease_held());
    atomic_store(seq, (s | 1u) + 1u);
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m7", &cost, 0, &l), GR_OK);
    CU_ASSERT(l.base_url[0] != '\0');
    gr_commit(g, &l, NULL);
    gr_close(g);
}

/*
 * quotaValue "1" for a per-minute quota: the cap is 1 x 0.95, which was
 * rounded down to 0, and 0 means "unavailable": the dimension was off.
 */
static void
test_learned_limit_of_one_stays_one(void)
{
    struct gr_shm_cell *c = cell_of("m11");
    struct gr_shm_outcome o = {.cls = GR_OUT_QUOTA, .status = 429,
                               .dims = 1u << GR_D_RPM,
                               .learned = {1, -1, -1, -1, -1}};
    struct gr *g = client();
    struct gr_cost cost = {1, 10, 0};
    struct gr_lease l;
    uint64_t rng = 7;

    CU_ASSERT_EQUAL(atomic_load(&rtr.t.hdr->headroom_ppm), 950000);
    CU_ASSERT_EQUAL(gr_shm_report(&rtr.t, 0, (uint32_t)(c - rtr.t.cells),
                                  atomic_load(&rtr.t.projects[0].generation),
                                  &o, 0, &rng),
                    0);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_RPM), 1);
    CU_ASSERT_FALSE(atomic_load(&c->health) & GR_CELL_DISABLED_MODEL);
    /* One request a minute, not none. */
    CU_ASSERT_EQUAL(gr_reserve(g, "m11", &cost, 0, &l), GR_OK);
    gr_commit(g, &l, NULL);
    CU_ASSERT_EQUAL(gr_reserve(g, "m11", &cost, 0, &l), GR_ENOROOM);
    /* A learned 0 still turns it off, and 2 x 0.95 is 1. */
    CU_ASSERT_EQUAL(gr_shm_learned_cap(&rtr.t, 0), 0);
    CU_ASSERT_EQUAL(gr_shm_learned_cap(&rtr.t, 2), 1);
    CU_ASSERT_EQUAL(gr_shm_learned_cap(&rtr.t, 100), 95);
    gr_close(g);
}

/*
 * rpm = 9223372036854775807L with headroom 1.0: the product does not
 * fit an int64_t, and converting it gave INT64_MIN, then the floor of 1:
 * one request a minute.  It is the largest count a cell holds.
 */
static void
test_int64_max_limit_is_the_largest_count(void)
{
    struct gr_shm_cell *c = cell_of("m12");
    struct gr_cfg *cfg = cfg_of("1.0");
    char err[512];

    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_EQUAL_FATAL(gr_rtr_apply(&rtr, cfg, err, sizeof(err)), 0);
    gr_cfg_free(cfg);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_RPM), USED_MAX - 1);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_TPM), USED_MAX - 1);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_RPD), 100);
    /* The same under 0.95: still more than a count holds. */
    cfg = cfg_of("0.95");
    CU_ASSERT_FATAL(cfg != NULL);
    CU_ASSERT_EQUAL_FATAL(gr_rtr_apply(&rtr, cfg, err, sizeof(err)), 0);
    gr_cfg_free(cfg);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_RPM), USED_MAX - 1);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_TPM), USED_MAX - 1);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_RPD), 95);
    /* And the router's repair agrees with what it wrote. */
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"item 2: a huge promptTokenCount is clamped",
         test_huge_prompt_token_count_is_clamped},
        {"item 2: an overrun releases only what it added",
         test_overrun_releases_only_what_it_added},
        {"item 2: a batch call's overrun is released as counted",
         test_batch_overrun_is_released_as_counted},
        {"item 2: a release wider than a slot is not cut",
         test_release_wider_than_a_slot_is_not_cut},
        {"item 7: a torn key is never sent", test_torn_key_is_never_sent},
        {"item 7: a torn base URL is never used",
         test_torn_base_url_is_never_used},
        {"item 11: a learned limit of 1 stays 1",
         test_learned_limit_of_one_stays_one},
        {"item 12: rpm = INT64_MAX is the largest count, not 1",
         test_int64_max_limit_is_the_largest_count},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"accounting bounds", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_reserve", suites, 60);
}
