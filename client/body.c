/*
 * body.c - what an answer's body says of itself, for callers of the
 * public API: the status it states.  The parsing is response.c's; this
 * file only gives it a public name, so no tool needs response_priv.h.
 */
#include "gemroute.h"
#include "response_priv.h"

int
gr_body_status(const char *body, size_t len)
{
    return gr_resp_status(body, len);
}
