/*
 * history.c - gr_stat_history(): the last hour of every cell, as the
 * router sampled it into the table's companion segment (shm/history.h).
 *
 * The segment is mapped read-only for the copy and unmapped after it.
 * It is untrusted input like the table: it must belong to the table's
 * owner, its geometry must match its size, every index is checked, and
 * it must have been written by the router that serves the snapshot (a
 * dead router's ring is not shown).  Invariant protected: a sample the
 * router may have started to overwrite while we copied is dropped, never
 * shown (see the ring protocol in shm/history.h).
 */
#include "gemroute_stat.h"
#include "companion.h"
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(GR_STAT_HIST_SAMPLES == GR_HIST_SAMPLES, "samples");
/* The history samples the first four dimensions; tokens per day (ABI 6
 * of the table) are not sampled and read 0. */
_Static_assert((int)GR_NDIMS == GR_HIST_NDIM + 1, "dimensions");

/* The uid owning shm object name, or -1. */
static long
owner(const char *name)
{
    struct stat st;
    int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return (long)st.st_uid;
}

static uint32_t
ld32(const _Atomic uint32_t *p)
{
    /* acquire: the data loads stay above the second read of written
     * (the pattern of shm/seqlock.h, without fences) */
    return atomic_load_explicit(p, memory_order_acquire);
}

static void
copy_sample(struct gr_stat_hist_point *o, const struct gr_hist_point *p)
{
    unsigned d;

    for (d = 0; d < GR_HIST_NDIM; d++)
        o->used[d] = ld32(&p->used[d]);
    for (; d < GR_NDIMS; d++)
        o->used[d] = 0;
    o->admitted = ld32(&p->admitted);
    o->rejected = ld32(&p->rejected);
    o->quota_429 = ld32(&p->quota_429);
    o->errors = ld32(&p->errors);
}

enum gr_err
gr_stat_history(const struct gr_stat *st, const struct gr_stat_snap *s,
                struct gr_stat_hist *h)
{
    char name[GR_NAME_MAX + 8];
    const struct gr_hist_header *hd;
    unsigned char *base;           /* mapped PROT_READ */
    struct gr_shm_comp m;
    uint64_t w1, w2, first, n, keep_from;
    unsigned i, c, count;
    long table_uid;
    enum gr_err rc = GR_OK;

    memset(h, 0, sizeof(*h));
    h->n_cells = s->n_cells;
    h->period_s = GR_HIST_PERIOD_MS / 1000.0;
    snprintf(name, sizeof(name), "%s%s", gr_stat_name(st), GR_HIST_SUFFIX);
    /* None, or not the router's: nothing to show. */
    table_uid = owner(gr_stat_name(st));
    if (table_uid < 0 ||
        gr_shm_comp_map(name, false, sizeof(*hd), "history", &m, NULL,
                        0) != 0)
        return GR_OK;
    base = m.base;
    if ((long)m.uid != table_uid)
        goto out;
    hd = (const struct gr_hist_header *)base;
    /* acquire: pairs with the release of the magic in hist_open() */
    if (__atomic_load_n(&hd->magic, __ATOMIC_ACQUIRE) != GR_HIST_MAGIC ||
        hd->abi != GR_HIST_ABI || hd->samples != GR_HIST_SAMPLES ||
        hd->period_ms == 0 || hd->max_projects == 0 ||
        hd->max_models == 0 || hd->max_projects > 65536 ||
        hd->max_models > 4096 ||
        hd->size != gr_hist_size(hd->max_projects, hd->max_models) ||
        hd->size > m.size || hd->router_pid != s->router_pid)
        goto out;
    h->period_s = hd->period_ms / 1000.0;
    /* acquire: pairs with the release in sample(); samples below it are
     * whole */
    w1 = atomic_load_explicit(&hd->written,
                              memory_order_acquire);
    count = w1 < GR_HIST_SAMPLES ? (unsigned)w1 : GR_HIST_SAMPLES;
    first = w1 - count;
    if (count == 0)
        goto out;
    if (s->n_cells > 0) {
        h->points = calloc((size_t)s->n_cells * count, sizeof(*h->points));
        if (h->points == NULL) {
            rc = GR_ENOMEM;
            goto out;
        }
    }
    for (i = 0; i < count; i++) {
        uint32_t at = (uint32_t)((first + i) % GR_HIST_SAMPLES);
        const _Atomic int64_t *t = (const _Atomic int64_t *)(base +
            gr_hist_times_off()) + at;
        const _Atomic uint32_t *wt = (const _Atomic uint32_t *)(base +
            gr_hist_waiting_off()) + at;

        /* acquire: as ld32() */
        h->wall_ms[i] = atomic_load_explicit(t,
                                             memory_order_acquire);
        h->waiting[i] = ld32(wt);
    }
    for (c = 0; c < s->n_cells; c++) {
        const struct gr_stat_cell *sc = &s->cells[c];
        const struct gr_hist_point *row;

        if (sc->slot >= hd->max_projects || sc->model_index >= hd->max_models)
            continue;
        row = (const struct gr_hist_point *)(base + gr_hist_points_off()) +
              ((size_t)sc->slot * hd->max_models + sc->model_index) *
              GR_HIST_SAMPLES;
        for (i = 0; i < count; i++)
            copy_sample(&h->points[(size_t)c * count + i],
                        &row[(first + i) % GR_HIST_SAMPLES]);
    }
    /* relaxed: ordered after the acquire loads of the data */
    w2 = atomic_load_explicit(&hd->written,
                              memory_order_relaxed);
    /* The router may be writing sample w2, which overwrites
     * w2 - GR_HIST_SAMPLES: keep only later ones. */
    keep_from = w2 >= GR_HIST_SAMPLES ? w2 - GR_HIST_SAMPLES + 1 : 0;
    n = keep_from > first ? keep_from - first : 0;
    if (n >= count) {
        count = 0;
    } else if (n > 0) {
        memmove(h->wall_ms, h->wall_ms + n, (count - n) * sizeof(int64_t));
        memmove(h->waiting, h->waiting + n, (count - n) * sizeof(uint32_t));
        for (c = 0; c < s->n_cells; c++)
            memmove(&h->points[(size_t)c * (count - n)],
                    &h->points[(size_t)c * count + n],
                    (count - n) * sizeof(*h->points));
        count -= (unsigned)n;
    }
    h->n_samples = count;
out:
    gr_shm_comp_unmap(&m);
    return rc;
}

void
gr_stat_history_free(struct gr_stat_hist *h)
{
    free(h->points);
    h->points = NULL;
    h->n_samples = 0;
}
