/*
 * e2e_calls.c - the contenders of the end-to-end benchmark, each written
 * the way its users write it, and the only file of the benchmark that
 * sees libcurl and libgemroute's call API (see e2e.h for the list).
 *
 * Every worker thread keeps one curl handle, so its connection to the
 * mock is reused from call to call, as libgemroute does for its own
 * calls.  Per-process state (round-robin health, the token bucket) is
 * shared by the process's workers under one mutex.
 */
#include "e2e.h"

#include "gemroute.h"

#include <curl/curl.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define URL_MAX 512

enum kind {
    K_GEMROUTE,
    K_DIRECT,
    K_ROUNDROBIN,
    K_BUCKET,
    K_CURL,
};

struct gr_e2e_proc {
    const struct gr_e2e_opts *o;
    enum kind kind;
    unsigned index;
    struct gr *g;                       /* gemroute */
    char url[URL_MAX];                  /* generateContent */
    pthread_mutex_t lock;               /* guards what follows */
    unsigned next;                      /* round-robin position */
    int64_t unhealthy_until[GR_E2E_MAX_KEYS];   /* ns */
    double tokens;                      /* bucket */
    double rate_per_ns;
    double capacity;
    int64_t refilled_ns;
};

struct gr_e2e_worker {
    struct gr_e2e_proc *p;
    CURL *curl;
    struct curl_slist *hdr[GR_E2E_MAX_KEYS];
    char *buf;                          /* the answer, dropped */
    size_t len, cap;
    uint64_t rng;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int64_t
gr_e2e_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
sleep_until(int64_t at_ns)
{
    struct timespec ts = {at_ns / 1000000000, at_ns % 1000000000};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR)
        ;
}

static uint64_t
next_rand(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

struct gr_e2e_proc *
gr_e2e_proc_open(const struct gr_e2e_opts *o, unsigned proc, char *err,
                 size_t n)
{
    struct gr_e2e_proc *p = calloc(1, sizeof(*p));
    static const char *const names[] = {
        [K_GEMROUTE] = "gemroute", [K_DIRECT] = "direct",
        [K_ROUNDROBIN] = "roundrobin", [K_BUCKET] = "bucket",
        [K_CURL] = "curl",
    };
    unsigned k;

    if (p == NULL) {
        snprintf(err, n, "out of memory");
        return NULL;
    }
    pthread_once(&curl_once, init_curl);
    p->o = o;
    p->index = proc;
    for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (strcmp(names[k], o->contender) == 0)
            break;
    if (k == sizeof(names) / sizeof(names[0])) {
        snprintf(err, n, "unknown contender '%s'", o->contender);
        free(p);
        return NULL;
    }
    p->kind = (enum kind)k;
    snprintf(p->url, sizeof(p->url), "%s/v1beta/models/%s:generateContent",
             o->url != NULL ? o->url : "", o->model);
    pthread_mutex_init(&p->lock, NULL);
    p->next = proc;
    /* The pool's requests per window, shared out over the processes. */
    p->rate_per_ns = (double)o->limit * o->n_keys / (double)o->window_ns /
                     o->procs;
    p->capacity = (double)o->limit * o->n_keys / 10.0;
    p->tokens = p->capacity;
    p->refilled_ns = gr_e2e_now_ns();
    if (p->kind == K_GEMROUTE) {
        p->g = gr_open(o->shm, err, n);
        if (p->g == NULL) {
            free(p);
            return NULL;
        }
    } else if (o->url == NULL || o->n_keys == 0) {
        snprintf(err, n, "--url and --keys are required");
        free(p);
        return NULL;
    }
    return p;
}

void
gr_e2e_proc_close(struct gr_e2e_proc *p)
{
    if (p->g != NULL)
        gr_close(p->g);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct gr_e2e_worker *w = arg;
    size_t n = size * nmemb;

    if (w->len + n + 1 > w->cap) {
        size_t cap = (w->len + n + 1) * 2;
        char *b = realloc(w->buf, cap);

        if (b == NULL)
            return 0;
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, ptr, n);
    w->len += n;
    w->buf[w->len] = '\0';
    return n;
}

struct gr_e2e_worker *
gr_e2e_worker_open(struct gr_e2e_proc *p, unsigned worker)
{
    struct gr_e2e_worker *w = calloc(1, sizeof(*w));
    unsigned k;

    if (w == NULL)
        return NULL;
    w->p = p;
    w->rng = ((uint64_t)gr_e2e_now_ns() ^ ((uint64_t)p->index << 40) ^
              ((uint64_t)worker << 20)) | 1;
    if (p->kind == K_GEMROUTE)
        return w;
    w->curl = curl_easy_init();
    if (w->curl == NULL) {
        free(w);
        return NULL;
    }
    for (k = 0; k < p->o->n_keys; k++) {
        char h[GR_E2E_KEY_MAX + 32];
        struct curl_slist *l;

        snprintf(h, sizeof(h), "x-goog-api-key: %s", p->o->keys[k]);
        l = curl_slist_append(NULL, "Content-Type: application/json");
        w->hdr[k] = curl_slist_append(l, h);
    }
    curl_easy_setopt(w->curl, CURLOPT_URL, p->url);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, p->o->body);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE,
                     (long)strlen(p->o->body));
    curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(w->curl, CURLOPT_PROXY, "");
    return w;
}

