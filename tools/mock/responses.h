/*
 * responses.h - every body the mock answers with, in the JSON shapes
 * generativelanguage.googleapis.com uses (see tests/fixtures/gemini/).
 */
#ifndef GR_MOCK_RESPONSES_H
#define GR_MOCK_RESPONSES_H

#include "jsonw.h"
#include "mock.h"
#include "quota.h"
#include "request.h"

#include <stddef.h>
#include <stdint.h>

/* The fixed answer of every generateContent, split in stream events. */
#define GR_MOCK_ANSWER_CHUNKS 3
extern const char *const gr_mock_answer_chunks[GR_MOCK_ANSWER_CHUNKS];

/* {"error": {"code", "message", "status"}} and nothing else. */
void gr_mock_resp_error(struct gr_mock_buf *b, int code, const char *status,
                        const char *message);

/* 400 INVALID_ARGUMENT with a BadRequest fieldViolation. */
void gr_mock_resp_bad_request(struct gr_mock_buf *b, const char *message,
                              const char *field);

/* 400 API_KEY_INVALID, as in 400-api-key-invalid.json. */
void gr_mock_resp_key_invalid(struct gr_mock_buf *b);

/* 403 for a request without any key. */
void gr_mock_resp_no_key(struct gr_mock_buf *b);

/* 403 for a key reported as leaked, as in 403-leaked-key.json. */
void gr_mock_resp_key_leaked(struct gr_mock_buf *b);

/* 403 for a project whose API is off, whose billing is off, or whose key
 * is suspended (state: enum gr_mock_key_state), in the shapes of
 * 403-service-disabled.json, 403-billing-disabled.json and
 * 403-consumer-suspended.json; project_no stands for the project number
 * and the key is never quoted. */
void gr_mock_resp_refused(struct gr_mock_buf *b, int state, int project_no);

/* 404 for a model no project lists, as in 404-model-not-found.json. */
void gr_mock_resp_model_not_found(struct gr_mock_buf *b, const char *version,
                                  const char *model, enum gr_mock_method m);

/* 404 for a path that is no method at all. */
void gr_mock_resp_unknown_path(struct gr_mock_buf *b);

/* 400 for a body over max_body bytes. */
void gr_mock_resp_too_large(struct gr_mock_buf *b, size_t max_body);

/* 503 and 500, as in 503-overloaded.json and 500-internal.json. */
void gr_mock_resp_overloaded(struct gr_mock_buf *b);
void gr_mock_resp_internal(struct gr_mock_buf *b);

/*
 * 429 RESOURCE_EXHAUSTED: QuotaFailure with one violation per violated
 * dimension, Help, RetryInfo, and the "* Quota exceeded" message lines.
 */
void gr_mock_resp_quota(struct gr_mock_buf *b, enum gr_mock_tier tier,
                        enum gr_mock_family family, const char *model,
                        const int64_t limit[GR_MOCK_NDIMS],
                        const struct gr_mock_verdict *v);

/* Google's quotaMetric and quotaId of a dimension; NULL for none. */
const char *gr_mock_quota_metric(enum gr_mock_tier tier,
                                 enum gr_mock_family family,
                                 enum gr_mock_dim dim);
void gr_mock_quota_id(enum gr_mock_tier tier, enum gr_mock_family family,
                      enum gr_mock_dim dim, char *out, size_t outlen);

/* "26s", "26.5s", "47.434392449s": a protobuf Duration in JSON. */
void gr_mock_duration(int64_t ns, char *out, size_t outlen);

/* 200 answers. */
void gr_mock_resp_generate(struct gr_mock_buf *b, const char *model,
                           const struct gr_mock_usage *u);
void gr_mock_resp_stream(struct gr_mock_buf *b, const char *model,
                         const struct gr_mock_usage *u, int sse);
void gr_mock_resp_count_tokens(struct gr_mock_buf *b,
                               const struct gr_mock_usage *u);
void gr_mock_resp_embed(struct gr_mock_buf *b, const struct gr_mock_usage *u,
                        int batch);

/* Imagen: sampleCount predictions, each the same 1x1 PNG. */
void gr_mock_resp_predict(struct gr_mock_buf *b, const struct gr_mock_usage *u);

/* The Model resource ("models/NAME", limits, methods) and a page of them;
 * next_token "" when this is the last page. */
void gr_mock_model_json(struct gr_mock_jw *w, const char *key,
                        const char *model);
void gr_mock_resp_model(struct gr_mock_buf *b, const char *model);
void gr_mock_resp_models(struct gr_mock_buf *b,
                         char (*models)[GR_MOCK_NAME_MAX], size_t n,
                         const char *next_token);

/* The base64 of the PNG every prediction carries. */
extern const char gr_mock_png_base64[];

/* Tokens the fixed answer costs (candidatesTokenCount). */
int64_t gr_mock_answer_tokens(void);

#endif
