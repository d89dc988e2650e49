/*
 * health.h - what an answer does to a cell (DESIGN.md, "Health and
 * cooldowns"): cooldowns per dimension, learned limits, the circuit
 * breaker, and disabling.
 */
#ifndef GR_SHM_HEALTH_H
#define GR_SHM_HEALTH_H

#include "table.h"

#include <stdint.h>

/* Mirrors enum gr_class of include/gemroute.h (shm/ cannot include it). */
enum {
    GR_OUT_OK = 0,
    GR_OUT_QUOTA,
    GR_OUT_OVERLOAD,
    GR_OUT_SERVER,
    GR_OUT_AUTH,
    GR_OUT_REQUEST,
    GR_OUT_MODEL,
    GR_OUT_UNKNOWN,
};

struct gr_shm_outcome {
    int cls;                    /* GR_OUT_* */
    int status;                 /* HTTP status; 0 = none */
    unsigned dims;              /* bit per GR_D_* named; 0 = whole cell */
    int64_t cool_ns;            /* cooldown from now; 0 = none given */
    int cool_src;               /* enum gr_cool_src, for status */
    int disable;                /* 0 none, 1 cell, 2 project, 3 key */
    unsigned key;               /* the key the call used (disable 3) */
    int64_t learned[GR_NDIM];   /* -1 = none */
    const char *quota_id;       /* NULL = none */
};

#define GR_CIRCUIT_THRESHOLD 5u     /* consecutive failures that open it */
#define GR_CIRCUIT_OPEN_NS (INT64_C(2) * 1000000000)    /* first opening */
#define GR_CIRCUIT_MAX_NS (INT64_C(60) * 1000000000)
#define GR_BACKOFF_BASE_NS (INT64_C(1) * 1000000000)    /* bare 429 */
#define GR_BACKOFF_MAX_NS (INT64_C(30) * 1000000000)

/*
 * Apply an outcome to cell (slot, model) whose project had generation
 * project_gen when the lease was taken; a report for a slot that moved on
 * is dropped (returns -ESTALE).  rng is the caller's random state (jitter).
 */
int gr_shm_report(const struct gr_shm *t, uint32_t slot, uint32_t model,
                  uint32_t project_gen, const struct gr_shm_outcome *o,
                  int64_t now_ns, uint64_t *rng);

/*
 * Record the limit Google stated for dimension d of c (-1: none known):
 * the number itself, for status, and the cap admissions obey (the limit
 * times the table's headroom).  Also the router's, when a reload changes
 * the headroom, and the tools' (reset).
 */
void gr_shm_set_learned(const struct gr_shm *t, struct gr_shm_cell *c,
                        unsigned d, int64_t learned);

/* The cap for a learned limit under the table's headroom now. */
uint32_t gr_shm_learned_cap(const struct gr_shm *t, int64_t learned);

/* Copy the cell's last quotaId (empty when a writer is mid-way). */
void gr_shm_last_qid(const struct gr_shm_cell *c, char *out, size_t n);

/*
 * Mark key k of project p refused; when every one of its n_keys keys is,
 * the project is (GR_PROJ_AUTH_FAILED).  Returns the key bits now set.
 */
uint32_t gr_shm_key_refused(const struct gr_shm *t, struct gr_shm_project *p,
                            unsigned k);

/* The keys of p a call may use: n_keys bits minus the refused ones (all
 * of them when every key is refused: the project is then out anyway). */
uint32_t gr_shm_keys_usable(struct gr_shm_project *p, uint32_t n_keys);

#endif
