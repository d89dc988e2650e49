/*
 * test_json.c - client/json.c, the one json-c wrapper of client/: the
 * depth limit (GR_JSON_MAX_DEPTH nested arrays read, one more refused
 * with its reason), the size cap, the byte order mark, what may follow
 * the value, and the typed member getters (a member of the wrong type
 * reads as absent).  Inputs are copied to heap buffers of exactly their
 * length, so a read past len is an error under ASan or valgrind.
 */
#include "json_priv.h"
#include "testlib.h"

#include <json.h>

#include <stdlib.h>
#include <string.h>

/* Parse the first len bytes of s from a buffer of exactly len bytes. */
static struct json_object *
parse_n(const char *s, size_t len, size_t max, unsigned flags,
        const char **why)
{
    char *b = malloc(len > 0 ? len : 1);
    struct json_object *o;

    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    memcpy(b, s, len);
    *why = "unset";
    o = gr_json_parse(b, len, max, flags, why);
    free(b);
    return o;
}

static void
assert_refused(const char *s, size_t max, unsigned flags, const char *why)
{
    const char *w;
    struct json_object *o = parse_n(s, strlen(s), max, flags, &w);

    CU_ASSERT_PTR_NULL(o);
    CU_ASSERT_STRING_EQUAL(w, why);
    json_object_put(o);
}

static void
assert_read(const char *s, size_t max, unsigned flags)
{
    const char *w;
    struct json_object *o = parse_n(s, strlen(s), max, flags, &w);

    CU_ASSERT_PTR_NOT_NULL(o);
    CU_ASSERT_STRING_EQUAL(w, "unset");     /* why is set on failure only */
    json_object_put(o);
}

