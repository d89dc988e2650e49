/*
 * e2e.h - the end-to-end benchmark: calls offered on a schedule by P
 * processes to gemroute-mock, through one of four contenders.
 *
 * bench_e2e.c owns the processes, the schedule, the per-process queue
 * and worker threads and the records; e2e_calls.c is the only file that
 * sees libcurl and libgemroute's call API, and holds the contenders:
 *
 *   gemroute    gr_generate() through the router's table;
 *   direct      no protection: one POST, a 429 is a failure;
 *   roundrobin  round-robin over projects; a project that answers 429 is
 *               unhealthy for one window; all healthy again when none is
 *               left; up to 3 retries 1/60 of a window apart;
 *   bucket      a token bucket per process (rate: the pool's requests per
 *               window / window / processes; capacity: the pool's requests
 *               per window / 10) and exponential backoff with full
 *               jitter on 429;
 *   curl        (overhead runs) a plain libcurl POST of the same body.
 *
 * Every time constant of the contenders is given in windows, so a run
 * with a scaled window (bench-quick) keeps the same shape.
 */
#ifndef GR_BENCH_E2E_H
#define GR_BENCH_E2E_H

#include <stddef.h>
#include <stdint.h>

#define GR_E2E_MAX_KEYS 8
#define GR_E2E_KEY_MAX 128

struct gr_e2e_opts {
    const char *contender;
    const char *url;            /* the mock, http://127.0.0.1:PORT */
    const char *shm;            /* gemroute: the router's segment */
    const char *model;
    const char *body;           /* the request, JSON */
    char keys[GR_E2E_MAX_KEYS][GR_E2E_KEY_MAX];   /* one per project */
    unsigned n_keys;
    unsigned procs;
    unsigned workers;           /* threads per process */
    long calls;                 /* offered in all */
    double offer_s;             /* offered evenly over this */
    double run_s;               /* then stopped, whatever is left */
    int64_t window_ns;
    int64_t limit;              /* requests per window per project */
    long loop_calls;            /* > 0: overhead mode, calls per process */
};

/* One offered call, written by the worker that made it. */
struct gr_e2e_rec {
    int64_t offered_ns;         /* CLOCK_MONOTONIC */
    int64_t start_ns;           /* a worker took it */
    int64_t end_ns;             /* 0 = never finished */
    int32_t ok;
    int32_t status;             /* HTTP status of the last answer */
    int32_t attempts;
    int32_t n429;
};

/* Per process and per worker state of the contenders (e2e_calls.c). */
struct gr_e2e_proc;
struct gr_e2e_worker;

struct gr_e2e_proc *gr_e2e_proc_open(const struct gr_e2e_opts *o,
                                     unsigned proc, char *err, size_t n);
void gr_e2e_proc_close(struct gr_e2e_proc *p);
struct gr_e2e_worker *gr_e2e_worker_open(struct gr_e2e_proc *p,
                                         unsigned worker);
void gr_e2e_worker_close(struct gr_e2e_worker *w);

/* Make one call (with the contender's retries); fills ok, status,
 * attempts and n429 of rec.  deadline_ns bounds waiting (gemroute and
 * bucket). */
void gr_e2e_call(struct gr_e2e_worker *w, long index, int64_t deadline_ns,
                 struct gr_e2e_rec *rec);

/* GET url into file (the mock's /mock/stats).  0 or -1. */
int gr_e2e_get(const char *url, const char *file);

int64_t gr_e2e_now_ns(void);

#endif
