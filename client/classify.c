/*
 * classify.c - what an answer of the Gemini API means for the project and
 * model that gave it: (HTTP status, body) -> struct gr_verdict.
 *
 * Invariant protected: the HTTP status alone decides the class, and the
 * body can only refine it (which quota, for how long, what limit Google
 * states).  So a body that is empty, not JSON, too large, too deep or of
 * the wrong shape is classified exactly as no body at all would be; the
 * classifier never reads past len, never fails and never trusts a field's
 * type.  And a 429 that names a per-day quota anywhere always cools until
 * the next Pacific midnight, whatever RetryInfo says, because that day's
 * quota is spent however soon Google suggests a retry.
 *
 * Decisions the rules left open:
 *  - A per-day quota on input tokens ("...InputTokens...PerDay...") is
 *    tokens per day, GR_DIM_TPD, learned in tokens like TPM.  A per-day
 *    quota on images, or on a unit we cannot name, has no dimension of
 *    its own; it is reported as GR_DIM_RPD, the cell's request day,
 *    because its effect is the same: nothing more on that cell until
 *    midnight.  Its quotaValue is not stored as learned[RPD] (it does not
 *    count requests), except that a limit of 0 still disables.
 *  - A quota name whose window is unknown (a bare metric such as
 *    "generate_content_free_tier_requests") counts as a minute window:
 *    the short cooldown is the cheap mistake.
 *  - A quota name whose unit is unknown cools the whole cell (dims = 0).
 *  - The verdict is a pure function of its arguments, so the backoff it
 *    gives when Google gave no delay is the base step; the retry layer
 *    scales it with consecutive failures and adds the jitter.
 *  - 5xx answers honour a RetryInfo or "Please retry in" when present.
 *  - A 400 without ErrorInfo whose message is Google's "API key not
 *    valid"/"API key expired" sentence is an auth failure too: proxies and
 *    older API versions drop the details.
 *  - 408 is a transient timeout (server class), not the request's fault.
 */
#include "gemroute.h"
#include "client_priv.h"
#include "clock.h"
#include "json_priv.h"

#include <json.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CLS_BODY_MAX (1u << 20)     /* bytes of a body we parse */
#define CLS_DETAILS_MAX 64          /* details[] entries we look at */
#define CLS_VIOL_MAX 16             /* violations we keep */
#define CLS_ARRAY_MAX 4096          /* array-wrapped elements we look at */
#define CLS_BACKOFF_S 1.0           /* s, base step without a delay */
#define CLS_DELAY_MAX_S 86400.0     /* s, longest delay we believe */
#define CLS_METRIC_MAX 160
#define CLS_NAME_NORM_MAX 256

enum qkind {
    QK_NONE = 0,
    QK_REQUESTS,
    QK_TOKENS,
    QK_IMAGES,
};

enum qwin {
    QW_UNKNOWN = 0,
    QW_MINUTE,
    QW_DAY,
};

/* One quota Google says is spent, from whichever field named it. */
struct viol {
    char id[GR_QUOTA_ID_MAX];       /* quotaId or ErrorInfo quota_limit */
    char metric[CLS_METRIC_MAX];    /* quotaMetric or quota_metric */
    int64_t value;                  /* stated limit; -1 = none */
    bool line_seen;                 /* a "limit:" line was matched to it */
};

/* Everything the body told us; json-c objects never leave read_body(). */
struct facts {
    const char *unread;             /* why the body was not read, or NULL */
    bool json;                      /* the body parsed as JSON */
    bool has_error;                 /* an "error" object was found */
    int code;                       /* error.code; 0 = absent */
    char status[40];                /* error.status */
    char message[96];               /* start of error.message, cleaned */
    char info_reason[48];           /* ErrorInfo.reason */
    char consumer[48];              /* ErrorInfo.metadata.consumer, cut */
    char res_type[48];              /* ResourceInfo.resourceType */
    bool quota_failure;             /* a QuotaFailure detail came */
    bool key_msg;                   /* message says the key is bad */
    bool project_msg;               /* ... the project: API off, billing */
    bool suspended_msg;             /* ... a consumer is suspended */
    bool resource_msg;              /* ... names a file, cache, tuned model
                                       or batch */
    bool model_msg;                 /* ... names a model */
    unsigned nviol;
    struct viol viol[CLS_VIOL_MAX];
    double retry_s;                 /* RetryInfo.retryDelay; < 0 = none */
    double msg_retry_s;             /* "Please retry in"; < 0 = none */
    char block_reason[40];          /* promptFeedback.blockReason */
};

/* --- small, bounded string tools -------------------------------------- */

static int
lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Copy at most n bytes of s into dst (size cap), stopping at a NUL and
 * turning control bytes into spaces so the text is safe in one line.  A
 * text too long ends in "..." rather than in half a character. */
