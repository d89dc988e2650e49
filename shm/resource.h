/*
 * resource.h - the record of things that live in one project: which
 * project holds each file, cachedContent and batch job, and until when.
 *
 * A companion segment of the table ("/gemroute" -> "/gemroute.res"),
 * made by the router with the table's mode and group, mapped read-write
 * by every client that learns of a resource and read-only by the tools.
 * It has its own magic and ABI: the table's layout (layout.h) does not
 * change, and a process that never names a resource never maps it.
 *
 * This is a wire format, not a public API.  The segment, in order:
 *
 *   header    struct gr_shm_res_hdr (one line)
 *   records   cap x struct gr_shm_res (three lines each)
 *
 * Who writes what (docs/DESIGN.md, "Things that live in one project"):
 *   - any client writes a record when it learns of a resource (an upload,
 *     a cache or a batch created through it, a TTL it changed) and frees
 *     one Google says is gone (404) or that it deleted;
 *   - the router frees the records of writers that died mid-write and
 *     those expired, and restores the record from its state file into a
 *     new segment.
 * A record is written only by the one process that claimed it: a CAS of
 * its state word from FREE (or LIVE) to WRITING with its pid, the fields,
 * then a release store of LIVE.  The state word's sequence moves with
 * every claim, so a reader that sees the same word before and after its
 * copy has a record nobody wrote in between (a seqlock per record whose
 * writer is whoever holds the claim).  Every reader treats every value as
 * untrusted: names are cut at their buffer, kinds range-checked.
 */
#ifndef GR_SHM_RESOURCE_H
#define GR_SHM_RESOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GR_RES_MAGIC UINT64_C(0x31534552474d4752) /* "RGMGRES1" */
#define GR_RES_ABI_MAJOR 1u
#define GR_RES_ABI_MINOR 1u     /* 1: record.tokens */

#define GR_RES_NAME_MAX 104     /* "files/abc", "cachedContents/x", ... */
#define GR_RES_PROJECT_MAX 64   /* as GR_SHM_NAME_MAX */
#define GR_RES_DEFAULT_CAP 4096u
#define GR_RES_MAX_CAP 1048576u
#define GR_RES_SEGNAME_MAX 80

/* Kinds (record.kind), as enum gr_res_kind in include/gemroute.h. */
enum {
    GR_RES_KIND_NONE = 0,
    GR_RES_KIND_FILE = 1,
    GR_RES_KIND_CACHE = 2,
    GR_RES_KIND_BATCH = 3,
    GR_RES_KIND_UPLOAD = 4,     /* an upload session: "uploads/ID" */
    GR_RES_NKINDS = 5,
};

/* Record states (low 8 bits of record.state). */
enum {
    GR_RES_FREE = 0,
    GR_RES_WRITING = 1,     /* claimed by the pid in bits 32..63 */
    GR_RES_LIVE = 2,
};

/*
 * One resource.  state packs:
 *   bits  0..7   GR_RES_*
 *   bits  8..31  sequence, bumped by every claim
 *   bits 32..63  pid of the last writer
 * Every other field is written only while the state is WRITING, with
 * release stores, and read between two acquire loads of state.
 */
struct gr_shm_res {
    _Atomic uint64_t state;
    int64_t expire_ns;                  /* CLOCK_REALTIME ns; 0 = until
                                           dropped (a batch) */
    uint32_t kind;                      /* GR_RES_KIND_* */
    uint32_t tokens;                    /* input tokens Google counted for
                                           it (a file part alone, a
                                           cache's totalTokenCount); 0 =
                                           not known.  ABI 1.1: was
                                           padding, always 0 */
    char name[GR_RES_NAME_MAX];         /* "files/abc123" */
    char project[GR_RES_PROJECT_MAX];   /* the project's name */
};

struct gr_shm_res_hdr {
    uint64_t magic;
    uint32_t abi_major;
    uint32_t abi_minor;
    uint64_t size;                      /* bytes */
    uint32_t cap;                       /* records */
    uint32_t pad0;
    _Atomic uint64_t refused;           /* records refused: full */
    _Atomic uint64_t anomalies;         /* bad values seen and skipped */
    _Atomic uint64_t dropped;           /* records dropped (gone, expired,
                                           a dead writer's) */
    uint8_t pad1[64 - 56];
};

_Static_assert(sizeof(struct gr_shm_res) == 3 * 64, "record: three lines");
_Static_assert(offsetof(struct gr_shm_res, name) == 24, "record name");
_Static_assert(sizeof(struct gr_shm_res_hdr) == 64, "header: one line");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free");

