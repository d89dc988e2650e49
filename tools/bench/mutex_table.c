/*
 * mutex_table.c - the "shared zone with a lock" contender: gemroute's
 * table semantics, with every reserve and every commit made under one
 * process-shared robust pthread mutex that guards the whole zone (the
 * classic design of nginx's shared zones and of most shared-memory rate
 * limiters).
 *
 * Same admission as gemroute, written the way a lock makes natural:
 * per (project, model) cell, three minute windows (requests, tokens,
 * images) that count a cost from its admission until the first tick
 * boundary one window after the answer's first byte, a Pacific-day
 * counter that starts a new day at the number of calls in flight,
 * cooldowns and a circuit checked before admitting, leases that record
 * their owner pid, power-of-two choices by relative headroom with a
 * scan as fallback, and the project's name, key and base URL copied out
 * for the caller.  Under the lock nothing can interleave, so a window is
 * a plain count plus a ring of releases indexed by tick, drained one
 * elapsed tick at a time.
 *
 * A process that dies holding the lock leaves it EOWNERDEAD: the next
 * locker marks it consistent and counts it.  Its half-made change stays
 * (a real zone would need an undo log or an audit); the benchmark never
 * kills anyone, so the count stays at zero.
 */
#include "bench.h"
#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MT_TICKS 64         /* ticks per window, as gemroute */
#define MT_RING 72          /* a release is at most 65 ticks ahead */
#define MT_NAME_MAX 64
#define MT_KEY_MAX 128
#define MT_URL_MAX 256
#define MT_LEASES 4096
#define MT_NWIN 3           /* requests, tokens, images per window */
#define MT_DAY_LIMIT INT64_C(2000000000)

/* Cost to release when tick `tick` comes. */
struct mt_slot {
    int64_t tick;
    int64_t amount;
};

struct mt_window {
    int64_t used;               /* admitted and not yet released */
    int64_t epoch;              /* every tick up to this one released */
    struct mt_slot ring[MT_RING];
};

struct mt_cell {
    int64_t limit[MT_NWIN];     /* per window; -1 = none */
    int64_t day_limit;          /* requests per Pacific day; -1 = none */
    int64_t cool_until[MT_NWIN + 1];    /* ns; per dimension, day last */
    int64_t circuit_until;      /* ns; an open circuit */
    uint32_t disabled;
    int32_t day;                /* Pacific day of day_used */
    int64_t day_used;
    int64_t in_flight;
    uint64_t admitted;
    uint64_t rejected;
    struct mt_window win[MT_NWIN];
};

struct mt_project {
    char name[MT_NAME_MAX];
    char key[MT_KEY_MAX];
    uint32_t generation;
    uint32_t active;
};

struct mt_lease {
    uint32_t busy;
    int32_t pid;                /* owner, for a reaper */
    uint64_t seq;               /* ticket: bumped by every claim */
    uint32_t cell;
    uint32_t generation;        /* of the project at reserve */
    int64_t admitted_ns;
    int64_t cost[MT_NWIN];
};

struct mt_zone {
    pthread_mutex_t lock;       /* guards everything below */
    uint32_t n_projects;
    uint32_t next_lease;        /* where the next lease search starts */
    int64_t window_ns;
    int64_t tick_ns;
    int64_t coarse_ns;          /* as gemroute's: the coarse clock's
                                   resolution if counting with it, or 0 */
    uint64_t seq;
    uint64_t recovered;         /* locks found with a dead owner */
    char base_url[MT_URL_MAX];
    struct mt_lease leases[MT_LEASES];
    /* then n_projects projects, then n_projects cells */
};

/* What a reservation gives the caller, as struct gr_lease does. */
struct mt_grant {
    char project[MT_NAME_MAX];
    char key[MT_KEY_MAX];
    char base_url[MT_URL_MAX];
    uint32_t lease;
    uint32_t cell;
    uint64_t seq;
};

struct mt_h {
    struct mt_zone *z;
    int32_t pid;
    uint64_t rng;
    int64_t cost[MT_NWIN];
    int64_t day_until_s;        /* the cached day is good until then */
    int32_t day;
    int checking;
};

