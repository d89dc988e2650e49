/*
 * forward.c - gr_forward(): one request of any Gemini route (or of
 * Google's OpenAI-compatible API) sent through the table the way
 * generate.c sends generateContent: estimate, reserve, HTTP, classify,
 * report, settle, retry elsewhere.  And gr_models(), the models the table
 * serves.  For gemroute-gateway, which hands on what its callers send.
 *
 * This file drives libcurl itself (http.c knows one POST with one header
 * for the key; a forward needs GET and DELETE, a Bearer key and the
 * caller's headers): one easy handle per thread (curl_thread.c keeps it,
 * and drops it after fork()), reset after each attempt, keeping its
 * own connections (TLS sessions are shared by the process).  The header
 * lines of an attempt are written into room the thread keeps, grown to
 * the largest call seen, rather than allocated line by line.  A forward
 * started from inside another one's callback on the same thread gets a
 * handle of its own for that attempt.
 *
 * The forward is split into its steps (fwd_init, a reservation,
 * attempt_begin / transfer_prep, transfer_end / attempt_end,
 * after_attempt) so that two drivers share them: run(), which blocks
 * its thread (gr_forward()), and the event loops of
 * include/gemroute_forward.h (gr_fwd_submit(), at the end of this file),
 * where a call in flight is a record: a timer while it waits for room or
 * its backoff, a call of the loop's own HTTP/1.1 client (h1.c) while it
 * transfers, or an easy handle in the loop's libcurl multi handle when
 * a proxy is in the way.  The rules are the same code: retry, settle,
 * classify.
 *
 * Invariants protected: every lease taken is settled exactly once, with
 * the count Google reported when there is one and the estimate kept
 * otherwise; a call is retried only while nothing of a stream reached
 * the caller; the key travels only in its header line, which is wiped
 * after the attempt, and appears in no message.
 */
#include "client_priv.h"
#include "curl_priv.h"
#include "fallback_priv.h"
#include "estimate_priv.h"
#include "json_priv.h"
#include "response_priv.h"
#include "spend.h"
#include "reserve.h"
#include "seqlock.h"
#include "gemroute_forward.h"
#include "h1.h"

#include <curl/curl.h>
#include <errno.h>
#include <json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
#define DEFAULT_DEADLINE_NS (120 * NS_PER_S)
#define DEFAULT_ATTEMPTS 8
#define DEFAULT_BACKOFF_BASE_NS (100 * NS_PER_MS)
#define DEFAULT_BACKOFF_CAP_NS (10 * NS_PER_S)
#define MAX_ATTEMPTS 100
#define CONNECT_MAX_MS 10000
#define BODY_MAX (64u << 20)        /* largest non-stream answer kept */
#define URL_MAX (GR_URL_MAX + 2048)
/* f->cancelled is asked at most this often during a transfer: libcurl
 * calls the progress callback on every turn of its loop (nine times in
 * a 100 us call to the mock, each a poll() of the caller's socket in
 * the gateway), and at least once a second, which the promise keeps. */
#define CANCEL_POLL_NS (10 * NS_PER_MS)

/* One forward in progress. */
struct fwd {
    struct gr *g;
    const struct gr_fwd *f;
    struct gr_call_opts o;
    int64_t start_ns;
    struct gr_response *out;
    /* per attempt */
    CURL *h;
    char *buf;                  /* the answer (not of a 2xx stream) */
    size_t len, cap;
    int status;
    int64_t first_byte_ns;
    bool too_big, stopped, user_stopped, nomem;
    struct gr_sse sse;
    int64_t oai_prompt;         /* usage.prompt_tokens seen; -1 = none */
    char *err_event;
    size_t err_event_len;
    const char *project;
    uint64_t delivered;         /* events given to on_event, all attempts */
    struct gr_pin pin;          /* the resources named; project pinned */
    int64_t cancel_at_ns;       /* ask f->cancelled again from then on */
    int64_t max_out;            /* output tokens the request allows (spend
                                   caps); -1 = the model's maximum */
    struct gr_shm_spend_use spend_use;  /* the answer's usage, for its
                                           cost; prompt -1 = none */
    char cerr[CURL_ERROR_SIZE];         /* libcurl's sentence (may name
                                           the URL, never the key) */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ok;
/* SSL_CERT_FILE, read once: the certificates an upstream's must chain
 * to, as the loops' own client takes them from OpenSSL (libcurl would
 * use its built-in bundle instead); NULL = the system's. */
static char *ca_file;

/*
 * An easy handle and the room for its header lines: this thread's (the
 * slot's priv), or one made for a single attempt when the thread's is
 * busy.  The room holds no header between attempts (wiped).
 */
struct fwd_handle {
    CURL *h;                    /* the slot's, or the attempt's own */
    bool busy;                  /* an attempt of this thread is using it */
    bool own;                   /* made for one attempt: freed after it */
    struct curl_slist *node;    /* node[0..nodes) */
    const char **line;          /* line[i] = node[i].data (h1.c's form) */
    size_t nodes;
    char *text;                 /* the lines' bytes, text[0..text_cap) */
    size_t text_cap;
};

/*
 * TLS sessions shared by every forward of the process, so that a new
 * connection resumes one.  Connections and DNS answers are not shared:
 * each thread's handle keeps its own (in the handle's own multi, kept
 * across curl_easy_reset()), because a shared connection cache takes
 * one process-wide lock twice per call, and with a gateway's many
 * threads on few cores that lock was the largest source of futex waits
 * (10 per call at 64 connections).  libcurl asks for a lock per kind of
 * shared data.
 */
static CURLSH *share;
static pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];

static void
share_lock_fn(CURL *h, curl_lock_data data, curl_lock_access access,
              void *arg)
{
    (void)h;
    (void)access;
    (void)arg;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&share_lock[data]);
}

static void
share_unlock_fn(CURL *h, curl_lock_data data, void *arg)
{
    (void)h;
    (void)arg;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&share_lock[data]);
}

static void
curl_start(void)
{
    const char *ca = getenv("SSL_CERT_FILE");
    int i;

    curl_ok = gr_curl_start();
    if (!curl_ok)
        return;
    if (ca != NULL && ca[0] != '\0')
        ca_file = strdup(ca);   /* NULL when out of memory: the default */
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_lock[i], NULL);
    share = curl_share_init();
    if (share == NULL)
        return;     /* works without: a connection per attempt */
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock_fn);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock_fn);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

#define fail_msg(c, ...) gr_call_fail((c)->g, (c)->out, __VA_ARGS__)

/* usage.prompt_tokens of an OpenAI-shaped answer or event; -1 = none. */
static int64_t
oai_prompt_tokens(const char *s, size_t n)
{
    struct json_object *root;
    int64_t v = -1;

    if (n == 0 || memmem(s, n, "\"usage\"", 7) == NULL)
        return -1;
    root = gr_json_parse(s, n, 0, 0, NULL);
    (void)gr_json_member_i64(gr_json_member(root, "usage", GR_JSON_OBJECT),
                             "prompt_tokens", &v);
    json_object_put(root);
    return v;
}

/* totalTokens of a countTokens answer; -1 = none. */
static int64_t
count_total(const char *s, size_t n)
{
    struct json_object *root = gr_json_parse(s, n, 0, 0, NULL);
    int64_t v = -1;

    (void)gr_json_member_i64(root, "totalTokens", &v);
    json_object_put(root);
    return v;
}

#define PREDICT_SAMPLES 4           /* Imagen's default sampleCount */
#define PREDICT_SAMPLES_MAX 8

/* The images an Imagen :predict asks for: parameters.sampleCount. */
static int64_t
predict_samples(const char *body, size_t len)
{
    struct json_object *root = gr_json_parse(body, len, 0, 0, NULL);
    struct json_object *p = gr_json_member(root, "parameters",
                                           GR_JSON_OBJECT);
    int64_t v = PREDICT_SAMPLES;

    if (gr_json_member_i64(p, "sampleCount", &v) ||
        gr_json_member_i64(p, "sample_count", &v)) {
        /* Out of range: Google refuses it, and counts no image; reserve
         * the most it could have made, never less. */
        if (v < 1 || v > PREDICT_SAMPLES_MAX)
            v = PREDICT_SAMPLES_MAX;
    }
    json_object_put(root);
    return v;
}

/* The cost rule of generate.c (docs/CLIENT.md), by kind. */
static void
estimate(const struct fwd *c, struct gr_cost *cost)
{
    const struct gr_fwd *f = c->f;
    struct gr_est e;

    cost->requests = 1;
    cost->tokens = 0;
    cost->images = 0;
    if (f->kind == GR_FWD_COUNT || f->kind == GR_FWD_FREE) {
        cost->requests = 0;
        return;
    }
    if (c->o.est_tokens > 0) {
        cost->tokens = c->o.est_tokens;
    } else if (f->kind == GR_FWD_OPENAI) {
        cost->tokens = ((int64_t)f->len + 3) / 4;
    } else if (f->kind == GR_FWD_PREDICT) {
        cost->tokens = ((int64_t)f->len + 3) / 4;
        cost->images = predict_samples(f->body, f->len);
    } else {
        gr_est_read(f->body, f->len, &e);
        if (f->kind == GR_FWD_BATCH_EMBED && e.requests > 0)
            cost->requests = e.requests;
        cost->images = e.images;
        if (gr_est_any(&e))
            cost->tokens = gr_est_tokens(&e, f->model);
        else
            cost->tokens = ((int64_t)f->len + 3) / 4;
    }
    if (cost->tokens > INT32_MAX)
        cost->tokens = INT32_MAX;
}

/* ---- one attempt: the HTTP transfer ----------------------------------- */

