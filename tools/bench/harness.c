/*
 * harness.c - run one contender of the reservation benchmark in P
 * processes and print what it did as one JSON line.
 *
 * Every worker attaches and warms up first; then all start together
 * (they block on a pipe the parent closes) and loop reserve + commit
 * until a shared deadline.  Each worker times itself; the parent sums
 * the operations over the wall time.  In check mode every admission is
 * logged to a shared log and the exact checker of the stress tests
 * (tests/stress/checker.c, linked, not copied) replays it: the largest
 * number of admissions that ever occupied one window is the figure that
 * says whether a contender over-admits.  Times are measured here, in a
 * benchmark, never asserted in a test.
 */
#include "bench.h"

#include "checker.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 256
#define CHECK_LOG_CAP (1u << 21)    /* admissions kept in check mode */
#define CLOCK_EVERY 16              /* ops between two reads of the clock */

struct worker_res {
    long ops;
    long refused;
    long failed;
    int64_t t0, t1;                 /* its own first and last instant */
    int64_t cpu_ns;                 /* user + system time in between */
    int ok;
};

/* The page the parent and the workers share. */
/* The two admission logs of check mode: the contender's view, Google's. */
struct logs {
    struct gr_reclog *own;
    struct gr_reclog *google;
};

struct shared {
    int64_t start_ns;
    int64_t deadline_ns;
    struct worker_res w[MAX_PROCS];
};

int64_t
gr_bench_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
gr_bench_wall_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* This thread's CPU time (user + system), ns. */
static int64_t
cpu_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
log_admission(struct gr_reclog *log, const struct gr_bench_adm *adm,
              int64_t s_ns)
{
    struct gr_rec *rec = gr_reclog_add(log);

    if (rec == NULL)
        return;
    rec->cell = adm->cell;
    rec->pid = (int32_t)getpid();
    rec->a_ns = adm->a_ns;
    rec->s_ns = s_ns;
    rec->c_ns = s_ns;
    rec->cost[0] = 1;
    rec->actual[0] = rec->actual[1] = rec->actual[2] = -1;
    /* release: the fields are written before the state (checker.h) */
    atomic_store_explicit(&rec->state, GR_REC_SETTLED, memory_order_release);
}

/* The loop of one worker: until the deadline, or o->ops operations. */
static void
work(struct gr_bench_impl *impl, const struct gr_bench_opts *o, void *h,
     int64_t deadline_ns, const struct logs *logs, struct worker_res *r)
{
    struct gr_bench_adm adm;
    long k = 0;
    int64_t now, gap_ns = 0;

    /* --rate: this process' share of the rate, one op per gap */
    if (o->rate > 0)
        gap_ns = (int64_t)(1e9 * (o->inline_run ? 1 : o->procs) / o->rate);
    r->cpu_ns = cpu_now_ns();
    r->t0 = gr_bench_mono_ns();
    now = r->t0;
    for (;;) {
        int rc;

        if (gap_ns > 0) {
            struct timespec ts;
            int64_t at = r->t0 + k * gap_ns;

            if (at >= deadline_ns || (o->ops > 0 && k >= o->ops))
                break;
            ts.tv_sec = (time_t)(at / 1000000000);
            ts.tv_nsec = (long)(at % 1000000000);
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
                                   NULL) == EINTR)
                ;
        } else if (o->ops > 0) {
            if (k >= o->ops)
                break;
        } else if (k % CLOCK_EVERY == 0) {
            now = gr_bench_mono_ns();
            if (now >= deadline_ns)
                break;
        }
        rc = impl->op(h, &adm);
        k++;
        if (rc == 0) {
            r->ops++;
            if (logs != NULL) {
                log_admission(logs->own, &adm, adm.s_ns);
                log_admission(logs->google, &adm, adm.sent_ns);
            }
        } else if (rc > 0) {
            r->refused++;
        } else {
            r->failed++;
            if (r->failed > 1000)
                break;      /* broken, not slow: stop and say so */
        }
    }
    r->t1 = gr_bench_mono_ns();
    r->cpu_ns = cpu_now_ns() - r->cpu_ns;
    r->ok = r->failed == 0;
}

