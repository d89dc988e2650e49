/*
 * test_status.c - gemroute status against a table in a state built by
 * hand, seen at fixed clock readings: the plain table and the Prometheus
 * text against golden files (tests/golden/), the JSON against the schema
 * of issue 2 and its extensions (parsed with json-c), the Prometheus text
 * against a parser of the exposition format, and the colour table
 * against the plain one.  No key appears in any output beyond its last
 * four characters.
 *
 * GR_GOLDEN_UPDATE=1 rewrites the golden files instead of comparing.
 */
#include "clock.h"
#include "gemroute.h"
#include "health.h"
#include "seqlock.h"
#include "snapshot.h"
#include "testlib.h"
#include "window.h"

#include <ctype.h>
#include <json.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define NOW_MONO (INT64_C(5000) * GR_NS_PER_S)
#define SECRET1 "AIzaSyA-SECRET-prod1-wxyz"

static char shm[64];
static struct gr_shm tab;
static struct gr_stat *st;          /* the same table, read-only */
static struct gr_stat_snap snap;
static int64_t now_wall;
static const char *golden_dir;

static void
put_name(char *dst, const char *s)
{
    char buf[GR_SHM_NAME_MAX] = {0};

    snprintf(buf, sizeof(buf), "%s", s);
    memcpy(dst, buf, sizeof(buf));
}

static void
project(uint32_t slot, const char *name, const char *key, uint32_t state)
{
    struct gr_shm_project *p = &tab.projects[slot];
    char k[GR_SHM_KEY_MAX] = {0};

    put_name(p->name, name);
    snprintf(k, sizeof(k), "%s", key);
    memcpy(gr_shm_key(&tab, slot, 0), k, sizeof(k));
    p->n_keys = 1;
    p->weight = 1;
    atomic_store(&p->generation, 1);
    atomic_store(&p->state, state);
}

/* Limits of a cell: raw config values, effective = raw x 0.95. */
static struct gr_shm_cell *
cell(uint32_t slot, uint32_t model, const int64_t raw[GR_NDIM])
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, slot, model);
    unsigned d;

    for (d = 0; d < GR_NDIM; d++) {
        atomic_store(&c->config_limit[d], raw[d]);
        atomic_store(&c->limit[d], gr_shm_limit_pack(raw[d] < 0 ? raw[d] :
                                                     raw[d] * 95 / 100));
        gr_shm_set_learned(&tab, c, d, -1);
    }
    return c;
}

/* n requests in flight on a cell: leases held as a client's would be. */
static void
in_flight(uint32_t slot, uint32_t model, int n)
{
    static uint32_t next;

    while (n-- > 0 && next < tab.max_leases) {
        struct gr_shm_lease *l = &tab.leases[next++];

        l->cell = slot * tab.max_models + model;
        l->cost[GR_W_RPM] = 1;
        atomic_store(&l->held, GR_HELD_INFLIGHT);
        atomic_store(&l->state, ((uint64_t)getpid() << 32) | (1u << 8) |
                                    GR_LEASE_ACTIVE);
    }
}

static void
use(struct gr_shm_cell *c, int64_t rpm, int64_t tpm, int64_t rpd,
    int64_t ipm)
{
    int32_t today = gr_shm_pacific_day(now_wall / GR_NS_PER_S);

    if (rpm > 0)
        gr_shm_window_admit(&tab, c, GR_W_RPM, rpm, INT32_MAX, NOW_MONO);
    if (tpm > 0)
        gr_shm_window_admit(&tab, c, GR_W_TPM, tpm, INT32_MAX, NOW_MONO);
    if (ipm > 0)
        gr_shm_window_admit(&tab, c, GR_W_IPM, ipm, INT32_MAX, NOW_MONO);
    atomic_store(&c->day, gr_shm_word_pack((uint64_t)rpd,
                                           (uint64_t)today, 0));
}

static void
qid(struct gr_shm_cell *c, const char *s)
{
    snprintf(c->last_qid, sizeof(c->last_qid), "%s", s);
}

/*
 * The state shown: prod-1 healthy; prod-2 cooling on its daily quota
 * (until Pacific midnight) with a learned TPM limit, and on RPM for the
 * image model (RetryInfo); lab's key rejected, its image cell disabled by
 * the operator; old-proj removed from the config and draining, with an
 * open circuit.  The router is gone (pid 0), the last reload failed.
 */
