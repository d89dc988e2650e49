/*
 * delay.c - a min-heap of deadlines served by one thread.
 *
 * Invariant protected: every deadline added before gr_mock_delay_stop()
 * is fired exactly once (at its time, or at stop), and none after stop
 * returns, so no suspended connection is left behind at shutdown.  The
 * callback runs without the heap lock held: it takes the HTTP server's
 * own locks and must not nest under ours.
 */
#include "delay.h"

#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct timer {
    int64_t due; /* ns, CLOCK_MONOTONIC */
    void *arg;
};

struct gr_mock_delay {
    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    pthread_t thread;
    void (*fire)(void *arg);
    struct timer *heap;
    size_t len;
    size_t cap;
    int stopping;
};

static void
sift_up(struct timer *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        struct timer t;

        if (h[parent].due <= h[i].due)
            break;
        t = h[parent];
        h[parent] = h[i];
        h[i] = t;
        i = parent;
    }
}

static void
sift_down(struct timer *h, size_t len, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct timer t;

        if (l < len && h[l].due < h[m].due)
            m = l;
        if (r < len && h[r].due < h[m].due)
            m = r;
        if (m == i)
            return;
        t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
}

static struct timer
pop(struct gr_mock_delay *d)
{
    struct timer top = d->heap[0];

    d->heap[0] = d->heap[--d->len];
    sift_down(d->heap, d->len, 0);
    return top;
}

static void *
run(void *p)
{
    struct gr_mock_delay *d = p;

    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        int64_t now;

        if (d->len == 0) {
            pthread_cond_wait(&d->wake, &d->lock);
            continue;
        }
        now = gr_shm_now_mono();
        if (d->heap[0].due <= now) {
            struct timer t = pop(d);

            pthread_mutex_unlock(&d->lock);
            d->fire(t.arg);
            pthread_mutex_lock(&d->lock);
        } else {
            struct timespec ts = {
                .tv_sec = (time_t)(d->heap[0].due / GR_NS_PER_S),
                .tv_nsec = (long)(d->heap[0].due % GR_NS_PER_S),
            };

            pthread_cond_timedwait(&d->wake, &d->lock, &ts);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int
gr_mock_delay_start(struct gr_mock_delay **out, void (*fire)(void *arg))
{
    struct gr_mock_delay *d = calloc(1, sizeof *d);
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (d == NULL)
        return -ENOMEM;
    d->fire = fire;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&d->thread, NULL, run, d);
    if (rc != 0) {
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return -rc;
    }
    *out = d;
    return 0;
}

int
gr_mock_delay_add(struct gr_mock_delay *d, int64_t due, void *arg)
{
    int rc = 0;

    pthread_mutex_lock(&d->lock);
    if (d->stopping) {
        rc = -ECANCELED;
        goto out;
    }
    if (d->len == d->cap) {
        size_t ncap = d->cap != 0 ? d->cap * 2 : 64;
        struct timer *n = realloc(d->heap, ncap * sizeof *n);

        if (n == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        d->heap = n;
        d->cap = ncap;
    }
    d->heap[d->len].due = due;
    d->heap[d->len].arg = arg;
    sift_up(d->heap, d->len);
    d->len++;
    /* Only a new earliest deadline changes how long the thread sleeps. */
    if (d->heap[0].arg == arg)
        pthread_cond_signal(&d->wake);
out:
    pthread_mutex_unlock(&d->lock);
    return rc;
}

void
gr_mock_delay_stop(struct gr_mock_delay *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    /* No one adds any more: fire what is left, earliest first. */
    while (d->len > 0) {
        struct timer t = pop(d);

        d->fire(t.arg);
    }
    free(d->heap);
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
