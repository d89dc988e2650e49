/*
 * server.c - the HTTP side of gemroute-gateway, over libmicrohttpd (the
 * only file of gateway/ that sees it): routes, local tokens, Google's
 * error shapes, and streams handed on event by event.
 *
 * Calls run on event loops (gateway.loops, 2 by default; include/
 * gemroute_forward.h), and each loop serves its own connections too:
 * one libmicrohttpd daemon per loop, without a thread of its own, all
 * listening on the same port (SO_REUSEPORT: the kernel spreads the
 * connections), its epoll descriptor in the loop's set (struct
 * gr_fwd_host), so that a call never crosses threads.  The handler
 * submits the call to its own loop and suspends its connection
 * (MHD_suspend_connection()); the loop resumes it with the answer, the
 * stream's start or its next event, and the handler (or the stream's
 * content reader, which then never blocks) hands it on.  What would
 * block a loop runs on a kept thread, its connection suspended the same
 * way: a call no loop runs (the cache, a fallback chain, an alias) and
 * the routes that block (files, batches, the dashboard: "Routes that
 * block" below).  Why: docs/GATEWAY.md, "Calls on loops".  With
 * loops = 0, as before:
 *
 * A pool of gateway.workers threads, each with its own epoll set of
 * connections (MHD_USE_EPOLL_INTERNAL_THREAD, MHD_OPTION_THREAD_POOL_SIZE):
 * a unary call runs in the thread that holds its connection, which
 * serves none of its other connections meanwhile; a stream runs
 * gr_forward() in a stream thread (kept from one stream to the next:
 * stream_start()) that queues each event for the connection's content
 * reader, which blocks until one is there, so every event leaves the
 * moment it arrives.  A caller that goes away stops the upstream call
 * at its next event, and the lease is settled with what was seen.  (A
 * thread per connection cost a thread start per connection and a
 * select() per request; what limits the gateway now is a thread per
 * call in flight: docs/BENCHMARKS.md, section 4.)
 *
 * Invariants protected: a request that is refused here (token, route,
 * JSON, size, too many at once) costs no quota; the caller's token never
 * goes upstream (only user-agent and x-goog-api-client are passed on);
 * no connection is suspended when the daemon stops (gw->parked counts
 * every call that may suspend one, and the stop waits for none left);
 * a project's key never reaches the caller (it lives only in the lease
 * inside libgemroute, and no upstream header is handed back).
 */
#include "gw.h"
#include "dashboard.h"
#include "gemroute_forward.h"
#include "gemroute_json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define NS_PER_S INT64_C(1000000000)
#define CALL_S 600                  /* longest call after its queue time */
#define PATH_MAX_LEN 512
/* What libmicrohttpd keeps per connection (a request's head, the
 * answer's head, a stream's chunk): it zeroes all of it for every
 * request on a kept connection, and its default of 32 KiB made that
 * memset() 5 to 9% of the gateway's CPU (8 KiB: 10% less CPU a stream
 * than 16).  A request's head may take GW_HEAD_MAX of it (an SDK sends
 * under 1 KiB): a longer one is refused with 431 here, while the rest
 * still leaves room for the answer's head (a head that fills the pool
 * got no answer at all from libmicrohttpd). */
#define GW_CONN_MEMORY (8 * 1024)
#define GW_HEAD_MAX (6 * 1024)
#define JSON_OUT (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | \
                  JSON_C_TO_STRING_NOSLASHESCAPE)

enum route {
    R_NONE = 0,
    R_HEALTH,
    R_METRICS,
    R_MODELS,
    R_MODEL,
    R_DASH,                         /* /gemroute/: dashboard.c */
    R_GENERATE,                     /* from here on: calls */
    R_STREAM,
    R_COUNT,
    R_EMBED,
    R_BATCH_EMBED,
    R_PREDICT,
    R_OAI_CHAT,
    R_OAI_EMBED,
    R_OAI_MODELS,
    R_OAI_MODEL,
    R_FILES,                        /* files, caches, batches (files.c) */
};

static const char *const route_name[] = {
    [R_NONE] = "unknown", [R_HEALTH] = "healthz", [R_METRICS] = "metrics",
    [R_MODELS] = "models.list", [R_MODEL] = "models.get",
    [R_DASH] = "dashboard",
    [R_GENERATE] = "generateContent",
    [R_STREAM] = "streamGenerateContent", [R_COUNT] = "countTokens",
    [R_EMBED] = "embedContent", [R_BATCH_EMBED] = "batchEmbedContents",
    [R_PREDICT] = "predict",
    [R_OAI_CHAT] = "openai.chat.completions",
    [R_OAI_EMBED] = "openai.embeddings", [R_OAI_MODELS] = "openai.models",
    [R_OAI_MODEL] = "openai.models.get", [R_FILES] = "files",
};

/*
 * The event loops (gateway.loops > 0; include/gemroute_forward.h): a
 * call in flight is a record on a loop, not a thread, and its
 * connection is suspended (MHD_suspend_connection()) until the loop has
 * something for it: the answer, the stream's start, its next event.
 * Loop i runs daemons[i] (host_run()), so the handler runs on the loop
 * its calls go to (here).  Why: docs/GATEWAY.md, "Calls on loops".
 */
#define MAX_LOOPS 64
static struct gr_fwd_loop *loops[MAX_LOOPS];
static struct MHD_Daemon *daemons[MAX_LOOPS];
static unsigned n_loops;            /* the main thread's only */
/* The loop this thread runs, inside host_run(); NULL elsewhere (and
 * with loops = 0): what a handler asks to know whether it is on a loop. */
static _Thread_local struct gr_fwd_loop *here;

#define HOST_PASSES 4

/* libmicrohttpd's turn on loop lp (struct gr_fwd_host): its sockets are
 * ready, or its timeout came.  Returns when it wants the next. */
static long
host_run(void *arg, struct gr_fwd_loop *lp)
{
    MHD_UNSIGNED_LONG_LONG ms;
    int i;

    /* A connection that just sent its answer takes a few passes to be
     * ready for its next request (timeout 0 meanwhile): they are made
     * here rather than through the loop's epoll_wait(). */
    here = lp;
    for (i = 0; i < HOST_PASSES; i++) {
        MHD_run(arg);
        if (MHD_get_timeout(arg, &ms) != MHD_YES) {
            here = NULL;
            return -1;
        }
        if (ms > 0)
            break;
    }
    here = NULL;
    return ms > 1000 ? 1000 : (long)ms;
}

/* One request, from its first byte to its answer (MHD's con_cls). */
struct req {
    enum route route;
    char ver[8];                    /* "v1beta" or "v1" */
    char model[GR_NAME_MAX];
    char *body;
    size_t len, cap;
    bool too_big, counted, answered;
    int64_t t0;
    struct ucall *call;             /* a unary call parked on a loop */
    struct stream *swait;           /* a stream parked until it starts */
    struct held *held;              /* a route that blocks, parked */
};

/* How a stream's events are written for the caller. */
enum style {
    S_GEMINI_SSE,                   /* data: {...}\r\n\r\n */
    S_GEMINI_ARRAY,                 /* [{...},\r\n{...}] */
    S_OPENAI_SSE,                   /* data: {...}\n\n ... data: [DONE] */
};

/* A stream between its call thread and the connection's reader. */
struct stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                       /* the call thread, the response */
    char *buf;                      /* written, not yet read */
    size_t len, off, cap;
    bool started, done, abandoned, nomem;
    unsigned events;
    enum style style;
    bool want_usage;                /* OpenAI: the caller asked for it */
    char project[GR_NAME_MAX];
    int64_t queued_ns;
    /* the call */
    struct gw *gw;
    struct gr_fwd f;
    struct gr_call_opts o;
    struct gr_response out;
    int rc;
    char path[PATH_MAX_LEN];
    char model[GR_NAME_MAX];
    char *body;
    size_t body_len;
    char *hdr[3];
    int64_t t0;
    enum route route;
    /* on loops (gateway.loops > 0): the reader never blocks */
    struct MHD_Connection *conn;    /* suspended while nothing to send */
    struct gr_fwd_loop *lp;         /* the loop whose daemon has conn */
    int fd;                         /* its socket; -1 = unknown */
    bool parked;                    /* conn is suspended (under mu) */
    bool on_loop;                   /* its call runs on a loop */
    double budget_s;
};

/* A suspended connection is served again: by its loop's daemon (lp;
 * its turn asked for, since libmicrohttpd signals a resume to no loop
 * of ours) or by the daemon's own pool (lp NULL, loops = 0). */
static void
resume(struct MHD_Connection *c, struct gr_fwd_loop *lp)
{
    MHD_resume_connection(c);
    if (lp != NULL)
        gr_fwd_loop_host_due(lp);
}

/* Under s->mu: the connection, suspended while the stream had nothing
 * for it, is served again. */
static void
unpark(struct stream *s)
{
    if (s->parked) {
        s->parked = false;
        resume(s->conn, s->lp);
    }
}

/*
 * A request whose answer comes later or from another thread (a call on
 * a loop, a call or a route on a kept thread): its connection is
 * suspended until then, unless the answer came first.  The counting of
 * gw->parked is park_begin()'s and park_done()'s.
 */
struct park {
    pthread_mutex_t mu;
    bool finished, parked;          /* under mu */
    struct MHD_Connection *conn;
    struct gr_fwd_loop *lp;         /* the loop whose daemon has conn */
};

static void
park_init(struct park *p, struct MHD_Connection *c)
{
    pthread_mutex_init(&p->mu, NULL);
    p->conn = c;
    p->lp = here;
}

/* The answer is there (set before this): the connection, if suspended,
 * is resumed, and park_begin()'s count given back. */
