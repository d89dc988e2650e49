/*
 * status.c - gemroute status: what every (project, model) is doing.
 *
 *   gemroute status [--shm NAME] [--json | --prometheus] [--watch [SECONDS]]
 *
 * Reads the segment read-only through a snapshot (snapshot.c) and prints
 * it as a table that fits 100 columns, as one JSON object, or in the
 * Prometheus text exposition format.  Invariants protected: keys are
 * never shown beyond their last four characters; the table has colour
 * only when stdout is a terminal and NO_COLOR is unset, so its plain form
 * is stable for scripts and golden tests; the Prometheus output carries
 * no timestamps (node_exporter's textfile collector refuses them).
 */
#include "cli.h"
#include "snapshot.h"

#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WIDTH 100           /* columns the table fits in */
#define WHY_COL 71          /* where the WHY column starts */

static const char *dim_names[GR_NDIMS] = {"rpm", "tpm", "rpd", "ipm", "tpd"};
static const char *health_states[] = {"healthy", "cooling", "open",
                                      "half_open", "disabled", "draining"};
static const char *op_names[] = {"none", "draining", "disabled"};
static const char *src_names[] = {"none", "RetryInfo", "message", "backoff",
                                  "midnight"};

static volatile sig_atomic_t watch_stop;

/* The open table while one view is printed: a clustered router's
 * per-node view is read through it (gr_stat_cluster()); NULL prints
 * none (a snapshot printed on its own, as the golden tests do). */
static const struct gr_stat *cluster_st;

/* The nodes of c, or 0. */
static unsigned
cell_nodes(const struct gr_stat_cell *c, struct gr_stat_node *out)
{
    if (cluster_st == NULL)
        return 0;
    return gr_stat_cluster(cluster_st, c->slot, c->model_index, out,
                           GR_STAT_NODES);
}

/* Print s as a JSON string. */
void
gr_cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
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

/* Local time with its offset, for JSON: 2026-11-29T09:00:00+0100. */
static void
iso_local(int64_t unix_s, char *buf, size_t n)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    localtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%S%z", &tm);
}

/* ---- JSON ------------------------------------------------------------ */

static void
json_dims(FILE *f, const char *name, const int64_t *v, bool null_negative)
{
    unsigned d;

    fprintf(f, "\"%s\": {", name);
    for (d = 0; d < GR_NDIMS; d++) {
        fprintf(f, "%s\"%s\": ", d ? ", " : "", dim_names[d]);
        if (null_negative && v[d] < 0)
            fputs("null", f);
        else
            fprintf(f, "%lld", (long long)v[d]);
    }
    fputc('}', f);
}

static void
json_headroom(FILE *f, const struct gr_stat_model *m)
{
    unsigned d;

    fputc('{', f);
    for (d = 0; d < GR_NDIMS; d++) {
        fprintf(f, "%s\"%s\": ", d ? ", " : "", dim_names[d]);
        if (m->unlimited[d])
            fputs("null", f);
        else
            fprintf(f, "%.4f", m->capacity[d] > 0 ?
                    (double)m->room[d] / (double)m->capacity[d] : 0.0);
    }
    fputc('}', f);
}

/* A clustered cell: ,"cluster": [{"node", "self", "share", "used"}]. */
static void
json_nodes(FILE *f, const struct gr_stat_cell *c)
{
    struct gr_stat_node nodes[GR_STAT_NODES];
    unsigned n = cell_nodes(c, nodes), k;

    if (n == 0)
        return;
    fputs(",\n   \"cluster\": [", f);
    for (k = 0; k < n; k++) {
        fputs(k ? ", {\"node\": " : "{\"node\": ", f);
        gr_cli_json_str(f, nodes[k].name);
        fprintf(f, ", \"self\": %s, ", nodes[k].self ? "true" : "false");
        json_dims(f, "share", nodes[k].share, true);
        fputs(", ", f);
        json_dims(f, "used", nodes[k].used, true);
        fputc('}', f);
    }
    fputc(']', f);
}

