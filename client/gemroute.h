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
};

/* The four quota dimensions Gemini enforces per project and model. */
enum gr_dim {
    GR_DIM_RPM = 0,     /* requests per minute */
    GR_DIM_TPM = 1,     /* input tokens per minute */
    GR_DIM_RPD = 2,     /* requests per Pacific calendar day */
    GR_DIM_IPM = 3,     /* input images per minute */
    GR_NDIMS = 4,
};

#define GR_DIM_BIT(d) (1u << (d))

/* What one call will cost, before it is made. */
struct gr_cost {
    int64_t requests;   /* usually 1 */
    int64_t tokens;     /* estimated input tokens */
    int64_t images;     /* input images */
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
    int64_t retry_at_ns;        /* GR_ENOROOM/GR_EDEADLINE: when room
                                   comes, CLOCK_MONOTONIC; 0 = unknown */
    /* library-private */
    uint32_t slot;              /* lease slot in the table */
    uint32_t cell;              /* cell index */
    uint64_t ticket;            /* lease slot sequence at claim */
    uint32_t project_gen;       /* project slot generation at reserve */
    int64_t admitted_ns;        /* CLOCK_MONOTONIC */
    struct gr_cost cost;        /* what was admitted */
};

/* What a settled call really used. */
struct gr_usage {
    int64_t tokens;             /* usageMetadata.promptTokenCount; < 0 =
                                   unknown (keep the estimate) */
    int64_t images;             /* < 0 = unknown */
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
void gr_classify(int status, const char *body, size_t len, int64_t now_wall_s,
                 struct gr_verdict *out);

const char *gr_class_name(enum gr_class c);
const char *gr_dim_name(enum gr_dim d);

/*
 * Attach to the table.  shm_name NULL means $GEMROUTE_SHM, else
 * "/gemroute".  On failure returns NULL and writes a sentence into err.
 */
struct gr *gr_open(const char *shm_name, char *err, size_t errlen);
void gr_close(struct gr *g);
const char *gr_errstr(const struct gr *g);

/*
 * Reserve cost on some project serving model.  deadline_ns (CLOCK_MONOTONIC)
 * 0 never blocks: GR_ENOROOM with out->retry_at_ns.  A deadline in the
 * future sleeps until room comes or it passes (GR_EDEADLINE).
 */
int gr_reserve(struct gr *g, const char *model, const struct gr_cost *cost,
               int64_t deadline_ns, struct gr_lease *out);

/*
 * Settle a lease with what the call used.  From usage->first_byte_ns on,
 * the admission expires one window later.  A second commit, or a commit
 * of a lease the router already settled, does nothing.
 */
void gr_commit(struct gr *g, struct gr_lease *lease,
               const struct gr_usage *actual);

/* Tell the table what the answer to this lease's call means. */
void gr_report(struct gr *g, const struct gr_lease *lease,
               const struct gr_verdict *verdict);

/* CLOCK_MONOTONIC now, in ns: the clock deadlines are given in. */
int64_t gr_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif
