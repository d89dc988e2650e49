/*
 * json.c - the one place client/ calls json-c to parse: one depth limit
 * (GR_JSON_MAX_DEPTH), one size cap, and typed member getters, so that
 * every reader of a body (classify.c, response.c, estimate.c, generate.c,
 * forward.c, fallback.c, cache.c, resource.c) follows the same nesting
 * and never trusts a member's type.
 *
 * Invariant protected: a tree returned by gr_json_parse() is json-c's
 * reading of exactly the bytes it was given (never more than len, never
 * deeper than GR_JSON_MAX_DEPTH), and a getter returns a member only of
 * the type asked for, so a body of the wrong shape reads as "absent".
 */
#include "json_priv.h"
#include "json_scan.h"

#include <json.h>

#include <string.h>

_Static_assert((int)GR_JSON_NULL == (int)json_type_null &&
               (int)GR_JSON_BOOL == (int)json_type_boolean &&
               (int)GR_JSON_DOUBLE == (int)json_type_double &&
               (int)GR_JSON_INT == (int)json_type_int &&
               (int)GR_JSON_OBJECT == (int)json_type_object &&
               (int)GR_JSON_ARRAY == (int)json_type_array &&
               (int)GR_JSON_STRING == (int)json_type_string,
               "enum gr_json_type mirrors json-c's enum json_type");
_Static_assert(GR_JSON_DEPTH < GR_JSON_MAX_DEPTH,
               "what the scanner accepts, json-c must accept too");

bool
gr_json_is_object(const char *s, size_t len)
{
    return s != NULL && gr_json_find(s, len, NULL, 0) == 0;
}

struct json_object *
gr_json_parse(const char *s, size_t len, size_t max, unsigned flags,
              const char **why)
{
    struct json_tokener *tok;
    struct json_object *o;
    enum json_tokener_error err;
    const char *w = NULL;
    size_t end;

    if (max == 0 || max > GR_JSON_MAX_LEN)
        max = GR_JSON_MAX_LEN;
    if (s == NULL || len == 0) {
        w = "empty";
        goto fail;
    }
    if (len > max) {
        w = "too large";
        goto fail;
    }
    /* A UTF-8 byte order mark is not JSON but harmless; what is left may
     * be empty, which json-c then calls "not JSON". */
    if ((flags & GR_JSON_BOM) && len >= 3 &&
        memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        s += 3;
        len -= 3;
    }
    if ((tok = json_tokener_new_ex(GR_JSON_MAX_DEPTH)) == NULL) {
        w = "out of memory";
        goto fail;
    }
    /* len <= GR_JSON_MAX_LEN, so the int conversion is exact. */
    o = json_tokener_parse_ex(tok, s, (int)len);
    err = json_tokener_get_error(tok);
    end = (size_t)json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err != json_tokener_success || o == NULL) {
        json_object_put(o);
        w = err == json_tokener_error_depth ? "nested too deep" : "not JSON";
        goto fail;
    }
    if (((flags & GR_JSON_EXACT) && end != len) ||
        ((flags & GR_JSON_WS_END) && gr_json_ws(s, len, end) != len)) {
        json_object_put(o);
        w = "text after the value";
        goto fail;
    }
    return o;

fail:
    if (why != NULL)
        *why = w;
    return NULL;
}

struct json_object *
gr_json_member(struct json_object *o, const char *key,
               enum gr_json_type type)
{
    struct json_object *v;

    if (o == NULL || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, key, &v) || v == NULL ||
        !json_object_is_type(v, (enum json_type)type))
        return NULL;
    return v;
}

struct json_object *
gr_json_member2(struct json_object *o, const char *key, const char *alt,
                enum gr_json_type type)
{
    struct json_object *v = gr_json_member(o, key, type);

    if (v == NULL && alt != NULL)
        v = gr_json_member(o, alt, type);
    return v;
}

const char *
gr_json_member_str(struct json_object *o, const char *key, size_t *len)
{
    struct json_object *v = gr_json_member(o, key, GR_JSON_STRING);
    int n;

    if (v == NULL)
        return NULL;
    if (len != NULL) {
        n = json_object_get_string_len(v);
        *len = n > 0 ? (size_t)n : 0;
    }
    return json_object_get_string(v);
}

bool
gr_json_member_i64(struct json_object *o, const char *key, int64_t *out)
{
    struct json_object *v = gr_json_member(o, key, GR_JSON_INT);

    if (v == NULL)
        return false;
    *out = json_object_get_int64(v);
    return true;
}
