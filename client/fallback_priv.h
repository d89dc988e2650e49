/*
 * fallback_priv.h - the step every call of the library goes through
 * before and after its HTTP work (client/fallback.c): the shared
 * response cache first, then the call on the model asked for, then, when
 * that model has no room before the queue deadline (or its day quota is
 * spent everywhere) and the caller allows it, the next model of its
 * fallback chain.
 */
#ifndef GR_CLIENT_FALLBACK_PRIV_H
#define GR_CLIENT_FALLBACK_PRIV_H

#include "client_priv.h"

/* What a request is, for the cache (which may keep its answer). */
enum gr_fb_kind {
    GR_FB_GENERATE = 0,     /* non-streamed generateContent */
    GR_FB_COUNT,            /* countTokens */
    GR_FB_EMBED,            /* embedContent */
    GR_FB_BATCH_EMBED,      /* batchEmbedContents */
    GR_FB_OTHER,            /* never cached (streams, OpenAI, listings) */
};

struct gr_fb_req {
    enum gr_fb_kind kind;
    const char *model;      /* the model asked for */
    const char *body;       /* the request body (may be NULL) */
    size_t len;
    bool no_fallback;       /* this request cannot change model (its path
                               names none, or it names a resource pinned
                               to one project) */
};

/* One call on model with opts: gr_generate()'s or gr_forward()'s work. */
typedef int (*gr_fb_one)(void *arg, const char *model,
                         const struct gr_call_opts *opts,
                         struct gr_response *out);

/* The call q through the cache and the fallback chain; returns what the
 * last one() returned, or GR_OK for a cache hit. */
int gr_fb_call(struct gr *g, const struct gr_fb_req *q,
               const struct gr_call_opts *opts, gr_fb_one one, void *arg,
               struct gr_response *out);

/* Would gr_fb_call() call `one` once, for q->model, and do nothing
 * else (no cache, no fallback chain)?  Then a caller may call it
 * itself (forward.c's event loop). */
bool gr_fb_plain(struct gr *g, const struct gr_fb_req *q,
                 const struct gr_call_opts *opts);

/* Write path with "models/FROM:" changed to "models/TO:" into buf; -1
 * when path names no model or buf is too small. */
int gr_fb_path(const char *path, const char *from, const char *to,
               char *buf, size_t n);

#endif
