/*
 * The webhook egress client: the refused ranges, the URL check, and real
 * transfers. Those go to listeners on loopback this process opens: a plain
 * TCP socket that only counts connections, and a small TLS server (GnuTLS,
 * which the build links; its certificate made here with libcrypto) that
 * answers one way per test: 200, a redirect, a huge body, or nothing.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>

#include "webhooks/egress.h"

/* --- ranges --------------------------------------------------------------- */

static int
refused(const char *s, int allow_loopback)
{
	struct netaddr a;
	if (netaddr_parse(s, &a) != BW_OK)
		fail_msg("test address '%s' does not parse", s);
	return egress_address_refused(&a, allow_loopback);
}

static void
expect_all(const char *const *list, size_t n, int allow_loopback, int want)
{
	for (size_t i = 0; i < n; i++)
		if (refused(list[i], allow_loopback) != want)
			fail_msg("%s: %s (allow_loopback %d)", list[i], want ? "allowed" : "refused",
				 allow_loopback);
}

static void
test_ranges_v4(void **state)
{
	(void)state;
	/* first and last of each range (and a few inside) */
	static const char *const no[] = {
		"0.0.0.0", "0.255.255.255", "10.0.0.0", "10.255.255.255", "100.64.0.0",
		"100.127.255.255", "127.0.0.0", "127.0.0.1", "127.255.255.255", "169.254.0.0",
		"169.254.169.254", "169.254.255.255", "172.16.0.0", "172.31.255.255", "192.0.0.0",
		"192.0.0.255", "192.0.2.0", "192.0.2.255", "192.88.99.0", "192.88.99.255",
		"192.168.0.0", "192.168.255.255", "198.18.0.0", "198.19.255.255", "198.51.100.0",
		"198.51.100.255", "203.0.113.0", "203.0.113.255", "224.0.0.0", "239.255.255.255",
		"240.0.0.0", "255.255.255.254", "255.255.255.255",
	};
	/* just outside each range, and ordinary public addresses */
	static const char *const yes[] = {
		"1.0.0.0", "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0",
		"126.255.255.255", "128.0.0.0", "169.253.255.255", "169.255.0.0", "172.15.255.255",
		"172.32.0.0", "191.255.255.255", "192.0.1.0", "192.0.3.0", "192.88.98.255",
		"192.88.100.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
		"198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255",
		"8.8.8.8", "1.1.1.1", "93.184.215.14",
	};
	expect_all(no, BW_ARRAY_LEN(no), 0, 1);
	expect_all(yes, BW_ARRAY_LEN(yes), 0, 0);
	assert_int_equal(egress_address_refused(NULL, 1), 1);
}

static void
test_ranges_v6(void **state)
{
	(void)state;
	static const char *const no[] = {
		"::", "::1", "::2",
		/* v4-mapped: the embedded v4 is judged, in either spelling */
		"::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
		"::ffff:a9fe:a9fe", "::ffff:0.0.0.0", "::ffff:100.64.0.1", "::ffff:ffff:ffff",
		/* v4-compatible (::/96): refused whatever it embeds */
		"::127.0.0.1", "::169.254.169.254", "::8.8.8.8", "::ffff", "::0.0.255.255",
		/* NAT64 */
		"64:ff9b::", "64:ff9b::8.8.8.8", "64:ff9b::a9fe:a9fe", "64:ff9b::ffff:ffff",
		"64:ff9b:1::", "64:ff9b:1::1", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
		/* discard-only */
		"100::", "100::ffff:ffff:ffff:ffff",
		/* IETF protocol assignments, Teredo */
		"2001::", "2001::1", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
		/* documentation */
		"2001:db8::", "2001:db8::1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
		/* 6to4 */
		"2002::", "2002:a9fe:a9fe::1", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		/* unique local, incl. the EC2 metadata address */
		"fc00::", "fd00:ec2::254", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		/* link-local, site-local, multicast */
		"fe80::", "fe80::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fec0::", "fec0::1",
		"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ff00::", "ff02::1",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	};
	static const char *const yes[] = {
		"::ffff:8.8.8.8", "::ffff:93.184.215.14", "::ffff:100.63.255.255", "::ffff:172.32.0.0",
		"2001:200::", "2001:200::1", "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::",
		"2003::1", "2001:4860:4860::8888", "2606:4700:4700::1111", "2a00:1450:4001::1",
		"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "100:0:0:1::", "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff",
	};
	expect_all(no, BW_ARRAY_LEN(no), 0, 1);
	expect_all(yes, BW_ARRAY_LEN(yes), 0, 0);
}

