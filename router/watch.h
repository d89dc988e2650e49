/*
 * watch.h - the router's config watcher (watch.c): inotify on the
 * directories of the config file and of every file it @includes, so that
 * a change on disk, including an editor's write-then-rename, leads to a
 * reload within a second.  Router only.
 */
#ifndef GR_RTR_WATCH_H
#define GR_RTR_WATCH_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gr_rtr_watch;

/*
 * A watcher for the files cfg was read from (cfg->files, else cfg->path).
 * NULL when inotify is not available (the router then reloads on SIGHUP
 * only); the reason is logged.
 */
struct gr_rtr_watch *gr_rtr_watch_open(const struct gr_cfg *cfg);

/* Watch the files of a newly applied config instead of the old ones. */
void gr_rtr_watch_files(struct gr_rtr_watch *w, const struct gr_cfg *cfg);

/*
 * Read what happened since the last call (never blocks).  True when a
 * watched file changed and the change has settled: no new event for a
 * short quiet time, or a bounded time since the first event; `what`
 * then names the file.  Called once per tick.
 */
bool gr_rtr_watch_due(struct gr_rtr_watch *w, int64_t now_ns, char *what,
                      size_t whatlen);

/*
 * A reload is about to read the files: every change seen so far is
 * covered by it, so forget the events already queued.
 */
void gr_rtr_watch_drain(struct gr_rtr_watch *w);

void gr_rtr_watch_close(struct gr_rtr_watch *w);

#endif
