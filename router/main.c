/*
 * main.c - gemrouted: the router daemon.
 *
 *   gemrouted -c FILE [--foreground] [--unlink-on-exit]
 *   gemrouted --check -c FILE
 *
 * It creates (or adopts) the segment, applies the config, and then ticks:
 * reaping, sweeping, auditing, waking sleepers.  SIGHUP reloads, and so
 * does a change of the config file or of a file it includes (watch.c);
 * a reload that fails leaves the running config in place.  SIGTERM and
 * SIGINT stop it, leaving the segment (and its counts) for the next
 * router unless --unlink-on-exit is given.  Signal handlers only set flags
 * (but for SIGBUS in the table: segment.c).
 *
 * Keys: the router is not dumpable, and `env:` keys leave its environment
 * once read (secrets.c).  A table truncated under it is replaced by a new
 * one, filled from the config and the state file, as at a start.
 */
#include "router.h"
#include "cluster.h"
#include "clock.h"
#include "seqlock.h"
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SAVE_EVERY_NS (INT64_C(5) * 1000000000)

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

/* The config watcher; NULL when inotify is unavailable (SIGHUP only). */
static struct gr_rtr_watch *watch;

static void
on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void
on_hup(int sig)
{
    (void)sig;
    reload_flag = 1;
}

static void
usage(FILE *f)
{
    fputs("usage: gemrouted -c FILE [--foreground] [--unlink-on-exit]\n"
          "       gemrouted --check -c FILE\n", f);
}

static void
print_errors(const struct gr_cfg_errors *errs)
{
    unsigned i;

    for (i = 0; i < errs->n; i++)
        fprintf(stderr, "%s\n", errs->lines[i]);
}

static int
check_only(const char *path)
{
    struct gr_cfg_errors errs = {0};
    struct gr_cfg *cfg = NULL;

    if (gr_cfg_load(path, &cfg, &errs) != 0) {
        print_errors(&errs);
        gr_cfg_errors_free(&errs);
        return 2;
    }
    printf("%s: ok (%u projects, %u models)\n", path, cfg->n_projects,
           cfg->n_models);
    gr_cfg_free(cfg);
    gr_cfg_errors_free(&errs);
    return 0;
}

void
gr_rtr_note_reload(struct gr_rtr *r, bool ok, const char *first_error)
{
    struct gr_shm_header *h = r->t.hdr;
    char msg[GR_SHM_ERR_MAX] = {0};

    if (first_error != NULL)
        snprintf(msg, sizeof(msg), "%s", first_error);
    memcpy(r->m.reload_error, msg, sizeof(msg));    /* repair.c's copy */
    gr_shm_seq_write_begin(&h->text_seq);
    gr_shm_seq_copy_in(h->last_reload_error, msg, sizeof(msg));
    gr_shm_seq_write_end(&h->text_seq);
    /* relaxed for the statistics; the release on the generation (apply)
     * or on reloads_failed below publishes them */
    atomic_store_explicit(&h->last_reload_wall_ns, gr_shm_now_wall(),
                          memory_order_relaxed);
    atomic_store_explicit(&h->last_reload_ok, ok ? 1u : 0u,
                          memory_order_relaxed);
    if (ok)
        atomic_fetch_add_explicit(&h->reloads_ok, 1, memory_order_release);
    else
        atomic_fetch_add_explicit(&h->reloads_failed, 1,
                                  memory_order_release);
}

