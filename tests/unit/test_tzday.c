/*
 * test_tzday.c - the Pacific days the router publishes follow the tz
 * database file it reads, not the US rule of 2007 built into clock.c.
 *
 * A real gemrouted reads a TZif file written here (GEMROUTE_TZFILE, the
 * test-only way to point it elsewhere) whose offset is fixed and not Los
 * Angeles': the table's header holds that file's midnights, a client's
 * day changes at the file's midnight, a reservation is counted on the
 * file's day, and a reload reads a changed file.  Without a readable
 * file the router publishes nothing, logs it once, and clients use the
 * rule.
 */
#include "client_priv.h"
#include "clock.h"
#include "gemroute.h"
#include "table.h"
#include "testlib.h"
#include "testrouter.h"
#include "tzif_write.h"
#include "window.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define H 3600

static struct gr_test_router rt;
static char tzfile[160], logfile[160];
static int32_t file_off;        /* s east of UTC, of the file now */

static int64_t
floor_div(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* A v2 TZif file of one fixed offset, written whole then renamed. */
static int
write_zone(int32_t off)
{
    static uint8_t buf[512];
    char tmp[200], footer[64];
    int32_t o[1] = { off };
    uint8_t dst[1] = { 0 };
    int32_t a = off < 0 ? -off : off;
    size_t len;
    FILE *f;

    /* POSIX counts west as positive */
    snprintf(footer, sizeof(footer), "<ZZZ>%s%d:%02d:%02d",
             off > 0 ? "-" : "", a / 3600, a / 60 % 60, a % 60);
    len = tzw_file(buf, '2', 0, NULL, NULL, 1, o, dst, footer);
    snprintf(tmp, sizeof(tmp), "%s.tmp", tzfile);
    if ((f = fopen(tmp, "w")) == NULL)
        return -1;
    if (fwrite(buf, 1, len, f) != len) {
        fclose(f);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, tzfile) != 0)
        return -1;
    file_off = off;
    return 0;
}

/*
 * An offset whose day differs from the rule's now: the file's clock
 * reads 02:00 of the rule's next day, or 22:00 of its previous day.
 */
static int32_t
offset_off_the_rule(int64_t now)
{
    int32_t rule = gr_shm_pacific_offset_s(now);
    int64_t r = now + rule - floor_div(now + rule, 86400) * 86400;

    if (r >= 12 * H)
        return rule + (int32_t)(86400 - r + 2 * H);
    return rule - (int32_t)(r + 2 * H);
}

static int
setup(void)
{
    FILE *f;

    if (gr_test_router_paths(&rt, "tzday") != 0)
        return -1;
    snprintf(tzfile, sizeof(tzfile), "%s/zone", rt.dir);
    snprintf(logfile, sizeof(logfile), "%s/log", rt.dir);
    if (write_zone(offset_off_the_rule(time(NULL))) != 0 ||
        (f = fopen(rt.conf, "w")) == NULL)
        return -1;
    fprintf(f, "router = { shm = \"%s\"; };\n"
            "models = ( { name = \"m\"; rpm = 1000; rpd = 1000; } );\n"
            "projects = ( { name = \"p\"; key = \"tz-SECRET-p\"; } );\n",
            rt.shm);
    fclose(f);
    setenv("GEMROUTE_TZFILE", tzfile, 1);
    rt.pid = gr_test_router_start(rt.conf, rt.shm, logfile);
    return rt.pid > 0 ? 0 : -1;
}

static int
teardown(void)
{
    unsetenv("GEMROUTE_TZFILE");
    return gr_test_router_end(&rt);
}

