/*
 * settings.c - read a config section against its table of settings
 * (settings_priv.h), and the FILE:LINE error helpers every section uses.
 *
 * The invariant this file protects: a setting of a table is stored into
 * its section's struct only once its type, range and length are right;
 * otherwise the default stays and exactly one error names the setting,
 * its file and its line.  Messages have one wording for every section:
 *
 *   wrong type for 'x' in router: expected an integer, found a string
 *   router.x must be between 1 and 64 (found 0)
 *   router.x is longer than 63 characters
 *   unknown key 'x' in router
 *
 * libconfig 1.5 wraps an integer too large for 32 bits without a word
 * (config.c's header says more); gr_cfg_get_int() refuses such a value
 * by looking at the text, for every section alike.
 */
#include "settings_priv.h"

#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 512
#define LABEL_MAX 160
#define SHOWN_MAX 48                /* how much of a value an error echoes */

/* Errors. */

/*
 * libconfig 1.5 records an included file as written in the @include line,
 * which is relative to the include directory (our main file's
 * directory); later versions record the path they opened.
 */
const char *
gr_cfg_file_named(const struct gr_cfg_rd *rd, const char *f, char *buf,
                  size_t len)
{
    if (f == NULL)
        return rd->path;
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7
    if (strcmp(f, rd->path) != 0 &&
        gr_cfg_path_join(rd->dir, f, buf, len) == 0)
        return buf;
#else
    (void)buf;
    (void)len;
#endif
    return f;
}

const char *
gr_cfg_file_of(const struct gr_cfg_rd *rd, const void *sp, char *buf,
               size_t len)
{
    const config_setting_t *s = sp;

    return gr_cfg_file_named(rd, config_setting_source_file(s), buf, len);
}

int
gr_cfg_line_of(const void *sp)
{
    const config_setting_t *s = sp;

    return (int)config_setting_source_line(s);
}

void
gr_cfg_err_at(struct gr_cfg_rd *rd, const void *sp, const char *fmt, ...)
{
    char msg[MSG_MAX], buf[PATH_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gr_cfg_err_add(rd->el, gr_cfg_file_of(rd, sp, buf, sizeof(buf)),
                   gr_cfg_line_of(sp), "%s", msg);
}

/* Typed access. */

const char *
gr_cfg_found(const void *sp)
{
    const config_setting_t *s = sp;

    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    }
    return "something else";
}

static void
wrong_type(struct gr_cfg_rd *rd, const config_setting_t *s, const char *what,
           const char *expected)
{
    gr_cfg_err_at(rd, s, "wrong type for %s: expected %s, found %s", what,
                  expected, gr_cfg_found(s));
}

/* See gr_cfg_int_wrapped(): the text tells what libconfig 1.5 wrapped. */
static bool
int_wrapped(struct gr_cfg_rd *rd, const config_setting_t *s, int64_t v,
            char *digits, size_t dlen)
{
    const char *name = config_setting_name(s), *file, *text;
    char buf[PATH_MAX];
    size_t len, first_len;

    if (name == NULL || rd->srcs == NULL)
        return false;
    file = gr_cfg_file_of(rd, s, buf, sizeof(buf));
    if (gr_cfg_src_line(rd->srcs, file, gr_cfg_line_of(s), &first_len) ==
        NULL)
        return false;
    text = gr_cfg_src_rest(rd->srcs, file, gr_cfg_line_of(s), &len);
    return text != NULL && gr_cfg_int_wrapped(text, len, first_len, name, v,
                                              digits, dlen);
}

bool
gr_cfg_get_int(struct gr_cfg_rd *rd, const void *sp, const char *what,
               int64_t *v)
{
    const config_setting_t *s = sp;
    char digits[40];

    if (config_setting_type(s) == CONFIG_TYPE_INT64) {
        *v = config_setting_get_int64(s);
        return true;
    }
    if (config_setting_type(s) != CONFIG_TYPE_INT) {
        wrong_type(rd, s, what, "an integer");
        return false;
    }
    *v = config_setting_get_int(s);
    if (int_wrapped(rd, s, *v, digits, sizeof(digits))) {
        gr_cfg_err_at(rd, s, "%s is too large for a plain integer: write "
                      "%sL", what, digits);
        return false;
    }
    return true;
}

