/*
 * floor.h - what gr-bench-curl-floor and gr-bench-h1-floor share (one
 * half of a gateway call alone, section 4 of docs/BENCHMARKS.md): a
 * second to open the connections, then SECONDS of the program's turns,
 * and one line with the calls made and the CPU they took.
 */
#ifndef GR_BENCH_FLOOR_H
#define GR_BENCH_FLOOR_H

/*
 * Call turn(arg) for one second, then for secs more, and print
 *   TAG {"requests": N, "seconds": S, "cpu_s": C, "errors": E}
 * counting the calls and errors (*done, *errors, which turn() raises)
 * of the second part only.  Returns 0, or 1 when there were errors.
 */
int gr_floor_run(const char *tag, double secs, void (*turn)(void *arg),
                 void *arg, long *done, long *errors);

#endif
