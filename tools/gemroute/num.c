/*
 * num.c - the options of the gemroute subcommands that are numbers: all
 * of the string or nothing, finite, and in the range the caller gives,
 * so that no NaN, infinity or absurd value reaches a conversion to
 * nanoseconds (see num.h).
 */
#include "num.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool
gr_cli_number(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    /* strtod skips leading blanks and reads "nan", "inf" and hex. */
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s) ||
        strpbrk(s, "xX") != NULL)
        return false;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) ||
        !(v > lo && v <= hi))
        return false;
    *out = v;
    return true;
}

bool
gr_cli_integer(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}
