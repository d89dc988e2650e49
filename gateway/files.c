/*
 * files.c - the gateway's routes for things that live in one project:
 * the Files API (the resumable upload, get, delete, list),
 * cachedContents (create, list, get, patch, delete) and batch jobs (get,
 * list, cancel, delete).  None of them costs generate quota: each is
 * forwarded by gr_forward() as GR_FWD_FREE, on the first model of the
 * table (the lease names a project and its key, and costs nothing).
 *
 * Invariant protected: a request that names a resource goes to the
 * project that holds it (gr_forward() pins it from the path); an upload's
 * chunks go to the project that started it.  The upload URL Google
 * returns is rewritten to point back to this gateway, and the session is
 * recorded as "uploads/{upload_id}" in the shared resource record, so
 * that any gateway process sharing the port can forward its chunks.
 * Only the upload headers are passed on either way, never a key or the
 * caller's token (the query's "key" is dropped).
 */
#include "gw.h"
#include "gemroute_json.h"
#include "gemroute_stat.h"

#include <json.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NS_PER_S INT64_C(1000000000)
#define CALL_S 600
#define PATH_MAX_LEN 1024
#define UPLOAD_TTL_S (7 * 86400)    /* Google keeps a session a week */
#define MAX_HDRS 12
#define LIST_PROJECTS 64

static const char *const upload_hdrs[] = {
    "X-Goog-Upload-Protocol", "X-Goog-Upload-Command",
    "X-Goog-Upload-Header-Content-Length",
    "X-Goog-Upload-Header-Content-Type", "X-Goog-Upload-Offset",
};

/* What a forwarded call answered beside its body. */
struct got {
    char upload_url[1024];
    char upload_status[32];
    char granularity[32];
    char received[32];
};

static bool
ver_of(const char *s, const char **rest)
{
    if (strncmp(s, "/v1beta/", 8) == 0) {
        *rest = s + 8;
        return true;
    }
    if (strncmp(s, "/v1/", 4) == 0) {
        *rest = s + 4;
        return true;
    }
    return false;
}

static bool
id_ok(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++, n++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.'))
            return false;
    return n > 0 && n < 96;
}

/* "{id}" or "{id}:verb" after prefix. */
static bool
one_of(const char *rest, const char *prefix, const char *verb)
{
    size_t pl = strlen(prefix);
    char id[128];
    const char *colon;

    if (strncmp(rest, prefix, pl) != 0)
        return false;
    rest += pl;
    colon = strchr(rest, ':');
    if ((colon != NULL) != (verb != NULL))
        return false;
    if (colon != NULL && strcmp(colon + 1, verb) != 0)
        return false;
    snprintf(id, sizeof(id), "%.*s",
             (int)(colon != NULL ? (size_t)(colon - rest) : strlen(rest)),
             rest);
    return id_ok(id);
}

bool
gw_files_match(const char *url, const char *m)
{
    const char *rest;
    bool get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0,
         del = strcmp(m, "DELETE") == 0, patch = strcmp(m, "PATCH") == 0;

    if (strncmp(url, "/upload/", 8) == 0 && ver_of(url + 7, &rest))
        return post && strcmp(rest, "files") == 0;
    if (!ver_of(url, &rest))
        return false;
    if (strcmp(rest, "files") == 0 || strcmp(rest, "batches") == 0)
        return get;
    if (strcmp(rest, "cachedContents") == 0)
        return get || post;
    if (one_of(rest, "files/", NULL))
        return get || del;
    if (one_of(rest, "cachedContents/", NULL))
        return get || del || patch;
    if (one_of(rest, "batches/", NULL))
        return get || del;
    if (one_of(rest, "batches/", "cancel"))
        return post;
    return false;
}

/* ---- answers ---------------------------------------------------------- */

