/*
 * gemroute.h - the public API of libgemroute.
 *
 * A process attaches to the table a router publishes in shared memory,
 * reserves capacity on some Google Cloud project before each Gemini call,
 * makes the call with the key and URL the lease names, then settles the
 * lease with what the call really used and reports what the answer means
 * for that project.  Nothing here describes the table's layout.
 *
 * Errors: functions return enum gr_err; the handle keeps a sentence about
 * the last failure (gr_errstr()).
 */
#ifndef GEMROUTE_H
#define GEMROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * GR_API marks each function of the public API.  libgemroute.so is built
 * with -fvisibility=hidden and a version script (client/libgemroute.map)
 * that lists exactly these functions: a declaration added here needs
 * GR_API and a line in the map (tests/install/run_exports.sh checks both).
 */
#if defined(__GNUC__) && __GNUC__ >= 4
#define GR_API __attribute__((visibility("default")))
#else
#define GR_API
#endif

struct gr;

enum gr_err {
    GR_OK = 0,
    GR_ENOROOM,     /* no cell has room now; lease->retry_at_ns says when */
    GR_EDEADLINE,   /* the deadline passed before room came */
    GR_ENOMODEL,    /* no project serves that model */
    GR_EINVAL,      /* bad argument */
    GR_ESHM,        /* the segment is missing, foreign or damaged */
    GR_ESTALE,      /* the lease is no longer valid (reaped or reused) */
    GR_ECALL,       /* the call failed; see the response for why */
    GR_ENOMEM,
    GR_ETOOBIG,     /* the request costs more than the largest window of
                       any project serving the model: it can never fit */
    GR_ESPEND,      /* a spend cap (the pool's, or every project's that
                       could serve the call) is reached for the Pacific
                       day or month: gr_errstr() names the cap */
};

/* The five quota dimensions Gemini enforces per project and model. */
enum gr_dim {
    GR_DIM_RPM = 0,     /* requests per minute */
    GR_DIM_TPM = 1,     /* input tokens per minute */
    GR_DIM_RPD = 2,     /* requests per Pacific calendar day */
    GR_DIM_IPM = 3,     /* images generated per minute (image models) */
    GR_DIM_TPD = 4,     /* input tokens per Pacific calendar day (models
                           that have a daily token limit) */
    GR_NDIMS = 5,
};

#define GR_DIM_BIT(d) (1u << (d))

/* What one call will cost, before it is made. */
struct gr_cost {
    int64_t requests;   /* usually 1 */
    int64_t tokens;     /* estimated input tokens */
    int64_t images;     /* images the call asks to generate (IPM);
                           input images cost tokens, not images */
};

#define GR_NAME_MAX 64
#define GR_KEY_MAX 128
#define GR_URL_MAX 256

/*
 * A reservation.  The caller reads project, key and base_url; the rest is
 * the library's and must not be changed between reserve and commit.
 */
struct gr_lease {
    char project[GR_NAME_MAX];
    char model[GR_NAME_MAX];
    char key[GR_KEY_MAX];       /* secret: never log it */
    char base_url[GR_URL_MAX];
    char proxy[GR_URL_MAX];     /* router.proxy; "" = from the environment
                                   (may hold a password: never log it) */
    int64_t retry_at_ns;        /* GR_ENOROOM/GR_EDEADLINE: when room
                                   comes, CLOCK_MONOTONIC; 0 = unknown */
    /* library-private */
    uint32_t slot;              /* lease slot in the table */
    uint32_t cell;              /* cell index */
    uint64_t ticket;            /* lease slot sequence at claim */
    uint32_t project_gen;       /* project slot generation at reserve */
    uint32_t key_index;         /* which of the project's keys (in what
                                   was padding: the size is unchanged) */
    int64_t admitted_ns;        /* CLOCK_MONOTONIC */
    struct gr_cost cost;        /* what was admitted */
    void *batch;                /* the thread's batch lease this call was
                                   taken from, or NULL */
    uint64_t batch_serial;      /* which use of that batch record */
};

/* What a settled call really used. */
struct gr_usage {
    int64_t tokens;             /* input tokens Google counted
                                   (promptTokenCount +
                                   toolUsePromptTokenCount); < 0 =
                                   unknown (keep the estimate) */
    int64_t images;             /* images generated; < 0 = unknown */
    int64_t first_byte_ns;      /* CLOCK_MONOTONIC instant the answer's
                                   first byte arrived; 0 = now */
};

