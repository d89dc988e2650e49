/*
 * dashboard.c - the dashboard at /gemroute/: the page (embedded assets,
 * gateway/assets/ through tools/embed.sh), its JSON endpoints and its
 * operator actions, for holders of an admin token.
 *
 *   GET  /gemroute/                the page (or the login form)
 *   POST /gemroute/login           token=...: sets the session cookie
 *   POST /gemroute/logout          clears it
 *   GET  /gemroute/api/state       the table now (docs/OPERATIONS.md)
 *   GET  /gemroute/api/history     the last hour, as the router sampled it
 *   POST /gemroute/api/action      action=drain|enable|disable|reset
 *                                  &target=P[/M][&dim=rpm|tpm|rpd|ipm|tpd]
 *   GET  /gemroute/app.js, app.css, favicon.svg  the page's assets
 *
 * Who may: a request with `Authorization: Bearer ADMIN_TOKEN`, or with
 * the session cookie the login form (or a page load with a Bearer)
 * sets.  The cookie is signed, not stored: 16 random bytes, an expiry
 * and the admin token's position, with an HMAC-SHA256 keyed by that
 * token, so every gateway process of a port accepts it, and changing
 * the token ends its sessions.  HttpOnly, SameSite=Strict, Path
 * /gemroute/.  No admin token configured: no page at all (404).
 *
 * Invariants protected: a state-changing request (action, logout)
 * carried by the cookie needs the session's CSRF token in
 * x-csrf-token and, when the browser says where it comes from (Origin,
 * Sec-Fetch-Site), the page's own origin; login needs the same origin
 * check.  Keys never appear beyond their last four characters (the
 * snapshot API cuts them).  Actions go to the router's control socket
 * through gr_ctl_send(), labelled with the admin token's position; this
 * file writes nothing of the table.
 */
#include "dashboard.h"
#include "gemroute_stat.h"
#include "sha256.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define COOKIE "gr_session"
#define SESSION_S (12 * 3600)       /* a session lasts this long */
#define ID_LEN 16
#define RAW_LEN (ID_LEN + 8 + 1 + 32)   /* id, expiry, token, mac */
#define B64_LEN 76                  /* RAW_LEN bytes in base64url */
#define FORM_MAX 4096
#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
            "img-src 'self'; connect-src 'self'; form-action 'self'; " \
            "frame-ancestors 'none'; base-uri 'none'"

struct gw_asset {
    const char *name;
    const unsigned char *data;
    size_t len;
};

extern const struct gw_asset gw_assets[];   /* assets.c, generated */

static const char *const dims[GR_NDIMS] = {"rpm", "tpm", "rpd", "ipm", "tpd"};

/* ---- HMAC and the session cookie ----------------------------------------- */

