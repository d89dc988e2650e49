/*
 * test_mock_routes.c - gemroute-mock's routes beyond the native model
 * calls: ListModels/GetModel, the OpenAI-compatible endpoint, Imagen's
 * :predict and the Files API with its resumable upload.
 *
 * The "parts" suite drives the route parser, the body parsers, SHA-256
 * and the file store directly (file expiry with made-up instants).  The
 * "routes" suite forks/execs bin/gemroute-mock (BIN, default "bin") on a
 * temporary config with --listen 127.0.0.1:0 and talks to it with
 * libcurl over loopback.  Every assertion is about an outcome (status,
 * body, header, counter), never a duration.  Keys contain SECRET and
 * are never printed.
 */
#include "files.h"
#include "request.h"
#include "sha256.h"
#include "testlib.h"

#include <curl/curl.h>
#include <errno.h>
#include <json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define K_A "gr-routes-SECRET-a-4f1c"
#define K_A2 "gr-routes-SECRET-a2-9d3e"
#define K_B "gr-routes-SECRET-b-77a0"
#define K_FULL "gr-routes-SECRET-full-2b6d"

/* Project a: rpm 3 on the chat model, ipm 5 on Imagen, rpm 4 on the
 * embedder.  b: another project with the same chat model; full: a third
 * one to fill its storage.  Files: 6 slots in all, 20000 bytes a file,
 * 50000 a project.  max_body is 4 KiB, so a 10000-byte file only arrives
 * because upload chunks are streamed, never buffered. */
static const char conf[] =
    "window_ms = 60000;\n"
    "max_body_bytes = 4096;\n"
    "max_files = 6;\n"
    "max_file_bytes = 20000;\n"
    "max_storage_bytes = 50000;\n"
    "threads = 2;\n"
    "projects = (\n"
    "  { name = \"a\"; keys = [\"" K_A "\", \"" K_A2 "\"];\n"
    "    limits = ( { model = \"gemini-2.5-flash\"; rpm = 3; },\n"
    "               { model = \"imagen-4.0-generate-001\"; ipm = 5; },\n"
    "               { model = \"gemini-embedding-001\"; rpm = 4; } ); },\n"
    "  { name = \"b\"; keys = [\"" K_B "\"];\n"
    "    limits = ( { model = \"gemini-2.5-flash\"; } ); },\n"
    "  { name = \"full\"; keys = [\"" K_FULL "\"]; tier = \"PaidTier1\";\n"
    "    limits = ( { model = \"gemini-2.5-flash\"; } ); }\n"
    ");\n";

struct mock {
    pid_t pid;
    int port;
    char conf[256];
    char log[256];
};

struct resp {
    long status;
    char *body;
    size_t len;
    char hdrs[4096]; /* every response header line */
    size_t hlen;
};

static struct mock mk = {.pid = -1};
static CURL *curl;

/* ---------------------------------------------------------------- helpers */

static int
write_temp(char *path, size_t n, const char *suffix, const char *text)
{
    const char *dir = getenv("TMPDIR");
    FILE *f;
    int fd;

    snprintf(path, n, "%s/gr-test-routes-XXXXXX%s", dir != NULL ? dir : "/tmp",
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

static int
mock_start(struct mock *m, const char *text)
{
    const char *bin = getenv("BIN");
    char path[512], line[256];
    int pfd[2];
    FILE *f;

    snprintf(path, sizeof path, "%s/gemroute-mock",
             bin != NULL && bin[0] ? bin : "bin");
    if (write_temp(m->conf, sizeof m->conf, ".conf", text) < 0 ||
        write_temp(m->log, sizeof m->log, ".log", "") < 0 || pipe(pfd) < 0)
        return -1;
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
        execl(path, path, "-c", m->conf, "--listen", "127.0.0.1:0", "--verbose",
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
        fprintf(stderr, "test_mock_routes: %s did not start\n", path);
        return -1;
    }
    fclose(f);
    return 0;
}

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

    if (r->hlen + len < sizeof r->hdrs) {
        memcpy(r->hdrs + r->hlen, p, len);
        r->hlen += len;
        r->hdrs[r->hlen] = '\0';
    }
    return len;
}

static void
resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* The value of response header name ("" if none), into out. */
static const char *
header(const struct resp *r, const char *name, char *out, size_t outlen)
{
    const char *p = r->hdrs;
    size_t n = strlen(name);

    out[0] = '\0';
    while (p != NULL && *p != '\0') {
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;

            while (*v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)strcspn(v, "\r\n"), v);
            return out;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return out;
}

/*
 * One request.  url is a path on the mock or, when it starts with
 * "http", a whole URL.  hdrs is a NULL-terminated list of header lines;
 * body NULL with method NULL means GET.
 */
static int
req(const char *method, const char *url, const char *const *hdrs,
    const char *body, size_t len, struct resp *r)
{
    struct curl_slist *h = NULL;
    char full[1024];
    CURLcode rc;
    int i;

    memset(r, 0, sizeof *r);
    curl_easy_reset(curl);
    if (strncmp(url, "http", 4) == 0)
        snprintf(full, sizeof full, "%s", url);
    else
        snprintf(full, sizeof full, "http://127.0.0.1:%d%s", mk.port, url);
    curl_easy_setopt(curl, CURLOPT_URL, full);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 20L);
    h = curl_slist_append(h, "Expect:");
    for (i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
        h = curl_slist_append(h, hdrs[i]);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (method != NULL)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    rc = curl_easy_perform(curl);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "test_mock_routes: %s\n", curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body == NULL)
        r->body = calloc(1, 1);
    return 0;
}

/* GET or POST (body != NULL) with the native key header. */
static int
call(const char *path, const char *key, const char *body, struct resp *r)
{
    char kh[256];
    const char *hdrs[3] = {"Content-Type: application/json", NULL, NULL};

    if (key != NULL) {
        snprintf(kh, sizeof kh, "x-goog-api-key: %s", key);
        hdrs[1] = kh;
    }
    return req(NULL, path, hdrs, body, body != NULL ? strlen(body) : 0, r);
}

/* POST with "Authorization: Bearer key" (and also x-goog-api-key: both). */
static int
oai(const char *path, const char *key, int both, const char *body,
    struct resp *r)
{
    char kh[256], gh[256];
    const char *hdrs[4] = {"Content-Type: application/json", NULL, NULL, NULL};
    int n = 1;

    if (key != NULL) {
        snprintf(kh, sizeof kh, "Authorization: Bearer %s", key);
        hdrs[n++] = kh;
    }
    if (both) {
        snprintf(gh, sizeof gh, "x-goog-api-key: %s", key);
        hdrs[n++] = gh;
    }
    return req(NULL, path, hdrs, body, body != NULL ? strlen(body) : 0, r);
}

