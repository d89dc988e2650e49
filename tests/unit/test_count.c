/*
 * test_count.c - issue 16, "count the right thing": what a call reserves
 * and settles on each window.
 *
 *  - IPM counts the images a request asks to generate (responseModalities
 *    IMAGE x candidateCount; Imagen's sampleCount), never input images,
 *    and settles up to the images the answer holds;
 *  - TPM settles promptTokenCount + toolUsePromptTokenCount, with
 *    cachedContentTokenCount charged unless router.tpm_counts_cached is
 *    false;
 *  - a request above every project's window fails at once (GR_ETOOBIG).
 *
 * A real gemrouted serves the table; a small HTTP server on 127.0.0.1
 * in this process plays Google with canned answers, so each count is
 * exact.  What the table charged is read through the snapshot API.
 */
#include "estimate_priv.h"
#include "gemroute.h"
#include "gemroute_stat.h"
#include "response_priv.h"
#include "testlib.h"
#include "testrouter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the estimate and the answer, alone -------------------------------- */

static int64_t
images_out(const char *body)
{
    return gr_est_images_out(body, strlen(body));
}

static void
test_images_asked(void)
{
    /* Gemini image models: one per candidate when IMAGE is asked for */
    CU_ASSERT_EQUAL(images_out("{\"contents\":[{\"parts\":[{\"text\":\"a "
                               "cat\"}]}],\"generationConfig\":{"
                               "\"responseModalities\":[\"TEXT\",\"IMAGE\"]}}"),
                    1);
    CU_ASSERT_EQUAL(images_out("{\"contents\":[],\"generationConfig\":{"
                               "\"responseModalities\":[\"image\"],"
                               "\"candidateCount\":3}}"),
                    3);
    CU_ASSERT_EQUAL(images_out("{\"contents\":[],\"generation_config\":{"
                               "\"response_modalities\":[\"IMAGE\"],"
                               "\"candidate_count\":2}}"),
                    2);
    /* text only, or no generationConfig: none */
    CU_ASSERT_EQUAL(images_out("{\"contents\":[],\"generationConfig\":{"
                               "\"responseModalities\":[\"TEXT\"],"
                               "\"candidateCount\":3}}"),
                    0);
    /* input images cost tokens, not IPM */
    CU_ASSERT_EQUAL(images_out("{\"contents\":[{\"parts\":[{\"inlineData\":"
                               "{\"mimeType\":\"image/png\",\"data\":\"x\"}},"
                               "{\"inlineData\":{\"mimeType\":\"image/jpeg\","
                               "\"data\":\"y\"}}]}]}"),
                    0);
    /* Imagen's :predict: sampleCount, 4 when not given */
    CU_ASSERT_EQUAL(images_out("{\"instances\":[{\"prompt\":\"a cat\"}],"
                               "\"parameters\":{\"sampleCount\":2}}"),
                    2);
    CU_ASSERT_EQUAL(images_out("{\"instances\":[{\"prompt\":\"a cat\"}]}"),
                    4);
    /* nonsense: bounded, never negative */
    CU_ASSERT_EQUAL(images_out("{\"contents\":[],\"generationConfig\":{"
                               "\"responseModalities\":[\"IMAGE\"],"
                               "\"candidateCount\":-5}}"),
                    1);
    CU_ASSERT_EQUAL(images_out("{\"generationConfig\":{"
                               "\"responseModalities\":[\"IMAGE\"],"
                               "\"candidateCount\":99999999}}"),
                    1000);
    CU_ASSERT_EQUAL(images_out("{\"responseModalities\": not json"), 0);
    CU_ASSERT_EQUAL(gr_est_images_out(NULL, 0), 0);
}

static int64_t
images_in(const char *body)
{
    return gr_resp_images(body, strlen(body));
}

