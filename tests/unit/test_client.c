/*
 * test_client.c - libgemroute end to end: the real bin/gemroute-mock on a
 * free loopback port, a real bin/gemrouted pointed at it, and the library
 * making real HTTP calls through both.
 *
 * Every assertion is on counts and values (what the table, the mock and
 * the response say), never on how long something took; waits poll with
 * the watchdog of gr_test_main() as their bound.  The keys of every test
 * are recorded, and the last test checks that none of them appears in
 * any log, message or output the run produced.
 *
 *   BIN=bin build/default/tests/test_client
 */
#include "gemroute.h"
#include "clock.h"
#include "testlib.h"
#include "testrouter.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define FLASH "gemini-2.5-flash"
#define EMBED "gemini-embedding-001"
#define GONE "gemini-retired-001"

static const char *bin_dir = "bin";
static char tmpdir[128];
static unsigned env_seq;

/* Every key a test hands out; none may ever be printed. */
static const char *const keys[] = {
    "gr-test-SECRET-p1-7d1e2f", "gr-test-SECRET-p2-9a8b7c",
    "gr-test-SECRET-p3-55aa11", "gr-test-SECRET-wrong-0042",
};

/* Messages the library gave us, checked for keys at the end. */
static char said[64 * 1024];
static size_t said_len;

struct env {
    pid_t mock, router;
    int port;
    char shm[64];
    char tag[32];
    struct gr *g;
};

/* ---- processes -------------------------------------------------------- */

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static void
note(const char *s)
{
    size_t n = strlen(s);

    if (said_len + n + 1 < sizeof(said)) {
        memcpy(said + said_len, s, n);
        said_len += n;
        said[said_len++] = '\n';
    }
}

static pid_t
spawn(const char *prog, char *const argv[], const char *out, const char *err)
{
    pid_t pid = fork();

    if (pid == 0) {
        int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        /* Die with the test binary, even when its watchdog fires. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        execv(prog, argv);
        _exit(127);
    }
    return pid;
}

static void
write_file(const char *path, const char *fmt, ...)
{
    va_list ap;
    FILE *f = fopen(path, "w");

    CU_ASSERT_FATAL(f != NULL);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
}

/* Start the mock with this config text; fills e->port. */
static void
start_mock(struct env *e, const char *conf)
{
    char path[256], out[256], err[256], prog[256], line[128];
    char opt_c[] = "-c", opt_listen[] = "--listen", addr[] = "127.0.0.1:0";
    char *argv[6];

    snprintf(e->tag, sizeof(e->tag), "e%u", ++env_seq);
    snprintf(path, sizeof(path), "%s/%s-mock.conf", tmpdir, e->tag);
    snprintf(out, sizeof(out), "%s/%s-mock.out", tmpdir, e->tag);
    snprintf(err, sizeof(err), "%s/%s-mock.log", tmpdir, e->tag);
    snprintf(prog, sizeof(prog), "%s/gemroute-mock", bin_dir);
    write_file(path, "%s", conf);
    argv[0] = prog;
    argv[1] = opt_c;
    argv[2] = path;
    argv[3] = opt_listen;
    argv[4] = addr;
    argv[5] = NULL;
    e->mock = spawn(prog, argv, out, err);
    CU_ASSERT_FATAL(e->mock > 0);
    e->port = 0;
    while (e->port == 0) {          /* the watchdog bounds this */
        FILE *f = fopen(out, "r");

        if (f != NULL) {
            if (fgets(line, sizeof(line), f) != NULL)
                sscanf(line, "listening on 127.0.0.1:%d", &e->port);
            fclose(f);
        }
        CU_ASSERT_FATAL(waitpid(e->mock, NULL, WNOHANG) == 0);
        if (e->port == 0)
            sleep_ms(5);
    }
}

static struct json_object *status_json(const struct env *e);
static struct json_object *get(struct json_object *o, const char *k);

/*
 * Start a router whose config is "router = {...}; " + rest, wait until
 * it serves its table with the config applied (`cells` (project, model)
 * rows then), and attach to it.
 */
static void
start_router(struct env *e, const char *router_extra, const char *rest,
             size_t cells)
{
    char path[256], log[256], msg[256];
    struct json_object *root, *c;

    snprintf(e->shm, sizeof(e->shm), "/grtc-%d-%s", (int)getpid(), e->tag);
    snprintf(path, sizeof(path), "%s/%s-router.conf", tmpdir, e->tag);
    snprintf(log, sizeof(log), "%s/%s-router.log", tmpdir, e->tag);
    write_file(path, "router = { shm = \"%s\"; base_url = "
               "\"http://127.0.0.1:%d\"; max_models = 4; %s };\n%s\n",
               e->shm, e->port, router_extra, rest);
    e->router = gr_test_router_start(path, e->shm, log);
    CU_ASSERT_FATAL(e->router > 0);
    e->g = gr_open(e->shm, msg, sizeof(msg));
    CU_ASSERT_FATAL(e->g != NULL);
    root = status_json(e);
    c = get(root, "cells");
    CU_ASSERT_FATAL(c != NULL && json_object_array_length(c) == cells);
    json_object_put(root);
}

static void
stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
}

/*
 * Each test closes its handle before the next opens one: the next
 * segment is then often mapped at the same address, with the same config
 * generation, which the library's per-thread caches must not mistake for
 * the old one (each test's calls would go to a dead port if they did).
 */
static void
stop_env(struct env *e)
{
    gr_close(e->g);
    e->g = NULL;
    stop(e->router);
    stop(e->mock);
}

/* ---- talking to the mock and to `gemroute status` --------------------- */

/* One HTTP/1.0 request to the mock; the body of the answer into out. */
static int
mock_http(const struct env *e, const char *method, const char *path,
          const char *body, char *out, size_t outlen)
{
    struct sockaddr_in a;
    char req[1024], *b;
    size_t got = 0;
    ssize_t n;
    int fd, status = 0;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)e->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n"
             "%s", method, path, body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    while (got + 1 < outlen &&
           (n = read(fd, out + got, outlen - got - 1)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fd);
    sscanf(out, "HTTP/1.%*d %d", &status);
    b = strstr(out, "\r\n\r\n");
    if (b != NULL)
        memmove(out, b + 4, strlen(b + 4) + 1);
    return status;
}

/* `gemroute status --json`, parsed. */
static struct json_object *
status_json(const struct env *e)
{
    char cmd[512], *buf = malloc(1 << 20);
    size_t got = 0, n;
    struct json_object *o;
    FILE *p;

    CU_ASSERT_FATAL(buf != NULL);
    snprintf(cmd, sizeof(cmd), "%s/gemroute status --shm %s --json",
             bin_dir, e->shm);
    p = popen(cmd, "r");
    CU_ASSERT_FATAL(p != NULL);
    while ((n = fread(buf + got, 1, (1 << 20) - 1 - got, p)) > 0)
        got += n;
    pclose(p);
    buf[got] = '\0';
    note(buf);
    o = json_tokener_parse(buf);
    free(buf);
    CU_ASSERT_FATAL(o != NULL);
    return o;
}

static struct json_object *
get(struct json_object *o, const char *k)
{
    struct json_object *v = NULL;

    if (o == NULL || !json_object_object_get_ex(o, k, &v))
        return NULL;
    return v;
}

/* The status cell of (project, model), in root; NULL if absent. */
static struct json_object *
cell(struct json_object *root, const char *project, const char *model)
{
    struct json_object *cells = get(root, "cells");
    size_t i, n = cells ? json_object_array_length(cells) : 0;

    for (i = 0; i < n; i++) {
        struct json_object *c = json_object_array_get_idx(cells, i);

        if (strcmp(json_object_get_string(get(c, "project")), project) == 0 &&
            strcmp(json_object_get_string(get(c, "model")), model) == 0)
            return c;
    }
    return NULL;
}

/* status: cells[project, model][group][key] (group NULL: [key]) as a
 * number; -1 when absent. */
static double
cell_num(const struct env *e, const char *project, const char *model,
         const char *group, const char *key)
{
    struct json_object *root = status_json(e);
    struct json_object *c = cell(root, project, model);
    struct json_object *v = group != NULL ? get(get(c, group), key)
                                          : get(c, key);
    double d = v != NULL && !json_object_is_type(v, json_type_null)
                   ? json_object_get_double(v) : -1;

    json_object_put(root);
    return d;
}

static char *
cell_health(const struct env *e, const char *project, const char *model,
            char *buf, size_t n)
{
    struct json_object *root = status_json(e);
    struct json_object *v = get(cell(root, project, model), "health");

    snprintf(buf, n, "%s", v ? json_object_get_string(v) : "?");
    json_object_put(root);
    return buf;
}

/* The mock's /mock/stats, projects.P.models.M.key (or .key.sub). */
static long long
mock_num(const struct env *e, const char *project, const char *model,
         const char *key, const char *sub)
{
    char *buf = malloc(1 << 20);
    struct json_object *root, *v;
    long long r = -1;

    CU_ASSERT_FATAL(buf != NULL);
    CU_ASSERT_FATAL(mock_http(e, "GET", "/mock/stats", NULL, buf, 1 << 20)
                    == 200);
    root = json_tokener_parse(buf);
    v = get(get(get(get(get(root, "projects"), project), "models"), model),
            key);
    if (sub != NULL)
        v = get(v, sub);
    if (v != NULL)
        r = json_object_get_int64(v);
    json_object_put(root);
    free(buf);
    return r;
}

/* A request whose contents hold `bytes` bytes of text. */
static char *
request(size_t bytes, const char *system)
{
    char *s = malloc(bytes + 512);
    size_t n;

    CU_ASSERT_FATAL(s != NULL);
    n = (size_t)sprintf(s, "{%s%s%s\"contents\":[{\"role\":\"user\","
                        "\"parts\":[{\"text\":\"",
                        system ? "\"systemInstruction\":{\"parts\":[{\"text\":"
                                 "\"" : "",
                        system ? system : "", system ? "\"}]}," : "");
    memset(s + n, 'x', bytes);
    strcpy(s + n + bytes, "\"}]}]}");
    return s;
}

/* Keep what a call said for the key check; show any failure (expected
 * or not) on stderr, so a failing assertion comes with its reason. */
static void
remember(const struct gr_response *r)
{
    if (r->error[0] != '\0')
        fprintf(stderr, "    [%s after %d attempt(s): %s]\n",
                r->project[0] ? r->project : "-", r->attempts, r->error);
    note(r->error);
    note(r->verdict.reason);
    if (r->body != NULL)
        note(r->body);
}

/* ---- the tests -------------------------------------------------------- */

static const char *mock_one =
    "projects = ( { name = \"p1\"; keys = [\"gr-test-SECRET-p1-7d1e2f\"];\n"
    "  limits = ( { model = \"" FLASH "\"; rpm = 100; tpm = 100000; },\n"
    "             { model = \"" EMBED "\"; rpm = 100; tpm = 100000; } ); } );\n"
    "faults = { latency_ms = [1, 5]; };\n";

static void
test_settle_exact(void)
{
    struct env e;
    struct gr_call_opts o;
    struct gr_response r;
    char *req;

    start_mock(&e, mock_one);
    /* Counts checked call by call: one lease per call (a batch lease
     * holds its unsent calls until it settles; test_batch covers it). */
    start_router(&e, "headroom = 1.0; batch_calls = 1;",
                 "models = ( { name = \"" FLASH "\"; rpm = 100; "
                 "tpm = 100000; }, { name = \"" EMBED "\"; rpm = 100; "
                 "tpm = 100000; } );\n"
                 "projects = ( { name = \"p1\"; "
                 "key = \"gr-test-SECRET-p1-7d1e2f\"; } );", 2);

    /* Over-estimate (system text the mock does not count): refunded. */
    req = request(40, "sssssssssssssssssssssssssssssssssssssssssssss"
                      "ssssssssssssssssssssssssssssssssssssssssssss");
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, req, NULL, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(r.attempts, 1);
    CU_ASSERT_EQUAL(r.usage.prompt, 10);
    CU_ASSERT_STRING_EQUAL(r.project, "p1");
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "tpm"), 10);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "rpm"), 1);
    gr_response_free(&r);
    free(req);

    /* Under-estimate: charged up to what the mock counted. */
    memset(&o, 0, sizeof(o));
    o.est_tokens = 1;
    req = request(80, NULL);
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, req, &o, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.usage.prompt, 20);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "tpm"), 30);
    gr_response_free(&r);
    free(req);

    /* countTokens first: the estimate is exact; no request charged. */
    o.est_tokens = 0;
    o.count_tokens_first = true;
    req = request(100, NULL);
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, req, &o, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.usage.prompt, 25);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "tpm"), 55);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "rpm"), 3);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "count_tokens_calls", NULL),
                    1);
    gr_response_free(&r);
    free(req);

    /* A stream: settled with the last event's promptTokenCount. */
    req = request(120, NULL);
    CU_ASSERT_EQUAL(gr_stream(e.g, FLASH, req, NULL,
                              (gr_chunk_fn)NULL, NULL, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.usage.prompt, 30);
    CU_ASSERT_TRUE(r.usage.candidates > 0);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "tpm"), 85);
    gr_response_free(&r);
    free(req);

    /* The table and the mock agree, request for request, token for token. */
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "window", "tokens"), 85);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "window", "requests"), 4);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "rpm"), 4);

    /* countTokens alone: its answer, nothing of the minute windows. */
    req = request(36, NULL);
    CU_ASSERT_EQUAL(gr_count_tokens(e.g, FLASH, req, NULL, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.usage.prompt, 9);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "rpm"), 4);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "tpm"), 85);
    gr_response_free(&r);
    free(req);

    /* Embeddings report no usage: the estimate (the mock's rule) stays. */
    CU_ASSERT_EQUAL(gr_embed(e.g, EMBED, "{\"content\":{\"parts\":[{\"text\":"
                             "\"0123456789abcdef\"}]}}", NULL, &r), GR_OK);
    remember(&r);
    gr_response_free(&r);
    CU_ASSERT_EQUAL(gr_batch_embed(e.g, EMBED, "{\"requests\":["
                                   "{\"content\":{\"parts\":[{\"text\":\"ab"
                                   "cd\"}]}},{\"content\":{\"parts\":[{\"te"
                                   "xt\":\"efgh\"}]}}]}", NULL, &r), GR_OK);
    remember(&r);
    gr_response_free(&r);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", EMBED, "used", "rpm"), 3);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", EMBED, "used", "tpm"), 6);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", EMBED, "window", "requests"), 3);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", EMBED, "window", "tokens"), 6);
    stop_env(&e);
}