static void
park_done(struct gw *gw, struct park *p)
{
    pthread_mutex_lock(&p->mu);
    p->finished = true;
    if (p->parked) {
        p->parked = false;
        resume(p->conn, p->lp);
    }
    pthread_mutex_unlock(&p->mu);
    /* seq_cst: as in park_begin(); after the resume */
    atomic_fetch_sub_explicit(&gw->parked, 1, memory_order_seq_cst);
}

/* In the handler: true when the connection is now suspended until
 * park_done(); false when the answer is there already. */
static bool
park_suspend(struct park *p)
{
    bool waits;

    pthread_mutex_lock(&p->mu);
    waits = !p->finished;
    if (waits) {
        MHD_suspend_connection(p->conn);
        p->parked = true;
    }
    pthread_mutex_unlock(&p->mu);
    return waits;
}

/* The other thread's last touch of p is under p->mu: after this, what
 * it wrote is seen (and, with destroy, p may be freed). */
static void
park_sync(struct park *p, bool destroy)
{
    pthread_mutex_lock(&p->mu);
    pthread_mutex_unlock(&p->mu);
    if (destroy)
        pthread_mutex_destroy(&p->mu);
}

/* ---- answers ---------------------------------------------------------- */

/*
 * Routes that block (files, batches, the dashboard) while calls run on
 * loops: the route runs on a kept thread (runner_start()) with its
 * connection suspended, and the answer it queues is held here, then
 * queued by the loop when the connection is resumed (a suspended
 * connection is libmicrohttpd's, not this thread's, to answer).
 */
struct held {
    struct park pk;
    struct gw *gw;
    struct req *q;
    const char *url, *method;       /* libmicrohttpd's, as long as conn */
    int rc;                         /* the route's enum MHD_Result */
    struct MHD_Response *resp;      /* what it queued; NULL: nothing */
    unsigned status;
};
static _Thread_local struct held *holding;  /* the route this thread runs */

int
gw_queue(void *conn, unsigned status, void *response)
{
    enum MHD_Result rc;

    if (holding != NULL) {
        if (holding->resp != NULL) {
            /* one answer a request; never queued from this thread */
            MHD_destroy_response(response);
            return MHD_NO;
        }
        holding->resp = response;
        holding->status = status;
        return MHD_YES;
    }
    rc = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    return rc;
}

void
gw_add_headers(struct gw *gw, void *response, const char *project,
               int64_t queued_ns, const char *ctype)
{
    struct MHD_Response *r = response;
    char ms[32];
    bool show;

    MHD_add_response_header(r, "Content-Type", ctype);
    pthread_rwlock_rdlock(&gw->lock);
    show = gw->conf.project_header;
    pthread_rwlock_unlock(&gw->lock);
    if (show && project != NULL && project[0] != '\0')
        MHD_add_response_header(r, "x-gemroute-project", project);
    if (queued_ns >= 0) {
        snprintf(ms, sizeof(ms), "%lld", (long long)(queued_ns / 1000000));
        MHD_add_response_header(r, "x-gemroute-queued-ms", ms);
    }
}

int
gw_send(struct gw *gw, void *conn, int status, const char *body, size_t len,
        const char *ctype, const char *project, int64_t queued_ns)
{
    struct MHD_Response *r;
    char *copy = malloc(len > 0 ? len : 1);

    /* What MHD_RESPMEM_MUST_COPY would do, without casting body's const
     * away: MHD frees the copy with free() once sent. */
    if (copy == NULL)
        return MHD_NO;
    memcpy(copy, body, len);
    r = MHD_create_response_from_buffer(len, copy, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(copy);
        return MHD_NO;
    }
    gw_add_headers(gw, r, project, queued_ns, ctype);
    return gw_queue(conn, (unsigned)status, r);
}

/* {"error": {"code", "message", "status", "details"?}}: details is
 * taken (may be NULL). */
static enum MHD_Result
send_error(struct gw *gw, struct MHD_Connection *c, int code,
           const char *status, const char *message,
           struct json_object *details)
{
    struct json_object *root = json_object_new_object();
    struct json_object *e = json_object_new_object();
    const char *s;
    enum MHD_Result rc;

    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(e, "status", json_object_new_string(status));
    if (details != NULL)
        json_object_object_add(e, "details", details);
    json_object_object_add(root, "error", e);
    s = json_object_to_json_string_ext(root, JSON_OUT);
    rc = gw_send(gw, c, code, s, strlen(s), "application/json", NULL, -1);
    json_object_put(root);
    return rc;
}

static struct json_object *
error_info(const char *reason)
{
    struct json_object *a = json_object_new_array();
    struct json_object *d = json_object_new_object();
    struct json_object *m = json_object_new_object();

    json_object_object_add(d, "@type", json_object_new_string(
        "type.googleapis.com/google.rpc.ErrorInfo"));
    json_object_object_add(d, "reason", json_object_new_string(reason));
    json_object_object_add(d, "domain",
                           json_object_new_string("googleapis.com"));
    json_object_object_add(m, "service", json_object_new_string(
        "generativelanguage.googleapis.com"));
    json_object_object_add(d, "metadata", m);
    json_object_array_add(a, d);
    return a;
}

/*
 * No room came within the queue budget: Google's own 429, with a
 * QuotaFailure naming the pool and RetryInfo saying when room is
 * expected, so that the SDKs' retry logic waits the right time.
 */
static enum MHD_Result
send_no_room(struct gw *gw, struct MHD_Connection *c, const char *model,
             double budget_s, int64_t retry_at_ns)
{
    struct json_object *a = json_object_new_array();
    struct json_object *qf = json_object_new_object();
    struct json_object *vs = json_object_new_array();
    struct json_object *v = json_object_new_object();
    struct json_object *dims = json_object_new_object();
    struct json_object *ri = json_object_new_object();
    double in_s = retry_at_ns > 0
                      ? (double)(retry_at_ns - gr_now_ns()) / 1e9 : 1.0;
    char msg[320], delay[32];

    if (in_s < 0.001)
        in_s = 0.001;
    snprintf(delay, sizeof(delay), "%.3fs", in_s);
    snprintf(msg, sizeof(msg), "gemroute: no project has room for %s "
             "within the queue budget of %.1f s; room is expected in %s.",
             model, budget_s, retry_at_ns > 0 ? delay : "an unknown time");
    json_object_object_add(qf, "@type", json_object_new_string(
        "type.googleapis.com/google.rpc.QuotaFailure"));
    json_object_object_add(v, "quotaMetric", json_object_new_string(
        "gemroute/pool"));
    json_object_object_add(v, "quotaId", json_object_new_string(
        "GemroutePoolPerModel"));
    json_object_object_add(dims, "pool", json_object_new_string("gemroute"));
    json_object_object_add(dims, "model", json_object_new_string(model));
    json_object_object_add(v, "quotaDimensions", dims);
    json_object_array_add(vs, v);
    json_object_object_add(qf, "violations", vs);
    json_object_array_add(a, qf);
    json_object_object_add(ri, "@type", json_object_new_string(
        "type.googleapis.com/google.rpc.RetryInfo"));
    json_object_object_add(ri, "retryDelay", json_object_new_string(delay));
    json_object_array_add(a, ri);
    return send_error(gw, c, 429, "RESOURCE_EXHAUSTED", msg, a);
}

/* libmicrohttpd is done with an answer's body taken from a gr_response:
 * released the way the library says. */
static void
body_free(void *body)
{
    struct gr_response r;

    memset(&r, 0, sizeof(r));
    r.body = body;
    gr_response_free(&r);
}

/* A whole answer, with the model that gave it (x-gemroute-model: the
 * one asked for or one of its fallback chain) and whether the shared
 * cache did (x-gemroute-cache: hit).  The body is handed to
 * libmicrohttpd as it is, not copied: out keeps none. */
static enum MHD_Result
send_answer(struct gw *gw, struct MHD_Connection *c, struct gr_response *out)
{
    struct MHD_Response *r;

    if (out->body != NULL) {
        r = MHD_create_response_from_buffer_with_free_callback(
            out->len, out->body, body_free);
        if (r != NULL)
            out->body = NULL;
    } else {
        r = MHD_create_response_from_buffer(0, gw_mhd_buffer(""),
                                            MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL)
        return MHD_NO;
    gw_add_headers(gw, r, out->project, out->queued_ns, "application/json");
    if (out->model[0] != '\0')
        MHD_add_response_header(r, "x-gemroute-model", out->model);
    MHD_add_response_header(r, "x-gemroute-cache",
                            out->cached ? "hit" : "miss");
    return (enum MHD_Result)gw_queue(c, (unsigned)out->status, r);
}

/* x-gemroute-fallback: allow|never and x-gemroute-cache: use|bypass;
 * anything else leaves the defaults (the model's fallback_allow, the
 * cache's rules). */
static void
call_headers(struct MHD_Connection *c, struct gr_call_opts *o)
{
    const char *fb = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "x-gemroute-fallback");
    const char *ch = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "x-gemroute-cache");

    if (fb != NULL && strcasecmp(fb, "allow") == 0)
        o->fallback = GR_FALLBACK_ALLOW;
    else if (fb != NULL && strcasecmp(fb, "never") == 0)
        o->fallback = GR_FALLBACK_NEVER;
    if (ch != NULL && strcasecmp(ch, "use") == 0)
        o->cache = GR_CACHE_USE;
    else if (ch != NULL && strcasecmp(ch, "bypass") == 0)
        o->cache = GR_CACHE_BYPASS;
}

/* The outcome of a call that gave no 2xx stream: what to answer. */
static enum MHD_Result
send_result(struct gw *gw, struct MHD_Connection *c, struct req *q, int rc,
            struct gr_response *out, double budget_s, int *status)
{
    char msg[400];

