/*
 * snapshot.c - copy the table for the status views.
 *
 * Everything read is checked: indices against the mapping's own
 * geometry, strings copied under their seqlocks and cut at their size,
 * enums clamped.  A slot whose seqlock never settles is skipped.
 */
#include "snapshot.h"
#include "clock.h"
#include "seqlock.h"
#include "health.h"
#include "window.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double
secs_left(int64_t until, int64_t now)
{
    return until > now ? (double)(until - now) / 1e9 : 0.0;
}

static bool
copy_project(const struct gr_shm *t, uint32_t slot, char *name,
             char *tail, uint32_t *flags)
{
    const struct gr_shm_project *p = &t->projects[slot];
    int tries;

    for (tries = 0; tries < GR_SEQ_TRIES; tries++) {
        uint32_t s = gr_shm_seq_read_begin((_Atomic uint32_t *)&p->seq);
        char key[GR_SHM_KEY_MAX];
        size_t n;

        gr_shm_seq_copy_out(name, p->name, GR_SHM_NAME_MAX);
        gr_shm_seq_copy_out(key, gr_shm_key(t, slot, 0), GR_SHM_KEY_MAX);
        *flags = __atomic_load_n(&p->flags, __ATOMIC_ACQUIRE);
        if (!gr_shm_seq_read_ok((_Atomic uint32_t *)&p->seq, s))
            continue;
        name[GR_SHM_NAME_MAX - 1] = '\0';
        key[GR_SHM_KEY_MAX - 1] = '\0';
        n = strlen(key);
        /* Keys are shown as their last 4 characters, never more. */
        snprintf(tail, 8, "...%s", n >= 8 ? key + n - 4 : "");
        explicit_bzero(key, sizeof(key));
        return true;
    }
    return false;
}

static void
judge(struct gr_snap_cell *sc, uint32_t pstate, uint32_t pflags,
      int64_t now_ns, const struct gr_shm_cell *c)
{
    static const char *dim[GR_NDIM] = {"rpm", "tpm", "rpd", "ipm"};
    unsigned d;

    sc->health = "healthy";
    sc->reason[0] = '\0';
    if (sc->project_health & GR_PROJ_AUTH_FAILED) {
        sc->health = "disabled";
        snprintf(sc->reason, sizeof(sc->reason), "key rejected (%u)",
                 sc->last_status);
        return;
    }
    if ((sc->project_health & GR_PROJ_OP_DISABLED) ||
        (sc->cell_health & GR_CELL_OP_DISABLED)) {
        sc->health = "disabled";
        snprintf(sc->reason, sizeof(sc->reason), "operator");
        return;
    }
    if (pflags & GR_PROJ_CFG_DISABLED) {
        sc->health = "disabled";
        snprintf(sc->reason, sizeof(sc->reason), "enabled = false");
        return;
    }
    if (sc->cell_health & GR_CELL_DISABLED_MODEL) {
        sc->health = "disabled";
        snprintf(sc->reason, sizeof(sc->reason), "%s",
                 sc->last_status == 404 ? "model not found (404)" :
                 "no quota for this model (learned limit 0)");
        return;
    }
    if (pstate == GR_PROJ_REMOVING || (sc->project_health &
                                       GR_PROJ_OP_DRAINING) ||
        (sc->cell_health & GR_CELL_OP_DRAINING)) {
        sc->health = "draining";
        snprintf(sc->reason, sizeof(sc->reason), "%s",
                 pstate == GR_PROJ_REMOVING ? "removed from config" :
                 "operator");
        return;
    }
    /* relaxed: a snapshot */
    if (atomic_load_explicit(&c->circuit_until, memory_order_relaxed) > 0) {
        bool probing = sc->cell_health & GR_CELL_PROBE_TAKEN;

        sc->health = probing ? "half_open" : "open";
        snprintf(sc->reason, sizeof(sc->reason), "%s after server errors",
                 probing ? "probing" : "circuit open");
        if (probing || sc->circuit_s > 0)
            return;
        sc->health = "half_open";
        return;
    }
    for (d = 0; d < GR_NDIM; d++) {
        if (sc->cooldown_s[d] > 0) {
            sc->health = "cooling";
            snprintf(sc->reason, sizeof(sc->reason), "%s %.0fs%s", dim[d],
                     sc->cooldown_s[d],
                     sc->cool_src[d] == 1 ? " (RetryInfo)" :
                     sc->cool_src[d] == 4 ? " (until 00:00 PT)" : "");
            return;
        }
    }
    if (sc->cell_cool_s > 0) {
        sc->health = "cooling";
        snprintf(sc->reason, sizeof(sc->reason), "backoff %.0fs (429 "
                 "without details)", sc->cell_cool_s);
    }
    (void)now_ns;
}

