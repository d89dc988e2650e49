/*
 * test_json_scan.c - the strict JSON scanner of client/json_scan.c, on
 * made-up input and on the real answers of tests/fixtures/gemini, where
 * its spans and the usage read through it (gr_resp_usage) are checked
 * against json-c.  (The estimate of a request, the other reader built on
 * it, is tested in test_estimate.c.)
 *
 * Each case asserts the exact span found, or that the scanner is in
 * doubt; and wherever the scanner answers, that the answer is json-c's.
 * Bodies are copied to heap buffers of exactly their length, so a read
 * past len is an error under ASan or valgrind.
 */
#include "json_scan.h"
#include "response_priv.h"
#include "testlib.h"

#include <json.h>

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

/* A fixture that must be there. */
static char *
fixture(const char *name, size_t *len)
{
    char *buf = gr_test_fixture(name, len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    return buf;
}

/* gr_json_find() of one key over an exact copy of s; rc, and the span. */
static int
find1(const char *s, const char *key, size_t *off, size_t *len)
{
    struct gr_json_want w = {key, strlen(key), NULL, 0, 7, 7};
    char *b = exact(s, strlen(s));
    int rc = gr_json_find(b, strlen(s), &w, 1);

    free(b);
    *off = w.off;
    *len = w.len;
    return rc;
}

/* The span of key in s, which must be found: as a string. */
static void
assert_span(const char *s, const char *key, const char *want)
{
    size_t off, len;

    CU_ASSERT_EQUAL(find1(s, key, &off, &len), 0);
    CU_ASSERT_EQUAL(len, strlen(want));
    if (len == strlen(want))
        CU_ASSERT_NSTRING_EQUAL(s + off, want, len);
}

static void
assert_absent(const char *s, const char *key)
{
    size_t off, len;

    CU_ASSERT_EQUAL(find1(s, key, &off, &len), 0);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(off, 0);
}

static void
assert_doubt(const char *s, const char *key)
{
    size_t off, len;

    if (find1(s, key, &off, &len) != -1)
        fprintf(stderr, "\nnot in doubt: %s\n", s);
    CU_ASSERT_EQUAL(find1(s, key, &off, &len), -1);
}

/* --- the scanner -------------------------------------------------------- */

static void
test_byte_classes(void)
{
    int c;

    for (c = 0; c < 256; c++) {
        char in[3] = {'"', (char)c, '"'};
        char ws[1] = {(char)c};
        size_t dlen = 99;
        bool esc;
        size_t end = gr_json_string(in, 3, 0, &dlen, &esc);
        bool plain = c >= 0x20 && c != '"' && c != '\\';
        bool white = c == ' ' || c == '\t' || c == '\n' || c == '\r';

        if (plain) {
            CU_ASSERT_EQUAL(end, 3);
            CU_ASSERT_EQUAL(dlen, 1);
            CU_ASSERT_FALSE(esc);
        } else if (c == '"') {
            CU_ASSERT_EQUAL(end, 2);        /* "" then a stray quote */
        } else {
            CU_ASSERT_EQUAL(end, GR_JSON_BAD);
        }
        CU_ASSERT_EQUAL(gr_json_ws(ws, 1, 0), white ? 1u : 0u);
    }
}

/*
 * Strings are skipped eight bytes at a time: every byte value at every
 * place of a long run must end it (or not) exactly where one at a time
 * would, in each of the eight lanes and in the bytes after the last
 * whole word.
 */
#define RUN 27

static void
test_every_byte_in_a_long_string(void)
{
    int c, p, wrong = 0;

    for (c = 0; c < 256; c++) {
        for (p = 0; p < RUN; p++) {
            char in[RUN + 2], *b;
            size_t dlen = 0, end, want;
            bool esc;

            in[0] = '"';
            memset(in + 1, 'a', RUN);
            in[1 + p] = (char)c;
            in[RUN + 1] = '"';
            b = exact(in, sizeof(in));
            end = gr_json_string(b, sizeof(in), 0, &dlen, &esc);
            if (c >= 0x20 && c != '"' && c != '\\')
                want = sizeof(in);
            else if (c == '"')
                want = (size_t)p + 2;
            else
                want = GR_JSON_BAD;     /* "\\a" or a control byte */
            if (end != want || (end == sizeof(in) && dlen != RUN))
                wrong++;
            free(b);
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
}

static void
test_string_lengths(void)
{
    static const struct {
        const char *s;
        size_t dlen;            /* (size_t)-1: GR_JSON_BAD */
    } t[] = {
        {"\"\"", 0},
        {"\"abc\"", 3},
        {"\"a\\nb\"", 3},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 8},
        {"\"\\u0041\"", 1},
        {"\"\\u0000\"", 1},
        {"\"\\u00e9\"", 2},
        {"\"\\u07FF\"", 2},
        {"\"\\u0800\"", 3},
        {"\"\\uFFFF\"", 3},
        {"\"\\ud83d\\ude00\"", 4},
        {"\"\\uDBFF\\uDFFF\"", 4},
        {"\"\xc3\xa9\"", 2},            /* raw UTF-8 counts as bytes */
        {"\"\\ud800\"", (size_t)-1},    /* lone high surrogate */
        {"\"\\udc00\"", (size_t)-1},    /* lone low surrogate */
        {"\"\\ud800\\u0041\"", (size_t)-1},
        {"\"\\ud800\\ud800\"", (size_t)-1},
        {"\"\\x\"", (size_t)-1},
        {"\"\\u12G4\"", (size_t)-1},
        {"\"\\u12\"", (size_t)-1},
        {"\"abc", (size_t)-1},
        {"\"abc\\", (size_t)-1},
        {"\"a\tb\"", (size_t)-1},       /* raw control byte */
        {"abc", (size_t)-1},
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].s), dlen = 0, end;
        char *b = exact(t[i].s, n);
        bool esc;

        end = gr_json_string(b, n, 0, &dlen, &esc);
        if (t[i].dlen == (size_t)-1) {
            CU_ASSERT_EQUAL(end, GR_JSON_BAD);
        } else {
            CU_ASSERT_EQUAL(end, n);
            CU_ASSERT_EQUAL(dlen, t[i].dlen);
            CU_ASSERT_EQUAL(esc, strchr(t[i].s, '\\') != NULL);
        }
        free(b);
    }
}

