/*
 * table.h - mapping the shared table and finding things in it.
 *
 * A process keeps its own copy of the geometry (struct gr_shm), checked
 * once at attach against the header and the segment's real size, and
 * never re-reads it from the segment: indices are checked against that
 * private copy, so a scribbled header cannot send anyone out of bounds.
 */
#ifndef GR_SHM_TABLE_H
#define GR_SHM_TABLE_H

#include "clock.h"
#include "layout.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct gr_shm {
    unsigned char *base;
    size_t size;
    bool writable;
    char name[GR_SHM_NAME_MAX];
    uint32_t max_projects;
    uint32_t max_models;
    uint32_t max_leases;
    int64_t window_ns;
    int64_t tick_ns;
    int64_t coarse_ns;      /* resolution of the coarse clock if it is
                               finer than a tick, else 0 (see
                               gr_shm_now_fast()) */
    struct gr_shm_header *hdr;
    struct gr_shm_model *models;
    struct gr_shm_project *projects;
    _Atomic uint32_t *choice;
    struct gr_shm_lease *leases;
    struct gr_shm_cell *cells;
    _Atomic uint64_t *rings;
    size_t ring_tick_words; /* words from one tick's releases to the
                               next tick's, of one cell (layout.h) */
    size_t ring_cell_words; /* words from one cell's releases to the next
                               cell's, of one tick */
    char *keys;
    struct gr_shm_extra *extra;         /* ABI 4.2; NULL in a 4.1 table */
    struct gr_shm_fallback *fallback;   /* [max_models]; NULL with extra */
    _Atomic uint64_t *pairs;            /* [max_models^2]; NULL with extra */
    struct gr_shm_alias *aliases;       /* [GR_ALIAS_MAX]; NULL with extra */
    struct gr_shm_price *prices;        /* ABI 6: [max_models] */
    struct gr_shm_spend *spend;         /* ABI 6: [max_projects + 1], the
                                           pool last */
    uint64_t dev, ino;      /* the segment's file, from fstat at attach or
                               create (the router finds it again by them) */
};

/* Offsets and size for a geometry; -EINVAL if it is out of range. */
struct gr_shm_geom {
    uint64_t off_models, off_projects, off_choice, off_leases, off_cells;
    uint64_t off_rings, off_keys, off_extra, off_spend, size;
    uint64_t keys_end;      /* where the keys' pages end (the
                               extras start there) */
};
int gr_shm_geometry(uint32_t max_projects, uint32_t max_models,
                    uint32_t max_leases, struct gr_shm_geom *g);

#define GR_SHM_MAX_PROJECTS 65536u
#define GR_SHM_MAX_MODELS 64u
#define GR_SHM_MAX_LEASES 65536u

/*
 * Map an existing segment and check magic, ABI, sizes and geometry.
 * Returns 0, or -errno with a sentence in err ("gemroute: /gemroute has
 * ABI 2.0; this client speaks 1.x - rebuild it").
 *
 * Before mapping, the segment's owner and mode are checked on the
 * descriptor (fstat): the owner must be this process's euid, root, the
 * user named by $GEMROUTE_SHM_OWNER (name or uid) or the system user
 * "gemroute"; the mode must have no bit beyond 0660.  -EPERM otherwise.
 * After mapping, a router that recorded its PID namespace must share
 * ours (leases are checked by pid): -EXDEV otherwise.
 */
int gr_shm_attach(const char *name, bool writable, struct gr_shm *t,
                  char *err, size_t errlen);

/* The same checks on a mapping already made (tests map twice). */
int gr_shm_check_mapping(void *base, size_t size, bool writable,
                         struct gr_shm *t, char *err, size_t errlen);

void gr_shm_detach(struct gr_shm *t);

/*
 * Router only: create a new segment (O_EXCL) of this geometry, mode and
 * group (gid -1 = none), with the header filled in and router_pid = 0.
 * -EEXIST when the name is taken.
 */
int gr_shm_router_create(const char *name, uint32_t max_projects,
                         uint32_t max_models, uint32_t max_leases,
                         int64_t window_ns, unsigned mode, gid_t gid,
                         struct gr_shm *t, char *err, size_t errlen);

/*
 * Router only: map an existing segment to adopt it.  Refused (-EPERM,
 * with a sentence) when its owner is not our euid, when its mode has a
 * bit the configured mode lacks, or when it has group bits for another
 * group than gid; otherwise the configured group (gid -1 = none) and mode
 * are applied again before it is mapped read-write and checked.
 */
int gr_shm_router_adopt(const char *name, unsigned mode, gid_t gid,
                        struct gr_shm *t, char *err, size_t errlen);

