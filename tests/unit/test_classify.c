/*
 * test_classify.c - client/classify.c: gr_classify() on every real
 * Gemini answer we hold (tests/fixtures/gemini) and on each rule of issue
 * 4 one by one.  (The usage, status and SSE readers of client/response.c
 * are tested in test_response.c.)
 *
 * Every body is handed to the code under test in a heap buffer of
 * exactly its length, without a NUL, so a read past len is a crash under
 * ASan and an error under valgrind rather than a silent pass.
 */
#include "clock.h"
#include "gemroute.h"
#include "response_priv.h"
#include "testlib.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed instants: 2026-07-15 20:00 UTC (PDT) and 2026-12-15 12:00 UTC. */
static int64_t
utc(int y, unsigned m, unsigned d, int hh, int mm, int ss)
{
    return gr_shm_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

#define NOW_SUMMER utc(2026, 7, 15, 20, 0, 0)
#define NOW_WINTER utc(2026, 12, 15, 12, 0, 0)

/* body copied to a buffer of exactly len bytes, then classified */
static void
classify_n(int status, const char *body, size_t len, int64_t now,
           struct gr_verdict *v)
{
    char *copy = NULL;

    if (len > 0) {
        copy = malloc(len);
        CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
        memcpy(copy, body, len);
    }
    gr_classify(status, copy, len, now, v);
    free(copy);
    /* whatever the input, the verdict is well-formed */
    CU_ASSERT(v->status == status);
    CU_ASSERT(v->n_quota_ids <= GR_MAX_QUOTA_IDS);
    CU_ASSERT(memchr(v->reason, '\0', sizeof(v->reason)) != NULL);
    CU_ASSERT(v->reason[0] != '\0');
    CU_ASSERT(v->cooldown_s >= 0 && v->cooldown_s <= 90000);
    CU_ASSERT((v->dims & ~((1u << GR_NDIMS) - 1)) == 0);
}

static void
classify(int status, const char *body, struct gr_verdict *v)
{
    classify_n(status, body, body != NULL ? strlen(body) : 0, NOW_SUMMER, v);
}

/* gr_resp_status() of s, from an exact-size buffer */
static int
status_of(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, s, len);
    rc = gr_resp_status(copy, len);
    free(copy);
    return rc;
}

static double
to_midnight(int64_t now)
{
    return (double)(gr_shm_next_pacific_midnight(now) - now);
}

static bool
near(double a, double b)
{
    return fabs(a - b) < 1e-6;
}

static bool
has_id(const struct gr_verdict *v, const char *id)
{
    unsigned i;

    for (i = 0; i < v->n_quota_ids; i++)
        if (strcmp(v->quota_ids[i], id) == 0)
            return true;
    return false;
}

static bool
no_learned(const struct gr_verdict *v)
{
    int d;

    for (d = 0; d < GR_NDIMS; d++)
        if (v->learned[d] != -1)
            return false;
    return true;
}

static char *
fixture(const char *name, size_t *len)
{
    return gr_test_fixture(name, len);
}

/* --- the real answers ---------------------------------------------------- */

static const struct expect {
    const char *file;
    int status;
    enum gr_class cls;
    unsigned dims;
    enum gr_cool_src src;
    double cooldown_s;
    enum gr_disable disable;
    bool retryable;
    int64_t tpm;            /* learned[TPM] */
    const char *quota_id;
} expects[] = {
    {"200-generate-content.json", 200, GR_CLASS_OK, 0, GR_COOL_NONE, 0,
     GR_DISABLE_NONE, false, -1, NULL},
    {"200-stream-sse-thinking.txt", 200, GR_CLASS_OK, 0, GR_COOL_NONE, 0,
     GR_DISABLE_NONE, false, -1, NULL},
    {"400-api-key-invalid.json", 400, GR_CLASS_AUTH, 0, GR_COOL_NONE, 0,
     GR_DISABLE_KEY, true, -1, NULL},
    {"403-leaked-key.json", 403, GR_CLASS_AUTH, 0, GR_COOL_NONE, 0,
     GR_DISABLE_KEY, true, -1, NULL},
    {"404-model-not-found.json", 404, GR_CLASS_MODEL, 0, GR_COOL_NONE, 0,
     GR_DISABLE_CELL, true, -1, NULL},
    {"429-bare-no-details.json", 429, GR_CLASS_QUOTA, 0, GR_COOL_BACKOFF, 1.0,
     GR_DISABLE_NONE, true, -1, NULL},
    {"429-tpm-freetier-flash.json", 429, GR_CLASS_QUOTA,
     GR_DIM_BIT(GR_DIM_TPM), GR_COOL_RETRYINFO, 26.0, GR_DISABLE_NONE, true,
     250000, "GenerateContentInputTokensPerModelPerMinute-FreeTier"},
    {"429-tpm-freetier-pro-no-retryinfo.json", 429, GR_CLASS_QUOTA,
     GR_DIM_BIT(GR_DIM_TPM), GR_COOL_BACKOFF, 1.0, GR_DISABLE_NONE, true,
     125000, "GenerateContentInputTokensPerModelPerMinute-FreeTier"},
    {"500-internal.json", 500, GR_CLASS_SERVER, 0, GR_COOL_NONE, 0,
     GR_DISABLE_NONE, true, -1, NULL},
    {"503-overloaded.json", 503, GR_CLASS_OVERLOAD, 0, GR_COOL_NONE, 0,
     GR_DISABLE_NONE, true, -1, NULL},
};

#define NEXPECTS (sizeof(expects) / sizeof(expects[0]))

