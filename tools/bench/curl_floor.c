/*
 * curl_floor.c - gr-bench-curl-floor: what libcurl alone costs for the
 * upstream half of a gateway call, as the gateway's loops drive it (one
 * multi handle, curl_multi_socket_action() over epoll, kept-alive
 * connections, an easy handle reset and set up again per call), with no
 * reservation, no classification and no HTTP server in front.  Section 4
 * of docs/BENCHMARKS.md puts it beside the gateway: the gateway cannot
 * spend less CPU per call than this plus its HTTP side.
 *
 *   gr-bench-curl-floor URL CONCURRENCY SECONDS
 *
 * POSTs a small generateContent body to URL with CONCURRENCY calls in
 * flight for SECONDS, and prints one line (floor.h):
 *
 *   CURLFLOOR {"requests": N, "seconds": S, "cpu_s": C, "errors": E}
 */
#include "floor.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define MAX_CONC 1024
#define EVENTS 64

static const char body[] =
    "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": "
    "\"Say hello in one word.\"}]}]}";

struct floor_run {
    CURLM *m;
    int ep;
    long timeout_ms;            /* libcurl's timer; -1 = none */
    const char *url;
    struct curl_slist *hdr;
    long done, errors;
};

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static void
call_setup(struct floor_run *r, CURL *h)
{
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(sizeof(body) - 1));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
}

/* CURLMOPT_SOCKETFUNCTION: libcurl's sockets into the epoll set. */
static int
on_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
    struct floor_run *r = arg;
    struct epoll_event ev;

    (void)e;
    (void)sockp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(r->ep, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                (what & CURL_POLL_OUT ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    if (epoll_ctl(r->ep, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION. */
static int
on_timer(CURLM *m, long ms, void *arg)
{
    struct floor_run *r = arg;

    (void)m;
    r->timeout_ms = ms;
    return 0;
}

/* Calls libcurl finished: counted, and started again on the same handle. */
static void
reap(struct floor_run *r)
{
    struct CURLMsg *msg;
    long status;
    int left;

    while ((msg = curl_multi_info_read(r->m, &left)) != NULL) {
        CURL *h = msg->easy_handle;

        if (msg->msg != CURLMSG_DONE)
            continue;
        status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (msg->data.result != CURLE_OK || status != 200)
            r->errors++;
        r->done++;
        curl_multi_remove_handle(r->m, h);
        curl_easy_reset(h);
        call_setup(r, h);
        curl_multi_add_handle(r->m, h);
    }
}

/* One turn: wait for libcurl's sockets or its timer, let it act, start
 * the finished calls again. */
static void
turn(void *arg)
{
    struct floor_run *r = arg;
    struct epoll_event ev[EVENTS];
    int i, n, running;

    n = epoll_wait(r->ep, ev, EVENTS,
                   r->timeout_ms < 0 ? 100 : (int)r->timeout_ms);
    if (n <= 0) {
        /* the timer fired: libcurl sets the next one if it wants one */
        r->timeout_ms = -1;
        curl_multi_socket_action(r->m, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    for (i = 0; i < n; i++)
        curl_multi_socket_action(
            r->m, ev[i].data.fd,
            (ev[i].events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
            (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
            (ev[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0), &running);
    reap(r);
}

int
main(int argc, char **argv)
{
    struct floor_run r;
    double secs;
    int conc, i;

    if (argc != 4 || (conc = atoi(argv[2])) < 1 || conc > MAX_CONC ||
        (secs = atof(argv[3])) <= 0) {
        fprintf(stderr, "usage: gr-bench-curl-floor URL CONCURRENCY "
                "SECONDS\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    memset(&r, 0, sizeof(r));
    r.url = argv[1];
    r.timeout_ms = -1;
    r.hdr = curl_slist_append(NULL, "Content-Type: application/json");
    r.hdr = curl_slist_append(r.hdr, "x-goog-api-key: bench-key");
    r.m = curl_multi_init();
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (r.hdr == NULL || r.m == NULL || r.ep < 0)
        return 1;
    curl_multi_setopt(r.m, CURLMOPT_MAXCONNECTS, (long)conc);
    curl_multi_setopt(r.m, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(r.m, CURLMOPT_SOCKETDATA, &r);
    curl_multi_setopt(r.m, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(r.m, CURLMOPT_TIMERDATA, &r);
    for (i = 0; i < conc; i++) {
        CURL *h = curl_easy_init();

        if (h == NULL)
            return 1;
        call_setup(&r, h);
        curl_multi_add_handle(r.m, h);
    }
    return gr_floor_run("CURLFLOOR", secs, turn, &r, &r.done, &r.errors);
}
