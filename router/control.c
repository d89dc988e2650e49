/*
 * control.c - the router's control socket: the one way to change
 * operator state.
 *
 * As varnishadm asks varnishd over its CLI socket, `gemroute drain`,
 * `disable`, `enable` and `reset` ask the router over a unix stream
 * socket; the tools only read the table (include/gemroute_stat.h).  The
 * protocol is one line each way:
 *
 *   drain|disable|enable PROJECT[/MODEL]      ->  ok TEXT | error TEXT
 *   reset PROJECT[/MODEL] [rpm|tpm|rpd|ipm|tpd]
 *   ping                                      ->  ok gemrouted PID
 *
 * Any request may end with " by=LABEL", a name of who asked (the
 * gateway's dashboard passes its user) that is logged with the action.
 *
 * An answer may be preceded by "note TEXT" lines; it is sent after the
 * change is applied, so a command that returned has taken effect.
 *
 * The socket is router.control, else (root) /run/gemroute/NAME.sock,
 * else $XDG_RUNTIME_DIR/gemroute/NAME.sock, else
 * /tmp/gemroute-UID/NAME.sock (NAME: the table's name without its '/'),
 * created with the segment's mode (0600, or 0660 and its group), and
 * published in the table's header for the CLI.  Every peer is checked
 * with SO_PEERCRED: the router's own uid, root, and (with router.group)
 * members of that group are served; anyone else is told why and
 * disconnected.  Every action is logged with the peer's uid and pid.
 *
 * Invariants protected: the router is the only writer of operator state
 * (GR_PROJ_OP_*, GR_CELL_OP_*, and the overrides GR_PROJ_AUTH_FAILED,
 * GR_CELL_DISABLED_MODEL), every write is one atomic word, like the
 * clients' own health writes (health is advice read relaxed; the
 * admission CAS decides), and apply.c never touches these words, so
 * operator state survives reloads.  Never a window or a day count:
 * those are what Google has counted, and forgetting them would
 * over-admit.  The socket is served from the router's loop and never
 * blocks it: every descriptor is non-blocking, a peer gets a bounded
 * line and a bounded time.
 */
#include "router.h"
#include "clock.h"
#include "health.h"
#include "reserve.h"
#include "seqlock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CTL_CONNS 8                 /* peers served at once */
#define CTL_LINE 256                /* longest request, newline included */
#define CTL_IDLE_NS (INT64_C(10) * 1000000000)

static const char *dim_names[GR_NDIM] = {"rpm", "tpm", "rpd", "ipm", "tpd"};

struct conn {
    int fd;                         /* -1: free */
    pid_t pid;
    uid_t uid;
    int64_t since_ns;               /* last request, CLOCK_MONOTONIC */
    size_t len;
    char buf[CTL_LINE];
};

struct gr_rtr_control {
    int fd;                         /* the listening socket */
    char path[GR_SHM_SOCK_MAX];
    gid_t gid;                      /* router.group, or -1 */
    struct conn conns[CTL_CONNS];
};

/* ---- where the socket lives --------------------------------------------- */

/* A directory of our own for the socket: made 0700 if missing; refused
 * when it is someone else's, or writable by others. */
static int
own_dir(const char *dir, mode_t mode)
{
    struct stat st;

    if (mkdir(dir, mode) != 0 && errno != EEXIST)
        return -errno;
    if (lstat(dir, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 0022) != 0)
        return -EPERM;
    return 0;
}

