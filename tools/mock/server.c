/*
 * server.c - the mock's HTTP server on libmicrohttpd: route, check the
 * key, model and body, charge the quota, inject faults and latency, and
 * answer in Google's shapes: the native model calls, ListModels/GetModel,
 * the OpenAI-compatible routes, Imagen's :predict and the Files API with
 * its resumable upload.  This is the only file of the mock that includes
 * microhttpd.h.
 *
 * Invariants protected: no key ever reaches a log line (MHD's URL has no
 * query string; we print project names only); a body over max_body is
 * refused with a clear 400 and never buffered past the cap; injected
 * latency suspends the connection and parks it on the timer thread, so a
 * slow answer never holds a server thread and concurrent requests are not
 * serialised; the checks run in the order Google applies them (path, key,
 * model, body, file ownership, quota), and a refused request costs no
 * quota; an upload chunk is hashed as it arrives and never buffered; a
 * file is served only to the project that uploaded it.
 */
#include "server.h"

#include "clock.h"
#include "batchjobs.h"
#include "delay.h"
#include "files.h"
#include "media.h"
#include "openai.h"
#include "request.h"
#include "responses.h"
#include "stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define CT_JSON "application/json; charset=UTF-8"
#define CT_SSE "text/event-stream"

/* relaxed: independent counters and knobs, each read on its own */
#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define BUMP(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)

struct gr_mock_server {
    struct gr_mock_state *st;
    struct MHD_Daemon *daemon;
    struct gr_mock_delay *delay;
    int fd;
    int verbose;
    int tls;        /* serving HTTPS (--tls-cert, --tls-key) */
    char bound[80]; /* "127.0.0.1:PORT": upload URLs when no Host header */
};

/* Extra response headers (the upload protocol's X-Goog-Upload-*). */
#define MAX_HDRS 4
struct hdrs {
    int n;
    const char *name[MAX_HDRS];
    char value[MAX_HDRS][384];
};

/* One request's state across MHD's calls of the handler. */
struct req {
    struct gr_mock_buf body; /* upload, up to max_body */
    int too_large;           /* upload went over max_body */
    int answered;            /* a response is already queued */
    int parked;              /* answer ready, waiting for latency */
    unsigned status;         /* of the parked answer */
    const char *ctype;
    struct gr_mock_buf out; /* the parked answer */
    struct hdrs hdrs;       /* of the parked answer */
    int upload;             /* a chunk of a resumable upload: streamed */
    int upload_err;         /* 0 or -errno: the chunk went wrong */
    int64_t upload_offset;  /* X-Goog-Upload-Offset, -1 = none */
    char upload_id[GR_MOCK_UPLOAD_ID_LEN + 1];
};

/* What one handled request answers. */
struct answer {
    unsigned status;
    const char *ctype;
    struct gr_mock_buf body;
    int64_t delay_ns;    /* injected latency, 0 = none */
    const char *project; /* for the verbose log */
    const char *note;    /* for the verbose log */
    struct hdrs hdrs;
};

static const char oom_body[] =
    "{\n  \"error\": {\n    \"code\": 500,\n    \"message\": \"gemroute-mock: "
    "out of memory\",\n    \"status\": \"INTERNAL\"\n  }\n}\n";
/* An iovec takes const data and keeps a pointer to it (no copy, as
 * MHD_RESPMEM_PERSISTENT would, without casting the const away). */
static const struct MHD_IoVec oom_iov = {oom_body, sizeof oom_body - 1};

static void
resume_conn(void *arg)
{
    MHD_resume_connection(arg);
}

static enum MHD_Result
send_buf(struct MHD_Connection *conn, unsigned status, const char *ctype,
         struct gr_mock_buf *b, const struct hdrs *h)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    int i;

    if (b->failed) {
        gr_mock_buf_free(b);
        resp = MHD_create_response_from_iovec(&oom_iov, 1, NULL, NULL);
        status = 500;
        ctype = CT_JSON;
    } else {
        /* MHD frees data with free() once sent: hand the buffer over. */
        resp = MHD_create_response_from_buffer(b->len, b->data,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp != NULL)
            memset(b, 0, sizeof *b);
        else
            gr_mock_buf_free(b);
    }
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, "gemroute-mock");
    for (i = 0; h != NULL && i < h->n; i++)
        MHD_add_response_header(resp, h->name[i], h->value[i]);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static const char *
api_key(struct MHD_Connection *conn)
{
    const char *k =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-goog-api-key");

    if (k == NULL || k[0] == '\0')
        k = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
    return (k == NULL || k[0] == '\0') ? NULL : k;
}

