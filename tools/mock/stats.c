/*
 * stats.c - render the mock's counters and knobs as JSON.
 *
 * Invariant protected: each (project, model) row is a snapshot taken
 * under that cell's lock, so its counters agree with each other (admitted
 * = served + injected 5xx); rows of different cells are taken one after
 * the other, not at one instant.  Keys never appear, only how many.
 */
#include "stats.h"

#include "clock.h"

#include <stdio.h>
#include <time.h>

/* relaxed: counters and knobs, each meaningful on its own */
#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void
limit_or_null(struct gr_mock_jw *w, const char *key, int64_t v)
{
    if (v < 0)
        gr_mock_jw_null(w, key);
    else
        gr_mock_jw_int(w, key, v);
}

static void
day_string(int32_t day, char *out, size_t outlen)
{
    time_t t = (time_t)day * 86400;
    struct tm tm;

    /* A day count read as UTC midnight gives that day's date. */
    if (gmtime_r(&t, &tm) == NULL)
        snprintf(out, outlen, "?");
    else
        strftime(out, outlen, "%Y-%m-%d", &tm);
}

static void
render_cell(struct gr_mock_state *st, struct gr_mock_jw *w, const char *model,
            int listed, const struct gr_mock_cell_view *v)
{
    char day[16];
    int d;

    gr_mock_jw_object(w, model);
    gr_mock_jw_bool(w, "listed", listed);
    gr_mock_jw_object(w, "limits");
    for (d = 0; d < GR_MOCK_NDIMS; d++)
        limit_or_null(w, gr_mock_dim_name(d), v->limit[d]);
    gr_mock_jw_end(w);
    gr_mock_jw_int(w, "admitted", (int64_t)v->c.admitted);
    gr_mock_jw_int(w, "served", (int64_t)v->c.served);
    gr_mock_jw_object(w, "quota_429");
    gr_mock_jw_int(w, "total", (int64_t)v->c.refused);
    for (d = 0; d < GR_MOCK_NDIMS; d++)
        gr_mock_jw_int(w, gr_mock_dim_name(d), (int64_t)v->c.refused_dim[d]);
    gr_mock_jw_end(w);
    gr_mock_jw_object(w, "injected_5xx");
    gr_mock_jw_int(w, "503", (int64_t)v->c.injected_503);
    gr_mock_jw_int(w, "500", (int64_t)v->c.injected_500);
    gr_mock_jw_end(w);
    gr_mock_jw_int(w, "tokens", (int64_t)v->c.tokens);
    gr_mock_jw_int(w, "images", (int64_t)v->c.images);
    gr_mock_jw_int(w, "count_tokens_calls", (int64_t)v->c.count_tokens);
    gr_mock_jw_object(w, "window");
    limit_or_null(w, "requests", v->window[0]);
    limit_or_null(w, "tokens", v->window[1]);
    limit_or_null(w, "images", v->window[2]);
    gr_mock_jw_end(w);
    gr_mock_jw_object(w, "day");
    day_string(v->day, day, sizeof day);
    gr_mock_jw_str(w, "pacific_day", day);
    gr_mock_jw_int(w, "requests", v->day_requests);
    gr_mock_jw_int(w, "tokens", v->day_tokens);
    gr_mock_jw_end(w);
    gr_mock_jw_end(w);
    (void)st;
}

static int
cell_used(const struct gr_mock_cell_view *v)
{
    return v->c.admitted != 0 || v->c.refused != 0 || v->c.count_tokens != 0;
}

