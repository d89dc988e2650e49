/*
 * cache_cmd.c - `gemroute cache stats|clear` and the cache's and the
 * fallbacks' lines of `gemroute status` (table and Prometheus views).
 *
 *   gemroute cache stats [--shm NAME] [--json]
 *   gemroute cache clear [--shm NAME]
 *
 * Everything is read through the library: gr_cache_info() and
 * gr_cache_clear() for the store, gr_stat_extras() for the counters
 * every process keeps in the table.  Exit 0, 1 on failure, 2 on bad
 * usage.
 */
#include "cli.h"
#include "snapshot.h"

#include "gemroute.h"

#include <stdio.h>
#include <string.h>

static double
rate(uint64_t hits, uint64_t misses)
{
    return hits + misses > 0 ? (double)hits / (double)(hits + misses) : 0.0;
}

static void
extras_json(FILE *f, const struct gr_stat_extras *x)
{
    unsigned i;

    fprintf(f, ",\n \"cache\": {\"on\": %s, \"hits\": %llu, "
            "\"misses\": %llu, \"hit_rate\": %.6f, \"stores\": %llu, "
            "\"errors\": %llu},\n \"fallbacks\": {\"total\": %llu, "
            "\"not_allowed\": %llu, \"pairs\": [",
            x->cache_on ? "true" : "false",
            (unsigned long long)x->cache_hits,
            (unsigned long long)x->cache_misses,
            rate(x->cache_hits, x->cache_misses),
            (unsigned long long)x->cache_stores,
            (unsigned long long)x->cache_errors,
            (unsigned long long)x->fallbacks,
            (unsigned long long)x->fallback_denied);
    for (i = 0; i < x->n_pairs; i++) {
        fputs(i > 0 ? ", {\"from\": " : "{\"from\": ", f);
        gr_cli_json_str(f, x->pairs[i].from);
        fputs(", \"to\": ", f);
        gr_cli_json_str(f, x->pairs[i].to);
        fprintf(f, ", \"calls\": %llu}",
                (unsigned long long)x->pairs[i].calls);
    }
    fputs("]}", f);
}

void
gr_status_extras(FILE *f, const struct gr_stat_extras *x,
                 enum gr_extras_view v)
{
    unsigned i;
    bool prom = v == GR_EXTRAS_PROM;

    if (!x->present)
        return;
    if (v == GR_EXTRAS_JSON) {
        extras_json(f, x);
        return;
    }
    if (!prom) {
        fprintf(f, "\ncache: %s, hits %llu, misses %llu (hit rate %.1f%%), "
                "stores %llu, errors %llu\n", x->cache_on ? "on" : "off",
                (unsigned long long)x->cache_hits,
                (unsigned long long)x->cache_misses,
                100.0 * rate(x->cache_hits, x->cache_misses),
                (unsigned long long)x->cache_stores,
                (unsigned long long)x->cache_errors);
        fprintf(f, "fallbacks: %llu, not allowed %llu",
                (unsigned long long)x->fallbacks,
                (unsigned long long)x->fallback_denied);
        for (i = 0; i < x->n_pairs; i++)
            fprintf(f, "%s %s -> %s %llu", i == 0 ? ":" : ",",
                    x->pairs[i].from, x->pairs[i].to,
                    (unsigned long long)x->pairs[i].calls);
        fputc('\n', f);
        return;
    }
    fprintf(f, "# HELP gemroute_cache_lookups_total Lookups in the shared "
            "response cache, by result.\n"
            "# TYPE gemroute_cache_lookups_total counter\n"
            "gemroute_cache_lookups_total{result=\"hit\"} %llu\n"
            "gemroute_cache_lookups_total{result=\"miss\"} %llu\n"
            "# HELP gemroute_cache_hit_ratio Hits over lookups since the "
            "table was made.\n"
            "# TYPE gemroute_cache_hit_ratio gauge\n"
            "gemroute_cache_hit_ratio %.6f\n"
            "# HELP gemroute_cache_stores_total Answers kept in the cache.\n"
            "# TYPE gemroute_cache_stores_total counter\n"
            "gemroute_cache_stores_total %llu\n"
            "# HELP gemroute_cache_errors_total Lookups or stores the cache "
            "could not serve (refused or failed).\n"
            "# TYPE gemroute_cache_errors_total counter\n"
            "gemroute_cache_errors_total %llu\n",
            (unsigned long long)x->cache_hits,
            (unsigned long long)x->cache_misses,
            rate(x->cache_hits, x->cache_misses),
            (unsigned long long)x->cache_stores,
            (unsigned long long)x->cache_errors);
    fprintf(f, "# HELP gemroute_fallbacks_total Calls handed to a model of "
            "the asked model's fallback chain, by pair.\n"
            "# TYPE gemroute_fallbacks_total counter\n");
    for (i = 0; i < x->n_pairs; i++)
        fprintf(f, "gemroute_fallbacks_total{from=\"%s\",to=\"%s\"} %llu\n",
                x->pairs[i].from, x->pairs[i].to,
                (unsigned long long)x->pairs[i].calls);
    fprintf(f, "# HELP gemroute_fallback_denied_total Calls that found no "
            "room before their queue deadline and were not allowed to fall "
            "back.\n"
            "# TYPE gemroute_fallback_denied_total counter\n"
            "gemroute_fallback_denied_total %llu\n",
            (unsigned long long)x->fallback_denied);
}