static void
test_images_returned(void)
{
    CU_ASSERT_EQUAL(images_in("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"text\":\"here\"},{\"inlineData\":{"
                              "\"mimeType\": \"image/png\",\"data\":\"iVBO\""
                              "}}]}},{\"content\":{\"parts\":[{\"inline_data\""
                              ":{\"mime_type\" :\n\"image/jpeg\",\"data\":"
                              "\"/9j/\"}}]}}]}"),
                    2);
    /* a mimeType written inside a string is text, not a part */
    CU_ASSERT_EQUAL(images_in("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"text\":\"say \\\"mimeType\\\": "
                              "\\\"image/png\\\"\"}]}}]}"),
                    0);
    CU_ASSERT_EQUAL(images_in("{\"candidates\":[{\"content\":{\"parts\":["
                              "{\"inlineData\":{\"mimeType\":\"audio/wav\"}}"
                              "]}}]}"),
                    0);
    /* a stream: each event's images */
    CU_ASSERT_EQUAL(images_in("data: {\"candidates\":[{\"content\":{\"parts\""
                              ":[{\"inlineData\":{\"mimeType\":\"image/png\"}}"
                              "]}}]}\r\n\r\ndata: {\"candidates\":[{\"content"
                              "\":{\"parts\":[{\"inlineData\":{\"mimeType\":"
                              "\"image/png\"}}]}}]}\r\n\r\n"),
                    2);
    CU_ASSERT_EQUAL(gr_resp_images(NULL, 0), 0);
}

static void
test_usage_fields(void)
{
    static const char body[] =
        "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":100,"
        "\"candidatesTokenCount\":5,\"totalTokenCount\":175,"
        "\"toolUsePromptTokenCount\":40,\"cachedContentTokenCount\":30}}";
    static const char spaced[] =
        "{\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":\"100\","
        "\"toolUsePromptTokenCount\":\"40\","
        "\"cachedContentTokenCount\":\"30\"}}";
    struct gr_resp_usage u;

    CU_ASSERT_EQUAL(gr_resp_usage(body, strlen(body), &u), 0);
    CU_ASSERT_EQUAL(u.prompt_tokens, 100);
    CU_ASSERT_EQUAL(u.tool_prompt_tokens, 40);
    CU_ASSERT_EQUAL(u.cached_tokens, 30);
    /* the json-c path reads the same (counts as strings) */
    CU_ASSERT_EQUAL(gr_resp_usage(spaced, strlen(spaced), &u), 0);
    CU_ASSERT_EQUAL(u.prompt_tokens, 100);
    CU_ASSERT_EQUAL(u.tool_prompt_tokens, 40);
    CU_ASSERT_EQUAL(u.cached_tokens, 30);
}

/* ---- Google, played by a small server ------------------------------- */

static int srv_fd = -1;
static int srv_port;
static pthread_t srv_thread;
static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static char srv_answer[8192];           /* the next answers' body */
static unsigned srv_calls;

static void *
serve(void *arg)
{
    (void)arg;
    for (;;) {
        char buf[65536], head[256], body[8192];
        size_t got = 0;
        long clen = 0;
        char *end, *cl;
        int c = accept(srv_fd, NULL, NULL);
        ssize_t n;

        if (c < 0)
            return NULL;
        for (;;) {
            n = read(c, buf + got, sizeof(buf) - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
            if ((end = strstr(buf, "\r\n\r\n")) == NULL)
                continue;
            cl = strcasestr(buf, "content-length:");
            clen = cl != NULL && cl < end ? strtol(cl + 15, NULL, 10) : 0;
            if (got >= (size_t)(end + 4 - buf) + (size_t)clen)
                break;
        }
        pthread_mutex_lock(&srv_mu);
        srv_calls++;
        snprintf(body, sizeof(body), "%s", srv_answer);
        pthread_mutex_unlock(&srv_mu);
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: "
                 "application/json\r\nContent-Length: %zu\r\nConnection: "
                 "close\r\n\r\n", strlen(body));
        /* a client that went away is no matter here */
        if (write(c, head, strlen(head)) == (ssize_t)strlen(head))
            (void)!write(c, body, strlen(body));
        close(c);
    }
}

static void
answer_with(const char *body)
{
    pthread_mutex_lock(&srv_mu);
    snprintf(srv_answer, sizeof(srv_answer), "%s", body);
    pthread_mutex_unlock(&srv_mu);
}

