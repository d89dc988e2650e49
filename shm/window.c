/*
 * window.c - the minute windows and the day counter.
 *
 * Invariant protected (DESIGN.md 1): a window's count is never lower than
 * the cost of the admissions that occupy it.  The count only goes down
 * when (a) an admission is rolled back before anything was sent, (b) the
 * unused part of an estimate is refunded after Google counted the real
 * usage, or (c) a drain subtracts ring slots whose tick has come, and a
 * slot is only filled for a tick at or after one window past the answer's
 * first byte.  Every change is one CAS on one word, so a process killed
 * anywhere leaves either the old or the new count.
 */
#include "window.h"

#include <errno.h>
#include <stdbool.h>

#define USED_MAX UINT64_C(0xffffffff)

/*
 * Every retry loop here ends: a CAS fails only because another process
 * changed the word, which is progress for the system, but a process
 * scribbling on the segment could make one caller retry forever.  After
 * MAX_TRIES a loop gives up in the conservative direction (refuse, or
 * keep the cost counted).
 */
#define MAX_TRIES 4096
#define SLOT_AMOUNT_MASK ((UINT64_C(1) << GR_SLOT_AMOUNT_BITS) - 1)

static uint64_t
slot_amount(uint64_t s)
{
    return s & SLOT_AMOUNT_MASK;
}

static uint64_t
slot_tag(uint64_t s)
{
    return (s >> GR_SLOT_AMOUNT_BITS) & GR_EPOCH_MASK;
}

static uint64_t
pack_slot(uint64_t amount, uint64_t tag)
{
    return (amount & SLOT_AMOUNT_MASK) | ((tag & GR_EPOCH_MASK) <<
                                          GR_SLOT_AMOUNT_BITS);
}

/* Is epoch e more than a ring "ahead" of tick c (stale, see drain_to)? */
static bool
epoch_stale(uint64_t c, uint64_t e)
{
    return gr_shm_epoch_diff(c, e) < -(int64_t)GR_RING;
}

/*
 * Does slot s hold cost that is due at tick c and not yet counted by a
 * committed drain of epoch e?  Open amounts count once their tick has
 * come; closed ones only if closed by a drainer that has not committed.
 * With a stale epoch, every open amount that is not a release parked for
 * the coming ticks is long due, and every closed one was counted.
 */
static bool
slot_owed(uint64_t s, uint64_t c, uint64_t e, bool stale)
{
    int64_t ahead = gr_shm_epoch_diff(slot_tag(s), c);

    if (slot_amount(s) == 0 ||
        (ahead > 0 && !(stale && ahead > (int64_t)GR_RING)))
        return false;
    if (s & GR_SLOT_CLOSED)
        return !stale && gr_shm_epoch_diff(slot_tag(s), e) > 0;
    return true;
}

static _Atomic uint64_t *
slot_at(const struct gr_shm *t, const struct gr_shm_cell *cell, unsigned w,
        uint64_t tick)
{
    return gr_shm_ring_slot(t, cell, tick, w);
}

/*
 * Subtract every ring slot whose tick is due (<= c) and not yet counted,
 * and move the word's epoch to c.  A slot is closed (no more adds) before
 * it is summed, so the sum cannot change under us; the CAS on the word is
 * the single commit point.  A drainer killed before it commits has only
 * closed slots, which the next drainer sums again (closed, tag > epoch).
 *
 * Which slots: a client looks only at the ticks that elapsed since the
 * epoch (usually one), so a drain costs the same however rarely a cell is
 * visited.  The router's sweep (whole) looks at the whole ring, which
 * also finds a release stranded behind the epoch (its adder stalled
 * across a drain); until then it stays counted, which is conservative.
 */
