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
 * at most GR_CFG_ALIAS_MAX of them; every error is FILE:LINE.  An entry's
 * name and model are rows of a table (settings_priv.h), read, checked
 * and reported in the wording of every other section.
 */
#include "aliases.h"
#include "aliases_priv.h"
#include "settings_priv.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOWN_MAX 80
#define WHERE_MAX 32

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

/* name and model: a name of the config's alphabet (config.c's names). */
static bool
check_name(struct gr_cfg_rd *rd, const void *s,
           const struct gr_cfg_setting *row, const char *what,
           const char *label, const char *v, void *base)
{
    char shown[SHOWN_MAX];

    (void)what;
    (void)base;
    if (v[0] != '\0' && strlen(v) < row->size && name_chars_ok(v))
        return true;
    gr_cfg_err_at(rd, s, "%s must be 1 to %zu letters, digits, '.', '-' or "
                  "'_' (found \"%s\")", label, row->size - 1,
                  gr_cfg_shown(v, shown, sizeof(shown)));
    return false;
}

/* What an entry of the list says, before the checks against models. */
struct alias_in {
    char name[GR_CFG_NAME_MAX];
    char model[GR_CFG_NAME_MAX];
};

/* An entry's settings, read in this order. */
#define A struct alias_in
static const struct gr_cfg_setting alias_settings[] = {
    {.name = "name", .type = GR_CFG_T_STRING, .flags = GR_CFG_F_REQUIRED,
     GR_CFG_FIELD(A, name), .hook = check_name, .need = "what callers say"},
    {.name = "model", .type = GR_CFG_T_STRING, .flags = GR_CFG_F_REQUIRED,
     GR_CFG_FIELD(A, model), .hook = check_name,
     .need = "a model of 'models'"},
    GR_CFG_END,
};
#undef A

static void
load_one(struct gr_cfg_rd *rd, const struct gr_cfg *cfg,
         const config_setting_t *g, unsigned i, struct gr_cfg_aliases *a)
{
    struct alias_in in;
    char where[WHERE_MAX];
    unsigned k;
    int m, line = (int)config_setting_source_line(g);

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        gr_cfg_err_at(rd, g, "wrong type for alias #%u: expected a group "
                      "{ name = \"ALIAS\"; model = \"MODEL\"; }, found %s",
                      i + 1, gr_cfg_found(g));
        return;
    }
    snprintf(where, sizeof(where), "in alias #%u", i + 1);
    memset(&in, 0, sizeof(in));
    gr_cfg_settings_unknown(rd, g, alias_settings, where);
    if (gr_cfg_settings_read(rd, g, alias_settings, NULL, where, &in,
                             NULL) > 0)
        return;
    if (gr_cfg_model_index(cfg, in.name) >= 0) {
        gr_cfg_err_at(rd, g, "alias '%s' is the name of a model: an alias "
                      "is another name for one", in.name);
        return;
    }
    for (k = 0; k < a->n; k++) {
        if (strcmp(a->v[k].name, in.name) == 0) {
            gr_cfg_err_at(rd, g, "duplicate alias '%s' (first at line %d)",
                          in.name, a->v[k].line);
            return;
        }
    }
    m = gr_cfg_model_index(cfg, in.model);
    if (m < 0) {
        gr_cfg_err_at(rd, g, "alias '%s' names unknown model '%s' (an alias "
                      "names a model of 'models', not another alias)",
                      in.name, in.model);
        return;
    }
    if (a->n == GR_CFG_ALIAS_MAX) {
        gr_cfg_err_at(rd, g, "too many aliases: at most %d",
                      GR_CFG_ALIAS_MAX);
        return;
    }
    snprintf(a->v[a->n].name, sizeof(a->v[a->n].name), "%s", in.name);
    a->v[a->n].model = (unsigned)m;
    a->v[a->n].line = line;
    a->n++;
}

struct gr_cfg_aliases *
gr_cfg_aliases_load(const void *rootp, const struct gr_cfg *cfg,
                    struct gr_cfg_rd *rd)
{
    const config_setting_t *root = rootp, *l;
    struct gr_cfg_aliases *a = calloc(1, sizeof(*a));
    unsigned i;

    if (a == NULL)
        return NULL;
    l = config_setting_get_member(root, "aliases");
    if (l == NULL)
        return a;
    if (!config_setting_is_list(l)) {
        gr_cfg_err_at(rd, l, "wrong type for aliases: expected a list "
                      "( ... ), found %s", gr_cfg_found(l));
        return a;
    }
    for (i = 0; i < (unsigned)config_setting_length(l); i++)
        load_one(rd, cfg, config_setting_get_elem(l, i), i, a);
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
