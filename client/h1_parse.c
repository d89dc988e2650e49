/*
 * h1_parse.c - an HTTP/1.1 response read as its bytes arrive, for the
 * event loops' own client (client/h1.c; the interface is h1_parse.h).
 *
 * The framing is RFC 9112's, section 6.3: no body after a HEAD request
 * or for 204 and 304; chunked when chunked is the last transfer coding;
 * a body that runs to the connection's end when another coding is last;
 * else Content-Length; else, again, to the connection's end.  Interim
 * 1xx answers are read and dropped whole.
 *
 * Invariant protected: no byte is read outside the caller's buffer nor
 * written outside p->line; a head line is handed over only whole (at
 * most GR_H1P_LINE_MAX bytes with its line end; a head, or the trailer
 * lines, at most GR_H1P_HEAD_MAX); the body is handed over in place,
 * never copied; and the same bytes give the same lines, body and verdict
 * however they are cut into feeds (tests/unit/test_h1_parse.c,
 * tests/fuzz/fuzz_h1_parse.c).
 *
 * Choices where RFC 9112 leaves one:
 * - A Content-Length list of one value ("5, 5", or the header twice
 *   with 5) is taken as that value; different values are refused.
 * - A Content-Length beside any Transfer-Encoding is refused (a request
 *   smuggling shape), even on an answer that has no body.
 * - 101 Switching Protocols is refused (ESTATUS): we never ask to switch.
 * - An HTTP/1.0 answer with a Transfer-Encoding never keeps the
 *   connection (RFC 9112 6.1: its framing is suspect).
 * - Header and trailer lines of interim answers and trailers are checked
 *   like any other (a bad one is an error), then dropped.
 */
#include "h1_parse.h"

#include <string.h>
#include <strings.h>

enum {
    ST_STATUS = 0,      /* the status line of an answer, 1xx or final */
    ST_INTERIM,         /* the header lines of a 1xx answer, dropped */
    ST_HEADER,          /* the header lines of the final answer */
    ST_LENGTH,          /* a Content-Length body, left bytes to go */
    ST_TO_EOF,          /* a body that ends with the connection */
    ST_CHUNK_SIZE,      /* a chunk-size line */
    ST_CHUNK_DATA,      /* a chunk's data, left bytes to go */
    ST_CHUNK_CR,        /* the CRLF after a chunk's data */
    ST_CHUNK_LF,        /* its LF, after its CR */
    ST_TRAILER,         /* trailer lines after the last chunk, dropped */
    ST_DONE,
    /* after an error, p->state is that (negative) enum gr_h1p_err */
};

#define F_TE 1u         /* a Transfer-Encoding header was given */
#define F_CLOSE 2u      /* Connection: close */
#define F_KEEP 4u       /* Connection: keep-alive */

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 9110 tchar: what a header name is made of. */
static bool
is_tchar(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A control byte other than HT among s's len bytes?  (DEL is one; bytes
 * from 0x80 are obs-text, allowed.) */