static int
setup(void)
{
    static const int64_t flash[GR_NDIM] = {1000, 1000000, 10000, -1,
                                           50000000};
    static const int64_t image[GR_NDIM] = {500, 500000, 2000, 10, -1};
    struct gr_shm_header *h;
    struct gr_shm_cell *c;
    char err[256];

    setenv("TZ", "UTC", 1);
    tzset();
    golden_dir = getenv("GR_GOLDEN_DIR") ? getenv("GR_GOLDEN_DIR")
                                         : "tests/golden";
    /* 2026-11-28T21:04:05Z */
    now_wall = (gr_shm_days_from_civil(2026, 11, 28) * 86400 + 21 * 3600 +
                4 * 60 + 5) * GR_NS_PER_S;
    snprintf(shm, sizeof(shm), "/grtest-status-%d", (int)getpid());
    shm_unlink(shm);
    if (gr_shm_router_create(shm, 4, 2, 16, 60 * GR_NS_PER_S, 0600,
                             (gid_t)-1, &tab, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    h = tab.hdr;
    atomic_store(&h->router_pid, 0);
    atomic_store(&h->router_beat_ns, NOW_MONO - 10 * 1000000);
    atomic_store(&h->config_generation, 7);
    atomic_store(&h->headroom_ppm, 950000);
    atomic_store(&h->last_reload_wall_ns, now_wall - 300 * GR_NS_PER_S);
    atomic_store(&h->last_reload_ok, 0);
    atomic_store(&h->reloads_ok, 6);
    atomic_store(&h->reloads_failed, 1);
    snprintf(h->config_path, sizeof(h->config_path), "/etc/gemroute.conf");
    snprintf(h->base_url, sizeof(h->base_url),
             "https://generativelanguage.googleapis.com");
    snprintf(h->last_reload_error, sizeof(h->last_reload_error),
             "/etc/gemroute.conf:12: unknown setting 'rmp' in models");
    put_name(tab.models[0].name, "gemini-2.5-flash");
    put_name(tab.models[1].name, "gemini-2.5-flash-image");
    atomic_store(&h->n_models, 2);

    project(0, "prod-1", SECRET1, GR_PROJ_ACTIVE);
    c = cell(0, 0, flash);
    use(c, 350, 120000, 812, 0);
    /* tokens per day: 19M of flash's 50M (x 0.95) today */
    atomic_store(&c->tday, gr_shm_word_pack(19000000, (uint64_t)
                 gr_shm_pacific_day(now_wall / GR_NS_PER_S), 0));
    in_flight(0, 0, 2);
    atomic_store(&c->admitted, 9001);
    atomic_store(&c->rejected, 3);
    atomic_store(&c->ok, 8990);
    atomic_store(&c->server_5xx, 4);
    c = cell(0, 1, image);
    use(c, 10, 2000, 40, 3);
    atomic_store(&c->admitted, 40);
    atomic_store(&c->ok, 40);

    project(1, "prod-2", "AIzaSyB-SECRET-prod2-abcd", GR_PROJ_ACTIVE);
    c = cell(1, 0, flash);
    use(c, 12, 3400, 9500, 0);
    atomic_store(&c->cool_until[GR_D_RPD],
                 NOW_MONO + (gr_shm_next_pacific_midnight(
                                 now_wall / GR_NS_PER_S) -
                             now_wall / GR_NS_PER_S) * GR_NS_PER_S);
    c->cool_src[GR_D_RPD] = GR_COOL_MIDNIGHT;
    gr_shm_set_learned(&tab, c, GR_D_TPM, 250000);
    atomic_store(&c->quota_429[GR_D_RPD], 1);
    atomic_store(&c->last_status, 429);
    atomic_store(&c->admitted, 9500);
    atomic_store(&c->ok, 9499);
    qid(c, "GenerateRequestsPerDayPerProjectPerModel-FreeTier");
    c = cell(1, 1, image);
    use(c, 475, 10000, 600, 9);
    atomic_store(&c->cool_until[GR_D_RPM], NOW_MONO + 26 * GR_NS_PER_S);
    c->cool_src[GR_D_RPM] = GR_COOL_RETRYINFO;
    atomic_store(&c->quota_429[GR_D_RPM], 2);

    project(2, "lab", "literal-SECRET-lab-9876", GR_PROJ_ACTIVE);
    /* its one key refused (400 API_KEY_INVALID): the project with it */
    atomic_store(&tab.projects[2].health, GR_PROJ_AUTH_FAILED);
    atomic_store(&tab.projects[2].key_bad, 1u);
    c = cell(2, 0, flash);
    atomic_store(&c->auth_err, 1);
    atomic_store(&c->last_status, 400);
    c = cell(2, 1, image);
    atomic_store(&c->health, GR_CELL_OP_DISABLED);

    project(3, "old-proj", "AIzaSyC-SECRET-old-0000", GR_PROJ_REMOVING);
    c = cell(3, 0, flash);
    use(c, 5, 500, 77, 0);
    in_flight(3, 0, 1);
    atomic_store(&c->circuit_until, NOW_MONO + 12 * GR_NS_PER_S);
    atomic_store(&c->server_5xx, 5);
    atomic_store(&c->last_status, 503);
    cell(3, 1, (const int64_t[GR_NDIM]){0, 0, 0, 0, 0});    /* not served */

    /* The extras (ABI 4.2): a cache with hits, and fallbacks from the
     * image model to flash. */
    tab.extra->flags = GR_CACHE_ON;
    atomic_store(&tab.extra->cache_hits, 990);
    atomic_store(&tab.extra->cache_misses, 10);
    atomic_store(&tab.extra->cache_stores, 9);
    atomic_store(&tab.extra->cache_errors, 1);
    atomic_store(&tab.extra->fallbacks, 4);
    atomic_store(&tab.extra->fallback_denied, 2);
    atomic_store(&tab.pairs[1 * tab.max_models + 0], 4);
    /* ABI 6: two aliases of flash, then one naming no model (skipped) */
    put_name(tab.aliases[0].name, "flash");
    tab.aliases[0].model = 0;
    put_name(tab.aliases[1].name, "gemini-flash-latest");
    tab.aliases[1].model = 0;
    put_name(tab.aliases[2].name, "bogus");
    tab.aliases[2].model = 7;

    /* Through the read-only API, as `gemroute status` takes it. */
    st = gr_stat_open(shm, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (gr_stat_take_at(st, &snap, NOW_MONO, now_wall) != GR_OK)
        return 1;
    /* The name is unique to this run; the golden files show this one. */
    snprintf(snap.shm, sizeof(snap.shm), "/gemroute");
    return 0;
}

static int
teardown(void)
{
    gr_stat_free(&snap);
    gr_stat_close(st);
    gr_shm_detach(&tab);
    shm_unlink(shm);
    return 0;
}

/* The output of a view of s, in memory. */
static char *
render_of(const struct gr_stat_snap *s, int view, bool colour)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        return NULL;
    if (view == 0)
        gr_status_table(f, s, colour);
    else if (view == 1)
        gr_status_json(f, s);
    else
        gr_status_prometheus(f, s);
    fclose(f);
    return buf;
}

static char *
render(int view, bool colour)
{
    return render_of(&snap, view, colour);
}

static void
golden(const char *name, const char *got)
{
    char path[256];
    const char *upd = getenv("GR_GOLDEN_UPDATE");
    char *want;

    snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
    if (upd != NULL && strcmp(upd, "1") == 0) {
        FILE *f = fopen(path, "w");

        CU_ASSERT_FATAL(f != NULL);
        fputs(got, f);
        fclose(f);
        return;
    }
    want = gr_test_read(path, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    if (strcmp(want, got) != 0) {
        fprintf(stderr, "\n%s differs; got:\n%s\n", path, got);
        CU_FAIL("output differs from its golden file");
    }
    free(want);
}

static void
no_secret(const char *out)
{
    /* every key of the table holds SECRET (so does tests/run.sh's scan) */
    CU_ASSERT_PTR_NULL(strstr(out, "SECRET"));
}

static void
test_table_golden(void)
{
    char *out = render(0, false), *p;

    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    golden("status-table.txt", out);
    no_secret(out);
    /* Every line fits 100 columns and is plain ASCII. */
    for (p = out; *p;) {
        size_t n = strcspn(p, "\n");
        size_t i;

        CU_ASSERT(n <= 100);
        for (i = 0; i < n; i++)
            CU_ASSERT(isprint((unsigned char)p[i]));
        p += n + (p[n] == '\n');
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rpd until 00:00 PT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rpm 26s (RetryInfo)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "learned tpm 250k (config 1M)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "...wxyz"));
    free(out);
}

/* Drop ANSI escapes (ESC [ ... letter). */
static void
strip_ansi(char *s)
{
    char *w = s;

    while (*s) {
        if (s[0] == '\033' && s[1] == '[') {
            s += 2;
            while (*s && !isalpha((unsigned char)*s))
                s++;
            if (*s)
                s++;
            continue;
        }
        *w++ = *s++;
    }
    *w = '\0';
}

static void
test_colour_is_plain_plus_escapes(void)
{
    char *plain = render(0, false), *col = render(0, true);

    CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
    CU_ASSERT_PTR_NOT_NULL_FATAL(col);
    CU_ASSERT_PTR_NOT_NULL(strchr(col, '\033'));
    CU_ASSERT_PTR_NULL(strchr(plain, '\033'));
    strip_ansi(col);
    CU_ASSERT_STRING_EQUAL(col, plain);
    free(plain);
    free(col);
}

/* ---- JSON schema ----------------------------------------------------- */

static json_object *
member(json_object *o, const char *k, json_type type)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, k, &v)) {
        fprintf(stderr, "JSON: missing \"%s\"\n", k);
        CU_FAIL("JSON member missing");
        return NULL;
    }
    if (!json_object_is_type(v, type)) {
        fprintf(stderr, "JSON: \"%s\" has type %s\n", k,
                json_type_to_name(json_object_get_type(v)));
        CU_FAIL("JSON member of the wrong type");
        return NULL;
    }
    return v;
}

/* An object with the five dimensions, each of one of two types. */
static void
dims(json_object *o, const char *k, json_type t1, json_type t2)
{
    static const char *names[] = {"rpm", "tpm", "rpd", "ipm", "tpd"};
    json_object *d = member(o, k, json_type_object), *v;
    unsigned i;

    if (d == NULL)
        return;
    CU_ASSERT_EQUAL(json_object_object_length(d), 5);
    for (i = 0; i < 5; i++) {
        CU_ASSERT_FATAL(json_object_object_get_ex(d, names[i], &v));
        CU_ASSERT(json_object_is_type(v, t1) || json_object_is_type(v, t2));
    }
}

static bool
one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

static const char *const healths[] = {"healthy", "cooling", "open",
                                      "half_open", "disabled", "draining",
                                      NULL};
static const char *const ops[] = {"none", "draining", "disabled", NULL};

static void
check_cell(json_object *c)
{
    json_object *v, *counts, *reasons;
    size_t i;

    member(c, "project", json_type_string);
    member(c, "model", json_type_string);
    v = member(c, "health", json_type_string);
    CU_ASSERT(v != NULL && one_of(json_object_get_string(v), healths));
    member(c, "reason", json_type_string);
    reasons = member(c, "reasons", json_type_array);
    for (i = 0; reasons && i < json_object_array_length(reasons); i++)
        CU_ASSERT(json_object_is_type(json_object_array_get_idx(reasons, i),
                                      json_type_string));
    v = member(c, "operator", json_type_string);
    CU_ASSERT(v != NULL && one_of(json_object_get_string(v), ops));
    v = member(c, "key", json_type_string);
    CU_ASSERT(v != NULL && strncmp(json_object_get_string(v), "...", 3) == 0
              && strlen(json_object_get_string(v)) <= 7);
    dims(c, "limit", json_type_int, json_type_null);
    dims(c, "config_limit", json_type_int, json_type_null);
    dims(c, "used", json_type_int, json_type_int);
    dims(c, "cooldown_s", json_type_double, json_type_int);
    dims(c, "cooldown_source", json_type_string, json_type_string);
    member(c, "learned", json_type_object);
    member(c, "circuit_s", json_type_double);
    member(c, "failures", json_type_int);
    member(c, "in_flight", json_type_int);
    counts = member(c, "counts", json_type_object);
    if (counts != NULL) {
        member(counts, "admitted", json_type_int);
        member(counts, "rejected", json_type_int);
        member(counts, "ok", json_type_int);
        member(counts, "quota_429", json_type_int);
        member(counts, "server_5xx", json_type_int);
        member(counts, "auth", json_type_int);
        member(counts, "other", json_type_int);
    }
    member(c, "quota_429_by_dim", json_type_object);
    member(c, "last_status", json_type_int);
    member(c, "last_quota_id", json_type_string);
}

/* The cell of project p and model m. */
static json_object *
find_cell(json_object *cells, const char *p, const char *m)
{
    size_t i;

    for (i = 0; i < json_object_array_length(cells); i++) {
        json_object *c = json_object_array_get_idx(cells, i), *a, *b;

        if (json_object_object_get_ex(c, "project", &a) &&
            json_object_object_get_ex(c, "model", &b) &&
            strcmp(json_object_get_string(a), p) == 0 &&
            strcmp(json_object_get_string(b), m) == 0)
            return c;
    }
    return NULL;
}

static const char *
str_at(json_object *o, const char *k)
{
    json_object *v;

    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v)
                                               : "";
}

