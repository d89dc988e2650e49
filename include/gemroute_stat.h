/*
 * gemroute_stat.h - the read-only view of a gemroute table.
 *
 * What varnishstat's libvarnishapi is to varnishd: `gemroute status`,
 * its --json and --prometheus views, the gateway's /metrics and anything
 * else that shows the table read it through this API, never through the
 * layout.  gr_stat_open() maps the table read-only (O_RDONLY, PROT_READ:
 * a reader cannot change it even by mistake); gr_stat_take() copies it
 * into a caller-owned struct gr_stat_snap, judged once (health, reasons,
 * the pool's headroom), so every view prints the same facts.
 *
 * Everything read is range-checked; text the router guards with a
 * sequence counter that never settled is reported as torn
 * (text_ok / n_torn), never shown.  Keys never appear beyond their last
 * four characters, and URLs never with their credentials
 * (gr_stat_url_safe()).  Operator actions are not here: they go to the
 * router's control socket (control_path), whose only writer is the
 * router.
 */
#ifndef GEMROUTE_STAT_H
#define GEMROUTE_STAT_H

#include "gemroute.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GR_STAT_ERR_MAX 256
#define GR_STAT_QID_MAX 64
#define GR_STAT_SOCK_MAX 128
#define GR_STAT_MAX_MODELS 64
#define GR_STAT_REASONS 6
#define GR_STAT_REASON_MAX 96

/* An open table, read-only. */
struct gr_stat;

/* Operator state of a project or a cell. */
enum gr_stat_op {
    GR_STAT_OP_NONE = 0,
    GR_STAT_OP_DRAINING,
    GR_STAT_OP_DISABLED,
};

struct gr_stat_cell {
    char project[GR_NAME_MAX];
    char model[GR_NAME_MAX];
    char key_tail[8];               /* "...wxyz" */
    uint32_t slot;                  /* project slot */
    uint32_t model_index;
    const char *health;             /* healthy|cooling|open|half_open|
                                       disabled|draining (static) */
    char reason[GR_STAT_REASON_MAX];    /* reasons[0], or "" */
    unsigned n_reasons;             /* why not healthy, then notes */
    char reasons[GR_STAT_REASONS][GR_STAT_REASON_MAX];
    enum gr_stat_op op;             /* the cell's own operator state */
    bool removing;                  /* the project left the config */
    int64_t limit[GR_NDIMS];        /* effective, learned limits applied;
                                       -1 = unlimited, 0 = not available */
    int64_t config_limit[GR_NDIMS]; /* before headroom */
    int64_t learned[GR_NDIMS];      /* -1 = none */
    int64_t used[GR_NDIMS];
    double cooldown_s[GR_NDIMS];
    int cool_src[GR_NDIMS];         /* enum gr_cool_src */
    double cell_cool_s;             /* 429 without details: whole cell */
    double circuit_s;               /* circuit open for this long */
    bool circuit;                   /* open or half-open */
    int64_t in_flight;
    uint64_t admitted, rejected, ok, quota_429, server_5xx, auth_err,
        other_err;
    uint64_t quota_429_dim[GR_NDIMS + 1];   /* per dim, then bare */
    uint32_t failures;              /* consecutive server errors */
    uint32_t last_status;
    char last_qid[GR_STAT_QID_MAX];
    double probe_in_s;              /* the router's next health probe of
                                       this disabled cell (or of its
                                       project's keys); -1 = none */
};

/* Spend of one project, or of the pool (spend caps, docs/CONFIG.md), in
 * micro-USD for the Pacific day and month of the snapshot. */
struct gr_stat_spend {
    bool counted;                   /* the router counts spend (a cap is
                                       configured); all 0 otherwise */
    int64_t day, month;             /* counted: settled + reserved */
    int64_t cap_day, cap_month;     /* 0 = no cap */
    uint64_t refused;               /* calls refused by these caps */
};

