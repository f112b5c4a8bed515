/*
 * Webhook signatures: Standard Webhooks, Stripe and Intuit. See sig.h for
 * the formats; this file is only parsers that stop at the first thing they
 * do not expect, and one multi-part HMAC so that a body is never copied
 * to be signed.
 */
#include "sig.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "../crypto/crypto.h"

#define SIG_PREFIX_LEN (sizeof(WHSIG_PREFIX) - 1)
#define SIG_B64_MAX 88 /* base64 characters of the longest thing we decode: a 64-byte key */
#define SIG_B64_MAC 44 /* base64 characters of a 32-byte MAC */
#define SIG_HEX_MAC (2 * HMAC_SHA256_LEN)
#define SIG_VERSION_MAX 8 /* "v1", "v1a": a version or Stripe key is this long at most */

/*
 * The HMAC implementation, fetched once (as aead.c does): fetching it on
 * every call would take OpenSSL's provider lock on every delivery. Written
 * only inside pthread_once, read-only after.
 */
static EVP_MAC *sig_hmac_alg;
static pthread_once_t sig_once = PTHREAD_ONCE_INIT;

static void
sig_init(void)
{
	sig_hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

struct sig_part {
	const void *p;
	size_t n;
};

/* HMAC-SHA256 of the parts one after another; out wiped on failure. */
static bw_err
sig_mac(const unsigned char *key, size_t keylen, const struct sig_part *parts, size_t nparts,
	unsigned char out[HMAC_SHA256_LEN])
{
	size_t outlen = 0;
	pthread_once(&sig_once, sig_init);
	if (sig_hmac_alg == NULL || keylen == 0)
		return BW_ERR_CRYPTO;
	EVP_MAC_CTX *m = EVP_MAC_CTX_new(sig_hmac_alg);
	if (m == NULL)
		return BW_ERR_NOMEM;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	int ok = EVP_MAC_init(m, key, keylen, params) == 1;
	for (size_t i = 0; ok && i < nparts; i++)
		if (parts[i].n > 0)
			ok = EVP_MAC_update(m, parts[i].p, parts[i].n) == 1;
	ok = ok && EVP_MAC_final(m, out, &outlen, HMAC_SHA256_LEN) == 1 &&
	     outlen == HMAC_SHA256_LEN;
	EVP_MAC_CTX_free(m); /* cleanses the key schedule */
	if (!ok)
		OPENSSL_cleanse(out, HMAC_SHA256_LEN);
	return ok ? BW_OK : BW_ERR_CRYPTO;
}

/* --- strict base64, hex and decimal --------------------------------------- */

/*
 * Decode n characters of standard padded base64 into out (cap bytes), the
 * length into *outlen; 1, or 0 for anything but the one canonical encoding
 * of some bytes. EVP_DecodeBlock alone would take surrounding whitespace,
 * count padding as output and accept unused bits that are set (so that
 * several texts decode alike): everything is checked before it runs.
 */
static int
sig_b64_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
	unsigned char tmp[SIG_B64_MAX / 4 * 3];
	size_t pad = 0;
	*outlen = 0;
	if (n == 0 || n % 4 != 0 || n > SIG_B64_MAX)
		return 0;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (util_b64_value((unsigned char)s[i]) < 0)
			return 0;
	/* the bits of the last character that fall past the last byte must be 0 */
	if (pad == 1 && (util_b64_value((unsigned char)s[n - 2]) & 0x03) != 0)
		return 0;
	if (pad == 2 && (util_b64_value((unsigned char)s[n - 3]) & 0x0f) != 0)
		return 0;
	size_t dl = n / 4 * 3 - pad;
	if (dl > cap)
		return 0;
	int r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	int ok = r >= 0 && (size_t)r == n / 4 * 3;
	if (ok) {
		memcpy(out, tmp, dl);
		*outlen = dl;
	}
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return ok;
}

/* Standard base64 of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
static void
sig_b64_encode(const unsigned char *in, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int
sig_hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case too: Stripe sends lower case, and one form is the rule */
}

