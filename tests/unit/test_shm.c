/*
 * test_shm.c - the shared table: layout, attach checks, windows, the day
 * counter, all-or-nothing reservation, settling, reaping, audits and
 * generation checks.  Time is passed in explicitly, so nothing sleeps.
 */
#include "audit.h"
#include "clock.h"
#include "health.h"
#include "reserve.h"
#include "table.h"
#include "testlib.h"
#include "window.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define W_NS (INT64_C(60) * 1000000000)
#define TICK (W_NS / GR_TICKS_PER_WINDOW)
#define T0 (INT64_C(1000) * W_NS)   /* an arbitrary "now" */

static char name[64];
static struct gr_shm tab;

static int
setup(void)
{
    char err[256];

    snprintf(name, sizeof(name), "/grtest-shm-%d", (int)getpid());
    shm_unlink(name);
    if (gr_shm_router_create(name, 4, 2, 16, W_NS, 0600, (gid_t)-1, &tab,
                             err, sizeof(err)) != 0)
        return -1;
    return 0;
}

static int
teardown(void)
{
    gr_shm_detach(&tab);
    shm_unlink(name);
    return 0;
}

/* A project in slot s serving model 0 with these limits. */
static void
add_project(uint32_t s, int64_t rpm, int64_t tpm, int64_t rpd)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, s, 0);
    uint32_t n = atomic_load(&tab.hdr->n_choice);

    strcpy(tab.models[0].name, "m");
    atomic_store(&tab.hdr->n_models, 1);
    snprintf(tab.projects[s].name, GR_SHM_NAME_MAX, "p%u", s);
    tab.projects[s].n_keys = 1;
    strcpy(gr_shm_key(&tab, s, 0), "SECRET-key-0000");
    atomic_store(&c->limit[GR_D_RPM], gr_shm_limit_pack(rpm));
    atomic_store(&c->limit[GR_D_TPM], gr_shm_limit_pack(tpm));
    atomic_store(&c->limit[GR_D_RPD], gr_shm_limit_pack(rpd));
    atomic_store(&c->limit[GR_D_IPM], GR_LIMIT_NONE);
    atomic_store(&c->limit[GR_D_TPD], GR_LIMIT_NONE);
    for (unsigned d = 0; d < GR_NDIM; d++)
        gr_shm_set_learned(&tab, c, d, -1);
    atomic_store(&tab.projects[s].state, GR_PROJ_ACTIVE);
    atomic_store(&tab.choice[n], s);
    atomic_store(&tab.hdr->n_choice, n + 1);
}

static void
reset_table(void)
{
    memset(tab.projects, 0, sizeof(*tab.projects) * tab.max_projects);
    memset(tab.cells, 0, sizeof(*tab.cells) * tab.max_projects *
                             tab.max_models);
    memset(tab.rings, 0, sizeof(*tab.rings) * GR_RING * GR_NWINDOWS *
                             tab.max_projects * tab.max_models);
    memset(tab.leases, 0, sizeof(*tab.leases) * tab.max_leases);
    atomic_store(&tab.hdr->n_choice, 0);
    atomic_store(&tab.hdr->headroom_ppm, 1000000);
}

static int
reserve_on(int32_t today, int64_t req, int64_t tok, int64_t now,
           struct gr_shm_grant *g)
{
    static uint64_t rng = 42;
    struct gr_shm_ask a = {.model = 0, .cost = {req, tok, 0}, .now_ns = now,
                           .today = today, .pid = (uint32_t)getpid(),
                           .rng = &rng};

    return gr_shm_reserve(&tab, &a, g);
}

static int
reserve(int64_t req, int64_t tok, int64_t now, struct gr_shm_grant *g)
{
    return reserve_on(20000, req, tok, now, g);
}

static int64_t
used(uint32_t s, unsigned w, int64_t now)
{
    return gr_shm_window_used(&tab, gr_shm_cell(&tab, s, 0), w, now);
}

static void
test_geometry(void)
{
    struct gr_shm_geom g;

    CU_ASSERT_EQUAL(gr_shm_geometry(10, 8, 4096, &g), 0);
    CU_ASSERT_EQUAL(g.off_models, sizeof(struct gr_shm_header));
    CU_ASSERT_EQUAL(g.off_cells % GR_SHM_LINE, 0);
    CU_ASSERT_EQUAL(g.off_keys % GR_SHM_PAGE, 0);
    CU_ASSERT_EQUAL(g.size % GR_SHM_PAGE, 0);
    /* ABI 4.2: the extras after the keys, whole, within the size */
    CU_ASSERT_EQUAL(g.off_extra, g.keys_end);
    CU_ASSERT(g.off_extra + sizeof(struct gr_shm_extra) +
              8 * sizeof(struct gr_shm_fallback) +
              8 * 8 * 8 <= g.size);
    CU_ASSERT(g.off_keys >= g.off_cells + 80 * sizeof(struct gr_shm_cell));
    CU_ASSERT_EQUAL(gr_shm_geometry(0, 8, 1, &g), -EINVAL);
    CU_ASSERT_EQUAL(gr_shm_geometry(1, GR_SHM_MAX_MODELS + 1, 1, &g), -EINVAL);
    CU_ASSERT_EQUAL(sizeof(struct gr_shm_cell) % 64, 0);
    CU_ASSERT_EQUAL(sizeof(struct gr_shm_lease), 64);
}

