/*
 * stress_reload.c - hot reload (issue 5) against a real router process.
 *
 * "reload under load": 16 client processes reserve, settle and report
 * continuously through the public API while the config file is replaced
 * 50 times (renamed over, so inotify must see it; every fifth change is
 * followed by a SIGHUP as well): keys rotate every time, two projects'
 * limits change every time, six projects come and go, a second model
 * appears.  The run stays below saturation, so any refusal is a failure.
 * Afterwards the logs are checked:
 *
 *   - no reservation failed (GR_ENOMODEL is allowed for the second model
 *     only while no config in force had it);
 *   - projects that stayed kept their slot and generation, their counts
 *     never went down, and at the end `admitted` equals the admissions
 *     logged and `ok` the reports made: nothing was reset or lost;
 *   - over-admission, exactly: the checker of stress_admission
 *     (checker.c) replays the projects whose limits never change; and an
 *     epoch-aware replay checks every cell incarnation, each admission
 *     against the highest limit among the configs that may have been in
 *     force while it was being made (a limit change takes effect at the
 *     next reservation, and one made during the change may see either);
 *   - a removed project takes nothing once the reload that removed it
 *     has completed; a lease carries a key of a config in force while it
 *     was taken (a rotated key is used by the next lease);
 *   - no report lands on a reused slot: every live slot's `ok` equals the
 *     reports made with a lease of its current generation.
 *
 * Which config was in force when is known from generations: the test
 * waits for each change to be applied (exactly one generation, base_url
 * naming the change) before the next, and a record notes the generation
 * before and after its reservation.
 *
 * The "reload" suite covers the rest of the issue one case at a time:
 * a bad file of each class keeps the running config and is recorded with
 * its first FILE:LINE error; rename-replace, in-place writes, editors'
 * rename-away, touch, included files and a Kubernetes-style symlink swap
 * are all seen; a geometry change is refused; a late report for a
 * removed project whose slot was given to another changes nothing.
 *
 * --threads runs the load test with its clients as threads of one process,
 * so that ThreadSanitizer (make check) sees the client library under
 * reloads; the router stays a process of its own.
 *
 * Nothing is timed: every wait polls, and the alarm() watchdog bounds it.
 */
#include "checker.h"
#include "clock.h"
#include "gemroute.h"
#include "seqlock.h"
#include "table.h"
#include "testlib.h"
#include "testrouter.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WINDOW_MS 1000
#define NCLIENTS 16
#define NM2 4                   /* clients of the second model */
#define NREWRITES 50
#define NSTAY 4
#define NVARY 2
#define NFLUX 6
#define NNAMES (NSTAY + NVARY + NFLUX)
#define MAX_PROJECTS 16
#define MAX_MODELS 2
#define M2_FROM 10              /* the rewrite that adds the second model */
#define RPM 1000
#define TPM 100000
#define FLUX_RPM 60             /* small: the coming and going projects */
#define FLUX_TPM 6000           /* fill up, so their windows matter */
#define MAX_TOKENS 100
#define LOG_CAP (1u << 19)
#define FAIL_CAP 16384
#define GEN_CAP 1024
#define RGEN_CAP 512            /* project generations tallied */

static const char *const models[MAX_MODELS] = {"gemini-a", "gemini-b"};
static const int64_t vary_rpm[] = {40, 120, 300, 900};
static const int64_t vary_tpm[] = {2000, 8000, 30000, 90000};

static const char *bin_dir;
static char tmpdir[64];
static char names[NNAMES][16];

/* ---- small helpers ----------------------------------------------------- */

static int64_t
now_ns(void)
{
    return gr_shm_now_mono();
}

static void
sleep_ms(int64_t ms)
{
    gr_test_sleep_ns(ms * 1000000);
}

/* Write path by writing path.tmp and renaming it over: what editors and
 * deployment tools do, and what the watcher must see. */
static void
put_file(const char *path, const char *text)
{
    char tmp[300];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    CU_ASSERT_FATAL(fclose(f) == 0);
    chmod(tmp, 0600);
    CU_ASSERT_FATAL(rename(tmp, path) == 0);
}

static pid_t
start_router(const char *conf, const char *shm, const char *logname)
{
    char logf[256];

    snprintf(logf, sizeof(logf), "%s/%s", tmpdir, logname);
    return gr_test_router_start(conf, shm, logf);
}

static void
stop_router(pid_t pid)
{
    gr_test_router_stop(pid);
}

static uint64_t
generation(const struct gr_shm *t)
{
    /* acquire: pairs with the router's release at the end of an apply */
    return atomic_load_explicit(&t->hdr->config_generation,
                                memory_order_acquire);
}

static uint32_t
failures(const struct gr_shm *t)
{
    /* acquire: pairs with the router's release of the count */
    return atomic_load_explicit(&t->hdr->reloads_failed,
                                memory_order_acquire);
}

/* Under the header's text seqlock: the last reload error and URL. */
struct text_copy {
    const struct gr_shm *t;
    char *err, *url;
};

static void
text_copy(void *arg)
{
    struct text_copy *tc = arg;

    gr_shm_seq_copy_out(tc->err, tc->t->hdr->last_reload_error,
                        GR_SHM_ERR_MAX);
    gr_shm_seq_copy_out(tc->url, tc->t->hdr->base_url, GR_SHM_URL_MAX);
}

/* err and url of the header; "(torn)" for both when no clean copy could
 * be read for a second, which the callers' comparisons then fail on.
 * (One bounded read may see the router descheduled mid-write on a busy
 * machine, ThreadSanitizer's above all: the test waits, as a reader that
 * needs the answer does.) */
static void
header_text(const struct gr_shm *t, char *err, char *url)
{
    struct text_copy tc = {t, err, url};
    int waits = 0;
    bool ok;

    while (!(ok = gr_shm_seq_read(&t->hdr->text_seq, text_copy, &tc)) &&
           waits++ < 1000)
        sleep_ms(1);
    if (!ok) {
        snprintf(err, GR_SHM_ERR_MAX, "(torn)");
        snprintf(url, GR_SHM_URL_MAX, "(torn)");
    }
    err[GR_SHM_ERR_MAX - 1] = '\0';
    url[GR_SHM_URL_MAX - 1] = '\0';
}

/* Wait for the generation to leave g or for a failure to be recorded
 * after f; returns true for a new generation. */
static bool
wait_reload(const struct gr_shm *t, uint64_t g, uint32_t f)
{
    while (generation(t) == g && failures(t) == f)
        sleep_ms(1);
    return generation(t) != g;
}

/* Under a project's seqlock: its name. */
struct name_copy {
    const struct gr_shm_project *p;
    char name[GR_SHM_NAME_MAX];
};

static void
name_copy(void *arg)
{
    struct name_copy *nc = arg;

    gr_shm_seq_copy_out(nc->name, nc->p->name, sizeof(nc->name));
}

