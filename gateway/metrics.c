/*
 * metrics.c - the counters behind GET /metrics: requests by route, model,
 * project and status; latency and queue-time histograms; upstream 429s;
 * streams open.  One mutex: a request takes it once, after its answer.
 *
 * Invariant protected: a series is never dropped silently: past
 * MAX_SERIES distinct label sets, requests count under model="other".
 */
#include "gw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERIES 512
#define LABEL_MAX 64

static const double buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
};
#define NB (sizeof(buckets) / sizeof(buckets[0]))

struct series {
    char route[LABEL_MAX], model[LABEL_MAX], project[LABEL_MAX];
    int status;
    uint64_t n;
};

struct hist {
    uint64_t b[NB];
    uint64_t count;
    double sum;                     /* seconds */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct series series[MAX_SERIES];
static unsigned n_series;
static struct hist latency, queued;
static uint64_t upstream_429;
static int64_t streams_open;

/*
 * One line, formatted here and written with one write(2): lines of
 * different threads never interleave (a write to a pipe of at most
 * PIPE_BUF bytes is atomic), and no lock is held around the system call
 * (fprintf to the unbuffered stderr held the FILE's lock across it, a
 * futex wait per request for the threads behind it under load).
 */
void
gw_log(const char *fmt, ...)
{
    /* The line's start, made again only when the second changes (a
     * gmtime_r() and strftime() per request were 1% of the CPU). */
    static _Thread_local time_t stamp_s = -1;
    static _Thread_local char stamp[64];
    static _Thread_local size_t stamp_len;
    char line[1024];
    struct tm tm;
    time_t now = time(NULL);
    va_list ap;
    size_t n;
    int m;

    if (now != stamp_s) {
        gmtime_r(&now, &tm);
        stamp_len = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ "
                             "gemroute-gateway: ", &tm);
        stamp_s = now;
    }
    memcpy(line, stamp, stamp_len);
    n = stamp_len;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m
                                          : sizeof(line) - n - 2;
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}

static void
observe(struct hist *h, int64_t ns)
{
    double s = (double)ns / 1e9;
    size_t i;

    for (i = 0; i < NB; i++)
        if (s <= buckets[i])
            h->b[i]++;
    h->count++;
    h->sum += s;
}

/* A label value: printable ASCII without '"' or '\\'. */
static void
label(char *dst, const char *src)
{
    size_t i;

    if (src == NULL || src[0] == '\0')
        src = "none";
    for (i = 0; src[i] != '\0' && i < LABEL_MAX - 1; i++)
        dst[i] = src[i] > 0x20 && src[i] < 0x7f && src[i] != '"' &&
                 src[i] != '\\' ? src[i] : '_';
    dst[i] = '\0';
}

void
gw_metrics_request(const char *route, const char *model, const char *project,
                   int status, int64_t latency_ns, int64_t queued_ns,
                   int n_429)
{
    char r[LABEL_MAX], m[LABEL_MAX], p[LABEL_MAX];
    unsigned i;

    label(r, route);
    label(m, model);
    label(p, project);
    pthread_mutex_lock(&mu);
    for (i = 0; i < n_series; i++)
        if (series[i].status == status && strcmp(series[i].route, r) == 0 &&
            strcmp(series[i].model, m) == 0 &&
            strcmp(series[i].project, p) == 0)
            break;
    if (i == n_series && n_series == MAX_SERIES) {
        /* Full: the last series takes the rest. */
        i = MAX_SERIES - 1;
        snprintf(series[i].model, LABEL_MAX, "other");
        snprintf(series[i].project, LABEL_MAX, "other");
        snprintf(series[i].route, LABEL_MAX, "other");
        series[i].status = 0;
    } else if (i == n_series) {
        memcpy(series[i].route, r, LABEL_MAX);
        memcpy(series[i].model, m, LABEL_MAX);
        memcpy(series[i].project, p, LABEL_MAX);
        series[i].status = status;
        series[i].n = 0;
        n_series++;
    }
    series[i].n++;
    observe(&latency, latency_ns);
    if (queued_ns >= 0)
        observe(&queued, queued_ns);
    upstream_429 += (uint64_t)(n_429 > 0 ? n_429 : 0);
    pthread_mutex_unlock(&mu);
}

void
gw_metrics_streams(int delta)
{
    pthread_mutex_lock(&mu);
    streams_open += delta;
    pthread_mutex_unlock(&mu);
}

struct text {
    char *s;
    size_t len, cap;
    bool nomem;
};

static void add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        if (t->nomem)
            return;
        va_start(ap, fmt);
        n = vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        {
            size_t cap = t->cap * 2 + (size_t)(n > 0 ? n : 0);
            char *s = realloc(t->s, cap);

            if (s == NULL) {
                t->nomem = true;
                return;
            }
            t->s = s;
            t->cap = cap;
        }
    }
}

static void
add_hist(struct text *t, const char *name, const char *help,
         const struct hist *h)
{
    size_t i;

    add(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (i = 0; i < NB; i++)
        add(t, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i],
            (unsigned long long)h->b[i]);
    add(t, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n",
        name, (unsigned long long)h->count, name, h->sum, name,
        (unsigned long long)h->count);
}

char *
gw_metrics_text(size_t *len)
{
    struct text t = {malloc(4096), 0, 4096, false};
    unsigned i;

    if (t.s == NULL)
        return NULL;
    pthread_mutex_lock(&mu);
    add(&t, "# HELP gemroute_gateway_requests_total Requests answered, by "
        "route, model, project and HTTP status.\n"
        "# TYPE gemroute_gateway_requests_total counter\n");
    for (i = 0; i < n_series; i++)
        add(&t, "gemroute_gateway_requests_total{route=\"%s\",model=\"%s\","
            "project=\"%s\",status=\"%d\"} %llu\n", series[i].route,
            series[i].model, series[i].project, series[i].status,
            (unsigned long long)series[i].n);
    add_hist(&t, "gemroute_gateway_request_seconds",
             "Time from the request to the end of its answer.", &latency);
    add_hist(&t, "gemroute_gateway_queue_seconds",
             "Time a request waited for room in the table.", &queued);
    add(&t, "# HELP gemroute_gateway_upstream_429_total Answers with "
        "status 429 from upstream (retried or not).\n"
        "# TYPE gemroute_gateway_upstream_429_total counter\n"
        "gemroute_gateway_upstream_429_total %llu\n"
        "# HELP gemroute_gateway_streams_open Streams being answered now.\n"
        "# TYPE gemroute_gateway_streams_open gauge\n"
        "gemroute_gateway_streams_open %lld\n",
        (unsigned long long)upstream_429, (long long)streams_open);
    pthread_mutex_unlock(&mu);
    if (t.nomem) {
        free(t.s);
        return NULL;
    }
    *len = t.len;
    return t.s;
}
