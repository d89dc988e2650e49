/*
 * test_repair.c - router/repair.c (issue 13, items 6 and 17): the router
 * rewrites every string it owns (the header's base_url, proxy,
 * config_path and last reload error; each slot's name, every key,
 * weight, priority and flags) from its private copy and the running
 * config, on an in-process router; and a real gemrouted does so while
 * keeping the reload error it wrote itself.
 *
 * Assertions are on outcomes, never on durations; waits poll under the
 * watchdog.
 *
 *   BIN=bin build/default/tests/test_repair
 */
#include "config.h"
#include "gemroute.h"
#include "router.h"
#include "testinproc.h"
#include "testlib.h"
#include "testrouter.h"

#include <CUnit/CUnit.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MS INT64_C(1000000)

/* ---- repair, on an in-process router ---------------------------------- */

static char rdir[64], rshm[64];
static struct gr_rtr rtr;

static const char *repair_conf =
    "models = ( { name = \"m\"; rpm = 100; tpm = 100000; } );\n"
    "projects = (\n"
    "  { name = \"a\"; keys = [\"rs-SECRET-a-0\", \"rs-SECRET-a-1\",\n"
    "                         \"rs-SECRET-a-2\"]; weight = 3;\n"
    "    priority = 2; },\n"
    "  { name = \"off\"; key = \"rs-SECRET-off-0\"; enabled = false; } );\n";

static int
repair_setup(void)
{
    if (gr_test_names(rdir, sizeof(rdir), rshm, sizeof(rshm), "rs") != 0)
        return -1;
    /* The router's running config, as main.c keeps it. */
    rtr.cfg = gr_test_cfg_load(rdir, "router = { shm = \"%s\"; "
                               "max_projects = 3; max_models = 2; "
                               "max_leases = 8; "
                               "base_url = \"http://127.0.0.1:9\"; "
                               "proxy = \"http://127.0.0.1:3128\"; "
                               "batch_calls = 1; };\n%s", rshm,
                               repair_conf);
    return gr_test_rtr_open(&rtr, rtr.cfg);
}

static int
repair_teardown(void)
{
    int rc = gr_test_rtr_end(&rtr, rdir, rshm);

    gr_cfg_free(rtr.cfg);
    rtr.cfg = NULL;
    return rc;
}

static int
slot_of(const char *name)
{
    return gr_test_slot_of(&rtr, name);
}

/* Whether the cap bytes at p are s and then NULs only. */
static int
padded(const char *p, const char *s, size_t cap)
{
    size_t n = strlen(s), i;

    if (n >= cap || memcmp(p, s, n) != 0)
        return 0;
    for (i = n; i < cap; i++)
        if (p[i] != '\0')
            return 0;
    return 1;
}

static void
test_item6_scribbled_base_url_is_repaired(void)
{
    struct gr_shm_header *h = rtr.t.hdr;
    uint64_t anomalies = atomic_load(&h->anomalies);
    struct gr_cost one = {1, 10, 0};
    struct gr_lease l;
    char err[256];
    struct gr *g;

    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);
    /* A hostile process rewrites every string of the header. */
    snprintf(h->base_url, sizeof(h->base_url), "http://evil.example");
    snprintf(h->proxy, sizeof(h->proxy), "http://evil.example:8080");
    h->config_path[200] = 'x';          /* after the NUL: still damage */
    snprintf(h->last_reload_error, sizeof(h->last_reload_error), "forged");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 4);
    CU_ASSERT(padded(h->base_url, "http://127.0.0.1:9", sizeof(h->base_url)));
    CU_ASSERT(padded(h->proxy, "http://127.0.0.1:3128", sizeof(h->proxy)));
    CU_ASSERT(padded(h->config_path, rtr.cfg->path, sizeof(h->config_path)));
    CU_ASSERT(padded(h->last_reload_error, "",
                     sizeof(h->last_reload_error)));
    CU_ASSERT_EQUAL(atomic_load(&h->text_seq) & 1u, 0);
    CU_ASSERT_EQUAL(atomic_load(&h->anomalies), anomalies + 4);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);

    /* The reload error the router itself wrote is its copy: kept. */
    snprintf(rtr.m.reload_error, sizeof(rtr.m.reload_error),
             "r.conf:3: what is wrong");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT_STRING_EQUAL(h->last_reload_error, "r.conf:3: what is wrong");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);

    /* A new lease gets the configured address, not the scribbled one. */
    snprintf(h->base_url, sizeof(h->base_url), "http://evil.example");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    g = gr_open(rshm, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m", &one, 0, &l), GR_OK);
    CU_ASSERT_STRING_EQUAL(l.base_url, "http://127.0.0.1:9");
    CU_ASSERT_STRING_EQUAL(l.proxy, "http://127.0.0.1:3128");
    gr_commit(g, &l, NULL);
    gr_close(g);
}

