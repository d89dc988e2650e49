/*
 * curl_priv.h - the easy handles libgemroute keeps per thread, one for
 * each of its users of libcurl (http.c, forward.c).  Private to client/.
 */
#ifndef GR_CURL_PRIV_H
#define GR_CURL_PRIV_H

#include <stdbool.h>

/* Who a handle is for: each keeps its own options and connections. */
enum gr_curl_user {
    GR_CURL_HTTP,               /* http.c: gr_http_post() */
    GR_CURL_FORWARD,            /* forward.c: gr_forward() */
    GR_CURL_USERS
};

/* One user's handle on this thread, and what the user keeps beside it. */
struct gr_curl_slot {
    void *h;                    /* a CURL *; NULL until gr_curl_slot()
                                   makes it */
    void *priv;                 /* the user's; NULL until it sets it:
                                   the handle is then still to set up */
    void (*priv_free)(void *priv);  /* frees priv; set with priv */
};

/* curl_global_init(), once per process; false when it failed. */
bool gr_curl_start(void);

/*
 * This thread's slot of `who`: its handle made on first use, or taken
 * with its priv from the spares an ended thread left (priv NULL: a new
 * handle, to set up).  A handle made before a fork() is abandoned in the
 * child, never used, its priv freed; an ending thread's forward handle
 * becomes a spare, its others are cleaned up.  NULL when out of memory
 * or when libcurl did not start.
 */
struct gr_curl_slot *gr_curl_slot(enum gr_curl_user who);

/* Clean up this thread's handle of `who` and free its priv (a handle
 * whose set-up failed). */
void gr_curl_drop(enum gr_curl_user who);

#endif
