/*
 * batchjob.c - batch mode as a quota of its own, the library's side:
 * gr_batch_submit() holds a job's input tokens and one job on the batch
 * pool of a project with room (shm/batchjob.h), sends the job to that
 * project and records it for the router, which polls it until it ends
 * and gives the hold back; gr_batch_poll() is that poll.
 * (batch.c is something else: batched leases.)
 *
 * Invariants protected: a job is sent only after its hold is taken (so
 * no project ever sees more enqueued tokens or jobs than its pool's
 * limits, counting what this host sent); a submission that fails gives
 * its hold back at once; a job larger than every pool is refused before
 * anything is held or sent, with the numbers for splitting it.
 */
#include "client_priv.h"
#include "batchjob.h"
#include "clock.h"
#include "estimate_priv.h"
#include "http_priv.h"
#include "json_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define IMAGE_TOKENS 258            /* as generate.c */
#define WAIT_STEP_NS (INT64_C(50) * 1000000)
#define SEND_TIMEOUT_NS (INT64_C(120) * 1000000000)
#define UNAVAILABLE_NS (INT64_C(2) * 1000000000)

static int get_path(struct gr *g, const char *model, const char *path,
                    struct gr_response *out);

/* body as a JSON object (gr_json_parse()), or NULL. */
static struct json_object *
parse(const char *body, size_t len)
{
    struct json_object *o = gr_json_parse(body, len, 0, 0, NULL);

    if (o != NULL && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
    return o;
}

static struct json_object *
member(struct json_object *o, const char *camel, const char *snake)
{
    struct json_object *v;

    if (o != NULL && json_object_is_type(o, json_type_object) &&
        (json_object_object_get_ex(o, camel, &v) ||
         json_object_object_get_ex(o, snake, &v)))
        return v;
    return NULL;
}

/* The input file a request names (batch.inputConfig.fileName), into
 * out; false when it has inline requests (or is not JSON). */
static bool
input_file(struct json_object *o, char *out, size_t n)
{
    struct json_object *b = member(o, "batch", "batch"), *v;

    if (b == NULL)
        b = o;
    v = member(member(b, "inputConfig", "input_config"), "fileName",
               "file_name");
    if (v == NULL || !json_object_is_type(v, json_type_string))
        return false;
    snprintf(out, n, "%s", json_object_get_string(v));
    return true;
}

/* The inline requests' tokens, each estimated on its own (rounded up
 * per request, as Google counts per request); -1 when there are none. */
static int64_t
inline_tokens(struct json_object *o)
{
    struct json_object *b = member(o, "batch", "batch"), *list;
    int64_t sum = 0;
    size_t i, n;

    if (b == NULL)
        b = o;
    list = member(member(member(b, "inputConfig", "input_config"),
                         "requests", "requests"), "requests", "requests");
    if (list == NULL || !json_object_is_type(list, json_type_array))
        return -1;
    n = json_object_array_length(list);
    for (i = 0; i < n; i++) {
        struct json_object *r = member(json_object_array_get_idx(list, i),
                                       "request", "request");
        const char *s;

        if (r == NULL)
            continue;
        s = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN);
        if (s != NULL)
            sum += gr_batch_estimate(s, strlen(s));
    }
    return sum;
}

/* A state Google calls final. */
static bool
final_state(const char *s)
{
    static const char *const fin[] = {"SUCCEEDED", "FAILED", "CANCELLED",
                                      "EXPIRED"};
    const char *u = strrchr(s, '_');
    size_t i;

    if (u == NULL)
        return false;
    for (i = 0; i < sizeof(fin) / sizeof(fin[0]); i++)
        if (strcmp(u + 1, fin[i]) == 0)
            return true;
    return false;
}

