/*
 * media_first.c - when the estimate cannot read a request's media, ask
 * countTokens first, and remember per resource what it said
 * (docs/CLIENT.md, "Media tokens").
 *
 * A part the client cannot measure locally: a fileData part (its bytes
 * are at Google), a cachedContent (its contents too), or an inline part
 * of a format media.c does not read.  The record of resources
 * (shm/resource.h) keeps one token count per file or cache, shared by
 * every process of the host: a cache's from its create answer
 * (usageMetadata.totalTokenCount), a file's from the first countTokens
 * of a request that names it alone among unknown things.  Invariant
 * protected: a count is recorded only when it can be attributed to one
 * resource (exactly one unknown, no unread inline part), so a recorded
 * count is never another part's tokens.
 */
#include "client_priv.h"
#include "media_first.h"

#include <string.h>

void
gr_media_need(struct gr *g, const struct gr_est *e, const struct gr_pin *pin,
              struct gr_media_need *nd)
{
    unsigned i, files = 0;

    memset(nd, 0, sizeof(*nd));
    for (i = 0; i < pin->n && i < GR_PIN_MAX; i++) {
        const char *name = pin->names[i];
        bool cache = strncmp(name, "cachedContents/", 15) == 0;
        int64_t t;

        if (!cache && strncmp(name, "files/", 6) != 0)
            continue;
        files += !cache;
        if (gr_res_tokens(g, name, &t) != 0) {
            nd->unrecorded++;
        } else if (t > 0) {
            nd->known += t;
        } else {
            if (nd->unknown++ == 0) {
                memcpy(nd->name, name, sizeof(nd->name));
                nd->cache = cache;
            }
        }
    }
    /* A fileData part naming no Files API file (a YouTube or gs:// URI):
     * only Google can count it. */
    nd->ask = e->unread > 0 || nd->unknown > 0 || nd->unrecorded > 0 ||
              (e->files > 0 && files == 0);
}

void
gr_media_learn(struct gr *g, const struct gr_media_need *nd,
               const struct gr_est *e, int64_t local, int64_t total,
               int64_t cached)
{
    int64_t t;

    if (nd->unknown != 1 || nd->unrecorded != 0 || e->unread != 0)
        return;                 /* not one resource's alone */
    if (nd->cache && cached > 0)
        t = cached;             /* Google says it: cachedContentTokenCount */
    else
        t = total - local - nd->known;
    if (t > 0)
        (void)gr_res_set_tokens(g, nd->name, t);
}
