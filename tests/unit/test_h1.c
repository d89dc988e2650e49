/*
 * test_h1.c - the event loops' own HTTP/1.1 client (client/h1.c) driven
 * as a loop drives it: its own epoll set, epoll_wait() then
 * gr_h1_event() and gr_h1_tick() until the call's done came, against
 * scripted servers on 127.0.0.1 run on threads of the test (one a
 * connection; plain, or TLS with a certificate made here and given to
 * the client through SSL_CERT_FILE).  Each script says what to answer
 * to each request on each connection; the server counts the
 * connections it accepted and the requests it read, and keeps the
 * requests for the tests to read.
 *
 * What is asserted is outcomes (how a call ended, its status, head
 * lines and body, how many connections the server saw), never how long
 * anything took.  Every request carries a key line; no sentence of the
 * client may quote it.
 */
#include "gemroute.h"
#include "h1.h"
#include "testlib.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define NS_PER_MS INT64_C(1000000)
#define KEY_LINE "x-goog-api-key: SECRET-h1-test"
#define TYPE_LINE "Content-Type: application/json"
#define REQ_MAX 16          /* requests a server keeps */
#define CONN_MAX 4          /* connections a server has a script for */
#define ANS_MAX 4           /* answers on one connection */
#define PIECE '\x01'        /* in an answer: write what came before alone */
#define LOOP_MAX 4000       /* turns of a loop, at most */
#define CONN_THREADS 16     /* connections a server serves, at most */

/* ---- the scripted server --------------------------------------------- */

/* What one connection does: answers[i] to its i-th request ("" writes
 * nothing); then, with close_after, it closes (CLOSE_RESET: with a
 * reset, once the test said srv_go()), else it reads on (a next request
 * gets answers[n], if any) until the client closes. */
#define CLOSE_RESET 2
struct conn_script {
    const char *answers[ANS_MAX];
    int n;
    int close_after;
    bool head_only;     /* answers[0] once the first head came, then
                           reads nothing more until the server stops */
};

struct srv {
    int lfd, stop[2];
    unsigned port;
    pthread_t th;
    pthread_t conn_th[CONN_THREADS];    /* one a connection */
    int n_conn_th;
    const struct conn_script *conns;
    int n_conns;                /* the last one serves every later one */
    atomic_int accepted, requests, closed;
    atomic_int go;              /* CLOSE_RESET connections may close */
    SSL_CTX *tls;               /* NULL: plain HTTP */
    char *req[REQ_MAX];         /* the requests read, NUL after each */
    size_t req_len[REQ_MAX];
};

/* One connection of the server: its socket, and its TLS if any. */
struct sio {
    struct srv *s;
    int fd;
    SSL *ssl;
};

/* fd readable (true), or the server is told to stop (false). */
static bool
srv_wait(struct srv *s, int fd)
{
    struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop[0], POLLIN, 0}};

    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (p[1].revents != 0)
            return false;
        if (p[0].revents != 0)
            return true;
    }
}

static bool
sio_wait(struct sio *io)
{
    if (io->ssl != NULL && SSL_pending(io->ssl) > 0)
        return true;
    return srv_wait(io->s, io->fd);
}

static ssize_t
sio_recv(struct sio *io, char *b, size_t n)
{
    if (io->ssl != NULL) {
        int r = SSL_read(io->ssl, b, n > INT32_MAX ? INT32_MAX : (int)n);

        return r > 0 ? r : -1;
    }
    return recv(io->fd, b, n, 0);
}

static ssize_t
sio_send(struct sio *io, const char *b, size_t n)
{
    if (io->ssl != NULL) {
        int r = SSL_write(io->ssl, b, (int)n);

        return r > 0 ? r : -1;
    }
    return send(io->fd, b, n, MSG_NOSIGNAL);
}

