/*
 * The webhook egress client. A customer's URL is untrusted input that makes
 * us open a connection: to 169.254.169.254 it would read the cloud's
 * metadata service, to 10.x our own databases. So every address libcurl
 * is about to connect to goes through egress_address_refused() in the
 * open-socket callback, after resolution, whatever the name said. The URL
 * check before it only spares a doomed request and gives a clearer error.
 *
 * Also, never: a redirect (the Location could point anywhere and would be
 * checked only by the callback; a receiver has no business redirecting),
 * a proxy from the environment (the callback would then judge the proxy's
 * address, not the receiver's), plain http, content decoding (no
 * CURLOPT_ACCEPT_ENCODING: a compressed bomb is just bytes we stop
 * reading), or more than EGRESS_READ_MAX bytes of body read.
 */
#include "egress.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* --- refused ranges ------------------------------------------------------ */

struct egress_range {
	struct netrange r;
	const char *what; /* for the reader and the tests, never for the client */
};

/* IPv4 is kept IPv4-mapped in struct netaddr: prefix lengths count from ::ffff:0:0/96. */
#define EGRESS_V4(a, b, c, d, len)                                                           \
	{{{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d}}, 96 + (len)}, #a "." #b "." #c "." #d "/" #len}
#define EGRESS_V6(text, len, ...) {{{{__VA_ARGS__}}, len}, text}

static const struct egress_range egress_refused[] = {
	EGRESS_V4(0, 0, 0, 0, 8),          /* "this network" */
	EGRESS_V4(10, 0, 0, 0, 8),         /* private */
	EGRESS_V4(100, 64, 0, 0, 10),      /* shared address space (CGNAT) */
	EGRESS_V4(127, 0, 0, 0, 8),        /* loopback */
	EGRESS_V4(169, 254, 0, 0, 16),     /* link-local, cloud metadata 169.254.169.254 */
	EGRESS_V4(172, 16, 0, 0, 12),      /* private */
	EGRESS_V4(192, 0, 0, 0, 24),       /* IETF protocol assignments */
	EGRESS_V4(192, 0, 2, 0, 24),       /* TEST-NET-1 */
	EGRESS_V4(192, 88, 99, 0, 24),     /* 6to4 relay anycast */
	EGRESS_V4(192, 168, 0, 0, 16),     /* private */
	EGRESS_V4(198, 18, 0, 0, 15),      /* benchmarking */
	EGRESS_V4(198, 51, 100, 0, 24),    /* TEST-NET-2 */
	EGRESS_V4(203, 0, 113, 0, 24),     /* TEST-NET-3 */
	EGRESS_V4(224, 0, 0, 0, 4),        /* multicast */
	EGRESS_V4(240, 0, 0, 0, 4),        /* reserved */
	EGRESS_V4(255, 255, 255, 255, 32), /* limited broadcast */
	/* ::/128 and ::1 lie in ::/96; listed so that the table says so. */
	EGRESS_V6("::/128", 128, 0),
	EGRESS_V6("::1/128", 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
	EGRESS_V6("::/96", 96, 0), /* IPv4-compatible (deprecated): never a real peer */
	EGRESS_V6("64:ff9b::/96", 96, 0, 0x64, 0xff, 0x9b),             /* NAT64: could reach any v4 */
	EGRESS_V6("64:ff9b:1::/48", 48, 0, 0x64, 0xff, 0x9b, 0, 1),     /* local-use NAT64 */
	EGRESS_V6("100::/64", 64, 0x01, 0),                             /* discard-only */
	EGRESS_V6("2001::/23", 23, 0x20, 0x01, 0, 0),                   /* IETF protocol assignments, Teredo */
	EGRESS_V6("2001:db8::/32", 32, 0x20, 0x01, 0x0d, 0xb8),         /* documentation */
	EGRESS_V6("2002::/16", 16, 0x20, 0x02),                         /* 6to4: embeds a v4 we would not judge */
	EGRESS_V6("fc00::/7", 7, 0xfc),                                 /* unique local, incl. fd00:ec2::254 */
	EGRESS_V6("fe80::/10", 10, 0xfe, 0x80),                         /* link-local */
	EGRESS_V6("fec0::/10", 10, 0xfe, 0xc0),                         /* site-local (deprecated) */
	EGRESS_V6("ff00::/8", 8, 0xff),                                 /* multicast */
};

static const struct netrange egress_loopback4 = {{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 0}},
						 104};
