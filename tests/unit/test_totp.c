/*
 * TOTP building blocks: the RFC 4226 and RFC 6238 vectors, oathtool as an
 * independent implementation, the verification window and replay rule,
 * base32 (RFC 4648 vectors), the otpauth URI, the QR SVG checked module by
 * module against libqrencode, and recovery codes.
 */
#include "unit.h"

#include <qrencode.h>
#include <sys/wait.h>

#include "auth/totp.h"

static const unsigned char rfc_key[] = "12345678901234567890"; /* 20 bytes + NUL */
#define RFC_KEYLEN 20

/* --- HOTP / TOTP vectors -------------------------------------------------- */

static void
test_hotp_rfc4226(void **state)
{
	(void)state;
	/* RFC 4226 Appendix D */
	static const char *const want[10] = {"755224", "287082", "359152", "969429", "338314",
					     "254676", "287922", "162583", "399871", "520489"};
	char out[TOTP_CODE_SIZE];
	for (uint64_t c = 0; c < 10; c++) {
		assert_int_equal(totp_code(rfc_key, RFC_KEYLEN, c, 6, out), BW_OK);
		assert_string_equal(out, want[c]);
	}
}

static void
test_totp_rfc6238_sha1(void **state)
{
	(void)state;
	/* RFC 6238 Appendix B, SHA-1 rows (8 digits, seed "1234...890", T0 0, X 30) */
	static const struct {
		uint64_t t;
		const char *code;
	} v[] = {
	    {59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
	    {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000ull, "65353130"},
	};
	char out[TOTP_CODE_SIZE];
	for (size_t i = 0; i < BW_ARRAY_LEN(v); i++) {
		assert_int_equal(totp_code(rfc_key, RFC_KEYLEN, v[i].t / 30, 8, out), BW_OK);
		assert_string_equal(out, v[i].code);
		/* fewer digits are the low digits of the same number, zero-padded */
		assert_int_equal(totp_code(rfc_key, RFC_KEYLEN, v[i].t / 30, 7, out), BW_OK);
		assert_string_equal(out, v[i].code + 1);
		assert_int_equal(totp_code(rfc_key, RFC_KEYLEN, v[i].t / 30, 6, out), BW_OK);
		assert_string_equal(out, v[i].code + 2);
	}
}

static void
test_code_rejects_bad_arguments(void **state)
{
	(void)state;
	unsigned char key[TOTP_KEY_MAX + 1] = {1};
	char out[TOTP_CODE_SIZE];
	static const int bad_digits[] = {-1, 0, 5, 9, 10};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad_digits); i++) {
		strcpy(out, "x");
		assert_int_equal(totp_code(key, 20, 1, bad_digits[i], out), BW_ERR_INVALID);
		assert_string_equal(out, "");
	}
	assert_int_equal(totp_code(key, TOTP_KEY_MIN - 1, 1, 6, out), BW_ERR_INVALID);
	assert_int_equal(totp_code(key, TOTP_KEY_MAX + 1, 1, 6, out), BW_ERR_INVALID);
	assert_int_equal(totp_code(NULL, 20, 1, 6, out), BW_ERR_INVALID);
	assert_int_equal(totp_code(key, TOTP_KEY_MIN, 1, 6, out), BW_OK);
	assert_int_equal(totp_code(key, TOTP_KEY_MAX, 1, 6, out), BW_OK);
}

/* --- oathtool as an independent implementation ---------------------------- */

/* Run an oathtool command line and return its one line of output in out. */
static void
oathtool(const char *cmd, char *out, size_t outlen)
{
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		fail_msg("popen(%s) failed", cmd);
	if (fgets(out, (int)outlen, f) == NULL)
		out[0] = '\0';
	int st = pclose(f);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("'%s' failed (status %d): is oathtool installed? "
			 "(scripts/install-deps test)",
			 cmd, st);
	out[strcspn(out, "\r\n")] = '\0';
}

