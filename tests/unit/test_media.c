/*
 * test_media.c - media tokens before the call (issue 16): the header
 * readers of client/media.c on every format they know and on damaged
 * headers, Google's tile rule and media_resolution table, the estimate
 * of whole requests (the scanner and json-c agree), and, through a real
 * gemrouted in front of the real gemroute-mock, countTokens asked first
 * for what the estimate cannot read, its answer kept per resource, and
 * the estimate against the mock's count on a corpus of mixed requests
 * (the table of docs/BENCHMARKS.md, "Media token estimates", printed by
 * test_bench_table).
 *
 *   BIN=bin build/default/tests/test_media
 */
#include "client_priv.h"
#include "estimate_priv.h"
#include "gemroute.h"
#include "media_first.h"
#include "media_priv.h"
#include "media_write.h"
#include "resource.h"
#include "testlib.h"
#include "testrouter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLASH "gemini-2.5-flash"
#define G3 "gemini-3-flash-preview"
#define KEY "gr-test-SECRET-media-41c7"

/* ---- the readers, format by format ------------------------------------ */

/* Read p both ways (raw, base64); both must agree with rc. */
static int
read_both(const unsigned char *p, size_t n, enum gr_media_kind k,
          struct gr_media_info *out)
{
    struct gr_media_info b;
    char *s = mw_base64(p, n);
    int r1 = gr_media_read_raw(p, n, k, out);
    int r2 = gr_media_read_b64(s, strlen(s), k, &b);

    CU_ASSERT_EQUAL(r1, r2);
    if (r1 == 0 && r2 == 0) {
        CU_ASSERT_EQUAL(out->w, b.w);
        CU_ASSERT_EQUAL(out->h, b.h);
        CU_ASSERT_EQUAL(out->pages, b.pages);
        CU_ASSERT_EQUAL(out->ms, b.ms);
    }
    free(s);
    return r1;
}

static void
expect_image(unsigned char *p, size_t n, uint32_t w, uint32_t h)
{
    struct gr_media_info mi;

    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_IMAGE, &mi), 0);
    CU_ASSERT_EQUAL(mi.w, w);
    CU_ASSERT_EQUAL(mi.h, h);
    free(p);
}

static void
test_images(void)
{
    unsigned char *p;
    size_t n;

    p = mw_png(960, 540, &n);
    expect_image(p, n, 960, 540);
    p = mw_png(1, 100000, &n);
    expect_image(p, n, 1, 100000);
    p = mw_gif(320, 200, &n);
    expect_image(p, n, 320, 200);
    p = mw_webp(' ', 1024, 768, &n);
    expect_image(p, n, 1024, 768);
    p = mw_webp('L', 4000, 3000, &n);
    expect_image(p, n, 4000, 3000);
    p = mw_webp('X', 70000, 2, &n);
    expect_image(p, n, 70000, 2);
    p = mw_jpeg(1920, 1080, 0, &n);
    expect_image(p, n, 1920, 1080);
    /* An EXIF block of 200 kB before the SOF: jumped, not decoded. */
    p = mw_jpeg(3024, 4032, 200000, &n);
    expect_image(p, n, 3024, 4032);
}

static void
test_pdf_audio_video(void)
{
    struct gr_media_info mi;
    unsigned char *p;
    size_t n;

    p = mw_pdf(7, &n);
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_PDF, &mi), 0);
    CU_ASSERT_EQUAL(mi.pages, 7);
    free(p);
    p = mw_pdf(1, &n);
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_PDF, &mi), 0);
    CU_ASSERT_EQUAL(mi.pages, 1);
    free(p);

    p = mw_wav(8000, 2500, &n);
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_AUDIO, &mi), 0);
    CU_ASSERT_EQUAL(mi.ms, 2500);
    free(p);
    p = mw_mp3(3000, 0, &n);
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_AUDIO, &mi), 0);
    CU_ASSERT_EQUAL(mi.ms, 3000);
    free(p);
    p = mw_mp3(0, 1000, &n);        /* Xing: 1000 frames of 1152 */
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_AUDIO, &mi), 0);
    CU_ASSERT_EQUAL(mi.ms, 1000 * 1152 * 1000 / 44100);
    free(p);

    /* moov after a large mdat, mvhd v0; and first, v1; and as audio. */
    p = mw_mp4(600, 600 * 42 + 300, 0, 0, 100000, &n);
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_VIDEO, &mi), 0);
    CU_ASSERT_EQUAL(mi.ms, 42500);
    free(p);
    p = mw_mp4(90000, UINT64_C(90000) * 3600, 1, 1, 10, &n);
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_VIDEO, &mi), 0);
    CU_ASSERT_EQUAL(mi.ms, 3600000);
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_AUDIO, &mi), 0);
    CU_ASSERT_EQUAL(mi.ms, 3600000);
    free(p);
}

