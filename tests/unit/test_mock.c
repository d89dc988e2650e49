/*
 * test_mock.c - gemroute-mock, from its parts to the running server.
 *
 * The "engine" suite drives the quota cells, the parsers and the writers
 * directly with made-up instants, so window edges are checked to the
 * nanosecond.  The "http" and "faults" suites fork/exec bin/gemroute-mock
 * (BIN from the environment, default "bin") on a temporary config with
 * --listen 127.0.0.1:0, read the port from its first line, and talk to it
 * over loopback with libcurl.  No assertion depends on how fast the
 * machine is: RetryInfo is checked against an interval computed from
 * instants measured around the requests, and the one "too early" probe
 * is only asserted when it provably happened too early.
 */
#include "clock.h"
#include "jsonw.h"
#include "mock_config.h"
#include "quota.h"
#include "request.h"
#include "responses.h"
#include "testlib.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S(x) ((int64_t)(x)*GR_NS_PER_S)
#define WINDOW_MS 3000

/* Keys long and odd enough that finding one in a log is no accident. */
#define K_SHAPES "gr-test-key-shapes-1f9a"
#define K_SHARED_A "gr-test-key-shared-a-77c2"
#define K_SHARED_B "gr-test-key-shared-b-91d0"
#define K_OTHER "gr-test-key-other-5b3e"
#define K_DIMS "gr-test-key-dims-c4d1"
#define K_PAID "gr-test-key-paid-0e6b"
#define K_EMB "gr-test-key-emb-3a8f"
#define K_RETRY "gr-test-key-retry-6d2b"
#define K_DAY "gr-test-key-day-8e4c"
#define K_FAULTS "gr-test-key-faults-2c7e"

static const char *const all_keys[] = {
    K_SHAPES, K_SHARED_A, K_SHARED_B, K_OTHER,  K_DIMS, K_PAID,
    K_EMB,    K_RETRY,    K_DAY,      K_FAULTS, NULL};

static const char main_conf[] =
    "window_ms = 3000;\n"
    "max_body_bytes = 65536;\n"
    "threads = 4;\n"
    "projects = (\n"
    "  { name = \"shapes\"; keys = [\"" K_SHAPES "\"];\n"
    "    limits = ( { model = \"gemini-2.5-flash\"; },\n"
    "               { model = \"gemini-embedding-001\"; } ); },\n"
    "  { name = \"shared\"; keys = [\"" K_SHARED_A "\", \"" K_SHARED_B "\"];\n"
    "    limits = ( { model = \"m-rpm\"; rpm = 3; } ); },\n"
    "  { name = \"other\"; keys = [\"" K_OTHER "\"];\n"
    "    limits = ( { model = \"m-rpm\"; rpm = 3; } ); },\n"
    "  { name = \"dims\"; keys = [\"" K_DIMS "\"];\n"
    "    limits = ( { model = \"m-tpm\"; tpm = 100; },\n"
    "               { model = \"m-ipm\"; ipm = 2; },\n"
    "               { model = \"m-rpd\"; rpd = 3; },\n"
    "               { model = \"m-multi\"; rpm = 1; tpm = 10; } ); },\n"
    "  { name = \"paid\"; keys = [\"" K_PAID "\"]; tier = \"PaidTier2\";\n"
    "    limits = ( { model = \"m-rpm\"; rpm = 1; } ); },\n"
    "  { name = \"emb\"; keys = [\"" K_EMB "\"];\n"
    "    limits = ( { model = \"gemini-embedding-001\"; rpm = 2; } ); },\n"
    "  { name = \"retry\"; keys = [\"" K_RETRY "\"];\n"
    "    limits = ( { model = \"m-retry\"; rpm = 2; } ); },\n"
    "  { name = \"day\"; keys = [\"" K_DAY "\"];\n"
    "    limits = ( { model = \"m-day\"; rpd = 2; } ); }\n"
    ");\n";

static const char faults_conf[] =
    "projects = ( { name = \"f\"; keys = [\"" K_FAULTS "\"];\n"
    "  limits = ( { model = \"gemini-flash\"; } ); } );\n"
    "faults = { p503 = 0.3; p500 = 0.1; latency_ms = [0, 2]; };\n";

/* The bodies of tests/fixtures/gemini/, which the mock must reproduce. */
static const char sample_400_key[] =
    "{\"error\": {\"code\": 400, \"message\": \"API key not valid. Please pass "
    "a valid API key.\", \"status\": \"INVALID_ARGUMENT\", \"details\": ["
    "{\"@type\": \"type.googleapis.com/google.rpc.ErrorInfo\", \"reason\": "
    "\"API_KEY_INVALID\", \"domain\": \"googleapis.com\", \"metadata\": "
    "{\"service\": \"generativelanguage.googleapis.com\"}},"
    "{\"@type\": \"type.googleapis.com/google.rpc.LocalizedMessage\", "
    "\"locale\": \"en-US\", \"message\": \"API key not valid. Please pass a "
    "valid API key.\"}]}}";
static const char sample_403_leaked[] =
    "{\"error\": {\"code\": 403, \"message\": \"Your API key was reported as "
    "leaked. Please use another API key.\", \"status\": "
    "\"PERMISSION_DENIED\"}}";
static const char sample_503[] =
    "{\"error\": {\"code\": 503, \"message\": \"The model is overloaded. "
    "Please try again later.\", \"status\": \"UNAVAILABLE\"}}";
static const char sample_500[] =
    "{\"error\": {\"code\": 500, \"message\": \"An internal error has "
    "occurred. Please retry or report in https://developers.generativeai."
    "google/guide/troubleshooting\", \"status\": \"INTERNAL\"}}";

struct mock {
    pid_t pid;
    int port;
    char conf[256];
    char log[256]; /* its stderr */
};

struct resp {
    long status;
    char *body;
    size_t len;
    char ctype[128];
};

static struct mock main_mock = {.pid = -1};
static struct mock faults_mock = {.pid = -1};
static CURL *curl;

/* ---------------------------------------------------------------- helpers */

static double
now_s(void)
{
    return (double)gr_shm_now_mono() / 1e9;
}

static void
sleep_until(double t)
{
    double d = t - now_s();
    struct timespec ts;

    if (d <= 0)
        return;
    ts.tv_sec = (time_t)d;
    ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int64_t
utc(int y, unsigned m, unsigned d, int hh, int mm, int ss)
{
    return gr_shm_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

static const char *
mock_bin(char *buf, size_t n)
{
    const char *bin = getenv("BIN");

    snprintf(buf, n, "%s/gemroute-mock", bin != NULL && bin[0] ? bin : "bin");
    return buf;
}

static int
write_temp(char *path, size_t n, const char *suffix, const char *text)
{
    const char *dir = getenv("TMPDIR");
    FILE *f;
    int fd;

    snprintf(path, n, "%s/gr-test-mock-XXXXXX%s", dir != NULL ? dir : "/tmp",
             suffix);
    fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0)
        return -errno;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -errno;
    }
    fputs(text, f);
    fclose(f);
    return 0;
}

