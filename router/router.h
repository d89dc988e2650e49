/*
 * router.h - the router daemon's private interface.
 *
 * The router owns the segment: it creates or re-adopts it, writes the
 * configuration into it, keeps time (sweeps windows, rolls nothing that
 * clients need for correctness), reaps leases of dead clients, repairs
 * leaks, and frees the slots of removed projects.
 */
#ifndef GR_ROUTER_H
#define GR_ROUTER_H

#include "config.h"
#include "table.h"
#include "resource.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What the router last wrote into the parts of the segment it owns, kept
 * in its private memory: the router decides by this copy and repairs the
 * segment from it (repair.c).  One decision reads the segment back:
 * apply.c's keys_differ(), which compares a slot's keys with the new
 * config's (after an adoption the old keys exist nowhere else); the worst
 * a scribble can do there is give a bad key one more try.
 */
struct gr_rtr_mirror {
    unsigned char head[GR_SHM_LINE];        /* header line 0 (geometry) */
    unsigned char offsets[GR_SHM_LINE];     /* the header's offsets line */
    uint64_t off_spend;                     /* header.off_spend (ABI 6) */
    uint32_t spend_on;                      /* header.spend_on as
                                               gr_rtr_publish_spend()
                                               last wrote it */
    uint32_t *state;                        /* [max_projects] */
    int64_t *freed_at;                      /* [max_projects] ns; 0 never */
    char (*name)[GR_SHM_NAME_MAX];          /* [max_projects] */
    uint32_t *cfg_at;                       /* [max_projects] where the
                                               slot's project was last
                                               found in cfg (a hint) */
    char (*model)[GR_SHM_NAME_MAX];         /* [max_models] */
    uint32_t n_models;
    uint32_t *choice;                       /* [choice capacity] */
    uint32_t n_choice;
    int64_t (*limit)[GR_NDIM];              /* [cells] */
    int64_t (*config_limit)[GR_NDIM];       /* [cells] */
    char reload_error[GR_SHM_ERR_MAX];      /* last_reload_error as
                                               gr_rtr_note_reload() wrote
                                               it */
};

struct gr_rtr_control;
struct gr_rtr_probe;
struct gr_rtr_cluster;
struct gr_rtr_bj;

struct gr_rtr {
    struct gr_shm t;
    struct gr_rtr_mirror m;
    struct gr_cfg *cfg;         /* the config applied now */
    const char *config_path;
    bool unlink_on_exit;
    uint32_t sweep_next;        /* next cell the drain sweep visits */
    uint32_t sweep_round;       /* times the sweep went round the cells */
    int64_t next_reap_ns;
    int64_t next_repair_ns;
    bool pending;               /* a project of cfg waits for a free slot */
    bool adopted;               /* the segment outlived its last router */
    bool hide_choice;           /* publish no choice yet (restoring) */
    char state_path[4096];      /* "" = no state file */
    int64_t next_save_ns;
    struct gr_rtr_control *ctl; /* the control socket (control.c) */
    struct gr_rtr_probe *probe; /* health probes (probe.c) */
    struct gr_rtr_cluster *cluster; /* shares in Redis (cluster.c); NULL
                                       without a cluster section */
    struct gr_shm_restab res;   /* the resource record (resources.c);
                                   base NULL = none */
    int64_t next_res_sweep_ns;
    struct gr_rtr_bj *bj;       /* batch mode's pools and jobs
                                   (batchjobs.c); NULL = none */
};

/*
 * The Pacific days (tzday.c): read the tz database (at start and on
 * reload) and publish the next midnights; the tick keeps them current.
 */
void gr_rtr_tz_load(struct gr_rtr *r);
void gr_rtr_tz_tick(struct gr_rtr *r);

/* Log one line to stderr: time, then the message. */
void gr_rtr_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * Create the segment for cfg, or adopt an existing one whose router is
 * dead and whose geometry matches (its counters are kept).  A live router
 * is a refusal.  0 or -errno with a sentence in err.
 */
int gr_rtr_open_segment(struct gr_rtr *r, const struct gr_cfg *cfg,
                        char *err, size_t errlen);

