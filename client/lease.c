/*
 * lease.c - gr_open, gr_reserve, gr_commit, gr_report: the public face of
 * the table for client processes.
 *
 * Invariant protected: a caller holds a lease only after every dimension
 * admitted its cost (shm/reserve.c), and a blocked caller sleeps on the
 * table's futex word, never spins and never holds anything while it
 * sleeps.
 */
#include "batch_priv.h"
#include "client_priv.h"
#include "clock.h"
#include "health.h"
#include "reserve.h"
#include "seqlock.h"
#include "wake.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic uint32_t cached_pid;     /* 0 until init_pid() */
static _Atomic uint64_t next_handle_id = 1;
static pthread_once_t pid_once = PTHREAD_ONCE_INIT;
static _Thread_local uint64_t rng_state;
/* The lease slot this thread freed last: its next claim starts there
 * (see claim_lease() in shm/reserve.c).  Only a hint. */
static _Thread_local uint32_t lease_hint GR_HOT_TLS = UINT32_MAX;

/* The Pacific day, recomputed only when its midnight has passed. */
static _Thread_local struct {
    int64_t until_ns;           /* wall time of the next Pacific midnight */
    int32_t day;
} day_cache;

/* The base URL and proxy, copied again only when the config moves. */
static _Thread_local struct {
    uint64_t handle;
    uint64_t gen;
    size_t url_len, proxy_len;
    char url[GR_URL_MAX];
    char proxy[GR_URL_MAX];
} url_cache;

/* The model lookup of the last call on this thread, per config. */
static _Thread_local struct {
    uint64_t handle;
    uint64_t gen;
    int index;
    size_t len;
    char name[GR_SHM_NAME_MAX];     /* kept by gr_keep_chunks() */
} model_cache GR_HOT_TLS;

_Static_assert(GR_SHM_NAME_MAX == GR_NAME_MAX,
               "a lease's model name is copied from model_cache");

/* The last alias (router's `aliases`) this thread resolved, per config:
 * handle 0 until the thread names an alias, so a caller that never does
 * pays one comparison. */
static _Thread_local struct {
    uint64_t handle;
    uint64_t gen;
    char name[GR_SHM_NAME_MAX];
    char real[GR_SHM_NAME_MAX];
} alias_cache;

static void
refresh_pid(void)
{
    /* relaxed: a value, not a flag guarding other data */
    atomic_store_explicit(&cached_pid, (uint32_t)getpid(),
                          memory_order_relaxed);
}

static void
init_pid(void)
{
    refresh_pid();
    pthread_atfork(NULL, NULL, refresh_pid);
}

uint32_t
gr_self_pid(void)
{
    /* relaxed: see refresh_pid(); after a fork the child's atfork
     * handler has stored its own pid before any of its code runs */
    uint32_t pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);

    if (__builtin_expect(pid != 0, 1))
        return pid;
    pthread_once(&pid_once, init_pid);
    return atomic_load_explicit(&cached_pid, memory_order_relaxed);
}

uint64_t *
gr_thread_rng(void)
{
    if (rng_state == 0) {
        rng_state = (uint64_t)gr_shm_now_mono() ^
                    ((uint64_t)gr_self_pid() << 32) ^
                    (uint64_t)(uintptr_t)&rng_state;
        if (rng_state == 0)
            rng_state = 0x9e3779b97f4a7c15u;
    }
    return &rng_state;
}

void
gr_seterr(struct gr *g, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&g->err_lock);
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof(g->err), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&g->err_lock);
}

void
gr_call_fail(struct gr *g, struct gr_response *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out->error, sizeof(out->error), fmt, ap);
    va_end(ap);
    gr_seterr(g, "%s", out->error);
}

const char *
gr_errstr(const struct gr *g)
{
    return g->err;
}

int64_t
gr_now_ns(void)
{
    return gr_shm_now_mono();
}

struct gr *
gr_open(const char *shm_name, char *err, size_t errlen)
{
    struct gr *g = calloc(1, sizeof(*g));

    if (g == NULL) {
        snprintf(err, errlen, "gemroute: out of memory");
        return NULL;
    }
    if (gr_shm_attach(shm_name, true, &g->t, err, errlen) != 0) {
        free(g);
        return NULL;
    }
    pthread_mutex_init(&g->err_lock, NULL);
    pthread_mutex_init(&g->res_lock, NULL);
    /* relaxed: only uniqueness matters */
    g->id = atomic_fetch_add_explicit(&next_handle_id, 1,
                                      memory_order_relaxed);
    return g;
}

void
gr_close(struct gr *g)
{
    if (g == NULL)
        return;
    gr_batch_close_all(g);
    gr_shm_detach(&g->t);
    gr_res_close(g);
    pthread_mutex_destroy(&g->err_lock);
    free(g);
}

