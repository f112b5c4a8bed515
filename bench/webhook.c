/*
 * bench/webhook: what webhooks (#16) cost.
 *
 * 1. The latency the outbox adds to a change. The same change (an UPDATE of
 *    one customer row and its audit row, in one transaction) is timed as it
 *    was before #16 (audit_record: the audit row only) and as it is now
 *    (audit_op_object: the audit row and the change's event row, sealed),
 *    interleaved and alternating which goes first, so drift and caches
 *    weigh on both alike: p50 and p99 of each and the difference.
 *
 * 2. Deliveries per second. A TLS receiver on loopback in this process
 *    (GnuTLS, which the build links; its self-signed P-256 certificate made
 *    here with libcrypto) answers every POST with 200. One subscription,
 *    1,000 events, the dispatch tick, then claim, run and finish of every
 *    delivery job, one after the other as one runner worker does (the jobs
 *    of one subscription share a lane and run one at a time, so more
 *    workers would not go faster). egress opens a new TLS connection per
 *    delivery: the baseline is the same receiver hit by as many plain
 *    libcurl POSTs, a new handle each, from this process, in the same run.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "../src/audit/audit.h"
#include "../src/db/migrate.h"
#include "../src/events/events.h"
#include "../src/jobs/jobs.h"
#include "../src/jobs/kinds.h"
#include "../src/op/op.h"
#include "../src/tenancy/tenancy.h"
#include "../src/webhooks/webhooks.h"
#include "bench.h"

#define WB_EVENTS 1000
#define WB_POOL (4u << 20)
#define WB_REQ_MAX (256 * 1024) /* most of one request the receiver reads */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t
pct(uint64_t *v, int n, double p)
{
	return v[(int)(p * (n - 1))];
}

/* --- the receiver ---------------------------------------------------------------- */

struct receiver {
	int lfd;
	int port;
	gnutls_certificate_credentials_t cred;
	pthread_t thread;
	atomic_int stop;
	atomic_long requests; /* POSTs answered */
	atomic_long signed_requests; /* of which carried a webhook-signature header */
	atomic_long connections;
	atomic_long failures; /* handshakes or requests that went wrong */
};

/* A self-signed P-256 certificate for IP 127.0.0.1: PEM cert and key, malloc'd. */
static int
receiver_cert(char **cert, char **key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
	int ok = 0;
	*cert = *key = NULL;
	if (pk == NULL || x == NULL || bc == NULL || bk == NULL)
		goto out;
	if (!X509_set_version(x, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 86400) || !X509_set_pubkey(x, pk))
		goto out;
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)"bench receiver", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto out;
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	static const struct {
		int nid;
		const char *value;
	} exts[] = {{NID_subject_alt_name, "IP:127.0.0.1"},
		    {NID_basic_constraints, "critical,CA:TRUE"},
		    {NID_subject_key_identifier, "hash"}};
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
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
	if (n <= 0 || (*cert = strndup(p, (size_t)n)) == NULL)
		goto out;
	n = BIO_get_mem_data(bk, &p);
	if (n <= 0 || (*key = strndup(p, (size_t)n)) == NULL)
		goto out;
	ok = 1;
out:
	if (!ok) {
		free(*cert);
		if (*key != NULL)
			OPENSSL_cleanse(*key, strlen(*key));
		free(*key);
		*cert = *key = NULL;
	}
	BIO_free(bc);
	BIO_free(bk);
	X509_free(x);
	EVP_PKEY_free(pk);
	return ok ? 0 : -1;
}

static int
receiver_send(gnutls_session_t s, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = gnutls_record_send(s, p, n);
		if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * One request off s into buf (cap bytes): the headers and a body of its
 * Content-Length. 1 for a request, 0 when the client closed, -1 on error.
 */
static int
receiver_request(gnutls_session_t s, char *buf, size_t cap, int *has_sig)
{
	size_t len = 0, need = 0;
	*has_sig = 0;
	for (;;) {
		if (need == 0) {
			buf[len] = '\0';
			char *end = strstr(buf, "\r\n\r\n");
			if (end != NULL) {
				size_t head = (size_t)(end - buf) + 4, body = 0;
				for (char *l = strstr(buf, "\r\n"); l != NULL && l < end;
				     l = strstr(l + 2, "\r\n")) {
					if (strncasecmp(l + 2, "content-length:", 15) == 0)
						body = strtoul(l + 17, NULL, 10);
					else if (strncasecmp(l + 2, "webhook-signature:", 18) == 0)
						*has_sig = 1;
				}
				if (body > cap - 1 - head)
					return -1;
				need = head + body;
			}
		}
		if (need != 0 && len >= need)
			return 1;
		if (len >= cap - 1)
			return -1;
		ssize_t r = gnutls_record_recv(s, buf + len, cap - 1 - len);
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r == 0 || (r == GNUTLS_E_PREMATURE_TERMINATION && len == 0))
			return 0;
		if (r < 0)
			return -1;
		len += (size_t)r;
	}
}

