/*
 * bench_e2e.c - the end-to-end benchmark: calls offered on a schedule to
 * gemroute-mock through one contender (e2e.h), and the overhead of a
 * call through gr_generate against a plain libcurl POST.
 *
 *   gr-bench-e2e --contender NAME --url http://127.0.0.1:PORT
 *                [--shm NAME] --keys K1,K2,K3 --calls N --offer-s S
 *                --run-s R --window-ms W --limit L [--procs P]
 *                [--workers T] [--model M] [--body JSON] --out PREFIX
 *   gr-bench-e2e --contender gemroute|curl --loop-calls N [--procs P] ...
 *
 * Offered mode: call i is offered at t0 + i * S / N, by process i mod P,
 * which queues it for one of its T worker threads (a waiting call holds
 * no thread; its latency counts from the instant it was offered).  At
 * t0 + S the mock's /mock/stats is saved (what it admitted within the
 * offered time); at t0 + R whatever has not finished is stopped.  Writes
 * PREFIX.csv (one line per call), PREFIX.stats-mid.json,
 * PREFIX.stats.json and prints a JSON summary.
 *
 * Loop mode: each process makes N calls one after the other and reports
 * microseconds per call (the median over processes is printed).
 */
#include "e2e.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 64
#define MAX_WORKERS 256
#define START_DELAY_NS INT64_C(300000000)  /* time to fork and attach */
#define DEADLINE_WINDOWS 2                  /* 120 s of a minute */

/* The page the parent and the processes share. */
struct shared {
    int64_t t0_ns;
    double us_per_call[MAX_PROCS];      /* loop mode: wall */
    double cpu_us_per_call[MAX_PROCS];  /* loop mode: user + system */
    long failed[MAX_PROCS];             /* loop mode */
    struct gr_e2e_rec rec[];
};

/* A process's queue of offered calls, taken by its workers. */
struct queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    long *item;
    long head, tail;
    int closed;
};

struct worker_arg {
    const struct gr_e2e_opts *o;
    struct gr_e2e_proc *p;
    struct queue *q;
    struct shared *sh;
    unsigned index;
};

static void
sleep_until(int64_t at_ns)
{
    struct timespec ts = {at_ns / 1000000000, at_ns % 1000000000};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR)
        ;
}

static long
queue_take(struct queue *q)
{
    long i = -1;

    pthread_mutex_lock(&q->lock);
    while (q->head == q->tail && !q->closed)
        pthread_cond_wait(&q->cond, &q->lock);
    if (q->head != q->tail)
        i = q->item[q->head++];
    pthread_mutex_unlock(&q->lock);
    return i;
}