struct chunks {
    int n;
    size_t bytes;
};

static int
count_chunk(void *arg, const char *json, size_t len)
{
    struct chunks *c = arg;

    c->n++;
    c->bytes += len;
    return json[len] == '\0' ? 0 : 1;
}

static int
stop_chunk(void *arg, const char *json, size_t len)
{
    (void)json;
    (void)len;
    return ++*(int *)arg >= 1;
}

struct thread_arg {
    struct gr *g;
    int ok;
};

static void *
caller(void *p)
{
    struct thread_arg *a = p;
    struct gr_response r;
    int i;

    for (i = 0; i < 10; i++) {
        if (gr_generate(a->g, FLASH, "{\"contents\":[{\"parts\":[{\"text\":"
                        "\"12345678\"}]}]}", NULL, &r) == GR_OK &&
            r.usage.prompt == 2)
            a->ok++;
        gr_response_free(&r);
    }
    return NULL;
}

/*
 * Spend caps through gr_generate (docs/CLIENT.md, "Spend caps"): each
 * call is priced from its answer's usageMetadata; once p1's daily cap
 * cannot hold a call's worst case (input estimate + maxOutputTokens),
 * the call is refused with GR_ESPEND and a sentence naming the cap, the
 * project and the amounts, and is never sent; `gemroute status --json`
 * shows what the day counted, to the micro-dollar.
 */
