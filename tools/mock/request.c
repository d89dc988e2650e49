/*
 * request.c - route a URL path and read a request body the way the mock
 * counts it: Google's native bodies, the OpenAI-compatible ones, Imagen's
 * :predict and the start of an upload.  This is the only file of the mock
 * that includes json-c.
 *
 * Invariant protected: any bytes at all (malformed, deeply nested, huge
 * numbers, wrong types) give either a usage or a Google-worded error,
 * never a crash; and the token estimate is the documented one:
 * promptTokenCount = ceil(bytes of every "text" part of the contents / 4),
 * images = the images the request asks to generate, as Google counts
 * IPM (only for models that generate images): candidateCount (1 when
 * absent) when generationConfig.responseModalities holds "IMAGE", and
 * Imagen's sampleCount.  Input images cost no IPM.
 */
#include "request.h"

#include <errno.h>
#include <json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define JSON_DEPTH 64 /* deeper bodies are refused, not recursed */

static const char *const method_names[] = {
    "generateContent", "streamGenerateContent", "countTokens",
    "embedContent",    "batchEmbedContents",    "predict"};

/* Google's request message per method, for "* Request.field: ..." texts. */
static const char *const request_names[] = {
    "GenerateContentRequest", "GenerateContentRequest",    "CountTokensRequest",
    "EmbedContentRequest",    "BatchEmbedContentsRequest", "PredictRequest"};

const char *
gr_mock_method_name(enum gr_mock_method m)
{
    return (unsigned)m < GR_MOCK_N_METHODS ? method_names[m]
                                           : "generateContent";
}

static int
model_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static void
route_model(const char *rest, struct gr_mock_route *r)
{
    const char *colon = strrchr(rest, ':');
    size_t n, i;
    int m;

    if (colon == NULL || !r->post)
        return;
    n = (size_t)(colon - rest);
    if (n == 0 || n >= sizeof r->model)
        return;
    for (i = 0; i < n; i++)
        if (!model_char(rest[i]))
            return;
    for (m = 0; m < GR_MOCK_N_METHODS; m++)
        if (strcmp(colon + 1, method_names[m]) == 0)
            break;
    if (m == GR_MOCK_N_METHODS)
        return;
    memcpy(r->model, rest, n);
    r->model[n] = '\0';
    r->method = (enum gr_mock_method)m;
    r->kind = GR_MOCK_ROUTE_MODEL;
}

/* The path of a request target in absolute form ("http://host:port/x",
 * what a client sends to a proxy; RFC 9112 3.2.2 has servers accept
 * it), so the mock can stand in for a proxy in tests. */
static const char *
origin_path(const char *target)
{
    const char *p;

    if (strncasecmp(target, "http://", 7) == 0)
        p = target + 7;
    else if (strncasecmp(target, "https://", 8) == 0)
        p = target + 8;
    else
        return target;
    p = strchr(p, '/');
    return p != NULL ? p : "/";
}

/* GET /{v}/models/{model}: a model name and nothing after it. */
static void
route_model_get(const char *rest, struct gr_mock_route *r)
{
    size_t n = strlen(rest), i;

    if (n == 0 || n >= sizeof r->model)
        return;
    for (i = 0; i < n; i++)
        if (!model_char(rest[i]))
            return;
    memcpy(r->model, rest, n + 1);
    r->kind = GR_MOCK_ROUTE_MODEL_GET;
}