static void
test_known_samples(void)
{
    size_t i, len = 0;

    for (i = 0; i < NEXPECTS; i++) {
        const struct expect *e = &expects[i];
        struct gr_verdict v;
        char *body = fixture(e->file, &len);

        CU_ASSERT_PTR_NOT_NULL(body);
        if (body == NULL)
            continue;
        classify_n(e->status, body, len, NOW_SUMMER, &v);
        if (v.cls != e->cls || v.dims != e->dims || v.cooldown_src != e->src ||
            !near(v.cooldown_s, e->cooldown_s) || v.disable != e->disable ||
            v.retryable != e->retryable || v.learned[GR_DIM_TPM] != e->tpm)
            fprintf(stderr, "\n%s: %s\n", e->file, v.reason);
        CU_ASSERT_EQUAL(v.cls, e->cls);
        CU_ASSERT_EQUAL(v.dims, e->dims);
        CU_ASSERT_EQUAL(v.cooldown_src, e->src);
        CU_ASSERT(near(v.cooldown_s, e->cooldown_s));
        CU_ASSERT_EQUAL(v.disable, e->disable);
        CU_ASSERT_EQUAL(v.retryable, e->retryable);
        CU_ASSERT_EQUAL(v.learned[GR_DIM_TPM], e->tpm);
        CU_ASSERT_EQUAL(v.learned[GR_DIM_RPM], -1);
        CU_ASSERT_EQUAL(v.learned[GR_DIM_RPD], -1);
        if (e->quota_id != NULL) {
            CU_ASSERT_EQUAL(v.n_quota_ids, 1);
            CU_ASSERT(has_id(&v, e->quota_id));
        } else {
            CU_ASSERT_EQUAL(v.n_quota_ids, 0);
        }
        /* the status the body states is the one it came with */
        CU_ASSERT_EQUAL(gr_resp_status(body, len), e->status);
        free(body);
    }
}

/* What the status alone must give, for samples this test does not know. */
static void
check_by_status(const char *name, int status, const struct gr_verdict *v)
{
    bool ok;

    if (status >= 200 && status < 300)
        ok = v->cls == GR_CLASS_OK;
    else if (status == 429)
        ok = v->cls == GR_CLASS_QUOTA && v->retryable;
    else if (status == 503)
        ok = v->cls == GR_CLASS_OVERLOAD && v->disable == GR_DISABLE_NONE;
    else if (status == 0 || (status >= 500 && status <= 599))
        ok = v->cls == GR_CLASS_SERVER && v->disable == GR_DISABLE_NONE;
    else if (status == 401 || status == 403)
        /* the body says whom to blame (tests/unit/test_blame.c) */
        ok = (v->cls == GR_CLASS_AUTH && v->retryable &&
              (v->disable == GR_DISABLE_PROJECT ||
               v->disable == GR_DISABLE_KEY)) ||
             (v->cls == GR_CLASS_MODEL && v->disable == GR_DISABLE_CELL) ||
             (v->cls == GR_CLASS_REQUEST && !v->retryable &&
              v->disable == GR_DISABLE_NONE);
    else if (status == 404)
        ok = (v->cls == GR_CLASS_MODEL && v->disable == GR_DISABLE_CELL) ||
             (v->cls == GR_CLASS_REQUEST && !v->retryable &&
              v->disable == GR_DISABLE_NONE);
    else if (status == 400)
        ok = v->cls == GR_CLASS_AUTH || v->cls == GR_CLASS_REQUEST;
    else if (status == 408)
        ok = v->cls == GR_CLASS_SERVER;
    else if (status > 400 && status <= 499)
        ok = v->cls == GR_CLASS_REQUEST && !v->retryable;
    else
        ok = v->cls == GR_CLASS_UNKNOWN && !v->retryable;
    if (!ok)
        fprintf(stderr, "\n%s: %s\n", name, v->reason);
    CU_ASSERT(ok);
}

/* Every file in the fixture folder. */
static void
test_every_sample_file(void)
{
    DIR *dir = opendir(GR_TEST_FIXTURES);
    struct dirent *de;
    unsigned seen = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    while ((de = readdir(dir)) != NULL) {
        char path[512];
        struct gr_verdict v;
        size_t len = 0;
        char *body;
        int status;

        if (de->d_name[0] < '1' || de->d_name[0] > '5')
            continue;   /* README.md, ., .. */
        status = atoi(de->d_name);
        snprintf(path, sizeof(path), "%s/%s", GR_TEST_FIXTURES,
                 de->d_name);
        if ((body = gr_test_fixture(de->d_name, &len)) == NULL)
            continue;
        classify_n(status, body, len, NOW_SUMMER, &v);
        check_by_status(path, status, &v);
        /* and as a stream would wrap it */
        if (body[0] == '{') {
            char *wrapped = malloc(len + 2);

            CU_ASSERT_PTR_NOT_NULL_FATAL(wrapped);
            wrapped[0] = '[';
            memcpy(wrapped + 1, body, len);
            wrapped[len + 1] = ']';
            {
                struct gr_verdict w;

                classify_n(status, wrapped, len + 2, NOW_SUMMER, &w);
                CU_ASSERT_EQUAL(w.cls, v.cls);
                CU_ASSERT_EQUAL(w.dims, v.dims);
                CU_ASSERT_EQUAL(w.cooldown_src, v.cooldown_src);
                CU_ASSERT_EQUAL(w.disable, v.disable);
                CU_ASSERT_EQUAL(memcmp(w.learned, v.learned,
                                       sizeof(v.learned)), 0);
            }
            free(wrapped);
        }
        free(body);
        seen++;
    }
    closedir(dir);
    CU_ASSERT(seen >= NEXPECTS);
}

/* A 429 cut at every length is still a quota 429, never a crash. */
/*
 * Tokens per day, on the fixture of its real shape: the TPD dimension
 * alone, cooled until Pacific midnight whatever RetryInfo says (41 s
 * there), the stated limit learned in tokens.
 */
static void
test_tpd_sample(void)
{
    size_t len = 0;
    char *body = fixture("429-tpd-freetier-gemma.json", &len);
    struct gr_verdict v;

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    classify_n(429, body, len, NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_TPD));
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MIDNIGHT);
    CU_ASSERT(v.cooldown_s > 3600.0);
    CU_ASSERT_EQUAL(v.learned[GR_DIM_TPD], 1000000);
    CU_ASSERT_EQUAL(v.learned[GR_DIM_TPM], -1);
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPD], -1);
    CU_ASSERT(has_id(&v, "GenerateContentInputTokensPerModelPerDay-FreeTier"));
    CU_ASSERT_PTR_NOT_NULL(strstr(v.reason, "input tokens per day"));
    CU_ASSERT_STRING_EQUAL(gr_dim_name(GR_DIM_TPD), "tpd");
    free(body);
}