static const struct netrange egress_loopback6 = {{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}}, 128};

int
egress_address_refused(const struct netaddr *a, int allow_loopback)
{
	if (a == NULL)
		return 1;
	if (allow_loopback &&
	    (netrange_contains(&egress_loopback4, a) || netrange_contains(&egress_loopback6, a)))
		return 0;
	for (size_t i = 0; i < BW_ARRAY_LEN(egress_refused); i++)
		if (netrange_contains(&egress_refused[i].r, a))
			return 1;
	return 0;
}

/* --- the URL ------------------------------------------------------------- */

static bw_err
egress_why(char *why, size_t whylen, const char *msg)
{
	if (why != NULL && whylen > 0)
		snprintf(why, whylen, "%s", msg);
	return BW_ERR_INVALID;
}

static int
egress_suffix(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* A host name (not an IP literal in brackets), lower-cased into h. */
static bw_err
egress_host_check(char *h, size_t n, int allow_loopback, char *why, size_t whylen)
{
	/* One trailing dot names the same host ("localhost." is localhost). */
	if (n > 0 && h[n - 1] == '.')
		h[--n] = '\0';
	if (n == 0)
		return egress_why(why, whylen, "the URL has no host");
	if (n > 253)
		return egress_why(why, whylen, "the host name is too long");
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0)
				return egress_why(why, whylen, "the host name has an empty label");
			label = 0;
			continue;
		}
		/* No '%': libcurl would decode it, and "%31%32%37.0.0.1" is a spelling too. */
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return egress_why(why, whylen, "the host name has a character not allowed in it");
		if (++label > 63)
			return egress_why(why, whylen, "a label of the host name is too long");
	}
	if (label == 0)
		return egress_why(why, whylen, "the host name has an empty label");

	/*
	 * An IPv4 literal in any spelling the resolver would take: inet_aton is
	 * what getaddrinfo uses for it, and it reads "2130706433", "0x7f000001",
	 * "0177.0.0.1" and "127.1" all as 127.0.0.1.
	 */
	struct in_addr v4;
	if (inet_aton(h, &v4) != 0) {
		struct netaddr a;
		memset(a.a, 0, 10);
		a.a[10] = a.a[11] = 0xff;
		memcpy(a.a + 12, &v4, 4);
		if (egress_address_refused(&a, allow_loopback))
			return egress_why(why, whylen, "the host is an address in a private or reserved range");
		return BW_OK;
	}
	/*
	 * Not an address to inet_aton but numeric all the same ("1.2.3.4.5",
	 * "4294967296", "0x1.0xg"): no top-level domain is numeric, and another
	 * parser may well read it as an address.
	 */
	const char *last = strrchr(h, '.');
	last = last ? last + 1 : h;
	if (strspn(last, "0123456789") == strlen(last) ||
	    (last[0] == '0' && last[1] == 'x'))
		return egress_why(why, whylen, "the host is neither a valid address nor a name");

	if (strchr(h, '.') == NULL)
		/* "metadata", "db": a search domain would make an internal name of it. */
		return egress_why(why, whylen, "the host name must be fully qualified");
	if (strcmp(h, "localhost") == 0 || egress_suffix(h, n, ".localhost"))
		return egress_why(why, whylen, "the host is localhost");
	if (egress_suffix(h, n, ".internal") || egress_suffix(h, n, ".local"))
		return egress_why(why, whylen, "the host is an internal name");
	return BW_OK;
}