/* Exactly 64 lower-case hex digits into 32 bytes; 1 or 0. */
static int
sig_hex_mac(const char *s, size_t n, unsigned char out[HMAC_SHA256_LEN])
{
	if (n != SIG_HEX_MAC)
		return 0;
	for (size_t i = 0; i < HMAC_SHA256_LEN; i++) {
		int hi = sig_hex_val((unsigned char)s[2 * i]);
		int lo = sig_hex_val((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 1;
}

/*
 * A timestamp: 1..19 decimal digits, no sign, space or leading zero, at
 * most INT64_MAX. The text itself is what gets signed, so it has to have
 * one spelling only.
 */
static int
sig_parse_ts(const char *s, size_t n, int64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > WHSIG_TS_DIGITS || (s[0] == '0' && n > 1))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits fit in 64 bits */
	}
	if (v > (uint64_t)INT64_MAX)
		return 0;
	*out = (int64_t)v;
	return 1;
}

/* |now - ts| <= tolerance, without overflow (an overflow is far out). */
static int
sig_in_window(int64_t ts, int64_t now, int64_t tolerance)
{
	int64_t d;
	if (__builtin_sub_overflow(now, ts, &d) || d == INT64_MIN)
		return 0;
	if (d < 0)
		d = -d;
	return d <= tolerance;
}

/* A byte allowed in an id or a header value: visible ASCII, no space. */
static int
sig_visible(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

/* A version ("v1a") or Stripe key ("t", "v0"): 1..8 of [a-z0-9]. */
static int
sig_token(const char *s, size_t n)
{
	if (n == 0 || n > SIG_VERSION_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

static int
sig_all_visible(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!sig_visible((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Length of a usable webhook-id, or 0. */
static size_t
sig_id_len(const char *id)
{
	size_t n = id ? strnlen(id, WHSIG_ID_MAX + 1) : 0;
	if (n == 0 || n > WHSIG_ID_MAX || !sig_all_visible(id, n))
		return 0;
	return n;
}

/* Length of a usable Stripe secret or Intuit token, or 0. */
static size_t
sig_token_len(const char *t)
{
	size_t n = t ? strnlen(t, WHSIG_TOKEN_MAX + 1) : 0;
	return n > WHSIG_TOKEN_MAX ? 0 : n;
}

static int
sig_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

/* 1 when one of the n candidates is want; looks at all of them either way. */
static int
sig_any_equal(const unsigned char want[HMAC_SHA256_LEN],
	      const unsigned char (*cand)[HMAC_SHA256_LEN], size_t n)
{
	int match = 0;
	for (size_t i = 0; i < n; i++)
		match |= crypto_equal(want, cand[i], HMAC_SHA256_LEN);
	return match;
}

/* --- the reasons ---------------------------------------------------------- */

static const char *const sig_why_names[WHSIG__COUNT] = {
    [WHSIG_OK] = "ok",
    [WHSIG_MISSING] = "missing",
    [WHSIG_MALFORMED] = "malformed",
    [WHSIG_STALE] = "stale",
    [WHSIG_MISMATCH] = "mismatch",
    [WHSIG_BAD_SECRET] = "bad_secret",
};

const char *
whsig_why_str(enum whsig_why why)
{
	if ((unsigned)why >= WHSIG__COUNT)
		return "unknown";
	return sig_why_names[why];
}

/* --- Standard Webhooks ---------------------------------------------------- */

bw_err
whsig_secret_new(char *out, size_t outlen)
{
	unsigned char key[WHSIG_KEY_NEW];
	bw_err e;
	if (out == NULL || outlen < WHSIG_SECRET_LEN) {
		if (out != NULL && outlen > 0)
			out[0] = '\0';
		return BW_ERR_NOMEM;
	}
	if ((e = util_random(key, sizeof(key))) != BW_OK) {
		OPENSSL_cleanse(out, outlen);
		out[0] = '\0';
		goto done;
	}
	memcpy(out, WHSIG_PREFIX, SIG_PREFIX_LEN);
	sig_b64_encode(key, sizeof(key), out + SIG_PREFIX_LEN);
done:
	OPENSSL_cleanse(key, sizeof(key));
	return e;
}

bw_err
whsig_secret_decode(const char *secret, unsigned char key[WHSIG_KEY_MAX], size_t *keylen)
{
	size_t n, dl = 0;
	*keylen = 0;
	if (secret == NULL)
		goto bad;
	n = strnlen(secret, WHSIG_SECRET_MAX);
	if (n >= WHSIG_SECRET_MAX || n < SIG_PREFIX_LEN ||
	    memcmp(secret, WHSIG_PREFIX, SIG_PREFIX_LEN) != 0)
		goto bad;
	if (!sig_b64_decode(secret + SIG_PREFIX_LEN, n - SIG_PREFIX_LEN, key, WHSIG_KEY_MAX, &dl) ||
	    dl < WHSIG_KEY_MIN)
		goto bad;
	*keylen = dl;
	return BW_OK;
bad:
	OPENSSL_cleanse(key, WHSIG_KEY_MAX);
	return BW_ERR_INVALID;
}

bw_err
whsig_sign(const char *secret, const char *msg_id, int64_t ts, const void *body, size_t len,
	   char *out, size_t outlen)
{
	unsigned char key[WHSIG_KEY_MAX], mac[HMAC_SHA256_LEN];
	char tsbuf[WHSIG_TS_DIGITS + 1];
	size_t keylen = 0, idlen;
	bw_err e;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (out == NULL || outlen < WHSIG_SIG_LEN)
		return BW_ERR_NOMEM;
	if ((idlen = sig_id_len(msg_id)) == 0 || ts < 0 || (body == NULL && len > 0))
		return BW_ERR_INVALID;
	if ((e = whsig_secret_decode(secret, key, &keylen)) != BW_OK)
		return e;
	int tl = snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
	const struct sig_part parts[] = {
	    {msg_id, idlen}, {".", 1}, {tsbuf, (size_t)tl}, {".", 1}, {body, len},
	};
	if ((e = sig_mac(key, keylen, parts, BW_ARRAY_LEN(parts), mac)) != BW_OK)
		goto done;
	memcpy(out, "v1,", 3);
	sig_b64_encode(mac, sizeof(mac), out + 3);
done:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	return e;
}

/*
 * The next entry of a signature header: "<name><kv><value>" entries with
 * exactly one sep between two and nothing around (Standard Webhooks: ' '
 * and ','; Stripe: ',' and '='). 1 with the entry, 0 after the last one,
 * -1 for a malformed header or more than WHSIG_MAX_ENTRIES entries.
 */
struct sig_entry {
	const char *name, *val;
	size_t namelen, vallen;
};

static int
sig_next_entry(const char *h, size_t hl, size_t *pos, size_t *count, char sep, char kv,
	       struct sig_entry *out)
{
	if (*pos > hl)
		return 0;
	const char *ent = h + *pos;
	const char *end = memchr(ent, sep, hl - *pos);
	size_t n = end ? (size_t)(end - ent) : hl - *pos;
	const char *mid = memchr(ent, kv, n);
	if (n == 0 || ++*count > WHSIG_MAX_ENTRIES || mid == NULL)
		return -1;
	out->name = ent;
	out->namelen = (size_t)(mid - ent);
	out->val = mid + 1;
	out->vallen = n - out->namelen - 1;
	if (!sig_token(out->name, out->namelen) || out->vallen == 0 ||
	    !sig_all_visible(out->val, out->vallen))
		return -1;
	*pos = end ? *pos + n + 1 : hl + 1;
	return 1;
}

/* The verdict of want against the candidates: BW_OK (WHSIG_OK) or BW_ERR_DENIED (WHSIG_MISMATCH). */
static bw_err
sig_verdict(const unsigned char *want, unsigned char (*v1)[HMAC_SHA256_LEN], size_t nv1,
	    enum whsig_why *w)
{
	if (sig_any_equal(want, (const unsigned char(*)[HMAC_SHA256_LEN])v1, nv1)) {
		*w = WHSIG_OK;
		return BW_OK;
	}
	*w = WHSIG_MISMATCH;
	return BW_ERR_DENIED;
}

bw_err
whsig_verify(const char *secret, const char *msg_id, const char *ts_header,
	     const char *sig_header, const void *body, size_t len, int64_t now,
	     int64_t tolerance, enum whsig_why *why)
{
	unsigned char key[WHSIG_KEY_MAX], want[HMAC_SHA256_LEN];
	unsigned char v1[WHSIG_MAX_ENTRIES][HMAC_SHA256_LEN];
	size_t keylen = 0, idlen, tslen, hl, nv1 = 0, entries = 0, pos = 0;
	enum whsig_why w = WHSIG_MALFORMED;
	bw_err e = BW_ERR_DENIED;
	int64_t ts;

	if (tolerance < 0 || (body == NULL && len > 0)) {
		e = BW_ERR_INVALID;
		goto done;
	}
	if (whsig_secret_decode(secret, key, &keylen) != BW_OK) {
		e = BW_ERR_INVALID;
		w = WHSIG_BAD_SECRET;
		goto done;
	}
	if (sig_empty(msg_id) || sig_empty(ts_header) || sig_empty(sig_header)) {
		w = WHSIG_MISSING;
		goto done;
	}
	if ((idlen = sig_id_len(msg_id)) == 0)
		goto done;
	tslen = strnlen(ts_header, WHSIG_TS_DIGITS + 1);
	if (!sig_parse_ts(ts_header, tslen, &ts))
		goto done;
	if (!sig_in_window(ts, now, tolerance)) {
		w = WHSIG_STALE;
		goto done;
	}

	/* "<version>,<value>" entries, one space between two, none around */
	hl = strnlen(sig_header, WHSIG_HEADER_MAX + 1);
	if (hl > WHSIG_HEADER_MAX)
		goto done;
	struct sig_entry en;
	int r;
	while ((r = sig_next_entry(sig_header, hl, &pos, &entries, ' ', ',', &en)) == 1) {
		if (en.namelen == 2 && memcmp(en.name, "v1", 2) == 0) {
			size_t dl;
			if (!sig_b64_decode(en.val, en.vallen, v1[nv1], HMAC_SHA256_LEN, &dl) ||
			    dl != HMAC_SHA256_LEN)
				goto done;
			nv1++;
		}
	}
	if (r < 0)
		goto done;
	if (nv1 == 0) {
		w = WHSIG_MISSING; /* only versions we do not speak (v1a) */
		goto done;
	}

	const struct sig_part parts[] = {
	    {msg_id, idlen}, {".", 1}, {ts_header, tslen}, {".", 1}, {body, len},
	};
	if ((e = sig_mac(key, keylen, parts, BW_ARRAY_LEN(parts), want)) != BW_OK)
		goto done;
	e = sig_verdict(want, v1, nv1, &w);
done:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(v1, sizeof(v1));
	if (e != BW_OK && w == WHSIG_OK)
		w = WHSIG_MALFORMED; /* never report success with an error */
	if (why != NULL)
		*why = w;
	return e;
}

/* --- Stripe --------------------------------------------------------------- */

bw_err
whsig_stripe_sign(const char *secret, int64_t ts, const void *body, size_t len, char *out,
		  size_t outlen)
{
	unsigned char mac[HMAC_SHA256_LEN];
	char tsbuf[WHSIG_TS_DIGITS + 1];
	size_t sl;
	bw_err e;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (out == NULL || outlen < WHSIG_STRIPE_SIG_LEN)
		return BW_ERR_NOMEM;
	if ((sl = sig_token_len(secret)) == 0 || ts < 0 || (body == NULL && len > 0))
		return BW_ERR_INVALID;
	int tl = snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
	const struct sig_part parts[] = {{tsbuf, (size_t)tl}, {".", 1}, {body, len}};
	if ((e = sig_mac((const unsigned char *)secret, sl, parts, BW_ARRAY_LEN(parts), mac)) !=
	    BW_OK)
		goto done;
	int n = snprintf(out, outlen, "t=%s,v1=", tsbuf);
	util_hex(mac, sizeof(mac), out + n);
done:
	OPENSSL_cleanse(mac, sizeof(mac));
	return e;
}

bw_err
whsig_stripe_verify(const char *secret, const char *header, const void *body, size_t len,
		    int64_t now, int64_t tolerance, int64_t *ts_out, enum whsig_why *why)
{
	unsigned char want[HMAC_SHA256_LEN];
	unsigned char v1[WHSIG_MAX_ENTRIES][HMAC_SHA256_LEN];
	size_t sl, hl, nv1 = 0, entries = 0, pos = 0, tslen = 0;
	const char *tstext = NULL;
	enum whsig_why w = WHSIG_MALFORMED;
	bw_err e = BW_ERR_DENIED;
	int64_t ts = 0;

	if (ts_out != NULL)
		*ts_out = 0;
	if (tolerance < 0 || (body == NULL && len > 0)) {
		e = BW_ERR_INVALID;
		goto done;
	}
	if ((sl = sig_token_len(secret)) == 0) {
		e = BW_ERR_INVALID;
		w = WHSIG_BAD_SECRET;
		goto done;
	}
	if (sig_empty(header)) {
		w = WHSIG_MISSING;
		goto done;
	}
	hl = strnlen(header, WHSIG_HEADER_MAX + 1);
	if (hl > WHSIG_HEADER_MAX)
		goto done;
	/* "key=value" entries separated by single commas, no spaces anywhere */
	struct sig_entry en;
	int r;
	while ((r = sig_next_entry(header, hl, &pos, &entries, ',', '=', &en)) == 1) {
		if (en.namelen == 1 && en.name[0] == 't') {
			if (tstext != NULL || !sig_parse_ts(en.val, en.vallen, &ts))
				goto done;
			tstext = en.val;
			tslen = en.vallen;
		} else if (en.namelen == 2 && memcmp(en.name, "v1", 2) == 0) {
			if (!sig_hex_mac(en.val, en.vallen, v1[nv1]))
				goto done;
			nv1++;
		}
	}
	if (r < 0)
		goto done;
	if (tstext == NULL)
		goto done;
	if (ts_out != NULL)
		*ts_out = ts;
	if (nv1 == 0) {
		w = WHSIG_MISSING; /* only v0 (test-mode legacy) or unknown schemes */
		goto done;
	}
	if (!sig_in_window(ts, now, tolerance)) {
		w = WHSIG_STALE;
		goto done;
	}
	const struct sig_part parts[] = {{tstext, tslen}, {".", 1}, {body, len}};
	if ((e = sig_mac((const unsigned char *)secret, sl, parts, BW_ARRAY_LEN(parts), want)) !=
	    BW_OK)
		goto done;
	e = sig_verdict(want, v1, nv1, &w);
done:
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(v1, sizeof(v1));
	if (e != BW_OK && w == WHSIG_OK)
		w = WHSIG_MALFORMED;
	if (why != NULL)
		*why = w;
	return e;
}

/* --- Intuit --------------------------------------------------------------- */

bw_err
whsig_intuit_sign(const char *verifier_token, const void *body, size_t len, char *out,
		  size_t outlen)
{
	unsigned char mac[HMAC_SHA256_LEN];
	size_t tl;
	bw_err e;

	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (out == NULL || outlen < WHSIG_INTUIT_SIG_LEN)
		return BW_ERR_NOMEM;
	if ((tl = sig_token_len(verifier_token)) == 0 || (body == NULL && len > 0))
		return BW_ERR_INVALID;
	const struct sig_part parts[] = {{body, len}};
	e = sig_mac((const unsigned char *)verifier_token, tl, parts, 1, mac);
	if (e == BW_OK)
		sig_b64_encode(mac, sizeof(mac), out);
	OPENSSL_cleanse(mac, sizeof(mac));
	return e;
}

bw_err
whsig_intuit_verify(const char *verifier_token, const char *header, const void *body,
		    size_t len, enum whsig_why *why)
{
	unsigned char want[HMAC_SHA256_LEN], got[HMAC_SHA256_LEN];
	enum whsig_why w = WHSIG_MALFORMED;
	bw_err e = BW_ERR_DENIED;
	size_t tl, hl, dl = 0;

	if (body == NULL && len > 0) {
		e = BW_ERR_INVALID;
		goto done;
	}
	if ((tl = sig_token_len(verifier_token)) == 0) {
		e = BW_ERR_INVALID;
		w = WHSIG_BAD_SECRET;
		goto done;
	}
	if (sig_empty(header)) {
		w = WHSIG_MISSING;
		goto done;
	}
	hl = strnlen(header, SIG_B64_MAC + 1);
	if (hl != SIG_B64_MAC || !sig_b64_decode(header, hl, got, sizeof(got), &dl) ||
	    dl != HMAC_SHA256_LEN)
		goto done;
	const struct sig_part parts[] = {{body, len}};
	if ((e = sig_mac((const unsigned char *)verifier_token, tl, parts, 1, want)) != BW_OK)
		goto done;
	if (crypto_equal(want, got, HMAC_SHA256_LEN)) {
		w = WHSIG_OK;
		e = BW_OK;
	} else {
		w = WHSIG_MISMATCH;
		e = BW_ERR_DENIED;
	}
done:
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(got, sizeof(got));
	if (e != BW_OK && w == WHSIG_OK)
		w = WHSIG_MALFORMED;
	if (why != NULL)
		*why = w;
	return e;
}
