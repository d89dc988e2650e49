/*
 * cluster_redis.c - the one place that speaks to Redis: a blocking
 * connection with timeouts (connect, TLS handshake, every send and every
 * reply), used only by the cluster's own thread (cluster.c), never by
 * the router's loop.  Calls are pipelined: queue every cell's EVALSHA,
 * then read the replies.  A timeout or an error leaves the connection
 * unusable; the caller closes it and connects again later.
 *
 * Debian 12's hiredis (0.14) has no TLS, so the transport is our own: a
 * socket (unix or TCP), optionally wrapped in OpenSSL, and hiredis only
 * formats the commands (redisFormatCommandArgv) and parses the replies
 * (redisReader).  With TLS the server's certificate is always verified,
 * against cluster.tls_ca or the system's CAs, and its name (or IP
 * address) must match cluster.tls_server_name or the address' host
 * (docs/CLUSTER.md, "TLS").  Neither hiredis nor OpenSSL appears in a
 * header of ours.
 */
#include "cluster.h"
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct gr_rtr_redis {
    int fd;
    SSL_CTX *ctx;           /* NULL without TLS */
    SSL *ssl;
    redisReader *rdr;
    unsigned timeout_ms;    /* per connect, handshake, send and reply */
    char *out;              /* commands queued, not yet sent */
    size_t out_len, out_cap;
    char sha[41];           /* the script's SHA1, "" until loaded */
    const char *script;
    char why[160];          /* TLS: what OpenSSL said when I/O failed */
};

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for ev or the deadline passed: 0 or -ETIMEDOUT. */
static int
wait_fd(int fd, short ev, int64_t deadline_ms)
{
    struct pollfd p = {fd, ev, 0};
    int64_t left;
    int rc;

    for (;;) {
        left = deadline_ms - mono_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* A non-blocking connect to sa, finished within the deadline. */
static int
connect_sa(const struct sockaddr *sa, socklen_t len, int64_t deadline_ms)
{
    int fd, soerr = 0, rc;
    socklen_t sl = sizeof(soerr);

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0)
        return -errno;
    if (connect(fd, sa, len) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        rc = wait_fd(fd, POLLOUT, deadline_ms);
        if (rc != 0)
            goto fail;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
            soerr != 0) {
            rc = soerr != 0 ? -soerr : -errno;
            goto fail;
        }
    }
    if (sa->sa_family != AF_UNIX) {
        int one = 1;

        /* pipelined requests go out at once, not after the peer's ACK */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
fail:
    close(fd);
    return rc;
}

/* Split "host:port" (host may be "[v6]") into host and port. */
static int
split_addr(const char *addr, char *host, size_t hostlen, char *port,
           size_t portlen)
{
    const char *colon = strrchr(addr, ':');
    size_t n;

    if (colon == NULL || (size_t)(colon - addr) >= hostlen ||
        strlen(colon + 1) >= portlen)
        return -EINVAL;
    n = (size_t)(colon - addr);
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
        memcpy(host, addr + 1, n - 2);
        host[n - 2] = '\0';
    } else {
        memcpy(host, addr, n);
        host[n] = '\0';
    }
    strcpy(port, colon + 1);
    return 0;
}

static int
connect_tcp(const char *host, const char *port, int64_t deadline_ms)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -ECONNREFUSED;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    /* getaddrinfo has no timeout: name lookups are the resolver's */
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -EHOSTUNREACH;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = connect_sa(ai->ai_addr, ai->ai_addrlen, deadline_ms);
        if (fd >= 0)
            break;
    }
    freeaddrinfo(res);
    return fd;
}

static int
connect_unix(const char *path, int64_t deadline_ms)
{
    struct sockaddr_un sun;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    strcpy(sun.sun_path, path);
    return connect_sa((const struct sockaddr *)&sun, sizeof(sun),
                      deadline_ms);
}

/* The first error OpenSSL queued, or what. */
static void
ssl_why(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (r != NULL)
        snprintf(buf, len, "%s", r);
    else if (e != 0)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "%s", what);
    ERR_clear_error();
}

