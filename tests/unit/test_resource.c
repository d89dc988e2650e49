/*
 * test_resource.c - the resource record (shm/resource.h): put, find,
 * update and drop; expiry; refusal when full; the router's adoption of a
 * live record; several processes writing and reading at once; a record
 * scribbled over never crashes a reader; a writer that died mid-write is
 * freed by the router's sweep.  Times are passed in: nothing sleeps.
 */
#include "resource.h"
#include "table.h"
#include "testlib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOW (INT64_C(1800000000) * 1000000000)  /* wall ns, 2027 */
#define HOUR (INT64_C(3600) * 1000000000)

static char table[64];

static void
make(uint32_t cap, struct gr_shm_restab *rt)
{
    bool created = false;
    char err[256] = "";
    char seg[GR_RES_SEGNAME_MAX];

    CU_ASSERT_FATAL(gr_shm_res_segname(table, seg, sizeof(seg)) == 0);
    shm_unlink(seg);
    CU_ASSERT_FATAL(gr_shm_res_router_open(table, cap, 0600, (gid_t)-1, rt,
                                           &created, err, sizeof(err)) == 0);
    CU_ASSERT(created);
}

static void
unmake(struct gr_shm_restab *rt)
{
    char seg[GR_RES_SEGNAME_MAX];

    gr_shm_res_detach(rt);
    gr_shm_res_segname(table, seg, sizeof(seg));
    shm_unlink(seg);
}

static void
test_put_get_drop(void)
{
    struct gr_shm_restab rt, cl;
    struct gr_shm_res_view v;
    uint64_t counts[GR_RES_NKINDS];
    char err[256];
    uint32_t me = (uint32_t)getpid();

    make(64, &rt);
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_FILE, "files/abc", "proj-a",
                             NOW + 48 * HOUR, me, NOW) == 0);
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_CACHE, "cachedContents/x1",
                             "proj-b", NOW + HOUR, me, NOW) == 0);
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_BATCH, "batches/b1", "proj-c",
                             0, me, NOW) == 0);
    /* A client's own mapping sees them. */
    CU_ASSERT_FATAL(gr_shm_res_attach(table, true, &cl, err,
                                      sizeof(err)) == 0);
    CU_ASSERT(gr_shm_res_get(&cl, "files/abc", NOW, &v) == 0);
    CU_ASSERT_STRING_EQUAL(v.project, "proj-a");
    CU_ASSERT_EQUAL(v.kind, GR_RES_KIND_FILE);
    CU_ASSERT(gr_shm_res_get(&cl, "batches/b1", NOW + 1000 * HOUR, &v) == 0);
    CU_ASSERT_STRING_EQUAL(v.project, "proj-c");
    CU_ASSERT(gr_shm_res_get(&cl, "files/nope", NOW, &v) == -ENOENT);
    /* The same name again moves it: no second record. */
    CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, "files/abc", "proj-z",
                             NOW + HOUR, me, NOW) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/abc", NOW, &v) == 0);
    CU_ASSERT_STRING_EQUAL(v.project, "proj-z");
    gr_shm_res_count(&rt, NOW, counts);
    CU_ASSERT_EQUAL(counts[0], 3);
    CU_ASSERT_EQUAL(counts[GR_RES_KIND_FILE], 1);
    CU_ASSERT_EQUAL(counts[GR_RES_KIND_CACHE], 1);
    CU_ASSERT_EQUAL(counts[GR_RES_KIND_BATCH], 1);
    /* A TTL update. */
    CU_ASSERT(gr_shm_res_set_expiry(&cl, "cachedContents/x1",
                                    NOW + 5 * HOUR, me) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "cachedContents/x1", NOW + 2 * HOUR,
                             &v) == 0);
    CU_ASSERT_EQUAL(v.expire_ns, NOW + 5 * HOUR);
    CU_ASSERT(gr_shm_res_set_expiry(&cl, "files/none", NOW, me) == -ENOENT);
    /* Dropped: gone for everyone. */
    CU_ASSERT(gr_shm_res_drop(&cl, "files/abc", me) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/abc", NOW, &v) == -ENOENT);
    CU_ASSERT(gr_shm_res_drop(&cl, "files/abc", me) == -ENOENT);
    /* Bad input is refused, not stored. */
    CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, "files/a b", "p", 0, me,
                             NOW) == -EINVAL);
    CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, "", "p", 0, me,
                             NOW) == -EINVAL);
    CU_ASSERT(gr_shm_res_put(&cl, 9, "files/q", "p", 0, me, NOW) == -EINVAL);
    CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, "files/q", "", 0, me,
                             NOW) == -EINVAL);
    {
        char longname[200];

        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, longname, "p", 0,
                                 me, NOW) == -EINVAL);
    }
    /* A read-only mapping cannot write. */
    gr_shm_res_detach(&cl);
    CU_ASSERT_FATAL(gr_shm_res_attach(table, false, &cl, err,
                                      sizeof(err)) == 0);
    CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, "files/r", "p", 0, me,
                             NOW) == -EBADF);
    CU_ASSERT(gr_shm_res_get(&cl, "batches/b1", NOW, &v) == 0);
    gr_shm_res_detach(&cl);
    unmake(&rt);
}

