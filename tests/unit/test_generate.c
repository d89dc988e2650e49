/*
 * test_generate.c - client/generate.c: calls through the library against
 * a loopback server that cuts streams on purpose (issue 13, items 8 and
 * 17): a cut stream is a server-class failure, retried only while no
 * event reached the caller, and settled with the last usage Google sent;
 * the retry wait never wraps, whatever base and cap.  (That the SSE
 * parser drops an event the stream was cut inside and knows whether the
 * final event came, item 8's unit part, is tested with the parser, in
 * test_response.c.)
 *
 * Assertions are on outcomes (return codes, attempts, events, counts),
 * never on durations; waits poll under the watchdog.
 *
 *   BIN=bin build/default/tests/test_generate
 */
#include "client_priv.h"
#include "gemroute.h"
#include "response_priv.h"
#include "sse_events.h"
#include "testlib.h"
#include "testrouter.h"
#include "window.h"

#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS INT64_C(1000000)
#define S INT64_C(1000000000)

/* ---- backoff ---------------------------------------------------------- */

static void
test_item17_backoff_doubling_is_clamped(void)
{
    int64_t r;

    /* The ordinary case: base, doubled, capped. */
    CU_ASSERT_EQUAL(gr_backoff_ns(100 * MS, 10 * S, 1, 100 * MS), 100 * MS);
    CU_ASSERT_EQUAL(gr_backoff_ns(100 * MS, 10 * S, 2, 200 * MS), 200 * MS);
    CU_ASSERT_EQUAL(gr_backoff_ns(100 * MS, 10 * S, 2, 200 * MS + 1), 0);
    CU_ASSERT_EQUAL(gr_backoff_ns(100 * MS, 10 * S, 8, 10 * S), 10 * S);
    CU_ASSERT_EQUAL(gr_backoff_ns(100 * MS, 10 * S, 100, 10 * S), 10 * S);
    /* Doubling 2^62 under a cap of INT64_MAX wrapped to a negative span
     * (signed overflow), and the wait fell to 0: retries at once. */
    r = gr_backoff_ns(INT64_C(1) << 62, INT64_MAX, 2, UINT64_MAX);
    CU_ASSERT_EQUAL(r, INT64_MAX);
    r = gr_backoff_ns(1, INT64_MAX, 64, UINT64_MAX);
    CU_ASSERT_EQUAL(r, INT64_MAX);
    r = gr_backoff_ns(1, INT64_MAX, 100, (uint64_t)1 << 62);
    CU_ASSERT_EQUAL(r, INT64_C(1) << 62);
    /* span + 1 with span = INT64_MAX */
    r = gr_backoff_ns(INT64_MAX, INT64_MAX, 1, UINT64_MAX - 1);
    CU_ASSERT_EQUAL(r, INT64_MAX - 1);
    CU_ASSERT_EQUAL(gr_backoff_ns(0, INT64_MAX, 5, 12345), 0);
    for (int n = 1; n <= 100; n++) {
        r = gr_backoff_ns(INT64_MAX / 3, INT64_MAX - 7, n, UINT64_MAX);
        CU_ASSERT(r >= 0 && r <= INT64_MAX - 7);
    }
}

/* ---- stream events --------------------------------------------------- */

#define BODY_503 "{\"error\": {\"code\": 503, \"message\": \"The model " \
                 "is overloaded.\", \"status\": \"UNAVAILABLE\"}}"
static char ans_503[512];           /* made by e2e_setup() */

/* ---- a loopback server that cuts streams -------------------------------- */

static struct {
    int fd, port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock;
    const char *script[8];          /* answers, in order; then the last */
    int n_script, next;
    atomic_int served;
} srv = {.fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void
script(int n, ...)
{
    va_list ap;

    pthread_mutex_lock(&srv.lock);
    va_start(ap, n);
    for (int i = 0; i < n && i < 8; i++)
        srv.script[i] = va_arg(ap, const char *);
    va_end(ap);
    srv.n_script = n;
    srv.next = 0;
    pthread_mutex_unlock(&srv.lock);
    atomic_store(&srv.served, 0);
}

/* Read one request: headers, then Content-Length bytes of body. */
static int
read_request(int fd)
{
    char buf[16384];
    size_t have = 0;
    long clen = -1;
    char *end = NULL;

    for (;;) {
        ssize_t n;

        if (end != NULL && clen >= 0 &&
            have - (size_t)(end + 4 - buf) >= (size_t)clen)
            return 0;
        if (have == sizeof(buf) - 1)
            return -1;
        n = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        if (end == NULL && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(buf, "\r\ncontent-length:");

            clen = cl != NULL && cl < end ? strtol(cl + 17, NULL, 10) : 0;
        }
    }
}

static void *
serve(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv.stop)) {
        struct pollfd pf = {.fd = srv.fd, .events = POLLIN};
        const char *answer;
        size_t len, at = 0;
        int c;

        if (poll(&pf, 1, 50) <= 0)
            continue;
        if ((c = accept(srv.fd, NULL, NULL)) < 0)
            continue;
        if (read_request(c) == 0) {
            pthread_mutex_lock(&srv.lock);
            answer = srv.n_script == 0 ? ans_503
                     : srv.script[srv.next < srv.n_script ? srv.next
                                                          : srv.n_script - 1];
            srv.next++;
            pthread_mutex_unlock(&srv.lock);
            atomic_fetch_add(&srv.served, 1);
            len = strlen(answer);
            while (at < len) {
                ssize_t n = send(c, answer + at, len - at, MSG_NOSIGNAL);

                if (n <= 0)
                    break;
                at += (size_t)n;
            }
        }
        shutdown(c, SHUT_RDWR);
        close(c);
    }
    return NULL;
}

