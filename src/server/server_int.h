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
/*
 * Upload routes (upload.c): the handler before the body (it sets
 * r->upload), each piece of the body, the end of it (the reply), and the
 * request's end (the upload's abort, the parser freed).
 */
bw_err pipeline_upload_start(struct server *s, struct http_req *r) BW_MUST_USE;
void pipeline_upload_data(struct server *s, struct http_req *r, const char *data, size_t n);
enum MHD_Result pipeline_upload_end(struct server *s, struct http_req *r);
void server_upload_done(struct http_req *r);
/* After a handler: its outcome checked (a refusal returned as success is a bug), Location set. */
void pipeline_outcome(struct http_req *r, bw_err e);
/* The handler, last stage: its return value decides the reply. */
enum MHD_Result pipeline_run(struct server *s, struct http_req *r);
/* Build and queue r's reply (server.c): the one exit of every request. */
enum MHD_Result server_respond(struct server *s, struct http_req *r);
/*
 * The first statement of every transaction of a signed-in caller
 * (op->tx_begin, pipeline.c): the caller's session or token locked and
 * still there, the user enabled, the route's permission held now.
 */
bw_err pipeline_caller_holds(struct op *op) BW_MUST_USE;

/* --- idempotency.c: Idempotency-Key on POST (ADR 0015, docs/http.md) -------- */
#define IDEMPOTENCY_KEY_MAX 255            /* characters, visible ASCII */
#define IDEMPOTENCY_TTL_SECONDS 86400      /* a key answers for 24 hours */
#define IDEMPOTENCY_LEASE_SECONDS 60       /* a reservation that wrote nothing, then taken over */
#define IDEMPOTENCY_REPLY_MAX (512 * 1024) /* larger replies are not kept */

/* One request's use of a key, between idempotency_begin and idempotency_end. */
struct idempotency {
	int64_t row;    /* the reservation this request holds (0: none) */
	int replayed;   /* the reply is the stored one: the handler must not run */
	int actor_kind; /* 1: a signed-in user, 2: an API token */
	int64_t actor_id;
	char key_mac[65], request_mac[65]; /* hex HMAC-SHA256 under the tenant's key */
};

/* 1 when k is 1 to IDEMPOTENCY_KEY_MAX visible ASCII characters. */
int idempotency_key_valid(const char *k);
/*
 * Before the handler. BW_OK with nothing held (no key, not a POST), with
 * the key reserved (ix->row: run the handler), or with the stored reply
 * set (ix->replayed: do not run it); or the refusal, recorded: 400 (a bad
 * key, or a route that takes none), 409 (still running, or carried out
 * with its reply lost), 422 (the key was used for another request), 503.
 */
bw_err idempotency_begin(struct http_req *r, struct idempotency *ix) BW_MUST_USE;
/* op->tx_begin while a reservation is held: pipeline_caller_holds, then its mark. */
bw_err idempotency_tx_begin(struct op *op) BW_MUST_USE;
/*
 * After the handler, once r's reply is final: keep it (2xx, 4xx but 401
 * and 429), sealed, or free the key when nothing was committed under it.
 * Never changes the reply.
 */
void idempotency_end(struct http_req *r, struct idempotency *ix);

#endif
