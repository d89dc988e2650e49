/*
 * errors.c - the list of errors a load collects, each one line
 * "FILE:LINE: what is wrong" (or "FILE: what is wrong" for a whole file).
 *
 * Errors are found section by section (router, models, projects, then
 * cross-checks) but read best in the order of the file, so the list is
 * sorted when the load ends: main file first, then the other files in the
 * order errors first named them, each by line; errors of one line keep
 * the order they were found in.  An error line never holds a newline or a
 * control character: whatever it echoes went through gr_cfg_shown().
 */
#include "config_priv.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 512

/* Where an error points: file, then line, then order of discovery. */
struct gr_cfg_errpos {
    unsigned file;                  /* index in el->files */
    int line;
    unsigned seq;
};

static unsigned
file_rank(struct gr_cfg_errlist *el, const char *file)
{
    char **files;
    unsigned i;

    for (i = 0; i < el->n_files; i++)
        if (strcmp(el->files[i], file) == 0)
            return i;
    files = realloc(el->files, (i + 1) * sizeof(*files));
    if (files == NULL) {
        el->nomem = true;
        return UINT_MAX;            /* sorts last; the line still counts */
    }
    el->files = files;
    files[i] = strdup(file);
    if (files[i] == NULL) {
        el->nomem = true;
        return UINT_MAX;
    }
    el->n_files++;
    return i;
}

static void
push(struct gr_cfg_errlist *el, char *line, const char *file, int lno)
{
    struct gr_cfg_errors *errs = el->errs;
    unsigned n = errs->n;

    if (n == el->cap) {
        unsigned cap = el->cap ? el->cap * 2 : 8;
        char **lines = realloc(errs->lines, cap * sizeof(*lines));
        struct gr_cfg_errpos *pos;

        if (lines != NULL)
            errs->lines = lines;
        pos = realloc(el->pos, cap * sizeof(*pos));
        if (pos != NULL)
            el->pos = pos;
        if (lines == NULL || pos == NULL) {
            free(line);
            el->nomem = true;
            return;
        }
        el->cap = cap;
    }
    errs->lines[n] = line;
    el->pos[n].file = file_rank(el, file);
    el->pos[n].line = lno;
    el->pos[n].seq = n;
    errs->n++;
}

void
gr_cfg_err_init(struct gr_cfg_errlist *el, struct gr_cfg_errors *errs,
                const char *main_file)
{
    memset(el, 0, sizeof(*el));
    el->errs = errs;
    errs->n = 0;
    errs->lines = NULL;
    file_rank(el, main_file);
}

void
gr_cfg_err_add(struct gr_cfg_errlist *el, const char *file, int line,
               const char *fmt, ...)
{
    char msg[MSG_MAX], where[4096], *out = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gr_cfg_shown(file, where, sizeof(where));
    if (line == GR_CFG_NO_LINE)
        n = asprintf(&out, "%s: %s", where, msg);
    else
        n = asprintf(&out, "%s:%d: %s", where, line, msg);
    if (n < 0) {
        el->nomem = true;
        return;
    }
    push(el, out, file, line);
}

static int
pos_cmp(const void *a, const void *b)
{
    const struct gr_cfg_errpos *x = a, *y = b;

    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void
gr_cfg_err_done(struct gr_cfg_errlist *el)
{
    struct gr_cfg_errors *errs = el->errs;
    char **lines = NULL;
    unsigned i;

    if (errs->n > 1 && el->pos != NULL)
        lines = malloc(errs->n * sizeof(*lines));
    if (lines != NULL) {            /* unsorted is still correct */
        qsort(el->pos, errs->n, sizeof(*el->pos), pos_cmp);
        for (i = 0; i < errs->n; i++)
            lines[i] = errs->lines[el->pos[i].seq];
        memcpy(errs->lines, lines, errs->n * sizeof(*lines));
        free(lines);
    }
    free(el->pos);
    for (i = 0; i < el->n_files; i++)
        free(el->files[i]);
    free(el->files);
    el->pos = NULL;
    el->files = NULL;
    el->n_files = 0;
}