/* The token count of a record (ABI 1.1): set, kept by every other
 * write of the record, new records start unknown (0). */
static void
test_tokens(void)
{
    struct gr_shm_restab rt, cl;
    struct gr_shm_res_view v;
    char err[256];
    uint32_t me = (uint32_t)getpid();

    make(16, &rt);
    CU_ASSERT_FATAL(gr_shm_res_attach(table, true, &cl, err,
                                      sizeof(err)) == 0);
    CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, "files/t1", "p", 0, me,
                             NOW) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/t1", NOW, &v) == 0);
    CU_ASSERT_EQUAL(v.tokens, 0);
    CU_ASSERT(gr_shm_res_set_tokens(&cl, "files/t1", 1548, me) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/t1", NOW, &v) == 0);
    CU_ASSERT_EQUAL(v.tokens, 1548);
    /* A TTL change and a put of the same name keep it. */
    CU_ASSERT(gr_shm_res_set_expiry(&cl, "files/t1", NOW + HOUR, me) == 0);
    CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, "files/t1", "p",
                             NOW + 2 * HOUR, me, NOW) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/t1", NOW, &v) == 0);
    CU_ASSERT_EQUAL(v.tokens, 1548);
    CU_ASSERT_EQUAL(v.expire_ns, NOW + 2 * HOUR);
    /* Unknown names, bad names, read-only mappings: refused. */
    CU_ASSERT(gr_shm_res_set_tokens(&cl, "files/none", 5, me) == -ENOENT);
    CU_ASSERT(gr_shm_res_set_tokens(&cl, "files/a b", 5, me) == -EINVAL);
    /* Dropped: the freed record's count is cleared (a 1.0 writer that
     * takes the place never writes it); made again: unknown again. */
    CU_ASSERT(gr_shm_res_drop(&cl, "files/t1", me) == 0);
    {
        uint32_t i, left = 0;

        for (i = 0; i < rt.cap; i++)
            left += rt.recs[i].tokens != 0;
        CU_ASSERT_EQUAL(left, 0);
    }
    CU_ASSERT(gr_shm_res_put(&cl, GR_RES_KIND_FILE, "files/t1", "p", 0, me,
                             NOW) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/t1", NOW, &v) == 0);
    CU_ASSERT_EQUAL(v.tokens, 0);
    gr_shm_res_detach(&cl);
    CU_ASSERT_FATAL(gr_shm_res_attach(table, false, &cl, err,
                                      sizeof(err)) == 0);
    CU_ASSERT(gr_shm_res_set_tokens(&cl, "files/t1", 5, me) == -EBADF);
    gr_shm_res_detach(&cl);
    unmake(&rt);
}

