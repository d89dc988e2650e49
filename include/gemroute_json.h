/*
 * gemroute_json.h - libgemroute's one json-c wrapper (client/json.c):
 * parse a buffer with one depth limit and one size cap, and read typed
 * members.  Shared-private, like shm/layout.h: libgemroute's own files
 * (through client/json_priv.h) and the programs built in this tree that
 * take apart JSON they relay (gemroute-gateway) use it, so that there is
 * one parse path and one depth limit, not one per program.  Not a public
 * API: it is not installed (make install copies gemroute.h and
 * gemroute_stat.h only), and its functions are not exported from the
 * shared library (hidden visibility; the gateway links the objects).
 *
 * json-c's own headers are included by client/json.c and by the .c files
 * that walk the trees, never here (STYLE.md rule 3): this header speaks
 * of struct json_object by name only and has its own type enum, whose
 * values json.c asserts equal to json-c's.
 */
#ifndef GEMROUTE_JSON_H
#define GEMROUTE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

/*
 * Deepest nesting json-c follows in client/ and the gateway
 * (json_tokener_new_ex()'s depth; a document nested deeper is "not
 * JSON").  64 because it is the limit most of client/ already used,
 * twice json-c's default of 32, and far above what Google sends or
 * accepts (its answers nest about 10 deep; a functionDeclarations
 * schema a few more), while it keeps the recursive walkers over a tree
 * (estimate.c, cache.c) within a small, fixed stack.  The byte
 * scanner's GR_JSON_DEPTH (client/json_scan.h) must stay below it, so
 * that whatever the scanner accepts json-c accepts too.
 */
#define GR_JSON_MAX_DEPTH 64

/* Largest buffer gr_json_parse() reads: json-c counts lengths in int. */
#define GR_JSON_MAX_LEN ((size_t)INT32_MAX)

/* The type of a member, as json-c's enum json_type (same values). */
enum gr_json_type {
    GR_JSON_NULL,
    GR_JSON_BOOL,
    GR_JSON_DOUBLE,
    GR_JSON_INT,
    GR_JSON_OBJECT,
    GR_JSON_ARRAY,
    GR_JSON_STRING,
};

/* Flags of gr_json_parse(). */
#define GR_JSON_BOM 0x1u    /* skip a leading UTF-8 byte order mark */
#define GR_JSON_WS_END 0x2u /* only JSON whitespace may follow the value */
#define GR_JSON_EXACT 0x4u  /* json-c must consume every byte (it eats
                               the whitespace after a value, by its own
                               isspace() definition) */

/*
 * Parse s[0..len) as one JSON value, at most GR_JSON_MAX_DEPTH deep.
 * Without GR_JSON_WS_END or GR_JSON_EXACT, text after the first whole
 * value is ignored.  max caps len (0: GR_JSON_MAX_LEN; larger values are
 * capped to it).  Returns the tree, which the caller frees with
 * json_object_put(), or NULL with *why (when why is not NULL) set to a
 * static phrase: "empty", "too large", "out of memory", "nested too
 * deep", "not JSON" or "text after the value".
 */
struct json_object *gr_json_parse(const char *s, size_t len, size_t max,
                                  unsigned flags, const char **why);

/*
 * s[0..len) is one JSON object that json-c reads whole too (strict JSON,
 * whitespace around it allowed, at most GR_JSON_DEPTH deep), found
 * without building a tree.  false also means "in doubt": gr_json_parse()
 * then has the answer.
 */
bool gr_json_is_object(const char *s, size_t len);

/* o's member key when o is an object and the member has that type;
 * else NULL (a JSON null is never returned).  o may be NULL. */
struct json_object *gr_json_member(struct json_object *o, const char *key,
                                   enum gr_json_type type);

/* As gr_json_member() for key, then for alt (when not NULL): the REST
 * API's camelCase and proto snake_case spellings of one field. */
struct json_object *gr_json_member2(struct json_object *o, const char *key,
                                    const char *alt, enum gr_json_type type);

/* A string member: its bytes (NUL-terminated, owned by the tree) and, when
 * len is not NULL, their number; NULL when there is no such string. */
const char *gr_json_member_str(struct json_object *o, const char *key,
                               size_t *len);

/* An integer member (json-c's int type, clamped to int64 by json-c) into
 * *out; false, *out untouched, when there is none. */
bool gr_json_member_i64(struct json_object *o, const char *key,
                        int64_t *out);

#endif