/* The line of a ring slot, counted from the start of the rings. */
static uint64_t
ring_line(const struct gr_shm *t, const struct gr_shm_geom *g, uint32_t cell,
          uint64_t tick, unsigned w)
{
    return ((uintptr_t)gr_shm_ring_slot(t, gr_shm_cell_at(t, cell), tick, w) -
            g->off_rings) / GR_SHM_LINE;
}

/*
 * Every ring slot of a geometry: inside the rings and in no other slot.
 * Cell first (a small table), no line holds two cells' releases; tick
 * first, the releases of one tick are side by side, so neighbours share
 * lines.  A private struct gr_shm over a fake base: only addresses are
 * compared.
 */
static void
check_ring_slots(uint32_t projects, uint32_t models, bool cell_first)
{
    struct gr_shm_geom g;
    struct gr_shm t = {0};
    uint32_t n_cells = projects * models, cell, w;
    uint64_t tick, seen = 0, bad = 0, shared_line = 0;
    unsigned char *used;

    CU_ASSERT_FATAL(gr_shm_geometry(projects, models, 16, &g) == 0);
    t.max_projects = projects;
    t.max_models = models;
    t.cells = (struct gr_shm_cell *)(uintptr_t)g.off_cells;
    t.rings = (_Atomic uint64_t *)(uintptr_t)g.off_rings;
    gr_shm_ring_order(n_cells, &t.ring_tick_words, &t.ring_cell_words);
    CU_ASSERT_EQUAL(t.ring_cell_words == GR_NWINDOWS, !cell_first);
    used = calloc((g.off_keys - g.off_rings) / 8, 1);
    CU_ASSERT_FATAL(used != NULL);
    for (cell = 0; cell < n_cells; cell++) {
        for (tick = 0; tick < GR_RING; tick++) {
            for (w = 0; w < GR_NWINDOWS; w++) {
                uintptr_t at = (uintptr_t)gr_shm_ring_slot(
                    &t, gr_shm_cell_at(&t, cell), tick, w);

                if (at < g.off_rings || at + 8 > g.off_keys ||
                    used[(at - g.off_rings) / 8]++ != 0)
                    bad++;
                if (cell > 0 && ring_line(&t, &g, cell, tick, w) ==
                                    ring_line(&t, &g, cell - 1, tick, 0))
                    shared_line++;
                if (cell > 0 && cell_first &&
                    ring_line(&t, &g, cell, tick, w) ==
                        ring_line(&t, &g, cell - 1, GR_RING - 1,
                                  GR_NWINDOWS - 1))
                    shared_line++;
                seen++;
            }
        }
    }
    CU_ASSERT_EQUAL(seen, (uint64_t)n_cells * GR_RING * GR_NWINDOWS);
    CU_ASSERT_EQUAL(bad, 0);
    if (cell_first) {
        CU_ASSERT_EQUAL(shared_line, 0);
    } else {
        CU_ASSERT(shared_line > 0);
    }
    free(used);
}

static void
test_ring_layout(void)
{
    check_ring_slots(10, 1, true);
    check_ring_slots(128, 8, true);     /* GR_RING_CELL_FIRST_MAX cells */
    check_ring_slots(1025, 1, false);
    check_ring_slots(300, 8, false);
}

static void
test_attach_checks(void)
{
    struct gr_shm t;
    char err[256], want[96];
    int fd;

    CU_ASSERT_EQUAL(gr_shm_attach(name, true, &t, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(t.max_projects, 4);
    CU_ASSERT_EQUAL(t.window_ns, W_NS);
    gr_shm_detach(&t);

    tab.hdr->magic ^= 1;
    CU_ASSERT_EQUAL(gr_shm_attach(name, true, &t, err, sizeof(err)), -EPROTO);
    CU_ASSERT(strstr(err, "not a gemroute table") != NULL);
    tab.hdr->magic ^= 1;

    tab.hdr->abi_major = GR_SHM_ABI_MAJOR + 1;
    CU_ASSERT_EQUAL(gr_shm_attach(name, false, &t, err, sizeof(err)),
                    -EPROTO);
    snprintf(want, sizeof(want), "has ABI %u.%u; this program speaks %u.x",
             GR_SHM_ABI_MAJOR + 1, GR_SHM_ABI_MINOR, GR_SHM_ABI_MAJOR);
    CU_ASSERT(strstr(err, want) != NULL);
    tab.hdr->abi_major = GR_SHM_ABI_MAJOR;

    tab.hdr->max_projects = 5;      /* geometry no longer matches size */
    CU_ASSERT_EQUAL(gr_shm_attach(name, false, &t, err, sizeof(err)),
                    -EPROTO);
    CU_ASSERT(strstr(err, "damaged header") != NULL);
    tab.hdr->max_projects = 4;

    /* A segment whose real size disagrees with its header. */
    fd = shm_open(name, O_RDWR, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ftruncate(fd, (off_t)tab.size + 4096), 0);
    CU_ASSERT_EQUAL(gr_shm_attach(name, false, &t, err, sizeof(err)),
                    -EPROTO);
    CU_ASSERT_EQUAL(ftruncate(fd, (off_t)tab.size), 0);
    close(fd);
    CU_ASSERT_EQUAL(gr_shm_attach("/grtest-none-such", false, &t, err,
                                  sizeof(err)), -ENOENT);
    CU_ASSERT(strstr(err, "is gemrouted running?") != NULL);
    CU_ASSERT_EQUAL(gr_shm_attach(name, false, &t, err, sizeof(err)), 0);
    gr_shm_detach(&t);
}

static void
test_two_mappings(void)
{
    struct gr_shm a, b;
    char err[256];

    CU_ASSERT_FATAL(gr_shm_attach(name, true, &a, err, sizeof(err)) == 0);
    CU_ASSERT_FATAL(gr_shm_attach(name, true, &b, err, sizeof(err)) == 0);
    CU_ASSERT(a.base != b.base);
    reset_table();
    add_project(0, 10, 1000, 100);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&a, gr_shm_cell(&a, 0, 0), 0, 3, 10,
                                        T0), 0);
    CU_ASSERT_EQUAL(gr_shm_window_used(&b, gr_shm_cell(&b, 0, 0), 0, T0), 3);
    CU_ASSERT_EQUAL(strcmp(gr_shm_key(&b, 0, 0), "SECRET-key-0000"), 0);
    gr_shm_detach(&a);
    gr_shm_detach(&b);
}

