/*
 * fuzz_json_scan.c - libFuzzer harness for client/json_scan.c and the
 * readers on it: on any bytes, the scanner never crashes or reads past
 * len, and whenever it answers, json-c answers the same.
 *
 *  - gr_json_find(): when it answers, json-c parses the bytes as an
 *    object; a member it found is json-c's member, value for value
 *    (json_object_equal of the span parsed alone), and one it did not
 *    find is not a member for json-c either.
 *  - gr_est_scan(): when it answers, it equals gr_est_tree() (json-c),
 *    field for field (media sizes, levels, files included);
 *    gr_est_read() always does.
 *
 * Build and run (from the repository root):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Iclient -Ishm $(pkg-config --cflags json-c) \
 *       tests/fuzz/fuzz_json_scan.c client/json_scan.c client/estimate.c \
 *       client/json.c client/media.c \
 *       -o build/fuzz/fuzz_json_scan $(pkg-config --libs json-c)
 *   build/fuzz/fuzz_json_scan -dict=tests/fuzz/gemini.dict \
 *       -max_total_time=60 build/fuzz/corpus_json_scan \
 *       build/fuzz/seed_json_scan
 */
#include "estimate_priv.h"
#include "json_scan.h"

#include <json.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every field of the estimate, media included. */
static bool
est_same(const struct gr_est *a, const struct gr_est *b)
{
    return a->text_bytes == b->text_bytes && a->images == b->images &&
           a->requests == b->requests && a->tiles == b->tiles &&
           a->unread == b->unread && a->files == b->files &&
           a->level == b->level &&
           memcmp(a->qty, b->qty, sizeof(a->qty)) == 0;
}

static struct json_object *
parse(const char *s, size_t n, int depth)
{
    struct json_tokener *tok = json_tokener_new_ex(depth);
    struct json_object *o;

    if (tok == NULL)
        abort();
    o = json_tokener_parse_ex(tok, s, (int)n);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* The scanner's member against json-c's. */
static void
check_member(const char *b, struct json_object *root,
             const struct gr_json_want *w)
{
    struct json_object *v = NULL, *alone;
    bool has = json_object_object_get_ex(root, w->key, &v);

    if (w->len == 0) {
        if (has)
            abort();
        return;
    }
    if (!has)
        abort();
    alone = parse(b + w->off, w->len, 128);
    /* a number alone at the end of the input is "continue" for json-c */
    if (alone == NULL && !json_object_is_type(v, json_type_int) &&
        !json_object_is_type(v, json_type_double))
        abort();
    if (alone != NULL && !json_object_equal(alone, v))
        abort();
    json_object_put(alone);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gr_json_want sub[] = {
        {"promptTokenCount", 16, NULL, 0, 0, 0},
        {"totalTokenCount", 15, NULL, 0, 0, 0},
    };
    struct gr_json_want w[] = {
        {"usageMetadata", 13, sub, 2, 0, 0},
        {"error", 5, NULL, 0, 0, 0},
        {"text", 4, NULL, 0, 0, 0},
    };
    struct gr_est s, t, r;
    char *b;

    if (size > (1u << 20))
        return 0;
    /* exactly size bytes: ASan sees any read past the input */
    b = malloc(size > 0 ? size : 1);
    if (b == NULL)
        return 0;
    memcpy(b, data, size);

    if (gr_json_find(b, size, w, 3) == 0) {
        struct json_object *root = parse(b, size, 128);
        size_t k;

        if (!json_object_is_type(root, json_type_object))
            abort();
        for (k = 0; k < 3; k++)
            check_member(b, root, &w[k]);
        if (w[0].len > 0 && b[w[0].off] == '{') {
            struct json_object *um;

            json_object_object_get_ex(root, "usageMetadata", &um);
            for (k = 0; k < 2; k++)
                check_member(b, um, &sub[k]);
        } else if (sub[0].len != 0 || sub[1].len != 0) {
            abort();
        }
        json_object_put(root);
    }

    gr_est_tree(b, size, &t);
    gr_est_read(b, size, &r);
    if (!est_same(&r, &t))
        abort();
    if (gr_est_scan(b, size, &s) == 0 && !est_same(&s, &t))
        abort();
    if (gr_est_tokens(&t, "gemini-2.5-flash") < 0 ||
        gr_est_tokens(&t, "gemini-3-pro") < 0)
        abort();
    free(b);
    return 0;
}