static void
test_spend_cap_refuses(void)
{
    struct env e;
    struct gr_response r;
    struct json_object *root, *p1, *pool;
    char body[1024], path[256];
    int64_t spent = 0, gen, now_gen;
    int i, n_ok = 0, rc = GR_OK;
    size_t n;

    start_mock(&e, mock_one);
    /* $100 per 1M input tokens and $200 per 1M output tokens: 100 and
     * 200 micro-USD a token; a day cap of $0.10 for p1. */
    start_router(&e, "",
                 "models = ( { name = \"" FLASH "\"; rpm = 100; "
                 "tpm = 100000; } );\n"
                 "projects = ( { name = \"p1\"; "
                 "key = \"gr-test-SECRET-p1-7d1e2f\"; } );\n"
                 "pricing = { models = ( { name = \"" FLASH "\"; "
                 "input = 100; output = 200; } ); };\n"
                 "spend = { project_day = 0.10; };", 1);
    n = (size_t)snprintf(body, sizeof(body), "{\"contents\":[{\"role\":"
                         "\"user\",\"parts\":[{\"text\":\"");
    memset(body + n, 'x', 400);
    snprintf(body + n + 400, sizeof(body) - n - 400, "\"}]}],"
             "\"generationConfig\":{\"maxOutputTokens\":50}}");
    /* Worst case 100 x 100 + 50 x 200 = 20,000 micro-USD a call: the
     * cap of 100,000 holds a few calls, never 30. */
    for (i = 0; i < 30; i++) {
        rc = gr_generate(e.g, FLASH, body, NULL, &r);
        remember(&r);
        if (rc != GR_OK)
            break;
        n_ok++;
        CU_ASSERT_EQUAL(r.usage.prompt, 100);
        spent += r.usage.prompt * 100 +
                 (r.usage.candidates > 0 ? r.usage.candidates : 0) * 200 +
                 (r.usage.thoughts > 0 ? r.usage.thoughts : 0) * 200;
        gr_response_free(&r);
    }
    CU_ASSERT_EQUAL(rc, GR_ESPEND);
    CU_ASSERT(n_ok >= 1 && n_ok < 30);
    CU_ASSERT(spent + 20000 > 100000);      /* refused only when full */
    CU_ASSERT(spent - (spent / n_ok) + 20000 <= 100000);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "spend cap reached: project "
                                  "'p1'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "daily cap of $0.10"));
    /* the worst case priced the request's maxOutputTokens, not the
     * model's 65,536 */
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "may cost up to $0.020000"));
    CU_ASSERT_EQUAL(r.attempts, 0);
    gr_response_free(&r);
    /* The refused call never reached Google. */
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "window", "requests"), n_ok);

    root = status_json(&e);
    p1 = get(get(get(root, "spend"), "projects"), "p1");
    pool = get(get(root, "spend"), "pool");
    CU_ASSERT_FATAL(p1 != NULL && pool != NULL);
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(p1, "today_usd")),
                           (double)spent / 1e6, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(p1, "month_usd")),
                           (double)spent / 1e6, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(p1, "cap_day_usd")),
                           0.10, 1e-9);
    CU_ASSERT_EQUAL(json_object_get_int(get(p1, "refused")), 1);
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(pool, "today_usd")),
                           (double)spent / 1e6, 1e-7);
    CU_ASSERT_TRUE(json_object_is_type(get(pool, "cap_day_usd"),
                                       json_type_null));
    gen = json_object_get_int64(get(get(root, "router"),
                                    "config_generation"));
    json_object_put(root);

    /* A reload that raises the cap lets the next call through at once;
     * what the day counted stays. */
    snprintf(path, sizeof(path), "%s/%s-router.conf", tmpdir, e.tag);
    write_file(path, "router = { shm = \"%s\"; base_url = "
               "\"http://127.0.0.1:%d\"; max_models = 4; };\n"
               "models = ( { name = \"" FLASH "\"; rpm = 100; "
               "tpm = 100000; } );\n"
               "projects = ( { name = \"p1\"; "
               "key = \"gr-test-SECRET-p1-7d1e2f\"; } );\n"
               "pricing = { models = ( { name = \"" FLASH "\"; "
               "input = 100; output = 200; } ); };\n"
               "spend = { project_day = 1.0; };\n", e.shm, e.port);
    CU_ASSERT_EQUAL_FATAL(kill(e.router, SIGHUP), 0);
    for (;;) {                      /* the watchdog bounds this */
        root = status_json(&e);
        now_gen = json_object_get_int64(get(get(root, "router"),
                                            "config_generation"));
        json_object_put(root);
        if (now_gen > gen)
            break;
        sleep_ms(5);
    }
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, body, NULL, &r), GR_OK);
    remember(&r);
    CU_ASSERT_TRUE(r.usage.prompt == 100);
    spent += r.usage.prompt * 100 +
             (r.usage.candidates > 0 ? r.usage.candidates : 0) * 200 +
             (r.usage.thoughts > 0 ? r.usage.thoughts : 0) * 200;
    gr_response_free(&r);
    root = status_json(&e);
    p1 = get(get(get(root, "spend"), "projects"), "p1");
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(p1, "today_usd")),
                           (double)spent / 1e6, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(p1, "cap_day_usd")),
                           1.0, 1e-9);
    json_object_put(root);

    /* Prometheus: the same number, each family's lines together. */
    {
        char cmd[512], want[128], *out = malloc(1 << 16), *a, *z, *cap;
        size_t got = 0, k;
        FILE *pp;

        CU_ASSERT_FATAL(out != NULL);
        snprintf(cmd, sizeof(cmd), "%s/gemroute status --shm %s "
                 "--prometheus", bin_dir, e.shm);
        pp = popen(cmd, "r");
        CU_ASSERT_FATAL(pp != NULL);
        while ((k = fread(out + got, 1, (1 << 16) - 1 - got, pp)) > 0)
            got += k;
        pclose(pp);
        out[got] = '\0';
        note(out);
        snprintf(want, sizeof(want), "gemroute_spend_usd{project=\"p1\","
                 "period=\"day\"} %.6f\n", (double)spent / 1e6);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "gemroute_spend_cap_usd{project="
                                      "\"p1\",period=\"day\"} 1.000000\n"));
        a = strstr(out, "\ngemroute_spend_usd{");
        z = a;
        while (z != NULL && strstr(z + 1, "\ngemroute_spend_usd{") != NULL)
            z = strstr(z + 1, "\ngemroute_spend_usd{");
        cap = strstr(out, "\ngemroute_spend_cap_usd{");
        CU_ASSERT(a != NULL && cap != NULL && cap > z);
        free(out);
    }

    /* A restart (the table removed with its router) keeps what the day
     * counted: STATE_FILE.spend. */
    gr_close(e.g);
    e.g = NULL;
    CU_ASSERT_EQUAL(gr_test_router_stop(e.router), 0);
    e.router = gr_test_router_start(path, e.shm, NULL);
    CU_ASSERT_FATAL(e.router > 0);
    e.g = gr_open(e.shm, body, sizeof(body));
    CU_ASSERT_FATAL(e.g != NULL);
    root = status_json(&e);
    p1 = get(get(get(root, "spend"), "projects"), "p1");
    pool = get(get(root, "spend"), "pool");
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(p1, "today_usd")),
                           (double)spent / 1e6, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(p1, "month_usd")),
                           (double)spent / 1e6, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(json_object_get_double(get(pool, "today_usd")),
                           (double)spent / 1e6, 1e-7);
    json_object_put(root);
    stop_env(&e);
}

static void
test_stream_and_threads(void)
{
    struct env e;
    struct gr_response r;
    struct chunks ch = {0, 0};
    struct thread_arg ta[4];
    pthread_t th[4];
    char *text, *req;
    int i, stopped = 0;

    start_mock(&e, mock_one);
    /* Counts checked while the handle is open: one lease per call. */
    start_router(&e, "headroom = 1.0; batch_calls = 1;",
                 "models = ( { name = \"" FLASH "\"; rpm = 100; } );\n"
                 "projects = ( { name = \"p1\"; "
                 "key = \"gr-test-SECRET-p1-7d1e2f\"; } );", 1);
    req = request(8, NULL);
    CU_ASSERT_EQUAL(gr_stream(e.g, FLASH, req, NULL, count_chunk, &ch, &r),
                    GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(ch.n, 3);       /* the mock streams three events */
    text = gr_response_text(&r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "gemroute-mock"));
    free(text);
    gr_response_free(&r);

    /* A callback that stops: no retry, and the lease is still settled. */
    CU_ASSERT_EQUAL(gr_stream(e.g, FLASH, req, NULL, stop_chunk, &stopped,
                              &r), GR_ECALL);
    remember(&r);
    CU_ASSERT_EQUAL(r.attempts, 1);
    CU_ASSERT_EQUAL(stopped, 1);
    gr_response_free(&r);
    free(req);

    /* One handle, four threads. */
    for (i = 0; i < 4; i++) {
        ta[i].g = e.g;
        ta[i].ok = 0;
        pthread_create(&th[i], NULL, caller, &ta[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(ta[i].ok, 10);
    }
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "rpm"), 42);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, NULL, "in_flight"), 0);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "window", "requests"), 42);
    stop_env(&e);
}

