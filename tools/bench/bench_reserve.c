/*
 * bench_reserve.c - nanoseconds per reserve + commit through the public
 * API, in one or several processes sharing a real router's table.
 *
 *   gr-bench-reserve --shm NAME --model M [--procs P] [--ops N]
 *                    [--tokens T]
 *
 * Prints one JSON line: procs, ops per process, and the median over the
 * processes of ns per reserve+commit, plus the aggregate rate.  Timing
 * happens here, in a benchmark, never in a test.
 */
#include "gemroute.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared {
    double ns_per_op[256];
    long failures[256];
    int64_t start_ns, end_ns[256];
};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void
worker(struct shared *sh, unsigned i, const char *shm, const char *model,
       long ops, long tokens)
{
    struct gr_cost cost = {1, tokens, 0};
    struct gr_usage use = {-1, -1, 0};
    struct gr_lease lease;
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    int64_t t0, t1;
    long k, fail = 0;

    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        _exit(1);
    }
    for (k = 0; k < ops / 10; k++) {    /* warm the caches and the pages */
        if (gr_reserve(g, model, &cost, 0, &lease) == GR_OK)
            gr_commit(g, &lease, &use);
    }
    t0 = gr_now_ns();
    for (k = 0; k < ops; k++) {
        if (gr_reserve(g, model, &cost, 0, &lease) != GR_OK) {
            fail++;
            continue;
        }
        gr_commit(g, &lease, &use);
    }
    t1 = gr_now_ns();
    sh->ns_per_op[i] = (double)(t1 - t0) / (double)ops;
    sh->failures[i] = fail;
    sh->end_ns[i] = t1;
    gr_close(g);
    _exit(0);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"shm", required_argument, NULL, 's'},
        {"model", required_argument, NULL, 'm'},
        {"procs", required_argument, NULL, 'p'},
        {"ops", required_argument, NULL, 'n'},
        {"tokens", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *shm = NULL, *model = "gemini-2.5-flash";
    long procs = 1, ops = 1000000, tokens = 1000, fails = 0;
    struct shared *sh;
    double sorted[256], wall_s;
    int64_t last = 0;
    int c, st;
    long i;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': shm = optarg; break;
        case 'm': model = optarg; break;
        case 'p': procs = atol(optarg); break;
        case 'n': ops = atol(optarg); break;
        case 't': tokens = atol(optarg); break;
        default:
            fputs("usage: gr-bench-reserve --shm NAME --model M [--procs P] "
                  "[--ops N] [--tokens T]\n", stderr);
            return 2;
        }
    }
    if (procs < 1 || procs > 256 || ops < 10)
        return 2;
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    sh->start_ns = gr_now_ns();
    for (i = 0; i < procs; i++)
        if (fork() == 0)
            worker(sh, (unsigned)i, shm, model, ops, tokens);
    for (i = 0; i < procs; i++) {
        wait(&st);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 1;
    }
    for (i = 0; i < procs; i++) {
        sorted[i] = sh->ns_per_op[i];
        fails += sh->failures[i];
        if (sh->end_ns[i] > last)
            last = sh->end_ns[i];
    }
    qsort(sorted, (size_t)procs, sizeof(double), cmp_double);
    wall_s = (double)(last - sh->start_ns) / 1e9;
    printf("{\"procs\": %ld, \"ops\": %ld, \"ns_per_op_median\": %.1f, "
           "\"ns_per_op_max\": %.1f, \"ops_per_s\": %.0f, \"refused\": %ld}\n",
           procs, ops, sorted[procs / 2], sorted[procs - 1],
           (double)(procs * ops) / wall_s, fails);
    return fails == 0 ? 0 : 1;
}
