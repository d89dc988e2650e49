/*
 * history.h - the layout of the history segment: what the last hour of
 * every cell looked like, sampled by the router.
 *
 * Wire format between the router (router/history.c, the only writer)
 * and readers (client/history.c, behind gr_stat_history()), not a public
 * API.  A companion of the table: POSIX shared memory named after it
 * with ".hist" appended ("/gemroute" -> "/gemroute.hist"), created by the
 * router with the table's mode and group, unlinked with it.  Every
 * gateway process reads the same ring, so any of them serves the same
 * picture and a gateway restart loses nothing; a router restart starts
 * a new ring.
 *
 *   header     one page: struct gr_hist_header
 *   times      GR_HIST_SAMPLES x int64 (unix ms of each sample)
 *   waiting    GR_HIST_SAMPLES x uint32 (clients asleep for room)
 *   points     max_cells x GR_HIST_SAMPLES x struct gr_hist_point
 *
 * A sample n (n counts from 0) lives at index n % GR_HIST_SAMPLES.  The
 * router writes sample n's words (relaxed), then stores written = n + 1
 * (release).  A reader loads written (acquire), copies the samples it
 * wants (relaxed loads), loads written again (after an acquire fence)
 * and keeps only samples the router cannot have started to overwrite:
 * n > written_after - GR_HIST_SAMPLES.  Every index and count read is
 * range-checked against the header's own geometry, which the reader
 * checks against the file's size.
 */
#ifndef GR_SHM_HISTORY_H
#define GR_SHM_HISTORY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GR_HIST_MAGIC UINT64_C(0x3154534948524d47) /* "GMRHIST1" */
#define GR_HIST_ABI 1u
#define GR_HIST_SAMPLES 720u        /* one hour at GR_HIST_PERIOD_MS */
#define GR_HIST_PERIOD_MS 5000u
#define GR_HIST_SUFFIX ".hist"
#define GR_HIST_NDIM 4              /* rpm, tpm, rpd, ipm */

struct gr_hist_header {
    uint64_t magic;
    uint32_t abi;
    uint32_t samples;               /* GR_HIST_SAMPLES */
    uint32_t period_ms;
    uint32_t max_projects;          /* as the table's */
    uint32_t max_models;
    uint32_t pad0;
    uint64_t size;                  /* bytes of the whole segment */
    int64_t router_pid;
    _Atomic uint64_t written;       /* samples written since creation */
    unsigned char pad1[4096 - 56];
};
_Static_assert(sizeof(struct gr_hist_header) == 4096, "one page");
_Static_assert(offsetof(struct gr_hist_header, written) == 48, "written");

/* One cell at one sample.  Counters are the cell's cumulative counts,
 * cut to 32 bits: a reader takes differences modulo 2^32. */
struct gr_hist_point {
    _Atomic uint32_t used[GR_HIST_NDIM];    /* rpm, tpm, rpd, ipm, now */
    _Atomic uint32_t admitted;
    _Atomic uint32_t rejected;
    _Atomic uint32_t quota_429;             /* every dimension and bare */
    _Atomic uint32_t errors;                /* 5xx, auth and other */
};
_Static_assert(sizeof(struct gr_hist_point) == 32, "two points a line");
_Static_assert(__atomic_always_lock_free(sizeof(uint32_t), 0),
               "32-bit atomics are address-free");

static inline size_t
gr_hist_times_off(void)
{
    return sizeof(struct gr_hist_header);
}

static inline size_t
gr_hist_waiting_off(void)
{
    return gr_hist_times_off() + GR_HIST_SAMPLES * sizeof(int64_t);
}

static inline size_t
gr_hist_points_off(void)
{
    return gr_hist_waiting_off() + GR_HIST_SAMPLES * sizeof(uint32_t);
}

static inline size_t
gr_hist_size(uint32_t max_projects, uint32_t max_models)
{
    return gr_hist_points_off() + (size_t)max_projects * max_models *
           GR_HIST_SAMPLES * sizeof(struct gr_hist_point);
}

#endif