static struct json_object *
jget(struct json_object *o, const char *path)
{
    const char *sep = strchr(path, '/') != NULL ? "/" : ".";
    char buf[256], *save = NULL, *tok;

    /* "a.b.0" or, when a key has dots ("gemini-2.5-flash"), "a/b/0". */
    snprintf(buf, sizeof buf, "%s", path);
    for (tok = strtok_r(buf, sep, &save); tok != NULL && o != NULL;
         tok = strtok_r(NULL, sep, &save)) {
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

static size_t
jlen(struct json_object *o, const char *path)
{
    struct json_object *v = jget(o, path);

    return v != NULL && json_object_is_type(v, json_type_array)
               ? json_object_array_length(v)
               : (size_t)-1;
}

static struct json_object *
stats(void)
{
    struct json_object *j = NULL;
    struct resp r;

    if (call("/mock/stats", NULL, NULL, &r) == 0)
        j = json_tokener_parse(r.body);
    resp_free(&r);
    return j;
}

static int64_t
stat_int(const char *path)
{
    struct json_object *j = stats();
    int64_t v = jint(j, path);

    json_object_put(j);
    return v;
}

static void
hex_of(const unsigned char d[32], char out[65])
{
    static const char hexd[] = "0123456789abcdef";
    int i;

    for (i = 0; i < 32; i++) {
        out[2 * i] = hexd[d[i] >> 4];
        out[2 * i + 1] = hexd[d[i] & 15];
    }
    out[64] = '\0';
}

static int
b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decode base64 into out (NUL-terminated); bytes decoded or -1. */
static long
unbase64(const char *in, unsigned char *out, size_t outlen)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0, v;

    for (; *in != '\0' && *in != '='; in++) {
        v = b64val((unsigned char)*in);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outlen)
                return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    out[o] = '\0';
    return (long)o;
}

/* ------------------------------------------------------------ parts */

static void
sha_hex(const void *data, size_t n, size_t split, char out[65])
{
    struct gr_mock_sha256 s;
    unsigned char d[32];

    gr_mock_sha256_init(&s);
    gr_mock_sha256_add(&s, data, split);
    gr_mock_sha256_add(&s, (const char *)data + split, n - split);
    gr_mock_sha256_end(&s, d);
    hex_of(d, out);
}

static void
test_sha256_vectors_at_every_split(void)
{
    static const char two_blocks[] =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char hex[65], ref[65], *big;
    size_t i, n = strlen(two_blocks);
    struct gr_mock_sha256 s;
    unsigned char d[32];

    /* FIPS 180-4 examples. */
    sha_hex("", 0, 0, hex);
    CU_ASSERT_STRING_EQUAL(
        hex,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abc", 3, 1, hex);
    CU_ASSERT_STRING_EQUAL(
        hex,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex(two_blocks, n, 0, ref);
    CU_ASSERT_STRING_EQUAL(
        ref,
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    for (i = 0; i <= n; i++) {
        sha_hex(two_blocks, n, i, hex);
        CU_ASSERT_STRING_EQUAL(hex, ref);
    }
    /* One million 'a', fed in odd pieces. */
    big = malloc(1000000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'a', 1000000);
    gr_mock_sha256_init(&s);
    for (i = 0; i < 1000000; i += 777)
        gr_mock_sha256_add(&s, big + i, i + 777 > 1000000 ? 1000000 - i : 777);
    gr_mock_sha256_end(&s, d);
    hex_of(d, hex);
    CU_ASSERT_STRING_EQUAL(
        hex,
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(big);
}

static void
test_new_routes_parse(void)
{
    struct gr_mock_route r;

    gr_mock_route_parse("GET", "/v1beta/models", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_MODELS_LIST);
    gr_mock_route_parse("GET", "/v1/models", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_MODELS_LIST);
    CU_ASSERT_STRING_EQUAL(r.version, "v1");
    gr_mock_route_parse("GET", "/v1beta/models/gemini-2.5-flash", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_MODEL_GET);
    CU_ASSERT_STRING_EQUAL(r.model, "gemini-2.5-flash");
    gr_mock_route_parse("POST", "/v1beta/models/gemini-2.5-flash", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/v1beta/models", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/v1/models/imagen-4.0-generate-001:predict",
                        &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_MODEL);
    CU_ASSERT_EQUAL(r.method, GR_MOCK_PREDICT);
    gr_mock_route_parse("GET", "/v1beta/files", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_FILES_LIST);
    gr_mock_route_parse("GET", "/v1beta/files/abc-123", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_FILE_GET);
    CU_ASSERT_STRING_EQUAL(r.file, "abc-123");
    gr_mock_route_parse("DELETE", "/v1/files/abc123", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_FILE_DELETE);
    gr_mock_route_parse("GET", "/v1beta/files/ABC", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("GET", "/v1beta/files/a/b", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/v1beta/files/abc", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/upload/v1beta/files", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_UPLOAD);
    CU_ASSERT_STRING_EQUAL(r.version, "v1beta");
    gr_mock_route_parse("POST", "http://h:1/upload/v1/files", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_UPLOAD);
    CU_ASSERT_STRING_EQUAL(r.version, "v1");
    gr_mock_route_parse("GET", "/upload/v1beta/files", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/v1beta/openai/chat/completions", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_OAI_CHAT);
    gr_mock_route_parse("GET", "/v1beta/openai/chat/completions", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
    gr_mock_route_parse("POST", "/v1beta/openai/embeddings", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_OAI_EMBED);
    gr_mock_route_parse("GET", "/v1beta/openai/models", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_OAI_MODELS);
    gr_mock_route_parse("GET", "/v2/models", &r);
    CU_ASSERT_EQUAL(r.kind, GR_MOCK_ROUTE_NONE);
}

/* Owns only "mine". */
static int
only_mine(void *arg, const char *id)
{
    (*(int *)arg)++;
    return strcmp(id, "mine") == 0 ? 0 : -EACCES;
}

static int
parse_ex(enum gr_mock_method m, const char *body, struct gr_mock_usage *u,
         char *msg, size_t msglen, int *calls)
{
    char field[64];

    return gr_mock_parse_body_ex(m, body, strlen(body), u, msg, msglen, field,
                                 sizeof field, only_mine, calls);
}

static void
test_bodies_predict_files_openai(void)
{
    struct gr_mock_usage u;
    struct gr_mock_oai o;
    char msg[256], field[64];
    int calls = 0;
    const char *b;

    /* :predict: sampleCount images, no tokens; 4 when not said. */
    CU_ASSERT_EQUAL(parse_ex(GR_MOCK_PREDICT,
                             "{\"instances\":[{\"prompt\":\"a cat\"}],"
                             "\"parameters\":{\"sampleCount\":2}}",
                             &u, msg, sizeof msg, &calls),
                    0);
    CU_ASSERT_EQUAL(u.images, 2);
    CU_ASSERT_EQUAL(u.samples, 2);
    CU_ASSERT_EQUAL(u.requests, 1);
    CU_ASSERT_EQUAL(u.tokens, 0);
    CU_ASSERT_EQUAL(parse_ex(GR_MOCK_PREDICT,
                             "{\"instances\":[{\"prompt\":\"x\"}]}", &u, msg,
                             sizeof msg, &calls),
                    0);
    CU_ASSERT_EQUAL(u.images, 4);
    CU_ASSERT_EQUAL(parse_ex(GR_MOCK_PREDICT,
                             "{\"instances\":[{\"prompt\":\"x\"}],"
                             "\"parameters\":{\"sampleCount\":5}}",
                             &u, msg, sizeof msg, &calls),
                    -EINVAL);
    CU_ASSERT_EQUAL(parse_ex(GR_MOCK_PREDICT,
                             "{\"instances\":[{\"prompt\":\"x\"}],"
                             "\"parameters\":{\"sampleCount\":0}}",
                             &u, msg, sizeof msg, &calls),
                    -EINVAL);
    CU_ASSERT_EQUAL(parse_ex(GR_MOCK_PREDICT, "{\"instances\":[]}", &u, msg,
                             sizeof msg, &calls),
                    -EINVAL);
    CU_ASSERT_EQUAL(parse_ex(GR_MOCK_PREDICT, "{\"instances\":[{\"p\":1}]}", &u,
                             msg, sizeof msg, &calls),
                    -EINVAL);

    /* fileData: the caller's file passes, an input image costs no IPM
     * (IPM counts images generated), another's is refused in Google's
     * words, a YouTube URI is not the Files API's and is not checked. */
    calls = 0;
    CU_ASSERT_EQUAL(
        parse_ex(GR_MOCK_GENERATE_CONTENT,
                 "{\"contents\":[{\"parts\":[{\"text\":\"abcd\"},"
                 "{\"fileData\":{\"mimeType\":\"image/png\",\"fileUri\":"
                 "\"http://127.0.0.1:9/v1beta/files/mine\"}},"
                 "{\"file_data\":{\"mime_type\":\"video/mp4\",\"file_uri\":"
                 "\"https://www.youtube.com/watch?v=xyz\"}}]}]}",
                 &u, msg, sizeof msg, &calls),
        0);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_EQUAL(u.images, 0);
    CU_ASSERT_EQUAL(u.tokens, 1);
    CU_ASSERT_EQUAL(
        parse_ex(GR_MOCK_GENERATE_CONTENT,
                 "{\"contents\":[{\"parts\":[{\"fileData\":{\"fileUri\":"
                 "\"files/mine\"}}]},{\"parts\":[{\"fileData\":{\"fileUri\":"
                 "\"https://generativelanguage.googleapis.com/v1beta/files/"
                 "theirs\"}}]}]}",
                 &u, msg, sizeof msg, &calls),
        -EACCES);
    CU_ASSERT_STRING_EQUAL(msg, "You do not have permission to access the "
                                "File theirs or it may not exist.");
    /* Without a checker nothing is refused (the old entry point). */
    CU_ASSERT_EQUAL(gr_mock_parse_body(GR_MOCK_GENERATE_CONTENT,
                                       "{\"contents\":[{\"parts\":[{"
                                       "\"fileData\":{\"fileUri\":"
                                       "\"files/theirs\"}}]}]}",
                                       strlen("{\"contents\":[{\"parts\":[{"
                                              "\"fileData\":{\"fileUri\":"
                                              "\"files/theirs\"}}]}]}"),
                                       &u, msg, sizeof msg, field,
                                       sizeof field),
                    0);

    /* OpenAI chat: system text is not counted (it is systemInstruction),
     * image_url parts are images, "models/" is dropped. */
    b = "{\"model\":\"models/gemini-2.5-flash\",\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"messages\":["
        "{\"role\":\"system\",\"content\":\"ignored ignored\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"12345678\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/png;base64,AAAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":\"1234\"}]}";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_chat(b, strlen(b), &o, &u, msg,
                                           sizeof msg, field, sizeof field),
                    0);
    CU_ASSERT_STRING_EQUAL(o.model, "gemini-2.5-flash");
    CU_ASSERT(o.stream);
    CU_ASSERT(o.include_usage);
    CU_ASSERT_EQUAL(u.text_bytes, 12);
    CU_ASSERT_EQUAL(u.tokens, 3);
    CU_ASSERT_EQUAL(u.images, 1);
    CU_ASSERT_EQUAL(u.requests, 1);
    b = "{\"model\":\"gemini-2.5-flash\"}";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_chat(b, strlen(b), &o, &u, msg,
                                           sizeof msg, field, sizeof field),
                    -EINVAL);
    CU_ASSERT_STRING_EQUAL(field, "messages");
    b = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_chat(b, strlen(b), &o, &u, msg,
                                           sizeof msg, field, sizeof field),
                    -EINVAL);
    CU_ASSERT_STRING_EQUAL(field, "model");
    b = "{\"model\":\"bad name!\",\"messages\":[{\"content\":\"x\"}]}";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_chat(b, strlen(b), &o, &u, msg,
                                           sizeof msg, field, sizeof field),
                    0);
    CU_ASSERT_STRING_EQUAL(o.model, "");

    /* OpenAI embeddings: each input is one request. */
    b = "{\"model\":\"gemini-embedding-001\",\"input\":[\"abcd\",\"ab\","
        "\"abcdef\"],\"dimensions\":8}";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_embed(b, strlen(b), &o, &u, msg,
                                            sizeof msg, field, sizeof field),
                    0);
    CU_ASSERT_EQUAL(u.requests, 3);
    CU_ASSERT_EQUAL(u.tokens, 3);
    CU_ASSERT_EQUAL(u.embed_dims, 8);
    b = "{\"model\":\"gemini-embedding-001\",\"input\":\"abcde\"}";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_embed(b, strlen(b), &o, &u, msg,
                                            sizeof msg, field, sizeof field),
                    0);
    CU_ASSERT_EQUAL(u.requests, 1);
    CU_ASSERT_EQUAL(u.tokens, 2);
    b = "{\"model\":\"gemini-embedding-001\",\"input\":[1,2]}";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_embed(b, strlen(b), &o, &u, msg,
                                            sizeof msg, field, sizeof field),
                    -EINVAL);
    b = "{\"model\":\"gemini-embedding-001\",\"input\":\"a\","
        "\"dimensions\":4000}";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_embed(b, strlen(b), &o, &u, msg,
                                            sizeof msg, field, sizeof field),
                    -EINVAL);
    b = "{\"model\": \"x\", \"input\": [";
    CU_ASSERT_EQUAL(gr_mock_parse_oai_embed(b, strlen(b), &o, &u, msg,
                                            sizeof msg, field, sizeof field),
                    -EINVAL);
}