static void
test_item6_slot_text_and_settings_are_repaired(void)
{
    int a = slot_of("a"), off = slot_of("off");
    struct gr_shm_project *pa, *po;

    CU_ASSERT_FATAL(a >= 0 && off >= 0);
    pa = &rtr.t.projects[a];
    po = &rtr.t.projects[off];
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);

    /* Bytes after the name's NUL. */
    pa->name[GR_SHM_NAME_MAX - 2] = 'z';
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT(padded(pa->name, "a", GR_SHM_NAME_MAX));

    /* A disabled project enabled behind the router's back, weights. */
    po->flags = 0;
    pa->weight = 1000000;
    pa->priority = -5;
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 2);
    CU_ASSERT_EQUAL(po->flags, GR_PROJ_CFG_DISABLED);
    CU_ASSERT_EQUAL(pa->weight, 3);
    CU_ASSERT_EQUAL(pa->priority, 2);
    CU_ASSERT_EQUAL(atomic_load(&pa->seq) & 1u, 0);

    /* A model name. */
    rtr.t.models[0].name[0] = 'X';
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT_STRING_EQUAL(rtr.t.models[0].name, "m");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);
}

/* Named, so that a failed assertion prints no key. */
static const char *const key_a[] = {
    "rs-SECRET-a-0", "rs-SECRET-a-1", "rs-SECRET-a-2",
};
static const char forged[] = "rs-SECRET-forged";

static void
test_item17_repair_checks_every_key(void)
{
    int a = slot_of("a");
    uint32_t s;

    CU_ASSERT_FATAL(a >= 0);
    s = (uint32_t)a;
    CU_ASSERT_EQUAL(rtr.t.projects[a].n_keys, 3);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);

    /* Key 1, not key 0: a key handed to some leases only. */
    snprintf(gr_shm_key(&rtr.t, s, 1), GR_SHM_KEY_MAX, "%s", forged);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT(padded(gr_shm_key(&rtr.t, s, 1), key_a[1], GR_SHM_KEY_MAX));

    /* The last key, past its NUL. */
    gr_shm_key(&rtr.t, s, 2)[GR_SHM_KEY_MAX - 1] = 'q';
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT(padded(gr_shm_key(&rtr.t, s, 2), key_a[2], GR_SHM_KEY_MAX));

    /* An unused key slot filled in, then counted in. */
    snprintf(gr_shm_key(&rtr.t, s, 5), GR_SHM_KEY_MAX, "%s", forged);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT(padded(gr_shm_key(&rtr.t, s, 5), "", GR_SHM_KEY_MAX));
    CU_ASSERT(padded(gr_shm_key(&rtr.t, s, 0), key_a[0], GR_SHM_KEY_MAX));
    CU_ASSERT_EQUAL(rtr.t.projects[a].n_keys, 3);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);
}

/* ---- a real gemrouted ------------------------------------------------ */

/* Its base_url: the discard port, which no test calls. */
#define RUN_URL "http://127.0.0.1:9"

static struct gr_test_router rt;