static void add_hdr(struct answer *a, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
add_hdr(struct answer *a, const char *name, const char *fmt, ...)
{
    va_list ap;

    if (a->hdrs.n >= MAX_HDRS)
        return;
    va_start(ap, fmt);
    vsnprintf(a->hdrs.value[a->hdrs.n], sizeof a->hdrs.value[0], fmt, ap);
    va_end(ap);
    a->hdrs.name[a->hdrs.n++] = name;
}

static enum gr_mock_family
family_of(enum gr_mock_method m)
{
    return (m == GR_MOCK_EMBED_CONTENT || m == GR_MOCK_BATCH_EMBED_CONTENTS)
               ? GR_MOCK_EMBED
               : GR_MOCK_GENERATE;
}

static int64_t
draw_latency(struct gr_mock_state *st)
{
    uint32_t lo = LOAD(st->latency_lo_ms), hi = LOAD(st->latency_hi_ms);
    uint64_t span;

    if (hi < lo)
        hi = lo;
    if (hi == 0)
        return 0;
    span = (uint64_t)(hi - lo) * 1000000u + 1u;
    return (int64_t)lo * 1000000 + (int64_t)(gr_mock_rand() % span);
}

static enum gr_mock_outcome
draw_fault(struct gr_mock_state *st)
{
    uint64_t p503 = LOAD(st->p503_ppb), p500 = LOAD(st->p500_ppb), r;

    if (p503 == 0 && p500 == 0)
        return GR_MOCK_SERVE;
    r = gr_mock_rand() % 1000000000u;
    if (r < p503)
        return GR_MOCK_FAIL_503;
    if (r < p503 + p500)
        return GR_MOCK_FAIL_500;
    return GR_MOCK_SERVE;
}

/* The key of an OpenAI-compatible call: "Authorization: Bearer KEY". */
static const char *
bearer_key(struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return h[0] != '\0' ? h : NULL;
}

/*
 * Check the key the way Google does, first of all: the project's index,
 * or -1 with the answer written.  oai: the OpenAI-compatible routes,
 * which take the key as a bearer token and refuse two credentials.
 */
static int
authorize(struct gr_mock_server *srv, struct MHD_Connection *conn, int oai,
          struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    const char *key;
    int p;

    key = api_key(conn);
    if (oai) {
        const char *b = bearer_key(conn);

        if (b != NULL && key != NULL) {
            BUMP(st->g.bad_request);
            a->status = 400;
            gr_mock_resp_error(&a->body, 400, "INVALID_ARGUMENT",
                               "Multiple authentication credentials "
                               "received. Please pass only one.");
            return -1;
        }
        if (b != NULL)
            key = b;
    }
    if (key == NULL) {
        BUMP(st->g.no_key);
        a->status = 403;
        gr_mock_resp_no_key(&a->body);
        return -1;
    }
    p = gr_mock_state_key(st, key);
    if (p < 0) {
        BUMP(st->g.bad_key);
        a->status = 400;
        a->note = "unknown key";
        gr_mock_resp_key_invalid(&a->body);
        return -1;
    }
    a->project = st->projects[p].cfg->name;
    switch (LOAD(st->projects[p].key_state)) {
    case GR_MOCK_KEYS_INVALID:
        BUMP(st->g.bad_key);
        a->status = 400;
        gr_mock_resp_key_invalid(&a->body);
        return -1;
    case GR_MOCK_KEYS_LEAKED:
        BUMP(st->g.leaked_key);
        a->status = 403;
        gr_mock_resp_key_leaked(&a->body);
        return -1;
    case GR_MOCK_KEYS_SERVICE_DISABLED:
    case GR_MOCK_KEYS_SUSPENDED:
    case GR_MOCK_KEYS_BILLING_DISABLED:
        BUMP(st->g.leaked_key);
        a->status = 403;
        gr_mock_resp_refused(&a->body, LOAD(st->projects[p].key_state), p);
        return -1;
    default:
        break;
    }
    return p;
}

/*
 * Charge u to cell (p, m) and draw the fault: 0 when the caller should
 * now write the 200 answer (a->delay_ns is set), -1 when *a already is
 * the answer (429, injected 5xx, or out of memory).
 */
static int
charge(struct gr_mock_server *srv, int p, int m, enum gr_mock_family family,
       const char *model, const struct gr_mock_usage *u, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    struct gr_mock_cell *cell = gr_mock_state_cell(st, (size_t)p, (size_t)m);
    struct gr_mock_verdict v;
    struct gr_mock_cost cost;
    enum gr_mock_outcome outcome;
    int rc;

    cost.requests = u->requests;
    cost.tokens = u->tokens;
    cost.images = u->images;
    outcome = draw_fault(st);
    rc = gr_mock_cell_admit(cell, &cost, st->window_ns, LOAD(st->offset_ns),
                            outcome, &v);
    if (rc == -EAGAIN) {
        a->status = 429;
        a->note = "quota";
        gr_mock_resp_quota(&a->body, st->projects[p].cfg->tier, family, model,
                           cell->limit, &v);
        return -1;
    }
    if (rc < 0) {
        a->status = 500;
        gr_mock_resp_internal(&a->body);
        return -1;
    }
    /* Admitted: the answer, whatever it is, comes after the latency. */
    a->delay_ns = draw_latency(st);
    if (outcome == GR_MOCK_FAIL_503) {
        a->status = 503;
        a->note = "injected";
        gr_mock_resp_overloaded(&a->body);
        return -1;
    }
    if (outcome == GR_MOCK_FAIL_500) {
        a->status = 500;
        a->note = "injected";
        gr_mock_resp_internal(&a->body);
        return -1;
    }
    a->status = 200;
    return 0;
}

static int64_t
mock_wall(struct gr_mock_state *st)
{
    return gr_shm_now_wall() + LOAD(st->offset_ns);
}

/* For a fileData.fileUri: does the calling project own that file? */
struct file_check {
    struct gr_mock_state *st;
    uint32_t project;
    int64_t now_ns;
};

static int
file_ok(void *arg, const char *id)
{
    struct file_check *fc = arg;

    return gr_mock_files_get(fc->st->files, fc->project, id, fc->now_ns, NULL);
}

/* A generate request naming another project's cache, or an expired
 * one: 403, as Google answers it.  True when it answered. */
static int
cache_denied(struct gr_mock_state *st, uint32_t project, struct req *r,
             struct answer *a)
{
    char id[GR_MOCK_CACHE_ID_LEN + 8], msg[160];
    int rc = gr_mock_caches_named(r->body.data, r->body.len, id);

    if (rc == 0 ||
        (rc > 0 && gr_mock_caches_get(st->caches, project, id,
                                      mock_wall(st), NULL) == 0))
        return 0;
    BUMP(st->g.bad_request);
    snprintf(msg, sizeof msg, "CachedContent not found (or permission "
             "denied): cachedContents/%s", rc > 0 ? id : "");
    a->status = 403;
    a->note = "cache";
    gr_mock_resp_error(&a->body, 403, "PERMISSION_DENIED", msg);
    return 1;
}

static void
handle_model(struct gr_mock_server *srv, struct MHD_Connection *conn,
             const struct gr_mock_route *rt, struct req *r, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    struct gr_mock_usage u;
    struct file_check fc;
    char msg[512], field[64];
    const char *alt;
    int p, m, rc, sse = 0;

    BUMP(st->g.requests);
    p = authorize(srv, conn, 0, a);
    if (p < 0)
        return;
    m = gr_mock_state_model(st, rt->model);
    if (m < 0) {
        BUMP(st->g.model_not_found);
        a->status = 404;
        gr_mock_resp_model_not_found(&a->body, rt->version, rt->model,
                                     rt->method);
        return;
    }
    fc.st = st;
    fc.project = (uint32_t)p;
    fc.now_ns = mock_wall(st);
    rc = gr_mock_parse_body_ex(rt->method, r->body.data, r->body.len, &u, msg,
                               sizeof msg, field, sizeof field, file_ok, &fc);
    if (rc == -EACCES) {
        /* Another project's file, or none: Google does not say which. */
        BUMP(st->g.bad_request);
        a->status = 403;
        a->note = "file";
        gr_mock_resp_error(&a->body, 403, "PERMISSION_DENIED", msg);
        return;
    }
    if (rc < 0) {
        BUMP(st->g.bad_request);
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, msg, field);
        return;
    }
    if (cache_denied(st, (uint32_t)p, r, a))
        return;
    if (rt->method == GR_MOCK_GENERATE_CONTENT ||
        rt->method == GR_MOCK_STREAM_GENERATE_CONTENT ||
        rt->method == GR_MOCK_COUNT_TOKENS)
        u.tokens += gr_mock_media_tokens(r->body.data, r->body.len,
                                         rt->model);
    if (rt->method == GR_MOCK_COUNT_TOKENS) {
        char cid[GR_MOCK_CACHE_ID_LEN + 8];
        struct gr_mock_cache_info ci;

        /* countTokens says a named cache's size apart, inside the total
         * (Google's CountTokensResponse.cachedContentTokenCount). */
        if (gr_mock_caches_named(r->body.data, r->body.len, cid) > 0 &&
            gr_mock_caches_get(st->caches, (uint32_t)p, cid, mock_wall(st),
                               &ci) == 0) {
            u.cached_tokens = ci.tokens;
            u.tokens += ci.tokens;
        }
        /* countTokens has its own generous quota at Google: free here. */
        gr_mock_cell_count_tokens_call(
            gr_mock_state_cell(st, (size_t)p, (size_t)m));
        a->status = 200;
        gr_mock_resp_count_tokens(&a->body, &u);
        return;
    }
    if (charge(srv, p, m, family_of(rt->method), rt->model, &u, a) < 0)
        return;
    switch (rt->method) {
    case GR_MOCK_STREAM_GENERATE_CONTENT:
        alt = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "alt");
        sse = alt != NULL && strcmp(alt, "sse") == 0;
        if (sse)
            a->ctype = CT_SSE;
        gr_mock_resp_stream(&a->body, rt->model, &u, sse);
        break;
    case GR_MOCK_EMBED_CONTENT:
        gr_mock_resp_embed(&a->body, &u, 0);
        break;
    case GR_MOCK_BATCH_EMBED_CONTENTS:
        gr_mock_resp_embed(&a->body, &u, 1);
        break;
    case GR_MOCK_PREDICT:
        gr_mock_resp_predict(&a->body, &u);
        break;
    default:
        gr_mock_resp_generate(&a->body, rt->model, &u);
        break;
    }
}

