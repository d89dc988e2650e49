/*
 * batch_cmd.c - `gemroute batch`: Gemini's batch mode as a quota of its
 * own, from the command line, JSONL in and JSONL out.
 *
 *   gemroute batch submit --model M [--split] [--wait S] [--project P]
 *                         [--display NAME] [FILE|-]
 *   gemroute batch status --model M [NAME...]      (names, or stdin)
 *   gemroute batch results --model M NAME...       (names, or stdin)
 *   gemroute batch pools [--json]
 *
 * submit reads one request per line (a GenerateContentRequest, or
 * {"key": K, "request": {...}} as in Google's input files) and submits
 * one job (gr_batch_submit()); --split spreads the lines over several
 * projects' pools, one job per project, the pool with most room first.
 * It prints one JSON line per job: name, project, model, tokens,
 * requests, first (the index of its first input line).  status and
 * results take those lines (or names) and print one JSON line per job,
 * or per result.  pools shows the gauges (gr_stat_batch_pools()).  The
 * tool uses the library only; keys never appear.  Exit 0, 1 on failure,
 * 2 on bad usage.
 */
#include "cli.h"
#include "snapshot.h"

#include "gemroute.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: gemroute batch submit --model M [--split] [--wait S]\n"
    "                             [--project P] [--display NAME] [FILE|-]\n"
    "       gemroute batch status --model M [NAME...]\n"
    "       gemroute batch results --model M [NAME...]\n"
    "       gemroute batch pools [--json]\n"
    "  submit: one request per line (a GenerateContentRequest, or\n"
    "  {\"key\": K, \"request\": {...}}); one job, or with --split one job\n"
    "  per project whose pool has room.  Prints one JSON line per job.\n"
    "  status/results: job names as arguments, or submit's lines on\n"
    "  stdin.  Prints one JSON line per job, or per result.\n";

/* ---- a small reader of JSON text (no parser in the tool) ------------- */

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* The end of the string starting at p ('"'), after its closing quote. */
static const char *
skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* The end of the value starting at p, or NULL when it is cut. */
static const char *
skip_value(const char *p, const char *end)
{
    int depth = 0;

    p = skip_ws(p, end);
    if (p >= end)
        return NULL;
    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' &&
               *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
            p++;
        return p;
    }
    for (; p < end; p++) {
        if (*p == '"') {
            p = skip_string(p, end);
            if (p == NULL)
                return NULL;
            p--;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
    }
    return NULL;
}

/* The value of the top-level member name of the object in [s, end):
 * true with [*v, *vend). */
static bool
member(const char *s, const char *end, const char *name, const char **v,
       const char **vend)
{
    size_t n = strlen(name);
    const char *p = skip_ws(s, end), *k;

    if (p >= end || *p != '{')
        return false;
    p++;
    for (;;) {
        p = skip_ws(p, end);
        if (p >= end || *p != '"')
            return false;
        k = p + 1;
        p = skip_string(p, end);
        if (p == NULL)
            return false;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        p = skip_ws(p + 1, end);
        *v = p;
        p = skip_value(p, end);
        if (p == NULL)
            return false;
        if (strncmp(k, name, n) == 0 && k[n] == '"') {
            *vend = p;
            return true;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ',')
            return false;
        p++;
    }
}

/* A top-level string member, unescaped only of \" and \\, into out. */
static bool
member_str(const char *s, const char *name, char *out, size_t n)
{
    const char *v, *vend, *p;
    size_t k = 0;

    if (!member(s, s + strlen(s), name, &v, &vend) || *v != '"')
        return false;
    for (p = v + 1; p < vend - 1 && k + 1 < n; p++) {
        if (*p == '\\' && p + 1 < vend - 1)
            p++;
        out[k++] = *p;
    }
    out[k] = '\0';
    return true;
}

/* ---- input lines ------------------------------------------------------ */

struct line {
    char *request;              /* the GenerateContentRequest, as text */
    char *key;                  /* the key as JSON text */
    int64_t tokens;
};

struct lines {
    struct line *v;
    size_t n, cap;
};

