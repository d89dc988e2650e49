/*
 * caches.c - the mock's cachedContents (caches.h): create, get, list,
 * patch the TTL, delete, each cache visible to its own project only and
 * gone at its expiry.  A small array under one mutex: the mock holds at
 * most GR_MOCK_MAX_CACHES.  Tokens held are counted as the mock counts a
 * generate request's (text bytes / 4, rounded up).
 */
#include "caches.h"
#include "files.h"
#include "mock.h"

#include <errno.h>
#include <json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS INT64_C(1000000000)
#define MAX_TTL_NS (INT64_C(366) * 86400 * NS)

struct slot {
    int used;
    uint32_t project;
    struct gr_mock_cache_info c;
    uint64_t order;
};

struct gr_mock_caches {
    pthread_mutex_t lock;
    struct slot slots[GR_MOCK_MAX_CACHES];
    uint64_t next_order;
};

int
gr_mock_caches_new(struct gr_mock_caches **out)
{
    struct gr_mock_caches *cs = calloc(1, sizeof(*cs));

    if (cs == NULL)
        return -ENOMEM;
    pthread_mutex_init(&cs->lock, NULL);
    *out = cs;
    return 0;
}

void
gr_mock_caches_free(struct gr_mock_caches *cs)
{
    if (cs == NULL)
        return;
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

void
gr_mock_caches_reset(struct gr_mock_caches *cs)
{
    pthread_mutex_lock(&cs->lock);
    memset(cs->slots, 0, sizeof(cs->slots));
    pthread_mutex_unlock(&cs->lock);
}

static void
purge_locked(struct gr_mock_caches *cs, int64_t now_ns)
{
    size_t i;

    for (i = 0; i < GR_MOCK_MAX_CACHES; i++)
        if (cs->slots[i].used && cs->slots[i].c.expire_ns <= now_ns)
            cs->slots[i].used = 0;
}

static struct slot *
find_locked(struct gr_mock_caches *cs, uint32_t project, const char *id)
{
    size_t i;

    for (i = 0; i < GR_MOCK_MAX_CACHES; i++)
        if (cs->slots[i].used && cs->slots[i].project == project &&
            strcmp(cs->slots[i].c.id, id) == 0)
            return &cs->slots[i];
    return NULL;
}

/* "300s", "1.5s": Google's Duration in JSON; -1 when malformed. */
static int64_t
duration_ns(const char *s)
{
    char *end;
    double v = strtod(s, &end);

    if (end == s || strcmp(end, "s") != 0 || !(v > 0) ||
        v * (double)NS > (double)MAX_TTL_NS)
        return -1;
    return (int64_t)(v * (double)NS);
}

/* RFC 3339 UTC ("2026-12-05T09:36:24.123Z") in ns; -1 when malformed. */
static int64_t
time_ns(const char *s)
{
    struct tm tm;
    const char *end;
    double frac = 0;

    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return -1;
    if (*end == '.') {
        char *e2;

        frac = strtod(end, &e2);
        end = e2;
    }
    if (strcmp(end, "Z") != 0)
        return -1;
    return (int64_t)timegm(&tm) * NS + (int64_t)(frac * (double)NS);
}

static const char *
str_of(struct json_object *o, const char *camel, const char *snake)
{
    struct json_object *v;

    if ((json_object_object_get_ex(o, camel, &v) ||
         json_object_object_get_ex(o, snake, &v)) &&
        json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

/* The expiry a body asks for (ttl or expireTime), or def; -1 = bad. */
static int64_t
expiry_of(struct json_object *o, int64_t now_ns, int64_t def, char *msg,
          size_t msglen)
{
    const char *ttl = str_of(o, "ttl", "ttl");
    const char *exp = str_of(o, "expireTime", "expire_time");
    int64_t v;

    if (ttl != NULL) {
        if ((v = duration_ns(ttl)) < 0) {
            snprintf(msg, msglen, "Invalid value at 'cached_content.ttl': "
                     "a duration in seconds such as \"300s\".");
            return -1;
        }
        return now_ns + v;
    }
    if (exp != NULL) {
        if ((v = time_ns(exp)) < 0 || v <= now_ns) {
            snprintf(msg, msglen, "Invalid value at "
                     "'cached_content.expire_time': a time in the future.");
            return -1;
        }
        return v;
    }
    return def;
}

/* Text bytes of every "text" under o, for the token count. */
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
        return n;
    }
    if (!json_object_is_type(o, json_type_object))
        return 0;
    json_object_object_foreach(o, key, val) {
        if (strcmp(key, "text") == 0 &&
            json_object_is_type(val, json_type_string))
            n += json_object_get_string_len(val);
        else
            n += text_bytes(val, depth + 1);
    }
    return n;
}

static struct json_object *
parse(const char *body, size_t len)
{
    struct json_tokener *tok = json_tokener_new();
    struct json_object *o = NULL;

    if (tok == NULL || len == 0 || len > INT32_MAX)
        goto out;
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

int
gr_mock_caches_create(struct gr_mock_caches *cs, uint32_t project,
                      const char *body, size_t len, int64_t now_ns,
                      struct gr_mock_cache_info *out, char *msg,
                      size_t msglen)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    struct json_object *o = parse(body, len);
    const char *model, *display;
    struct slot *s = NULL;
    int64_t expire;
    size_t i;

    if (o == NULL) {
        snprintf(msg, msglen, "Invalid JSON payload received.");
        return -EINVAL;
    }
    model = str_of(o, "model", "model");
    if (model == NULL || model[0] == '\0') {
        snprintf(msg, msglen, "cachedContent.model is required.");
        json_object_put(o);
        return -EINVAL;
    }
    expire = expiry_of(o, now_ns, now_ns + GR_MOCK_CACHE_DEFAULT_TTL_NS, msg,
                       msglen);
    if (expire < 0) {
        json_object_put(o);
        return -EINVAL;
    }
    display = str_of(o, "displayName", "display_name");
    pthread_mutex_lock(&cs->lock);
    purge_locked(cs, now_ns);
    for (i = 0; i < GR_MOCK_MAX_CACHES && s == NULL; i++)
        if (!cs->slots[i].used)
            s = &cs->slots[i];
    if (s == NULL) {
        pthread_mutex_unlock(&cs->lock);
        json_object_put(o);
        return -EMFILE;
    }
    memset(s, 0, sizeof(*s));
    s->used = 1;
    s->project = project;
    s->order = cs->next_order++;
    for (i = 0; i < GR_MOCK_CACHE_ID_LEN; i++)
        s->c.id[i] = abc[gr_mock_rand() % 36];
    snprintf(s->c.model, sizeof(s->c.model), "%s%s",
             strncmp(model, "models/", 7) == 0 ? "" : "models/", model);
    snprintf(s->c.display, sizeof(s->c.display), "%s",
             display != NULL ? display : "");
    s->c.tokens = (text_bytes(o, 0) + 3) / 4;
    s->c.created_ns = s->c.updated_ns = now_ns;
    s->c.expire_ns = expire;
    *out = s->c;
    pthread_mutex_unlock(&cs->lock);
    json_object_put(o);
    return 0;
}

int
gr_mock_caches_get(struct gr_mock_caches *cs, uint32_t project,
                   const char *id, int64_t now_ns,
                   struct gr_mock_cache_info *out)
{
    struct slot *s;

    pthread_mutex_lock(&cs->lock);
    purge_locked(cs, now_ns);
    s = find_locked(cs, project, id);
    if (s != NULL && out != NULL)
        *out = s->c;
    pthread_mutex_unlock(&cs->lock);
    return s != NULL ? 0 : -EACCES;
}

int
gr_mock_caches_patch(struct gr_mock_caches *cs, uint32_t project,
                     const char *id, const char *body, size_t len,
                     int64_t now_ns, struct gr_mock_cache_info *out,
                     char *msg, size_t msglen)
{
    struct json_object *o = parse(body, len);
    struct slot *s;
    int64_t expire;

    if (o == NULL) {
        snprintf(msg, msglen, "Invalid JSON payload received.");
        return -EINVAL;
    }
    expire = expiry_of(o, now_ns, -1, msg, msglen);
    json_object_put(o);
    if (expire < 0) {
        if (msg[0] == '\0')
            snprintf(msg, msglen, "Only ttl or expireTime may be updated.");
        return -EINVAL;
    }
    pthread_mutex_lock(&cs->lock);
    purge_locked(cs, now_ns);
    s = find_locked(cs, project, id);
    if (s != NULL) {
        s->c.expire_ns = expire;
        s->c.updated_ns = now_ns;
        *out = s->c;
    }
    pthread_mutex_unlock(&cs->lock);
    return s != NULL ? 0 : -EACCES;
}

int
gr_mock_caches_delete(struct gr_mock_caches *cs, uint32_t project,
                      const char *id, int64_t now_ns)
{
    struct slot *s;

    pthread_mutex_lock(&cs->lock);
    purge_locked(cs, now_ns);
    s = find_locked(cs, project, id);
    if (s != NULL)
        s->used = 0;
    pthread_mutex_unlock(&cs->lock);
    return s != NULL ? 0 : -EACCES;
}

size_t
gr_mock_caches_list(struct gr_mock_caches *cs, uint32_t project,
                    int64_t now_ns, struct gr_mock_cache_info *out,
                    size_t max)
{
    uint64_t last = 0;
    size_t n = 0, i;
    bool first = true;

    pthread_mutex_lock(&cs->lock);
    purge_locked(cs, now_ns);
    /* In creation order: the next larger order each time. */
    while (n < max) {
        struct slot *best = NULL;

        for (i = 0; i < GR_MOCK_MAX_CACHES; i++) {
            struct slot *s = &cs->slots[i];

            if (s->used && s->project == project &&
                (first || s->order > last) &&
                (best == NULL || s->order < best->order))
                best = s;
        }
        if (best == NULL)
            break;
        out[n++] = best->c;
        last = best->order;
        first = false;
    }
    pthread_mutex_unlock(&cs->lock);
    return n;
}

int
gr_mock_caches_named(const char *body, size_t len,
                     char id[GR_MOCK_CACHE_ID_LEN + 8])
{
    struct json_object *o;
    const char *name;
    int rc = 0;

    if (body == NULL || (memmem(body, len, "achedContent", 12) == NULL &&
                         memmem(body, len, "ached_content", 13) == NULL))
        return 0;
    if ((o = parse(body, len)) == NULL)
        return 0;       /* the body's own parser reports it */
    name = str_of(o, "cachedContent", "cached_content");
    if (name == NULL) {
        /* countTokens: {"generateContentRequest": {..., cachedContent}} */
        struct json_object *in = NULL;

        if (json_object_object_get_ex(o, "generateContentRequest", &in) ||
            json_object_object_get_ex(o, "generate_content_request", &in))
            name = str_of(in, "cachedContent", "cached_content");
    }
    if (name != NULL) {
        if (strncmp(name, "cachedContents/", 15) != 0 ||
            strlen(name + 15) == 0 ||
            strlen(name + 15) > GR_MOCK_CACHE_ID_LEN + 4) {
            rc = -EINVAL;
        } else {
            snprintf(id, GR_MOCK_CACHE_ID_LEN + 8, "%s", name + 15);
            rc = 1;
        }
    }
    json_object_put(o);
    return rc;
}

void
gr_mock_cache_json(struct gr_mock_jw *w, const char *key,
                   const struct gr_mock_cache_info *c)
{
    char t[64], name[64];

    gr_mock_jw_object(w, key);
    snprintf(name, sizeof(name), "cachedContents/%s", c->id);
    gr_mock_jw_str(w, "name", name);
    gr_mock_jw_str(w, "model", c->model);
    if (c->display[0] != '\0')
        gr_mock_jw_str(w, "displayName", c->display);
    gr_mock_timestamp(c->created_ns, t, sizeof(t));
    gr_mock_jw_str(w, "createTime", t);
    gr_mock_timestamp(c->updated_ns, t, sizeof(t));
    gr_mock_jw_str(w, "updateTime", t);
    gr_mock_timestamp(c->expire_ns, t, sizeof(t));
    gr_mock_jw_str(w, "expireTime", t);
    gr_mock_jw_object(w, "usageMetadata");
    gr_mock_jw_int(w, "totalTokenCount", c->tokens);
    gr_mock_jw_end(w);
    gr_mock_jw_end(w);
}
