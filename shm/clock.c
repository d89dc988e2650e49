/*
 * clock.c - monotonic and wall time, and the Pacific calendar day.
 *
 * Invariant protected: gr_shm_pacific_day() changes exactly at local
 * midnight in Los Angeles, on both sides of both DST changes, so the
 * daily window resets when Google's does.
 */
#include "clock.h"

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
