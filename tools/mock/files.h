/*
 * files.h - the mock's Files API store: resumable upload sessions and the
 * files they become, each owned by the project whose key started it.
 *
 * Metadata is kept (name, type, size, SHA-256, times); the bytes are
 * hashed as they arrive and kept only for a file of at most
 * GR_MOCK_FILE_KEEP bytes (a batch job's JSONL input is read back), so
 * memory stays bounded by slots x GR_MOCK_FILE_KEEP.
 */
#ifndef GR_MOCK_FILES_H
#define GR_MOCK_FILES_H

#include "jsonw.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define GR_MOCK_FILE_ID_LEN 12   /* "files/" + 12 of [a-z0-9] */
#define GR_MOCK_UPLOAD_ID_LEN 32 /* opaque session id in the upload URL */
#define GR_MOCK_FILE_TTL_NS (INT64_C(48) * 3600 * 1000000000)
#define GR_MOCK_DEFAULT_MAX_FILES 1000
#define GR_MOCK_FILE_KEEP (1 << 20) /* bytes of a file kept (batch input) */
#define GR_MOCK_DEFAULT_MAX_FILE_BYTES (INT64_C(2) << 30)     /* 2 GiB */
#define GR_MOCK_DEFAULT_MAX_STORAGE_BYTES (INT64_C(20) << 30) /* 20 GiB */

struct gr_mock_files;

/* A copy of one file's metadata, taken under the store's lock. */
struct gr_mock_file_info {
    char id[GR_MOCK_FILE_ID_LEN + 1];
    char display[128]; /* "" = none */
    char mime[128];
    int64_t size;       /* bytes */
    int64_t created_ns; /* unix ns, the mock's (shifted) wall clock */
    int64_t updated_ns;
    char sha256_hex[65];
};

/* Per-project caps: at most max_files slots in all, max_file bytes per
 * file and max_storage bytes per project (uploads in flight included). */
int gr_mock_files_new(size_t n_projects, size_t max_files, int64_t max_file,
                      int64_t max_storage, struct gr_mock_files **out);
void gr_mock_files_free(struct gr_mock_files *fs);
void gr_mock_files_reset(struct gr_mock_files *fs);

/*
 * Start an upload of declared bytes (-1 = not said) for project.  0 and
 * upload_id, or -EFBIG (over max_file), -ENOSPC (project storage full),
 * -EMFILE (no slot left).  now_ns is the mock's wall clock.
 */
int gr_mock_files_start(struct gr_mock_files *fs, uint32_t project,
                        int64_t declared, const char *display, const char *mime,
                        int64_t now_ns,
                        char upload_id[GR_MOCK_UPLOAD_ID_LEN + 1]);

/* Bytes received so far by a session: >= 0, or -ENOENT. */
int64_t gr_mock_files_received(struct gr_mock_files *fs, const char *upload_id);

/* Add bytes to a session: 0, -ENOENT, or -EFBIG (past its size or cap;
 * the session is then cancelled and its storage returned). */
int gr_mock_files_feed(struct gr_mock_files *fs, const char *upload_id,
                       const void *data, size_t n);

/* Turn a session into an ACTIVE file: 0 and *out, -ENOENT, or -EINVAL
 * (fewer bytes than declared; the session stays open). */
int gr_mock_files_finalize(struct gr_mock_files *fs, const char *upload_id,
                           int64_t now_ns, struct gr_mock_file_info *out);

/* Drop a session (cancel); 0 or -ENOENT. */
int gr_mock_files_cancel(struct gr_mock_files *fs, const char *upload_id);

/* 0 and *out when project owns the live file id; -EACCES otherwise
 * (another project's, expired, or none: Google does not tell which). */
int gr_mock_files_get(struct gr_mock_files *fs, uint32_t project,
                      const char *id, int64_t now_ns,
                      struct gr_mock_file_info *out);
/* A copy of the bytes of the live file id of project: 0 with *data
 * (malloc'd), -EACCES, -E2BIG (larger than GR_MOCK_FILE_KEEP: not
 * kept), -ENOMEM. */
int gr_mock_files_bytes(struct gr_mock_files *fs, uint32_t project,
                        const char *id, int64_t now_ns, char **data,
                        size_t *len);
int gr_mock_files_delete(struct gr_mock_files *fs, uint32_t project,
                         const char *id, int64_t now_ns);

/*
 * Up to max files of project in upload order, from position *cursor (0
 * for the first page); *cursor is set to where the next page starts, or
 * 0 when there is none.  Returns how many were written to out.
 */
size_t gr_mock_files_list(struct gr_mock_files *fs, uint32_t project,
                          int64_t now_ns, uint64_t *cursor,
                          struct gr_mock_file_info *out, size_t max);

/* Live files and bytes of one project (for /mock/stats). */
void gr_mock_files_usage(struct gr_mock_files *fs, uint32_t project,
                         int64_t now_ns, int64_t *files, int64_t *bytes);

/* The File resource as Google writes it; base is "http://HOST:PORT". */
void gr_mock_file_json(struct gr_mock_jw *w, const char *key,
                       const struct gr_mock_file_info *f, const char *base,
                       const char *version);

/* RFC 3339 UTC with microseconds, as Google's Timestamp in JSON. */
void gr_mock_timestamp(int64_t unix_ns, char *out, size_t outlen);

#endif
