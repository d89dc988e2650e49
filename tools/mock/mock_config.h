/*
 * mock_config.h - gemroute-mock's configuration file, parsed and checked
 * whole.
 *
 * gr_mock_config_load() reads a libconfig file and either returns a
 * complete config or one "FILE:LINE: what is wrong" message; it never
 * returns half a config.  Keys are resolved here (a literal, env:NAME or
 * file:PATH) and never appear in a message.
 */
#ifndef GR_MOCK_CONFIG_H
#define GR_MOCK_CONFIG_H

#include "mock.h"

#include <stddef.h>
#include <stdint.h>

#define GR_MOCK_DEFAULT_WINDOW_MS 60000
#define GR_MOCK_DEFAULT_MAX_BODY (4u << 20) /* bytes: 4 MiB */
/* bytes: the largest max_body_bytes allowed */
#define GR_MOCK_MAX_BODY_LIMIT (64u << 20)
#define GR_MOCK_MAX_LATENCY_MS 600000
#define GR_MOCK_DEFAULT_BATCH_PENDING_MS 1000  /* a batch job's PENDING */
#define GR_MOCK_DEFAULT_BATCH_RUNNING_MS 2000  /* then RUNNING */

struct gr_mock_limit_cfg {
    char model[GR_MOCK_NAME_MAX];
    int64_t limit[GR_MOCK_NDIMS]; /* GR_MOCK_UNLIMITED when left out */
    int64_t batch_tokens; /* input tokens in unfinished batch jobs */
    int64_t batch_jobs;   /* unfinished batch jobs; both UNLIMITED
                             when left out */
};

struct gr_mock_project_cfg {
    char name[GR_MOCK_NAME_MAX];
    enum gr_mock_tier tier;       /* default FreeTier */
    enum gr_mock_key_state state; /* default ok */
    size_t n_keys;
    char **keys; /* resolved; secret, never printed */
    size_t n_limits;
    struct gr_mock_limit_cfg *limits;
};

struct gr_mock_config {
    size_t n_projects;
    struct gr_mock_project_cfg *projects;
    double p503;            /* probability of an injected 503 */
    double p500;            /* probability of an injected 500 */
    uint32_t latency_lo_ms; /* uniform latency range, ms */
    uint32_t latency_hi_ms;
    int64_t window_ms;         /* length of the "60 s" windows */
    int64_t clock_offset_s;    /* added to the wall clock (RPD) */
    size_t max_body;           /* bytes accepted in one request body */
    unsigned threads;          /* 0 = one per CPU */
    char listen[128];          /* "" = 127.0.0.1:8080 */
    int64_t max_files;         /* Files API slots, uploads in flight too */
    int64_t max_file_bytes;    /* bytes in one uploaded file */
    int64_t max_storage_bytes; /* bytes of files per project */
    int64_t batch_pending_ms;  /* a batch job is PENDING this long, */
    int64_t batch_running_ms;  /* then RUNNING this long, then done */
};

/*
 * Load and check path.  Returns 0 and *out, or -EINVAL (bad file) or
 * -ENOMEM with "FILE:LINE: what is wrong" in err.
 */
int gr_mock_config_load(const char *path, struct gr_mock_config **out,
                        char *err, size_t errlen);

void gr_mock_config_free(struct gr_mock_config *cfg);

#endif
