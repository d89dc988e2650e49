/*
 * load.c - gemroute load: offered load through libgemroute, for the demo
 * and the benchmarks.
 *
 *   gemroute load --procs N --rate R --duration S --model M [--tokens T]
 *                 [--deadline S] [--threads K] [--shm NAME]
 *
 * N processes (K calling threads each) offer R calls per second in total
 * for S seconds through gr_generate().  Each caller has its own schedule
 * (call k of caller w at (w + k * N * K) / R seconds) and makes one call
 * at a time: when the pool has less room than the schedule asks, the
 * caller waits in the table's queue and falls behind; the calls it could
 * not start before the end are "offered" but never made.  A call still
 * waiting for room when the S seconds end is withdrawn (its queue
 * deadline is the end of the run): it counts as "unserved", never as a
 * failure: the run, not the table, cut it (even a call whose earlier
 * attempt was answered with a 503 and was waiting to try again).
 *
 * At the end it prints ONE JSON line: calls, ok, failed by class,
 * unserved, 429s the server answered (across every attempt), latency of
 * the calls that succeeded, each project's share, wall time.  Exit 0
 * when no call failed, 1 otherwise, 2 on bad usage.
 *
 * Invariant: the callers write only their own records in a shared
 * anonymous mapping, and the parent reads them only after every child
 * has exited (waitpid orders it), so no record is read half-written.
 */
#include "cli.h"
#include "gemroute.h"
#include "num.h"
#include "snapshot.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CALLERS 4096
#define MAX_NAMES 64                /* projects a caller tells apart */
#define MAX_CALLS 20000000.0        /* rate x duration above this: refused */

enum outcome {
    OUT_OK,
    OUT_UNSERVED,
    OUT_DEADLINE,
    OUT_QUOTA,
    OUT_OVERLOAD,
    OUT_SERVER,
    OUT_AUTH,
    OUT_REQUEST,
    OUT_MODEL,
    OUT_OTHER,
    OUT_N,
};

static const char *const outcome_name[OUT_N] = {
    "ok", "unserved", "deadline", "quota", "overload", "server", "auth",
    "request", "model", "other",
};

/* One call, as its caller saw it. */
struct rec {
    int64_t latency_ns;
    int32_t attempts;
    int32_t n_429;
    int16_t outcome;                /* enum outcome */
    int16_t project;                /* index in the caller's names; -1 */
    uint32_t pad;
};

/* A caller's part of the shared mapping (followed by its records). */
struct part {
    uint32_t n;                     /* records written */
    uint32_t n_names;
    char names[MAX_NAMES][GR_NAME_MAX];
};

/* Set by SIGINT/SIGTERM in the parent: stop the callers, then report. */
static volatile sig_atomic_t stop_signal;

static void
on_stop(int sig)
{
    stop_signal = sig;
}

struct plan {
    const char *shm;
    const char *model;
    unsigned procs, threads;
    double rate, duration_s, deadline_s;
    long tokens;
    int64_t t0_ns, end_ns;
    size_t cap;                     /* records per caller */
    size_t stride;                  /* bytes per caller */
    unsigned char *map;
    char *request;
};

struct worker {
    struct plan *p;
    struct gr *g;
    unsigned index;                 /* 0 .. procs * threads - 1 */
};

static struct part *
part_of(const struct plan *p, unsigned w)
{
    return (struct part *)(p->map + (size_t)w * p->stride);
}

static struct rec *
recs_of(const struct plan *p, unsigned w)
{
    return (struct rec *)(p->map + (size_t)w * p->stride +
                          sizeof(struct part));
}

static void
sleep_until(int64_t at_ns)
{
    struct timespec ts = {(time_t)(at_ns / 1000000000),
                          (long)(at_ns % 1000000000)};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR)
        ;
}

static int16_t
name_index(struct part *pt, const char *name)
{
    uint32_t i;

    if (name[0] == '\0')
        return -1;
    for (i = 0; i < pt->n_names; i++)
        if (strcmp(pt->names[i], name) == 0)
            return (int16_t)i;
    if (pt->n_names == MAX_NAMES)
        return -1;
    snprintf(pt->names[pt->n_names], GR_NAME_MAX, "%s", name);
    return (int16_t)pt->n_names++;
}

