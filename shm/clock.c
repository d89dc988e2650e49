/*
 * clock.c - monotonic and wall time, and the Pacific calendar day.
 *
 * Invariant protected: gr_shm_pacific_day() changes exactly at local
 * midnight in Los Angeles, on both sides of both DST changes, so the
 * daily window resets when Google's does: from the days the router
 * published (read from the tz database), checked before use, else from
 * the US rule of 2007 written out here.
 */
#include "clock.h"

#include "seqlock.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

static int64_t
timespec_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * GR_NS_PER_S + ts.tv_nsec;
}

int64_t
gr_shm_now_mono(void)
{
    return timespec_ns(CLOCK_MONOTONIC);
}

int64_t
gr_shm_now_wall(void)
{
    return timespec_ns(CLOCK_REALTIME);
}

int64_t
gr_shm_now_wall_coarse(void)
{
    return timespec_ns(CLOCK_REALTIME_COARSE);
}

int64_t
gr_shm_coarse_res_ns(void)
{
    struct timespec ts;

    if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0 || ts.tv_sec != 0)
        return 0;
    return ts.tv_nsec;
}

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Civil-from-days arithmetic on a March-based year (Feb last). */
int64_t
gr_shm_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t
year_of_days(int64_t days)
{
    int64_t z = days + 719468, era, doe, yoe, doy, mp;

    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    return yoe + era * 400 + (mp >= 10);
}

/* Day (since epoch) of the n-th Sunday of month m in year y. */
static int64_t
nth_sunday(int64_t y, unsigned m, int n)
{
    int64_t first = gr_shm_days_from_civil(y, m, 1);
    /* 1970-01-01 was a Thursday; 0 = Sunday. */
    int64_t dow = (first + 4) - floor_div(first + 4, 7) * 7;

    return first + (7 - dow) % 7 + 7 * (n - 1);
}

int32_t
gr_shm_pacific_offset_s(int64_t unix_s)
{
    int64_t y = year_of_days(floor_div(unix_s - 8 * 3600, 86400));
    /* 02:00 PST is 10:00 UTC; 02:00 PDT is 09:00 UTC. */
    int64_t start = nth_sunday(y, 3, 2) * 86400 + 10 * 3600;
    int64_t end = nth_sunday(y, 11, 1) * 86400 + 9 * 3600;

    return (unix_s >= start && unix_s < end) ? -7 * 3600 : -8 * 3600;
}

int32_t
gr_shm_pacific_day(int64_t unix_s)
{
    return (int32_t)floor_div(unix_s + gr_shm_pacific_offset_s(unix_s),
                              86400);
}

int64_t
gr_shm_next_pacific_midnight(int64_t unix_s)
{
    int64_t local_midnight = ((int64_t)gr_shm_pacific_day(unix_s) + 1) * 86400;
    /* DST changes at 02:00, so the offset three hours after midnight
     * (standard time) is the offset in force at midnight. */
    int64_t guess = local_midnight + 8 * 3600;

    return local_midnight - gr_shm_pacific_offset_s(guess - 3 * 3600);
}

/* --- the days the router publishes ------------------------------------- */

int
gr_shm_days_plausible(const struct gr_shm_days *d)
{
    int64_t lead = d->start[0] - (int64_t)d->first * 86400;
    int i;

    if (d->first <= 0 || lead < -26 * 3600 || lead > 26 * 3600)
        return 0;
    for (i = 1; i < GR_SHM_DAY_STARTS; i++) {
        int64_t len = d->start[i] - d->start[i - 1];

        if (len < 23 * 3600 || len > 25 * 3600)
            return 0;
    }
    return 1;
}

int
gr_shm_days_lookup(const struct gr_shm_days *d, int64_t unix_s,
                   int32_t *day, int64_t *next_midnight_s)
{
    int i;

    for (i = 0; i + 1 < GR_SHM_DAY_STARTS; i++)
        if (unix_s >= d->start[i] && unix_s < d->start[i + 1]) {
            *day = d->first + i;
            *next_midnight_s = d->start[i + 1];
            return 0;
        }
    return -ERANGE;
}

void
gr_shm_days_publish(struct gr_shm_header *h, const struct gr_shm_days *d)
{
    int i;

    gr_shm_seq_write_begin(&h->day_seq);
    /* release: the seqlock's data stores (seqlock.h) */
    atomic_store_explicit(&h->day_first, d->first, memory_order_release);
    for (i = 0; i < GR_SHM_DAY_STARTS; i++)
        /* release: as above */
        atomic_store_explicit(&h->day_start[i], d->start[i],
                              memory_order_release);
    gr_shm_seq_write_end(&h->day_seq);
}

struct days_copy {
    struct gr_shm_header *h;
    struct gr_shm_days *d;
};

static void
days_copy(void *arg)
{
    struct days_copy *c = arg;
    int i;

    /* acquire: the seqlock's data loads (seqlock.h) */
    c->d->first = atomic_load_explicit(&c->h->day_first,
                                       memory_order_acquire);
    for (i = 0; i < GR_SHM_DAY_STARTS; i++)
        /* acquire: as above */
        c->d->start[i] = atomic_load_explicit(&c->h->day_start[i],
                                              memory_order_acquire);
}

int
gr_shm_days_read(struct gr_shm_header *h, struct gr_shm_days *d)
{
    struct days_copy c = { h, d };

    if (!gr_shm_seq_read(&h->day_seq, days_copy, &c))
        return -EAGAIN;
    if (d->first == 0 && d->start[0] == 0)
        return -ENOENT;
    /* Not counted in anomalies here: a reader may have mapped the table
     * read-only (gemroute status), and a reader never writes.  The
     * router counts it when its tick finds the days so (router/tzday.c)
     * and publishes its own again. */
    if (!gr_shm_days_plausible(d))
        return -EINVAL;
    return 0;
}

int32_t
gr_shm_pacific_day_in(struct gr_shm_header *h, int64_t unix_s,
                      int64_t *next_midnight_s, int *published)
{
    struct gr_shm_days d;
    int64_t next;
    int32_t day;
    int ok = h != NULL && gr_shm_days_read(h, &d) == 0 &&
             gr_shm_days_lookup(&d, unix_s, &day, &next) == 0;

    if (published != NULL)
        *published = ok;
    if (ok) {
        if (next_midnight_s != NULL)
            *next_midnight_s = next;
        return day;
    }
    if (next_midnight_s != NULL)
        *next_midnight_s = gr_shm_next_pacific_midnight(unix_s);
    return gr_shm_pacific_day(unix_s);
}
