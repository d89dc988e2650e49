/*
 * test_cache.c - the pieces of the shared response cache and of the
 * fallback step that need no router: the canonical form of a request
 * (client/cache.c), the path rewrite of a fallback (client/fallback.c),
 * and the LMDB store itself on a temporary directory: a miss claims, a
 * second miss of the same key sees the claim, an answer stored is a hit
 * for another handle, a claim given up is gone, a different key misses,
 * and a directory open to others or a damaged store is refused with a
 * sentence on the handle.
 */
#include "store_priv.h"
#include "fallback_priv.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static char *
canon(const char *s)
{
    size_t n = 0;

    return gr_cache_canon(s, strlen(s), &n);
}

static void
test_canonical(void)
{
    char *a = canon("{\"b\": 1, \"a\": {\"y\": [1, 2, {\"q\": 1, \"p\": 2}],"
                    " \"x\": \"s\"}}");
    char *b = canon("{\"a\":{\"x\":\"s\",\"y\":[1,2,{\"p\":2,\"q\":1}]},"
                    "\"b\":1}");
    char *c = canon("{\"a\":{\"x\":\"s\",\"y\":[2,1,{\"p\":2,\"q\":1}]},"
                    "\"b\":1}");
    char *d = canon("{\"a\": 1} trailing");

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(a, b);           /* order and spaces */
    CU_ASSERT_STRING_EQUAL(a, "{\"a\":{\"x\":\"s\",\"y\":[1,2,{\"p\":2,"
                              "\"q\":1}]},\"b\":1}");
    CU_ASSERT(strcmp(a, c) != 0);           /* array order matters */
    CU_ASSERT_PTR_NULL(d);                  /* not one JSON text */
    CU_ASSERT_PTR_NULL(canon("not json"));
    free(a);
    free(b);
    free(c);
}

static void
test_path(void)
{
    char buf[128];

    CU_ASSERT_EQUAL(gr_fb_path("/v1beta/models/gemini-2.5-pro:generate"
                               "Content", "gemini-2.5-pro",
                               "gemini-2.5-flash", buf, sizeof(buf)), 0);
    CU_ASSERT_STRING_EQUAL(buf,
                           "/v1beta/models/gemini-2.5-flash:generateContent");
    CU_ASSERT_EQUAL(gr_fb_path("/v1/models/p:streamGenerateContent?alt=sse",
                               "p", "f", buf, sizeof(buf)), 0);
    CU_ASSERT_STRING_EQUAL(buf, "/v1/models/f:streamGenerateContent?alt=sse");
    /* a path that names no model, or another one */
    CU_ASSERT_EQUAL(gr_fb_path("/v1beta/openai/chat/completions", "p", "f",
                               buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(gr_fb_path("/v1beta/models/px:generateContent", "p",
                               "f", buf, sizeof(buf)), -1);
    CU_ASSERT_EQUAL(gr_fb_path("/v1beta/models/p:x", "p",
                               "a-very-long-model-name", buf, 10), -1);
}

static struct gr *
handle(void)
{
    struct gr *g = calloc(1, sizeof(*g));

    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    pthread_mutex_init(&g->err_lock, NULL);
    return g;
}

static void
settings(struct gr_cache_cfg *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    c->flags = GR_CACHE_ON;
    c->max_bytes = 4u << 20;
    c->ttl_s = 3600;
    snprintf(c->path, sizeof(c->path), "%s", path);
}

static void
test_store(void)
{
    struct gr *g1 = handle(), *g2 = handle();
    struct gr_cache_cfg c;
    char *body = NULL;
    size_t len = 0;
    bool claimed = false;
    struct stat st;
    int64_t soon = gr_now_ns() + 50 * INT64_C(1000000);

    settings(&c, dir);
    /* a miss claims; the same key again sees the claim and, past its
     * wait, misses without a claim */
    CU_ASSERT_EQUAL(gr_cache_get(g1, &c, "k1", 2, soon, &claimed, &body,
                                 &len), 0);
    CU_ASSERT_TRUE(claimed);
    CU_ASSERT_EQUAL(stat(dir, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0700);
    CU_ASSERT_EQUAL(gr_cache_get(g2, &c, "k1", 2, soon, &claimed, &body,
                                 &len), 0);
    CU_ASSERT_FALSE(claimed);
    /* the answer is a hit for anyone */
    CU_ASSERT_EQUAL(gr_cache_put(g1, &c, "k1", 2, "{\"v\":1}", 7), 0);
    CU_ASSERT_EQUAL(gr_cache_get(g2, &c, "k1", 2, soon, &claimed, &body,
                                 &len), 1);
    CU_ASSERT_EQUAL(len, 7);
    CU_ASSERT_STRING_EQUAL(body, "{\"v\":1}");
    free(body);
    /* a claim given up is gone: the next miss claims again */
    CU_ASSERT_EQUAL(gr_cache_get(g1, &c, "k2", 2, soon, &claimed, &body,
                                 &len), 0);
    CU_ASSERT_TRUE(claimed);
    gr_cache_unclaim(g1, &c, "k2", 2);
    CU_ASSERT_EQUAL(gr_cache_get(g2, &c, "k2", 2, soon, &claimed, &body,
                                 &len), 0);
    CU_ASSERT_TRUE(claimed);
    /* unclaim leaves an answer alone */
    gr_cache_unclaim(g1, &c, "k1", 2);
    CU_ASSERT_EQUAL(gr_cache_get(g2, &c, "k1", 2, soon, &claimed, &body,
                                 &len), 1);
    free(body);
    free(g1);
    free(g2);
}

static void
test_refused(void)
{
    struct gr *g = handle();
    struct gr_cache_cfg c;
    char open_dir[80], bad_dir[80], path[120];
    char *body = NULL;
    size_t len = 0;
    bool claimed = false;
    FILE *f;

    snprintf(open_dir, sizeof(open_dir), "%s-open", dir);
    CU_ASSERT_EQUAL(mkdir(open_dir, 0700), 0);
    CU_ASSERT_EQUAL(chmod(open_dir, 0755), 0);
    settings(&c, open_dir);
    CU_ASSERT_EQUAL(gr_cache_get(g, &c, "k", 1, 0, &claimed, &body, &len),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g->err, "has mode 0755, open to others: "
                                  "refused"));
    /* damaged: not an LMDB file */
    snprintf(bad_dir, sizeof(bad_dir), "%s-bad", dir);
    CU_ASSERT_EQUAL(mkdir(bad_dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/data.mdb", bad_dir);
    f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 8192; i++)
        fputc("garbage"[i % 7], f);
    fclose(f);
    settings(&c, bad_dir);
    CU_ASSERT_EQUAL(gr_cache_get(g, &c, "k", 1, 0, &claimed, &body, &len),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g->err, "cannot be used"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g->err, "calls go through uncached"));
    free(g);
}

int
main(void)
{
    CU_TestInfo cases[] = {
        {"canonical form", test_canonical},
        {"fallback path", test_path},
        {"store: claim, hit, unclaim", test_store},
        {"refused: open mode, damaged", test_refused},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"cache", NULL, NULL, NULL, NULL, cases},
        CU_SUITE_INFO_NULL,
    };
    char cmd[256];
    int rc;

    snprintf(dir, sizeof(dir), "/tmp/gr-test-cache-%d", (int)getpid());
    rc = gr_test_main("test_cache", suites, 60);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s-open %s-bad", dir, dir, dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
