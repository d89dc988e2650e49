/*
 * clock.h - the two clocks gemroute counts quota with.
 *
 * Minute windows run on CLOCK_MONOTONIC, which is one clock for every
 * process on a host and never jumps.  The daily window runs on the wall
 * clock and the calendar day of America/Los_Angeles, whose midnight is
 * when Google resets requests-per-day.  The Pacific rules are computed
 * here rather than read from tzdata so that no process has to touch TZ
 * (not thread-safe) and the answer is the same in every container.
 */
#ifndef GR_SHM_CLOCK_H
#define GR_SHM_CLOCK_H

#include <stdint.h>
#include <time.h>

#define GR_NS_PER_S INT64_C(1000000000)

/* ns since an arbitrary host-wide origin, CLOCK_MONOTONIC */
int64_t gr_shm_now_mono(void);

/* ns since 1970-01-01T00:00:00Z, CLOCK_REALTIME */
int64_t gr_shm_now_wall(void);

/*
 * The coarse clocks (CLOCK_MONOTONIC_COARSE, CLOCK_REALTIME_COARSE): the
 * time of the kernel's last timer update, a quarter of the cost of the
 * precise ones and never ahead of them, but behind by more than their
 * resolution (4-8 ms here, 32 ms under load, measured).  Only for what
 * may be seen late; never for an instant a release counts from.
 */
static inline int64_t
gr_shm_now_mono_coarse(void)
{
    struct timespec ts;

    /* inline: read on every reservation, where a call costs a tenth */
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * GR_NS_PER_S + ts.tv_nsec;
}

int64_t gr_shm_now_wall_coarse(void);

/* Resolution of the coarse monotonic clock in ns (0 if unknown). */
int64_t gr_shm_coarse_res_ns(void);

/*
 * Offset of Pacific local time from UTC at unix time t (seconds):
 * -7 h while daylight saving time is in force, else -8 h.  US rules since
 * 2007: DST from the second Sunday of March, 02:00 PST, to the first
 * Sunday of November, 02:00 PDT.
 */
int32_t gr_shm_pacific_offset_s(int64_t unix_s);

/* The Pacific calendar day of unix time t, as days since 1970-01-01. */
int32_t gr_shm_pacific_day(int64_t unix_s);

/* unix time (seconds) of the first Pacific midnight strictly after t */
int64_t gr_shm_next_pacific_midnight(int64_t unix_s);

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d. */
int64_t gr_shm_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
