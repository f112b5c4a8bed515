/*
 * The HTTPS server: libmicrohttpd with its internal thread pool (poll; ADR
 * 0002 says why not epoll) and GnuTLS. A request begins when its request
 * line is read (server_begin), passes the pipeline's stages once its head
 * is in (pipeline.c), has its body read, runs its handler and is answered
 * by server_respond, the one exit. Every connection also has deadlines of
 * its own (conntrack.c), so slow clients cannot hold slots.
 */
#include "server_int.h"

#include "../crypto/crypto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Sent on every response the server builds. */
static const char *const server_headers[][2] = {
	{"Strict-Transport-Security", "max-age=63072000; includeSubDomains"},
	{"Content-Security-Policy",
	 "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
	 "object-src 'none'"},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "same-origin"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
	{"Permissions-Policy", "camera=(), microphone=(), geolocation=()"},
	{"Cache-Control", "no-store"},
};

/* A 401's challenge (RFC 6750 3); the pipeline sets error="invalid_token" for a refused token. */
#define SERVER_CHALLENGE "Bearer realm=\"bulwark\""

long
server_inflight(const struct server *s)
{
	return atomic_load(&s->inflight);
}

static void
server_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	/* Mostly clients that hang up or speak bad TLS: useful when debugging only. */
	log_debug("libmicrohttpd: %s", buf);
}

/* Identity unescape: the router decodes each path segment itself. */
static size_t
server_no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls, (void)c;
	return strlen(s);
}

/* Called once the request line is read: the request begins here. */
/*
 * JSON values are wiped when jansson frees them: request bodies carry
 * passwords, TOTP codes and credentials, and replies revealed ones.
 */
static void
server_json_free(void *p)
{
	if (p != NULL)
		explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

static void
server_json_wipe_on_free(void)
{
	json_set_alloc_funcs(malloc, server_json_free);
}

/* Lends a request its tenant's connection from the pool (op_db). */
static bw_err
server_borrow(struct op *op)
{
	struct server *s = op->owner;
	if (s->pool == NULL || op->tenant == NULL)
		return BW_ERR_INTERNAL;
	return connpool_borrow(s->pool, &op->tn, &op->d);
}

static void
server_give_back(struct op *op)
{
	struct server *s = op->owner;
	if (op->d != NULL) {
		connpool_return(s->pool, &op->tn, op->d);
		op->d = NULL;
	}
}

static void *
server_begin(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct server *s = cls;
	struct http_req *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->pool = pool_new(s->pool_max);
	if (r->pool == NULL) {
		free(r);
		return NULL;
	}
	r->svc = &s->svc;
	r->start_us = util_now_us();
	uint64_t n = atomic_fetch_add(&s->id_counter, 1);
	snprintf(r->id, sizeof(r->id), "%s%016llx", s->id_prefix, (unsigned long long)n);
	const char *q = strchr(uri, '?');
	r->path = q ? pool_strndup(r->pool, uri, (size_t)(q - uri)) : pool_strdup(r->pool, uri);
	r->query = q ? pool_strdup(r->pool, q + 1) : NULL;
	r->method_name = "-";
	snprintf(r->client_ip, sizeof(r->client_ip), "-");
	/* Known now, so even a request cut before its headers end is logged with it. */
	server_client_ip(s, c, r);
	/* The unit of work; its tenant, connection and actor come with the stages. */
	op_init(&r->op, r->pool, &s->cfg, s->ten, NULL, NULL, NULL);
	r->op.borrow = server_borrow;
	r->op.give_back = server_give_back;
	r->op.owner = s;
	r->op.client_ip = r->client_ip;
	r->op.request_id = r->id;
	r->op.perms = s->perms;
	r->op.nperms = s->nperms;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	r->track = ci != NULL ? ci->socket_context : NULL;
	conntrack_request_line(s->ct, r->track, r->start_us);
	atomic_fetch_add(&s->inflight, 1);
	return r;
}

static void
server_completed(void *cls, struct MHD_Connection *c, void **req_cls,
		 enum MHD_RequestTerminationCode toe)
{
	struct server *s = cls;
	struct http_req *r = *req_cls;
	if (r == NULL)
		return;
	*req_cls = NULL;
	if (!r->responded && r->status == 0) {
		/* libmicrohttpd answered itself (malformed request, headers too big)... */
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
		if (ci != NULL && ci->http_status != 0)
			r->status = (int)ci->http_status;
		else /* ...or nobody did: cut by a deadline, or the client went away */
			r->status = toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ||
					    conntrack_was_cut(s->ct, r->track)
					? 408
					: 499;
	} else if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ||
		   (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && conntrack_was_cut(s->ct, r->track))) {
		r->status = 408; /* the reply was cut: its client read it too slowly */
	}
	conntrack_idle(s->ct, r->track, util_now_us());
	accesslog_write(s->alog, r, util_now_us() - r->start_us);
	/* An upload cut off before any reply (the client gone) undoes itself here. */
	server_upload_done(r);
	if (r->stream.free != NULL)
		r->stream.free(r->stream.cls);
	server_release_db(s, r);
	json_decref(r->reply);
	free(r->reply_raw);
	/* Bodies carry passwords, TOTP codes and credentials: never left in freed memory. */
	if (r->body != NULL)
		crypto_wipe(r->body, r->body_cap);
	free(r->body);
	pool_free(r->pool);
	free(r);
	atomic_fetch_sub(&s->inflight, 1);
}

