/*
 * response.c - reading successful Gemini answers: the usage they report,
 * the status an error body states, and server-sent event streams.
 *
 * Invariant protected: the usage handed to commit is the last
 * usageMetadata Google sent, or "unknown" (-1) - never a guess and never
 * a number read from the wrong place - because DESIGN.md's rule is that a
 * refund must not let the table under-count: unknown keeps the estimate.
 * The SSE parser gives the same events and the same usage however the
 * stream is cut into chunks, never reads past what it was given, and
 * holds at most GR_SSE_EVENT_MAX bytes of one event.  An event the
 * stream was cut inside is never dispatched: its bytes are not an answer,
 * and its usage is not Google's word.
 */
#include "json_priv.h"
#include "json_scan.h"
#include "response_priv.h"

#include <json.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESP_FULL_MAX (4u << 20)    /* bytes parsed whole; larger: tail */
#define RESP_TAIL_MAX (64u << 10)   /* bytes a usageMetadata may span */
#define RESP_TAIL_TRIES 64          /* candidate keys tried from the end */
#define RESP_ARRAY_MAX 100000       /* array elements we look at */

/* --- JSON --------------------------------------------------------------- */

/*
 * Parse body[0..len) as one JSON value (text after it is ignored).  NULL
 * when it is not JSON, too deep, or larger than RESP_FULL_MAX * 4.
 */
static struct json_object *
parse(const char *body, size_t len)
{
    return gr_json_parse(body, len, (size_t)RESP_FULL_MAX * 4, GR_JSON_BOM,
                         NULL);
}

/* A non-negative integer given as a number or a decimal string. */
static bool
json_u63(struct json_object *o, const char *key, int64_t *out)
{
    struct json_object *v;
    const char *s;
    int64_t x = 0;
    double d;
    int i, n;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) || v == NULL)
        return false;
    switch (json_object_get_type(v)) {
    case json_type_int:
        x = json_object_get_int64(v);   /* json-c clamps to int64 */
        break;
    case json_type_double:
        d = json_object_get_double(v);
        /* the range test refuses NaN too, so the cast is defined */
        if (!(d >= 0 && d < 9.2e18) || (double)(int64_t)d != d)
            return false;
        x = (int64_t)d;
        break;
    case json_type_string:
        s = json_object_get_string(v);
        n = json_object_get_string_len(v);
        if (n <= 0 || n > 18)           /* 18 digits cannot overflow */
            return false;
        for (i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            x = x * 10 + (s[i] - '0');
        }
        break;
    default:
        return false;
    }
    if (x < 0)
        return false;
    *out = x;
    return true;
}

static void
usage_clear(struct gr_resp_usage *u)
{
    u->prompt_tokens = -1;
    u->candidates_tokens = -1;
    u->thoughts_tokens = -1;
    u->total_tokens = -1;
    u->tool_prompt_tokens = -1;
    u->cached_tokens = -1;
}

/* Fields of a usageMetadata object over those already in u; true if any. */
static bool
usage_merge(struct json_object *um, struct gr_resp_usage *u)
{
    bool any = false;

    if (!json_object_is_type(um, json_type_object))
        return false;
    any |= json_u63(um, "promptTokenCount", &u->prompt_tokens);
    any |= json_u63(um, "candidatesTokenCount", &u->candidates_tokens);
    any |= json_u63(um, "thoughtsTokenCount", &u->thoughts_tokens);
    any |= json_u63(um, "totalTokenCount", &u->total_tokens);
    any |= json_u63(um, "toolUsePromptTokenCount", &u->tool_prompt_tokens);
    any |= json_u63(um, "cachedContentTokenCount", &u->cached_tokens);
    return any;
}

/* error.code of an object with an error member: 0 none, -1 unreadable. */
static int
error_code(struct json_object *o)
{
    struct json_object *err = gr_json_member(o, "error", GR_JSON_OBJECT);
    int64_t c;

    if (err == NULL)
        return 0;
    if (!json_u63(err, "code", &c) || c < 100 || c > 599)
        return -1;
    return (int)c;
}