static const char *mock_two =
    "projects = (\n"
    " { name = \"p1\"; keys = [\"gr-test-SECRET-p1-7d1e2f\"];\n"
    "   limits = ( { model = \"" FLASH "\"; rpm = %d; rpd = %d; } ); },\n"
    " { name = \"p2\"; keys = [\"gr-test-SECRET-p2-9a8b7c\"];\n"
    "   limits = ( { model = \"" FLASH "\"; rpm = 1000; rpd = 1000; } ); } );\n"
    "faults = { latency_ms = [1, 5]; };\n";

static const char *router_two =
    "models = ( { name = \"" FLASH "\"; rpm = %d; rpd = %d; }%s );\n"
    "projects = (\n"
    " { name = \"p1\"; key = \"%s\"; },\n"
    " { name = \"p2\"; key = \"gr-test-SECRET-p2-9a8b7c\"; } );";

static void
start_two(struct env *e, int mock_rpm, int mock_rpd, int rpm, int rpd,
          const char *extra_models, const char *p1_key)
{
    char conf[2048];

    snprintf(conf, sizeof(conf), mock_two, mock_rpm, mock_rpd);
    start_mock(e, conf);
    snprintf(conf, sizeof(conf), router_two, rpm, rpd, extra_models,
             p1_key);
    start_router(e, "headroom = 1.0;", conf,
                 extra_models[0] != '\0' ? 4 : 2);
}

static void
test_learns_lower_limit(void)
{
    struct env e;
    struct gr_response r;
    int i, ok = 0, n429 = 0, calls = 0, on_p2 = 0;

    /* The mock gives p1 3 requests a minute; the router believes 20. */
    start_two(&e, 3, 1000, 20, 1000, "", "gr-test-SECRET-p1-7d1e2f");
    while (n429 == 0 && calls < 40) {
        calls++;
        if (gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":[{\"text\":"
                        "\"hi\"}]}]}", NULL, &r) == GR_OK)
            ok++;
        remember(&r);
        n429 += r.n_429;
        gr_response_free(&r);
    }
    CU_ASSERT_EQUAL(ok, calls);         /* no failure reached the caller */
    CU_ASSERT_EQUAL(n429, 1);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "learned", "rpm"), 3);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "counts", "quota_429"), 1);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "quota_429", "total"), 1);
    /* The pool carries on: p1 is full at its learned limit, p2 serves. */
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":"
                                    "[{\"text\":\"hi\"}]}]}", NULL, &r),
                        GR_OK);
        remember(&r);
        on_p2 += strcmp(r.project, "p2") == 0;
        CU_ASSERT_EQUAL(r.n_429, 0);
        gr_response_free(&r);
    }
    CU_ASSERT_EQUAL(on_p2, 10);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "quota_429", "total"), 1);
    stop_env(&e);
}

static void
test_invalid_key_disables_project(void)
{
    struct env e;
    struct gr_response r;
    char h[32];
    int calls = 0, ok = 0;
    double auth = 0;

    /* p1's key is one the mock does not know. */
    start_two(&e, 1000, 1000, 1000, 1000,
              ", { name = \"" EMBED "\"; rpm = 1000; }",
              "gr-test-SECRET-wrong-0042");
    while (auth < 1 && calls < 50) {
        calls++;
        ok += gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":[{\"text\":"
                          "\"hi\"}]}]}", NULL, &r) == GR_OK;
        remember(&r);
        gr_response_free(&r);
        auth = cell_num(&e, "p1", FLASH, "counts", "auth");
    }
    CU_ASSERT_EQUAL(ok, calls);
    CU_ASSERT_EQUAL(auth, 1);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "disabled");
    /* The whole project, every model of it, and no other project. */
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", EMBED, h, sizeof(h)),
                           "disabled");
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p2", FLASH, h, sizeof(h)),
                           "healthy");
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p2", EMBED, h, sizeof(h)),
                           "healthy");
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", NULL, &r), GR_OK);
    CU_ASSERT_STRING_EQUAL(r.project, "p2");
    remember(&r);
    gr_response_free(&r);
    stop_env(&e);
}

/* Whether file path holds text. */
static bool
file_has(const char *path, const char *text)
{
    char buf[1 << 16];
    size_t n;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* `gemroute ACTION --shm SHM WHAT` (through the router's control
 * socket); its exit status. */
static int
operator(const struct env *e, const char *action, const char *what)
{
    char cmd[512];
    int rc;

    snprintf(cmd, sizeof(cmd), "%s/gemroute %s --shm %s %s >/dev/null 2>&1",
             bin_dir, action, e->shm, what);
    rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The status project called name, in root; NULL if absent. */
static struct json_object *
project_of(struct json_object *root, const char *name)
{
    struct json_object *ps = get(root, "projects");
    size_t i, n = ps ? json_object_array_length(ps) : 0;

    for (i = 0; i < n; i++) {
        struct json_object *p = json_object_array_get_idx(ps, i);

        if (strcmp(json_object_get_string(get(p, "name")), name) == 0)
            return p;
    }
    return NULL;
}

/*
 * Issue 16: one bad key of a project with two must not disable the
 * project.  p1's second key is one the mock does not know (400
 * API_KEY_INVALID, as Google answers): after its first refusal every
 * call of p1 goes out on the good key, and p1 stays healthy.
 */
static void
test_bad_key_spares_its_sibling(void)
{
    static const char *router_keys =
        "models = ( { name = \"" FLASH "\"; rpm = 1000; rpd = 1000; } );\n"
        "projects = (\n"
        " { name = \"p1\"; keys = [\"gr-test-SECRET-p1-7d1e2f\", "
        "\"gr-test-SECRET-wrong-0042\"]; },\n"
        " { name = \"p2\"; key = \"gr-test-SECRET-p2-9a8b7c\"; } );";
    struct env e;
    struct gr_response r;
    struct json_object *root, *p, *kr;
    char conf[2048], h[32];
    int i, ok = 0, calls = 0;
    long long p1_before, p1_after;
    double auth = 0;

    snprintf(conf, sizeof(conf), mock_two, 1000, 1000);
    start_mock(&e, conf);
    start_router(&e, "headroom = 1.0; batch_calls = 1;", router_keys, 2);
    while (auth < 1 && calls < 200) {
        calls++;
        ok += gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":[{\"text\":"
                          "\"hi\"}]}]}", NULL, &r) == GR_OK;
        remember(&r);
        gr_response_free(&r);
        auth = cell_num(&e, "p1", FLASH, "counts", "auth");
    }
    CU_ASSERT_EQUAL(ok, calls);         /* the caller never saw it */
    CU_ASSERT_EQUAL(auth, 1);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "healthy");
    root = status_json(&e);
    p = project_of(root, "p1");
    CU_ASSERT_FALSE(json_object_get_boolean(get(p, "auth_failed")));
    kr = get(p, "keys_refused");
    CU_ASSERT(kr != NULL && json_object_array_length(kr) == 1 &&
              json_object_get_int(json_object_array_get_idx(kr, 0)) == 2);
    json_object_put(root);
    /* the refused key waits for its probe; status shows when (the
     * router publishes it within a scan: the watchdog bounds this) */
    for (;;) {
        struct json_object *np;

        root = status_json(&e);
        np = get(project_of(root, "p1"), "next_probe_s");
        if (np != NULL && !json_object_is_type(np, json_type_null)) {
            CU_ASSERT(json_object_get_double(np) >= 0);
            json_object_put(root);
            break;
        }
        json_object_put(root);
        sleep_ms(20);
    }
    /* p1 still serves, on its good key only: no second refusal */
    p1_before = mock_num(&e, "p1", FLASH, "served", NULL);
    for (i = 0; i < 40; i++) {
        CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":"
                                    "[{\"text\":\"hi\"}]}]}", NULL, &r),
                        GR_OK);
        remember(&r);
        gr_response_free(&r);
    }
    p1_after = mock_num(&e, "p1", FLASH, "served", NULL);
    CU_ASSERT(p1_after > p1_before);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "counts", "auth"), 1);
    stop_env(&e);
}