/* fork/exec the mock and read "listening on 127.0.0.1:PORT". */
static int
mock_start(struct mock *m, const char *conf, const char *extra)
{
    char bin[512], line[256];
    int pfd[2];
    FILE *f;

    if (write_temp(m->conf, sizeof m->conf, ".conf", conf) < 0 ||
        write_temp(m->log, sizeof m->log, ".log", "") < 0 || pipe(pfd) < 0)
        return -1;
    mock_bin(bin, sizeof bin);
    m->pid = fork();
    if (m->pid < 0)
        return -1;
    if (m->pid == 0) {
        FILE *log = fopen(m->log, "w");

        dup2(pfd[1], STDOUT_FILENO);
        if (log != NULL)
            dup2(fileno(log), STDERR_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execl(bin, bin, "-c", m->conf, "--listen", "127.0.0.1:0", extra,
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    f = fdopen(pfd[0], "r");
    if (f == NULL)
        return -1;
    if (fgets(line, sizeof line, f) == NULL ||
        sscanf(line, "listening on 127.0.0.1:%d", &m->port) != 1) {
        fclose(f);
        fprintf(stderr, "test_mock: %s did not start (see %s)\n", bin, m->log);
        return -1;
    }
    fclose(f);
    return 0;
}

/* SIGTERM it; the exit status, or -1. */
static int
mock_stop(struct mock *m)
{
    int status;

    if (m->pid <= 0)
        return -1;
    kill(m->pid, SIGTERM);
    if (waitpid(m->pid, &status, 0) != m->pid)
        return -1;
    m->pid = -1;
    unlink(m->conf);
    return status;
}

static size_t
on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);

    if (nb == NULL)
        return 0;
    r->body = nb;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t
on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t len = sz * n;

    if (len > 13 && strncasecmp(p, "content-type:", 13) == 0) {
        const char *v = p + 13;
        size_t k = len - 13;

        while (k > 0 && *v == ' ') {
            v++;
            k--;
        }
        snprintf(r->ctype, sizeof r->ctype, "%.*s", (int)k, v);
        r->ctype[strcspn(r->ctype, "\r\n")] = '\0';
    }
    return len;
}

struct upload {
    const char *data;
    size_t len;
    size_t off;
};

static size_t
on_read(char *buf, size_t sz, size_t n, void *ud)
{
    struct upload *u = ud;
    size_t k = sz * n;

    if (k > u->len - u->off)
        k = u->len - u->off;
    memcpy(buf, u->data + u->off, k);
    u->off += k;
    return k;
}

static void
resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/*
 * One request to m.  key goes in x-goog-api-key (NULL: none); body NULL
 * means GET.  chunked sends the body without a Content-Length.
 */
static int
http_ex(const struct mock *m, const char *path, const char *key,
        const char *body, size_t body_len, int chunked, struct resp *r)
{
    struct curl_slist *hdrs = NULL;
    struct upload up = {body, body_len, 0};
    char url[1024], h[512];
    CURLcode rc;

    memset(r, 0, sizeof *r);
    curl_easy_reset(curl);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", m->port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (key != NULL) {
        snprintf(h, sizeof h, "x-goog-api-key: %s", key);
        hdrs = curl_slist_append(hdrs, h);
    }
    if (body != NULL && chunked) {
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, &up);
    } else if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)body_len);
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(curl);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        fprintf(stderr, "test_mock: %s: %s\n", path, curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body == NULL)
        r->body = calloc(1, 1);
    return 0;
}

static int
http(const struct mock *m, const char *path, const char *key, const char *body,
     struct resp *r)
{
    return http_ex(m, path, key, body, body != NULL ? strlen(body) : 0, 0, r);
}

/* POST a body and return only the status (0 on transport failure). */
static long
post_status(const struct mock *m, const char *path, const char *key,
            const char *body)
{
    struct resp r;
    long s;

    if (http(m, path, key, body, &r) < 0)
        return 0;
    s = r.status;
    resp_free(&r);
    return s;
}

/* {"contents":[{"parts":[{"text":"aaa..."}]}]} with n bytes of text. */
static char *
text_body(size_t n)
{
    static const char head[] = "{\"contents\":[{\"parts\":[{\"text\":\"";
    static const char tail[] = "\"}]}]}";
    char *b = malloc(sizeof head + n + sizeof tail);

    memcpy(b, head, sizeof head - 1);
    memset(b + sizeof head - 1, 'a', n);
    memcpy(b + sizeof head - 1 + n, tail, sizeof tail);
    return b;
}

static long
post_text(const struct mock *m, const char *model, const char *key, size_t n)
{
    char path[256], *b = text_body(n);
    long s;

    snprintf(path, sizeof path, "/v1beta/models/%s:generateContent", model);
    s = post_status(m, path, key, b);
    free(b);
    return s;
}

/* The value at a dotted path ("error.details.0.@type"); NULL if none. */
static struct json_object *
jget(struct json_object *o, const char *path)
{
    char buf[256], *save = NULL, *tok;

    snprintf(buf, sizeof buf, "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok != NULL && o != NULL;
         tok = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array)) {
            size_t i = strtoul(tok, NULL, 10);

            o = i < json_object_array_length(o)
                    ? json_object_array_get_idx(o, i)
                    : NULL;
        } else if (!json_object_object_get_ex(o, tok, &o)) {
            o = NULL;
        }
    }
    return o;
}

static const char *
jstr(struct json_object *o, const char *path)
{
    struct json_object *v = jget(o, path);

    return v != NULL && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : "";
}

static int64_t
jint(struct json_object *o, const char *path)
{
    struct json_object *v = jget(o, path);

    return v != NULL ? json_object_get_int64(v) : -1;
}

/* "26s", "26.500s" -> seconds; NAN when malformed. */
static double
duration_s(const char *s)
{
    char *end;
    double v = strtod(s, &end);

    return (end != s && strcmp(end, "s") == 0) ? v : NAN;
}

static int
same_json(const char *a, const char *b)
{
    struct json_object *ja = json_tokener_parse(a), *jb = json_tokener_parse(b);
    int eq = ja != NULL && jb != NULL && json_object_equal(ja, jb);

    json_object_put(ja);
    json_object_put(jb);
    return eq;
}

/*
 * POST and expect a 429; returns the parsed body (caller puts it) and the
 * retryDelay in *retry.
 */
static struct json_object *
expect_429(const struct mock *m, const char *path, const char *key,
           const char *body, double *retry)
{
    struct json_object *j;
    struct resp r;

    if (http(m, path, key, body, &r) < 0)
        return NULL;
    CU_ASSERT_EQUAL(r.status, 429);
    j = json_tokener_parse(r.body);
    resp_free(&r);
    if (j == NULL)
        return NULL;
    if (retry != NULL)
        *retry = duration_s(jstr(j, "error.details.2.retryDelay"));
    return j;
}

/* Check the shape of a 429 with exactly one violation. */
static void
check_violation(struct json_object *j, int idx, const char *metric,
                const char *quota_id, const char *model, const char *value)
{
    char p[128];

    snprintf(p, sizeof p, "error.details.0.violations.%d.quotaMetric", idx);
    CU_ASSERT_STRING_EQUAL(jstr(j, p), metric);
    snprintf(p, sizeof p, "error.details.0.violations.%d.quotaId", idx);
    CU_ASSERT_STRING_EQUAL(jstr(j, p), quota_id);
    snprintf(p, sizeof p,
             "error.details.0.violations.%d.quotaDimensions.location", idx);
    CU_ASSERT_STRING_EQUAL(jstr(j, p), "global");
    snprintf(p, sizeof p, "error.details.0.violations.%d.quotaDimensions.model",
             idx);
    CU_ASSERT_STRING_EQUAL(jstr(j, p), model);
    snprintf(p, sizeof p, "error.details.0.violations.%d.quotaValue", idx);
    CU_ASSERT_STRING_EQUAL(jstr(j, p), value);
}

static void
check_429_frame(struct json_object *j, size_t n_violations)
{
    const char *msg = jstr(j, "error.message");
    const char *delay = jstr(j, "error.details.2.retryDelay");
    char tail[80];
    size_t lines = 0;
    const char *p;

    CU_ASSERT_EQUAL(jint(j, "error.code"), 429);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "RESOURCE_EXHAUSTED");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.0.@type"),
                           "type.googleapis.com/google.rpc.QuotaFailure");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.1.@type"),
                           "type.googleapis.com/google.rpc.Help");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.1.links.0.url"),
                           "https://ai.google.dev/gemini-api/docs/rate-limits");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.2.@type"),
                           "type.googleapis.com/google.rpc.RetryInfo");
    CU_ASSERT_EQUAL(
        json_object_array_length(jget(j, "error.details.0.violations")),
        n_violations);
    CU_ASSERT(!isnan(duration_s(delay)));
    /* The message repeats the delay and lists each violation. */
    snprintf(tail, sizeof tail, "Please retry in %s.", delay);
    CU_ASSERT(strlen(msg) > strlen(tail) &&
              strcmp(msg + strlen(msg) - strlen(tail), tail) == 0);
    for (p = msg; (p = strstr(p, "\n* Quota exceeded for metric: ")) != NULL;
         p++)
        lines++;
    CU_ASSERT_EQUAL(lines, n_violations);
}

static struct json_object *
stats(const struct mock *m)
{
    struct json_object *j;
    struct resp r;

    if (http(m, "/mock/stats", NULL, NULL, &r) < 0)
        return NULL;
    j = json_tokener_parse(r.body);
    resp_free(&r);
    return j;
}

static int
set_wall(const struct mock *m, int64_t unix_s)
{
    char body[64];

    snprintf(body, sizeof body, "{\"wall_s\": %lld}", (long long)unix_s);
    return post_status(m, "/mock/clock", NULL, body) == 200 ? 0 : -1;
}

/* --------------------------------------------------- engine (no server) */