static void
test_ranges_allow_loopback(void **state)
{
	(void)state;
	static const char *const yes[] = {"127.0.0.1", "127.0.0.0", "127.255.255.255", "::1",
					  "::ffff:127.0.0.1", "::ffff:7f00:1", "8.8.8.8"};
	static const char *const no[] = {
		"10.0.0.1", "169.254.169.254", "0.0.0.0", "::", "::127.0.0.1", "::2",
		"fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254", "192.168.1.1", "172.16.0.1",
		"100.64.0.1", "224.0.0.1",
	};
	expect_all(yes, BW_ARRAY_LEN(yes), 1, 0);
	expect_all(no, BW_ARRAY_LEN(no), 1, 1);
	/* and without the flag loopback is refused */
	assert_int_equal(refused("127.0.0.1", 0), 1);
	assert_int_equal(refused("::1", 0), 1);
}

/* --- the URL check -------------------------------------------------------- */

static void
expect_url(const char *url, int allow_loopback, bw_err want)
{
	char why[256] = "unset";
	bw_err e = egress_url_check(url, allow_loopback, why, sizeof(why));
	if (e != want)
		fail_msg("'%s' (allow_loopback %d): %s%s%s", url, allow_loopback,
			 want == BW_OK ? "refused: " : "accepted", want == BW_OK ? why : "", "");
	if (want != BW_OK && why[0] == '\0')
		fail_msg("'%s': refused without a reason", url);
	if (want == BW_OK && why[0] != '\0')
		fail_msg("'%s': accepted with a reason '%s'", url, why);
}

static void
test_url_check(void **state)
{
	(void)state;
	static const char *const no[] = {
		/* the scheme */
		"http://hooks.example.com/x", "ftp://hooks.example.com/x", "hooks.example.com/x",
		"//hooks.example.com/x", "httpss://hooks.example.com/", "file:///etc/passwd",
		/* userinfo, fragments, ports, no host */
		"https://user:pw@hooks.example.com/x", "https://user@hooks.example.com/",
		"https://@hooks.example.com/", "https://hooks.example.com:443@10.0.0.1/",
		"https://hooks.example.com/x#frag", "https://hooks.example.com#", "https://hooks.example.com:0/",
		"https://hooks.example.com:65536/", "https://hooks.example.com:/", "https://hooks.example.com:-1/",
		"https://hooks.example.com:80a/", "https://hooks.example.com:443:443/",
		"https://hooks.example.com:100000/", "https://", "https:///x", "https://:443/", "https://?x",
		/* 127.0.0.1 in every spelling */
		"https://127.0.0.1/", "https://127.0.0.1:8443/", "https://2130706433/", "https://0x7f000001/",
		"https://0X7F000001/", "https://0177.0.0.1/", "https://0177.0000.0000.0001/", "https://127.1/",
		"https://127.0.1/", "https://0x7f.1/", "https://0x7f.0.0.1/", "https://127.0.0.1./",
		"https://017700000001/", "https://[::1]/", "https://[::1]:8443/", "https://[0:0:0:0:0:0:0:1]/",
		"https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://[::127.0.0.1]/",
		/* 169.254.169.254 in every spelling */
		"https://169.254.169.254/latest/meta-data/", "https://2852039166/", "https://0xa9fea9fe/",
		"https://0251.0376.0251.0376/", "https://169.254.43518/", "https://0xa9.0xfe.0xa9.0xfe/",
		"https://[::ffff:169.254.169.254]/", "https://[::ffff:a9fe:a9fe]/", "https://[fd00:ec2::254]/",
		"https://[64:ff9b::169.254.169.254]/",
		/* other refused literals */
		"https://0.0.0.0/", "https://0/", "https://10.0.0.1/", "https://192.168.1.1/", "https://[::]/",
		"https://[fe80::1]/", "https://[fe80::1%25eth0]/", "https://[2002:a9fe:a9fe::1]/",
		/* names */
		"https://localhost/", "https://LOCALHOST/", "https://localhost./", "https://localhost:443/",
		"https://foo.localhost/", "https://a.b.localhost/", "https://metadata.google.internal/",
		"https://printer.local/", "https://metadata/", "https://db/",
		/* malformed or ambiguous */
		"https://hooks.example.com\\@evil.example/", "https://hooks.example.com /",
		"https://hooks.exa\tmple.com/", "https://%31%32%37.0.0.1/", "https://1.2.3.4.5/",
		"https://4294967296/", "https://0x100000000/", "https://1.2.3.0x/", "https://[::1/",
		"https://[::1]x/", "https://[]/", "https://[not-v6]/", "https://hooks..example.com/",
		"https://.example.com/", "https://hooks.example.com../", "https://h\xc3\xa9.example.com/",
		"https://hooks.example.com/\x7f", "https://hooks.example.com/\n", "https://x.io/path?q=@#",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(no); i++)
		expect_url(no[i], 0, BW_ERR_INVALID);
	static const char *const yes[] = {
		"https://hooks.example.com/x", "https://93.184.215.14:8443/p", "https://hooks.example.com",
		"HTTPS://Hooks.Example.COM:443/a?b=c", "https://hooks.example.com?x=1",
		"https://[2606:4700:4700::1111]/x", "https://[2606:4700:4700::1111]:8443/x",
		"https://hooks.example.com./x", "https://my_hooks.example-1.com:65535/a/b%20c",
		"https://8.8.8.8/", "https://hooks.example.com/@user", "https://x.io/path?q=a@b",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(yes); i++)
		expect_url(yes[i], 0, BW_OK);

	/* allow_loopback lets loopback literals through, nothing else */
	expect_url("https://127.0.0.1:8443/", 1, BW_OK);
	expect_url("https://2130706433:8443/", 1, BW_OK);
	expect_url("https://[::1]/", 1, BW_OK);
	expect_url("https://169.254.169.254/", 1, BW_ERR_INVALID);
	expect_url("https://0xa9fea9fe/", 1, BW_ERR_INVALID);
	expect_url("https://10.0.0.1/", 1, BW_ERR_INVALID);
	expect_url("https://localhost/", 1, BW_ERR_INVALID);
	expect_url("http://127.0.0.1/", 1, BW_ERR_INVALID);

	/* the length limit: 2048 bytes pass, 2049 do not */
	char url[EGRESS_URL_MAX + 2];
	memcpy(url, "https://hooks.example.com/", 26);
	memset(url + 26, 'a', sizeof(url) - 26);
	url[EGRESS_URL_MAX] = '\0';
	expect_url(url, 0, BW_OK);
	url[EGRESS_URL_MAX] = 'a';
	url[EGRESS_URL_MAX + 1] = '\0';
	expect_url(url, 0, BW_ERR_INVALID);
	expect_url(NULL, 0, BW_ERR_INVALID);
	expect_url("", 0, BW_ERR_INVALID);
	/* a why buffer is optional */
	assert_int_equal(egress_url_check("https://127.1/", 0, NULL, 0), BW_ERR_INVALID);
}

