/*
 * testrouter.c - start and stop a real gemrouted for a test binary.
 */
#include "testrouter.h"
#include "gemroute.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int
gr_test_router_start(const char *conf, const char *shm, const char *model)
{
    const char *bin = getenv("BIN") ? getenv("BIN") : "bin";
    char path[256];
    pid_t pid;

    snprintf(path, sizeof(path), "%s/gemrouted", bin);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(127);
        execl(path, path, "-c", conf, "--foreground", "--unlink-on-exit",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 1000; i++) {    /* the watchdog bounds this too */
        char err[256];
        struct gr *g = gr_open(shm, err, sizeof(err));

        if (g != NULL) {
            /* The table exists; wait (bounded) until the router has
             * applied its config: a reservation of nothing then passes. */
            struct gr_cost none = {0, 0, 0};
            struct gr_lease l;
            int rc = gr_reserve(g, model, &none,
                                gr_now_ns() + INT64_C(30000000), &l);

            if (rc == GR_OK)
                gr_commit(g, &l, NULL);
            gr_close(g);
            return rc == GR_OK ? (int)pid : -1;
        }
        usleep(5000);
    }
    return -1;
}

int
gr_test_router_paths(struct gr_test_router *r, const char *tag)
{
    snprintf(r->dir, sizeof(r->dir), "/tmp/gr%s.XXXXXX", tag);
    if (mkdtemp(r->dir) == NULL)
        return -1;
    snprintf(r->shm, sizeof(r->shm), "/grtest-%s-%d", tag, (int)getpid());
    snprintf(r->conf, sizeof(r->conf), "%s/r.conf", r->dir);
    r->pid = -1;
    return 0;
}

int
gr_test_router_end(struct gr_test_router *r)
{
    char cmd[128];
    int stopped = gr_test_router_stop(r->pid);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
    return system(cmd) == 0 && stopped == 0 ? 0 : -1;
}

int
gr_test_router_stop(int pid)
{
    int st;

    if (pid <= 0)
        return -1;
    kill(pid, SIGTERM);
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}
