/*
 * reserve.c - claim a lease, choose a cell, admit on every dimension or
 * none; settle; and the router's reaping of leases whose owner died.
 *
 * Invariants protected (DESIGN.md 1, 2, 4): admission is all-or-nothing
 * across dimensions; nobody waits for anybody; and a lease's held bits
 * say exactly which counters it still owes.  A bit is set only after its
 * counter was raised and cleared before the counter is lowered, so a
 * process killed between the two steps leaves a leak (conservative, and
 * repaired by the router's audit) and never a double release.
 *
 * Requests in flight are not counted in the cell (a counter would cost
 * two locked instructions on every call): a lease that holds
 * GR_HELD_INFLIGHT is one, and the rare reader that needs the number (a
 * day roll, status) counts the leases.
 *
 * Tokens per day (TPD) are a day counter of input tokens (cell.tday),
 * admitted after the requests' day and settled like the TPM window: the
 * estimate is admitted, the tokens Google counted replace it at the
 * settle (more counted at once, less given back).  A new day starts at
 * the tokens in flight, as RPD's starts at the requests in flight.
 */
#include "reserve.h"
#include "window.h"

#include <errno.h>
#include <stddef.h>

static const unsigned window_dim[GR_NWINDOWS] = {GR_D_RPM, GR_D_TPM,
                                                 GR_D_IPM};

#define LEASE_SEQ_MASK UINT64_C(0xffffff)

/* The loops over the three windows or four dimensions of the hot path,
 * unrolled: -O2 keeps them as loops, and unrolled they save a tenth of
 * the instructions of a reserve + commit (callgrind). */
#define UNROLLED _Pragma("GCC unroll 4")

static uint64_t
lease_word(uint32_t pid, uint64_t seq, unsigned state)
{
    return ((uint64_t)pid << 32) | ((seq & LEASE_SEQ_MASK) << 8) | state;
}

static uint64_t
lease_seq(uint64_t s)
{
    return (s >> 8) & LEASE_SEQ_MASK;
}

/* The limit an admission on dimension d of c must stay under: the
 * smaller of the router's and the learned cap; -1 = unlimited. */
static inline int64_t
cell_limit(const struct gr_shm_cell *c, unsigned d)
{
    /* relaxed: each is one word; a reload or a report may change it at
     * any time, and every value is a valid limit */
    uint32_t lim = atomic_load_explicit(&c->limit[d], memory_order_relaxed);
    uint32_t cap = atomic_load_explicit(&c->cap[d], memory_order_relaxed);

    return gr_shm_limit_unpack(lim < cap ? lim : cap);
}

int64_t
gr_shm_cell_limit(const struct gr_shm_cell *c, unsigned d)
{
    return cell_limit(c, d);
}

/* A number in [0, n) from the caller's random state, without a division
 * (the high half of the product of a 32-bit random number and n). */
static inline uint32_t
rand_below(uint64_t *rng, uint32_t n)
{
    return (uint32_t)(((gr_shm_rand(rng) >> 32) * (uint64_t)n) >> 32);
}

static void
set_held(struct gr_shm_lease *l, uint32_t held)
{
    /* release: the counter change this records is visible first; only
     * the lease's owner writes held while it owns the lease */
    atomic_store_explicit(&l->held, held, memory_order_release);
}

/*
 * Claim a free lease slot; -ENOSPC when there is none.  The search starts
 * at the caller's hint, the slot it freed last: that line is still in its
 * own cache, where a random slot is often in another core's (the last
 * process that used it), a transfer on every call.
 */
static int
claim_lease(const struct gr_shm *t, uint32_t pid, uint64_t *rng,
            uint32_t hint, uint32_t *index, uint64_t *word)
{
    uint32_t n = t->max_leases, k;
    uint32_t i = hint < n ? hint : rand_below(rng, n);

    for (k = 0; k < n; k++, i = i + 1 < n ? i + 1 : 0) {
        struct gr_shm_lease *l = &t->leases[i];
        /* relaxed: the CAS below decides */
        uint64_t s = atomic_load_explicit(&l->state, memory_order_relaxed);

        if (gr_shm_lease_state(s) != GR_LEASE_FREE)
            continue;
        /* acquire: we see the previous owner's last writes before ours */
        if (atomic_compare_exchange_strong_explicit(
                &l->state, &s,
                lease_word(pid, lease_seq(s) + 1, GR_LEASE_INTENT),
                memory_order_acquire, memory_order_relaxed)) {
            *index = i;
            *word = lease_word(pid, lease_seq(s) + 1, GR_LEASE_INTENT);
            set_held(l, 0);
            return 0;
        }
    }
    return -ENOSPC;
}

static void
free_lease(struct gr_shm_lease *l, uint64_t word)
{
    /* release: the lease's last writes are visible to its next owner */
    atomic_store_explicit(&l->state,
                          lease_word(0, lease_seq(word), GR_LEASE_FREE),
                          memory_order_release);
}

