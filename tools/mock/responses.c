/*
 * responses.c - the bodies of the mock's answers, shaped like Google's.
 *
 * Invariant protected: a client parser that works against the mock works
 * against generativelanguage.googleapis.com.  Field names, nesting, the
 * order of a 429's details (QuotaFailure, Help, RetryInfo), the string
 * quotaValue, the Duration retryDelay and the "* Quota exceeded for
 * metric" message lines all follow the real answers kept in
 * tests/fixtures/gemini/.
 */
#include "responses.h"

#include <stdio.h>
#include <string.h>

#define GOOG "generativelanguage.googleapis.com"
#define RATE_LIMITS_URL "https://ai.google.dev/gemini-api/docs/rate-limits"

const char *const gr_mock_answer_chunks[GR_MOCK_ANSWER_CHUNKS] = {
    "This is gemroute-mock, ",
    "answering in place of Gemini: ", "your request was counted.\n"};

/*
 * quotaMetric and quotaId per tier class (free, paid), family and
 * dimension.  The free-tier generate names and the paid TPM name are
 * Google's; IPM names are ours (no public sample carries one), and so are
 * the TPD names but for the free tier's generate one (a day twin of the
 * TPM name, on the TPM metric).
 */
static const char *const metrics[2][2][GR_MOCK_NDIMS] = {
    {
        /* free tier */
        {GOOG "/generate_content_free_tier_requests",
         GOOG "/generate_content_free_tier_input_token_count",
         GOOG "/generate_content_free_tier_requests",
         GOOG "/generate_content_free_tier_input_image_count",
         GOOG "/generate_content_free_tier_input_token_count"},
        {GOOG "/embed_content_free_tier_requests",
         GOOG "/embed_content_free_tier_input_token_count",
         GOOG "/embed_content_free_tier_requests",
         GOOG "/embed_content_free_tier_input_image_count",
         GOOG "/embed_content_free_tier_input_token_count"},
    },
    {
        /* paid tiers */
        {GOOG "/generate_requests_per_model",
         GOOG "/generate_content_paid_tier_input_token_count",
         GOOG "/generate_requests_per_model_per_day",
         GOOG "/generate_content_paid_tier_input_image_count",
         GOOG "/generate_content_paid_tier_input_token_count"},
        {GOOG "/embed_content_requests_per_model",
         GOOG "/embed_content_paid_tier_input_token_count",
         GOOG "/embed_content_requests_per_model_per_day",
         GOOG "/embed_content_paid_tier_input_image_count",
         GOOG "/embed_content_paid_tier_input_token_count"},
    },
};

static const char *const ids[2][2][GR_MOCK_NDIMS] = {
    {
        {"GenerateRequestsPerMinutePerProjectPerModel",
         "GenerateContentInputTokensPerModelPerMinute",
         "GenerateRequestsPerDayPerProjectPerModel",
         "GenerateContentInputImagesPerModelPerMinute",
         "GenerateContentInputTokensPerModelPerDay"},
        {"EmbedContentRequestsPerMinutePerUserPerProjectPerModel",
         "EmbedContentInputTokensPerModelPerMinute",
         "EmbedContentRequestsPerDayPerProjectPerModel",
         "EmbedContentInputImagesPerModelPerMinute",
         "EmbedContentInputTokensPerModelPerDay"},
    },
    {
        {"GenerateRequestsPerMinutePerProjectPerModel",
         "GenerateContentPaidTierInputTokensPerModelPerMinute",
         "GenerateRequestsPerDayPerProjectPerModel",
         "GenerateContentPaidTierInputImagesPerModelPerMinute",
         "GenerateContentPaidTierInputTokensPerModelPerDay"},
        {"EmbedContentRequestsPerMinutePerProjectPerModel",
         "EmbedContentPaidTierInputTokensPerModelPerMinute",
         "EmbedContentRequestsPerDayPerProjectPerModel",
         "EmbedContentPaidTierInputImagesPerModelPerMinute",
         "EmbedContentPaidTierInputTokensPerModelPerDay"},
    },
};

/* Suffix of quotaId: Tier 1 has none, as in Google's paid answers. */
static const char *const id_suffix[] = {"-FreeTier", "", "-PaidTier2",
                                        "-PaidTier3"};