bool
gr_cfg_get_bool(struct gr_cfg_rd *rd, const void *sp, const char *what,
                bool *v)
{
    const config_setting_t *s = sp;

    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        wrong_type(rd, s, what, "a boolean");
        return false;
    }
    *v = config_setting_get_bool(s) != 0;
    return true;
}

bool
gr_cfg_get_string(struct gr_cfg_rd *rd, const void *sp, const char *what,
                  const char **v)
{
    const config_setting_t *s = sp;

    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        wrong_type(rd, s, what, "a string");
        return false;
    }
    *v = config_setting_get_string(s);
    return *v != NULL;
}

static bool
get_double(struct gr_cfg_rd *rd, const config_setting_t *s,
           const char *what, double *v)
{
    int64_t x;

    if (config_setting_type(s) == CONFIG_TYPE_FLOAT) {
        *v = config_setting_get_float(s);
        return true;
    }
    if (config_setting_type(s) != CONFIG_TYPE_INT &&
        config_setting_type(s) != CONFIG_TYPE_INT64) {
        wrong_type(rd, s, what, "a number");
        return false;
    }
    if (!gr_cfg_get_int(rd, s, what, &x))
        return false;
    *v = (double)x;
    return true;
}

/* Rows. */

static void *
field(void *base, const struct gr_cfg_setting *row)
{
    return (char *)base + row->offset;
}

static void
store_int(void *base, const struct gr_cfg_setting *row, int64_t v)
{
    void *f = field(base, row);

    switch (row->type) {
    case GR_CFG_T_BOOL:
        *(bool *)f = v != 0;
        break;
    case GR_CFG_T_UINT:
        *(unsigned *)f = (unsigned)v;
        break;
    case GR_CFG_T_INT:
        *(int *)f = (int)v;
        break;
    case GR_CFG_T_I64:
        *(int64_t *)f = v;
        break;
    case GR_CFG_T_HAND:
        /* a hand row's default goes into a field of its size */
        if (row->size == sizeof(unsigned))
            *(unsigned *)f = (unsigned)v;
        else if (row->size == sizeof(int64_t))
            *(int64_t *)f = v;
        else if (row->size == sizeof(bool))
            *(bool *)f = v != 0;
        break;
    default:
        break;
    }
}

static bool
is_string_type(enum gr_cfg_type t)
{
    return t == GR_CFG_T_STRING || t == GR_CFG_T_ENUM ||
           t == GR_CFG_T_PATH || t == GR_CFG_T_SECRET;
}

void
gr_cfg_settings_defaults(const struct gr_cfg_setting *tab, void *base)
{
    const struct gr_cfg_setting *row;

    for (row = tab; row->name != NULL; row++) {
        if (row->size == 0)
            continue;               /* a hand row without a field */
        if (row->type == GR_CFG_T_DOUBLE)
            *(double *)field(base, row) = row->ddef;
        else if (is_string_type(row->type) ||
                 (row->type == GR_CFG_T_HAND && row->sdef != NULL))
            snprintf(field(base, row), row->size, "%s",
                     row->sdef != NULL ? row->sdef : "");
        else
            store_int(base, row, row->idef);
    }
}

const struct gr_cfg_setting *
gr_cfg_settings_row(const struct gr_cfg_setting *tab, const char *name)
{
    for (; tab->name != NULL; tab++)
        if (name != NULL && strcmp(tab->name, name) == 0)
            return tab;
    return NULL;
}

