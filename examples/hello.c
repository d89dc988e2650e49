/*
 * hello.c - the smallest program that calls Gemini through gemroute: it
 * attaches to the router's table, makes one generateContent call (the
 * library reserves room on some project, calls it, settles the lease and
 * retries elsewhere when that helps) and prints the answer's text.
 *
 * Build it against the static library (from the top of the tree, after
 * `make`):
 *
 *     cc -std=c11 -Iinclude examples/hello.c lib/libgemroute.a \
 *        -ljson-c -lcurl -lpthread -lm -o hello
 *
 * or against the shared one:
 *
 *     cc -std=c11 -Iinclude examples/hello.c -Llib -lgemroute \
 *        -Wl,-rpath,"$PWD/lib" -o hello
 *
 * and run it while a router is up (GEMROUTE_SHM names its table when it
 * is not /gemroute; GEMROUTE_MODEL picks the model):
 *
 *     ./hello "Why is the sky blue?"
 */
#define _POSIX_C_SOURCE 200809L     /* open_memstream() */

#include "gemroute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The prompt as a JSON string: quotes, backslashes and controls escaped. */
static void
json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int
main(int argc, char **argv)
{
    const char *model = getenv("GEMROUTE_MODEL");
    struct gr_call_opts opts;
    struct gr_response r;
    char err[256], *req = NULL, *text;
    size_t len = 0;
    struct gr *g;
    FILE *f;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PROMPT\n", argv[0]);
        return 2;
    }
    if (model == NULL || model[0] == '\0')
        model = "gemini-2.5-flash";

    /* NULL: $GEMROUTE_SHM, else /gemroute. */
    g = gr_open(NULL, err, sizeof(err));
    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }

    f = open_memstream(&req, &len);
    if (f == NULL) {
        gr_close(g);
        return 1;
    }
    fputs("{\"contents\": [{\"role\": \"user\", \"parts\": [{\"text\": ", f);
    json_string(f, argv[1]);
    fputs("}]}]}", f);
    fclose(f);

    /* Zeroed options are the defaults; give the call one minute. */
    memset(&opts, 0, sizeof(opts));
    opts.deadline_ns = gr_now_ns() + 60 * INT64_C(1000000000);

    rc = gr_generate(g, model, req, &opts, &r);
    if (rc == GR_OK) {
        text = gr_response_text(&r);
        if (text != NULL)
            fputs(text, stdout);
        if (text == NULL || text[0] == '\0' || text[strlen(text) - 1] != '\n')
            fputc('\n', stdout);
        free(text);
        fprintf(stderr, "(project %s, %d attempt(s), %lld input tokens)\n",
                r.project, r.attempts, (long long)r.usage.prompt);
    } else {
        fprintf(stderr, "hello: %s: %s\n", gr_err_name(rc), r.error);
    }
    gr_response_free(&r);
    free(req);
    gr_close(g);
    return rc == GR_OK ? 0 : 1;
}
