/*
 * egress: the outbound HTTP client that delivers webhooks to URLs our
 * customers chose, hardened against server-side request forgery.
 *
 * Two checks, both fail closed. egress_url_check() refuses a URL that is
 * not https, names an obviously internal host or spells a refused address
 * as a literal (in any spelling the C library would accept). That check is
 * advisory: a public name can resolve to anything, and resolve again to
 * something else a second later. The authoritative check runs at connect
 * time, on the very sockaddr libcurl is about to connect to
 * (CURLOPT_OPENSOCKETFUNCTION), so DNS rebinding gains nothing.
 */
#ifndef BW_WEBHOOKS_EGRESS_H
#define BW_WEBHOOKS_EGRESS_H

#include <curl/curl.h>
#include <stddef.h>

#include "../core/core.h"
#include "../core/netaddr.h"

#define EGRESS_URL_MAX 2048
#define EGRESS_BODY_CAP_MAX 4096      /* most of a response body we keep */
#define EGRESS_READ_MAX (64 * 1024)   /* most of a response body we read at all */
#define EGRESS_HEADERS_READ_MAX (32 * 1024) /* most of the response headers we read */
#define EGRESS_REQUEST_MAX (1024 * 1024)    /* most of a request body we send */
#define EGRESS_HEADERS_MAX 32         /* extra request headers */
#define EGRESS_HEADER_LEN_MAX 8192    /* bytes of one extra request header */
#define EGRESS_RESOLVE_MAX 16         /* test-only CURLOPT_RESOLVE entries */
#define EGRESS_TIMEOUT_MAX_MS 120000  /* longest timeout a caller may ask for */

struct egress_opts {
	long connect_timeout_ms;    /* 0: 5000 */
	long total_timeout_ms;      /* 0: 15000 */
	size_t body_cap;            /* bytes of the response body kept; 0: 1024; at most 4096 */
	int allow_loopback;         /* test-only: 127.0.0.0/8 and ::1 allowed (everything else stays refused) */
	const char *ca_file;        /* CA bundle used instead of the system's, or NULL for the system's */
	const char *const *resolve; /* NULL-terminated CURLOPT_RESOLVE entries ("host:port:addr"), tests only, or NULL */
	/* Asked about once a second (and at every read): nonzero aborts the transfer (a server stopping). NULL: never. */
	int (*cancelled)(void *arg);
	void *cancel_arg;
};

struct egress_result {
	long status;         /* HTTP status; 0 when no response */
	long latency_ms;     /* from start to the end of the response (or failure) */
	char body[EGRESS_BODY_CAP_MAX + 1]; /* NUL-terminated prefix of the response body */
	size_t body_len;
	int body_truncated;  /* 1 when bytes past body_cap were dropped (reading stops at EGRESS_READ_MAX) */
	char peer[46];       /* the address connected to, "" if none (for logs: it may be internal DNS) */
	int address_refused; /* 1 when the connect-time address check refused every address */
	char error[256];     /* why it failed (client-safe, no secrets, no resolved addresses), "" on success */
};

/*
 * 1 when a is in a refused range (private, loopback, link-local, shared,
 * documentation, multicast, reserved, NAT64, 6to4, Teredo ...), else 0.
 * Loopback (127.0.0.0/8, ::1) counts as refused unless allow_loopback.
 */
int egress_address_refused(const struct netaddr *a, int allow_loopback);

/*
 * The connect-time check for any libcurl client (CURLOPT_OPENSOCKETFUNCTION):
 * the socket libcurl asks for, opened only when its address is not refused
 * (the address into *peer when not NULL); CURL_SOCKET_BAD otherwise, and
 * for anything but an IPv4 or IPv6 connection. The SMTP client uses it for
 * tenants' own mail servers.
 */
curl_socket_t egress_socket_open(curlsocktype purpose, const struct curl_sockaddr *sa,
				 int allow_loopback, struct netaddr *peer);

/*
 * Check a subscription URL: BW_OK, or BW_ERR_INVALID with why (client-safe).
 * https only; a host; no userinfo; no fragment; port 1-65535; an IP literal
 * in any spelling inet_aton/inet_pton accept is refused when in a refused
 * range; "localhost", "*.localhost", single-label names and names ending in
 * ".internal" or ".local" refused; at most EGRESS_URL_MAX bytes of printable
 * ASCII.
 */
bw_err egress_url_check(const char *url, int allow_loopback, char *why, size_t whylen) BW_MUST_USE;

/*
 * POST len bytes of body to url with the extra headers ("Name: value",
 * NULL-terminated, or NULL). Never follows redirects, never uses a proxy.
 * BW_OK when a response arrived (any status: r->status says which). A body
 * over EGRESS_READ_MAX still counts, with r->body_truncated: cut off there
 * when it came without a length, not read at all when its Content-Length
 * said so (CURLOPT_MAXFILESIZE). BW_ERR_INVALID for a
 * URL, header or option refused before sending, and when the connect-time
 * address check refused every address (r->address_refused set);
 * BW_ERR_NOMEM when libcurl could not be set up; BW_ERR_IO otherwise. On
 * every failure r->error says why.
 */
bw_err egress_post(const char *url, const char *const *headers, const void *body, size_t len,
		   const struct egress_opts *o, struct egress_result *r) BW_MUST_USE;

#endif
