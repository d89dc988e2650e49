/*
 * tzif.c - read a compiled tz database file (TZif, RFC 8536) and find a
 * zone's midnights in it.
 *
 * Invariant protected: what this returns comes from the file or is an
 * error.  A file that is truncated, inconsistent or says nothing about
 * the instant asked for gives -EINVAL/-ERANGE, never a guess, so the
 * caller can fall back to the hand-written rule (clock.c) and say so.
 * The file is input: every count, index and offset is checked against
 * the buffer before it is read.  libc only.
 */
#include "tzif.h"

#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_UTOFF (26 * 3600)   /* RFC 8536: -89999 ..  93599 */
#define MAX_FILE (1 << 20)

static uint32_t
be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

/* The 44-byte header at p: 0 or -EINVAL.  *version is 0 for v1. */
static int
header(const uint8_t *p, size_t len, int *version, struct counts *c)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -EINVAL;
    if (p[4] != 0 && (p[4] < '2' || p[4] > '4'))
        return -EINVAL;
    *version = p[4] == 0 ? 0 : p[4] - '0';
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chars = be32(p + 40);
    if (c->type == 0 || c->type > GR_TZ_MAX_TYPES || c->chars == 0 ||
        (c->isut != 0 && c->isut != c->type) ||
        (c->isstd != 0 && c->isstd != c->type) || c->time > (1u << 24) ||
        c->leap > (1u << 16) || c->chars > (1u << 16))
        return -EINVAL;
    return 0;
}

static size_t
block_len(const struct counts *c, size_t tsize)
{
    return (size_t)c->time * tsize + c->time + (size_t)c->type * 6 +
           c->chars + (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* The data block at p (tsize 4 or 8 bytes per time) into tz. */
static int
block(const uint8_t *p, const struct counts *c, size_t tsize,
      struct gr_tz *tz)
{
    const uint8_t *types = p + (size_t)c->time * tsize;
    const uint8_t *rec = types + c->time;
    uint32_t i;

    if (c->leap != 0)
        return -ENOTSUP;
    if (c->time > GR_TZ_MAX_TRANS)
        return -E2BIG;
    tz->n_trans = c->time;
    tz->n_types = c->type;
    for (i = 0; i < c->time; i++) {
        tz->trans[i] = tsize == 8 ? be64(p + (size_t)i * 8)
                                  : (int32_t)be32(p + (size_t)i * 4);
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1])
            return -EINVAL;
        if (types[i] >= c->type)
            return -EINVAL;
        tz->trans_type[i] = types[i];
    }
    for (i = 0; i < c->type; i++) {
        int32_t off = (int32_t)be32(rec + (size_t)i * 6);

        if (off < -MAX_UTOFF || off > MAX_UTOFF || rec[i * 6 + 4] > 1 ||
            rec[i * 6 + 5] >= c->chars)
            return -EINVAL;
        tz->type_utoff[i] = off;
        tz->type_isdst[i] = rec[i * 6 + 4];
    }
    return 0;
}

int
gr_shm_tzif_parse(const uint8_t *buf, size_t len, struct gr_tz *tz)
{
    struct counts c;
    const uint8_t *p = buf, *end = buf + len, *nl;
    char footer[128];
    size_t n;
    int version, rc;

    memset(tz, 0, sizeof(*tz));
    if ((rc = header(p, (size_t)(end - p), &version, &c)) != 0)
        return rc;
    n = 44 + block_len(&c, 4);
    if (n > (size_t)(end - p))
        return -EINVAL;
    if (version == 0)
        return block(p + 44, &c, 4, tz);
    /* v2+: skip the 32-bit block; the second header and block are the
     * whole truth, then the footer "\nTZ\n". */
    p += n;
    if ((rc = header(p, (size_t)(end - p), &version, &c)) != 0 ||
        version == 0)
        return rc != 0 ? rc : -EINVAL;
    n = 44 + block_len(&c, 8);
    if (n > (size_t)(end - p))
        return -EINVAL;
    if ((rc = block(p + 44, &c, 8, tz)) != 0)
        return rc;
    p += n;
    if (p >= end || *p != '\n')
        return -EINVAL;
    p++;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL || (size_t)(nl - p) >= sizeof(footer))
        return -EINVAL;
    memcpy(footer, p, (size_t)(nl - p));
    footer[nl - p] = '\0';
    if (footer[0] == '\0')
        return 0;       /* no rule: nothing known after the last change */
    return gr_shm_tz_parse_rule(footer, tz);
}