/* --- listeners ------------------------------------------------------------ */

/* A listening TCP socket on 127.0.0.1 (non-blocking); its port in *port. */
static int
listen_local(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(fd, 16), 0);
	socklen_t sl = sizeof(sin);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* Connections waiting on a non-blocking listener (each accepted and closed). */
static int
pending_connections(int lfd)
{
	int n = 0;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			return n;
		}
		close(fd);
		n++;
	}
}

/* --- the TLS receiver ----------------------------------------------------- */

enum srv_mode { SRV_OK, SRV_REDIRECT, SRV_HUGE_LENGTH, SRV_HUGE_STREAM, SRV_SILENT };

#define SRV_HUGE (64u * 1024 * 1024) /* what a huge body would be, were it read */

struct srv {
	enum srv_mode mode;
	int lfd, port;
	pthread_t th;
	/* read after the join */
	int connections, requests;
	char req[16384]; /* the first request, headers and body */
	size_t reqlen;
	size_t sent; /* body bytes the huge modes got out */
	int send_failed;
};

static struct {
	char dir[128];
	char ca_file[200];
	gnutls_certificate_credentials_t cred;
} g;

/* A self-signed certificate for receiver.test (P-256), as PEM. */
static int
make_cert(char **cert, size_t *certlen, char **key, size_t *keylen)
{
	int ok = 0;
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
	X509_EXTENSION *ext;
	X509V3_CTX ctx;
	if (pk == NULL || x == NULL || bc == NULL || bk == NULL)
		goto out;
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400) || !X509_set_pubkey(x, pk))
		goto out;
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"receiver.test",
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto out;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	static const struct {
		int nid;
		const char *value;
	} exts[] = {{NID_subject_alt_name, "DNS:receiver.test"},
		    {NID_basic_constraints, "critical,CA:TRUE"},
		    {NID_subject_key_identifier, "hash"}};
	for (size_t i = 0; i < BW_ARRAY_LEN(exts); i++) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
		if (ext == NULL)
			goto out;
		int added = X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
		if (!added)
			goto out;
	}
	if (!X509_sign(x, pk, EVP_sha256()) || !PEM_write_bio_X509(bc, x) ||
	    !PEM_write_bio_PrivateKey(bk, pk, NULL, NULL, 0, NULL, NULL))
		goto out;
	char *p;
	long n = BIO_get_mem_data(bc, &p);
	*cert = malloc((size_t)n + 1);
	memcpy(*cert, p, (size_t)n);
	(*cert)[n] = '\0';
	*certlen = (size_t)n;
	n = BIO_get_mem_data(bk, &p);
	*key = malloc((size_t)n + 1);
	memcpy(*key, p, (size_t)n);
	(*key)[n] = '\0';
	*keylen = (size_t)n;
	ok = 1;