/* May a client map a segment with this fstat (owner and mode, as
 * gr_shm_attach() checks)?  0, or -EPERM with a sentence. */
struct stat;
int gr_shm_trusts(const char *name, const struct stat *st, char *err,
                  size_t errlen);

/* The inode of this process's PID namespace (/proc/self/ns/pid), or 0
 * when it cannot be read. */
uint64_t gr_shm_pidns(void);

/* A limit to store in a cell (-1 = unlimited), and back. */
static inline uint32_t
gr_shm_limit_pack(int64_t v)
{
    if (v < 0)
        return GR_LIMIT_NONE;
    return v >= (int64_t)GR_LIMIT_NONE ? GR_LIMIT_NONE - 1 : (uint32_t)v;
}

static inline int64_t
gr_shm_limit_unpack(uint32_t v)
{
    return v == GR_LIMIT_NONE ? -1 : (int64_t)v;
}

/* Bounds-checked access; NULL when the index is out of range. */
static inline struct gr_shm_cell *
gr_shm_cell(const struct gr_shm *t, uint32_t slot, uint32_t model)
{
    if (slot >= t->max_projects || model >= t->max_models)
        return NULL;
    return &t->cells[(size_t)slot * t->max_models + model];
}

static inline struct gr_shm_cell *
gr_shm_cell_at(const struct gr_shm *t, uint32_t index)
{
    if (index >= t->max_projects * t->max_models)
        return NULL;
    return &t->cells[index];
}

/* The order of the release rings of a table of n_cells (layout.h): the
 * strides, in words, from one tick to the next and one cell to the next. */
static inline void
gr_shm_ring_order(size_t n_cells, size_t *tick_words, size_t *cell_words)
{
    if (n_cells <= GR_RING_CELL_FIRST_MAX) {
        *tick_words = GR_NWINDOWS;
        *cell_words = GR_RING * GR_NWINDOWS;
    } else {
        *tick_words = n_cells * GR_NWINDOWS;
        *cell_words = GR_NWINDOWS;
    }
}

/* The ring slot of window w, tick tick, of a cell that came from
 * gr_shm_cell() or gr_shm_cell_at(). */
static inline _Atomic uint64_t *
gr_shm_ring_slot(const struct gr_shm *t, const struct gr_shm_cell *c,
                 uint64_t tick, unsigned w)
{
    return t->rings + (size_t)(tick % GR_RING) * t->ring_tick_words +
           (size_t)(c - t->cells) * t->ring_cell_words + w;
}

static inline struct gr_shm_project *
gr_shm_project(const struct gr_shm *t, uint32_t slot)
{
    return slot < t->max_projects ? &t->projects[slot] : NULL;
}

static inline struct gr_shm_lease *
gr_shm_lease(const struct gr_shm *t, uint32_t i)
{
    return i < t->max_leases ? &t->leases[i] : NULL;
}

static inline char *
gr_shm_key(const struct gr_shm *t, uint32_t slot, uint32_t k)
{
    if (slot >= t->max_projects || k >= GR_SHM_MAX_KEYS)
        return NULL;
    return t->keys + ((size_t)k * t->max_projects + slot) * GR_SHM_KEY_MAX;
}

/* Now, CLOCK_MONOTONIC: from the coarse clock when t->coarse_ns says it
 * is fine enough, else the precise one.  The coarse clock reads short,
 * by more than its resolution at times (4-8 ms here, 32 ms under load):
 * only for what it is safe to see late (draining, cooldowns), never for
 * the instant a release counts from. */
static inline int64_t
gr_shm_now_fast(const struct gr_shm *t)
{
    return t->coarse_ns != 0 ? gr_shm_now_mono_coarse() : gr_shm_now_mono();
}

/* Count a bad value that was skipped (status shows the total). */
void gr_shm_anomaly(const struct gr_shm *t);

/* Is the router recorded in the header alive? */
bool gr_shm_router_alive(const struct gr_shm *t);

/* The segment name to use: name, else $GEMROUTE_SHM, else "/gemroute". */
const char *gr_shm_default_name(const char *name);

/* The model index of name, -1 when no model has that name, or
 * GR_SHM_TORN when every look was torn (the router is mid-write, or was
 * descheduled there: look again later).  Reads under the models' lock. */
#define GR_SHM_TORN (-2)
int gr_shm_model_index(const struct gr_shm *t, const char *name);

/*
 * The model index an alias (router.aliases in the config) names, with
 * that model's name in target; -1 when name is no alias (or the table
 * has no extras).  Read under the model table's lock.
 */
int gr_shm_alias_model(const struct gr_shm *t, const char *name,
                       char *target, size_t tlen);

#endif
