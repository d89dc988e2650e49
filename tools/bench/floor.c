/*
 * floor.c - the timing of the floor programs (floor.h): wall clock from
 * CLOCK_MONOTONIC, CPU (user + system) from getrusage().
 */
#include "floor.h"

#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int
gr_floor_run(const char *tag, double secs, void (*turn)(void *arg),
             void *arg, long *done, long *errors)
{
    double t0, t1, c0;
    long n0;

    /* The first second opens the connections; the run is after it. */
    for (t0 = now_s(); now_s() - t0 < 1.0;)
        turn(arg);
    n0 = *done;
    *errors = 0;
    c0 = cpu_s();
    for (t0 = t1 = now_s(); t1 - t0 < secs; t1 = now_s())
        turn(arg);
    printf("%s {\"requests\": %ld, \"seconds\": %.3f, \"cpu_s\": %.4f, "
           "\"errors\": %ld}\n", tag, *done - n0, t1 - t0, cpu_s() - c0,
           *errors);
    return *errors > 0 ? 1 : 0;
}
