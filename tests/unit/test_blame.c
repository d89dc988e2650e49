/*
 * test_blame.c - issue 16, "blame the right party": a 401/403/404 is
 * charged to the key, the project, the cell or the request according to
 * its body (real bodies in tests/fixtures/gemini, their sources in its
 * README), and a refused key of a project with several keys is skipped
 * while its siblings carry on: the project is out only when every key
 * of it is.
 */
#include "gemroute.h"
#include "gemroute_stat.h"
#include "health.h"
#include "layout.h"
#include "table.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NOW_S INT64_C(1784145600)   /* 2026-07-15 20:00 UTC */
#define EI "type.googleapis.com/google.rpc.ErrorInfo"

static const char *fixture_dir = "tests/fixtures/gemini";

static char *
slurp(const char *name, size_t *len)
{
    char path[256];
    char *buf;

    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    buf = gr_test_read(path, len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    return buf;
}

static void
classify_file(int status, const char *name, struct gr_verdict *v)
{
    size_t len;
    char *b = slurp(name, &len);

    gr_classify(status, b, len, NOW_S, v);
    free(b);
}

static void
classify_str(int status, const char *body, struct gr_verdict *v)
{
    gr_classify(status, body, strlen(body), NOW_S, v);
}

struct want {
    const char *file;
    int status;
    enum gr_class cls;
    enum gr_disable disable;
    bool retryable;
};

/* Each real body, and what it must mean. */
static void
test_real_bodies(void)
{
    static const struct want w[] = {
        /* a bad key: that key (its siblings carry on) */
        {"400-api-key-invalid.json", 400, GR_CLASS_AUTH, GR_DISABLE_KEY,
         true},
        {"400-api-key-expired.json", 400, GR_CLASS_AUTH, GR_DISABLE_KEY,
         true},
        {"403-leaked-key.json", 403, GR_CLASS_AUTH, GR_DISABLE_KEY, true},
        {"403-consumer-suspended.json", 403, GR_CLASS_AUTH, GR_DISABLE_KEY,
         true},
        /* the project itself: every key would hear the same */
        {"403-service-disabled.json", 403, GR_CLASS_AUTH,
         GR_DISABLE_PROJECT, true},
        {"403-billing-disabled.json", 403, GR_CLASS_AUTH,
         GR_DISABLE_PROJECT, true},
        /* another project's file: the request's, retried nowhere */
        {"403-file-permission.json", 403, GR_CLASS_REQUEST,
         GR_DISABLE_NONE, false},
        /* a model this project lacks: that cell, retried elsewhere */
        {"404-model-not-found.json", 404, GR_CLASS_MODEL, GR_DISABLE_CELL,
         true},
    };
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        struct gr_verdict v;

        classify_file(w[i].status, w[i].file, &v);
        if (v.cls != w[i].cls || v.disable != w[i].disable ||
            v.retryable != w[i].retryable)
            fprintf(stderr, "\n%s: %s\n", w[i].file, v.reason);
        CU_ASSERT_EQUAL(v.cls, w[i].cls);
        CU_ASSERT_EQUAL(v.disable, w[i].disable);
        CU_ASSERT_EQUAL(v.retryable, w[i].retryable);
        CU_ASSERT_EQUAL(v.dims, 0);
        CU_ASSERT_EQUAL(v.cooldown_s, 0);
    }
}

/* A suspended consumer's key is quoted by Google: never by us. */
static void
test_key_never_quoted(void)
{
    struct gr_verdict v;

    classify_file(403, "403-consumer-suspended.json", &v);
    CU_ASSERT_PTR_NULL(strstr(v.reason, "AIzaFIXTURE"));
    CU_ASSERT_PTR_NULL(strstr(v.reason, "fixture0000"));
    CU_ASSERT_PTR_NOT_NULL(strstr(v.reason, "CONSUMER_SUSPENDED"));
    classify_str(403, "{\"error\": {\"code\": 403, \"message\": \"Permission "
                 "denied: Consumer 'api_key:SECRET-abc' has been "
                 "suspended.\", \"status\": \"PERMISSION_DENIED\"}}", &v);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_KEY);
    CU_ASSERT_PTR_NULL(strstr(v.reason, "SECRET"));
    CU_ASSERT_PTR_NOT_NULL(strstr(v.reason, "api_key:***"));
}