/* The requests lease l counts in flight on its cell, or 0. */
static int64_t
lease_in_flight(const struct gr_shm_lease *l, uint32_t *cell)
{
    /* acquire: pairs with free_lease() and the claim; then held
     * (acquire) pairs with set_held(), which comes after the cell and
     * the cost were written */
    uint64_t s = atomic_load_explicit(&l->state, memory_order_acquire);
    int64_t n;

    if (gr_shm_lease_state(s) == GR_LEASE_FREE ||
        !(atomic_load_explicit(&l->held, memory_order_acquire) &
          GR_HELD_INFLIGHT))
        return 0;
    *cell = __atomic_load_n(&l->cell, __ATOMIC_RELAXED);
    n = __atomic_load_n(&l->cost[GR_W_RPM], __ATOMIC_RELAXED);
    return n > 0 && n <= INT32_MAX ? n : 0;   /* untrusted */
}

int64_t
gr_shm_cell_in_flight(const struct gr_shm *t, uint32_t cell, uint32_t except)
{
    int64_t sum = 0;
    uint32_t i;

    for (i = 0; i < t->max_leases; i++) {
        uint32_t at = UINT32_MAX;
        int64_t n = i == except ? 0 : lease_in_flight(&t->leases[i], &at);

        if (n > 0 && at == cell)
            sum += n;
    }
    return sum;
}

void
gr_shm_in_flight_all(const struct gr_shm *t, int64_t *per_cell)
{
    uint32_t i, n_cells = t->max_projects * t->max_models;

    for (i = 0; i < n_cells; i++)
        per_cell[i] = 0;
    for (i = 0; i < t->max_leases; i++) {
        uint32_t at = UINT32_MAX;
        int64_t n = lease_in_flight(&t->leases[i], &at);

        if (n > 0 && at < n_cells)
            per_cell[at] += n;
    }
}

/* For a day roll: in flight on a cell but for the roller's own lease
 * (its requests are admitted on the new day right after). */
struct in_flight_arg {
    const struct gr_shm *t;
    uint32_t cell;
    uint32_t lease;
};

static int64_t
in_flight_but(const void *arg)
{
    const struct in_flight_arg *fa = arg;

    return gr_shm_cell_in_flight(fa->t, fa->cell, fa->lease);
}

/* The spend record of the lease's project, or NULL (untrusted cell). */
static struct gr_shm_spend *
lease_spend(const struct gr_shm *t, const struct gr_shm_lease *l)
{
    uint32_t cell = __atomic_load_n(&l->cell, __ATOMIC_RELAXED);

    if (t->spend == NULL || t->max_models == 0 ||
        cell / t->max_models >= t->max_projects)
        return NULL;
    return &t->spend[cell / t->max_models];
}

/*
 * Give back the spend bits of held, each cleared before its counter is
 * changed: by delta (the real cost minus the reservation; 0 keeps the
 * reservation).  Returns held without them.
 */
static uint32_t
spend_release(const struct gr_shm *t, struct gr_shm_lease *l, uint32_t held,
              int64_t delta)
{
    int32_t day = l->spend_day;
    struct gr_shm_spend *own = lease_spend(t, l);

    if (held & GR_HELD_SPEND) {
        held &= ~GR_HELD_SPEND;
        set_held(l, held);
        if (own != NULL)
            gr_shm_spend_adjust(own, day, delta);
        else
            gr_shm_anomaly(t);
    }
    if (held & GR_HELD_SPEND_POOL) {
        held &= ~GR_HELD_SPEND_POOL;
        set_held(l, held);
        if (t->spend != NULL)
            gr_shm_spend_adjust(&t->spend[t->max_projects], day, delta);
    }
    return held;
}

/* The same for the tokens of the leases in flight (a TPD roll). */
static int64_t
tokens_in_flight_but(const void *arg)
{
    const struct in_flight_arg *fa = arg;
    int64_t sum = 0;
    uint32_t i;

    for (i = 0; i < fa->t->max_leases; i++) {
        const struct gr_shm_lease *l = &fa->t->leases[i];
        uint32_t at = UINT32_MAX;
        int64_t n;

        if (i == fa->lease || lease_in_flight(l, &at) == 0 ||
            at != fa->cell)
            continue;
        n = __atomic_load_n(&l->cost[GR_W_TPM], __ATOMIC_RELAXED);
        if (n > 0 && n <= UINT32_MAX)           /* untrusted */
            sum += n;
    }
    return sum;
}

/* Give back everything held, each bit cleared before its counter. */
static void
roll_back(const struct gr_shm *t, struct gr_shm_cell *c, struct gr_shm_lease *l,
          uint32_t held)
{
    unsigned w;

    if (held & (GR_HELD_SPEND | GR_HELD_SPEND_POOL))
        held = spend_release(t, l, held, -l->spend);
    if (held & GR_HELD_TDAY) {
        held &= ~GR_HELD_TDAY;
        set_held(l, held);
        gr_shm_day_give_back(&c->tday, l->cost[GR_W_TPM]);
    }
    if (held & GR_HELD_DAY) {
        held &= ~GR_HELD_DAY;
        set_held(l, held);
        gr_shm_day_give_back(&c->day, l->cost[GR_W_RPM]);
    }
    if (held & GR_HELD_INFLIGHT) {
        held &= ~GR_HELD_INFLIGHT;
        set_held(l, held);
    }
    for (w = 0; w < GR_NWINDOWS; w++) {
        if (held & GR_HELD_WINDOW(w)) {
            held &= ~GR_HELD_WINDOW(w);
            set_held(l, held);
            gr_shm_window_give_back(t, c, w, l->cost[w]);
        }
    }
}

