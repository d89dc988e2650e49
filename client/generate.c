/*
 * generate.c - whole Gemini calls: estimate the cost, reserve it, make
 * the HTTP call, classify the answer, settle the lease with what Google
 * counted, report the answer to the table, and retry elsewhere when that
 * helps (gr_generate, gr_stream, gr_count_tokens, gr_embed,
 * gr_batch_embed).
 *
 * Invariants protected: every lease taken is settled exactly once, with
 * the answer's promptTokenCount when there is one and the estimate kept
 * otherwise (never less than Google may have counted), and with a first
 * byte instant that is never early; a call is retried only while its
 * deadline and attempts allow, never after the request was found at
 * fault, and never once part of a stream reached the caller; the key
 * appears in no message (http.c sends it, nothing here prints it).
 */
#include "client_priv.h"
#include "estimate_priv.h"
#include "media_first.h"
#include "fallback_priv.h"
#include "http_priv.h"
#include "json_priv.h"
#include "reserve.h"
#include "response_priv.h"

#include <errno.h>
#include <json.h>
#include <stdarg.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)

#define DEFAULT_DEADLINE_NS (120 * NS_PER_S)
#define DEFAULT_ATTEMPTS 8
#define DEFAULT_BACKOFF_BASE_NS (100 * NS_PER_MS)
#define DEFAULT_BACKOFF_CAP_NS (10 * NS_PER_S)
#define MAX_ATTEMPTS 100


enum op {
    OP_GENERATE,
    OP_STREAM,
    OP_COUNT,
    OP_EMBED,
    OP_BATCH,
};

static const char *const op_method[] = {
    [OP_GENERATE] = "generateContent",
    [OP_STREAM] = "streamGenerateContent?alt=sse",
    [OP_COUNT] = "countTokens",
    [OP_EMBED] = "embedContent",
    [OP_BATCH] = "batchEmbedContents",
};

/* What the retry loop does after one attempt. */
enum next {
    NEXT_DONE,          /* a 2xx answer: success */
    NEXT_RETRY,         /* worth another attempt */
    NEXT_FAIL,          /* final: GR_ECALL */
    NEXT_DEADLINE,      /* final: the deadline cut the call */
};

/* One call in progress. */
struct call {
    struct gr *g;
    enum op op;
    const char *model;
    const char *body;
    size_t len;
    struct gr_call_opts o;          /* defaults filled in */
    int64_t start_ns;
    gr_chunk_fn on_chunk;
    void *arg;
    struct gr_response *out;
    /* per attempt, streams only */
    struct gr_sse sse;
    uint64_t delivered;             /* events given to on_chunk, all
                                       attempts */
    bool user_stopped;
    char *err_event;                /* an error event of a 2xx stream */
    size_t err_event_len;
    int64_t tpm_tokens;             /* what the last answer's TPM count
                                       was: promptTokenCount +
                                       toolUsePromptTokenCount (- cached
                                       when router.tpm_counts_cached is
                                       false); -1 = not reported */
    int64_t images_out;             /* images the last answer holds; -1 =
                                       none read */
    struct gr_pin pin;              /* resources named (resource.c) */
    int64_t max_out;                /* output tokens the request allows
                                       (spend caps); -1 = not set */
    struct gr_shm_spend_use spend_use;  /* the last answer's usage, for
                                           its cost; prompt -1 = none */
};

/* ---- small helpers ---------------------------------------------------- */

static void
sleep_until(int64_t at_ns)
{
    struct timespec ts;

    if (at_ns <= 0)
        return;
    ts.tv_sec = (time_t)(at_ns / NS_PER_S);
    ts.tv_nsec = (long)(at_ns % NS_PER_S);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR)
        ;
}

/* Model names go into the URL path: the characters config/ allows. */
static bool
model_ok(const char *m)
{
    size_t i;

    for (i = 0; m[i] != '\0'; i++) {
        char ch = m[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
              ch == '_'))
            return false;
    }
    return i > 0 && i < GR_NAME_MAX;
}

#define fail_msg(c, ...) gr_call_fail((c)->g, (c)->out, __VA_ARGS__)

/* ---- the cost of a request, before it is sent ------------------------- */

/*
 * The cost rule (docs/CLIENT.md): requests = 1, or the number of entries
 * of a batch; images = the images the request asks to generate
 * (gr_est_images_out()); tokens = opts->est_tokens when > 0, else
 * ceil(bytes of the text of every part / 4) + the media's tokens
 * (gr_est_tokens(), "Media tokens"), else (nothing readable)
 * ceil(request bytes / 4).  countTokens costs nothing of the windows.
 * What was read is left in *ep.
 */