/* An Operation's name, state and done into job. */
static bool
read_operation(const char *body, size_t len, struct gr_batch_job *job)
{
    struct json_object *o = parse(body, len), *v;
    bool ok = false;

    if (o == NULL)
        return false;
    v = member(o, "name", "name");
    if (v != NULL && json_object_is_type(v, json_type_string) &&
        strncmp(json_object_get_string(v), "batches/", 8) == 0 &&
        json_object_get_string_len(v) < GR_BATCH_NAME_MAX) {
        snprintf(job->name, sizeof(job->name), "%s",
                 json_object_get_string(v));
        ok = true;
    }
    v = member(member(o, "metadata", "metadata"), "state", "state");
    if (v == NULL)
        v = member(o, "state", "state");
    if (v != NULL && json_object_is_type(v, json_type_string))
        snprintf(job->state, sizeof(job->state), "%s",
                 json_object_get_string(v));
    v = member(o, "done", "done");
    job->done = (v != NULL && json_object_get_boolean(v)) ||
                final_state(job->state);
    json_object_put(o);
    return ok;
}

/* Pools that may take this job, and what the largest holds. */
struct pick {
    int best;                   /* pool with most room now, -1 none */
    int n_eligible;
    int64_t largest;            /* largest limit_tokens; -1 unlimited */
    char largest_project[GR_NAME_MAX];
};

static void
choose(const struct gr_shm_bjtab *bt, const char *model, const char *pin,
       int64_t tokens, const bool *skip, struct pick *pk)
{
    struct gr_shm_bpool_view v;
    double best_room = -1;
    uint32_t i;

    pk->best = -1;
    pk->n_eligible = 0;
    pk->largest = 0;
    pk->largest_project[0] = '\0';
    for (i = 0; i < bt->npools; i++) {
        double room;

        if (skip[i] || gr_shm_bj_pool_read(bt, i, &v) != 0 ||
            !v.configured ||
            strcmp(v.model, model) != 0 ||
            (pin[0] != '\0' && strcmp(v.project, pin) != 0))
            continue;
        if (v.limit_tokens == 0 || v.limit_jobs == 0)
            continue;           /* no batch mode there */
        pk->n_eligible++;
        if (pk->largest >= 0 &&
            (v.limit_tokens < 0 || v.limit_tokens > pk->largest)) {
            pk->largest = v.limit_tokens;
            snprintf(pk->largest_project, sizeof(pk->largest_project), "%s",
                     v.project);
        }
        if ((v.limit_jobs >= 0 && v.used_jobs >= v.limit_jobs) ||
            (v.limit_tokens >= 0 && tokens > v.limit_tokens - v.used_tokens))
            continue;
        room = v.limit_tokens < 0 ? 1e300
                                  : (double)(v.limit_tokens - v.used_tokens);
        if (room > best_room) {
            best_room = room;
            pk->best = (int)i;
        }
    }
}

/* An input file's tokens, bounded from above by its size: the text of
 * its requests is at most its bytes, and the estimate counts a token per
 * 4 bytes of text.  GET files/ID (pinned to its project); 0 unknown. */
static int64_t
file_tokens(struct gr *g, const char *model, const char *file)
{
    struct gr_response r;
    struct json_object *o, *v;
    char path[GR_BATCH_NAME_MAX + 16];
    int64_t size = 0;

    if (strncmp(file, "files/", 6) != 0 || strpbrk(file, "?#:") != NULL)
        return 0;
    snprintf(path, sizeof(path), "/v1beta/%s", file);
    if (get_path(g, model, path, &r) == GR_OK &&
        (o = parse(r.body, r.len)) != NULL) {
        v = member(o, "sizeBytes", "size_bytes");
        if (v != NULL)
            size = json_object_get_int64(v);
        json_object_put(o);
    }
    gr_response_free(&r);
    return size > 0 ? (size + 3) / 4 : 0;
}