/* POST /v1beta/openai/chat/completions and /v1beta/openai/embeddings. */
static void
handle_oai(struct gr_mock_server *srv, struct MHD_Connection *conn,
           const struct gr_mock_route *rt, struct req *r, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    int chat = rt->kind == GR_MOCK_ROUTE_OAI_CHAT;
    enum gr_mock_method method =
        chat ? GR_MOCK_GENERATE_CONTENT : GR_MOCK_BATCH_EMBED_CONTENTS;
    struct gr_mock_usage u;
    struct gr_mock_oai o;
    char msg[512], field[64];
    int p, m, rc;

    BUMP(st->g.requests);
    p = authorize(srv, conn, 1, a);
    if (p < 0)
        return;
    rc = chat ? gr_mock_parse_oai_chat(r->body.data, r->body.len, &o, &u, msg,
                                       sizeof msg, field, sizeof field)
              : gr_mock_parse_oai_embed(r->body.data, r->body.len, &o, &u, msg,
                                        sizeof msg, field, sizeof field);
    if (rc < 0) {
        BUMP(st->g.bad_request);
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, msg, field);
        return;
    }
    m = o.model[0] != '\0' ? gr_mock_state_model(st, o.model) : -1;
    if (m < 0) {
        BUMP(st->g.model_not_found);
        a->status = 404;
        gr_mock_resp_model_not_found(&a->body, rt->version,
                                     o.model[0] != '\0' ? o.model : "?",
                                     chat ? method : GR_MOCK_EMBED_CONTENT);
        return;
    }
    if (charge(srv, p, m, chat ? GR_MOCK_GENERATE : GR_MOCK_EMBED, o.model, &u,
               a) < 0)
        return;
    if (!chat) {
        gr_mock_oai_embed(&a->body, o.model, &u);
    } else if (o.stream) {
        a->ctype = CT_SSE;
        gr_mock_oai_chat_stream(&a->body, o.model, &u, o.include_usage);
    } else {
        gr_mock_oai_chat(&a->body, o.model, &u);
    }
}

/* A decimal query argument in [lo, hi]; def when absent, -1 when bad. */
static int64_t
int_arg(struct MHD_Connection *conn, const char *name, int64_t def, int64_t lo,
        int64_t hi)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    char *end;
    long long n;

    if (v == NULL || v[0] == '\0')
        return def;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (*end != '\0' || errno != 0 || n < 0)
        return -1;
    return n < lo ? lo : n > hi ? hi : n;
}

/* GET /{v}/models, /{v}/models/{m} and /{v}/openai/models. */
static void
handle_models(struct gr_mock_server *srv, struct MHD_Connection *conn,
              const struct gr_mock_route *rt, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    int64_t size, from;
    char next[24] = "", msg[256];

    if (authorize(srv, conn, rt->kind == GR_MOCK_ROUTE_OAI_MODELS, a) < 0)
        return;
    if (rt->kind == GR_MOCK_ROUTE_OAI_MODELS) {
        a->status = 200;
        gr_mock_oai_models(&a->body, st->models, st->n_models);
        return;
    }
    if (rt->kind == GR_MOCK_ROUTE_MODEL_GET) {
        if (gr_mock_state_model(st, rt->model) < 0) {
            a->status = 404;
            snprintf(msg, sizeof msg,
                     "models/%s is not found for API version %s.", rt->model,
                     rt->version);
            gr_mock_resp_error(&a->body, 404, "NOT_FOUND", msg);
            return;
        }
        a->status = 200;
        gr_mock_resp_model(&a->body, rt->model);
        return;
    }
    size = int_arg(conn, "pageSize", 50, 1, 1000);
    from = int_arg(conn, "pageToken", 0, 0, INT64_MAX);
    if (size < 0 || from < 0 || (uint64_t)from > st->n_models) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, "Invalid page size or page token.",
                                 size < 0 ? "page_size" : "page_token");
        return;
    }
    if ((uint64_t)(from + size) < st->n_models)
        snprintf(next, sizeof next, "%" PRId64, from + size);
    else
        size = (int64_t)st->n_models - from;
    a->status = 200;
    gr_mock_resp_models(&a->body, st->models + from, (size_t)size, next);
}

/* "http://HOST:PORT" (https when serving TLS) the client reached us at:
 * its Host header when that is a plain host[:port], else the address we
 * listen on. */
static void
base_url(struct gr_mock_server *srv, struct MHD_Connection *conn, char *out,
         size_t outlen)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_HOST);
    size_t n = h != NULL ? strlen(h) : 0;

    if (n == 0 || n > 255 ||
        strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789.-:[]") != n)
        h = srv->bound;
    snprintf(out, outlen, "%s://%s", srv->tls ? "https" : "http", h);
}

static void
storage_error(int rc, struct gr_mock_state *st, struct answer *a)
{
    char msg[256];

    a->status = 400;
    a->note = "storage";
    if (rc == -EFBIG) {
        snprintf(msg, sizeof msg,
                 "File is larger than its declared size or the limit of "
                 "%" PRId64 " bytes.",
                 st->cfg->max_file_bytes);
        gr_mock_resp_error(&a->body, 400, "INVALID_ARGUMENT", msg);
    } else if (rc == -ENOSPC) {
        snprintf(msg, sizeof msg,
                 "Storage quota exceeded: a project may hold at most "
                 "%" PRId64 " bytes of files.",
                 st->cfg->max_storage_bytes);
        gr_mock_resp_error(&a->body, 400, "FAILED_PRECONDITION", msg);
    } else {
        snprintf(msg, sizeof msg,
                 "gemroute-mock holds at most %" PRId64
                 " files and uploads; delete some.",
                 st->cfg->max_files);
        gr_mock_resp_error(&a->body, 400, "FAILED_PRECONDITION", msg);
    }
}

