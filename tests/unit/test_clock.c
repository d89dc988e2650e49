/*
 * test_clock.c - the Pacific calendar day, across both DST changes of
 * 2026 and 2027, checked against dates written out by hand.
 */
#include "clock.h"
#include "testlib.h"

#include <stdint.h>

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
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"clock", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_clock", suites, 30);
}