static void
copy_name(char *dst, const char *src, size_t n)
{
    size_t len = strnlen(src, n - 1);

    memcpy(dst, src, len);
    dst[len] = '\0';
}

/*
 * The Pacific day.  The coarse wall clock reads short (4-8 ms here, 32 ms
 * under load) and would count a request just after midnight on the old
 * day: within DAY_EDGE_NS of midnight the precise clock decides.
 */
#define DAY_EDGE_NS (10 * GR_NS_PER_S)

static int32_t
pacific_today(const struct gr_shm *t, int64_t *to_midnight_ns)
{
    int64_t now = t->coarse_ns != 0 ? gr_shm_now_wall_coarse()
                                    : gr_shm_now_wall();

    if (t->coarse_ns != 0 && now >= day_cache.until_ns - DAY_EDGE_NS)
        now = gr_shm_now_wall();
    if (now >= day_cache.until_ns) {
        int64_t now_s = now / GR_NS_PER_S;

        int64_t next_s;
        int published;

        /* the router's days from the tz database, else the 2007 rule,
         * kept a minute at most: the router's days win once published */
        day_cache.day = gr_shm_pacific_day_in(t->hdr, now_s, &next_s,
                                              &published);
        day_cache.until_ns = next_s * GR_NS_PER_S;
        if (!published && day_cache.until_ns > now + 60 * GR_NS_PER_S)
            day_cache.until_ns = now + 60 * GR_NS_PER_S;
    }
    *to_midnight_ns = day_cache.until_ns - now;
    return day_cache.day;
}

/* The model's index in the table, and in *genp the config generation the
 * answer belongs to (0: the router has not applied a config yet). */
static inline int
model_index(struct gr *g, const char *model, uint64_t *genp)
{
    /* acquire: pairs with the router's release of a new generation */
    uint64_t gen = atomic_load_explicit(&g->t.hdr->config_generation,
                                        memory_order_acquire);

    *genp = gen;
    if (model_cache.handle == g->id && model_cache.gen == gen &&
        strncmp(model_cache.name, model, sizeof(model_cache.name)) == 0)
        return model_cache.index;
    model_cache.index = gr_shm_model_index(&g->t, model);
    if (model_cache.index == GR_SHM_TORN) {
        model_cache.handle = 0;     /* never keep a torn look */
        return GR_SHM_TORN;
    }
    model_cache.handle = g->id;
    model_cache.gen = gen;
    model_cache.len = gr_keep_chunks(model_cache.name, model,
                                     sizeof(model_cache.name));
    return model_cache.index;
}

/* The model alias names, when it is the alias this thread resolved last
 * under the current config; else NULL. */
static inline const char *
alias_hit(struct gr *g, const char *alias)
{
    if (alias_cache.handle != g->id)
        return NULL;
    /* acquire: pairs with the router's release of a new generation */
    if (alias_cache.gen != atomic_load_explicit(&g->t.hdr->config_generation,
                                                memory_order_acquire) ||
        strncmp(alias_cache.name, alias, sizeof(alias_cache.name)) != 0)
        return NULL;
    return alias_cache.real;
}

/* Look alias up in the table (it names no model): the model it stands
 * for, kept for the next call, or NULL. */
static const char * __attribute__((noinline))
alias_lookup(struct gr *g, const char *alias, uint64_t gen)
{
    char real[GR_SHM_NAME_MAX];

    if (strnlen(alias, GR_SHM_NAME_MAX) >= GR_SHM_NAME_MAX ||
        gr_shm_alias_model(&g->t, alias, real, sizeof(real)) < 0)
        return NULL;
    alias_cache.handle = g->id;
    alias_cache.gen = gen;
    memcpy(alias_cache.name, alias, strlen(alias) + 1);
    memcpy(alias_cache.real, real, sizeof(real));
    return alias_cache.real;
}

const char *
gr_model_resolve(struct gr *g, const char *name, char buf[GR_NAME_MAX])
{
    const char *real = alias_hit(g, name);
    uint64_t gen;

    if (real == NULL) {
        if (model_index(g, name, &gen) >= 0 || gen == 0)
            return name;
        real = alias_lookup(g, name, gen);
        if (real == NULL)
            return name;
    }
    memcpy(buf, real, strlen(real) + 1);
    return buf;
}

/* Under the header's text seqlock: the base URL and proxy into this
 * thread's cache (arg: the handle). */
static void
url_copy(void *arg)
{
    struct gr *g = arg;

    gr_shm_seq_copy_str(url_cache.url, g->t.hdr->base_url, GR_URL_MAX);
    gr_shm_seq_copy_str(url_cache.proxy, g->t.hdr->proxy, GR_URL_MAX);
}

/* The base URL and proxy for this thread, from the cache or under the
 * seqlock; false when no consistent copy could be read. */
