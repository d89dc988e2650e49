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
 * will count; every error is FILE:LINE.  The scalars of each group are
 * rows of a table (settings_priv.h): settings.c checks their types,
 * ranges and names in the wording of every other section, and this file
 * converts what it read to micro-USD and checks names against models and
 * projects.
 */
#include "pricing_priv.h"
#include "settings_priv.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PRICE 1000.0            /* USD per 1M tokens */
#define MAX_CAP 1e7                 /* USD: the counters hold $17.5M */
#define MAX_TOKENS 2147483647.0     /* long_above, max_output */
#define DEFAULT_MAX_OUTPUT 65536
#define SHOWN_MAX 64
#define WHERE_MAX 128

/*
 * What the tables read: USD and token counts as doubles, converted to
 * micro-USD (and tokens) once read.  A row absent from the file keeps
 * its default; a price whose default is another price (cached is input)
 * is derived from the state gr_cfg_settings_read() returns.
 */
struct pricing_in {
    char source[GR_CFG_URL_MAX];
    char date[32];
    double batch_discount;          /* share of the price the Batch API
                                       pays */
};

struct price_in {                   /* USD per 1M tokens */
    double input, output, cached, thinking;
    double input_long, output_long, cached_long, thinking_long;
    double long_above, max_output;  /* tokens */
};

struct caps_in {                    /* USD; the spend group and a
                                       project's entry */
    double day, month, project_day, project_month;
};

#define PG struct pricing_in
static const struct gr_cfg_setting pricing_settings[] = {
    GR_CFG_STRING(PG, source, "", NULL, 0),
    GR_CFG_STRING(PG, date, "", NULL, 0),
    GR_CFG_DOUBLE(PG, batch_discount, 0, 1, 0.5, 0),
    {.name = "models", .type = GR_CFG_T_HAND, .flags = GR_CFG_F_REQUIRED,
     .need = "a list of prices, one { name = ...; input = ...; "
             "output = ...; } per model"},      /* load_pricing() */
    GR_CFG_END,
};
#undef PG

/* A price's rows, in the order they are read (and errors of one line
 * reported); the derived defaults follow the table in load_price(). */
#define PI struct price_in
#define PRICE(F) GR_CFG_DOUBLE(PI, F, 0, MAX_PRICE, 0, 0)
enum {
    PR_NAME, PR_INPUT, PR_OUTPUT, PR_CACHED, PR_THINKING, PR_INPUT_LONG,
    PR_OUTPUT_LONG, PR_CACHED_LONG, PR_THINKING_LONG, PR_LONG_ABOVE,
    PR_MAX_OUTPUT, PR_N
};
static const struct gr_cfg_setting price_settings[PR_N + 1] = {
    [PR_NAME] = GR_CFG_HAND("name", NULL, 0),  /* load_price() */
    [PR_INPUT] = {.name = "input", .type = GR_CFG_T_DOUBLE,
                  .flags = GR_CFG_F_REQUIRED, GR_CFG_FIELD(PI, input),
                  .dlo = 0, .dhi = MAX_PRICE,
                  .need = "USD per 1M input tokens"},
    [PR_OUTPUT] = {.name = "output", .type = GR_CFG_T_DOUBLE,
                   .flags = GR_CFG_F_REQUIRED, GR_CFG_FIELD(PI, output),
                   .dlo = 0, .dhi = MAX_PRICE,
                   .need = "USD per 1M output tokens"},
    [PR_CACHED] = PRICE(cached),
    [PR_THINKING] = PRICE(thinking),
    [PR_INPUT_LONG] = PRICE(input_long),
    [PR_OUTPUT_LONG] = PRICE(output_long),
    [PR_CACHED_LONG] = PRICE(cached_long),
    [PR_THINKING_LONG] = PRICE(thinking_long),
    [PR_LONG_ABOVE] = GR_CFG_DOUBLE(PI, long_above, 0, MAX_TOKENS, 0, 0),
    [PR_MAX_OUTPUT] = GR_CFG_DOUBLE(PI, max_output, 0, MAX_TOKENS,
                                    DEFAULT_MAX_OUTPUT, 0),
    [PR_N] = GR_CFG_END,
};
#undef PRICE
#undef PI

