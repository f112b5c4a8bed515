/*
 * Internal to src/server: the server's state, shared by the daemon's
 * callbacks (server.c) and the pipeline's stages (pipeline.c).
 */
#ifndef BW_SERVER_INT_H
#define BW_SERVER_INT_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "../core/netaddr.h"
#include "server.h"

struct server {
	struct MHD_Daemon *daemon;
	struct tenancy *ten;
	struct registry *reg; /* NULL: no tenants (tests of the bare server) */
	struct connpool *pool;
	struct auth_hasher *hasher;
	struct ratelimit *login_rl; /* login attempts per address, per minute */
	struct netrange proxies[NETADDR_MAX_RANGES];
	size_t nproxies;
	struct router *router;
	struct ratelimit *rl;
	struct accesslog *alog;
	struct conntrack *ct;
	_Atomic long inflight;
	_Atomic int draining;
	_Atomic long header_max;
	size_t pool_max;
	char id_prefix[9];
	_Atomic uint64_t id_counter;
	struct config cfg; /* the configuration started with */
	struct http_services svc; /* what handlers reach through their request */
	const char **perms;       /* the permission catalogue, from the route table */
	size_t nperms;
};


/* The client's address (the peer, or the trusted proxies' X-Forwarded-For) into r. */
void server_client_ip(struct server *s, struct MHD_Connection *c, struct http_req *r);
/* Give the request's tenant connection back to the pool (accepts none). */
void server_release_db(struct server *s, struct http_req *r);
/*
 * The stages before the handler (pipeline.c). BW_OK with r->route set and
 * *expect_body telling whether a body follows, or the refusal, recorded.
 */
bw_err pipeline_admit(struct server *s, struct http_req *r, const char *method,
		      const char *version, int *expect_body) BW_MUST_USE;
/* The handler, last stage: its return value decides the reply. */
enum MHD_Result pipeline_run(struct server *s, struct http_req *r);
/* Build and queue r's reply (server.c): the one exit of every request. */
enum MHD_Result server_respond(struct server *s, struct http_req *r);

#endif
