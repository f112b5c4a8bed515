/*
 * cli: the bulwark command line. Each subcommand is a row of cli_commands
 * (main.c) with its own --help.
 */
#ifndef BW_CLI_H
#define BW_CLI_H

#include "../config/config.h"
#include "../op/op.h"

struct cli_cmd {
	const char *name;
	const char *summary;
	const char *usage; /* full --help text */
	int (*run)(int argc, char **argv);
};

/* Shared option parsing: -c FILE / --config FILE, --help, and per-command options. */
#define CLI_MAX_OPTS 8
struct cli_opts {
	const char *config_path;
	int help;
	int nargs;
	char *args[16];
	const char *const *valopts;  /* "--name" options that take a value */
	const char *const *flagopts; /* "--name" options without one */
	const char *vals[CLI_MAX_OPTS];
	int flags[CLI_MAX_OPTS];
};
/*
 * Parse argv (argv[0] is the command). valopts and flagopts may be NULL.
 * 0 on success, 2 with a message on stderr for bad usage.
 */
int cli_parse_with(int argc, char **argv, const char *const *valopts,
		   const char *const *flagopts, struct cli_opts *o);
int cli_parse(int argc, char **argv, struct cli_opts *o);
/* Value of a value option, or NULL; whether a flag was given. */
const char *cli_val(const struct cli_opts *o, const char *name);
int cli_flag(const struct cli_opts *o, const char *name);
/* Who ran the command (for histories and the audit log): "cli:LOGIN", sudo's user if any. */
void cli_actor(char *out, size_t len);
/* Load configuration as the subcommand's -c says; prints errors; 0/1. */
int cli_load_config(const struct cli_opts *o, struct config *cfg);

/*
 * A unit of work on one tenant from the command line: the operator acts
 * as the system actor labelled label ("bulwark user unlock"), with who ran
 * it recorded in the audit row. The CLI runs the same operations as the
 * API through it.
 */
struct cli_op {
	struct config cfg;
	struct tenancy *t;
	struct tenant *list;
	size_t n;
	db *d;
	pool *pool;
	char who[96];
	struct op op;
};
/* Open it on tenant slug; 0, or 1 with the reason on stderr (then close it all the same). */
int cli_op_open(const struct cli_opts *o, const char *slug, const char *label, struct cli_op *c);
void cli_op_close(struct cli_op *c);
/* "bulwark: <why>" for the error an operation returned. */
void cli_op_error(const struct cli_op *c, bw_err e);

int cli_serve(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_tenant(int argc, char **argv);
int cli_keys(int argc, char **argv);
int cli_user(int argc, char **argv);
int cli_jobs(int argc, char **argv);
int cli_routes(int argc, char **argv);
int cli_openapi(int argc, char **argv);
struct route;
/* Every route the server registers, in one malloc'd table (free it). */
bw_err cli_route_table(struct route **out, size_t *n) BW_MUST_USE;
int cli_audit(int argc, char **argv);

#define BULWARK_VERSION "0.1.0"

#endif
