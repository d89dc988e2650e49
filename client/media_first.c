/*
 * media_first.c - when the estimate cannot read a request's media, ask
 * countTokens first, and remember per resource what it said
 * (docs/CLIENT.md, "Media tokens").
 *
 * A part the client cannot measure locally: a fileData part (its bytes
 * are at Google), a cachedContent (its contents too), or an inline part
 * of a format media.c does not read.  The record of resources
 * (shm/resource.h) keeps one token count per file or cache, shared by
 * every process of the host: a cache's from its create answer
 * (usageMetadata.totalTokenCount), a file's from a countTokens of its
 * part alone (when it is the one unknown thing of a request), else from
 * the countTokens of a whole request that names it alone among unknown
 * things.  Invariant protected: a count is recorded only when it can be
 * attributed to one resource (exactly one unknown, no unread inline
 * part), so a recorded count is never another part's tokens.
 */
#include "client_priv.h"
#include "json_priv.h"
#include "media_first.h"

#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
gr_media_need(struct gr *g, const struct gr_est *e, const struct gr_pin *pin,
              struct gr_media_need *nd)
{
    unsigned i, files = 0;

    memset(nd, 0, sizeof(*nd));
    for (i = 0; i < pin->n && i < GR_PIN_MAX; i++) {
        const char *name = pin->names[i];
        bool cache = strncmp(name, "cachedContents/", 15) == 0;
        int64_t t;

        if (!cache && strncmp(name, "files/", 6) != 0)
            continue;
        files += !cache;
        if (gr_res_tokens(g, name, &t) != 0) {
            nd->unrecorded++;
        } else if (t > 0) {
            nd->known += t;
        } else {
            if (nd->unknown++ == 0) {
                memcpy(nd->name, name, sizeof(nd->name));
                nd->cache = cache;
            }
        }
    }
    /* A fileData part naming no Files API file (a YouTube or gs:// URI):
     * only Google can count it. */
    nd->ask = e->unread > 0 || nd->unknown > 0 || nd->unrecorded > 0 ||
              (e->files > 0 && files == 0);
    /* One file part per file named (no YouTube part, no file twice), and
     * only one of them unknown: its part alone says its count exactly. */
    nd->part_alone = nd->unknown == 1 && !nd->cache && nd->unrecorded == 0 &&
                     e->unread == 0 && e->files == (int64_t)files;
}

/* The fileData object of a part in o (a tree), whose fileUri names file;
 * NULL when none. */
static struct json_object *
find_part(struct json_object *o, const char *file, int depth)
{
    size_t i, n;

    if (o == NULL || depth > GR_JSON_MAX_DEPTH)
        return NULL;
    if (json_object_is_type(o, json_type_array)) {
        n = json_object_array_length(o);
        for (i = 0; i < n; i++) {
            struct json_object *f = find_part(json_object_array_get_idx(o, i),
                                              file, depth + 1);

            if (f != NULL)
                return f;
        }
        return NULL;
    }
    if (!json_object_is_type(o, json_type_object))
        return NULL;
    {
        struct json_object *fd = gr_json_member2(o, "fileData", "file_data",
                                                 GR_JSON_OBJECT);
        const char *uri = gr_json_member_str(fd, "fileUri", NULL);
        size_t fl = strlen(file);

        if (uri == NULL)
            uri = gr_json_member_str(fd, "file_uri", NULL);
        /* "files/ID" itself, or a URI ending in "/files/ID" */
        if (uri != NULL && strlen(uri) >= fl &&
            strcmp(uri + strlen(uri) - fl, file) == 0 &&
            (strlen(uri) == fl || uri[strlen(uri) - fl - 1] == '/'))
            return fd;
    }
    {
        json_object_object_foreach(o, key, val) {
            struct json_object *f;

            (void)key;
            if ((f = find_part(val, file, depth + 1)) != NULL)
                return f;
        }
    }
    return NULL;
}

char *
gr_media_part_body(const char *body, size_t len, const char *model,
                   const char *file)
{
    struct json_object *root = gr_json_parse(body, len, 0, 0, NULL);
    struct json_object *fd = find_part(root, file, 0);
    struct json_object *w = NULL, *req, *contents, *content, *parts, *part;
    char name[GR_NAME_MAX + 8];
    char *s = NULL;

    if (fd == NULL)
        goto fail;
    snprintf(name, sizeof(name), "models/%s", model);
    w = json_object_new_object();
    req = json_object_new_object();
    contents = json_object_new_array();
    content = json_object_new_object();
    parts = json_object_new_array();
    part = json_object_new_object();
    if (w == NULL || req == NULL || contents == NULL || content == NULL ||
        parts == NULL || part == NULL) {
        json_object_put(req);
        json_object_put(contents);
        json_object_put(content);
        json_object_put(parts);
        json_object_put(part);
        goto fail;
    }
    /* each new object is owned by its parent once added; one that could
     * not be added is freed here */
    if (json_object_object_add(w, "generateContentRequest", req) != 0) {
        json_object_put(req);
        req = NULL;
    }
    if (req == NULL ||
        json_object_object_add(req, "model",
                               json_object_new_string(name)) != 0 ||
        json_object_object_add(req, "contents", contents) != 0) {
        json_object_put(contents);
        json_object_put(content);
        json_object_put(parts);
        json_object_put(part);
        goto fail;
    }
    if (json_object_array_add(contents, content) != 0) {
        json_object_put(content);
        json_object_put(parts);
        json_object_put(part);
        goto fail;
    }
    if (json_object_object_add(content, "parts", parts) != 0) {
        json_object_put(parts);
        json_object_put(part);
        goto fail;
    }
    if (json_object_array_add(parts, part) != 0) {
        json_object_put(part);
        goto fail;
    }
    if (json_object_object_add(part, "fileData", json_object_get(fd)) != 0) {
        json_object_put(fd);
        goto fail;
    }
    s = strdup(json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
fail:
    json_object_put(w);
    json_object_put(root);
    return s;
}

void
gr_media_learn(struct gr *g, const struct gr_media_need *nd,
               const struct gr_est *e, int64_t local, int64_t total,
               int64_t cached)
{
    int64_t t;

    if (nd->unknown != 1 || nd->unrecorded != 0 || e->unread != 0)
        return;                 /* not one resource's alone */
    if (nd->cache && cached > 0)
        t = cached;             /* Google says it: cachedContentTokenCount */
    else
        t = total - local - nd->known;
    if (t > 0)
        (void)gr_res_set_tokens(g, nd->name, t);
}
