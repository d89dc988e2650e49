/*
 * media.c - the size of an inline media part from its header bytes, and
 * the tokens Google's token guide gives for it (media_priv.h; the rules
 * and their sources are in docs/CLIENT.md, "Media tokens").
 *
 * The data arrives as base64 inside the request's JSON.  Base64 maps
 * every 4 characters to 3 bytes, so byte i can be decoded alone from
 * characters 4*(i/3) .. 4*(i/3)+3: a reader jumps over a JPEG's EXIF or
 * an MP4's mdat without decoding it.  Only a PDF is read further (its
 * page objects are anywhere), up to GR_MEDIA_PDF_SCAN bytes.
 *
 * Invariant protected: no read outside the data (every read goes
 * through rd(), which checks offset and length against the decoded
 * size, in 64 bits), and every loop is bounded by a constant, whatever
 * the bytes say.
 */
#include "media_priv.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* ---- reading bytes ---------------------------------------------------- */

struct src {
    const unsigned char *raw;   /* raw bytes, or NULL: base64 in b64 */
    const char *b64;
    size_t m;                   /* base64 characters without padding */
    uint64_t size;              /* decoded bytes */
};

/* Each base64 character's value + 1 (both alphabets); 0: not base64. */
static const unsigned char b64v1[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
    ['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
    ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
    ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
    ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
    ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
    ['8'] = 61, ['9'] = 62, ['+'] = 63, ['-'] = 63, ['/'] = 64, ['_'] = 64,
};

/* The three bytes of base64 quad q (those past the end are zeros). */
static int
quad(const struct src *s, uint64_t q, unsigned char out[3])
{
    const unsigned char *c = (const unsigned char *)s->b64 + q * 4;
    uint32_t v = 0;
    unsigned i;

    if (q * 4 + 4 <= s->m) {        /* the usual case: a whole quad */
        unsigned a = b64v1[c[0]], b = b64v1[c[1]], d = b64v1[c[2]],
                 e = b64v1[c[3]];

        if (a == 0 || b == 0 || d == 0 || e == 0)
            return -1;
        v = (a - 1) << 18 | (b - 1) << 12 | (d - 1) << 6 | (e - 1);
    } else {
        for (i = 0; i < 4; i++) {
            unsigned d = 1;

            if (q * 4 + i < s->m && (d = b64v1[c[i]]) == 0)
                return -1;
            v = v << 6 | (d - 1);
        }
    }
    out[0] = (unsigned char)(v >> 16);
    out[1] = (unsigned char)(v >> 8);
    out[2] = (unsigned char)v;
    return 0;
}

/* Bytes off .. off+len of the data into buf: 0, or -1 (outside, or not
 * base64). */
static int
rd(const struct src *s, uint64_t off, void *buf, size_t len)
{
    unsigned char *b = buf, q3[3];
    uint64_t q;
    size_t i = 0, j;

    if (off > s->size || len > s->size - off)
        return -1;
    if (s->raw != NULL) {
        memcpy(b, s->raw + off, len);
        return 0;
    }
    for (q = off / 3, j = off % 3; i < len; q++, j = 0) {
        if (quad(s, q, q3) != 0)
            return -1;
        for (; j < 3 && i < len; j++)
            b[i++] = q3[j];
    }
    return 0;
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
be64(const unsigned char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint32_t
le32(const unsigned char *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
           (uint32_t)p[1] << 8 | p[0];
}

static unsigned
be16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static unsigned
le16(const unsigned char *p)
{
    return (unsigned)p[1] << 8 | p[0];
}

/* ---- images ----------------------------------------------------------- */

static int
png(const struct src *s, struct gr_media_info *o)
{
    unsigned char h[24];

    if (rd(s, 0, h, sizeof(h)) != 0 ||
        memcmp(h, "\x89PNG\r\n\x1a\n", 8) != 0 || memcmp(h + 12, "IHDR", 4))
        return -1;
    o->w = be32(h + 16);
    o->h = be32(h + 20);
    return 0;
}

static int
gif(const struct src *s, struct gr_media_info *o)
{
    unsigned char h[10];

    if (rd(s, 0, h, sizeof(h)) != 0 ||
        (memcmp(h, "GIF87a", 6) != 0 && memcmp(h, "GIF89a", 6) != 0))
        return -1;
    o->w = le16(h + 6);
    o->h = le16(h + 8);
    return 0;
}

/* RIFF WEBP: the first chunk is VP8 (lossy), VP8L (lossless) or VP8X. */
static int
webp(const struct src *s, struct gr_media_info *o)
{
    unsigned char h[30];

    if (rd(s, 0, h, sizeof(h)) != 0 || memcmp(h, "RIFF", 4) != 0 ||
        memcmp(h + 8, "WEBP", 4) != 0)
        return -1;
    if (memcmp(h + 12, "VP8 ", 4) == 0) {
        if (memcmp(h + 23, "\x9d\x01\x2a", 3) != 0)
            return -1;
        o->w = le16(h + 26) & 0x3fff;
        o->h = le16(h + 28) & 0x3fff;
    } else if (memcmp(h + 12, "VP8L", 4) == 0) {
        if (h[20] != 0x2f)
            return -1;
        o->w = 1 + (h[21] | (uint32_t)(h[22] & 0x3f) << 8);
        o->h = 1 + (h[22] >> 6 | (uint32_t)h[23] << 2 |
                    (uint32_t)(h[24] & 0x0f) << 10);
    } else if (memcmp(h + 12, "VP8X", 4) == 0) {
        o->w = 1 + (h[24] | (uint32_t)h[25] << 8 | (uint32_t)h[26] << 16);
        o->h = 1 + (h[27] | (uint32_t)h[28] << 8 | (uint32_t)h[29] << 16);
    } else {
        return -1;
    }
    return 0;
}

/* A start-of-frame marker (SOF0..SOF15 but DHT, JPG and DAC). */
static bool
is_sof(unsigned m)
{
    return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

/*
 * JPEG: walk the segments from SOI to the first SOF, jumping over each
 * by its length (EXIF, ICC profiles, thumbnails are never decoded), at
 * most GR_MEDIA_JPEG_MARKERS of them.
 */
static int
jpeg(const struct src *s, struct gr_media_info *o)
{
    unsigned char b[9];
    uint64_t off = 2;
    unsigned n;

    if (rd(s, 0, b, 2) != 0 || b[0] != 0xff || b[1] != 0xd8)
        return -1;
    for (n = 0; n < GR_MEDIA_JPEG_MARKERS; n++) {
        unsigned m;

        if (rd(s, off, b, 2) != 0 || b[0] != 0xff)
            return -1;
        m = b[1];
        if (m == 0xff) {            /* a fill byte before the marker */
            off++;
            continue;
        }
        if (m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7)) {
            off += 2;               /* no length */
            continue;
        }
        if (m == 0xd9 || m == 0xda)
            return -1;              /* image data before any SOF */
        if (rd(s, off + 2, b, 2) != 0 || be16(b) < 2)
            return -1;
        if (is_sof(m)) {
            if (be16(b) < 7 || rd(s, off + 4, b, 5) != 0)
                return -1;
            o->h = be16(b + 1);
            o->w = be16(b + 3);
            return 0;
        }
        off += 2 + (uint64_t)be16(b);
    }
    return -1;
}

/* ---- documents -------------------------------------------------------- */

#define PDF_CHUNK 4096
#define PDF_OVER 48             /* "/Type" + whitespace + "/Page" + 1 */

static bool
pdf_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
           c == '\0';
}

static bool
pdf_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9');
}

/* A "/Type /Page" (not "/Pages") at b[i]; the whole of it before end. */
static bool
page_at(const unsigned char *b, size_t i, size_t end)
{
    size_t j = i + 5;

    if (end - i < 5 || memcmp(b + i, "/Type", 5) != 0)
        return false;
    while (j < end && j - i < PDF_OVER - 6 && pdf_ws(b[j]))
        j++;
    if (end - j < 6 || memcmp(b + j, "/Page", 5) != 0)
        return false;
    return !pdf_name_char(b[j + 5]);
}

/*
 * PDF: count the page objects ("/Type /Page" dictionaries) of the first
 * GR_MEDIA_PDF_SCAN bytes.  A PDF that keeps its objects in compressed
 * object streams shows none: not read (-1), as is one larger than the
 * scan.
 */
static int
pdf(const struct src *s, struct gr_media_info *o)
{
    unsigned char b[PDF_CHUNK + PDF_OVER];
    uint64_t off = 0;
    int64_t pages = 0;

    if (rd(s, 0, b, 5) != 0 || memcmp(b, "%PDF-", 5) != 0 ||
        s->size > GR_MEDIA_PDF_SCAN)
        return -1;
    while (off < s->size) {
        uint64_t left = s->size - off;
        size_t got = left < sizeof(b) ? (size_t)left : sizeof(b);
        size_t own = got < PDF_CHUNK ? got : PDF_CHUNK, i;

        if (rd(s, off, b, got) != 0)
            return -1;
        /* a match starting in the overlap is the next chunk's, unless
         * this chunk is the last */
        if (got < sizeof(b))
            own = got;
        for (i = 0; i < own; i++) {
            const unsigned char *t = memmem(b + i, got - i, "/Type", 5);

            if (t == NULL || (size_t)(t - b) >= own)
                break;
            i = (size_t)(t - b);
            if (page_at(b, i, got))
                pages++;
        }
        off += own;
    }
    if (pages == 0)
        return -1;
    o->pages = pages;
    return 0;
}

/* ---- audio and video -------------------------------------------------- */

/* WAV: the fmt chunk's byte rate and the data chunk's size. */
static int
wav(const struct src *s, struct gr_media_info *o)
{
    unsigned char h[16];
    uint64_t off = 12, rate = 0;
    unsigned n;

    if (rd(s, 0, h, 12) != 0 || memcmp(h, "RIFF", 4) != 0 ||
        memcmp(h + 8, "WAVE", 4) != 0)
        return -1;
    for (n = 0; n < GR_MEDIA_BOXES; n++) {
        uint64_t size;

        if (rd(s, off, h, 8) != 0)
            return -1;
        size = le32(h + 4);
        if (memcmp(h, "fmt ", 4) == 0) {
            if (size < 16 || rd(s, off + 8, h, 16) != 0)
                return -1;
            rate = le32(h + 8);
        } else if (memcmp(h, "data", 4) == 0) {
            uint64_t have = s->size - (off + 8 < s->size ? off + 8
                                                         : s->size);

            if (rate == 0)
                return -1;
            if (size == 0 || size > have)   /* streamed: to the end */
                size = have;
            o->ms = (int64_t)(size * 1000 / rate);
            return 0;
        }
        off += 8 + size + (size & 1);
    }
    return -1;
}

/* MP3: skip an ID3v2 tag, read the first frame's header; a Xing/Info
 * header gives the frame count, else the bitrate gives the duration. */
static int
mp3(const struct src *s, struct gr_media_info *o)
{
    static const unsigned kbps1[16] = {0, 32, 40, 48, 56, 64, 80, 96, 112,
                                       128, 160, 192, 224, 256, 320, 0};
    static const unsigned kbps2[16] = {0, 8, 16, 24, 32, 40, 48, 56, 64,
                                       80, 96, 112, 128, 144, 160, 0};
    static const unsigned hz[3] = {44100, 48000, 32000};
    unsigned char h[16];
    uint64_t off = 0;
    unsigned ver, kbps, rate, spf, side;

    if (rd(s, 0, h, 10) != 0)
        return -1;
    if (memcmp(h, "ID3", 3) == 0) {
        off = 10 + ((uint64_t)(h[6] & 0x7f) << 21 | (h[7] & 0x7f) << 14 |
                    (h[8] & 0x7f) << 7 | (h[9] & 0x7f));
        if (h[5] & 0x10)
            off += 10;              /* a footer */
    }
    if (rd(s, off, h, 4) != 0 || h[0] != 0xff || (h[1] & 0xe0) != 0xe0)
        return -1;
    ver = h[1] >> 3 & 3;            /* 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5 */
    if (ver == 1 || (h[1] >> 1 & 3) != 1 || (h[2] >> 2 & 3) == 3)
        return -1;                  /* reserved, or not Layer III */
    kbps = (ver == 3 ? kbps1 : kbps2)[h[2] >> 4];
    rate = hz[h[2] >> 2 & 3] >> (ver == 3 ? 0 : ver == 2 ? 1 : 2);
    if (kbps == 0)
        return -1;
    spf = ver == 3 ? 1152 : 576;
    side = ver == 3 ? ((h[3] >> 6) == 3 ? 17 : 32)
                    : ((h[3] >> 6) == 3 ? 9 : 17);
    if (rd(s, off + 4 + side, h, 12) == 0 &&
        (memcmp(h, "Xing", 4) == 0 || memcmp(h, "Info", 4) == 0) &&
        (h[7] & 1)) {
        o->ms = (int64_t)((uint64_t)be32(h + 8) * spf * 1000 / rate);
        return 0;
    }
    o->ms = (int64_t)((s->size - off) * 8 / kbps);
    return 0;
}

/* MP4 (ISO BMFF, also M4A and QuickTime): moov's mvhd duration. */
static int
mp4(const struct src *s, struct gr_media_info *o)
{
    unsigned char h[32];
    uint64_t off = 0, end = s->size;
    unsigned n;
    bool in_moov = false;

    for (n = 0; n < GR_MEDIA_BOXES && off < end; n++) {
        uint64_t size, hdr = 8;

        if (rd(s, off, h, 8) != 0)
            return -1;
        size = be32(h);
        if (size == 1) {
            if (rd(s, off + 8, h + 8, 8) != 0)
                return -1;
            size = be64(h + 8);
            hdr = 16;
        } else if (size == 0) {
            size = end - off;
        }
        if (size < hdr || size > end - off)
            return -1;
        if (!in_moov && memcmp(h + 4, "moov", 4) == 0) {
            in_moov = true;         /* walk its children */
            end = off + size;
            off += hdr;
            continue;
        }
        if (in_moov && memcmp(h + 4, "mvhd", 4) == 0) {
            uint64_t scale, dur;

            if (rd(s, off + hdr, h, 1) != 0)
                return -1;
            if (h[0] == 1) {
                if (rd(s, off + hdr + 20, h, 12) != 0)
                    return -1;
                scale = be32(h);
                dur = be64(h + 4);
            } else {
                if (rd(s, off + hdr + 12, h, 8) != 0)
                    return -1;
                scale = be32(h);
                dur = be32(h + 4);
            }
            if (scale == 0 || dur / scale > (uint64_t)INT64_MAX / 2000)
                return -1;
            o->ms = (int64_t)(dur / scale * 1000 + dur % scale * 1000 /
                                                       scale);
            return 0;
        }
        off += size;
    }
    return -1;
}

/* 0 with *o, or -1: the format's readers, by kind. */
static int
read_kind(const struct src *s, enum gr_media_kind kind,
          struct gr_media_info *o)
{
    memset(o, 0, sizeof(*o));
    switch (kind) {
    case GR_MEDIA_IMAGE:
        if (png(s, o) != 0 && jpeg(s, o) != 0 && webp(s, o) != 0 &&
            gif(s, o) != 0)
            return -1;
        return o->w > 0 && o->h > 0 ? 0 : -1;
    case GR_MEDIA_PDF:
        return pdf(s, o);
    case GR_MEDIA_AUDIO:
        if (wav(s, o) == 0 || mp4(s, o) == 0)
            return 0;
        memset(o, 0, sizeof(*o));
        return mp3(s, o);
    case GR_MEDIA_VIDEO:
        return mp4(s, o);
    default:
        return -1;
    }
}

static int
read_src(const struct src *s, enum gr_media_kind kind,
         struct gr_media_info *o)
{
    return read_kind(s, kind, o) == 0 ? 0 : -EINVAL;
}

int
gr_media_read_b64(const char *b64, size_t n, enum gr_media_kind kind,
                  struct gr_media_info *out)
{
    struct src s = {NULL, b64, n, 0};

    while (s.m > 0 && n - s.m < 2 && b64[s.m - 1] == '=')
        s.m--;
    if ((s.m != n && n % 4 != 0) || s.m % 4 == 1)
        return -EINVAL;
    s.size = (uint64_t)s.m / 4 * 3 + (s.m % 4 == 0 ? 0 : s.m % 4 - 1);
    return read_src(&s, kind, out);
}

int
gr_media_read_raw(const unsigned char *p, size_t n, enum gr_media_kind kind,
                  struct gr_media_info *out)
{
    struct src s = {p, NULL, 0, n};

    return read_src(&s, kind, out);
}

/* ---- what they cost --------------------------------------------------- */

enum gr_media_kind
gr_media_kind_of(const char *s, size_t n)
{
    /* Case-sensitive, as the estimate has always matched "image/". */
    if (n >= 6 && memcmp(s, "image/", 6) == 0)
        return GR_MEDIA_IMAGE;
    if (n == 15 && memcmp(s, "application/pdf", 15) == 0)
        return GR_MEDIA_PDF;
    if (n >= 6 && memcmp(s, "audio/", 6) == 0)
        return GR_MEDIA_AUDIO;
    if (n >= 6 && memcmp(s, "video/", 6) == 0)
        return GR_MEDIA_VIDEO;
    return GR_MEDIA_NONE;
}

enum gr_media_level
gr_media_level_of(const char *s, size_t n)
{
    static const struct {
        const char *w;
        enum gr_media_level l;
    } words[] = {
        {"low", GR_LEVEL_LOW}, {"medium", GR_LEVEL_MEDIUM},
        {"high", GR_LEVEL_HIGH}, {"ultra_high", GR_LEVEL_ULTRA},
    };
    size_t i;

    if (n >= 17 && strncasecmp(s, "MEDIA_RESOLUTION_", 17) == 0) {
        s += 17;
        n -= 17;
    }
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i].w) == n && strncasecmp(s, words[i].w, n) == 0)
            return words[i].l;
    return GR_LEVEL_UNSET;
}

