/*
 * mock.h - the words every part of gemroute-mock shares: quota
 * dimensions, tiers, method families and what a project's keys do.
 *
 * Module-private to tools/mock; nothing here is a public API.
 */
#ifndef GR_MOCK_H
#define GR_MOCK_H

#include <stdint.h>

#define GR_MOCK_UNLIMITED INT64_C(-1)
#define GR_MOCK_NAME_MAX 64 /* project and model names, NUL included */
#define GR_MOCK_KEY_MAX 256 /* one API key, NUL included */

/* Quota dimensions, in the order of enum gr_dim in include/gemroute.h. */
enum gr_mock_dim {
    GR_MOCK_RPM = 0, /* requests per (scaled) 60 s */
    GR_MOCK_TPM = 1, /* input tokens per (scaled) 60 s */
    GR_MOCK_RPD = 2, /* requests per Pacific day */
    GR_MOCK_IPM = 3, /* input images per (scaled) 60 s */
    GR_MOCK_TPD = 4, /* input tokens per Pacific day */
    GR_MOCK_NDIMS = 5
};

/* The tier decides how quotaMetric and quotaId are spelled. */
enum gr_mock_tier {
    GR_MOCK_FREE_TIER = 0,
    GR_MOCK_PAID_TIER1,
    GR_MOCK_PAID_TIER2,
    GR_MOCK_PAID_TIER3
};

/* Google names generate and embed quotas differently. */
enum gr_mock_family { GR_MOCK_GENERATE = 0, GR_MOCK_EMBED };

/* What a project's keys answer, switchable at run time to test the router. */
enum gr_mock_key_state {
    GR_MOCK_KEYS_OK = 0,
    GR_MOCK_KEYS_INVALID, /* 400 API_KEY_INVALID */
    GR_MOCK_KEYS_LEAKED,  /* 403 PERMISSION_DENIED, leaked */
    GR_MOCK_KEYS_SERVICE_DISABLED,  /* 403 SERVICE_DISABLED (the project) */
    GR_MOCK_KEYS_SUSPENDED,         /* 403 CONSUMER_SUSPENDED (the key) */
    GR_MOCK_KEYS_BILLING_DISABLED,  /* 403 BILLING_DISABLED (the project) */
};
#define GR_MOCK_KEY_STATES 6

/* A per-thread pseudo-random number: fault draws, latency, ids (state.c). */
uint64_t gr_mock_rand(void);

const char *gr_mock_tier_name(enum gr_mock_tier tier);
const char *gr_mock_dim_name(enum gr_mock_dim dim);
const char *gr_mock_key_state_name(enum gr_mock_key_state st);

#endif
