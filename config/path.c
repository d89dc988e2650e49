/*
 * path.c - the few path and text helpers of config/: where a relative
 * path in a config file points, and how a value from the file is shown in
 * an error line.  Paths are resolved against the config file's directory,
 * never against wherever the router happens to run, so a config means the
 * same thing to `gemrouted --check` and to the running router.
 */
#include "config_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
gr_cfg_path_dir(const char *path, char *out, size_t outlen)
{
    const char *slash = strrchr(path, '/');
    size_t n;

    if (slash == NULL) {
        n = 1;
        path = ".";
    } else if (slash == path) {
        n = 1;                      /* "/x": the root */
    } else {
        n = (size_t)(slash - path);
    }
    if (n + 1 > outlen)
        return -ENAMETOOLONG;
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

int
gr_cfg_path_join(const char *dir, const char *rel, char *out, size_t outlen)
{
    int n;

    if (rel[0] == '/' || strcmp(dir, ".") == 0)
        n = snprintf(out, outlen, "%s", rel);
    else if (strcmp(dir, "/") == 0)
        n = snprintf(out, outlen, "/%s", rel);
    else
        n = snprintf(out, outlen, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= outlen)
        return -ENAMETOOLONG;
    return 0;
}

const char *
gr_cfg_shown(const char *s, char *out, size_t outlen)
{
    size_t i, keep = outlen - 1;

    if (strlen(s) > keep)
        keep = outlen - 4;          /* room for "..." */
    for (i = 0; s[i] != '\0' && i < keep; i++) {
        unsigned char c = (unsigned char)s[i];

        /* One error is one line: nothing may break or colour it. */
        out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    if (s[i] != '\0') {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}
