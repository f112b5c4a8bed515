/* DKIM signatures by libopendkim, and keys for them (mail.h). */
#include "mail.h"

#include <opendkim/dkim.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAIL_DKIM_HEADER "DKIM-Signature: "

/*
 * Signed once more than they appear (RFC 6376 8.15): a second From or
 * Subject added on the way breaks the signature instead of riding on it.
 */
static const char *const mail_dkim_oversign[] = {"From",       "To",       "Subject", "Date",
					   "Message-ID", "Reply-To", NULL};

/*
 * d= and s= are copied into the signature's tags: a DNS name in ASCII and
 * nothing else, or a ';' could add tags of its own.
 */
static int
mail_dkim_name_ok(const char *v)
{
	size_t n = v != NULL ? strnlen(v, 254) : 0;
	if (n == 0 || n > 253 || v[0] == '.' || v[0] == '-' || v[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9') || v[i] == '.' || v[i] == '-' || v[i] == '_'))
			return 0;
	return 1;
}

bw_err
mail_dkim_sign(const struct mail_dkim *k, char **msg, size_t *len)
{
	DKIM_STAT st = DKIM_STAT_OK;
	DKIM *dk = NULL;
	unsigned char *sig = NULL;
	size_t slen = 0;
	bw_err e = BW_ERR_CRYPTO;
	if (!mail_dkim_name_ok(k->domain) || !mail_dkim_name_ok(k->selector) ||
	    k->key_pem == NULL || *msg == NULL || *len == 0)
		return BW_ERR_INVALID;
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	if (lib == NULL)
		return BW_ERR_NOMEM;
	/*
	 * The key read by OpenSSL first: an RSA key or nothing is signed (and
	 * libopendkim, given a key it cannot load, leaks what it began).
	 */
	BIO *kb = BIO_new_mem_buf(k->key_pem, -1);
	EVP_PKEY *pk = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	int rsa = pk != NULL && EVP_PKEY_is_a(pk, "RSA") && EVP_PKEY_get_bits(pk) >= 1024;
	EVP_PKEY_free(pk);
	BIO_free(kb);
	if (!rsa)
		goto out;
	/*
	 * FIXCRLF: a bare LF is canonicalised as the CRLF it becomes on the
	 * wire (mail_build writes none; a message from elsewhere might).
	 */
	unsigned int flags = DKIM_LIBFLAGS_FIXCRLF;
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
			 (void *)(uintptr_t)mail_dkim_oversign,
			 sizeof(char **)) != DKIM_STAT_OK)
		goto out;
	dk = dkim_sign(lib, (const unsigned char *)"bulwark", NULL,
		       (const dkim_sigkey_t)(uintptr_t)k->key_pem,
		       (const unsigned char *)k->selector, (const unsigned char *)k->domain,
		       DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &st);
	if (dk == NULL || st != DKIM_STAT_OK)
		goto out;
	if (dkim_chunk(dk, (unsigned char *)*msg, *len) != DKIM_STAT_OK ||
	    dkim_chunk(dk, NULL, 0) != DKIM_STAT_OK || dkim_eom(dk, NULL) != DKIM_STAT_OK ||
	    dkim_getsighdr_d(dk, strlen(MAIL_DKIM_HEADER), &sig, &slen) != DKIM_STAT_OK ||
	    sig == NULL)
		goto out;
	/* opendkim folds with LF alone: the header goes out with CRLF like the rest. */
	size_t lfs = 0;
	for (size_t i = 0; i < slen; i++)
		lfs += sig[i] == '\n';
	size_t hl = strlen(MAIL_DKIM_HEADER), n = hl + slen + lfs + 2;
	char *out = n < slen || *len > SIZE_MAX - n - 1 ? NULL : malloc(n + *len + 1);
	if (out == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	memcpy(out, MAIL_DKIM_HEADER, hl);
	size_t o = hl;
	for (size_t i = 0; i < slen; i++) {
		if (sig[i] == '\n' && (i == 0 || sig[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = (char)sig[i];
	}
	out[o++] = '\r';
	out[o++] = '\n';
	memcpy(out + o, *msg, *len);
	o += *len;
	out[o] = '\0';
	free(*msg);
	*msg = out;
	*len = o;
	e = BW_OK;
out:
	if (dk != NULL)
		dkim_free(dk);
	dkim_close(lib);
	return e;
}

bw_err
mail_dkim_record(const char *key_pem, char **txt)
{
	*txt = NULL;
	BIO *b = BIO_new_mem_buf(key_pem, -1);
	EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	int dl = k != NULL ? i2d_PUBKEY(k, &der) : -1;
	bw_err e = BW_ERR_CRYPTO;
	if (dl > 0) {
		size_t b64 = sodium_base64_ENCODED_LEN((size_t)dl, sodium_base64_VARIANT_ORIGINAL);
		if ((*txt = malloc(b64 + 32)) != NULL) {
			int w = snprintf(*txt, b64 + 32, "v=DKIM1; k=rsa; p=");
			sodium_bin2base64(*txt + w, b64, der, (size_t)dl, sodium_base64_VARIANT_ORIGINAL);
			e = BW_OK;
		} else {
			e = BW_ERR_NOMEM;
		}
	}
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	BIO_free(b);
	return e;
}

bw_err
mail_dkim_keypair(char **key_pem, char **txt)
{
	*key_pem = NULL;
	*txt = NULL;
	EVP_PKEY *k = EVP_RSA_gen(2048);
	BIO *kb = BIO_new(BIO_s_secmem());
	bw_err e = BW_ERR_CRYPTO;
	if (k == NULL || kb == NULL || !PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL))
		goto out;
	char *pem = NULL;
	long pl = BIO_get_mem_data(kb, &pem);
	if ((*key_pem = malloc((size_t)pl + 1)) == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	memcpy(*key_pem, pem, (size_t)pl);
	(*key_pem)[pl] = '\0';
	e = mail_dkim_record(*key_pem, txt);
out:
	if (e != BW_OK && *key_pem != NULL) {
		sodium_memzero(*key_pem, strlen(*key_pem));
		free(*key_pem);
		*key_pem = NULL;
	}
	BIO_free(kb);
	EVP_PKEY_free(k);
	return e;
}