static void
copy_clean(char *dst, size_t cap, const char *s, size_t n)
{
    size_t i;

    if (cap == 0)
        return;
    for (i = 0; i < n && i + 1 < cap && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];

        dst[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    if (i < n && s[i] != '\0') {
        /* Cut: drop a UTF-8 sequence the cut split, then mark the cut. */
        while (i > 0 && ((unsigned char)dst[i - 1] & 0xc0) == 0x80)
            i--;
        if (i > 0 && (unsigned char)dst[i - 1] >= 0xc0)
            i--;
        if (i >= 3 && cap > 8)
            memcpy(dst + i - 3, "...", 3);
    }
    dst[i] = '\0';
}

/* Case-insensitive search of needle (NUL-terminated) in h[0..n). */
static const char *
find_ci(const char *h, size_t n, const char *needle)
{
    size_t m = strlen(needle), i, j;

    if (m == 0 || m > n)
        return NULL;
    for (i = 0; i + m <= n; i++) {
        for (j = 0; j < m && lower((unsigned char)h[i + j]) == needle[j]; j++)
            ;
        if (j == m)
            return h + i;
    }
    return NULL;
}

static bool
ends_with(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);

    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static bool
is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/*
 * A non-negative integer written in s[0..n), surrounded by optional
 * spaces.  Overflow, signs and trailing junk are refused: a limit we
 * cannot read exactly is no limit at all.
 */
static bool
parse_u63(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int64_t v = 0;
    bool any = false;

    while (i < n && s[i] == ' ')
        i++;
    for (; i < n && is_digit((unsigned char)s[i]); i++) {
        int d = s[i] - '0';

        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
        any = true;
    }
    while (i < n && s[i] == ' ')
        i++;
    if (!any || i != n)
        return false;
    *out = v;
    return true;
}

/*
 * A duration "26s", "47.434392449s", "850ms", "1m30.5s" (protobuf's
 * Duration is always seconds with an "s"; Go-style sums and other units
 * appear in message text).  Reads at most n bytes.  Returns seconds, or
 * -1 when no number-and-unit pair starts at s.  Written by hand because
 * strtod() follows the locale's decimal point.
 */
static double
parse_duration(const char *s, size_t n)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = {
        /* longest first: "ms" must win over "m" */
        {"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"ms", 1e-3},
        {"s", 1.0}, {"m", 60.0}, {"h", 3600.0},
    };
    size_t i = 0, k;
    double total = 0;
    bool any = false;

    while (i < n && s[i] == ' ')
        i++;
    while (i < n) {
        double v = 0, scale = 0.1;
        bool digits = false;

        for (; i < n && is_digit((unsigned char)s[i]); i++) {
            v = v * 10 + (s[i] - '0');
            digits = true;
        }
        if (i < n && s[i] == '.') {
            size_t j = i + 1;

            for (; j < n && is_digit((unsigned char)s[j]); j++) {
                v += (s[j] - '0') * scale;
                scale /= 10;
                digits = true;
            }
            if (j > i + 1)
                i = j;
        }
        if (!digits)
            break;
        for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
            size_t m = strlen(units[k].unit);

            if (m <= n - i && memcmp(s + i, units[k].unit, m) == 0)
                break;
        }
        if (k == sizeof(units) / sizeof(units[0]))
            break;
        i += strlen(units[k].unit);
        total += v * units[k].scale;
        any = true;
    }
    if (!any)
        return -1;
    /* also turns an absurd count of digits (inf) into the ceiling */
    return total > CLS_DELAY_MAX_S ? CLS_DELAY_MAX_S : total;
}

/* --- quota names -------------------------------------------------------- */

/*
 * What a quotaId ("GenerateContentInputTokensPerModelPerMinute-FreeTier")
 * or metric ("generativelanguage.googleapis.com/generate_content_free_
 * tier_input_token_count") counts, and over which window.  The name is
 * folded to lower-case letters and digits; the unit is the one of
 * requests/tokens/images written last before the first "Per<scope>"
 * (Google names quotas <What><Unit>Per<Window>Per<Scope>...), so that
 * "ImageGenerationRequestsPerMinute" counts requests.
 */
static void
quota_name_kind(const char *s, size_t n, enum qkind *kind, enum qwin *win)
{
    static const char *const scopes[] = {
        "perminute", "perday", "perhour", "persecond", "permodel",
        "perproject", "peruser", "perregion", "perlocation", "perconsumer",
    };
    static const struct {
        const char *word;
        enum qkind kind;
    } words[] = {
        {"request", QK_REQUESTS}, {"token", QK_TOKENS}, {"image", QK_IMAGES},
    };
    char norm[CLS_NAME_NORM_MAX];
    size_t m = 0, i, k, cut;
    long best_at = -1;
    int pass;

    for (i = 0; i < n && m + 1 < sizeof(norm) && s[i] != '\0'; i++) {
        int c = lower((unsigned char)s[i]);

        if ((c >= 'a' && c <= 'z') || is_digit(c))
            norm[m++] = (char)c;
    }
    norm[m] = '\0';

    *win = QW_UNKNOWN;
    if (strstr(norm, "perday") != NULL || strstr(norm, "daily") != NULL)
        *win = QW_DAY;
    else if (strstr(norm, "perminute") != NULL ||
             strstr(norm, "perhour") != NULL ||
             strstr(norm, "persecond") != NULL)
        *win = QW_MINUTE;

    cut = m;
    for (k = 0; k < sizeof(scopes) / sizeof(scopes[0]); k++) {
        const char *p = strstr(norm, scopes[k]);

        if (p != NULL && (size_t)(p - norm) < cut)
            cut = (size_t)(p - norm);
    }

    *kind = QK_NONE;
    /* First look before the cut, then (metrics have no "Per") anywhere. */
    for (pass = 0; pass < 2 && *kind == QK_NONE; pass++) {
        size_t limit = pass == 0 ? cut : m;

        for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
            size_t wl = strlen(words[k].word), at;

            for (at = 0; at + wl <= limit; at++) {
                if (memcmp(norm + at, words[k].word, wl) == 0 &&
                    (long)at > best_at) {
                    best_at = (long)at;
                    *kind = words[k].kind;
                }
            }
        }
    }
}

