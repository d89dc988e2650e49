/*
 * testrouter.c - start and stop a real gemrouted for a test binary: every
 * C test that runs the router does it through here.
 */
#include "testrouter.h"
#include "testlib.h"
#include "gemroute.h"
#include "gemroute_stat.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Does the router serving shm say it is pid, with a config applied and
 * its control socket published?  The socket is the router's last step
 * before it serves (after the config watch), so a test may then change
 * the config file and count on the router to see it.
 */
static bool
ready(const char *shm, pid_t pid)
{
    struct gr_stat_router r;
    char err[256];
    struct gr_stat *st = gr_stat_open(shm, err, sizeof(err));

    if (st == NULL)
        return false;
    gr_stat_router(st, &r);
    gr_stat_close(st);
    return r.pid == (int64_t)pid && r.config_generation > 0 && r.text_ok &&
           r.control_path[0] != '\0';
}

int
gr_test_router_start(const char *conf, const char *shm, const char *log)
{
    const char *bin = getenv("BIN") ? getenv("BIN") : "bin";
    char path[256];
    pid_t pid;

    snprintf(path, sizeof(path), "%s/gemrouted", bin);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log != NULL ? log : "/dev/null",
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execl(path, path, "-c", conf, "--foreground", "--unlink-on-exit",
              (char *)NULL);
        _exit(127);
    }
    for (;;) {                  /* the watchdog bounds this */
        if (ready(shm, pid))
            return (int)pid;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            fprintf(stderr, "gemrouted -c %s exited before it was ready%s%s\n",
                    conf, log != NULL ? "; see " : "",
                    log != NULL ? log : "");
            return -1;
        }
        usleep(5000);
    }
}

int
gr_test_router_paths(struct gr_test_router *r, const char *tag)
{
    if (gr_test_names(r->dir, sizeof(r->dir), r->shm, sizeof(r->shm),
                      tag) != 0)
        return -1;
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

const char *
gr_test_conf_put(const char *path, const char *fmt, ...)
{
    char tmp[300];
    va_list ap;
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL)
        return NULL;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    if (fclose(f) != 0)
        return NULL;
    return rename(tmp, path) == 0 ? path : NULL;
}
