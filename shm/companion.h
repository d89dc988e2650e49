/*
 * companion.h - the segments beside the table ("NAME.res", "NAME.bj",
 * "NAME.hist", "NAME.cluster"): naming one, mapping one a reader may
 * trust, and the router's side: adopting its own, making one anew and
 * publishing its header.  Each companion keeps its own magic, ABI and
 * records; this file only holds what opening any of them has in common.
 */
#ifndef GR_SHM_COMPANION_H
#define GR_SHM_COMPANION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A companion as mapped. */
struct gr_shm_comp {
    void *base;
    size_t size;                    /* bytes mapped (the segment's size) */
    uid_t uid;                      /* its owner, from fstat of its fd */
    uint64_t dev, ino;              /* its identity, from the same fstat */
};

/* err, when not NULL, gets the sentence fmt makes (cut at errlen). */
void gr_shm_say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<table><suffix>" (table NULL or "" = the default table) into out;
 * 0, or -ENAMETOOLONG. */
int gr_shm_comp_name(const char *table, const char *suffix, char *out,
                     size_t n);

/*
 * Map the existing segment name (read-write when writable) whose owner
 * and mode a client trusts (gr_shm_trusts(), on the descriptor) and that
 * has at least min bytes.  what names it in sentences ("batch record").
 * 0 with *c, or -errno with a sentence: -ENOENT when there is none,
 * -EPERM when it is not to be trusted, -EPROTO when too small.
 */
int gr_shm_comp_map(const char *name, bool writable, size_t min,
                    const char *what, struct gr_shm_comp *c, char *err,
                    size_t errlen);

/*
 * Router only: gr_shm_comp_map() read-write of a segment this user owns,
 * of exactly size bytes (-ESTALE otherwise, unmapped).  The caller checks
 * its header and keeps its records, or gr_shm_comp_unmap()s and makes it
 * anew.
 */
int gr_shm_comp_adopt(const char *name, size_t size, const char *what,
                      struct gr_shm_comp *c, char *err, size_t errlen);

/*
 * Router only: make name anew (O_EXCL; a stale one unlinked first when
 * replace) of size bytes, the group (gid -1 = none) given before the
 * mode so that group bits never apply to the wrong group, and map it
 * read-write.  On failure nothing is left under the name.  0 with *c
 * (zero-filled), or -errno with a sentence.  The caller fills the header
 * and publishes it with gr_shm_comp_publish().
 */
int gr_shm_comp_create(const char *name, size_t size, unsigned mode,
                       gid_t gid, bool replace, struct gr_shm_comp *c,
                       char *err, size_t errlen);

/* Store the magic last, a release: a process that sees it sees the
 * header written before (readers load it with an acquire, or check every
 * field anyway). */
static inline void
gr_shm_comp_publish(uint64_t *magic, uint64_t value)
{
    __atomic_store_n(magic, value, __ATOMIC_RELEASE);
}

void gr_shm_comp_unmap(struct gr_shm_comp *c);

#endif