/* label: "router.x" or "x in project 'p'" */
static bool
read_string(struct gr_cfg_rd *rd, const config_setting_t *s,
            const struct gr_cfg_setting *row, const char *what,
            const char *label, void *base)
{
    char *out = field(base, row), shown[SHOWN_MAX], why[MSG_MAX - 64];
    size_t longest = row->size - 1;
    const char *v, *const *n;

    if (!gr_cfg_get_string(rd, s, what, &v))
        return false;
    if (row->hook != NULL && !row->hook(rd, s, row, what, label, v, base))
        return false;
    switch (row->type) {
    case GR_CFG_T_ENUM:
        for (n = row->names; *n != NULL; n++)
            if (strcmp(*n, v) == 0)
                break;
        if (*n == NULL || strlen(v) > longest) {
            char list[256] = "";
            size_t used = 0;

            for (n = row->names; *n != NULL && used < sizeof(list); n++)
                used += (size_t)snprintf(list + used, sizeof(list) - used,
                                         "%s\"%s\"", n == row->names ? "" :
                                         n[1] == NULL ? " or " : ", ", *n);
            gr_cfg_err_at(rd, s, "%s must be %s (found \"%s\")", label, list,
                          gr_cfg_shown(v, shown, sizeof(shown)));
            return false;
        }
        break;
    case GR_CFG_T_PATH:
        if (v[0] == '\0')
            return true;            /* unset: the default stays */
        if (row->hi > 0 && (size_t)row->hi < longest)
            longest = (size_t)row->hi;
        if (gr_cfg_path_join(rd->dir, v, out, row->size) < 0 ||
            strlen(out) > longest) {
            out[0] = '\0';
            gr_cfg_err_at(rd, s, "%s is longer than %zu characters", label,
                          longest);
            return false;
        }
        return true;
    case GR_CFG_T_SECRET:
        /* The value is never echoed: not the variable, not the path. */
        if (!(row->flags & GR_CFG_F_LITERAL) &&
            strncmp(v, "env:", 4) != 0 && strncmp(v, "file:", 5) != 0) {
            gr_cfg_err_at(rd, s, "%s must be \"env:NAME\" or \"file:PATH\", "
                          "never the %s itself", label, row->name);
            return false;
        }
        if (row->size < GR_CFG_KEY_MAX) {
            gr_cfg_err_at(rd, s, "%s: no room for a secret", label);
            return false;
        }
        if (gr_cfg_key_resolve(v, rd->dir, out, why, sizeof(why)) < 0) {
            explicit_bzero(out, row->size);
            gr_cfg_err_at(rd, s, "%s: %s", label, why);
            return false;
        }
        return true;
    default:
        break;
    }
    if (strlen(v) > longest) {
        gr_cfg_err_at(rd, s, "%s is longer than %zu characters", label,
                      longest);
        return false;
    }
    strcpy(out, v);
    return true;
}

/* One row whose setting s is present.  True when it was stored. */
static bool
read_row(struct gr_cfg_rd *rd, const config_setting_t *s,
         const struct gr_cfg_setting *row, const char *what,
         const char *label, void *base)
{
    int64_t x;
    double d;
    bool b;

    switch (row->type) {
    case GR_CFG_T_HAND:
        return row->hook == NULL ||
               row->hook(rd, s, row, what, label, NULL, base);
    case GR_CFG_T_BOOL:
        if (!gr_cfg_get_bool(rd, s, what, &b))
            return false;
        store_int(base, row, b);
        return true;
    case GR_CFG_T_UINT:
    case GR_CFG_T_INT:
    case GR_CFG_T_I64:
        if (!gr_cfg_get_int(rd, s, what, &x))
            return false;
        if (x < row->lo || x > row->hi) {
            gr_cfg_err_at(rd, s, "%s must be between %lld and %lld (found "
                          "%lld)", label, (long long)row->lo,
                          (long long)row->hi, (long long)x);
            return false;
        }
        store_int(base, row, x);
        return true;
    case GR_CFG_T_DOUBLE:
        if (!get_double(rd, s, what, &d))
            return false;
        if ((row->flags & GR_CFG_F_LO_OPEN) &&
            !(d > row->dlo && d <= row->dhi)) {
            gr_cfg_err_at(rd, s, "%s must be in (%g, %g] (found %g)", label,
                          row->dlo, row->dhi, d);
            return false;
        }
        if (!(d >= row->dlo && d <= row->dhi)) {
            gr_cfg_err_at(rd, s, "%s must be between %.10g and %.10g (found "
                          "%.10g)", label, row->dlo, row->dhi, d);
            return false;
        }
        *(double *)field(base, row) = d;
        return true;
    case GR_CFG_T_STRING:
    case GR_CFG_T_ENUM:
    case GR_CFG_T_PATH:
    case GR_CFG_T_SECRET:
        return read_string(rd, s, row, what, label, base);
    }
    return false;
}

