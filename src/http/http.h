/*
 * http: the HTTPS server (libmicrohttpd + GnuTLS), the route table and its
 * dispatcher, per-request context, limits and the access log.
 */
#ifndef BW_HTTP_H
#define BW_HTTP_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../core/core.h"
#include "../op/op.h"
#include "../tenancy/tenancy.h"

/* Methods as bits so a route set can report its Allow header. */
enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_HEAD = 1 << 1,
	HTTP_POST = 1 << 2,
	HTTP_PUT = 1 << 3,
	HTTP_PATCH = 1 << 4,
	HTTP_DELETE = 1 << 5,
	HTTP_OPTIONS = 1 << 6,
};

/* Route flags, read by the pipeline stages. */
enum route_flags {
	ROUTE_PUBLIC = 1 << 0,      /* no authentication; needs no permission */
	/* 1 << 1: the customer portal's routes, once it arrives with its principal */
	ROUTE_ADMIN = 1 << 2,       /* admin route: IP allowlist applies */
	ROUTE_DESTRUCTIVE = 1 << 3, /* destructive: IP allowlist applies */
	ROUTE_NO_TENANT = 1 << 4,   /* answers on any host, without a tenant (/healthz) */
	ROUTE_MFA_PENDING = 1 << 5, /* reachable before the MFA code is entered */
	ROUTE_MFA_ENROL = 1 << 6,   /* reachable by a user who must still enrol in MFA */
	ROUTE_PW_CHANGE = 1 << 7,   /* reachable with a one-time password not yet changed */
	ROUTE_ROUTINE = 1 << 8,     /* a module action that is ordinary record work (assign,
				     * accept): the allowlist treats it as an edit, see router_guard */
	ROUTE_UPLOAD = 1 << 9,      /* the body is a file: streamed to the handler's http_upload,
				     * never held in memory (see struct http_upload) */
	ROUTE_CROSS_SITE = 1 << 10, /* a public form POST another site sends (the SAML ACS):
				     * its own stage stands in for the Origin check */
};

/*
 * How the admin IP allowlist applies to a route (docs/adr/0010): whenever
 * the tenant's list has entries (ALWAYS), only when the tenant also guards
 * every change (CHANGE), or never (NONE: public routes, reads of records,
 * signing out and the MFA code).
 */
enum route_guard {
	ROUTE_GUARD_NONE,
	ROUTE_GUARD_CHANGE,
	ROUTE_GUARD_ALWAYS,
};

/* Body limit values for struct route.body_max. */
#define ROUTE_BODY_DEFAULT ((size_t)-1) /* [limits] body_max */
#define ROUTE_BODY_NONE 0

#define ROUTE_MAX_PARAMS 8
#define ROUTE_MAX_SEGMENTS 16

struct http_req;
typedef bw_err (*route_handler)(struct http_req *req);

/*
 * One route: everything the pipeline needs to know before the handler
 * runs. A route without a permission is refused at registration unless it
 * is ROUTE_PUBLIC.
 */
struct route {
	unsigned method;     /* one HTTP_* value; GET also answers HEAD */
	const char *pattern; /* "/api/v1/:module/:id": literals and :params */
	route_handler handler;
	unsigned flags;         /* ROUTE_* */
	const char *permission; /* e.g. "tickets.view"; NULL only if public */
	size_t body_max;        /* ROUTE_BODY_DEFAULT, ROUTE_BODY_NONE or bytes */
	const void *data;       /* the handler's own (the module engine: its descriptor) */
};

#define HTTP_REPLY_HEADERS_MAX 16

/*
 * An upload route (ROUTE_UPLOAD). Its handler runs once the head has
 * passed every stage, before any of the body is read: it may refuse (the
 * reply goes out at once and the connection is closed, the body unread)
 * or set req->upload. The server then streams the body to it: a
 * multipart/form-data body through libmicrohttpd's post processor (one
 * part, named "file", with a filename), any other body as the file itself
 * (its name from the X-Filename header, percent-encoded UTF-8). name is
 * called once with the file's name as sent (len bytes, unchecked) and the
 * type the client claims (NULL: none); data with each piece; end once the
 * body is complete, with end's return value as the request's outcome (it
 * sets the reply). After a refusal the rest of the body is read and
 * dropped, then the refusal is sent. abort is called whenever the request
 * ends, whatever happened (the client gone, a refusal, after end): it
 * must undo whatever was not completed and may be called after end.
 */