static int
submit_on(struct gr *g, const struct gr_shm_bjtab *bt, uint32_t pool,
          const char *model, const char *body, size_t len, int64_t tokens,
          int64_t deadline_ns, struct gr_batch_job *job,
          struct gr_response *out)
{
    struct gr_shm_bpool_view v;
    struct gr_call_opts co;
    struct gr_fwd f;
    char path[GR_NAME_MAX + 64];
    uint32_t pid = (uint32_t)getpid(), rec;
    int rc;

    if (gr_shm_bj_pool_read(bt, pool, &v) != 0)
        return GR_ESHM;
    if (gr_shm_bj_claim(bt, pool, tokens, pid, &rec) != 0) {
        gr_seterr(g, "the batch record is full (%u jobs): a batch job "
                  "cannot be held now", bt->njobs);
        return GR_ENOROOM;
    }
    if (gr_shm_bj_admit(bt, pool, tokens) != 0) {
        gr_shm_bj_abandon(bt, rec, pid);
        return GR_ENOROOM;      /* taken meanwhile: the caller looks again */
    }
    gr_shm_bj_held(bt, rec, pid);

    snprintf(path, sizeof(path), "/v1beta/models/%s:batchGenerateContent",
             model);
    memset(&f, 0, sizeof(f));
    f.kind = GR_FWD_FREE;
    f.method = "POST";
    f.model = model;
    f.path = path;
    f.body = body;
    f.len = len;
    f.project = v.project;
    memset(&co, 0, sizeof(co));
    co.deadline_ns = deadline_ns > gr_now_ns() + SEND_TIMEOUT_NS
                         ? deadline_ns
                         : gr_now_ns() + SEND_TIMEOUT_NS;
    /* It costs nothing of the windows: no room in a moment means the
     * project is disabled or cooling, and another pool is tried. */
    co.queue_deadline_ns = gr_now_ns() + UNAVAILABLE_NS;
    /* Once: a submission retried after a timeout could make two jobs. */
    co.max_attempts = 1;
    co.cache = GR_CACHE_BYPASS;
    co.fallback = GR_FALLBACK_NEVER;
    rc = gr_forward(g, &f, &co, out);
    if (rc == GR_OK && read_operation(out->body, out->len, job)) {
        snprintf(job->project, sizeof(job->project), "%s", v.project);
        job->tokens = tokens;
        if (gr_shm_bj_submitted(bt, rec, pid, job->name,
                                (int64_t)time(NULL)) != 0) {
            /* The router took it for dead; it gave the hold back. */
            gr_seterr(g, "%s was submitted, but its hold was reaped: it "
                      "is not tracked", job->name);
        }
        return GR_OK;
    }
    /* Not submitted (or no job name in the answer): give it back. */
    if (gr_shm_bj_abandon(bt, rec, pid) == 0)
        gr_shm_bj_release(bt, pool, tokens, false);
    if (rc == GR_OK) {
        gr_seterr(g, "batch submission to project %s: the answer names "
                  "no batches/ job", v.project);
        return GR_ECALL;
    }
    gr_seterr(g, "batch submission to project %s failed: %s", v.project,
              out->error[0] != '\0' ? out->error : gr_err_name(rc));
    if (out->attempts == 0 && rc != GR_EINVAL && rc != GR_ENOMEM)
        return GR_ESTALE;       /* never sent: the caller tries another */
    return rc == GR_ENOROOM ? GR_ECALL : rc;
}

int
gr_batch_submit(struct gr *g, const char *model, const char *request_json,
                size_t len, const struct gr_batch_opts *opts,
                struct gr_batch_job *job, struct gr_response *out)
{
    struct gr_batch_opts o;
    struct gr_response scratch;
    struct gr_shm_bjtab bt;
    struct json_object *req;
    struct gr_est e;
    struct pick pk;
    char file[GR_BATCH_NAME_MAX], pin[GR_NAME_MAX] = "", err[256];
    bool *skip, skipped = false;
    int64_t tokens;
    int rc;