static void
test_oathtool_cross_check(void **state)
{
	(void)state;
	static const size_t keylens[] = {20, 20, 20, 16, 32, 64};
	uint64_t times[8] = {0, 29, 30, 1111111109, 20000000000ull};
	size_t checked = 0;
	for (size_t k = 0; k < BW_ARRAY_LEN(keylens); k++) {
		unsigned char key[TOTP_KEY_MAX];
		char b32[TOTP_BASE32_SIZE(TOTP_KEY_MAX)], cmd[512], want[64], got[TOTP_CODE_SIZE];
		assert_int_equal(util_random(key, keylens[k]), BW_OK);
		/* our base32 is what oathtool decodes: that is checked too */
		assert_int_equal(totp_base32(key, keylens[k], b32, sizeof(b32)), BW_OK);
		uint32_t r[3]; /* three random times up to 2^32 s */
		assert_int_equal(util_random(r, sizeof(r)), BW_OK);
		for (size_t i = 0; i < 3; i++)
			times[5 + i] = r[i];
		for (size_t i = 0; i < BW_ARRAY_LEN(times); i++) {
			snprintf(cmd, sizeof(cmd), "oathtool --totp=sha1 -b -N @%llu %s",
				 (unsigned long long)times[i], b32);
			oathtool(cmd, want, sizeof(want));
			assert_int_equal(totp_code(key, keylens[k], times[i] / 30, 6, got), BW_OK);
			if (strcmp(got, want) != 0)
				fail_msg("key length %zu, t=%llu: totp_code %s, oathtool %s",
					 keylens[k], (unsigned long long)times[i], got, want);
			checked++;
		}
		/* 8 digits and plain HOTP counters as well */
		snprintf(cmd, sizeof(cmd), "oathtool --totp=sha1 -b -d 8 -N @%llu %s",
			 (unsigned long long)times[5], b32);
		oathtool(cmd, want, sizeof(want));
		assert_int_equal(totp_code(key, keylens[k], times[5] / 30, 8, got), BW_OK);
		assert_string_equal(got, want);
		uint64_t counter = r[0] % 1000000u;
		snprintf(cmd, sizeof(cmd), "oathtool --hotp -b -c %llu %s",
			 (unsigned long long)counter, b32);
		oathtool(cmd, want, sizeof(want));
		assert_int_equal(totp_code(key, keylens[k], counter, 6, got), BW_OK);
		assert_string_equal(got, want);
		checked += 2;
	}
	assert_int_equal(checked, BW_ARRAY_LEN(keylens) * 10);
}

/* --- verification --------------------------------------------------------- */

static void
code_at(uint64_t step, char out[TOTP_CODE_SIZE])
{
	assert_int_equal(totp_code(rfc_key, RFC_KEYLEN, step, 6, out), BW_OK);
}

static void
test_verify_window(void **state)
{
	(void)state;
	const uint64_t now = 1700000015; /* mid-step: step 56666667 */
	const uint64_t s = now / 30;
	char c[5][TOTP_CODE_SIZE]; /* steps s-2 .. s+2 */
	uint64_t m;
	for (int i = 0; i < 5; i++)
		code_at(s - 2 + (uint64_t)i, c[i]);
	/* the test means something only if the five codes differ */
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			assert_string_not_equal(c[i], c[j]);

	/* now, now - 30 s, now + 30 s */
	for (int i = 1; i <= 3; i++) {
		m = 0;
		assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, c[i], now, 0, &m), BW_OK);
		assert_int_equal(m, s - 2 + (uint64_t)i);
	}
	/* now - 60 s and now + 60 s are outside */
	m = 12345;
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, c[0], now, 0, &m), BW_ERR_DENIED);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, c[4], now, 0, &m), BW_ERR_DENIED);
	assert_int_equal(m, 12345); /* untouched on failure */
	/* the same holds at the edges of the step */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, c[3], s * 30, 0, &m), BW_OK);
	assert_int_equal(m, s + 1);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, c[1], s * 30 + 29, 0, &m), BW_OK);
	assert_int_equal(m, s - 1);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, c[4], s * 30 + 29, 0, &m), BW_ERR_DENIED);
	/* a code for another key is refused */
	unsigned char other[20];
	memcpy(other, rfc_key, 20);
	other[0] ^= 1;
	assert_int_equal(totp_verify(other, 20, c[2], now, 0, &m), BW_ERR_DENIED);
}