static void
json_cell(FILE *f, const struct gr_stat_cell *c)
{
    unsigned d, k, learned_any = 0;

    fputs("\n  {\"project\": ", f);
    gr_cli_json_str(f, c->project);
    fputs(", \"model\": ", f);
    gr_cli_json_str(f, c->model);
    fprintf(f, ", \"health\": \"%s\", \"reason\": ", c->health);
    gr_cli_json_str(f, c->reason);
    fputs(", \"reasons\": [", f);
    for (k = 0; k < c->n_reasons; k++) {
        fputs(k ? ", " : "", f);
        gr_cli_json_str(f, c->reasons[k]);
    }
    fprintf(f, "], \"operator\": \"%s\", \"key\": ", op_names[c->op]);
    gr_cli_json_str(f, c->key_tail);
    fputs(",\n   ", f);
    json_dims(f, "limit", c->limit, true);
    fputs(", ", f);
    json_dims(f, "config_limit", c->config_limit, true);
    fputs(",\n   ", f);
    json_dims(f, "used", c->used, false);
    fputs(", \"learned\": {", f);
    for (d = 0; d < GR_NDIMS; d++)
        if (c->learned[d] >= 0)
            fprintf(f, "%s\"%s\": %lld", learned_any++ ? ", " : "",
                    dim_names[d], (long long)c->learned[d]);
    fputs("},\n   \"cooldown_s\": {", f);
    for (d = 0; d < GR_NDIMS; d++)
        fprintf(f, "%s\"%s\": %.1f", d ? ", " : "", dim_names[d],
                c->cooldown_s[d] > c->cell_cool_s ? c->cooldown_s[d] :
                c->cell_cool_s);
    fputs("}, \"cooldown_source\": {", f);
    for (d = 0; d < GR_NDIMS; d++)
        fprintf(f, "%s\"%s\": \"%s\"", d ? ", " : "", dim_names[d],
                c->cooldown_s[d] > 0 ? src_names[c->cool_src[d]] :
                c->cell_cool_s > 0 ? "backoff" : "none");
    fprintf(f, "},\n   \"circuit_s\": %.1f, \"failures\": %u, "
            "\"in_flight\": %lld,\n   \"counts\": {\"admitted\": %llu, "
            "\"rejected\": %llu, \"ok\": %llu, \"quota_429\": %llu, "
            "\"server_5xx\": %llu, \"auth\": %llu, \"other\": %llu},\n"
            "   \"quota_429_by_dim\": {", c->circuit_s, c->failures,
            (long long)c->in_flight, (unsigned long long)c->admitted,
            (unsigned long long)c->rejected, (unsigned long long)c->ok,
            (unsigned long long)c->quota_429,
            (unsigned long long)c->server_5xx,
            (unsigned long long)c->auth_err,
            (unsigned long long)c->other_err);
    for (d = 0; d < GR_NDIMS; d++)
        fprintf(f, "\"%s\": %llu, ", dim_names[d],
                (unsigned long long)c->quota_429_dim[d]);
    fprintf(f, "\"none\": %llu}, \"last_status\": %u, \"last_quota_id\": ",
            (unsigned long long)c->quota_429_dim[GR_NDIMS], c->last_status);
    gr_cli_json_str(f, c->last_qid);
    if (c->probe_in_s >= 0)
        fprintf(f, ", \"next_probe_s\": %.1f", c->probe_in_s);
    else
        fputs(", \"next_probe_s\": null", f);
    json_nodes(f, c);
    fputc('}', f);
}

/* Router text as JSON: null when it was torn (never a torn copy). */
static void
json_text(FILE *f, const struct gr_stat_snap *s, const char *v)
{
    if (s->text_ok)
        gr_cli_json_str(f, v);
    else
        fputs("null", f);
}

/* "aliases": {"ALIAS": "MODEL", ...}, from each model's list (alias
 * names hold no ',' or ' '; a list cut short ends in "..."). */
static void
json_aliases(FILE *f, const struct gr_stat_snap *s)
{
    const char *sep = "";
    unsigned m;

    fputs(" \"aliases\": {", f);
    for (m = 0; m < s->n_models; m++) {
        const char *p = s->models[m].aliases;

        while (*p != '\0') {
            size_t n = strcspn(p, ", ");
            char name[GR_NAME_MAX];

            if (n > 0 && n < sizeof(name) && strncmp(p, "...", n) != 0) {
                memcpy(name, p, n);
                name[n] = '\0';
                fputs(sep, f);
                gr_cli_json_str(f, name);
                fputs(": ", f);
                gr_cli_json_str(f, s->models[m].name);
                sep = ", ";
            }
            p += n;
            p += strspn(p, ", ");
        }
    }
    fputs("},\n", f);
}