static void
test_expiry(void)
{
    struct gr_shm_restab rt;
    struct gr_shm_res_view v;
    uint32_t me = (uint32_t)getpid();
    char n[32];
    int i;

    make(4, &rt);
    for (i = 0; i < 4; i++) {
        snprintf(n, sizeof(n), "files/e%d", i);
        CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_FILE, n, "p", NOW + HOUR,
                                 me, NOW) == 0);
    }
    CU_ASSERT(gr_shm_res_get(&rt, "files/e0", NOW + HOUR - 1, &v) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/e0", NOW + HOUR, &v) == -ENOENT);
    /* Full, but an expired record's place may be taken. */
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_FILE, "files/new", "p", 0, me,
                             NOW) == -ENOSPC);
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_FILE, "files/new", "p", 0, me,
                             NOW + 2 * HOUR) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/new", NOW + 100 * HOUR, &v) == 0);
    /* The sweep frees what expired more than grace ago, nothing else. */
    CU_ASSERT_EQUAL(gr_shm_res_router_sweep(&rt, NOW + HOUR, HOUR), 0);
    CU_ASSERT_EQUAL(gr_shm_res_router_sweep(&rt, NOW + 2 * HOUR, HOUR), 3);
    CU_ASSERT(gr_shm_res_get(&rt, "files/new", NOW + 100 * HOUR, &v) == 0);
    unmake(&rt);
}

static void
test_full_refused(void)
{
    struct gr_shm_restab rt;
    struct gr_shm_res_view v;
    uint32_t me = (uint32_t)getpid();
    char n[32];
    int i;

    make(8, &rt);
    for (i = 0; i < 8; i++) {
        snprintf(n, sizeof(n), "cachedContents/c%d", i);
        CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_CACHE, n, "p", 0, me,
                                 NOW) == 0);
    }
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_CACHE, "cachedContents/c8",
                             "p", 0, me, NOW) == -ENOSPC);
    CU_ASSERT_EQUAL(atomic_load(&rt.hdr->refused), 1);
    /* What is recorded may still be updated, and nothing was lost. */
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_CACHE, "cachedContents/c3",
                             "q", 0, me, NOW) == 0);
    for (i = 0; i < 8; i++) {
        snprintf(n, sizeof(n), "cachedContents/c%d", i);
        CU_ASSERT(gr_shm_res_get(&rt, n, NOW, &v) == 0);
        CU_ASSERT_STRING_EQUAL(v.project, i == 3 ? "q" : "p");
    }
    /* One dropped: room for one more. */
    CU_ASSERT(gr_shm_res_drop(&rt, "cachedContents/c0", me) == 0);
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_CACHE, "cachedContents/c8",
                             "p", 0, me, NOW) == 0);
    unmake(&rt);
}

static void
test_router_adopts(void)
{
    struct gr_shm_restab rt, again;
    struct gr_shm_res_view v;
    bool created = true;
    char err[256];

    make(16, &rt);
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_FILE, "files/kept", "p1", 0,
                             (uint32_t)getpid(), NOW) == 0);
    gr_shm_res_detach(&rt);
    /* A new router of the same size keeps the records. */
    CU_ASSERT_FATAL(gr_shm_res_router_open(table, 16, 0600, (gid_t)-1,
                                           &again, &created, err,
                                           sizeof(err)) == 0);
    CU_ASSERT(!created);
    CU_ASSERT(gr_shm_res_get(&again, "files/kept", NOW, &v) == 0);
    gr_shm_res_detach(&again);
    /* Of another size: made anew (the state file restores). */
    CU_ASSERT_FATAL(gr_shm_res_router_open(table, 32, 0600, (gid_t)-1,
                                           &again, &created, err,
                                           sizeof(err)) == 0);
    CU_ASSERT(created);
    CU_ASSERT_EQUAL(again.cap, 32);
    CU_ASSERT(gr_shm_res_get(&again, "files/kept", NOW, &v) == -ENOENT);
    unmake(&again);
}

/* Writers and readers in several processes at once: every name keeps
 * its own project, no copy is ever torn, nothing is lost. */
#define WRITERS 4
#define PER 200

