/*
 * openai.h - the answers of Google's OpenAI-compatible endpoint
 * (/v1beta/openai/...): chat.completion, chat.completion.chunk events,
 * embeddings lists and the model list, in OpenAI's shapes.
 */
#ifndef GR_MOCK_OPENAI_H
#define GR_MOCK_OPENAI_H

#include "jsonw.h"
#include "mock.h"
#include "request.h"

#include <stddef.h>

/* A chat.completion with the fixed answer and usage. */
void gr_mock_oai_chat(struct gr_mock_buf *b, const char *model,
                      const struct gr_mock_usage *u);

/* SSE: "data: {chunk}\n\n" per answer chunk, the last with finish_reason
 * "stop"; with include_usage a chunk with empty choices and usage; then
 * "data: [DONE]\n\n". */
void gr_mock_oai_chat_stream(struct gr_mock_buf *b, const char *model,
                             const struct gr_mock_usage *u, int include_usage);

/* {"object": "list", "data": [{"object": "embedding", ...}], usage}. */
void gr_mock_oai_embed(struct gr_mock_buf *b, const char *model,
                       const struct gr_mock_usage *u);

/* {"object": "list", "data": [{"id": "models/NAME", ...}]}. */
void gr_mock_oai_models(struct gr_mock_buf *b, char (*models)[GR_MOCK_NAME_MAX],
                        size_t n);

/* Google's OpenAI endpoint sends its errors as [ {"error": ...} ]. */
void gr_mock_oai_wrap_error(struct gr_mock_buf *b);

#endif