/*
 * Does cfg ask for the geometry of segment t: the same max_projects,
 * max_models, max_leases and window_ms?  (Not the shm name: see
 * segment.c.)  The one geometry check, for adopting a segment at start
 * and for refusing a reload that needs a restart.
 */
bool gr_rtr_geometry_matches(const struct gr_shm *t,
                             const struct gr_cfg *cfg);

/*
 * Watch the mapping of r->t for SIGBUS (the segment truncated under us):
 * a fault there is absorbed (an anonymous page over it) and recorded.
 * Call again after every new mapping.
 */
void gr_rtr_guard_segment(struct gr_rtr *r);

/* Did an access to the table fault since it was guarded?  Then what
 * says so in a sentence, and the table must be replaced. */
bool gr_rtr_segment_lost(struct gr_rtr *r, char *what, size_t n);
/* The gid of the configured router.group (segment.c), or -1 when none
 * is set or it does not exist (the table's creation refuses the latter;
 * what is made after it then keeps the user's group). */
gid_t gr_rtr_group(const struct gr_cfg *cfg);

/* Give up the table: unlink its name if it still names our segment,
 * unmap it and free the mirror. */
void gr_rtr_drop_segment(struct gr_rtr *r);

/*
 * Write cfg into the segment.  Refuses (-EINVAL, err) a config whose
 * geometry differs from the segment's: that needs a restart.  Projects
 * keep their slot and counters by name; removed ones start draining.
 */
int gr_rtr_apply(struct gr_rtr *r, const struct gr_cfg *cfg, char *err,
                 size_t errlen);

/* Allocate the mirror and fill it from the segment (a new segment is
 * empty; an adopted one is taken as its last router left it). */
/* Publish the models' fallback chains and the cache's settings in the
 * table's extras (router/extras.c); model_idx maps cfg->models to the
 * table's model indices. */
/* Prices, spend caps and header.spend_on (spend.c); slots[i] is the
 * slot of cfg->projects[i] or -1. */
void gr_rtr_publish_spend(struct gr_rtr *r, const struct gr_cfg *cfg,
                          const int *model_idx, const int *slots);
/* STATE_FILE.spend: saved with the state file, restored at start. */
int gr_rtr_spend_save(struct gr_rtr *r);
int gr_rtr_spend_restore(struct gr_rtr *r);
void gr_rtr_publish_extras(struct gr_rtr *r, const struct gr_cfg *cfg,
                           const int *model_idx);

int gr_rtr_mirror_init(struct gr_rtr *r);
void gr_rtr_mirror_free(struct gr_rtr *r);

/* Compare the router-owned parts of the segment with the mirror and the
 * running config and rewrite what differs.  Returns how many values were
 * repaired (each is also counted in the header's anomalies). */
unsigned gr_rtr_repair(struct gr_rtr *r);

/* Load path and apply it; on any error the running config stays and the
 * failure is recorded in the header.  0 or -errno. */
int gr_rtr_reload(struct gr_rtr *r);

/* The slot lifecycle (slots.c): FREE -> ACTIVE -> REMOVING -> FREE. */

/* Set a slot's state in the segment and in the mirror. */
void gr_rtr_set_state(struct gr_rtr *r, uint32_t slot, uint32_t state);

/* A free slot for a project called name: its old one if still free
 * (*returning), else the one free longest.  -1 if none is free. */
int gr_rtr_free_slot(const struct gr_rtr *r, const char *name,
                     bool *returning);

/* Give slot to a new project: a fresh cell set and a new generation. */
void gr_rtr_take_slot(struct gr_shm *t, uint32_t slot);

/* Free the slots of removed projects whose last lease ended (and apply
 * the running config again if a project was waiting for a slot). */
void gr_rtr_free_drained(struct gr_rtr *r);

/* One tick of housekeeping at now_ns (CLOCK_MONOTONIC). */
void gr_rtr_tick(struct gr_rtr *r, int64_t now_ns);

/* The state file for cfg: router.state_file, else under $XDG_STATE_HOME,
 * /var/lib/gemroute (root) or ~/.local/state/gemroute. */