/* The TLS context: verification on, our CA (or the system's), our
 * client certificate if any. */
static int
tls_context(struct gr_rtr_redis *rd, const struct gr_cfg_cluster *cfg,
            char *err, size_t errlen)
{
    char why[200];

    rd->ctx = SSL_CTX_new(TLS_client_method());
    if (rd->ctx == NULL) {
        ssl_why(why, sizeof(why), "out of memory");
        snprintf(err, errlen, "redis %s: TLS: %s", cfg->redis, why);
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(rd->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(rd->ctx, SSL_VERIFY_PEER, NULL);
    /* a retried SSL_write may come from a buffer that grew (realloc) */
    SSL_CTX_set_mode(rd->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (cfg->tls_ca[0] != '\0'
            ? SSL_CTX_load_verify_locations(rd->ctx, cfg->tls_ca, NULL) != 1
            : SSL_CTX_set_default_verify_paths(rd->ctx) != 1) {
        ssl_why(why, sizeof(why), "cannot load");
        snprintf(err, errlen, "redis %s: TLS: the CA %s: %s", cfg->redis,
                 cfg->tls_ca[0] != '\0' ? cfg->tls_ca : "(system's)", why);
        return -EINVAL;
    }
    if (cfg->tls_cert[0] != '\0') {
        if (SSL_CTX_use_certificate_chain_file(rd->ctx, cfg->tls_cert) !=
            1) {
            ssl_why(why, sizeof(why), "cannot load");
            snprintf(err, errlen, "redis %s: TLS: the certificate %s: %s",
                     cfg->redis, cfg->tls_cert, why);
            return -EINVAL;
        }
        /* never the key's bytes in an error: only its path */
        if (SSL_CTX_use_PrivateKey_file(rd->ctx, cfg->tls_key,
                                        SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(rd->ctx) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "redis %s: TLS: the key %s cannot be "
                     "loaded or does not match %s", cfg->redis,
                     cfg->tls_key, cfg->tls_cert);
            return -EINVAL;
        }
    }
    return 0;
}

/* The handshake, within the deadline; the name checked is name (an IP
 * address is checked against the certificate's IP entries). */
static int
tls_handshake(struct gr_rtr_redis *rd, const struct gr_cfg_cluster *cfg,
              const char *name, int64_t deadline_ms, char *err,
              size_t errlen)
{
    unsigned char ip[16];
    char why[200];
    long vr;
    int rc, e;

    rd->ssl = SSL_new(rd->ctx);
    if (rd->ssl == NULL || SSL_set_fd(rd->ssl, rd->fd) != 1) {
        ssl_why(why, sizeof(why), "out of memory");
        snprintf(err, errlen, "redis %s: TLS: %s", cfg->redis, why);
        return -ENOMEM;
    }
    if (inet_pton(AF_INET, name, ip) == 1 ||
        inet_pton(AF_INET6, name, ip) == 1) {
        rc = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(rd->ssl), name);
    } else {
        rc = SSL_set_tlsext_host_name(rd->ssl, name) == 1 &&
             SSL_set1_host(rd->ssl, name) == 1;
    }
    if (rc != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "redis %s: TLS: cannot check the name %s",
                 cfg->redis, name);
        return -EINVAL;
    }
    for (;;) {
        rc = SSL_connect(rd->ssl);
        if (rc == 1)
            return 0;
        e = SSL_get_error(rd->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(rd->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                        deadline_ms) != 0) {
                snprintf(err, errlen, "redis %s: TLS: no handshake within "
                         "%u ms", cfg->redis, cfg->timeout_ms);
                return -ETIMEDOUT;
            }
            continue;
        }
        break;
    }
    vr = SSL_get_verify_result(rd->ssl);
    if (vr != X509_V_OK) {
        ERR_clear_error();
        snprintf(err, errlen, "redis %s: TLS: the server's certificate is "
                 "refused: %s (cluster.tls_ca, cluster.tls_server_name)",
                 cfg->redis, X509_verify_cert_error_string(vr));
        return -EACCES;
    }
    ssl_why(why, sizeof(why), e == SSL_ERROR_SYSCALL ? "connection closed"
                                                     : "handshake failed");
    snprintf(err, errlen, "redis %s: TLS: %s", cfg->redis, why);
    return -EPROTO;
}