static int
control_path(const struct gr_cfg *cfg, char *out, size_t n, char *err,
             size_t errlen)
{
    const char *name = cfg->router.shm + 1;     /* without its '/' */
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    char dir[GR_SHM_SOCK_MAX + 64];
    int rc, len;

    if (cfg->router.control[0] != '\0') {
        len = snprintf(out, n, "%s", cfg->router.control);
    } else if (geteuid() == 0 && own_dir("/run/gemroute", 0755) == 0) {
        len = snprintf(out, n, "/run/gemroute/%s.sock", name);
    } else {
        if (xdg != NULL && xdg[0] == '/')
            snprintf(dir, sizeof(dir), "%s/gemroute", xdg);
        else
            snprintf(dir, sizeof(dir), "/tmp/gemroute-%u",
                     (unsigned)geteuid());
        rc = own_dir(dir, 0700);
        if (rc != 0) {
            snprintf(err, errlen, "gemroute: control socket directory %s: "
                     "%s (set router.control)", dir, rc == -EPERM ?
                     "not ours, or writable by others" : strerror(-rc));
            return rc;
        }
        len = snprintf(out, n, "%s/%s.sock", dir, name);
    }
    if (len < 0 || (size_t)len >= n ||
        (size_t)len >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, errlen, "gemroute: the control socket path is longer "
                 "than %zu characters (set a shorter router.control)",
                 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* A socket file left by a router that is gone is removed; one that
 * answers belongs to a live process and is refused. */
static int
clear_stale(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    int fd, rc;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "gemroute: %s exists and is not a socket",
                 path);
        return -EEXIST;
    }
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0) {
        snprintf(err, errlen, "gemroute: control socket %s is served by "
                 "another process (another router?)", path);
        return -EADDRINUSE;
    }
    unlink(path);
    return 0;
}

static void
publish(struct gr_rtr *r, const char *path)
{
    char text[GR_SHM_SOCK_MAX] = {0};

    snprintf(text, sizeof(text), "%s", path);
    gr_shm_seq_write_begin(&r->t.hdr->text_seq);
    gr_shm_seq_copy_in(r->t.hdr->control_path, text, sizeof(text));
    gr_shm_seq_write_end(&r->t.hdr->text_seq);
}

void
gr_rtr_control_publish(struct gr_rtr *r)
{
    if (r->ctl != NULL)
        publish(r, r->ctl->path);
}

int
gr_rtr_control_open(struct gr_rtr *r, char *err, size_t errlen)
{
    struct gr_rtr_control *c = calloc(1, sizeof(*c));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    mode_t old;
    int i, rc;

    if (c == NULL)
        return -ENOMEM;
    c->fd = -1;
    c->gid = (gid_t)-1;
    for (i = 0; i < CTL_CONNS; i++)
        c->conns[i].fd = -1;
    rc = control_path(r->cfg, c->path, sizeof(c->path), err, errlen);
    if (rc == 0)
        rc = clear_stale(c->path, err, errlen);
    if (rc != 0)
        goto fail;
    c->gid = gr_rtr_group(r->cfg);
    /* control_path() checked that it fits */
    memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "gemroute: socket(AF_UNIX): %s", strerror(-rc));
        goto fail;
    }
    /* Born 0600: no moment in which another user could connect. */
    old = umask(0177);
    rc = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0) {
        rc = -errno;
        snprintf(err, errlen, "gemroute: bind(%s): %s", c->path,
                 strerror(-rc));
        goto fail;
    }
    if ((c->gid != (gid_t)-1 && chown(c->path, (uid_t)-1, c->gid) != 0) ||
        chmod(c->path, r->cfg->router.mode & 0660) != 0 ||
        listen(c->fd, CTL_CONNS) != 0) {
        rc = -errno;
        snprintf(err, errlen, "gemroute: control socket %s: %s", c->path,
                 strerror(-rc));
        unlink(c->path);
        goto fail;
    }
    publish(r, c->path);
    r->ctl = c;
    gr_rtr_log("control socket %s (mode %03o)", c->path,
               r->cfg->router.mode & 0660);
    return 0;
fail:
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return rc;
}

void
gr_rtr_control_close(struct gr_rtr *r)
{
    struct gr_rtr_control *c = r->ctl;
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < CTL_CONNS; i++)
        if (c->conns[i].fd >= 0)
            close(c->conns[i].fd);
    close(c->fd);
    unlink(c->path);
    publish(r, "");
    free(c);
    r->ctl = NULL;
}