/* Where the head of the n bytes at b ends (after its empty line), or 0. */
static size_t
head_end(const char *b, size_t n)
{
    size_t i;

    for (i = 0; i + 4 <= n; i++)
        if (memcmp(b + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

/* The value of Content-Length in the head of b, or 0. */
static size_t
head_length(const char *b, size_t head)
{
    const char *p = b;

    while (p < b + head) {
        const char *e = memchr(p, '\n', (size_t)(b + head - p));

        if (e == NULL)
            break;
        if ((size_t)(e - p) > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            return (size_t)strtoul(p + 15, NULL, 10);
        p = e + 1;
    }
    return 0;
}

/* Read one whole request (head and Content-Length body): 1, or 0 when
 * the client closed (or the server stops) first. */
static int
srv_read_request(struct sio *io)
{
    struct srv *s = io->s;
    size_t cap = 4096, n = 0, head = 0, need = 0;
    char *b = malloc(cap + 1);
    ssize_t r;
    int i;

    if (b == NULL)
        return 0;
    for (;;) {
        if (head != 0 && n >= need)
            break;
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);

            if (nb == NULL)
                goto fail;
            b = nb;
            cap *= 2;
        }
        if (!sio_wait(io))
            goto fail;
        r = sio_recv(io, b + n, cap - n);
        if (r <= 0)
            goto fail;
        n += (size_t)r;
        if (head == 0 && (head = head_end(b, n)) != 0)
            need = head + head_length(b, head);
    }
    b[n] = '\0';
    /* relaxed: the count is read after join(), or only polled for */
    i = atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    if (i < REQ_MAX) {
        s->req[i] = b;
        s->req_len[i] = n;
    } else {
        free(b);
    }
    return 1;
fail:
    free(b);
    return 0;
}

/* Write an answer, a piece at a time (pieces apart: pacing only). */
static void
srv_answer(struct sio *io, const char *a)
{
    const char *e;

    for (;;) {
        e = strchr(a, PIECE);
        if (e == NULL)
            e = a + strlen(a);
        if (e > a && sio_send(io, a, (size_t)(e - a)) < 0)
            return;
        if (*e == '\0')
            return;
        a = e + 1;
        gr_test_sleep_ns(20 * NS_PER_MS);
    }
}

/* Read up to the end of a head (a body may follow: it is left
 * unread), answer a, then wait for the server's stop. */
static void
srv_head_only(struct sio *io, const char *a)
{
    struct srv *s = io->s;
    char b[8192];
    size_t n = 0;
    ssize_t r;
    struct pollfd p = {s->stop[0], POLLIN, 0};

    while (n < sizeof(b) && head_end(b, n) == 0) {
        if (!sio_wait(io))
            return;
        if ((r = sio_recv(io, b + n, sizeof(b) - n)) <= 0)
            return;
        n += (size_t)r;
    }
    /* relaxed: read after join(), or polled for */
    atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
    srv_answer(io, a);
    while (poll(&p, 1, -1) < 0 && errno == EINTR)
        ;
}

struct srv_conn {
    struct srv *s;
    int fd, k;
};

/* One connection, on a thread of its own, as its script says. */
static void *
srv_conn_main(void *arg)
{
    struct srv_conn *sc = arg;
    struct srv *s = sc->s;
    const struct conn_script *cs;
    int fd = sc->fd, i;
    struct sio io = {s, fd, NULL};

    cs = &s->conns[sc->k < s->n_conns ? sc->k : s->n_conns - 1];
    free(sc);
    if (s->tls != NULL &&
        ((io.ssl = SSL_new(s->tls)) == NULL || SSL_set_fd(io.ssl, fd) != 1 ||
         SSL_accept(io.ssl) != 1)) {
        ERR_clear_error();
        goto out;           /* the client refused us, or we it */
    }
    if (cs->head_only)
        srv_head_only(&io, cs->answers[0]);
    for (i = 0; !cs->head_only && srv_read_request(&io); i++) {
        if (i < cs->n)
            srv_answer(&io, cs->answers[i]);
        if (i + 1 >= cs->n && cs->close_after)
            break;
    }
    if (io.ssl != NULL && cs->close_after == 1)
        SSL_shutdown(io.ssl);           /* close_notify, then the end */
out:
    if (io.ssl != NULL)
        SSL_free(io.ssl);
    ERR_clear_error();
    if (cs->close_after == CLOSE_RESET) {
        struct linger lg = {1, 0};
        struct pollfd p = {s->stop[0], POLLIN, 0};

        /* acquire: pairs with the release of srv_go() */
        while (!atomic_load_explicit(&s->go, memory_order_acquire) &&
               poll(&p, 1, 5) == 0)
            ;
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
    /* release: pairs with the acquire of a test waiting for the close */
    atomic_fetch_add_explicit(&s->closed, 1, memory_order_release);
    return NULL;
}

static void *
srv_main(void *arg)
{
    struct srv *s = arg;
    struct srv_conn *sc;
    int fd, i;

    for (;;) {
        if (!srv_wait(s, s->lfd))
            break;
        if ((fd = accept(s->lfd, NULL, NULL)) < 0)
            continue;
        if (s->n_conn_th == CONN_THREADS ||
            (sc = malloc(sizeof(*sc))) == NULL) {
            close(fd);
            continue;
        }
        sc->s = s;
        sc->fd = fd;
        /* relaxed: polled for, or read after join() */
        sc->k = atomic_fetch_add_explicit(&s->accepted, 1,
                                          memory_order_relaxed);
        if (pthread_create(&s->conn_th[s->n_conn_th], NULL, srv_conn_main,
                           sc) != 0) {
            free(sc);
            close(fd);
            continue;
        }
        s->n_conn_th++;
    }
    for (i = 0; i < s->n_conn_th; i++)
        pthread_join(s->conn_th[i], NULL);
    return NULL;
}

/* ---- TLS: a throwaway certificate for 127.0.0.1 ---------------------- */

static EVP_PKEY *tls_key;
static X509 *tls_cert;
static char tls_dir[64] = "";
static char tls_file[96] = "";

/* A P-256 key and a self-signed certificate for IP 127.0.0.1 only,
 * written where SSL_CERT_FILE says, before any client is made (the
 * client reads the certificates once a process).  0 or -1. */
static int
tls_make(void)
{
    X509_NAME *n;
    X509_EXTENSION *e;
    X509V3_CTX v3;
    FILE *f;

    snprintf(tls_dir, sizeof(tls_dir), "/tmp/grh1.XXXXXX");
    if (mkdtemp(tls_dir) == NULL)
        return -1;
    snprintf(tls_file, sizeof(tls_file), "%s/ca.pem", tls_dir);
    if ((tls_key = EVP_EC_gen("P-256")) == NULL ||
        (tls_cert = X509_new()) == NULL)
        return -1;
    X509_set_version(tls_cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(tls_cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(tls_cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(tls_cert), 86400);
    X509_set_pubkey(tls_cert, tls_key);
    n = X509_get_subject_name(tls_cert);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)"gemroute h1 test",
                               -1, -1, 0);
    X509_set_issuer_name(tls_cert, n);
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, tls_cert, tls_cert, NULL, NULL, 0);
    if ((e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                                 "IP:127.0.0.1")) == NULL)
        return -1;
    X509_add_ext(tls_cert, e, -1);
    X509_EXTENSION_free(e);
    if ((e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                 "critical,CA:TRUE")) == NULL)
        return -1;
    X509_add_ext(tls_cert, e, -1);
    X509_EXTENSION_free(e);
    if (X509_sign(tls_cert, tls_key, EVP_sha256()) == 0 ||
        (f = fopen(tls_file, "w")) == NULL)
        return -1;
    PEM_write_X509(f, tls_cert);
    fclose(f);
    return setenv("SSL_CERT_FILE", tls_file, 1);
}

static void
tls_clean(void)
{
    if (tls_file[0] != '\0')
        unlink(tls_file);
    if (tls_dir[0] != '\0')
        rmdir(tls_dir);
    X509_free(tls_cert);
    EVP_PKEY_free(tls_key);
}

static SSL_CTX *
tls_server_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_use_certificate(ctx, tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, tls_key) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* A server on 127.0.0.1 with the given scripts, over TLS when tls is
 * not NULL (the server's then); 0 or -1. */
static int
srv_start_on(struct srv *s, const struct conn_script *conns, int n,
             SSL_CTX *tls)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    memset(s, 0, sizeof(*s));
    s->tls = tls;
    s->conns = conns;
    s->n_conns = n;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        goto fail;
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(s->lfd, 16) != 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0 ||
        pipe(s->stop) != 0) {
        close(s->lfd);
        goto fail;
    }
    s->port = ntohs(a.sin_port);
    if (pthread_create(&s->th, NULL, srv_main, s) != 0) {
        close(s->lfd);
        close(s->stop[0]);
        close(s->stop[1]);
        goto fail;
    }
    return 0;
fail:
    SSL_CTX_free(tls);
    return -1;
}

static int
srv_start(struct srv *s, const struct conn_script *conns, int n)
{
    return srv_start_on(s, conns, n, NULL);
}

/* The same, over TLS with the throwaway certificate. */
static int
srv_start_tls(struct srv *s, const struct conn_script *conns, int n)
{
    SSL_CTX *ctx = tls_server_ctx();

    return ctx != NULL ? srv_start_on(s, conns, n, ctx) : -1;
}