int
gr_rtr_reload(struct gr_rtr *r)
{
    struct gr_cfg_errors errs = {0};
    struct gr_cfg *cfg = NULL;
    char err[512];
    unsigned i;
    int rc;

    /* Whatever changed on disk until now is read by this load. */
    gr_rtr_watch_drain(watch);
    gr_rtr_tz_load(r);          /* the tz database may have changed too */
    /* env: keys are read again: the environment the router started with
     * comes back for the load, and leaves again after it. */
    gr_rtr_env_restore();
    rc = gr_cfg_load(r->config_path, &cfg, &errs);
    gr_rtr_env_hide(rc == 0 ? cfg : r->cfg);
    if (rc != 0) {
        for (i = 0; i < errs.n; i++)
            gr_rtr_log("reload refused: %s", errs.lines[i]);
        gr_rtr_note_reload(r, false, errs.n > 0 ? errs.lines[0] : "unreadable");
        gr_cfg_errors_free(&errs);
        return rc;
    }
    gr_cfg_errors_free(&errs);
    rc = gr_rtr_apply(r, cfg, err, sizeof(err));
    if (rc != 0) {
        gr_rtr_log("reload refused: %s", err);
        gr_rtr_note_reload(r, false, err);
        gr_cfg_free(cfg);
        return rc;
    }
    gr_cfg_free(r->cfg);
    r->cfg = cfg;
    gr_rtr_note_reload(r, true, NULL);
    gr_rtr_log("config %s applied: %u projects, %u models, generation "
               "%llu", r->config_path, cfg->n_projects, cfg->n_models,
               /* relaxed: only the router writes it */
               (unsigned long long)atomic_load_explicit(
                   &r->t.hdr->config_generation, memory_order_relaxed));
    /* The includes may have changed: watch the files just read. */
    gr_rtr_watch_files(watch, cfg);
    return 0;
}

/* Literal keys in a file others can read: say so (never the keys). */
static void
warn_readable_keys(const struct gr_cfg *cfg)
{
    struct stat st;
    unsigned i;

    if (cfg->n_literal_keys == 0)
        return;
    for (i = 0; i < cfg->n_files; i++)
        if (stat(cfg->files[i], &st) == 0 && (st.st_mode & 044) != 0)
            gr_rtr_log("warning: %s is readable by others (mode %03o) and "
                       "the config holds %u literal keys: use env: or file: "
                       "keys, or chmod 600", cfg->files[i],
                       (unsigned)(st.st_mode & 0777), cfg->n_literal_keys);
}

/*
 * Create or adopt the table for r->cfg and fill it; a new table starts
 * from the state file, before any client can choose a project (the
 * choice array stays empty until then).  0, or -1 after logging why.
 */
static int
serve(struct gr_rtr *r)
{
    char err[512];
    int rc;

    rc = gr_rtr_open_segment(r, r->cfg, err, sizeof(err));
    if (rc != 0) {
        gr_rtr_log("%s", err);
        return -1;
    }
    gr_rtr_guard_segment(r);
    /* The cluster's shares are held once, for the router's life: a table
     * served again (truncated under the router) keeps them. */
    if (r->cfg->cluster.on && r->cluster == NULL &&
        gr_rtr_cluster_open(r, &r->cfg->cluster, err, sizeof(err)) != 0) {
        gr_rtr_log("%s", err);
        gr_shm_detach(&r->t);
        gr_rtr_mirror_free(r);
        return -1;
    }
    r->hide_choice = !r->adopted;
    rc = gr_rtr_apply(r, r->cfg, err, sizeof(err));
    if (rc == 0 && !r->adopted) {
        gr_rtr_state_restore(r);
        gr_rtr_spend_restore(r);
        r->hide_choice = false;
        rc = gr_rtr_apply(r, r->cfg, err, sizeof(err));
    }
    if (rc != 0) {
        gr_rtr_log("%s", err);
        gr_shm_detach(&r->t);
        gr_rtr_mirror_free(r);
        return -1;
    }
    gr_rtr_note_reload(r, true, NULL);
    gr_rtr_tz_load(r);
    gr_rtr_res_open(r);
    gr_rtr_bj_open(r);
    return 0;
}

