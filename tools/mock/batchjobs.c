/*
 * batchjobs.c - the mock's batch mode (batchjobs.h): submit a job of
 * inline requests or of an uploaded JSONL file, watch it go PENDING ->
 * RUNNING -> SUCCEEDED on the mock's wall clock, read its results inline
 * or as a result file, cancel or delete it.  Each job is its project's
 * alone (another project gets 403, as for files).
 *
 * Invariant protected: per (project, model), the input tokens of the
 * unfinished jobs never exceed batch_tokens and their number never
 * exceeds batch_jobs; a submission that would pass either is refused
 * with 429 RESOURCE_EXHAUSTED and costs nothing.  A job's state is a
 * function of its creation time and the configured pending and running
 * times, so no thread has to move it along.  A small array under one
 * mutex: the mock holds at most GR_MOCK_MAX_BATCHES jobs.
 */
#include "batchjobs.h"

#include "files.h"
#include "mock.h"
#include "request.h"
#include "responses.h"

#include <errno.h>
#include <inttypes.h>
#include <json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_TYPE "type.googleapis.com/google.ai.generativelanguage.v1main."

enum { ST_PENDING = 0, ST_RUNNING, ST_SUCCEEDED, ST_CANCELLED };

static const char *const state_names[] = {
    "BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED",
    "BATCH_STATE_CANCELLED"};

struct job {
    int used;
    int from_file;              /* input was a file: results as a file */
    uint32_t project;
    uint64_t order;
    char id[GR_MOCK_BATCH_ID_LEN + 1];
    char model[GR_MOCK_NAME_MAX];
    char display[128];
    int64_t created_ns;         /* the mock's wall clock */
    int64_t cancelled_ns;       /* 0 = not cancelled */
    int64_t tokens;             /* input tokens of every request */
    size_t n;                   /* requests */
    int64_t *req_tokens;        /* [n] */
    char **meta;                /* [n]: inline metadata JSON, or a file
                                   line's key as JSON; NULL = none */
};

#define COUNTED_PROJECTS 256     /* per-project counters kept for these */

struct gr_mock_batchjobs {
    pthread_mutex_t lock;
    uint64_t submitted[COUNTED_PROJECTS];
    uint64_t refused[COUNTED_PROJECTS];
    int64_t pending_ns, running_ns;
    uint64_t next_order;
    struct job jobs[GR_MOCK_MAX_BATCHES];
};

static void
job_clear(struct job *j)
{
    size_t i;

    for (i = 0; i < j->n && j->meta != NULL; i++)
        free(j->meta[i]);
    free(j->meta);
    free(j->req_tokens);
    memset(j, 0, sizeof *j);
}

int
gr_mock_batchjobs_new(int64_t pending_ns, int64_t running_ns,
                      struct gr_mock_batchjobs **out)
{
    struct gr_mock_batchjobs *bs = calloc(1, sizeof *bs);

    if (bs == NULL)
        return -ENOMEM;
    pthread_mutex_init(&bs->lock, NULL);
    bs->pending_ns = pending_ns;
    bs->running_ns = running_ns;
    *out = bs;
    return 0;
}

void
gr_mock_batchjobs_reset(struct gr_mock_batchjobs *bs)
{
    size_t i;

    pthread_mutex_lock(&bs->lock);
    for (i = 0; i < GR_MOCK_MAX_BATCHES; i++)
        job_clear(&bs->jobs[i]);
    memset(bs->submitted, 0, sizeof(bs->submitted));
    memset(bs->refused, 0, sizeof(bs->refused));
    pthread_mutex_unlock(&bs->lock);
}

void
gr_mock_batchjobs_free(struct gr_mock_batchjobs *bs)
{
    if (bs == NULL)
        return;
    gr_mock_batchjobs_reset(bs);
    pthread_mutex_destroy(&bs->lock);
    free(bs);
}

static int
state_of(const struct gr_mock_batchjobs *bs, const struct job *j,
         int64_t now_ns)
{
    if (j->cancelled_ns != 0)
        return ST_CANCELLED;
    if (now_ns < j->created_ns + bs->pending_ns)
        return ST_PENDING;
    if (now_ns < j->created_ns + bs->pending_ns + bs->running_ns)
        return ST_RUNNING;
    return ST_SUCCEEDED;
}

/* When the job reached its final state (0: not yet). */
static int64_t
end_of(const struct gr_mock_batchjobs *bs, const struct job *j, int st)
{
    if (st == ST_CANCELLED)
        return j->cancelled_ns;
    if (st == ST_SUCCEEDED)
        return j->created_ns + bs->pending_ns + bs->running_ns;
    return 0;
}

