/*
 * h1.c - the event loops' own HTTP/1.1 client (see h1.h).
 *
 * Why not libcurl, which the rest of libgemroute uses: on a loop that
 * forwards small calls to a server on the same host, libcurl alone cost
 * 22 to 31 us of CPU a call (docs/BENCHMARKS.md section 4: its URL
 * parsing, its option and header handling, two poll()s per transfer),
 * where a client that does only what the loops need costs 9 to 14.  The
 * loops need little: one request at a time on a kept connection, no
 * redirects, no cookies, no proxy (a proxy sends the call to libcurl,
 * forward.c decides), identity coding.
 *
 * A call is a record on the client's list; a connection is a socket
 * (and an SSL) in the loop's epoll set, registered for reading, or for
 * writing alone while a write waits: a call on a kept connection whose
 * request goes at once costs no epoll_ctl().  A call begins at once
 * when its origin's addresses are known (numeric, or resolved less than
 * a minute ago); else it waits for a resolver thread, which wakes the
 * loop through an eventfd in the set.  What ends a call (done) is only
 * ever called from gr_h1_event() or gr_h1_tick(), never from
 * gr_h1_start().
 *
 * A kept connection the server closed meanwhile is found when the
 * request cannot be written or the answer is an immediate end: such a
 * call is sent once more on a new connection, as libcurl does, and only
 * when nothing of an answer came.
 *
 * Invariants protected: the request's head (which carries the project's
 * key) is wiped as soon as an answer begins and whenever its call ends; no
 * sentence of ours quotes a header line; every byte of an answer goes
 * through gr_h1p_feed(), which refuses what is malformed; a connection
 * is used again only when its answer ended exactly where the framing
 * said (gr_h1p_keep()) with no byte left over.
 */
#include "h1.h"
#include "h1_parse.h"
#include "http_priv.h"
#include "gemroute.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define NS_PER_S INT64_C(1000000000)
#define ADDR_KEEP_NS (60 * NS_PER_S)    /* a host's addresses, kept */
#define RESOLVE_AGAIN_NS (5 * NS_PER_S) /* after a failed lookup */
#define ADDR_MAX 4                      /* of a host, tried in turn */
#define HOST_MAX 256
#define RBUF_SIZE (64 * 1024)
#define IDLE_MAX 256                    /* kept connections, per origin */
#define TLS_INLINE_BODY (16 * 1024)     /* a body this small goes in the
                                           head's record */
#define WHY_MAX 200

struct resolve;

/* Where calls go: scheme, host and port, with what is known of them. */
struct origin {
    bool tls, numeric;
    char host[HOST_MAX];        /* as in the URL, without [] */
    char hostport[HOST_MAX + 8];    /* the Host header's value */
    unsigned port;
    struct sockaddr_storage addr[ADDR_MAX];
    socklen_t alen[ADDR_MAX];
    int n_addr;
    int64_t addr_until_ns;      /* numeric: INT64_MAX */
    struct resolve *res;        /* a lookup in flight */
    char res_why[WHY_MAX];      /* the last lookup's failure */
    SSL_SESSION *sess;          /* to resume a TLS session with */
    struct conn *idle;          /* kept connections, the last first */
    unsigned n_idle;
    struct origin *next;
};

enum conn_state { C_CONNECT, C_HANDSHAKE, C_SEND, C_RECV, C_IDLE };

struct conn {
    int fd;
    SSL *ssl;
    struct origin *o;
    enum conn_state st;
    uint32_t have;              /* events registered in ep */
    int addr_i;                 /* the address being connected to */
    bool used;                  /* it has carried an answer */
    struct gr_h1_call *call;
    struct conn *next_idle;
};

struct gr_h1_call {
    struct gr_h1 *h;
    struct gr_h1_cb cb;
    void *arg;
    struct origin *o;
    struct conn *c;
    char *out;                  /* the head (and a small body) */
    size_t out_len, out_off;
    const char *body;           /* the body, unless in out */
    size_t body_len, body_off;
    bool head_request, waiting_addr, resent, got, ended;
    enum gr_h1_rc rc;           /* ended: how; done from the next tick */
    int64_t stop_at_ns;
    int64_t connect_max_ns;     /* a new connection's budget */
    int64_t connect_by_ns;      /* this connection's connect ends */
    char why[WHY_MAX];
    struct gr_h1_call *next, *prev;
    struct gr_h1p p;            /* last: not zeroed (its line buffer) */
};

struct gr_h1 {
    int ep;
    int efd;                    /* resolvers done: readable */
    struct origin *origins;
    struct gr_h1_call *calls;
    struct conn **by_fd;        /* the client's sockets, by descriptor */
    size_t n_by_fd;
    char *rbuf;
};

