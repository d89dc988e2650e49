/*
 * table.c - create, attach and check the shared table.
 *
 * Invariant protected: a process only ever uses a mapping whose magic,
 * ABI, size and geometry it has checked itself, and keeps the geometry in
 * private memory; nothing later read from the segment can move an access
 * outside the mapping.  And it only maps a segment whose owner it trusts
 * and whose mode lets no one else in (fstat of the descriptor it maps,
 * so the name cannot be swapped in between): a table someone else made
 * could read the keys the router writes or send calls to their address.
 */
#include "table.h"
#include "companion.h"
#include "clock.h"
#include "seqlock.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t
round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

/* The uid of user (a name or a number); -ENOENT when there is none. */
static int
uid_of(const char *user, uid_t *uid)
{
    struct passwd pw, *res = NULL;
    char buf[1024], *end;
    unsigned long n;

    if (user[0] >= '0' && user[0] <= '9') {
        errno = 0;
        n = strtoul(user, &end, 10);
        if (errno != 0 || *end != '\0' || n >= (unsigned long)(uid_t)-1)
            return -ENOENT;
        *uid = (uid_t)n;
        return 0;
    }
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        return -ENOENT;
    *uid = pw.pw_uid;
    return 0;
}

/*
 * May a client map a segment owned by st->st_uid with st->st_mode?  The
 * owners a client trusts: itself, root, $GEMROUTE_SHM_OWNER (a user name
 * or uid) and the system user "gemroute" (the one the packaged unit runs
 * the router as).  The mode must give nothing to others and at most read
 * and write to the group (0660).  0, or -EPERM with a sentence.
 */
static int
client_trusts(const char *name, const struct stat *st, char *err,
              size_t errlen)
{
    const char *env = getenv("GEMROUTE_SHM_OWNER");
    uid_t uid;
    bool ok = st->st_uid == geteuid() || st->st_uid == 0;

    if (!ok && env != NULL && env[0] != '\0') {
        if (uid_of(env, &uid) != 0) {
            /* Not echoed: whatever was pasted there stays out of logs. */
            gr_shm_say(err, errlen,
                "gemroute: $GEMROUTE_SHM_OWNER names no user "
                "of this system: refusing to attach to %s", name);
            return -EPERM;
        }
        ok = st->st_uid == uid;
    }
    if (!ok && uid_of("gemroute", &uid) == 0)
        ok = st->st_uid == uid;
    if (!ok) {
        gr_shm_say(err, errlen,
            "gemroute: %s belongs to uid %u, not to this user, "
            "root, the user gemroute or $GEMROUTE_SHM_OWNER: refusing to "
            "attach to a table someone else may have made", name,
            (unsigned)st->st_uid);
        return -EPERM;
    }
    if ((st->st_mode & 07777 & ~(mode_t)0660) != 0) {
        gr_shm_say(err, errlen, "gemroute: %s has mode %04o, open to others: "
            "refusing to attach (a table is 0600, or 0660 with a group)",
            name, (unsigned)(st->st_mode & 07777));
        return -EPERM;
    }
    return 0;
}

/* client_trusts() for a companion segment (companion.c). */
int
gr_shm_trusts(const char *name, const struct stat *st, char *err,
              size_t errlen)
{
    return client_trusts(name, st, err, errlen);
}

uint64_t
gr_shm_pidns(void)
{
    struct stat st;

    if (stat("/proc/self/ns/pid", &st) != 0)
        return 0;
    return (uint64_t)st.st_ino;
}

/* Is the router recorded in t in this process's PID namespace?  A lease
 * records its owner's pid and the router asks kill(pid, 0) whether it is
 * alive: a pid from another namespace names another process there.  0,
 * or -EXDEV with a sentence. */
static int
same_pidns(const struct gr_shm *t, char *err, size_t errlen)
{
    /* relaxed: written by the router before it publishes the magic
     * (create) or its pid (adopt); compared, never used as an index */
    uint64_t theirs = __atomic_load_n(&t->hdr->router_pidns,
                                      __ATOMIC_RELAXED);
    uint64_t ours;

    if (theirs == 0)
        return 0;   /* a router of ABI 3.1: nothing recorded */
    ours = gr_shm_pidns();
    if (ours == theirs)
        return 0;
    if (ours == 0)
        gr_shm_say(err, errlen, "gemroute: %s is served from PID namespace "
            "pid:[%llu] and /proc/self/ns/pid cannot be read here: "
            "refusing to attach (mount /proc)", t->name,
            (unsigned long long)theirs);
    else
        gr_shm_say(err, errlen, "gemroute: %s is served from another PID "
            "namespace (pid:[%llu]; this process is in pid:[%llu]): "
            "refusing to attach, since the router could not tell whether "
            "this process is alive (share the router's PID namespace)",
            t->name, (unsigned long long)theirs, (unsigned long long)ours);
    return -EXDEV;
}