static struct job *
find_locked(struct gr_mock_batchjobs *bs, uint32_t project, const char *id)
{
    size_t i;

    for (i = 0; i < GR_MOCK_MAX_BATCHES; i++)
        if (bs->jobs[i].used && bs->jobs[i].project == project &&
            strcmp(bs->jobs[i].id, id) == 0)
            return &bs->jobs[i];
    return NULL;
}

static struct json_object *
parse(const char *body, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = NULL;

    if (tok == NULL || len == 0 || len > INT32_MAX)
        goto out;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, body, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = NULL;
    }
out:
    if (tok != NULL)
        json_tokener_free(tok);
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

/* Bytes of every "text" string under o, as the mock counts tokens. */
static int64_t
text_bytes(struct json_object *o, int depth)
{
    int64_t n = 0;

    if (o == NULL || depth > 32)
        return 0;
    if (json_object_is_type(o, json_type_array)) {
        size_t i, k = json_object_array_length(o);

        for (i = 0; i < k; i++)
            n += text_bytes(json_object_array_get_idx(o, i), depth + 1);
    } else if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, v) {
            if (strcmp(key, "text") == 0 &&
                json_object_is_type(v, json_type_string))
                n += json_object_get_string_len(v);
            else
                n += text_bytes(v, depth + 1);
        }
    }
    return n;
}

static int64_t
request_tokens(struct json_object *req)
{
    return (text_bytes(member(req, "contents", "contents"), 0) + 3) / 4;
}

static char *
dup_json(struct json_object *o)
{
    const char *s;

    if (o == NULL)
        return NULL;
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    return s != NULL ? strdup(s) : NULL;
}

static int
grow(struct job *j, size_t want)
{
    int64_t *t;
    char **m;

    t = realloc(j->req_tokens, want * sizeof *t);
    if (t == NULL)
        return -ENOMEM;
    j->req_tokens = t;
    m = realloc(j->meta, want * sizeof *m);
    if (m == NULL)
        return -ENOMEM;
    j->meta = m;
    return 0;
}

/* Inline: inputConfig.requests.requests[] of {request, metadata}. */
static int
load_inline(struct job *j, struct json_object *list, char *msg, size_t msglen)
{
    size_t i, k;

    if (!json_object_is_type(list, json_type_array) ||
        (k = json_object_array_length(list)) == 0 ||
        k > GR_MOCK_BATCH_MAX_REQUESTS) {
        snprintf(msg, msglen, "* BatchGenerateContentRequest.batch."
                 "input_config.requests.requests: 1 to %d requests",
                 GR_MOCK_BATCH_MAX_REQUESTS);
        return -EINVAL;
    }
    if (grow(j, k) < 0)
        return -ENOMEM;
    for (i = 0; i < k; i++) {
        struct json_object *e = json_object_array_get_idx(list, i);
        struct json_object *req = member(e, "request", "request");

        if (req == NULL || !json_object_is_type(req, json_type_object)) {
            snprintf(msg, msglen, "* BatchGenerateContentRequest.batch."
                     "input_config.requests.requests[%zu].request: "
                     "required", i);
            return -EINVAL;
        }
        j->req_tokens[i] = request_tokens(req);
        j->meta[i] = dup_json(member(e, "metadata", "metadata"));
        j->n = i + 1;
        j->tokens += j->req_tokens[i];
    }
    return 0;
}

/* A file: one {"key", "request"} object per line. */
static int
load_file(struct job *j, const char *data, size_t len, char *msg,
          size_t msglen)
{
    size_t at = 0, line = 0;

    while (at < len) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t n = nl != NULL ? (size_t)(nl - (data + at)) : len - at;
        struct json_object *o, *req;
        int rc = 0;

        line++;
        if (n == 0 || (n == 1 && data[at] == '\r')) {
            at += n + 1;
            continue;
        }
        o = parse(data + at, n);
        req = member(o, "request", "request");
        if (req == NULL || !json_object_is_type(req, json_type_object) ||
            j->n == GR_MOCK_BATCH_MAX_REQUESTS) {
            snprintf(msg, msglen, "The input file's line %zu is not a "
                     "{\"key\": ..., \"request\": {...}} object (or the "
                     "file has more than %d lines).", line,
                     GR_MOCK_BATCH_MAX_REQUESTS);
            json_object_put(o);
            return -EINVAL;
        }
        if (grow(j, j->n + 1) < 0) {
            rc = -ENOMEM;
        } else {
            j->req_tokens[j->n] = request_tokens(req);
            j->meta[j->n] = dup_json(member(o, "key", "key"));
            j->tokens += j->req_tokens[j->n];
            j->n++;
        }
        json_object_put(o);
        if (rc < 0)
            return rc;
        at += n + 1;
    }
    if (j->n == 0) {
        snprintf(msg, msglen, "The input file holds no request.");
        return -EINVAL;
    }
    return 0;
}

