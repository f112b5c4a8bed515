/*
 * TOTP second factors: HOTP/TOTP codes and their verification, base32, the
 * otpauth:// enrolment URI, its QR code as SVG, and recovery codes.
 *
 * HMAC-SHA1 is here rather than in crypto/: SHA-1 is only acceptable inside
 * HMAC for HOTP, which RFC 4226 and every authenticator app fix to it, and
 * nothing else in Bulwark should be able to reach for it. This is the only
 * file that includes qrencode.h.
 */
#include "totp.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <qrencode.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/crypto.h"

#define TOTP_SHA1_LEN 20
#define TOTP_QUIET 4 /* modules of light border the QR specification asks for */
#define TOTP_SVG_SCALE 6 /* default pixels per module; CSS may override */

_Static_assert(sizeof(TOTP_RECOVERY_ALPHABET) - 1 == 31,
	       "recovery codes sample 5 bits and reject the 32nd value");
_Static_assert(TOTP_RECOVERY_LEN + 2 <= TOTP_RECOVERY_SIZE, "xxxxx-xxxxx and NUL must fit");

/* --- HMAC-SHA1 ------------------------------------------------------------ */

static EVP_MAC *totp_hmac;
static pthread_once_t totp_once = PTHREAD_ONCE_INIT;

static void
totp_init(void)
{
	totp_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

static bw_err
totp_hmac_sha1(const unsigned char *key, size_t keylen, const unsigned char *msg, size_t len,
	       unsigned char out[TOTP_SHA1_LEN])
{
	size_t outlen = 0;
	pthread_once(&totp_once, totp_init);
	if (totp_hmac == NULL)
		return BW_ERR_CRYPTO;
	EVP_MAC_CTX *m = EVP_MAC_CTX_new(totp_hmac);
	if (m == NULL)
		return BW_ERR_NOMEM;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA1", 0),
	    OSSL_PARAM_construct_end(),
	};
	int ok = EVP_MAC_init(m, key, keylen, params) == 1 && EVP_MAC_update(m, msg, len) == 1 &&
		 EVP_MAC_final(m, out, &outlen, TOTP_SHA1_LEN) == 1 && outlen == TOTP_SHA1_LEN;
	/* The context holds the padded key; freeing it cleanses it. */
	EVP_MAC_CTX_free(m);
	if (!ok)
		OPENSSL_cleanse(out, TOTP_SHA1_LEN);
	return ok ? BW_OK : BW_ERR_CRYPTO;
}

/* --- secrets and base32 --------------------------------------------------- */

bw_err
totp_secret_new(unsigned char secret[TOTP_SECRET_LEN])
{
	if (secret == NULL)
		return BW_ERR_INVALID;
	bw_err e = util_random(secret, TOTP_SECRET_LEN);
	if (e != BW_OK)
		crypto_wipe(secret, TOTP_SECRET_LEN);
	return e;
}

/*
 * All ones when lo <= c <= hi, else 0, without a branch: c, lo and hi are
 * below 256, so a difference that goes negative sets the top bit.
 */
static unsigned
totp_ct_range(unsigned c, unsigned lo, unsigned hi)
{
	unsigned below = (c - lo) >> (sizeof(unsigned) * 8 - 1);
	unsigned above = (hi - c) >> (sizeof(unsigned) * 8 - 1);
	return (below | above) - 1u;
}

/*
 * Base32 digit of v (0..31) with no table lookup or branch on the value:
 * the secret passes through here, and a table indexed by it would leave a
 * cache footprint.
 */
static char
totp_b32_char(unsigned v)
{
	unsigned over25 = totp_ct_range(v, 26, 31);
	return (char)('A' + v - (over25 & ('A' + 26 - '2')));
}

/* Value of base32 digit c (either case) into *v; all ones if valid, else 0. */
static unsigned
totp_b32_value(unsigned c, unsigned *v)
{
	unsigned up = totp_ct_range(c, 'A', 'Z');
	unsigned lo = totp_ct_range(c, 'a', 'z');
	unsigned dg = totp_ct_range(c, '2', '7');
	*v = ((up & (c - 'A')) | (lo & (c - 'a')) | (dg & (c - '2' + 26))) & 31u;
	return up | lo | dg;
}