static void
estimate(const struct call *c, struct gr_cost *cost, struct gr_est *ep)
{
    struct gr_est e;

    memset(ep, 0, sizeof(*ep));
    cost->requests = 1;
    cost->tokens = 0;
    cost->images = 0;
    if (c->op == OP_COUNT) {
        cost->requests = 0;
        return;
    }
    gr_est_read(c->body, c->len, &e);
    if (c->op == OP_BATCH && e.requests > 0)
        cost->requests = e.requests;
    /* IPM counts images generated, never input images (those cost
     * tokens, below). */
    cost->images = c->op == OP_GENERATE || c->op == OP_STREAM
                       ? gr_est_images_out(c->body, c->len) : 0;
    if (c->o.est_tokens > 0)
        cost->tokens = c->o.est_tokens;
    else if (gr_est_any(&e))
        cost->tokens = gr_est_tokens(&e, c->model);
    else
        cost->tokens = ((int64_t)c->len + 3) / 4;
    if (cost->tokens > INT32_MAX)
        cost->tokens = INT32_MAX;
    *ep = e;
}

/* ---- one attempt ------------------------------------------------------ */

/*
 * Fault points, for the reliability tests only: GEMROUTE_FAULT names a
 * step (after_reserve, before_commit, in_stream) at which this process
 * kills itself with SIGKILL, as a crash there would.  Read once.
 */
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static char fault_at[32];

static void
read_fault(void)
{
    const char *f = getenv("GEMROUTE_FAULT");

    if (f != NULL)
        snprintf(fault_at, sizeof(fault_at), "%s", f);
}

static void
fault_point(const char *step)
{
    pthread_once(&fault_once, read_fault);
    if (fault_at[0] != '\0' && strcmp(fault_at, step) == 0)
        raise(SIGKILL);
}

static int
on_event(void *arg, const char *data, size_t len)
{
    struct call *c = arg;

    if (c->sse.error_code != 0) {
        /* An error inside a 2xx stream: kept for the classifier, never
         * handed to the caller as content. */
        if (c->err_event == NULL) {
            c->err_event = malloc(len + 1);
            if (c->err_event != NULL) {
                memcpy(c->err_event, data, len + 1);
                c->err_event_len = len;
            }
        }
        return 0;
    }
    if (c->on_chunk != NULL && c->on_chunk(c->arg, data, len) != 0) {
        c->user_stopped = true;
        return 1;
    }
    c->delivered++;
    fault_point("in_stream");
    return 0;
}

/* http.c's tap: a 2xx stream goes through the SSE parser as it comes. */
static int
on_bytes(void *arg, int status, const char *p, size_t n)
{
    struct call *c = arg;

    if (status < 200 || status > 299)
        return 0;
    return gr_sse_feed(&c->sse, p, n, on_event, c) != 0;
}

static int64_t
max_call_ns(const struct call *c)
{
    /* relaxed: a setting read on its own; range-checked below */
    uint32_t s = atomic_load_explicit(&c->g->t.hdr->max_call_s,
                                      memory_order_relaxed);

    if (s == 0 || s > 86400)
        s = 600;
    return (int64_t)s * NS_PER_S;
}

/*
 * What input TPM counted for an answer (docs/CLIENT.md, "What the
 * windows count"): promptTokenCount plus toolUsePromptTokenCount (the
 * tool results Google fed back in, which promptTokenCount leaves out);
 * cachedContentTokenCount is part of promptTokenCount and stays charged
 * unless router.tpm_counts_cached = false (Google does not say).
 */
static int64_t
tpm_of(struct call *c, const struct gr_resp_usage *ru)
{
    int64_t t = ru->prompt_tokens;

    if (t < 0)
        return -1;
    if (ru->tool_prompt_tokens > 0 &&
        ru->tool_prompt_tokens <= INT32_MAX - t)
        t += ru->tool_prompt_tokens;
    if ((gr_tpm_flags(c->g) & GR_TPM_NO_CACHED) && ru->cached_tokens > 0 &&
        ru->cached_tokens <= ru->prompt_tokens)
        t -= ru->cached_tokens;
    return t;
}

static void
take_usage(struct call *c, const struct gr_http_res *res)
{
    struct gr_tokens *u = &c->out->usage;
    struct gr_resp_usage ru;

    u->prompt = u->candidates = u->thoughts = u->total = -1;
    c->tpm_tokens = -1;
    c->images_out = -1;
    c->spend_use.prompt = -1;
    if (res->status < 200 || res->status > 299)
        return;
    if (c->op == OP_GENERATE || c->op == OP_STREAM)
        c->images_out = gr_resp_images(res->body, res->len);
    if (c->op == OP_COUNT) {
        struct json_object *root = gr_json_parse(res->body, res->len, 0, 0,
                                                 NULL);
        struct json_object *t = gr_json_member2(root, "totalTokens",
                                                "total_tokens", GR_JSON_INT);

        if (t != NULL && json_object_get_int64(t) >= 0)
            u->prompt = u->total = json_object_get_int64(t);
        json_object_put(root);
        return;
    }
    if (c->op == OP_STREAM) {
        if (!c->sse.have_usage)
            return;
        ru = c->sse.usage;
    } else if (res->body == NULL ||
               gr_resp_usage(res->body, res->len, &ru) != 0) {
        return;
    }
    u->prompt = ru.prompt_tokens;
    u->candidates = ru.candidates_tokens;
    u->thoughts = ru.thoughts_tokens;
    u->total = ru.total_tokens;
    c->tpm_tokens = tpm_of(c, &ru);
    /* What the call is billed for (spend caps): all input, cached
     * included, at its prices; output and thinking tokens. */
    c->spend_use.prompt = ru.prompt_tokens;
    if (ru.prompt_tokens >= 0 && ru.tool_prompt_tokens > 0 &&
        ru.tool_prompt_tokens <= INT32_MAX - ru.prompt_tokens)
        c->spend_use.prompt += ru.tool_prompt_tokens;
    c->spend_use.cached = ru.cached_tokens;
    c->spend_use.output = ru.candidates_tokens;
    c->spend_use.thinking = ru.thoughts_tokens;
}

