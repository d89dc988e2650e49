/*
 * files.c - the Files API store: upload sessions and ACTIVE files in a
 * fixed table of slots under one mutex.
 *
 * Invariants protected: a file is visible only to the project that
 * uploaded it, and any other project cannot tell it from a missing one;
 * a project's bytes (files plus what its open sessions declared or have
 * received) never exceed max_storage, no file exceeds max_file, and the
 * table never holds more than max_files slots, so the store's memory is
 * fixed at start.  Files and sessions expire 48 h after creation on the
 * mock's wall clock (clock offset included), and are purged lazily.
 */
#include "files.h"

#include "mock.h"
#include "sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SLOT_FREE = 0, SLOT_SESSION, SLOT_FILE };

struct slot {
    int kind; /* SLOT_* */
    uint32_t project;
    uint64_t seq; /* upload order, from 1 */
    char id[GR_MOCK_FILE_ID_LEN + 1];
    char upload_id[GR_MOCK_UPLOAD_ID_LEN + 1];
    char display[128];
    char mime[128];
    int64_t declared; /* bytes the start said, -1 = not said */
    int64_t received; /* bytes fed so far */
    int64_t reserved; /* bytes counted against the project's storage */
    int64_t created_ns;
    int64_t updated_ns;
    struct gr_mock_sha256 sha;
    char hex[65];
    char *bytes; /* the first GR_MOCK_FILE_KEEP bytes (a batch's input
                    file is read back); NULL past that */
    int too_big; /* more than GR_MOCK_FILE_KEEP came: bytes dropped */
};

struct gr_mock_files {
    pthread_mutex_t lock; /* guards everything below */
    size_t n_slots;
    struct slot *slots;
    size_t n_projects;
    int64_t *used; /* bytes per project */
    int64_t max_file;
    int64_t max_storage;
    uint64_t next_seq;
};

int
gr_mock_files_new(size_t n_projects, size_t max_files, int64_t max_file,
                  int64_t max_storage, struct gr_mock_files **out)
{
    struct gr_mock_files *fs;
    int rc;

    *out = NULL;
    fs = calloc(1, sizeof *fs);
    if (fs == NULL)
        return -ENOMEM;
    fs->slots = calloc(max_files ? max_files : 1, sizeof *fs->slots);
    fs->used = calloc(n_projects ? n_projects : 1, sizeof *fs->used);
    if (fs->slots == NULL || fs->used == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = pthread_mutex_init(&fs->lock, NULL);
    if (rc != 0) {
        rc = -rc;
        goto fail;
    }
    fs->n_slots = max_files;
    fs->n_projects = n_projects;
    fs->max_file = max_file;
    fs->max_storage = max_storage;
    fs->next_seq = 1;
    *out = fs;
    return 0;

fail:
    free(fs->slots);
    free(fs->used);
    free(fs);
    return rc;
}

void
gr_mock_files_free(struct gr_mock_files *fs)
{
    if (fs == NULL)
        return;
    gr_mock_files_reset(fs);
    pthread_mutex_destroy(&fs->lock);
    free(fs->slots);
    free(fs->used);
    free(fs);
}

void
gr_mock_files_reset(struct gr_mock_files *fs)
{
    size_t i;

    pthread_mutex_lock(&fs->lock);
    for (i = 0; i < fs->n_slots; i++)
        free(fs->slots[i].bytes);
    memset(fs->slots, 0, fs->n_slots * sizeof *fs->slots);
    memset(fs->used, 0, fs->n_projects * sizeof *fs->used);
    fs->next_seq = 1;
    pthread_mutex_unlock(&fs->lock);
}

static void
drop_locked(struct gr_mock_files *fs, struct slot *s)
{
    if (s->project < fs->n_projects)
        fs->used[s->project] -= s->reserved;
    free(s->bytes);
    memset(s, 0, sizeof *s);
}

/* Forget what expired 48 h after it was created. */
static void
purge_locked(struct gr_mock_files *fs, int64_t now_ns)
{
    size_t i;

    for (i = 0; i < fs->n_slots; i++) {
        struct slot *s = &fs->slots[i];

        if (s->kind != SLOT_FREE &&
            s->created_ns + GR_MOCK_FILE_TTL_NS <= now_ns)
            drop_locked(fs, s);
    }
}

static void
random_id(char *out, size_t n)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t i;

    for (i = 0; i < n; i++)
        out[i] = abc[gr_mock_rand() % 36];
    out[n] = '\0';
}

