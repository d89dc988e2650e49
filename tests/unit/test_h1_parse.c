/*
 * test_h1_parse.c - the HTTP/1.1 answer reader of client/h1_parse.c:
 * framing (Content-Length, chunked with extensions and trailers, to the
 * connection's end, no body), 1xx answers skipped, keep-alive decisions,
 * every error code, a callback stopping the reading, and an answer
 * followed by another whose bytes are left alone.
 *
 * Every case runs fed whole, split in two at every position (for the
 * long cases: many positions, all near both ends), and one byte at a
 * time; each way must give the same verdict, the same head lines (one
 * call per line, each ending in its LF) and the same body, handed over
 * from inside the piece being fed.  Pieces are heap copies of exactly
 * their length, so a read past one is an error under ASan.
 */
#include "h1_parse.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the callbacks saw. */
struct rec {
    char *head, *body;
    size_t hlen, blen, hcap, bcap;
    unsigned head_calls, body_calls;
    unsigned stop_head_at;      /* the call (from 1) that returns 1 */
    unsigned stop_body_at;
    const char *piece;          /* the buffer being fed */
    size_t piece_len;
    const char *bad;            /* what broke the contract, if anything */
};

static void
append(char **b, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *b = realloc(*b, *cap);
        if (*b == NULL)
            abort();
    }
    memcpy(*b + *len, s, n);
    *len += n;
    (*b)[*len] = '\0';
}

static int
on_head_line(void *arg, const char *line, size_t len)
{
    struct rec *r = arg;

    if (len == 0 || line[len - 1] != '\n' ||
        memchr(line, '\n', len - 1) != NULL || len > GR_H1P_LINE_MAX)
        r->bad = "a head line not whole, or more than one";
    append(&r->head, &r->hlen, &r->hcap, line, len);
    return ++r->head_calls == r->stop_head_at;
}

static int
on_body(void *arg, const char *p, size_t len)
{
    struct rec *r = arg;

    if (len == 0)
        r->bad = "on_body with 0 bytes";
    if (p < r->piece || len > r->piece_len ||
        p > r->piece + (r->piece_len - len))
        r->bad = "body bytes not in the piece fed";
    append(&r->body, &r->blen, &r->bcap, p, len);
    return ++r->body_calls == r->stop_body_at;
}

static const struct gr_h1p_cb cbs = {on_head_line, on_body};

/* A case and what it must give. */
struct want {
    const char *in;
    size_t len;                 /* of in; 0: strlen(in) */
    bool head_req;              /* the request was HEAD */
    bool eof;                   /* the connection ends after in */
    int rc;                     /* the first error, or eof's answer */
    size_t used;                /* bytes taken when rc is 0; 0: len */
    const char *head;           /* the head lines shown, together */
    const char *body;           /* NULL: not compared (ESTOP in on_body) */
    size_t body_len;            /* 0: strlen(body) */
    int status;
    bool done, keep;
    unsigned stop_head_at, stop_body_at;
};

struct got {
    int rc;
    size_t used;
    bool done, keep;
    int status;
    struct rec r;
};

/*
 * Feed w->in: first its first `first` bytes (SIZE_MAX: all), then pieces
 * of `piece` bytes (SIZE_MAX: all the rest), as a client would, until
 * the bytes run out, the answer is complete or an error; then the end
 * of the connection when w->eof.
 */
static void
drive(const struct want *w, size_t len, size_t first, size_t piece,
      struct got *g)
{
    static struct gr_h1p p;
    size_t at = 0, k;

    memset(g, 0, sizeof(*g));
    g->r.stop_head_at = w->stop_head_at;
    g->r.stop_body_at = w->stop_body_at;
    gr_h1p_init(&p, w->head_req);
    for (k = 0;; k++) {
        size_t n = k == 0 ? first : piece;
        char *b;
        ssize_t got;

        if (n > len - at)
            n = len - at;
        b = malloc(n > 0 ? n : 1);
        if (b == NULL)
            abort();
        memcpy(b, w->in + at, n);
        g->r.piece = b;
        g->r.piece_len = n;
        got = gr_h1p_feed(&p, b, n, &cbs, &g->r);
        if (got >= 0 && p.done && (size_t)got < n &&
            gr_h1p_feed(&p, b + got, n - (size_t)got, &cbs, &g->r) != 0)
            g->r.bad = "a feed after the end took bytes";
        free(b);
        if (got < 0) {
            g->rc = (int)got;
            break;
        }
        if ((size_t)got > n || ((size_t)got < n && !p.done))
            g->r.bad = "feed took a wrong count";
        g->used += (size_t)got;
        at += n;
        if (p.done || at == len)
            break;
    }
    if (g->rc == 0 && w->eof)
        g->rc = gr_h1p_eof(&p, &cbs, &g->r);
    g->done = p.done;
    g->keep = gr_h1p_keep(&p);
    g->status = p.status;
}

