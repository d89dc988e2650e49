/*
 * wake.h - where blocked reservations sleep: a process-shared futex word
 * in the header.  The router bumps it every tick and whoever frees
 * capacity may bump it too; a sleeper also has a timeout, so a dead
 * router costs latency, never a hang.
 */
#ifndef GR_SHM_WAKE_H
#define GR_SHM_WAKE_H

#include "table.h"

#include <stdint.h>

/* The word's value now, to pass to gr_shm_sleep(). */
uint32_t gr_shm_wake_seen(const struct gr_shm *t);

/* Sleep until the word moves from seen or timeout_ns passes. */
void gr_shm_sleep(const struct gr_shm *t, uint32_t seen, int64_t timeout_ns);

/* Bump the word and wake the sleepers, if any. */
void gr_shm_wake_all(const struct gr_shm *t);

#endif
