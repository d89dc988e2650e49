/*
 * pricing.c - the `pricing` and `spend` sections of the config file,
 * read and checked with the rest of it (config.c calls
 * gr_cfg_spend_load() once the models and projects are loaded):
 *
 *   pricing = {
 *     source = "https://ai.google.dev/gemini-api/docs/pricing";
 *     date = "2025-12-01";
 *     batch_discount = 0.5;            # what the Batch API pays
 *     models = (
 *       { name = "gemini-2.5-pro";     # USD per 1M tokens
 *         input = 1.25; output = 10.0; cached = 0.125; thinking = 10.0;
 *         long_above = 200000;         # prompt tokens: the long tier
 *         input_long = 2.5; output_long = 15.0; cached_long = 0.25;
 *         max_output = 65536; } );     # reserved when a call sets none
 *   };
 *   spend = {
 *     day = 100.0; month = 2000.0;     # the pool, USD
 *     project_day = 20.0; project_month = 400.0;   # every project
 *     projects = ( { name = "prod-1"; day = 50.0; month = 900.0; } );
 *   };
 *
 * Invariant protected: every price is a number in [0, MAX_PRICE] USD
 * per 1M tokens, named for a model of the file, once; a cap is a
 * positive amount; a spend section only with prices for every model it
 * will count; every error is FILE:LINE.
 */
#include "pricing_priv.h"

#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_MAX 512
#define MAX_PRICE 1000.0            /* USD per 1M tokens */
#define MAX_CAP 1e7                 /* USD: the counters hold $17.5M */
#define DEFAULT_MAX_OUTPUT 65536

static const char *const pricing_keys[] = {
    "source", "date", "batch_discount", "models", NULL,
};
static const char *const price_keys[] = {
    "name", "input", "output", "cached", "thinking", "long_above",
    "input_long", "output_long", "cached_long", "thinking_long",
    "max_output", NULL,
};
static const char *const spend_keys[] = {
    "day", "month", "project_day", "project_month", "projects", NULL,
};
static const char *const spend_project_keys[] = {
    "name", "day", "month", NULL,
};

struct p_load {
    const char *path;
    const char *dir;
    struct gr_cfg_errlist *el;
};

static void err_at(struct p_load *ld, const config_setting_t *s,
                   const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The file of s as config.c names it (libconfig 1.5 records an included
 * file relative to the include directory). */
static void
err_at(struct p_load *ld, const config_setting_t *s, const char *fmt, ...)
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

static void
check_keys(struct p_load *ld, const config_setting_t *g,
           const char *const *keys, const char *where)
{
    int i;

    for (i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        unsigned k;

        for (k = 0; keys[k] != NULL; k++)
            if (strcmp(keys[k], config_setting_name(s)) == 0)
                break;
        if (keys[k] == NULL)
            err_at(ld, s, "unknown key '%s' in %s", config_setting_name(s),
                   where);
    }
}

/* A number (integer or float) of g's member name into *v; false when
 * absent or wrong (then an error names it). */
static bool
get_num(struct p_load *ld, const config_setting_t *g, const char *name,
        const char *where, double lo, double hi, double *v)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    int t;
    double x;

    if (s == NULL)
        return false;
    t = config_setting_type(s);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        x = (double)config_setting_get_int64(s);
    else if (t == CONFIG_TYPE_FLOAT)
        x = config_setting_get_float(s);
    else {
        err_at(ld, s, "wrong type for '%s' in %s: expected a number", name,
               where);
        return false;
    }
    if (!(x >= lo)) {
        err_at(ld, s, "%s.%s is negative or not a number (%g)", where, name,
               x);
        return false;
    }
    if (x > hi) {
        err_at(ld, s, "%s.%s is %g; at most %g", where, name, x, hi);
        return false;
    }
    *v = x;
    return true;
}

/* USD (per 1M tokens, or a cap; checked >= 0 and bounded) as micro-USD,
 * rounded to nearest (no libm: the config fuzzer links without it). */
static int64_t
micro(double usd)
{
    return (int64_t)(usd * 1e6 + 0.5);
}

