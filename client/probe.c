/*
 * probe.c - is a refused key, or a disabled (project, model), good again?
 *
 * The cheapest call Google offers: GET {base_url}/v1beta/models/{model}
 * with the key, through the same HTTP code as every call (http.c: the
 * key only in its header, never in a URL, a log or a message).  It costs
 * no generation quota.  The router calls it from its probe thread
 * (router/probe.c) for a key or cell it holds disabled, and applies the
 * verdict itself: DESIGN.md's one exception to "the router never makes
 * an HTTP call to Google".
 */
#include "gemroute.h"
#include "http_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
gr_probe(const char *base_url, const char *proxy, const char *key,
         const char *model, int64_t deadline_ns, struct gr_verdict *out)
{
    char url[GR_URL_MAX + GR_NAME_MAX + 32];
    struct gr_http_req req;
    struct gr_http_res res;
    int n;

    if (out == NULL)
        return GR_EINVAL;
    gr_classify(0, NULL, 0, 0, out);
    if (base_url == NULL || key == NULL || model == NULL ||
        model[0] == '\0' || strchr(model, '/') != NULL ||
        strchr(model, '?') != NULL) {
        snprintf(out->reason, sizeof(out->reason), "probe: bad argument");
        return GR_EINVAL;
    }
    n = snprintf(url, sizeof(url), "%s/v1beta/models/%s", base_url, model);
    if (n < 0 || (size_t)n >= sizeof(url)) {
        snprintf(out->reason, sizeof(out->reason), "probe: URL too long");
        return GR_EINVAL;
    }
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.key = key;
    req.proxy = proxy;
    req.body = NULL;                    /* GET */
    req.stop_at_ns = deadline_ns;
    gr_http_post(&req, &res);
    if (res.status == 0) {
        gr_classify(0, NULL, 0, time(NULL), out);
        snprintf(out->reason, sizeof(out->reason), "probe: no answer: %.160s",
                 res.error);
    } else {
        gr_classify(res.status, res.err == GR_HTTP_OK ? res.body : NULL,
                    res.err == GR_HTTP_OK ? res.len : 0, time(NULL), out);
    }
    free(res.body);
    /* A 2xx whose body did not come whole still says the key works. */
    return out->cls == GR_CLASS_OK ? GR_OK : GR_ECALL;
}