/*
 * The table dimension a quota maps to, or -1 for "the whole cell".
 * *learnable says whether its stated limit is in that dimension's unit.
 */
static int
quota_dim(enum qkind kind, enum qwin win, bool *learnable)
{
    *learnable = true;
    if (win == QW_DAY) {
        /* Tokens per day have their dimension; images per day (or an
         * unknown unit) block the request day. */
        if (kind == QK_TOKENS)
            return GR_DIM_TPD;
        *learnable = kind == QK_REQUESTS;
        return GR_DIM_RPD;
    }
    switch (kind) {
    case QK_REQUESTS:
        return GR_DIM_RPM;
    case QK_TOKENS:
        return GR_DIM_TPM;
    case QK_IMAGES:
        return GR_DIM_IPM;
    case QK_NONE:
        break;
    }
    *learnable = false;
    return -1;
}

/* --- reading the body (parsed by json.c, walked here) ------------------- */


/* A non-negative integer given as a number or as a decimal string. */
static bool
json_u63(struct json_object *v, int64_t *out)
{
    double d;
    int64_t x;

    if (v == NULL)
        return false;
    switch (json_object_get_type(v)) {
    case json_type_int:
        x = json_object_get_int64(v);   /* json-c clamps to int64 */
        if (x < 0)
            return false;
        *out = x;
        return true;
    case json_type_double:
        d = json_object_get_double(v);
        /* the range test also refuses NaN; the cast is then defined */
        if (!(d >= 0 && d < 9.2e18) || (double)(int64_t)d != d)
            return false;
        *out = (int64_t)d;
        return true;
    case json_type_string:
        return parse_u63(json_object_get_string(v),
                         (size_t)json_object_get_string_len(v), out);
    default:
        return false;
    }
}

/* Seconds in a RetryInfo.retryDelay: "26s", a number, or {seconds,nanos}. */
static double
json_delay(struct json_object *v)
{
    int64_t sec = 0, ns = 0;
    double d;

    switch (json_object_get_type(v)) {
    case json_type_string:
        return parse_duration(json_object_get_string(v),
                              (size_t)json_object_get_string_len(v));
    case json_type_int:
    case json_type_double:
        d = json_object_get_double(v);
        if (!(d >= 0))
            return -1;
        return d > CLS_DELAY_MAX_S ? CLS_DELAY_MAX_S : d;
    case json_type_object:
        if (!json_u63(gr_json_member(v, "seconds", GR_JSON_STRING),
                      &sec) &&
            !json_u63(gr_json_member(v, "seconds", GR_JSON_INT), &sec))
            return -1;
        (void)json_u63(gr_json_member(v, "nanos", GR_JSON_INT), &ns);
        if (sec >= (int64_t)CLS_DELAY_MAX_S)
            return CLS_DELAY_MAX_S;
        return (double)sec + (double)(ns % GR_NS_PER_S) / 1e9;
    default:
        return -1;
    }
}

static struct viol *
add_viol(struct facts *f)
{
    struct viol *v;

    if (f->nviol == CLS_VIOL_MAX)
        return NULL;
    v = &f->viol[f->nviol++];
    memset(v, 0, sizeof(*v));
    v->value = -1;
    return v;
}

static void
read_quota_failure(struct facts *f, struct json_object *d)
{
    struct json_object *vs = gr_json_member(d, "violations",
                                            GR_JSON_ARRAY);
    size_t i, n;

    f->quota_failure = true;
    n = vs != NULL ? json_object_array_length(vs) : 0;
    for (i = 0; i < n && i < CLS_DETAILS_MAX; i++) {
        struct json_object *e = json_object_array_get_idx(vs, i);
        const char *id, *metric;
        size_t idlen = 0, mlen = 0;
        struct json_object *qv;
        struct viol *v;

        if (!json_object_is_type(e, json_type_object))
            continue;
        id = gr_json_member_str(e, "quotaId", &idlen);
        metric = gr_json_member_str(e, "quotaMetric", &mlen);
        if (id == NULL && metric == NULL)
            continue;
        if ((v = add_viol(f)) == NULL)
            return;
        if (id != NULL)
            copy_clean(v->id, sizeof(v->id), id, idlen);
        if (metric != NULL)
            copy_clean(v->metric, sizeof(v->metric), metric, mlen);
        if (json_object_object_get_ex(e, "quotaValue", &qv))
            (void)json_u63(qv, &v->value);
    }
}

