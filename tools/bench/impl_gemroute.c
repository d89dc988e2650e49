/*
 * impl_gemroute.c - the gemroute contender of the reservation benchmark:
 * gr_reserve + gr_commit through the public API of libgemroute, against
 * the table of a real gemrouted (started by tools/bench.sh).
 *
 * The reservation is one request and o->tokens input tokens; the commit
 * says the answer's first byte came now and keeps the estimate, so the
 * cost leaves the windows one window later, as in production.
 */
#include "bench.h"

#include "gemroute.h"

#include <stdio.h>
#include <stdlib.h>

struct gemroute_h {
    struct gr *g;
    const char *model;
    struct gr_cost cost;
    int checking;               /* read the clock for the checker */
};

static int
gemroute_setup(const struct gr_bench_opts *o, char *err, size_t n)
{
    if (o->shm == NULL) {
        snprintf(err, n, "--shm is required");
        return -1;
    }
    gr_bench_gemroute.check_window_ns = o->window_ms * 1000000;
    return 0;
}

static void *
gemroute_open(const struct gr_bench_opts *o, unsigned worker, char *err,
              size_t n)
{
    struct gemroute_h *h = calloc(1, sizeof(*h));

    (void)worker;
    if (h == NULL) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    h->g = gr_open(o->shm, err, n);
    if (h->g == NULL) {
        free(h);
        return NULL;
    }
    h->model = o->model;
    h->cost.requests = 1;
    h->cost.tokens = o->tokens;
    h->checking = o->check;
    return h;
}

static int
gemroute_op(void *p, struct gr_bench_adm *adm)
{
    struct gemroute_h *h = p;
    struct gr_usage use = {-1, -1, 0};
    struct gr_lease lease;
    int rc = gr_reserve(h->g, h->model, &h->cost, 0, &lease);

    if (rc == GR_ENOROOM)
        return 1;
    if (rc != GR_OK)
        return -1;
    /* First byte now.  Timed runs let gr_commit read the clock (0 means
     * now); check runs read it here, once, so the checker's occupancy
     * [now, now + window) is exactly what the table holds. */
    if (h->checking)
        use.first_byte_ns = gr_now_ns();
    adm->cell = lease.cell;
    adm->a_ns = use.first_byte_ns;
    adm->s_ns = use.first_byte_ns;
    adm->sent_ns = use.first_byte_ns;
    gr_commit(h->g, &lease, &use);
    return 0;
}

static void
gemroute_close(void *p)
{
    struct gemroute_h *h = p;

    gr_close(h->g);
    free(h);
}

struct gr_bench_impl gr_bench_gemroute = {
    .name = "gemroute",
    .setup = gemroute_setup,
    .open = gemroute_open,
    .op = gemroute_op,
    .close = gemroute_close,
    .clock_ns = gr_bench_mono_ns,
};
