/*
 * server: the HTTPS server (libmicrohttpd with GnuTLS) and the pipeline
 * every request passes (pipeline.c: a table of stages in order). This is
 * the top of the request path: it composes the request context (http),
 * identity (auth), permissions (rbac), the tenant registry and the routes
 * of every subsystem.
 */
#ifndef BW_SERVER_H
#define BW_SERVER_H

#include "../config/config.h"
#include "../core/core.h"
#include "../http/http.h"
#include "../tenancy/tenancy.h"

struct server;

/* What the server serves tenants with; all may be NULL for a bare server. */
struct server_deps {
	struct tenancy *ten;
	struct registry *reg;
	struct connpool *pool;
	struct auth_hasher *hasher;
};

/*
 * Start serving routes over TLS with cfg. On failure returns an error with
 * the reason in err; nothing is left running.
 */
bw_err server_start(const struct config *cfg, const struct route *routes, size_t nroutes,
		    const struct server_deps *deps, struct server **out, char *err,
		    size_t errlen) BW_MUST_USE;
/* Apply what a new configuration can change without a restart. */
bw_err server_reload(struct server *s, const struct config *cfg, char *err,
		     size_t errlen) BW_MUST_USE;
/* Stop accepting, wait up to drain seconds for in-flight requests, stop. */
void server_drain(struct server *s, long drain_seconds);
void server_free(struct server *s);
/* Requests started and not yet completed. */
long server_inflight(const struct server *s);
/* --- routes.c: the built-in routes ------------------------------------ */
extern const struct route routes_builtin[];
extern const size_t routes_builtin_count;

#endif