static void
new_id(char id[GR_MOCK_BATCH_ID_LEN + 1])
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    int i;

    for (i = 0; i < GR_MOCK_BATCH_ID_LEN; i++)
        id[i] = abc[gr_mock_rand() % 36];
    id[GR_MOCK_BATCH_ID_LEN] = '\0';
}

/* The Operation of a job, as Google writes it. */
static void
render_locked(const struct gr_mock_batchjobs *bs, const struct job *j,
              int64_t now_ns, struct gr_mock_buf *b)
{
    int st = state_of(bs, j, now_ns);
    int64_t end = end_of(bs, j, st);
    char t[64], name[32];
    size_t i;

    snprintf(name, sizeof name, "batches/%s", j->id);
    gr_mock_buf_addf(b, "{\n  \"name\": \"%s\",\n  \"metadata\": {\n"
                     "    \"@type\": \"" OP_TYPE "GenerateContentBatch\",\n"
                     "    \"model\": \"models/%s\",\n", name, j->model);
    if (j->display[0] != '\0') {
        gr_mock_buf_adds(b, "    \"displayName\": ");
        gr_mock_json_quote(b, j->display, strlen(j->display));
        gr_mock_buf_adds(b, ",\n");
    }
    gr_mock_timestamp(j->created_ns, t, sizeof t);
    gr_mock_buf_addf(b, "    \"createTime\": \"%s\",\n", t);
    gr_mock_timestamp(end != 0 ? end : now_ns, t, sizeof t);
    gr_mock_buf_addf(b, "    \"updateTime\": \"%s\",\n", t);
    if (end != 0)
        gr_mock_buf_addf(b, "    \"endTime\": \"%s\",\n", t);
    gr_mock_buf_addf(b, "    \"batchStats\": {\n      \"requestCount\": "
                     "\"%zu\",\n", j->n);
    if (st == ST_SUCCEEDED)
        gr_mock_buf_addf(b, "      \"successfulRequestCount\": \"%zu\"\n",
                         j->n);
    else
        gr_mock_buf_addf(b, "      \"pendingRequestCount\": \"%zu\"\n",
                         j->n);
    gr_mock_buf_addf(b, "    },\n    \"state\": \"%s\",\n    \"name\": "
                     "\"%s\"", state_names[st], name);
    if (st != ST_SUCCEEDED) {
        gr_mock_buf_addf(b, "\n  }%s\n}\n",
                         st == ST_CANCELLED ? ",\n  \"done\": true" : "");
        return;
    }
    /* Succeeded: the output, in metadata and as the response. */
    for (int k = 0; k < 2; k++) {
        if (k == 0)
            gr_mock_buf_adds(b, ",\n    \"output\": ");
        else
            gr_mock_buf_adds(b, "\n  },\n  \"done\": true,\n  \"response\": "
                             "{\n    \"@type\": \"" OP_TYPE
                             "GenerateContentBatchOutput\",\n    ");
        if (j->from_file) {
            gr_mock_buf_addf(b, "%s\"responsesFile\": \"files/batch-%s\"%s",
                             k == 0 ? "{" : "", j->id, k == 0 ? "}" : "");
            continue;
        }
        gr_mock_buf_addf(b, "%s\"inlinedResponses\": {\"inlinedResponses\": "
                         "[\n", k == 0 ? "{" : "");
        for (i = 0; i < j->n; i++) {
            struct gr_mock_usage u;

            memset(&u, 0, sizeof u);
            u.requests = 1;
            u.tokens = j->req_tokens[i];
            u.text_bytes = u.tokens * 4;
            gr_mock_buf_adds(b, "{\"response\": ");
            gr_mock_resp_generate(b, j->model, &u);
            if (j->meta[i] != NULL)
                gr_mock_buf_addf(b, ", \"metadata\": %s", j->meta[i]);
            gr_mock_buf_addf(b, "}%s\n", i + 1 < j->n ? "," : "");
        }
        gr_mock_buf_addf(b, "]}%s", k == 0 ? "}" : "");
    }
    gr_mock_buf_adds(b, "\n  }\n}\n");
}