int
gr_shm_geometry(uint32_t max_projects, uint32_t max_models,
                uint32_t max_leases, struct gr_shm_geom *g)
{
    uint64_t off;

    if (max_projects == 0 || max_projects > GR_SHM_MAX_PROJECTS ||
        max_models == 0 || max_models > GR_SHM_MAX_MODELS ||
        max_leases == 0 || max_leases > GR_SHM_MAX_LEASES)
        return -EINVAL;
    off = sizeof(struct gr_shm_header);
    g->off_models = off;
    off += (uint64_t)max_models * sizeof(struct gr_shm_model);
    g->off_projects = off;
    off += (uint64_t)max_projects * sizeof(struct gr_shm_project);
    g->off_choice = off;
    off += round_up((uint64_t)GR_CHOICE_PER_PROJECT * max_projects * 4,
                    GR_SHM_LINE);
    g->off_leases = off;
    off += (uint64_t)max_leases * sizeof(struct gr_shm_lease);
    g->off_cells = off;
    off += (uint64_t)max_projects * max_models * sizeof(struct gr_shm_cell);
    g->off_rings = off;
    off += (uint64_t)max_projects * max_models * GR_RING * GR_NWINDOWS * 8;
    /* Keys on their own pages: they are kept out of core dumps. */
    off = round_up(off, GR_SHM_PAGE);
    g->off_keys = off;
    off += round_up((uint64_t)max_projects * GR_SHM_MAX_KEYS * GR_SHM_KEY_MAX,
                    GR_SHM_PAGE);
    g->keys_end = off;
    /* ABI 5: the extras (layout.h), after the keys' pages */
    g->off_extra = off;
    off += sizeof(struct gr_shm_extra);
    off += (uint64_t)max_models * sizeof(struct gr_shm_fallback);
    off += round_up((uint64_t)max_models * max_models * 8, GR_SHM_LINE);
    off += GR_ALIAS_MAX * sizeof(struct gr_shm_alias);     /* ABI 6 */
    /* ABI 6: the spend section (layout.h) */
    g->off_spend = off;
    off += (uint64_t)max_models * sizeof(struct gr_shm_price);
    off += ((uint64_t)max_projects + 1) * sizeof(struct gr_shm_spend);
    g->size = round_up(off, GR_SHM_PAGE);
    return 0;
}

static void
point(struct gr_shm *t, const struct gr_shm_geom *g)
{
    t->hdr = (struct gr_shm_header *)t->base;
    t->models = (struct gr_shm_model *)(t->base + g->off_models);
    t->projects = (struct gr_shm_project *)(t->base + g->off_projects);
    t->choice = (_Atomic uint32_t *)(t->base + g->off_choice);
    t->leases = (struct gr_shm_lease *)(t->base + g->off_leases);
    t->cells = (struct gr_shm_cell *)(t->base + g->off_cells);
    t->rings = (_Atomic uint64_t *)(t->base + g->off_rings);
    gr_shm_ring_order((size_t)t->max_projects * t->max_models,
                      &t->ring_tick_words, &t->ring_cell_words);
    t->keys = (char *)(t->base + g->off_keys);
    /* Keys are secrets: keep their pages out of core dumps.  Failure is
     * not fatal (old kernels); the segment is 0600 either way. */
    (void)madvise(t->keys, g->keys_end - g->off_keys, MADV_DONTDUMP);
    if (t->size >= g->size) {
        t->extra = (struct gr_shm_extra *)(t->base + g->off_extra);
        t->fallback = (struct gr_shm_fallback *)(t->base + g->off_extra +
                                                 sizeof(*t->extra));
        t->pairs = (_Atomic uint64_t *)((unsigned char *)t->fallback +
                                        (size_t)t->max_models *
                                        sizeof(*t->fallback));
        t->aliases = (struct gr_shm_alias *)(
            t->base + g->off_extra + sizeof(*t->extra) +
            (size_t)t->max_models * sizeof(*t->fallback) +
            round_up((uint64_t)t->max_models * t->max_models * 8,
                     GR_SHM_LINE));
        t->prices = (struct gr_shm_price *)(t->base + g->off_spend);
        t->spend = (struct gr_shm_spend *)(t->base + g->off_spend +
                                           (size_t)t->max_models *
                                           sizeof(*t->prices));
    } else {
        t->prices = NULL;
        t->spend = NULL;
        t->extra = NULL;    /* none: no cache, no fallback */
        t->fallback = NULL;
        t->pairs = NULL;
        t->aliases = NULL;
    }
}