bw_err
totp_base32(const unsigned char *in, size_t n, char *out, size_t outlen)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;
	if (out != NULL && outlen > 0)
		out[0] = '\0';
	if (out == NULL || (in == NULL && n > 0) || n > (SIZE_MAX - 4) / 8 ||
	    outlen < TOTP_BASE32_SIZE(n))
		return BW_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = totp_b32_char((acc >> bits) & 31u);
		}
	}
	if (bits > 0)
		out[o++] = totp_b32_char((acc << (5 - bits)) & 31u);
	out[o] = '\0';
	crypto_wipe(&acc, sizeof(acc));
	return BW_OK;
}

bw_err
totp_base32_decode(const char *in, unsigned char *out, size_t cap, size_t *n)
{
	uint32_t acc = 0;
	unsigned bits = 0, v = 0, valid = ~0u;
	size_t o = 0, len;
	bw_err e = BW_ERR_INVALID;
	if (n != NULL)
		*n = 0;
	if (in == NULL || n == NULL || (out == NULL && cap > 0))
		return BW_ERR_INVALID;
	len = strnlen(in, TOTP_BASE32_MAX_INPUT + 1);
	if (len > TOTP_BASE32_MAX_INPUT)
		goto cleanup;
	for (size_t i = 0; i < len; i++) {
		unsigned c = (unsigned char)in[i];
		if (c == ' ')
			continue; /* where spaces are is not secret */
		valid &= totp_b32_value(c, &v);
		acc = (acc << 5) | v;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap)
				goto cleanup;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/*
	 * Five or more bits left means a length no encoder produces (1, 3 or 6
	 * digits past a multiple of 8); set leftover bits mean a non-canonical
	 * encoding. Both are refused so each secret has exactly one spelling.
	 */
	if (!valid || bits >= 5 || (acc & ((1u << bits) - 1u)) != 0)
		goto cleanup;
	*n = o;
	e = BW_OK;
cleanup:
	if (e != BW_OK && o > 0)
		crypto_wipe(out, o);
	crypto_wipe(&acc, sizeof(acc));
	crypto_wipe(&v, sizeof(v));
	return e;
}

/* --- HOTP / TOTP ---------------------------------------------------------- */

bw_err
totp_code(const unsigned char *key, size_t keylen, uint64_t step, int digits,
	  char out[TOTP_CODE_SIZE])
{
	static const uint32_t pow10[] = {1000000u, 10000000u, 100000000u};
	unsigned char msg[8], mac[TOTP_SHA1_LEN];
	uint32_t bin = 0;
	bw_err e;
	if (out == NULL)
		return BW_ERR_INVALID;
	out[0] = '\0';
	if (key == NULL || keylen < TOTP_KEY_MIN || keylen > TOTP_KEY_MAX || digits < 6 ||
	    digits > 8)
		return BW_ERR_INVALID;
	for (int i = 7; i >= 0; i--, step >>= 8)
		msg[i] = (unsigned char)(step & 0xff);
	if ((e = totp_hmac_sha1(key, keylen, msg, sizeof(msg), mac)) != BW_OK)
		goto cleanup;
	/* RFC 4226 5.3: dynamic truncation to 31 bits, then the low decimal digits. */
	unsigned off = mac[TOTP_SHA1_LEN - 1] & 0x0f;
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
	      ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
	bin %= pow10[digits - 6];
	for (int i = digits - 1; i >= 0; i--, bin /= 10)
		out[i] = (char)('0' + bin % 10);
	out[digits] = '\0';
cleanup:
	crypto_wipe(mac, sizeof(mac));
	crypto_wipe(&bin, sizeof(bin));
	return e;
}

