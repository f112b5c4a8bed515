/*
 * The certificate served to TLS handshakes, swappable at run time so a
 * renewed certificate takes effect on SIGHUP without dropping connections.
 *
 * GnuTLS's retrieve callback carries no user pointer, so the current
 * certificate set is the one piece of process-wide state in the server.
 * Replaced sets are kept until tls_unload(): a handshake that already
 * holds pointers into one may still be using it.
 */
#include "http.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TLS_MAX_CHAIN 8

struct tls_set {
	gnutls_pcert_st pcert[TLS_MAX_CHAIN];
	unsigned npcert;
	gnutls_privkey_t key;
	struct tls_set *older;
};

static _Atomic(struct tls_set *) tls_current;

const char *
tls_priorities(void)
{
	/* TLS 1.3 only; of its suites, the AEADs with 256-bit or ChaCha first. */
	return "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM:"
	       "+CHACHA20-POLY1305:+AES-128-GCM:%SERVER_PRECEDENCE";
}

static int
tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
	     const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
	     unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
	(void)session, (void)req_ca_rdn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
	struct tls_set *t = atomic_load(&tls_current);
	if (t == NULL)
		return -1;
	*pcert = t->pcert;
	*pcert_length = t->npcert;
	*privkey = t->key;
	return 0;
}

void *
tls_cert_callback(void)
{
	return (void *)&tls_retrieve;
}

static void
tls_set_free(struct tls_set *t)
{
	if (t == NULL)
		return;
	for (unsigned i = 0; i < t->npcert; i++)
		gnutls_pcert_deinit(&t->pcert[i]);
	if (t->key != NULL)
		gnutls_privkey_deinit(t->key);
	free(t);
}

static void
tls_datum_wipe(gnutls_datum_t *d)
{
	if (d->data != NULL) {
		gnutls_memset(d->data, 0, d->size);
		gnutls_free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

bw_err
tls_load(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	gnutls_datum_t c = {0}, k = {0};
	gnutls_certificate_credentials_t cred = NULL;
	struct tls_set *t = NULL;
	bw_err rc = BW_ERR_CONFIG;
	struct stat st;
	int r;

	if (stat(key_path, &st) != 0) {
		snprintf(err, errlen, "TLS key %s: not found (run 'make run' once, or set [server] tls_key)",
			 key_path);
		goto out;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(err, errlen, "TLS key %s: readable by every user; chmod 600 it", key_path);
		goto out;
	}
	if ((r = gnutls_load_file(cert_path, &c)) < 0) {
		snprintf(err, errlen, "TLS certificate %s: cannot read (set [server] tls_cert)",
			 cert_path);
		goto out;
	}
	if ((r = gnutls_load_file(key_path, &k)) < 0) {
		snprintf(err, errlen, "TLS key %s: cannot read", key_path);
		goto out;
	}
	/* Let GnuTLS check that the key belongs to the certificate. */
	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		rc = BW_ERR_NOMEM;
		goto out;
	}
	r = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0) {
		snprintf(err, errlen, "TLS certificate %s with key %s: %s", cert_path, key_path,
			 gnutls_strerror(r));
		goto out;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		rc = BW_ERR_NOMEM;
		goto out;
	}
	t->npcert = TLS_MAX_CHAIN;
	r = gnutls_pcert_list_import_x509_raw(t->pcert, &t->npcert, &c, GNUTLS_X509_FMT_PEM, 0);
	if (r < 0) {
		t->npcert = 0;
		snprintf(err, errlen, "TLS certificate %s: %s", cert_path, gnutls_strerror(r));
		goto out;
	}
	if (gnutls_privkey_init(&t->key) < 0 ||
	    (r = gnutls_privkey_import_x509_raw(t->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(err, errlen, "TLS key %s: cannot import", key_path);
		goto out;
	}
	t->older = atomic_exchange(&tls_current, t);
	t = NULL;
	rc = BW_OK;
out:
	tls_set_free(t);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	tls_datum_wipe(&k);
	tls_datum_wipe(&c);
	return rc;
}

void
tls_unload(void)
{
	struct tls_set *t = atomic_exchange(&tls_current, NULL);
	while (t != NULL) {
		struct tls_set *o = t->older;
		tls_set_free(t);
		t = o;
	}
}
