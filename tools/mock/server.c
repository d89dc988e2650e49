/*
 * server.c - the mock's HTTP server on libmicrohttpd: route, check the
 * key, model and body, charge the quota, inject faults and latency, and
 * answer in Google's shapes.  This is the only file of the mock that
 * includes microhttpd.h.
 *
 * Invariants protected: no key ever reaches a log line (MHD's URL has no
 * query string; we print project names only); a body over max_body is
 * refused with a clear 400 and never buffered past the cap; injected
 * latency suspends the connection and parks it on the timer thread, so a
 * slow answer never holds a server thread and concurrent requests are not
 * serialised; the checks run in the order Google applies them (path, key,
 * model, body, quota), and a refused request costs no quota.
 */
#include "server.h"

#include "clock.h"
#include "delay.h"
#include "request.h"
#include "responses.h"
#include "stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
};

/* What one handled request answers. */
struct answer {
    unsigned status;
    const char *ctype;
    struct gr_mock_buf body;
    int64_t delay_ns;    /* injected latency, 0 = none */
    const char *project; /* for the verbose log */
    const char *note;    /* for the verbose log */
};

static const char oom_body[] =
    "{\n  \"error\": {\n    \"code\": 500,\n    \"message\": \"gemroute-mock: "
    "out of memory\",\n    \"status\": \"INTERNAL\"\n  }\n}\n";

static void
resume_conn(void *arg)
{
    MHD_resume_connection(arg);
}

