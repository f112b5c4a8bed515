/*
 * Webhook signatures: the published Standard Webhooks vector, Stripe and
 * Intuit vectors computed independently with Python's hmac, and every
 * check of the parsers (each malformed input below is accepted by some
 * laxer parser; the test names the control it keeps).
 *
 * Strings handed to the parsers are copied into buffers of exactly their
 * size, and bodies are not NUL-terminated, so that AddressSanitizer sees
 * any read past the end.
 */
#include "unit.h"

#include <openssl/evp.h>

#include "webhooks/sig.h"

/*
 * The Standard Webhooks test vector, as published by the reference
 * libraries: repository standard-webhooks/standard-webhooks, file
 * libraries/go/webhook_test.go (TestWebhookSign); the same values appear in
 * the PHP, JavaScript and Java tests of that repository. Checked again with
 *   /usr/bin/python3 -c 'import hmac,hashlib,base64; k=base64.b64decode(
 *     "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); print(base64.b64encode(hmac.new(k,
 *     b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}",
 *     hashlib.sha256).digest()))'
 * The key is 24 bytes: the shortest the format allows.
 */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS 1614265330
#define SW_TS_TEXT "1614265330"
#define SW_BODY "{\"test\": 2432232314}"
#define SW_MAC_B64 "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_SIG "v1," SW_MAC_B64
/* a well-formed v1 entry that is not the MAC (from the same reference tests) */
#define SW_OTHER "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

/*
 * Stripe: the endpoint secret text is the HMAC key as it is. Computed with
 *   /usr/bin/python3 -c 'import hmac,hashlib; print(hmac.new(
 *     b"whsec_bulwark_stripe_test",
 *     b"1700000000.{\"id\":\"evt_1\",\"object\":\"event\"}",
 *     hashlib.sha256).hexdigest())'
 * and the same with key b"whsec_bulwark_stripe_old" for ST_OLD_HEX.
 */
#define ST_SECRET "whsec_bulwark_stripe_test"
#define ST_TS 1700000000
#define ST_BODY "{\"id\":\"evt_1\",\"object\":\"event\"}"
#define ST_HEX "712d4f63771133dfe0c9b93acabf993d35c22e679917b19a9844250347037754"
#define ST_OLD_HEX "5136052aad822781980f1590eacde2457a6fca737b527f213a9541eb0319739f"

/*
 * Intuit: base64 of the HMAC of the body under the verifier token.
 *   /usr/bin/python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(
 *     hmac.new(b"bulwark-verifier-token",
 *     b"{\"eventNotifications\":[{\"realmId\":\"1185883450\"}]}",
 *     hashlib.sha256).digest()).decode())'
 */
#define QB_TOKEN "bulwark-verifier-token"
#define QB_BODY "{\"eventNotifications\":[{\"realmId\":\"1185883450\"}]}"
#define QB_SIG "gA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs="

/* --- helpers -------------------------------------------------------------- */

