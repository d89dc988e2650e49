/*
 * history.c - the router samples every cell into the history segment
 * (shm/history.h) every GR_HIST_PERIOD_MS: the use of each dimension
 * and the cell's cumulative counts, so the dashboard of any gateway
 * process can draw the last hour.
 *
 * The segment is created on the first tick after the table is served,
 * with the table's mode and group (a stale one, left by a dead router,
 * is replaced), and unlinked when the router removes its table.  It is
 * advice for display only: nothing decides admission from it, so a
 * failure to create it is logged once and the router serves on without
 * history.  Invariant protected: a sample is published (written, a
 * release) only after all its words are stored, and the router is the
 * segment's only writer.
 */
#include "router.h"
#include "clock.h"
#include "companion.h"
#include "history.h"
#include "reserve.h"
#include "window.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct {
    unsigned char *base;
    size_t size;
    char name[GR_SHM_NAME_MAX + 8];
    uint32_t max_projects, max_models;
    int64_t next_ns;                /* next sample, CLOCK_MONOTONIC */
    bool *used_once;                /* [max_projects]: a slot ever in use
                                       (written from then on, as zeros
                                       while free, so that its next
                                       project inherits nothing) */
    bool failed;                    /* logged once; no more tries */
} h;

static int
hist_open(struct gr_rtr *r)
{
    gid_t gid = gr_rtr_group(r->cfg);
    size_t size = gr_hist_size(r->t.max_projects, r->t.max_models);
    struct gr_hist_header *hd;
    struct gr_shm_comp c;
    int rc;

    if (gr_shm_comp_name(r->t.name, GR_HIST_SUFFIX, h.name,
                         sizeof(h.name)) != 0)
        return -ENAMETOOLONG;
    /* The table is ours (a live router would have refused us), so a
     * history segment under its name is a dead router's: replace it. */
    rc = gr_shm_comp_create(h.name, size, r->cfg->router.mode, gid, true,
                            &c, NULL, 0);
    if (rc != 0)
        return rc;
    h.used_once = calloc(r->t.max_projects, sizeof(*h.used_once));
    if (h.used_once == NULL) {
        gr_shm_comp_unmap(&c);
        shm_unlink(h.name);
        return -ENOMEM;
    }
    h.base = c.base;
    h.size = size;
    h.max_projects = r->t.max_projects;
    h.max_models = r->t.max_models;
    hd = c.base;
    hd->abi = GR_HIST_ABI;
    hd->samples = GR_HIST_SAMPLES;
    hd->period_ms = GR_HIST_PERIOD_MS;
    hd->max_projects = h.max_projects;
    hd->max_models = h.max_models;
    hd->size = size;
    hd->router_pid = (int64_t)getpid();
    /* relaxed: nothing is published yet */
    atomic_store_explicit(&hd->written, 0, memory_order_relaxed);
    /* a reader that sees the magic sees the geometry above */
    gr_shm_comp_publish(&hd->magic, GR_HIST_MAGIC);
    return 0;
}

