/*
 * testrouter.h - the one way a C test runs a real gemrouted: started on a
 * config file, waited for until it serves its table with the config
 * applied, stopped at the end.  (Shell tests have start_router in
 * tests/lib.sh, which waits the same way.)
 */
#ifndef GR_TESTROUTER_H
#define GR_TESTROUTER_H

/* Where a test's router lives. */
struct gr_test_router {
    char dir[64];               /* a fresh /tmp/grTAG.XXXXXX */
    char shm[64];               /* /grtest-TAG-PID */
    char conf[128];             /* DIR/r.conf, for the test to write */
    int pid;                    /* the router, once started */
};

/* Make r's directory and names for tag.  0, or -1. */
int gr_test_router_paths(struct gr_test_router *r, const char *tag);

/* Stop r's router and remove its directory: 0 when both went well. */
int gr_test_router_end(struct gr_test_router *r);

/*
 * Start $BIN/gemrouted (BIN defaults to "bin") as
 * `gemrouted -c conf --foreground --unlink-on-exit`, its stdout and
 * stderr appended to log (NULL: /dev/null), and wait until it serves
 * table shm with its config applied: the table's header names this
 * router's pid, a config generation of 1 or more and its control socket
 * (opened after the config watch, so a change of the config file is
 * seen from then on).  (A router started
 * on a table another left behind adopts it, generation and all, so the
 * pid is what tells the new router from the old.)  Returns the router's
 * pid, or -1 when it could not be started or exited before it was ready
 * (then it has been reaped).  The caller's watchdog bounds the wait.
 */
int gr_test_router_start(const char *conf, const char *shm, const char *log);

/* The formatted text written to path.tmp and renamed over path, as an
 * editor does (what the router's config watch must see): path, or NULL. */
const char *gr_test_conf_put(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* SIGTERM the router and reap it; 0 when it exited cleanly. */
int gr_test_router_stop(int pid);

#endif