static int
on_sse_event(void *arg, const char *data, size_t len)
{
    struct fwd *c = arg;
    const struct gr_fwd *f = c->f;

    if (c->sse.error_code != 0) {
        /* An error inside a 2xx stream: for the classifier only. */
        if (c->err_event == NULL && (c->err_event = malloc(len + 1)) != NULL) {
            memcpy(c->err_event, data, len + 1);
            c->err_event_len = len;
        }
        return 0;
    }
    if (f->kind == GR_FWD_OPENAI) {
        int64_t p = oai_prompt_tokens(data, len);

        if (p >= 0)
            c->oai_prompt = p;
    }
    if (c->delivered == 0 && f->on_start != NULL &&
        f->on_start(f->arg, c->project, c->out->queued_ns) != 0) {
        c->user_stopped = true;
        return 1;
    }
    c->delivered++;
    if (f->on_event != NULL && f->on_event(f->arg, data, len) != 0) {
        c->user_stopped = true;
        return 1;
    }
    return 0;
}

/* curl's progress callback: the caller may cancel the call. */
static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
            curl_off_t un)
{
    struct fwd *c = arg;
    int64_t now;

    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    if (c->f->cancelled == NULL || (now = gr_now_ns()) < c->cancel_at_ns)
        return 0;
    c->cancel_at_ns = now + CANCEL_POLL_NS;
    if (c->f->cancelled(c->f->arg) != 0) {
        c->user_stopped = true;
        return 1;
    }
    return 0;
}

/* The first byte of the head came; a head line for the caller: false
 * when it stops the call. */
static bool
head_take(struct fwd *c, const char *p, size_t len)
{
    if (c->first_byte_ns == 0)
        c->first_byte_ns = gr_now_ns();
    if (c->f->on_header != NULL && c->f->on_header(c->f->arg, p, len) != 0) {
        c->user_stopped = true;
        return false;
    }
    return true;
}

/* Bytes of the answer's body (c->status known): false when the call
 * stops (stopped, too big, out of memory). */
static bool
body_take(struct fwd *c, const char *p, size_t len)
{
    if (c->f->sse && c->status >= 200 && c->status <= 299) {
        if (gr_sse_feed(&c->sse, p, len, on_sse_event, c) != 0) {
            c->stopped = true;
            return false;
        }
        return true;
    }
    if (len > BODY_MAX - c->len) {
        c->too_big = true;
        return false;
    }
    if (c->len + len + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        char *b;

        while (cap < c->len + len + 1)
            cap *= 2;
        if ((b = realloc(c->buf, cap)) == NULL) {
            c->nomem = true;
            return false;
        }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, len);
    c->len += len;
    c->buf[c->len] = '\0';
    return true;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    return head_take(arg, p, size * n) ? size * n : 0;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct fwd *c = arg;

    if (c->status == 0) {
        long code = 0;

        curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
        c->status = (int)code;
    }
    return body_take(c, p, size * n) ? size * n : 0;
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

/* Free a handle record; its CURL is freed only when it is its own. */
static void
fwd_handle_free(void *p)
{
    struct fwd_handle *t = p;

    if (t->own && t->h != NULL)
        curl_easy_cleanup(t->h);
    free(t->node);
    free(t->line);
    free(t->text);          /* wiped after every attempt */
    free(t);
}

/* The options every attempt of a handle shares, kept by reset. */
static void
fwd_handle_setup(CURL *h)
{
    /* curl_easy_reset() keeps the share and the handle's connections. */
    if (share != NULL)
        curl_easy_setopt(h, CURLOPT_SHARE, share);
}

/*
 * A handle for one attempt: this thread's, else (it is busy, an attempt
 * under way further up this thread's stack) one of its own.  NULL when
 * out of memory.
 */
static struct fwd_handle *
fwd_handle_take(void)
{
    struct gr_curl_slot *s = gr_curl_slot(GR_CURL_FORWARD);
    struct fwd_handle *t;

    if (s != NULL && (t = s->priv) != NULL && !t->busy) {
        t->busy = true;
        return t;
    }
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    if (s != NULL && s->priv == NULL) {
        t->h = s->h;
        s->priv = t;
        s->priv_free = fwd_handle_free;
    } else if ((t->h = curl_easy_init()) != NULL) {
        t->own = true;
    } else {
        free(t);
        return NULL;
    }
    fwd_handle_setup(t->h);
    t->busy = true;
    return t;
}

/* The attempt is over: its options and header lines forgotten. */
static void
fwd_handle_give(struct fwd_handle *t, size_t text_used)
{
    if (text_used > 0)
        explicit_bzero(t->text, text_used);
    if (t->own) {
        fwd_handle_free(t);
        return;
    }
    /* Nothing of the attempt (its stack buffers, its callbacks' data)
     * stays set on the handle. */
    curl_easy_reset(t->h);
    t->busy = false;
}

/* Room for `nodes` header lines of `bytes` bytes in all: 0 or -ENOMEM. */
static int
room_grow(struct fwd_handle *t, size_t nodes, size_t bytes)
{
    void *p;

    if (nodes > t->nodes) {
        if ((p = realloc(t->node, nodes * sizeof(*t->node))) == NULL)
            return -ENOMEM;
        t->node = p;
        if ((p = realloc(t->line, nodes * sizeof(*t->line))) == NULL)
            return -ENOMEM;
        t->line = p;
        t->nodes = nodes;
    }
    if (bytes > t->text_cap) {
        /* realloc may leave a copy behind: the room holds nothing now */
        if ((p = realloc(t->text, bytes)) == NULL)
            return -ENOMEM;
        t->text = p;
        t->text_cap = bytes;
    }
    return 0;
}

/* Append the line a b (b may be "") to the list in t's room. */
static void
room_add(struct fwd_handle *t, size_t *n, size_t *used, const char *a,
         const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *d = t->text + *used;

    memcpy(d, a, la);
    memcpy(d + la, b, lb + 1);
    *used += la + lb + 1;
    t->node[*n].data = d;
    t->line[*n] = d;
    t->node[*n].next = NULL;
    if (*n > 0)
        t->node[*n - 1].next = &t->node[*n];
    (*n)++;
}

/*
 * An attempt's URL (url[URL_MAX]) and header lines, in t's room (*np of
 * them, *usedp bytes to wipe after): CURLE_OK, else a curl code and a
 * sentence without the key in errbuf; *timeout says no time is left.
 * The last line, "Expect:", is libcurl's alone (no 100-continue).
 */
static int
request_prep(struct fwd *c, const struct gr_lease *l, int64_t stop_at,
             struct fwd_handle *t, char *url, size_t *np, size_t *usedp,
             char *errbuf, size_t errlen, bool *timeout)
{
    static const char bearer[] = "Authorization: Bearer ";
    static const char goog[] = "x-goog-api-key: ";
    static const char ctype[] = "Content-Type: application/json";
    static const char ua[] = "User-Agent: gemroute-gateway/1";
    const struct gr_fwd *f = c->f;
    const char *auth = f->kind == GR_FWD_OPENAI ? bearer : goog;
    bool has_ua = false;
    int64_t left_ms = (stop_at - gr_now_ns()) / NS_PER_MS;
    size_t i, n = 0, used = 0, nodes, bytes;

    *timeout = false;
    *usedp = *np = 0;
    errbuf[0] = c->cerr[0] = '\0';
    if (left_ms < 1) {
        *timeout = true;
        snprintf(errbuf, errlen, "no time left before the deadline");
        return CURLE_OPERATION_TIMEDOUT;
    }
    if (!key_ok(l->key)) {
        snprintf(errbuf, errlen, "the project's key is empty or holds a "
                 "space or control character; not sent");
        return CURLE_COULDNT_CONNECT;
    }
    if ((size_t)snprintf(url, URL_MAX, "%s%s", l->base_url, f->path) >=
        URL_MAX) {
        snprintf(errbuf, errlen, "URL too long");
        return CURLE_URL_MALFORMAT;
    }
    /* The lines: the key's, Expect, Content-Type, the caller's, UA. */
    nodes = 4;
    bytes = strlen(auth) + strlen(l->key) + 1 +
            sizeof("Expect:") + sizeof(ctype) + sizeof(ua);
    for (i = 0; f->headers != NULL && f->headers[i] != NULL; i++) {
        if (strncasecmp(f->headers[i], "user-agent:", 11) == 0)
            has_ua = true;
        nodes++;
        bytes += strlen(f->headers[i]) + 1;
    }
    if (room_grow(t, nodes, bytes) != 0) {
        snprintf(errbuf, errlen, "out of memory");
        return CURLE_OUT_OF_MEMORY;
    }
    room_add(t, &n, &used, auth, l->key);
    if (f->body != NULL)
        room_add(t, &n, &used, ctype, "");
    for (i = 0; f->headers != NULL && f->headers[i] != NULL; i++)
        room_add(t, &n, &used, f->headers[i], "");
    if (!has_ua)
        room_add(t, &n, &used, ua, "");
    room_add(t, &n, &used, "Expect:", "");
    *np = n;
    *usedp = used;
    return CURLE_OK;
}

/*
 * One HTTP transfer with the lease's key, set up on t's easy handle.
 * CURLE_OK, else a curl code; *timeout says the time ran out.  errbuf
 * gets a sentence without the key.
 */
static int
transfer_prep(struct fwd *c, const struct gr_lease *l, int64_t stop_at,
              struct fwd_handle *t, size_t *usedp, char *errbuf,
              size_t errlen, bool *timeout)
{
    const struct gr_fwd *f = c->f;
    char url[URL_MAX];
    const char *method = f->method != NULL ? f->method : "POST";
    int64_t left_ms;
    size_t n;
    int rc;

    rc = request_prep(c, l, stop_at, t, url, &n, usedp, errbuf, errlen,
                      timeout);
    if (rc != CURLE_OK)
        return rc;
    left_ms = (stop_at - gr_now_ns()) / NS_PER_MS;
    if (left_ms < 1)
        left_ms = 1;    /* request_prep() saw at least that */
    c->h = t->h;
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c->h, CURLOPT_PROTOCOLS,
                     (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    /* A cache keeps 5 connections by default: when it was shared, a
     * gateway with more callers at once than that reconnected for
     * almost every call (1,939 connects for 1,960 calls at 16
     * connections).  Per handle, the limit is harmless headroom. */
    curl_easy_setopt(c->h, CURLOPT_MAXCONNECTS, 512L);
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, t->node);
    curl_easy_setopt(c->h, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(c->h, CURLOPT_FOLLOWLOCATION, 0L);
    if (ca_file != NULL)
        curl_easy_setopt(c->h, CURLOPT_CAINFO, ca_file);
    if (l->proxy[0] != '\0')
        curl_easy_setopt(c->h, CURLOPT_PROXY, l->proxy);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c->h, CURLOPT_POST, 1L);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS,
                         f->body != NULL ? f->body : "");
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(f->body != NULL ? f->len : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c->h, CURLOPT_CUSTOMREQUEST, method);
        if (f->body != NULL) {      /* PATCH {"ttl": ...} */
            curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, f->body);
            curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)f->len);
        }
    }
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, (long)left_ms);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(left_ms < CONNECT_MAX_MS ? left_ms
                                                     : CONNECT_MAX_MS));
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->cerr);
    if (f->cancelled != NULL) {
        /* Asked just before the attempt (see gr_forward's loop). */
        c->cancel_at_ns = gr_now_ns() + CANCEL_POLL_NS;
        curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c->h, CURLOPT_XFERINFODATA, c);
    }
    return CURLE_OK;
}