/* ---- TLS: one context for the process -------------------------------- */

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static SSL_CTX *tls_ctx;
static int tls_conn_idx = -1;   /* SSL ex_data: its struct conn */

/* A TLS 1.3 session comes after the handshake: kept by its origin. */
static int
tls_new_session(SSL *ssl, SSL_SESSION *s)
{
    struct conn *c = SSL_get_ex_data(ssl, tls_conn_idx);

    if (c == NULL || c->o == NULL)
        return 0;
    if (c->o->sess != NULL)
        SSL_SESSION_free(c->o->sess);
    c->o->sess = s;
    return 1;                   /* ours now */
}

static void
tls_start(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char alpn[] = "\x08http/1.1";

    if (ctx == NULL)
        return;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* SSL_CERT_FILE / SSL_CERT_DIR, else the system's certificates */
    if (SSL_CTX_set_default_verify_paths(ctx) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        SSL_CTX_free(ctx);
        return;
    }
    /* a write retried after WANT_WRITE starts where the last one did */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
                                        SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
    tls_conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    tls_ctx = ctx;
}

/* ---- URLs and origins ------------------------------------------------ */

struct url {
    bool tls;
    char host[HOST_MAX];
    unsigned port;
    const char *path;           /* from the first '/' or '?' on */
};

/* Split an http(s) URL; false when it is not one the client takes. */
static bool
url_split(const char *s, struct url *u)
{
    const char *p, *h, *he;
    size_t n;
    unsigned long port;

    if (strncmp(s, "http://", 7) == 0) {
        u->tls = false;
        u->port = 80;
        p = s + 7;
    } else if (strncmp(s, "https://", 8) == 0) {
        u->tls = true;
        u->port = 443;
        p = s + 8;
    } else {
        return false;
    }
    if (*p == '[') {
        h = p + 1;
        if ((he = strchr(h, ']')) == NULL)
            return false;
        p = he + 1;
    } else {
        h = p;
        he = p + strcspn(p, ":/?#@");
        p = he;
        if (*p == '@')
            return false;       /* credentials in the URL: not ours */
    }
    n = (size_t)(he - h);
    if (n == 0 || n >= sizeof(u->host))
        return false;
    memcpy(u->host, h, n);
    u->host[n] = '\0';
    if (*p == ':') {
        char *end;

        if (p[1] < '0' || p[1] > '9')
            return false;
        port = strtoul(p + 1, &end, 10);
        if (port == 0 || port > 65535)
            return false;
        u->port = (unsigned)port;
        p = end;
    }
    if (*p != '/' && *p != '?' && *p != '\0')
        return false;
    u->path = p;
    /* nothing that could end the request line or smuggle a header */
    for (; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    for (p = u->host; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

bool
gr_h1_env_proxy(void)
{
    /* the variables and their order are libcurl's, as http.c reads them */
    return gr_http_env_proxy(false) != NULL || gr_http_env_proxy(true) != NULL;
}

/* The origin of u, made when new; NULL when out of memory. */
static struct origin *
origin_of(struct gr_h1 *h, const struct url *u)
{
    struct origin *o;
    struct sockaddr_in *a4;
    struct sockaddr_in6 *a6;
    bool dflt = u->port == (u->tls ? 443u : 80u);

    for (o = h->origins; o != NULL; o = o->next)
        if (o->tls == u->tls && o->port == u->port &&
            strcmp(o->host, u->host) == 0)
            return o;
    if ((o = calloc(1, sizeof(*o))) == NULL)
        return NULL;
    o->tls = u->tls;
    o->port = u->port;
    snprintf(o->host, sizeof(o->host), "%s", u->host);
    if (strchr(u->host, ':') != NULL)
        snprintf(o->hostport, sizeof(o->hostport),
                 dflt ? "[%s]" : "[%s]:%u", u->host, u->port);
    else
        snprintf(o->hostport, sizeof(o->hostport),
                 dflt ? "%s" : "%s:%u", u->host, u->port);
    a4 = (struct sockaddr_in *)&o->addr[0];
    a6 = (struct sockaddr_in6 *)&o->addr[0];
    if (inet_pton(AF_INET, u->host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)u->port);
        o->alen[0] = sizeof(*a4);
        o->numeric = true;
    } else if (inet_pton(AF_INET6, u->host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)u->port);
        o->alen[0] = sizeof(*a6);
        o->numeric = true;
    }
    if (o->numeric) {
        o->n_addr = 1;
        o->addr_until_ns = INT64_MAX;
    }
    o->next = h->origins;
    h->origins = o;
    return o;
}

/* ---- resolving a name, on a thread of its own ------------------------ */

/*
 * A lookup outlives its client when the client is freed first: the
 * thread and the client each hold a reference, and the thread writes
 * the eventfd only while the client has not let go (under res_lock,
 * which the client takes to let go before it closes the eventfd).
 */
struct resolve {
    atomic_int refs;
    bool finished, abandoned;   /* under res_lock */
    int efd;
    char host[HOST_MAX];
    char port[8];
    struct sockaddr_storage addr[ADDR_MAX];
    socklen_t alen[ADDR_MAX];
    int n_addr;
    int gai;                    /* getaddrinfo()'s answer */
};

static pthread_mutex_t res_lock = PTHREAD_MUTEX_INITIALIZER;

static void
resolve_unref(struct resolve *r)
{
    /* acq_rel: the last one sees every write of the other */
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        free(r);
}

static void *
resolve_main(void *arg)
{
    struct resolve *r = arg;
    struct addrinfo hints, *ai = NULL, *a;
    uint64_t one = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    r->gai = getaddrinfo(r->host, r->port, &hints, &ai);
    for (a = ai; r->gai == 0 && a != NULL && r->n_addr < ADDR_MAX;
         a = a->ai_next) {
        if (a->ai_addrlen > sizeof(r->addr[0]))
            continue;
        memcpy(&r->addr[r->n_addr], a->ai_addr, a->ai_addrlen);
        r->alen[r->n_addr++] = a->ai_addrlen;
    }
    if (ai != NULL)
        freeaddrinfo(ai);
    pthread_mutex_lock(&res_lock);
    r->finished = true;
    if (!r->abandoned)
        (void)!write(r->efd, &one, sizeof(one));
    pthread_mutex_unlock(&res_lock);
    resolve_unref(r);
    return NULL;
}

/* Start looking up o's host: 0 or -errno. */
static int
resolve_start(struct gr_h1 *h, struct origin *o)
{
    struct resolve *r;
    pthread_attr_t at;
    pthread_t th;
    int rc;

    if ((r = calloc(1, sizeof(*r))) == NULL)
        return -ENOMEM;
    atomic_init(&r->refs, 2);
    r->efd = h->efd;
    snprintf(r->host, sizeof(r->host), "%s", o->host);
    snprintf(r->port, sizeof(r->port), "%u", o->port);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &at, resolve_main, r);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        free(r);
        return -rc;
    }
    o->res = r;
    return 0;
}