/* Connections come and go: each gets its deadlines (conntrack.c). */
static void
server_notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
		   enum MHD_ConnectionNotificationCode code)
{
	struct server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = conntrack_open(s->ct, ci != NULL ? (int)ci->connect_fd : -1,
						 util_now_us());
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		conntrack_close(s->ct, *socket_context);
		*socket_context = NULL;
	}
}

/* Every X-Forwarded-For line, in order, as one list (RFC 9110 5.3). */
struct server_xff {
	char buf[2048];
	size_t len;
	int lines, overflow;
};

static enum MHD_Result
server_xff_line(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
		const char *value, size_t value_size)
{
	(void)kind;
	struct server_xff *x = cls;
	if (key_size != 15 || strncasecmp(key, "X-Forwarded-For", 15) != 0)
		return MHD_YES;
	size_t need = value_size + (x->lines > 0 ? 1 : 0);
	if (need >= sizeof(x->buf) - x->len) {
		x->overflow = 1;
		return MHD_NO;
	}
	if (x->lines > 0)
		x->buf[x->len++] = ',';
	memcpy(x->buf + x->len, value, value_size);
	x->len += value_size;
	x->buf[x->len] = '\0';
	x->lines++;
	return MHD_YES;
}

void
server_client_ip(struct server *s, struct MHD_Connection *c, struct http_req *r)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct netaddr peer, client;
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET) {
		/* kept IPv4-mapped, as netaddr does */
		memset(peer.a, 0, 10);
		peer.a[10] = peer.a[11] = 0xff;
		memcpy(peer.a + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(peer.a, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
	} else {
		return;
	}
	/* Headers exist only once the request line has been followed by them. */
	struct server_xff xff = {.len = 0};
	if (r->begun)
		MHD_get_connection_values_n(c, MHD_HEADER_KIND, server_xff_line, &xff);
	/* A list too long to be a real proxy chain: the client is unknown ("::"). */
	netaddr_client(&peer, xff.overflow ? "," : xff.lines > 0 ? xff.buf : NULL, s->proxies,
		       s->nproxies, &client);
	netaddr_format(&client, r->client_ip, sizeof(r->client_ip));
}

/* Bytes of a reply head: our headers, plus the status line, Date, lengths and ids. */
static size_t
server_head_estimate(void)
{
	size_t n = 160;
	for (size_t i = 0; i < BW_ARRAY_LEN(server_headers); i++)
		n += strlen(server_headers[i][0]) + strlen(server_headers[i][1]) + 4;
	return n;
}

/* A streamed body's pieces (downloads): from the handler's reader, as the client takes them. */
#define SERVER_STREAM_BLOCK (64 * 1024)
static ssize_t
server_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_req *r = cls;
	if (pos >= r->stream.size)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > r->stream.size - pos)
		max = (size_t)(r->stream.size - pos);
	long n = r->stream.read(r->stream.cls, r->stream_offset + pos, buf, max);
	if (n <= 0) {
		/* The head is gone already: all that is left is to cut the body short. */
		log_error("request %s: the reply body failed at byte %llu of %llu; connection cut",
			  r->id, (unsigned long long)pos, (unsigned long long)r->stream.size);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	return (ssize_t)n;
}