static bool
base_url(struct gr *g, struct gr_lease *out)
{
    /* acquire: pairs with the router's release of a new generation */
    uint64_t gen = atomic_load_explicit(&g->t.hdr->config_generation,
                                        memory_order_acquire);

    if (url_cache.handle != g->id || url_cache.gen != gen) {
        url_cache.handle = 0;       /* invalid until a clean copy */
        if (!gr_shm_seq_read(&g->t.hdr->text_seq, url_copy, g)) {
            out->base_url[0] = out->proxy[0] = '\0';   /* router mid-write */
            return false;
        }
        url_cache.handle = g->id;
        url_cache.gen = gen;
        url_cache.url_len = strlen(url_cache.url);
        url_cache.proxy_len = strlen(url_cache.proxy);
    }
    memcpy(out->base_url, url_cache.url, url_cache.url_len + 1);
    if (url_cache.proxy_len != 0)   /* usually none: out has "" already */
        memcpy(out->proxy, url_cache.proxy, url_cache.proxy_len + 1);
    return true;
}

/*
 * One of the project's n keys, at random among those not refused (a key
 * Google refused is skipped while a sibling is good: the keys of a
 * project share its quota, so spreading is all that matters, and a
 * counter would be one more locked instruction on every call).
 */
static uint32_t
pick_key(struct gr_shm_project *p, uint32_t n)
{
    uint32_t ok = gr_shm_keys_usable(p, n);
    uint32_t i = (uint32_t)(gr_shm_rand(gr_thread_rng()) %
                            (uint32_t)__builtin_popcount(ok));

    while (i-- > 0)
        ok &= ok - 1;                   /* drop the lowest set bit */
    return (uint32_t)__builtin_ctz(ok);
}

/* Under a project's seqlock: its name and one of its keys. */
struct lease_copy {
    struct gr *g;
    struct gr_shm_project *p;
    uint32_t slot;
    struct gr_lease *out;
};

static void
lease_copy(void *arg)
{
    struct lease_copy *lc = arg;
    uint32_t n, k;

    gr_shm_seq_copy_str(lc->out->project, lc->p->name, GR_SHM_NAME_MAX);
    n = __atomic_load_n(&lc->p->n_keys, __ATOMIC_ACQUIRE);
    if (n == 0 || n > GR_SHM_MAX_KEYS)
        n = 1;
    /* a fresh random pick on a retry is as good as the first */
    k = n == 1 ? 0 : pick_key(lc->p, n);
    gr_shm_seq_copy_str(lc->out->key, gr_shm_key(&lc->g->t, lc->slot, k),
                        GR_SHM_KEY_MAX);
    lc->out->key_index = k;
}

/* Copy the project's name and one of its keys, and the base URL.  false
 * when a consistent copy could not be read (a router stopped in the
 * middle of rewriting them): then out holds no key. */
static bool
fill_lease(struct gr *g, const struct gr_shm_grant *gt, struct gr_lease *out)
{
    struct lease_copy lc = {g, gr_shm_project(&g->t, gt->slot), gt->slot,
                            out};

    if (gr_shm_seq_read(&lc.p->seq, lease_copy, &lc) && base_url(g, out))
        return true;
    /* A torn key must never reach the network: Google would call it
     * invalid, and the project would be marked bad for it. */
    explicit_bzero(out->key, sizeof(out->key));
    out->project[0] = '\0';
    return false;
}

/* Give a grant back whole: nothing of it was sent (a roll back). */
static void
give_back_grant(struct gr *g, const struct gr_shm_grant *gt)
{
    static const int64_t none[GR_NWINDOWS] = {0, 0, 0};
    int64_t now = gr_shm_now_mono();

    (void)gr_shm_settle(&g->t, gt->lease, gt->ticket, now, none, now);
    lease_hint = gt->lease;
}

/*
 * The instant a batch lease starts now must stop handing out calls: one
 * tick; well before the router would settle the lease as a call that
 * outlived router.max_call_s; and never within DAY_EDGE_NS of Pacific
 * midnight (a batch counts its calls on the day it was admitted).  0: no
 * batch now.
 */
static int64_t
batch_stop(const struct gr *g, int64_t now_ns, int64_t to_midnight_ns)
{
    int64_t left = to_midnight_ns - DAY_EDGE_NS;
    /* relaxed: a setting */
    int64_t half_call = (int64_t)atomic_load_explicit(
                            &g->t.hdr->max_call_s, memory_order_relaxed) *
                        GR_NS_PER_S / 2;

    if (half_call < left)
        left = half_call;
    if (g->t.tick_ns < left)
        left = g->t.tick_ns;
    return left > 0 ? now_ns + left : 0;
}

/* The largest effective limit on dimension d of any active project
 * serving model; INT64_MAX when one has none; -1 when none serves it. */