/* ---- sockets in the loop's epoll set --------------------------------- */

static int
conn_register(struct gr_h1 *h, struct conn *c)
{
    struct conn **t;
    size_t n;

    if ((size_t)c->fd >= h->n_by_fd) {
        n = h->n_by_fd ? h->n_by_fd : 64;
        while (n <= (size_t)c->fd)
            n *= 2;
        if ((t = realloc(h->by_fd, n * sizeof(*t))) == NULL)
            return -ENOMEM;
        memset(t + h->n_by_fd, 0, (n - h->n_by_fd) * sizeof(*t));
        h->by_fd = t;
        h->n_by_fd = n;
    }
    h->by_fd[c->fd] = c;
    return 0;
}

/* Wait for out (when asked) or in on c's socket.  Never both: bytes
 * waiting to be read (an early answer, a TLS session ticket) would wake
 * the loop again and again while a write waits for room. */
static int
conn_want(struct gr_h1 *h, struct conn *c, bool out)
{
    struct epoll_event ev;
    uint32_t want = out ? EPOLLOUT : EPOLLIN;

    if (c->have == want)
        return 0;
    memset(&ev, 0, sizeof(ev));
    ev.events = want;
    ev.data.fd = c->fd;
    if (epoll_ctl(h->ep, c->have != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
                  c->fd, &ev) != 0)
        return -errno;
    c->have = want;
    return 0;
}

static void
conn_close(struct gr_h1 *h, struct conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);       /* no close_notify: the socket goes */
    if ((size_t)c->fd < h->n_by_fd)
        h->by_fd[c->fd] = NULL;
    close(c->fd);               /* leaves the epoll set with it */
    free(c);
}

/* Take c off its origin's kept list. */
static void
idle_remove(struct conn *c)
{
    struct conn **pp;

    for (pp = &c->o->idle; *pp != NULL; pp = &(*pp)->next_idle)
        if (*pp == c) {
            *pp = c->next_idle;
            c->o->n_idle--;
            return;
        }
}

/* ---- calls ----------------------------------------------------------- */

/* The call is over: done comes from the next tick (never from inside
 * the caller's own gr_h1_start(), nor in the middle of a read).  Its
 * connection, if it still has one, is closed: it is mid-answer. */
