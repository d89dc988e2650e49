/*
 * batchjob.h - batch mode as a quota of its own: per (project, model),
 * the input tokens held by unfinished batch jobs and the number of those
 * jobs, as gauges with limits, and the jobs that hold them.
 * (client/batch.c is something else: batched leases.)
 *
 * A companion segment of the table ("/gemroute" -> "/gemroute.bj"),
 * made by the router with the table's mode and group, mapped read-write
 * by a client that submits a batch job and read-only by the tools.  It
 * has its own magic and ABI; the table's layout (layout.h) and its cells'
 * hot lines do not change: batch submission is rare.
 *
 * This is a wire format, not a public API.  The segment, in order:
 *
 *   header    struct gr_shm_bj_hdr (one line)
 *   pools     npools x struct gr_shm_bpool (four lines each)
 *   jobs      njobs x struct gr_shm_bjob (three lines each)
 *
 * Who writes what:
 *   - the router names pools (project, model) and writes their limits
 *     from the config; a pool, once named, keeps its place while the
 *     segment lives (a project that leaves the config keeps its pool,
 *     limits 0, until its jobs end; one that comes back finds it again);
 *   - any client admits a job on a pool with a CAS on used_tokens and
 *     used_jobs (all or nothing: the tokens are given back when the job
 *     count has no room), and records the job it submitted;
 *   - the router polls recorded jobs and, when one ends, frees its record
 *     and gives its hold back (the one who moves a record out of LIVE or
 *     SUBMITTING releases; a CAS decides who).
 */
#ifndef GR_SHM_BATCHJOB_H
#define GR_SHM_BATCHJOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GR_BJ_MAGIC UINT64_C(0x314a4252474d4752) /* "RGMGRBJ1" */
#define GR_BJ_ABI_MAJOR 1u
#define GR_BJ_ABI_MINOR 0u

#define GR_BJ_NAME_MAX 104          /* "batches/abc" */
#define GR_BJ_PROJECT_MAX 64        /* as GR_SHM_NAME_MAX */
#define GR_BJ_MODEL_MAX 64
#define GR_BJ_DEFAULT_POOLS 1024u   /* at most 4095 (12 bits) */
#define GR_BJ_DEFAULT_JOBS 4096u
#define GR_BJ_MAX_POOLS 4095u
#define GR_BJ_MAX_JOBS 1048576u
#define GR_BJ_UNLIMITED INT64_C(-1)
#define GR_BJ_SEGNAME_MAX 80

/* Job record states (bits 0..3 of the state word). */
enum {
    GR_BJ_FREE = 0,
    GR_BJ_CLAIMED = 1,      /* a submitter took the record; no hold yet
                               (or one whose CAS it did not publish) */
    GR_BJ_SUBMITTING = 2,   /* the hold is taken; the submission is on
                               its way; pid is the submitter's */
    GR_BJ_LIVE = 3,         /* submitted: name set; the router polls it */
    GR_BJ_WRITING = 4,      /* its holder writes name (SUBMITTING ->
                               LIVE) */
};

/*
 * One pool: the batch gauges of (project, model).  Four lines: the
 * router's (limits), the admission line every submitter CASes, and the
 * names (written by the router before it sets live).
 */
struct gr_shm_bpool {
    /* line 0: the router's */
    _Atomic uint32_t live;          /* 1 once named; never back to 0 */
    _Atomic uint32_t configured;    /* 1 while in the config */
    _Atomic int64_t limit_tokens;   /* GR_BJ_UNLIMITED = none */
    _Atomic int64_t limit_jobs;
    uint8_t pad0[64 - 24];
    /* line 1: admission */
    _Atomic int64_t used_tokens;    /* input tokens of unfinished jobs */
    _Atomic int64_t used_jobs;      /* unfinished jobs */
    _Atomic uint64_t admitted;      /* jobs admitted, ever */
    _Atomic uint64_t refused;       /* admissions refused for room */
    _Atomic uint64_t finished;      /* jobs ended, ever */
    uint8_t pad1[64 - 40];
    /* lines 2, 3: names (written before live, never changed after) */
    char project[GR_BJ_PROJECT_MAX];
    char model[GR_BJ_MODEL_MAX];
};

