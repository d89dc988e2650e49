/*
 * http.c - the HTTP calls of libgemroute, over libcurl (forward.c drives
 * libcurl for the gateway's forwards).
 *
 * Each thread keeps one easy handle (curl_thread.c keeps it, and drops
 * it after fork()) and reuses it for every call it makes, so
 * connections (and HTTP/2 sessions, when the server offers h2 over TLS)
 * stay open from one call to the next.  The options that are
 * the same for every call, and the header list, are set once when the
 * handle is made; a call sets only what is its own (URL, proxy, body,
 * timeouts, where the answer goes) and writes its key into the header
 * line kept for it, which is wiped again when the call is over.
 * Proxies come from router.proxy when it is set, else from the standard
 * environment variables (https_proxy, all_proxy, no_proxy, ...), read by
 * libcurl's rules when the handle is made rather than by libcurl on
 * every transfer (five getenv() and copies, 2,000 instructions a call).
 *
 * Invariants protected: the key travels only in the x-goog-api-key
 * header, never in a URL or an error message, and our copies of that
 * header are wiped once the call is over; no answer body larger than
 * GR_HTTP_BODY_MAX is kept; the first-byte instant handed to gr_commit()
 * is never earlier than the instant the first byte really came, so the
 * admission cannot leave its window before Google's count of it does.
 */
#include "http_priv.h"
#include "client_priv.h"
#include "curl_priv.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONNECT_MAX_MS 10000        /* a connection takes at most this */
#define USER_AGENT "gemroute/1 (libcurl)"

#define KEY_HEADER "x-goog-api-key: "
#define KEY_HEADER_LEN (sizeof(KEY_HEADER) - 1)

/* What this thread keeps beside its handle (the slot's priv). */
struct conn {
    CURL *h;                    /* the slot's handle, not ours to free */
    struct curl_slist *hdrs;    /* every header line we send */
    char *key_line;             /* the x-goog-api-key line in hdrs: room
                                   for KEY_HEADER + GR_KEY_MAX bytes; holds
                                   no key between calls */
    char *env_proxy[2];         /* the environment's proxy for http and
                                   https URLs when the handle was made;
                                   NULL = none */
    char *proxy;                /* CURLOPT_PROXY as last set ("" = none);
                                   NULL = not set yet */
};

/* One transfer in progress. */
struct xfer {
    const struct gr_http_req *req;
    struct gr_http_res *res;
    CURL *h;
    size_t cap;                 /* bytes allocated for res->body */
    int64_t first_header_ns;    /* CLOCK_MONOTONIC; 0 = none yet */
    int status;                 /* known once the body starts */
    bool too_big;
    bool stopped;
    bool nomem;
};

/* Free a string that may hold a password (a proxy URL). */
static void
wipe_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* Free a header list after wiping every string in it. */
static void
wipe_headers(struct curl_slist *l)
{
    struct curl_slist *i;

    for (i = l; i != NULL; i = i->next)
        explicit_bzero(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

static void
conn_free(void *p)
{
    struct conn *c = p;

    wipe_headers(c->hdrs);
    wipe_free(c->env_proxy[0]);
    wipe_free(c->env_proxy[1]);
    wipe_free(c->proxy);
    free(c);
}

static size_t on_header(char *p, size_t size, size_t n, void *arg);
static size_t on_body(char *p, size_t size, size_t n, void *arg);

/*
 * The header lines, the key's with a placeholder as long as the longest
 * key (curl_slist_append copies it, so the copy is a buffer of that
 * size; each call writes its key over it, then wipes it).
 */
static struct curl_slist *
make_headers(char **key_line)
{
    struct curl_slist *l = NULL, *n;
    char line[KEY_HEADER_LEN + GR_KEY_MAX + 1];

    memcpy(line, KEY_HEADER, KEY_HEADER_LEN);
    memset(line + KEY_HEADER_LEN, 'x', GR_KEY_MAX);
    line[sizeof(line) - 1] = '\0';
    if ((n = curl_slist_append(l, "Content-Type: application/json")) == NULL)
        goto fail;
    l = n;
    /* No "Expect: 100-continue" round trip before the body. */
    if ((n = curl_slist_append(l, "Expect:")) == NULL)
        goto fail;
    l = n;
    /* The same line CURLOPT_USERAGENT would make, made once here rather
     * than formatted by libcurl on every request. */
    if ((n = curl_slist_append(l, "User-Agent: " USER_AGENT)) == NULL)
        goto fail;
    l = n;
    if ((n = curl_slist_append(l, line)) == NULL)
        goto fail;
    l = n;
    while (n->next != NULL)
        n = n->next;
    *key_line = n->data;
    explicit_bzero(*key_line + KEY_HEADER_LEN, GR_KEY_MAX);
    return l;

fail:
    curl_slist_free_all(l);
    return NULL;
}

/* The options that are the same for every call, set once per handle. */
static void
set_fixed_options(CURL *h)
{
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Threads: no signals (no SIGALRM for DNS timeouts, no SIGPIPE). */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* gzip, the coding Google's API documentation offers.  "" (every
     * coding this libcurl knows) cost 3,500 more instructions a call. */
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t)GR_HTTP_BODY_MAX);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
}