    if (rc == GR_OK || (out->status != 0 && out->body != NULL &&
                        (rc == GR_ECALL || out->attempts > 0))) {
        *status = out->status;
        return send_answer(gw, c, out);
    }
    if (rc == GR_EDEADLINE && out->attempts == 0) {
        *status = 429;
        return send_no_room(gw, c, q->model, budget_s, out->retry_at_ns);
    }
    if (rc == GR_EINVAL && out->attempts == 0 && out->error[0] != '\0') {
        /* Refused before anything was sent (resources of two projects). */
        *status = 400;
        snprintf(msg, sizeof(msg), "gemroute: %s", out->error);
        return send_error(gw, c, 400, "INVALID_ARGUMENT", msg, NULL);
    }
    if (rc == GR_ENOMODEL && strstr(out->error, "project '") != NULL) {
        *status = 503;
        snprintf(msg, sizeof(msg), "gemroute: %s", out->error);
        return send_error(gw, c, 503, "UNAVAILABLE", msg, NULL);
    }
    if (rc == GR_ENOMODEL) {
        *status = 404;
        snprintf(msg, sizeof(msg), "models/%s is not found for API version "
                 "%s, or is not served by any project of this gemroute "
                 "table.", q->model, q->ver);
        return send_error(gw, c, 404, "NOT_FOUND", msg, NULL);
    }
    if (rc == GR_ESPEND) {
        /* gemroute's own spend cap: answered as Google answers for its
         * spend-based limits */
        *status = 429;
        snprintf(msg, sizeof(msg), "gemroute: %s", out->error);
        return send_error(gw, c, 429, "RESOURCE_EXHAUSTED", msg, NULL);
    }
    if (rc == GR_EDEADLINE) {
        *status = 504;
        snprintf(msg, sizeof(msg), "gemroute: the deadline passed: %s",
                 out->error);
        return send_error(gw, c, 504, "DEADLINE_EXCEEDED", msg, NULL);
    }
    if (rc == GR_ECALL) {
        *status = 503;
        snprintf(msg, sizeof(msg), "gemroute: no answer from upstream: %s",
                 out->error);
        return send_error(gw, c, 503, "UNAVAILABLE", msg, NULL);
    }
    *status = 500;
    snprintf(msg, sizeof(msg), "gemroute: %s", out->error[0] != '\0'
             ? out->error : gr_err_name(rc));
    return send_error(gw, c, 500, "INTERNAL", msg, NULL);
}

/* ---- tokens ----------------------------------------------------------- */

/* Constant time in the token's content: every byte of every configured
 * token is compared, whatever matches. */
static bool
token_in(const char *got, const char (*list)[GR_CFG_KEY_MAX], unsigned n)
{
    size_t glen = strnlen(got, GR_CFG_KEY_MAX);
    unsigned i, found = 0;

    for (i = 0; i < n; i++) {
        size_t tlen = strnlen(list[i], GR_CFG_KEY_MAX), j;
        unsigned diff = (unsigned)(tlen ^ glen);

        for (j = 0; j < GR_CFG_KEY_MAX - 1; j++)
            diff |= (unsigned char)list[i][j] ^
                    (unsigned char)(j < glen ? got[j] : 0);
        found |= diff == 0;
    }
    return found != 0;
}

/* The token a caller presents: x-goog-api-key, ?key= or a Bearer. */
static const char *
presented(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "x-goog-api-key");

    if (v != NULL && v[0] != '\0')
        return v;
    v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
    if (v != NULL && v[0] != '\0')
        return v;
    v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (v != NULL && strncasecmp(v, "Bearer ", 7) == 0 && v[7] != '\0')
        return v + 7;
    return NULL;
}

/* 0: allowed; else the status answered. */
static int
check_token(struct gw *gw, struct MHD_Connection *c, bool admin,
            bool openai)
{
    const char *got = presented(c);
    bool ok;
    unsigned n;

    pthread_rwlock_rdlock(&gw->lock);
    n = admin ? gw->conf.n_admin_tokens : gw->conf.n_tokens;
    ok = n == 0 ? !admin || gw->conf.loopback
         : got != NULL && token_in(got, admin ? gw->conf.admin_tokens
                                              : gw->conf.tokens, n);
    pthread_rwlock_unlock(&gw->lock);
    if (admin && n == 0)
        return 0;       /* no admin tokens: the pages are as open as the
                           address (loopback, or insecure by choice) */
    if (ok)
        return 0;
    if (got == NULL) {
        send_error(gw, c, 403, "PERMISSION_DENIED", "Method doesn't allow "
                   "unregistered callers (callers without established "
                   "identity). Please use API Key or other form of API "
                   "consumer identity to call this API.", NULL);
        return 403;
    }
    if (openai) {
        send_error(gw, c, 401, "UNAUTHENTICATED", "API key not valid. "
                   "Please pass a valid API key.",
                   error_info("API_KEY_INVALID"));
        return 401;
    }
    send_error(gw, c, 400, "INVALID_ARGUMENT", "API key not valid. Please "
               "pass a valid API key.", error_info("API_KEY_INVALID"));
    return 400;
}

/* ---- routes ----------------------------------------------------------- */

static bool
model_ok(const char *m, size_t n)
{
    size_t i;

    if (n == 0 || n >= GR_NAME_MAX)
        return false;
    for (i = 0; i < n; i++) {
        char ch = m[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
              ch == '_'))
            return false;
    }
    return true;
}

static enum route
parse_route(const char *url, const char *method, struct req *q)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    const char *rest, *colon;
    static const struct {
        const char *name;
        enum route r;
    } methods[] = {
        {"generateContent", R_GENERATE},
        {"streamGenerateContent", R_STREAM},
        {"countTokens", R_COUNT},
        {"embedContent", R_EMBED},
        {"batchEmbedContents", R_BATCH_EMBED},
        {"predict", R_PREDICT},
    };
    size_t i, n;

    if (strcmp(url, "/healthz") == 0)
        return get ? R_HEALTH : R_NONE;
    if (strcmp(url, "/metrics") == 0)
        return get ? R_METRICS : R_NONE;
    if (gw_dash_path(url))
        return get || post ? R_DASH : R_NONE;
    if (strncmp(url, "/v1beta/", 8) == 0) {
        snprintf(q->ver, sizeof(q->ver), "v1beta");
        rest = url + 8;
    } else if (strncmp(url, "/v1/", 4) == 0) {
        snprintf(q->ver, sizeof(q->ver), "v1");
        rest = url + 4;
    } else {
        return R_NONE;
    }
    if (strcmp(rest, "openai/chat/completions") == 0)
        return post ? R_OAI_CHAT : R_NONE;
    if (strcmp(rest, "openai/embeddings") == 0)
        return post ? R_OAI_EMBED : R_NONE;
    if (strcmp(rest, "openai/models") == 0)
        return get ? R_OAI_MODELS : R_NONE;
    if (strncmp(rest, "openai/models/", 14) == 0) {
        rest += 14;
        if (!get || !model_ok(rest, strlen(rest)))
            return R_NONE;
        snprintf(q->model, sizeof(q->model), "%s", rest);
        return R_OAI_MODEL;
    }
    if (strcmp(rest, "models") == 0)
        return get ? R_MODELS : R_NONE;
    if (strncmp(rest, "models/", 7) != 0)
        return R_NONE;
    rest += 7;
    colon = strchr(rest, ':');
    n = colon != NULL ? (size_t)(colon - rest) : strlen(rest);
    if (!model_ok(rest, n))
        return R_NONE;
    memcpy(q->model, rest, n);
    q->model[n] = '\0';
    if (colon == NULL)
        return get ? R_MODEL : R_NONE;
    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strcmp(colon + 1, methods[i].name) == 0)
            return post ? methods[i].r : R_NONE;
    return R_NONE;
}

static bool
is_openai(enum route r)
{
    return r == R_OAI_CHAT || r == R_OAI_EMBED || r == R_OAI_MODELS ||
           r == R_OAI_MODEL;
}

/* ---- listings (from the table, no upstream call) ---------------------- */

static enum MHD_Result
send_models(struct gw *gw, struct MHD_Connection *c, struct req *q)
{
    char names[64][GR_NAME_MAX], full[GR_NAME_MAX + 8], msg[256];
    struct json_object *root = json_object_new_object();
    struct json_object *list = json_object_new_array();
    int n = gr_models(gw->g, names, 64), i;
    bool one = q->route == R_MODEL || q->route == R_OAI_MODEL;
    bool oai = is_openai(q->route);
    struct json_object *found = NULL;
    enum MHD_Result rc;
    const char *s;

    if (n > 64)
        n = 64;
    for (i = 0; i < n; i++) {
        struct json_object *m = json_object_new_object();

        if (oai) {
            json_object_object_add(m, "id", json_object_new_string(
                names[i]));
            json_object_object_add(m, "object",
                                   json_object_new_string("model"));
            json_object_object_add(m, "owned_by",
                                   json_object_new_string("google"));
        } else {
            struct json_object *meth = json_object_new_array();

            snprintf(full, sizeof(full), "models/%s", names[i]);
            json_object_object_add(m, "name", json_object_new_string(full));
            json_object_object_add(m, "displayName",
                                   json_object_new_string(names[i]));
            json_object_array_add(meth, json_object_new_string(
                strstr(names[i], "embedding") != NULL ? "embedContent"
                                                      : "generateContent"));
            json_object_array_add(meth, json_object_new_string(
                "countTokens"));
            json_object_object_add(m, "supportedGenerationMethods", meth);
        }
        if (one && strcmp(names[i], q->model) == 0)
            found = json_object_get(m);
        json_object_array_add(list, m);
    }
    if (one && found == NULL) {
        json_object_put(root);
        json_object_put(list);
        snprintf(msg, sizeof(msg), "models/%s is not found for API version "
                 "%s, or is not served by any project of this gemroute "
                 "table.", q->model, q->ver);
        return send_error(gw, c, 404, "NOT_FOUND", msg, NULL);
    }
    if (one) {
        json_object_put(root);
        root = found;
        json_object_put(list);
    } else if (oai) {
        json_object_object_add(root, "object",
                               json_object_new_string("list"));
        json_object_object_add(root, "data", list);
    } else {
        json_object_object_add(root, "models", list);
    }
    s = json_object_to_json_string_ext(root, JSON_OUT);
    rc = gw_send(gw, c, 200, s, strlen(s), "application/json", NULL, -1);
    json_object_put(root);
    return rc;
}