/* Send everything queued, within the deadline. */
static int
flush_out(struct gr_rtr_redis *rd, int64_t deadline_ms)
{
    size_t done = 0;
    ssize_t n;
    int e;

    while (done < rd->out_len) {
        size_t left = rd->out_len - done;

        if (rd->ssl != NULL) {
            n = SSL_write(rd->ssl, rd->out + done,
                          left > 1 << 30 ? 1 << 30 : (int)left);
            if (n > 0) {
                done += (size_t)n;
                continue;
            }
            e = SSL_get_error(rd->ssl, (int)n);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                /* The server may have said why before it closed (a TLS
                 * 1.3 server refuses a client certificate after the
                 * handshake, with an alert): read it. */
                if (ERR_peek_error() == 0) {
                    char c;

                    (void)SSL_read(rd->ssl, &c, 1);
                }
                ssl_why(rd->why, sizeof(rd->why), "connection closed");
                return -EIO;
            }
            ERR_clear_error();
            if (wait_fd(rd->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                        deadline_ms) != 0)
                return -ETIMEDOUT;
            continue;
        }
        n = send(rd->fd, rd->out + done, left, MSG_NOSIGNAL);
        if (n > 0) {
            done += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(rd->fd, POLLOUT, deadline_ms) != 0)
                return -ETIMEDOUT;
        } else {
            return -EIO;
        }
    }
    rd->out_len = 0;
    return 0;
}

/* Read what the socket has into the reader, waiting until the deadline. */
static int
fill_in(struct gr_rtr_redis *rd, int64_t deadline_ms)
{
    char buf[16384];
    ssize_t n;
    int e;

    for (;;) {
        if (rd->ssl != NULL) {
            n = SSL_read(rd->ssl, buf, sizeof(buf));
            if (n <= 0) {
                e = SSL_get_error(rd->ssl, (int)n);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                    ssl_why(rd->why, sizeof(rd->why), "connection closed");
                    return -EIO;
                }
                ERR_clear_error();
                if (wait_fd(rd->fd,
                            e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                            deadline_ms) != 0)
                    return -ETIMEDOUT;
                continue;
            }
        } else {
            n = recv(rd->fd, buf, sizeof(buf), 0);
            if (n == 0)
                return -EIO;
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    return -EIO;
                if (wait_fd(rd->fd, POLLIN, deadline_ms) != 0)
                    return -ETIMEDOUT;
                continue;
            }
        }
        return redisReaderFeed(rd->rdr, buf, (size_t)n) == REDIS_OK ? 0
                                                                    : -EIO;
    }
}

/* Queue one command. */
static int
queue(struct gr_rtr_redis *rd, int argc, const char **argv,
      const size_t *lens)
{
    char *cmd = NULL, *p;
    size_t cap;
    int n;

    n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0 || cmd == NULL)
        return -ENOMEM;
    if (rd->out_len + (size_t)n > rd->out_cap) {
        cap = rd->out_cap != 0 ? rd->out_cap : 4096;
        while (cap < rd->out_len + (size_t)n)
            cap *= 2;
        p = realloc(rd->out, cap);
        if (p == NULL) {
            explicit_bzero(cmd, (size_t)n);
            redisFreeCommand(cmd);
            return -ENOMEM;
        }
        rd->out = p;
        rd->out_cap = cap;
    }
    memcpy(rd->out + rd->out_len, cmd, (size_t)n);
    rd->out_len += (size_t)n;
    explicit_bzero(cmd, (size_t)n);     /* it may be AUTH's */
    redisFreeCommand(cmd);
    return 0;
}