struct http_upload {
	bw_err (*name)(struct http_req *req, const char *name, size_t len, const char *claimed);
	bw_err (*data)(struct http_req *req, const char *p, size_t n);
	bw_err (*end)(struct http_req *req);
	void (*abort)(struct http_req *req);
	void *state;
};

/*
 * A reply body read while it is sent (a download): size bytes, read(cls,
 * off, buf, n) giving up to n bytes at off (-1: fail, the connection is
 * then cut), free(cls) when the request ends. Set with response_stream().
 */
struct http_stream {
	uint64_t size;
	long (*read)(void *cls, uint64_t off, void *buf, size_t n);
	void (*free)(void *cls);
	void *cls;
};
/*
 * Per-request context. Everything in it is freed when the request ends.
 * Its op is the unit of work the request is: tenant, connection, actor and
 * the error sink every refusal goes through (response_error()).
 */
struct http_req {
	pool *pool;
	const struct http_services *svc;
	void *conn; /* struct MHD_Connection, for the server only */
	char id[25];
	uint64_t start_us;

	unsigned method;
	const char *method_name;
	const char *path;  /* raw path, still percent-encoded */
	const char *query; /* raw query without '?', or NULL */
	char client_ip[INET6_ADDRSTRLEN];

	const struct route *route;
	size_t nparams;
	const char *param_name[ROUTE_MAX_PARAMS];
	const char *param_value[ROUTE_MAX_PARAMS]; /* decoded */
	unsigned allow;                            /* on 405: the methods that exist */

	/* request body: Content-Length bytes (at most body_limit) and a NUL; wiped before it is freed */
	char *body;
	size_t body_len, body_cap, body_limit;

	/* the unit of work: tenant, database, actor, error sink */
	struct op op;

	/* outcome */
	int begun, responded;
	int status;
	json_t *reply;         /* success body, owned */
	char *reply_raw;       /* or a non-JSON success body (malloc'd, owned)... */
	size_t reply_raw_len;
	const char *reply_type; /* ...and its Content-Type */
	const char *reply_disposition; /* Content-Disposition, or NULL */
	const char *retry_after; /* Retry-After header on 429/503, or NULL */
	const char *set_cookie;  /* Set-Cookie header, or NULL */
	/*
	 * More reply headers (ETag, Location, Link, RateLimit-*), set with
	 * response_header(); names are static strings, values live in the pool. Each is sent
	 * whatever the outcome unless its entry says success only.
	 */
	size_t nheaders;
	struct {
		const char *name, *value;
		int always; /* also on an error reply (RateLimit-*, WWW-Authenticate) */
	} headers[HTTP_REPLY_HEADERS_MAX];

	struct conntrack_entry *track; /* the connection's deadlines, or NULL */

	/* upload routes: the handler's sink, and the server's state while the body streams */
	struct http_upload upload;
	void *upload_pp;     /* the multipart parser (struct MHD_PostProcessor), or NULL */
	int upload_named;    /* the file part has begun */
	int upload_failed;   /* refused: the rest of the body is dropped */
	/* a streamed reply body (downloads), when stream.read is set */
	struct http_stream stream;
	uint64_t stream_offset; /* where in the file the body starts (a range) */
};

/* --- router.c --------------------------------------------------------- */
struct router;

/*
 * Compile a route table. Refuses malformed patterns, a route without a
 * permission unless public, and duplicates, naming the route in err.
 */
bw_err router_new(const struct route *routes, size_t n, size_t default_body_max,
		  struct router **out, char *err, size_t errlen) BW_MUST_USE;
void router_free(struct router *r);
/*
 * Match req->method and req->path. BW_OK sets req->route and params;
 * BW_ERR_NOTFOUND; BW_ERR_METHOD sets req->allow; BW_ERR_INVALID for a
 * path that is not well-formed (bad escapes, NUL, encoded '/', dot segments).
 */
bw_err router_match(const struct router *r, struct http_req *req) BW_MUST_USE;
/*
 * Every permission the routes name, sorted, without duplicates: malloc'd
 * (free it; the names live as long as the route table). BW_ERR_NOMEM.
 */