#define CI struct caps_in
enum {
    SP_DAY, SP_MONTH, SP_PROJECT_DAY, SP_PROJECT_MONTH, SP_PROJECTS, SP_N
};
static const struct gr_cfg_setting spend_settings[] = {
    [SP_DAY] = GR_CFG_DOUBLE(CI, day, 0, MAX_CAP, 0, 0),
    [SP_MONTH] = GR_CFG_DOUBLE(CI, month, 0, MAX_CAP, 0, 0),
    [SP_PROJECT_DAY] = GR_CFG_DOUBLE(CI, project_day, 0, MAX_CAP, 0, 0),
    [SP_PROJECT_MONTH] = GR_CFG_DOUBLE(CI, project_month, 0, MAX_CAP, 0,
                                       0),
    [SP_PROJECTS] = GR_CFG_HAND("projects", NULL, 0), /* load_spend() */
    [SP_N] = GR_CFG_END,
};

/* An entry of spend.projects: its day and month go where the spend
 * group's do. */
enum { SPP_NAME, SPP_DAY, SPP_MONTH, SPP_N };
static const struct gr_cfg_setting spend_project_settings[] = {
    [SPP_NAME] = GR_CFG_HAND("name", NULL, 0), /* load_spend_project() */
    [SPP_DAY] = GR_CFG_DOUBLE(CI, day, 0, MAX_CAP, 0, 0),
    [SPP_MONTH] = GR_CFG_DOUBLE(CI, month, 0, MAX_CAP, 0, 0),
    [SPP_N] = GR_CFG_END,
};
#undef CI

/* USD (per 1M tokens, or a cap; checked >= 0 and bounded) as micro-USD,
 * rounded to nearest (no libm: the config fuzzer links without it). */
static int64_t
micro(double usd)
{
    return (int64_t)(usd * 1e6 + 0.5);
}

/* A cap read from the file; a cap of $0 is 1 micro-USD: nothing fits. */
static int64_t
cap(double usd)
{
    return micro(usd) > 0 ? micro(usd) : 1;
}

/* A price's micro-USD when its row was read, else the default's. */
static int64_t
price_or(const unsigned char *state, unsigned row, double usd, int64_t def)
{
    return state[row] == GR_CFG_SET ? micro(usd) : def;
}

static void
load_price(struct gr_cfg_rd *rd, const config_setting_t *g, unsigned i,
           const struct gr_cfg *cfg, struct gr_cfg_spend *sp)
{
    const config_setting_t *n = config_setting_get_member(g, "name");
    unsigned char st[PR_N];
    char shown[SHOWN_MAX], where[WHERE_MAX];
    struct gr_cfg_price *p;
    struct price_in in;
    const char *name;
    int m;

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        gr_cfg_err_at(rd, g, "wrong type for pricing.models #%u: expected a "
                      "group { name = ...; input = ...; output = ...; }, "
                      "found %s", i + 1, gr_cfg_found(g));
        return;
    }
    if (n == NULL) {
        gr_cfg_err_at(rd, g, "a price in pricing.models has no name");
        return;
    }
    snprintf(where, sizeof(where), "'name' in pricing.models #%u", i + 1);
    if (!gr_cfg_get_string(rd, n, where, &name))
        return;
    gr_cfg_shown(name, shown, sizeof(shown));
    snprintf(where, sizeof(where), "in the price of '%s'", shown);
    gr_cfg_settings_unknown(rd, g, price_settings, where);
    m = gr_cfg_model_index(cfg, name);
    if (m < 0) {
        gr_cfg_err_at(rd, n, "pricing names model '%s', which is not in "
                      "'models'", shown);
        return;
    }
    p = &sp->prices[m];
    if (p->set) {
        gr_cfg_err_at(rd, n, "model '%s' is priced twice (first at line %d)",
                      shown, p->line);
        return;
    }
    p->set = true;
    p->line = (int)config_setting_source_line(g);
    memset(&in, 0, sizeof(in));
    gr_cfg_settings_defaults(price_settings, &in);
    gr_cfg_settings_read(rd, g, price_settings, NULL, where, &in, st);
    /* Left out: cached input at the input price, thinking at the output
     * price (as Google bills it), the long tier as the short one. */
    p->input = micro(in.input);
    p->output = micro(in.output);
    p->cached = price_or(st, PR_CACHED, in.cached, p->input);
    p->thinking = price_or(st, PR_THINKING, in.thinking, p->output);
    p->input_long = price_or(st, PR_INPUT_LONG, in.input_long, p->input);
    p->output_long = price_or(st, PR_OUTPUT_LONG, in.output_long,
                              p->output);
    p->cached_long = price_or(st, PR_CACHED_LONG, in.cached_long,
                              p->cached);
    p->thinking_long = price_or(st, PR_THINKING_LONG, in.thinking_long,
                                p->output_long);
    p->long_above = (int64_t)in.long_above;
    p->max_output = (int64_t)in.max_output;
}