static void
lines_free(struct lines *ls)
{
    size_t i;

    for (i = 0; i < ls->n; i++) {
        free(ls->v[i].request);
        free(ls->v[i].key);
    }
    free(ls->v);
}

static char *
dup_range(const char *a, const char *b)
{
    char *s = malloc((size_t)(b - a) + 1);

    if (s != NULL) {
        memcpy(s, a, (size_t)(b - a));
        s[b - a] = '\0';
    }
    return s;
}

static int
read_lines(FILE *in, const char *what, struct lines *ls)
{
    char *buf = NULL;
    size_t cap = 0, no = 0;
    ssize_t got;

    while ((got = getline(&buf, &cap, in)) >= 0) {
        const char *s = buf, *end = buf + got, *v, *vend, *kv, *kend;
        struct line *l;
        char num[32];

        no++;
        while (end > s && (end[-1] == '\n' || end[-1] == '\r' ||
                           end[-1] == ' '))
            end--;
        s = skip_ws(s, end);
        if (s == end)
            continue;
        if (*s != '{' || skip_value(s, end) != end) {
            fprintf(stderr, "gemroute: %s:%zu: not one JSON object\n", what,
                    no);
            free(buf);
            return -1;
        }
        if (ls->n == ls->cap) {
            size_t nc = ls->cap ? ls->cap * 2 : 64;
            struct line *nv = realloc(ls->v, nc * sizeof(*nv));

            if (nv == NULL)
                break;
            ls->v = nv;
            ls->cap = nc;
        }
        l = &ls->v[ls->n];
        memset(l, 0, sizeof(*l));
        if (member(s, end, "request", &v, &vend) && *v == '{') {
            l->request = dup_range(v, vend);
            if (member(s, end, "key", &kv, &kend))
                l->key = dup_range(kv, kend);
        } else {
            l->request = dup_range(s, end);
        }
        if (l->key == NULL) {
            snprintf(num, sizeof(num), "\"%zu\"", ls->n + 1);
            l->key = strdup(num);
        }
        if (l->request == NULL || l->key == NULL) {
            free(l->request);
            free(l->key);
            break;
        }
        l->tokens = gr_batch_estimate(l->request, strlen(l->request));
        ls->n++;
    }
    free(buf);
    if (!feof(in)) {
        fprintf(stderr, "gemroute: %s: out of memory\n", what);
        return -1;
    }
    return 0;
}

/* The BatchGenerateContentRequest of lines [a, b). */
static char *
body_of(const struct lines *ls, size_t a, size_t b, const char *display,
        size_t *len)
{
    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    size_t i;

    if (f == NULL)
        return NULL;
    fputs("{\"batch\": {\"displayName\": ", f);
    gr_cli_json_str(f, display);
    fputs(", \"inputConfig\": {\"requests\": {\"requests\": [", f);
    for (i = a; i < b; i++)
        fprintf(f, "%s\n{\"request\": %s, \"metadata\": {\"key\": %s}}",
                i > a ? "," : "", ls->v[i].request, ls->v[i].key);
    fputs("]}}}}\n", f);
    if (fclose(f) != 0) {
        free(out);
        return NULL;
    }
    *len = n;
    return out;
}

/* ---- submit ----------------------------------------------------------- */

struct room {
    char project[GR_NAME_MAX];
    int64_t room;               /* tokens free now; INT64_MAX unlimited */
    int64_t limit;              /* INT64_MAX unlimited */
};

static int
cmp_room(const void *a, const void *b)
{
    const struct room *x = a, *y = b;

    return x->room < y->room ? 1 : x->room > y->room ? -1 : 0;
}