bw_err router_permissions(const struct router *r, const char ***out, size_t *n) BW_MUST_USE;
/* Largest body any route accepts (checked before routing). */
size_t router_max_body(const struct router *r);
/* Parse a method name; 0 if unknown. */
unsigned router_method(const char *name);
/* "GET, HEAD, POST" for an allow mask into out. */
void router_allow_string(unsigned allow, char *out, size_t outlen);
/*
 * The allowlist class of a route, from its flags, method and permission
 * alone, so that a route added later is classified without anyone
 * remembering to: see docs/auth.md "Admin IP allowlist" for the rule.
 */
enum route_guard router_guard(const struct route *route);
/*
 * 1 if a route takes a request body: an explicit limit above 0, or the
 * default for a method that carries one (POST, PUT, PATCH).
 */
int router_takes_body(const struct route *route);
/* "always", "changes" or "never", as `bulwark routes` prints it. */
const char *router_guard_name(enum route_guard g);
/* Routes for iteration by tests and the permission catalogue. */
size_t router_count(const struct router *r);
const struct route *router_route(const struct router *r, size_t i);

/* --- response.c ------------------------------------------------------- */
/* The only place an error becomes an HTTP status. */
int response_status(bw_err e);
/* Reply with a JSON body (reference stolen) and status. */
bw_err response_json(struct http_req *req, int status, json_t *body) BW_MUST_USE;
/*
 * Reply with a non-JSON body (CSV exports): body is malloc'd and owned from
 * here on, even on failure; type is a static Content-Type.
 */
bw_err response_raw(struct http_req *req, int status, const char *type, const char *disposition,
		    char *body, size_t len) BW_MUST_USE;
/*
 * Reply with a body read while it is sent: status, static type, and
 * stream (its free is called when the request ends, even on failure).
 */
bw_err response_stream(struct http_req *req, int status, const char *type,
		       const struct http_stream *stream) BW_MUST_USE;
/* Record an error reply with a client-safe message; returns e. */
bw_err response_error(struct http_req *req, bw_err e, const char *msg);
/*
 * The same with more members for the "error" object (detail: a JSON
 * object, stolen; NULL for none), e.g. the end of a lockout. They are kept
 * as text in the request's pool, so nothing outlives the request. Members
 * named code, message or request_id are ignored. Returns e (never BW_OK).
 */
bw_err response_error_detail(struct http_req *req, bw_err e, const char *msg, json_t *detail);
/*
 * Add (or replace: names compare case-insensitively) a reply header. The
 * name must be a static string; the value is copied into the pool and refused (BW_ERR_INVALID, nothing
 * recorded) when it holds a control character; BW_ERR_NOMEM past
 * HTTP_REPLY_HEADERS_MAX. always: sent on an error reply too; otherwise
 * only when the request succeeds (an ETag never describes a 412).
 */
bw_err response_header(struct http_req *req, const char *name, const char *value,
		       int always) BW_MUST_USE;
/* The {"error":{"code","message"}} body for req's error; NULL on OOM. */
char *response_error_body(const struct http_req *req, size_t *len);

/* --- framing.c: what the front door refuses ---------------------------- */
/* One request header field as the parser left it: pointers into its buffer. */
struct http_field {
	const char *name, *value;
	size_t name_len, value_len;
};
/* How the body of a request that passed the check is framed. */
struct framing {
	int has_length; /* Content-Length given... */
	size_t length;  /* ...with this value */
};
#define FRAMING_FIELDS_MAX 256 /* header fields in one request */
#define FRAMING_OWS_MAX 1024   /* white space between a colon and its value */
/*
 * Check a request head laid out as libmicrohttpd 0.9.75 leaves it (see
 * framing.c): version is the request line's HTTP-version, f the n fields
 * in order, end the first byte after the head (NULL: not known). Refuses
 * (BW_ERR_INVALID, 400) a name that is not a token, a control character in
 * a value, anything between the lines but CRLF (obs-fold, NUL, bare LF),
 * two Host fields (or none in HTTP/1.1), two framings; BW_ERR_LENGTH_REQUIRED (411) for a
 * chunked body and BW_ERR_UNSUPPORTED (501) for any other transfer coding. *why says which, for the client.
 */
