/*
 * jsonw.c - growable buffer and JSON writer for the mock's answers.
 *
 * Invariant protected: whatever bytes a caller hands in (a model name
 * from a URL, a config name), the output is valid JSON: strings are
 * escaped, commas and nesting are tracked here rather than by hand.  An
 * allocation failure is remembered in the buffer instead of crashing;
 * the caller answers 500 when it sees it.
 */
#include "jsonw.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
reserve(struct gr_mock_buf *b, size_t more)
{
    size_t need, ncap;
    char *n;

    if (b->failed)
        return -1;
    need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    ncap = b->cap != 0 ? b->cap : 512;
    while (ncap < need)
        ncap *= 2;
    n = realloc(b->data, ncap);
    if (n == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = n;
    b->cap = ncap;
    return 0;
}

void
gr_mock_buf_add(struct gr_mock_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
gr_mock_buf_adds(struct gr_mock_buf *b, const char *s)
{
    gr_mock_buf_add(b, s, strlen(s));
}

void
gr_mock_buf_addf(struct gr_mock_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (reserve(b, 64) < 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (reserve(b, (size_t)n) < 0)
            return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void
gr_mock_buf_reset(struct gr_mock_buf *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void
gr_mock_buf_free(struct gr_mock_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void
gr_mock_json_quote(struct gr_mock_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    gr_mock_buf_add(b, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        gr_mock_buf_add(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            gr_mock_buf_add(b, esc, 6);
            continue;
        }
        gr_mock_buf_add(b, esc, 2);
    }
    gr_mock_buf_add(b, s + run, n - run);
    gr_mock_buf_add(b, "\"", 1);
}

void
gr_mock_jw_init(struct gr_mock_jw *w, struct gr_mock_buf *b, int pretty)
{
    memset(w, 0, sizeof *w);
    w->b = b;
    w->pretty = pretty;
}

static void
newline(struct gr_mock_jw *w)
{
    static const char spaces[] = "                                ";
    size_t n = (size_t)w->depth * 2;

    gr_mock_buf_add(w->b, "\n", 1);
    while (n > 0) {
        size_t k = n < sizeof spaces - 1 ? n : sizeof spaces - 1;

        gr_mock_buf_add(w->b, spaces, k);
        n -= k;
    }
}

/* The comma, line break and key that come before any value. */
static void
before_value(struct gr_mock_jw *w, const char *key)
{
    if (w->depth > 0) {
        if (w->items[w->depth - 1] != 0)
            gr_mock_buf_add(w->b, ",", 1);
        w->items[w->depth - 1] = 1;
        if (w->pretty)
            newline(w);
    }
    if (key != NULL) {
        gr_mock_json_quote(w->b, key, strlen(key));
        gr_mock_buf_add(w->b, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
    }
}

static void
open_level(struct gr_mock_jw *w, const char *key, char open, char close)
{
    before_value(w, key);
    gr_mock_buf_add(w->b, &open, 1);
    if (w->depth >= GR_MOCK_JW_DEPTH) {
        w->b->failed = 1; /* a bug of ours, not of the input */
        return;
    }
    w->close[w->depth] = close;
    w->items[w->depth] = 0;
    w->depth++;
}

void
gr_mock_jw_object(struct gr_mock_jw *w, const char *key)
{
    open_level(w, key, '{', '}');
}

void
gr_mock_jw_array(struct gr_mock_jw *w, const char *key)
{
    open_level(w, key, '[', ']');
}

void
gr_mock_jw_end(struct gr_mock_jw *w)
{
    int had_items;

    if (w->depth == 0) {
        w->b->failed = 1;
        return;
    }
    w->depth--;
    had_items = w->items[w->depth] != 0;
    if (w->pretty && had_items)
        newline(w);
    gr_mock_buf_add(w->b, &w->close[w->depth], 1);
}

void
gr_mock_jw_strn(struct gr_mock_jw *w, const char *key, const char *val,
                size_t n)
{
    before_value(w, key);
    gr_mock_json_quote(w->b, val, n);
}

void
gr_mock_jw_str(struct gr_mock_jw *w, const char *key, const char *val)
{
    gr_mock_jw_strn(w, key, val, strlen(val));
}

void
gr_mock_jw_int(struct gr_mock_jw *w, const char *key, int64_t val)
{
    before_value(w, key);
    gr_mock_buf_addf(w->b, "%lld", (long long)val);
}

void
gr_mock_jw_double(struct gr_mock_jw *w, const char *key, double val, int digits)
{
    before_value(w, key);
    /* JSON has no NaN or infinity; none of ours should be either. */
    if (val != val || val > 1e300 || val < -1e300)
        gr_mock_buf_add(w->b, "0", 1);
    else
        gr_mock_buf_addf(w->b, "%.*g", digits, val);
}

void
gr_mock_jw_bool(struct gr_mock_jw *w, const char *key, int val)
{
    before_value(w, key);
    gr_mock_buf_adds(w->b, val ? "true" : "false");
}

void
gr_mock_jw_null(struct gr_mock_jw *w, const char *key)
{
    before_value(w, key);
    gr_mock_buf_add(w->b, "null", 4);
}