static void
copy_cell(const struct gr_shm *t, const struct gr_shm_cell *c,
          struct gr_snap_cell *sc, int64_t now_ns, int32_t today)
{
    unsigned d;

    /* relaxed for all: a snapshot for display */
    for (d = 0; d < GR_NDIM; d++) {
        sc->limit[d] = atomic_load_explicit(&c->limit[d],
                                            memory_order_relaxed);
        sc->config_limit[d] = atomic_load_explicit(&c->config_limit[d],
                                                   memory_order_relaxed);
        sc->learned[d] = atomic_load_explicit(&c->learned[d],
                                              memory_order_relaxed);
        sc->cooldown_s[d] = secs_left(atomic_load_explicit(
            &c->cool_until[d], memory_order_relaxed), now_ns);
        sc->cool_src[d] = __atomic_load_n(&c->cool_src[d], __ATOMIC_RELAXED);
    }
    sc->used[GR_D_RPM] = gr_shm_window_used(&c->win[GR_W_RPM], now_ns,
                                            t->tick_ns);
    sc->used[GR_D_TPM] = gr_shm_window_used(&c->win[GR_W_TPM], now_ns,
                                            t->tick_ns);
    sc->used[GR_D_IPM] = gr_shm_window_used(&c->win[GR_W_IPM], now_ns,
                                            t->tick_ns);
    sc->used[GR_D_RPD] = gr_shm_day_used(&c->day, today);
    sc->cell_cool_s = secs_left(atomic_load_explicit(
        &c->cell_cool_until, memory_order_relaxed), now_ns);
    sc->circuit_s = secs_left(atomic_load_explicit(
        &c->circuit_until, memory_order_relaxed), now_ns);
    sc->in_flight = atomic_load_explicit(&c->in_flight, memory_order_relaxed);
    sc->admitted = atomic_load_explicit(&c->admitted, memory_order_relaxed);
    sc->rejected = atomic_load_explicit(&c->rejected, memory_order_relaxed);
    sc->ok = atomic_load_explicit(&c->ok, memory_order_relaxed);
    sc->quota_429 = 0;
    for (d = 0; d <= GR_NDIM; d++) {
        sc->quota_429_dim[d] = atomic_load_explicit(&c->quota_429[d],
                                                    memory_order_relaxed);
        sc->quota_429 += sc->quota_429_dim[d];
    }
    sc->server_5xx = atomic_load_explicit(&c->server_5xx,
                                          memory_order_relaxed);
    sc->auth_err = atomic_load_explicit(&c->auth_err, memory_order_relaxed);
    sc->other_err = atomic_load_explicit(&c->other_err, memory_order_relaxed);
    sc->last_status = atomic_load_explicit(&c->last_status,
                                           memory_order_relaxed);
    sc->cell_health = atomic_load_explicit(&c->health, memory_order_relaxed);
    gr_shm_last_qid(c, sc->last_qid, sizeof(sc->last_qid));
}

static void
copy_header(const struct gr_shm *t, struct gr_snap *s, int64_t now_ns)
{
    const struct gr_shm_header *h = t->hdr;
    int tries;

    /* relaxed for all: a snapshot for display */
    s->router_pid = atomic_load_explicit(&h->router_pid, memory_order_relaxed);
    s->router_alive = gr_shm_router_alive(t);
    s->router_beat_age_s = (double)(now_ns - atomic_load_explicit(
        &h->router_beat_ns, memory_order_relaxed)) / 1e9;
    s->config_generation = atomic_load_explicit(&h->config_generation,
                                                memory_order_relaxed);
    s->last_reload_wall_s = atomic_load_explicit(
        &h->last_reload_wall_ns, memory_order_relaxed) / GR_NS_PER_S;
    s->last_reload_ok = atomic_load_explicit(&h->last_reload_ok,
                                             memory_order_relaxed) != 0;
    s->reloads_ok = atomic_load_explicit(&h->reloads_ok, memory_order_relaxed);
    s->reloads_failed = atomic_load_explicit(&h->reloads_failed,
                                             memory_order_relaxed);
    s->anomalies = atomic_load_explicit(&h->anomalies, memory_order_relaxed);
    s->reaped = atomic_load_explicit(&h->reaped, memory_order_relaxed);
    s->audits = atomic_load_explicit(&h->audits, memory_order_relaxed);
    s->window_s = (double)t->window_ns / 1e9;
    for (tries = 0; tries < GR_SEQ_TRIES; tries++) {
        uint32_t q = gr_shm_seq_read_begin((_Atomic uint32_t *)&h->text_seq);

        gr_shm_seq_copy_out(s->base_url, h->base_url, GR_SHM_URL_MAX);
        gr_shm_seq_copy_out(s->config_path, h->config_path, GR_SHM_URL_MAX);
        gr_shm_seq_copy_out(s->last_reload_error, h->last_reload_error,
                            GR_SHM_ERR_MAX);
        if (gr_shm_seq_read_ok((_Atomic uint32_t *)&h->text_seq, q))
            break;
    }
    s->base_url[GR_SHM_URL_MAX - 1] = '\0';
    s->config_path[GR_SHM_URL_MAX - 1] = '\0';
    s->last_reload_error[GR_SHM_ERR_MAX - 1] = '\0';
}

