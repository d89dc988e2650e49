/*
 * batch.c - a thread's batch leases (see batch_priv.h).
 *
 * Invariant protected (DESIGN.md 1): a batch lease is an ordinary lease
 * of the table that admitted cost x n on every dimension at once.  The
 * calls handed out from it only ever take less than it holds, and it is
 * settled once, after every call taken from it was committed, with the
 * first byte "now" (no earlier than any of theirs) and the calls that
 * were really sent: the ones never sent are given back, like a roll
 * back.  So the table holds each call at least from its admission until
 * one window after its first byte, as for a lease of its own.
 *
 * Who settles.  A batch is first closed: by its owner thread when it
 * moves on (the batch is spent, expired, or the thread or handle ends),
 * or by the sweeper thread once the batch's end has passed, so that a
 * thread that stops calling holds nothing for long.  It is then settled
 * by whoever sees, last, both the close and every call committed: the
 * closer, or the thread whose commit was the last one.  Those two look at
 * each other's word in the opposite order (Dekker), all seq_cst, so at
 * least one of them sees both; a CAS elects exactly one.
 *
 * A take and a close by the sweeper race the same way: the owner counts
 * the call in `taken`, then looks at `state`; the sweeper marks `state`,
 * then looks at `taken`.  Either the sweeper sees the call (and waits for
 * its commit) or the owner sees the close (and backs out: it takes its
 * count back, then settles the batch if it is the last one to look).  A
 * batch is settled with the count it was found complete with.
 *
 * Records are never freed, and one goes back to the pool only when it is
 * settled and its owner let go of it, so the owner never reads a record
 * that became another batch.  The serial in `state` and `done` says which
 * use of a record a lease belongs to: a stale copy of a lease changes
 * nothing.
 */
#include "batch_priv.h"
#include "clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ST_CLOSING 1u           /* no more calls are taken */
#define ST_SETTLED 2u           /* one thread won the right to settle */
#define ST_SERIAL(s) ((s) >> 2)
#define DONE_SERIAL(d) ((d) >> 32)
#define DONE_COUNT(d) ((d) & UINT32_MAX)

/* The order of the Dekker pairs (file comment): a total order of the
 * marks, counts and looks, which acquire/release does not give. */
#define SC memory_order_seq_cst

#define REF_SETTLED 1u          /* the table's lease is settled */
#define REF_OWNER 2u            /* the owner thread let go */

struct batch {
    /* Written under pool_lock when the batch starts.  Then the owner
     * thread alone writes left, last_take_ns and watched_ns, and the
     * thread that settles reads left after the Dekker pair. */
    uint64_t config_gen;
    int64_t stop_ns;            /* no call is taken from this instant on */
    int64_t last_take_ns;       /* when the last call was taken */
    int64_t watched_ns;         /* when the watch was last read */
    int64_t left[GR_NWINDOWS];
    struct gr_shm_watch watch;
    uint32_t lease, cell, project_gen, key_index;
    uint64_t ticket;
    size_t project_len, key_len, url_len, proxy_len;
    char project[GR_NAME_MAX];  /* each kept by gr_keep_chunks() */
    char key[GR_KEY_MAX];       /* secret: never log it */
    char base_url[GR_URL_MAX];
    char proxy[GR_URL_MAX];
    struct gr *g;
    uint64_t handle_id;
    uint32_t pid;
    int64_t granted[GR_NWINDOWS];

    /* Between the owner, committing threads and the sweeper. */
    _Atomic uint64_t state;     /* serial << 2 | ST_* */
    _Atomic uint32_t taken;     /* calls counted by the owner */
    _Atomic uint64_t done;      /* serial << 32 | calls committed */
    _Atomic int64_t charged[GR_NWINDOWS];   /* used above the estimates:
                                               counted at once */
    _Atomic int64_t refunded[GR_NWINDOWS];  /* used below: given back
                                               when the batch settles */
    _Atomic uint32_t refs;      /* REF_*: back to the pool at both */