static int64_t
largest_limit(struct gr *g, const char *model, unsigned d)
{
    const struct gr_shm *t = &g->t;
    int m = gr_shm_model_index(t, model);
    int64_t best = -1;
    uint32_t s;

    if (m < 0 || d >= GR_NDIM)
        return -1;
    for (s = 0; s < t->max_projects; s++) {
        struct gr_shm_project *p = gr_shm_project(t, s);
        struct gr_shm_cell *c = gr_shm_cell(t, s, (uint32_t)m);
        uint32_t lim, cap, any = 0;
        unsigned k;

        /* relaxed for all: a bound for a message, read rarely */
        if (p == NULL || c == NULL ||
            atomic_load_explicit(&p->state, memory_order_relaxed) !=
                GR_PROJ_ACTIVE)
            continue;
        for (k = 0; k < GR_NDIM; k++)
            any |= atomic_load_explicit(&c->limit[k], memory_order_relaxed);
        if (any == 0)
            continue;           /* every limit 0: not served here */
        lim = atomic_load_explicit(&c->limit[d], memory_order_relaxed);
        cap = atomic_load_explicit(&c->cap[d], memory_order_relaxed);
        if (cap < lim)
            lim = cap;
        if (lim == GR_LIMIT_NONE)
            return INT64_MAX;
        if ((int64_t)lim > best)
            best = lim;
    }
    return best;
}

int64_t
gr_largest_limit(struct gr *g, const char *model, unsigned w)
{
    if (w >= GR_NWINDOWS)
        return -1;
    return largest_limit(g, model, w == GR_W_RPM   ? GR_D_RPM
                                   : w == GR_W_TPM ? GR_D_TPM
                                                   : GR_D_IPM);
}

uint32_t
gr_tpm_flags(struct gr *g)
{
    /* relaxed: a setting, one word read on its own */
    return atomic_load_explicit(&g->t.hdr->tpm_flags, memory_order_relaxed);
}

/* Whether cost can never fit: above the largest window of every project
 * serving the model (GR_ETOOBIG, with the sentence on the handle). */
static bool
too_big(struct gr *g, const char *model, const struct gr_cost *cost)
{
    static const char *const what[GR_NWINDOWS] = {
        "requests", "input tokens", "images to generate",
    };
    static const char *const dim[GR_NWINDOWS] = {"RPM", "TPM", "IPM"};
    int64_t want[GR_NWINDOWS] = {cost->requests, cost->tokens, cost->images};
    unsigned w;

    for (w = 0; w < GR_NWINDOWS; w++) {
        int64_t most;

        if (want[w] <= 0)
            continue;
        most = gr_largest_limit(g, model, w);
        if (most >= 0 && want[w] > most) {
            gr_seterr(g, "request estimated at %lld %s; the largest %s "
                      "limit of any project serving %s is %lld",
                      (long long)want[w], what[w], dim[w], model,
                      (long long)most);
            return true;
        }
    }
    /* A day's tokens start from nothing at most: a call above every
     * project's tokens per day never fits on any day. */
    if (want[GR_W_TPM] > 0) {
        int64_t most = largest_limit(g, model, GR_D_TPD);

        if (most >= 0 && want[GR_W_TPM] > most) {
            gr_seterr(g, "request estimated at %lld input tokens; the "
                      "largest TPD (tokens per day) limit of any project "
                      "serving %s is %lld", (long long)want[GR_W_TPM], model,
                      (long long)most);
            return true;
        }
    }
    return false;
}

/* Grants given back at once because their project's key could not be
 * read whole; after that, one try a tick until the deadline, then
 * GR_ESHM. */
#define FILL_TRIES 4

/*
 * gr_reserve() when no batch lease of this thread can serve the call: a
 * reservation in the table, which waits for room until the deadline.  q
 * holds what gr_reserve() found: the model's index and generation, and
 * the time if it read it (else 0).  Apart, so that the path of a call
 * taken from a batch stays short.
 */
/* Under a project's seqlock: its name. */
struct name_copy {
    const struct gr_shm_project *p;
    char name[GR_SHM_NAME_MAX];
};

static void
name_copy(void *arg)
{
    struct name_copy *nc = arg;

    gr_shm_seq_copy_str(nc->name, nc->p->name, GR_SHM_NAME_MAX);
}

/* The slot of the active project named name, plus 1; 0 when there is
 * none (read under the slot's seqlock; a torn read is "none"). */
static uint32_t
project_slot(struct gr *g, const char *name)
{
    struct name_copy nc;
    uint32_t i;

    for (i = 0; i < g->t.max_projects; i++) {
        nc.p = &g->t.projects[i];
        /* relaxed: a hint; the reservation checks the state again */
        if (atomic_load_explicit(&nc.p->state, memory_order_relaxed) !=
            GR_PROJ_ACTIVE)
            continue;
        if (gr_shm_seq_read(&nc.p->seq, name_copy, &nc) &&
            strncmp(nc.name, name, GR_SHM_NAME_MAX) == 0)
            return i + 1;
    }
    return 0;
}

