/*
 * segment.c - create the table, or adopt the one a dead router left; and
 * notice when the table is cut short under the router.
 *
 * Invariant protected: at most one live router owns a segment, and a
 * router restarted with the same geometry keeps every counter (the
 * windows and day counts are what Google has already counted).  The
 * router writes keys only into a segment of its own user whose mode is
 * no wider than configured (gr_shm_router_adopt()), served from its own
 * PID namespace, and never dies of a segment that someone truncates: a
 * SIGBUS inside the mapping is absorbed and reported (gr_rtr_segment_lost).
 */
#include "router.h"
#include "clock.h"
#include "seqlock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

gid_t
gr_rtr_group(const struct gr_cfg *cfg)
{
    struct group *g;

    if (cfg == NULL || cfg->router.group[0] == '\0' ||
        (g = getgrnam(cfg->router.group)) == NULL)
        return (gid_t)-1;
    return g->gr_gid;
}

/* Is there a gemroute table (any ABI) under name? */
static bool
is_ours(const char *name)
{
    uint64_t magic = 0;
    int fd = shm_open(name, O_RDONLY, 0);
    bool ours;

    if (fd < 0)
        return false;
    ours = pread(fd, &magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
           magic == GR_SHM_MAGIC;
    close(fd);
    return ours;
}

/*
 * The geometry is what the segment's size and the meaning of its counters
 * follow from: max_projects, max_models, max_leases (the layout) and
 * window_ms (what a window count counts).  The shm name is not part of
 * it: it says which segment, not what shape.  At start the segment is
 * looked up by that name, so comparing it would always succeed; at a
 * reload a new name is refused beside a new geometry (apply.c), since
 * both need a restart, but for its own reason.
 */
bool
gr_rtr_geometry_matches(const struct gr_shm *t, const struct gr_cfg *cfg)
{
    return t->max_projects == cfg->router.max_projects &&
           t->max_models == cfg->router.max_models &&
           t->max_leases == cfg->router.max_leases &&
           t->window_ns == (int64_t)cfg->router.window_ms * 1000000;
}

/* A router killed while writing leaves odd sequence counters: even them
 * out (the data under them is rewritten by the next apply). */
static void
repair(struct gr_shm *t)
{
    uint32_t i;

    gr_shm_seq_write_end(&t->hdr->text_seq);
    gr_shm_seq_write_end(&t->hdr->models_seq);
    for (i = 0; i < t->max_projects; i++)
        gr_shm_seq_write_end(&t->projects[i].seq);
}

int
gr_rtr_open_segment(struct gr_rtr *r, const struct gr_cfg *cfg, char *err,
                    size_t errlen)
{
    const char *name = cfg->router.shm;
    int64_t window_ns = (int64_t)cfg->router.window_ms * 1000000;
    gid_t gid = (gid_t)-1;
    uint64_t ns;
    int rc = -EEXIST;

    memset(&r->t, 0, sizeof(r->t));
    r->adopted = false;
    if (cfg->router.group[0] != '\0') {
        struct group *g = getgrnam(cfg->router.group);

        if (g == NULL) {
            snprintf(err, errlen, "gemroute: group '%s' does not exist",
                     cfg->router.group);
            return -EINVAL;
        }
        gid = g->gr_gid;
    }
    for (int attempt = 0; attempt < 2 && rc == -EEXIST; attempt++) {
        rc = gr_shm_router_create(name, cfg->router.max_projects,
                                  cfg->router.max_models,
                                  cfg->router.max_leases, window_ns,
                                  cfg->router.mode, gid, &r->t, err, errlen);
        if (rc != -EEXIST)
            break;
        rc = gr_shm_router_adopt(name, cfg->router.mode, gid, &r->t, err,
                                 errlen);
        if (rc == -EPERM)
            return rc;  /* another user's, or too open: never ours */
        if (rc == -ENOENT) {
            rc = -EEXIST;   /* gone in between: create it again */
            continue;
        }
        /* relaxed: the last router wrote it; only compared */
        ns = rc == 0 ? __atomic_load_n(&r->t.hdr->router_pidns,
                                       __ATOMIC_RELAXED) : 0;
        if (ns != 0 && ns != gr_shm_pidns()) {
            /* Its clients' leases hold pids of that namespace: we could
             * not tell the live from the dead.  PostgreSQL's answer to a
             * segment that may still be in use: refuse, and say how. */
            snprintf(err, errlen, "gemroute: %s was served from another PID "
                     "namespace (pid:[%llu]): refusing to adopt it, since "
                     "the leases of its clients cannot be checked from here "
                     "(stop them and remove /dev/shm%s, or run the router "
                     "in that namespace)", name, (unsigned long long)ns,
                     name);
            gr_shm_detach(&r->t);
            return -EXDEV;
        }
        if (rc == 0 && gr_shm_router_alive(&r->t)) {
            /* relaxed: a number for the message */
            snprintf(err, errlen, "gemroute: a live router (pid %lld) "
                     "owns %s", (long long)atomic_load_explicit(
                         &r->t.hdr->router_pid, memory_order_relaxed), name);
            gr_shm_detach(&r->t);
            return -EBUSY;
        }
        if (rc == 0 && gr_rtr_geometry_matches(&r->t, cfg)) {
            repair(&r->t);
            r->adopted = true;
            gr_rtr_log("adopted %s from a router that is gone; counters "
                       "kept", name);
            break;
        }
        if (rc == 0) {
            gr_rtr_log("%s has another geometry (projects, models, leases "
                       "or window changed): recreating it; counters reset",
                       name);
            gr_shm_detach(&r->t);
        } else if (!is_ours(name)) {
            return rc;  /* someone else's segment: not ours to remove */
        } else {
            gr_rtr_log("%s: %s; recreating it", name, err);
        }
        if (shm_unlink(name) != 0 && errno != ENOENT) {
            rc = -errno;
            snprintf(err, errlen, "gemroute: shm_unlink(%s): %s: cannot "
                     "replace it (remove /dev/shm%s by hand)", name,
                     strerror(-rc), name);
            return rc;
        }
        rc = -EEXIST;
    }
    if (rc == -EEXIST)
        snprintf(err, errlen, "gemroute: %s came back each time it was "
                 "removed: someone else is creating it; refusing", name);
    if (rc != 0)
        return rc;
    /* Ours (same as before, or a table of ABI 3.1 that had none), set
     * before the mirror copies line 0: repair keeps it from then on.
     * relaxed: published by the release store of the pid below. */
    __atomic_store_n(&r->t.hdr->router_pidns, gr_shm_pidns(),
                     __ATOMIC_RELAXED);
    if (gr_rtr_mirror_init(r) != 0) {
        snprintf(err, errlen, "gemroute: out of memory");
        gr_shm_detach(&r->t);
        return -ENOMEM;
    }
    /* relaxed: published by the release store of the pid below */
    atomic_store_explicit(&r->t.hdr->router_birth_ns, gr_shm_now_wall(),
                          memory_order_relaxed);
    atomic_store_explicit(&r->t.hdr->router_beat_ns, gr_shm_now_mono(),
                          memory_order_relaxed);
    /* release: a client that sees our pid sees the rest of the header */
    atomic_store_explicit(&r->t.hdr->router_pid, (int64_t)getpid(),
                          memory_order_release);
    return 0;
}

/*
 * A table cut short under the router (ftruncate by anyone who may write
 * it) turns every access past the new end into SIGBUS.  systemd-journald
 * meets the same hazard on its mmapped files the same way: the handler
 * maps an anonymous page over the faulting one, so the access completes
 * (on zeros, in private memory), and records the event; the main loop
 * asks gr_rtr_segment_lost() after each step and replaces the table.
 * This is the one handler that does more than set a flag: mmap is a
 * system call, safe in a handler on Linux.  A fault outside the table is
 * not ours: the default action comes back and the access faults again.
 */
static volatile uintptr_t guard_lo, guard_hi;   /* [lo, hi): the table */
static volatile uintptr_t guard_at;             /* first fault, address */
static volatile sig_atomic_t guard_hit;
static size_t guard_page;

static void
on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    int saved = errno;
    void *page;

    (void)ctx;
    if (a < guard_lo || a >= guard_hi) {
        signal(sig, SIG_DFL);
        return;
    }
    page = (void *)(a & ~(uintptr_t)(guard_page - 1));
    if (mmap(page, guard_page, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
        signal(sig, SIG_DFL);
        return;
    }
    if (!guard_hit)
        guard_at = a;
    guard_hit = 1;
    errno = saved;
}

void
gr_rtr_guard_segment(struct gr_rtr *r)
{
    static bool installed;

    if (!installed) {
        struct sigaction sa;

        guard_page = (size_t)sysconf(_SC_PAGESIZE);
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, NULL);
        installed = true;
    }
    guard_hit = 0;
    guard_lo = (uintptr_t)r->t.base;
    guard_hi = (uintptr_t)r->t.base + r->t.size;
}

bool
gr_rtr_segment_lost(struct gr_rtr *r, char *what, size_t n)
{
    if (!guard_hit)
        return false;
    snprintf(what, n, "%s was truncated under the router (SIGBUS at byte "
             "%llu of %zu)", r->t.name,
             (unsigned long long)(guard_at - guard_lo), r->t.size);
    return true;
}

void
gr_rtr_drop_segment(struct gr_rtr *r)
{
    struct stat st;
    int fd;

    /* Remove the name only if it still names our (damaged) table. */
    fd = shm_open(r->t.name, O_RDONLY, 0);
    if (fd >= 0) {
        if (fstat(fd, &st) == 0 && (uint64_t)st.st_dev == r->t.dev &&
            (uint64_t)st.st_ino == r->t.ino)
            shm_unlink(r->t.name);
        close(fd);
    }
    guard_lo = guard_hi = 0;
    gr_shm_detach(&r->t);
    gr_rtr_mirror_free(r);
    guard_hit = 0;
}