/*
 * Issue 16: a disabled project comes back by itself.  The mock says
 * p1's API is off (403 SERVICE_DISABLED): p1 is disabled, every call
 * goes to p2.  The operator disables p1 too.  Then the API is on again:
 * the router's probe (one window later; the window is 500 ms here) lifts
 * Google's refusal but not the operator's, and p1 serves again only once
 * the operator enables it.
 */
static void
test_probe_brings_project_back(void)
{
    struct env e;
    struct gr_response r;
    struct json_object *root;
    char h[32], buf[512];
    int i, on_p1 = 0, calls = 0;
    double auth = 0;

    start_mock(&e, "projects = (\n"
               " { name = \"p1\"; keys = [\"gr-test-SECRET-p1-7d1e2f\"];\n"
               "   state = \"service_disabled\";\n"
               "   limits = ( { model = \"" FLASH "\"; rpm = 100000; "
               "rpd = 100000; } ); },\n"
               " { name = \"p2\"; keys = [\"gr-test-SECRET-p2-9a8b7c\"];\n"
               "   limits = ( { model = \"" FLASH "\"; rpm = 100000; "
               "rpd = 100000; } ); } );\n");
    start_router(&e, "headroom = 1.0; window_ms = 500; batch_calls = 1;",
                 "models = ( { name = \"" FLASH "\"; rpm = 100000; "
                 "rpd = 100000; } );\n"
                 "projects = (\n"
                 " { name = \"p1\"; key = \"gr-test-SECRET-p1-7d1e2f\"; },\n"
                 " { name = \"p2\"; key = \"gr-test-SECRET-p2-9a8b7c\"; } );",
                 2);
    while (auth < 1 && calls < 200) {
        calls++;
        CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":"
                                    "[{\"text\":\"hi\"}]}]}", NULL, &r),
                        GR_OK);
        remember(&r);
        gr_response_free(&r);
        auth = cell_num(&e, "p1", FLASH, "counts", "auth");
    }
    CU_ASSERT_EQUAL(auth, 1);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "disabled");
    /* While the API stays off, probes fail and p1 stays out. */
    sleep_ms(1200);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "disabled");
    /* The operator also takes p1 out: no probe may undo that. */
    CU_ASSERT_EQUAL(operator(&e, "disable", "p1"), 0);
    CU_ASSERT_EQUAL(mock_http(&e, "POST", "/mock/project",
                              "{\"name\": \"p1\", \"state\": \"ok\"}", buf,
                              sizeof(buf)), 200);
    for (;;) {                          /* the watchdog bounds this */
        root = status_json(&e);
        if (json_object_get_boolean(get(project_of(root, "p1"),
                                        "auth_failed")) == 0) {
            json_object_put(root);
            break;
        }
        json_object_put(root);
        sleep_ms(50);
    }
    /* the probe passed: Google's refusal is lifted, the operator's not */
    root = status_json(&e);
    CU_ASSERT_STRING_EQUAL(json_object_get_string(
                               get(project_of(root, "p1"), "operator")),
                           "disabled");
    json_object_put(root);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "disabled");
    for (i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":"
                                    "[{\"text\":\"hi\"}]}]}", NULL, &r),
                        GR_OK);
        CU_ASSERT_STRING_EQUAL(r.project, "p2");
        remember(&r);
        gr_response_free(&r);
    }
    CU_ASSERT_EQUAL(operator(&e, "enable", "p1"), 0);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "healthy");
    for (i = 0; i < 40; i++) {
        CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":"
                                    "[{\"text\":\"hi\"}]}]}", NULL, &r),
                        GR_OK);
        on_p1 += strcmp(r.project, "p1") == 0;
        remember(&r);
        gr_response_free(&r);
    }
    CU_ASSERT(on_p1 > 0);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "counts", "auth"), 1);
    stop_env(&e);
}

/*
 * Issue 16: a cell disabled because Google does not know its model is
 * probed too, and stays disabled while the probe fails (the mock knows
 * no such model: its models GET answers 404), as the router logs.
 */
static void
test_probe_keeps_a_missing_model_out(void)
{
    struct env e;
    struct gr_call_opts o;
    struct gr_response r;
    char h[32], conf[2048], logp[256];
    double next;

    snprintf(conf, sizeof(conf), mock_two, 1000, 1000);
    start_mock(&e, conf);
    start_router(&e, "headroom = 1.0; window_ms = 500; batch_calls = 1;",
                 "models = ( { name = \"" FLASH "\"; rpm = 1000; },\n"
                 "  { name = \"" GONE "\"; rpm = 1000; } );\n"
                 "projects = ( { name = \"p1\"; "
                 "key = \"gr-test-SECRET-p1-7d1e2f\"; } );", 2);
    memset(&o, 0, sizeof(o));
    o.max_attempts = 1;
    CU_ASSERT_EQUAL(gr_generate(e.g, GONE, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", &o, &r), GR_ECALL);
    CU_ASSERT_EQUAL(r.status, 404);
    remember(&r);
    gr_response_free(&r);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", GONE, h, sizeof(h)),
                           "disabled");
    /* the router logs each probe it made */
    snprintf(logp, sizeof(logp), "%s/%s-router.log", tmpdir, e.tag);
    while (!file_has(logp, "probe of p1/" GONE " (key #1) failed: 404")) {
        sleep_ms(20);                   /* the watchdog bounds this */
    }
    next = cell_num(&e, "p1", GONE, NULL, "next_probe_s");
    CU_ASSERT(next >= 0);               /* and shows the next one */
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", GONE, h, sizeof(h)),
                           "disabled");
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "healthy");
    stop_env(&e);
}

static void
test_model_404_disables_cell(void)
{
    struct env e;
    struct gr_call_opts o;
    struct gr_response r;
    char h[32], first[GR_NAME_MAX], other[GR_NAME_MAX];

    start_two(&e, 1000, 1000, 1000, 1000,
              ", { name = \"" GONE "\"; rpm = 1000; }",
              "gr-test-SECRET-p1-7d1e2f");
    memset(&o, 0, sizeof(o));
    o.max_attempts = 1;
    CU_ASSERT_EQUAL(gr_generate(e.g, GONE, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", &o, &r), GR_ECALL);
    remember(&r);
    CU_ASSERT_EQUAL(r.status, 404);
    CU_ASSERT_EQUAL(r.verdict.cls, GR_CLASS_MODEL);
    CU_ASSERT_EQUAL(r.attempts, 1);
    snprintf(first, sizeof(first), "%s", r.project);
    snprintf(other, sizeof(other), "%s",
             strcmp(first, "p1") == 0 ? "p2" : "p1");
    gr_response_free(&r);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, first, GONE, h, sizeof(h)),
                           "disabled");
    CU_ASSERT_STRING_EQUAL(cell_health(&e, first, FLASH, h, sizeof(h)),
                           "healthy");
    CU_ASSERT_STRING_EQUAL(cell_health(&e, other, GONE, h, sizeof(h)),
                           "healthy");
    /* The project still serves its other model. */
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", NULL, &r), GR_OK);
    remember(&r);
    gr_response_free(&r);
    stop_env(&e);
}

static void
test_request_at_fault(void)
{
    struct env e;
    struct gr_response r;
    char h[32];

    start_two(&e, 1000, 1000, 1000, 1000, "", "gr-test-SECRET-p1-7d1e2f");
    /* No contents: Google's 400 INVALID_ARGUMENT; no retry, no penalty. */
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{}", NULL, &r), GR_ECALL);
    remember(&r);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_EQUAL(r.attempts, 1);
    CU_ASSERT_EQUAL(r.verdict.cls, GR_CLASS_REQUEST);
    CU_ASSERT_FALSE(r.verdict.retryable);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, r.project, FLASH, h, sizeof(h)),
                           "healthy");
    gr_response_free(&r);
    /* A model name that cannot go into a URL is refused before anything. */
    CU_ASSERT_EQUAL(gr_generate(e.g, "../x", "{}", NULL, &r), GR_EINVAL);
    CU_ASSERT_EQUAL(r.attempts, 0);
    remember(&r);
    CU_ASSERT_EQUAL(gr_generate(e.g, "no-such-model", "{}", NULL, &r),
                    GR_ENOMODEL);
    remember(&r);
    stop_env(&e);
}