static void
test_window_release_timing(void)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, 1, 0);
    const unsigned w = 0;
    int64_t fb = T0 + 5 * TICK + TICK / 3;  /* first byte, mid-tick */
    int64_t release = ((fb + W_NS + TICK - 1) / TICK) * TICK;

    reset_table();
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 4, 5, T0), 0);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 2, 5, T0), -EAGAIN);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 1, 5, T0), 0);
    /* Settled at fb: counted until the first tick at or after fb + W. */
    gr_shm_window_release_at(&tab, c, w, 4, fb + W_NS, fb + TICK);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 1, 5, release - 1),
                    -EAGAIN);
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, release - 1), 5);
    CU_ASSERT(release >= fb + W_NS);
    CU_ASSERT(release - (fb + W_NS) < TICK);
    CU_ASSERT_EQUAL(gr_shm_window_room_at(&tab, c, w, 1, 5, fb + TICK),
                    release);
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, release), 1);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 4, 5, release), 0);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 1, 5, release), -EAGAIN);
    /* A settle whose release time has passed gives back at once. */
    gr_shm_window_release_at(&tab, c, w, 4, release, release + 1);
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, release + 1), 1);
}

static void
test_window_many_ticks_and_refund(void)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, 2, 0);
    const unsigned w = 1;
    int64_t now = T0;
    int i;

    reset_table();
    /* Releases parked on 40 different ticks all come back, each at its
     * own tick, even after a long idle gap (several windows). */
    for (i = 0; i < 40; i++) {
        CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 10, 1000, now), 0);
        gr_shm_window_release_at(&tab, c, w, 10, now + W_NS, now);
        now += TICK;
    }
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, now), 400);
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, T0 + W_NS + 20 * TICK), 190);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 1000, 1000,
                                        T0 + 5 * W_NS), 0);
    gr_shm_window_give_back(&tab, c, w, 600);   /* a refund */
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, T0 + 5 * W_NS), 400);
    gr_shm_window_force(&tab, c, w, 50);    /* an estimate that was short */
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, T0 + 5 * W_NS), 450);
}

static void
test_stranded_release_is_given_back(void)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, 1, 1);
    const unsigned w = 2;
    uint64_t e = (uint64_t)(T0 / TICK);     /* drained through this tick */
    uint64_t stranded = e - 5, b = e + 67;   /* same ring slot */
    _Atomic uint64_t *slot = gr_shm_ring_slot(&tab, c, b, w);

    reset_table();
    CU_ASSERT_EQUAL(stranded % GR_RING, b % GR_RING);
    /* 10 counted: 7 of them parked by a settler that stalled past the
     * drain of their tick (an open slot behind the epoch). */
    atomic_store(&c->word[w], gr_shm_word_pack(10, e & GR_EPOCH_MASK, 0));
    atomic_store(slot, 7 | ((stranded & GR_EPOCH_MASK) << GR_SLOT_AMOUNT_BITS));
    /* A release that wants the same slot takes it and gives the 7 back
     * (it used to spin here: nothing would ever drain that slot). */
    gr_shm_window_release_at(&tab, c, w, 3, (int64_t)b * TICK, T0);
    CU_ASSERT_EQUAL(gr_shm_word_used(atomic_load(&c->word[w])), 3);
    CU_ASSERT_EQUAL(atomic_load(slot),
                    3 | ((b & GR_EPOCH_MASK) << GR_SLOT_AMOUNT_BITS));
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, (int64_t)b * TICK), 0);
}