int
gr_shm_tzif_load(const char *path, struct gr_tz *tz)
{
    uint8_t *buf = NULL;
    struct stat st;
    size_t got = 0;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
        rc = -EINVAL;
        goto fail;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EINVAL;
            goto fail;
        }
        got += (size_t)r;
    }
    rc = gr_shm_tzif_parse(buf, got, tz);
fail:
    free(buf);
    close(fd);
    return rc;
}

/* --- the POSIX TZ string of the footer --------------------------------- */

/* A zone abbreviation: 3+ letters, or <...> of [A-Za-z0-9+-]. */
static const char *
tz_name(const char *s)
{
    const char *b = s;

    if (*s == '<') {
        for (s++; *s != '>'; s++)
            if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                  (*s >= '0' && *s <= '9') || *s == '+' || *s == '-'))
                return NULL;
        return s - b >= 4 ? s + 1 : NULL;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    return s - b >= 3 ? s : NULL;
}

static const char *
tz_num(const char *s, int max, int *v)
{
    int n = 0, digits = 0;

    while (*s >= '0' && *s <= '9' && digits < 4) {
        n = n * 10 + (*s++ - '0');
        digits++;
    }
    if (digits == 0 || n > max)
        return NULL;
    *v = n;
    return s;
}

/* [+-]hh[:mm[:ss]] with hours up to max: seconds in *v. */
static const char *
tz_time(const char *s, int max, int32_t *v)
{
    int sign = 1, h, m = 0, sec = 0;

    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    if ((s = tz_num(s, max, &h)) == NULL)
        return NULL;
    if (*s == ':' && ((s = tz_num(s + 1, 59, &m)) == NULL))
        return NULL;
    if (*s == ':' && ((s = tz_num(s + 1, 59, &sec)) == NULL))
        return NULL;
    *v = sign * (h * 3600 + m * 60 + sec);
    return s;
}

static const char *
tz_date(const char *s, struct gr_tz_date *d)
{
    int a, b, c;

    if (*s == 'M') {
        if ((s = tz_num(s + 1, 12, &a)) == NULL || a < 1 || *s != '.' ||
            (s = tz_num(s + 1, 5, &b)) == NULL || b < 1 || *s != '.' ||
            (s = tz_num(s + 1, 6, &c)) == NULL)
            return NULL;
        d->kind = 'M';
        d->m = (uint8_t)a;
        d->w = (uint8_t)b;
        d->d = (uint8_t)c;
    } else if (*s == 'J') {
        if ((s = tz_num(s + 1, 365, &a)) == NULL || a < 1)
            return NULL;
        d->kind = 'J';
        d->n = (int16_t)a;
    } else {
        if ((s = tz_num(s, 365, &a)) == NULL)
            return NULL;
        d->kind = 'N';
        d->n = (int16_t)a;
    }
    d->time_s = 2 * 3600;
    if (*s == '/' && (s = tz_time(s + 1, 167, &d->time_s)) == NULL)
        return NULL;
    return s;
}

int
gr_shm_tz_parse_rule(const char *s, struct gr_tz *tz)
{
    int32_t off;

    if ((s = tz_name(s)) == NULL || (s = tz_time(s, 24, &off)) == NULL)
        return -EINVAL;
    tz->std_utoff = -off;           /* POSIX counts west as positive */
    tz->has_rule = 1;
    if (*s == '\0')
        return 0;
    if ((s = tz_name(s)) == NULL)
        return -EINVAL;
    tz->dst_utoff = tz->std_utoff + 3600;
    if (*s != ',' && *s != '\0') {
        if ((s = tz_time(s, 24, &off)) == NULL)
            return -EINVAL;
        tz->dst_utoff = -off;
    }
    /* A DST name without a rule: implementation-defined; not guessed. */
    if (*s != ',' || (s = tz_date(s + 1, &tz->start)) == NULL ||
        *s != ',' || (s = tz_date(s + 1, &tz->end)) == NULL || *s != '\0')
        return -EINVAL;
    tz->has_rule = 2;
    return 0;
}

/* --- times from the transitions and the rule --------------------------- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static bool
leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Day (since epoch) a rule date falls on in year y. */
static int64_t
rule_day(int64_t y, const struct gr_tz_date *d)
{
    int64_t jan1 = gr_shm_days_from_civil(y, 1, 1), first, next, day, dow;

    if (d->kind == 'J')
        return jan1 + d->n - 1 + (leap_year(y) && d->n >= 60);
    if (d->kind == 'N')
        return jan1 + d->n;
    first = gr_shm_days_from_civil(y, d->m, 1);
    next = d->m == 12 ? gr_shm_days_from_civil(y + 1, 1, 1)
                      : gr_shm_days_from_civil(y, d->m + 1u, 1);
    dow = (first + 4) - floor_div(first + 4, 7) * 7;   /* 0 = Sunday */
    day = first + (d->d - dow + 7) % 7 + 7 * (d->w - 1);
    while (day >= next)
        day -= 7;
    return day;
}