/* The server stops; what it read stays for srv_free(). */
static void
srv_stop(struct srv *s)
{
    (void)!write(s->stop[1], "x", 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    SSL_CTX_free(s->tls);
    s->tls = NULL;
}

static void
srv_free(struct srv *s)
{
    int i;

    for (i = 0; i < REQ_MAX; i++)
        free(s->req[i]);
}

/* The connections that close with a reset may now. */
static void
srv_go(struct srv *s)
{
    /* release: pairs with the acquire in srv_conn_main() */
    atomic_store_explicit(&s->go, 1, memory_order_release);
}

static int
accepted(struct srv *s)
{
    /* relaxed: after join(), which orders everything */
    return atomic_load_explicit(&s->accepted, memory_order_relaxed);
}

static int
requests(struct srv *s)
{
    /* relaxed: after join(), or polled for */
    return atomic_load_explicit(&s->requests, memory_order_relaxed);
}

/* ---- a call and its callbacks ---------------------------------------- */

static int secret_whys;         /* sentences that quoted a request line */
static int done_total;          /* done callbacks, of every call */

struct loop;
struct call;
static int start(struct loop *l, struct call *c, const char *host,
                 unsigned port, const char *method, const char *path,
                 const char *body, size_t len, int64_t stop_ms,
                 struct gr_h1_call **qp);

struct call {
    int done_n;
    enum gr_h1_rc rc;
    int status;
    char why[256];
    char head[4096];
    size_t head_len;
    int head_lines;
    bool head_over;             /* the empty line came */
    int head_status;            /* the status the head lines came with */
    char *body;
    size_t body_len, body_cap;
    int body_calls;
    bool stop_body;             /* on_body asks to stop */
    bool stop_head;             /* on_head_line asks to stop */
    struct loop *retry_l;       /* done starts retry on retry_port */
    unsigned retry_port;
    struct call *retry;
    int retry_rc;               /* what that gr_h1_start() said */
    struct gr_h1 *abort_h;      /* done aborts abort_q of that client */
    struct gr_h1_call *abort_q;
};

static int
cb_head(void *arg, int status, const char *line, size_t len)
{
    struct call *c = arg;

    c->head_status = status;
    c->head_lines++;
    if (len <= sizeof(c->head) - 1 - c->head_len) {
        memcpy(c->head + c->head_len, line, len);
        c->head_len += len;
        c->head[c->head_len] = '\0';
    }
    if (len == 2 && memcmp(line, "\r\n", 2) == 0)
        c->head_over = true;
    return c->stop_head ? 1 : 0;
}

static int
cb_body(void *arg, int status, const char *p, size_t len)
{
    struct call *c = arg;

    (void)status;
    c->body_calls++;
    if (c->body_len + len + 1 > c->body_cap) {
        size_t cap = (c->body_len + len + 1) * 2;
        char *nb = realloc(c->body, cap);

        if (nb == NULL)
            return 1;
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, p, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return c->stop_body ? 1 : 0;
}

static void
cb_done(void *arg, enum gr_h1_rc rc, int status, const char *why)
{
    struct call *c = arg;

    c->done_n++;
    done_total++;
    c->rc = rc;
    c->status = status;
    snprintf(c->why, sizeof(c->why), "%s", why != NULL ? why : "(null)");
    if (why != NULL && (strstr(why, "SECRET") != NULL ||
                        strstr(why, "x-goog-api-key") != NULL ||
                        strstr(why, "application/json") != NULL))
        secret_whys++;
    if (c->retry_l != NULL) {
        c->retry_rc = start(c->retry_l, c->retry, "127.0.0.1", c->retry_port,
                            "POST", "/again", "{}", 2, 20000, NULL);
        c->retry_l = NULL;
    }
    if (c->abort_h != NULL) {
        gr_h1_abort(c->abort_h, c->abort_q);
        c->abort_h = NULL;
    }
}

static void
call_clear(struct call *c)
{
    free(c->body);
    memset(c, 0, sizeof(*c));
}

/* ---- the loop -------------------------------------------------------- */

struct loop {
    int ep;
    struct gr_h1 *h;
    int foreign;                /* events gr_h1_event() said were not its */
    int turns;                  /* of loop_until() */
    const char *scheme;         /* of the calls' URLs: "http" */
    int64_t connect_ms;         /* the calls' connect_max_ns, in ms */
};

static int
loop_new(struct loop *l)
{
    memset(l, 0, sizeof(*l));
    l->scheme = "http";
    l->connect_ms = 10000;
    if ((l->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -1;
    if ((l->h = gr_h1_new(l->ep)) == NULL) {
        close(l->ep);
        return -1;
    }
    return 0;
}

static void
loop_free(struct loop *l)
{
    gr_h1_free(l->h);
    close(l->ep);
    l->h = NULL;
}

/* Turn the loop until *v is at least target, at most LOOP_MAX times;
 * true when it became so. */
static bool
loop_until_at(struct loop *l, const int *v, int target)
{
    struct epoll_event ev[16];
    int64_t due, now, ms;
    int i, n, turn;

    for (turn = 0; turn < LOOP_MAX; turn++) {
        l->turns++;
        now = gr_now_ns();
        due = gr_h1_tick(l->h, now);
        if (*v >= target)
            return true;
        ms = due == INT64_MAX ? 50 : (due - now) / NS_PER_MS + 1;
        if (ms < 0)
            ms = 0;
        if (ms > 50)
            ms = 50;
        n = epoll_wait(l->ep, ev, 16, (int)ms);
        for (i = 0; i < n; i++)
            if (!gr_h1_event(l->h, ev[i].data.fd, ev[i].events))
                l->foreign++;
        if (*v >= target)
            return true;
    }
    return *v >= target;
}

/* Turn the loop until *flag is non-zero (at least 1). */
static bool
loop_until(struct loop *l, const int *flag)
{
    return loop_until_at(l, flag, 1);
}

/* Turn the loop until the server has read n requests. */
static bool
loop_until_requests(struct loop *l, struct srv *s, int n)
{
    struct epoll_event ev[16];
    int i, k, turn;

    for (turn = 0; turn < LOOP_MAX; turn++) {
        gr_h1_tick(l->h, gr_now_ns());
        if (requests(s) >= n)
            return true;
        k = epoll_wait(l->ep, ev, 16, 10);
        for (i = 0; i < k; i++)
            if (!gr_h1_event(l->h, ev[i].data.fd, ev[i].events))
                l->foreign++;
    }
    return false;
}

static const struct gr_h1_cb cbs = {cb_head, cb_body, cb_done};

/* Start a call to the server: 0 or what gr_h1_start() said. */
static int
start(struct loop *l, struct call *c, const char *host, unsigned port,
      const char *method, const char *path, const char *body, size_t len,
      int64_t stop_ms, struct gr_h1_call **qp)
{
    static const char *const lines[] = {KEY_LINE, TYPE_LINE};
    struct gr_h1_call *q = NULL;
    struct gr_h1_req r;
    char url[256];
    int64_t now = gr_now_ns();

    snprintf(url, sizeof(url), "%s://%s:%u%s", l->scheme, host, port, path);
    memset(&r, 0, sizeof(r));
    r.method = method;
    r.url = url;
    r.lines = lines;
    r.n_lines = 2;
    r.body = body;
    r.len = len;
    r.stop_at_ns = now + stop_ms * NS_PER_MS;
    r.connect_max_ns = l->connect_ms * NS_PER_MS;
    return gr_h1_start(l->h, &r, &cbs, c, qp != NULL ? qp : &q);
}

/* One whole call: started, the loop turned until it is done. */
static void
run_call(struct loop *l, struct call *c, const char *host, unsigned port,
         const char *method, const char *path, const char *body, size_t len)
{
    int rc = start(l, c, host, port, method, path, body, len, 20000, NULL);

    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(c->done_n, 0);      /* never from inside start */
    if (rc == 0)
        CU_ASSERT(loop_until(l, &c->done_n));
}

/* ---- the cases ------------------------------------------------------- */

/* A case's end: its loop freed, its server stopped and its counts
 * checked (-1: not checked); the server is freed by the case. */
static void
case_end(struct loop *l, struct srv *s, int want_accepted, int want_requests)
{
    loop_free(l);
    srv_stop(s);
    if (want_accepted >= 0)
        CU_ASSERT_EQUAL(accepted(s), want_accepted);
    if (want_requests >= 0)
        CU_ASSERT_EQUAL(requests(s), want_requests);
}


#define ANS_OK "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" \
               "Content-Length: 11\r\n\r\n{\"ok\":true}"
#define ANS_OK2 "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"

/* Does request r (NUL-terminated) hold line (with its CRLF)? */
static bool
has_line(const char *r, const char *line)
{
    char want[512];

    snprintf(want, sizeof(want), "\r\n%s\r\n", line);
    return r != NULL && strstr(r, want) != NULL;
}

static void
test_length_and_reuse(void)
{
    static const struct conn_script sc[] = {
        {{ANS_OK, ANS_OK2, ANS_OK}, 3, false, false},
    };
    static const char body[] =
        "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}";
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0}, d = {0};
    char want[128], *big;
    const char *r;
    size_t big_len = 3u << 20, i;

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "127.0.0.1", s.port, "POST",
             "/v1beta/models/m:generateContent?alt=sse", body,
             sizeof(body) - 1);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(a.status, 200);
    CU_ASSERT_EQUAL(a.head_status, 200);
    CU_ASSERT_EQUAL(a.head_lines, 4);
    CU_ASSERT_STRING_EQUAL(a.head, "HTTP/1.1 200 OK\r\n"
                           "Content-Type: application/json\r\n"
                           "Content-Length: 11\r\n\r\n");
    CU_ASSERT_EQUAL(a.body_len, 11);
    CU_ASSERT(a.body != NULL && memcmp(a.body, "{\"ok\":true}", 11) == 0);

    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/v1beta/models", NULL, 0);
    CU_ASSERT_EQUAL(b.done_n, 1);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(b.status, 200);
    CU_ASSERT_EQUAL(b.body_len, 5);
    CU_ASSERT(b.body != NULL && memcmp(b.body, "hello", 5) == 0);

    /* a body far bigger than a socket takes at once */
    big = malloc(big_len);
    CU_ASSERT_FATAL(big != NULL);
    for (i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    run_call(&l, &d, "127.0.0.1", s.port, "POST", "/big", big, big_len);
    CU_ASSERT_EQUAL(d.done_n, 1);
    CU_ASSERT_EQUAL(d.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(d.body_len, 11);
    CU_ASSERT_EQUAL(l.foreign, 0);
    CU_ASSERT_EQUAL(secret_whys, 0);
    loop_free(&l);
    srv_stop(&s);

    CU_ASSERT_EQUAL(accepted(&s), 1);   /* three calls, one connection */
    CU_ASSERT_EQUAL(requests(&s), 3);
    /* the POST, exactly */
    r = s.req[0];
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(strncmp(r, "POST /v1beta/models/m:generateContent?alt=sse "
                      "HTTP/1.1\r\n", 55) == 0);
    snprintf(want, sizeof(want), "Host: 127.0.0.1:%u", s.port);
    CU_ASSERT(has_line(r, want));
    CU_ASSERT(has_line(r, KEY_LINE));
    CU_ASSERT(has_line(r, TYPE_LINE));
    snprintf(want, sizeof(want), "Content-Length: %zu", sizeof(body) - 1);
    CU_ASSERT(has_line(r, want));
    CU_ASSERT_EQUAL(s.req_len[0], head_end(r, s.req_len[0]) +
                    sizeof(body) - 1);
    CU_ASSERT(memcmp(r + head_end(r, s.req_len[0]), body,
                     sizeof(body) - 1) == 0);
    /* the GET: no body, no Content-Length */
    r = s.req[1];
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(strncmp(r, "GET /v1beta/models HTTP/1.1\r\n", 29) == 0);
    CU_ASSERT(has_line(r, KEY_LINE));
    CU_ASSERT(strcasestr(r, "Content-Length") == NULL);
    CU_ASSERT_EQUAL(s.req_len[1], head_end(r, s.req_len[1]));
    /* the big one, every byte */
    r = s.req[2];
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_EQUAL(s.req_len[2], head_end(r, s.req_len[2]) + big_len);
    if (s.req_len[2] == head_end(r, s.req_len[2]) + big_len)
        CU_ASSERT(memcmp(r + head_end(r, s.req_len[2]), big, big_len) == 0);
    free(big);
    call_clear(&a);
    call_clear(&b);
    call_clear(&d);
    srv_free(&s);
}

#define SSE_BODY "data: {\"n\":1}\n\ndata: {\"n\":2}\n\ndata: {\"n\":3}\n\n"

static void
test_chunked_in_pieces(void)
{
    static const struct conn_script sc[] = {
        {{"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
          "Transfer-Encoding: chunked\r\n\r\n\x01"
          "f\r\ndata: {\"n\":1}\n\n\r\n\x01"
          "f\r\ndata: {\"n\":2}\n\n\r\n\x01"
          "f\r\ndata: {\"n\":3}\n\n\r\n\x01"
          "0\r\n\r\n", ANS_OK2}, 2, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "127.0.0.1", s.port, "POST", "/sse", "{}", 2);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(a.status, 200);
    CU_ASSERT(a.head_over);
    CU_ASSERT_EQUAL(a.body_len, strlen(SSE_BODY));
    CU_ASSERT(a.body != NULL && strcmp(a.body, SSE_BODY) == 0);
    /* the chunked answer ended where it said: the connection is kept */
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    case_end(&l, &s, 1, -1);
    call_clear(&a);
    call_clear(&b);
    srv_free(&s);
}

static void
test_connection_close(void)
{
    /* the server would answer a second request on the first connection:
     * only a client that ignored "Connection: close" would send one */
    static const struct conn_script sc[] = {
        {{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n"
          "\r\nhi", ANS_OK2}, 2, false, false},
        {{ANS_OK2}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 2) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "127.0.0.1", s.port, "GET", "/a", NULL, 0);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT(a.body != NULL && strcmp(a.body, "hi") == 0);
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    CU_ASSERT(b.body != NULL && strcmp(b.body, "hello") == 0);
    case_end(&l, &s, 2, 2);
    call_clear(&a);
    call_clear(&b);
    srv_free(&s);
}

/* The first connection closes after its answer, which said nothing of
 * it (over TLS: close_notify, then FIN); the client learns only when it
 * sends again, and sends the second call once more. */
static void
kept_connection_closed(bool tls)
{
    static const struct conn_script sc[] = {
        {{ANS_OK2}, 1, true, false},
        {{ANS_OK}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};
    int i;

    CU_ASSERT_FATAL((tls ? srv_start_tls(&s, sc, 2)
                         : srv_start(&s, sc, 2)) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    if (tls)
        l.scheme = "https";
    run_call(&l, &a, "127.0.0.1", s.port, "GET", "/a", NULL, 0);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    /* the server has closed before the client looks at its sockets
     * again: the second call finds the closed connection kept */
    for (i = 0; i < 1000 && atomic_load_explicit(&s.closed,
                                                 memory_order_acquire) < 1;
         i++)
        gr_test_sleep_ns(5 * NS_PER_MS);
    CU_ASSERT_EQUAL(atomic_load_explicit(&s.closed, memory_order_acquire),
                    1);
    gr_test_sleep_ns(20 * NS_PER_MS);   /* its FIN on its way: pacing */
    run_call(&l, &b, "127.0.0.1", s.port, "POST", "/b", "{}", 2);
    CU_ASSERT_EQUAL(b.done_n, 1);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    if (b.rc != GR_H1_OK)
        fprintf(stderr, "\nkept closed%s: %s\n", tls ? " (TLS)" : "",
                b.why);
    CU_ASSERT_EQUAL(b.status, 200);
    CU_ASSERT(b.body != NULL && strcmp(b.body, "{\"ok\":true}") == 0);
    case_end(&l, &s, 2, 2);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(b.done_n, 1);
    call_clear(&a);
    call_clear(&b);
    srv_free(&s);
}

static void
test_kept_connection_closed(void)
{
    kept_connection_closed(false);
}

static void
test_tls_kept_closed(void)
{
    kept_connection_closed(true);
}

/* Turn the loop a few more times (nothing to wait for: pacing only). */
static void
loop_idle(struct loop *l, int turns)
{
    struct epoll_event ev[16];
    int i, n;

    while (turns-- > 0) {
        gr_h1_tick(l->h, gr_now_ns());
        n = epoll_wait(l->ep, ev, 16, 10);
        for (i = 0; i < n; i++)
            if (!gr_h1_event(l->h, ev[i].data.fd, ev[i].events))
                l->foreign++;
    }
}

static void
test_closed_without_answer(void)
{
    static const struct conn_script sc[] = {
        {{""}, 1, true, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "127.0.0.1", s.port, "POST", "/a", "{}", 2);
    loop_idle(&l, 10);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_RECV);
    CU_ASSERT_EQUAL(a.status, 0);
    CU_ASSERT_EQUAL(a.head_lines, 0);
    CU_ASSERT_EQUAL(secret_whys, 0);
    /* a fresh connection: not resent */
    case_end(&l, &s, 1, -1);
    call_clear(&a);
    srv_free(&s);
}

static void
test_garbage(void)
{
    static const struct conn_script sc[] = {
        {{"HELLO\r\n\r\n"}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "127.0.0.1", s.port, "GET", "/a", NULL, 0);
    loop_idle(&l, 5);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_RECV);
    CU_ASSERT_EQUAL(a.status, 0);
    CU_ASSERT_EQUAL(a.head_lines, 0);
    CU_ASSERT_EQUAL(a.body_len, 0);
    case_end(&l, &s, 1, -1);
    call_clear(&a);
    srv_free(&s);
}

static void
test_close_delimited(void)
{
    static const struct conn_script sc[] = {
        {{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
          "part one, \x01part two"}, 1, true, false},
        {{ANS_OK2}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 2) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "127.0.0.1", s.port, "GET", "/a", NULL, 0);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(a.status, 200);
    CU_ASSERT(a.body != NULL && strcmp(a.body, "part one, part two") == 0);
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    case_end(&l, &s, 2, -1);
    call_clear(&a);
    call_clear(&b);
    srv_free(&s);
}

static void
test_refused(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    struct loop l;
    struct call c = {0};
    unsigned port;
    int fd;

    /* a port nobody listens on: bound, read, let go */
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    port = ntohs(a.sin_port);
    close(fd);

    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &c, "127.0.0.1", port, "POST", "/a", "{}", 2);
    CU_ASSERT_EQUAL(c.done_n, 1);
    CU_ASSERT_EQUAL(c.rc, GR_H1_CONNECT);
    CU_ASSERT_EQUAL(c.status, 0);
    CU_ASSERT(c.why[0] != '\0');
    CU_ASSERT(strstr(c.why, "x-goog") == NULL);
    CU_ASSERT(strstr(c.why, "Content-Type") == NULL);
    CU_ASSERT_EQUAL(secret_whys, 0);
    loop_free(&l);
    call_clear(&c);
}

static void
test_timeout(void)
{
    static const struct conn_script sc[] = {
        {{""}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    CU_ASSERT_EQUAL(start(&l, &a, "127.0.0.1", s.port, "POST", "/a", "{}",
                          2, 200, NULL), 0);
    CU_ASSERT(loop_until(&l, &a.done_n));
    loop_idle(&l, 3);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_TIMEOUT);
    CU_ASSERT_EQUAL(a.status, 0);
    CU_ASSERT_EQUAL(secret_whys, 0);
    case_end(&l, &s, 1, 1);
    call_clear(&a);
    srv_free(&s);
}

static void
test_body_stops(void)
{
    /* a second request on the first connection would be answered: only
     * a client that kept a stopped connection would send one */
    static const struct conn_script sc[] = {
        {{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
          ANS_OK2}, 2, false, false},
        {{ANS_OK2}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 2) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    a.stop_body = true;
    run_call(&l, &a, "127.0.0.1", s.port, "GET", "/a", NULL, 0);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_STOPPED);
    CU_ASSERT_EQUAL(a.status, 200);
    CU_ASSERT_EQUAL(a.body_calls, 1);
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    CU_ASSERT(b.body != NULL && strcmp(b.body, "hello") == 0);
    case_end(&l, &s, 2, 2);
    call_clear(&a);
    call_clear(&b);
    srv_free(&s);
}

static void
test_abort_mid_answer(void)
{
    static const struct conn_script sc[] = {
        {{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some",
          ANS_OK2}, 2, false, false},
        {{ANS_OK2}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};
    struct gr_h1_call *q = NULL;

    CU_ASSERT_FATAL(srv_start(&s, sc, 2) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    CU_ASSERT_EQUAL(start(&l, &a, "127.0.0.1", s.port, "GET", "/a", NULL, 0,
                          20000, &q), 0);
    CU_ASSERT_FATAL(q != NULL);
    /* until the head and the body's first bytes came */
    CU_ASSERT(loop_until(&l, &a.body_calls));
    CU_ASSERT(a.head_over);
    CU_ASSERT_EQUAL(a.status, 0);
    gr_h1_abort(l.h, q);
    loop_idle(&l, 5);
    CU_ASSERT_EQUAL(a.done_n, 0);
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    CU_ASSERT(b.body != NULL && strcmp(b.body, "hello") == 0);
    CU_ASSERT_EQUAL(a.done_n, 0);
    case_end(&l, &s, 2, 2);
    call_clear(&a);
    call_clear(&b);
    srv_free(&s);
}

static void
test_localhost(void)
{
    static const struct conn_script sc[] = {
        {{ANS_OK2, ANS_OK2}, 2, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};
    char want[64];

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "localhost", s.port, "GET", "/a", NULL, 0);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT(a.body != NULL && strcmp(a.body, "hello") == 0);
    /* the name's addresses are kept: the second call starts at once */
    run_call(&l, &b, "localhost", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(l.foreign, 0);
    case_end(&l, &s, 1, -1);
    snprintf(want, sizeof(want), "Host: localhost:%u", s.port);
    CU_ASSERT(has_line(s.req[0], want));
    call_clear(&a);
    call_clear(&b);
    srv_free(&s);
}

static void
test_refused_input(void)
{
    static const char *const bad[] = {KEY_LINE "\r\nX-Evil: 1"};
    static const char *const bad_lf[] = {"X-A: 1\nX-Evil: 1"};
    static const char *const urls[] = {
        "ftp://x/", "http://a b/", "http://", "http://h:0/", "http://h:x/",
        "http://h:70000/", "http://u@h/", "http://h/a b", "http://[::1/",
        "gopher://h/", "", "http://h/\r\nX: y",
    };
    struct loop l;
    struct call c = {0};
    struct gr_h1_call *q = (struct gr_h1_call *)&c;     /* a canary */
    struct gr_h1_req r;
    size_t i;

    CU_ASSERT_FATAL(loop_new(&l) == 0);
    memset(&r, 0, sizeof(r));
    r.method = "GET";
    r.url = "http://127.0.0.1:9/";
    r.lines = bad;
    r.n_lines = 1;
    r.stop_at_ns = gr_now_ns() + 1000 * NS_PER_MS;
    CU_ASSERT_EQUAL(gr_h1_start(l.h, &r, &cbs, &c, &q), -EINVAL);
    CU_ASSERT(q == (struct gr_h1_call *)&c);    /* untouched */
    r.lines = bad_lf;
    CU_ASSERT_EQUAL(gr_h1_start(l.h, &r, &cbs, &c, &q), -EINVAL);
    r.lines = NULL;
    r.n_lines = 0;
    for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        r.url = urls[i];
        if (gr_h1_start(l.h, &r, &cbs, &c, &q) != -EINVAL) {
            fprintf(stderr, "\ntaken: %s\n", urls[i]);
            CU_FAIL("a URL the client should refuse");
        }
    }
    CU_ASSERT(q == (struct gr_h1_call *)&c);
    loop_idle(&l, 3);
    CU_ASSERT_EQUAL(c.done_n, 0);
    loop_free(&l);
}

static void
test_free_in_flight(void)
{
    static const struct conn_script sc[] = {
        {{""}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0}, d = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    CU_ASSERT_EQUAL(start(&l, &a, "127.0.0.1", s.port, "POST", "/a", "{}",
                          2, 20000, NULL), 0);
    CU_ASSERT(loop_until_requests(&l, &s, 1));
    /* one waiting for its name, one connecting */
    CU_ASSERT_EQUAL(start(&l, &b, "localhost", s.port, "GET", "/b", NULL,
                          0, 20000, NULL), 0);
    CU_ASSERT_EQUAL(start(&l, &d, "127.0.0.1", s.port, "GET", "/d", NULL,
                          0, 20000, NULL), 0);
    loop_free(&l);
    CU_ASSERT_EQUAL(a.done_n, 0);
    CU_ASSERT_EQUAL(b.done_n, 0);
    CU_ASSERT_EQUAL(d.done_n, 0);
    srv_stop(&s);
    CU_ASSERT_EQUAL(secret_whys, 0);
    call_clear(&a);
    call_clear(&b);
    call_clear(&d);
    srv_free(&s);
}

static void
test_interim(void)
{
    static const struct conn_script sc[] = {
        {{"HTTP/1.1 100 Continue\r\n\r\n\x01"
          "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
          "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nyes",
          ANS_OK2}, 2, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "127.0.0.1", s.port, "POST", "/a", "{}", 2);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(a.status, 201);
    CU_ASSERT_EQUAL(a.head_status, 201);
    CU_ASSERT_STRING_EQUAL(a.head, "HTTP/1.1 201 Created\r\n"
                           "Content-Length: 3\r\n\r\n");
    CU_ASSERT(a.body != NULL && strcmp(a.body, "yes") == 0);
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    case_end(&l, &s, 1, -1);
    call_clear(&a);
    call_clear(&b);
    srv_free(&s);
}


static void
test_two_kept_closed(void)
{
    /* two kept connections, both reset by the server meanwhile: the
     * call found the first dead goes once more on a new connection, not
     * on the other dead one (the resets make both fail at once, whatever
     * order epoll would tell them in) */
    static const struct conn_script sc[] = {
        {{ANS_OK2}, 1, CLOSE_RESET, false},
        {{ANS_OK2}, 1, CLOSE_RESET, false},
        {{ANS_OK}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0}, d = {0};
    int i;

    CU_ASSERT_FATAL(srv_start(&s, sc, 3) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    CU_ASSERT_EQUAL(start(&l, &a, "127.0.0.1", s.port, "GET", "/a", NULL, 0,
                          20000, NULL), 0);
    CU_ASSERT_EQUAL(start(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0,
                          20000, NULL), 0);
    CU_ASSERT(loop_until(&l, &a.done_n));
    CU_ASSERT(loop_until(&l, &b.done_n));
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    srv_go(&s);
    for (i = 0; i < 1000 && atomic_load_explicit(&s.closed,
                                                 memory_order_acquire) < 2;
         i++)
        gr_test_sleep_ns(5 * NS_PER_MS);
    CU_ASSERT_EQUAL(atomic_load_explicit(&s.closed, memory_order_acquire),
                    2);
    gr_test_sleep_ns(20 * NS_PER_MS);   /* their resets on their way */
    run_call(&l, &d, "127.0.0.1", s.port, "POST", "/d", "{}", 2);
    CU_ASSERT_EQUAL(d.done_n, 1);
    CU_ASSERT_EQUAL(d.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(d.status, 200);
    CU_ASSERT(d.body != NULL && strcmp(d.body, "{\"ok\":true}") == 0);
    case_end(&l, &s, 3, 3);
    srv_free(&s);
    call_clear(&a);
    call_clear(&b);
    call_clear(&d);
}

static void
test_retry_from_done(void)
{
    /* forward.c starts its retry from inside done */
    static const struct conn_script sc[] = {
        {{""}, 1, true, false},
        {{ANS_OK}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 2) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    a.retry_l = &l;
    a.retry_port = s.port;
    a.retry = &b;
    a.retry_rc = -1;
    run_call(&l, &a, "127.0.0.1", s.port, "POST", "/a", "{}", 2);
    CU_ASSERT_EQUAL(a.rc, GR_H1_RECV);
    CU_ASSERT_EQUAL(a.retry_rc, 0);
    CU_ASSERT_EQUAL(b.done_n, 0);       /* not from inside done */
    if (a.retry_rc == 0)
        CU_ASSERT(loop_until(&l, &b.done_n));
    CU_ASSERT_EQUAL(b.done_n, 1);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(b.status, 200);
    CU_ASSERT_EQUAL(a.done_n, 1);
    case_end(&l, &s, 2, -1);
    srv_free(&s);
    call_clear(&a);
    call_clear(&b);
}

static void
test_abort_from_done(void)
{
    /* b waits on a server that never answers, a is answered; a's done
     * aborts b, the call the tick would look at next */
    static const struct conn_script sc[] = {
        {{""}, 1, false, false},
        {{ANS_OK}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0};
    struct gr_h1_call *qb = NULL;
    struct epoll_event ev[16];
    int i, k, turn;

    CU_ASSERT_FATAL(srv_start(&s, sc, 2) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    CU_ASSERT_FATAL(start(&l, &b, "127.0.0.1", s.port, "POST", "/b", "{}",
                          2, 20000, &qb) == 0);
    CU_ASSERT_FATAL(loop_until_requests(&l, &s, 1));
    a.abort_h = l.h;
    a.abort_q = qb;
    run_call(&l, &a, "127.0.0.1", s.port, "POST", "/a", "{}", 2);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT_PTR_NULL(a.abort_h);      /* the abort ran */
    /* a few more turns: b is gone, its done never comes */
    for (turn = 0; turn < 20; turn++) {
        gr_h1_tick(l.h, gr_now_ns());
        k = epoll_wait(l.ep, ev, 16, 5);
        for (i = 0; i < k; i++)
            (void)gr_h1_event(l.h, ev[i].data.fd, ev[i].events);
    }
    CU_ASSERT_EQUAL(b.done_n, 0);
    loop_free(&l);
    srv_stop(&s);
    srv_free(&s);
    call_clear(&a);
    call_clear(&b);
}

static void
test_early_answer(void)
{
    /* the server answers after the head and reads no more of a body
     * too big for the sockets' buffers */
    static const struct conn_script sc[] = {
        {{"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n"
          "Connection: close\r\n\r\n"}, 1, false, true},
    };
    struct srv s;
    struct loop l;
    struct call a = {0};
    size_t big_len = 32u << 20;
    char *big = calloc(1, big_len);

    CU_ASSERT_FATAL(big != NULL);
    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    CU_ASSERT_EQUAL(start(&l, &a, "127.0.0.1", s.port, "POST", "/a", big,
                          big_len, 300, NULL), 0);
    CU_ASSERT(loop_until(&l, &a.done_n));
    /* the loop was not woken again and again while the write waited
     * (a spinning loop uses up LOOP_MAX turns long before 300 ms) */
    CU_ASSERT(l.turns < 500);
    CU_ASSERT_EQUAL(a.done_n, 1);
    /* the client reads no answer before its request is sent: the call
     * runs out of time (or, if it ever does, it tells the 413) */
    CU_ASSERT(a.rc == GR_H1_TIMEOUT ||
              (a.rc == GR_H1_OK && a.status == 413));
    loop_free(&l);
    srv_stop(&s);
    srv_free(&s);
    free(big);
    call_clear(&a);
}

static void
test_tls_reuse(void)
{
    static const struct conn_script sc[] = {
        {{ANS_OK, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "f\r\ndata: {\"n\":1}\n\n\r\n\x01" "f\r\ndata: {\"n\":2}\n\n\r\n\x01"
          "f\r\ndata: {\"n\":3}\n\n\r\n\x01" "0\r\n\r\n", ANS_OK2}, 3, false,
         false},
    };
    static const char body[] = "{\"contents\":[]}";
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0}, d = {0};
    size_t big_len = 3u << 20, i;
    char *big = malloc(big_len);
    const char *r;

    CU_ASSERT_FATAL(big != NULL);
    for (i = 0; i < big_len; i++)
        big[i] = (char)('A' + i % 23);
    CU_ASSERT_FATAL(srv_start_tls(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    l.scheme = "https";
    run_call(&l, &a, "127.0.0.1", s.port, "POST", "/a", body,
             sizeof(body) - 1);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    if (a.rc != GR_H1_OK)
        fprintf(stderr, "\ntls: %s\n", a.why);
    CU_ASSERT_EQUAL(a.status, 200);
    CU_ASSERT(a.body != NULL && strcmp(a.body, "{\"ok\":true}") == 0);
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    if (b.rc != GR_H1_OK)
        fprintf(stderr, "\ntls b: rc %d status %d body %zu: %s\n", b.rc,
                b.status, b.body_len, b.why);
    CU_ASSERT(b.body != NULL && strcmp(b.body, SSE_BODY) == 0);
    /* a body far bigger than a TLS record and the socket's buffer */
    run_call(&l, &d, "127.0.0.1", s.port, "POST", "/d", big, big_len);
    CU_ASSERT_EQUAL(d.rc, GR_H1_OK);
    CU_ASSERT(d.body != NULL && strcmp(d.body, "hello") == 0);
    CU_ASSERT_EQUAL(l.foreign, 0);
    CU_ASSERT_EQUAL(secret_whys, 0);
    case_end(&l, &s, 1, 3);
    r = s.req[0];
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT(strncmp(r, "POST /a HTTP/1.1\r\n", 18) == 0);
    CU_ASSERT(has_line(r, KEY_LINE));
    CU_ASSERT_EQUAL(s.req_len[0], head_end(r, s.req_len[0]) +
                    sizeof(body) - 1);
    r = s.req[2];
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_EQUAL(s.req_len[2], head_end(r, s.req_len[2]) + big_len);
    if (s.req_len[2] == head_end(r, s.req_len[2]) + big_len)
        CU_ASSERT(memcmp(r + head_end(r, s.req_len[2]), big, big_len) == 0);
    srv_free(&s);
    free(big);
    call_clear(&a);
    call_clear(&b);
    call_clear(&d);
}

static void
test_tls_wrong_name(void)
{
    /* the certificate names 127.0.0.1, not localhost */
    static const struct conn_script sc[] = {
        {{ANS_OK2}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0};

    CU_ASSERT_FATAL(srv_start_tls(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    l.scheme = "https";
    run_call(&l, &a, "localhost", s.port, "GET", "/a", NULL, 0);
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_CONNECT);
    CU_ASSERT_EQUAL(a.status, 0);
    CU_ASSERT(strstr(a.why, "certificate") != NULL);
    CU_ASSERT_EQUAL(secret_whys, 0);
    loop_free(&l);
    srv_stop(&s);
    CU_ASSERT_EQUAL(requests(&s), 0);   /* nothing was sent */
    srv_free(&s);
    call_clear(&a);
}

static void
test_no_body_answers(void)
{
    /* a HEAD's answer, a 204 and a 304 have no body whatever they say:
     * each ends at its head and the connection is used again */
    static const struct conn_script sc[] = {
        {{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
          "HTTP/1.1 204 No Content\r\n\r\n",
          "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
          ANS_OK2}, 4, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0}, b = {0}, c = {0}, d = {0};

    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, &a, "127.0.0.1", s.port, "HEAD", "/a", NULL, 0);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(a.status, 200);
    CU_ASSERT_EQUAL(a.body_len, 0);
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(b.status, 204);
    CU_ASSERT_EQUAL(b.body_len, 0);
    run_call(&l, &c, "127.0.0.1", s.port, "GET", "/c", NULL, 0);
    CU_ASSERT_EQUAL(c.rc, GR_H1_OK);
    CU_ASSERT_EQUAL(c.status, 304);
    CU_ASSERT_EQUAL(c.body_len, 0);
    run_call(&l, &d, "127.0.0.1", s.port, "GET", "/d", NULL, 0);
    CU_ASSERT_EQUAL(d.rc, GR_H1_OK);
    CU_ASSERT(d.body != NULL && strcmp(d.body, "hello") == 0);
    case_end(&l, &s, 1, 4);
    CU_ASSERT(s.req[0] != NULL && strncmp(s.req[0], "HEAD /a ", 8) == 0);
    srv_free(&s);
    call_clear(&a);
    call_clear(&b);
    call_clear(&c);
    call_clear(&d);
}

/* One call on a fresh server whose first connection answers first (and
 * would answer a second request with "hello"), then a second call:
 * *reused says whether the second went on the first connection. */
static void
one_then_next(const char *first, struct call *a, bool *reused)
{
    struct conn_script sc[2] = {
        {{first, ANS_OK2}, 2, false, false},
        {{ANS_OK2}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call b = {0};

    *reused = false;
    CU_ASSERT_FATAL(srv_start(&s, sc, 2) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    run_call(&l, a, "127.0.0.1", s.port, "GET", "/a", NULL, 0);
    run_call(&l, &b, "127.0.0.1", s.port, "GET", "/b", NULL, 0);
    CU_ASSERT_EQUAL(b.rc, GR_H1_OK);
    CU_ASSERT(b.body != NULL && strcmp(b.body, "hello") == 0);
    loop_free(&l);
    srv_stop(&s);
    CU_ASSERT_EQUAL(requests(&s), 2);
    *reused = accepted(&s) == 1;
    srv_free(&s);
    call_clear(&b);
}

static void
test_framing_edges(void)
{
    struct call a = {0};
    bool reused;

    /* bytes after the answer's end: it is used, the connection not */
    one_then_next("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
                  &a, &reused);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT(a.body != NULL && strcmp(a.body, "hello") == 0);
    CU_ASSERT(!reused);
    call_clear(&a);
    /* HTTP/1.0 without keep-alive: not kept */
    one_then_next("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                  &a, &reused);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT(!reused);
    call_clear(&a);
    /* HTTP/1.0 with keep-alive: kept */
    one_then_next("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                  "Content-Length: 5\r\n\r\nhello", &a, &reused);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT(reused);
    call_clear(&a);
    /* Content-Length beside chunked: refused, not kept */
    one_then_next("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                  &a, &reused);
    CU_ASSERT_EQUAL(a.rc, GR_H1_RECV);
    CU_ASSERT(!reused);
    call_clear(&a);
    /* chunk extensions and trailers: read and dropped, kept */
    one_then_next("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "3;x=y\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
                  &a, &reused);
    CU_ASSERT_EQUAL(a.rc, GR_H1_OK);
    CU_ASSERT(a.body != NULL && strcmp(a.body, "abc") == 0);
    CU_ASSERT(reused);
    call_clear(&a);
    /* on_head_line asks to stop: STOPPED, not kept */
    a.stop_head = true;
    one_then_next(ANS_OK, &a, &reused);
    CU_ASSERT_EQUAL(a.rc, GR_H1_STOPPED);
    CU_ASSERT_EQUAL(a.status, 200);
    CU_ASSERT_EQUAL(a.head_lines, 1);
    CU_ASSERT_EQUAL(a.body_len, 0);
    CU_ASSERT(!reused);
    call_clear(&a);
}

static void
test_past_stop(void)
{
    static const struct conn_script sc[] = {
        {{""}, 1, false, false},
    };
    struct srv s;
    struct loop l;
    struct call a = {0};

    /* its time is over before it starts: done from the first tick */
    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    CU_ASSERT_EQUAL(start(&l, &a, "127.0.0.1", s.port, "GET", "/", NULL, 0,
                          -1, NULL), 0);
    CU_ASSERT_EQUAL(a.done_n, 0);
    CU_ASSERT(loop_until(&l, &a.done_n));
    CU_ASSERT_EQUAL(a.done_n, 1);
    CU_ASSERT_EQUAL(a.rc, GR_H1_TIMEOUT);
    CU_ASSERT_EQUAL(a.status, 0);
    loop_free(&l);
    srv_stop(&s);
    srv_free(&s);
    call_clear(&a);
}

static void
test_eight_at_once(void)
{
    static const struct conn_script sc[] = {
        {{ANS_OK2, ANS_OK}, 2, false, false},
    };
    struct srv s;
    struct loop l;
    struct call c[16];
    int i, ok = 0, base;

    memset(c, 0, sizeof(c));
    CU_ASSERT_FATAL(srv_start(&s, sc, 1) == 0);
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    base = done_total;
    for (i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(start(&l, &c[i], "127.0.0.1", s.port, "GET", "/1",
                              NULL, 0, 20000, NULL), 0);
    CU_ASSERT(loop_until_at(&l, &done_total, base + 8));
    /* the eight kept connections carry the next eight */
    for (i = 8; i < 16; i++)
        CU_ASSERT_EQUAL(start(&l, &c[i], "127.0.0.1", s.port, "GET", "/2",
                              NULL, 0, 20000, NULL), 0);
    CU_ASSERT(loop_until_at(&l, &done_total, base + 16));
    for (i = 0; i < 16; i++)
        if (c[i].done_n == 1 && c[i].rc == GR_H1_OK &&
            c[i].body_len == (i < 8 ? 5u : 11u))
            ok++;
    CU_ASSERT_EQUAL(ok, 16);
    case_end(&l, &s, 8, 16);
    srv_free(&s);
    for (i = 0; i < 16; i++)
        call_clear(&c[i]);
}

static void
test_connect_timeout(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    struct loop l;
    struct call c = {0};
    int lfd, fill[4], i;

    /* a listener that never accepts, its queue filled: the client's SYN
     * goes unanswered */
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(lfd >= 0);
    CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CU_ASSERT_FATAL(listen(lfd, 0) == 0);
    CU_ASSERT_FATAL(getsockname(lfd, (struct sockaddr *)&a, &al) == 0);
    for (i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fill[i] >= 0)
            (void)!connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    gr_test_sleep_ns(50 * NS_PER_MS);   /* the fillers' handshakes: pacing */
    CU_ASSERT_FATAL(loop_new(&l) == 0);
    l.connect_ms = 200;
    run_call(&l, &c, "127.0.0.1", ntohs(a.sin_port), "GET", "/", NULL, 0);
    CU_ASSERT_EQUAL(c.done_n, 1);
    CU_ASSERT_EQUAL(c.rc, GR_H1_TIMEOUT);
    CU_ASSERT(strstr(c.why, "connect") != NULL);
    CU_ASSERT_EQUAL(c.status, 0);
    loop_free(&l);
    for (i = 0; i < 4; i++)
        if (fill[i] >= 0)
            close(fill[i]);
    close(lfd);
    call_clear(&c);
}

static void
test_env_proxy(void)
{
    static const char *const names[] = {
        "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
    };
    size_t i, j;

    for (i = 0; i < 5; i++)
        unsetenv(names[i]);
    CU_ASSERT(!gr_h1_env_proxy());
    for (i = 0; i < 5; i++) {
        setenv(names[i], "", 1);
        CU_ASSERT(!gr_h1_env_proxy());      /* "" is none */
        setenv(names[i], "http://127.0.0.1:1", 1);
        CU_ASSERT(gr_h1_env_proxy());
        unsetenv(names[i]);
    }
    for (j = 0; j < 5; j++)
        unsetenv(names[j]);
    CU_ASSERT(!gr_h1_env_proxy());
}

static void
test_no_quoted_lines(void)
{
    /* of every done of every case above (each request carried the key
     * line and a Content-Type line) */
    CU_ASSERT(done_total > 50);
    CU_ASSERT_EQUAL(secret_whys, 0);
}

int
main(void)
{
    CU_TestInfo client[] = {
        {"Content-Length answer, kept connection, the request exactly",
         test_length_and_reuse},
        {"chunked answer in separate writes", test_chunked_in_pieces},
        {"Connection: close, a new connection next",
         test_connection_close},
        {"a kept connection closed meanwhile: sent once more",
         test_kept_connection_closed},
        {"closed without an answer: RECV, not resent",
         test_closed_without_answer},
        {"garbage answer: RECV", test_garbage},
        {"body to the connection's end", test_close_delimited},
        {"connection refused: CONNECT", test_refused},
        {"no answer by stop_at_ns: TIMEOUT", test_timeout},
        {"on_body stops: STOPPED, not kept", test_body_stops},
        {"abort mid-answer: no done, a new connection next",
         test_abort_mid_answer},
        {"a name through the resolver", test_localhost},
        {"header lines and URLs refused", test_refused_input},
        {"free with calls in flight", test_free_in_flight},
        {"interim 1xx answers skipped", test_interim},
        {"two kept connections closed meanwhile: a new one",
         test_two_kept_closed},
        {"a retry started from inside done", test_retry_from_done},
        {"a call aborted from inside another's done",
         test_abort_from_done},
        {"an answer before the body was sent", test_early_answer},
        {"https: kept connection, chunked, a big body", test_tls_reuse},
        {"https: a certificate for another name", test_tls_wrong_name},
        {"https: a kept connection closed meanwhile",
         test_tls_kept_closed},
        {"answers without a body: HEAD, 204, 304", test_no_body_answers},
        {"framing edges and what is kept", test_framing_edges},
        {"a stop_at_ns already past", test_past_stop},
        {"eight at once, then eight on the kept connections",
         test_eight_at_once},
        {"a connect that takes too long: TIMEOUT", test_connect_timeout},
        {"proxies named in the environment", test_env_proxy},
        {"no sentence quoted a request's line", test_no_quoted_lines},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"h1", NULL, NULL, NULL, NULL, client},
        CU_SUITE_INFO_NULL,
    };

    int rc;

    signal(SIGPIPE, SIG_IGN);
    if (tls_make() != 0) {
        fprintf(stderr, "test_h1: cannot make a certificate\n");
        tls_clean();
        return 2;
    }
    rc = gr_test_main("test_h1", suites, 60);
    tls_clean();
    return rc;
}
