/*
 * sig: webhook signatures on the wire (layer 2, "webhook wire").
 *
 *  - Standard Webhooks (what we send, and what we accept from senders that
 *    use it): secret "whsec_" + base64(24..64 key bytes); the signature of
 *    "<webhook-id>.<webhook-timestamp>.<body>" is "v1," + base64(HMAC-SHA256),
 *    and the webhook-signature header holds one or more of them separated by
 *    single spaces (two while a secret is rotated).
 *  - Stripe (inbound): "Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>][,v0=...]",
 *    HMAC-SHA256 keyed with the endpoint secret text as it is (not decoded)
 *    over "<t>.<body>", lower-case hex.
 *  - QuickBooks Online / Intuit (inbound): "intuit-signature: <base64>", the
 *    HMAC-SHA256 of the body keyed with the verifier token; no timestamp.
 *
 * Parsing is strict and bounded: a header longer than WHSIG_HEADER_MAX or
 * with more than WHSIG_MAX_ENTRIES entries is refused whole, base64 must be
 * canonical (padded, standard alphabet, zero unused bits), timestamps are
 * 1..19 decimal digits without sign, spaces or leading zeros. MACs are
 * compared as decoded bytes in constant time. Decoded keys and computed
 * MACs are wiped on every path. Nothing here logs.
 */
#ifndef BW_WEBHOOKS_SIG_H
#define BW_WEBHOOKS_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

#define WHSIG_PREFIX "whsec_"
#define WHSIG_KEY_MIN 24
#define WHSIG_KEY_MAX 64
#define WHSIG_KEY_NEW 32         /* bytes of a key whsig_secret_new() makes */
#define WHSIG_SECRET_LEN 51      /* "whsec_" + 44 base64 chars + NUL */
#define WHSIG_SECRET_MAX 95      /* "whsec_" + 88 chars (64 bytes) + NUL */
#define WHSIG_SIG_LEN 48         /* "v1," + 44 base64 chars + NUL */
#define WHSIG_STRIPE_SIG_LEN 90  /* "t=" + 19 digits + ",v1=" + 64 hex + NUL */
#define WHSIG_INTUIT_SIG_LEN 45  /* 44 base64 chars + NUL */
#define WHSIG_HEADER_MAX 8192    /* longest signature header looked at */
#define WHSIG_MAX_ENTRIES 16     /* signature (or key=value) entries per header */
#define WHSIG_ID_MAX 256         /* longest webhook-id */
#define WHSIG_TOKEN_MAX 1024     /* longest Stripe secret or Intuit verifier token */
#define WHSIG_TS_DIGITS 19       /* longest timestamp */
#define WHSIG_TOLERANCE 300      /* seconds: Standard Webhooks' and Stripe's default */

/* Why a verification said no (or WHSIG_OK when it said yes). */
enum whsig_why {
	WHSIG_OK = 0,
	WHSIG_MISSING,   /* a header is absent or empty, or has no entry of our scheme */
	WHSIG_MALFORMED, /* a header does not parse, or is over a limit */
	WHSIG_STALE,     /* the timestamp is further than the tolerance from now */
	WHSIG_MISMATCH,  /* well-formed, but no signature is the MAC of this message */
	WHSIG_BAD_SECRET, /* our own secret is unusable (a configuration error) */
	WHSIG__COUNT
};

/* A stable short name for why ("stale"); never NULL. */
const char *whsig_why_str(enum whsig_why why);

/* --- Standard Webhooks ---------------------------------------------------- */

/*
 * A fresh secret, "whsec_" + base64 of WHSIG_KEY_NEW random bytes, into out
 * (at least WHSIG_SECRET_LEN bytes). BW_ERR_NOMEM when out is too small,
 * BW_ERR_IO when the kernel has no randomness; out is then wiped.
 */
bw_err whsig_secret_new(char *out, size_t outlen) BW_MUST_USE;

/*
 * The key bytes of a "whsec_..." secret into key, their number into *keylen.
 * BW_ERR_INVALID (key wiped, *keylen 0) for a missing prefix, base64 that is
 * not canonical, or a key shorter than 24 or longer than 64 bytes.
 */
bw_err whsig_secret_decode(const char *secret, unsigned char key[WHSIG_KEY_MAX],
			   size_t *keylen) BW_MUST_USE;

