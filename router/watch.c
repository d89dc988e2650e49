/*
 * watch.c - reload when the config file, or a file it includes, changes.
 *
 * Editors and deployment tools seldom write a config file in place: they
 * write a temporary file and rename it over the old one, which replaces
 * the inode a watch on the file itself would follow.  So the watches are
 * on the *directories* of the main file and of every @included file, and
 * an event counts when its name is one of those files.  A file that is a
 * symlink also has its target's directory watched, and that directory
 * disappearing counts as a change (Kubernetes swaps a ConfigMap by
 * re-pointing a symlink and deleting the old target directory).
 *
 * Invariant protected: a change on disk leads to one reload within a
 * second - QUIET_NS after the last event, SETTLE_MAX_NS after the first
 * at the latest, read once per router tick - and a file still being
 * written is not read on purpose: a written file counts when it is
 * closed (IN_CLOSE_WRITE) or renamed into place (IN_MOVED_TO), not while
 * it grows.  A file that disappears changes nothing until it is back.
 * Nothing here blocks: the descriptor is non-blocking.
 */
#include "watch.h"
#include "router.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUIET_NS (INT64_C(100) * 1000000)       /* no event for 100 ms */
#define SETTLE_MAX_NS (INT64_C(500) * 1000000)  /* or 500 ms since the first */
#define RETRY_NS (INT64_C(1000) * 1000000)      /* re-add a lost directory */

/* What is watched in each directory.  IN_ATTRIB makes `touch FILE` a way
 * to ask for a reload; IN_CREATE matters for symlinks only (a regular
 * file is reloaded when its writer closes it). */
#define DIR_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ATTRIB | \
                  IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct watched {
    int wd;                     /* -1: the directory is not watched now */
    char *dir;
    char *base;                 /* file name inside dir */
};

struct gr_rtr_watch {
    int fd;
    unsigned n;
    struct watched *e;
    int64_t first_ns;           /* first event not acted on; 0 = none */
    int64_t last_ns;            /* latest such event */
    int64_t retry_ns;           /* next attempt at lost directories */
    char what[PATH_MAX];        /* the file the first event named */
};

static void
free_entries(struct watched *e, unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        free(e[i].dir);
        free(e[i].base);
    }
    free(e);
}

/* Split path into its directory ("." when it has none) and base name. */
static int
split(const char *path, struct watched *out)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        out->dir = strdup(".");
        out->base = strdup(path);
    } else {
        out->dir = slash == path ? strdup("/")
                                 : strndup(path, (size_t)(slash - path));
        out->base = strdup(slash + 1);
    }
    out->wd = -1;
    if (out->dir == NULL || out->base == NULL) {
        free(out->dir);
        free(out->base);
        return -ENOMEM;
    }
    return 0;
}

static int
add_dir(struct gr_rtr_watch *w, const char *dir, bool quiet)
{
    int wd = inotify_add_watch(w->fd, dir, DIR_MASK);

    if (wd < 0 && !quiet)
        gr_rtr_log("inotify_add_watch(%s): %s; changes there are seen "
                   "on SIGHUP only until it is back", dir, strerror(errno));
    return wd;
}

static void
mark(struct gr_rtr_watch *w, int64_t now, const char *dir, const char *base)
{
    if (w->first_ns == 0) {
        w->first_ns = now > 0 ? now : 1;
        if (base != NULL && strcmp(dir, ".") != 0)
            snprintf(w->what, sizeof(w->what), "%s/%s", dir, base);
        else
            snprintf(w->what, sizeof(w->what), "%s", base ? base : dir);
    }
    w->last_ns = now;
}