/* Damaged headers: "not read", never a guess, never a read past n. */
static void
test_damaged(void)
{
    struct gr_media_info mi;
    unsigned char *p, *cut;
    size_t n, i;
    char b64[64];

    /* Every prefix of every format is refused or read within it. */
    {
        unsigned char *all[8];
        size_t len[8];
        enum gr_media_kind kind[8] = {
            GR_MEDIA_IMAGE, GR_MEDIA_IMAGE, GR_MEDIA_IMAGE, GR_MEDIA_IMAGE,
            GR_MEDIA_PDF, GR_MEDIA_AUDIO, GR_MEDIA_AUDIO, GR_MEDIA_VIDEO,
        };
        unsigned k;

        all[0] = mw_png(800, 600, &len[0]);
        all[1] = mw_jpeg(800, 600, 300, &len[1]);
        all[2] = mw_webp('X', 800, 600, &len[2]);
        all[3] = mw_gif(800, 600, &len[3]);
        all[4] = mw_pdf(3, &len[4]);
        all[5] = mw_wav(8000, 100, &len[5]);
        all[6] = mw_mp3(0, 10, &len[6]);
        all[7] = mw_mp4(1000, 5000, 0, 0, 50, &len[7]);
        for (k = 0; k < 8; k++) {
            for (i = 0; i < len[k]; i++) {
                cut = malloc(i > 0 ? i : 1);    /* exact: ASan sees */
                memcpy(cut, all[k], i);
                (void)read_both(cut, i, kind[k], &mi);
                free(cut);
            }
            free(all[k]);
        }
    }
    /* A cut header is refused. */
    p = mw_png(800, 600, &n);
    CU_ASSERT_EQUAL(read_both(p, 20, GR_MEDIA_IMAGE, &mi), -EINVAL);
    p[1] = 'Q';                     /* not PNG, nor anything else */
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_IMAGE, &mi), -EINVAL);
    free(p);
    p = mw_png(0, 600, &n);         /* zero width */
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_IMAGE, &mi), -EINVAL);
    free(p);
    /* JPEG: image data before a SOF; a length past the end; a chain of
     * segments longer than the bound. */
    CU_ASSERT_EQUAL(read_both((const unsigned char *)"\xff\xd8\xff\xda"
                              "\x00\x02\xff\xd9", 8, GR_MEDIA_IMAGE, &mi),
                    -EINVAL);
    CU_ASSERT_EQUAL(read_both((const unsigned char *)"\xff\xd8\xff\xe1"
                              "\xff\xf0\x00", 7, GR_MEDIA_IMAGE, &mi),
                    -EINVAL);
    {
        struct mw w = {0};

        mw_put(&w, "\xff\xd8", 2);
        for (i = 0; i < GR_MEDIA_JPEG_MARKERS + 1; i++)
            mw_put(&w, "\xff\xfe\x00\x02", 4);      /* empty comments */
        mw_put(&w, "\xff\xc0\x00\x11\x08\x00\x10\x00\x10", 9);
        mw_put(&w, NULL, 12);
        CU_ASSERT_EQUAL(read_both(w.b, w.n, GR_MEDIA_IMAGE, &mi), -EINVAL);
        free(w.b);
    }
    /* Not base64 in the header; a length no base64 has. */
    snprintf(b64, sizeof(b64), "iVBO*w0KGgoAAAANSUhEUgAAA+AAAAJY");
    CU_ASSERT_EQUAL(gr_media_read_b64(b64, strlen(b64), GR_MEDIA_IMAGE,
                                      &mi), -EINVAL);
    CU_ASSERT_EQUAL(gr_media_read_b64("iVBORw0KG", 9, GR_MEDIA_IMAGE, &mi),
                    -EINVAL);
    CU_ASSERT_EQUAL(gr_media_read_b64("", 0, GR_MEDIA_IMAGE, &mi), -EINVAL);
    /* A PDF whose pages are in compressed object streams shows none. */
    CU_ASSERT_EQUAL(read_both((const unsigned char *)"%PDF-1.7\n1 0 obj "
                              "<< /Type /ObjStm >>\n", 30, GR_MEDIA_PDF,
                              &mi), -EINVAL);
    /* WAV with no byte rate; MP4 whose box sizes lie; a reserved MP3. */
    p = mw_wav(8000, 100, &n);
    memset(p + 28, 0, 4);
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_AUDIO, &mi), -EINVAL);
    free(p);
    p = mw_mp4(1000, 5000, 0, 1, 50, &n);
    p[23] = 7;                      /* moov's size below its header */
    p[20] = p[21] = p[22] = 0;
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_VIDEO, &mi), -EINVAL);
    free(p);
    p = mw_mp4(0, 5000, 0, 1, 50, &n);  /* timescale 0 */
    CU_ASSERT_EQUAL(read_both(p, n, GR_MEDIA_VIDEO, &mi), -EINVAL);
    free(p);
    CU_ASSERT_EQUAL(read_both((const unsigned char *)"\xff\xeb\x90\x64"
                              "\0\0\0\0", 8, GR_MEDIA_AUDIO, &mi), -EINVAL);
}

/* ---- the rules --------------------------------------------------------- */