/* A process's view of the segment: geometry checked once at attach and
 * never re-read from the segment. */
struct gr_shm_restab {
    unsigned char *base;
    size_t size;
    uint32_t cap;
    bool writable;
    struct gr_shm_res_hdr *hdr;
    struct gr_shm_res *recs;
    char name[GR_RES_SEGNAME_MAX];
};

/* A record as read (a consistent copy). */
struct gr_shm_res_view {
    uint32_t kind;
    uint32_t tokens;                    /* 0 = not known */
    int64_t expire_ns;
    char name[GR_RES_NAME_MAX];
    char project[GR_RES_PROJECT_MAX];
};

/* The companion's name for a table name ("/gemroute" ->
 * "/gemroute.res"); -ENAMETOOLONG if it does not fit. */
int gr_shm_res_segname(const char *table, char *out, size_t n);

/* Bytes of a segment of cap records; 0 when cap is out of range. */
size_t gr_shm_res_size(uint32_t cap);

/*
 * Map the companion of table (writable or not) and check magic, ABI,
 * size, owner and mode as gr_shm_attach() does.  0, or -errno with a
 * sentence in err (-ENOENT: no router made one yet).
 */
int gr_shm_res_attach(const char *table, bool writable,
                      struct gr_shm_restab *rt, char *err, size_t errlen);

/* The same checks on a mapping already made (tests). */
int gr_shm_res_check_mapping(void *base, size_t size, bool writable,
                             struct gr_shm_restab *rt, char *err,
                             size_t errlen);

void gr_shm_res_detach(struct gr_shm_restab *rt);

/*
 * Router only: map the companion of table, adopting one of cap records
 * whose owner is us (its records kept: *created = false), else making a
 * new one with mode and group (gid -1 = none): *created = true.
 */
int gr_shm_res_router_open(const char *table, uint32_t cap, unsigned mode,
                           gid_t gid, struct gr_shm_restab *rt,
                           bool *created, char *err, size_t errlen);

/* Is name one a record may hold: 1..GR_RES_NAME_MAX-1 printable
 * characters, no space, no quote, no backslash? */
bool gr_shm_res_name_ok(const char *name);

/*
 * Record (or update) that project holds name, of kind, until expire_ns
 * (CLOCK_REALTIME; 0 = until dropped).  now_ns (CLOCK_REALTIME) lets an
 * expired record's place be taken.  0; -EINVAL for a bad name, project
 * or kind; -ENOSPC when every record is taken (counted in refused);
 * -EAGAIN when the record stayed claimed by another writer.
 */
int gr_shm_res_put(const struct gr_shm_restab *rt, uint32_t kind,
                   const char *name, const char *project, int64_t expire_ns,
                   uint32_t pid, int64_t now_ns);

/* Change the expiry of the record of name; 0 or -ENOENT. */
int gr_shm_res_set_expiry(const struct gr_shm_restab *rt, const char *name,
                          int64_t expire_ns, uint32_t pid);

/* Record the input tokens of name (0 = not known); 0, -ENOENT, -EAGAIN.
 * A put of a name already recorded keeps its tokens. */
int gr_shm_res_set_tokens(const struct gr_shm_restab *rt, const char *name,
                          uint32_t tokens, uint32_t pid);

/* The record of name, not expired at now_ns; 0 or -ENOENT. */
int gr_shm_res_get(const struct gr_shm_restab *rt, const char *name,
                   int64_t now_ns, struct gr_shm_res_view *out);

/* Free every record of name; 0, or -ENOENT when there was none. */
int gr_shm_res_drop(const struct gr_shm_restab *rt, const char *name,
                    uint32_t pid);

/*
 * Record i: 0 with *out when it is live (expired ones too: out says
 * when), -ENOENT when free or out of range, -EAGAIN when it is being
 * written or its values are out of range (counted as an anomaly).
 */
int gr_shm_res_read(const struct gr_shm_restab *rt, uint32_t i,
                    struct gr_shm_res_view *out);

/* Live records, not expired at now_ns, per kind (counts[GR_RES_NKINDS],
 * counts[0]: all). */
void gr_shm_res_count(const struct gr_shm_restab *rt, int64_t now_ns,
                      uint64_t counts[GR_RES_NKINDS]);

/*
 * Router only: free the records expired more than grace_ns before now_ns,
 * and those claimed by a writer that is dead (kill(pid, 0) -> ESRCH).
 * Returns how many were freed.
 */
unsigned gr_shm_res_router_sweep(const struct gr_shm_restab *rt,
                                 int64_t now_ns, int64_t grace_ns);

#endif
