/*
 * client_priv.h - the library's handle, shared by the files of client/.
 */
#ifndef GR_CLIENT_PRIV_H
#define GR_CLIENT_PRIV_H

#include "gemroute.h"
#include "table.h"

#include <pthread.h>

struct gr {
    struct gr_shm t;
    uint64_t id;                /* unique per gr_open in this process: the
                                   key of the per-thread caches (a new
                                   mapping may land at an old address) */
    pthread_mutex_t err_lock;   /* guards err between threads */
    char err[256];
};

/* Keep a sentence about the last failure on the handle. */
void gr_seterr(struct gr *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* This process's pid, kept current across fork(). */
uint32_t gr_self_pid(void);

/* A per-thread random state, seeded once per thread. */
uint64_t *gr_thread_rng(void);

#endif