/* What an answer means, from gr_classify(). */
enum gr_class {
    GR_CLASS_OK = 0,
    GR_CLASS_QUOTA,     /* 429: a quota spent (dims 0: no details) */
    GR_CLASS_OVERLOAD,  /* 503: the model is overloaded */
    GR_CLASS_SERVER,    /* 500/504, timeouts, connection errors */
    GR_CLASS_AUTH,      /* bad or revoked key */
    GR_CLASS_REQUEST,   /* the request itself is at fault */
    GR_CLASS_MODEL,     /* the model does not exist for this project */
    GR_CLASS_UNKNOWN,
};

enum gr_disable {
    GR_DISABLE_NONE = 0,
    GR_DISABLE_CELL,    /* this project-model */
    GR_DISABLE_PROJECT, /* every model of this project */
    GR_DISABLE_KEY,     /* the key the call used; the project too when it
                           was its last good key */
};

/* Where a cooldown came from. */
enum gr_cool_src {
    GR_COOL_NONE = 0,
    GR_COOL_RETRYINFO,  /* google.rpc.RetryInfo.retryDelay */
    GR_COOL_MESSAGE,    /* "Please retry in Ns." in the message */
    GR_COOL_BACKOFF,    /* computed: nothing machine-readable */
    GR_COOL_MIDNIGHT,   /* a per-day quota: until Pacific midnight */
};

#define GR_MAX_QUOTA_IDS 4
#define GR_QUOTA_ID_MAX 128

struct gr_verdict {
    int status;                     /* HTTP status; 0 = no answer */
    enum gr_class cls;
    unsigned dims;                  /* GR_DIM_BIT() of each dim named */
    double cooldown_s;              /* from now; 0 = none */
    enum gr_cool_src cooldown_src;
    enum gr_disable disable;
    bool retryable;                 /* worth trying again (elsewhere) */
    int64_t learned[GR_NDIMS];      /* limit Google stated; -1 = none */
    unsigned n_quota_ids;
    char quota_ids[GR_MAX_QUOTA_IDS][GR_QUOTA_ID_MAX];
    char reason[192];               /* one sentence */
};

/*
 * Classify an answer: (HTTP status, body) -> what it means.  status 0
 * means no answer came (timeout, connection error).  now_wall_s is the
 * unix time used for per-day cooldowns (until the next Pacific midnight).
 * Never fails: unreadable bodies are classified by status alone.
 */
GR_API
void gr_classify(int status, const char *body, size_t len, int64_t now_wall_s,
                 struct gr_verdict *out);

/*
 * The HTTP status an answer's body states: error.code of an error body
 * (also wrapped in an array or an SSE event), 200 for a JSON or SSE body
 * without an error, -1 when the body does not say (empty, not JSON, too
 * large).  For tools that classify a saved body without its status line.
 */
GR_API
int gr_body_status(const char *body, size_t len);

GR_API
const char *gr_class_name(enum gr_class c);
GR_API
const char *gr_dim_name(enum gr_dim d);

/*
 * Attach to the table.  shm_name NULL means $GEMROUTE_SHM, else
 * "/gemroute".  On failure returns NULL and writes a sentence into err.
 */
GR_API
struct gr *gr_open(const char *shm_name, char *err, size_t errlen);
GR_API
void gr_close(struct gr *g);
GR_API
const char *gr_errstr(const struct gr *g);

/*
 * Reserve cost on some project serving model.  deadline_ns (CLOCK_MONOTONIC)
 * 0 never blocks: GR_ENOROOM with out->retry_at_ns.  A deadline in the
 * future sleeps until room comes or it passes (GR_EDEADLINE).
 */
GR_API
int gr_reserve(struct gr *g, const char *model, const struct gr_cost *cost,
               int64_t deadline_ns, struct gr_lease *out);

/*
 * Settle a lease with what the call used.  From usage->first_byte_ns on,
 * the admission expires one window later.  A second commit, or a commit
 * of a lease the router already settled, does nothing.
 */
GR_API
void gr_commit(struct gr *g, struct gr_lease *lease,
               const struct gr_usage *actual);

/* Tell the table what the answer to this lease's call means.  Report
 * before gr_commit: while the lease is open, its project's slot cannot be
 * given to another project, so the report cannot land on the wrong one. */
