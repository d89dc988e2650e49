/*
 * tzif.h - a small reader of the tz database's compiled files (TZif,
 * RFC 8536, versions 1 to 4), and the day boundaries of a zone.
 *
 * The router reads America/Los_Angeles with it and publishes the next
 * Pacific midnights in the table (clock.h, gr_shm_days); no process ever
 * sets TZ.  libc only.
 */
#ifndef GR_SHM_TZIF_H
#define GR_SHM_TZIF_H

#include <stddef.h>
#include <stdint.h>

#define GR_TZ_MAX_TRANS 2048    /* real zones have a few hundred */
#define GR_TZ_MAX_TYPES 256     /* RFC 8536: typecnt <= 256 */

/* A POSIX TZ rule date: Jn (julian 1..365, no Feb 29), n (0..365), or
 * Mm.w.d (week w of month m, weekday d, w = 5: the last). */
struct gr_tz_date {
    char kind;                  /* 'J', 'N' or 'M' */
    int16_t n;                  /* day for J and N */
    uint8_t m, w, d;
    int32_t time_s;             /* local time of day of the change */
};

struct gr_tz {
    uint32_t n_trans;
    uint32_t n_types;
    int64_t trans[GR_TZ_MAX_TRANS];     /* unix s, ascending */
    uint8_t trans_type[GR_TZ_MAX_TRANS];
    int32_t type_utoff[GR_TZ_MAX_TYPES];    /* s east of UTC */
    uint8_t type_isdst[GR_TZ_MAX_TYPES];
    /* the footer (v2+): the rule after the last transition */
    int has_rule;               /* 0 none, 1 fixed offset, 2 with DST */
    int32_t std_utoff;          /* s east of UTC */
    int32_t dst_utoff;
    struct gr_tz_date start, end;
};

/*
 * Parse a TZif file of len bytes into tz.  0, -EINVAL (not TZif,
 * truncated, inconsistent, an offset beyond +-26 h, a footer it cannot
 * read), -E2BIG (more transitions than GR_TZ_MAX_TRANS) or -ENOTSUP
 * (leap seconds: "right/" zones count time otherwise).
 */
int gr_shm_tzif_parse(const uint8_t *buf, size_t len, struct gr_tz *tz);

/* Read and parse the file at path: 0 or -errno. */
int gr_shm_tzif_load(const char *path, struct gr_tz *tz);

/*
 * Parse a POSIX TZ string (a TZif footer, without its newlines) into
 * tz's rule.  0 or -EINVAL.
 */
int gr_shm_tz_parse_rule(const char *s, struct gr_tz *tz);

/*
 * The offset from UTC at unix time t, and in *next the first instant
 * after t at which it may change (INT64_MAX: never).  0, or -ERANGE when
 * the file says nothing about t (after its last transition, no footer).
 */
int gr_shm_tz_at(const struct gr_tz *tz, int64_t t, int32_t *utoff,
                 int64_t *next);

/*
 * The local calendar day (days since 1970-01-01) of t and the start of
 * the next day (the first instant after t whose local day is later).
 * 0 or -ERANGE.
 */
int gr_shm_tz_day(const struct gr_tz *tz, int64_t t, int32_t *day,
                  int64_t *next_midnight);

struct gr_shm_days;

/*
 * The start of the local day that holds t and of the GR_SHM_DAY_STARTS - 1
 * days after it, for publishing (clock.h).  0 or -ERANGE.
 */
int gr_shm_tz_days(const struct gr_tz *tz, int64_t t,
                   struct gr_shm_days *out);

#endif
