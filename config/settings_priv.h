/*
 * settings_priv.h - the settings of a config section as one table, read
 * by one routine (settings.c), as Redis' config.c does with its
 * standardConfig table.  Private to config/.
 *
 * A section (router, gateway, cache, cluster, a project's group) lists
 * its settings in a table of struct gr_cfg_setting, ended by a row whose
 * name is NULL.  Each row says the setting's name, its type, its range,
 * its default, where its value goes (an offset in the section's struct)
 * and whether a reload may change it.  gr_cfg_settings_read() checks a
 * group against its table: unknown names, types, ranges, lengths, and
 * reports every error as FILE:LINE in one wording for all sections.
 * Settings the table cannot describe (lists, cross-checks) are read by
 * hand, either in a row's hook or after the table, and still have a row
 * (GR_CFG_T_HAND) so that the unknown-name check knows them.
 *
 * No libconfig type appears here (STYLE.md rule 3): a setting is a
 * `const void *`.
 */
#ifndef GR_CFG_SETTINGS_PRIV_H
#define GR_CFG_SETTINGS_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config_priv.h"

/* How section readers report: the load's files, its error list. */
struct gr_cfg_rd {
    const char *path;               /* the main file, as the caller gave it */
    const char *dir;                /* its directory */
    struct gr_cfg_errlist *el;
    struct gr_cfg_srcs *srcs;       /* the text, for libconfig 1.5's
                                       wrapped integers; may be NULL */
};

/* "FILE:LINE: message" at setting s (a config_setting_t). */
void gr_cfg_err_at(struct gr_cfg_rd *rd, const void *s, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));

/* The file of setting s, as a path usable from here (in buf or not). */
const char *gr_cfg_file_of(const struct gr_cfg_rd *rd, const void *s,
                           char *buf, size_t len);
/* The same for a file as libconfig names it (a setting's, or a parse
 * error's); f NULL is the main file. */
const char *gr_cfg_file_named(const struct gr_cfg_rd *rd, const char *f,
                              char *buf, size_t len);
int gr_cfg_line_of(const void *s);

enum gr_cfg_type {
    GR_CFG_T_HAND,      /* read by its hook, or by hand after the table */
    GR_CFG_T_BOOL,      /* bool */
    GR_CFG_T_UINT,      /* unsigned, in [lo, hi] */
    GR_CFG_T_INT,       /* int, in [lo, hi] */
    GR_CFG_T_I64,       /* int64_t, in [lo, hi] */
    GR_CFG_T_DOUBLE,    /* double, in [dlo, dhi] (an integer is taken) */
    GR_CFG_T_STRING,    /* char[size]: at most size - 1 characters */
    GR_CFG_T_ENUM,      /* char[size]: one of names */
    GR_CFG_T_PATH,      /* char[size]: relative to the main file's
                           directory; "" = unset; at most hi characters
                           when hi > 0 */
    GR_CFG_T_SECRET,    /* char[size]: "env:NAME" or "file:PATH" resolved
                           (never echoed); a literal only with
                           GR_CFG_F_LITERAL */
};

/* Flags of a row. */
#define GR_CFG_F_RESTART 0x1u   /* a reload may not change it: the router
                                   refuses the reload and says so */
#define GR_CFG_F_REQUIRED 0x2u  /* missing: "SECTION needs 'NAME' (need)"
                                   ("the price of 'm' needs ..." for a
                                   where of "in the price of 'm'") */
#define GR_CFG_F_LITERAL 0x4u   /* GR_CFG_T_SECRET: a literal is taken */
#define GR_CFG_F_LO_OPEN 0x8u   /* GR_CFG_T_DOUBLE: lo itself is refused */

struct gr_cfg_setting;

/*
 * A row's hook.  For GR_CFG_T_HAND: reads setting s whole into base (the
 * section's struct) and reports its own errors.  For the string types:
 * called with the value v once its type is right, before it is stored;
 * it reports and returns false to refuse the value.  what is
 * "'shm' in router" and label "router.shm" (or "'weight' in project 'p'"
 * and "weight in project 'p'"), for messages.
 */
typedef bool gr_cfg_hook_fn(struct gr_cfg_rd *rd, const void *s,
                            const struct gr_cfg_setting *row,
                            const char *what, const char *label,
                            const char *v, void *base);

struct gr_cfg_setting {
    const char *name;
    enum gr_cfg_type type;
    unsigned flags;                 /* GR_CFG_F_* */
    size_t offset;                  /* of the field in the section's
                                       struct */
    size_t size;                    /* of the field (strings: the buffer) */
    int64_t lo, hi;                 /* integer range; PATH: longest */
    double dlo, dhi;                /* GR_CFG_T_DOUBLE range */
    int64_t idef;                   /* default of a number or a bool */
    double ddef;                    /* default of a double */
    const char *sdef;               /* default of a string; NULL = "" */
    const char *const *names;       /* GR_CFG_T_ENUM: NULL-terminated */
    gr_cfg_hook_fn *hook;           /* see above; may be NULL */
    const char *need;               /* GR_CFG_F_REQUIRED: what it is */
};

/*
 * Rows.  S is the section's struct type, F the field; the rest as in
 * struct gr_cfg_setting.  A table ends with GR_CFG_END.
 */
#define GR_CFG_FIELD(S, F) .offset = offsetof(S, F), \
                           .size = sizeof(((S *)0)->F)