static bool
is_symlink(const struct watched *e)
{
    char path[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", e->dir, e->base);
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

/* A watched directory went away (deleted, moved, or unmounted). */
static void
lose(struct gr_rtr_watch *w, int wd, int64_t now, bool keep)
{
    unsigned i;

    for (i = 0; i < w->n; i++) {
        if (w->e[i].wd != wd)
            continue;
        w->e[i].wd = -1;
        if (keep)
            mark(w, now, w->e[i].dir, NULL);
    }
    w->retry_ns = now + RETRY_NS;
}

static void
handle(struct gr_rtr_watch *w, const struct inotify_event *ev, int64_t now,
       bool keep)
{
    unsigned i;

    if (ev->mask & IN_Q_OVERFLOW) {
        if (keep)
            mark(w, now, ".", "(inotify queue overflow)");
        return;
    }
    if (ev->mask & IN_MOVE_SELF)
        inotify_rm_watch(w->fd, ev->wd);    /* its path is stale now */
    if (ev->mask & (IN_IGNORED | IN_MOVE_SELF)) {
        lose(w, ev->wd, now, keep);
        return;
    }
    if (ev->len == 0 || !keep)
        return;
    for (i = 0; i < w->n; i++) {
        const struct watched *e = &w->e[i];

        if (e->wd != ev->wd || strcmp(ev->name, e->base) != 0)
            continue;
        if ((ev->mask & IN_CREATE) && !is_symlink(e))
            continue;       /* a new regular file: wait for its close */
        mark(w, now, e->dir, e->base);
    }
}

static void
read_events(struct gr_rtr_watch *w, int64_t now, bool keep)
{
    char buf[8192]
        __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        const char *p;

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;          /* EAGAIN: nothing more queued */
        for (p = buf; p + sizeof(struct inotify_event) <= buf + n;) {
            const struct inotify_event *ev = (const void *)p;

            handle(w, ev, now, keep);
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
}

/* Try again to watch directories that went away; their coming back is a
 * change (the file in them may be new). */
static void
retry_lost(struct gr_rtr_watch *w, int64_t now)
{
    unsigned i, j;

    if (now < w->retry_ns)
        return;
    w->retry_ns = now + RETRY_NS;
    for (i = 0; i < w->n; i++) {
        int wd;

        if (w->e[i].wd >= 0)
            continue;
        wd = add_dir(w, w->e[i].dir, true);
        if (wd < 0)
            continue;
        for (j = i; j < w->n; j++)
            if (w->e[j].wd < 0 && strcmp(w->e[j].dir, w->e[i].dir) == 0)
                w->e[j].wd = wd;
        gr_rtr_log("%s is back: watching it again", w->e[i].dir);
        mark(w, now, w->e[i].dir, w->e[i].base);
    }
}

/* The entries for path: its own directory, and its target's when it is
 * a symlink.  Returns how many were added to e (at most 2), or -ENOMEM. */
static int
entries_for(const char *path, struct watched *e)
{
    char real[PATH_MAX];
    struct stat st;
    int n = 0;

    if (split(path, &e[n]) != 0)
        return -ENOMEM;
    n++;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) &&
        realpath(path, real) != NULL) {
        if (split(real, &e[n]) != 0) {
            free(e[0].dir);
            free(e[0].base);
            return -ENOMEM;
        }
        n++;
    }
    return n;
}

void
gr_rtr_watch_files(struct gr_rtr_watch *w, const struct gr_cfg *cfg)
{
    unsigned nfiles = cfg->n_files > 0 ? cfg->n_files : 1, n = 0, i, j;
    unsigned ndirs = 0;
    struct watched *e;
    bool same;

    if (w == NULL)
        return;
    e = calloc(2 * (size_t)nfiles, sizeof(*e));
    if (e == NULL) {
        gr_rtr_log("watch: out of memory; keeping the old watches");
        return;
    }
    for (i = 0; i < nfiles; i++) {
        const char *path = cfg->n_files > 0 ? cfg->files[i] : cfg->path;
        int k = entries_for(path, &e[n]);

        if (k < 0) {
            gr_rtr_log("watch: out of memory; keeping the old watches");
            free_entries(e, n);
            return;
        }
        n += (unsigned)k;
    }
    for (i = 0; i < n; i++) {
        for (j = 0; j < i && strcmp(e[j].dir, e[i].dir) != 0; j++)
            ;
        if (j < i) {
            e[i].wd = e[j].wd;
            continue;
        }
        e[i].wd = add_dir(w, e[i].dir, false);
        ndirs += e[i].wd >= 0;
    }
    /* Drop the watches no file needs any more.  A directory seen under
     * two paths has one descriptor, so compare descriptors; removing one
     * twice fails harmlessly (EINVAL). */
    for (i = 0; i < w->n; i++) {
        bool needed = w->e[i].wd < 0;

        for (j = 0; j < n && !needed; j++)
            needed = e[j].wd == w->e[i].wd;
        if (!needed)
            inotify_rm_watch(w->fd, w->e[i].wd);
    }
    same = n == w->n;
    for (i = 0; i < n && same; i++)
        same = strcmp(e[i].dir, w->e[i].dir) == 0 &&
               strcmp(e[i].base, w->e[i].base) == 0;
    free_entries(w->e, w->n);
    w->e = e;
    w->n = n;
    if (!same)
        gr_rtr_log("watching %u file%s in %u director%s for changes",
                   nfiles, nfiles == 1 ? "" : "s", ndirs,
                   ndirs == 1 ? "y" : "ies");
}

struct gr_rtr_watch *
gr_rtr_watch_open(const struct gr_cfg *cfg)
{
    struct gr_rtr_watch *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        gr_rtr_log("watch: out of memory; reloads on SIGHUP only");
        return NULL;
    }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        gr_rtr_log("inotify_init1: %s; reloads on SIGHUP only",
                   strerror(errno));
        free(w);
        return NULL;
    }
    gr_rtr_watch_files(w, cfg);
    return w;
}

bool
gr_rtr_watch_due(struct gr_rtr_watch *w, int64_t now_ns, char *what,
                 size_t whatlen)
{
    if (w == NULL)
        return false;
    read_events(w, now_ns, true);
    retry_lost(w, now_ns);
    if (w->first_ns == 0 || (now_ns - w->last_ns < QUIET_NS &&
                             now_ns - w->first_ns < SETTLE_MAX_NS))
        return false;
    snprintf(what, whatlen, "%s", w->what);
    w->first_ns = 0;
    return true;
}

void
gr_rtr_watch_drain(struct gr_rtr_watch *w)
{
    if (w == NULL)
        return;
    read_events(w, 0, false);
    w->first_ns = 0;
}

void
gr_rtr_watch_close(struct gr_rtr_watch *w)
{
    if (w == NULL)
        return;
    close(w->fd);
    free_entries(w->e, w->n);
    free(w);
}
