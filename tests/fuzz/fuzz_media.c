/*
 * fuzz_media.c - libFuzzer harness for the media header readers: the
 * client's (client/media.c, a few header bytes of the base64 text) and
 * the mock's (tools/mock/media.c, the whole decoded part).
 *
 * The first byte picks the kind (image, PDF, audio, video); the rest is
 * the part's bytes.  On any bytes:
 *  - nothing crashes or reads outside its buffer (ASan; the buffers are
 *    exact copies);
 *  - reading the raw bytes and reading their base64 (padded, unpadded,
 *    URL-safe) give the same answer, field for field;
 *  - the bytes taken as base64 text themselves are read or refused;
 *  - a read size costs a non-negative number of tokens at every level;
 *  - the mock counts a request carrying the bytes without crashing.
 *
 * Build and run: make fuzzers; FUZZ_ONLY=media tools/fuzz.sh
 */
#include "media.h"
#include "media_priv.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
b64(const unsigned char *p, size_t n, int url, int pad)
{
    const char *a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                          "0123456789+/";
    char *s = malloc((n + 2) / 3 * 4 + 1), *o = s;
    size_t i;

    if (s == NULL)
        abort();
    for (i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 |
                     (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);

        *o++ = a[v >> 18];
        *o++ = a[v >> 12 & 63];
        if (i + 1 < n)
            *o++ = a[v >> 6 & 63];
        else if (pad)
            *o++ = '=';
        if (i + 2 < n)
            *o++ = a[v & 63];
        else if (pad)
            *o++ = '=';
    }
    *o = '\0';
    return s;
}

static void
same(int r1, const struct gr_media_info *a, int r2,
     const struct gr_media_info *b)
{
    if (r1 != r2)
        abort();
    if (r1 == 0 && (a->w != b->w || a->h != b->h || a->pages != b->pages ||
                    a->ms != b->ms))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gr_media_info a, b;
    enum gr_media_kind kind;
    unsigned char *buf;
    char *s, *body;
    size_t n;
    int rc, v, l;

    if (size < 1 || size > (1u << 20))
        return 0;
    kind = (enum gr_media_kind)(1 + (data[0] + 3) % 4);   /* 1..4 */
    n = size - 1;
    buf = malloc(n > 0 ? n : 1);
    if (buf == NULL)
        abort();
    memcpy(buf, data + 1, n);

    rc = gr_media_read_raw(buf, n, kind, &a);
    for (v = 0; v < 3; v++) {
        s = b64(buf, n, v == 2, v == 0);
        same(rc, &a, gr_media_read_b64(s, strlen(s), kind, &b), &b);
        free(s);
    }
    (void)gr_media_read_b64((const char *)buf, n, kind, &b);
    if (rc == 0) {
        for (l = 0; l < GR_NLEVELS; l++) {
            int64_t q = kind == GR_MEDIA_PDF ? a.pages : a.ms;

            if (gr_media_tokens(kind, (enum gr_media_level)l, 0, q,
                                gr_media_tiles(a.w, a.h)) < 0 ||
                gr_media_tokens(kind, (enum gr_media_level)l, 1, q, 1) < 0)
                abort();
        }
    }

    /* The mock, on a request carrying these bytes. */
    s = b64(buf, n, 0, 1);
    body = malloc(strlen(s) + 160);
    if (body == NULL)
        abort();
    n = (size_t)sprintf(body, "{\"contents\":[{\"parts\":[{\"inlineData\":"
                        "{\"mimeType\":\"%s\",\"data\":\"%s\"}}]}]}",
                        kind == GR_MEDIA_IMAGE ? "image/png"
                        : kind == GR_MEDIA_PDF ? "application/pdf"
                        : kind == GR_MEDIA_AUDIO ? "audio/wav"
                                                 : "video/mp4", s);
    if (gr_mock_media_tokens(body, n, "gemini-2.5-flash") < 0)
        abort();
    free(body);
    free(s);
    free(buf);
    return 0;
}
