/*
 * ctl.c - gr_ctl_send(): the one client of the router's control socket
 * (router/control.c), used by `gemroute drain|enable|disable|reset` and
 * by the gateway's dashboard.
 *
 * Finds the socket's path in the table's header (through the snapshot
 * API), sends one line and reads the router's answer: "note" lines, then
 * "ok TEXT" or "error TEXT".  Invariant protected: one request per call,
 * one line, nothing of the caller's beyond its checked request and label
 * (no newline can smuggle a second command in).
 */
#include "gemroute_stat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define ANSWER_S 30                 /* the router answers in one tick */
#define BY_MAX 48

static int
fail(struct gr_ctl_answer *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct gr_ctl_answer *a, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(a->text, sizeof(a->text), fmt, ap);
    va_end(ap);
    a->status = status;
    return status;
}

/* Connect to the control socket of the router that serves shm; the
 * descriptor, or -1 with a->text set. */
static int
dial(const char *shm, struct gr_ctl_answer *a)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {ANSWER_S, 0};
    struct gr_stat_router r;
    struct gr_stat *st;
    char err[256];
    int fd;

    st = gr_stat_open(shm, err, sizeof(err));
    if (st == NULL) {
        fail(a, 2, "%s", err);
        return -1;
    }
    gr_stat_router(st, &r);
    if (!r.alive || r.control_path[0] == '\0') {
        fail(a, 2, "gemroute: %s for %s: operator actions are applied by "
             "the router (start gemrouted)", !r.alive ?
             "no router is running" : "no control socket is published",
             gr_stat_name(st));
        gr_stat_close(st);
        return -1;
    }
    gr_stat_close(st);
    if (strlen(r.control_path) >= sizeof(sa.sun_path)) {
        fail(a, 2, "gemroute: the published control socket path is too "
             "long");
        return -1;
    }
    memcpy(sa.sun_path, r.control_path, strlen(r.control_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(a, 2, "gemroute: socket(AF_UNIX): %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fail(a, 2, "gemroute: connect(%s): %s%s", sa.sun_path,
             strerror(errno), errno == EACCES ?
             " (the router's control socket: run as the router's user, "
             "root, or a member of router.group)" : "");
        close(fd);
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static bool
by_ok(const char *by)
{
    size_t i, n = strlen(by);

    if (n == 0 || n > BY_MAX)
        return false;
    for (i = 0; i < n; i++)
        if (!((by[i] >= 'a' && by[i] <= 'z') ||
              (by[i] >= 'A' && by[i] <= 'Z') ||
              (by[i] >= '0' && by[i] <= '9') || strchr("._:@#-", by[i])))
            return false;
    return true;
}

int
gr_ctl_send(const char *shm, const char *request, const char *by,
            struct gr_ctl_answer *a)
{
    char line[1024], buf[600];
    size_t len, have = 0, notes = 0;
    int fd, n;

    memset(a, 0, sizeof(*a));
    if (request == NULL || request[0] == '\0' ||
        strpbrk(request, "\r\n") != NULL || strlen(request) > 400)
        return fail(a, 2, "gemroute: a control request is one line of at "
                    "most 400 bytes");
    if (by != NULL && !by_ok(by))
        return fail(a, 2, "gemroute: a control label is 1 to %d of "
                    "letters, digits and ._:@#-", BY_MAX);
    n = snprintf(buf, sizeof(buf), "%s%s%s\n", request, by ? " by=" : "",
                 by ? by : "");
    len = (size_t)n;
    if ((fd = dial(shm, a)) < 0)
        return a->status;
    /* A refused peer is told why and disconnected at once: its send may
     * fail (EPIPE) with the answer already waiting to be read. */
    if (send(fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len &&
        errno != EPIPE && errno != ECONNRESET) {
        fail(a, 2, "gemroute: send to the router: %s", strerror(errno));
        close(fd);
        return 2;
    }
    for (;;) {
        char *nl = memchr(line, '\n', have);
        ssize_t got;

        if (nl == NULL) {
            if (have == sizeof(line) - 1) {
                fail(a, 2, "gemroute: an answer line from the router is "
                     "too long");
                break;
            }
            got = recv(fd, line + have, sizeof(line) - 1 - have, 0);
            if (got <= 0) {
                fail(a, 2, "gemroute: no answer from the router%s",
                     got < 0 ? " (timed out)" : " (it closed the socket)");
                break;
            }
            have += (size_t)got;
            continue;
        }
        *nl = '\0';
        if (strncmp(line, "note ", 5) == 0) {
            n = snprintf(a->notes + notes, sizeof(a->notes) - notes, "%s\n",
                         line + 5);
            if (n > 0 && (size_t)n < sizeof(a->notes) - notes)
                notes += (size_t)n;
        } else if (strncmp(line, "ok ", 3) == 0) {
            fail(a, 0, "%s", line + 3);
            break;
        } else if (strncmp(line, "error ", 6) == 0) {
            fail(a, 1, "%s", line + 6);
            break;
        } else {
            fail(a, 2, "gemroute: unexpected answer from the router: %.80s",
                 line);
            break;
        }
        have -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, have);
    }
    close(fd);
    return a->status;
}