/* Copy s to dst + at, cut to fit cap bytes with the NUL; returns where
 * the copy ends, for the next part. */
static size_t
put(char *dst, size_t cap, size_t at, const char *s)
{
    size_t n = strnlen(s, cap - at - 1);

    memcpy(dst + at, s, n);
    dst[at + n] = '\0';
    return at + n;
}

/* {base_url}/v1beta/models/{model}:{method}: what snprintf would make,
 * without parsing a format on every attempt (about 2,000 instructions of
 * the 30,000 a call adds). */
static void
url_of(char *dst, size_t cap, const char *base, const char *model,
       const char *method)
{
    size_t at = put(dst, cap, 0, base);

    at = put(dst, cap, at, "/v1beta/models/");
    at = put(dst, cap, at, model);
    at = put(dst, cap, at, ":");
    put(dst, cap, at, method);
}

/* What the answer (or its absence) means. */
static void
judge(struct call *c, const struct gr_http_res *res, struct gr_verdict *v)
{
    int64_t now_s = time(NULL);
    struct gr_shm_header *h = c->g->t.hdr;  /* the published Pacific days */

    if (res->status == 0) {
        gr_classify_in(h, 0, NULL, 0, now_s, v);
        snprintf(v->reason, sizeof(v->reason), "no answer: %.160s", res->error);
    } else if (c->op == OP_STREAM && c->sse.error_code != 0) {
        gr_classify_in(h, c->sse.error_code, c->err_event, c->err_event_len,
                       now_s, v);
    } else if (res->err == GR_HTTP_TOO_BIG || res->err == GR_HTTP_NOMEM) {
        gr_classify_in(h, res->status, NULL, 0, now_s, v);
    } else {
        gr_classify_in(h, res->status, res->body, res->len, now_s, v);
    }
}