/* ---- streams ---------------------------------------------------------- */

/* A call stops when the gateway stops, or its stream's caller left. */
static int
gw_stopping(struct gw *gw)
{
    /* relaxed: a flag polled, nothing read after it depends on it */
    return atomic_load_explicit(&gw->stopping, memory_order_relaxed);
}

/* A unary call, whose pool thread waits in answer() meanwhile. */
struct unary {
    struct gw *gw;
    int fd;                         /* the caller's socket; -1 = unknown */
    int64_t poll_from_ns;           /* gr_now_ns(); no poll before */
};

/* A caller that just sent its request has not hung up: the socket is
 * first polled this long after the request came (one system call less
 * per call; a hang-up is still seen within the library's second). */
#define UNARY_POLL_AFTER_NS (10 * 1000 * 1000)

/*
 * Also stops when the caller hung up: nobody else reads the socket while
 * the thread that holds its connection is in answer(), so a hang-up
 * shows as POLLRDHUP / POLLHUP without taking any byte.
 */
static int
unary_cancelled(void *arg)
{
    struct unary *u = arg;
    struct pollfd p;

    if (gw_stopping(u->gw))
        return 1;
    if (u->fd < 0 || gr_now_ns() < u->poll_from_ns)
        return 0;
    p.fd = u->fd;
    p.events = POLLRDHUP;
    p.revents = 0;
    return poll(&p, 1, 0) == 1 &&
           (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void
stream_put(struct stream *s)
{
    int left;
    int i;

    pthread_mutex_lock(&s->mu);
    left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left > 0)
        return;
    gw_metrics_streams(-1);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->buf);
    free(s->body);
    for (i = 0; i < 3; i++)
        free(s->hdr[i]);
    gr_response_free(&s->out);
    free(s);
}

