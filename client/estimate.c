/*
 * estimate.c - what a request says about its own cost before it is sent:
 * the decoded bytes of the text of every part, the inline images, the
 * entries of a batch (docs/CLIENT.md, "The cost estimate").
 *
 * Two readers give the same answer.  The tree walk over json-c is the
 * reference; the scanner walk reads the bytes once without allocating,
 * and is in doubt (so the tree walk decides) wherever json-c might see
 * something else: anything json_scan.c refuses, a key with an escape, a
 * key twice in one object (json-c keeps the last value), an escaped
 * mimeType.  Invariant protected: for every body, gr_est_read() equals
 * gr_est_tree(); tests/fuzz/fuzz_json_scan.c checks it on any bytes.
 */
#include "estimate_priv.h"
#include "json_priv.h"
#include "json_scan.h"

#include <json.h>

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define KEYS_KEPT 16        /* keys of one object compared exactly */

/* ---- the reference: json-c's tree ------------------------------------- */

static void
walk(struct json_object *o, bool is_part, struct gr_est *e, int depth)
{
    if (depth > GR_JSON_MAX_DEPTH)
        return;
    if (json_object_is_type(o, json_type_array)) {
        size_t i, n = json_object_array_length(o);

        for (i = 0; i < n; i++)
            walk(json_object_array_get_idx(o, i), is_part, e, depth + 1);
        return;
    }
    if (!json_object_is_type(o, json_type_object))
        return;
    if (is_part) {
        struct json_object *t = gr_json_member(o, "text", GR_JSON_STRING);
        struct json_object *d = gr_json_member2(o, "inlineData",
                                                "inline_data",
                                                GR_JSON_OBJECT);

        if (t != NULL)
            e->text_bytes += json_object_get_string_len(t);
        if (d != NULL) {
            struct json_object *mt = gr_json_member2(d, "mimeType",
                                                     "mime_type",
                                                     GR_JSON_STRING);

            if (mt != NULL &&
                strncmp(json_object_get_string(mt), "image/", 6) == 0)
                e->images++;
        }
    }
    {
        json_object_object_foreach(o, key, val) {
            if (json_object_is_type(val, json_type_array))
                walk(val, strcmp(key, "parts") == 0, e, depth + 1);
            else if (json_object_is_type(val, json_type_object))
                walk(val, false, e, depth + 1);
        }
    }
}

void
gr_est_tree(const char *body, size_t len, struct gr_est *e)
{
    struct json_object *root, *r;

    memset(e, 0, sizeof(*e));
    if ((root = gr_json_parse(body, len, 0, 0, NULL)) == NULL)
        return;
    walk(root, false, e, 0);
    r = gr_json_member(root, "requests", GR_JSON_ARRAY);
    if (r != NULL)
        e->requests = (int64_t)json_object_array_length(r);
    json_object_put(root);
}

/* ---- the scanner's walk ----------------------------------------------- */

struct scan {
    const char *s;
    size_t len;
    struct gr_est *e;
};

/* The keys of one object so far: a duplicate is found, or suspected. */
struct keyset {
    uint64_t bloom;
    unsigned n;
    size_t off[KEYS_KEPT], len[KEYS_KEPT];
};

/* What an object tells the part holding it: its mimeType and mime_type
 * when they are strings (-1 not a string, 0 not image/, 1 image/). */
struct mime {
    int camel, snake;
};

/* True when s[off..off+n) is a key this object has had, or may have. */
static bool
key_again(struct keyset *ks, const char *s, size_t off, size_t n)
{
    unsigned h = (unsigned)n * 7u;
    uint64_t bit;
    unsigned i;

    if (n > 0)
        h += (unsigned char)s[off] * 3u + (unsigned char)s[off + n - 1];
    bit = UINT64_C(1) << (h & 63);
    if (ks->bloom & bit) {
        for (i = 0; i < ks->n && i < KEYS_KEPT; i++)
            if (ks->len[i] == n && memcmp(s + ks->off[i], s + off, n) == 0)
                return true;
        if (ks->n > KEYS_KEPT)
            return true;    /* one not kept may be it: doubt */
    }
    ks->bloom |= bit;
    if (ks->n < KEYS_KEPT) {
        ks->off[ks->n] = off;
        ks->len[ks->n] = n;
    }
    ks->n++;
    return false;
}

