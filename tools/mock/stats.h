/*
 * stats.h - the JSON bodies of the mock's own endpoints: /mock/stats,
 * /mock/clock and /mock/faults.
 */
#ifndef GR_MOCK_STATS_H
#define GR_MOCK_STATS_H

#include "jsonw.h"
#include "state.h"

void gr_mock_stats_render(struct gr_mock_state *st, struct gr_mock_buf *b);
void gr_mock_stats_clock(struct gr_mock_state *st, struct gr_mock_buf *b);
void gr_mock_stats_faults(struct gr_mock_state *st, struct gr_mock_buf *b);

#endif