const char *
gr_mock_quota_metric(enum gr_mock_tier tier, enum gr_mock_family family,
                     enum gr_mock_dim dim)
{
    if ((unsigned)dim >= GR_MOCK_NDIMS || (unsigned)family > 1)
        return NULL;
    return metrics[tier != GR_MOCK_FREE_TIER][family][dim];
}

void
gr_mock_quota_id(enum gr_mock_tier tier, enum gr_mock_family family,
                 enum gr_mock_dim dim, char *out, size_t outlen)
{
    if ((unsigned)dim >= GR_MOCK_NDIMS || (unsigned)family > 1 ||
        (unsigned)tier > GR_MOCK_PAID_TIER3) {
        snprintf(out, outlen, "?");
        return;
    }
    snprintf(out, outlen, "%s%s", ids[tier != GR_MOCK_FREE_TIER][family][dim],
             id_suffix[tier]);
}

void
gr_mock_duration(int64_t ns, char *out, size_t outlen)
{
    long long s, f;

    if (ns < 0)
        ns = 0;
    s = (long long)(ns / 1000000000);
    f = (long long)(ns % 1000000000);
    /* Canonical protobuf JSON: 0, 3, 6 or 9 fractional digits. */
    if (f == 0)
        snprintf(out, outlen, "%llds", s);
    else if (f % 1000000 == 0)
        snprintf(out, outlen, "%lld.%03llds", s, f / 1000000);
    else if (f % 1000 == 0)
        snprintf(out, outlen, "%lld.%06llds", s, f / 1000);
    else
        snprintf(out, outlen, "%lld.%09llds", s, f);
}

static void
error_head(struct gr_mock_jw *w, int code, const char *status,
           const char *message)
{
    gr_mock_jw_object(w, NULL);
    gr_mock_jw_object(w, "error");
    gr_mock_jw_int(w, "code", code);
    gr_mock_jw_str(w, "message", message);
    gr_mock_jw_str(w, "status", status);
}

static void
error_tail(struct gr_mock_jw *w)
{
    gr_mock_jw_end(w);
    gr_mock_jw_end(w);
    gr_mock_buf_add(w->b, "\n", 1);
}

void
gr_mock_resp_error(struct gr_mock_buf *b, int code, const char *status,
                   const char *message)
{
    struct gr_mock_jw w;

    gr_mock_jw_init(&w, b, 1);
    error_head(&w, code, status, message);
    error_tail(&w);
}

void
gr_mock_resp_bad_request(struct gr_mock_buf *b, const char *message,
                         const char *field)
{
    struct gr_mock_jw w;

    gr_mock_jw_init(&w, b, 1);
    error_head(&w, 400, "INVALID_ARGUMENT", message);
    gr_mock_jw_array(&w, "details");
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type", "type.googleapis.com/google.rpc.BadRequest");
    gr_mock_jw_array(&w, "fieldViolations");
    gr_mock_jw_object(&w, NULL);
    if (field != NULL && field[0] != '\0')
        gr_mock_jw_str(&w, "field", field);
    gr_mock_jw_str(&w, "description", message);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    error_tail(&w);
}

void
gr_mock_resp_key_invalid(struct gr_mock_buf *b)
{
    static const char msg[] = "API key not valid. Please pass a valid API key.";
    struct gr_mock_jw w;

    gr_mock_jw_init(&w, b, 1);
    error_head(&w, 400, "INVALID_ARGUMENT", msg);
    gr_mock_jw_array(&w, "details");
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type", "type.googleapis.com/google.rpc.ErrorInfo");
    gr_mock_jw_str(&w, "reason", "API_KEY_INVALID");
    gr_mock_jw_str(&w, "domain", "googleapis.com");
    gr_mock_jw_object(&w, "metadata");
    gr_mock_jw_str(&w, "service", GOOG);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type",
                   "type.googleapis.com/google.rpc.LocalizedMessage");
    gr_mock_jw_str(&w, "locale", "en-US");
    gr_mock_jw_str(&w, "message", msg);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    error_tail(&w);
}

void
gr_mock_resp_no_key(struct gr_mock_buf *b)
{
    gr_mock_resp_error(b, 403, "PERMISSION_DENIED",
                       "Method doesn't allow unregistered callers (callers "
                       "without established identity). Please use API Key or "
                       "other form of API consumer identity to call this API.");
}

