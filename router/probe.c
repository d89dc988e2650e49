/*
 * probe.c - a disabled key or (project, model) comes back by itself.
 *
 * A key Google refused (project.key_bad), a project refused as a whole
 * (GR_PROJ_AUTH_FAILED) and a cell disabled for its model
 * (GR_CELL_DISABLED_MODEL, not for a learned limit of 0) are probed with
 * gr_probe() (client/probe.c: GET models/{model} with the key, the same
 * HTTP code as every call), first one window after the router saw them
 * disabled, then with the wait doubled after each failed probe, up to
 * PROBE_MAX_WINDOWS windows (a minute to an hour with Google's window).
 * A probe that passes clears that key's bit, the project's refusal or
 * the cell's flag.  Operator flags (GR_*_OP_*) are other bits: a probe
 * never touches them.
 *
 * The HTTP call runs on one probe thread of the router, so a slow probe
 * never holds up ticks or reaping; the main loop hands it one job at a
 * time and applies its result (this file's tick), so the router's main
 * loop stays the one writer of what a probe changes.  The thread and the
 * loop share only the mailbox below, under its mutex (both are threads
 * of the router: no process ever waits on another's lock).  The next
 * probe's instant is published per project and per cell (probe_at_s) for
 * `gemroute status`.
 */
#include "router.h"
#include "worker.h"
#include "clock.h"
#include "gemroute.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_MAX_WINDOWS 60        /* longest wait between two probes */
#define PROBE_MAX_LEVEL 6           /* 1, 2, 4, ..., 32, then 60 windows */
#define PROBE_TIMEOUT_NS (INT64_C(20) * 1000000000)
#define PROBE_SCAN_NS (INT64_C(250) * 1000000)

/* What one target (a key of a slot, or a cell) waits for. */
struct target {
    int64_t next_ns;                /* CLOCK_MONOTONIC; 0 = not disabled */
    uint32_t level;                 /* failed probes in a row */
    uint32_t gen;                   /* slot generation it was seen at */
};

/* One probe, from the loop to the thread and back. */
struct job {
    bool cell;                      /* a cell, else a key */
    uint32_t slot, model, key, gen;
    char base_url[GR_URL_MAX];
    char proxy[GR_URL_MAX];
    char key_text[GR_KEY_MAX];      /* secret: wiped after use */
    char model_name[GR_NAME_MAX];
    int rc;                         /* gr_probe()'s result */
    struct gr_verdict v;
};

struct gr_rtr_probe {
    struct gr_rtr_worker w;         /* runs job, one at a time */
    struct job job;
    struct target *keys;            /* [max_projects * GR_SHM_MAX_KEYS] */
    struct target *cells;           /* [max_projects * max_models] */
    int64_t next_scan_ns;
    uint64_t probes, passed;
};

/* On the worker thread: the job's probe. */
static void
run_probe(void *arg)
{
    struct gr_rtr_probe *pr = arg;

    pr->job.rc = gr_probe(pr->job.base_url, pr->job.proxy,
                          pr->job.key_text, pr->job.model_name,
                          gr_now_ns() + PROBE_TIMEOUT_NS, &pr->job.v);
    explicit_bzero(pr->job.key_text, sizeof(pr->job.key_text));
}

int
gr_rtr_probe_open(struct gr_rtr *r)
{
    struct gr_rtr_probe *pr = calloc(1, sizeof(*pr));
    size_t nk = (size_t)r->t.max_projects * GR_SHM_MAX_KEYS;
    size_t nc = (size_t)r->t.max_projects * r->t.max_models;

    if (pr == NULL)
        return -ENOMEM;
    pr->keys = calloc(nk, sizeof(*pr->keys));
    pr->cells = calloc(nc, sizeof(*pr->cells));
    if (pr->keys == NULL || pr->cells == NULL)
        goto fail;
    if (gr_rtr_worker_start(&pr->w, run_probe, pr) != 0)
        goto fail;
    r->probe = pr;
    return 0;

fail:
    free(pr->keys);
    free(pr->cells);
    free(pr);
    return -ENOMEM;
}

void
gr_rtr_probe_close(struct gr_rtr *r)
{
    struct gr_rtr_probe *pr = r->probe;

    if (pr == NULL)
        return;
    r->probe = NULL;
    /* A probe under way ends by its own timeout; the router does not
     * wait for it to exit, and leaves its memory to the exit. */
    if (!gr_rtr_worker_stop(&pr->w))
        return;
    free(pr->keys);
    free(pr->cells);
    free(pr);
}

/* The wait before the next probe after `level` failed ones. */
static int64_t
wait_ns(const struct gr_rtr *r, uint32_t level)
{
    int64_t w = r->t.window_ns;

    if (level > PROBE_MAX_LEVEL)
        level = PROBE_MAX_LEVEL;
    w <<= level;
    return w > r->t.window_ns * PROBE_MAX_WINDOWS
               ? r->t.window_ns * PROBE_MAX_WINDOWS : w;
}