/* The rule's offset at t and its next change after t. */
static void
rule_at(const struct gr_tz *tz, int64_t t, int32_t *utoff, int64_t *next)
{
    int64_t y = 1970 + floor_div(floor_div(t, 86400), 366), yy;
    int64_t best_at = INT64_MIN;
    int32_t best_off = tz->std_utoff;

    *next = INT64_MAX;
    if (tz->has_rule != 2) {
        *utoff = tz->std_utoff;
        return;
    }
    /* y is at most the year of t; the years around it hold the change
     * before t and the one after */
    for (yy = y - 1; yy <= y + 3; yy++) {
        int64_t on = rule_day(yy, &tz->start) * 86400 + tz->start.time_s -
                     tz->std_utoff;
        int64_t off = rule_day(yy, &tz->end) * 86400 + tz->end.time_s -
                      tz->dst_utoff;

        if (on <= t && on > best_at) {
            best_at = on;
            best_off = tz->dst_utoff;
        }
        if (off <= t && off > best_at) {
            best_at = off;
            best_off = tz->std_utoff;
        }
        if (on > t && on < *next)
            *next = on;
        if (off > t && off < *next)
            *next = off;
    }
    *utoff = best_off;
}

int
gr_shm_tz_at(const struct gr_tz *tz, int64_t t, int32_t *utoff,
             int64_t *next)
{
    uint32_t lo = 0, hi = tz->n_trans;

    if (tz->n_trans == 0 || t < tz->trans[0]) {
        if (tz->n_trans == 0 && tz->has_rule != 0) {
            rule_at(tz, t, utoff, next);
            return 0;
        }
        /* before the first change: local time type 0 */
        *utoff = tz->type_utoff[0];
        *next = tz->n_trans == 0 ? INT64_MAX : tz->trans[0];
        return 0;
    }
    while (hi - lo > 1) {       /* trans[lo] <= t < trans[hi] */
        uint32_t mid = lo + (hi - lo) / 2;

        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (hi < tz->n_trans) {
        *utoff = tz->type_utoff[tz->trans_type[lo]];
        *next = tz->trans[hi];
        return 0;
    }
    if (tz->has_rule == 0)
        return -ERANGE;
    rule_at(tz, t, utoff, next);
    return 0;
}

int
gr_shm_tz_day(const struct gr_tz *tz, int64_t t, int32_t *day,
              int64_t *next_midnight)
{
    int64_t cur = t, next, d0, cand;
    int32_t off;
    int i, rc;

    if ((rc = gr_shm_tz_at(tz, t, &off, &next)) != 0)
        return rc;
    d0 = floor_div(t + off, 86400);
    for (i = 0; i < 64; i++) {
        if (floor_div(cur + off, 86400) > d0) {
            *next_midnight = cur;   /* a change jumped over midnight */
            goto done;
        }
        cand = (d0 + 1) * 86400 - off;
        if (cand < next) {
            *next_midnight = cand;
            goto done;
        }
        cur = next;
        if ((rc = gr_shm_tz_at(tz, cur, &off, &next)) != 0)
            return rc;
    }
    return -ERANGE;
done:
    if (d0 < INT32_MIN || d0 >= INT32_MAX)
        return -ERANGE;
    *day = (int32_t)d0;
    return 0;
}

int
gr_shm_tz_days(const struct gr_tz *tz, int64_t t, struct gr_shm_days *out)
{
    int64_t u = t - 30 * 3600, nm, start = INT64_MIN;
    int32_t d;
    int i, rc;

    /* the last midnight at or before t: walk from 30 h earlier */
    for (i = 0; i < 8; i++) {
        if ((rc = gr_shm_tz_day(tz, u, &d, &nm)) != 0)
            return rc;
        if (nm > t)
            break;
        start = u = nm;
    }
    if (start == INT64_MIN || i == 8)
        return -ERANGE;
    if ((rc = gr_shm_tz_day(tz, start, &out->first, &nm)) != 0)
        return rc;
    out->start[0] = start;
    for (i = 1; i < GR_SHM_DAY_STARTS; i++) {
        out->start[i] = nm;
        if ((rc = gr_shm_tz_day(tz, nm, &d, &nm)) != 0)
            return rc;
        if (d != out->first + i)
            return -ERANGE;     /* a skipped day: not one the table holds */
    }
    return 0;
}