static int
server_start(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (srv_fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(srv_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(srv_fd, 16) != 0 ||
        getsockname(srv_fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    srv_port = ntohs(a.sin_port);
    return pthread_create(&srv_thread, NULL, serve, NULL) == 0 ? 0 : -1;
}

static void
server_stop(void)
{
    shutdown(srv_fd, SHUT_RDWR);
    close(srv_fd);
    pthread_join(srv_thread, NULL);
}

/* ---- a router per setting of tpm_counts_cached ---------------------- */

static struct gr_test_router rt;

static int
router_start(const char *tag, const char *extra)
{
    FILE *f;

    if (gr_test_router_paths(&rt, tag) != 0 ||
        (f = fopen(rt.conf, "w")) == NULL)
        return -1;
    fprintf(f, "router = { shm = \"%s\"; base_url = \"http://127.0.0.1:%d\";"
            " headroom = 1.0; batch_calls = 1; state_file = \"state\"; %s };"
            "\nmodels = ( { name = \"m\"; rpm = 1000; tpm = 100000; "
            "ipm = 100; },\n"
            "  { name = \"small\"; rpm = 1000; tpm = 1000; ipm = 2; } );\n"
            "projects = ( { name = \"p\"; key = \"count-SECRET-key-1\"; },\n"
            "  { name = \"q\"; key = \"count-SECRET-key-2\";\n"
            "    limits = ( { model = \"small\"; tpm = 800; } ); } );\n",
            rt.shm, srv_port, extra);
    fclose(f);
    rt.pid = gr_test_router_start(rt.conf, rt.shm, NULL);
    return rt.pid > 0 ? 0 : -1;
}

/* used[dim] of model summed over the projects, from a snapshot. */
static int64_t
used(const char *model, enum gr_dim d)
{
    char err[256];
    struct gr_stat *st = gr_stat_open(rt.shm, err, sizeof(err));
    struct gr_stat_snap s;
    int64_t sum = 0;
    unsigned i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL_FATAL(gr_stat_take(st, &s), GR_OK);
    for (i = 0; i < s.n_cells; i++)
        if (strcmp(s.cells[i].model, model) == 0)
            sum += s.cells[i].used[d];
    gr_stat_free(&s);
    gr_stat_close(st);
    return sum;
}

static const char usage_answer[] =
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"ok\"}],"
    "\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{"
    "\"promptTokenCount\":100,\"candidatesTokenCount\":2,"
    "\"totalTokenCount\":142,\"toolUsePromptTokenCount\":40,"
    "\"cachedContentTokenCount\":30}}";

static void
one_call(struct gr *g, const char *model, const char *req, int64_t est)
{
    struct gr_call_opts o;
    struct gr_response r;

    memset(&o, 0, sizeof(o));
    o.est_tokens = est;
    o.max_attempts = 1;
    CU_ASSERT_EQUAL(gr_generate(g, model, req, &o, &r), GR_OK);
    if (r.error[0] != '\0')
        fprintf(stderr, "\n%s\n", r.error);
    gr_response_free(&r);
}

static void
test_tpm_settles_tool_tokens(void)
{
    char err[256];
    struct gr *g;

    CU_ASSERT_EQUAL_FATAL(router_start("count1", ""), 0);
    g = gr_open(rt.shm, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    answer_with(usage_answer);
    one_call(g, "m", "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}", 10);
    /* 100 prompt (30 of them cached, still charged) + 40 tool-use */
    CU_ASSERT_EQUAL(used("m", GR_DIM_TPM), 140);
    CU_ASSERT_EQUAL(used("m", GR_DIM_RPM), 1);
    gr_close(g);
    CU_ASSERT_EQUAL(gr_test_router_end(&rt), 0);
}

static void
test_tpm_without_cached(void)
{
    char err[256];
    struct gr *g;

    CU_ASSERT_EQUAL_FATAL(router_start("count2", "tpm_counts_cached = false;"),
                          0);
    g = gr_open(rt.shm, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    answer_with(usage_answer);
    one_call(g, "m", "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}", 10);
    /* 100 - 30 cached + 40 tool-use */
    CU_ASSERT_EQUAL(used("m", GR_DIM_TPM), 110);
    gr_close(g);
    CU_ASSERT_EQUAL(gr_test_router_end(&rt), 0);
}

static void
test_ipm_counts_generated_images(void)
{
    static const char two_images[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{"
        "\"mimeType\":\"image/png\",\"data\":\"iVBO\"}},{\"inlineData\":{"
        "\"mimeType\":\"image/png\",\"data\":\"iVBO\"}}]},\"finishReason\":"
        "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":7}}";
    static const char one_image[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"inlineData\":{"
        "\"mimeType\":\"image/png\",\"data\":\"iVBO\"}}]},\"finishReason\":"
        "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":7}}";
    static const char text_answer[] =
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a cat\"}]},"
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{"
        "\"promptTokenCount\":300}}";
    char err[256];
    struct gr *g;

    CU_ASSERT_EQUAL_FATAL(router_start("count3", ""), 0);
    g = gr_open(rt.shm, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    /* input images: tokens, no IPM */
    answer_with(text_answer);
    one_call(g, "m", "{\"contents\":[{\"parts\":[{\"text\":\"what\"},"
             "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"x\"}}]}]}",
             0);
    CU_ASSERT_EQUAL(used("m", GR_DIM_IPM), 0);
    CU_ASSERT_EQUAL(used("m", GR_DIM_TPM), 300);
    /* one image asked for, two came back: two counted */
    answer_with(two_images);
    one_call(g, "m", "{\"contents\":[{\"parts\":[{\"text\":\"a cat\"}]}],"
             "\"generationConfig\":{\"responseModalities\":[\"IMAGE\"]}}", 0);
    CU_ASSERT_EQUAL(used("m", GR_DIM_IPM), 2);
    /* three asked for, one came back: the three reserved stay */
    answer_with(one_image);
    one_call(g, "m", "{\"contents\":[{\"parts\":[{\"text\":\"cats\"}]}],"
             "\"generationConfig\":{\"responseModalities\":[\"TEXT\","
             "\"IMAGE\"],\"candidateCount\":3}}", 0);
    CU_ASSERT_EQUAL(used("m", GR_DIM_IPM), 5);
    gr_close(g);
    CU_ASSERT_EQUAL(gr_test_router_end(&rt), 0);
}

static void
test_too_big_fails_at_once(void)
{
    char err[256];
    struct gr *g;
    struct gr_call_opts o;
    struct gr_response r;
    unsigned calls;

    CU_ASSERT_EQUAL_FATAL(router_start("count4", ""), 0);
    g = gr_open(rt.shm, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    answer_with(usage_answer);
    pthread_mutex_lock(&srv_mu);
    calls = srv_calls;
    pthread_mutex_unlock(&srv_mu);
    memset(&o, 0, sizeof(o));
    o.est_tokens = 5000;                /* p: 1000, q: 800 a window */
    o.deadline_ns = gr_now_ns() + INT64_C(3600) * 1000000000;
    CU_ASSERT_EQUAL(gr_generate(g, "small", "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", &o, &r),
                    GR_ETOOBIG);
    CU_ASSERT_EQUAL(r.attempts, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "5000 input tokens"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "largest TPM limit"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "small is 1000"));
    gr_response_free(&r);
    /* images: two a window at most */
    o.est_tokens = 10;
    CU_ASSERT_EQUAL(gr_generate(g, "small", "{\"contents\":[],"
                                "\"generationConfig\":{\"responseModalities\""
                                ":[\"IMAGE\"],\"candidateCount\":3}}", &o,
                                &r),
                    GR_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "largest IPM limit"));
    gr_response_free(&r);
    /* nothing was sent; one that fits still goes */
    pthread_mutex_lock(&srv_mu);
    CU_ASSERT_EQUAL(srv_calls, calls);
    pthread_mutex_unlock(&srv_mu);
    one_call(g, "small", "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}",
             900);
    CU_ASSERT_STRING_EQUAL(gr_err_name(GR_ETOOBIG), "request too big");
    gr_close(g);
    CU_ASSERT_EQUAL(gr_test_router_end(&rt), 0);
}

static int
suite_setup(void)
{
    return server_start();
}

static int
suite_teardown(void)
{
    server_stop();
    return 0;
}

int
main(void)
{
    CU_TestInfo alone[] = {
        {"images a request asks for", test_images_asked},
        {"images an answer holds", test_images_returned},
        {"usage: tool-use and cached tokens", test_usage_fields},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo table[] = {
        {"TPM settles prompt + tool-use tokens, cached charged",
         test_tpm_settles_tool_tokens},
        {"tpm_counts_cached = false", test_tpm_without_cached},
        {"IPM counts generated images", test_ipm_counts_generated_images},
        {"a request above every window fails at once",
         test_too_big_fails_at_once},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"alone", NULL, NULL, NULL, NULL, alone},
        {"through a router", suite_setup, suite_teardown, NULL, NULL, table},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_count", suites, 120);
}
