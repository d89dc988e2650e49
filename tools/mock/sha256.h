/*
 * sha256.h - SHA-256 (FIPS 180-4), incremental, so an upload is hashed
 * as its bytes arrive and never has to be kept.
 */
#ifndef GR_MOCK_SHA256_H
#define GR_MOCK_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct gr_mock_sha256 {
    uint32_t h[8];
    uint64_t bytes; /* hashed so far */
    unsigned char buf[64];
    size_t used; /* bytes waiting in buf */
};

void gr_mock_sha256_init(struct gr_mock_sha256 *s);
void gr_mock_sha256_add(struct gr_mock_sha256 *s, const void *data, size_t n);
void gr_mock_sha256_end(struct gr_mock_sha256 *s, unsigned char out[32]);

#endif