static bool
is_key(const char *s, size_t off, size_t n, const char *word)
{
    size_t w = strlen(word);

    return n == w && memcmp(s + off, word, n) == 0;
}

static size_t scan_object(struct scan *sc, size_t pos, bool is_part,
                          unsigned depth, struct mime *m);

/* The array at pos; *count gets its number of entries. */
static size_t
scan_array(struct scan *sc, size_t pos, bool is_part, unsigned depth,
           int64_t *count)
{
    const char *s = sc->s;
    struct mime m;

    *count = 0;
    if (depth > GR_JSON_DEPTH)
        return GR_JSON_BAD;
    pos = gr_json_ws(s, sc->len, pos + 1);
    if (pos < sc->len && s[pos] == ']')
        return pos + 1;
    for (;;) {
        int64_t n;

        if (pos >= sc->len)
            return GR_JSON_BAD;
        if (s[pos] == '{')
            pos = scan_object(sc, pos, is_part, depth + 1, &m);
        else if (s[pos] == '[')
            pos = scan_array(sc, pos, is_part, depth + 1, &n);
        else
            pos = gr_json_value(s, sc->len, pos, depth + 1);
        if (pos == GR_JSON_BAD)
            return GR_JSON_BAD;
        (*count)++;
        pos = gr_json_ws(s, sc->len, pos);
        if (pos >= sc->len)
            return GR_JSON_BAD;
        if (s[pos] == ']')
            return pos + 1;
        if (s[pos] != ',')
            return GR_JSON_BAD;
        pos = gr_json_ws(s, sc->len, pos + 1);
    }
}

/* 1 when the unescaped string at s[v] starts with "image/", else 0. */
static int
mime_is_image(const char *s, size_t v, size_t dlen)
{
    return dlen >= 6 && memcmp(s + v + 1, "image/", 6) == 0;
}

/*
 * The object at pos.  Counts itself when it is a part, as walk() does:
 * its "text" string, and an image when its inlineData object (else its
 * inline_data object) has a mimeType string (else a mime_type string)
 * starting with "image/".
 */
static size_t
scan_object(struct scan *sc, size_t pos, bool is_part, unsigned depth,
            struct mime *m)
{
    const char *s = sc->s;
    struct keyset ks;
    struct mime camel = {-1, -1}, snake = {-1, -1};
    bool have_camel = false, have_snake = false, have_text = false;
    size_t text_len = 0;

    m->camel = m->snake = -1;
    if (depth > GR_JSON_DEPTH)
        return GR_JSON_BAD;
    ks.bloom = 0;
    ks.n = 0;
    pos = gr_json_ws(s, sc->len, pos + 1);
    if (pos < sc->len && s[pos] == '}')
        goto done;
    for (;;) {
        size_t key = pos + 1, klen, v, dlen;
        struct mime cm;
        int64_t n;
        bool esc;

        pos = gr_json_string(s, sc->len, pos, &dlen, &esc);
        if (pos == GR_JSON_BAD || esc)
            return GR_JSON_BAD;
        klen = pos - 1 - key;
        if (key_again(&ks, s, key, klen))
            return GR_JSON_BAD;
        pos = gr_json_ws(s, sc->len, pos);
        if (pos >= sc->len || s[pos] != ':')
            return GR_JSON_BAD;
        v = gr_json_ws(s, sc->len, pos + 1);
        if (v >= sc->len)
            return GR_JSON_BAD;
        switch (s[v]) {
        case '[':
            pos = scan_array(sc, v, is_key(s, key, klen, "parts"),
                             depth + 1, &n);
            if (depth == 0 && is_key(s, key, klen, "requests"))
                sc->e->requests = n;
            break;
        case '{':
            pos = scan_object(sc, v, false, depth + 1, &cm);
            if (is_key(s, key, klen, "inlineData")) {
                have_camel = true;
                camel = cm;
            } else if (is_key(s, key, klen, "inline_data")) {
                have_snake = true;
                snake = cm;
            }
            break;
        case '"':
            pos = gr_json_string(s, sc->len, v, &dlen, &esc);
            if (pos == GR_JSON_BAD)
                return GR_JSON_BAD;
            if (is_key(s, key, klen, "text")) {
                have_text = true;
                text_len = dlen;
            } else if (is_key(s, key, klen, "mimeType")) {
                if (esc)
                    return GR_JSON_BAD;
                m->camel = mime_is_image(s, v, dlen);
            } else if (is_key(s, key, klen, "mime_type")) {
                if (esc)
                    return GR_JSON_BAD;
                m->snake = mime_is_image(s, v, dlen);
            }
            break;
        default:
            pos = gr_json_value(s, sc->len, v, depth + 1);
            break;
        }
        if (pos == GR_JSON_BAD)
            return GR_JSON_BAD;
        pos = gr_json_ws(s, sc->len, pos);
        if (pos >= sc->len)
            return GR_JSON_BAD;
        if (s[pos] == '}')
            break;
        if (s[pos] != ',')
            return GR_JSON_BAD;
        pos = gr_json_ws(s, sc->len, pos + 1);
    }
done:
    if (is_part) {
        const struct mime *d = have_camel ? &camel
                               : have_snake ? &snake : NULL;

        if (have_text)
            sc->e->text_bytes += (int64_t)text_len;
        if (d != NULL && (d->camel >= 0 ? d->camel : d->snake) == 1)
            sc->e->images++;
    }
    return pos + 1;
}