#define PROBE_HOLD_NS (INT64_C(30) * 1000000000)

/*
 * Is the cell open for a new lease now?  Fills *until when it is not and
 * will be at a known instant.  A circuit whose open time has passed is
 * half-open: exactly one caller wins the CAS that takes its probe (the
 * circuit stays closed to others for PROBE_HOLD_NS, or until the probe's
 * report), and *probe_from says what to put back if that caller then
 * admits nothing.
 */
static bool
cell_usable(struct gr_shm_cell *c, const struct gr_shm_ask *a, int64_t *until,
            int64_t *probe_from)
{
    /* relaxed for all: health is advice; admission is the CAS later */
    uint32_t h = atomic_load_explicit(&c->health, memory_order_relaxed);
    int64_t now = a->now_ns, cu, circ;
    unsigned d;

    if (h & (GR_CELL_DISABLED_MODEL | GR_CELL_OP_DISABLED |
             GR_CELL_OP_DRAINING))
        return false;
    cu = atomic_load_explicit(&c->cell_cool_until, memory_order_relaxed);
    if (cu > now) {
        *until = cu;
        return false;
    }
    UNROLLED
    for (d = 0; d < GR_NDIM; d++) {
        int64_t cd = atomic_load_explicit(&c->cool_until[d],
                                          memory_order_relaxed);

        if (cd > now && (d == GR_D_RPD || d == GR_D_RPM ||
                         ((d == GR_D_TPM || d == GR_D_TPD) &&
                          a->cost[GR_W_TPM] > 0) ||
                         (d == GR_D_IPM && a->cost[GR_W_IPM] > 0))) {
            *until = cd;
            return false;
        }
    }
    circ = atomic_load_explicit(&c->circuit_until, memory_order_relaxed);
    if (circ > now) {
        *until = circ;
        return false;
    }
    if (circ != 0) {
        /* relaxed: the CAS elects one prober; health is advice */
        if (!atomic_compare_exchange_strong_explicit(
                &c->circuit_until, &circ, now + PROBE_HOLD_NS,
                memory_order_relaxed, memory_order_relaxed))
            return false;
        atomic_fetch_or_explicit(&c->health, GR_CELL_PROBE_TAKEN,
                                 memory_order_relaxed);
        *probe_from = circ;
    }
    return true;
}

/* The prober admitted nothing: let the next caller take the probe. */
static void
give_back_probe(struct gr_shm_cell *c, int64_t probe_from, int64_t now)
{
    int64_t held = now + PROBE_HOLD_NS;

    /* relaxed: only undoes our own CAS if nothing moved it since */
    if (atomic_compare_exchange_strong_explicit(
            &c->circuit_until, &held, probe_from, memory_order_relaxed,
            memory_order_relaxed))
        atomic_fetch_and_explicit(&c->health, ~GR_CELL_PROBE_TAKEN,
                                  memory_order_relaxed);
}

static bool
project_usable(const struct gr_shm *t, uint32_t slot, uint32_t *gen)
{
    struct gr_shm_project *p = gr_shm_project(t, slot);

    if (p == NULL)
        return false;
    /* acquire: pairs with the router's release when it activates a slot */
    if (atomic_load_explicit(&p->state, memory_order_acquire) !=
        GR_PROJ_ACTIVE)
        return false;
    /* relaxed: advice; a report that lands on a changed slot is dropped
     * by its generation check */
    if (atomic_load_explicit(&p->health, memory_order_relaxed) &
        (GR_PROJ_AUTH_FAILED | GR_PROJ_OP_DISABLED | GR_PROJ_OP_DRAINING))
        return false;
    *gen = atomic_load_explicit(&p->generation, memory_order_relaxed);
    return true;
}

bool
gr_shm_watch_init(const struct gr_shm *t, uint32_t cell, uint32_t gen,
                  struct gr_shm_watch *w)
{
    w->cell = gr_shm_cell_at(t, cell);
    w->project = t->max_models != 0 ? gr_shm_project(t, cell / t->max_models)
                                    : NULL;
    w->project_gen = gen;
    return w->cell != NULL && w->project != NULL;
}

/* A cell's effective limits, read once per cell and reservation. */
struct cell_limits {
    int64_t dim[GR_NDIM];
};

static void
read_limits(const struct gr_shm_cell *c, struct cell_limits *lim)
{
    unsigned d;

    UNROLLED
    for (d = 0; d < GR_NDIM; d++)
        lim->dim[d] = cell_limit(c, d);
}

/* Relative room left on the tightest dimension the ask uses (a
 * fraction of the limit; 2 when no dimension is limited). */