static void
test_circuit_opens_and_closes(void)
{
    struct env e;
    struct gr_call_opts o;
    struct gr_response r;
    char buf[4096], h[32];
    int i, rc;

    start_mock(&e, mock_one);
    start_router(&e, "headroom = 1.0;",
                 "models = ( { name = \"" FLASH "\"; rpm = 1000; } );\n"
                 "projects = ( { name = \"p1\"; "
                 "key = \"gr-test-SECRET-p1-7d1e2f\"; } );", 1);
    CU_ASSERT_EQUAL(mock_http(&e, "POST", "/mock/faults", "{\"p503\": 1.0}",
                              buf, sizeof(buf)), 200);
    memset(&o, 0, sizeof(o));
    o.max_attempts = 1;
    for (i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":["
                                    "{\"text\":\"hi\"}]}]}", &o, &r),
                        GR_ECALL);
        remember(&r);
        CU_ASSERT_EQUAL(r.status, 503);
        CU_ASSERT_EQUAL(r.verdict.cls, GR_CLASS_OVERLOAD);
        gr_response_free(&r);
    }
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "open");
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "counts", "server_5xx"), 5);
    /* Open: nothing is sent; a short deadline says when room comes. */
    o.deadline_ns = gr_now_ns() + 100 * 1000000;
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", &o, &r),
                    GR_EDEADLINE);
    remember(&r);
    CU_ASSERT_EQUAL(r.attempts, 0);
    CU_ASSERT_TRUE(r.retry_at_ns > o.deadline_ns);
    gr_response_free(&r);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "injected_5xx", "503"), 5);

    /* The model recovers; the half-open probe closes the circuit. */
    CU_ASSERT_EQUAL(mock_http(&e, "POST", "/mock/faults", "{\"p503\": 0.0}",
                              buf, sizeof(buf)), 200);
    o.deadline_ns = gr_now_ns() + 60 * INT64_C(1000000000);
    rc = gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":[{\"text\":"
                     "\"hi\"}]}]}", &o, &r);
    remember(&r);
    CU_ASSERT_EQUAL(rc, GR_OK);
    CU_ASSERT_EQUAL(r.attempts, 1);
    gr_response_free(&r);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "healthy");
    stop_env(&e);
}

static void
test_day_spent_until_midnight(void)
{
    struct env e;
    struct gr_response r;
    struct json_object *clk;
    char buf[4096], body[128];
    long long midnight;
    int64_t now_s, to_midnight;
    int calls = 0, ok = 0, n429 = 0;
    double cool;

    /* p1 may make 2 requests a day at the mock; the router believes 100. */
    start_two(&e, 1000, 2, 1000, 100, "", "gr-test-SECRET-p1-7d1e2f");
    /* The mock's day ends in 30 s: its RetryInfo will say about 30 s. */
    CU_ASSERT_EQUAL(mock_http(&e, "GET", "/mock/clock", NULL, buf,
                              sizeof(buf)), 200);
    clk = json_tokener_parse(buf);
    midnight = json_object_get_int64(get(clk, "next_pacific_midnight_s"));
    json_object_put(clk);
    snprintf(body, sizeof(body), "{\"wall_s\": %lld}", midnight - 30);
    CU_ASSERT_EQUAL(mock_http(&e, "POST", "/mock/clock", body, buf,
                              sizeof(buf)), 200);
    while (n429 == 0 && calls < 40) {
        calls++;
        ok += gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":[{\"text\":"
                          "\"hi\"}]}]}", NULL, &r) == GR_OK;
        remember(&r);
        n429 += r.n_429;
        gr_response_free(&r);
    }
    CU_ASSERT_EQUAL(ok, calls);
    CU_ASSERT_EQUAL(n429, 1);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "quota_429", "rpd"), 1);
    /* Cooled until gemroute's next Pacific midnight, not for 30 s. */
    now_s = (int64_t)time(NULL);
    to_midnight = gr_shm_next_pacific_midnight(now_s) - now_s;
    cool = cell_num(&e, "p1", FLASH, "cooldown_s", "rpd");
    CU_ASSERT_TRUE(cool > (double)to_midnight - 10 &&
                   cool <= (double)to_midnight + 1);
    if (to_midnight > 60)
        CU_ASSERT_TRUE(cool > 40);
    {
        char h[32];

        CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                               "cooling");
        CU_ASSERT_STRING_EQUAL(cell_health(&e, "p2", FLASH, h, sizeof(h)),
                               "healthy");
    }
    stop_env(&e);
}

/*
 * Tokens per day (TPD) as the mock enforces it, two projects of 300
 * tokens a day each, the router told the same: calls of exactly 25
 * tokens (the mock's count of request(100)) fill both days and then
 * wait, and the mock never answers 429 (no over-admission); what the
 * table counted is what the mock counted.
 */
static const char *mock_tpd =
    "projects = (\n"
    " { name = \"p1\"; keys = [\"gr-test-SECRET-p1-7d1e2f\"];\n"
    "   limits = ( { model = \"" FLASH "\"; rpm = 1000; tpd = %d; } ); },\n"
    " { name = \"p2\"; keys = [\"gr-test-SECRET-p2-9a8b7c\"];\n"
    "   limits = ( { model = \"" FLASH "\"; rpm = 1000; tpd = 300; } ); } );\n"
    "faults = { latency_ms = [1, 5]; };\n";

static const char *router_tpd =
    "models = ( { name = \"" FLASH "\"; rpm = 1000; tpd = 300; } );\n"
    "projects = (\n"
    " { name = \"p1\"; key = \"gr-test-SECRET-p1-7d1e2f\"; },\n"
    " { name = \"p2\"; key = \"gr-test-SECRET-p2-9a8b7c\"; } );";

static void
start_tpd(struct env *e, int p1_mock_tpd)
{
    char conf[2048];

    snprintf(conf, sizeof(conf), mock_tpd, p1_mock_tpd);
    start_mock(e, conf);
    start_router(e, "headroom = 1.0; batch_calls = 1;", router_tpd, 2);
}

static void
test_tpd_admission_holds(void)
{
    struct env e;
    struct gr_call_opts o;
    struct gr_response r;
    char *req = request(100, NULL);
    int i, ok = 0, n429 = 0, refused = 0;

    start_tpd(&e, 300);
    memset(&o, 0, sizeof(o));
    o.est_tokens = 25;
    for (i = 0; i < 30; i++) {
        o.deadline_ns = gr_now_ns() + 300 * INT64_C(1000000);
        if (gr_generate(e.g, FLASH, req, &o, &r) == GR_OK)
            ok++;
        else
            refused += r.attempts == 0;
        remember(&r);
        n429 += r.n_429;
        gr_response_free(&r);
    }
    CU_ASSERT_EQUAL(ok, 24);            /* 2 x 300 / 25 */
    CU_ASSERT_EQUAL(refused, 6);        /* the rest never sent */
    /* more tokens than any project's day holds: refused at once */
    o.est_tokens = 301;
    o.deadline_ns = gr_now_ns() + 60 * INT64_C(1000000000);
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, req, &o, &r), GR_ETOOBIG);
    remember(&r);
    CU_ASSERT_EQUAL(r.attempts, 0);
    gr_response_free(&r);
    CU_ASSERT_EQUAL(n429, 0);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "quota_429", "total"), 0);
    CU_ASSERT_EQUAL(mock_num(&e, "p2", FLASH, "quota_429", "total"), 0);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "day", "tokens"), 300);
    CU_ASSERT_EQUAL(mock_num(&e, "p2", FLASH, "day", "tokens"), 300);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "tpd"), 300);
    CU_ASSERT_EQUAL(cell_num(&e, "p2", FLASH, "used", "tpd"), 300);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "limit", "tpd"), 300);
    free(req);
    stop_env(&e);
}

/* TPD settles as TPM: an estimate under and one over what the mock
 * counted leave the table's day holding exactly the mock's count. */