/* One connection: requests until the client closes (keep-alive is fine, egress closes). */
static void
receiver_conn(struct receiver *rv, int fd, char *buf)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	gnutls_session_t s;
	struct timeval tv = {5, 0};
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	atomic_fetch_add(&rv->connections, 1);
	if (gnutls_init(&s, GNUTLS_SERVER) != GNUTLS_E_SUCCESS) {
		atomic_fetch_add(&rv->failures, 1);
		return;
	}
	int rc;
	if (gnutls_set_default_priority(s) != GNUTLS_E_SUCCESS ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, rv->cred) != GNUTLS_E_SUCCESS)
		goto fail;
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, 5000);
	do
		rc = gnutls_handshake(s);
	while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
	if (rc < 0)
		goto fail;
	for (;;) {
		int has_sig;
		int got = receiver_request(s, buf, WB_REQ_MAX, &has_sig);
		if (got == 0)
			break;
		if (got < 0 || receiver_send(s, ok, sizeof(ok) - 1) != 0)
			goto fail;
		atomic_fetch_add(&rv->requests, 1);
		if (has_sig)
			atomic_fetch_add(&rv->signed_requests, 1);
	}
	(void)gnutls_bye(s, GNUTLS_SHUT_WR);
	gnutls_deinit(s);
	return;
fail:
	atomic_fetch_add(&rv->failures, 1);
	gnutls_deinit(s);
}

