/*
 * fuzz_settle.c - libFuzzer harness for the accounting of a lease:
 * reserve, settle and charge with any usage numbers an answer may claim
 * (negative, zero, 2^32, 2^40 + 100, INT64_MAX...), reaps, time jumps,
 * and random bytes written over the segment followed by the router's
 * repair (router/repair.c).  Built and run by tools/fuzz.sh.
 *
 * The input is a program: its first byte picks the mode, the rest is a
 * list of operations.  Every input starts from the same table (a copy
 * kept after the router applied its config).
 *
 *  even mode: a well-behaved table.  After every step, every window
 *    counts at least the cost of the leases still open on it (a release
 *    never takes out what others hold: docs/ADMISSION.md), and at the
 *    end, with every lease settled and two windows passed, every window
 *    is back to exactly 0 (nothing pinned, nothing released twice).
 *  odd mode: the same, plus random bytes over random parts of the
 *    segment and the router's repair; only "no crash, no undefined
 *    behaviour" is asserted (the build has ASan and UBSan).
 */
#include "config.h"
#include "reserve.h"
#include "router.h"
#include "window.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The router's log, silent here (tools/fuzz.sh leaves router/log.c
 * out): the harness makes the router repair something on most runs. */
void
gr_rtr_log(const char *fmt, ...)
{
    (void)fmt;
}

#define MAX_GRANTS 16
#define SWEEP_TICKS 20      /* the router sweeps each cell this often */

static struct gr_rtr rtr;
static unsigned char *pristine;
static int64_t t0;

static const char *conf =
    "router = { shm = \"%s\"; max_projects = 2; max_models = 2; "
    "max_leases = 16; window_ms = 60000; headroom = 0.95; "
    "batch_calls = 8; };\n"
    "models = ( { name = \"a\"; rpm = 1000; tpm = 1000000; ipm = 100; "
    "rpd = 100000; },\n"
    "           { name = \"b\"; rpm = 9223372036854775807L; "
    "tpm = 5000000000L; } );\n"
    "projects = ( { name = \"p\"; key = \"fuzz-key-value-0001\"; },\n"
    "             { name = \"q\"; key = \"fuzz-key-value-0002\";\n"
    "               limits = ( { model = \"a\"; tpm = 1; } ); } );\n";

/* Make the table once; keep a copy to start every input from. */
static void
init(void)
{
    char dir[] = "/tmp/grfuzzsettle.XXXXXX", path[64], shm[64];
    char err[512] = "";
    struct gr_cfg_errors errs = {0};
    struct gr_cfg *cfg = NULL;
    FILE *f;

    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(path, sizeof(path), "%s/r.conf", dir);
    snprintf(shm, sizeof(shm), "/grfuzz-settle-%d", (int)getpid());
    f = fopen(path, "w");
    if (f == NULL)
        abort();
    fprintf(f, conf, shm);
    fclose(f);
    shm_unlink(shm);
    if (gr_cfg_load(path, &cfg, &errs) != 0 ||
        gr_rtr_open_segment(&rtr, cfg, err, sizeof(err)) != 0 ||
        gr_rtr_apply(&rtr, cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_settle: cannot make the table: %s\n",
                errs.n > 0 ? errs.lines[0] : err);
        abort();
    }
    /* The mapping is all we use: no name left behind when we stop. */
    shm_unlink(shm);
    unlink(path);
    rmdir(dir);
    gr_cfg_errors_free(&errs);
    rtr.cfg = cfg;
    pristine = malloc(rtr.t.size);
    if (pristine == NULL)
        abort();
    memcpy(pristine, rtr.t.base, rtr.t.size);
    t0 = (int64_t)1000 * rtr.t.window_ns;
}

/* The input, read a few bytes at a time; zeros once it is spent. */
struct prog {
    const uint8_t *p;
    size_t n;
};

static uint64_t
take(struct prog *in, unsigned bytes)
{
    uint64_t v = 0;

    while (bytes-- > 0) {
        v = v << 8 | (in->n > 0 ? *in->p : 0);
        if (in->n > 0) {
            in->p++;
            in->n--;
        }
    }
    return v;
}

/* A number an answer may claim: the edges first, else any 64 bits. */
static int64_t
usage(struct prog *in)
{
    static const int64_t edge[] = {
        -1, 0, 1, 100, 500000, 950000, INT32_MAX,
        INT64_C(4294967294), INT64_C(4294967295), INT64_C(4294967296),
        INT64_C(5000000000), INT64_C(1099511627775),
        INT64_C(1099511627776), INT64_C(1099511627876), INT64_MAX,
        INT64_MIN,
    };
    unsigned k = (unsigned)take(in, 1);

    if (k < 2 * sizeof(edge) / sizeof(edge[0]))
        return edge[k / 2];
    if (k < 200)
        return (int64_t)take(in, 2);
    return (int64_t)take(in, 8);
}

struct grant {
    uint32_t lease;
    uint64_t ticket;
};

/* Every window counts at least what the leases still open hold on it. */
static void
check_open_leases_counted(int64_t now)
{
    uint32_t n_cells = rtr.t.max_projects * rtr.t.max_models, i, c;
    unsigned w;

    for (c = 0; c < n_cells; c++) {
        for (w = 0; w < GR_NWINDOWS; w++) {
            int64_t open = 0;

            for (i = 0; i < rtr.t.max_leases; i++) {
                struct gr_shm_lease *l = &rtr.t.leases[i];

                if (gr_shm_lease_state(atomic_load(&l->state)) ==
                        GR_LEASE_ACTIVE &&
                    l->cell == c &&
                    (atomic_load(&l->held) & GR_HELD_WINDOW(w)))
                    open += l->cost[w];
            }
            if (gr_shm_window_used(&rtr.t, gr_shm_cell_at(&rtr.t, c), w,
                                   now) < open) {
                fprintf(stderr, "cell %u window %u counts %lld < %lld "
                        "held by open leases\n", c, w,
                        (long long)gr_shm_window_used(
                            &rtr.t, gr_shm_cell_at(&rtr.t, c), w, now),
                        (long long)open);
                abort();
            }
        }
    }
}