static enum outcome
outcome_of(int rc, const struct gr_response *r, int64_t end_ns)
{
    if (rc == GR_OK)
        return OUT_OK;
    /* Stopped waiting for room because the run ended (the queue
     * deadline), not because the call's own deadline passed: the run cut
     * it, whether or not an earlier attempt had been answered (a 503
     * before the end, say).  Unserved, not failed. */
    if (rc == GR_EDEADLINE)
        return gr_now_ns() >= end_ns ? OUT_UNSERVED : OUT_DEADLINE;
    if (rc != GR_ECALL)
        return OUT_OTHER;
    switch (r->verdict.cls) {
    case GR_CLASS_QUOTA: return OUT_QUOTA;
    case GR_CLASS_OVERLOAD: return OUT_OVERLOAD;
    case GR_CLASS_SERVER: return OUT_SERVER;
    case GR_CLASS_AUTH: return OUT_AUTH;
    case GR_CLASS_REQUEST: return OUT_REQUEST;
    case GR_CLASS_MODEL: return OUT_MODEL;
    default: return OUT_OTHER;
    }
}

static void *
caller(void *arg)
{
    struct worker *w = arg;
    struct plan *p = w->p;
    struct part *pt = part_of(p, w->index);
    struct rec *recs = recs_of(p, w->index);
    uint64_t k;

    for (k = 0; pt->n < p->cap; k++) {
        int64_t at = p->t0_ns +
                     (int64_t)(((double)w->index + (double)k * (double)
                                (p->procs * p->threads)) / p->rate * 1e9);
        struct gr_call_opts o;
        struct gr_response r;
        struct rec *rc;
        int64_t t1;
        int st;

        if (at >= p->end_ns)
            break;
        if (gr_now_ns() < at)
            sleep_until(at);
        else if (gr_now_ns() >= p->end_ns)
            break;
        memset(&o, 0, sizeof(o));
        t1 = gr_now_ns();
        o.deadline_ns = t1 + (int64_t)(p->deadline_s * 1e9);
        o.queue_deadline_ns = p->end_ns;
        o.est_tokens = p->tokens;
        st = gr_generate(w->g, p->model, p->request, &o, &r);
        rc = &recs[pt->n];
        rc->latency_ns = gr_now_ns() - t1;
        rc->attempts = r.attempts;
        rc->n_429 = r.n_429;
        rc->outcome = (int16_t)outcome_of(st, &r, p->end_ns);
        rc->project = st == GR_OK ? name_index(pt, r.project) : -1;
        pt->n++;
        if (rc->outcome != OUT_OK && rc->outcome != OUT_UNSERVED)
            fprintf(stderr, "gemroute load: %s: %s\n", gr_err_name(st),
                    r.error);
        gr_response_free(&r);
    }
    return NULL;
}

/* One child process: open the table, run its callers, exit. */
static void
child(struct plan *p, unsigned proc)
{
    pthread_t th[64];
    struct worker w[64];
    char err[256];
    struct gr *g = gr_open(p->shm, err, sizeof(err));
    unsigned i;

    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        _exit(3);
    }
    for (i = 0; i < p->threads; i++) {
        w[i].p = p;
        w[i].g = g;
        w[i].index = proc * p->threads + i;
        if (i + 1 < p->threads) {
            if (pthread_create(&th[i], NULL, caller, &w[i]) != 0) {
                fprintf(stderr, "gemroute load: pthread_create failed\n");
                _exit(4);
            }
        }
    }
    caller(&w[p->threads - 1]);
    for (i = 0; i + 1 < p->threads; i++)
        pthread_join(th[i], NULL);
    gr_close(g);
    _exit(0);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static double
pct_ms(const int64_t *v, size_t n, double q)
{
    size_t i;

    if (n == 0)
        return 0;
    i = (size_t)ceil(q * (double)n);
    if (i > 0)
        i--;
    if (i >= n)
        i = n - 1;
    return (double)v[i] / 1e6;
}

struct project_total {
    char name[GR_NAME_MAX];
    uint64_t ok;
};

