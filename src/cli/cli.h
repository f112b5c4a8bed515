/*
 * cli: the bulwark command line. Each subcommand is a row of cli_commands
 * (main.c) with its own --help.
 */
#ifndef BW_CLI_H
#define BW_CLI_H

#include "../config/config.h"

struct cli_cmd {
	const char *name;
	const char *summary;
	const char *usage; /* full --help text */
	int (*run)(int argc, char **argv);
};

/* Shared option parsing: -c FILE / --config FILE and --help. */
struct cli_opts {
	const char *config_path;
	int help;
	int nargs;
	char *args[16];
};
/* 0 on success, 2 with a message on stderr for bad usage. */
int cli_parse(int argc, char **argv, struct cli_opts *o);
/* Load configuration as the subcommand's -c says; prints errors; 0/1. */
int cli_load_config(const struct cli_opts *o, struct config *cfg);

int cli_serve(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_config(int argc, char **argv);

#define BULWARK_VERSION "0.1.0"

#endif
