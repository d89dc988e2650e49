/*
 * cluster_math.c - the share arithmetic of a cluster (docs/CLUSTER.md).
 *
 * The invariant it keeps: the sum over nodes of every node's share is at
 * most the global limit, and no node's share is ever below what its own
 * table may hold.  A share grows only by units nobody holds (free > 0),
 * and shrinks only down to what the node's table holds or may still
 * admit (keep), so the count of every window on every node stays under
 * that node's share, and the sum under the limit.
 */
#include "cluster.h"

#include <stdlib.h>

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

void
gr_rtr_cl_waterfill(const int64_t *want, unsigned n, int64_t cap,
                    int64_t *out)
{
    int64_t sorted[64], level, left = cap < 0 ? 0 : cap;
    unsigned i, m = n < 64 ? n : 64;

    for (i = 0; i < m; i++)
        sorted[i] = want[i] < 0 ? 0 : want[i];
    qsort(sorted, m, sizeof(sorted[0]), cmp_i64);
    level = left;
    for (i = 0; i < m; i++) {
        int64_t fair = left / (int64_t)(m - i);

        if (sorted[i] > fair) {
            level = fair;
            break;
        }
        left -= sorted[i];
        level = sorted[i];
    }
    if (i == m)
        level = INT64_MAX;
    for (i = 0; i < n; i++) {
        int64_t w = want[i] < 0 ? 0 : want[i];

        out[i] = i < m ? (w < level ? w : level) : 0;
    }
}

int64_t
gr_rtr_cl_next_share(int64_t cur, int64_t target, int64_t keep,
                     int64_t free, bool grace)
{
    int64_t next = cur;

    if (cur > target) {
        next = target > keep ? target : keep;
        if (next > cur)
            next = cur;
    } else if (cur < target && !grace && free > 0) {
        next = cur + (target - cur < free ? target - cur : free);
    }
    return next < 0 ? 0 : next;
}

int64_t
gr_rtr_cl_want(int64_t peak, int64_t local, int64_t limit, bool hungry)
{
    int64_t want;

    if (limit <= 0)
        return 0;
    if (hungry) {
        int64_t base = peak > local ? peak : local;

        want = base + (limit / 8 > 1 ? limit / 8 : 1);
    } else {
        want = peak + (limit / 32 > 1 ? limit / 32 : 1);
    }
    return want < limit ? want : limit;
}

int64_t
gr_rtr_cl_local(int64_t share, int64_t target, bool lost)
{
    if (lost)
        return 0;
    return share < target ? share : target;
}