static const int64_t unlimited[GR_MOCK_NDIMS] = {
    GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED,
    GR_MOCK_UNLIMITED};

static int
admit(struct gr_mock_cell *c, int64_t req, int64_t tok, int64_t img, int64_t at,
      int64_t wall, struct gr_mock_verdict *v)
{
    struct gr_mock_cost cost = {req, tok, img};

    return gr_mock_cell_admit_at(c, &cost, at, wall, S(60), GR_MOCK_SERVE, v);
}

static void
test_window_edge_to_the_nanosecond(void)
{
    int64_t lim[GR_MOCK_NDIMS] = {2, GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED,
                                  GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED};
    int64_t wall = S(utc(2026, 7, 1, 12, 0, 0));
    struct gr_mock_cell c;
    struct gr_mock_verdict v;

    CU_ASSERT_EQUAL(gr_mock_cell_init(&c, lim), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, S(100), wall, &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, S(110), wall, &v), 0);
    /* (t - 60 s, t] still holds the admission at 100 s until t = 160 s. */
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, S(160) - 1, wall, &v), -EAGAIN);
    CU_ASSERT_EQUAL(v.violated, 1u << GR_MOCK_RPM);
    CU_ASSERT_EQUAL(v.retry_ns, 1);
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, S(160), wall, &v), 0);
    /* Now 110 s and 160 s are inside: room again at 170 s. */
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, S(165), wall, &v), -EAGAIN);
    CU_ASSERT_EQUAL(v.retry_ns, S(5));
    CU_ASSERT_EQUAL(c.c.admitted, 3);
    CU_ASSERT_EQUAL(c.c.refused, 2);
    CU_ASSERT_EQUAL(c.c.refused_dim[GR_MOCK_RPM], 2);
    gr_mock_cell_destroy(&c);
}

static void
test_tokens_retry_finds_the_right_admission(void)
{
    int64_t lim[GR_MOCK_NDIMS] = {GR_MOCK_UNLIMITED, 100, GR_MOCK_UNLIMITED,
                                  GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED};
    struct gr_mock_cell c;
    struct gr_mock_verdict v;

    gr_mock_cell_init(&c, lim);
    CU_ASSERT_EQUAL(admit(&c, 1, 30, 0, S(0), 0, &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 30, 0, S(10), 0, &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 40, 0, S(20), 0, &v), 0);
    /* 50 more need 50 freed: the first (30) is not enough, the second
     * (60 in all) is, and it leaves at 10 + 60 = 70 s. */
    CU_ASSERT_EQUAL(admit(&c, 1, 50, 0, S(30), 0, &v), -EAGAIN);
    CU_ASSERT_EQUAL(v.violated, 1u << GR_MOCK_TPM);
    CU_ASSERT_EQUAL(v.retry_ns, S(40));
    /* Exactly at the limit passes; one more token does not. */
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, S(30), 0, &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 30, 0, S(61), 0, &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 1, 0, S(61), 0, &v), -EAGAIN);
    /* A request bigger than the limit never fits: a whole window. */
    CU_ASSERT_EQUAL(admit(&c, 1, 101, 0, S(200), 0, &v), -EAGAIN);
    CU_ASSERT_EQUAL(v.retry_ns, S(60));
    gr_mock_cell_destroy(&c);
}

static void
test_all_or_nothing_and_many_violations(void)
{
    int64_t lim[GR_MOCK_NDIMS] = {1, 10, 5, 1, GR_MOCK_UNLIMITED};
    struct gr_mock_cell c;
    struct gr_mock_verdict v;

    gr_mock_cell_init(&c, lim);
    CU_ASSERT_EQUAL(admit(&c, 1, 20, 2, S(0), 0, &v), -EAGAIN);
    CU_ASSERT_EQUAL(v.violated, (1u << GR_MOCK_TPM) | (1u << GR_MOCK_IPM));
    /* The refused request cost nothing on any dimension. */
    CU_ASSERT_EQUAL(admit(&c, 1, 10, 1, S(1), 0, &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 1, 1, S(2), 0, &v), -EAGAIN);
    CU_ASSERT_EQUAL(v.violated, (1u << GR_MOCK_RPM) | (1u << GR_MOCK_TPM) |
                                    (1u << GR_MOCK_IPM));
    CU_ASSERT_EQUAL(v.retry_ns, S(59));
    CU_ASSERT_EQUAL(c.day_requests, 1);
    CU_ASSERT_EQUAL(c.c.refused_dim[GR_MOCK_TPM], 2);
    CU_ASSERT_EQUAL(c.c.refused_dim[GR_MOCK_RPM], 1);
    gr_mock_cell_destroy(&c);
}

static void
test_day_resets_at_pacific_midnight(void)
{
    int64_t lim[GR_MOCK_NDIMS] = {GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED, 1,
                                  GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED};
    struct gr_mock_cell c;
    struct gr_mock_verdict v;

    gr_mock_cell_init(&c, lim);
    /* 2026-11-01 is 25 hours long in Los Angeles. */
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, 0, S(utc(2026, 11, 1, 7, 0, 0)), &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, 0, S(utc(2026, 11, 2, 7, 30, 0)), &v),
                    -EAGAIN);
    CU_ASSERT_EQUAL(v.violated, 1u << GR_MOCK_RPD);
    CU_ASSERT_EQUAL(v.retry_ns, S(1800));
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, 0, S(utc(2026, 11, 2, 8, 0, 0)) - 1, &v),
                    -EAGAIN);
    CU_ASSERT_EQUAL(v.retry_ns, 1);
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, 0, S(utc(2026, 11, 2, 8, 0, 0)), &v), 0);
    gr_mock_cell_destroy(&c);
}

/* Tokens per day: counted in input tokens, refused past the limit until
 * Pacific midnight (RetryInfo says so), and the next day starts at 0. */
static void
test_tokens_per_day(void)
{
    int64_t lim[GR_MOCK_NDIMS] = {GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED,
                                  GR_MOCK_UNLIMITED, GR_MOCK_UNLIMITED, 100};
    int64_t noon = S(utc(2026, 7, 1, 12, 0, 0));    /* 05:00 PDT */
    struct gr_mock_cell c;
    struct gr_mock_verdict v;

    gr_mock_cell_init(&c, lim);
    CU_ASSERT_EQUAL(admit(&c, 1, 60, 0, S(1), noon, &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 40, 0, S(2), noon, &v), 0);
    CU_ASSERT_EQUAL(admit(&c, 1, 1, 0, S(3), noon, &v), -EAGAIN);
    CU_ASSERT_EQUAL(v.violated, 1u << GR_MOCK_TPD);
    /* until 07:00 UTC on the 2nd, Pacific midnight (PDT) */
    CU_ASSERT_EQUAL(v.retry_ns, S(19 * 3600));
    /* a call without tokens does not count on it */
    CU_ASSERT_EQUAL(admit(&c, 1, 0, 0, S(4), noon, &v), 0);
    CU_ASSERT_EQUAL(c.day_tokens, 100);
    CU_ASSERT_EQUAL(c.c.refused_dim[GR_MOCK_TPD], 1);
    CU_ASSERT_EQUAL(admit(&c, 1, 100, 0, S(5),
                          S(utc(2026, 7, 2, 7, 0, 0)), &v), 0);
    CU_ASSERT_EQUAL(c.day_tokens, 100);
    gr_mock_cell_destroy(&c);
}