int
gr_est_scan(const char *body, size_t len, struct gr_est *e)
{
    struct scan sc = {body, len, e};
    struct mime m;
    int64_t n;
    size_t pos;

    memset(e, 0, sizeof(*e));
    pos = gr_json_ws(body, len, 0);
    if (pos >= len)
        return -1;
    if (body[pos] == '{')
        pos = scan_object(&sc, pos, false, 0, &m);
    else if (body[pos] == '[')
        pos = scan_array(&sc, pos, false, 0, &n);
    else
        return -1;      /* no parts either way; json-c decides */
    if (pos == GR_JSON_BAD || gr_json_ws(body, len, pos) != len)
        return -1;
    return 0;
}

void
gr_est_read(const char *body, size_t len, struct gr_est *e)
{
    if (gr_est_scan(body, len, e) != 0)
        gr_est_tree(body, len, e);
}

/* ---- images a request asks to generate (IPM) -------------------------- */

#define IMAGEN_DEFAULT_SAMPLES 4    /* Imagen's numberOfImages default */
#define IMAGES_MAX 1000             /* a count beyond this is nonsense */

/* A count member: a positive integer (json-c's int), else dflt. */
static int64_t
count_of(struct json_object *o, const char *camel, const char *snake,
         int64_t dflt)
{
    struct json_object *v = gr_json_member2(o, camel, snake, GR_JSON_INT);
    int64_t n = v != NULL ? json_object_get_int64(v) : dflt;

    return n < 1 ? dflt : n > IMAGES_MAX ? IMAGES_MAX : n;
}

/* Whether a responseModalities array holds "IMAGE" (any case). */
static bool
asks_image(struct json_object *gc)
{
    struct json_object *mods = gr_json_member2(gc, "responseModalities",
                                               "response_modalities",
                                               GR_JSON_ARRAY);
    size_t i, n = mods != NULL ? json_object_array_length(mods) : 0;

    for (i = 0; i < n; i++) {
        struct json_object *m = json_object_array_get_idx(mods, i);

        if (json_object_is_type(m, json_type_string) &&
            strcasecmp(json_object_get_string(m), "IMAGE") == 0)
            return true;
    }
    return false;
}

int64_t
gr_est_images_out(const char *body, size_t len)
{
    static const char *const words[] = {
        "responseModalities", "response_modalities", "instances",
    };
    struct json_object *root, *gc, *params;
    int64_t n = 0;
    size_t i;

    if (body == NULL || len == 0 || len > (size_t)INT32_MAX)
        return 0;
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (memmem(body, len, words[i], strlen(words[i])) != NULL)
            break;
    if (i == sizeof(words) / sizeof(words[0]))
        return 0;                   /* the usual body: no parse */
    root = gr_json_parse(body, len, 0, 0, NULL);
    gc = gr_json_member2(root, "generationConfig", "generation_config",
                         GR_JSON_OBJECT);
    if (gc != NULL && asks_image(gc))
        n = count_of(gc, "candidateCount", "candidate_count", 1);
    else if (gr_json_member(root, "instances", GR_JSON_ARRAY) != NULL) {
        params = gr_json_member(root, "parameters", GR_JSON_OBJECT);
        n = count_of(params, "sampleCount", "sample_count",
                     IMAGEN_DEFAULT_SAMPLES);
    }
    json_object_put(root);
    return n;
}
