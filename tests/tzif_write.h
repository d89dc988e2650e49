/*
 * tzif_write.h - write small TZif files (RFC 8536) for the tests of the
 * reader (test_clock.c) and of the days the router publishes
 * (test_tzday.c).  Header-only: each test includes it once.
 */
#ifndef GR_TZIF_WRITE_H
#define GR_TZIF_WRITE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static size_t
tzw_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* One header and data block: times 4 or 8 bytes. */
static size_t
tzw_block(uint8_t *p, char version, size_t tsize, unsigned n,
          const int64_t *trans, const uint8_t *types, unsigned ntypes,
          const int32_t *utoff, const uint8_t *isdst)
{
    uint8_t *b = p;
    unsigned i;

    memcpy(p, "TZif", 4);
    p[4] = (uint8_t)version;
    memset(p + 5, 0, 15);
    p += 20;
    p += tzw_be32(p, 0);            /* isutcnt */
    p += tzw_be32(p, 0);            /* isstdcnt */
    p += tzw_be32(p, 0);            /* leapcnt */
    p += tzw_be32(p, n);            /* timecnt */
    p += tzw_be32(p, ntypes);       /* typecnt */
    p += tzw_be32(p, 4);            /* charcnt: "ZZZ\0" */
    for (i = 0; i < n; i++) {
        if (tsize == 8) {
            p += tzw_be32(p, (uint32_t)((uint64_t)trans[i] >> 32));
            p += tzw_be32(p, (uint32_t)trans[i]);
        } else {
            p += tzw_be32(p, (uint32_t)(int32_t)trans[i]);
        }
    }
    for (i = 0; i < n; i++)
        *p++ = types[i];
    for (i = 0; i < ntypes; i++) {
        p += tzw_be32(p, (uint32_t)utoff[i]);
        *p++ = isdst[i];
        *p++ = 0;
    }
    memcpy(p, "ZZZ", 4);
    p += 4;
    return (size_t)(p - b);
}

/*
 * A whole file into buf: version 0 writes v1 only; '2'..'4' write the v1
 * block, the v2 block and the footer (NULL: an empty footer).  Returns
 * its length.
 */
static size_t
tzw_file(uint8_t *buf, char version, unsigned n, const int64_t *trans,
         const uint8_t *types, unsigned ntypes, const int32_t *utoff,
         const uint8_t *isdst, const char *footer)
{
    size_t len = tzw_block(buf, version, 4, n, trans, types, ntypes, utoff,
                           isdst);

    if (version == 0)
        return len;
    len += tzw_block(buf + len, version, 8, n, trans, types, ntypes, utoff,
                     isdst);
    len += (size_t)sprintf((char *)buf + len, "\n%s\n",
                           footer != NULL ? footer : "");
    return len;
}

#endif