/* Unfinished jobs and tokens of (project, model) at now. */
static void
held_locked(const struct gr_mock_batchjobs *bs, uint32_t project,
            const char *model, int64_t now_ns, int64_t *jobs,
            int64_t *tokens)
{
    size_t i;

    *jobs = *tokens = 0;
    for (i = 0; i < GR_MOCK_MAX_BATCHES; i++) {
        const struct job *j = &bs->jobs[i];

        if (!j->used || j->project != project ||
            (model != NULL && strcmp(j->model, model) != 0))
            continue;
        if (state_of(bs, j, now_ns) >= ST_SUCCEEDED)
            continue;
        (*jobs)++;
        *tokens += j->tokens;
    }
}

int
gr_mock_batchjobs_create(struct gr_mock_batchjobs *bs, uint32_t project,
                         const char *model, const char *body, size_t len,
                         int64_t now_ns,
                         const struct gr_mock_batch_limits *lim,
                         gr_mock_batch_file_fn file_ok, void *file_arg,
                         struct gr_mock_buf *out, char *msg, size_t msglen,
                         int *which, int64_t *limit)
{
    struct json_object *o = parse(body, len), *batch, *in, *v;
    struct job j, *slot = NULL;
    char *data = NULL;
    size_t dlen = 0, i;
    int64_t jobs, tokens;
    const char *fname;
    int rc;

    memset(&j, 0, sizeof j);
    *which = 0;
    batch = member(o, "batch", "batch");
    if (batch == NULL)
        batch = o;
    in = member(batch, "inputConfig", "input_config");
    if (o == NULL || in == NULL) {
        snprintf(msg, msglen, "* BatchGenerateContentRequest.batch."
                 "input_config: required (requests or file_name)");
        rc = -EINVAL;
        goto out;
    }
    snprintf(j.model, sizeof j.model, "%s", model);
    if ((v = member(batch, "displayName", "display_name")) != NULL &&
        json_object_is_type(v, json_type_string))
        snprintf(j.display, sizeof j.display, "%s",
                 json_object_get_string(v));
    v = member(in, "fileName", "file_name");
    if (v != NULL) {
        fname = json_object_get_string(v);
        if (!json_object_is_type(v, json_type_string) ||
            strncmp(fname, "files/", 6) != 0) {
            snprintf(msg, msglen, "* BatchGenerateContentRequest.batch."
                     "input_config.file_name: \"files/ID\"");
            rc = -EINVAL;
            goto out;
        }
        rc = file_ok(file_arg, fname + 6, &data, &dlen);
        if (rc == -EACCES) {
            snprintf(msg, msglen, "You do not have permission to access "
                     "the File %s or it may not exist.", fname + 6);
            goto out;
        }
        if (rc < 0) {
            snprintf(msg, msglen, "gemroute-mock keeps the bytes of files "
                     "up to %d bytes only; %s is larger.",
                     GR_MOCK_FILE_KEEP, fname);
            rc = -EINVAL;
            goto out;
        }
        j.from_file = 1;
        rc = load_file(&j, data, dlen, msg, msglen);
    } else {
        rc = load_inline(&j, member(member(in, "requests", "requests"),
                                    "requests", "requests"), msg, msglen);
    }
    if (rc < 0)
        goto out;

    pthread_mutex_lock(&bs->lock);
    held_locked(bs, project, model, now_ns, &jobs, &tokens);
    if (lim->jobs >= 0 && jobs + 1 > lim->jobs) {
        *which = GR_MOCK_BATCH_JOBS;
        *limit = lim->jobs;
    } else if (lim->tokens >= 0 && tokens + j.tokens > lim->tokens) {
        *which = GR_MOCK_BATCH_TOKENS;
        *limit = lim->tokens;
    }
    for (i = 0; *which == 0 && i < GR_MOCK_MAX_BATCHES; i++) {
        if (!bs->jobs[i].used) {
            slot = &bs->jobs[i];
            break;
        }
    }
    if (*which != 0) {
        if (project < COUNTED_PROJECTS)
            bs->refused[project]++;
        rc = -EAGAIN;
    } else if (slot == NULL) {
        rc = -EMFILE;
    } else {
        new_id(j.id);
        j.used = 1;
        j.project = project;
        j.created_ns = now_ns;
        j.order = ++bs->next_order;
        if (project < COUNTED_PROJECTS)
            bs->submitted[project]++;
        *slot = j;
        memset(&j, 0, sizeof j);    /* the slot owns the arrays now */
        render_locked(bs, slot, now_ns, out);
        rc = 0;
    }
    pthread_mutex_unlock(&bs->lock);
out:
    job_clear(&j);
    free(data);
    json_object_put(o);
    return rc;
}