/*
 * Usage and error code of a parsed answer: an object, or an array of
 * chunks whose usageMetadata are merged in order (the last one wins field
 * by field) and whose first error counts.
 */
static bool
scan_root(struct json_object *root, struct gr_resp_usage *u, int *code)
{
    size_t i, n;
    bool any = false;

    *code = 0;
    if (json_object_is_type(root, json_type_object)) {
        *code = error_code(root);
        return usage_merge(gr_json_member(root, "usageMetadata",
                                          GR_JSON_OBJECT), u);
    }
    if (!json_object_is_type(root, json_type_array))
        return false;
    n = json_object_array_length(root);
    for (i = 0; i < n && i < RESP_ARRAY_MAX; i++) {
        struct json_object *e = json_object_array_get_idx(root, i);

        any |= usage_merge(gr_json_member(e, "usageMetadata",
                                          GR_JSON_OBJECT), u);
        if (*code == 0)
            *code = error_code(e);
    }
    return any;
}

/*
 * For a body too large to parse whole (inline images, long streams): the
 * last key "usageMetadata" outside a string, followed by ':' and an
 * object, parsed alone.  Inside a JSON string every '"' is escaped, so a
 * quote preceded by an even number of backslashes starts or ends a
 * string; the ':' after the closing quote makes it a key.  Gemini writes
 * usageMetadata after the candidates, so from the end the first one found
 * is the answer's own, not a key inside some function call's arguments.
 */
static bool
usage_tail(const char *body, size_t len, struct gr_resp_usage *u)
{
    static const char key[] = "\"usageMetadata\"";
    const size_t klen = sizeof(key) - 1;
    size_t at = len, tries = 0;

    while (at >= klen && tries < RESP_TAIL_TRIES) {
        size_t i, j, bs = 0, span;
        struct json_object *o;
        bool any;

        at--;
        if (body[at - (klen - 1)] != '"' ||
            memcmp(body + at - (klen - 1), key, klen) != 0)
            continue;
        i = at - (klen - 1);
        at = i;     /* the next candidate ends before this one */
        tries++;
        while (bs < i && body[i - 1 - bs] == '\\')
            bs++;
        if (bs % 2 != 0)
            continue;
        for (j = i + klen; j < len && (body[j] == ' ' || body[j] == '\n' ||
                                       body[j] == '\r' || body[j] == '\t');
             j++)
            ;
        if (j >= len || body[j] != ':')
            continue;
        span = len - (j + 1);
        o = parse(body + j + 1, span < RESP_TAIL_MAX ? span : RESP_TAIL_MAX);
        any = usage_merge(o, u);
        json_object_put(o);
        if (any)
            return true;
    }
    return false;
}

/*
 * The fast path of a successful answer: the scanner finds the top-level
 * usageMetadata without json-c building the whole answer, and reads its
 * counts when each is written as plain digits.  Returns 1 when it could
 * answer (*any: some count was read; u holds them over what it held), 0
 * in doubt: the body is not an object the scanner accepts whole, it has
 * an error member (scan_root would read error.code), or a count is
 * written some other way (a string, a fraction, a sign).  json_u63()
 * reads plain digits as exactly that number and finds nothing in a
 * literal, an object or an array, so where this answers it answers as
 * usage_merge() would.
 */
#define NFAST 6     /* usageMetadata counts the fast path reads */