static enum next
attempt(struct call *c, struct gr_lease *l)
{
    struct gr_response *out = c->out;
    struct gr_http_req req;
    struct gr_http_res res;
    struct gr_verdict v;
    struct gr_usage use;
    char url[GR_URL_MAX + GR_NAME_MAX + 64];
    int64_t stop_at, cap_at;
    bool deadline_cut, cut, report = true;
    const char *cut_why = NULL;
    enum next next;

    url_of(url, sizeof(url), l->base_url, c->model, op_method[c->op]);
    /* The router settles a lease open past max_call_s: end before it. */
    cap_at = l->admitted_ns + max_call_ns(c) / 20 * 19;
    stop_at = c->o.deadline_ns < cap_at ? c->o.deadline_ns : cap_at;

    memset(&req, 0, sizeof(req));
    req.url = url;
    req.key = l->key;
    req.proxy = l->proxy;
    req.body = c->body;
    req.len = c->len;
    req.stop_at_ns = stop_at;
    if (c->op == OP_STREAM) {
        gr_sse_init(&c->sse);
        req.tap = on_bytes;
        req.arg = c;
    }
    gr_http_post(&req, &res);
    explicit_bzero(l->key, sizeof(l->key));
    explicit_bzero(l->proxy, sizeof(l->proxy));     /* may hold a password */
    /*
     * A 2xx stream that came whole over HTTP may still be cut: inside an
     * event (the part is dropped, never handed to the caller), or between
     * events before the answer's final one (no finishReason).  Either is
     * a server-class failure, below.
     */
    if (c->op == OP_STREAM && res.err == GR_HTTP_OK &&
        res.status >= 200 && res.status <= 299) {
        if (gr_sse_finish(&c->sse, on_event, c) != 0) {
            if (!c->user_stopped) {
                res.err = GR_HTTP_BROKEN;
                cut_why = gr_sse_error(&c->sse);
            }
        } else if (!c->sse.finished && c->sse.error_code == 0) {
            res.err = GR_HTTP_BROKEN;
            cut_why = "stream ended before its final event (no "
                      "finishReason)";
        }
    }

    out->attempts++;
    if (res.status == 429)
        out->n_429++;
    free(out->body);
    out->body = res.body;
    out->len = res.len;
    out->status = res.status;
    put(out->project, sizeof(out->project), 0, l->project);
    take_usage(c, &res);
    judge(c, &res, &v);
    deadline_cut = res.err == GR_HTTP_TIMEOUT && stop_at == c->o.deadline_ns;

    /* A 2xx whose body did not come whole: Google counted the request,
     * the project is fine, but the caller has no answer. */
    cut = false;
    if (v.cls == GR_CLASS_OK && res.err != GR_HTTP_OK) {
        if (res.err == GR_HTTP_BROKEN || res.err == GR_HTTP_TIMEOUT) {
            cut = true;
            v.cls = GR_CLASS_SERVER;
            v.retryable = true;     /* the loop refuses once an event
                                       reached the caller */
            snprintf(v.reason, sizeof(v.reason), "%d: answer cut: %.160s",
                     res.status, cut_why != NULL ? cut_why
                     : c->sse.err != 0 ? gr_sse_error(&c->sse) : res.error);
        } else {
            v.retryable = false;
            report = res.err != GR_HTTP_STOPPED || c->user_stopped;
            snprintf(v.reason, sizeof(v.reason), "%d: %.160s", res.status,
                     c->user_stopped ? "stopped by the chunk callback"
                     : c->sse.err != 0 ? gr_sse_error(&c->sse) : res.error);
        }
    }

    fault_point("before_commit");

    /*
     * Report, except: a call our own deadline cut says nothing about the
     * project; countTokens has its own quota at Google, so only what it
     * says about the key or the model applies to the table.
     */
    if (deadline_cut)
        report = false;
    if (c->op == OP_COUNT && v.cls != GR_CLASS_OK &&
        v.cls != GR_CLASS_AUTH && v.cls != GR_CLASS_MODEL)
        report = false;
    /* A 403/404 naming a resource of the request: its own fault. */
    if (gr_pin_answer(c->g, &c->pin, res.status, out->body, out->len)) {
        v.cls = GR_CLASS_REQUEST;
        v.retryable = false;
        v.disable = GR_DISABLE_NONE;
        v.cooldown_s = 0;
        v.dims = 0;
        report = false;
    }
    if (report) {
        struct gr_verdict tv = v;

        /* The table keys health off the class; a cut 2xx is trouble. */
        if (v.cls == GR_CLASS_SERVER && res.status >= 200 &&
            res.status <= 299)
            tv.status = 0;
        gr_report(c->g, l, &tv);
    }

    /* Settle after the report: while the lease is open its project slot
     * cannot be freed and reused, so the report reaches the project that
     * answered.  Google's count when it gave one (for a cut stream, the
     * last usageMetadata of a whole event: Google sent it, so it counted
     * it), else the estimate. */
    use.tokens = c->op == OP_COUNT ? 0
                 : (v.cls == GR_CLASS_OK || (cut && c->op == OP_STREAM)) &&
                   c->tpm_tokens >= 0 ? c->tpm_tokens : -1;
    /* Images: those a whole answer holds when that is more than was
     * reserved; fewer keep the reservation (an image Google made and
     * then withheld may still count: when in doubt, no refund). */
    use.images = v.cls == GR_CLASS_OK && !cut &&
                 c->images_out > l->cost.images ? c->images_out : -1;
    use.first_byte_ns = res.first_byte_ns;
    {
        /* The cost: the usage Google reported; an error answer is not
         * billed; anything else (no answer, no usage) keeps the worst
         * case reserved. */
        static const struct gr_shm_spend_use none = {0, 0, 0, 0};
        const struct gr_shm_spend_use *su =
            c->spend_use.prompt >= 0 && (v.cls == GR_CLASS_OK || cut)
                ? &c->spend_use
            : res.status >= 400 ? &none : NULL;

        gr_commit_spend(c->g, l, &use, su);
    }
    out->verdict = v;

    if (v.cls == GR_CLASS_OK && res.err == GR_HTTP_OK)
        next = NEXT_DONE;
    else if (deadline_cut)
        next = NEXT_DEADLINE;
    else if (!v.retryable || c->user_stopped)
        next = NEXT_FAIL;
    else if (c->delivered > 0)
        next = NEXT_FAIL;   /* the caller has part of an answer */
    else
        next = NEXT_RETRY;

    if (c->op == OP_STREAM)
        gr_sse_free(&c->sse);
    free(c->err_event);
    c->err_event = NULL;
    c->err_event_len = 0;
    return next;
}

/* ---- the retry loop --------------------------------------------------- */

int64_t
gr_backoff_ns(int64_t base, int64_t cap, int n, uint64_t r)
{
    int64_t span = base;
    int i;

    /* Doubled only while it stays below cap: cap / 2 < span means the
     * next doubling would pass cap (or int64), so cap it is. */
    for (i = 1; i < n && span < cap; i++)
        span = span > cap / 2 ? cap : span * 2;
    if (span > cap)
        span = cap;
    if (span <= 0)
        return 0;
    /* span + 1 in uint64: span may be INT64_MAX */
    return (int64_t)(r % ((uint64_t)span + 1));
}

/* Full jitter: uniform in [0, min(cap, base * 2^(n-1))]. */
static int64_t
backoff_ns(const struct call *c, int n)
{
    return gr_backoff_ns(c->o.backoff_base_ns, c->o.backoff_cap_ns, n,
                         gr_shm_rand(gr_thread_rng()));
}

