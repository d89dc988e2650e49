/*
 * estimate.c - what a request says about its own cost before it is sent:
 * the decoded bytes of the text of every part, the inline media (their
 * sizes read from their headers by media.c), the file parts, the
 * media_resolution asked, the entries of a batch (docs/CLIENT.md, "The
 * cost estimate" and "Media tokens").
 *
 * Two readers give the same answer.  The tree walk over json-c is the
 * reference; the scanner walk reads the bytes once without allocating,
 * and is in doubt (so the tree walk decides) wherever json-c might see
 * something else: anything json_scan.c refuses, a key with an escape, a
 * key twice in one object (json-c keeps the last value), an escaped
 * mimeType, data or media_resolution that the estimate reads.
 * Invariant protected: for every body, gr_est_read() equals
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

/* ---- what both readers add up ---------------------------------------- */

#define QTY_SUM_MAX (INT64_C(1) << 50)  /* a sum beyond: nonsense, kept */

/* *sum += v, saturated: a hostile body's headers may claim anything. */
static void
sat_add(int64_t *sum, int64_t v)
{
    if (v < 0)
        v = 0;
    *sum = v >= QTY_SUM_MAX - *sum ? QTY_SUM_MAX : *sum + v;
}

/*
 * One inline part: its mimeType (NULL: none), its base64 data (NULL:
 * none) and its own media_resolution.  Counts an image as before (IPM
 * callers read e->images), and the media's size by kind and level.
 */
static void
add_inline(struct gr_est *e, const char *mt, size_t mtlen, const char *data,
           size_t dlen, enum gr_media_level lvl)
{
    enum gr_media_kind kind = mt != NULL ? gr_media_kind_of(mt, mtlen)
                                         : GR_MEDIA_NONE;
    struct gr_media_info mi;

    if (kind == GR_MEDIA_NONE)
        return;
    if (kind == GR_MEDIA_IMAGE)
        e->images++;
    if (data == NULL || gr_media_read_b64(data, dlen, kind, &mi) != 0) {
        e->unread++;
        return;
    }
    switch (kind) {
    case GR_MEDIA_IMAGE:
        e->qty[kind][lvl]++;
        if (lvl == GR_LEVEL_UNSET)
            sat_add(&e->tiles, gr_media_tiles(mi.w, mi.h));
        break;
    case GR_MEDIA_PDF:
        sat_add(&e->qty[kind][lvl], mi.pages);
        break;
    default:
        sat_add(&e->qty[kind][lvl], mi.ms);
        break;
    }
}

#define TOKENS_MAX (INT64_C(1) << 53)   /* far above any window */

int64_t
gr_est_tokens(const struct gr_est *e, const char *model)
{
    int g3 = gr_media_g3(model);
    int64_t t = e->text_bytes > 0 ? (e->text_bytes + 3) / 4 : 0;
    int k, l;

    for (k = GR_MEDIA_IMAGE; k < GR_MEDIA_NKINDS; k++) {
        for (l = 0; l < GR_NLEVELS; l++) {
            int64_t q = e->qty[k][l];
            enum gr_media_level at = l != GR_LEVEL_UNSET
                                         ? (enum gr_media_level)l
                                         : (enum gr_media_level)e->level;

            if (q <= 0)
                continue;
            if (k == GR_MEDIA_IMAGE && !g3 && at == GR_LEVEL_UNSET)
                t += gr_media_tokens(GR_MEDIA_IMAGE, at, 0, 1, 1) *
                     (e->tiles < TOKENS_MAX ? e->tiles : TOKENS_MAX);
            else if (k == GR_MEDIA_IMAGE)
                t += gr_media_tokens(GR_MEDIA_IMAGE, at, g3, 1, 1) *
                     (q < TOKENS_MAX ? q : TOKENS_MAX);
            else
                t += gr_media_tokens((enum gr_media_kind)k, at, g3, q, 0);
            if (t > TOKENS_MAX)
                t = TOKENS_MAX;
        }
    }
    t += gr_media_tokens(GR_MEDIA_IMAGE, GR_LEVEL_UNSET, 0, 1, 1) *
         (e->unread < TOKENS_MAX / 512 ? e->unread : TOKENS_MAX / 512);
    return t > TOKENS_MAX ? TOKENS_MAX : t;
}