static void
test_unlimited_cells_keep_no_log(void)
{
    struct gr_mock_cell c;
    struct gr_mock_verdict v;
    int i;

    gr_mock_cell_init(&c, unlimited);
    for (i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(admit(&c, 1, 100, 1, S(i), 0, &v), 0);
    CU_ASSERT_EQUAL(c.cap, 0);
    CU_ASSERT_EQUAL(c.c.tokens, 100000);
    CU_ASSERT_EQUAL(c.c.images, 1000);
    gr_mock_cell_destroy(&c);
}

static void
test_route_parse(void)
{
    struct gr_mock_route r;

    gr_mock_route_parse("POST",
                        "/v1beta/models/gemini-2.5-flash:generateContent", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_MODEL);
    CU_ASSERT_EQUAL(r.method, GR_MOCK_GENERATE_CONTENT);
    CU_ASSERT_STRING_EQUAL(r.model, "gemini-2.5-flash");
    CU_ASSERT_STRING_EQUAL(r.version, "v1beta");
    gr_mock_route_parse("POST", "/v1/models/x:batchEmbedContents", &r);
    CU_ASSERT_EQUAL(r.method, GR_MOCK_BATCH_EMBED_CONTENTS);
    /* Absolute form, as a client sends it to a proxy. */
    gr_mock_route_parse("POST", "http://gr.invalid:9/v1/models/x:countTokens",
                        &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_MODEL);
    CU_ASSERT_EQUAL(r.method, GR_MOCK_COUNT_TOKENS);
    CU_ASSERT_STRING_EQUAL(r.model, "x");
    gr_mock_route_parse("GET", "HTTPS://gr.invalid/mock/stats", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_STATS);
    gr_mock_route_parse("GET", "http://gr.invalid", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("GET", "/v1beta/models/x:generateContent", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/v1beta/models/x:explode", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/v1beta/models/a b:generateContent", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/v1beta/models/:generateContent", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("GET", "/mock/stats", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_STATS);
    gr_mock_route_parse("GET", "/mock/reset", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
}

static int
parse(enum gr_mock_method m, const char *body, struct gr_mock_usage *u)
{
    char msg[256], field[64];

    return gr_mock_parse_body(m, body, strlen(body), u, msg, sizeof msg, field,
                              sizeof field);
}

static void
test_body_token_and_image_counts(void)
{
    struct gr_mock_usage u;
    char deep[4096];
    size_t i;

    /* 5 + 4 bytes of text over two contents: ceil(9 / 4) = 3 tokens. */
    CU_ASSERT_EQUAL(
        parse(GR_MOCK_GENERATE_CONTENT,
              "{\"contents\":[{\"parts\":[{\"text\":\"hello\"}]},"
              "{\"role\":\"model\",\"parts\":[{\"text\":\"abcd\"},"
              "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"\"}},"
              "{\"inline_data\":{\"mime_type\":\"image/jpeg\",\"data\":\"\"}},"
              "{\"inlineData\":{\"mimeType\":\"application/pdf\"}}]}]}",
              &u),
        0);
    CU_ASSERT_EQUAL(u.text_bytes, 9);
    CU_ASSERT_EQUAL(u.tokens, 3);
    CU_ASSERT_EQUAL(u.images, 0);   /* input images cost no IPM */
    CU_ASSERT_EQUAL(u.requests, 1);
    /* IPM counts the images asked for: candidateCount with IMAGE */
    CU_ASSERT_EQUAL(
        parse(GR_MOCK_GENERATE_CONTENT,
              "{\"contents\":[{\"parts\":[{\"text\":\"a cat\"}]}],"
              "\"generationConfig\":{\"responseModalities\":[\"TEXT\","
              "\"Image\"],\"candidateCount\":3}}",
              &u),
        0);
    CU_ASSERT_EQUAL(u.images, 3);
    CU_ASSERT_EQUAL(
        parse(GR_MOCK_GENERATE_CONTENT,
              "{\"contents\":[{\"parts\":[{\"text\":\"a cat\"}]}],"
              "\"generation_config\":{\"response_modalities\":"
              "[\"IMAGE\"]}}",
              &u),
        0);
    CU_ASSERT_EQUAL(u.images, 1);
    CU_ASSERT_EQUAL(
        parse(GR_MOCK_GENERATE_CONTENT,
              "{\"contents\":[{\"parts\":[{\"text\":\"a cat\"}]}],"
              "\"generationConfig\":{\"responseModalities\":[\"TEXT\"],"
              "\"candidateCount\":3}}",
              &u),
        0);
    CU_ASSERT_EQUAL(u.images, 0);
    CU_ASSERT_EQUAL(
        parse(GR_MOCK_COUNT_TOKENS,
              "{\"generateContentRequest\":{\"contents\":[{\"parts\":"
              "[{\"text\":\"12345678\"}]}]}}",
              &u),
        0);
    CU_ASSERT_EQUAL(u.tokens, 2);
    CU_ASSERT_EQUAL(
        parse(GR_MOCK_BATCH_EMBED_CONTENTS,
              "{\"requests\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}},"
              "{\"content\":{\"parts\":[{\"text\":\"b\"}]}}]}",
              &u),
        0);
    CU_ASSERT_EQUAL(u.requests, 2);
    /* Malformed input of every kind is an error, never a crash. */
    CU_ASSERT_EQUAL(parse(GR_MOCK_GENERATE_CONTENT, "{\"contents\": [", &u),
                    -EINVAL);
    CU_ASSERT_EQUAL(parse(GR_MOCK_GENERATE_CONTENT, "{} junk", &u), -EINVAL);
    CU_ASSERT_EQUAL(parse(GR_MOCK_GENERATE_CONTENT, "[1, 2]", &u), -EINVAL);
    CU_ASSERT_EQUAL(parse(GR_MOCK_GENERATE_CONTENT, "{\"contents\": 3}", &u),
                    -EINVAL);
    CU_ASSERT_EQUAL(parse(GR_MOCK_GENERATE_CONTENT,
                          "{\"contents\": [{\"parts\": [{\"text\": 7}]}]}", &u),
                    -EINVAL);
    CU_ASSERT_EQUAL(parse(GR_MOCK_EMBED_CONTENT, "{}", &u), -EINVAL);
    for (i = 0; i < sizeof deep - 1; i++)
        deep[i] = i < (sizeof deep - 1) / 2 ? '[' : ']';
    deep[sizeof deep - 1] = '\0';
    CU_ASSERT_EQUAL(parse(GR_MOCK_GENERATE_CONTENT, deep, &u), -EINVAL);
}

static void
test_duration_and_quota_names(void)
{
    char s[64];

    gr_mock_duration(S(26), s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "26s");
    gr_mock_duration(S(26) + 500000000, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "26.500s");
    gr_mock_duration(S(47) + 434392449, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "47.434392449s");
    gr_mock_duration(-5, s, sizeof s);
    CU_ASSERT_STRING_EQUAL(s, "0s");
    gr_mock_quota_id(GR_MOCK_FREE_TIER, GR_MOCK_GENERATE, GR_MOCK_TPM, s,
                     sizeof s);
    CU_ASSERT_STRING_EQUAL(
        s, "GenerateContentInputTokensPerModelPerMinute-FreeTier");
    gr_mock_quota_id(GR_MOCK_PAID_TIER1, GR_MOCK_GENERATE, GR_MOCK_TPM, s,
                     sizeof s);
    CU_ASSERT_STRING_EQUAL(
        s, "GenerateContentPaidTierInputTokensPerModelPerMinute");
    gr_mock_quota_id(GR_MOCK_PAID_TIER2, GR_MOCK_GENERATE, GR_MOCK_RPD, s,
                     sizeof s);
    CU_ASSERT_STRING_EQUAL(
        s, "GenerateRequestsPerDayPerProjectPerModel-PaidTier2");
    CU_ASSERT_STRING_EQUAL(
        gr_mock_quota_metric(GR_MOCK_FREE_TIER, GR_MOCK_GENERATE, GR_MOCK_RPM),
        "generativelanguage.googleapis.com/"
        "generate_content_free_tier_requests");
}

static void
test_json_writer_escapes(void)
{
    struct gr_mock_buf b = {0};
    struct gr_mock_jw w;
    struct json_object *j;
    const char nasty[] = "q\"b\\s/\n\t\x01\x1f end";

    gr_mock_jw_init(&w, &b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_str(&w, "k\"ey", nasty);
    gr_mock_jw_array(&w, "a");
    gr_mock_jw_int(&w, NULL, -3);
    gr_mock_jw_double(&w, NULL, 0.5, 6);
    gr_mock_jw_bool(&w, NULL, 1);
    gr_mock_jw_null(&w, NULL);
    gr_mock_jw_end(&w);
    gr_mock_jw_object(&w, "empty");
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    CU_ASSERT_FALSE(b.failed);
    j = json_tokener_parse(b.data);
    CU_ASSERT_PTR_NOT_NULL(j);
    CU_ASSERT_STRING_EQUAL(jstr(j, "k\"ey"), nasty);
    CU_ASSERT_EQUAL(jint(j, "a.0"), -3);
    json_object_put(j);
    gr_mock_buf_free(&b);
}

/* tests/mock/bad-*.conf: line 1 is "# expect: :LINE: message". */
static void
test_bad_configs_name_file_and_line(void)
{
    DIR *d = opendir("tests/mock");
    struct dirent *e;
    unsigned seen = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((e = readdir(d)) != NULL) {
        char path[512], first[512], want[1024], err[1024];
        struct gr_mock_config *cfg = NULL;
        FILE *f;

        if (strncmp(e->d_name, "bad-", 4) != 0)
            continue;
        snprintf(path, sizeof path, "tests/mock/%s", e->d_name);
        f = fopen(path, "r");
        if (f == NULL || fgets(first, sizeof first, f) == NULL) {
            CU_FAIL("unreadable fixture");
            if (f != NULL)
                fclose(f);
            continue;
        }
        fclose(f);
        first[strcspn(first, "\n")] = '\0';
        CU_ASSERT_EQUAL(strncmp(first, "# expect: ", 10), 0);
        snprintf(want, sizeof want, "%s%s", path, first + 10);
        CU_ASSERT_EQUAL(gr_mock_config_load(path, &cfg, err, sizeof err),
                        -EINVAL);
        CU_ASSERT_PTR_NULL(cfg);
        if (strcmp(err, want) != 0)
            fprintf(stderr, "\n  got  %s\n  want %s\n", err, want);
        CU_ASSERT_STRING_EQUAL(err, want);
        /* A key never appears in a message, even about that key. */
        CU_ASSERT_PTR_NULL(strstr(err, "secret-key-dup"));
        seen++;
    }
    closedir(d);
    CU_ASSERT(seen >= 10);
}

static void
test_bad_config_exits_2(void)
{
    char bin[512];
    int status;
    pid_t pid;

    mock_bin(bin, sizeof bin);
    pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_WRONLY);

        dup2(nul, STDERR_FILENO);
        execl(bin, bin, "-c", "tests/mock/bad-tier.conf", "--listen",
              "127.0.0.1:0", (char *)NULL);
        _exit(127);
    }
    CU_ASSERT_FATAL(pid > 0);
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

/* ------------------------------------------------------------ http suite */

static int
http_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    if (curl == NULL)
        return -1;
    return mock_start(&main_mock, main_conf, "--verbose") < 0 ? -1 : 0;
}

static int
http_cleanup(void)
{
    mock_stop(&main_mock);
    if (main_mock.log[0] != '\0')
        unlink(main_mock.log);
    return 0;
}

static void
http_setup(void)
{
    CU_ASSERT_EQUAL(post_status(&main_mock, "/mock/reset", NULL, ""), 200);
}

static const char hello_body[] =
    "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hello, "
    "mock!\"}]},"
    "{\"role\":\"model\",\"parts\":[{\"text\":\"12345\"}]}]}";

static void
test_generate_content_shape(void)
{
    struct json_object *j;
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(
        http(&main_mock, "/v1beta/models/gemini-2.5-flash:generateContent",
             K_SHAPES, hello_body, &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.ctype, "application/json"));
    j = json_tokener_parse(r.body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(strlen(jstr(j, "candidates.0.content.parts.0.text")) > 0);
    CU_ASSERT_STRING_EQUAL(jstr(j, "candidates.0.content.role"), "model");
    CU_ASSERT_STRING_EQUAL(jstr(j, "candidates.0.finishReason"), "STOP");
    /* 12 + 5 bytes of text: ceil(17 / 4) = 5 tokens. */
    CU_ASSERT_EQUAL(jint(j, "usageMetadata.promptTokenCount"), 5);
    CU_ASSERT_EQUAL(jint(j, "usageMetadata.candidatesTokenCount"),
                    gr_mock_answer_tokens());
    CU_ASSERT_EQUAL(jint(j, "usageMetadata.totalTokenCount"),
                    5 + gr_mock_answer_tokens());
    CU_ASSERT_STRING_EQUAL(
        jstr(j, "usageMetadata.promptTokensDetails.0.modality"), "TEXT");
    CU_ASSERT_STRING_EQUAL(jstr(j, "modelVersion"), "gemini-2.5-flash");
    CU_ASSERT(strlen(jstr(j, "responseId")) >= 16);
    json_object_put(j);
    resp_free(&r);
}

static void
test_stream_sse_repeats_cumulative_usage(void)
{
    struct resp r;
    char *p, *ev, text[512] = "";
    int64_t last_candidates = 0;
    int events = 0, stops = 0;

    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/gemini-2.5-flash:"
                               "streamGenerateContent?alt=sse",
                               K_SHAPES, hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.ctype, "text/event-stream"));
    /* Events are "data: {...}\r\n\r\n". */
    CU_ASSERT(r.len > 4 && strcmp(r.body + r.len - 4, "\r\n\r\n") == 0);
    for (p = r.body; (ev = strstr(p, "\r\n\r\n")) != NULL; p = ev + 4) {
        struct json_object *j;

        *ev = '\0';
        CU_ASSERT_EQUAL(strncmp(p, "data: ", 6), 0);
        CU_ASSERT_PTR_NULL(strchr(p, '\n'));
        j = json_tokener_parse(p + 6);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_EQUAL(jint(j, "usageMetadata.promptTokenCount"), 5);
        CU_ASSERT(jint(j, "usageMetadata.candidatesTokenCount") >=
                  last_candidates);
        last_candidates = jint(j, "usageMetadata.candidatesTokenCount");
        CU_ASSERT_EQUAL(jint(j, "usageMetadata.totalTokenCount"),
                        5 + last_candidates);
        strncat(text, jstr(j, "candidates.0.content.parts.0.text"),
                sizeof text - strlen(text) - 1);
        if (strcmp(jstr(j, "candidates.0.finishReason"), "STOP") == 0)
            stops++;
        events++;
        json_object_put(j);
    }
    CU_ASSERT(events >= 2);
    CU_ASSERT_EQUAL(stops, 1);
    CU_ASSERT_EQUAL(last_candidates, gr_mock_answer_tokens());
    CU_ASSERT(strlen(text) > 0);
    resp_free(&r);
}

static void
test_stream_without_sse_is_an_array(void)
{
    struct json_object *j;
    struct resp r;
    size_t n;

    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/gemini-2.5-flash:"
                               "streamGenerateContent",
                               K_SHAPES, hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_FATAL(j != NULL && json_object_is_type(j, json_type_array));
    n = json_object_array_length(j);
    CU_ASSERT(n >= 2);
    CU_ASSERT_EQUAL(jint(json_object_array_get_idx(j, n - 1),
                         "usageMetadata.candidatesTokenCount"),
                    gr_mock_answer_tokens());
    json_object_put(j);
    resp_free(&r);
    /* Its errors come wrapped in [ ... ] as well. */
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/gemini-2.5-flash:"
                               "streamGenerateContent",
                               "no-such-key", hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    j = json_tokener_parse(r.body);
    CU_ASSERT(j != NULL && json_object_is_type(j, json_type_array) &&
              jint(json_object_array_get_idx(j, 0), "error.code") == 400);
    json_object_put(j);
    resp_free(&r);
}

static void
test_count_tokens_shape_and_free(void)
{
    struct json_object *j;
    struct resp r;
    int i;

    CU_ASSERT_EQUAL_FATAL(http(&main_mock, "/v1beta/models/m-rpm:countTokens",
                               K_SHARED_A, hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jint(j, "totalTokens"), 5);
    json_object_put(j);
    resp_free(&r);
    /* countTokens costs no quota: rpm = 3 is still whole afterwards. */
    for (i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(post_status(&main_mock,
                                    "/v1beta/models/m-rpm:countTokens",
                                    K_SHARED_A, hello_body),
                        200);
    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 429);
    j = stats(&main_mock);
    CU_ASSERT_EQUAL(jint(j, "projects.shared.models.m-rpm.count_tokens_calls"),
                    11);
    CU_ASSERT_EQUAL(jint(j, "projects.shared.models.m-rpm.admitted"), 3);
    json_object_put(j);
}

static void
test_embed_shapes(void)
{
    struct json_object *j;
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(
        http(&main_mock,
             "/v1beta/models/gemini-embedding-001:"
             "embedContent",
             K_SHAPES, "{\"content\":{\"parts\":[{\"text\":\"hi\"}]}}", &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(json_object_array_length(jget(j, "embedding.values")),
                    GR_MOCK_EMBED_DIMS);
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/gemini-embedding-001:"
                               "batchEmbedContents",
                               K_SHAPES,
                               "{\"requests\":["
                               "{\"content\":{\"parts\":[{\"text\":\"a\"}]},"
                               "\"outputDimensionality\":8},"
                               "{\"content\":{\"parts\":[{\"text\":\"b\"}]}},"
                               "{\"content\":{\"parts\":[{\"text\":\"c\"}]}}]}",
                               &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(json_object_array_length(jget(j, "embeddings")), 3);
    CU_ASSERT_EQUAL(json_object_array_length(jget(j, "embeddings.2.values")),
                    8);
    json_object_put(j);
    resp_free(&r);
}

static void
test_two_keys_share_one_project_quota(void)
{
    struct json_object *j;
    char *b;

    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 200);
    /* The second key goes in the query string, as Google also allows. */
    b = text_body(4);
    CU_ASSERT_EQUAL(post_status(&main_mock,
                                "/v1beta/models/m-rpm:generateContent"
                                "?key=" K_SHARED_B,
                                NULL, b),
                    200);
    free(b);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_B, 4), 429);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 429);
    /* Another project with the same model has its own quota. */
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_OTHER, 4), 200);
    j = stats(&main_mock);
    CU_ASSERT_EQUAL(jint(j, "projects.shared.models.m-rpm.admitted"), 3);
    CU_ASSERT_EQUAL(jint(j, "projects.shared.models.m-rpm.quota_429.rpm"), 2);
    CU_ASSERT_EQUAL(jint(j, "projects.shared.models.m-rpm.window.requests"), 3);
    CU_ASSERT_EQUAL(jint(j, "projects.other.models.m-rpm.admitted"), 1);
    json_object_put(j);
}