static int
usage_fast(const char *body, size_t len, struct gr_resp_usage *u, bool *any)
{
    struct gr_json_want f[] = {
        {"promptTokenCount", 16, NULL, 0, 0, 0},
        {"candidatesTokenCount", 20, NULL, 0, 0, 0},
        {"thoughtsTokenCount", 18, NULL, 0, 0, 0},
        {"totalTokenCount", 15, NULL, 0, 0, 0},
        {"toolUsePromptTokenCount", 23, NULL, 0, 0, 0},
        {"cachedContentTokenCount", 23, NULL, 0, 0, 0},
    };
    struct gr_json_want top[] = {
        {"usageMetadata", 13, f, NFAST, 0, 0},
        {"error", 5, NULL, 0, 0, 0},
    };
    int64_t *dst[] = {
        &u->prompt_tokens, &u->candidates_tokens, &u->thoughts_tokens,
        &u->total_tokens, &u->tool_prompt_tokens, &u->cached_tokens,
    };
    int64_t val[NFAST];
    bool got[NFAST] = {false};
    size_t k;

    if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) {
        body += 3;
        len -= 3;
    }
    if (gr_json_find(body, len, top, 2) != 0 || top[1].len != 0)
        return 0;
    *any = false;
    if (top[0].len == 0 || body[top[0].off] != '{')
        return 1;   /* none, or not an object: the tree has none either */
    for (k = 0; k < NFAST; k++) {
        const char *v = body + f[k].off;

        if (f[k].len == 0 || v[0] == '{' || v[0] == '[' || v[0] == 't' ||
            v[0] == 'f' || v[0] == 'n')
            continue;
        if (!gr_json_digits(v, f[k].len, &val[k]))
            return 0;
        got[k] = true;
    }
    for (k = 0; k < NFAST; k++) {
        if (got[k]) {
            *dst[k] = val[k];
            *any = true;
        }
    }
    return 1;
}

int
gr_resp_usage(const char *body, size_t len, struct gr_resp_usage *out)
{
    struct json_object *root;
    int code;
    bool any;

    usage_clear(out);
    if (body == NULL || len == 0)
        return -EINVAL;
    if (len > RESP_FULL_MAX)
        return usage_tail(body, len, out) ? 0 : -ENOENT;
    if (usage_fast(body, len, out, &any))
        return any ? 0 : -ENOENT;
    if ((root = parse(body, len)) == NULL)
        return -EINVAL;
    any = scan_root(root, out, &code);
    json_object_put(root);
    return any ? 0 : -ENOENT;
}

/* --- server-sent events ------------------------------------------------- */

static int
sse_fail(struct gr_sse *p, int err, const char *msg)
{
    p->err = err;
    snprintf(p->errmsg, sizeof(p->errmsg), "%s", msg);
    return err;
}

/* Make room for n more bytes (plus a NUL) in *buf. */
static int
grow(struct gr_sse *p, char **buf, size_t *cap, size_t used, size_t n)
{
    size_t want = used + n + 1, ncap;
    char *nb;

    if (want <= *cap)
        return 0;
    ncap = *cap != 0 ? *cap : 256;
    while (ncap < want)
        ncap *= 2;
    if ((nb = realloc(*buf, ncap)) == NULL)
        return sse_fail(p, -ENOMEM, "SSE: out of memory");
    *buf = nb;
    *cap = ncap;
    return 0;
}

/* The event and its line may not together exceed GR_SSE_EVENT_MAX. */
static int
check_size(struct gr_sse *p, size_t more)
{
    if (more > GR_SSE_EVENT_MAX ||
        p->line_len + p->data_len > GR_SSE_EVENT_MAX - more) {
        char msg[96];

        snprintf(msg, sizeof(msg), "SSE: event larger than %u MiB",
                 GR_SSE_EVENT_MAX >> 20);
        return sse_fail(p, -EMSGSIZE, msg);
    }
    return 0;
}

/* Whether members of the object o hold a finishReason (some candidate)
 * or a promptFeedback.blockReason: the answer's last event. */
