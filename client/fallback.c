/*
 * fallback.c - the step around every call of the library: the shared
 * response cache, then the model asked for, then its fallback chain.
 *
 *   1. A cacheable request (embedContent, batchEmbedContents,
 *      countTokens always; a non-streamed generateContent when the
 *      caller opts in, the config says so or it asks for temperature 0)
 *      is looked up by model + canonical body.  A hit is the answer:
 *      no reservation, no quota, no HTTP.
 *   2. The call is made on the model asked for.
 *   3. Only if the caller allows it (gr_call_opts.fallback, else the
 *      model's fallback_allow) and the request names no resource pinned
 *      to a project, the next model of the chain is tried when the model
 *      before it had no room before the queue deadline (GR_EDEADLINE
 *      with nothing sent), or at once when its day quota (RPD, or its
 *      tokens per day) is spent on every project.  Never because of a
 *      request error or an answer: a call that sent anything keeps its
 *      outcome.
 *   4. A 2xx answer to a cacheable request is kept under the model that
 *      answered.
 *
 * Invariant protected: a fallback never happens after any byte of the
 * request was sent (attempts == 0), so a request is answered by at most
 * one model; and every pair (asked, answered) is counted once in the
 * table's extras, with relaxed atomic adds, where every process sees it.
 */
#include "fallback_priv.h"
#include "json_priv.h"
#include "store_priv.h"
#include "response_priv.h"
#include "seqlock.h"
#include "window.h"

#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_MAX (1 + GR_FALLBACK_MAX)
#define DEFAULT_WAIT_NS (INT64_C(120) * 1000000000)  /* as generate.c */

/* The chain of model as the table has it: names[0] is model itself. */
struct chain {
    int n;                          /* names in use, >= 1 */
    int idx[CHAIN_MAX];             /* model indices; -1 = not in table */
    char names[CHAIN_MAX][GR_NAME_MAX];
    uint32_t flags;                 /* GR_FB_* of the model asked for */
};

struct chain_read {
    const struct gr_shm *t;
    const char *model;
    struct chain *c;
};

/* One try at the chain, under models_seq (it may run again). */
static void
copy_chain(void *arg)
{
    const struct chain_read *r = arg;
    const struct gr_shm *t = r->t;
    struct chain *c = r->c;
    struct gr_shm_fallback fb;
    struct gr_shm_model m;
    uint32_t i, n;
    int k;

    c->n = 1;
    c->idx[0] = -1;
    c->flags = 0;
    /* acquire: stays before the seqlock's re-read (see seqlock.h) */
    n = atomic_load_explicit(&t->hdr->n_models, memory_order_acquire);
    if (n > t->max_models)
        n = t->max_models;
    for (i = 0; i < n; i++) {
        gr_shm_seq_copy_out(&m, &t->models[i], sizeof(m));
        if (strncmp(m.name, r->model, GR_SHM_NAME_MAX) == 0) {
            c->idx[0] = (int)i;
            break;
        }
    }
    if (c->idx[0] < 0)
        return;
    gr_shm_seq_copy_out(&fb, &t->fallback[c->idx[0]], sizeof(fb));
    c->flags = fb.flags;
    for (k = 0; k < GR_FALLBACK_MAX; k++) {
        uint32_t to = fb.chain[k];

        /* untrusted: in range, not the model itself */
        if (to == GR_FALLBACK_END || to >= n || (int)to == c->idx[0])
            break;
        gr_shm_seq_copy_out(&m, &t->models[to], sizeof(m));
        m.name[GR_SHM_NAME_MAX - 1] = '\0';
        c->idx[c->n] = (int)to;
        memcpy(c->names[c->n], m.name, GR_NAME_MAX);
        c->n++;
    }
}

static void
read_chain(const struct gr *g, const char *model, struct chain *c)
{
    struct chain_read r = {&g->t, model, c};

    c->n = 1;
    c->idx[0] = -1;
    c->flags = 0;
    snprintf(c->names[0], GR_NAME_MAX, "%s", model);
    if (g->t.fallback == NULL)
        return;                     /* a table of ABI 4.1 */
    if (!gr_shm_seq_read(&g->t.hdr->models_seq, copy_chain, &r))
        c->n = 1;                   /* torn every time: no fallback */
}

/*
 * Has cell c room left today on day dimension d (RPD or TPD), whose
 * count is word: no limit, or under it and not cooled until midnight by
 * a 429?  Relaxed reads: advice, as in a reservation.
 */