out:
	BIO_free(bk);
	BIO_free(bc);
	X509_free(x);
	EVP_PKEY_free(pk);
	return ok;
}

static int
srv_send(gnutls_session_t s, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = gnutls_record_send(s, c, n);
		if (w == GNUTLS_E_INTERRUPTED || w == GNUTLS_E_AGAIN)
			return -1; /* a send timeout: the client stopped reading */
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One request (headers and Content-Length body) into buf: its length, 0 at EOF or on error. */
static size_t
srv_read_request(gnutls_session_t s, char *buf, size_t cap)
{
	size_t len = 0, need = 0;
	for (;;) {
		if (need == 0) {
			buf[len] = '\0';
			char *end = strstr(buf, "\r\n\r\n");
			if (end != NULL) {
				size_t head = (size_t)(end - buf) + 4, cl = 0;
				end[2] = '\0'; /* search the headers only */
				char *h = strcasestr(buf, "\r\nContent-Length:");
				if (h != NULL)
					cl = strtoul(h + 17, NULL, 10);
				end[2] = '\r';
				need = head + cl;
				if (need >= cap)
					return 0;
			}
		}
		if (need != 0 && len >= need)
			return len;
		if (len + 1 >= cap)
			return 0;
		ssize_t n = gnutls_record_recv(s, buf + len, cap - 1 - len);
		if (n <= 0)
			return 0; /* EOF, the client gone, or a receive timeout */
		len += (size_t)n;
	}
}

static void
srv_respond(struct srv *sv, gnutls_session_t s)
{
	char head[512];
	switch (sv->mode) {
	case SRV_OK:
		snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\r\nthanks");
		(void)srv_send(s, head, strlen(head));
		break;
	case SRV_REDIRECT:
		snprintf(head, sizeof(head),
			 "HTTP/1.1 302 Found\r\nLocation: https://receiver.test:%d/elsewhere\r\n"
			 "Content-Length: 5\r\n\r\nmoved",
			 sv->port);
		(void)srv_send(s, head, strlen(head));
		break;
	case SRV_HUGE_LENGTH:
	case SRV_HUGE_STREAM: {
		if (sv->mode == SRV_HUGE_LENGTH)
			snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", SRV_HUGE);
		else
			snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
		if (srv_send(s, head, strlen(head)) != 0) {
			sv->send_failed = 1;
			break;
		}
		static char chunk[16384];
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (char)('0' + i % 10);
		while (sv->sent < SRV_HUGE) {
			if (srv_send(s, chunk, sizeof(chunk)) != 0) {
				sv->send_failed = 1;
				break;
			}
			sv->sent += sizeof(chunk);
		}
		break;
	}
	case SRV_SILENT:
		break; /* read, never answer */
	default:
		abort();
	}
}

static void *
srv_main(void *arg)
{
	struct srv *sv = arg;
	struct pollfd p = {.fd = sv->lfd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return NULL;
	int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return NULL;
	sv->connections++;
	/* Blocking, with timeouts: a stuck client ends the thread, not the test run. */
	int fl = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	struct timeval tv = {.tv_sec = 5};
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	gnutls_session_t s;
	if (gnutls_init(&s, GNUTLS_SERVER) != GNUTLS_E_SUCCESS) {
		close(fd);
		return NULL;
	}
	if (gnutls_set_default_priority(s) != GNUTLS_E_SUCCESS ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, g.cred) != GNUTLS_E_SUCCESS)
		goto out;
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, 5000);
	int rc;
	do
		rc = gnutls_handshake(s);
	while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
	if (rc < 0)
		goto out;
	static char buf[16384];
	for (;;) {
		/* a further request on this connection would be a followed redirect */
		size_t n = srv_read_request(s, buf, sizeof(buf));
		if (n == 0)
			break;
		if (sv->requests++ == 0) {
			memcpy(sv->req, buf, n);
			sv->req[n] = '\0';
			sv->reqlen = n;
		}
		srv_respond(sv, s);
		if (sv->mode == SRV_SILENT) {
			char c;
			(void)gnutls_record_recv(s, &c, 1); /* until the client gives up */
			break;
		}
		if (sv->mode != SRV_OK && sv->mode != SRV_REDIRECT)
			break;
	}
out:
	gnutls_deinit(s);
	close(fd);
	return NULL;
}

