/*
 * h1.h - the event loops' own HTTP/1.1 client (client/h1.c): what
 * forward.c's loops send with instead of libcurl when no proxy is in
 * the way.  Private to client/.
 *
 * One client belongs to one loop thread and is never touched by
 * another.  Its sockets live in the loop's epoll set (data.fd is the
 * descriptor); the loop hands every event of a descriptor the client
 * owns to gr_h1_event(), and calls gr_h1_tick() by the time it asked
 * for.  Connections are kept per origin (scheme, host, port) and used
 * again, one request at a time each; https goes through OpenSSL, which
 * verifies the server's certificate and name against the system's
 * certificates (or SSL_CERT_FILE / SSL_CERT_DIR).  A host name is
 * resolved on a thread of its own, never on the loop; its
 * addresses serve every later call, looked up again beside them once
 * they are a minute old.  The process must ignore SIGPIPE (a TLS
 * write to a closed connection).
 */
#ifndef GR_H1_H
#define GR_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gr_h1;
struct gr_h1_call;

/* How a call ended (struct gr_h1_cb.done). */
enum gr_h1_rc {
    GR_H1_OK = 0,               /* the whole answer came */
    GR_H1_TIMEOUT,              /* stop_at_ns came first */
    GR_H1_CONNECT,              /* no connection (resolve, connect, TLS) */
    GR_H1_SEND,                 /* the request could not be sent */
    GR_H1_RECV,                 /* the answer was cut or malformed */
    GR_H1_STOPPED,              /* a callback asked to stop */
    GR_H1_NOMEM,
};

struct gr_h1_req {
    const char *method;         /* "GET", "POST", "DELETE", "PATCH" */
    const char *url;            /* http[s]://host[:port]/path?query */
    const char *const *lines;   /* header lines, "Name: value" */
    size_t n_lines;
    const char *body;           /* NULL: none (no Content-Length unless
                                   the method is POST) */
    size_t len;
    int64_t stop_at_ns;         /* the call ends by then (gr_now_ns()) */
    int64_t connect_max_ns;     /* a new connection takes at most this */
};

/* Called on the loop's thread from inside gr_h1_event() / gr_h1_tick(). */
struct gr_h1_cb {
    /* The answer's head lines as sent (status line first, the empty
     * line last); status is known from the first.  Non-zero stops. */
    int (*on_head_line)(void *arg, int status, const char *line,
                        size_t len);
    /* Body bytes, decoded from chunks.  Non-zero stops. */
    int (*on_body)(void *arg, int status, const char *p, size_t len);
    /* The call is over (status 0: no answer); why says what went wrong
     * in a sentence that holds nothing of the request's lines. */
    void (*done)(void *arg, enum gr_h1_rc rc, int status, const char *why);
};

/* A client whose sockets go into epoll set ep; NULL on failure. */
struct gr_h1 *gr_h1_new(int ep);

/* Closes every connection; calls still in flight end without done. */
void gr_h1_free(struct gr_h1 *h);

/* Does the environment name a proxy for http or https URLs
 * (gr_http_env_proxy(): http_proxy, https_proxy, HTTPS_PROXY, all_proxy,
 * ALL_PROXY; "" is none)?  The client knows no proxy: libcurl, which
 * knows their rules (no_proxy), sends then. */
bool gr_h1_env_proxy(void);

/*
 * Start a call.  req->body must stay until done; the rest of req is
 * used here only (the head is written at once, and wiped when an answer
 * begins or the call ends: until then a kept connection found closed
 * may need it again).  0: done will be called, never from inside
 * this function; -errno (-EINVAL: a URL the client does not take,
 * -ENOMEM) and *callp untouched: done will not be called.
 */
int gr_h1_start(struct gr_h1 *h, const struct gr_h1_req *req,
                const struct gr_h1_cb *cb, void *arg,
                struct gr_h1_call **callp);

/* End a call now, without done (the caller gave up on it). */
void gr_h1_abort(struct gr_h1 *h, struct gr_h1_call *call);

/* epoll said events for fd: false when fd is not the client's. */
bool gr_h1_event(struct gr_h1 *h, int fd, uint32_t events);

/* Time passed: calls past their time end (done, GR_H1_TIMEOUT), what
 * was started but not yet begun begins.  Returns when the client next
 * wants a tick (INT64_MAX: none). */
int64_t gr_h1_tick(struct gr_h1 *h, int64_t now_ns);

#endif