/* s in a buffer of exactly strlen(s) + 1 bytes (NULL stays NULL). */
static char *
exact(const char *s)
{
	if (s == NULL)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

/* The body as bytes in a buffer of exactly its length, no NUL after it. */
static unsigned char *
body_copy(const char *s, size_t *len)
{
	*len = strlen(s);
	unsigned char *p = malloc(*len ? *len : 1);
	assert_non_null(p);
	memcpy(p, s, *len);
	return p;
}

/* whsig_verify on exact copies; returns *why, the error into *err. */
static enum whsig_why
sw(const char *secret, const char *id, const char *ts, const char *sig, const char *body,
   int64_t now, int64_t tol, bw_err *err)
{
	size_t len;
	unsigned char *b = body_copy(body, &len);
	char *cs = exact(secret), *ci = exact(id), *ct = exact(ts), *cg = exact(sig);
	enum whsig_why why = WHSIG__COUNT;
	bw_err e = whsig_verify(cs, ci, ct, cg, b, len, now, tol, &why);
	if (err != NULL)
		*err = e;
	/* the two answers agree: success exactly when the reason is "ok" */
	assert_int_equal(e == BW_OK, why == WHSIG_OK);
	free(cs), free(ci), free(ct), free(cg), free(b);
	return why;
}

/* The vector's message with signature header sig, verified at its own time. */
static enum whsig_why
sw_sig(const char *sig)
{
	return sw(SW_SECRET, SW_ID, SW_TS_TEXT, sig, SW_BODY, SW_TS, WHSIG_TOLERANCE, NULL);
}

static enum whsig_why
st(const char *secret, const char *header, const char *body, int64_t now, int64_t *ts_out)
{
	size_t len;
	unsigned char *b = body_copy(body, &len);
	char *cs = exact(secret), *ch = exact(header);
	enum whsig_why why = WHSIG__COUNT;
	bw_err e = whsig_stripe_verify(cs, ch, b, len, now, WHSIG_TOLERANCE, ts_out, &why);
	assert_int_equal(e == BW_OK, why == WHSIG_OK);
	if (e != BW_OK && why != WHSIG_BAD_SECRET)
		assert_int_equal(e, BW_ERR_DENIED);
	free(cs), free(ch), free(b);
	return why;
}

static enum whsig_why
qb(const char *token, const char *header, const char *body)
{
	size_t len;
	unsigned char *b = body_copy(body, &len);
	char *ct = exact(token), *ch = exact(header);
	enum whsig_why why = WHSIG__COUNT;
	bw_err e = whsig_intuit_verify(ct, ch, b, len, &why);
	assert_int_equal(e == BW_OK, why == WHSIG_OK);
	if (e != BW_OK && why != WHSIG_BAD_SECRET)
		assert_int_equal(e, BW_ERR_DENIED);
	free(ct), free(ch), free(b);
	return why;
}

/* "v1," + base64 of the vector's MAC with bit `bit` flipped. */
static void
flipped_sig(int bit, char out[WHSIG_SIG_LEN])
{
	unsigned char mac[48];
	assert_int_equal(EVP_DecodeBlock(mac, (const unsigned char *)SW_MAC_B64, 44), 33);
	mac[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	memcpy(out, "v1,", 3);
	assert_int_equal(EVP_EncodeBlock((unsigned char *)out + 3, mac, 32), 44);
}

/* --- Standard Webhooks ---------------------------------------------------- */

static void
test_sw_published_vector(void **state)
{
	(void)state;
	char out[WHSIG_SIG_LEN];
	bw_err e;
	assert_int_equal(whsig_sign(SW_SECRET, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY), out,
				    sizeof(out)),
			 BW_OK);
	assert_string_equal(out, SW_SIG);
	assert_int_equal(sw(SW_SECRET, SW_ID, SW_TS_TEXT, SW_SIG, SW_BODY, SW_TS, 300, &e),
			 WHSIG_OK);
	assert_int_equal(e, BW_OK);
	/* one byte short of room: refused, and out left empty */
	assert_int_equal(whsig_sign(SW_SECRET, SW_ID, SW_TS, SW_BODY, strlen(SW_BODY), out,
				    WHSIG_SIG_LEN - 1),
			 BW_ERR_NOMEM);
	assert_string_equal(out, "");
}

static void
test_sw_secret_new_roundtrip(void **state)
{
	(void)state;
	char s1[WHSIG_SECRET_LEN], s2[WHSIG_SECRET_LEN], sig[WHSIG_SIG_LEN];
	unsigned char key[WHSIG_KEY_MAX];
	size_t kl = 0;
	assert_int_equal(whsig_secret_new(s1, sizeof(s1)), BW_OK);
	assert_int_equal(whsig_secret_new(s2, sizeof(s2)), BW_OK);
	assert_int_equal(strlen(s1), WHSIG_SECRET_LEN - 1);
	assert_memory_equal(s1, "whsec_", 6);
	assert_string_not_equal(s1, s2);
	assert_int_equal(whsig_secret_decode(s1, key, &kl), BW_OK);
	assert_int_equal(kl, WHSIG_KEY_NEW);
	assert_int_equal(whsig_secret_new(s1, WHSIG_SECRET_LEN - 1), BW_ERR_NOMEM);
	assert_int_equal(whsig_secret_new(s1, sizeof(s1)), BW_OK);

	const char *body = "{\"type\":\"invoice.paid\",\"data\":{\"id\":42}}";
	int64_t ts = 1767225600;
	assert_int_equal(whsig_sign(s1, "msg_2a", ts, body, strlen(body), sig, sizeof(sig)),
			 BW_OK);
	assert_int_equal(strlen(sig), WHSIG_SIG_LEN - 1);
	assert_int_equal(sw(s1, "msg_2a", "1767225600", sig, body, ts, 300, NULL), WHSIG_OK);
	/* the other secret does not verify it */
	assert_int_equal(sw(s2, "msg_2a", "1767225600", sig, body, ts, 300, NULL),
			 WHSIG_MISMATCH);
	/* an empty body is a body */
	assert_int_equal(whsig_sign(s1, "msg_2b", ts, NULL, 0, sig, sizeof(sig)), BW_OK);
	assert_int_equal(sw(s1, "msg_2b", "1767225600", sig, "", ts, 300, NULL), WHSIG_OK);
	/* the signer refuses what the verifier would refuse */
	assert_int_equal(whsig_sign(s1, "", ts, body, 1, sig, sizeof(sig)), BW_ERR_INVALID);
	assert_int_equal(whsig_sign(s1, "msg 2", ts, body, 1, sig, sizeof(sig)), BW_ERR_INVALID);
	assert_int_equal(whsig_sign(s1, "msg_2", -1, body, 1, sig, sizeof(sig)), BW_ERR_INVALID);
	assert_int_equal(whsig_sign(s1, "msg_2", ts, NULL, 1, sig, sizeof(sig)), BW_ERR_INVALID);
	assert_int_equal(whsig_sign("whsec_", "msg_2", ts, body, 1, sig, sizeof(sig)),
			 BW_ERR_INVALID);
}

static void
test_sw_secret_decode(void **state)
{
	(void)state;
	unsigned char key[WHSIG_KEY_MAX];
	size_t kl;
	char s[200];
	/* lengths at both bounds pass; one past each fails */
	static const struct {
		int a;      /* 'A's */
		int pad;    /* '='s */
		int bytes;  /* what that is */
	} sizes[] = {{31, 1, 23}, {32, 0, 24}, {86, 2, 64}, {87, 1, 65}, {88, 0, 66}};
	for (size_t i = 0; i < BW_ARRAY_LEN(sizes); i++) {
		snprintf(s, sizeof(s), "whsec_%.*s%.*s", sizes[i].a,
			 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			 sizes[i].pad, "==");
		int ok = sizes[i].bytes >= 24 && sizes[i].bytes <= 64;
		memset(key, 0xaa, sizeof(key));
		kl = 99;
		assert_int_equal(whsig_secret_decode(s, key, &kl), ok ? BW_OK : BW_ERR_INVALID);
		assert_int_equal(kl, ok ? (size_t)sizes[i].bytes : 0);
		if (!ok) { /* wiped on the failure path */
			static const unsigned char zero[WHSIG_KEY_MAX];
			assert_memory_equal(key, zero, sizeof(key));
		}
	}
	static const char *const bad[] = {
	    NULL,
	    "",
	    "whsec_",
	    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",             /* no prefix */
	    "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",        /* another prefix */
	    "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",        /* not a multiple of 4 */
	    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw    ",   /* EVP_DecodeBlock trims this */
	    "whsec_    MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	    "whsec_MfKQ9r8GKYqrTwjU\nD8ILPZIo2LaLaSw",
	    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w",       /* base64url is another alphabet */
	    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La=aSw",       /* padding in the middle */
	    "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB==",   /* unused bits set */
	    "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA===",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		char *c = exact(bad[i]);
		kl = 99;
		assert_int_equal(whsig_secret_decode(c, key, &kl), BW_ERR_INVALID);
		assert_int_equal(kl, 0);
		free(c);
	}
	/* the canonical twin of the unused-bits case is fine (25 zero bytes) */
	assert_int_equal(whsig_secret_decode("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", key, &kl),
			 BW_OK);
	assert_int_equal(kl, 25);
	/* over the longest secret text at all */
	memset(s, 'A', sizeof(s));
	memcpy(s, "whsec_", 6);
	s[6 + 92] = '\0';
	assert_int_equal(whsig_secret_decode(s, key, &kl), BW_ERR_INVALID);
	/* and a bad secret is the verifier's configuration error, not a denial */
	bw_err e;
	assert_int_equal(sw("whsec_xx", SW_ID, SW_TS_TEXT, SW_SIG, SW_BODY, SW_TS, 300, &e),
			 WHSIG_BAD_SECRET);
	assert_int_equal(e, BW_ERR_INVALID);
}

static void
test_sw_rotation_two_signatures(void **state)
{
	(void)state;
	/* only the second matches (the new key signs first during a rotation) */
	assert_int_equal(sw_sig(SW_OTHER " " SW_SIG), WHSIG_OK);
	assert_int_equal(sw_sig(SW_SIG " " SW_OTHER), WHSIG_OK);
	/* another version beside ours is skipped, whatever it holds */
	assert_int_equal(sw_sig("v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7A"
				"ZdpXwVLPo3mNl8EM+m7TBAg== " SW_SIG),
			 WHSIG_OK);
	assert_int_equal(sw_sig(SW_OTHER " " SW_OTHER), WHSIG_MISMATCH);
	/* sixteen entries are looked at, the last one too */
	char h[2048] = "";
	for (int i = 0; i < 15; i++)
		strcat(h, SW_OTHER " ");
	strcat(h, SW_SIG);
	assert_int_equal(sw_sig(h), WHSIG_OK);
}

static void
test_sw_one_bit_changes(void **state)
{
	(void)state;
	char sig[WHSIG_SIG_LEN];
	/* body: '2' (0x32) to '3' (0x33) is one bit */
	assert_int_equal(sw(SW_SECRET, SW_ID, SW_TS_TEXT, SW_SIG, "{\"test\": 2432232315}", SW_TS,
			    300, NULL),
			 WHSIG_MISMATCH);
	/* id: 'k' (0x6b) to 'j' (0x6a) */
	assert_int_equal(sw(SW_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJej", SW_TS_TEXT, SW_SIG,
			    SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MISMATCH);
	/* timestamp: ...330 to ...331, still within the tolerance */
	assert_int_equal(sw(SW_SECRET, SW_ID, "1614265331", SW_SIG, SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MISMATCH);
	/* key: the last key bit (w = 48 -> x = 49 flips it; both are canonical) */
	assert_int_equal(sw("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx", SW_ID, SW_TS_TEXT, SW_SIG,
			    SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MISMATCH);
	/* the signature: every bit of the MAC matters, the first and last too */
	static const int bits[] = {0, 1, 7, 8, 100, 128, 254, 255};
	for (size_t i = 0; i < BW_ARRAY_LEN(bits); i++) {
		flipped_sig(bits[i], sig);
		assert_int_equal(sw_sig(sig), WHSIG_MISMATCH);
	}
	/* a body with a NUL inside is signed to its length, not to the NUL */
	unsigned char b1[4] = {'a', 0, 'b', 'c'}, b2[4] = {'a', 0, 'b', 'd'};
	enum whsig_why why;
	assert_int_equal(whsig_sign(SW_SECRET, SW_ID, SW_TS, b1, 4, sig, sizeof(sig)), BW_OK);
	assert_int_equal(whsig_verify(SW_SECRET, SW_ID, SW_TS_TEXT, sig, b1, 4, SW_TS, 300, &why),
			 BW_OK);
	assert_int_equal(whsig_verify(SW_SECRET, SW_ID, SW_TS_TEXT, sig, b2, 4, SW_TS, 300, &why),
			 BW_ERR_DENIED);
	assert_int_equal(why, WHSIG_MISMATCH);
}

static void
test_sw_timestamps(void **state)
{
	(void)state;
	char ts[32], sig[WHSIG_SIG_LEN];
	const int64_t t = 1767225600, tol = 300;
	snprintf(ts, sizeof(ts), "%lld", (long long)t);
	assert_int_equal(whsig_sign(SW_SECRET, SW_ID, t, SW_BODY, strlen(SW_BODY), sig,
				    sizeof(sig)),
			 BW_OK);
	/* at the edges both ways: accepted */
	assert_int_equal(sw(SW_SECRET, SW_ID, ts, sig, SW_BODY, t + tol, tol, NULL), WHSIG_OK);
	assert_int_equal(sw(SW_SECRET, SW_ID, ts, sig, SW_BODY, t - tol, tol, NULL), WHSIG_OK);
	/* one second past: stale (an old delivery), and from the future */
	assert_int_equal(sw(SW_SECRET, SW_ID, ts, sig, SW_BODY, t + tol + 1, tol, NULL),
			 WHSIG_STALE);
	assert_int_equal(sw(SW_SECRET, SW_ID, ts, sig, SW_BODY, t - tol - 1, tol, NULL),
			 WHSIG_STALE);
	/* a tolerance of 0 means this second only */
	assert_int_equal(sw(SW_SECRET, SW_ID, ts, sig, SW_BODY, t, 0, NULL), WHSIG_OK);
	assert_int_equal(sw(SW_SECRET, SW_ID, ts, sig, SW_BODY, t + 1, 0, NULL), WHSIG_STALE);
	/* far ends do not overflow into "close" */
	assert_int_equal(sw(SW_SECRET, SW_ID, "9223372036854775807", sig, SW_BODY, INT64_MIN, tol,
			    NULL),
			 WHSIG_STALE);
	assert_int_equal(sw(SW_SECRET, SW_ID, "0", sig, SW_BODY, INT64_MAX, tol, NULL),
			 WHSIG_STALE);
	assert_int_equal(sw(SW_SECRET, SW_ID, "0", sig, SW_BODY, INT64_MIN, tol, NULL),
			 WHSIG_STALE);
	/* a negative tolerance is the caller's mistake */
	bw_err e;
	assert_int_equal(sw(SW_SECRET, SW_ID, ts, sig, SW_BODY, t, -1, &e), WHSIG_MALFORMED);
	assert_int_equal(e, BW_ERR_INVALID);
}

static void
test_sw_malformed(void **state)
{
	(void)state;
	/* signature headers: each refused as malformed, none crashes */
	static const char *const bad_sig[] = {
	    "v1,",
	    "v1,@@@",
	    "v1",
	    ",",
	    ",abc",
	    "v1," SW_MAC_B64 " ",                  /* trailing space */
	    " v1," SW_MAC_B64,                     /* leading space */
	    SW_OTHER "  " SW_SIG,                  /* two spaces */
	    SW_OTHER "\t" SW_SIG,                  /* a tab is not the separator */
	    SW_OTHER "," SW_SIG,
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",  /* padding cut */
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", /* unused bits set: same bytes */
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n",
	    "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=", /* base64url */
	    "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* 45 bytes */
	    "v1,AAAA",                                      /* 3 bytes */
	    "V1," SW_MAC_B64,                               /* versions are lower case */
	    "v1 ," SW_MAC_B64,
	    "v1,," SW_MAC_B64,
	    "vvvvvvvvv1," SW_MAC_B64,                       /* over 8 characters */
	    "v1a,abc\x01" " " SW_SIG,                       /* control byte in a skipped entry */
	    "v1a,abc\xff" " " SW_SIG,
	    "v1a, " SW_SIG,                                 /* empty value */
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad_sig); i++) {
		enum whsig_why w = sw_sig(bad_sig[i]);
		if (w != WHSIG_MALFORMED)
			fail_msg("signature header %zu (\"%s\"): %s", i, bad_sig[i], whsig_why_str(w));
	}
	/* 17 and 20 entries: refused whole, though the right one is among them */
	char h[2048] = "";
	for (int i = 0; i < 16; i++)
		strcat(h, SW_OTHER " ");
	strcat(h, SW_SIG);
	assert_int_equal(sw_sig(h), WHSIG_MALFORMED);
	h[0] = '\0';
	strcat(h, SW_SIG);
	for (int i = 0; i < 19; i++)
		strcat(h, " " SW_OTHER);
	assert_int_equal(sw_sig(h), WHSIG_MALFORMED);
	/* a huge header (over 8 KiB), whose first entry is the right one */
	size_t big = WHSIG_HEADER_MAX + 100;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	memset(huge, 'A', big);
	memcpy(huge, SW_SIG " v1a,", strlen(SW_SIG " v1a,"));
	huge[big] = '\0';
	assert_int_equal(sw_sig(huge), WHSIG_MALFORMED);
	free(huge);

	/* timestamps */
	static const char *const bad_ts[] = {
	    "+1614265330", " 1614265330", "1614265330 ", "-1614265330", "16142653a0", "0x603",
	    "01614265330", "1614265330.0", "1.6e9", "00", "99999999999999999999", /* 20 digits */
	    "9999999999999999999", /* 19 digits, over INT64_MAX */
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad_ts); i++) {
		enum whsig_why w =
		    sw(SW_SECRET, SW_ID, bad_ts[i], SW_SIG, SW_BODY, SW_TS, 300, NULL);
		if (w != WHSIG_MALFORMED)
			fail_msg("timestamp \"%s\": %s", bad_ts[i], whsig_why_str(w));
	}
	assert_int_equal(sw(SW_SECRET, SW_ID, "+123", SW_SIG, SW_BODY, 123, 300, NULL),
			 WHSIG_MALFORMED);
	assert_int_equal(sw(SW_SECRET, SW_ID, " 123", SW_SIG, SW_BODY, 123, 300, NULL),
			 WHSIG_MALFORMED);
	/* ids */
	char longid[WHSIG_ID_MAX + 2];
	memset(longid, 'm', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	assert_int_equal(sw(SW_SECRET, longid, SW_TS_TEXT, SW_SIG, SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MALFORMED);
	assert_int_equal(sw(SW_SECRET, "msg p5j", SW_TS_TEXT, SW_SIG, SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MALFORMED);

	/* absent or empty headers */
	assert_int_equal(sw_sig(NULL), WHSIG_MISSING);
	assert_int_equal(sw_sig(""), WHSIG_MISSING);
	assert_int_equal(sw(SW_SECRET, NULL, SW_TS_TEXT, SW_SIG, SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MISSING);
	assert_int_equal(sw(SW_SECRET, "", SW_TS_TEXT, SW_SIG, SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MISSING);
	assert_int_equal(sw(SW_SECRET, SW_ID, NULL, SW_SIG, SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MISSING);
	assert_int_equal(sw(SW_SECRET, SW_ID, "", SW_SIG, SW_BODY, SW_TS, 300, NULL),
			 WHSIG_MISSING);
	/* why may be NULL */
	assert_int_equal(whsig_verify(SW_SECRET, SW_ID, SW_TS_TEXT, "v1,@@@", SW_BODY,
				      strlen(SW_BODY), SW_TS, 300, NULL),
			 BW_ERR_DENIED);
}

static void
test_sw_other_versions_not_accepted(void **state)
{
	(void)state;
	/* the right MAC under another version is not a v1 signature */
	assert_int_equal(sw_sig("v2," SW_MAC_B64), WHSIG_MISSING);
	assert_int_equal(sw_sig("v1a," SW_MAC_B64), WHSIG_MISSING);
	assert_int_equal(sw_sig("v0," SW_MAC_B64), WHSIG_MISSING);
	assert_int_equal(sw_sig("v2," SW_MAC_B64 " " SW_OTHER), WHSIG_MISMATCH);
	/* nor without its version */
	assert_int_equal(sw_sig(SW_MAC_B64), WHSIG_MALFORMED);
}

static void
test_why_str(void **state)
{
	(void)state;
	assert_string_equal(whsig_why_str(WHSIG_OK), "ok");
	assert_string_equal(whsig_why_str(WHSIG_MISSING), "missing");
	assert_string_equal(whsig_why_str(WHSIG_MALFORMED), "malformed");
	assert_string_equal(whsig_why_str(WHSIG_STALE), "stale");
	assert_string_equal(whsig_why_str(WHSIG_MISMATCH), "mismatch");
	assert_string_equal(whsig_why_str(WHSIG_BAD_SECRET), "bad_secret");
	assert_string_equal(whsig_why_str(WHSIG__COUNT), "unknown");
	assert_string_equal(whsig_why_str((enum whsig_why)-1), "unknown");
}

/* --- Stripe --------------------------------------------------------------- */

#define ST_T "t=1700000000"

static void
test_stripe_vector(void **state)
{
	(void)state;
	char out[WHSIG_STRIPE_SIG_LEN];
	int64_t ts = -1;
	assert_int_equal(whsig_stripe_sign(ST_SECRET, ST_TS, ST_BODY, strlen(ST_BODY), out,
					   sizeof(out)),
			 BW_OK);
	assert_string_equal(out, ST_T ",v1=" ST_HEX);
	assert_int_equal(st(ST_SECRET, out, ST_BODY, ST_TS, &ts), WHSIG_OK);
	assert_int_equal(ts, ST_TS);
	/* Stripe's key is the secret text: decoding it as base64 would be wrong */
	assert_int_equal(st("bulwark_stripe_test", out, ST_BODY, ST_TS, NULL), WHSIG_MISMATCH);
	/* a longest timestamp fits the documented size */
	assert_int_equal(whsig_stripe_sign(ST_SECRET, INT64_MAX, "", 0, out, sizeof(out)), BW_OK);
	assert_int_equal(strlen(out), WHSIG_STRIPE_SIG_LEN - 1);
	assert_int_equal(whsig_stripe_sign(ST_SECRET, ST_TS, "", 0, out, 20), BW_ERR_NOMEM);
	assert_int_equal(whsig_stripe_sign("", ST_TS, "", 0, out, sizeof(out)), BW_ERR_INVALID);
}

static void
test_stripe_entries(void **state)
{
	(void)state;
	int64_t ts = -1;
	/* several v1: any one will do, in any place */
	assert_int_equal(st(ST_SECRET, ST_T ",v1=" ST_OLD_HEX ",v1=" ST_HEX, ST_BODY, ST_TS, NULL),
			 WHSIG_OK);
	assert_int_equal(st(ST_SECRET, "v1=" ST_HEX "," ST_T, ST_BODY, ST_TS, NULL), WHSIG_OK);
	assert_int_equal(st(ST_SECRET, ST_T ",v1=" ST_OLD_HEX, ST_BODY, ST_TS, NULL),
			 WHSIG_MISMATCH);
	/* v0 is skipped, even when it holds the right MAC */
	assert_int_equal(st(ST_SECRET, ST_T ",v1=" ST_HEX ",v0=6ffbb59b2300aabb", ST_BODY, ST_TS,
			    NULL),
			 WHSIG_OK);
	assert_int_equal(st(ST_SECRET, ST_T ",v0=" ST_HEX, ST_BODY, ST_TS, &ts), WHSIG_MISSING);
	assert_int_equal(ts, ST_TS);
	assert_int_equal(st(ST_SECRET, ST_T ",v2=" ST_HEX, ST_BODY, ST_TS, NULL), WHSIG_MISSING);
	/* one bit of the body */
	assert_int_equal(st(ST_SECRET, ST_T ",v1=" ST_HEX, "{\"id\":\"evt_0\",\"object\":\"event\"}",
			    ST_TS, NULL),
			 WHSIG_MISMATCH);
	/* the timestamp is signed: another t within the tolerance does not verify */
	assert_int_equal(st(ST_SECRET, "t=1700000001,v1=" ST_HEX, ST_BODY, ST_TS, NULL),
			 WHSIG_MISMATCH);
	/* sixteen entries in all are looked at */
	char h[2048] = ST_T;
	for (int i = 0; i < 14; i++)
		strcat(h, ",v1=" ST_OLD_HEX);
	strcat(h, ",v1=" ST_HEX);
	assert_int_equal(st(ST_SECRET, h, ST_BODY, ST_TS, NULL), WHSIG_OK);
}

static void
test_stripe_refused(void **state)
{
	(void)state;
	int64_t ts = -1;
	/* no t */
	assert_int_equal(st(ST_SECRET, "v1=" ST_HEX, ST_BODY, ST_TS, &ts), WHSIG_MALFORMED);
	assert_int_equal(ts, 0);
	/* stale, future, and the edges */
	assert_int_equal(st(ST_SECRET, ST_T ",v1=" ST_HEX, ST_BODY, ST_TS + 301, NULL), WHSIG_STALE);
	assert_int_equal(st(ST_SECRET, ST_T ",v1=" ST_HEX, ST_BODY, ST_TS - 301, NULL), WHSIG_STALE);
	assert_int_equal(st(ST_SECRET, ST_T ",v1=" ST_HEX, ST_BODY, ST_TS + 300, NULL), WHSIG_OK);
	assert_int_equal(st(ST_SECRET, ST_T ",v1=" ST_HEX, ST_BODY, ST_TS - 300, NULL), WHSIG_OK);
	static const char *const bad[] = {
	    ST_T ",t=1700000000,v1=" ST_HEX,                   /* two t */
	    ST_T ", v1=" ST_HEX,                               /* a space */
	    " " ST_T ",v1=" ST_HEX,
	    ST_T ",v1=" ST_HEX " ",
	    ST_T ",v1 =" ST_HEX,
	    ST_T ",,v1=" ST_HEX,                               /* an empty entry */
	    ST_T ",v1=" ST_HEX ",",
	    ST_T ";v1=" ST_HEX,
	    ST_T ",v1",
	    ST_T ",v1=",
	    ST_T ",=" ST_HEX,
	    ST_T ",v1=" ST_HEX "00",                           /* 66 digits */
	    ST_T ",v1=712d4f63771133dfe0c9b93acabf993d35c22e679917b19a984425034703775", /* 63 */
	    ST_T ",v1=712D4F63771133DFE0C9B93ACABF993D35C22E679917B19A9844250347037754", /* upper */
	    ST_T ",v1=712d4f63771133dfe0c9b93acabf993d35c22e679917b19a984425034703775g",
	    "t=+1700000000,v1=" ST_HEX,
	    "t= 1700000000,v1=" ST_HEX,
	    "t=01700000000,v1=" ST_HEX,
	    "t=-1,v1=" ST_HEX,
	    "t=17000000000000000000,v1=" ST_HEX,
	    "t=,v1=" ST_HEX,
	    "T=1700000000,v1=" ST_HEX,
	    ST_T ",v1=" ST_HEX ",v0=a\x01",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		enum whsig_why w = st(ST_SECRET, bad[i], ST_BODY, ST_TS, NULL);
		if (w != WHSIG_MALFORMED)
			fail_msg("Stripe header %zu (\"%s\"): %s", i, bad[i], whsig_why_str(w));
	}
	/* seventeen entries */
	char h[2048] = ST_T;
	for (int i = 0; i < 15; i++)
		strcat(h, ",v1=" ST_OLD_HEX);
	strcat(h, ",v1=" ST_HEX);
	assert_int_equal(st(ST_SECRET, h, ST_BODY, ST_TS, NULL), WHSIG_MALFORMED);
	/* huge */
	size_t big = WHSIG_HEADER_MAX + 1;
	char *huge = malloc(big + 1);
	assert_non_null(huge);
	memset(huge, 'a', big);
	memcpy(huge, ST_T ",v1=" ST_HEX ",v0=", strlen(ST_T ",v1=" ST_HEX ",v0="));
	huge[big] = '\0';
	assert_int_equal(st(ST_SECRET, huge, ST_BODY, ST_TS, NULL), WHSIG_MALFORMED);
	huge[big - 1] = '\0'; /* exactly the maximum: looked at */
	assert_int_equal(st(ST_SECRET, huge, ST_BODY, ST_TS, NULL), WHSIG_OK);
	free(huge);
	/* absent */
	assert_int_equal(st(ST_SECRET, NULL, ST_BODY, ST_TS, NULL), WHSIG_MISSING);
	assert_int_equal(st(ST_SECRET, "", ST_BODY, ST_TS, NULL), WHSIG_MISSING);
	/* our secret missing */
	assert_int_equal(st("", ST_T ",v1=" ST_HEX, ST_BODY, ST_TS, NULL), WHSIG_BAD_SECRET);
	assert_int_equal(st(NULL, ST_T ",v1=" ST_HEX, ST_BODY, ST_TS, NULL), WHSIG_BAD_SECRET);
	char *longsec = malloc(WHSIG_TOKEN_MAX + 2);
	assert_non_null(longsec);
	memset(longsec, 'k', WHSIG_TOKEN_MAX + 1);
	longsec[WHSIG_TOKEN_MAX + 1] = '\0';
	assert_int_equal(st(longsec, ST_T ",v1=" ST_HEX, ST_BODY, ST_TS, NULL), WHSIG_BAD_SECRET);
	free(longsec);
}

/* --- Intuit --------------------------------------------------------------- */

static void
test_intuit(void **state)
{
	(void)state;
	char out[WHSIG_INTUIT_SIG_LEN];
	assert_int_equal(whsig_intuit_sign(QB_TOKEN, QB_BODY, strlen(QB_BODY), out, sizeof(out)),
			 BW_OK);
	assert_string_equal(out, QB_SIG);
	assert_int_equal(qb(QB_TOKEN, QB_SIG, QB_BODY), WHSIG_OK);
	assert_int_equal(whsig_intuit_sign(QB_TOKEN, QB_BODY, 1, out, sizeof(out) - 1),
			 BW_ERR_NOMEM);
	/* one bit of the body ('0' to '1' in the realm id), another token */
	assert_int_equal(qb(QB_TOKEN, QB_SIG, "{\"eventNotifications\":[{\"realmId\":\"1185883451\"}]}"),
			 WHSIG_MISMATCH);
	assert_int_equal(qb("bulwark-verifier-tokem", QB_SIG, QB_BODY), WHSIG_MISMATCH);
	/* one bit of the signature ('g' = 32 to 'h' = 33: the first byte's 3rd bit) */
	assert_int_equal(qb(QB_TOKEN, "hA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs=", QB_BODY),
			 WHSIG_MISMATCH);
	static const char *const bad[] = {
	    "gA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs",    /* no padding */
	    "gA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gt=",   /* unused bits: same bytes */
	    "gA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs= ",
	    " gA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs=",
	    "gA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs=\n",
	    "gA-nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs=",   /* base64url */
	    "gA+nUzzZk2Wu X5b3CigQ7i37MfyL7KwGBB5jtH59Gs=",
	    "@@@@",
	    "gA+n",
	    "sha256=gA+nUzzZk2WudX5b3CigQ7i37MfyL7KwGBB5jtH59Gs=",
	    "712d4f63771133dfe0c9b93acabf993d35c22e679917b19a9844250347037754",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		enum whsig_why w = qb(QB_TOKEN, bad[i], QB_BODY);
		if (w != WHSIG_MALFORMED)
			fail_msg("intuit-signature %zu (\"%s\"): %s", i, bad[i], whsig_why_str(w));
	}
	assert_int_equal(qb(QB_TOKEN, NULL, QB_BODY), WHSIG_MISSING);
	assert_int_equal(qb(QB_TOKEN, "", QB_BODY), WHSIG_MISSING);
	assert_int_equal(qb("", QB_SIG, QB_BODY), WHSIG_BAD_SECRET);
	char *huge = malloc(WHSIG_HEADER_MAX * 2);
	assert_non_null(huge);
	memset(huge, 'A', WHSIG_HEADER_MAX * 2 - 1);
	huge[WHSIG_HEADER_MAX * 2 - 1] = '\0';
	assert_int_equal(qb(QB_TOKEN, huge, QB_BODY), WHSIG_MALFORMED);
	free(huge);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sw_published_vector),
	    cmocka_unit_test(test_sw_secret_new_roundtrip),
	    cmocka_unit_test(test_sw_secret_decode),
	    cmocka_unit_test(test_sw_rotation_two_signatures),
	    cmocka_unit_test(test_sw_one_bit_changes),
	    cmocka_unit_test(test_sw_timestamps),
	    cmocka_unit_test(test_sw_malformed),
	    cmocka_unit_test(test_sw_other_versions_not_accepted),
	    cmocka_unit_test(test_why_str),
	    cmocka_unit_test(test_stripe_vector),
	    cmocka_unit_test(test_stripe_entries),
	    cmocka_unit_test(test_stripe_refused),
	    cmocka_unit_test(test_intuit),
	};
	return cmocka_run_group_tests_name("whsig", tests, NULL, NULL);
}