static double
headroom(const struct gr_shm_cell *c, const struct cell_limits *lim,
         const struct gr_shm_ask *a)
{
    double best = 2.0;
    unsigned w;

    UNROLLED
    for (w = 0; w < GR_NWINDOWS; w++) {
        int64_t l = lim->dim[window_dim[w]], used;
        double r;

        if (a->cost[w] <= 0 || l <= 0)
            continue;
        /* relaxed: a heuristic for choosing */
        used = (int64_t)gr_shm_word_used(atomic_load_explicit(
            &c->word[w], memory_order_relaxed));
        r = (double)(l - used - a->cost[w]) / (double)l;
        if (r < best)
            best = r;
    }
    return best;
}

/*
 * How many times the ask's cost to admit at once on c: up to a->batch,
 * while every limited dimension keeps BATCH_ROOM times the batch free
 * (a batch never takes more than 1/BATCH_ROOM of the room left, so near
 * a limit every admission is single again), and 1 when that allows
 * fewer than two.  The counts are read relaxed: a stale one only makes
 * the batch wrong in size, and each admission still checks its limit.
 */
#define BATCH_ROOM 16

static int64_t
batch_for(const struct gr_shm_cell *c, const struct cell_limits *lim,
          const struct gr_shm_ask *a)
{
    int64_t k = a->batch, room;
    unsigned w;

    if (k < 2)
        return 1;
    UNROLLED
    for (w = 0; w < GR_NWINDOWS; w++) {
        int64_t l = lim->dim[window_dim[w]], cost = a->cost[w];

        if (cost <= 0)
            continue;
        if (k > INT32_MAX / cost)       /* keeps every lease cost in range */
            k = INT32_MAX / cost;
        if (l < 0)
            continue;
        /* relaxed: see above */
        room = l - (int64_t)gr_shm_word_used(atomic_load_explicit(
                       &c->word[w], memory_order_relaxed));
        if (room / BATCH_ROOM / cost < k)
            k = room / BATCH_ROOM / cost;
    }
    if (lim->dim[GR_D_RPD] >= 0 && a->cost[GR_W_RPM] > 0) {
        room = lim->dim[GR_D_RPD] - gr_shm_day_used(&c->day, a->today);
        if (room / BATCH_ROOM / a->cost[GR_W_RPM] < k)
            k = room / BATCH_ROOM / a->cost[GR_W_RPM];
    }
    if (lim->dim[GR_D_TPD] >= 0 && a->cost[GR_W_TPM] > 0) {
        room = lim->dim[GR_D_TPD] - gr_shm_day_used(&c->tday, a->today);
        if (room / BATCH_ROOM / a->cost[GR_W_TPM] < k)
            k = room / BATCH_ROOM / a->cost[GR_W_TPM];
    }
    return k < 2 ? 1 : k;
}

/*
 * Count the spend of k calls on the project's record (slot) and the
 * pool's, within their caps; on a refusal *why says which and held is
 * what the lease holds for roll_back().  Only when the ask carries a
 * spend (a cap is configured): no write to a shared line otherwise.
 */
static int
admit_spend(const struct gr_shm *t, uint32_t slot, struct gr_shm_lease *l,
            const struct gr_shm_ask *a, int64_t k, uint32_t *held,
            struct gr_shm_spend_why *why)
{
    int64_t amount = a->spend > INT64_MAX / k ? INT64_MAX / k : a->spend * k;
    int which = 0;

    if (t->spend == NULL)
        return 0;
    if (amount > (int64_t)GR_SPEND_AMOUNT_MASK)
        amount = (int64_t)GR_SPEND_AMOUNT_MASK;
    /* relaxed: read back by a settle or reap after the release of held */
    __atomic_store_n(&l->spend, amount, __ATOMIC_RELAXED);
    __atomic_store_n(&l->spend_day, a->today, __ATOMIC_RELAXED);
    if (gr_shm_spend_admit(&t->spend[slot], amount, a->today, &which) != 0) {
        if (why->slot != (int32_t)t->max_projects) {   /* the pool's wins */
            why->slot = (int32_t)slot;
            why->which = which;
        }
        return -EDQUOT;
    }
    *held |= GR_HELD_SPEND;
    set_held(l, *held);
    if (gr_shm_spend_admit(&t->spend[t->max_projects], amount, a->today,
                           &which) != 0) {
        why->slot = (int32_t)t->max_projects;
        why->which = which;
        return -EDQUOT;
    }
    *held |= GR_HELD_SPEND_POOL;
    set_held(l, *held);
    return 0;
}

/* Try to admit k times the ask's cost on one cell with lease l.  0 or
 * -EAGAIN. */
