/*
 * companion.c - opening the segments beside the table (companion.h),
 * written once for all of them: the resource and batch records, the
 * history ring and the cluster view.
 *
 * Invariant protected: a companion is mapped only after its owner and
 * mode were checked on the descriptor that is mapped (fstat, so the name
 * cannot be swapped in between), the router adopts only a segment it
 * owns, and a segment the router makes is never seen half made: it is
 * created O_EXCL with mode 0600, given its group and mode before it has
 * a size, and its magic is stored last, a release.
 */
#include "companion.h"
#include "table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void
gr_shm_say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int
gr_shm_comp_name(const char *table, const char *suffix, char *out, size_t n)
{
    table = gr_shm_default_name(table);
    if ((size_t)snprintf(out, n, "%s%s", table, suffix) >= n)
        return -ENAMETOOLONG;
    return 0;
}

/* Map the whole segment fd, which st describes, into *c: 0, or -errno
 * with a sentence. */
static int
map_fd(const char *name, int fd, const struct stat *st, bool writable,
       struct gr_shm_comp *c, char *err, size_t errlen)
{
    void *base = mmap(NULL, (size_t)st->st_size,
                      writable ? PROT_READ | PROT_WRITE : PROT_READ,
                      MAP_SHARED, fd, 0);
    int rc;

    if (base == MAP_FAILED) {
        rc = -errno;
        gr_shm_say(err, errlen, "gemroute: mmap(%s): %s", name,
                   strerror(-rc));
        return rc;
    }
    c->base = base;
    c->size = (size_t)st->st_size;
    c->uid = st->st_uid;
    c->dev = (uint64_t)st->st_dev;
    c->ino = (uint64_t)st->st_ino;
    return 0;
}

int
gr_shm_comp_map(const char *name, bool writable, size_t min,
                const char *what, struct gr_shm_comp *c, char *err,
                size_t errlen)
{
    struct stat st;
    int fd, rc;

    memset(c, 0, sizeof(*c));
    fd = shm_open(name, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        if (rc == -ENOENT)
            gr_shm_say(err, errlen, "gemroute: shm_open(%s): no %s (is "
                       "gemrouted running?)", name, what);
        else
            gr_shm_say(err, errlen, "gemroute: shm_open(%s): %s", name,
                       strerror(-rc));
        return rc;
    }
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        gr_shm_say(err, errlen, "gemroute: fstat(%s): %s", name,
                   strerror(-rc));
        goto fail;
    }
    if ((rc = gr_shm_trusts(name, &st, err, errlen)) != 0)
        goto fail;
    if ((size_t)st.st_size < min) {
        gr_shm_say(err, errlen, "gemroute: %s is too small to be a %s",
                   name, what);
        rc = -EPROTO;
        goto fail;
    }
    rc = map_fd(name, fd, &st, writable, c, err, errlen);
fail:
    close(fd);
    return rc;
}

int
gr_shm_comp_adopt(const char *name, size_t size, const char *what,
                  struct gr_shm_comp *c, char *err, size_t errlen)
{
    int rc = gr_shm_comp_map(name, true, size, what, c, err, errlen);

    if (rc != 0)
        return rc;
    if (c->uid != geteuid() || c->size != size) {
        gr_shm_say(err, errlen, "gemroute: %s is not this router's %s of "
                   "this size", name, what);
        gr_shm_comp_unmap(c);
        return -ESTALE;
    }
    return 0;
}

int
gr_shm_comp_create(const char *name, size_t size, unsigned mode, gid_t gid,
                   bool replace, struct gr_shm_comp *c, char *err,
                   size_t errlen)
{
    struct stat st;
    int fd, rc;

    memset(c, 0, sizeof(*c));
    if (replace)
        (void)shm_unlink(name);
    fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        gr_shm_say(err, errlen, "gemroute: shm_open(%s): %s", name,
                   strerror(-rc));
        return rc;
    }
    /* fchmod: the umask may have taken bits off; the group comes first so
     * that group bits never apply to the wrong group. */
    if ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) != 0) ||
        fchmod(fd, (mode_t)mode) != 0 || ftruncate(fd, (off_t)size) != 0 ||
        fstat(fd, &st) != 0) {
        rc = -errno;
        gr_shm_say(err, errlen, "gemroute: preparing %s: %s", name,
                   strerror(-rc));
        goto fail;
    }
    rc = map_fd(name, fd, &st, true, c, err, errlen);
fail:
    close(fd);
    if (rc != 0)
        (void)shm_unlink(name);
    return rc;
}

void
gr_shm_comp_unmap(struct gr_shm_comp *c)
{
    if (c->base != NULL)
        munmap(c->base, c->size);
    c->base = NULL;
    c->size = 0;
}