void
gr_e2e_worker_close(struct gr_e2e_worker *w)
{
    unsigned k;

    if (w->curl != NULL)
        curl_easy_cleanup(w->curl);
    for (k = 0; k < GR_E2E_MAX_KEYS; k++)
        curl_slist_free_all(w->hdr[k]);
    free(w->buf);
    free(w);
}

/* One POST with project k's key: the HTTP status, 0 when none came. */
static int
post(struct gr_e2e_worker *w, unsigned k)
{
    long status = 0;

    w->len = 0;
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->hdr[k]);
    if (curl_easy_perform(w->curl) != CURLE_OK)
        return 0;
    curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &status);
    return (int)status;
}

static void
call_gemroute(struct gr_e2e_worker *w, int64_t deadline_ns,
              struct gr_e2e_rec *rec)
{
    struct gr_call_opts opts;
    struct gr_response r;
    int rc;

    memset(&opts, 0, sizeof(opts));
    opts.deadline_ns = deadline_ns;
    rc = gr_generate(w->p->g, w->p->o->model, w->p->o->body, &opts, &r);
    rec->ok = rc == GR_OK;
    rec->status = r.status;
    rec->attempts = r.attempts;
    rec->n429 = r.n_429;
    gr_response_free(&r);
}

static void
call_direct(struct gr_e2e_worker *w, long index, struct gr_e2e_rec *rec)
{
    int st = post(w, (unsigned)((w->p->index + (unsigned long)index) %
                                w->p->o->n_keys));

    rec->attempts = 1;
    rec->status = st;
    rec->n429 = st == 429;
    rec->ok = st >= 200 && st < 300;
}

/* The next healthy project; all healthy again when none is. */
static unsigned
rr_pick(struct gr_e2e_proc *p, int64_t now)
{
    unsigned n = p->o->n_keys, k, i;

    pthread_mutex_lock(&p->lock);
    for (k = 0; k < n; k++) {
        i = (p->next + k) % n;
        if (p->unhealthy_until[i] <= now)
            goto found;
    }
    for (k = 0; k < n; k++)
        p->unhealthy_until[k] = 0;
    i = p->next % n;
found:
    p->next = i + 1;
    pthread_mutex_unlock(&p->lock);
    return i;
}

