/*
 * resource.c - resource affinity for the library: record the project that
 * holds a file, a context cache or a batch job when a call creates one,
 * find the project a request is pinned to by the resources it names, and
 * drop a resource Google says is gone.
 *
 * The record is the companion segment of the table (shm/resource.h),
 * mapped on first use.  Writer rule (docs/DESIGN.md): a client writes the
 * record of what it learnt from a 2xx answer it received itself (a
 * create, a TTL change, a delete) or from a 403/404 of the owning
 * project; nothing else.  Invariant protected: a request that names
 * resources of two projects is refused before anything is sent, and one
 * that names a recorded resource is reserved on its project only.
 */
#include "client_priv.h"
#include "clock.h"
#include "json_priv.h"

#include <errno.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ATTACH_EVERY_NS (INT64_C(1000000000))

static const struct {
    const char *prefix;
    size_t len;
    uint32_t kind;
} prefixes[] = {
    {"files/", 6, GR_RES_KIND_FILE},
    {"cachedContents/", 15, GR_RES_KIND_CACHE},
    {"batches/", 8, GR_RES_KIND_BATCH},
};

static _Thread_local int64_t next_attach_ns;

/* The record, mapped once per handle; NULL when there is none (yet). */
static const struct gr_shm_restab *
res_map(struct gr *g)
{
    char err[256];

    /* acquire: pairs with the release below; res is complete */
    if (atomic_load_explicit(&g->res_ready, memory_order_acquire))
        return &g->res;
    if (gr_shm_now_mono() < next_attach_ns)
        return NULL;
    pthread_mutex_lock(&g->res_lock);
    /* relaxed: under res_lock, which orders it with the store below */
    if (!atomic_load_explicit(&g->res_ready, memory_order_relaxed)) {
        if (gr_shm_res_attach(g->t.name, true, &g->res, err,
                              sizeof(err)) == 0)
            /* release: res is written before ready is seen */
            atomic_store_explicit(&g->res_ready, 1, memory_order_release);
        else
            gr_seterr(g, "%s", err);
    }
    pthread_mutex_unlock(&g->res_lock);
    /* acquire: as at the top */
    if (atomic_load_explicit(&g->res_ready, memory_order_acquire))
        return &g->res;
    next_attach_ns = gr_shm_now_mono() + ATTACH_EVERY_NS;
    return NULL;
}

void
gr_res_close(struct gr *g)
{
    /* acquire: as in res_map(); no other thread uses g any more */
    if (atomic_load_explicit(&g->res_ready, memory_order_acquire))
        gr_shm_res_detach(&g->res);
    pthread_mutex_destroy(&g->res_lock);
}

static bool
id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

/*
 * The resource s names ("files/ID" anywhere in it at the start or after
 * a '/': a bare name, a full URI, an API path), into out; its kind, or 0.
 */
static uint32_t
resource_of(const char *s, size_t n, char out[GR_RES_NAME_MAX])
{
    size_t i, k, j;

    for (i = 0; i < n; i++) {
        if (i > 0 && s[i - 1] != '/')
            continue;
        for (k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
            size_t pl = prefixes[k].len;

            if (n - i <= pl || memcmp(s + i, prefixes[k].prefix, pl) != 0)
                continue;
            for (j = i + pl; j < n && id_char(s[j]); j++)
                ;
            if (j == i + pl || j - i >= GR_RES_NAME_MAX)
                continue;
            memcpy(out, s + i, j - i);
            out[j - i] = '\0';
            return prefixes[k].kind;
        }
    }
    return 0;
}

static void
add_name(struct gr_pin *pin, const char *s, size_t n)
{
    char name[GR_RES_NAME_MAX];
    unsigned i;

    if (resource_of(s, n, name) == 0)
        return;
    for (i = 0; i < pin->n; i++)
        if (strcmp(pin->names[i], name) == 0)
            return;
    if (pin->n < GR_PIN_MAX)
        memcpy(pin->names[pin->n++], name, sizeof(name));
}

static bool
named_key(const char *k)
{
    return strcmp(k, "fileUri") == 0 || strcmp(k, "file_uri") == 0 ||
           strcmp(k, "cachedContent") == 0 ||
           strcmp(k, "cached_content") == 0 ||
           strcmp(k, "fileName") == 0 || strcmp(k, "file_name") == 0;
}

/* Every string under a key that names a resource, at any depth. */
static void
walk(struct json_object *o, struct gr_pin *pin, int depth)
{
    if (o == NULL || depth > GR_JSON_MAX_DEPTH)
        return;
    if (json_object_is_type(o, json_type_array)) {
        size_t i, n = json_object_array_length(o);

        for (i = 0; i < n; i++)
            walk(json_object_array_get_idx(o, i), pin, depth + 1);
        return;
    }
    if (!json_object_is_type(o, json_type_object))
        return;
    json_object_object_foreach(o, key, val) {
        if (named_key(key) && json_object_is_type(val, json_type_string))
            add_name(pin, json_object_get_string(val),
                     (size_t)json_object_get_string_len(val));
        else
            walk(val, pin, depth + 1);
    }
}

