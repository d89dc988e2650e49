/*
 * control.c - the operator's commands:
 *
 *   gemroute reload [--timeout SECONDS]
 *   gemroute drain|enable|disable PROJECT[/MODEL]
 *   gemroute reset PROJECT[/MODEL] [--dim rpm|tpm|rpd|ipm]
 *
 * reload signals the router named in the table's header and waits for the
 * outcome the router records there.  The others write health words of
 * the table: this is the one place outside the router and the client
 * library that writes the segment, and it writes only operator state
 * (GR_PROJ_OP_*, GR_CELL_OP_*), the flags an operator may override
 * (GR_PROJ_AUTH_FAILED, GR_CELL_DISABLED_MODEL), and cooldowns, circuit
 * and learned limits.  Never a window or a day count: those are what
 * Google has counted, and forgetting them would over-admit.
 *
 * Invariant protected: every write is one atomic word, like the clients'
 * own health writes (health is advice read with relaxed loads; the
 * admission CAS decides), and apply.c never touches these words, so the
 * operator state survives reloads.  A write that raced with the slot
 * changing hands (its generation moved) is reported, not hidden.
 */
#include "cli.h"
#include "clock.h"
#include "health.h"
#include "reserve.h"
#include "seqlock.h"
#include "snapshot.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_NS (INT64_C(10) * 1000000)

static const char *dim_names[GR_NDIM] = {"rpm", "tpm", "rpd", "ipm"};

/* ---- reload ---------------------------------------------------------- */

static void
read_text(const struct gr_shm *t, char *err, char *path)
{
    struct gr_shm_header *h = t->hdr;
    int tries;

    err[0] = path[0] = '\0';
    for (tries = 0; tries < GR_SEQ_TRIES; tries++) {
        uint32_t q = gr_shm_seq_read_begin(&h->text_seq);

        gr_shm_seq_copy_out(err, h->last_reload_error, GR_SHM_ERR_MAX);
        gr_shm_seq_copy_out(path, h->config_path, GR_SHM_URL_MAX);
        if (gr_shm_seq_read_ok(&h->text_seq, q))
            break;
    }
    err[GR_SHM_ERR_MAX - 1] = '\0';
    path[GR_SHM_URL_MAX - 1] = '\0';
}

static const char reload_usage[] =
    "usage: gemroute reload [--shm NAME] [--timeout SECONDS]\n"
    "  Ask the router to reload its config (SIGHUP) and wait for the\n"
    "  outcome: exit 0 when applied, 2 when refused (the running config\n"
    "  stays; the first error is printed) or when no answer came.\n";