void
gr_mock_resp_key_leaked(struct gr_mock_buf *b)
{
    gr_mock_resp_error(b, 403, "PERMISSION_DENIED",
                       "Your API key was reported as leaked. Please use "
                       "another API key.");
}

void
gr_mock_resp_refused(struct gr_mock_buf *b, int state, int project_no)
{
    char msg[512], consumer[48];
    const char *reason;
    struct gr_mock_jw w;
    long num = 100000000000L + project_no;

    snprintf(consumer, sizeof consumer, "projects/%ld", num);
    if (state == GR_MOCK_KEYS_SERVICE_DISABLED) {
        reason = "SERVICE_DISABLED";
        snprintf(msg, sizeof msg, "Generative Language API has not been "
                 "used in project %ld before or it is disabled. Enable it "
                 "by visiting https://console.developers.google.com/apis/api/"
                 "generativelanguage.googleapis.com/overview?project=%ld "
                 "then retry. If you enabled this API recently, wait a few "
                 "minutes for the action to propagate to our systems and "
                 "retry.", num, num);
    } else if (state == GR_MOCK_KEYS_BILLING_DISABLED) {
        reason = "BILLING_DISABLED";
        snprintf(msg, sizeof msg, "This API method requires billing to be "
                 "enabled. Please enable billing on project #%ld by "
                 "visiting https://console.developers.google.com/billing/"
                 "enable?project=%ld then retry. If you enabled billing for "
                 "this project recently, wait a few minutes for the action "
                 "to propagate to our systems and retry.", num, num);
    } else {
        reason = "CONSUMER_SUSPENDED";
        snprintf(msg, sizeof msg, "Permission denied: Consumer "
                 "'api_key:(redacted)' has been suspended.");
    }
    gr_mock_jw_init(&w, b, 1);
    error_head(&w, 403, "PERMISSION_DENIED", msg);
    gr_mock_jw_array(&w, "details");
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type", "type.googleapis.com/google.rpc.ErrorInfo");
    gr_mock_jw_str(&w, "reason", reason);
    gr_mock_jw_str(&w, "domain", "googleapis.com");
    gr_mock_jw_object(&w, "metadata");
    gr_mock_jw_str(&w, "consumer", consumer);
    gr_mock_jw_str(&w, "service", GOOG);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type",
                   "type.googleapis.com/google.rpc.LocalizedMessage");
    gr_mock_jw_str(&w, "locale", "en-US");
    gr_mock_jw_str(&w, "message", msg);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    error_tail(&w);
}

void
gr_mock_resp_model_not_found(struct gr_mock_buf *b, const char *version,
                             const char *model, enum gr_mock_method m)
{
    char msg[512];

    snprintf(msg, sizeof msg,
             "models/%s is not found for API version %s, or "
             "is not supported for %s. Call ListModels to see the list of "
             "available models and their supported methods.",
             model, version, gr_mock_method_name(m));
    gr_mock_resp_error(b, 404, "NOT_FOUND", msg);
}

void
gr_mock_resp_unknown_path(struct gr_mock_buf *b)
{
    gr_mock_resp_error(b, 404, "NOT_FOUND", "Method not found.");
}

void
gr_mock_resp_too_large(struct gr_mock_buf *b, size_t max_body)
{
    char msg[160];

    snprintf(msg, sizeof msg,
             "Request payload size exceeds the limit: %zu "
             "bytes.",
             max_body);
    gr_mock_resp_bad_request(b, msg, "");
}

void
gr_mock_resp_overloaded(struct gr_mock_buf *b)
{
    gr_mock_resp_error(b, 503, "UNAVAILABLE",
                       "The model is overloaded. Please try again later.");
}

void
gr_mock_resp_internal(struct gr_mock_buf *b)
{
    gr_mock_resp_error(b, 500, "INTERNAL",
                       "An internal error has occurred. Please retry or report "
                       "in https://developers.generativeai.google/guide/"
                       "troubleshooting");
}