static void
load_price(struct p_load *ld, const config_setting_t *g,
           const struct gr_cfg *cfg, struct gr_cfg_spend *sp)
{
    const config_setting_t *n = config_setting_get_member(g, "name");
    const char *name = n != NULL ? config_setting_get_string(n) : NULL;
    char shown[64], where[96];
    struct gr_cfg_price *p;
    double v;
    int m;

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err_at(ld, g, "wrong type in pricing.models: expected a group "
               "{ name = ...; input = ...; output = ...; }");
        return;
    }
    if (name == NULL) {
        err_at(ld, g, "a price in pricing.models has no name");
        return;
    }
    gr_cfg_shown(name, shown, sizeof(shown));
    snprintf(where, sizeof(where), "the price of '%s'", shown);
    check_keys(ld, g, price_keys, where);
    m = gr_cfg_model_index(cfg, name);
    if (m < 0) {
        err_at(ld, n, "pricing names model '%s', which is not in 'models'",
               shown);
        return;
    }
    p = &sp->prices[m];
    if (p->set) {
        err_at(ld, n, "model '%s' is priced twice (first at line %d)",
               shown, p->line);
        return;
    }
    p->set = true;
    p->line = (int)config_setting_source_line(g);
    snprintf(where, sizeof(where), "pricing '%s'", shown);
    if (get_num(ld, g, "input", where, 0, MAX_PRICE, &v))
        p->input = micro(v);
    else if (config_setting_get_member(g, "input") == NULL)
        err_at(ld, g, "the price of '%s' has no 'input' (USD per 1M "
               "input tokens)", shown);
    if (get_num(ld, g, "output", where, 0, MAX_PRICE, &v))
        p->output = micro(v);
    else if (config_setting_get_member(g, "output") == NULL)
        err_at(ld, g, "the price of '%s' has no 'output' (USD per 1M "
               "output tokens)", shown);
    /* Left out: cached input at the input price, thinking at the output
     * price (as Google bills it), the long tier as the short one. */
    p->cached = get_num(ld, g, "cached", where, 0, MAX_PRICE, &v)
                    ? micro(v) : p->input;
    p->thinking = get_num(ld, g, "thinking", where, 0, MAX_PRICE, &v)
                      ? micro(v) : p->output;
    p->input_long = get_num(ld, g, "input_long", where, 0, MAX_PRICE, &v)
                        ? micro(v) : p->input;
    p->output_long = get_num(ld, g, "output_long", where, 0, MAX_PRICE, &v)
                         ? micro(v) : p->output;
    p->cached_long = get_num(ld, g, "cached_long", where, 0, MAX_PRICE, &v)
                         ? micro(v) : p->cached;
    p->thinking_long = get_num(ld, g, "thinking_long", where, 0, MAX_PRICE,
                               &v) ? micro(v) : p->output_long;
    p->long_above = get_num(ld, g, "long_above", where, 0, INT32_MAX, &v)
                        ? (int64_t)v : 0;
    p->max_output = get_num(ld, g, "max_output", where, 0, INT32_MAX, &v)
                        ? (int64_t)v : DEFAULT_MAX_OUTPUT;
}

static void
load_pricing(struct p_load *ld, const config_setting_t *g,
             const struct gr_cfg *cfg, struct gr_cfg_spend *sp)
{
    const config_setting_t *s, *l;
    const char *v;
    double d;
    int i;

    sp->priced = true;
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err_at(ld, g, "wrong type for pricing: expected a group { ... }");
        return;
    }
    check_keys(ld, g, pricing_keys, "pricing");
    if ((s = config_setting_get_member(g, "source")) != NULL) {
        if ((v = config_setting_get_string(s)) == NULL)
            err_at(ld, s, "wrong type for 'source' in pricing: expected a "
                   "string");
        else
            snprintf(sp->source, sizeof(sp->source), "%s", v);
    }
    if ((s = config_setting_get_member(g, "date")) != NULL) {
        if ((v = config_setting_get_string(s)) == NULL)
            err_at(ld, s, "wrong type for 'date' in pricing: expected a "
                   "string");
        else
            snprintf(sp->date, sizeof(sp->date), "%s", v);
    }
    sp->batch_ppm = 500000;
    if (get_num(ld, g, "batch_discount", "pricing", 0, 1, &d))
        sp->batch_ppm = micro(d);
    l = config_setting_get_member(g, "models");
    if (l == NULL) {
        err_at(ld, g, "pricing has no models list");
        return;
    }
    if (!config_setting_is_list(l)) {
        err_at(ld, l, "wrong type for pricing.models: expected a list "
               "( { ... }, ... )");
        return;
    }
    for (i = 0; i < config_setting_length(l); i++)
        load_price(ld, config_setting_get_elem(l, (unsigned)i), cfg, sp);
}