void
gr_mock_stats_render(struct gr_mock_state *st, struct gr_mock_buf *b)
{
    int64_t off = LOAD(st->offset_ns), files, bytes;
    struct gr_mock_batch_usage bu;
    struct gr_mock_cell_view v;
    struct gr_mock_jw w;
    size_t p, m;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_int(&w, "window_ms", st->window_ns / 1000000);
    gr_mock_jw_int(&w, "max_body_bytes", (int64_t)st->max_body);
    gr_mock_jw_object(&w, "connections");
    gr_mock_jw_int(&w, "accepted", (int64_t)LOAD(st->g.connections));
    gr_mock_jw_end(&w);
    gr_mock_jw_object(&w, "requests");
    gr_mock_jw_int(&w, "total", (int64_t)LOAD(st->g.requests));
    gr_mock_jw_int(&w, "no_key", (int64_t)LOAD(st->g.no_key));
    gr_mock_jw_int(&w, "bad_key", (int64_t)LOAD(st->g.bad_key));
    gr_mock_jw_int(&w, "leaked_key", (int64_t)LOAD(st->g.leaked_key));
    gr_mock_jw_int(&w, "model_not_found", (int64_t)LOAD(st->g.model_not_found));
    gr_mock_jw_int(&w, "unknown_path", (int64_t)LOAD(st->g.unknown_path));
    gr_mock_jw_int(&w, "bad_request", (int64_t)LOAD(st->g.bad_request));
    gr_mock_jw_int(&w, "too_large", (int64_t)LOAD(st->g.too_large));
    gr_mock_jw_end(&w);
    gr_mock_jw_object(&w, "projects");
    for (p = 0; p < st->n_projects; p++) {
        const struct gr_mock_project *pr = &st->projects[p];

        gr_mock_jw_object(&w, pr->cfg->name);
        gr_mock_jw_str(&w, "tier", gr_mock_tier_name(pr->cfg->tier));
        gr_mock_jw_str(&w, "keys",
                       gr_mock_key_state_name(LOAD(st->projects[p].key_state)));
        gr_mock_jw_int(&w, "n_keys", (int64_t)pr->cfg->n_keys);
        gr_mock_files_usage(st->files, (uint32_t)p, gr_shm_now_wall() + off,
                            &files, &bytes);
        gr_mock_jw_object(&w, "files");
        gr_mock_jw_int(&w, "count", files);
        gr_mock_jw_int(&w, "bytes", bytes);
        gr_mock_jw_end(&w);
        gr_mock_batchjobs_usage(st->batches, (uint32_t)p,
                                gr_shm_now_wall() + off, &bu);
        /* Batch mode only once somebody used it. */
        if (bu.submitted != 0 || bu.quota_429 != 0) {
            gr_mock_jw_object(&w, "batches");
            gr_mock_jw_int(&w, "submitted", bu.submitted);
            gr_mock_jw_int(&w, "unfinished", bu.unfinished);
            gr_mock_jw_int(&w, "tokens", bu.tokens);
            gr_mock_jw_int(&w, "done", bu.done);
            gr_mock_jw_int(&w, "quota_429", bu.quota_429);
            gr_mock_jw_end(&w);
        }
        gr_mock_jw_object(&w, "models");
        for (m = 0; m < st->n_models; m++) {
            gr_mock_cell_view(&pr->cells[m], st->window_ns, off, &v);
            /* Unlisted models only once somebody tried them. */
            if (pr->listed[m] || cell_used(&v))
                render_cell(st, &w, st->models[m], pr->listed[m], &v);
        }
        gr_mock_jw_end(&w);
        gr_mock_jw_end(&w);
    }
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}

void
gr_mock_stats_clock(struct gr_mock_state *st, struct gr_mock_buf *b)
{
    int64_t off = LOAD(st->offset_ns);
    int64_t wall = gr_shm_now_wall() + off;
    int64_t s = wall / GR_NS_PER_S;
    struct gr_mock_jw w;
    char day[16];

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_double(&w, "offset_s", (double)off / 1e9, 15);
    gr_mock_jw_double(&w, "wall_s", (double)wall / 1e9, 15);
    day_string(gr_shm_pacific_day(s), day, sizeof day);
    gr_mock_jw_str(&w, "pacific_day", day);
    gr_mock_jw_int(&w, "next_pacific_midnight_s",
                   gr_shm_next_pacific_midnight(s));
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}

void
gr_mock_stats_faults(struct gr_mock_state *st, struct gr_mock_buf *b)
{
    struct gr_mock_jw w;

    gr_mock_jw_init(&w, b, 1);
    gr_mock_jw_object(&w, NULL);
    gr_mock_jw_double(&w, "p503", (double)LOAD(st->p503_ppb) / 1e9, 9);
    gr_mock_jw_double(&w, "p500", (double)LOAD(st->p500_ppb) / 1e9, 9);
    gr_mock_jw_array(&w, "latency_ms");
    gr_mock_jw_int(&w, NULL, LOAD(st->latency_lo_ms));
    gr_mock_jw_int(&w, NULL, LOAD(st->latency_hi_ms));
    gr_mock_jw_end(&w);
    gr_mock_jw_end(&w);
    gr_mock_buf_add(b, "\n", 1);
}