#define HOUR_NS (INT64_C(3600) * 1000000000)

static void
test_file_store_bounds_owner_and_expiry(void)
{
    struct gr_mock_files *fs;
    struct gr_mock_file_info f, page[4];
    char up[GR_MOCK_UPLOAD_ID_LEN + 1], up2[GR_MOCK_UPLOAD_ID_LEN + 1];
    char ids[3][GR_MOCK_FILE_ID_LEN + 1], hex[65];
    int64_t t0 = INT64_C(1800000000) * 1000000000, files, bytes;
    uint64_t cursor;
    size_t n;
    int i;

    /* 4 slots, 100 bytes a file, 250 bytes a project, 2 projects. */
    CU_ASSERT_EQUAL_FATAL(gr_mock_files_new(2, 4, 100, 250, &fs), 0);
    CU_ASSERT_EQUAL(
        gr_mock_files_start(fs, 0, 101, "big", "text/plain", t0, up), -EFBIG);
    CU_ASSERT_EQUAL(gr_mock_files_start(fs, 0, 3, "abc", "text/plain", t0, up),
                    0);
    CU_ASSERT_EQUAL(gr_mock_files_received(fs, up), 0);
    CU_ASSERT_EQUAL(gr_mock_files_feed(fs, up, "ab", 2), 0);
    CU_ASSERT_EQUAL(gr_mock_files_finalize(fs, up, t0, &f), -EINVAL);
    CU_ASSERT_EQUAL(gr_mock_files_feed(fs, up, "c", 1), 0);
    CU_ASSERT_EQUAL(gr_mock_files_finalize(fs, up, t0 + 5, &f), 0);
    sha_hex("abc", 3, 0, hex);
    CU_ASSERT_STRING_EQUAL(f.sha256_hex, hex);
    CU_ASSERT_EQUAL(f.size, 3);
    CU_ASSERT_EQUAL(f.updated_ns, t0 + 5);
    CU_ASSERT_EQUAL(strlen(f.id), GR_MOCK_FILE_ID_LEN);
    CU_ASSERT_EQUAL(gr_mock_files_received(fs, up), -ENOENT);
    snprintf(ids[0], sizeof ids[0], "%s", f.id);
    /* Only its project sees it. */
    CU_ASSERT_EQUAL(gr_mock_files_get(fs, 0, ids[0], t0, &f), 0);
    CU_ASSERT_EQUAL(gr_mock_files_get(fs, 1, ids[0], t0, &f), -EACCES);
    CU_ASSERT_EQUAL(gr_mock_files_delete(fs, 1, ids[0], t0), -EACCES);
    CU_ASSERT_EQUAL(gr_mock_files_get(fs, 0, "nosuchfile", t0, &f), -EACCES);

    /* Past the declared size: the session is cancelled, bytes returned. */
    CU_ASSERT_EQUAL(gr_mock_files_start(fs, 0, 2, "", "x/y", t0, up), 0);
    CU_ASSERT_EQUAL(gr_mock_files_feed(fs, up, "abc", 3), -EFBIG);
    CU_ASSERT_EQUAL(gr_mock_files_received(fs, up), -ENOENT);
    gr_mock_files_usage(fs, 0, t0, &files, &bytes);
    CU_ASSERT_EQUAL(files, 1);
    CU_ASSERT_EQUAL(bytes, 3);

    /* Project storage: declared sizes are reserved at start, undeclared
     * ones count as they arrive; 3 + 100 + 100 fits 250, 100 more not. */
    CU_ASSERT_EQUAL(gr_mock_files_start(fs, 0, 100, "", "x/y", t0, up), 0);
    CU_ASSERT_EQUAL(gr_mock_files_start(fs, 0, -1, "", "x/y", t0, up2), 0);
    {
        char chunk[100], up3[GR_MOCK_UPLOAD_ID_LEN + 1];

        memset(chunk, 'z', sizeof chunk);
        CU_ASSERT_EQUAL(gr_mock_files_feed(fs, up2, chunk, 100), 0);
        CU_ASSERT_EQUAL(gr_mock_files_start(fs, 0, 100, "", "x/y", t0, up3),
                        -ENOSPC);
        /* Over max_file: the session is cancelled, its bytes returned. */
        CU_ASSERT_EQUAL(gr_mock_files_feed(fs, up2, chunk, 50), -EFBIG);
    }
    gr_mock_files_usage(fs, 0, t0, &files, &bytes);
    CU_ASSERT_EQUAL(bytes, 103);
    CU_ASSERT_EQUAL(gr_mock_files_cancel(fs, up), 0);
    gr_mock_files_usage(fs, 0, t0, &files, &bytes);
    CU_ASSERT_EQUAL(bytes, 3);

    /* Slots: 4 in all, sessions included. */
    for (i = 1; i < 3; i++) {
        CU_ASSERT_EQUAL(gr_mock_files_start(fs, 0, 1, "", "x/y", t0 + i, up),
                        0);
        CU_ASSERT_EQUAL(gr_mock_files_feed(fs, up, "q", 1), 0);
        CU_ASSERT_EQUAL(gr_mock_files_finalize(fs, up, t0 + i, &f), 0);
        snprintf(ids[i], sizeof ids[i], "%s", f.id);
    }
    CU_ASSERT_EQUAL(gr_mock_files_start(fs, 1, 1, "", "x/y", t0, up), 0);
    CU_ASSERT_EQUAL(gr_mock_files_start(fs, 1, 1, "", "x/y", t0, up2), -EMFILE);
    CU_ASSERT_EQUAL(gr_mock_files_cancel(fs, up), 0);

    /* Listing pages in upload order, two at a time. */
    cursor = 0;
    n = gr_mock_files_list(fs, 0, t0, &cursor, page, 2);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_NOT_EQUAL(cursor, 0);
    CU_ASSERT_STRING_EQUAL(page[0].id, ids[0]);
    CU_ASSERT_STRING_EQUAL(page[1].id, ids[1]);
    n = gr_mock_files_list(fs, 0, t0, &cursor, page, 2);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(cursor, 0);
    CU_ASSERT_STRING_EQUAL(page[0].id, ids[2]);
    cursor = 0;
    CU_ASSERT_EQUAL(gr_mock_files_list(fs, 1, t0, &cursor, page, 2), 0);

    /* Files live 48 h from creation, to the nanosecond. */
    CU_ASSERT_EQUAL(gr_mock_files_get(fs, 0, ids[0], t0 + 48 * HOUR_NS - 1, &f),
                    0);
    CU_ASSERT_EQUAL(gr_mock_files_get(fs, 0, ids[0], t0 + 48 * HOUR_NS, &f),
                    -EACCES);
    gr_mock_files_usage(fs, 0, t0 + 48 * HOUR_NS, &files, &bytes);
    CU_ASSERT_EQUAL(files, 2);
    CU_ASSERT_EQUAL(bytes, 2);
    CU_ASSERT_EQUAL(gr_mock_files_delete(fs, 0, ids[1], t0 + 48 * HOUR_NS), 0);
    CU_ASSERT_EQUAL(gr_mock_files_get(fs, 0, ids[1], t0 + 48 * HOUR_NS, &f),
                    -EACCES);
    gr_mock_files_free(fs);
}