bw_err
egress_url_check(const char *url, int allow_loopback, char *why, size_t whylen)
{
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (url == NULL)
		return egress_why(why, whylen, "no URL");
	size_t n = strnlen(url, EGRESS_URL_MAX + 1);
	if (n == 0)
		return egress_why(why, whylen, "no URL");
	if (n > EGRESS_URL_MAX)
		return egress_why(why, whylen, "the URL is longer than 2048 bytes");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)url[i];
		if (c <= 0x20 || c >= 0x7f)
			return egress_why(why, whylen,
					  "the URL has a space, control character or non-ASCII byte");
		/* Parsers disagree on '\' (WHATWG reads it as '/'): not worth the doubt. */
		if (c == '\\')
			return egress_why(why, whylen, "the URL has a backslash");
		if (c == '#')
			return egress_why(why, whylen, "the URL has a fragment");
	}
	if (strncasecmp(url, "https://", 8) != 0)
		return egress_why(why, whylen, "the URL must start with https://");

	const char *auth = url + 8;
	size_t alen = strcspn(auth, "/?");
	if (memchr(auth, '@', alen) != NULL)
		return egress_why(why, whylen, "the URL must not hold credentials (user@)");

	const char *host, *port = NULL;
	size_t hlen, plen = 0;
	int bracket = 0;
	if (alen > 0 && auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		if (close == NULL)
			return egress_why(why, whylen, "the URL has an unclosed '[' in its host");
		host = auth + 1;
		hlen = (size_t)(close - host);
		const char *after = close + 1;
		if (after < auth + alen) {
			if (*after != ':')
				return egress_why(why, whylen, "the URL has text after its ']'");
			port = after + 1;
			plen = (size_t)(auth + alen - port);
		}
		bracket = 1;
	} else {
		const char *colon = memchr(auth, ':', alen);
		host = auth;
		hlen = colon ? (size_t)(colon - auth) : alen;
		if (colon != NULL) {
			port = colon + 1;
			plen = (size_t)(auth + alen - port);
		}
	}
	if (port != NULL) {
		long p = 0;
		if (plen == 0 || plen > 5 || strspn(port, "0123456789") < plen)
			return egress_why(why, whylen, "the URL's port must be a number from 1 to 65535");
		for (size_t i = 0; i < plen; i++)
			p = p * 10 + (port[i] - '0');
		if (p < 1 || p > 65535)
			return egress_why(why, whylen, "the URL's port must be a number from 1 to 65535");
	}
	if (hlen == 0)
		return egress_why(why, whylen, "the URL has no host");

	char h[256];
	if (bracket) {
		/* An IPv6 literal: no zone id ("%25eth0"), nothing inet_pton refuses. */
		struct netaddr a;
		if (hlen >= 64)
			return egress_why(why, whylen, "the URL's IPv6 address is not valid");
		memcpy(h, host, hlen);
		h[hlen] = '\0';
		if (strspn(h, "0123456789abcdefABCDEF:.") != hlen || inet_pton(AF_INET6, h, a.a) != 1)
			return egress_why(why, whylen, "the URL's IPv6 address is not valid");
		/* ::ffff:127.0.0.1 and ::ffff:7f00:1 are IPv4-mapped: the v4 ranges judge them. */
		if (egress_address_refused(&a, allow_loopback))
			return egress_why(why, whylen, "the host is an address in a private or reserved range");
		return BW_OK;
	}
	if (hlen >= sizeof(h))
		return egress_why(why, whylen, "the host name is too long");
	for (size_t i = 0; i < hlen; i++) {
		char c = host[i];
		h[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	h[hlen] = '\0';
	return egress_host_check(h, hlen, allow_loopback, why, whylen);
}

/* --- the transfer -------------------------------------------------------- */

struct egress_ctx {
	struct egress_result *r;
	int allow_loopback;
	size_t body_cap;
	size_t read;         /* body bytes seen */
	size_t header_bytes; /* header bytes seen */
	int over_read;       /* we stopped reading: more than EGRESS_READ_MAX */
	int over_headers;    /* we stopped reading: headers over EGRESS_HEADERS_READ_MAX */
	unsigned refused;    /* sockets refused by the address check */
	unsigned opened;     /* sockets opened */
};

/*
 * The authoritative check: libcurl asks us for each socket it will connect
 * with, handing over the resolved address. Refusing it here covers every
 * path to an address: DNS (rebinding included), CURLOPT_RESOLVE, literals,
 * happy eyeballs' second family.
 */
curl_socket_t
egress_socket_open(curlsocktype purpose, const struct curl_sockaddr *sa, int allow_loopback,
		   struct netaddr *peer)
{
	struct netaddr a;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (sa->family == AF_INET && sa->addrlen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&sa->addr;
		memset(a.a, 0, 10);
		a.a[10] = a.a[11] = 0xff;
		memcpy(a.a + 12, &in->sin_addr, 4);
	} else if (sa->family == AF_INET6 && sa->addrlen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&sa->addr;
		memcpy(a.a, &in6->sin6_addr, 16);
	} else {
		return CURL_SOCKET_BAD; /* AF_UNIX or anything else: not ours to open */
	}
	if (egress_address_refused(&a, allow_loopback))
		return CURL_SOCKET_BAD;
	if (peer != NULL)
		*peer = a;
	return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

static curl_socket_t
egress_opensocket(void *user, curlsocktype purpose, struct curl_sockaddr *sa)
{
	struct egress_ctx *c = user;
	struct netaddr a;
	curl_socket_t fd = egress_socket_open(purpose, sa, c->allow_loopback, &a);
	if (fd == CURL_SOCKET_BAD) {
		c->refused++;
		return fd;
	}
	c->opened++;
	netaddr_format(&a, c->r->peer, sizeof(c->r->peer));
	return fd;
}

static size_t
egress_write(char *data, size_t size, size_t nmemb, void *user)
{
	struct egress_ctx *c = user;
	struct egress_result *r = c->r;
	size_t n = size * nmemb; /* size is always 1 */
	if (n > EGRESS_READ_MAX - c->read) {
		c->over_read = 1;
		r->body_truncated = 1;
		return CURL_WRITEFUNC_ERROR; /* stops the transfer: nothing holds the worker */
	}
	c->read += n;
	size_t room = c->body_cap - r->body_len;
	size_t keep = n < room ? n : room;
	memcpy(r->body + r->body_len, data, keep);
	r->body_len += keep;
	r->body[r->body_len] = '\0';
	if (keep < n)
		r->body_truncated = 1;
	return n;
}

static size_t
egress_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct egress_ctx *c = user;
	size_t n = size * nmemb;
	(void)data;
	if (n > EGRESS_HEADERS_READ_MAX - c->header_bytes) {
		c->over_headers = 1;
		return 0; /* CURLE_WRITE_ERROR */
	}
	c->header_bytes += n;
	return n;
}

/* Whether line is a header named name (case-insensitive), "Name:" or "Name;". */
static int
egress_header_is(const char *line, const char *name)
{
	size_t k = strlen(name);
	return strncasecmp(line, name, k) == 0 && (line[k] == ':' || line[k] == ';');
}

/* Add the caller's headers to *list; *has_type when one gives Content-Type. */
static bw_err
egress_headers(const char *const *headers, struct curl_slist **list, int *has_type, char *err,
	       size_t errlen)
{
	/* Headers libcurl works out itself, and Expect (we always send none). */
	static const char *const refused[] = {"Host", "Content-Length", "Transfer-Encoding",
					      "Connection", "Expect", "Upgrade"};
	*has_type = 0;
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
		const char *h = headers[i];
		if (i == EGRESS_HEADERS_MAX) {
			snprintf(err, errlen, "too many request headers");
			return BW_ERR_INVALID;
		}
		size_t n = strnlen(h, EGRESS_HEADER_LEN_MAX + 1);
		size_t name = strcspn(h, ":");
		if (n > EGRESS_HEADER_LEN_MAX || name == 0 || name == n) {
			snprintf(err, errlen, "a request header is not of the form 'Name: value'");
			return BW_ERR_INVALID;
		}
		for (size_t j = 0; j < name; j++) {
			unsigned char c = (unsigned char)h[j];
			if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL) {
				snprintf(err, errlen, "a request header has a bad name");
				return BW_ERR_INVALID;
			}
		}
		for (size_t j = name + 1; j < n; j++) {
			unsigned char c = (unsigned char)h[j];
			/* No CR or LF: a header must not become two, or a request. */
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				snprintf(err, errlen, "a request header has a control character");
				return BW_ERR_INVALID;
			}
		}
		for (size_t j = 0; j < BW_ARRAY_LEN(refused); j++) {
			if (egress_header_is(h, refused[j])) {
				snprintf(err, errlen, "the request header %s is set by the client itself",
					 refused[j]);
				return BW_ERR_INVALID;
			}
		}
		if (egress_header_is(h, "Content-Type"))
			*has_type = 1;
		struct curl_slist *t = curl_slist_append(*list, h);
		if (t == NULL) {
			snprintf(err, errlen, "out of memory");
			return BW_ERR_NOMEM;
		}
		*list = t;
	}
	return BW_OK;
}