static bool
day_open(const struct gr_shm_cell *c, unsigned d, const _Atomic uint64_t *word,
         int32_t today, int64_t now)
{
    int64_t lim = gr_shm_limit_unpack(atomic_load_explicit(
        &c->limit[d], memory_order_relaxed));
    int64_t cap = gr_shm_limit_unpack(atomic_load_explicit(
        &c->cap[d], memory_order_relaxed));

    if (cap >= 0 && (lim < 0 || cap < lim))
        lim = cap;
    if (atomic_load_explicit(&c->cool_until[d], memory_order_relaxed) > now)
        return false;
    return lim < 0 || gr_shm_day_used(word, today) < lim;
}

/*
 * Is model index m's day quota (RPD, or its tokens per day) spent on
 * every project that serves it, or cooled until Pacific midnight by a
 * 429?  Advice only: read relaxed; false whenever some cell may still
 * have room.
 */
static bool
day_spent(const struct gr_shm *t, int m)
{
    int64_t wall_s = gr_shm_now_wall() / GR_NS_PER_S;
    int64_t now = gr_shm_now_mono();
    int32_t today = gr_shm_pacific_day_in(t->hdr, wall_s, NULL, NULL);
    bool any = false;
    uint32_t p;

    if (m < 0)
        return false;
    for (p = 0; p < t->max_projects; p++) {
        const struct gr_shm_cell *c = gr_shm_cell(t, p, (uint32_t)m);

        /* relaxed for all: advice, as in a reservation */
        if (c == NULL ||
            atomic_load_explicit(&t->projects[p].state,
                                 memory_order_relaxed) != GR_PROJ_ACTIVE)
            continue;
        if (atomic_load_explicit(&c->limit[GR_D_RPM],
                                 memory_order_relaxed) == 0)
            continue;               /* the project does not serve it */
        any = true;
        if (day_open(c, GR_D_RPD, &c->day, today, now) &&
            day_open(c, GR_D_TPD, &c->tday, today, now))
            return false;
    }
    return any;
}

/* relaxed adds for every counter: totals for status, no order needed */
static void
count(_Atomic uint64_t *v)
{
    atomic_fetch_add_explicit(v, 1, memory_order_relaxed);
}

static void
count_pair(const struct gr_shm *t, int from, int to)
{
    if (t->extra == NULL || from < 0 || to < 0 ||
        (uint32_t)from >= t->max_models || (uint32_t)to >= t->max_models)
        return;
    count(&t->pairs[(size_t)from * t->max_models + (size_t)to]);
    count(&t->extra->fallbacks);
}

/* generationConfig.temperature == 0 (or generation_config). */
static bool
temperature_zero(const char *body, size_t len)
{
    struct json_object *o, *gc, *temp;
    bool zero = false;

    if ((o = gr_json_parse(body, len, 0, 0, NULL)) == NULL)
        return false;
    gc = gr_json_member2(o, "generationConfig", "generation_config",
                         GR_JSON_OBJECT);
    if ((temp = gr_json_member(gc, "temperature", GR_JSON_DOUBLE)) == NULL)
        temp = gr_json_member(gc, "temperature", GR_JSON_INT);
    if (temp != NULL)
        zero = json_object_get_double(temp) == 0.0;
    json_object_put(o);
    return zero;
}

static const char *const kind_name[] = {
    [GR_FB_GENERATE] = "generateContent",
    [GR_FB_COUNT] = "countTokens",
    [GR_FB_EMBED] = "embedContent",
    [GR_FB_BATCH_EMBED] = "batchEmbedContents",
    [GR_FB_OTHER] = "",
};

/* The cache key of q on model: "model\nmethod\ncanonical body". */
static char *
cache_key(const struct gr_fb_req *q, const char *model, size_t *klen)
{
    size_t clen, ml = strlen(model), kl;
    char *canon = gr_cache_canon(q->body, q->len, &clen), *key;

    if (canon == NULL)
        return NULL;
    kl = strlen(kind_name[q->kind]);
    key = malloc(ml + kl + clen + 3);
    if (key != NULL) {
        memcpy(key, model, ml);
        key[ml] = '\n';
        memcpy(key + ml + 1, kind_name[q->kind], kl);
        key[ml + 1 + kl] = '\n';
        memcpy(key + ml + kl + 2, canon, clen + 1);
        *klen = ml + kl + 2 + clen;
    }
    free(canon);
    return key;
}

