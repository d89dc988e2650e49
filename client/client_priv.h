/*
 * client_priv.h - the library's handle, shared by the files of client/.
 */
#ifndef GR_CLIENT_PRIV_H
#define GR_CLIENT_PRIV_H

#include "gemroute.h"
#include "table.h"
#include "resource.h"

#include <pthread.h>
#include <string.h>

struct gr {
    struct gr_shm t;
    uint64_t id;                /* unique per gr_open in this process: the
                                   key of the per-thread caches (a new
                                   mapping may land at an old address) */
    pthread_mutex_t err_lock;   /* guards err between threads */
    char err[256];
    /* The resource record (resource.c), mapped on first use under
     * res_lock; res_ready (release/acquire) publishes res. */
    pthread_mutex_t res_lock;
    _Atomic int res_ready;
    struct gr_shm_restab res;
};

/*
 * Resources (resource.c) for the calls: the names a request names, the
 * project they pin it to ("" none; GR_EINVAL with a sentence in why when
 * two projects), and dropping those a 403/404 answer says are gone.
 */
#define GR_PIN_MAX 8
struct gr_pin {
    char project[GR_NAME_MAX];
    unsigned n;                         /* names found (recorded or not) */
    char names[GR_PIN_MAX][GR_RES_NAME_MAX];
};
int gr_pin_request(struct gr *g, const char *path, const char *body,
                   size_t len, struct gr_pin *pin, char *why, size_t n);
/* After an answer to a pinned request: does it say one of the named
 * resources is gone or not this project's?  Then it is dropped from the
 * record (404) and true is returned: the request is at fault. */
bool gr_pin_answer(struct gr *g, const struct gr_pin *pin, int status,
                   const char *body, size_t len);
/* Record what a 2xx answer to path created (a file, cache, batch) or
 * changed (a cache's TTL), or drop what a DELETE removed. */
void gr_res_learn(struct gr *g, const char *method, const char *path,
                  const char *project, int status, const char *body,
                  size_t len);
void gr_res_close(struct gr *g);
/* The input tokens recorded for name (0: not known): 0, or -ENOENT when
 * the record holds no such resource (docs/CLIENT.md, "Media tokens"). */
int gr_res_tokens(struct gr *g, const char *name, int64_t *tokens);
/* Record them (1 .. UINT32_MAX): 0 or -errno. */
int gr_res_set_tokens(struct gr *g, const char *name, int64_t tokens);

/*
 * A thread-local read on every call: the initial-exec model reaches it
 * with one move from %fs, where the default model of a shared library
 * calls __tls_get_addr on every access.  Only for small variables: a
 * library loaded with dlopen() takes them from the little static TLS
 * space glibc keeps for that.
 */
#define GR_HOT_TLS __attribute__((tls_model("initial-exec")))

/*
 * Short texts copied on every call (names, key, URL) are kept padded
 * with zeros to a whole chunk and copied in whole chunks: a few moves,
 * not a call of memcpy with a length.  The buffers on both sides are a
 * multiple of a chunk long.
 */
#define GR_CHUNK 16

/* Keep src (at most n - 1 bytes of it) in dst[n] for gr_copy_chunks():
 * zeros from its end to the end of its last chunk, so that a copy
 * carries nothing of an older text.  Returns its length. */
static inline size_t
gr_keep_chunks(char *dst, const char *src, size_t n)
{
    size_t len = strnlen(src, n - 1);

    memcpy(dst, src, len);
    memset(dst + len, 0, (len / GR_CHUNK + 1) * GR_CHUNK - len);
    return len;
}

/* Copy a text of len bytes kept by gr_keep_chunks(), its NUL included
 * (the first chunk always: most texts fit in it). */
static inline void
gr_copy_chunks(char *dst, const char *src, size_t len)
{
    size_t i;

    memcpy(dst, src, GR_CHUNK);
    for (i = GR_CHUNK; i <= len; i += GR_CHUNK)
        memcpy(dst + i, src + i, GR_CHUNK);
}

/* Keep a sentence about the last failure on the handle. */
/*
 * The largest limit on dimension w (GR_W_*) of any project serving
 * model: min(limit, cap) over its cells that serve it.  INT64_MAX when
 * one is unlimited, -1 when no project serves it.  O(projects): read
 * only when no cell has room, never on the hot path.
 */
int64_t gr_largest_limit(struct gr *g, const char *model, unsigned w);

/*
 * The model to reserve on and call for name: the model an alias of the
 * config (`aliases`) names, copied into buf, or name itself when it is
 * no alias (a model, or a name the table does not know).
 */
const char *gr_model_resolve(struct gr *g, const char *name,
                             char buf[GR_NAME_MAX]);

/*
 * gr_classify() with the Pacific days the router published in table
 * header h (from the tz database) for a per-day cooldown; h NULL, or no
 * plausible day there: the built-in 2007 rule, as gr_classify().
 */
void gr_classify_in(struct gr_shm_header *h, int status, const char *body,
                    size_t len, int64_t now_wall_s, struct gr_verdict *out);

/* header.tpm_flags (GR_TPM_*), read once per call. */
uint32_t gr_tpm_flags(struct gr *g);

/*
 * Spend caps (lease.c, docs/CLIENT.md "Spend caps").  gr_reserve_on()
 * with the most output tokens the request allows (max_out <= 0: the
 * model's max_output from the price table), which the spend reserved
 * is computed from when a cap is configured; GR_ESPEND when a cap
 * refuses, with the sentence in gr_spend_refusal() (this thread's).
 */
struct gr_shm_spend_use;
int gr_reserve_spend(struct gr *g, const char *project, const char *model,
                     const struct gr_cost *cost, int64_t max_out,
                     int64_t deadline_ns, struct gr_lease *out);
const char *gr_spend_refusal(void);

/* The most output tokens a generateContent body allows (spend.c); -1 =
 * not set, or no cap configured (then nothing is parsed). */
int64_t gr_spend_max_out(struct gr *g, const char *body, size_t len);

/*
 * gr_commit() with the call's token usage for its cost: use NULL keeps
 * the spend reserved (nothing known of the bill), all zero gives it
 * back (nothing billed: an error answer).
 */
void gr_commit_spend(struct gr *g, struct gr_lease *lease,
                     const struct gr_usage *actual,
                     const struct gr_shm_spend_use *use);

void gr_seterr(struct gr *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A call's failure: the sentence into out->error and onto the handle. */
struct gr_response;
void gr_call_fail(struct gr *g, struct gr_response *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* This process's pid, kept current across fork(). */
uint32_t gr_self_pid(void);

/* A per-thread random state, seeded once per thread. */
uint64_t *gr_thread_rng(void);

/*
 * A retry's wait before attempt n + 1 (generate.c), full jitter: r
 * reduced to [0, min(cap, base * 2^(n-1))] ns, without overflow for any
 * base, cap (even INT64_MAX) and n.  0 when base <= 0.
 */
int64_t gr_backoff_ns(int64_t base, int64_t cap, int n, uint64_t r);

#endif