static void
test_timestamp_and_file_json(void)
{
    struct gr_mock_file_info f;
    struct gr_mock_buf b = {0};
    struct gr_mock_jw w;
    struct json_object *j;
    char t[48];

    gr_mock_timestamp(INT64_C(1729617210123456789), t, sizeof t);
    CU_ASSERT_STRING_EQUAL(t, "2024-10-22T17:13:30.123456Z");
    memset(&f, 0, sizeof f);
    snprintf(f.id, sizeof f.id, "abc123def456");
    snprintf(f.display, sizeof f.display, "my \"pic\"");
    snprintf(f.mime, sizeof f.mime, "image/png");
    f.size = 1234567;
    f.created_ns = INT64_C(1729617210) * 1000000000;
    f.updated_ns = f.created_ns + 1000;
    sha_hex("abc", 3, 0, f.sha256_hex);
    gr_mock_jw_init(&w, &b, 1);
    gr_mock_file_json(&w, NULL, &f, "http://127.0.0.1:8080", "v1beta");
    j = json_tokener_parse(b.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(jstr(j, "name"), "files/abc123def456");
    CU_ASSERT_STRING_EQUAL(jstr(j, "displayName"), "my \"pic\"");
    CU_ASSERT_STRING_EQUAL(jstr(j, "sizeBytes"), "1234567");
    CU_ASSERT_STRING_EQUAL(jstr(j, "createTime"),
                           "2024-10-22T17:13:30.000000Z");
    CU_ASSERT_STRING_EQUAL(jstr(j, "updateTime"),
                           "2024-10-22T17:13:30.000001Z");
    CU_ASSERT_STRING_EQUAL(jstr(j, "expirationTime"),
                           "2024-10-24T17:13:30.000000Z");
    CU_ASSERT_STRING_EQUAL(jstr(j, "uri"),
                           "http://127.0.0.1:8080/v1beta/files/abc123def456");
    CU_ASSERT_STRING_EQUAL(jstr(j, "state"), "ACTIVE");
    CU_ASSERT_STRING_EQUAL(jstr(j, "source"), "UPLOADED");
    {
        unsigned char raw[128];

        CU_ASSERT_EQUAL(unbase64(jstr(j, "sha256Hash"), raw, sizeof raw), 64);
        CU_ASSERT_STRING_EQUAL((char *)raw, f.sha256_hex);
    }
    json_object_put(j);
    gr_mock_buf_free(&b);
}

/* ----------------------------------------------------------- routes */

static int
routes_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    if (curl == NULL)
        return -1;
    return mock_start(&mk, conf) < 0 ? -1 : 0;
}

static int
routes_cleanup(void)
{
    mock_stop(&mk);
    if (mk.log[0] != '\0')
        unlink(mk.log);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return 0;
}

