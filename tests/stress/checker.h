/*
 * checker.h - the exact over-admission checker of DESIGN.md invariant 1.
 *
 * Every admission is logged by the process that made it.  An admission
 * occupies its cell's minute windows from the instant it was admitted to
 * one window after its settle instant (the answer's first byte), with the
 * refunded part of an estimate leaving at the instant it was refunded.
 * The checker replays every cell's log and reports the highest occupancy
 * seen on each dimension: anything above the effective limit is a bug.
 */
#ifndef GR_TEST_CHECKER_H
#define GR_TEST_CHECKER_H

#include <stdatomic.h>
#include <stdint.h>

enum {
    GR_REC_FREE = 0,
    GR_REC_ADMITTED = 1,    /* a_ns and cost are valid */
    GR_REC_SETTLED = 2,     /* s_ns, c_ns and actual are valid too */
};

/* One admission.  state is written last (release) by its process. */
struct gr_rec {
    _Atomic uint32_t state;
    uint32_t cell;
    int32_t pid;
    uint32_t pad;
    int64_t a_ns;           /* admitted (observed after gr_reserve) */
    int64_t s_ns;           /* first byte, passed to gr_commit */
    int64_t c_ns;           /* just before gr_commit (refund instant) */
    int64_t cost[3];        /* requests, tokens, images */
    int64_t actual[3];
};

/* A shared log that survives kill -9 of its writers. */
struct gr_reclog {
    _Atomic uint64_t n;
    uint64_t cap;
    struct gr_rec r[];
};

struct gr_reclog *gr_reclog_new(uint64_t cap);   /* MAP_SHARED */
void gr_reclog_free(struct gr_reclog *log);
struct gr_rec *gr_reclog_add(struct gr_reclog *log);

/* When each killed pid was killed (its unsettled leases end then). */
struct gr_kill {
    int32_t pid;
    int64_t at_ns;
};

struct gr_check_result {
    int64_t max_occupancy[3];   /* per window dim, over all cells */
    int64_t violations;         /* instants above the limit */
    uint64_t admitted;          /* records checked */
    uint64_t unsettled;         /* records of killed clients */
    double utilisation[3];      /* admitted / capacity, saturated dims */
};

/*
 * Replay log.  limit[d] is the effective limit of every cell on window
 * dim d (-1 = unlimited), window_ns the window; [t0, t1] is the span over
 * which utilisation is measured.  Returns 0 when no instant of any cell
 * is above the limit.
 */
int gr_check(const struct gr_reclog *log, const int64_t limit[3],
             int64_t window_ns, const struct gr_kill *kills, unsigned nkills,
             int64_t t0, int64_t t1, unsigned ncells,
             struct gr_check_result *out);

#endif
