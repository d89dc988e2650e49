/*
 * stress_hostile.c - the segment is untrusted input (DESIGN.md).
 *
 * A real router serves a table while client processes reserve and
 * settle, a status process reads it over and over, and a vandal process
 * writes random bytes over random places of the segment, header included.
 * Nobody may crash: the router stays up, every client and every status
 * run exits normally, and once the vandal stops the router has repaired
 * what it owns, so that a fresh `gemroute status` attaches and reads the
 * table again.
 */
#include "gemroute.h"
#include "testlib.h"
#include "testrouter.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NCLIENTS 4
#define VANDAL_WRITES 20000

static const char *bin_dir;
static pid_t router_pid;    /* killed at exit if the test did not stop it */
static char dir[64], shm[64], conf[128];

static pid_t
spawn(const char *prog, const char *a1, const char *a2, const char *a3,
      const char *a4, const char *a5)
{
    pid_t pid = fork();

    if (pid == 0) {
        char path[256];

        if (freopen("/dev/null", "w", stdout) == NULL)
            _exit(127);
        snprintf(path, sizeof(path), "%s/%s", bin_dir, prog);
        execl(path, path, a1, a2, a3, a4, a5, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void
client(int seconds)
{
    char err[256];
    struct gr *g = gr_open(shm, err, sizeof(err));
    struct gr_cost cost = {1, 50, 0};
    struct gr_usage use = {-1, -1, 0};
    time_t end = time(NULL) + seconds;

    if (g == NULL)
        _exit(3);
    while (time(NULL) < end) {
        struct gr_lease l;

        if (gr_reserve(g, "m", &cost, 0, &l) == GR_OK)
            gr_commit(g, &l, &use);
        else
            usleep(100);
    }
    gr_close(g);
    _exit(0);
}

static void
vandal(void)
{
    int fd = shm_open(shm, O_RDWR, 0);
    struct stat st;
    unsigned char *base;
    uint64_t s = 0x1234567u ^ (uint64_t)getpid();

    if (fd < 0 || fstat(fd, &st) != 0)
        _exit(3);
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
                MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        _exit(3);
    for (int i = 0; i < VANDAL_WRITES; i++) {
        /* Half the writes hit the first 64 KiB (header, models,
         * projects, leases), the rest anywhere. */
        size_t span = (i & 1) && st.st_size > 65536 ? 65536
                                                     : (size_t)st.st_size;
        size_t off = (size_t)(gr_test_rand(&s) % span);
        size_t len = 1 + gr_test_rand(&s) % 16, k;

        for (k = 0; k < len && off + k < (size_t)st.st_size; k++)
            base[off + k] = (unsigned char)gr_test_rand(&s);
        if (i % 200 == 0)
            usleep(1000);
    }
    _exit(0);
}

static void
test_random_bytes_crash_nobody(void)
{
    pid_t router, clients[NCLIENTS], vandal_pid;
    int st, i, status_runs = 0, status_bad = 0;

    {
        char log[128];

        snprintf(log, sizeof(log), "%s/router.log", dir);
        router = gr_test_router_start(conf, shm, log);
    }
    CU_ASSERT_FATAL(router > 0);
    router_pid = router;
    for (i = 0; i < NCLIENTS; i++)
        if ((clients[i] = fork()) == 0)
            client(4);
    vandal_pid = fork();
    if (vandal_pid == 0)
        vandal();
    /* Status runs while the vandal works. */
    while (waitpid(vandal_pid, &st, WNOHANG) == 0) {
        pid_t s = spawn("gemroute", "status", "--shm", shm, "--json", NULL);
        int sst;

        waitpid(s, &sst, 0);
        status_runs++;
        if (!WIFEXITED(sst) || WEXITSTATUS(sst) > 1) {
            status_bad++;
            if (WIFSIGNALED(sst))
                printf("\n  a status run was killed by signal %d\n",
                       WTERMSIG(sst));
            else
                printf("\n  a status run exited %d\n", WEXITSTATUS(sst));
        }
    }
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (i = 0; i < NCLIENTS; i++) {
        waitpid(clients[i], &st, 0);
        CU_ASSERT(WIFEXITED(st));
        if (WIFSIGNALED(st))
            printf("\n  client killed by signal %d\n", WTERMSIG(st));
    }
    printf("\n  %d status runs during the damage, %d abnormal\n", status_runs,
           status_bad);
    CU_ASSERT(status_runs > 0);
    CU_ASSERT_EQUAL(status_bad, 0);
    /* The router is alive and repairs what it owns: a status that attaches
     * again succeeds (polled; the watchdog bounds it). */
    CU_ASSERT_EQUAL(waitpid(router, &st, WNOHANG), 0);
    for (i = 0;; i++) {
        pid_t s = spawn("gemroute", "status", "--shm", shm, NULL, NULL);
        int sst;

        waitpid(s, &sst, 0);
        if (WIFEXITED(sst) && WEXITSTATUS(sst) == 0)
            break;
        usleep(50000);
    }
    {
        char cmd[256];

        snprintf(cmd, sizeof(cmd), "grep -q 'repaired [0-9]* damaged' "
                 "%s/router.log", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
    }
    /* Still responsive, not stuck on what it read: break the magic once
     * more and see the router put it back (polled, watchdog-bounded). */
    {
        int fd = shm_open(shm, O_RDWR, 0);
        uint64_t *magic = fd < 0 ? NULL : mmap(NULL, 4096,
                                               PROT_READ | PROT_WRITE,
                                               MAP_SHARED, fd, 0);
        uint64_t good;

        CU_ASSERT_FATAL(magic != NULL && magic != MAP_FAILED);
        good = *magic;
        *magic = 0;
        while (__atomic_load_n(magic, __ATOMIC_RELAXED) != good)
            usleep(20000);
        munmap(magic, 4096);
        close(fd);
    }
    kill(router, SIGTERM);
    waitpid(router, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    router_pid = 0;
}

int
main(void)
{
    CU_TestInfo tests[] = {
        {"random bytes crash nobody", test_random_bytes_crash_nobody},
        CU_TEST_INFO_NULL,
    };
    CU_SuiteInfo suites[] = {
        {"hostile", NULL, NULL, NULL, NULL, tests},
        CU_SUITE_INFO_NULL,
    };
    FILE *f;
    char cmd[128];
    int rc;

    bin_dir = getenv("BIN") ? getenv("BIN") : "bin";
    snprintf(dir, sizeof(dir), "/tmp/grhostile.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 2;
    snprintf(shm, sizeof(shm), "/grtest-hostile-%d", (int)getpid());
    snprintf(conf, sizeof(conf), "%s/r.conf", dir);
    f = fopen(conf, "w");
    if (f == NULL)
        return 2;
    fprintf(f, "router = { shm = \"%s\"; window_ms = 1000; max_projects = 8; "
            "max_models = 2; max_leases = 64; state_file = \"state\"; };\n"
            "models = ( { name = \"m\"; rpm = 1000; tpm = 100000; } );\n"
            "projects = ( { name = \"a\"; key = \"hostile-SECRET-1\"; },\n"
            "  { name = \"b\"; key = \"hostile-SECRET-2\"; } );\n", shm);
    fclose(f);
    rc = gr_test_main("stress_hostile", suites, 120);
    if (router_pid > 0)
        kill(router_pid, SIGKILL);  /* never leave a router behind */
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    shm_unlink(shm);
    return rc;
}