/* The rules, each on a body cut to what decides it. */
static void
test_rules(void)
{
    static const struct {
        int status;
        const char *body;
        enum gr_class cls;
        enum gr_disable disable;
    } r[] = {
        /* ErrorInfo reasons of google.api.ErrorReason */
        {403, "{\"error\": {\"code\": 403, \"status\": \"PERMISSION_DENIED\","
              " \"details\": [{\"@type\": \"" EI "\", \"reason\": "
              "\"API_KEY_SERVICE_BLOCKED\"}]}}",
         GR_CLASS_AUTH, GR_DISABLE_KEY},
        {403, "{\"error\": {\"code\": 403, \"status\": \"PERMISSION_DENIED\","
              " \"details\": [{\"@type\": \"" EI "\", \"reason\": "
              "\"CONSUMER_SUSPENDED\", \"metadata\": {\"consumer\": "
              "\"projects/1\"}}]}}",
         GR_CLASS_AUTH, GR_DISABLE_PROJECT},
        /* details dropped: Google's sentences */
        {403, "{\"error\": {\"code\": 403, \"message\": \"Generative Language"
              " API has not been used in project 1 before or it is disabled."
              "\", \"status\": \"PERMISSION_DENIED\"}}",
         GR_CLASS_AUTH, GR_DISABLE_PROJECT},
        {403, "{\"error\": {\"code\": 403, \"message\": \"Project x (#1) has "
              "billing disabled. Please enable it.\", \"status\": "
              "\"PERMISSION_DENIED\"}}",
         GR_CLASS_AUTH, GR_DISABLE_PROJECT},
        /* gemini-cli#25607's bare refusal: the key, which a probe tests */
        {403, "{\"error\": {\"code\": 403, \"message\": \"The caller does not"
              " have permission\", \"status\": \"PERMISSION_DENIED\"}}",
         GR_CLASS_AUTH, GR_DISABLE_KEY},
        {403, "", GR_CLASS_AUTH, GR_DISABLE_KEY},
        {401, "not json", GR_CLASS_AUTH, GR_DISABLE_KEY},
        /* things that live in one project: the request's */
        {403, "{\"error\": {\"code\": 403, \"message\": \"CachedContent not "
              "found (or permission denied)\", \"status\": "
              "\"PERMISSION_DENIED\"}}",
         GR_CLASS_REQUEST, GR_DISABLE_NONE},
        {403, "{\"error\": {\"code\": 403, \"message\": \"Permission denied "
              "on resource tunedModels/my-model-7\", \"status\": "
              "\"PERMISSION_DENIED\"}}",
         GR_CLASS_REQUEST, GR_DISABLE_NONE},
        {403, "{\"error\": {\"code\": 403, \"status\": \"PERMISSION_DENIED\","
              " \"details\": [{\"@type\": \"type.googleapis.com/google.rpc."
              "ResourceInfo\", \"resourceType\": \"batches\", "
              "\"resourceName\": \"batches/abc\"}]}}",
         GR_CLASS_REQUEST, GR_DISABLE_NONE},
        {404, "{\"error\": {\"code\": 404, \"message\": \"File files/abc "
              "does not exist.\", \"status\": \"NOT_FOUND\"}}",
         GR_CLASS_REQUEST, GR_DISABLE_NONE},
        {404, "{\"error\": {\"code\": 404, \"message\": \"cachedContents/"
              "xyz not found\", \"status\": \"NOT_FOUND\"}}",
         GR_CLASS_REQUEST, GR_DISABLE_NONE},
        /* a model the project may not use: that cell (no real 403 of
         * this kind was found; the sentence is ours) */
        {403, "{\"error\": {\"code\": 403, \"message\": \"Permission denied:"
              " models/gemini-9-pro-preview is not available to this "
              "project.\", \"status\": \"PERMISSION_DENIED\"}}",
         GR_CLASS_MODEL, GR_DISABLE_CELL},
        {404, "{\"error\": {\"code\": 404, \"status\": \"NOT_FOUND\"}}",
         GR_CLASS_MODEL, GR_DISABLE_CELL},
        /* a key reason wins over words about a file */
        {400, "{\"error\": {\"code\": 400, \"message\": \"API key not valid "
              "for the File x\", \"status\": \"INVALID_ARGUMENT\", "
              "\"details\": [{\"@type\": \"" EI "\", \"reason\": "
              "\"API_KEY_INVALID\"}]}}",
         GR_CLASS_AUTH, GR_DISABLE_KEY},
    };
    size_t i;

    for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        struct gr_verdict v;

        classify_str(r[i].status, r[i].body, &v);
        if (v.cls != r[i].cls || v.disable != r[i].disable)
            fprintf(stderr, "\nrule %zu: %s\n", i, v.reason);
        CU_ASSERT_EQUAL(v.cls, r[i].cls);
        CU_ASSERT_EQUAL(v.disable, r[i].disable);
        /* the request's fault is never retried elsewhere */
        CU_ASSERT_EQUAL(v.retryable, r[i].cls != GR_CLASS_REQUEST);
    }
}

