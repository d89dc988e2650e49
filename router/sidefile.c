/*
 * sidefile.c - writing and reading the router's files beside the state
 * file (sidefile.h), once for all of them.
 *
 * Invariant protected: a reader of one of these files finds the old file
 * or the whole new one (written to a new temporary, synced, renamed
 * over), and the router neither writes through a link someone else put
 * in its directory nor reads a file it does not own.
 */
#include "router.h"
#include "sidefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

FILE *
gr_rtr_file_begin(const char *path, const char *what, char *tmp,
                  size_t tmplen, int *rc)
{
    FILE *f;
    int fd = -1;

    *rc = 0;
    if ((size_t)snprintf(tmp, tmplen, "%s.tmp", path) >= tmplen)
        *rc = -ENAMETOOLONG;
    else if (unlink(tmp) != 0 && errno != ENOENT)
        *rc = -errno;
    else if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                        O_CLOEXEC, 0600)) < 0)
        *rc = -errno;
    if (*rc != 0) {
        gr_rtr_log("%s %s: %s", what, tmp, strerror(-*rc));
        return NULL;
    }
    if ((f = fdopen(fd, "w")) == NULL) {
        *rc = -ENOMEM;
        close(fd);
        unlink(tmp);
    }
    return f;
}

int
gr_rtr_file_commit(FILE *f, const char *tmp, const char *path,
                   const char *what)
{
    int rc = 0;

    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        gr_rtr_log("%s %s: %s", what, path, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}

FILE *
gr_rtr_file_open(const char *path, const char *what, const char *then,
                 struct stat *st, int *rc)
{
    FILE *f;
    int fd;

    *rc = 0;
    /* No symlink, no FIFO (O_NONBLOCK: the open must not wait). */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
              O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return NULL;
        *rc = -errno;
        if (*rc == -ELOOP)
            gr_rtr_log("%s %s is a symlink; ignored", what, path);
        else
            gr_rtr_log("%s %s: %s; %s", what, path, strerror(-*rc), then);
        return NULL;
    }
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) ||
        st->st_uid != geteuid()) {
        gr_rtr_log("%s %s is not a regular file of user %u; ignored", what,
                   path, (unsigned)geteuid());
        close(fd);
        *rc = -EPERM;
        return NULL;
    }
    if ((f = fdopen(fd, "r")) == NULL) {
        *rc = -ENOMEM;
        close(fd);
    }
    return f;
}

int
gr_rtr_file_records(FILE *f, const char *magic, const char *what,
                    unsigned head, size_t elsize, unsigned max,
                    int (*rec)(const char *line, unsigned lineno, void *elem,
                               void *arg),
                    void *arg, void **out, unsigned *n, char *why,
                    size_t whylen)
{
    char line[1024];
    unsigned cap = 0, lineno = 0, end = UINT_MAX;
    unsigned char *v = NULL;
    size_t mlen = strlen(magic);

    *n = 0;
    *out = NULL;
    while (fgets(line, sizeof(line), f) != NULL) {
        int used = 0;

        lineno++;
        if (strchr(line, '\n') == NULL)
            goto bad;
        if (lineno == 1) {
            if (strncmp(line, magic, mlen) != 0 ||
                strcmp(line + mlen, "\n") != 0) {
                snprintf(why, whylen, "not a gemroute %s", what);
                goto fail;
            }
        } else if (lineno <= 1 + head) {
            if (rec(line, lineno, NULL, arg) != 0)
                goto bad;
        } else if (end != UINT_MAX) {
            goto bad;               /* nothing after the end line */
        } else if (strncmp(line, "end ", 4) == 0) {
            if (sscanf(line, "end %u%n", &end, &used) != 1 || end != *n ||
                line[used] != '\n')
                goto bad;
        } else {
            if (*n == cap) {
                unsigned char *more;

                cap = cap ? cap * 2 : 64;
                if (cap > max || (more = realloc(v, cap * elsize)) == NULL)
                    goto bad;
                v = more;
            }
            memset(v + (size_t)*n * elsize, 0, elsize);
            if (rec(line, lineno, v + (size_t)*n * elsize, arg) != 0)
                goto bad;
            (*n)++;
        }
    }
    if (end == UINT_MAX) {
        snprintf(why, whylen, "truncated (no end line)");
        goto fail;
    }
    *out = v;
    return 0;
bad:
    snprintf(why, whylen, "line %u is damaged", lineno);
fail:
    free(v);
    *n = 0;
    return -EINVAL;
}