static void
drain_to(const struct gr_shm *t, struct gr_shm_cell *cell, unsigned w,
         uint64_t c_full, bool whole)
{
    _Atomic uint64_t *wp = &cell->word[w];
    uint64_t c = c_full & GR_EPOCH_MASK, first = c_full % GR_RING;
    /* acquire: pairs with the release of the CAS that set this word */
    uint64_t word = atomic_load_explicit(wp, memory_order_acquire);
    unsigned tries;

    for (tries = 0; tries < MAX_TRIES; tries++) {
        uint64_t e = gr_shm_word_epoch(word), pending = 0;
        int64_t elapsed = gr_shm_epoch_diff(c, e);
        bool stale = epoch_stale(c, e);
        unsigned i, n;

        /*
         * Tick numbers are serial (mod 2^20): an epoch up to a ring ahead
         * of our clock is another process's later reading, nothing to do.
         * One further "ahead" is stale: a new table's epoch 0 read while
         * the tick count is in the upper half of its period, or a cell
         * left idle (router gone) for half a period; slot_owed() says
         * what is owed then.
         */
        if (elapsed <= 0 && !stale)
            return;
        n = whole || stale || elapsed >= GR_RING ? GR_RING
                                                 : (unsigned)elapsed;
        for (i = 0; i < n; i++) {
            _Atomic uint64_t *slot =
                slot_at(t, cell, w, first + GR_RING - i);
            /* acquire: pairs with the adds in release_tick() */
            uint64_t s = atomic_load_explicit(slot, memory_order_acquire);

            for (unsigned k = 0; k < MAX_TRIES; k++) {
                if (!slot_owed(s, c, e, stale))
                    break;
                if (s & GR_SLOT_CLOSED) {
                    /* closed by a drainer that has not committed yet */
                    pending += slot_amount(s);
                    break;
                }
                /* acq_rel: the close is ordered before our commit */
                if (atomic_compare_exchange_weak_explicit(
                        slot, &s, s | GR_SLOT_CLOSED,
                        memory_order_acq_rel, memory_order_acquire)) {
                    pending += slot_amount(s);
                    break;
                }
            }
        }
        for (unsigned k = 0; k < MAX_TRIES; k++) {
            uint64_t used = gr_shm_word_used(word);

            if (gr_shm_word_epoch(word) != e)
                break;          /* another drainer committed: rescan */
            used = used >= pending ? used - pending : 0;
            /* acq_rel: publishes the closes above with the new count */
            if (atomic_compare_exchange_weak_explicit(
                    wp, &word, gr_shm_word_pack(used, c, word),
                    memory_order_acq_rel, memory_order_acquire))
                return;
        }
    }
}

void
gr_shm_window_drain(const struct gr_shm *t, struct gr_shm_cell *c,
                    unsigned w, int64_t now_ns, bool whole)
{
    drain_to(t, c, w, gr_shm_tick(now_ns, t->tick_ns), whole);
}

int
gr_shm_window_admit_tick(const struct gr_shm *t, struct gr_shm_cell *cell,
                         unsigned w, int64_t cost, int64_t limit,
                         uint64_t now_tick)
{
    _Atomic uint64_t *wp = &cell->word[w];
    uint64_t c = now_tick & GR_EPOCH_MASK;
    /* acquire: pairs with the release of the CAS that set this word */
    uint64_t word = atomic_load_explicit(wp, memory_order_acquire);

    if (gr_shm_word_epoch(word) != c) {
        drain_to(t, cell, w, now_tick, false);
        word = atomic_load_explicit(wp, memory_order_acquire);
    }
    for (unsigned k = 0; k < MAX_TRIES; k++) {
        uint64_t used = gr_shm_word_used(word);

        if ((int64_t)used + cost > limit)
            return -EAGAIN;
        /* acq_rel: the admission is one step in the word's total order,
         * which is what makes two admissions see each other. */
        if (atomic_compare_exchange_weak_explicit(
                wp, &word,
                gr_shm_word_pack(used + (uint64_t)cost,
                                 gr_shm_word_epoch(word), word),
                memory_order_acq_rel, memory_order_acquire))
            return 0;
    }
    return -EAGAIN;
}