static void
test_json_schema(void)
{
    char *out = render(1, false);
    json_object *root, *router, *reload, *summary, *projects, *cells, *c,
        *v, *w;
    regex_t iso;
    size_t i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    golden("status.json", out);
    no_secret(out);
    root = json_tokener_parse(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_FATAL(regcomp(&iso, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
                            "[0-9]{2}:[0-9]{2}Z$", REG_EXTENDED) == 0);

    router = member(root, "router", json_type_object);
    CU_ASSERT_PTR_NOT_NULL_FATAL(router);
    member(router, "pid", json_type_int);
    member(router, "alive", json_type_boolean);
    v = member(router, "config_generation", json_type_int);
    CU_ASSERT(v != NULL && json_object_get_int64(v) == 7);
    member(router, "shm", json_type_string);

    reload = member(root, "last_reload", json_type_object);
    CU_ASSERT_PTR_NOT_NULL_FATAL(reload);
    v = member(reload, "time", json_type_string);
    CU_ASSERT(v != NULL &&
              regexec(&iso, json_object_get_string(v), 0, NULL, 0) == 0);
    v = member(reload, "ok", json_type_boolean);
    CU_ASSERT(v != NULL && !json_object_get_boolean(v));
    v = member(reload, "failed", json_type_int);
    CU_ASSERT(v != NULL && json_object_get_int(v) == 1);
    member(reload, "succeeded", json_type_int);
    member(reload, "config", json_type_string);
    CU_ASSERT_STRING_EQUAL(str_at(reload, "error"),
                           "/etc/gemroute.conf:12: unknown setting 'rmp' "
                           "in models");

    v = member(root, "next_rpd_reset", json_type_string);
    CU_ASSERT(v != NULL && strcmp(json_object_get_string(v),
                                  "2026-11-29T08:00:00Z") == 0);
    member(root, "next_rpd_reset_local", json_type_string);

    summary = member(root, "summary", json_type_object);
    CU_ASSERT_PTR_NOT_NULL_FATAL(summary);
    v = member(summary, "projects", json_type_object);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(json_object_get_int(member(v, "healthy",
                                               json_type_int)), 1);
    CU_ASSERT_EQUAL(json_object_get_int(member(v, "cooling",
                                               json_type_int)), 1);
    CU_ASSERT_EQUAL(json_object_get_int(member(v, "disabled",
                                               json_type_int)), 1);
    CU_ASSERT_EQUAL(json_object_get_int(member(v, "draining",
                                               json_type_int)), 1);
    v = member(summary, "headroom", json_type_object);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    w = member(v, "gemini-2.5-flash", json_type_object);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    dims(v, "gemini-2.5-flash", json_type_double, json_type_null);
    CU_ASSERT(json_object_is_type(member(w, "ipm", json_type_null),
                                  json_type_null));

    projects = member(root, "projects", json_type_array);
    CU_ASSERT_PTR_NOT_NULL_FATAL(projects);
    CU_ASSERT_EQUAL(json_object_array_length(projects), 4);
    for (i = 0; i < json_object_array_length(projects); i++) {
        json_object *p = json_object_array_get_idx(projects, i);

        member(p, "name", json_type_string);
        v = member(p, "operator", json_type_string);
        CU_ASSERT(v != NULL && one_of(json_object_get_string(v), ops));
        member(p, "state", json_type_string);
        member(p, "slot_state", json_type_string);
        member(p, "auth_failed", json_type_boolean);
        member(p, "config_enabled", json_type_boolean);
        member(p, "keys", json_type_int);
        member(p, "key", json_type_string);
    }

    cells = member(root, "cells", json_type_array);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cells);
    CU_ASSERT_EQUAL(json_object_array_length(cells), 7);
    for (i = 0; i < json_object_array_length(cells); i++)
        check_cell(json_object_array_get_idx(cells, i));

    /* The states the table was built with. */
    c = find_cell(cells, "prod-1", "gemini-2.5-flash");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(str_at(c, "health"), "healthy");
    CU_ASSERT_STRING_EQUAL(str_at(c, "key"), "...wxyz");
    v = member(c, "limit", json_type_object);
    CU_ASSERT_EQUAL(json_object_get_int(member(v, "rpm", json_type_int)),
                    950);
    CU_ASSERT(json_object_is_type(member(v, "ipm", json_type_null),
                                  json_type_null));
    v = member(c, "used", json_type_object);
    CU_ASSERT_EQUAL(json_object_get_int(member(v, "rpd", json_type_int)),
                    812);
    c = find_cell(cells, "prod-2", "gemini-2.5-flash");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(str_at(c, "health"), "cooling");
    CU_ASSERT_STRING_EQUAL(str_at(c, "reason"), "rpd until 00:00 PT");
    v = member(c, "learned", json_type_object);
    CU_ASSERT_EQUAL(json_object_get_int(member(v, "tpm", json_type_int)),
                    250000);
    v = member(c, "limit", json_type_object);
    CU_ASSERT_EQUAL(json_object_get_int(member(v, "tpm", json_type_int)),
                    237500);    /* the learned limit, with headroom */
    v = member(c, "cooldown_source", json_type_object);
    CU_ASSERT_STRING_EQUAL(str_at(v, "rpd"), "midnight");
    c = find_cell(cells, "prod-2", "gemini-2.5-flash-image");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(str_at(c, "reason"), "rpm 26s (RetryInfo)");
    c = find_cell(cells, "lab", "gemini-2.5-flash");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(str_at(c, "health"), "disabled");
    CU_ASSERT_STRING_EQUAL(str_at(c, "reason"), "key rejected (HTTP 400)");
    c = find_cell(cells, "lab", "gemini-2.5-flash-image");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(str_at(c, "operator"), "disabled");
    c = find_cell(cells, "old-proj", "gemini-2.5-flash");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(str_at(c, "health"), "draining");
    v = member(c, "reasons", json_type_array);
    CU_ASSERT_FATAL(v != NULL && json_object_array_length(v) == 2);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(
                               json_object_array_get_idx(v, 1)),
                           "circuit open 12s (5xx)");
    /* A model the project does not serve has no cell. */
    CU_ASSERT_PTR_NULL(find_cell(cells, "old-proj",
                                 "gemini-2.5-flash-image"));
    regfree(&iso);
    json_object_put(root);
    free(out);
}