static void
test_rules(void)
{
    /* Google's image rule: 258 up to 384 px on both sides; else tiles
     * of a crop unit min(w,h)/1.5 within 256..768.  960x540 is the
     * image-understanding page's worked example: 6 tiles, 1548. */
    CU_ASSERT_EQUAL(gr_media_tiles(384, 384), 1);
    CU_ASSERT_EQUAL(gr_media_tiles(1, 1), 1);
    CU_ASSERT_EQUAL(gr_media_tiles(960, 540), 6);
    CU_ASSERT_EQUAL(258 * gr_media_tiles(960, 540), 1548);
    CU_ASSERT_EQUAL(gr_media_tiles(385, 384), 4);   /* unit 256: 2 x 2 */
    CU_ASSERT_EQUAL(gr_media_tiles(1000, 1000), 4); /* unit 666 */
    CU_ASSERT_EQUAL(gr_media_tiles(3000, 3000), 16);/* unit 768 */
    CU_ASSERT_EQUAL(gr_media_tiles(3000, 100), 12); /* unit 256 */
    CU_ASSERT_EQUAL(gr_media_tiles(UINT32_MAX, UINT32_MAX),
                    INT64_C(5592406) * 5592406);

    /* Before Gemini 3: default tiles; the enum's 64 / 256 / 256. */
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_IMAGE, GR_LEVEL_UNSET, 0, 1,
                                    6), 1548);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_IMAGE, GR_LEVEL_LOW, 0, 1, 6),
                    64);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_IMAGE, GR_LEVEL_HIGH, 0, 1, 6),
                    256);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_PDF, GR_LEVEL_UNSET, 0, 10, 0),
                    2580);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_VIDEO, GR_LEVEL_UNSET, 0,
                                    10000, 0), 2630);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_AUDIO, GR_LEVEL_HIGH, 0,
                                    30000, 0), 960);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_AUDIO, GR_LEVEL_UNSET, 0, 1,
                                    0), 1);         /* rounded up */
    /* Gemini 3: per item by level; images HIGH, PDFs MEDIUM, video
     * frames 70 by default. */
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_IMAGE, GR_LEVEL_UNSET, 1, 1,
                                    6), 1120);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_IMAGE, GR_LEVEL_ULTRA, 1, 1,
                                    6), 2240);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_PDF, GR_LEVEL_UNSET, 1, 2, 0),
                    1120);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_VIDEO, GR_LEVEL_HIGH, 1,
                                    10000, 0), 3120);
    CU_ASSERT_EQUAL(gr_media_tokens(GR_MEDIA_VIDEO, GR_LEVEL_UNSET, 1,
                                    INT64_MAX, 0),
                    (INT64_C(1000000000000) * 102 + 999) / 1000);

    CU_ASSERT_EQUAL(gr_media_level_of("MEDIA_RESOLUTION_LOW", 20),
                    GR_LEVEL_LOW);
    CU_ASSERT_EQUAL(gr_media_level_of("media_resolution_ultra_high", 27),
                    GR_LEVEL_ULTRA);
    CU_ASSERT_EQUAL(gr_media_level_of("high", 4), GR_LEVEL_HIGH);
    CU_ASSERT_EQUAL(gr_media_level_of("MEDIA_RESOLUTION_UNSPECIFIED", 28),
                    GR_LEVEL_UNSET);
    CU_ASSERT_EQUAL(gr_media_level_of("hi", 2), GR_LEVEL_UNSET);
    CU_ASSERT_TRUE(gr_media_g3("gemini-3-pro-preview"));
    CU_ASSERT_TRUE(gr_media_g3("models/gemini-3.1-flash"));
    CU_ASSERT_FALSE(gr_media_g3("gemini-2.5-flash"));
    CU_ASSERT_FALSE(gr_media_g3(NULL));
}

/* ---- whole requests ---------------------------------------------------- */

/* A request with one inline part of mime, text and the extra JSON
 * members `part` (inside the part) and `top` (at the top); malloc'd. */
static char *
req_with(const char *mime, const unsigned char *p, size_t n,
         const char *part, const char *top)
{
    char *b64 = mw_base64(p, n);
    size_t len = strlen(b64) + 512 + strlen(part) + strlen(top);
    char *s = malloc(len);

    snprintf(s, len, "{%s\"contents\":[{\"role\":\"user\",\"parts\":["
             "{\"text\":\"what is this?\"},{%s\"inlineData\":{\"mimeType\":"
             "\"%s\",\"data\":\"%s\"}}]}]}", top, part, mime, b64);
    free(b64);
    return s;
}

static bool
est_same(const struct gr_est *a, const struct gr_est *b)
{
    return a->text_bytes == b->text_bytes && a->images == b->images &&
           a->requests == b->requests && a->tiles == b->tiles &&
           a->unread == b->unread && a->files == b->files &&
           a->level == b->level &&
           memcmp(a->qty, b->qty, sizeof(a->qty)) == 0;
}

/* The estimate of body for model; the scanner (when it answers, which
 * scan_rc says it must) and json-c agree. */
static int64_t
tokens_of(const char *body, const char *model, int scan_rc)
{
    size_t n = strlen(body);
    char *b = malloc(n);
    struct gr_est s, t, r;
    int rc;

    memcpy(b, body, n);             /* exact length: reads past it show */
    rc = gr_est_scan(b, n, &s);
    gr_est_tree(b, n, &t);
    gr_est_read(b, n, &r);
    CU_ASSERT_EQUAL(rc, scan_rc);
    if (rc == 0)
        CU_ASSERT_TRUE(est_same(&s, &t));
    CU_ASSERT_TRUE(est_same(&r, &t));
    free(b);
    return gr_est_tokens(&t, model);
}