/* /{v}/files/{id}: ids are [a-z0-9-], as Google's. */
static int
file_id_ok(const char *id, size_t n)
{
    size_t i;

    if (n == 0 || n > 40)
        return 0;
    for (i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') ||
              (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return 0;
    return 1;
}

/* Everything after /v1beta/ or /v1/. */
static void
route_versioned(const char *rest, const char *http_method, int get,
                struct gr_mock_route *r)
{
    size_t n = strlen(rest);

    if (strncmp(rest, "models/", 7) == 0 && r->post && n > 7 + 21 &&
        strcmp(rest + n - 21, ":batchGenerateContent") == 0) {
        n -= 7 + 21;
        if (n < sizeof r->model) {
            size_t i;

            for (i = 0; i < n && model_char(rest[7 + i]); i++)
                ;
            if (i == n) {
                memcpy(r->model, rest + 7, n);
                r->model[n] = '\0';
                r->kind = GR_MOCK_ROUTE_BATCH_CREATE;
            }
        }
    } else if (strcmp(rest, "batches") == 0 && get) {
        r->kind = GR_MOCK_ROUTE_BATCHES_LIST;
    } else if (strncmp(rest, "batches/", 8) == 0) {
        const char *id = rest + 8;
        size_t k = strlen(id);

        if (r->post && k > 7 && strcmp(id + k - 7, ":cancel") == 0 &&
            file_id_ok(id, k - 7)) {
            snprintf(r->file, sizeof r->file, "%.*s", (int)(k - 7), id);
            r->kind = GR_MOCK_ROUTE_BATCH_CANCEL;
        } else if (file_id_ok(id, k)) {
            snprintf(r->file, sizeof r->file, "%s", id);
            if (get)
                r->kind = GR_MOCK_ROUTE_BATCH_GET;
            else if (strcmp(http_method, "DELETE") == 0)
                r->kind = GR_MOCK_ROUTE_BATCH_DELETE;
        }
    } else if (strncmp(rest, "files/", 6) == 0 && get && n > 6 + 9 &&
               strcmp(rest + n - 9, ":download") == 0 &&
               file_id_ok(rest + 6, n - 6 - 9)) {
        snprintf(r->file, sizeof r->file, "%.*s", (int)(n - 6 - 9), rest + 6);
        r->kind = GR_MOCK_ROUTE_FILE_DOWNLOAD;
    } else if (strncmp(rest, "models/", 7) == 0) {
        if (strchr(rest + 7, ':') != NULL)
            route_model(rest + 7, r);
        else if (get)
            route_model_get(rest + 7, r);
    } else if (strcmp(rest, "models") == 0 && get) {
        r->kind = GR_MOCK_ROUTE_MODELS_LIST;
    } else if (strcmp(rest, "files") == 0 && get) {
        r->kind = GR_MOCK_ROUTE_FILES_LIST;
    } else if (strncmp(rest, "files/", 6) == 0 &&
               file_id_ok(rest + 6, strlen(rest + 6))) {
        snprintf(r->file, sizeof r->file, "%s", rest + 6);
        if (get)
            r->kind = GR_MOCK_ROUTE_FILE_GET;
        else if (strcmp(http_method, "DELETE") == 0)
            r->kind = GR_MOCK_ROUTE_FILE_DELETE;
    } else if (strcmp(rest, "cachedContents") == 0 && (get || r->post)) {
        r->kind = get ? GR_MOCK_ROUTE_CACHES_LIST
                      : GR_MOCK_ROUTE_CACHE_CREATE;
    } else if (strncmp(rest, "cachedContents/", 15) == 0 &&
               file_id_ok(rest + 15, strlen(rest + 15))) {
        snprintf(r->file, sizeof r->file, "%s", rest + 15);
        if (get)
            r->kind = GR_MOCK_ROUTE_CACHE_GET;
        else if (strcmp(http_method, "PATCH") == 0)
            r->kind = GR_MOCK_ROUTE_CACHE_PATCH;
        else if (strcmp(http_method, "DELETE") == 0)
            r->kind = GR_MOCK_ROUTE_CACHE_DELETE;
    } else if (strcmp(rest, "openai/chat/completions") == 0 && r->post) {
        r->kind = GR_MOCK_ROUTE_OAI_CHAT;
    } else if (strcmp(rest, "openai/embeddings") == 0 && r->post) {
        r->kind = GR_MOCK_ROUTE_OAI_EMBED;
    } else if (strcmp(rest, "openai/models") == 0 && get) {
        r->kind = GR_MOCK_ROUTE_OAI_MODELS;
    }
}

void
gr_mock_route_parse(const char *http_method, const char *path,
                    struct gr_mock_route *r)
{
    int get;

    memset(r, 0, sizeof *r);
    path = origin_path(path);
    r->post = strcmp(http_method, "POST") == 0;
    get = strcmp(http_method, "GET") == 0;
    if (strncmp(path, "/v1beta/", 8) == 0) {
        snprintf(r->version, sizeof r->version, "v1beta");
        route_versioned(path + 8, http_method, get, r);
    } else if (strncmp(path, "/v1/", 4) == 0) {
        snprintf(r->version, sizeof r->version, "v1");
        route_versioned(path + 4, http_method, get, r);
    } else if ((strcmp(path, "/upload/v1beta/files") == 0 ||
                strcmp(path, "/upload/v1/files") == 0) &&
               r->post) {
        snprintf(r->version, sizeof r->version, "%s",
                 path[10] == 'b' ? "v1beta" : "v1");
        r->kind = GR_MOCK_ROUTE_UPLOAD;
    } else if (strncmp(path, "/download/v1beta/files/", 23) == 0 && get) {
        snprintf(r->version, sizeof r->version, "v1beta");
        route_versioned(path + 17, http_method, get, r);
        if (r->kind != GR_MOCK_ROUTE_FILE_DOWNLOAD)
            r->kind = GR_MOCK_ROUTE_NONE;
    } else if (strcmp(path, "/mock/stats") == 0 && get) {
        r->kind = GR_MOCK_ROUTE_STATS;
    } else if (strcmp(path, "/mock/reset") == 0 && r->post) {
        r->kind = GR_MOCK_ROUTE_RESET;
    } else if (strcmp(path, "/mock/clock") == 0 && (get || r->post)) {
        r->kind = GR_MOCK_ROUTE_CLOCK;
    } else if (strcmp(path, "/mock/faults") == 0 && (get || r->post)) {
        r->kind = GR_MOCK_ROUTE_FAULTS;
    } else if (strcmp(path, "/mock/project") == 0 && r->post) {
        r->kind = GR_MOCK_ROUTE_PROJECT;
    }
}

static int
fail(char *msg, size_t msglen, char *field, size_t fieldlen, const char *fld,
     const char *text)
{
    snprintf(msg, msglen, "%s", text);
    if (field != NULL)
        snprintf(field, fieldlen, "%s", fld);
    return -EINVAL;
}

/* Parse the whole body as one JSON object; NULL and msg on failure. */
static struct json_object *
parse_object(const char *body, size_t len, char *msg, size_t msglen)
{
    struct json_tokener *tok;
    struct json_object *obj;
    enum json_tokener_error e;
    size_t end;

    if (len > (size_t)INT32_MAX) {
        snprintf(msg, msglen,
                 "Invalid JSON payload received. Payload too large.");
        return NULL;
    }
    tok = json_tokener_new_ex(JSON_DEPTH);
    if (tok == NULL) {
        snprintf(msg, msglen, "Invalid JSON payload received. Out of memory.");
        return NULL;
    }
    obj = json_tokener_parse_ex(tok, body, (int)len);
    e = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (obj == NULL || e != json_tokener_success) {
        json_object_put(obj);
        if (e == json_tokener_continue)
            snprintf(msg, msglen,
                     "Invalid JSON payload received. "
                     "Unexpected end of string.");
        else
            snprintf(msg, msglen,
                     "Invalid JSON payload received. %s at "
                     "byte %zu.",
                     json_tokener_error_desc(e), end);
        return NULL;
    }
    while (end < len && (body[end] == ' ' || body[end] == '\n' ||
                         body[end] == '\r' || body[end] == '\t'))
        end++;
    if (end != len) {
        json_object_put(obj);
        snprintf(msg, msglen,
                 "Invalid JSON payload received. Unexpected "
                 "token after the end of the value at byte %zu.",
                 end);
        return NULL;
    }
    if (!json_object_is_type(obj, json_type_object)) {
        json_object_put(obj);
        snprintf(msg, msglen,
                 "Invalid JSON payload received. Expected an "
                 "object at the top level.");
        return NULL;
    }
    return obj;
}

static struct json_object *
member(struct json_object *o, const char *camel, const char *snake)
{
    struct json_object *v = NULL;

    if (json_object_object_get_ex(o, camel, &v))
        return v;
    if (snake != NULL && json_object_object_get_ex(o, snake, &v))
        return v;
    return NULL;
}

static int
starts_with_image(const char *s)
{
    return s != NULL && strncmp(s, "image/", 6) == 0;
}

/* The id a fileUri names: ".../files/ID" or "files/ID"; NULL if none. */
static const char *
file_of_uri(const char *uri, char *id, size_t idlen)
{
    const char *p = NULL, *q;
    size_t n;

    if (strncmp(uri, "files/", 6) == 0)
        p = uri + 6;
    else if ((q = strstr(uri, "/files/")) != NULL)
        p = q + 7;
    if (p == NULL)
        return NULL; /* a YouTube or gs:// URI: not the Files API's */
    n = strcspn(p, "?#/");
    if (n == 0)
        return NULL;
    if (n >= idlen)
        n = idlen - 1; /* too long for any id: refused as not found */
    memcpy(id, p, n);
    id[n] = '\0';
    return id;
}

/* A fileData part: an image counts toward IPM; a Files API file must be
 * the caller's. */
static int
check_file(struct json_object *fd, struct gr_mock_usage *u, char *msg,
           size_t msglen, char *field, size_t fieldlen, const char *where)
{
    struct json_object *mt = member(fd, "mimeType", "mime_type");
    struct json_object *uri = member(fd, "fileUri", "file_uri");
    char id[64];

    if (mt != NULL && json_object_is_type(mt, json_type_string) &&
        starts_with_image(json_object_get_string(mt)))
        u->images++;
    if (uri == NULL || !json_object_is_type(uri, json_type_string) ||
        u->file_ok == NULL ||
        file_of_uri(json_object_get_string(uri), id, sizeof id) == NULL)
        return 0;
    if (u->file_ok(u->file_arg, id) == 0)
        return 0;
    snprintf(msg, msglen,
             "You do not have permission to access the File %s or it may "
             "not exist.",
             id);
    if (field != NULL)
        snprintf(field, fieldlen, "%s", where);
    return -EACCES;
}

/*
 * The images a generateContent body asks for: candidateCount (1 when
 * absent or not a positive integer) when generationConfig.
 * responseModalities holds "IMAGE" (any case), else none.
 */
static int64_t
images_asked(struct json_object *req)
{
    struct json_object *gc = member(req, "generationConfig",
                                    "generation_config");
    struct json_object *mods, *cc;
    size_t i, n;

    if (gc == NULL || !json_object_is_type(gc, json_type_object))
        return 0;
    mods = member(gc, "responseModalities", "response_modalities");
    if (mods == NULL || !json_object_is_type(mods, json_type_array))
        return 0;
    n = json_object_array_length(mods);
    for (i = 0; i < n; i++) {
        struct json_object *e = json_object_array_get_idx(mods, i);

        if (json_object_is_type(e, json_type_string) &&
            strcasecmp(json_object_get_string(e), "IMAGE") == 0)
            break;
    }
    if (i == n)
        return 0;
    cc = member(gc, "candidateCount", "candidate_count");
    if (cc != NULL && json_object_is_type(cc, json_type_int) &&
        json_object_get_int64(cc) >= 1 && json_object_get_int64(cc) <= 8)
        return json_object_get_int64(cc);
    return 1;
}

/* Add the text bytes and images of one Content object to *u. */
static int
count_content(struct json_object *content, struct gr_mock_usage *u,
              const char *where, char *msg, size_t msglen, char *field,
              size_t fieldlen)
{
    struct json_object *parts;
    size_t i, n;
    char text[160];

    if (!json_object_is_type(content, json_type_object)) {
        snprintf(text, sizeof text,
                 "Invalid value at '%s' "
                 "(type.googleapis.com/google.ai.generativelanguage.v1beta."
                 "Content): expected an object",
                 where);
        return fail(msg, msglen, field, fieldlen, where, text);
    }
    parts = member(content, "parts", NULL);
    if (parts == NULL)
        return 0;
    if (!json_object_is_type(parts, json_type_array)) {
        snprintf(text, sizeof text,
                 "Invalid value at '%s.parts': expected "
                 "a list of Part objects",
                 where);
        return fail(msg, msglen, field, fieldlen, where, text);
    }
    n = json_object_array_length(parts);
    for (i = 0; i < n; i++) {
        struct json_object *p = json_object_array_get_idx(parts, i), *v, *mt;

        if (!json_object_is_type(p, json_type_object)) {
            snprintf(text, sizeof text,
                     "Invalid value at '%s.parts[%zu]': "
                     "expected an object",
                     where, i);
            return fail(msg, msglen, field, fieldlen, where, text);
        }
        v = member(p, "text", NULL);
        if (v != NULL) {
            if (!json_object_is_type(v, json_type_string)) {
                snprintf(text, sizeof text,
                         "Invalid value at "
                         "'%s.parts[%zu].text': expected a string",
                         where, i);
                return fail(msg, msglen, field, fieldlen, where, text);
            }
            u->text_bytes += json_object_get_string_len(v);
        }
        v = member(p, "inlineData", "inline_data");
        if (v != NULL && json_object_is_type(v, json_type_object)) {
            mt = member(v, "mimeType", "mime_type");
            if (mt != NULL && json_object_is_type(mt, json_type_string) &&
                starts_with_image(json_object_get_string(mt)))
                u->images++;
        }
        v = member(p, "fileData", "file_data");
        if (v != NULL && json_object_is_type(v, json_type_object)) {
            int rc = check_file(v, u, msg, msglen, field, fieldlen, where);

            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int
count_contents(struct json_object *req, enum gr_mock_method m,
               struct gr_mock_usage *u, char *msg, size_t msglen, char *field,
               size_t fieldlen)
{
    struct json_object *contents = member(req, "contents", NULL);
    char text[160];
    size_t i, n;
    int rc;

    if (contents == NULL || (json_object_is_type(contents, json_type_array) &&
                             json_object_array_length(contents) == 0)) {
        snprintf(text, sizeof text,
                 "* %s.contents: contents is not specified\n",
                 request_names[m]);
        return fail(msg, msglen, field, fieldlen, "contents", text);
    }
    if (!json_object_is_type(contents, json_type_array))
        return fail(msg, msglen, field, fieldlen, "contents",
                    "Invalid value at 'contents' (type.googleapis.com/google."
                    "ai.generativelanguage.v1beta.Content): expected a list");
    n = json_object_array_length(contents);
    for (i = 0; i < n; i++) {
        char where[48];

        snprintf(where, sizeof where, "contents[%zu]", i);
        rc = count_content(json_object_array_get_idx(contents, i), u, where,
                           msg, msglen, field, fieldlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int
embed_one(struct json_object *req, enum gr_mock_method m, const char *where,
          struct gr_mock_usage *u, char *msg, size_t msglen, char *field,
          size_t fieldlen)
{
    struct json_object *content = member(req, "content", NULL), *dims;
    char text[160], path[64];

    if (!json_object_is_type(req, json_type_object))
        return fail(msg, msglen, field, fieldlen, where,
                    "Invalid value at 'requests': expected a list of "
                    "EmbedContentRequest objects");
    if (content == NULL) {
        snprintf(text, sizeof text,
                 "* %s.%scontent: content is not specified\n", request_names[m],
                 m == GR_MOCK_BATCH_EMBED_CONTENTS ? "requests[]." : "");
        return fail(msg, msglen, field, fieldlen, "content", text);
    }
    snprintf(path, sizeof path, "%s%scontent", where, where[0] ? "." : "");
    dims = member(req, "outputDimensionality", "output_dimensionality");
    if (dims != NULL) {
        int64_t d = json_object_get_int64(dims);

        if (!json_object_is_type(dims, json_type_int) || d < 1 ||
            d > GR_MOCK_EMBED_DIMS_MAX)
            return fail(msg, msglen, field, fieldlen, "outputDimensionality",
                        "* EmbedContentRequest.output_dimensionality: must be "
                        "between 1 and 3072\n");
        if (u->embed_dims == GR_MOCK_EMBED_DIMS)
            u->embed_dims = d;
    }
    u->requests++;
    return count_content(content, u, path, msg, msglen, field, fieldlen);
}

int
gr_mock_parse_body(enum gr_mock_method m, const char *body, size_t len,
                   struct gr_mock_usage *u, char *msg, size_t msglen,
                   char *field, size_t fieldlen)
{
    return gr_mock_parse_body_ex(m, body, len, u, msg, msglen, field, fieldlen,
                                 NULL, NULL);
}

/* Imagen's :predict: instances[].prompt and parameters.sampleCount. */
static int
parse_predict(struct json_object *req, struct gr_mock_usage *u, char *msg,
              size_t msglen, char *field, size_t fieldlen)
{
    struct json_object *inst = member(req, "instances", NULL), *params, *sc;
    struct json_object *prompt;
    int64_t samples = GR_MOCK_MAX_SAMPLES;
    size_t i, n;

    if (inst == NULL || !json_object_is_type(inst, json_type_array) ||
        json_object_array_length(inst) == 0)
        return fail(msg, msglen, field, fieldlen, "instances",
                    "* PredictRequest.instances: instances is not "
                    "specified\n");
    n = json_object_array_length(inst);
    if (n > 1)
        return fail(msg, msglen, field, fieldlen, "instances",
                    "Only one instance is supported per request.");
    for (i = 0; i < n; i++) {
        struct json_object *o = json_object_array_get_idx(inst, i);

        prompt = json_object_is_type(o, json_type_object)
                     ? member(o, "prompt", NULL)
                     : NULL;
        if (prompt == NULL || !json_object_is_type(prompt, json_type_string))
            return fail(msg, msglen, field, fieldlen, "instances",
                        "Invalid value at 'instances[0].prompt': expected "
                        "a string");
        u->text_bytes += json_object_get_string_len(prompt);
    }
    params = member(req, "parameters", NULL);
    if (params != NULL && json_object_is_type(params, json_type_object) &&
        (sc = member(params, "sampleCount", "sample_count")) != NULL) {
        samples = json_object_get_int64(sc);
        if (!json_object_is_type(sc, json_type_int) || samples < 1 ||
            samples > GR_MOCK_MAX_SAMPLES)
            return fail(msg, msglen, field, fieldlen, "parameters.sampleCount",
                        "Number of images must be in [1, 4].");
    }
    u->requests = 1;
    u->samples = samples;
    u->images = samples;
    return 0;
}

int
gr_mock_parse_body_ex(enum gr_mock_method m, const char *body, size_t len,
                      struct gr_mock_usage *u, char *msg, size_t msglen,
                      char *field, size_t fieldlen,
                      int (*check)(void *arg, const char *id), void *arg)
{
    struct json_object *req, *inner, *list;
    size_t i, n;
    int rc = 0;

    memset(u, 0, sizeof *u);
    u->embed_dims = GR_MOCK_EMBED_DIMS;
    u->file_ok = check;
    u->file_arg = arg;
    if (field != NULL && fieldlen > 0)
        field[0] = '\0';
    /* An empty body is an empty request: Google then names what is missing. */
    req = len == 0 ? json_object_new_object()
                   : parse_object(body, len, msg, msglen);
    if (req == NULL)
        return -EINVAL;

    switch (m) {
    case GR_MOCK_GENERATE_CONTENT:
    case GR_MOCK_STREAM_GENERATE_CONTENT:
        u->requests = 1;
        rc = count_contents(req, m, u, msg, msglen, field, fieldlen);
        u->images = images_asked(req);
        break;
    case GR_MOCK_COUNT_TOKENS:
        u->requests = 1;
        inner =
            member(req, "generateContentRequest", "generate_content_request");
        if (inner != NULL && member(req, "contents", NULL) == NULL) {
            if (!json_object_is_type(inner, json_type_object)) {
                rc =
                    fail(msg, msglen, field, fieldlen, "generateContentRequest",
                         "Invalid value at 'generate_content_request': "
                         "expected an object");
                break;
            }
            rc = count_contents(inner, m, u, msg, msglen, field, fieldlen);
        } else {
            rc = count_contents(req, m, u, msg, msglen, field, fieldlen);
        }
        u->images = 0;      /* nothing is generated */
        break;
    case GR_MOCK_EMBED_CONTENT:
        rc = embed_one(req, m, "", u, msg, msglen, field, fieldlen);
        break;
    case GR_MOCK_BATCH_EMBED_CONTENTS:
        list = member(req, "requests", NULL);
        if (list == NULL || !json_object_is_type(list, json_type_array) ||
            json_object_array_length(list) == 0) {
            rc = fail(msg, msglen, field, fieldlen, "requests",
                      "* BatchEmbedContentsRequest.requests: requests is not "
                      "specified\n");
            break;
        }
        n = json_object_array_length(list);
        if (n > GR_MOCK_MAX_BATCH) {
            rc = fail(msg, msglen, field, fieldlen, "requests",
                      "* BatchEmbedContentsRequest.requests: at most 100 "
                      "requests can be in one batch\n");
            break;
        }
        for (i = 0; i < n && rc == 0; i++) {
            char where[32];

            snprintf(where, sizeof where, "requests[%zu]", i);
            rc = embed_one(json_object_array_get_idx(list, i), m, where, u, msg,
                           msglen, field, fieldlen);
        }
        break;
    case GR_MOCK_PREDICT:
        rc = parse_predict(req, u, msg, msglen, field, fieldlen);
        break;
    default:
        rc = fail(msg, msglen, field, fieldlen, "", "Unknown method.");
        break;
    }
    json_object_put(req);
    /* Imagen has no token quota: its prompt costs images, not tokens. */
    u->tokens = m == GR_MOCK_PREDICT ? 0 : (u->text_bytes + 3) / 4;
    return rc;
}

/* "model": "gemini-2.5-flash" or "models/gemini-2.5-flash". */
static int
oai_model(struct json_object *req, struct gr_mock_oai *o, char *msg,
          size_t msglen, char *field, size_t fieldlen)
{
    struct json_object *v = member(req, "model", NULL);
    const char *s;
    size_t n, i;

    if (v == NULL || !json_object_is_type(v, json_type_string))
        return fail(msg, msglen, field, fieldlen, "model",
                    "* model: model is not specified\n");
    s = json_object_get_string(v);
    if (strncmp(s, "models/", 7) == 0)
        s += 7;
    n = strlen(s);
    o->model[0] = '\0';
    if (n == 0 || n >= sizeof o->model)
        return 0;
    for (i = 0; i < n; i++)
        if (!model_char(s[i]))
            return 0;
    memcpy(o->model, s, n + 1);
    return 0;
}

static int
oai_bool(struct json_object *o, const char *name)
{
    struct json_object *v = member(o, name, NULL);

    return v != NULL && json_object_is_type(v, json_type_boolean) &&
           json_object_get_boolean(v);
}

/* One message's content: a string, or a list of text / image_url parts. */
static int
oai_content(struct json_object *c, size_t i, int counted,
            struct gr_mock_usage *u, char *msg, size_t msglen, char *field,
            size_t fieldlen)
{
    char text[128];
    size_t j, n;

    if (c == NULL || json_object_is_type(c, json_type_null))
        return 0;
    if (json_object_is_type(c, json_type_string)) {
        if (counted)
            u->text_bytes += json_object_get_string_len(c);
        return 0;
    }
    if (!json_object_is_type(c, json_type_array)) {
        snprintf(text, sizeof text,
                 "Invalid value at 'messages[%zu].content': expected a "
                 "string or a list of parts",
                 i);
        return fail(msg, msglen, field, fieldlen, "messages", text);
    }
    n = json_object_array_length(c);
    for (j = 0; j < n; j++) {
        struct json_object *p = json_object_array_get_idx(c, j), *t, *v;
        const char *type;

        t = json_object_is_type(p, json_type_object) ? member(p, "type", NULL)
                                                     : NULL;
        type = t != NULL && json_object_is_type(t, json_type_string)
                   ? json_object_get_string(t)
                   : "";
        if (strcmp(type, "text") == 0) {
            v = member(p, "text", NULL);
            if (v == NULL || !json_object_is_type(v, json_type_string)) {
                snprintf(text, sizeof text,
                         "Invalid value at 'messages[%zu].content[%zu].text': "
                         "expected a string",
                         i, j);
                return fail(msg, msglen, field, fieldlen, "messages", text);
            }
            if (counted)
                u->text_bytes += json_object_get_string_len(v);
        } else if (strcmp(type, "image_url") == 0) {
            u->images++;
        } else {
            snprintf(text, sizeof text,
                     "Invalid value at 'messages[%zu].content[%zu].type': "
                     "expected text or image_url",
                     i, j);
            return fail(msg, msglen, field, fieldlen, "messages", text);
        }
    }
    return 0;
}

int
gr_mock_parse_oai_chat(const char *body, size_t len, struct gr_mock_oai *o,
                       struct gr_mock_usage *u, char *msg, size_t msglen,
                       char *field, size_t fieldlen)
{
    struct json_object *req, *msgs, *so;
    size_t i, n;
    int rc;

    memset(o, 0, sizeof *o);
    memset(u, 0, sizeof *u);
    u->embed_dims = GR_MOCK_EMBED_DIMS;
    if (field != NULL && fieldlen > 0)
        field[0] = '\0';
    req = len == 0 ? json_object_new_object()
                   : parse_object(body, len, msg, msglen);
    if (req == NULL)
        return -EINVAL;
    rc = oai_model(req, o, msg, msglen, field, fieldlen);
    if (rc < 0)
        goto out;
    msgs = member(req, "messages", NULL);
    if (msgs == NULL || !json_object_is_type(msgs, json_type_array) ||
        json_object_array_length(msgs) == 0) {
        rc = fail(msg, msglen, field, fieldlen, "messages",
                  "* messages: messages is not specified\n");
        goto out;
    }
    n = json_object_array_length(msgs);
    for (i = 0; i < n && rc == 0; i++) {
        struct json_object *m = json_object_array_get_idx(msgs, i), *role;
        const char *r;

        if (!json_object_is_type(m, json_type_object)) {
            rc = fail(msg, msglen, field, fieldlen, "messages",
                      "Invalid value at 'messages': expected a list of "
                      "message objects");
            break;
        }
        role = member(m, "role", NULL);
        r = role != NULL && json_object_is_type(role, json_type_string)
                ? json_object_get_string(role)
                : "";
        /* System text becomes systemInstruction, which is not counted. */
        rc =
            oai_content(member(m, "content", NULL), i,
                        strcmp(r, "system") != 0 && strcmp(r, "developer") != 0,
                        u, msg, msglen, field, fieldlen);
    }
    if (rc < 0)
        goto out;
    o->stream = oai_bool(req, "stream");
    so = member(req, "stream_options", NULL);
    if (so != NULL && json_object_is_type(so, json_type_object))
        o->include_usage = oai_bool(so, "include_usage");
    u->requests = 1;
out:
    json_object_put(req);
    u->tokens = (u->text_bytes + 3) / 4;
    return rc;
}

int
gr_mock_parse_oai_embed(const char *body, size_t len, struct gr_mock_oai *o,
                        struct gr_mock_usage *u, char *msg, size_t msglen,
                        char *field, size_t fieldlen)
{
    struct json_object *req, *in, *dims;
    size_t i, n;
    int rc;

    memset(o, 0, sizeof *o);
    memset(u, 0, sizeof *u);
    u->embed_dims = GR_MOCK_EMBED_DIMS;
    if (field != NULL && fieldlen > 0)
        field[0] = '\0';
    req = len == 0 ? json_object_new_object()
                   : parse_object(body, len, msg, msglen);
    if (req == NULL)
        return -EINVAL;
    rc = oai_model(req, o, msg, msglen, field, fieldlen);
    if (rc < 0)
        goto out;
    in = member(req, "input", NULL);
    if (in != NULL && json_object_is_type(in, json_type_string)) {
        u->requests = 1;
        u->text_bytes = json_object_get_string_len(in);
    } else if (in != NULL && json_object_is_type(in, json_type_array) &&
               json_object_array_length(in) > 0) {
        n = json_object_array_length(in);
        if (n > GR_MOCK_MAX_BATCH) {
            rc = fail(msg, msglen, field, fieldlen, "input",
                      "* BatchEmbedContentsRequest.requests: at most 100 "
                      "requests can be in one batch\n");
            goto out;
        }
        for (i = 0; i < n; i++) {
            struct json_object *s = json_object_array_get_idx(in, i);

            if (!json_object_is_type(s, json_type_string)) {
                rc = fail(msg, msglen, field, fieldlen, "input",
                          "Invalid value at 'input': expected a string or a "
                          "list of strings");
                goto out;
            }
            u->text_bytes += json_object_get_string_len(s);
        }
        u->requests = (int64_t)n;
    } else {
        rc = fail(msg, msglen, field, fieldlen, "input",
                  "* input: input is not specified\n");
        goto out;
    }
    dims = member(req, "dimensions", NULL);
    if (dims != NULL) {
        int64_t d = json_object_get_int64(dims);

        if (!json_object_is_type(dims, json_type_int) || d < 1 ||
            d > GR_MOCK_EMBED_DIMS_MAX) {
            rc = fail(msg, msglen, field, fieldlen, "dimensions",
                      "* EmbedContentRequest.output_dimensionality: must be "
                      "between 1 and 3072\n");
            goto out;
        }
        u->embed_dims = d;
    }
out:
    json_object_put(req);
    u->tokens = (u->text_bytes + 3) / 4;
    return rc;
}

int
gr_mock_parse_file_start(const char *body, size_t len, char *display,
                         size_t dlen, char *mime, size_t mlen, char *msg,
                         size_t msglen)
{
    struct json_object *req, *file, *v;
    int rc = 0;

    display[0] = '\0';
    mime[0] = '\0';
    if (len == 0)
        return 0;
    req = parse_object(body, len, msg, msglen);
    if (req == NULL)
        return -EINVAL;
    file = member(req, "file", NULL);
    if (file != NULL && !json_object_is_type(file, json_type_object)) {
        snprintf(msg, msglen,
                 "Invalid JSON payload received. \"file\" must be an "
                 "object.");
        rc = -EINVAL;
    } else if (file != NULL) {
        v = member(file, "displayName", "display_name");
        if (v != NULL && json_object_is_type(v, json_type_string))
            snprintf(display, dlen, "%s", json_object_get_string(v));
        v = member(file, "mimeType", "mime_type");
        if (v != NULL && json_object_is_type(v, json_type_string))
            snprintf(mime, mlen, "%s", json_object_get_string(v));
    }
    json_object_put(req);
    return rc;
}

static int
admin_number(struct json_object *v, double *out)
{
    if (!json_object_is_type(v, json_type_int) &&
        !json_object_is_type(v, json_type_double))
        return -EINVAL;
    *out = json_object_get_double(v);
    return 0;
}

int
gr_mock_parse_admin(const char *body, size_t len, struct gr_mock_admin *a,
                    char *msg, size_t msglen)
{
    struct json_object *req;
    int rc = 0;

    memset(a, 0, sizeof *a);
    if (len == 0)
        return 0;
    req = parse_object(body, len, msg, msglen);
    if (req == NULL)
        return -EINVAL;
    json_object_object_foreach(req, key, val)
    {
        if (strcmp(key, "offset_s") == 0 &&
            admin_number(val, &a->offset_s) == 0) {
            a->has |= GR_MOCK_ADMIN_OFFSET_S;
        } else if (strcmp(key, "wall_s") == 0 &&
                   admin_number(val, &a->wall_s) == 0) {
            a->has |= GR_MOCK_ADMIN_WALL_S;
        } else if (strcmp(key, "p503") == 0 &&
                   admin_number(val, &a->p503) == 0) {
            a->has |= GR_MOCK_ADMIN_P503;
        } else if (strcmp(key, "p500") == 0 &&
                   admin_number(val, &a->p500) == 0) {
            a->has |= GR_MOCK_ADMIN_P500;
        } else if (strcmp(key, "latency_ms") == 0 &&
                   json_object_is_type(val, json_type_array) &&
                   json_object_array_length(val) == 2 &&
                   json_object_is_type(json_object_array_get_idx(val, 0),
                                       json_type_int) &&
                   json_object_is_type(json_object_array_get_idx(val, 1),
                                       json_type_int)) {
            a->latency_ms[0] =
                json_object_get_int64(json_object_array_get_idx(val, 0));
            a->latency_ms[1] =
                json_object_get_int64(json_object_array_get_idx(val, 1));
            a->has |= GR_MOCK_ADMIN_LATENCY;
        } else if (strcmp(key, "name") == 0 &&
                   json_object_is_type(val, json_type_string) &&
                   (size_t)json_object_get_string_len(val) < sizeof a->name) {
            snprintf(a->name, sizeof a->name, "%s",
                     json_object_get_string(val));
            a->has |= GR_MOCK_ADMIN_NAME;
        } else if (strcmp(key, "state") == 0 &&
                   json_object_is_type(val, json_type_string) &&
                   (size_t)json_object_get_string_len(val) < sizeof a->state) {
            snprintf(a->state, sizeof a->state, "%s",
                     json_object_get_string(val));
            a->has |= GR_MOCK_ADMIN_STATE;
        } else {
            snprintf(msg, msglen,
                     "Invalid JSON payload received. Unknown name "
                     "or bad value for \"%.64s\".",
                     key);
            rc = -EINVAL;
            break;
        }
    }
    json_object_put(req);
    return rc;
}