static enum MHD_Result
send_buf(struct MHD_Connection *conn, unsigned status, const char *ctype,
         struct gr_mock_buf *b)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (b->failed) {
        gr_mock_buf_free(b);
        resp = MHD_create_response_from_buffer(
            sizeof oom_body - 1, (void *)oom_body, MHD_RESPMEM_PERSISTENT);
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

static void
handle_model(struct gr_mock_server *srv, struct MHD_Connection *conn,
             const struct gr_mock_route *rt, struct req *r, struct answer *a)
{
    struct gr_mock_state *st = srv->st;
    const struct gr_mock_project *pr;
    struct gr_mock_usage u;
    struct gr_mock_verdict v;
    struct gr_mock_cost cost;
    struct gr_mock_cell *cell;
    enum gr_mock_outcome outcome;
    char msg[512], field[64];
    const char *key, *alt;
    int p, m, rc, sse = 0;

    BUMP(st->g.requests);
    key = api_key(conn);
    if (key == NULL) {
        BUMP(st->g.no_key);
        a->status = 403;
        gr_mock_resp_no_key(&a->body);
        return;
    }
    p = gr_mock_state_key(st, key);
    if (p < 0) {
        BUMP(st->g.bad_key);
        a->status = 400;
        a->note = "unknown key";
        gr_mock_resp_key_invalid(&a->body);
        return;
    }
    pr = &st->projects[p];
    a->project = pr->cfg->name;
    switch (LOAD(st->projects[p].key_state)) {
    case GR_MOCK_KEYS_INVALID:
        BUMP(st->g.bad_key);
        a->status = 400;
        gr_mock_resp_key_invalid(&a->body);
        return;
    case GR_MOCK_KEYS_LEAKED:
        BUMP(st->g.leaked_key);
        a->status = 403;
        gr_mock_resp_key_leaked(&a->body);
        return;
    default:
        break;
    }
    m = gr_mock_state_model(st, rt->model);
    if (m < 0) {
        BUMP(st->g.model_not_found);
        a->status = 404;
        gr_mock_resp_model_not_found(&a->body, rt->version, rt->model,
                                     rt->method);
        return;
    }
    rc = gr_mock_parse_body(rt->method, r->body.data, r->body.len, &u, msg,
                            sizeof msg, field, sizeof field);
    if (rc < 0) {
        BUMP(st->g.bad_request);
        a->status = 400;
        gr_mock_resp_bad_request(&a->body, msg, field);
        return;
    }
    cell = gr_mock_state_cell(st, (size_t)p, (size_t)m);
    if (rt->method == GR_MOCK_COUNT_TOKENS) {
        /* countTokens has its own generous quota at Google: free here. */
        gr_mock_cell_count_tokens_call(cell);
        a->status = 200;
        gr_mock_resp_count_tokens(&a->body, &u);
        return;
    }

    cost.requests = u.requests;
    cost.tokens = u.tokens;
    cost.images = u.images;
    outcome = draw_fault(st);
    rc = gr_mock_cell_admit(cell, &cost, st->window_ns, LOAD(st->offset_ns),
                            outcome, &v);
    if (rc == -EAGAIN) {
        a->status = 429;
        a->note = "quota";
        gr_mock_resp_quota(&a->body, pr->cfg->tier, family_of(rt->method),
                           rt->model, cell->limit, &v);
        return;
    }
    if (rc < 0) {
        a->status = 500;
        gr_mock_resp_internal(&a->body);
        return;
    }
    /* Admitted: the answer, whatever it is, comes after the latency. */
    a->delay_ns = draw_latency(st);
    if (outcome == GR_MOCK_FAIL_503) {
        a->status = 503;
        a->note = "injected";
        gr_mock_resp_overloaded(&a->body);
        return;
    }
    if (outcome == GR_MOCK_FAIL_500) {
        a->status = 500;
        a->note = "injected";
        gr_mock_resp_internal(&a->body);
        return;
    }
    a->status = 200;
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
    default:
        gr_mock_resp_generate(&a->body, rt->model, &u);
        break;
    }
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
    static const char *const states[] = {"ok", "invalid", "leaked"};
    struct gr_mock_admin ad;
    struct gr_mock_jw w;
    int p, s;

    if (admin_body(r, &ad, a) < 0)
        return;
    if (!(ad.has & GR_MOCK_ADMIN_NAME) || !(ad.has & GR_MOCK_ADMIN_STATE)) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body,
                                 "Give \"name\" and \"state\" (ok, "
                                 "invalid or leaked).",
                                 "");
        return;
    }
    p = gr_mock_state_project(st, ad.name);
    if (p < 0) {
        a->status = 404;
        gr_mock_resp_error(&a->body, 404, "NOT_FOUND", "No such project.");
        return;
    }
    for (s = 0; s < 3; s++)
        if (strcmp(ad.state, states[s]) == 0)
            break;
    if (s == 3) {
        a->status = 400;
        gr_mock_resp_bad_request(&a->body,
                                 "state must be ok, invalid or "
                                 "leaked.",
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
        default:
            BUMP(st->g.unknown_path);
            a->status = 404;
            gr_mock_resp_unknown_path(&a->body);
            break;
        }
    }
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
    return send_buf(conn, 400, CT_JSON, &b);
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
        return send_buf(conn, r->status, r->ctype, &r->out);
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
        MHD_suspend_connection(conn);
        rc =
            gr_mock_delay_add(srv->delay, gr_shm_now_mono() + a.delay_ns, conn);
        if (rc < 0)
            MHD_resume_connection(conn); /* stopping: answer at once */
        return MHD_YES;
    }
    r->answered = 1;
    return send_buf(conn, a.status, a.ctype, &a.body);
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

int
gr_mock_server_start(struct gr_mock_state *st, int fd, unsigned threads,
                     int verbose, struct gr_mock_server **out)
{
    struct gr_mock_server *srv;
    unsigned flags;
    int rc;

    *out = NULL;
    srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return -ENOMEM;
    srv->st = st;
    srv->fd = fd;
    srv->verbose = verbose;
    rc = gr_mock_delay_start(&srv->delay, resume_conn);
    if (rc < 0) {
        free(srv);
        return rc;
    }
    /* epoll in a pool of threads for throughput; suspend/resume so that
     * latency parks connections instead of threads. */
    flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, srv, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
        MHD_OPTION_CONNECTION_LIMIT, 4000u, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        gr_mock_delay_stop(srv->delay);
        free(srv);
        return -EIO;
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