static void
test_requests(void)
{
    unsigned char *p;
    size_t n;
    char *r;
    /* "what is this?": 13 bytes, 4 tokens. */

    p = mw_png(960, 540, &n);
    r = req_with("image/png", p, n, "", "");
    CU_ASSERT_EQUAL(tokens_of(r, FLASH, 0), 4 + 1548);
    CU_ASSERT_EQUAL(tokens_of(r, G3, 0), 4 + 1120);
    free(r);
    /* The request's level; a part's own level (object or string) wins. */
    r = req_with("image/png", p, n, "", "\"generationConfig\":{"
                 "\"mediaResolution\":\"MEDIA_RESOLUTION_LOW\"},");
    CU_ASSERT_EQUAL(tokens_of(r, FLASH, 0), 4 + 64);
    CU_ASSERT_EQUAL(tokens_of(r, G3, 0), 4 + 280);
    free(r);
    r = req_with("image/png", p, n, "\"mediaResolution\":{\"level\":"
                 "\"MEDIA_RESOLUTION_ULTRA_HIGH\"},", "\"generation_config\":"
                 "{\"media_resolution\":\"MEDIA_RESOLUTION_LOW\"},");
    CU_ASSERT_EQUAL(tokens_of(r, G3, 0), 4 + 2240);
    free(r);
    r = req_with("image/png", p, n, "\"media_resolution\":\"medium\",", "");
    CU_ASSERT_EQUAL(tokens_of(r, G3, 0), 4 + 560);
    free(r);
    free(p);

    p = mw_pdf(12, &n);
    r = req_with("application/pdf", p, n, "", "");
    CU_ASSERT_EQUAL(tokens_of(r, FLASH, 0), 4 + 12 * 258);
    CU_ASSERT_EQUAL(tokens_of(r, G3, 0), 4 + 12 * 560);
    free(r);
    free(p);
    p = mw_wav(16000, 10000, &n);
    r = req_with("audio/wav", p, n, "", "");
    CU_ASSERT_EQUAL(tokens_of(r, FLASH, 0), 4 + 320);
    free(r);
    free(p);
    p = mw_mp4(1000, 20000, 0, 0, 1000, &n);
    r = req_with("video/mp4", p, n, "", "");
    CU_ASSERT_EQUAL(tokens_of(r, FLASH, 0), 4 + 20 * 263);
    CU_ASSERT_EQUAL(tokens_of(r, G3, 0), 4 + 20 * 102);
    free(r);
    free(p);

    /* A format not read (HEIC) or a damaged header: 258, and unread. */
    r = req_with("image/heic", (const unsigned char *)"\0\0\0\x18" "ftypheic",
                 12, "", "");
    CU_ASSERT_EQUAL(tokens_of(r, FLASH, 0), 4 + 258);
    free(r);
    {
        struct gr_est e;

        r = req_with("image/png", (const unsigned char *)"\x89PNG", 4, "",
                     "");
        gr_est_read(r, strlen(r), &e);
        CU_ASSERT_EQUAL(e.unread, 1);
        CU_ASSERT_EQUAL(e.images, 1);
        CU_ASSERT_EQUAL(gr_est_tokens(&e, FLASH), 4 + 258);
        free(r);
    }
    /* A fileData part: counted as a file, no local tokens. */
    {
        const char *f = "{\"contents\":[{\"parts\":[{\"fileData\":{"
                        "\"fileUri\":\"files/abc\",\"mimeType\":"
                        "\"video/mp4\"}},{\"text\":\"12345678\"}]}]}";
        struct gr_est e;

        CU_ASSERT_EQUAL(tokens_of(f, FLASH, 0), 2);
        gr_est_read(f, strlen(f), &e);
        CU_ASSERT_EQUAL(e.files, 1);
        CU_ASSERT_TRUE(gr_est_any(&e));
    }
    /* Escaped base64 ("\/" as json-c writes '/'): the scanner doubts,
     * json-c reads it, the answer is the same. */
    {
        unsigned char q[3] = {0xff, 0xff, 0xff};    /* "////" */
        struct mw w = {0};
        char *b64, *s, *d;

        p = mw_png(1000, 1000, &n);
        mw_put(&w, p, n);
        mw_put(&w, q, 3);
        mw_put(&w, q, 3);
        b64 = mw_base64(w.b, w.n);
        s = malloc(strlen(b64) * 2 + 200);
        d = s + sprintf(s, "{\"contents\":[{\"parts\":[{\"inlineData\":{"
                        "\"mimeType\":\"image/png\",\"data\":\"");
        for (n = 0; b64[n] != '\0'; n++) {
            if (b64[n] == '/')
                *d++ = '\\';
            *d++ = b64[n];
        }
        strcpy(d, "\"}}]}]}");
        CU_ASSERT_EQUAL(tokens_of(s, FLASH, -1), 4 * 258);
        free(s);
        free(b64);
        free(w.b);
        free(p);
    }
}