static void
read_error_info(struct facts *f, struct json_object *d)
{
    struct json_object *md = gr_json_member(d, "metadata",
                                            GR_JSON_OBJECT);
    const char *reason, *limit, *metric;
    size_t rlen = 0, llen = 0, mlen = 0;
    struct json_object *lv;
    struct viol *v;

    reason = gr_json_member_str(d, "reason", &rlen);
    if (reason != NULL && f->info_reason[0] == '\0')
        copy_clean(f->info_reason, sizeof(f->info_reason), reason, rlen);
    /* "projects/N" or "api_key:...": who Google holds responsible.  Only
     * its kind is used; the key itself is never copied out of here. */
    if ((limit = gr_json_member_str(md, "consumer", &llen)) != NULL &&
        f->consumer[0] == '\0')
        copy_clean(f->consumer, sizeof(f->consumer), limit,
                   llen < 8 ? llen : 8);
    /* RATE_LIMIT_EXCEEDED names its quota in the metadata. */
    limit = gr_json_member_str(md, "quota_limit", &llen);
    metric = gr_json_member_str(md, "quota_metric", &mlen);
    if (limit == NULL && metric == NULL)
        return;
    if ((v = add_viol(f)) == NULL)
        return;
    if (limit != NULL)
        copy_clean(v->id, sizeof(v->id), limit, llen);
    if (metric != NULL)
        copy_clean(v->metric, sizeof(v->metric), metric, mlen);
    if (md != NULL && json_object_object_get_ex(md, "quota_limit_value", &lv))
        (void)json_u63(lv, &v->value);
}

/* google.rpc.ResourceInfo: the kind of thing the error is about. */
static void
read_resource_info(struct facts *f, struct json_object *d)
{
    const char *s;
    size_t n = 0;

    if ((s = gr_json_member_str(d, "resourceType", &n)) != NULL &&
        f->res_type[0] == '\0')
        copy_clean(f->res_type, sizeof(f->res_type), s, n);
}

static void
read_detail(struct facts *f, struct json_object *d)
{
    struct json_object *rd;
    const char *type;
    size_t tlen = 0;

    if (!json_object_is_type(d, json_type_object))
        return;
    type = gr_json_member_str(d, "@type", &tlen);
    if (type != NULL) {
        if (ends_with(type, tlen, "google.rpc.QuotaFailure"))
            read_quota_failure(f, d);
        else if (ends_with(type, tlen, "google.rpc.ErrorInfo"))
            read_error_info(f, d);
        else if (ends_with(type, tlen, "google.rpc.ResourceInfo"))
            read_resource_info(f, d);
        else if (ends_with(type, tlen, "google.rpc.RetryInfo") &&
                 json_object_object_get_ex(d, "retryDelay", &rd) &&
                 f->retry_s < 0)
            f->retry_s = json_delay(rd);
        return;
    }
    /* No @type (a proxy rewrote it): go by the fields that define each. */
    if (gr_json_member(d, "violations", GR_JSON_ARRAY) != NULL)
        read_quota_failure(f, d);
    else if (json_object_object_get_ex(d, "retryDelay", &rd) && f->retry_s < 0)
        f->retry_s = json_delay(rd);
    else if (gr_json_member(d, "reason", GR_JSON_STRING) != NULL)
        read_error_info(f, d);
}

/*
 * The violation a "limit:" line of that metric speaks of: lines come in
 * the order of the violations, so the first one of that metric no line
 * has claimed yet.  *known says whether any violation has that metric.
 */
static struct viol *
viol_by_metric(struct facts *f, const char *metric, bool *known)
{
    unsigned i;

    *known = false;
    for (i = 0; i < f->nviol; i++) {
        if (strcmp(f->viol[i].metric, metric) != 0)
            continue;
        *known = true;
        if (!f->viol[i].line_seen)
            return &f->viol[i];
    }
    return NULL;
}

/*
 * Words by which Google's messages name a thing that lives in one
 * project: "You do not have permission to access the File abc or it may
 * not exist", "CachedContent not found (or permission denied)", and the
 * resource names themselves.
 */
static bool
names_resource(const char *s, size_t n)
{
    static const char *const words[] = {
        "files/", "the file ", " file ", "cachedcontents/", "cachedcontent ",
        "cached content", "tunedmodels/", "tuned model", "batches/",
        "corpora/", "filesearchstores/",
    };
    size_t i;

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (find_ci(s, n, words[i]) != NULL)
            return true;
    return false;
}

/* A message may quote the key ("Consumer 'api_key:AIza...' has been
 * suspended"): keep the words, never the key. */
static void
redact_keys(char *m)
{
    char *p = m;

    while ((p = strstr(p, "api_key:")) != NULL) {
        char *k = p + 8, *e = k;

        while (*e != '\0' && *e != '\'' && *e != '"' && *e != ' ')
            e++;
        if (e > k) {
            memcpy(k, "***", 3 <= e - k ? 3 : (size_t)(e - k));
            if (e - k > 3)
                memmove(k + 3, e, strlen(e) + 1);
        }
        p = k;
    }
}

/*
 * Since late 2025 the message lists "* Quota exceeded for metric: M,
 * limit: N, model: X" lines and ends "Please retry in 12.3s."  A line
 * gives its limit to the violation of that metric it speaks of when that
 * one has no quotaValue, and names a quota of its own when no violation
 * carries that metric (the details were dropped).
 */