/* One connection at a time: both clients here send one request after the other. */
static void *
receiver_main(void *arg)
{
	struct receiver *rv = arg;
	char *buf = malloc(WB_REQ_MAX);
	if (buf == NULL)
		return NULL;
	while (!atomic_load(&rv->stop)) {
		struct pollfd p = {rv->lfd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		int fd = accept(rv->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		receiver_conn(rv, fd, buf);
		close(fd);
	}
	free(buf);
	return NULL;
}

/* Listen on 127.0.0.1 (a port of the kernel's choosing) with cert and key. */
static int
receiver_start(struct receiver *rv, const char *cert, const char *key)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	memset(rv, 0, sizeof(*rv));
	rv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rv->lfd < 0 || bind(rv->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(rv->lfd, 128) != 0 || getsockname(rv->lfd, (struct sockaddr *)&a, &al) != 0)
		return -1;
	rv->port = ntohs(a.sin_port);
	gnutls_datum_t dc = {(unsigned char *)cert, (unsigned)strlen(cert)};
	gnutls_datum_t dk = {(unsigned char *)key, (unsigned)strlen(key)};
	if (gnutls_certificate_allocate_credentials(&rv->cred) != GNUTLS_E_SUCCESS)
		return -1;
	if (gnutls_certificate_set_x509_key_mem(rv->cred, &dc, &dk, GNUTLS_X509_FMT_PEM) < 0) {
		gnutls_certificate_free_credentials(rv->cred);
		return -1;
	}
	if (pthread_create(&rv->thread, NULL, receiver_main, rv) != 0) {
		gnutls_certificate_free_credentials(rv->cred);
		return -1;
	}
	return 0;
}

static void
receiver_stop(struct receiver *rv)
{
	atomic_store(&rv->stop, 1);
	pthread_join(rv->thread, NULL);
	close(rv->lfd);
	gnutls_certificate_free_credentials(rv->cred);
}

/* --- part 1: the change with and without its event ---------------------------------- */

struct bench {
	const char *driver;
	struct config cfg;
	struct tenancy *t;
	struct tenant *tn;
	db *d;
};

static struct actor
bench_user(void)
{
	struct actor a;
	memset(&a, 0, sizeof(a));
	a.kind = ACTOR_SESSION;
	a.user.id = 1;
	snprintf(a.user.email, sizeof(a.user.email), "a@b.co");
	a.user.is_admin = 1;
	a.session_id = 1;
	a.mfa_verified = 1;
	return a;
}

/*
 * One change of customer 1, in a transaction: the UPDATE and its audit row,
 * with (event != 0: audit_op_object, the path of #16) or without (the same
 * audit row by audit_record, as before #16) its event row. Both make the
 * operation context a request would have.
 */
static int
change(struct bench *b, int i, int event)
{
	char name[64];
	db_stmt *s;
	int row, rc = -1;
	pool *p = pool_new(WB_POOL);
	struct actor a = bench_user();
	struct op op;
	json_t *before = NULL, *after = NULL, *object = NULL;
	if (p == NULL)
		return -1;
	op_init(&op, p, &b->cfg, b->t, b->tn, b->d, &a);
	op.client_ip = "127.0.0.1";
	op.request_id = "bench0000000000000";
	snprintf(name, sizeof(name), "Customer %d", i);
	before = json_pack("{s:s}", "name", "before");
	after = json_pack("{s:s}", "name", name);
	object = json_pack("{s:I, s:s, s:s, s:I}", "id", (json_int_t)1, "name", name, "status",
			   "active", "updated_at", (json_int_t)i);
	if (before == NULL || after == NULL || object == NULL || db_begin(b->d) != BW_OK)
		goto out;
	bw_err e = db_prepare_cached(b->d, "UPDATE customers SET name = ?, updated_at = ? WHERE id = 1",
				     &s);
	if (e == BW_OK) {
		if ((e = db_bind_text(s, 1, name)) == BW_OK && (e = db_bind_int(s, 2, i)) == BW_OK)
			e = db_step(s, &row);
		db_done(s);
	}
	if (e == BW_OK && event)
		e = audit_op_object(&op, "customers", 1, "update", before, after, NULL, object);
	else if (e == BW_OK) {
		/* What audit_op_object() records for this actor, without events_from_change(). */
		struct audit_entry en = {AUDIT_USER, 1, 0, "a@b.co", op.client_ip, op.request_id,
					 "customers", 1, "update", before, after, NULL};
		e = audit_record(b->d, b->t, b->tn, &en);
	}
	if (e != BW_OK) {
		fprintf(stderr, "webhook: change %d (%s) failed: %s (%s)\n", i,
			event ? "with event" : "audit only", bw_strerror(e), db_errmsg(b->d));
		(void)db_rollback(b->d);
		goto out;
	}
	if (db_commit(b->d) == BW_OK)
		rc = 0;
out:
	json_decref(before);
	json_decref(after);
	json_decref(object);
	pool_free(p);
	return rc;
}

static int
part_latency(struct bench *b)
{
	const int iters = 2000;
	uint64_t *plain = calloc(iters, sizeof(*plain)), *evented = calloc(iters, sizeof(*evented));
	int64_t ev0 = 0, ev1 = 0, au0 = 0, au1 = 0;
	int rc = -1;
	if (plain == NULL || evented == NULL)
		goto out;
	if (DB_QUERY_INT(b->d, &ev0, "SELECT COUNT(*) FROM events") != BW_OK ||
	    DB_QUERY_INT(b->d, &au0, "SELECT COUNT(*) FROM audit_log") != BW_OK) {
		fprintf(stderr, "webhook: cannot count events: %s\n", db_errmsg(b->d));
		goto out;
	}
	/* A few of each first: the statement caches and the tables' first pages. */
	for (int i = 0; i < 50; i++)
		if (change(b, i, 0) != 0 || change(b, i, 1) != 0)
			goto out;
	/* Interleaved, and which goes first alternates, so both see the same drift. */
	for (int i = 0; i < iters; i++) {
		int first = i & 1;
		uint64_t t0 = util_now_us();
		if (change(b, i, first) != 0)
			goto out;
		uint64_t t1 = util_now_us();
		if (change(b, i, !first) != 0)
			goto out;
		uint64_t t2 = util_now_us();
		(first ? evented : plain)[i] = t1 - t0;
		(first ? plain : evented)[i] = t2 - t1;
	}
	if (DB_QUERY_INT(b->d, &ev1, "SELECT COUNT(*) FROM events") != BW_OK ||
	    DB_QUERY_INT(b->d, &au1, "SELECT COUNT(*) FROM audit_log") != BW_OK) {
		fprintf(stderr, "webhook: cannot count events: %s\n", db_errmsg(b->d));
		goto out;
	}
	qsort(plain, iters, sizeof(*plain), cmp_u64);
	qsort(evented, iters, sizeof(*evented), cmp_u64);
	uint64_t sum_p = 0, sum_e = 0;
	int slow_p = 0, slow_e = 0;
	for (int i = 0; i < iters; i++) {
		sum_p += plain[i];
		sum_e += evented[i];
		slow_p += plain[i] > 1000;
		slow_e += evented[i] > 1000;
	}
	const char *dr = b->driver;
	printf("%s: one change (UPDATE customer + its audit row, one transaction), %d of each,"
	       " interleaved\n",
	       dr, iters);
	printf("%s:   audit row only (before #16)   p50 %6llu us  p99 %6llu us  mean %6llu us"
	       "  over 1 ms: %d\n",
	       dr, (unsigned long long)pct(plain, iters, 0.5),
	       (unsigned long long)pct(plain, iters, 0.99), (unsigned long long)(sum_p / iters),
	       slow_p);
	printf("%s:   audit row + event (outbox)    p50 %6llu us  p99 %6llu us  mean %6llu us"
	       "  over 1 ms: %d\n",
	       dr, (unsigned long long)pct(evented, iters, 0.5),
	       (unsigned long long)pct(evented, iters, 0.99), (unsigned long long)(sum_e / iters),
	       slow_e);
	printf("%s:   added by the event row        p50 %6lld us  p99 %6lld us  mean %6lld us\n", dr,
	       (long long)pct(evented, iters, 0.5) - (long long)pct(plain, iters, 0.5),
	       (long long)pct(evented, iters, 0.99) - (long long)pct(plain, iters, 0.99),
	       (long long)(sum_e / iters) - (long long)(sum_p / iters));
	printf("%s:   rows written: %lld audit, %lld events (expected %d and %d)\n", dr,
	       (long long)(au1 - au0), (long long)(ev1 - ev0), 2 * (iters + 50), iters + 50);
	rc = (au1 - au0 == 2 * (iters + 50) && ev1 - ev0 == iters + 50) ? 0 : -1;
out:
	free(plain);
	free(evented);
	return rc;
}

/* --- part 2: deliveries per second ---------------------------------------------------- */

static size_t
discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/*
 * n plain libcurl POSTs of body to url, a new handle (and so a new TLS
 * connection) each, verifying the receiver with ca_file: each one's
 * microseconds into us. The number that got a 200.
 */
static int
curl_baseline(const char *url, const char *ca_file, const char *body, int n, uint64_t *us)
{
	int ok = 0;
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	struct curl_slist *h2 = hdr != NULL ? curl_slist_append(hdr, "Expect:") : NULL;
	if (h2 == NULL) {
		curl_slist_free_all(hdr);
		return 0;
	}
	hdr = h2;
	for (int i = 0; i < n; i++) {
		uint64_t t0 = util_now_us();
		CURL *h = curl_easy_init();
		long status = 0;
		if (h == NULL)
			break;
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
		if (curl_easy_perform(h) == CURLE_OK &&
		    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
			ok++;
		curl_easy_cleanup(h);
		us[i] = util_now_us() - t0;
	}
	curl_slist_free_all(hdr);
	return ok;
}

/* The dispatch tick until it finds nothing new (200 events a call): events into *n. */
static int
dispatch_all(struct bench *b, const struct jobs_tick *tick, int *n, int *calls)
{
	*n = *calls = 0;
	for (;;) {
		pool *tp = pool_new(WB_POOL);
		struct actor ta = op_system(tick->label);
		struct op top;
		int got = 0;
		if (tp == NULL)
			return -1;
		op_init(&top, tp, &b->cfg, b->t, b->tn, b->d, &ta);
		bw_err e = tick->run(&top, &got);
		pool_free(tp);
		(*calls)++;
		if (e != BW_OK) {
			fprintf(stderr, "webhook: dispatch tick: %s\n", bw_strerror(e));
			return -1;
		}
		if (got == 0 || *calls > 1000)
			return 0;
		*n += got;
	}
}

static int
part_deliveries(struct bench *b, const struct job_table *jt, struct receiver *rv,
		const char *ca_file)
{
	const char *dr = b->driver;
	char url[64];
	int rc = -1;
	uint64_t *job_us = calloc(WB_EVENTS * 2, sizeof(*job_us));
	uint64_t *curl_us = calloc(WB_EVENTS, sizeof(*curl_us));
	json_t *in = NULL, *out = NULL;
	char *body = NULL;
	pool *p = pool_new(WB_POOL);
	struct actor admin = bench_user();
	struct op op;
	if (job_us == NULL || curl_us == NULL || p == NULL)
		goto out;
	op_init(&op, p, &b->cfg, b->t, b->tn, b->d, &admin);
	op.client_ip = "127.0.0.1";
	op.request_id = "bench0000000000000";
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/hook", rv->port);
	in = json_pack("{s:s, s:[s], s:s}", "url", url, "event_types", "customers.*", "description",
		       "bench receiver");
	if (in == NULL)
		goto out;
	/* Part 1's events go out first, to nobody: the fan-out timed below is of these 1,000. */
	const struct jobs_tick *tick = NULL;
	for (size_t i = 0; i < jt->nticks; i++)
		if (strcmp(jt->ticks[i].label, "job: dispatch events") == 0)
			tick = &jt->ticks[i];
	if (tick == NULL) {
		fprintf(stderr, "webhook: no 'job: dispatch events' tick in the job table\n");
		goto out;
	}
	int drained = 0, dcalls = 0;
	if (dispatch_all(b, tick, &drained, &dcalls) != 0)
		goto out;
	bw_err e = webhook_sub_create(&op, in, &out);
	if (e != BW_OK) {
		fprintf(stderr, "webhook: cannot subscribe %s: %s (%s)\n", url, bw_strerror(e),
			op.err_msg != NULL ? op.err_msg : "");
		goto out;
	}

	/* The events: 1,000 changes through the real path, as part 1 made them. */
	uint64_t t0 = util_now_us();
	for (int i = 0; i < WB_EVENTS; i++)
		if (change(b, 100000 + i, 1) != 0)
			goto out;
	uint64_t t_changes = util_now_us() - t0;

	/* The fan-out: 1,000 events to one subscription. */
	int dispatched = 0, calls = 0;
	t0 = util_now_us();
	if (dispatch_all(b, tick, &dispatched, &calls) != 0)
		goto out;
	uint64_t t_dispatch = util_now_us() - t0;
	int64_t pending = 0;
	if (DB_QUERY_INT(b->d, &pending,
			 "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'") != BW_OK)
		goto out;

	/* The deliveries: claim, run, finish, as a runner worker does, until none is due. */
	long req0 = atomic_load(&rv->requests), sig0 = atomic_load(&rv->signed_requests);
	long fail0 = atomic_load(&rv->failures);
	int jobs = 0, failed = 0;
	const char *owner = "bench:webhook:0";
	t0 = util_now_us();
	while (jobs < WB_EVENTS * 2) {
		uint64_t j0 = util_now_us();
		pool *cp = pool_new(WB_POOL);
		struct actor ca = op_system("job runner");
		struct op cop;
		struct job j;
		int got = 0;
		if (cp == NULL)
			goto out;
		op_init(&cop, cp, &b->cfg, b->t, b->tn, b->d, &ca);
		e = jobs_claim(&cop, jt->kinds, jt->nkinds, owner, &j, &got);
		pool_free(cp);
		if (e != BW_OK) {
			fprintf(stderr, "webhook: claiming a job: %s\n", bw_strerror(e));
			goto out;
		}
		if (!got)
			break;
		const struct job_kind *k = NULL;
		for (size_t i = 0; i < jt->nkinds; i++)
			if (strcmp(jt->kinds[i].name, j.kind) == 0)
				k = &jt->kinds[i];
		if (k == NULL) {
			fprintf(stderr, "webhook: a job of unknown kind %s\n", j.kind);
			job_clear(&j);
			goto out;
		}
		pool *rp = pool_new(WB_POOL);
		char label[JOB_KIND_MAX + 8];
		snprintf(label, sizeof(label), "job: %s", j.kind);
		struct actor ra = op_system(label);
		struct op rop;
		struct job_retry retry;
		if (rp == NULL) {
			job_clear(&j);
			goto out;
		}
		op_init(&rop, rp, &b->cfg, b->t, b->tn, b->d, &ra);
		memset(&retry, 0, sizeof(retry));
		bw_err re = k->run(&rop, &j, &retry);
		if (re != BW_OK) {
			if (failed++ < 3)
				fprintf(stderr, "webhook: job %lld: %s: %s\n", (long long)j.id,
					bw_strerror(re), retry.error[0] ? retry.error : "");
		}
		op_clear(&rop);
		e = jobs_finish(&rop, k, &j, owner, re, &retry);
		job_clear(&j);
		pool_free(rp);
		if (e != BW_OK) {
			fprintf(stderr, "webhook: finishing a job: %s\n", bw_strerror(e));
			goto out;
		}
		job_us[jobs++] = util_now_us() - j0;
	}
	uint64_t t_deliver = util_now_us() - t0;
	long req = atomic_load(&rv->requests) - req0, sig = atomic_load(&rv->signed_requests) - sig0;
	long rfail = atomic_load(&rv->failures) - fail0;
	int64_t delivered = 0;
	if (DB_QUERY_INT(b->d, &delivered,
			 "SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'delivered'") != BW_OK)
		goto out;

	/* The baseline: the same receiver, as many plain POSTs of a delivery's body. */
	size_t blen = 0;
	char type[EVENT_TYPE_MAX + 1];
	int64_t last = 0;
	if (DB_QUERY_INT(b->d, &last, "SELECT MAX(id) FROM events") != BW_OK ||
	    event_body(&op, last, &body, &blen, type) != BW_OK) {
		fprintf(stderr, "webhook: cannot read event %lld\n", (long long)last);
		goto out;
	}
	req0 = atomic_load(&rv->requests);
	t0 = util_now_us();
	int curl_ok = curl_baseline(url, ca_file, body, WB_EVENTS, curl_us);
	uint64_t t_curl = util_now_us() - t0;
	long creq = atomic_load(&rv->requests) - req0;

	double s_deliver = (double)t_deliver / 1e6, s_curl = (double)t_curl / 1e6;
	printf("%s: deliveries to a TLS receiver on 127.0.0.1 (one subscription, %d events of"
	       " %zu bytes)\n",
	       dr, WB_EVENTS, blen);
	printf("%s:   %d changes with their events written in %.2f s\n", dr, WB_EVENTS,
	       (double)t_changes / 1e6);
	printf("%s:   dispatch tick: %d events fanned out to %lld deliveries in %.3f s (%d calls)\n",
	       dr, dispatched, (long long)pending, (double)t_dispatch / 1e6, calls);
	if (jobs > 0) {
		qsort(job_us, jobs, sizeof(*job_us), cmp_u64);
		printf("%s:   webhook.deliver jobs (claim, run, finish, one after the other): %d jobs,"
		       " %lld delivered, %d failed attempts\n",
		       dr, jobs, (long long)delivered, failed);
		printf("%s:     %.2f s in all, %7.1f deliveries/s   per job p50 %6llu us  p99 %6llu us\n",
		       dr, s_deliver, s_deliver > 0 ? (double)delivered / s_deliver : 0.0,
		       (unsigned long long)pct(job_us, jobs, 0.5),
		       (unsigned long long)pct(job_us, jobs, 0.99));
	}
	qsort(curl_us, WB_EVENTS, sizeof(*curl_us), cmp_u64);
	printf("%s:   baseline: plain libcurl POSTs, a new handle and TLS connection each: %d of %d"
	       " got 200\n",
	       dr, curl_ok, WB_EVENTS);
	printf("%s:     %.2f s in all, %7.1f POSTs/s        per POST p50 %6llu us  p99 %6llu us\n",
	       dr, s_curl, s_curl > 0 ? (double)curl_ok / s_curl : 0.0,
	       (unsigned long long)pct(curl_us, WB_EVENTS, 0.5),
	       (unsigned long long)pct(curl_us, WB_EVENTS, 0.99));
	if (jobs > 0)
		printf("%s:   added per delivery by the job (read, sign, record, finish): p50 %6lld us\n",
		       dr,
		       (long long)pct(job_us, jobs, 0.5) - (long long)pct(curl_us, WB_EVENTS, 0.5));
	printf("%s:   receiver: %ld deliveries (%ld signed), %ld baseline POSTs; failed connections:"
	       " %ld during deliveries, %ld during the baseline\n",
	       dr, req, sig, creq, rfail, atomic_load(&rv->failures) - fail0 - rfail);
	rc = delivered == WB_EVENTS && req == WB_EVENTS && sig == WB_EVENTS &&
		     curl_ok == WB_EVENTS
		 ? 0
		 : -1;
	if (rc != 0)
		fprintf(stderr, "webhook: not every delivery or POST arrived\n");
out:
	free(body);
	json_decref(in);
	/* The subscription's secret, shown this once: wiped, not just freed. */
	const char *secret = json_string_value(json_object_get(out, "secret"));
	if (secret != NULL)
		OPENSSL_cleanse((char *)secret, strlen(secret));
	json_decref(out);
	pool_free(p);
	free(job_us);
	free(curl_us);
	return rc;
}

/* --- main ------------------------------------------------------------------------------ */

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	int ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *driver = "sqlite", *var = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc)
			driver = argv[++i];
		else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc)
			var = argv[++i];
		else
			var = NULL, i = argc;
	}
	if (var == NULL || (strcmp(driver, "sqlite") != 0 && strcmp(driver, "mariadb") != 0)) {
		fprintf(stderr, "usage: webhook --driver sqlite|mariadb --var DIR\n");
		return 2;
	}
	struct bench b;
	struct receiver rv;
	struct job_table jt;
	char err[1024], otp[64], ca_file[CONFIG_STR];
	char *cert = NULL, *key = NULL;
	int from, to, status = 1, started = 0;
	size_t n;
	memset(&b, 0, sizeof(b));
	b.driver = driver;
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread: libcurl, and the receiver's thread. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "webhook: libcurl does not initialise\n");
		return 1;
	}
	if (bench_config(&b.cfg, driver, var) != 0)
		return 2;
	snprintf(b.cfg.db_control, sizeof(b.cfg.db_control), "saas_bench_webhook");
	if (tenancy_open(&b.cfg, 1, &b.t, err, sizeof(err)) != BW_OK ||
	    migrate_run(tenancy_control(b.t), &migrate_control, &from, &to, err, sizeof(err)) != BW_OK ||
	    tenant_create(b.t, "benchwebhook", "a@b.co", "correct horse battery", NULL, otp,
			  sizeof(otp), err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "webhook: %s\n", err);
		return 1;
	}
	if (tenant_list(b.t, &b.tn, &n, err, sizeof(err)) != BW_OK || n == 0 ||
	    tenancy_connect_tenant(b.t, &b.tn[0], 0, &b.d, err, sizeof(err)) != BW_OK ||
	    db_exec(b.d, "INSERT INTO customers (name, status, created_at, updated_at, created_by,"
			 " updated_by) VALUES ('Customer', 'active', 0, 0, 1, 1)") != BW_OK) {
		fprintf(stderr, "webhook: cannot set up: %s\n", err);
		goto out;
	}

	/* The receiver, trusted through webhooks.ca_file, reached with test_allow_loopback. */
	snprintf(ca_file, sizeof(ca_file), "%.1000s/receiver.pem", var);
	/* MariaDB keeps nothing under var: it may not be there yet. */
	if (mkdir(var, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "webhook: cannot create %s: %s\n", var, strerror(errno));
		goto out;
	}
	if (receiver_cert(&cert, &key) != 0 || write_file(ca_file, cert) != 0 ||
	    receiver_start(&rv, cert, key) != 0) {
		fprintf(stderr, "webhook: cannot start the receiver\n");
		goto out;
	}
	started = 1;
	b.cfg.webhooks_test_allow_loopback = 1;
	snprintf(b.cfg.webhooks_ca_file, sizeof(b.cfg.webhooks_ca_file), "%s", ca_file);
	job_table_build(&b.cfg, 1, &jt);

	if (part_latency(&b) != 0 || part_deliveries(&b, &jt, &rv, ca_file) != 0)
		goto out;
	int64_t rows = 0, bad = 0;
	if (audit_verify(b.d, b.t, b.tn, &rows, &bad, err, sizeof(err)) != BW_OK)
		printf("%s: audit chain BROKEN at %lld: %s\n", driver, (long long)bad, err);
	else
		printf("%s: audit chain of %lld rows verified\n", driver, (long long)rows);
	status = 0;
out:
	if (started)
		receiver_stop(&rv);
	free(cert);
	if (key != NULL)
		OPENSSL_cleanse(key, strlen(key));
	free(key);
	db_close(b.d);
	if (strcmp(driver, "mariadb") == 0 && b.t != NULL) {
		if (tenant_delete(b.t, "benchwebhook", err, sizeof(err)) != BW_OK ||
		    db_exec(tenancy_control(b.t), "DROP DATABASE saas_bench_webhook") != BW_OK)
			fprintf(stderr, "webhook: cleanup failed\n");
	}
	free(b.tn);
	tenancy_close(b.t);
	curl_global_cleanup();
	return status;
}
