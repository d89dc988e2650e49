/*
 * testlib.h - what every CUnit test binary shares: a watchdog and one
 * way to run the suites and turn failures into the exit status.
 */
#ifndef GR_TESTLIB_H
#define GR_TESTLIB_H

#include <CUnit/CUnit.h>
#include <stddef.h>
#include <stdint.h>

/* The real Gemini answers the tests use, copied into the repository (a
 * clean clone tests the same bodies); paths are from its root. */
#define GR_TEST_FIXTURES "tests/fixtures/gemini"

/*
 * Run the NULL-terminated suites in CUnit's basic mode after arming an
 * alarm() of watchdog_s seconds (a hung test kills the binary instead of
 * the CI run).  Returns the process exit status: 0 when every test passed.
 */
int gr_test_main(const char *name, CU_SuiteInfo *suites, unsigned watchdog_s);

/* xorshift64: the tests' reproducible random numbers (*s must not be 0). */
uint64_t gr_test_rand(uint64_t *s);

/* Sleep ns nanoseconds (for pacing, never to judge anything). */
void gr_test_sleep_ns(int64_t ns);

/* Seconds of the watchdog, multiplied under sanitizers (GR_SANITIZED=1). */
unsigned gr_test_scaled(unsigned seconds);

/*
 * GR_TEST_FIXTURES/name read whole into a malloc'd buffer with a NUL
 * after its *len bytes; NULL (and a line on stderr) if it cannot be read.
 */
char *gr_test_fixture(const char *name, size_t *len);

/* The file at path read whole into a malloc'd buffer with a NUL after its
 * *len (when len is not NULL) bytes; NULL if it cannot be read. */
char *gr_test_read(const char *path, size_t *len);

/* A fresh /tmp/grTAG.XXXXXX into dir and /grtest-TAG-PID into shm (no
 * table left under it): where a test keeps its files and its table.
 * 0, or -1. */
int gr_test_names(char *dir, size_t dirlen, char *shm, size_t shmlen,
                  const char *tag);

#endif