/* n nested arrays: "[[...]]" */
static char *
nested(size_t n)
{
    char *s = malloc(2 * n + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    return s;
}

static void
test_depth(void)
{
    char *ok = nested(GR_JSON_MAX_DEPTH);
    char *deep = nested(GR_JSON_MAX_DEPTH + 1);
    char *old = nested(128);    /* response.c followed 128 before */

    assert_read(ok, 0, 0);
    assert_refused(deep, 0, 0, "nested too deep");
    assert_refused(old, 0, 0, "nested too deep");
    free(ok);
    free(deep);
    free(old);
}

static void
test_bounds(void)
{
    const char *w = "unset";

    CU_ASSERT_PTR_NULL(gr_json_parse(NULL, 0, 0, 0, &w));
    CU_ASSERT_STRING_EQUAL(w, "empty");
    CU_ASSERT_PTR_NULL(gr_json_parse("{}", 0, 0, 0, NULL));
    /* the cap is on len, as given */
    assert_read("[1,2]", 5, 0);
    assert_refused("[1,2]", 4, 0, "too large");
    /* a byte order mark is skipped only when asked; the cap counts it */
    assert_read("\xef\xbb\xbf{}", 0, GR_JSON_BOM);
    assert_refused("\xef\xbb\xbf{}", 0, 0, "not JSON");
    assert_refused("\xef\xbb\xbf{}", 4, GR_JSON_BOM, "too large");
    assert_refused("\xef\xbb\xbf", 0, GR_JSON_BOM, "not JSON");
    /* not JSON, and a value the input cut */
    assert_refused("{\"a\":", 0, 0, "not JSON");
    assert_refused("{\"a\" 1}", 0, 0, "not JSON");
    assert_read("{'a': 1}", 0, 0);  /* json-c is not strict: the scanner is */
    assert_refused("12", 0, 0, "not JSON");     /* a number may go on */
}

static void
test_after_value(void)
{
    assert_read("{} x", 0, 0);                  /* ignored by default */
    assert_read("{} \r\n\t", 0, GR_JSON_WS_END);
    assert_refused("{} x", 0, GR_JSON_WS_END, "text after the value");
    /* json-c consumes the whitespace after a value itself */
    assert_read("{} ", 0, GR_JSON_EXACT);
    assert_refused("{} x", 0, GR_JSON_EXACT, "text after the value");
    assert_refused("{}{}", 0, GR_JSON_WS_END, "text after the value");
}

static void
test_members(void)
{
    static const char doc[] =
        "{\"s\": \"a\\u0000b\", \"i\": -7, \"d\": 1.5, \"n\": null, "
        "\"o\": {\"x\": 1}, \"a\": [1], \"b\": true, \"big\": 1e30, "
        "\"camel\": \"no\", \"snake\": 3}";
    const char *w;
    struct json_object *o = parse_n(doc, sizeof(doc) - 1, 0, 0, &w);
    struct json_object *arr;
    const char *s;
    size_t len = 99;
    int64_t v = 42;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_PTR_NOT_NULL(gr_json_member(o, "o", GR_JSON_OBJECT));
    CU_ASSERT_PTR_NOT_NULL(gr_json_member(o, "a", GR_JSON_ARRAY));
    CU_ASSERT_PTR_NOT_NULL(gr_json_member(o, "b", GR_JSON_BOOL));
    CU_ASSERT_PTR_NOT_NULL(gr_json_member(o, "d", GR_JSON_DOUBLE));
    /* wrong type, absent, null, not an object, no object */
    CU_ASSERT_PTR_NULL(gr_json_member(o, "o", GR_JSON_ARRAY));
    CU_ASSERT_PTR_NULL(gr_json_member(o, "i", GR_JSON_DOUBLE));
    CU_ASSERT_PTR_NULL(gr_json_member(o, "zz", GR_JSON_OBJECT));
    CU_ASSERT_PTR_NULL(gr_json_member(o, "n", GR_JSON_NULL));
    arr = gr_json_member(o, "a", GR_JSON_ARRAY);
    CU_ASSERT_PTR_NULL(gr_json_member(arr, "0", GR_JSON_INT));
    CU_ASSERT_PTR_NULL(gr_json_member(NULL, "o", GR_JSON_OBJECT));

    /* the alternative spelling, tried when the first is absent or of the
     * wrong type */
    CU_ASSERT_PTR_EQUAL(gr_json_member2(o, "camel", "snake", GR_JSON_INT),
                        gr_json_member(o, "snake", GR_JSON_INT));
    CU_ASSERT_PTR_EQUAL(gr_json_member2(o, "camel", "snake",
                                        GR_JSON_STRING),
                        gr_json_member(o, "camel", GR_JSON_STRING));
    CU_ASSERT_PTR_NULL(gr_json_member2(o, "camel", NULL, GR_JSON_INT));

    /* strings: the decoded length, NUL inside included */
    s = gr_json_member_str(o, "s", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT(memcmp(s, "a\0b", 3) == 0);
    CU_ASSERT_PTR_NOT_NULL(gr_json_member_str(o, "camel", NULL));
    len = 99;
    CU_ASSERT_PTR_NULL(gr_json_member_str(o, "i", &len));
    CU_ASSERT_EQUAL(len, 99);

    /* integers: json-c's int type only, any sign; else untouched */
    CU_ASSERT(gr_json_member_i64(o, "i", &v));
    CU_ASSERT_EQUAL(v, -7);
    v = 42;
    CU_ASSERT(!gr_json_member_i64(o, "d", &v));
    CU_ASSERT(!gr_json_member_i64(o, "big", &v));
    CU_ASSERT(!gr_json_member_i64(o, "s", &v));
    CU_ASSERT(!gr_json_member_i64(NULL, "i", &v));
    CU_ASSERT_EQUAL(v, 42);
    json_object_put(o);
}

int
main(void)
{
    CU_TestInfo parse[] = {
        {"depth limit", test_depth},
        {"empty, cap, byte order mark, not JSON", test_bounds},
        {"text after the value", test_after_value},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo members[] = {
        {"typed getters", test_members},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"parse", NULL, NULL, NULL, NULL, parse},
        {"members", NULL, NULL, NULL, NULL, members},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_json", suites, 60);
}
