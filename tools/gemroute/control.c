/*
 * control.c - the operator's commands:
 *
 *   gemroute reload [--timeout SECONDS]
 *   gemroute drain|enable|disable PROJECT[/MODEL]
 *   gemroute reset PROJECT[/MODEL] [--dim rpm|tpm|rpd|ipm|tpd]
 *
 * None of them writes the table: the router is the only writer of
 * operator state.  reload signals the router named in the table's header
 * and waits for the outcome the router records there (read through the
 * snapshot API).  The others send one line to the router's control
 * socket (router/control.c; its path is published in the header) and
 * print its answer: "note ..." lines, then "ok ..." (exit 0) or
 * "error ..." (exit 1), through gr_ctl_send() (client/ctl.c), which the
 * gateway's dashboard uses too.  The router answers after the change is
 * applied.
 *
 * Exit status: 0 done, 1 failed (no such project or model, no router,
 * refused), 2 bad usage (and, for reload, refused or unanswered).
 */
#include "cli.h"
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

static const char *dim_names[GR_NDIMS] = {"rpm", "tpm", "rpd", "ipm", "tpd"};

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- reload ---------------------------------------------------------- */

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
    struct gr_stat_router r0, r;
    char err[256];
    double timeout_s = 10;
    struct gr_stat *st;
    int64_t deadline;
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
    st = gr_stat_open(name, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    /* The generation and the failure count before the signal: a change
     * seen later is a reload that ended after this point. */
    gr_stat_router(st, &r0);
    if (!r0.alive) {
        fprintf(stderr, "gemroute reload: no router is running for %s\n",
                gr_stat_name(st));
        goto out;
    }
    if (kill((pid_t)r0.pid, SIGHUP) != 0) {
        fprintf(stderr, "gemroute reload: kill(%lld, SIGHUP): %s%s\n",
                (long long)r0.pid, strerror(errno), errno == EPERM ?
                " (run it as the router's user)" : "");
        goto out;
    }
    deadline = now_ns() + (int64_t)(timeout_s * 1e9);
    while (now_ns() < deadline) {
        struct timespec ts = {0, POLL_NS};

        gr_stat_router(st, &r);
        if (r.reloads_failed != r0.reloads_failed) {
            printf("reload refused; the running config stays "
                   "(generation %llu)\n  %s\n",
                   (unsigned long long)r.config_generation,
                   !r.text_ok ? "(torn/unavailable)" :
                   r.last_reload_error[0] ? r.last_reload_error :
                   "(no message)");
            goto out;
        }
        if (r.config_generation != r0.config_generation) {
            printf("reloaded %s: config generation %llu\n",
                   r.text_ok ? r.config_path : "(torn/unavailable)",
                   (unsigned long long)r.config_generation);
            rc = 0;
            goto out;
        }
        if (!r.alive) {
            fprintf(stderr, "gemroute reload: the router (pid %lld) "
                    "exited\n", (long long)r0.pid);
            goto out;
        }
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "gemroute reload: no answer from the router (pid %lld) "
            "within %.1f s\n", (long long)r0.pid, timeout_s);
out:
    gr_stat_close(st);
    return rc;
}

/* ---- drain, enable, disable, reset ------------------------------------ */

enum action { ACT_DRAIN, ACT_ENABLE, ACT_DISABLE, ACT_RESET };

static const char *act_names[] = {"drain", "enable", "disable", "reset"};

/* Send one request through gr_ctl_send() (client/ctl.c, the one
 * implementation of the protocol); print the answer.  0, or 1 (refused,
 * or no answer). */
static int
ask(const char *shm, const char *request)
{
    struct gr_ctl_answer a;

    gr_ctl_send(shm, request, NULL, &a);
    fputs(a.notes, stdout);
    if (a.status == 0) {
        puts(a.text);
        return 0;
    }
    fprintf(stderr, "%s%s\n", a.status == 1 ? "gemroute: " : "", a.text);
    return 1;
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
    "  The router applies the change (over its control socket) and\n"
    "  answers once it is done: it shows in status at once and survives\n"
    "  reloads.\n";


static int
control(int argc, char **argv, enum action a)
{
    static const struct option opts[] = {
        {"dim", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *shm = gr_cli_take_shm(&argc, argv), *spec, *slash;
    char request[512];
    int c, dim = -1;
    unsigned d;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            for (d = 0; d < GR_NDIMS && strcmp(optarg, dim_names[d]); d++)
                ;
            if (d == GR_NDIMS || a != ACT_RESET) {
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
    spec = argv[optind];
    slash = strchr(spec, '/');
    if (spec[0] == '\0' || spec[0] == '/' ||
        (slash != NULL && slash[1] == '\0') ||
        strpbrk(spec, " \t\r\n") != NULL ||
        strlen(spec) >= sizeof(request) - 32) {
        fprintf(stderr, "gemroute: '%s' is not PROJECT or PROJECT/MODEL\n",
                spec);
        return 2;
    }
    snprintf(request, sizeof(request), "%s %s%s%s", act_names[a], spec,
             dim >= 0 ? " " : "", dim >= 0 ? dim_names[dim] : "");
    return ask(shm, request);
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
