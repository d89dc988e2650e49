/*
 * test_affinity.c - resources and pinning through the public API against
 * a real router of three projects: a recorded resource pins a request to
 * its project (and only there, waiting for its room while the others
 * have plenty), names of two projects are refused with a sentence, a
 * project that is not in the table is a clear error, and the record is
 * shared by two handles.
 */
#include "gemroute.h"
#include "testlib.h"
#include "testrouter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MS INT64_C(1000000)

static struct gr_test_router rt;

static int
setup(void)
{
    FILE *f;

    if (gr_test_router_paths(&rt, "affinity") != 0 ||
        (f = fopen(rt.conf, "w")) == NULL)
        return -1;
    /* A long window: what is admitted stays admitted for the test. */
    fprintf(f, "router = { shm = \"%s\"; window_ms = 600000; "
            "headroom = 1.0; state_file = \"state\"; };\n"
            "models = ( { name = \"m\"; rpm = 3; tpm = 100000; } );\n"
            "projects = (\n"
            "  { name = \"p1\"; key = \"aff-SECRET-key-1\"; },\n"
            "  { name = \"p2\"; key = \"aff-SECRET-key-2\"; },\n"
            "  { name = \"p3\"; key = \"aff-SECRET-key-3\"; } );\n",
            rt.shm);
    fclose(f);
    rt.pid = gr_test_router_start(rt.conf, rt.shm, NULL);
    return rt.pid > 0 ? 0 : -1;
}

static int
teardown(void)
{
    return gr_test_router_end(&rt);
}

static void
test_note_and_owner(void)
{
    char err[256], project[GR_NAME_MAX];
    struct gr *g = gr_open(rt.shm, err, sizeof(err));
    struct gr *h = gr_open(rt.shm, err, sizeof(err));
    int64_t later = (int64_t)time(NULL) + 3600;

    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_FILE, "files/one", "p2",
                                     later), GR_OK);
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_CACHE, "cachedContents/c1",
                                     "p3", later), GR_OK);
    /* Another handle (another process would be the same) sees them. */
    CU_ASSERT_EQUAL(gr_resource_owner(h, "files/one", project), GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "p2");
    CU_ASSERT_EQUAL(gr_resource_owner(h, "files/unknown", project), GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "");
    /* Expired: not an owner any more. */
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_FILE, "files/old", "p1",
                                     (int64_t)time(NULL) - 10), GR_OK);
    CU_ASSERT_EQUAL(gr_resource_owner(h, "files/old", project), GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "");
    /* Bad arguments. */
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_FILE, "files/a b", "p1", 0),
                    GR_EINVAL);
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_FILE, "files/x", "", 0),
                    GR_EINVAL);
    CU_ASSERT_EQUAL(gr_resource_note(g, (enum gr_res_kind)7, "files/x",
                                     "p1", 0), GR_EINVAL);
    /* Forgotten. */
    CU_ASSERT_EQUAL(gr_resource_forget(h, "files/one"), GR_OK);
    CU_ASSERT_EQUAL(gr_resource_owner(g, "files/one", project), GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "");
    CU_ASSERT_EQUAL(gr_resource_forget(h, "files/one"), GR_OK);
    gr_close(h);
    gr_close(g);
}