static void
warm_up(struct gr_bench_impl *impl, const struct gr_bench_opts *o, void *h)
{
    int64_t until = gr_bench_mono_ns() + o->warmup_ms * 1000000;
    struct gr_bench_adm adm;

    while (gr_bench_mono_ns() < until)
        (void)impl->op(h, &adm);
}

static void
child(struct gr_bench_impl *impl, const struct gr_bench_opts *o,
      unsigned i, struct shared *sh, int ready_fd, int go_fd,
      const struct logs *logs)
{
    char err[256], c = 0;
    void *h = impl->open(o, i, err, sizeof(err));

    if (h == NULL) {
        fprintf(stderr, "gr-bench-reserve: %s: %s\n", impl->name, err);
        _exit(1);
    }
    if (!o->check)
        warm_up(impl, o, h);
    if (write(ready_fd, &c, 1) != 1)
        _exit(1);
    /* Blocks until the parent closes the other end: everyone starts. */
    while (read(go_fd, &c, 1) < 0 && errno == EINTR)
        ;
    work(impl, o, h, sh->deadline_ns, logs, &sh->w[i]);
    impl->close(h);
    _exit(sh->w[i].ok ? 0 : 1);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Fork the workers, start them together, wait for them.  0 or -1. */
static int
run_forked(struct gr_bench_impl *impl, const struct gr_bench_opts *o,
           struct shared *sh, const struct logs *logs)
{
    int ready[2], go[2], st, rc = 0;
    pid_t pids[MAX_PROCS];
    unsigned i, got = 0;
    char c;

    if (pipe(ready) != 0 || pipe(go) != 0)
        return -1;
    for (i = 0; i < o->procs; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            return -1;
        if (pids[i] == 0) {
            close(ready[0]);
            close(go[1]);
            child(impl, o, i, sh, ready[1], go[0], logs);
        }
    }
    close(ready[1]);
    close(go[0]);
    while (got < o->procs) {
        ssize_t n = read(ready[0], &c, 1);

        if (n == 1)
            got++;
        else if (n == 0 || errno != EINTR)
            break;      /* a worker died before it was ready */
    }
    close(ready[0]);
    sh->start_ns = gr_bench_mono_ns();
    sh->deadline_ns = sh->start_ns + (int64_t)(o->seconds * 1e9);
    close(go[1]);       /* go */
    for (i = 0; i < o->procs; i++) {
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0)
            rc = -1;
    }
    return got == o->procs ? rc : -1;
}

static int
run_inline(struct gr_bench_impl *impl, const struct gr_bench_opts *o,
           struct shared *sh, const struct logs *logs)
{
    char err[256];
    void *h = impl->open(o, 0, err, sizeof(err));

    if (h == NULL) {
        fprintf(stderr, "gr-bench-reserve: %s: %s\n", impl->name, err);
        return -1;
    }
    sh->start_ns = gr_bench_mono_ns();
    sh->deadline_ns = sh->start_ns + (int64_t)(o->seconds * 1e9);
    work(impl, o, h, sh->deadline_ns, logs, &sh->w[0]);
    impl->close(h);
    return sh->w[0].ok ? 0 : -1;
}

/* Replay one log; print its part of the JSON line ("" or "google_"). */
static int
check_view(struct gr_bench_impl *impl, const struct gr_bench_opts *o,
           const struct gr_reclog *log, int64_t t0, int64_t t1,
           const char *tag)
{
    int64_t limit[3] = {o->rpm, -1, -1};
    struct gr_check_result res;
    /* acquire: the records were released before their writers exited */
    uint64_t n = atomic_load_explicit(&log->n, memory_order_acquire), i;
    unsigned ncells = 1;
    int rc;

    if (n > log->cap)
        n = log->cap;
    for (i = 0; i < n; i++)
        if (log->r[i].cell + 1 > ncells)
            ncells = log->r[i].cell + 1;
    rc = gr_check(log, limit, impl->check_window_ns, NULL, 0, t0, t1, ncells,
                  &res);
    if (rc < 0)
        return -1;
    printf(", \"%smax_occupancy\": %lld, \"%sviolations\": %lld, "
           "\"%sover_admitted\": %lld",
           tag, (long long)res.max_occupancy[0], tag,
           (long long)res.violations, tag,
           (long long)(res.max_occupancy[0] > o->rpm
                           ? res.max_occupancy[0] - o->rpm : 0));
    return rc;
}