/*
 * One job.  state packs:
 *   bits  0..3   GR_BJ_*
 *   bits  4..15  pool index
 *   bits 16..31  sequence, bumped by every claim
 *   bits 32..63  pid of the holder (submitter; 0 once LIVE)
 * tokens and name are written only by the holder of a claim, with
 * release stores, and read between two acquire loads of state.
 */
struct gr_shm_bjob {
    _Atomic uint64_t state;
    _Atomic int64_t tokens;         /* the hold */
    _Atomic int64_t submitted_s;    /* unix time of the submission */
    char name[GR_BJ_NAME_MAX];      /* "batches/x"; "" until LIVE */
    uint8_t pad[192 - 24 - GR_BJ_NAME_MAX];
};

struct gr_shm_bj_hdr {
    uint64_t magic;
    uint32_t abi_major;
    uint32_t abi_minor;
    uint64_t size;                  /* bytes */
    uint32_t npools;
    uint32_t njobs;
    _Atomic uint64_t refused;       /* submissions with no job record
                                       left */
    _Atomic uint64_t anomalies;     /* bad values seen and skipped */
    _Atomic uint64_t polls;         /* router polls of jobs */
    _Atomic uint64_t lost;          /* claims of dead submitters freed
                                       (their hold, if any, kept) */
};

_Static_assert(sizeof(struct gr_shm_bpool) == 4 * 64, "pool: four lines");
_Static_assert(offsetof(struct gr_shm_bpool, used_tokens) == 64,
               "admission on its own line");
_Static_assert(offsetof(struct gr_shm_bpool, project) == 128, "names");
_Static_assert(sizeof(struct gr_shm_bjob) == 3 * 64, "job: three lines");
_Static_assert(sizeof(struct gr_shm_bj_hdr) == 64, "header: one line");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free");

/* A process's view: geometry checked once at attach, kept privately. */
struct gr_shm_bjtab {
    unsigned char *base;
    size_t size;
    uint32_t npools, njobs;
    bool writable;
    struct gr_shm_bj_hdr *hdr;
    struct gr_shm_bpool *pools;
    struct gr_shm_bjob *jobs;
    char name[GR_BJ_SEGNAME_MAX];
};

/* A pool as read. */
struct gr_shm_bpool_view {
    bool configured;
    int64_t limit_tokens, limit_jobs;
    int64_t used_tokens, used_jobs;
    uint64_t admitted, refused, finished;
    char project[GR_BJ_PROJECT_MAX];
    char model[GR_BJ_MODEL_MAX];
};

/* A job as read (a consistent copy). */
struct gr_shm_bjob_view {
    unsigned state;                 /* GR_BJ_SUBMITTING or GR_BJ_LIVE */
    uint32_t pool;
    uint32_t pid;
    int64_t tokens;
    int64_t submitted_s;
    char name[GR_BJ_NAME_MAX];
};

/* "/gemroute" -> "/gemroute.bj"; -ENAMETOOLONG if it does not fit. */
int gr_shm_bj_segname(const char *table, char *out, size_t n);

/* Bytes of a segment; 0 when out of range. */
size_t gr_shm_bj_size(uint32_t npools, uint32_t njobs);

/* Map the companion of table and check it (as gr_shm_res_attach). */
int gr_shm_bj_attach(const char *table, bool writable,
                     struct gr_shm_bjtab *bt, char *err, size_t errlen);

/* The same checks on a mapping already made (tests). */
int gr_shm_bj_check_mapping(void *base, size_t size, bool writable,
                            struct gr_shm_bjtab *bt, char *err,
                            size_t errlen);

void gr_shm_bj_detach(struct gr_shm_bjtab *bt);

/* Router only: adopt our segment of this geometry (pools, holds and jobs
 * kept: *created false) or make a new one. */