void
gr_cfg_settings_unknown(struct gr_cfg_rd *rd, const void *gp,
                        const struct gr_cfg_setting *tab, const char *in)
{
    const config_setting_t *g = gp;
    int i, n = config_setting_length(g);

    for (i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);

        if (gr_cfg_settings_row(tab, config_setting_name(m)) == NULL)
            gr_cfg_err_at(rd, m, "unknown key '%s' %s",
                          config_setting_name(m), in);
    }
}

unsigned
gr_cfg_settings_read(struct gr_cfg_rd *rd, const void *gp,
                     const struct gr_cfg_setting *tab, const char *section,
                     const char *where, void *base, unsigned char *state)
{
    const config_setting_t *g = gp;
    const struct gr_cfg_setting *row;
    unsigned before = rd->el->errs->n;
    char in[LABEL_MAX], what[2 * LABEL_MAX], label[2 * LABEL_MAX];

    if (section != NULL)
        snprintf(in, sizeof(in), "in %s", section);
    else
        snprintf(in, sizeof(in), "%s", where);
    for (row = tab; row->name != NULL; row++) {
        const config_setting_t *s = config_setting_get_member(g, row->name);
        unsigned char st = GR_CFG_ABSENT;

        /* "cluster needs 'redis'", "the price of 'm' needs 'input'" */
        if (s == NULL && (row->flags & GR_CFG_F_REQUIRED))
            gr_cfg_err_at(rd, g, "%s needs '%s' (%s)",
                          section != NULL ? section :
                          strncmp(in, "in ", 3) == 0 ? in + 3 : in,
                          row->name,
                          row->need != NULL ? row->need : "required");
        if (s != NULL) {
            snprintf(what, sizeof(what), "'%s' %s", row->name, in);
            if (section != NULL)
                snprintf(label, sizeof(label), "%s.%s", section, row->name);
            else
                snprintf(label, sizeof(label), "%s %s", row->name, in);
            st = read_row(rd, s, row, what, label, base) ? GR_CFG_SET
                                                         : GR_CFG_BAD;
        }
        if (state != NULL)
            state[row - tab] = st;
    }
    return rd->el->errs->n - before;
}

/* Restart-only settings. */

static bool
differs(const struct gr_cfg_setting *row, const void *a, const void *b)
{
    const char *fa = (const char *)a + row->offset;
    const char *fb = (const char *)b + row->offset;

    if (row->size == 0)
        return false;
    if (is_string_type(row->type) ||
        (row->type == GR_CFG_T_HAND && row->sdef != NULL))
        return strncmp(fa, fb, row->size) != 0;
    if (row->type == GR_CFG_T_DOUBLE)
        return *(const double *)fa != *(const double *)fb;
    return memcmp(fa, fb, row->size) != 0;
}

unsigned
gr_cfg_settings_changed(const struct gr_cfg_setting *tab, const void *a,
                        const void *b, unsigned flags, char *out,
                        size_t outlen)
{
    const struct gr_cfg_setting *row;
    unsigned n = 0;
    size_t used = 0;

    if (outlen > 0)
        out[0] = '\0';
    for (row = tab; row->name != NULL; row++) {
        if ((row->flags & flags) != flags || !differs(row, a, b))
            continue;
        if (used < outlen)
            used += (size_t)snprintf(out + used, outlen - used, "%s%s",
                                     n > 0 ? ", " : "", row->name);
        n++;
    }
    return n;
}
