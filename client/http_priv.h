/*
 * http_priv.h - one HTTP POST to a Gemini endpoint, the way libgemroute
 * makes it.  Private to client/; http.c is the only file that sees curl.
 */
#ifndef GR_HTTP_PRIV_H
#define GR_HTTP_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest answer body kept, bytes; a larger one is refused. */
#define GR_HTTP_BODY_MAX (16u << 20)

/*
 * Sees each piece of the answer's body as it arrives, with the answer's
 * HTTP status.  Return 0 to go on; anything else stops the transfer
 * (the result then says GR_HTTP_STOPPED).
 */
typedef int (*gr_http_tap)(void *arg, int status, const char *p, size_t n);

struct gr_http_req {
    const char *url;            /* without the key, ever */
    const char *key;            /* sent as x-goog-api-key; secret */
    const char *proxy;          /* NULL or "" = the environment's */
    const char *body;           /* JSON; NULL = a GET (a probe) */
    size_t len;
    int64_t stop_at_ns;         /* CLOCK_MONOTONIC: the transfer ends */
    gr_http_tap tap;            /* NULL = none */
    void *arg;
};

enum gr_http_err {
    GR_HTTP_OK = 0,             /* an answer came whole */
    GR_HTTP_TIMEOUT,            /* stop_at_ns came first */
    GR_HTTP_NOCONN,             /* no connection (refused, DNS, TLS) */
    GR_HTTP_TOO_BIG,            /* body over GR_HTTP_BODY_MAX: refused */
    GR_HTTP_STOPPED,            /* the tap said stop */
    GR_HTTP_BROKEN,             /* the answer was cut, or another error */
    GR_HTTP_NOMEM,
};

struct gr_http_res {
    int status;                 /* HTTP status; 0 = none came */
    char *body;                 /* malloc'd, NUL-terminated; NULL = none */
    size_t len;
    int64_t first_byte_ns;      /* CLOCK_MONOTONIC; 0 = no byte came */
    enum gr_http_err err;
    char error[192];            /* what went wrong; never the key */
};

/*
 * The proxy libcurl would take from the environment for an http or an
 * https URL: <scheme>_proxy (upper case too, but not HTTP_PROXY, which a
 * CGI request can set), then all_proxy, ALL_PROXY.  A variable set to ""
 * means no proxy, as in libcurl: NULL.  (no_proxy is libcurl's to
 * apply.)
 */
const char *gr_http_env_proxy(bool https);

/*
 * POST req->body (GET when it is NULL) to req->url on this thread's
 * reused connection.  Fills
 * res whatever happens (res->body is the caller's to free) and returns
 * res->err.
 */
enum gr_http_err gr_http_post(const struct gr_http_req *req,
                              struct gr_http_res *res);

#endif