static bool
final_of(struct json_object *o)
{
    struct json_object *cands = gr_json_member(o, "candidates",
                                               GR_JSON_ARRAY);
    struct json_object *fb = gr_json_member(o, "promptFeedback",
                                            GR_JSON_OBJECT);
    size_t i, n;

    if (gr_json_member(fb, "blockReason", GR_JSON_STRING) != NULL)
        return true;
    n = cands != NULL ? json_object_array_length(cands) : 0;
    for (i = 0; i < n && i < RESP_ARRAY_MAX; i++)
        if (gr_json_member(json_object_array_get_idx(cands, i),
                           "finishReason", GR_JSON_STRING) != NULL)
            return true;
    return false;
}

/*
 * Whether an event's data is Gemini's last event of an answer: a
 * candidate with a finishReason, or a prompt blocked (promptFeedback.
 * blockReason, no candidates).  Neither word in the bytes: no (the
 * common case, without parsing).  Otherwise the scanner answers when it
 * is sure, json-c when it is in doubt.
 */
static bool
event_final(const char *data, size_t len)
{
    struct gr_json_want fb[] = {{"blockReason", 11, NULL, 0, 0, 0}};
    struct gr_json_want top[] = {
        {"candidates", 10, NULL, 0, 0, 0},
        {"promptFeedback", 14, fb, 1, 0, 0},
    };
    struct json_object *root;
    size_t at, end, n = 0;
    bool fin;

    if (memmem(data, len, "finishReason", 12) == NULL &&
        memmem(data, len, "blockReason", 11) == NULL)
        return false;
    if (gr_json_find(data, len, top, 2) == 0) {
        if (fb[0].len != 0 && data[fb[0].off] == '"')
            return true;
        if (top[0].len == 0 || data[top[0].off] != '[')
            return false;
        at = gr_json_ws(data, len, top[0].off + 1);
        while (at < len && data[at] != ']' && n++ < RESP_ARRAY_MAX) {
            struct gr_json_want fr[] = {{"finishReason", 12, NULL, 0, 0, 0}};

            end = gr_json_value(data, len, at, 2);
            if (end == GR_JSON_BAD)
                break;                  /* in doubt: json-c decides */
            if (data[at] == '{' &&
                gr_json_find(data + at, end - at, fr, 1) != 0)
                break;
            if (data[at] == '{' && fr[0].len != 0 &&
                data[at + fr[0].off] == '"')
                return true;
            at = gr_json_ws(data, len, end);
            if (at < len && data[at] == ',')
                at = gr_json_ws(data, len, at + 1);
        }
        if (at < len && data[at] == ']')
            return false;
    }
    if ((root = parse(data, len)) == NULL)
        return false;
    fin = json_object_is_type(root, json_type_object) && final_of(root);
    json_object_put(root);
    return fin;
}

/* Whether data[0..len) is one whole JSON value and nothing else. */
static bool
whole_json(const char *data, size_t len)
{
    struct json_object *root;
    size_t at = gr_json_ws(data, len, 0), end;
    bool whole;

    if (at == len)
        return false;
    end = gr_json_value(data, len, at, 0);
    if (end != GR_JSON_BAD)
        return gr_json_ws(data, len, end) == len;
    root = gr_json_parse(data, len, (size_t)RESP_FULL_MAX * 4,
                         GR_JSON_WS_END, NULL);
    whole = root != NULL;
    json_object_put(root);
    return whole;
}

static int
dispatch(struct gr_sse *p, gr_sse_fn fn, void *arg)
{
    struct json_object *root;
    struct gr_resp_usage u;
    int code = 0, rc = 0;
    bool any;

    if (!p->has_data)
        return 0;
    /* Every data line added a "\n"; the last one is not part of the data. */
    if (p->data_len > 0)
        p->data_len--;
    if (grow(p, &p->data, &p->data_cap, p->data_len, 0) != 0)
        return p->err;
    p->data[p->data_len] = '\0';
    p->events++;

    u = p->usage;
    if (p->data_len <= RESP_FULL_MAX &&
        usage_fast(p->data, p->data_len, &u, &any)) {
        if (any)
            p->have_usage = true;
    } else if (p->data_len <= RESP_FULL_MAX &&
               (root = parse(p->data, p->data_len)) != NULL) {
        if (scan_root(root, &u, &code))
            p->have_usage = true;
        json_object_put(root);
    } else if (p->data_len > RESP_FULL_MAX && usage_tail(p->data,
                                                         p->data_len, &u)) {
        p->have_usage = true;
    }
    p->usage = u;
    if (code > 0 && p->error_code == 0)
        p->error_code = code;
    /* Every size: an image's last event may be megabytes; the scanner
     * walks it, json-c (up to 16 MiB) only when in doubt. */
    if (!p->finished && code == 0 && event_final(p->data, p->data_len))
        p->finished = true;

    if (fn != NULL)
        rc = fn(arg, p->data, p->data_len);
    p->data_len = 0;
    p->has_data = false;
    if (rc != 0)
        return sse_fail(p, rc, "SSE: stopped by the event callback");
    return 0;
}