bw_err framing_check(const char *version, const struct http_field *f, size_t n, const char *end,
		     struct framing *out, const char **why) BW_MUST_USE;
/* 1 if a request target (path or query, raw) holds no white space or control character. */
int framing_target_ok(const char *s);

/* --- conntrack.c: deadlines for slow clients ------------------------------ */
struct conntrack;
struct conntrack_entry;
struct conntrack_conf {
	long header_timeout; /* s from accept (or from a keep-alive request line) to the end of the head */
	long idle_timeout;   /* s of keep-alive before the next head's deadline starts */
	long body_min_rate;  /* bytes/s a body, sent or received, must average after the grace; 0: none */
	long soft_max;       /* connections; beyond it a new one displaces a slow one; 0: none */
};
#define CONNTRACK_TICK_MS 250
/* A tracker; with watchdog, a thread that cuts connections past their deadline. */
bw_err conntrack_new(const struct conntrack_conf *conf, int watchdog,
		     struct conntrack **out) BW_MUST_USE;
/* Stop the watchdog and free; accepts NULL. */
void conntrack_free(struct conntrack *ct);
void conntrack_configure(struct conntrack *ct, const struct conntrack_conf *conf);
/*
 * A new connection on socket fd, in its head phase. When this makes more
 * than soft_max, the oldest connection still in its head or idle is shut
 * down (this one if there is no other). NULL on OOM, fd then shut down.
 */
struct conntrack_entry *conntrack_open(struct conntrack *ct, int fd, uint64_t now_us);
/* The connection is gone (before its descriptor is closed); accepts NULL. */
void conntrack_close(struct conntrack *ct, struct conntrack_entry *e);
/* Phase changes; each accepts NULL. */
void conntrack_request_line(struct conntrack *ct, struct conntrack_entry *e, uint64_t now_us);
void conntrack_headers_done(struct conntrack *ct, struct conntrack_entry *e, int body,
			    uint64_t now_us);
void conntrack_body(struct conntrack *ct, struct conntrack_entry *e, size_t n);
void conntrack_busy(struct conntrack *ct, struct conntrack_entry *e);
/* The reply (bytes long, head included) is queued: now the client must read it. */
void conntrack_sending(struct conntrack *ct, struct conntrack_entry *e, size_t bytes,
		       uint64_t now_us);
void conntrack_idle(struct conntrack *ct, struct conntrack_entry *e, uint64_t now_us);
/* 1 if the tracker shut this connection down (its request is logged as 408). */
int conntrack_was_cut(struct conntrack *ct, struct conntrack_entry *e);
/* Cut every connection past its deadline at now_us; how many (the watchdog's tick). */
size_t conntrack_sweep(struct conntrack *ct, uint64_t now_us);
size_t conntrack_count(struct conntrack *ct);

/* --- query.c ----------------------------------------------------------- */
#define HTTP_QUERY_MAX 32
#define HTTP_QUERY_LEN_MAX 4096
struct http_query {
	size_t n;
	const char *key[HTTP_QUERY_MAX]; /* decoded, in the request's pool */
	const char *val[HTTP_QUERY_MAX]; /* "" when the pair has no '=' */
};
/* The value of a hex digit, or -1 (paths and query strings are decoded with it). */
int http_hexval(char c);
/* Split and decode req->query; BW_ERR_INVALID (reply set) when malformed or a name repeats. */
bw_err http_query_parse(struct http_req *req, struct http_query *q) BW_MUST_USE;
/*
 * The same for an application/x-www-form-urlencoded body (the SAML ACS):
 * req->body, NUL-terminated here, of any length the route allows.
 */
bw_err http_form_parse(struct http_req *req, struct http_query *q) BW_MUST_USE;

/* --- page.c: lists -------------------------------------------------------- */
/*
 * Every list replies {"data":[...], "total":N, "limit":N, "has_more":b,
 * "next_cursor":"..."|null} with a Link rel="next" header when there is a
 * next page, and reads limit (1..100, default 25) and cursor. Pages are
 * keyset pages over (sort column, id): see page.c and docs/http.md "Lists".
 */
#define PAGE_LIMIT_DEFAULT 25
#define PAGE_LIMIT_MAX 100
#define PAGE_TEXT_MAX 1024 /* bytes of a text sort value a cursor carries */

