/*
 * snapshot.c - what the tools share around the library's snapshot:
 * the --shm option.
 *
 * The snapshot itself (copying the table read-only, judging health) is
 * the library's (client/snapshot.c, include/gemroute_stat.h); nothing
 * under tools/gemroute reads the layout.
 */
#include "snapshot.h"

#include <stdio.h>
#include <string.h>

const char *
gr_cli_take_shm(int *argc, char **argv)
{
    const char *name = NULL;
    int i, j;

    for (i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--shm") == 0 && i + 1 < *argc) {
            name = argv[i + 1];
            for (j = i; j + 2 <= *argc; j++)
                argv[j] = argv[j + 2];
            *argc -= 2;
            i--;
        } else if (strncmp(argv[i], "--shm=", 6) == 0) {
            name = argv[i] + 6;
            for (j = i; j + 1 <= *argc; j++)
                argv[j] = argv[j + 1];
            *argc -= 1;
            i--;
        }
    }
    return name;
}
