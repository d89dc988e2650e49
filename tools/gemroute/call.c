/*
 * call.c - gemroute call: one Gemini call through libgemroute.
 *
 *   gemroute call --model M [--stream] [--raw] [-v] [--deadline S]
 *                 [--attempts N] [--tokens N] [--count-tokens]
 *                 [--shm NAME] (--json FILE | TEXT...)
 *
 * Prints the answer's text (--raw: the JSON as received; with --stream,
 * one event per line as it comes) on stdout; -v adds the project, the
 * attempts, the time queued and the usage on stderr.  Invariant: the
 * key is never printed, in any mode, on any path: nothing here sees it.
 */
#include "cli.h"
#include "gemroute.h"
#include "num.h"
#include "snapshot.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUEST_MAX (64u << 20)     /* --json files larger are refused */
#define DEADLINE_MAX_S 86400.0      /* --deadline: a day at most */
#define ATTEMPTS_MAX 100            /* what the library allows */
#define TOKENS_MAX 100000000LL      /* --tokens: far above any context */

struct out_state {
    bool raw;
    bool newline;       /* the last text printed ended with '\n' */
};

static void
usage(FILE *f)
{
    fputs("usage: gemroute call --model M [--stream] [--raw] [-v] "
          "[--deadline S]\n"
          "                     [--attempts N] [--tokens N] "
          "[--count-tokens] [--shm NAME]\n"
          "                     (--json FILE | TEXT...)\n"
          "  --json FILE     the request body (\"-\" = stdin); else TEXT is "
          "the prompt\n"
          "  --stream        streamGenerateContent, printed as it comes\n"
          "  --raw           print the answer's JSON, not its text\n"
          "  -v              project, attempts, queue time and usage on "
          "stderr\n"
          "  --deadline S    give up after S seconds (default 120, at most "
          "86400)\n"
          "  --attempts N    HTTP calls at most (default 8)\n"
          "  --tokens N      reserve N input tokens instead of estimating\n"
          "  --count-tokens  ask countTokens for the estimate first\n", f);
}

/* The whole of a file ("-" = stdin), NUL-terminated; NULL on error. */
static char *
read_file(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t len = 0, cap = 0, n;
    char *buf = NULL, *b;

    if (f == NULL) {
        fprintf(stderr, "gemroute call: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            if (cap > REQUEST_MAX + 1)
                cap = REQUEST_MAX + 1;
            if (cap - len < 2) {
                fprintf(stderr, "gemroute call: %s: larger than %u MiB\n",
                        path, REQUEST_MAX >> 20);
                goto fail;
            }
            b = realloc(buf, cap);
            if (b == NULL) {
                fprintf(stderr, "gemroute call: out of memory\n");
                goto fail;
            }
            buf = b;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "gemroute call: %s: read error\n", path);
        goto fail;
    }
    buf[len] = '\0';
    if (f != stdin)
        fclose(f);
    return buf;

fail:
    free(buf);
    if (f != stdin)
        fclose(f);
    return NULL;
}

/* {"contents":[{"role":"user","parts":[{"text":TEXT}]}]} */
static char *
text_request(int argc, char **argv)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    int i;

    if (f == NULL)
        return NULL;
    fputs("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":", f);
    {
        /* The words joined by spaces, as one JSON string. */
        char *joined = NULL;
        size_t jn = 0;
        FILE *j = open_memstream(&joined, &jn);

        if (j == NULL) {
            fclose(f);
            free(s);
            return NULL;
        }
        for (i = 0; i < argc; i++)
            fprintf(j, "%s%s", i > 0 ? " " : "", argv[i]);
        fclose(j);
        gr_cli_json_str(f, joined);
        free(joined);
    }
    fputs("}]}]}", f);
    fclose(f);
    return s;
}

static int
on_chunk(void *arg, const char *json, size_t len)
{
    struct out_state *st = arg;
    struct gr_response one;
    char *text;

    if (st->raw) {
        fwrite(json, 1, len, stdout);
        fputc('\n', stdout);
        st->newline = true;
    } else {
        /* A response owns its body, NUL-terminated: give it a copy. */
        memset(&one, 0, sizeof(one));
        one.body = malloc(len + 1);
        if (one.body == NULL)
            return -1;  /* out of memory: stop the call */
        memcpy(one.body, json, len);
        one.body[len] = '\0';
        one.len = len;
        text = gr_response_text(&one);
        if (text != NULL && text[0] != '\0') {
            fputs(text, stdout);
            st->newline = text[strlen(text) - 1] == '\n';
        }
        free(text);
        free(one.body);
    }
    fflush(stdout);
    return 0;
}

static void
print_tokens(const char *name, int64_t v)
{
    if (v >= 0)
        fprintf(stderr, " %s %lld", name, (long long)v);
    else
        fprintf(stderr, " %s -", name);
}

