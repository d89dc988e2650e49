/*
 * spend.h - spend caps in the shared table (ABI 6): what a call may
 * cost at most (its worst case, from the model's price), what it did
 * cost (from usageMetadata), and the day and month counters of each
 * project and of the pool that a reservation admits against.
 *
 * Money is integer micro-USD everywhere; a price is micro-USD per 1M
 * tokens (so, numerically, USD per token x 1e6 / 1e6).
 */
#ifndef GR_SHM_SPEND_H
#define GR_SHM_SPEND_H

#include "table.h"

#include <stdbool.h>
#include <stdint.h>

#define GR_SPEND_AMOUNT_MASK ((UINT64_C(1) << GR_SPEND_AMOUNT_BITS) - 1)

/* What an answer's usageMetadata says; < 0 = not reported (0 then). */
struct gr_shm_spend_use {
    int64_t prompt;         /* promptTokenCount (cached included) +
                               toolUsePromptTokenCount */
    int64_t cached;         /* cachedContentTokenCount */
    int64_t output;         /* candidatesTokenCount */
    int64_t thinking;       /* thoughtsTokenCount */
};

/* Why a reservation was refused by a spend cap. */
struct gr_shm_spend_why {
    int32_t slot;           /* project slot; max_projects = the pool; -1
                               = no cap refused */
    int which;              /* 1: the day's cap, 2: the month's */
};

/* The Pacific month (months since 1970-01) of a Pacific day. */
int32_t gr_shm_month_of_day(int32_t day);

/* The model's price, read under the header's models_seq: 0, or -ENOENT
 * (no price set, or no spend section), or -EAGAIN (torn). */
int gr_shm_price_read(const struct gr_shm *t, uint32_t model,
                      struct gr_shm_price *p);

/* Router only: publish prices[0..n) (n <= max_models) under models_seq. */
void gr_shm_price_publish(const struct gr_shm *t,
                          const struct gr_shm_price *prices, uint32_t n);

/*
 * The most a call can cost: input tokens at the input price (of the
 * long-prompt tier when input passes it), plus max_out tokens (the
 * model's max_output when max_out <= 0) at the dearer of the output
 * and thinking prices.  Rounded up; at least 1 when anything is priced.
 */
int64_t gr_shm_spend_worst(const struct gr_shm_price *p, int64_t input,
                           int64_t max_out);

/* What a call cost, from its usage (rounded up). */
int64_t gr_shm_spend_actual(const struct gr_shm_price *p,
                            const struct gr_shm_spend_use *u);

/*
 * Count amount on record s for Pacific day `day`, within its caps: 0,
 * or -EDQUOT with *which saying which cap (nothing counted then).
 */
int gr_shm_spend_admit(struct gr_shm_spend *s, int64_t amount, int32_t day,
                       int *which);

/*
 * Change what s counts for day (and its month) by delta, as long as the
 * counters still count that day (month): a settle's difference between
 * the reservation and the real cost.  Saturates at 0 and at the word's
 * capacity.
 */
void gr_shm_spend_adjust(struct gr_shm_spend *s, int32_t day, int64_t delta);

/* What word w counts for tag (a day or a month), in micro-USD. */
int64_t gr_shm_spend_used(const _Atomic uint64_t *w, int32_t tag);

/* Router only: a slot given to another project starts from nothing. */
void gr_shm_spend_clear(struct gr_shm_spend *s);

/* Router only: the counters restored from the state file. */
void gr_shm_spend_restore(struct gr_shm_spend *s, int32_t day,
                          int64_t day_used, int64_t month_used);

#endif