static void
test_rpm_refuses_at_its_limit(void)
{
    struct json_object *j;
    char *b = text_body(4);

    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 200);
    j = expect_429(&main_mock, "/v1beta/models/m-rpm:generateContent",
                   K_SHARED_A, b, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_429_frame(j, 1);
    check_violation(j, 0,
                    "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "m-rpm", "3");
    CU_ASSERT_PTR_NOT_NULL(
        strstr(jstr(j, "error.message"),
               "\n* Quota exceeded for metric: generativelanguage."
               "googleapis.com/generate_content_free_tier_requests, "
               "limit: 3, model: m-rpm\n"));
    json_object_put(j);
    free(b);
}

static void
test_tpm_refuses_at_its_limit(void)
{
    struct json_object *j;
    char *b = text_body(41 * 4);

    /* tpm = 100: 60 pass, 41 more do not, exactly 40 more do, then 1 not. */
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-tpm", K_DIMS, 60 * 4), 200);
    j = expect_429(&main_mock, "/v1beta/models/m-tpm:generateContent", K_DIMS,
                   b, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_429_frame(j, 1);
    check_violation(j, 0,
                    "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_input_token_count",
                    "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                    "m-tpm", "100");
    json_object_put(j);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-tpm", K_DIMS, 40 * 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-tpm", K_DIMS, 1), 429);
    j = stats(&main_mock);
    CU_ASSERT_EQUAL(jint(j, "projects.dims.models.m-tpm.tokens"), 100);
    CU_ASSERT_EQUAL(jint(j, "projects.dims.models.m-tpm.window.tokens"), 100);
    CU_ASSERT_EQUAL(jint(j, "projects.dims.models.m-tpm.quota_429.tpm"), 2);
    CU_ASSERT_EQUAL(jint(j, "projects.dims.models.m-tpm.served"), 2);
    json_object_put(j);
    free(b);
}

static void
test_ipm_counts_image_parts(void)
{
    /* IPM counts images generated (Google's rate-limit page: only for
     * models that generate images), never input images. */
    static const char two_images[] =
        "{\"contents\":[{\"parts\":[{\"text\":\"two cats\"}]}],"
        "\"generationConfig\":{\"responseModalities\":[\"TEXT\",\"IMAGE\"],"
        "\"candidateCount\":2}}";
    static const char one_image[] =
        "{\"contents\":[{\"parts\":[{\"text\":\"a cat\"}]}],"
        "\"generationConfig\":{\"responseModalities\":[\"IMAGE\"]}}";
    static const char input_images[] =
        "{\"contents\":[{\"parts\":[{\"text\":\"look\"},"
        "{\"inlineData\":{\"mimeType\":\"image/"
        "png\",\"data\":\"iVBORw0KGgo=\"}},"
        "{\"inline_data\":{\"mime_type\":\"image/jpeg\",\"data\":\"/9j/\"}}"
        "]}]}";
    struct json_object *j;

    CU_ASSERT_EQUAL(post_status(&main_mock,
                                "/v1beta/models/m-ipm:generateContent", K_DIMS,
                                two_images),
                    200);
    j = expect_429(&main_mock, "/v1beta/models/m-ipm:generateContent", K_DIMS,
                   one_image, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_429_frame(j, 1);
    check_violation(j, 0,
                    "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_input_image_count",
                    "GenerateContentInputImagesPerModelPerMinute-FreeTier",
                    "m-ipm", "2");
    json_object_put(j);
    /* Input images, and no image asked for: no IPM cost. */
    CU_ASSERT_EQUAL(post_status(&main_mock,
                                "/v1beta/models/m-ipm:generateContent", K_DIMS,
                                input_images),
                    200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-ipm", K_DIMS, 8), 200);
    j = stats(&main_mock);
    CU_ASSERT_EQUAL(jint(j, "projects.dims.models.m-ipm.images"), 2);
    CU_ASSERT_EQUAL(jint(j, "projects.dims.models.m-ipm.quota_429.ipm"), 1);
    json_object_put(j);
}

static void
test_rpd_refuses_at_its_limit(void)
{
    struct json_object *j;
    double retry, t0, t1;
    char *b = text_body(4);

    /* 2026-07-01 12:00 UTC is 05:00 PDT: 19 h to Pacific midnight. */
    t0 = now_s();
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 7, 1, 12, 0, 0)), 0);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpd", K_DIMS, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpd", K_DIMS, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpd", K_DIMS, 4), 200);
    j = expect_429(&main_mock, "/v1beta/models/m-rpd:generateContent", K_DIMS,
                   b, &retry);
    t1 = now_s();
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_429_frame(j, 1);
    check_violation(j, 0,
                    "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                    "m-rpd", "3");
    CU_ASSERT(retry <= 19 * 3600 + 1e-6 &&
              retry >= 19 * 3600 - (t1 - t0) - 1e-6);
    json_object_put(j);
    free(b);
}

static void
test_several_violations_in_one_answer(void)
{
    struct json_object *j;
    char *b = text_body(40);

    CU_ASSERT_EQUAL(post_text(&main_mock, "m-multi", K_DIMS, 4), 200);
    /* rpm = 1 is spent and 10 tokens more exceed tpm = 10. */
    j = expect_429(&main_mock, "/v1beta/models/m-multi:generateContent", K_DIMS,
                   b, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_429_frame(j, 2);
    check_violation(j, 0,
                    "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_requests",
                    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    "m-multi", "1");
    check_violation(j, 1,
                    "generativelanguage.googleapis.com/"
                    "generate_content_free_tier_input_token_count",
                    "GenerateContentInputTokensPerModelPerMinute-FreeTier",
                    "m-multi", "10");
    json_object_put(j);
    free(b);
}

static void
test_paid_tier_and_embed_names(void)
{
    struct json_object *j;
    char *b = text_body(4);

    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_PAID, 4), 200);
    j = expect_429(&main_mock, "/v1beta/models/m-rpm:generateContent", K_PAID,
                   b, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_violation(j, 0,
                    "generativelanguage.googleapis.com/"
                    "generate_requests_per_model",
                    "GenerateRequestsPerMinutePerProjectPerModel-PaidTier2",
                    "m-rpm", "1");
    json_object_put(j);
    /* A batch of two embeds is two requests: rpm = 2 is then spent. */
    CU_ASSERT_EQUAL(
        post_status(&main_mock,
                    "/v1beta/models/gemini-embedding-001:"
                    "batchEmbedContents",
                    K_EMB,
                    "{\"requests\":["
                    "{\"content\":{\"parts\":[{\"text\":\"a\"}]}},"
                    "{\"content\":{\"parts\":[{\"text\":\"b\"}]}}]}"),
        200);
    j = expect_429(&main_mock,
                   "/v1beta/models/gemini-embedding-001:embedContent", K_EMB,
                   "{\"content\":{\"parts\":[{\"text\":\"c\"}]}}", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_violation(
        j, 0,
        "generativelanguage.googleapis.com/"
        "embed_content_free_tier_requests",
        "EmbedContentRequestsPerMinutePerUserPerProjectPerModel-FreeTier",
        "gemini-embedding-001", "2");
    json_object_put(j);
    /* A model this project's tier lacks: limit 0, as Google answers it. */
    j = expect_429(&main_mock,
                   "/v1beta/models/gemini-2.5-flash:generateContent", K_OTHER,
                   b, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_429_frame(j, 2);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.0.violations.0.quotaValue"),
                           "0");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.0.violations.1.quotaValue"),
                           "0");
    json_object_put(j);
    free(b);
}

static void
test_retry_info_is_correct_to_the_second(void)
{
    const double w = WINDOW_MS / 1000.0;
    struct json_object *j;
    double t0a, t0b, t1a, t1b, retry, retry2, t2b;
    char *b = text_body(4);
    struct resp r;

    /* rpm = 2 in a 3 s window.  The first admission happens inside
     * [t0a, t0b]; the mock answers the refusal inside [t1a, t1b]; room
     * appears when the first admission is w old. */
    t0a = now_s();
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-retry", K_RETRY, 4), 200);
    t0b = now_s();
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-retry", K_RETRY, 4), 200);
    t1a = now_s();
    j = expect_429(&main_mock, "/v1beta/models/m-retry:generateContent",
                   K_RETRY, b, &retry);
    t1b = now_s();
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    check_429_frame(j, 1);
    json_object_put(j);
    CU_ASSERT(retry >= t0a + w - t1b - 1e-6);
    CU_ASSERT(retry <= t0b + w - t1a + 1e-6);
    CU_ASSERT(retry > 0 && retry <= w);

    /* Well before the earliest instant room can appear: still refused,
     * and asserted only if the whole exchange provably ended before it. */
    sleep_until(t1a + retry - 1.0);
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/m-retry:generateContent",
                               K_RETRY, b, &r),
                          0);
    t2b = now_s();
    if (t2b < t1a + retry) {
        CU_ASSERT_EQUAL(r.status, 429);
        j = json_tokener_parse(r.body);
        retry2 = duration_s(jstr(j, "error.details.2.retryDelay"));
        CU_ASSERT(retry2 > 0 && retry2 < retry);
        json_object_put(j);
    }
    resp_free(&r);

    /* Once the latest instant it can appear has passed: admitted. */
    sleep_until(t1b + retry + 0.02);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-retry", K_RETRY, 4), 200);
    free(b);
}