static int
queue_for_room(struct call *c, const struct gr_cost *cost,
               struct gr_lease *l)
{
    int64_t until = c->o.queue_deadline_ns < c->o.deadline_ns
                        ? c->o.queue_deadline_ns : c->o.deadline_ns;
    int64_t t0 = gr_now_ns();
    int rc;

    if (until <= t0)
        until = t0 - 1 > 0 ? t0 - 1 : 1;   /* passed: fail, do not poll */
    rc = gr_reserve_spend(c->g, c->pin.project, c->model, cost, c->max_out,
                          until, l);
    c->out->queued_ns += gr_now_ns() - t0;
    return rc;
}

static int
no_room(struct call *c, const struct gr_lease *l)
{
    struct gr_response *out = c->out;
    int64_t now = gr_now_ns();
    const char *which = c->o.queue_deadline_ns < c->o.deadline_ns
                            ? "the queue deadline" : "the deadline";

    out->retry_at_ns = l->retry_at_ns;
    if (l->retry_at_ns > now)
        fail_msg(c, "no room for %s on any project before %s; room "
                 "expected in %.1f s: a deadline %.1f s after the call "
                 "began would have been needed%s%s",
                 c->model, which, (double)(l->retry_at_ns - now) / 1e9,
                 (double)(l->retry_at_ns - c->start_ns) / 1e9,
                 out->attempts > 0 ? "; last answer: " : "",
                 out->attempts > 0 ? out->verdict.reason : "");
    else
        fail_msg(c, "no room for %s on any project before %s (every "
                 "project is cooling, open or disabled, so when room "
                 "comes is unknown)%s%s", c->model, which,
                 out->attempts > 0 ? "; last answer: " : "",
                 out->attempts > 0 ? out->verdict.reason : "");
    return GR_EDEADLINE;
}

/* Our own sentence for GR_ETOOBIG (the handle's may be another
 * thread's): the first dimension no project's window can hold. */
static void
too_big_msg(struct call *c, const struct gr_cost *cost)
{
    static const char *const what[GR_NWINDOWS] = {
        "requests", "input tokens", "images to generate",
    };
    static const char *const dim[GR_NWINDOWS] = {"RPM", "TPM", "IPM"};
    int64_t want[GR_NWINDOWS] = {cost->requests, cost->tokens, cost->images};
    unsigned w;

    for (w = 0; w < GR_NWINDOWS; w++) {
        int64_t most = want[w] > 0 ? gr_largest_limit(c->g, c->model, w)
                                   : -1;

        if (most >= 0 && want[w] > most) {
            fail_msg(c, "request estimated at %lld %s; the largest %s limit "
                     "of any project serving %s is %lld: it can never be "
                     "sent", (long long)want[w], what[w], dim[w], c->model,
                     (long long)most);
            return;
        }
    }
    fail_msg(c, "request too big for any project serving %s", c->model);
}

static int
run(struct call *c, struct gr_cost *cost)
{
    struct gr_response *out = c->out;
    struct gr_lease l;
    int rc;

    for (;;) {
        enum next next;
        int64_t wait, now;

        rc = queue_for_room(c, cost, &l);
        if (rc == GR_OK)
            fault_point("after_reserve");
        if (rc == GR_EDEADLINE)
            return no_room(c, &l);
        if (rc != GR_OK) {
            /* Our own sentence: the handle's may be another thread's. */
            if (rc == GR_ENOMODEL)
                fail_msg(c, "no project serves model '%s'", c->model);
            else if (rc == GR_ETOOBIG)
                too_big_msg(c, cost);
            else if (rc == GR_ESPEND)
                fail_msg(c, "%s", gr_spend_refusal());
            else
                fail_msg(c, "reserving room for %s failed: %s", c->model,
                         gr_err_name(rc));
            return rc;
        }
        next = attempt(c, &l);
        if (next == NEXT_DONE)
            return GR_OK;
        if (next == NEXT_DEADLINE) {
            fail_msg(c, "deadline passed during attempt %d (project %s)",
                     out->attempts, out->project);
            return GR_EDEADLINE;
        }
        if (next == NEXT_FAIL) {
            if (c->delivered > 0 && out->verdict.retryable &&
                !c->user_stopped)
                fail_msg(c, "stream broke after %llu events, not retried: "
                         "%s", (unsigned long long)c->delivered,
                         out->verdict.reason);
            else
                fail_msg(c, "%s", out->verdict.reason);
            return GR_ECALL;
        }
        if (out->attempts >= c->o.max_attempts) {
            fail_msg(c, "gave up after %d attempts; last answer: %s",
                     out->attempts, out->verdict.reason);
            return GR_ECALL;
        }
        /*
         * The table already keeps the cell that answered out of the next
         * choice for as long as its verdict says (cooldown, circuit,
         * disabled), so the next attempt goes to another project at once
         * when one has room.  A 5xx retry hint is the model's, not the
         * project's: it is waited out here.
         */
        wait = backoff_ns(c, out->attempts);
        if ((out->verdict.cls == GR_CLASS_OVERLOAD ||
             out->verdict.cls == GR_CLASS_SERVER) &&
            out->verdict.cooldown_s > 0) {
            double hint = out->verdict.cooldown_s * 1e9;
            /* compared as doubles: (double)cap may round up past
             * INT64_MAX, where the cast back would be undefined */
            int64_t hint_ns = hint >= (double)c->o.backoff_cap_ns
                                  ? c->o.backoff_cap_ns : (int64_t)hint;

            if (hint_ns > wait)
                wait = hint_ns;
        }
        now = gr_now_ns();
        /* wait may be near INT64_MAX (the caller's cap): never now + wait */
        if (wait >= c->o.deadline_ns - now) {
            fail_msg(c, "deadline too close for attempt %d; last answer: "
                     "%s", out->attempts + 1, out->verdict.reason);
            return GR_EDEADLINE;
        }
        sleep_until(now + wait);
    }
}