/* Seconds of CLOCK_MONOTONIC, as probe_at_s holds them (0 = none). */
static uint32_t
secs(int64_t ns)
{
    int64_t s = (ns + 999999999) / 1000000000;

    return s <= 0 ? 1u : s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* Follow target t of a thing that is (bad) or is not disabled now;
 * true when its probe is due. */
static bool
follow(const struct gr_rtr *r, struct target *t, bool bad, uint32_t gen,
       int64_t now)
{
    if (!bad || t->gen != gen) {
        if (t->gen != gen)
            t->level = 0;           /* another project: a fresh start */
        t->next_ns = 0;
        t->gen = gen;
        if (!bad)
            return false;
    }
    if (t->next_ns == 0)
        t->next_ns = now + wait_ns(r, t->level);
    return now >= t->next_ns;
}

/*
 * Whether a probe (or a batch poll) may go to url.  The test programs set
 * GEMROUTE_TEST_LOOPBACK (tests/testlib.c, tests/lib.sh): a router they
 * start then probes nothing but 127.0.0.1, localhost or [::1], so a test
 * whose config keeps Google's default base_url never sends a test key
 * over the network.
 */
bool
gr_rtr_upstream_allowed(const char *url)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};
    const char *h = strstr(url, "://");
    size_t i, n;

    if (getenv("GEMROUTE_TEST_LOOPBACK") == NULL)
        return true;
    if (h == NULL)
        return false;
    h += 3;
    for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        n = strlen(hosts[i]);
        if (strncmp(h, hosts[i], n) == 0 &&
            (h[n] == '\0' || h[n] == ':' || h[n] == '/'))
            return true;
    }
    return false;
}

/* Fill the job's connection and name fields; false if the slot's project
 * is not in the running config (being removed), or the probe may not go
 * where the config points. */
static bool
fill_job(struct gr_rtr *r, struct job *j, uint32_t slot, uint32_t key,
         uint32_t model)
{
    const struct gr_cfg_project *cp;

    if (r->cfg == NULL || !gr_rtr_upstream_allowed(r->cfg->router.base_url) ||
        (cp = gr_cfg_project_find(r->cfg, r->m.name[slot])) == NULL ||
        cp->n_keys == 0 || model >= r->m.n_models ||
        r->m.model[model][0] == '\0')
        return false;
    if (key >= cp->n_keys)
        key = 0;
    memset(j, 0, sizeof(*j));
    j->slot = slot;
    j->model = model;
    j->key = key;
    snprintf(j->base_url, sizeof(j->base_url), "%s", r->cfg->router.base_url);
    snprintf(j->proxy, sizeof(j->proxy), "%s", r->cfg->router.proxy);
    snprintf(j->key_text, sizeof(j->key_text), "%s", cp->keys[key]);
    snprintf(j->model_name, sizeof(j->model_name), "%s", r->m.model[model]);
    return true;
}

/* A good key of the slot for a cell's probe, else key 0. */
static uint32_t
good_key(const struct gr_shm_project *p, uint32_t n_keys)
{
    /* relaxed: advice */
    uint32_t bad = atomic_load_explicit(&p->key_bad, memory_order_relaxed);
    uint32_t k;

    for (k = 0; k < n_keys && k < GR_SHM_MAX_KEYS; k++)
        if (!(bad & (1u << k)))
            return k;
    return 0;
}

/* Apply a finished probe: the router's loop is the one writer. */
static void
apply(struct gr_rtr *r, struct gr_rtr_probe *pr, const struct job *j,
      int64_t now)
{
    struct gr_shm_project *p = gr_shm_project(&r->t, j->slot);
    struct target *t;

    if (p == NULL)
        return;
    t = j->cell ? &pr->cells[(size_t)j->slot * r->t.max_models + j->model]
                : &pr->keys[(size_t)j->slot * GR_SHM_MAX_KEYS + j->key];
    pr->probes++;
    /* relaxed: the router's own slot; a moved generation voids the job */
    if (atomic_load_explicit(&p->generation, memory_order_relaxed) !=
        j->gen)
        return;
    if (j->rc != GR_OK) {
        if (t->level < PROBE_MAX_LEVEL + 1)
            t->level++;
        t->next_ns = now + wait_ns(r, t->level);
        gr_rtr_log("probe of %s%s%s (key #%u) failed: %s; next in %lld s",
                   r->m.name[j->slot], j->cell ? "/" : "",
                   j->cell ? j->model_name : "", j->key + 1, j->v.reason,
                   (long long)(wait_ns(r, t->level) / 1000000000));
        return;
    }
    pr->passed++;
    t->next_ns = 0;
    if (j->cell) {
        struct gr_shm_cell *c = gr_shm_cell(&r->t, j->slot, j->model);

        /* relaxed: advice, one word; operator bits are left alone */
        if (c != NULL)
            atomic_fetch_and_explicit(&c->health, ~GR_CELL_DISABLED_MODEL,
                                      memory_order_relaxed);
    } else {
        /* relaxed: advice, one word each; operator bits left alone */
        atomic_fetch_and_explicit(&p->key_bad, ~(1u << j->key),
                                  memory_order_relaxed);
        atomic_fetch_and_explicit(&p->health, ~GR_PROJ_AUTH_FAILED,
                                  memory_order_relaxed);
    }
    gr_rtr_log("probe of %s%s%s (key #%u) passed: enabled again",
               r->m.name[j->slot], j->cell ? "/" : "",
               j->cell ? j->model_name : "", j->key + 1);
}

