/*
 * tzday.c - the Pacific days the router publishes for every process.
 *
 * The router reads America/Los_Angeles from the tz database (a TZif
 * file, shm/tzif.c) at start and on every reload, and keeps the table's
 * day_first/day_start (shm/layout.h) covering today and the next days:
 * on each tick it republishes when a midnight has passed or when what
 * the header holds is not what it wrote (a new segment, a scribbled
 * one).  Without a readable file it publishes nothing, says so once, and
 * every process uses the US rule of 2007 (shm/clock.c).
 *
 * GEMROUTE_TZFILE names another TZif file: for tests only, which prove
 * the table follows the file and not the built-in rule.
 */
#include "router.h"

#include "clock.h"
#include "tzif.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TZ_DEFAULT "/usr/share/zoneinfo/America/Los_Angeles"

static struct gr_tz zone;           /* the router's one thread */
static bool zone_ok;
static bool warned;                 /* the fallback was logged */
static struct gr_shm_days last;     /* what was published */

static bool
days_equal(const struct gr_shm_days *a, const struct gr_shm_days *b)
{
    int i;

    for (i = 0; i < GR_SHM_DAY_STARTS; i++)
        if (a->start[i] != b->start[i])
            return false;
    return a->first == b->first;
}

static const char *
tz_path(void)
{
    const char *p = getenv("GEMROUTE_TZFILE");

    return p != NULL && p[0] != '\0' ? p : TZ_DEFAULT;
}

void
gr_rtr_tz_load(struct gr_rtr *r)
{
    const char *path = tz_path();
    int rc = gr_shm_tzif_load(path, &zone);

    if (rc != 0) {
        zone_ok = false;
        if (!warned)
            gr_rtr_log("tz database: %s: %s; the Pacific day follows the "
                       "built-in US rule of 2007 (install tzdata)", path,
                       rc == -ENOENT ? "not installed" : strerror(-rc));
        warned = true;
    } else {
        if (!zone_ok && warned)
            gr_rtr_log("tz database: %s read again", path);
        zone_ok = true;
        warned = false;
    }
    memset(&last, 0, sizeof(last));    /* publish again at the next tick */
    gr_rtr_tz_tick(r);
}

void
gr_rtr_tz_tick(struct gr_rtr *r)
{
    struct gr_shm_header *h = r->t.hdr;
    struct gr_shm_days now_days, seen;
    int64_t now = gr_shm_now_wall() / GR_NS_PER_S;
    int rc;

    if (h == NULL)
        return;
    if (!zone_ok) {
        if (last.first != 0 || gr_shm_days_read(h, &seen) != -ENOENT) {
            memset(&last, 0, sizeof(last));
            gr_shm_days_publish(h, &last);  /* nothing: the rule */
        }
        return;
    }
    if (last.first != 0 && now < last.start[1]) {
        rc = gr_shm_days_read(h, &seen);
        if (rc == 0 && days_equal(&seen, &last))
            return;
        if (rc == -EINVAL)
            gr_shm_anomaly(&r->t);  /* scribbled: published again below */
    }
    rc = gr_shm_tz_days(&zone, now, &now_days);
    if (rc != 0 || !gr_shm_days_plausible(&now_days)) {
        if (!warned)
            gr_rtr_log("tz database: %s has no plausible Pacific days "
                       "around now; the built-in US rule of 2007 is used",
                       tz_path());
        warned = true;
        memset(&now_days, 0, sizeof(now_days));
    }
    gr_shm_days_publish(h, &now_days);
    last = now_days;
}