static void
test_pin_from_request(void)
{
    char err[256], project[GR_NAME_MAX];
    struct gr *g = gr_open(rt.shm, err, sizeof(err));
    int64_t later = (int64_t)time(NULL) + 3600;
    const char *one =
        "{\"contents\":[{\"parts\":[{\"text\":\"hi\"},{\"fileData\":"
        "{\"mimeType\":\"text/plain\",\"fileUri\":"
        "\"https://generativelanguage.googleapis.com/v1beta/files/pin2\"}}]"
        "}]}";
    const char *snake =
        "{\"contents\":[{\"parts\":[{\"file_data\":{\"file_uri\":"
        "\"files/pin2\"}}]}],\"cached_content\":\"cachedContents/pc2\"}";
    const char *two =
        "{\"cachedContent\":\"cachedContents/pc3\",\"contents\":[{\"parts\":"
        "[{\"fileData\":{\"fileUri\":\"files/pin2\"}}]}]}";
    const char *none = "{\"contents\":[{\"parts\":[{\"text\":\"files/pin2"
                       " is only text\"}]}]}";

    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_FILE, "files/pin2", "p2",
                                     later), GR_OK);
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_CACHE, "cachedContents/pc2",
                                     "p2", later), GR_OK);
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_CACHE, "cachedContents/pc3",
                                     "p3", later), GR_OK);
    CU_ASSERT_EQUAL(gr_resource_note(g, GR_RES_BATCH, "batches/b3", "p3", 0),
                    GR_OK);
    CU_ASSERT_EQUAL(gr_resource_pin(g, NULL, one, strlen(one), project),
                    GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "p2");
    CU_ASSERT_EQUAL(gr_resource_pin(g, NULL, snake, strlen(snake), project),
                    GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "p2");
    CU_ASSERT_EQUAL(gr_resource_pin(g, NULL, none, strlen(none), project),
                    GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "");
    CU_ASSERT_EQUAL(gr_resource_pin(g, "/v1beta/batches/b3:cancel", NULL, 0,
                                    project), GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "p3");
    CU_ASSERT_EQUAL(gr_resource_pin(g, "/v1beta/files/pin2?x=1", NULL, 0,
                                    project), GR_OK);
    CU_ASSERT_STRING_EQUAL(project, "p2");
    /* Two projects: refused, and the sentence names both. */
    CU_ASSERT_EQUAL(gr_resource_pin(g, NULL, two, strlen(two), project),
                    GR_EINVAL);
    CU_ASSERT_STRING_EQUAL(project, "");
    CU_ASSERT(strstr(gr_errstr(g), "p2") != NULL &&
              strstr(gr_errstr(g), "p3") != NULL &&
              strstr(gr_errstr(g), "two projects") != NULL);
    /* gr_generate refuses it too, before anything is sent. */
    {
        struct gr_response out;

        CU_ASSERT_EQUAL(gr_generate(g, "m", two, NULL, &out), GR_EINVAL);
        CU_ASSERT_EQUAL(out.attempts, 0);
        CU_ASSERT(strstr(out.error, "two projects") != NULL);
        gr_response_free(&out);
    }
    gr_close(g);
}

static void
test_reserve_on(void)
{
    char err[256];
    struct gr *g = gr_open(rt.shm, err, sizeof(err));
    struct gr_cost one = {1, 10, 0};
    struct gr_usage use = {-1, -1, 0};
    struct gr_lease l[3], x;
    int i, rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    /* Every reservation pinned to p2 lands on p2, until its 3 requests
     * a window are spent... */
    for (i = 0; i < 3; i++) {
        rc = gr_reserve_on(g, "p2", "m", &one, 0, &l[i]);
        CU_ASSERT_EQUAL(rc, GR_OK);
        if (rc == GR_OK)
            CU_ASSERT_STRING_EQUAL(l[i].project, "p2");
    }
    /* ...then it is refused (no waiting: deadline 0), although p1 and p3
     * have room, and a deadline passes without going elsewhere. */
    CU_ASSERT_EQUAL(gr_reserve_on(g, "p2", "m", &one, 0, &x), GR_ENOROOM);
    CU_ASSERT(strstr(gr_errstr(g), "p2") != NULL);
    CU_ASSERT_EQUAL(gr_reserve_on(g, "p2", "m", &one, gr_now_ns() + 50 * MS,
                                  &x), GR_EDEADLINE);
    CU_ASSERT_EQUAL(gr_reserve(g, "m", &one, 0, &x), GR_OK);
    if (strcmp(x.project, "p2") == 0)
        CU_FAIL("an unpinned reservation found room on a full project");
    gr_commit(g, &x, &use);
    /* A project that is not in the table. */
    CU_ASSERT_EQUAL(gr_reserve_on(g, "p9", "m", &one, 0, &x), GR_ENOMODEL);
    CU_ASSERT(strstr(gr_errstr(g), "p9") != NULL);
    /* NULL or "" is not pinned. */
    CU_ASSERT_EQUAL(gr_reserve_on(g, "", "m", &one, 0, &x), GR_OK);
    CU_ASSERT(strcmp(x.project, "p2") != 0);
    gr_commit(g, &x, &use);
    for (i = 0; i < 3; i++)
        gr_commit(g, &l[i], &use);
    gr_close(g);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"note, owner, forget across handles", test_note_and_owner},
        {"a request is pinned by what it names", test_pin_from_request},
        {"a pinned reservation stays on its project", test_reserve_on},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"affinity", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_affinity", suites, 60);
}