/*
 * The signature "v1,<base64>" of body as message msg_id sent at ts into out
 * (at least WHSIG_SIG_LEN bytes). BW_ERR_INVALID for a bad secret, an id
 * that is empty, longer than WHSIG_ID_MAX or has bytes outside 0x21..0x7e,
 * a negative ts or a NULL body with a length; BW_ERR_NOMEM when out is too
 * small; BW_ERR_CRYPTO when HMAC fails. out is "" on every failure.
 */
bw_err whsig_sign(const char *secret, const char *msg_id, int64_t ts, const void *body, size_t len,
		  char *out, size_t outlen) BW_MUST_USE;

/*
 * Verify a delivery from its webhook-id, webhook-timestamp and
 * webhook-signature header values (NULL when absent) and the raw body.
 * BW_OK (*why WHSIG_OK) when one v1 entry is the MAC of the message under
 * secret and the timestamp is within tolerance seconds of now, either way
 * (the edge passes). BW_ERR_DENIED otherwise, *why saying which check
 * failed: WHSIG_MISSING, WHSIG_MALFORMED (also an entry that is not
 * "<version>,<value>", a v1 value that is not base64 of 32 bytes, more than
 * WHSIG_MAX_ENTRIES entries, or spaces other than single ones between
 * entries), WHSIG_STALE, WHSIG_MISMATCH. Entries of other versions ("v1a",
 * "v2") are skipped. BW_ERR_INVALID (WHSIG_BAD_SECRET) when secret is not a
 * valid secret, BW_ERR_INVALID (WHSIG_MALFORMED) for a negative tolerance or
 * a NULL body with a length, BW_ERR_CRYPTO when HMAC fails. why may be NULL.
 */
bw_err whsig_verify(const char *secret, const char *msg_id, const char *ts_header,
		    const char *sig_header, const void *body, size_t len, int64_t now,
		    int64_t tolerance, enum whsig_why *why) BW_MUST_USE;

/* --- Stripe --------------------------------------------------------------- */

/*
 * "t=<ts>,v1=<hex>" for body at ts under secret into out (at least
 * WHSIG_STRIPE_SIG_LEN bytes); for tests and benchmarks (we never send as
 * Stripe). Errors as whsig_sign().
 */
bw_err whsig_stripe_sign(const char *secret, int64_t ts, const void *body, size_t len, char *out,
			 size_t outlen) BW_MUST_USE;

/*
 * Verify a Stripe-Signature header value against the raw body. The header
 * is comma-separated key=value entries with no spaces; exactly one t, any
 * number of v1 (64 lower-case hex digits each), other keys (v0) skipped, at
 * most WHSIG_MAX_ENTRIES in all. BW_OK when one v1 matches and t is within
 * tolerance of now (WHSIG_TOLERANCE is Stripe's default; unlike Stripe's
 * libraries a t too far in the future is refused too); the timestamp into
 * *ts_out (when not NULL) once the whole header parses, else 0.
 * BW_ERR_DENIED with *why: WHSIG_MISSING (no header, or no v1 entry),
 * WHSIG_MALFORMED (no t, two t, a bad entry), WHSIG_STALE, WHSIG_MISMATCH.
 * BW_ERR_INVALID (WHSIG_BAD_SECRET) for a secret that is empty or longer
 * than WHSIG_TOKEN_MAX; other errors as whsig_verify().
 */
bw_err whsig_stripe_verify(const char *secret, const char *header, const void *body, size_t len,
			   int64_t now, int64_t tolerance, int64_t *ts_out,
			   enum whsig_why *why) BW_MUST_USE;

/* --- Intuit (QuickBooks Online) ------------------------------------------- */

/*
 * base64(HMAC-SHA256(verifier_token, body)) into out (at least
 * WHSIG_INTUIT_SIG_LEN bytes). Errors as whsig_sign().
 */
bw_err whsig_intuit_sign(const char *verifier_token, const void *body, size_t len, char *out,
			 size_t outlen) BW_MUST_USE;

/*
 * Verify an intuit-signature header value (exactly the base64 of 32 bytes,
 * nothing around it) against the raw body. BW_OK or BW_ERR_DENIED with
 * *why WHSIG_MISSING, WHSIG_MALFORMED or WHSIG_MISMATCH; BW_ERR_INVALID
 * (WHSIG_BAD_SECRET) for a token that is empty or longer than
 * WHSIG_TOKEN_MAX. Intuit signs no timestamp, so the
 * caller must de-duplicate replays itself (by the event ids in the body).
 */
bw_err whsig_intuit_verify(const char *verifier_token, const char *header, const void *body,
			   size_t len, enum whsig_why *why) BW_MUST_USE;

#endif
