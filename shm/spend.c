/*
 * spend.c - spend caps: prices, the worst case a call may cost, what it
 * did cost, and the day and month counters of a project or the pool.
 *
 * Invariant protected: a reservation is counted only while the day and
 * the month it lands on stay within their caps (each a CAS that checks
 * the cap and adds, one word each, rolled back together); a counter
 * whose day or month has passed reads as 0, so the reset at the Pacific
 * midnight (and month start) needs no writer.  A settle only changes
 * the day and month it was reserved on: after the midnight the new day
 * starts from what the new day admitted.
 */
#include "spend.h"
#include "seqlock.h"

#include <errno.h>
#include <string.h>

#define TAG_MASK ((UINT64_C(1) << (64 - GR_SPEND_AMOUNT_BITS)) - 1)

static uint64_t
pack(int32_t tag, int64_t amount)
{
    return ((uint64_t)tag & TAG_MASK) << GR_SPEND_AMOUNT_BITS |
           ((uint64_t)amount & GR_SPEND_AMOUNT_MASK);
}

static int64_t
amount_of(uint64_t w, int32_t tag)
{
    if ((w >> GR_SPEND_AMOUNT_BITS) != ((uint64_t)tag & TAG_MASK))
        return 0;
    return (int64_t)(w & GR_SPEND_AMOUNT_MASK);
}

int32_t
gr_shm_month_of_day(int32_t day)
{
    /* civil_from_days (H. Hinnant), the year and month only */
    int64_t z = (int64_t)day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;

    if (m <= 2)
        y++;
    return (int32_t)((y - 1970) * 12 + (m - 1));
}

struct price_copy {
    const struct gr_shm_price *from;
    struct gr_shm_price *to;
};

static void
price_copy(void *arg)
{
    const struct price_copy *pc = arg;

    gr_shm_seq_copy_out(pc->to, pc->from, sizeof(*pc->to));
}

int
gr_shm_price_read(const struct gr_shm *t, uint32_t model,
                  struct gr_shm_price *p)
{
    struct price_copy pc;

    if (t->prices == NULL || model >= t->max_models)
        return -ENOENT;
    pc.from = &t->prices[model];
    pc.to = p;
    if (!gr_shm_seq_read(&t->hdr->models_seq, price_copy, &pc))
        return -EAGAIN;
    return (p->flags & GR_PRICE_SET) ? 0 : -ENOENT;
}

void
gr_shm_price_publish(const struct gr_shm *t,
                     const struct gr_shm_price *prices, uint32_t n)
{
    uint32_t i;

    if (t->prices == NULL)
        return;
    gr_shm_seq_write_begin(&t->hdr->models_seq);
    for (i = 0; i < t->max_models; i++) {
        struct gr_shm_price none;

        memset(&none, 0, sizeof(none));
        gr_shm_seq_copy_in(&t->prices[i], i < n ? &prices[i] : &none,
                           sizeof(none));
    }
    gr_shm_seq_write_end(&t->hdr->models_seq);
}

/* tokens at price micro-USD per 1M tokens, rounded up; tokens and the
 * price are clamped so that the product stays in range. */
static int64_t
cost_of(int64_t tokens, uint32_t price)
{
    if (tokens <= 0 || price == 0)
        return 0;
    if (tokens > INT32_MAX)
        tokens = INT32_MAX;
    return (tokens * (int64_t)price + 999999) / 1000000;
}

int64_t
gr_shm_spend_worst(const struct gr_shm_price *p, int64_t input,
                   int64_t max_out)
{
    bool longer = p->long_above > 0 && input > (int64_t)p->long_above;
    uint32_t in = longer ? p->input_long : p->input;
    uint32_t out = longer ? p->output_long : p->output;
    uint32_t th = longer ? p->thinking_long : p->thinking;
    int64_t sum;

    if (max_out <= 0)
        max_out = p->max_output;
    sum = cost_of(input, in) + cost_of(max_out, th > out ? th : out);
    return sum > 0 ? sum : 1;
}

