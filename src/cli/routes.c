/*
 * The one route table: built-in, identity, MFA, allowlist, roles and
 * users, module metadata, and every module's routes. `bulwark serve`
 * serves it and `bulwark routes` prints it, so tests are generated from
 * exactly what the server registers.
 */
#include "cli.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit_api.h"
#include "../auth/auth_api.h"
#include "../files/files_api.h"
#include "../jobs/jobs_api.h"
#include "../modules/module_api.h"
#include "../notify/notify_api.h"
#include "../intake/intake_api.h"
#include "../rbac/rbac_api.h"
#include "../saml/saml_api.h"
#include "../server/server.h"
#include "../users/users_api.h"
#include "../webhooks/webhooks_api.h"

bw_err
cli_route_table(struct route **out, size_t *n)
{
	const struct route *mods, *files;
	size_t nmods, nfiles;
	*out = NULL;
	*n = 0;
	bw_err e = module_routes(&mods, &nmods);
	if (e != BW_OK || (e = files_routes(&files, &nfiles)) != BW_OK)
		return e;
	const struct {
		const struct route *r;
		size_t n;
	} parts[] = {
	    {routes_builtin, routes_builtin_count},
	    {auth_routes, auth_routes_count},
	    {recovery_routes, recovery_routes_count},
	    {mfa_routes, mfa_routes_count},
	    {allowlist_routes, allowlist_routes_count},
	    {rbac_routes, rbac_routes_count},
	    {users_routes, users_routes_count},
	    {module_meta_routes, module_meta_routes_count},
	    {audit_routes, audit_routes_count},
	    {mods, nmods},
	    {files_usage_routes, files_usage_routes_count},
	    {files, nfiles},
	    {webhooks_routes, webhooks_routes_count},
	    {jobs_routes, jobs_routes_count},
	    {notify_routes, notify_routes_count},
	    {intake_routes, intake_routes_count},
	    {saml_routes, saml_routes_count},
	};
	size_t total = 0;
	for (size_t i = 0; i < BW_ARRAY_LEN(parts); i++)
		total += parts[i].n;
	struct route *v = calloc(total, sizeof(*v));
	if (v == NULL)
		return BW_ERR_NOMEM;
	for (size_t i = 0, k = 0; i < BW_ARRAY_LEN(parts); i++, k += parts[i - 1].n)
		memcpy(v + k, parts[i].r, parts[i].n * sizeof(*v));
	*out = v;
	*n = total;
	return BW_OK;
}

static const struct {
	unsigned bit;
	const char *name;
} cli_route_flags[] = {
	{ROUTE_PUBLIC, "public"},
	{ROUTE_ADMIN, "admin"},         {ROUTE_DESTRUCTIVE, "destructive"},
	{ROUTE_NO_TENANT, "no_tenant"}, {ROUTE_MFA_PENDING, "mfa_pending"},
	{ROUTE_MFA_ENROL, "mfa_enrol"}, {ROUTE_PW_CHANGE, "pw_change"},
	{ROUTE_ROUTINE, "routine"},     {ROUTE_UPLOAD, "upload"},
	{ROUTE_CROSS_SITE, "cross_site"},
};

int
cli_routes(int argc, char **argv)
{
	struct cli_opts o;
	struct route *v;
	size_t n;
	char err[256];
	struct router *rt;
	int rc = cli_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.nargs != 0) {
		fprintf(stderr, "bulwark routes: unexpected argument '%s'\n", o.args[0]);
		return 2;
	}
	if (cli_route_table(&v, &n) != BW_OK) {
		fprintf(stderr, "bulwark routes: out of memory\n");
		return 1;
	}
	/* Compile it as the server would, so a table the server would refuse is refused here. */
	if (router_new(v, n, 1 << 20, &rt, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark routes: the route table is invalid: %s\n", err);
		free(v);
		return 1;
	}
	router_free(rt);
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		char method[16];
		router_allow_string(v[i].method, method, sizeof(method));
		json_t *flags = json_array();
		for (size_t k = 0; k < BW_ARRAY_LEN(cli_route_flags); k++)
			if (v[i].flags & cli_route_flags[k].bit)
				json_array_append_new(flags, json_string(cli_route_flags[k].name));
		const struct module_desc *m = NULL;
		for (size_t k = 0; k < module_catalog_count; k++)
			if (v[i].data == module_catalog[k])
				m = module_catalog[k];
		json_array_append_new(
		    list, json_pack("{s:s, s:s, s:s?, s:o, s:s?, s:s, s:b}", "method", method, "pattern",
				    v[i].pattern, "permission", v[i].permission, "flags", flags,
				    "module", m ? m->name : NULL, "allowlist",
				    router_guard_name(router_guard(&v[i])), "body",
				    router_takes_body(&v[i])));
	}
	free(v);
	char *s = json_dumps(list, JSON_INDENT(1));
	json_decref(list);
	if (s == NULL) {
		fprintf(stderr, "bulwark routes: out of memory\n");
		return 1;
	}
	puts(s);
	free(s);
	return 0;
}