/* ---- keys in the table ------------------------------------------------ */

static char shm_name[64];
static struct gr_shm tab;

static int
setup(void)
{
    char err[256];

    snprintf(shm_name, sizeof(shm_name), "/grtest-blame-%d", (int)getpid());
    shm_unlink(shm_name);
    if (gr_shm_router_create(shm_name, 4, 2, 16, INT64_C(60000000000), 0600,
                             (gid_t)-1, &tab, err, sizeof(err)) != 0)
        return -1;
    return 0;
}

static int
teardown(void)
{
    gr_shm_detach(&tab);
    shm_unlink(shm_name);
    return 0;
}

/* Project p0 in slot 0 with n keys "SECRET-k<i>", serving model "m". */
static void
one_project(unsigned n)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, 0, 0);
    unsigned d, k;

    memset(tab.projects, 0, sizeof(*tab.projects) * tab.max_projects);
    memset(tab.cells, 0, sizeof(*tab.cells) * tab.max_projects *
                             tab.max_models);
    strcpy(tab.models[0].name, "m");
    atomic_store(&tab.hdr->n_models, 1);
    strcpy(tab.projects[0].name, "p0");
    for (k = 0; k < n; k++)
        snprintf(gr_shm_key(&tab, 0, k), GR_SHM_KEY_MAX, "SECRET-k%u", k);
    tab.projects[0].n_keys = n;
    for (d = 0; d < GR_NDIM; d++) {
        atomic_store(&c->limit[d], GR_LIMIT_NONE);
        atomic_store(&c->config_limit[d], -1);      /* unlimited */
        gr_shm_set_learned(&tab, c, d, -1);
    }
    atomic_store(&tab.projects[0].state, GR_PROJ_ACTIVE);
    atomic_store(&tab.choice[0], 0);
    atomic_store(&tab.hdr->n_choice, 1);
    atomic_store(&tab.hdr->headroom_ppm, 1000000);
    atomic_store(&tab.hdr->config_generation, 1);
}

/* Reserve n times; count which key each lease got. */
static int
leases_by_key(struct gr *g, unsigned n, unsigned count[GR_SHM_MAX_KEYS])
{
    struct gr_cost cost = {1, 1, 0};
    unsigned i;

    memset(count, 0, GR_SHM_MAX_KEYS * sizeof(count[0]));
    for (i = 0; i < n; i++) {
        struct gr_lease l;
        struct gr_usage u = {0, 0, 0};
        int rc = gr_reserve(g, "m", &cost, 0, &l);

        if (rc != GR_OK)
            return rc;
        CU_ASSERT(l.key_index < GR_SHM_MAX_KEYS);
        if (l.key_index < GR_SHM_MAX_KEYS) {
            char want[16];

            snprintf(want, sizeof(want), "SECRET-k%u", l.key_index);
            CU_ASSERT_STRING_EQUAL(l.key, want);
            count[l.key_index]++;
        }
        gr_commit(g, &l, &u);
    }
    return GR_OK;
}

static void
report_on_key(struct gr *g, unsigned k, int status, const char *file)
{
    struct gr_cost cost = {1, 1, 0};
    struct gr_verdict v;
    struct gr_lease l;
    struct gr_usage u = {0, 0, 0};

    /* take leases until one has key k (keys are chosen at random) */
    for (;;) {
        CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m", &cost, 0, &l), GR_OK);
        if (l.key_index == k)
            break;
        gr_commit(g, &l, &u);
    }
    classify_file(status, file, &v);
    gr_report(g, &l, &v);
    gr_commit(g, &l, &u);
}

