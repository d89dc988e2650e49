/*
 * fuzz_classify.c - libFuzzer harness for gr_classify(), gr_resp_usage()
 * and gr_resp_status(): any bytes, any status, never a crash, a read past
 * len, or a malformed verdict.
 *
 * The first input byte picks the HTTP status; the rest is the body, in a
 * buffer of exactly its length (no NUL after it).  Build and run (from
 * the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Iclient -Ishm $(pkg-config --cflags json-c) \
 *       tests/fuzz/fuzz_classify.c client/classify.c client/response.c \
 *       shm/clock.c -o build/fuzz/fuzz_classify $(pkg-config --libs json-c)
 *   build/fuzz/fuzz_classify -dict=tests/fuzz/gemini.dict \
 *       -max_total_time=60 build/fuzz/corpus_classify build/fuzz/seed_classify
 *
 * Seeds: each sample body with its status byte in front (the index of
 * its status in statuses[]: 0 for 429, 1 for 200, 2 for 400, ...).
 */
#include "gemroute.h"
#include "response_priv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int statuses[] = {429, 200, 400, 403, 404, 500, 503, 0,
                               401, 413, 504, 408, 302, -1, 999, 429};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gr_resp_usage u;
    struct gr_verdict v;
    char *body;
    int status, st, d;

    if (size == 0)
        return 0;
    status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
    size--;
    /* exactly size bytes: ASan sees any read past the body */
    body = malloc(size > 0 ? size : 1);
    if (body == NULL)
        return 0;
    memcpy(body, data + 1, size);

    gr_classify(status, body, size, INT64_C(1784145600), &v);
    if (v.status != status || v.n_quota_ids > GR_MAX_QUOTA_IDS ||
        memchr(v.reason, '\0', sizeof(v.reason)) == NULL ||
        v.reason[0] == '\0' || !(v.cooldown_s >= 0 && v.cooldown_s <= 90000) ||
        (v.dims & ~((1u << GR_NDIMS) - 1)) != 0 ||
        (unsigned)v.cls > GR_CLASS_UNKNOWN ||
        (unsigned)v.disable > GR_DISABLE_KEY ||
        (unsigned)v.cooldown_src > GR_COOL_MIDNIGHT)
        abort();
    /* the status decides the class; the body only refines it */
    if ((status == 429 && v.cls != GR_CLASS_QUOTA) ||
        (status == 503 && v.cls != GR_CLASS_OVERLOAD) ||
        (status == 404 && v.cls != GR_CLASS_MODEL) ||
        (status == 200 && v.cls != GR_CLASS_OK))
        abort();
    for (d = 0; d < GR_NDIMS; d++)
        if (v.learned[d] < -1)
            abort();
    for (d = 0; d < (int)v.n_quota_ids; d++)
        if (memchr(v.quota_ids[d], '\0', GR_QUOTA_ID_MAX) == NULL)
            abort();

    if (gr_resp_usage(body, size, &u) == 0 &&
        u.prompt_tokens < 0 && u.candidates_tokens < 0 &&
        u.thoughts_tokens < 0 && u.total_tokens < 0)
        abort();
    st = gr_resp_status(body, size);
    if (st != -1 && (st < 100 || st > 599))
        abort();
    free(body);
    return 0;
}