static void
test_new_window_in_the_upper_half_of_the_tick_period(void)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, 2, 1);
    const unsigned w = 0;
    /* A clock whose tick count (mod 2^20) is in the upper half: a new
     * table's epoch 0 then reads as "ahead" of it.  It must still drain. */
    int64_t now = ((INT64_C(1) << 19) + 12345 + (INT64_C(1) << 20) * 7) *
                  TICK;
    int64_t later = now + W_NS + TICK;

    reset_table();
    CU_ASSERT_EQUAL(gr_shm_word_epoch(atomic_load(&c->word[w])), 0);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 5, 5, now), 0);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 1, 5, now), -EAGAIN);
    gr_shm_window_release_at(&tab, c, w, 5, now + W_NS, now);
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, later - 2 * TICK), 5);
    CU_ASSERT_EQUAL(gr_shm_window_used(&tab, c, w, later), 0);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 5, 5, later), 0);
    /* A long-idle cell (half a tick period, router gone): what it still
     * held is long due, and it drains. */
    gr_shm_window_release_at(&tab, c, w, 5, later + W_NS, later);
    later += (INT64_C(1) << 19) * TICK + 77 * TICK;
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 5, 5, later), 0);
}

static void
test_day_roll_counts_leases_in_flight(void)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, 0, 0);
    struct gr_shm_grant g1, g2, g3;

    reset_table();
    add_project(0, 10, 1000, 1000);
    CU_ASSERT_FATAL(reserve_on(20000, 1, 10, T0, &g1) == 0);
    CU_ASSERT_FATAL(reserve_on(20000, 2, 10, T0, &g2) == 0);
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, UINT32_MAX), 3);
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, g2.lease), 1);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g2.lease, g2.ticket, T0, NULL, T0), 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 20000), 3);
    /* Midnight: the first new request starts day 20001 at the one request
     * still in flight (g1), then counts itself. */
    CU_ASSERT_FATAL(reserve_on(20001, 1, 10, T0, &g3) == 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 20001), 2);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g1.lease, g1.ticket, T0, NULL, T0), 0);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g3.lease, g3.ticket, T0, NULL, T0), 0);
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, UINT32_MAX), 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 20001), 2);
}

static void
test_client_drain_leaves_stranded_to_router(void)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, 3, 1);
    const unsigned w = 0;
    uint64_t e = (uint64_t)(T0 / TICK), stranded = e - 5;

    reset_table();
    atomic_store(&c->word[w], gr_shm_word_pack(10, e & GR_EPOCH_MASK, 0));
    atomic_store(gr_shm_ring_slot(&tab, c, stranded, w),
                 7 | ((stranded & GR_EPOCH_MASK) << GR_SLOT_AMOUNT_BITS));
    /* A client drains only the tick that elapsed: the stranded 7 stay
     * counted (conservative)... */
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, w, 1, 100,
                                        (int64_t)(e + 1) * TICK), 0);
    CU_ASSERT_EQUAL(gr_shm_word_used(atomic_load(&c->word[w])), 11);
    CU_ASSERT_EQUAL(gr_shm_word_epoch(atomic_load(&c->word[w])),
                    (e + 1) & GR_EPOCH_MASK);
    /* ...until the router's sweep scans the whole ring. */
    gr_shm_window_drain(&tab, c, w, (int64_t)(e + 2) * TICK, false);
    CU_ASSERT_EQUAL(gr_shm_word_used(atomic_load(&c->word[w])), 11);
    gr_shm_window_drain(&tab, c, w, (int64_t)(e + 3) * TICK, true);
    CU_ASSERT_EQUAL(gr_shm_word_used(atomic_load(&c->word[w])), 4);
    CU_ASSERT_EQUAL(gr_shm_word_epoch(atomic_load(&c->word[w])),
                    (e + 3) & GR_EPOCH_MASK);
}

static int64_t
fake_in_flight(const void *arg)
{
    return *(const int64_t *)arg;
}

static void
test_day_roll_counts_in_flight(void)
{
    struct gr_shm_cell *c = gr_shm_cell(&tab, 3, 0);
    int64_t fl = 0;

    reset_table();
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 3, 100, fake_in_flight, &fl,
                                     1), 0);
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 3, 100, fake_in_flight, &fl,
                                     1), 0);
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 3, 100, fake_in_flight, &fl,
                                     1), 0);
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 3, 100, fake_in_flight, &fl, 1),
                    -EAGAIN);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 100), 3);
    /* Two requests still in flight at midnight may arrive on either day:
     * the new day starts with them, plus this one. */
    fl = 2;
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 3, 101, fake_in_flight, &fl, 1),
                    0);
    fl = 0;
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 101), 3);
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 3, 101, fake_in_flight, &fl, 1),
                    -EAGAIN);
    /* A process whose clock still says day 100 counts on day 101. */
    gr_shm_day_give_back(&c->day, 1);
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 3, 100, fake_in_flight, &fl,
                                     1), 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 101), 3);
    /* A batch of requests counts them all, or none. */
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 5, 101, fake_in_flight, &fl, 3),
                    -EAGAIN);
    CU_ASSERT_EQUAL(gr_shm_day_admit(&c->day, 5, 101, fake_in_flight, &fl, 2),
                    0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 101), 5);
    gr_shm_day_give_back(&c->day, 2);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 101), 3);
}

/*
 * Tokens per day: admitted with the estimate after every other dimension,
 * all or nothing; settled with the tokens Google counted (less given
 * back, more counted at once); a new day starts at the tokens still in
 * flight; a spent day refuses what would fit every minute window.
 */