/* The sentence of this thread's last spend refusal. */
static _Thread_local char spend_msg[256];

const char *
gr_spend_refusal(void)
{
    return spend_msg;
}

/* Whether the router counts spend (a cap is configured). */
static inline bool
spend_on(const struct gr *g)
{
    /* relaxed: a setting, on the header line the model lookup read */
    return atomic_load_explicit(&g->t.hdr->spend_on,
                                memory_order_relaxed) != 0;
}

/* The cap that refused (gt->spend), in a sentence on the handle and in
 * spend_msg. */
static void
spend_refused(struct gr *g, const struct gr_shm_grant *gt, int64_t want,
              int32_t today)
{
    const struct gr_shm_spend *s;
    char who[GR_SHM_NAME_MAX + 16] = "the pool";
    bool day = gt->spend.which != 2;
    int64_t cap, used;

    if (g->t.spend == NULL || gt->spend.slot < 0 ||
        (uint32_t)gt->spend.slot > g->t.max_projects) {
        snprintf(spend_msg, sizeof(spend_msg), "spend cap reached");
        gr_seterr(g, "%s", spend_msg);
        return;
    }
    s = &g->t.spend[gt->spend.slot];
    if ((uint32_t)gt->spend.slot < g->t.max_projects) {
        struct name_copy nc = {.p = &g->t.projects[gt->spend.slot]};

        snprintf(who, sizeof(who), "project '%s'",
                 gr_shm_seq_read(&nc.p->seq, name_copy, &nc) ? nc.name
                                                             : "?");
    }
    /* relaxed: a reading for the sentence */
    cap = atomic_load_explicit(day ? &s->cap_day : &s->cap_month,
                               memory_order_relaxed);
    used = gr_shm_spend_used(day ? &s->day : &s->month,
                             day ? today : gr_shm_month_of_day(today));
    snprintf(spend_msg, sizeof(spend_msg),
             "spend cap reached: %s has counted $%.6f of its %s cap of "
             "$%.2f; this call may cost up to $%.6f (the %s)", who,
             (double)used / 1e6, day ? "daily" : "monthly",
             (double)cap / 1e6, (double)want / 1e6,
             day ? "day resets at midnight America/Los_Angeles"
                 : "month resets on the 1st, Pacific time");
    gr_seterr(g, "%s", spend_msg);
}

