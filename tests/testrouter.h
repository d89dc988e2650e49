/*
 * testrouter.h - a real gemrouted for a test binary: started on a config
 * file, waited for until its table is ready, stopped at the end.
 */
#ifndef GR_TESTROUTER_H
#define GR_TESTROUTER_H

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