static void
call_end(struct gr_h1_call *q, enum gr_h1_rc rc, const char *why)
{
    if (q->ended)
        return;
    q->ended = true;
    q->rc = rc;
    snprintf(q->why, sizeof(q->why), "%s", why != NULL ? why : "");
    explicit_bzero(q->out, q->out_len);
    if (q->c != NULL) {
        q->c->call = NULL;
        conn_close(q->h, q->c);
        q->c = NULL;
    }
}

static void
call_free(struct gr_h1 *h, struct gr_h1_call *q)
{
    if (q->prev != NULL)
        q->prev->next = q->next;
    else
        h->calls = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    if (q->c != NULL) {
        q->c->call = NULL;
        conn_close(h, q->c);
    }
    explicit_bzero(q->out, q->out_len);
    free(q->out);
    free(q);
}

static void conn_step(struct gr_h1 *h, struct conn *c, uint32_t ev);

/* A new connection for q to its origin's address i: 0 or -errno. */
static int
conn_open(struct gr_h1 *h, struct gr_h1_call *q, int i)
{
    struct origin *o = q->o;
    struct conn *c;
    int one = 1, rc;

    if ((c = calloc(1, sizeof(*c))) == NULL)
        return -ENOMEM;
    c->o = o;
    c->addr_i = i;
    c->st = C_CONNECT;
    c->fd = socket(o->addr[i].ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        rc = -errno;
        free(c);
        return rc;
    }
    /* a request is written whole at once: no reason to hold it back */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((rc = conn_register(h, c)) != 0) {
        close(c->fd);
        free(c);
        return rc;
    }
    if (connect(c->fd, (struct sockaddr *)&o->addr[i], o->alen[i]) != 0 &&
        errno != EINPROGRESS) {
        rc = -errno;
        conn_close(h, c);
        return rc;
    }
    if ((rc = conn_want(h, c, true)) != 0) {
        conn_close(h, c);
        return rc;
    }
    c->call = q;
    q->c = c;
    q->got = false;
    return 0;
}

/* A new connection for q to the first of its origin's addresses from
 * i on that takes one (a connect() may fail at once: no route for
 * IPv6, say): 0, or the last -errno. */
static int
conn_open_any(struct gr_h1 *h, struct gr_h1_call *q, int i)
{
    int rc = -EHOSTUNREACH;

    for (; i < q->o->n_addr; i++)
        if ((rc = conn_open(h, q, i)) == 0 || rc == -ENOMEM)
            break;
    return rc;
}

/* q's addresses are known: on a kept connection, or a new one. */
static void
call_begin(struct gr_h1 *h, struct gr_h1_call *q)
{
    struct origin *o = q->o;
    struct conn *c;
    char why[WHY_MAX];
    int rc;

    q->waiting_addr = false;
    q->out_off = q->body_off = 0;
    q->got = false;
    gr_h1p_init(&q->p, q->head_request);
    /* a call sent again goes on a new connection: the other kept ones
     * may have been closed with the one that failed it */
    if (!q->resent && (c = o->idle) != NULL) {
        o->idle = c->next_idle;
        o->n_idle--;
        c->next_idle = NULL;
        c->call = q;
        c->st = C_SEND;
        q->c = c;
        conn_step(h, c, EPOLLOUT);
        return;
    }
    q->connect_by_ns = gr_now_ns() + q->connect_max_ns;
    if ((rc = conn_open_any(h, q, 0)) != 0) {
        snprintf(why, sizeof(why), "cannot connect to %.100s port %u: %s",
                 o->host, o->port, strerror(-rc));
        call_end(q, rc == -ENOMEM ? GR_H1_NOMEM : GR_H1_CONNECT, why);
    }
}

/*
 * A kept connection failed q before any byte of an answer: a server may
 * close a kept connection at any time, so q goes once more on a new
 * one.  Otherwise (a second time, a new connection, bytes came) q ends.
 */
static void
call_resend_or_end(struct gr_h1 *h, struct conn *c, enum gr_h1_rc rc,
                   const char *why)
{
    struct gr_h1_call *q = c->call;

    if (q != NULL && c->used && !q->got && !q->resent) {
        q->resent = true;
        q->c = NULL;
        c->call = NULL;
        conn_close(h, c);
        call_begin(h, q);
        return;
    }
    if (q != NULL)
        call_end(q, rc, why);
    else
        conn_close(h, c);
}

/* ---- a connection's steps -------------------------------------------- */

/* OpenSSL's reason, for a sentence: the certificate's when it was the
 * certificate. */