/* Why a transfer failed (what: the transport's sentence; NULL: it did
 * not), into errbuf, never with the key. */
static void
transfer_why(struct fwd *c, const struct gr_lease *l, const char *what,
             char *errbuf, size_t errlen)
{
    if (what != NULL)
        snprintf(errbuf, errlen, "%s",
                 c->too_big ? "answer too large; refused"
                 : c->stopped ? "stopped while reading the answer"
                 : what);
    /* Paranoia: no message of ours may ever carry the key. */
    if (strstr(errbuf, l->key) != NULL)
        snprintf(errbuf, errlen, "transfer failed");
}

/*
 * The transfer set up by transfer_prep() ended with rc: its status read,
 * its sentence into errbuf (without the key).  c->h is still the handle.
 */
static void
transfer_end(struct fwd *c, const struct gr_lease *l, int rc, char *errbuf,
             size_t errlen, bool *timeout)
{
    long code = 0;

    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
    c->status = (int)code;
    c->h = NULL;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        *timeout = true;
    transfer_why(c, l, rc == CURLE_OK ? NULL
                       : c->cerr[0] != '\0' ? c->cerr
                       : curl_easy_strerror((CURLcode)rc), errbuf, errlen);
    explicit_bzero(c->cerr, sizeof(c->cerr));
}

/*
 * One HTTP transfer with the lease's key, on this thread's handle.
 * Returns 0 when an answer came whole, else a curl code; *timeout says
 * the time ran out.  errbuf gets a sentence without the key.
 */
static int
transfer(struct fwd *c, const struct gr_lease *l, int64_t stop_at,
         char *errbuf, size_t errlen, bool *timeout)
{
    struct fwd_handle *t;
    size_t used = 0;
    int rc;

    *timeout = false;
    if ((t = fwd_handle_take()) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return CURLE_OUT_OF_MEMORY;
    }
    rc = transfer_prep(c, l, stop_at, t, &used, errbuf, errlen, timeout);
    if (rc == CURLE_OK) {
        rc = (int)curl_easy_perform(c->h);
        transfer_end(c, l, rc, errbuf, errlen, timeout);
    }
    c->h = NULL;
    fwd_handle_give(t, used);
    return rc;
}

/* ---- one attempt: what the answer means ------------------------------- */

enum next { NEXT_DONE, NEXT_RETRY, NEXT_FAIL, NEXT_DEADLINE };

static int64_t
max_call_ns(const struct fwd *c)
{
    /* relaxed: a setting read on its own; range-checked below */
    uint32_t s = atomic_load_explicit(&c->g->t.hdr->max_call_s,
                                      memory_order_relaxed);

    if (s == 0 || s > 86400)
        s = 600;
    return (int64_t)s * NS_PER_S;
}

/* The usage the answer reported, into out->usage. */
static void
take_usage(struct fwd *c, bool ok)
{
    struct gr_tokens *u = &c->out->usage;
    struct gr_resp_usage ru;

    u->prompt = u->candidates = u->thoughts = u->total = -1;
    c->spend_use.prompt = -1;
    if (!ok)
        return;
    if (c->f->kind == GR_FWD_COUNT) {
        u->prompt = u->total = count_total(c->out->body, c->out->len);
        return;
    }
    if (c->f->kind == GR_FWD_OPENAI) {
        u->prompt = c->f->sse ? c->oai_prompt
                              : oai_prompt_tokens(c->out->body, c->out->len);
        return;
    }
    if (c->f->sse) {
        if (!c->sse.have_usage)
            return;
        ru = c->sse.usage;
    } else if (c->out->body == NULL ||
               gr_resp_usage(c->out->body, c->out->len, &ru) != 0) {
        return;
    }
    u->prompt = ru.prompt_tokens;
    u->candidates = ru.candidates_tokens;
    u->thoughts = ru.thoughts_tokens;
    u->total = ru.total_tokens;
    /* What the call is billed for (spend caps), as in generate.c. */
    c->spend_use.prompt = ru.prompt_tokens;
    if (ru.prompt_tokens >= 0 && ru.tool_prompt_tokens > 0 &&
        ru.tool_prompt_tokens <= INT32_MAX - ru.prompt_tokens)
        c->spend_use.prompt += ru.tool_prompt_tokens;
    c->spend_use.cached = ru.cached_tokens;
    c->spend_use.output = ru.candidates_tokens;
    c->spend_use.thinking = ru.thoughts_tokens;
}

/* An attempt starts on lease l: its state reset; returns when it must
 * stop (the call's deadline, or the lease's longest call). */
static int64_t
attempt_begin(struct fwd *c, const struct gr_lease *l)
{
    int64_t cap_at = l->admitted_ns + max_call_ns(c) / 20 * 19;

    c->buf = NULL;
    c->len = c->cap = 0;
    c->status = 0;
    c->first_byte_ns = 0;
    c->too_big = c->stopped = c->nomem = false;
    c->oai_prompt = -1;
    c->project = l->project;
    gr_sse_init(&c->sse);
    return c->o.deadline_ns < cap_at ? c->o.deadline_ns : cap_at;
}

/*
 * The attempt's transfer ended with curl code rc (why: its sentence):
 * classify, report, settle the lease, and say what comes next.
 */
static enum next
attempt_end(struct fwd *c, struct gr_lease *l, int64_t stop_at, int rc,
            bool timeout, char *why, size_t whylen)
{
    struct gr_response *out = c->out;
    struct gr_verdict v;
    struct gr_usage use;
    int64_t now_s = time(NULL);
    bool report = true, deadline_cut, whole;

    explicit_bzero(l->key, sizeof(l->key));
    explicit_bzero(l->proxy, sizeof(l->proxy));
    if (rc == CURLE_OK && c->f->sse && c->status >= 200 &&
        c->status <= 299 && gr_sse_finish(&c->sse, on_sse_event, c) != 0 &&
        !c->user_stopped) {
        rc = CURLE_RECV_ERROR;
        snprintf(why, whylen, "%s", gr_sse_error(&c->sse));
    }
    whole = rc == CURLE_OK;
    if (c->status == 0 && rc == CURLE_OK)
        whole = false;

    out->attempts++;
    if (c->status == 429)
        out->n_429++;
    free(out->body);
    out->body = c->buf;
    out->len = c->len;
    c->buf = NULL;
    out->status = c->status;
    snprintf(out->project, sizeof(out->project), "%s", l->project);
    take_usage(c, c->status >= 200 && c->status <= 299);

    if (c->status == 0 || (!whole && c->status >= 200 &&
                           c->status <= 299 && !c->user_stopped)) {
        gr_classify_in(c->g->t.hdr, 0, NULL, 0, now_s, &v);
        if (c->status != 0) {
            v.cls = GR_CLASS_SERVER;
            v.retryable = true;
        }
        snprintf(v.reason, sizeof(v.reason), "%s: %.160s",
                 c->status == 0 ? "no answer" : "answer cut", why);
    } else if (c->f->sse && c->sse.error_code != 0) {
        gr_classify_in(c->g->t.hdr, c->sse.error_code, c->err_event,
                       c->err_event_len, now_s, &v);
    } else {
        gr_classify_in(c->g->t.hdr, c->status, out->body, out->len, now_s,
                       &v);
    }
    if (c->user_stopped) {
        v.retryable = false;
        snprintf(v.reason, sizeof(v.reason), "%d: stopped by the caller",
                 c->status);
    }
    deadline_cut = timeout && stop_at == c->o.deadline_ns;
    if (deadline_cut)
        report = false;
    /* Stopped by the caller before a 2xx answer: says nothing of the
     * project. */
    if (c->user_stopped && (c->status < 200 || c->status > 299))
        report = false;
    if (c->f->kind == GR_FWD_COUNT && v.cls != GR_CLASS_OK &&
        v.cls != GR_CLASS_AUTH && v.cls != GR_CLASS_MODEL)
        report = false;
    if (c->f->kind == GR_FWD_FREE && v.cls != GR_CLASS_AUTH)
        report = false;
    /* A 403/404 that names a resource of the request: the request's
     * fault (the resource lives in one project, or is gone), whatever
     * gr_classify() made of it; no penalty, no retry elsewhere. */
    if (gr_pin_answer(c->g, &c->pin, c->status, out->body, out->len)) {
        v.cls = GR_CLASS_REQUEST;
        v.retryable = false;
        v.disable = GR_DISABLE_NONE;
        v.cooldown_s = 0;
        v.dims = 0;
        report = false;
    }
    if (v.cls == GR_CLASS_OK && whole && !c->f->sse)
        gr_res_learn(c->g, c->f->method != NULL ? c->f->method : "POST",
                     c->f->path, l->project, c->status, out->body, out->len);
    if (report) {
        struct gr_verdict tv = v;

        if (v.cls == GR_CLASS_SERVER && c->status >= 200 && c->status <= 299)
            tv.status = 0;
        gr_report(c->g, l, &tv);
    }
    use.tokens = c->f->kind == GR_FWD_COUNT || c->f->kind == GR_FWD_FREE
                     ? 0
                 : v.cls == GR_CLASS_OK && out->usage.prompt >= 0
                     ? out->usage.prompt : -1;
    use.images = -1;
    use.first_byte_ns = c->first_byte_ns;
    {
        /* The cost, as in generate.c: the reported usage; an error
         * answer is not billed; else the worst case stays. */
        static const struct gr_shm_spend_use none = {0, 0, 0, 0};
        const struct gr_shm_spend_use *su =
            c->spend_use.prompt >= 0 && v.cls == GR_CLASS_OK
                ? &c->spend_use
            : c->status >= 400 ? &none : NULL;

        gr_commit_spend(c->g, l, &use, su);
    }
    out->verdict = v;
    gr_sse_free(&c->sse);
    free(c->err_event);
    c->err_event = NULL;
    c->err_event_len = 0;

    if (v.cls == GR_CLASS_OK && whole && !c->user_stopped)
        return NEXT_DONE;
    if (deadline_cut)
        return NEXT_DEADLINE;
    if (!v.retryable || c->user_stopped || c->delivered > 0)
        return NEXT_FAIL;
    return NEXT_RETRY;
}