static enum MHD_Result
reply(struct gw *gw, struct MHD_Connection *c, int status, const char *body,
      size_t len, const char *project, const struct got *got)
{
    struct MHD_Response *r;

    r = MHD_create_response_from_buffer(len, gw_mhd_buffer(body),
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    gw_add_headers(gw, r, project, -1, "application/json");
    if (got != NULL) {
        if (got->upload_url[0] != '\0')
            MHD_add_response_header(r, "X-Goog-Upload-URL",
                                    got->upload_url);
        if (got->upload_status[0] != '\0')
            MHD_add_response_header(r, "X-Goog-Upload-Status",
                                    got->upload_status);
        if (got->granularity[0] != '\0')
            MHD_add_response_header(r, "X-Goog-Upload-Chunk-Granularity",
                                    got->granularity);
        if (got->received[0] != '\0')
            MHD_add_response_header(r, "X-Goog-Upload-Size-Received",
                                    got->received);
    }
    return (enum MHD_Result)gw_queue(c, (unsigned)status, r);
}

static enum MHD_Result
reply_error(struct gw *gw, struct MHD_Connection *c, int code,
            const char *status, const char *msg)
{
    struct json_object *root = json_object_new_object();
    struct json_object *e = json_object_new_object();
    const char *s;
    enum MHD_Result rc;

    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(e, "status", json_object_new_string(status));
    json_object_object_add(root, "error", e);
    s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
    rc = reply(gw, c, code, s, strlen(s), NULL, NULL);
    json_object_put(root);
    return rc;
}

/* ---- the forwarded request -------------------------------------------- */

struct query {
    char *p;
    size_t len, cap;
    bool bad;
};

static void
q_add(struct query *q, const char *s, size_t n)
{
    if (q->bad || q->len + n + 1 > q->cap) {
        q->bad = true;
        return;
    }
    memcpy(q->p + q->len, s, n);
    q->len += n;
    q->p[q->len] = '\0';
}

static void
q_enc(struct query *q, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char b[3];

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
            ch == '.' || ch == '~') {
            q_add(q, s, 1);
        } else {
            b[0] = '%';
            b[1] = hex[ch >> 4];
            b[2] = hex[ch & 15];
            q_add(q, b, 3);
        }
    }
}

/* The query again, without "key" (the caller's token). */
static enum MHD_Result
q_arg(void *cls, enum MHD_ValueKind kind, const char *key,
      const char *value)
{
    struct query *q = cls;

    (void)kind;
    if (strcmp(key, "key") == 0)
        return MHD_YES;
    q_add(q, q->len == 0 ? "?" : "&", 1);
    q_enc(q, key);
    if (value != NULL) {
        q_add(q, "=", 1);
        q_enc(q, value);
    }
    return MHD_YES;
}

static void
copy_value(char *dst, size_t n, const char *line, size_t len)
{
    const char *v = memchr(line, ':', len);
    size_t k;

    dst[0] = '\0';
    if (v == NULL)
        return;
    v++;
    len -= (size_t)(v - line);
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
                       v[len - 1] == ' '))
        len--;
    k = len < n - 1 ? len : n - 1;
    memcpy(dst, v, k);
    dst[k] = '\0';
}

static int
on_header(void *arg, const char *line, size_t len)
{
    struct got *g = arg;

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0)
        memset(g, 0, sizeof(*g));      /* a new answer (a retry) */
    else if (len > 18 && strncasecmp(line, "X-Goog-Upload-URL:", 18) == 0)
        copy_value(g->upload_url, sizeof(g->upload_url), line, len);
    else if (len > 21 &&
             strncasecmp(line, "X-Goog-Upload-Status:", 21) == 0)
        copy_value(g->upload_status, sizeof(g->upload_status), line, len);
    else if (len > 32 &&
             strncasecmp(line, "X-Goog-Upload-Chunk-Granularity:", 32) == 0)
        copy_value(g->granularity, sizeof(g->granularity), line, len);
    else if (len > 28 &&
             strncasecmp(line, "X-Goog-Upload-Size-Received:", 28) == 0)
        copy_value(g->received, sizeof(g->received), line, len);
    return 0;
}

/* The upload_id of an upload URL, into id; false when it has none. */
static bool
upload_id_of(const char *url, char *id, size_t n)
{
    const char *p = strstr(url, "upload_id=");
    size_t k = 0;

    if (p == NULL)
        return false;
    for (p += 10; p[k] != '\0' && p[k] != '&' && k + 1 < n; k++)
        id[k] = p[k];
    id[k] = '\0';
    return id_ok(id);
}

struct call {
    const char *method;
    char path[PATH_MAX_LEN];
    const char *body;
    size_t len;
    const char *project;            /* pinned; NULL = from the path */
    const char *hdrs[MAX_HDRS + 1];
};

static int
forward(struct gw *gw, struct call *k, double budget_s,
        struct gr_response *out, struct got *got)
{
    char model[1][GR_NAME_MAX];
    struct gr_call_opts o;
    struct gr_fwd f;
    int64_t now = gr_now_ns();