/* ---- countTokens before the call -------------------------------------- */

/* {"generateContentRequest": {"model": "models/M", ...request}}. */
static char *
count_body(const struct call *c)
{
    struct json_object *req = gr_json_parse(c->body, c->len, 0, 0, NULL);
    struct json_object *wrap;
    char name[GR_NAME_MAX + 8];
    char *s = NULL;

    if (!json_object_is_type(req, json_type_object)) {
        json_object_put(req);
        return NULL;
    }
    snprintf(name, sizeof(name), "models/%s", c->model);
    wrap = json_object_new_object();
    if (wrap == NULL ||
        json_object_object_add(req, "model",
                               json_object_new_string(name)) != 0 ||
        json_object_object_add(wrap, "generateContentRequest", req) != 0) {
        json_object_put(wrap);
        json_object_put(req);
        return NULL;
    }
    s = strdup(json_object_to_json_string_ext(wrap, JSON_C_TO_STRING_PLAIN));
    json_object_put(wrap);
    return s;
}

/* cachedContentTokenCount of a countTokens answer; -1 when none. */
static int64_t
count_cached(const struct gr_response *r)
{
    struct json_object *root;
    int64_t v = -1;

    if (r->body == NULL)
        return -1;
    root = gr_json_parse(r->body, r->len, 0, 0, NULL);
    if (!gr_json_member_i64(root, "cachedContentTokenCount", &v))
        v = -1;
    json_object_put(root);
    return v;
}

/*
 * Ask countTokens (on the project the request is pinned to, if any):
 * 0 with *total (and *cached, -1 when the answer has none), or -1.
 */
static int
count_tokens(struct call *c, char *body, int64_t *total, int64_t *cached)
{
    struct gr_response r;
    struct gr_cost zero = {0, 0, 0};
    struct call cc;
    int rc = -1;

    if (body == NULL)
        return -1;
    memset(&r, 0, sizeof(r));
    cc = *c;
    cc.op = OP_COUNT;
    cc.body = body;
    cc.len = strlen(body);
    cc.on_chunk = NULL;
    cc.out = &r;
    cc.o.max_attempts = 2;
    r.usage.prompt = -1;
    if (run(&cc, &zero) == GR_OK && r.usage.prompt >= 0) {
        *total = r.usage.prompt;
        *cached = count_cached(&r);
        rc = 0;
    }
    c->out->queued_ns += r.queued_ns;
    gr_response_free(&r);
    free(body);
    return rc;
}

static int64_t
clamp_tokens(int64_t t)
{
    return t > INT32_MAX ? INT32_MAX : t < 0 ? 0 : t;
}

/* Ask countTokens; on any failure keep the local estimate. */
static void
count_first(struct call *c, struct gr_cost *cost)
{
    int64_t total, cached;

    if (count_tokens(c, count_body(c), &total, &cached) == 0)
        cost->tokens = clamp_tokens(total);
}

/*
 * Media the estimate cannot measure (media_first.c): the counts the
 * record keeps for the files and caches named, else one countTokens:
 * of the one unknown file's part alone when it is the only thing not
 * measured (its count is then exact, and recorded), else of the whole
 * request, whose answer is the estimate and may teach the record one
 * count.
 */
static void
media_first(struct call *c, struct gr_cost *cost, const struct gr_est *e)
{
    struct gr_media_need nd;
    int64_t local = cost->tokens, total, cached;
    char *part;

    gr_media_need(c->g, e, &c->pin, &nd);
    if (!nd.ask) {
        cost->tokens = clamp_tokens(local + nd.known);
        return;
    }
    if (nd.part_alone &&
        (part = gr_media_part_body(c->body, c->len, c->model,
                                   nd.name)) != NULL &&
        count_tokens(c, part, &total, &cached) == 0) {
        (void)gr_res_set_tokens(c->g, nd.name, total);
        cost->tokens = clamp_tokens(local + nd.known + total);
        return;
    }
    if (count_tokens(c, count_body(c), &total, &cached) != 0) {
        cost->tokens = clamp_tokens(local + nd.known);
        return;
    }
    cost->tokens = clamp_tokens(total);
    gr_media_learn(c->g, &nd, e, local, total, cached);
}