int64_t
gr_media_tiles(uint32_t w, uint32_t h)
{
    uint64_t unit, small = w < h ? w : h;

    if (w <= 384 && h <= 384)
        return 1;
    unit = small * 2 / 3;           /* floor(min / 1.5) */
    if (unit < 256)
        unit = 256;
    if (unit > 768)
        unit = 768;
    return (int64_t)(((uint64_t)w + unit - 1) / unit *
                     (((uint64_t)h + unit - 1) / unit));
}

#define IMAGE_TILE 258              /* tokens per tile, per PDF page */
#define VIDEO_PER_S 263             /* before Gemini 3, default level */
#define AUDIO_PER_S 32
#define QTY_MAX INT64_C(1000000000000)  /* pages or ms: beyond is nonsense */

int64_t
gr_media_tokens(enum gr_media_kind kind, enum gr_media_level level, int g3,
                int64_t qty, int64_t tiles)
{
    /* Gemini 3 (media-resolution page, "Token counts"): per image,
     * per PDF page, per video frame (1 frame per second). */
    static const int64_t g3_image[GR_NLEVELS] = {1120, 280, 560, 1120, 2240};
    static const int64_t g3_pdf[GR_NLEVELS] = {560, 280, 560, 1120, 1120};
    static const int64_t g3_frame[GR_NLEVELS] = {70, 70, 70, 280, 280};
    /* Earlier models: the MediaResolution enum's 64 / 256 / 256. */
    static const int64_t old_level[GR_NLEVELS] = {0, 64, 256, 256, 256};
    int64_t per_s;

    if (qty < 0)
        qty = 0;
    if (qty > QTY_MAX)
        qty = QTY_MAX;
    if ((unsigned)level >= GR_NLEVELS)
        level = GR_LEVEL_UNSET;
    switch (kind) {
    case GR_MEDIA_IMAGE:
        if (g3)
            return g3_image[level];
        if (level == GR_LEVEL_UNSET)
            return IMAGE_TILE * (tiles > 0 && tiles < QTY_MAX ? tiles : 1);
        return old_level[level];
    case GR_MEDIA_PDF:
        if (g3)
            return g3_pdf[level] * qty;
        return (level == GR_LEVEL_UNSET ? IMAGE_TILE : old_level[level]) *
               qty;
    case GR_MEDIA_VIDEO:
        per_s = g3 ? g3_frame[level] + AUDIO_PER_S
                   : level == GR_LEVEL_UNSET ? VIDEO_PER_S
                                             : old_level[level] + AUDIO_PER_S;
        return (qty * per_s + 999) / 1000;
    case GR_MEDIA_AUDIO:
        return (qty * AUDIO_PER_S + 999) / 1000;
    default:
        return 0;
    }
}

int
gr_media_g3(const char *model)
{
    if (model == NULL)
        return 0;
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    return strncmp(model, "gemini-3", 8) == 0;
}