int
gr_mock_batchjobs_get(struct gr_mock_batchjobs *bs, uint32_t project,
                      const char *id, int64_t now_ns, struct gr_mock_buf *out)
{
    struct job *j;
    int rc = 0;

    pthread_mutex_lock(&bs->lock);
    j = find_locked(bs, project, id);
    if (j == NULL)
        rc = -EACCES;
    else
        render_locked(bs, j, now_ns, out);
    pthread_mutex_unlock(&bs->lock);
    return rc;
}

int
gr_mock_batchjobs_cancel(struct gr_mock_batchjobs *bs, uint32_t project,
                         const char *id, int64_t now_ns)
{
    struct job *j;
    int rc = 0;

    pthread_mutex_lock(&bs->lock);
    j = find_locked(bs, project, id);
    if (j == NULL)
        rc = -EACCES;
    else if (state_of(bs, j, now_ns) < ST_SUCCEEDED)
        j->cancelled_ns = now_ns;
    pthread_mutex_unlock(&bs->lock);
    return rc;
}

int
gr_mock_batchjobs_delete(struct gr_mock_batchjobs *bs, uint32_t project,
                         const char *id)
{
    struct job *j;
    int rc = 0;

    pthread_mutex_lock(&bs->lock);
    j = find_locked(bs, project, id);
    if (j == NULL)
        rc = -EACCES;
    else
        job_clear(j);
    pthread_mutex_unlock(&bs->lock);
    return rc;
}

void
gr_mock_batchjobs_list(struct gr_mock_batchjobs *bs, uint32_t project,
                       int64_t now_ns, struct gr_mock_buf *out)
{
    size_t i;
    int first = 1;

    pthread_mutex_lock(&bs->lock);
    for (i = 0; i < GR_MOCK_MAX_BATCHES; i++) {
        if (!bs->jobs[i].used || bs->jobs[i].project != project)
            continue;
        gr_mock_buf_adds(out, first ? "{\"operations\": [\n" : ",\n");
        first = 0;
        render_locked(bs, &bs->jobs[i], now_ns, out);
    }
    pthread_mutex_unlock(&bs->lock);
    /* Google leaves an empty list out: no jobs answers {}. */
    gr_mock_buf_adds(out, first ? "{}\n" : "]}\n");
}

int
gr_mock_batchjobs_result_file(struct gr_mock_batchjobs *bs, uint32_t project,
                              const char *file_id, int64_t now_ns,
                              struct gr_mock_buf *out)
{
    struct job *j;
    size_t i;
    int rc = 0;

    if (strncmp(file_id, "batch-", 6) != 0)
        return -EACCES;
    pthread_mutex_lock(&bs->lock);
    j = find_locked(bs, project, file_id + 6);
    if (j == NULL || !j->from_file ||
        state_of(bs, j, now_ns) != ST_SUCCEEDED) {
        rc = -EACCES;
        goto out;
    }
    for (i = 0; i < j->n; i++) {
        struct gr_mock_buf one = {0};
        struct gr_mock_usage u;

        memset(&u, 0, sizeof u);
        u.requests = 1;
        u.tokens = j->req_tokens[i];
        u.text_bytes = u.tokens * 4;
        /* One line per request: the pretty answer made flat. */
        gr_mock_resp_generate(&one, j->model, &u);
        for (size_t k = 0; k < one.len; k++)
            if (one.data[k] == '\n')
                one.data[k] = ' ';
        gr_mock_buf_adds(out, "{");
        if (j->meta[i] != NULL)
            gr_mock_buf_addf(out, "\"key\": %s, ", j->meta[i]);
        gr_mock_buf_adds(out, "\"response\": ");
        gr_mock_buf_add(out, one.data != NULL ? one.data : "{}",
                        one.data != NULL ? one.len : 2);
        gr_mock_buf_adds(out, "}\n");
        gr_mock_buf_free(&one);
    }
out:
    pthread_mutex_unlock(&bs->lock);
    return rc;
}

void
gr_mock_batchjobs_usage(struct gr_mock_batchjobs *bs, uint32_t project,
                        int64_t now_ns, struct gr_mock_batch_usage *u)
{
    size_t i;

    memset(u, 0, sizeof(*u));
    pthread_mutex_lock(&bs->lock);
    held_locked(bs, project, NULL, now_ns, &u->unfinished, &u->tokens);
    for (i = 0; i < GR_MOCK_MAX_BATCHES; i++)
        if (bs->jobs[i].used && bs->jobs[i].project == project &&
            state_of(bs, &bs->jobs[i], now_ns) >= ST_SUCCEEDED)
            u->done++;
    if (project < COUNTED_PROJECTS) {
        u->submitted = (int64_t)bs->submitted[project];
        u->quota_429 = (int64_t)bs->refused[project];
    }
    pthread_mutex_unlock(&bs->lock);
}