/* One whole line, without its end. */
static int
end_line(struct gr_sse *p, gr_sse_fn fn, void *arg)
{
    const char *colon, *value;
    size_t flen, vlen;

    if (p->skip_line) {
        p->skip_line = false;
        return 0;
    }
    if (p->line_len == 0)
        return dispatch(p, fn, arg);
    colon = memchr(p->line, ':', p->line_len);
    flen = colon != NULL ? (size_t)(colon - p->line) : p->line_len;
    value = colon != NULL ? colon + 1 : p->line + p->line_len;
    vlen = p->line_len - (size_t)(value - p->line);
    if (vlen > 0 && *value == ' ') {
        value++;
        vlen--;
    }
    if (flen == 4 && memcmp(p->line, "data", 4) == 0) {
        /* the line is in the size check already; only "\n" is new */
        if (grow(p, &p->data, &p->data_cap, p->data_len, vlen + 1) != 0)
            return p->err;
        memcpy(p->data + p->data_len, value, vlen);
        p->data_len += vlen;
        p->data[p->data_len++] = '\n';
        p->has_data = true;
    }
    p->line_len = 0;
    return 0;
}

void
gr_sse_init(struct gr_sse *p)
{
    memset(p, 0, sizeof(*p));
    usage_clear(&p->usage);
}

int
gr_sse_feed(struct gr_sse *p, const char *bytes, size_t n, gr_sse_fn fn,
            void *arg)
{
    size_t i = 0, j;
    int rc;

    if (p->err != 0)
        return p->err;
    while (i < n) {
        if (p->after_cr) {
            p->after_cr = false;
            if (bytes[i] == '\n') {
                i++;
                continue;
            }
        }
        for (j = i; j < n && bytes[j] != '\n' && bytes[j] != '\r'; j++)
            ;
        if (p->line_len == 0 && j > i && bytes[i] == ':')
            p->skip_line = true;    /* a comment: not kept, not counted */
        if (!p->skip_line && j > i) {
            if ((rc = check_size(p, j - i)) != 0 ||
                (rc = grow(p, &p->line, &p->line_cap, p->line_len, j - i)))
                return rc;
            memcpy(p->line + p->line_len, bytes + i, j - i);
            p->line_len += j - i;
        }
        if (j == n)
            break;
        p->after_cr = bytes[j] == '\r';
        if ((rc = end_line(p, fn, arg)) != 0)
            return rc;
        i = j + 1;
    }
    return 0;
}

int
gr_sse_finish(struct gr_sse *p, gr_sse_fn fn, void *arg)
{
    bool cut;

    if (p->err != 0)
        return p->err;
    p->after_cr = false;
    p->skip_line = false;               /* a comment is no event */
    if (p->line_len > 0) {
        /* A line the stream ended in: a data line cut in the middle
         * (dropped with its event), or another field (nothing). */
        const char *colon = memchr(p->line, ':', p->line_len);
        size_t flen = colon != NULL ? (size_t)(colon - p->line)
                                    : p->line_len;

        p->line_len = 0;
        if (flen == 4 && memcmp(p->line, "data", 4) == 0) {
            p->has_data = false;
            p->data_len = 0;
            return sse_fail(p, -EPIPE, "SSE: stream cut inside an event");
        }
    }
    if (!p->has_data)
        return 0;
    /* Its lines ended but the blank line never came: whole only when
     * its data is (a capture that lost its last blank line); else cut,
     * and the part is dropped. */
    cut = p->data_len <= 1 || !whole_json(p->data, p->data_len - 1);
    if (cut) {
        p->has_data = false;
        p->data_len = 0;
        return sse_fail(p, -EPIPE, "SSE: stream cut inside an event");
    }
    return dispatch(p, fn, arg);
}