static bool
mentions(const char *body, size_t len, const char *what)
{
    return body != NULL && memmem(body, len, what, strlen(what)) != NULL;
}

int
gr_pin_request(struct gr *g, const char *path, const char *body, size_t len,
               struct gr_pin *pin, char *why, size_t n)
{
    const struct gr_shm_restab *rt;
    struct gr_shm_res_view v;
    int64_t now = gr_shm_now_wall();
    unsigned i, first = 0;

    memset(pin, 0, sizeof(*pin));
    if (path != NULL) {
        const char *q = strchr(path, '?');

        add_name(pin, path, q != NULL ? (size_t)(q - path) : strlen(path));
    }
    if (body != NULL &&
        (mentions(body, len, "ile_uri") || mentions(body, len, "ileUri") ||
         mentions(body, len, "ached_content") ||
         mentions(body, len, "achedContent") ||
         mentions(body, len, "ile_name") || mentions(body, len, "ileName"))) {
        struct json_object *o = gr_json_parse(body, len, 0, 0, NULL);

        walk(o, pin, 0);
        json_object_put(o);
    }
    if (pin->n == 0 || (rt = res_map(g)) == NULL)
        return GR_OK;
    for (i = 0; i < pin->n; i++) {
        if (gr_shm_res_get(rt, pin->names[i], now, &v) != 0)
            continue;
        if (pin->project[0] == '\0') {
            snprintf(pin->project, sizeof(pin->project), "%s", v.project);
            first = i;
        } else if (strcmp(pin->project, v.project) != 0) {
            snprintf(why, n, "the request names %s (held by project %s) "
                     "and %s (held by project %s): resources of two "
                     "projects cannot be used in one request",
                     pin->names[first], pin->project, pin->names[i],
                     v.project);
            pin->project[0] = '\0';
            return GR_EINVAL;
        }
    }
    return GR_OK;
}

bool
gr_pin_answer(struct gr *g, const struct gr_pin *pin, int status,
              const char *body, size_t len)
{
    const struct gr_shm_restab *rt;
    bool named = false;
    unsigned i;

    if (pin->n == 0 || (status != 403 && status != 404))
        return false;
    rt = res_map(g);
    for (i = 0; i < pin->n; i++) {
        const char *id = strchr(pin->names[i], '/') + 1;

        if (!mentions(body, len, id))
            continue;
        named = true;
        /* Gone (404), or refused by the project that holds it (a 403 of
         * the owner: it expired or was deleted elsewhere). */
        if (rt != NULL && (status == 404 || pin->project[0] != '\0'))
            (void)gr_shm_res_drop(rt, pin->names[i], gr_self_pid());
    }
    return named;
}

/* RFC 3339 ("2026-12-05T09:36:24.123456Z") to unix seconds; 0 if not. */
static int64_t
rfc3339(const char *s)
{
    struct tm tm;
    const char *end;

    if (s == NULL)
        return 0;
    memset(&tm, 0, sizeof(tm));
    end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return 0;
    while (*end == '.' || (*end >= '0' && *end <= '9'))
        end++;
    if (*end != 'Z')
        return 0;
    return (int64_t)timegm(&tm);
}

/* A CachedContent's usageMetadata.totalTokenCount; 0 when it has none. */
static int64_t
cache_tokens(struct json_object *c)
{
    struct json_object *um = gr_json_member(c, "usageMetadata",
                                            GR_JSON_OBJECT);
    int64_t n = 0;

    if (um == NULL || !gr_json_member_i64(um, "totalTokenCount", &n))
        return 0;
    return n;
}