    memset(got, 0, sizeof(*got));
    if (gr_models(gw->g, model, 1) < 1) {
        memset(out, 0, sizeof(*out));
        snprintf(out->error, sizeof(out->error), "the table serves no "
                 "model yet");
        return GR_ENOMODEL;
    }
    memset(&f, 0, sizeof(f));
    memset(&o, 0, sizeof(o));
    f.kind = GR_FWD_FREE;
    f.method = k->method;
    f.model = model[0];
    f.path = k->path;
    f.body = k->len > 0 ? k->body : NULL;
    f.len = k->len;
    f.headers = k->hdrs;
    f.project = k->project;
    f.on_header = on_header;
    f.arg = got;
    o.queue_deadline_ns = now + (int64_t)(budget_s * 1e9);
    o.deadline_ns = o.queue_deadline_ns + CALL_S * NS_PER_S;
    return gr_forward(gw->g, &f, &o, out);
}

static enum MHD_Result
result(struct gw *gw, struct MHD_Connection *c, int rc,
       struct gr_response *out, const struct got *got, int *status)
{
    char msg[400];

    if (rc == GR_OK || (out->status != 0 && out->attempts > 0)) {
        *status = out->status;
        return reply(gw, c, out->status, out->body != NULL ? out->body : "",
                     out->len, out->project, got);
    }
    if (rc == GR_EINVAL && out->error[0] != '\0') {
        *status = 400;
        snprintf(msg, sizeof(msg), "gemroute: %s", out->error);
        return reply_error(gw, c, 400, "INVALID_ARGUMENT", msg);
    }
    *status = rc == GR_EDEADLINE ? 429 : 503;
    snprintf(msg, sizeof(msg), "gemroute: %s", out->error[0] != '\0'
             ? out->error : gr_err_name(rc));
    return reply_error(gw, c, *status, rc == GR_EDEADLINE
                       ? "RESOURCE_EXHAUSTED" : "UNAVAILABLE", msg);
}

/* GET /{v}/files: the files of every project that holds a recorded
 * file, merged (the first page of each, up to 100). */
static enum MHD_Result
list_files(struct gw *gw, struct MHD_Connection *c, struct call *k,
           double budget_s, int *status)
{
    struct gr_stat_resource *rs = NULL;
    char projects[LIST_PROJECTS][GR_NAME_MAX];
    struct json_object *all = json_object_new_array(), *root;
    struct gr_stat *st;
    char err[256];
    int n = 0, np = 0, i, j;
    enum MHD_Result mrc;
    const char *s;

    if ((st = gr_stat_open(gw->shm, err, sizeof(err))) != NULL) {
        n = gr_stat_resources(st, NULL, 0, NULL);
        if (n > 0 && (rs = calloc((size_t)n, sizeof(*rs))) != NULL)
            n = gr_stat_resources(st, rs, n, NULL);
        else
            n = 0;
        gr_stat_close(st);
    }
    for (i = 0; i < n && rs != NULL; i++) {
        if (rs[i].kind != GR_RES_FILE || rs[i].expired)
            continue;
        for (j = 0; j < np && strcmp(projects[j], rs[i].project) != 0; j++)
            ;
        if (j == np && np < LIST_PROJECTS)
            snprintf(projects[np++], GR_NAME_MAX, "%s", rs[i].project);
    }
    free(rs);
    snprintf(k->path + strcspn(k->path, "?"), 32, "?pageSize=100");
    for (j = 0; j < np; j++) {
        struct gr_response out;
        struct got got;
        struct json_object *o, *fs;
        int rc;

        k->project = projects[j];
        rc = forward(gw, k, budget_s, &out, &got);
        if (rc != GR_OK) {
            mrc = result(gw, c, rc, &out, &got, status);
            gr_response_free(&out);
            json_object_put(all);
            return mrc;
        }
        o = gr_json_parse(out.body, out.len, 0, 0, NULL);
        if ((fs = gr_json_member(o, "files", GR_JSON_ARRAY)) != NULL)
            for (i = 0; i < (int)json_object_array_length(fs); i++)
                json_object_array_add(all, json_object_get(
                                      json_object_array_get_idx(fs, i)));
        json_object_put(o);
        gr_response_free(&out);
    }
    root = json_object_new_object();
    /* Google leaves an empty list out: {} */
    if (json_object_array_length(all) > 0)
        json_object_object_add(root, "files", all);
    else
        json_object_put(all);
    s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
    *status = 200;
    mrc = reply(gw, c, 200, s, strlen(s), NULL, NULL);
    json_object_put(root);
    return mrc;
}