const char *
gr_http_env_proxy(bool https)
{
    const char *v = getenv(https ? "https_proxy" : "http_proxy");

    if (v == NULL && https)
        v = getenv("HTTPS_PROXY");
    if (v == NULL)
        v = getenv("all_proxy");
    if (v == NULL)
        v = getenv("ALL_PROXY");
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* A copy of gr_http_env_proxy() into *out (NULL: none): 0 or -ENOMEM. */
static int
env_proxy(bool https, char **out)
{
    const char *v = gr_http_env_proxy(https);

    *out = NULL;
    if (v != NULL && (*out = strdup(v)) == NULL)
        return -ENOMEM;
    return 0;
}

/* The environment's proxies and no_proxy list, read once (see the top). */
static int
read_proxy_env(struct conn *c)
{
    const char *no = getenv("no_proxy");

    if (no == NULL)
        no = getenv("NO_PROXY");
    /* "" (no host exempt) rather than NULL: NULL has libcurl read the
     * environment on every transfer. */
    if (curl_easy_setopt(c->h, CURLOPT_NOPROXY, no != NULL ? no : "") !=
        CURLE_OK)
        return -ENOMEM;
    if (env_proxy(false, &c->env_proxy[0]) != 0 ||
        env_proxy(true, &c->env_proxy[1]) != 0)
        return -ENOMEM;
    return 0;
}

/* This thread's handle, set up on first use; NULL when out of memory. */
static struct conn *
thread_conn(void)
{
    struct gr_curl_slot *s = gr_curl_slot(GR_CURL_HTTP);
    struct conn *c;

    if (s == NULL)
        return NULL;
    if (s->priv != NULL)
        return s->priv;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        goto fail;
    c->h = s->h;
    c->hdrs = make_headers(&c->key_line);
    if (c->hdrs == NULL || read_proxy_env(c) != 0) {
        conn_free(c);
        goto fail;
    }
    set_fixed_options(c->h);
    s->priv = c;
    s->priv_free = conn_free;
    return c;

fail:
    gr_curl_drop(GR_CURL_HTTP);  /* the next call starts afresh */
    return NULL;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;

    (void)p;
    if (x->first_header_ns == 0)
        x->first_header_ns = gr_now_ns();
    return size * n;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    struct gr_http_res *res = x->res;
    size_t len = size * n;

    if (x->status == 0) {
        long code = 0;

        curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
        x->status = (int)code;
    }
    if (len > GR_HTTP_BODY_MAX - res->len) {
        x->too_big = true;
        return 0;       /* curl stops with CURLE_WRITE_ERROR */
    }
    if (res->len + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        char *b;

        while (cap < res->len + len + 1)
            cap *= 2;
        if (cap > GR_HTTP_BODY_MAX + 1)
            cap = GR_HTTP_BODY_MAX + 1;
        b = realloc(res->body, cap);
        if (b == NULL) {
            x->nomem = true;
            return 0;
        }
        res->body = b;
        x->cap = cap;
    }
    memcpy(res->body + res->len, p, len);
    res->len += len;
    res->body[res->len] = '\0';
    if (x->req->tap != NULL &&
        x->req->tap(x->req->arg, x->status, p, len) != 0) {
        x->stopped = true;
        return 0;
    }
    return len;
}

/* The "model:method" end of the URL: enough to name the call in an
 * error, and free of anything a base URL might carry (user:password). */
static const char *
url_tail(const char *url)
{
    const char *s = strrchr(url, '/');

    return s != NULL ? s + 1 : url;
}

/* A header value must not smuggle a line end or a control character. */
static bool
key_ok(const char *key)
{
    const unsigned char *k = (const unsigned char *)key;

    if (*k == '\0')
        return false;
    for (; *k != '\0'; k++)
        if (*k <= 0x20 || *k == 0x7f)
            return false;
    return true;
}

/* Set err and a sentence in res; returns err. */
static enum gr_http_err
say(struct gr_http_res *res, enum gr_http_err err, const char *url,
    const char *what)
{
    res->err = err;
    snprintf(res->error, sizeof(res->error), "%s: %s", url_tail(url), what);
    return err;
}

static enum gr_http_err
map_error(CURLcode rc, const struct xfer *x)
{
    const struct gr_http_res *res = x->res;

    if (rc == CURLE_OK)
        return GR_HTTP_OK;
    if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        return GR_HTTP_TOO_BIG;
    if (x->stopped)
        return GR_HTTP_STOPPED;
    if (x->nomem || rc == CURLE_OUT_OF_MEMORY)
        return GR_HTTP_NOMEM;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return GR_HTTP_TIMEOUT;
    if (res->status == 0 &&
        (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
         rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SSL_CONNECT_ERROR ||
         rc == CURLE_PEER_FAILED_VERIFICATION ||
         rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SEND_ERROR ||
         rc == CURLE_GOT_NOTHING))
        return GR_HTTP_NOCONN;
    return GR_HTTP_BROKEN;
}

/* Point the handle at router.proxy, else the environment's proxy for the
 * URL's scheme, else none; set only when it changes (libcurl keeps its
 * own copy).  0, or -ENOMEM. */
static int
set_proxy(struct conn *c, const struct gr_http_req *req)
{
    const char *want = req->proxy != NULL ? req->proxy : "";
    char *copy;

    if (want[0] == '\0')
        want = c->env_proxy[strncasecmp(req->url, "https:", 6) == 0];
    if (want == NULL)
        want = "";
    if (c->proxy != NULL && strcmp(want, c->proxy) == 0)
        return 0;
    if ((copy = strdup(want)) == NULL)
        return -ENOMEM;
    if (curl_easy_setopt(c->h, CURLOPT_PROXY, want) != CURLE_OK) {
        wipe_free(copy);
        return -ENOMEM;
    }
    wipe_free(c->proxy);
    c->proxy = copy;
    return 0;
}

/* What is this call's own; the rest stays as set_fixed_options() left
 * it. */
static void
set_options(struct conn *c, const struct gr_http_req *req, struct xfer *x,
            char *errbuf, int64_t left_ms)
{
    CURL *h = c->h;

    curl_easy_setopt(h, CURLOPT_URL, req->url);
    if (req->body != NULL) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req->len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);   /* a probe */
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(left_ms < CONNECT_MAX_MS ? left_ms
                                                     : CONNECT_MAX_MS));
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
}

