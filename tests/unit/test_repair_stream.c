/*
 * test_repair_stream.c - issue 13, items 6, 8 and 17 (part), one test
 * each, named after the item.
 *
 *   repair: the router rewrites every string it owns (the header's
 *   base_url, proxy, config_path and last reload error; each slot's name,
 *   every key, weight, priority and flags) from its private copy and the
 *   running config, on an in-process router; and a real gemrouted does so
 *   while keeping the reload error it wrote itself.
 *
 *   stream: through the library, against a loopback server that cuts
 *   streams on purpose, a cut stream is a server-class failure, retried
 *   only while no event reached the caller, and settled with the last
 *   usage Google sent.  (That the SSE parser drops an event the stream
 *   was cut inside and knows whether the final event came, item 8's unit
 *   part, is tested with the parser, in test_response.c.)
 *
 *   backoff: the retry wait never wraps, whatever base and cap.
 *
 * Assertions are on outcomes (return codes, attempts, events, counts),
 * never on durations; waits poll under the watchdog.
 *
 *   BIN=bin build/default/tests/test_repair_stream
 */
#include "client_priv.h"
#include "config.h"
#include "gemroute.h"
#include "response_priv.h"
#include "router.h"
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
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define MS INT64_C(1000000)
#define S INT64_C(1000000000)

/* ---- repair, on an in-process router ---------------------------------- */

static char rdir[64], rshm[64];
static struct gr_rtr rtr;

static const char *repair_conf =
    "models = ( { name = \"m\"; rpm = 100; tpm = 100000; } );\n"
    "projects = (\n"
    "  { name = \"a\"; keys = [\"rs-SECRET-a-0\", \"rs-SECRET-a-1\",\n"
    "                         \"rs-SECRET-a-2\"]; weight = 3;\n"
    "    priority = 2; },\n"
    "  { name = \"off\"; key = \"rs-SECRET-off-0\"; enabled = false; } );\n";

