/*
 * keys.c - turn a key spec from the config ("env:NAME", "file:PATH" or a
 * literal) into the API key itself.
 *
 * Keys are secrets.  The invariants here: neither a key nor its spec ever
 * reaches an error message, and every buffer that held a key on the way
 * is wiped with explicit_bzero before it is released.  A key is never
 * judged by its prefix (Google may change it); it only has to be 1..127
 * printable characters with no space, because it ends up in an HTTP
 * header where a newline would be an injection.
 */
#include "config_priv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool
key_chars_ok(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool
env_name_ok(const char *name)
{
    size_t i;

    if (!(isalpha((unsigned char)name[0]) || name[0] == '_'))
        return false;
    for (i = 1; name[i] != '\0'; i++)
        if (!(isalnum((unsigned char)name[i]) || name[i] == '_'))
            return false;
    return true;
}

static int
from_env(const char *name, char *out, char *why, size_t whylen)
{
    const char *v;
    size_t n;

    /*
     * Nothing after "env:" is ever echoed, not even a good variable name:
     * a key pasted there by mistake ("env:AIza...") is a good name too.
     * The caller's FILE:LINE and key position say which spec is meant.
     */
    if (name[0] == '\0') {
        snprintf(why, whylen, "empty variable name after 'env:'");
        return -EINVAL;
    }
    if (!env_name_ok(name)) {
        snprintf(why, whylen, "bad variable name after 'env:': use "
                 "letters, digits and '_'");
        return -EINVAL;
    }
    v = getenv(name);
    if (v == NULL) {
        snprintf(why, whylen, "environment variable is not set");
        return -ENOENT;
    }
    n = strlen(v);
    if (n == 0) {
        snprintf(why, whylen, "environment variable is empty");
        return -EINVAL;
    }
    if (n > GR_CFG_KEY_MAX - 1) {
        snprintf(why, whylen, "environment variable holds more than %d "
                 "characters", GR_CFG_KEY_MAX - 1);
        return -EINVAL;
    }
    if (!key_chars_ok(v, n)) {
        snprintf(why, whylen, "environment variable holds a space or "
                 "control character");
        return -EINVAL;
    }
    memcpy(out, v, n + 1);
    return 0;
}

/* Reads the whole file into buf; -EFBIG when it does not fit, -EINVAL
 * when it is not a regular file. */
int
gr_cfg_read_small_file(const char *path, char *buf, size_t buflen, size_t *len)
{
    struct stat st;
    size_t n = 0;
    int fd, rc = 0;

    /* O_NONBLOCK: a FIFO put there by mistake must not hang a reload. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, buflen - n);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == buflen) {
            char extra;

            r = read(fd, &extra, 1);
            if (r > 0)
                rc = -EFBIG;
            break;
        }
    }
    *len = n;
out:
    close(fd);
    return rc;
}

static int
from_file(const char *rel, const char *dir, char *out, char *why,
          size_t whylen)
{
    char path[4096], buf[GR_CFG_KEYFILE_MAX];
    size_t len = 0, b, e;
    int rc;

    /* The path is never echoed: it may be a key pasted after "file:". */
    if (rel[0] == '\0') {
        snprintf(why, whylen, "empty path after 'file:'");
        return -EINVAL;
    }
    rc = gr_cfg_path_join(dir, rel, path, sizeof(path));
    if (rc < 0) {
        snprintf(why, whylen, "cannot read key file: %s", strerror(-rc));
        return rc;
    }
    rc = gr_cfg_read_small_file(path, buf, sizeof(buf), &len);
    if (rc == -EINVAL) {
        snprintf(why, whylen, "key file is not a regular file");
        goto out;
    }
    if (rc == -EFBIG) {
        snprintf(why, whylen, "key file holds more than %d characters",
                 GR_CFG_KEY_MAX - 1);
        goto out;
    }
    if (rc < 0) {
        snprintf(why, whylen, "cannot read key file: %s", strerror(-rc));
        goto out;
    }
    /* Trimmed: secret files usually end with a newline, sometimes CRLF. */
    for (b = 0; b < len && isspace((unsigned char)buf[b]); b++)
        ;
    for (e = len; e > b && isspace((unsigned char)buf[e - 1]); e--)
        ;
    rc = -EINVAL;
    if (e == b)
        snprintf(why, whylen, "key file is empty");
    else if (e - b > GR_CFG_KEY_MAX - 1)
        snprintf(why, whylen, "key file holds more than %d characters",
                 GR_CFG_KEY_MAX - 1);
    else if (!key_chars_ok(buf + b, e - b))
        snprintf(why, whylen, "key file holds a space or control "
                 "character inside the key");
    else {
        memcpy(out, buf + b, e - b);
        out[e - b] = '\0';
        rc = 0;
    }
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

static int
from_literal(const char *v, char *out, char *why, size_t whylen)
{
    size_t n = strlen(v);

    if (n == 0) {
        snprintf(why, whylen, "empty key");
        return -EINVAL;
    }
    if (n > GR_CFG_KEY_MAX - 1) {
        snprintf(why, whylen, "literal key holds more than %d characters",
                 GR_CFG_KEY_MAX - 1);
        return -EINVAL;
    }
    if (!key_chars_ok(v, n)) {
        snprintf(why, whylen, "literal key holds a space or control "
                 "character");
        return -EINVAL;
    }
    memcpy(out, v, n + 1);
    return 0;
}

int
gr_cfg_key_resolve(const char *spec, const char *dir,
                   char out[GR_CFG_KEY_MAX], char *why, size_t whylen)
{
    int rc;

    why[0] = '\0';
    if (strncmp(spec, "env:", 4) == 0)
        rc = from_env(spec + 4, out, why, whylen);
    else if (strncmp(spec, "file:", 5) == 0)
        rc = from_file(spec + 5, dir, out, why, whylen);
    else
        rc = from_literal(spec, out, why, whylen);
    if (rc < 0)
        explicit_bzero(out, GR_CFG_KEY_MAX);
    return rc;
}