static void
queue_put(struct queue *q, long i)
{
    pthread_mutex_lock(&q->lock);
    q->item[q->tail++] = i;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static void
queue_close(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

static void *
worker_main(void *arg)
{
    struct worker_arg *a = arg;
    struct gr_e2e_worker *w = gr_e2e_worker_open(a->p, a->index);
    long i;

    if (w == NULL)
        return NULL;
    while ((i = queue_take(a->q)) >= 0) {
        struct gr_e2e_rec *rec = &a->sh->rec[i];
        int64_t deadline = rec->offered_ns +
                           DEADLINE_WINDOWS * a->o->window_ns;

        rec->start_ns = gr_e2e_now_ns();
        gr_e2e_call(w, i, deadline, rec);
        /* release: the parent reads a record whose end is set as whole */
        __atomic_store_n(&rec->end_ns, gr_e2e_now_ns(), __ATOMIC_RELEASE);
    }
    gr_e2e_worker_close(w);
    return NULL;
}

/* One process of offered mode: dispatch its calls on time. */
static int
offered_proc(const struct gr_e2e_opts *o, struct shared *sh, unsigned proc)
{
    char err[256];
    struct gr_e2e_proc *p = gr_e2e_proc_open(o, proc, err, sizeof(err));
    struct worker_arg args[MAX_WORKERS];
    pthread_t th[MAX_WORKERS];
    pthread_attr_t attr;
    struct queue q;
    unsigned k;
    long i;

    if (p == NULL) {
        fprintf(stderr, "gr-bench-e2e: %s\n", err);
        return 1;
    }
    memset(&q, 0, sizeof(q));
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.cond, NULL);
    q.item = calloc((size_t)(o->calls / o->procs + 2), sizeof(long));
    if (q.item == NULL)
        return 1;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (k = 0; k < o->workers; k++) {
        args[k] = (struct worker_arg){o, p, &q, sh, k};
        if (pthread_create(&th[k], &attr, worker_main, &args[k]) != 0)
            return 1;
    }
    for (i = proc; i < o->calls; i += o->procs) {
        sleep_until(sh->rec[i].offered_ns);
        queue_put(&q, i);
    }
    queue_close(&q);
    for (k = 0; k < o->workers; k++)
        pthread_join(th[k], NULL);
    gr_e2e_proc_close(p);
    return 0;
}

static double
cpu_us(const struct rusage *ru)
{
    return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * 1e6 +
           (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec);
}

/* One process of loop mode: calls back to back. */
static int
loop_proc(const struct gr_e2e_opts *o, struct shared *sh, unsigned proc)
{
    char err[256];
    struct gr_e2e_proc *p = gr_e2e_proc_open(o, proc, err, sizeof(err));
    struct gr_e2e_worker *w;
    struct gr_e2e_rec rec;
    struct rusage ru0, ru1;
    int64_t t0, t1;
    long k, failed = 0;

    if (p == NULL || (w = gr_e2e_worker_open(p, 0)) == NULL) {
        fprintf(stderr, "gr-bench-e2e: %s\n", p == NULL ? err : "worker");
        return 1;
    }
    for (k = 0; k < 20; k++)        /* warm up: connect, fill caches */
        gr_e2e_call(w, k, gr_e2e_now_ns() + o->window_ns, &rec);
    sleep_until(sh->t0_ns);
    getrusage(RUSAGE_SELF, &ru0);
    t0 = gr_e2e_now_ns();
    for (k = 0; k < o->loop_calls; k++) {
        gr_e2e_call(w, k, gr_e2e_now_ns() + o->window_ns, &rec);
        failed += !rec.ok;
    }
    t1 = gr_e2e_now_ns();
    getrusage(RUSAGE_SELF, &ru1);
    sh->us_per_call[proc] = (double)(t1 - t0) / 1e3 / (double)o->loop_calls;
    sh->cpu_us_per_call[proc] = (cpu_us(&ru1) - cpu_us(&ru0)) /
                                (double)o->loop_calls;
    sh->failed[proc] = failed;
    gr_e2e_worker_close(w);
    gr_e2e_proc_close(p);
    return 0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void
save_stats(const struct gr_e2e_opts *o, const char *out, const char *tag)
{
    char url[600], file[600];

    snprintf(url, sizeof(url), "%s/mock/stats", o->url);
    snprintf(file, sizeof(file), "%s.%s.json", out, tag);
    if (gr_e2e_get(url, file) != 0)
        fprintf(stderr, "gr-bench-e2e: GET %s failed\n", url);
}

/* Wait for the processes; stop them at t0 + run_s.  Saves the mid-run
 * stats at t0 + offer_s. */
static void
supervise(const struct gr_e2e_opts *o, struct shared *sh, pid_t *pids,
          const char *out)
{
    int64_t mid = sh->t0_ns + (int64_t)(o->offer_s * 1e9);
    int64_t stop = sh->t0_ns + (int64_t)(o->run_s * 1e9);
    unsigned left = o->procs, k;
    int saved = 0, st;

    while (left > 0) {
        int64_t now = gr_e2e_now_ns();

        if (!saved && out != NULL && now >= mid) {
            save_stats(o, out, "stats-mid");
            saved = 1;
        }
        for (k = 0; k < o->procs; k++) {
            if (pids[k] > 0 && waitpid(pids[k], &st, WNOHANG) == pids[k]) {
                pids[k] = 0;
                left--;
            }
        }
        if (left > 0 && now >= stop) {
            for (k = 0; k < o->procs; k++)
                if (pids[k] > 0)
                    kill(pids[k], SIGKILL);
            for (k = 0; k < o->procs; k++)
                if (pids[k] > 0)
                    waitpid(pids[k], &st, 0);
            break;
        }
        if (left > 0)
            sleep_until(gr_e2e_now_ns() + 5000000);
    }
    if (!saved && out != NULL)
        save_stats(o, out, "stats-mid");
}

static int
report_offered(const struct gr_e2e_opts *o, struct shared *sh,
               const char *out)
{
    char file[600];
    FILE *f;
    long i, ok = 0, done = 0, attempts = 0, n429 = 0;

    snprintf(file, sizeof(file), "%s.csv", out);
    f = fopen(file, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "offered_s,end_s,ok,status,attempts,n429\n");
    for (i = 0; i < o->calls; i++) {
        struct gr_e2e_rec *r = &sh->rec[i];
        /* acquire: pairs with the worker's release of end_ns */
        int64_t end = __atomic_load_n(&r->end_ns, __ATOMIC_ACQUIRE);

        fprintf(f, "%.6f,%.6f,%d,%d,%d,%d\n",
                (double)(r->offered_ns - sh->t0_ns) / 1e9,
                end > 0 ? (double)(end - sh->t0_ns) / 1e9 : -1.0,
                end > 0 && r->ok, r->status, r->attempts, r->n429);
        if (end > 0) {
            done++;
            ok += r->ok != 0;
        }
        attempts += r->attempts;
        n429 += r->n429;
    }
    fclose(f);
    save_stats(o, out, "stats");
    printf("{\"contender\": \"%s\", \"offered\": %ld, \"ok\": %ld, "
           "\"failed\": %ld, \"unfinished\": %ld, \"attempts\": %ld, "
           "\"client_429\": %ld, \"offer_s\": %.3f, \"run_s\": %.3f, "
           "\"procs\": %u, \"workers\": %u, \"window_ms\": %lld, "
           "\"limit\": %lld, \"projects\": %u}\n",
           o->contender, o->calls, ok, done - ok, o->calls - done, attempts,
           n429, o->offer_s, o->run_s, o->procs, o->workers,
           (long long)(o->window_ns / 1000000), (long long)o->limit,
           o->n_keys);
    return 0;
}

static int
report_loop(const struct gr_e2e_opts *o, struct shared *sh)
{
    double us[MAX_PROCS], cpu[MAX_PROCS], sum = 0;
    long failed = 0;
    unsigned k;

    for (k = 0; k < o->procs; k++) {
        us[k] = sh->us_per_call[k];
        cpu[k] = sh->cpu_us_per_call[k];
        sum += us[k];
        failed += sh->failed[k];
    }
    qsort(us, o->procs, sizeof(double), cmp_double);
    qsort(cpu, o->procs, sizeof(double), cmp_double);
    printf("{\"contender\": \"%s\", \"procs\": %u, \"calls\": %ld, "
           "\"us_per_call_median\": %.2f, \"us_per_call_mean\": %.2f, "
           "\"cpu_us_per_call_median\": %.2f, \"failed\": %ld}\n",
           o->contender, o->procs, o->loop_calls, us[o->procs / 2],
           sum / o->procs, cpu[o->procs / 2], failed);
    return failed == 0 && us[0] > 0 ? 0 : 1;
}

static void
parse_keys(struct gr_e2e_opts *o, const char *list)
{
    const char *p = list;

    o->n_keys = 0;
    while (*p != '\0' && o->n_keys < GR_E2E_MAX_KEYS) {
        size_t n = strcspn(p, ",");

        if (n >= GR_E2E_KEY_MAX)
            n = GR_E2E_KEY_MAX - 1;
        memcpy(o->keys[o->n_keys], p, n);
        o->keys[o->n_keys][n] = '\0';
        o->n_keys++;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
}

static void
usage(void)
{
    fputs("usage: gr-bench-e2e --contender gemroute|direct|roundrobin|"
          "bucket|curl\n"
          "         --url URL [--shm NAME] --keys K1,K2,... [--model M]\n"
          "         [--body JSON] [--procs P] [--workers T] "
          "--window-ms W --limit L\n"
          "         (--calls N --offer-s S --run-s R --out PREFIX | "
          "--loop-calls N)\n", stderr);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"contender", required_argument, NULL, 'c'},
        {"url", required_argument, NULL, 'u'},
        {"shm", required_argument, NULL, 's'},
        {"keys", required_argument, NULL, 'k'},
        {"model", required_argument, NULL, 'm'},
        {"body", required_argument, NULL, 'b'},
        {"procs", required_argument, NULL, 'p'},
        {"workers", required_argument, NULL, 'w'},
        {"calls", required_argument, NULL, 'n'},
        {"offer-s", required_argument, NULL, 'O'},
        {"run-s", required_argument, NULL, 'R'},
        {"window-ms", required_argument, NULL, 'W'},
        {"limit", required_argument, NULL, 'L'},
        {"loop-calls", required_argument, NULL, 'l'},
        {"out", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0},
    };
    struct gr_e2e_opts o = {
        .contender = "gemroute",
        .model = "gemini-2.5-flash",
        .body = "{\"contents\":[{\"parts\":[{\"text\":\"Write one short "
                "sentence about the sea.\"}]}]}",
        .procs = 16,
        .workers = 32,
        .window_ns = INT64_C(60000000000),
        .limit = 1000,
    };
    const char *out = NULL;
    pid_t pids[MAX_PROCS];
    struct shared *sh;
    size_t size;
    unsigned k;
    long i;
    int c, st, rc = 0;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.contender = optarg; break;
        case 'u': o.url = optarg; break;
        case 's': o.shm = optarg; break;
        case 'k': parse_keys(&o, optarg); break;
        case 'm': o.model = optarg; break;
        case 'b': o.body = optarg; break;
        case 'p': o.procs = (unsigned)atoi(optarg); break;
        case 'w': o.workers = (unsigned)atoi(optarg); break;
        case 'n': o.calls = atol(optarg); break;
        case 'O': o.offer_s = atof(optarg); break;
        case 'R': o.run_s = atof(optarg); break;
        case 'W': o.window_ns = atoll(optarg) * 1000000; break;
        case 'L': o.limit = atoll(optarg); break;
        case 'l': o.loop_calls = atol(optarg); break;
        case 'o': out = optarg; break;
        default:
            usage();
            return 2;
        }
    }
    if (o.procs < 1 || o.procs > MAX_PROCS || o.workers < 1 ||
        o.workers > MAX_WORKERS || o.window_ns <= 0 || o.limit < 1 ||
        (o.loop_calls <= 0 && (o.calls < 1 || o.offer_s <= 0 ||
                               o.run_s < o.offer_s || out == NULL))) {
        usage();
        return 2;
    }
    size = sizeof(*sh) + (size_t)(o.loop_calls > 0 ? 0 : o.calls) *
                             sizeof(struct gr_e2e_rec);
    sh = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
              -1, 0);
    if (sh == MAP_FAILED)
        return 1;
    sh->t0_ns = gr_e2e_now_ns() + START_DELAY_NS;
    for (i = 0; o.loop_calls <= 0 && i < o.calls; i++)
        sh->rec[i].offered_ns = sh->t0_ns +
                                (int64_t)((double)i * o.offer_s * 1e9 /
                                          (double)o.calls);
    fflush(stdout);
    for (k = 0; k < o.procs; k++) {
        pids[k] = fork();
        if (pids[k] < 0)
            return 1;
        if (pids[k] == 0)
            _exit(o.loop_calls > 0 ? loop_proc(&o, sh, k)
                                   : offered_proc(&o, sh, k));
    }
    if (o.loop_calls > 0) {
        for (k = 0; k < o.procs; k++)
            if (waitpid(pids[k], &st, 0) < 0 || !WIFEXITED(st) ||
                WEXITSTATUS(st) != 0)
                rc = 1;
        return report_loop(&o, sh) != 0 ? 1 : rc;
    }
    supervise(&o, sh, pids, out);
    return report_offered(&o, sh, out);
}
