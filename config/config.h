/*
 * config.h - the router's configuration, parsed and validated whole.
 *
 * gr_cfg_load() reads a libconfig file (with its @includes), resolves
 * every key (env:NAME, file:PATH or a literal) and checks the whole file.
 * It either returns a complete config or a list of "FILE:LINE: what is
 * wrong" errors; it never returns half a config.  Nothing here touches the
 * shared table: the router turns a config into table state.
 */
#ifndef GR_CONFIG_H
#define GR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GR_CFG_NAME_MAX 64      /* project and model names, NUL included */
#define GR_CFG_KEY_MAX 128      /* one API key, NUL included */
#define GR_CFG_URL_MAX 256
#define GR_CFG_MAX_KEYS 8       /* keys of one project */
#define GR_CFG_UNLIMITED INT64_C(-1)

struct gr_cfg_gateway;
struct gr_cfg_cache;
struct gr_cfg_spend;
struct gr_cfg_aliases;

/* Dimensions, in the order of enum gr_dim in include/gemroute.h. */
enum {
    GR_CFG_RPM = 0,
    GR_CFG_TPM = 1,
    GR_CFG_RPD = 2,
    GR_CFG_IPM = 3,
    GR_CFG_TPD = 4,     /* input tokens per Pacific day */
    GR_CFG_NDIMS = 5,
};

/* limits[d]: GR_CFG_UNLIMITED when left out; 0 = model not available. */
/* Batch mode's gauges (docs/BATCH.md): held from a job's submission
 * until it ends; GR_CFG_UNLIMITED when left out. */
enum {
    GR_CFG_BATCH_TOKENS = 0,    /* input tokens of unfinished jobs */
    GR_CFG_BATCH_JOBS = 1,      /* unfinished jobs */
    GR_CFG_NBATCH = 2,
};

struct gr_cfg_model {
    char name[GR_CFG_NAME_MAX];
    int64_t limits[GR_CFG_NDIMS];
    int64_t batch[GR_CFG_NBATCH];   /* batch_tokens, batch_jobs */
    int line;                       /* where it was defined */
};

/* A per-project override of some dimensions of one model. */
struct gr_cfg_override {
    char model[GR_CFG_NAME_MAX];
    bool set[GR_CFG_NDIMS];         /* which dimensions it overrides */
    int64_t limits[GR_CFG_NDIMS];
    bool batch_set[GR_CFG_NBATCH];  /* which batch gauges it overrides */
    int64_t batch[GR_CFG_NBATCH];
    unsigned model_index;           /* index of model in cfg->models */
    int line;                       /* where it was defined */
};

struct gr_cfg_project {
    char name[GR_CFG_NAME_MAX];
    unsigned n_keys;
    char keys[GR_CFG_MAX_KEYS][GR_CFG_KEY_MAX];   /* resolved; secret */
    unsigned weight;                /* default 1 */
    int priority;                   /* lower first when strict; default 0 */
    bool enabled;                   /* default true */
    unsigned n_overrides;
    struct gr_cfg_override *overrides;
    int line;                       /* where it was defined */
};

struct gr_cfg_router {
    char shm[GR_CFG_NAME_MAX];      /* default "/gemroute" */
    unsigned mode;                  /* default 0600 */
    char group[GR_CFG_NAME_MAX];    /* "" = none */
    char base_url[GR_CFG_URL_MAX];  /* default Google's */
    double headroom;                /* (0, 1], default 0.95 */
    unsigned max_projects;          /* geometry, default 64 */
    unsigned max_models;            /* geometry, default 8 */
    unsigned max_leases;            /* geometry, default 4096 */
    unsigned max_call_s;            /* default 600 */
    unsigned batch_calls;           /* most calls one thread takes from
                                       one lease; default 128, 1 = none */
    unsigned window_ms;             /* test-only, default 60000 */
    bool tpm_counts_cached;         /* settle cached input tokens on TPM
                                       (default true; docs/CLIENT.md) */
    char choice[16];                /* "p2c" (default), "weighted" or
                                       "priority" */
    char proxy[GR_CFG_URL_MAX];     /* "" = from the environment */
    char state_file[GR_CFG_URL_MAX];/* "" = default location */
    char control[GR_CFG_URL_MAX];   /* control socket; "" = default
                                       (router/control.c) */
};

