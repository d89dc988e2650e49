/*
 * checker.c - replay admission logs and find any instant at which a
 * cell's occupancy exceeded its limit (see checker.h).
 */
#include "checker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct gr_reclog *
gr_reclog_new(uint64_t cap)
{
    size_t size = sizeof(struct gr_reclog) + cap * sizeof(struct gr_rec);
    struct gr_reclog *log = mmap(NULL, size, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (log == MAP_FAILED)
        return NULL;
    log->cap = cap;
    return log;
}

void
gr_reclog_free(struct gr_reclog *log)
{
    munmap(log, sizeof(*log) + log->cap * sizeof(struct gr_rec));
}

struct gr_rec *
gr_reclog_add(struct gr_reclog *log)
{
    /* relaxed: only the index is shared; the record is published by its
     * state store */
    uint64_t i = atomic_fetch_add_explicit(&log->n, 1, memory_order_relaxed);

    return i < log->cap ? &log->r[i] : NULL;
}

struct event {
    int64_t at;
    int64_t delta;
};

static int
by_time(const void *a, const void *b)
{
    const struct event *x = a, *y = b;

    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    /* Occupancy ends at s + W exclusive: a release at t comes before an
     * admission at t. */
    return (x->delta > y->delta) - (x->delta < y->delta);
}

static int64_t
kill_time(const struct gr_kill *kills, unsigned n, int32_t pid)
{
    unsigned i;

    for (i = 0; i < n; i++)
        if (kills[i].pid == pid)
            return kills[i].at_ns;
    return -1;
}

int
gr_check(const struct gr_reclog *log, const int64_t limit[3],
         int64_t window_ns, const struct gr_kill *kills, unsigned nkills,
         int64_t t0, int64_t t1, unsigned ncells,
         struct gr_check_result *out)
{
    uint64_t n = atomic_load(&log->n), i;
    struct event *ev;
    unsigned cell, d;
    int64_t in_span[3] = {0, 0, 0};

    if (n > log->cap)
        n = log->cap;
    memset(out, 0, sizeof(*out));
    ev = malloc((n * 3 + 1) * sizeof(*ev));
    if (ev == NULL)
        return -1;
    for (cell = 0; cell < ncells; cell++) {
        for (d = 0; d < 3; d++) {
            size_t ne = 0;
            int64_t occ = 0, worst = 0;

            for (i = 0; i < n; i++) {
                const struct gr_rec *r = &log->r[i];
                uint32_t st = atomic_load(&r->state);
                int64_t end, act;

                if (st == GR_REC_FREE || r->cell != cell || r->cost[d] <= 0)
                    continue;
                ev[ne++] = (struct event){r->a_ns, r->cost[d]};
                if (st == GR_REC_SETTLED) {
                    act = r->actual[d] >= 0 && r->actual[d] < r->cost[d]
                              ? r->actual[d] : r->cost[d];
                    if (act < r->cost[d])
                        ev[ne++] = (struct event){r->c_ns, act - r->cost[d]};
                    end = r->s_ns + window_ns;
                } else {
                    int64_t k = kill_time(kills, nkills, r->pid);

                    if (k < 0)
                        k = INT64_MAX - window_ns;  /* never ended */
                    act = r->cost[d];
                    end = k + window_ns;
                    if (d == 0)
                        out->unsettled++;
                }
                ev[ne++] = (struct event){end, -act};
                if (d == 0)
                    out->admitted++;
                /* Utilisation counts what was charged in the end. */
                if (r->a_ns >= t0 && r->a_ns < t1)
                    in_span[d] += act;
            }
            qsort(ev, ne, sizeof(*ev), by_time);
            for (i = 0; i < ne; i++) {
                occ += ev[i].delta;
                if (occ > worst)
                    worst = occ;
                if (limit[d] >= 0 && occ > limit[d] && ev[i].delta > 0) {
                    if (out->violations < 5)
                        fprintf(stderr, "checker: cell %u dim %u occupancy "
                                "%lld > limit %lld at %lld ns\n", cell, d,
                                (long long)occ, (long long)limit[d],
                                (long long)ev[i].at);
                    out->violations++;
                }
            }
            if (worst > out->max_occupancy[d])
                out->max_occupancy[d] = worst;
        }
    }
    for (d = 0; d < 3; d++)
        if (limit[d] > 0 && t1 > t0)
            out->utilisation[d] = (double)in_span[d] /
                ((double)limit[d] * ncells * (double)(t1 - t0) /
                 (double)window_ns);
    free(ev);
    return out->violations == 0 ? 0 : 1;
}