struct gr_stat_project {
    char name[GR_NAME_MAX];
    char key_tail[8];
    uint32_t slot;
    uint32_t n_keys;
    bool removing;
    bool config_enabled;
    bool auth_failed;
    enum gr_stat_op op;
    const char *state;              /* healthy|cooling|disabled|draining */
    uint32_t keys_refused;          /* bit k: key #k+1 refused by Google
                                       (its siblings still serve) */
    double probe_in_s;              /* next probe of a refused key or of
                                       the project; -1 = none */
    struct gr_stat_spend spend;     /* (ABI 6) */
};

/* One model over every project: what the pool can still take now. */
#define GR_STAT_ALIASES_MAX 256

struct gr_stat_model {
    char name[GR_NAME_MAX];
    int64_t room[GR_NDIMS];         /* sum of (limit - used) over cells
                                       that take calls now */
    int64_t capacity[GR_NDIMS];     /* sum of limits of cells in the pool
                                       (not disabled, not draining) */
    bool unlimited[GR_NDIMS];       /* some cell in the pool has no limit */
    char aliases[GR_STAT_ALIASES_MAX];  /* the config's aliases of this
                                           model, ", "-separated (cut with
                                           "..." when long); "" = none */
};

/* The router and its last reload: what gr_stat_router() reads alone. */
struct gr_stat_router {
    int64_t pid;
    bool alive;
    double beat_age_s;
    uint64_t config_generation;
    int64_t last_reload_wall_s;
    bool last_reload_ok;
    uint32_t reloads_ok, reloads_failed;
    bool text_ok;                   /* false: the strings below were torn
                                       (the router died writing them) and
                                       are "" */
    char base_url[GR_URL_MAX];      /* credentials removed */
    char config_path[GR_URL_MAX];
    char last_reload_error[GR_STAT_ERR_MAX];
    char control_path[GR_STAT_SOCK_MAX];    /* the control socket; "" =
                                               none published */
};

/* One pair of models a fallback went between, and how many calls. */
struct gr_stat_fallback {
    char from[GR_NAME_MAX];         /* the model asked for */
    char to[GR_NAME_MAX];           /* the model that was called instead */
    uint64_t calls;
};

#define GR_STAT_MAX_PAIRS 64

/* The shared response cache and the fallbacks (ABI 4.2 tables). */
struct gr_stat_extras {
    bool present;                   /* false: a table of ABI 4.1 */
    bool cache_on;                  /* the router published a cache */
    uint64_t cache_hits, cache_misses, cache_stores, cache_errors;
    uint64_t fallbacks;             /* calls handed to a fallback model */
    uint64_t fallback_denied;       /* calls that found no room before
                                       their queue deadline and were not
                                       allowed to fall back */
    unsigned n_pairs;               /* pairs with calls, up to the max */
    struct gr_stat_fallback pairs[GR_STAT_MAX_PAIRS];
};

struct gr_stat_snap {
    char shm[GR_NAME_MAX];
    /* the router, as gr_stat_router() reads it */
    int64_t router_pid;
    bool router_alive;
    double router_beat_age_s;
    uint64_t config_generation;
    char base_url[GR_URL_MAX];      /* credentials removed */
    char config_path[GR_URL_MAX];
    int64_t last_reload_wall_s;
    bool last_reload_ok;
    uint32_t reloads_ok, reloads_failed;
    char last_reload_error[GR_STAT_ERR_MAX];
    bool text_ok;                   /* false: the three strings above were
                                       torn and are "" */
    char control_path[GR_STAT_SOCK_MAX];
    int64_t now_wall_s;
    int64_t next_rpd_reset_s;       /* unix time of the next Pacific midnight */
    double window_s;
    uint64_t anomalies, reaped, audits;
    bool models_ok;                 /* false: model names were torn */
    unsigned n_torn;                /* project slots skipped: torn */
    unsigned n_cells;
    struct gr_stat_cell *cells;     /* malloc'd; by slot, then model */
    unsigned n_projects;
    struct gr_stat_project *projects;   /* malloc'd; by slot */
    unsigned n_models;
    struct gr_stat_model models[GR_STAT_MAX_MODELS];
    unsigned healthy, cooling, disabled, draining;  /* projects */
    struct gr_stat_extras extras;   /* the cache and the fallbacks, as
                                       gr_stat_extras() reads them */
    struct gr_stat_spend spend_pool;    /* the pool's spend and caps */
};