/* POST /upload/{v}/files, command "start": open a session. */
static void
upload_start(struct gr_mock_server *srv, struct MHD_Connection *conn,
             const struct gr_mock_route *rt, struct req *r, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    const char *proto, *cmd, *len, *type;
    char display[128], mime[128], msg[256], id[GR_MOCK_UPLOAD_ID_LEN + 1];
    char base[300], *end;
    long long declared = -1;
    int p, rc;

    p = authorize(srv, conn, 0, a);
    if (p < 0)
        return;
    proto = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                        "X-Goog-Upload-Protocol");
    cmd = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                      "X-Goog-Upload-Command");
    if (proto == NULL || strcasecmp(proto, "resumable") != 0 || cmd == NULL ||
        strcasecmp(cmd, "start") != 0) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body,
                                 "gemroute-mock supports the resumable upload "
                                 "protocol only: X-Goog-Upload-Protocol: "
                                 "resumable and X-Goog-Upload-Command: start.",
                                 "");
        return;
    }
    len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                      "X-Goog-Upload-Header-Content-Length");
    if (len != NULL) {
        errno = 0;
        declared = strtoll(len, &end, 10);
        if (len[0] == '\0' || *end != '\0' || errno != 0 || declared < 0) {
            a->status = 400;
            gr_mock_resp_bad_request(&a->body,
                                     "X-Goog-Upload-Header-Content-Length "
                                     "must be a byte count.",
                                     "");
            return;
        }
    }
    if (gr_mock_parse_file_start(r->body.data, r->body.len, display,
                                 sizeof display, mime, sizeof mime, msg,
                                 sizeof msg) < 0) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, msg, "file");
        return;
    }
    type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       "X-Goog-Upload-Header-Content-Type");
    if (type != NULL && type[0] != '\0')
        snprintf(mime, sizeof mime, "%s", type);
    if (mime[0] == '\0')
        snprintf(mime, sizeof mime, "application/octet-stream");
    rc = gr_mock_files_start(st->files, (uint32_t)p, declared, display, mime,
                             mock_wall(st), id);
    if (rc < 0) {
        storage_error(rc, st, a);
        return;
    }
    base_url(srv, conn, base, sizeof base);
    a->status = 200;
    add_hdr(a, "X-Goog-Upload-URL",
            "%s/upload/%s/files?upload_id=%s&upload_protocol=resumable", base,
            rt->version, id);
    add_hdr(a, "X-Goog-Upload-Status", "active");
    add_hdr(a, "X-Goog-Upload-Chunk-Granularity", "262144");
    gr_mock_buf_add(&a->body, "", 0);
}

/* POST to the upload URL: commands upload, finalize, query, cancel. */
static void
upload_chunk(struct gr_mock_server *srv, struct MHD_Connection *conn,
             const struct gr_mock_route *rt, struct req *r, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    struct gr_mock_file_info f;
    struct gr_mock_jw w;
    const char *cmd = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                  "X-Goog-Upload-Command");
    char base[300], msg[256];
    int64_t got;
    int rc;

    if (cmd == NULL)
        cmd = "";
    if (r->upload_err == -EPROTO) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body,
                                 "Bytes may only come with "
                                 "X-Goog-Upload-Command: upload (or "
                                 "\"upload, finalize\").",
                                 "");
        return;
    }
    if (r->upload_err < 0 && r->upload_err != -ENOENT &&
        r->upload_err != -ERANGE) {
        /* Past its size or the storage: the session is already gone. */
        storage_error(r->upload_err, st, a);
        add_hdr(a, "X-Goog-Upload-Status", "cancelled");
        return;
    }
    got = gr_mock_files_received(st->files, r->upload_id);
    if (r->upload_err == -ENOENT || got < 0) {
        a->status = 404;
        gr_mock_resp_error(&a->body, 404, "NOT_FOUND",
                           "No upload session with this upload_id (it was "
                           "finalized, cancelled or expired).");
        return;
    }
    if (r->upload_err == -ERANGE) {
        a->status = 400;
        snprintf(msg, sizeof msg,
                 "X-Goog-Upload-Offset %" PRId64 " does not match the %" PRId64
                 " bytes received.",
                 r->upload_offset, got);
        gr_mock_resp_bad_request(&a->body, msg, "");
        add_hdr(a, "X-Goog-Upload-Status", "active");
        add_hdr(a, "X-Goog-Upload-Size-Received", "%" PRId64, got);
        return;
    }
    if (strstr(cmd, "cancel") != NULL) {
        gr_mock_files_cancel(st->files, r->upload_id);
        a->status = 200;
        add_hdr(a, "X-Goog-Upload-Status", "cancelled");
        return;
    }
    if (strstr(cmd, "finalize") == NULL) {
        /* upload or query: say how far we are. */
        a->status = 200;
        add_hdr(a, "X-Goog-Upload-Status", "active");
        add_hdr(a, "X-Goog-Upload-Size-Received", "%" PRId64, got);
        return;
    }
    rc = gr_mock_files_finalize(st->files, r->upload_id, mock_wall(st), &f);
    if (rc < 0) {
        a->status = 400;
        snprintf(msg, sizeof msg,
                 "Upload is incomplete: %" PRId64
                 " bytes received, fewer than declared.",
                 got);
        gr_mock_resp_bad_request(&a->body, msg, "");
        add_hdr(a, "X-Goog-Upload-Status", "active");
        add_hdr(a, "X-Goog-Upload-Size-Received", "%" PRId64, got);
        return;
    }
    base_url(srv, conn, base, sizeof base);
    a->status = 200;
    add_hdr(a, "X-Goog-Upload-Status", "final");
    gr_mock_jw_init(&w, &a->body, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_file_json(&w, "file", &f, base, rt->version);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(&a->body, "\n", 1);
}

static void
file_denied(const char *id, struct answer *a)
{
    char msg[160];

    snprintf(msg, sizeof msg,
             "You do not have permission to access the File %s or it may not "
             "exist.",
             id);
    a->status = 403;
    a->note = "file";
    gr_mock_resp_error(&a->body, 403, "PERMISSION_DENIED", msg);
}

/* GET/DELETE /{v}/files/{id} and GET /{v}/files. */
static void
handle_files(struct gr_mock_server *srv, struct MHD_Connection *conn,
             const struct gr_mock_route *rt, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    struct gr_mock_file_info page[100];
    struct gr_mock_jw w;
    char base[300], next[24];
    const char *tok;
    uint64_t cursor = 0;
    int64_t size;
    size_t n, i;
    int p;

    p = authorize(srv, conn, 0, a);
    if (p < 0)
        return;
    base_url(srv, conn, base, sizeof base);
    if (rt->kind == GR_MOCK_ROUTE_FILE_GET) {
        if (gr_mock_files_get(st->files, (uint32_t)p, rt->file, mock_wall(st),
                              &page[0]) < 0) {
            file_denied(rt->file, a);
            return;
        }
        a->status = 200;
        gr_mock_jw_init(&w, &a->body, 1);
        gr_mock_file_json(&w, NULL, &page[0], base, rt->version);
        gr_mock_buf_add(&a->body, "\n", 1);
        return;
    }
    if (rt->kind == GR_MOCK_ROUTE_FILE_DELETE) {
        if (gr_mock_files_delete(st->files, (uint32_t)p, rt->file,
                                 mock_wall(st)) < 0) {
            file_denied(rt->file, a);
            return;
        }
        a->status = 200;
        gr_mock_buf_adds(&a->body, "{}\n");
        return;
    }
    size = int_arg(conn, "pageSize", 10, 1, 100);
    tok = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "pageToken");
    if (tok != NULL && tok[0] != '\0') {
        char *end;

        errno = 0;
        cursor = strtoull(tok, &end, 10);
        if (*end != '\0' || errno != 0 || cursor == 0)
            size = -1;
    }
    if (size < 0) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, "Invalid page size or page token.",
                                 "");
        return;
    }
    n = gr_mock_files_list(st->files, (uint32_t)p, mock_wall(st), &cursor, page,
                           (size_t)size);
    a->status = 200;
    gr_mock_jw_init(&w, &a->body, 1);
    gr_mock_jw_object(&w, NULL);
    /* Google leaves an empty list out: no files answers {}. */
    if (n > 0) {
        gr_mock_jw_array(&w, "files");
        for (i = 0; i < n; i++)
            gr_mock_file_json(&w, NULL, &page[i], base, rt->version);
        gr_mock_jw_end(&w);
    }
    if (cursor != 0) {
        snprintf(next, sizeof next, "%" PRIu64, cursor);
        gr_mock_jw_str(&w, "nextPageToken", next);
    }
    gr_mock_jw_end(&w);
    gr_mock_buf_add(&a->body, "\n", 1);
}

