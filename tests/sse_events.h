/*
 * sse_events.h - stream events the tests of a cut stream share: two
 * events of one answer (the second final), an event cut in its middle,
 * and a callback that counts the events handed over and which of them
 * are not one whole JSON value.  Test code only.
 */
#ifndef GR_TEST_SSE_EVENTS_H
#define GR_TEST_SSE_EVENTS_H

#include <json.h>
#include <stddef.h>

#define EV1 "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": " \
            "\"Hel\"}],\"role\": \"model\"},\"index\": 0}]," \
            "\"usageMetadata\": {\"promptTokenCount\": 7," \
            "\"candidatesTokenCount\": 1,\"totalTokenCount\": 8}}"
#define EV2 "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": " \
            "\"lo\"}],\"role\": \"model\"},\"finishReason\": \"STOP\"," \
            "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 7," \
            "\"candidatesTokenCount\": 2,\"totalTokenCount\": 9}}"
#define CUT "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": " \
            "\"lo\"}],\"role\": \"model\"},\"finishReason\": \"STOP\"," \
            "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9"

struct seen {
    int n;              /* events handed over */
    int bad;            /* of which not one whole JSON value */
};

static inline int
whole(const char *s, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    int ok = o != NULL && json_tokener_get_error(tok) ==
                              json_tokener_success &&
             json_tokener_get_parse_end(tok) == len;

    json_object_put(o);
    json_tokener_free(tok);
    return ok;
}

static inline int
count_event(void *arg, const char *data, size_t len)
{
    struct seen *s = arg;

    s->n++;
    if (!whole(data, len))
        s->bad++;
    return 0;
}

#endif
