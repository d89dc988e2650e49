/*
 * status.c - gemroute status: what every (project, model) is doing.
 *
 *   gemroute status [--shm NAME] [--json]
 *
 * Reads the segment read-only through a snapshot (snapshot.c).  Keys are
 * never shown beyond their last four characters.
 */
#include "cli.h"
#include "snapshot.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *dim_names[GR_NDIM] = {"rpm", "tpm", "rpd", "ipm"};

/* Print s as a JSON string. */
void
gr_cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void
iso_utc(int64_t unix_s, char *buf, size_t n)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
json_dims(FILE *f, const char *name, const int64_t *v, bool null_negative)
{
    unsigned d;

    fprintf(f, "\"%s\": {", name);
    for (d = 0; d < GR_NDIM; d++) {
        fprintf(f, "%s\"%s\": ", d ? ", " : "", dim_names[d]);
        if (null_negative && v[d] < 0)
            fputs("null", f);
        else
            fprintf(f, "%lld", (long long)v[d]);
    }
    fputc('}', f);
}

static void
print_json(FILE *f, const struct gr_snap *s)
{
    char reset[32], reload[32];
    unsigned i, d;

    iso_utc(s->next_rpd_reset_s, reset, sizeof(reset));
    iso_utc(s->last_reload_wall_s, reload, sizeof(reload));
    fprintf(f, "{\"router\": {\"pid\": %lld, \"alive\": %s, "
            "\"config_generation\": %llu, \"shm\": ",
            (long long)s->router_pid, s->router_alive ? "true" : "false",
            (unsigned long long)s->config_generation);
    gr_cli_json_str(f, s->shm);
    fputs(", \"base_url\": ", f);
    gr_cli_json_str(f, s->base_url);
    fprintf(f, ", \"window_s\": %.3f, \"reaped\": %llu, \"audited\": %llu, "
            "\"anomalies\": %llu},\n", s->window_s,
            (unsigned long long)s->reaped, (unsigned long long)s->audits,
            (unsigned long long)s->anomalies);
    fprintf(f, " \"last_reload\": {\"time\": \"%s\", \"ok\": %s, "
            "\"succeeded\": %u, \"failed\": %u, \"error\": ", reload,
            s->last_reload_ok ? "true" : "false", s->reloads_ok,
            s->reloads_failed);
    gr_cli_json_str(f, s->last_reload_error);
    fprintf(f, "},\n \"next_rpd_reset\": \"%s\",\n \"cells\": [", reset);
    for (i = 0; i < s->n_cells; i++) {
        const struct gr_snap_cell *c = &s->cells[i];
        int64_t learned_any = 0;

        fprintf(f, "%s\n  {\"project\": ", i ? "," : "");
        gr_cli_json_str(f, c->project);
        fputs(", \"model\": ", f);
        gr_cli_json_str(f, c->model);
        fprintf(f, ", \"health\": \"%s\", \"reason\": ", c->health);
        gr_cli_json_str(f, c->reason);
        fputs(", \"key\": ", f);
        gr_cli_json_str(f, c->key_tail);
        fputs(",\n   ", f);
        json_dims(f, "limit", c->limit, true);
        fputs(", ", f);
        json_dims(f, "used", c->used, false);
        fputs(",\n   \"cooldown_s\": {", f);
        for (d = 0; d < GR_NDIM; d++)
            fprintf(f, "%s\"%s\": %.1f", d ? ", " : "", dim_names[d],
                    c->cooldown_s[d] > c->cell_cool_s ? c->cooldown_s[d] :
                    c->cell_cool_s);
        fputs("}, \"learned\": {", f);
        for (d = 0; d < GR_NDIM; d++)
            if (c->learned[d] >= 0)
                fprintf(f, "%s\"%s\": %lld", learned_any++ ? ", " : "",
                        dim_names[d], (long long)c->learned[d]);
        fprintf(f, "}, \"in_flight\": %lld,\n   \"counts\": {\"admitted\": "
                "%llu, \"rejected\": %llu, \"ok\": %llu, \"quota_429\": "
                "%llu, \"server_5xx\": %llu, \"auth\": %llu, \"other\": "
                "%llu}, \"last_status\": %u, \"last_quota_id\": ",
                (long long)c->in_flight, (unsigned long long)c->admitted,
                (unsigned long long)c->rejected, (unsigned long long)c->ok,
                (unsigned long long)c->quota_429,
                (unsigned long long)c->server_5xx,
                (unsigned long long)c->auth_err,
                (unsigned long long)c->other_err, c->last_status);
        gr_cli_json_str(f, c->last_qid);
        fputc('}', f);
    }
    fputs("\n ]}\n", f);
}

static void
pct(char *buf, size_t n, int64_t used, int64_t limit)
{
    if (limit < 0)
        snprintf(buf, n, "%lld/-", (long long)used);
    else if (limit == 0)
        snprintf(buf, n, "off");
    else
        snprintf(buf, n, "%3lld%%", (long long)(used * 100 / limit));
}

static void
print_table(FILE *f, const struct gr_snap *s)
{
    char reset[32];
    unsigned i, d;

    iso_utc(s->next_rpd_reset_s, reset, sizeof(reset));
    fprintf(f, "router pid %lld %s  config gen %llu  next RPD reset %s\n",
            (long long)s->router_pid, s->router_alive ? "alive" : "DEAD",
            (unsigned long long)s->config_generation, reset);
    fprintf(f, "%-14s %-22s %-9s %5s %5s %5s %5s %4s %6s %s\n", "PROJECT",
            "MODEL", "HEALTH", "RPM", "TPM", "RPD", "IPM", "FLY", "ERR",
            "WHY");
    for (i = 0; i < s->n_cells; i++) {
        const struct gr_snap_cell *c = &s->cells[i];
        char u[GR_NDIM][16];

        for (d = 0; d < GR_NDIM; d++)
            pct(u[d], sizeof(u[d]), c->used[d], c->limit[d]);
        fprintf(f, "%-14.14s %-22.22s %-9s %5s %5s %5s %5s %4lld %6llu %s\n",
                c->project, c->model, c->health, u[0], u[1], u[2], u[3],
                (long long)c->in_flight,
                (unsigned long long)(c->quota_429 + c->server_5xx +
                                     c->auth_err + c->other_err),
                c->reason);
    }
}

int
gr_cli_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = gr_cli_take_shm(&argc, argv);
    struct gr_shm t;
    struct gr_snap s;
    char err[256];
    bool json = false;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = true;
            break;
        case 'h':
            puts("usage: gemroute status [--shm NAME] [--json]");
            return 0;
        default:
            return 2;
        }
    }
    if (gr_shm_attach(name, false, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (gr_snap_take(&t, &s) != 0) {
        fprintf(stderr, "gemroute: out of memory\n");
        gr_shm_detach(&t);
        return 1;
    }
    if (json)
        print_json(stdout, &s);
    else
        print_table(stdout, &s);
    gr_snap_free(&s);
    gr_shm_detach(&t);
    return 0;
}