/* Append under s->mu. */
static void
append(struct stream *s, const char *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *b;

        while (cap < s->len + n)
            cap *= 2;
        if ((b = realloc(s->buf, cap)) == NULL) {
            s->nomem = true;
            return;
        }
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

static int
on_start(void *arg, const char *project, int64_t queued_ns)
{
    struct stream *s = arg;

    pthread_mutex_lock(&s->mu);
    snprintf(s->project, sizeof(s->project), "%s", project);
    s->queued_ns = queued_ns;
    s->started = true;
    pthread_cond_broadcast(&s->cv);
    unpark(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* An OpenAI chunk as the caller asked for it: NULL = drop it, else a
 * malloc'd text (the usage the gateway asked for taken out). */
static char *
openai_chunk(const struct stream *s, const char *json, size_t len)
{
    struct json_object *o, *u, *ch;
    char *t;

    if (s->want_usage || memmem(json, len, "\"usage\"", 7) == NULL)
        return strndup(json, len);
    o = gr_json_parse(json, len, 0, 0, NULL);
    if ((u = gr_json_member(o, "usage", GR_JSON_OBJECT)) == NULL) {
        json_object_put(o);
        return strndup(json, len);
    }
    if ((ch = gr_json_member(o, "choices", GR_JSON_ARRAY)) != NULL &&
        json_object_array_length(ch) == 0) {
        json_object_put(o);
        return NULL;
    }
    json_object_object_del(o, "usage");
    t = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return t;
}

static int
on_event(void *arg, const char *json, size_t len)
{
    struct stream *s = arg;
    char *t = NULL;

    pthread_mutex_lock(&s->mu);
    if (s->abandoned || gw_stopping(s->gw)) {
        pthread_mutex_unlock(&s->mu);
        return 1;       /* the caller left: stop the upstream call */
    }
    switch (s->style) {
    case S_GEMINI_SSE:
        append(s, "data: ", 6);
        append(s, json, len);
        append(s, "\r\n\r\n", 4);
        break;
    case S_GEMINI_ARRAY:
        append(s, s->events == 0 ? "[" : ",\r\n", s->events == 0 ? 1 : 3);
        append(s, json, len);
        break;
    case S_OPENAI_SSE:
        if (len == 6 && memcmp(json, "[DONE]", 6) == 0) {
            append(s, "data: [DONE]\n\n", 14);
            break;
        }
        pthread_mutex_unlock(&s->mu);
        t = openai_chunk(s, json, len);
        pthread_mutex_lock(&s->mu);
        if (t != NULL) {
            append(s, "data: ", 6);
            append(s, t, strlen(t));
            append(s, "\n\n", 2);
        }
        break;
    }
    s->events++;
    free(t);
    pthread_cond_broadcast(&s->cv);
    unpark(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/*
 * The caller left, or the gateway stops.  On loops, a connection
 * suspended between events is read by nobody: its hang-up shows on the
 * socket (as for a unary call), so the upstream call stops now rather
 * than at the next event.
 */
static int
stream_cancelled(void *arg)
{
    struct stream *s = arg;
    struct pollfd p = {.fd = -1, .events = POLLRDHUP};
    bool gone;

    pthread_mutex_lock(&s->mu);
    gone = s->abandoned;
    if (s->parked)
        p.fd = s->fd;
    pthread_mutex_unlock(&s->mu);
    if (!gone && p.fd >= 0 && poll(&p, 1, 0) == 1 &&
        (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0)
        gone = true;
    return gone || gw_stopping(s->gw);
}

/* The stream's call is over (s->rc): the end written, the reader told. */
static void
stream_end(struct stream *s)
{
    struct gw *gw = s->gw;
    bool on_loop = s->on_loop, counted = s->conn != NULL;
    int status;

    pthread_mutex_lock(&s->mu);
    if (s->started && s->style == S_GEMINI_ARRAY)
        append(s, s->events == 0 ? "[]" : "]", s->events == 0 ? 2 : 1);
    s->done = true;
    pthread_cond_broadcast(&s->cv);
    unpark(s);
    pthread_mutex_unlock(&s->mu);
    if (s->started) {
        status = s->rc == GR_OK ? 200 : 599;    /* 599: cut mid-stream */
        gw_metrics_request(route_name[s->route], s->model, s->project,
                           status, gr_now_ns() - s->t0, s->out.queued_ns,
                           s->out.n_429);
        gw_log("%s %s: stream of %u events from project %s%s%s",
               route_name[s->route], s->model, s->events, s->project,
               s->rc == GR_OK ? "" : ", ended early: ",
               s->rc == GR_OK ? "" : s->out.error);
    }
    stream_put(s);
    if (counted)
        /* seq_cst: as in park_begin(); after the last resume */
        atomic_fetch_sub_explicit(&gw->parked, 1, memory_order_seq_cst);
    if (!on_loop)
        /* release: this thread's last use of the table happens before
         * gw_server_stop() sees the count fall and the table is closed */
        atomic_fetch_sub_explicit(&gw->streams, 1, memory_order_release);
}

static void *
stream_main(void *arg)
{
    struct stream *s = arg;

    s->rc = gr_forward(s->gw->g, &s->f, &s->o, &s->out);
    stream_end(s);
    return NULL;
}

/* A stream's call on a loop ended. */
static void
stream_done(void *arg, int rc)
{
    struct stream *s = arg;

    s->rc = rc;
    stream_end(s);
}

/*
 * Stream threads, kept: a thread whose stream ended waits on its own
 * semaphore for the next one, the most recently idle first (a stack),
 * so that a stream costs no thread start (clone, its stack, its signal
 * masks: about ten system calls) and finds its thread's libcurl handle
 * with its connections.  At most as many as streams ever ran at once
 * (no more than gateway.workers); when the gateway stops, every one is
 * ended and joined (its libcurl handle cleaned up before the process
 * exits).
 */
struct runner {
    sem_t wake;
    void (*fn)(void *arg);          /* the job; NULL: end */
    void *arg;
    struct runner *next;            /* on the idle stack */
    pthread_t th;
};

static pthread_mutex_t runners_mu = PTHREAD_MUTEX_INITIALIZER;
static struct runner *runners_idle;
static unsigned runners_n;          /* started, not yet joined */

static void *
runner_main(void *arg)
{
    struct runner *me = arg;

    for (;;) {
        while (sem_wait(&me->wake) != 0)
            ;                       /* EINTR */
        if (me->fn == NULL)
            return NULL;            /* runners_end() joins and frees */
        me->fn(me->arg);
        me->fn = NULL;
        pthread_mutex_lock(&runners_mu);
        me->next = runners_idle;
        runners_idle = me;
        pthread_mutex_unlock(&runners_mu);
    }
}

/* Run s's call on an idle stream thread, or a new one: 0 or -errno. */
static int
runner_start(void (*fn)(void *arg), void *arg)
{
    struct runner *r;
    int rc;

    pthread_mutex_lock(&runners_mu);
    if ((r = runners_idle) != NULL)
        runners_idle = r->next;
    pthread_mutex_unlock(&runners_mu);
    if (r != NULL) {
        r->fn = fn;
        r->arg = arg;
        sem_post(&r->wake);
        return 0;
    }
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return -ENOMEM;
    if (sem_init(&r->wake, 0, 0) != 0) {
        free(r);
        return -ENOMEM;
    }
    r->fn = fn;
    r->arg = arg;
    pthread_mutex_lock(&runners_mu);
    if ((rc = pthread_create(&r->th, NULL, runner_main, r)) == 0)
        runners_n++;
    pthread_mutex_unlock(&runners_mu);
    if (rc != 0) {
        sem_destroy(&r->wake);
        free(r);
        return -rc;
    }
    sem_post(&r->wake);
    return 0;
}

static void
stream_run(void *arg)
{
    (void)stream_main(arg);
}

/* Run s's call on an idle kept thread, or a new one: 0 or -errno. */
static int
stream_start(struct stream *s)
{
    return runner_start(stream_run, s);
}

/*
 * The gateway stops, no stream is left: every stream thread is ended and
 * joined.  One that has just finished its stream is on the idle stack a
 * moment later; a bounded wait (1 s) for it.
 */
static void
runners_end(void)
{
    struct timespec ms1 = {0, 1000 * 1000};
    struct runner *r, *next;
    unsigned left;
    int i;

    for (i = 0; i < 1000; i++) {
        pthread_mutex_lock(&runners_mu);
        r = runners_idle;
        runners_idle = NULL;
        pthread_mutex_unlock(&runners_mu);
        for (; r != NULL; r = next) {
            next = r->next;
            r->fn = NULL;
            sem_post(&r->wake);
            pthread_join(r->th, NULL);
            sem_destroy(&r->wake);
            free(r);
            pthread_mutex_lock(&runners_mu);
            runners_n--;
            pthread_mutex_unlock(&runners_mu);
        }
        pthread_mutex_lock(&runners_mu);
        left = runners_n;
        pthread_mutex_unlock(&runners_mu);
        if (left == 0)
            return;
        nanosleep(&ms1, NULL);
    }
}

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    size_t n;

    (void)pos;
    pthread_mutex_lock(&s->mu);
    while (s->off == s->len && !s->done) {
        if (s->conn != NULL) {
            /* On loops: nothing yet, and this thread serves other
             * connections; the next event resumes this one. */
            MHD_suspend_connection(s->conn);
            s->parked = true;
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        pthread_cond_wait(&s->cv, &s->mu);
    }
    if (s->off < s->len) {
        n = s->len - s->off < max ? s->len - s->off : max;
        memcpy(buf, s->buf + s->off, n);
        s->off += n;
        if (s->off == s->len)
            s->off = s->len = 0;
        pthread_mutex_unlock(&s->mu);
        return (ssize_t)n;
    }
    n = s->rc == GR_OK && !s->nomem;
    pthread_mutex_unlock(&s->mu);
    /* A stream cut upstream is cut here too: the caller must not take
     * half an answer for a whole one. */
    return n ? MHD_CONTENT_READER_END_OF_STREAM
             : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
stream_gone(void *cls)
{
    struct stream *s = cls;

    pthread_mutex_lock(&s->mu);
    s->abandoned = true;
    pthread_mutex_unlock(&s->mu);
    stream_put(s);
}

/* ---- calls ------------------------------------------------------------ */

static enum MHD_Result
head_add(void *arg, enum MHD_ValueKind kind, const char *key,
         const char *value)
{
    size_t *n = arg;

    (void)kind;
    *n += strlen(key) + (value != NULL ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* The bytes of the request's head: its line and its header lines. */
static size_t
head_size(struct MHD_Connection *c, const char *url, const char *method)
{
    size_t n = strlen(method) + strlen(url) + sizeof(" HTTP/1.1\r\n") + 2;

    MHD_get_connection_values(c, MHD_HEADER_KIND, head_add, &n);
    return n;
}

/* The caller's headers passed on: user-agent and x-goog-api-client. */
static void
pass_headers(struct MHD_Connection *c, char *hdr[3])
{
    const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "User-Agent");
    const char *gc = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "x-goog-api-client");
    int n = 0;

    hdr[0] = hdr[1] = hdr[2] = NULL;
    if (ua != NULL && strpbrk(ua, "\r\n") == NULL &&
        asprintf(&hdr[n], "User-Agent: %.400s", ua) > 0)
        n++;
    if (gc != NULL && strpbrk(gc, "\r\n") == NULL &&
        asprintf(&hdr[n], "x-goog-api-client: %.400s", gc) > 0)
        n++;
}

/* The queue budget: gateway.queue_s, or a shorter x-gemroute-queue-s. */
static double
budget(struct gw *gw, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "x-gemroute-queue-s");
    double b, v;
    char *end;

    pthread_rwlock_rdlock(&gw->lock);
    b = gw->conf.queue_s;
    pthread_rwlock_unlock(&gw->lock);
    if (h != NULL) {
        v = strtod(h, &end);
        if (end != h && *end == '\0' && v >= 0 && v < b)
            b = v;
    }
    return b;
}

/*
 * A call that may park its connection (on loops) is counted from here
 * until it is done and the connection resumed.  false: the gateway
 * stops; answer now instead.
 */
static bool
park_begin(struct gw *gw)
{
    /* seq_cst, with gw_server_stop()'s store of stopping and load of
     * parked: either the stop waits for this call, or this call sees
     * the stop (no connection is suspended when the daemon stops) */
    atomic_fetch_add_explicit(&gw->parked, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&gw->stopping, memory_order_seq_cst) == 0)
        return true;
    atomic_fetch_sub_explicit(&gw->parked, 1, memory_order_seq_cst);
    return false;
}

/* A request refused before any reservation: counted, answered. */
static enum MHD_Result
refuse(struct gw *gw, struct MHD_Connection *c, struct req *q, int code,
       const char *status, const char *msg)
{
    gw_metrics_request(route_name[q->route], q->model, NULL, code,
                       gr_now_ns() - q->t0, -1, 0);
    return send_error(gw, c, code, status, msg, NULL);
}

static enum MHD_Result
unavailable(struct gw *gw, struct MHD_Connection *c, struct req *q,
            const char *msg)
{
    return refuse(gw, c, q, 503, "UNAVAILABLE", msg);
}

/* A unary call on a loop: what the connection needs once resumed. */
struct ucall {
    struct park pk;
    struct gw *gw;
    struct gr_fwd f;
    struct gr_call_opts o;
    struct gr_response out;
    struct unary u;
    char path[PATH_MAX_LEN];
    char *hdr[3];
    double budget_s;
    int rc;
};

/* On the loop's thread: the answer is there. */
static void
ucall_done(void *arg, int rc)
{
    struct ucall *a = arg;

    a->rc = rc;
    park_done(a->gw, &a->pk);
}

/* A unary call that no loop runs (the cache, a fallback chain, an
 * alias): gr_forward() on a kept thread, its connection suspended as
 * for a loop's, so that the pool thread serves its other connections. */
static void
ucall_run(void *arg)
{
    struct ucall *a = arg;

    ucall_done(a, gr_forward(a->gw->g, &a->f, &a->o, &a->out));
}

/* The record of a call the loop is done with, freed. */
static void
ucall_free(struct ucall *a)
{
    int i;

    park_sync(&a->pk, true);
    gr_response_free(&a->out);
    for (i = 0; i < 3; i++)
        free(a->hdr[i]);
    free(a);
}

/* The call is over: its answer queued, the record freed. */
/* A call answered with status: counted in the metrics, and a line in
 * the log, with why when it failed (out->error holds no key). */
static void
call_record(const struct req *q, int status, const struct gr_response *out)
{
    bool failed = status >= 400 && out->error[0] != '\0';

    gw_metrics_request(route_name[q->route], q->model, out->project, status,
                       gr_now_ns() - q->t0, out->queued_ns, out->n_429);
    gw_log("%s %s: %d from project %s after %d attempts, queued %lld ms%s"
           "%.300s", route_name[q->route], q->model, status,
           out->project[0] != '\0' ? out->project : "-", out->attempts,
           (long long)(out->queued_ns / 1000000), failed ? ": " : "",
           failed ? out->error : "");
}

static enum MHD_Result
ucall_answer(struct gw *gw, struct MHD_Connection *c, struct req *q,
             struct ucall *a)
{
    enum MHD_Result rc;
    int status = 0;

    park_sync(&a->pk, false);
    q->call = NULL;
    rc = send_result(gw, c, q, a->rc, &a->out, a->budget_s, &status);
    call_record(q, status, &a->out);
    ucall_free(a);
    return rc;
}

/*
 * A unary call on a loop (f, o and hdr as serve_call() made them; the
 * body is q's, kept until the connection completes).  The connection
 * is suspended until the answer comes, unless it came already.
 */
static enum MHD_Result
ucall_start(struct gw *gw, struct MHD_Connection *c, struct req *q,
            const struct gr_fwd *f, const struct gr_call_opts *o,
            char *hdr[3], double b)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
        c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ucall *a = calloc(1, sizeof(*a));
    int i, r;

    if (a == NULL) {
        for (i = 0; i < 3; i++)
            free(hdr[i]);
        return MHD_NO;
    }
    park_init(&a->pk, c);
    a->gw = gw;
    a->f = *f;
    a->o = *o;
    a->budget_s = b;
    memcpy(a->hdr, hdr, sizeof(a->hdr));
    snprintf(a->path, sizeof(a->path), "%s", f->path);
    a->f.path = a->path;
    a->f.headers = (const char *const *)a->hdr;
    a->u.gw = gw;
    a->u.fd = ci != NULL ? ci->connect_fd : -1;
    a->u.poll_from_ns = q->t0 + UNARY_POLL_AFTER_NS;
    a->f.arg = &a->u;
    a->f.cancelled = unary_cancelled;
    r = -EAGAIN;
    if (park_begin(gw)) {
        r = gr_fwd_submit(here, &a->f, &a->o, &a->out, ucall_done,
                          a);
        if (r != 0)
            r = runner_start(ucall_run, a);
        if (r != 0)
            /* seq_cst: as in park_begin() */
            atomic_fetch_sub_explicit(&gw->parked, 1,
                                      memory_order_seq_cst);
    }
    if (r != 0 && here != NULL) {
        /* A loop never waits for a call: no thread for it, or the
         * gateway stops. */
        ucall_free(a);
        return unavailable(gw, c, q, gw_stopping(gw)
                           ? "gemroute: the gateway is stopping"
                           : "gemroute: no thread for the call");
    }
    if (r != 0) {
        /* No thread for it (or the gateway stops): gr_forward() on
         * this thread, as without loops. */
        a->rc = gr_forward(gw->g, &a->f, &a->o, &a->out);
        return ucall_answer(gw, c, q, a);
    }
    if (park_suspend(&a->pk)) {
        q->call = a;        /* read when the connection is resumed */
        return MHD_YES;
    }
    return ucall_answer(gw, c, q, a);
}

static enum MHD_Result
bad_request(struct gw *gw, struct MHD_Connection *c, struct req *q,
            const char *msg)
{
    return refuse(gw, c, q, 400, "INVALID_ARGUMENT", msg);
}

/* The stream started (its answer begins) or ended without starting (an
 * error answer, as for a unary call). */
static enum MHD_Result
stream_answer(struct gw *gw, struct MHD_Connection *c, struct req *q,
              struct stream *s)
{
    struct MHD_Response *resp;
    enum MHD_Result rc;
    bool started, whole;
    char *all = NULL;
    size_t len = 0;
    int status = 0;

    q->swait = NULL;
    pthread_mutex_lock(&s->mu);
    started = s->started;
    /* Whole already (the upstream's answer came in one read, as a short
     * stream on a near server does): one answer with a length, which
     * libmicrohttpd sends with its head in one write, instead of a
     * chunked one whose head, events and end go in three. */
    whole = started && s->done && s->rc == GR_OK && !s->nomem;
    if (whole) {
        all = s->buf + s->off;
        len = s->len - s->off;
    }
    pthread_mutex_unlock(&s->mu);
    if (!started) {
        rc = send_result(gw, c, q, s->rc, &s->out, s->budget_s, &status);
        call_record(q, status, &s->out);
        stream_put(s);
        return rc;
    }
    if (whole) {
        /* the call is over: nothing writes s->buf any more */
        resp = MHD_create_response_from_buffer(len, all,
                                               MHD_RESPMEM_MUST_COPY);
        if (resp == NULL) {
            stream_put(s);      /* the reference a reader would hold */
            return MHD_NO;
        }
    } else {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
                                                 stream_read, s,
                                                 stream_gone);
        if (resp == NULL) {
            stream_gone(s);
            return MHD_NO;
        }
    }
    gw_add_headers(gw, resp, s->project, s->queued_ns,
               s->style == S_GEMINI_ARRAY ? "application/json"
                                          : "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    if (whole)
        stream_put(s);          /* the reference a reader would hold */
    return (enum MHD_Result)gw_queue(c, 200, resp);
}

static enum MHD_Result
serve_call(struct gw *gw, struct MHD_Connection *c, struct req *q)
{
    struct json_object *root, *v, *so;
    struct gr_response out;
    struct gr_fwd f;
    struct gr_call_opts o;
    char path[PATH_MAX_LEN], msg[300], *hdr[3];
    const char *body = q->body, *why = NULL;
    size_t len = q->len;
    bool stream = false, want_usage = true, alt_sse = false;
    enum style style = S_GEMINI_SSE;
    double b = budget(gw, c);
    int64_t now = gr_now_ns();
    enum MHD_Result rc;
    int status = 0, r, i;

    /* Malformed JSON costs nothing: refused before any reservation.
     * Parsed by libgemroute's one wrapper (include/gemroute_json.h),
     * with its depth limit; only whitespace may follow the object.  A
     * Gemini route reads nothing from the body here, so its byte
     * scanner vouches for it without a tree when it can; json-c judges
     * whatever it cannot. */
    root = NULL;
    if ((is_openai(q->route) || !gr_json_is_object(q->body, q->len)) &&
        ((root = gr_json_parse(q->body, q->len, 0, GR_JSON_WS_END,
                               &why)) == NULL ||
         !json_object_is_type(root, json_type_object))) {
        snprintf(msg, sizeof(msg), "Invalid JSON payload received. %s%s",
                 q->len == 0 ? "The request has no body."
                 : root == NULL ? "The body is " : "The payload must be a "
                                                   "JSON object.",
                 q->len > 0 && root == NULL ? why : "");
        json_object_put(root);
        return bad_request(gw, c, q, msg);
    }

    memset(&f, 0, sizeof(f));
    memset(&o, 0, sizeof(o));
    if (is_openai(q->route)) {
        const char *m;

        if (!json_object_object_get_ex(root, "model", &v) ||
            !json_object_is_type(v, json_type_string)) {
            json_object_put(root);
            return bad_request(gw, c, q, "Invalid request: 'model' is "
                               "required and must be a string.");
        }
        m = json_object_get_string(v);
        if (strncmp(m, "models/", 7) == 0)
            m += 7;
        if (!model_ok(m, strlen(m))) {
            json_object_put(root);
            return bad_request(gw, c, q, "Invalid request: 'model' is not "
                               "a model name.");
        }
        snprintf(q->model, sizeof(q->model), "%s", m);
        if (q->route == R_OAI_CHAT &&
            json_object_object_get_ex(root, "stream", &v) &&
            json_object_get_boolean(v))
            stream = true;
        if (stream) {
            struct json_object *iu;

            style = S_OPENAI_SSE;
            want_usage = json_object_object_get_ex(root, "stream_options",
                                                   &so) &&
                         json_object_is_type(so, json_type_object) &&
                         json_object_object_get_ex(so, "include_usage",
                                                   &iu) &&
                         json_object_get_boolean(iu);
            if (!want_usage) {
                /* Ask for the usage the table settles with. */
                if (!json_object_object_get_ex(root, "stream_options",
                                               &so) ||
                    !json_object_is_type(so, json_type_object)) {
                    so = json_object_new_object();
                    json_object_object_add(root, "stream_options", so);
                }
                json_object_object_add(so, "include_usage",
                                       json_object_new_boolean(1));
                body = json_object_to_json_string_ext(
                    root, JSON_C_TO_STRING_PLAIN |
                    JSON_C_TO_STRING_NOSLASHESCAPE);
                len = strlen(body);
            }
        }
        f.kind = GR_FWD_OPENAI;
        snprintf(path, sizeof(path), "/v1beta/openai/%s",
                 q->route == R_OAI_CHAT ? "chat/completions" : "embeddings");
    } else {
        const char *alt = MHD_lookup_connection_value(
            c, MHD_GET_ARGUMENT_KIND, "alt");

        stream = q->route == R_STREAM;
        alt_sse = alt != NULL && strcmp(alt, "sse") == 0;
        style = alt_sse ? S_GEMINI_SSE : S_GEMINI_ARRAY;
        f.kind = q->route == R_COUNT ? GR_FWD_COUNT
                 : q->route == R_EMBED ? GR_FWD_EMBED
                 : q->route == R_BATCH_EMBED ? GR_FWD_BATCH_EMBED
                 : q->route == R_PREDICT ? GR_FWD_PREDICT
                 : GR_FWD_GENERATE;
        snprintf(path, sizeof(path), "/%s/models/%s:%s%s", q->ver, q->model,
                 route_name[q->route], stream ? "?alt=sse" : "");
    }
    f.model = q->model;
    f.path = path;
    f.sse = stream;
    o.queue_deadline_ns = now + (int64_t)(b * 1e9);
    o.deadline_ns = o.queue_deadline_ns + CALL_S * NS_PER_S;
    call_headers(c, &o);
    pass_headers(c, hdr);

    if (!stream && here != NULL) {
        f.body = body;      /* q->body: kept until the request completes */
        f.len = len;
        json_object_put(root);
        return ucall_start(gw, c, q, &f, &o, hdr, b);
    }
    if (!stream) {
        f.body = body;
        f.len = len;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            c, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct unary u = {gw, ci != NULL ? ci->connect_fd : -1,
                          q->t0 + UNARY_POLL_AFTER_NS};

        f.headers = (const char *const *)hdr;
        f.arg = &u;
        f.cancelled = unary_cancelled;
        r = gr_forward(gw->g, &f, &o, &out);
        json_object_put(root);
        rc = send_result(gw, c, q, r, &out, b, &status);
        call_record(q, status, &out);
        gr_response_free(&out);
        for (i = 0; i < 3; i++)
            free(hdr[i]);
        return rc;
    }

    /* A stream: the call runs in a stream thread. */
    {
        struct stream *s = calloc(1, sizeof(*s));

        if (s == NULL || (s->body = malloc(len + 1)) == NULL) {
            free(s);
            json_object_put(root);
            for (i = 0; i < 3; i++)
                free(hdr[i]);
            return MHD_NO;
        }
        memcpy(s->body, body, len);
        s->body[len] = '\0';
        s->body_len = len;
        json_object_put(root);
        pthread_mutex_init(&s->mu, NULL);
        pthread_cond_init(&s->cv, NULL);
        s->refs = 2;
        s->style = style;
        s->want_usage = want_usage;
        s->gw = gw;
        s->o = o;
        s->t0 = q->t0;
        s->route = q->route;
        memcpy(s->hdr, hdr, sizeof(s->hdr));
        snprintf(s->path, sizeof(s->path), "%s", path);
        snprintf(s->model, sizeof(s->model), "%s", q->model);
        s->f = f;
        s->f.model = s->model;
        s->f.path = s->path;
        s->f.body = s->body;
        s->f.len = s->body_len;
        s->f.headers = (const char *const *)s->hdr;
        s->f.on_start = on_start;
        s->f.on_event = on_event;
        s->f.arg = s;
        s->f.cancelled = stream_cancelled;
        s->budget_s = b;
        gw_metrics_streams(1);
        if (here != NULL) {
            if (!park_begin(gw)) {
                s->refs = 1;
                stream_put(s);
                return unavailable(gw, c, q, "gemroute: the gateway is "
                                   "stopping");
            }
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
                c, MHD_CONNECTION_INFO_CONNECTION_FD);

            /* From here the reader never blocks (see unpark()). */
            s->conn = c;
            s->lp = here;
            s->fd = ci != NULL ? ci->connect_fd : -1;
            /* Set before the submit: the loop may end the call (and
             * read it in stream_end()) before gr_fwd_submit() returns. */
            s->on_loop = true;
            if (gr_fwd_submit(here, &s->f, &s->o, &s->out,
                              stream_done, s) != 0)
                s->on_loop = false;     /* never seen by a loop */
        }
        if (!s->on_loop) {
            /* relaxed: only gw_server_stop() reads it, after the daemon
             * stopped (the thread's own decrement is the release) */
            atomic_fetch_add_explicit(&gw->streams, 1,
                                      memory_order_relaxed);
            if (stream_start(s) != 0) {
                bool counted = s->conn != NULL;

                s->refs = 1;
                stream_put(s);
                /* relaxed: as the increment above */
                atomic_fetch_sub_explicit(&gw->streams, 1,
                                          memory_order_relaxed);
                if (counted)
                    /* seq_cst: as in park_begin() */
                    atomic_fetch_sub_explicit(&gw->parked, 1,
                                              memory_order_seq_cst);
                return send_error(gw, c, 500, "INTERNAL", "gemroute: no "
                                  "thread for the stream", NULL);
            }
        }
        pthread_mutex_lock(&s->mu);
        if (s->conn != NULL && !s->started && !s->done) {
            /* resumed by on_start() or stream_end() */
            MHD_suspend_connection(c);
            s->parked = true;
            q->swait = s;
            pthread_mutex_unlock(&s->mu);
            return MHD_YES;
        }
        while (!s->started && !s->done)
            pthread_cond_wait(&s->cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
        return stream_answer(gw, c, q, s);
    }
}

/* The dashboard (dashboard.c): its request in plain strings, its answer
 * sent as it says. */
static enum MHD_Result
serve_dash(struct gw *gw, struct MHD_Connection *c, const struct req *q,
           const char *url, const char *method)
{
    struct gw_dash_req in = {
        .method = method, .path = url, .body = q->body, .len = q->len,
    };
    struct gw_dash_resp out;
    struct MHD_Response *r;
    unsigned i;

    in.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   "Authorization");
    in.cookie = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie");
    in.origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    in.host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    in.csrf = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                          "x-csrf-token");
    in.fetch_site = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "Sec-Fetch-Site");
    gw_dash_handle(gw, &in, &out);
    gw_metrics_request(route_name[R_DASH], NULL, NULL, out.status,
                       gr_now_ns() - q->t0, -1, 0);
    r = out.body != NULL
        ? MHD_create_response_from_buffer(out.len, out.body,
                                          MHD_RESPMEM_MUST_FREE)
        : MHD_create_response_from_buffer(0, gw_mhd_buffer(""),
                                          MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(out.body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type",
                            out.ctype ? out.ctype : "text/plain");
    for (i = 0; i < out.n_headers; i++)
        MHD_add_response_header(r, out.hname[i], out.hvalue[i]);
    return (enum MHD_Result)gw_queue(c, (unsigned)out.status, r);
}

/* The routes that block: files, caches and batches (files.c,
 * batches.c), the dashboard. */
static enum MHD_Result
serve_blocking(struct gw *gw, struct MHD_Connection *c, struct req *q,
               const char *url, const char *method)
{
    if (q->route == R_DASH)
        return serve_dash(gw, c, q, url, method);
    if (gw_batches_match(url, method))
        return (enum MHD_Result)gw_batches_serve(gw, c, url, method, q->body,
                                                 q->len, budget(gw, c));
    return (enum MHD_Result)gw_files_serve(gw, c, url, method, q->body,
                                           q->len, budget(gw, c));
}

static void
held_free(struct held *h)
{
    park_sync(&h->pk, true);
    if (h->resp != NULL)
        MHD_destroy_response(h->resp);
    free(h);
}

/* On the kept thread: the route runs, its answer held (gw_queue()). */
static void
held_run(void *arg)
{
    struct held *h = arg;
    struct gw *gw = h->gw;
    int rc;

    holding = h;
    rc = serve_blocking(gw, h->pk.conn, h->q, h->url, h->method);
    holding = NULL;
    h->rc = rc;
    park_done(gw, &h->pk);
}

/* The route is done: what it answered queued now, the record freed. */
static enum MHD_Result
held_answer(struct req *q, struct held *h)
{
    struct MHD_Response *r;
    enum MHD_Result rc;

    park_sync(&h->pk, false);
    r = h->resp;
    h->resp = NULL;
    rc = (enum MHD_Result)h->rc;
    q->held = NULL;
    if (r != NULL)
        rc = (enum MHD_Result)gw_queue(h->pk.conn, h->status, r);
    held_free(h);
    return rc;
}

/* A route that blocks, asked on a loop: run on a kept thread. */
static enum MHD_Result
held_start(struct gw *gw, struct MHD_Connection *c, struct req *q,
           const char *url, const char *method)
{
    struct held *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return MHD_NO;
    park_init(&h->pk, c);
    h->gw = gw;
    h->q = q;
    h->url = url;
    h->method = method;
    if (!park_begin(gw)) {
        held_free(h);
        return unavailable(gw, c, q, "gemroute: the gateway is stopping");
    }
    if (runner_start(held_run, h) != 0) {
        /* seq_cst: as in park_begin() */
        atomic_fetch_sub_explicit(&gw->parked, 1, memory_order_seq_cst);
        held_free(h);
        return unavailable(gw, c, q, "gemroute: no thread for the "
                           "request");
    }
    if (park_suspend(&h->pk)) {
        q->held = h;        /* read when the connection is resumed */
        return MHD_YES;
    }
    return held_answer(q, h);
}

/* ---- the MHD callbacks ------------------------------------------------ */

static enum MHD_Result
answer(void *cls, struct MHD_Connection *c, const char *url,
       const char *method, const char *version, const char *upload,
       size_t *upload_size, void **con_cls)
{
    struct gw *gw = cls;
    struct req *q = *con_cls;
    char msg[300];
    int64_t max_body;
    unsigned workers;

    (void)version;
    if (q == NULL) {
        const char *cl;

        if ((q = calloc(1, sizeof(*q))) == NULL)
            return MHD_NO;
        *con_cls = q;
        q->t0 = gr_now_ns();
        if (head_size(c, url, method) > GW_HEAD_MAX) {
            q->answered = true;
            snprintf(msg, sizeof(msg), "gemroute-gateway: the request's "
                     "line and headers take more than %d bytes.",
                     GW_HEAD_MAX);
            gw_metrics_request("unknown", NULL, NULL, 431, 0, -1, 0);
            return send_error(gw, c, 431, "INVALID_ARGUMENT", msg, NULL);
        }
        pthread_rwlock_rdlock(&gw->lock);
        workers = gw->conf.workers;
        max_body = gw->conf.max_body;
        pthread_rwlock_unlock(&gw->lock);
        q->route = gw_files_match(url, method) ||
                           gw_batches_match(url, method)
                       ? R_FILES
                       : parse_route(url, method, q);
        if (q->route == R_NONE) {
            q->answered = true;
            snprintf(msg, sizeof(msg), "gemroute-gateway: no route for "
                     "%.16s %.200s", method, url);
            gw_metrics_request("unknown", NULL, NULL, 404, 0, -1, 0);
            return send_error(gw, c, 404, "NOT_FOUND", msg, NULL);
        }
        /* Calls count against workers; health, metrics and listings
         * are answered whatever the load. */
        q->counted = q->route >= R_GENERATE;
        /* relaxed: a count compared with a limit, nothing else */
        if (q->counted &&
            atomic_fetch_add_explicit(&gw->active, 1,
                                      memory_order_relaxed) >=
            (int)workers) {
            q->answered = true;
            snprintf(msg, sizeof(msg), "gemroute-gateway serves at most %u "
                     "calls at once; try again shortly.", workers);
            gw_metrics_request("busy", NULL, NULL, 503, 0, -1, 0);
            return send_error(gw, c, 503, "UNAVAILABLE", msg, NULL);
        }
        if (q->route != R_HEALTH && q->route != R_DASH) {
            int st = check_token(gw, c, q->route == R_METRICS,
                                 is_openai(q->route));

            if (st != 0) {
                q->answered = true;
                gw_metrics_request(route_name[q->route], q->model, NULL, st,
                                   0, -1, 0);
                return MHD_YES;
            }
        }
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         "Content-Length");
        if (cl != NULL && strtoll(cl, NULL, 10) > max_body) {
            q->answered = true;
            snprintf(msg, sizeof(msg), "Request payload size exceeds the "
                     "limit: %lld bytes.", (long long)max_body);
            return bad_request(gw, c, q, msg);
        }
        return MHD_YES;
    }
    if (q->call != NULL)        /* resumed: the loop has the answer */
        return ucall_answer(gw, c, q, q->call);
    if (q->swait != NULL)       /* resumed: the stream started or ended */
        return stream_answer(gw, c, q, q->swait);
    if (q->held != NULL)        /* resumed: the route that blocks is done */
        return held_answer(q, q->held);
    if (q->answered) {
        *upload_size = 0;       /* the answer is queued; drop the rest */
        return MHD_YES;
    }
    if (*upload_size > 0) {
        pthread_rwlock_rdlock(&gw->lock);
        max_body = gw->conf.max_body;
        pthread_rwlock_unlock(&gw->lock);
        if (!q->too_big && q->len + *upload_size > (size_t)max_body) {
            q->too_big = true;
            free(q->body);
            q->body = NULL;
            q->len = q->cap = 0;
        }
        if (!q->too_big) {
            if (q->len + *upload_size + 1 > q->cap) {
                size_t cap = q->cap ? q->cap : 4096;
                char *b;

                while (cap < q->len + *upload_size + 1)
                    cap *= 2;
                if ((b = realloc(q->body, cap)) == NULL)
                    return MHD_NO;
                q->body = b;
                q->cap = cap;
            }
            memcpy(q->body + q->len, upload, *upload_size);
            q->len += *upload_size;
            q->body[q->len] = '\0';
        }
        *upload_size = 0;
        return MHD_YES;
    }
    q->answered = true;
    if (q->too_big) {
        pthread_rwlock_rdlock(&gw->lock);
        max_body = gw->conf.max_body;
        pthread_rwlock_unlock(&gw->lock);
        snprintf(msg, sizeof(msg), "Request payload size exceeds the "
                 "limit: %lld bytes.", (long long)max_body);
        return bad_request(gw, c, q, msg);
    }
    switch (q->route) {
    case R_HEALTH:
        return gw_send(gw, c, 200, "ok\n", 3, "text/plain", NULL, -1);
    case R_METRICS: {
        size_t len;
        char *t = gw_metrics_text(&len);
        enum MHD_Result rc;

        if (t == NULL)
            return MHD_NO;
        rc = gw_send(gw, c, 200, t, len,
                      "text/plain; version=0.0.4; charset=utf-8", NULL, -1);
        free(t);
        return rc;
    }
    case R_DASH:
    case R_FILES:
        if (here != NULL)
            return held_start(gw, c, q, url, method);
        return serve_blocking(gw, c, q, url, method);
    case R_MODELS:
    case R_MODEL:
    case R_OAI_MODELS:
    case R_OAI_MODEL:
        return send_models(gw, c, q);
    default:
        return serve_call(gw, c, q);
    }
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
          enum MHD_RequestTerminationCode why)
{
    struct gw *gw = cls;
    struct req *q = *con_cls;

    (void)c;
    (void)why;
    if (q == NULL)
        return;
    /* Resumed, but the caller was gone before its answer was queued:
     * the loop is done with the call (no connection is closed while
     * suspended), what it left is released here. */
    if (q->call != NULL)
        ucall_free(q->call);
    if (q->swait != NULL)
        stream_gone(q->swait);      /* the answer's reference */
    if (q->held != NULL)
        held_free(q->held);
    if (q->counted)
        /* relaxed: see answer() */
        atomic_fetch_sub_explicit(&gw->active, 1, memory_order_relaxed);
    free(q->body);
    free(q);
    *con_cls = NULL;
}

/*
 * One daemon on conf's address and port: with pool > 0, its own pool
 * of threads (loops = 0); else driven by a loop (MHD_run()).  NULL on
 * failure (what libmicrohttpd said is on stderr, never the key).
 */
static struct MHD_Daemon *
daemon_start(struct gw *gw, uint16_t port, unsigned pool)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_ERROR_LOG;
    struct MHD_OptionItem opt[4] = {
        {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
        {MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL},
    };
    int n = 0;

    memset(&a4, 0, sizeof(a4));
    memset(&a6, 0, sizeof(a6));
    if (strchr(gw->conf.host, ':') != NULL) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons(port);
        inet_pton(AF_INET6, gw->conf.host, &a6.sin6_addr);
        sa = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        a4.sin_family = AF_INET;
        a4.sin_port = htons(port);
        inet_pton(AF_INET, gw->conf.host, &a4.sin_addr);
        sa = (const struct sockaddr *)&a4;
    }
    if (pool > 0) {
        flags |= MHD_USE_EPOLL_INTERNAL_THREAD;
        opt[n].option = MHD_OPTION_THREAD_POOL_SIZE;
        opt[n++].value = (intptr_t)pool;
    } else {
        flags |= MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    }
    if (gw->conf.tls) {
        /* HTTPS: libmicrohttpd parses the PEMs with GnuTLS at start
         * and keeps its own copies. */
        flags |= MHD_USE_TLS;
        opt[n].option = MHD_OPTION_HTTPS_MEM_CERT;
        opt[n++].ptr_value = gw_mhd_buffer(gw->conf.tls_cert);
        opt[n].option = MHD_OPTION_HTTPS_MEM_KEY;
        opt[n++].ptr_value = gw_mhd_buffer(gw->conf.tls_key);
    }
    return MHD_start_daemon(flags, port, NULL, NULL, answer, gw,
                            MHD_OPTION_ARRAY, opt,
                            MHD_OPTION_SOCK_ADDR, sa,
                            /* SO_REUSEPORT: the daemons of the loops,
                             * and other gateway processes, share it */
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)(gw->conf.workers + 64),
                            MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)gw->conf.timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)GW_CONN_MEMORY,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, gw,
                            MHD_OPTION_END);
}