/* Expect a 429 on the day dimension with retryDelay within [want - slack,
 * want]. */
static void
expect_day_refusal(double want, double since)
{
    struct json_object *j;
    double retry, slack;
    char *b = text_body(4);

    j = expect_429(&main_mock, "/v1beta/models/m-day:generateContent", K_DAY, b,
                   &retry);
    slack = now_s() - since;
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.0.violations.0.quotaId"),
                           "GenerateRequestsPerDayPerProjectPerModel-FreeTier");
    if (!(retry <= want + 1e-6 && retry >= want - slack - 1e-6))
        fprintf(stderr, "\n  retry %.9f, want %.0f (slack %.3f)\n", retry, want,
                slack);
    CU_ASSERT(retry <= want + 1e-6 && retry >= want - slack - 1e-6);
    json_object_put(j);
    free(b);
}

static void
test_rpd_resets_at_pacific_midnight_across_dst(void)
{
    double t;

    /* Fall back.  Midnight of Sunday 2026-11-01 is 07:00 UTC (PDT); that
     * day lasts 25 hours, to 08:00 UTC on the 2nd (PST). */
    t = now_s();
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 11, 1, 6, 59, 0)), 0);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
    expect_day_refusal(60, t);
    t = now_s();
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 11, 1, 7, 0, 0)), 0);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
    expect_day_refusal(25 * 3600, t);
    /* 07:30 UTC on the 2nd is still the 1st in Los Angeles (23:30 PST). */
    t = now_s();
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 11, 2, 7, 30, 0)), 0);
    expect_day_refusal(1800, t);
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 11, 2, 8, 0, 0)), 0);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);

    /* Spring forward.  Sunday 2026-03-08 starts at 08:00 UTC (PST) and
     * lasts 23 hours, to 07:00 UTC on the 9th (PDT). */
    t = now_s();
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 3, 8, 7, 59, 0)), 0);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
    expect_day_refusal(60, t);
    t = now_s();
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 3, 8, 8, 0, 0)), 0);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
    expect_day_refusal(23 * 3600, t);
    t = now_s();
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 3, 9, 6, 30, 0)), 0);
    expect_day_refusal(1800, t);
    CU_ASSERT_EQUAL_FATAL(set_wall(&main_mock, utc(2026, 3, 9, 7, 0, 0)), 0);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-day", K_DAY, 4), 200);
}