/* The cachedContents routes: each cache is its creator's alone. */
static void
handle_caches(struct gr_mock_server *srv, struct MHD_Connection *conn,
              const struct gr_mock_route *rt, struct req *r,
              struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    struct gr_mock_cache_info page[100];
    struct gr_mock_jw w;
    char msg[256] = "";
    size_t n, i;
    int p, rc;

    p = authorize(srv, conn, 0, a);
    if (p < 0)
        return;
    switch (rt->kind) {
    case GR_MOCK_ROUTE_CACHE_CREATE:
        rc = gr_mock_caches_create(st->caches, (uint32_t)p, r->body.data,
                                   r->body.len, mock_wall(st), &page[0], msg,
                                   sizeof msg);
        break;
    case GR_MOCK_ROUTE_CACHE_GET:
        rc = gr_mock_caches_get(st->caches, (uint32_t)p, rt->file,
                                mock_wall(st), &page[0]);
        break;
    case GR_MOCK_ROUTE_CACHE_PATCH:
        rc = gr_mock_caches_patch(st->caches, (uint32_t)p, rt->file,
                                  r->body.data, r->body.len, mock_wall(st),
                                  &page[0], msg, sizeof msg);
        break;
    case GR_MOCK_ROUTE_CACHE_DELETE:
        rc = gr_mock_caches_delete(st->caches, (uint32_t)p, rt->file,
                                   mock_wall(st));
        if (rc == 0) {
            a->status = 200;
            gr_mock_buf_adds(&a->body, "{}\n");
            return;
        }
        break;
    default:
        n = gr_mock_caches_list(st->caches, (uint32_t)p, mock_wall(st), page,
                                sizeof page / sizeof page[0]);
        a->status = 200;
        gr_mock_jw_init(&w, &a->body, 1);
        gr_mock_jw_object(&w, NULL);
        if (n > 0) {
            gr_mock_jw_array(&w, "cachedContents");
            for (i = 0; i < n; i++)
                gr_mock_cache_json(&w, NULL, &page[i]);
            gr_mock_jw_end(&w);
        }
        gr_mock_jw_end(&w);
        gr_mock_buf_add(&a->body, "\n", 1);
        return;
    }
    if (rc == -EACCES) {
        snprintf(msg, sizeof msg, "CachedContent not found (or permission "
                 "denied): cachedContents/%s", rt->file);
        a->status = 403;
        a->note = "cache";
        gr_mock_resp_error(&a->body, 403, "PERMISSION_DENIED", msg);
        return;
    }
    if (rc == -EMFILE) {
        a->status = 400;
        gr_mock_resp_error(&a->body, 400, "FAILED_PRECONDITION",
                           "gemroute-mock holds at most 1000 cached "
                           "contents; delete some.");
        return;
    }
    if (rc < 0) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, msg, "");
        return;
    }
    a->status = 200;
    gr_mock_jw_init(&w, &a->body, 1);
    gr_mock_cache_json(&w, NULL, &page[0]);
    gr_mock_buf_add(&a->body, "\n", 1);
}

/* For a batch's input file: its bytes, when the project owns it. */
static int
batch_file(void *arg, const char *id, char **data, size_t *len)
{
    struct file_check *fc = arg;

    return gr_mock_files_bytes(fc->st->files, fc->project, id, fc->now_ns,
                               data, len);
}

/* 429 for a batch limit, in Google's quota shape (no RetryInfo: the
 * room comes back when a job ends, at no time anyone can say). */
static void
batch_quota(struct answer *a, const char *model, int which, int64_t limit)
{
    const char *metric = which == GR_MOCK_BATCH_JOBS
        ? "generativelanguage.googleapis.com/batch_concurrent_jobs"
        : "generativelanguage.googleapis.com/batch_enqueued_tokens";
    const char *id = which == GR_MOCK_BATCH_JOBS
        ? "BatchConcurrentJobsPerProjectPerModel"
        : "BatchEnqueuedTokensPerProjectPerModel";
    struct gr_mock_buf msg = {0};
    struct gr_mock_jw w;
    char value[32];

    gr_mock_buf_addf(&msg, "You exceeded your current quota, please check "
                     "your plan and billing details.\n* Quota exceeded for "
                     "metric: %s, limit: %lld, model: %s", metric,
                     (long long)limit, model);
    snprintf(value, sizeof value, "%lld", (long long)limit);
    a->status = 429;
    a->note = "batch quota";
    gr_mock_jw_init(&w, &a->body, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_object(&w, "error");
    gr_mock_jw_int(&w, "code", 429);
    gr_mock_jw_str(&w, "message", msg.failed ? "" : msg.data);
    gr_mock_jw_str(&w, "status", "RESOURCE_EXHAUSTED");
    gr_mock_jw_array(&w, "details");
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "@type", "type.googleapis.com/google.rpc.QuotaFailure");
    gr_mock_jw_array(&w, "violations");
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "quotaMetric", metric);
    gr_mock_jw_str(&w, "quotaId", id);
    gr_mock_jw_object(&w, "quotaDimensions");
    gr_mock_jw_str(&w, "location", "global");
    gr_mock_jw_str(&w, "model", model);
    gr_mock_jw_end(&w);
    gr_mock_jw_str(&w, "quotaValue", value);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(&a->body, "\n", 1);
    gr_mock_buf_free(&msg);
}

/* Batch mode: submit, get, cancel, delete, list, and a result file's
 * download.  Each job is its submitter's alone, as files are. */
