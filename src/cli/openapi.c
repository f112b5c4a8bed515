/*
 * bulwark openapi [--output FILE]: the OpenAPI document of the route table
 * `bulwark serve` registers (src/openapi/), the same the server answers at
 * GET /api/v1/openapi.json. make check lints it and tests it against
 * `bulwark routes`.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../openapi/openapi.h"

int
cli_openapi(int argc, char **argv)
{
	static const char *const valopts[] = {"--output", "-o", NULL};
	struct cli_opts o;
	struct route *v;
	struct router *rt;
	size_t n;
	char err[512];
	json_t *doc;
	int rc = cli_parse_with(argc, argv, valopts, NULL, &o);
	if (rc != 0)
		return rc;
	if (o.nargs != 0) {
		fprintf(stderr, "bulwark openapi: unexpected argument '%s'\n", o.args[0]);
		return 2;
	}
	const char *out = cli_val(&o, "--output");
	if (out == NULL)
		out = cli_val(&o, "-o");
	if (cli_route_table(&v, &n) != BW_OK) {
		fprintf(stderr, "bulwark openapi: out of memory\n");
		return 1;
	}
	if (router_new(v, n, 1 << 20, &rt, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark openapi: the route table is invalid: %s\n", err);
		free(v);
		return 1;
	}
	bw_err e = openapi_build(rt, &doc, err, sizeof(err));
	router_free(rt);
	free(v);
	if (e != BW_OK) {
		fprintf(stderr, "bulwark openapi: %s\n", err);
		return 1;
	}
	char *text = json_dumps(doc, JSON_INDENT(1));
	json_decref(doc);
	if (text == NULL) {
		fprintf(stderr, "bulwark openapi: out of memory\n");
		return 1;
	}
	FILE *f = out != NULL ? fopen(out, "w") : stdout;
	if (f == NULL) {
		fprintf(stderr, "bulwark openapi: %s: %s\n", out, strerror(errno));
		free(text);
		return 1;
	}
	int bad = fputs(text, f) == EOF || fputc('\n', f) == EOF;
	bad |= (f == stdout ? fflush(f) : fclose(f)) != 0;
	free(text);
	if (bad) {
		fprintf(stderr, "bulwark openapi: %s: cannot write: %s\n", out ? out : "standard output",
			strerror(errno));
		return 1;
	}
	return 0;
}