/* Whether cell c is disabled for its model (not by a learned 0). */
static bool
cell_disabled(struct gr_shm_cell *c)
{
    unsigned d;

    /* relaxed for all: advice */
    if (!(atomic_load_explicit(&c->health, memory_order_relaxed) &
          GR_CELL_DISABLED_MODEL))
        return false;
    for (d = 0; d < GR_NDIM; d++)
        if (atomic_load_explicit(&c->learned[d], memory_order_relaxed) == 0)
            return false;
    return true;
}

/*
 * Scan every active slot: follow its disabled keys and cells, publish
 * their next probe, and queue the first one due when the thread is idle.
 */
static void
scan(struct gr_rtr *r, struct gr_rtr_probe *pr, int64_t now, bool idle)
{
    struct gr_shm *t = &r->t;
    uint32_t s, k, m;

    for (s = 0; s < t->max_projects; s++) {
        struct gr_shm_project *p = gr_shm_project(t, s);
        uint32_t gen, health, bad, n, first = 0;
        int64_t soonest = 0;

        if (p == NULL || r->m.state[s] != GR_PROJ_ACTIVE)
            continue;
        /* relaxed for all: advice, one word each */
        gen = atomic_load_explicit(&p->generation, memory_order_relaxed);
        health = atomic_load_explicit(&p->health, memory_order_relaxed);
        bad = atomic_load_explicit(&p->key_bad, memory_order_relaxed);
        n = __atomic_load_n(&p->n_keys, __ATOMIC_RELAXED);
        if (n == 0 || n > GR_SHM_MAX_KEYS)
            n = 1;
        for (k = 0; k < GR_SHM_MAX_KEYS; k++) {
            struct target *tk = &pr->keys[(size_t)s * GR_SHM_MAX_KEYS + k];
            /* a project refused as a whole is probed on its first key */
            bool is_bad = k < n && ((bad & (1u << k)) ||
                                    (k == 0 && bad == 0 &&
                                     (health & GR_PROJ_AUTH_FAILED)));

            if (follow(r, tk, is_bad, gen, now) && idle &&
                fill_job(r, &pr->job, s, k, first)) {
                pr->job.gen = gen;
                idle = false;
                pr->w.stage = GR_RTR_WORK_WAITING;
            }
            if (tk->next_ns != 0 && (soonest == 0 || tk->next_ns < soonest))
                soonest = tk->next_ns;
        }
        /* relaxed: published for status only */
        atomic_store_explicit(&p->probe_at_s, soonest ? secs(soonest) : 0,
                              memory_order_relaxed);
        for (m = 0; m < t->max_models; m++) {
            struct gr_shm_cell *c = gr_shm_cell(t, s, m);
            struct target *tc = &pr->cells[(size_t)s * t->max_models + m];
            bool due;

            if (c == NULL)
                continue;
            due = follow(r, tc, m < r->m.n_models && cell_disabled(c), gen,
                         now);
            if (due && idle && !(health & GR_PROJ_AUTH_FAILED) &&
                fill_job(r, &pr->job, s, good_key(p, n), m)) {
                pr->job.cell = true;
                pr->job.gen = gen;
                idle = false;
                pr->w.stage = GR_RTR_WORK_WAITING;
            }
            /* relaxed: published for status only */
            atomic_store_explicit(&c->probe_at_s,
                                  tc->next_ns ? secs(tc->next_ns) : 0,
                                  memory_order_relaxed);
        }
    }
}

void
gr_rtr_probe_tick(struct gr_rtr *r, int64_t now_ns)
{
    struct gr_rtr_probe *pr = r->probe;
    bool idle;

    if (pr == NULL)
        return;
    pthread_mutex_lock(&pr->w.mu);
    if (pr->w.stage == GR_RTR_WORK_DONE) {
        apply(r, pr, &pr->job, now_ns);
        pr->w.stage = GR_RTR_WORK_IDLE;
    }
    idle = pr->w.stage == GR_RTR_WORK_IDLE;
    if (now_ns >= pr->next_scan_ns || idle) {
        if (now_ns >= pr->next_scan_ns) {
            pr->next_scan_ns = now_ns + PROBE_SCAN_NS;
            scan(r, pr, now_ns, idle);
        }
        if (pr->w.stage == GR_RTR_WORK_WAITING)
            gr_rtr_worker_kick(&pr->w);
    }
    pthread_mutex_unlock(&pr->w.mu);
}