void
gr_mock_resp_quota(struct gr_mock_buf *b, enum gr_mock_tier tier,
                   enum gr_mock_family family, const char *model,
                   const int64_t limit[GR_MOCK_NDIMS],
                   const struct gr_mock_verdict *v)
{
    struct gr_mock_buf msg = {0};
    struct gr_mock_jw w;
    char delay[48], id[128], value[32];
    int d;

    gr_mock_duration(v->retry_ns, delay, sizeof delay);
    gr_mock_buf_adds(&msg,
                     "You exceeded your current quota, please check your "
                     "plan and billing details. For more information on this "
                     "error, head to: " RATE_LIMITS_URL ". To monitor your "
                     "current usage, head to: https://ai.dev/rate-limit. \n");
    for (d = 0; d < GR_MOCK_NDIMS; d++)
        if (v->violated & (1u << d))
            gr_mock_buf_addf(&msg,
                             "* Quota exceeded for metric: %s, limit: "
                             "%lld, model: %s\n",
                             gr_mock_quota_metric(tier, family, d),
                             (long long)limit[d], model);
    /* "26s" -> "Please retry in 26s." as Google words it. */
    gr_mock_buf_addf(&msg, "Please retry in %s.", delay);

    gr_mock_jw_init(&w, b, 1);
    error_head(&w, 429, "RESOURCE_EXHAUSTED", msg.failed ? "" : msg.data);
    gr_mock_buf_free(&msg);
    gr_mock_jw_array(&w, "details");

    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type", "type.googleapis.com/google.rpc.QuotaFailure");
    gr_mock_jw_array(&w, "violations");
    for (d = 0; d < GR_MOCK_NDIMS; d++) {
        if (!(v->violated & (1u << d)))
            continue;
        gr_mock_quota_id(tier, family, d, id, sizeof id);
        snprintf(value, sizeof value, "%lld", (long long)limit[d]);
        gr_mock_jw_object(&w, NULL);
        gr_mock_jw_str(&w, "quotaMetric",
                       gr_mock_quota_metric(tier, family, d));
        gr_mock_jw_str(&w, "quotaId", id);
        gr_mock_jw_object(&w, "quotaDimensions");
        gr_mock_jw_str(&w, "location", "global");
        gr_mock_jw_str(&w, "model", model);
        gr_mock_jw_end(&w);
        gr_mock_jw_str(&w, "quotaValue", value);
        gr_mock_jw_end(&w);
    }
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);

    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type", "type.googleapis.com/google.rpc.Help");
    gr_mock_jw_array(&w, "links");
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "description", "Learn more about Gemini API quotas");
    gr_mock_jw_str(&w, "url", RATE_LIMITS_URL);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);

    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type", "type.googleapis.com/google.rpc.RetryInfo");
    gr_mock_jw_str(&w, "retryDelay", delay);
    gr_mock_jw_end(&w);

    gr_mock_jw_end(&w);
    error_tail(&w);
}

static int64_t
tokens_of(size_t bytes)
{
    return (int64_t)((bytes + 3) / 4);
}

int64_t
gr_mock_answer_tokens(void)
{
    size_t n = 0;
    int i;

    for (i = 0; i < GR_MOCK_ANSWER_CHUNKS; i++)
        n += strlen(gr_mock_answer_chunks[i]);
    return tokens_of(n);
}

/* 23 characters of base64url, like Google's responseId. */
static void
response_id(char out[24])
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint64_t r = 0;
    int i;

    for (i = 0; i < 23; i++) {
        if (i % 10 == 0)
            r = gr_mock_rand();
        out[i] = abc[r & 63];
        r >>= 6;
    }
    out[23] = '\0';
}

static void
usage_metadata(struct gr_mock_jw *w, const struct gr_mock_usage *u,
               int64_t candidates, int with_candidate_details)
{
    gr_mock_jw_object(w, "usageMetadata");
    gr_mock_jw_int(w, "promptTokenCount", u->tokens);
    gr_mock_jw_int(w, "candidatesTokenCount", candidates);
    gr_mock_jw_int(w, "totalTokenCount", u->tokens + candidates);
    gr_mock_jw_array(w, "promptTokensDetails");
    gr_mock_jw_object(w, NULL);
    gr_mock_jw_str(w, "modality", "TEXT");
    gr_mock_jw_int(w, "tokenCount", u->tokens);
    gr_mock_jw_end(w);
    gr_mock_jw_end(w);
    if (with_candidate_details) {
        gr_mock_jw_array(w, "candidatesTokensDetails");
        gr_mock_jw_object(w, NULL);
        gr_mock_jw_str(w, "modality", "TEXT");
        gr_mock_jw_int(w, "tokenCount", candidates);
        gr_mock_jw_end(w);
        gr_mock_jw_end(w);
    }
    gr_mock_jw_end(w);
}