void
gr_shm_window_give_back(const struct gr_shm *t, struct gr_shm_cell *cell,
                        unsigned w, int64_t cost)
{
    _Atomic uint64_t *wp = &cell->word[w];
    /* relaxed: the CAS below validates what we read */
    uint64_t word = atomic_load_explicit(wp, memory_order_relaxed);

    (void)t;        /* the word is in the cell */

    if (cost <= 0)
        return;
    for (unsigned k = 0; k < MAX_TRIES; k++) {
        uint64_t used = gr_shm_word_used(word);

        /* more than is counted: the segment is damaged; stop at zero */
        used = used >= (uint64_t)cost ? used - (uint64_t)cost : 0;
        /* release: sleepers that see the new count see our other writes */
        if (atomic_compare_exchange_weak_explicit(
                wp, &word,
                gr_shm_word_pack(used, gr_shm_word_epoch(word), word),
                memory_order_release, memory_order_relaxed))
            return;
    }
}

int64_t
gr_shm_window_force(const struct gr_shm *t, struct gr_shm_cell *cell,
                    unsigned w, int64_t cost)
{
    _Atomic uint64_t *wp = &cell->word[w];
    /* relaxed: the CAS below validates what we read */
    uint64_t word = atomic_load_explicit(wp, memory_order_relaxed);

    (void)t;        /* the word is in the cell */

    if (cost <= 0)
        return 0;
    for (unsigned k = 0; k < MAX_TRIES; k++) {
        uint64_t before = gr_shm_word_used(word), used = USED_MAX;

        /* No more than the count can hold: the caller releases later
         * exactly what was added, never the rest (which would take
         * other admissions' cost out of the count with it). */
        if ((uint64_t)cost < USED_MAX - before)
            used = before + (uint64_t)cost;
        /* relaxed: raising the count can only make readers stricter */
        if (atomic_compare_exchange_weak_explicit(
                wp, &word,
                gr_shm_word_pack(used, gr_shm_word_epoch(word), word),
                memory_order_relaxed, memory_order_relaxed))
            return (int64_t)(used - before);
    }
    return 0;       /* nothing added: nothing to release either */
}

void
gr_shm_window_release_tick(const struct gr_shm *t, struct gr_shm_cell *cell,
                           unsigned w, int64_t cost, uint64_t b_full,
                           uint64_t c_full)
{
    uint64_t c = c_full & GR_EPOCH_MASK, b = b_full & GR_EPOCH_MASK;
    _Atomic uint64_t *slot, *wp = &cell->word[w];
    uint64_t s;

    /* More than a count can hold was never added to one: a caller's
     * mistake.  Parked, it would be cut to the slot's width (a wrong
     * amount); given back, it would take others' cost with it.  Keep
     * it counted (conservative). */
    if (cost <= 0 || (uint64_t)cost > USED_MAX)
        return;
    if (b_full <= c_full) {
        gr_shm_window_give_back(t, cell, w, cost);   /* already due */
        return;
    }
    if (b_full - c_full >= GR_RING - 2)
        return;     /* cannot be parked: keep it counted (conservative) */
    slot = slot_at(t, cell, w, b_full);
    /* acquire: pairs with the close in drain_to() */
    s = atomic_load_explicit(slot, memory_order_acquire);
    /* The common case first: an open release for the same tick is there
     * (adding to a future tick needs no epoch rule).  release: pairs
     * with the acquire load in drain_to(). */
    if (slot_tag(s) == b && slot_amount(s) != 0 && !(s & GR_SLOT_CLOSED) &&
        slot_amount(s) + (uint64_t)cost <= SLOT_AMOUNT_MASK &&
        atomic_compare_exchange_strong_explicit(slot, &s, s + (uint64_t)cost,
                                                memory_order_release,
                                                memory_order_acquire))
        return;
    /* relaxed: only decides whether to drain; drain_to() rereads */
    if (epoch_stale(c, gr_shm_word_epoch(atomic_load_explicit(
            wp, memory_order_relaxed))))
        drain_to(t, cell, w, c_full, false); /* the rules below need a live
                                             epoch */
    /* acquire: pairs with the close in drain_to() */
    s = atomic_load_explicit(slot, memory_order_acquire);
    for (unsigned k = 0; k < MAX_TRIES; k++) {
        uint64_t tag = slot_tag(s), word, e;
        int overwritable;

        if (tag == b && slot_amount(s) != 0) {
            if (s & GR_SLOT_CLOSED) {
                /* a drainer is taking this tick: it is due */
                gr_shm_window_give_back(t, cell, w, cost);
                return;
            }
            if (slot_amount(s) + (uint64_t)cost > SLOT_AMOUNT_MASK)
                return;     /* would overflow: keep it counted */
            /* release: pairs with the acquire load in drain_to() */
            if (atomic_compare_exchange_weak_explicit(
                    slot, &s, s + (uint64_t)cost, memory_order_release,
                    memory_order_acquire))
                return;
            continue;
        }
        /* acquire: pairs with the commit CAS in drain_to() */
        word = atomic_load_explicit(wp, memory_order_acquire);
        e = gr_shm_word_epoch(word);
        if (s & GR_SLOT_CLOSED)
            overwritable = gr_shm_epoch_diff(tag, e) <= 0;
        else
            overwritable = slot_amount(s) == 0;
        if (overwritable) {
            /* release: pairs with the acquire load in drain_to() */
            if (atomic_compare_exchange_weak_explicit(
                    slot, &s, pack_slot((uint64_t)cost, b),
                    memory_order_release, memory_order_acquire))
                return;
            continue;
        }
        if (!(s & GR_SLOT_CLOSED) && gr_shm_epoch_diff(tag, c) <= 0 &&
            gr_shm_epoch_diff(tag, e) <= 0) {
            /* Stranded: an open amount for a tick the epoch has passed
             * (its adder stalled across a drain).  It is due, and no
             * drain will count it: take the slot and give it back. */
            if (atomic_compare_exchange_weak_explicit(
                    slot, &s, pack_slot((uint64_t)cost, b),
                    memory_order_acq_rel, memory_order_acquire)) {
                gr_shm_window_give_back(t, cell, w, (int64_t)slot_amount(s));
                return;
            }
            continue;
        }
        if (gr_shm_epoch_diff(tag, c) <= 0) {
            /* an older tick still owed: drain it, then take the slot */
            drain_to(t, cell, w, c_full, true);
            s = atomic_load_explicit(slot, memory_order_acquire);
            continue;
        }
        return;     /* a future tick in our slot: damaged; keep counted */
    }
}