static int __attribute__((noinline))
reserve_in_table(struct gr *g, const char *model, int64_t deadline_ns,
                 struct gr_batch_ask *q, const char *pin_name,
                 int64_t max_out, struct gr_lease *out)
{
    const struct gr_cost *cost = q->cost;
    struct gr_shm_ask a;
    struct gr_shm_grant gt;
    int64_t to_midnight, stop;
    uint32_t want;
    unsigned torn = 0;
    bool sized = false;

    /* A router that has not applied its config yet (generation 0) is
     * "no room yet", not "no such model": wait for it like for room.  At
     * generation 0 the names may be there already while the choice array
     * is still empty (the router restores its state file in between), so
     * an index found then does not count.  And "no such model" is judged
     * at the generation the names were read at, never a later one. */
    while (q->config_gen == 0 || q->model < 0) {
        int64_t now;

        /* A torn look at the names (the router mid-write) waits a tick
         * like generation 0; only a clean look says "no such model". */
        if (q->config_gen != 0 && q->model != GR_SHM_TORN) {
            gr_seterr(g, "no project serves model '%s'", model);
            return GR_ENOMODEL;
        }
        now = gr_shm_now_mono();
        out->retry_at_ns = now + g->t.tick_ns;
        if (deadline_ns <= now) {
            gr_seterr(g, q->config_gen == 0
                             ? "the router has not applied its config yet"
                             : "the model table was being rewritten "
                               "until the deadline");
            return deadline_ns == 0 ? GR_ENOROOM : GR_EDEADLINE;
        }
        gr_shm_sleep(&g->t, gr_shm_wake_seen(&g->t),
                     deadline_ns - now < g->t.tick_ns ? deadline_ns - now
                                                      : g->t.tick_ns);
        q->model = model_index(g, model, &q->config_gen);
        q->now_ns = 0;
    }
    a.model = (uint32_t)q->model;
    a.cost[GR_W_RPM] = cost->requests;
    a.cost[GR_W_TPM] = cost->tokens;
    a.cost[GR_W_IPM] = cost->images;
    a.pid = gr_self_pid();
    a.rng = gr_thread_rng();
    a.lease_hint = lease_hint;
    a.pin = 0;
    a.spend = 0;
    if (spend_on(g) && cost->requests > 0) {
        struct gr_shm_price pr;
        int prc = gr_shm_price_read(&g->t, a.model, &pr);

        if (prc == -EAGAIN) {
            gr_seterr(g, "the price of '%s' in the table stays "
                      "half-written: nothing sent", model);
            return GR_ESHM;
        }
        /* A model without a price (the config requires one for every
         * model when a cap is set) is not counted. */
        if (prc == 0) {
            /* one call's worst case stays below 2^46 whatever the
             * (untrusted) price: n of them are capped at what a spend
             * counter holds, with no overflow */
            int64_t one = gr_shm_spend_worst(&pr, cost->tokens, max_out);
            int64_t most = (int64_t)GR_SPEND_AMOUNT_MASK;

            a.spend = one > most / cost->requests ? most
                                                  : one * cost->requests;
        }
    }
    for (;;) {
        uint32_t seen = gr_shm_wake_seen(&g->t);
        int64_t wake_at;
        int rc;

        if (q->now_ns == 0)
            q->now_ns = gr_shm_now_fast(&g->t);
        a.now_ns = q->now_ns;
        a.today = pacific_today(&g->t, &to_midnight);
        a.day_end_ns = q->now_ns + to_midnight;
        stop = batch_stop(g, q->now_ns, to_midnight);
        /* 0: batch leases are off; 1: none wanted now.  A pinned
         * reservation takes no batch: a batch serves any project. */
        want = pin_name == NULL && a.spend == 0 ? gr_batch_want(g, q) : 0;
        a.batch = stop != 0 && want > 1 ? want : 1;
        if (pin_name != NULL && (a.pin = project_slot(g, pin_name)) == 0) {
            gr_seterr(g, "project '%s' is not in the table: a request "
                      "pinned to it cannot be served", pin_name);
            return GR_ENOMODEL;
        }
        rc = gr_shm_reserve(&g->t, &a, &gt);
        if (rc == -EAGAIN && a.batch > 1) {
            a.batch = 1;        /* a batch did not fit: one call may */
            rc = gr_shm_reserve(&g->t, &a, &gt);
        }
        if (rc == 0) {
            bool filled = fill_lease(g, &gt, out);

            if (filled && pin_name != NULL &&
                strncmp(out->project, pin_name, GR_NAME_MAX) != 0) {
                /* The slot went to another project since it was looked
                 * up (a reload): nothing sent; look it up again. */
                explicit_bzero(out->key, sizeof(out->key));
                give_back_grant(g, &gt);
                q->now_ns = 0;
                continue;
            }
            if (filled)
                break;
            /* A project's key or the base URL could not be read whole
             * (the router stopped mid-write, or is rewriting them).
             * Nothing was sent: give the grant back and reserve again,
             * a few times; the router repairs what it left half-written
             * within a tick. */
            give_back_grant(g, &gt);
            if (++torn >= FILL_TRIES) {
                /* Past a few tries at once, wait a tick between tries
                 * until the deadline: a router descheduled in the middle
                 * of a rewrite finishes it, a dead one's successor
                 * repairs it. */
                int64_t now = gr_shm_now_mono();

                if (deadline_ns <= now) {
                    gr_seterr(g, "the table's copy of a project's key or "
                              "of the base URL stays half-written (a "
                              "router stopped mid-reload?): nothing sent "
                              "for '%s'", model);
                    return GR_ESHM;
                }
                gr_shm_sleep(&g->t, gr_shm_wake_seen(&g->t),
                             deadline_ns - now < g->t.tick_ns ?
                                 deadline_ns - now : g->t.tick_ns);
            }
            q->now_ns = 0;
            continue;
        }
        if (rc == -ENOENT) {
            gr_seterr(g, "no project serves model '%s'", model);
            return GR_ENOMODEL;
        }
        if (rc == -EDQUOT) {
            spend_refused(g, &gt, a.spend, a.today);
            return GR_ESPEND;
        }
        /* No room now: a cost no window can ever hold fails at once
         * rather than at its deadline (checked once per reservation,
         * off the path of one that finds room). */
        if (rc == -EAGAIN && !sized) {
            sized = true;
            if (too_big(g, model, cost))
                return GR_ETOOBIG;
        }
        out->retry_at_ns = rc == -EAGAIN ? gt.retry_at_ns : 0;
        if (deadline_ns <= a.now_ns) {
            gr_seterr(g, "no room for '%s' %s%s", model,
                      rc == -ENOSPC ? "(every lease slot is taken)" :
                      pin_name != NULL ? "on project " : "on any project",
                      rc != -ENOSPC && pin_name != NULL ? pin_name : "");
            return deadline_ns == 0 ? GR_ENOROOM : GR_EDEADLINE;
        }
        /* Sleep until room may come, the deadline, or a wake-up. */
        wake_at = out->retry_at_ns > a.now_ns ? out->retry_at_ns :
                  a.now_ns + g->t.tick_ns;
        if (wake_at > deadline_ns)
            wake_at = deadline_ns;
        gr_shm_sleep(&g->t, seen, wake_at - a.now_ns);
        q->now_ns = 0;
    }
    out->slot = gt.lease;
    out->cell = gt.cell;
    out->ticket = gt.ticket;
    out->project_gen = gt.project_gen;
    if (gt.batch > 1)
        gr_batch_start(g, q, &gt, stop, out);
    else if (want != 0)
        gr_batch_note(g, q);
    copy_name(out->model, model, GR_NAME_MAX);
    out->admitted_ns = q->now_ns;
    out->cost = *cost;
    out->retry_at_ns = 0;
    return GR_OK;
}