static void
load_pricing(struct gr_cfg_rd *rd, const config_setting_t *g,
             const struct gr_cfg *cfg, struct gr_cfg_spend *sp)
{
    const config_setting_t *l;
    struct pricing_in in;
    int i;

    sp->priced = true;
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        gr_cfg_err_at(rd, g, "wrong type for pricing: expected a group "
                      "{ ... }, found %s", gr_cfg_found(g));
        return;
    }
    memset(&in, 0, sizeof(in));
    gr_cfg_settings_defaults(pricing_settings, &in);
    gr_cfg_settings_unknown(rd, g, pricing_settings, "in pricing");
    gr_cfg_settings_read(rd, g, pricing_settings, "pricing", NULL, &in,
                         NULL);
    snprintf(sp->source, sizeof(sp->source), "%s", in.source);
    snprintf(sp->date, sizeof(sp->date), "%s", in.date);
    sp->batch_ppm = micro(in.batch_discount);
    l = config_setting_get_member(g, "models");
    if (l == NULL)
        return;                     /* the table said so */
    if (!config_setting_is_list(l)) {
        gr_cfg_err_at(rd, l, "wrong type for pricing.models: expected a "
                      "list ( { ... }, ... ), found %s", gr_cfg_found(l));
        return;
    }
    for (i = 0; i < config_setting_length(l); i++)
        load_price(rd, config_setting_get_elem(l, (unsigned)i), (unsigned)i,
                   cfg, sp);
}

/* An entry of spend.projects: its caps over the group's defaults. */
static void
load_spend_project(struct gr_cfg_rd *rd, const config_setting_t *e,
                   unsigned k, const struct gr_cfg *cfg,
                   struct gr_cfg_spend *sp)
{
    const config_setting_t *n = config_setting_get_member(e, "name");
    unsigned char st[SPP_N];
    char shown[SHOWN_MAX], where[WHERE_MAX];
    struct caps_in in;
    const char *name;
    unsigned j;