enum page_type { PAGE_INT, PAGE_TEXT };

/* A row's place in its list: its sort value (NULL, an integer or a text) and id. */
struct page_key {
	int null;
	int64_t i;
	const char *s; /* in the request's pool */
	int64_t id;
};

struct page {
	long limit, limit_max;
	const char *cursor;  /* as given, until page_order() reads it */
	const char *sort;    /* what the cursor is made for ("id", "-due_on") */
	const char *col;     /* the sort column: a compiled-in name */
	const char *id_col;  /* the tie-breaker column; NULL: "id" */
	int desc;
	enum page_type type;
	int have_after;
	struct page_key after; /* from the cursor */
	long n;                /* rows taken so far */
	int more;
	struct page_key last;  /* the page's last row, once it is full */
	int64_t total;         /* the caller's COUNT with the same filters */
};

/* Defaults: limit 25 (at most 100), sort by id ascending, no cursor. */
void page_init(struct page *p);
/*
 * Take query parameter key=val when it is the list's own (limit, cursor):
 * *taken 1. BW_ERR_INVALID (recorded) for a bad limit; otherwise BW_OK.
 */
bw_err page_param(struct http_req *req, struct page *p, const char *key, const char *val,
		  int *taken) BW_MUST_USE;
/*
 * Fix the order (sort as the client gave it, col its compiled-in column,
 * the value's type) and read the cursor for it: BW_ERR_INVALID (recorded)
 * for a cursor this route did not make for this sort, or one edited.
 */
bw_err page_order(struct http_req *req, struct page *p, const char *sort, const char *col,
		  int desc, enum page_type type) BW_MUST_USE;
/* The keyset condition ("" without a cursor) and the ORDER BY ... LIMIT ? tail; NULL on OOM. */
const char *page_cond(struct http_req *req, const struct page *p);
const char *page_order_sql(struct http_req *req, const struct page *p);
/* Bind page_cond()'s values from *idx on, then (page_bind_limit) the LIMIT: limit + 1. */
bw_err page_bind(const struct page *p, db_stmt *s, int *idx) BW_MUST_USE;
bw_err page_bind_limit(const struct page *p, db_stmt *s, int *idx) BW_MUST_USE;
/* Before taking a row: 1 when the page is already full (there is more), else 0. */
int page_full(struct page *p);
/* After taking the row s is on (its sort value in sort_col, id in id_col). BW_ERR_NOMEM. */
bw_err page_seen(struct http_req *req, struct page *p, db_stmt *s, int sort_col,
		 int id_col) BW_MUST_USE;
/* The same for an integer sort whose values are at hand. */
void page_seen_key(struct page *p, int64_t value, int64_t id);
/*
 * The ids of one page of a list whose rows are "SELECT id FROM from WHERE
 * (filter)" (compiled-in text; args bound to filter's ?), ordered by id as
 * page_order() set it; at most PAGE_LIMIT_MAX into ids, their count into
 * *n, p->total counted with the same filter. For lists whose rows are then
 * read one by one through an operation.
 */
bw_err page_ids(struct http_req *req, struct page *p, const char *from, const char *filter,
		const struct db_arg *args, size_t nargs, int64_t *ids, size_t *n) BW_MUST_USE;
/*
 * Reply with the rows ids[0..n) (from page_ids) as get reads them through
 * the operation, in the envelope: a row gone since the page was read is
 * left out.
 */
typedef bw_err (*page_get_fn)(struct op *op, int64_t id, json_t **out);
bw_err page_reply_ids(struct http_req *req, struct page *p, const struct http_query *q,
		      const int64_t *ids, size_t n, page_get_fn get) BW_MUST_USE;
/* Reply with the envelope around data (stolen) and the Link header; q: this request's query. */
bw_err page_reply(struct http_req *req, struct page *p, const struct http_query *q,
		  json_t *data) BW_MUST_USE;
/*
 * The same for a body written straight into b through w: w has "{" and
 * the "data" array written and closed; the envelope's other members, the
 * Link header and the reply follow. b is freed (wiped) whatever happens.
 */
struct jsonw;
bw_err page_reply_jsonw(struct http_req *req, struct page *p, const struct http_query *q,
			struct jsonw *w, struct buf *b) BW_MUST_USE;