static void
test_exact_spans(void)
{
    const char *doc = "{\"a\":1,\"usageMetadata\":{\"x\":2},"
                      "\"b\":\"usageMetadata\"}";
    size_t off, len;

    CU_ASSERT_EQUAL(find1(doc, "usageMetadata", &off, &len), 0);
    CU_ASSERT_EQUAL(off, 23);
    CU_ASSERT_EQUAL(len, 7);
    assert_span(doc, "a", "1");
    assert_span(doc, "b", "\"usageMetadata\"");
    assert_span(" \r\n\t{ \"k\" :\n [ 1 , {\"x\" : [ ] } ] }\n ", "k",
                "[ 1 , {\"x\" : [ ] } ]");
    assert_span("{\"k\":-0.5e+10}", "k", "-0.5e+10");
    assert_span("{\"k\":true,\"l\":false,\"m\":null}", "l", "false");
    assert_span("{\"k\":\"\\\"}\"}", "k", "\"\\\"}\"");
    assert_span("{\"\":1,\"k\":{}}", "k", "{}");
    assert_absent("{}", "k");
    assert_absent("{ }", "k");
}

static void
test_nested_and_strings(void)
{
    /* nested one level down: not the top-level member */
    assert_absent("{\"candidates\":[{\"usageMetadata\":{\"promptTokenCount\""
                  ":99}}]}", "usageMetadata");
    assert_absent("{\"x\":{\"usageMetadata\":{}}}", "usageMetadata");
    /* inside a string, with escaped quotes that look like a key */
    assert_absent("{\"text\":\"\\\"usageMetadata\\\":{\\\"prompt"
                  "TokenCount\\\":5}\"}", "usageMetadata");
    assert_absent("{\"usageMetadatax\":1,\"usageMetadat\":2}",
                  "usageMetadata");
    /* the nested one is skipped, the top-level one found */
    assert_span("{\"c\":[{\"usageMetadata\":1}],\"usageMetadata\":2}",
                "usageMetadata", "2");
}