static bool
has_ctl(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

/* The length of a line without its LF or CRLF (the line ends in LF). */
static size_t
content_len(const char *line, size_t len)
{
    len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    return len;
}

static bool
eq_ci(const char *s, size_t len, const char *lit)
{
    return len == strlen(lit) && strncasecmp(s, lit, len) == 0;
}

/* The next element of the comma list in [*s, end), OWS trimmed; empty
 * elements are skipped (RFC 9110 5.6.1).  false at the list's end. */
static bool
next_elem(const char **s, const char *end, const char **tok, size_t *len)
{
    while (*s < end) {
        const char *b = *s;
        const char *e = memchr(b, ',', (size_t)(end - b));

        *s = e != NULL ? e + 1 : end;
        if (e == NULL)
            e = end;
        while (b < e && is_ows(*b))
            b++;
        while (e > b && is_ows(e[-1]))
            e--;
        if (e > b) {
            *tok = b;
            *len = (size_t)(e - b);
            return true;
        }
    }
    return false;
}

static int
show(const struct gr_h1p_cb *cb, void *arg, const char *line, size_t len)
{
    if (cb == NULL || cb->on_head_line == NULL)
        return 0;
    return cb->on_head_line(arg, line, len) != 0 ? GR_H1P_ESTOP : 0;
}

static int
body(const struct gr_h1p_cb *cb, void *arg, const char *s, size_t len)
{
    if (cb == NULL || cb->on_body == NULL)
        return 0;
    return cb->on_body(arg, s, len) != 0 ? GR_H1P_ESTOP : 0;
}

static void
finish(struct gr_h1p *p)
{
    p->state = ST_DONE;
    p->done = true;
}

/* Content-Length: digits, or a list of the same digits; no overflow. */
static int
read_length(struct gr_h1p *p, const char *v, const char *end)
{
    const char *tok;
    size_t len, i;
    bool any = false;

    while (next_elem(&v, end, &tok, &len)) {
        uint64_t n = 0;

        for (i = 0; i < len; i++) {
            unsigned d = (unsigned)(unsigned char)tok[i] - '0';

            if (d > 9 || n > (UINT64_MAX - d) / 10)
                return GR_H1P_ELENGTH;
            n = n * 10 + d;
        }
        if (p->have_length && n != p->length)
            return GR_H1P_ELENGTH;
        p->have_length = true;
        p->length = n;
        any = true;
    }
    return any ? 0 : GR_H1P_ELENGTH;
}

/* The fields the reader itself reads, from a header line of the final
 * answer: s is the line without its end, name_len its name's length. */
static int
read_field(struct gr_h1p *p, const char *s, size_t name_len, size_t len)
{
    const char *v = s + name_len + 1, *end = s + len, *tok;
    size_t tlen;

    if (eq_ci(s, name_len, "content-length"))
        return read_length(p, v, end);
    if (eq_ci(s, name_len, "transfer-encoding")) {
        /* the last coding of all the header's lines decides */
        p->flags |= F_TE;
        while (next_elem(&v, end, &tok, &tlen))
            p->chunked = eq_ci(tok, tlen, "chunked");
    } else if (eq_ci(s, name_len, "connection")) {
        while (next_elem(&v, end, &tok, &tlen)) {
            if (eq_ci(tok, tlen, "close"))
                p->flags |= F_CLOSE;
            else if (eq_ci(tok, tlen, "keep-alive"))
                p->flags |= F_KEEP;
        }
    }
    return 0;
}

/* "HTTP/1.x NNN reason": a 1xx is dropped, a final answer shown. */
static int
status_line(struct gr_h1p *p, const char *line, size_t len,
            const struct gr_h1p_cb *cb, void *arg)
{
    size_t m = content_len(line, len);
    int code;

    if (m < 12 || memcmp(line, "HTTP/1.", 7) != 0 || !is_digit(line[7]) ||
        line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) ||
        !is_digit(line[11]) || (m > 12 && line[12] != ' ') ||
        has_ctl(line, m))
        return GR_H1P_ESTATUS;
    code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (code < 100 || code > 599 || code == 101)
        return GR_H1P_ESTATUS;
    if (code < 200) {
        p->state = ST_INTERIM;
        return 0;
    }
    p->status = code;
    p->http10 = line[7] == '0';
    p->state = ST_HEADER;
    return show(cb, arg, line, len);
}

/* The empty line: the end of a 1xx answer, of the trailers, or of the
 * final answer's head, whose fields now decide how its body is framed. */
static int
end_of_head(struct gr_h1p *p, const char *line, size_t len,
            const struct gr_h1p_cb *cb, void *arg)
{
    bool te = (p->flags & F_TE) != 0;
    int rc;

    if (p->state == ST_INTERIM) {
        p->state = ST_STATUS;
        p->head_bytes = 0;
        return 0;
    }
    if (p->state == ST_TRAILER) {
        finish(p);
        return 0;
    }
    if (p->have_length && te)
        return GR_H1P_ELENGTH;
    if ((rc = show(cb, arg, line, len)) != 0)
        return rc;
    p->conn_close = (p->flags & F_CLOSE) != 0 ||
                    (p->http10 && (te || (p->flags & F_KEEP) == 0));
    if (p->head_request || p->status == 204 || p->status == 304)
        finish(p);
    else if (p->chunked)
        p->state = ST_CHUNK_SIZE;
    else if (p->have_length && !te) {
        p->left = p->length;
        p->state = ST_LENGTH;
        if (p->left == 0)
            finish(p);
    } else {
        p->conn_close = true;
        p->state = ST_TO_EOF;
    }
    return 0;
}

/* A whole line of the head or of the trailers. */
static int
head_line(struct gr_h1p *p, const char *line, size_t len,
          const struct gr_h1p_cb *cb, void *arg)
{
    size_t m = content_len(line, len), name_len, i;
    const char *colon;
    int rc;

    if (len > GR_H1P_HEAD_MAX - p->head_bytes)
        return GR_H1P_ETOOBIG;
    p->head_bytes += len;
    if (p->state == ST_STATUS)
        return status_line(p, line, len, cb, arg);
    if (has_ctl(line, m))
        return GR_H1P_EHEADER;
    if (m == 0)
        return end_of_head(p, line, len, cb, arg);
    /* name ":" value; a line opening with SP or HT (obs-fold) has no
     * name */
    colon = memchr(line, ':', m);
    if (colon == NULL || colon == line)
        return GR_H1P_EHEADER;
    name_len = (size_t)(colon - line);
    for (i = 0; i < name_len; i++)
        if (!is_tchar(line[i]))
            return GR_H1P_EHEADER;
    if (p->state != ST_HEADER)
        return 0;
    if ((rc = read_field(p, line, name_len, m)) != 0)
        return rc;
    return show(cb, arg, line, len);
}

