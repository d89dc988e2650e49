/*
 * batch_priv.h - a thread's batch leases: one lease of the table admitted
 * for several calls at once, handed out one call at a time without
 * touching the table, and settled once when its last call is committed.
 *
 * A thread gets one only while it calls often (each reservation within a
 * tick of the last) and the cell has ample room (shm/reserve.c,
 * batch_for()); anywhere else a reservation is one lease per call.  See
 * docs/ADMISSION.md, "Batch leases", for why this never over-admits.
 */
#ifndef GR_BATCH_PRIV_H
#define GR_BATCH_PRIV_H

#include "client_priv.h"
#include "reserve.h"

#include <stdbool.h>
#include <stdint.h>

/* At most this many calls per batch lease, whatever the table says
 * (router.batch_calls, default 128, at most this). */
#define GR_BATCH_MAX 1024

/* What a reservation knows when it asks the batch layer. */
struct gr_batch_ask {
    int model;                  /* index in the table */
    uint64_t config_gen;        /* generation the index was read at */
    const struct gr_cost *cost;
    int64_t now_ns;             /* CLOCK_MONOTONIC (coarse is enough) */
};

/*
 * Take one call from this thread's open batch lease for (g, model), and
 * fill out as gr_reserve() would.  false when there is none that may
 * still be used (then the caller reserves in the table).
 */
bool gr_batch_take(struct gr *g, const struct gr_batch_ask *q,
                   struct gr_lease *out);

/* How many calls to ask the table for at once: 1 for no batch now, 0
 * when batch leases are off (router.batch_calls = 1). */
uint32_t gr_batch_want(const struct gr *g, const struct gr_batch_ask *q);

/*
 * The table granted gt->batch > 1 calls and out was filled for the
 * first: keep the rest for this thread until stop_ns (CLOCK_MONOTONIC),
 * and mark out as taken from the batch.
 */
void gr_batch_start(struct gr *g, const struct gr_batch_ask *q,
                    const struct gr_shm_grant *gt, int64_t stop_ns,
                    struct gr_lease *out);

/* Note a reservation made in the table (no batch), for gr_batch_want(). */
void gr_batch_note(const struct gr *g, const struct gr_batch_ask *q);

/* gr_commit() of a call taken from a batch lease. */
void gr_batch_commit(struct gr_lease *lease, const struct gr_usage *actual);

/* This thread takes no more calls from the batch lease was taken from
 * (an answer other than success came on it). */
void gr_batch_drop(const struct gr_lease *lease);

/* gr_close(): settle every batch lease of g this process still holds
 * whose calls are all committed. */
void gr_batch_close_all(struct gr *g);

#endif