static struct slot *
by_upload_locked(struct gr_mock_files *fs, const char *upload_id)
{
    size_t i;

    for (i = 0; i < fs->n_slots; i++)
        if (fs->slots[i].kind == SLOT_SESSION &&
            strcmp(fs->slots[i].upload_id, upload_id) == 0)
            return &fs->slots[i];
    return NULL;
}

static struct slot *
by_id_locked(struct gr_mock_files *fs, const char *id)
{
    size_t i;

    for (i = 0; i < fs->n_slots; i++)
        if (fs->slots[i].kind == SLOT_FILE && strcmp(fs->slots[i].id, id) == 0)
            return &fs->slots[i];
    return NULL;
}

int
gr_mock_files_start(struct gr_mock_files *fs, uint32_t project,
                    int64_t declared, const char *display, const char *mime,
                    int64_t now_ns, char upload_id[GR_MOCK_UPLOAD_ID_LEN + 1])
{
    struct slot *s = NULL;
    int64_t reserve = declared > 0 ? declared : 0;
    size_t i;
    int rc = 0;

    if (project >= fs->n_projects)
        return -EINVAL;
    if (declared > fs->max_file)
        return -EFBIG;
    pthread_mutex_lock(&fs->lock);
    purge_locked(fs, now_ns);
    if (fs->used[project] + reserve > fs->max_storage) {
        rc = -ENOSPC;
        goto out;
    }
    for (i = 0; i < fs->n_slots && s == NULL; i++)
        if (fs->slots[i].kind == SLOT_FREE)
            s = &fs->slots[i];
    if (s == NULL) {
        rc = -EMFILE;
        goto out;
    }
    s->kind = SLOT_SESSION;
    s->project = project;
    s->seq = fs->next_seq++;
    /* Ids are drawn until unique; 36^12 makes a retry rare. */
    do
        random_id(s->id, GR_MOCK_FILE_ID_LEN);
    while (by_id_locked(fs, s->id) != NULL);
    do
        random_id(s->upload_id, GR_MOCK_UPLOAD_ID_LEN);
    while (by_upload_locked(fs, s->upload_id) != s);
    snprintf(s->display, sizeof s->display, "%s", display);
    snprintf(s->mime, sizeof s->mime, "%s", mime);
    s->declared = declared;
    s->reserved = reserve;
    s->created_ns = now_ns;
    s->updated_ns = now_ns;
    gr_mock_sha256_init(&s->sha);
    fs->used[project] += reserve;
    memcpy(upload_id, s->upload_id, GR_MOCK_UPLOAD_ID_LEN + 1);
out:
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int64_t
gr_mock_files_received(struct gr_mock_files *fs, const char *upload_id)
{
    struct slot *s;
    int64_t n;

    pthread_mutex_lock(&fs->lock);
    s = by_upload_locked(fs, upload_id);
    n = s != NULL ? s->received : -ENOENT;
    pthread_mutex_unlock(&fs->lock);
    return n;
}

int
gr_mock_files_feed(struct gr_mock_files *fs, const char *upload_id,
                   const void *data, size_t n)
{
    struct slot *s;
    int64_t after;
    int rc = 0;

    pthread_mutex_lock(&fs->lock);
    s = by_upload_locked(fs, upload_id);
    if (s == NULL) {
        rc = -ENOENT;
        goto out;
    }
    after = s->received + (int64_t)n;
    if (after > fs->max_file || (s->declared >= 0 && after > s->declared)) {
        drop_locked(fs, s);
        rc = -EFBIG;
        goto out;
    }
    if (s->declared < 0) {
        /* Size not declared: the bytes count as they come. */
        if (fs->used[s->project] + (int64_t)n > fs->max_storage) {
            drop_locked(fs, s);
            rc = -ENOSPC;
            goto out;
        }
        fs->used[s->project] += (int64_t)n;
        s->reserved += (int64_t)n;
    }
    gr_mock_sha256_add(&s->sha, data, n);
    if (after > GR_MOCK_FILE_KEEP) {
        s->too_big = 1;
        free(s->bytes);
        s->bytes = NULL;
    } else if (!s->too_big && n > 0) {
        char *nb = realloc(s->bytes, (size_t)after);

        if (nb == NULL) {
            s->too_big = 1; /* out of memory: the bytes are not kept */
            free(s->bytes);
            s->bytes = NULL;
        } else {
            memcpy(nb + s->received, data, n);
            s->bytes = nb;
        }
    }
    s->received = after;
out:
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

static void
info_of(const struct slot *s, struct gr_mock_file_info *out)
{
    memcpy(out->id, s->id, sizeof out->id);
    memcpy(out->display, s->display, sizeof out->display);
    memcpy(out->mime, s->mime, sizeof out->mime);
    out->size = s->received;
    out->created_ns = s->created_ns;
    out->updated_ns = s->updated_ns;
    memcpy(out->sha256_hex, s->hex, sizeof out->sha256_hex);
}

int
gr_mock_files_finalize(struct gr_mock_files *fs, const char *upload_id,
                       int64_t now_ns, struct gr_mock_file_info *out)
{
    static const char hexd[] = "0123456789abcdef";
    unsigned char dig[32];
    struct slot *s;
    int rc = 0, i;

    pthread_mutex_lock(&fs->lock);
    s = by_upload_locked(fs, upload_id);
    if (s == NULL) {
        rc = -ENOENT;
        goto out;
    }
    if (s->declared >= 0 && s->received != s->declared) {
        rc = -EINVAL;
        goto out;
    }
    gr_mock_sha256_end(&s->sha, dig);
    for (i = 0; i < 32; i++) {
        s->hex[2 * i] = hexd[dig[i] >> 4];
        s->hex[2 * i + 1] = hexd[dig[i] & 15];
    }
    s->hex[64] = '\0';
    fs->used[s->project] += s->received - s->reserved;
    s->reserved = s->received;
    s->kind = SLOT_FILE;
    s->upload_id[0] = '\0';
    s->updated_ns = now_ns > s->created_ns ? now_ns : s->created_ns;
    info_of(s, out);
out:
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int
gr_mock_files_cancel(struct gr_mock_files *fs, const char *upload_id)
{
    struct slot *s;
    int rc = 0;

    pthread_mutex_lock(&fs->lock);
    s = by_upload_locked(fs, upload_id);
    if (s == NULL)
        rc = -ENOENT;
    else
        drop_locked(fs, s);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int
gr_mock_files_get(struct gr_mock_files *fs, uint32_t project, const char *id,
                  int64_t now_ns, struct gr_mock_file_info *out)
{
    struct slot *s;
    int rc = 0;

    pthread_mutex_lock(&fs->lock);
    purge_locked(fs, now_ns);
    s = by_id_locked(fs, id);
    if (s == NULL || s->project != project)
        rc = -EACCES;
    else if (out != NULL)
        info_of(s, out);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int
gr_mock_files_bytes(struct gr_mock_files *fs, uint32_t project,
                    const char *id, int64_t now_ns, char **data, size_t *len)
{
    struct slot *s;
    int rc = 0;

    *data = NULL;
    *len = 0;
    pthread_mutex_lock(&fs->lock);
    purge_locked(fs, now_ns);
    s = by_id_locked(fs, id);
    if (s == NULL || s->project != project) {
        rc = -EACCES;
    } else if (s->too_big) {
        rc = -E2BIG;
    } else {
        *data = malloc(s->received > 0 ? (size_t)s->received : 1);
        if (*data == NULL) {
            rc = -ENOMEM;
        } else {
            if (s->received > 0)
                memcpy(*data, s->bytes, (size_t)s->received);
            *len = (size_t)s->received;
        }
    }
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

int
gr_mock_files_delete(struct gr_mock_files *fs, uint32_t project, const char *id,
                     int64_t now_ns)
{
    struct slot *s;
    int rc = 0;

    pthread_mutex_lock(&fs->lock);
    purge_locked(fs, now_ns);
    s = by_id_locked(fs, id);
    if (s == NULL || s->project != project)
        rc = -EACCES;
    else
        drop_locked(fs, s);
    pthread_mutex_unlock(&fs->lock);
    return rc;
}

size_t
gr_mock_files_list(struct gr_mock_files *fs, uint32_t project, int64_t now_ns,
                   uint64_t *cursor, struct gr_mock_file_info *out, size_t max)
{
    uint64_t from = *cursor, best;
    size_t n = 0, i;
    struct slot *pick;

    pthread_mutex_lock(&fs->lock);
    purge_locked(fs, now_ns);
    *cursor = 0;
    /* Selection by seq: O(slots * page), fine for a mock's table. */
    while (n <= max) {
        pick = NULL;
        best = UINT64_MAX;
        for (i = 0; i < fs->n_slots; i++) {
            struct slot *s = &fs->slots[i];

            if (s->kind == SLOT_FILE && s->project == project &&
                s->seq >= from && s->seq < best) {
                best = s->seq;
                pick = s;
            }
        }
        if (pick == NULL)
            break;
        if (n == max) {
            *cursor = pick->seq; /* there is more: the next page starts here */
            break;
        }
        info_of(pick, &out[n++]);
        from = pick->seq + 1;
    }
    pthread_mutex_unlock(&fs->lock);
    return n;
}

void
gr_mock_files_usage(struct gr_mock_files *fs, uint32_t project, int64_t now_ns,
                    int64_t *files, int64_t *bytes)
{
    size_t i;

    *files = 0;
    *bytes = 0;
    pthread_mutex_lock(&fs->lock);
    purge_locked(fs, now_ns);
    for (i = 0; i < fs->n_slots; i++)
        if (fs->slots[i].kind == SLOT_FILE && fs->slots[i].project == project)
            (*files)++;
    if (project < fs->n_projects)
        *bytes = fs->used[project];
    pthread_mutex_unlock(&fs->lock);
}

void
gr_mock_timestamp(int64_t unix_ns, char *out, size_t outlen)
{
    time_t t = (time_t)(unix_ns / 1000000000);
    long us = (long)((unix_ns % 1000000000) / 1000);
    struct tm tm;
    char day[32];

    if (unix_ns < 0 || gmtime_r(&t, &tm) == NULL) {
        snprintf(out, outlen, "1970-01-01T00:00:00Z");
        return;
    }
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%06ldZ", day, us);
}

static void
base64(const char *in, size_t n, char *out)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16 |
                     (uint32_t)(unsigned char)in[i + 1] << 8 |
                     (unsigned char)in[i + 2];

        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;

        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
}

void
gr_mock_file_json(struct gr_mock_jw *w, const char *key,
                  const struct gr_mock_file_info *f, const char *base,
                  const char *version)
{
    char name[32], t[48], b64[96], size[24], uri[320];

    snprintf(name, sizeof name, "files/%s", f->id);
    snprintf(size, sizeof size, "%lld", (long long)f->size);
    snprintf(uri, sizeof uri, "%s/%s/files/%s", base, version, f->id);
    gr_mock_jw_object(w, key);
    gr_mock_jw_str(w, "name", name);
    if (f->display[0] != '\0')
        gr_mock_jw_str(w, "displayName", f->display);
    gr_mock_jw_str(w, "mimeType", f->mime);
    gr_mock_jw_str(w, "sizeBytes", size);
    gr_mock_timestamp(f->created_ns, t, sizeof t);
    gr_mock_jw_str(w, "createTime", t);
    gr_mock_timestamp(f->updated_ns, t, sizeof t);
    gr_mock_jw_str(w, "updateTime", t);
    gr_mock_timestamp(f->created_ns + GR_MOCK_FILE_TTL_NS, t, sizeof t);
    gr_mock_jw_str(w, "expirationTime", t);
    /* bytes in proto JSON are base64: Google's value is base64 of the
     * lowercase hex digest. */
    base64(f->sha256_hex, 64, b64);
    gr_mock_jw_str(w, "sha256Hash", b64);
    gr_mock_jw_str(w, "uri", uri);
    gr_mock_jw_str(w, "state", "ACTIVE");
    gr_mock_jw_str(w, "source", "UPLOADED");
    gr_mock_jw_end(w);
}
