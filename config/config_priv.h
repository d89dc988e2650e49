/*
 * config_priv.h - what the files of config/ share with each other.  Not
 * for other modules: they see config.h only.  No libconfig type appears
 * here (STYLE.md: a third-party library is wrapped in one .c).
 */
#ifndef GR_CONFIG_PRIV_H
#define GR_CONFIG_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Bytes read from a key file at most; a bigger file cannot hold one key. */
#define GR_CFG_KEYFILE_MAX 4096

/*
 * Resolve one key spec: "env:NAME", "file:PATH" (a relative PATH is taken
 * from dir) or anything else as the key itself.  On success out holds the
 * key (NUL-terminated, at most GR_CFG_KEY_MAX - 1 characters) and 0 is
 * returned.  On failure returns -errno and writes into why one short
 * sentence that holds neither the key nor anything of spec (not the
 * variable's name, not the path: a key pasted as "env:AIza..." would
 * show); the caller names the key by its project and position.
 */
int gr_cfg_key_resolve(const char *spec, const char *dir,
                       char out[GR_CFG_KEY_MAX], char *why, size_t whylen);

/* The whole regular file path into buf[0..buflen): 0 with *len set,
 * -EFBIG when it holds more, -EINVAL when it is not a regular file,
 * else -errno.  A FIFO never blocks (O_NONBLOCK). */
int gr_cfg_read_small_file(const char *path, char *buf, size_t buflen,
                           size_t *len);

/* The directory part of path: "." when it has none, "/" for "/x". */
int gr_cfg_path_dir(const char *path, char *out, size_t outlen);

/* rel taken from dir: rel itself when absolute or when dir is ".". */
int gr_cfg_path_join(const char *dir, const char *rel, char *out,
                     size_t outlen);

/*
 * Copy s into out (outlen >= 8) for a message: control and non-ASCII
 * bytes become '?', and a long s is cut with "...".  Returns out.
 */
const char *gr_cfg_shown(const char *s, char *out, size_t outlen);

/* Errors being collected (errors.c). */
#define GR_CFG_NO_LINE (-1)         /* an error about a whole file */

struct gr_cfg_errpos;

struct gr_cfg_errlist {
    struct gr_cfg_errors *errs;     /* the caller's list, filled here */
    struct gr_cfg_errpos *pos;      /* parallel to errs->lines */
    unsigned cap;
    char **files;                   /* files named by errors, main first */
    unsigned n_files;
    bool nomem;                     /* an error could not be recorded */
};

void gr_cfg_err_init(struct gr_cfg_errlist *el, struct gr_cfg_errors *errs,
                     const char *main_file);

/* "FILE:LINE: message", or "FILE: message" for GR_CFG_NO_LINE. */
void gr_cfg_err_add(struct gr_cfg_errlist *el, const char *file, int line,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sort the lines (file, then line) and free the bookkeeping. */
void gr_cfg_err_done(struct gr_cfg_errlist *el);

/*
 * The cluster section (cluster.c).  group is the libconfig setting of
 * "cluster" (a void pointer: no libconfig type appears here); errors go
 * to rd (settings_priv.h), whose directory resolves a relative "file:"
 * password.
 */
struct gr_cfg_rd;
void gr_cfg_cluster_load(const void *group, struct gr_cfg_cluster *out,
                         struct gr_cfg_rd *rd);

/* Config files read back as text (source.c). */
struct gr_cfg_src;

struct gr_cfg_srcs {
    struct gr_cfg_src *v;
    unsigned n;
};

/* Line line (from 1) of path without its newline, or NULL. */
const char *gr_cfg_src_line(struct gr_cfg_srcs *srcs, const char *path,
                            int line, size_t *len);

/* Line line (from 1) of path and all that follows it, or NULL. */
const char *gr_cfg_src_rest(struct gr_cfg_srcs *srcs, const char *path,
                            int line, size_t *len);

/* Wipes the text (it may hold keys) and frees it. */
void gr_cfg_src_free(struct gr_cfg_srcs *srcs);

/*
 * libconfig 1.5 reads "tpm = 5000000000;" as a 32-bit int and wraps it
 * without a word.  text is the setting's line (its first first_len bytes)
 * and what follows it, since the '=' and the value may be on later lines.
 * True when an assignment of name that starts on that line gives a
 * number that does not fit in 32 bits, and no such assignment gives v;
 * digits gets that number as written.
 */
bool gr_cfg_int_wrapped(const char *text, size_t len, size_t first_len,
                        const char *name, int64_t v, char *digits,
                        size_t dlen);

#endif