/* Cost parked in slots whose tick has come but not yet drained. */
static uint64_t
due_not_drained(const struct gr_shm *t, const struct gr_shm_cell *cell,
                unsigned w, uint64_t word, uint64_t c)
{
    uint64_t e = gr_shm_word_epoch(word), due = 0;
    bool stale = epoch_stale(c, e);
    unsigned i;

    for (i = 0; i < GR_RING; i++) {
        /* relaxed: a snapshot for display; never used to admit */
        uint64_t s = atomic_load_explicit(slot_at(t, cell, w, i),
                                          memory_order_relaxed);

        if (slot_owed(s, c, e, stale))
            due += slot_amount(s);
    }
    return due;
}

int64_t
gr_shm_window_used(const struct gr_shm *t, const struct gr_shm_cell *cell,
                   unsigned w, int64_t now_ns)
{
    uint64_t c = gr_shm_tick(now_ns, t->tick_ns) & GR_EPOCH_MASK;
    /* relaxed: a snapshot for display */
    uint64_t word = atomic_load_explicit(&cell->word[w],
                                         memory_order_relaxed);
    uint64_t used = gr_shm_word_used(word), due = 0;

    if (gr_shm_word_epoch(word) != c)
        due = due_not_drained(t, cell, w, word, c);
    return (int64_t)(used >= due ? used - due : 0);
}

int64_t
gr_shm_window_room_at(const struct gr_shm *t, const struct gr_shm_cell *cell,
                      unsigned w, int64_t cost, int64_t limit, int64_t now_ns)
{
    int64_t tick_ns = t->tick_ns;
    uint64_t c_full = gr_shm_tick(now_ns, tick_ns), k;
    int64_t used = gr_shm_window_used(t, cell, w, now_ns), need;
    int64_t freed = 0;

    need = used + cost - limit;
    if (need <= 0)
        return now_ns;
    if (cost > limit)
        return INT64_MAX;   /* never fits */
    for (k = c_full + 1; k < c_full + GR_RING; k++) {
        /* relaxed: an estimate of when to look again */
        uint64_t s = atomic_load_explicit(slot_at(t, cell, w, k),
                                          memory_order_relaxed);

        if (slot_tag(s) == (k & GR_EPOCH_MASK) && !(s & GR_SLOT_CLOSED)) {
            freed += (int64_t)slot_amount(s);
            if (freed >= need)
                return (int64_t)k * tick_ns;
        }
    }
    return now_ns + tick_ns * GR_TICKS_PER_WINDOW;
}

