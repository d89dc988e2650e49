/*
 * fuzz_h1_parse.c - libFuzzer harness for the HTTP/1.1 answer reader
 * (client/h1_parse.c): any bytes, read as answers one after another the
 * way a kept connection carries them, cut into pieces anywhere, give
 * exactly the verdicts, head lines and body the same bytes give fed
 * whole; never a crash, a read past a piece, a head line not whole, an
 * empty or copied body piece, or a feed that takes a wrong count.
 *
 * The first input byte is the mode: bit 0 says the requests were HEAD,
 * bits 1-2 pick the largest piece (1, 3, 17 or 257 bytes), bit 3 makes
 * 0xff N stand for the byte before it 64 * N more times (so that short
 * inputs reach GR_H1P_LINE_MAX and GR_H1P_HEAD_MAX), and the byte seeds
 * the piece sizes.  The rest is what the server sent.
 * Build and run (from the repository root; tools/fuzz.sh seeds it):
 *
 *   make build/fuzz/fuzz_h1_parse
 *   build/fuzz/fuzz_h1_parse -dict=tests/fuzz/http1.dict \
 *       -max_total_time=60 build/fuzz/corpus_h1_parse build/fuzz/seed_h1_parse
 */
#include "h1_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a run saw: FNV-1a hashes of the head lines, of the body, and of
 * each answer's end (its status and keep), and their counts. */
struct seen {
    uint64_t head, body, ends;
    uint64_t head_lines, body_bytes, answers;
    int rc;
    const char *piece;          /* the buffer being fed */
    size_t piece_len;
};

static uint64_t
fnv(uint64_t h, const void *s, size_t len)
{
    const unsigned char *b = s;
    size_t i;

    for (i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return h;
}

static int
on_head_line(void *arg, const char *line, size_t len)
{
    struct seen *s = arg;

    if (len == 0 || len > GR_H1P_LINE_MAX || line[len - 1] != '\n' ||
        memchr(line, '\n', len - 1) != NULL)
        abort();
    s->head = fnv(s->head, line, len);
    s->head_lines++;
    return 0;
}

static int
on_body(void *arg, const char *p, size_t len)
{
    struct seen *s = arg;

    /* in place: inside the piece being fed, never empty */
    if (len == 0 || p < s->piece || len > s->piece_len ||
        p > s->piece + (s->piece_len - len))
        abort();
    s->body = fnv(s->body, p, len);
    s->body_bytes += len;
    return 0;
}

static const struct gr_h1p_cb cbs = {on_head_line, on_body};

static void
answer_done(struct seen *s, const struct gr_h1p *p)
{
    int v[2] = {p->status, gr_h1p_keep(p)};

    s->ends = fnv(s->ends, v, sizeof(v));
    s->answers++;
}

/* max 0: all at once; else pieces of 1 to max bytes from seed. */
static void
run(const uint8_t *data, size_t size, bool head, unsigned seed,
    size_t max, struct seen *s)
{
    static struct gr_h1p p;
    size_t at = 0;

    memset(s, 0, sizeof(*s));
    s->head = s->body = s->ends = 1469598103934665603u;
    gr_h1p_init(&p, head);
    while (at < size) {
        size_t n = size - at;
        ssize_t got;
        char *piece;

        if (max != 0) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % max;
            if (n > size - at)
                n = size - at;
        }
        /* exactly n bytes: ASan sees any read past the piece */
        if ((piece = malloc(n)) == NULL)
            abort();
        memcpy(piece, data + at, n);
        s->piece = piece;
        s->piece_len = n;
        got = gr_h1p_feed(&p, piece, n, &cbs, s);
        if (got < 0) {
            free(piece);
            s->rc = (int)got;
            /* the error sticks */
            if (gr_h1p_feed(&p, "x", 1, &cbs, s) != got ||
                gr_h1p_eof(&p, &cbs, s) != got || gr_h1p_keep(&p))
                abort();
            return;
        }
        if (got == 0 || (size_t)got > n || ((size_t)got < n && !p.done) ||
            p.line_len > GR_H1P_LINE_MAX || p.head_bytes > GR_H1P_HEAD_MAX)
            abort();
        if (p.done) {
            /* the rest is the next answer's, not this one's */
            if (gr_h1p_feed(&p, piece + got, n - (size_t)got, &cbs, s) != 0)
                abort();
            answer_done(s, &p);
            gr_h1p_init(&p, head);
        }
        free(piece);
        at += (size_t)got;
    }
    s->rc = gr_h1p_eof(&p, &cbs, s);
    if (s->rc == GR_H1P_OK) {
        if (!p.done)
            abort();
        answer_done(s, &p);
    }
}

#define STRETCH_MAX (256 * 1024)

/* d with every 0xff N replaced by 64 * N copies of the byte before it,
 * up to STRETCH_MAX bytes in all; malloc'd. */
static uint8_t *
stretch(const uint8_t *d, size_t n, size_t *len)
{
    uint8_t *out = malloc(STRETCH_MAX), last = 'a';
    size_t i, k = 0, r;

    if (out == NULL)
        abort();
    for (i = 0; i < n && k < STRETCH_MAX; i++) {
        if (d[i] != 0xff || i + 1 == n) {
            out[k++] = last = d[i];
            continue;
        }
        r = 64 * (size_t)d[++i];
        if (r > STRETCH_MAX - k)
            r = STRETCH_MAX - k;
        memset(out + k, last, r);
        k += r;
    }
    *len = k;
    return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t max[4] = {1, 3, 17, 257};
    struct seen whole, cut;
    uint8_t *big = NULL, mode;
    bool head;

    if (size < 1)
        return 0;
    mode = data[0];
    head = (mode & 1) != 0;
    data++;
    size--;
    if ((mode & 8) != 0)
        data = big = stretch(data, size, &size);
    run(data, size, head, 0, 0, &whole);
    run(data, size, head, mode, max[(mode >> 1) & 3], &cut);
    if (whole.rc != cut.rc || whole.head != cut.head ||
        whole.body != cut.body || whole.ends != cut.ends ||
        whole.head_lines != cut.head_lines ||
        whole.body_bytes != cut.body_bytes || whole.answers != cut.answers)
        abort();
    free(big);
    return 0;
}