static size_t
count_lf(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* NULL when g is what w wants, else what differs. */
static const char *
differs(const struct want *w, size_t len, const struct got *g)
{
    size_t blen = w->body == NULL ? 0
                  : w->body_len != 0 ? w->body_len : strlen(w->body);
    const char *head = g->r.head != NULL ? g->r.head : "";

    if (g->r.bad != NULL)
        return g->r.bad;
    if (g->rc != w->rc)
        return "rc";
    if (w->rc == 0 && g->used != (w->used != 0 ? w->used : len))
        return "bytes used";
    if (strcmp(head, w->head) != 0)
        return "head lines";
    if (g->r.head_calls != count_lf(w->head))
        return "head line calls";
    if (w->body != NULL &&
        (g->r.blen != blen || (blen > 0 && memcmp(g->r.body, w->body,
                                                  blen) != 0)))
        return "body";
    if (g->done != w->done || g->keep != w->keep)
        return "done or keep";
    if (w->rc == 0 && g->status != w->status)
        return "status";
    return NULL;
}

static void
release(struct got *g)
{
    free(g->r.head);
    free(g->r.body);
}

/* One way of feeding; a mismatch is printed with the way. */
static bool
one_way(const struct want *w, size_t len, size_t first, size_t piece,
        const char *how)
{
    struct got g;
    const char *d;

    drive(w, len, first, piece, &g);
    d = differs(w, len, &g);
    if (d != NULL)
        fprintf(stderr, "\n  %.40s...: fed %s (first %zu): %s (rc %d, "
                "used %zu, done %d, keep %d, status %d)\n", w->in, how,
                first, d, g.rc, g.used, g.done, g.keep, g.status);
    release(&g);
    return d == NULL;
}

static void
check(const struct want *w)
{
    size_t len = w->len != 0 ? w->len : strlen(w->in), i;
    bool ok;

    ok = one_way(w, len, SIZE_MAX, SIZE_MAX, "whole");
    ok = one_way(w, len, 1, 1, "byte by byte") && ok;
    for (i = 0; i <= len && ok; i++) {
        /* the long cases: every position near either end, some between */
        if (len > 4096 && i > 300 && i + 300 < len && i % 997 != 0)
            continue;
        ok = one_way(w, len, i, SIZE_MAX, "in two");
    }
    CU_ASSERT_TRUE(ok);
}

#define OK200 "HTTP/1.1 200 OK\r\n"
#define TE OK200 "Transfer-Encoding: chunked\r\n\r\n"

#define H503 "HTTP/1.1 503 Service \xc3\xa9\tUnavailable\r\n" \
             "X-Note: caf\xc3\xa9\t!\r\nContent-Length: 6\r\n\r\n"

static void
test_content_length(void)
{
    static const struct want w[] = {
        {.in = OK200 "Content-Type: application/json\r\n"
               "content-LENGTH:  5 \r\n\r\nhello",
         .head = OK200 "Content-Type: application/json\r\n"
                 "content-LENGTH:  5 \r\n\r\n",
         .body = "hello", .status = 200, .done = true, .keep = true},
        /* LF alone, an empty reason */
        {.in = "HTTP/1.1 201\nContent-Length: 3\n\nabc",
         .head = "HTTP/1.1 201\nContent-Length: 3\n\n",
         .body = "abc", .status = 201, .done = true, .keep = true},
        {.in = "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
         .head = "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
         .body = "", .status = 200, .done = true, .keep = true},
        /* one value twice, or listed twice: that value */
        {.in = OK200 "Content-Length: 2\r\nContent-Length: 2\r\n\r\nok",
         .head = OK200 "Content-Length: 2\r\nContent-Length: 2\r\n\r\n",
         .body = "ok", .status = 200, .done = true, .keep = true},
        {.in = OK200 "Content-Length: 2,2 , 2\r\n\r\nok",
         .head = OK200 "Content-Length: 2,2 , 2\r\n\r\n",
         .body = "ok", .status = 200, .done = true, .keep = true},
        /* obs-text and HT in a value; a body with NULs and CRLFs */
        {.in = H503 "a\0\r\n\0b", .len = sizeof(H503) - 1 + 6,
         .head = H503, .body = "a\0\r\n\0b", .body_len = 6,
         .status = 503, .done = true, .keep = true},
    };
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        check(&w[i]);
}

static void
test_chunked(void)
{
    static const struct want w[] = {
        {.in = OK200 "Transfer-Encoding: chunked\r\n\r\n"
               "5;name=val\r\nhello\r\n6 ; a=\"b;c\"\r\n world\r\n"
               "00a\r\n0123456789\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
               "0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n",
         .head = OK200 "Transfer-Encoding: chunked\r\n\r\n",
         .body = "hello world0123456789abcdefghijklmnopqrstuvwxyz",
         .status = 200, .done = true, .keep = true},
        /* LF alone; chunked last of two codings; no trailers */
        {.in = "HTTP/1.1 200 OK\nTransfer-Encoding: gzip, CHUNKED\n\n"
               "3\nabc\n0\n\n",
         .head = "HTTP/1.1 200 OK\nTransfer-Encoding: gzip, CHUNKED\n\n",
         .body = "abc", .status = 200, .done = true, .keep = true},
        /* over two header lines; leading zeros; a zero-size extension */
        {.in = OK200 "Transfer-Encoding: gzip\r\n"
               "Transfer-Encoding: chunked\r\n\r\n"
               "0000000000000000000002\r\nhi\r\n0;last\r\n\r\n",
         .head = OK200 "Transfer-Encoding: gzip\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
         .body = "hi", .status = 200, .done = true, .keep = true},
        /* the largest size taken, 2^60 - 1: waits for its data */
        {.in = OK200 "Transfer-Encoding: chunked\r\n\r\n"
               "FFFFFFFFFFFFFFF\r\nab",
         .head = OK200 "Transfer-Encoding: chunked\r\n\r\n",
         .body = "ab", .status = 200},
    };
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        check(&w[i]);
}

static void
test_to_eof(void)
{
    static const struct want w[] = {
        {.in = OK200 "Content-Type: text/plain\r\n\r\nabc\r\ndef",
         .eof = true, .head = OK200 "Content-Type: text/plain\r\n\r\n",
         .body = "abc\r\ndef", .status = 200, .done = true},
        {.in = OK200 "\r\n", .eof = true, .head = OK200 "\r\n",
         .body = "", .status = 200, .done = true},
        /* chunked not last: the body is what comes, to the end */
        {.in = OK200 "Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello",
         .eof = true,
         .head = OK200 "Transfer-Encoding: chunked, gzip\r\n\r\n",
         .body = "5\r\nhello", .status = 200, .done = true},
        /* no end yet: everything is body, nothing done */
        {.in = OK200 "\r\nHTTP/1.1 200 OK\r\n\r\n", .head = OK200 "\r\n",
         .body = "HTTP/1.1 200 OK\r\n\r\n", .status = 200},
    };
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        check(&w[i]);
}

static void
test_no_body(void)
{
    static const struct want w[] = {
        /* HEAD: the length is the GET's; the next answer is not ours */
        {.in = OK200 "Content-Length: 100\r\n\r\n" OK200
               "Content-Length: 0\r\n\r\n",
         .head_req = true, .used = 40,
         .head = OK200 "Content-Length: 100\r\n\r\n", .body = "",
         .status = 200, .done = true, .keep = true},
        {.in = OK200 "Transfer-Encoding: chunked\r\n\r\n",
         .head_req = true, .head = OK200 "Transfer-Encoding: chunked\r\n\r\n",
         .body = "", .status = 200, .done = true, .keep = true},
        {.in = "HTTP/1.1 204 No Content\r\n\r\n" OK200 "\r\n", .used = 27,
         .head = "HTTP/1.1 204 No Content\r\n\r\n", .body = "",
         .status = 204, .done = true, .keep = true},
        {.in = "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"
               "hello",
         .used = 48,
         .head = "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
         .body = "", .status = 304, .done = true, .keep = true},
        /* without a body, Connection: close still closes */
        {.in = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
         .head = "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
         .body = "", .status = 204, .done = true},
    };
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        check(&w[i]);
}

static void
test_interim_skipped(void)
{
    static const struct want w[] = {
        {.in = "HTTP/1.1 100 Continue\r\n\r\n"
               "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n"
               "Content-Length: 7\r\n\r\n"
               OK200 "Content-Length: 2\r\n\r\nok",
         .head = OK200 "Content-Length: 2\r\n\r\n", .body = "ok",
         .status = 200, .done = true, .keep = true},
        {.in = "HTTP/1.1 100 Continue\n\nHTTP/1.0 404 Not Found\n\nno",
         .eof = true, .head = "HTTP/1.0 404 Not Found\n\n", .body = "no",
         .status = 404, .done = true},
    };
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        check(&w[i]);
}

/* in: an answer with a 2-byte body "ok" whose head is all but its last
 * 2 bytes; keep: what gr_h1p_keep() must say. */
static void
check_keep(const char *in, bool eof, bool keep)
{
    size_t len = strlen(in);
    char *head = strndup(in, len - 2);
    struct want w = {.in = in, .eof = eof, .head = head, .body = "ok",
                     .status = 200, .done = true, .keep = keep};

    CU_ASSERT_PTR_NOT_NULL_FATAL(head);
    check(&w);
    free(head);
}

static void
test_keep(void)
{
    check_keep(OK200 "Content-Length: 2\r\n\r\nok", false, true);
    check_keep(OK200 "Connection: close\r\nContent-Length: 2\r\n\r\nok",
               false, false);
    check_keep(OK200 "Connection: keep-alive, close\r\n"
               "Content-Length: 2\r\n\r\nok", false, false);
    check_keep(OK200 "Connection: Keep-Alive\r\nConnection:CLOSE\r\n"
               "Content-Length: 2\r\n\r\nok", false, false);
    check_keep(OK200 "Connection: ,\t Close ,\r\n"
               "Content-Length: 2\r\n\r\nok", false, false);
    /* tokens, not substrings */
    check_keep(OK200 "Connection: closed, x-close, upgrade\r\n"
               "X-Close: close\r\nContent-Length: 2\r\n\r\nok", false, true);
    check_keep("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false,
               false);
    check_keep("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
               "Content-Length: 2\r\n\r\nok", false, true);
    check_keep("HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n"
               "Content-Length: 2\r\n\r\nok", false, false);
    /* a body to the end never keeps, nor 1.0 with a Transfer-Encoding */
    check_keep("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok", true,
               false);
    check_keep(OK200 "Connection: keep-alive\r\n\r\nok", true, false);
    check_keep("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
               "Transfer-Encoding: gzip\r\n\r\nok", true, false);
    check(&(struct want){
        .in = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
              "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        .head = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                "Transfer-Encoding: chunked\r\n\r\n",
        .body = "ok", .status = 200, .done = true});
}

/* The keep decision is made only once the answer is complete. */
static void
test_keep_before_done(void)
{
    static const char in[] = OK200 "Content-Length: 2\r\n\r\no";
    struct gr_h1p p;

    gr_h1p_init(&p, false);
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, in, sizeof(in) - 1, NULL, NULL),
                    (ssize_t)sizeof(in) - 1);
    CU_ASSERT_FALSE(p.done);
    CU_ASSERT_FALSE(gr_h1p_keep(&p));
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, "k", 1, NULL, NULL), 1);
    CU_ASSERT_TRUE(p.done);
    CU_ASSERT_TRUE(gr_h1p_keep(&p));
    CU_ASSERT_EQUAL(gr_h1p_eof(&p, NULL, NULL), GR_H1P_OK);
}