/* ---- who may ask -------------------------------------------------------- */

static bool
in_group(int fd, const struct ucred *cr, gid_t gid)
{
    gid_t groups[256];
    socklen_t len = sizeof(groups);
    struct passwd *pw;
    int n = 256, i;

    if (gid == (gid_t)-1)
        return false;
    if (cr->gid == gid)
        return true;
    /* The peer's groups as they were when it connected (Linux 4.13). */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
        for (i = 0; i < (int)(len / sizeof(gid_t)); i++)
            if (groups[i] == gid)
                return true;
        return false;
    }
    pw = getpwuid(cr->uid);
    if (pw == NULL || getgrouplist(pw->pw_name, cr->gid, groups, &n) < 0)
        return false;
    for (i = 0; i < n; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

/* ---- answering -------------------------------------------------------- */

struct reply {
    char text[1024];
    size_t len;
};

static void
say(struct reply *rp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
say(struct reply *rp, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (rp->len >= sizeof(rp->text) - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(rp->text + rp->len, sizeof(rp->text) - rp->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        rp->len += (size_t)n < sizeof(rp->text) - rp->len ?
                   (size_t)n : sizeof(rp->text) - rp->len - 1;
}

/* ---- the actions (what `gemroute drain` & co. wrote themselves before) -- */

enum action { ACT_DRAIN, ACT_ENABLE, ACT_DISABLE, ACT_RESET };

static const char *act_names[] = {"drain", "enable", "disable", "reset"};

struct target {
    uint32_t slot;
    int model;                      /* -1: every model of the project */
    char project[GR_SHM_NAME_MAX];
    char model_name[GR_SHM_NAME_MAX];
};

/* The slot of project name (active or draining), from the router's own
 * copy of what it wrote (never from the segment): -1 when none. */
static int
find_slot(const struct gr_rtr *r, const char *name)
{
    uint32_t i;

    for (i = 0; i < r->t.max_projects; i++)
        if ((r->m.state[i] == GR_PROJ_ACTIVE ||
             r->m.state[i] == GR_PROJ_REMOVING) &&
            strncmp(r->m.name[i], name, GR_SHM_NAME_MAX) == 0)
            return (int)i;
    return -1;
}

static int
find_model(const struct gr_rtr *r, const char *name)
{
    uint32_t i;

    for (i = 0; i < r->m.n_models && i < r->t.max_models; i++)
        if (strncmp(r->m.model[i], name, GR_SHM_NAME_MAX) == 0)
            return (int)i;
    return -1;
}

static bool
parse_target(const struct gr_rtr *r, const char *spec, struct target *x,
             struct reply *rp)
{
    const char *slash = strchr(spec, '/');
    int slot;

    memset(x, 0, sizeof(*x));
    x->model = -1;
    if (strlen(spec) >= 2 * GR_SHM_NAME_MAX) {
        say(rp, "error '%.64s...' is too long\n", spec);
        return false;
    }
    snprintf(x->project, sizeof(x->project), "%.*s",
             slash ? (int)(slash - spec) : (int)strlen(spec), spec);
    if (slash != NULL)
        snprintf(x->model_name, sizeof(x->model_name), "%s", slash + 1);
    if (x->project[0] == '\0' || (slash != NULL && x->model_name[0] == '\0')) {
        say(rp, "error '%s' is not PROJECT or PROJECT/MODEL\n", spec);
        return false;
    }
    slot = find_slot(r, x->project);
    if (slot < 0) {
        say(rp, "error no project '%s' in %s\n", x->project, r->t.name);
        return false;
    }
    x->slot = (uint32_t)slot;
    if (slash != NULL) {
        x->model = find_model(r, x->model_name);
        if (x->model < 0) {
            say(rp, "error no model '%s' in %s\n", x->model_name, r->t.name);
            return false;
        }
    }
    return true;
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
in_flight(const struct gr_rtr *r, const struct target *x)
{
    int64_t n = 0;
    uint32_t m;

    for (m = 0; m < r->t.max_models; m++) {
        if (x->model >= 0 && (uint32_t)x->model != m)
            continue;
        n += gr_shm_cell_in_flight(&r->t, x->slot * r->t.max_models + m,
                                   UINT32_MAX);
    }
    return n;
}

/* Apply a to x; the answer (notes, then ok) goes to rp. */
static void
act(struct gr_rtr *r, const struct target *x, enum action a, int dim,
    struct reply *rp)
{
    struct gr_shm_project *p = &r->t.projects[x->slot];
    uint32_t m;
    bool disabled_left = false;

    if (x->model < 0) {
        if (a == ACT_DRAIN)
            set_bits(&p->health, GR_PROJ_OP_DRAINING, GR_PROJ_OP_DISABLED);
        else if (a == ACT_DISABLE)
            set_bits(&p->health, GR_PROJ_OP_DISABLED, GR_PROJ_OP_DRAINING);
        else if (a == ACT_ENABLE) {
            set_bits(&p->health, 0, GR_PROJ_OP_DISABLED |
                     GR_PROJ_OP_DRAINING | GR_PROJ_AUTH_FAILED);
            /* relaxed: advice, one word, like health */
            atomic_store_explicit(&p->key_bad, 0, memory_order_relaxed);
        }
    }
    for (m = 0; m < r->t.max_models; m++) {
        struct gr_shm_cell *c = gr_shm_cell(&r->t, x->slot, m);

        if (c == NULL || (x->model >= 0 && (uint32_t)x->model != m))
            continue;
        if (a == ACT_RESET) {
            reset_cell(&r->t, c, dim);
            /* relaxed: a hint for the message */
            disabled_left |= atomic_load_explicit(&c->health,
                                                  memory_order_relaxed) &
                             GR_CELL_DISABLED_MODEL;
        } else if (a == ACT_ENABLE) {
            /* A project enabled as a whole is enabled on every model. */
            set_bits(&c->health, 0, GR_CELL_OP_DISABLED |
                     GR_CELL_OP_DRAINING | GR_CELL_DISABLED_MODEL);
            clear_learned_zero(&r->t, c);
        } else if (x->model >= 0 && a == ACT_DRAIN) {
            set_bits(&c->health, GR_CELL_OP_DRAINING, GR_CELL_OP_DISABLED);
        } else if (x->model >= 0 && a == ACT_DISABLE) {
            set_bits(&c->health, GR_CELL_OP_DISABLED, GR_CELL_OP_DRAINING);
        }
    }
    if (a == ACT_RESET && disabled_left)
        say(rp, "note note: disabled (model not found or no quota) stays; "
            "`gemroute enable %s%s%s` lifts it\n", x->project,
            x->model >= 0 ? "/" : "", x->model_name);
    if (a == ACT_ENABLE && x->model >= 0 &&
        /* relaxed: a hint for the message */
        (atomic_load_explicit(&p->health, memory_order_relaxed) &
         (GR_PROJ_OP_DISABLED | GR_PROJ_OP_DRAINING | GR_PROJ_AUTH_FAILED)))
        say(rp, "note note: project %s itself is still out of rotation; "
            "`gemroute enable %s` lifts it\n", x->project, x->project);
    say(rp, "ok %s%s%s%s%s: ", x->project, x->model >= 0 ? "/" : "",
        x->model_name, dim >= 0 ? " " : "", dim >= 0 ? dim_names[dim] : "");
    if (a == ACT_DRAIN || a == ACT_DISABLE)
        say(rp, "%s: no new calls; %lld in flight finish\n",
            a == ACT_DRAIN ? "draining" : "disabled",
            (long long)in_flight(r, x));
    else
        say(rp, "%s\n", a == ACT_ENABLE ? "enabled" : "reset");
}

/* One request line (without its newline) from a checked peer. */
static void
serve_line(struct gr_rtr *r, const struct conn *k, char *line,
           struct reply *rp)
{
    char *save = NULL, *verb, *spec, *extra, *more, *by;
    char who[64] = "";
    struct target x;
    unsigned a;
    int dim = -1;

    /* A last word "by=LABEL" names who asked, for the log (the gateway
     * passes its dashboard user); it changes nothing else. */
    by = strrchr(line, ' ');
    if (by != NULL && strncmp(by + 1, "by=", 3) == 0 && by[4] != '\0') {
        size_t i;

        *by = '\0';
        snprintf(who, sizeof(who), " for %.48s", by + 4);
        for (i = 5; who[i] != '\0'; i++)
            if (who[i] <= 0x20 || who[i] >= 0x7f)
                who[i] = '?';
    }
    verb = strtok_r(line, " \t", &save);
    spec = verb ? strtok_r(NULL, " \t", &save) : NULL;
    extra = spec ? strtok_r(NULL, " \t", &save) : NULL;
    more = extra ? strtok_r(NULL, " \t", &save) : NULL;
    if (verb != NULL && strcmp(verb, "ping") == 0 && spec == NULL) {
        say(rp, "ok gemrouted %d\n", (int)getpid());
        return;
    }
    for (a = 0; verb != NULL && a < 4 && strcmp(verb, act_names[a]); a++)
        ;
    if (verb == NULL || a == 4 || spec == NULL || more != NULL ||
        (extra != NULL && a != ACT_RESET)) {
        say(rp, "error usage: drain|disable|enable PROJECT[/MODEL], "
            "reset PROJECT[/MODEL] [rpm|tpm|rpd|ipm|tpd], ping\n");
        return;
    }
    if (extra != NULL) {
        for (dim = 0; dim < GR_NDIM && strcmp(extra, dim_names[dim]); dim++)
            ;
        if (dim == GR_NDIM) {
            say(rp, "error --dim is rpm, tpm, rpd or ipm\n");
            return;
        }
    }
    if (!parse_target(r, spec, &x, rp)) {
        gr_rtr_log("control: %s %s from uid %u pid %d%s: %.*s", verb, spec,
                   (unsigned)k->uid, (int)k->pid, who,
                   rp->len > 7 ? (int)rp->len - 7 : 0, rp->text + 6);
        return;
    }
    act(r, &x, (enum action)a, dim, rp);
    gr_rtr_log("control: %s %s%s%s by uid %u pid %d%s", verb, spec,
               dim >= 0 ? " " : "", dim >= 0 ? dim_names[dim] : "",
               (unsigned)k->uid, (int)k->pid, who);
}

static void
drop(struct conn *k)
{
    close(k->fd);
    k->fd = -1;
    k->len = 0;
}

static void
send_reply(struct conn *k, const struct reply *rp)
{
    /* The answer is small and the socket's buffer empty between
     * requests: a peer that does not read is dropped, never waited for. */
    if (send(k->fd, rp->text, rp->len, MSG_DONTWAIT | MSG_NOSIGNAL) !=
        (ssize_t)rp->len)
        drop(k);
}

static void
accept_one(struct gr_rtr *r)
{
    struct gr_rtr_control *c = r->ctl;
    struct ucred cr;
    socklen_t len = sizeof(cr);
    struct reply rp = {.len = 0};
    struct conn *k = NULL;
    int fd, i;

    fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
        gr_rtr_log("control: getsockopt(SO_PEERCRED): %s", strerror(errno));
        close(fd);
        return;
    }
    if (cr.uid != geteuid() && cr.uid != 0 && !in_group(fd, &cr, c->gid)) {
        gr_rtr_log("control: refused uid %u pid %d (not the router's user, "
                   "root or in router.group)", (unsigned)cr.uid,
                   (int)cr.pid);
        say(&rp, "error permission denied: uid %u is not the router's "
            "user (uid %u), root%s%s\n", (unsigned)cr.uid,
            (unsigned)geteuid(), c->gid != (gid_t)-1 ?
            " or in router.group " : "",
            c->gid != (gid_t)-1 ? r->cfg->router.group : "");
        (void)!send(fd, rp.text, rp.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        close(fd);
        return;
    }
    for (i = 0; i < CTL_CONNS && k == NULL; i++)
        if (c->conns[i].fd < 0)
            k = &c->conns[i];
    if (k == NULL) {
        say(&rp, "error busy: %d operators connected\n", CTL_CONNS);
        (void)!send(fd, rp.text, rp.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        close(fd);
        return;
    }
    k->fd = fd;
    k->pid = cr.pid;
    k->uid = cr.uid;
    k->len = 0;
    k->since_ns = gr_shm_now_mono();
}

/* Read what k sent; answer each whole line. */
static void
serve_conn(struct gr_rtr *r, struct conn *k)
{
    for (;;) {
        ssize_t n = recv(k->fd, k->buf + k->len, sizeof(k->buf) - k->len,
                         MSG_DONTWAIT);
        char *nl;

        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop(k);
            return;
        }
        if (n < 0)
            return;
        k->len += (size_t)n;
        while (k->fd >= 0 &&
               (nl = memchr(k->buf, '\n', k->len)) != NULL) {
            struct reply rp = {.len = 0};
            size_t used = (size_t)(nl - k->buf) + 1;

            *nl = '\0';
            if (nl > k->buf && nl[-1] == '\r')
                nl[-1] = '\0';
            serve_line(r, k, k->buf, &rp);
            memmove(k->buf, k->buf + used, k->len - used);
            k->len -= used;
            k->since_ns = gr_shm_now_mono();
            send_reply(k, &rp);
        }
        if (k->fd < 0)
            return;
        if (k->len == sizeof(k->buf)) {
            struct reply rp = {.len = 0};

            say(&rp, "error line longer than %d bytes\n", CTL_LINE - 1);
            send_reply(k, &rp);
            if (k->fd >= 0)
                drop(k);
            return;
        }
    }
}

void
gr_rtr_control_wait(struct gr_rtr *r, int64_t timeout_ns)
{
    struct gr_rtr_control *c = r->ctl;
    struct pollfd pf[CTL_CONNS + 1];
    struct conn *who[CTL_CONNS + 1];
    int n = 0, i, ms;
    int64_t now;

    if (c == NULL) {
        struct timespec ts = {timeout_ns / GR_NS_PER_S,
                              timeout_ns % GR_NS_PER_S};

        nanosleep(&ts, NULL);
        return;
    }
    pf[n].fd = c->fd;
    pf[n].events = POLLIN;
    who[n++] = NULL;
    for (i = 0; i < CTL_CONNS; i++) {
        if (c->conns[i].fd < 0)
            continue;
        pf[n].fd = c->conns[i].fd;
        pf[n].events = POLLIN;
        who[n++] = &c->conns[i];
    }
    ms = (int)((timeout_ns + 999999) / 1000000);
    if (poll(pf, (nfds_t)n, ms > 0 ? ms : 1) > 0) {
        for (i = 1; i < n; i++)
            if (pf[i].revents != 0)
                serve_conn(r, who[i]);
        if (pf[0].revents & POLLIN)
            accept_one(r);
    }
    /* A peer that said nothing for a while is let go. */
    now = gr_shm_now_mono();
    for (i = 0; i < CTL_CONNS; i++)
        if (c->conns[i].fd >= 0 && now - c->conns[i].since_ns > CTL_IDLE_NS)
            drop(&c->conns[i]);
}