    if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
        gr_cfg_err_at(rd, e, "wrong type for spend.projects #%u: expected a "
                      "group { name = ...; day = ...; }, found %s", k + 1,
                      gr_cfg_found(e));
        return;
    }
    if (n == NULL) {
        gr_cfg_err_at(rd, e, "an entry of spend.projects needs a name");
        return;
    }
    snprintf(where, sizeof(where), "'name' in spend.projects #%u", k + 1);
    if (!gr_cfg_get_string(rd, n, where, &name))
        return;
    gr_cfg_shown(name, shown, sizeof(shown));
    snprintf(where, sizeof(where), "in the spend of project '%s'", shown);
    gr_cfg_settings_unknown(rd, e, spend_project_settings, where);
    for (j = 0; j < cfg->n_projects; j++)
        if (strcmp(cfg->projects[j].name, name) == 0)
            break;
    if (j == cfg->n_projects) {
        gr_cfg_err_at(rd, n, "spend.projects names project '%s', which is "
                      "not in 'projects'", shown);
        return;
    }
    memset(&in, 0, sizeof(in));
    gr_cfg_settings_read(rd, e, spend_project_settings, NULL, where, &in,
                         st);
    if (st[SPP_DAY] == GR_CFG_SET)
        sp->project_day[j] = cap(in.day);
    if (st[SPP_MONTH] == GR_CFG_SET)
        sp->project_month[j] = cap(in.month);
}

static void
load_spend(struct gr_cfg_rd *rd, const config_setting_t *g,
           const struct gr_cfg *cfg, struct gr_cfg_spend *sp)
{
    const config_setting_t *l;
    unsigned char st[SP_N];
    int64_t pday, pmonth;
    struct caps_in in;
    unsigned i;
    int k;

    sp->line = (int)config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        gr_cfg_err_at(rd, g, "wrong type for spend: expected a group "
                      "{ ... }, found %s", gr_cfg_found(g));
        return;
    }
    memset(&in, 0, sizeof(in));
    gr_cfg_settings_unknown(rd, g, spend_settings, "in spend");
    gr_cfg_settings_read(rd, g, spend_settings, "spend", NULL, &in, st);
    /* Absent: no cap (0). */
    if (st[SP_DAY] == GR_CFG_SET)
        sp->pool_day = cap(in.day);
    if (st[SP_MONTH] == GR_CFG_SET)
        sp->pool_month = cap(in.month);
    pday = st[SP_PROJECT_DAY] == GR_CFG_SET ? cap(in.project_day) : 0;
    pmonth = st[SP_PROJECT_MONTH] == GR_CFG_SET ? cap(in.project_month) : 0;
    for (i = 0; i < sp->n_projects; i++) {
        sp->project_day[i] = pday;
        sp->project_month[i] = pmonth;
    }
    l = config_setting_get_member(g, "projects");
    if (l != NULL && !config_setting_is_list(l)) {
        gr_cfg_err_at(rd, l, "wrong type for spend.projects: expected a "
                      "list ( { name = ...; day = ...; }, ... ), found %s",
                      gr_cfg_found(l));
        l = NULL;
    }
    for (k = 0; l != NULL && k < config_setting_length(l); k++)
        load_spend_project(rd, config_setting_get_elem(l, (unsigned)k),
                           (unsigned)k, cfg, sp);
    sp->capped = sp->pool_day > 0 || sp->pool_month > 0;
    for (i = 0; i < sp->n_projects; i++)
        if (sp->project_day[i] > 0 || sp->project_month[i] > 0)
            sp->capped = true;
    if (!sp->capped)
        return;
    if (!sp->priced) {
        gr_cfg_err_at(rd, g, "spend caps need a pricing section (USD per 1M "
                      "tokens for every model; @include a dated pricing "
                      "file)");
        return;
    }
    for (i = 0; i < cfg->n_models && i < sp->n_models; i++)
        if (!sp->prices[i].set)
            gr_cfg_err_at(rd, g, "spend caps need a price for every model: "
                          "'%s' has none in pricing", cfg->models[i].name);
}

struct gr_cfg_spend *
gr_cfg_spend_load(const void *rootp, const struct gr_cfg *cfg,
                  struct gr_cfg_rd *rd)
{
    const config_setting_t *root = rootp, *s;
    struct gr_cfg_spend *sp = calloc(1, sizeof(*sp));
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
        load_pricing(rd, s, cfg, sp);
    if ((s = config_setting_get_member(root, "spend")) != NULL)
        load_spend(rd, s, cfg, sp);
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