GR_API
void gr_report(struct gr *g, const struct gr_lease *lease,
               const struct gr_verdict *verdict);

/*
 * A health probe: GET {base_url}/v1beta/models/{model} with key (in its
 * header), the cheapest call Google offers.  GR_OK when it answered 2xx
 * (the key, and the model for that project, are good), GR_ECALL with
 * what the answer meant in *out otherwise, GR_EINVAL for a bad argument.
 * The router probes the keys and cells it holds disabled with it; any
 * program may.  proxy NULL or "" means the environment's.
 */
GR_API
int gr_probe(const char *base_url, const char *proxy, const char *key,
             const char *model, int64_t deadline_ns, struct gr_verdict *out);

/* CLOCK_MONOTONIC now, in ns: the clock deadlines are given in. */
GR_API
int64_t gr_now_ns(void);

/* ---- calls: reserve, HTTP, classify, settle, report, retry ---------- */

/*
 * How one call may be made.  A zeroed struct (or NULL) means the
 * defaults given in brackets.  Every instant is CLOCK_MONOTONIC in ns
 * (gr_now_ns()).
 */
struct gr_call_opts {
    int64_t deadline_ns;        /* the call fails after this instant
                                   [now + 120 s] */
    int64_t queue_deadline_ns;  /* stop waiting for room at this instant,
                                   even if the deadline is later: nothing
                                   was sent if attempts == 0 [deadline] */
    int max_attempts;           /* HTTP calls at most [8] */
    int64_t est_tokens;         /* input tokens to reserve; <= 0 estimates
                                   from the request (docs/CLIENT.md) */
    bool count_tokens_first;    /* ask countTokens for the estimate */
    int64_t backoff_base_ns;    /* first retry waits up to this [100 ms] */
    int64_t backoff_cap_ns;     /* no wait longer than this [10 s] */
    int fallback;               /* GR_FALLBACK_*: may another model of
                                   the requested one's chain answer when
                                   its quota is spent [the model's
                                   fallback_allow] */
    int cache;                  /* GR_CACHE_*: the shared response cache
                                   [embeddings and countTokens always,
                                   generateContent at temperature 0] */
};

/* gr_call_opts.fallback */
#define GR_FALLBACK_DEFAULT 0   /* as the model's fallback_allow says */
#define GR_FALLBACK_ALLOW 1
#define GR_FALLBACK_NEVER (-1)

/* gr_call_opts.cache */
#define GR_CACHE_DEFAULT 0
#define GR_CACHE_USE 1          /* also a non-deterministic generateContent */
#define GR_CACHE_BYPASS (-1)    /* neither read nor written */

/* Token counts an answer reported (usageMetadata); -1 = not reported. */
struct gr_tokens {
    int64_t prompt;             /* promptTokenCount: what TPM counts */
    int64_t candidates;         /* candidatesTokenCount */
    int64_t thoughts;           /* thoughtsTokenCount */
    int64_t total;              /* totalTokenCount */
};

/*
 * The outcome of a call.  Filled by every call below, on success and on
 * failure alike (a failure keeps the last answer); release it with
 * gr_response_free().  A call overwrites *out without freeing it.
 */
struct gr_response {
    int status;                 /* HTTP status of the last answer; 0 =
                                   none (not sent, timeout, no server) */
    char *body;                 /* the last answer, NUL-terminated (an
                                   SSE stream as received); may be NULL */
    size_t len;                 /* bytes in body */
    char project[GR_NAME_MAX];  /* project that gave the last answer */
    int attempts;               /* HTTP calls made */
    int n_429;                  /* answers with status 429 among them */
    int64_t queued_ns;          /* time spent waiting for room */
    int64_t elapsed_ns;         /* the whole call, retries included */
    int64_t retry_at_ns;        /* GR_EDEADLINE while queued: when room
                                   was expected (0 = unknown) */
    struct gr_tokens usage;     /* of the last answer */
    struct gr_verdict verdict;  /* what the last answer meant */
    char error[256];            /* why the call failed; "" on success */
    char model[GR_NAME_MAX];    /* the model that answered: the one asked
                                   for, or one of its fallback chain */
    bool cached;                /* the answer came from the shared cache:
                                   no quota spent, attempts == 0 */
};

GR_API
void gr_response_free(struct gr_response *r);

