/*
 * segment.c - create the table, or adopt the one a dead router left.
 *
 * Invariant protected: at most one live router owns a segment, and a
 * router restarted with the same geometry keeps every counter (the
 * windows and day counts are what Google has already counted).
 */
#include "router.h"
#include "clock.h"
#include "seqlock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

static bool
geometry_matches(const struct gr_shm *t, const struct gr_cfg *cfg)
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
    int rc;

    if (cfg->router.group[0] != '\0') {
        struct group *g = getgrnam(cfg->router.group);

        if (g == NULL) {
            snprintf(err, errlen, "gemroute: group '%s' does not exist",
                     cfg->router.group);
            return -EINVAL;
        }
        gid = g->gr_gid;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = gr_shm_router_create(name, cfg->router.max_projects,
                                  cfg->router.max_models,
                                  cfg->router.max_leases, window_ns,
                                  cfg->router.mode, gid, &r->t, err, errlen);
        if (rc != -EEXIST)
            break;
        rc = gr_shm_attach(name, true, &r->t, err, errlen);
        if (rc == 0 && gr_shm_router_alive(&r->t)) {
            /* relaxed: a number for the message */
            snprintf(err, errlen, "gemroute: a live router (pid %lld) "
                     "owns %s", (long long)atomic_load_explicit(
                         &r->t.hdr->router_pid, memory_order_relaxed), name);
            gr_shm_detach(&r->t);
            return -EBUSY;
        }
        if (rc == 0 && geometry_matches(&r->t, cfg)) {
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
        shm_unlink(name);
    }
    if (rc != 0)
        return rc;
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
