/*
 * testlib.c - the CUnit runner every test binary uses.
 */
#include "testlib.h"

#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

uint64_t
gr_test_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

void
gr_test_sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000, ns % 1000000000};

    nanosleep(&ts, NULL);
}

unsigned
gr_test_scaled(unsigned seconds)
{
    const char *san = getenv("GR_SANITIZED");

    return (san != NULL && strcmp(san, "1") == 0) ? seconds * 4 : seconds;
}

/* The watchdog: say so, then take down the whole process group (the
 * test and every router, mock and client it started). */
static void
on_alarm(int sig)
{
    static const char msg[] = "\nwatchdog: the test ran out of time\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* nothing more to do */
    }
    kill(0, SIGKILL);
}

int
gr_test_main(const char *name, CU_SuiteInfo *suites, unsigned watchdog_s)
{
    unsigned failed;

    /* Our own process group, so the watchdog kills our children and
     * nothing above us (make, the test runner). */
    setpgid(0, 0);
    /* A router a test starts probes only loopback (router/probe.c). */
    setenv("GEMROUTE_TEST_LOOPBACK", "1", 1);
    signal(SIGALRM, on_alarm);
    alarm(gr_test_scaled(watchdog_s));
    if (CU_initialize_registry() != CUE_SUCCESS ||
        CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "%s: CUnit: %s\n", name, CU_get_error_msg());
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    /* A test that failed early may have left a router or a mock behind:
     * stop everything in our process group but us. */
    signal(SIGTERM, SIG_IGN);
    kill(0, SIGTERM);
    return failed == 0 ? 0 : 1;
}

char *
gr_test_read(const char *path, size_t *len)
{
    char *buf = NULL;
    long n;
    FILE *f;

    if ((f = fopen(path, "rb")) == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            if (len != NULL)
                *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

char *
gr_test_fixture(const char *name, size_t *len)
{
    char path[512];
    char *buf;

    snprintf(path, sizeof(path), "%s/%s", GR_TEST_FIXTURES, name);
    buf = gr_test_read(path, len);
    if (buf == NULL)
        fprintf(stderr, "\ncannot read %s\n", path);
    return buf;
}

int
gr_test_names(char *dir, size_t dirlen, char *shm, size_t shmlen,
              const char *tag)
{
    snprintf(dir, dirlen, "/tmp/gr%s.XXXXXX", tag);
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(shm, shmlen, "/grtest-%s-%d", tag, (int)getpid());
    shm_unlink(shm);
    return 0;
}