/*
 * The cluster section (config/cluster.c): several hosts share the
 * projects' limits through Redis (router/cluster.c).  on = false (no
 * section) changes nothing.
 */
struct gr_cfg_cluster {
    bool on;
    char redis[GR_CFG_URL_MAX];     /* "unix:/path" or "host:port" */
    char node[GR_CFG_NAME_MAX];     /* this host's name, unique */
    char password[GR_CFG_KEY_MAX];  /* resolved from env:/file:; secret;
                                       "" = none */
    char prefix[GR_CFG_NAME_MAX];   /* Redis key prefix, default
                                       "gemroute" */
    bool insecure;                  /* a non-local address without TLS */
    bool tls;                       /* TLS to Redis; default: on unless
                                       the address is local */
    char tls_ca[GR_CFG_URL_MAX];    /* CA file; "" = the system's CAs */
    char tls_cert[GR_CFG_URL_MAX];  /* client certificate, "" = none */
    char tls_key[GR_CFG_URL_MAX];   /* its key file (the path only) */
    char tls_server_name[GR_CFG_URL_MAX]; /* name checked and sent (SNI);
                                       "" = the address' host */
    unsigned lease_ms;              /* a node's hold on its shares,
                                       default 10000 (Redis' clock) */
    unsigned sync_ms;               /* between two exchanges, default 100 */
    unsigned timeout_ms;            /* connect and reply, default 500 */
    int line;                       /* where the section is */
};

struct gr_cfg {
    char path[GR_CFG_URL_MAX];      /* the file it was read from */
    struct gr_cfg_router router;
    struct gr_cfg_cluster cluster;
    unsigned n_models;
    struct gr_cfg_model *models;
    unsigned n_projects;
    struct gr_cfg_project *projects;
    /*
     * Every file the config was read from: path first, then each
     * @included file that defines at least one setting, as paths usable
     * from the current directory.  The router watches these for reload.
     */
    unsigned n_files;
    char **files;
    unsigned n_literal_keys;        /* keys written in clear in the files */
    struct gr_cfg_gateway *gateway; /* the gateway section (gateway.h) */
    struct gr_cfg_cache *cache;     /* the cache section and the fallback
                                       chains (cache.h) */
    struct gr_cfg_spend *spend;     /* prices and spend caps (pricing.h) */
    struct gr_cfg_aliases *aliases; /* model aliases (aliases.h) */
};

/* Errors collected by a load: each one line, "FILE:LINE: what is wrong". */
struct gr_cfg_errors {
    unsigned n;
    char **lines;
};

/*
 * Load and validate path.  Returns 0 and *out, or -EINVAL with every
 * error in errs (which the caller frees with gr_cfg_errors_free), or
 * another -errno when the file cannot be read at all (also in errs).
 */
int gr_cfg_load(const char *path, struct gr_cfg **out,
                struct gr_cfg_errors *errs);
void gr_cfg_free(struct gr_cfg *cfg);
void gr_cfg_errors_free(struct gr_cfg_errors *errs);

/*
 * The configured limit of (project, model) on dimension dim, before
 * headroom: the project's override, else the model default.  An index or
 * dimension out of range gives 0 (not available), never "unlimited".
 */
int64_t gr_cfg_limit(const struct gr_cfg *cfg, const struct gr_cfg_project *p,
                     unsigned model_index, unsigned dim);

/*
 * The restart-only settings (config.c's table: the segment's name and
 * geometry) whose values differ between old and cur: how many, and their
 * names ", "-joined in out.  A reload that changes one is refused.
 */
unsigned gr_cfg_restart_changes(const struct gr_cfg *old,
                                const struct gr_cfg *cur, char *out,
                                size_t outlen);

/* A batch gauge's limit (GR_CFG_BATCH_*) for p (NULL = the model's),
 * GR_CFG_UNLIMITED when none is set. */
int64_t gr_cfg_batch_limit(const struct gr_cfg *cfg,
                           const struct gr_cfg_project *p,
                           unsigned model_index, unsigned which);

/* Index of the model called name in cfg->models, or -1. */
int gr_cfg_model_index(const struct gr_cfg *cfg, const char *name);

/* The project called name, or NULL. */
const struct gr_cfg_project *gr_cfg_project_find(const struct gr_cfg *cfg,
                                                 const char *name);

#endif
