/*
 * test_clock.c - the Pacific calendar day, across both DST changes of
 * 2026 and 2027, checked against dates written out by hand; the TZif
 * reader (shm/tzif.c) on the system's America/Los_Angeles and on files
 * written here (v1 only, v2 with a footer, truncated, garbage); and the
 * range checks on published days.
 */
#include "clock.h"
#include "testlib.h"
#include "tzif.h"
#include "tzif_write.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define H 3600

/* unix seconds of y-m-d hh:mm:ss UTC */
static int64_t
utc(int y, unsigned m, unsigned d, int hh, int mm, int ss)
{
    return gr_shm_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

static int32_t
day(int y, unsigned m, unsigned d)
{
    return (int32_t)gr_shm_days_from_civil(y, m, d);
}

static int32_t
off(int64_t t)
{
    return gr_shm_pacific_offset_s(t);
}

static int32_t
pday(int64_t t)
{
    return gr_shm_pacific_day(t);
}

static int64_t
next(int64_t t)
{
    return gr_shm_next_pacific_midnight(t);
}

static void
test_offsets_around_dst(void)
{
    /* 2026: DST starts Sun 8 March 10:00 UTC, ends Sun 1 Nov 09:00 UTC. */
    CU_ASSERT_EQUAL(off(utc(2026, 3, 8, 9, 59, 59)), -8 * H);
    CU_ASSERT_EQUAL(off(utc(2026, 3, 8, 10, 0, 0)), -7 * H);
    CU_ASSERT_EQUAL(off(utc(2026, 11, 1, 8, 59, 59)), -7 * H);
    CU_ASSERT_EQUAL(off(utc(2026, 11, 1, 9, 0, 0)), -8 * H);
    /* 2027: starts Sun 14 March, ends Sun 7 November. */
    CU_ASSERT_EQUAL(off(utc(2027, 3, 14, 9, 59, 59)), -8 * H);
    CU_ASSERT_EQUAL(off(utc(2027, 3, 14, 10, 0, 0)), -7 * H);
    CU_ASSERT_EQUAL(off(utc(2027, 11, 7, 8, 59, 59)), -7 * H);
    CU_ASSERT_EQUAL(off(utc(2027, 11, 7, 9, 0, 0)), -8 * H);
}

static void
test_day_boundary_in_winter_and_summer(void)
{
    /* Winter: Pacific midnight is 08:00 UTC. */
    CU_ASSERT_EQUAL(pday(utc(2026, 11, 29, 7, 59, 59)), day(2026, 11, 28));
    CU_ASSERT_EQUAL(pday(utc(2026, 11, 29, 8, 0, 0)), day(2026, 11, 29));
    CU_ASSERT_EQUAL(next(utc(2026, 11, 28, 12, 0, 0)),
                    utc(2026, 11, 29, 8, 0, 0));
    /* Summer: 07:00 UTC. */
    CU_ASSERT_EQUAL(pday(utc(2026, 7, 1, 6, 59, 59)), day(2026, 6, 30));
    CU_ASSERT_EQUAL(pday(utc(2026, 7, 1, 7, 0, 0)), day(2026, 7, 1));
    CU_ASSERT_EQUAL(next(utc(2026, 7, 1, 6, 59, 59)),
                    utc(2026, 7, 1, 7, 0, 0));
}

static void
test_midnights_on_dst_days(void)
{
    /* The midnight that starts a DST-change day is still standard (March)
     * or daylight (November) time; the next one is the other. */
    CU_ASSERT_EQUAL(next(utc(2026, 3, 7, 20, 0, 0)),
                    utc(2026, 3, 8, 8, 0, 0));
    CU_ASSERT_EQUAL(next(utc(2026, 3, 8, 8, 0, 0)),
                    utc(2026, 3, 9, 7, 0, 0));
    CU_ASSERT_EQUAL(next(utc(2026, 10, 31, 20, 0, 0)),
                    utc(2026, 11, 1, 7, 0, 0));
    CU_ASSERT_EQUAL(next(utc(2026, 11, 1, 7, 0, 0)),
                    utc(2026, 11, 2, 8, 0, 0));
    CU_ASSERT_EQUAL(next(utc(2027, 3, 14, 7, 59, 59)),
                    utc(2027, 3, 14, 8, 0, 0));
    CU_ASSERT_EQUAL(next(utc(2027, 11, 7, 12, 0, 0)),
                    utc(2027, 11, 8, 8, 0, 0));
    /* Days are 23 and 25 hours long there. */
    CU_ASSERT_EQUAL(utc(2026, 3, 9, 7, 0, 0) - utc(2026, 3, 8, 8, 0, 0),
                    23 * H);
    CU_ASSERT_EQUAL(pday(utc(2026, 11, 2, 7, 59, 59)), day(2026, 11, 1));
}

static void
test_every_half_hour_of_two_years_is_consistent(void)
{
    int64_t t;
    unsigned bad = 0;

    for (t = utc(2026, 1, 1, 0, 17, 0); t < utc(2028, 1, 1, 0, 0, 0);
         t += 1800) {
        int64_t next = gr_shm_next_pacific_midnight(t);

        if (!(next > t && next - t <= 25 * 3600 &&
              gr_shm_pacific_day(next) == gr_shm_pacific_day(t) + 1 &&
              gr_shm_pacific_day(next - 1) == gr_shm_pacific_day(t)))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

#define LA_FILE "/usr/share/zoneinfo/America/Los_Angeles"

static struct gr_tz tz;             /* big: not on the stack */
static uint8_t file[8192];

/* The system's tzdata (tools/deps.sh installs it) agrees with the rule
 * for every half hour of 2026 and 2027. */
static void
test_system_tzdata_matches_rule(void)
{
    unsigned bad = 0;
    int64_t t, nm;
    int32_t d;

    CU_ASSERT_EQUAL_FATAL(gr_shm_tzif_load(LA_FILE, &tz), 0);
    for (t = utc(2026, 1, 1, 0, 17, 0); t < utc(2028, 1, 1, 0, 0, 0);
         t += 1800)
        if (gr_shm_tz_day(&tz, t, &d, &nm) != 0 || d != pday(t) ||
            nm != next(t))
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* and far past its last transition, by its footer: 13 March 2101
     * is the second Sunday, so the next midnight is daylight time */
    CU_ASSERT_EQUAL(gr_shm_tz_day(&tz, utc(2101, 3, 13, 9, 0, 0), &d, &nm),
                    0);
    CU_ASSERT_EQUAL(nm, utc(2101, 3, 14, 7, 0, 0));
    CU_ASSERT_EQUAL(d, day(2101, 3, 13));
}

/* v2, no transitions, the footer alone: DST from the first Sunday of
 * March to the last Sunday of October (not the 2007 rule). */
static void
test_v2_footer_other_rule(void)
{
    int32_t off[1] = { -8 * H };
    uint8_t dst[1] = { 0 };
    size_t len = tzw_file(file, '2', 0, NULL, NULL, 1, off, dst,
                          "PST8PDT,M3.1.0,M10.5.0");
    struct gr_shm_days days;
    int64_t nm;
    int32_t d;

    CU_ASSERT_EQUAL_FATAL(gr_shm_tzif_parse(file, len, &tz), 0);
    CU_ASSERT_EQUAL(tz.has_rule, 2);
    /* 2026-03-01 is the first Sunday: the file's DST starts a week
     * before the rule's, so its midnight of 3 March is 07:00 UTC */
    CU_ASSERT_EQUAL(gr_shm_tz_day(&tz, utc(2026, 3, 3, 7, 30, 0), &d, &nm),
                    0);
    CU_ASSERT_EQUAL(d, day(2026, 3, 3));
    CU_ASSERT_EQUAL(nm, utc(2026, 3, 4, 7, 0, 0));
    CU_ASSERT_EQUAL(pday(utc(2026, 3, 3, 7, 30, 0)), day(2026, 3, 2));
    CU_ASSERT_EQUAL(next(utc(2026, 3, 3, 7, 30, 0)),
                    utc(2026, 3, 3, 8, 0, 0));
    /* and ends on 25 October 2026, a week before the rule's 1 November */
    CU_ASSERT_EQUAL(gr_shm_tz_day(&tz, utc(2026, 10, 27, 7, 30, 0), &d,
                                  &nm), 0);
    CU_ASSERT_EQUAL(d, day(2026, 10, 26));
    CU_ASSERT_EQUAL(nm, utc(2026, 10, 27, 8, 0, 0));
    /* the days around the change: a 23 h day on 1 March */
    CU_ASSERT_EQUAL(gr_shm_tz_days(&tz, utc(2026, 2, 28, 12, 0, 0), &days),
                    0);
    CU_ASSERT_EQUAL(days.first, day(2026, 2, 28));
    CU_ASSERT_EQUAL(days.start[0], utc(2026, 2, 28, 8, 0, 0));
    CU_ASSERT_EQUAL(days.start[1], utc(2026, 3, 1, 8, 0, 0));
    CU_ASSERT_EQUAL(days.start[2], utc(2026, 3, 2, 7, 0, 0));
    CU_ASSERT_EQUAL(days.start[5], utc(2026, 3, 5, 7, 0, 0));
    CU_ASSERT(gr_shm_days_plausible(&days));
}

/* v1 only: the transitions of 2026, nothing known after the last. */
static void
test_v1_only(void)
{
    int64_t tr[2] = { utc(2026, 3, 8, 10, 0, 0), utc(2026, 11, 1, 9, 0, 0) };
    uint8_t ty[2] = { 1, 0 };
    int32_t off[2] = { -8 * H, -7 * H };
    uint8_t dst[2] = { 0, 1 };
    size_t len = tzw_file(file, 0, 2, tr, ty, 2, off, dst, NULL);
    int64_t nm;
    int32_t d, o;

    CU_ASSERT_EQUAL_FATAL(gr_shm_tzif_parse(file, len, &tz), 0);
    CU_ASSERT_EQUAL(tz.n_trans, 2);
    CU_ASSERT_EQUAL(tz.has_rule, 0);
    CU_ASSERT_EQUAL(gr_shm_tz_at(&tz, utc(2026, 1, 5, 0, 0, 0), &o, &nm), 0);
    CU_ASSERT_EQUAL(o, -8 * H);
    CU_ASSERT_EQUAL(nm, tr[0]);
    CU_ASSERT_EQUAL(gr_shm_tz_day(&tz, utc(2026, 7, 1, 6, 0, 0), &d, &nm),
                    0);
    CU_ASSERT_EQUAL(d, day(2026, 6, 30));
    CU_ASSERT_EQUAL(nm, utc(2026, 7, 1, 7, 0, 0));
    /* the day of the change back: its end is after the last transition */
    CU_ASSERT_EQUAL(gr_shm_tz_day(&tz, utc(2026, 11, 1, 12, 0, 0), &d, &nm),
                    -ERANGE);
    CU_ASSERT_EQUAL(gr_shm_tz_day(&tz, utc(2027, 1, 1, 0, 0, 0), &d, &nm),
                    -ERANGE);
}

/* Every proper prefix of a good file is refused, as are bad files. */
static void
test_truncated_and_garbage(void)
{
    int64_t tr[2] = { utc(2026, 3, 8, 10, 0, 0), utc(2026, 11, 1, 9, 0, 0) };
    uint8_t ty[2] = { 1, 0 }, bad_ty[2] = { 1, 2 };
    int32_t off[2] = { -8 * H, -7 * H }, big[2] = { -8 * H, 27 * H };
    uint8_t dst[2] = { 0, 1 };
    int64_t back[2] = { tr[1], tr[0] };
    size_t len, n;
    unsigned bad = 0;

    len = tzw_file(file, '2', 2, tr, ty, 2, off, dst,
                   "PST8PDT,M3.2.0,M11.1.0");
    CU_ASSERT_EQUAL_FATAL(gr_shm_tzif_parse(file, len, &tz), 0);
    for (n = 0; n < len; n++)
        if (gr_shm_tzif_parse(file, n, &tz) == 0)
            bad++;
    CU_ASSERT_EQUAL(bad, 0);
    /* not TZif; an unknown version */
    CU_ASSERT_EQUAL(gr_shm_tzif_parse((const uint8_t *)"TZjf2 garbage", 13,
                                      &tz), -EINVAL);
    file[4] = '9';
    CU_ASSERT_EQUAL(gr_shm_tzif_parse(file, len, &tz), -EINVAL);
    /* a transition type out of range; transitions out of order; an
     * offset beyond 26 h */
    len = tzw_file(file, '2', 2, tr, bad_ty, 2, off, dst, "");
    CU_ASSERT_EQUAL(gr_shm_tzif_parse(file, len, &tz), -EINVAL);
    len = tzw_file(file, '2', 2, back, ty, 2, off, dst, "");
    CU_ASSERT_EQUAL(gr_shm_tzif_parse(file, len, &tz), -EINVAL);
    len = tzw_file(file, '2', 2, tr, ty, 2, big, dst, "");
    CU_ASSERT_EQUAL(gr_shm_tzif_parse(file, len, &tz), -EINVAL);
    /* footers it cannot read, or that leave DST without a rule */
    len = tzw_file(file, '2', 2, tr, ty, 2, off, dst, "PST8PDT");
    CU_ASSERT_EQUAL(gr_shm_tzif_parse(file, len, &tz), -EINVAL);
    len = tzw_file(file, '2', 2, tr, ty, 2, off, dst, "PST8PDT,M13.1.0,M1");
    CU_ASSERT_EQUAL(gr_shm_tzif_parse(file, len, &tz), -EINVAL);
    len = tzw_file(file, '2', 2, tr, ty, 2, off, dst, "P8");
    CU_ASSERT_EQUAL(gr_shm_tzif_parse(file, len, &tz), -EINVAL);
    /* leap seconds ("right/" zones) */
    len = tzw_file(file, 0, 2, tr, ty, 2, off, dst, NULL);
    file[31] = 1;
    CU_ASSERT_EQUAL(gr_shm_tzif_parse(file, len + 8, &tz), -ENOTSUP);
    /* random bytes after a good magic never parse, never crash */
    srand(16);
    for (n = 0; n < 2000; n++) {
        size_t i;

        memcpy(file, "TZif2", 5);
        for (i = 5; i < 200; i++)
            file[i] = (uint8_t)rand();
        if (gr_shm_tzif_parse(file, 200, &tz) == 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(gr_shm_tzif_load("/nonexistent/zone", &tz), -ENOENT);
}

static void
test_footer_forms(void)
{
    memset(&tz, 0, sizeof(tz));
    CU_ASSERT_EQUAL(gr_shm_tz_parse_rule("<+0530>-5:30", &tz), 0);
    CU_ASSERT_EQUAL(tz.has_rule, 1);
    CU_ASSERT_EQUAL(tz.std_utoff, 5 * H + 30 * 60);
    CU_ASSERT_EQUAL(gr_shm_tz_parse_rule("<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",
                                         &tz), 0);
    CU_ASSERT_EQUAL(tz.has_rule, 2);
    CU_ASSERT_EQUAL(tz.dst_utoff, -2 * H);
    CU_ASSERT_EQUAL(tz.start.time_s, -2 * H);
    CU_ASSERT_EQUAL(gr_shm_tz_parse_rule("EST5EDT,J60/2,300", &tz), 0);
    CU_ASSERT_EQUAL(tz.start.kind, 'J');
    CU_ASSERT_EQUAL(tz.end.kind, 'N');
    CU_ASSERT_EQUAL(gr_shm_tz_parse_rule("AB8", &tz), -EINVAL);
    CU_ASSERT_EQUAL(gr_shm_tz_parse_rule("<+05", &tz), -EINVAL);
}

/* What a client accepts from the table: 23 to 25 h days, a first day
 * near its start, and t inside the days. */
static void
test_published_days_range_checks(void)
{
    struct gr_shm_days d = { 0 };
    int64_t nm;
    int32_t dd;
    int i;

    CU_ASSERT_FALSE(gr_shm_days_plausible(&d));     /* none published */
    d.first = day(2026, 12, 3);
    for (i = 0; i < GR_SHM_DAY_STARTS; i++)
        d.start[i] = utc(2026, 12, 3 + i, 8, 0, 0);
    CU_ASSERT_TRUE(gr_shm_days_plausible(&d));
    CU_ASSERT_EQUAL(gr_shm_days_lookup(&d, utc(2026, 12, 4, 8, 0, 0), &dd,
                                       &nm), 0);
    CU_ASSERT_EQUAL(dd, day(2026, 12, 4));
    CU_ASSERT_EQUAL(nm, utc(2026, 12, 5, 8, 0, 0));
    CU_ASSERT_EQUAL(gr_shm_days_lookup(&d, utc(2026, 12, 3, 7, 59, 59), &dd,
                                       &nm), -ERANGE);
    CU_ASSERT_EQUAL(gr_shm_days_lookup(&d, d.start[GR_SHM_DAY_STARTS - 1],
                                       &dd, &nm), -ERANGE);
    d.start[3] -= 2 * H;        /* a 22 h day */
    CU_ASSERT_FALSE(gr_shm_days_plausible(&d));
    d.start[3] += 4 * H;        /* a 26 h day */
    CU_ASSERT_FALSE(gr_shm_days_plausible(&d));
    d.start[3] -= 2 * H;
    d.first += 2;               /* a day number two days off */
    CU_ASSERT_FALSE(gr_shm_days_plausible(&d));
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"offsets around DST", test_offsets_around_dst},
        {"day boundary winter/summer",
         test_day_boundary_in_winter_and_summer},
        {"midnights on DST days", test_midnights_on_dst_days},
        {"two years consistent",
         test_every_half_hour_of_two_years_is_consistent},
        {"system tzdata matches the rule", test_system_tzdata_matches_rule},
        {"TZif v2 footer with another rule", test_v2_footer_other_rule},
        {"TZif v1 only", test_v1_only},
        {"TZif truncated and garbage", test_truncated_and_garbage},
        {"TZ footer forms", test_footer_forms},
        {"published days range checks", test_published_days_range_checks},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"clock", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_clock", suites, 30);
}