static int
admit_on(const struct gr_shm *t, uint32_t slot, struct gr_shm_cell *c,
         const struct cell_limits *lims, struct gr_shm_lease *l,
         const struct gr_shm_ask *a, int64_t k, uint64_t tick,
         int64_t *retry_at, struct gr_shm_spend_why *why)
{
    uint32_t held = 0;
    int64_t lim, cost;
    unsigned w;

    UNROLLED
    for (w = 0; w < GR_NWINDOWS; w++) {
        cost = a->cost[w] * k;
        /* relaxed: read by day rollers after the release of held */
        __atomic_store_n(&l->cost[w], cost, __ATOMIC_RELAXED);
        lim = lims->dim[window_dim[w]];
        if (lim == 0)
            goto full;
        if (lim < 0 || cost <= 0)
            continue;
        if (gr_shm_window_admit_tick(t, c, w, cost, lim, tick) != 0) {
            int64_t at = gr_shm_window_room_at(t, c, w, cost, lim,
                                               a->now_ns);

            if (at < *retry_at)
                *retry_at = at;
            goto full;
        }
        held |= GR_HELD_WINDOW(w);
        set_held(l, held);
    }
    lim = lims->dim[GR_D_RPD];
    if (lim == 0 || (lims->dim[GR_D_TPD] == 0 && a->cost[GR_W_TPM] > 0))
        goto full;
    if (a->cost[GR_W_RPM] <= 0)
        return 0;       /* no request (countTokens): nothing in flight */
    /* In flight from here: marked before the day CAS, whose release makes
     * the mark visible to a roller that sees this admission. */
    held |= GR_HELD_INFLIGHT;
    set_held(l, held);
    if (lim > 0) {
        struct in_flight_arg fa = {t, (uint32_t)(c - t->cells),
                                   (uint32_t)(l - t->leases)};

        if (gr_shm_day_admit(&c->day, lim, a->today, in_flight_but,
                             &fa, a->cost[GR_W_RPM] * k) != 0)
            goto day_full;  /* the day is spent: room at its end */
    }
    if (lim > 0) {
        held |= GR_HELD_DAY;
        set_held(l, held);
    }
    /* Tokens per day, on the same terms: after the requests' day, whose
     * in-flight mark a TPD roll counts too. */
    lim = lims->dim[GR_D_TPD];
    cost = a->cost[GR_W_TPM] * k;
    if (lim > 0 && cost > 0) {
        struct in_flight_arg fa = {t, (uint32_t)(c - t->cells),
                                   (uint32_t)(l - t->leases)};

        if (gr_shm_day_admit(&c->tday, lim, a->today, tokens_in_flight_but,
                             &fa, cost) != 0)
            goto day_full;  /* the day's tokens are spent */
        held |= GR_HELD_TDAY;
        set_held(l, held);
    }
    if (a->spend > 0 &&
        admit_spend(t, slot, l, a, k, &held, why) != 0)
        goto full;
    return 0;

day_full:
    if (a->day_end_ns > a->now_ns && a->day_end_ns < *retry_at)
        *retry_at = a->day_end_ns;
full:
    roll_back(t, c, l, held);
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
    return -EAGAIN;
}

/* Try the ask on the cell of slot; lims are its limits, or NULL to read
 * them here. */
static int
try_cell(const struct gr_shm *t, uint32_t slot,
         const struct cell_limits *lims, const struct gr_shm_ask *a,
         uint64_t tick, struct gr_shm_lease *l, struct gr_shm_grant *g,
         int64_t *retry_at)
{
    struct gr_shm_spend_why *why = &g->spend;
    struct gr_shm_cell *c = gr_shm_cell(t, slot, a->model);
    struct cell_limits own;
    int64_t probe_from = 0, k;
    uint32_t gen;

    if (c == NULL || !project_usable(t, slot, &gen) ||
        !cell_usable(c, a, retry_at, &probe_from))
        return -EAGAIN;
    if (lims == NULL) {
        read_limits(c, &own);
        lims = &own;
    }
    /* A probe is one call: never a batch. */
    k = probe_from == 0 ? batch_for(c, lims, a) : 1;
    l->project_gen = gen;
    l->admitted_ns = a->now_ns;
    /*
     * seq_cst store, then seq_cst loads of the slot: the router stores
     * REMOVING (seq_cst) and then scans the leases' cells (seq_cst) before
     * it frees a slot.  In one total order, either it sees this lease on
     * the slot and keeps the slot, or we see the slot leaving and admit
     * nothing on it.
     */
    __atomic_store_n(&l->cell, slot * t->max_models + a->model,
                     __ATOMIC_SEQ_CST);
    if (atomic_load_explicit(&t->projects[slot].state,
                             memory_order_seq_cst) != GR_PROJ_ACTIVE ||
        atomic_load_explicit(&t->projects[slot].generation,
                             memory_order_seq_cst) != gen ||
        admit_on(t, slot, c, lims, l, a, k, tick, retry_at, why) != 0) {
        if (probe_from != 0)
            give_back_probe(c, probe_from, a->now_ns);
        return -EAGAIN;
    }
    /* From our own values, not read back from the lease: the segment is
     * untrusted, and the caller indexes with this. */
    g->cell = slot * t->max_models + a->model;
    g->slot = slot;
    g->project_gen = gen;
    g->batch = (uint32_t)k;
    return 0;
}

/* Ask for the lines a reservation reads of a candidate: its cell (limits
 * and counters, then health), its project and its first key.  A hint:
 * an index out of range is skipped here and refused later. */