int gr_shm_bj_router_open(const char *table, uint32_t npools,
                          uint32_t njobs, unsigned mode, gid_t gid,
                          struct gr_shm_bjtab *bt, bool *created,
                          char *err, size_t errlen);

/* Router only: the pool of (project, model), named if new.  Its index,
 * or -ENOSPC when every pool is named. */
int gr_shm_bj_router_pool(const struct gr_shm_bjtab *bt, const char *project,
                          const char *model);

/* Router only: a pool's limits and whether it is in the config. */
void gr_shm_bj_router_limits(const struct gr_shm_bjtab *bt, uint32_t pool,
                             bool configured, int64_t limit_tokens,
                             int64_t limit_jobs);

/* Pool i: 0 with *out, -ENOENT when not named or out of range. */
int gr_shm_bj_pool_read(const struct gr_shm_bjtab *bt, uint32_t i,
                        struct gr_shm_bpool_view *out);

/*
 * Admit a job of tokens on pool: both gauges within their limits (a pool
 * not configured admits nothing).  All or nothing.  0, or -EAGAIN (no
 * room now: counted in refused), -ENOENT (no such pool).
 */
int gr_shm_bj_admit(const struct gr_shm_bjtab *bt, uint32_t pool,
                    int64_t tokens);

/* Give back what gr_shm_bj_admit() took (the job ended or was never
 * submitted). */
void gr_shm_bj_release(const struct gr_shm_bjtab *bt, uint32_t pool,
                       int64_t tokens, bool finished);

/*
 * A submitter: claim a free job record for pool and tokens (CLAIMED
 * with pid), 0 with *job, or -ENOSPC (counted in refused).  Then, after
 * gr_shm_bj_admit(), gr_shm_bj_held() (CLAIMED -> SUBMITTING); after the
 * answer, gr_shm_bj_submitted() (SUBMITTING -> LIVE with its name) or
 * gr_shm_bj_abandon() (-> FREE; the caller releases the hold it took).
 */
int gr_shm_bj_claim(const struct gr_shm_bjtab *bt, uint32_t pool,
                    int64_t tokens, uint32_t pid, uint32_t *job);
int gr_shm_bj_held(const struct gr_shm_bjtab *bt, uint32_t job,
                   uint32_t pid);
int gr_shm_bj_submitted(const struct gr_shm_bjtab *bt, uint32_t job,
                        uint32_t pid, const char *name, int64_t now_s);
int gr_shm_bj_abandon(const struct gr_shm_bjtab *bt, uint32_t job,
                      uint32_t pid);

/* Job i: 0 with *out when SUBMITTING or LIVE; -ENOENT when free or
 * claimed; -EAGAIN when it changed during the copy or is out of range. */
int gr_shm_bj_job_read(const struct gr_shm_bjtab *bt, uint32_t i,
                       struct gr_shm_bjob_view *out);

/* The LIVE job called name: its index, or -ENOENT. */
int gr_shm_bj_find(const struct gr_shm_bjtab *bt, const char *name,
                   struct gr_shm_bjob_view *out);

/*
 * Router only: job i, LIVE, ended (or SUBMITTING/CLAIMED by a dead pid,
 * which the router checked): free it and give its hold back (not for
 * CLAIMED: no hold to give).  0 when this call freed it, -EAGAIN when
 * the record changed since the caller read it (word).
 */
int gr_shm_bj_router_finish(const struct gr_shm_bjtab *bt, uint32_t i);

/* Router only, restoring a saved job into a new segment: raise pool's
 * gauges by tokens and one job whatever the limits (Google holds the
 * job already). */
void gr_shm_bj_router_hold(const struct gr_shm_bjtab *bt, uint32_t pool,
                           int64_t tokens);

/* Router only: free the records held by dead submitters (kill(pid, 0)
 * -> ESRCH); how many. */
unsigned gr_shm_bj_router_reap(const struct gr_shm_bjtab *bt);

#endif