/* Build and queue the reply for r; the one exit of every request. */
enum MHD_Result
server_respond(struct server *s, struct http_req *r)
{
	struct MHD_Connection *c = r->conn;
	char *body = NULL;
	size_t len = 0;

	/*
	 * An upload undoes what it did not finish before its reply goes out, so
	 * a client that sends again at once never meets its own reservation.
	 */
	server_upload_done(r);

	const char *type = "application/json";
	int streamed = r->op.err == BW_OK && r->stream.read != NULL;
	if (streamed) {
		type = r->reply_type;
		len = (size_t)r->stream.size;
	} else if (r->op.err == BW_OK && r->reply_raw != NULL) {
		body = r->reply_raw; /* handed over to libmicrohttpd below */
		len = r->reply_raw_len;
		r->reply_raw = NULL;
		type = r->reply_type;
	} else if (r->op.err == BW_OK && r->reply != NULL) {
		body = json_dumps(r->reply, JSON_COMPACT);
		if (body != NULL)
			len = strlen(body);
		else
			(void)response_error(r, BW_ERR_NOMEM, NULL);
	} else if (r->op.err == BW_OK) {
		/* A handler that returned OK without a reply is a bug. */
		log_error("request %s: handler for %s gave no reply", r->id, r->path);
		(void)response_error(r, BW_ERR_INTERNAL, NULL);
	}
	if (r->op.err != BW_OK) {
		/* The one place a recorded error becomes the reply's status. */
		r->status = response_status(r->op.err);
		body = response_error_body(r, &len);
	}

	struct MHD_Response *resp;
	if (streamed) {
		resp = MHD_create_response_from_callback(r->stream.size, SERVER_STREAM_BLOCK,
							 server_stream_read, r, NULL);
	} else if (body != NULL) {
		resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	} else {
		static const char oom[] =
		    "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
		r->status = 500;
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
						       MHD_RESPMEM_PERSISTENT);
	}
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	/* A reply that brings its own policy (a download's sandbox) is sent with that one only. */
	int own_csp = 0;
	for (size_t i = 0; r->op.err == BW_OK && i < r->nheaders; i++)
		own_csp |= strcasecmp(r->headers[i].name, "Content-Security-Policy") == 0;
	for (size_t i = 0; i < BW_ARRAY_LEN(server_headers); i++)
		if (!own_csp || strcmp(server_headers[i][0], "Content-Security-Policy") != 0)
			MHD_add_response_header(resp, server_headers[i][0], server_headers[i][1]);
	MHD_add_response_header(resp, "Content-Type", r->op.err == BW_OK ? type : "application/json");
	if (r->op.err == BW_OK && r->reply_disposition != NULL)
		MHD_add_response_header(resp, "Content-Disposition", r->reply_disposition);
	MHD_add_response_header(resp, "X-Request-Id", r->id);
	if (r->status == 405) {
		char allow[64];
		router_allow_string(r->allow, allow, sizeof(allow));
		MHD_add_response_header(resp, "Allow", allow);
	}
	if (r->retry_after != NULL)
		MHD_add_response_header(resp, "Retry-After", r->retry_after);
	if (r->set_cookie != NULL)
		MHD_add_response_header(resp, "Set-Cookie", r->set_cookie);
	size_t extra = 0;
	int challenged = 0;
	for (size_t i = 0; i < r->nheaders; i++) {
		int challenge = strcasecmp(r->headers[i].name, "WWW-Authenticate") == 0;
		if (challenge && r->status != 401)
			continue; /* a challenge belongs to a 401 only */
		if (r->op.err == BW_OK || r->headers[i].always) {
			MHD_add_response_header(resp, r->headers[i].name, r->headers[i].value);
			extra += strlen(r->headers[i].name) + strlen(r->headers[i].value) + 4;
			challenged |= challenge;
		}
	}
	/* Every 401 says how to authenticate (RFC 9110 11.6.1). */
	if (r->status == 401 && !challenged) {
		MHD_add_response_header(resp, "WWW-Authenticate", SERVER_CHALLENGE);
		extra += sizeof("WWW-Authenticate" SERVER_CHALLENGE) + 3;
	}
	if (atomic_load(&s->draining))
		MHD_add_response_header(resp, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	r->responded = 1;
	/* The client must read the head as well as the body. */
	conntrack_sending(s->ct, r->track, (r->method == HTTP_HEAD ? 0 : len) + server_head_estimate() + extra,
			  util_now_us());
	return ret;
}

