/*
 * main.c - the gemroute command: `gemroute COMMAND [args]`.
 *
 * One table maps each command to its function (cli.h) and a line of
 * help; adding a command is adding a row.  Invariant: an unknown or
 * missing command prints the usage on stderr and exits 2, so scripts
 * never mistake a typo for success.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
    const char *help;                   /* one line */
};

static const struct command commands[] = {
    {"status", gr_cli_status,
     "[--json|--prometheus] [--watch [S]]  what every project is doing"},
    {"resources", gr_cli_resources,
     "[--json]  files, caches and batch jobs, and the project of each"},
    {"reload", gr_cli_reload,
     "[--timeout S]  reload the router's config, print the outcome"},
    {"drain", gr_cli_drain,
     "PROJECT[/MODEL]  no new calls; calls in flight finish"},
    {"disable", gr_cli_disable,
     "PROJECT[/MODEL]  no new calls until enabled"},
    {"enable", gr_cli_enable,
     "PROJECT[/MODEL]  back in rotation (also after a rejected key)"},
    {"reset", gr_cli_reset,
     "PROJECT[/MODEL] [--dim D]  clear cooldowns and learned limits"},
    {"reserve", gr_cli_reserve,
     "--model M [--tokens N] [--hold-ms N]  one lease, as JSON"},
    {"explain", gr_cli_explain,
     "[--status N] FILE|-  classify a Gemini answer, print it as JSON"},
    {"call", gr_cli_call,
     "--model M [--stream] [--raw] [-v] (--json FILE | TEXT)  one call"},
    {"load", gr_cli_load,
     "--procs N --rate R --duration S --model M  offered load, JSON"},
    {"batch", gr_cli_batch,
     "submit|status|results|pools  batch mode jobs, JSONL in and out"},
    {"cache", gr_cli_cache,
     "stats [--json] | clear  the shared response cache"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
print_usage(FILE *out)
{
    size_t i;

    fputs("usage: gemroute COMMAND [args]\n\ncommands:\n", out);
    for (i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "  %-10s %s\n", "help", "this list");
    fputs("\n'gemroute COMMAND --help' tells more about one.\n", out);
}

int
main(int argc, char **argv)
{
    size_t i;

    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    for (i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "gemroute: unknown command '%s'\n", argv[1]);
    print_usage(stderr);
    return 2;
}