static void
read_message(struct facts *f, const char *msg, size_t n)
{
    static const char tag[] = "quota exceeded for metric:";
    const char *p = msg, *end = msg + n, *q;

    copy_clean(f->message, sizeof(f->message), msg, n);
    redact_keys(f->message);
    if ((q = find_ci(msg, n, "retry in ")) != NULL)
        f->msg_retry_s = parse_duration(q + 9, (size_t)(end - q - 9));
    if (find_ci(msg, n, "api key not valid") != NULL ||
        find_ci(msg, n, "api key expired") != NULL ||
        find_ci(msg, n, "api key was reported as leaked") != NULL ||
        find_ci(msg, n, "api_key:") != NULL)
        f->key_msg = true;
    if (find_ci(msg, n, "has not been used in project") != NULL ||
        find_ci(msg, n, "billing") != NULL)
        f->project_msg = true;
    if (find_ci(msg, n, "has been suspended") != NULL)
        f->suspended_msg = true;
    f->resource_msg = names_resource(msg, n);
    if (find_ci(msg, n, "models/") != NULL || find_ci(msg, n, "model") != NULL)
        f->model_msg = true;

    while ((q = find_ci(p, (size_t)(end - p), tag)) != NULL) {
        const char *m = q + sizeof(tag) - 1, *eol, *comma, *lim;
        char metric[CLS_METRIC_MAX];
        int64_t value;
        struct viol *v;
        bool known;
        size_t i;

        eol = memchr(m, '\n', (size_t)(end - m));
        if (eol == NULL)
            eol = end;
        p = eol;
        while (m < eol && *m == ' ')
            m++;
        comma = memchr(m, ',', (size_t)(eol - m));
        if (comma == NULL)
            continue;
        copy_clean(metric, sizeof(metric), m, (size_t)(comma - m));
        if ((lim = find_ci(comma, (size_t)(eol - comma), "limit:")) == NULL)
            continue;
        lim += 6;
        for (i = 0; lim + i < eol && (lim[i] == ' ' || is_digit(lim[i])); i++)
            ;
        if (!parse_u63(lim, i, &value))
            continue;
        if ((v = viol_by_metric(f, metric, &known)) == NULL) {
            if (known)
                continue;   /* a repeat of a quota already counted */
            if ((v = add_viol(f)) == NULL)
                return;
            memcpy(v->metric, metric, sizeof(v->metric));
        }
        v->line_seen = true;
        if (v->value < 0)   /* quotaValue, when given, is authoritative */
            v->value = value;
    }
}

static void
read_error(struct facts *f, struct json_object *err)
{
    struct json_object *details, *code;
    const char *s;
    size_t n = 0, i, count;
    int64_t c;

    f->has_error = true;
    if (json_object_object_get_ex(err, "code", &code) && json_u63(code, &c) &&
        c >= 100 && c <= 599)
        f->code = (int)c;
    if ((s = gr_json_member_str(err, "status", &n)) != NULL)
        copy_clean(f->status, sizeof(f->status), s, n);
    if ((details = gr_json_member(err, "details", GR_JSON_ARRAY)) != NULL) {
        count = json_object_array_length(details);
        for (i = 0; i < count && i < CLS_DETAILS_MAX; i++)
            read_detail(f, json_object_array_get_idx(details, i));
    } else if ((details = gr_json_member(err, "details",
                                         GR_JSON_OBJECT)) != NULL) {
        read_detail(f, details);
    }
    /* After the details: message lines complete their violations. */
    if ((s = gr_json_member_str(err, "message", &n)) != NULL)
        read_message(f, s, n);
}

static void
read_block_reason(struct facts *f, struct json_object *o)
{
    struct json_object *pf = gr_json_member(o, "promptFeedback",
                                            GR_JSON_OBJECT);
    const char *s;
    size_t n = 0;

    if ((s = gr_json_member_str(pf, "blockReason", &n)) != NULL)
        copy_clean(f->block_reason, sizeof(f->block_reason), s, n);
}

static void
read_body(const char *body, size_t len, struct facts *f)
{
    struct json_object *root, *err;
    const char *why;
    size_t i, n;

    memset(f, 0, sizeof(*f));
    f->retry_s = -1;
    f->msg_retry_s = -1;
    if (body == NULL || len == 0) {
        f->unread = "empty body";
        return;
    }
    if (len > CLS_BODY_MAX) {
        f->unread = "body too large to read";
        return;
    }
    if ((root = gr_json_parse(body, len, CLS_BODY_MAX, GR_JSON_BOM,
                              &why)) == NULL) {
        f->unread = strcmp(why, "out of memory") == 0 ? "out of memory"
                                                      : "body is not JSON";
        return;
    }
    f->json = true;

    if (json_object_is_type(root, json_type_object)) {
        if ((err = gr_json_member(root, "error", GR_JSON_OBJECT)) != NULL)
            read_error(f, err);
        read_block_reason(f, root);
    } else if (json_object_is_type(root, json_type_array)) {
        /* streamGenerateContent without alt=sse: [chunk, ..., {error}] */
        n = json_object_array_length(root);
        for (i = 0; i < n && i < CLS_ARRAY_MAX; i++) {
            struct json_object *e = json_object_array_get_idx(root, i);

            if (f->block_reason[0] == '\0')
                read_block_reason(f, e);
            if ((err = gr_json_member(e, "error", GR_JSON_OBJECT)) != NULL) {
                read_error(f, err);
                break;
            }
        }
    }
    json_object_put(root);
}