/* One attempt on this thread: the transfer runs to its end here. */
static enum next
attempt(struct fwd *c, struct gr_lease *l)
{
    char why[CURL_ERROR_SIZE];
    int64_t stop_at = attempt_begin(c, l);
    bool timeout;
    int rc;

    rc = transfer(c, l, stop_at, why, sizeof(why), &timeout);
    return attempt_end(c, l, stop_at, rc, timeout, why, sizeof(why));
}

/* ---- the retry loop (as in generate.c) -------------------------------- */

static int64_t
backoff_ns(const struct fwd *c, int n)
{
    int64_t span = c->o.backoff_base_ns;
    int i;

    for (i = 1; i < n && span < c->o.backoff_cap_ns; i++)
        span *= 2;
    if (span > c->o.backoff_cap_ns)
        span = c->o.backoff_cap_ns;
    if (span <= 0)
        return 0;
    return (int64_t)(gr_shm_rand(gr_thread_rng()) % (uint64_t)(span + 1));
}

static void
sleep_until(int64_t at_ns)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(at_ns / NS_PER_S);
    ts.tv_nsec = (long)(at_ns % NS_PER_S);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR)
        ;
}

/* A reservation that failed with rc: the sentence; returns rc. */
static int
reserve_failed(struct fwd *c, int rc, const struct gr_lease *l)
{
    if (rc == GR_EDEADLINE) {
        c->out->retry_at_ns = l->retry_at_ns;
        if (c->pin.project[0] != '\0')
            fail_msg(c, "no room for %s on project %s (it holds a "
                     "resource the request names) before the queue "
                     "deadline", c->f->model, c->pin.project);
        else
            fail_msg(c, "no room for %s on any project before the "
                     "queue deadline", c->f->model);
    } else if (rc == GR_ENOMODEL) {
        fail_msg(c, "%s", gr_errstr(c->g));
    } else if (rc == GR_ESPEND) {
        fail_msg(c, "%s", gr_spend_refusal());
    } else {
        fail_msg(c, "reserving room for %s failed: %s", c->f->model,
                 gr_err_name(rc));
    }
    return rc;
}

/*
 * After an attempt: the call's result (GR_OK or an error, with its
 * sentence), or 1: try again after *wait_ns (a backoff, or the cooling
 * the answer asked for).
 */
static int
after_attempt(struct fwd *c, enum next next, int64_t *wait_ns)
{
    struct gr_response *out = c->out;
    int64_t wait;

    if (next == NEXT_DONE)
        return GR_OK;
    if (next == NEXT_DEADLINE) {
        fail_msg(c, "deadline passed during attempt %d", out->attempts);
        return GR_EDEADLINE;
    }
    if (next == NEXT_FAIL) {
        fail_msg(c, "%s", out->verdict.reason);
        return GR_ECALL;
    }
    if (out->attempts >= c->o.max_attempts) {
        fail_msg(c, "gave up after %d attempts; last answer: %s",
                 out->attempts, out->verdict.reason);
        return GR_ECALL;
    }
    wait = backoff_ns(c, out->attempts);
    if ((out->verdict.cls == GR_CLASS_OVERLOAD ||
         out->verdict.cls == GR_CLASS_SERVER) &&
        out->verdict.cooldown_s > 0) {
        double hint = out->verdict.cooldown_s * 1e9;

        if (hint > (double)c->o.backoff_cap_ns)
            hint = (double)c->o.backoff_cap_ns;
        if ((int64_t)hint > wait)
            wait = (int64_t)hint;
    }
    if (gr_now_ns() + wait >= c->o.deadline_ns) {
        fail_msg(c, "deadline too close for attempt %d; last answer: "
                 "%s", out->attempts + 1, out->verdict.reason);
        return GR_EDEADLINE;
    }
    *wait_ns = wait;
    return 1;
}

/* Cancelled before an attempt starts: the result to return. */
static int
cancelled_now(struct fwd *c)
{
    if (c->f->cancelled != NULL && c->f->cancelled(c->f->arg) != 0) {
        fail_msg(c, "cancelled by the caller");
        return c->out->attempts > 0 ? GR_ECALL : GR_EDEADLINE;
    }
    return GR_OK;
}

static int
run(struct fwd *c, const struct gr_cost *cost)
{
    struct gr_response *out = c->out;
    struct gr_lease l;
    int64_t wait = 0;
    int rc;

    for (;;) {
        int64_t until = c->o.queue_deadline_ns, t0 = gr_now_ns();

        if (until <= t0)
            until = t0 - 1 > 0 ? t0 - 1 : 1;
        if ((rc = cancelled_now(c)) != GR_OK)
            return rc;
        rc = gr_reserve_spend(c->g, c->pin.project, c->f->model, cost,
                              c->max_out, until, &l);
        out->queued_ns += gr_now_ns() - t0;
        if (rc != GR_OK)
            return reserve_failed(c, rc, &l);
        rc = after_attempt(c, attempt(c, &l), &wait);
        if (rc != 1)
            return rc;
        sleep_until(gr_now_ns() + wait);
    }
}

/*
 * A forward's state before its first reservation: out cleared, the
 * options' defaults, the cost and the pinned project.  GR_OK, or the
 * call's result (out says why).
 */
static int
fwd_init(struct fwd *c, struct gr *g, const struct gr_fwd *f,
         const struct gr_call_opts *opts, struct gr_response *out,
         struct gr_cost *cost)
{
    int d;

    if (out == NULL)
        return GR_EINVAL;
    memset(out, 0, sizeof(*out));
    out->usage.prompt = out->usage.candidates = -1;
    out->usage.thoughts = out->usage.total = -1;
    for (d = 0; d < GR_NDIMS; d++)
        out->verdict.learned[d] = -1;
    if (g == NULL || f == NULL || f->model == NULL || f->path == NULL ||
        f->path[0] != '/') {
        snprintf(out->error, sizeof(out->error), "missing argument");
        return GR_EINVAL;
    }
    pthread_once(&curl_once, curl_start);
    memset(c, 0, sizeof(*c));
    c->g = g;
    c->f = f;
    c->out = out;
    c->start_ns = gr_now_ns();
    if (!curl_ok) {
        fail_msg(c, "libcurl did not start");
        return GR_ENOMEM;
    }
    if (opts != NULL)
        c->o = *opts;
    if (c->o.deadline_ns <= 0)
        c->o.deadline_ns = c->start_ns + DEFAULT_DEADLINE_NS;
    if (c->o.queue_deadline_ns <= 0 ||
        c->o.queue_deadline_ns > c->o.deadline_ns)
        c->o.queue_deadline_ns = c->o.deadline_ns;
    if (c->o.max_attempts <= 0)
        c->o.max_attempts = DEFAULT_ATTEMPTS;
    if (c->o.max_attempts > MAX_ATTEMPTS)
        c->o.max_attempts = MAX_ATTEMPTS;
    if (c->o.backoff_base_ns <= 0)
        c->o.backoff_base_ns = DEFAULT_BACKOFF_BASE_NS;
    if (c->o.backoff_cap_ns <= 0)
        c->o.backoff_cap_ns = DEFAULT_BACKOFF_CAP_NS;
    if (c->o.backoff_cap_ns < c->o.backoff_base_ns)
        c->o.backoff_cap_ns = c->o.backoff_base_ns;
    estimate(c, cost);
    c->max_out = f->kind == GR_FWD_GENERATE
                     ? gr_spend_max_out(g, f->body, f->len) : -1;
    {
        char why[512];

        /* Refused before anything is sent: resources of two projects. */
        if (gr_pin_request(g, f->path, f->body, f->len, &c->pin, why,
                           sizeof(why)) != GR_OK) {
            fail_msg(c, "%s", why);
            return GR_EINVAL;
        }
        if (f->project != NULL && f->project[0] != '\0')
            snprintf(c->pin.project, sizeof(c->pin.project), "%s",
                     f->project);
    }
    return GR_OK;
}