static void
prefetch_candidate(const struct gr_shm *t, uint32_t slot, uint32_t model)
{
    const struct gr_shm_cell *c = gr_shm_cell(t, slot, model);

    if (c == NULL)
        return;
    __builtin_prefetch(c, 1);
    __builtin_prefetch(&c->cool_until[0], 0);
    __builtin_prefetch(&c->day, 1);
    __builtin_prefetch(&t->projects[slot], 0);
    __builtin_prefetch(gr_shm_key(t, slot, 0), 0);
}

static uint32_t
choice_at(const struct gr_shm *t, uint32_t i)
{
    /* relaxed: an index, range-checked by every user */
    return atomic_load_explicit(&t->choice[i], memory_order_relaxed);
}

int
gr_shm_reserve(const struct gr_shm *t, const struct gr_shm_ask *a,
               struct gr_shm_grant *g)
{
    struct gr_shm_lease *l;
    uint32_t n, i, lease, first = 0, second = 0, start;
    bool p2c;
    uint64_t word, tick = gr_shm_tick(a->now_ns, t->tick_ns);
    int64_t retry_at = INT64_MAX;
    int rc;

    g->spend.slot = -1;
    g->spend.which = 0;
    if (a->model >= t->max_models)
        return -ENOENT;
    /* relaxed: a count, clamped below */
    n = atomic_load_explicit(&t->hdr->n_choice, memory_order_relaxed);
    if (n > GR_CHOICE_PER_PROJECT * t->max_projects)
        n = GR_CHOICE_PER_PROJECT * t->max_projects;
    if (n == 0)
        return -ENOENT;
    /* relaxed: the mode is advice; every mode admits safely */
    p2c = atomic_load_explicit(&t->hdr->choice_mode,
                               memory_order_relaxed) != 2 && a->pin == 0;
    if (a->pin != 0 && a->pin > t->max_projects)
        return -ENOENT;
    /* The two candidates first, so that the lines they need are on their
     * way while the lease is claimed (in a large table each is a cache
     * miss, and one after the other they would add up). */
    if (p2c) {
        first = choice_at(t, rand_below(a->rng, n));
        second = choice_at(t, rand_below(a->rng, n));
        prefetch_candidate(t, first, a->model);
        prefetch_candidate(t, second, a->model);
    }
    rc = claim_lease(t, a->pid, a->rng, a->lease_hint, &lease, &word);
    if (rc != 0)
        return rc;
    l = &t->leases[lease];

    if (p2c) {
        /* Power of two choices: the one with more room first. */
        struct cell_limits lim1, lim2;
        const struct cell_limits *l1 = NULL, *l2 = NULL;

        if (first != second) {
            struct gr_shm_cell *c1 = gr_shm_cell(t, first, a->model);
            struct gr_shm_cell *c2 = gr_shm_cell(t, second, a->model);

            if (c1 != NULL && c2 != NULL) {
                read_limits(c1, &lim1);
                read_limits(c2, &lim2);
                l1 = &lim1;
                l2 = &lim2;
                if (headroom(c2, l2, a) > headroom(c1, l1, a)) {
                    uint32_t x = first;
                    const struct cell_limits *y = l1;

                    first = second;
                    second = x;
                    l1 = l2;
                    l2 = y;
                }
            }
        }
        if (try_cell(t, first, l1, a, tick, l, g, &retry_at) == 0 ||
            (second != first &&
             try_cell(t, second, l2, a, tick, l, g, &retry_at) == 0))
            goto admitted;
        start = rand_below(a->rng, n);
    } else if (a->pin != 0) {
        /* Pinned: that project or nothing (it holds the resource). */
        if (try_cell(t, a->pin - 1, NULL, a, tick, l, g, &retry_at) == 0)
            goto admitted;
        n = 0;
        start = 0;
    } else {
        start = 0;      /* strict priority: the router sorted the array */
    }
    for (i = 0; i < n; i++) {
        uint32_t slot = choice_at(t, (start + i) % n);
        struct gr_shm_cell *c = gr_shm_cell(t, slot, a->model);

        if (c == NULL) {
            gr_shm_anomaly(t);
            continue;
        }
        if (try_cell(t, slot, NULL, a, tick, l, g, &retry_at) == 0)
            goto admitted;
    }
    free_lease(l, word);
    g->retry_at_ns = retry_at == INT64_MAX ? 0 : retry_at;
    /* A spend cap refused: the pool's refuses every cell alike, and a
     * project's stays shut until its midnight, so unless another cell
     * expects room the caller is told now rather than at its deadline. */
    if (g->spend.slot >= 0 &&
        ((uint32_t)g->spend.slot == t->max_projects ||
         retry_at == INT64_MAX)) {
        /* relaxed: a statistic, one per call refused */
        atomic_fetch_add_explicit(&t->spend[g->spend.slot].refused, 1,
                                  memory_order_relaxed);
        return -EDQUOT;
    }
    return -EAGAIN;

admitted:
    {
        uint64_t active = lease_word(a->pid, lease_seq(word),
                                     GR_LEASE_ACTIVE);

        /* release: the lease's fields are visible with ACTIVE; only the
         * router can race us here and it only CASes ACTIVE leases */
        atomic_store_explicit(&l->state, active, memory_order_release);
        /* relaxed: a statistic; a batch lease counts its calls when it
         * settles (gr_shm_count_calls()), the ones it sent */
        if (g->batch == 1)
            atomic_fetch_add_explicit(
                &gr_shm_cell_at(t, g->cell)->admitted, 1,
                memory_order_relaxed);
        g->lease = lease;
        g->ticket = active;
        g->retry_at_ns = 0;
    }
    return 0;
}

