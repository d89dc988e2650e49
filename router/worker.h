/*
 * worker.h - one call at a time off the router's tick thread (the health
 * probes, the batch polls): the tick hands a job over, a thread of its
 * own makes the call, the tick takes the result on a later tick.
 */
#ifndef GR_RTR_WORKER_H
#define GR_RTR_WORKER_H

#include <pthread.h>
#include <stdbool.h>

enum {
    GR_RTR_WORK_IDLE,               /* nothing handed over */
    GR_RTR_WORK_WAITING,            /* a job handed over, not yet taken */
    GR_RTR_WORK_RUNNING,            /* the thread's alone until done */
    GR_RTR_WORK_DONE                /* a result waiting for the tick */
};

struct gr_rtr_worker {
    pthread_t thread;
    pthread_mutex_t mu;             /* guards stage and stop */
    pthread_cond_t cv;
    bool stop;
    int stage;                      /* GR_RTR_WORK_* */
    void (*run)(void *arg);         /* the call, on the thread */
    void *arg;
};

/* Start the thread, which runs run(arg) each time the stage is set to
 * WAITING (under mu, then gr_rtr_worker_kick()).  0 or -errno. */
int gr_rtr_worker_start(struct gr_rtr_worker *w, void (*run)(void *arg),
                        void *arg);

/* Wake the thread for a job just handed over; with mu held. */
void gr_rtr_worker_kick(struct gr_rtr_worker *w);

/* Stop the thread.  true when it was joined (its memory may be freed);
 * false when a call is under way: it ends by its own timeout, detached,
 * and its memory (and arg's) is left to the exit. */
bool gr_rtr_worker_stop(struct gr_rtr_worker *w);

#endif