static int
srv_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    int one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((srv.fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(srv.fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(srv.fd, 16) != 0 ||
        getsockname(srv.fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    srv.port = ntohs(a.sin_port);
    return pthread_create(&srv.thread, NULL, serve, NULL) == 0 ? 0 : -1;
}

static void
srv_stop(void)
{
    if (srv.fd < 0)
        return;
    atomic_store(&srv.stop, true);
    pthread_join(srv.thread, NULL);
    close(srv.fd);
    srv.fd = -1;
}

#define SSE_HEAD "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" \
                 "Connection: close\r\n\r\n"
#define E(x) "data: " x "\r\n\r\n"

static const char *const ans_whole = SSE_HEAD E(EV1) E(EV2);
static const char *const ans_cut_after_one = SSE_HEAD E(EV1) CUT;
static const char *const ans_no_final = SSE_HEAD E(EV1);
static const char *const ans_cut_first = SSE_HEAD CUT;
static const char *const ans_nothing = SSE_HEAD ": keep-alive\r\n\r\n";

/* ---- a real gemrouted pointed at it ------------------------------------ */

static struct gr_test_router rt;
static struct gr *g;

static const char *
write_conf(const char *path, int good)
{
    return gr_test_conf_put(path,
            "router = { shm = \"%s\"; base_url = \"http://127.0.0.1:%d\";"
            " batch_calls = 1; max_projects = 4; max_models = 2;"
            " window_ms = 600000; };\n"
            "models = ( { name = \"m\"; rpm = 1000; tpm = 10000000; } );\n"
            "projects = (\n"
            "  { name = \"p1\"; key = \"rs-SECRET-p1\"; },\n"
            "  { name = \"p2\"; key = \"rs-SECRET-p2\"; },\n"
            "  { name = \"p3\"; key = \"rs-SECRET-p3\"; } );\n%s",
            rt.shm, srv.port, good ? "" : "bogus = ;\n");
}

static int
e2e_setup(void)
{
    char err[256];

    snprintf(ans_503, sizeof(ans_503), "HTTP/1.1 503 Service Unavailable"
             "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s", strlen(BODY_503), BODY_503);
    if (srv_start() != 0 || gr_test_router_paths(&rt, "rs") != 0 ||
        write_conf(rt.conf, 1) == NULL)
        return -1;
    rt.pid = gr_test_router_start(rt.conf, rt.shm, NULL);
    if (rt.pid <= 0)
        return -1;
    g = gr_open(rt.shm, err, sizeof(err));
    return g != NULL ? 0 : -1;
}

static int
e2e_teardown(void)
{
    if (g != NULL)
        gr_close(g);
    srv_stop();
    return gr_test_router_end(&rt);
}

/* Input tokens in model m's minute windows, over every project.  The
 * windows last 10 minutes, longer than the watchdog lets this binary
 * run: nothing leaves them between two readings. */
static int64_t
tpm_used(void)
{
    struct gr_shm t;
    char err[256];
    int64_t sum = 0, now = gr_now_ns();
    int m;

    if (gr_shm_attach(rt.shm, false, &t, err, sizeof(err)) != 0)
        return -1;
    m = gr_shm_model_index(&t, "m");
    for (uint32_t p = 0; m >= 0 && p < t.max_projects; p++)
        sum += gr_shm_window_used(&t, gr_shm_cell(&t, p, (uint32_t)m),
                                  GR_W_TPM, now);
    gr_shm_detach(&t);
    return sum;
}

static int
stream(struct gr_response *r, struct seen *s, int64_t est)
{
    struct gr_call_opts o = {0};

    memset(s, 0, sizeof(*s));
    o.deadline_ns = gr_now_ns() + 30 * S;
    o.max_attempts = 3;
    o.est_tokens = est;
    o.backoff_base_ns = 1 * MS;
    o.backoff_cap_ns = 1 * MS;
    return gr_stream(g, "m", "{\"contents\": [{\"parts\": [{\"text\": "
                     "\"hi\"}]}]}", &o, count_event, s, r);
}

static void
test_item8_cut_stream_is_a_failure_never_retried(void)
{
    struct gr_response r;
    struct seen s;
    int64_t before = tpm_used();
    int rc;

    CU_ASSERT_FATAL(before >= 0);
    script(2, ans_cut_after_one, ans_whole);
    rc = stream(&r, &s, 1000);
    CU_ASSERT_EQUAL(rc, GR_ECALL);
    CU_ASSERT_EQUAL(r.attempts, 1);         /* an event reached us */
    CU_ASSERT_EQUAL(atomic_load(&srv.served), 1);
    CU_ASSERT_EQUAL(s.n, 1);
    CU_ASSERT_EQUAL(s.bad, 0);              /* the cut part never */
    CU_ASSERT_EQUAL(r.verdict.cls, GR_CLASS_SERVER);
    CU_ASSERT(strstr(r.error, "not retried") != NULL);
    CU_ASSERT(strstr(r.error, "cut") != NULL);
    /* Settled with the last usage Google sent (7), not the estimate. */
    CU_ASSERT_EQUAL(r.usage.prompt, 7);
    CU_ASSERT_EQUAL(tpm_used() - before, 7);
    gr_response_free(&r);
}

static void
test_item8_stream_without_final_event_is_cut(void)
{
    struct gr_response r;
    struct seen s;
    int64_t before = tpm_used();
    int rc;

    script(2, ans_no_final, ans_whole);
    rc = stream(&r, &s, 1000);
    CU_ASSERT_EQUAL(rc, GR_ECALL);
    CU_ASSERT_EQUAL(r.attempts, 1);
    CU_ASSERT_EQUAL(s.n, 1);
    CU_ASSERT_EQUAL(r.verdict.cls, GR_CLASS_SERVER);
    CU_ASSERT(strstr(r.error, "final event") != NULL);
    CU_ASSERT_EQUAL(tpm_used() - before, 7);
    gr_response_free(&r);

    /* The same whole stream with its final event is a success. */
    script(1, ans_whole);
    CU_ASSERT_EQUAL(stream(&r, &s, 1000), GR_OK);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_EQUAL(r.attempts, 1);
    gr_response_free(&r);
}

static void
test_item8_cut_before_any_event_is_retried(void)
{
    struct gr_response r;
    struct seen s;
    int64_t before = tpm_used();

    /* Cut inside the first event: nothing reached the caller. */
    script(2, ans_cut_first, ans_whole);
    CU_ASSERT_EQUAL(stream(&r, &s, 1000), GR_OK);
    CU_ASSERT_EQUAL(r.attempts, 2);
    CU_ASSERT_EQUAL(atomic_load(&srv.served), 2);
    CU_ASSERT_EQUAL(s.n, 2);
    CU_ASSERT_EQUAL(s.bad, 0);
    CU_ASSERT_EQUAL(r.usage.prompt, 7);
    /* The cut attempt had no usage: it keeps its estimate. */
    CU_ASSERT_EQUAL(tpm_used() - before, 1000 + 7);
    gr_response_free(&r);

    /* No event at all, then a clean end: retried too. */
    script(2, ans_nothing, ans_whole);
    CU_ASSERT_EQUAL(stream(&r, &s, 1000), GR_OK);
    CU_ASSERT_EQUAL(r.attempts, 2);
    CU_ASSERT_EQUAL(s.n, 2);
    gr_response_free(&r);
}

static void
test_item17_huge_backoff_waits_out_the_deadline(void)
{
    struct gr_call_opts o = {0};
    struct gr_response r;
    int rc;

    script(1, ans_503);
    o.deadline_ns = gr_now_ns() + 30 * S;
    o.max_attempts = 3;
    o.backoff_base_ns = INT64_MAX;
    o.backoff_cap_ns = INT64_MAX;
    rc = gr_generate(g, "m", "{\"contents\": [{\"parts\": [{\"text\": "
                     "\"hi\"}]}]}", &o, &r);
    /* A wait of up to INT64_MAX ns is past any deadline: never wrapped
     * into "retry at once". */
    CU_ASSERT_EQUAL(rc, GR_EDEADLINE);
    CU_ASSERT_EQUAL(r.attempts, 1);
    CU_ASSERT_EQUAL(atomic_load(&srv.served), 1);
    gr_response_free(&r);
    /* One good call closes the failure count again. */
    script(1, ans_whole);
    CU_ASSERT_EQUAL(gr_stream(g, "m", "{}", NULL, NULL, NULL, &r), GR_OK);
    gr_response_free(&r);
}

int
main(void)
{
    CU_TestInfo units[] = {
        {"item 17: the backoff doubling is clamped",
         test_item17_backoff_doubling_is_clamped},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo e2e[] = {
        {"item 8: a cut stream is a failure, never retried after an event",
         test_item8_cut_stream_is_a_failure_never_retried},
        {"item 8: a stream without its final event is cut",
         test_item8_stream_without_final_event_is_cut},
        {"item 8: a stream cut before any event is retried",
         test_item8_cut_before_any_event_is_retried},
        {"item 17: a huge backoff waits out the deadline",
         test_item17_huge_backoff_waits_out_the_deadline},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"units", NULL, NULL, NULL, NULL, units},
        {"stream", e2e_setup, e2e_teardown, NULL, NULL, e2e},
        CU_SUITE_INFO_NULL,
    };

    /* Only 127.0.0.1, never through the environment's proxy. */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    signal(SIGPIPE, SIG_IGN);
    return gr_test_main("test_generate", suites, 120);
}