int
gr_est_any(const struct gr_est *e)
{
    int k, l;

    if (e->text_bytes > 0 || e->images > 0 || e->unread > 0 ||
        e->files > 0)
        return 1;
    for (k = 0; k < GR_MEDIA_NKINDS; k++)
        for (l = 0; l < GR_NLEVELS; l++)
            if (e->qty[k][l] > 0)
                return 1;
    return 0;
}

static enum gr_media_level
level_str(struct json_object *s)
{
    return s == NULL ? GR_LEVEL_UNSET
                     : gr_media_level_of(json_object_get_string(s),
                                         (size_t)json_object_get_string_len(s));
}

/* ---- the reference: json-c's tree ------------------------------------- */

/* A part's own media_resolution: an object's "level", else a string. */
static enum gr_media_level
part_level(struct json_object *o)
{
    struct json_object *r = gr_json_member2(o, "mediaResolution",
                                            "media_resolution",
                                            GR_JSON_OBJECT);

    if (r != NULL)
        return level_str(gr_json_member(r, "level", GR_JSON_STRING));
    return level_str(gr_json_member2(o, "mediaResolution",
                                     "media_resolution", GR_JSON_STRING));
}

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
            struct json_object *data = gr_json_member(d, "data",
                                                      GR_JSON_STRING);

            add_inline(e, mt != NULL ? json_object_get_string(mt) : NULL,
                       mt != NULL ? (size_t)json_object_get_string_len(mt)
                                  : 0,
                       data != NULL ? json_object_get_string(data) : NULL,
                       data != NULL
                           ? (size_t)json_object_get_string_len(data) : 0,
                       part_level(o));
        }
        if (gr_json_member2(o, "fileData", "file_data",
                            GR_JSON_OBJECT) != NULL)
            e->files++;
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
    struct json_object *root, *r, *gc;

    memset(e, 0, sizeof(*e));
    if ((root = gr_json_parse(body, len, 0, 0, NULL)) == NULL)
        return;
    walk(root, false, e, 0);
    gc = gr_json_member2(root, "generationConfig", "generation_config",
                         GR_JSON_OBJECT);
    e->level = (int)level_str(gr_json_member2(gc, "mediaResolution",
                                              "media_resolution",
                                              GR_JSON_STRING));
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

/* A string member's raw bytes (between its quotes), when it is one. */
struct span {
    size_t off, len;
    bool set, esc;
};

/*
 * What an object tells the object holding it: its string members the
 * estimate reads (a part's inlineData: mimeType, mime_type, data; a
 * media_resolution object: level; generationConfig: mediaResolution,
 * media_resolution), and which of its members are objects that matter
 * (inlineData, fileData, mediaResolution, generationConfig, both
 * spellings), with what those told.  Escaped strings are kept, marked:
 * they are doubt only where they are read.
 */
struct info {
    struct span mime_c, mime_s, data, level, res_c, res_s;
};

struct objs {
    bool in_c, in_s, file, rlev_c, rlev_s, gc_c, gc_s;
    struct info inl_c, inl_s, gcc, gcs;
    struct span lev_c, lev_s;
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
                          unsigned depth, struct info *m);