bw_err
totp_verify(const unsigned char *key, size_t keylen, const char *code, uint64_t now_unix,
	    uint64_t last_used_step, uint64_t *matched_step)
{
	char want[TOTP_CODE_SIZE];
	uint64_t step = now_unix / TOTP_PERIOD, which = 0;
	unsigned found = 0;
	bw_err e = BW_OK;
	if (key == NULL || code == NULL || matched_step == NULL)
		return BW_ERR_INVALID;
	/* The format of what was typed is not secret: check it plainly. */
	for (int i = 0; i < TOTP_DIGITS; i++)
		if (code[i] < '0' || code[i] > '9')
			return BW_ERR_INVALID;
	if (code[TOTP_DIGITS] != '\0')
		return BW_ERR_INVALID;
	/*
	 * All three windows are computed and compared whatever happens, so the
	 * time taken says nothing about which (if any) matched.
	 */
	for (unsigned i = 0; i < 3; i++) {
		uint64_t cand = step + i - 1; /* wraps for step 0, i 0: never eligible */
		unsigned eligible = (i > 0 || step > 0) && cand > last_used_step;
		if ((e = totp_code(key, keylen, cand, TOTP_DIGITS, want)) != BW_OK)
			goto cleanup;
		unsigned eq = (unsigned)(CRYPTO_memcmp(want, code, TOTP_DIGITS) == 0);
		unsigned m = eq & eligible;
		uint64_t mask = (uint64_t)0 - m;
		which = (which & ~mask) | (cand & mask); /* the latest match wins */
		found |= m;
	}
	if (found) {
		*matched_step = which;
		e = BW_OK;
	} else {
		e = BW_ERR_DENIED;
	}
cleanup:
	crypto_wipe(want, sizeof(want));
	return e;
}

/* --- otpauth URI ---------------------------------------------------------- */

/* A bounded string builder: writes stop at cap, len counts what was wanted. */
struct totp_buf {
	char *p;
	size_t cap;
	size_t len;
};

static void
totp_buf_put(struct totp_buf *b, const char *s, size_t n)
{
	if (b->p != NULL && b->len < b->cap && n < b->cap - b->len)
		memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void BW_PRINTF(2, 3)
totp_buf_printf(struct totp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;
	va_start(ap, fmt);
	if (b->p != NULL && b->len < b->cap)
		r = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	else
		r = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (r > 0)
		b->len += (size_t)r;
}

/* Fits when everything wanted plus the NUL is inside cap; terminates it. */
static int
totp_buf_done(struct totp_buf *b)
{
	if (b->p == NULL || b->len >= b->cap)
		return 0;
	b->p[b->len] = '\0';
	return 1;
}

static int
totp_label_ok(const char *s)
{
	size_t n;
	if (s == NULL || (n = strnlen(s, TOTP_LABEL_MAX + 1)) == 0 || n > TOTP_LABEL_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	return 1;
}

/* RFC 3986 percent-encoding: only unreserved characters stay as they are. */
static void
totp_buf_escape(struct totp_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			totp_buf_put(b, (const char *)&c, 1);
		} else {
			char pct[3] = {'%', hex[c >> 4], hex[c & 15]};
			totp_buf_put(b, pct, 3);
		}
	}
}

bw_err
totp_uri(const char *issuer, const char *account, const unsigned char secret[TOTP_SECRET_LEN],
	 char *out, size_t outlen)
{
	char b32[TOTP_BASE32_SIZE(TOTP_SECRET_LEN)];
	struct totp_buf b = {out, outlen, 0};
	bw_err e = BW_ERR_INVALID;
	if (out == NULL || outlen == 0)
		return BW_ERR_INVALID;
	out[0] = '\0';
	if (secret == NULL || !totp_label_ok(issuer) || !totp_label_ok(account))
		return BW_ERR_INVALID;
	if ((e = totp_base32(secret, TOTP_SECRET_LEN, b32, sizeof(b32))) != BW_OK)
		goto cleanup;
	totp_buf_put(&b, "otpauth://totp/", 15);
	totp_buf_escape(&b, issuer);
	totp_buf_put(&b, ":", 1);
	totp_buf_escape(&b, account);
	totp_buf_put(&b, "?secret=", 8);
	totp_buf_put(&b, b32, strlen(b32));
	totp_buf_put(&b, "&issuer=", 8);
	totp_buf_escape(&b, issuer);
	totp_buf_printf(&b, "&algorithm=SHA1&digits=%d&period=%d", TOTP_DIGITS, TOTP_PERIOD);
	e = totp_buf_done(&b) ? BW_OK : BW_ERR_INVALID;
cleanup:
	if (e != BW_OK)
		crypto_wipe(out, outlen); /* a partial URI may hold the secret */
	crypto_wipe(b32, sizeof(b32));
	return e;
}

