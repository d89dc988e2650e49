/*
 * test_response.c - client/response.c: the usage of a successful answer
 * (gr_resp_usage; checked against json-c at every cut of every fixture in
 * test_json_scan.c), the status an answer's body states (gr_resp_status),
 * and the SSE parser, including every way of cutting a stream in two.
 *
 * Bodies are handed to the code under test in heap buffers of exactly
 * their length, without a NUL, so a read past len is a crash under ASan
 * and an error under valgrind rather than a silent pass.
 */
#include "gemroute.h"
#include "response_priv.h"
#include "sse_events.h"
#include "testlib.h"

#include <json.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fixture that must be there. */
static char *
fixture(const char *name, size_t *len)
{
    char *buf = gr_test_fixture(name, len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    return buf;
}

/* gr_resp_status() of s, from an exact-size buffer */
static int
status_of(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, s, len);
    rc = gr_resp_status(copy, len);
    free(copy);
    return rc;
}


/* --- usage and the SSE parser -------------------------------------------- */

static int
usage_n(const char *body, size_t len, struct gr_resp_usage *u)
{
    char *copy = malloc(len > 0 ? len : 1);
    int rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, body, len);
    rc = gr_resp_usage(copy, len, u);
    free(copy);
    return rc;
}

static void
test_usage_of_bodies(void)
{
    struct gr_resp_usage u;
    size_t len = 0;
    char *sample = fixture("200-generate-content.json", &len);
    const char *body;

    CU_ASSERT_PTR_NOT_NULL_FATAL(sample);
    CU_ASSERT_EQUAL(usage_n(sample, len, &u), 0);
    CU_ASSERT_EQUAL(u.prompt_tokens, 8);
    CU_ASSERT_EQUAL(u.candidates_tokens, 12);
    CU_ASSERT_EQUAL(u.thoughts_tokens, -1);
    CU_ASSERT_EQUAL(u.total_tokens, 20);
    free(sample);

    /* an array of chunks: the last usage, field by field */
    body = "[{\"usageMetadata\": {\"promptTokenCount\": 5, "
           "\"candidatesTokenCount\": 1, \"thoughtsTokenCount\": 100}}, "
           "{\"candidates\": []}, {\"usageMetadata\": {\"promptTokenCount\": "
           "5, \"candidatesTokenCount\": 44, \"totalTokenCount\": \"235\"}}]";
    CU_ASSERT_EQUAL(usage_n(body, strlen(body), &u), 0);
    CU_ASSERT_EQUAL(u.prompt_tokens, 5);
    CU_ASSERT_EQUAL(u.candidates_tokens, 44);
    CU_ASSERT_EQUAL(u.thoughts_tokens, 100);
    CU_ASSERT_EQUAL(u.total_tokens, 235);

    CU_ASSERT_EQUAL(usage_n("{\"candidates\": []}", 18, &u), -ENOENT);
    CU_ASSERT_EQUAL(u.prompt_tokens, -1);
    CU_ASSERT_EQUAL(usage_n("nope", 4, &u), -EINVAL);
    CU_ASSERT_EQUAL(gr_resp_usage(NULL, 0, &u), -EINVAL);
    body = "{\"usageMetadata\": {\"promptTokenCount\": -3, "
           "\"totalTokenCount\": 1.5, \"candidatesTokenCount\": {}}}";
    CU_ASSERT_EQUAL(usage_n(body, strlen(body), &u), -ENOENT);
    CU_ASSERT_EQUAL(u.prompt_tokens, -1);
    /* cut before the end: not JSON, so unknown, never a guess */
    body = "{\"usageMetadata\": {\"promptTokenCount\": 12";
    CU_ASSERT_EQUAL(usage_n(body, strlen(body), &u), -EINVAL);
    CU_ASSERT_EQUAL(u.prompt_tokens, -1);
}