static void
call_roundrobin(struct gr_e2e_worker *w, struct gr_e2e_rec *rec)
{
    struct gr_e2e_proc *p = w->p;
    int64_t pause = p->o->window_ns / 60;      /* 1 s of a minute */
    int attempt;

    for (attempt = 0; attempt < 4; attempt++) {
        unsigned k = rr_pick(p, gr_e2e_now_ns());
        int st = post(w, k);

        rec->attempts++;
        rec->status = st;
        if (st >= 200 && st < 300) {
            rec->ok = 1;
            return;
        }
        if (st == 429) {
            rec->n429++;
            pthread_mutex_lock(&p->lock);
            p->unhealthy_until[k] = gr_e2e_now_ns() + p->o->window_ns;
            pthread_mutex_unlock(&p->lock);
        } else if (st >= 400 && st < 500) {
            return;     /* the request is at fault: no retry */
        }
        if (attempt < 3)
            sleep_until(gr_e2e_now_ns() + pause);
    }
}

/* Take one token, waiting for it; false when the deadline comes first. */
static bool
bucket_take(struct gr_e2e_proc *p, int64_t deadline_ns)
{
    for (;;) {
        int64_t now = gr_e2e_now_ns(), wait;

        pthread_mutex_lock(&p->lock);
        p->tokens += (double)(now - p->refilled_ns) * p->rate_per_ns;
        if (p->tokens > p->capacity)
            p->tokens = p->capacity;
        p->refilled_ns = now;
        if (p->tokens >= 1.0) {
            p->tokens -= 1.0;
            pthread_mutex_unlock(&p->lock);
            return true;
        }
        wait = (int64_t)((1.0 - p->tokens) / p->rate_per_ns) + 1;
        pthread_mutex_unlock(&p->lock);
        if (now + wait > deadline_ns)
            return false;
        sleep_until(now + wait);
    }
}

static void
call_bucket(struct gr_e2e_worker *w, long index, int64_t deadline_ns,
            struct gr_e2e_rec *rec)
{
    struct gr_e2e_proc *p = w->p;
    int64_t base = p->o->window_ns / 60;       /* 1 s of a minute */
    int64_t cap = p->o->window_ns * 32 / 60;   /* 32 s of a minute */
    unsigned k = (unsigned)((p->index + (unsigned long)index) %
                            p->o->n_keys);
    int attempt;

    for (attempt = 0; attempt < 8; attempt++) {
        int64_t ceiling, wait;
        int st;

        if (!bucket_take(p, deadline_ns))
            return;
        st = post(w, k);
        rec->attempts++;
        rec->status = st;
        if (st >= 200 && st < 300) {
            rec->ok = 1;
            return;
        }
        if (st == 429)
            rec->n429++;
        else if (st >= 400 && st < 500)
            return;
        ceiling = base << (attempt < 20 ? attempt : 20);
        if (ceiling > cap)
            ceiling = cap;
        wait = (int64_t)(next_rand(&w->rng) % (uint64_t)(ceiling + 1));
        if (gr_e2e_now_ns() + wait > deadline_ns)
            return;
        sleep_until(gr_e2e_now_ns() + wait);
        k = (k + 1) % p->o->n_keys;
    }
}

void
gr_e2e_call(struct gr_e2e_worker *w, long index, int64_t deadline_ns,
            struct gr_e2e_rec *rec)
{
    rec->ok = 0;
    rec->status = 0;
    rec->attempts = 0;
    rec->n429 = 0;
    switch (w->p->kind) {
    case K_GEMROUTE:
        call_gemroute(w, deadline_ns, rec);
        break;
    case K_DIRECT:
    case K_CURL:
        call_direct(w, index, rec);
        break;
    case K_ROUNDROBIN:
        call_roundrobin(w, rec);
        break;
    case K_BUCKET:
        call_bucket(w, index, deadline_ns, rec);
        break;
    }
}

int
gr_e2e_get(const char *url, const char *file)
{
    FILE *f = fopen(file, "w");
    CURL *c;
    CURLcode rc;

    if (f == NULL)
        return -1;
    pthread_once(&curl_once, init_curl);
    c = curl_easy_init();
    if (c == NULL) {
        fclose(f);
        return -1;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    fclose(f);
    return rc == CURLE_OK ? 0 : -1;
}
