/*
 * bench.h - what the reservation benchmark's contenders have in common.
 *
 * gr-bench-reserve runs one contender at a time: gemroute's lock-free
 * table through the public API, the same table semantics under one
 * process-shared robust mutex, or Redis (the tutorial sorted-set
 * pipeline, or the same check made atomic in a Lua script).  Each
 * contender is a small table of functions; harness.c forks the
 * processes, starts them together, stops them at a deadline, and in
 * check mode logs every admission for the exact over-admission checker.
 * Third-party headers (hiredis) stay in the .c that wraps them.
 */
#ifndef GR_BENCH_H
#define GR_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Everything a run is told on the command line. */
struct gr_bench_opts {
    const char *impl;           /* contender name */
    const char *label;          /* its name in the output; NULL = impl */
    const char *shm;            /* gemroute: the router's segment */
    const char *redis;          /* redis: unix socket path */
    const char *model;
    unsigned procs;
    unsigned projects;          /* mutex, redis: cells to spread over */
    int64_t window_ms;          /* mutex, redis: the sliding window */
    int64_t rpm;                /* mutex, redis: requests per window */
    int64_t tpm;                /* mutex: tokens per window */
    int64_t tokens;             /* tokens per reservation */
    double seconds;             /* timed run length */
    long ops;                   /* > 0: fixed ops per process instead */
    int64_t warmup_ms;          /* per process, before the start */
    double rate;                /* > 0: operations per second, all
                                   processes together, paced */
    bool inline_run;            /* one worker in this process (callgrind) */
    bool check;                 /* log admissions, run the checker */
};

/*
 * One admission, as the checker wants it (ns, in the contender's clock).
 * Two views of when it stops occupying its window: the contender's own
 * (s_ns + window) and Google's (sent_ns + window: the call leaves when
 * the reservation returns, and with no latency its answer's first byte
 * comes then).  gemroute and the mutex table hold an admission until
 * one window after the first byte, so both views are the same for them.
 */
struct gr_bench_adm {
    uint32_t cell;
    int64_t a_ns;               /* admitted at */
    int64_t s_ns;               /* the contender frees it one window
                                   after this */
    int64_t sent_ns;            /* the reservation returned: the call
                                   leaves */
};

/*
 * A contender.  setup and teardown run in the parent (may be NULL);
 * open, op and close in each worker process.  op makes one reserve and
 * its commit: 0 admitted (adm filled), 1 refused, -1 failed.
 */
struct gr_bench_impl {
    const char *name;
    int (*setup)(const struct gr_bench_opts *o, char *err, size_t n);
    void (*teardown)(const struct gr_bench_opts *o);
    void *(*open)(const struct gr_bench_opts *o, unsigned worker, char *err,
                  size_t n);
    int (*op)(void *h, struct gr_bench_adm *adm);
    void (*close)(void *h);
    int64_t (*clock_ns)(void);  /* the clock adm instants are read on */
    int64_t check_window_ns;    /* set by setup: the window to check */
};

extern struct gr_bench_impl gr_bench_gemroute;
extern struct gr_bench_impl gr_bench_mutex;
extern struct gr_bench_impl gr_bench_redis_zset;
extern struct gr_bench_impl gr_bench_redis_lua;

/* CLOCK_MONOTONIC and CLOCK_REALTIME in ns. */
int64_t gr_bench_mono_ns(void);
int64_t gr_bench_wall_ns(void);

/*
 * Run the contender as o says and print one JSON line on stdout.
 * Returns the exit status (0, or 1 when a worker failed or, in check
 * mode, when the checker found an over-admission).
 */
int gr_bench_run(struct gr_bench_impl *impl, const struct gr_bench_opts *o);

#endif