/*
 * The body goes into the buffer the pipeline sized from Content-Length
 * (pipeline_admit): one allocation, never grown, so no copy of a password
 * is left behind in memory realloc() gave back.
 */
static bw_err
server_body_append(struct server *s, struct http_req *r, const char *data, size_t n)
{
	if (r->body == NULL || n > r->body_cap - 1 - r->body_len)
		return BW_ERR_TOO_LARGE;
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	conntrack_body(s->ct, r->track, n);
	return BW_OK;
}

/*
 * A request holds a pooled connection only while it computes: not while
 * its body arrives or its reply is sent. Otherwise one worker thread's
 * slow requests could hold every connection its next request waits for.
 */
void
server_release_db(struct server *s, struct http_req *r)
{
	if (r->op.d != NULL) {
		connpool_return(s->pool, &r->op.tn, r->op.d);
		r->op.d = NULL;
	}
}

static enum MHD_Result
server_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	      const char *version, const char *upload_data, size_t *upload_data_size,
	      void **req_cls)
{
	(void)url;
	struct server *s = cls;
	struct http_req *r = *req_cls;
	if (r == NULL)
		return MHD_NO; /* out of memory when the request began */

	if (!r->begun) {
		int expect_body;
		r->begun = 1;
		r->conn = c;
		r->method_name = pool_strdup(r->pool, method);
		if (r->method_name == NULL)
			r->method_name = "-";
		r->method = router_method(method);
		/*
		 * libmicrohttpd 0.9.75 closes the connection after a reply queued
		 * in this first call, so only refuse here when a body would follow
		 * (closing is then what we want: it is never read). Everything
		 * else answers on the next call and keeps the connection alive.
		 */
		bw_err e = pipeline_admit(s, r, method, version, &expect_body);
		if (e == BW_OK && (r->route->flags & ROUTE_UPLOAD))
			e = pipeline_upload_start(s, r);
		if (e != BW_OK && expect_body)
			return server_respond(s, r);
		conntrack_headers_done(s->ct, r->track, e == BW_OK && expect_body, util_now_us());
		return MHD_YES;
	}
	if (r->responded)
		return MHD_NO;
	if (r->route != NULL && (r->route->flags & ROUTE_UPLOAD) && r->upload.end != NULL) {
		/* A file: streamed to its handler piece by piece, then ended (upload.c). */
		if (*upload_data_size != 0) {
			conntrack_body(s->ct, r->track, *upload_data_size);
			pipeline_upload_data(s, r, upload_data, *upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
		return pipeline_upload_end(s, r);
	}
	if (r->op.err != BW_OK)
		return server_respond(s, r);
	if (*upload_data_size != 0) {
		bw_err e = server_body_append(s, r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		if (e != BW_OK) {
			/* More than Content-Length promised cannot get here; hang up rather than read on. */
			r->status = response_status(e);
			return MHD_NO;
		}
		return MHD_YES;
	}
	return pipeline_run(s, r);
}

static bw_err
server_sockaddr(const char *bind, long port, struct sockaddr_storage *ss, unsigned *flags)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, bind, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		return BW_OK;
	}
	if (inet_pton(AF_INET6, bind, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*flags |= MHD_USE_IPv6;
		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			*flags |= MHD_USE_DUAL_STACK;
		return BW_OK;
	}
	return BW_ERR_INVALID;
}

static struct conntrack_conf
server_conntrack_conf(const struct config *cfg)
{
	return (struct conntrack_conf){
	    .header_timeout = cfg->header_timeout,
	    .idle_timeout = cfg->connection_timeout,
	    .body_min_rate = cfg->body_min_rate,
	    .soft_max = cfg->max_connections,
	};
}

/* Connections libmicrohttpd accepts beyond max_connections, each displacing a slow one. */
static long
server_slack(const struct config *cfg)
{
	long slack = cfg->max_connections / 8;
	return slack < 16 ? 16 : slack;
}

bw_err
server_start(const struct config *cfg, const struct route *routes, size_t nroutes,
	     const struct server_deps *deps, struct server **out, char *err, size_t errlen)
{
	struct server *s = NULL;
	bw_err e;
	char cert[CONFIG_STR], key[CONFIG_STR];
	unsigned char rnd[4];

	*out = NULL;
	static pthread_once_t json_once = PTHREAD_ONCE_INIT;
	pthread_once(&json_once, server_json_wipe_on_free);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return BW_ERR_NOMEM;
	s->cfg = *cfg;
	if (netrange_list_parse(cfg->trusted_proxies, s->proxies, &s->nproxies) != BW_OK) {
		snprintf(err, errlen, "[server] trusted_proxies is not a list of address ranges");
		e = BW_ERR_CONFIG;
		goto fail;
	}
	if (deps != NULL) {
		s->ten = deps->ten;
		s->reg = deps->reg;
		s->pool = deps->pool;
		s->hasher = deps->hasher;
	}
	s->svc.cfg = &s->cfg;
	s->svc.ten = s->ten;
	s->svc.hasher = s->hasher;
	atomic_store(&s->header_max, cfg->header_max);
	if ((e = util_random(rnd, sizeof(rnd))) != BW_OK)
		goto fail;
	util_hex(rnd, sizeof(rnd), s->id_prefix);

	e = router_new(routes, nroutes, (size_t)cfg->body_max, &s->router, err, errlen);
	if (e != BW_OK || (e = router_permissions(s->router, &s->perms, &s->nperms)) != BW_OK)
		goto fail;
	/* Request memory: decoded path, params and handler scratch; bodies are separate. */
	s->pool_max = 1024 * 1024;
	/* Logins: a per-minute budget, refilled a token at a time. */
	s->login_rl = ratelimit_new((double)cfg->auth_login_rate / 60.0,
				    cfg->auth_login_rate > 0 ? cfg->auth_login_rate : 1);
	if (s->login_rl == NULL ||
	    (s->rl = ratelimit_new((double)cfg->rate_per_second, cfg->rate_burst)) == NULL) {
		e = BW_ERR_NOMEM;
		goto fail;
	}
	s->svc.router = s->router;
	s->svc.login_rl = s->login_rl;
	struct conntrack_conf ctc = server_conntrack_conf(cfg);
	if ((e = conntrack_new(&ctc, 1, &s->ct)) != BW_OK)
		goto fail;
	if ((e = accesslog_open(cfg->access_log, &s->alog)) != BW_OK) {
		snprintf(err, errlen, "[log] access_log %s: cannot open: %s", cfg->access_log,
			 strerror(errno));
		goto fail;
	}
	config_tls_cert(cfg, cert);
	config_tls_key(cfg, key);
	if ((e = tls_load(cert, key, err, errlen)) != BW_OK)
		goto fail;

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TLS |
			 MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct sockaddr_storage ss;
	if (server_sockaddr(cfg->bind, cfg->port, &ss, &flags) != BW_OK) {
		snprintf(err, errlen, "[server] bind '%s' is not an IPv4 or IPv6 address", cfg->bind);
		e = BW_ERR_CONFIG;
		goto fail;
	}
	/* A MariaDB statement is a network round trip that holds its thread. */
	unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads
			   : strcmp(cfg->db_driver, "mariadb") == 0 ? 4u * (unsigned)util_ncpu()
								    : (unsigned)util_ncpu();
	/* Headers live in MHD's per-connection pool; leave room beyond our own limit. */
	size_t mem = (size_t)cfg->header_max * 2 + 32768;
	struct MHD_OptionItem opts[] = {
	    /* First, so that libmicrohttpd's own start-up messages reach it. */
	    {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)server_mhd_log, NULL},
	    {MHD_OPTION_SOCK_ADDR, 0, &ss},
	    {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
	    {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, tls_cert_callback()},
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)tls_priorities()},
	    /* Room above max_connections for newcomers that displace slow clients (conntrack.c). */
	    {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)(cfg->max_connections + server_slack(cfg)), NULL},
	    {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)cfg->max_connections_per_ip, NULL},
	    {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)cfg->connection_timeout, NULL},
	    {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)mem, NULL},
	    /*
	     * Not libmicrohttpd's own checks (Host present, no space in the
	     * target): the framing stage makes them, answering as every other
	     * refusal does, with the security headers and a JSON body.
	     */
	    {MHD_OPTION_STRICT_FOR_CLIENT, 0, NULL},
	    {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)server_no_unescape, NULL},
	    {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)server_begin, s},
	    {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)server_completed, s},
	    {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)server_notify_conn, s},
	    {MHD_OPTION_END, 0, NULL},
	};
	s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, server_access, s, MHD_OPTION_ARRAY,
				     opts, MHD_OPTION_END);
	if (s->daemon == NULL) {
		snprintf(err, errlen, "cannot listen on %s port %ld (in use, or not permitted)",
			 cfg->bind, cfg->port);
		e = BW_ERR_IO;
		goto fail;
	}
	log_info("listening on https://%s:%ld with %u threads (TLS 1.3 only)", cfg->bind,
		 cfg->port, threads);
	*out = s;
	return BW_OK;