static void
tls_why(struct conn *c, char *buf, size_t len, const char *what)
{
    long v = SSL_get_verify_result(c->ssl);
    unsigned long e = ERR_get_error();

    if (v == X509_V_ERR_HOSTNAME_MISMATCH ||
        v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        snprintf(buf, len, "%s %.64s: certificate verify failed: the "
                 "certificate does not name %.64s", what, c->o->host,
                 c->o->host);
    else if (v != X509_V_OK)
        snprintf(buf, len, "%s %.100s: certificate verify failed (%s)", what,
                 c->o->host, X509_verify_cert_error_string(v));
    else if (e != 0)
        snprintf(buf, len, "%s %.100s: %s", what, c->o->host,
                 ERR_reason_error_string(e) != NULL
                     ? ERR_reason_error_string(e) : "TLS error");
    else
        snprintf(buf, len, "%s %.100s: connection closed", what, c->o->host);
    ERR_clear_error();
}

static int
tls_begin(struct conn *c)
{
    struct origin *o = c->o;
    X509_VERIFY_PARAM *vp;

    if (tls_ctx == NULL || (c->ssl = SSL_new(tls_ctx)) == NULL ||
        SSL_set_fd(c->ssl, c->fd) != 1)
        return -ENOMEM;
    SSL_set_ex_data(c->ssl, tls_conn_idx, c);
    vp = SSL_get0_param(c->ssl);
    if (o->numeric) {
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, o->host) != 1)
            return -ENOMEM;
    } else if (SSL_set_tlsext_host_name(c->ssl, o->host) != 1 ||
               SSL_set1_host(c->ssl, o->host) != 1) {
        return -ENOMEM;
    }
    if (o->sess != NULL)
        SSL_set_session(c->ssl, o->sess);
    c->st = C_HANDSHAKE;
    return 0;
}

/* The connect() ended: on to TLS or to the request (true), or the next
 * address, or the call's end (false: c is gone). */
static bool
conn_connected(struct gr_h1 *h, struct conn *c)
{
    struct gr_h1_call *q = c->call;
    char why[WHY_MAX];
    int err = 0, i = c->addr_i;
    socklen_t el = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
        err = errno;
    if (err != 0) {
        snprintf(why, sizeof(why), "cannot connect to %.100s port %u: %s",
                 c->o->host, c->o->port, strerror(err));
        q->c = NULL;
        c->call = NULL;
        conn_close(h, c);
        if (conn_open_any(h, q, i + 1) == 0)
            return false;
        call_end(q, GR_H1_CONNECT, why);
        return false;
    }
    if (!c->o->tls) {
        c->st = C_SEND;
        return true;
    }
    if (tls_begin(c) != 0) {
        call_end(q, GR_H1_NOMEM, "out of memory");
        return false;
    }
    return true;
}

/* The TLS handshake's next step: -1 failed (the call ended), 0 wait,
 * 1 done. */
static int
conn_handshake(struct gr_h1 *h, struct conn *c)
{
    char why[WHY_MAX];
    int rc = SSL_connect(c->ssl), e;

    if (rc == 1)
        return 1;
    e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        conn_want(h, c, e == SSL_ERROR_WANT_WRITE);
        return 0;
    }
    tls_why(c, why, sizeof(why), "TLS handshake with");
    call_end(c->call, GR_H1_CONNECT, why);
    return -1;
}

/* Write what is left of the request: 1 all sent, 0 wait, -1 failed. */
static int
conn_send(struct gr_h1 *h, struct conn *c)
{
    struct gr_h1_call *q = c->call;
    char why[WHY_MAX];
    ssize_t n;

    while (q->out_off < q->out_len || q->body_off < q->body_len) {
        if (c->ssl != NULL) {
            const char *p = q->out_off < q->out_len ? q->out + q->out_off
                                                    : q->body + q->body_off;
            size_t len = q->out_off < q->out_len ? q->out_len - q->out_off
                                                 : q->body_len - q->body_off;
            int e, r = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX
                                                            : (int)len);

            if (r <= 0) {
                e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    conn_want(h, c, e == SSL_ERROR_WANT_WRITE);
                    return 0;
                }
                tls_why(c, why, sizeof(why), "cannot send to");
                call_resend_or_end(h, c, GR_H1_SEND, why);
                return -1;
            }
            n = r;
        } else {
            struct iovec iov[2];
            struct msghdr m;
            int k = 0;

            if (q->out_off < q->out_len) {
                iov[k].iov_base = q->out + q->out_off;
                iov[k++].iov_len = q->out_len - q->out_off;
            }
            if (q->body_off < q->body_len) {
                /* sendmsg() only reads it */
                iov[k].iov_base = (void *)(uintptr_t)(q->body + q->body_off);
                iov[k++].iov_len = q->body_len - q->body_off;
            }
            memset(&m, 0, sizeof(m));
            m.msg_iov = iov;
            m.msg_iovlen = (size_t)k;
            n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    conn_want(h, c, true);
                    return 0;
                }
                if (errno == EINTR)
                    continue;
                snprintf(why, sizeof(why), "cannot send to %.100s port %u: %s",
                         c->o->host, c->o->port, strerror(errno));
                call_resend_or_end(h, c, GR_H1_SEND, why);
                return -1;
            }
        }
        if (q->out_off < q->out_len) {
            size_t a = q->out_len - q->out_off;

            q->out_off += (size_t)n < a ? (size_t)n : a;
            n -= (ssize_t)((size_t)n < a ? (size_t)n : a);
        }
        q->body_off += (size_t)n;
    }
    conn_want(h, c, false);
    return 1;
}

