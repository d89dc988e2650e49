/*
 * aliases.c - the `aliases` list of the config file, read and checked
 * with the rest of it (config.c calls gr_cfg_aliases_load() once the
 * models are loaded):
 *
 *   aliases = (
 *     { name = "flash"; model = "gemini-2.5-flash"; },
 *     { name = "gemini-flash-latest"; model = "gemini-2.5-flash"; }
 *   );
 *
 * Invariant protected: an alias names a model of `models` (never another
 * alias), is not itself the name of a model, appears once, and there are
 * at most GR_CFG_ALIAS_MAX of them; every error is FILE:LINE.
 */
#include "aliases.h"
#include "aliases_priv.h"

#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 512
#define SHOWN_MAX 80

static const char *const alias_keys[] = {"name", "model", NULL};

struct a_load {
    const char *path;
    const char *dir;
    struct gr_cfg_errlist *el;
};

static void err_at(struct a_load *ld, const config_setting_t *s,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The file of s as config.c names it (libconfig 1.5 records an included
 * file relative to the include directory). */
static void
err_at(struct a_load *ld, const config_setting_t *s, const char *fmt, ...)
{
    char msg[MSG_MAX], buf[PATH_MAX];
    const char *f = config_setting_source_file(s);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (f == NULL)
        f = ld->path;
#if LIBCONFIG_VER_MAJOR == 1 && LIBCONFIG_VER_MINOR < 7
    else if (strcmp(f, ld->path) != 0 &&
             gr_cfg_path_join(ld->dir, f, buf, sizeof(buf)) == 0)
        f = buf;
#else
    (void)buf;
#endif
    gr_cfg_err_add(ld->el, f, (int)config_setting_source_line(s), "%s",
                   msg);
}

static bool
name_chars_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
              *s == '_'))
            return false;
    return true;
}

/* A name-like string member `key` of alias entry g: NULL after an error. */
static const char *
get_name(struct a_load *ld, const config_setting_t *g, const char *key,
         unsigned i)
{
    const config_setting_t *s = config_setting_get_member(g, key);
    char shown[SHOWN_MAX];
    const char *v;

    if (s == NULL) {
        err_at(ld, g, "missing %s in alias #%u", key, i + 1);
        return NULL;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        err_at(ld, s, "wrong type for '%s' in alias #%u: expected a string",
               key, i + 1);
        return NULL;
    }
    v = config_setting_get_string(s);
    if (v[0] == '\0' || strlen(v) >= GR_CFG_NAME_MAX || !name_chars_ok(v)) {
        err_at(ld, s, "bad %s \"%s\" in alias #%u: 1 to %d letters, digits, "
               "'.', '-' and '_'", key, gr_cfg_shown(v, shown, sizeof(shown)),
               i + 1, GR_CFG_NAME_MAX - 1);
        return NULL;
    }
    return v;
}

static int
model_of(const struct gr_cfg *cfg, const char *name)
{
    unsigned m;

    for (m = 0; m < cfg->n_models; m++)
        if (strcmp(cfg->models[m].name, name) == 0)
            return (int)m;
    return -1;
}

static void
load_one(struct a_load *ld, const struct gr_cfg *cfg,
         const config_setting_t *g, unsigned i, struct gr_cfg_aliases *a)
{
    const char *name, *model;
    unsigned k;
    int m, line = (int)config_setting_source_line(g);

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err_at(ld, g, "wrong type for alias #%u: expected a group { name = "
               "\"ALIAS\"; model = \"MODEL\"; }", i + 1);
        return;
    }
    for (k = 0; k < (unsigned)config_setting_length(g); k++) {
        const config_setting_t *s = config_setting_get_elem(g, k);
        unsigned j;

        for (j = 0; alias_keys[j] != NULL; j++)
            if (strcmp(alias_keys[j], config_setting_name(s)) == 0)
                break;
        if (alias_keys[j] == NULL)
            err_at(ld, s, "unknown key '%s' in alias #%u",
                   config_setting_name(s), i + 1);
    }
    name = get_name(ld, g, "name", i);
    model = get_name(ld, g, "model", i);
    if (name == NULL || model == NULL)
        return;
    if (model_of(cfg, name) >= 0) {
        err_at(ld, g, "alias '%s' is the name of a model: an alias is "
               "another name for one", name);
        return;
    }
    for (k = 0; k < a->n; k++) {
        if (strcmp(a->v[k].name, name) == 0) {
            err_at(ld, g, "duplicate alias '%s' (first at line %d)", name,
                   a->v[k].line);
            return;
        }
    }
    m = model_of(cfg, model);
    if (m < 0) {
        err_at(ld, g, "alias '%s' names unknown model '%s' (an alias names "
               "a model of 'models', not another alias)", name, model);
        return;
    }
    if (a->n == GR_CFG_ALIAS_MAX) {
        err_at(ld, g, "too many aliases: at most %d", GR_CFG_ALIAS_MAX);
        return;
    }
    snprintf(a->v[a->n].name, sizeof(a->v[a->n].name), "%s", name);
    a->v[a->n].model = (unsigned)m;
    a->v[a->n].line = line;
    a->n++;
}

struct gr_cfg_aliases *
gr_cfg_aliases_load(const void *rootp, const char *path, const char *dir,
                    const struct gr_cfg *cfg, struct gr_cfg_errlist *el)
{
    const config_setting_t *root = rootp, *l;
    struct gr_cfg_aliases *a = calloc(1, sizeof(*a));
    struct a_load ld = {path, dir, el};
    unsigned i;

    if (a == NULL)
        return NULL;
    l = config_setting_get_member(root, "aliases");
    if (l == NULL)
        return a;
    if (!config_setting_is_list(l)) {
        err_at(&ld, l, "wrong type for aliases: expected a list ( ... )");
        return a;
    }
    for (i = 0; i < (unsigned)config_setting_length(l); i++)
        load_one(&ld, cfg, config_setting_get_elem(l, i), i, a);
    return a;
}

void
gr_cfg_aliases_free(struct gr_cfg_aliases *a)
{
    free(a);
}

const struct gr_cfg_aliases *
gr_cfg_aliases(const struct gr_cfg *cfg)
{
    return cfg->aliases;
}