/* ---- the day counter ---- */

static uint64_t
day_of_word(uint64_t w)
{
    return (w >> 32) & GR_EPOCH_MASK;
}

int
gr_shm_day_admit(_Atomic uint64_t *day, int64_t limit, int32_t today,
                 gr_shm_in_flight_fn in_flight, const void *arg, int64_t cost)
{
    uint64_t t = (uint64_t)today & GR_EPOCH_MASK;
    /* acquire: pairs with the release of the CAS that set this word, so a
     * roller that sees an admission also sees that it was in flight (the
     * admitter marked its lease before this CAS) */
    uint64_t word = atomic_load_explicit(day, memory_order_acquire);

    for (unsigned k = 0; k < MAX_TRIES; k++) {
        uint64_t d = day_of_word(word), used = gr_shm_word_used(word), next;
        int rolled = gr_shm_epoch_diff(t, d) > 0;

        if (rolled) {
            /* A new day: what is in flight may arrive on it.  Counted
             * again after every failed CAS: the word moved. */
            int64_t fl = in_flight(arg);

            used = fl > 0 ? (uint64_t)fl : 0;
            d = t;
        } else if ((int64_t)used + cost > limit) {
            return -EAGAIN;
        } else {
            used += (uint64_t)cost;
        }
        next = gr_shm_word_pack(used, d, word);
        /* acq_rel: one total order of admissions and rolls */
        if (atomic_compare_exchange_weak_explicit(day, &word, next,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
            if (!rolled)
                return 0;
            word = next;    /* rolled: now admit on the new day */
        }
    }
    return -EAGAIN;
}

int64_t
gr_shm_day_used(const _Atomic uint64_t *day, int32_t today)
{
    /* relaxed: a snapshot for display */
    uint64_t word = atomic_load_explicit(day, memory_order_relaxed);

    if (day_of_word(word) != ((uint64_t)today & GR_EPOCH_MASK))
        return 0;
    return (int64_t)gr_shm_word_used(word);
}

void
gr_shm_day_give_back(_Atomic uint64_t *day, int64_t cost)
{
    /* relaxed: the CAS validates what we read */
    uint64_t word = atomic_load_explicit(day, memory_order_relaxed);

    /* Whatever day is stored counted this request: its own, or a later
     * one that started from the in-flight count. */
    for (unsigned k = 0; k < MAX_TRIES; k++) {
        uint64_t used = gr_shm_word_used(word);

        if (used == 0 || cost <= 0)
            return;
        used = used > (uint64_t)cost ? used - (uint64_t)cost : 0;
        /* relaxed: lowering by requests never sent needs no ordering */
        if (atomic_compare_exchange_weak_explicit(
                day, &word, gr_shm_word_pack(used, day_of_word(word), word),
                memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

int64_t
gr_shm_day_force(_Atomic uint64_t *day, int64_t extra)
{
    /* relaxed: the CAS validates what we read */
    uint64_t word = atomic_load_explicit(day, memory_order_relaxed);

    for (unsigned k = 0; k < MAX_TRIES && extra > 0; k++) {
        uint64_t used = gr_shm_word_used(word);
        uint64_t add = USED_MAX - used < (uint64_t)extra ? USED_MAX - used
                                                         : (uint64_t)extra;

        if (add == 0)
            return 0;
        /* acq_rel: a raise is one step in the word's order, like an
         * admission (a roller that sees it counts from it) */
        if (atomic_compare_exchange_weak_explicit(
                day, &word,
                gr_shm_word_pack(used + add, day_of_word(word), word),
                memory_order_acq_rel, memory_order_relaxed))
            return (int64_t)add;
    }
    return 0;
}
