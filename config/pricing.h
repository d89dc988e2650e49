/*
 * pricing.h - the `pricing` section (a dated price table, usually an
 * @included file such as examples/pricing-2025.conf) and the `spend`
 * section (spend caps per Pacific day and month, per project and for the
 * pool).  Parsed and checked with the rest of the file by gr_cfg_load();
 * the router publishes both in the table (router/spend.c).
 *
 * Money is integer micro-USD; a price is micro-USD per 1M tokens.
 */
#ifndef GR_CFG_PRICING_H
#define GR_CFG_PRICING_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* One model's price (micro-USD per 1M tokens). */
struct gr_cfg_price {
    bool set;                       /* the model has a price */
    int64_t input, output, cached, thinking;
    int64_t input_long, output_long, cached_long, thinking_long;
    int64_t long_above;             /* prompt tokens; 0 = one tier */
    int64_t max_output;             /* output tokens a request that sets
                                       none may produce; default 65536 */
    int line;
};

struct gr_cfg_spend {
    bool priced;                    /* a pricing section */
    char source[GR_CFG_URL_MAX];    /* pricing.source, for status */
    char date[32];                  /* pricing.date */
    int64_t batch_ppm;              /* pricing.batch_discount x 1e6 */
    unsigned n_models;              /* = cfg->n_models */
    struct gr_cfg_price *prices;    /* [n_models], by model index */
    bool capped;                    /* any cap below is set */
    int line;                       /* the spend section; 0 = none */
    int64_t pool_day, pool_month;   /* micro-USD; 0 = no cap */
    unsigned n_projects;            /* = cfg->n_projects */
    int64_t *project_day;           /* [n_projects]; 0 = no cap */
    int64_t *project_month;
};

/* The pricing and spend sections of cfg (an empty one when absent). */
const struct gr_cfg_spend *gr_cfg_spend(const struct gr_cfg *cfg);

#endif
