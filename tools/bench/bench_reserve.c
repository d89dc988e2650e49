/*
 * bench_reserve.c - the reservation benchmark: reserve + commit of one
 * request and ~1,000 tokens in a tight loop, by P processes, through one
 * of four contenders, printed as one JSON line.
 *
 *   gr-bench-reserve --impl gemroute --shm NAME [common options]
 *   gr-bench-reserve --impl mutex --projects N [common options]
 *   gr-bench-reserve --impl redis-zset|redis-lua --redis SOCKET
 *                    --projects N [common options]
 *
 *   common: --procs P  --seconds S | --ops N  --tokens T  --model M
 *           --window-ms W  --rpm L  --tpm L  --warmup-ms MS
 *           --label NAME (the contender's name in the output)
 *           --rate R (R operations per second, all processes together,
 *                     paced: for the cluster section's Redis counts)
 *           --inline (one worker in this process, for callgrind)
 *           --check (log every admission and replay it with the exact
 *                    over-admission checker)
 *
 * tools/bench.sh drives it; see docs/BENCHMARKS.md for the method.
 * Timing happens here, in a benchmark, never in a test.
 */
#include "bench.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(void)
{
    fputs("usage: gr-bench-reserve --impl gemroute|mutex|redis-zset|"
          "redis-lua\n"
          "         [--shm NAME] [--redis SOCKET] [--projects N] "
          "[--procs P]\n"
          "         [--seconds S | --ops N] [--tokens T] [--model M]\n"
          "         [--window-ms W] [--rpm L] [--tpm L] [--warmup-ms MS]\n"
          "         [--label NAME] [--inline] [--check] [--rate R]\n",
          stderr);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"impl", required_argument, NULL, 'i'},
        {"shm", required_argument, NULL, 's'},
        {"redis", required_argument, NULL, 'r'},
        {"model", required_argument, NULL, 'm'},
        {"procs", required_argument, NULL, 'p'},
        {"projects", required_argument, NULL, 'P'},
        {"seconds", required_argument, NULL, 'S'},
        {"ops", required_argument, NULL, 'n'},
        {"tokens", required_argument, NULL, 't'},
        {"window-ms", required_argument, NULL, 'w'},
        {"rpm", required_argument, NULL, 'R'},
        {"tpm", required_argument, NULL, 'T'},
        {"warmup-ms", required_argument, NULL, 'W'},
        {"label", required_argument, NULL, 'L'},
        {"inline", no_argument, NULL, 'I'},
        {"check", no_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    static struct gr_bench_impl *impls[] = {
        &gr_bench_gemroute, &gr_bench_mutex, &gr_bench_redis_zset,
        &gr_bench_redis_lua,
    };
    struct gr_bench_opts o = {
        .impl = "gemroute",
        .model = "gemini-2.5-flash",
        .procs = 1,
        .projects = 10,
        .window_ms = 500,
        .rpm = 2000000000,
        .tpm = 2000000000,
        .tokens = 1000,
        .seconds = 0.3,
        .warmup_ms = 30,
    };
    struct gr_bench_impl *impl = NULL;
    size_t i;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': o.impl = optarg; break;
        case 's': o.shm = optarg; break;
        case 'r': o.redis = optarg; break;
        case 'm': o.model = optarg; break;
        case 'p': o.procs = (unsigned)atoi(optarg); break;
        case 'P': o.projects = (unsigned)atoi(optarg); break;
        case 'S': o.seconds = atof(optarg); break;
        case 'n': o.ops = atol(optarg); break;
        case 't': o.tokens = atoll(optarg); break;
        case 'w': o.window_ms = atoll(optarg); break;
        case 'R': o.rpm = atoll(optarg); break;
        case 'T': o.tpm = atoll(optarg); break;
        case 'W': o.warmup_ms = atoll(optarg); break;
        case 'L': o.label = optarg; break;
        case 'I': o.inline_run = true; break;
        case 'c': o.check = true; break;
        case 'x': o.rate = atof(optarg); break;
        default:
            usage();
            return 2;
        }
    }
    for (i = 0; i < sizeof(impls) / sizeof(impls[0]); i++)
        if (strcmp(impls[i]->name, o.impl) == 0)
            impl = impls[i];
    if (impl == NULL || o.window_ms < 10 || o.seconds <= 0 ||
        (o.inline_run && o.procs != 1)) {
        usage();
        return 2;
    }
    return gr_bench_run(impl, &o);
}
