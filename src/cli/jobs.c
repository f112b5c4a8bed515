/*
 * bulwark jobs list|retry|cancel SLUG ...: the operators' view of a
 * tenant's background jobs, the same operations as /api/v1/jobs, run as
 * the system actor (retry and cancel are audited).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../jobs/jobs.h"
#include "../jobs/kinds.h"

static int
cli_jobs_usage(void)
{
	fprintf(stderr, "usage: bulwark jobs list SLUG [STATE] [--json]\n"
			"       bulwark jobs retry SLUG ID\n"
			"       bulwark jobs cancel SLUG ID\n"
			"(see bulwark jobs --help)\n");
	return 2;
}

static void
cli_jobs_print(json_t *list, json_t *counts)
{
	size_t i;
	json_t *j;
	printf("%-8s %-18s %-10s %-9s %-20s %s\n", "ID", "KIND", "STATE", "ATTEMPTS", "RUN AT",
	       "LAST ERROR");
	json_array_foreach(list, i, j)
	{
		char att[32];
		snprintf(att, sizeof(att), "%lld/%lld",
			 (long long)json_integer_value(json_object_get(j, "attempts")),
			 (long long)json_integer_value(json_object_get(j, "max_attempts")));
		printf("%-8lld %-18s %-10s %-9s %-20s %s\n",
		       (long long)json_integer_value(json_object_get(j, "id")),
		       json_string_value(json_object_get(j, "kind")),
		       json_string_value(json_object_get(j, "state")), att,
		       json_string_value(json_object_get(j, "run_at")),
		       json_string_value(json_object_get(j, "last_error")));
	}
	const char *k;
	json_t *v;
	printf("\n");
	json_object_foreach(counts, k, v) printf("%s %lld  ", k, (long long)json_integer_value(v));
	printf("\n");
}

int
cli_jobs(int argc, char **argv)
{
	static const char *const flagopts[] = {"--json", NULL};
	struct cli_opts o;
	struct cli_op c = {0};
	int rc = cli_parse_with(argc, argv, NULL, flagopts, &o);
	if (rc != 0)
		return rc;
	if (o.nargs < 2)
		return cli_jobs_usage();
	const char *verb = o.args[0], *slug = o.args[1];
	int list = strcmp(verb, "list") == 0;
	if (!list && strcmp(verb, "retry") != 0 && strcmp(verb, "cancel") != 0)
		return cli_jobs_usage();
	if ((list && o.nargs > 3) || (!list && o.nargs != 3))
		return cli_jobs_usage();
	const char *state = list && o.nargs == 3 ? o.args[2] : NULL;
	static const char *const states[] = {"queued", "running", "done", "failed", "cancelled"};
	int known = state == NULL;
	for (size_t i = 0; !known && i < BW_ARRAY_LEN(states); i++)
		known = strcmp(state, states[i]) == 0;
	if (!known) {
		fprintf(stderr, "bulwark jobs list: STATE is one of queued, running, done, failed, cancelled\n");
		return 2;
	}
	long id = 0;
	if (!list && util_parse_long(o.args[2], 1, INT64_MAX, &id) != BW_OK) {
		fprintf(stderr, "bulwark jobs %s: ID must be a job id (bulwark jobs list %s)\n", verb,
			slug);
		return 2;
	}
	rc = 1;
	const char *label = list ? "bulwark jobs list"
			    : strcmp(verb, "retry") == 0 ? "bulwark jobs retry"
							 : "bulwark jobs cancel";
	if (cli_op_open(&o, slug, label, &c) != 0)
		goto out;
	bw_err e;
	if (list) {
		json_t *a = NULL, *n = NULL;
		if ((e = jobs_list(&c.op, state, NULL, 1000, &a)) != BW_OK ||
		    (e = jobs_counts(&c.op, &n)) != BW_OK) {
			json_decref(a);
			cli_op_error(&c, e);
			goto out;
		}
		if (cli_flag(&o, "--json")) {
			json_t *all = json_pack("{s:o, s:o}", "jobs", a, "counts", n);
			char *s = all ? json_dumps(all, JSON_INDENT(2)) : NULL;
			if (s != NULL)
				puts(s);
			free(s);
			json_decref(all);
		} else {
			cli_jobs_print(a, n);
			json_decref(a);
			json_decref(n);
		}
		rc = 0;
		goto out;
	}
	struct job_table t;
	job_table_build(c.op.cfg, 0, &t);
	e = strcmp(verb, "retry") == 0 ? jobs_retry(&c.op, t.kinds, t.nkinds, id)
				       : jobs_cancel(&c.op, t.kinds, t.nkinds, id);
	if (e != BW_OK) {
		cli_op_error(&c, e);
		goto out;
	}
	printf("job %ld in tenant %s %s\n", id, slug, strcmp(verb, "retry") == 0 ? "queued again" : "cancelled");
	rc = 0;
out:
	cli_op_close(&c);
	return rc;
}