static void
test_truncated_samples(void)
{
    const char *files[] = {"429-tpm-freetier-flash.json",
                           "400-api-key-invalid.json"};
    size_t f, len = 0, cut;

    for (f = 0; f < 2; f++) {
        char *body = fixture(files[f], &len);
        int status = atoi(files[f]);

        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        for (cut = 0; cut < len; cut++) {
            struct gr_verdict v;

            classify_n(status, body, cut, NOW_SUMMER, &v);
            if (status == 429) {
                CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
                CU_ASSERT(v.dims == 0 || v.dims == GR_DIM_BIT(GR_DIM_TPM));
            } else {
                CU_ASSERT(v.cls == GR_CLASS_REQUEST || v.cls == GR_CLASS_AUTH);
            }
        }
        free(body);
    }
}

/* --- 429 rules, one by one ------------------------------------------------ */

#define QF "type.googleapis.com/google.rpc.QuotaFailure"
#define RI "type.googleapis.com/google.rpc.RetryInfo"
#define EI "type.googleapis.com/google.rpc.ErrorInfo"

static void
test_errorinfo_rate_limit(void)
{
    struct gr_verdict v;

    classify(429,
             "{\"error\": {\"code\": 429, \"message\": \"Resource has been "
             "exhausted (e.g. check quota).\", \"status\": "
             "\"RESOURCE_EXHAUSTED\", \"details\": [{\"@type\": \"" EI "\", "
             "\"reason\": \"RATE_LIMIT_EXCEEDED\", \"domain\": "
             "\"googleapis.com\", \"metadata\": {\"service\": "
             "\"generativelanguage.googleapis.com\", \"quota_metric\": "
             "\"generativelanguage.googleapis.com/generate_requests_per_"
             "model\", \"quota_limit\": \"GenerateRequestsPerMinutePer"
             "ProjectPerModel\","
             " \"quota_limit_value\": \"15\", \"consumer\": "
             "\"projects/1234\"}}]}}",
             &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM));
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPM], 15);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_BACKOFF);
    CU_ASSERT(v.retryable);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
    CU_ASSERT(has_id(&v, "GenerateRequestsPerMinutePerProjectPerModel"));

    /* the same for a day quota, with a short RetryInfo that must lose */
    classify(429,
             "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" RI "\","
             " \"retryDelay\": \"3s\"}, {\"@type\": \"" EI "\", \"reason\": "
             "\"RATE_LIMIT_EXCEEDED\", \"metadata\": {\"quota_limit\": "
             "\"GenerateRequestsPerDayPerProjectPerModel\", "
             "\"quota_limit_value\": \"1500\"}}]}}",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPD));
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPD], 1500);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MIDNIGHT);
    CU_ASSERT(near(v.cooldown_s, to_midnight(NOW_SUMMER)));
}

static const char minute_and_day[] =
    "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", "
    "\"message\": \"You exceeded your current quota.\", \"details\": ["
    "{\"@type\": \"" QF "\", \"violations\": ["
    "{\"quotaMetric\": \"generativelanguage.googleapis.com/"
    "generate_content_free_tier_requests\", \"quotaId\": "
    "\"GenerateRequestsPerDayPerProjectPerModel-FreeTier\", "
    "\"quotaDimensions\": {\"location\": \"global\", \"model\": "
    "\"gemini-2.5-flash\"}, \"quotaValue\": \"250\"},"
    "{\"quotaMetric\": \"generativelanguage.googleapis.com/"
    "generate_content_free_tier_requests\", \"quotaId\": "
    "\"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\", "
    "\"quotaValue\": \"10\"}]},"
    "{\"@type\": \"" RI "\", \"retryDelay\": \"47.434392449s\"}]}}";

static void
test_minute_and_day_together(void)
{
    struct gr_verdict v;

    classify(429, minute_and_day, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM) | GR_DIM_BIT(GR_DIM_RPD));
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPD], 250);
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPM], 10);
    CU_ASSERT_EQUAL(v.learned[GR_DIM_TPM], -1);
    /* the day is spent whatever RetryInfo says */
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MIDNIGHT);
    CU_ASSERT(near(v.cooldown_s, to_midnight(NOW_SUMMER)));
    CU_ASSERT_EQUAL(v.n_quota_ids, 2);
    CU_ASSERT(has_id(&v, "GenerateRequestsPerDayPerProjectPerModel-FreeTier"));
    CU_ASSERT(has_id(&v,
                     "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"));
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
}

static void
test_day_cooldown_is_pacific_midnight(void)
{
    struct gr_verdict v;

    /* 20:00 UTC in July is 13:00 PDT: 11 h to midnight. */
    classify_n(429, minute_and_day, strlen(minute_and_day), NOW_SUMMER, &v);
    CU_ASSERT(near(v.cooldown_s, 11 * 3600));
    CU_ASSERT(near(v.cooldown_s, to_midnight(NOW_SUMMER)));
    /* 12:00 UTC in December is 04:00 PST: 20 h. */
    classify_n(429, minute_and_day, strlen(minute_and_day), NOW_WINTER, &v);
    CU_ASSERT(near(v.cooldown_s, 20 * 3600));
    CU_ASSERT(near(v.cooldown_s, to_midnight(NOW_WINTER)));
    /* One second before midnight PDT: one second. */
    classify_n(429, minute_and_day, strlen(minute_and_day),
               utc(2026, 7, 16, 6, 59, 59), &v);
    CU_ASSERT(near(v.cooldown_s, 1));
    /* At midnight exactly: the whole next day (23 h on DST day). */
    classify_n(429, minute_and_day, strlen(minute_and_day),
               utc(2026, 3, 8, 8, 0, 0), &v);
    CU_ASSERT(near(v.cooldown_s, 23 * 3600));
}