static void
summarise(const struct plan *p, int64_t wall_ns)
{
    unsigned nw = p->procs * p->threads, w, i;
    uint64_t by[OUT_N] = {0}, calls = 0, attempts = 0, n429 = 0, failed = 0;
    struct project_total tot[MAX_NAMES * 4];
    unsigned ntot = 0;
    int64_t *lat;
    size_t nlat = 0, total = 0;

    for (w = 0; w < nw; w++)
        total += part_of(p, w)->n;
    lat = malloc((total ? total : 1) * sizeof(*lat));
    for (w = 0; w < nw; w++) {
        struct part *pt = part_of(p, w);
        struct rec *r = recs_of(p, w);
        uint32_t n = pt->n < p->cap ? pt->n : (uint32_t)p->cap, k;

        for (k = 0; k < n; k++) {
            calls++;
            attempts += (uint64_t)r[k].attempts;
            n429 += (uint64_t)r[k].n_429;
            if ((unsigned)r[k].outcome < OUT_N)
                by[r[k].outcome]++;
            if (r[k].outcome != OUT_OK)
                continue;
            if (lat != NULL)
                lat[nlat++] = r[k].latency_ns;
            if (r[k].project >= 0 &&
                (uint32_t)r[k].project < pt->n_names) {
                const char *nm = pt->names[r[k].project];

                for (i = 0; i < ntot; i++)
                    if (strncmp(tot[i].name, nm, GR_NAME_MAX) == 0)
                        break;
                if (i == ntot && ntot < sizeof(tot) / sizeof(tot[0])) {
                    snprintf(tot[ntot].name, GR_NAME_MAX, "%.*s",
                             GR_NAME_MAX - 1, nm);
                    tot[ntot++].ok = 0;
                }
                if (i < ntot)
                    tot[i].ok++;
            }
        }
    }
    for (i = OUT_DEADLINE; i < OUT_N; i++)
        failed += by[i];
    if (lat != NULL)
        qsort(lat, nlat, sizeof(*lat), cmp_i64);

    printf("{\"model\": ");
    gr_cli_json_str(stdout, p->model);
    printf(", \"procs\": %u, \"threads\": %u, \"rate\": %.3f, "
           "\"duration_s\": %.3f, \"offered\": %.0f, \"calls\": %llu, "
           "\"ok\": %llu, \"failed\": %llu, \"failed_by\": {",
           p->procs, p->threads, p->rate, p->duration_s,
           floor(p->rate * p->duration_s), (unsigned long long)calls,
           (unsigned long long)by[OUT_OK], (unsigned long long)failed);
    for (i = OUT_DEADLINE; i < OUT_N; i++)
        printf("%s\"%s\": %llu", i > OUT_DEADLINE ? ", " : "",
               outcome_name[i], (unsigned long long)by[i]);
    printf("}, \"unserved\": %llu, \"attempts\": %llu, \"server_429\": %llu, "
           "\"latency_ms\": {\"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f}, "
           "\"projects\": {", (unsigned long long)by[OUT_UNSERVED],
           (unsigned long long)attempts, (unsigned long long)n429,
           pct_ms(lat, nlat, 0.50), pct_ms(lat, nlat, 0.99),
           nlat > 0 ? (double)lat[nlat - 1] / 1e6 : 0.0);
    for (i = 0; i < ntot; i++) {
        printf("%s", i > 0 ? ", " : "");
        gr_cli_json_str(stdout, tot[i].name);
        printf(": {\"ok\": %llu, \"share\": %.4f}",
               (unsigned long long)tot[i].ok,
               by[OUT_OK] > 0 ? (double)tot[i].ok / (double)by[OUT_OK] : 0);
    }
    printf("}, \"wall_s\": %.3f}\n", (double)wall_ns / 1e9);
    fflush(stdout);
    free(lat);
}

static void
usage(FILE *f)
{
    fputs("usage: gemroute load --procs N --rate R --duration S --model M\n"
          "                     [--tokens T] [--deadline S] [--threads K] "
          "[--shm NAME]\n"
          "  --procs N      client processes (default 4)\n"
          "  --threads K    calling threads per process (default 1)\n"
          "  --rate R       calls per second offered, all callers together\n"
          "  --duration S   seconds of offered load\n"
          "  --tokens T     input tokens per call (default 100)\n"
          "  --deadline S   each call's deadline in seconds (default 120)\n"
          "Prints one JSON line; exits 1 if a call failed.\n", f);
}

static char *
make_request(long tokens)
{
    size_t n = (size_t)tokens * 4, i;
    const char *head = "{\"contents\":[{\"role\":\"user\",\"parts\":"
                       "[{\"text\":\"";
    const char *tail = "\"}]}]}";
    char *s = malloc(strlen(head) + n + strlen(tail) + 1), *q;

    if (s == NULL)
        return NULL;
    q = stpcpy(s, head);
    for (i = 0; i < n; i++)
        *q++ = "gemroute load "[i % 14];
    strcpy(q, tail);
    return s;
}