static int
run(struct gr_rtr *r)
{
    struct gr_cfg_errors errs = {0};
    char err[512];
    int64_t tick;
    int rc;

    rc = gr_cfg_load(r->config_path, &r->cfg, &errs);
    if (rc != 0) {
        print_errors(&errs);
        gr_cfg_errors_free(&errs);
        return 2;
    }
    gr_cfg_errors_free(&errs);
    gr_rtr_env_hide(r->cfg);
    warn_readable_keys(r->cfg);
    gr_rtr_state_path(r->cfg, r->state_path, sizeof(r->state_path));
    if (serve(r) != 0) {
        gr_cfg_free(r->cfg);
        return 1;
    }
    gr_rtr_log("serving %s: %u projects, %u models, window %lld ms, pid %d",
               r->t.name, r->cfg->n_projects, r->cfg->n_models,
               (long long)(r->t.window_ns / 1000000), (int)getpid());

    watch = gr_rtr_watch_open(r->cfg);
    if (gr_rtr_control_open(r, err, sizeof(err)) != 0) {
        gr_rtr_log("%s", err);
        gr_rtr_watch_close(watch);
        gr_rtr_cluster_close(r);
        /* release: clients and status see a router that is gone */
        atomic_store_explicit(&r->t.hdr->router_pid, 0, memory_order_release);
        gr_shm_detach(&r->t);
        gr_rtr_mirror_free(r);
        gr_cfg_free(r->cfg);
        return 1;
    }

    if (gr_rtr_probe_open(r) != 0)
        gr_rtr_log("health probes: out of memory; disabled keys stay "
                   "disabled until a reload or `gemroute enable`");

    /* Tick at the window's tick, between 5 ms and 50 ms. */
    tick = r->t.tick_ns;
    if (tick < 5000000)
        tick = 5000000;
    if (tick > 50000000)
        tick = 50000000;
    rc = 0;
    while (!stop_flag) {
        char what[512];

        if (reload_flag) {
            reload_flag = 0;
            gr_rtr_log("SIGHUP: reloading %s", r->config_path);
            gr_rtr_reload(r);
        } else if (gr_rtr_watch_due(watch, gr_shm_now_mono(), what,
                                    sizeof(what))) {
            gr_rtr_log("%s changed: reloading %s", what, r->config_path);
            gr_rtr_reload(r);
        }
        gr_rtr_tick(r, gr_shm_now_mono());
        gr_rtr_res_tick(r, gr_shm_now_mono());
        gr_rtr_bj_tick(r, gr_shm_now_mono());
        gr_rtr_history_tick(r, gr_shm_now_mono());
        if (gr_rtr_segment_lost(r, what, sizeof(what))) {
            /* Nothing more is read from it: not even for the state
             * file, which keeps what the last save saw. */
            gr_rtr_log("%s: recreating it; counts come back from the "
                       "state file", what);
            gr_rtr_drop_segment(r);
            if (serve(r) != 0) {
                gr_rtr_log("cannot serve %s again: stopping",
                           r->cfg->router.shm);
                rc = 1;
                break;
            }
            gr_rtr_control_publish(r);     /* into the new header */
            gr_rtr_log("serving %s again", r->t.name);
            continue;
        }
        gr_rtr_probe_tick(r, gr_shm_now_mono());
        if (gr_shm_now_mono() >= r->next_save_ns) {
            gr_rtr_state_save(r);
            r->next_save_ns = gr_shm_now_mono() + SAVE_EVERY_NS;
        }
        gr_rtr_control_wait(r, tick);  /* the sleep; serves operators */
    }
    gr_rtr_control_close(r);
    gr_rtr_probe_close(r);
    gr_rtr_cluster_close(r);
    gr_rtr_history_close(r);
    gr_rtr_watch_close(watch);
    if (rc != 0) {
        gr_cfg_free(r->cfg);
        return rc;
    }
    gr_rtr_state_save(r);
    gr_rtr_log("stopping (%s)", r->unlink_on_exit ? "removing the table" :
               "the table and its counts stay for the next router");
    /* release: clients and status see a router that is gone */
    atomic_store_explicit(&r->t.hdr->router_pid, 0, memory_order_release);
    if (r->unlink_on_exit)
        shm_unlink(r->t.name);
    gr_rtr_res_close(r, r->unlink_on_exit);
    gr_rtr_bj_close(r, r->unlink_on_exit);
    gr_shm_detach(&r->t);
    gr_rtr_mirror_free(r);
    gr_cfg_free(r->cfg);
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"foreground", no_argument, NULL, 'f'},
        {"unlink-on-exit", no_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct gr_rtr r;
    struct sigaction sa;
    bool check = false, foreground = false;
    int c;

    memset(&r, 0, sizeof(r));
    while ((c = getopt_long(argc, argv, "c:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            r.config_path = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'f':
            foreground = true;
            break;
        case 'u':
            r.unlink_on_exit = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (r.config_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (check)
        return check_only(r.config_path);
    if (gr_rtr_no_dumps() != 0)
        fprintf(stderr, "gemrouted: prctl(PR_SET_DUMPABLE): %s: a core "
                "dump of this process would hold its keys\n",
                strerror(errno));
    if (!foreground && daemon(1, 1) != 0) {
        perror("gemrouted: daemon");
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return run(&r);
}