void
gr_res_learn(struct gr *g, const char *method, const char *path,
             const char *project, int status, const char *body, size_t len)
{
    const struct gr_shm_restab *rt;
    struct json_object *o, *inner;
    char name[GR_RES_NAME_MAX];
    const char *nm, *exp;
    uint32_t kind;

    if (status < 200 || status > 299 || method == NULL || project == NULL ||
        project[0] == '\0')
        return;
    if (strcmp(method, "DELETE") == 0) {
        const char *q = strchr(path, '?');

        if (resource_of(path, q ? (size_t)(q - path) : strlen(path),
                        name) != 0 && (rt = res_map(g)) != NULL)
            (void)gr_shm_res_drop(rt, name, gr_self_pid());
        return;
    }
    if (strcmp(method, "POST") != 0 && strcmp(method, "PATCH") != 0)
        return;
    if (!mentions(body, len, "\"name\""))
        return;
    if ((o = gr_json_parse(body, len, 0, 0, NULL)) == NULL)
        return;
    /* An upload answers {"file": {...}}; the others the resource. */
    if ((inner = gr_json_member(o, "file", GR_JSON_OBJECT)) == NULL)
        inner = o;
    nm = gr_json_member_str(inner, "name", NULL);
    exp = gr_json_member_str(inner, "expirationTime", NULL);
    if (exp == NULL)
        exp = gr_json_member_str(inner, "expireTime", NULL);
    if (nm != NULL &&
        (kind = resource_of(nm, strlen(nm), name)) != 0 &&
        strcmp(name, nm) == 0 && (rt = res_map(g)) != NULL) {
        int rc = gr_shm_res_put(rt, kind, name, project,
                                rfc3339(exp) * GR_NS_PER_S, gr_self_pid(),
                                gr_shm_now_wall());

        if (rc == -ENOSPC)
            gr_seterr(g, "the resource record is full (%u records): %s "
                      "of project %s is not recorded, and requests naming "
                      "it are not pinned", rt->cap, name, project);
        /* A cache says its size: usageMetadata.totalTokenCount. */
        if (rc == 0 && kind == GR_RES_KIND_CACHE)
            (void)gr_res_set_tokens(g, name, cache_tokens(inner));
    }
    json_object_put(o);
}

int
gr_res_tokens(struct gr *g, const char *name, int64_t *tokens)
{
    const struct gr_shm_restab *rt;
    struct gr_shm_res_view v;

    *tokens = 0;
    if ((rt = res_map(g)) == NULL ||
        gr_shm_res_get(rt, name, gr_shm_now_wall(), &v) != 0)
        return -ENOENT;
    *tokens = v.tokens;
    return 0;
}

int
gr_res_set_tokens(struct gr *g, const char *name, int64_t tokens)
{
    const struct gr_shm_restab *rt;

    if (tokens <= 0 || tokens > UINT32_MAX)
        return -EINVAL;         /* 0 means "not known"; more: nonsense */
    if ((rt = res_map(g)) == NULL)
        return -ENOENT;
    return gr_shm_res_set_tokens(rt, name, (uint32_t)tokens, gr_self_pid());
}

/* ---- the public API --------------------------------------------------- */

int
gr_resource_note(struct gr *g, enum gr_res_kind kind, const char *name,
                 const char *project, int64_t expire_unix_s)
{
    const struct gr_shm_restab *rt;
    int rc;

    if (g == NULL || !gr_shm_res_name_ok(name) || project == NULL ||
        project[0] == '\0' || strnlen(project, GR_NAME_MAX) >= GR_NAME_MAX ||
        expire_unix_s < 0 || expire_unix_s > INT64_MAX / GR_NS_PER_S ||
        kind < GR_RES_FILE || kind > GR_RES_UPLOAD)
        return GR_EINVAL;
    if ((rt = res_map(g)) == NULL)
        return GR_ESHM;     /* the sentence is on the handle */
    rc = gr_shm_res_put(rt, (uint32_t)kind, name, project,
                        expire_unix_s * GR_NS_PER_S, gr_self_pid(),
                        gr_shm_now_wall());
    if (rc == -ENOSPC) {
        gr_seterr(g, "the resource record is full (%u records): %s is "
                  "not recorded", rt->cap, name);
        return GR_ENOROOM;
    }
    if (rc == -EAGAIN) {
        gr_seterr(g, "the record of %s stayed busy; not recorded", name);
        return GR_ENOROOM;
    }
    return rc == 0 ? GR_OK : GR_EINVAL;
}

int
gr_resource_owner(struct gr *g, const char *name, char project[GR_NAME_MAX])
{
    const struct gr_shm_restab *rt;
    struct gr_shm_res_view v;

    if (g == NULL || name == NULL || project == NULL)
        return GR_EINVAL;
    project[0] = '\0';
    if ((rt = res_map(g)) != NULL &&
        gr_shm_res_get(rt, name, gr_shm_now_wall(), &v) == 0)
        snprintf(project, GR_NAME_MAX, "%s", v.project);
    return GR_OK;
}

int
gr_resource_forget(struct gr *g, const char *name)
{
    const struct gr_shm_restab *rt;

    if (g == NULL || name == NULL)
        return GR_EINVAL;
    if ((rt = res_map(g)) != NULL)
        (void)gr_shm_res_drop(rt, name, gr_self_pid());
    return GR_OK;
}

int
gr_resource_pin(struct gr *g, const char *path, const char *body,
                size_t len, char project[GR_NAME_MAX])
{
    struct gr_pin pin;
    char why[512];
    int rc;

    if (g == NULL || project == NULL)
        return GR_EINVAL;
    rc = gr_pin_request(g, path, body, len, &pin, why, sizeof(why));
    if (rc != GR_OK)
        gr_seterr(g, "%s", why);
    memcpy(project, pin.project, GR_NAME_MAX);
    return rc;
}