/* ---- the public calls ------------------------------------------------- */

static int
call_model(struct gr *g, enum op op, const char *model,
           const char *request_json, const struct gr_call_opts *opts,
           gr_chunk_fn on_chunk, void *arg, struct gr_response *out)
{
    struct gr_cost cost;
    struct gr_est e;
    struct call c;
    int rc, d;

    if (out == NULL)
        return GR_EINVAL;
    memset(out, 0, sizeof(*out));
    out->usage.prompt = out->usage.candidates = -1;
    out->usage.thoughts = out->usage.total = -1;
    for (d = 0; d < GR_NDIMS; d++)
        out->verdict.learned[d] = -1;
    if (g == NULL || model == NULL || request_json == NULL) {
        snprintf(out->error, sizeof(out->error), "missing argument");
        return GR_EINVAL;
    }
    memset(&c, 0, sizeof(c));
    c.g = g;
    c.op = op;
    c.model = model;
    c.body = request_json;
    c.len = strlen(request_json);
    c.on_chunk = on_chunk;
    c.arg = arg;
    c.out = out;
    c.start_ns = gr_now_ns();
    if (opts != NULL)
        c.o = *opts;
    if (!model_ok(model)) {
        fail_msg(&c, "model name '%.64s' has a character a URL path may "
                 "not carry", model);
        return GR_EINVAL;
    }
    if (c.o.deadline_ns <= 0)
        c.o.deadline_ns = c.start_ns + DEFAULT_DEADLINE_NS;
    if (c.o.queue_deadline_ns <= 0 || c.o.queue_deadline_ns > c.o.deadline_ns)
        c.o.queue_deadline_ns = c.o.deadline_ns;
    if (c.o.max_attempts <= 0)
        c.o.max_attempts = DEFAULT_ATTEMPTS;
    if (c.o.max_attempts > MAX_ATTEMPTS)
        c.o.max_attempts = MAX_ATTEMPTS;
    if (c.o.backoff_base_ns <= 0)
        c.o.backoff_base_ns = DEFAULT_BACKOFF_BASE_NS;
    if (c.o.backoff_cap_ns <= 0)
        c.o.backoff_cap_ns = DEFAULT_BACKOFF_CAP_NS;
    if (c.o.backoff_cap_ns < c.o.backoff_base_ns)
        c.o.backoff_cap_ns = c.o.backoff_base_ns;

    {
        char why[512];

        /* Pinned by the resources it names; two projects: refused. */
        if (gr_pin_request(g, NULL, c.body, c.len, &c.pin, why,
                           sizeof(why)) != GR_OK) {
            fail_msg(&c, "%s", why);
            return GR_EINVAL;
        }
    }
    estimate(&c, &cost, &e);
    c.max_out = op == OP_GENERATE || op == OP_STREAM
                    ? gr_spend_max_out(g, c.body, c.len) : 0;
    if (c.o.est_tokens <= 0 && (op == OP_GENERATE || op == OP_STREAM)) {
        if (c.o.count_tokens_first)
            count_first(&c, &cost);
        else
            media_first(&c, &cost, &e);
    }
    rc = run(&c, &cost);
    out->elapsed_ns = gr_now_ns() - c.start_ns;
    if (rc == GR_OK)
        out->error[0] = '\0';
    return rc;
}

/* ---- through the cache and the fallback chain (fallback.c) ----------- */

struct one_call {
    struct gr *g;
    enum op op;
    const char *body;
    gr_chunk_fn on_chunk;
    void *arg;
};

static int
one_model(void *arg, const char *model, const struct gr_call_opts *opts,
          struct gr_response *out)
{
    const struct one_call *oc = arg;

    return call_model(oc->g, oc->op, model, oc->body, opts, oc->on_chunk,
                      oc->arg, out);
}

static int
call(struct gr *g, enum op op, const char *model, const char *request_json,
     const struct gr_call_opts *opts, gr_chunk_fn on_chunk, void *arg,
     struct gr_response *out)
{
    static const enum gr_fb_kind kind[] = {
        [OP_GENERATE] = GR_FB_GENERATE, [OP_STREAM] = GR_FB_OTHER,
        [OP_COUNT] = GR_FB_COUNT, [OP_EMBED] = GR_FB_EMBED,
        [OP_BATCH] = GR_FB_BATCH_EMBED,
    };
    struct one_call oc = {g, op, request_json, on_chunk, arg};
    struct gr_fb_req q = {
        .kind = kind[op], .model = model, .body = request_json,
        .len = request_json != NULL ? strlen(request_json) : 0,
    };
    char real[GR_NAME_MAX];

    if (g == NULL || model == NULL || request_json == NULL || out == NULL ||
        !model_ok(model))
        return call_model(g, op, model, request_json, opts, on_chunk, arg,
                          out);
    /* An alias is called as the model it names, in the URL too. */
    q.model = gr_model_resolve(g, model, real);
    return gr_fb_call(g, &q, opts, one_model, &oc, out);
}