/* A short name for an enum gr_err value ("ok", "deadline", ...). */
GR_API
const char *gr_err_name(int err);

/*
 * The answer's text: the text parts of the first candidate (thought
 * parts left out), joined; for a stream, joined over its events.
 * malloc'd, or NULL when there is none.
 */
GR_API
char *gr_response_text(const struct gr_response *r);

/*
 * Called once per event of a stream, with that event's JSON (one
 * GenerateContentResponse), NUL-terminated.  Return 0 to go on; any
 * other value stops the stream and the call fails with GR_ECALL.
 */
typedef int (*gr_chunk_fn)(void *arg, const char *json, size_t len);

/*
 * models/{model}:generateContent with request_json (the request body).
 * Returns GR_OK (a 2xx answer), GR_ECALL (the answer is an error that is
 * not worth retrying, or attempts ran out: see out->error), GR_EDEADLINE
 * (the deadline passed: no room came in time, or no answer came in
 * time), GR_ENOMODEL, GR_EINVAL, GR_ESHM, GR_ENOMEM.  Thread-safe: one
 * struct gr may serve many threads.
 */
GR_API
int gr_generate(struct gr *g, const char *model, const char *request_json,
                const struct gr_call_opts *opts, struct gr_response *out);

/*
 * models/{model}:streamGenerateContent?alt=sse: on_chunk sees each event
 * as it arrives.  A call that failed before any event reached on_chunk is
 * retried like gr_generate; once one did, it is not retried.
 */
GR_API
int gr_stream(struct gr *g, const char *model, const char *request_json,
              const struct gr_call_opts *opts, gr_chunk_fn on_chunk,
              void *arg, struct gr_response *out);

/*
 * models/{model}:countTokens.  out->usage.prompt holds totalTokens.
 * countTokens has its own quota at Google: the lease it takes costs no
 * request or token of the minute windows.
 */
GR_API
int gr_count_tokens(struct gr *g, const char *model,
                    const char *request_json,
                    const struct gr_call_opts *opts,
                    struct gr_response *out);

/* models/{model}:embedContent; one request. */
GR_API
int gr_embed(struct gr *g, const char *model, const char *request_json,
             const struct gr_call_opts *opts, struct gr_response *out);

/* models/{model}:batchEmbedContents; as many requests as it embeds. */
GR_API
int gr_batch_embed(struct gr *g, const char *model, const char *request_json,
                   const struct gr_call_opts *opts, struct gr_response *out);

/* ---- forwarding any route (for gemroute-gateway) ---------------------- */

/* What a forwarded request costs and how its usage is read. */
enum gr_fwd_kind {
    GR_FWD_GENERATE = 0,    /* generateContent-like: 1 request, tokens
                               estimated from the parts' text */
    GR_FWD_COUNT,           /* countTokens: nothing of the windows */
    GR_FWD_EMBED,           /* embedContent: 1 request */
    GR_FWD_BATCH_EMBED,     /* batchEmbedContents: 1 request per entry */
    GR_FWD_OPENAI,          /* Google's OpenAI-compatible API: the key
                               goes as a Bearer token; 1 request, tokens
                               estimated from the body, settled from
                               usage.prompt_tokens */
    GR_FWD_FREE,            /* costs nothing of the windows (a listing) */
    GR_FWD_PREDICT,         /* Imagen :predict: 1 request, the images it
                               asks for (parameters.sampleCount, else 4)
                               on the images dimension */
};

/*
 * One request to forward: reserved on model, sent to {base_url}{path}
 * with the lease's key, classified, settled, reported and retried like
 * gr_generate().  A 2xx event stream (sse) goes to on_event one event at
 * a time as it arrives, after one call of on_start naming the project
 * that answers; any other answer is kept whole in the response.
 */
