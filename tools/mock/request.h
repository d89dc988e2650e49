/*
 * request.h - what the mock reads from a request: the route from the URL
 * path and the usage from the JSON body.  No HTTP library here, so a
 * fuzzer can drive the parser on its own.
 */
#ifndef GR_MOCK_REQUEST_H
#define GR_MOCK_REQUEST_H

#include "mock.h"

#include <stddef.h>
#include <stdint.h>

#define GR_MOCK_MAX_BATCH 100  /* requests in one batchEmbedContents */
#define GR_MOCK_EMBED_DIMS 768 /* default embedding length */
#define GR_MOCK_EMBED_DIMS_MAX 3072

enum gr_mock_method {
    GR_MOCK_GENERATE_CONTENT = 0,
    GR_MOCK_STREAM_GENERATE_CONTENT,
    GR_MOCK_COUNT_TOKENS,
    GR_MOCK_EMBED_CONTENT,
    GR_MOCK_BATCH_EMBED_CONTENTS,
    GR_MOCK_PREDICT /* Imagen: instances[].prompt, parameters.sampleCount */
};

#define GR_MOCK_N_METHODS 6
#define GR_MOCK_MAX_SAMPLES 4 /* images one :predict may ask for */

enum gr_mock_route_kind {
    GR_MOCK_ROUTE_NONE = 0, /* 404 */
    GR_MOCK_ROUTE_MODEL,    /* /v1beta/models/{model}:{method} */
    GR_MOCK_ROUTE_STATS,    /* GET /mock/stats */
    GR_MOCK_ROUTE_RESET,    /* POST /mock/reset */
    GR_MOCK_ROUTE_CLOCK,    /* GET|POST /mock/clock */
    GR_MOCK_ROUTE_FAULTS,   /* GET|POST /mock/faults */
    GR_MOCK_ROUTE_PROJECT,  /* POST /mock/project */
    /* Below, {v} is v1beta or v1; both serve the same. */
    GR_MOCK_ROUTE_MODELS_LIST, /* GET /{v}/models */
    GR_MOCK_ROUTE_MODEL_GET,   /* GET /{v}/models/{model} */
    GR_MOCK_ROUTE_FILES_LIST,  /* GET /{v}/files */
    GR_MOCK_ROUTE_FILE_GET,    /* GET /{v}/files/{id} */
    GR_MOCK_ROUTE_FILE_DELETE, /* DELETE /{v}/files/{id} */
    GR_MOCK_ROUTE_UPLOAD,      /* POST /upload/{v}/files */
    GR_MOCK_ROUTE_OAI_CHAT,    /* POST /{v}/openai/chat/completions */
    GR_MOCK_ROUTE_OAI_EMBED,   /* POST /{v}/openai/embeddings */
    GR_MOCK_ROUTE_OAI_MODELS,  /* GET /{v}/openai/models */
    GR_MOCK_ROUTE_CACHE_CREATE, /* POST /{v}/cachedContents */
    GR_MOCK_ROUTE_CACHES_LIST,  /* GET /{v}/cachedContents */
    GR_MOCK_ROUTE_CACHE_GET,    /* GET /{v}/cachedContents/{id} */
    GR_MOCK_ROUTE_CACHE_PATCH,  /* PATCH /{v}/cachedContents/{id} */
    GR_MOCK_ROUTE_CACHE_DELETE, /* DELETE /{v}/cachedContents/{id} */
    GR_MOCK_ROUTE_BATCH_CREATE, /* POST /{v}/models/{m}:batchGenerateContent */
    GR_MOCK_ROUTE_BATCHES_LIST, /* GET /{v}/batches */
    GR_MOCK_ROUTE_BATCH_GET,    /* GET /{v}/batches/{id} */
    GR_MOCK_ROUTE_BATCH_CANCEL, /* POST /{v}/batches/{id}:cancel */
    GR_MOCK_ROUTE_BATCH_DELETE, /* DELETE /{v}/batches/{id} */
    GR_MOCK_ROUTE_FILE_DOWNLOAD /* GET [/download]/{v}/files/{id}:download */
};

struct gr_mock_route {
    enum gr_mock_route_kind kind;
    enum gr_mock_method method;
    int post;        /* the HTTP method was POST */
    char version[8]; /* "v1beta" or "v1" */
    char model[GR_MOCK_NAME_MAX];
    char file[64]; /* {id} of the file and cache routes: [a-z0-9-] */
};

