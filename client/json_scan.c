/*
 * json_scan.c - a strict, allocation-free JSON scanner (RFC 8259), so a
 * successful call can read the few members it needs without json-c
 * building a tree of the whole answer (see json_scan.h).
 *
 * Invariant protected: the scanner never reads past len, never recurses
 * deeper than GR_JSON_DEPTH, and accepts only what json-c accepts with
 * the same structure; whatever it is not sure of is reported as doubt,
 * never guessed, so callers fall back to json-c and behave as before.
 */
#include "json_scan.h"

#include <string.h>

/* Byte classes, one table lookup per byte in the loops that see most
 * bytes: indentation, and the inside of strings. */
enum {
    C_WS = 1,           /* JSON whitespace */
    C_PLAIN = 2,        /* a string byte standing for itself */
};

#define PLAIN16 C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, \
                C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, \
                C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN

static const unsigned char cls[256] = {
    ['\t'] = C_WS, ['\n'] = C_WS, ['\r'] = C_WS,
    /* 0x20-0x2f, with ' ' also whitespace and '"' not plain */
    [' '] = C_PLAIN | C_WS, C_PLAIN, 0, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN,
    C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN,
    C_PLAIN, C_PLAIN,
    PLAIN16, PLAIN16,
    /* 0x50-0x5f, with '\\' not plain */
    C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN,
    C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, 0, C_PLAIN, C_PLAIN,
    C_PLAIN,
    PLAIN16, PLAIN16,
    PLAIN16, PLAIN16, PLAIN16, PLAIN16, PLAIN16, PLAIN16, PLAIN16, PLAIN16,
};

static bool
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static inline size_t
skip_ws(const char *s, size_t len, size_t pos)
{
    while (pos < len && (cls[(unsigned char)s[pos]] & C_WS))
        pos++;
    return pos;
}

size_t
gr_json_ws(const char *s, size_t len, size_t pos)
{
    return skip_ws(s, len, pos);
}