static void
test_bad_key_spares_siblings(void)
{
    unsigned count[GR_SHM_MAX_KEYS];
    char err[256];
    struct gr *g;

    one_project(3);
    g = gr_open(shm_name, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(leases_by_key(g, 300, count), GR_OK);
    CU_ASSERT(count[0] > 0 && count[1] > 0 && count[2] > 0);

    /* key 1 leaked: only key 1 is out; the project serves on 0 and 2 */
    report_on_key(g, 1, 403, "403-leaked-key.json");
    CU_ASSERT_EQUAL(atomic_load(&tab.projects[0].key_bad), 2u);
    CU_ASSERT_EQUAL(atomic_load(&tab.projects[0].health) &
                    GR_PROJ_AUTH_FAILED, 0);
    CU_ASSERT_EQUAL(leases_by_key(g, 300, count), GR_OK);
    CU_ASSERT_EQUAL(count[1], 0);
    CU_ASSERT(count[0] > 0 && count[2] > 0);

    /* key 0 expired: key 2 alone */
    report_on_key(g, 0, 400, "400-api-key-expired.json");
    CU_ASSERT_EQUAL(atomic_load(&tab.projects[0].key_bad), 3u);
    CU_ASSERT_EQUAL(leases_by_key(g, 100, count), GR_OK);
    CU_ASSERT_EQUAL(count[2], 100);

    /* the last key suspended: now the project is out */
    report_on_key(g, 2, 403, "403-consumer-suspended.json");
    CU_ASSERT_EQUAL(atomic_load(&tab.projects[0].key_bad), 7u);
    CU_ASSERT(atomic_load(&tab.projects[0].health) & GR_PROJ_AUTH_FAILED);
    CU_ASSERT_EQUAL(leases_by_key(g, 1, count), GR_ENOROOM);
    gr_close(g);
}

static void
test_project_reason_disables_at_once(void)
{
    unsigned count[GR_SHM_MAX_KEYS];
    char err[256];
    struct gr *g;

    one_project(2);
    g = gr_open(shm_name, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    report_on_key(g, 1, 403, "403-service-disabled.json");
    /* the API is off for the project: no key of it is tried again */
    CU_ASSERT(atomic_load(&tab.projects[0].health) & GR_PROJ_AUTH_FAILED);
    CU_ASSERT_EQUAL(atomic_load(&tab.projects[0].key_bad), 0u);
    CU_ASSERT_EQUAL(leases_by_key(g, 1, count), GR_ENOROOM);
    gr_close(g);
}

static void
test_request_fault_leaves_table(void)
{
    unsigned count[GR_SHM_MAX_KEYS];
    char err[256];
    struct gr *g;
    struct gr_shm_cell *c = gr_shm_cell(&tab, 0, 0);

    one_project(1);
    g = gr_open(shm_name, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    report_on_key(g, 0, 403, "403-file-permission.json");
    CU_ASSERT_EQUAL(atomic_load(&tab.projects[0].key_bad), 0u);
    CU_ASSERT_EQUAL(atomic_load(&tab.projects[0].health), 0u);
    CU_ASSERT_EQUAL(atomic_load(&c->health), 0u);
    CU_ASSERT_EQUAL(atomic_load(&c->auth_err), 0u);
    CU_ASSERT_EQUAL(leases_by_key(g, 10, count), GR_OK);
    /* and a model the project lacks: that cell only */
    report_on_key(g, 0, 404, "404-model-not-found.json");
    CU_ASSERT(atomic_load(&c->health) & GR_CELL_DISABLED_MODEL);
    CU_ASSERT_EQUAL(atomic_load(&tab.projects[0].health), 0u);
    gr_close(g);
}

/* A damaged n_keys or key index never reaches past the keys. */
static void
test_damaged_key_fields(void)
{
    struct gr_shm_project *p = &tab.projects[0];

    one_project(2);
    p->n_keys = 200;
    CU_ASSERT_EQUAL(gr_shm_key_refused(&tab, p, 77), 1u);
    CU_ASSERT(atomic_load(&p->health) & GR_PROJ_AUTH_FAILED);
    one_project(2);
    atomic_store(&p->key_bad, 0xffffffffu);
    CU_ASSERT_EQUAL(gr_shm_keys_usable(p, 2), 3u);
    atomic_store(&p->key_bad, 1u);
    CU_ASSERT_EQUAL(gr_shm_keys_usable(p, 2), 2u);
    CU_ASSERT_EQUAL(gr_shm_keys_usable(p, 0), 1u);
}

/* What `gemroute status` is told: refused keys, whom Google refused,
 * and the next probe (at a fixed clock reading). */
static bool
has_reason(const struct gr_stat_cell *c, const char *want)
{
    unsigned i;

    for (i = 0; i < c->n_reasons; i++)
        if (strstr(c->reasons[i], want) != NULL)
            return true;
    return false;
}

static void
test_status_shows_keys_and_probes(void)
{
    const int64_t now = INT64_C(1000) * 1000000000;
    struct gr_stat_snap s;
    struct gr_stat *st;
    char err[256];

    one_project(3);
    atomic_store(&tab.projects[0].key_bad, 2u);
    atomic_store(&tab.projects[0].probe_at_s, 1045u);
    st = gr_stat_open(shm_name, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL_FATAL(gr_stat_take_at(st, &s, now, NOW_S * 1000000000),
                          GR_OK);
    CU_ASSERT_EQUAL_FATAL(s.n_projects, 1);
    CU_ASSERT_EQUAL(s.projects[0].keys_refused, 2u);
    CU_ASSERT_FALSE(s.projects[0].auth_failed);
    CU_ASSERT(s.projects[0].probe_in_s > 44.9 &&
              s.projects[0].probe_in_s < 45.1);
    CU_ASSERT_EQUAL_FATAL(s.n_cells, 1);
    CU_ASSERT_STRING_EQUAL(s.cells[0].health, "healthy");
    CU_ASSERT(has_reason(&s.cells[0], "key #2 of 3 refused"));
    CU_ASSERT_EQUAL(s.cells[0].probe_in_s, -1);
    gr_stat_free(&s);

    /* Google refused the project itself: said so, with its probe */
    atomic_store(&tab.projects[0].key_bad, 0u);
    atomic_store(&tab.projects[0].health, GR_PROJ_AUTH_FAILED);
    CU_ASSERT_EQUAL_FATAL(gr_stat_take_at(st, &s, now, NOW_S * 1000000000),
                          GR_OK);
    CU_ASSERT_STRING_EQUAL(s.cells[0].health, "disabled");
    CU_ASSERT(has_reason(&s.cells[0], "project refused"));
    CU_ASSERT(has_reason(&s.cells[0], "next probe in"));
    gr_stat_free(&s);

    /* every key refused one by one */
    atomic_store(&tab.projects[0].key_bad, 7u);
    CU_ASSERT_EQUAL_FATAL(gr_stat_take_at(st, &s, now, NOW_S * 1000000000),
                          GR_OK);
    CU_ASSERT(has_reason(&s.cells[0], "keys rejected"));
    gr_stat_free(&s);
    gr_stat_close(st);
}

int
main(void)
{
    CU_TestInfo bodies[] = {
        {"real bodies", test_real_bodies},
        {"a key Google quotes is never quoted", test_key_never_quoted},
        {"rules one by one", test_rules},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo keys[] = {
        {"a bad key spares its siblings", test_bad_key_spares_siblings},
        {"a project reason disables at once",
         test_project_reason_disables_at_once},
        {"the request's fault leaves the table alone",
         test_request_fault_leaves_table},
        {"damaged key fields", test_damaged_key_fields},
        {"status shows refused keys and the next probe",
         test_status_shows_keys_and_probes},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"bodies", NULL, NULL, NULL, NULL, bodies},
        {"keys", setup, teardown, NULL, NULL, keys},
        CU_SUITE_INFO_NULL,
    };
    FILE *probe;

    if ((probe = fopen("tests/fixtures/gemini/README.md", "r")) != NULL)
        fclose(probe);
    else
        fixture_dir = "../shared/gemini-samples";
    return gr_test_main("test_blame", suites, 60);
}