static void
test_details_in_other_order(void)
{
    struct gr_verdict a, b;

    classify(429,
             "{\"error\": {\"code\": 429, \"details\": ["
             "{\"@type\": \"" RI "\", \"retryDelay\": \"26s\"},"
             "{\"@type\": \"type.googleapis.com/google.rpc.Help\", "
             "\"links\": []},"
             "{\"@type\": \"" QF "\", \"violations\": [{\"quotaValue\": "
             "\"250000\", \"quotaId\": "
             "\"GenerateContentInputTokensPerModelPerMinute-FreeTier\"}]}]}}",
             &a);
    classify(429,
             "{\"error\": {\"details\": ["
             "{\"@type\": \"" QF "\", \"violations\": [{\"quotaId\": "
             "\"GenerateContentInputTokensPerModelPerMinute-FreeTier\", "
             "\"quotaValue\": \"250000\"}]},"
             "{\"@type\": \"" RI "\", \"retryDelay\": \"26s\"}], "
             "\"code\": 429}}",
             &b);
    CU_ASSERT_EQUAL(a.dims, GR_DIM_BIT(GR_DIM_TPM));
    CU_ASSERT_EQUAL(a.learned[GR_DIM_TPM], 250000);
    CU_ASSERT_EQUAL(a.cooldown_src, GR_COOL_RETRYINFO);
    CU_ASSERT(near(a.cooldown_s, 26));
    CU_ASSERT_EQUAL(a.dims, b.dims);
    CU_ASSERT_EQUAL(a.cooldown_src, b.cooldown_src);
    CU_ASSERT(near(a.cooldown_s, b.cooldown_s));
    CU_ASSERT_EQUAL(memcmp(a.learned, b.learned, sizeof(a.learned)), 0);
}

static void
test_quota_value_absent(void)
{
    struct gr_verdict v;

    classify(429,
             "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF
             "\", \"violations\": [{\"quotaId\": "
             "\"GenerateRequestsPerMinutePerProjectPerModel\"}]}]}}",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM));
    CU_ASSERT(no_learned(&v));
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_BACKOFF);
    CU_ASSERT(v.cooldown_s > 0);
}

/* The late-2025 message: metric lines, limit 0, "Please retry in". */
static const char limit_zero[] =
    "{\"error\": {\"code\": 429, \"message\": \"You exceeded your current "
    "quota, please check your plan and billing details.\\n* Quota exceeded "
    "for metric: generativelanguage.googleapis.com/generate_content_free_"
    "tier_input_token_count, limit: 0, model: gemini-2.5-pro\\n* Quota "
    "exceeded for metric: generativelanguage.googleapis.com/generate_content"
    "_free_tier_requests, limit: 0, model: gemini-2.5-pro\\nPlease retry in "
    "44.784549209s.\", \"status\": \"RESOURCE_EXHAUSTED\", \"details\": ["
    "{\"@type\": \"" QF "\", \"violations\": ["
    "{\"quotaMetric\": \"generativelanguage.googleapis.com/generate_content_"
    "free_tier_input_token_count\", \"quotaId\": \"GenerateContentInputTokens"
    "PerModelPerMinute-FreeTier\"},"
    "{\"quotaMetric\": \"generativelanguage.googleapis.com/generate_content_"
    "free_tier_requests\", \"quotaId\": \"GenerateRequestsPerMinutePer"
    "ProjectPerModel-FreeTier\"}]}]}}";

static void
test_limit_zero_disables_cell(void)
{
    struct gr_verdict v;

    classify(429, limit_zero, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM) | GR_DIM_BIT(GR_DIM_TPM));
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_CELL);
    CU_ASSERT(v.retryable);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MESSAGE);
    CU_ASSERT(near(v.cooldown_s, 44.784549209));

    /* quotaValue "0" alone does it too */
    classify(429,
             "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF
             "\", \"violations\": [{\"quotaId\": \"GenerateRequestsPerDayPer"
             "ProjectPerModel-FreeTier\", \"quotaValue\": \"0\"}]}]}}",
             &v);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_CELL);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPD));

    /* and the ErrorInfo form */
    classify(429,
             "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" EI
             "\", \"reason\": \"RATE_LIMIT_EXCEEDED\", \"metadata\": {"
             "\"quota_limit\": \"GenerateContentRequestsPerMinutePerProject"
             "PerRegion\", \"quota_limit_value\": \"0\"}}]}}",
             &v);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_CELL);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM));
}

static void
test_message_lines_without_details(void)
{
    struct gr_verdict v;

    /* details dropped: the message still names the quota and its limit */
    classify(429,
             "{\"error\": {\"code\": 429, \"message\": \"* Quota exceeded for "
             "metric: generativelanguage.googleapis.com/generate_content_"
             "free_tier_input_token_count, limit: 125000, model: gemini-2.5-"
             "pro\\nPlease retry in 12.3s.\"}}",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_TPM));
    CU_ASSERT_EQUAL(v.learned[GR_DIM_TPM], 125000);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MESSAGE);
    CU_ASSERT(near(v.cooldown_s, 12.3));
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);

    /* a line repeating a valued violation adds nothing */
    classify(429,
             "{\"error\": {\"code\": 429, \"message\": \"* Quota exceeded for "
             "metric: m/generate_content_free_tier_requests, limit: 250, "
             "model: x\", \"details\": [{\"@type\": \"" QF "\", "
             "\"violations\": [{\"quotaMetric\": \"m/generate_content_free_"
             "tier_requests\", \"quotaId\": \"GenerateRequestsPerDayPer"
             "ProjectPerModel-FreeTier\", \"quotaValue\": \"250\"}]}]}}",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPD));
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPD], 250);
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPM], -1);

    /* a line fills a violation without quotaValue */
    classify(429,
             "{\"error\": {\"code\": 429, \"message\": \"* Quota exceeded for "
             "metric: m/requests, limit: 30, model: x\", \"details\": [{"
             "\"@type\": \"" QF "\", \"violations\": [{\"quotaMetric\": "
             "\"m/requests\", \"quotaId\": \"GenerateRequestsPerMinutePer"
             "ProjectPerModel\"}]}]}}",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM));
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPM], 30);
}