/* Bodies over the whole-parse size: the usage is found from the end. */
static void
test_usage_of_huge_body(void)
{
    static const char head[] =
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"fake "
        "\\\"usageMetadata\\\": {\\\"promptTokenCount\\\": 1}\"}, "
        "{\"inlineData\": {\"data\": \"";
    static const char tail[] =
        "\"}}]}}], \"usageMetadata\" : {\"promptTokenCount\": 1290, "
        "\"candidatesTokenCount\": 1290, \"totalTokenCount\": 2580}, "
        "\"modelVersion\": \"x\\\"usageMetadata\\\": {\\\"promptTokenCount"
        "\\\": 999}\"}";
    size_t big = (6u << 20), len;
    char *body = malloc(big);
    struct gr_resp_usage u;

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    memset(body, 'A', big);
    memcpy(body, head, sizeof(head) - 1);
    len = big;
    memcpy(body + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    CU_ASSERT_EQUAL(gr_resp_usage(body, len, &u), 0);
    CU_ASSERT_EQUAL(u.prompt_tokens, 1290);
    CU_ASSERT_EQUAL(u.total_tokens, 2580);
    /* the same body within the whole-parse size gives the same */
    memmove(body + (1u << 20) - (sizeof(tail) - 1), tail, sizeof(tail) - 1);
    CU_ASSERT_EQUAL(gr_resp_usage(body, 1u << 20, &u), 0);
    CU_ASSERT_EQUAL(u.prompt_tokens, 1290);
    /* none at all */
    memset(body + 100, 'B', big - 100);
    CU_ASSERT_EQUAL(gr_resp_usage(body, big, &u), -ENOENT);
    free(body);
}

struct events {
    unsigned n;
    char data[8][1024];
    size_t len[8];
    int stop_at;            /* stop (return -1) on this event; 0 = never */
};

static int
on_event(void *arg, const char *data, size_t len)
{
    struct events *ev = arg;

    CU_ASSERT_EQUAL(data[len], '\0');
    if (ev->n < 8) {
        size_t cap = sizeof(ev->data[0]) - 1, n = len < cap ? len : cap;

        memcpy(ev->data[ev->n], data, n);
        ev->data[ev->n][n] = '\0';
        ev->len[ev->n] = len;
    }
    ev->n++;
    return (ev->stop_at != 0 && (int)ev->n == ev->stop_at) ? -1 : 0;
}

/* Feed body cut at the given points, then finish. */
static int
feed_cuts(const char *body, size_t len, const size_t *cuts, size_t ncuts,
          struct events *ev, struct gr_sse *p)
{
    size_t at = 0, i;
    int rc = 0;

    memset(ev, 0, sizeof(*ev));
    gr_sse_init(p);
    for (i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        char *chunk = malloc(end - at + 1);

        CU_ASSERT_PTR_NOT_NULL_FATAL(chunk);
        memcpy(chunk, body + at, end - at);     /* exact-size chunk */
        rc = gr_sse_feed(p, chunk, end - at, on_event, ev);
        free(chunk);
        at = end;
    }
    if (rc == 0)
        rc = gr_sse_finish(p, on_event, ev);
    return rc;
}

/* A copy of s with every "\n" replaced by eol. */
static char *
with_eol(const char *s, size_t len, const char *eol, size_t *outlen)
{
    size_t n = 0, i, el = strlen(eol);
    char *out = malloc(len * el + 1);

    for (i = 0; i < len; i++) {
        if (s[i] == '\n') {
            memcpy(out + n, eol, el);
            n += el;
        } else {
            out[n++] = s[i];
        }
    }
    *outlen = n;
    return out;
}

static void
test_sse_every_cut(void)
{
    static const char *const eols[] = {"\n", "\r\n", "\r"};
    struct events ref, ev;
    struct gr_sse p;
    size_t len = 0, e, cut, bad = 0;
    char *orig = fixture("200-stream-sse-thinking.txt", &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
    CU_ASSERT_EQUAL(feed_cuts(orig, len, NULL, 0, &ref, &p), 0);
    CU_ASSERT_EQUAL(ref.n, 2);
    CU_ASSERT(strncmp(ref.data[0], "{\"candidates\"", 13) == 0);
    CU_ASSERT(ref.data[1][ref.len[1] - 1] == '}');
    CU_ASSERT(p.have_usage);
    CU_ASSERT_EQUAL(p.usage.prompt_tokens, 5);
    CU_ASSERT_EQUAL(p.usage.candidates_tokens, 44);
    CU_ASSERT_EQUAL(p.usage.thoughts_tokens, 186);
    CU_ASSERT_EQUAL(p.usage.total_tokens, 235);
    CU_ASSERT_EQUAL(p.error_code, 0);
    gr_sse_free(&p);

    for (e = 0; e < 3; e++) {
        size_t blen = 0;
        char *body = with_eol(orig, len, eols[e], &blen);

        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        /* one cut at every byte boundary */
        for (cut = 0; cut <= blen; cut++) {
            int rc = feed_cuts(body, blen, &cut, 1, &ev, &p);

            if (rc != 0 || ev.n != 2 || ev.len[0] != ref.len[0] ||
                ev.len[1] != ref.len[1] ||
                strcmp(ev.data[0], ref.data[0]) != 0 ||
                strcmp(ev.data[1], ref.data[1]) != 0 ||
                p.usage.prompt_tokens != 5 || p.usage.total_tokens != 235 ||
                p.usage.thoughts_tokens != 186 ||
                p.usage.candidates_tokens != 44)
                bad++;
            gr_sse_free(&p);
        }
        /* and byte by byte */
        {
            size_t *cuts = malloc(blen * sizeof(*cuts));

            for (cut = 0; cut < blen; cut++)
                cuts[cut] = cut;
            CU_ASSERT_EQUAL(feed_cuts(body, blen, cuts, blen, &ev, &p), 0);
            CU_ASSERT_EQUAL(ev.n, 2);
            CU_ASSERT_STRING_EQUAL(ev.data[1], ref.data[1]);
            CU_ASSERT_EQUAL(p.usage.total_tokens, 235);
            gr_sse_free(&p);
            free(cuts);
        }
        /* with a closing blank line, finish has nothing left to do */
        {
            size_t tlen = 0;
            char *closed = malloc(blen + 2);

            memcpy(closed, body, blen);
            memcpy(closed + blen, eols[e], strlen(eols[e]));
            tlen = blen + strlen(eols[e]);
            for (cut = 0; cut <= tlen; cut++) {
                memset(&ev, 0, sizeof(ev));
                gr_sse_init(&p);
                CU_ASSERT_EQUAL(gr_sse_feed(&p, closed, cut, on_event, &ev), 0);
                CU_ASSERT_EQUAL(gr_sse_feed(&p, closed + cut, tlen - cut,
                                            on_event, &ev), 0);
                if (ev.n != 2)
                    bad++;
                CU_ASSERT_EQUAL(gr_sse_finish(&p, on_event, &ev), 0);
                if (ev.n != 2)
                    bad++;
                gr_sse_free(&p);
            }
            free(closed);
        }
        free(body);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(orig);
}

/* Random cuts of a stream with every feature: many chunks each time. */
static void
test_sse_random_cuts(void)
{
    static const char body[] =
        ": keep-alive comment\r\n"
        "event: message\r\n"
        "id: 1\r\n"
        "data: {\"usageMetadata\": {\"promptTokenCount\": 3}}\r\n"
        "\r\n"
        ":another comment with data: in it\n"
        "data:line one\n"
        "data\n"
        "data:  two spaces\n"
        "retry: 100\n"
        "\n"
        "\n\n\r\n"
        "data: {\"error\": {\"code\": 500, \"message\": \"x\"}}\r"
        "\r"
        "data: {\"usageMetadata\": {\"promptTokenCount\": 7, "
        "\"totalTokenCount\": 9}}\n\n";
    size_t len = sizeof(body) - 1, cuts[16], i, k, bad = 0;
    unsigned seed = 12345;
    struct events ev;
    struct gr_sse p;

    for (i = 0; i < 3000; i++) {
        size_t n = 1 + i % 15;

        for (k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            cuts[k] = (seed >> 8) % (len + 1);
        }
        /* sort the cuts */
        for (k = 1; k < n; k++) {
            size_t x = cuts[k], j = k;

            for (; j > 0 && cuts[j - 1] > x; j--)
                cuts[j] = cuts[j - 1];
            cuts[j] = x;
        }
        if (feed_cuts(body, len, cuts, n, &ev, &p) != 0 || ev.n != 4 ||
            strcmp(ev.data[0], "{\"usageMetadata\": {\"promptTokenCount\": "
                               "3}}") != 0 ||
            strcmp(ev.data[1], "line one\n\n two spaces") != 0 ||
            strncmp(ev.data[2], "{\"error\"", 8) != 0 ||
            p.usage.prompt_tokens != 7 || p.usage.total_tokens != 9 ||
            p.error_code != 500 || p.events != 4)
            bad++;
        gr_sse_free(&p);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void
test_sse_limits_and_stop(void)
{
    struct events ev;
    struct gr_sse p;
    size_t chunk = 1u << 20, i;
    char *buf = malloc(chunk);
    int rc = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    memset(buf, 'x', chunk);

    /* an event over the cap: a clear, sticky error */
    memset(&ev, 0, sizeof(ev));
    gr_sse_init(&p);
    CU_ASSERT_EQUAL(gr_sse_feed(&p, "data: ", 6, on_event, &ev), 0);
    for (i = 0; i < 10 && rc == 0; i++)
        rc = gr_sse_feed(&p, buf, chunk, on_event, &ev);
    CU_ASSERT_EQUAL(rc, -EMSGSIZE);
    CU_ASSERT(i <= 8);
    CU_ASSERT(strstr(gr_sse_error(&p), "8 MiB") != NULL);
    CU_ASSERT_EQUAL(gr_sse_feed(&p, "\n\n", 2, on_event, &ev), -EMSGSIZE);
    CU_ASSERT_EQUAL(gr_sse_finish(&p, on_event, &ev), -EMSGSIZE);
    CU_ASSERT_EQUAL(ev.n, 0);
    gr_sse_free(&p);
    CU_ASSERT_EQUAL(p.err, 0);
    CU_ASSERT_STRING_EQUAL(gr_sse_error(&p), "");

    /* many data lines add up to the cap too */
    memset(&ev, 0, sizeof(ev));
    gr_sse_init(&p);
    rc = 0;
    memset(buf, 'y', chunk);
    for (i = 0; i + 1 < chunk; i += 4096)
        memcpy(buf + i, "\ndata:", 6);
    for (i = 0; i < 12 && rc == 0; i++)
        rc = gr_sse_feed(&p, buf, chunk, on_event, &ev);
    CU_ASSERT_EQUAL(rc, -EMSGSIZE);
    gr_sse_free(&p);

    /* a long comment is not kept, so it is not limited */
    memset(&ev, 0, sizeof(ev));
    gr_sse_init(&p);
    memset(buf, 'z', chunk);
    CU_ASSERT_EQUAL(gr_sse_feed(&p, ":", 1, on_event, &ev), 0);
    for (i = 0; i < 12; i++)
        CU_ASSERT_EQUAL(gr_sse_feed(&p, buf, chunk, on_event, &ev), 0);
    CU_ASSERT_EQUAL(gr_sse_feed(&p, "\ndata: ok\n\n", 11, on_event, &ev), 0);
    CU_ASSERT_EQUAL(ev.n, 1);
    CU_ASSERT_STRING_EQUAL(ev.data[0], "ok");
    gr_sse_free(&p);

    /* the callback stops the parser */
    memset(&ev, 0, sizeof(ev));
    ev.stop_at = 1;
    gr_sse_init(&p);
    CU_ASSERT_EQUAL(gr_sse_feed(&p, "data: a\n\ndata: b\n\n", 18, on_event,
                                &ev), -1);
    CU_ASSERT_EQUAL(ev.n, 1);
    CU_ASSERT_EQUAL(gr_sse_feed(&p, "data: c\n\n", 9, on_event, &ev), -1);
    CU_ASSERT_EQUAL(ev.n, 1);
    gr_sse_free(&p);

    /* blank lines alone are no event; "data" alone is an empty one */
    memset(&ev, 0, sizeof(ev));
    gr_sse_init(&p);
    CU_ASSERT_EQUAL(gr_sse_feed(&p, "\n\r\n\r\n\nid: 3\n\ndata\n\n", 20,
                                on_event, &ev), 0);
    CU_ASSERT_EQUAL(ev.n, 1);
    CU_ASSERT_EQUAL(ev.len[0], 0);
    CU_ASSERT_FALSE(p.have_usage);
    CU_ASSERT_EQUAL(p.usage.prompt_tokens, -1);
    CU_ASSERT_EQUAL(gr_sse_finish(&p, NULL, NULL), 0);
    gr_sse_free(&p);
    free(buf);
}

static void
test_resp_status(void)
{
    size_t len = 0;
    char *body = fixture("200-stream-sse-thinking.txt", &len);

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_EQUAL(gr_resp_status(body, len), 200);
    free(body);
    CU_ASSERT_EQUAL(status_of("data: {\"error\": {\"code\": 503}}\n\n"), 503);
    CU_ASSERT_EQUAL(status_of("{\"error\": {\"code\": 429}}"), 429);
    CU_ASSERT_EQUAL(status_of("{\"error\": {\"code\": 42}}"), -1);
    CU_ASSERT_EQUAL(status_of("{\"error\": {}}"), -1);
    CU_ASSERT_EQUAL(status_of("{\"candidates\": []}"), 200);
    CU_ASSERT_EQUAL(status_of("[]"), 200);
    CU_ASSERT_EQUAL(status_of("garbage"), -1);
    CU_ASSERT_EQUAL(status_of("12"), -1);
    CU_ASSERT_EQUAL(status_of(""), -1);
    CU_ASSERT_EQUAL(gr_resp_status(NULL, 0), -1);
}

/* --- a stream cut inside an event; the final event (issue 13 item 8) --- */

static int
feed_all(struct gr_sse *p, const char *body, struct seen *s)
{
    int rc;

    memset(s, 0, sizeof(*s));
    gr_sse_init(p);
    rc = gr_sse_feed(p, body, strlen(body), count_event, s);
    if (rc == 0)
        rc = gr_sse_finish(p, count_event, s);
    return rc;
}

static void
test_item8_parser_drops_an_event_cut_inside(void)
{
    static const char *const cuts[] = {
        "data: " EV1 "\r\n\r\n" CUT,                /* inside a line */
        "data: " EV1 "\r\n\r\n" CUT "}\r\n",        /* lines whole, JSON not */
        "data: " EV1 "\r\n\r\ndata: {\"a\": 1}\r\ndata: {\"b\"",
        "data: " EV1 "\n\ndata",
    };
    struct gr_sse p;
    struct seen s;
    size_t i;

    for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        CU_ASSERT_EQUAL(feed_all(&p, cuts[i], &s), -EPIPE);
        CU_ASSERT_EQUAL(s.n, 1);            /* the whole event only */
        CU_ASSERT_EQUAL(s.bad, 0);
        CU_ASSERT_EQUAL(p.events, 1);
        CU_ASSERT(strstr(gr_sse_error(&p), "cut") != NULL);
        CU_ASSERT_EQUAL(p.usage.prompt_tokens, 7);  /* not the cut 9 */
        CU_ASSERT_FALSE(p.finished);
        gr_sse_free(&p);
    }
    /* Whole data that only lost its closing blank line is an event. */
    CU_ASSERT_EQUAL(feed_all(&p, "data: " EV1 "\n\ndata: " EV2 "\n", &s), 0);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_EQUAL(s.bad, 0);
    CU_ASSERT(p.finished);
    CU_ASSERT_EQUAL(p.usage.candidates_tokens, 2);
    gr_sse_free(&p);
    /* A trailing comment or blank lines cut nothing. */
    CU_ASSERT_EQUAL(feed_all(&p, "data: " EV2 "\r\n\r\n: bye", &s), 0);
    CU_ASSERT_EQUAL(s.n, 1);
    gr_sse_free(&p);
}

static void
test_item8_parser_knows_the_final_event(void)
{
    struct gr_sse p;
    struct seen s;

    /* Ends cleanly between events, but before the final one. */
    CU_ASSERT_EQUAL(feed_all(&p, "data: " EV1 "\r\n\r\n", &s), 0);
    CU_ASSERT_EQUAL(s.n, 1);
    CU_ASSERT_FALSE(p.finished);
    gr_sse_free(&p);
    CU_ASSERT_EQUAL(feed_all(&p, "data: " EV1 "\r\n\r\ndata: " EV2 "\r\n\r\n",
                             &s), 0);
    CU_ASSERT(p.finished);
    gr_sse_free(&p);
    /* A blocked prompt ends the answer without candidates. */
    CU_ASSERT_EQUAL(feed_all(&p, "data: {\"promptFeedback\": {\"blockReason\": "
                             "\"SAFETY\"}}\n\n", &s), 0);
    CU_ASSERT(p.finished);
    gr_sse_free(&p);
    /* The word inside a text, or as a key of a function's arguments, is
     * no finishReason. */
    CU_ASSERT_EQUAL(feed_all(&p, "data: {\"candidates\": [{\"content\": "
                             "{\"parts\": [{\"text\": \"finishReason\"}, "
                             "{\"functionCall\": {\"name\": \"f\", \"args\": "
                             "{\"finishReason\": \"STOP\"}}}]}}]}\n\n", &s),
                    0);
    CU_ASSERT_FALSE(p.finished);
    gr_sse_free(&p);
    /* A last event of megabytes (an image) is still seen as the last. */
    {
        static const char head[] = "data: {\"candidates\": [{\"content\": "
                                   "{\"parts\": [{\"text\": \"";
        static const char tail[] = "\"}]}, \"finishReason\": \"STOP\"}]}"
                                   "\n\n";
        size_t big = (size_t)5 << 20, hl = sizeof(head) - 1;
        char *body = malloc(hl + big + sizeof(tail));

        CU_ASSERT_PTR_NOT_NULL_FATAL(body);
        memcpy(body, head, hl);
        memset(body + hl, 'x', big);
        memcpy(body + hl + big, tail, sizeof(tail));
        CU_ASSERT_EQUAL(feed_all(&p, body, &s), 0);
        CU_ASSERT_EQUAL(s.n, 1);
        CU_ASSERT(p.finished);
        gr_sse_free(&p);
        free(body);
    }
    /* The json-c path (an escape the scanner doubts) says the same. */
    CU_ASSERT_EQUAL(feed_all(&p, "data: {\"candidates\": [{\"content\": "
                             "{\"parts\": [{\"text\": \"\\ud800\"}]}, "
                             "\"finishReason\": \"STOP\"}]}\n\n", &s), 0);
    CU_ASSERT(p.finished);
    gr_sse_free(&p);
}

int
main(void)
{
    CU_TestInfo answers[] = {
        {"usage of bodies", test_usage_of_bodies},
        {"usage of a huge body", test_usage_of_huge_body},
        {"status a body states", test_resp_status},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo sse[] = {
        {"SSE sample cut everywhere", test_sse_every_cut},
        {"SSE random cuts", test_sse_random_cuts},
        {"SSE limits and stop", test_sse_limits_and_stop},
        {"item 8: the parser drops an event the stream was cut inside",
         test_item8_parser_drops_an_event_cut_inside},
        {"item 8: the parser knows the final event",
         test_item8_parser_knows_the_final_event},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"answers", NULL, NULL, NULL, NULL, answers},
        {"SSE", NULL, NULL, NULL, NULL, sse},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_response", suites, 120);
}