static void
routes_setup(void)
{
    struct resp r;

    if (mk.pid <= 0)
        return; /* the last test stopped it */
    CU_ASSERT_EQUAL(call("/mock/reset", NULL, "", &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
}

static long
status_of(const char *path, const char *key, const char *body)
{
    struct resp r;
    long s = 0;

    if (call(path, key, body, &r) == 0)
        s = r.status;
    resp_free(&r);
    return s;
}

static void
test_list_and_get_models(void)
{
    struct json_object *j;
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(call("/v1beta/models", K_A, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    /* Every model any project lists, sorted; no next page. */
    CU_ASSERT_EQUAL(jlen(j, "models"), 3);
    CU_ASSERT_STRING_EQUAL(jstr(j, "models.0.name"), "models/gemini-2.5-flash");
    CU_ASSERT_STRING_EQUAL(jstr(j, "models.0.supportedGenerationMethods.0"),
                           "generateContent");
    CU_ASSERT_STRING_EQUAL(jstr(j, "models.1.name"),
                           "models/gemini-embedding-001");
    CU_ASSERT_STRING_EQUAL(jstr(j, "models.1.supportedGenerationMethods.0"),
                           "embedContent");
    CU_ASSERT_STRING_EQUAL(jstr(j, "models.2.supportedGenerationMethods.0"),
                           "predict");
    CU_ASSERT(jint(j, "models.0.inputTokenLimit") > 0);
    CU_ASSERT_PTR_NULL(jget(j, "nextPageToken"));
    json_object_put(j);
    resp_free(&r);

    /* Pages of two, on the /v1 alias. */
    CU_ASSERT_EQUAL_FATAL(call("/v1/models?pageSize=2", K_B, NULL, &r), 0);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jlen(j, "models"), 2);
    CU_ASSERT_STRING_EQUAL(jstr(j, "nextPageToken"), "2");
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(
        call("/v1/models?pageSize=2&pageToken=2", K_B, NULL, &r), 0);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jlen(j, "models"), 1);
    CU_ASSERT_STRING_EQUAL(jstr(j, "models.0.name"),
                           "models/imagen-4.0-generate-001");
    CU_ASSERT_PTR_NULL(jget(j, "nextPageToken"));
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL(status_of("/v1beta/models?pageToken=x", K_A, NULL), 400);

    CU_ASSERT_EQUAL_FATAL(
        call("/v1beta/models/gemini-embedding-001", K_A, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "name"), "models/gemini-embedding-001");
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(call("/v1beta/models/gemini-9", K_A, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "NOT_FOUND");
    json_object_put(j);
    resp_free(&r);
    /* A key is needed, as at Google; listing costs no quota. */
    CU_ASSERT_EQUAL(status_of("/v1beta/models", NULL, NULL), 403);
    CU_ASSERT_EQUAL(status_of("/v1beta/models", "gr-routes-SECRET-nope", NULL),
                    400);
    CU_ASSERT_EQUAL(stat_int("projects/a/models/gemini-2.5-flash/admitted"), 0);
}

static const char chat_body[] =
    "{\"model\":\"gemini-2.5-flash\",\"messages\":["
    "{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"user\",\"content\":\"Hello, mock!\"}]}";

static void
test_openai_chat_shape_and_usage(void)
{
    struct json_object *j;
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/chat/completions", K_A, 0, chat_body, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(jstr(j, "object"), "chat.completion");
    CU_ASSERT(strncmp(jstr(j, "id"), "chatcmpl-", 9) == 0);
    CU_ASSERT(jint(j, "created") > 1700000000);
    CU_ASSERT_STRING_EQUAL(jstr(j, "model"), "gemini-2.5-flash");
    CU_ASSERT_EQUAL(jlen(j, "choices"), 1);
    CU_ASSERT_STRING_EQUAL(jstr(j, "choices.0.message.role"), "assistant");
    CU_ASSERT(strstr(jstr(j, "choices.0.message.content"), "gemroute-mock") !=
              NULL);
    CU_ASSERT_STRING_EQUAL(jstr(j, "choices.0.finish_reason"), "stop");
    /* "Hello, mock!" is 12 bytes: 3 tokens; the system text is free. */
    CU_ASSERT_EQUAL(jint(j, "usage.prompt_tokens"), 3);
    CU_ASSERT_EQUAL(jint(j, "usage.completion_tokens"), 20);
    CU_ASSERT_EQUAL(jint(j, "usage.total_tokens"), 23);
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_int("projects/a/models/gemini-2.5-flash/admitted"), 1);
    CU_ASSERT_EQUAL(stat_int("projects/a/models/gemini-2.5-flash/tokens"), 3);

    /* "models/..." names the same model. */
    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/chat/completions", K_B, 0,
            "{\"model\":\"models/gemini-2.5-flash\",\"messages\":[{\"role\":"
            "\"user\",\"content\":\"hi\"}]}",
            &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_int("projects/b/models/gemini-2.5-flash/admitted"), 1);
}

static void
test_openai_stream_with_and_without_usage(void)
{
    char ctype[128];
    struct resp r;
    const char *p;
    int events = 0, usage = 0, done_last = 0;
    char *copy, *save = NULL, *line;

    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/chat/completions", K_B, 0,
            "{\"model\":\"gemini-2.5-flash\",\"stream\":true,"
            "\"stream_options\":{\"include_usage\":true},\"messages\":"
            "[{\"role\":\"user\",\"content\":\"abcdefgh\"}]}",
            &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT(strncmp(header(&r, "Content-Type", ctype, sizeof ctype),
                      "text/event-stream", 17) == 0);
    copy = strdup(r.body);
    for (line = strtok_r(copy, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        struct json_object *j;

        CU_ASSERT(strncmp(line, "data: ", 6) == 0);
        done_last = strcmp(line, "data: [DONE]") == 0;
        if (done_last)
            continue;
        j = json_tokener_parse(line + 6);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_STRING_EQUAL(jstr(j, "object"), "chat.completion.chunk");
        if (jlen(j, "choices") == 0) {
            /* The usage chunk: empty choices, the whole usage. */
            usage++;
            CU_ASSERT_EQUAL(jint(j, "usage.prompt_tokens"), 2);
            CU_ASSERT_EQUAL(jint(j, "usage.completion_tokens"), 20);
            CU_ASSERT_EQUAL(jint(j, "usage.total_tokens"), 22);
        } else {
            events++;
            CU_ASSERT_PTR_NULL(jget(j, "usage"));
            CU_ASSERT(jstr(j, "choices.0.delta.content")[0] != '\0');
        }
        json_object_put(j);
    }
    free(copy);
    CU_ASSERT_EQUAL(events, 3);
    CU_ASSERT_EQUAL(usage, 1);
    CU_ASSERT(done_last);
    /* The last content chunk says stop. */
    p = strstr(r.body, "\"finish_reason\":\"stop\"");
    CU_ASSERT_PTR_NOT_NULL(p);
    resp_free(&r);

    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/chat/completions", K_B, 0,
            "{\"model\":\"gemini-2.5-flash\",\"stream\":true,\"messages\":"
            "[{\"role\":\"user\",\"content\":\"abcdefgh\"}]}",
            &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NULL(strstr(r.body, "\"usage\""));
    CU_ASSERT(r.len > 14 &&
              strcmp(r.body + r.len - 14, "data: [DONE]\n\n") == 0);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_int("projects/b/models/gemini-2.5-flash/admitted"), 2);
}

/* [ {"error": {...}} ]: Google's OpenAI endpoint's error shape. */
static struct json_object *
oai_error(const struct resp *r)
{
    struct json_object *j = json_tokener_parse(r->body), *e;

    CU_ASSERT_PTR_NOT_NULL(j);
    if (j == NULL)
        return NULL;
    CU_ASSERT(json_object_is_type(j, json_type_array));
    CU_ASSERT_EQUAL(jlen(j, ""), 1);
    e = json_object_get(json_object_array_get_idx(j, 0));
    json_object_put(j);
    return e;
}

static void
test_openai_errors_and_shared_quota(void)
{
    struct json_object *e;
    struct resp r;
    int i;

    /* No key, a bad key, two credentials, an unknown model, bad JSON. */
    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/chat/completions", NULL, 0, chat_body, &r), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    e = oai_error(&r);
    CU_ASSERT_STRING_EQUAL(jstr(e, "error.status"), "PERMISSION_DENIED");
    json_object_put(e);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(oai("/v1beta/openai/chat/completions",
                              "gr-routes-SECRET-unknown", 0, chat_body, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    e = oai_error(&r);
    CU_ASSERT_STRING_EQUAL(jstr(e, "error.details.0.reason"),
                           "API_KEY_INVALID");
    json_object_put(e);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/chat/completions", K_A, 1, chat_body, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    e = oai_error(&r);
    CU_ASSERT_STRING_EQUAL(jstr(e, "error.message"),
                           "Multiple authentication credentials received. "
                           "Please pass only one.");
    CU_ASSERT_EQUAL(jint(e, "error.code"), 400);
    json_object_put(e);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/chat/completions", K_A, 0,
            "{\"model\":\"gemini-0\",\"messages\":[{\"content\":\"x\"}]}", &r),
        0);
    CU_ASSERT_EQUAL(r.status, 404);
    e = oai_error(&r);
    CU_ASSERT_STRING_EQUAL(jstr(e, "error.status"), "NOT_FOUND");
    json_object_put(e);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(oai("/v1beta/openai/chat/completions", K_A, 0,
                              "{\"model\": \"gemini-2.5-flash\", ", &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    e = oai_error(&r);
    CU_ASSERT_STRING_EQUAL(jstr(e, "error.status"), "INVALID_ARGUMENT");
    json_object_put(e);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_int("projects/a/models/gemini-2.5-flash/admitted"), 0);

    /* rpm = 3 for project a, shared by the native route, the OpenAI
     * route and both keys: the fourth call is refused wherever it comes
     * from, with the native 429 inside the array. */
    CU_ASSERT_EQUAL(
        status_of("/v1beta/models/gemini-2.5-flash:"
                  "generateContent",
                  K_A2, "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}"),
        200);
    for (i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(
            oai("/v1beta/openai/chat/completions", K_A, 0, chat_body, &r), 0);
        CU_ASSERT_EQUAL(r.status, 200);
        resp_free(&r);
    }
    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/chat/completions", K_A2, 0, chat_body, &r), 0);
    CU_ASSERT_EQUAL(r.status, 429);
    e = oai_error(&r);
    CU_ASSERT_STRING_EQUAL(jstr(e, "error.status"), "RESOURCE_EXHAUSTED");
    CU_ASSERT_STRING_EQUAL(
        jstr(e, "error.details.0.violations.0.quotaId"),
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier");
    CU_ASSERT_STRING_EQUAL(jstr(e, "error.details.0.violations.0.quotaValue"),
                           "3");
    CU_ASSERT_STRING_EQUAL(jstr(e, "error.details.2.@type"),
                           "type.googleapis.com/google.rpc.RetryInfo");
    json_object_put(e);
    resp_free(&r);
    CU_ASSERT_EQUAL(
        status_of("/v1beta/models/gemini-2.5-flash:"
                  "generateContent",
                  K_A, "{\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}"),
        429);
    CU_ASSERT_EQUAL(stat_int("projects/a/models/gemini-2.5-flash/admitted"), 3);
    CU_ASSERT_EQUAL(
        stat_int("projects/a/models/gemini-2.5-flash/quota_429/rpm"), 2);
}

static void
test_openai_embeddings_and_models(void)
{
    struct json_object *j, *e;
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/embeddings", K_A, 0,
            "{\"model\":\"gemini-embedding-001\",\"input\":[\"abcd\","
            "\"efgh\",\"ij\"],\"dimensions\":16}",
            &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "object"), "list");
    CU_ASSERT_EQUAL(jlen(j, "data"), 3);
    CU_ASSERT_STRING_EQUAL(jstr(j, "data.2.object"), "embedding");
    CU_ASSERT_EQUAL(jint(j, "data.2.index"), 2);
    CU_ASSERT_EQUAL(jlen(j, "data.0.embedding"), 16);
    CU_ASSERT_STRING_EQUAL(jstr(j, "model"), "gemini-embedding-001");
    CU_ASSERT_EQUAL(jint(j, "usage.prompt_tokens"), 3);
    CU_ASSERT_EQUAL(jint(j, "usage.total_tokens"), 3);
    json_object_put(j);
    resp_free(&r);
    /* Three inputs cost three requests of rpm = 4: two more do not fit,
     * and the 429 uses the embed names. */
    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/embeddings", K_A, 0,
            "{\"model\":\"gemini-embedding-001\",\"input\":[\"a\",\"b\"]}", &r),
        0);
    CU_ASSERT_EQUAL(r.status, 429);
    e = oai_error(&r);
    CU_ASSERT_STRING_EQUAL(
        jstr(e, "error.details.0.violations.0.quotaMetric"),
        "generativelanguage.googleapis.com/embed_content_free_tier_requests");
    json_object_put(e);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(
        oai("/v1beta/openai/embeddings", K_A, 0,
            "{\"model\":\"gemini-embedding-001\",\"input\":\"c\"}", &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    CU_ASSERT_EQUAL(
        stat_int("projects/a/models/gemini-embedding-001/window/requests"), 4);

    CU_ASSERT_EQUAL_FATAL(
        req(NULL, "/v1beta/openai/models",
            (const char *const[]){"Authorization: Bearer " K_B, NULL}, NULL, 0,
            &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "object"), "list");
    CU_ASSERT_EQUAL(jlen(j, "data"), 3);
    CU_ASSERT_STRING_EQUAL(jstr(j, "data.0.id"), "models/gemini-2.5-flash");
    CU_ASSERT_STRING_EQUAL(jstr(j, "data.0.object"), "model");
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(req(NULL, "/v1beta/openai/models", NULL, NULL, 0, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 403);
    e = oai_error(&r);
    CU_ASSERT_EQUAL(jint(e, "error.code"), 403);
    json_object_put(e);
    resp_free(&r);
}

static const char predict_path[] =
    "/v1beta/models/imagen-4.0-generate-001:predict";

static void
test_predict_charges_images(void)
{
    struct json_object *j;
    unsigned char png[128];
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(call(predict_path, K_A,
                               "{\"instances\":[{\"prompt\":\"a cat\"}],"
                               "\"parameters\":{\"sampleCount\":3}}",
                               &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jlen(j, "predictions"), 3);
    CU_ASSERT_STRING_EQUAL(jstr(j, "predictions.2.mimeType"), "image/png");
    /* A real PNG: the eight signature bytes. */
    CU_ASSERT(unbase64(jstr(j, "predictions.0.bytesBase64Encoded"), png,
                       sizeof png) > 8);
    CU_ASSERT(memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    json_object_put(j);
    resp_free(&r);
    /* ipm = 5: 3 + 3 does not fit, 3 + 2 does. */
    CU_ASSERT_EQUAL_FATAL(call(predict_path, K_A,
                               "{\"instances\":[{\"prompt\":\"a cat\"}],"
                               "\"parameters\":{\"sampleCount\":3}}",
                               &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 429);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.0.violations.0.quotaMetric"),
                           "generativelanguage.googleapis.com/"
                           "generate_content_free_tier_input_image_count");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.details.0.violations.0.quotaValue"),
                           "5");
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL(status_of(predict_path, K_A2,
                              "{\"instances\":[{\"prompt\":\"dog\"}],"
                              "\"parameters\":{\"sampleCount\":2}}"),
                    200);
    CU_ASSERT_EQUAL(status_of(predict_path, K_A,
                              "{\"instances\":[{\"prompt\":\"dog\"}],"
                              "\"parameters\":{\"sampleCount\":9}}"),
                    400);
    CU_ASSERT_EQUAL(
        stat_int("projects/a/models/imagen-4.0-generate-001/images"), 5);
    CU_ASSERT_EQUAL(
        stat_int("projects/a/models/imagen-4.0-generate-001/admitted"), 2);
    CU_ASSERT_EQUAL(stat_int("projects/a/models/imagen-4.0-generate-001/"
                             "window/requests"),
                    2);
}

/* Start an upload; the X-Goog-Upload-URL into url ("" when refused).
 * declared < 0 leaves the size header out.  The status, or 0. */
static long
upload_start(const char *key, const char *host, long long declared,
             const char *mime, const char *body, char *url, size_t urllen,
             struct resp *out)
{
    char kh[256], lh[96], th[160], hh[160];
    const char *hdrs[9];
    struct resp r;
    long s;
    int n = 0;

    snprintf(kh, sizeof kh, "x-goog-api-key: %s", key);
    hdrs[n++] = kh;
    hdrs[n++] = "X-Goog-Upload-Protocol: resumable";
    hdrs[n++] = "X-Goog-Upload-Command: start";
    hdrs[n++] = "Content-Type: application/json";
    if (declared >= 0) {
        snprintf(lh, sizeof lh, "X-Goog-Upload-Header-Content-Length: %lld",
                 declared);
        hdrs[n++] = lh;
    }
    if (mime != NULL) {
        snprintf(th, sizeof th, "X-Goog-Upload-Header-Content-Type: %s", mime);
        hdrs[n++] = th;
    }
    if (host != NULL) {
        snprintf(hh, sizeof hh, "Host: %s", host);
        hdrs[n++] = hh;
    }
    hdrs[n] = NULL;
    url[0] = '\0';
    if (req(NULL, "/upload/v1beta/files", hdrs, body, strlen(body), &r) < 0)
        return 0;
    header(&r, "X-Goog-Upload-URL", url, urllen);
    s = r.status;
    if (out != NULL)
        *out = r;
    else
        resp_free(&r);
    return s;
}

/* Send bytes to an upload URL (always at 127.0.0.1:port). */
static int
upload_send(const char *url, const char *cmd, long long offset,
            const char *data, size_t len, struct resp *r)
{
    char ch[96], oh[96], local[600];
    const char *hdrs[4] = {ch, NULL, NULL, NULL};
    const char *path = strstr(url, "/upload/");

    snprintf(ch, sizeof ch, "X-Goog-Upload-Command: %s", cmd);
    if (offset >= 0) {
        snprintf(oh, sizeof oh, "X-Goog-Upload-Offset: %lld", offset);
        hdrs[1] = oh;
    }
    snprintf(local, sizeof local, "%s", path != NULL ? path : url);
    /* Every command is a POST, a bodiless query too. */
    return req(NULL, local, hdrs, data != NULL ? data : "", len, r);
}

/* Upload data whole in chunks of chunk bytes; the File in *file (put). */
static long
upload(const char *key, const char *display, const char *data, size_t len,
       size_t chunk, struct json_object **file)
{
    char body[256], url[512];
    struct resp r;
    size_t off = 0;
    long s;

    *file = NULL;
    snprintf(body, sizeof body, "{\"file\":{\"display_name\":\"%s\"}}",
             display);
    s = upload_start(key, NULL, (long long)len, "text/plain", body, url,
                     sizeof url, NULL);
    if (s != 200)
        return s;
    for (;;) {
        size_t n = len - off < chunk ? len - off : chunk;
        int last = off + n == len;

        if (upload_send(url, last ? "upload, finalize" : "upload",
                        (long long)off, data + off, n, &r) < 0)
            return 0;
        s = r.status;
        if (last && s == 200)
            *file = json_tokener_parse(r.body);
        resp_free(&r);
        off += n;
        if (s != 200 || last)
            return s;
    }
}

/* "abc123" of {"file": {"name": "files/abc123"}}. */
static const char *
file_id(struct json_object *file)
{
    const char *n = jstr(file, "file.name");

    return strncmp(n, "files/", 6) == 0 ? n + 6 : "";
}

static char *
pattern(size_t n)
{
    char *b = malloc(n);
    size_t i;

    for (i = 0; b != NULL && i < n; i++)
        b[i] = (char)('a' + (i * 7 + i / 13) % 26);
    return b;
}

static void
test_resumable_upload_streams_and_hashes(void)
{
    struct json_object *f, *g;
    char url[512], hv[128], want[65], path[128], base[64];
    unsigned char raw[128], dig[32];
    struct gr_mock_sha256 s;
    struct resp r;
    char *data = pattern(10000);

    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    /* The start answers the upload URL on the Host the client used. */
    CU_ASSERT_EQUAL(upload_start(K_A, "gemini.test:4242", 10000, "text/plain",
                                 "{\"file\":{\"displayName\":\"ten k\"}}", url,
                                 sizeof url, &r),
                    200);
    CU_ASSERT(strncmp(url,
                      "http://gemini.test:4242/upload/v1beta/files?"
                      "upload_id=",
                      strlen("http://gemini.test:4242/upload/v1beta/files?"
                             "upload_id=")) == 0);
    CU_ASSERT_STRING_EQUAL(header(&r, "X-Goog-Upload-Status", hv, sizeof hv),
                           "active");
    resp_free(&r);
    /* 10000 bytes against a 4096-byte max_body: three chunks, the
     * second at a wrong offset first (refused, nothing lost). */
    CU_ASSERT_EQUAL_FATAL(upload_send(url, "upload", 0, data, 4000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(
        header(&r, "X-Goog-Upload-Size-Received", hv, sizeof hv), "4000");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(
        upload_send(url, "upload", 3000, data + 3000, 4000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_STRING_EQUAL(
        header(&r, "X-Goog-Upload-Size-Received", hv, sizeof hv), "4000");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(upload_send(url, "query", -1, NULL, 0, &r), 0);
    CU_ASSERT_STRING_EQUAL(
        header(&r, "X-Goog-Upload-Size-Received", hv, sizeof hv), "4000");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(
        upload_send(url, "upload", 4000, data + 4000, 5000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    resp_free(&r);
    /* Bytes without the upload command are refused, not kept. */
    CU_ASSERT_EQUAL_FATAL(upload_send(url, "finalize", -1, data + 4000, 10, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    resp_free(&r);
    /* Finalizing short of the declared size is refused. */
    CU_ASSERT_EQUAL_FATAL(upload_send(url, "finalize", -1, NULL, 0, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(
        upload_send(url, "upload, finalize", 9000, data + 9000, 1000, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(header(&r, "X-Goog-Upload-Status", hv, sizeof hv),
                           "final");
    f = json_tokener_parse(r.body);
    resp_free(&r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(strlen(file_id(f)), 12);
    CU_ASSERT_STRING_EQUAL(jstr(f, "file.displayName"), "ten k");
    CU_ASSERT_STRING_EQUAL(jstr(f, "file.mimeType"), "text/plain");
    CU_ASSERT_STRING_EQUAL(jstr(f, "file.sizeBytes"), "10000");
    CU_ASSERT_STRING_EQUAL(jstr(f, "file.state"), "ACTIVE");
    CU_ASSERT_STRING_EQUAL(jstr(f, "file.source"), "UPLOADED");
    CU_ASSERT(strlen(jstr(f, "file.createTime")) == 27);
    CU_ASSERT(
        strcmp(jstr(f, "file.expirationTime"), jstr(f, "file.createTime")) > 0);
    snprintf(want, sizeof want, "http://127.0.0.1:%d/v1beta/files/%s", mk.port,
             file_id(f));
    CU_ASSERT_STRING_EQUAL(jstr(f, "file.uri"), want);
    gr_mock_sha256_init(&s);
    gr_mock_sha256_add(&s, data, 10000);
    gr_mock_sha256_end(&s, dig);
    hex_of(dig, want);
    CU_ASSERT_EQUAL(unbase64(jstr(f, "file.sha256Hash"), raw, sizeof raw), 64);
    CU_ASSERT_STRING_EQUAL((char *)raw, want);
    /* The session is gone once final. */
    CU_ASSERT_EQUAL_FATAL(upload_send(url, "query", -1, NULL, 0, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);

    /* GET gives the same File, unwrapped. */
    snprintf(path, sizeof path, "/v1beta/files/%s", file_id(f));
    CU_ASSERT_EQUAL_FATAL(call(path, K_A2, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    g = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(g, "sha256Hash"), jstr(f, "file.sha256Hash"));
    CU_ASSERT_STRING_EQUAL(jstr(g, "name"), jstr(f, "file.name"));
    json_object_put(g);
    resp_free(&r);
    snprintf(base, sizeof base, "projects/a/files/bytes");
    CU_ASSERT_EQUAL(stat_int(base), 10000);
    CU_ASSERT_EQUAL(stat_int("projects/a/files/count"), 1);
    /* Uploads cost no model quota. */
    CU_ASSERT_EQUAL(stat_int("requests.total"), 0);
    json_object_put(f);
    free(data);
}

static void
test_file_belongs_to_its_project(void)
{
    static const char denied_fmt[] =
        "You do not have permission to access the File %s or it may not "
        "exist.";
    struct json_object *f, *j;
    char path[128], body[512], want[160];
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(upload(K_A, "mine", "hello file", 10, 1000, &f), 200);
    snprintf(want, sizeof want, denied_fmt, file_id(f));
    snprintf(path, sizeof path, "/v1beta/files/%s", file_id(f));

    /* GET and DELETE from another project: 403 in Google's words. */
    CU_ASSERT_EQUAL_FATAL(call(path, K_B, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jint(j, "error.code"), 403);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "PERMISSION_DENIED");
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.message"), want);
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(
        req("DELETE", path, (const char *const[]){"x-goog-api-key: " K_B, NULL},
            NULL, 0, &r),
        0);
    CU_ASSERT_EQUAL(r.status, 403);
    resp_free(&r);

    /* generateContent naming it: refused for b before any quota, served
     * for a (with the URI or the bare name). */
    snprintf(body, sizeof body,
             "{\"contents\":[{\"parts\":[{\"text\":\"describe\"},"
             "{\"fileData\":{\"mimeType\":\"text/plain\",\"fileUri\":"
             "\"%s\"}}]}]}",
             jstr(f, "file.uri"));
    CU_ASSERT_EQUAL_FATAL(
        call("/v1beta/models/gemini-2.5-flash:generateContent", K_B, body, &r),
        0);
    CU_ASSERT_EQUAL(r.status, 403);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.message"), want);
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_int("projects/b/models/gemini-2.5-flash/admitted"), 0);
    CU_ASSERT_EQUAL(status_of("/v1beta/models/gemini-2.5-flash:"
                              "streamGenerateContent",
                              K_B, body),
                    403);
    CU_ASSERT_EQUAL(status_of("/v1beta/models/gemini-2.5-flash:"
                              "generateContent",
                              K_A, body),
                    200);
    snprintf(body, sizeof body,
             "{\"contents\":[{\"parts\":[{\"file_data\":{\"file_uri\":"
             "\"files/%s\"}}]}]}",
             file_id(f));
    CU_ASSERT_EQUAL(status_of("/v1beta/models/gemini-2.5-flash:"
                              "generateContent",
                              K_A2, body),
                    200);
    CU_ASSERT_EQUAL(status_of("/v1beta/models/gemini-2.5-flash:"
                              "countTokens",
                              K_B, body),
                    403);
    CU_ASSERT_EQUAL(stat_int("projects/a/models/gemini-2.5-flash/admitted"), 2);

    /* The owner deletes it; then it is gone for the owner too. */
    CU_ASSERT_EQUAL_FATAL(
        req("DELETE", path, (const char *const[]){"x-goog-api-key: " K_A, NULL},
            NULL, 0, &r),
        0);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(r.body, "{}\n");
    resp_free(&r);
    CU_ASSERT_EQUAL(status_of(path, K_A, NULL), 403);
    CU_ASSERT_EQUAL(status_of("/v1beta/models/gemini-2.5-flash:"
                              "generateContent",
                              K_A, body),
                    403);
    json_object_put(f);
}

static void
test_list_files_pages_per_project(void)
{
    struct json_object *f[3], *j;
    char path[128], tok[32];
    struct resp r;
    int i;

    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(upload(K_A, "p", "xyz", 3, 3, &f[i]), 200);
    CU_ASSERT_EQUAL_FATAL(call("/v1beta/files?pageSize=2", K_A, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jlen(j, "files"), 2);
    CU_ASSERT_STRING_EQUAL(jstr(j, "files.0.name"), jstr(f[0], "file.name"));
    CU_ASSERT_STRING_EQUAL(jstr(j, "files.1.name"), jstr(f[1], "file.name"));
    snprintf(tok, sizeof tok, "%s", jstr(j, "nextPageToken"));
    CU_ASSERT(tok[0] != '\0');
    json_object_put(j);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/files?pageSize=2&pageToken=%s", tok);
    CU_ASSERT_EQUAL_FATAL(call(path, K_A2, NULL, &r), 0);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(jlen(j, "files"), 1);
    CU_ASSERT_STRING_EQUAL(jstr(j, "files.0.name"), jstr(f[2], "file.name"));
    CU_ASSERT_PTR_NULL(jget(j, "nextPageToken"));
    json_object_put(j);
    resp_free(&r);
    /* Another project sees none: {} as Google answers an empty list. */
    CU_ASSERT_EQUAL_FATAL(call("/v1beta/files", K_B, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 200);
    j = json_tokener_parse(r.body);
    CU_ASSERT_EQUAL(json_object_object_length(j), 0);
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_EQUAL(status_of("/v1beta/files?pageToken=zz", K_A, NULL), 400);
    CU_ASSERT_EQUAL(status_of("/v1beta/files", NULL, NULL), 403);
    for (i = 0; i < 3; i++)
        json_object_put(f[i]);
}

static void
test_storage_is_bounded(void)
{
    struct json_object *f, *j;
    char url[512], hv[64];
    struct resp r;
    char *data = pattern(20000);
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    /* Over max_file_bytes: refused at the start, by its declared size. */
    CU_ASSERT_EQUAL(upload_start(K_FULL, NULL, 20001, "text/plain", "{}", url,
                                 sizeof url, &r),
                    400);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "INVALID_ARGUMENT");
    json_object_put(j);
    resp_free(&r);
    CU_ASSERT_STRING_EQUAL(url, "");
    /* 20000 + 20000 fit a project's 50000; 20000 more do not. */
    for (i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL(upload(K_FULL, "big", data, 20000, 8192, &f), 200);
        json_object_put(f);
    }
    CU_ASSERT_EQUAL(upload_start(K_FULL, NULL, 20000, "text/plain", "", url,
                                 sizeof url, &r),
                    400);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "FAILED_PRECONDITION");
    CU_ASSERT(strstr(jstr(j, "error.message"), "Storage quota exceeded") !=
              NULL);
    json_object_put(j);
    resp_free(&r);
    /* Other projects are not affected. */
    CU_ASSERT_EQUAL(upload(K_B, "small", data, 100, 100, &f), 200);
    json_object_put(f);
    /* Bytes past the declared size cancel the session. */
    CU_ASSERT_EQUAL(
        upload_start(K_B, NULL, 10, NULL, "", url, sizeof url, NULL), 200);
    CU_ASSERT_EQUAL_FATAL(upload_send(url, "upload", 0, data, 11, &r), 0);
    CU_ASSERT_EQUAL(r.status, 400);
    CU_ASSERT_STRING_EQUAL(header(&r, "X-Goog-Upload-Status", hv, sizeof hv),
                           "cancelled");
    resp_free(&r);
    CU_ASSERT_EQUAL_FATAL(upload_send(url, "query", -1, NULL, 0, &r), 0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    /* 6 slots in all: 3 files now, 3 open sessions, then none. */
    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(
            upload_start(K_B, NULL, 1, NULL, "", url, sizeof url, NULL), 200);
    CU_ASSERT_EQUAL(upload_start(K_A, NULL, 1, NULL, "", url, sizeof url, &r),
                    400);
    j = json_tokener_parse(r.body);
    CU_ASSERT_STRING_EQUAL(jstr(j, "error.status"), "FAILED_PRECONDITION");
    json_object_put(j);
    resp_free(&r);
    /* A bad protocol, a bad body, an unknown session. */
    CU_ASSERT_EQUAL_FATAL(req(NULL, "/upload/v1beta/files",
                              (const char *const[]){"x-goog-api-key: " K_A,
                                                    "X-Goog-Upload-Protocol: "
                                                    "multipart",
                                                    NULL},
                              "{}", 2, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 400);
    resp_free(&r);
    CU_ASSERT_EQUAL(upload_start(K_A, NULL, 1, NULL, "{\"file\": 3}", url,
                                 sizeof url, NULL),
                    400);
    CU_ASSERT_EQUAL_FATAL(upload_send("/upload/v1beta/files?upload_id=nope",
                                      "upload", 0, "x", 1, &r),
                          0);
    CU_ASSERT_EQUAL(r.status, 404);
    resp_free(&r);
    /* And /mock/reset empties the store. */
    CU_ASSERT_EQUAL(status_of("/mock/reset", NULL, ""), 200);
    CU_ASSERT_EQUAL(stat_int("projects/full/files/bytes"), 0);
    CU_ASSERT_EQUAL(upload(K_FULL, "again", data, 20000, 20000, &f), 200);
    json_object_put(f);
    free(data);
}

static void
test_files_expire_after_48_hours(void)
{
    struct json_object *f;
    char path[128], body[96];
    struct resp r;

    CU_ASSERT_EQUAL_FATAL(upload(K_A, "old", "abc", 3, 3, &f), 200);
    snprintf(path, sizeof path, "/v1beta/files/%s", file_id(f));
    CU_ASSERT_EQUAL(status_of(path, K_A, NULL), 200);
    snprintf(body, sizeof body, "{\"offset_s\": %d}", 47 * 3600);
    CU_ASSERT_EQUAL(status_of("/mock/clock", NULL, body), 200);
    CU_ASSERT_EQUAL(status_of(path, K_A, NULL), 200);
    snprintf(body, sizeof body, "{\"offset_s\": %d}", 49 * 3600);
    CU_ASSERT_EQUAL(status_of("/mock/clock", NULL, body), 200);
    CU_ASSERT_EQUAL_FATAL(call(path, K_A, NULL, &r), 0);
    CU_ASSERT_EQUAL(r.status, 403);
    resp_free(&r);
    CU_ASSERT_EQUAL(stat_int("projects/a/files/count"), 0);
    json_object_put(f);
}

/* Last: stop the mock (under sanitizers a leak or error would make the
 * exit status non-zero), then read everything it logged. */
static void
test_sigterm_exits_0_and_no_key_in_the_log(void)
{
    static const char *const keys[] = {K_A, K_A2, K_B, K_FULL, NULL};
    char buf[4096];
    size_t n;
    FILE *f;
    int i, found = 0, status;

    status = mock_stop(&mk);
    CU_ASSERT(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    f = fopen(mk.log, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    while ((n = fread(buf, 1, sizeof buf - 1, f)) > 0) {
        buf[n] = '\0';
        for (i = 0; keys[i] != NULL; i++)
            found |= strstr(buf, keys[i]) != NULL;
        CU_ASSERT_PTR_NULL(strstr(buf, "SECRET"));
    }
    fclose(f);
    CU_ASSERT(!found);
}

int
main(void)
{
    CU_TestInfo parts[] = {
        {"sha256 vectors at every split", test_sha256_vectors_at_every_split},
        {"new routes parse", test_new_routes_parse},
        {"bodies: predict, fileData, OpenAI", test_bodies_predict_files_openai},
        {"file store: bounds, owner, expiry",
         test_file_store_bounds_owner_and_expiry},
        {"timestamp and File JSON", test_timestamp_and_file_json},
        CU_TEST_INFO_NULL,
    };
    CU_TestInfo routes[] = {
        {"ListModels and GetModel", test_list_and_get_models},
        {"OpenAI chat shape and usage", test_openai_chat_shape_and_usage},
        {"OpenAI stream with and without usage",
         test_openai_stream_with_and_without_usage},
        {"OpenAI errors, quota shared with native",
         test_openai_errors_and_shared_quota},
        {"OpenAI embeddings and models", test_openai_embeddings_and_models},
        {"predict charges images", test_predict_charges_images},
        {"resumable upload streams and hashes",
         test_resumable_upload_streams_and_hashes},
        {"a file belongs to its project", test_file_belongs_to_its_project},
        {"list files, pages, per project", test_list_files_pages_per_project},
        {"storage is bounded", test_storage_is_bounded},
        {"files expire after 48 hours", test_files_expire_after_48_hours},
        {"SIGTERM exits 0, no key in the log",
         test_sigterm_exits_0_and_no_key_in_the_log},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"parts", NULL, NULL, NULL, NULL, parts},
        {"routes", routes_init, routes_cleanup, routes_setup, NULL, routes},
        CU_SUITE_INFO_NULL,
    };

    signal(SIGPIPE, SIG_IGN);
    return gr_test_main("test_mock_routes", suites, 120);
}