/* The next reply (send what is queued first); NULL and err on failure. */
static redisReply *
next_reply(struct gr_rtr_redis *rd, char *err, size_t errlen)
{
    int64_t deadline = mono_ms() + rd->timeout_ms;
    void *rep = NULL;
    int rc;

    if (rd->out_len > 0) {
        rc = flush_out(rd, deadline);
        if (rc != 0) {
            if (rd->why[0] != '\0')
                snprintf(err, errlen, "redis: TLS: %s", rd->why);
            else
                snprintf(err, errlen, "redis: %s", rc == -ETIMEDOUT
                         ? "cannot send (timeout)" : "cannot send");
            return NULL;
        }
        deadline = mono_ms() + rd->timeout_ms;
    }
    for (;;) {
        if (redisReaderGetReply(rd->rdr, &rep) != REDIS_OK) {
            snprintf(err, errlen, "redis: bad reply (%s)", rd->rdr->errstr);
            return NULL;
        }
        if (rep != NULL)
            return rep;
        rc = fill_in(rd, deadline);
        if (rc != 0) {
            if (rd->why[0] != '\0')
                snprintf(err, errlen, "redis: TLS: %s", rd->why);
            else
                snprintf(err, errlen, "redis: %s", rc == -ETIMEDOUT
                         ? "no reply (timeout)" : "connection lost");
            return NULL;
        }
    }
}

int
gr_rtr_redis_connect(struct gr_rtr_redis **out,
                     const struct gr_cfg_cluster *cfg, char *err,
                     size_t errlen)
{
    int64_t deadline = mono_ms() + cfg->timeout_ms;
    struct gr_rtr_redis *rd;
    redisReply *rep;
    const char *argv[2];
    size_t lens[2];
    char host[256], port[16], why[256];
    int rc;

    *out = NULL;
    rd = calloc(1, sizeof(*rd));
    if (rd == NULL)
        return -ENOMEM;
    rd->fd = -1;
    rd->timeout_ms = cfg->timeout_ms;
    rd->rdr = redisReaderCreate();
    if (rd->rdr == NULL) {
        rc = -ENOMEM;
        snprintf(err, errlen, "redis %s: out of memory", cfg->redis);
        goto fail;
    }
    if (strncmp(cfg->redis, "unix:", 5) == 0) {
        host[0] = '\0';
        rd->fd = connect_unix(cfg->redis + 5, deadline);
    } else if (split_addr(cfg->redis, host, sizeof(host), port,
                          sizeof(port)) != 0) {
        rc = -EINVAL;
        snprintf(err, errlen, "redis %s: not host:port", cfg->redis);
        goto fail;
    } else {
        rd->fd = connect_tcp(host, port, deadline);
    }
    if (rd->fd < 0) {
        rc = rd->fd;
        snprintf(err, errlen, "redis %s: %s", cfg->redis,
                 rc == -ETIMEDOUT ? "no connection within the timeout"
                 : rc == -EHOSTUNREACH ? "cannot resolve the host"
                 : strerror(-rc));
        goto fail;
    }
    if (cfg->tls) {
        rc = tls_context(rd, cfg, err, errlen);
        if (rc == 0)
            rc = tls_handshake(rd, cfg, cfg->tls_server_name[0] != '\0'
                               ? cfg->tls_server_name : host, deadline,
                               err, errlen);
        if (rc != 0)
            goto fail;
    }
    if (cfg->password[0] != '\0') {
        argv[0] = "AUTH";
        argv[1] = cfg->password;
        lens[0] = 4;
        lens[1] = strlen(cfg->password);
        rc = queue(rd, 2, argv, lens);
        rep = rc == 0 ? next_reply(rd, why, sizeof(why)) : NULL;
        explicit_bzero(rd->out, rd->out_cap);   /* sent: forget it */
        if (rep == NULL) {
            /* what failed: the transport (a TLS alert: a client
             * certificate the server refused, say), never the password */
            snprintf(err, errlen, "redis %s: AUTH got no answer (%s)",
                     cfg->redis, why);
            rc = -EIO;
            goto fail;
        }
        if (rep->type == REDIS_REPLY_ERROR) {
            /* never the password: only that it was refused */
            snprintf(err, errlen, "redis %s: AUTH refused", cfg->redis);
            freeReplyObject(rep);
            rc = -EACCES;
            goto fail;
        }
        freeReplyObject(rep);
    }
    *out = rd;
    return 0;
fail:
    gr_rtr_redis_close(rd);
    return rc;
}

