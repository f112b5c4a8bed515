/*
 * totp: the building blocks of TOTP second factors (RFC 4226 HOTP, RFC 6238
 * TOTP with HMAC-SHA1, 30-second steps, 6 digits), the enrolment URI and QR
 * code, and one-time recovery codes. Storage, rate limiting and the hashing
 * of recovery codes (argon2id) belong to the caller.
 *
 * Every function wipes the secrets it copies on every path; none logs.
 */
#ifndef BW_TOTP_H
#define BW_TOTP_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

#define TOTP_SECRET_LEN 20 /* 160 bits, RFC 4226's recommendation */
#define TOTP_KEY_MIN 16    /* RFC 4226 R6: at least 128 bits */
#define TOTP_KEY_MAX 64
#define TOTP_PERIOD 30
#define TOTP_DIGITS 6
#define TOTP_CODE_SIZE 11 /* up to 10 characters and the NUL */
/* Base32 text of n bytes, unpadded, with its NUL. */
#define TOTP_BASE32_SIZE(n) (((n) * 8 + 4) / 5 + 1)
/* Longest base32 input totp_base32_decode() reads, spaces included. */
#define TOTP_BASE32_MAX_INPUT 1024
/* Longest issuer or account name in an otpauth URI (bytes, before escaping). */
#define TOTP_LABEL_MAX 256
/* Longest text totp_qr_svg() encodes. */
#define TOTP_QR_MAX_TEXT 2048

#define TOTP_RECOVERY_COUNT 10
#define TOTP_RECOVERY_LEN 10      /* characters, without the dash */
#define TOTP_RECOVERY_SIZE 16     /* "xxxxx-xxxxx" and the NUL fit */
#define TOTP_RECOVERY_ALPHABET "abcdefghjkmnpqrstuvwxyz23456789"

/* A fresh 160-bit secret from the kernel CSPRNG; BW_ERR_IO when it fails. */
bw_err totp_secret_new(unsigned char secret[TOTP_SECRET_LEN]) BW_MUST_USE;

/*
 * RFC 4648 base32 of in[0..n) into out, upper case, without '=' padding
 * (what authenticator apps expect). BW_ERR_INVALID when out (outlen bytes)
 * cannot hold TOTP_BASE32_SIZE(n); out is then an empty string.
 */
bw_err totp_base32(const unsigned char *in, size_t n, char *out, size_t outlen) BW_MUST_USE;

/*
 * Decode base32 text (either case, spaces ignored, no '=' padding) into out
 * (cap bytes); the length into *n. BW_ERR_INVALID for any other character,
 * a length no encoder produces, non-zero trailing bits, input longer than
 * TOTP_BASE32_MAX_INPUT or output that does not fit; out is wiped then.
 */
bw_err totp_base32_decode(const char *in, unsigned char *out, size_t cap, size_t *n) BW_MUST_USE;

/*
 * The HOTP value (RFC 4226) of key for counter step: HMAC-SHA1 of the
 * 8-byte big-endian counter, dynamic truncation, digits (6..8) decimal
 * digits, zero-padded, into out. TOTP is this with step = unix time / 30.
 * BW_ERR_INVALID for a key outside TOTP_KEY_MIN..TOTP_KEY_MAX bytes or
 * digits out of range, BW_ERR_CRYPTO when OpenSSL fails; out is "" then.
 */
bw_err totp_code(const unsigned char *key, size_t keylen, uint64_t step, int digits,
		 char out[TOTP_CODE_SIZE]) BW_MUST_USE;

/*
 * Check a 6-digit TOTP code typed at now_unix. The steps now/30 - 1, now/30
 * and now/30 + 1 are tried (clock drift of one step either way), all three
 * always, each compared in constant time; a step <= last_used_step is never
 * accepted, so a code works at most once (store *matched_step as the new
 * last_used_step). If the code matches two eligible steps, the later one is
 * reported so that neither can be replayed.
 *
 * BW_OK and *matched_step on a match; BW_ERR_INVALID when code is not
 * exactly six ASCII digits; BW_ERR_DENIED when nothing eligible matches
 * (wrong, expired, or replayed); BW_ERR_CRYPTO when HMAC fails.
 * *matched_step is written only on BW_OK.
 */
bw_err totp_verify(const unsigned char *key, size_t keylen, const char *code, uint64_t now_unix,
		   uint64_t last_used_step, uint64_t *matched_step) BW_MUST_USE;

/*
 * The enrolment URI
 *   otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
 * with issuer and account percent-encoded (only RFC 3986 unreserved
 * characters kept). BW_ERR_INVALID for an empty or over-long issuer or
 * account, one with control characters, or an out buffer that is too small
 * (out is wiped then: it would hold the secret).
 */
bw_err totp_uri(const char *issuer, const char *account,
		const unsigned char secret[TOTP_SECRET_LEN], char *out, size_t outlen) BW_MUST_USE;

/*
 * A QR code (ECC level M, byte mode, libqrencode) of text as a self-contained
 * SVG document: one <path> of dark modules in a viewBox of module units with
 * a 4-module quiet zone, no scripts, styles or links. *svg_out is malloc'd;
 * the caller frees it (and, since it encodes the secret, should wipe it
 * first). BW_ERR_INVALID for empty text or text over TOTP_QR_MAX_TEXT or too
 * long for any QR version; BW_ERR_NOMEM; *svg_out is NULL on failure.
 */
bw_err totp_qr_svg(const char *text, char **svg_out) BW_MUST_USE;

/*
 * Ten fresh, distinct recovery codes "xxxxx-xxxxx", each character uniformly
 * from TOTP_RECOVERY_ALPHABET (31 characters, no 0/o/1/l/i): about 49.5 bits
 * each. BW_ERR_IO when randomness fails; codes are wiped then.
 */
bw_err totp_recovery_codes(char codes[TOTP_RECOVERY_COUNT][TOTP_RECOVERY_SIZE]) BW_MUST_USE;

/*
 * A recovery code as typed (surrounding spaces, any case, with or without
 * the dash after the fifth character) in canonical form: ten lower-case
 * characters, into out. BW_ERR_INVALID for anything else; out is "" then.
 */
bw_err totp_recovery_normalize(const char *in, char out[TOTP_RECOVERY_LEN + 1]) BW_MUST_USE;

#endif