    /* The process's pool, under pool_lock. */
    struct batch *all_next;
    struct batch *free_next;
};

_Static_assert(GR_NAME_MAX % GR_CHUNK == 0 && GR_KEY_MAX % GR_CHUNK == 0 &&
               GR_URL_MAX % GR_CHUNK == 0, "texts are copied in chunks");

/* This thread's batch per (handle, model), one slot per model % NSLOTS. */
#define NSLOTS 4

struct batch_slot {
    uint64_t handle_id;
    int model;
    struct batch *b;            /* owned by this thread, or NULL */
    uint64_t serial;            /* b's serial */
    int64_t last_ns;            /* this thread's last reservation here */
    uint32_t streak;            /* reservations in a row, each within a
                                   tick of the one before */
};

static _Thread_local struct batch_slot slots[NSLOTS] GR_HOT_TLS;
static _Thread_local bool exit_hooked;  /* retire_all() runs at exit */

/* The pool, and the sweeper that closes batches whose end has passed. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct batch *pool_all, *pool_free;
static pthread_cond_t sweep_cond;
static bool sweeper_on;         /* under pool_lock */
static int64_t sweep_next;      /* when the sweeper wakes; under pool_lock */
static pthread_once_t batch_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;

static void retire_all(void *unused);

static void
init_sweep_cond(void)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sweep_cond, &ca);
    pthread_condattr_destroy(&ca);
}

static void
batch_after_fork(void)
{
    /* The child has one thread: whoever held the lock is gone, and so is
     * the sweeper.  The batches of the thread that forked are its
     * parent's to settle. */
    pthread_mutex_init(&pool_lock, NULL);
    init_sweep_cond();
    sweeper_on = false;
    memset(slots, 0, sizeof(slots));
    exit_hooked = false;
}

static void
batch_init(void)
{
    init_sweep_cond();
    pthread_key_create(&exit_key, retire_all);
    pthread_atfork(NULL, NULL, batch_after_fork);
}

/* Both REF_ bits: the record may start another batch. */
static void
let_go(struct batch *b, uint32_t ref, bool locked)
{
    /* acq_rel: the other party's last use comes before the reuse */
    uint32_t old = atomic_fetch_or_explicit(&b->refs, ref,
                                            memory_order_acq_rel);

    if ((old | ref) != (REF_SETTLED | REF_OWNER) || (old & ref))
        return;
    if (!locked)
        pthread_mutex_lock(&pool_lock);
    b->free_next = pool_free;
    pool_free = b;
    if (!locked)
        pthread_mutex_unlock(&pool_lock);
}

/* Settle the table's lease with what the batch really sent: its calls
 * (the count it was found complete with) and their usage. */
static void
settle(struct batch *b, uint32_t calls)
{
    int64_t act[GR_NWINDOWS], now;
    unsigned w;

    for (w = 0; w < GR_NWINDOWS; w++) {
        /* relaxed: the commits' adds happen before their done CAS,
         * which the settler synchronized with */
        act[w] = b->granted[w] - b->left[w] +
                 atomic_load_explicit(&b->charged[w],
                                      memory_order_relaxed) -
                 atomic_load_explicit(&b->refunded[w],
                                      memory_order_relaxed);
        if (act[w] < 0)
            act[w] = 0;
    }
    /* The precise clock: after every commit, so no earlier than any
     * call's first byte. */
    now = gr_shm_now_mono();
    if (gr_shm_settle(&b->g->t, b->lease, b->ticket, now, act, now) == 0)
        gr_shm_count_calls(&b->g->t, b->cell, calls);
}

/* Settle b if it is closed, every call taken is committed and we win the
 * election. */