void gr_rtr_state_path(const struct gr_cfg *cfg, char *out, size_t n);

/* Write the counts worth keeping to the state file (temp, fsync,
 * rename, 0600).  0 or -errno (logged). */
int gr_rtr_state_save(struct gr_rtr *r);

/* Restore a state file into a new segment; a damaged or foreign file is
 * logged and ignored.  0 or -errno. */
int gr_rtr_state_restore(struct gr_rtr *r);

/*
 * The control socket (control.c): open it (router.control, else the
 * default path for the table's name) and publish its path in the
 * header; 0 or -errno with a sentence in err.  _wait() serves it for up
 * to timeout_ns (the loop's sleep; a plain sleep when it is not open);
 * _close() removes it.  Router only: the actions write operator state.
 */
int gr_rtr_control_open(struct gr_rtr *r, char *err, size_t errlen);
void gr_rtr_control_wait(struct gr_rtr *r, int64_t timeout_ns);
void gr_rtr_control_close(struct gr_rtr *r);
/* Write the open socket's path into the header again (a new segment). */
void gr_rtr_control_publish(struct gr_rtr *r);

/* The history segment (history.c, shm/history.h): sample every cell
 * when a period has passed (created on the first call); _close() unmaps
 * it, and unlinks it when the table is removed.  Router only. */
void gr_rtr_history_tick(struct gr_rtr *r, int64_t now_ns);
void gr_rtr_history_close(struct gr_rtr *r);

/* Make the router non-dumpable (no core file, no same-user ptrace,
 * /proc/PID owned by root).  0, or -1 when the kernel refused. */
int gr_rtr_no_dumps(void);

/* Scrub from the environment every variable whose value is a key of cfg
 * (stashed first in pages kept out of core dumps); returns how many
 * variables were scrubbed.  gr_rtr_env_restore() sets the stashed ones
 * again, for a reload to read; hide them again after it. */
unsigned gr_rtr_env_hide(const struct gr_cfg *cfg);
void gr_rtr_env_restore(void);

/*
 * Health probes (probe.c): start the probe thread (0 or -ENOMEM); each
 * loop turn, apply a finished probe and queue the next one due; stop the
 * thread.  Router only: a probe's result changes health words.
 */
int gr_rtr_probe_open(struct gr_rtr *r);
void gr_rtr_probe_tick(struct gr_rtr *r, int64_t now_ns);
void gr_rtr_probe_close(struct gr_rtr *r);
/* Whether the router may call url (probe.c): anywhere, except that
 * under GEMROUTE_TEST_LOOPBACK (the tests) only 127.0.0.1, localhost
 * or [::1]. */
bool gr_rtr_upstream_allowed(const char *url);

/*
 * The resource record (resources.c): _open() makes or adopts the
 * companion segment of r->t (restoring the record from the file beside
 * the state file when it is new; a failure is logged and the router runs
 * without it); _tick() frees expired records and dead writers' claims,
 * once a second; _save()/_restore() the file "STATE_FILE.res".
 */
void gr_rtr_res_open(struct gr_rtr *r);

/*
 * Batch mode as a quota of its own (batchjobs.c): _open() makes or
 * adopts the batch record and starts the poll thread; _tick() keeps the
 * pools in step with the config, polls unfinished jobs at a bounded rate
 * and gives the hold of ended ones back; _close() stops it.
 */
void gr_rtr_bj_open(struct gr_rtr *r);
void gr_rtr_bj_tick(struct gr_rtr *r, int64_t now_mono);
void gr_rtr_bj_close(struct gr_rtr *r, bool unlink_it);
void gr_rtr_res_close(struct gr_rtr *r, bool unlink_it);
void gr_rtr_res_tick(struct gr_rtr *r, int64_t now_mono);
int gr_rtr_res_save(struct gr_rtr *r);
int gr_rtr_res_restore(struct gr_rtr *r);

/* Record a reload's result in the header (for status). */
void gr_rtr_note_reload(struct gr_rtr *r, bool ok, const char *first_error);

#endif