static void
srv_start(struct srv *sv, enum srv_mode mode)
{
	memset(sv, 0, sizeof(*sv));
	sv->mode = mode;
	sv->lfd = listen_local(&sv->port);
	assert_int_equal(pthread_create(&sv->th, NULL, srv_main, sv), 0);
}

/* Join the thread; then whatever else waits on the listener (there should be nothing). */
static int
srv_stop(struct srv *sv)
{
	assert_int_equal(pthread_join(sv->th, NULL), 0);
	int more = pending_connections(sv->lfd);
	close(sv->lfd);
	return more;
}

static void
resolve_entry(char *out, size_t n, const char *host, int port, const char *addr)
{
	snprintf(out, n, "%s:%d:%s", host, port, addr);
}

/* --- transfers ------------------------------------------------------------ */

static const char hook_body[] = "{\"type\":\"invoice.paid\",\"id\":\"evt_1\"}";

static void
test_post_refused_at_connect(void **state)
{
	(void)state;
	int port, lfd = listen_local(&port);
	char url[128], res[128];
	struct egress_result r;
	struct egress_opts o = {.connect_timeout_ms = 2000, .total_timeout_ms = 3000};
	const char *resolve[] = {res, NULL};
	o.resolve = resolve;
	snprintf(url, sizeof(url), "https://example.test:%d/hook", port);

	/* a public-looking name that resolves to loopback: refused before any connect */
	resolve_entry(res, sizeof(res), "example.test", port, "127.0.0.1");
	assert_int_equal(egress_post(url, NULL, hook_body, strlen(hook_body), &o, &r), BW_ERR_INVALID);
	assert_int_equal(r.address_refused, 1);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.peer, "");
	assert_true(r.error[0] != '\0');
	assert_null(strstr(r.error, "127.0.0.1")); /* the client is not told what it resolved to */
	assert_int_equal(pending_connections(lfd), 0);

	/* the same for ::1, for metadata addresses, and even with allow_loopback for those */
	static const char *const addrs[] = {"[::1]", "169.254.169.254", "10.0.0.1", "[fd00:ec2::254]",
					    "10.0.0.1,169.254.169.254", "[::ffff:127.0.0.1]"};
	for (int allow = 0; allow <= 1; allow++) {
		for (size_t i = 0; i < BW_ARRAY_LEN(addrs); i++) {
			if (allow && (i == 0 || i == BW_ARRAY_LEN(addrs) - 1))
				continue; /* loopback: allowed then */
			o.allow_loopback = allow;
			resolve_entry(res, sizeof(res), "example.test", port, addrs[i]);
			bw_err e = egress_post(url, NULL, hook_body, strlen(hook_body), &o, &r);
			if (e != BW_ERR_INVALID || r.address_refused != 1)
				fail_msg("%s (allow_loopback %d): %d, address_refused %d, '%s'", addrs[i],
					 allow, e, r.address_refused, r.error);
		}
	}
	assert_int_equal(pending_connections(lfd), 0);
	close(lfd);
}

static void
test_post_loopback_allowed(void **state)
{
	(void)state;
	int port, lfd = listen_local(&port);
	char url[128], res[128];
	struct egress_result r;
	const char *resolve[] = {res, NULL};
	struct egress_opts o = {.connect_timeout_ms = 1000, .total_timeout_ms = 2000, .allow_loopback = 1,
				.resolve = resolve};
	snprintf(url, sizeof(url), "https://example.test:%d/hook", port);
	resolve_entry(res, sizeof(res), "example.test", port, "127.0.0.1");
	/* Nothing speaks TLS there: the handshake times out, but the connection was made. */
	assert_int_equal(egress_post(url, NULL, hook_body, strlen(hook_body), &o, &r), BW_ERR_IO);
	assert_int_equal(r.address_refused, 0);
	assert_string_equal(r.peer, "127.0.0.1");
	assert_true(r.error[0] != '\0');
	assert_true(r.latency_ms >= 900 && r.latency_ms < 5000);
	assert_int_equal(pending_connections(lfd), 1);

	/* A refused address first: curl goes on to the next, which is allowed. */
	resolve_entry(res, sizeof(res), "example.test", port, "10.0.0.1,127.0.0.1");
	assert_int_equal(egress_post(url, NULL, hook_body, strlen(hook_body), &o, &r), BW_ERR_IO);
	assert_int_equal(r.address_refused, 0);
	assert_int_equal(pending_connections(lfd), 1);
	close(lfd);
}