int
gw_files_serve(struct gw *gw, void *conn, const char *url,
               const char *method, const char *body, size_t len,
               double budget_s)
{
    struct MHD_Connection *c = conn;
    struct gr_response out;
    struct got got;
    struct call k;
    struct query q;
    char *hdr[MAX_HDRS], qbuf[PATH_MAX_LEN / 2], id[128], pin[GR_NAME_MAX];
    char res[160];
    const char *rest, *v;
    bool upload = strncmp(url, "/upload/", 8) == 0, chunk = false;
    enum MHD_Result mrc;
    int rc, status = 0, nh = 0;
    size_t i;

    memset(&k, 0, sizeof(k));
    memset(hdr, 0, sizeof(hdr));
    q.p = qbuf;
    q.len = 0;
    q.cap = sizeof(qbuf);
    q.bad = false;
    qbuf[0] = '\0';
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, q_arg, &q);
    if (q.bad)
        return reply_error(gw, c, 400, "INVALID_ARGUMENT",
                           "gemroute: the query string is too long.");
    snprintf(k.path, sizeof(k.path), "%s%s", url, qbuf);
    k.method = method;
    k.body = body;
    k.len = len;
    /* The caller's user-agent, and the upload protocol's headers. */
    if ((v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                         "User-Agent")) != NULL &&
        strpbrk(v, "\r\n") == NULL &&
        asprintf(&hdr[nh], "User-Agent: %.400s", v) > 0)
        nh++;
    for (i = 0; upload && i < sizeof(upload_hdrs) / sizeof(upload_hdrs[0]);
         i++)
        if ((v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                             upload_hdrs[i])) != NULL &&
            strpbrk(v, "\r\n") == NULL &&
            asprintf(&hdr[nh], "%s: %.400s", upload_hdrs[i], v) > 0)
            nh++;
    for (i = 0; i < (size_t)nh; i++)
        k.hdrs[i] = hdr[i];
    k.hdrs[nh] = NULL;

    if (upload && (v = MHD_lookup_connection_value(
                       c, MHD_GET_ARGUMENT_KIND, "upload_id")) != NULL) {
        /* A chunk: to the project that started the session. */
        chunk = true;
        snprintf(id, sizeof(id), "%s", v);
        snprintf(res, sizeof(res), "uploads/%.120s", id);
        if (!id_ok(id) || gr_resource_owner(gw->g, res, pin) != GR_OK ||
            pin[0] == '\0') {
            mrc = reply_error(gw, c, 404, "NOT_FOUND",
                              "No upload session with this upload_id is "
                              "known to gemroute (it was finalized, "
                              "cancelled or expired).");
            status = 404;
            goto done;
        }
        k.project = pin;
    }
    if (!upload && strcmp(method, "GET") == 0 && ver_of(url, &rest) &&
        strcmp(rest, "files") == 0) {
        mrc = list_files(gw, c, &k, budget_s, &status);
        goto done;
    }
    rc = forward(gw, &k, budget_s, &out, &got);
    if (rc == GR_OK && upload && !chunk && got.upload_url[0] != '\0') {
        const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                       "Host");
        const char *p = strstr(got.upload_url, "/upload/");

        /* Chunks come back here, and go to the project that started. */
        if (p == NULL || host == NULL || strpbrk(host, "\r\n/") != NULL ||
            !upload_id_of(got.upload_url, id, sizeof(id))) {
            gr_response_free(&out);
            mrc = reply_error(gw, c, 502, "UNAVAILABLE",
                              "gemroute: upstream gave no usable upload "
                              "URL.");
            status = 502;
            goto done;
        }
        snprintf(res, sizeof(res), "uploads/%.120s", id);
        if (gr_resource_note(gw->g, GR_RES_UPLOAD, res, out.project,
                             (int64_t)time(NULL) + UPLOAD_TTL_S) != GR_OK) {
            gr_response_free(&out);
            snprintf(qbuf, sizeof(qbuf), "gemroute: the upload cannot be "
                     "recorded: %s", gr_errstr(gw->g));
            mrc = reply_error(gw, c, 503, "UNAVAILABLE", qbuf);
            status = 503;
            goto done;
        }
        {
            char rewritten[sizeof(got.upload_url)];

            snprintf(rewritten, sizeof(rewritten), "http://%.200s%.800s",
                     host, p);
            memcpy(got.upload_url, rewritten, sizeof(rewritten));
        }
    }
    if (rc == GR_OK && chunk &&
        (strcasecmp(got.upload_status, "final") == 0 ||
         strcasecmp(got.upload_status, "cancelled") == 0))
        gr_resource_forget(gw->g, res);
    mrc = result(gw, c, rc, &out, &got, &status);
    gr_response_free(&out);
done:
    gw_log("%s %s: %d", method, upload ? (chunk ? "upload chunk"
                                                : "upload start") : url,
           status);
    for (i = 0; i < (size_t)nh; i++)
        free(hdr[i]);
    return (int)mrc;
}
