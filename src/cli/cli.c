#include "cli.h"

#include "../tenancy/tenancy.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int
cli_find(const char *const *list, const char *a, size_t *len)
{
	for (int i = 0; list != NULL && list[i] != NULL && i < CLI_MAX_OPTS; i++) {
		size_t n = strlen(list[i]);
		if (strncmp(a, list[i], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
			*len = n;
			return i;
		}
	}
	return -1;
}

int
cli_parse_with(int argc, char **argv, const char *const *valopts, const char *const *flagopts,
	       struct cli_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->valopts = valopts;
	o->flagopts = flagopts;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t n;
		int k;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			o->help = 1;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "bulwark: %s needs a file name\n", a);
				return 2;
			}
			o->config_path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			o->config_path = a + 9;
		} else if ((k = cli_find(valopts, a, &n)) >= 0) {
			if (a[n] == '=') {
				o->vals[k] = a + n + 1;
			} else if (i + 1 < argc) {
				o->vals[k] = argv[++i];
			} else {
				fprintf(stderr, "bulwark: %s needs a value\n", a);
				return 2;
			}
		} else if ((k = cli_find(flagopts, a, &n)) >= 0 && a[n] == '\0') {
			o->flags[k] = 1;
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "bulwark: unknown option '%s' (see --help)\n", a);
			return 2;
		} else {
			if (o->nargs == (int)BW_ARRAY_LEN(o->args)) {
				fprintf(stderr, "bulwark: too many arguments\n");
				return 2;
			}
			o->args[o->nargs++] = argv[i];
		}
	}
	return 0;
}

int
cli_parse(int argc, char **argv, struct cli_opts *o)
{
	return cli_parse_with(argc, argv, NULL, NULL, o);
}

const char *
cli_val(const struct cli_opts *o, const char *name)
{
	size_t n;
	int k = cli_find(o->valopts, name, &n);
	return k >= 0 ? o->vals[k] : NULL;
}

int
cli_flag(const struct cli_opts *o, const char *name)
{
	size_t n;
	int k = cli_find(o->flagopts, name, &n);
	return k >= 0 ? o->flags[k] : 0;
}

int
cli_load_config(const struct cli_opts *o, struct config *cfg)
{
	char err[1024];
	if (config_load(cfg, o->config_path, environ, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: configuration: %s\n", err);
		return 1;
	}
	log_level l;
	if (log_level_parse(cfg->log_level, &l) == BW_OK)
		log_set_level(l);
	return 0;
}

int
cli_version(int argc, char **argv)
{
	struct cli_opts o;
	int rc = cli_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	printf("bulwark %s\n", BULWARK_VERSION);
	return 0;
}

int
cli_config(int argc, char **argv)
{
	struct cli_opts o;
	struct config cfg;
	int rc = cli_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.nargs != 1 || (strcmp(o.args[0], "check") != 0 && strcmp(o.args[0], "show") != 0)) {
		fprintf(stderr, "bulwark config: say 'check' or 'show' (see --help)\n");
		return 2;
	}
	if (cli_load_config(&o, &cfg) != 0)
		return 1;
	if (strcmp(o.args[0], "show") == 0)
		config_dump(&cfg, stdout);
	else
		printf("configuration OK (%s)\n", cfg.source[0] ? cfg.source : "defaults");
	return 0;
}

/* Who ran it, for the history: the login behind sudo if any. */
void
cli_actor(char *out, size_t len)
{
	const char *u = getenv("SUDO_USER");
	if (u == NULL || *u == '\0') {
		struct passwd *pw = getpwuid(getuid());
		u = pw ? pw->pw_name : "unknown";
	}
	snprintf(out, len, "cli:%s", u);
}

int
cli_op_open(const struct cli_opts *o, const char *slug, const char *label, struct cli_op *c)
{
	char err[1024];
	struct tenant *tn = NULL;
	memset(c, 0, sizeof(*c));
	if (cli_load_config(o, &c->cfg) != 0)
		return 1;
	if (tenancy_open(&c->cfg, 0, &c->t, err, sizeof(err)) != BW_OK ||
	    tenant_list(c->t, &c->list, &c->n, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->list[i].slug, slug) == 0)
			tn = &c->list[i];
	if (tn == NULL) {
		fprintf(stderr, "bulwark: no tenant '%s'\n", slug);
		return 1;
	}
	if (tenancy_connect_tenant(c->t, tn, 0, &c->d, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		return 1;
	}
	if ((c->pool = pool_new(1024 * 1024)) == NULL) {
		fprintf(stderr, "bulwark: out of memory\n");
		return 1;
	}
	cli_actor(c->who, sizeof(c->who));
	struct actor a = op_system(label);
	a.by = c->who;
	op_init(&c->op, c->pool, &c->cfg, c->t, tn, c->d, &a);
	return 0;
}

void
cli_op_close(struct cli_op *c)
{
	db_close(c->d);
	pool_free(c->pool);
	free(c->list);
	tenancy_close(c->t);
	memset(c, 0, sizeof(*c));
}

void
cli_op_error(const struct cli_op *c, bw_err e)
{
	const char *msg = c->op.err == e && c->op.err_msg != NULL ? c->op.err_msg : bw_strerror(e);
	if (e == BW_ERR_DB || e == BW_ERR_UNAVAILABLE)
		fprintf(stderr, "bulwark: %s (%s)\n", msg, c->d ? db_errmsg(c->d) : "no connection");
	else
		fprintf(stderr, "bulwark: %s\n", msg);
}