static void
test_retry_delay_forms(void)
{
    static const struct {
        const char *json;   /* the value of retryDelay */
        double want;
    } cases[] = {
        {"\"26s\"", 26},           {"\"47.434392449s\"", 47.434392449},
        {"\"1.5s\"", 1.5},         {"\"0.5s\"", 0.5},
        {"\"0s\"", 0},             {"\"2m\"", 120},
        {"\"850ms\"", 0.85},       {"\"1m30s\"", 90},
        {"7", 7},                  {"2.25", 2.25},
        {"{\"seconds\": \"3\", \"nanos\": 500000000}", 3.5},
        {"{\"seconds\": 4}", 4},   {"\"99999999999s\"", 86400},
    };
    static const char *const bad[] = {
        "\"s\"", "\"abc\"", "\"-3s\"", "\"12\"", "null", "[]", "{}", "-1",
        "\".s\"",
    };
    char body[512];
    struct gr_verdict v;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" RI
                 "\", \"retryDelay\": %s}]}}",
                 cases[i].json);
        classify(429, body, &v);
        if (!near(v.cooldown_s, cases[i].want))
            fprintf(stderr, "\nretryDelay %s: %f\n", cases[i].json,
                    v.cooldown_s);
        CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_RETRYINFO);
        CU_ASSERT(near(v.cooldown_s, cases[i].want));
        CU_ASSERT_EQUAL(v.dims, 0);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body),
                 "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" RI
                 "\", \"retryDelay\": %s}]}}",
                 bad[i]);
        classify(429, body, &v);
        CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_BACKOFF);
    }
}

static void
test_please_retry_fallback(void)
{
    struct gr_verdict v;

    /* bare 429 with the text: cell-wide, from the message */
    classify(429,
             "{\"error\": {\"code\": 429, \"message\": \"Resource exhausted. "
             "Please retry in 5.5s.\", \"status\": \"RESOURCE_EXHAUSTED\"}}",
             &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    CU_ASSERT_EQUAL(v.dims, 0);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MESSAGE);
    CU_ASSERT(near(v.cooldown_s, 5.5));
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);

    classify(429,
             "{\"error\": {\"code\": 429, \"message\": \"please RETRY IN "
             "850ms\"}}",
             &v);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MESSAGE);
    CU_ASSERT(near(v.cooldown_s, 0.85));

    /* RetryInfo wins over the text */
    classify(429,
             "{\"error\": {\"code\": 429, \"message\": \"Please retry in "
             "9s.\", \"details\": [{\"@type\": \"" RI "\", \"retryDelay\": "
             "\"26s\"}]}}",
             &v);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_RETRYINFO);
    CU_ASSERT(near(v.cooldown_s, 26));

    /* text without a number is no hint */
    classify(429, "{\"error\": {\"message\": \"Please retry in a while\"}}",
             &v);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_BACKOFF);
}

static void
test_bare_429(void)
{
    struct gr_verdict v;

    classify(429, NULL, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    CU_ASSERT_EQUAL(v.dims, 0);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_BACKOFF);
    CU_ASSERT(v.cooldown_s > 0 && v.cooldown_s < 60);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
    CU_ASSERT(v.retryable);
    CU_ASSERT(no_learned(&v));
}

static void
test_quota_names(void)
{
    static const struct {
        const char *id;
        int dim;            /* -1: whole cell (dims 0) */
        bool day;
    } cases[] = {
        {"GenerateRequestsPerMinutePerProjectPerModel-FreeTier", GR_DIM_RPM, 0},
        {"GenerateRequestsPerMinutePerProjectPerModel", GR_DIM_RPM, 0},
        {"GenerateContentInputTokensPerModelPerMinute-FreeTier", GR_DIM_TPM, 0},
        {"GenerateContentPaidTierInputTokensPerModelPerMinute", GR_DIM_TPM, 0},
        {"GenerateContentPaidTierInputTokensPerModelPerMinute-PaidTier2",
         GR_DIM_TPM, 0},
        {"GenerateRequestsPerDayPerProjectPerModel-FreeTier", GR_DIM_RPD, 1},
        {"GenerateRequestsPerDayPerProjectPerModel", GR_DIM_RPD, 1},
        {"EmbedContentRequestsPerMinutePerUserPerProjectPerModel-FreeTier",
         GR_DIM_RPM, 0},
        {"EmbedContentRequestsPerDayPerProjectPerModel-FreeTier", GR_DIM_RPD,
         1},
        {"GenerateContentInputTokensPerModelPerDay-FreeTier", GR_DIM_TPD, 1},
        {"ImageGenerationRequestsPerMinutePerProjectPerModel", GR_DIM_RPM, 0},
        {"GenerateContentInputImagesPerModelPerMinute", GR_DIM_IPM, 0},
        {"SomethingElsePerMinutePerProject", -1, 0},
        {"SomethingElsePerDay", GR_DIM_RPD, 1},
    };
    char body[512];
    struct gr_verdict v;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        unsigned want = cases[i].dim < 0 ? 0 : GR_DIM_BIT(cases[i].dim);

        snprintf(body, sizeof(body),
                 "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF
                 "\", \"violations\": [{\"quotaId\": \"%s\", \"quotaValue\": "
                 "\"77\"}]}, {\"@type\": \"" RI "\", \"retryDelay\": "
                 "\"30s\"}]}}",
                 cases[i].id);
        classify(429, body, &v);
        if (v.dims != want)
            fprintf(stderr, "\n%s: dims %#x\n", cases[i].id, v.dims);
        CU_ASSERT_EQUAL(v.dims, want);
        CU_ASSERT_EQUAL(v.cooldown_src,
                        cases[i].day ? GR_COOL_MIDNIGHT : GR_COOL_RETRYINFO);
        CU_ASSERT(has_id(&v, cases[i].id));
    }
    /* tokens per day are their own dimension, learned in tokens */
    classify(429,
             "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF
             "\", \"violations\": [{\"quotaId\": \"GenerateContentInputTokens"
             "PerModelPerDay-FreeTier\", \"quotaValue\": \"1000000\"}]}]}}",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_TPD));
    CU_ASSERT_EQUAL(v.learned[GR_DIM_TPD], 1000000);
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPD], -1);
    CU_ASSERT_EQUAL(v.learned[GR_DIM_TPM], -1);
    /* images per day still block the request day, learning nothing */
    classify(429,
             "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF
             "\", \"violations\": [{\"quotaId\": \"ImagenImagesPerDay"
             "PerProjectPerModel\", \"quotaValue\": \"70\"}]}]}}",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPD));
    CU_ASSERT(no_learned(&v));
    /* only a metric: its words decide; "per_day" makes it a day */
    classify(429,
             "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF
             "\", \"violations\": [{\"quotaMetric\": \"generativelanguage."
             "googleapis.com/generate_content_requests_per_day\"}]}]}}",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPD));
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MIDNIGHT);
}

