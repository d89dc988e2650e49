/*
 * media.c - the mock counts media tokens as Google's token guide says
 * (docs/MOCK.md, "Media tokens"): it decodes each inline part whole (it
 * is the server: it has the bytes) and reads the image's pixel size, the
 * PDF's pages, the audio's or video's duration, then applies the
 * documented per-item rules at the part's or the request's
 * media_resolution.  Written apart from client/media.c on purpose: the
 * client reads a few header bytes of the base64 text, the mock the whole
 * decoded file, so a benchmark of one against the other measures what
 * the client's shortcuts lose.
 *
 * Invariant protected: every read is inside the decoded buffer; a part
 * the mock cannot read costs GR_MOCK_MEDIA_UNKNOWN, never a crash.
 */
#include "media.h"

#include <json.h>

#include <stdlib.h>
#include <string.h>

#define TILE 258
#define UNKNOWN GR_MOCK_MEDIA_UNKNOWN

/* ---- decoding --------------------------------------------------------- */

static int
b64v(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* The bytes of a base64 string (malloc'd), or NULL. */
static unsigned char *
decode(const char *s, size_t n, size_t *out)
{
    unsigned char *b = malloc(n / 4 * 3 + 3);
    uint32_t acc = 0;
    size_t i, o = 0;
    int bits = 0;

    if (b == NULL)
        return NULL;
    for (i = 0; i < n && s[i] != '='; i++) {
        int v = b64v((unsigned char)s[i]);

        if (v < 0) {
            free(b);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b[o++] = (unsigned char)(acc >> bits);
        }
    }
    *out = o;
    return b;
}

static uint32_t
get_be(const unsigned char *p, int n)
{
    uint32_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t
get_le(const unsigned char *p, int n)
{
    uint32_t v = 0;
    int i;

    for (i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* ---- sizes ------------------------------------------------------------ */

static int
image_size(const unsigned char *b, size_t n, uint32_t *w, uint32_t *h)
{
    size_t i;

    if (n >= 24 && memcmp(b, "\x89PNG", 4) == 0) {
        *w = get_be(b + 16, 4);
        *h = get_be(b + 20, 4);
    } else if (n >= 10 && memcmp(b, "GIF8", 4) == 0) {
        *w = get_le(b + 6, 2);
        *h = get_le(b + 8, 2);
    } else if (n >= 30 && memcmp(b, "RIFF", 4) == 0 &&
               memcmp(b + 8, "WEBPVP8", 7) == 0) {
        if (b[15] == ' ') {
            *w = get_le(b + 26, 2) & 0x3fff;
            *h = get_le(b + 28, 2) & 0x3fff;
        } else if (b[15] == 'L') {
            uint32_t bits = get_le(b + 21, 4);

            *w = (bits & 0x3fff) + 1;
            *h = (bits >> 14 & 0x3fff) + 1;
        } else if (b[15] == 'X') {
            *w = get_le(b + 24, 3) + 1;
            *h = get_le(b + 27, 3) + 1;
        } else {
            return -1;
        }
    } else if (n >= 4 && b[0] == 0xff && b[1] == 0xd8) {
        /* every segment to the first SOF, however many */
        for (i = 2; i + 9 <= n;) {
            unsigned m;

            if (b[i] != 0xff)
                return -1;
            m = b[i + 1];
            if (m == 0xff) {
                i++;
            } else if (m == 0x01 || (m >= 0xd0 && m <= 0xd8)) {
                i += 2;
            } else if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 &&
                       m != 0xcc) {
                *h = get_be(b + i + 5, 2);
                *w = get_be(b + i + 7, 2);
                return *w > 0 && *h > 0 ? 0 : -1;
            } else if (m == 0xd9 || m == 0xda) {
                return -1;
            } else {
                i += 2 + get_be(b + i + 2, 2);
            }
        }
        return -1;
    } else {
        return -1;
    }
    return *w > 0 && *h > 0 ? 0 : -1;
}

/* "/Type /Page" dictionaries, the whole file. */
static int64_t
pdf_pages(const unsigned char *b, size_t n)
{
    int64_t pages = 0;
    size_t i, j;

    if (n < 5 || memcmp(b, "%PDF-", 5) != 0)
        return -1;
    for (i = 0; i + 5 <= n; i++) {
        if (memcmp(b + i, "/Type", 5) != 0)
            continue;
        for (j = i + 5; j < n && strchr(" \t\r\n\f", b[j]) && b[j]; j++)
            ;
        if (j + 6 <= n && memcmp(b + j, "/Page", 5) == 0 &&
            !((b[j + 5] >= 'a' && b[j + 5] <= 'z') ||
              (b[j + 5] >= 'A' && b[j + 5] <= 'Z') ||
              (b[j + 5] >= '0' && b[j + 5] <= '9')))
            pages++;
    }
    return pages > 0 ? pages : -1;
}

/* Milliseconds of a WAV, an MP4 (moov/mvhd) or a CBR or Xing MP3. */
static int64_t
duration_ms(const unsigned char *b, size_t n)
{
    size_t i;

    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WAVE", 4) == 0) {
        uint32_t rate = 0;

        for (i = 12; i + 8 <= n;) {
            uint32_t sz = get_le(b + i + 4, 4);

            if (memcmp(b + i, "fmt ", 4) == 0 && i + 24 <= n)
                rate = get_le(b + i + 16, 4);
            if (memcmp(b + i, "data", 4) == 0) {
                size_t have = n - (i + 8);

                if (rate == 0)
                    return -1;
                if (sz == 0 || sz > have)
                    sz = (uint32_t)have;
                return (int64_t)((uint64_t)sz * 1000 / rate);
            }
            if (sz > n)
                return -1;
            i += 8 + (size_t)sz + (sz & 1);
        }
        return -1;
    }
    /* MP4: find "mvhd" inside "moov" by walking the boxes. */
    for (i = 0; i + 8 <= n;) {
        uint64_t sz = get_be(b + i, 4);
        size_t hdr = 8;

        if (sz == 1 && i + 16 <= n) {
            sz = (uint64_t)get_be(b + i + 8, 4) << 32 | get_be(b + i + 12, 4);
            hdr = 16;
        } else if (sz == 0) {
            sz = n - i;
        }
        if (sz < hdr || sz > n - i)
            break;
        if (memcmp(b + i + 4, "moov", 4) == 0) {
            size_t j, end = i + (size_t)sz;

            for (j = i + hdr; j + 8 <= end;) {
                uint32_t csz = get_be(b + j, 4);

                if (csz < 8 || csz > end - j)
                    return -1;
                if (memcmp(b + j + 4, "mvhd", 4) == 0) {
                    const unsigned char *p = b + j + 8;
                    uint64_t scale, dur;

                    if (p[0] == 1 && j + 8 + 32 <= end) {
                        scale = get_be(p + 20, 4);
                        dur = (uint64_t)get_be(p + 24, 4) << 32 |
                              get_be(p + 28, 4);
                    } else if (j + 8 + 20 <= end) {
                        scale = get_be(p + 12, 4);
                        dur = get_be(p + 16, 4);
                    } else {
                        return -1;
                    }
                    if (scale == 0 || dur / scale > INT64_MAX / 2000)
                        return -1;
                    return (int64_t)(dur * 1000.0 / scale);
                }
                j += csz;
            }
            return -1;
        }
        i += (size_t)sz;
    }
    /* MP3 */
    i = 0;
    if (n >= 10 && memcmp(b, "ID3", 3) == 0)
        i = 10 + ((size_t)(b[6] & 0x7f) << 21 | (size_t)(b[7] & 0x7f) << 14 |
                  (size_t)(b[8] & 0x7f) << 7 | (b[9] & 0x7f)) +
            (b[5] & 0x10 ? 10 : 0);
    if (i + 4 <= n && b[i] == 0xff && (b[i + 1] & 0xe6) == 0xe2) {
        static const int k1[] = {0, 32, 40, 48, 56, 64, 80, 96, 112, 128,
                                 160, 192, 224, 256, 320, 0};
        static const int k2[] = {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96,
                                 112, 128, 144, 160, 0};
        int ver = b[i + 1] >> 3 & 3, mono = (b[i + 2 + 1] >> 6) == 3;
        int kbps = (ver == 3 ? k1 : k2)[b[i + 2] >> 4];
        int sr = (int[]){44100, 48000, 32000, 0}[b[i + 2] >> 2 & 3];
        size_t x = i + 4 + (ver == 3 ? (mono ? 17 : 32) : (mono ? 9 : 17));

        if (ver == 1 || kbps == 0 || sr == 0)
            return -1;
        sr >>= ver == 3 ? 0 : ver == 2 ? 1 : 2;
        if (x + 12 <= n && (memcmp(b + x, "Xing", 4) == 0 ||
                            memcmp(b + x, "Info", 4) == 0) &&
            (b[x + 7] & 1))
            return (int64_t)((uint64_t)get_be(b + x + 8, 4) *
                             (ver == 3 ? 1152 : 576) * 1000 / (uint64_t)sr);
        return (int64_t)((uint64_t)(n - i) * 8 / (uint64_t)kbps);
    }
    return -1;
}

/* ---- the rules -------------------------------------------------------- */

/* 0 unset, 1 low, 2 medium, 3 high, 4 ultra high. */
static int
level_of(const char *s)
{
    static const char *const w[] = {"low", "medium", "high", "ultra_high"};
    int i;

    if (s == NULL)
        return 0;
    if (strncasecmp(s, "MEDIA_RESOLUTION_", 17) == 0)
        s += 17;
    for (i = 0; i < 4; i++)
        if (strcasecmp(s, w[i]) == 0)
            return i + 1;
    return 0;
}

static struct json_object *
mem(struct json_object *o, const char *a, const char *b, json_type t)
{
    struct json_object *v = NULL;

    if (o != NULL && json_object_object_get_ex(o, a, &v) &&
        json_object_is_type(v, t))
        return v;
    if (o != NULL && b != NULL && json_object_object_get_ex(o, b, &v) &&
        json_object_is_type(v, t))
        return v;
    return NULL;
}

static const char *
str(struct json_object *o)
{
    return o != NULL ? json_object_get_string(o) : NULL;
}

/* Tokens of one item, as client/media.c's table (docs/CLIENT.md). */
static int64_t
rule(char kind, int lvl, int g3, uint32_t w, uint32_t h, int64_t qty)
{
    static const int64_t g3_img[] = {1120, 280, 560, 1120, 2240};
    static const int64_t g3_pdf[] = {560, 280, 560, 1120, 1120};
    static const int64_t g3_frame[] = {70, 70, 70, 280, 280};
    static const int64_t old[] = {0, 64, 256, 256, 256};
    int64_t per_s;

    if (qty > INT64_C(1000000000000))
        qty = INT64_C(1000000000000);   /* ms or pages: beyond, nonsense */
    switch (kind) {
    case 'i':
        if (g3)
            return g3_img[lvl];
        if (lvl == 0) {
            uint64_t u = (w < h ? w : h) * 2ull / 3;

            if (w <= 384 && h <= 384)
                return TILE;
            u = u < 256 ? 256 : u > 768 ? 768 : u;
            return TILE * (int64_t)(((w + u - 1) / u) * ((h + u - 1) / u));
        }
        return old[lvl];
    case 'p':
        return (g3 ? g3_pdf[lvl] : lvl == 0 ? TILE : old[lvl]) * qty;
    case 'v':
        per_s = g3 ? g3_frame[lvl] + 32 : lvl == 0 ? 263 : old[lvl] + 32;
        return (qty * per_s + 999) / 1000;
    default:
        return (qty * 32 + 999) / 1000;
    }
}

/* One inline part: its tokens, or UNKNOWN when they cannot be read. */
static int64_t
inline_part(struct json_object *d, int lvl, int g3)
{
    const char *mt = str(mem(d, "mimeType", "mime_type", json_type_string));
    struct json_object *data = mem(d, "data", NULL, json_type_string);
    unsigned char *b;
    size_t n = 0;
    uint32_t w = 0, h = 0;
    int64_t v = -1, t = UNKNOWN;
    char kind;

    if (mt == NULL)
        return 0;
    if (strncmp(mt, "image/", 6) == 0)
        kind = 'i';
    else if (strcmp(mt, "application/pdf") == 0)
        kind = 'p';
    else if (strncmp(mt, "video/", 6) == 0)
        kind = 'v';
    else if (strncmp(mt, "audio/", 6) == 0)
        kind = 'a';
    else
        return 0;
    if (data == NULL ||
        (b = decode(json_object_get_string(data),
                    (size_t)json_object_get_string_len(data), &n)) == NULL)
        return UNKNOWN;
    if (kind == 'i' && image_size(b, n, &w, &h) == 0)
        t = rule(kind, lvl, g3, w, h, 1);
    else if (kind == 'p' && (v = pdf_pages(b, n)) > 0)
        t = rule(kind, lvl, g3, 0, 0, v);
    else if ((kind == 'v' || kind == 'a') && (v = duration_ms(b, n)) >= 0)
        t = rule(kind, lvl, g3, 0, 0, v);
    free(b);
    return t;
}

int64_t
gr_mock_media_tokens(const char *body, size_t len, const char *model)
{
    struct json_tokener *tok = json_tokener_new_ex(64);
    struct json_object *root, *req, *contents, *gc;
    int g3, glvl;
    int64_t t = 0;
    size_t i, j;

    if (tok == NULL)
        return 0;
    root = json_tokener_parse_ex(tok, body, (int)len);
    json_tokener_free(tok);
    if (model != NULL && strncmp(model, "models/", 7) == 0)
        model += 7;
    g3 = model != NULL && strncmp(model, "gemini-3", 8) == 0;
    req = mem(root, "generateContentRequest", "generate_content_request",
              json_type_object);
    if (req == NULL)
        req = root;
    gc = mem(req, "generationConfig", "generation_config", json_type_object);
    glvl = level_of(str(mem(gc, "mediaResolution", "media_resolution",
                            json_type_string)));
    contents = mem(req, "contents", NULL, json_type_array);
    for (i = 0; contents != NULL && i < json_object_array_length(contents);
         i++) {
        struct json_object *parts =
            mem(json_object_array_get_idx(contents, i), "parts", NULL,
                json_type_array);

        for (j = 0; parts != NULL && j < json_object_array_length(parts);
             j++) {
            struct json_object *p = json_object_array_get_idx(parts, j);
            struct json_object *r, *d;
            int lvl;

            r = mem(p, "mediaResolution", "media_resolution",
                    json_type_object);
            lvl = r != NULL ? level_of(str(mem(r, "level", NULL,
                                               json_type_string)))
                            : level_of(str(mem(p, "mediaResolution",
                                               "media_resolution",
                                               json_type_string)));
            if (lvl == 0)
                lvl = glvl;
            if ((d = mem(p, "inlineData", "inline_data",
                         json_type_object)) != NULL)
                t += inline_part(d, lvl, g3);
            if (mem(p, "fileData", "file_data", json_type_object) != NULL)
                t += GR_MOCK_MEDIA_FILE;
            if (t > (INT64_C(1) << 53))
                t = INT64_C(1) << 53;   /* headers that claim years */
        }
    }
    json_object_put(root);
    return t;
}