enum gr_http_err
gr_http_post(const struct gr_http_req *req, struct gr_http_res *res)
{
    char errbuf[CURL_ERROR_SIZE];
    struct conn *c;
    struct xfer x;
    size_t klen;
    curl_off_t start_us = 0;
    int64_t t0, left_ms, fb;
    long code = 0;
    CURLcode rc;
    CURL *h;

    memset(res, 0, sizeof(*res));
    if (!gr_curl_start())
        return say(res, GR_HTTP_NOMEM, req->url, "libcurl did not start");
    if (!key_ok(req->key))
        return say(res, GR_HTTP_NOCONN, req->url,
                   "the project's key is empty or holds a space or control "
                   "character; not sent");
    t0 = gr_now_ns();
    left_ms = (req->stop_at_ns - t0) / 1000000;
    if (left_ms < 1)
        return say(res, GR_HTTP_TIMEOUT, req->url,
                   "no time left before the deadline");
    klen = strnlen(req->key, GR_KEY_MAX);
    if (klen >= GR_KEY_MAX)
        return say(res, GR_HTTP_NOCONN, req->url,
                   "the project's key is too long; not sent");
    if ((c = thread_conn()) == NULL || set_proxy(c, req) != 0)
        return say(res, GR_HTTP_NOMEM, req->url, "out of memory");
    h = c->h;
    memcpy(c->key_line + KEY_HEADER_LEN, req->key, klen + 1);
    memset(&x, 0, sizeof(x));
    x.req = req;
    x.res = res;
    x.h = h;
    errbuf[0] = '\0';
    set_options(c, req, &x, errbuf, left_ms);

    t0 = gr_now_ns();
    rc = curl_easy_perform(h);

    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    res->status = (int)code;
    /*
     * The first byte: curl's STARTTRANSFER time counts from its own
     * start, which we can only anchor to a clock read made just before
     * it (so it may come out a little early); the header callback's
     * clock read comes after the byte did.  The later of the two is
     * never early, which is the direction that keeps the window safe.
     */
    curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &start_us);
    fb = 0;
    if (x.first_header_ns != 0) {
        fb = start_us > 0 ? t0 + (int64_t)start_us * 1000 : 0;
        if (fb < x.first_header_ns)
            fb = x.first_header_ns;
    }
    res->first_byte_ns = fb;
    /* Nothing of this call may stay behind in the handle: the key is
     * wiped, and the handle points at no buffer of this stack frame. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    explicit_bzero(c->key_line + KEY_HEADER_LEN, GR_KEY_MAX);

    res->err = map_error(rc, &x);
    switch (res->err) {
    case GR_HTTP_OK:
        break;
    case GR_HTTP_TOO_BIG:
        snprintf(errbuf, sizeof(errbuf), "answer larger than %u MiB; "
                 "refused", GR_HTTP_BODY_MAX >> 20);
        say(res, res->err, req->url, errbuf);
        break;
    case GR_HTTP_STOPPED:
        say(res, res->err, req->url, "stopped while reading the answer");
        break;
    default:
        say(res, res->err, req->url,
            errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
        break;
    }
    /* Paranoia: no message of ours may ever carry the key. */
    if (strstr(res->error, req->key) != NULL)
        snprintf(res->error, sizeof(res->error), "%s: transfer failed",
                 url_tail(req->url));
    explicit_bzero(errbuf, sizeof(errbuf));
    return res->err;
}