/* Is q's answer kept in the cache, under these settings and options? */
static bool
cacheable(const struct gr_fb_req *q, const struct gr_cache_cfg *cc,
          const struct gr_call_opts *o)
{
    if (!(cc->flags & GR_CACHE_ON) || o->cache == GR_CACHE_BYPASS ||
        q->body == NULL || q->len == 0)
        return false;
    switch (q->kind) {
    case GR_FB_COUNT:
    case GR_FB_EMBED:
    case GR_FB_BATCH_EMBED:
        return true;
    case GR_FB_GENERATE:
        return o->cache == GR_CACHE_USE || (cc->flags & GR_CACHE_GENERATE) ||
               temperature_zero(q->body, q->len);
    case GR_FB_OTHER:
        break;
    }
    return false;
}

/* The usage a cached answer states, as the call would have read it:
 * countTokens' totalTokens (a small body: json-c), else usageMetadata
 * through the scanner of client/json_scan.c (no tree of a large
 * embedding is built). */
static void
usage_of(struct gr_response *out, enum gr_fb_kind kind)
{
    struct gr_resp_usage ru;
    struct json_object *o;
    int64_t n;

    if (kind != GR_FB_COUNT) {
        if (gr_resp_usage(out->body, out->len, &ru) == 0) {
            out->usage.prompt = ru.prompt_tokens;
            out->usage.candidates = ru.candidates_tokens;
            out->usage.thoughts = ru.thoughts_tokens;
            out->usage.total = ru.total_tokens;
        }
        return;
    }
    o = gr_json_parse(out->body, out->len, 0, 0, NULL);
    if (gr_json_member_i64(o, "totalTokens", &n))
        out->usage.prompt = out->usage.total = n;
    json_object_put(o);
}

static void
hit(struct gr_response *out, const char *model, char *body, size_t len,
    enum gr_fb_kind kind, int64_t start)
{
    int d;

    memset(out, 0, sizeof(*out));
    out->usage.prompt = out->usage.candidates = -1;
    out->usage.thoughts = out->usage.total = -1;
    for (d = 0; d < GR_NDIMS; d++)
        out->verdict.learned[d] = -1;
    out->status = 200;
    out->body = body;
    out->len = len;
    out->cached = true;
    snprintf(out->model, sizeof(out->model), "%s", model);
    snprintf(out->verdict.reason, sizeof(out->verdict.reason),
             "answered from the shared cache");
    usage_of(out, kind);
    out->elapsed_ns = gr_now_ns() - start;
}