static void
test_tokens_per_day(void)
{
    struct gr_shm_grant g1, g2, g3;
    struct gr_shm_cell *c;
    int64_t act[GR_NWINDOWS] = {-1, 0, -1};

    reset_table();
    add_project(0, 100, 100000, 1000);
    c = gr_shm_cell(&tab, 0, 0);
    atomic_store(&c->limit[GR_D_TPD], gr_shm_limit_pack(1000));
    CU_ASSERT_FATAL(reserve(1, 600, T0, &g1) == 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20000), 600);
    /* 600 + 500 > 1000: refused, and nothing else stays admitted */
    CU_ASSERT_EQUAL(reserve(1, 500, T0, &g2), -EAGAIN);
    CU_ASSERT_EQUAL(used(0, GR_W_RPM, T0), 1);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0), 600);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 20000), 1);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20000), 600);
    /* the call used 450: the day keeps 450 */
    act[GR_W_TPM] = 450;
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g1.lease, g1.ticket, T0, act, T0),
                    0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20000), 450);
    CU_ASSERT_FATAL(reserve(1, 500, T0, &g2) == 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20000), 950);
    /* it used 540 (estimate 500): the 40 more are counted at once */
    act[GR_W_TPM] = 540;
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g2.lease, g2.ticket, T0, act, T0),
                    0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20000), 990);
    /* the day's tokens are spent: 11 fit every minute window, not TPD,
     * and room comes at the day's end */
    CU_ASSERT_EQUAL(reserve(1, 11, T0, &g3), -EAGAIN);
    {
        static uint64_t rng = 7;
        struct gr_shm_ask a = {.model = 0, .cost = {1, 11, 0}, .now_ns = T0,
                               .today = 20000, .day_end_ns = T0 + 3 * W_NS,
                               .pid = (uint32_t)getpid(), .rng = &rng};

        CU_ASSERT_EQUAL(gr_shm_reserve(&tab, &a, &g3), -EAGAIN);
        CU_ASSERT_EQUAL(g3.retry_at_ns, T0 + 3 * W_NS);
    }
    /* a request without tokens (only counted in requests) still goes */
    CU_ASSERT_FATAL(reserve(1, 0, T0, &g3) == 0);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g3.lease, g3.ticket, T0, NULL, T0),
                    0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20000), 990);
    /* Midnight: the next day has room again.  Then, with a call of 300
     * tokens in flight, the day after starts at them and counts the new
     * call. */
    CU_ASSERT_FATAL(reserve_on(20000, 1, 11, T0, &g1) == -EAGAIN);
    CU_ASSERT_FATAL(reserve_on(20001, 1, 300, T0, &g1) == 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20001), 300);
    CU_ASSERT_FATAL(reserve_on(20001, 1, 200, T0, &g2) == 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20001), 500);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g2.lease, g2.ticket, T0, NULL, T0),
                    0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20001), 500);
    atomic_store(&c->day, 0);
    atomic_store(&c->tday, 0);
    CU_ASSERT_FATAL(reserve_on(20002, 1, 100, T0, &g2) == 0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20002), 400);   /* 300 + 100 */
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g1.lease, g1.ticket, T0, NULL, T0),
                    0);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g2.lease, g2.ticket, T0, NULL, T0),
                    0);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->tday, 20002), 400);
    /* a cooldown on TPD (a 429 named it) refuses calls with tokens only */
    atomic_store(&c->cool_until[GR_D_TPD], T0 + W_NS);
    CU_ASSERT_EQUAL(reserve_on(20002, 1, 1, T0, &g1), -EAGAIN);
    CU_ASSERT_FATAL(reserve_on(20002, 1, 0, T0, &g1) == 0);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g1.lease, g1.ticket, T0, NULL, T0),
                    0);
    /* a TPD limit of 0: the model is not available with tokens */
    atomic_store(&c->cool_until[GR_D_TPD], 0);
    atomic_store(&c->limit[GR_D_TPD], 0);
    CU_ASSERT_EQUAL(reserve_on(20002, 1, 1, T0, &g1), -EAGAIN);
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, UINT32_MAX), 0);
}

/* Threads racing on one cell's tokens per day (one mapping; the CAS is
 * the same across processes): what they were granted, summed, is what the
 * day counts, and never more than its limit. */
#define TPD_THREADS 4
#define TPD_LIMIT 20000

struct tpd_arg {
    uint64_t rng;
    int64_t granted;            /* tokens of the grants it got */
};

static void *
tpd_worker(void *p)
{
    struct tpd_arg *ta = p;
    int misses = 0;

    while (misses < 200) {
        int64_t tok = 1 + (int64_t)(gr_shm_rand(&ta->rng) % 97);
        struct gr_shm_ask a = {.model = 0, .cost = {1, tok, 0}, .now_ns = T0,
                               .today = 20000, .pid = (uint32_t)getpid(),
                               .rng = &ta->rng};
        struct gr_shm_grant g;

        if (gr_shm_reserve(&tab, &a, &g) != 0) {
            misses++;
            continue;
        }
        ta->granted += tok;
        /* settled with the estimate: the day keeps it */
        gr_shm_settle(&tab, g.lease, g.ticket, T0, NULL, T0);
    }
    return NULL;
}