static int
forward_model(struct gr *g, const struct gr_fwd *f,
              const struct gr_call_opts *opts, struct gr_response *out)
{
    struct gr_cost cost;
    struct fwd c;
    int rc;

    if ((rc = fwd_init(&c, g, f, opts, out, &cost)) != GR_OK)
        return rc;
    rc = run(&c, &cost);
    out->elapsed_ns = gr_now_ns() - c.start_ns;
    if (rc == GR_OK)
        out->error[0] = '\0';
    return rc;
}

/* ---- through the cache and the fallback chain (fallback.c) ----------- */

struct one_fwd {
    struct gr *g;
    const struct gr_fwd *f;
};

static int
one_model(void *arg, const char *model, const struct gr_call_opts *opts,
          struct gr_response *out)
{
    const struct one_fwd *of = arg;
    struct gr_fwd f = *of->f;
    size_t n;
    char *path;
    int rc;

    if (strcmp(model, f.model) == 0)
        return forward_model(of->g, &f, opts, out);
    n = strlen(f.path) + GR_NAME_MAX + 1;
    path = malloc(n);
    if (path == NULL || gr_fb_path(f.path, f.model, model, path, n) != 0) {
        free(path);
        return forward_model(of->g, &f, opts, out);
    }
    f.model = model;
    f.path = path;
    rc = forward_model(of->g, &f, opts, out);
    free(path);
    return rc;
}

/* What f is to the cache. */
static enum gr_fb_kind
fb_kind(const struct gr_fwd *f)
{
    if (f->sse || (f->method != NULL && strcmp(f->method, "POST") != 0))
        return GR_FB_OTHER;
    switch (f->kind) {
    case GR_FWD_GENERATE:
        return strstr(f->path, ":generateContent") != NULL &&
               strchr(f->path, '?') == NULL ? GR_FB_GENERATE : GR_FB_OTHER;
    case GR_FWD_COUNT:
        return GR_FB_COUNT;
    case GR_FWD_EMBED:
        return GR_FB_EMBED;
    case GR_FWD_BATCH_EMBED:
        return GR_FB_BATCH_EMBED;
    default:
        return GR_FB_OTHER;
    }
}

/*
 * The OpenAI-compatible body with its "model": "FROM" member naming TO
 * instead (the first such member: the request's own, before any nested
 * one a client could add), malloc'd; NULL when it has none or on ENOMEM.
 */
static char *
body_model(const char *b, size_t len, const char *from, const char *to,
           size_t *outlen)
{
    size_t fl = strlen(from), tl = strlen(to), i, j;
    char *o;

    for (i = 0; i + 7 <= len; i++) {
        if (memcmp(b + i, "\"model\"", 7) != 0)
            continue;
        j = i + 7;
        while (j < len && strchr(" \t\r\n", b[j]) != NULL)
            j++;
        if (j >= len || b[j] != ':')
            continue;
        j++;
        while (j < len && strchr(" \t\r\n", b[j]) != NULL)
            j++;
        if (j + fl + 2 > len || b[j] != '"' || memcmp(b + j + 1, from, fl) ||
            b[j + 1 + fl] != '"')
            continue;
        o = malloc(len - fl + tl + 1);
        if (o == NULL)
            return NULL;
        memcpy(o, b, j + 1);
        memcpy(o + j + 1, to, tl);
        memcpy(o + j + 1 + tl, b + j + 1 + fl, len - (j + 1 + fl));
        *outlen = len - fl + tl;
        o[*outlen] = '\0';
        return o;
    }
    return NULL;
}

int
gr_forward(struct gr *g, const struct gr_fwd *f,
           const struct gr_call_opts *opts, struct gr_response *out)
{
    struct one_fwd of = {g, f};
    struct gr_fb_req q;
    struct gr_fwd fa;
    char probe[GR_NAME_MAX + 16], real[GR_NAME_MAX], *path = NULL;
    char *body = NULL;
    const char *model;
    size_t n;
    int rc;

    if (g == NULL || f == NULL || f->model == NULL || f->path == NULL ||
        out == NULL || f->path[0] != '/')
        return forward_model(g, f, opts, out);
    /* An alias is reserved and sent upstream as the model it names: in
     * the path when the path names it ("models/ALIAS:..."). */
    model = gr_model_resolve(g, f->model, real);
    if (model != f->model) {
        fa = *f;
        fa.model = model;
        n = strlen(f->path) + GR_NAME_MAX + 1;
        path = malloc(n);
        if (path != NULL &&
            gr_fb_path(f->path, f->model, model, path, n) == 0)
            fa.path = path;
        /* the OpenAI-compatible API names it in the body */
        if (f->kind == GR_FWD_OPENAI && f->body != NULL &&
            (body = body_model(f->body, f->len, f->model, model,
                               &fa.len)) != NULL)
            fa.body = body;
        rc = gr_forward(g, &fa, opts, out);
        free(path);
        free(body);
        return rc;
    }
    q.kind = fb_kind(f);
    q.model = f->model;
    q.body = f->body;
    q.len = f->body != NULL ? f->len : 0;
    /* Only a route that names its model in the path may change it (the
     * OpenAI-compatible API names it in the body, sent unchanged). */
    snprintf(probe, sizeof(probe), "models/%s:", f->model);
    q.no_fallback = f->kind == GR_FWD_OPENAI || f->kind == GR_FWD_FREE ||
                    strstr(f->path, probe) == NULL;
    return gr_fb_call(g, &q, opts, one_model, &of, out);
}

/* ---- forwards on an event loop (include/gemroute_forward.h) ---------- */

/*
 * The same steps as run(), as a record driven by a loop thread instead
 * of a thread's stack: a call waiting for room or for its backoff is a
 * timer (wake_ns), a call in transfer is a call of the loop's own
 * client (h1.c: libcurl cost twice its CPU a call, docs/BENCHMARKS.md
 * section 4), or, when router.proxy or the environment names a proxy,
 * an easy handle in the loop's multi handle.  Both keep their
 * connections upstream from one call to the next.  The loop's easy
 * handles are kept too, with their header room, which the own client's
 * calls borrow to write their lines in.
 */

/* Longest sleep of a call waiting for room between two tries: a settle
 * elsewhere wakes a blocked gr_reserve() at once, the loop only sees it
 * at its next try. */
#define LOOP_ROOM_POLL_NS (5 * NS_PER_MS)
#define LOOP_IDLE_MS 1000

enum job_state { J_NEW, J_RESERVE, J_XFER };

struct gr_fwd_job {
    struct fwd c;
    struct gr_cost cost;
    struct gr_lease l;
    enum job_state state;
    int init_rc;                /* fwd_init()'s, when not GR_OK */
    int64_t wake_ns;            /* J_RESERVE: try then */
    int64_t wait_from_ns;       /* waiting for room since; 0 = not */
    int64_t stop_at;            /* the attempt's end */
    struct fwd_handle *t;       /* J_XFER: the easy handle, or */
    struct gr_h1_call *hc;      /* J_XFER: the loop's own client's call */
    struct gr_fwd_loop *lp;
    size_t used;                /* header room to wipe */
    bool timeout;
    char why[CURL_ERROR_SIZE];
    gr_fwd_done_fn done;
    void *arg;
    struct gr_fwd_job *next, *prev;
};

struct gr_fwd_loop {
    struct gr *g;
    CURLM *m;
    int ep;                     /* epoll: libcurl's sockets, wake */
    int wake;                   /* eventfd: something in the inbox */
    int64_t curl_due_ns;        /* libcurl's timer; INT64_MAX = none */
    struct gr_h1 *h1;           /* the own client; NULL: libcurl only */
    struct gr_fwd_host host;    /* run == NULL: none */
    int64_t host_due_ns;        /* host.run() asked to be called then */
    bool host_kick;             /* under mu: call host.run() now */
    pthread_t th;
    pthread_mutex_t mu;         /* inbox, stop, sleeping */
    struct gr_fwd_job *inbox;   /* submitted, not yet taken */
    bool stop;
    bool sleeping;              /* in epoll_wait(): wake it to take */
    _Atomic unsigned count;     /* submitted, not yet done */
    struct gr_fwd_job *jobs;    /* the loop thread's own list */
    struct fwd_handle *spare;   /* kept easy handles (next: in node) */
    struct fwd_handle **spares;
    size_t n_spare, cap_spare;
    /* libcurl's sockets in ep, by descriptor: what is registered (have)
     * and what libcurl asks for now (want; 0 between transfers).  A
     * connection's socket (opened by loop_open(), closed by
     * loop_close(), so its number is never stale here) stays registered
     * between its transfers: two epoll_ctl() a call fewer.  Others (the
     * resolver's) leave the set when libcurl is done with them. */
    struct loop_fd { uint32_t have, want; bool conn; } *fds;
    size_t n_fds;
};

static curl_socket_t loop_open(void *arg, curlsocktype purpose,
                               struct curl_sockaddr *a);
static int loop_close(void *arg, curl_socket_t fd);

