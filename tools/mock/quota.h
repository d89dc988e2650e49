/*
 * quota.h - one (project, model) cell of the mock: Google's quota as a
 * strict sliding window per minute dimension and a Pacific calendar day,
 * plus the counters /mock/stats shows.
 */
#ifndef GR_MOCK_QUOTA_H
#define GR_MOCK_QUOTA_H

#include "mock.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* What one request costs; the index is also the window-sum index. */
struct gr_mock_cost {
    int64_t requests;
    int64_t tokens; /* input tokens (promptTokenCount) */
    int64_t images; /* image inlineData parts */
};

/* Why a request was refused, and when it could pass. */
struct gr_mock_verdict {
    unsigned violated; /* bit (1u << dim) per refused dimension */
    int64_t retry_ns;  /* ns until every violated dimension has room */
};

/* What the cell did with an admitted request. */
enum gr_mock_outcome { GR_MOCK_SERVE = 0, GR_MOCK_FAIL_503, GR_MOCK_FAIL_500 };

struct gr_mock_counters {
    uint64_t admitted; /* counted against quota */
    uint64_t served;   /* answered 200 */
    uint64_t injected_503;
    uint64_t injected_500;
    uint64_t refused;                    /* answered 429 */
    uint64_t refused_dim[GR_MOCK_NDIMS]; /* 429s naming each dimension */
    uint64_t tokens;                     /* input tokens admitted */
    uint64_t images;                     /* input images admitted */
    uint64_t count_tokens;               /* countTokens calls (free) */
};

/* A consistent copy of a cell for /mock/stats. */
struct gr_mock_cell_view {
    int64_t limit[GR_MOCK_NDIMS];
    int64_t window[3];    /* requests, tokens, images in the window;
                             -1 when no minute dimension is limited */
    int64_t day_requests; /* in the current Pacific day */
    int64_t day_tokens;   /* input tokens in that day (TPD) */
    int32_t day;          /* that day, days since 1970-01-01 */
    struct gr_mock_counters c;
};

/* One admission inside the minute window; cum[] is a running total. */
struct gr_mock_win_entry {
    int64_t at;     /* ns, CLOCK_MONOTONIC: when admitted */
    int64_t cum[3]; /* requests, tokens, images admitted so far */
};

struct gr_mock_cell {
    _Alignas(64) pthread_mutex_t lock; /* guards everything below; cells
                                          on their own cache lines */
    int64_t limit[GR_MOCK_NDIMS];      /* GR_MOCK_UNLIMITED or >= 0 */
    int log_minutes;                   /* some minute dimension is limited */
    struct gr_mock_win_entry *ring;    /* admissions still inside the window */
    size_t cap;                        /* power of two, or 0 */
    size_t head;
    size_t len;
    int64_t total[3]; /* cum of the newest entry ever logged */
    int64_t base[3];  /* cum of the newest entry expired */
    int64_t last_at;  /* ns, CLOCK_MONOTONIC: newest entry */
    int32_t day;      /* Pacific day of day_requests and day_tokens */
    int64_t day_requests;
    int64_t day_tokens;
    struct gr_mock_counters c;
};

int gr_mock_cell_init(struct gr_mock_cell *cell,
                      const int64_t limit[GR_MOCK_NDIMS]);
void gr_mock_cell_destroy(struct gr_mock_cell *cell);

/*
 * Admit cost on every dimension or on none.  Times are read inside the
 * cell's lock so the window log stays in time order: now_mono from
 * CLOCK_MONOTONIC, the wall clock shifted by wall_offset_ns for the day.
 * Returns 0 (admitted, outcome counted), -EAGAIN (refused, *v says why)
 * or -ENOMEM (not admitted, nothing counted).
 */
int gr_mock_cell_admit(struct gr_mock_cell *cell,
                       const struct gr_mock_cost *cost, int64_t window_ns,
                       int64_t wall_offset_ns, enum gr_mock_outcome outcome,
                       struct gr_mock_verdict *v);

/* The same with both clocks given: the engine under test, without time. */
int gr_mock_cell_admit_at(struct gr_mock_cell *cell,
                          const struct gr_mock_cost *cost, int64_t now_mono,
                          int64_t now_wall, int64_t window_ns,
                          enum gr_mock_outcome outcome,
                          struct gr_mock_verdict *v);

void gr_mock_cell_count_tokens_call(struct gr_mock_cell *cell);
void gr_mock_cell_view(struct gr_mock_cell *cell, int64_t window_ns,
                       int64_t wall_offset_ns, struct gr_mock_cell_view *out);
void gr_mock_cell_reset(struct gr_mock_cell *cell);

#endif