/* Release what a settling lease still holds; see the file comment for
 * the order of each step. */
static void
settle_held(const struct gr_shm *t, struct gr_shm_lease *l,
            int64_t first_byte_ns, const int64_t *actual, int64_t now_ns,
            int64_t spend)
{
    struct gr_shm_cell *c = gr_shm_cell_at(t, l->cell);
    /* acquire: pairs with set_held() of the lease's last owner */
    uint32_t held = atomic_load_explicit(&l->held, memory_order_acquire);
    /* One window after the first byte, which is never earlier than the
     * real one (gr_shm_settle()). */
    uint64_t at_tick = gr_shm_tick_ceil(first_byte_ns + t->window_ns,
                                        t->tick_ns);
    uint64_t now_tick = gr_shm_tick(now_ns, t->tick_ns);
    int64_t unsent;
    unsigned w;

    if (c == NULL) {
        gr_shm_anomaly(t);
        return;
    }
    UNROLLED
    for (w = 0; w < GR_NWINDOWS; w++) {
        int64_t cost = l->cost[w], act;

        if (!(held & GR_HELD_WINDOW(w)))
            continue;
        act = (actual != NULL && actual[w] >= 0) ? actual[w] : cost;
        if (cost < 0 || cost > UINT32_MAX) {
            gr_shm_anomaly(t);      /* scribbled lease: keep it counted */
            held &= ~GR_HELD_WINDOW(w);
            set_held(l, held);
            continue;
        }
        /* More than admitted: count the excess now, as much as the
         * count can hold (an answer may claim any number), and release
         * exactly what was counted. */
        if (act > cost)
            act = cost + gr_shm_window_force(t, c, w, act - cost);
        held &= ~GR_HELD_WINDOW(w);
        set_held(l, held);
        if (act < cost)
            gr_shm_window_give_back(t, c, w, cost - act);
        gr_shm_window_release_tick(t, c, w, act, at_tick, now_tick);
    }
    /* A batch lease that sent fewer requests than it was admitted for
     * gives the rest back to the day too. */
    unsent = actual != NULL && actual[GR_W_RPM] >= 0 &&
                     actual[GR_W_RPM] < l->cost[GR_W_RPM] &&
                     l->cost[GR_W_RPM] <= INT32_MAX
                 ? l->cost[GR_W_RPM] - actual[GR_W_RPM]
                 : 0;
    /* Tokens per day: what Google counted replaces the estimate, as in
     * the TPM window (the excess counted at once, the rest given back;
     * a day that rolled meanwhile started from the estimate in flight). */
    if (held & GR_HELD_TDAY) {
        int64_t cost = l->cost[GR_W_TPM];
        int64_t act = (actual != NULL && actual[GR_W_TPM] >= 0)
                          ? actual[GR_W_TPM]
                          : cost;

        held &= ~GR_HELD_TDAY;
        if (cost < 0 || cost > UINT32_MAX) {
            gr_shm_anomaly(t);      /* scribbled lease: keep it counted */
            set_held(l, held);
        } else if (act > cost) {
            /* raise before the bit is cleared (see the file comment) */
            gr_shm_day_force(&c->tday, act - cost);
            set_held(l, held);
        } else {
            set_held(l, held);
            if (act < cost)
                gr_shm_day_give_back(&c->tday, cost - act);
        }
    }
    if (held & GR_HELD_DAY) {
        held &= ~GR_HELD_DAY;   /* a day counts the requests sent */
        set_held(l, held);
        if (unsent > 0)
            gr_shm_day_give_back(&c->day, unsent);
    }
    if (held & GR_HELD_INFLIGHT) {
        held &= ~GR_HELD_INFLIGHT;
        set_held(l, held);
    }
    /* The reservation becomes the real cost, or stays (spend < 0). */
    if (held & (GR_HELD_SPEND | GR_HELD_SPEND_POOL)) {
        int64_t res = l->spend;

        if (res < 0 || res > (int64_t)GR_SPEND_AMOUNT_MASK) {
            gr_shm_anomaly(t);      /* scribbled: keep what was counted */
            res = spend = 0;
        }
        spend_release(t, l, held, spend >= 0 ? spend - res : 0);
    }
}

static int settle_lease(const struct gr_shm *t, uint32_t lease,
                        uint64_t ticket, int64_t first_byte_ns,
                        const int64_t actual[GR_NWINDOWS], int64_t now_ns,
                        int64_t spend);

int
gr_shm_settle(const struct gr_shm *t, uint32_t lease, uint64_t ticket,
              int64_t first_byte_ns, const int64_t actual[GR_NWINDOWS],
              int64_t now_ns)
{
    return settle_lease(t, lease, ticket, first_byte_ns, actual, now_ns, -1);
}

