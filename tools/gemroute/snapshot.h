/*
 * snapshot.h - the status views over the library's snapshot.
 *
 * The table, the JSON and the Prometheus text all print from one
 * struct gr_stat_snap (include/gemroute_stat.h), taken read-only through
 * the library, so they agree with each other and none of them touches
 * the segment while printing.  The views are pure functions of the copy
 * (its clock readings included), which is what makes their output
 * testable against golden files.
 */
#ifndef GR_SNAPSHOT_H
#define GR_SNAPSHOT_H

#include "gemroute_stat.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Parse "--shm NAME" out of argv (in place); returns the name or NULL
 * (the library then takes $GEMROUTE_SHM, else "/gemroute"). */
const char *gr_cli_take_shm(int *argc, char **argv);

/* The status views (status.c).  The table fits 100 columns; colour adds
 * ANSI escapes (bars behind the percentages) and nothing else. */
void gr_status_table(FILE *f, const struct gr_stat_snap *s, bool colour);
void gr_status_json(FILE *f, const struct gr_stat_snap *s);
void gr_status_prometheus(FILE *f, const struct gr_stat_snap *s);

/* The cache's and the fallbacks' part of each view (cache_cmd.c): lines
 * after the table, families after the others, two members at the end of
 * the JSON object.  Nothing for a table of ABI 4.1. */
enum gr_extras_view { GR_EXTRAS_TABLE, GR_EXTRAS_PROM, GR_EXTRAS_JSON };
void gr_status_extras(FILE *f, const struct gr_stat_extras *x,
                      enum gr_extras_view v);

/* The spend caps' part of each view (spend_status.c); nothing when no
 * cap is configured. */
void gr_status_spend(FILE *f, const struct gr_stat_snap *s,
                     enum gr_extras_view v);

/* The resource counts under the status table (nothing when the record
 * is empty), or as Prometheus gauges (resources.c). */
void gr_cli_resources_line(FILE *f, const struct gr_stat *st,
                           bool prometheus);

/* Batch mode's gauges under the status table, or as Prometheus gauges
 * (batch_cmd.c); nothing when no pool has a limit or a hold. */
void gr_cli_batch_lines(FILE *f, const struct gr_stat *st, bool prometheus);

#endif