struct gr_fwd {
    enum gr_fwd_kind kind;
    const char *method;         /* "GET", "POST", "DELETE"; NULL = POST */
    const char *model;          /* the model reserved on */
    const char *path;           /* "/v1beta/models/m:generateContent",
                                   query included; no key in it */
    const char *body;           /* NULL = none */
    size_t len;
    const char *const *headers; /* "Name: value" lines passed on, NULL-
                                   terminated; NULL = none */
    bool sse;                   /* the answer is text/event-stream */
    int (*on_start)(void *arg, const char *project, int64_t queued_ns);
    gr_chunk_fn on_event;       /* return non-zero: stop (the call ends,
                                   settled with what was seen) */
    void *arg;
    int (*cancelled)(void *arg);/* polled while the call runs (at least
                                   once a second); non-zero stops it as
                                   on_event can; NULL = never */
    const char *project;        /* reserve on this project only; NULL or
                                   "" = the project holding a resource
                                   the request names, else any */
    int (*on_header)(void *arg, const char *line, size_t len);
                                /* each header line of each answer, the
                                   status line first ("HTTP/1.1 200 OK\r\n")
                                   and the blank line last; NULL = none */
};

/* Forward f; returns as gr_generate() does. */
GR_API
int gr_forward(struct gr *g, const struct gr_fwd *f,
               const struct gr_call_opts *opts, struct gr_response *out);

/* The models the table serves now: up to max names into names; returns
 * how many there are (may be > max), or -1 when the table is unreadable. */
GR_API
int gr_models(struct gr *g, char (*names)[GR_NAME_MAX], int max);

/* ---- the shared response cache (gemroute cache stats|clear) ---------- */

struct gr_cache_info {
    bool on;                    /* the router published a cache */
    char path[GR_URL_MAX];      /* its directory */
    uint64_t entries;           /* answers kept (expired ones included
                                   until they are evicted) */
    uint64_t bytes_used;        /* pages in use */
    uint64_t max_bytes;         /* the map's size: the bound */
    int64_t ttl_s;              /* an entry's life */
    uint64_t hits, misses, stores, errors;  /* every process's, from
                                               the table */
    char refused[512];          /* why this process may not use it; "" */
};

/* What the cache holds and how it serves.  GR_OK or GR_EINVAL. */
GR_API
int gr_cache_info(struct gr *g, struct gr_cache_info *out);

/* Remove every entry; *removed (may be NULL) says how many there were. */
GR_API
int gr_cache_clear(struct gr *g, uint64_t *removed);

/* ---- things that live in one project (docs/CLIENT.md) ---------------- */

/* What a resource is; a file, a context cache or a batch job exists only
 * in the project that created it. */
enum gr_res_kind {
    GR_RES_FILE = 1,        /* files/{id} */
    GR_RES_CACHE = 2,       /* cachedContents/{id} */
    GR_RES_BATCH = 3,       /* batches/{id} */
    GR_RES_UPLOAD = 4,      /* uploads/{upload_id}: a resumable upload
                               under way, until it is finalized */
};

/*
 * gr_reserve() on one project only: the one that holds a resource the
 * call names.  Waits for that project's room until deadline_ns (it
 * cannot go elsewhere).  project NULL or "" is gr_reserve().
 * GR_ENOMODEL when no project of that name is in the table.
 */
GR_API
int gr_reserve_on(struct gr *g, const char *project, const char *model,
                  const struct gr_cost *cost, int64_t deadline_ns,
                  struct gr_lease *out);

/*
 * Record that project holds the resource name ("files/abc",
 * "cachedContents/x", "batches/y") until expire_unix_s (0: until it is
 * forgotten).  Every process of the host sees it, and the router keeps
 * it across restarts.  Recording a name again updates it (a new TTL).
 * GR_OK; GR_EINVAL for a bad name or project; GR_ENOROOM when the record
 * is full (gr_errstr() says so); GR_ESHM when there is no record (no
 * router made one).
 */
GR_API
int gr_resource_note(struct gr *g, enum gr_res_kind kind, const char *name,
                     const char *project, int64_t expire_unix_s);

/* The project holding name, into project ("" when it is not recorded or
 * has expired).  GR_OK, or GR_EINVAL for a bad argument. */
GR_API
int gr_resource_owner(struct gr *g, const char *name,
                      char project[GR_NAME_MAX]);

/* Forget name (deleted, or Google says it is gone).  GR_OK even when it
 * was not recorded. */
GR_API
int gr_resource_forget(struct gr *g, const char *name);

/*
 * The project a request is pinned to by the resources it names: a
 * `fileData.fileUri` of any part, `cachedContent`, a batch's `fileName`
 * (anywhere in the JSON body, camelCase or snake_case), and
 * `files/{id}`, `cachedContents/{id}` or `batches/{id}` in path (either
 * may be NULL).  GR_OK with project "" when nothing recorded is named;
 * GR_EINVAL, with a sentence in gr_errstr(), when it names resources of
 * two projects.  gr_generate(), gr_stream() and gr_forward() do this
 * themselves.
 */