#define GR_CFG_BOOL(S, F, DEF, FL) \
    {.name = #F, .type = GR_CFG_T_BOOL, .flags = (FL), GR_CFG_FIELD(S, F), \
     .idef = (DEF)}
#define GR_CFG_UINT(S, F, LO, HI, DEF, FL) \
    {.name = #F, .type = GR_CFG_T_UINT, .flags = (FL), GR_CFG_FIELD(S, F), \
     .lo = (LO), .hi = (HI), .idef = (DEF)}
#define GR_CFG_INT(S, F, LO, HI, DEF, FL) \
    {.name = #F, .type = GR_CFG_T_INT, .flags = (FL), GR_CFG_FIELD(S, F), \
     .lo = (LO), .hi = (HI), .idef = (DEF)}
#define GR_CFG_I64(S, F, LO, HI, DEF, FL) \
    {.name = #F, .type = GR_CFG_T_I64, .flags = (FL), GR_CFG_FIELD(S, F), \
     .lo = (LO), .hi = (HI), .idef = (DEF)}
#define GR_CFG_DOUBLE(S, F, LO, HI, DEF, FL) \
    {.name = #F, .type = GR_CFG_T_DOUBLE, .flags = (FL), \
     GR_CFG_FIELD(S, F), .dlo = (LO), .dhi = (HI), .ddef = (DEF)}
#define GR_CFG_STRING(S, F, DEF, HOOK, FL) \
    {.name = #F, .type = GR_CFG_T_STRING, .flags = (FL), \
     GR_CFG_FIELD(S, F), .sdef = (DEF), .hook = (HOOK)}
#define GR_CFG_ENUM(S, F, DEF, NAMES, FL) \
    {.name = #F, .type = GR_CFG_T_ENUM, .flags = (FL), GR_CFG_FIELD(S, F), \
     .sdef = (DEF), .names = (NAMES)}
#define GR_CFG_PATH(S, F, LONGEST, FL) \
    {.name = #F, .type = GR_CFG_T_PATH, .flags = (FL), GR_CFG_FIELD(S, F), \
     .hi = (LONGEST)}
#define GR_CFG_SECRET(S, F, FL) \
    {.name = #F, .type = GR_CFG_T_SECRET, .flags = (FL), \
     GR_CFG_FIELD(S, F)}
/* Read by HOOK (or by hand when HOOK is NULL); a field only for RESTART
 * comparisons and defaults (IDEF into an int-sized field, SDEF into a
 * string) -- F may then be any field, NAME is the setting's name. */
#define GR_CFG_HAND(NAME, HOOK, FL) \
    {.name = (NAME), .type = GR_CFG_T_HAND, .flags = (FL), .hook = (HOOK)}
#define GR_CFG_HANDF(NAME, S, F, IDEF, SDEF, HOOK, FL) \
    {.name = (NAME), .type = GR_CFG_T_HAND, .flags = (FL), \
     GR_CFG_FIELD(S, F), .idef = (IDEF), .sdef = (SDEF), .hook = (HOOK)}
#define GR_CFG_END {.name = NULL}

/* What gr_cfg_settings_read() found of each row (state[i] for row i). */
enum {
    GR_CFG_ABSENT = 0,
    GR_CFG_SET = 1,                 /* present and good */
    GR_CFG_BAD = 2,                 /* present and refused */
};

/* Every row's default into base. */
void gr_cfg_settings_defaults(const struct gr_cfg_setting *tab, void *base);

/*
 * "unknown key 'x' in router" for each setting of group g (a
 * config_setting_t of type group) that has no row in tab.  in: "in
 * router", "in project 'p'".
 */
void gr_cfg_settings_unknown(struct gr_cfg_rd *rd, const void *g,
                             const struct gr_cfg_setting *tab,
                             const char *in);

/*
 * Read group g against tab into base, each row in table order (call
 * gr_cfg_settings_unknown() first).  section names a top-level section
 * ("router": messages say "'x' in router" and "router.x"); else where
 * names an element of a list ("in project 'p'": messages say "'x' in
 * project 'p'" and "x in project 'p'").  state (may be NULL) gets one
 * GR_CFG_* per row.  Returns the number of errors reported.
 */
unsigned gr_cfg_settings_read(struct gr_cfg_rd *rd, const void *g,
                              const struct gr_cfg_setting *tab,
                              const char *section, const char *where,
                              void *base, unsigned char *state);

/* The row called name, or NULL. */
const struct gr_cfg_setting *gr_cfg_settings_row(
    const struct gr_cfg_setting *tab, const char *name);

/*
 * The rows with every flag of flags set whose value differs between a
 * and b (two structs of the table's section): their names, ", "-joined,
 * into out (cut to outlen).  Returns how many differ.
 */
unsigned gr_cfg_settings_changed(const struct gr_cfg_setting *tab,
                                 const void *a, const void *b,
                                 unsigned flags, char *out, size_t outlen);

/* The type of setting s for a message: "an integer", "a group"... */
const char *gr_cfg_found(const void *s);

/* Shared by the sections' hand code: s's type is right, else reported. */
bool gr_cfg_get_bool(struct gr_cfg_rd *rd, const void *s, const char *what,
                     bool *v);
bool gr_cfg_get_string(struct gr_cfg_rd *rd, const void *s,
                       const char *what, const char **v);
bool gr_cfg_get_int(struct gr_cfg_rd *rd, const void *s, const char *what,
                    int64_t *v);

#endif
