/*
 * fuzz_mock_request.c - libFuzzer harness for the mock server's request
 * parser: the URL router, the body parser of every model method and the
 * control-endpoint parser.  Any bytes: a result or a Google-worded error,
 * never a crash or a read past the input.  Built and run by tools/fuzz.sh.
 *
 * Input: byte 0 picks the method, byte 1 splits the rest into a path and
 * a body.
 */
#include "request.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gr_mock_route route;
    struct gr_mock_usage u;
    struct gr_mock_admin a;
    char msg[512], field[128], *path, *body;
    size_t cut, blen;
    int m;

    if (size < 2)
        return 0;
    m = data[0] % 5;
    cut = size > 2 ? data[1] % (size - 1) : 0;
    path = malloc(cut + 1);
    memcpy(path, data + 2, cut > size - 2 ? size - 2 : cut);
    path[cut > size - 2 ? size - 2 : cut] = '\0';
    gr_mock_route_parse((data[0] & 0x80) ? "POST" : "GET", path, &route);
    free(path);
    blen = size - 2 > cut ? size - 2 - cut : 0;
    body = malloc(blen ? blen : 1);     /* exact length: no NUL after it */
    memcpy(body, data + 2 + (size - 2 - blen), blen);
    if (gr_mock_parse_body((enum gr_mock_method)m, body, blen, &u, msg,
                           sizeof(msg), field, sizeof(field)) == 0) {
        if (u.requests < 1 || u.tokens < 0 || u.images < 0)
            abort();
    } else if (msg[0] == '\0') {
        abort();    /* refused without Google's wording */
    }
    gr_mock_parse_admin(body, blen, &a, msg, sizeof(msg));
    free(body);
    return 0;
}