static void
test_learned_and_ids_bounds(void)
{
    struct gr_verdict v;
    char body[4096];
    int n = 0, i;

    n += snprintf(body + n, sizeof(body) - (size_t)n,
                  "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \""
                  QF "\", \"violations\": [");
    for (i = 0; i < 20; i++)
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "%s{\"quotaId\": \"GenerateRequestsPerMinuteQuota%d\", "
                      "\"quotaValue\": %d}",
                      i == 0 ? "" : ",", i % 6, 100 - i);
    snprintf(body + n, sizeof(body) - (size_t)n, "]}]}}");
    classify(429, body, &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM));
    CU_ASSERT_EQUAL(v.n_quota_ids, GR_MAX_QUOTA_IDS);
    /* the lowest of the stated limits (of those read) */
    CU_ASSERT(v.learned[GR_DIM_RPM] >= 81 && v.learned[GR_DIM_RPM] <= 85);

    /* a quota id longer than the field is cut, never overflowed */
    memset(body, 0, sizeof(body));
    n = snprintf(body, sizeof(body),
                 "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF
                 "\", \"violations\": [{\"quotaId\": \"RequestsPerMinute");
    for (i = 0; i < 300; i++)
        body[n++] = 'x';
    snprintf(body + n, sizeof(body) - (size_t)n, "\"}]}]}}");
    classify(429, body, &v);
    CU_ASSERT_EQUAL(v.n_quota_ids, 1);
    CU_ASSERT_EQUAL(strlen(v.quota_ids[0]), GR_QUOTA_ID_MAX - 1);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM));
}

static void
test_array_wrapped(void)
{
    struct gr_verdict v;

    classify(429,
             "[{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF
             "\", \"violations\": [{\"quotaId\": \"GenerateRequestsPerMinute"
             "PerProjectPerModel-FreeTier\", \"quotaValue\": \"10\"}]}, "
             "{\"@type\": \"" RI "\", \"retryDelay\": \"20s\"}]}}]",
             &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPM));
    CU_ASSERT_EQUAL(v.learned[GR_DIM_RPM], 10);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_RETRYINFO);
    CU_ASSERT(near(v.cooldown_s, 20));
    /* after chunks of a stream */
    classify(400,
             "[{\"candidates\": []}, {\"error\": {\"code\": 400, \"details\": "
             "[{\"@type\": \"" EI "\", \"reason\": \"API_KEY_INVALID\"}]}}]",
             &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_AUTH);
    CU_ASSERT_EQUAL(status_of("[{\"candidates\": []}, {\"error\": "
                              "{\"code\": 400}}]"), 400);
}

/* --- bodies that are not what they should be ----------------------------- */

static void
test_garbage_bodies(void)
{
    static const char *const bodies[] = {
        "", "garbage", "<html><body>502 Bad Gateway</body></html>", "null",
        "42", "\"error\"", "[]", "{}", "[[[[", "{\"error\": \"quota\"}",
        "{\"error\": null}", "{\"error\": []}", "{\"error\": {\"details\": 5}}",
        "{\"error\": {\"details\": {\"@type\": 7}}}",
        "{\"error\": {\"details\": [1, \"x\", null, [], {}]}}",
        "{\"error\": {\"details\": [{\"@type\": \"" QF "\", \"violations\": "
        "{\"quotaId\": \"GenerateRequestsPerDay\"}}]}}",
        "{\"error\": {\"details\": [{\"@type\": \"" QF "\", \"violations\": "
        "[{\"quotaId\": 5, \"quotaValue\": {\"a\": 1}}, {\"quotaId\": "
        "\"GenerateRequestsPerMinute\", \"quotaValue\": [1]}, "
        "{\"quotaId\": \"GenerateRequestsPerMinute\", \"quotaValue\": "
        "\"-5\"}, {\"quotaId\": \"GenerateRequestsPerMinute\", "
        "\"quotaValue\": 1e400}, {\"quotaId\": \"GenerateRequestsPerMinute\","
        " \"quotaValue\": \"99999999999999999999999\"}]}]}}",
        "{\"error\": {\"code\": \"429\", \"message\": 5, \"status\": []}}",
        "{\"error\": {\"message\": \"* Quota exceeded for metric: x, limit: "
        "\\n* Quota exceeded for metric:, limit: 5\\nretry in \"}}",
        "{\"error\": {\"message\": \"Please retry in 1e9999s\"}}",
        "{\"error\": {\"details\": [{\"@type\": \"" RI "\", \"retryDelay\": "
        "\"1000000000000000000000000000000000000000000000000000000000000000000"
        "00000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000s"
        "\"}]}}",
        "\xef\xbb\xbf{\"error\": {\"code\": 429}}",
        "{\"error\": {\"code\": 429}} trailing junk",
        "\xff\xfe\x00\x01",
    };
    static const int statuses[] = {0, 200, 400, 401, 403, 404, 408, 413,
                                   429, 500, 503, 504, 302, 999, -1};
    size_t i, s;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        for (s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
            struct gr_verdict v;

            classify_n(statuses[s], bodies[i], strlen(bodies[i]), NOW_SUMMER,
                       &v);
            if (statuses[s] == 429) {
                CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
                CU_ASSERT(v.retryable);
                CU_ASSERT(v.cooldown_src != GR_COOL_NONE);
            }
            check_by_status(bodies[i], statuses[s], &v);
        }
    }
}