int
gr_shm_check_mapping(void *base, size_t size, bool writable,
                     struct gr_shm *t, char *err, size_t errlen)
{
    const struct gr_shm_header *h = base;
    struct gr_shm_geom g;
    const char *name = t->name[0] ? t->name : "segment";

    if (size < sizeof(*h)) {
        gr_shm_say(err, errlen, "gemroute: %s is %zu bytes, too small to be a "
            "gemroute table", name, size);
        return -EPROTO;
    }
    if (h->magic != GR_SHM_MAGIC) {
        gr_shm_say(err, errlen,
            "gemroute: %s is not a gemroute table (bad magic)",
            name);
        return -EPROTO;
    }
    if (h->abi_major != GR_SHM_ABI_MAJOR) {
        gr_shm_say(err, errlen,
            "gemroute: %s has ABI %u.%u; this program speaks "
            "%u.x - rebuild it", name, h->abi_major, h->abi_minor,
            GR_SHM_ABI_MAJOR);
        return -EPROTO;
    }
    if (gr_shm_geometry(h->max_projects, h->max_models, h->max_leases,
                        &g) != 0 ||
        h->size != g.size || size != g.size ||
        h->off_extra != g.off_extra || h->off_spend != g.off_spend ||
        h->off_models != g.off_models || h->off_projects != g.off_projects ||
        h->off_choice != g.off_choice || h->off_leases != g.off_leases ||
        h->off_cells != g.off_cells || h->off_rings != g.off_rings ||
        h->off_keys != g.off_keys) {
        gr_shm_say(err, errlen,
            "gemroute: %s has a damaged header (its geometry "
            "does not match its size, %zu bytes)", name, size);
        return -EPROTO;
    }
    if (h->window_ns < GR_TICKS_PER_WINDOW * INT64_C(1000) ||
        h->tick_ns != h->window_ns / GR_TICKS_PER_WINDOW) {
        gr_shm_say(err, errlen,
            "gemroute: %s has a damaged header (window %lld ns)",
            name, (long long)h->window_ns);
        return -EPROTO;
    }
    t->base = base;
    t->size = size;
    t->writable = writable;
    t->max_projects = h->max_projects;
    t->max_models = h->max_models;
    t->max_leases = h->max_leases;
    t->window_ns = h->window_ns;
    t->tick_ns = h->tick_ns;
    /* The coarse clock is used only if it is finer than a tick. */
    t->coarse_ns = gr_shm_coarse_res_ns();
    if (t->coarse_ns <= 0 || t->coarse_ns > t->tick_ns)
        t->coarse_ns = 0;
    point(t, &g);
    return 0;
}

/* Map the segment open on fd (st: its fstat) and check it. */
static int
map_fd(const char *name, int fd, const struct stat *st, bool writable,
       struct gr_shm *t, char *err, size_t errlen)
{
    void *base;
    int rc;

    if ((size_t)st->st_size < sizeof(struct gr_shm_header)) {
        gr_shm_say(err, errlen, "gemroute: %s is %lld bytes, too small to be a "
            "gemroute table", name, (long long)st->st_size);
        return -EPROTO;
    }
    base = mmap(NULL, (size_t)st->st_size,
                writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED,
                fd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        gr_shm_say(err, errlen, "gemroute: mmap(%s): %s", name, strerror(-rc));
        return rc;
    }
    rc = gr_shm_check_mapping(base, (size_t)st->st_size, writable, t, err,
                              errlen);
    if (rc != 0) {
        munmap(base, (size_t)st->st_size);
        return rc;
    }
    t->dev = (uint64_t)st->st_dev;
    t->ino = (uint64_t)st->st_ino;
    return 0;
}

