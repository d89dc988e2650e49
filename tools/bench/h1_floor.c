/*
 * h1_floor.c - gr-bench-h1-floor: what the upstream half of a gateway
 * call would cost with an HTTP/1.1 client written for the loop instead
 * of libcurl: kept connections in one epoll set, one buffer each, the
 * request written with one send(), the answer read until its
 * Content-Length, no URL parsing, no per-call setup.  Plain HTTP only
 * (the benchmark's mock); no TLS, no chunked answers, no redirects: a
 * floor for the decision in docs/BENCHMARKS.md section 4, not a client.
 *
 *   gr-bench-h1-floor HOST:PORT PATH CONCURRENCY SECONDS
 *
 * prints, as gr-bench-curl-floor does (floor.h):
 *
 *   H1FLOOR {"requests": N, "seconds": S, "cpu_s": C, "errors": E}
 */
#include "floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONC 1024
#define EVENTS 64
#define BUF 16384

static const char body[] =
    "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": "
    "\"Say hello in one word.\"}]}]}";

struct conn {
    int fd;
    size_t have;                /* bytes of the answer read so far */
    char buf[BUF];
};

struct floor_run {
    int ep;
    char req[1024];
    size_t req_len;
    long done, errors;
};

/* Send the call on c (one send: the request is small). */
static int
send_call(struct floor_run *r, struct conn *c)
{
    c->have = 0;
    return send(c->fd, r->req, r->req_len, MSG_NOSIGNAL) ==
           (ssize_t)r->req_len ? 0 : -1;
}

/* The answer in c->buf is whole: true, with *ok = status 200. */
static int
answer_whole(struct conn *c, int *ok)
{
    const char *end, *p;
    size_t hlen, blen = 0;

    c->buf[c->have < BUF ? c->have : BUF - 1] = '\0';
    if ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
        return 0;
    hlen = (size_t)(end - c->buf) + 4;
    for (p = c->buf; p != NULL && p < end; p = strstr(p, "\r\n")) {
        if (*p == '\r')
            p += 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            blen = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    *ok = strncmp(c->buf, "HTTP/1.1 200", 12) == 0;
    return c->have >= hlen + blen;
}

/* c is readable: read, and when the answer is whole, count it and send
 * the next call. */
static void
on_readable(struct floor_run *r, struct conn *c)
{
    ssize_t n;
    int ok;

    for (;;) {
        n = recv(c->fd, c->buf + c->have, BUF - 1 - c->have, 0);
        if (n > 0) {
            c->have += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        r->errors++;            /* closed or failed: the run is wrong */
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
        return;
    }
    if (!answer_whole(c, &ok))
        return;
    r->done++;
    if (!ok)
        r->errors++;
    if (send_call(r, c) != 0)
        r->errors++;
}

static void
turn(void *arg)
{
    struct floor_run *r = arg;
    struct epoll_event ev[EVENTS];
    int i, n;

    n = epoll_wait(r->ep, ev, EVENTS, 100);
    for (i = 0; i < n; i++)
        on_readable(r, ev[i].data.ptr);
}

int
main(int argc, char **argv)
{
    struct floor_run r;
    struct sockaddr_in a;
    struct epoll_event ev;
    struct conn *cs;
    double secs;
    char host[64];
    const char *colon;
    int conc, i, one = 1;

    if (argc != 5 || (colon = strchr(argv[1], ':')) == NULL ||
        (size_t)(colon - argv[1]) >= sizeof(host) ||
        (conc = atoi(argv[3])) < 1 || conc > MAX_CONC ||
        (secs = atof(argv[4])) <= 0) {
        fprintf(stderr, "usage: gr-bench-h1-floor HOST:PORT PATH "
                "CONCURRENCY SECONDS\n");
        return 2;
    }
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = '\0';
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return 2;
    memset(&r, 0, sizeof(r));
    r.req_len = (size_t)snprintf(
        r.req, sizeof(r.req),
        "POST %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n"
        "Content-Type: application/json\r\nx-goog-api-key: bench-key\r\n"
        "Content-Length: %zu\r\n\r\n%s", argv[2], argv[1],
        sizeof(body) - 1, body);
    if ((r.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (cs = calloc((size_t)conc, sizeof(*cs))) == NULL)
        return 1;
    for (i = 0; i < conc; i++) {
        /* connected blocking, then non-blocking for the run */
        cs[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cs[i].fd < 0 ||
            connect(cs[i].fd, (struct sockaddr *)&a, sizeof(a)) != 0)
            return 1;
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (fcntl(cs[i].fd, F_SETFL, O_NONBLOCK) != 0)
            return 1;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.ptr = &cs[i];
        if (epoll_ctl(r.ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0 ||
            send_call(&r, &cs[i]) != 0)
            return 1;
    }
    return gr_floor_run("H1FLOOR", secs, turn, &r, &r.done, &r.errors);
}