GR_API
int gr_resource_pin(struct gr *g, const char *path, const char *body,
                    size_t len, char project[GR_NAME_MAX]);


/* ---- batch mode as a quota of its own (docs/BATCH.md) ---------------- */

/*
 * Gemini's batch mode (models/{model}:batchGenerateContent, then
 * batches/{id}) has limits of its own per project and model: input
 * tokens enqueued in unfinished jobs, and unfinished jobs.  gemroute
 * holds both as gauges from a job's submission until it ends (the router
 * polls unfinished jobs and gives their hold back).
 */
struct gr_batch_opts {
    int64_t deadline_ns;        /* wait for a pool with room until this
                                   CLOCK_MONOTONIC instant; 0 = do not
                                   wait [0] */
    int64_t est_tokens;         /* input tokens of the whole job; <= 0
                                   estimates from inline requests, or
                                   from an input file's size (its
                                   sizeBytes / 4: an upper bound) */
    const char *project;        /* submit on this project only; NULL or
                                   "" = the one holding the input file,
                                   else the pool with most room */
};

#define GR_BATCH_NAME_MAX 104

/* A job as submitted or polled. */
struct gr_batch_job {
    char name[GR_BATCH_NAME_MAX];   /* "batches/abc" */
    char project[GR_NAME_MAX];      /* the project it lives in */
    int64_t tokens;                 /* input tokens held for it */
    char state[40];                 /* "BATCH_STATE_PENDING", ... */
    bool done;                      /* the job reached a final state */
};

/*
 * Submit request_json (a BatchGenerateContentRequest: inline requests,
 * or an input file by its fileName) on model: hold its tokens on a pool
 * with room (waiting until opts->deadline_ns), send it to that project
 * and record the job, pinned there.  GR_OK with *job; GR_ETOOBIG when it
 * is larger than any single project's pool (gr_errstr() says by how much
 * and suggests the split); GR_ENOROOM / GR_EDEADLINE when no pool had
 * room in time; GR_ENOMODEL when no pool serves model; GR_ECALL with the
 * answer in *out (which may be NULL) when the submission failed (the
 * hold is given back).
 */
GR_API
int gr_batch_submit(struct gr *g, const char *model, const char *request_json,
                    size_t len, const struct gr_batch_opts *opts,
                    struct gr_batch_job *job, struct gr_response *out);

/* The input tokens gr_batch_submit() counts for request_json (a whole
 * BatchGenerateContentRequest, or one GenerateContentRequest): the
 * estimate of docs/CLIENT.md over every part. */
GR_API
int64_t gr_batch_estimate(const char *request_json, size_t len);

/*
 * GET batches/{id} through the table (pinned to the project that holds
 * the job; model is one the table serves, as for gr_forward()).  GR_OK
 * with job->state and job->done, the Operation in *out; else as
 * gr_forward().
 */
GR_API
int gr_batch_get(struct gr *g, const char *model, const char *name,
                 struct gr_batch_job *job, struct gr_response *out);

/*
 * The results of a finished job, one JSON object per result to on_line
 * ({"key": ..., "response": {...}} or {"key": ..., "error": {...}}; key
 * from the request's metadata.key or the input line's key, absent when
 * none): inline results from the Operation, a result file downloaded.
 * GR_OK; GR_EINVAL when the job is not done (gr_errstr() says its
 * state); else as gr_batch_get().  on_line returning non-zero stops.
 */
GR_API
int gr_batch_results(struct gr *g, const char *model, const char *name,
                     gr_chunk_fn on_line, void *arg,
                     struct gr_response *out);

/*
 * One poll of a job with a key, as the router does for every unfinished
 * job: GET {base_url}/v1beta/{name}.  GR_OK with job->state and
 * job->done; GR_ECALL with what the answer meant in *v (a 403 or 404:
 * the job is gone for that key); GR_EINVAL.  proxy NULL or "" means the
 * environment's.
 */
GR_API
int gr_batch_poll(const char *base_url, const char *proxy, const char *key,
                  const char *name, int64_t deadline_ns,
                  struct gr_batch_job *job, struct gr_verdict *v);

#ifdef __cplusplus
}
#endif

#endif