static void
load_spend(struct p_load *ld, const config_setting_t *g,
           const struct gr_cfg *cfg, struct gr_cfg_spend *sp)
{
    const config_setting_t *l;
    int64_t pday = 0, pmonth = 0;
    double v;
    unsigned i;
    int k;

    sp->line = (int)config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        err_at(ld, g, "wrong type for spend: expected a group { ... }");
        return;
    }
    check_keys(ld, g, spend_keys, "spend");
    /* A cap of $0 is 1 micro-USD: nothing fits. */
    if (get_num(ld, g, "day", "spend", 0, MAX_CAP, &v))
        sp->pool_day = micro(v) > 0 ? micro(v) : 1;
    if (get_num(ld, g, "month", "spend", 0, MAX_CAP, &v))
        sp->pool_month = micro(v) > 0 ? micro(v) : 1;
    if (get_num(ld, g, "project_day", "spend", 0, MAX_CAP, &v))
        pday = micro(v) > 0 ? micro(v) : 1;
    if (get_num(ld, g, "project_month", "spend", 0, MAX_CAP, &v))
        pmonth = micro(v) > 0 ? micro(v) : 1;
    for (i = 0; i < sp->n_projects; i++) {
        sp->project_day[i] = pday;
        sp->project_month[i] = pmonth;
    }
    l = config_setting_get_member(g, "projects");
    if (l != NULL && !config_setting_is_list(l)) {
        err_at(ld, l, "wrong type for spend.projects: expected a list "
               "( { name = ...; day = ...; }, ... )");
        l = NULL;
    }
    for (k = 0; l != NULL && k < config_setting_length(l); k++) {
        const config_setting_t *e = config_setting_get_elem(l, (unsigned)k);
        const config_setting_t *n = config_setting_get_member(e, "name");
        const char *name = n != NULL ? config_setting_get_string(n) : NULL;
        char shown[64], where[96];
        unsigned j;

        if (config_setting_type(e) != CONFIG_TYPE_GROUP || name == NULL) {
            err_at(ld, e, "an entry of spend.projects needs a name");
            continue;
        }
        gr_cfg_shown(name, shown, sizeof(shown));
        snprintf(where, sizeof(where), "spend of project '%s'", shown);
        check_keys(ld, e, spend_project_keys, where);
        for (j = 0; j < cfg->n_projects; j++)
            if (strcmp(cfg->projects[j].name, name) == 0)
                break;
        if (j == cfg->n_projects) {
            err_at(ld, n, "spend.projects names project '%s', which is "
                   "not in 'projects'", shown);
            continue;
        }
        if (get_num(ld, e, "day", where, 0, MAX_CAP, &v))
            sp->project_day[j] = micro(v) > 0 ? micro(v) : 1;
        if (get_num(ld, e, "month", where, 0, MAX_CAP, &v))
            sp->project_month[j] = micro(v) > 0 ? micro(v) : 1;
    }
    sp->capped = sp->pool_day > 0 || sp->pool_month > 0;
    for (i = 0; i < sp->n_projects; i++)
        if (sp->project_day[i] > 0 || sp->project_month[i] > 0)
            sp->capped = true;
    if (!sp->capped)
        return;
    if (!sp->priced) {
        err_at(ld, g, "spend caps need a pricing section (USD per 1M "
               "tokens for every model; @include a dated pricing file)");
        return;
    }
    for (i = 0; i < cfg->n_models && i < sp->n_models; i++)
        if (!sp->prices[i].set)
            err_at(ld, g, "spend caps need a price for every model: "
                   "'%s' has none in pricing", cfg->models[i].name);
}

struct gr_cfg_spend *
gr_cfg_spend_load(const void *rootp, const char *path, const char *dir,
                  const struct gr_cfg *cfg, struct gr_cfg_errlist *el)
{
    const config_setting_t *root = rootp, *s;
    struct gr_cfg_spend *sp = calloc(1, sizeof(*sp));
    struct p_load ld = {path, dir, el};
    size_t np = cfg->n_projects ? cfg->n_projects : 1;

    if (sp == NULL)
        return NULL;
    sp->batch_ppm = 500000;
    sp->n_models = cfg->n_models;
    sp->n_projects = cfg->n_projects;
    sp->prices = calloc(cfg->n_models ? cfg->n_models : 1,
                        sizeof(*sp->prices));
    sp->project_day = calloc(np, sizeof(*sp->project_day));
    sp->project_month = calloc(np, sizeof(*sp->project_month));
    if (sp->prices == NULL || sp->project_day == NULL ||
        sp->project_month == NULL) {
        gr_cfg_spend_free(sp);
        return NULL;
    }
    if ((s = config_setting_get_member(root, "pricing")) != NULL)
        load_pricing(&ld, s, cfg, sp);
    if ((s = config_setting_get_member(root, "spend")) != NULL)
        load_spend(&ld, s, cfg, sp);
    return sp;
}

void
gr_cfg_spend_free(struct gr_cfg_spend *s)
{
    if (s == NULL)
        return;
    free(s->prices);
    free(s->project_day);
    free(s->project_month);
    free(s);
}

const struct gr_cfg_spend *
gr_cfg_spend(const struct gr_cfg *cfg)
{
    return cfg != NULL ? cfg->spend : NULL;
}