static struct fwd_handle *
loop_handle_take(struct gr_fwd_loop *lp)
{
    struct fwd_handle *t;

    if (lp->n_spare > 0)
        return lp->spares[--lp->n_spare];
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return NULL;
    if ((t->h = curl_easy_init()) == NULL) {
        free(t);
        return NULL;
    }
    fwd_handle_setup(t->h);
    return t;
}

/* t back to the spares, its header room wiped; its easy handle as it
 * is (nothing was set on it: the own client borrowed the room only). */
static void
loop_room_give(struct gr_fwd_loop *lp, struct fwd_handle *t, size_t used)
{
    struct fwd_handle **p;

    if (used > 0)
        explicit_bzero(t->text, used);
    if (lp->n_spare == lp->cap_spare) {
        size_t cap = lp->cap_spare ? lp->cap_spare * 2 : 16;

        if ((p = realloc(lp->spares, cap * sizeof(*p))) == NULL) {
            curl_easy_cleanup(t->h);
            t->own = false;
            fwd_handle_free(t);
            return;
        }
        lp->spares = p;
        lp->cap_spare = cap;
    }
    lp->spares[lp->n_spare++] = t;
}

/* t back to the spares after a transfer of libcurl's: reset too. */
static void
loop_handle_give(struct gr_fwd_loop *lp, struct fwd_handle *t, size_t used)
{
    curl_easy_reset(t->h);
    loop_room_give(lp, t, used);
}

/* The job is over: out completed as forward_model() and gr_fb_call()
 * leave it, done called, the record freed. */
static void
job_finish(struct gr_fwd_loop *lp, struct gr_fwd_job *j, int rc)
{
    struct gr_response *out = j->c.out;

    if (j->init_rc == GR_OK) {
        out->elapsed_ns = gr_now_ns() - j->c.start_ns;
        snprintf(out->model, sizeof(out->model), "%s", j->c.f->model);
        if (rc == GR_OK)
            out->error[0] = '\0';
    }
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        lp->jobs = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    j->done(j->arg, rc);
    free(j);
    /* release: the caller's record is complete before the count falls
     * (gr_fwd_loop_count() acquires) */
    atomic_fetch_sub_explicit(&lp->count, 1, memory_order_release);
}

/* The attempt's transfer ended with rc: classify, settle, what next. */
static void
job_attempt_end(struct gr_fwd_loop *lp, struct gr_fwd_job *j, int rc)
{
    enum next next;
    int64_t wait = 0;
    int r;

    next = attempt_end(&j->c, &j->l, j->stop_at, rc, j->timeout, j->why,
                       sizeof(j->why));
    r = after_attempt(&j->c, next, &wait);
    if (r != 1) {
        job_finish(lp, j, r);
        return;
    }
    j->state = J_RESERVE;
    j->wake_ns = gr_now_ns() + wait;
}

/* The own client's call ended: rc a curl code, as libcurl's would be. */
static void
job_h1_end(struct gr_fwd_loop *lp, struct gr_fwd_job *j, int rc, int status,
           const char *why)
{
    j->hc = NULL;
    j->c.status = status;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        j->timeout = true;
    transfer_why(&j->c, &j->l, rc == CURLE_OK ? NULL : why, j->why,
                 sizeof(j->why));
    job_attempt_end(lp, j, rc);
}

static int
h1_head(void *arg, int status, const char *line, size_t len)
{
    struct gr_fwd_job *j = arg;

    j->c.status = status;
    return head_take(&j->c, line, len) ? 0 : 1;
}

static int
h1_body(void *arg, int status, const char *p, size_t len)
{
    struct gr_fwd_job *j = arg;

    j->c.status = status;
    return body_take(&j->c, p, len) ? 0 : 1;
}

static void
h1_done(void *arg, enum gr_h1_rc rc, int status, const char *why)
{
    static const int code[] = {
        [GR_H1_OK] = CURLE_OK,
        [GR_H1_TIMEOUT] = CURLE_OPERATION_TIMEDOUT,
        [GR_H1_CONNECT] = CURLE_COULDNT_CONNECT,
        [GR_H1_SEND] = CURLE_SEND_ERROR,
        [GR_H1_RECV] = CURLE_RECV_ERROR,
        [GR_H1_STOPPED] = CURLE_WRITE_ERROR,
        [GR_H1_NOMEM] = CURLE_OUT_OF_MEMORY,
    };
    struct gr_fwd_job *j = arg;

    job_h1_end(j->lp, j, (unsigned)rc < sizeof(code) / sizeof(code[0])
                             ? code[rc] : CURLE_RECV_ERROR, status, why);
}

static const struct gr_h1_cb h1_cb = { h1_head, h1_body, h1_done };

/*
 * The attempt goes through the loop's own client (t: its header room,
 * given back here unless the URL is not the client's: -EINVAL, t
 * kept for libcurl).  0: started, or ended already.
 */
static int
job_start_h1(struct gr_fwd_loop *lp, struct gr_fwd_job *j,
             struct fwd_handle *t)
{
    struct fwd *c = &j->c;
    struct gr_h1_req r;
    char url[URL_MAX];
    size_t n;
    int rc;

    rc = request_prep(c, &j->l, j->stop_at, t, url, &n, &j->used, j->why,
                      sizeof(j->why), &j->timeout);
    if (rc == CURLE_OK) {
        memset(&r, 0, sizeof(r));
        r.method = c->f->method;
        r.url = url;
        r.lines = t->line;
        r.n_lines = n - 1;      /* not libcurl's "Expect:" */
        r.body = c->f->body;
        r.len = c->f->body != NULL ? c->f->len : 0;
        r.stop_at_ns = j->stop_at;
        r.connect_max_ns = CONNECT_MAX_MS * NS_PER_MS;
        rc = gr_h1_start(lp->h1, &r, &h1_cb, j, &j->hc);
        if (rc == -EINVAL)
            return -EINVAL;
        if (rc != 0) {
            snprintf(j->why, sizeof(j->why), "out of memory");
            rc = CURLE_OUT_OF_MEMORY;
        }
    }
    /* the head is written: the room is wiped */
    loop_room_give(lp, t, j->used);
    j->used = 0;
    if (rc != CURLE_OK) {
        job_attempt_end(lp, j, rc);
        return 0;
    }
    if (c->f->cancelled != NULL)
        c->cancel_at_ns = gr_now_ns() + CANCEL_POLL_NS;
    j->state = J_XFER;
    return 0;
}

/* A lease is held: the attempt's transfer starts, on the loop's own
 * client when no proxy is in the way, else in the multi handle. */
static void
job_start(struct gr_fwd_loop *lp, struct gr_fwd_job *j)
{
    struct fwd *c = &j->c;
    struct fwd_handle *t;
    int rc;

    j->stop_at = attempt_begin(c, &j->l);
    j->timeout = false;
    j->used = 0;
    if ((t = loop_handle_take(lp)) == NULL) {
        snprintf(j->why, sizeof(j->why), "out of memory");
        job_attempt_end(lp, j, CURLE_OUT_OF_MEMORY);
        return;
    }
    if (lp->h1 != NULL && j->l.proxy[0] == '\0' &&
        job_start_h1(lp, j, t) == 0)
        return;
    rc = transfer_prep(c, &j->l, j->stop_at, t, &j->used, j->why,
                       sizeof(j->why), &j->timeout);
    if (rc == CURLE_OK) {
        curl_easy_setopt(t->h, CURLOPT_PRIVATE, j);
        /* kept with the connection: a socket closed later, by another
         * transfer or the cache, is still seen closing */
        curl_easy_setopt(t->h, CURLOPT_OPENSOCKETFUNCTION, loop_open);
        curl_easy_setopt(t->h, CURLOPT_OPENSOCKETDATA, lp);
        curl_easy_setopt(t->h, CURLOPT_CLOSESOCKETFUNCTION, loop_close);
        curl_easy_setopt(t->h, CURLOPT_CLOSESOCKETDATA, lp);
        if (curl_multi_add_handle(lp->m, t->h) == CURLM_OK) {
            j->t = t;
            j->state = J_XFER;
            return;
        }
        rc = CURLE_OUT_OF_MEMORY;
        snprintf(j->why, sizeof(j->why), "out of memory");
    }
    c->h = NULL;
    loop_handle_give(lp, t, j->used);
    job_attempt_end(lp, j, rc);
}

/* The transfer ended (rc from libcurl, or stopped here). */
static void
job_xfer_end(struct gr_fwd_loop *lp, struct gr_fwd_job *j, int rc)
{
    struct fwd_handle *t = j->t;

    curl_multi_remove_handle(lp->m, t->h);
    transfer_end(&j->c, &j->l, rc, j->why, sizeof(j->why), &j->timeout);
    j->t = NULL;
    loop_handle_give(lp, t, j->used);
    job_attempt_end(lp, j, rc);
}

