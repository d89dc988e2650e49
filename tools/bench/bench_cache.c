/*
 * bench_cache.c - what a call costs when the shared response cache
 * answers it, against the same call sent upstream (section 7 of
 * tools/bench.sh, run by tools/bench/cache.sh).
 *
 *   gr-bench-cache --shm NAME --mode hit|upstream --calls N [--procs P]
 *                  [--model M] [--body JSON]
 *
 * Every call is gr_generate() of one body.  hit: the parent makes the
 * call once (the cache stores the answer) and each process then makes N
 * calls with GR_CACHE_USE, every one of which must be a hit.  upstream:
 * the same N calls with GR_CACHE_BYPASS, so each is reserved, sent to
 * the router's base_url (gemroute-mock), settled and reported.  Each
 * process attaches after fork() and times every call (CLOCK_MONOTONIC)
 * and its own CPU time (getrusage, user + system).  Prints one JSON
 * line: medians over the processes of their p50, p99 and mean wall time
 * per call and of their CPU time per call, in microseconds, and the
 * calls per second of all processes together.  Exit 1 when a call
 * failed, or when a call of hit mode was not a hit.
 */
#include "gemroute.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROCS 64

struct proc_res {
    double p50_us, p99_us, mean_us, cpu_us;
    int64_t t0_ns, t1_ns;
    long ok, hits, failed;
};

struct opts {
    const char *shm, *model, *body;
    int hit, procs;
    long calls;
};

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int
cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double
cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* One call, counted in r. */
static void
call(struct gr *g, const struct opts *o, struct proc_res *r)
{
    struct gr_call_opts co;
    struct gr_response resp;
    int rc;

    memset(&co, 0, sizeof(co));
    co.cache = o->hit ? GR_CACHE_USE : GR_CACHE_BYPASS;
    rc = gr_generate(g, o->model, o->body, &co, &resp);
    if (rc == GR_OK)
        r->ok++;
    else
        r->failed++;
    if (resp.cached)
        r->hits++;
    if (rc != GR_OK && r->failed == 1)
        fprintf(stderr, "gr-bench-cache: %s: %s\n", gr_err_name(rc),
                resp.error);
    gr_response_free(&resp);
}

/* One process: N calls back to back. */
static int
run_proc(const struct opts *o, struct proc_res *r)
{
    char err[256];
    struct gr *g = gr_open(o->shm, err, sizeof(err));
    int64_t *lat = calloc((size_t)o->calls, sizeof(*lat));
    double c0, sum = 0;
    long i;

    if (g == NULL || lat == NULL) {
        fprintf(stderr, "gr-bench-cache: %s\n", g ? "out of memory" : err);
        return 1;
    }
    c0 = cpu_us();
    r->t0_ns = gr_now_ns();
    for (i = 0; i < o->calls; i++) {
        int64_t t = gr_now_ns();

        call(g, o, r);
        lat[i] = gr_now_ns() - t;
    }
    r->t1_ns = gr_now_ns();
    r->cpu_us = (cpu_us() - c0) / (double)o->calls;
    for (i = 0; i < o->calls; i++)
        sum += (double)lat[i];
    qsort(lat, (size_t)o->calls, sizeof(*lat), cmp_i64);
    r->p50_us = (double)lat[o->calls / 2] / 1e3;
    r->p99_us = (double)lat[(o->calls * 99) / 100] / 1e3;
    r->mean_us = sum / (double)o->calls / 1e3;
    free(lat);
    gr_close(g);
    return 0;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
usage(void)
{
    fputs("usage: gr-bench-cache --shm NAME --mode hit|upstream "
          "--calls N [--procs P] [--model M] [--body JSON]\n", stderr);
    exit(2);
}

int
main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"shm", required_argument, NULL, 's'},
        {"mode", required_argument, NULL, 'm'},
        {"calls", required_argument, NULL, 'n'},
        {"procs", required_argument, NULL, 'p'},
        {"model", required_argument, NULL, 'M'},
        {"body", required_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    struct opts o = {
        NULL, "gemini-2.5-flash",
        "{\"contents\":[{\"parts\":[{\"text\":\"What does a cache hit "
        "cost?\"}]}]}", -1, 1, 0,
    };
    struct proc_res *res, prime = {0};
    double p50[MAX_PROCS], p99[MAX_PROCS], mean[MAX_PROCS], cpu[MAX_PROCS];
    int64_t t0 = INT64_MAX, t1 = 0;
    long ok = 0, hits = 0, failed = 0;
    int c, k, rc = 0;

    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's': o.shm = optarg; break;
        case 'm':
            o.hit = strcmp(optarg, "hit") == 0 ? 1 :
                    strcmp(optarg, "upstream") == 0 ? 0 : -1;
            break;
        case 'n': o.calls = atol(optarg); break;
        case 'p': o.procs = atoi(optarg); break;
        case 'M': o.model = optarg; break;
        case 'b': o.body = optarg; break;
        default: usage();
        }
    }
    if (o.shm == NULL || o.hit < 0 || o.calls < 1 || o.procs < 1 ||
        o.procs > MAX_PROCS)
        usage();
    res = mmap(NULL, sizeof(*res) * MAX_PROCS, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED)
        return 1;
    memset(res, 0, sizeof(*res) * MAX_PROCS);

    if (o.hit) {        /* the answer every timed call will hit */
        char err[256];
        struct gr *g = gr_open(o.shm, err, sizeof(err));

        if (g == NULL) {
            fprintf(stderr, "gr-bench-cache: %s\n", err);
            return 1;
        }
        call(g, &o, &prime);
        gr_close(g);
        if (prime.ok != 1) {
            fputs("gr-bench-cache: the priming call failed\n", stderr);
            return 1;
        }
    }
    for (k = 0; k < o.procs; k++) {
        pid_t pid = fork();

        if (pid < 0)
            return 1;
        if (pid == 0)
            _exit(run_proc(&o, &res[k]));
    }
    for (k = 0; k < o.procs; k++) {
        int st;

        if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
    }
    for (k = 0; k < o.procs; k++) {
        p50[k] = res[k].p50_us;
        p99[k] = res[k].p99_us;
        mean[k] = res[k].mean_us;
        cpu[k] = res[k].cpu_us;
        ok += res[k].ok;
        hits += res[k].hits;
        failed += res[k].failed;
        if (res[k].t0_ns < t0)
            t0 = res[k].t0_ns;
        if (res[k].t1_ns > t1)
            t1 = res[k].t1_ns;
    }
    if (failed != 0 || (o.hit ? hits : ok - hits) != o.calls * o.procs)
        rc = 1;
    printf("{\"mode\": \"%s\", \"procs\": %d, \"calls\": %ld, \"ok\": %ld, "
           "\"hits\": %ld, \"failed\": %ld, \"p50_us\": %.2f, "
           "\"p99_us\": %.2f, \"mean_us\": %.2f, \"cpu_us\": %.2f, "
           "\"calls_per_s\": %.0f}\n", o.hit ? "hit" : "upstream", o.procs,
           o.calls, ok, hits, failed, median(p50, o.procs),
           median(p99, o.procs), median(mean, o.procs),
           median(cpu, o.procs),
           t1 > t0 ? (double)(ok) * 1e9 / (double)(t1 - t0) : 0.0);
    return rc;
}