/* in gives rc once head (the lines shown before) has been read. */
static void
check_err(const char *in, size_t len, int rc, const char *head)
{
    struct want w = {.in = in, .len = len, .rc = rc, .head = head,
                     .body = ""};

    check(&w);
}

#define ERR(in, rc, head) check_err(in, sizeof(in) - 1, rc, head)

static void
test_bad_status(void)
{
    ERR("HTTP/2 200 OK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 20 OK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 2000 OK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 200OK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1  200 OK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 2x0 OK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 099 Low\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 600 High\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.x 200 OK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("http/1.1 200 OK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 101 Switching Protocols\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("\r\n" OK200 "\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 200 O\001K\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 200 O\rK\r\n\r\n", GR_H1P_ESTATUS, "");
    ERR("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2\r\n", GR_H1P_ESTATUS,
        "");
}

static void
test_bad_header(void)
{
    ERR(OK200 "Foo bar\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 "Foo : bar\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 ": bar\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 "F(o): bar\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 "X-A: a\r\n  b\r\n\r\n", GR_H1P_EHEADER, OK200 "X-A: a\r\n");
    ERR(OK200 "X-A: a\r\n\tb\r\n\r\n", GR_H1P_EHEADER, OK200 "X-A: a\r\n");
    ERR(OK200 " X-A: a\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 "X-A: a\001b\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 "X-A: a\0b\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 "X-A: a\rb\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 "X-A: a\177\r\n\r\n", GR_H1P_EHEADER, OK200);
    ERR(OK200 "\r\r\n", GR_H1P_EHEADER, OK200);
    /* in a dropped 1xx head, and in the trailers */
    ERR("HTTP/1.1 100 Continue\r\nX: \002\r\n\r\n", GR_H1P_EHEADER, "");
    ERR("HTTP/1.1 100 Continue\r\n no\r\n\r\n", GR_H1P_EHEADER, "");
    ERR(OK200 "Transfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
        GR_H1P_EHEADER, OK200 "Transfer-Encoding: chunked\r\n\r\n");
}

/* A head of exactly total bytes: a status line, padding headers of at
 * most 1000 bytes, Content-Length: 0, the empty line. */
static char *
make_head(size_t total)
{
    static const char tail[] = "Content-Length: 0\r\n\r\n";
    char *b = malloc(total + 1);
    size_t at = strlen(OK200), end = total - (sizeof(tail) - 1);

    if (b == NULL)
        abort();
    memcpy(b, OK200, at);
    while (at < end) {
        size_t n = end - at > 1000 ? 1000 : end - at;

        if (end - at - n < 12 && end - at > 12)   /* leave room for one */
            n = end - at - 12;
        memcpy(b + at, "X-Pad: ", 7);
        memset(b + at + 7, 'a', n - 9);
        memcpy(b + at + n - 2, "\r\n", 2);
        at += n;
    }
    memcpy(b + end, tail, sizeof(tail));
    return b;
}

static void
test_too_big(void)
{
    char *line = malloc(GR_H1P_LINE_MAX + 64), *in, *head;
    struct want w = {.body = "", .status = 200};
    size_t n;

    if (line == NULL) {         /* a return gcc sees: line is not NULL */
        CU_FAIL_FATAL("out of memory");
        return;
    }
    /* a header line of GR_H1P_LINE_MAX bytes passes, one more does not */
    for (n = GR_H1P_LINE_MAX; n <= GR_H1P_LINE_MAX + 1; n++) {
        memcpy(line, OK200 "X: ", 20);
        memset(line + 20, 'a', n - 5);
        memcpy(line + 17 + n - 2, "\r\n\r\n", 5);
        w.in = line;
        w.len = 0;
        w.head = n == GR_H1P_LINE_MAX ? line : OK200;
        w.rc = n == GR_H1P_LINE_MAX ? 0 : GR_H1P_ETOOBIG;
        w.eof = n == GR_H1P_LINE_MAX;
        w.done = w.eof;
        check(&w);
    }
    /* no LF at all: an error once the line is too long to be one */
    memset(line, 'a', GR_H1P_LINE_MAX);
    w = (struct want){.in = line, .len = GR_H1P_LINE_MAX - 1, .eof = true,
                      .rc = GR_H1P_ECUT, .head = "", .body = ""};
    check(&w);
    w.len = GR_H1P_LINE_MAX;
    w.rc = GR_H1P_ETOOBIG;
    check(&w);
    free(line);

    /* a head of GR_H1P_HEAD_MAX bytes passes, one more does not */
    for (n = GR_H1P_HEAD_MAX; n <= GR_H1P_HEAD_MAX + 1; n++) {
        in = make_head(n);
        CU_ASSERT_EQUAL_FATAL(strlen(in), n);
        head = strdup(in);
        CU_ASSERT_PTR_NOT_NULL_FATAL(head);
        if (n > GR_H1P_HEAD_MAX)        /* all but the empty line shown */
            head[n - 2] = '\0';
        w = (struct want){.in = in, .head = head, .body = "",
                          .status = 200, .done = n == GR_H1P_HEAD_MAX,
                          .keep = n == GR_H1P_HEAD_MAX,
                          .rc = n == GR_H1P_HEAD_MAX ? 0 : GR_H1P_ETOOBIG};
        check(&w);
        free(head);
        free(in);
    }

    /* each head counts alone: a big 1xx, then a big final head */
    in = make_head(GR_H1P_HEAD_MAX);
    head = make_head(GR_H1P_HEAD_MAX);
    memcpy(in + 9, "103", 3);
    line = malloc(2 * GR_H1P_HEAD_MAX + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(line);
    memcpy(line, in, GR_H1P_HEAD_MAX);
    memcpy(line + GR_H1P_HEAD_MAX, head, GR_H1P_HEAD_MAX + 1);
    w = (struct want){.in = line, .head = head, .body = "", .status = 200,
                      .done = true, .keep = true};
    check(&w);
    free(line);
    free(head);
    free(in);

    /* trailers are bounded alike: make_head()'s lines after its status
     * line are good trailer lines */
    for (n = GR_H1P_HEAD_MAX; n <= GR_H1P_HEAD_MAX + 1; n++) {
        size_t te = strlen(TE "0\r\n");

        in = make_head(n + 17);
        line = malloc(te + n + 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(line);
        memcpy(line, TE "0\r\n", te);
        memcpy(line + te, in + 17, n + 1);
        w = (struct want){.in = line, .head = TE, .body = "", .status = 200,
                          .done = n == GR_H1P_HEAD_MAX,
                          .keep = n == GR_H1P_HEAD_MAX,
                          .rc = n == GR_H1P_HEAD_MAX ? 0 : GR_H1P_ETOOBIG};
        check(&w);
        free(line);
        free(in);
    }
}

static void
test_bad_length(void)
{
    ERR(OK200 "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        GR_H1P_ELENGTH, OK200 "Content-Length: 5\r\n");
    ERR(OK200 "Content-Length: 5, 6\r\n\r\nhello", GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n", GR_H1P_ELENGTH,
        OK200 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n");
    ERR(OK200 "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello",
        GR_H1P_ELENGTH,
        OK200 "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n");
    ERR("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n", GR_H1P_ELENGTH,
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n");
    ERR(OK200 "Content-Length: 5a\r\n\r\n", GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: -1\r\n\r\n", GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: +5\r\n\r\n", GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: 0x5\r\n\r\n", GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: 5 5\r\n\r\n", GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: \r\n\r\n", GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: ,\r\n\r\n", GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: 18446744073709551616\r\n\r\n",
        GR_H1P_ELENGTH, OK200);
    ERR(OK200 "Content-Length: 99999999999999999999\r\n\r\n",
        GR_H1P_ELENGTH, OK200);
}

/* The largest Content-Length is read exactly. */
static void
test_length_max(void)
{
    static const char in[] = OK200 "Content-Length: 18446744073709551615\r\n"
                             "\r\nabc";
    struct gr_h1p p;

    gr_h1p_init(&p, false);
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, in, sizeof(in) - 1, NULL, NULL),
                    (ssize_t)sizeof(in) - 1);
    CU_ASSERT_TRUE(p.have_length);
    CU_ASSERT_EQUAL(p.length, UINT64_MAX);
    CU_ASSERT_EQUAL(p.left, UINT64_MAX - 3);
    CU_ASSERT_FALSE(p.done);
    CU_ASSERT_EQUAL(gr_h1p_eof(&p, NULL, NULL), GR_H1P_ECUT);
}

static void
test_bad_chunk(void)
{
    ERR(TE "g\r\n", GR_H1P_ECHUNK, TE);
    ERR(TE "\r\n", GR_H1P_ECHUNK, TE);
    ERR(TE ";x\r\n", GR_H1P_ECHUNK, TE);
    ERR(TE " 5\r\n", GR_H1P_ECHUNK, TE);
    ERR(TE "5 x\r\n", GR_H1P_ECHUNK, TE);
    ERR(TE "-5\r\n", GR_H1P_ECHUNK, TE);
    ERR(TE "5;\001\r\nhello\r\n0\r\n\r\n", GR_H1P_ECHUNK, TE);
    ERR(TE "10000000000000000\r\n", GR_H1P_ECHUNK, TE);        /* 2^64 */
    ERR(TE "1000000000000000\r\n", GR_H1P_ECHUNK, TE);         /* 2^60 */
    ERR(TE "ffffffffffffffffffff\r\n", GR_H1P_ECHUNK, TE);
    /* the data must end with CRLF or LF */
    check(&(struct want){.in = TE "5\r\nhelloX\r\n", .rc = GR_H1P_ECHUNK,
                         .head = TE, .body = "hello"});
    check(&(struct want){.in = TE "5\r\nhello\rX", .rc = GR_H1P_ECHUNK,
                         .head = TE, .body = "hello"});
    check(&(struct want){.in = TE "5\r\nhello\r\r\n", .rc = GR_H1P_ECHUNK,
                         .head = TE, .body = "hello"});
    check(&(struct want){.in = TE "2\r\nhi\r\n3\r\nabcd\r\n",
                         .rc = GR_H1P_ECHUNK, .head = TE, .body = "hiabc"});
}

static void
test_cut(void)
{
    static const struct want w[] = {
        {.in = "", .eof = true, .rc = GR_H1P_ECUT, .head = "", .body = ""},
        {.in = "HTTP/1.1 2", .eof = true, .rc = GR_H1P_ECUT, .head = "",
         .body = ""},
        {.in = OK200 "Content-Len", .eof = true, .rc = GR_H1P_ECUT,
         .head = OK200, .body = ""},
        {.in = OK200 "Content-Length: 5\r\n", .eof = true,
         .rc = GR_H1P_ECUT, .head = OK200 "Content-Length: 5\r\n",
         .body = ""},
        {.in = OK200 "Content-Length: 5\r\n\r", .eof = true,
         .rc = GR_H1P_ECUT, .head = OK200 "Content-Length: 5\r\n",
         .body = ""},
        {.in = OK200 "Content-Length: 5\r\n\r\nhel", .eof = true,
         .rc = GR_H1P_ECUT, .head = OK200 "Content-Length: 5\r\n\r\n",
         .body = "hel"},
        {.in = TE "5\r\nhel", .eof = true, .rc = GR_H1P_ECUT, .head = TE,
         .body = "hel"},
        {.in = TE "5\r\nhello\r", .eof = true, .rc = GR_H1P_ECUT,
         .head = TE, .body = "hello"},
        {.in = TE "0\r\n", .eof = true, .rc = GR_H1P_ECUT, .head = TE,
         .body = ""},
        {.in = TE "0\r\nX: y\r\n", .eof = true, .rc = GR_H1P_ECUT,
         .head = TE, .body = ""},
        {.in = "HTTP/1.1 100 Continue\r\n\r\n", .eof = true,
         .rc = GR_H1P_ECUT, .head = "", .body = ""},
    };
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        check(&w[i]);
}

static void
test_stop(void)
{
    static const struct want w[] = {
        /* from on_head_line: the status line, a header, the empty line */
        {.in = OK200 "Content-Length: 2\r\n\r\nok", .stop_head_at = 1,
         .rc = GR_H1P_ESTOP, .head = OK200, .body = ""},
        {.in = OK200 "Content-Length: 2\r\n\r\nok", .stop_head_at = 2,
         .rc = GR_H1P_ESTOP, .head = OK200 "Content-Length: 2\r\n",
         .body = ""},
        {.in = OK200 "Content-Length: 2\r\n\r\nok", .stop_head_at = 3,
         .rc = GR_H1P_ESTOP, .head = OK200 "Content-Length: 2\r\n\r\n",
         .body = ""},
        /* from on_body, in each framing (what it saw depends on the
         * pieces) */
        {.in = OK200 "Content-Length: 2\r\n\r\nok", .stop_body_at = 1,
         .rc = GR_H1P_ESTOP, .head = OK200 "Content-Length: 2\r\n\r\n"},
        {.in = TE "2\r\nok\r\n0\r\n\r\n", .stop_body_at = 1,
         .rc = GR_H1P_ESTOP, .head = TE},
        {.in = OK200 "\r\nok", .eof = true, .stop_body_at = 1,
         .rc = GR_H1P_ESTOP, .head = OK200 "\r\n"},
    };
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        check(&w[i]);
}

/* After an error the reader keeps saying so. */
static void
test_error_sticks(void)
{
    struct gr_h1p p;

    gr_h1p_init(&p, false);
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, "XTTP", 4, NULL, NULL), 4);
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, "\r\n", 2, NULL, NULL), GR_H1P_ESTATUS);
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, OK200 "\r\n", 19, NULL, NULL),
                    GR_H1P_ESTATUS);
    CU_ASSERT_EQUAL(gr_h1p_eof(&p, NULL, NULL), GR_H1P_ESTATUS);
    CU_ASSERT_FALSE(p.done);
    CU_ASSERT_FALSE(gr_h1p_keep(&p));
    CU_ASSERT_STRING_NOT_EQUAL(gr_h1p_strerror(GR_H1P_ECHUNK),
                               gr_h1p_strerror(GR_H1P_ECUT));
    CU_ASSERT_PTR_NOT_NULL(gr_h1p_strerror(42));
}