/* ---- Prometheus text format ------------------------------------------ */

struct family {
    char name[128];
    char type[16];
    bool help, done;
};

/* Parse one label set {a="x",b="y"} at *p; 0 or -1. */
static int
parse_labels(const char **pp)
{
    const char *p = *pp;

    if (*p != '{')
        return 0;
    p++;
    while (*p != '}') {
        if (!(isalpha((unsigned char)*p) || *p == '_'))
            return -1;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        if (*p++ != '=' || *p++ != '"')
            return -1;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return -1;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return -1;
            }
            p++;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return -1;
    }
    *pp = p + 1;
    return 0;
}

/*
 * A parser of the text exposition format, as strict as Prometheus's: a
 * family's HELP and TYPE come once, before its samples, which are
 * contiguous; names and labels are well formed; a sample is the name,
 * its labels, one space and a float (no timestamp: the textfile
 * collector refuses them); counters end in _total; no series twice.
 * Returns the number of samples, or -1 (with the line on stderr).
 */
static long
prom_parse(const char *text)
{
    struct family fam[64];
    unsigned nfam = 0, cur = 0, i;
    char **series = NULL;
    long nseries = 0, k;
    const char *p = text;
    long rc = 0;

    memset(fam, 0, sizeof(fam));
    while (*p && rc >= 0) {
        size_t n = strcspn(p, "\n");
        char ln[1024], name[128], type[16];
        const char *q, *lab;
        char *end;

        if (p[n] != '\n' || n >= sizeof(ln)) {
            rc = -1;
            break;
        }
        memcpy(ln, p, n);
        ln[n] = '\0';
        p += n + 1;
        if (strncmp(ln, "# HELP ", 7) == 0 || strncmp(ln, "# TYPE ", 7) == 0) {
            bool help = ln[2] == 'H';

            if (sscanf(ln + 7, "%127s %15s", name, type) < (help ? 1 : 2)) {
                rc = -1;
                break;
            }
            for (i = 0; i < nfam && strcmp(fam[i].name, name) != 0; i++)
                ;
            if (i == nfam) {
                if (nfam == 64) {
                    rc = -1;
                    break;
                }
                snprintf(fam[nfam++].name, sizeof(fam[0].name), "%s", name);
            }
            if (fam[i].done || (help ? fam[i].help : fam[i].type[0] != 0)) {
                fprintf(stderr, "prom: %s described twice or late\n", name);
                rc = -1;
                break;
            }
            if (help)
                fam[i].help = true;
            else if (strcmp(type, "counter") != 0 &&
                     strcmp(type, "gauge") != 0) {
                rc = -1;
                break;
            } else {
                snprintf(fam[i].type, sizeof(fam[i].type), "%s", type);
            }
            if (cur != i && cur < nfam && fam[cur].type[0])
                fam[cur].done = true;
            cur = i;
            continue;
        }
        if (ln[0] == '#' || ln[0] == '\0')
            continue;
        q = ln;
        if (!(isalpha((unsigned char)*q) || *q == '_' || *q == ':')) {
            rc = -1;
            break;
        }
        while (isalnum((unsigned char)*q) || *q == '_' || *q == ':')
            q++;
        snprintf(name, sizeof(name), "%.*s", (int)(q - ln), ln);
        lab = q;
        if (parse_labels(&q) != 0 || *q != ' ') {
            rc = -1;
            break;
        }
        if (cur >= nfam || strcmp(fam[cur].name, name) != 0 ||
            fam[cur].type[0] == '\0') {
            fprintf(stderr, "prom: sample of %s outside its family\n", name);
            rc = -1;
            break;
        }
        if (strcmp(fam[cur].type, "counter") == 0 &&
            (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total")))
        {
            rc = -1;
            break;
        }
        strtod(q + 1, &end);
        if (end == q + 1 || *end != '\0') {
            fprintf(stderr, "prom: bad value (or a timestamp)\n");
            rc = -1;
            break;
        }
        for (k = 0; k < nseries; k++)
            if (strncmp(series[k], ln, (size_t)(q - ln)) == 0 &&
                series[k][q - ln] == '\0')
                break;
        if (k < nseries) {
            fprintf(stderr, "prom: series twice\n");
            rc = -1;
            break;
        }
        series = realloc(series, (size_t)(nseries + 1) * sizeof(*series));
        series[nseries++] = strndup(ln, (size_t)(q - ln));
        (void)lab;
        rc++;
    }
    if (rc < 0)
        fprintf(stderr, "prom: cannot parse the line before: %.60s\n", p);
    for (k = 0; k < nseries; k++)
        free(series[k]);
    free(series);
    return rc;
}

static void
test_prometheus(void)
{
    char *out = render(2, false);
    long n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    golden("status.prom", out);
    no_secret(out);
    n = prom_parse(out);
    CU_ASSERT(n > 100);
    CU_ASSERT_PTR_NOT_NULL(strstr(out,
                                  "gemroute_reloads_total{result=\"failure\"} "
                                  "1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "gemroute_health{project=\"prod-2\","
                                       "model=\"gemini-2.5-flash\",state="
                                       "\"cooling\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "gemroute_quota_used{project=\"prod-1"
                                       "\",model=\"gemini-2.5-flash\",dim="
                                       "\"rpd\"} 812\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "gemroute_quota_limit{project=\"prod-1\","
                                   "model=\"gemini-2.5-flash\",dim=\"ipm\"}"));
    /* The parser itself refuses what Prometheus refuses. */
    CU_ASSERT_EQUAL(prom_parse("# TYPE a gauge\na 1 1700000000\n"), -1);
    CU_ASSERT_EQUAL(prom_parse("# TYPE a_total counter\na_total{x=\"\\q\"} "
                               "1\n"), -1);
    CU_ASSERT_EQUAL(prom_parse("# TYPE a counter\na 1\n"), -1);
    CU_ASSERT_EQUAL(prom_parse("a 1\n"), -1);
    CU_ASSERT_EQUAL(prom_parse("# TYPE a gauge\na 1\na 2\n"), -1);
    CU_ASSERT_EQUAL(prom_parse("# TYPE a gauge\n# TYPE b gauge\nb 1\n"
                               "# TYPE a gauge\n"), -1);
    CU_ASSERT_EQUAL(prom_parse("# TYPE a gauge\na{x=\"1\",y=\"\\\"\"} 1.5\n"),
                    1);
    free(out);
}

/* A healthy table and the pool: headroom over the cells in rotation. */
static void
test_pool_and_counts(void)
{
    const struct gr_stat_model *m = &snap.models[0];

    CU_ASSERT_EQUAL(snap.n_projects, 4);
    CU_ASSERT_EQUAL(snap.healthy, 1);
    CU_ASSERT_EQUAL(snap.cooling, 1);
    CU_ASSERT_EQUAL(snap.disabled, 1);
    CU_ASSERT_EQUAL(snap.draining, 1);
    /* flash: prod-1 and prod-2 are in rotation, only prod-1 takes calls. */
    CU_ASSERT_EQUAL(m->capacity[GR_D_RPM], 950 + 950);
    CU_ASSERT_EQUAL(m->room[GR_D_RPM], 950 - 350);
    CU_ASSERT_EQUAL(m->capacity[GR_D_TPM], 950000 + 237500);
    CU_ASSERT(m->unlimited[GR_D_IPM]);
    CU_ASSERT_EQUAL(snap.next_rpd_reset_s,
                    (gr_shm_days_from_civil(2026, 11, 29) * 86400 +
                     8 * 3600));
}

/* Write a header string as the router does: under text_seq. */
static void
put_text(char *dst, const char *v, size_t n)
{
    char buf[GR_SHM_URL_MAX] = {0};

    snprintf(buf, sizeof(buf), "%s", v);
    gr_shm_seq_write_begin(&tab.hdr->text_seq);
    gr_shm_seq_copy_in(dst, buf, n);
    gr_shm_seq_write_end(&tab.hdr->text_seq);
}

static void
url_is(const char *in, const char *want)
{
    char out[GR_URL_MAX];

    CU_ASSERT_STRING_EQUAL(gr_stat_url_safe(in, out, sizeof(out)), want);
}

/* Issue 13 item 15: a base_url's user:password@ is never displayed. */
static void
test_item15_url_credentials(void)
{
    struct gr_stat_snap s;
    struct gr_stat_router r;
    char small[12];
    char *out;
    int view;

    url_is("https://user:SECRET-pw@proxy.example/v1",
           "https://proxy.example/v1");
    url_is("http://u@127.0.0.1:8080", "http://127.0.0.1:8080");
    url_is("https://a:b@c@host?x=1", "https://host?x=1");  /* last '@' */
    url_is("https://host/path@not-userinfo", "https://host/path@not-userinfo");
    url_is("https://generativelanguage.googleapis.com",
           "https://generativelanguage.googleapis.com");
    url_is("user:SECRET@host", "host");
    url_is("", "");
    CU_ASSERT_STRING_EQUAL(gr_stat_url_safe("https://u:p@hostname.example",
                                            small, sizeof(small)),
                           "https://hos");     /* cut, still terminated */

    put_text(tab.hdr->base_url, "https://gruser:SECRET-pw@gw.example:8443/g",
             sizeof(tab.hdr->base_url));
    CU_ASSERT_FATAL(gr_stat_take_at(st, &s, NOW_MONO, now_wall) == GR_OK);
    CU_ASSERT_STRING_EQUAL(s.base_url, "https://gw.example:8443/g");
    gr_stat_router(st, &r);
    CU_ASSERT_STRING_EQUAL(r.base_url, "https://gw.example:8443/g");
    for (view = 0; view < 3; view++) {
        out = render_of(&s, view, view == 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        CU_ASSERT_PTR_NULL(strstr(out, "SECRET"));
        CU_ASSERT_PTR_NULL(strstr(out, "gruser"));
        if (view == 1)
            CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"base_url\": "
                                          "\"https://gw.example:8443/g\""));
        free(out);
    }
    gr_stat_free(&s);
    put_text(tab.hdr->base_url, "https://generativelanguage.googleapis.com",
             sizeof(tab.hdr->base_url));
}

/*
 * A seqlock that never settles (a router killed mid-write leaves it odd):
 * the snapshot says so and shows none of the torn bytes.
 */
static void
test_torn_is_never_shown(void)
{
    struct gr_stat_snap s;
    json_object *root, *torn;
    char *out;

    /* The header's text, torn. */
    gr_shm_seq_write_begin(&tab.hdr->text_seq);
    CU_ASSERT_FATAL(gr_stat_take_at(st, &s, NOW_MONO, now_wall) == GR_OK);
    CU_ASSERT_FALSE(s.text_ok);
    CU_ASSERT_STRING_EQUAL(s.base_url, "");
    CU_ASSERT_STRING_EQUAL(s.config_path, "");
    CU_ASSERT_STRING_EQUAL(s.last_reload_error, "");
    CU_ASSERT_EQUAL(s.n_projects, 4);       /* the rest is shown */
    out = render_of(&s, 0, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "router text (config, last error, "
                                  "base URL): torn/unavailable"));
    CU_ASSERT_PTR_NULL(strstr(out, "unknown setting"));
    free(out);
    out = render_of(&s, 1, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    root = json_tokener_parse(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT(json_object_object_get_ex(root, "torn", &torn));
    CU_ASSERT_PTR_NULL(strstr(out, "googleapis"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"base_url\": null"));
    json_object_put(root);
    free(out);
    gr_stat_free(&s);
    gr_shm_seq_write_end(&tab.hdr->text_seq);

    /* A project slot, torn: skipped and counted, its name never shown. */
    gr_shm_seq_write_begin(&tab.projects[1].seq);
    CU_ASSERT_FATAL(gr_stat_take_at(st, &s, NOW_MONO, now_wall) == GR_OK);
    CU_ASSERT(s.text_ok);
    CU_ASSERT_EQUAL(s.n_torn, 1);
    CU_ASSERT_EQUAL(s.n_projects, 3);
    out = render_of(&s, 0, false);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NULL(strstr(out, "prod-2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "1 project slot torn/unavailable: "
                                  "not shown"));
    free(out);
    gr_stat_free(&s);

    /* The model names, torn: no cell is shown under a guessed name. */
    gr_shm_seq_write_begin(&tab.hdr->models_seq);
    CU_ASSERT_FATAL(gr_stat_take_at(st, &s, NOW_MONO, now_wall) == GR_OK);
    CU_ASSERT_FALSE(s.models_ok);
    CU_ASSERT_EQUAL(s.n_cells, 0);
    gr_stat_free(&s);
    gr_shm_seq_write_end(&tab.hdr->models_seq);
    gr_shm_seq_write_end(&tab.projects[1].seq);

    /* Settled again: everything is back. */
    CU_ASSERT_FATAL(gr_stat_take_at(st, &s, NOW_MONO, now_wall) == GR_OK);
    CU_ASSERT(s.text_ok && s.models_ok);
    CU_ASSERT_EQUAL(s.n_torn, 0);
    CU_ASSERT_EQUAL(s.n_cells, snap.n_cells);
    gr_stat_free(&s);
}

/* The seqlock reader: true on a settled counter, false (after a bounded
 * number of tries, never a wait) on one a writer left odd. */
static int copies;

static void
count_copy(void *arg)
{
    (void)arg;
    copies++;
}

static void
test_seq_read_bounded(void)
{
    _Atomic uint32_t seq = 4;

    copies = 0;
    CU_ASSERT(gr_shm_seq_read(&seq, count_copy, NULL));
    CU_ASSERT_EQUAL(copies, 1);
    atomic_store(&seq, 5);
    copies = 0;
    CU_ASSERT_FALSE(gr_shm_seq_read(&seq, count_copy, NULL));
    CU_ASSERT_EQUAL(copies, 0);     /* an odd counter is never copied */
}

/* Mappings of the test's segment by permissions: r--s and rw-s. */
static void
count_maps(int *ro, int *rw)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512], name[96];

    *ro = *rw = 0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    snprintf(name, sizeof(name), "/dev/shm%s", shm);
    while (fgets(line, sizeof(line), f) != NULL) {
        char perms[8] = "";

        if (strstr(line, name) == NULL ||
            sscanf(line, "%*s %7s", perms) != 1)
            continue;
        *ro += strcmp(perms, "r--s") == 0;
        *rw += strcmp(perms, "rw-s") == 0;
    }
    fclose(f);
}

/* The snapshot API maps the table read-only: what gr_stat_open() adds
 * is r--s, never rw-s. */
static void
test_mapping_is_read_only(void)
{
    int ro0, rw0, ro1, rw1;
    char err[256];
    struct gr_stat *st2;

    count_maps(&ro0, &rw0);
    st2 = gr_stat_open(shm, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(st2);
    count_maps(&ro1, &rw1);
    gr_stat_close(st2);
    CU_ASSERT(ro1 > ro0);
    CU_ASSERT_EQUAL(rw1, rw0);
    CU_ASSERT(rw0 > 0);         /* the test's own mapping is seen */
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"table: golden, 100 columns, no key", test_table_golden},
        {"colour table = plain table + escapes",
         test_colour_is_plain_plus_escapes},
        {"JSON: schema and values", test_json_schema},
        {"Prometheus: golden and exposition format", test_prometheus},
        {"summary: projects and pool headroom", test_pool_and_counts},
        {"item 15: base_url credentials are never displayed",
         test_item15_url_credentials},
        {"torn: a seqlock that never settles is reported, never shown",
         test_torn_is_never_shown},
        {"seqlock reader: bounded, reports failure", test_seq_read_bounded},
        {"snapshot API: the table is mapped read-only",
         test_mapping_is_read_only},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"status", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_status", suites, 30);
}
