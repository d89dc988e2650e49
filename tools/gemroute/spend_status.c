/*
 * spend_status.c - the spend caps' part of `gemroute status` (table,
 * JSON, Prometheus): per project and for the pool, what the Pacific day
 * and month have counted (settled costs plus reservations in flight)
 * and the caps.  Nothing at all when the router counts no spend (no cap
 * configured), so the views of a pool without caps are unchanged.
 */
#include "cli.h"
#include "snapshot.h"

#include <stdio.h>

static double
usd(int64_t micro)
{
    return (double)micro / 1e6;
}

static void
json_one(FILE *f, const struct gr_stat_spend *sp)
{
    fprintf(f, "{\"today_usd\": %.6f, \"month_usd\": %.6f, "
            "\"cap_day_usd\": ", usd(sp->day), usd(sp->month));
    if (sp->cap_day > 0)
        fprintf(f, "%.6f", usd(sp->cap_day));
    else
        fputs("null", f);
    fputs(", \"cap_month_usd\": ", f);
    if (sp->cap_month > 0)
        fprintf(f, "%.6f", usd(sp->cap_month));
    else
        fputs("null", f);
    fprintf(f, ", \"refused\": %llu}", (unsigned long long)sp->refused);
}

static void
cap_text(char *buf, size_t n, int64_t cap)
{
    if (cap > 0)
        snprintf(buf, n, "$%.2f", usd(cap));
    else
        snprintf(buf, n, "none");
}

static void
table_one(FILE *f, const char *who, const struct gr_stat_spend *sp)
{
    char cd[32], cm[32];

    cap_text(cd, sizeof(cd), sp->cap_day);
    cap_text(cm, sizeof(cm), sp->cap_month);
    fprintf(f, "  %-15.15s today $%.4f (cap %s)  month $%.4f (cap %s)"
            "  refused %llu\n", who, usd(sp->day), cd, usd(sp->month), cm,
            (unsigned long long)sp->refused);
}

/* One family's samples for the pool (project "") and every project: a
 * family's lines stay together, as the text format requires. */
static void
prom_family_of(FILE *f, const struct gr_stat_snap *s, int which)
{
    static const char *const period[2] = {"day", "month"};
    unsigned i;
    int k;

    for (i = 0; i <= s->n_projects; i++) {
        const struct gr_stat_spend *sp = i == 0 ? &s->spend_pool
                                                : &s->projects[i - 1].spend;
        const char *project = i == 0 ? "" : s->projects[i - 1].name;
        int64_t v[2] = {sp->day, sp->month};
        int64_t cap[2] = {sp->cap_day, sp->cap_month};

        if (which == 2) {
            fputs("gemroute_spend_refused_total{project=", f);
            gr_cli_json_str(f, project);
            fprintf(f, "} %llu\n", (unsigned long long)sp->refused);
            continue;
        }
        for (k = 0; k < 2; k++) {
            if (which == 1 && cap[k] <= 0)
                continue;
            fputs(which == 0 ? "gemroute_spend_usd{project="
                             : "gemroute_spend_cap_usd{project=", f);
            gr_cli_json_str(f, project);
            fprintf(f, ",period=\"%s\"} %.6f\n", period[k],
                    usd(which == 0 ? v[k] : cap[k]));
        }
    }
}

void
gr_status_spend(FILE *f, const struct gr_stat_snap *s, enum gr_extras_view v)
{
    unsigned i;

    if (!s->spend_pool.counted)
        return;
    switch (v) {
    case GR_EXTRAS_TABLE:
        fputs("\nspend (Pacific day and month; settled + in flight)\n", f);
        table_one(f, "(pool)", &s->spend_pool);
        for (i = 0; i < s->n_projects; i++)
            table_one(f, s->projects[i].name, &s->projects[i].spend);
        break;
    case GR_EXTRAS_JSON:
        fputs(",\n \"spend\": {\"pool\": ", f);
        json_one(f, &s->spend_pool);
        fputs(", \"projects\": {", f);
        for (i = 0; i < s->n_projects; i++) {
            fputs(i ? ",\n   " : "\n   ", f);
            gr_cli_json_str(f, s->projects[i].name);
            fputs(": ", f);
            json_one(f, &s->projects[i].spend);
        }
        fputs("}}", f);
        break;
    case GR_EXTRAS_PROM:
        fputs("# HELP gemroute_spend_usd Counted spend (settled plus "
              "reserved in flight) of the Pacific day or month; project "
              "\"\" is the pool.\n# TYPE gemroute_spend_usd gauge\n", f);
        prom_family_of(f, s, 0);
        fputs("# HELP gemroute_spend_cap_usd Spend cap of the Pacific day "
              "or month (absent: none).\n"
              "# TYPE gemroute_spend_cap_usd gauge\n", f);
        prom_family_of(f, s, 1);
        fputs("# HELP gemroute_spend_refused_total Calls refused by a spend "
              "cap.\n# TYPE gemroute_spend_refused_total counter\n", f);
        prom_family_of(f, s, 2);
        break;
    }
}
