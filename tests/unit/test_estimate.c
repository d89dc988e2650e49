/*
 * test_estimate.c - client/estimate.c: the cost estimate of a request
 * (gr_est_*): the scanner's reading, the json-c tree's, and that the two
 * agree wherever the scanner answers.  Requests are copied to heap
 * buffers of exactly their length, so a read past len is an error under
 * ASan or valgrind.
 */
#include "estimate_priv.h"
#include "testlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
exact(const char *s, size_t len)
{
    char *b = malloc(len > 0 ? len : 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    memcpy(b, s, len);
    return b;
}

/* --- requests: the estimate -------------------------------------------- */

static void
assert_est(const char *req, int scan_rc, int64_t text, int64_t images,
           int64_t requests)
{
    size_t n = strlen(req);
    char *b = exact(req, n);
    struct gr_est s, t, r;
    int rc = gr_est_scan(b, n, &s);

    gr_est_tree(b, n, &t);
    gr_est_read(b, n, &r);
    if (rc != scan_rc || t.text_bytes != text || t.images != images ||
        t.requests != requests)
        fprintf(stderr, "\n%s: scan %d tree %lld %lld %lld\n", req, rc,
                (long long)t.text_bytes, (long long)t.images,
                (long long)t.requests);
    CU_ASSERT_EQUAL(rc, scan_rc);
    CU_ASSERT_EQUAL(t.text_bytes, text);
    CU_ASSERT_EQUAL(t.images, images);
    CU_ASSERT_EQUAL(t.requests, requests);
    if (rc == 0) {
        CU_ASSERT_EQUAL(s.text_bytes, text);
        CU_ASSERT_EQUAL(s.images, images);
        CU_ASSERT_EQUAL(s.requests, requests);
    }
    CU_ASSERT_EQUAL(r.text_bytes, text);
    CU_ASSERT_EQUAL(r.images, images);
    CU_ASSERT_EQUAL(r.requests, requests);
    free(b);
}

static void
test_estimate(void)
{
    assert_est("{\"contents\":[{\"parts\":[{\"text\":\"Write one short "
               "sentence about the sea.\"}]}]}", 0, 39, 0, 0);
    assert_est("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"ab\"},"
               "{\"text\":\"c\\n\\u00e9\"}]}],\"systemInstruction\":{\"parts\""
               ":[{\"text\":\"sys\"}]}}", 0, 9, 0, 0);
    assert_est("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":"
               "\"image/png\",\"data\":\"AAAA\"}},{\"inline_data\":{"
               "\"mime_type\":\"image/jpeg\",\"data\":\"BB\"}},{\"inlineData"
               "\":{\"mimeType\":\"audio/wav\"}},{\"inlineData\":{"
               "\"mime_type\":\"image/x\"}}]}]}", 0, 0, 3, 0);
    /* inlineData not an object: inline_data counts instead */
    assert_est("{\"contents\":[{\"parts\":[{\"inlineData\":1,\"inline_data\":"
               "{\"mimeType\":\"image/png\"}}]}]}", 0, 0, 1, 0);
    /* mimeType not a string: mime_type decides */
    assert_est("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":5,"
               "\"mime_type\":\"image/png\"}}]}]}", 0, 0, 1, 0);
    assert_est("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":"
               "\"imag\"}}]}]}", 0, 0, 0, 0);
    /* text outside parts, or not a string: not counted */
    assert_est("{\"text\":\"abc\",\"contents\":[{\"parts\":{\"text\":\"x\"}},"
               "{\"parts\":[{\"text\":5}]}]}", 0, 0, 0, 0);
    /* parts in nested arrays, and parts anywhere */
    assert_est("{\"a\":{\"b\":[{\"parts\":[[{\"text\":\"abcd\"}]]}]}}", 0, 4,
               0, 0);
    assert_est("[{\"parts\":[{\"text\":\"ab\"}]}]", 0, 2, 0, 0);
    assert_est("{\"requests\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}},"
               "{\"content\":{\"parts\":[{\"text\":\"bc\"}]}}]}", 0, 3, 0, 2);
    assert_est("{\"x\":{\"requests\":[1,2]}}", 0, 0, 0, 0);
    assert_est("{\"requests\":[]}", 0, 0, 0, 0);
    assert_est("{\"contents\":[{\"parts\":[{\"text\":\"\\ud83d\\ude00\"}]}]}",
               0, 4, 0, 0);
    /* doubt: json-c decides, and the answer is still its own */
    assert_est("{\"contents\":[{\"parts\":[{\"text\":\"a\",\"text\":"
               "\"bcd\"}]}]}", -1, 3, 0, 0);
    assert_est("{\"contents\":[{\"parts\":[{\"text\":\"abc\",\"text\":5}]}]}",
               -1, 0, 0, 0);
    assert_est("{\"contents\":[{\"parts\":[{\"te\\u0078t\":\"abc\"}]}]}", -1,
               3, 0, 0);
    assert_est("{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":"
               "\"image\\/png\"}}]}]}", -1, 0, 1, 0);
    assert_est("{\"contents\":[{\"parts\":[{\"text\":\"\\ud800\"}]}]}", -1, 3,
               0, 0);
    assert_est("{\"contents\":[{\"parts\":[{\"text\":\"ab\"},]}]}", -1, 2, 0,
               0);
    assert_est("{\"contents\":[{\"parts\":[{\"text\":\"ab\"}]}]} x", -1, 2, 0,
               0);
    assert_est("{\"contents\":[{\"parts\":[{\"text\":\"ab\"}]}", -1, 0, 0, 0);
    assert_est("\"just a string\"", -1, 0, 0, 0);
    assert_est("", -1, 0, 0, 0);
}

/* build {"contents":[{"parts":[{"k0":0, ... "k<n-1>":n-1,"text":"abcde"
 * <extra>}]}]} */
static void
many_keys(char *req, size_t cap, int n, const char *extra)
{
    size_t at;
    int k;

    at = (size_t)snprintf(req, cap, "{\"contents\":[{\"parts\":[{");
    for (k = 0; k < n; k++)
        at += (size_t)snprintf(req + at, cap - at, "\"k%d\":%d,", k, k);
    snprintf(req + at, cap - at, "\"text\":\"abcde\"%s}]}]}", extra);
}

/* An object with many keys: duplicates are found, or doubted. */
static void
test_estimate_many_keys(void)
{
    char req[4096];

    /* 16 keys before "text": all kept, compared exactly, no doubt */
    many_keys(req, sizeof(req), 16, "");
    assert_est(req, 0, 5, 0, 0);
    many_keys(req, sizeof(req), 16, ",\"k3\":1,\"text\":\"xy\"");
    assert_est(req, -1, 2, 0, 0);
    /* 40: past what is kept, a key whose hash was seen is doubt */
    many_keys(req, sizeof(req), 40, "");
    assert_est(req, -1, 5, 0, 0);
    many_keys(req, sizeof(req), 40, ",\"k3\":1,\"text\":\"xy\"");
    assert_est(req, -1, 2, 0, 0);
}

/* Random damage to real requests: read always equals json-c's tree. */
static void
test_estimate_mutations(void)
{
    static const char *const seeds[] = {
        "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi \\\"you"
        "\\\"\\n\"},{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":"
        "\"iVBORw0K\"}}]}],\"generationConfig\":{\"temperature\":0.5,"
        "\"maxOutputTokens\":100},\"systemInstruction\":{\"parts\":[{\"text"
        "\":\"Be brief.\"}]}}",
        "{\"requests\":[{\"model\":\"models/x\",\"content\":{\"parts\":[{"
        "\"text\":\"one\"}]}},{\"content\":{\"parts\":[{\"text\":\"two\"}]}}]}",
    };
    static const char alphabet[] = "{}[]\",:\\u0123456789abcdefnrt -.eE+"
                                   "\x01\x7f\xc3\xa9";
    uint64_t rng = 0x9e3779b97f4a7c15u;
    size_t s;
    int i;

    for (s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        size_t n0 = strlen(seeds[s]);

        for (i = 0; i < 3000; i++) {
            char buf[1024];
            size_t n = n0, m, edits = 1 + gr_test_rand(&rng) % 3;
            struct gr_est t, r;
            char *b;

            memcpy(buf, seeds[s], n);
            for (m = 0; m < edits; m++) {
                size_t at = gr_test_rand(&rng) % n;
                char c = alphabet[gr_test_rand(&rng) %
                                  (sizeof(alphabet) - 1)];

                switch (gr_test_rand(&rng) % 3) {
                case 0:
                    buf[at] = c;
                    break;
                case 1:
                    if (n + 1 < sizeof(buf)) {
                        memmove(buf + at + 1, buf + at, n - at);
                        buf[at] = c;
                        n++;
                    }
                    break;
                default:
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                    break;
                }
            }
            b = exact(buf, n);
            gr_est_tree(b, n, &t);
            gr_est_read(b, n, &r);
            CU_ASSERT(t.text_bytes == r.text_bytes && t.images == r.images &&
                      t.requests == r.requests);
            free(b);
        }
    }
}

int
main(void)
{
    CU_TestInfo requests[] = {
        {"estimate", test_estimate},
        {"many keys", test_estimate_many_keys},
        {"mutations", test_estimate_mutations},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"requests", NULL, NULL, NULL, NULL, requests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_estimate", suites, 60);
}
