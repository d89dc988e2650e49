/*
 * request.c - route a URL path and read a request body the way the mock
 * counts it.  This is the only file of the mock that includes json-c.
 *
 * Invariant protected: any bytes at all (malformed, deeply nested, huge
 * numbers, wrong types) give either a usage or a Google-worded error,
 * never a crash; and the token estimate is the documented one:
 * promptTokenCount = ceil(bytes of every "text" part of the contents / 4),
 * images = inlineData parts whose mimeType starts with "image/".
 */
#include "request.h"

#include <errno.h>
#include <json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define JSON_DEPTH 64 /* deeper bodies are refused, not recursed */

static const char *const method_names[] = {
    "generateContent", "streamGenerateContent", "countTokens", "embedContent",
    "batchEmbedContents"};

/* Google's request message per method, for "* Request.field: ..." texts. */
static const char *const request_names[] = {
    "GenerateContentRequest", "GenerateContentRequest", "CountTokensRequest",
    "EmbedContentRequest", "BatchEmbedContentsRequest"};

const char *
gr_mock_method_name(enum gr_mock_method m)
{
    return (unsigned)m < 5 ? method_names[m] : "generateContent";
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
    for (m = 0; m < 5; m++)
        if (strcmp(colon + 1, method_names[m]) == 0)
            break;
    if (m == 5)
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

void
gr_mock_route_parse(const char *http_method, const char *path,
                    struct gr_mock_route *r)
{
    int get;

    memset(r, 0, sizeof *r);
    path = origin_path(path);
    r->post = strcmp(http_method, "POST") == 0;
    get = strcmp(http_method, "GET") == 0;
    if (strncmp(path, "/v1beta/models/", 15) == 0) {
        snprintf(r->version, sizeof r->version, "v1beta");
        route_model(path + 15, r);
    } else if (strncmp(path, "/v1/models/", 11) == 0) {
        snprintf(r->version, sizeof r->version, "v1");
        route_model(path + 11, r);
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
    struct json_object *req, *inner, *list;
    size_t i, n;
    int rc = 0;

    memset(u, 0, sizeof *u);
    u->embed_dims = GR_MOCK_EMBED_DIMS;
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
    default:
        rc = fail(msg, msglen, field, fieldlen, "", "Unknown method.");
        break;
    }
    json_object_put(req);
    u->tokens = (u->text_bytes + 3) / 4;
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
