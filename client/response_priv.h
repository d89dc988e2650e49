/*
 * response_priv.h - reading Gemini answers beyond their classification:
 * the usage a successful body reports, the status an error body states,
 * and an incremental parser for streamGenerateContent?alt=sse.
 *
 * Private to libgemroute and the gemroute CLI, not a public API.  No
 * json-c type appears here: json-c is wrapped in the .c files.
 */
#ifndef GR_RESPONSE_PRIV_H
#define GR_RESPONSE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* usageMetadata of an answer; each field -1 when absent. */
struct gr_resp_usage {
    int64_t prompt_tokens;      /* promptTokenCount: what TPM counts */
    int64_t candidates_tokens;  /* candidatesTokenCount */
    int64_t thoughts_tokens;    /* thoughtsTokenCount (not in candidates) */
    int64_t total_tokens;       /* totalTokenCount */
    int64_t tool_prompt_tokens; /* toolUsePromptTokenCount (input TPM
                                   counts too, not in promptTokenCount) */
    int64_t cached_tokens;      /* cachedContentTokenCount (part of
                                   promptTokenCount) */
};

/*
 * The usage a body reports.  body need not be NUL-terminated; nothing
 * past len is read.  A JSON array of chunks (streaming without alt=sse)
 * gives its last usageMetadata, field by field.  Returns 0 when some
 * usage was found, -ENOENT when the body has none, -EINVAL when it is
 * not JSON.  out is filled (with -1s) in every case.
 */
int gr_resp_usage(const char *body, size_t len, struct gr_resp_usage *out);

/*
 * The images an answer holds: inlineData (inline_data) parts whose
 * mimeType (mime_type) starts with "image/", in a JSON answer, an array
 * of chunks or an SSE stream; counted by bytes, without a parse, so an
 * escaped quote inside a string is never taken for a key.  0 for none
 * or no body.
 */
int64_t gr_resp_images(const char *body, size_t len);

/*
 * The HTTP status a body states: error.code of an error body (also
 * wrapped in an array, or in an SSE event), 200 for a JSON or SSE body
 * without an error, -1 when the body does not say (not JSON, empty, too
 * large).  For `gemroute explain` without --status.
 */
int gr_resp_status(const char *body, size_t len);

/* Largest event (data plus the line being read) gr_sse accepts, bytes. */
#define GR_SSE_EVENT_MAX (8u << 20)

/*
 * Called once per event with its data: the "data:" lines joined by "\n",
 * NUL-terminated (data[len] == '\0').  Return 0 to go on; anything else
 * stops the parser, and gr_sse_feed() returns that value from then on.
 */
typedef int (*gr_sse_fn)(void *arg, const char *data, size_t len);

/*
 * Server-sent events, fed in chunks cut anywhere (inside a line, between
 * the CR and LF of a CRLF).  Lines end in LF, CRLF or CR; ':' lines are
 * comments; fields other than data are ignored.  Every event's data that
 * is JSON with usageMetadata updates usage (Gemini repeats it
 * cumulatively, so the last one is the call's).  The caller owns the
 * struct; fields below are read-only for it.
 */
struct gr_sse {
    char *line;                 /* the line being read, without its end */
    size_t line_len, line_cap;
    char *data;                 /* data of the event being assembled */
    size_t data_len, data_cap;
    bool has_data;              /* a data field was seen in this event */
    bool after_cr;              /* last byte was CR: an LF next is its pair */
    bool skip_line;             /* inside a comment line: not kept */
    int err;                    /* 0, or the error every feed now returns */
    char errmsg[96];            /* what err means, one sentence */
    uint64_t events;            /* events dispatched */
    bool finished;              /* an event with a finishReason (or a
                                   promptFeedback.blockReason) came: the
                                   answer's last event was seen */
    bool have_usage;            /* usage holds at least one field */
    struct gr_resp_usage usage; /* last usageMetadata seen */
    int error_code;             /* error.code of an error event; 0 = none */
};

void gr_sse_init(struct gr_sse *p);

/*
 * Feed n bytes.  Calls fn for every event these bytes complete.  Returns
 * 0, -EMSGSIZE (an event over GR_SSE_EVENT_MAX), -ENOMEM, or what fn
 * returned to stop; errors are sticky and described by gr_sse_error().
 */
int gr_sse_feed(struct gr_sse *p, const char *bytes, size_t n, gr_sse_fn fn,
                void *arg);

/*
 * The stream ended.  A last event not closed by its blank line is
 * dispatched only when its last line ended and its data is one whole
 * JSON value (a capture that lost its final blank line).  Otherwise the
 * stream was cut inside it: the event is dropped (fn never sees it, its
 * usage is not taken) and -EPIPE is returned ("SSE: stream cut inside an
 * event").  Else returns as gr_sse_feed() does.  Whether the answer's
 * final event came is p->finished: a stream that ends cleanly without
 * it was cut too, between events (the caller decides; see generate.c).
 */
int gr_sse_finish(struct gr_sse *p, gr_sse_fn fn, void *arg);

/* The sentence for p->err ("" when none). */
const char *gr_sse_error(const struct gr_sse *p);

/* Free the buffers; p may be initialised and used again. */
void gr_sse_free(struct gr_sse *p);

#endif
