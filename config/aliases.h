/*
 * aliases.h - the `aliases` list of the config file: names callers may
 * use for a model of `models`, resolved by the client library before it
 * reserves (so a caller's code names "flash" and the config says which
 * model that is today).  Parsed and checked with the rest of the file by
 * gr_cfg_load(); the router publishes them in the table.
 */
#ifndef GR_CFG_ALIASES_H
#define GR_CFG_ALIASES_H

#include "config.h"

#define GR_CFG_ALIAS_MAX 64         /* aliases in one config */

struct gr_cfg_alias {
    char name[GR_CFG_NAME_MAX];     /* what callers say */
    unsigned model;                 /* index into cfg->models */
    int line;                       /* where it was defined */
};

struct gr_cfg_aliases {
    unsigned n;
    struct gr_cfg_alias v[GR_CFG_ALIAS_MAX];
};

/* The aliases of cfg (none when the file has no list). */
const struct gr_cfg_aliases *gr_cfg_aliases(const struct gr_cfg *cfg);

#endif
