/*
 * caches.h - the mock's cachedContents store: context caches, each owned
 * by the project whose key created it, with an expiry the owner may
 * move (PATCH ttl or expireTime) and the token count of what it holds.
 * Another project, or a cache past its expiry, is answered 403 as
 * Google does ("CachedContent not found (or permission denied)").
 */
#ifndef GR_MOCK_CACHES_H
#define GR_MOCK_CACHES_H

#include "jsonw.h"

#include <stddef.h>
#include <stdint.h>

#define GR_MOCK_CACHE_ID_LEN 12          /* "cachedContents/" + 12 */
#define GR_MOCK_CACHE_DEFAULT_TTL_NS (INT64_C(3600) * 1000000000)
#define GR_MOCK_MAX_CACHES 1000

struct gr_mock_caches;

struct gr_mock_cache_info {
    char id[GR_MOCK_CACHE_ID_LEN + 1];
    char model[96];             /* "models/gemini-2.5-flash" */
    char display[128];
    int64_t tokens;             /* usageMetadata.totalTokenCount */
    int64_t created_ns, updated_ns, expire_ns;  /* the mock's wall clock */
};

int gr_mock_caches_new(struct gr_mock_caches **out);
void gr_mock_caches_free(struct gr_mock_caches *cs);
void gr_mock_caches_reset(struct gr_mock_caches *cs);

/*
 * POST /{v}/cachedContents with body: 0 and *out; -EINVAL with a
 * sentence in msg (no model, a bad ttl or expireTime); -EMFILE (full).
 */
int gr_mock_caches_create(struct gr_mock_caches *cs, uint32_t project,
                          const char *body, size_t len, int64_t now_ns,
                          struct gr_mock_cache_info *out, char *msg,
                          size_t msglen);

/* The owner's live cache id: 0 and *out (may be NULL), or -EACCES. */
int gr_mock_caches_get(struct gr_mock_caches *cs, uint32_t project,
                       const char *id, int64_t now_ns,
                       struct gr_mock_cache_info *out);

/* PATCH: a new ttl or expireTime from body; 0, -EACCES or -EINVAL. */
int gr_mock_caches_patch(struct gr_mock_caches *cs, uint32_t project,
                         const char *id, const char *body, size_t len,
                         int64_t now_ns, struct gr_mock_cache_info *out,
                         char *msg, size_t msglen);

int gr_mock_caches_delete(struct gr_mock_caches *cs, uint32_t project,
                          const char *id, int64_t now_ns);

/* Up to max of project's live caches, in creation order. */
size_t gr_mock_caches_list(struct gr_mock_caches *cs, uint32_t project,
                           int64_t now_ns, struct gr_mock_cache_info *out,
                           size_t max);

/* The cache a generate request names ("cachedContent"), into id: 1, or
 * 0 when it names none; -EINVAL when it names something that is not a
 * cache name. */
int gr_mock_caches_named(const char *body, size_t len,
                         char id[GR_MOCK_CACHE_ID_LEN + 8]);

/* The CachedContent resource as Google writes it. */
void gr_mock_cache_json(struct gr_mock_jw *w, const char *key,
                        const struct gr_mock_cache_info *c);

#endif