static void
test_post_url_checked(void **state)
{
	(void)state;
	int port, lfd = listen_local(&port);
	char url[128];
	struct egress_result r;
	struct egress_opts o = {.connect_timeout_ms = 1000, .total_timeout_ms = 2000};
	/* each URL is the first part, the port, the second part */
	static const char *const parts[][2] = {
		{"http://127.0.0.1:", "/"},           {"https://127.0.0.1:", "/"},
		{"https://2130706433:", "/"},         {"https://[::ffff:127.0.0.1]:", "/"},
		{"https://localhost:", "/"},          {"https://user@receiver.test:", "/"},
		{"https://receiver.test:", "/#x"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(parts); i++) {
		snprintf(url, sizeof(url), "%s%d%s", parts[i][0], port, parts[i][1]);
		assert_int_equal(egress_post(url, NULL, "{}", 2, &o, &r), BW_ERR_INVALID);
		assert_int_equal(r.address_refused, 0); /* refused before any address was looked at */
		assert_true(r.error[0] != '\0');
	}
	assert_int_equal(pending_connections(lfd), 0);
	/* options out of range and bad headers: refused before sending */
	snprintf(url, sizeof(url), "https://receiver.test:%d/", port);
	o.body_cap = EGRESS_BODY_CAP_MAX + 1;
	assert_int_equal(egress_post(url, NULL, "{}", 2, &o, &r), BW_ERR_INVALID);
	o.body_cap = 0;
	o.total_timeout_ms = -1;
	assert_int_equal(egress_post(url, NULL, "{}", 2, &o, &r), BW_ERR_INVALID);
	o.total_timeout_ms = 2000;
	static const char *const bad[][2] = {
		{"X-Sig: a\r\nHost: evil.example", NULL}, {"X-Sig: a\nX-Other: b", NULL},
		{"Host: evil.example", NULL},             {"Content-Length: 1", NULL},
		{"Transfer-Encoding: chunked", NULL},     {"Expect: 100-continue", NULL},
		{"NoColon", NULL},                        {": value", NULL},
		{"Bad Name: x", NULL},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		const char *h[] = {bad[i][0], NULL};
		if (egress_post(url, h, "{}", 2, &o, &r) != BW_ERR_INVALID)
			fail_msg("header '%s' accepted", bad[i][0]);
	}
	assert_int_equal(egress_post(url, NULL, NULL, 5, &o, &r), BW_ERR_INVALID);
	assert_int_equal(pending_connections(lfd), 0);
	close(lfd);
	assert_int_equal(egress_post(url, NULL, "{}", 2, &o, NULL), BW_ERR_INVALID);
}

/* Options for the TLS receiver at sv: receiver.test resolved to it, its certificate trusted. */
static void
tls_opts(struct egress_opts *o, const char **resolve, char *res, size_t reslen, const char *host,
	 const struct srv *sv, char *url, size_t urllen)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_ms = 3000;
	o->total_timeout_ms = 5000;
	o->allow_loopback = 1;
	o->ca_file = g.ca_file;
	resolve_entry(res, reslen, host, sv->port, "127.0.0.1");
	resolve[0] = res;
	resolve[1] = NULL;
	o->resolve = resolve;
	snprintf(url, urllen, "https://%s:%d/hook", host, sv->port);
}