    if (g == NULL)
        return GR_EINVAL;
    if (out == NULL)
        out = &scratch;
    memset(out, 0, sizeof(*out));
    if (model == NULL || model[0] == '\0' || strlen(model) >= GR_NAME_MAX ||
        strchr(model, '/') != NULL || request_json == NULL || job == NULL) {
        gr_seterr(g, "gr_batch_submit: bad argument");
        return GR_EINVAL;
    }
    memset(job, 0, sizeof(*job));
    memset(&o, 0, sizeof(o));
    if (opts != NULL)
        o = *opts;
    req = parse(request_json, len);
    if (req == NULL) {
        gr_seterr(g, "gr_batch_submit: the request is not a JSON object");
        return GR_EINVAL;
    }
    if (o.project != NULL && o.project[0] != '\0')
        snprintf(pin, sizeof(pin), "%s", o.project);
    if (input_file(req, file, sizeof(file))) {
        char owner[GR_NAME_MAX] = "";

        if (gr_resource_owner(g, file, owner) == GR_OK &&
            owner[0] != '\0') {
            if (pin[0] != '\0' && strcmp(pin, owner) != 0) {
                json_object_put(req);
                gr_seterr(g, "the batch's input %s is held by project %s, "
                          "not %s", file, owner, pin);
                return GR_EINVAL;
            }
            snprintf(pin, sizeof(pin), "%s", owner);
        }
        if (o.est_tokens <= 0 &&
            (o.est_tokens = file_tokens(g, model, file)) <= 0) {
            json_object_put(req);
            gr_seterr(g, "a batch whose input is a file (%s) needs its "
                      "input tokens (est_tokens): its size is not known",
                      file);
            return GR_EINVAL;
        }
    }
    if (o.est_tokens > 0) {
        tokens = o.est_tokens;
    } else if ((tokens = inline_tokens(req)) < 0) {
        gr_est_read(request_json, len, &e);
        tokens = (e.text_bytes + 3) / 4 + IMAGE_TOKENS * e.images;
    }
    json_object_put(req);

    if (gr_shm_bj_attach(g->t.name, true, &bt, err, sizeof(err)) != 0) {
        gr_seterr(g, "%s", err);
        return GR_ESHM;
    }
    skip = calloc(bt.npools, sizeof(*skip));
    if (skip == NULL) {
        gr_shm_bj_detach(&bt);
        return GR_ENOMEM;
    }
    for (;;) {
        choose(&bt, model, pin, tokens, skip, &pk);
        if (pk.n_eligible == 0) {
            if (skipped)
                gr_seterr(g, "no project with a batch pool of model %s "
                          "takes requests now (disabled, or not in the "
                          "table)", model);
            else
                gr_seterr(g, "no project has a batch pool for model %s%s%s",
                          model, pin[0] != '\0' ? " in project " : "", pin);
            rc = GR_ENOMODEL;
            break;
        }
        if (pk.largest >= 0 && tokens > pk.largest) {
            int64_t parts = (tokens + pk.largest - 1) / pk.largest;

            gr_seterr(g, "the batch holds %" PRId64 " input tokens; the "
                      "largest batch pool of %s (project %s) holds %" PRId64
                      ": %" PRId64 " tokens too many for any one project. "
                      "Split it into at least %" PRId64 " jobs of at most %"
                      PRId64 " tokens (gemroute batch submit --split)",
                      tokens, model, pk.largest_project, pk.largest,
                      tokens - pk.largest, parts, pk.largest);
            rc = GR_ETOOBIG;
            break;
        }
        if (pk.best >= 0) {
            rc = submit_on(g, &bt, (uint32_t)pk.best, model, request_json,
                           len, tokens, o.deadline_ns, job, out);
            if (rc == GR_ESTALE) {
                skip[pk.best] = true;   /* its project takes nothing now */
                skipped = true;
                gr_response_free(out);
                memset(out, 0, sizeof(*out));
                continue;
            }
            if (rc != GR_ENOROOM)
                break;
            continue;           /* taken meanwhile: look again */
        }
        if (o.deadline_ns <= 0 || gr_now_ns() >= o.deadline_ns) {
            gr_seterr(g, "no batch pool of model %s has room for %" PRId64
                      " tokens and one more job now", model, tokens);
            rc = o.deadline_ns <= 0 ? GR_ENOROOM : GR_EDEADLINE;
            break;
        }
        {
            struct timespec ts = {0, WAIT_STEP_NS};

            nanosleep(&ts, NULL);
        }
    }
    free(skip);
    gr_shm_bj_detach(&bt);
    if (out == &scratch)
        gr_response_free(&scratch);
    return rc;
}