/*
 * Map the table called shm (NULL: $GEMROUTE_SHM, else "/gemroute")
 * read-only.  NULL on failure, with a sentence in err ("gemroute:
 * shm_open(/gemroute): no such table - is gemrouted running?").
 */
GR_API
struct gr_stat *gr_stat_open(const char *shm, char *err, size_t errlen);
GR_API
void gr_stat_close(struct gr_stat *st);

/* The name the table was opened under. */
GR_API
const char *gr_stat_name(const struct gr_stat *st);

/* The router's part of the header alone (cheap: no cell is read). */
GR_API
void gr_stat_router(const struct gr_stat *st, struct gr_stat_router *r);

/* Take a snapshot now.  GR_OK or GR_ENOMEM; free with gr_stat_free(). */
GR_API
enum gr_err gr_stat_take(const struct gr_stat *st, struct gr_stat_snap *s);

/* The same at given clock readings (CLOCK_MONOTONIC ns and unix ns), so
 * that a test sees a fixed state the same way every time. */
GR_API
enum gr_err gr_stat_take_at(const struct gr_stat *st, struct gr_stat_snap *s,
                            int64_t now_mono_ns, int64_t now_wall_ns);
GR_API
void gr_stat_free(struct gr_stat_snap *s);

/* Read the extras now.  GR_OK, or GR_ESHM when the names were torn. */
GR_API
enum gr_err gr_stat_extras(const struct gr_stat *st,
                           struct gr_stat_extras *out);

/* 950, 12.3k, 250k, 1M, 1.5M: a count short enough for a table cell. */
GR_API
void gr_stat_num(int64_t v, char *buf, size_t n);

/*
 * A URL as it may be shown: without the userinfo of its authority
 * ("https://user:pass@host/x" -> "https://host/x").  Every path that
 * displays a URL from the table or a lease goes through this.  Always
 * NUL-terminates out (n > 0); out must not overlap url; returns out.
 */
GR_API
char *gr_stat_url_safe(const char *url, char *out, size_t n);

/* ---- the resource record (files, caches, batches; docs/OPERATIONS.md) */

#define GR_STAT_RES_NAME_MAX 104

struct gr_stat_resource {
    char name[GR_STAT_RES_NAME_MAX];    /* "files/abc" */
    char project[GR_NAME_MAX];          /* the project that holds it */
    enum gr_res_kind kind;
    int64_t expire_unix_s;              /* 0 = until dropped (a batch) */
    bool expired;                       /* kept a minute for the record */
};

struct gr_stat_res_counts {
    bool present;                       /* false: no record (the router
                                           made none); the rest is 0 */
    uint64_t files, caches, batches;    /* live, not expired */
    uint64_t uploads;                   /* resumable uploads under way */
    uint64_t capacity;                  /* records it can hold */
    uint64_t refused;                   /* records refused: it was full */
    uint64_t anomalies;                 /* bad records seen and skipped */
};

/*
 * The resource record of st's table: up to max records into out (in
 * record order; out may be NULL when max is 0) and the counts.  Returns
 * how many records are live (may be > max), or -1 when there is no
 * record (counts->present false).  Maps the record read-only for the
 * call.
 */
GR_API
int gr_stat_resources(const struct gr_stat *st, struct gr_stat_resource *out,
                      int max, struct gr_stat_res_counts *counts);

/* ---- batch mode's pools and jobs (docs/BATCH.md) -------------------- */

/* The batch gauges of one (project, model): held from a job's
 * submission until it ends.  Limits: -1 = none. */
struct gr_stat_batch_pool {
    char project[GR_NAME_MAX];
    char model[GR_NAME_MAX];
    bool configured;                    /* false: left the config; its
                                           jobs are still tracked */
    int64_t tokens_used, tokens_limit;  /* input tokens of unfinished
                                           jobs */
    int64_t jobs_used, jobs_limit;      /* unfinished jobs */
    uint64_t admitted, refused, finished;
};