void
gr_status_json(FILE *f, const struct gr_stat_snap *s)
{
    char reset[32], reset_local[40], reload[32];
    unsigned i, m, k;

    iso_utc(s->next_rpd_reset_s, reset, sizeof(reset));
    iso_local(s->next_rpd_reset_s, reset_local, sizeof(reset_local));
    iso_utc(s->last_reload_wall_s, reload, sizeof(reload));
    fprintf(f, "{\"router\": {\"pid\": %lld, \"alive\": %s, "
            "\"config_generation\": %llu, \"shm\": ",
            (long long)s->router_pid, s->router_alive ? "true" : "false",
            (unsigned long long)s->config_generation);
    gr_cli_json_str(f, s->shm);
    fputs(", \"base_url\": ", f);
    json_text(f, s, s->base_url);
    fprintf(f, ",\n            \"beat_age_s\": %.3f, \"window_s\": %.3f, "
            "\"reaped\": %llu, \"audited\": %llu, \"anomalies\": %llu},\n",
            s->router_beat_age_s, s->window_s,
            (unsigned long long)s->reaped, (unsigned long long)s->audits,
            (unsigned long long)s->anomalies);
    fputs(" \"last_reload\": {\"time\": ", f);
    if (s->last_reload_wall_s > 0)
        fprintf(f, "\"%s\"", reload);
    else
        fputs("null", f);
    fprintf(f, ", \"ok\": %s, \"succeeded\": %u, \"failed\": %u, "
            "\"config\": ", s->last_reload_ok ? "true" : "false",
            s->reloads_ok, s->reloads_failed);
    json_text(f, s, s->config_path);
    fputs(", \"error\": ", f);
    json_text(f, s, s->last_reload_error);
    fprintf(f, "},\n \"next_rpd_reset\": \"%s\", \"next_rpd_reset_local\": "
            "\"%s\",\n \"summary\": {\"projects\": {\"healthy\": %u, "
            "\"cooling\": %u, \"disabled\": %u, \"draining\": %u},\n"
            "             \"headroom\": {", reset, reset_local, s->healthy,
            s->cooling, s->disabled, s->draining);
    for (m = 0; m < s->n_models; m++) {
        fputs(m ? ",\n                          " : "", f);
        gr_cli_json_str(f, s->models[m].name);
        fputs(": ", f);
        json_headroom(f, &s->models[m]);
    }
    fputs("}},\n", f);
    json_aliases(f, s);
    if (!s->text_ok || !s->models_ok || s->n_torn > 0)
        fprintf(f, " \"torn\": {\"text\": %s, \"models\": %s, "
                "\"projects\": %u},\n", s->text_ok ? "false" : "true",
                s->models_ok ? "false" : "true", s->n_torn);
    fputs(" \"projects\": [", f);
    for (i = 0; i < s->n_projects; i++) {
        const struct gr_stat_project *p = &s->projects[i];

        fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
        gr_cli_json_str(f, p->name);
        fprintf(f, ", \"state\": \"%s\", \"slot_state\": \"%s\", "
                "\"operator\": \"%s\", \"auth_failed\": %s, "
                "\"config_enabled\": %s, \"keys\": %u, \"key\": ", p->state,
                p->removing ? "removing" : "active", op_names[p->op],
                p->auth_failed ? "true" : "false",
                p->config_enabled ? "true" : "false", p->n_keys);
        gr_cli_json_str(f, p->key_tail);
        fputs(", \"keys_refused\": [", f);
        for (k = 0; k < 32; k++)
            if (p->keys_refused & (1u << k))
                fprintf(f, "%s%u", (p->keys_refused & ((1u << k) - 1))
                                       ? ", " : "", k + 1);
        if (p->probe_in_s >= 0)
            fprintf(f, "], \"next_probe_s\": %.1f}", p->probe_in_s);
        else
            fputs("], \"next_probe_s\": null}", f);
    }
    fputs("\n ],\n \"cells\": [", f);
    for (i = 0; i < s->n_cells; i++) {
        fputs(i ? "," : "", f);
        json_cell(f, &s->cells[i]);
    }
    fputs("\n ]", f);
    gr_status_extras(f, &s->extras, GR_EXTRAS_JSON);
    gr_status_spend(f, s, GR_EXTRAS_JSON);
    fputs("}\n", f);
}

/* ---- Prometheus ------------------------------------------------------ */