static int
on_head_line(void *arg, const char *line, size_t len)
{
    struct gr_h1_call *q = arg;

    return q->cb.on_head_line != NULL
               ? q->cb.on_head_line(q->arg, q->p.status, line, len) : 0;
}

static int
on_body(void *arg, const char *p, size_t len)
{
    struct gr_h1_call *q = arg;

    return q->cb.on_body != NULL
               ? q->cb.on_body(q->arg, q->p.status, p, len) : 0;
}

static const struct gr_h1p_cb parse_cb = { on_head_line, on_body };

/* The answer is whole: c is kept for the next call, or closed. */
static void
conn_answered(struct gr_h1 *h, struct conn *c, bool rest)
{
    struct gr_h1_call *q = c->call;

    q->c = NULL;
    c->call = NULL;
    call_end(q, GR_H1_OK, NULL);
    c->used = true;
    if (rest || !gr_h1p_keep(&q->p) || c->o->n_idle >= IDLE_MAX) {
        conn_close(h, c);
        return;
    }
    c->st = C_IDLE;
    c->next_idle = c->o->idle;
    c->o->idle = c;
    c->o->n_idle++;
}

/* Read what has come of the answer. */
static void
conn_recv(struct gr_h1 *h, struct conn *c)
{
    struct gr_h1_call *q = c->call;
    char why[WHY_MAX];
    ssize_t n, used;
    int e;

    for (;;) {
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, h->rbuf, RBUF_SIZE);

            if (r <= 0) {
                e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    conn_want(h, c, e == SSL_ERROR_WANT_WRITE);
                    return;
                }
                if (e != SSL_ERROR_ZERO_RETURN &&
                    !(e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
                    tls_why(c, why, sizeof(why), "cannot read from");
                    call_resend_or_end(h, c, GR_H1_RECV, why);
                    return;
                }
                ERR_clear_error();
                n = 0;          /* the end, with or without notify */
            } else {
                n = r;
            }
        } else {
            n = recv(c->fd, h->rbuf, RBUF_SIZE, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                if (errno == EINTR)
                    continue;
                snprintf(why, sizeof(why),
                         "cannot read from %.100s port %u: %s", c->o->host,
                         c->o->port, strerror(errno));
                call_resend_or_end(h, c, GR_H1_RECV, why);
                return;
            }
        }
        if (n == 0) {
            if (!q->got) {
                call_resend_or_end(h, c, GR_H1_RECV, "the server closed "
                                   "the connection without an answer");
                return;
            }
            e = gr_h1p_eof(&q->p, &parse_cb, q);
            if (e != GR_H1P_OK) {
                call_end(q, GR_H1_RECV, gr_h1p_strerror(e));
                return;
            }
            conn_answered(h, c, true);  /* closed: not kept */
            return;
        }
        if (!q->got) {
            /* an answer: never sent again, so its head goes now (the
             * key's line with it) */
            q->got = true;
            explicit_bzero(q->out, q->out_len);
        }
        used = gr_h1p_feed(&q->p, h->rbuf, (size_t)n, &parse_cb, q);
        if (used < 0) {
            call_end(q, used == GR_H1P_ESTOP ? GR_H1_STOPPED : GR_H1_RECV,
                     gr_h1p_strerror((int)used));
            return;
        }
        if (q->p.done) {
            conn_answered(h, c, used < n ||
                          (c->ssl != NULL && SSL_pending(c->ssl) > 0));
            return;
        }
        /* a short read: the rest, if any, is a later event (level-
         * triggered), one recv() fewer; TLS may hold more decrypted */
        if (c->ssl == NULL && n < RBUF_SIZE)
            return;
    }
}