static void
test_tokens_per_day_threads(void)
{
    pthread_t th[TPD_THREADS];
    struct tpd_arg ta[TPD_THREADS];
    struct gr_shm_cell *c;
    int64_t sum = 0, used;
    int i;

    reset_table();
    add_project(0, 1000000, 1000000000, 1000000);
    c = gr_shm_cell(&tab, 0, 0);
    atomic_store(&c->limit[GR_D_TPD], gr_shm_limit_pack(TPD_LIMIT));
    for (i = 0; i < TPD_THREADS; i++) {
        ta[i].rng = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1);
        ta[i].granted = 0;
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, tpd_worker, &ta[i]) ==
                        0);
    }
    for (i = 0; i < TPD_THREADS; i++) {
        pthread_join(th[i], NULL);
        sum += ta[i].granted;
    }
    used = gr_shm_day_used(&c->tday, 20000);
    CU_ASSERT_EQUAL(used, sum);
    CU_ASSERT(used <= TPD_LIMIT);
    CU_ASSERT(used > TPD_LIMIT - 97);   /* full: nothing more would fit */
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, UINT32_MAX), 0);
}

/* The same with processes (the table is a shared mapping; each child
 * writes what it was granted into a shared page). */
static void
test_tokens_per_day_processes(void)
{
    int64_t *granted = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct gr_shm_cell *c;
    int64_t sum = 0, used;
    pid_t pid[TPD_THREADS];
    int i, st;

    CU_ASSERT_FATAL(granted != MAP_FAILED);
    reset_table();
    add_project(0, 1000000, 1000000000, 1000000);
    c = gr_shm_cell(&tab, 0, 0);
    atomic_store(&c->limit[GR_D_TPD], gr_shm_limit_pack(TPD_LIMIT));
    for (i = 0; i < TPD_THREADS; i++) {
        pid[i] = fork();
        CU_ASSERT_FATAL(pid[i] >= 0);
        if (pid[i] == 0) {
            struct tpd_arg ta = {0x51ed2701u * (uint64_t)(i + 3), 0};

            tpd_worker(&ta);
            granted[i] = ta.granted;
            _exit(0);
        }
    }
    for (i = 0; i < TPD_THREADS; i++) {
        CU_ASSERT(waitpid(pid[i], &st, 0) == pid[i] && WIFEXITED(st) &&
                  WEXITSTATUS(st) == 0);
        sum += granted[i];
    }
    used = gr_shm_day_used(&c->tday, 20000);
    CU_ASSERT_EQUAL(used, sum);
    CU_ASSERT(used <= TPD_LIMIT);
    CU_ASSERT(used > TPD_LIMIT - 97);
    munmap(granted, 4096);
}

static void
test_all_or_nothing(void)
{
    struct gr_shm_grant g;
    struct gr_shm_cell *c;

    reset_table();
    add_project(0, 10, 100, 1000);
    c = gr_shm_cell(&tab, 0, 0);
    CU_ASSERT_EQUAL(reserve(1, 60, T0, &g), 0);
    /* RPM has room, TPM does not: nothing may stay admitted. */
    CU_ASSERT_EQUAL(reserve(1, 60, T0, &g), -EAGAIN);
    CU_ASSERT_EQUAL(used(0, GR_W_RPM, T0), 1);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0), 60);
    CU_ASSERT_EQUAL(gr_shm_day_used(&c->day, 20000), 1);
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, UINT32_MAX), 1);
    CU_ASSERT(g.retry_at_ns == 0 || g.retry_at_ns > T0);
    /* The day spent: a request fitting every minute window is refused. */
    atomic_store(&c->limit[GR_D_RPD], 1);
    CU_ASSERT_EQUAL(reserve(1, 1, T0, &g), -EAGAIN);
    CU_ASSERT_EQUAL(used(0, GR_W_RPM, T0), 1);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0), 60);
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, UINT32_MAX), 1);
}

static void
test_settle_refund_and_twice(void)
{
    struct gr_shm_grant g;
    int64_t act[3] = {-1, 20, -1};

    reset_table();
    add_project(0, 10, 100, 1000);
    CU_ASSERT_FATAL(reserve(1, 60, T0, &g) == 0);
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g.lease, g.ticket, T0 + TICK, act,
                                  T0 + 2 * TICK), 0);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0 + 2 * TICK), 20);
    CU_ASSERT_EQUAL(used(0, GR_W_RPM, T0 + 2 * TICK), 1);
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, UINT32_MAX), 0);
    /* Settling again, or with a stale ticket, changes nothing. */
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g.lease, g.ticket, T0 + TICK, act,
                                  T0 + 2 * TICK), -ESTALE);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0 + 2 * TICK), 20);
    /* Released one window after the first byte, at a tick boundary. */
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0 + TICK + W_NS - 1), 20);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0 + TICK + W_NS), 0);
}