/* The 4 hex digits at s[pos]: their value, or -1. */
static long
hex4(const char *s, size_t len, size_t pos)
{
    long v = 0;
    size_t i;

    if (len - pos < 4)
        return -1;
    for (i = pos; i < pos + 4; i++) {
        unsigned char c = (unsigned char)s[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

size_t
gr_json_string(const char *s, size_t len, size_t pos, size_t *dlen,
               bool *esc)
{
    size_t n = 0;

    *esc = false;
    if (pos >= len || s[pos] != '"')
        return GR_JSON_BAD;
    pos++;
    for (;;) {
        unsigned char c;
        long u, lo;

        /* The plain run: most of a string, and all of a base64 image. */
        while (pos < len && (cls[(unsigned char)s[pos]] & C_PLAIN))
            pos++, n++;
        if (pos >= len)
            return GR_JSON_BAD;         /* cut */
        c = (unsigned char)s[pos];
        if (c == '"')
            break;
        if (c < 0x20)
            return GR_JSON_BAD;         /* raw control byte */
        *esc = true;
        if (++pos >= len)
            return GR_JSON_BAD;
        switch (s[pos]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n':
        case 'r': case 't':
            pos++;
            n++;
            continue;
        case 'u':
            break;
        default:
            return GR_JSON_BAD;
        }
        if ((u = hex4(s, len, pos + 1)) < 0)
            return GR_JSON_BAD;
        pos += 5;
        if (u >= 0xd800 && u <= 0xdbff) {
            /* Only a high surrogate followed by a low one is a pair. */
            if (len - pos < 2 || s[pos] != '\\' || s[pos + 1] != 'u' ||
                (lo = hex4(s, len, pos + 2)) < 0xdc00 || lo > 0xdfff)
                return GR_JSON_BAD;
            pos += 6;
            n += 4;
        } else if (u >= 0xdc00 && u <= 0xdfff) {
            return GR_JSON_BAD;
        } else {
            n += u < 0x80 ? 1 : u < 0x800 ? 2 : 3;
        }
    }
    *dlen = n;
    return pos + 1;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static size_t
number(const char *s, size_t len, size_t pos)
{
    if (pos < len && s[pos] == '-')
        pos++;
    if (pos >= len || !is_digit((unsigned char)s[pos]))
        return GR_JSON_BAD;
    if (s[pos] == '0')
        pos++;
    else
        while (pos < len && is_digit((unsigned char)s[pos]))
            pos++;
    if (pos < len && s[pos] == '.') {
        if (++pos >= len || !is_digit((unsigned char)s[pos]))
            return GR_JSON_BAD;
        while (pos < len && is_digit((unsigned char)s[pos]))
            pos++;
    }
    if (pos < len && (s[pos] == 'e' || s[pos] == 'E')) {
        if (++pos < len && (s[pos] == '+' || s[pos] == '-'))
            pos++;
        if (pos >= len || !is_digit((unsigned char)s[pos]))
            return GR_JSON_BAD;
        while (pos < len && is_digit((unsigned char)s[pos]))
            pos++;
    }
    return pos;
}

static size_t
literal(const char *s, size_t len, size_t pos, const char *word, size_t n)
{
    if (len - pos < n || memcmp(s + pos, word, n) != 0)
        return GR_JSON_BAD;
    return pos + n;
}

size_t
gr_json_value(const char *s, size_t len, size_t pos, unsigned depth)
{
    size_t dlen;
    bool esc;
    char close;

    if (pos >= len || depth > GR_JSON_DEPTH)
        return GR_JSON_BAD;
    switch (s[pos]) {
    case '"':
        return gr_json_string(s, len, pos, &dlen, &esc);
    case 't':
        return literal(s, len, pos, "true", 4);
    case 'f':
        return literal(s, len, pos, "false", 5);
    case 'n':
        return literal(s, len, pos, "null", 4);
    case '{':
    case '[':
        break;
    default:
        return number(s, len, pos);
    }
    close = s[pos] == '{' ? '}' : ']';
    pos = skip_ws(s, len, pos + 1);
    if (pos < len && s[pos] == close)
        return pos + 1;
    for (;;) {
        if (close == '}') {
            pos = gr_json_string(s, len, pos, &dlen, &esc);
            if (pos == GR_JSON_BAD)
                return GR_JSON_BAD;
            pos = skip_ws(s, len, pos);
            if (pos >= len || s[pos] != ':')
                return GR_JSON_BAD;
            pos = skip_ws(s, len, pos + 1);
        }
        pos = gr_json_value(s, len, pos, depth + 1);
        if (pos == GR_JSON_BAD)
            return GR_JSON_BAD;
        pos = skip_ws(s, len, pos);
        if (pos >= len)
            return GR_JSON_BAD;
        if (s[pos] == close)
            return pos + 1;
        if (s[pos] != ',')
            return GR_JSON_BAD;
        pos = skip_ws(s, len, pos + 1);
    }
}

/*
 * The members of the object at s[pos] (nesting depth): fill the wants,
 * and the sub-wants of a wanted member whose value is an object, in the
 * same pass.  Returns the offset after the object, or GR_JSON_BAD.
 */
static size_t
find_in(const char *s, size_t len, size_t pos, unsigned depth,
        struct gr_json_want *w, size_t nw)
{
    size_t k, v, dlen;
    bool esc;

    if (pos >= len || s[pos] != '{' || depth > GR_JSON_DEPTH)
        return GR_JSON_BAD;
    pos = skip_ws(s, len, pos + 1);
    if (pos < len && s[pos] == '}')
        return pos + 1;
    for (;;) {
        size_t key = pos + 1, klen;
        struct gr_json_want *hit = NULL;

        pos = gr_json_string(s, len, pos, &dlen, &esc);
        if (pos == GR_JSON_BAD || esc)
            return GR_JSON_BAD;
        klen = pos - 1 - key;
        pos = skip_ws(s, len, pos);
        if (pos >= len || s[pos] != ':')
            return GR_JSON_BAD;
        v = skip_ws(s, len, pos + 1);
        for (k = 0; k < nw && hit == NULL; k++)
            if (w[k].klen == klen && memcmp(w[k].key, s + key, klen) == 0)
                hit = &w[k];
        if (hit != NULL && hit->len != 0)
            return GR_JSON_BAD;         /* the key twice */
        if (hit != NULL && hit->sub != NULL && v < len && s[v] == '{')
            pos = find_in(s, len, v, depth + 1, hit->sub, hit->nsub);
        else
            pos = gr_json_value(s, len, v, depth + 1);
        if (pos == GR_JSON_BAD)
            return GR_JSON_BAD;
        if (hit != NULL) {
            hit->off = v;
            hit->len = pos - v;
        }
        pos = skip_ws(s, len, pos);
        if (pos >= len)
            return GR_JSON_BAD;
        if (s[pos] == '}')
            return pos + 1;
        if (s[pos] != ',')
            return GR_JSON_BAD;
        pos = skip_ws(s, len, pos + 1);
    }
}

static void
clear_wants(struct gr_json_want *w, size_t nw)
{
    size_t k;

    for (k = 0; k < nw; k++) {
        w[k].off = w[k].len = 0;
        if (w[k].sub != NULL)
            clear_wants(w[k].sub, w[k].nsub);
    }
}

int
gr_json_find(const char *s, size_t len, struct gr_json_want *w, size_t nw)
{
    size_t end;

    clear_wants(w, nw);
    end = find_in(s, len, skip_ws(s, len, 0), 0, w, nw);

    return end != GR_JSON_BAD && skip_ws(s, len, end) == len ? 0 : -1;
}

bool
gr_json_digits(const char *s, size_t len, int64_t *out)
{
    int64_t x = 0;
    size_t i;

    if (len == 0 || len > 18 || (s[0] == '0' && len > 1))
        return false;
    for (i = 0; i < len; i++) {
        if (!is_digit((unsigned char)s[i]))
            return false;
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return true;
}