static void
test_embedded_nul_and_exact_length(void)
{
    static const char body[] = "{\"error\": {\"code\": 429, \"message\": "
                               "\"a\\u0000b Please retry in 3s\"}}";
    struct gr_verdict v;

    classify(429, body, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    /* raw NULs inside the length */
    classify_n(429, "{\"error\"\0: 1}", sizeof("{\"error\"\0: 1}") - 1,
               NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    classify_n(404, "\xff\xfe\x00\x01", 4, NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_MODEL);
    classify_n(429, "{\"error\": {\"code\": 429, \"message\": \"Please "
               "retry in 3s\"}}\0{", 59, NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MESSAGE);
}

static void
test_huge_and_deep_bodies(void)
{
    size_t big = (1u << 20) + 100, i;
    char *body = malloc(big);
    struct gr_verdict v;
    static const char head[] =
        "{\"error\": {\"code\": 429, \"details\": [{\"@type\": \"" QF "\", "
        "\"violations\": [{\"quotaId\": \"GenerateRequestsPerDayPerProject"
        "PerModel\"}]}], \"pad\": \"";

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    /* over the 1 MiB cap: classified by status alone (no day block) */
    memset(body, 'x', big);
    memcpy(body, head, sizeof(head) - 1);
    memcpy(body + big - 4, "\"}}\n", 4);
    classify_n(429, body, big, NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    CU_ASSERT_EQUAL(v.dims, 0);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_BACKOFF);
    /* just under it: read */
    memcpy(body + (1u << 20) - 4, "\"}}\n", 4);
    classify_n(429, body, 1u << 20, NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_RPD));
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MIDNIGHT);

    /* nested deeper than anything Google sends */
    for (i = 0; i < big; i++)
        body[i] = i % 2 == 0 ? '[' : ' ';
    classify_n(503, body, big, NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_OVERLOAD);
    classify_n(429, body, 200000, NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_QUOTA);
    for (i = 0; i < 20000; i++)
        memcpy(body + i * 6, "{\"a\": ", 6);
    classify_n(404, body, 120000, NOW_SUMMER, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_MODEL);
    free(body);
}

/* --- the other statuses --------------------------------------------------- */

static void
test_auth_vs_request(void)
{
    struct gr_verdict v;

    classify(400,
             "{\"error\": {\"code\": 400, \"message\": \"API key expired. "
             "Please renew the API key.\", \"status\": \"INVALID_ARGUMENT\", "
             "\"details\": [{\"@type\": \"" EI "\", \"reason\": "
             "\"API_KEY_INVALID\"}]}}",
             &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_AUTH);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_KEY);
    CU_ASSERT(v.retryable);

    /* details stripped: Google's sentence still says it */
    classify(400,
             "{\"error\": {\"code\": 400, \"message\": \"API key not valid. "
             "Please pass a valid API key.\", \"status\": "
             "\"INVALID_ARGUMENT\"}}",
             &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_AUTH);

    static const char *const request_faults[] = {
        "{\"error\": {\"code\": 400, \"message\": \"The input token count "
        "(1200000) exceeds the maximum number of tokens allowed (1048576).\","
        " \"status\": \"INVALID_ARGUMENT\"}}",
        "{\"error\": {\"code\": 400, \"message\": \"User location is not "
        "supported for the API use.\", \"status\": \"FAILED_PRECONDITION\"}}",
        "{\"error\": {\"code\": 400, \"message\": \"Invalid JSON payload "
        "received.\", \"status\": \"INVALID_ARGUMENT\", \"details\": [{"
        "\"@type\": \"type.googleapis.com/google.rpc.BadRequest\", "
        "\"fieldViolations\": [{\"description\": \"x\"}]}]}}",
        "{\"error\": {\"code\": 400, \"status\": \"INVALID_ARGUMENT\", "
        "\"details\": [{\"@type\": \"" EI "\", \"reason\": "
        "\"SOMETHING_ELSE\"}]}}",
        "",
    };
    size_t i;

    for (i = 0; i < sizeof(request_faults) / sizeof(request_faults[0]); i++) {
        classify(400, request_faults[i], &v);
        CU_ASSERT_EQUAL(v.cls, GR_CLASS_REQUEST);
        CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
        CU_ASSERT_FALSE(v.retryable);
        CU_ASSERT_EQUAL(v.cooldown_s, 0);
    }
    classify(413, "request too large", &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_REQUEST);
    CU_ASSERT_FALSE(v.retryable);

    classify(401, "{\"error\": {\"code\": 401, \"status\": "
                  "\"UNAUTHENTICATED\"}}", &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_AUTH);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_KEY);
    classify(403, "{\"error\": {\"code\": 403, \"message\": \"Generative "
                  "Language API has not been used in project 1 before or it "
                  "is disabled.\", \"status\": \"PERMISSION_DENIED\", "
                  "\"details\": [{\"@type\": \"" EI "\", \"reason\": "
                  "\"SERVICE_DISABLED\"}]}}", &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_AUTH);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_PROJECT);
    CU_ASSERT(v.retryable);
}