static void
test_reap_and_audit(void)
{
    struct gr_shm_grant g;
    struct gr_shm_cell *c;
    struct gr_shm_lease *l;
    uint64_t s;

    reset_table();
    add_project(0, 10, 100, 1000);
    c = gr_shm_cell(&tab, 0, 0);
    CU_ASSERT_FATAL(reserve(1, 30, T0, &g) == 0);
    l = gr_shm_lease(&tab, g.lease);
    /* The router reaps an ACTIVE lease as if its first byte came now. */
    s = atomic_load(&l->state);
    CU_ASSERT_FALSE(gr_shm_router_reap(&tab, g.lease, s, T0 + TICK));
    CU_ASSERT_EQUAL(gr_shm_lease_state(atomic_load(&l->state)),
                    GR_LEASE_FREE);
    CU_ASSERT_EQUAL(gr_shm_cell_in_flight(&tab, 0, UINT32_MAX), 0);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0 + TICK + W_NS - 1), 30);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0 + TICK + W_NS), 0);
    /* Its owner's late commit is refused. */
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g.lease, g.ticket, 0, NULL,
                                  T0 + 2 * TICK), -ESTALE);

    /* A client killed after an admission but before recording it leaves
     * a leak; reaping its INTENT lease marks the cell for an audit, and
     * the audit of the quiet cell gives back exactly the leak. */
    reset_table();
    add_project(0, 10, 100, 1000);
    c = gr_shm_cell(&tab, 0, 0);
    CU_ASSERT_EQUAL(gr_shm_window_admit(&tab, c, GR_W_TPM, 25, 100, T0),
                    0);
    l = gr_shm_lease(&tab, 3);
    l->cell = 0;
    atomic_store(&l->state, ((uint64_t)999999 << 32) | (7 << 8) |
                                GR_LEASE_INTENT);
    CU_ASSERT_EQUAL(gr_shm_router_audit(&tab, 0), -EBUSY);
    CU_ASSERT_TRUE(gr_shm_router_reap(&tab, 3, atomic_load(&l->state), T0));
    CU_ASSERT(atomic_load(&c->health) & GR_CELL_SUSPECT);
    CU_ASSERT_EQUAL(gr_shm_router_audit(&tab, 0), 25);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0), 0);
}

static void
test_audit_keeps_parked_releases(void)
{
    struct gr_shm_grant g;

    reset_table();
    add_project(0, 10, 100, 1000);
    CU_ASSERT_FATAL(reserve(1, 40, T0, &g) == 0);
    CU_ASSERT_EQUAL(gr_shm_router_audit(&tab, 0), -EBUSY);  /* in flight */
    CU_ASSERT_EQUAL(gr_shm_settle(&tab, g.lease, g.ticket, T0, NULL, T0), 0);
    /* Quiet, nothing leaked: what is parked stays counted. */
    CU_ASSERT_EQUAL(gr_shm_router_audit(&tab, 0), 0);
    CU_ASSERT_EQUAL(used(0, GR_W_TPM, T0), 40);
}

static void
test_generation_and_report(void)
{
    struct gr_shm_outcome o = {.cls = GR_OUT_QUOTA, .status = 429,
                               .dims = 1u << GR_D_TPM,
                               .cool_ns = 26 * INT64_C(1000000000),
                               .learned = {-1, 250000, -1, -1, -1},
                               .quota_id = "GenerateContentInputTokensPer"
                                           "ModelPerMinute-FreeTier"};
    struct gr_shm_cell *c;
    uint64_t rng = 7;
    uint32_t gen;
    char qid[64];

    reset_table();
    add_project(0, 10, 1000000, 1000);
    c = gr_shm_cell(&tab, 0, 0);
    gen = atomic_load(&tab.projects[0].generation);
    CU_ASSERT_EQUAL(gr_shm_report(&tab, 0, 0, gen + 1, &o, T0, &rng),
                    -ESTALE);
    CU_ASSERT_EQUAL(atomic_load(&c->cool_until[GR_D_TPM]), 0);
    CU_ASSERT_EQUAL(gr_shm_report(&tab, 0, 0, gen, &o, T0, &rng), 0);
    CU_ASSERT_EQUAL(atomic_load(&c->cool_until[GR_D_TPM]),
                    T0 + 26 * INT64_C(1000000000));
    CU_ASSERT_EQUAL(atomic_load(&c->learned[GR_D_TPM]), 250000);
    CU_ASSERT_EQUAL(gr_shm_cell_limit(c, GR_D_TPM), 250000);
    gr_shm_last_qid(c, qid, sizeof(qid));
    CU_ASSERT_STRING_EQUAL(qid,
                           "GenerateContentInputTokensPerModelPerMinute-Free"
                           "Tier");
    /* Cooling on TPM: a token-costing request goes nowhere. */
    {
        struct gr_shm_grant g;

        CU_ASSERT_EQUAL(reserve(1, 10, T0 + 1, &g), -EAGAIN);
        CU_ASSERT_EQUAL(g.retry_at_ns, T0 + 26 * INT64_C(1000000000));
    }
    /* Five server errors open the circuit. */
    o = (struct gr_shm_outcome){.cls = GR_OUT_SERVER, .status = 503,
                                .learned = {-1, -1, -1, -1, -1}};
    for (int i = 0; i < (int)GR_CIRCUIT_THRESHOLD; i++)
        gr_shm_report(&tab, 0, 0, gen, &o, T0, &rng);
    CU_ASSERT(atomic_load(&c->circuit_until) > T0);
    /* A learned limit of 0 disables the cell. */
    o = (struct gr_shm_outcome){.cls = GR_OUT_QUOTA, .status = 429,
                                .dims = 1u << GR_D_RPM,
                                .learned = {0, -1, -1, -1, -1}};
    gr_shm_report(&tab, 0, 0, gen, &o, T0, &rng);
    CU_ASSERT(atomic_load(&c->health) & GR_CELL_DISABLED_MODEL);
}

