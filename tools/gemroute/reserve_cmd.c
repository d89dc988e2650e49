/*
 * reserve_cmd.c - gemroute reserve: one reservation, printed as JSON.
 *
 *   gemroute reserve --model M [--tokens N] [--images N] [--hold-ms N]
 *                    [--wait-ms N] [--shm NAME]
 *
 * For scripts and tests: it reserves, prints the lease (the key masked,
 * the base URL without credentials), holds it, and settles it with the
 * estimate as the real usage.
 */
#include "cli.h"
#include "gemroute.h"
#include "snapshot.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int
gr_cli_reserve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"tokens", required_argument, NULL, 't'},
        {"images", required_argument, NULL, 'i'},
        {"hold-ms", required_argument, NULL, 'H'},
        {"wait-ms", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = gr_cli_take_shm(&argc, argv), *model = NULL;
    struct gr_cost cost = {1, 0, 0};
    struct gr_lease lease;
    struct gr_usage use = {-1, -1, 0};
    long hold_ms = 0, wait_ms = 0;
    char err[256], url[GR_URL_MAX];
    struct gr *g;
    size_t n;
    int c, rc;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            model = optarg;
            break;
        case 't':
            cost.tokens = atoll(optarg);
            break;
        case 'i':
            cost.images = atoll(optarg);
            break;
        case 'H':
            hold_ms = atol(optarg);
            break;
        case 'w':
            wait_ms = atol(optarg);
            break;
        case 'h':
            puts("usage: gemroute reserve --model M [--tokens N] "
                 "[--images N] [--hold-ms N] [--wait-ms N] [--shm NAME]");
            return 0;
        default:
            return 2;
        }
    }
    if (model == NULL) {
        fputs("gemroute reserve: --model is required\n", stderr);
        return 2;
    }
    g = gr_open(name, err, sizeof(err));
    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rc = gr_reserve(g, model, &cost,
                    wait_ms > 0 ? gr_now_ns() + wait_ms * 1000000 : 0, &lease);
    if (rc != GR_OK) {
        int64_t in = lease.retry_at_ns > 0 ? lease.retry_at_ns - gr_now_ns()
                                           : -1;

        printf("{\"ok\": false, \"error\": \"%s\", \"retry_in_s\": %.3f}\n",
               rc == GR_ENOROOM ? "no_room" : rc == GR_EDEADLINE ?
               "deadline" : rc == GR_ENOMODEL ? "no_model" : "error",
               in >= 0 ? (double)in / 1e9 : -1.0);
        fprintf(stderr, "gemroute reserve: %s\n", gr_errstr(g));
        gr_close(g);
        return 1;
    }
    n = strlen(lease.key);
    printf("{\"ok\": true, \"project\": ");
    gr_cli_json_str(stdout, lease.project);
    printf(", \"model\": ");
    gr_cli_json_str(stdout, lease.model);
    printf(", \"key\": \"...%s\", \"base_url\": ", n >= 8 ? lease.key + n - 4
                                                        : "");
    /* The URL as it may be shown: never its user:password@ (item 15). */
    gr_cli_json_str(stdout, gr_stat_url_safe(lease.base_url, url,
                                             sizeof(url)));
    printf(", \"lease\": %u, \"tokens\": %lld, \"images\": %lld}\n",
           lease.slot, (long long)cost.tokens, (long long)cost.images);
    fflush(stdout);
    explicit_bzero(lease.key, sizeof(lease.key));
    if (hold_ms > 0) {
        struct timespec ts = {hold_ms / 1000, (hold_ms % 1000) * 1000000};

        nanosleep(&ts, NULL);
    }
    gr_commit(g, &lease, &use);
    gr_close(g);
    return 0;
}