static void
test_header_holds_the_files_midnights(void)
{
    struct gr_shm t;
    struct gr_shm_days d;
    char err[256];
    int64_t now = time(NULL), nm;
    int32_t day;
    int i;

    CU_ASSERT_FATAL(gr_shm_attach(rt.shm, false, &t, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL_FATAL(gr_shm_days_read(t.hdr, &d), 0);
    /* every published midnight is the file's: local 00:00 at file_off */
    for (i = 0; i < GR_SHM_DAY_STARTS; i++)
        CU_ASSERT_EQUAL(d.start[i], ((int64_t)d.first + i) * 86400 - file_off);
    CU_ASSERT(d.start[0] <= now && now < d.start[1]);
    /* a client's day changes at the file's midnight... */
    CU_ASSERT_EQUAL(gr_shm_pacific_day_in(t.hdr, d.start[1] - 1, &nm, NULL),
                    d.first);
    CU_ASSERT_EQUAL(nm, d.start[1]);
    CU_ASSERT_EQUAL(gr_shm_pacific_day_in(t.hdr, d.start[1], &nm, NULL),
                    d.first + 1);
    CU_ASSERT_EQUAL(nm, d.start[2]);
    /* ...which is not the rule's: the offset is hours from LA's */
    CU_ASSERT_NOT_EQUAL(gr_shm_next_pacific_midnight(d.start[1] - 1),
                        d.start[1]);
    /* past the published days, the rule */
    day = gr_shm_pacific_day_in(t.hdr, d.start[GR_SHM_DAY_STARTS - 1], &nm,
                                &i);
    CU_ASSERT_EQUAL(i, 0);
    CU_ASSERT_EQUAL(day, gr_shm_pacific_day(d.start[GR_SHM_DAY_STARTS - 1]));
    gr_shm_detach(&t);
}

/*
 * A per-day 429 cools until the file's midnight (client/classify.c with
 * the table, as gr_generate() and gr_forward() classify), and only
 * gr_classify() without a table uses the rule.
 */
static void
test_day_429_cools_until_the_files_midnight(void)
{
    static const char body[] =
        "{\"error\": {\"code\": 429, \"status\": \"RESOURCE_EXHAUSTED\", "
        "\"details\": [{\"@type\": \"type.googleapis.com/google.rpc."
        "QuotaFailure\", \"violations\": [{\"quotaId\": \"GenerateContent"
        "InputTokensPerModelPerDay-FreeTier\"}]}]}}";
    struct gr_verdict v;
    struct gr_shm t;
    struct gr_shm_days d;
    char err[256];
    int64_t now;

    CU_ASSERT_FATAL(gr_shm_attach(rt.shm, false, &t, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL_FATAL(gr_shm_days_read(t.hdr, &d), 0);
    now = d.start[1] - 5 * H;       /* inside the first published day */
    gr_classify_in(t.hdr, 429, body, sizeof(body) - 1, now, &v);
    CU_ASSERT_EQUAL(v.dims, GR_DIM_BIT(GR_DIM_TPD));
    CU_ASSERT_EQUAL(v.cooldown_src, GR_COOL_MIDNIGHT);
    CU_ASSERT_DOUBLE_EQUAL(v.cooldown_s, (double)(5 * H), 0.001);
    /* the rule's midnight is hours away from the file's */
    gr_classify(429, body, sizeof(body) - 1, now, &v);
    CU_ASSERT_DOUBLE_EQUAL(v.cooldown_s,
                           (double)(gr_shm_next_pacific_midnight(now) - now),
                           0.001);
    CU_ASSERT(v.cooldown_s < 5 * H - 30 || v.cooldown_s > 5 * H + 30);
    gr_shm_detach(&t);
}

/* A reservation is counted on the file's day (client/lease.c). */
static void
test_reservation_counts_on_the_files_day(void)
{
    struct gr_cost one = {1, 10, 0};
    struct gr_lease l;
    struct gr_shm t;
    char err[256];
    int64_t t0 = time(NULL), t1;
    int32_t fday, rday0, rday1;
    struct gr *g = gr_open(rt.shm, err, sizeof(err));
    int m;

    CU_ASSERT_FATAL(g != NULL);
    rday0 = gr_shm_pacific_day(t0);
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m", &one, 0, &l), GR_OK);
    gr_commit(g, &l, NULL);
    t1 = time(NULL);
    rday1 = gr_shm_pacific_day(t1);
    fday = (int32_t)floor_div(t1 + file_off, 86400);
    CU_ASSERT_FATAL(gr_shm_attach(rt.shm, false, &t, err, sizeof(err)) == 0);
    m = gr_shm_model_index(&t, "m");
    CU_ASSERT_FATAL(m >= 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&gr_shm_cell(&t, 0, (uint32_t)m)->day,
                                    fday), 1);
    /* the rule's day is another (unless its midnight passed meanwhile) */
    if (rday0 == rday1) {
        CU_ASSERT_NOT_EQUAL(fday, rday1);
        CU_ASSERT_EQUAL(gr_shm_day_used(
                            &gr_shm_cell(&t, 0, (uint32_t)m)->day, rday1),
                        0);
    }
    gr_shm_detach(&t);
    gr_close(g);
}

/*
 * The header is untrusted: a scribbled day table (a 22-hour day) is
 * refused by a client, which uses the rule (and writes nothing), and
 * the router counts an anomaly and writes its days back at its next
 * tick.
 */
static void
test_scribbled_days_are_refused_and_repaired(void)
{
    struct gr_shm t, ro;
    struct gr_shm_days d;
    char err[256];
    uint64_t anomalies;
    int64_t nm;
    int published;

    CU_ASSERT_FATAL(gr_shm_attach(rt.shm, true, &t, err, sizeof(err)) == 0);
    CU_ASSERT_EQUAL_FATAL(gr_shm_days_read(t.hdr, &d), 0);
    anomalies = atomic_load_explicit(&t.hdr->anomalies,
                                     memory_order_relaxed);
    d.start[1] = d.start[2] - 22 * H;
    gr_shm_days_publish(t.hdr, &d);     /* as a hostile client would */
    CU_ASSERT_EQUAL(gr_shm_pacific_day_in(t.hdr, d.start[0], &nm,
                                          &published),
                    gr_shm_pacific_day(d.start[0]));
    CU_ASSERT_EQUAL(published, 0);
    /* so is it by a reader that mapped the table read-only (gemroute
     * status), which writes nothing: a write would fault here */
    CU_ASSERT_FATAL(gr_shm_attach(rt.shm, false, &ro, err,
                                  sizeof(err)) == 0);
    CU_ASSERT_EQUAL(gr_shm_pacific_day_in(ro.hdr, d.start[0], &nm,
                                          &published),
                    gr_shm_pacific_day(d.start[0]));
    gr_shm_detach(&ro);
    /* the router's tick puts its days back and counts what it found;
     * the watchdog bounds this */
    while (gr_shm_days_read(t.hdr, &d) != 0)
        usleep(10000);
    CU_ASSERT_EQUAL(d.start[1], ((int64_t)d.first + 1) * 86400 - file_off);
    CU_ASSERT(atomic_load_explicit(&t.hdr->anomalies, memory_order_relaxed) >
              anomalies);
    gr_shm_detach(&t);
}

/* A reload reads the file again: another offset, other midnights. */
static void
test_reload_reads_the_file_again(void)
{
    struct gr_shm t;
    struct gr_shm_days d;
    char err[256];
    int32_t off = file_off + (file_off > 0 ? -3 * H : 3 * H);

    CU_ASSERT_FATAL(write_zone(off) == 0);
    CU_ASSERT_FATAL(kill(rt.pid, SIGHUP) == 0);
    CU_ASSERT_FATAL(gr_shm_attach(rt.shm, false, &t, err, sizeof(err)) == 0);
    /* the watchdog bounds the wait */
    for (;;) {
        if (gr_shm_days_read(t.hdr, &d) == 0 &&
            d.start[1] == ((int64_t)d.first + 1) * 86400 - off)
            break;
        usleep(10000);
    }
    CU_ASSERT_EQUAL(d.start[0], (int64_t)d.first * 86400 - off);
    gr_shm_detach(&t);
}

/* No readable file: nothing published, said once, the rule used. */
static void
test_no_tzdata_falls_back_to_the_rule(void)
{
    struct gr_shm t;
    struct gr_shm_days d;
    char err[256], line[512];
    int64_t now = time(NULL), nm;
    int said = 0, published;
    uint32_t ok;
    FILE *f;

    CU_ASSERT_FATAL(unlink(tzfile) == 0);
    CU_ASSERT_FATAL(kill(rt.pid, SIGHUP) == 0);
    CU_ASSERT_FATAL(gr_shm_attach(rt.shm, false, &t, err, sizeof(err)) == 0);
    while (gr_shm_days_read(t.hdr, &d) != -ENOENT)
        usleep(10000);
    /* a second reload, seen done by its count */
    ok = atomic_load_explicit(&t.hdr->reloads_ok, memory_order_acquire);
    CU_ASSERT_FATAL(kill(rt.pid, SIGHUP) == 0);
    while (atomic_load_explicit(&t.hdr->reloads_ok, memory_order_acquire) ==
           ok)
        usleep(10000);
    CU_ASSERT_EQUAL(gr_shm_pacific_day_in(t.hdr, now, &nm, &published),
                    gr_shm_pacific_day(now));
    CU_ASSERT_EQUAL(published, 0);
    CU_ASSERT_EQUAL(nm, gr_shm_next_pacific_midnight(now));
    gr_shm_detach(&t);
    f = fopen(logfile, "r");
    CU_ASSERT_FATAL(f != NULL);
    while (fgets(line, sizeof(line), f) != NULL)
        said += strstr(line, "built-in US rule of 2007") != NULL;
    fclose(f);
    CU_ASSERT_EQUAL(said, 1);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"header holds the file's midnights",
         test_header_holds_the_files_midnights},
        {"a per-day 429 cools until the file's midnight",
         test_day_429_cools_until_the_files_midnight},
        {"reservation counts on the file's day",
         test_reservation_counts_on_the_files_day},
        {"scribbled days refused and repaired",
         test_scribbled_days_are_refused_and_repaired},
        {"reload reads the file again", test_reload_reads_the_file_again},
        {"no tzdata: the rule, logged once",
         test_no_tzdata_falls_back_to_the_rule},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"tzday", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_tzday", suites, 60);
}