static void
test_post_delivers(void **state)
{
	(void)state;
	struct srv sv;
	struct egress_opts o;
	struct egress_result r;
	const char *resolve[2];
	char res[128], url[128];
	int ppt, plfd = listen_local(&ppt);
	char proxy[64];
	/* A proxy in the environment must not be used: it would be judged instead of the receiver. */
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", ppt);
	setenv("https_proxy", proxy, 1);
	setenv("HTTPS_PROXY", proxy, 1);
	setenv("ALL_PROXY", proxy, 1);

	srv_start(&sv, SRV_OK);
	tls_opts(&o, resolve, res, sizeof(res), "receiver.test", &sv, url, sizeof(url));
	const char *headers[] = {"X-Bulwark-Signature: v1,abc", "webhook-id: msg_1", NULL};
	bw_err e = egress_post(url, headers, hook_body, strlen(hook_body), &o, &r);
	unsetenv("https_proxy"); /* before any assertion: the other tests run without */
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	assert_int_equal(e, BW_OK);
	assert_int_equal(srv_stop(&sv), 0);
	assert_int_equal(pending_connections(plfd), 0);
	close(plfd);

	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "thanks");
	assert_int_equal(r.body_len, 6);
	assert_int_equal(r.body_truncated, 0);
	assert_string_equal(r.peer, "127.0.0.1");
	assert_int_equal(r.address_refused, 0);
	assert_string_equal(r.error, "");
	assert_true(r.latency_ms >= 0 && r.latency_ms < 5000);

	assert_int_equal(sv.requests, 1);
	assert_non_null(strstr(sv.req, "POST /hook HTTP/1.1\r\n"));
	assert_non_null(strcasestr(sv.req, "\r\nUser-Agent: Bulwark-Webhooks/1\r\n"));
	assert_non_null(strcasestr(sv.req, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strcasestr(sv.req, "\r\nX-Bulwark-Signature: v1,abc\r\n"));
	assert_non_null(strcasestr(sv.req, "\r\nwebhook-id: msg_1\r\n"));
	assert_null(strcasestr(sv.req, "\r\nExpect:"));
	assert_null(strcasestr(sv.req, "Proxy"));
	size_t bl = strlen(hook_body);
	assert_true(sv.reqlen > bl);
	assert_memory_equal(sv.req + sv.reqlen - bl, hook_body, bl);
	assert_non_null(strstr(sv.req, "\r\n\r\n{\"type\""));

	/* A Content-Type of the caller's replaces ours; a small body_cap cuts the body. */
	srv_start(&sv, SRV_OK);
	tls_opts(&o, resolve, res, sizeof(res), "receiver.test", &sv, url, sizeof(url));
	o.body_cap = 3;
	const char *h2[] = {"content-type: application/x-www-form-urlencoded", NULL};
	assert_int_equal(egress_post(url, h2, "a=1", 3, &o, &r), BW_OK);
	assert_int_equal(srv_stop(&sv), 0);
	assert_string_equal(r.body, "tha");
	assert_int_equal(r.body_len, 3);
	assert_int_equal(r.body_truncated, 1);
	assert_null(strcasestr(sv.req, "application/json"));
	assert_non_null(strcasestr(sv.req, "\r\ncontent-type: application/x-www-form-urlencoded\r\n"));

	/* An empty body is a POST with Content-Length: 0. */
	srv_start(&sv, SRV_OK);
	tls_opts(&o, resolve, res, sizeof(res), "receiver.test", &sv, url, sizeof(url));
	assert_int_equal(egress_post(url, NULL, NULL, 0, &o, &r), BW_OK);
	assert_int_equal(srv_stop(&sv), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strcasestr(sv.req, "\r\nContent-Length: 0\r\n"));
}

static void
test_post_tls_verified(void **state)
{
	(void)state;
	struct srv sv;
	struct egress_opts o;
	struct egress_result r;
	const char *resolve[2];
	char res[128], url[128];

	/* Not signed by a CA the system trusts: refused. */
	srv_start(&sv, SRV_OK);
	tls_opts(&o, resolve, res, sizeof(res), "receiver.test", &sv, url, sizeof(url));
	o.ca_file = NULL;
	assert_int_equal(egress_post(url, NULL, "{}", 2, &o, &r), BW_ERR_IO);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.address_refused, 0);
	assert_true(r.error[0] != '\0');
	assert_int_equal(srv_stop(&sv), 0);
	assert_int_equal(sv.requests, 0);

	/* A trusted certificate, but for another name: refused. */
	srv_start(&sv, SRV_OK);
	tls_opts(&o, resolve, res, sizeof(res), "other.test", &sv, url, sizeof(url));
	assert_int_equal(egress_post(url, NULL, "{}", 2, &o, &r), BW_ERR_IO);
	assert_int_equal(r.status, 0);
	assert_int_equal(srv_stop(&sv), 0);
	assert_int_equal(sv.requests, 0);
}

static void
test_post_redirect_not_followed(void **state)
{
	(void)state;
	struct srv sv;
	struct egress_opts o;
	struct egress_result r;
	const char *resolve[2];
	char res[128], url[128];
	srv_start(&sv, SRV_REDIRECT);
	tls_opts(&o, resolve, res, sizeof(res), "receiver.test", &sv, url, sizeof(url));
	assert_int_equal(egress_post(url, NULL, "{}", 2, &o, &r), BW_OK);
	assert_int_equal(r.status, 302);
	assert_string_equal(r.body, "moved");
	assert_int_equal(srv_stop(&sv), 0); /* no second connection */
	assert_int_equal(sv.requests, 1);   /* and no second request on the first */
	assert_non_null(strstr(sv.req, "POST /hook "));
}