static void
prom_value(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fprintf(f, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void
prom_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{project="..",model=".."[,extra="value"]} */
static void
prom_cell(FILE *f, const char *name, const struct gr_stat_cell *c,
          const char *extra, const char *value)
{
    fprintf(f, "%s{project=", name);
    prom_value(f, c->project);
    fputs(",model=", f);
    prom_value(f, c->model);
    if (extra != NULL) {
        fprintf(f, ",%s=", extra);
        prom_value(f, value);
    }
    fputs("} ", f);
}

/* One gauge family over every cell and dimension; values < 0 (or < 1
 * with skip_zero) are left out. */
static void
prom_dims(FILE *f, const struct gr_stat_snap *s, const char *name,
          const char *help, size_t offset, bool skip_negative)
{
    unsigned i, d;

    prom_family(f, name, "gauge", help);
    for (i = 0; i < s->n_cells; i++) {
        const int64_t *v = (const int64_t *)(const void *)
            ((const char *)&s->cells[i] + offset);

        for (d = 0; d < GR_NDIMS; d++) {
            if (skip_negative && v[d] < 0)
                continue;
            prom_cell(f, name, &s->cells[i], "dim", dim_names[d]);
            fprintf(f, "%lld\n", (long long)v[d]);
        }
    }
}

static void
prom_counter(FILE *f, const struct gr_stat_snap *s, const char *name,
             const char *help, size_t offset)
{
    unsigned i;

    prom_family(f, name, "counter", help);
    for (i = 0; i < s->n_cells; i++) {
        const uint64_t *v = (const uint64_t *)(const void *)
            ((const char *)&s->cells[i] + offset);

        prom_cell(f, name, &s->cells[i], NULL, NULL);
        fprintf(f, "%llu\n", (unsigned long long)*v);
    }
}

/* A clustered router's view: each node's share (or use) per cell and
 * dimension.  Nothing when the table is not clustered. */
static void
prom_nodes(FILE *f, const struct gr_stat_snap *s, bool share)
{
    struct gr_stat_node nodes[GR_STAT_NODES];
    const char *name = share ? "gemroute_cluster_share"
                             : "gemroute_cluster_used";
    bool head = false;
    unsigned i, k, d, n;

    for (i = 0; i < s->n_cells; i++) {
        n = cell_nodes(&s->cells[i], nodes);
        for (k = 0; k < n; k++) {
            for (d = 0; d < GR_NDIMS; d++) {
                int64_t v = share ? nodes[k].share[d] : nodes[k].used[d];

                if (v < 0)
                    continue;
                if (!head)
                    prom_family(f, name, "gauge", share
                        ? "Units of the global limit each node holds "
                          "(clustered routers, docs/CLUSTER.md)."
                        : "What each node's table counted, as it told "
                          "Redis.");
                head = true;
                fprintf(f, "%s{project=", name);
                prom_value(f, s->cells[i].project);
                fputs(",model=", f);
                prom_value(f, s->cells[i].model);
                fputs(",node=", f);
                prom_value(f, nodes[k].name);
                fprintf(f, ",dim=\"%s\"} %lld\n", dim_names[d],
                        (long long)v);
            }
        }
    }
}

void
gr_status_prometheus(FILE *f, const struct gr_stat_snap *s)
{
    unsigned i, d, k;

    prom_family(f, "gemroute_router_up", "gauge",
                "1 when the router that owns the table is alive.");
    fprintf(f, "gemroute_router_up %d\n", s->router_alive ? 1 : 0);
    prom_family(f, "gemroute_config_generation", "gauge",
                "Configurations applied since the table was created.");
    fprintf(f, "gemroute_config_generation %llu\n",
            (unsigned long long)s->config_generation);
    prom_family(f, "gemroute_reloads_total", "counter",
                "Configuration loads by result (the first one included).");
    fprintf(f, "gemroute_reloads_total{result=\"success\"} %u\n"
            "gemroute_reloads_total{result=\"failure\"} %u\n",
            s->reloads_ok, s->reloads_failed);
    prom_family(f, "gemroute_last_reload_success", "gauge",
                "1 when the last reload was applied, 0 when refused.");
    fprintf(f, "gemroute_last_reload_success %d\n", s->last_reload_ok);
    prom_family(f, "gemroute_last_reload_timestamp_seconds", "gauge",
                "Unix time of the last reload.");
    fprintf(f, "gemroute_last_reload_timestamp_seconds %lld\n",
            (long long)s->last_reload_wall_s);
    prom_family(f, "gemroute_next_rpd_reset_timestamp_seconds", "gauge",
                "Unix time of the next Pacific midnight (daily quotas "
                "reset).");
    fprintf(f, "gemroute_next_rpd_reset_timestamp_seconds %lld\n",
            (long long)s->next_rpd_reset_s);
    prom_family(f, "gemroute_projects", "gauge", "Projects by state.");
    fprintf(f, "gemroute_projects{state=\"healthy\"} %u\n"
            "gemroute_projects{state=\"cooling\"} %u\n"
            "gemroute_projects{state=\"disabled\"} %u\n"
            "gemroute_projects{state=\"draining\"} %u\n", s->healthy,
            s->cooling, s->disabled, s->draining);
    prom_family(f, "gemroute_pool_headroom_ratio", "gauge",
                "Room left now over the capacity in rotation, per model and "
                "dimension (absent when unlimited).");
    for (k = 0; k < s->n_models; k++) {
        for (d = 0; d < GR_NDIMS; d++) {
            const struct gr_stat_model *m = &s->models[k];

            if (m->unlimited[d])
                continue;
            fputs("gemroute_pool_headroom_ratio{model=", f);
            prom_value(f, m->name);
            fprintf(f, ",dim=\"%s\"} %.4f\n", dim_names[d],
                    m->capacity[d] > 0 ?
                    (double)m->room[d] / (double)m->capacity[d] : 0.0);
        }
    }
    prom_dims(f, s, "gemroute_quota_used",
              "Quota counted now: requests or tokens in the sliding window, "
              "requests today (Pacific).",
              offsetof(struct gr_stat_cell, used), false);
    prom_dims(f, s, "gemroute_quota_limit",
              "Effective limit (headroom and learned limits applied); "
              "absent when unlimited.",
              offsetof(struct gr_stat_cell, limit), true);
    prom_dims(f, s, "gemroute_quota_config_limit",
              "Configured limit before headroom; absent when unlimited.",
              offsetof(struct gr_stat_cell, config_limit), true);
    prom_dims(f, s, "gemroute_quota_learned_limit",
              "Limit Google stated in a 429; absent when none.",
              offsetof(struct gr_stat_cell, learned), true);
    prom_family(f, "gemroute_cooldown_seconds", "gauge",
                "Seconds until the dimension takes calls again.");
    for (i = 0; i < s->n_cells; i++) {
        const struct gr_stat_cell *c = &s->cells[i];

        for (d = 0; d < GR_NDIMS; d++) {
            prom_cell(f, "gemroute_cooldown_seconds", c, "dim",
                      dim_names[d]);
            fprintf(f, "%.3f\n", c->cooldown_s[d] > c->cell_cool_s ?
                    c->cooldown_s[d] : c->cell_cool_s);
        }
    }
    prom_family(f, "gemroute_in_flight", "gauge",
                "Calls admitted and not yet settled.");
    for (i = 0; i < s->n_cells; i++) {
        prom_cell(f, "gemroute_in_flight", &s->cells[i], NULL, NULL);
        fprintf(f, "%lld\n", (long long)s->cells[i].in_flight);
    }
    prom_family(f, "gemroute_health", "gauge",
                "1 for the state each project and model is in, 0 for the "
                "others.");
    for (i = 0; i < s->n_cells; i++) {
        for (k = 0; k < sizeof(health_states) / sizeof(health_states[0]);
             k++) {
            prom_cell(f, "gemroute_health", &s->cells[i], "state",
                      health_states[k]);
            fprintf(f, "%d\n",
                    strcmp(s->cells[i].health, health_states[k]) == 0);
        }
    }
    prom_counter(f, s, "gemroute_admitted_total", "Reservations admitted.",
                 offsetof(struct gr_stat_cell, admitted));
    prom_counter(f, s, "gemroute_rejected_total",
                 "Admissions tried and refused for lack of room.",
                 offsetof(struct gr_stat_cell, rejected));
    prom_counter(f, s, "gemroute_ok_total", "Calls reported successful.",
                 offsetof(struct gr_stat_cell, ok));
    prom_family(f, "gemroute_quota_429_total", "counter",
                "429 answers by the dimension they named (none: no "
                "details).");
    for (i = 0; i < s->n_cells; i++) {
        for (d = 0; d <= GR_NDIMS; d++) {
            prom_cell(f, "gemroute_quota_429_total", &s->cells[i], "dim",
                      d < GR_NDIMS ? dim_names[d] : "none");
            fprintf(f, "%llu\n",
                    (unsigned long long)s->cells[i].quota_429_dim[d]);
        }
    }
    prom_counter(f, s, "gemroute_server_5xx_total",
                 "Server errors, overloads and timeouts.",
                 offsetof(struct gr_stat_cell, server_5xx));
    prom_counter(f, s, "gemroute_auth_errors_total", "Keys rejected.",
                 offsetof(struct gr_stat_cell, auth_err));
    prom_counter(f, s, "gemroute_other_errors_total",
                 "Other errors (model not found, bad requests).",
                 offsetof(struct gr_stat_cell, other_err));
    prom_family(f, "gemroute_reaped_total", "counter",
                "Leases the router settled for dead or stuck clients.");
    fprintf(f, "gemroute_reaped_total %llu\n",
            (unsigned long long)s->reaped);
    prom_family(f, "gemroute_anomalies_total", "counter",
                "Bad values found in the table and skipped.");
    fprintf(f, "gemroute_anomalies_total %llu\n",
            (unsigned long long)s->anomalies);
    gr_status_extras(f, &s->extras, GR_EXTRAS_PROM);
    gr_status_spend(f, s, GR_EXTRAS_PROM);
    prom_nodes(f, s, true);
    prom_nodes(f, s, false);
}

/* ---- the table ------------------------------------------------------- */

/* One line, cut at WIDTH columns (the text is ASCII: bytes = columns). */
static void
line(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
line(FILE *f, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(f, "%.*s\n", WIDTH, buf);
}

static const char *
health_colour(const char *h)
{
    if (strcmp(h, "healthy") == 0)
        return "32";
    if (strcmp(h, "cooling") == 0)
        return "33";
    if (strcmp(h, "disabled") == 0)
        return "31";
    if (strcmp(h, "draining") == 0)
        return "36";
    return "35";    /* open, half_open */
}

/* One dimension's cell, 6 columns: " 100%", "    -" (unlimited),
 * "  off" (not available).  With colour, a bar behind the text: one
 * fifth of the cell per 20%. */
static void
dim_cell(FILE *f, int64_t used, int64_t limit, bool colour)
{
    char txt[16];
    int64_t pct = 0;
    int k;

    /* Four columns a dimension (five dimensions since TPD, in the
     * width four had): "999%" at most. */
    if (limit < 0) {
        snprintf(txt, sizeof(txt), "%4s", "-");
    } else if (limit == 0) {
        snprintf(txt, sizeof(txt), "%4s", "off");
    } else {
        pct = used * 100 / limit;
        if (pct > 999)
            pct = 999;
        if (pct < 0)
            pct = 0;
        snprintf(txt, sizeof(txt), "%3lld%%", (long long)pct);
    }
    if (!colour || limit <= 0) {
        fprintf(f, " %s", txt);
        return;
    }
    k = (int)((pct * 4 + 99) / 100);
    if (k > 4)
        k = 4;
    fprintf(f, " \033[30;%sm%.*s\033[0m%s", pct < 70 ? "42" : pct < 90 ?
            "43" : "41", k, txt, txt + k);
}

static void
table_head(FILE *f, const struct gr_stat_snap *s, bool colour)
{
    char when[32], reset[32], local[48], win[16];
    time_t t = (time_t)s->next_rpd_reset_s;
    struct tm tm;

    if (s->window_s >= 1 && s->window_s == floor(s->window_s))
        snprintf(win, sizeof(win), "%.0fs", s->window_s);
    else
        snprintf(win, sizeof(win), "%.0fms", s->window_s * 1000);
    line(f, "gemroute %s  router pid %lld %s%s%s  config gen %llu  "
         "window %s", s->shm, (long long)s->router_pid,
         colour && !s->router_alive ? "\033[31m" : "",
         s->router_alive ? "alive" : "DEAD",
         colour && !s->router_alive ? "\033[0m" : "",
         (unsigned long long)s->config_generation, win);
    iso_utc(s->last_reload_wall_s, when, sizeof(when));
    if (s->last_reload_wall_s <= 0)
        line(f, "last reload: none");
    else
        line(f, "last reload %s %s%s%s (%u ok, %u failed)", when,
             colour && !s->last_reload_ok ? "\033[31m" : "",
             s->last_reload_ok ? "ok" : "FAILED",
             colour && !s->last_reload_ok ? "\033[0m" : "",
             s->reloads_ok, s->reloads_failed);
    if (!s->last_reload_ok && s->last_reload_error[0] != '\0')
        line(f, "  %s", s->last_reload_error);
    if (!s->text_ok)
        line(f, "router text (config, last error, base URL): "
             "torn/unavailable");
    if (!s->models_ok)
        line(f, "model names: torn/unavailable (no cell shown)");
    if (s->n_torn > 0)
        line(f, "%u project slot%s torn/unavailable: not shown", s->n_torn,
             s->n_torn == 1 ? "" : "s");
    line(f, "projects: %u healthy, %u cooling, %u disabled, %u draining",
         s->healthy, s->cooling, s->disabled, s->draining);
    iso_utc(s->next_rpd_reset_s, reset, sizeof(reset));
    localtime_r(&t, &tm);
    strftime(local, sizeof(local), "%Y-%m-%d %H:%M %Z", &tm);
    line(f, "next RPD reset %s = 00:00 PT = %s", reset, local);
}

static void
model_head(FILE *f, const struct gr_stat_model *m)
{
    char part[GR_NDIMS][24];
    unsigned d;

    for (d = 0; d < GR_NDIMS; d++) {
        if (m->unlimited[d])
            snprintf(part[d], sizeof(part[d]), "%s -", dim_names[d]);
        else
            snprintf(part[d], sizeof(part[d]), "%s %lld%%", dim_names[d],
                     (long long)(m->capacity[d] > 0 ?
                                 m->room[d] * 100 / m->capacity[d] : 0));
    }
    fputc('\n', f);
    line(f, "%s  pool headroom: %s  %s  %s  %s  %s", m->name, part[0],
         part[1], part[2], part[3], part[4]);
    if (m->aliases[0] != '\0')
        line(f, "aliases: %s", m->aliases);
    line(f, "%-15s %-9s %4s %4s %4s %4s %4s %3s %5s  %-7s  %s", "PROJECT",
         "HEALTH", "RPM", "TPM", "RPD", "IPM", "TPD", "FLY", "ERR", "KEY",
         "WHY");
}

/* A clustered cell: one line per node, "node share (used)" per
 * shared dimension; * marks this router's node. */
static void
table_nodes(FILE *f, const struct gr_stat_cell *c)
{
    struct gr_stat_node nodes[GR_STAT_NODES];
    unsigned n = cell_nodes(c, nodes), k, d;
    char a[16], b[16];

    for (k = 0; k < n; k++) {
        fprintf(f, "  node %-14.14s%c", nodes[k].name,
                nodes[k].self ? '*' : ' ');
        for (d = 0; d < GR_NDIMS; d++) {
            if (nodes[k].share[d] < 0)
                continue;
            gr_stat_num(nodes[k].share[d], a, sizeof(a));
            gr_stat_num(nodes[k].used[d] < 0 ? 0 : nodes[k].used[d], b,
                        sizeof(b));
            fprintf(f, " %s share %s (used %s)", dim_names[d], a, b);
        }
        fputc('\n', f);
    }
}

static void
table_row(FILE *f, const struct gr_stat_cell *c, bool colour)
{
    uint64_t errs = c->quota_429 + c->server_5xx + c->auth_err +
                    c->other_err;
    char err[16];
    unsigned d, k;

    fprintf(f, "%-15.15s ", c->project);
    if (colour)
        fprintf(f, "\033[%sm%-9s\033[0m", health_colour(c->health),
                c->health);
    else
        fprintf(f, "%-9s", c->health);
    for (d = 0; d < GR_NDIMS; d++)
        dim_cell(f, c->used[d], c->limit[d], colour);
    gr_stat_num((int64_t)errs, err, sizeof(err));
    fprintf(f, " %3lld %5s  %-7s", (long long)c->in_flight, err,
            c->key_tail);
    if (c->n_reasons == 0) {
        fputc('\n', f);
    } else {
        fprintf(f, "  %.*s\n", WIDTH - WHY_COL, c->reasons[0]);
        for (k = 1; k < c->n_reasons; k++)
            fprintf(f, "%*s%.*s\n", WHY_COL, "", WIDTH - WHY_COL,
                    c->reasons[k]);
    }
    table_nodes(f, c);
}

void
gr_status_table(FILE *f, const struct gr_stat_snap *s, bool colour)
{
    unsigned m, i;

    table_head(f, s, colour);
    for (m = 0; m < s->n_models; m++) {
        bool any = false;

        for (i = 0; i < s->n_cells && !any; i++)
            any = s->cells[i].model_index == m;
        if (!any)
            continue;
        model_head(f, &s->models[m]);
        for (i = 0; i < s->n_cells; i++)
            if (s->cells[i].model_index == m)
                table_row(f, &s->cells[i], colour);
    }
    if (s->n_cells == 0)
        line(f, "\n(no project in the table)");
    gr_status_extras(f, &s->extras, GR_EXTRAS_TABLE);
    gr_status_spend(f, s, GR_EXTRAS_TABLE);
}

/* ---- the command ----------------------------------------------------- */

static bool
want_colour(void)
{
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");

    return isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0') &&
           (term == NULL || strcmp(term, "dumb") != 0);
}

enum view { VIEW_TABLE, VIEW_JSON, VIEW_PROM };

static int
show_once(const char *name, enum view v, bool colour, FILE *out)
{
    struct gr_stat_snap s;
    struct gr_stat *st;
    char err[256];

    st = gr_stat_open(name, err, sizeof(err));
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (gr_stat_take(st, &s) != GR_OK) {
        fprintf(stderr, "gemroute: out of memory\n");
        gr_stat_close(st);
        return 1;
    }
    cluster_st = st;
    if (v == VIEW_JSON) {
        gr_status_json(out, &s);
    } else if (v == VIEW_PROM) {
        gr_status_prometheus(out, &s);
        gr_cli_resources_line(out, st, true);
        gr_cli_batch_lines(out, st, true);
    } else {
        gr_status_table(out, &s, colour);
        gr_cli_resources_line(out, st, false);
        gr_cli_batch_lines(out, st, false);
    }
    cluster_st = NULL;
    gr_stat_close(st);
    gr_stat_free(&s);
    return 0;
}

static void
on_watch_stop(int sig)
{
    (void)sig;
    watch_stop = 1;
}

/*
 * Redraw the table every `every` seconds until Ctrl-C.  Each frame is
 * built in memory and written at once (no flicker); the table is
 * re-attached every frame, so a restarted router is picked up.
 */
static int
watch(const char *name, double every, bool colour)
{
    bool tty = isatty(STDOUT_FILENO);
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_watch_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!watch_stop) {
        struct timespec ts = {(time_t)every,
                              (long)((every - floor(every)) * 1e9)};
        char *frame = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&frame, &len);

        if (mem == NULL)
            return 1;
        if (tty)
            fputs("\033[H\033[J", mem);
        fprintf(mem, "every %.1fs, Ctrl-C to quit\n", every);
        show_once(name, VIEW_TABLE, colour, mem);
        if (!tty)
            fputc('\n', mem);
        fclose(mem);
        fwrite(frame, 1, len, stdout);
        fflush(stdout);
        free(frame);
        nanosleep(&ts, NULL);
    }
    return 0;
}

static const char usage[] =
    "usage: gemroute status [--shm NAME] [--json | --prometheus]\n"
    "                       [--watch [SECONDS]]\n"
    "  The table (colour on a terminal unless NO_COLOR is set), one JSON\n"
    "  object, or the Prometheus text format.  --watch redraws the table\n"
    "  every SECONDS (default 2) until Ctrl-C.\n";

int
gr_cli_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"prometheus", no_argument, NULL, 'p'},
        {"watch", optional_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = gr_cli_take_shm(&argc, argv);
    enum view v = VIEW_TABLE;
    double every = 0;
    char *end;
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            v = VIEW_JSON;
            break;
        case 'p':
            v = VIEW_PROM;
            break;
        case 'w':
            every = 2;
            if (optarg == NULL && optind < argc && argv[optind][0] != '-')
                optarg = argv[optind++];
            if (optarg != NULL) {
                every = strtod(optarg, &end);
                if (*end != '\0' || !(every >= 0.1 && every <= 86400)) {
                    fprintf(stderr, "gemroute status: --watch wants "
                            "seconds from 0.1 to 86400, not '%s'\n", optarg);
                    return 2;
                }
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (every > 0 && v != VIEW_TABLE) {
        fputs("gemroute status: --watch shows the table only\n", stderr);
        return 2;
    }
    if (every > 0)
        return watch(name, every, want_colour());
    return show_once(name, v, want_colour(), stdout);
}