static void
try_settle(struct batch *b, uint64_t serial, bool locked)
{
    uint64_t closing = serial << 2 | ST_CLOSING;
    uint32_t calls;

    /* seq_cst: the Dekker pairs of the file comment */
    if (atomic_load_explicit(&b->state, SC) != closing)
        return;
    calls = atomic_load_explicit(&b->taken, SC);
    if (DONE_COUNT(atomic_load_explicit(&b->done, SC)) != calls ||
        !atomic_compare_exchange_strong_explicit(
            &b->state, &closing, serial << 2 | ST_SETTLED | ST_CLOSING, SC,
            SC))
        return;
    settle(b, calls);
    let_go(b, REF_SETTLED, locked);
}

/* No more calls are taken from b; settle it if all are in. */
static void
close_batch(struct batch *b, uint64_t serial, bool locked)
{
    uint64_t open = serial << 2;

    /* seq_cst: the mark comes before our look at done and taken */
    if (atomic_compare_exchange_strong_explicit(
            &b->state, &open, serial << 2 | ST_CLOSING, SC, SC))
        try_settle(b, serial, locked);
}

/* One more call of b is in (committed, or backed out by the owner);
 * d is a recent read of b->done. */
static inline void
count_done(struct batch *b, uint64_t serial, uint64_t d)
{
    do {
        if (DONE_SERIAL(d) != serial)
            return;             /* a stale copy: the batch moved on */
        /* seq_cst: the Dekker pair of the file comment */
    } while (!atomic_compare_exchange_weak_explicit(&b->done, &d, d + 1, SC,
                                                    memory_order_relaxed));
    /* seq_cst: usually the batch is still open */
    if (atomic_load_explicit(&b->state, SC) & ST_CLOSING)
        try_settle(b, serial, false);
}

/* This thread lets go of its slot's batch, closed first.  Not inlined:
 * the paths that take a call stay short. */
static void __attribute__((noinline))
retire(struct batch_slot *s)
{
    struct batch *b = s->b;

    if (b == NULL)
        return;
    s->b = NULL;
    close_batch(b, s->serial, false);
    let_go(b, REF_OWNER, false);
}

/* Thread exit: the thread's batches take no more calls. */
static void
retire_all(void *unused)
{
    unsigned i;

    (void)unused;
    for (i = 0; i < NSLOTS; i++)
        retire(&slots[i]);
}

/* ---- the sweeper ------------------------------------------------------ */

/*
 * Close every batch of this process whose end has passed, then sleep
 * until the next end (or until a batch that ends sooner starts).  A batch
 * ends at most a tick after it starts, so a thread that stops calling
 * holds its unsent calls for at most that long.
 */
static void *
sweep(void *unused)
{
    uint32_t pid = gr_self_pid();

    (void)unused;
    pthread_mutex_lock(&pool_lock);
    for (;;) {
        int64_t now = gr_shm_now_mono(), next = INT64_MAX;
        struct batch *b;

        for (b = pool_all; b != NULL; b = b->all_next) {
            /* acquire: the batch's fields, written before it opened */
            uint64_t st = atomic_load_explicit(&b->state,
                                               memory_order_acquire);

            if ((st & (ST_CLOSING | ST_SETTLED)) || b->pid != pid)
                continue;
            if (b->stop_ns <= now)
                close_batch(b, ST_SERIAL(st), true);
            else if (b->stop_ns < next)
                next = b->stop_ns;
        }
        sweep_next = next;
        if (next == INT64_MAX) {
            pthread_cond_wait(&sweep_cond, &pool_lock);
        } else {
            struct timespec ts = {next / GR_NS_PER_S, next % GR_NS_PER_S};

            pthread_cond_timedwait(&sweep_cond, &pool_lock, &ts);
        }
    }
    return NULL;
}

/* Under pool_lock: the sweeper runs (started now if need be). */
static bool
sweeper_ready(void)
{
    pthread_attr_t at;
    pthread_t th;

    if (sweeper_on)
        return true;
    sweep_next = INT64_MAX;
    if (pthread_attr_init(&at) != 0)
        return false;
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    sweeper_on = pthread_create(&th, &at, sweep, NULL) == 0;
    pthread_attr_destroy(&at);
    return sweeper_on;
}