static void
print_verbose(const struct gr_response *r, int rc)
{
    fprintf(stderr, "project %s, attempts %d (429: %d), queued %.1f ms, "
            "elapsed %.1f ms, status %d, result %s\n",
            r->project[0] ? r->project : "-", r->attempts, r->n_429,
            (double)r->queued_ns / 1e6, (double)r->elapsed_ns / 1e6,
            r->status, gr_err_name(rc));
    fputs("usage:", stderr);
    print_tokens("prompt", r->usage.prompt);
    print_tokens("candidates", r->usage.candidates);
    print_tokens("thoughts", r->usage.thoughts);
    print_tokens("total", r->usage.total);
    fputc('\n', stderr);
    if (r->attempts > 0)
        fprintf(stderr, "last answer: %s\n", r->verdict.reason);
}

int
gr_cli_call(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"stream", no_argument, NULL, 's'},
        {"raw", no_argument, NULL, 'r'},
        {"verbose", no_argument, NULL, 'v'},
        {"json", required_argument, NULL, 'j'},
        {"deadline", required_argument, NULL, 'd'},
        {"attempts", required_argument, NULL, 'a'},
        {"tokens", required_argument, NULL, 't'},
        {"count-tokens", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = gr_cli_take_shm(&argc, argv), *model = NULL;
    const char *json_path = NULL;
    struct out_state st = {false, true};
    struct gr_call_opts o;
    struct gr_response r;
    bool stream = false, verbose = false;
    double deadline_s = 0;
    long long n;
    char err[256], *req, *text;
    struct gr *g;
    int c, rc;

    memset(&o, 0, sizeof(o));
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case 's':
            stream = true;
            break;
        case 'r':
            st.raw = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'j':
            json_path = optarg;
            break;
        case 'd':
            /* Finite and bounded: deadline_s * 1e9 must fit in int64. */
            if (!gr_cli_number(optarg, 0, DEADLINE_MAX_S, &deadline_s)) {
                fprintf(stderr, "gemroute call: --deadline wants seconds "
                        "> 0 and <= %.0f, not '%s'\n", DEADLINE_MAX_S,
                        optarg);
                return 2;
            }
            break;
        case 'a':
            if (!gr_cli_integer(optarg, 1, ATTEMPTS_MAX, &n)) {
                fprintf(stderr, "gemroute call: --attempts wants a whole "
                        "number from 1 to %d, not '%s'\n", ATTEMPTS_MAX,
                        optarg);
                return 2;
            }
            o.max_attempts = (int)n;
            break;
        case 't':
            if (!gr_cli_integer(optarg, 1, TOKENS_MAX, &n)) {
                fprintf(stderr, "gemroute call: --tokens wants a whole "
                        "number from 1 to %lld, not '%s'\n", TOKENS_MAX,
                        optarg);
                return 2;
            }
            o.est_tokens = n;
            break;
        case 'c':
            o.count_tokens_first = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (model == NULL || (json_path == NULL) == (optind >= argc)) {
        fputs("gemroute call: give --model and either --json FILE or a "
              "prompt\n", stderr);
        usage(stderr);
        return 2;
    }
    req = json_path != NULL ? read_file(json_path)
                            : text_request(argc - optind, argv + optind);
    if (req == NULL)
        return 1;
    g = gr_open(name, err, sizeof(err));
    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        free(req);
        return 1;
    }
    if (deadline_s > 0)
        o.deadline_ns = gr_now_ns() + (int64_t)(deadline_s * 1e9);
    if (stream)
        rc = gr_stream(g, model, req, &o, on_chunk, &st, &r);
    else
        rc = gr_generate(g, model, req, &o, &r);

    if (rc == GR_OK && !stream) {
        if (st.raw) {
            fwrite(r.body, 1, r.len, stdout);
            st.newline = r.len > 0 && r.body[r.len - 1] == '\n';
        } else if ((text = gr_response_text(&r)) != NULL) {
            fputs(text, stdout);
            st.newline = text[0] != '\0' && text[strlen(text) - 1] == '\n';
            free(text);
        }
    } else if (rc != GR_OK && st.raw && r.body != NULL && !stream) {
        fwrite(r.body, 1, r.len, stdout);    /* the last answer, as is */
        st.newline = r.len > 0 && r.body[r.len - 1] == '\n';
    }
    if (!st.newline)
        fputc('\n', stdout);
    fflush(stdout);
    if (verbose)
        print_verbose(&r, rc);
    if (rc != GR_OK)
        fprintf(stderr, "gemroute call: %s: %s\n", gr_err_name(rc),
                r.error);
    gr_response_free(&r);
    gr_close(g);
    free(req);
    return rc == GR_OK ? 0 : 1;
}
