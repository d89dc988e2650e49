/*
 * batchjobs.h - the mock's batch mode: models/{m}:batchGenerateContent
 * jobs, each owned by the project whose key submitted it, moving from
 * BATCH_STATE_PENDING to RUNNING to SUCCEEDED over configured times, and
 * the per-project, per-model limits of batch mode (tokens enqueued in
 * unfinished jobs, concurrent jobs).  Another project is answered 403 as
 * for files.  (client/batch.c is something else: batched leases.)
 */
#ifndef GR_MOCK_BATCHJOBS_H
#define GR_MOCK_BATCHJOBS_H

#include "jsonw.h"

#include <stddef.h>
#include <stdint.h>

#define GR_MOCK_BATCH_ID_LEN 16         /* "batches/" + 16 of [a-z0-9] */
#define GR_MOCK_MAX_BATCHES 1000
#define GR_MOCK_BATCH_MAX_REQUESTS 10000 /* inline requests in one job */

struct gr_mock_batchjobs;

/* Why a submission was refused with 429 (*which). */
enum { GR_MOCK_BATCH_TOKENS = 1, GR_MOCK_BATCH_JOBS = 2 };

/* The limits of one (project, model); GR_MOCK_UNLIMITED = none. */
struct gr_mock_batch_limits {
    int64_t tokens;     /* input tokens enqueued in unfinished jobs */
    int64_t jobs;       /* unfinished jobs */
};

/* The bytes of an input file ("files/ID" -> id) the submitting
 * project owns: 0 with a malloc'd copy, -EACCES (not the project's),
 * -E2BIG (the mock did not keep its bytes: over GR_MOCK_FILE_KEEP). */
typedef int (*gr_mock_batch_file_fn)(void *arg, const char *id,
                                     char **data, size_t *len);

int gr_mock_batchjobs_new(int64_t pending_ns, int64_t running_ns,
                          struct gr_mock_batchjobs **out);
void gr_mock_batchjobs_free(struct gr_mock_batchjobs *bs);
void gr_mock_batchjobs_reset(struct gr_mock_batchjobs *bs);

/*
 * Submit body (a BatchGenerateContentRequest) on model for project:
 * 0 with the Operation written to out; -EINVAL with a sentence in msg;
 * -EACCES (the input file is not the project's); -EAGAIN (a limit:
 * *which, *limit set); -EMFILE (the mock holds too many jobs).
 */
int gr_mock_batchjobs_create(struct gr_mock_batchjobs *bs, uint32_t project,
                             const char *model, const char *body, size_t len,
                             int64_t now_ns,
                             const struct gr_mock_batch_limits *lim,
                             gr_mock_batch_file_fn file_ok, void *file_arg,
                             struct gr_mock_buf *out, char *msg,
                             size_t msglen, int *which, int64_t *limit);

/* GET batches/{id}: 0 with the Operation in out, or -EACCES. */
int gr_mock_batchjobs_get(struct gr_mock_batchjobs *bs, uint32_t project,
                          const char *id, int64_t now_ns,
                          struct gr_mock_buf *out);

/* POST batches/{id}:cancel: 0 or -EACCES (a finished job stays). */
int gr_mock_batchjobs_cancel(struct gr_mock_batchjobs *bs, uint32_t project,
                             const char *id, int64_t now_ns);

/* DELETE batches/{id}: 0 or -EACCES. */
int gr_mock_batchjobs_delete(struct gr_mock_batchjobs *bs, uint32_t project,
                             const char *id);

/* GET batches: {"operations": [...]} of project's jobs. */
void gr_mock_batchjobs_list(struct gr_mock_batchjobs *bs, uint32_t project,
                            int64_t now_ns, struct gr_mock_buf *out);

/* Is id (after "batches/") a result file's ("batch-ID")?  Its JSONL
 * (one {"key", "response"} line per request) into out: 0 or -EACCES. */
int gr_mock_batchjobs_result_file(struct gr_mock_batchjobs *bs,
                                  uint32_t project, const char *file_id,
                                  int64_t now_ns, struct gr_mock_buf *out);

/* One project's batch mode, for /mock/stats. */
struct gr_mock_batch_usage {
    int64_t unfinished;         /* jobs PENDING or RUNNING now */
    int64_t tokens;             /* their input tokens */
    int64_t done;               /* jobs held that ended */
    int64_t submitted;          /* jobs accepted, ever (since a reset) */
    int64_t quota_429;          /* submissions refused for a limit */
};
void gr_mock_batchjobs_usage(struct gr_mock_batchjobs *bs, uint32_t project,
                             int64_t now_ns, struct gr_mock_batch_usage *u);

#endif
