/*
 * gemroute_forward.h - gr_forward() without a thread per call: forwards
 * driven by an event loop of their own (client/forward.c).  Shared-
 * private, like gemroute_json.h: for gemroute-gateway, which links
 * libgemroute's objects.  Not installed, not exported from the shared
 * library (hidden visibility; not in libgemroute.map).
 *
 * A loop is one thread with one libcurl multi handle.  A forward handed
 * to it (gr_fwd_submit()) is a record, not a thread: the loop reserves
 * (without waiting: a try, then a timer until room may come or the
 * queue deadline), starts the transfer, classifies, reports and settles
 * at its end, and retries (after its backoff, a timer) exactly as
 * gr_forward() does.  libcurl's and the loop's types stay inside
 * forward.c; the caller sees an opaque loop and callbacks.
 *
 * The callbacks of struct gr_fwd (on_start, on_event, on_header,
 * cancelled) and done are called on the loop's thread and must not
 * block: they are the loop.  cancelled is asked at least every 10 ms
 * while a call waits for room or runs.
 */
#ifndef GEMROUTE_FORWARD_H
#define GEMROUTE_FORWARD_H

#include "gemroute.h"

struct gr_fwd_loop;

/* A forward ended with rc (as gr_forward() returns); out is filled. */
typedef void (*gr_fwd_done_fn)(void *arg, int rc);

/*
 * What a loop may serve besides its forwards, on the same thread (the
 * gateway's HTTP side, so that a call never crosses threads): a
 * descriptor the loop waits on with its own (readable, level-
 * triggered), and run(), called on the loop's thread when fd is
 * readable, when the time run() last asked for has come, and once at
 * the start.  run() returns the milliseconds until it wants to be
 * called again however quiet fd stays, or -1 for not before fd is
 * ready.  run() may submit forwards to lp (they start on the loop's
 * next turn) and must not block.
 */
struct gr_fwd_host {
    int fd;
    long (*run)(void *arg, struct gr_fwd_loop *lp);
    void *arg;
};

/* A loop and its thread, serving host too when it is not NULL (host is
 * copied): NULL on failure (errno). */
struct gr_fwd_loop *gr_fwd_loop_new(struct gr *g,
                                    const struct gr_fwd_host *host);

/* Ends the loop once it has no forward left (each must end: cancelled
 * answers non-zero when its caller stops), joins its thread, frees it.
 * Its host is served until then and never after. */
void gr_fwd_loop_free(struct gr_fwd_loop *lp);

/* The host has something to do (libmicrohttpd: a connection resumed,
 * which its own wake-up does not signal when it runs in no thread of
 * its own): its run() is called on the loop's next turn.  Any thread. */
void gr_fwd_loop_host_due(struct gr_fwd_loop *lp);

/* Forwards the loop holds now (submitted, not yet done). */
unsigned gr_fwd_loop_count(struct gr_fwd_loop *lp);

/*
 * Forward f on loop lp.  0: done(arg, rc) will be called once, on the
 * loop's thread (also when the forward is refused before any attempt);
 * f (and what it points to), opts and out must stay until then.
 * -EAGAIN: this forward goes through the response cache, a fallback
 * chain or a model alias, which only gr_forward() does: call that.
 * -ENOMEM.
 */
int gr_fwd_submit(struct gr_fwd_loop *lp, const struct gr_fwd *f,
                  const struct gr_call_opts *opts, struct gr_response *out,
                  gr_fwd_done_fn done, void *arg);

#endif