int
gr_shm_attach(const char *name, bool writable, struct gr_shm *t, char *err,
              size_t errlen)
{
    struct stat st;
    int fd, rc;

    memset(t, 0, sizeof(*t));
    name = gr_shm_default_name(name);
    snprintf(t->name, sizeof(t->name), "%s", name);
    fd = shm_open(name, writable ? O_RDWR : O_RDONLY, 0);
    if (fd < 0) {
        rc = -errno;
        if (rc == -ENOENT) {
            gr_shm_say(err, errlen,
                "gemroute: shm_open(%s): no such table - is "
                "gemrouted running?", name);
        } else if (rc == -EACCES) {
            char path[GR_SHM_NAME_MAX + 16];
            struct stat ps;

            /* Say whose it is and how to get in, when /dev/shm tells. */
            snprintf(path, sizeof(path), "/dev/shm%s", name);
            if (stat(path, &ps) == 0)
                gr_shm_say(err, errlen,
                    "gemroute: shm_open(%s): Permission denied "
                    "(the table is mode %03o, uid %u, gid %u: run as that "
                    "user, or give the router mode = \"0660\" and a group "
                    "you are in)", name, (unsigned)(ps.st_mode & 0777),
                    (unsigned)ps.st_uid, (unsigned)ps.st_gid);
            else
                gr_shm_say(err, errlen,
                    "gemroute: shm_open(%s): Permission denied",
                    name);
        } else
            gr_shm_say(err, errlen, "gemroute: shm_open(%s): %s", name,
                strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        gr_shm_say(err, errlen, "gemroute: fstat(%s): %s", name, strerror(-rc));
        close(fd);
        return rc;
    }
    rc = client_trusts(name, &st, err, errlen);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    rc = map_fd(name, fd, &st, writable, t, err, errlen);
    close(fd);
    if (rc == 0 && (rc = same_pidns(t, err, errlen)) != 0)
        gr_shm_detach(t);
    return rc;
}

int
gr_shm_router_adopt(const char *name, unsigned mode, gid_t gid,
                    struct gr_shm *t, char *err, size_t errlen)
{
    struct stat st;
    mode_t have;
    int fd, rc;

    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    fd = shm_open(name, O_RDWR, 0);
    if (fd < 0) {
        rc = -errno;
        gr_shm_say(err, errlen,
            "gemroute: shm_open(%s): %s", name, strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        gr_shm_say(err, errlen, "gemroute: fstat(%s): %s", name, strerror(-rc));
        goto fail;
    }
    have = st.st_mode & 07777;
    rc = -EPERM;
    if (st.st_uid != geteuid()) {
        gr_shm_say(err, errlen, "gemroute: %s belongs to uid %u, not to the "
            "router's user (uid %u): refusing to adopt it, since its owner "
            "could read the keys or redirect the calls (remove it, or "
            "choose another router.shm)", name, (unsigned)st.st_uid,
            (unsigned)geteuid());
        goto fail;
    }
    if ((have & ~(mode_t)mode) != 0 ||
        ((have & 0070) != 0 && st.st_gid != gid)) {
        gr_shm_say(err, errlen, "gemroute: %s has mode %04o and group %u, more "
            "open than the configured mode %04o%s: refusing to adopt it, "
            "since others may have it mapped (stop its clients, remove "
            "/dev/shm%s and start again)", name, (unsigned)have,
            (unsigned)st.st_gid, mode, gid != (gid_t)-1 ? " and group" : "",
            name);
        goto fail;
    }
    /* The configured mode again (it may have been narrowed by hand, or
     * the config may now name a group), the group first as at create. */
    if ((gid != (gid_t)-1 && st.st_gid != gid &&
         fchown(fd, (uid_t)-1, gid) != 0) ||
        (have != mode && fchmod(fd, mode) != 0)) {
        rc = -errno;
        gr_shm_say(err, errlen, "gemroute: setting the mode of %s: %s", name,
            strerror(-rc));
        goto fail;
    }
    rc = map_fd(name, fd, &st, true, t, err, errlen);
fail:
    close(fd);
    return rc;
}

void
gr_shm_detach(struct gr_shm *t)
{
    if (t->base != NULL)
        munmap(t->base, t->size);
    t->base = NULL;
}

int
gr_shm_router_create(const char *name, uint32_t max_projects,
                     uint32_t max_models, uint32_t max_leases,
                     int64_t window_ns, unsigned mode, gid_t gid,
                     struct gr_shm *t, char *err, size_t errlen)
{
    struct gr_shm_geom g;
    struct gr_shm_header *h;
    struct gr_shm_comp c;
    int rc;

    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    if (gr_shm_geometry(max_projects, max_models, max_leases, &g) != 0) {
        gr_shm_say(err, errlen, "gemroute: geometry out of range");
        return -EINVAL;
    }
    rc = gr_shm_comp_create(name, g.size, mode, gid, false, &c, err,
                            errlen);
    if (rc != 0)
        return rc;
    h = c.base;
    h->abi_major = GR_SHM_ABI_MAJOR;
    h->abi_minor = GR_SHM_ABI_MINOR;
    h->size = g.size;
    h->max_projects = max_projects;
    h->max_models = max_models;
    h->max_leases = max_leases;
    h->window_ns = window_ns;
    h->tick_ns = window_ns / GR_TICKS_PER_WINDOW;
    h->off_models = g.off_models;
    h->off_projects = g.off_projects;
    h->off_choice = g.off_choice;
    h->off_leases = g.off_leases;
    h->off_cells = g.off_cells;
    h->off_rings = g.off_rings;
    h->off_keys = g.off_keys;
    h->off_extra = g.off_extra;
    h->off_spend = g.off_spend;
    h->router_pidns = gr_shm_pidns();
    /* Clients also check every field anyway. */
    gr_shm_comp_publish(&h->magic, GR_SHM_MAGIC);
    rc = gr_shm_check_mapping(c.base, g.size, true, t, err, errlen);
    if (rc != 0) {
        gr_shm_comp_unmap(&c);
        shm_unlink(name);
        return rc;
    }
    t->dev = c.dev;
    t->ino = c.ino;
    return 0;
}

void
gr_shm_anomaly(const struct gr_shm *t)
{
    if (!t->writable)
        return;
    /* relaxed: a statistic */
    atomic_fetch_add_explicit(&t->hdr->anomalies, 1, memory_order_relaxed);
}

bool
gr_shm_router_alive(const struct gr_shm *t)
{
    /* relaxed: a hint; liveness is asked of the kernel */
    int64_t pid = atomic_load_explicit(&t->hdr->router_pid,
                                       memory_order_relaxed);

    if (pid <= 0 || pid > INT32_MAX)
        return false;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

const char *
gr_shm_default_name(const char *name)
{
    const char *env;

    if (name != NULL && name[0] != '\0')
        return name;
    env = getenv("GEMROUTE_SHM");
    if (env != NULL && env[0] != '\0')
        return env;
    return "/gemroute";
}

/* One look for a model's name, under the models' seqlock. */
struct model_find {
    const struct gr_shm *t;
    const char *name;
    int found;
};

static void
model_find_copy(void *arg)
{
    struct model_find *mf = arg;
    const struct gr_shm *t = mf->t;
    struct gr_shm_model m;
    uint32_t i, n;

    /* acquire: stays before the seqlock's re-read (see seqlock.h) */
    n = atomic_load_explicit(&t->hdr->n_models, memory_order_acquire);
    if (n > t->max_models)
        n = t->max_models;
    mf->found = -1;
    for (i = 0; i < n && mf->found < 0; i++) {
        gr_shm_seq_copy_out(&m, &t->models[i], sizeof(m));
        m.name[GR_SHM_NAME_MAX - 1] = '\0';
        if (strcmp(m.name, mf->name) == 0)
            mf->found = (int)i;
    }
}

/* One look for an alias, under the models' seqlock. */
struct alias_find {
    const struct gr_shm *t;
    const char *name;
    char target[GR_SHM_NAME_MAX];
    int found;
};

static void
alias_find_copy(void *arg)
{
    struct alias_find *af = arg;
    const struct gr_shm *t = af->t;
    struct gr_shm_alias a;
    struct gr_shm_model m;
    uint32_t i, n;

    /* acquire: stays before the seqlock's re-read (see seqlock.h) */
    n = atomic_load_explicit(&t->hdr->n_models, memory_order_acquire);
    if (n > t->max_models)
        n = t->max_models;
    af->found = -1;
    for (i = 0; i < GR_ALIAS_MAX; i++) {
        gr_shm_seq_copy_out(&a, &t->aliases[i], sizeof(a));
        a.name[GR_SHM_NAME_MAX - 1] = '\0';
        if (a.name[0] == '\0')
            break;
        if (strcmp(a.name, af->name) != 0)
            continue;
        if (a.model >= n)
            break;                  /* untrusted: an index out of range */
        gr_shm_seq_copy_out(&m, &t->models[a.model], sizeof(m));
        m.name[GR_SHM_NAME_MAX - 1] = '\0';
        memcpy(af->target, m.name, sizeof(af->target));
        af->found = (int)a.model;
        break;
    }
}

int
gr_shm_alias_model(const struct gr_shm *t, const char *name, char *target,
                   size_t tlen)
{
    struct alias_find af = {.t = t, .name = name, .found = -1};

    if (t->aliases == NULL || name[0] == '\0' ||
        !gr_shm_seq_read(&t->hdr->models_seq, alias_find_copy, &af) ||
        af.found < 0)
        return -1;
    snprintf(target, tlen, "%s", af.target);
    return af.found;
}

int
gr_shm_model_index(const struct gr_shm *t, const char *name)
{
    struct model_find mf = {t, name, -1};

    /* a torn look is not "no such model": the caller looks again */
    if (!gr_shm_seq_read(&t->hdr->models_seq, model_find_copy, &mf))
        return GR_SHM_TORN;
    return mf.found;
}