int
gr_batch_poll(const char *base_url, const char *proxy, const char *key,
              const char *name, int64_t deadline_ns, struct gr_batch_job *job,
              struct gr_verdict *v)
{
    char url[GR_URL_MAX + GR_BATCH_NAME_MAX + 16];
    struct gr_http_req req;
    struct gr_http_res res;
    int n, rc;

    if (v == NULL || job == NULL)
        return GR_EINVAL;
    gr_classify(0, NULL, 0, 0, v);
    if (base_url == NULL || key == NULL || name == NULL ||
        strncmp(name, "batches/", 8) != 0 || strchr(name, '?') != NULL) {
        snprintf(v->reason, sizeof(v->reason), "batch poll: bad argument");
        return GR_EINVAL;
    }
    n = snprintf(url, sizeof(url), "%s/v1beta/%s", base_url, name);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        snprintf(v->reason, sizeof(v->reason), "batch poll: URL too long");
        return GR_EINVAL;
    }
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.key = key;
    req.proxy = proxy;
    req.stop_at_ns = deadline_ns;
    gr_http_post(&req, &res);
    if (res.status == 0) {
        gr_classify(0, NULL, 0, time(NULL), v);
        snprintf(v->reason, sizeof(v->reason), "batch poll: no answer: "
                 "%.160s", res.error);
    } else {
        gr_classify(res.status, res.err == GR_HTTP_OK ? res.body : NULL,
                    res.err == GR_HTTP_OK ? res.len : 0, time(NULL), v);
    }
    rc = GR_ECALL;
    if (v->cls == GR_CLASS_OK && res.err == GR_HTTP_OK &&
        read_operation(res.body, res.len, job))
        rc = GR_OK;
    free(res.body);
    return rc;
}

int64_t
gr_batch_estimate(const char *request_json, size_t len)
{
    struct gr_est e;

    if (request_json == NULL)
        return 0;
    gr_est_read(request_json, len, &e);
    return (e.text_bytes + 3) / 4 + IMAGE_TOKENS * e.images;
}

/* GET path through the table, pinned by the names it holds. */
static int
get_path(struct gr *g, const char *model, const char *path,
         struct gr_response *out)
{
    struct gr_call_opts co;
    struct gr_fwd f;

    memset(&f, 0, sizeof(f));
    f.kind = GR_FWD_FREE;
    f.method = "GET";
    f.model = model;
    f.path = path;
    memset(&co, 0, sizeof(co));
    co.cache = GR_CACHE_BYPASS;
    co.fallback = GR_FALLBACK_NEVER;
    co.max_attempts = 3;
    return gr_forward(g, &f, &co, out);
}

int
gr_batch_get(struct gr *g, const char *model, const char *name,
             struct gr_batch_job *job, struct gr_response *out)
{
    char path[GR_BATCH_NAME_MAX + 16];
    int rc;

    if (g == NULL || model == NULL || name == NULL || job == NULL ||
        out == NULL || strncmp(name, "batches/", 8) != 0 ||
        strlen(name) >= GR_BATCH_NAME_MAX || strpbrk(name, "?#") != NULL)
        return GR_EINVAL;
    memset(job, 0, sizeof(*job));
    snprintf(path, sizeof(path), "/v1beta/%s", name);
    rc = get_path(g, model, path, out);
    if (rc != GR_OK)
        return rc;
    if (!read_operation(out->body, out->len, job)) {
        gr_seterr(g, "%s: the answer is not a batch Operation", name);
        return GR_ECALL;
    }
    snprintf(job->project, sizeof(job->project), "%s", out->project);
    return GR_OK;
}