int
gr_cli_load(int argc, char **argv)
{
    static const struct option opts[] = {
        {"procs", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 'T'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"model", required_argument, NULL, 'm'},
        {"tokens", required_argument, NULL, 't'},
        {"deadline", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct plan p;
    pid_t pids[MAX_CALLERS];
    unsigned i, started = 0, nw;
    struct sigaction sa;
    bool forwarded = false;
    int c, bad = 0;
    long long n = 0;
    char err[256];
    struct gr *g;

    memset(&p, 0, sizeof(p));
    p.shm = gr_cli_take_shm(&argc, argv);
    p.procs = 4;
    p.threads = 1;
    p.tokens = 100;
    p.deadline_s = 120;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        /* A bad number is bad usage, not a default or a NaN: each
         * failed parse counts in bad, reported below. */
        case 'p':
            bad += !gr_cli_integer(optarg, 1, MAX_CALLERS, &n);
            p.procs = (unsigned)n;
            break;
        case 'T':
            bad += !gr_cli_integer(optarg, 1, 64, &n);
            p.threads = (unsigned)n;
            break;
        case 'r':
            bad += !gr_cli_number(optarg, 0, MAX_CALLS, &p.rate);
            break;
        case 'd':
            bad += !gr_cli_number(optarg, 0, MAX_CALLS, &p.duration_s);
            break;
        case 'm':
            p.model = optarg;
            break;
        case 't':
            bad += !gr_cli_integer(optarg, 1, 1000000, &n);
            p.tokens = (long)n;
            break;
        case 'D':
            bad += !gr_cli_number(optarg, 0, 86400, &p.deadline_s);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (bad || p.model == NULL || !(p.rate > 0) || !(p.duration_s > 0) ||
        p.procs < 1 || p.threads < 1 || p.threads > 64 ||
        p.procs * p.threads > MAX_CALLERS || p.tokens < 1 ||
        p.tokens > 1000000 || !(p.deadline_s > 0) ||
        p.rate * p.duration_s > MAX_CALLS) {
        fputs("gemroute load: need --model, --rate > 0, --duration > 0, "
              "1 <= --threads <= 64,\n  procs x threads <= 4096, "
              "1 <= --tokens <= 1000000, rate x duration <= 2e7,\n"
              "  0 < --deadline <= 86400; each a finite number\n", stderr);
        usage(stderr);
        return 2;
    }
    /* Fail early, with the library's sentence, if the table is not
     * there; each child attaches on its own after the fork. */
    g = gr_open(p.shm, err, sizeof(err));
    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    gr_close(g);

    nw = p.procs * p.threads;
    p.cap = (size_t)ceil(p.rate * p.duration_s / nw) + 2;
    p.stride = sizeof(struct part) + p.cap * sizeof(struct rec);
    p.stride = (p.stride + 63) & ~(size_t)63;
    p.map = mmap(NULL, p.stride * nw, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    p.request = make_request(p.tokens);
    if (p.map == MAP_FAILED || p.request == NULL) {
        fprintf(stderr, "gemroute load: out of memory\n");
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    /* Everyone starts together, once every child is forked. */
    p.t0_ns = gr_now_ns() + 200000000 + (int64_t)p.procs * 2000000;
    p.end_ns = p.t0_ns + (int64_t)(p.duration_s * 1e9);
    /* Ctrl-C or a TERM reaches the callers through us, and we still
     * print what was done.  No SA_RESTART: waitpid() must return. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (i = 0; i < p.procs && !stop_signal; i++) {
        pid_t pid = fork();

        if (pid < 0) {
            fprintf(stderr, "gemroute load: fork: %s\n", strerror(errno));
            bad = 1;
            break;
        }
        if (pid == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            child(&p, i);
        }
        pids[started++] = pid;
    }
    for (i = 0; i < started; i++) {
        int st = 0;

        while (waitpid(pids[i], &st, 0) < 0) {
            if (errno != EINTR)
                break;
            if (stop_signal && !forwarded) {
                unsigned j;

                /* Only the callers not reaped yet: a reaped one's pid
                 * may already name another process. */
                for (j = i; j < started; j++)
                    kill(pids[j], SIGTERM);
                forwarded = true;
            }
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "gemroute load: caller process %d %s %d\n",
                    (int)pids[i], WIFEXITED(st) ? "exited with" :
                    "was killed by signal", WIFEXITED(st) ? WEXITSTATUS(st)
                                                          : WTERMSIG(st));
            bad = 1;
        }
    }
    summarise(&p, gr_now_ns() - p.t0_ns);
    {
        uint64_t failed = 0;
        unsigned w, k;

        for (w = 0; w < nw; w++)
            for (k = 0; k < part_of(&p, w)->n && k < p.cap; k++)
                failed += recs_of(&p, w)[k].outcome >= OUT_DEADLINE;
        if (failed > 0)
            bad = 1;
    }
    munmap(p.map, p.stride * nw);
    free(p.request);
    return bad;
}