static void
handle_batches(struct gr_mock_server *srv, struct MHD_Connection *conn,
               const struct gr_mock_route *rt, struct req *r,
               struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    struct gr_mock_batch_limits lim = {GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED};
    const struct gr_mock_project_cfg *pc;
    struct file_check fc;
    char msg[512] = "";
    int64_t limit = 0;
    size_t i;
    int p, rc, which = 0;

    p = authorize(srv, conn, 0, a);
    if (p < 0)
        return;
    fc.st = st;
    fc.project = (uint32_t)p;
    fc.now_ns = mock_wall(st);
    switch (rt->kind) {
    case GR_MOCK_ROUTE_BATCH_CREATE:
        if (gr_mock_state_model(st, rt->model) < 0) {
            BUMP(st->g.model_not_found);
            a->status = 404;
            gr_mock_resp_model_not_found(&a->body, rt->version, rt->model,
                                         GR_MOCK_GENERATE_CONTENT);
            return;
        }
        pc = st->projects[p].cfg;
        for (i = 0; i < pc->n_limits; i++) {
            if (strcmp(pc->limits[i].model, rt->model) == 0) {
                lim.tokens = pc->limits[i].batch_tokens;
                lim.jobs = pc->limits[i].batch_jobs;
            }
        }
        rc = gr_mock_batchjobs_create(st->batches, (uint32_t)p, rt->model,
                                      r->body.data, r->body.len, fc.now_ns,
                                      &lim, batch_file, &fc, &a->body, msg,
                                      sizeof msg, &which, &limit);
        break;
    case GR_MOCK_ROUTE_BATCH_GET:
        rc = gr_mock_batchjobs_get(st->batches, (uint32_t)p, rt->file,
                                   fc.now_ns, &a->body);
        break;
    case GR_MOCK_ROUTE_BATCH_CANCEL:
        rc = gr_mock_batchjobs_cancel(st->batches, (uint32_t)p, rt->file,
                                      fc.now_ns);
        if (rc == 0)
            gr_mock_buf_adds(&a->body, "{}\n");
        break;
    case GR_MOCK_ROUTE_BATCH_DELETE:
        rc = gr_mock_batchjobs_delete(st->batches, (uint32_t)p, rt->file);
        if (rc == 0)
            gr_mock_buf_adds(&a->body, "{}\n");
        break;
    case GR_MOCK_ROUTE_FILE_DOWNLOAD:
        rc = gr_mock_batchjobs_result_file(st->batches, (uint32_t)p,
                                           rt->file, fc.now_ns, &a->body);
        if (rc < 0) {
            gr_mock_buf_free(&a->body);
            file_denied(rt->file, a);
            return;
        }
        a->ctype = "application/jsonl";
        break;
    default:
        gr_mock_batchjobs_list(st->batches, (uint32_t)p, fc.now_ns, &a->body);
        rc = 0;
        break;
    }
    if (rc == -EAGAIN) {
        gr_mock_buf_free(&a->body);
        batch_quota(a, rt->model, which, limit);
        return;
    }
    if (rc < 0)
        gr_mock_buf_free(&a->body);
    if (rc == -EACCES) {
        BUMP(st->g.bad_request);
        if (msg[0] == '\0')
            snprintf(msg, sizeof msg, "Batch not found (or permission "
                     "denied): batches/%s", rt->file);
        a->status = 403;
        a->note = "batch";
        gr_mock_resp_error(&a->body, 403, "PERMISSION_DENIED", msg);
        return;
    }
    if (rc == -EMFILE) {
        a->status = 400;
        gr_mock_resp_error(&a->body, 400, "FAILED_PRECONDITION",
                           "gemroute-mock holds at most 1000 batch jobs; "
                           "delete some.");
        return;
    }
    if (rc < 0) {
        BUMP(st->g.bad_request);
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, msg[0] != '\0' ? msg
                                 : "Out of memory.", "");
        return;
    }
    a->status = 200;
}

static int
admin_body(struct req *r, struct gr_mock_admin *ad, struct answer *a)
{
    char msg[256];

    if (gr_mock_parse_admin(r->body.data, r->body.len, ad, msg, sizeof msg) <
        0) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, msg, "");
        return -EINVAL;
    }
    return 0;
}

static void
handle_clock(struct gr_mock_state *st, const struct gr_mock_route *rt,
             struct req *r, struct answer *a)
{
    struct gr_mock_admin ad;

    if (rt->post) {
        if (admin_body(r, &ad, a) < 0)
            return;
        if (ad.has & GR_MOCK_ADMIN_WALL_S) {
            int64_t want = (int64_t)(ad.wall_s * 1e9);

            /* relaxed: the offset is a knob read on its own */
            atomic_store_explicit(&st->offset_ns, want - gr_shm_now_wall(),
                                  memory_order_relaxed);
        } else if (ad.has & GR_MOCK_ADMIN_OFFSET_S) {
            atomic_store_explicit(&st->offset_ns, (int64_t)(ad.offset_s * 1e9),
                                  memory_order_relaxed);
        } else {
            a->status = 400;
            gr_mock_resp_bad_request(&a->body,
                                     "Give \"offset_s\" (seconds "
                                     "added to the wall clock) or \"wall_s\" "
                                     "(unix seconds to read).",
                                     "");
            return;
        }
    }
    a->status = 200;
    gr_mock_stats_clock(st, &a->body);
}

static void
handle_faults(struct gr_mock_state *st, const struct gr_mock_route *rt,
              struct req *r, struct answer *a)
{
    struct gr_mock_admin ad;
    double p503, p500;
    int64_t lo, hi;

    if (rt->post) {
        if (admin_body(r, &ad, a) < 0)
            return;
        p503 = ad.has & GR_MOCK_ADMIN_P503 ? ad.p503 : LOAD(st->p503_ppb) / 1e9;
        p500 = ad.has & GR_MOCK_ADMIN_P500 ? ad.p500 : LOAD(st->p500_ppb) / 1e9;
        lo = ad.has & GR_MOCK_ADMIN_LATENCY ? ad.latency_ms[0]
                                            : LOAD(st->latency_lo_ms);
        hi = ad.has & GR_MOCK_ADMIN_LATENCY ? ad.latency_ms[1]
                                            : LOAD(st->latency_hi_ms);
        if (!(p503 >= 0 && p503 <= 1 && p500 >= 0 && p500 <= 1 &&
              p503 + p500 <= 1.0 + 1e-12) ||
            lo < 0 || hi < lo || hi > GR_MOCK_MAX_LATENCY_MS) {
            a->status = 400;
            gr_mock_resp_bad_request(
                &a->body,
                "p503 and p500 must be in "
                "[0, 1] with a sum <= 1; latency_ms must "
                "be [lo, hi] with 0 <= lo <= hi <= 600000.",
                "");
            return;
        }
        gr_mock_state_set_faults(st, p503, p500, (uint32_t)lo, (uint32_t)hi);
    }
    a->status = 200;
    gr_mock_stats_faults(st, &a->body);
}

static void
handle_project(struct gr_mock_state *st, struct req *r, struct answer *a)
{
    static const char *const states[GR_MOCK_KEY_STATES] = {
        "ok", "invalid", "leaked", "service_disabled", "suspended",
        "billing_disabled",
    };
    struct gr_mock_admin ad;
    struct gr_mock_jw w;
    int p, s;

    if (admin_body(r, &ad, a) < 0)
        return;
    if (!(ad.has & GR_MOCK_ADMIN_NAME) || !(ad.has & GR_MOCK_ADMIN_STATE)) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body,
                                 "Give \"name\" and \"state\" (ok, "
                                 "invalid, leaked, service_disabled, "
                                 "suspended or billing_disabled).",
                                 "");
        return;
    }
    p = gr_mock_state_project(st, ad.name);
    if (p < 0) {
        a->status = 404;
        gr_mock_resp_error(&a->body, 404, "NOT_FOUND", "No such project.");
        return;
    }
    for (s = 0; s < GR_MOCK_KEY_STATES; s++)
        if (strcmp(ad.state, states[s]) == 0)
            break;
    if (s == GR_MOCK_KEY_STATES) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body,
                                 "state must be ok, invalid, leaked, "
                                 "service_disabled, suspended or "
                                 "billing_disabled.",
                                 "state");
        return;
    }
    /* relaxed: a knob, read on its own by each request */
    atomic_store_explicit(&st->projects[p].key_state, s, memory_order_relaxed);
    a->status = 200;
    gr_mock_jw_init(&w, &a->body, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "name", ad.name);
    gr_mock_jw_str(&w, "state", states[s]);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(&a->body, "\n", 1);
}