/* Drive c as far as it goes on events ev. */
static void
conn_step(struct gr_h1 *h, struct conn *c, uint32_t ev)
{
    if (c->st == C_IDLE) {
        /* a kept connection has nothing to say: closed, or junk */
        idle_remove(c);
        conn_close(h, c);
        return;
    }
    if (c->st == C_CONNECT) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (!conn_connected(h, c))
            return;
    }
    if (c->st == C_HANDSHAKE) {
        int r = conn_handshake(h, c);

        if (r <= 0)
            return;
        c->st = C_SEND;
    }
    if (c->st == C_SEND) {
        if (conn_send(h, c) <= 0)
            return;
        c->st = C_RECV;
        return;     /* the answer is not there yet */
    }
    if (c->st == C_RECV)
        conn_recv(h, c);     /* TLS may wait to write even here */
}

/* ---- the interface --------------------------------------------------- */

struct gr_h1 *
gr_h1_new(int ep)
{
    struct gr_h1 *h;
    struct epoll_event ev;

    pthread_once(&tls_once, tls_start);
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return NULL;
    h->ep = ep;
    h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    h->rbuf = malloc(RBUF_SIZE);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = h->efd;
    if (h->efd < 0 || h->rbuf == NULL ||
        epoll_ctl(ep, EPOLL_CTL_ADD, h->efd, &ev) != 0) {
        if (h->efd >= 0)
            close(h->efd);
        free(h->rbuf);
        free(h);
        return NULL;
    }
    return h;
}

void
gr_h1_free(struct gr_h1 *h)
{
    struct origin *o;
    struct conn *c;

    if (h == NULL)
        return;
    while (h->calls != NULL)
        call_free(h, h->calls);
    while ((o = h->origins) != NULL) {
        h->origins = o->next;
        while ((c = o->idle) != NULL) {
            o->idle = c->next_idle;
            conn_close(h, c);
        }
        if (o->res != NULL) {
            pthread_mutex_lock(&res_lock);
            o->res->abandoned = true;
            pthread_mutex_unlock(&res_lock);
            resolve_unref(o->res);
        }
        if (o->sess != NULL)
            SSL_SESSION_free(o->sess);
        free(o);
    }
    close(h->efd);
    free(h->by_fd);
    free(h->rbuf);
    free(h);
}

/* The request's head into q->out: 0 or -errno. */
static int
head_build(struct gr_h1_call *q, const struct gr_h1_req *r,
           const struct url *u)
{
    const char *m = r->method != NULL ? r->method : "POST";
    bool length = r->body != NULL || strcmp(m, "POST") == 0 ||
                  strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
    bool inline_body = r->body != NULL && q->o->tls &&
                       r->len <= TLS_INLINE_BODY;
    size_t i, need, off = 0;
    int k;

    need = strlen(m) + strlen(u->path) + sizeof(" / HTTP/1.1\r\nHost: \r\n")
           + strlen(q->o->hostport) + sizeof("Content-Length: \r\n") + 24 +
           2 + (inline_body ? r->len : 0);
    for (i = 0; i < r->n_lines; i++) {
        if (strpbrk(r->lines[i], "\r\n") != NULL)
            return -EINVAL;
        need += strlen(r->lines[i]) + 2;
    }
    if ((q->out = malloc(need)) == NULL)
        return -ENOMEM;
    k = snprintf(q->out, need, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", m,
                 u->path[0] == '/' ? "" : "/", u->path, q->o->hostport);
    off = (size_t)k;
    for (i = 0; i < r->n_lines; i++) {
        size_t n = strlen(r->lines[i]);

        memcpy(q->out + off, r->lines[i], n);
        memcpy(q->out + off + n, "\r\n", 2);
        off += n + 2;
    }
    if (length)
        off += (size_t)snprintf(q->out + off, need - off,
                                "Content-Length: %zu\r\n",
                                r->body != NULL ? r->len : 0);
    memcpy(q->out + off, "\r\n", 2);
    off += 2;
    if (inline_body) {
        memcpy(q->out + off, r->body, r->len);
        off += r->len;
    } else if (r->body != NULL) {
        q->body = r->body;
        q->body_len = r->len;
    }
    q->out_len = off;
    return 0;
}