static void
test_verify_replay(void **state)
{
	(void)state;
	const uint64_t now = 1700000015, s = now / 30;
	char prev[TOTP_CODE_SIZE], cur[TOTP_CODE_SIZE], next[TOTP_CODE_SIZE];
	uint64_t m = 0;
	code_at(s - 1, prev);
	code_at(s, cur);
	code_at(s + 1, next);

	/* a code accepted once is refused when last_used_step is what it matched */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, cur, now, 0, &m), BW_OK);
	assert_int_equal(m, s);
	uint64_t last = m;
	m = 0;
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, cur, now, last, &m), BW_ERR_DENIED);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, cur, now + 29, last, &m), BW_ERR_DENIED);
	/* an older step is refused too, though right and inside the window */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, prev, now, last, &m), BW_ERR_DENIED);
	/* the next step still works, and then closes the current one */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, next, now, last, &m), BW_OK);
	assert_int_equal(m, s + 1);
	last = m;
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, next, now + 30, last, &m), BW_ERR_DENIED);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, cur, now + 30, last, &m), BW_ERR_DENIED);
	/* last_used_step one below: only that one step is closed */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, prev, now, s - 1, &m), BW_ERR_DENIED);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, cur, now, s - 1, &m), BW_OK);
	assert_int_equal(m, s);
	/* a last_used_step from the future (clock set back) closes everything */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, next, now, s + 5, &m), BW_ERR_DENIED);

	/* step 0 is never accepted (0 <= last_used_step 0), step 1 is */
	char c0[TOTP_CODE_SIZE], c1[TOTP_CODE_SIZE];
	code_at(0, c0);
	code_at(1, c1);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, c0, 10, 0, &m), BW_ERR_DENIED);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, c1, 10, 0, &m), BW_OK);
	assert_int_equal(m, 1);
	/* "one step back" from step 0 is not step 2^64-1 */
	char cw[TOTP_CODE_SIZE];
	code_at(UINT64_MAX, cw);
	assert_string_not_equal(cw, c0);
	assert_string_not_equal(cw, c1);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, cw, 10, 0, &m), BW_ERR_DENIED);
	/* the end of time does not wrap around */
	char ce[TOTP_CODE_SIZE];
	code_at(UINT64_MAX / 30, ce);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, ce, UINT64_MAX, 0, &m), BW_OK);
	assert_int_equal(m, UINT64_MAX / 30);
}

/*
 * For the RFC key, steps 57766335 and 57766336 share the code 251166 (found
 * by search). A code that matches two eligible steps must report the later,
 * or it could be replayed against it.
 */
static void
test_verify_two_matches_takes_latest(void **state)
{
	(void)state;
	const uint64_t s = 57766335;
	char a[TOTP_CODE_SIZE], b[TOTP_CODE_SIZE];
	uint64_t m = 0;
	code_at(s, a);
	code_at(s + 1, b);
	assert_string_equal(a, "251166");
	assert_string_equal(b, "251166");
	/* window s-1, s, s+1 */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, a, s * 30 + 1, 0, &m), BW_OK);
	assert_int_equal(m, s + 1);
	/* window s, s+1, s+2 */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, a, (s + 1) * 30 + 1, 0, &m), BW_OK);
	assert_int_equal(m, s + 1);
	/* and once used, neither step takes it again */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, a, s * 30 + 1, m, &m), BW_ERR_DENIED);
}

static void
test_verify_rejects_malformed(void **state)
{
	(void)state;
	const uint64_t now = 1700000015;
	char cur[TOTP_CODE_SIZE], buf[32];
	uint64_t m = 7;
	code_at(now / 30, cur);
	const char *bad[] = {"", "12345", "1234567", "abcdef", "12a456", "12345a", " 12345",
			     "12345 ", "+12345", "-12345", "１２３４５６"};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
		assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, bad[i], now, 0, &m),
				 BW_ERR_INVALID);
	/* the right code with anything around it is not the right code */
	snprintf(buf, sizeof(buf), "%s0", cur);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, buf, now, 0, &m), BW_ERR_INVALID);
	snprintf(buf, sizeof(buf), " %s", cur);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, buf, now, 0, &m), BW_ERR_INVALID);
	snprintf(buf, sizeof(buf), "%.5s", cur);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, buf, now, 0, &m), BW_ERR_INVALID);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, NULL, now, 0, &m), BW_ERR_INVALID);
	assert_int_equal(totp_verify(NULL, RFC_KEYLEN, cur, now, 0, &m), BW_ERR_INVALID);
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, cur, now, 0, NULL), BW_ERR_INVALID);
	assert_int_equal(totp_verify(rfc_key, 8, cur, now, 0, &m), BW_ERR_INVALID);
	assert_int_equal(m, 7);
	/* and the right code alone is right */
	assert_int_equal(totp_verify(rfc_key, RFC_KEYLEN, cur, now, 0, &m), BW_OK);
}

