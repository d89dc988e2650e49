/*
 * explain.c - `gemroute explain [--status N] FILE|-`: what libgemroute
 * makes of one answer of the Gemini API, printed as one JSON object.
 *
 * Invariant protected: the verdict printed is gr_classify()'s for that
 * status and body, unchanged - the command is a window on the library,
 * never a second opinion - and the output is valid JSON whatever bytes
 * the body held.
 */
#include "cli.h"
#include "gemroute.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPLAIN_READ_MAX (64u << 20)    /* bytes of input we accept */

static const char usage[] =
    "usage: gemroute explain [--status N] [--now UNIX_S] FILE|-\n"
    "  Classify one answer of the Gemini API (FILE, or - for stdin) as\n"
    "  libgemroute does and print the verdict as JSON.  The status is the\n"
    "  body's error.code (200 for a body without error) unless --status\n"
    "  gives it; 0 means no answer came.  --now sets the unix time per-day\n"
    "  cooldowns count from.\n";

/* The whole of f, NUL-terminated for safety but used with its length. */
static int
read_all(FILE *f, char **out, size_t *outlen)
{
    size_t len = 0, cap = 0, n;
    char *buf = NULL, *nb;

    for (;;) {
        if (cap - len < 4096) {
            cap = cap == 0 ? 65536 : cap * 2;
            if (cap > EXPLAIN_READ_MAX + 1)
                cap = EXPLAIN_READ_MAX + 1;
            if (cap - len < 2) {
                free(buf);
                return -EFBIG;
            }
            if ((nb = realloc(buf, cap)) == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return -EIO;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t need, i;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        need = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        need = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        need = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (need > n)
        return 0;
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* no overlong forms, no surrogates, nothing past U+10FFFF */
    if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return need;
}

/* s as a JSON string; bytes that are not UTF-8 become U+FFFD. */
static void
put_json_str(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), i = 0, k;

    fputc('"', out);
    while (i < n) {
        unsigned char c = s[i];

        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else if ((k = utf8_len(s + i, n - i)) == 0) {
            fputs("\\ufffd", out);
            i++;
        } else {
            fwrite(s + i, 1, k, out);
            i += k;
        }
    }
    fputc('"', out);
}

/* Seconds with up to three decimals and at least one: 26.0, 0.85. */
static void
put_seconds(FILE *out, double s)
{
    char buf[64];
    size_t n;

    snprintf(buf, sizeof(buf), "%.3f", s);
    n = strlen(buf);
    while (n > 0 && buf[n - 1] == '0' && n >= 2 && buf[n - 2] != '.')
        buf[--n] = '\0';
    fputs(buf, out);
}

static const char *
disable_name(enum gr_disable d)
{
    switch (d) {
    case GR_DISABLE_NONE:
        return "none";
    case GR_DISABLE_CELL:
        return "cell";
    case GR_DISABLE_PROJECT:
        return "project";
    case GR_DISABLE_KEY:
        return "key";
    }
    return "none";
}

static const char *
cool_src_name(enum gr_cool_src c)
{
    switch (c) {
    case GR_COOL_NONE:
        return "none";
    case GR_COOL_RETRYINFO:
        return "retryinfo";
    case GR_COOL_MESSAGE:
        return "message";
    case GR_COOL_BACKOFF:
        return "backoff";
    case GR_COOL_MIDNIGHT:
        return "midnight";
    }
    return "none";
}

static void
print_verdict(FILE *out, const struct gr_verdict *v)
{
    const char *sep = "";
    unsigned i;
    int d;

    fprintf(out, "{\"status\": %d, \"class\": ", v->status);
    put_json_str(out, gr_class_name(v->cls));
    fputs(", \"dims\": [", out);
    for (d = 0; d < GR_NDIMS; d++) {
        if (v->dims & GR_DIM_BIT(d)) {
            fprintf(out, "%s\"%s\"", sep, gr_dim_name((enum gr_dim)d));
            sep = ", ";
        }
    }
    fputs("], \"cooldown_s\": ", out);
    put_seconds(out, v->cooldown_s);
    fprintf(out, ", \"cooldown_from\": \"%s\", \"disable\": \"%s\", "
                 "\"retryable\": %s, \"learned\": {",
            cool_src_name(v->cooldown_src), disable_name(v->disable),
            v->retryable ? "true" : "false");
    sep = "";
    for (d = 0; d < GR_NDIMS; d++) {
        if (v->learned[d] >= 0) {
            fprintf(out, "%s\"%s\": %lld", sep, gr_dim_name((enum gr_dim)d),
                    (long long)v->learned[d]);
            sep = ", ";
        }
    }
    fputs("}, \"quota_ids\": [", out);
    for (i = 0; i < v->n_quota_ids && i < GR_MAX_QUOTA_IDS; i++) {
        if (i > 0)
            fputs(", ", out);
        put_json_str(out, v->quota_ids[i]);
    }
    fputs("], \"reason\": ", out);
    put_json_str(out, v->reason);
    fputs("}\n", out);
}

/* A whole decimal integer in [lo, hi], or false. */
static bool
parse_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int
gr_cli_explain(int argc, char **argv)
{
    static const struct option opts[] = {
        {"status", required_argument, NULL, 's'},
        {"now", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long long status = -1, now = (long long)time(NULL), v;
    const char *path;
    struct gr_verdict verdict;
    size_t len = 0;
    char *body = NULL;
    FILE *f;
    int c, rc;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (!parse_int(optarg, 0, 999, &status)) {
                fprintf(stderr, "gemroute explain: --status %s: not an HTTP "
                                "status (0-999)\n", optarg);
                return 2;
            }
            break;
        case 'n':
            if (!parse_int(optarg, 0, INT64_C(253402300799), &v)) {
                fprintf(stderr, "gemroute explain: --now %s: not a unix "
                                "time in seconds\n", optarg);
                return 2;
            }
            now = v;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fprintf(stderr, "gemroute explain: bad option %s\n%s",
                    argv[optind - 1], usage);
            return 2;
        }
    }
    if (argc - optind != 1) {
        fputs(usage, stderr);
        return 2;
    }
    path = argv[optind];

    if (strcmp(path, "-") == 0) {
        f = stdin;
    } else if ((f = fopen(path, "rb")) == NULL) {
        fprintf(stderr, "gemroute explain: fopen(%s): %s\n", path,
                strerror(errno));
        return 1;
    }
    rc = read_all(f, &body, &len);
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        fprintf(stderr, "gemroute explain: read(%s): %s\n", path,
                rc == -EFBIG ? "larger than 64 MiB" : strerror(-rc));
        return 1;
    }

    if (status < 0 && (status = gr_body_status(body, len)) < 0) {
        fprintf(stderr, "gemroute explain: %s: the body states no status "
                        "(empty, not JSON or too large); give --status N\n",
                path);
        free(body);
        return 1;
    }
    gr_classify((int)status, body, len, (int64_t)now, &verdict);
    free(body);
    print_verdict(stdout, &verdict);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "gemroute explain: write(stdout): %s\n",
                strerror(errno));
        return 1;
    }
    return 0;
}
