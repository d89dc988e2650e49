/*
 * store_priv.h - the shared response cache (client/cache.c): an LMDB
 * environment in the directory the table names, shared by every process
 * of the host.  Nothing of LMDB shows here.
 */
#ifndef GR_CLIENT_STORE_PRIV_H
#define GR_CLIENT_STORE_PRIV_H

#include "client_priv.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The settings the router published; false when there is no cache (off,
 * or a table of ABI 4.1). */
struct gr_cache_cfg {
    uint32_t flags;                 /* GR_CACHE_ON, GR_CACHE_GENERATE */
    uint64_t max_bytes;
    int64_t ttl_s;
    char path[GR_SHM_URL_MAX];
};
bool gr_cache_settings(const struct gr *g, struct gr_cache_cfg *c);

/*
 * The canonical form of a JSON text: objects with their keys sorted, no
 * whitespace.  malloc'd, NULL when s is not JSON.
 */
char *gr_cache_canon(const char *s, size_t len, size_t *out_len);

/*
 * Look key (any bytes) up.  1 and a malloc'd copy of the answer in *body
 * on a hit.  0 on a miss: *claimed says whether this process is now the
 * one that calls upstream for key (the others that miss meanwhile wait
 * for its answer until until_ns, CLOCK_MONOTONIC); the claimer then
 * stores the answer (gr_cache_put) or gives the claim up
 * (gr_cache_unclaim).  -1 when the cache cannot be used (refused: the
 * reason went to the handle).
 */
int gr_cache_get(struct gr *g, const struct gr_cache_cfg *c,
                 const char *key, size_t klen, int64_t until_ns,
                 bool *claimed, char **body, size_t *len);

/* Give up a claim that no answer will fill (the call failed). */
void gr_cache_unclaim(struct gr *g, const struct gr_cache_cfg *c,
                      const char *key, size_t klen);

/* Keep body under key for c->ttl_s; 0 or -1. */
int gr_cache_put(struct gr *g, const struct gr_cache_cfg *c,
                 const char *key, size_t klen, const char *body,
                 size_t len);

#endif
