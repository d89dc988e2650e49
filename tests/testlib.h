/*
 * testlib.h - what every CUnit test binary shares: a watchdog and one
 * way to run the suites and turn failures into the exit status.
 */
#ifndef GR_TESTLIB_H
#define GR_TESTLIB_H

#include <CUnit/CUnit.h>

/*
 * Run the NULL-terminated suites in CUnit's basic mode after arming an
 * alarm() of watchdog_s seconds (a hung test kills the binary instead of
 * the CI run).  Returns the process exit status: 0 when every test passed.
 */
int gr_test_main(const char *name, CU_SuiteInfo *suites, unsigned watchdog_s);

/* Seconds of the watchdog, multiplied under sanitizers (GR_SANITIZED=1). */
unsigned gr_test_scaled(unsigned seconds);

#endif
