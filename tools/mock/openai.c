/*
 * openai.c - the bodies of the OpenAI-compatible routes.
 *
 * Invariant protected: an OpenAI client library parses every answer:
 * "object" names the type, usage carries prompt_tokens (the mock's
 * documented count of the request), completion_tokens (the fixed
 * answer's) and their sum, a stream is "data: " lines of
 * chat.completion.chunk ending with "data: [DONE]", and the usage chunk,
 * when asked for, has an empty choices list as OpenAI specifies.
 */
#include "openai.h"

#include "clock.h"
#include "responses.h"

#include <stdio.h>
#include <string.h>

static void
chat_id(char *out, size_t n)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t i;

    snprintf(out, n, "chatcmpl-");
    for (i = strlen(out); i + 1 < n && i < 9 + 24; i++)
        out[i] = abc[gr_mock_rand() % 62];
    out[i] = '\0';
}

static int64_t
unix_now(void)
{
    return gr_shm_now_wall() / GR_NS_PER_S;
}

static void
usage_obj(struct gr_mock_jw *w, const struct gr_mock_usage *u,
          int64_t completion)
{
    gr_mock_jw_object(w, "usage");
    gr_mock_jw_int(w, "prompt_tokens", u->tokens);
    gr_mock_jw_int(w, "completion_tokens", completion);
    gr_mock_jw_int(w, "total_tokens", u->tokens + completion);
    gr_mock_jw_end(w);
}

void
gr_mock_oai_chat(struct gr_mock_buf *b, const char *model,
                 const struct gr_mock_usage *u)
{
    struct gr_mock_jw w;
    char id[48], text[256];
    int i;

    text[0] = '\0';
    for (i = 0; i < GR_MOCK_ANSWER_CHUNKS; i++)
        strncat(text, gr_mock_answer_chunks[i], sizeof text - strlen(text) - 1);
    chat_id(id, sizeof id);
    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "id", id);
    gr_mock_jw_str(&w, "object", "chat.completion");
    gr_mock_jw_int(&w, "created", unix_now());
    gr_mock_jw_str(&w, "model", model);
    gr_mock_jw_array(&w, "choices");
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_int(&w, "index", 0);
    gr_mock_jw_object(&w, "message");
    gr_mock_jw_str(&w, "role", "assistant");
    gr_mock_jw_str(&w, "content", text);
    gr_mock_jw_end(&w);
    gr_mock_jw_str(&w, "finish_reason", "stop");
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    usage_obj(&w, u, gr_mock_answer_tokens());
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}

static void
chunk_head(struct gr_mock_jw *w, const char *id, int64_t created,
           const char *model)
{
    gr_mock_jw_object(w, NULL);
    gr_mock_jw_str(w, "id", id);
    gr_mock_jw_str(w, "object", "chat.completion.chunk");
    gr_mock_jw_int(w, "created", created);
    gr_mock_jw_str(w, "model", model);
}

void
gr_mock_oai_chat_stream(struct gr_mock_buf *b, const char *model,
                        const struct gr_mock_usage *u, int include_usage)
{
    struct gr_mock_jw w;
    int64_t created = unix_now();
    char id[48];
    int i;

    chat_id(id, sizeof id);
    for (i = 0; i < GR_MOCK_ANSWER_CHUNKS; i++) {
        int last = i == GR_MOCK_ANSWER_CHUNKS - 1;

        gr_mock_buf_add(b, "data: ", 6);
        gr_mock_jw_init(&w, b, 0);
        chunk_head(&w, id, created, model);
        gr_mock_jw_array(&w, "choices");
        gr_mock_jw_object(&w, NULL);
        gr_mock_jw_int(&w, "index", 0);
        gr_mock_jw_object(&w, "delta");
        if (i == 0)
            gr_mock_jw_str(&w, "role", "assistant");
        gr_mock_jw_str(&w, "content", gr_mock_answer_chunks[i]);
        gr_mock_jw_end(&w);
        if (last)
            gr_mock_jw_str(&w, "finish_reason", "stop");
        else
            gr_mock_jw_null(&w, "finish_reason");
        gr_mock_jw_end(&w);
        gr_mock_jw_end(&w);
        gr_mock_jw_end(&w);
        gr_mock_buf_add(b, "\n\n", 2);
    }
    if (include_usage) {
        gr_mock_buf_add(b, "data: ", 6);
        gr_mock_jw_init(&w, b, 0);
        chunk_head(&w, id, created, model);
        gr_mock_jw_array(&w, "choices");
        gr_mock_jw_end(&w);
        usage_obj(&w, u, gr_mock_answer_tokens());
        gr_mock_jw_end(&w);
        gr_mock_buf_add(b, "\n\n", 2);
    }
    gr_mock_buf_adds(b, "data: [DONE]\n\n");
}

/* The same deterministic values as the native embedContent. */
static void
values(struct gr_mock_jw *w, uint64_t seed, int64_t dims)
{
    int64_t i;

    gr_mock_jw_array(w, "embedding");
    for (i = 0; i < dims; i++) {
        uint64_t z = seed + (uint64_t)i * UINT64_C(0x9e3779b97f4a7c15);

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        z ^= z >> 31;
        gr_mock_jw_double(
            w, NULL, ((double)(z >> 11) / 9007199254740992.0 - 0.5) / 10.0, 6);
    }
    gr_mock_jw_end(w);
}

void
gr_mock_oai_embed(struct gr_mock_buf *b, const char *model,
                  const struct gr_mock_usage *u)
{
    struct gr_mock_jw w;
    int64_t i;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "object", "list");
    gr_mock_jw_array(&w, "data");
    for (i = 0; i < u->requests; i++) {
        gr_mock_jw_object(&w, NULL);
        gr_mock_jw_str(&w, "object", "embedding");
        gr_mock_jw_int(&w, "index", i);
        values(&w, (uint64_t)u->text_bytes * 131 + (uint64_t)i, u->embed_dims);
        gr_mock_jw_end(&w);
    }
    gr_mock_jw_end(&w);
    gr_mock_jw_str(&w, "model", model);
    gr_mock_jw_object(&w, "usage");
    gr_mock_jw_int(&w, "prompt_tokens", u->tokens);
    gr_mock_jw_int(&w, "total_tokens", u->tokens);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}

void
gr_mock_oai_models(struct gr_mock_buf *b, char (*models)[GR_MOCK_NAME_MAX],
                   size_t n)
{
    struct gr_mock_jw w;
    char id[GR_MOCK_NAME_MAX + 8];
    size_t i;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "object", "list");
    gr_mock_jw_array(&w, "data");
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof id, "models/%s", models[i]);
        gr_mock_jw_object(&w, NULL);
        gr_mock_jw_str(&w, "id", id);
        gr_mock_jw_str(&w, "object", "model");
        gr_mock_jw_str(&w, "owned_by", "google");
        gr_mock_jw_end(&w);
    }
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}

void
gr_mock_oai_wrap_error(struct gr_mock_buf *b)
{
    struct gr_mock_buf wrapped = {0};

    if (b->failed)
        return;
    gr_mock_buf_add(&wrapped, "[", 1);
    gr_mock_buf_add(&wrapped, b->data, b->len);
    gr_mock_buf_add(&wrapped, "]\n", 2);
    gr_mock_buf_free(b);
    *b = wrapped;
}
