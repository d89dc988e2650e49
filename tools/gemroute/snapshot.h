/*
 * snapshot.h - one consistent-enough copy of the table for display.
 *
 * The status views (table, JSON, Prometheus) all print from this copy, so
 * they agree with each other and none of them touches the segment while
 * printing.  Reading is read-only and range-checked: a damaged cell is
 * skipped and counted, never trusted.
 */
#ifndef GR_SNAPSHOT_H
#define GR_SNAPSHOT_H

#include "table.h"

#include <stdbool.h>
#include <stdint.h>

struct gr_snap_cell {
    char project[GR_SHM_NAME_MAX];
    char model[GR_SHM_NAME_MAX];
    char key_tail[8];               /* "...wxyz" */
    const char *health;             /* healthy|cooling|open|half_open|
                                       disabled|draining */
    char reason[128];               /* why, when not healthy */
    int64_t limit[GR_NDIM];         /* effective; -1 = unlimited */
    int64_t config_limit[GR_NDIM];
    int64_t learned[GR_NDIM];       /* -1 = none */
    int64_t used[GR_NDIM];
    double cooldown_s[GR_NDIM];
    int cool_src[GR_NDIM];
    double cell_cool_s;
    double circuit_s;
    int64_t in_flight;
    uint64_t admitted, rejected, ok, quota_429, server_5xx, auth_err,
        other_err;
    uint64_t quota_429_dim[GR_NDIM + 1];
    uint32_t last_status;
    char last_qid[GR_SHM_LINE];
    uint32_t project_health;        /* GR_PROJ_* */
    uint32_t cell_health;           /* GR_CELL_* */
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
    struct gr_snap_cell *cells;     /* malloc'd */
};

/* Take a snapshot; 0 or -errno.  Free with gr_snap_free(). */
int gr_snap_take(const struct gr_shm *t, struct gr_snap *s);
void gr_snap_free(struct gr_snap *s);

/* Parse "--shm NAME" out of argv (in place); returns the name or NULL. */
const char *gr_cli_take_shm(int *argc, char **argv);

#endif