/* What a request asks of the model, as the mock counts it. */
struct gr_mock_usage {
    int64_t requests;   /* 1, or the batch size */
    int64_t text_bytes; /* bytes of every text part */
    int64_t tokens;     /* ceil(text_bytes / 4), plus the media's
                           (server.c adds media.c's count) */
    int64_t cached_tokens; /* countTokens: the named cache's tokens
                              (inside tokens); 0 = none */
    int64_t images;     /* inlineData parts with an image/ type */
    int64_t embed_dims; /* length of each embedding */
    int64_t samples;    /* images a :predict asks for */
    /* Input of gr_mock_parse_body_ex(): a file a part names in
     * fileData.fileUri is checked with file_ok(file_arg, id). */
    int (*file_ok)(void *arg, const char *id);
    void *file_arg;
};

/* What an OpenAI-compatible request asked, besides its usage. */
struct gr_mock_oai {
    char model[GR_MOCK_NAME_MAX]; /* without "models/"; "" = not valid */
    int stream;                   /* chat: "stream": true */
    int include_usage;            /* chat: stream_options.include_usage */
};

/* Fill *r from the HTTP method and URL path; kind NONE when unknown. */
void gr_mock_route_parse(const char *http_method, const char *path,
                         struct gr_mock_route *r);

/* "generateContent", ... as in URLs and in Google's messages. */
const char *gr_mock_method_name(enum gr_mock_method m);

/*
 * Parse the body of a model call.  Returns 0 and *u, or -EINVAL with
 * Google's wording in msg and the offending field in field ("" for a
 * JSON syntax error).
 */
int gr_mock_parse_body(enum gr_mock_method m, const char *body, size_t len,
                       struct gr_mock_usage *u, char *msg, size_t msglen,
                       char *field, size_t fieldlen);

/*
 * The same, checking every fileData.fileUri that names a file
 * (".../files/ID" or "files/ID") with check(arg, ID): when it answers
 * non-zero, -EACCES with Google's "You do not have permission to access
 * the File ID or it may not exist." in msg.  A fileData part whose
 * mimeType starts with "image/" counts as an image.
 */
int gr_mock_parse_body_ex(enum gr_mock_method m, const char *body, size_t len,
                          struct gr_mock_usage *u, char *msg, size_t msglen,
                          char *field, size_t fieldlen,
                          int (*check)(void *arg, const char *id), void *arg);

/*
 * Bodies of the OpenAI-compatible routes.  Chat: model, messages (text
 * of every non-system message counts as contents text; image_url parts
 * are images).  Embeddings: model, input (a string or a list of them,
 * each one request), dimensions.  0, or -EINVAL with msg and field.
 */
int gr_mock_parse_oai_chat(const char *body, size_t len, struct gr_mock_oai *o,
                           struct gr_mock_usage *u, char *msg, size_t msglen,
                           char *field, size_t fieldlen);
int gr_mock_parse_oai_embed(const char *body, size_t len, struct gr_mock_oai *o,
                            struct gr_mock_usage *u, char *msg, size_t msglen,
                            char *field, size_t fieldlen);

/* Body of a resumable upload start: {"file": {"display_name", "mime_type"}}
 * (camelCase too); absent members leave "" . 0 or -EINVAL with msg. */
int gr_mock_parse_file_start(const char *body, size_t len, char *display,
                             size_t dlen, char *mime, size_t mlen, char *msg,
                             size_t msglen);

/* Bodies of the /mock/ control endpoints. */
enum {
    GR_MOCK_ADMIN_OFFSET_S = 1u << 0,
    GR_MOCK_ADMIN_WALL_S = 1u << 1,
    GR_MOCK_ADMIN_P503 = 1u << 2,
    GR_MOCK_ADMIN_P500 = 1u << 3,
    GR_MOCK_ADMIN_LATENCY = 1u << 4,
    GR_MOCK_ADMIN_NAME = 1u << 5,
    GR_MOCK_ADMIN_STATE = 1u << 6
};

struct gr_mock_admin {
    unsigned has;    /* GR_MOCK_ADMIN_* present */
    double offset_s; /* seconds added to the wall clock */
    double wall_s;   /* unix seconds the wall clock should read */
    double p503;
    double p500;
    int64_t latency_ms[2];
    char name[GR_MOCK_NAME_MAX];
    char state[16];
};

/* Parse {"offset_s": ..., ...}; unknown members are an error. */
int gr_mock_parse_admin(const char *body, size_t len, struct gr_mock_admin *a,
                        char *msg, size_t msglen);

#endif
