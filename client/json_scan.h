/*
 * json_scan.h - a strict JSON scanner that walks bytes without building
 * anything, for the hot path of a call: it finds the byte spans of the
 * few members libgemroute reads, and says "in doubt" for anything it is
 * not sure json-c would read the same way.  Private to client/.
 *
 * The contract callers rely on: every document the scanner accepts is
 * RFC 8259 JSON (no extension json-c tolerates: no comments, no trailing
 * commas, no single quotes, nothing after the value), nested at most
 * GR_JSON_DEPTH deep, so json-c accepts it too and builds the same
 * structure.  Anything else is GR_JSON_BAD or -1, and the caller then
 * takes its json-c path, whose answer is the reference.
 */
#ifndef GR_JSON_SCAN_H
#define GR_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting accepted (0 = the top value); deeper is doubt.  Below
 * json-c's limit in client/, GR_JSON_MAX_DEPTH (json_priv.h; json.c
 * asserts it). */
#define GR_JSON_DEPTH 32

/* "In doubt": returned instead of an offset. */
#define GR_JSON_BAD ((size_t)-1)

/* Offset of the first byte at or after pos that is not JSON whitespace
 * (space, tab, LF, CR); len when there is none. */
size_t gr_json_ws(const char *s, size_t len, size_t pos);

/*
 * The string starting at s[pos] (a '"').  Returns the offset just after
 * its closing quote, or GR_JSON_BAD: not a string, cut, a raw control
 * byte, a bad escape, or a surrogate escape that is not a whole pair
 * (json-c turns those into U+FFFD; we do not guess).  *dlen gets the
 * length json-c gives the decoded string, in bytes (UTF-8; \u0000 is one
 * byte); *esc says whether the string holds an escape.
 */
size_t gr_json_string(const char *s, size_t len, size_t pos, size_t *dlen,
                      bool *esc);

/*
 * The value starting at s[pos] (no whitespace before it), whose nesting
 * is depth (0 for a document's top value).  Returns the offset just
 * after it, or GR_JSON_BAD.
 */
size_t gr_json_value(const char *s, size_t len, size_t pos, unsigned depth);

/* A member gr_json_find() looks for, and where it found it. */
struct gr_json_want {
    const char *key;            /* plain bytes, no escapes */
    size_t klen;
    struct gr_json_want *sub;   /* when the value is an object: members
                                   of it to find too; NULL = none */
    size_t nsub;
    size_t off, len;            /* out: the value's bytes (offsets in s);
                                   len 0 = absent */
};

/*
 * s[0..len) must be one object (whitespace around it allowed) that the
 * scanner accepts whole.  Finds each wanted key among its own members,
 * never inside a nested value or a string, and each sub-want among the
 * members of a wanted member's object, in one pass.  Returns 0 with
 * every want filled (absent ones, and sub-wants of a value that is no
 * object, with len 0), or -1 in doubt: not strict JSON, not an object,
 * too deep, a key with an escape in an object searched (it might decode
 * to a wanted key), or a wanted key twice in one object (json-c keeps
 * the last; we do not choose).
 */
int gr_json_find(const char *s, size_t len, struct gr_json_want *w,
                 size_t nw);

/*
 * s[0..len) is exactly a number of 1 to 18 decimal digits (no sign,
 * fraction or exponent): store it, return true.  json-c reads such a
 * number as that exact int64.
 */
bool gr_json_digits(const char *s, size_t len, int64_t *out);

#endif