/* Both views of the check; 0 when the contender's own view is clean. */
static int
check(struct gr_bench_impl *impl, const struct gr_bench_opts *o,
      const struct logs *logs, int64_t t0, int64_t t1)
{
    /* relaxed: the workers are gone; a count for the report */
    uint64_t n = atomic_load_explicit(&logs->own->n, memory_order_relaxed);
    int rc;

    printf(", \"limit\": %lld, \"window_ms\": %lld, \"log_full\": %s",
           (long long)o->rpm, (long long)o->window_ms,
           n > logs->own->cap ? "true" : "false");
    rc = check_view(impl, o, logs->own, t0, t1, "");
    if (check_view(impl, o, logs->google, t0, t1, "google_") < 0)
        rc = -1;
    return rc;
}

int
gr_bench_run(struct gr_bench_impl *impl, const struct gr_bench_opts *o)
{
    struct shared *sh;
    struct logs logs = {NULL, NULL};
    double per[MAX_PROCS], cpu_per[MAX_PROCS], wall_s, cpu_s = 0;
    long ops = 0, refused = 0, failed = 0;
    int64_t last = 0, offset;
    char err[256];
    unsigned i, n;
    int rc, status = 0;

    if (o->procs < 1 || o->procs > MAX_PROCS)
        return 2;
    if (impl->setup != NULL && impl->setup(o, err, sizeof(err)) != 0) {
        fprintf(stderr, "gr-bench-reserve: %s: %s\n", impl->name, err);
        return 1;
    }
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        goto fail;
    if (o->check && ((logs.own = gr_reclog_new(CHECK_LOG_CAP)) == NULL ||
                     (logs.google = gr_reclog_new(CHECK_LOG_CAP)) == NULL))
        goto fail;
    rc = o->inline_run ? run_inline(impl, o, sh, o->check ? &logs : NULL)
                       : run_forked(impl, o, sh, o->check ? &logs : NULL);
    /* The checker works in the contender's clock (Redis: the wall). */
    offset = impl->clock_ns() - gr_bench_mono_ns();
    if (rc != 0)
        status = 1;
    n = o->inline_run ? 1 : o->procs;
    for (i = 0; i < n; i++) {
        struct worker_res *w = &sh->w[i];

        ops += w->ops;
        refused += w->refused;
        failed += w->failed;
        per[i] = w->ops > 0 ? (double)(w->t1 - w->t0) / (double)w->ops : 0;
        cpu_per[i] = w->ops > 0 ? (double)w->cpu_ns / (double)w->ops : 0;
        cpu_s += (double)w->cpu_ns / 1e9;
        if (w->t1 > last)
            last = w->t1;
    }
    qsort(per, n, sizeof(double), cmp_double);
    qsort(cpu_per, n, sizeof(double), cmp_double);
    wall_s = last > sh->start_ns ? (double)(last - sh->start_ns) / 1e9 : 0;
    printf("{\"impl\": \"%s\", \"procs\": %u, \"projects\": %u, "
           "\"seconds\": %.4f, \"ops\": %ld, \"ops_per_s\": %.0f, "
           "\"ns_per_op_median\": %.1f, \"ns_per_op_max\": %.1f, "
           "\"cpu_ns_per_op_median\": %.1f, \"cores_used\": %.2f, "
           "\"refused\": %ld, \"failed\": %ld",
           o->label != NULL ? o->label : impl->name, n, o->projects,
           wall_s, ops,
           wall_s > 0 ? (double)ops / wall_s : 0.0, per[n / 2], per[n - 1],
           cpu_per[n / 2], wall_s > 0 ? cpu_s / wall_s : 0.0, refused,
           failed);
    if (o->check &&
        check(impl, o, &logs, sh->start_ns + offset, last + offset) != 0)
        status = 1;
    printf("}\n");
    fflush(stdout);
    if (logs.own != NULL)
        gr_reclog_free(logs.own);
    if (logs.google != NULL)
        gr_reclog_free(logs.google);
    munmap(sh, sizeof(*sh));
    if (impl->teardown != NULL)
        impl->teardown(o);
    return status;

fail:
    fprintf(stderr, "gr-bench-reserve: out of memory\n");
    if (impl->teardown != NULL)
        impl->teardown(o);
    return 1;
}
