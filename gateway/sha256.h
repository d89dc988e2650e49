/*
 * sha256.h - SHA-256 (FIPS 180-4), incremental, for the dashboard's
 * HMAC: a copy of tools/mock/sha256.h (a module may not include
 * another's headers).
 */
#ifndef GW_SHA256_H
#define GW_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct gw_sha256 {
    uint32_t h[8];
    uint64_t bytes; /* hashed so far */
    unsigned char buf[64];
    size_t used; /* bytes waiting in buf */
};

void gw_sha256_init(struct gw_sha256 *s);
void gw_sha256_add(struct gw_sha256 *s, const void *data, size_t n);
void gw_sha256_end(struct gw_sha256 *s, unsigned char out[32]);

#endif