int64_t
gr_shm_spend_actual(const struct gr_shm_price *p,
                    const struct gr_shm_spend_use *u)
{
    int64_t prompt = u->prompt > 0 ? u->prompt : 0;
    int64_t cached = u->cached > 0 ? u->cached : 0;
    bool longer = p->long_above > 0 && prompt > (int64_t)p->long_above;

    if (cached > prompt)
        cached = prompt;
    return cost_of(prompt - cached, longer ? p->input_long : p->input) +
           cost_of(cached, longer ? p->cached_long : p->cached) +
           cost_of(u->output, longer ? p->output_long : p->output) +
           cost_of(u->thinking, longer ? p->thinking_long : p->thinking);
}

/* Add amount to w for tag if the sum stays within cap (<= 0: none). */
static bool
word_admit(_Atomic uint64_t *w, int64_t cap, int32_t tag, int64_t amount)
{
    /* relaxed: the word is the whole state; the CAS orders the adds */
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed);

    for (;;) {
        int64_t cur = amount_of(old, tag), next = cur + amount;

        if (cap > 0 && next > cap)
            return false;
        if (next > (int64_t)GR_SPEND_AMOUNT_MASK)
            next = (int64_t)GR_SPEND_AMOUNT_MASK;
        /* relaxed: as above */
        if (atomic_compare_exchange_weak_explicit(
                w, &old, pack(tag, next), memory_order_relaxed,
                memory_order_relaxed))
            return true;
    }
}

/* Add delta to w while it still counts tag. */
static void
word_adjust(_Atomic uint64_t *w, int32_t tag, int64_t delta)
{
    /* relaxed: see word_admit() */
    uint64_t old = atomic_load_explicit(w, memory_order_relaxed);

    for (;;) {
        int64_t next;

        if ((old >> GR_SPEND_AMOUNT_BITS) != ((uint64_t)tag & TAG_MASK))
            return;     /* that day (month) is over: nothing to change */
        next = amount_of(old, tag) + delta;
        if (next < 0)
            next = 0;
        if (next > (int64_t)GR_SPEND_AMOUNT_MASK)
            next = (int64_t)GR_SPEND_AMOUNT_MASK;
        /* relaxed: as above */
        if (atomic_compare_exchange_weak_explicit(
                w, &old, pack(tag, next), memory_order_relaxed,
                memory_order_relaxed))
            return;
    }
}

int
gr_shm_spend_admit(struct gr_shm_spend *s, int64_t amount, int32_t day,
                   int *which)
{
    int32_t month = gr_shm_month_of_day(day);
    /* relaxed: each cap is one word; a reload may change it any time */
    int64_t cap_day = atomic_load_explicit(&s->cap_day, memory_order_relaxed);
    int64_t cap_month = atomic_load_explicit(&s->cap_month,
                                             memory_order_relaxed);

    if (!word_admit(&s->day, cap_day, day, amount)) {
        *which = 1;
        return -EDQUOT;
    }
    if (!word_admit(&s->month, cap_month, month, amount)) {
        word_adjust(&s->day, day, -amount);
        *which = 2;
        return -EDQUOT;
    }
    return 0;
}

void
gr_shm_spend_adjust(struct gr_shm_spend *s, int32_t day, int64_t delta)
{
    if (delta == 0)
        return;
    word_adjust(&s->day, day, delta);
    word_adjust(&s->month, gr_shm_month_of_day(day), delta);
}

int64_t
gr_shm_spend_used(const _Atomic uint64_t *w, int32_t tag)
{
    /* relaxed: a reading for status */
    return amount_of(atomic_load_explicit(w, memory_order_relaxed), tag);
}

void
gr_shm_spend_clear(struct gr_shm_spend *s)
{
    /* relaxed: the router's own reset of a slot nobody holds a lease on */
    atomic_store_explicit(&s->day, 0, memory_order_relaxed);
    atomic_store_explicit(&s->month, 0, memory_order_relaxed);
    atomic_store_explicit(&s->refused, 0, memory_order_relaxed);
}

void
gr_shm_spend_restore(struct gr_shm_spend *s, int32_t day, int64_t day_used,
                     int64_t month_used)
{
    if (day_used > 0)
        word_admit(&s->day, 0, day, day_used);
    if (month_used > 0)
        word_admit(&s->month, 0, gr_shm_month_of_day(day), month_used);
}