const char *
gr_sse_error(const struct gr_sse *p)
{
    return p->err != 0 ? p->errmsg : "";
}

void
gr_sse_free(struct gr_sse *p)
{
    free(p->line);
    free(p->data);
    gr_sse_init(p);
}

/* --- the status a body states ------------------------------------------- */

static bool
looks_like_sse(const char *body, size_t len)
{
    size_t i = 0;

    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' ||
                       body[i] == '\t'))
        i++;
    return (len - i >= 5 && memcmp(body + i, "data:", 5) == 0) ||
           (len - i >= 6 && memcmp(body + i, "event:", 6) == 0) ||
           (len - i >= 1 && body[i] == ':');
}

int
gr_resp_status(const char *body, size_t len)
{
    struct json_object *root;
    struct gr_resp_usage u;
    struct gr_sse p;
    int code = 0;

    if (body == NULL || len == 0 || len > RESP_FULL_MAX)
        return -1;
    if (looks_like_sse(body, len)) {
        /* A pasted body may have lost its last line end: give it one.
         * An event still cut is dropped (-EPIPE) and says nothing. */
        gr_sse_init(&p);
        if (gr_sse_feed(&p, body, len, NULL, NULL) == 0 &&
            gr_sse_feed(&p, "\n", 1, NULL, NULL) == 0)
            (void)gr_sse_finish(&p, NULL, NULL);
        code = p.err != 0 && p.err != -EPIPE ? -1
               : p.error_code > 0 ? p.error_code
               : p.events > 0 ? 200 : -1;
        gr_sse_free(&p);
        return code;
    }
    if ((root = parse(body, len)) == NULL)
        return -1;
    usage_clear(&u);
    if (json_object_is_type(root, json_type_object) ||
        json_object_is_type(root, json_type_array))
        (void)scan_root(root, &u, &code);
    else
        code = -1;      /* a bare number or string is no answer of Google's */
    json_object_put(root);
    return code == 0 ? 200 : code;
}

/* ---- images in an answer ---------------------------------------------- */

/*
 * At s[i] a key "mimeType" or "mime_type" just closed (i is past its
 * closing quote): whether its value is a string starting with "image/".
 */
static bool
image_value(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' ||
                       s[i] == '\t'))
        i++;
    if (i >= len || s[i] != ':')
        return false;
    for (i++; i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' ||
                          s[i] == '\t');
         i++)
        ;
    return i + 7 <= len && memcmp(s + i, "\"image/", 7) == 0;
}

int64_t
gr_resp_images(const char *body, size_t len)
{
    static const char *const keys[] = {"\"mimeType\"", "\"mime_type\""};
    int64_t n = 0;
    size_t k;

    if (body == NULL)
        return 0;
    for (k = 0; k < 2; k++) {
        size_t kl = strlen(keys[k]);
        const char *p = body, *end = body + len;

        while ((p = memmem(p, (size_t)(end - p), keys[k], kl)) != NULL) {
            size_t at = (size_t)(p - body), bs = 0;

            /* a quote after an odd run of backslashes is inside a
             * string: not a key */
            while (bs < at && body[at - 1 - bs] == '\\')
                bs++;
            if (bs % 2 == 0 && image_value(body, len, at + kl))
                n++;
            p += kl;
        }
    }
    return n;
}