/* One GenerateContentResponse; text is the whole answer or one chunk. */
static void
generate_object(struct gr_mock_jw *w, const char *model,
                const struct gr_mock_usage *u, const char *text,
                int64_t candidates, int last, int stream, const char *rid)
{
    gr_mock_jw_object(w, NULL);
    gr_mock_jw_array(w, "candidates");
    gr_mock_jw_object(w, NULL);
    gr_mock_jw_object(w, "content");
    gr_mock_jw_array(w, "parts");
    gr_mock_jw_object(w, NULL);
    gr_mock_jw_str(w, "text", text);
    gr_mock_jw_end(w);
    gr_mock_jw_end(w);
    gr_mock_jw_str(w, "role", "model");
    gr_mock_jw_end(w);
    if (last)
        gr_mock_jw_str(w, "finishReason", "STOP");
    if (stream)
        gr_mock_jw_int(w, "index", 0);
    else
        gr_mock_jw_double(w, "avgLogprobs", -0.0613197286923726, 17);
    gr_mock_jw_end(w);
    gr_mock_jw_end(w);
    usage_metadata(w, u, candidates, !stream);
    gr_mock_jw_str(w, "modelVersion", model);
    gr_mock_jw_str(w, "responseId", rid);
    gr_mock_jw_end(w);
}

void
gr_mock_resp_generate(struct gr_mock_buf *b, const char *model,
                      const struct gr_mock_usage *u)
{
    struct gr_mock_jw w;
    char text[256], rid[24];
    int i;

    text[0] = '\0';
    for (i = 0; i < GR_MOCK_ANSWER_CHUNKS; i++)
        strncat(text, gr_mock_answer_chunks[i], sizeof text - strlen(text) - 1);
    response_id(rid);
    gr_mock_jw_init(&w, b, 1);
    generate_object(&w, model, u, text, tokens_of(strlen(text)), 1, 0, rid);
    gr_mock_buf_add(b, "\n", 1);
}

void
gr_mock_resp_stream(struct gr_mock_buf *b, const char *model,
                    const struct gr_mock_usage *u, int sse)
{
    struct gr_mock_jw w;
    char rid[24];
    size_t sent = 0;
    int i;

    response_id(rid);
    if (!sse)
        gr_mock_buf_add(b, "[", 1);
    for (i = 0; i < GR_MOCK_ANSWER_CHUNKS; i++) {
        int last = i == GR_MOCK_ANSWER_CHUNKS - 1;

        /* usageMetadata is cumulative on every event, as Google sends it. */
        sent += strlen(gr_mock_answer_chunks[i]);
        if (sse)
            gr_mock_buf_add(b, "data: ", 6);
        else if (i > 0)
            gr_mock_buf_add(b, ",\r\n", 3);
        gr_mock_jw_init(&w, b, !sse);
        generate_object(&w, model, u, gr_mock_answer_chunks[i], tokens_of(sent),
                        last, 1, rid);
        if (sse)
            gr_mock_buf_add(b, "\r\n\r\n", 4);
    }
    if (!sse)
        gr_mock_buf_add(b, "]", 1);
}

void
gr_mock_resp_count_tokens(struct gr_mock_buf *b, const struct gr_mock_usage *u)
{
    struct gr_mock_jw w;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_int(&w, "totalTokens", u->tokens);
    if (u->cached_tokens > 0)
        gr_mock_jw_int(&w, "cachedContentTokenCount", u->cached_tokens);
    gr_mock_jw_array(&w, "promptTokensDetails");
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "modality", "TEXT");
    gr_mock_jw_int(&w, "tokenCount", u->tokens);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}

/* A deterministic unit-ish vector: same request, same embedding. */
static void
embedding_values(struct gr_mock_jw *w, uint64_t seed, int64_t dims)
{
    int64_t i;

    gr_mock_jw_array(w, "values");
    for (i = 0; i < dims; i++) {
        uint64_t z = seed + (uint64_t)i * UINT64_C(0x9e3779b97f4a7c15);

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        z ^= z >> 31;
        /* uniform in [-0.05, 0.05) with six decimals */
        gr_mock_jw_double(
            w, NULL, ((double)(z >> 11) / 9007199254740992.0 - 0.5) / 10.0, 6);
    }
    gr_mock_jw_end(w);
}