static struct gr_cfg *
repair_cfg(void)
{
    char path[128];
    struct gr_cfg *cfg = NULL;
    struct gr_cfg_errors errs = {0};
    FILE *f;

    snprintf(path, sizeof(path), "%s/r.conf", rdir);
    if ((f = fopen(path, "w")) == NULL)
        return NULL;
    fprintf(f, "router = { shm = \"%s\"; max_projects = 3; max_models = 2; "
            "max_leases = 8; base_url = \"http://127.0.0.1:9\"; "
            "proxy = \"http://127.0.0.1:3128\"; batch_calls = 1; };\n%s",
            rshm, repair_conf);
    fclose(f);
    if (gr_cfg_load(path, &cfg, &errs) != 0) {
        for (unsigned i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        cfg = NULL;
    }
    gr_cfg_errors_free(&errs);
    return cfg;
}

static int
repair_setup(void)
{
    char err[512];

    snprintf(rdir, sizeof(rdir), "/tmp/grrs.XXXXXX");
    if (mkdtemp(rdir) == NULL)
        return -1;
    snprintf(rshm, sizeof(rshm), "/grtest-rs-%d", (int)getpid());
    shm_unlink(rshm);
    /* The router's running config, as main.c keeps it. */
    if ((rtr.cfg = repair_cfg()) == NULL ||
        gr_rtr_open_segment(&rtr, rtr.cfg, err, sizeof(err)) != 0 ||
        gr_rtr_apply(&rtr, rtr.cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "repair setup: %s\n", err);
        return -1;
    }
    return 0;
}

static int
repair_teardown(void)
{
    char cmd[128];

    gr_shm_detach(&rtr.t);
    gr_rtr_mirror_free(&rtr);
    gr_cfg_free(rtr.cfg);
    rtr.cfg = NULL;
    shm_unlink(rshm);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", rdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int
slot_of(const char *name)
{
    for (uint32_t i = 0; i < rtr.t.max_projects; i++)
        if (atomic_load(&rtr.t.projects[i].state) != GR_PROJ_FREE &&
            strcmp(rtr.t.projects[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Whether the cap bytes at p are s and then NULs only. */
static int
padded(const char *p, const char *s, size_t cap)
{
    size_t n = strlen(s), i;

    if (n >= cap || memcmp(p, s, n) != 0)
        return 0;
    for (i = n; i < cap; i++)
        if (p[i] != '\0')
            return 0;
    return 1;
}

static void
test_item6_scribbled_base_url_is_repaired(void)
{
    struct gr_shm_header *h = rtr.t.hdr;
    uint64_t anomalies = atomic_load(&h->anomalies);
    struct gr_cost one = {1, 10, 0};
    struct gr_lease l;
    char err[256];
    struct gr *g;

    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);
    /* A hostile process rewrites every string of the header. */
    snprintf(h->base_url, sizeof(h->base_url), "http://evil.example");
    snprintf(h->proxy, sizeof(h->proxy), "http://evil.example:8080");
    h->config_path[200] = 'x';          /* after the NUL: still damage */
    snprintf(h->last_reload_error, sizeof(h->last_reload_error), "forged");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 4);
    CU_ASSERT(padded(h->base_url, "http://127.0.0.1:9", sizeof(h->base_url)));
    CU_ASSERT(padded(h->proxy, "http://127.0.0.1:3128", sizeof(h->proxy)));
    CU_ASSERT(padded(h->config_path, rtr.cfg->path, sizeof(h->config_path)));
    CU_ASSERT(padded(h->last_reload_error, "",
                     sizeof(h->last_reload_error)));
    CU_ASSERT_EQUAL(atomic_load(&h->text_seq) & 1u, 0);
    CU_ASSERT_EQUAL(atomic_load(&h->anomalies), anomalies + 4);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);

    /* The reload error the router itself wrote is its copy: kept. */
    snprintf(rtr.m.reload_error, sizeof(rtr.m.reload_error),
             "r.conf:3: what is wrong");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT_STRING_EQUAL(h->last_reload_error, "r.conf:3: what is wrong");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);

    /* A new lease gets the configured address, not the scribbled one. */
    snprintf(h->base_url, sizeof(h->base_url), "http://evil.example");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    g = gr_open(rshm, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL_FATAL(gr_reserve(g, "m", &one, 0, &l), GR_OK);
    CU_ASSERT_STRING_EQUAL(l.base_url, "http://127.0.0.1:9");
    CU_ASSERT_STRING_EQUAL(l.proxy, "http://127.0.0.1:3128");
    gr_commit(g, &l, NULL);
    gr_close(g);
}

static void
test_item6_slot_text_and_settings_are_repaired(void)
{
    int a = slot_of("a"), off = slot_of("off");
    struct gr_shm_project *pa, *po;

    CU_ASSERT_FATAL(a >= 0 && off >= 0);
    pa = &rtr.t.projects[a];
    po = &rtr.t.projects[off];
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);

    /* Bytes after the name's NUL. */
    pa->name[GR_SHM_NAME_MAX - 2] = 'z';
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT(padded(pa->name, "a", GR_SHM_NAME_MAX));

    /* A disabled project enabled behind the router's back, weights. */
    po->flags = 0;
    pa->weight = 1000000;
    pa->priority = -5;
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 2);
    CU_ASSERT_EQUAL(po->flags, GR_PROJ_CFG_DISABLED);
    CU_ASSERT_EQUAL(pa->weight, 3);
    CU_ASSERT_EQUAL(pa->priority, 2);
    CU_ASSERT_EQUAL(atomic_load(&pa->seq) & 1u, 0);

    /* A model name. */
    rtr.t.models[0].name[0] = 'X';
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT_STRING_EQUAL(rtr.t.models[0].name, "m");
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);
}

/* Named, so that a failed assertion prints no key. */
static const char *const key_a[] = {
    "rs-SECRET-a-0", "rs-SECRET-a-1", "rs-SECRET-a-2",
};
static const char forged[] = "rs-SECRET-forged";

