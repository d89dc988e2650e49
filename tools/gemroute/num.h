/*
 * num.h - numbers given as options to the gemroute subcommands (num.c).
 *
 * atof() and atoi() take "nan", "1e20", "5x" and "" without a word, and
 * a NaN or an out-of-range double then slips past a "> 0" test or
 * overflows a conversion to nanoseconds.  These take the whole string or
 * nothing, refuse what is not finite, and check a range; the caller says
 * "bad usage" (exit 2) with the option's name.
 */
#ifndef GR_CLI_NUM_H
#define GR_CLI_NUM_H

#include <stdbool.h>

/* A finite decimal number v with lo < v <= hi (seconds, rates, ...). */
bool gr_cli_number(const char *s, double lo, double hi, double *out);

/* A whole decimal integer v with lo <= v <= hi. */
bool gr_cli_integer(const char *s, long long lo, long long hi,
                    long long *out);

#endif
