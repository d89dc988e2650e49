/*
 * worker.c - the one-call worker thread (worker.h) of the health probes
 * and the batch polls, written once.
 *
 * Invariant protected: the job and its result belong to the thread only
 * while the stage is RUNNING and to the tick otherwise (the stage moves
 * under the mutex), so neither side ever reads what the other writes.
 */
#include "worker.h"

#include <errno.h>

static void *
worker_main(void *arg)
{
    struct gr_rtr_worker *w = arg;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->stage != GR_RTR_WORK_WAITING)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        w->stage = GR_RTR_WORK_RUNNING;
        pthread_mutex_unlock(&w->mu);
        /* The job is the thread's alone while the stage is RUNNING. */
        w->run(w->arg);
        pthread_mutex_lock(&w->mu);
        w->stage = GR_RTR_WORK_DONE;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int
gr_rtr_worker_start(struct gr_rtr_worker *w, void (*run)(void *arg),
                    void *arg)
{
    int rc;

    w->stop = false;
    w->stage = GR_RTR_WORK_IDLE;
    w->run = run;
    w->arg = arg;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        return -rc;
    }
    return 0;
}

void
gr_rtr_worker_kick(struct gr_rtr_worker *w)
{
    pthread_cond_signal(&w->cv);
}

bool
gr_rtr_worker_stop(struct gr_rtr_worker *w)
{
    bool busy;

    pthread_mutex_lock(&w->mu);
    w->stop = true;
    busy = w->stage == GR_RTR_WORK_RUNNING;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (busy) {
        pthread_detach(w->thread);
        return false;
    }
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    return true;
}