static struct mt_zone *zone;    /* mapped by the parent, inherited */
static size_t zone_size;

static struct mt_project *
projects_of(struct mt_zone *z)
{
    return (struct mt_project *)(z + 1);
}

static struct mt_cell *
cells_of(struct mt_zone *z)
{
    return (struct mt_cell *)(projects_of(z) + z->n_projects);
}

static void
zone_lock(struct mt_zone *z)
{
    int rc = pthread_mutex_lock(&z->lock);

    if (rc == EOWNERDEAD) {
        z->recovered++;
        pthread_mutex_consistent(&z->lock);
    }
}

static void
zone_unlock(struct mt_zone *z)
{
    pthread_mutex_unlock(&z->lock);
}

static uint64_t
next_rand(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static void
copy_str(char *dst, const char *src, size_t n)
{
    size_t len = strnlen(src, n - 1);

    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* Release every tick up to c.  Under the lock. */
static void
drain(struct mt_window *w, int64_t c)
{
    int64_t t;

    if (c <= w->epoch)
        return;
    if (c - w->epoch >= MT_RING) {
        for (t = 0; t < MT_RING; t++) {
            struct mt_slot *s = &w->ring[t];

            if (s->amount != 0 && s->tick <= c) {
                w->used -= s->amount;
                s->amount = 0;
            }
        }
    } else {
        for (t = w->epoch + 1; t <= c; t++) {
            struct mt_slot *s = &w->ring[t % MT_RING];

            if (s->amount != 0 && s->tick == t) {
                w->used -= s->amount;
                s->amount = 0;
            }
        }
    }
    w->epoch = c;
}

/* Relative room left on the tightest window, in parts per 2^16. */
static int64_t
headroom(const struct mt_cell *c, const int64_t *cost)
{
    int64_t best = INT64_MAX;
    unsigned w;

    for (w = 0; w < MT_NWIN; w++) {
        int64_t lim = c->limit[w], r;

        if (lim <= 0 || cost[w] <= 0)
            continue;
        r = (lim - c->win[w].used - cost[w]) * 65536 / lim;
        if (r < best)
            best = r;
    }
    return best;
}

/* Admit cost on cell i now, on every dimension or none.  Under the lock. */
static int
try_cell(struct mt_zone *z, uint32_t i, const int64_t *cost, int64_t now,
         int32_t today, struct mt_lease *l)
{
    struct mt_project *p = &projects_of(z)[i];
    struct mt_cell *c = &cells_of(z)[i];
    int64_t tick = now / z->tick_ns;
    unsigned w;

    if (!p->active || c->disabled || c->circuit_until > now)
        return -1;
    for (w = 0; w <= MT_NWIN; w++)
        if (c->cool_until[w] > now && (w == 0 || w == MT_NWIN ||
                                       (w < MT_NWIN && cost[w] > 0)))
            return -1;
    for (w = 0; w < MT_NWIN; w++) {
        if (c->limit[w] < 0 || cost[w] <= 0)
            continue;
        drain(&c->win[w], tick);
        if (c->win[w].used + cost[w] > c->limit[w])
            goto full;
    }
    if (c->day != today) {
        c->day = today;             /* what is in flight may arrive today */
        c->day_used = c->in_flight;
    }
    if (c->day_limit >= 0 && c->day_used + 1 > c->day_limit)
        goto full;
    for (w = 0; w < MT_NWIN; w++) {
        if (c->limit[w] >= 0 && cost[w] > 0)
            c->win[w].used += cost[w];
        l->cost[w] = cost[w];
    }
    c->day_used++;
    c->in_flight++;
    c->admitted++;
    l->cell = i;
    l->generation = p->generation;
    l->admitted_ns = now;
    return 0;

full:
    c->rejected++;
    return -1;
}

/* Reserve: 0 with g filled, 1 when nothing has room. */
static int
mt_reserve(struct mt_h *h, int64_t now, int32_t today, struct mt_grant *g)
{
    struct mt_zone *z = h->z;
    uint32_t n = z->n_projects, i, k, a, b;
    struct mt_lease *l = NULL;

    zone_lock(z);
    for (k = 0; k < MT_LEASES; k++) {
        i = (z->next_lease + k) % MT_LEASES;
        if (!z->leases[i].busy) {
            l = &z->leases[i];
            z->next_lease = i + 1;
            break;
        }
    }
    if (l == NULL)
        goto none;
    a = (uint32_t)(next_rand(&h->rng) % n);
    b = (uint32_t)(next_rand(&h->rng) % n);
    if (headroom(&cells_of(z)[b], h->cost) >
        headroom(&cells_of(z)[a], h->cost)) {
        uint32_t x = a;

        a = b;
        b = x;
    }
    if (try_cell(z, a, h->cost, now, today, l) == 0 ||
        (b != a && try_cell(z, b, h->cost, now, today, l) == 0))
        goto admitted;
    k = (uint32_t)(next_rand(&h->rng) % n);
    for (i = 0; i < n; i++)
        if (try_cell(z, (k + i) % n, h->cost, now, today, l) == 0)
            goto admitted;
none:
    zone_unlock(z);
    return 1;

admitted:
    l->busy = 1;
    l->pid = h->pid;
    l->seq = ++z->seq;
    copy_str(g->project, projects_of(z)[l->cell].name, MT_NAME_MAX);
    copy_str(g->key, projects_of(z)[l->cell].key, MT_KEY_MAX);
    copy_str(g->base_url, z->base_url, MT_URL_MAX);
    g->lease = (uint32_t)(l - z->leases);
    g->cell = l->cell;
    g->seq = l->seq;
    zone_unlock(z);
    return 0;
}

/* Settle: the cost leaves one window after the first byte.  0 or -1. */
static int
mt_commit(struct mt_h *h, const struct mt_grant *g, int64_t first_byte,
          int64_t now)
{
    struct mt_zone *z = h->z;
    struct mt_lease *l = &z->leases[g->lease % MT_LEASES];
    struct mt_cell *c;
    int64_t tick = now / z->tick_ns, at;
    unsigned w;

    zone_lock(z);
    if (!l->busy || l->seq != g->seq) {
        zone_unlock(z);
        return -1;      /* settled already */
    }
    c = &cells_of(z)[l->cell];
    if (first_byte <= 0 || first_byte > now)
        first_byte = now;
    if (first_byte < l->admitted_ns)
        first_byte = l->admitted_ns;
    at = (first_byte + z->window_ns + z->tick_ns - 1) / z->tick_ns;
    for (w = 0; w < MT_NWIN; w++) {
        struct mt_window *win = &c->win[w];
        struct mt_slot *s;

        if (c->limit[w] < 0 || l->cost[w] <= 0)
            continue;
        drain(win, tick);
        if (at <= tick) {
            win->used -= l->cost[w];    /* already due */
            continue;
        }
        s = &win->ring[at % MT_RING];
        if (s->amount != 0 && s->tick != at)
            continue;   /* cannot happen after the drain: keep counted */
        s->tick = at;
        s->amount += l->cost[w];
    }
    c->in_flight--;
    l->busy = 0;
    zone_unlock(z);
    return 0;
}

/* As gemroute's client: the clocks it counts with (coarse when they are
 * fine enough for the window; precise for a first byte and near
 * midnight), precise in check runs. */
static int64_t
mt_now(const struct mt_h *h)
{
    return h->z->coarse_ns != 0 ? gr_shm_now_mono_coarse()
                                : gr_bench_mono_ns();
}

static int32_t
pacific_day(struct mt_h *h)
{
    int64_t s = (h->z->coarse_ns != 0 ? gr_shm_now_wall_coarse()
                                      : gr_bench_wall_ns()) / 1000000000;

    if (h->z->coarse_ns != 0 && s >= h->day_until_s - 10)
        s = gr_bench_wall_ns() / 1000000000;

    /* UTC-8 without DST: the benchmark needs the cost, not the calendar */
    if (s >= h->day_until_s) {
        h->day = (int32_t)((s - 8 * 3600) / 86400);
        h->day_until_s = ((int64_t)h->day + 1) * 86400 + 8 * 3600;
    }
    return h->day;
}

static int
mutex_setup(const struct gr_bench_opts *o, char *err, size_t n)
{
    pthread_mutexattr_t ma;
    struct mt_project *p;
    struct mt_cell *c;
    unsigned i, w;

    if (o->projects < 1) {
        snprintf(err, n, "--projects must be at least 1");
        return -1;
    }
    zone_size = sizeof(struct mt_zone) +
                o->projects * (sizeof(struct mt_project) +
                               sizeof(struct mt_cell));
    zone = mmap(NULL, zone_size, PROT_READ | PROT_WRITE,
                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (zone == MAP_FAILED) {
        snprintf(err, n, "mmap(%zu bytes): %s", zone_size, strerror(errno));
        return -1;
    }
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(&zone->lock, &ma) != 0) {
        snprintf(err, n, "pthread_mutex_init: robust, shared: refused");
        return -1;
    }
    pthread_mutexattr_destroy(&ma);
    zone->n_projects = o->projects;
    zone->window_ns = o->window_ms * 1000000;
    zone->tick_ns = zone->window_ns / MT_TICKS;
    zone->coarse_ns = o->check ? 0 : gr_shm_coarse_res_ns();
    if (zone->coarse_ns > zone->tick_ns)
        zone->coarse_ns = 0;    /* as gemroute: too coarse to count with */
    copy_str(zone->base_url, "http://127.0.0.1:8080", MT_URL_MAX);
    p = projects_of(zone);
    c = cells_of(zone);
    for (i = 0; i < o->projects; i++) {
        snprintf(p[i].name, MT_NAME_MAX, "p%u", i + 1);
        snprintf(p[i].key, MT_KEY_MAX, "bench-key-%u", i + 1);
        p[i].active = 1;
        c[i].limit[0] = o->rpm;
        c[i].limit[1] = o->tpm;
        c[i].limit[2] = -1;
        c[i].day_limit = o->check ? -1 : MT_DAY_LIMIT;
        for (w = 0; w < MT_NWIN; w++)
            c[i].win[w].epoch = gr_bench_mono_ns() / zone->tick_ns;
    }
    gr_bench_mutex.check_window_ns = zone->window_ns;
    return 0;
}

static void
mutex_teardown(const struct gr_bench_opts *o)
{
    (void)o;
    if (zone != NULL && zone != MAP_FAILED)
        munmap(zone, zone_size);
    zone = NULL;
}

static void *
mutex_open(const struct gr_bench_opts *o, unsigned worker, char *err,
           size_t n)
{
    struct mt_h *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    h->z = zone;
    h->pid = (int32_t)getpid();
    h->rng = ((uint64_t)gr_bench_mono_ns() ^ ((uint64_t)h->pid << 32) ^
              worker) | 1;
    h->cost[0] = 1;
    h->cost[1] = o->tokens;
    h->cost[2] = 0;
    h->checking = o->check;
    return h;
}

static int
mutex_op(void *p, struct gr_bench_adm *adm)
{
    struct mt_h *h = p;
    struct mt_grant g;
    int64_t now = mt_now(h), fb;

    if (mt_reserve(h, now, pacific_day(h), &g) != 0)
        return 1;
    /* As gemroute's gr_commit with a first byte of "now": the precise
     * clock for the first byte, and it is now. */
    fb = gr_bench_mono_ns();
    adm->cell = g.cell;
    adm->a_ns = fb;
    adm->s_ns = fb;
    adm->sent_ns = fb;
    return mt_commit(h, &g, fb, fb) == 0 ? 0 : -1;
}

static void
mutex_close(void *p)
{
    free(p);
}

struct gr_bench_impl gr_bench_mutex = {
    .name = "mutex",
    .setup = mutex_setup,
    .teardown = mutex_teardown,
    .open = mutex_open,
    .op = mutex_op,
    .close = mutex_close,
    .clock_ns = gr_bench_mono_ns,
};