static void
handle(struct gr_mock_server *srv, struct MHD_Connection *conn, const char *url,
       const char *method, struct req *r, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    struct gr_mock_route rt;
    struct gr_mock_jw w;

    gr_mock_route_parse(method, url, &rt);
    if (r->body.failed) {
        a->status = 500; /* out of memory while reading */
        gr_mock_resp_internal(&a->body);
    } else if (r->too_large) {
        BUMP(st->g.too_large);
        a->status = 400;
        gr_mock_resp_too_large(&a->body, st->max_body);
    } else {
        switch (rt.kind) {
        case GR_MOCK_ROUTE_MODEL:
            handle_model(srv, conn, &rt, r, a);
            break;
        case GR_MOCK_ROUTE_STATS:
            a->status = 200;
            gr_mock_stats_render(st, &a->body);
            break;
        case GR_MOCK_ROUTE_RESET:
            gr_mock_state_reset(st);
            a->status = 200;
            gr_mock_jw_init(&w, &a->body, 1);
            gr_mock_jw_object(&w, NULL);
            gr_mock_jw_bool(&w, "reset", 1);
            gr_mock_jw_end(&w);
            gr_mock_buf_add(&a->body, "\n", 1);
            break;
        case GR_MOCK_ROUTE_CLOCK:
            handle_clock(st, &rt, r, a);
            break;
        case GR_MOCK_ROUTE_FAULTS:
            handle_faults(st, &rt, r, a);
            break;
        case GR_MOCK_ROUTE_PROJECT:
            handle_project(st, r, a);
            break;
        case GR_MOCK_ROUTE_OAI_CHAT:
        case GR_MOCK_ROUTE_OAI_EMBED:
            handle_oai(srv, conn, &rt, r, a);
            break;
        case GR_MOCK_ROUTE_MODELS_LIST:
        case GR_MOCK_ROUTE_MODEL_GET:
        case GR_MOCK_ROUTE_OAI_MODELS:
            handle_models(srv, conn, &rt, a);
            break;
        case GR_MOCK_ROUTE_FILES_LIST:
        case GR_MOCK_ROUTE_FILE_GET:
        case GR_MOCK_ROUTE_FILE_DELETE:
            handle_files(srv, conn, &rt, a);
            break;
        case GR_MOCK_ROUTE_CACHE_CREATE:
        case GR_MOCK_ROUTE_CACHES_LIST:
        case GR_MOCK_ROUTE_CACHE_GET:
        case GR_MOCK_ROUTE_CACHE_PATCH:
        case GR_MOCK_ROUTE_CACHE_DELETE:
            handle_caches(srv, conn, &rt, r, a);
            break;
        case GR_MOCK_ROUTE_BATCH_CREATE:
        case GR_MOCK_ROUTE_BATCHES_LIST:
        case GR_MOCK_ROUTE_BATCH_GET:
        case GR_MOCK_ROUTE_BATCH_CANCEL:
        case GR_MOCK_ROUTE_BATCH_DELETE:
        case GR_MOCK_ROUTE_FILE_DOWNLOAD:
            handle_batches(srv, conn, &rt, r, a);
            break;
        case GR_MOCK_ROUTE_UPLOAD:
            if (r->upload)
                upload_chunk(srv, conn, &rt, r, a);
            else
                upload_start(srv, conn, &rt, r, a);
            break;
        default:
            BUMP(st->g.unknown_path);
            a->status = 404;
            gr_mock_resp_unknown_path(&a->body);
            break;
        }
    }
    /* Google's OpenAI-compatible endpoint sends errors as [ {...} ]. */
    if ((rt.kind == GR_MOCK_ROUTE_OAI_CHAT ||
         rt.kind == GR_MOCK_ROUTE_OAI_EMBED ||
         rt.kind == GR_MOCK_ROUTE_OAI_MODELS) &&
        a->status != 200)
        gr_mock_oai_wrap_error(&a->body);
    /* Without alt=sse, Google wraps stream errors in [ ... ] too. */
    if (rt.kind == GR_MOCK_ROUTE_MODEL &&
        rt.method == GR_MOCK_STREAM_GENERATE_CONTENT && a->status != 200 &&
        !a->body.failed) {
        const char *alt =
            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "alt");

        if (alt == NULL || strcmp(alt, "sse") != 0) {
            struct gr_mock_buf wrapped = {0};

            gr_mock_buf_add(&wrapped, "[", 1);
            gr_mock_buf_add(&wrapped, a->body.data, a->body.len);
            gr_mock_buf_add(&wrapped, "]", 1);
            gr_mock_buf_free(&a->body);
            a->body = wrapped;
        }
    }
    if (srv->verbose)
        fprintf(stderr, "gemroute-mock: %s %s project=%s -> %u%s%s%s\n", method,
                url, a->project != NULL ? a->project : "-", a->status,
                a->note != NULL ? " (" : "", a->note != NULL ? a->note : "",
                a->note != NULL ? ")" : "");
}

static enum MHD_Result
too_large_now(struct gr_mock_server *srv, struct MHD_Connection *conn)
{
    struct gr_mock_buf b = {0};

    BUMP(srv->st->g.too_large);
    gr_mock_resp_too_large(&b, srv->st->max_body);
    return send_buf(conn, 400, CT_JSON, &b, NULL);
}

/*
 * First call of a request: is it a chunk to an upload URL?  Then note
 * the session and check the offset before any byte arrives.
 */
