/*
 * batches.c - the gateway's batch submission route:
 * POST /{v}/models/{model}:batchGenerateContent goes through
 * gr_batch_submit() (client/batchjob.c, docs/BATCH.md), so a job from an
 * SDK holds its tokens on a project whose batch pool has room, waits for
 * room within the call's queue budget, and is pinned there (its
 * batches/{id} requests follow through files.c's routes).
 *
 * Invariants protected: the caller's token was checked before this file
 * is reached (server.c); a job no single project can take is a 400 with
 * the split, before anything is sent; no room within the budget is
 * Google's 429 shape, never a job sent to a project without room; the
 * upstream answer goes back as it came (its status and body), and only
 * the project's name is added (x-gemroute-project, when configured).
 */
#include "gw.h"

#include <json.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUFFIX ":batchGenerateContent"

/* The model of /{v}/models/{model}:batchGenerateContent, into out. */
static bool
model_of(const char *url, char *out, size_t n)
{
    const char *rest, *end;
    size_t len, i;

    if (strncmp(url, "/v1beta/models/", 15) == 0)
        rest = url + 15;
    else if (strncmp(url, "/v1/models/", 11) == 0)
        rest = url + 11;
    else
        return false;
    len = strlen(rest);
    if (len <= strlen(SUFFIX) ||
        strcmp(rest + len - strlen(SUFFIX), SUFFIX) != 0)
        return false;
    end = rest + len - strlen(SUFFIX);
    if ((size_t)(end - rest) >= n)
        return false;
    for (i = 0; rest + i < end; i++) {
        char ch = rest[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
              ch == '_'))
            return false;
        out[i] = ch;
    }
    out[i] = '\0';
    return i > 0;
}

bool
gw_batches_match(const char *url, const char *method)
{
    char model[GR_NAME_MAX];

    return strcmp(method, "POST") == 0 &&
           model_of(url, model, sizeof(model));
}

static enum MHD_Result
reply(struct gw *gw, struct MHD_Connection *c, int status, const char *body,
      size_t len, const char *project)
{
    return (enum MHD_Result)gw_send(gw, c, status, body, len,
                                    "application/json", project, -1);
}

/* Google's error shape; a 429 also names the pool (QuotaFailure). */
static enum MHD_Result
reply_error(struct gw *gw, struct MHD_Connection *c, int code,
            const char *status, const char *msg, const char *model)
{
    struct json_object *root = json_object_new_object();
    struct json_object *e = json_object_new_object();
    const char *s;
    enum MHD_Result rc;

    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(msg));
    json_object_object_add(e, "status", json_object_new_string(status));
    if (code == 429) {
        struct json_object *d = json_object_new_array();
        struct json_object *qf = json_object_new_object();
        struct json_object *vs = json_object_new_array();
        struct json_object *v = json_object_new_object();
        struct json_object *dims = json_object_new_object();

        json_object_object_add(qf, "@type", json_object_new_string(
            "type.googleapis.com/google.rpc.QuotaFailure"));
        json_object_object_add(v, "quotaMetric", json_object_new_string(
            "gemroute/batch_pool"));
        json_object_object_add(v, "quotaId", json_object_new_string(
            "GemrouteBatchPoolPerModel"));
        json_object_object_add(dims, "model", json_object_new_string(model));
        json_object_object_add(v, "quotaDimensions", dims);
        json_object_array_add(vs, v);
        json_object_object_add(qf, "violations", vs);
        json_object_array_add(d, qf);
        json_object_object_add(e, "details", d);
    }
    json_object_object_add(root, "error", e);
    s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
    rc = reply(gw, c, code, s, strlen(s), NULL);
    json_object_put(root);
    return rc;
}

int
gw_batches_serve(struct gw *gw, void *conn, const char *url,
                 const char *method, const char *body, size_t len,
                 double budget_s)
{
    struct MHD_Connection *c = conn;
    struct gr_batch_opts o;
    struct gr_batch_job job;
    struct gr_response out;
    char model[GR_NAME_MAX], msg[600];
    enum MHD_Result mrc;
    int64_t t0 = gr_now_ns();
    int rc, status;

    (void)method;
    if (!model_of(url, model, sizeof(model)))
        return reply_error(gw, c, 404, "NOT_FOUND", "gemroute: no such "
                           "batch route.", model);
    memset(&o, 0, sizeof(o));
    o.deadline_ns = t0 + (int64_t)(budget_s * 1e9);
    rc = gr_batch_submit(gw->g, model, body != NULL ? body : "", len, &o,
                         &job, &out);
    snprintf(msg, sizeof(msg), "gemroute: %s", gr_errstr(gw->g));
    switch (rc) {
    case GR_OK:
        status = out.status > 0 ? out.status : 200;
        mrc = reply(gw, c, status, out.body != NULL ? out.body : "{}",
                    out.body != NULL ? out.len : 2, job.project);
        gw_log("batch %s on %s: %lld tokens held", job.name, job.project,
               (long long)job.tokens);
        break;
    case GR_ECALL:
        status = out.status > 0 ? out.status : 502;
        mrc = out.status > 0 && out.body != NULL
                  ? reply(gw, c, status, out.body, out.len, out.project)
                  : reply_error(gw, c, 502, "UNAVAILABLE", msg, model);
        break;
    case GR_ETOOBIG:
    case GR_EINVAL:
        status = 400;
        mrc = reply_error(gw, c, 400, "INVALID_ARGUMENT", msg, model);
        break;
    case GR_ENOMODEL:
        status = 404;
        mrc = reply_error(gw, c, 404, "NOT_FOUND", msg, model);
        break;
    case GR_ENOROOM:
    case GR_EDEADLINE:
        status = 429;
        mrc = reply_error(gw, c, 429, "RESOURCE_EXHAUSTED", msg, model);
        break;
    default:
        status = 503;
        mrc = reply_error(gw, c, 503, "UNAVAILABLE", msg, model);
        break;
    }
    gw_metrics_request("batches.create", model,
                       rc == GR_OK ? job.project : NULL, status,
                       gr_now_ns() - t0, -1, out.n_429);
    gr_response_free(&out);
    return mrc;
}
