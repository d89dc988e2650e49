/*
 * clock.h - the two clocks gemroute counts quota with.
 *
 * Minute windows run on CLOCK_MONOTONIC, which is one clock for every
 * process on a host and never jumps.  The daily window runs on the wall
 * clock and the calendar day of America/Los_Angeles, whose midnight is
 * when Google resets requests-per-day.  No process touches TZ (not
 * thread-safe): the router reads America/Los_Angeles from the tz
 * database (tzif.c) and publishes the next midnights in the table's
 * header; every process reads them there (gr_shm_pacific_day_in()).  The
 * US rule of 2007 is written out below only as the fallback when the
 * table holds none, or none that is plausible for the instant asked.
 */
#ifndef GR_SHM_CLOCK_H
#define GR_SHM_CLOCK_H

#include <stdint.h>
#include <time.h>

#include "layout.h"

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

/*
 * Published Pacific days: day first + i begins at start[i] (unix s).
 * Plausible: first > 0, start[0] within 26 h of first's UTC midnight,
 * and each day 23 to 25 hours long.
 */
struct gr_shm_days {
    int32_t first;
    int64_t start[GR_SHM_DAY_STARTS];
};

struct gr_shm_header;

int gr_shm_days_plausible(const struct gr_shm_days *d);

/* The day of t from d and the next midnight: 0, or -ERANGE when t is
 * outside [start[0], start[last]). */
int gr_shm_days_lookup(const struct gr_shm_days *d, int64_t unix_s,
                       int32_t *day, int64_t *next_midnight_s);

/* Router only: publish d in the header under day_seq. */
void gr_shm_days_publish(struct gr_shm_header *h,
                         const struct gr_shm_days *d);

/*
 * Copy the header's days: 0, -EAGAIN (every try saw a writer), -ENOENT
 * (none published) or -EINVAL (implausible).  Writes nothing: h may be
 * mapped read-only.
 */
int gr_shm_days_read(struct gr_shm_header *h, struct gr_shm_days *d);

/*
 * The Pacific day of t and the next midnight (may be NULL) from the
 * header's published days, or from the 2007 rule when h is NULL or its
 * days are missing, torn, implausible or do not cover t.  *published
 * (may be NULL) says which: a caller that caches the answer keeps a
 * fallback only briefly, so that days the router publishes later win.
 */
int32_t gr_shm_pacific_day_in(struct gr_shm_header *h, int64_t unix_s,
                              int64_t *next_midnight_s, int *published);

#endif
