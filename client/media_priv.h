/*
 * media_priv.h - what an inline media part costs, read from the few
 * header bytes of its base64 data: an image's pixel size (PNG, JPEG,
 * WebP, GIF), a PDF's pages, a WAV's or MP3's or MP4's duration, and the
 * tokens Google's token guide gives for each at a media_resolution level
 * (docs/CLIENT.md, "Media tokens").  Private to client/.
 *
 * Everything here reads untrusted bytes: every read is bounds-checked
 * against the decoded length, loops are bounded (GR_MEDIA_* below), and
 * a header that does not parse is "not read" (-EINVAL), never a guess.
 */
#ifndef GR_MEDIA_PRIV_H
#define GR_MEDIA_PRIV_H

#include <stddef.h>
#include <stdint.h>

/* What a mimeType says a part is. */
enum gr_media_kind {
    GR_MEDIA_NONE = 0,      /* not media (text/plain, application/json) */
    GR_MEDIA_IMAGE,
    GR_MEDIA_PDF,
    GR_MEDIA_AUDIO,
    GR_MEDIA_VIDEO,
    GR_MEDIA_NKINDS,
};

/* media_resolution levels; 0 = not set (the model's default). */
enum gr_media_level {
    GR_LEVEL_UNSET = 0,
    GR_LEVEL_LOW,
    GR_LEVEL_MEDIUM,
    GR_LEVEL_HIGH,
    GR_LEVEL_ULTRA,
    GR_NLEVELS,
};

#define GR_MEDIA_JPEG_MARKERS 256       /* segments walked to a SOF */
#define GR_MEDIA_BOXES 256              /* MP4 boxes, RIFF chunks walked */
#define GR_MEDIA_PDF_SCAN (32u << 20)   /* decoded PDF bytes scanned */

/* What a part's bytes say: pixels, pages or milliseconds. */
struct gr_media_info {
    uint32_t w, h;          /* image: pixels */
    int64_t pages;          /* PDF */
    int64_t ms;             /* audio, video: duration */
};

/* The kind a mimeType names (s[0..n), not NUL-terminated). */
enum gr_media_kind gr_media_kind_of(const char *s, size_t n);

/* The level a media_resolution value names ("MEDIA_RESOLUTION_LOW",
 * "low", any case); GR_LEVEL_UNSET for anything else. */
enum gr_media_level gr_media_level_of(const char *s, size_t n);

/*
 * Read the header of a part of kind from its base64 data b64[0..n)
 * (standard or URL-safe alphabet, padded or not), decoding only the
 * bytes the header needs (a PDF: its bytes up to GR_MEDIA_PDF_SCAN).
 * 0 with *out filled, or -EINVAL: not base64, not a format read here,
 * a header cut or out of range.
 */
int gr_media_read_b64(const char *b64, size_t n, enum gr_media_kind kind,
                      struct gr_media_info *out);

/* The same on raw bytes (the fuzzer, the tests). */
int gr_media_read_raw(const unsigned char *p, size_t n,
                      enum gr_media_kind kind, struct gr_media_info *out);

/* Google's 258-token tiles of a w x h image (1 when both sides are at
 * most 384 px; else crop units of min(w,h)/1.5 clamped to 256..768). */
int64_t gr_media_tiles(uint32_t w, uint32_t h);

/*
 * Tokens of one media item of kind at level, for a Gemini 3 model (g3)
 * or an earlier one: per image (tiles: its gr_media_tiles(), used only
 * at the default of a model before Gemini 3), per PDF page (qty pages),
 * per ms of audio or video (qty ms, rounded up to whole tokens).
 */
int64_t gr_media_tokens(enum gr_media_kind kind, enum gr_media_level level,
                        int g3, int64_t qty, int64_t tiles);

/* Does this model name follow Gemini 3's media rules ("gemini-3...")? */
int gr_media_g3(const char *model);

#endif
