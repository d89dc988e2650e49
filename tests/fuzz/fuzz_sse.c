/*
 * fuzz_sse.c - libFuzzer harness for the SSE parser: any bytes, cut into
 * chunks anywhere, give exactly the events and usage the same bytes give
 * when fed whole, and never a crash or a read past a chunk.
 *
 * The first two input bytes seed the chunk sizes; the rest is the stream.
 * Build and run (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Iclient -Ishm $(pkg-config --cflags json-c) \
 *       tests/fuzz/fuzz_sse.c client/response.c \
 *       -o build/fuzz/fuzz_sse $(pkg-config --libs json-c)
 *   build/fuzz/fuzz_sse -dict=tests/fuzz/gemini.dict -max_total_time=60 \
 *       build/fuzz/corpus_sse build/fuzz/seed_sse
 */
#include "response_priv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a run saw: the count and an FNV-1a hash of every event's data. */
struct seen {
    uint64_t n;
    uint64_t hash;
};

static int
on_event(void *arg, const char *data, size_t len)
{
    struct seen *s = arg;
    size_t i;

    if (data[len] != '\0')
        abort();
    s->n++;
    s->hash ^= len;
    for (i = 0; i < len; i++)
        s->hash = (s->hash ^ (unsigned char)data[i]) * 1099511628211u;
    s->hash = (s->hash ^ 0xff) * 1099511628211u;   /* event separator */
    return 0;
}

static int
run(const uint8_t *data, size_t size, unsigned seed, struct seen *s,
    struct gr_sse *p)
{
    size_t at = 0;
    int rc = 0;

    memset(s, 0, sizeof(*s));
    s->hash = 1469598103934665603u;
    gr_sse_init(p);
    while (at < size && rc == 0) {
        size_t n = size - at;
        char *chunk;

        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            n = 1 + (seed >> 16) % 17;
            if (n > size - at)
                n = size - at;
        }
        /* exactly n bytes: ASan sees any read past the chunk */
        if ((chunk = malloc(n)) == NULL)
            abort();
        memcpy(chunk, data + at, n);
        rc = gr_sse_feed(p, chunk, n, on_event, s);
        free(chunk);
        at += n;
    }
    if (rc == 0)
        rc = gr_sse_finish(p, on_event, s);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gr_sse whole, cut;
    struct seen a, b;
    unsigned seed;
    int ra, rb;

    if (size < 2)
        return 0;
    seed = (unsigned)data[0] << 8 | data[1] | 1u;
    data += 2;
    size -= 2;
    ra = run(data, size, 0, &a, &whole);
    rb = run(data, size, seed, &b, &cut);
    if (ra != rb || a.n != b.n || a.hash != b.hash ||
        whole.have_usage != cut.have_usage ||
        memcmp(&whole.usage, &cut.usage, sizeof(whole.usage)) != 0 ||
        whole.error_code != cut.error_code || whole.events != a.n)
        abort();
    gr_sse_free(&whole);
    gr_sse_free(&cut);
    return 0;
}