/* Two answers in one buffer: the first feed takes only the first. */
static void
test_pipeline(void)
{
    static const char a[] = TE "2\r\nok\r\n0\r\nX-T: 1\r\n\r\n";
    static const char b[] = OK200 "Content-Length: 3\r\n\r\nabc";
    static const struct want w[] = {
        {.in = TE "2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"
               OK200 "Content-Length: 3\r\n\r\nabc",
         .used = sizeof(a) - 1, .head = TE, .body = "ok", .status = 200,
         .done = true, .keep = true},
        {.in = OK200 "Content-Length: 3\r\n\r\nabc" OK200 "\r\n",
         .used = sizeof(b) - 1, .head = OK200 "Content-Length: 3\r\n\r\n",
         .body = "abc", .status = 200, .done = true, .keep = true},
    };
    size_t la = sizeof(a) - 1, lb = sizeof(b) - 1;
    char both[sizeof(a) + sizeof(b)];
    struct rec r = {0};
    struct gr_h1p p;
    size_t i;

    for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        check(&w[i]);

    memcpy(both, a, la);
    memcpy(both + la, b, lb);
    r.piece = both;
    r.piece_len = la + lb;
    gr_h1p_init(&p, false);
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, both, la + lb, &cbs, &r), (ssize_t)la);
    CU_ASSERT_TRUE(p.done);
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, both + la, lb, &cbs, &r), 0);
    gr_h1p_init(&p, false);
    CU_ASSERT_EQUAL(gr_h1p_feed(&p, both + la, lb, &cbs, &r), (ssize_t)lb);
    CU_ASSERT_TRUE(p.done);
    CU_ASSERT_TRUE(gr_h1p_keep(&p));
    CU_ASSERT_EQUAL(r.blen, 5);
    CU_ASSERT_NSTRING_EQUAL(r.body, "okabc", 5);
    CU_ASSERT_PTR_NULL(r.bad);
    free(r.head);
    free(r.body);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"Content-Length body", test_content_length},
        {"chunked, extensions, trailers", test_chunked},
        {"body to the connection's end", test_to_eof},
        {"HEAD, 204, 304: no body", test_no_body},
        {"1xx answers skipped", test_interim_skipped},
        {"keep or close", test_keep},
        {"keep only once done", test_keep_before_done},
        {"bad status line", test_bad_status},
        {"bad header line", test_bad_header},
        {"line and head too long", test_too_big},
        {"bad Content-Length", test_bad_length},
        {"largest Content-Length", test_length_max},
        {"bad chunk", test_bad_chunk},
        {"connection cut", test_cut},
        {"callback stops", test_stop},
        {"error sticks", test_error_sticks},
        {"pipelined answers", test_pipeline},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"h1_parse", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_h1_parse", suites, 120);
}