int
gr_snap_take(const struct gr_shm *t, struct gr_snap *s)
{
    int64_t now_ns = gr_shm_now_mono();
    int32_t today;
    uint32_t slot, m, n_models;

    memset(s, 0, sizeof(*s));
    snprintf(s->shm, sizeof(s->shm), "%s", t->name);
    s->now_wall_s = gr_shm_now_wall() / GR_NS_PER_S;
    s->next_rpd_reset_s = gr_shm_next_pacific_midnight(s->now_wall_s);
    today = gr_shm_pacific_day(s->now_wall_s);
    copy_header(t, s, now_ns);
    /* relaxed: clamped below */
    n_models = atomic_load_explicit(&t->hdr->n_models, memory_order_relaxed);
    if (n_models > t->max_models)
        n_models = t->max_models;
    s->cells = calloc((size_t)t->max_projects * (n_models ? n_models : 1),
                      sizeof(*s->cells));
    if (s->cells == NULL)
        return -ENOMEM;
    for (slot = 0; slot < t->max_projects; slot++) {
        const struct gr_shm_project *p = &t->projects[slot];
        /* relaxed: a snapshot */
        uint32_t st = atomic_load_explicit(&p->state, memory_order_relaxed);
        uint32_t ph = atomic_load_explicit(&p->health, memory_order_relaxed);
        char name[GR_SHM_NAME_MAX], tail[8];
        uint32_t flags;

        if (st != GR_PROJ_ACTIVE && st != GR_PROJ_REMOVING)
            continue;
        if (!copy_project(t, slot, name, tail, &flags))
            continue;
        for (m = 0; m < n_models; m++) {
            struct gr_snap_cell *sc = &s->cells[s->n_cells];
            const struct gr_shm_cell *c = gr_shm_cell(t, slot, m);
            int tries;

            if (c == NULL)
                continue;
            memcpy(sc->project, name, sizeof(name));
            memcpy(sc->key_tail, tail, sizeof(tail));
            for (tries = 0; tries < GR_SEQ_TRIES; tries++) {
                uint32_t q = gr_shm_seq_read_begin(
                    (_Atomic uint32_t *)&t->hdr->models_seq);

                gr_shm_seq_copy_out(sc->model, t->models[m].name,
                                    GR_SHM_NAME_MAX);
                if (gr_shm_seq_read_ok((_Atomic uint32_t *)&t->hdr->models_seq,
                                       q))
                    break;
            }
            sc->model[GR_SHM_NAME_MAX - 1] = '\0';
            sc->project_health = ph;
            copy_cell(t, c, sc, now_ns, today);
            /* A model the config no longer lists has all limits 0. */
            if (sc->config_limit[GR_D_RPM] == 0 &&
                sc->config_limit[GR_D_TPM] == 0 &&
                sc->config_limit[GR_D_RPD] == 0 &&
                sc->config_limit[GR_D_IPM] == 0)
                continue;
            judge(sc, st, flags, now_ns, c);
            s->n_cells++;
        }
    }
    return 0;
}

void
gr_snap_free(struct gr_snap *s)
{
    free(s->cells);
    s->cells = NULL;
}

const char *
gr_cli_take_shm(int *argc, char **argv)
{
    const char *name = NULL;
    int i, j;

    for (i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--shm") == 0 && i + 1 < *argc) {
            name = argv[i + 1];
            for (j = i; j + 2 <= *argc; j++)
                argv[j] = argv[j + 2];
            *argc -= 2;
            i--;
        } else if (strncmp(argv[i], "--shm=", 6) == 0) {
            name = argv[i] + 6;
            for (j = i; j + 1 <= *argc; j++)
                argv[j] = argv[j + 1];
            *argc -= 1;
            i--;
        }
    }
    return gr_shm_default_name(name);
}