static const char *
write_conf(const char *path, int good)
{
    return gr_test_conf_put(path,
            "router = { shm = \"%s\"; base_url = \"" RUN_URL "\";"
            " batch_calls = 1; max_projects = 4; max_models = 2;"
            " window_ms = 600000; };\n"
            "models = ( { name = \"m\"; rpm = 1000; tpm = 10000000; } );\n"
            "projects = (\n"
            "  { name = \"p1\"; key = \"rs-SECRET-p1\"; },\n"
            "  { name = \"p2\"; key = \"rs-SECRET-p2\"; } );\n%s",
            rt.shm, good ? "" : "bogus = ;\n");
}

static int
running_setup(void)
{
    if (gr_test_router_paths(&rt, "rp") != 0 ||
        write_conf(rt.conf, 1) == NULL)
        return -1;
    rt.pid = gr_test_router_start(rt.conf, rt.shm, NULL);
    return rt.pid > 0 ? 0 : -1;
}

static int
running_teardown(void)
{
    return gr_test_router_end(&rt);
}

/* The router's header, mapped writable as a hostile process would. */
static struct gr_shm_header *
map_header(size_t *len)
{
    int fd = shm_open(rt.shm, O_RDWR, 0);
    void *p;

    *len = sizeof(struct gr_shm_header);
    if (fd < 0)
        return NULL;
    p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static void
test_item6_running_router_repairs_and_keeps_its_error(void)
{
    struct gr_shm_header *h;
    char url[64], keep[GR_SHM_ERR_MAX];
    uint32_t failed;
    size_t len;

    h = map_header(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    snprintf(url, sizeof(url), RUN_URL);
    CU_ASSERT_STRING_EQUAL(h->base_url, url);

    /* A bad reload: the router writes its error into the header. */
    failed = atomic_load(&h->reloads_failed);
    CU_ASSERT_FATAL(write_conf(rt.conf, 0) != NULL);
    kill(rt.pid, SIGHUP);
    /* (the text is written before the counter moves) */
    while (atomic_load(&h->reloads_failed) == failed)
        gr_test_sleep_ns(20 * MS);
    snprintf(keep, sizeof(keep), "%s", h->last_reload_error);
    CU_ASSERT(keep[0] != '\0');

    /* Scribble, and wait (under the watchdog) for the repair pass. */
    snprintf(h->base_url, sizeof(h->base_url), "http://evil.example");
    snprintf(h->proxy, sizeof(h->proxy), "http://evil.example:8080");
    while (strcmp(h->base_url, url) != 0 || h->proxy[0] != '\0')
        gr_test_sleep_ns(20 * MS);
    CU_ASSERT_STRING_EQUAL(h->base_url, url);
    CU_ASSERT_STRING_EQUAL(h->proxy, "");
    /* The pass that repaired them kept the error the router wrote. */
    CU_ASSERT_STRING_EQUAL(h->last_reload_error, keep);

    /* New leases get the configured address again. */
    {
        struct gr_cost one = {1, 10, 0};
        struct gr_lease l;
        char err[256];
        struct gr *g = gr_open(rt.shm, err, sizeof(err));

        CU_ASSERT_PTR_NOT_NULL_FATAL(g);
        CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m", &one, 0, &l), GR_OK);
        CU_ASSERT_STRING_EQUAL(l.base_url, url);
        CU_ASSERT_STRING_EQUAL(l.proxy, "");
        gr_commit(g, &l, NULL);
        gr_close(g);
    }
    CU_ASSERT_FATAL(write_conf(rt.conf, 1) != NULL);
    munmap(h, len);
}

int
main(void)
{
    CU_TestInfo repair[] = {
        {"item 6: a scribbled base_url is repaired",
         test_item6_scribbled_base_url_is_repaired},
        {"item 6: slot names, weight, priority, flags, models repaired",
         test_item6_slot_text_and_settings_are_repaired},
        {"item 17: repair checks every key, not only key 0",
         test_item17_repair_checks_every_key},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo running[] = {
        {"item 6: a running router repairs base_url, keeps its error",
         test_item6_running_router_repairs_and_keeps_its_error},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"repair", repair_setup, repair_teardown, NULL, NULL, repair},
        {"running", running_setup, running_teardown, NULL, NULL, running},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_repair", suites, 120);
}