/* --- csv.c: exports ------------------------------------------------------ */
#define CSV_MAX ((size_t)256 * 1024 * 1024)
/*
 * Start from struct csv c = {0}. The text is held in buf (maximum CSV_MAX);
 * b and len mirror it for the callers written before buf: the caller owns
 * b after the last put and hands it to response_raw() or frees it. New
 * code takes the text with csv_take() instead and never touches b.
 */
struct csv {
	char *b;    /* buf's bytes; NULL while empty */
	size_t len; /* buf's length */
	int failed; /* out of memory or past CSV_MAX: the rest was dropped */
	struct buf buf;
};
void csv_put(struct csv *c, const char *s, size_t n);
/* One quoted cell (strings, numbers, booleans; objects as JSON text), comma first unless first. */
void csv_cell(struct csv *c, json_t *v, int first);
void csv_end_line(struct csv *c);
/*
 * Move the text out: *out malloc'd (caller frees or hands it to
 * response_raw()), *len its length; c is left empty. BW_ERR_TOO_LARGE
 * (nothing moved, c freed) when the export failed, BW_ERR_NOMEM when an
 * empty export cannot allocate its "".
 */
bw_err csv_take(struct csv *c, char **out, size_t *len) BW_MUST_USE;

/* --- ratelimit.c ------------------------------------------------------ */
struct ratelimit;
/* Token bucket per client address; rate 0 disables. NULL on OOM. */
struct ratelimit *ratelimit_new(double per_second, long burst);
void ratelimit_free(struct ratelimit *rl);
/* Change rate and burst (SIGHUP) without losing state. */
void ratelimit_configure(struct ratelimit *rl, double per_second, long burst);
/* 1 if the address may proceed now, 0 if over its rate. */
int ratelimit_take(struct ratelimit *rl, const char *addr, uint64_t now_us);
/* Where an address's bucket stands after a check (RateLimit-* headers). */
struct ratelimit_state {
	long limit;       /* the bucket's size (burst); 0: the limiter is off */
	long remaining;   /* whole requests left now, this one counted */
	long reset;       /* seconds until the bucket is full again (0: full) */
	long retry_after; /* refused: seconds until the next request is allowed; else 0 */
};
/* ratelimit_take, also filling *st (may be NULL). */
int ratelimit_check(struct ratelimit *rl, const char *addr, uint64_t now_us,
		    struct ratelimit_state *st);

/* --- accesslog.c ------------------------------------------------------ */
struct accesslog;
/* "-" = stdout, "off" = nothing, else a file opened for append. */
bw_err accesslog_open(const char *where, struct accesslog **out) BW_MUST_USE;
/* Reopen the same or a new target in place (SIGHUP, logrotate). */
bw_err accesslog_reopen(struct accesslog *al, const char *where) BW_MUST_USE;
void accesslog_close(struct accesslog *al);
/* One JSON line: time, id, tenant, client, method, path, status, micros. */
void accesslog_write(struct accesslog *al, const struct http_req *req, uint64_t duration_us);

/* --- tls.c ------------------------------------------------------------ */
/*
 * Load (or on SIGHUP, replace) the certificate chain and key served to new
 * handshakes. Refuses a key that does not match the certificate.
 */
bw_err tls_load(const char *cert_path, const char *key_path, char *err, size_t errlen) BW_MUST_USE;
/* The GnuTLS certificate callback handed to libmicrohttpd. */
void *tls_cert_callback(void);
/* TLS 1.3 only, AEAD suites only. */
const char *tls_priorities(void);
void tls_unload(void);

/* --- req.c: what a handler reaches through its request ---------------------- */
struct router;
struct ratelimit;
struct auth_hasher;
/* Set by the server for every request; read-only for handlers. */
struct http_services {
	const struct config *cfg;
	struct tenancy *ten;
	struct auth_hasher *hasher;
	const struct router *router;
	struct ratelimit *login_rl; /* login attempts per address */
};
/*
 * The request's connection to its own tenant's database (op_db): borrowed
 * on first use and returned when the request ends. BW_ERR_UNAVAILABLE
 * (503, recorded) when the database cannot be reached.
 */