struct gr_stat_batch_counts {
    bool present;                       /* false: no batch record */
    uint64_t live_jobs;                 /* submitted, not ended */
    uint64_t submitting;                /* held, on their way */
    uint64_t job_capacity;
    uint64_t refused;                   /* no job record left */
    uint64_t polls;                     /* router polls of jobs */
    uint64_t lost;                      /* dead submitters' claims */
};

/*
 * The batch pools of st's table: up to max into out (out may be NULL
 * when max is 0) and the counts.  Returns how many pools are named (may
 * be > max), or -1 when there is no batch record.  Maps the record
 * read-only for the call.
 */
GR_API
int gr_stat_batch_pools(const struct gr_stat *st,
                        struct gr_stat_batch_pool *out, int max,
                        struct gr_stat_batch_counts *counts);

/*
 * The last hour, as the router sampled it (every period_s, into a
 * companion segment of the table): for each cell of s, in s's order,
 * n_samples points, oldest first.  Counts are the cell's cumulative
 * counts cut to 32 bits: take differences modulo 2^32.  Any process
 * reads the same history; none is there (n_samples 0, GR_OK) when the
 * router keeps none or it belongs to another router than s's.  GR_OK
 * or GR_ENOMEM; free with gr_stat_history_free().
 */
#define GR_STAT_HIST_SAMPLES 720

struct gr_stat_hist_point {
    uint32_t used[GR_NDIMS];        /* tokens per day: not sampled, 0 */
    uint32_t admitted, rejected, quota_429, errors;
};

struct gr_stat_hist {
    double period_s;
    unsigned n_samples;
    int64_t wall_ms[GR_STAT_HIST_SAMPLES];  /* unix ms of each sample */
    uint32_t waiting[GR_STAT_HIST_SAMPLES]; /* clients asleep for room */
    unsigned n_cells;                       /* s->n_cells */
    struct gr_stat_hist_point *points;      /* malloc'd; cell-major:
                                               [cell * n_samples + i] */
};

GR_API
enum gr_err gr_stat_history(const struct gr_stat *st,
                            const struct gr_stat_snap *s,
                            struct gr_stat_hist *h);
GR_API
void gr_stat_history_free(struct gr_stat_hist *h);

/*
 * One operator request to the router's control socket of the table shm
 * (NULL: $GEMROUTE_SHM, else "/gemroute"): request is a line of the
 * protocol without its newline ("drain P[/M]", "enable P[/M]",
 * "disable P[/M]", "reset P[/M] [rpm|tpm|rpd|ipm|tpd]", "ping"); by, when
 * not NULL, is a label the router logs with the action (who asked,
 * beyond the peer's uid and pid; letters, digits and ._:@#- only, at
 * most 48).  The router answers after the change is applied.  Returns
 * a->status: 0 done ("ok"), 1 the router refused (a->text says why), 2
 * not asked or not answered (a->text says why).  a->notes holds the
 * router's "note" lines, each ending in a newline.
 */
struct gr_ctl_answer {
    int status;
    char notes[1024];
    char text[512];
};

GR_API
int gr_ctl_send(const char *shm, const char *request, const char *by,
                struct gr_ctl_answer *a);

#ifdef __cplusplus
}
#endif

/*
 * A clustered router's view of one cell (docs/CLUSTER.md): each node's
 * share of the cell's limits, granted through Redis, and what that
 * node's table counted, as the router last heard them.
 */
#define GR_STAT_NODES 8

struct gr_stat_node {
    char name[GR_NAME_MAX];
    bool self;                      /* the node of this table's router */
    int64_t share[GR_NDIMS];        /* -1 = not shared (unlimited) */
    int64_t used[GR_NDIMS];         /* -1 = not known */
};

/*
 * The nodes of cell (slot, model_index) into out[0..max): how many.  0
 * when the table's router is not clustered, has not heard from Redis
 * yet, or the view was torn while it was read.
 */
GR_API
unsigned gr_stat_cluster(const struct gr_stat *st, uint32_t slot,
                         uint32_t model_index, struct gr_stat_node *out,
                         unsigned max);

#endif