/* The countTokens body of one file part, found by its name in a URI. */
static void
test_part_body(void)
{
    const char *req =
        "{\"contents\":[{\"parts\":[{\"text\":\"x\"},{\"file_data\":{"
        "\"file_uri\":\"https://generativelanguage.googleapis.com/v1beta/"
        "files/abc\",\"mime_type\":\"video/mp4\"}}]},{\"parts\":[{"
        "\"fileData\":{\"fileUri\":\"files/xyz\"}}]}]}";
    char *b;

    b = gr_media_part_body(req, strlen(req), FLASH, "files/abc");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(b, "{\"generateContentRequest\":{\"model\":"
                           "\"models\\/" FLASH "\",\"contents\":[{\"parts\":"
                           "[{\"fileData\":{\"file_uri\":\"https:\\/\\/"
                           "generativelanguage.googleapis.com\\/v1beta\\/"
                           "files\\/abc\",\"mime_type\":\"video\\/mp4\"}}]}"
                           "]}}");
    free(b);
    b = gr_media_part_body(req, strlen(req), FLASH, "files/xyz");
    CU_ASSERT_PTR_NOT_NULL(b);
    free(b);
    /* a name that is only the end of another id: not that part */
    CU_ASSERT_PTR_NULL(gr_media_part_body(req, strlen(req), FLASH,
                                          "files/bc"));
    CU_ASSERT_PTR_NULL(gr_media_part_body("not json", 8, FLASH,
                                          "files/abc"));
}

/* ---- through a router, against the mock -------------------------------- */

