/*
 * test_mock_batch.c - gemroute-mock's batch mode, driven directly (no
 * HTTP): the routes it parses, a job's states as the mock's clock moves
 * (instants are passed in: nothing sleeps), the per-project ownership,
 * the batch_tokens and batch_jobs limits (a refused job costs nothing),
 * inline results and a file job's result file, cancel and delete.
 * tests/batch/run_batch.sh drives the same over HTTP.
 */
#include "batchjobs.h"
#include "mock.h"
#include "request.h"
#include "testlib.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS INT64_C(1000000000)
#define T0 (INT64_C(1800000000) * NS)
#define PENDING (10 * NS)
#define RUNNING (20 * NS)

static const char one[] =
    "{\"batch\": {\"displayName\": \"d\", \"inputConfig\": {\"requests\": "
    "{\"requests\": [{\"request\": {\"contents\": [{\"parts\": [{\"text\": "
    "\"abcdabcd\"}]}]}, \"metadata\": {\"key\": \"k1\"}}, {\"request\": "
    "{\"contents\": [{\"parts\": [{\"text\": \"abcd\"}]}]}}]}}}}";

static const char jsonl[] =
    "{\"key\": \"a\", \"request\": {\"contents\": [{\"parts\": [{\"text\": "
    "\"abcdabcdabcd\"}]}]}}\n"
    "\n"
    "{\"key\": \"b\", \"request\": {\"contents\": [{\"parts\": [{\"text\": "
    "\"abcd\"}]}]}}\n";

/* Project 1 owns files/in1; nobody owns anything else. */
static int
file_ok(void *arg, const char *id, char **data, size_t *len)
{
    uint32_t project = *(const uint32_t *)arg;

    if (project != 1 || strcmp(id, "in1") != 0)
        return -EACCES;
    *data = strdup(jsonl);
    *len = strlen(jsonl);
    return *data != NULL ? 0 : -ENOMEM;
}

static const struct gr_mock_batch_limits unlimited = {GR_MOCK_UNLIMITED,
                                                       GR_MOCK_UNLIMITED};

/* Submit body for project at now: the job's id ("" when refused). */
static int
submit(struct gr_mock_batchjobs *bs, uint32_t project, const char *body,
       int64_t now, const struct gr_mock_batch_limits *lim, char id[64],
       int *which)
{
    struct gr_mock_buf out = {0};
    char msg[256];
    int64_t limit;
    uint32_t p = project;
    int rc;

    id[0] = '\0';
    rc = gr_mock_batchjobs_create(bs, project, "gemini-2.5-flash", body,
                                  strlen(body), now, lim, file_ok, &p, &out,
                                  msg, sizeof(msg), which, &limit);
    if (rc == 0) {
        const char *n = strstr(out.data, "\"batches/");

        CU_ASSERT_PTR_NOT_NULL_FATAL(n);
        snprintf(id, 64, "%.16s", n + 9);
        CU_ASSERT(strstr(out.data, "BATCH_STATE_PENDING") != NULL);
    }
    gr_mock_buf_free(&out);
    return rc;
}

static bool
state_is(struct gr_mock_batchjobs *bs, uint32_t project, const char *id,
         int64_t now, const char *state, const char *also)
{
    struct gr_mock_buf out = {0};
    bool ok;

    ok = gr_mock_batchjobs_get(bs, project, id, now, &out) == 0 &&
         strstr(out.data, state) != NULL &&
         (also == NULL || strstr(out.data, also) != NULL);
    gr_mock_buf_free(&out);
    return ok;
}

