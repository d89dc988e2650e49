/*
 * resources.c - gemroute resources: the resource record, one line per
 * file, context cache or batch job (name, project, kind, expiry), or one
 * JSON object; and the counts line gemroute status prints under its
 * table.  Read through the library's snapshot API (gr_stat_resources()),
 * never from the segment.
 */
#include "cli.h"
#include "snapshot.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *
kind_name(enum gr_res_kind k)
{
    return k == GR_RES_FILE ? "file" : k == GR_RES_CACHE ? "cache"
           : k == GR_RES_BATCH ? "batch" : k == GR_RES_UPLOAD ? "upload"
           : "?";
}

static void
expiry(const struct gr_stat_resource *r, char *buf, size_t n)
{
    time_t t = (time_t)r->expire_unix_s;
    struct tm tm;

    if (r->expire_unix_s == 0) {
        snprintf(buf, n, "-");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
gr_cli_resources_line(FILE *f, const struct gr_stat *st, bool prometheus)
{
    struct gr_stat_res_counts c;

    if (gr_stat_resources(st, NULL, 0, &c) < 0)
        return;
    if (prometheus) {
        fprintf(f, "# HELP gemroute_resources Files, caches and batch jobs "
                "recorded with the project that holds them.\n"
                "# TYPE gemroute_resources gauge\n"
                "gemroute_resources{kind=\"file\"} %llu\n"
                "gemroute_resources{kind=\"cache\"} %llu\n"
                "gemroute_resources{kind=\"batch\"} %llu\n"
                "# HELP gemroute_resources_refused_total Resources not "
                "recorded: the record was full.\n"
                "# TYPE gemroute_resources_refused_total counter\n"
                "gemroute_resources_refused_total %llu\n",
                (unsigned long long)c.files, (unsigned long long)c.caches,
                (unsigned long long)c.batches,
                (unsigned long long)c.refused);
        return;
    }
    if (c.files + c.caches + c.batches + c.refused == 0)
        return;
    fprintf(f, "\nresources: %llu files, %llu caches, %llu batches "
            "(of %llu records%s", (unsigned long long)c.files,
            (unsigned long long)c.caches, (unsigned long long)c.batches,
            (unsigned long long)c.capacity, c.refused != 0 ? "; " : ")\n");
    if (c.refused != 0)
        fprintf(f, "%llu refused: the record was full)\n",
                (unsigned long long)c.refused);
}

static const char usage[] =
    "usage: gemroute resources [--shm NAME] [--json]\n"
    "  The files, context caches and batch jobs recorded with the project\n"
    "  that holds them: NAME PROJECT KIND EXPIRES (UTC; '-' = until done).\n";

int
gr_cli_resources(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = gr_cli_take_shm(&argc, argv);
    struct gr_stat_resource *rs = NULL;
    struct gr_stat_res_counts c;
    struct gr_stat *st;
    bool json = false;
    char err[256], when[32];
    int ch, n, max = 0, i;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'j') {
            json = true;
        } else if (ch == 'h') {
            fputs(usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if ((st = gr_stat_open(name, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    /* Read until the buffer holds them all (records come and go). */
    for (;;) {
        n = gr_stat_resources(st, rs, max, &c);
        if (n < 0) {
            fprintf(stderr, "gemroute: %s has no resource record (the "
                    "router makes one at start)\n", gr_stat_name(st));
            free(rs);
            gr_stat_close(st);
            return 1;
        }
        if (n <= max)
            break;
        free(rs);
        max = n + 16;
        if ((rs = calloc((size_t)max, sizeof(*rs))) == NULL) {
            gr_stat_close(st);
            return 1;
        }
    }
    gr_stat_close(st);
    if (json) {
        printf("{\"files\": %llu, \"caches\": %llu, \"batches\": %llu, "
               "\"capacity\": %llu, \"refused\": %llu, \"resources\": [",
               (unsigned long long)c.files, (unsigned long long)c.caches,
               (unsigned long long)c.batches,
               (unsigned long long)c.capacity,
               (unsigned long long)c.refused);
        for (i = 0; i < n; i++) {
            printf("%s\n  {\"name\": ", i ? "," : "");
            gr_cli_json_str(stdout, rs[i].name);
            printf(", \"project\": ");
            gr_cli_json_str(stdout, rs[i].project);
            printf(", \"kind\": \"%s\", \"expire_unix_s\": %lld, "
                   "\"expired\": %s}", kind_name(rs[i].kind),
                   (long long)rs[i].expire_unix_s,
                   rs[i].expired ? "true" : "false");
        }
        printf("]}\n");
    } else {
        printf("%-40s %-24s %-6s %s\n", "NAME", "PROJECT", "KIND",
               "EXPIRES");
        for (i = 0; i < n; i++) {
            expiry(&rs[i], when, sizeof(when));
            printf("%-40s %-24s %-6s %s%s\n", rs[i].name, rs[i].project,
                   kind_name(rs[i].kind), when,
                   rs[i].expired ? " (expired)" : "");
        }
    }
    free(rs);
    return 0;
}
