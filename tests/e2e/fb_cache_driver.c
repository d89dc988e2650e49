/*
 * fb_cache_driver.c - drives libgemroute for tests/e2e/run_fallback_cache.sh:
 *
 *   fb_cache_driver embed SHM MODEL PROCS CALLS BODY
 *       PROCS processes make CALLS gr_embed() calls in all (split evenly)
 *       with BODY; prints "ok N hits N failed N" summed over them.
 *   fb_cache_driver gen SHM MODEL allow|never|default QUEUE_S DEADLINE_S N
 *       N gr_generate() calls one after another; prints one line per
 *       call: "rc NAME model M cached 0|1 attempts N error: ...".
 *   fb_cache_driver count SHM MODEL BODY
 *       one gr_count_tokens(): "rc NAME cached 0|1 tokens N".
 *   fb_cache_driver time SHM MODEL use|bypass N BODY
 *       N gr_embed() calls in this process, through the cache or around
 *       it: "calls N ok N hits N wall_us_per_call X cpu_us_per_call Y"
 *       (a measurement for a person to read, never asserted).
 *
 * Exit 0 when it could run (the outcomes are for the script to judge).
 */
#include "gemroute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int
embed(const char *shm, const char *model, int procs, int calls,
      const char *body)
{
    int fds[2], p, ok = 0, hits = 0, failed = 0;
    char err[256];

    if (pipe(fds) != 0)
        return 1;
    for (p = 0; p < procs; p++) {
        pid_t pid = fork();

        if (pid < 0)
            return 1;
        if (pid == 0) {
            struct gr *g = gr_open(shm, err, sizeof(err));
            int n = calls / procs + (p < calls % procs), i;
            int c[3] = {0, 0, 0};

            close(fds[0]);
            if (g == NULL) {
                fprintf(stderr, "%s\n", err);
                c[2] = n;
            }
            for (i = 0; g != NULL && i < n; i++) {
                struct gr_response r;
                int rc = gr_embed(g, model, body, NULL, &r);

                c[rc == GR_OK ? 0 : 2]++;
                c[1] += r.cached;
                if (rc != GR_OK && c[2] == 1)
                    fprintf(stderr, "embed: %s: %s\n", gr_err_name(rc),
                            r.error);
                gr_response_free(&r);
            }
            if (g != NULL && gr_errstr(g)[0] != '\0' &&
                strstr(gr_errstr(g), "cache") != NULL)
                fprintf(stderr, "%s\n", gr_errstr(g));
            if (write(fds[1], c, sizeof(c)) != (ssize_t)sizeof(c))
                _exit(1);
            gr_close(g);
            _exit(0);
        }
    }
    close(fds[1]);
    for (p = 0; p < procs; p++) {
        int c[3];

        if (read(fds[0], c, sizeof(c)) == (ssize_t)sizeof(c)) {
            ok += c[0];
            hits += c[1];
            failed += c[2];
        }
    }
    while (wait(NULL) > 0)
        ;
    printf("ok %d hits %d failed %d\n", ok, hits, failed);
    return 0;
}

static int
gen(const char *shm, const char *model, const char *fb, double queue_s,
    double deadline_s, int n)
{
    struct gr_call_opts o;
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    int i;

    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (i = 0; i < n; i++) {
        struct gr_response r;
        int64_t now = gr_now_ns();
        int rc;

        memset(&o, 0, sizeof(o));
        o.queue_deadline_ns = now + (int64_t)(queue_s * 1e9);
        o.deadline_ns = now + (int64_t)(deadline_s * 1e9);
        o.fallback = strcmp(fb, "allow") == 0 ? GR_FALLBACK_ALLOW
                     : strcmp(fb, "never") == 0 ? GR_FALLBACK_NEVER
                     : GR_FALLBACK_DEFAULT;
        rc = gr_generate(g, model, "{\"contents\":[{\"parts\":[{\"text\":"
                         "\"hello\"}]}]}", &o, &r);
        printf("rc %s model %s cached %d attempts %d error: %s\n",
               gr_err_name(rc), r.model, r.cached ? 1 : 0, r.attempts,
               r.error);
        gr_response_free(&r);
    }
    gr_close(g);
    return 0;
}

static int
count(const char *shm, const char *model, const char *body)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_response r;
    int rc;

    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rc = gr_count_tokens(g, model, body, NULL, &r);
    printf("rc %s cached %d tokens %lld\n", gr_err_name(rc),
           r.cached ? 1 : 0, (long long)r.usage.prompt);
    gr_response_free(&r);
    gr_close(g);
    return 0;
}

static double
cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int
timed(const char *shm, const char *model, const char *how, int n,
      const char *body)
{
    struct gr_call_opts o;
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    int i, ok = 0, hits = 0;
    int64_t t0;
    double c0;

    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    memset(&o, 0, sizeof(o));
    o.cache = strcmp(how, "bypass") == 0 ? GR_CACHE_BYPASS : GR_CACHE_USE;
    t0 = gr_now_ns();
    c0 = cpu_us();
    for (i = 0; i < n; i++) {
        struct gr_response r;
        int rc = gr_embed(g, model, body, &o, &r);

        ok += rc == GR_OK;
        hits += r.cached;
        gr_response_free(&r);
    }
    printf("calls %d ok %d hits %d wall_us_per_call %.1f "
           "cpu_us_per_call %.1f\n", n, ok, hits,
           (double)(gr_now_ns() - t0) / 1e3 / n, (cpu_us() - c0) / n);
    gr_close(g);
    return 0;
}

int
main(int argc, char **argv)
{
    alarm(120);
    if (argc == 7 && strcmp(argv[1], "embed") == 0)
        return embed(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]),
                     argv[6]);
    if (argc == 8 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], argv[3], argv[4], atof(argv[5]), atof(argv[6]),
                   atoi(argv[7]));
    if (argc == 7 && strcmp(argv[1], "time") == 0)
        return timed(argv[2], argv[3], argv[4], atoi(argv[5]), argv[6]);
    if (argc == 5 && strcmp(argv[1], "count") == 0)
        return count(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: see tests/e2e/fb_cache_driver.c\n");
    return 2;
}