static int
upload_begin(struct gr_mock_server *srv, struct MHD_Connection *conn,
             const char *url, const char *method, struct req *r)
{
    struct gr_mock_route rt;
    const char *id, *cmd, *off;
    char *end;
    int64_t got;

    gr_mock_route_parse(method, url, &rt);
    if (rt.kind != GR_MOCK_ROUTE_UPLOAD)
        return 0;
    id = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "upload_id");
    if (id == NULL)
        return 0;
    r->upload = 1;
    r->upload_offset = -1;
    if (strlen(id) != GR_MOCK_UPLOAD_ID_LEN) {
        r->upload_err = -ENOENT;
        return 1;
    }
    memcpy(r->upload_id, id, sizeof r->upload_id);
    got = gr_mock_files_received(srv->st->files, r->upload_id);
    if (got < 0) {
        r->upload_err = -ENOENT;
        return 1;
    }
    cmd = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                      "X-Goog-Upload-Command");
    off = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                      "X-Goog-Upload-Offset");
    if (cmd != NULL && strstr(cmd, "upload") != NULL) {
        errno = 0;
        r->upload_offset = off != NULL ? strtoll(off, &end, 10) : -1;
        if (off == NULL || off[0] == '\0' || *end != '\0' || errno != 0 ||
            r->upload_offset != got)
            r->upload_err = -ERANGE;
    } else {
        /* query, cancel, or a bare finalize: no bytes belong here. */
        r->upload_err = 0;
    }
    return 1;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload,
           size_t *upload_size, void **con_cls)
{
    struct gr_mock_server *srv = cls;
    struct req *r = *con_cls;
    struct answer a;
    const char *cl;
    int rc;

    (void)version;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        *con_cls = r;
        /* A chunk of a resumable upload is hashed as it comes, never
         * buffered, so max_body does not apply: max_file_bytes does. */
        if (upload_begin(srv, conn, url, method, r))
            return MHD_YES;
        /* Refuse a declared oversized body before reading any of it. */
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > srv->st->max_body) {
            r->too_large = 1;
            r->answered = 1;
            return too_large_now(srv, conn);
        }
        return MHD_YES;
    }
    if (r->answered) {
        *upload_size = 0; /* drain whatever still comes */
        return MHD_YES;
    }
    if (r->parked) {
        /* Resumed after the injected latency: send what was prepared. */
        r->parked = 0;
        r->answered = 1;
        return send_buf(conn, r->status, r->ctype, &r->out, &r->hdrs);
    }
    if (*upload_size != 0 && r->upload) {
        /* Bytes belong only to an "upload" command at the right offset. */
        if (r->upload_err == 0 && r->upload_offset < 0)
            r->upload_err = -EPROTO;
        if (r->upload_err == 0)
            r->upload_err = gr_mock_files_feed(srv->st->files, r->upload_id,
                                               upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size != 0) {
        /* A chunked body has no Content-Length: stop keeping it at the
         * cap and answer once the client has finished sending. */
        if (!r->too_large) {
            if (r->body.len + *upload_size > srv->st->max_body) {
                r->too_large = 1;
                gr_mock_buf_free(&r->body);
            } else {
                gr_mock_buf_add(&r->body, upload, *upload_size);
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }

    memset(&a, 0, sizeof a);
    a.ctype = CT_JSON;
    handle(srv, conn, url, method, r, &a);
    if (a.delay_ns > 0) {
        r->parked = 1;
        r->status = a.status;
        r->ctype = a.ctype;
        r->out = a.body;
        r->hdrs = a.hdrs;
        MHD_suspend_connection(conn);
        rc =
            gr_mock_delay_add(srv->delay, gr_shm_now_mono() + a.delay_ns, conn);
        if (rc < 0)
            MHD_resume_connection(conn); /* stopping: answer at once */
        return MHD_YES;
    }
    r->answered = 1;
    return send_buf(conn, a.status, a.ctype, &a.body, &a.hdrs);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode why)
{
    struct req *r = *con_cls;

    (void)cls;
    (void)conn;
    (void)why;
    if (r == NULL)
        return;
    gr_mock_buf_free(&r->body);
    gr_mock_buf_free(&r->out);
    free(r);
    *con_cls = NULL;
}

/*
 * An MHD_OptionItem holds a void *, and libmicrohttpd only reads the PEMs
 * given there: the const is dropped here, in one place (as the gateway's
 * gw_mhd_buffer() does; tools/ cannot include gateway/ headers).
 */
static void *
mhd_buffer(const void *p)
{
    union {
        const void *c;
        void *v;
    } u = {.c = p};

    return u.v;
}

/* Count each connection accepted (a test sees connections kept). */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **sock_ctx,
              enum MHD_ConnectionNotificationCode what)
{
    struct gr_mock_server *srv = cls;

    (void)conn;
    (void)sock_ctx;
    if (what == MHD_CONNECTION_NOTIFY_STARTED)
        BUMP(srv->st->g.connections);
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("gemroute-mock: libmicrohttpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

int
gr_mock_server_listen(const char *spec, char *bound, size_t boundlen,
                      int *loopback, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char host[80], shown[INET6_ADDRSTRLEN];
    const char *colon;
    char *end;
    unsigned long port;
    int fd, one = 1, v6 = 0;
    size_t hl;

    memset(&ss, 0, sizeof ss);
    if (spec[0] == '[') {
        colon = strstr(spec, "]:");
        if (colon == NULL)
            goto bad;
        hl = (size_t)(colon - spec - 1);
        colon++;
        v6 = 1;
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, spec + 1, hl);
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL)
            goto bad;
        hl = (size_t)(colon - spec);
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, spec, hl);
    }
    host[hl] = '\0';
    errno = 0;
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535)
        goto bad;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            goto bad;
        sl = sizeof *s6;
        *loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            goto bad;
        sl = sizeof *s4;
        *loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
    }

    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -errno;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        int e = errno;

        snprintf(err, errlen, "bind(%s): %s", spec, strerror(e));
        close(fd);
        return -e;
    }
    sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, shown, sizeof shown);
        snprintf(bound, boundlen, "[%s]:%u", shown, ntohs(s6->sin6_port));
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &s4->sin_addr, shown, sizeof shown);
        snprintf(bound, boundlen, "%s:%u", shown, ntohs(s4->sin_port));
    }
    return fd;

bad:
    snprintf(err, errlen,
             "listen address \"%s\" is not HOST:PORT (an IPv4 "
             "address, localhost or [IPv6], and a port 0-65535)",
             spec);
    return -EINVAL;
}

/* "127.0.0.1:PORT" or "[::1]:PORT" of a listening socket. */
static void
bound_name(int fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char shown[INET6_ADDRSTRLEN];

    snprintf(out, outlen, "127.0.0.1");
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        inet_ntop(AF_INET6, &s6->sin6_addr, shown, sizeof shown);
        snprintf(out, outlen, "[%s]:%u", shown, ntohs(s6->sin6_port));
    } else if (ss.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        inet_ntop(AF_INET, &s4->sin_addr, shown, sizeof shown);
        snprintf(out, outlen, "%s:%u", shown, ntohs(s4->sin_port));
    }
}

int
gr_mock_server_start(struct gr_mock_state *st, int fd, unsigned threads,
                     int verbose, struct gr_mock_server **out)
{
    return gr_mock_server_start_tls(st, fd, threads, verbose, NULL, NULL,
                                    out);
}

int
gr_mock_server_start_tls(struct gr_mock_state *st, int fd, unsigned threads,
                         int verbose, const char *cert_pem,
                         const char *key_pem, struct gr_mock_server **out)
{
    struct MHD_OptionItem tls[3] = {
        {MHD_OPTION_END, 0, NULL},
        {MHD_OPTION_END, 0, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    struct gr_mock_server *srv;
    unsigned flags;
    int rc;

    *out = NULL;
    if (cert_pem != NULL &&
        MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return -ENOTSUP;
    srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return -ENOMEM;
    srv->st = st;
    srv->fd = fd;
    srv->verbose = verbose;
    srv->tls = cert_pem != NULL;
    bound_name(fd, srv->bound, sizeof srv->bound);
    rc = gr_mock_delay_start(&srv->delay, resume_conn);
    if (rc < 0) {
        free(srv);
        return rc;
    }
    /* epoll in a pool of threads for throughput; suspend/resume so that
     * latency parks connections instead of threads. */
    flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG;
    if (srv->tls) {
        /* HTTPS: libmicrohttpd parses both PEMs with GnuTLS in
         * MHD_start_daemon() and keeps what it parsed; the caller may
         * wipe them once this returns. */
        flags |= MHD_USE_TLS;
        tls[0].option = MHD_OPTION_HTTPS_MEM_CERT;
        tls[0].ptr_value = mhd_buffer(cert_pem);
        tls[1].option = MHD_OPTION_HTTPS_MEM_KEY;
        tls[1].ptr_value = mhd_buffer(key_pem);
    }
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, srv, MHD_OPTION_ARRAY, tls, MHD_OPTION_LISTEN_SOCKET,
        (MHD_socket)fd, MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_CONNECTION_LIMIT,
        4000u, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        gr_mock_delay_stop(srv->delay);
        rc = srv->tls ? -EINVAL : -EIO;
        free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

void
gr_mock_server_stop(struct gr_mock_server *srv)
{
    if (srv == NULL)
        return;
    /* First wake every parked connection (and refuse new parking), so
     * MHD finds none suspended when it stops. */
    gr_mock_delay_stop(srv->delay);
    MHD_stop_daemon(srv->daemon);
    close(srv->fd);
    free(srv);
}