/* --- QR code as SVG ------------------------------------------------------- */

/*
 * Write the SVG of qr into b (or only count it when b->p is NULL). Dark
 * modules are drawn as horizontal runs, one closed subpath "Mx yhNv1h-Nz"
 * per run, in module units offset by the quiet zone.
 */
static void
totp_svg_emit(const QRcode *qr, struct totp_buf *b)
{
	int w = qr->width, size = qr->width + 2 * TOTP_QUIET;
	totp_buf_printf(b,
			"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
			"viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
			"shape-rendering=\"crispEdges\">"
			"<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>"
			"<path fill=\"#000000\" d=\"",
			size, size, size * TOTP_SVG_SCALE, size * TOTP_SVG_SCALE, size, size);
	for (int y = 0; y < w; y++) {
		const unsigned char *row = qr->data + (size_t)y * (size_t)w;
		for (int x = 0; x < w;) {
			if (!(row[x] & 1)) {
				x++;
				continue;
			}
			int run = 1;
			while (x + run < w && (row[x + run] & 1))
				run++;
			totp_buf_printf(b, "M%d %dh%dv1h-%dz", x + TOTP_QUIET, y + TOTP_QUIET, run,
					run);
			x += run;
		}
	}
	totp_buf_put(b, "\"/></svg>", 9);
}

bw_err
totp_qr_svg(const char *text, char **svg_out)
{
	QRcode *qr = NULL;
	char *svg = NULL;
	struct totp_buf b = {NULL, 0, 0};
	size_t n;
	bw_err e;
	if (svg_out == NULL)
		return BW_ERR_INVALID;
	*svg_out = NULL;
	if (text == NULL || (n = strnlen(text, TOTP_QR_MAX_TEXT + 1)) == 0 || n > TOTP_QR_MAX_TEXT)
		return BW_ERR_INVALID;
	/* Version 0: the smallest that fits. Case-sensitive, or libqrencode upper-cases. */
	errno = 0;
	qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (qr == NULL) {
		e = errno == ENOMEM ? BW_ERR_NOMEM : errno == ERANGE || errno == EINVAL
							 ? BW_ERR_INVALID
							 : BW_ERR_INTERNAL;
		goto cleanup;
	}
	if (qr->width < 21 || qr->width > 177 || qr->data == NULL) {
		e = BW_ERR_INTERNAL;
		goto cleanup;
	}
	/* Count first, then write into exactly that much: no realloc leaving copies. */
	totp_svg_emit(qr, &b);
	if (b.len >= SIZE_MAX - 1 || (svg = malloc(b.len + 1)) == NULL) {
		e = BW_ERR_NOMEM;
		goto cleanup;
	}
	b.p = svg;
	b.cap = b.len + 1;
	b.len = 0;
	totp_svg_emit(qr, &b);
	if (!totp_buf_done(&b)) {
		e = BW_ERR_INTERNAL;
		goto cleanup;
	}
	*svg_out = svg;
	svg = NULL;
	e = BW_OK;
cleanup:
	if (svg != NULL) {
		crypto_wipe(svg, b.cap);
		free(svg);
	}
	if (qr != NULL) {
		/* The modules spell out the secret. */
		if (qr->data != NULL && qr->width > 0)
			crypto_wipe(qr->data, (size_t)qr->width * (size_t)qr->width);
		QRcode_free(qr);
	}
	return e;
}

/* --- recovery codes ------------------------------------------------------- */