/* The port d listens on (the one bound, when conf's port is 0). */
static unsigned
daemon_port(struct MHD_Daemon *d, unsigned dflt)
{
    const union MHD_DaemonInfo *info;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);

    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    if (info == NULL ||
        getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) != 0)
        return dflt;
    return ntohs(bound.ss_family == AF_INET6
                 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                 : ((struct sockaddr_in *)&bound)->sin_port);
}

/* Loops, and their daemons, stopped and freed (each loop first: it
 * drives its daemon). */
static void
loops_end(void)
{
    while (n_loops > 0) {
        n_loops--;
        gr_fwd_loop_free(loops[n_loops]);
        MHD_stop_daemon(daemons[n_loops]);
    }
}

int
gw_server_start(struct gw *gw)
{
    const union MHD_DaemonInfo *info;
    struct gr_fwd_host host;
    struct MHD_Daemon *d = NULL;
    unsigned want = gw->conf.loops, i;
    int e = 0;

    if (gw->conf.tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fprintf(stderr, "gemroute-gateway: gateway.tls_cert is set "
                "but this libmicrohttpd was built without TLS\n");
        return -ENOTSUP;
    }
    if (want > MAX_LOOPS)
        want = MAX_LOOPS;
    gw->port = gw->conf.port;
    n_loops = 0;
    for (i = 0; i < want; i++) {
        /* The first daemon binds (port 0: any), the others join it. */
        errno = 0;
        if ((d = daemon_start(gw, (uint16_t)gw->port, 0)) == NULL) {
            e = errno;
            break;
        }
        if (i == 0)
            gw->port = daemon_port(d, gw->port);
        info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
        host.fd = info != NULL ? info->epoll_fd : -1;
        host.run = host_run;
        host.arg = d;
        if (host.fd < 0 || (loops[i] = gr_fwd_loop_new(gw->g, &host)) == NULL) {
            fprintf(stderr, "gemroute-gateway: cannot start event loop "
                    "%u: %s\n", i + 1, strerror(errno));
            MHD_stop_daemon(d);
            loops_end();
            return -ENOMEM;
        }
        daemons[i] = d;
        n_loops = i + 1;
    }
    if (want == 0) {
        errno = 0;
        d = daemon_start(gw, (uint16_t)gw->port, gw->conf.workers);
        e = errno;
        if (d != NULL)
            gw->port = daemon_port(d, gw->port);
    }
    if (d == NULL) {
        loops_end();
        if (gw->conf.tls && e == 0) {
            /* What libmicrohttpd said is on stderr above (never the
             * key). */
            fprintf(stderr, "gemroute-gateway: cannot serve HTTPS on %s: "
                    "gateway.tls_cert and tls_key were refused (not a "
                    "certificate and its private key in PEM?)\n",
                    gw->conf.listen);
            return -EINVAL;
        }
        fprintf(stderr, "gemroute-gateway: cannot listen on %s: %s\n",
                gw->conf.listen, strerror(e != 0 ? e : EADDRINUSE));
        return -EADDRINUSE;
    }
    gw->daemon = want == 0 ? d : NULL;
    if (n_loops > 0)
        gw_log("calls run on %u event loops (gateway.loops), each serving "
               "its own connections", n_loops);
    else
        gw_log("a thread per call (gateway.loops = 0), %u threads",
               gw->conf.workers);
    return 0;
}