static const char usage[] =
    "usage: gemroute cache stats [--shm NAME] [--json]\n"
    "       gemroute cache clear [--shm NAME]\n";

int
gr_cli_cache(int argc, char **argv)
{
    const char *shm = gr_cli_take_shm(&argc, argv);
    struct gr_cache_info ci;
    struct gr *g;
    char err[256];
    uint64_t removed = 0;
    bool json = false;
    int rc;

    if (argc == 3 && strcmp(argv[1], "stats") == 0 &&
        strcmp(argv[2], "--json") == 0)
        json = true;
    else if (argc != 2 || (strcmp(argv[1], "stats") != 0 &&
                           strcmp(argv[1], "clear") != 0)) {
        fputs(usage, stderr);
        return 2;
    }
    g = gr_open(shm, err, sizeof(err));
    if (g == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (strcmp(argv[1], "clear") == 0) {
        rc = gr_cache_clear(g, &removed);
        if (rc != GR_OK)
            fprintf(stderr, "gemroute cache clear: %s\n", gr_errstr(g));
        else
            printf("removed %llu entries\n", (unsigned long long)removed);
        gr_close(g);
        return rc == GR_OK ? 0 : 1;
    }
    gr_cache_info(g, &ci);
    gr_close(g);
    if (json) {
        printf("{\"on\": %s, \"path\": ", ci.on ? "true" : "false");
        gr_cli_json_str(stdout, ci.path);
        printf(", \"entries\": %llu, \"bytes_used\": %llu, "
               "\"max_bytes\": %llu, \"ttl_s\": %lld, \"hits\": %llu, "
               "\"misses\": %llu, \"hit_rate\": %.6f, \"stores\": %llu, "
               "\"errors\": %llu, \"refused\": ",
               (unsigned long long)ci.entries,
               (unsigned long long)ci.bytes_used,
               (unsigned long long)ci.max_bytes, (long long)ci.ttl_s,
               (unsigned long long)ci.hits, (unsigned long long)ci.misses,
               rate(ci.hits, ci.misses), (unsigned long long)ci.stores,
               (unsigned long long)ci.errors);
        gr_cli_json_str(stdout, ci.refused);
        printf("}\n");
    } else if (!ci.on) {
        printf("cache: off (no cache section in the router's config, or "
               "enabled = false)\n");
    } else {
        printf("cache: %s\nentries: %llu\nbytes used: %llu of %llu\n"
               "ttl: %lld s\nhits: %llu\nmisses: %llu\nhit rate: %.1f%%\n"
               "stores: %llu\nerrors: %llu\n", ci.path,
               (unsigned long long)ci.entries,
               (unsigned long long)ci.bytes_used,
               (unsigned long long)ci.max_bytes, (long long)ci.ttl_s,
               (unsigned long long)ci.hits, (unsigned long long)ci.misses,
               100.0 * rate(ci.hits, ci.misses),
               (unsigned long long)ci.stores, (unsigned long long)ci.errors);
        if (ci.refused[0] != '\0')
            printf("refused: %s\n", ci.refused);
    }
    return ci.refused[0] != '\0' ? 1 : 0;
}
