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
    GR_MOCK_BATCH_EMBED_CONTENTS
};

enum gr_mock_route_kind {
    GR_MOCK_ROUTE_NONE = 0, /* 404 */
    GR_MOCK_ROUTE_MODEL,    /* /v1beta/models/{model}:{method} */
    GR_MOCK_ROUTE_STATS,    /* GET /mock/stats */
    GR_MOCK_ROUTE_RESET,    /* POST /mock/reset */
    GR_MOCK_ROUTE_CLOCK,    /* GET|POST /mock/clock */
    GR_MOCK_ROUTE_FAULTS,   /* GET|POST /mock/faults */
    GR_MOCK_ROUTE_PROJECT   /* POST /mock/project */
};

struct gr_mock_route {
    enum gr_mock_route_kind kind;
    enum gr_mock_method method;
    int post;        /* the HTTP method was POST */
    char version[8]; /* "v1beta" or "v1" */
    char model[GR_MOCK_NAME_MAX];
};

/* What a request asks of the model, as the mock counts it. */
struct gr_mock_usage {
    int64_t requests;   /* 1, or the batch size */
    int64_t text_bytes; /* bytes of every text part */
    int64_t tokens;     /* ceil(text_bytes / 4) */
    int64_t images;     /* inlineData parts with an image/ type */
    int64_t embed_dims; /* length of each embedding */
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
