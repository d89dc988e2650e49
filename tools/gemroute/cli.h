/*
 * cli.h - the subcommands of the gemroute command.
 *
 * Each is int gr_cli_NAME(int argc, char **argv) with argv[0] the
 * command's own name (so getopt works as in a main()), returning the exit
 * status: 0 done, 1 failed, 2 bad usage.  main.c lists them in one table.
 */
#ifndef GR_CLI_H
#define GR_CLI_H

#include <stdio.h>

/* gemroute explain [--status N] [--now UNIX_S] FILE|- */
int gr_cli_explain(int argc, char **argv);

/* gemroute status [--shm NAME] [--json | --prometheus] [--watch [S]] */
int gr_cli_status(int argc, char **argv);

/* gemroute reload [--timeout S]: SIGHUP the router, wait for the outcome
 * (control.c, like the four below) */
int gr_cli_reload(int argc, char **argv);

/* gemroute drain|enable|disable PROJECT[/MODEL]: operator state, which
 * the router applies when asked over its control socket */
int gr_cli_drain(int argc, char **argv);
int gr_cli_enable(int argc, char **argv);
int gr_cli_disable(int argc, char **argv);

/* gemroute reset PROJECT[/MODEL] [--dim D]: cooldowns, learned limits */
int gr_cli_reset(int argc, char **argv);

/* gemroute reserve --model M [--tokens N] ... : one lease as JSON */
int gr_cli_reserve(int argc, char **argv);

/* gemroute call --model M [--stream] [--raw] [-v] (--json FILE | TEXT) */
int gr_cli_call(int argc, char **argv);

/* gemroute load --procs N --rate R --duration S --model M ... */
int gr_cli_load(int argc, char **argv);

/* gemroute batch submit|status|results|pools (batch_cmd.c). */
int gr_cli_batch(int argc, char **argv);

/* gemroute cache stats|clear (cache_cmd.c). */
int gr_cli_cache(int argc, char **argv);

/* gemroute resources [--shm NAME] [--json]: the resource record */
int gr_cli_resources(int argc, char **argv);

/* Print s as a JSON string literal. */
void gr_cli_json_str(FILE *f, const char *s);

#endif