int
gr_h1_start(struct gr_h1 *h, const struct gr_h1_req *req,
            const struct gr_h1_cb *cb, void *arg, struct gr_h1_call **callp)
{
    struct gr_h1_call *q;
    struct origin *o;
    struct url u;
    int64_t now = gr_now_ns();
    int rc;

    if (!url_split(req->url, &u))
        return -EINVAL;
    if (u.tls && tls_ctx == NULL)
        return -EINVAL;         /* no TLS here: libcurl's then */
    /* zeroed up to the parser, whose 8 KiB line buffer need not be (a
     * calloc() of it was 4% of the gateway's CPU) */
    if ((o = origin_of(h, &u)) == NULL || (q = malloc(sizeof(*q))) == NULL)
        return -ENOMEM;
    memset(q, 0, offsetof(struct gr_h1_call, p));
    gr_h1p_init(&q->p, false);
    q->h = h;
    q->cb = *cb;
    q->arg = arg;
    q->o = o;
    q->head_request = req->method != NULL &&
                      strcmp(req->method, "HEAD") == 0;
    q->stop_at_ns = req->stop_at_ns;
    q->connect_max_ns = req->connect_max_ns;
    if ((rc = head_build(q, req, &u)) != 0) {
        free(q);
        return rc;
    }
    q->next = h->calls;
    if (h->calls != NULL)
        h->calls->prev = q;
    h->calls = q;
    *callp = q;
    if (o->n_addr > 0) {
        /* Addresses a minute old are looked up again beside, and used
         * meanwhile: no call waits for DNS once the host has been
         * found. */
        if (o->addr_until_ns <= now && o->res == NULL)
            (void)resolve_start(h, o);
        call_begin(h, q);
        return 0;
    }
    q->waiting_addr = true;
    if (o->res == NULL && (rc = resolve_start(h, o)) != 0)
        call_end(q, GR_H1_CONNECT, "cannot start looking up the host");
    return 0;
}

void
gr_h1_abort(struct gr_h1 *h, struct gr_h1_call *q)
{
    call_free(h, q);
}

/* Lookups finished: their origins' waiting calls begin, or end. */
static void
resolved(struct gr_h1 *h)
{
    struct origin *o;
    struct gr_h1_call *q;
    struct resolve *r;
    uint64_t v;
    int64_t now = gr_now_ns();
    bool fin;
    int i;

    while (read(h->efd, &v, sizeof(v)) > 0)
        ;
    for (o = h->origins; o != NULL; o = o->next) {
        if ((r = o->res) == NULL)
            continue;
        pthread_mutex_lock(&res_lock);
        fin = r->finished;
        pthread_mutex_unlock(&res_lock);
        if (!fin)
            continue;
        o->res = NULL;
        if (r->gai == 0 && r->n_addr > 0) {
            for (i = 0; i < r->n_addr; i++) {
                o->addr[i] = r->addr[i];
                o->alen[i] = r->alen[i];
            }
            o->n_addr = r->n_addr;
            o->addr_until_ns = now + ADDR_KEEP_NS;
        } else {
            snprintf(o->res_why, sizeof(o->res_why),
                     "could not resolve host %.100s: %s", o->host,
                     r->gai != 0 ? gai_strerror(r->gai) : "no address");
            /* the old addresses, if any, serve a while longer */
            o->addr_until_ns = now + RESOLVE_AGAIN_NS;
        }
        resolve_unref(r);
        for (q = h->calls; q != NULL; q = q->next) {
            if (q->o != o || !q->waiting_addr || q->ended)
                continue;
            if (o->n_addr > 0)
                call_begin(h, q);
            else
                call_end(q, GR_H1_CONNECT, o->res_why);
        }
    }
}

bool
gr_h1_event(struct gr_h1 *h, int fd, uint32_t events)
{
    struct conn *c;

    if (fd == h->efd) {
        resolved(h);
        return true;
    }
    if (fd < 0 || (size_t)fd >= h->n_by_fd || (c = h->by_fd[fd]) == NULL)
        return false;
    conn_step(h, c, events);
    return true;
}

int64_t
gr_h1_tick(struct gr_h1 *h, int64_t now)
{
    struct gr_h1_call *q;
    int64_t due;
    enum gr_h1_rc rc;
    char why[WHY_MAX];
    void (*done)(void *, enum gr_h1_rc, int, const char *);
    void *arg;
    int status;

    /* From the start again after each done: done may start, end or
     * abort other calls (its own is gone already). */
restart:
    due = INT64_MAX;
    for (q = h->calls; q != NULL; q = q->next) {
        if (!q->ended && now >= q->stop_at_ns)
            call_end(q, GR_H1_TIMEOUT, "the call's time ran out");
        else if (!q->ended && q->c != NULL && q->c->st <= C_HANDSHAKE &&
                 now >= q->connect_by_ns)
            call_end(q, GR_H1_TIMEOUT, "connecting took too long");
        if (q->ended) {
            rc = q->rc;
            status = q->p.status;
            done = q->cb.done;
            arg = q->arg;
            memcpy(why, q->why, sizeof(why));
            call_free(h, q);
            done(arg, rc, status, why);
            goto restart;
        }
        if (q->stop_at_ns < due)
            due = q->stop_at_ns;
        if (q->c != NULL && q->c->st <= C_HANDSHAKE &&
            q->connect_by_ns < due)
            due = q->connect_by_ns;
    }
    return due;
}