int
gr_reserve(struct gr *g, const char *model, const struct gr_cost *cost,
           int64_t deadline_ns, struct gr_lease *out)
{
    struct gr_batch_ask q;
    const char *real;

    /* Each cost in [0, INT32_MAX]: one unsigned comparison each. */
    if (g == NULL || model == NULL || cost == NULL || out == NULL ||
        (uint64_t)cost->requests > INT32_MAX ||
        (uint64_t)cost->tokens > INT32_MAX ||
        (uint64_t)cost->images > INT32_MAX)
        return GR_EINVAL;
    /* An alias (the config's `aliases`) is reserved, and called, as the
     * model it names. */
    if ((real = alias_hit(g, model)) != NULL)
        model = real;
    /* A call from this thread's batch lease, if it has one that may
     * serve it (client/batch.c): no write to the table.  The take fills
     * every field. */
    q.model = model_index(g, model, &q.config_gen);
    if (q.model < 0 && q.config_gen != 0 &&
        (real = alias_lookup(g, model, q.config_gen)) != NULL) {
        model = real;
        q.model = model_index(g, model, &q.config_gen);
    }
    q.cost = cost;
    q.now_ns = 0;
    if (q.config_gen != 0 && q.model >= 0 && !spend_on(g)) {
        q.now_ns = gr_shm_now_fast(&g->t);
        if (gr_batch_take(g, &q, out)) {
            gr_copy_chunks(out->model, model_cache.name, model_cache.len);
            out->admitted_ns = q.now_ns;
            out->cost = *cost;
            out->retry_at_ns = 0;
            return GR_OK;
        }
    }
    /* Not a memset: the lease is large. */
    out->slot = UINT32_MAX;
    out->retry_at_ns = 0;
    out->project[0] = out->key[0] = out->base_url[0] = '\0';
    out->proxy[0] = '\0';
    out->batch = NULL;
    return reserve_in_table(g, model, deadline_ns, &q, NULL, -1, out);
}

int
gr_reserve_on(struct gr *g, const char *project, const char *model,
              const struct gr_cost *cost, int64_t deadline_ns,
              struct gr_lease *out)
{
    return gr_reserve_spend(g, project, model, cost, -1, deadline_ns, out);
}

int
gr_reserve_spend(struct gr *g, const char *project, const char *model,
                 const struct gr_cost *cost, int64_t max_out,
                 int64_t deadline_ns, struct gr_lease *out)
{
    struct gr_batch_ask q;
    const char *real;

    if ((project == NULL || project[0] == '\0') &&
        (max_out <= 0 || g == NULL || !spend_on(g)))
        return gr_reserve(g, model, cost, deadline_ns, out);
    if (project != NULL && project[0] == '\0')
        project = NULL;
    if (g == NULL || model == NULL || cost == NULL || out == NULL ||
        (project != NULL && strnlen(project, GR_NAME_MAX) >= GR_NAME_MAX) ||
        (uint64_t)cost->requests > INT32_MAX ||
        (uint64_t)cost->tokens > INT32_MAX ||
        (uint64_t)cost->images > INT32_MAX)
        return GR_EINVAL;
    if ((real = alias_hit(g, model)) != NULL)
        model = real;
    q.model = model_index(g, model, &q.config_gen);
    if (q.model < 0 && q.config_gen != 0 &&
        (real = alias_lookup(g, model, q.config_gen)) != NULL) {
        model = real;
        q.model = model_index(g, model, &q.config_gen);
    }
    q.cost = cost;
    q.now_ns = 0;
    out->slot = UINT32_MAX;
    out->retry_at_ns = 0;
    out->project[0] = out->key[0] = out->base_url[0] = '\0';
    out->proxy[0] = '\0';
    out->batch = NULL;
    return reserve_in_table(g, model, deadline_ns, &q, project, max_out,
                            out);
}