static void
test_model_and_server(void)
{
    struct gr_verdict v;

    classify(404, "{\"error\": {\"code\": 404, \"status\": \"NOT_FOUND\"}}",
             &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_MODEL);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_CELL);
    CU_ASSERT(v.retryable);

    classify(500, NULL, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_SERVER);
    CU_ASSERT(v.retryable);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
    CU_ASSERT_EQUAL(v.dims, 0);
    classify(504, "{\"error\": {\"code\": 504, \"status\": "
                  "\"DEADLINE_EXCEEDED\"}}", &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_SERVER);
    CU_ASSERT(v.retryable);
    classify(502, "<html>bad gateway</html>", &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_SERVER);
    classify(503, "", &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_OVERLOAD);
    CU_ASSERT(v.retryable);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
    /* a 503 with a RetryInfo is honoured */
    classify(503, "{\"error\": {\"code\": 503, \"details\": [{\"@type\": \""
                  RI "\", \"retryDelay\": \"4s\"}]}}", &v);
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_RETRYINFO);
    CU_ASSERT(near(v.cooldown_s, 4));

    classify(0, NULL, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_SERVER);
    CU_ASSERT(v.retryable);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
    CU_ASSERT_EQUAL(v.status, 0);

    classify(302, NULL, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_UNKNOWN);
    CU_ASSERT_FALSE(v.retryable);
}

static void
test_ok(void)
{
    struct gr_verdict v;

    classify(200, "{\"promptFeedback\": {\"blockReason\": \"SAFETY\"}, "
                  "\"usageMetadata\": {\"promptTokenCount\": 9}}", &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_OK);
    CU_ASSERT_EQUAL(v.dims, 0);
    CU_ASSERT_EQUAL(v.disable, GR_DISABLE_NONE);
    CU_ASSERT_EQUAL(v.cooldown_s, 0);
    CU_ASSERT(strstr(v.reason, "SAFETY") != NULL);
    CU_ASSERT(strncmp(v.reason, "200: ok; ", 9) == 0);
    classify(204, NULL, &v);
    CU_ASSERT_EQUAL(v.cls, GR_CLASS_OK);
    CU_ASSERT_STRING_EQUAL(v.reason, "204: ok");
    classify(299, "{}", &v);
    CU_ASSERT_STRING_EQUAL(v.reason, "299: ok");
}

static void
test_names(void)
{
    CU_ASSERT_STRING_EQUAL(gr_class_name(GR_CLASS_OK), "ok");
    CU_ASSERT_STRING_EQUAL(gr_class_name(GR_CLASS_QUOTA), "quota");
    CU_ASSERT_STRING_EQUAL(gr_class_name(GR_CLASS_OVERLOAD), "overload");
    CU_ASSERT_STRING_EQUAL(gr_class_name(GR_CLASS_SERVER), "server");
    CU_ASSERT_STRING_EQUAL(gr_class_name(GR_CLASS_AUTH), "auth");
    CU_ASSERT_STRING_EQUAL(gr_class_name(GR_CLASS_REQUEST), "request");
    CU_ASSERT_STRING_EQUAL(gr_class_name(GR_CLASS_MODEL), "model");
    CU_ASSERT_STRING_EQUAL(gr_class_name(GR_CLASS_UNKNOWN), "unknown");
    CU_ASSERT_STRING_EQUAL(gr_class_name((enum gr_class)99), "unknown");
    CU_ASSERT_STRING_EQUAL(gr_class_name((enum gr_class)-1), "unknown");
    CU_ASSERT_STRING_EQUAL(gr_dim_name(GR_DIM_RPM), "rpm");
    CU_ASSERT_STRING_EQUAL(gr_dim_name(GR_DIM_TPM), "tpm");
    CU_ASSERT_STRING_EQUAL(gr_dim_name(GR_DIM_RPD), "rpd");
    CU_ASSERT_STRING_EQUAL(gr_dim_name(GR_DIM_IPM), "ipm");
    CU_ASSERT_STRING_EQUAL(gr_dim_name(GR_NDIMS), "?");
}

static void
test_reason_sentence(void)
{
    struct gr_verdict v;
    size_t len = 0;
    char *body = fixture("429-tpm-freetier-flash.json", &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    classify_n(429, body, len, NOW_SUMMER, &v);
    CU_ASSERT(strstr(v.reason, "429") == v.reason);
    CU_ASSERT(strstr(v.reason, "input tokens per minute") != NULL);
    CU_ASSERT(strstr(v.reason, "GenerateContentInputTokensPerModelPerMinute"
                               "-FreeTier") != NULL);
    CU_ASSERT(strstr(v.reason, "26.0 s (RetryInfo)") != NULL);
    free(body);
}

int
main(void)
{
    CU_TestInfo samples[] = {
        {"known samples", test_known_samples},
        {"every sample file, also array-wrapped", test_every_sample_file},
        {"samples cut at every length", test_truncated_samples},
        {"reason sentence", test_reason_sentence},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo quota[] = {
        {"ErrorInfo RATE_LIMIT_EXCEEDED", test_errorinfo_rate_limit},
        {"minute and day together", test_minute_and_day_together},
        {"tokens per day (fixture)", test_tpd_sample},
        {"day cooldown is Pacific midnight",
         test_day_cooldown_is_pacific_midnight},
        {"details in other order", test_details_in_other_order},
        {"quotaValue absent", test_quota_value_absent},
        {"limit 0 disables the cell", test_limit_zero_disables_cell},
        {"message lines without details", test_message_lines_without_details},
        {"retryDelay forms", test_retry_delay_forms},
        {"Please retry in fallback", test_please_retry_fallback},
        {"bare 429", test_bare_429},
        {"quota names to dims", test_quota_names},
        {"learned and quota id bounds", test_learned_and_ids_bounds},
        {"array-wrapped", test_array_wrapped},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo odd[] = {
        {"garbage bodies x statuses", test_garbage_bodies},
        {"embedded NUL, exact length", test_embedded_nul_and_exact_length},
        {"huge and deep bodies", test_huge_and_deep_bodies},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo statuses[] = {
        {"auth vs request", test_auth_vs_request},
        {"model and server", test_model_and_server},
        {"2xx", test_ok},
        {"names", test_names},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"samples", NULL, NULL, NULL, NULL, samples},
        {"429 rules", NULL, NULL, NULL, NULL, quota},
        {"odd bodies", NULL, NULL, NULL, NULL, odd},
        {"other statuses", NULL, NULL, NULL, NULL, statuses},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_classify", suites, 120);
}
