/*
 * health.c - apply what an answer means to the table.
 *
 * Health is advice to the chooser, never a lock: every field is one
 * atomic word, and the worst a lost race does is keep a cooldown a little
 * shorter or longer.  A report only lands on the project occupant it was
 * made for (generation check, DESIGN.md "slot generation").
 */
#include "health.h"
#include "reserve.h"

#include <errno.h>
#include <string.h>

/* Raise *at to v if v is later. */
static void
extend(_Atomic int64_t *at, int64_t v)
{
    /* relaxed: advice; the CAS only makes the deadline later */
    int64_t cur = atomic_load_explicit(at, memory_order_relaxed);

    while (cur < v &&
           !atomic_compare_exchange_weak_explicit(at, &cur, v,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

static void
record_qid(struct gr_shm_cell *c, const char *qid)
{
    /* relaxed: the CAS below is a try-lock; losers skip, nobody waits */
    uint32_t s = atomic_load_explicit(&c->qid_seq, memory_order_relaxed);
    size_t i, n = strlen(qid);

    if ((s & 1u) != 0 ||
        !atomic_compare_exchange_strong_explicit(&c->qid_seq, &s, s + 1,
                                                 memory_order_acquire,
                                                 memory_order_relaxed))
        return;
    if (n >= sizeof(c->last_qid))
        n = sizeof(c->last_qid) - 1;
    /* release stores: a reader that sees a new byte sees the odd count */
    for (i = 0; i <= n; i++)
        __atomic_store_n(&c->last_qid[i], i < n ? qid[i] : '\0',
                         __ATOMIC_RELEASE);
    /* release: the string is complete before the even count */
    atomic_store_explicit(&c->qid_seq, s + 2, memory_order_release);
}

void
gr_shm_last_qid(const struct gr_shm_cell *c, char *out, size_t n)
{
    /* acquire: pairs with the release in record_qid() */
    uint32_t s = atomic_load_explicit(&c->qid_seq, memory_order_acquire);
    size_t i;

    if (n == 0)
        return;
    out[0] = '\0';
    if (s & 1u)
        return;
    /* acquire loads: the re-read of qid_seq below stays after them */
    for (i = 0; i + 1 < n && i < sizeof(c->last_qid); i++)
        out[i] = __atomic_load_n(&c->last_qid[i], __ATOMIC_ACQUIRE);
    out[i] = '\0';
    /* relaxed: ordered after the acquire loads above */
    if (atomic_load_explicit(&c->qid_seq, memory_order_relaxed) != s)
        out[0] = '\0';
}

static void
on_quota(const struct gr_shm *t, struct gr_shm_cell *c,
         const struct gr_shm_outcome *o, int64_t now, uint64_t *rng)
{
    unsigned d;

    (void)t;
    if (o->dims == 0) {
        /* No details: back off the whole cell, exponentially, jittered
         * (half fixed, half random, so there is always some pause). */
        /* relaxed: advice */
        uint32_t lvl = atomic_fetch_add_explicit(&c->backoff_level, 1,
                                                 memory_order_relaxed);
        int64_t span = GR_BACKOFF_BASE_NS << (lvl < 5 ? lvl : 5);

        if (span > GR_BACKOFF_MAX_NS)
            span = GR_BACKOFF_MAX_NS;
        span = span / 2 + (int64_t)(gr_shm_rand(rng) % (uint64_t)(span / 2));
        if (o->cool_ns > span)
            span = o->cool_ns;
        extend(&c->cell_cool_until, now + span);
        atomic_fetch_add_explicit(&c->quota_429[GR_NDIM], 1,
                                  memory_order_relaxed);
        return;
    }
    for (d = 0; d < GR_NDIM; d++) {
        int64_t span = o->cool_ns > 0 ? o->cool_ns : GR_BACKOFF_BASE_NS;

        if (!(o->dims & (1u << d)))
            continue;
        extend(&c->cool_until[d], now + span);
        __atomic_store_n(&c->cool_src[d], (uint8_t)o->cool_src,
                         __ATOMIC_RELAXED);
        /* relaxed: a statistic */
        atomic_fetch_add_explicit(&c->quota_429[d], 1, memory_order_relaxed);
    }
}

static void
on_failure(struct gr_shm_cell *c, int64_t now)
{
    /* relaxed for all: advice; the worst race opens a circuit late */
    uint32_t f = atomic_fetch_add_explicit(&c->failures, 1,
                                           memory_order_relaxed) + 1;
    int64_t circ = atomic_load_explicit(&c->circuit_until,
                                        memory_order_relaxed);

    atomic_fetch_add_explicit(&c->server_5xx, 1, memory_order_relaxed);
    if (f >= GR_CIRCUIT_THRESHOLD || circ != 0) {
        uint32_t n = atomic_fetch_add_explicit(&c->open_count, 1,
                                               memory_order_relaxed);
        int64_t span = GR_CIRCUIT_OPEN_NS << (n < 5 ? n : 5);

        if (span > GR_CIRCUIT_MAX_NS)
            span = GR_CIRCUIT_MAX_NS;
        atomic_store_explicit(&c->circuit_until, now + span,
                              memory_order_relaxed);
        atomic_fetch_and_explicit(&c->health, ~GR_CELL_PROBE_TAKEN,
                                  memory_order_relaxed);
        atomic_store_explicit(&c->failures, 0, memory_order_relaxed);
    }
}

static void
on_ok(struct gr_shm_cell *c)
{
    /* relaxed for all: advice */
    atomic_fetch_add_explicit(&c->ok, 1, memory_order_relaxed);
    if (atomic_load_explicit(&c->failures, memory_order_relaxed) != 0)
        atomic_store_explicit(&c->failures, 0, memory_order_relaxed);
    if (atomic_load_explicit(&c->circuit_until, memory_order_relaxed) != 0) {
        atomic_store_explicit(&c->circuit_until, 0, memory_order_relaxed);
        atomic_store_explicit(&c->open_count, 0, memory_order_relaxed);
        atomic_fetch_and_explicit(&c->health, ~GR_CELL_PROBE_TAKEN,
                                  memory_order_relaxed);
    }
    if (atomic_load_explicit(&c->backoff_level, memory_order_relaxed) != 0)
        atomic_store_explicit(&c->backoff_level, 0, memory_order_relaxed);
}

uint32_t
gr_shm_learned_cap(const struct gr_shm *t, int64_t learned)
{
    /* relaxed: the headroom is one word; a reload may change it */
    uint32_t ppm = atomic_load_explicit(&t->hdr->headroom_ppm,
                                        memory_order_relaxed);
    int64_t cap;

    if (learned < 0 || learned > (int64_t)UINT32_MAX)
        return GR_LIMIT_NONE;       /* none, or nothing a count can hold */
    if (ppm == 0 || ppm > 1000000)
        ppm = 1000000;
    /* Rounded down, but a limit of 1 or more stays at least 1: 0 means
     * "unavailable" and would turn the dimension off (a learned 0 does
     * that on purpose, gr_shm_report()).  1 x 0.95 admitting 1 is no
     * more than Google's own limit. */
    cap = learned * (int64_t)ppm / 1000000;
    return gr_shm_limit_pack(learned > 0 && cap < 1 ? 1 : cap);
}

void
gr_shm_set_learned(const struct gr_shm *t, struct gr_shm_cell *c,
                   unsigned d, int64_t learned)
{
    if (d >= GR_NDIM)
        return;
    /* relaxed: advice; Google's own statement of the limit, then the cap
     * that admissions read (each one word, read on its own) */
    atomic_store_explicit(&c->learned[d], learned < 0 ? -1 : learned,
                          memory_order_relaxed);
    atomic_store_explicit(&c->cap[d], gr_shm_learned_cap(t, learned),
                          memory_order_relaxed);
}

/* Disable p as a whole (its keys are all refused, or Google refused the
 * project itself). */
static void
project_refused(const struct gr_shm *t, struct gr_shm_project *p)
{
    /* relaxed: advice; the router clears it when the config moves or a
     * probe passes */
    atomic_store_explicit(&p->auth_config_gen,
                          atomic_load_explicit(&t->hdr->config_generation,
                                               memory_order_relaxed),
                          memory_order_relaxed);
    atomic_fetch_or_explicit(&p->health, GR_PROJ_AUTH_FAILED,
                             memory_order_relaxed);
}

uint32_t
gr_shm_key_refused(const struct gr_shm *t, struct gr_shm_project *p,
                   unsigned k)
{
    /* acquire: pairs with the router's release of n_keys (apply.c) */
    uint32_t n = __atomic_load_n(&p->n_keys, __ATOMIC_ACQUIRE), all, bits;

    if (n == 0 || n > GR_SHM_MAX_KEYS)
        n = 1;                          /* damaged: as one key */
    if (k >= n)
        k = 0;
    all = (1u << n) - 1;
    /* relaxed: advice, one word; the OR cannot lose a sibling's bit */
    bits = atomic_fetch_or_explicit(&p->key_bad, 1u << k,
                                    memory_order_relaxed) | (1u << k);
    if ((bits & all) == all)
        project_refused(t, p);
    return bits;
}

uint32_t
gr_shm_keys_usable(struct gr_shm_project *p, uint32_t n_keys)
{
    uint32_t all, ok;

    if (n_keys == 0 || n_keys > GR_SHM_MAX_KEYS)
        n_keys = 1;
    all = (1u << n_keys) - 1;
    /* relaxed: advice; a key refused a moment ago is tried once more */
    ok = all & ~atomic_load_explicit(&p->key_bad, memory_order_relaxed);
    return ok != 0 ? ok : all;
}

int
gr_shm_report(const struct gr_shm *t, uint32_t slot, uint32_t model,
              uint32_t project_gen, const struct gr_shm_outcome *o,
              int64_t now_ns, uint64_t *rng)
{
    struct gr_shm_project *p = gr_shm_project(t, slot);
    struct gr_shm_cell *c = gr_shm_cell(t, slot, model);
    unsigned d;

    if (p == NULL || c == NULL)
        return -EINVAL;
    /* acquire: pairs with the router's release when it reuses the slot */
    if (atomic_load_explicit(&p->generation, memory_order_acquire) !=
        project_gen)
        return -ESTALE;
    if (o->cls != GR_OUT_OK && o->status > 0)
        atomic_store_explicit(&c->last_status, (uint32_t)o->status,
                              memory_order_relaxed);
    if (o->quota_id != NULL && o->quota_id[0] != '\0')
        record_qid(c, o->quota_id);
    for (d = 0; d < GR_NDIM; d++) {
        if (o->learned[d] < 0)
            continue;
        gr_shm_set_learned(t, c, d, o->learned[d]);
        if (o->learned[d] == 0)
            atomic_fetch_or_explicit(&c->health, GR_CELL_DISABLED_MODEL,
                                     memory_order_relaxed);
    }
    switch (o->cls) {
    case GR_OUT_OK:
        on_ok(c);
        break;
    case GR_OUT_QUOTA:
        on_quota(t, c, o, now_ns, rng);
        break;
    case GR_OUT_OVERLOAD:
    case GR_OUT_SERVER:
        on_failure(c, now_ns);
        break;
    case GR_OUT_AUTH:
        /* relaxed: a statistic */
        atomic_fetch_add_explicit(&c->auth_err, 1, memory_order_relaxed);
        if (o->disable == 0)            /* an older verdict: the project */
            project_refused(t, p);
        break;
    case GR_OUT_MODEL:
        atomic_fetch_add_explicit(&c->other_err, 1, memory_order_relaxed);
        atomic_fetch_or_explicit(&c->health, GR_CELL_DISABLED_MODEL,
                                 memory_order_relaxed);
        break;
    default:
        atomic_fetch_add_explicit(&c->other_err, 1, memory_order_relaxed);
        break;
    }
    if (o->disable == 1)
        atomic_fetch_or_explicit(&c->health, GR_CELL_DISABLED_MODEL,
                                 memory_order_relaxed);
    else if (o->disable == 2)
        project_refused(t, p);
    else if (o->disable == 3)
        (void)gr_shm_key_refused(t, p, o->key);
    return 0;
}