static void
sweep_all(int64_t now)
{
    uint32_t n_cells = rtr.t.max_projects * rtr.t.max_models, c;
    unsigned w;

    for (c = 0; c < n_cells; c++)
        for (w = 0; w < GR_NWINDOWS; w++)
            gr_shm_window_drain(&rtr.t, gr_shm_cell_at(&rtr.t, c), w, now,
                                true);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct prog in = {data, size};
    struct grant g[MAX_GRANTS];
    unsigned n = 0, steps = 0, i, w;
    uint64_t rng = 0x9e3779b97f4a7c15u;
    int64_t now, swept;
    bool hostile;

    if (pristine == NULL)
        init();
    memcpy(rtr.t.base, pristine, rtr.t.size);
    now = swept = t0;
    hostile = (take(&in, 1) & 1) != 0;
    while (in.n > 0 && steps++ < 256) {
        unsigned op = (unsigned)take(&in, 1) % (hostile ? 8 : 6);

        switch (op) {
        case 0: {       /* reserve */
            struct gr_shm_ask a = {.now_ns = now, .today = 20000,
                                   .pid = (uint32_t)getpid(), .rng = &rng};
            struct gr_shm_grant gt;

            /* one take per statement: the order is the input's */
            a.model = (uint32_t)take(&in, 1) % 3;
            a.lease_hint = (uint32_t)take(&in, 1);
            a.batch = (uint32_t)take(&in, 1) % 10;
            a.cost[GR_W_RPM] = (int64_t)(take(&in, 1) % 3);
            a.cost[GR_W_TPM] = (int64_t)take(&in, 3);
            a.cost[GR_W_IPM] = (int64_t)(take(&in, 1) % 4);
            if (gr_shm_reserve(&rtr.t, &a, &gt) != 0)
                break;
            if (n == MAX_GRANTS)    /* no room to keep it: settle now */
                (void)gr_shm_settle(&rtr.t, gt.lease, gt.ticket, now, NULL,
                                    now);
            else
                g[n++] = (struct grant){gt.lease, gt.ticket};
            break;
        }
        case 1:         /* settle with what an answer claims */
            if (n > 0) {
                int64_t act[GR_NWINDOWS], fb;

                i = (unsigned)take(&in, 1) % n;
                for (w = 0; w < GR_NWINDOWS; w++)
                    act[w] = usage(&in);
                fb = now - (int64_t)take(&in, 2) * 1000000;
                (void)gr_shm_settle(&rtr.t, g[i].lease, g[i].ticket, fb, act,
                                    now);
                g[i] = g[--n];
            }
            break;
        case 2:         /* a batch call's overrun */
            if (n > 0) {
                i = (unsigned)take(&in, 1) % n;
                w = (unsigned)take(&in, 1) % (GR_NWINDOWS + 1);
                (void)gr_shm_charge(&rtr.t, g[i].lease, g[i].ticket, w,
                                    usage(&in));
            }
            break;
        case 3:         /* time passes; the router sweeps as it would */
            now += (int64_t)take(&in, 2) * (rtr.t.tick_ns / 16);
            if (now - swept >= SWEEP_TICKS * rtr.t.tick_ns) {
                sweep_all(now);
                swept = now;
            }
            break;
        case 4:         /* the router reaps a lease (owner died) */
            if (n > 0) {
                i = (unsigned)take(&in, 1) % n;
                (void)gr_shm_router_reap(&rtr.t, g[i].lease, g[i].ticket,
                                         now);
                g[i] = g[--n];
            }
            break;
        case 5:         /* the router's whole-ring sweep now */
            sweep_all(now);
            swept = now;
            break;
        case 6: {       /* random bytes over the segment */
            size_t off = (size_t)(take(&in, 4) % rtr.t.size);
            size_t len = (size_t)(take(&in, 1) % 16) + 1;

            for (size_t k = 0; k < len && off + k < rtr.t.size; k++)
                rtr.t.base[off + k] = (unsigned char)take(&in, 1);
            break;
        }
        default:        /* the router repairs what it owns */
            (void)gr_rtr_repair(&rtr);
            break;
        }
        if (!hostile)
            check_open_leases_counted(now);
    }
    /* Every lease settled, two windows later: every window is empty. */
    for (i = 0; i < n; i++)
        (void)gr_shm_settle(&rtr.t, g[i].lease, g[i].ticket, now, NULL, now);
    if (hostile) {
        (void)gr_rtr_repair(&rtr);
        return 0;
    }
    now += 2 * rtr.t.window_ns + 4 * rtr.t.tick_ns;
    sweep_all(now);
    for (uint32_t c = 0; c < rtr.t.max_projects * rtr.t.max_models; c++)
        for (w = 0; w < GR_NWINDOWS; w++)
            if (gr_shm_word_used(atomic_load(
                    &gr_shm_cell_at(&rtr.t, c)->word[w])) != 0) {
                fprintf(stderr, "cell %u window %u still counts %llu\n", c,
                        w, (unsigned long long)gr_shm_word_used(atomic_load(
                               &gr_shm_cell_at(&rtr.t, c)->word[w])));
                abort();
            }
    return 0;
}
