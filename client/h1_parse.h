/*
 * h1_parse.h - an HTTP/1.1 response read as its bytes arrive
 * (client/h1_parse.c), for the event loops' own client (client/h1.c).
 * Private to client/.
 *
 * The reader keeps no copy of the body: what it decodes (a Content-
 * Length body, the data of chunks, or everything up to the end of the
 * connection) is handed to on_body in the caller's own buffer.  Only a
 * head line that arrives in pieces is gathered, up to GR_H1P_LINE_MAX
 * bytes.  Every byte of the answer is untrusted: a malformed or
 * oversized head, a bad chunk size, two different Content-Lengths, a
 * Content-Length beside chunked, are errors, never a crash.
 */
#ifndef GR_H1_PARSE_H
#define GR_H1_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GR_H1P_LINE_MAX 8192        /* longest head line (status, header) */
#define GR_H1P_HEAD_MAX (64 * 1024) /* the whole head, lines together */

/* What is wrong with an answer (gr_h1p_feed(), gr_h1p_eof()). */
enum gr_h1p_err {
    GR_H1P_OK = 0,
    GR_H1P_ESTATUS = -1,        /* not "HTTP/1.x NNN ..." */
    GR_H1P_EHEADER = -2,        /* a header line without a colon, a
                                   control byte, an obs-fold */
    GR_H1P_ETOOBIG = -3,        /* a line or the head too long */
    GR_H1P_ELENGTH = -4,        /* Content-Length bad, or twice and
                                   different, or beside chunked */
    GR_H1P_ECHUNK = -5,         /* a chunk size or its CRLF bad */
    GR_H1P_ESTOP = -6,          /* a callback asked to stop */
    GR_H1P_ECUT = -7,           /* the connection ended inside the answer */
};

/* Called with the parser's caller's arg.  Non-zero stops the reading
 * (gr_h1p_feed() then returns GR_H1P_ESTOP). */
struct gr_h1p_cb {
    /* Each line of the head as it was sent, its CRLF (or LF) included:
     * the status line, every header line, and last the empty line that
     * ends the head.  The head of an interim 1xx answer is skipped, never
     * shown.  May be NULL. */
    int (*on_head_line)(void *arg, const char *line, size_t len);
    /* Bytes of the body, decoded from chunks; never called with 0. */
    int (*on_body)(void *arg, const char *p, size_t len);
};

struct gr_h1p {
    int state;                  /* private */
    unsigned flags;             /* private: Transfer-Encoding, Connection
                                   tokens seen in the head */
    int status;                 /* the final answer's code; 0 before */
    bool head_request;          /* the request was HEAD: no body */
    bool chunked;               /* Transfer-Encoding: chunked */
    bool have_length;           /* a Content-Length was given */
    bool conn_close;            /* Connection: close, HTTP/1.0
                                   without keep-alive, or a body that
                                   ends with the connection */
    bool http10;
    bool done;                  /* the answer is complete */
    uint64_t length;            /* Content-Length */
    uint64_t left;              /* of the body or of the chunk */
    size_t head_bytes;          /* of this head so far */
    size_t line_len;            /* bytes in line[] */
    char line[GR_H1P_LINE_MAX];
};

/* Ready for one answer; head_request: the request was HEAD. */
void gr_h1p_init(struct gr_h1p *p, bool head_request);

/*
 * Read n bytes of the answer.  Returns how many were used (fewer than n
 * only once the answer is complete: p->done, the rest belongs to no
 * answer of ours), or a negative enum gr_h1p_err; after an error the
 * parser is unusable until gr_h1p_init().
 */
ssize_t gr_h1p_feed(struct gr_h1p *p, const char *buf, size_t n,
                    const struct gr_h1p_cb *cb, void *arg);

/*
 * The server closed the connection.  GR_H1P_OK when that completes the
 * answer (a body that runs to the connection's end; p->done is then
 * set), else GR_H1P_ECUT (nothing yet, a head or body cut short).
 */
int gr_h1p_eof(struct gr_h1p *p, const struct gr_h1p_cb *cb, void *arg);

/* After p->done: may the connection carry another request? */
bool gr_h1p_keep(const struct gr_h1p *p);

/* A sentence for an enum gr_h1p_err. */
const char *gr_h1p_strerror(int err);

#endif