/* The pools of model with room for one more job, most room first. */
static int
rooms_of(const char *shm, const char *model, struct room **out)
{
    struct gr_stat_batch_pool *ps = NULL;
    struct gr_stat *st;
    struct room *rs;
    char err[256];
    int n, i, k = 0;

    if ((st = gr_stat_open(shm, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    n = gr_stat_batch_pools(st, NULL, 0, NULL);
    if (n > 0 && (ps = calloc((size_t)n, sizeof(*ps))) != NULL)
        n = gr_stat_batch_pools(st, ps, n, NULL);
    gr_stat_close(st);
    rs = calloc(n > 0 ? (size_t)n : 1, sizeof(*rs));
    if (n < 0 || ps == NULL || rs == NULL) {
        free(ps);
        free(rs);
        fprintf(stderr, "gemroute: no batch pools (is gemrouted "
                "running?)\n");
        return -1;
    }
    for (i = 0; i < n; i++) {
        const struct gr_stat_batch_pool *p = &ps[i];

        if (!p->configured || strcmp(p->model, model) != 0 ||
            p->tokens_limit == 0 || p->jobs_limit == 0 ||
            (p->jobs_limit > 0 && p->jobs_used >= p->jobs_limit))
            continue;
        snprintf(rs[k].project, sizeof(rs[k].project), "%s", p->project);
        rs[k].limit = p->tokens_limit < 0 ? INT64_MAX : p->tokens_limit;
        rs[k].room = p->tokens_limit < 0 ? INT64_MAX
                                         : p->tokens_limit - p->tokens_used;
        k++;
    }
    free(ps);
    qsort(rs, (size_t)k, sizeof(*rs), cmp_room);
    *out = rs;
    return k;
}

static void
print_job(const struct gr_batch_job *j, const char *model, size_t requests,
          size_t first)
{
    fputs("{\"name\": ", stdout);
    gr_cli_json_str(stdout, j->name);
    fputs(", \"project\": ", stdout);
    gr_cli_json_str(stdout, j->project);
    fputs(", \"model\": ", stdout);
    gr_cli_json_str(stdout, model);
    printf(", \"tokens\": %" PRId64 ", \"requests\": %zu, \"first\": %zu, "
           "\"state\": ", j->tokens, requests, first);
    gr_cli_json_str(stdout, j->state);
    fputs("}\n", stdout);
    fflush(stdout);
}

/* Submit lines [a, b) as one job (on project, "" = any). */
static int
submit_one(struct gr *g, const char *model, const struct lines *ls,
           size_t a, size_t b, const char *project, const char *display,
           double wait_s)
{
    struct gr_batch_opts o;
    struct gr_batch_job job;
    struct gr_response resp;
    char *body;
    size_t len = 0, i;
    int rc;

    body = body_of(ls, a, b, display, &len);
    if (body == NULL) {
        fprintf(stderr, "gemroute: out of memory\n");
        return 1;
    }
    memset(&o, 0, sizeof(o));
    o.project = project;
    o.deadline_ns = wait_s > 0 ? gr_now_ns() + (int64_t)(wait_s * 1e9) : 0;
    o.est_tokens = 0;
    for (i = a; i < b; i++)
        o.est_tokens += ls->v[i].tokens;
    rc = gr_batch_submit(g, model, body, len, &o, &job, &resp);
    free(body);
    if (rc != GR_OK) {
        fprintf(stderr, "gemroute: batch of %zu requests: %s\n", b - a,
                gr_errstr(g));
        gr_response_free(&resp);
        return 1;
    }
    gr_response_free(&resp);
    print_job(&job, model, b - a, a);
    return 0;
}

static int
submit_split(struct gr *g, const char *shm, const char *model,
             const struct lines *ls, const char *display, double wait_s)
{
    struct room *rs = NULL;
    int64_t largest = 0, sum;
    size_t at = 0, start, i;
    int n, k, rc = 0;

    n = rooms_of(shm, model, &rs);
    if (n < 0)
        return 1;
    if (n == 0) {
        fprintf(stderr, "gemroute: no project has a batch pool of %s with "
                "room for another job\n", model);
        free(rs);
        return 1;
    }
    for (k = 0; k < n; k++)
        if (rs[k].limit > largest)
            largest = rs[k].limit;
    for (i = 0; i < ls->n; i++) {
        if (ls->v[i].tokens > largest) {
            fprintf(stderr, "gemroute: line %zu alone holds %" PRId64
                    " tokens, more than the largest pool (%" PRId64 "): "
                    "it cannot be split further\n", i + 1, ls->v[i].tokens,
                    largest);
            free(rs);
            return 1;
        }
    }
    /* One job per project, the pool with most room first; what is left
     * after every pool is full goes in jobs of the largest limit, which
     * wait for room (--wait). */
    for (k = 0; at < ls->n && rc == 0; k++) {
        int64_t cap = k < n ? rs[k].room : largest;
        const char *project = k < n ? rs[k].project : "";

        start = at;
        sum = 0;
        while (at < ls->n && sum + ls->v[at].tokens <= cap) {
            sum += ls->v[at].tokens;
            at++;
        }
        if (at == start) {
            if (k < n)
                continue;       /* this pool is too full for the next */
            break;
        }
        rc = submit_one(g, model, ls, start, at, project, display, wait_s);
    }
    free(rs);
    return rc;
}

static int
cmd_submit(int argc, char **argv, const char *shm)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"split", no_argument, NULL, 's'},
        {"wait", required_argument, NULL, 'w'},
        {"project", required_argument, NULL, 'p'},
        {"display", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL, *project = NULL, *display = "gemroute batch";
    const char *path = "-";
    struct lines ls = {0};
    bool split = false;
    double wait_s = 0;
    char err[256];
    struct gr *g;
    FILE *in;
    int ch, rc;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "m:w:p:d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 's': split = true; break;
        case 'w': wait_s = atof(optarg); break;
        case 'p': project = optarg; break;
        case 'd': display = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (model == NULL || argc - optind > 1 || (split && project != NULL)) {
        fputs(usage, stderr);
        return 2;
    }
    if (optind < argc)
        path = argv[optind];
    in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL) {
        perror(path);
        return 1;
    }
    rc = read_lines(in, path, &ls);
    if (in != stdin)
        fclose(in);
    if (rc != 0 || ls.n == 0) {
        if (rc == 0)
            fprintf(stderr, "gemroute: %s holds no request\n", path);
        lines_free(&ls);
        return 1;
    }
    if ((g = gr_open(shm, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        lines_free(&ls);
        return 1;
    }
    rc = split ? submit_split(g, shm, model, &ls, display, wait_s)
               : submit_one(g, model, &ls, 0, ls.n, project, display, wait_s);
    gr_close(g);
    lines_free(&ls);
    return rc;
}

/* ---- status, results -------------------------------------------------- */

static int
print_line(void *arg, const char *json, size_t len)
{
    (void)arg;
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
    return 0;
}

static int
one_job(struct gr *g, const char *model, const char *name, bool results)
{
    struct gr_batch_job job;
    struct gr_response resp;
    int rc;

    if (results)
        rc = gr_batch_results(g, model, name, print_line, NULL, &resp);
    else
        rc = gr_batch_get(g, model, name, &job, &resp);
    if (rc != GR_OK) {
        fprintf(stderr, "gemroute: %s: %s\n", name,
                resp.error[0] != '\0' ? resp.error : gr_errstr(g));
        gr_response_free(&resp);
        return 1;
    }
    gr_response_free(&resp);
    if (!results) {
        fputs("{\"name\": ", stdout);
        gr_cli_json_str(stdout, job.name);
        fputs(", \"project\": ", stdout);
        gr_cli_json_str(stdout, job.project);
        fputs(", \"state\": ", stdout);
        gr_cli_json_str(stdout, job.state);
        printf(", \"done\": %s}\n", job.done ? "true" : "false");
    }
    fflush(stdout);
    return 0;
}

static int
cmd_jobs(int argc, char **argv, const char *shm, bool results)
{
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model = NULL;
    char err[256], name[GR_BATCH_NAME_MAX], m[GR_NAME_MAX];
    char *buf = NULL;
    size_t cap = 0;
    struct gr *g;
    int ch, rc = 0, i;

    optind = 1;
    while ((ch = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        if (ch == 'm') {
            model = optarg;
        } else if (ch == 'h') {
            fputs(usage, stdout);
            return 0;
        } else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if ((g = gr_open(shm, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (optind < argc) {
        if (model == NULL) {
            gr_close(g);
            fputs(usage, stderr);
            return 2;
        }
        for (i = optind; i < argc; i++)
            rc |= one_job(g, model, argv[i], results);
    } else {
        /* submit's lines: each names its job and model. */
        while (getline(&buf, &cap, stdin) >= 0) {
            if (!member_str(buf, "name", name, sizeof(name)))
                continue;
            if (!member_str(buf, "model", m, sizeof(m))) {
                if (model == NULL) {
                    fprintf(stderr, "gemroute: %s: no model (--model M)\n",
                            name);
                    rc = 1;
                    continue;
                }
                snprintf(m, sizeof(m), "%s", model);
            }
            rc |= one_job(g, m, name, results);
        }
        free(buf);
    }
    gr_close(g);
    return rc;
}

/* ---- pools, and the lines of gemroute status --------------------------- */

static int
pools_read(const struct gr_stat *st, struct gr_stat_batch_pool **out,
           struct gr_stat_batch_counts *c)
{
    struct gr_stat_batch_pool *ps = NULL;
    int n, max = 0;

    for (;;) {
        n = gr_stat_batch_pools(st, ps, max, c);
        if (n < 0 || n <= max)
            break;
        free(ps);
        max = n + 8;
        if ((ps = calloc((size_t)max, sizeof(*ps))) == NULL)
            return -1;
    }
    *out = ps;
    return n;
}

/* Worth a line: a limit set, or something held. */
static bool
interesting(const struct gr_stat_batch_pool *p)
{
    return p->tokens_limit >= 0 || p->jobs_limit >= 0 ||
           p->tokens_used != 0 || p->jobs_used != 0 || p->admitted != 0;
}

static void
limit_str(int64_t v, char *buf, size_t n)
{
    if (v < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%" PRId64, v);
}

void
gr_cli_batch_lines(FILE *f, const struct gr_stat *st, bool prometheus)
{
    struct gr_stat_batch_pool *ps = NULL;
    struct gr_stat_batch_counts c;
    char lt[24], lj[24];
    int n, i, shown = 0;

    n = pools_read(st, &ps, &c);
    for (i = 0; i < n; i++)
        if (interesting(&ps[i]))
            shown++;
    if (n <= 0 || shown == 0) {
        free(ps);
        return;
    }
    if (prometheus) {
        fputs("# HELP gemroute_batch_tokens Input tokens held by unfinished "
              "batch jobs.\n# TYPE gemroute_batch_tokens gauge\n", f);
        for (i = 0; i < n; i++)
            if (interesting(&ps[i]))
                fprintf(f, "gemroute_batch_tokens{project=\"%s\",model=\"%s\"}"
                        " %" PRId64 "\n", ps[i].project, ps[i].model,
                        ps[i].tokens_used);
        fputs("# HELP gemroute_batch_tokens_limit batch_tokens (-1: none).\n"
              "# TYPE gemroute_batch_tokens_limit gauge\n", f);
        for (i = 0; i < n; i++)
            if (interesting(&ps[i]))
                fprintf(f, "gemroute_batch_tokens_limit{project=\"%s\","
                        "model=\"%s\"} %" PRId64 "\n", ps[i].project,
                        ps[i].model, ps[i].tokens_limit);
        fputs("# HELP gemroute_batch_jobs Unfinished batch jobs.\n"
              "# TYPE gemroute_batch_jobs gauge\n", f);
        for (i = 0; i < n; i++)
            if (interesting(&ps[i]))
                fprintf(f, "gemroute_batch_jobs{project=\"%s\",model=\"%s\"}"
                        " %" PRId64 "\n", ps[i].project, ps[i].model,
                        ps[i].jobs_used);
        fputs("# HELP gemroute_batch_jobs_limit batch_jobs (-1: none).\n"
              "# TYPE gemroute_batch_jobs_limit gauge\n", f);
        for (i = 0; i < n; i++)
            if (interesting(&ps[i]))
                fprintf(f, "gemroute_batch_jobs_limit{project=\"%s\","
                        "model=\"%s\"} %" PRId64 "\n", ps[i].project,
                        ps[i].model, ps[i].jobs_limit);
        fputs("# HELP gemroute_batch_finished_total Batch jobs that ended.\n"
              "# TYPE gemroute_batch_finished_total counter\n", f);
        for (i = 0; i < n; i++)
            if (interesting(&ps[i]))
                fprintf(f, "gemroute_batch_finished_total{project=\"%s\","
                        "model=\"%s\"} %llu\n", ps[i].project, ps[i].model,
                        (unsigned long long)ps[i].finished);
        free(ps);
        return;
    }
    fprintf(f, "\nbatch: %llu jobs unfinished (%llu being submitted)\n"
            "  %-24s %-24s %21s %11s\n", (unsigned long long)c.live_jobs,
            (unsigned long long)c.submitting, "PROJECT", "MODEL",
            "TOKENS used/limit", "JOBS");
    for (i = 0; i < n; i++) {
        char t[48], j[32];

        if (!interesting(&ps[i]))
            continue;
        limit_str(ps[i].tokens_limit, lt, sizeof(lt));
        limit_str(ps[i].jobs_limit, lj, sizeof(lj));
        snprintf(t, sizeof(t), "%" PRId64 "/%s", ps[i].tokens_used, lt);
        snprintf(j, sizeof(j), "%" PRId64 "/%s", ps[i].jobs_used, lj);
        fprintf(f, "  %-24s %-24s %21s %11s%s\n", ps[i].project, ps[i].model,
                t, j, ps[i].configured ? "" : "  (not in the config)");
    }
    free(ps);
}

static int
cmd_pools(int argc, char **argv, const char *shm)
{
    struct gr_stat_batch_pool *ps = NULL;
    struct gr_stat_batch_counts c;
    struct gr_stat *st;
    char err[256];
    bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
    int n, i;

    if (argc > 2 || (argc == 2 && !json)) {
        fputs(usage, stderr);
        return 2;
    }
    if ((st = gr_stat_open(shm, err, sizeof(err))) == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    n = pools_read(st, &ps, &c);
    if (n < 0) {
        fprintf(stderr, "gemroute: %s has no batch record (the router "
                "makes one at start)\n", gr_stat_name(st));
        gr_stat_close(st);
        return 1;
    }
    if (!json) {
        gr_cli_batch_lines(stdout, st, false);
        gr_stat_close(st);
        free(ps);
        return 0;
    }
    gr_stat_close(st);
    printf("{\"live_jobs\": %llu, \"submitting\": %llu, \"polls\": %llu, "
           "\"refused\": %llu, \"lost\": %llu, \"pools\": [",
           (unsigned long long)c.live_jobs, (unsigned long long)c.submitting,
           (unsigned long long)c.polls, (unsigned long long)c.refused,
           (unsigned long long)c.lost);
    for (i = 0; i < n; i++) {
        printf("%s\n  {\"project\": ", i ? "," : "");
        gr_cli_json_str(stdout, ps[i].project);
        fputs(", \"model\": ", stdout);
        gr_cli_json_str(stdout, ps[i].model);
        printf(", \"configured\": %s, \"tokens_used\": %" PRId64
               ", \"tokens_limit\": %" PRId64 ", \"jobs_used\": %" PRId64
               ", \"jobs_limit\": %" PRId64 ", \"admitted\": %llu, "
               "\"refused\": %llu, \"finished\": %llu}",
               ps[i].configured ? "true" : "false", ps[i].tokens_used,
               ps[i].tokens_limit, ps[i].jobs_used, ps[i].jobs_limit,
               (unsigned long long)ps[i].admitted,
               (unsigned long long)ps[i].refused,
               (unsigned long long)ps[i].finished);
    }
    printf("]}\n");
    free(ps);
    return 0;
}

int
gr_cli_batch(int argc, char **argv)
{
    const char *shm = gr_cli_take_shm(&argc, argv);

    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "submit") == 0)
        return cmd_submit(argc - 1, argv + 1, shm);
    if (strcmp(argv[1], "status") == 0)
        return cmd_jobs(argc - 1, argv + 1, shm, false);
    if (strcmp(argv[1], "results") == 0)
        return cmd_jobs(argc - 1, argv + 1, shm, true);
    if (strcmp(argv[1], "pools") == 0)
        return cmd_pools(argc - 1, argv + 1, shm);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}
