/*
 * source.c - config files read back as text, only to explain an error
 * better than libconfig's parse tree can: which file a failed @include
 * line names, and what number a setting was really given.
 *
 * The text may hold literal keys: it is wiped before it is freed.
 */
#include "config_priv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SRC_MAX (16 * 1024 * 1024)  /* bigger files are not read back */

struct gr_cfg_src {
    char *path;
    char *text;                     /* NUL-terminated; NULL: unreadable */
    size_t len;
    size_t *starts;                 /* offset of each line: no rescans */
    unsigned n_lines;
};

static void
src_read(struct gr_cfg_src *s)
{
    struct stat st;
    size_t at, n = 1;
    FILE *f;
    int fd;

    /* Without blocking, and regular files only: a FIFO must not hang us. */
    fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (f = fdopen(fd, "r")) == NULL) {
        close(fd);
        return;
    }
    if (st.st_size < SRC_MAX) {
        s->text = malloc((size_t)st.st_size + 1);
        if (s->text != NULL) {
            s->len = fread(s->text, 1, (size_t)st.st_size, f);
            s->text[s->len] = '\0';
        }
    }
    fclose(f);
    if (s->text == NULL)
        return;
    for (at = 0; at < s->len; at++)
        n += s->text[at] == '\n';
    s->starts = malloc(n * sizeof(*s->starts));
    if (s->starts == NULL) {
        explicit_bzero(s->text, s->len);
        free(s->text);
        s->text = NULL;
        return;
    }
    s->starts[s->n_lines++] = 0;
    for (at = 0; at < s->len; at++)
        if (s->text[at] == '\n')
            s->starts[s->n_lines++] = at + 1;
}

static const struct gr_cfg_src *
src_get(struct gr_cfg_srcs *srcs, const char *path)
{
    struct gr_cfg_src *s, *v;
    unsigned i;

    for (i = 0; i < srcs->n; i++)
        if (strcmp(srcs->v[i].path, path) == 0)
            return srcs->v[i].text ? &srcs->v[i] : NULL;
    v = realloc(srcs->v, (srcs->n + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    srcs->v = v;
    s = &v[srcs->n];
    memset(s, 0, sizeof(*s));
    s->path = strdup(path);
    if (s->path == NULL)
        return NULL;
    srcs->n++;
    src_read(s);                    /* an unreadable file is remembered */
    return s->text ? s : NULL;
}

const char *
gr_cfg_src_line(struct gr_cfg_srcs *srcs, const char *path, int line,
                size_t *len)
{
    const struct gr_cfg_src *s = src_get(srcs, path);
    const char *p, *e, *end;

    if (s == NULL || line < 1 || (unsigned)line > s->n_lines)
        return NULL;
    p = s->text + s->starts[line - 1];
    end = s->text + s->len;
    e = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((e ? e : end) - p);
    return p;
}

const char *
gr_cfg_src_rest(struct gr_cfg_srcs *srcs, const char *path, int line,
                size_t *len)
{
    const struct gr_cfg_src *s = src_get(srcs, path);
    const char *p;

    if (s == NULL || line < 1 || (unsigned)line > s->n_lines)
        return NULL;
    p = s->text + s->starts[line - 1];
    *len = (size_t)(s->text + s->len - p);
    return p;
}

void
gr_cfg_src_free(struct gr_cfg_srcs *srcs)
{
    unsigned i;

    for (i = 0; i < srcs->n; i++) {
        if (srcs->v[i].text != NULL) {
            explicit_bzero(srcs->v[i].text, srcs->v[i].len);
            free(srcs->v[i].text);
        }
        free(srcs->v[i].starts);
        free(srcs->v[i].path);
    }
    free(srcs->v);
    srcs->v = NULL;
    srcs->n = 0;
}

static bool
is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '*';
}

/*
 * Past blanks, line ends and comments ("#", "//" and C comments), as
 * libconfig's scanner skips them between a name, its '=' and its value.
 */
static const char *
skip_blank(const char *p, const char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
        } else if (*p == '#' || (*p == '/' && p + 1 < end && p[1] == '/')) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));

            p = nl != NULL ? nl : end;
        } else if (*p == '/' && p + 1 < end && p[1] == '*') {
            const char *q = memmem(p + 2, (size_t)(end - p - 2), "*/", 2);

            p = q != NULL ? q + 2 : end;
        } else {
            break;
        }
    }
    return p;
}

bool
gr_cfg_int_wrapped(const char *text, size_t len, size_t first_len,
                   const char *name, int64_t v, char *digits, size_t dlen)
{
    const char *p, *end = text + len, *first_end = text + first_len;
    size_t nlen = strlen(name);
    bool wrapped = false;

    if (first_len > len)
        first_end = end;
    /* The name is on the setting's own line; its value may come later. */
    for (p = text; p < first_end && p + nlen <= end; p++) {
        const char *q = p + nlen, *num;
        char tok[40], *ep;
        size_t t = 0;
        long long x;

        if (memcmp(p, name, nlen) != 0 ||
            (p > text && is_name_char(p[-1])) ||
            (q < end && is_name_char(*q)))
            continue;
        q = skip_blank(q, end);
        if (q == end || (*q != '=' && *q != ':'))
            continue;
        q = skip_blank(q + 1, end);
        while (q < end && t < sizeof(tok) - 1 &&
               (isalnum((unsigned char)*q) || *q == '-' || *q == '+'))
            tok[t++] = *q++;
        tok[t] = '\0';
        num = tok + (tok[0] == '-' || tok[0] == '+');
        if (!isdigit((unsigned char)num[0]))
            continue;
        errno = 0;
        x = strtoll(tok, &ep, (num[0] == '0' && (num[1] == 'x' ||
                                                 num[1] == 'X')) ? 16 : 10);
        if (*ep != '\0')
            continue;               /* "5L", "1.5": not a plain int */
        /*
         * The same name may appear in a string or a comment of the line:
         * one assignment that gives exactly the value read settles it.
         */
        if (errno == ERANGE || x < INT32_MIN || x > INT32_MAX) {
            wrapped = true;
            snprintf(digits, dlen, "%s", tok);
        } else if (x == v) {
            return false;
        }
    }
    return wrapped;
}