static void
huge(enum srv_mode mode)
{
	struct srv sv;
	struct egress_opts o;
	struct egress_result r;
	const char *resolve[2];
	char res[128], url[128];
	srv_start(&sv, mode);
	tls_opts(&o, resolve, res, sizeof(res), "receiver.test", &sv, url, sizeof(url));
	o.body_cap = 100;
	assert_int_equal(egress_post(url, NULL, "{}", 2, &o, &r), BW_OK);
	assert_int_equal(r.status, 200);
	if (mode == SRV_HUGE_LENGTH) {
		/* a Content-Length over EGRESS_READ_MAX: not a byte of the body is read */
		assert_int_equal(r.body_len, 0);
		assert_string_equal(r.body, "");
	} else {
		assert_int_equal(r.body_len, 100);
		assert_int_equal(strlen(r.body), 100);
		assert_memory_equal(r.body, "0123456789", 10);
	}
	assert_int_equal(r.body_truncated, 1);
	assert_string_equal(r.error, "");
	assert_true(r.latency_ms < 4000);
	assert_int_equal(srv_stop(&sv), 0);
	/* the client hung up long before the receiver was done */
	assert_int_equal(sv.send_failed, 1);
	assert_true(sv.sent < SRV_HUGE);
}

static void
test_post_huge_body_with_length(void **state)
{
	(void)state;
	huge(SRV_HUGE_LENGTH); /* CURLOPT_MAXFILESIZE stops it at the headers */
}

static void
test_post_huge_body_streamed(void **state)
{
	(void)state;
	huge(SRV_HUGE_STREAM); /* no length: the write callback stops it */
}

static void
test_post_timeout(void **state)
{
	(void)state;
	struct srv sv;
	struct egress_opts o;
	struct egress_result r;
	const char *resolve[2];
	char res[128], url[128];
	srv_start(&sv, SRV_SILENT);
	tls_opts(&o, resolve, res, sizeof(res), "receiver.test", &sv, url, sizeof(url));
	o.total_timeout_ms = 800;
	assert_int_equal(egress_post(url, NULL, "{}", 2, &o, &r), BW_ERR_IO);
	assert_int_equal(r.status, 0);
	assert_true(r.latency_ms >= 700 && r.latency_ms < 3000);
	assert_non_null(strstr(r.error, "in time"));
	assert_int_equal(srv_stop(&sv), 0);
	assert_int_equal(sv.requests, 1);
}

static int
setup(void **state)
{
	(void)state;
	char *cert = NULL, *key = NULL;
	size_t cl, kl;
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -1;
	if (unit_mkdtemp(g.dir, sizeof(g.dir), "egress") != 0 || !make_cert(&cert, &cl, &key, &kl))
		return -1;
	snprintf(g.ca_file, sizeof(g.ca_file), "%s/ca.pem", g.dir);
	FILE *f = fopen(g.ca_file, "w");
	int ok = f != NULL && fwrite(cert, 1, cl, f) == cl;
	if (f != NULL && fclose(f) != 0)
		ok = 0;
	gnutls_datum_t dc = {(unsigned char *)cert, (unsigned)cl}, dk = {(unsigned char *)key, (unsigned)kl};
	if (ok && (gnutls_certificate_allocate_credentials(&g.cred) != GNUTLS_E_SUCCESS ||
		   gnutls_certificate_set_x509_key_mem(g.cred, &dc, &dk, GNUTLS_X509_FMT_PEM) < 0))
		ok = 0;
	free(cert);
	free(key);
	return ok ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	if (g.cred != NULL)
		gnutls_certificate_free_credentials(g.cred);
	curl_global_cleanup();
	return unit_rmtree(g.dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges_v4),
		cmocka_unit_test(test_ranges_v6),
		cmocka_unit_test(test_ranges_allow_loopback),
		cmocka_unit_test(test_url_check),
		cmocka_unit_test(test_post_refused_at_connect),
		cmocka_unit_test(test_post_loopback_allowed),
		cmocka_unit_test(test_post_url_checked),
		cmocka_unit_test(test_post_delivers),
		cmocka_unit_test(test_post_tls_verified),
		cmocka_unit_test(test_post_redirect_not_followed),
		cmocka_unit_test(test_post_huge_body_with_length),
		cmocka_unit_test(test_post_huge_body_streamed),
		cmocka_unit_test(test_post_timeout),
	};
	return cmocka_run_group_tests_name("egress", tests, setup, teardown);
}
