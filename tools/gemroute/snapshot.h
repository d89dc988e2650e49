/*
 * snapshot.h - one consistent-enough copy of the table for display.
 *
 * The status views (table, JSON, Prometheus) all print from this copy, so
 * they agree with each other and none of them touches the segment while
 * printing.  Reading is read-only and range-checked: a damaged cell is
 * skipped and counted, never trusted.  The views are pure functions of
 * the copy (its clock readings included), which is what makes their
 * output testable against golden files.
 */
#ifndef GR_SNAPSHOT_H
#define GR_SNAPSHOT_H

#include "table.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define GR_SNAP_REASONS 6
#define GR_SNAP_REASON_MAX 96

/* Operator state of a project or a cell (tools/gemroute/control.c). */
enum gr_snap_op {
    GR_SNAP_OP_NONE = 0,
    GR_SNAP_OP_DRAINING,
    GR_SNAP_OP_DISABLED,
};

struct gr_snap_cell {
    char project[GR_SHM_NAME_MAX];
    char model[GR_SHM_NAME_MAX];
    char key_tail[8];               /* "...wxyz" */
    uint32_t slot;                  /* project slot */
    uint32_t model_index;
    const char *health;             /* healthy|cooling|open|half_open|
                                       disabled|draining */
    char reason[GR_SNAP_REASON_MAX];    /* reasons[0], or "" */
    unsigned n_reasons;             /* why not healthy, then notes */
    char reasons[GR_SNAP_REASONS][GR_SNAP_REASON_MAX];
    enum gr_snap_op op;             /* the cell's own operator state */
    bool removing;                  /* the project left the config */
    int64_t limit[GR_NDIM];         /* effective, learned limits applied;
                                       -1 = unlimited, 0 = not available */
    int64_t config_limit[GR_NDIM];  /* before headroom */
    int64_t learned[GR_NDIM];       /* -1 = none */
    int64_t used[GR_NDIM];
    double cooldown_s[GR_NDIM];
    int cool_src[GR_NDIM];          /* enum gr_cool_src */
    double cell_cool_s;             /* 429 without details: whole cell */
    double circuit_s;               /* circuit open for this long */
    bool circuit;                   /* open or half-open */
    int64_t in_flight;
    uint64_t admitted, rejected, ok, quota_429, server_5xx, auth_err,
        other_err;
    uint64_t quota_429_dim[GR_NDIM + 1];    /* per dim, then bare */
    uint32_t failures;              /* consecutive server errors */
    uint32_t last_status;
    char last_qid[GR_SHM_LINE];
    uint32_t project_health;        /* GR_PROJ_* */
    uint32_t cell_health;           /* GR_CELL_* */
};

struct gr_snap_project {
    char name[GR_SHM_NAME_MAX];
    char key_tail[8];
    uint32_t slot;
    uint32_t n_keys;
    bool removing;
    bool config_enabled;
    bool auth_failed;
    enum gr_snap_op op;
    const char *state;              /* healthy|cooling|disabled|draining */
};

/* One model over every project: what the pool can still take now. */
struct gr_snap_model {
    char name[GR_SHM_NAME_MAX];
    int64_t room[GR_NDIM];          /* sum of (limit - used) over cells
                                       that take calls now */
    int64_t capacity[GR_NDIM];      /* sum of limits of cells in the pool
                                       (not disabled, not draining) */
    bool unlimited[GR_NDIM];        /* some cell in the pool has no limit */
};

struct gr_snap {
    char shm[GR_SHM_NAME_MAX];
    int64_t router_pid;
    bool router_alive;
    double router_beat_age_s;
    uint64_t config_generation;
    char base_url[GR_SHM_URL_MAX];
    char config_path[GR_SHM_URL_MAX];
    int64_t last_reload_wall_s;
    bool last_reload_ok;
    uint32_t reloads_ok, reloads_failed;
    char last_reload_error[GR_SHM_ERR_MAX];
    int64_t now_wall_s;
    int64_t next_rpd_reset_s;       /* unix time of the next Pacific midnight */
    double window_s;
    uint64_t anomalies, reaped, audits;
    unsigned n_cells;
    struct gr_snap_cell *cells;     /* malloc'd; by slot, then model */
    unsigned n_projects;
    struct gr_snap_project *projects;   /* malloc'd; by slot */
    unsigned n_models;
    struct gr_snap_model models[GR_SHM_MAX_MODELS];
    unsigned healthy, cooling, disabled, draining;  /* projects */
};

/* Take a snapshot now; 0 or -errno.  Free with gr_snap_free(). */
int gr_snap_take(const struct gr_shm *t, struct gr_snap *s);

/* The same at given clock readings (CLOCK_MONOTONIC ns and unix ns), so
 * that a test sees a fixed state the same way every time. */
int gr_snap_take_at(const struct gr_shm *t, struct gr_snap *s,
                    int64_t now_mono_ns, int64_t now_wall_ns);
void gr_snap_free(struct gr_snap *s);

/* 950, 12.3k, 250k, 1M: a count short enough for a table cell. */
void gr_snap_num(int64_t v, char *buf, size_t n);

/* Parse "--shm NAME" out of argv (in place); returns the name or NULL. */
const char *gr_cli_take_shm(int *argc, char **argv);

/* The status views (status.c).  The table fits 100 columns; colour adds
 * ANSI escapes (bars behind the percentages) and nothing else. */
void gr_status_table(FILE *f, const struct gr_snap *s, bool colour);
void gr_status_json(FILE *f, const struct gr_snap *s);
void gr_status_prometheus(FILE *f, const struct gr_snap *s);

#endif