static void
test_scribbled_indices_are_skipped(void)
{
    struct gr_shm_grant g;

    reset_table();
    add_project(0, 10, 1000, 1000);
    atomic_store(&tab.choice[1], 999999);       /* out of range */
    atomic_store(&tab.hdr->n_choice, 1000000);  /* beyond the array */
    CU_ASSERT_EQUAL(reserve(1, 10, T0, &g), 0);
    CU_ASSERT_EQUAL(g.slot, 0);
    CU_ASSERT_PTR_NULL(gr_shm_cell(&tab, 999999, 0));
    CU_ASSERT_PTR_NULL(gr_shm_lease(&tab, tab.max_leases));
    CU_ASSERT_FALSE(gr_shm_router_reap(&tab, tab.max_leases, 2, T0));
    gr_shm_settle(&tab, g.lease, g.ticket, T0, NULL, T0);
}

static void
test_half_open_lets_one_probe_through(void)
{
    struct gr_shm_outcome ok = {.cls = GR_OUT_OK, .status = 200,
                                .learned = {-1, -1, -1, -1, -1}};
    struct gr_shm_grant g1, g2;
    struct gr_shm_cell *c;
    uint64_t rng = 3;

    reset_table();
    add_project(0, 10, 1000, 1000);
    c = gr_shm_cell(&tab, 0, 0);
    atomic_store(&c->circuit_until, T0 - 1);    /* open time has passed */
    CU_ASSERT_EQUAL(reserve(1, 10, T0, &g1), 0);    /* the probe */
    CU_ASSERT(atomic_load(&c->health) & GR_CELL_PROBE_TAKEN);
    CU_ASSERT_EQUAL(reserve(1, 10, T0, &g2), -EAGAIN);  /* only one */
    CU_ASSERT_EQUAL(reserve(1, 10, T0 + 1, &g2), -EAGAIN);
    gr_shm_settle(&tab, g1.lease, g1.ticket, T0, NULL, T0);
    gr_shm_report(&tab, 0, 0, g1.project_gen, &ok, T0, &rng);
    CU_ASSERT_EQUAL(atomic_load(&c->circuit_until), 0);
    CU_ASSERT_EQUAL(reserve(1, 10, T0, &g2), 0);
    gr_shm_settle(&tab, g2.lease, g2.ticket, T0, NULL, T0);
    /* A prober that finds no room gives the probe back. */
    atomic_store(&c->circuit_until, T0 - 1);
    CU_ASSERT_EQUAL(reserve(1, 5000, T0, &g1), -EAGAIN);
    CU_ASSERT_EQUAL(atomic_load(&c->circuit_until), T0 - 1);
    CU_ASSERT_EQUAL(reserve(1, 10, T0, &g1), 0);
    gr_shm_settle(&tab, g1.lease, g1.ticket, T0, NULL, T0);
}

static void
test_keys_out_of_core_dumps(void)
{
    /* The kernel marks MADV_DONTDUMP mappings with "dd" in smaps. */
    unsigned long lo, hi, keys = (unsigned long)(uintptr_t)tab.keys;
    char line[512];
    bool in_keys = false, found = false;
    FILE *f = fopen("/proc/self/smaps", "r");

    CU_ASSERT_FATAL(f != NULL);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') &&
            strchr(line, ' ') > strchr(line, '-'))
            in_keys = lo <= keys && keys < hi;
        if (in_keys && strncmp(line, "VmFlags:", 8) == 0) {
            found = strstr(line, " dd") != NULL;
            break;
        }
    }
    fclose(f);
    CU_ASSERT_TRUE(found);
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"geometry and layout", test_geometry},
        {"ring order: by size, no overlap", test_ring_layout},
        {"attach refuses magic, ABI, size", test_attach_checks},
        {"two mappings, one table", test_two_mappings},
        {"window release timing", test_window_release_timing},
        {"many ticks, refunds, forced", test_window_many_ticks_and_refund},
        {"stranded release is given back",
         test_stranded_release_is_given_back},
        {"new window in the upper half of the tick period",
         test_new_window_in_the_upper_half_of_the_tick_period},
        {"client drains elapsed ticks, router the ring",
         test_client_drain_leaves_stranded_to_router},
        {"day roll counts in-flight", test_day_roll_counts_in_flight},
        {"tokens per day", test_tokens_per_day},
        {"tokens per day, threads racing", test_tokens_per_day_threads},
        {"tokens per day, processes racing",
         test_tokens_per_day_processes},
        {"day roll counts the leases in flight",
         test_day_roll_counts_leases_in_flight},
        {"all-or-nothing admission", test_all_or_nothing},
        {"settle: refund, twice", test_settle_refund_and_twice},
        {"reap and audit", test_reap_and_audit},
        {"audit keeps parked releases", test_audit_keeps_parked_releases},
        {"generation and reports", test_generation_and_report},
        {"scribbled indices skipped", test_scribbled_indices_are_skipped},
        {"keys kept out of core dumps", test_keys_out_of_core_dumps},
        {"half-open lets one probe through",
         test_half_open_lets_one_probe_through},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"shm", setup, teardown, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };

    return gr_test_main("test_shm", suites, 60);
}