static void
test_tpd_settles_to_the_count(void)
{
    struct env e;
    struct gr_call_opts o;
    struct gr_response r;
    char *req = request(100, NULL);     /* 25 tokens at the mock */

    start_tpd(&e, 300);
    memset(&o, 0, sizeof(o));
    o.est_tokens = 3;
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, req, &o, &r), GR_OK);
    remember(&r);
    gr_response_free(&r);
    o.est_tokens = 60;
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, req, &o, &r), GR_OK);
    remember(&r);
    gr_response_free(&r);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "day", "tokens") +
                    mock_num(&e, "p2", FLASH, "day", "tokens"), 50);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "tpd") +
                    cell_num(&e, "p2", FLASH, "used", "tpd"), 50);
    free(req);
    stop_env(&e);
}

/*
 * The mock gives p1 100 tokens a day, the router believes 300: the one
 * 429 (TPD, named by its quotaId) teaches the router 100, cools p1's
 * TPD until Pacific midnight, and the pool carries on on p2.
 */
static void
test_tpd_learned_and_cooled(void)
{
    struct env e;
    struct gr_call_opts o;
    struct gr_response r;
    char *req = request(100, NULL);
    int calls = 0, ok = 0, n429 = 0, on_p2 = 0;
    int64_t now_s, to_midnight;
    double cool;
    char h[32];

    start_tpd(&e, 100);
    memset(&o, 0, sizeof(o));
    o.est_tokens = 25;
    /* p2 takes 12 calls, p1 4 before its fifth is refused: by the 17th
     * call p1 has been tried a fifth time, whatever the choices. */
    while (n429 == 0 && calls < 17) {
        calls++;
        if (gr_generate(e.g, FLASH, req, &o, &r) == GR_OK)
            ok++;
        remember(&r);
        n429 += r.n_429;
        on_p2 += strcmp(r.project, "p2") == 0;
        gr_response_free(&r);
    }
    CU_ASSERT_EQUAL(ok, calls);         /* no failure reached the caller */
    CU_ASSERT_EQUAL(n429, 1);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "quota_429", "tpd"), 1);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "day", "tokens"), 100);
    CU_ASSERT_EQUAL(on_p2, calls - 4);  /* the refused call went to p2 */
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "learned", "tpd"), 100);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "counts", "quota_429"), 1);
    now_s = (int64_t)time(NULL);
    to_midnight = gr_shm_next_pacific_midnight(now_s) - now_s;
    cool = cell_num(&e, "p1", FLASH, "cooldown_s", "tpd");
    CU_ASSERT_TRUE(cool > (double)to_midnight - 10 &&
                   cool <= (double)to_midnight + 1);
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p1", FLASH, h, sizeof(h)),
                           "cooling");
    CU_ASSERT_STRING_EQUAL(cell_health(&e, "p2", FLASH, h, sizeof(h)),
                           "healthy");
    free(req);
    stop_env(&e);
}

/*
 * Aliases (the config's `aliases`): a call, a reservation and a forward
 * that name an alias are reserved, counted and sent upstream as the model
 * it names (the mock knows no "flash": it would answer 404), and status
 * lists the aliases.
 */
static void
test_aliases(void)
{
    struct env e;
    struct gr_response r;
    struct gr_cost one = {1, 10, 0};
    struct gr_lease l;
    struct gr_fwd f;
    struct json_object *root, *al, *v;
    const char *body = "{\"contents\":[{\"parts\":[{\"text\":\"hi\"}]}]}";

    start_mock(&e, mock_one);
    start_router(&e, "headroom = 1.0; batch_calls = 1;",
                 "models = ( { name = \"" FLASH "\"; rpm = 100; } );\n"
                 "aliases = ( { name = \"flash\"; model = \"" FLASH "\"; },\n"
                 "  { name = \"gemini-flash-latest\"; model = \"" FLASH
                 "\"; } );\n"
                 "projects = ( { name = \"p1\"; "
                 "key = \"gr-test-SECRET-p1-7d1e2f\"; } );", 1);
    CU_ASSERT_EQUAL(gr_generate(e.g, "flash", body, NULL, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.model, FLASH);
    gr_response_free(&r);
    /* twice: the thread's cache of the alias */
    CU_ASSERT_EQUAL(gr_generate(e.g, "flash", body, NULL, &r), GR_OK);
    remember(&r);
    gr_response_free(&r);
    CU_ASSERT_EQUAL_FATAL(gr_reserve(e.g, "gemini-flash-latest", &one, 0, &l),
                          GR_OK);
    CU_ASSERT_STRING_EQUAL(l.model, FLASH);
    gr_commit(e.g, &l, NULL);
    memset(&f, 0, sizeof(f));
    f.kind = GR_FWD_GENERATE;
    f.model = "flash";
    f.path = "/v1beta/models/flash:generateContent";
    f.body = body;
    f.len = strlen(body);
    CU_ASSERT_EQUAL(gr_forward(e.g, &f, NULL, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.status, 200);
    gr_response_free(&r);
    /* the OpenAI-compatible route: the alias in the body is rewritten */
    memset(&f, 0, sizeof(f));
    f.kind = GR_FWD_OPENAI;
    f.model = "flash";
    f.path = "/v1beta/openai/chat/completions";
    f.body = "{\"model\" : \"flash\", \"messages\": [{\"role\": \"user\", "
             "\"content\": \"flash\"}]}";
    f.len = strlen(f.body);
    CU_ASSERT_EQUAL(gr_forward(e.g, &f, NULL, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.status, 200);
    gr_response_free(&r);
    /* an unknown name is still no model */
    CU_ASSERT_EQUAL(gr_generate(e.g, "gemini-pro-latest", body, NULL, &r),
                    GR_ENOMODEL);
    remember(&r);
    gr_response_free(&r);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "served", NULL), 4);
    CU_ASSERT_EQUAL(cell_num(&e, "p1", FLASH, "used", "rpm"), 5);
    root = status_json(&e);
    al = get(root, "aliases");
    CU_ASSERT_FATAL(al != NULL);
    CU_ASSERT_EQUAL(json_object_object_length(al), 2);
    v = get(al, "gemini-flash-latest");
    CU_ASSERT(v != NULL && strcmp(json_object_get_string(v), FLASH) == 0);
    json_object_put(root);
    stop_env(&e);
}

static void
test_deadline_cannot_be_met(void)
{
    struct env e;
    struct gr_call_opts o;
    struct gr_response r;
    int64_t start;

    start_mock(&e, mock_one);
    start_router(&e, "headroom = 1.0;",
                 "models = ( { name = \"" FLASH "\"; rpm = 2; } );\n"
                 "projects = ( { name = \"p1\"; "
                 "key = \"gr-test-SECRET-p1-7d1e2f\"; } );", 1);
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", NULL, &r), GR_OK);
    gr_response_free(&r);
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", NULL, &r), GR_OK);
    gr_response_free(&r);
    /* The window is full for a minute; the caller gives it 200 ms. */
    memset(&o, 0, sizeof(o));
    start = gr_now_ns();
    o.deadline_ns = start + 200 * 1000000;
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", &o, &r),
                    GR_EDEADLINE);
    remember(&r);
    CU_ASSERT_EQUAL(r.attempts, 0);
    CU_ASSERT_EQUAL(r.status, 0);
    /* Room comes about one window after the first call's first byte. */
    CU_ASSERT_TRUE(r.retry_at_ns - start > 50 * INT64_C(1000000000));
    CU_ASSERT_TRUE(r.retry_at_ns - start < 62 * INT64_C(1000000000));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "would have been needed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "before the deadline"));
    gr_response_free(&r);
    /* A queue deadline shorter than the deadline says so. */
    o.deadline_ns = gr_now_ns() + 120 * INT64_C(1000000000);
    o.queue_deadline_ns = gr_now_ns() + 50 * 1000000;
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, "{\"contents\":[{\"parts\":["
                                "{\"text\":\"hi\"}]}]}", &o, &r),
                    GR_EDEADLINE);
    remember(&r);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.error, "queue deadline"));
    gr_response_free(&r);
    CU_ASSERT_EQUAL(mock_num(&e, "p1", FLASH, "window", "requests"), 2);
    stop_env(&e);
}

/* No key of any test in any file the run wrote (but the configs), in any
 * message the library gave, in any status output. */
