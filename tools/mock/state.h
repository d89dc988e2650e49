/*
 * state.h - the running mock: projects and their cells, the key table,
 * the knobs tests can turn at run time, and counters that belong to no
 * cell.  Built once from a config; only cells and atomics change after.
 */
#ifndef GR_MOCK_STATE_H
#define GR_MOCK_STATE_H

#include "mock.h"
#include "mock_config.h"
#include "batchjobs.h"
#include "caches.h"
#include "files.h"
#include "quota.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct gr_mock_key_slot {
    const char *key; /* NULL = empty slot; points into cfg */
    size_t len;
    uint32_t hash;
    uint32_t project;
};

struct gr_mock_project {
    const struct gr_mock_project_cfg *cfg;
    _Atomic int key_state;      /* enum gr_mock_key_state */
    struct gr_mock_cell *cells; /* one per known model, by model index */
    unsigned char *listed;      /* listed[m]: limits came from the config */
};

/* Answers given before any cell was reached. */
struct gr_mock_globals {
    _Atomic uint64_t requests;        /* every request to a model route */
    _Atomic uint64_t no_key;          /* 403, no key */
    _Atomic uint64_t bad_key;         /* 400 API_KEY_INVALID */
    _Atomic uint64_t leaked_key;      /* 403, key reported as leaked */
    _Atomic uint64_t model_not_found; /* 404, model */
    _Atomic uint64_t unknown_path;    /* 404, path */
    _Atomic uint64_t bad_request;     /* 400, body */
    _Atomic uint64_t too_large;       /* 400, body over max_body */
    _Atomic uint64_t connections;     /* TCP connections accepted */
};

struct gr_mock_state {
    struct gr_mock_config *cfg; /* owned */
    size_t n_models;
    char (
        *models)[GR_MOCK_NAME_MAX]; /* sorted, every model any project lists */
    size_t n_projects;
    struct gr_mock_project *projects;
    struct gr_mock_cell *cells;    /* n_projects * n_models */
    struct gr_mock_key_slot *keys; /* open addressing, power-of-two size */
    size_t key_mask;
    int64_t window_ns;         /* the scaled "60 s" */
    size_t max_body;           /* bytes */
    int64_t start_offset_ns;   /* what /mock/reset restores */
    _Atomic int64_t offset_ns; /* added to the wall clock (RPD) */
    _Atomic uint32_t p503_ppb; /* parts per 10^9 */
    _Atomic uint32_t p500_ppb;
    _Atomic uint32_t latency_lo_ms;
    _Atomic uint32_t latency_hi_ms;
    struct gr_mock_globals g;
    struct gr_mock_files *files; /* the Files API store */
    struct gr_mock_caches *caches; /* cachedContents (caches.c) */
    struct gr_mock_batchjobs *batches; /* batch mode (batchjobs.c) */
};

/* Build the state; it takes cfg over (also on failure).  0 or -errno. */
int gr_mock_state_new(struct gr_mock_config *cfg, int64_t window_ms,
                      int64_t clock_offset_s, struct gr_mock_state **out);
void gr_mock_state_free(struct gr_mock_state *st);

/* Index of the project owning key, or -1. */
int gr_mock_state_key(const struct gr_mock_state *st, const char *key);

/* Index of a model any project lists, or -1. */
int gr_mock_state_model(const struct gr_mock_state *st, const char *model);

/* Index of a project by name, or -1. */
int gr_mock_state_project(const struct gr_mock_state *st, const char *name);

struct gr_mock_cell *gr_mock_state_cell(struct gr_mock_state *st,
                                        size_t project, size_t model);

/* Forget all usage and counters; knobs back to the config's values. */
void gr_mock_state_reset(struct gr_mock_state *st);

/* Set the fault knobs; probabilities in [0, 1]. */
void gr_mock_state_set_faults(struct gr_mock_state *st, double p503,
                              double p500, uint32_t lo_ms, uint32_t hi_ms);

#endif