static void
test_item17_repair_checks_every_key(void)
{
    int a = slot_of("a");
    uint32_t s;

    CU_ASSERT_FATAL(a >= 0);
    s = (uint32_t)a;
    CU_ASSERT_EQUAL(rtr.t.projects[a].n_keys, 3);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);

    /* Key 1, not key 0: a key handed to some leases only. */
    snprintf(gr_shm_key(&rtr.t, s, 1), GR_SHM_KEY_MAX, "%s", forged);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT(padded(gr_shm_key(&rtr.t, s, 1), key_a[1], GR_SHM_KEY_MAX));

    /* The last key, past its NUL. */
    gr_shm_key(&rtr.t, s, 2)[GR_SHM_KEY_MAX - 1] = 'q';
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT(padded(gr_shm_key(&rtr.t, s, 2), key_a[2], GR_SHM_KEY_MAX));

    /* An unused key slot filled in, then counted in. */
    snprintf(gr_shm_key(&rtr.t, s, 5), GR_SHM_KEY_MAX, "%s", forged);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 1);
    CU_ASSERT(padded(gr_shm_key(&rtr.t, s, 5), "", GR_SHM_KEY_MAX));
    CU_ASSERT(padded(gr_shm_key(&rtr.t, s, 0), key_a[0], GR_SHM_KEY_MAX));
    CU_ASSERT_EQUAL(rtr.t.projects[a].n_keys, 3);
    CU_ASSERT_EQUAL(gr_rtr_repair(&rtr), 0);
}

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
    char tmp[160];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL)
        return NULL;
    fprintf(f, "router = { shm = \"%s\"; base_url = \"http://127.0.0.1:%d\";"
            " batch_calls = 1; max_projects = 4; max_models = 2;"
            " window_ms = 600000; };\n"
            "models = ( { name = \"m\"; rpm = 1000; tpm = 10000000; } );\n"
            "projects = (\n"
            "  { name = \"p1\"; key = \"rs-SECRET-p1\"; },\n"
            "  { name = \"p2\"; key = \"rs-SECRET-p2\"; },\n"
            "  { name = \"p3\"; key = \"rs-SECRET-p3\"; } );\n%s",
            rt.shm, srv.port, good ? "" : "bogus = ;\n");
    fclose(f);
    return rename(tmp, path) == 0 ? path : NULL;
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

/* The router's header, mapped writable as a hostile process would. */
static struct gr_shm_header *
map_header(size_t *len)
{
    int fd = shm_open(rt.shm, O_RDWR, 0);
    void *p;

    *len = sizeof(struct gr_shm_header);
    if (fd < 0)
        return NULL;
    p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static void
test_item6_running_router_repairs_and_keeps_its_error(void)
{
    struct gr_shm_header *h;
    char url[64], keep[GR_SHM_ERR_MAX];
    uint32_t failed;
    size_t len;

    h = map_header(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
    CU_ASSERT_STRING_EQUAL(h->base_url, url);

    /* A bad reload: the router writes its error into the header. */
    failed = atomic_load(&h->reloads_failed);
    CU_ASSERT_FATAL(write_conf(rt.conf, 0) != NULL);
    kill(rt.pid, SIGHUP);
    /* (the text is written before the counter moves) */
    while (atomic_load(&h->reloads_failed) == failed)
        gr_test_sleep_ns(20 * MS);
    snprintf(keep, sizeof(keep), "%s", h->last_reload_error);
    CU_ASSERT(keep[0] != '\0');

    /* Scribble, and wait (under the watchdog) for the repair pass. */
    snprintf(h->base_url, sizeof(h->base_url), "http://evil.example");
    snprintf(h->proxy, sizeof(h->proxy), "http://evil.example:8080");
    while (strcmp(h->base_url, url) != 0 || h->proxy[0] != '\0')
        gr_test_sleep_ns(20 * MS);
    CU_ASSERT_STRING_EQUAL(h->base_url, url);
    CU_ASSERT_STRING_EQUAL(h->proxy, "");
    /* The pass that repaired them kept the error the router wrote. */
    CU_ASSERT_STRING_EQUAL(h->last_reload_error, keep);

    /* Calls go to the right place again. */
    {
        struct gr_response r;
        struct seen s;

        script(1, ans_whole);
        CU_ASSERT_EQUAL(stream(&r, &s, 0), GR_OK);
        gr_response_free(&r);
    }
    CU_ASSERT_FATAL(write_conf(rt.conf, 1) != NULL);
    munmap(h, len);
}

int
main(void)
{
    CU_TestInfo repair[] = {
        {"item 6: a scribbled base_url is repaired",
         test_item6_scribbled_base_url_is_repaired},
        {"item 6: slot names, weight, priority, flags, models repaired",
         test_item6_slot_text_and_settings_are_repaired},
        {"item 17: repair checks every key, not only key 0",
         test_item17_repair_checks_every_key},
        CU_TEST_INFO_NULL,
    };
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
        {"item 6: a running router repairs base_url, keeps its error",
         test_item6_running_router_repairs_and_keeps_its_error},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"repair", repair_setup, repair_teardown, NULL, NULL, repair},
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
    return gr_test_main("test_repair_stream", suites, 120);
}
