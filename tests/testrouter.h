/*
 * testrouter.h - a real gemrouted for a test binary: started on a config
 * file, waited for until its table is ready, stopped at the end.
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
 * Start $BIN/gemrouted (BIN defaults to "bin") on config file conf, its
 * stderr to /dev/null, and wait until table shm is ready: the router has
 * applied its config, so a reservation of nothing on model passes.
 * Returns the router's pid, or -1.
 */
int gr_test_router_start(const char *conf, const char *shm,
                         const char *model);

/* SIGTERM the router and reap it; 0 when it exited cleanly. */
int gr_test_router_stop(int pid);

#endif