static int
writer(int k)
{
    struct gr_shm_restab rt;
    char err[256], n[32], p[16];
    uint32_t me = (uint32_t)getpid();
    int i, bad = 0;

    if (gr_shm_res_attach(table, true, &rt, err, sizeof(err)) != 0)
        return 2;
    snprintf(p, sizeof(p), "proj-%d", k);
    for (i = 0; i < PER; i++) {
        snprintf(n, sizeof(n), "files/w%d-%d", k, i);
        if (gr_shm_res_put(&rt, GR_RES_KIND_FILE, n, p, 0, me, NOW) != 0)
            bad++;
        if (i % 2 == 1) {
            snprintf(n, sizeof(n), "files/w%d-%d", k, i - 1);
            if (gr_shm_res_drop(&rt, n, me) != 0)
                bad++;
        }
    }
    gr_shm_res_detach(&rt);
    return bad == 0 ? 0 : 1;
}

static int
reader(void)
{
    struct gr_shm_restab rt;
    struct gr_shm_res_view v;
    char err[256], want[16];
    int round, bad = 0, k;
    uint32_t i;

    if (gr_shm_res_attach(table, false, &rt, err, sizeof(err)) != 0)
        return 2;
    for (round = 0; round < 200; round++)
        for (i = 0; i < rt.cap; i++) {
            if (gr_shm_res_read(&rt, i, &v) != 0)
                continue;
            if (sscanf(v.name, "files/w%d-", &k) != 1)
                bad++;
            snprintf(want, sizeof(want), "proj-%d", k);
            if (strcmp(v.project, want) != 0)
                bad++;
        }
    gr_shm_res_detach(&rt);
    return bad == 0 ? 0 : 1;
}

