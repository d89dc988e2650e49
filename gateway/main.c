/*
 * main.c - gemroute-gateway: Gemini REST and Google's OpenAI-compatible
 * API on a local HTTP port, every request sent through the table.
 *
 *   gemroute-gateway -c FILE [--foreground]
 *
 * The gateway is one more client of the table: it attaches to the
 * segment the router publishes (router.shm of the same file) and never
 * owns it.  It reads the gateway section of FILE, and reads it again on
 * SIGHUP and when one of the config's files changes; a bad file is
 * reported as FILE:LINE and the running settings stay.  The address,
 * port and worker count are fixed at start (a reload that changes them
 * says so).  SIGTERM and SIGINT stop it.
 *
 * Invariant protected: the running settings are always a whole, checked
 * gateway section (swapped under a write lock, never edited in place).
 */
#include "config.h"
#include "gw.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_WATCHED 16

static void
usage(FILE *f)
{
    fprintf(f, "usage: gemroute-gateway -c FILE [--foreground]\n");
}

/* Load path; print its errors; NULL on failure. */
static struct gr_cfg *
load(const char *path)
{
    struct gr_cfg_errors errs = {0, NULL};
    struct gr_cfg *cfg = NULL;
    unsigned i;

    if (gr_cfg_load(path, &cfg, &errs) != 0) {
        for (i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.lines[i]);
        gr_cfg_errors_free(&errs);
        return NULL;
    }
    gr_cfg_errors_free(&errs);
    return cfg;
}

/* The files of cfg and their modification times, to see a change. */
struct watch {
    unsigned n;
    char *path[MAX_WATCHED];
    struct timespec mtime[MAX_WATCHED];
};

static void
watch_set(struct watch *w, const struct gr_cfg *cfg)
{
    struct stat st;
    unsigned i;

    for (i = 0; i < w->n; i++)
        free(w->path[i]);
    w->n = 0;
    for (i = 0; i < cfg->n_files && w->n < MAX_WATCHED; i++) {
        w->path[w->n] = strdup(cfg->files[i]);
        if (w->path[w->n] == NULL)
            break;
        memset(&w->mtime[w->n], 0, sizeof(w->mtime[0]));
        if (stat(cfg->files[i], &st) == 0)
            w->mtime[w->n] = st.st_mtim;
        w->n++;
    }
}

static bool
watch_changed(const struct watch *w)
{
    struct stat st;
    unsigned i;

    for (i = 0; i < w->n; i++) {
        if (stat(w->path[i], &st) != 0)
            continue;   /* mid-replace: seen on the next look */
        if (st.st_mtim.tv_sec != w->mtime[i].tv_sec ||
            st.st_mtim.tv_nsec != w->mtime[i].tv_nsec)
            return true;
    }
    return false;
}

/* Take the files' times as seen: a bad file is reported once, not on
 * every look until it changes. */
static void
watch_seen(struct watch *w)
{
    struct stat st;
    unsigned i;

    for (i = 0; i < w->n; i++)
        if (stat(w->path[i], &st) == 0)
            w->mtime[i] = st.st_mtim;
}

static void
reload(struct gw *gw, const char *path, struct watch *w)
{
    struct gr_cfg *cfg = load(path);
    const struct gr_cfg_gateway *n;
    char changed[256];

    if (cfg == NULL) {
        watch_seen(w);
        gw_log("reload of %s refused: the running settings stay", path);
        return;
    }
    n = gr_cfg_gateway(cfg);
    pthread_rwlock_wrlock(&gw->lock);
    if (gr_cfg_gateway_restart_changes(&gw->conf, n, changed,
                                       sizeof(changed)) > 0)
        gw_log("reload: %s changed: that takes effect at the next start "
               "only", changed);
    {
        struct gr_cfg_gateway keep = gw->conf;

        gw->conf = *n;
        /* What the running daemon was started with stays. */
        memcpy(gw->conf.host, keep.host, sizeof(keep.host));
        memcpy(gw->conf.listen, keep.listen, sizeof(keep.listen));
        gw->conf.port = keep.port;
        gw->conf.loopback = keep.loopback;
        gw->conf.insecure = keep.insecure;
        gw->conf.workers = keep.workers;
        gw->conf.loops = keep.loops;
        gw->conf.timeout_s = keep.timeout_s;
        gw->conf.tls = keep.tls;
        memcpy(gw->conf.tls_cert, keep.tls_cert, sizeof(keep.tls_cert));
        memcpy(gw->conf.tls_key, keep.tls_key, sizeof(keep.tls_key));
        explicit_bzero(&keep, sizeof(keep));
    }
    pthread_rwlock_unlock(&gw->lock);
    watch_set(w, cfg);
    gw_log("reloaded %s", path);
    gr_cfg_free(cfg);
}

int
main(int argc, char **argv)
{
    const char *path = NULL;
    bool foreground = false;
    struct gr_cfg *cfg;
    struct watch w = {0};
    struct gw gw;
    sigset_t set;
    char err[256];
    int i, sig;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--foreground") == 0) {
            foreground = true;
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL) {
        usage(stderr);
        return 2;
    }
    if ((cfg = load(path)) == NULL)
        return 2;
    memset(&gw, 0, sizeof(gw));
    pthread_rwlock_init(&gw.lock, NULL);
    gw.conf = *gr_cfg_gateway(cfg);
    if (gw.conf.n_tokens == 0) {
        if (!gw.conf.loopback) {
            fprintf(stderr, "gemroute-gateway: %s: gateway.listen %s is not "
                    "loopback and no gateway.tokens are set: refusing to "
                    "serve anyone who can reach it\n", path,
                    gw.conf.listen);
            gr_cfg_free(cfg);
            return 2;
        }
        gw_log("warning: no gateway.tokens: any local process may call "
               "%s", gw.conf.listen);
    }
    snprintf(gw.shm, sizeof(gw.shm), "%s", cfg->router.shm);
    gw.g = gr_open(cfg->router.shm, err, sizeof(err));
    if (gw.g == NULL) {
        fprintf(stderr, "gemroute-gateway: %s\n", err);
        gr_cfg_free(cfg);
        return 1;
    }
    watch_set(&w, cfg);
    gr_cfg_free(cfg);

    /* Signals are taken by sigtimedwait below, in this thread only. */
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!foreground && daemon(1, 1) != 0) {
        fprintf(stderr, "gemroute-gateway: daemon: %s\n", strerror(errno));
        return 1;
    }
    if (gw_server_start(&gw) != 0) {
        gr_close(gw.g);
        explicit_bzero(&gw.conf, sizeof(gw.conf));
        for (i = 0; i < (int)w.n; i++)
            free(w.path[i]);
        return 1;
    }
    printf("listening on %s%s%s:%u\n", strchr(gw.conf.host, ':') ? "[" : "",
           gw.conf.host, strchr(gw.conf.host, ':') ? "]" : "", gw.port);
    fflush(stdout);
    gw_log("serving %s (port %u)%s", gw.conf.listen, gw.port,
           gw.conf.tls ? " over HTTPS" : "");

    for (;;) {
        struct timespec one = {1, 0};

        sig = sigtimedwait(&set, NULL, &one);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP || (sig < 0 && watch_changed(&w)))
            reload(&gw, path, &w);
    }
    gw_log("stopping");
    if (gw_server_stop(&gw) == 0)
        gr_close(gw.g);
    else
        gw_log("a call is still waiting for room: exiting without it");
    explicit_bzero(&gw.conf, sizeof(gw.conf));
    for (i = 0; i < (int)w.n; i++)
        free(w.path[i]);
    return 0;
}
