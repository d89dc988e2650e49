/*
 * spend.c - what a generateContent request allows itself to cost: the
 * most output tokens it may produce (generationConfig.maxOutputTokens
 * times candidateCount), which a spend reservation prices as the worst
 * case (docs/CLIENT.md, "Spend caps").  Read only when a cap is set.
 */
#include "client_priv.h"
#include "json_priv.h"

#include <json.h>
#include <string.h>

#define CANDIDATES_MAX 8        /* Google's candidateCount limit */

int64_t
gr_spend_max_out(struct gr *g, const char *body, size_t len)
{
    struct json_object *root, *gc, *v;
    int64_t n = -1, k = 1;

    /* relaxed: a setting, one word read on its own */
    if (g == NULL || body == NULL || len == 0 || len > (size_t)INT32_MAX ||
        atomic_load_explicit(&g->t.hdr->spend_on, memory_order_relaxed) == 0)
        return -1;
    if (memmem(body, len, "axOutputTokens", 14) == NULL &&
        memmem(body, len, "max_output_tokens", 17) == NULL)
        return -1;                  /* none set: the model's maximum */
    root = gr_json_parse(body, len, 0, 0, NULL);
    gc = gr_json_member2(root, "generationConfig", "generation_config",
                         GR_JSON_OBJECT);
    v = gr_json_member2(gc, "maxOutputTokens", "max_output_tokens",
                        GR_JSON_INT);
    if (v != NULL && json_object_get_int64(v) > 0)
        n = json_object_get_int64(v);
    v = gr_json_member2(gc, "candidateCount", "candidate_count",
                        GR_JSON_INT);
    if (v != NULL && json_object_get_int64(v) > 1)
        k = json_object_get_int64(v) > CANDIDATES_MAX
                ? CANDIDATES_MAX : json_object_get_int64(v);
    json_object_put(root);
    if (n > INT32_MAX)
        n = INT32_MAX;
    return n > 0 ? n * k : -1;
}