int
gr_fb_path(const char *path, const char *from, const char *to, char *buf,
           size_t n)
{
    char pat[GR_NAME_MAX + 16];
    const char *at;
    size_t fl, tl;
    int w;

    snprintf(pat, sizeof(pat), "models/%s:", from);
    at = strstr(path, pat);
    if (at == NULL)
        return -1;
    fl = strlen(from);
    tl = strlen(to);
    at += strlen("models/");
    w = snprintf(buf, n, "%.*s%s%s", (int)(at - path), path, to, at + fl);
    (void)tl;
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* May q fall back at all? */
static bool
allowed(const struct gr_fb_req *q, const struct chain *c,
        const struct gr_call_opts *o)
{
    if (q->no_fallback || c->n < 2 || o->fallback == GR_FALLBACK_NEVER)
        return false;
    /* A resource lives in one project: never another model for it. */
    if (q->body != NULL &&
        (memmem(q->body, q->len, "\"cachedContent\"", 15) != NULL ||
         memmem(q->body, q->len, "\"cached_content\"", 16) != NULL ||
         memmem(q->body, q->len, "\"fileUri\"", 9) != NULL ||
         memmem(q->body, q->len, "\"file_uri\"", 10) != NULL))
        return false;
    return o->fallback == GR_FALLBACK_ALLOW ||
           (c->flags & GR_FB_DEFAULT_ALLOW) != 0;
}

/* Keep what an earlier model's failure said in the final message. */
static void
note(struct gr_response *out, const char *fmt, const char *a,
     const char *b)
{
    size_t n = strlen(out->error);

    if (n + 8 < sizeof(out->error))
        snprintf(out->error + n, sizeof(out->error) - n, fmt, a, b);
}

bool
gr_fb_plain(struct gr *g, const struct gr_fb_req *q,
            const struct gr_call_opts *opts)
{
    static const struct gr_call_opts zero;
    const struct gr_call_opts *o = opts != NULL ? opts : &zero;
    struct gr_cache_cfg cc;
    struct chain c;

    if (g == NULL || q->model == NULL)
        return false;
    if (q->kind != GR_FB_OTHER && gr_cache_settings(g, &cc) &&
        cacheable(q, &cc, o))
        return false;
    read_chain(g, q->model, &c);
    return c.n < 2;
}

int
gr_fb_call(struct gr *g, const struct gr_fb_req *q,
           const struct gr_call_opts *opts, gr_fb_one one, void *arg,
           struct gr_response *out)
{
    static const struct gr_call_opts zero;
    struct gr_call_opts o = opts != NULL ? *opts : zero;
    struct gr_cache_cfg cc;
    struct chain c;
    char *key = NULL, *body = NULL;
    size_t klen = 0, blen = 0;
    int64_t start = gr_now_ns(), queued = 0;
    bool may, use_cache = false, skipped_spent = false, called = false;
    bool claimed = false;
    int i, rc = GR_EINVAL, from = 0;

    if (g == NULL || q->model == NULL || out == NULL)
        return one(arg, q->model, opts, out);
    if (q->kind != GR_FB_OTHER && gr_cache_settings(g, &cc) &&
        cacheable(q, &cc, &o))
        use_cache = true;
    if (use_cache) {
        int64_t until = o.deadline_ns > 0 ? o.deadline_ns
                                          : start + DEFAULT_WAIT_NS;
        int got = -1;

        key = cache_key(q, q->model, &klen);
        if (key != NULL)
            got = gr_cache_get(g, &cc, key, klen, until, &claimed, &body,
                               &blen);
        if (got == 1) {
            count(&g->t.extra->cache_hits);
            hit(out, q->model, body, blen, q->kind, start);
            free(key);
            return GR_OK;
        }
        count(got == 0 ? &g->t.extra->cache_misses
                       : &g->t.extra->cache_errors);
        if (got < 0)
            use_cache = false;
    }
    read_chain(g, q->model, &c);
    may = allowed(q, &c, &o);
    for (i = 0; i < c.n; i++) {
        bool last = i == c.n - 1 || !may;

        if (!last && day_spent(&g->t, c.idx[i])) {
            skipped_spent = true;
            continue;
        }
        if (i > 0)
            count_pair(&g->t, c.idx[0], c.idx[i]);
        from = i;
        if (called)
            gr_response_free(out);
        rc = one(arg, c.names[i], &o, out);
        called = true;
        out->queued_ns += queued;
        snprintf(out->model, sizeof(out->model), "%s", c.names[i]);
        if (rc == GR_EDEADLINE && out->attempts == 0 && !last &&
            gr_now_ns() < (o.deadline_ns > 0 ? o.deadline_ns : INT64_MAX)) {
            queued = out->queued_ns;
            continue;
        }
        break;
    }
    out->elapsed_ns = gr_now_ns() - start;
    if (rc == GR_EDEADLINE && out->attempts == 0 && from == 0 &&
        c.n > 1 && !may) {
        count(&g->t.extra->fallback_denied);
        note(out, "; falling back to %s%s was not allowed "
             "(gr_call_opts.fallback, x-gemroute-fallback or the model's "
             "fallback_allow)", c.names[1], c.n > 2 ? " and others" : "");
    } else if (rc != GR_OK && from > 0) {
        note(out, " (after falling back from %s%s)", c.names[0],
             skipped_spent ? ", whose day quota is spent" : "");
    }
    if (rc == GR_OK && use_cache && out->body != NULL &&
        out->status / 100 == 2) {
        char *akey = key;
        size_t alen = klen;

        /* Kept under the model that answered; the claim (on the model
         * asked for) is then given up. */
        if (from > 0)
            akey = cache_key(q, c.names[from], &alen);
        if (akey != NULL &&
            gr_cache_put(g, &cc, akey, alen, out->body, out->len) == 0)
            count(&g->t.extra->cache_stores);
        if (akey != key) {
            free(akey);
            if (claimed)
                gr_cache_unclaim(g, &cc, key, klen);
        }
    } else if (claimed) {
        gr_cache_unclaim(g, &cc, key, klen);
    }
    free(key);
    return rc;
}
