/*
 * delay.h - one timer thread that calls fire(arg) when each deadline
 * passes, so injected latency parks a request instead of a server thread.
 */
#ifndef GR_MOCK_DELAY_H
#define GR_MOCK_DELAY_H

#include <stdint.h>

struct gr_mock_delay;

/* Start the thread.  0 or -errno. */
int gr_mock_delay_start(struct gr_mock_delay **out, void (*fire)(void *arg));

/*
 * Call fire(arg) at due (ns, CLOCK_MONOTONIC), from the timer thread.
 * 0, -ECANCELED once stopping (fire is then not called) or -ENOMEM.
 */
int gr_mock_delay_add(struct gr_mock_delay *d, int64_t due, void *arg);

/* Fire everything still pending at once, join the thread, free it. */
void gr_mock_delay_stop(struct gr_mock_delay *d);

#endif