static void
test_routes(void)
{
    struct gr_mock_route r;

    gr_mock_route_parse("POST",
                        "/v1beta/models/gemini-2.5-flash:batchGenerateContent",
                        &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_BATCH_CREATE);
    CU_ASSERT_STRING_EQUAL(r.model, "gemini-2.5-flash");
    gr_mock_route_parse("GET", "/v1beta/models/m:batchGenerateContent", &r);
    CU_ASSERT_NOT_EQUAL(r.kind, GR_MOCK_ROUTE_BATCH_CREATE);
    gr_mock_route_parse("GET", "/v1beta/batches/abc123", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_BATCH_GET);
    CU_ASSERT_STRING_EQUAL(r.file, "abc123");
    gr_mock_route_parse("POST", "/v1beta/batches/abc123:cancel", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_BATCH_CANCEL);
    CU_ASSERT_STRING_EQUAL(r.file, "abc123");
    gr_mock_route_parse("DELETE", "/v1/batches/abc123", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_BATCH_DELETE);
    gr_mock_route_parse("GET", "/v1beta/batches", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_BATCHES_LIST);
    gr_mock_route_parse("GET", "/v1beta/batches/../x", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("GET",
                        "/download/v1beta/files/batch-abc:download", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_FILE_DOWNLOAD);
    CU_ASSERT_STRING_EQUAL(r.file, "batch-abc");
    gr_mock_route_parse("GET", "/download/v1beta/models", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
}

static void
test_states_and_owner(void)
{
    struct gr_mock_batchjobs *bs;
    struct gr_mock_batch_usage u;
    struct gr_mock_buf out = {0};
    char id[64];
    int which;

    CU_ASSERT_FATAL(gr_mock_batchjobs_new(PENDING, RUNNING, &bs) == 0);
    CU_ASSERT_FATAL(submit(bs, 0, one, T0, &unlimited, id, &which) == 0);
    CU_ASSERT(state_is(bs, 0, id, T0 + PENDING - 1, "BATCH_STATE_PENDING",
                       "\"requestCount\": \"2\""));
    CU_ASSERT(state_is(bs, 0, id, T0 + PENDING, "BATCH_STATE_RUNNING",
                       NULL));
    CU_ASSERT(state_is(bs, 0, id, T0 + PENDING + RUNNING,
                       "BATCH_STATE_SUCCEEDED", "\"done\": true"));
    /* inline results, in metadata.output and response, with the keys */
    CU_ASSERT(gr_mock_batchjobs_get(bs, 0, id, T0 + PENDING + RUNNING,
                                    &out) == 0);
    CU_ASSERT(strstr(out.data, "GenerateContentBatchOutput") != NULL);
    CU_ASSERT(strstr(out.data, "\"inlinedResponses\": {\"inlinedResponses\"")
              != NULL);
    CU_ASSERT(strstr(out.data, "\"key\":\"k1\"") != NULL);
    CU_ASSERT(strstr(out.data, "\"promptTokenCount\": 2") != NULL);
    gr_mock_buf_free(&out);
    /* another project: 403 material, on every route */
    CU_ASSERT(gr_mock_batchjobs_get(bs, 1, id, T0, &out) == -EACCES);
    CU_ASSERT(gr_mock_batchjobs_cancel(bs, 1, id, T0) == -EACCES);
    CU_ASSERT(gr_mock_batchjobs_delete(bs, 1, id) == -EACCES);
    gr_mock_buf_free(&out);
    gr_mock_batchjobs_usage(bs, 0, T0, &u);
    CU_ASSERT_EQUAL(u.unfinished, 1);
    CU_ASSERT_EQUAL(u.tokens, 3);       /* 2 + 1: per request, rounded up */
    CU_ASSERT_EQUAL(u.submitted, 1);
    /* cancel: CANCELLED and done; delete: gone */
    CU_ASSERT(gr_mock_batchjobs_cancel(bs, 0, id, T0 + 1) == 0);
    CU_ASSERT(state_is(bs, 0, id, T0 + 2, "BATCH_STATE_CANCELLED",
                       "\"done\": true"));
    CU_ASSERT(gr_mock_batchjobs_delete(bs, 0, id) == 0);
    CU_ASSERT(gr_mock_batchjobs_get(bs, 0, id, T0, &out) == -EACCES);
    gr_mock_buf_free(&out);
    gr_mock_batchjobs_free(bs);
}

static void
test_limits(void)
{
    struct gr_mock_batchjobs *bs;
    struct gr_mock_batch_limits lim = {5, 2};
    struct gr_mock_batch_usage u;
    char a[64], b[64], c[64];
    int which;

    CU_ASSERT_FATAL(gr_mock_batchjobs_new(PENDING, RUNNING, &bs) == 0);
    CU_ASSERT(submit(bs, 0, one, T0, &lim, a, &which) == 0);    /* 3 */
    CU_ASSERT(submit(bs, 0, one, T0, &lim, b, &which) == -EAGAIN);
    CU_ASSERT_EQUAL(which, GR_MOCK_BATCH_TOKENS);               /* 6 > 5 */
    lim.tokens = 6;
    CU_ASSERT(submit(bs, 0, one, T0, &lim, b, &which) == 0);
    lim.tokens = 100;
    CU_ASSERT(submit(bs, 0, one, T0, &lim, c, &which) == -EAGAIN);
    CU_ASSERT_EQUAL(which, GR_MOCK_BATCH_JOBS);                 /* 3 > 2 */
    /* another project has pools of its own */
    CU_ASSERT(submit(bs, 1, one, T0, &lim, c, &which) == 0);
    /* finished jobs hold nothing */
    CU_ASSERT(submit(bs, 0, one, T0 + PENDING + RUNNING, &lim, c,
                     &which) == 0);
    gr_mock_batchjobs_usage(bs, 0, T0 + PENDING + RUNNING, &u);
    CU_ASSERT_EQUAL(u.unfinished, 1);
    CU_ASSERT_EQUAL(u.done, 2);
    CU_ASSERT_EQUAL(u.quota_429, 2);
    CU_ASSERT_EQUAL(u.submitted, 3);
    gr_mock_batchjobs_reset(bs);
    gr_mock_batchjobs_usage(bs, 0, T0, &u);
    CU_ASSERT_EQUAL(u.submitted + u.unfinished + u.quota_429, 0);
    gr_mock_batchjobs_free(bs);
}

static void
test_file_job(void)
{
    struct gr_mock_batchjobs *bs;
    struct gr_mock_buf out = {0};
    char id[64], fid[80];
    int which;

    CU_ASSERT_FATAL(gr_mock_batchjobs_new(PENDING, RUNNING, &bs) == 0);
    CU_ASSERT(submit(bs, 0, "{\"batch\": {\"inputConfig\": {\"fileName\": "
                     "\"files/in1\"}}}", T0, &unlimited, id,
                     &which) == -EACCES);        /* project 1's file */
    CU_ASSERT(submit(bs, 1, "{\"batch\": {\"inputConfig\": {\"fileName\": "
                     "\"files/in1\"}}}", T0, &unlimited, id, &which) == 0);
    CU_ASSERT(state_is(bs, 1, id, T0, "\"requestCount\": \"2\"", NULL));
    snprintf(fid, sizeof(fid), "batch-%s", id);
    /* no result file before the end, nor for another project */
    CU_ASSERT(gr_mock_batchjobs_result_file(bs, 1, fid, T0, &out) == -EACCES);
    CU_ASSERT(state_is(bs, 1, id, T0 + PENDING + RUNNING,
                       "\"responsesFile\": \"files/batch-", NULL));
    CU_ASSERT(gr_mock_batchjobs_result_file(bs, 0, fid,
                                            T0 + PENDING + RUNNING,
                                            &out) == -EACCES);
    CU_ASSERT(gr_mock_batchjobs_result_file(bs, 1, fid,
                                            T0 + PENDING + RUNNING,
                                            &out) == 0);
    CU_ASSERT(out.data != NULL && strstr(out.data, "\"key\": \"a\"") != NULL &&
              strstr(out.data, "\"key\": \"b\"") != NULL);
    CU_ASSERT(out.data != NULL && strstr(out.data, "\"promptTokenCount\": 3")
              != NULL);
    gr_mock_buf_free(&out);
    /* garbage bodies are 400 material, never a crash */
    CU_ASSERT(submit(bs, 0, "{", T0, &unlimited, id, &which) == -EINVAL);
    CU_ASSERT(submit(bs, 0, "{\"batch\": {\"inputConfig\": {\"requests\": "
                     "{\"requests\": []}}}}", T0, &unlimited, id,
                     &which) == -EINVAL);
    CU_ASSERT(submit(bs, 0, "{\"batch\": {\"inputConfig\": {\"fileName\": "
                     "7}}}", T0, &unlimited, id, &which) == -EINVAL);
    gr_mock_batchjobs_free(bs);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"routes", test_routes},
        {"states and ownership", test_states_and_owner},
        {"batch_tokens and batch_jobs", test_limits},
        {"a file job and its result file", test_file_job},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"mock batch", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_mock_batch", suites, 60);
}
