/*
 * control.c - the operator's commands:
 *
 *   gemroute reload [--timeout SECONDS]
 *   gemroute drain|enable|disable PROJECT[/MODEL]
 *   gemroute reset PROJECT[/MODEL] [--dim rpm|tpm|rpd|ipm]
 *
 * None of them writes the table: the router is the only writer of
 * operator state.  reload signals the router named in the table's header
 * and waits for the outcome the router records there (read through the
 * snapshot API).  The others send one line to the router's control
 * socket (router/control.c; its path is published in the header) and
 * print its answer: "note ..." lines, then "ok ..." (exit 0) or
 * "error ..." (exit 1).  The router answers after the change is applied.
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
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define POLL_NS (INT64_C(10) * 1000000)
#define ANSWER_S 30                 /* the router answers in one tick */

static const char *dim_names[GR_NDIMS] = {"rpm", "tpm", "rpd", "ipm"};

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

/* Connect to the control socket of the router that serves shm; -1 with
 * a sentence on stderr. */
static int
dial(const char *shm)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {ANSWER_S, 0};
    struct gr_stat_router r;
    struct gr_stat *st;
    char err[256];
    int fd;

    st = gr_stat_open(shm, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    gr_stat_router(st, &r);
    if (!r.alive || r.control_path[0] == '\0') {
        fprintf(stderr, "gemroute: %s for %s: operator actions are applied "
                "by the router (start gemrouted)\n", !r.alive ?
                "no router is running" : "no control socket is published",
                gr_stat_name(st));
        gr_stat_close(st);
        return -1;
    }
    gr_stat_close(st);
    if (strlen(r.control_path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "gemroute: the published control socket path is "
                "too long\n");
        return -1;
    }
    memcpy(sa.sun_path, r.control_path, strlen(r.control_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "gemroute: socket(AF_UNIX): %s\n", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "gemroute: connect(%s): %s%s\n", sa.sun_path,
                strerror(errno), errno == EACCES ?
                " (the router's control socket: run as the router's user, "
                "root, or a member of router.group)" : "");
        close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Send one request; print the answer.  0, or 1 (error or no answer). */
static int
ask(int fd, const char *request)
{
    char line[1024];
    FILE *in;
    int rc = 1;

    /* A refused peer is told why and disconnected at once: its send may
     * fail (EPIPE) with the answer already waiting to be read. */
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) !=
        (ssize_t)strlen(request) && errno != EPIPE && errno != ECONNRESET) {
        fprintf(stderr, "gemroute: send to the router: %s\n",
                strerror(errno));
        close(fd);
        return 1;
    }
    in = fdopen(fd, "r");
    if (in == NULL) {
        close(fd);
        return 1;
    }
    for (;;) {
        if (fgets(line, sizeof(line), in) == NULL) {
            fprintf(stderr, "gemroute: no answer from the router%s\n",
                    ferror(in) ? " (timed out)" : " (it closed the socket)");
            break;
        }
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "note ", 5) == 0) {
            puts(line + 5);
        } else if (strncmp(line, "ok ", 3) == 0) {
            puts(line + 3);
            rc = 0;
            break;
        } else if (strncmp(line, "error ", 6) == 0) {
            fprintf(stderr, "gemroute: %s\n", line + 6);
            break;
        } else {
            fprintf(stderr, "gemroute: unexpected answer from the router: "
                    "%.80s\n", line);
            break;
        }
    }
    fclose(in);
    return rc;
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
    int c, dim = -1, fd;
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
    snprintf(request, sizeof(request), "%s %s%s%s\n", act_names[a], spec,
             dim >= 0 ? " " : "", dim >= 0 ? dim_names[dim] : "");
    fd = dial(shm);
    if (fd < 0)
        return 1;
    return ask(fd, request);
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