#define TOTP_RND_MAX_REFILLS 64

struct totp_rnd {
	unsigned char buf[64];
	size_t pos;
	unsigned refills;
};

/*
 * An index into the 31-letter alphabet, uniform: the low five bits of a
 * random byte, drawn again when they are 31. Bounded, so a broken random
 * source cannot spin forever.
 */
static bw_err
totp_rnd_index(struct totp_rnd *r, unsigned *v)
{
	for (;;) {
		if (r->pos >= sizeof(r->buf)) {
			if (r->refills++ >= TOTP_RND_MAX_REFILLS)
				return BW_ERR_IO;
			if (util_random(r->buf, sizeof(r->buf)) != BW_OK)
				return BW_ERR_IO;
			r->pos = 0;
		}
		unsigned x = r->buf[r->pos++] & 31u;
		if (x < sizeof(TOTP_RECOVERY_ALPHABET) - 1) {
			*v = x;
			return BW_OK;
		}
	}
}

bw_err
totp_recovery_codes(char codes[TOTP_RECOVERY_COUNT][TOTP_RECOVERY_SIZE])
{
	static const char alpha[] = TOTP_RECOVERY_ALPHABET;
	struct totp_rnd r = {.pos = sizeof(r.buf)};
	unsigned v = 0;
	bw_err e = BW_OK;
	if (codes == NULL)
		return BW_ERR_INVALID;
	memset(codes, 0, TOTP_RECOVERY_COUNT * TOTP_RECOVERY_SIZE);
	for (size_t k = 0; k < TOTP_RECOVERY_COUNT; k++) {
		int dup;
		unsigned tries = 0;
		do {
			/* Two equal codes (chance about 2^-44) would be one code: draw again. */
			if (tries++ >= 4) {
				e = BW_ERR_IO;
				goto cleanup;
			}
			char *c = codes[k];
			for (size_t i = 0, o = 0; i < TOTP_RECOVERY_LEN; i++) {
				if ((e = totp_rnd_index(&r, &v)) != BW_OK)
					goto cleanup;
				if (i == TOTP_RECOVERY_LEN / 2)
					c[o++] = '-';
				c[o++] = alpha[v];
			}
			c[TOTP_RECOVERY_LEN + 1] = '\0';
			dup = 0;
			for (size_t j = 0; j < k; j++)
				dup |= crypto_equal(codes[j], c, TOTP_RECOVERY_LEN + 1);
		} while (dup);
	}
cleanup:
	if (e != BW_OK)
		crypto_wipe(codes, TOTP_RECOVERY_COUNT * TOTP_RECOVERY_SIZE);
	crypto_wipe(&r, sizeof(r));
	crypto_wipe(&v, sizeof(v));
	return e;
}

static int
totp_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bw_err
totp_recovery_normalize(const char *in, char out[TOTP_RECOVERY_LEN + 1])
{
	size_t len, start = 0, o = 0;
	if (out == NULL)
		return BW_ERR_INVALID;
	out[0] = '\0';
	/* Ten characters, a dash and some spaces: anything much longer is not a code. */
	if (in == NULL || (len = strnlen(in, 65)) > 64)
		return BW_ERR_INVALID;
	while (start < len && totp_is_space(in[start]))
		start++;
	while (len > start && totp_is_space(in[len - 1]))
		len--;
	len -= start;
	in += start;
	if (len != TOTP_RECOVERY_LEN &&
	    !(len == TOTP_RECOVERY_LEN + 1 && in[TOTP_RECOVERY_LEN / 2] == '-'))
		goto invalid;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (len == TOTP_RECOVERY_LEN + 1 && i == TOTP_RECOVERY_LEN / 2)
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '\0' || strchr(TOTP_RECOVERY_ALPHABET, c) == NULL)
			goto invalid;
		out[o++] = c;
	}
	out[o] = '\0';
	return BW_OK;
invalid:
	crypto_wipe(out, TOTP_RECOVERY_LEN + 1);
	out[0] = '\0';
	return BW_ERR_INVALID;
}