int
gr_shm_settle_spend(const struct gr_shm *t, uint32_t lease,
                    uint64_t ticket, int64_t first_byte_ns,
                    const int64_t actual[GR_NWINDOWS], int64_t now_ns,
                    int64_t spend)
{
    return settle_lease(t, lease, ticket, first_byte_ns, actual, now_ns,
                        spend);
}

static int
settle_lease(const struct gr_shm *t, uint32_t lease, uint64_t ticket,
             int64_t first_byte_ns, const int64_t actual[GR_NWINDOWS],
             int64_t now_ns, int64_t spend)
{
    struct gr_shm_lease *l = gr_shm_lease(t, lease);
    uint64_t settling;

    if (l == NULL || gr_shm_lease_state(ticket) != GR_LEASE_ACTIVE)
        return -ESTALE;
    settling = (ticket & ~UINT64_C(0xff)) | GR_LEASE_SETTLING;
    /* acquire: we see the router's writes if it touched the lease */
    if (!atomic_compare_exchange_strong_explicit(
            &l->state, &ticket, settling, memory_order_acquire,
            memory_order_relaxed))
        return -ESTALE;
    /* The answer cannot have started before the admission, nor after
     * now; anything else is a caller's mistake, clamped conservatively. */
    if (first_byte_ns <= 0 || first_byte_ns > now_ns)
        first_byte_ns = now_ns;
    if (first_byte_ns < l->admitted_ns)
        first_byte_ns = l->admitted_ns;
    settle_held(t, l, first_byte_ns, actual, now_ns, spend);
    free_lease(l, settling);
    return 0;
}

void
gr_shm_count_calls(const struct gr_shm *t, uint32_t cell, uint64_t calls)
{
    struct gr_shm_cell *c = gr_shm_cell_at(t, cell);

    if (c != NULL)
        /* relaxed: a statistic */
        atomic_fetch_add_explicit(&c->admitted, calls,
                                  memory_order_relaxed);
}

int64_t
gr_shm_charge(const struct gr_shm *t, uint32_t lease, uint64_t ticket,
              unsigned w, int64_t extra)
{
    struct gr_shm_lease *l = gr_shm_lease(t, lease);
    struct gr_shm_cell *c;
    uint32_t held;

    /* acquire: the lease's fields as its owner wrote them */
    if (l == NULL || w >= GR_NWINDOWS || extra <= 0 ||
        atomic_load_explicit(&l->state, memory_order_acquire) != ticket)
        return -ESTALE;
    c = gr_shm_cell_at(t, __atomic_load_n(&l->cell, __ATOMIC_RELAXED));
    if (c == NULL) {
        gr_shm_anomaly(t);
        return -ESTALE;
    }
    /* A window the lease does not hold (no limit) counts nothing; the
     * tokens' day, which holds the lease's token cost too, is raised by
     * as much (the whole excess when the window is not held).  Raise,
     * then record (see the file comment): a process killed in between
     * leaves the excess counted, never released twice.  What is recorded
     * is what the count took (it saturates), so the settle releases
     * exactly that. */
    held = atomic_load_explicit(&l->held, memory_order_acquire);
    if (!(held & GR_HELD_WINDOW(w)) &&
        !(w == GR_W_TPM && (held & GR_HELD_TDAY)))
        return 0;
    if (held & GR_HELD_WINDOW(w))
        extra = gr_shm_window_force(t, c, w, extra);
    if (w == GR_W_TPM && (held & GR_HELD_TDAY))
        gr_shm_day_force(&c->tday, extra);
    __atomic_fetch_add(&l->cost[w], extra, __ATOMIC_RELAXED);
    return extra;
}

bool
gr_shm_router_reap(const struct gr_shm *t, uint32_t i, uint64_t seen,
                   int64_t now_ns)
{
    struct gr_shm_lease *l = gr_shm_lease(t, i);
    unsigned st = gr_shm_lease_state(seen);
    uint64_t settling;
    struct gr_shm_cell *c;

    if (l == NULL || st == GR_LEASE_FREE)
        return false;
    settling = (seen & ~UINT64_C(0xff)) | GR_LEASE_SETTLING;
    /* acquire: the dead owner's field writes are visible */
    if (st != GR_LEASE_SETTLING &&
        !atomic_compare_exchange_strong_explicit(
            &l->state, &seen, settling, memory_order_acquire,
            memory_order_relaxed))
        return false;       /* its owner moved it meanwhile */
    /* Spend: a lease still being admitted (INTENT) never reached Google:
     * its reservation goes back; one in flight may have been billed up
     * to it, so it stays (when in doubt, no refund). */
    settle_held(t, l, now_ns, NULL, now_ns,
                st == GR_LEASE_INTENT ? 0 : -1);
    c = gr_shm_cell_at(t, l->cell);
    if (st != GR_LEASE_ACTIVE && c != NULL)
        /* relaxed: a flag for the router's own next tick */
        atomic_fetch_or_explicit(&c->health, GR_CELL_SUSPECT,
                                 memory_order_relaxed);
    free_lease(l, settling);
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&t->hdr->reaped, 1, memory_order_relaxed);
    return st != GR_LEASE_ACTIVE;
}
