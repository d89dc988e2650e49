/*
 * testinproc.h - the one way a C test runs the router's own code in its
 * process (no gemrouted): a fresh directory and table name, a config
 * written there and loaded, the table opened and the config applied as
 * gemrouted starts, and all of it removed at the end.  (testrouter.h
 * starts a real gemrouted instead.)
 */
#ifndef GR_TESTINPROC_H
#define GR_TESTINPROC_H

#include <stddef.h>

struct gr_cfg;
struct gr_rtr;

/* (gr_test_names(), in testlib.h, makes the directory and the name.) */

/* The formatted text written to DIR/r.conf and loaded: the config, or
 * NULL with its errors on stderr. */
struct gr_cfg *gr_test_cfg_load(const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* rtr's table opened for cfg and cfg applied, as gemrouted starts: 0, or
 * -1 with why on stderr. */
int gr_test_rtr_open(struct gr_rtr *rtr, const struct gr_cfg *cfg);

/* The slot of project name in rtr's table, or -1. */
int gr_test_slot_of(const struct gr_rtr *rtr, const char *name);

/* rtr's table detached, its mirror freed, shm unlinked and dir removed:
 * 0, or -1. */
int gr_test_rtr_end(struct gr_rtr *rtr, const char *dir, const char *shm);

#endif