/* Time to try for room (first, again, or after a backoff). */
static void
job_reserve(struct gr_fwd_loop *lp, struct gr_fwd_job *j)
{
    struct fwd *c = &j->c;
    int64_t now, wake;
    int rc;

    /* A call just submitted is not asked (its caller was there a moment
     * ago, and for a stream the asking is a poll() of its socket); from
     * its second try on, and during its transfer, it is. */
    if ((j->wait_from_ns != 0 || c->out->attempts > 0) &&
        (rc = cancelled_now(c)) != GR_OK) {
        if (j->wait_from_ns != 0)
            c->out->queued_ns += gr_now_ns() - j->wait_from_ns;
        job_finish(lp, j, rc);
        return;
    }
    now = gr_now_ns();
    if (j->wait_from_ns == 0)
        j->wait_from_ns = now;
    /* A deadline already past: one try, never a wait. */
    rc = gr_reserve_spend(c->g, c->pin.project, c->f->model, &j->cost,
                          c->max_out, now - 1 > 0 ? now - 1 : 1, &j->l);
    now = gr_now_ns();
    if (rc == GR_EDEADLINE && now < c->o.queue_deadline_ns) {
        wake = j->l.retry_at_ns > now ? j->l.retry_at_ns
                                      : now + lp->g->t.tick_ns;
        if (wake > now + LOOP_ROOM_POLL_NS)
            wake = now + LOOP_ROOM_POLL_NS;
        if (wake > c->o.queue_deadline_ns)
            wake = c->o.queue_deadline_ns;
        j->wake_ns = wake;
        return;
    }
    c->out->queued_ns += now - j->wait_from_ns;
    j->wait_from_ns = 0;
    if (rc != GR_OK) {
        job_finish(lp, j, reserve_failed(c, rc, &j->l));
        return;
    }
    job_start(lp, j);
}

/* One turn over the loop's calls: timers due, cancellations; returns
 * when the next is due. */
static int64_t
loop_turn(struct gr_fwd_loop *lp)
{
    struct gr_fwd_job *j, *next;
    int64_t now = gr_now_ns(), due = now + LOOP_IDLE_MS * NS_PER_MS;

    for (j = lp->jobs; j != NULL; j = next) {
        next = j->next;
        if (j->state == J_NEW) {
            if (j->init_rc != GR_OK) {
                job_finish(lp, j, j->init_rc);
                continue;
            }
            j->state = J_RESERVE;
            j->wake_ns = now;
        }
        if (j->state == J_RESERVE && j->wake_ns <= now) {
            job_reserve(lp, j);
            now = gr_now_ns();
            continue;       /* j may be gone; its next turn sets due */
        }
        if (j->state == J_XFER && j->c.f->cancelled != NULL &&
            j->c.cancel_at_ns <= now) {
            /* as on_progress(), for a transfer with nothing to read */
            j->c.cancel_at_ns = now + CANCEL_POLL_NS;
            if (j->c.f->cancelled(j->c.f->arg) != 0) {
                j->c.user_stopped = true;
                if (j->hc != NULL) {
                    gr_h1_abort(lp->h1, j->hc);
                    job_h1_end(lp, j, CURLE_ABORTED_BY_CALLBACK,
                               j->c.status, "stopped by the caller");
                } else {
                    job_xfer_end(lp, j, CURLE_ABORTED_BY_CALLBACK);
                }
                now = gr_now_ns();
                continue;
            }
        }
        if (j->state == J_RESERVE && j->wake_ns < due)
            due = j->wake_ns;
        if (j->state == J_XFER && j->c.f->cancelled != NULL &&
            j->c.cancel_at_ns < due)
            due = j->c.cancel_at_ns;
    }
    return due;
}

/* The record of libcurl's socket fd, the table grown to hold it; NULL
 * when out of memory. */
static struct loop_fd *
loop_fd(struct gr_fwd_loop *lp, curl_socket_t fd)
{
    struct loop_fd *t;
    size_t n;

    if (fd < 0)
        return NULL;
    if ((size_t)fd >= lp->n_fds) {
        n = lp->n_fds ? lp->n_fds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        if ((t = realloc(lp->fds, n * sizeof(*t))) == NULL)
            return NULL;
        memset(t + lp->n_fds, 0, (n - lp->n_fds) * sizeof(*t));
        lp->fds = t;
        lp->n_fds = n;
    }
    return &lp->fds[fd];
}

/* libcurl opens a connection's socket (CURLOPT_OPENSOCKETFUNCTION). */
static curl_socket_t
loop_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct gr_fwd_loop *lp = arg;
    struct loop_fd *r;
    int fd;

    (void)purpose;
    fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if ((r = loop_fd(lp, fd)) != NULL) {
        r->have = r->want = 0;
        r->conn = true;
    }
    return fd;
}

/* libcurl closes a connection's socket (CURLOPT_CLOSESOCKETFUNCTION):
 * the close takes it out of ep, and its number may come back as another
 * socket. */
static int
loop_close(void *arg, curl_socket_t fd)
{
    struct gr_fwd_loop *lp = arg;

    if (fd >= 0 && (size_t)fd < lp->n_fds)
        memset(&lp->fds[fd], 0, sizeof(lp->fds[fd]));
    return close(fd);
}

/* Register want for fd in ep, unless it is registered so already. */
static void
loop_fd_set(struct gr_fwd_loop *lp, curl_socket_t fd, struct loop_fd *r,
            uint32_t want)
{
    struct epoll_event ev;

    r->want = want;
    if (r->have == want)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = want;
    ev.data.fd = fd;
    if (r->have != 0 && epoll_ctl(lp->ep, EPOLL_CTL_MOD, fd, &ev) == 0) {
        r->have = want;
        return;
    }
    if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ||
        (errno == EEXIST && epoll_ctl(lp->ep, EPOLL_CTL_MOD, fd, &ev) == 0))
        r->have = want;
}

/* libcurl's sockets into the loop's epoll set (CURLMOPT_SOCKETFUNCTION).
 * A socket libcurl is done with stays in the set (see struct loop_fd). */
static int
loop_sock(CURL *e, curl_socket_t fd, int what, void *arg, void *sockp)
{
    struct gr_fwd_loop *lp = arg;
    struct loop_fd *r = loop_fd(lp, fd);

    (void)e;
    (void)sockp;
    if (what == CURL_POLL_REMOVE) {
        if (r != NULL && r->conn) {
            r->want = 0;
            return 0;
        }
        epoll_ctl(lp->ep, EPOLL_CTL_DEL, fd, NULL);
        if (r != NULL)
            r->have = r->want = 0;
        return 0;
    }
    if (r == NULL)
        return -1;      /* out of memory: libcurl fails the transfer */
    loop_fd_set(lp, fd, r, (what & CURL_POLL_IN ? EPOLLIN : 0u) |
                           (what & CURL_POLL_OUT ? EPOLLOUT : 0u));
    return 0;
}

/* fd woke the loop: false when no transfer wants it (a kept connection
 * closed by its server, say), which then leaves the set until a
 * transfer asks for it again. */
static bool
loop_fd_wanted(struct gr_fwd_loop *lp, int fd)
{
    struct loop_fd *r;

    if (fd < 0 || (size_t)fd >= lp->n_fds)
        return true;
    r = &lp->fds[fd];
    if (r->want != 0 || r->have == 0)
        return true;
    epoll_ctl(lp->ep, EPOLL_CTL_DEL, fd, NULL);
    r->have = 0;
    return false;
}

/* libcurl's one timer (CURLMOPT_TIMERFUNCTION). */
static int
loop_timer(CURLM *m, long ms, void *arg)
{
    struct gr_fwd_loop *lp = arg;

    (void)m;
    lp->curl_due_ns = ms < 0 ? INT64_MAX : gr_now_ns() + ms * NS_PER_MS;
    return 0;
}

/* Transfers libcurl finished: their attempts end. */
static void
loop_reap(struct gr_fwd_loop *lp)
{
    struct gr_fwd_job *j;
    struct CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(lp->m, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        j = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &j);
        if (j != NULL)
            job_xfer_end(lp, j, (int)msg->data.result);
    }
}

#define LOOP_EVENTS 64

/* The host's turn (struct gr_fwd_host). */
static void
host_run(struct gr_fwd_loop *lp)
{
    long ms = lp->host.run(lp->host.arg, lp);

    lp->host_due_ns = ms < 0 ? INT64_MAX : gr_now_ns() + ms * NS_PER_MS;
}

/*
 * The loop: take what was submitted, run the calls' timers, let libcurl
 * act on the sockets epoll says are ready (and on its own timer), end
 * the transfers it finished; sleep in epoll_wait() until the next of
 * those.  Submitters write the eventfd only while the loop sleeps.
 */