/* gr_commit() of a lease of its own: settled in the table now; spend
 * is the call's cost in micro-USD, or -1 to keep what was reserved. */
static void __attribute__((noinline))
commit_in_table(struct gr *g, struct gr_lease *lease,
                const struct gr_usage *actual, int64_t spend)
{
    int64_t act[GR_NWINDOWS] = {-1, -1, -1}, fb = 0, now;

    if (actual != NULL) {
        act[GR_W_TPM] = actual->tokens;
        act[GR_W_IPM] = actual->images;
        fb = actual->first_byte_ns;
    }
    /*
     * The release is one window after the first byte, so the first byte
     * may come out late but never early.  The coarse clock lags the
     * precise one by more than its resolution (4-8 ms here, 32 ms under
     * load): "now" (0), or a first byte it has not reached yet, is read
     * from the precise clock.  A first byte after that is the caller's
     * mistake, taken as now.  (A read of the precise clock costs about
     * 23 ns here: a fifth of a reserve + commit.)
     */
    now = fb > 0 ? gr_shm_now_fast(&g->t) : 0;
    if (fb <= 0 || fb > now) {
        now = gr_shm_now_mono();
        if (fb <= 0 || fb > now)
            fb = now;
    }
    if (gr_shm_settle_spend(&g->t, lease->slot, lease->ticket, fb, act, now,
                            spend) != 0)
        gr_seterr(g, "lease of '%s' was already settled", lease->project);
    lease_hint = lease->slot;
    lease->slot = UINT32_MAX;
}

void
gr_commit(struct gr *g, struct gr_lease *lease, const struct gr_usage *actual)
{
    if (g == NULL || lease == NULL || lease->slot == UINT32_MAX)
        return;
    if (lease->batch == NULL) {
        commit_in_table(g, lease, actual, -1);
        return;
    }
    /* One call of a batch lease: the batch settles when its last call
     * is in (client/batch.c). */
    lease->slot = UINT32_MAX;
    gr_batch_commit(lease, actual);
}

void
gr_commit_spend(struct gr *g, struct gr_lease *lease,
                const struct gr_usage *actual,
                const struct gr_shm_spend_use *use)
{
    struct gr_shm_price pr;
    int64_t spend = -1;

    if (g == NULL || lease == NULL || lease->slot == UINT32_MAX)
        return;
    if (lease->batch != NULL || !spend_on(g)) {
        gr_commit(g, lease, actual);
        return;
    }
    if (use != NULL && g->t.max_models != 0 &&
        gr_shm_price_read(&g->t, lease->cell % g->t.max_models, &pr) == 0)
        spend = gr_shm_spend_actual(&pr, use);
    commit_in_table(g, lease, actual, spend);
}

static int
outcome_class(enum gr_class c)
{
    switch (c) {
    case GR_CLASS_OK: return GR_OUT_OK;
    case GR_CLASS_QUOTA: return GR_OUT_QUOTA;
    case GR_CLASS_OVERLOAD: return GR_OUT_OVERLOAD;
    case GR_CLASS_SERVER: return GR_OUT_SERVER;
    case GR_CLASS_AUTH: return GR_OUT_AUTH;
    case GR_CLASS_REQUEST: return GR_OUT_REQUEST;
    case GR_CLASS_MODEL: return GR_OUT_MODEL;
    default: return GR_OUT_UNKNOWN;
    }
}

void
gr_report(struct gr *g, const struct gr_lease *lease,
          const struct gr_verdict *v)
{
    struct gr_shm_outcome o;
    unsigned d;

    if (g == NULL || lease == NULL || v == NULL || g->t.max_models == 0)
        return;
    /* The next attempt must be free to choose another project: this
     * thread takes no more calls from the batch that got this answer. */
    if (lease->batch != NULL && v->cls != GR_CLASS_OK)
        gr_batch_drop(lease);
    memset(&o, 0, sizeof(o));
    o.cls = outcome_class(v->cls);
    o.status = v->status;
    o.dims = v->dims & ((1u << GR_NDIMS) - 1);
    o.cool_ns = v->cooldown_s > 0 ? (int64_t)(v->cooldown_s * 1e9) : 0;
    o.cool_src = (int)v->cooldown_src;
    o.disable = v->disable == GR_DISABLE_CELL ? 1 :
                v->disable == GR_DISABLE_PROJECT ? 2 :
                v->disable == GR_DISABLE_KEY ? 3 : 0;
    o.key = lease->key_index;
    for (d = 0; d < GR_NDIM; d++)
        o.learned[d] = v->learned[d];
    o.quota_id = v->n_quota_ids > 0 ? v->quota_ids[0] : NULL;
    gr_shm_report(&g->t, lease->cell / g->t.max_models,
                  lease->cell % g->t.max_models, lease->project_gen, &o,
                  gr_shm_now_mono(), gr_thread_rng());
}