static void
test_processes(void)
{
    struct gr_shm_restab rt;
    struct gr_shm_res_view v;
    uint64_t counts[GR_RES_NKINDS];
    pid_t pids[WRITERS + 2];
    char n[32], p[16];
    int k, i, st;

    make(WRITERS * PER, &rt);
    for (k = 0; k < WRITERS + 2; k++) {
        pids[k] = fork();
        CU_ASSERT_FATAL(pids[k] >= 0);
        if (pids[k] == 0)
            _exit(k < WRITERS ? writer(k) : reader());
    }
    for (k = 0; k < WRITERS + 2; k++) {
        CU_ASSERT(waitpid(pids[k], &st, 0) == pids[k]);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    gr_shm_res_count(&rt, NOW, counts);
    CU_ASSERT_EQUAL(counts[0], WRITERS * PER / 2);
    for (k = 0; k < WRITERS; k++)
        for (i = 0; i < PER; i++) {
            snprintf(n, sizeof(n), "files/w%d-%d", k, i);
            snprintf(p, sizeof(p), "proj-%d", k);
            if (i % 2 == 0) {
                CU_ASSERT(gr_shm_res_get(&rt, n, NOW, &v) == -ENOENT);
            } else {
                CU_ASSERT(gr_shm_res_get(&rt, n, NOW, &v) == 0 &&
                          strcmp(v.project, p) == 0);
            }
        }
    unmake(&rt);
}

/* A writer killed between its claim and its publish leaves the record
 * WRITING; readers skip it and the router's sweep frees it. */
static void
test_dead_writer(void)
{
    struct gr_shm_restab rt;
    struct gr_shm_res_view v;
    pid_t pid;
    int st;

    make(4, &rt);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(0);
    CU_ASSERT(waitpid(pid, &st, 0) == pid);
    atomic_store(&rt.recs[2].state,
                 (uint64_t)(uint32_t)pid << 32 | 5u << 8 | GR_RES_WRITING);
    CU_ASSERT(gr_shm_res_read(&rt, 2, &v) == -EAGAIN);
    /* A live writer's claim is left alone. */
    atomic_store(&rt.recs[1].state,
                 (uint64_t)(uint32_t)getpid() << 32 | 5u << 8 |
                     GR_RES_WRITING);
    CU_ASSERT_EQUAL(gr_shm_res_router_sweep(&rt, NOW, 0), 1);
    CU_ASSERT(gr_shm_res_read(&rt, 2, &v) == -ENOENT);
    CU_ASSERT(gr_shm_res_read(&rt, 1, &v) == -EAGAIN);
    unmake(&rt);
}

/* Random bytes over every record (and the header's counters): every
 * reader and writer call returns, never reads past the mapping, and
 * what a read returns is well formed. */
static void
test_scribbled(void)
{
    struct gr_shm_restab rt;
    struct gr_shm_res_view v;
    uint64_t counts[GR_RES_NKINDS], seed = 0x9e3779b97f4a7c15ull;
    uint32_t me = (uint32_t)getpid(), i;
    unsigned char *p;
    int round;

    make(64, &rt);
    for (round = 0; round < 50; round++) {
        size_t b;

        p = (unsigned char *)rt.recs;
        for (b = 0; b < (size_t)rt.cap * sizeof(struct gr_shm_res); b++)
            p[b] = (unsigned char)gr_test_rand(&seed);
        /* Some records look live, with junk in them. */
        for (i = 0; i < rt.cap; i += 3)
            atomic_store(&rt.recs[i].state,
                         (gr_test_rand(&seed) & ~UINT64_C(0xff)) |
                             GR_RES_LIVE);
        /* Some have a valid kind and unterminated strings. */
        for (i = 1; i < rt.cap; i += 5) {
            rt.recs[i].kind = GR_RES_KIND_FILE;
            memset(rt.recs[i].name, 'x', GR_RES_NAME_MAX);
            memset(rt.recs[i].project, 'y', GR_RES_PROJECT_MAX);
        }
        for (i = 0; i < rt.cap + 4; i++)
            if (gr_shm_res_read(&rt, i, &v) == 0) {
                CU_ASSERT(v.kind > 0 && v.kind < GR_RES_NKINDS);
                CU_ASSERT(strlen(v.name) < GR_RES_NAME_MAX);
                CU_ASSERT(strlen(v.project) < GR_RES_PROJECT_MAX);
            }
        gr_shm_res_count(&rt, NOW, counts);
        CU_ASSERT(counts[0] <= rt.cap);
        (void)gr_shm_res_get(&rt, "files/x", NOW, &v);
        (void)gr_shm_res_put(&rt, GR_RES_KIND_FILE, "files/after", "p", 0,
                             me, NOW);
        (void)gr_shm_res_drop(&rt, "files/after", me);
        (void)gr_shm_res_router_sweep(&rt, NOW, 0);
    }
    /* After a sweep every record is usable again. */
    for (i = 0; i < rt.cap; i++)
        atomic_store(&rt.recs[i].state, 0);
    CU_ASSERT(gr_shm_res_put(&rt, GR_RES_KIND_FILE, "files/after", "p", 0,
                             me, NOW) == 0);
    CU_ASSERT(gr_shm_res_get(&rt, "files/after", NOW, &v) == 0);
    CU_ASSERT(atomic_load(&rt.hdr->anomalies) > 0);
    unmake(&rt);
}

/* A damaged header is refused at attach with a sentence. */
static void
test_bad_header(void)
{
    struct gr_shm_restab rt, cl;
    char err[256] = "";

    make(8, &rt);
    rt.hdr->cap = 1000;
    CU_ASSERT(gr_shm_res_attach(table, false, &cl, err, sizeof(err)) ==
              -EPROTO);
    CU_ASSERT(strstr(err, "damaged") != NULL);
    rt.hdr->cap = 8;
    rt.hdr->abi_major = 7;
    CU_ASSERT(gr_shm_res_attach(table, false, &cl, err, sizeof(err)) ==
              -EPROTO);
    CU_ASSERT(strstr(err, "rebuild") != NULL);
    unmake(&rt);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"put, get, update, drop", test_put_get_drop},
        {"expiry", test_expiry},
        {"a record's token count", test_tokens},
        {"full: a clear refusal", test_full_refused},
        {"router adopts a live record", test_router_adopts},
        {"processes write and read at once", test_processes},
        {"a dead writer's claim is freed", test_dead_writer},
        {"a scribbled record never crashes a reader", test_scribbled},
        {"a damaged header is refused", test_bad_header},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"resource", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    snprintf(table, sizeof(table), "/grtest-res-%d", (int)getpid());
    return gr_test_main("test_resource", suites, 60);
}