static void
test_reset_clears_everything(void)
{
    struct json_object *j;
    int i;

    for (i = 0; i < 4; i++)
        post_text(&main_mock, "m-rpm", K_SHARED_A, 4);
    CU_ASSERT_EQUAL(post_status(&main_mock, "/mock/project", NULL,
                                "{\"name\":\"other\",\"state\":\"leaked\"}"),
                    200);
    CU_ASSERT_EQUAL(post_status(&main_mock, "/mock/reset", NULL, ""), 200);
    j = stats(&main_mock);
    CU_ASSERT_EQUAL(jint(j, "projects.shared.models.m-rpm.admitted"), 0);
    CU_ASSERT_EQUAL(jint(j, "projects.shared.models.m-rpm.quota_429.total"), 0);
    CU_ASSERT_EQUAL(jint(j, "requests.total"), 0);
    CU_ASSERT_STRING_EQUAL(jstr(j, "projects.other.keys"), "ok");
    json_object_put(j);
    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 200);
}

static void
test_key_errors_match_google(void)
{
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/m-rpm:generateContent",
                               "no-such-key", hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT(same_json(r.body, sample_400_key));
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/m-rpm:generateContent", NULL,
                               hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT(strstr(r.body, "\"PERMISSION_DENIED\"") != NULL);
    resp_free(&r);
    /* A project whose keys were reported leaked, then revoked, then back. */
    CU_ASSERT_EQUAL(post_status(&main_mock, "/mock/project", NULL,
                                "{\"name\":\"shared\",\"state\":\"leaked\"}"),
                    200);
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/m-rpm:generateContent",
                               K_SHARED_B, hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 403);
    CU_ASSERT(same_json(r.body, sample_403_leaked));
    resp_free(&r);
    CU_ASSERT_EQUAL(post_status(&main_mock, "/mock/project", NULL,
                                "{\"name\":\"shared\",\"state\":\"invalid\"}"),
                    200);
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/m-rpm:generateContent",
                               K_SHARED_B, hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT(same_json(r.body, sample_400_key));
    resp_free(&r);
    CU_ASSERT_EQUAL(post_status(&main_mock, "/mock/project", NULL,
                                "{\"name\":\"shared\",\"state\":\"ok\"}"),
                    200);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_B, 4), 200);
}

static void
test_bad_requests_are_google_shaped(void)
{
    size_t big_len = 65536 + 1;
    char *big = text_body(big_len);
    struct json_object *j;
    struct resp r;

    /* Malformed JSON. */
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/m-rpm:generateContent",
                               K_SHARED_A, "{\"contents\": [{\"parts\": ", &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "INVALID_ARGUMENT");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.0.@type"),
                           "type.googleapis.com/google.rpc.BadRequest");
    CU_ASSERT_EQUAL(
        strncmp(jstr(j, "error.message"), "Invalid JSON payload received.", 30),
        0);
    json_object_put(j);
    resp_free(&r);

    /* Over the cap, with a Content-Length and chunked. */
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/m-rpm:generateContent",
                               K_SHARED_A, big, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(
        jstr(j, "error.message"),
        "Request payload size exceeds the limit: 65536 bytes.");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "INVALID_ARGUMENT");
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(http_ex(&main_mock,
                                  "/v1beta/models/m-rpm:generateContent",
                                  K_SHARED_A, big, strlen(big), 1, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "exceeds the limit: 65536 bytes"));
    resp_free(&r);

    /* Unknown path, wrong method, unknown model. */
    CU_ASSERT_EQUAL_FATAL(
        http(&main_mock, "/v1beta/nothing/here", K_SHARED_A, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jint(j, "error.code"), 404);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "NOT_FOUND");
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL(post_status(&main_mock, "/v1beta/models/m-rpm:explode",
                                K_SHARED_A, hello_body),
                    404);
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/m-rpm:generateContent",
                               K_SHARED_A, NULL, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(http(&main_mock,
                               "/v1beta/models/gemini-1.0-pro:"
                               "generateContent",
                               K_SHARED_A, hello_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 404);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(
        jstr(j, "error.message"),
        "models/gemini-1.0-pro is not found for API version "
        "v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models "
        "and their supported methods.");
    json_object_put(j);
    resp_free(&r);

    /* Bytes that are no JSON at all, and a missing contents. */
    CU_ASSERT_EQUAL(post_status(&main_mock,
                                "/v1beta/models/m-rpm:generateContent",
                                K_SHARED_A, "\x01\x02\xff\xfe garbage"),
                    400);
    CU_ASSERT_EQUAL(post_status(&main_mock,
                                "/v1beta/models/m-rpm:generateContent",
                                K_SHARED_A, "{}"),
                    400);

    /* Nothing of that cost quota, and the server still answers. */
    j = stats(&main_mock);
    CU_ASSERT_EQUAL(jint(j, "requests.too_large"), 2);
    CU_ASSERT_EQUAL(jint(j, "requests.bad_request"), 3);
    CU_ASSERT_EQUAL(jint(j, "projects.shared.models.m-rpm.admitted"), 0);
    json_object_put(j);
    CU_ASSERT_EQUAL(post_text(&main_mock, "m-rpm", K_SHARED_A, 4), 200);
    free(big);
}