/* One result as a line: {"key": K, "response"|"error": ...}. */
static int
emit(struct json_object *key, struct json_object *resp,
     struct json_object *error, gr_chunk_fn on_line, void *arg)
{
    struct json_object *line = json_object_new_object();
    const char *s;
    int rc;

    if (line == NULL)
        return GR_ENOMEM;
    if (key != NULL)
        json_object_object_add(line, "key", json_object_get(key));
    if (resp != NULL)
        json_object_object_add(line, "response", json_object_get(resp));
    if (error != NULL)
        json_object_object_add(line, "error", json_object_get(error));
    s = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN);
    rc = on_line(arg, s, strlen(s)) != 0 ? GR_ECALL : GR_OK;
    json_object_put(line);
    return rc;
}

int
gr_batch_results(struct gr *g, const char *model, const char *name,
                 gr_chunk_fn on_line, void *arg, struct gr_response *out)
{
    struct gr_batch_job job;
    struct json_object *o = NULL, *outp, *list, *file;
    char path[GR_BATCH_NAME_MAX + 64];
    size_t i, n;
    int rc;

    if (on_line == NULL)
        return GR_EINVAL;
    rc = gr_batch_get(g, model, name, &job, out);
    if (rc != GR_OK)
        return rc;
    if (!job.done) {
        gr_seterr(g, "%s is %s: no results yet", name,
                  job.state[0] != '\0' ? job.state : "not done");
        return GR_EINVAL;
    }
    o = parse(out->body, out->len);
    outp = member(o, "response", "response");
    if (outp == NULL)
        outp = member(member(o, "metadata", "metadata"), "output", "output");
    list = member(member(outp, "inlinedResponses", "inlined_responses"),
                  "inlinedResponses", "inlined_responses");
    file = member(outp, "responsesFile", "responses_file");
    if (list != NULL && json_object_is_type(list, json_type_array)) {
        n = json_object_array_length(list);
        for (i = 0; i < n && rc == GR_OK; i++) {
            struct json_object *e = json_object_array_get_idx(list, i);

            rc = emit(member(member(e, "metadata", "metadata"), "key", "key"),
                      member(e, "response", "response"),
                      member(e, "error", "error"), on_line, arg);
        }
        json_object_put(o);
        return rc;
    }
    if (file == NULL || !json_object_is_type(file, json_type_string) ||
        strncmp(json_object_get_string(file), "files/", 6) != 0 ||
        json_object_get_string_len(file) > GR_BATCH_NAME_MAX) {
        json_object_put(o);
        gr_seterr(g, "%s is %s with no results (neither inline nor a "
                  "file)", name, job.state);
        return GR_ECALL;
    }
    snprintf(path, sizeof(path), "/download/v1beta/%s:download?alt=media",
             json_object_get_string(file));
    json_object_put(o);
    gr_response_free(out);
    rc = get_path(g, model, path, out);
    if (rc != GR_OK)
        return rc;
    /* A JSONL file: each line is already one result. */
    for (i = 0; i < out->len && rc == GR_OK;) {
        const char *nl = memchr(out->body + i, '\n', out->len - i);
        size_t k = nl != NULL ? (size_t)(nl - (out->body + i))
                              : out->len - i;
        struct json_object *line = k > 0 ? parse(out->body + i, k) : NULL;

        if (line != NULL) {
            rc = emit(member(line, "key", "key"),
                      member(line, "response", "response"),
                      member(line, "error", "error"), on_line, arg);
            json_object_put(line);
        }
        i += k + 1;
    }
    return rc;
}