bw_err http_req_db(struct http_req *req, db **out) BW_MUST_USE;
/* The live route table (the permission catalogue is derived from it). */
const struct router *http_req_router(const struct http_req *req);
/* The server's configuration, tenancy and password hasher, for handlers. */
const struct config *http_req_config(const struct http_req *req);
struct tenancy *http_req_tenancy(const struct http_req *req);
struct auth_hasher *http_req_hasher(const struct http_req *req);
/*
 * One login attempt from the request's address: 0 when over the rate. Sets
 * the RateLimit-* headers (and Retry-After when refused) as
 * http_req_rate_headers does.
 */
int http_req_login_allowed(struct http_req *req);
/*
 * The RateLimit-Limit, -Remaining and -Reset headers for st (on every
 * reply, errors too), and Retry-After when st says refused. When another
 * limiter already set them, the one with fewer requests remaining is kept
 * (the stricter policy is the one a client must heed). Nothing when the
 * limiter is off (limit 0). BW_ERR_NOMEM when the headers cannot be kept.
 */
bw_err http_req_rate_headers(struct http_req *req, const struct ratelimit_state *st) BW_MUST_USE;
/*
 * The request body as a JSON object, duplicate keys refused;
 * BW_ERR_INVALID (recorded) otherwise: a message naming the parse error
 * (or the repeated key) and where, with "position" (byte offset), "line"
 * and "column" members in the error object; a body that is JSON but not
 * an object has its own message.
 */
bw_err http_req_json(struct http_req *req, json_t **out) BW_MUST_USE;
/*
 * 1 if a Content-Type value says JSON as this server takes it:
 * application/json (any case), with no parameter but charset=utf-8 (any
 * case, quoted or not); 0 otherwise, NULL included.
 */
int http_media_is_json(const char *content_type);
/* The same for another media type (charset utf-8 at most): "application/x-www-form-urlencoded". */
int http_media_is(const char *content_type, const char *type);
/* Request header by name (case-insensitive), or NULL. */
const char *http_req_header(const struct http_req *req, const char *name);
/*
 * The one parser of a route's numeric parameter (":id", ":tid"): BW_OK
 * with a positive id of at most ROUTE_ID_MAX, else BW_ERR_NOTFOUND with
 * nothing recorded (the caller says what is not found).
 */
#define ROUTE_ID_MAX INT64_MAX
bw_err http_req_id(const struct http_req *req, const char *param, int64_t *out) BW_MUST_USE;

/*
 * Optimistic concurrency. Every versioned row (module rows, users,
 * roles) is sent with ETag "<version>" (a strong tag: a quoted positive
 * decimal), and a write may be made conditional with If-Match.
 *
 * If-Match, parsed (RFC 9110 13.1.1): the versions the write may go ahead
 * at, n of them, tried in turn by the caller. No If-Match, or "*": one
 * version, 0 (no precondition: "*" asks for a current row, and a write to
 * a row that is not there is 404 anyway). A list of entity tags: each
 * distinct strong tag that names a version; when none does (weak tags,
 * which never match, or tags we never sent) one version, -1, which no row
 * is at. BW_ERR_INVALID for a field that is neither "*" nor a list of
 * entity tags, "*" beside tags, more than HTTP_IF_MATCH_MAX versions or
 * HTTP_IF_MATCH_LINES lines (http_req_if_match records the 400).
 */
#define HTTP_IF_MATCH_MAX 8    /* versions one If-Match may name */
#define HTTP_IF_MATCH_LINES 16 /* If-Match field lines one request may send */
struct http_if_match {
	size_t n;
	int64_t version[HTTP_IF_MATCH_MAX];
};
bw_err http_req_if_match(struct http_req *req, struct http_if_match *out) BW_MUST_USE;
/*
 * ifmatch.c: the parser itself, over the field lines given (each lens[i]
 * bytes, NUL or not); on BW_ERR_INVALID *why is the client's message.
 */
bw_err http_if_match_parse(const char *const *lines, const size_t *lens, size_t nlines,
			   struct http_if_match *out, const char **why) BW_MUST_USE;
/* ETag: "<version>" on the reply when it succeeds (nothing for version <= 0). */
bw_err http_req_etag(struct http_req *req, int64_t version) BW_MUST_USE;
/* Reply with o (stolen); its integer "version" member, if any, as the ETag. */
bw_err http_reply_versioned(struct http_req *req, int status, json_t *o) BW_MUST_USE;

#endif
