/*
 * h1_floor.c - gr-bench-h1-floor: the upstream half of a gateway call
 * through the loops' own HTTP/1.1 client (client/h1.c) and nothing
 * else, driven as a loop drives it (one epoll set, gr_h1_event() for
 * its sockets, gr_h1_tick() every turn, the next call started from the
 * last one's done): the floor of the gateway's upstream side, beside
 * gr-bench-curl-floor's for libcurl (docs/BENCHMARKS.md section 4).
 *
 *   gr-bench-h1-floor HOST:PORT PATH CONCURRENCY SECONDS
 *
 * prints, as gr-bench-curl-floor does (floor.h):
 *
 *   H1FLOOR {"requests": N, "seconds": S, "cpu_s": C, "errors": E}
 */
#include "floor.h"
#include "h1.h"
#include "gemroute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#define MAX_CONC 1024
#define EVENTS 64
#define NS_PER_S INT64_C(1000000000)

static const char body[] =
    "{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": "
    "\"Say hello in one word.\"}]}]}";
static const char *const lines[] = {
    "x-goog-api-key: bench-key", "Content-Type: application/json",
};

struct floor_run {
    int ep;
    struct gr_h1 *h;
    char url[512];
    long done, errors;
};

static void on_done(void *arg, enum gr_h1_rc rc, int status,
                    const char *why);
static const struct gr_h1_cb cbs = { NULL, NULL, on_done };

/* One call of the run; its done starts the next. */
static void
call(struct floor_run *r)
{
    struct gr_h1_call *q;
    struct gr_h1_req req;

    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = r->url;
    req.lines = lines;
    req.n_lines = sizeof(lines) / sizeof(lines[0]);
    req.body = body;
    req.len = sizeof(body) - 1;
    req.stop_at_ns = gr_now_ns() + 10 * NS_PER_S;
    req.connect_max_ns = 10 * NS_PER_S;
    if (gr_h1_start(r->h, &req, &cbs, r, &q) != 0)
        r->errors++;
}

static void
on_done(void *arg, enum gr_h1_rc rc, int status, const char *why)
{
    struct floor_run *r = arg;

    (void)why;
    r->done++;
    if (rc != GR_H1_OK || status != 200)
        r->errors++;
    call(r);
}

static void
turn(void *arg)
{
    struct floor_run *r = arg;
    struct epoll_event ev[EVENTS];
    int i, n;

    gr_h1_tick(r->h, gr_now_ns());
    n = epoll_wait(r->ep, ev, EVENTS, 100);
    for (i = 0; i < n; i++)
        gr_h1_event(r->h, ev[i].data.fd, ev[i].events);
    gr_h1_tick(r->h, gr_now_ns());
}

int
main(int argc, char **argv)
{
    struct floor_run r;
    int conc, i;
    double secs;

    if (argc != 5 || strchr(argv[1], ':') == NULL ||
        (conc = atoi(argv[3])) < 1 || conc > MAX_CONC ||
        (secs = atof(argv[4])) <= 0) {
        fprintf(stderr, "usage: gr-bench-h1-floor HOST:PORT PATH "
                "CONCURRENCY SECONDS\n");
        return 2;
    }
    memset(&r, 0, sizeof(r));
    if ((size_t)snprintf(r.url, sizeof(r.url), "http://%s%s", argv[1],
                         argv[2]) >= sizeof(r.url))
        return 2;
    if ((r.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (r.h = gr_h1_new(r.ep)) == NULL)
        return 1;
    for (i = 0; i < conc; i++)
        call(&r);
    return gr_floor_run("H1FLOOR", secs, turn, &r, &r.done, &r.errors);
}