int
gr_cli_reload(int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = gr_cli_take_shm(&argc, argv);
    char err[256], rerr[GR_SHM_ERR_MAX], path[GR_SHM_URL_MAX];
    double timeout_s = 10;
    struct gr_shm t;
    uint64_t gen0;
    uint32_t failed0;
    int64_t pid, deadline;
    char *end;
    int c, rc = 2;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            timeout_s = strtod(optarg, &end);
            if (*end != '\0' || !(timeout_s > 0 && timeout_s <= 3600)) {
                fprintf(stderr, "gemroute reload: bad --timeout '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            fputs(reload_usage, stdout);
            return 0;
        default:
            fputs(reload_usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fputs(reload_usage, stderr);
        return 2;
    }
    if (gr_shm_attach(name, false, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    /* acquire: pairs with the router's release of its pid at start */
    pid = atomic_load_explicit(&t.hdr->router_pid, memory_order_acquire);
    if (!gr_shm_router_alive(&t)) {
        fprintf(stderr, "gemroute reload: no router is running for %s\n",
                t.name);
        goto out;
    }
    /* acquire: pairs with the release of each in apply.c and main.c, so
     * a change seen later is a reload that ended after this point */
    gen0 = atomic_load_explicit(&t.hdr->config_generation,
                                memory_order_acquire);
    failed0 = atomic_load_explicit(&t.hdr->reloads_failed,
                                   memory_order_acquire);
    if (kill((pid_t)pid, SIGHUP) != 0) {
        fprintf(stderr, "gemroute reload: kill(%lld, SIGHUP): %s%s\n",
                (long long)pid, strerror(errno), errno == EPERM ?
                " (run it as the router's user)" : "");
        goto out;
    }
    deadline = gr_shm_now_mono() + (int64_t)(timeout_s * 1e9);
    while (gr_shm_now_mono() < deadline) {
        struct timespec ts = {0, POLL_NS};
        /* acquire: as above */
        uint32_t failed = atomic_load_explicit(&t.hdr->reloads_failed,
                                               memory_order_acquire);
        uint64_t gen = atomic_load_explicit(&t.hdr->config_generation,
                                            memory_order_acquire);

        if (failed != failed0) {
            read_text(&t, rerr, path);
            printf("reload refused; the running config stays "
                   "(generation %llu)\n  %s\n", (unsigned long long)gen,
                   rerr[0] ? rerr : "(no message)");
            goto out;
        }
        if (gen != gen0) {
            read_text(&t, rerr, path);
            printf("reloaded %s: config generation %llu\n", path,
                   (unsigned long long)gen);
            rc = 0;
            goto out;
        }
        if (!gr_shm_router_alive(&t)) {
            fprintf(stderr, "gemroute reload: the router (pid %lld) "
                    "exited\n", (long long)pid);
            goto out;
        }
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "gemroute reload: no answer from the router (pid %lld) "
            "within %.1f s\n", (long long)pid, timeout_s);
out:
    gr_shm_detach(&t);
    return rc;
}

/* ---- drain, enable, disable, reset ------------------------------------ */

enum action { ACT_DRAIN, ACT_ENABLE, ACT_DISABLE, ACT_RESET };

struct target {
    struct gr_shm t;
    uint32_t slot;
    uint32_t generation;            /* when the name was checked */
    int model;                      /* -1: every model of the project */
    char project[GR_SHM_NAME_MAX];
    char model_name[GR_SHM_NAME_MAX];
};

/* Find the slot holding project name (active or draining). */
static int
find_slot(const struct gr_shm *t, const char *name, uint32_t *gen)
{
    uint32_t i;

    for (i = 0; i < t->max_projects; i++) {
        struct gr_shm_project *p = &t->projects[i];
        char cur[GR_SHM_NAME_MAX];
        int tries;
        /* acquire: pairs with the router's release when it (re)uses the
         * slot, so the name read below is at least that new */
        uint32_t g = atomic_load_explicit(&p->generation,
                                          memory_order_acquire);
        uint32_t st = atomic_load_explicit(&p->state, memory_order_acquire);

        if (st != GR_PROJ_ACTIVE && st != GR_PROJ_REMOVING)
            continue;
        for (tries = 0; tries < GR_SEQ_TRIES; tries++) {
            uint32_t q = gr_shm_seq_read_begin(&p->seq);

            gr_shm_seq_copy_out(cur, p->name, sizeof(cur));
            if (gr_shm_seq_read_ok(&p->seq, q))
                break;
        }
        cur[GR_SHM_NAME_MAX - 1] = '\0';
        if (tries < GR_SEQ_TRIES && strcmp(cur, name) == 0) {
            *gen = g;
            return (int)i;
        }
    }
    return -1;
}

static int
open_target(const char *shm, const char *spec, struct target *x)
{
    const char *slash = strchr(spec, '/');
    char err[256];
    int slot;

    memset(x, 0, sizeof(*x));
    x->model = -1;
    snprintf(x->project, sizeof(x->project), "%.*s",
             slash ? (int)(slash - spec) : (int)strlen(spec), spec);
    if (slash != NULL)
        snprintf(x->model_name, sizeof(x->model_name), "%s", slash + 1);
    if (x->project[0] == '\0' || (slash != NULL && x->model_name[0] == '\0')) {
        fprintf(stderr, "gemroute: '%s' is not PROJECT or PROJECT/MODEL\n",
                spec);
        return 2;
    }
    if (gr_shm_attach(shm, true, &x->t, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    slot = find_slot(&x->t, x->project, &x->generation);
    if (slot < 0) {
        fprintf(stderr, "gemroute: no project '%s' in %s\n", x->project,
                x->t.name);
        gr_shm_detach(&x->t);
        return 1;
    }
    x->slot = (uint32_t)slot;
    if (slash != NULL) {
        x->model = gr_shm_model_index(&x->t, x->model_name);
        if (x->model < 0) {
            fprintf(stderr, "gemroute: no model '%s' in %s\n", x->model_name,
                    x->t.name);
            gr_shm_detach(&x->t);
            return 1;
        }
    }
    return 0;
}

/* The generation moved while we wrote: our words may have landed on the
 * project that took the slot. */
static int
close_target(struct target *x)
{
    /* acquire: pairs with the router's release when it frees the slot */
    uint32_t g = atomic_load_explicit(&x->t.projects[x->slot].generation,
                                      memory_order_acquire);
    int rc = 0;

    if (g != x->generation) {
        fprintf(stderr, "gemroute: project '%s' left its slot while this "
                "ran; check `gemroute status`\n", x->project);
        rc = 1;
    }
    gr_shm_detach(&x->t);
    return rc;
}

static void
set_bits(_Atomic uint32_t *w, uint32_t set, uint32_t clear)
{
    /* relaxed: health is advice, read relaxed by the chooser; setting
     * first and clearing second never shows a moment with neither */
    if (set)
        atomic_fetch_or_explicit(w, set, memory_order_relaxed);
    if (clear)
        atomic_fetch_and_explicit(w, ~clear, memory_order_relaxed);
}

static void
clear_learned_zero(const struct gr_shm *t, struct gr_shm_cell *c)
{
    unsigned d;

    for (d = 0; d < GR_NDIM; d++) {
        int64_t zero = 0;

        /* relaxed: advice; only a learned 0 (which disabled the cell)
         * is cleared, a racing report's new value is kept */
        if (atomic_compare_exchange_strong_explicit(
                &c->learned[d], &zero, -1, memory_order_relaxed,
                memory_order_relaxed))
            gr_shm_set_learned(t, c, d, -1);    /* and its cap */
    }
}

static void
reset_cell(const struct gr_shm *t, struct gr_shm_cell *c, int dim)
{
    unsigned d;

    for (d = 0; d < GR_NDIM; d++) {
        if (dim >= 0 && (unsigned)dim != d)
            continue;
        /* relaxed for all: advice (see set_bits) */
        atomic_store_explicit(&c->cool_until[d], 0, memory_order_relaxed);
        __atomic_store_n(&c->cool_src[d], 0, __ATOMIC_RELAXED);
        gr_shm_set_learned(t, c, d, -1);
    }
    if (dim >= 0)
        return;
    /* relaxed for all: advice; the whole-cell backoff and the circuit */
    atomic_store_explicit(&c->cell_cool_until, 0, memory_order_relaxed);
    atomic_store_explicit(&c->backoff_level, 0, memory_order_relaxed);
    atomic_store_explicit(&c->circuit_until, 0, memory_order_relaxed);
    atomic_store_explicit(&c->failures, 0, memory_order_relaxed);
    atomic_store_explicit(&c->open_count, 0, memory_order_relaxed);
    atomic_fetch_and_explicit(&c->health, ~GR_CELL_PROBE_TAKEN,
                              memory_order_relaxed);
}

static int64_t
in_flight(const struct target *x)
{
    int64_t n = 0;
    uint32_t m;

    for (m = 0; m < x->t.max_models; m++) {
        if (x->model >= 0 && (uint32_t)x->model != m)
            continue;
        n += gr_shm_cell_in_flight(&x->t, x->slot * x->t.max_models + m,
                                   UINT32_MAX);
    }
    return n;
}

static void
act(struct target *x, enum action a, int dim)
{
    struct gr_shm_project *p = &x->t.projects[x->slot];
    uint32_t m;
    bool disabled_left = false;

    if (x->model < 0) {
        if (a == ACT_DRAIN)
            set_bits(&p->health, GR_PROJ_OP_DRAINING, GR_PROJ_OP_DISABLED);
        else if (a == ACT_DISABLE)
            set_bits(&p->health, GR_PROJ_OP_DISABLED, GR_PROJ_OP_DRAINING);
        else if (a == ACT_ENABLE)
            set_bits(&p->health, 0, GR_PROJ_OP_DISABLED |
                     GR_PROJ_OP_DRAINING | GR_PROJ_AUTH_FAILED);
    }
    for (m = 0; m < x->t.max_models; m++) {
        struct gr_shm_cell *c = gr_shm_cell(&x->t, x->slot, m);

        if (x->model >= 0 && (uint32_t)x->model != m)
            continue;
        if (a == ACT_RESET) {
            reset_cell(&x->t, c, dim);
            /* relaxed: a hint for the message */
            disabled_left |= atomic_load_explicit(&c->health,
                                                  memory_order_relaxed) &
                             GR_CELL_DISABLED_MODEL;
        } else if (a == ACT_ENABLE) {
            /* A project enabled as a whole is enabled on every model. */
            set_bits(&c->health, 0, GR_CELL_OP_DISABLED |
                     GR_CELL_OP_DRAINING | GR_CELL_DISABLED_MODEL);
            clear_learned_zero(&x->t, c);
        } else if (x->model >= 0 && a == ACT_DRAIN) {
            set_bits(&c->health, GR_CELL_OP_DRAINING, GR_CELL_OP_DISABLED);
        } else if (x->model >= 0 && a == ACT_DISABLE) {
            set_bits(&c->health, GR_CELL_OP_DISABLED, GR_CELL_OP_DRAINING);
        }
    }
    if (a == ACT_RESET && disabled_left)
        printf("note: disabled (model not found or no quota) stays; "
               "`gemroute enable %s%s%s` lifts it\n", x->project,
               x->model >= 0 ? "/" : "", x->model_name);
    if (a == ACT_ENABLE && x->model >= 0 &&
        /* relaxed: a hint for the message */
        (atomic_load_explicit(&p->health, memory_order_relaxed) &
         (GR_PROJ_OP_DISABLED | GR_PROJ_OP_DRAINING | GR_PROJ_AUTH_FAILED)))
        printf("note: project %s itself is still out of rotation; "
               "`gemroute enable %s` lifts it\n", x->project, x->project);
}

static const char control_usage[] =
    "usage: gemroute drain|enable|disable [--shm NAME] PROJECT[/MODEL]\n"
    "       gemroute reset [--shm NAME] PROJECT[/MODEL] [--dim DIM]\n"
    "  drain    no new calls; calls in flight finish\n"
    "  disable  no new calls (marked disabled)\n"
    "  enable   undo drain and disable; also lift a rejected key or a\n"
    "           disabled model (operator override)\n"
    "  reset    clear cooldowns, learned limits and the circuit (of DIM\n"
    "           only: rpm, tpm, rpd or ipm); counts are never touched\n"
    "  The state is kept in the table: it shows in status at once and\n"
    "  survives reloads.\n";

static int
control(int argc, char **argv, enum action a)
{
    static const struct option opts[] = {
        {"dim", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *shm = gr_cli_take_shm(&argc, argv);
    struct target x;
    int c, dim = -1, rc;
    unsigned d;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            for (d = 0; d < GR_NDIM && strcmp(optarg, dim_names[d]); d++)
                ;
            if (d == GR_NDIM || a != ACT_RESET) {
                fprintf(stderr, "gemroute %s: --dim is rpm, tpm, rpd or "
                        "ipm, and for reset only\n", argv[0]);
                return 2;
            }
            dim = (int)d;
            break;
        case 'h':
            fputs(control_usage, stdout);
            return 0;
        default:
            fputs(control_usage, stderr);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fputs(control_usage, stderr);
        return 2;
    }
    rc = open_target(shm, argv[optind], &x);
    if (rc != 0)
        return rc;
    act(&x, a, dim);
    printf("%s%s%s%s%s: ", x.project, x.model >= 0 ? "/" : "", x.model_name,
           dim >= 0 ? " " : "", dim >= 0 ? dim_names[dim] : "");
    if (a == ACT_DRAIN || a == ACT_DISABLE)
        printf("%s: no new calls; %lld in flight finish\n",
               a == ACT_DRAIN ? "draining" : "disabled",
               (long long)in_flight(&x));
    else
        puts(a == ACT_ENABLE ? "enabled" : "reset");
    return close_target(&x);
}

int
gr_cli_drain(int argc, char **argv)
{
    return control(argc, argv, ACT_DRAIN);
}

int
gr_cli_enable(int argc, char **argv)
{
    return control(argc, argv, ACT_ENABLE);
}

int
gr_cli_disable(int argc, char **argv)
{
    return control(argc, argv, ACT_DISABLE);
}

int
gr_cli_reset(int argc, char **argv)
{
    return control(argc, argv, ACT_RESET);
}