static void
sample(struct gr_rtr *r, int64_t now_ns)
{
    struct gr_hist_header *hd = (struct gr_hist_header *)h.base;
    _Atomic int64_t *times = (_Atomic int64_t *)(h.base +
                                                 gr_hist_times_off());
    _Atomic uint32_t *waiting = (_Atomic uint32_t *)(h.base +
                                                     gr_hist_waiting_off());
    struct gr_hist_point *pts = (struct gr_hist_point *)(h.base +
                                                         gr_hist_points_off());
    /* relaxed: only the router writes written */
    uint64_t n = atomic_load_explicit(&hd->written, memory_order_relaxed);
    uint32_t at = (uint32_t)(n % GR_HIST_SAMPLES), slot, m, d, n_models;
    int64_t wall_s = gr_shm_now_wall() / 1000000000;
    int32_t today = gr_shm_pacific_day(wall_s);

    /* relaxed: a count of models in use, range-checked below */
    n_models = atomic_load_explicit(&r->t.hdr->n_models,
                                    memory_order_relaxed);
    if (n_models > h.max_models)
        n_models = h.max_models;
    /* Only slots ever in use and models in use: readers look at no
     * other cell (a snapshot holds no other), so the rest of the
     * segment is never touched and costs no memory. */
    for (slot = 0; slot < h.max_projects; slot++) {
        bool live = r->m.state != NULL && r->m.state[slot] != GR_PROJ_FREE;

        if (!live && !h.used_once[slot])
            continue;
        h.used_once[slot] = true;
        for (m = 0; m < n_models; m++) {
            struct gr_hist_point *pt = &pts[((size_t)slot * h.max_models +
                                             m) * GR_HIST_SAMPLES + at];
            const struct gr_shm_cell *c = gr_shm_cell(&r->t, slot, m);
            int64_t used[GR_HIST_NDIM] = {0, 0, 0, 0};
            uint64_t q = 0, e = 0, adm = 0, rej = 0;

            if (!live)
                goto store;
            used[GR_D_RPM] = gr_shm_window_used(&r->t, c, GR_W_RPM,
                                                now_ns);
            used[GR_D_TPM] = gr_shm_window_used(&r->t, c, GR_W_TPM,
                                                now_ns);
            used[GR_D_IPM] = gr_shm_window_used(&r->t, c, GR_W_IPM,
                                                now_ns);
            used[GR_D_RPD] = gr_shm_day_used(&c->day, today);
            /* relaxed for all: counts for display */
            adm = atomic_load_explicit(&c->admitted,
                                       memory_order_relaxed);
            rej = atomic_load_explicit(&c->rejected,
                                       memory_order_relaxed);
            for (d = 0; d <= GR_NDIM; d++)
                q += atomic_load_explicit(&c->quota_429[d],
                                          memory_order_relaxed);
            e = atomic_load_explicit(&c->server_5xx,
                                     memory_order_relaxed) +
                atomic_load_explicit(&c->auth_err,
                                     memory_order_relaxed) +
                atomic_load_explicit(&c->other_err,
                                     memory_order_relaxed);
store:
            /* relaxed for all: published by the release of written */
            for (d = 0; d < GR_HIST_NDIM; d++)
                atomic_store_explicit(&pt->used[d], used[d] < 0 ? 0 :
                                      used[d] > UINT32_MAX ? UINT32_MAX :
                                      (uint32_t)used[d],
                                      memory_order_relaxed);
            atomic_store_explicit(&pt->admitted, (uint32_t)adm,
                                  memory_order_relaxed);
            atomic_store_explicit(&pt->rejected, (uint32_t)rej,
                                  memory_order_relaxed);
            atomic_store_explicit(&pt->quota_429, (uint32_t)q,
                                  memory_order_relaxed);
            atomic_store_explicit(&pt->errors, (uint32_t)e,
                                  memory_order_relaxed);
        }
    }
    /* relaxed: published by the release of written */
    atomic_store_explicit(&times[at], gr_shm_now_wall() / 1000000,
                          memory_order_relaxed);
    atomic_store_explicit(&waiting[at], atomic_load_explicit(
        &r->t.hdr->sleepers, memory_order_relaxed), memory_order_relaxed);
    /* release: pairs with the reader's acquire; the sample is whole */
    atomic_store_explicit(&hd->written, n + 1, memory_order_release);
}

void
gr_rtr_history_tick(struct gr_rtr *r, int64_t now_ns)
{
    int rc;

    if (h.failed || now_ns < h.next_ns || r->t.base == NULL)
        return;
    if (h.base != NULL && (h.max_projects != r->t.max_projects ||
                           h.max_models != r->t.max_models))
        gr_rtr_history_close(r);    /* a recreated table: start again */
    if (h.base == NULL && (rc = hist_open(r)) != 0) {
        gr_rtr_log("history: shm_open(%s): %s; the dashboard will show no "
                   "history", h.name, strerror(-rc));
        h.failed = true;
        return;
    }
    sample(r, now_ns);
    h.next_ns = now_ns + (int64_t)GR_HIST_PERIOD_MS * 1000000;
}

void
gr_rtr_history_close(struct gr_rtr *r)
{
    if (h.base == NULL)
        return;
    munmap(h.base, h.size);
    h.base = NULL;
    free(h.used_once);
    h.used_once = NULL;
    if (r->unlink_on_exit)
        shm_unlink(h.name);
}