/* --- secrets and base32 --------------------------------------------------- */

static void
test_secret_new(void **state)
{
	(void)state;
	unsigned char a[TOTP_SECRET_LEN], b[TOTP_SECRET_LEN], zero[TOTP_SECRET_LEN] = {0};
	assert_int_equal(totp_secret_new(a), BW_OK);
	assert_int_equal(totp_secret_new(b), BW_OK);
	assert_memory_not_equal(a, b, TOTP_SECRET_LEN);
	assert_memory_not_equal(a, zero, TOTP_SECRET_LEN);
}

static void
test_base32_rfc4648(void **state)
{
	(void)state;
	/* RFC 4648 section 10, padding removed */
	static const char *const v[][2] = {
	    {"", ""},         {"f", "MY"},          {"fo", "MZXQ"},         {"foo", "MZXW6"},
	    {"foob", "MZXW6YQ"}, {"fooba", "MZXW6YTB"}, {"foobar", "MZXW6YTBOI"},
	};
	char out[64];
	unsigned char dec[64];
	size_t n;
	for (size_t i = 0; i < BW_ARRAY_LEN(v); i++) {
		size_t len = strlen(v[i][0]);
		assert_int_equal(totp_base32((const unsigned char *)v[i][0], len, out, sizeof(out)),
				 BW_OK);
		assert_string_equal(out, v[i][1]);
		assert_int_equal(strlen(out) + 1, TOTP_BASE32_SIZE(len));
		assert_int_equal(totp_base32_decode(v[i][1], dec, sizeof(dec), &n), BW_OK);
		assert_int_equal(n, len);
		assert_memory_equal(dec, v[i][0], len);
	}
	/* the RFC key, as authenticator apps are given it */
	assert_int_equal(totp_base32(rfc_key, RFC_KEYLEN, out, sizeof(out)), BW_OK);
	assert_string_equal(out, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	/* every digit of the alphabet, both ways */
	static const unsigned char all[] = {0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6,
					    0x35, 0xcf, 0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6,
					    0x75, 0xbe, 0x77, 0xdf};
	assert_int_equal(totp_base32(all, sizeof(all), out, sizeof(out)), BW_OK);
	assert_string_equal(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
}

static void
test_base32_round_trip(void **state)
{
	(void)state;
	unsigned char in[64], dec[64];
	char out[TOTP_BASE32_SIZE(64)];
	size_t n;
	for (size_t len = 0; len <= sizeof(in); len++) {
		assert_int_equal(util_random(in, len), BW_OK);
		assert_int_equal(totp_base32(in, len, out, sizeof(out)), BW_OK);
		assert_int_equal(strlen(out), (len * 8 + 4) / 5);
		assert_int_equal(strspn(out, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), strlen(out));
		assert_int_equal(totp_base32_decode(out, dec, sizeof(dec), &n), BW_OK);
		assert_int_equal(n, len);
		assert_memory_equal(dec, in, len);
	}
}

static void
test_base32_decode_lenient_and_strict(void **state)
{
	(void)state;
	unsigned char dec[32];
	size_t n = 99;
	/* lower case and spaces, as people type what their screen shows */
	assert_int_equal(totp_base32_decode("mzxw 6ytb oi", dec, sizeof(dec), &n), BW_OK);
	assert_int_equal(n, 6);
	assert_memory_equal(dec, "foobar", 6);
	assert_int_equal(totp_base32_decode("  MzXw6YtBoI ", dec, sizeof(dec), &n), BW_OK);
	assert_memory_equal(dec, "foobar", 6);
	assert_int_equal(totp_base32_decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", dec,
					    sizeof(dec), &n),
			 BW_OK);
	assert_int_equal(n, 20);
	assert_memory_equal(dec, rfc_key, 20);
	/* anything outside the alphabet */
	static const char *const bad[] = {
	    "MZXW6YTB0I", /* zero */   "MZXW6YTB1I", /* one */   "MZXW6YTB8I",
	    "MZXW6YTBOI======",        "MZXW6YTB-OI",            "MZXW6YTB\tOI",
	    "MZXW6YTB\xc3\x89I",       "MZXW6YTBOI\n",           "MZ.X",
	    /* lengths no encoder makes, with and without set trailing bits */
	    "M", "MZX", "MZXW6Y", "A", "AAA", "AAAAAA", "MZXW6YTBOIA",
	    /* non-zero trailing bits */
	    "MZ", "MZXW6YTBOJ",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		n = 99;
		if (totp_base32_decode(bad[i], dec, sizeof(dec), &n) != BW_ERR_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(n, 0);
	}
	/* output that does not fit is refused and wiped */
	memset(dec, 0xAA, sizeof(dec));
	assert_int_equal(totp_base32_decode("MZXW6YTBOI", dec, 5, &n), BW_ERR_INVALID);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(dec[i], 0);
	assert_int_equal(dec[5], 0xAA);
	assert_int_equal(totp_base32_decode("MZXW6YTBOI", dec, 6, &n), BW_OK);
	/* over-long input is refused before it is read */
	char *big = malloc(TOTP_BASE32_MAX_INPUT + 2);
	assert_non_null(big);
	memset(big, ' ', TOTP_BASE32_MAX_INPUT + 1);
	big[TOTP_BASE32_MAX_INPUT + 1] = '\0';
	assert_int_equal(totp_base32_decode(big, dec, sizeof(dec), &n), BW_ERR_INVALID);
	big[TOTP_BASE32_MAX_INPUT] = '\0';
	assert_int_equal(totp_base32_decode(big, dec, sizeof(dec), &n), BW_OK);
	assert_int_equal(n, 0);
	free(big);
	/* encoding into a buffer one byte short */
	char out[TOTP_BASE32_SIZE(6)];
	strcpy(out, "x");
	assert_int_equal(totp_base32((const unsigned char *)"foobar", 6, out, sizeof(out) - 1),
			 BW_ERR_INVALID);
	assert_string_equal(out, "");
	assert_int_equal(totp_base32((const unsigned char *)"foobar", 6, out, sizeof(out)), BW_OK);
}

/* --- otpauth URI ---------------------------------------------------------- */

static void
test_uri(void **state)
{
	(void)state;
	static const char want[] =
	    "otpauth://totp/Bulwark%20%28acme%29:jane%2Bops%40acme.example"
	    "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Bulwark%20%28acme%29"
	    "&algorithm=SHA1&digits=6&period=30";
	char out[512];
	assert_int_equal(totp_uri("Bulwark (acme)", "jane+ops@acme.example", rfc_key, out,
				  sizeof(out)),
			 BW_OK);
	assert_string_equal(out, want);
	/* exactly big enough, and one byte short (wiped: it would hold the secret) */
	char exact[sizeof(want)];
	assert_int_equal(totp_uri("Bulwark (acme)", "jane+ops@acme.example", rfc_key, exact,
				  sizeof(exact)),
			 BW_OK);
	assert_string_equal(exact, want);
	assert_int_equal(totp_uri("Bulwark (acme)", "jane+ops@acme.example", rfc_key, exact,
				  sizeof(exact) - 1),
			 BW_ERR_INVALID);
	for (size_t i = 0; i < sizeof(exact) - 1; i++)
		assert_int_equal(exact[i], 0);
	/* unreserved characters stay; reserved ones, ':' and UTF-8 are escaped */
	assert_int_equal(totp_uri("A-z.0_9~", "x:y/z?#[]&=%é", rfc_key, out, sizeof(out)), BW_OK);
	assert_string_equal(out, "otpauth://totp/A-z.0_9~:x%3Ay%2Fz%3F%23%5B%5D%26%3D%25%C3%A9"
				 "?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=A-z.0_9~"
				 "&algorithm=SHA1&digits=6&period=30");
	/* refused labels */
	assert_int_equal(totp_uri("", "jane", rfc_key, out, sizeof(out)), BW_ERR_INVALID);
	assert_int_equal(totp_uri("Bulwark", "", rfc_key, out, sizeof(out)), BW_ERR_INVALID);
	assert_int_equal(totp_uri("Bul\nwark", "jane", rfc_key, out, sizeof(out)), BW_ERR_INVALID);
	assert_int_equal(totp_uri("Bulwark", "ja\x7fne", rfc_key, out, sizeof(out)),
			 BW_ERR_INVALID);
	assert_int_equal(totp_uri(NULL, "jane", rfc_key, out, sizeof(out)), BW_ERR_INVALID);
	char longlabel[TOTP_LABEL_MAX + 2];
	memset(longlabel, 'a', sizeof(longlabel) - 1);
	longlabel[sizeof(longlabel) - 1] = '\0';
	char big[4096];
	assert_int_equal(totp_uri("Bulwark", longlabel, rfc_key, big, sizeof(big)), BW_ERR_INVALID);
	longlabel[TOTP_LABEL_MAX] = '\0';
	assert_int_equal(totp_uri("Bulwark", longlabel, rfc_key, big, sizeof(big)), BW_OK);
}

/* --- QR code as SVG ------------------------------------------------------- */

/*
 * Parse the SVG totp_qr_svg() makes: the viewBox size, and the cells the
 * one path's "Mx yhNv1h-Nz" runs cover, into grid (size*size, 1 = dark).
 */
static unsigned char *
svg_cells(const char *svg, int *size)
{
	int w, h;
	const char *vb = strstr(svg, "viewBox=\"");
	assert_non_null(vb);
	assert_int_equal(sscanf(vb, "viewBox=\"0 0 %d %d\"", &w, &h), 2);
	assert_int_equal(w, h);
	assert_true(w >= 21 + 8 && w <= 177 + 8);
	unsigned char *grid = calloc((size_t)w * (size_t)w, 1);
	assert_non_null(grid);
	const char *d = strstr(svg, " d=\"");
	assert_non_null(d);
	d += 4;
	while (*d != '"') {
		int x, y, n1, n2, used = 0;
		if (sscanf(d, "M%d %dh%dv1h-%dz%n", &x, &y, &n1, &n2, &used) != 4 || used == 0)
			fail_msg("unexpected path data at \"%.20s\"", d);
		assert_int_equal(n1, n2);
		assert_true(n1 >= 1 && x >= 0 && y >= 0 && x + n1 <= w && y < w);
		for (int i = 0; i < n1; i++)
			grid[(size_t)y * (size_t)w + (size_t)(x + i)] = 1;
		d += used;
	}
	assert_string_equal(d, "\"/></svg>");
	*size = w;
	return grid;
}

static void
check_qr(const char *text)
{
	char *svg = NULL;
	assert_int_equal(totp_qr_svg(text, &svg), BW_OK);
	assert_non_null(svg);
	assert_int_equal(strncmp(svg, "<svg", 4), 0);
	assert_null(strcasestr(svg, "<script"));
	assert_null(strcasestr(svg, "href"));
	assert_null(strcasestr(svg, "url("));
	assert_null(strcasestr(svg, "<style"));
	assert_null(strcasestr(svg, "<image"));
	assert_null(strcasestr(svg, "<foreignObject"));
	assert_null(strcasestr(svg, " on")); /* no event handler attributes */

	/* the same symbol, made independently here with the same parameters */
	QRcode *qr = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	assert_non_null(qr);
	int size;
	unsigned char *grid = svg_cells(svg, &size);
	assert_int_equal(size, qr->width + 8);
	char wh[64];
	snprintf(wh, sizeof(wh), "viewBox=\"0 0 %d %d\"", size, size);
	assert_non_null(strstr(svg, wh));
	/* every module agrees, dark and light; the quiet zone is all light */
	size_t dark = 0;
	for (int y = 0; y < size; y++)
		for (int x = 0; x < size; x++) {
			int in = x >= 4 && y >= 4 && x < 4 + qr->width && y < 4 + qr->width;
			int want = in && (qr->data[(y - 4) * qr->width + (x - 4)] & 1);
			if (grid[(size_t)y * (size_t)size + (size_t)x] != want)
				fail_msg("module (%d,%d): svg %d, libqrencode %d", x, y,
					 grid[(size_t)y * (size_t)size + (size_t)x], want);
			dark += (size_t)want;
		}
	assert_true(dark > 0);
	/* the finder pattern's top-left corner is where a reader looks for it */
	assert_int_equal(grid[4 * size + 4], 1);
	assert_int_equal(grid[3 * size + 3], 0);
	free(grid);
	QRcode_free(qr);
	free(svg);
}

static void
test_qr_svg(void **state)
{
	(void)state;
	char uri[512];
	assert_int_equal(totp_uri("Bulwark (acme)", "jane+ops@acme.example", rfc_key, uri,
				  sizeof(uri)),
			 BW_OK);
	check_qr(uri);
	check_qr("A");                     /* version 1 */
	check_qr("otpauth://totp/x:y?secret=MZXW6YTBOI"); /* mixed case is kept */
	/* a long text: a large version, still right module by module */
	char *big = malloc(TOTP_QR_MAX_TEXT + 2);
	assert_non_null(big);
	for (size_t i = 0; i < TOTP_QR_MAX_TEXT; i++)
		big[i] = (char)('a' + i % 26);
	big[TOTP_QR_MAX_TEXT] = '\0';
	check_qr(big);
	/* refused: too long, empty, NULL */
	char *svg = (char *)"x";
	big[TOTP_QR_MAX_TEXT] = 'a';
	big[TOTP_QR_MAX_TEXT + 1] = '\0';
	assert_int_equal(totp_qr_svg(big, &svg), BW_ERR_INVALID);
	assert_null(svg);
	assert_int_equal(totp_qr_svg("", &svg), BW_ERR_INVALID);
	assert_int_equal(totp_qr_svg(NULL, &svg), BW_ERR_INVALID);
	assert_int_equal(totp_qr_svg("x", NULL), BW_ERR_INVALID);
	free(big);
}

/* The SVG differs when one character of the text does: it encodes the text. */
static void
test_qr_svg_depends_on_text(void **state)
{
	(void)state;
	char *a = NULL, *b = NULL;
	assert_int_equal(totp_qr_svg("otpauth://totp/x:y?secret=MZXW6YTBOI", &a), BW_OK);
	assert_int_equal(totp_qr_svg("otpauth://totp/x:y?secret=MZXW6YTBOJ", &b), BW_OK);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
}

/* --- recovery codes ------------------------------------------------------- */

static int
in_alphabet(char c)
{
	return c != '\0' && strchr(TOTP_RECOVERY_ALPHABET, c) != NULL;
}

static void
test_recovery_codes(void **state)
{
	(void)state;
	char codes[TOTP_RECOVERY_COUNT][TOTP_RECOVERY_SIZE];
	char again[TOTP_RECOVERY_COUNT][TOTP_RECOVERY_SIZE];
	char norm[TOTP_RECOVERY_LEN + 1];
	assert_int_equal(strlen(TOTP_RECOVERY_ALPHABET), 31);
	assert_null(strpbrk(TOTP_RECOVERY_ALPHABET, "0o1liABCDEFGHIJKLMNOPQRSTUVWXYZ"));
	assert_int_equal(totp_recovery_codes(codes), BW_OK);
	for (size_t k = 0; k < TOTP_RECOVERY_COUNT; k++) {
		const char *c = codes[k];
		assert_int_equal(strlen(c), 11);
		assert_int_equal(c[5], '-');
		for (size_t i = 0; i < 11; i++)
			if (i != 5 && !in_alphabet(c[i]))
				fail_msg("code %zu \"%s\": '%c' outside the alphabet", k, c, c[i]);
		for (size_t j = 0; j < k; j++)
			assert_string_not_equal(codes[j], c);
		/* what we hand out, typed back, is accepted */
		assert_int_equal(totp_recovery_normalize(c, norm), BW_OK);
		assert_int_equal(memcmp(norm, c, 5), 0);
		assert_string_equal(norm + 5, c + 6);
	}
	assert_int_equal(totp_recovery_codes(again), BW_OK);
	assert_memory_not_equal(codes, again, sizeof(codes));
}

/*
 * Uniformity: 100,000 characters. Reducing a byte modulo 31 would give the
 * first 8 characters 9/256 each instead of 1/31 (28,125 of them instead of
 * 25,806, about 17 standard deviations off); rejection sampling does not.
 * Every character must also turn up.
 */
static void
test_recovery_codes_unbiased(void **state)
{
	(void)state;
	size_t count[31] = {0}, total = 0;
	char codes[TOTP_RECOVERY_COUNT][TOTP_RECOVERY_SIZE];
	for (int round = 0; round < 1000; round++) {
		assert_int_equal(totp_recovery_codes(codes), BW_OK);
		for (size_t k = 0; k < TOTP_RECOVERY_COUNT; k++)
			for (size_t i = 0; i < 11; i++) {
				if (i == 5)
					continue;
				const char *p = strchr(TOTP_RECOVERY_ALPHABET, codes[k][i]);
				assert_non_null(p);
				count[p - TOTP_RECOVERY_ALPHABET]++;
				total++;
			}
	}
	assert_int_equal(total, 100000);
	size_t first8 = 0;
	for (size_t i = 0; i < 31; i++) {
		/* expected 3226, sd 56: 2700..3750 is over 9 sd either way */
		if (count[i] < 2700 || count[i] > 3750)
			fail_msg("'%c' drawn %zu times of 100000", TOTP_RECOVERY_ALPHABET[i],
				 count[i]);
		if (i < 8)
			first8 += count[i];
	}
	/* expected 25806, sd 138: 6 sd */
	if (first8 < 25806 - 830 || first8 > 25806 + 830)
		fail_msg("first 8 characters drawn %zu times of 100000", first8);
}

static void
test_recovery_normalize(void **state)
{
	(void)state;
	char out[TOTP_RECOVERY_LEN + 1];
	static const char *const good[] = {"ABCDE-FGHJK",   " abcdefghjk ", "abcde-fghjk",
					   "AbCdEfGhJk",    "\tabcde-FGHJK\r\n", "   ABCDEFGHJK"};
	for (size_t i = 0; i < BW_ARRAY_LEN(good); i++) {
		memset(out, 'x', sizeof(out));
		if (totp_recovery_normalize(good[i], out) != BW_OK)
			fail_msg("refused \"%s\"", good[i]);
		assert_string_equal(out, "abcdefghjk");
	}
	assert_int_equal(totp_recovery_normalize("23456-789mn", out), BW_OK);
	assert_string_equal(out, "23456789mn");
	static const char *const bad[] = {
	    "",            "   ",          "abcdefghj",    "abcdefghjkm", "abcd-efghjk",
	    "abcde--fghjk", "abcde fghjk", "-abcdefghjk",  "abcdefghjk-", "abcdefghj0",
	    "abcdefghjo",  "abcdefghj1",   "abcdefghjl",   "abcdefghji",  "ABCDEFGHJI",
	    "abcdefghj!",  "abcde_fghjk",  "abcdéfghjk",   "abcde-fghjk-x",
	    "abcdefghjkabcdefghjk",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		strcpy(out, "x");
		if (totp_recovery_normalize(bad[i], out) != BW_ERR_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_string_equal(out, "");
	}
	assert_int_equal(totp_recovery_normalize(NULL, out), BW_ERR_INVALID);
	/* long input is refused without reading it all */
	char big[200];
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big + 90, "abcdefghjk", 10);
	assert_int_equal(totp_recovery_normalize(big, out), BW_ERR_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hotp_rfc4226),
	    cmocka_unit_test(test_totp_rfc6238_sha1),
	    cmocka_unit_test(test_code_rejects_bad_arguments),
	    cmocka_unit_test(test_oathtool_cross_check),
	    cmocka_unit_test(test_verify_window),
	    cmocka_unit_test(test_verify_replay),
	    cmocka_unit_test(test_verify_two_matches_takes_latest),
	    cmocka_unit_test(test_verify_rejects_malformed),
	    cmocka_unit_test(test_secret_new),
	    cmocka_unit_test(test_base32_rfc4648),
	    cmocka_unit_test(test_base32_round_trip),
	    cmocka_unit_test(test_base32_decode_lenient_and_strict),
	    cmocka_unit_test(test_uri),
	    cmocka_unit_test(test_qr_svg),
	    cmocka_unit_test(test_qr_svg_depends_on_text),
	    cmocka_unit_test(test_recovery_codes),
	    cmocka_unit_test(test_recovery_codes_unbiased),
	    cmocka_unit_test(test_recovery_normalize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