void
gw_dash_hmac(const void *key, size_t klen, const void *msg, size_t mlen,
             unsigned char out[32])
{
    unsigned char k[64], pad[64], inner[32];
    struct gw_sha256 s;
    size_t i;

    memset(k, 0, sizeof(k));
    if (klen > 64) {
        gw_sha256_init(&s);
        gw_sha256_add(&s, key, klen);
        gw_sha256_end(&s, k);
    } else {
        memcpy(k, key, klen);
    }
    for (i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    gw_sha256_init(&s);
    gw_sha256_add(&s, pad, 64);
    gw_sha256_add(&s, msg, mlen);
    gw_sha256_end(&s, inner);
    for (i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    gw_sha256_init(&s);
    gw_sha256_add(&s, pad, 64);
    gw_sha256_add(&s, inner, 32);
    gw_sha256_end(&s, out);
    explicit_bzero(k, sizeof(k));
    explicit_bzero(pad, sizeof(pad));
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* RAW_LEN bytes (a multiple of 3) to B64_LEN characters and a NUL. */
static void
b64_enc(const unsigned char *in, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < RAW_LEN; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                     in[i + 2];

        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = b64[v >> 6 & 63];
        out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

static bool
b64_dec(const char *in, size_t n, unsigned char *out)
{
    size_t i, o = 0;

    if (n != B64_LEN)
        return false;
    for (i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int j;

        for (j = 0; j < 4; j++) {
            const char *p = strchr(b64, in[i + (size_t)j]);

            if (p == NULL || in[i + (size_t)j] == '\0')
                return false;
            v = v << 6 | (uint32_t)(p - b64);
        }
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    return true;
}

/* The session's MAC over id, expiry and token position. */
static void
session_mac(const char *token, const unsigned char *raw, unsigned char *mac)
{
    unsigned char msg[17 + ID_LEN + 9];

    memcpy(msg, "gemroute-session", 17);
    memcpy(msg + 17, raw, ID_LEN + 9);
    gw_dash_hmac(token, strlen(token), msg, sizeof(msg), mac);
}

/* The CSRF token of a session: hex of an HMAC of its id. */
static void
session_csrf(const char *token, const unsigned char *id, char out[33])
{
    unsigned char msg[14 + ID_LEN], mac[32];
    int i;

    memcpy(msg, "gemroute-csrf", 14);
    memcpy(msg + 14, id, ID_LEN);
    gw_dash_hmac(token, strlen(token), msg, sizeof(msg), mac);
    for (i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

/* Constant time in the content. */
static bool
same(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    unsigned diff = 0;
    size_t i;

    for (i = 0; i < n; i++)
        diff |= (unsigned)(x[i] ^ y[i]);
    return diff == 0;
}

/* Who asks: the admin token's position, how, and the session. */
struct who {
    int admin;                      /* -1: nobody */
    bool cookie;                    /* by the session cookie */
    unsigned char id[ID_LEN];
    char csrf[33];
};

/* The position of the admin token presented, or -1; every byte of
 * every token is compared, whatever matches. */
static int
admin_index(const struct gr_cfg_gateway *conf, const char *got)
{
    size_t glen = strnlen(got, GR_CFG_KEY_MAX);
    int found = -1;
    unsigned i;

    for (i = 0; i < conf->n_admin_tokens; i++) {
        size_t tlen = strnlen(conf->admin_tokens[i], GR_CFG_KEY_MAX), j;
        unsigned diff = (unsigned)(tlen ^ glen);

        /* Bytes past a token's end count as 0, whatever the buffer
         * holds there. */
        for (j = 0; j < GR_CFG_KEY_MAX - 1; j++)
            diff |= (unsigned char)(j < tlen ? conf->admin_tokens[i][j] : 0) ^
                    (unsigned char)(j < glen ? got[j] : 0);
        if (diff == 0 && found < 0)
            found = (int)i;
    }
    return found;
}

/* The value of cookie name in a Cookie header, or NULL; *n its length. */
static const char *
cookie_value(const char *h, const char *name, size_t *n)
{
    size_t nl = strlen(name);

    while (h != NULL && *h != '\0') {
        while (*h == ' ' || *h == ';')
            h++;
        if (strncmp(h, name, nl) == 0 && h[nl] == '=') {
            h += nl + 1;
            *n = strcspn(h, ";");
            return h;
        }
        h = strchr(h, ';');
    }
    return NULL;
}

/* Check a session cookie against conf (read lock held). */
static bool
session_ok(const struct gr_cfg_gateway *conf, const char *v, size_t n,
           struct who *w)
{
    unsigned char raw[RAW_LEN], mac[32];
    uint64_t exp = 0;
    unsigned idx;
    int i;
    bool ok;

    if (!b64_dec(v, n, raw))
        return false;
    for (i = 0; i < 8; i++)
        exp = exp << 8 | raw[ID_LEN + i];
    idx = raw[ID_LEN + 8];
    if (idx >= conf->n_admin_tokens || exp < (uint64_t)time(NULL))
        return false;
    session_mac(conf->admin_tokens[idx], raw, mac);
    ok = same(mac, raw + ID_LEN + 9, 32);
    if (ok) {
        w->admin = (int)idx;
        w->cookie = true;
        memcpy(w->id, raw, ID_LEN);
        session_csrf(conf->admin_tokens[idx], w->id, w->csrf);
    }
    explicit_bzero(mac, sizeof(mac));
    return ok;
}

/* A new session for admin token idx: the cookie's value, and w filled. */
static int
session_new(const struct gr_cfg_gateway *conf, int idx, struct who *w,
            char value[B64_LEN + 1])
{
    unsigned char raw[RAW_LEN];
    uint64_t exp = (uint64_t)time(NULL) + SESSION_S;
    int i;

    if (getrandom(raw, ID_LEN, 0) != ID_LEN)
        return -EIO;
    for (i = 0; i < 8; i++)
        raw[ID_LEN + i] = (unsigned char)(exp >> (56 - 8 * i));
    raw[ID_LEN + 8] = (unsigned char)idx;
    session_mac(conf->admin_tokens[idx], raw, raw + ID_LEN + 9);
    b64_enc(raw, value);
    w->admin = idx;
    w->cookie = true;
    memcpy(w->id, raw, ID_LEN);
    session_csrf(conf->admin_tokens[idx], w->id, w->csrf);
    return 0;
}

/* ---- answers ------------------------------------------------------------- */

static void
header(struct gw_dash_resp *out, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
header(struct gw_dash_resp *out, const char *name, const char *fmt, ...)
{
    va_list ap;

    if (out->n_headers == GW_DASH_HEADERS)
        return;
    va_start(ap, fmt);
    vsnprintf(out->hvalue[out->n_headers], sizeof(out->hvalue[0]), fmt, ap);
    va_end(ap);
    out->hname[out->n_headers++] = name;
}

static void
set_cookie(struct gw_dash_resp *out, const char *value, int max_age)
{
    header(out, "Set-Cookie", COOKIE "=%s; Path=/gemroute/; Max-Age=%d; "
           "HttpOnly; SameSite=Strict", value, max_age);
}

static void
answer_copy(struct gw_dash_resp *out, int status, const char *ctype,
            const void *body, size_t len)
{
    out->status = status;
    out->ctype = ctype;
    out->body = malloc(len + 1);
    if (out->body == NULL) {
        out->status = 500;
        out->len = 0;
        return;
    }
    memcpy(out->body, body, len);
    out->body[len] = '\0';
    out->len = len;
}

static void
answer_json_error(struct gw_dash_resp *out, int status, const char *msg)
{
    char b[512];
    int n = snprintf(b, sizeof(b), "{\"error\": \"%s\"}\n", msg);

    answer_copy(out, status, "application/json", b, (size_t)n);
}

static const struct gw_asset *
asset(const char *name)
{
    const struct gw_asset *a;

    for (a = gw_assets; a->name != NULL; a++)
        if (strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

/* An asset with every "@MARK@" replaced by value. */
static void
answer_page(struct gw_dash_resp *out, int status, const char *name,
            const char *mark, const char *value)
{
    const struct gw_asset *a = asset(name);
    const char *src, *p;
    size_t ml = mark ? strlen(mark) : 0, vl = value ? strlen(value) : 0, o = 0;
    char *b;

    if (a == NULL) {
        answer_json_error(out, 500, "asset missing");
        return;
    }
    if ((b = malloc(a->len * 2 + vl * 8 + 1)) == NULL) {
        out->status = 500;
        return;
    }
    src = (const char *)a->data;
    while (ml > 0 && (p = strstr(src, mark)) != NULL) {
        memcpy(b + o, src, (size_t)(p - src));
        o += (size_t)(p - src);
        memcpy(b + o, value, vl);
        o += vl;
        src = p + ml;
    }
    memcpy(b + o, src, strlen(src));
    o += strlen(src);
    b[o] = '\0';
    out->status = status;
    out->ctype = "text/html; charset=utf-8";
    out->body = b;
    out->len = o;
}

/* ---- JSON ---------------------------------------------------------------- */

struct buf {
    char *s;
    size_t len, cap;
    bool nomem;
};

static void put(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    while (!b->nomem) {
        va_start(ap, fmt);
        n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = b->cap * 2 + (size_t)(n > 0 ? n : 0);
            char *s = realloc(b->s, cap);

            if (s == NULL) {
                b->nomem = true;
                return;
            }
            b->s = s;
            b->cap = cap;
        }
    }
}

/* A JSON string; control characters and non-ASCII bytes escaped. */
static void
put_str(struct buf *b, const char *s)
{
    put(b, "\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            put(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f || c == '<' || c == '>' || c == '&')
            put(b, "\\u%04x", c);
        else
            put(b, "%c", c);
    }
    put(b, "\"");
}

static void
put_i64s(struct buf *b, const int64_t *v, unsigned n)
{
    unsigned i;

    put(b, "[");
    for (i = 0; i < n; i++)
        put(b, "%s%lld", i ? "," : "", (long long)v[i]);
    put(b, "]");
}

static void
put_secs(struct buf *b, const double *v, unsigned n)
{
    unsigned i;

    put(b, "[");
    for (i = 0; i < n; i++)
        put(b, "%s%.1f", i ? "," : "", v[i]);
    put(b, "]");
}

static const char *
op_name(enum gr_stat_op op)
{
    return op == GR_STAT_OP_DRAINING ? "draining"
           : op == GR_STAT_OP_DISABLED ? "disabled" : "";
}

static uint64_t
cell_errors(const struct gr_stat_cell *c)
{
    return c->server_5xx + c->auth_err + c->other_err;
}

static void
put_state(struct buf *b, const struct gr_stat_snap *s)
{
    unsigned i, m, d;

    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    put(b, "{\"version\": 1, \"now_ms\": %lld, \"shm\": ",
        (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    put_str(b, s->shm);
    put(b, ", \"router\": {\"pid\": %lld, \"alive\": %s, \"beat_age_s\": "
        "%.2f, \"config_generation\": %llu, \"last_reload_ok\": %s}",
        (long long)s->router_pid, s->router_alive ? "true" : "false",
        s->router_beat_age_s, (unsigned long long)s->config_generation,
        s->last_reload_ok ? "true" : "false");
    put(b, ", \"wall_s\": %lld, \"window_s\": %.1f, \"next_rpd_reset_s\": "
        "%lld, \"dims\": [\"rpm\", \"tpm\", \"rpd\", \"ipm\"]",
        (long long)s->now_wall_s, s->window_s,
        (long long)s->next_rpd_reset_s);
    put(b, ", \"counts\": {\"healthy\": %u, \"cooling\": %u, \"disabled\": "
        "%u, \"draining\": %u, \"torn\": %u}", s->healthy, s->cooling,
        s->disabled, s->draining, s->n_torn);
    put(b, ",\n\"models\": [");
    for (m = 0; m < s->n_models; m++) {
        const struct gr_stat_model *sm = &s->models[m];
        uint64_t adm = 0, rej = 0, q = 0, err = 0;
        int64_t fl = 0;
        bool unl[GR_NDIMS];

        for (i = 0; i < s->n_cells; i++) {
            const struct gr_stat_cell *c = &s->cells[i];

            if (strcmp(c->model, sm->name) != 0)
                continue;
            adm += c->admitted;
            rej += c->rejected;
            q += c->quota_429;
            err += cell_errors(c);
            fl += c->in_flight;
        }
        for (d = 0; d < GR_NDIMS; d++)
            unl[d] = sm->unlimited[d];
        put(b, "%s\n {\"name\": ", m ? "," : "");
        put_str(b, sm->name);
        put(b, ", \"room\": ");
        put_i64s(b, sm->room, GR_NDIMS);
        put(b, ", \"capacity\": ");
        put_i64s(b, sm->capacity, GR_NDIMS);
        put(b, ", \"unlimited\": [%s,%s,%s,%s]", unl[0] ? "true" : "false",
            unl[1] ? "true" : "false", unl[2] ? "true" : "false",
            unl[3] ? "true" : "false");
        put(b, ", \"admitted\": %llu, \"rejected\": %llu, \"quota_429\": "
            "%llu, \"errors\": %llu, \"in_flight\": %lld}",
            (unsigned long long)adm, (unsigned long long)rej,
            (unsigned long long)q, (unsigned long long)err, (long long)fl);
    }
    put(b, "],\n\"projects\": [");
    for (i = 0; i < s->n_projects; i++) {
        const struct gr_stat_project *p = &s->projects[i];

        put(b, "%s\n {\"name\": ", i ? "," : "");
        put_str(b, p->name);
        put(b, ", \"key\": ");
        put_str(b, p->key_tail);
        put(b, ", \"keys\": %u, \"state\": ", p->n_keys);
        put_str(b, p->state ? p->state : "");
        put(b, ", \"op\": \"%s\", \"removing\": %s}", op_name(p->op),
            p->removing ? "true" : "false");
    }
    put(b, "],\n\"cells\": [");
    for (i = 0; i < s->n_cells; i++) {
        const struct gr_stat_cell *c = &s->cells[i];
        unsigned r;

        put(b, "%s\n {\"project\": ", i ? "," : "");
        put_str(b, c->project);
        put(b, ", \"model\": ");
        put_str(b, c->model);
        put(b, ", \"key\": ");
        put_str(b, c->key_tail);
        put(b, ", \"health\": ");
        put_str(b, c->health ? c->health : "");
        put(b, ", \"reasons\": [");
        for (r = 0; r < c->n_reasons && r < GR_STAT_REASONS; r++) {
            put(b, "%s", r ? ", " : "");
            put_str(b, c->reasons[r]);
        }
        put(b, "], \"op\": \"%s\", \"limit\": ", op_name(c->op));
        put_i64s(b, c->limit, GR_NDIMS);
        put(b, ", \"config_limit\": ");
        put_i64s(b, c->config_limit, GR_NDIMS);
        put(b, ", \"learned\": ");
        put_i64s(b, c->learned, GR_NDIMS);
        put(b, ", \"used\": ");
        put_i64s(b, c->used, GR_NDIMS);
        put(b, ", \"cooldown_s\": ");
        put_secs(b, c->cooldown_s, GR_NDIMS);
        put(b, ", \"cell_cool_s\": %.1f, \"circuit_s\": %.1f, \"in_flight\": "
            "%lld, \"admitted\": %llu, \"rejected\": %llu, \"ok\": %llu, "
            "\"quota_429\": %llu, \"errors\": %llu, \"last_status\": %u, "
            "\"last_qid\": ", c->cell_cool_s, c->circuit_s,
            (long long)c->in_flight, (unsigned long long)c->admitted,
            (unsigned long long)c->rejected, (unsigned long long)c->ok,
            (unsigned long long)c->quota_429,
            (unsigned long long)cell_errors(c), c->last_status);
        put_str(b, c->last_qid);
        put(b, "}");
    }
    put(b, "]}\n");
}

static void
put_delta(struct buf *b, const char *name, const struct gr_stat_hist *h,
          unsigned c, size_t field)
{
    unsigned i;
    uint32_t prev = 0;

    put(b, ", \"%s\": [", name);
    for (i = 0; i < h->n_samples; i++) {
        const unsigned char *p = (const unsigned char *)
            &h->points[(size_t)c * h->n_samples + i];
        uint32_t v;

        memcpy(&v, p + field, sizeof(v));
        put(b, "%s%u", i ? "," : "", i ? (uint32_t)(v - prev) : 0u);
        prev = v;
    }
    put(b, "]");
}

static void
put_history(struct buf *b, const struct gr_stat_snap *s,
            const struct gr_stat_hist *h)
{
    unsigned i, c, d;

    put(b, "{\"version\": 1, \"period_s\": %.1f, \"samples\": %u, "
        "\"t_ms\": [", h->period_s, h->n_samples);
    for (i = 0; i < h->n_samples; i++)
        put(b, "%s%lld", i ? "," : "", (long long)h->wall_ms[i]);
    put(b, "], \"waiting\": [");
    for (i = 0; i < h->n_samples; i++)
        put(b, "%s%u", i ? "," : "", h->waiting[i]);
    put(b, "],\n\"cells\": [");
    for (c = 0; c < s->n_cells; c++) {
        put(b, "%s\n {\"project\": ", c ? "," : "");
        put_str(b, s->cells[c].project);
        put(b, ", \"model\": ");
        put_str(b, s->cells[c].model);
        put(b, ", \"limit\": ");
        put_i64s(b, s->cells[c].limit, GR_NDIMS);
        put(b, ", \"used\": [");
        for (d = 0; d < GR_NDIMS; d++) {
            put(b, "%s[", d ? "," : "");
            for (i = 0; i < h->n_samples; i++)
                put(b, "%s%u", i ? "," : "",
                    h->points[(size_t)c * h->n_samples + i].used[d]);
            put(b, "]");
        }
        put(b, "]");
        put_delta(b, "admitted", h, c,
                  offsetof(struct gr_stat_hist_point, admitted));
        put_delta(b, "rejected", h, c,
                  offsetof(struct gr_stat_hist_point, rejected));
        put_delta(b, "quota_429", h, c,
                  offsetof(struct gr_stat_hist_point, quota_429));
        put_delta(b, "errors", h, c,
                  offsetof(struct gr_stat_hist_point, errors));
        put(b, "}");
    }
    put(b, "]}\n");
}

static void
answer_snapshot(struct gw *gw, struct gw_dash_resp *out, bool history)
{
    struct buf b = {malloc(16384), 0, 16384, false};
    struct gr_stat_snap s;
    struct gr_stat_hist h;
    struct gr_stat *st;
    char err[256];

    if (b.s == NULL) {
        answer_json_error(out, 500, "out of memory");
        return;
    }
    st = gr_stat_open(gw->shm, err, sizeof(err));
    if (st == NULL) {
        free(b.s);
        answer_json_error(out, 503, "the table is not there (is gemrouted "
                          "running?)");
        return;
    }
    if (gr_stat_take(st, &s) != GR_OK) {
        gr_stat_close(st);
        free(b.s);
        answer_json_error(out, 500, "out of memory");
        return;
    }
    if (!history) {
        put_state(&b, &s);
    } else if (gr_stat_history(st, &s, &h) == GR_OK) {
        put_history(&b, &s, &h);
        gr_stat_history_free(&h);
    } else {
        b.nomem = true;
    }
    gr_stat_free(&s);
    gr_stat_close(st);
    if (b.nomem) {
        free(b.s);
        answer_json_error(out, 500, "out of memory");
        return;
    }
    out->status = 200;
    out->ctype = "application/json";
    out->body = b.s;
    out->len = b.len;
}

/* ---- forms and actions --------------------------------------------------- */

static int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of field name in an x-www-form-urlencoded body, decoded
 * into out; false when absent, too long or badly escaped. */
static bool
form_get(const char *body, size_t len, const char *name, char *out,
         size_t n)
{
    size_t nl = strlen(name), i = 0;

    while (i < len) {
        size_t end = i, o = 0;

        while (end < len && body[end] != '&')
            end++;
        if (end - i > nl && strncmp(body + i, name, nl) == 0 &&
            body[i + nl] == '=') {
            for (i += nl + 1; i < end; i++) {
                char c = body[i];

                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int hi, lo;

                    if (i + 2 >= end)
                        return false;
                    hi = hexval(body[i + 1]);
                    lo = hexval(body[i + 2]);
                    if (hi < 0 || lo < 0)
                        return false;
                    c = (char)(hi * 16 + lo);
                    i += 2;
                }
                if (o + 1 >= n)
                    return false;
                out[o++] = c;
            }
            out[o] = '\0';
            return true;
        }
        i = end + 1;
    }
    return false;
}

/* The page's own origin: the browser's Origin must be http://Host. */
static bool
origin_ok(const struct gw_dash_req *in)
{
    char want[300];

    if (in->fetch_site != NULL && strcmp(in->fetch_site, "same-origin") != 0 &&
        strcmp(in->fetch_site, "none") != 0)
        return false;
    if (in->origin == NULL)
        return true;        /* not a browser, or a same-origin GET */
    if (in->host == NULL)
        return false;
    snprintf(want, sizeof(want), "http://%s", in->host);
    return strcmp(in->origin, want) == 0;
}

static bool
target_ok(const char *t)
{
    size_t i, n = strlen(t);
    const char *slash = strchr(t, '/');

    if (n == 0 || n >= 2 * GR_NAME_MAX || t[0] == '/' ||
        (slash != NULL && (slash[1] == '\0' || strchr(slash + 1, '/'))))
        return false;
    for (i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return false;
    return true;
}

static void
do_action(struct gw *gw, const struct gw_dash_req *in, const struct who *w,
          struct gw_dash_resp *out)
{
    static const char *const acts[] = {"drain", "enable", "disable",
                                       "reset"};
    char action[16], target[2 * GR_NAME_MAX + 8], dim[8] = "", req[400];
    char by[48];
    struct gr_ctl_answer a;
    struct buf b = {malloc(2048), 0, 2048, false};
    unsigned i, d = GR_NDIMS;

    if (b.s == NULL) {
        answer_json_error(out, 500, "out of memory");
        return;
    }
    if (!form_get(in->body, in->len, "action", action, sizeof(action)) ||
        !form_get(in->body, in->len, "target", target, sizeof(target)) ||
        !target_ok(target)) {
        free(b.s);
        answer_json_error(out, 400, "action=drain|enable|disable|reset and "
                          "target=PROJECT[/MODEL] are needed");
        return;
    }
    for (i = 0; i < 4 && strcmp(action, acts[i]) != 0; i++)
        ;
    if (form_get(in->body, in->len, "dim", dim, sizeof(dim)) &&
        dim[0] != '\0')
        for (d = 0; d < GR_NDIMS && strcmp(dim, dims[d]) != 0; d++)
            ;
    if (i == 4 || (dim[0] != '\0' && (d == GR_NDIMS || i != 3))) {
        free(b.s);
        answer_json_error(out, 400, "action is drain, enable, disable or "
                          "reset; dim (rpm, tpm, rpd, ipm, tpd) with reset "
                          "only");
        return;
    }
    snprintf(req, sizeof(req), "%s %s%s%s", acts[i], target,
             dim[0] ? " " : "", dim);
    snprintf(by, sizeof(by), "dashboard:admin#%d", w->admin);
    gr_ctl_send(gw->shm, req, by, &a);
    gw_log("dashboard: %s by admin token #%d (%s): %s %s", req, w->admin,
           w->cookie ? "session" : "bearer",
           a.status == 0 ? "ok" : "refused:", a.text);
    put(&b, "{\"ok\": %s, \"status\": %d, \"request\": ",
        a.status == 0 ? "true" : "false", a.status);
    put_str(&b, req);
    put(&b, ", \"text\": ");
    put_str(&b, a.text);
    put(&b, ", \"notes\": ");
    put_str(&b, a.notes);
    put(&b, "}\n");
    if (b.nomem) {
        free(b.s);
        answer_json_error(out, 500, "out of memory");
        return;
    }
    out->status = a.status == 0 ? 200 : a.status == 1 ? 409 : 503;
    out->ctype = "application/json";
    out->body = b.s;
    out->len = b.len;
}

/* ---- the dispatch -------------------------------------------------------- */

bool
gw_dash_path(const char *path)
{
    return strcmp(path, "/gemroute") == 0 ||
           strncmp(path, "/gemroute/", 10) == 0;
}

static void
login(struct gw *gw, const struct gw_dash_req *in, struct gw_dash_resp *out)
{
    char token[GR_CFG_KEY_MAX], value[B64_LEN + 1];
    struct who w = {.admin = -1};
    int idx = -1, rc = -1;

    if (!origin_ok(in)) {
        answer_page(out, 403, "login.html", "@ERROR@",
                    "This form must be sent from the gateway's own page.");
        return;
    }
    if (form_get(in->body, in->len, "token", token, sizeof(token))) {
        pthread_rwlock_rdlock(&gw->lock);
        idx = admin_index(&gw->conf, token);
        if (idx >= 0)
            rc = session_new(&gw->conf, idx, &w, value);
        pthread_rwlock_unlock(&gw->lock);
    }
    explicit_bzero(token, sizeof(token));
    if (idx < 0) {
        gw_log("dashboard: login refused (wrong token)");
        answer_page(out, 401, "login.html", "@ERROR@",
                    "That is not an admin token of this gateway.");
        return;
    }
    if (rc != 0) {
        answer_json_error(out, 500, "no random bytes");
        return;
    }
    gw_log("dashboard: login with admin token #%d", idx);
    set_cookie(out, value, SESSION_S);
    header(out, "Location", "/gemroute/");
    answer_copy(out, 303, "text/plain", "", 0);
}

void
gw_dash_handle(struct gw *gw, const struct gw_dash_req *in,
               struct gw_dash_resp *out)
{
    const char *p = in->path + (in->path[9] == '/' ? 10 : 9);
    bool get = strcmp(in->method, "GET") == 0 ||
               strcmp(in->method, "HEAD") == 0;
    bool post = strcmp(in->method, "POST") == 0;
    struct who w = {.admin = -1};
    char value[B64_LEN + 1] = "";
    unsigned n_admin;

    memset(out, 0, sizeof(*out));
    header(out, "Cache-Control", "no-store");
    header(out, "Content-Security-Policy", "%s", CSP);
    header(out, "X-Frame-Options", "DENY");
    header(out, "X-Content-Type-Options", "nosniff");
    header(out, "Referrer-Policy", "same-origin");
    pthread_rwlock_rdlock(&gw->lock);
    n_admin = gw->conf.n_admin_tokens;
    if (n_admin > 0) {
        const char *v;
        size_t n;

        if (in->authorization != NULL &&
            strncasecmp(in->authorization, "Bearer ", 7) == 0)
            w.admin = admin_index(&gw->conf, in->authorization + 7);
        else if ((v = cookie_value(in->cookie, COOKIE, &n)) != NULL)
            session_ok(&gw->conf, v, n, &w);
        /* A page loaded with a Bearer gets a session, so that its
         * script's requests (which carry no Bearer) work. */
        if (w.admin >= 0 && !w.cookie && get && p[0] == '\0' &&
            session_new(&gw->conf, w.admin, &w, value) != 0)
            value[0] = '\0';
    }
    pthread_rwlock_unlock(&gw->lock);
    if (n_admin == 0) {
        answer_json_error(out, 404, "no dashboard: gateway.admin_tokens is "
                          "not set");
        return;
    }
    if (in->path[9] == '\0') {
        header(out, "Location", "/gemroute/");
        answer_copy(out, 308, "text/plain", "", 0);
        return;
    }
    if (get && (strcmp(p, "app.js") == 0 || strcmp(p, "app.css") == 0 ||
                strcmp(p, "favicon.svg") == 0)) {
        const struct gw_asset *a = asset(p);

        if (a != NULL) {
            answer_copy(out, 200, p[0] == 'f' ? "image/svg+xml"
                        : p[4] == 'j' ? "text/javascript" : "text/css",
                        a->data, a->len);
            return;
        }
    }
    if (post && strcmp(p, "login") == 0) {
        login(gw, in, out);
        return;
    }
    if (get && p[0] == '\0') {
        if (w.admin < 0) {
            answer_page(out, 200, "login.html", "@ERROR@", "");
            return;
        }
        if (value[0] != '\0')
            set_cookie(out, value, SESSION_S);
        answer_page(out, 200, "index.html", "@CSRF@", w.csrf);
        return;
    }
    if (w.admin < 0) {
        answer_json_error(out, 401, "an admin token is needed "
                          "(Authorization: Bearer, or log in at /gemroute/)");
        return;
    }
    if (post && w.cookie &&
        (in->csrf == NULL || strlen(in->csrf) != 32 ||
         !same(in->csrf, w.csrf, 32) || !origin_ok(in))) {
        gw_log("dashboard: %s refused: no valid CSRF token or another "
               "origin", in->path);
        answer_json_error(out, 403, "this request needs the page's CSRF "
                          "token (x-csrf-token) and its origin");
        return;
    }
    if (get && strcmp(p, "api/state") == 0) {
        answer_snapshot(gw, out, false);
    } else if (get && strcmp(p, "api/history") == 0) {
        answer_snapshot(gw, out, true);
    } else if (post && strcmp(p, "api/action") == 0) {
        if (in->len > FORM_MAX)
            answer_json_error(out, 413, "the form is too large");
        else
            do_action(gw, in, &w, out);
    } else if (post && strcmp(p, "logout") == 0) {
        set_cookie(out, "", 0);
        header(out, "Location", "/gemroute/");
        answer_copy(out, 303, "text/plain", "", 0);
    } else {
        answer_json_error(out, 404, "no such page of the dashboard");
    }
}