/* A router's models and projects: p1 serving FLASH. */
static const char *one_flash_p1 =
    "models = ( { name = \"" FLASH "\"; rpm = 100; tpm = 100000; } );\n"
    "projects = ( { name = \"p1\"; "
    "key = \"gr-test-SECRET-p1-7d1e2f\"; } );";

/*
 * A process that forks after calling: the child leaves the parent's
 * libcurl handle alone (its connection is the parent's) and makes its
 * own; both go on calling.
 */
static void
test_fork_after_a_call(void)
{
    struct env e;
    struct gr_response r;
    char *req = request(10, NULL);
    pid_t child;
    int st = -1;

    start_mock(&e, mock_one);
    start_router(&e, "",
                 one_flash_p1, 1);
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, req, NULL, &r), GR_OK);
    remember(&r);
    gr_response_free(&r);
    child = fork();
    CU_ASSERT_FATAL(child >= 0);
    if (child == 0) {
        int ok = gr_generate(e.g, FLASH, req, NULL, &r) == GR_OK &&
                 r.status == 200;

        _exit(ok ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(child, &st, 0), child);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT_EQUAL(gr_generate(e.g, FLASH, req, NULL, &r), GR_OK);
    remember(&r);
    CU_ASSERT_EQUAL(r.status, 200);
    gr_response_free(&r);
    free(req);
    stop_env(&e);
}

/* A loopback port nobody listens on (bound, then closed). */
static int
closed_port(void)
{
    struct sockaddr_in a;
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    CU_ASSERT_FATAL(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &n) == 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Calls from a thread of their own: its own libcurl handle, made (and
 * reading the environment's proxy settings) on its first call. */
struct proxied {
    struct gr *g;
    int calls;
    const char *no_proxy_after;     /* set between the two calls */
    int status[2];
};

static void *
proxied_calls(void *arg)
{
    struct proxied *p = arg;
    struct gr_call_opts o;
    struct gr_response r;
    char *req = request(10, NULL);
    int i;

    memset(&o, 0, sizeof(o));
    o.max_attempts = 1;
    o.deadline_ns = gr_now_ns() + 30 * INT64_C(1000000000);
    for (i = 0; i < p->calls; i++) {
        if (i == 1 && p->no_proxy_after != NULL)
            setenv("no_proxy", p->no_proxy_after, 1);
        gr_generate(p->g, FLASH, req, &o, &r);
        remember(&r);
        p->status[i] = r.status;
        gr_response_free(&r);
    }
    free(req);
    return NULL;
}

static void
run_proxied(struct proxied *p)
{
    pthread_t th;

    CU_ASSERT_FATAL(pthread_create(&th, NULL, proxied_calls, p) == 0);
    pthread_join(th, NULL);
}

/*
 * The environment's proxy, by libcurl's rules, read when a thread's
 * handle is made; then router.proxy.  The router's base_url is a
 * loopback port nobody listens on; the proxy is the mock, which serves
 * a request in absolute form (as sent to a proxy) like any other.  So
 * 200 means "through the proxy" and no status means "straight to the
 * base_url".
 */
static void
test_environment_proxy(void)
{
    struct env e;
    struct proxied p;
    char proxy[64];
    int mock_port;

    start_mock(&e, mock_one);
    mock_port = e.port;
    e.port = closed_port();
    start_router(&e, "",
                 one_flash_p1, 1);
    e.port = mock_port;
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", mock_port);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");

    /* http_proxy; then no_proxy set after the handle was made is not
     * seen by it. */
    setenv("http_proxy", proxy, 1);
    p = (struct proxied){e.g, 2, "127.0.0.1", {-1, -1}};
    run_proxied(&p);
    CU_ASSERT_EQUAL(p.status[0], 200);
    CU_ASSERT_EQUAL(p.status[1], 200);
    /* A new handle sees it: straight to the base_url, where nobody is. */
    p = (struct proxied){e.g, 1, NULL, {-1, -1}};
    run_proxied(&p);
    CU_ASSERT_EQUAL(p.status[0], 0);
    /* all_proxy when there is no http_proxy. */
    unsetenv("no_proxy");
    unsetenv("http_proxy");
    setenv("all_proxy", proxy, 1);
    p = (struct proxied){e.g, 1, NULL, {-1, -1}};
    run_proxied(&p);
    CU_ASSERT_EQUAL(p.status[0], 200);
    /* Upper-case HTTP_PROXY is not used (libcurl ignores it too: a CGI
     * request can set it). */
    unsetenv("all_proxy");
    setenv("HTTP_PROXY", proxy, 1);
    p = (struct proxied){e.g, 1, NULL, {-1, -1}};
    run_proxied(&p);
    CU_ASSERT_EQUAL(p.status[0], 0);

    unsetenv("HTTP_PROXY");
    stop_env(&e);

    /* router.proxy, with no proxy in the environment. */
    start_mock(&e, mock_one);
    mock_port = e.port;
    e.port = closed_port();
    snprintf(proxy, sizeof(proxy), "proxy = \"http://127.0.0.1:%d\";",
             mock_port);
    start_router(&e, proxy,
                 one_flash_p1, 1);
    e.port = mock_port;
    p = (struct proxied){e.g, 1, NULL, {-1, -1}};
    run_proxied(&p);
    CU_ASSERT_EQUAL(p.status[0], 200);

    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    stop_env(&e);
}

static void
test_no_secret_anywhere(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    size_t k;
    int files = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    while ((de = readdir(d)) != NULL) {
        char path[512], *buf;
        size_t n = strlen(de->d_name);
        FILE *f;
        long len;

        if (de->d_name[0] == '.' ||
            (n > 5 && strcmp(de->d_name + n - 5, ".conf") == 0))
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        rewind(f);
        buf = calloc(1, (size_t)len + 1);
        if (buf != NULL && fread(buf, 1, (size_t)len, f) == (size_t)len) {
            files++;
            for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                CU_ASSERT_PTR_NULL(strstr(buf, keys[k]));
        }
        free(buf);
        fclose(f);
    }
    closedir(d);
    CU_ASSERT_TRUE(files > 10);
    said[said_len] = '\0';
    CU_ASSERT_TRUE(said_len > 1000);
    for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
        CU_ASSERT_PTR_NULL(strstr(said, keys[k]));
}

static int
setup(void)
{
    const char *b = getenv("BIN");

    if (b != NULL && b[0] != '\0')
        bin_dir = b;
    /* Loopback calls never go through a proxy of the environment. */
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    umask(077);     /* the configs hold keys */
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/gr-test-client.XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void)
{
    char cmd[256];

    if (getenv("GR_KEEP_TMP") == NULL) {
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"calls and streams settle usage exactly", test_settle_exact},
        {"stream events, a stopping callback, threads",
         test_stream_and_threads},
        {"a lower true limit is learned, the pool carries on",
         test_learns_lower_limit},
        {"an invalid key disables that project only",
         test_invalid_key_disables_project},
        {"a model 404 disables that cell only",
         test_model_404_disables_cell},
        {"a bad key spares its sibling key", test_bad_key_spares_its_sibling},
        {"a probe brings a disabled project back",
         test_probe_brings_project_back},
        {"a probe keeps a missing model out",
         test_probe_keeps_a_missing_model_out},
        {"a request at fault: no retry, no penalty", test_request_at_fault},
        {"injected 503s open, then a probe closes, a circuit",
         test_circuit_opens_and_closes},
        {"a per-day 429 cools until Pacific midnight",
         test_day_spent_until_midnight},
        {"tokens per day: no over-admission at the mock",
         test_tpd_admission_holds},
        {"tokens per day settle to what the mock counted",
         test_tpd_settles_to_the_count},
        {"tokens per day: a 429 is learned and cools until midnight",
         test_tpd_learned_and_cooled},
        {"aliases are called as the model they name", test_aliases},
        {"a deadline that cannot be met", test_deadline_cannot_be_met},
        {"a child forked after a call makes its own handle",
         test_fork_after_a_call},
        {"router.proxy; the environment's, read once per thread",
         test_environment_proxy},
        {"a spend cap refuses calls; status shows the spend",
         test_spend_cap_refuses},
        {"no key in any output", test_no_secret_anywhere},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"client", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    signal(SIGPIPE, SIG_IGN);
    return gr_test_main("test_client", suites, 90);
}