static void
test_doubt(void)
{
    static const char *const bad[] = {
        "",
        "   ",
        "[]",
        "\"k\"",
        "1",
        "null",
        "{\"k\":1,}",               /* trailing comma */
        "{\"k\":[1,]}",
        "{'k':1}",                  /* single quotes */
        "{\"k\":01}",               /* leading zero */
        "{\"k\":1.}",
        "{\"k\":.5}",
        "{\"k\":1e}",
        "{\"k\":1.0e+}",            /* json-c reads 1.0 */
        "{\"k\":+1}",
        "{\"k\":NaN}",
        "{\"k\":Infinity}",
        "{\"k\":TRUE}",
        "{\"k\":tru}",
        "{\"k\":1} x",              /* json-c ignores what follows */
        "{\"k\":1}{}",
        "{\"k\":1 /* c */}",
        "{\"k\":1 // c\n}",
        "{\"k\" 1}",
        "{\"k\":1 \"l\":2}",
        "{k:1}",
        "{\"k\":1",                 /* cut */
        "{\"k\":",
        "{\"k\"",
        "{",
        "{\"usage\\u004detadata\":{}}",  /* an escaped key */
        "{\"k\":1,\"k\":2}",        /* the wanted key twice */
        "{\"k\":\"\\ud800\"}",
        "\xef\xbb\xbf{\"k\":1}",    /* a BOM is the caller's to strip */
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_doubt(bad[i], "k");
    /* an unwanted key twice is no doubt: json-c's choice cannot matter */
    assert_span("{\"j\":1,\"j\":2,\"k\":3}", "k", "3");
}

static void
test_depth(void)
{
    char doc[256];
    size_t n, k, off, len;

    /* {"k": 32 nested arrays}: the innermost is at depth 32, accepted */
    for (k = 32; k <= 33; k++) {
        n = (size_t)snprintf(doc, sizeof(doc), "{\"k\":");
        memset(doc + n, '[', k);
        memset(doc + n + k, ']', k);
        n += 2 * k;
        doc[n++] = '}';
        doc[n] = '\0';
        CU_ASSERT_EQUAL(find1(doc, "k", &off, &len), k == 32 ? 0 : -1);
        if (k == 32) {
            CU_ASSERT_EQUAL(off, 5);
            CU_ASSERT_EQUAL(len, 64);
        }
    }
}

static void
test_sub_wants(void)
{
    const char *doc = "{\"u\":{\"p\":1,\"q\":{\"p\":3}},\"v\":{\"p\":2}}";
    struct gr_json_want sub[] = {{"p", 1, NULL, 0, 9, 9}};
    struct gr_json_want top[] = {{"u", 1, sub, 1, 9, 9}};
    char *b = exact(doc, strlen(doc));

    CU_ASSERT_EQUAL(gr_json_find(b, strlen(doc), top, 1), 0);
    CU_ASSERT_EQUAL(top[0].off, 5);
    CU_ASSERT_EQUAL(top[0].len, 19);
    CU_ASSERT_EQUAL(sub[0].off, 10);
    CU_ASSERT_EQUAL(sub[0].len, 1);
    free(b);

    /* the wanted member is not an object: its sub-wants are absent */
    b = exact("{\"u\":[{\"p\":1}]}", 15);
    CU_ASSERT_EQUAL(gr_json_find(b, 15, top, 1), 0);
    CU_ASSERT_EQUAL(top[0].len, 9);
    CU_ASSERT_EQUAL(sub[0].len, 0);
    free(b);

    /* a sub-key twice, or escaped, is doubt */
    b = exact("{\"u\":{\"p\":1,\"p\":2}}", 19);
    CU_ASSERT_EQUAL(gr_json_find(b, 19, top, 1), -1);
    free(b);
    b = exact("{\"u\":{\"\\u0070\":1}}", 18);
    CU_ASSERT_EQUAL(gr_json_find(b, 18, top, 1), -1);
    free(b);
}

static void
test_digits(void)
{
    int64_t v = -5;

    CU_ASSERT_TRUE(gr_json_digits("0", 1, &v) && v == 0);
    CU_ASSERT_TRUE(gr_json_digits("123", 3, &v) && v == 123);
    CU_ASSERT_TRUE(gr_json_digits("999999999999999999", 18, &v) &&
                   v == INT64_C(999999999999999999));
    CU_ASSERT_FALSE(gr_json_digits("1000000000000000000", 19, &v));
    CU_ASSERT_FALSE(gr_json_digits("", 0, &v));
    CU_ASSERT_FALSE(gr_json_digits("-1", 2, &v));
    CU_ASSERT_FALSE(gr_json_digits("1.0", 3, &v));
    CU_ASSERT_FALSE(gr_json_digits("1e3", 3, &v));
    CU_ASSERT_FALSE(gr_json_digits("01", 2, &v));
    CU_ASSERT_FALSE(gr_json_digits("\"1\"", 3, &v));
}

/* --- answers: the samples and their usage ------------------------------ */

/* json-c's usageMetadata of a body, for bodies whose counts are ints. */
static bool
ref_usage(const char *b, size_t n, struct gr_resp_usage *u)
{
    static const char *const keys[] = {
        "promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount",
        "totalTokenCount",
    };
    int64_t *dst[] = {
        &u->prompt_tokens, &u->candidates_tokens, &u->thoughts_tokens,
        &u->total_tokens,
    };
    struct json_tokener *tok = json_tokener_new_ex(128);
    struct json_object *root, *um, *v;
    bool any = false;
    size_t k;

    u->prompt_tokens = u->candidates_tokens = -1;
    u->thoughts_tokens = u->total_tokens = -1;
    root = json_tokener_parse_ex(tok, b, (int)n);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(root);
        root = NULL;
    }
    json_tokener_free(tok);
    if (json_object_object_get_ex(root, "usageMetadata", &um) &&
        json_object_is_type(um, json_type_object)) {
        for (k = 0; k < 4; k++) {
            if (json_object_object_get_ex(um, keys[k], &v) &&
                json_object_is_type(v, json_type_int) &&
                json_object_get_int64(v) >= 0) {
                *dst[k] = json_object_get_int64(v);
                any = true;
            }
        }
    }
    json_object_put(root);
    return any;
}