/*
 * Stop: calls in progress are cancelled (their leases settled with what
 * was seen), the loops end and their daemons stop (or, with loops = 0,
 * the daemon joins its pool threads), then the stream threads are
 * waited for.  Returns 0, or -EBUSY when some stream thread
 * is still inside the library after STOP_WAIT_S (waiting for room): the
 * table must then stay attached until the process exits.
 */
#define STOP_WAIT_S 60

int
gw_server_stop(struct gw *gw)
{
    struct timespec ms10 = {0, 10 * 1000 * 1000};
    int i;

    /* seq_cst: see park_begin(); else a flag polled by the calls */
    atomic_store_explicit(&gw->stopping, 1, memory_order_seq_cst);
    /* No connection may be suspended when the daemon stops (libmicro-
     * httpd aborts): calls on loops end first (they are cancelled). */
    for (i = 0; n_loops > 0; i++) {
        if (atomic_load_explicit(&gw->parked, memory_order_seq_cst) == 0)
            break;
        if (i >= STOP_WAIT_S * 100)
            return -EBUSY;
        if (i == 300) {
            unsigned k, on = 0;

            for (k = 0; k < n_loops; k++)
                on += gr_fwd_loop_count(loops[k]);
            gw_log("stopping: %d calls still on loops (%u in the loops)",
                   atomic_load_explicit(&gw->parked,
                                        memory_order_seq_cst), on);
        }
        nanosleep(&ms10, NULL);
    }
    if (gw->daemon != NULL)
        MHD_stop_daemon(gw->daemon);
    gw->daemon = NULL;
    loops_end();
    for (i = 0; i < STOP_WAIT_S * 100; i++) {
        /* acquire: pairs with the release in stream_main() */
        if (atomic_load_explicit(&gw->streams, memory_order_acquire) == 0) {
            runners_end();
            return 0;
        }
        if (i == 300)
            gw_log("stopping: %d stream threads still running",
                   atomic_load_explicit(&gw->streams,
                                        memory_order_acquire));
        nanosleep(&ms10, NULL);
    }
    return -EBUSY;
}