static int
hex_value(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* chunk-size [ BWS ";" chunk-ext ]: the extensions are ignored. */
static int
chunk_line(struct gr_h1p *p, const char *line, size_t len)
{
    size_t m = content_len(line, len), i;
    uint64_t n = 0;

    if (has_ctl(line, m))
        return GR_H1P_ECHUNK;
    for (i = 0; i < m && hex_value(line[i]) >= 0; i++) {
        if (n >> 56 != 0)       /* 2^60 or more: no chunk is that big */
            return GR_H1P_ECHUNK;
        n = n << 4 | (uint64_t)hex_value(line[i]);
    }
    if (i == 0)
        return GR_H1P_ECHUNK;
    while (i < m && is_ows(line[i]))
        i++;
    if (i < m && line[i] != ';')
        return GR_H1P_ECHUNK;
    if (n == 0) {
        p->state = ST_TRAILER;
        p->head_bytes = 0;
    } else {
        p->left = n;
        p->state = ST_CHUNK_DATA;
    }
    return 0;
}

/*
 * A line out of buf's n bytes: 1 with *line and *len set when it ends
 * there (in buf itself, or in p->line when its start came in an earlier
 * feed), 0 when buf ends first (its bytes wait in p->line), or ETOOBIG.
 * *used: the bytes of buf taken.
 */
static int
take_line(struct gr_h1p *p, const char *buf, size_t n, size_t *used,
          const char **line, size_t *len)
{
    size_t room = GR_H1P_LINE_MAX - p->line_len;
    const char *lf = memchr(buf, '\n', n < room ? n : room);
    size_t k = lf != NULL ? (size_t)(lf - buf) + 1 : n;

    if (lf == NULL && n >= room)
        return GR_H1P_ETOOBIG;
    *used = k;
    if (lf != NULL && p->line_len == 0) {
        *line = buf;
        *len = k;
        return 1;
    }
    memcpy(p->line + p->line_len, buf, k);
    p->line_len += k;
    if (lf == NULL)
        return 0;
    *line = p->line;
    *len = p->line_len;
    p->line_len = 0;
    return 1;
}

void
gr_h1p_init(struct gr_h1p *p, bool head_request)
{
    /* line[] is not read before it is written */
    memset(p, 0, offsetof(struct gr_h1p, line));
    p->state = ST_STATUS;
    p->head_request = head_request;
}

ssize_t
gr_h1p_feed(struct gr_h1p *p, const char *buf, size_t n,
            const struct gr_h1p_cb *cb, void *arg)
{
    size_t at = 0, k = 0, len;
    const char *line;
    int rc = 0;

    if (p->state < 0)
        return p->state;
    while (rc == 0 && at < n && !p->done) {
        const char *s = buf + at;
        size_t avail = n - at;

        switch (p->state) {
        case ST_LENGTH:
        case ST_CHUNK_DATA:
            k = avail < p->left ? avail : (size_t)p->left;
            rc = body(cb, arg, s, k);
            p->left -= k;
            if (rc == 0 && p->left == 0) {
                if (p->state == ST_LENGTH)
                    finish(p);
                else
                    p->state = ST_CHUNK_CR;
            }
            break;
        case ST_TO_EOF:
            k = avail;
            rc = body(cb, arg, s, k);
            break;
        case ST_CHUNK_CR:
        case ST_CHUNK_LF:
            k = 1;
            if (*s == '\n')
                p->state = ST_CHUNK_SIZE;
            else if (*s == '\r' && p->state == ST_CHUNK_CR)
                p->state = ST_CHUNK_LF;
            else
                rc = GR_H1P_ECHUNK;
            break;
        default:
            rc = take_line(p, s, avail, &k, &line, &len);
            if (rc == 1 && p->state == ST_CHUNK_SIZE)
                rc = chunk_line(p, line, len);
            else if (rc == 1)
                rc = head_line(p, line, len, cb, arg);
            break;
        }
        at += k;
    }
    if (rc < 0) {
        p->state = rc;
        return rc;
    }
    return (ssize_t)at;
}

int
gr_h1p_eof(struct gr_h1p *p, const struct gr_h1p_cb *cb, void *arg)
{
    (void)cb;
    (void)arg;
    if (p->state < 0)
        return p->state;
    if (p->state == ST_TO_EOF)
        finish(p);
    if (!p->done)
        p->state = GR_H1P_ECUT;
    return p->done ? GR_H1P_OK : GR_H1P_ECUT;
}

bool
gr_h1p_keep(const struct gr_h1p *p)
{
    return p->done && p->state == ST_DONE && !p->conn_close;
}

const char *
gr_h1p_strerror(int err)
{
    switch (err) {
    case GR_H1P_OK:
        return "no error";
    case GR_H1P_ESTATUS:
        return "the answer does not open with an HTTP/1.x status line";
    case GR_H1P_EHEADER:
        return "a malformed header line in the answer";
    case GR_H1P_ETOOBIG:
        return "a line or the head of the answer is too long";
    case GR_H1P_ELENGTH:
        return "the answer's Content-Length is bad, differs from another "
               "or stands beside a Transfer-Encoding";
    case GR_H1P_ECHUNK:
        return "a bad chunk size or chunk end in the answer";
    case GR_H1P_ESTOP:
        return "the answer's reader was asked to stop";
    case GR_H1P_ECUT:
        return "the connection ended inside the answer";
    }
    return "unknown HTTP/1.1 reader error";
}
