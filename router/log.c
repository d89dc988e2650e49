/*
 * log.c - the router's log: one line per record on stderr, prefixed with
 * the UTC time, so that journald or a file keeps it readable.  Nothing
 * logged here may contain a key: callers pass names, never values.
 */
#include "router.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void
gr_rtr_log(const char *fmt, ...)
{
    char stamp[32], line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ldZ gemrouted: %s\n", stamp, ts.tv_nsec / 1000000,
            line);
}