void
gr_mock_resp_embed(struct gr_mock_buf *b, const struct gr_mock_usage *u,
                   int batch)
{
    struct gr_mock_jw w;
    int64_t i;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    if (!batch) {
        gr_mock_jw_object(&w, "embedding");
        embedding_values(&w, (uint64_t)u->text_bytes, u->embed_dims);
        gr_mock_jw_end(&w);
    } else {
        gr_mock_jw_array(&w, "embeddings");
        for (i = 0; i < u->requests; i++) {
            gr_mock_jw_object(&w, NULL);
            embedding_values(&w, (uint64_t)u->text_bytes * 131 + (uint64_t)i,
                             u->embed_dims);
            gr_mock_jw_end(&w);
        }
        gr_mock_jw_end(&w);
    }
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}

/* A valid 1x1 transparent PNG. */
const char gr_mock_png_base64[] =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAC"
    "hwGA60e6kgAAAABJRU5ErkJggg==";

void
gr_mock_resp_predict(struct gr_mock_buf *b, const struct gr_mock_usage *u)
{
    struct gr_mock_jw w;
    int64_t i;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_array(&w, "predictions");
    for (i = 0; i < u->samples; i++) {
        gr_mock_jw_object(&w, NULL);
        gr_mock_jw_str(&w, "bytesBase64Encoded", gr_mock_png_base64);
        gr_mock_jw_str(&w, "mimeType", "image/png");
        gr_mock_jw_end(&w);
    }
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}

void
gr_mock_model_json(struct gr_mock_jw *w, const char *key, const char *model)
{
    static const char *const gen[] = {"generateContent", "countTokens",
                                      "createCachedContent",
                                      "batchGenerateContents", NULL};
    static const char *const emb[] = {"embedContent", "countTextTokens",
                                      "countTokens", "asyncBatchEmbedContent",
                                      NULL};
    static const char *const img[] = {"predict", NULL};
    const char *const *methods = gen;
    char name[GR_MOCK_NAME_MAX + 8], desc[GR_MOCK_NAME_MAX + 64];
    int64_t in = 1048576, out = 65536;
    int i;

    /* What the name says decides the methods, as in Google's list. */
    if (strstr(model, "embedding") != NULL) {
        methods = emb;
        in = 2048;
        out = 1;
    } else if (strncmp(model, "imagen", 6) == 0) {
        methods = img;
        in = 480;
        out = 8192;
    }
    snprintf(name, sizeof name, "models/%s", model);
    snprintf(desc, sizeof desc, "gemroute-mock's stand-in for %s.", model);
    gr_mock_jw_object(w, key);
    gr_mock_jw_str(w, "name", name);
    gr_mock_jw_str(w, "version", "001");
    gr_mock_jw_str(w, "displayName", model);
    gr_mock_jw_str(w, "description", desc);
    gr_mock_jw_int(w, "inputTokenLimit", in);
    gr_mock_jw_int(w, "outputTokenLimit", out);
    gr_mock_jw_array(w, "supportedGenerationMethods");
    for (i = 0; methods[i] != NULL; i++)
        gr_mock_jw_str(w, NULL, methods[i]);
    gr_mock_jw_end(w);
    gr_mock_jw_end(w);
}

void
gr_mock_resp_model(struct gr_mock_buf *b, const char *model)
{
    struct gr_mock_jw w;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_model_json(&w, NULL, model);
    gr_mock_buf_add(b, "\n", 1);
}

void
gr_mock_resp_models(struct gr_mock_buf *b, char (*models)[GR_MOCK_NAME_MAX],
                    size_t n, const char *next_token)
{
    struct gr_mock_jw w;
    size_t i;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_array(&w, "models");
    for (i = 0; i < n; i++)
        gr_mock_model_json(&w, NULL, models[i]);
    gr_mock_jw_end(&w);
    if (next_token != NULL && next_token[0] != '\0')
        gr_mock_jw_str(&w, "nextPageToken", next_token);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}
