/*
 * media_write.h - small valid media files made at run time, for the
 * tests of the media header readers (test_media.c) and the fuzzer's
 * seeds: PNG, GIF, WebP (VP8, VP8L, VP8X), JPEG (with an EXIF-sized
 * APP1 before its SOF), PDF of N pages, WAV, MP3 (CBR and Xing), MP4
 * (mvhd version 0 or 1, moov before or after mdat), and base64.
 * Header-only: each user includes it once.  Every maker returns a
 * malloc'd buffer and its length in *n (the caller frees).
 */
#ifndef GR_MEDIA_WRITE_H
#define GR_MEDIA_WRITE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mw {
    unsigned char *b;
    size_t n, cap;
};

static void
mw_put(struct mw *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        size_t cap = (w->n + n) * 2 + 64;
        unsigned char *b = realloc(w->b, cap);

        if (b == NULL)
            abort();
        w->b = b;
        w->cap = cap;
    }
    if (p != NULL)
        memcpy(w->b + w->n, p, n);
    else
        memset(w->b + w->n, 0, n);
    w->n += n;
}

static void
mw_s(struct mw *w, const char *s)
{
    mw_put(w, s, strlen(s));
}

static void
mw_be(struct mw *w, uint64_t v, int bytes)
{
    unsigned char b[8];
    int i;

    for (i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    mw_put(w, b, (size_t)bytes);
}

static void
mw_le(struct mw *w, uint64_t v, int bytes)
{
    unsigned char b[8];
    int i;

    for (i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    mw_put(w, b, (size_t)bytes);
}

static unsigned char *
mw_done(struct mw *w, size_t *n)
{
    *n = w->n;
    return w->b;
}

static unsigned char *
mw_png(uint32_t wd, uint32_t ht, size_t *n)
{
    struct mw w = {0};

    mw_put(&w, "\x89PNG\r\n\x1a\n", 8);
    mw_be(&w, 13, 4);
    mw_s(&w, "IHDR");
    mw_be(&w, wd, 4);
    mw_be(&w, ht, 4);
    mw_put(&w, "\x08\x02\x00\x00\x00", 5);
    mw_be(&w, 0, 4);                /* CRC: not checked by anyone here */
    mw_be(&w, 0, 4);
    mw_s(&w, "IEND");
    mw_be(&w, 0xae426082u, 4);
    return mw_done(&w, n);
}

static unsigned char *
mw_gif(unsigned wd, unsigned ht, size_t *n)
{
    struct mw w = {0};

    mw_s(&w, "GIF89a");
    mw_le(&w, wd, 2);
    mw_le(&w, ht, 2);
    mw_put(&w, "\x00\x00\x00;", 4);
    return mw_done(&w, n);
}

/* kind: ' ' (VP8, lossy), 'L' (VP8L), 'X' (VP8X). */
static unsigned char *
mw_webp(char kind, uint32_t wd, uint32_t ht, size_t *n)
{
    struct mw w = {0};
    uint32_t bits;

    mw_s(&w, "RIFF");
    mw_le(&w, 30, 4);
    mw_s(&w, "WEBPVP8");
    mw_put(&w, &kind, 1);
    mw_le(&w, 18, 4);
    if (kind == ' ') {
        mw_put(&w, "\x30\x01\x00\x9d\x01\x2a", 6);
        mw_le(&w, wd, 2);
        mw_le(&w, ht, 2);
    } else if (kind == 'L') {
        mw_put(&w, "\x2f", 1);
        bits = (wd - 1) | (ht - 1) << 14;
        mw_le(&w, bits, 4);
    } else {
        mw_le(&w, 0, 4);            /* flags */
        mw_le(&w, wd - 1, 3);
        mw_le(&w, ht - 1, 3);
    }
    mw_put(&w, NULL, 8);
    return mw_done(&w, n);
}

/* SOI, APP0, an APP1 of app1 bytes (EXIF-like), DQT, SOF0, SOS, EOI. */
static unsigned char *
mw_jpeg(unsigned wd, unsigned ht, size_t app1, size_t *n)
{
    struct mw w = {0};

    mw_put(&w, "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01"
           "\x00\x01\x00\x00", 20);
    while (app1 > 0) {
        size_t seg = app1 > 65000 ? 65000 : app1;

        mw_put(&w, "\xff\xe1", 2);
        mw_be(&w, seg + 2, 2);
        mw_put(&w, NULL, seg);
        app1 -= seg;
    }
    mw_put(&w, "\xff\xdb\x00\x43\x00", 5);
    mw_put(&w, NULL, 64);
    mw_put(&w, "\xff\xc0\x00\x11\x08", 5);
    mw_be(&w, ht, 2);
    mw_be(&w, wd, 2);
    mw_put(&w, "\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
    mw_put(&w, "\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00", 10);
    mw_put(&w, NULL, 32);
    mw_put(&w, "\xff\xd9", 2);
    return mw_done(&w, n);
}

/* A PDF of pages page objects (and its page tree), uncompressed. */
static unsigned char *
mw_pdf(unsigned pages, size_t *n)
{
    struct mw w = {0};
    char line[160];
    unsigned i;

    mw_s(&w, "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\n"
             "endobj\n");
    snprintf(line, sizeof(line), "2 0 obj\n<< /Type /Pages /Count %u "
             "/Kids [3 0 R] >>\nendobj\n", pages);
    mw_s(&w, line);
    for (i = 0; i < pages; i++) {
        snprintf(line, sizeof(line), "%u 0 obj\n<< /Type %s/Page /Parent "
                 "2 0 R /MediaBox [0 0 612 792] >>\nendobj\n", i + 3,
                 i % 2 ? "" : " ");
        mw_s(&w, line);
        mw_put(&w, NULL, 0);
        mw_s(&w, "4 0 obj\n<< /Length 20 >>\nstream\nBT /F1 12 Tf ET\n"
                 "endstream\nendobj\n");
    }
    mw_s(&w, "trailer\n<< /Root 1 0 R >>\n%%EOF\n");
    return mw_done(&w, n);
}

/* 16-bit mono PCM at rate Hz, ms long. */
static unsigned char *
mw_wav(unsigned rate, unsigned ms, size_t *n)
{
    struct mw w = {0};
    uint32_t data = rate * 2 * ms / 1000;

    mw_s(&w, "RIFF");
    mw_le(&w, 36 + data, 4);
    mw_s(&w, "WAVEfmt ");
    mw_le(&w, 16, 4);
    mw_le(&w, 1, 2);
    mw_le(&w, 1, 2);
    mw_le(&w, rate, 4);
    mw_le(&w, rate * 2, 4);
    mw_le(&w, 2, 2);
    mw_le(&w, 16, 2);
    mw_s(&w, "LIST");               /* a chunk to step over */
    mw_le(&w, 5, 4);
    mw_put(&w, "INFOx\0", 6);       /* odd size: one pad byte */
    mw_s(&w, "data");
    mw_le(&w, data, 4);
    mw_put(&w, NULL, data);
    return mw_done(&w, n);
}

/* MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, joint stereo: CBR of ms, or
 * (frames > 0) a Xing header saying frames. */
static unsigned char *
mw_mp3(unsigned ms, uint32_t frames, size_t *n)
{
    struct mw w = {0};

    mw_s(&w, "ID3\x03");
    mw_put(&w, "\x00\x00\x00\x00\x00\x0a", 6);  /* a 10-byte tag */
    mw_put(&w, NULL, 10);
    mw_put(&w, "\xff\xfb\x90\x64", 4);
    mw_put(&w, NULL, 32);
    if (frames > 0) {
        mw_s(&w, "Xing");
        mw_be(&w, 1, 4);
        mw_be(&w, frames, 4);
        mw_put(&w, NULL, 400);
    } else {
        mw_put(&w, NULL, (size_t)ms * 16 - 36);     /* 16 bytes per ms */
    }
    return mw_done(&w, n);
}

/* ftyp, then mdat of mdat bytes and moov (or moov first), mvhd v0/v1. */
static unsigned char *
mw_mp4(uint32_t scale, uint64_t dur, int v1, int moov_first, size_t mdat,
       size_t *n)
{
    struct mw w = {0}, m = {0};
    size_t mvhd = v1 ? 8 + 4 + 28 + 80 : 8 + 4 + 16 + 80;

    mw_be(&w, 20, 4);
    mw_s(&w, "ftypisom");
    mw_be(&w, 0x200, 4);
    mw_s(&w, "isom");
    mw_be(&m, 8 + mvhd, 4);
    mw_s(&m, "moov");
    mw_be(&m, mvhd, 4);
    mw_s(&m, "mvhd");
    mw_be(&m, v1 ? 0x01000000u : 0, 4);
    if (v1) {
        mw_be(&m, 0, 8);
        mw_be(&m, 0, 8);
        mw_be(&m, scale, 4);
        mw_be(&m, dur, 8);
    } else {
        mw_be(&m, 0, 4);
        mw_be(&m, 0, 4);
        mw_be(&m, scale, 4);
        mw_be(&m, dur, 4);
    }
    mw_put(&m, NULL, 80);
    if (moov_first)
        mw_put(&w, m.b, m.n);
    mw_be(&w, 8 + mdat, 4);
    mw_s(&w, "mdat");
    mw_put(&w, NULL, mdat);
    if (!moov_first)
        mw_put(&w, m.b, m.n);
    free(m.b);
    return mw_done(&w, n);
}

/* Standard base64, padded; malloc'd and NUL-terminated. */
static char *
mw_base64(const unsigned char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                            "wxyz0123456789+/";
    char *s = malloc((n + 2) / 3 * 4 + 1), *o = s;
    size_t i;

    if (s == NULL)
        abort();
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
                     p[i + 2];

        *o++ = a[v >> 18];
        *o++ = a[v >> 12 & 63];
        *o++ = a[v >> 6 & 63];
        *o++ = a[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 |
                     (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);

        *o++ = a[v >> 18];
        *o++ = a[v >> 12 & 63];
        *o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    return s;
}

#endif