/* The array at pos; *count gets its number of entries. */
static size_t
scan_array(struct scan *sc, size_t pos, bool is_part, unsigned depth,
           int64_t *count)
{
    const char *s = sc->s;
    struct info m;

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

/* The level a span names; -1 (doubt) when it has an escape. */
static int
span_level(const struct scan *sc, const struct span *sp)
{
    if (!sp->set)
        return GR_LEVEL_UNSET;
    if (sp->esc)
        return -1;
    return (int)gr_media_level_of(sc->s + sp->off, sp->len);
}

/* What a finished part adds, as walk() counts it; -1 in doubt. */
static int
end_part(struct scan *sc, const struct objs *ob, bool have_text,
         size_t text_len)
{
    const struct info *d = ob->in_c ? &ob->inl_c
                           : ob->in_s ? &ob->inl_s : NULL;
    int lvl;

    if (have_text)
        sc->e->text_bytes += (int64_t)text_len;
    if (ob->file)
        sc->e->files++;
    if (d == NULL)
        return 0;
    if (ob->rlev_c || ob->rlev_s)
        lvl = span_level(sc, ob->rlev_c ? &ob->lev_c : &ob->lev_s);
    else
        lvl = span_level(sc, ob->lev_c.set ? &ob->lev_c : &ob->lev_s);
    if (lvl < 0)
        return -1;
    {
        const struct span *mt = d->mime_c.set ? &d->mime_c
                                : d->mime_s.set ? &d->mime_s : NULL;

        if ((mt != NULL && mt->esc) || (d->data.set && d->data.esc))
            return -1;
        add_inline(sc->e, mt != NULL ? sc->s + mt->off : NULL,
                   mt != NULL ? mt->len : 0,
                   d->data.set ? sc->s + d->data.off : NULL,
                   d->data.set ? d->data.len : 0, (enum gr_media_level)lvl);
    }
    return 0;
}

/* The request's generationConfig.mediaResolution; -1 in doubt. */
static int
end_top(struct scan *sc, const struct objs *ob)
{
    const struct info *gc = ob->gc_c ? &ob->gcc : ob->gc_s ? &ob->gcs : NULL;
    int lvl;

    if (gc == NULL)
        return 0;
    lvl = span_level(sc, gc->res_c.set ? &gc->res_c : &gc->res_s);
    if (lvl < 0)
        return -1;
    sc->e->level = lvl;
    return 0;
}

/*
 * The object at pos.  Counts itself when it is a part, as walk() does:
 * its "text" string, its inlineData object (else its inline_data object)
 * by its mimeType string (else its mime_type string), data and the
 * part's media_resolution, and a fileData (file_data) object.  The top
 * object (depth 0) also gives the request's media_resolution.
 */
static size_t
scan_object(struct scan *sc, size_t pos, bool is_part, unsigned depth,
            struct info *m)
{
    const char *s = sc->s;
    struct keyset ks;
    struct objs ob;
    bool have_text = false;
    size_t text_len = 0;

    memset(m, 0, sizeof(*m));
    memset(&ob, 0, sizeof(ob));
    if (depth > GR_JSON_DEPTH)
        return GR_JSON_BAD;
    ks.bloom = 0;
    ks.n = 0;
    pos = gr_json_ws(s, sc->len, pos + 1);
    if (pos < sc->len && s[pos] == '}')
        goto done;
    for (;;) {
        size_t key = pos + 1, klen, v, dlen;
        struct info cm;
        struct span sp;
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
                ob.in_c = true;
                ob.inl_c = cm;
            } else if (is_key(s, key, klen, "inline_data")) {
                ob.in_s = true;
                ob.inl_s = cm;
            } else if (is_key(s, key, klen, "fileData") ||
                       is_key(s, key, klen, "file_data")) {
                ob.file = true;
            } else if (is_key(s, key, klen, "mediaResolution")) {
                ob.rlev_c = true;
                ob.lev_c = cm.level;
            } else if (is_key(s, key, klen, "media_resolution")) {
                ob.rlev_s = true;
                ob.lev_s = cm.level;
            } else if (is_key(s, key, klen, "generationConfig")) {
                ob.gc_c = true;
                ob.gcc = cm;
            } else if (is_key(s, key, klen, "generation_config")) {
                ob.gc_s = true;
                ob.gcs = cm;
            }
            break;
        case '"':
            pos = gr_json_string(s, sc->len, v, &dlen, &esc);
            if (pos == GR_JSON_BAD)
                return GR_JSON_BAD;
            sp.off = v + 1;
            sp.len = pos - 1 - (v + 1);
            sp.set = true;
            sp.esc = esc;
            if (is_key(s, key, klen, "text")) {
                have_text = true;
                text_len = dlen;
            } else if (is_key(s, key, klen, "mimeType")) {
                m->mime_c = sp;
            } else if (is_key(s, key, klen, "mime_type")) {
                m->mime_s = sp;
            } else if (is_key(s, key, klen, "data")) {
                m->data = sp;
            } else if (is_key(s, key, klen, "level")) {
                m->level = sp;
            } else if (is_key(s, key, klen, "mediaResolution")) {
                m->res_c = sp;
            } else if (is_key(s, key, klen, "media_resolution")) {
                m->res_s = sp;
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
    /* A part's own level as a string: its mediaResolution string members
     * (read only when no mediaResolution object was there). */
    ob.lev_c = ob.rlev_c ? ob.lev_c : m->res_c;
    ob.lev_s = ob.rlev_s ? ob.lev_s : m->res_s;
    if (is_part && end_part(sc, &ob, have_text, text_len) != 0)
        return GR_JSON_BAD;
    if (depth == 0 && end_top(sc, &ob) != 0)
        return GR_JSON_BAD;
    return pos + 1;
}

int
gr_est_scan(const char *body, size_t len, struct gr_est *e)
{
    struct scan sc = {body, len, e};
    struct info m;
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