/* --- the verdict -------------------------------------------------------- */

static void
say(struct gr_verdict *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append to the reason; a sentence too long is cut, never overflowed. */
static void
say(struct gr_verdict *out, const char *fmt, ...)
{
    size_t used = strnlen(out->reason, sizeof(out->reason));
    va_list ap;

    if (used + 1 >= sizeof(out->reason))
        return;
    va_start(ap, fmt);
    (void)vsnprintf(out->reason + used, sizeof(out->reason) - used, fmt, ap);
    va_end(ap);
}

static void
say_status(struct gr_verdict *out, const struct facts *f)
{
    if (f->status[0] != '\0')
        say(out, "%d %s: ", out->status, f->status);
    else
        say(out, "%d: ", out->status);
}

static void
say_message(struct gr_verdict *out, const struct facts *f)
{
    if (f->message[0] != '\0')
        say(out, " (\"%s\")", f->message);
    else if (f->unread != NULL && !f->json)
        say(out, " (%s)", f->unread);
    else if (!f->json)
        say(out, " (body is not JSON)");
}

/* "26.0 s", "0.85 s": a tenth is enough above a second, not below. */
static void
say_seconds(struct gr_verdict *out, double s)
{
    if (s < 1)
        say(out, "%.3g s", s);
    else
        say(out, "%.1f s", s);
}

/* A metric without its service prefix: "generate_content_..._requests". */
static const char *
short_name(const char *name)
{
    const char *slash = strrchr(name, '/');

    return slash != NULL && slash[1] != '\0' ? slash + 1 : name;
}

/* A machine- or human-readable delay from the body, if any. */
static bool
hinted_delay(struct gr_verdict *out, const struct facts *f)
{
    if (f->retry_s >= 0) {
        out->cooldown_s = f->retry_s;
        out->cooldown_src = GR_COOL_RETRYINFO;
        return true;
    }
    if (f->msg_retry_s >= 0) {
        out->cooldown_s = f->msg_retry_s;
        out->cooldown_src = GR_COOL_MESSAGE;
        return true;
    }
    return false;
}

static void
add_quota_id(struct gr_verdict *out, const char *id)
{
    unsigned i;

    if (id[0] == '\0')
        return;
    for (i = 0; i < out->n_quota_ids; i++)
        if (strcmp(out->quota_ids[i], id) == 0)
            return;
    if (out->n_quota_ids < GR_MAX_QUOTA_IDS) {
        /* both are GR_QUOTA_ID_MAX bytes and id is NUL-terminated */
        memcpy(out->quota_ids[out->n_quota_ids++], id, GR_QUOTA_ID_MAX);
    }
}

static const char *
dim_words(int d)
{
    switch (d) {
    case GR_DIM_RPM:
        return "requests per minute";
    case GR_DIM_TPM:
        return "input tokens per minute";
    case GR_DIM_RPD:
        return "requests per day";
    case GR_DIM_IPM:
        return "images per minute";
    case GR_DIM_TPD:
        return "input tokens per day";
    default:
        return "cell-wide";
    }
}


static void
classify_429(struct gr_verdict *out, const struct facts *f, int64_t now_s,
             struct gr_shm_header *h)
{
    bool day = false, req_day = false, whole_cell = false, no_quota = false;
    const char *first_name = NULL;
    unsigned i;
    int d;

    out->cls = GR_CLASS_QUOTA;
    out->retryable = true;

    for (i = 0; i < f->nviol; i++) {
        const struct viol *v = &f->viol[i];
        enum qkind kind, k2;
        enum qwin win, w2;
        bool learnable;

        /* The quotaId is the better name; the metric fills what it lacks. */
        quota_name_kind(v->id, strlen(v->id), &kind, &win);
        quota_name_kind(v->metric, strlen(v->metric), &k2, &w2);
        if (kind == QK_NONE)
            kind = k2;
        if (win == QW_DAY || w2 == QW_DAY)
            win = QW_DAY;   /* "PerDay" anywhere: the day is spent */
        else if (win == QW_UNKNOWN)
            win = w2;
        d = quota_dim(kind, win, &learnable);
        if (win == QW_DAY) {
            day = true;
            req_day |= kind == QK_REQUESTS;
        }
        if (d >= 0)
            out->dims |= GR_DIM_BIT(d);
        else
            whole_cell = true;
        if (v->value == 0)
            no_quota = true;
        else if (v->value > 0 && d >= 0 && learnable &&
                 (out->learned[d] < 0 || v->value < out->learned[d]))
            out->learned[d] = v->value;
        add_quota_id(out, v->id);
        if (first_name == NULL)
            first_name = v->id[0] != '\0' ? v->id : v->metric;
    }
    /* A quota of unknown unit is spent somewhere: cool the whole cell. */
    if (whole_cell)
        out->dims = 0;

    say_status(out, f);
    if (f->nviol == 0) {
        say(out, "quota exhausted, no quota named; cool the whole cell");
    } else {
        const char *sep = "";

        for (d = 0; d < GR_NDIMS; d++) {
            if (out->dims & GR_DIM_BIT(d)) {
                say(out, "%s%s", sep,
                    d == GR_DIM_RPD && !req_day ? "images or other per day"
                                                : dim_words(d));
                sep = " and ";
            }
        }
        if (out->dims == 0)
            say(out, "cell-wide");
        say(out, " quota spent (%s%s)", short_name(first_name),
            f->nviol > 1 ? ", ..." : "");
    }

    if (day) {
        int64_t next;

        /* The midnight the router published from the tz database, when
         * there is a table and it holds now_s; else the 2007 rule.
         * clock.h is exact for real dates; bound a nonsense now_s. */
        (void)gr_shm_pacific_day_in(h, now_s, &next, NULL);
        out->cooldown_s = (next > now_s && next - now_s <= 25 * 3600)
                              ? (double)(next - now_s) : 86400.0;
        out->cooldown_src = GR_COOL_MIDNIGHT;
        say(out, "; day spent, cool until Pacific midnight in %.0f s",
            out->cooldown_s);
    } else if (hinted_delay(out, f)) {
        say(out, "; retry in ");
        say_seconds(out, out->cooldown_s);
        say(out, " (%s)",
            out->cooldown_src == GR_COOL_RETRYINFO ? "RetryInfo" : "message");
    } else {
        out->cooldown_s = CLS_BACKOFF_S;
        out->cooldown_src = GR_COOL_BACKOFF;
        say(out, "; no retry hint, back off from ");
        say_seconds(out, out->cooldown_s);
    }
    if (no_quota) {
        out->disable = GR_DISABLE_CELL;
        say(out, "; limit 0: model unavailable to this project, cell "
                 "disabled");
    }
}

/* 5xx and no answer: the cell's circuit counts it; retry elsewhere. */
static void
classify_server(struct gr_verdict *out, const struct facts *f,
                enum gr_class cls)
{
    out->cls = cls;
    out->retryable = true;
    if (out->status == 0) {
        say(out, "no answer (timeout or connection error)");
    } else {
        say_status(out, f);
        say(out, "%s", cls == GR_CLASS_OVERLOAD ? "model overloaded"
                                                : "server error");
        say_message(out, f);
    }
    if (hinted_delay(out, f)) {
        say(out, "; retry in ");
        say_seconds(out, out->cooldown_s);
    } else {
        say(out, "; retry on another project");
    }
}

/* The error is about a file, cache, tuned model or batch (a ResourceInfo
 * of any type but a plain model, or the message's words). */
static bool
names_thing(const struct facts *f)
{
    size_t n = strlen(f->res_type);

    if (n != 0 && (find_ci(f->res_type, n, "model") == NULL ||
                   find_ci(f->res_type, n, "tuned") != NULL))
        return true;
    return f->resource_msg;
}

/*
 * Who a refused key, 401 or 403 is about (DESIGN.md, "Health and
 * cooldowns"): the key, the whole project, one model of it, or the
 * request alone.  The ErrorInfo reason decides when there is one (the
 * googleapis.com reasons of google.api.ErrorReason); else Google's
 * sentence; else the key, which a probe gives back if it is good.
 */
enum blame {
    BL_KEY = 0,
    BL_PROJECT,
    BL_CELL,
    BL_REQUEST,
};

static enum blame
blame_of(const struct facts *f)
{
    /* The project as a whole: every key of it would hear the same. */
    static const char *const project_reasons[] = {
        "SERVICE_DISABLED", "BILLING_DISABLED", "CONSUMER_INVALID",
        "GCP_SUSPENDED", "USER_PROJECT_DENIED", "SERVICE_NOT_VISIBLE",
        "ACCOUNT_STATE_INVALID",
    };
    const char *r = f->info_reason;
    size_t i;

    if (strncmp(r, "API_KEY_", 8) == 0 ||
        strcmp(r, "CREDENTIALS_MISSING") == 0 ||
        strcmp(r, "ACCESS_TOKEN_EXPIRED") == 0)
        return BL_KEY;
    for (i = 0; i < sizeof(project_reasons) / sizeof(project_reasons[0]); i++)
        if (strcmp(r, project_reasons[i]) == 0)
            return BL_PROJECT;
    /* Google suspends a consumer, named "api_key:..." or "projects/N". */
    if (strcmp(r, "CONSUMER_SUSPENDED") == 0)
        return strcmp(f->consumer, "projects") == 0 && !f->key_msg
                   ? BL_PROJECT : BL_KEY;
    if (r[0] != '\0')
        return BL_KEY;
    /* No reason: the sentence, most specific first. */
    if (f->key_msg)
        return BL_KEY;
    if (f->project_msg)
        return BL_PROJECT;
    if (f->suspended_msg)
        return BL_KEY;
    if (names_thing(f))
        return BL_REQUEST;
    if (f->model_msg)
        return BL_CELL;
    return BL_KEY;
}

static void
classify_auth(struct gr_verdict *out, const struct facts *f, enum blame b)
{
    out->cls = GR_CLASS_AUTH;
    out->disable = b == BL_PROJECT ? GR_DISABLE_PROJECT : GR_DISABLE_KEY;
    out->retryable = true;
    say_status(out, f);
    if (f->info_reason[0] != '\0')
        say(out, "%s refused (%s)", b == BL_PROJECT ? "project" : "key",
            f->info_reason);
    else
        say(out, "%s refused", b == BL_PROJECT ? "project" : "key");
    say_message(out, f);
    say(out, "; %s disabled until a probe passes, retry elsewhere",
        b == BL_PROJECT ? "project" : "key");
}

/* 403/404 about a file, cache, tuned model or batch: it lives in one
 * project, so another would say the same or worse.  The request's. */
static void
classify_resource(struct gr_verdict *out, const struct facts *f)
{
    out->cls = GR_CLASS_REQUEST;
    say_status(out, f);
    say(out, "a resource the request names is not this key's");
    say_message(out, f);
    say(out, "; the request is at fault: no penalty, no retry");
}

static void
classify_model(struct gr_verdict *out, const struct facts *f)
{
    out->cls = GR_CLASS_MODEL;
    out->disable = GR_DISABLE_CELL;
    out->retryable = true;
    say_status(out, f);
    say(out, "%s", out->status == 404 ? "model not found for this project"
                                      : "model not allowed for this project");
    say_message(out, f);
    say(out, "; cell disabled, retry on another project");
}

static void
classify_request(struct gr_verdict *out, const struct facts *f)
{
    out->cls = GR_CLASS_REQUEST;
    say_status(out, f);
    say(out, "the request is at fault");
    say_message(out, f);
    say(out, "; no penalty, no retry");
}

static bool
key_is_bad(const struct facts *f)
{
    /* API_KEY_INVALID, also for an expired key ("API key expired") */
    return strncmp(f->info_reason, "API_KEY_", 8) == 0 ||
           (f->info_reason[0] == '\0' && f->key_msg);
}

/* 401/403: who is to blame decides the class. */
static void
classify_denied(struct gr_verdict *out, const struct facts *f)
{
    enum blame b = blame_of(f);

    if (b == BL_REQUEST)
        classify_resource(out, f);
    else if (b == BL_CELL)
        classify_model(out, f);
    else
        classify_auth(out, f, b);
}

void
gr_classify(int status, const char *body, size_t len, int64_t now_wall_s,
            struct gr_verdict *out)
{
    gr_classify_in(NULL, status, body, len, now_wall_s, out);
}

void
gr_classify_in(struct gr_shm_header *h, int status, const char *body,
               size_t len, int64_t now_wall_s, struct gr_verdict *out)
{
    struct facts f;
    int d;

    memset(out, 0, sizeof(*out));
    out->status = status;
    out->cls = GR_CLASS_UNKNOWN;
    for (d = 0; d < GR_NDIMS; d++)
        out->learned[d] = -1;
    /* A 2xx says all there is to say by its status; its body is parsed
     * only for a blocked prompt's reason (a success is the hot path, and
     * the caller parses its usage anyway). */
    if (status >= 200 && status <= 299 &&
        (body == NULL || memmem(body, len, "\"blockReason\"", 13) == NULL))
        memset(&f, 0, sizeof(f));
    else
        read_body(body, len, &f);

    if (status >= 200 && status <= 299) {
        /* "NNN: ok" by hand: vsnprintf cost a success 2,000 instructions */
        memcpy(out->reason, "200: ok", sizeof("200: ok"));
        out->reason[1] = (char)('0' + status / 10 % 10);
        out->reason[2] = (char)('0' + status % 10);
        out->cls = GR_CLASS_OK;
        if (f.block_reason[0] != '\0')
            say(out, "; prompt blocked (%s), no quota penalty",
                f.block_reason);
    } else if (status == 429) {
        classify_429(out, &f, now_wall_s, h);
    } else if (status == 0 || status == 408) {
        classify_server(out, &f, GR_CLASS_SERVER);
    } else if (status == 503) {
        classify_server(out, &f, GR_CLASS_OVERLOAD);
    } else if (status >= 500 && status <= 599) {
        classify_server(out, &f, GR_CLASS_SERVER);
    } else if (status == 400 && key_is_bad(&f)) {
        classify_auth(out, &f, BL_KEY);
    } else if (status == 401 || status == 403) {
        classify_denied(out, &f);
    } else if (status == 404) {
        /* A file or cache named wrongly is the request's; a model the
         * project lacks is that cell's. */
        if (names_thing(&f))
            classify_resource(out, &f);
        else
            classify_model(out, &f);
    } else if (status >= 400 && status <= 499) {
        classify_request(out, &f);
    } else {
        say(out, "%d: unexpected status; no penalty, no retry", status);
    }
}

const char *
gr_class_name(enum gr_class c)
{
    static const char *const names[] = {
        [GR_CLASS_OK] = "ok",
        [GR_CLASS_QUOTA] = "quota",
        [GR_CLASS_OVERLOAD] = "overload",
        [GR_CLASS_SERVER] = "server",
        [GR_CLASS_AUTH] = "auth",
        [GR_CLASS_REQUEST] = "request",
        [GR_CLASS_MODEL] = "model",
        [GR_CLASS_UNKNOWN] = "unknown",
    };

    /* an enum may hold any int: check before indexing */
    if ((unsigned)c >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[c];
}

const char *
gr_dim_name(enum gr_dim d)
{
    static const char *const names[] = {
        [GR_DIM_RPM] = "rpm",
        [GR_DIM_TPM] = "tpm",
        [GR_DIM_RPD] = "rpd",
        [GR_DIM_IPM] = "ipm",
        [GR_DIM_TPD] = "tpd",
    };

    if ((unsigned)d >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[d];
}
