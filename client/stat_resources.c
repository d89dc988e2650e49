/*
 * stat_resources.c - gr_stat_resources(): the resource record as the
 * tools show it, read through a read-only mapping of the companion
 * segment (shm/resource.h), every record copied whole or skipped.
 */
#include "gemroute_stat.h"
#include "clock.h"
#include "resource.h"

#include <stdio.h>
#include <string.h>

int
gr_stat_resources(const struct gr_stat *st, struct gr_stat_resource *out,
                  int max, struct gr_stat_res_counts *counts)
{
    struct gr_shm_restab rt;
    struct gr_shm_res_view v;
    struct gr_stat_res_counts c;
    int64_t now = gr_shm_now_wall();
    char err[256];
    uint32_t i;
    int n = 0;

    memset(&c, 0, sizeof(c));
    if (counts != NULL)
        *counts = c;
    if (st == NULL ||
        gr_shm_res_attach(gr_stat_name(st), false, &rt, err,
                          sizeof(err)) != 0)
        return -1;
    c.present = true;
    c.capacity = rt.cap;
    /* relaxed: statistics */
    c.refused = atomic_load_explicit(&rt.hdr->refused, memory_order_relaxed);
    c.anomalies = atomic_load_explicit(&rt.hdr->anomalies,
                                       memory_order_relaxed);
    for (i = 0; i < rt.cap; i++) {
        bool expired;

        if (gr_shm_res_read(&rt, i, &v) != 0)
            continue;
        expired = v.expire_ns != 0 && v.expire_ns <= now;
        if (!expired) {
            if (v.kind == GR_RES_KIND_FILE)
                c.files++;
            else if (v.kind == GR_RES_KIND_CACHE)
                c.caches++;
            else if (v.kind == GR_RES_KIND_BATCH)
                c.batches++;
            else
                c.uploads++;
        }
        if (out != NULL && n < max) {
            struct gr_stat_resource *r = &out[n];

            snprintf(r->name, sizeof(r->name), "%s", v.name);
            snprintf(r->project, sizeof(r->project), "%s", v.project);
            r->kind = (enum gr_res_kind)v.kind;
            r->expire_unix_s = v.expire_ns / GR_NS_PER_S;
            r->expired = expired;
        }
        n++;
    }
    gr_shm_res_detach(&rt);
    if (counts != NULL)
        *counts = c;
    return n;
}

_Static_assert(GR_STAT_RES_NAME_MAX == GR_RES_NAME_MAX, "one name length");
_Static_assert((int)GR_RES_FILE == (int)GR_RES_KIND_FILE &&
               (int)GR_RES_CACHE == (int)GR_RES_KIND_CACHE &&
               (int)GR_RES_BATCH == (int)GR_RES_KIND_BATCH &&
               (int)GR_RES_UPLOAD == (int)GR_RES_KIND_UPLOAD,
               "one numbering of kinds");