static void
test_sample_answer(void)
{
    size_t n, cut, off, len, last;
    char *body = fixture("200-generate-content.json", &n);
    const char *um = strstr(body, "\"usageMetadata\": ");
    struct gr_resp_usage u, r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(um);
    /* the span: from the '{' after the key to its own '}' */
    CU_ASSERT_EQUAL(find1(body, "usageMetadata", &off, &len), 0);
    CU_ASSERT_EQUAL(off, (size_t)(um - body) + 17);
    CU_ASSERT_EQUAL(body[off], '{');
    CU_ASSERT_EQUAL(body[off + len - 1], '}');
    CU_ASSERT_PTR_NOT_NULL(strstr(body + off + len, "\"modelVersion\""));

    CU_ASSERT_EQUAL(gr_resp_usage(body, n, &u), 0);
    CU_ASSERT_EQUAL(u.prompt_tokens, 8);
    CU_ASSERT_EQUAL(u.candidates_tokens, 12);
    CU_ASSERT_EQUAL(u.thoughts_tokens, -1);
    CU_ASSERT_EQUAL(u.total_tokens, 20);

    /* every cut: the scanner doubts until the closing brace is in */
    last = n;
    while (last > 0 && body[last - 1] != '}')
        last--;
    for (cut = 0; cut <= n; cut++) {
        struct gr_json_want w = {"usageMetadata", 13, NULL, 0, 0, 0};
        char *b = exact(body, cut);
        int rc = gr_json_find(b, cut, &w, 1);
        bool any;

        CU_ASSERT_EQUAL(rc, cut >= last ? 0 : -1);
        /* and gr_resp_usage() answers json-c's way at every length */
        rc = gr_resp_usage(b, cut, &u);
        any = ref_usage(b, cut, &r);
        CU_ASSERT_EQUAL(rc == 0, any);
        CU_ASSERT_EQUAL(u.prompt_tokens, r.prompt_tokens);
        CU_ASSERT_EQUAL(u.candidates_tokens, r.candidates_tokens);
        CU_ASSERT_EQUAL(u.total_tokens, r.total_tokens);
        free(b);
    }
    free(body);
}

/* Every fixture and sample: where the scanner answers, json-c agrees. */
static void
test_every_fixture(void)
{
    static const char *const files[] = {
        "200-generate-content.json", "400-api-key-invalid.json",
        "403-leaked-key.json", "404-model-not-found.json",
        "429-bare-no-details.json", "429-tpm-freetier-flash.json",
        "429-tpm-freetier-pro-no-retryinfo.json", "500-internal.json",
        "503-overloaded.json", "200-stream-sse-thinking.txt",
    };
    size_t f;

    for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        size_t n;
        char *body = fixture(files[f], &n);
        struct gr_json_want w[] = {
            {"usageMetadata", 13, NULL, 0, 0, 0},
            {"error", 5, NULL, 0, 0, 0},
        };
        struct gr_resp_usage u, r;
        int rc = gr_json_find(body, n, w, 2);

        if (files[f][0] == '2' && strstr(files[f], "sse") == NULL) {
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT(w[0].len > 0);
            CU_ASSERT_EQUAL(w[1].len, 0);
        } else if (strstr(files[f], "sse") != NULL) {
            CU_ASSERT_EQUAL(rc, -1);            /* not JSON */
        } else {
            CU_ASSERT_EQUAL(rc, 0);             /* an error answer */
            CU_ASSERT_EQUAL(w[0].len, 0);
            CU_ASSERT(w[1].len > 0);
            CU_ASSERT_EQUAL(body[w[1].off], '{');
        }
        CU_ASSERT_EQUAL(gr_resp_usage(body, n, &u) == 0,
                        ref_usage(body, n, &r));
        CU_ASSERT_EQUAL(u.prompt_tokens, r.prompt_tokens);
        CU_ASSERT_EQUAL(u.total_tokens, r.total_tokens);
        free(body);
    }
}