/* ---- the owner thread ------------------------------------------------- */

/* The slot of (g, model), taken over from whatever it held before. */
static struct batch_slot *
slot_for(const struct gr *g, int model)
{
    struct batch_slot *s = &slots[(unsigned)model % NSLOTS];

    if (s->handle_id != g->id || s->model != model) {
        retire(s);
        s->handle_id = g->id;
        s->model = model;
        s->streak = 0;
        s->last_ns = 0;
    }
    return s;
}

static void
count_reservation(const struct gr *g, struct batch_slot *s, int64_t now_ns)
{
    if (s->last_ns != 0 && now_ns - s->last_ns <= g->t.tick_ns)
        s->streak += s->streak < GR_BATCH_MAX;
    else
        s->streak = 1;
    s->last_ns = now_ns;
}

/* The calls a batch served were reservations in a row too (its first
 * was counted when it started). */
static void
carry_streak(struct batch_slot *s, const struct batch *b, uint32_t taken)
{
    s->streak += taken - 1;
    if (s->streak > GR_BATCH_MAX)
        s->streak = GR_BATCH_MAX;
    s->last_ns = b->last_take_ns;
}

bool
gr_batch_take(struct gr *g, const struct gr_batch_ask *q,
              struct gr_lease *out)
{
    struct batch_slot *s = &slots[(unsigned)q->model % NSLOTS];
    struct batch *b = s->b;
    const struct gr_cost *c = q->cost;
    uint32_t n;

    if (b == NULL || s->handle_id != g->id || s->model != q->model)
        return false;
    /*
     * The day is not read here: stop_ns comes before Pacific midnight
     * (gr_reserve()).  The cell's health is read again when the clock
     * has moved (the coarse clock steps every 4 ms here): a cooldown
     * another process sets is seen that much later, which the coarse
     * clock's lag does to every reservation anyway.  This thread's own
     * bad answers stop the batch at once (gr_batch_drop()).
     */
    if (q->config_gen != b->config_gen || q->now_ns >= b->stop_ns ||
        c->requests > b->left[GR_W_RPM] || c->tokens > b->left[GR_W_TPM] ||
        c->images > b->left[GR_W_IPM] ||
        (q->now_ns != b->watched_ns &&
         !gr_shm_watch_open(&b->watch, q->now_ns))) {
        /* relaxed: only the owner adds to taken */
        carry_streak(s, b, atomic_load_explicit(&b->taken,
                                                memory_order_relaxed));
        retire(s);
        return false;
    }
    /* seq_cst, then seq_cst: the Dekker pair with the sweeper */
    n = atomic_fetch_add_explicit(&b->taken, 1, SC) + 1;
    if (atomic_load_explicit(&b->state, SC) != s->serial << 2) {
        /* Closed by the sweeper meanwhile: the call is not ours to send.
         * The count goes back, and the batch may now be complete. */
        atomic_fetch_sub_explicit(&b->taken, 1, SC);
        carry_streak(s, b, n - 1);
        try_settle(b, s->serial, false);
        retire(s);
        return false;
    }
    b->left[GR_W_RPM] -= c->requests;
    b->left[GR_W_TPM] -= c->tokens;
    b->left[GR_W_IPM] -= c->images;
    b->last_take_ns = b->watched_ns = q->now_ns;

    gr_copy_chunks(out->project, b->project, b->project_len);
    gr_copy_chunks(out->key, b->key, b->key_len);
    gr_copy_chunks(out->base_url, b->base_url, b->url_len);
    if (b->proxy_len != 0)
        gr_copy_chunks(out->proxy, b->proxy, b->proxy_len);
    else
        out->proxy[0] = '\0';
    out->slot = b->lease;
    out->cell = b->cell;
    out->ticket = b->ticket;
    out->project_gen = b->project_gen;
    out->key_index = b->key_index;
    out->batch = b;
    out->batch_serial = s->serial;
    return true;
}