fail:
	server_free(s);
	return e;
}

bw_err
server_reload(struct server *s, const struct config *cfg, char *err, size_t errlen)
{
	char cert[CONFIG_STR], key[CONFIG_STR];
	bw_err e;
	config_tls_cert(cfg, cert);
	config_tls_key(cfg, key);
	if ((e = tls_load(cert, key, err, errlen)) != BW_OK)
		return e;
	if (accesslog_reopen(s->alog, cfg->access_log) != BW_OK) {
		snprintf(err, errlen, "[log] access_log %s: cannot open: %s", cfg->access_log,
			 strerror(errno));
		return BW_ERR_IO;
	}
	ratelimit_configure(s->rl, (double)cfg->rate_per_second, cfg->rate_burst);
	struct conntrack_conf ctc = server_conntrack_conf(cfg);
	ctc.soft_max = s->cfg.max_connections; /* restart only, as the hard limit */
	ctc.idle_timeout = s->cfg.connection_timeout;
	conntrack_configure(s->ct, &ctc);
	ratelimit_configure(s->login_rl, (double)cfg->auth_login_rate / 60.0,
			    cfg->auth_login_rate > 0 ? cfg->auth_login_rate : 1);
	atomic_store(&s->header_max, cfg->header_max);

	const struct config *o = &s->cfg;
	if (strcmp(o->bind, cfg->bind) != 0 || o->port != cfg->port || o->threads != cfg->threads ||
	    o->max_connections != cfg->max_connections ||
	    o->max_connections_per_ip != cfg->max_connections_per_ip ||
	    o->connection_timeout != cfg->connection_timeout || o->body_max != cfg->body_max ||
	    strcmp(o->var_dir, cfg->var_dir) != 0 || strcmp(o->base_domain, cfg->base_domain) != 0)
		log_warn("reload: bind, port, threads, connection limits, body_max, var_dir and "
			 "base_domain take effect only after a restart");
	return BW_OK;
}