static char tmpdir[64];
static pid_t mock_pid = -1;
static int mock_port;
static struct gr_test_router rt;
static struct gr *g;

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static void
write_file(const char *path, const char *fmt, ...)
{
    va_list ap;
    FILE *f = fopen(path, "w");

    if (f == NULL)
        abort();
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

static int
start_all(void)
{
    char conf[128], out[128], err[128], prog[128], line[128], msg[256];
    const char *bin = getenv("BIN") != NULL ? getenv("BIN") : "bin";

    if (gr_test_router_paths(&rt, "media") != 0)
        return -1;
    snprintf(tmpdir, sizeof(tmpdir), "%s", rt.dir);
    snprintf(conf, sizeof(conf), "%s/mock.conf", tmpdir);
    snprintf(out, sizeof(out), "%s/mock.out", tmpdir);
    snprintf(err, sizeof(err), "%s/mock.log", tmpdir);
    snprintf(prog, sizeof(prog), "%s/gemroute-mock", bin);
    write_file(conf, "projects = ( { name = \"p1\"; keys = [\"" KEY "\"];\n"
               "  limits = ( { model = \"" FLASH "\"; rpm = 1000; "
               "tpm = 10000000; }, { model = \"" G3 "\"; rpm = 1000; "
               "tpm = 10000000; } ); } );\n");
    mock_pid = fork();
    if (mock_pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execl(prog, prog, "-c", conf, "--listen", "127.0.0.1:0",
              (char *)NULL);
        _exit(127);
    }
    while (mock_port == 0) {        /* the watchdog bounds this */
        FILE *f = fopen(out, "r");

        if (f != NULL) {
            if (fgets(line, sizeof(line), f) != NULL)
                sscanf(line, "listening on 127.0.0.1:%d", &mock_port);
            fclose(f);
        }
        if (waitpid(mock_pid, NULL, WNOHANG) != 0)
            return -1;
        if (mock_port == 0)
            sleep_ms(5);
    }
    write_file(rt.conf, "router = { shm = \"%s\"; base_url = "
               "\"http://127.0.0.1:%d\"; max_models = 2; headroom = 1.0; "
               "batch_calls = 1; };\nmodels = ( { name = \"" FLASH "\"; "
               "rpm = 1000; tpm = 10000000; }, { name = \"" G3 "\"; "
               "rpm = 1000; tpm = 10000000; } );\nprojects = ( { name = "
               "\"p1\"; key = \"" KEY "\"; } );\n", rt.shm, mock_port);
    snprintf(line, sizeof(line), "%s/router.log", tmpdir);
    rt.pid = gr_test_router_start(rt.conf, rt.shm, line);
    if (rt.pid <= 0)
        return -1;
    g = gr_open(rt.shm, msg, sizeof(msg));
    return g != NULL ? 0 : -1;
}

static int
stop_all(void)
{
    gr_close(g);
    if (mock_pid > 0) {
        kill(mock_pid, SIGTERM);
        waitpid(mock_pid, NULL, 0);
    }
    return gr_test_router_end(&rt);
}

/* The mock's /mock/stats count_tokens_calls of p1's FLASH. */
static long
count_calls(void)
{
    struct sockaddr_in a;
    static char buf[1 << 16];
    const char *req = "GET /mock/stats HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t got = 0;
    ssize_t n;
    char *at;
    long v = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)mock_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(fd, req, strlen(req)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while (got + 1 < sizeof(buf) &&
           (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    at = strstr(buf, "\"count_tokens_calls\"");
    if (at != NULL)
        sscanf(strchr(at, ':') + 1, " %ld", &v);
    return v;
}

/* Upload bytes through the library (the resumable protocol); the new
 * file's name into name. */
struct up {
    char url[512];
};

static int
on_header(void *arg, const char *line, size_t len)
{
    struct up *u = arg;
    const char *h = "x-goog-upload-url: ";

    if (len > strlen(h) && strncasecmp(line, h, strlen(h)) == 0) {
        const char *p = strstr(line + strlen(h), "/upload/");
        size_t n = p != NULL ? strcspn(p, "\r\n") : 0;

        if (n > 0 && n < sizeof(u->url)) {
            memcpy(u->url, p, n);
            u->url[n] = '\0';
        }
    }
    return 0;
}

static int
upload(const unsigned char *bytes, size_t n, char *name, size_t nlen)
{
    struct gr_response r;
    struct gr_fwd f;
    struct up u = {""};
    char clen[80], project[GR_NAME_MAX];
    const char *start_h[] = {"X-Goog-Upload-Protocol: resumable",
                             "X-Goog-Upload-Command: start", clen,
                             "Content-Type: application/json", NULL};
    const char *fin_h[] = {"X-Goog-Upload-Command: upload, finalize",
                           "X-Goog-Upload-Offset: 0", NULL};
    const char *nm;
    int rc;

    snprintf(clen, sizeof(clen), "X-Goog-Upload-Header-Content-Length: %zu",
             n);
    memset(&f, 0, sizeof(f));
    f.kind = GR_FWD_FREE;
    f.model = FLASH;
    f.path = "/upload/v1beta/files";
    f.body = "{\"file\":{\"display_name\":\"media\"}}";
    f.len = strlen(f.body);
    f.headers = start_h;
    f.on_header = on_header;
    f.arg = &u;
    rc = gr_forward(g, &f, NULL, &r);
    snprintf(project, sizeof(project), "%s", r.project);
    gr_response_free(&r);
    if (rc != GR_OK || u.url[0] == '\0')
        return -1;
    memset(&f, 0, sizeof(f));
    f.kind = GR_FWD_FREE;
    f.model = FLASH;
    f.path = u.url;
    f.body = (const char *)bytes;
    f.len = n;
    f.headers = fin_h;
    f.project = project;
    rc = gr_forward(g, &f, NULL, &r);
    nm = r.body != NULL ? strstr(r.body, "\"files/") : NULL;
    if (rc == GR_OK && nm != NULL)
        snprintf(name, nlen, "%.*s", (int)strcspn(nm + 1, "\""), nm + 1);
    gr_response_free(&r);
    return rc == GR_OK && nm != NULL ? 0 : -1;
}

static int64_t
recorded(const char *name)
{
    int64_t t = -1;

    CU_ASSERT_EQUAL(gr_res_tokens(g, name, &t), 0);
    return t;
}

static void
generate_ok(const char *body)
{
    struct gr_response r;
    int rc = gr_generate(g, FLASH, body, NULL, &r);

    if (rc != GR_OK)
        fprintf(stderr, "\n    [generate: %s]\n", r.error);
    CU_ASSERT_EQUAL(rc, GR_OK);
    gr_response_free(&r);
}

static void
test_count_first(void)
{
    unsigned char *p;
    size_t n;
    char file[GR_RES_NAME_MAX] = "", body[1024], *r;
    long calls;

    CU_ASSERT_FATAL(g != NULL);
    /* Readable inline media: no countTokens. */
    p = mw_png(960, 540, &n);
    r = req_with("image/png", p, n, "", "");
    calls = count_calls();
    generate_ok(r);
    CU_ASSERT_EQUAL(count_calls(), calls);
    free(r);

    /* A format the client cannot read: countTokens first, every time
     * (inline data has no name to keep a count under). */
    r = req_with("image/heic", (const unsigned char *)"\0\0\0\x18" "ftypheic",
                 12, "", "");
    generate_ok(r);
    CU_ASSERT_EQUAL(count_calls(), calls + 1);
    generate_ok(r);
    CU_ASSERT_EQUAL(count_calls(), calls + 2);
    free(r);
    calls += 2;

    /* A file part: one countTokens, then the record's count. */
    CU_ASSERT_EQUAL_FATAL(upload(p, n, file, sizeof(file)), 0);
    free(p);
    CU_ASSERT_EQUAL(recorded(file), 0);     /* not known yet */
    snprintf(body, sizeof(body), "{\"contents\":[{\"parts\":[{\"text\":"
             "\"describe it\"},{\"fileData\":{\"fileUri\":\"%s\","
             "\"mimeType\":\"image/png\"}}]}]}", file);
    generate_ok(body);
    CU_ASSERT_EQUAL(count_calls(), calls + 1);
    /* the mock counts a file part 258; "describe it" 11 bytes, 3 */
    CU_ASSERT_EQUAL(recorded(file), 258);
    generate_ok(body);
    generate_ok(body);
    CU_ASSERT_EQUAL(count_calls(), calls + 1);
    calls++;

    /* Two files of unknown count in one request: the answer cannot be
     * split, so neither is recorded and the next call asks again. */
    {
        char f2[GR_RES_NAME_MAX] = "", f3[GR_RES_NAME_MAX] = "";

        p = mw_gif(10, 10, &n);
        CU_ASSERT_EQUAL_FATAL(upload(p, n, f2, sizeof(f2)), 0);
        CU_ASSERT_EQUAL_FATAL(upload(p, n, f3, sizeof(f3)), 0);
        free(p);
        snprintf(body, sizeof(body), "{\"contents\":[{\"parts\":["
                 "{\"fileData\":{\"fileUri\":\"%s\"}},{\"fileData\":"
                 "{\"fileUri\":\"%s\"}}]}]}", f2, f3);
        generate_ok(body);
        generate_ok(body);
        CU_ASSERT_EQUAL(count_calls(), calls + 2);
        CU_ASSERT_EQUAL(recorded(f2), 0);
        CU_ASSERT_EQUAL(recorded(f3), 0);
        calls += 2;
        /* One of them known: the other's count is the rest. */
        snprintf(body, sizeof(body), "{\"contents\":[{\"parts\":["
                 "{\"fileData\":{\"fileUri\":\"%s\"}},{\"fileData\":"
                 "{\"fileUri\":\"%s\"}}]}]}", file, f3);
        generate_ok(body);
        CU_ASSERT_EQUAL(count_calls(), calls + 1);
        CU_ASSERT_EQUAL(recorded(f3), 258);
        calls++;
    }

    /* The one unknown file's part is counted alone: its count is exact
     * even when the rest of the request is estimated wrong (the mock
     * does not count systemInstruction; the estimate does: 100 tokens
     * that a subtraction would have taken off the file). */
    {
        char f4[GR_RES_NAME_MAX] = "", sys[401];

        p = mw_png(100, 100, &n);
        CU_ASSERT_EQUAL_FATAL(upload(p, n, f4, sizeof(f4)), 0);
        free(p);
        memset(sys, 's', 400);
        sys[400] = '\0';
        snprintf(body, sizeof(body), "{\"systemInstruction\":{\"parts\":"
                 "[{\"text\":\"%s\"}]},\"contents\":[{\"parts\":["
                 "{\"fileData\":{\"fileUri\":\"%s\"}}]}]}", sys, f4);
        generate_ok(body);
        CU_ASSERT_EQUAL(count_calls(), calls + 1);
        CU_ASSERT_EQUAL(recorded(f4), 258);
        calls++;
    }

    /* A fileData that is no Files API file (YouTube): only Google can
     * count it, every time. */
    generate_ok("{\"contents\":[{\"parts\":[{\"fileData\":{\"fileUri\":"
                "\"https://www.youtube.com/watch?v=9hE5-98ZeCg\"}}]}]}");
    CU_ASSERT_EQUAL(count_calls(), calls + 1);
    calls++;

    /* A cache made through the library: its size comes with it. */
    {
        struct gr_response cr;
        struct gr_fwd f;
        struct gr_shm_restab res;
        char cache[GR_RES_NAME_MAX] = "", err[256], text[402];
        const char *nm;

        memset(text, 'c', 400);
        text[400] = '\0';
        snprintf(body, sizeof(body), "{\"model\":\"models/" FLASH "\","
                 "\"contents\":[{\"parts\":[{\"text\":\"%s\"}]}],"
                 "\"ttl\":\"600s\"}", text);
        memset(&f, 0, sizeof(f));
        f.kind = GR_FWD_FREE;
        f.model = FLASH;
        f.path = "/v1beta/cachedContents";
        f.body = body;
        f.len = strlen(body);
        CU_ASSERT_EQUAL(gr_forward(g, &f, NULL, &cr), GR_OK);
        nm = cr.body != NULL ? strstr(cr.body, "\"cachedContents/") : NULL;
        CU_ASSERT_FATAL(nm != NULL);
        snprintf(cache, sizeof(cache), "%.*s", (int)strcspn(nm + 1, "\""),
                 nm + 1);
        gr_response_free(&cr);
        CU_ASSERT_EQUAL(recorded(cache), 100);      /* 400 bytes / 4 */
        snprintf(body, sizeof(body), "{\"cachedContent\":\"%s\","
                 "\"contents\":[{\"parts\":[{\"text\":\"and so?\"}]}]}",
                 cache);
        generate_ok(body);
        CU_ASSERT_EQUAL(count_calls(), calls);

        /* Forgotten size (a cache another tool made): one countTokens,
         * whose cachedContentTokenCount the record keeps. */
        CU_ASSERT_EQUAL_FATAL(gr_shm_res_attach(rt.shm, true, &res, err,
                                                sizeof(err)), 0);
        CU_ASSERT_EQUAL(gr_shm_res_set_tokens(&res, cache, 0, 1), 0);
        CU_ASSERT_EQUAL(recorded(cache), 0);
        generate_ok(body);
        CU_ASSERT_EQUAL(count_calls(), calls + 1);
        CU_ASSERT_EQUAL(recorded(cache), 100);
        generate_ok(body);
        CU_ASSERT_EQUAL(count_calls(), calls + 1);
        gr_shm_res_detach(&res);
    }
}

/* ---- the benchmark: estimate against the mock's count ------------------ */

struct item {
    const char *name, *mime, *part, *top;
    unsigned char *p;
    size_t n;
    bool visual;                    /* image or PDF: the 10% target */
};

static void
test_bench_table(void)
{
    struct item it[16];
    size_t k = 0, i;
    unsigned bad = 0;

    CU_ASSERT_FATAL(g != NULL);
#define ITEM(nm, mt, pt, tp, vis, mk)                                   \
    do {                                                                \
        it[k].name = nm;                                                \
        it[k].mime = mt;                                                \
        it[k].part = pt;                                                \
        it[k].top = tp;                                                 \
        it[k].visual = vis;                                             \
        it[k].p = mk;                                                   \
        k++;                                                            \
    } while (0)
    ITEM("PNG 256x256", "image/png", "", "", true,
         mw_png(256, 256, &it[k].n));
    ITEM("PNG 960x540", "image/png", "", "", true,
         mw_png(960, 540, &it[k].n));
    ITEM("PNG 4000x3000", "image/png", "", "", true,
         mw_png(4000, 3000, &it[k].n));
    ITEM("JPEG 1920x1080, 60 kB EXIF", "image/jpeg", "", "", true,
         mw_jpeg(1920, 1080, 60000, &it[k].n));
    ITEM("JPEG 3024x4032, LOW", "image/jpeg", "", "\"generationConfig\":"
         "{\"mediaResolution\":\"MEDIA_RESOLUTION_LOW\"},", true,
         mw_jpeg(3024, 4032, 0, &it[k].n));
    ITEM("WebP VP8 1024x768", "image/webp", "", "", true,
         mw_webp(' ', 1024, 768, &it[k].n));
    ITEM("WebP VP8L 300x200", "image/webp", "", "", true,
         mw_webp('L', 300, 200, &it[k].n));
    ITEM("GIF 500x500", "image/gif", "", "", true,
         mw_gif(500, 500, &it[k].n));
    ITEM("PDF 1 page", "application/pdf", "", "", true,
         mw_pdf(1, &it[k].n));
    ITEM("PDF 40 pages", "application/pdf", "", "", true,
         mw_pdf(40, &it[k].n));
    ITEM("WAV 30 s", "audio/wav", "", "", false,
         mw_wav(8000, 30000, &it[k].n));
    ITEM("MP3 12 s CBR", "audio/mpeg", "", "", false,
         mw_mp3(12000, 0, &it[k].n));
    ITEM("MP4 95 s (moov last)", "video/mp4", "", "", false,
         mw_mp4(1000, 95000, 0, 0, 200000, &it[k].n));
    ITEM("HEIC (not read: 258)", "image/heic", "", "", false,
         malloc(12));
    memcpy(it[k - 1].p, "\0\0\0\x18" "ftypheic", 12);
    it[k - 1].n = 12;
#undef ITEM
    printf("\n| request (+ 13 bytes of text) | before (258 per image) | "
           "2.5: estimate | 2.5: mock | error | 3: estimate | 3: mock | "
           "error |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < k; i++) {
        char *r = req_with(it[i].mime, it[i].p, it[i].n, it[i].part,
                           it[i].top);
        const char *model[2] = {FLASH, G3};
        struct gr_response out;
        struct gr_est e;
        int64_t est[2], cnt[2];
        double err[2];
        int m;

        gr_est_read(r, strlen(r), &e);
        for (m = 0; m < 2; m++) {
            est[m] = gr_est_tokens(&e, model[m]);
            CU_ASSERT_EQUAL(gr_count_tokens(g, model[m], r, NULL, &out),
                            GR_OK);
            cnt[m] = out.usage.prompt;
            gr_response_free(&out);
            err[m] = cnt[m] > 0 ? 100.0 * (double)(est[m] - cnt[m]) /
                                      (double)cnt[m]
                                : 100.0;
            if (it[i].visual && (err[m] > 10.0 || err[m] < -10.0))
                bad++;
        }
        /* the rule this replaced: text / 4 + 258 per image part */
        printf("| %s | %lld | %lld | %lld | %+.1f%% | %lld | %lld | "
               "%+.1f%% |\n", it[i].name,
               (long long)((e.text_bytes + 3) / 4 + 258 * e.images),
               (long long)est[0], (long long)cnt[0], err[0],
               (long long)est[1], (long long)cnt[1], err[1]);
        free(r);
        free(it[i].p);
    }
    CU_ASSERT_EQUAL(bad, 0);        /* within 10% on images and PDFs */
}

int
main(void)
{
    CU_TestInfo readers[] = {
        {"images", test_images},
        {"pdf_audio_video", test_pdf_audio_video},
        {"damaged", test_damaged},
        {"rules", test_rules},
        {"requests", test_requests},
        {"part_body", test_part_body},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo routed[] = {
        {"count_first", test_count_first},
        {"bench_table", test_bench_table},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"media", NULL, NULL, NULL, NULL, readers},
        {"media_routed", start_all, stop_all, NULL, NULL, routed},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_media", suites, 120);
}