void
gr_rtr_redis_close(struct gr_rtr_redis *rd)
{
    if (rd == NULL)
        return;
    if (rd->ssl != NULL)
        SSL_free(rd->ssl);      /* no close_notify: the socket may hang */
    if (rd->ctx != NULL)
        SSL_CTX_free(rd->ctx);
    if (rd->fd >= 0)
        close(rd->fd);
    if (rd->rdr != NULL)
        redisReaderFree(rd->rdr);
    if (rd->out != NULL) {
        /* the AUTH command may still be in it */
        explicit_bzero(rd->out, rd->out_cap);
        free(rd->out);
    }
    free(rd);
}

static int
load_script(struct gr_rtr_redis *rd, const char *script)
{
    const char *argv[3] = {"SCRIPT", "LOAD", script};
    size_t lens[3] = {6, 4, strlen(script)};
    redisReply *rep;
    char why[256];
    int rc = -EIO;

    if (queue(rd, 3, argv, lens) != 0)
        return -ENOMEM;
    rep = next_reply(rd, why, sizeof(why));
    if (rep != NULL && rep->type == REDIS_REPLY_STRING && rep->len == 40) {
        memcpy(rd->sha, rep->str, 40);
        rd->sha[40] = '\0';
        rd->script = script;
        rc = 0;
    }
    if (rep != NULL)
        freeReplyObject(rep);
    return rc;
}

int
gr_rtr_redis_append(struct gr_rtr_redis *rd, const char *script,
                    const char *key, unsigned argc, const char **argv)
{
    const char *v[64];
    size_t len[64];
    unsigned i, n = 0;

    if (argc + 4 > 64)
        return -E2BIG;
    /* A Redis that restarted lost its scripts: load it on every
     * connection (a new connection follows every failure). */
    if (rd->script != script && load_script(rd, script) != 0)
        return -EIO;
    v[n++] = "EVALSHA";
    v[n++] = rd->sha;
    v[n++] = "1";
    v[n++] = key;
    for (i = 0; i < argc; i++)
        v[n++] = argv[i];
    for (i = 0; i < n; i++)
        len[i] = strlen(v[i]);
    return queue(rd, (int)n, v, len);
}

int
gr_rtr_redis_reply(struct gr_rtr_redis *rd, int64_t *out, unsigned nout,
                   char *names, size_t name_len, unsigned max_names,
                   char *err, size_t errlen)
{
    redisReply *rep;
    unsigned i, n = 0, k = 0;

    rep = next_reply(rd, err, errlen);
    if (rep == NULL)
        return -EIO;
    if (rep->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "redis: %.*s", (int)rep->len, rep->str);
        freeReplyObject(rep);
        return -EPROTO;
    }
    if (rep->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "redis: the script answered no array");
        freeReplyObject(rep);
        return -EPROTO;
    }
    for (i = 0; i < rep->elements && n < nout; i++) {
        const redisReply *e = rep->element[i];

        if (e->type == REDIS_REPLY_STRING && names != NULL) {
            if (k < max_names)
                snprintf(names + k * name_len, name_len, "%.*s",
                         (int)e->len, e->str);
            k++;
            out[n++] = -2;
        } else {
            out[n++] = e->type == REDIS_REPLY_INTEGER ? (int64_t)e->integer
                                                      : -1;
        }
    }
    freeReplyObject(rep);
    return (int)n;
}