void
server_drain(struct server *s, long drain_seconds)
{
	if (s == NULL || s->daemon == NULL)
		return;
	atomic_store(&s->draining, 1);
	MHD_socket lsock = MHD_quiesce_daemon(s->daemon);
	/*
	 * Quiescing only stops accept(); the kernel would go on completing
	 * handshakes into the backlog, leaving new clients hanging until the
	 * drain ends. Shutting the listening socket down makes it stop listening
	 * (new connections are refused) while the descriptor stays valid until
	 * MHD_stop_daemon(), as libmicrohttpd requires.
	 */
	if (lsock != MHD_INVALID_SOCKET)
		shutdown(lsock, SHUT_RDWR);
	uint64_t deadline = util_now_us() + (uint64_t)drain_seconds * 1000000u;
	long n;
	while ((n = atomic_load(&s->inflight)) > 0 && util_now_us() < deadline)
		usleep(10000);
	if (n > 0)
		log_warn("drain: %ld request(s) still in flight after %lds; closing them", n,
			 drain_seconds);
	MHD_stop_daemon(s->daemon);
	s->daemon = NULL;
	if (lsock != MHD_INVALID_SOCKET)
		close(lsock);
}

void
server_free(struct server *s)
{
	if (s == NULL)
		return;
	if (s->daemon != NULL)
		MHD_stop_daemon(s->daemon);
	conntrack_free(s->ct); /* after the daemon: every connection has been closed */
	tls_unload();
	accesslog_close(s->alog);
	ratelimit_free(s->rl);
	ratelimit_free(s->login_rl);
	router_free(s->router);
	free(s->perms);
	free(s);
}
