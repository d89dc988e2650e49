/*
 * dashboard.h - the dashboard at /gemroute/ (dashboard.c), as server.c
 * sees it: a request in plain C strings, an answer to send.  No HTTP
 * library's type appears here; server.c does the translation.
 */
#ifndef GW_DASHBOARD_H
#define GW_DASHBOARD_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

#define GW_DASH_HEADERS 10

struct gw_dash_req {
    const char *method;             /* "GET", "POST", ... */
    const char *path;               /* "/gemroute/...", without a query */
    const char *authorization;      /* header values, NULL when absent */
    const char *cookie;
    const char *origin;
    const char *host;
    const char *csrf;               /* x-csrf-token */
    const char *fetch_site;         /* sec-fetch-site */
    const char *body;
    size_t len;
};

struct gw_dash_resp {
    int status;
    const char *ctype;
    char *body;                     /* malloc'd, or NULL */
    size_t len;
    unsigned n_headers;
    const char *hname[GW_DASH_HEADERS];
    char hvalue[GW_DASH_HEADERS][256];
};

/* True when path is the dashboard's (/gemroute or under /gemroute/). */
bool gw_dash_path(const char *path);

/* Answer one request of the dashboard; out->body is the caller's to
 * free.  Thread-safe. */
void gw_dash_handle(struct gw *gw, const struct gw_dash_req *in,
                    struct gw_dash_resp *out);

/* HMAC-SHA256 (RFC 2104), for the session cookie; exposed for its
 * test. */
void gw_dash_hmac(const void *key, size_t klen, const void *msg, size_t mlen,
                  unsigned char out[32]);

#endif