int
gr_generate(struct gr *g, const char *model, const char *request_json,
            const struct gr_call_opts *opts, struct gr_response *out)
{
    return call(g, OP_GENERATE, model, request_json, opts, NULL, NULL, out);
}

int
gr_stream(struct gr *g, const char *model, const char *request_json,
          const struct gr_call_opts *opts, gr_chunk_fn on_chunk, void *arg,
          struct gr_response *out)
{
    return call(g, OP_STREAM, model, request_json, opts, on_chunk, arg, out);
}

int
gr_count_tokens(struct gr *g, const char *model, const char *request_json,
                const struct gr_call_opts *opts, struct gr_response *out)
{
    return call(g, OP_COUNT, model, request_json, opts, NULL, NULL, out);
}

int
gr_embed(struct gr *g, const char *model, const char *request_json,
         const struct gr_call_opts *opts, struct gr_response *out)
{
    return call(g, OP_EMBED, model, request_json, opts, NULL, NULL, out);
}

int
gr_batch_embed(struct gr *g, const char *model, const char *request_json,
               const struct gr_call_opts *opts, struct gr_response *out)
{
    return call(g, OP_BATCH, model, request_json, opts, NULL, NULL, out);
}

void
gr_response_free(struct gr_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
    r->len = 0;
}

const char *
gr_err_name(int err)
{
    switch (err) {
    case GR_OK: return "ok";
    case GR_ENOROOM: return "no room";
    case GR_EDEADLINE: return "deadline";
    case GR_ENOMODEL: return "no such model";
    case GR_EINVAL: return "invalid argument";
    case GR_ESHM: return "table unusable";
    case GR_ESTALE: return "stale lease";
    case GR_ECALL: return "call failed";
    case GR_ENOMEM: return "out of memory";
    case GR_ETOOBIG: return "request too big";
    case GR_ESPEND: return "spend cap reached";
    default: return "unknown error";
    }
}

/* ---- the answer's text ------------------------------------------------ */

struct text {
    char *s;
    size_t len, cap;
    bool any;
};

static void
text_add(struct text *t, const char *p, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        char *s;

        while (cap < t->len + n + 1)
            cap *= 2;
        s = realloc(t->s, cap);
        if (s == NULL)
            return;
        t->s = s;
        t->cap = cap;
    }
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = '\0';
    t->any = true;
}

/* Text parts of candidates[0] of one GenerateContentResponse. */
static void
text_of(struct json_object *o, struct text *t)
{
    struct json_object *cands, *cand, *content, *parts;
    size_t i, n;

    if (json_object_is_type(o, json_type_array)) {
        n = json_object_array_length(o);
        for (i = 0; i < n; i++)
            text_of(json_object_array_get_idx(o, i), t);
        return;
    }
    cands = gr_json_member(o, "candidates", GR_JSON_ARRAY);
    if (cands == NULL || json_object_array_length(cands) == 0)
        return;
    cand = json_object_array_get_idx(cands, 0);
    content = gr_json_member(cand, "content", GR_JSON_OBJECT);
    parts = gr_json_member(content, "parts", GR_JSON_ARRAY);
    if (parts == NULL)
        return;
    n = json_object_array_length(parts);
    for (i = 0; i < n; i++) {
        struct json_object *p = json_object_array_get_idx(parts, i);
        struct json_object *s = gr_json_member(p, "text", GR_JSON_STRING);
        struct json_object *th = gr_json_member(p, "thought", GR_JSON_BOOL);

        if (s != NULL && !(th != NULL && json_object_get_boolean(th)))
            text_add(t, json_object_get_string(s),
                     (size_t)json_object_get_string_len(s));
    }
}

static int
text_event(void *arg, const char *data, size_t len)
{
    struct json_object *o = gr_json_parse(data, len, 0, 0, NULL);

    text_of(o, arg);
    json_object_put(o);
    return 0;
}

char *
gr_response_text(const struct gr_response *r)
{
    struct text t = {NULL, 0, 0, false};
    size_t i = 0;

    if (r == NULL || r->body == NULL || r->len == 0)
        return NULL;
    while (i < r->len && (r->body[i] == ' ' || r->body[i] == '\n' ||
                          r->body[i] == '\r' || r->body[i] == '\t'))
        i++;
    if (r->len - i >= 5 && memcmp(r->body + i, "data:", 5) == 0) {
        struct gr_sse p;

        gr_sse_init(&p);
        if (gr_sse_feed(&p, r->body, r->len, text_event, &t) == 0)
            (void)gr_sse_finish(&p, text_event, &t);
        gr_sse_free(&p);
    } else {
        struct json_object *o = gr_json_parse(r->body, r->len, 0, 0, NULL);

        text_of(o, &t);
        json_object_put(o);
    }
    if (!t.any) {
        free(t.s);
        return NULL;
    }
    return t.s;
}
