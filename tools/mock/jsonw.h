/*
 * jsonw.h - a growable byte buffer and a small JSON writer on top of it,
 * so the mock builds every answer without a JSON library on the hot path.
 */
#ifndef GR_MOCK_JSONW_H
#define GR_MOCK_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct gr_mock_buf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    int failed; /* an allocation failed: content is junk */
};

void gr_mock_buf_add(struct gr_mock_buf *b, const char *s, size_t n);
void gr_mock_buf_adds(struct gr_mock_buf *b, const char *s);
void gr_mock_buf_addf(struct gr_mock_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void gr_mock_buf_reset(struct gr_mock_buf *b);
void gr_mock_buf_free(struct gr_mock_buf *b);

#define GR_MOCK_JW_DEPTH 16

/*
 * A writer appends one JSON value.  Pretty output is indented by two
 * spaces like Google's answers; compact output is one line (SSE events).
 * key is NULL inside arrays and for the outermost value.
 */
struct gr_mock_jw {
    struct gr_mock_buf *b;
    int pretty;
    int depth;
    char close[GR_MOCK_JW_DEPTH]; /* '}' or ']' per open level */
    unsigned char
        items[GR_MOCK_JW_DEPTH]; /* values written at each level (capped) */
};

void gr_mock_jw_init(struct gr_mock_jw *w, struct gr_mock_buf *b, int pretty);
void gr_mock_jw_object(struct gr_mock_jw *w, const char *key);
void gr_mock_jw_array(struct gr_mock_jw *w, const char *key);
void gr_mock_jw_end(struct gr_mock_jw *w);
void gr_mock_jw_str(struct gr_mock_jw *w, const char *key, const char *val);
void gr_mock_jw_strn(struct gr_mock_jw *w, const char *key, const char *val,
                     size_t n);
void gr_mock_jw_int(struct gr_mock_jw *w, const char *key, int64_t val);
/* val with digits significant digits (%.*g) */
void gr_mock_jw_double(struct gr_mock_jw *w, const char *key, double val,
                       int digits);
void gr_mock_jw_bool(struct gr_mock_jw *w, const char *key, int val);
void gr_mock_jw_null(struct gr_mock_jw *w, const char *key);

/* Append s as a JSON string literal, quotes included. */
void gr_mock_json_quote(struct gr_mock_buf *b, const char *s, size_t n);

#endif