uint32_t
gr_batch_want(const struct gr *g, const struct gr_batch_ask *q)
{
    const struct batch_slot *s = &slots[(unsigned)q->model % NSLOTS];
    /* relaxed: a setting; untrusted, so clamped */
    uint32_t most = atomic_load_explicit(&g->t.hdr->batch_calls,
                                         memory_order_relaxed);
    bool ready;

    if (most > GR_BATCH_MAX)
        most = GR_BATCH_MAX;
    if (most <= 1)
        return 0;
    if (s->handle_id != g->id || s->model != q->model || s->last_ns == 0 ||
        q->now_ns - s->last_ns > g->t.tick_ns)
        return 1;
    /* No batch without the sweeper that ends it. */
    pthread_once(&batch_once, batch_init);
    pthread_mutex_lock(&pool_lock);
    ready = sweeper_ready();
    pthread_mutex_unlock(&pool_lock);
    if (!ready)
        return 1;
    return s->streak < most ? s->streak + 1 : most;
}

void
gr_batch_note(const struct gr *g, const struct gr_batch_ask *q)
{
    count_reservation(g, slot_for(g, q->model), q->now_ns);
}

/* Under pool_lock: a record for a new batch; NULL when out of memory. */
static struct batch *
pool_get(void)
{
    struct batch *b = pool_free;

    if (b != NULL) {
        pool_free = b->free_next;
        return b;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    /* relaxed: not shared yet; settled = nothing to close or sweep */
    atomic_store_explicit(&b->state, ST_CLOSING | ST_SETTLED,
                          memory_order_relaxed);
    b->all_next = pool_all;
    pool_all = b;
    return b;
}

void
gr_batch_start(struct gr *g, const struct gr_batch_ask *q,
               const struct gr_shm_grant *gt, int64_t stop_ns,
               struct gr_lease *out)
{
    struct batch_slot *s = slot_for(g, q->model);
    const struct gr_cost *c = q->cost;
    int64_t cost[GR_NWINDOWS] = {c->requests, c->tokens, c->images};
    struct gr_shm_watch watch;
    struct batch *b = NULL;
    uint64_t serial = 0;
    unsigned w;

    retire(s);
    count_reservation(g, s, q->now_ns);
    out->batch = NULL;
    if (!gr_shm_watch_init(&g->t, gt->cell, gt->project_gen, &watch))
        return;     /* cannot be: the grant is our own values */
    pthread_mutex_lock(&pool_lock);
    if (sweeper_ready())
        b = pool_get();
    if (b == NULL) {
        /* The lease holds the whole batch; committed as one call it
         * keeps the unsent ones counted until a window later: safe. */
        pthread_mutex_unlock(&pool_lock);
        return;
    }
    /* relaxed: the record is no one else's until its state opens */
    serial = (DONE_SERIAL(atomic_load_explicit(&b->done,
                                               memory_order_relaxed)) +
              1) & UINT32_MAX;
    atomic_store_explicit(&b->done, serial << 32, memory_order_relaxed);
    atomic_store_explicit(&b->taken, 1, memory_order_relaxed);
    atomic_store_explicit(&b->refs, 0, memory_order_relaxed);
    for (w = 0; w < GR_NWINDOWS; w++) {
        atomic_store_explicit(&b->charged[w], 0, memory_order_relaxed);
        atomic_store_explicit(&b->refunded[w], 0, memory_order_relaxed);
        b->granted[w] = cost[w] * gt->batch;
        b->left[w] = b->granted[w] - cost[w];
    }
    b->g = g;
    b->handle_id = g->id;
    b->pid = gr_self_pid();
    b->config_gen = q->config_gen;
    b->stop_ns = stop_ns;
    b->last_take_ns = b->watched_ns = q->now_ns;
    b->watch = watch;
    b->lease = gt->lease;
    b->cell = gt->cell;
    b->project_gen = gt->project_gen;
    b->key_index = out->key_index;
    b->ticket = gt->ticket;
    b->project_len = gr_keep_chunks(b->project, out->project, GR_NAME_MAX);
    b->key_len = gr_keep_chunks(b->key, out->key, GR_KEY_MAX);
    b->url_len = gr_keep_chunks(b->base_url, out->base_url, GR_URL_MAX);
    b->proxy_len = gr_keep_chunks(b->proxy, out->proxy, GR_URL_MAX);
    /* release: the fields above before the batch is open */
    atomic_store_explicit(&b->state, serial << 2, memory_order_release);
    if (stop_ns < sweep_next)
        pthread_cond_signal(&sweep_cond);   /* it sleeps past our end */
    pthread_mutex_unlock(&pool_lock);

    s->b = b;
    s->serial = serial;
    out->batch = b;
    out->batch_serial = serial;
    /* Thread exit closes the thread's batches at once. */
    if (!exit_hooked)
        exit_hooked = pthread_setspecific(exit_key, slots) == 0;
}

void
gr_batch_drop(const struct gr_lease *lease)
{
    unsigned i;

    for (i = 0; i < NSLOTS; i++)
        if (slots[i].b == lease->batch &&
            slots[i].serial == lease->batch_serial)
            retire(&slots[i]);
}

/* ---- committing threads ----------------------------------------------- */

/*
 * What a call used beyond its estimate is counted in the table at once:
 * Google counted it, and a window must never hold less than that.  What
 * it used below is given back when the batch settles (later is safe).
 */
static void __attribute__((noinline))
reconcile(struct batch *b, const struct gr_lease *lease,
          const struct gr_usage *actual)
{
    int64_t used[GR_NWINDOWS] = {-1, actual->tokens, actual->images};
    int64_t est[GR_NWINDOWS] = {0, lease->cost.tokens, lease->cost.images};
    unsigned w;

    for (w = GR_W_TPM; w < GR_NWINDOWS; w++) {
        int64_t d = used[w] - est[w];

        if (used[w] < 0 || d == 0)
            continue;
        if (d > 0) {
            /* What the table counted, not what the answer claimed: the
             * count saturates, and the settle must release exactly what
             * was added (more would take other calls' cost with it). */
            int64_t counted = gr_shm_charge(&b->g->t, b->lease, b->ticket,
                                            w, d);

            if (counted > 0)
                /* relaxed: published by the done CAS that follows */
                atomic_fetch_add_explicit(&b->charged[w], counted,
                                          memory_order_relaxed);
        } else {
            atomic_fetch_add_explicit(&b->refunded[w], -d,
                                      memory_order_relaxed);
        }
    }
}

void
gr_batch_commit(struct gr_lease *lease, const struct gr_usage *actual)
{
    struct batch *b = lease->batch;
    /* relaxed: a stale copy is refused again by the CAS in count_done() */
    uint64_t d = atomic_load_explicit(&b->done, memory_order_relaxed);

    if (DONE_SERIAL(d) != lease->batch_serial)
        return;
    if (actual != NULL && (actual->tokens >= 0 || actual->images >= 0)) {
        reconcile(b, lease, actual);
        d = atomic_load_explicit(&b->done, memory_order_relaxed);
    }
    count_done(b, lease->batch_serial, d);
}

void
gr_batch_close_all(struct gr *g)
{
    uint32_t pid = gr_self_pid();
    struct batch *b;

    pthread_mutex_lock(&pool_lock);
    for (b = pool_all; b != NULL; b = b->all_next) {
        /* acquire: the batch's fields, written before it opened */
        uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire);

        if (!(st & (ST_CLOSING | ST_SETTLED)) && b->handle_id == g->id &&
            b->pid == pid)
            close_batch(b, ST_SERIAL(st), true);
    }
    pthread_mutex_unlock(&pool_lock);
}
