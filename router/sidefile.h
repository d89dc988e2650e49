/*
 * sidefile.h - the router's files beside the state file (the state file
 * itself, STATE_FILE.res, .bj, .spend): written whole or not at all,
 * read only when they are ours.  Each caller keeps its own format.
 */
#ifndef GR_RTR_SIDEFILE_H
#define GR_RTR_SIDEFILE_H

#include <stdio.h>
#include <sys/stat.h>

/*
 * Begin writing path anew: "<path>.tmp" into tmp, created new (O_EXCL),
 * never through a symlink (O_NOFOLLOW; a leftover of ours is unlinked
 * first, which removes a link, not its target), mode 0600.  The stream,
 * or NULL with *rc = -errno (logged as "WHAT TMP: error").
 */
FILE *gr_rtr_file_begin(const char *path, const char *what, char *tmp,
                        size_t tmplen, int *rc);

/*
 * Flush, fsync and close f, then rename tmp over path: the old file or
 * the whole new one, never half.  0, or -errno (logged; tmp removed).
 */
int gr_rtr_file_commit(FILE *f, const char *tmp, const char *path,
                       const char *what);

/*
 * Open path to read: no symlink, no FIFO (the open must not wait), a
 * regular file of this user.  The stream with *st, or NULL with *rc:
 * 0 when there is none, else -errno, logged ("WHAT PATH: error; THEN").
 */
FILE *gr_rtr_file_open(const char *path, const char *what, const char *then,
                       struct stat *st, int *rc);

/*
 * Read a whole file of lines: the magic line ("not a gemroute WHAT"
 * otherwise), head more lines, the records, then "end N" with N the
 * number of records, and nothing after.  rec() reads line lineno, a
 * header one with elem NULL, a record into elem (elsize bytes, zeroed):
 * 0, or -EINVAL when the line is damaged.  At most max records.  0 with
 * *out (malloc'd, NULL when none) and *n, or -EINVAL with the reason in
 * why ("line 3 is damaged", "truncated (no end line)").
 */
int gr_rtr_file_records(FILE *f, const char *magic, const char *what,
                        unsigned head, size_t elsize, unsigned max,
                        int (*rec)(const char *line, unsigned lineno,
                                   void *elem, void *arg),
                        void *arg, void **out, unsigned *n, char *why,
                        size_t whylen);

#endif