static void *
loop_main(void *arg)
{
    struct gr_fwd_loop *lp = arg;
    struct epoll_event ev[LOOP_EVENTS];
    struct gr_fwd_job *in, *j;
    int running, n, i;
    int64_t due, ms, now, h1_due;
    uint64_t v;
    bool stop, host_ready, skip = false;

    if (lp->host.run != NULL)
        host_run(lp);
    for (;;) {
        pthread_mutex_lock(&lp->mu);
        in = lp->inbox;
        lp->inbox = NULL;
        stop = lp->stop;
        pthread_mutex_unlock(&lp->mu);
        while (in != NULL) {
            j = in;
            in = in->next;
            j->prev = NULL;
            j->next = lp->jobs;
            if (lp->jobs != NULL)
                lp->jobs->prev = j;
            lp->jobs = j;
        }
        if (stop && lp->jobs == NULL) {
            if (lp->host.run != NULL)
                host_run(lp);   /* answers the last calls resumed */
            break;
        }
        due = loop_turn(lp);
        now = gr_now_ns();
        if (lp->curl_due_ns <= now) {
            lp->curl_due_ns = INT64_MAX;
            curl_multi_socket_action(lp->m, CURL_SOCKET_TIMEOUT, 0,
                                     &running);
            loop_reap(lp);
        }
        /* The own client's calls: ended ones done (a retry may come of
         * them), the time of its next. */
        h1_due = lp->h1 != NULL ? gr_h1_tick(lp->h1, gr_now_ns())
                                : INT64_MAX;
        if (h1_due < due)
            due = h1_due;
        /* Something became due meanwhile (a retry after no wait). */
        for (j = lp->jobs; j != NULL; j = j->next)
            if (j->state == J_RESERVE && j->wake_ns < due)
                due = j->wake_ns;
        if (lp->curl_due_ns < due)
            due = lp->curl_due_ns;
        if (lp->host_due_ns < due)
            due = lp->host_due_ns;
        ms = (due - gr_now_ns() + NS_PER_MS - 1) / NS_PER_MS;
        if (ms < 0)
            ms = 0;
        if (ms > LOOP_IDLE_MS)
            ms = LOOP_IDLE_MS;
        pthread_mutex_lock(&lp->mu);
        if (lp->inbox != NULL || lp->stop || lp->host_kick)
            ms = 0;
        /* The host has a resumed connection to answer: answered before
         * looking at the sockets again (every other turn at most, so
         * that the sockets are never starved). */
        skip = lp->host_kick && !skip;
        lp->sleeping = ms > 0;
        pthread_mutex_unlock(&lp->mu);
        n = skip ? 0 : epoll_wait(lp->ep, ev, LOOP_EVENTS, (int)ms);
        if (ms > 0) {
            pthread_mutex_lock(&lp->mu);
            lp->sleeping = false;
            pthread_mutex_unlock(&lp->mu);
        }
        host_ready = false;
        for (i = 0; i < n; i++) {
            if (ev[i].data.fd == lp->wake) {
                while (read(lp->wake, &v, sizeof(v)) > 0)
                    ;
                continue;
            }
            if (lp->host.run != NULL && ev[i].data.fd == lp->host.fd) {
                host_ready = true;
                continue;
            }
            if (lp->h1 != NULL &&
                gr_h1_event(lp->h1, ev[i].data.fd, ev[i].events))
                continue;
            if (!loop_fd_wanted(lp, ev[i].data.fd))
                continue;
            curl_multi_socket_action(
                lp->m, ev[i].data.fd,
                (ev[i].events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                (ev[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0),
                &running);
        }
        if (n > 0)
            loop_reap(lp);
        if (n > 0 && lp->h1 != NULL)
            gr_h1_tick(lp->h1, gr_now_ns());    /* answers before host */
        if (lp->host.run != NULL) {
            pthread_mutex_lock(&lp->mu);
            if (lp->host_kick)
                host_ready = true;
            lp->host_kick = false;
            pthread_mutex_unlock(&lp->mu);
            if (host_ready || lp->host_due_ns <= gr_now_ns())
                host_run(lp);
        }
    }
    return NULL;
}

/* Wake the loop if it sleeps (under lp->mu: sleeping). */
static void
loop_wake(struct gr_fwd_loop *lp)
{
    uint64_t one = 1;

    if (lp->sleeping) {
        lp->sleeping = false;
        /* EAGAIN only when a wake-up is pending already */
        (void)!write(lp->wake, &one, sizeof(one));
    }
}

struct gr_fwd_loop *
gr_fwd_loop_new(struct gr *g, const struct gr_fwd_host *host)
{
    struct gr_fwd_loop *lp;
    struct epoll_event ev;
    int rc;

    pthread_once(&curl_once, curl_start);
    if (g == NULL || !curl_ok) {
        errno = EINVAL;
        return NULL;
    }
    if ((lp = calloc(1, sizeof(*lp))) == NULL)
        return NULL;
    lp->g = g;
    lp->curl_due_ns = INT64_MAX;
    lp->host_due_ns = INT64_MAX;
    if (host != NULL)
        lp->host = *host;
    atomic_init(&lp->count, 0);
    lp->ep = epoll_create1(EPOLL_CLOEXEC);
    lp->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.fd = lp->wake;
    if (lp->ep < 0 || lp->wake < 0 ||
        epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->wake, &ev) != 0 ||
        (lp->m = curl_multi_init()) == NULL) {
        rc = errno != 0 ? errno : ENOMEM;
        goto fail;
    }
    ev.data.fd = lp->host.fd;
    if (lp->host.run != NULL &&
        epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->host.fd, &ev) != 0) {
        rc = errno != 0 ? errno : ENOMEM;
        goto fail;
    }
    /* The own client, unless the environment names a proxy (or it
     * could not start: libcurl then sends everything). */
    if (!gr_h1_env_proxy())
        lp->h1 = gr_h1_new(lp->ep);
    /* Kept-alive connections upstream: as many as calls at once. */
    curl_multi_setopt(lp->m, CURLMOPT_MAXCONNECTS, 512L);
    curl_multi_setopt(lp->m, CURLMOPT_SOCKETFUNCTION, loop_sock);
    curl_multi_setopt(lp->m, CURLMOPT_SOCKETDATA, lp);
    curl_multi_setopt(lp->m, CURLMOPT_TIMERFUNCTION, loop_timer);
    curl_multi_setopt(lp->m, CURLMOPT_TIMERDATA, lp);
    pthread_mutex_init(&lp->mu, NULL);
    if ((rc = pthread_create(&lp->th, NULL, loop_main, lp)) != 0) {
        pthread_mutex_destroy(&lp->mu);
        goto fail;
    }
    return lp;
fail:
    gr_h1_free(lp->h1);
    if (lp->m != NULL)
        curl_multi_cleanup(lp->m);
    if (lp->wake >= 0)
        close(lp->wake);
    if (lp->ep >= 0)
        close(lp->ep);
    free(lp);
    errno = rc;
    return NULL;
}

void
gr_fwd_loop_free(struct gr_fwd_loop *lp)
{
    size_t i;

    if (lp == NULL)
        return;
    pthread_mutex_lock(&lp->mu);
    lp->stop = true;
    lp->sleeping = true;        /* wake it whatever it does */
    loop_wake(lp);
    pthread_mutex_unlock(&lp->mu);
    pthread_join(lp->th, NULL);
    gr_h1_free(lp->h1);
    for (i = 0; i < lp->n_spare; i++) {
        curl_easy_cleanup(lp->spares[i]->h);
        lp->spares[i]->own = false;
        fwd_handle_free(lp->spares[i]);
    }
    free(lp->spares);
    curl_multi_cleanup(lp->m);
    free(lp->fds);
    close(lp->wake);
    close(lp->ep);
    pthread_mutex_destroy(&lp->mu);
    free(lp);
}

void
gr_fwd_loop_host_due(struct gr_fwd_loop *lp)
{
    pthread_mutex_lock(&lp->mu);
    lp->host_kick = true;
    loop_wake(lp);
    pthread_mutex_unlock(&lp->mu);
}

unsigned
gr_fwd_loop_count(struct gr_fwd_loop *lp)
{
    /* acquire: pairs with job_finish()'s release */
    return lp != NULL ? atomic_load_explicit(&lp->count,
                                             memory_order_acquire) : 0;
}

int
gr_fwd_submit(struct gr_fwd_loop *lp, const struct gr_fwd *f,
              const struct gr_call_opts *opts, struct gr_response *out,
              gr_fwd_done_fn done, void *arg)
{
    struct gr_fwd_job *j;
    struct gr_fb_req q;
    char probe[GR_NAME_MAX + 16], real[GR_NAME_MAX];

    if (lp == NULL || f == NULL || f->model == NULL || f->path == NULL ||
        out == NULL || done == NULL)
        return -EAGAIN;
    /* What gr_forward() does besides one forward_model(): not here. */
    if (gr_model_resolve(lp->g, f->model, real) != f->model)
        return -EAGAIN;
    q.kind = fb_kind(f);
    q.model = f->model;
    q.body = f->body;
    q.len = f->body != NULL ? f->len : 0;
    snprintf(probe, sizeof(probe), "models/%s:", f->model);
    q.no_fallback = f->kind == GR_FWD_OPENAI || f->kind == GR_FWD_FREE ||
                    strstr(f->path, probe) == NULL;
    if (!gr_fb_plain(lp->g, &q, opts))
        return -EAGAIN;
    if ((j = calloc(1, sizeof(*j))) == NULL)
        return -ENOMEM;
    j->init_rc = fwd_init(&j->c, lp->g, f, opts, out, &j->cost);
    j->state = J_NEW;
    j->done = done;
    j->arg = arg;
    j->lp = lp;
    /* relaxed: the count is only read as a count; the job itself is
     * handed over under lp->mu */
    atomic_fetch_add_explicit(&lp->count, 1, memory_order_relaxed);
    pthread_mutex_lock(&lp->mu);
    j->next = lp->inbox;
    lp->inbox = j;
    loop_wake(lp);
    pthread_mutex_unlock(&lp->mu);
    return 0;
}

/* ---- the models the table serves -------------------------------------- */

struct models_copy {
    const struct gr_shm *t;
    char (*names)[GR_NAME_MAX];
    int max;
    uint32_t n;
};

/* Under the models' seqlock: their names. */
static void
models_copy(void *arg)
{
    struct models_copy *mc = arg;
    const struct gr_shm *t = mc->t;
    struct gr_shm_model m;
    uint32_t i;

    /* acquire: stays before the seqlock's re-read (see seqlock.h) */
    mc->n = atomic_load_explicit(&t->hdr->n_models, memory_order_acquire);
    if (mc->n > t->max_models)
        mc->n = t->max_models;
    for (i = 0; i < mc->n && (int)i < mc->max; i++) {
        gr_shm_seq_copy_out(&m, &t->models[i], sizeof(m));
        m.name[GR_SHM_NAME_MAX - 1] = '\0';
        memcpy(mc->names[i], m.name, GR_NAME_MAX);
    }
}

int
gr_models(struct gr *g, char (*names)[GR_NAME_MAX], int max)
{
    struct models_copy mc;

    if (g == NULL || (names == NULL && max > 0))
        return -1;
    mc.t = &g->t;
    mc.names = names;
    mc.max = max;
    mc.n = 0;
    if (!gr_shm_seq_read(&g->t.hdr->models_seq, models_copy, &mc))
        return -1;
    return (int)mc.n;
}