/* The slot of project name (active or draining), or -1. */
static int
slot_of(const struct gr_shm *t, const char *name)
{
    uint32_t i;

    for (i = 0; i < t->max_projects; i++) {
        struct name_copy nc = {&t->projects[i], ""};
        uint32_t st = atomic_load_explicit(&nc.p->state,
                                           memory_order_acquire);

        if (st == GR_PROJ_FREE)
            continue;
        /* a torn name (the router mid-write) matches nothing */
        if (!gr_shm_seq_read(&nc.p->seq, name_copy, &nc))
            continue;
        nc.name[GR_SHM_NAME_MAX - 1] = '\0';
        if (strcmp(nc.name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* ---- reload under load ------------------------------------------------- */

/* What one config of the run holds. */
struct content {
    bool flux[NFLUX];
    bool m2;
    int64_t rpm[NVARY], tpm[NVARY];
};

/* What a record adds to the checker's: the reservation's context. */
struct xrec {
    int64_t t0;                 /* before gr_reserve */
    uint64_t gen0, gen1;        /* config generation before and after */
    int32_t name;               /* index in names[], -1 unknown */
    int32_t key_epoch;          /* content the key belongs to; -1 bad */
    uint32_t model;
    uint32_t project_gen;
};

struct failure {
    int rc;
    uint32_t model;
    uint64_t gen0, gen1;
    int64_t t0, t1;
};

/* Shared by the driver and the clients. */
struct shared {
    _Atomic int stop;
    _Atomic uint64_t nfail;
    struct failure fail[FAIL_CAP];
    _Atomic uint64_t report_overflow;
    /* reports made, by cell and project generation */
    _Atomic uint64_t reports[MAX_PROJECTS * MAX_MODELS][RGEN_CAP];
};

static struct content contents[NREWRITES + 1];
static int64_t t_write[NREWRITES + 2];
static int lo_at[GEN_CAP], hi_at[GEN_CAP];

static char conf_path[256];
static char load_shm[64];
static bool threads_mode;       /* --threads: the clients are threads */
static struct gr_reclog *rlog;
static struct xrec *xr;
static struct shared *sh;

static int
name_index(const char *s)
{
    int i;

    for (i = 0; i < NNAMES; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static bool
present(int e, int name)
{
    if (name < 0)
        return false;
    if (name < NSTAY + NVARY)
        return true;
    return contents[e].flux[name - NSTAY - NVARY];
}

/* Effective limit (x 0.95, as apply.c computes it) of name on model m
 * under content e, dimension w (0 rpm, 1 tpm); -1 = unlimited. */
static int64_t
eff_limit(int e, int name, unsigned m, unsigned w)
{
    int64_t raw;

    if (m == 1 && !contents[e].m2)
        return 0;
    if (name >= NSTAY && name < NSTAY + NVARY)
        raw = w == 0 ? contents[e].rpm[name - NSTAY]
                     : contents[e].tpm[name - NSTAY];
    else if (name >= NSTAY + NVARY)
        raw = w == 0 ? FLUX_RPM : FLUX_TPM;
    else
        raw = w == 0 ? RPM : TPM;
    return (int64_t)floor((double)raw * 0.95);
}

static void
make_contents(void)
{
    uint64_t s = 0xc0ffee;
    int e, i;

    for (e = 0; e <= NREWRITES; e++) {
        struct content *c = &contents[e];

        c->m2 = e >= M2_FROM;
        for (i = 0; i < NFLUX; i++)
            c->flux[i] = e == 0 ? i < NFLUX / 2 : gr_test_rand(&s) % 2 == 0;
        for (i = 0; i < NVARY; i++) {
            c->rpm[i] = vary_rpm[gr_test_rand(&s) % 4];
            c->tpm[i] = vary_tpm[gr_test_rand(&s) % 4];
        }
    }
}

static void
write_content(int e)
{
    const struct content *c = &contents[e];
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int i, m, nm = c->m2 ? 2 : 1;

    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "router = { shm = \"%s\"; window_ms = %d; headroom = 0.95; "
            "max_projects = %d; max_models = %d; max_leases = 1024;\n"
            "  base_url = \"http://epoch-%02d.invalid\"; };\nmodels = (\n",
            load_shm, WINDOW_MS, MAX_PROJECTS, MAX_MODELS, e);
    for (m = 0; m < nm; m++)
        fprintf(f, "  { name = \"%s\"; rpm = %d; tpm = %d; }%s\n",
                models[m], RPM, TPM, m + 1 < nm ? "," : "");
    fputs(");\nprojects = (\n", f);
    for (i = 0; i < NNAMES; i++) {
        if (!present(e, i))
            continue;
        fprintf(f, "%s  { name = \"%s\"; keys = [\"SECRET-k%02d-%s-a\", "
                "\"SECRET-k%02d-%s-b\"];", i ? ",\n" : "", names[i], e,
                names[i], e, names[i]);
        if (i >= NSTAY) {
            bool vary = i < NSTAY + NVARY;

            fputs(" limits = (", f);
            for (m = 0; m < nm; m++)
                fprintf(f, "%s { model = \"%s\"; rpm = %lld; tpm = %lld; }",
                        m ? "," : "", models[m],
                        (long long)(vary ? c->rpm[i - NSTAY] : FLUX_RPM),
                        (long long)(vary ? c->tpm[i - NSTAY] : FLUX_TPM));
            fputs(" );", f);
        }
        fputs(" }", f);
    }
    fputs("\n);\n", f);
    fclose(f);
    put_file(conf_path, buf);
    free(buf);
}

/* "SECRET-kEE-NAME-a": the content EE, if NAME is the lease's
 * project.  (Every test key holds SECRET: tests/run.sh fails if one is
 * ever printed.) */
static int
key_epoch(const char *key, const char *project)
{
    int e;
    char name[GR_NAME_MAX];

    if (sscanf(key, "SECRET-k%2d-%63[a-z0-9-]", &e, name) != 2)
        return -1;
    /* name ends with "-a" or "-b" */
    if (strlen(name) < 3 || strncmp(name, project, strlen(name) - 2) != 0 ||
        strlen(project) != strlen(name) - 2)
        return -1;
    return e;
}

/* One client's loop until the driver says stop: 0, or 3 when it could
 * not open the table.  A process (fork) or a thread (--threads). */
static int
client_run(unsigned idx)
{
    char err[256];
    struct gr *g = gr_open(load_shm, err, sizeof(err));
    struct gr_shm t;
    unsigned model = idx < NCLIENTS - NM2 ? 0 : 1;
    uint64_t s = (uint64_t)getpid() * 0x9e3779b97f4a7c15u + idx;
    struct gr_verdict ok;

    if (g == NULL || gr_shm_attach(load_shm, false, &t, err, sizeof(err))) {
        gr_close(g);
        return 3;
    }
    memset(&ok, 0, sizeof(ok));
    ok.status = 200;
    ok.cls = GR_CLASS_OK;
    for (unsigned d = 0; d < GR_NDIMS; d++)
        ok.learned[d] = -1;
    s |= 1;
    while (!atomic_load_explicit(&sh->stop, memory_order_acquire)) {
        int64_t tokens = 1 + (int64_t)(gr_test_rand(&s) % MAX_TOKENS);
        struct gr_cost cost = {1, tokens, 0};
        struct gr_lease lease;
        struct gr_usage use;
        struct gr_rec *rec;
        struct xrec *x;
        uint64_t g0 = generation(&t), g1;
        int64_t t0 = now_ns(), t1, hold;
        int rc = gr_reserve(g, models[model], &cost, 0, &lease);

        t1 = now_ns();
        g1 = generation(&t);
        if (rc != GR_OK) {
            /* relaxed: a slot index; the driver reads after waitpid */
            uint64_t n = atomic_fetch_add_explicit(&sh->nfail, 1,
                                                   memory_order_relaxed);

            if (n < FAIL_CAP)
                sh->fail[n] = (struct failure){rc, model, g0, g1, t0, t1};
            sleep_ms(rc == GR_ENOMODEL ? 20 : 2);
            continue;
        }
        rec = gr_reclog_add(rlog);
        if (rec != NULL) {
            x = &xr[rec - rlog->r];
            rec->cell = lease.cell;
            rec->pid = (int32_t)getpid();
            rec->a_ns = t1;
            rec->cost[0] = cost.requests;
            rec->cost[1] = cost.tokens;
            rec->cost[2] = cost.images;
            x->t0 = t0;
            x->gen0 = g0;
            x->gen1 = g1;
            x->name = name_index(lease.project);
            x->key_epoch = key_epoch(lease.key, lease.project);
            x->model = model;
            x->project_gen = lease.project_gen;
            /* release: the fields are written before the state */
            atomic_store_explicit(&rec->state, GR_REC_ADMITTED,
                                  memory_order_release);
        }
        hold = (int64_t)(gr_test_rand(&s) % 2000000);
        if (hold > 0) {
            struct timespec ts = {0, (long)hold};

            nanosleep(&ts, NULL);
        }
        use.first_byte_ns = t1 + (int64_t)(gr_test_rand(&s) %
                                           (uint64_t)(now_ns() - t1 + 1));
        use.tokens = cost.tokens - (int64_t)(gr_test_rand(&s) %
                                             (uint64_t)(cost.tokens / 2 + 1));
        use.images = -1;
        if (rec != NULL) {
            rec->s_ns = use.first_byte_ns;
            rec->c_ns = now_ns();
            rec->actual[0] = -1;
            rec->actual[1] = use.tokens;
            rec->actual[2] = -1;
            atomic_store_explicit(&rec->state, GR_REC_SETTLED,
                                  memory_order_release);
        }
        gr_commit(g, &lease, &use);
        gr_report(g, &lease, &ok);
        if (lease.cell < MAX_PROJECTS * MAX_MODELS &&
            lease.project_gen < RGEN_CAP)
            /* relaxed: read after the clients exited */
            atomic_fetch_add_explicit(
                &sh->reports[lease.cell][lease.project_gen], 1,
                memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&sh->report_overflow, 1,
                                      memory_order_relaxed);
        sleep_ms(2 + (int64_t)(gr_test_rand(&s) % 5));
    }
    gr_shm_detach(&t);
    gr_close(g);
    return 0;
}

static void *
client_thread(void *arg)
{
    return (void *)(intptr_t)client_run((unsigned)(uintptr_t)arg);
}

/* The contents that may have been in force during a reservation. */
static void
window_of(uint64_t gen0, uint64_t gen1, int64_t t1, int *lo, int *hi)
{
    if (gen0 >= GEN_CAP)
        gen0 = GEN_CAP - 1;
    if (gen1 >= GEN_CAP)
        gen1 = GEN_CAP - 1;
    *lo = lo_at[gen0];
    *hi = hi_at[gen1];
    /* The next change may have been being applied already. */
    if (*hi < NREWRITES && t1 >= t_write[*hi + 1])
        (*hi)++;
}

/* Counters of the projects that stay, by (project, model). */
struct counts {
    uint64_t admitted, ok;
};

static void
read_counts(const struct gr_shm *t, const int *slots,
            struct counts c[NSTAY + NVARY][MAX_MODELS])
{
    int i;
    unsigned m;

    for (i = 0; i < NSTAY + NVARY; i++) {
        for (m = 0; m < MAX_MODELS; m++) {
            struct gr_shm_cell *cell = gr_shm_cell(t, (uint32_t)slots[i], m);

            c[i][m].admitted = atomic_load_explicit(&cell->admitted,
                                                    memory_order_relaxed);
            c[i][m].ok = atomic_load_explicit(&cell->ok,
                                              memory_order_relaxed);
        }
    }
}

struct event {
    int64_t at;
    int64_t delta;
    int64_t rec;                /* admission: the record; else -1 */
};

static int
by_time(const void *a, const void *b)
{
    const struct event *x = a, *y = b;

    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    /* a release at t comes before an admission at t (as checker.c) */
    return (x->delta > y->delta) - (x->delta < y->delta);
}

/*
 * The epoch-aware replay: for every cell incarnation (cell, project
 * generation) and both window dimensions, each admission must find the
 * occupancy at most the highest effective limit among the contents that
 * may have been in force while it was made.  Returns the violations.
 *
 * by_name replays by (project name, model) instead: Google's view, in
 * which a project removed and added again is the same project whose
 * earlier calls still count.
 */
static uint64_t
epoch_replay(uint64_t n, bool by_name, double *worst_ratio)
{
    struct event *ev = malloc((n * 3 + 1) * sizeof(*ev));
    bool *seen = calloc(n + 1, sizeof(*seen));
    uint64_t i, j, bad = 0;

    CU_ASSERT_FATAL(ev != NULL && seen != NULL);
    *worst_ratio = 0;
    for (i = 0; i < n; i++) {
        uint32_t cell = rlog->r[i].cell, pgen = xr[i].project_gen;
        int32_t name = xr[i].name;
        uint32_t model = xr[i].model;

        if (seen[i])
            continue;
        for (unsigned w = 0; w < 2; w++) {
            size_t ne = 0;
            int64_t occ = 0;

            for (j = i; j < n; j++) {
                const struct gr_rec *r = &rlog->r[j];
                int64_t act;

                if (by_name ? xr[j].name != name || xr[j].model != model
                            : r->cell != cell || xr[j].project_gen != pgen)
                    continue;
                seen[j] = true;
                ev[ne++] = (struct event){r->a_ns, r->cost[w], (int64_t)j};
                act = r->actual[w] >= 0 && r->actual[w] < r->cost[w]
                          ? r->actual[w] : r->cost[w];
                if (act < r->cost[w])
                    ev[ne++] = (struct event){r->c_ns, act - r->cost[w], -1};
                ev[ne++] = (struct event){r->s_ns + WINDOW_MS * 1000000LL,
                                          -act, -1};
            }
            qsort(ev, ne, sizeof(*ev), by_time);
            for (j = 0; j < ne; j++) {
                const struct xrec *x;
                int64_t allowed = -2;
                int lo, hi, e;

                occ += ev[j].delta;
                if (ev[j].rec < 0)
                    continue;
                x = &xr[ev[j].rec];
                window_of(x->gen0, x->gen1, rlog->r[ev[j].rec].a_ns, &lo,
                          &hi);
                for (e = lo; e <= hi; e++) {
                    int64_t l;

                    if (!present(e, x->name))
                        continue;
                    l = eff_limit(e, x->name, x->model, w);
                    if (l < 0 || l > allowed)
                        allowed = l < 0 ? INT64_MAX : l;
                }
                if (allowed == -2 || allowed == INT64_MAX)
                    continue;   /* absent: the presence check reports it */
                if (allowed > 0 && (double)occ / (double)allowed >
                                       *worst_ratio)
                    *worst_ratio = (double)occ / (double)allowed;
                if (occ > allowed) {
                    if (bad < 5 && !by_name)
                        fprintf(stderr, "replay: %s/%s dim %u occupancy "
                                "%lld > %lld (contents %d..%d)\n",
                                names[x->name], models[x->model], w,
                                (long long)occ, (long long)allowed, lo, hi);
                    bad++;
                }
            }
        }
    }
    free(ev);
    free(seen);
    return bad;
}

static void
test_reload_under_load(void)
{
    struct counts before[NSTAY + NVARY][MAX_MODELS];
    struct counts now[NSTAY + NVARY][MAX_MODELS];
    int stay_slot[NSTAY + NVARY];
    uint32_t stay_gen[NSTAY + NVARY];
    pid_t router, pids[NCLIENTS];
    pthread_t th[NCLIENTS];
    struct gr_shm t;
    char err[GR_SHM_ERR_MAX], url[GR_SHM_URL_MAX], want[64];
    uint64_t g, g_init, n, i, nfail, bad_presence = 0, bad_key = 0;
    uint64_t bad_fail = 0, bad_counts = 0, bad_ok = 0, viol;
    uint64_t s = 0x5eed;
    struct gr_reclog *fixed;
    struct gr_rec *r;
    struct gr_check_result res;
    int64_t lim[3] = {(int64_t)floor(RPM * 0.95),
                      (int64_t)floor(TPM * 0.95), -1};
    double worst, worst_by_name;
    uint64_t readded;
    int32_t *gen_name;
    int k, st, rc;
    unsigned c, m;

    make_contents();
    snprintf(load_shm, sizeof(load_shm), "/grreload-%d", (int)getpid());
    snprintf(conf_path, sizeof(conf_path), "%s/load.conf", tmpdir);
    rlog = gr_reclog_new(LOG_CAP);
    xr = mmap(NULL, LOG_CAP * sizeof(*xr), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(rlog != NULL && xr != MAP_FAILED && sh != MAP_FAILED);

    write_content(0);
    t_write[0] = now_ns();
    router = start_router(conf_path, load_shm, "load.log");
    CU_ASSERT_FATAL(router > 0);
    CU_ASSERT_FATAL(gr_shm_attach(load_shm, false, &t, err,
                                  sizeof(err)) == 0);
    g_init = generation(&t);
    for (g = 0; g <= g_init && g < GEN_CAP; g++)
        lo_at[g] = hi_at[g] = 0;
    for (k = 0; k < NSTAY + NVARY; k++) {
        stay_slot[k] = slot_of(&t, names[k]);
        CU_ASSERT_FATAL(stay_slot[k] >= 0);
        stay_gen[k] = atomic_load(&t.projects[stay_slot[k]].generation);
    }
    read_counts(&t, stay_slot, before);

    for (c = 0; c < NCLIENTS; c++) {
        if (threads_mode) {
            CU_ASSERT_FATAL(pthread_create(&th[c], NULL, client_thread,
                                           (void *)(uintptr_t)c) == 0);
            continue;
        }
        pids[c] = fork();
        if (pids[c] == 0)
            _exit(client_run(c));
    }
    /* Let the clients start before the first change (polled). */
    while (atomic_load(&rlog->n) < 2000)
        sleep_ms(5);

    g = g_init;
    for (k = 1; k <= NREWRITES; k++) {
        uint32_t f0 = failures(&t);
        uint64_t g1;

        t_write[k] = now_ns();
        write_content(k);
        CU_ASSERT_FATAL(wait_reload(&t, g, f0));
        g1 = generation(&t);
        header_text(&t, err, url);
        snprintf(want, sizeof(want), "http://epoch-%02d.invalid", k);
        /* Exactly one apply per change, and of this change. */
        CU_ASSERT_EQUAL(g1, g + 1);
        CU_ASSERT_STRING_EQUAL(url, want);
        CU_ASSERT_FATAL(g1 < GEN_CAP);
        lo_at[g1] = hi_at[g1] = k;
        g = g1;
        if (k % 5 == 0) {       /* and a SIGHUP: the same content again */
            f0 = failures(&t);
            kill(router, SIGHUP);
            CU_ASSERT_FATAL(wait_reload(&t, g, f0));
            g1 = generation(&t);
            CU_ASSERT_EQUAL(g1, g + 1);
            CU_ASSERT_FATAL(g1 < GEN_CAP);
            lo_at[g1] = hi_at[g1] = k;
            g = g1;
        }
        /* Counters of the projects that stay only ever grow. */
        read_counts(&t, stay_slot, now);
        for (c = 0; c < NSTAY + NVARY; c++)
            for (m = 0; m < MAX_MODELS; m++) {
                CU_ASSERT(now[c][m].admitted >= before[c][m].admitted);
                CU_ASSERT(now[c][m].ok >= before[c][m].ok);
                before[c][m] = now[c][m];
            }
        sleep_ms(30 + (int64_t)(gr_test_rand(&s) % 90));
    }
    atomic_store_explicit(&sh->stop, 1, memory_order_release);
    for (c = 0; c < NCLIENTS; c++) {
        if (threads_mode) {
            void *ret = NULL;

            CU_ASSERT(pthread_join(th[c], &ret) == 0 && ret == NULL);
            continue;
        }
        waitpid(pids[c], &st, 0);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    CU_ASSERT_EQUAL(generation(&t), g);     /* no reload of its own */
    CU_ASSERT_EQUAL(failures(&t), 0);

    n = atomic_load(&rlog->n);
    CU_ASSERT_FATAL(n <= rlog->cap);

    /* No reservation failed. */
    nfail = atomic_load(&sh->nfail);
    for (i = 0; i < nfail && i < FAIL_CAP; i++) {
        const struct failure *fl = &sh->fail[i];
        int lo, hi;

        window_of(fl->gen0, fl->gen1, fl->t1, &lo, &hi);
        if (fl->rc == GR_ENOMODEL && fl->model == 1 && lo < M2_FROM)
            continue;
        if (bad_fail++ < 5)
            fprintf(stderr, "reservation failed: rc %d model %s, contents "
                    "%d..%d\n", fl->rc, models[fl->model], lo, hi);
    }
    CU_ASSERT(nfail < FAIL_CAP);
    CU_ASSERT_EQUAL(bad_fail, 0);

    /* Removed projects take nothing; keys are those of a config in force. */
    for (i = 0; i < n; i++) {
        const struct xrec *x = &xr[i];
        bool there = false, key_ok;
        int lo, hi, e;

        window_of(x->gen0, x->gen1, rlog->r[i].a_ns, &lo, &hi);
        for (e = lo; e <= hi; e++)
            there |= present(e, x->name);
        key_ok = x->key_epoch >= lo && x->key_epoch <= hi;
        if (!there && bad_presence++ < 5)
            fprintf(stderr, "project %s admitted while removed (contents "
                    "%d..%d)\n", x->name >= 0 ? names[x->name] : "?", lo,
                    hi);
        if (!key_ok && bad_key++ < 5)
            fprintf(stderr, "a lease of %s carried the key of content %d "
                    "(contents %d..%d in force)\n",
                    x->name >= 0 ? names[x->name] : "?", x->key_epoch, lo,
                    hi);
    }
    CU_ASSERT_EQUAL(bad_presence, 0);
    CU_ASSERT_EQUAL(bad_key, 0);

    /* The projects that stayed: same slot and generation, and counts that
     * match the logs exactly. */
    read_counts(&t, stay_slot, now);
    for (k = 0; k < NSTAY + NVARY; k++) {
        CU_ASSERT_EQUAL(slot_of(&t, names[k]), stay_slot[k]);
        CU_ASSERT_EQUAL(atomic_load(&t.projects[stay_slot[k]].generation),
                        stay_gen[k]);
        for (m = 0; m < MAX_MODELS; m++) {
            uint64_t logged = 0;
            uint32_t cell = (uint32_t)stay_slot[k] * MAX_MODELS + m;

            for (i = 0; i < n; i++)
                logged += rlog->r[i].cell == cell;
            if (now[k][m].admitted != logged ||
                now[k][m].ok != sh->reports[cell][stay_gen[k]]) {
                if (bad_counts++ < 5)
                    fprintf(stderr, "%s/%s: admitted %llu, logged %llu; "
                            "ok %llu, reported %llu\n", names[k], models[m],
                            (unsigned long long)now[k][m].admitted,
                            (unsigned long long)logged,
                            (unsigned long long)now[k][m].ok,
                            (unsigned long long)
                                sh->reports[cell][stay_gen[k]]);
            }
        }
    }
    CU_ASSERT_EQUAL(bad_counts, 0);

    /* No report landed on a reused slot: every live slot's ok is exactly
     * the reports made for the project in it now.  A project removed and
     * added back takes its old slot as it was (Google still counts what
     * it spent), so its earlier generations count too, back to the
     * first generation of the slot that belonged to another project. */
    CU_ASSERT_EQUAL(atomic_load(&sh->report_overflow), 0);
    gen_name = malloc(sizeof(*gen_name) * MAX_PROJECTS * MAX_MODELS *
                      RGEN_CAP);
    CU_ASSERT_FATAL(gen_name != NULL);
    for (i = 0; i < (uint64_t)MAX_PROJECTS * MAX_MODELS * RGEN_CAP; i++)
        gen_name[i] = -1;
    for (i = 0; i < n; i++)
        if (xr[i].project_gen < RGEN_CAP &&
            rlog->r[i].cell < MAX_PROJECTS * MAX_MODELS)
            gen_name[rlog->r[i].cell / MAX_MODELS * RGEN_CAP +
                     xr[i].project_gen] = xr[i].name;
    for (k = 0; k < MAX_PROJECTS; k++) {
        uint32_t pg = atomic_load(&t.projects[k].generation);

        if (atomic_load(&t.projects[k].state) != GR_PROJ_ACTIVE ||
            pg >= RGEN_CAP)
            continue;
        for (m = 0; m < MAX_MODELS; m++) {
            uint32_t cell = (uint32_t)k * MAX_MODELS + m;
            uint64_t ok = atomic_load(&gr_shm_cell(&t, (uint32_t)k,
                                                   m)->ok);
            uint64_t expect = sh->reports[cell][pg];
            int32_t who = gen_name[k * RGEN_CAP + pg];

            for (uint32_t gg = pg; gg-- > 0;) {
                int32_t was = gen_name[k * RGEN_CAP + gg];

                if (was >= 0 && who >= 0 && was != who)
                    break;      /* another project's: zeroed since */
                expect += sh->reports[cell][gg];
            }
            if (ok != expect && bad_ok++ < 5)
                fprintf(stderr, "slot %d model %u: ok %llu, reports with "
                        "generation %u and its project's earlier ones: "
                        "%llu\n", k, m, (unsigned long long)ok, pg,
                        (unsigned long long)expect);
        }
    }
    CU_ASSERT_EQUAL(bad_ok, 0);
    free(gen_name);

    /* Over-admission: the epoch-aware replay over every incarnation... */
    viol = epoch_replay(n, false, &worst);
    CU_ASSERT_EQUAL(viol, 0);
    /* Google's view: a project removed and added back is the same
     * project, whose earlier calls still count (it takes its old slot
     * back, counts and all). */
    readded = epoch_replay(n, true, &worst_by_name);
    CU_ASSERT_EQUAL(readded, 0);
    /* ...and checker.c over the projects whose limits never changed. */
    fixed = gr_reclog_new(n + 1);
    CU_ASSERT_FATAL(fixed != NULL);
    for (i = 0; i < n; i++) {
        int sl = -1;

        for (k = 0; k < NSTAY; k++)
            if (rlog->r[i].cell / MAX_MODELS == (uint32_t)stay_slot[k])
                sl = k;
        if (sl < 0)
            continue;
        r = gr_reclog_add(fixed);
        *r = rlog->r[i];
        r->cell = (uint32_t)sl * MAX_MODELS + rlog->r[i].cell % MAX_MODELS;
    }
    rc = gr_check(fixed, lim, WINDOW_MS * 1000000LL, NULL, 0, 0, 0,
                  NSTAY * MAX_MODELS, &res);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(res.violations, 0);
    printf("\n  %llu admissions over %d rewrites (+%d SIGHUPs), %llu "
           "refusals (%llu counted as failures); fixed-limit projects: max "
           "occupancy rpm %lld/%lld tpm %lld/%lld; all incarnations: "
           "highest occupancy %.0f%% of the limit in force\n"
           "  by project name (Google's view): %llu admissions "
           "over the limit, highest %.0f%%\n",
           (unsigned long long)n, NREWRITES, NREWRITES / 5,
           (unsigned long long)nfail, (unsigned long long)bad_fail,
           (long long)res.max_occupancy[0], (long long)lim[0],
           (long long)res.max_occupancy[1], (long long)lim[1], worst * 100,
           (unsigned long long)readded, worst_by_name * 100);
    gr_reclog_free(fixed);
    gr_shm_detach(&t);
    stop_router(router);
    munmap(sh, sizeof(*sh));
    munmap(xr, LOG_CAP * sizeof(*xr));
    gr_reclog_free(rlog);
}

/* ---- one case at a time --------------------------------------------- */

static char one_shm[64];
static char one_dir[128];

static void
one_path(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", one_dir, rel);
}

static void
one_put(const char *rel, const char *text)
{
    char p[256];

    one_path(p, sizeof(p), rel);
    put_file(p, text);
}

/* A config for the one-case tests; extra goes into the router group. */
static void
one_conf(char *out, size_t n, const char *extra, const char *projects)
{
    int k = snprintf(out, n, "router = { shm = \"%s\"; window_ms = 1000; "
                     "max_projects = 2; max_models = 2; max_leases = 64; "
                     "%s };\n@include \"inc/models.conf\"\nprojects = (\n"
                     "%s\n);\n", one_shm, extra, projects);

    CU_ASSERT_FATAL(k > 0 && (size_t)k < n);
}

static const char good_models[] =
    "models = ( { name = \"m\"; rpm = 100; tpm = 10000; } );\n";

static pid_t
one_start(const char *tag, struct gr_shm *t)
{
    char conf[256], logn[64], err[256];
    pid_t pid;

    snprintf(one_shm, sizeof(one_shm), "/grreload-%d-%s", (int)getpid(),
             tag);
    snprintf(one_dir, sizeof(one_dir), "%s/%s", tmpdir, tag);
    mkdir(one_dir, 0700);
    one_path(conf, sizeof(conf), "inc");
    mkdir(conf, 0700);
    one_path(conf, sizeof(conf), "keys");
    mkdir(conf, 0700);
    one_put("inc/models.conf", good_models);
    one_put("keys/p2.key", "file-SECRET-p2-0001\n");
    one_conf(conf, sizeof(conf), "",
             "  { name = \"p1\"; key = \"env:GR_RELOAD_TEST_KEY\"; },\n"
             "  { name = \"p2\"; key = \"file:keys/p2.key\"; }");
    one_put("r.conf", conf);
    one_path(conf, sizeof(conf), "r.conf");
    snprintf(logn, sizeof(logn), "%s.log", tag);
    pid = start_router(conf, one_shm, logn);
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_FATAL(gr_shm_attach(one_shm, false, t, err, sizeof(err)) ==
                    0);
    return pid;
}

/* Reserve within 5 s; on failure, say why before the assertion fails (a
 * failure seen only in CI is otherwise mute). */
static bool
reserve_5s(struct gr *g, const struct gr_cost *cost, struct gr_lease *l)
{
    int rc = gr_reserve(g, "m", cost, gr_now_ns() + 5 * GR_NS_PER_S, l);

    if (rc != GR_OK)
        fprintf(stderr, "\n  gr_reserve: %s: %s\n", gr_err_name(rc),
                gr_errstr(g));
    return rc == GR_OK;
}

/* A key of project name, taken through the API (the running config). */
static void
key_of(const char *name, char *out, size_t n)
{
    char err[256];
    struct gr *g = gr_open(one_shm, err, sizeof(err));
    struct gr_cost cost = {1, 1, 0};
    int tries;

    CU_ASSERT_FATAL(g != NULL);
    out[0] = '\0';
    for (tries = 0; tries < 1000 && out[0] == '\0'; tries++) {
        struct gr_lease l;

        CU_ASSERT_FATAL(reserve_5s(g, &cost, &l));
        if (strcmp(l.project, name) == 0)
            snprintf(out, n, "%s", l.key);
        gr_commit(g, &l, NULL);
    }
    gr_close(g);
}

struct bad {
    const char *what;
    const char *file;           /* r.conf or inc/models.conf */
    const char *text;
    const char *expect;         /* in the first error */
    bool line;                  /* the error starts FILE:LINE: */
};

static void
test_bad_files_keep_config(void)
{
    static const char p12[] =
        "  { name = \"p1\"; key = \"env:GR_RELOAD_TEST_KEY\"; },\n"
        "  { name = \"p2\"; key = \"file:keys/p2.key\"; }";
    char text[1024], good[1024], base[1024], key0[GR_KEY_MAX];
    char key1[GR_KEY_MAX];
    char err[GR_SHM_ERR_MAX], url[GR_SHM_URL_MAX];
    struct bad cases[16];
    unsigned nc = 0, i;
    struct gr_shm t;
    regex_t fileline;
    pid_t router;
    char *texts[16];

    setenv("GR_RELOAD_TEST_KEY", "env-SECRET-p1-0001", 1);
    router = one_start("bad", &t);
    key_of("p1", key0, sizeof(key0));
    CU_ASSERT_STRING_EQUAL(key0, "env-SECRET-p1-0001");
    CU_ASSERT_FATAL(regcomp(&fileline, "^[^ :]+:[0-9]+: ", REG_EXTENDED) ==
                    0);

#define BAD(w, f, line_ok, exp, ...)                                        \
    do {                                                                    \
        CU_ASSERT_FATAL(snprintf(text, sizeof(text), __VA_ARGS__) <         \
                        (int)sizeof(text));                                 \
        texts[nc] = strdup(text);                                           \
        cases[nc] = (struct bad){w, f, texts[nc], exp, line_ok};            \
        nc++;                                                               \
    } while (0)
    one_conf(base, sizeof(base), "", p12);
    BAD("syntax", "r.conf", true, "r.conf:", "%s}\n", base);
    BAD("unknown setting", "r.conf", true, "rmp",
        "router = { shm = \"%s\"; window_ms = 1000; max_projects = 2; "
        "max_models = 2; max_leases = 64; };\nmodels = ( { name = \"m\"; "
        "rmp = 100; } );\nprojects = (\n%s\n);\n", one_shm, p12);
    BAD("wrong type", "r.conf", true, "r.conf:",
        "router = { shm = \"%s\"; window_ms = 1000; max_projects = 2; "
        "max_models = 2; max_leases = 64; };\nmodels = ( { name = \"m\"; "
        "rpm = \"ten\"; } );\nprojects = (\n%s\n);\n", one_shm, p12);
    BAD("negative limit", "r.conf", true, "r.conf:",
        "router = { shm = \"%s\"; window_ms = 1000; max_projects = 2; "
        "max_models = 2; max_leases = 64; };\nmodels = ( { name = \"m\"; "
        "rpm = -5; } );\nprojects = (\n%s\n);\n", one_shm, p12);
    one_conf(base, sizeof(base), "",
             "  { name = \"p1\"; key = \"env:GR_RELOAD_TEST_KEY\"; },\n"
             "  { name = \"p1\"; key = \"file:keys/p2.key\"; }");
    BAD("duplicate project", "r.conf", true, "p1", "%s", base);
    one_conf(base, sizeof(base), "",
             "  { name = \"p1\"; key = \"env:GR_NO_SUCH_VARIABLE_5\"; },\n"
             "  { name = \"p2\"; key = \"file:keys/p2.key\"; }");
    BAD("missing key variable", "r.conf", true,
        "project 'p1': key 1: environment variable is not set", "%s", base);
    one_conf(base, sizeof(base), "",
             "  { name = \"p1\"; key = \"env:GR_RELOAD_TEST_KEY\"; },\n"
             "  { name = \"p2\"; key = \"file:keys/nope.key\"; }");
    BAD("unreadable key file", "r.conf", true,
        "project 'p2': key 1: cannot read key file", "%s", base);
    one_conf(base, sizeof(base), "headroom = 1.5;", p12);
    BAD("headroom out of range", "r.conf", true, "headroom", "%s", base);
    BAD("missing include", "r.conf", true, "nope.conf",
        "router = { shm = \"%s\"; window_ms = 1000; max_projects = 2; "
        "max_models = 2; max_leases = 64; };\n@include "
        "\"inc/nope.conf\"\nprojects = (\n%s\n);\n", one_shm, p12);
    BAD("bad included file", "inc/models.conf", true, "models.conf:",
        "models = ( { name = \"m\"; rpm = 100 } ;\n");
    BAD("geometry change", "r.conf", false, "restart",
        "router = { shm = \"%s\"; window_ms = 1000; max_projects = 3; "
        "max_models = 2; max_leases = 64; };\n@include "
        "\"inc/models.conf\"\nprojects = (\n%s\n);\n", one_shm, p12);
#undef BAD

    one_conf(good, sizeof(good), "", p12);
    for (i = 0; i < nc; i++) {
        uint64_t g = generation(&t);
        uint32_t f = failures(&t);

        one_put(cases[i].file, cases[i].text);
        CU_ASSERT_FATAL(!wait_reload(&t, g, f));    /* refused */
        header_text(&t, err, url);
        printf("\n  %-22s -> %s", cases[i].what, err);
        CU_ASSERT_EQUAL(generation(&t), g);
        CU_ASSERT_EQUAL(atomic_load(&t.hdr->last_reload_ok), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].expect));
        if (cases[i].line)
            CU_ASSERT(regexec(&fileline, err, 0, NULL, 0) == 0);
        /* The running config still serves, with its key. */
        key_of("p1", key1, sizeof(key1));
        CU_ASSERT_STRING_EQUAL(key1, key0);
        /* Put the good file back: a change too, and it is applied. */
        g = generation(&t);
        f = failures(&t);
        one_put(cases[i].file, strcmp(cases[i].file, "r.conf") == 0 ? good :
                good_models);
        CU_ASSERT_FATAL(wait_reload(&t, g, f));
    }
    putchar('\n');
    /* A good file with a rotated key: applied, and used by the next lease. */
    {
        uint64_t g = generation(&t);
        uint32_t f = failures(&t);

        one_conf(text, sizeof(text), "",
                 "  { name = \"p1\"; key = \"rotated-SECRET-p1-0003\"; },\n"
                 "  { name = \"p2\"; key = \"file:keys/p2.key\"; }");
        one_put("r.conf", text);
        CU_ASSERT_FATAL(wait_reload(&t, g, f));
        CU_ASSERT_EQUAL(atomic_load(&t.hdr->last_reload_ok), 1);
        key_of("p1", key1, sizeof(key1));
        CU_ASSERT_STRING_EQUAL(key1, "rotated-SECRET-p1-0003");
    }
    for (i = 0; i < nc; i++)
        free(texts[i]);
    regfree(&fileline);
    gr_shm_detach(&t);
    stop_router(router);
}

/* Each way of changing a file on disk leads to a reload. */
static void
test_changes_are_seen(void)
{
    static const char p12[] =
        "  { name = \"p1\"; key = \"env:GR_RELOAD_TEST_KEY\"; },\n"
        "  { name = \"p2\"; key = \"file:keys/p2.key\"; }";
    char text[1024], path[256], away[256];
    struct gr_shm t;
    pid_t router;
    uint64_t g;
    uint32_t f;
    FILE *fp;

    setenv("GR_RELOAD_TEST_KEY", "env-SECRET-p1-0001", 1);
    router = one_start("seen", &t);
    one_path(path, sizeof(path), "r.conf");
    one_conf(text, sizeof(text), "", p12);

    /* rename-replace of the main file */
    g = generation(&t);
    f = failures(&t);
    one_put("r.conf", text);
    CU_ASSERT_FATAL(wait_reload(&t, g, f));
    /* rename-replace of the included file, in another directory */
    g = generation(&t);
    one_put("inc/models.conf",
            "models = ( { name = \"m\"; rpm = 200; tpm = 10000; } );\n");
    CU_ASSERT_FATAL(wait_reload(&t, g, f));
    CU_ASSERT_EQUAL(atomic_load(&gr_shm_cell(&t, 0, 0)->config_limit[0]),
                    200);
    /* written in place (truncate, write, close) */
    g = generation(&t);
    fp = fopen(path, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fputs(text, fp);
    fclose(fp);
    CU_ASSERT_FATAL(wait_reload(&t, g, f));
    /* an editor that moves the old file away and writes a new one */
    g = generation(&t);
    CU_ASSERT_FATAL(snprintf(away, sizeof(away), "%s~", path) <
                    (int)sizeof(away));
    CU_ASSERT_FATAL(rename(path, away) == 0);
    fp = fopen(path, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fputs(text, fp);
    fclose(fp);
    CU_ASSERT_FATAL(wait_reload(&t, g, f));
    /* touch: a way to ask for a reload without an editor */
    g = generation(&t);
    CU_ASSERT_FATAL(utimensat(AT_FDCWD, path, NULL, 0) == 0);
    CU_ASSERT_FATAL(wait_reload(&t, g, f));
    CU_ASSERT_EQUAL(failures(&t), f);
    gr_shm_detach(&t);
    stop_router(router);
}

/* Kubernetes mounts a ConfigMap as FILE -> ..data/FILE, ..data -> a
 * timestamped directory, and updates it by re-pointing ..data and
 * deleting the old directory: no event names FILE itself. */
static void
test_configmap_swap(void)
{
    char dir[160], p[256], q[256], text[1024], err[256];
    struct gr_shm t;
    pid_t router;
    uint64_t g;
    uint32_t f;
    FILE *fp;
    int v;

    snprintf(one_shm, sizeof(one_shm), "/grreload-%d-cm", (int)getpid());
    snprintf(dir, sizeof(dir), "%s/cm", tmpdir);
    mkdir(dir, 0700);
    for (v = 1; v <= 2; v++) {
        snprintf(p, sizeof(p), "%s/..v%d", dir, v);
        mkdir(p, 0700);
        snprintf(p, sizeof(p), "%s/..v%d/r.conf", dir, v);
        snprintf(text, sizeof(text), "router = { shm = \"%s\"; window_ms = "
                 "1000; max_projects = 2; max_models = 2; max_leases = 64; "
                 "};\nmodels = ( { name = \"m\"; rpm = %d; } );\nprojects = "
                 "( { name = \"p1\"; key = \"configmap-SECRET-%d\"; } );\n",
                 one_shm, 100 * v, v);
        fp = fopen(p, "w");
        CU_ASSERT_FATAL(fp != NULL);
        fputs(text, fp);
        fclose(fp);
    }
    snprintf(p, sizeof(p), "%s/..data", dir);
    CU_ASSERT_FATAL(symlink("..v1", p) == 0);
    snprintf(p, sizeof(p), "%s/r.conf", dir);
    CU_ASSERT_FATAL(symlink("..data/r.conf", p) == 0);
    router = start_router(p, one_shm, "cm.log");
    CU_ASSERT_FATAL(router > 0);
    CU_ASSERT_FATAL(gr_shm_attach(one_shm, false, &t, err, sizeof(err)) ==
                    0);
    CU_ASSERT_EQUAL(atomic_load(&gr_shm_cell(&t, 0, 0)->config_limit[0]),
                    100);
    g = generation(&t);
    f = failures(&t);
    snprintf(p, sizeof(p), "%s/..data_tmp", dir);
    CU_ASSERT_FATAL(symlink("..v2", p) == 0);
    snprintf(q, sizeof(q), "%s/..data", dir);
    CU_ASSERT_FATAL(rename(p, q) == 0);
    snprintf(p, sizeof(p), "rm -rf %s/..v1", dir);
    CU_ASSERT_FATAL(system(p) == 0);
    CU_ASSERT_FATAL(wait_reload(&t, g, f));
    CU_ASSERT_EQUAL(atomic_load(&gr_shm_cell(&t, 0, 0)->config_limit[0]),
                    200);
    gr_shm_detach(&t);
    stop_router(router);
}

/*
 * A lease of project B, settled; B is removed and its slot given to C;
 * then the late report of B's lease arrives, as bad as reports get (key
 * rejected, a cooldown, learned limits of 0): C must not change.
 */
static void
test_late_report_on_reused_slot(void)
{
    char text[1024], err[256];
    struct gr_shm t;
    struct gr *g;
    struct gr_lease old, l;
    struct gr_cost cost = {1, 10, 0};
    struct gr_verdict bad;
    struct gr_shm_cell *c;
    uint32_t slot, gen_c;
    pid_t router;
    uint64_t gen;
    uint32_t f;
    unsigned d;
    int tries;

    setenv("GR_RELOAD_TEST_KEY", "env-SECRET-p1-0001", 1);
    router = one_start("late", &t);
    g = gr_open(one_shm, err, sizeof(err));
    CU_ASSERT_FATAL(g != NULL);
    for (tries = 0; tries < 1000; tries++) {
        CU_ASSERT_FATAL(reserve_5s(g, &cost, &old));
        gr_commit(g, &old, NULL);
        if (strcmp(old.project, "p2") == 0)
            break;
    }
    CU_ASSERT_FATAL(strcmp(old.project, "p2") == 0);
    slot = old.cell / t.max_models;

    /* p2 leaves; its slot is freed once idle; p3 takes it. */
    gen = generation(&t);
    f = failures(&t);
    one_conf(text, sizeof(text), "",
             "  { name = \"p1\"; key = \"env:GR_RELOAD_TEST_KEY\"; }");
    one_put("r.conf", text);
    CU_ASSERT_FATAL(wait_reload(&t, gen, f));
    while (atomic_load(&t.projects[slot].state) != GR_PROJ_FREE)
        sleep_ms(5);
    gen = generation(&t);
    one_conf(text, sizeof(text), "",
             "  { name = \"p1\"; key = \"env:GR_RELOAD_TEST_KEY\"; },\n"
             "  { name = \"p3\"; key = \"literal-SECRET-p3-0001\"; }");
    one_put("r.conf", text);
    CU_ASSERT_FATAL(wait_reload(&t, gen, f));
    CU_ASSERT_FATAL(slot_of(&t, "p3") == (int)slot);
    gen_c = atomic_load(&t.projects[slot].generation);
    CU_ASSERT_NOT_EQUAL(gen_c, old.project_gen);

    memset(&bad, 0, sizeof(bad));
    bad.status = 429;
    bad.cls = GR_CLASS_QUOTA;
    bad.dims = GR_DIM_BIT(GR_DIM_RPM) | GR_DIM_BIT(GR_DIM_RPD);
    bad.cooldown_s = 30;
    bad.cooldown_src = GR_COOL_RETRYINFO;
    for (d = 0; d < GR_NDIMS; d++)
        bad.learned[d] = 0;
    gr_report(g, &old, &bad);
    bad.cls = GR_CLASS_AUTH;
    bad.status = 400;
    bad.disable = GR_DISABLE_PROJECT;
    gr_report(g, &old, &bad);
    bad.cls = GR_CLASS_SERVER;
    bad.status = 503;
    for (tries = 0; tries < 10; tries++)
        gr_report(g, &old, &bad);

    c = gr_shm_cell(&t, slot, 0);
    CU_ASSERT_EQUAL(atomic_load(&t.projects[slot].health), 0);
    CU_ASSERT_EQUAL(atomic_load(&c->health), 0);
    for (d = 0; d < GR_NDIM; d++) {
        CU_ASSERT_EQUAL(atomic_load(&c->cool_until[d]), 0);
        CU_ASSERT_EQUAL(atomic_load(&c->learned[d]), -1);
        CU_ASSERT_EQUAL(atomic_load(&c->cap[d]), GR_LIMIT_NONE);
        CU_ASSERT_EQUAL(atomic_load(&c->quota_429[d]), 0);
    }
    CU_ASSERT_EQUAL(atomic_load(&c->circuit_until), 0);
    CU_ASSERT_EQUAL(atomic_load(&c->server_5xx), 0);
    CU_ASSERT_EQUAL(atomic_load(&c->auth_err), 0);
    CU_ASSERT_EQUAL(atomic_load(&c->last_status), 0);
    /* The same report with a lease of the new occupant does land. */
    for (tries = 0; tries < 1000; tries++) {
        CU_ASSERT_FATAL(reserve_5s(g, &cost, &l));
        gr_commit(g, &l, NULL);
        if (strcmp(l.project, "p3") == 0)
            break;
    }
    CU_ASSERT_FATAL(l.project_gen == gen_c);
    gr_report(g, &l, &bad);
    CU_ASSERT_EQUAL(atomic_load(&c->server_5xx), 1);
    gr_close(g);
    gr_shm_detach(&t);
    stop_router(router);
}

/* Run `bin/gemroute ARGS --shm <the one-case table>`; its exit status. */
static int
cli(const char *args)
{
    char cmd[512];
    int st;

    snprintf(cmd, sizeof(cmd), "%s/gemroute %s --shm %s >/dev/null",
             bin_dir, args, one_shm);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A lease of project name, settled at once. */
static void
lease_of(struct gr *g, const char *name, struct gr_lease *l)
{
    struct gr_cost cost = {1, 10, 0};
    int tries;

    for (tries = 0; tries < 1000; tries++) {
        /* A generous bound (a loaded machine, sanitizers): a refusal
         * here means no room came at all, not that it came late. */
        CU_ASSERT_FATAL(gr_reserve(g, "m", &cost, gr_now_ns() +
                                   60 * GR_NS_PER_S, l) == GR_OK);
        gr_commit(g, l, NULL);
        if (strcmp(l->project, name) == 0)
            return;
    }
    CU_FAIL_FATAL("no lease of that project");
}

static void
reload_same(struct gr_shm *t)
{
    char text[1024];
    uint64_t g = generation(t);
    uint32_t f = failures(t);

    one_conf(text, sizeof(text), "",
             "  { name = \"p1\"; key = \"env:GR_RELOAD_TEST_KEY\"; },\n"
             "  { name = \"p2\"; key = \"file:keys/p2.key\"; }");
    one_put("r.conf", text);
    CU_ASSERT_FATAL(wait_reload(t, g, f));
}

/*
 * What the operator commands write: enable lifts a rejected key and a
 * disabled model (and the learned 0 that disabled it), reset clears a
 * cooldown and a learned limit, and drain/disable survive reloads.
 */
static void
test_operator_state(void)
{
    struct gr_shm t;
    struct gr *g;
    struct gr_lease l1, l2, l;
    struct gr_verdict v;
    struct gr_cost cost = {1, 10, 0};
    struct gr_shm_cell *c2;
    char err[256];
    int s1, s2;
    unsigned d;
    pid_t router;

    setenv("GR_RELOAD_TEST_KEY", "env-SECRET-p1-0001", 1);
    router = one_start("op", &t);
    g = gr_open(one_shm, err, sizeof(err));
    CU_ASSERT_FATAL(g != NULL);
    lease_of(g, "p1", &l1);
    lease_of(g, "p2", &l2);
    s1 = slot_of(&t, "p1");
    s2 = slot_of(&t, "p2");
    CU_ASSERT_FATAL(s1 >= 0 && s2 >= 0);
    c2 = gr_shm_cell(&t, (uint32_t)s2, 0);

    /* p1's key is rejected; p2 hits a 429 that states a limit of 0. */
    memset(&v, 0, sizeof(v));
    for (d = 0; d < GR_NDIMS; d++)
        v.learned[d] = -1;
    v.status = 400;
    v.cls = GR_CLASS_AUTH;
    v.disable = GR_DISABLE_PROJECT;
    gr_report(g, &l1, &v);
    v.status = 429;
    v.cls = GR_CLASS_QUOTA;
    v.disable = GR_DISABLE_NONE;
    v.dims = GR_DIM_BIT(GR_DIM_RPM);
    v.cooldown_s = 30;
    v.cooldown_src = GR_COOL_RETRYINFO;
    v.learned[GR_DIM_RPM] = 0;
    gr_report(g, &l2, &v);
    CU_ASSERT(atomic_load(&t.projects[s1].health) & GR_PROJ_AUTH_FAILED);
    CU_ASSERT(atomic_load(&c2->health) & GR_CELL_DISABLED_MODEL);
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &cost, 0, &l), GR_ENOROOM);

    /* reset clears the cooldown and the learned limit, not the disabling */
    CU_ASSERT_EQUAL(cli("reset p2/m --dim rpm"), 0);
    CU_ASSERT_EQUAL(atomic_load(&c2->cool_until[GR_D_RPM]), 0);
    CU_ASSERT_EQUAL(atomic_load(&c2->learned[GR_D_RPM]), -1);
    CU_ASSERT(atomic_load(&c2->health) & GR_CELL_DISABLED_MODEL);
    /* enable is the operator's override of both */
    CU_ASSERT_EQUAL(cli("enable p1"), 0);
    CU_ASSERT_EQUAL(atomic_load(&t.projects[s1].health), 0);
    CU_ASSERT_EQUAL(cli("enable p2/m"), 0);
    CU_ASSERT_EQUAL(atomic_load(&c2->health) & GR_CELL_DISABLED_MODEL, 0);
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &cost, 0, &l), GR_OK);
    gr_commit(g, &l, NULL);

    /* Operator state is kept across reloads. */
    CU_ASSERT_EQUAL(cli("drain p1"), 0);
    CU_ASSERT_EQUAL(cli("disable p2/m"), 0);
    reload_same(&t);
    reload_same(&t);
    CU_ASSERT(atomic_load(&t.projects[s1].health) & GR_PROJ_OP_DRAINING);
    CU_ASSERT(atomic_load(&c2->health) & GR_CELL_OP_DISABLED);
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &cost, 0, &l), GR_ENOROOM);
    CU_ASSERT_EQUAL(cli("enable p1"), 0);
    lease_of(g, "p1", &l);      /* p1 serves again, p2/m does not */
    CU_ASSERT_EQUAL(cli("enable p2"), 0);
    CU_ASSERT_EQUAL(atomic_load(&c2->health) & GR_CELL_OP_DISABLED, 0);
    CU_ASSERT_EQUAL(cli("drain nosuch"), 1);
    gr_close(g);
    gr_shm_detach(&t);
    stop_router(router);
}

int
main(int argc, char **argv)
{
    CU_TestInfo load[] = {
        {"16 clients, 50 rewrites: nothing lost, nothing over-admitted",
         test_reload_under_load},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo cases[] = {
        {"a bad file of each class keeps the running config",
         test_bad_files_keep_config},
        {"rename, in-place, rename-away, touch and includes are seen",
         test_changes_are_seen},
        {"a ConfigMap-style symlink swap is seen", test_configmap_swap},
        {"a late report never lands on a reused slot",
         test_late_report_on_reused_slot},
        {"operator state: enable overrides, reset, kept across reloads",
         test_operator_state},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"reload", NULL, NULL, NULL, NULL, cases},
        {"reload under load", NULL, NULL, NULL, NULL, load},
        CU_SUITE_INFO_NULL,
    };
    int rc, i;

    bin_dir = getenv("BIN") ? getenv("BIN") : "bin";
    for (i = 0; i < NNAMES; i++)
        snprintf(names[i], sizeof(names[i]), "%s-%d",
                 i < NSTAY ? "stay" : i < NSTAY + NVARY ? "vary" : "flux",
                 i < NSTAY ? i : i < NSTAY + NVARY ? i - NSTAY
                                                   : i - NSTAY - NVARY);
    if (argc > 1 && strcmp(argv[1], "--threads") == 0) {
        /* The clients as threads of one process, for ThreadSanitizer
         * (which sees no other process): the reload cases themselves
         * are single-threaded. */
        threads_mode = true;
        suites[0].pName = "reload under load, clients as threads";
        suites[0].pTests = load;
        memset(&suites[1], 0, sizeof(suites[1]));    /* the end */
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/grreload.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 2;
    rc = gr_test_main("stress_reload", suites, 180);
    if (rc == 0) {
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
            rc = 1;
    } else {
        fprintf(stderr, "stress_reload: router logs kept in %s\n", tmpdir);
    }
    return rc;
}