static long
egress_elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (long)(t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A client-safe reason for a libcurl failure: curl's own wording of the code, no details. */
static void
egress_curl_error(struct egress_result *r, CURLcode rc)
{
	const char *hint = "";
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		hint = " (the receiver did not answer in time)";
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CONNECT_ERROR:
		hint = " (TLS: the receiver's certificate must be valid for its host name)";
		break;
	default:
		break;
	}
	snprintf(r->error, sizeof(r->error), "delivery failed: %s%s", curl_easy_strerror(rc), hint);
}

/* CURLOPT_XFERINFOFUNCTION: the caller's cancel question; nonzero aborts. */
static int
egress_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		curl_off_t ulnow)
{
	const struct egress_opts *o = arg;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return o->cancelled(o->cancel_arg) ? 1 : 0;
}

#define EGRESS_SETOPT(h, opt, val)                                                            \
	do {                                                                                  \
		if (rc == CURLE_OK)                                                           \
			rc = curl_easy_setopt(h, opt, val);                                   \
	} while (0)

bw_err
egress_post(const char *url, const char *const *headers, const void *body, size_t len,
	    const struct egress_opts *o, struct egress_result *r)
{
	static const struct egress_opts defaults;
	struct timespec t0;
	struct egress_ctx c;
	struct curl_slist *hdr = NULL, *res = NULL;
	CURL *h = NULL;
	CURLcode rc = CURLE_OK;
	bw_err e;
	int has_type;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (r == NULL)
		return BW_ERR_INVALID;
	memset(r, 0, sizeof(*r));
	if (o == NULL)
		o = &defaults;
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.allow_loopback = o->allow_loopback != 0;
	c.body_cap = o->body_cap == 0 ? 1024 : o->body_cap;
	long connect_ms = o->connect_timeout_ms == 0 ? 5000 : o->connect_timeout_ms;
	long total_ms = o->total_timeout_ms == 0 ? 15000 : o->total_timeout_ms;

	e = BW_ERR_INVALID;
	if (c.body_cap > EGRESS_BODY_CAP_MAX || connect_ms < 0 || connect_ms > EGRESS_TIMEOUT_MAX_MS ||
	    total_ms < 0 || total_ms > EGRESS_TIMEOUT_MAX_MS) {
		snprintf(r->error, sizeof(r->error), "bad delivery options");
		goto fail;
	}
	if ((body == NULL && len != 0) || len > EGRESS_REQUEST_MAX) {
		snprintf(r->error, sizeof(r->error), "the request body is too large");
		goto fail;
	}
	/* Fail closed: the same check the subscription passed, again now. */
	if (egress_url_check(url, c.allow_loopback, r->error, sizeof(r->error)) != BW_OK)
		goto fail;
	if ((e = egress_headers(headers, &hdr, &has_type, r->error, sizeof(r->error))) != BW_OK)
		goto fail;
	e = BW_ERR_NOMEM;
	struct curl_slist *t;
	if (!has_type) {
		if ((t = curl_slist_append(hdr, "Content-Type: application/json")) == NULL)
			goto nomem;
		hdr = t;
	}
	/* An empty value removes the header: no 100-continue round trip. */
	if ((t = curl_slist_append(hdr, "Expect:")) == NULL)
		goto nomem;
	hdr = t;
	for (size_t i = 0; o->resolve != NULL && o->resolve[i] != NULL; i++) {
		if (i == EGRESS_RESOLVE_MAX) {
			e = BW_ERR_INVALID;
			snprintf(r->error, sizeof(r->error), "too many resolve entries");
			goto fail;
		}
		if ((t = curl_slist_append(res, o->resolve[i])) == NULL)
			goto nomem;
		res = t;
	}
	if ((h = curl_easy_init()) == NULL)
		goto nomem;

	EGRESS_SETOPT(h, CURLOPT_URL, url);
	EGRESS_SETOPT(h, CURLOPT_PROTOCOLS_STR, "https");
	EGRESS_SETOPT(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	EGRESS_SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	EGRESS_SETOPT(h, CURLOPT_MAXREDIRS, 0L);
	EGRESS_SETOPT(h, CURLOPT_PROXY, "");
	EGRESS_SETOPT(h, CURLOPT_NOPROXY, "*");
	EGRESS_SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	EGRESS_SETOPT(h, CURLOPT_TIMEOUT_MS, total_ms);
	EGRESS_SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	EGRESS_SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
	EGRESS_SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
	EGRESS_SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (o->ca_file != NULL)
		EGRESS_SETOPT(h, CURLOPT_CAINFO, o->ca_file);
	if (res != NULL)
		EGRESS_SETOPT(h, CURLOPT_RESOLVE, res);
	EGRESS_SETOPT(h, CURLOPT_OPENSOCKETFUNCTION, egress_opensocket);
	EGRESS_SETOPT(h, CURLOPT_OPENSOCKETDATA, &c);
	EGRESS_SETOPT(h, CURLOPT_WRITEFUNCTION, egress_write);
	EGRESS_SETOPT(h, CURLOPT_WRITEDATA, &c);
	EGRESS_SETOPT(h, CURLOPT_HEADERFUNCTION, egress_header);
	EGRESS_SETOPT(h, CURLOPT_HEADERDATA, &c);
	/* With a Content-Length over the limit curl stops before the body. */
	EGRESS_SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)EGRESS_READ_MAX);
	EGRESS_SETOPT(h, CURLOPT_FRESH_CONNECT, 1L);
	EGRESS_SETOPT(h, CURLOPT_FORBID_REUSE, 1L);
	EGRESS_SETOPT(h, CURLOPT_USERAGENT, "Bulwark-Webhooks/1");
	EGRESS_SETOPT(h, CURLOPT_HTTPHEADER, hdr);
	EGRESS_SETOPT(h, CURLOPT_POST, 1L);
	EGRESS_SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	EGRESS_SETOPT(h, CURLOPT_POSTFIELDS, len > 0 ? body : "");
	if (o->cancelled != NULL) {
		EGRESS_SETOPT(h, CURLOPT_XFERINFOFUNCTION, egress_progress);
		EGRESS_SETOPT(h, CURLOPT_XFERINFODATA, (void *)o);
		EGRESS_SETOPT(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (rc != CURLE_OK) {
		/* An option this libcurl lacks: no request rather than a weaker one. */
		e = BW_ERR_INTERNAL;
		snprintf(r->error, sizeof(r->error), "the HTTP client could not be set up");
		goto fail;
	}

	rc = curl_easy_perform(h);
	r->latency_ms = egress_elapsed_ms(&t0);
	long status = 0;
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK)
		r->status = status;
	char *ip = NULL;
	if (c.opened > 0 && curl_easy_getinfo(h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip != NULL &&
	    ip[0] != '\0')
		snprintf(r->peer, sizeof(r->peer), "%s", ip);

	if (c.opened == 0 && c.refused > 0) {
		r->address_refused = 1;
		r->status = 0;
		e = BW_ERR_INVALID;
		/* Not which address: that would tell the client what our DNS says of internal names. */
		snprintf(r->error, sizeof(r->error),
			 "the host resolves to an address in a private or reserved range");
		goto fail;
	}
	if (rc == CURLE_OK) {
		e = BW_OK;
		goto done;
	}
	if (r->status > 0 && !c.over_headers &&
	    ((rc == CURLE_WRITE_ERROR && c.over_read) || rc == CURLE_FILESIZE_EXCEEDED)) {
		/* A response with a body too long to read: it arrived; we stopped listening. */
		r->body_truncated = 1;
		e = BW_OK;
		goto done;
	}
	e = BW_ERR_IO;
	if (c.over_headers)
		snprintf(r->error, sizeof(r->error), "delivery failed: the response headers are too long");
	else
		egress_curl_error(r, rc);
	goto fail;

nomem:
	snprintf(r->error, sizeof(r->error), "out of memory");
fail:
	if (r->error[0] == '\0')
		snprintf(r->error, sizeof(r->error), "delivery failed");
	r->latency_ms = egress_elapsed_ms(&t0);
done:
	curl_easy_cleanup(h);
	curl_slist_free_all(res);
	curl_slist_free_all(hdr);
	return e;
}