/* Usage read the fast way, and each way it falls back, all as json-c. */
static void
test_usage_forms(void)
{
    static const struct {
        const char *body;
        int rc;
        int64_t prompt, total;
    } t[] = {
        {"{\"usageMetadata\":{\"promptTokenCount\":7,\"totalTokenCount\":9}}",
         0, 7, 9},
        {"{\"usageMetadata\":{}}", -ENOENT, -1, -1},
        {"{\"usageMetadata\":[]}", -ENOENT, -1, -1},
        {"{\"usageMetadata\":5}", -ENOENT, -1, -1},
        {"{\"x\":1}", -ENOENT, -1, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":true}}", -ENOENT, -1, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":null}}", -ENOENT, -1, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":{\"a\":1}}}",
         -ENOENT, -1, -1},
        /* the fallbacks: json-c decides */
        {"{\"usageMetadata\":{\"promptTokenCount\":\"12\"}}", 0, 12, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":7.0}}", 0, 7, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":7.5}}", -ENOENT, -1, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":-1}}", -ENOENT, -1, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":1e2}}", 0, 100, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":1,\"promptTokenCount\""
         ":2}}", 0, 2, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":1},\"usageMetadata\":"
         "{\"promptTokenCount\":3}}", 0, 3, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":4}} trailing", 0, 4, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":4,}}", 0, 4, -1},
        {"{\"error\":{\"code\":500},\"usageMetadata\":{\"totalTokenCount\""
         ":6}}", 0, -1, 6},
        {"\xef\xbb\xbf{\"usageMetadata\":{\"promptTokenCount\":5}}", 0, 5,
         -1},
        {"[{\"usageMetadata\":{\"promptTokenCount\":1}},{\"usageMetadata\":"
         "{\"promptTokenCount\":2}}]", 0, 2, -1},
        {"{\"candidates\":[{\"usageMetadata\":{\"promptTokenCount\":9}}]}",
         -ENOENT, -1, -1},
        {"{\"usageMetadata\":{\"promptTokenCount\":1", -EINVAL, -1, -1},
        {"not json", -EINVAL, -1, -1},
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        size_t n = strlen(t[i].body);
        char *b = exact(t[i].body, n);
        struct gr_resp_usage u;
        int rc = gr_resp_usage(b, n, &u);

        if (rc != t[i].rc || u.prompt_tokens != t[i].prompt ||
            u.total_tokens != t[i].total)
            fprintf(stderr, "\ncase %zu: rc %d prompt %lld total %lld\n", i,
                    rc, (long long)u.prompt_tokens,
                    (long long)u.total_tokens);
        CU_ASSERT_EQUAL(rc, t[i].rc);
        CU_ASSERT_EQUAL(u.prompt_tokens, t[i].prompt);
        CU_ASSERT_EQUAL(u.total_tokens, t[i].total);
        free(b);
    }
}

int
main(void)
{
    CU_TestInfo scanner[] = {
        {"byte classes", test_byte_classes},
        {"every byte at every place of a long string",
         test_every_byte_in_a_long_string},
        {"string lengths", test_string_lengths},
        {"exact spans", test_exact_spans},
        {"keys nested or in strings", test_nested_and_strings},
        {"doubt", test_doubt},
        {"depth", test_depth},
        {"sub-wants", test_sub_wants},
        {"digits", test_digits},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo answers[] = {
        {"sample answer, every cut", test_sample_answer},
        {"every fixture", test_every_fixture},
        {"usage forms", test_usage_forms},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"scanner", NULL, NULL, NULL, NULL, scanner},
        {"answers", NULL, NULL, NULL, NULL, answers},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_json_scan", suites, 60);
}