static void
test_sigterm_exits_cleanly_and_logs_no_key(void)
{
    char line[2048];
    const char *const *k;
    unsigned lines = 0, leaks = 0;
    FILE *f;
    int status;

    status = mock_stop(&main_mock);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* It ran with --verbose: one line per request, and never a key. */
    f = fopen(main_mock.log, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    while (fgets(line, sizeof line, f) != NULL) {
        lines++;
        for (k = all_keys; *k != NULL; k++)
            if (strstr(line, *k) != NULL)
                leaks++;
    }
    fclose(f);
    CU_ASSERT(lines > 50);
    CU_ASSERT_EQUAL(leaks, 0);
}

/* ---------------------------------------------------------- faults suite */

static int
faults_init(void)
{
    if (curl == NULL) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl = curl_easy_init();
    }
    return mock_start(&faults_mock, faults_conf, "--threads=2") < 0 ? -1 : 0;
}

static int
faults_cleanup(void)
{
    mock_stop(&faults_mock);
    if (faults_mock.log[0] != '\0')
        unlink(faults_mock.log);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    curl = NULL;
    curl_global_cleanup();
    return 0;
}

/* |observed - n p| within 5 standard deviations of a binomial. */
static int
within_5_sigma(long observed, long n, double p)
{
    double sd = sqrt((double)n * p * (1.0 - p));

    return fabs((double)observed - (double)n * p) <= 5.0 * sd;
}

static void
test_injected_faults_at_configured_rates(void)
{
    const long n = 400;
    long ok = 0, e503 = 0, e500 = 0, other = 0, i;
    int body503_ok = 1, body500_ok = 1;
    struct json_object *j;
    struct resp r;

    for (i = 0; i < n; i++) {
        if (http(&faults_mock, "/v1beta/models/gemini-flash:generateContent",
                 K_FAULTS, hello_body, &r) < 0) {
            other++;
            continue;
        }
        if (r.status == 200) {
            ok++;
        } else if (r.status == 503) {
            e503++;
            body503_ok &= same_json(r.body, sample_503);
        } else if (r.status == 500) {
            e500++;
            body500_ok &= same_json(r.body, sample_500);
        } else {
            other++;
        }
        resp_free(&r);
    }
    CU_ASSERT_EQUAL(other, 0);
    CU_ASSERT(within_5_sigma(e503, n, 0.3));
    CU_ASSERT(within_5_sigma(e500, n, 0.1));
    CU_ASSERT(within_5_sigma(ok, n, 0.6));
    CU_ASSERT(body503_ok);
    CU_ASSERT(body500_ok);
    /* An injected 5xx was received by "Google": it counts against quota. */
    j = stats(&faults_mock);
    CU_ASSERT_EQUAL(jint(j, "projects.f.models.gemini-flash.admitted"), n);
    CU_ASSERT_EQUAL(jint(j, "projects.f.models.gemini-flash.served"), ok);
    CU_ASSERT_EQUAL(jint(j, "projects.f.models.gemini-flash.injected_5xx.503"),
                    e503);
    CU_ASSERT_EQUAL(jint(j, "projects.f.models.gemini-flash.injected_5xx.500"),
                    e500);
    json_object_put(j);
}

static void
test_faults_change_at_run_time(void)
{
    struct json_object *j;
    struct resp r;
    int i;

    CU_ASSERT_EQUAL_FATAL(http(&faults_mock, "/mock/faults", NULL,
                               "{\"p503\": 1, \"p500\": 0, "
                               "\"latency_ms\": [1, 3]}",
                               &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jint(j, "latency_ms.1"), 3);
    json_object_put(j);
    resp_free(&r);
    for (i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(post_status(&faults_mock,
                                    "/v1beta/models/gemini-flash:"
                                    "generateContent",
                                    K_FAULTS, hello_body),
                        503);
    CU_ASSERT_EQUAL(post_status(&faults_mock, "/mock/faults", NULL,
                                "{\"p503\": 0.5, \"p500\": 0.6}"),
                    400);
    CU_ASSERT_EQUAL(post_status(&faults_mock, "/mock/faults", NULL,
                                "{\"p503\": 0, \"latency_ms\": [0, 0]}"),
                    200);
    for (i = 0; i < 20; i++)
        CU_ASSERT_EQUAL(post_status(&faults_mock,
                                    "/v1beta/models/gemini-flash:"
                                    "generateContent",
                                    K_FAULTS, hello_body),
                        200);
}

int
main(void)
{
    CU_TestInfo engine[] = {
        {"window edge to the nanosecond", test_window_edge_to_the_nanosecond},
        {"tokens retry finds the right admission",
         test_tokens_retry_finds_the_right_admission},
        {"all or nothing, many violations",
         test_all_or_nothing_and_many_violations},
        {"day resets at Pacific midnight", test_day_resets_at_pacific_midnight},
        {"tokens per day", test_tokens_per_day},
        {"unlimited cells keep no log", test_unlimited_cells_keep_no_log},
        {"route parse", test_route_parse},
        {"body token and image counts", test_body_token_and_image_counts},
        {"duration and quota names", test_duration_and_quota_names},
        {"json writer escapes", test_json_writer_escapes},
        {"bad configs name file and line", test_bad_configs_name_file_and_line},
        {"bad config exits 2", test_bad_config_exits_2},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo http_tests[] = {
        {"generateContent shape", test_generate_content_shape},
        {"stream SSE repeats cumulative usage",
         test_stream_sse_repeats_cumulative_usage},
        {"stream without alt=sse is an array",
         test_stream_without_sse_is_an_array},
        {"countTokens shape, and free", test_count_tokens_shape_and_free},
        {"embed shapes", test_embed_shapes},
        {"two keys share one project quota",
         test_two_keys_share_one_project_quota},
        {"RPM refuses at its limit", test_rpm_refuses_at_its_limit},
        {"TPM refuses at its limit", test_tpm_refuses_at_its_limit},
        {"IPM counts image parts", test_ipm_counts_image_parts},
        {"RPD refuses at its limit", test_rpd_refuses_at_its_limit},
        {"several violations in one answer",
         test_several_violations_in_one_answer},
        {"paid tier and embed names", test_paid_tier_and_embed_names},
        {"RetryInfo correct to the second, window frees",
         test_retry_info_is_correct_to_the_second},
        {"RPD resets at Pacific midnight across DST",
         test_rpd_resets_at_pacific_midnight_across_dst},
        {"reset clears everything", test_reset_clears_everything},
        {"key errors match Google", test_key_errors_match_google},
        {"bad requests are Google-shaped", test_bad_requests_are_google_shaped},
        {"SIGTERM exits cleanly, no key in logs",
         test_sigterm_exits_cleanly_and_logs_no_key},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo fault_tests[] = {
        {"injected faults at configured rates",
         test_injected_faults_at_configured_rates},
        {"faults change at run time", test_faults_change_at_run_time},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"engine", NULL, NULL, NULL, NULL, engine},
        {"http", http_init, http_cleanup, http_setup, NULL, http_tests},
        {"faults", faults_init, faults_cleanup, NULL, NULL, fault_tests},
        CU_SUITE_INFO_NULL,
    };

    signal(SIGPIPE, SIG_IGN);
    return gr_test_main("test_mock", suites, 120);
}
