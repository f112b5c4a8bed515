/*
 * E-mail addresses as identities: the one place an address is turned into
 * the form it is shown in and the key it is unique and looked up by. The
 * policy is ADR 0012; libunistring supplies the Unicode data (normalisation,
 * case folding, categories, scripts) and ICU the confusables data (UTS #39
 * skeletons, which libunistring does not carry), so there are no tables here.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include <unicode/uspoof.h>

#define EMAIL_LOCAL_MAX 64
#define EMAIL_LABEL_MAX 63
/* Room for any NFKC result of a 254-byte input before the length check. */
#define EMAIL_WORK 1024

/* Invisible, control, unassigned, private, separator or space: never in an address. */
static int
email_char_refused(ucs4_t c)
{
	return uc_is_general_category(c, UC_CATEGORY_C) || uc_is_general_category(c, UC_CATEGORY_Z) ||
	       uc_is_property_white_space(c) || uc_is_property_default_ignorable_code_point(c);
}

/* 1 when no character of s (n bytes, valid UTF-8) is refused. */
static int
email_chars_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		ucs4_t c;
		int k = u8_mbtouc(&c, s + i, n - i);
		if (k <= 0 || c == 0xfffd || email_char_refused(c))
			return 0;
		i += (size_t)k;
	}
	return 1;
}

/*
 * The scripts of s (n bytes) besides Common and Inherited are one script,
 * or one of the combinations a single writing system uses (Japanese: Han,
 * Hiragana, Katakana; Korean: Han, Hangul; Chinese: Han, Bopomofo). 1 or 0.
 */
static int
email_one_script(const uint8_t *s, size_t n)
{
	const uc_script_t *common = uc_script_byname("Common"), *inherited = uc_script_byname("Inherited");
	const uc_script_t *han = uc_script_byname("Han"), *seen[4];
	static const char *const combos[][3] = {
	    {"Han", "Hiragana", "Katakana"},
	    {"Han", "Hangul", NULL},
	    {"Han", "Bopomofo", NULL},
	};
	size_t nseen = 0, i = 0;
	while (i < n) {
		ucs4_t c;
		int k = u8_mbtouc(&c, s + i, n - i);
		if (k <= 0)
			return 0;
		i += (size_t)k;
		const uc_script_t *sc = uc_script(c);
		if (sc == NULL)
			return 0; /* no script: unassigned, refused already */
		if (sc == common || sc == inherited)
			continue;
		size_t j;
		for (j = 0; j < nseen && seen[j] != sc; j++)
			;
		if (j < nseen)
			continue;
		if (nseen == BW_ARRAY_LEN(seen))
			return 0;
		seen[nseen++] = sc;
	}
	if (nseen <= 1)
		return 1;
	for (size_t k = 0; k < BW_ARRAY_LEN(combos); k++) {
		size_t in = 0;
		for (size_t j = 0; j < nseen; j++)
			for (size_t m = 0; m < 3 && combos[k][m] != NULL; m++)
				if (seen[j] == uc_script_byname(combos[k][m])) {
					in++;
					break;
				}
		if (in == nseen && han != NULL)
			return 1;
	}
	return 0;
}

/* Outside ASCII, only letters, marks and digits (no symbols or punctuation look-alikes). */
static int
email_nonascii_ok(ucs4_t c)
{
	return uc_is_general_category(c, UC_CATEGORY_L) || uc_is_general_category(c, UC_CATEGORY_M) ||
	       uc_is_general_category(c, UC_CATEGORY_N);
}

/*
 * A modifier letter or symbol of the Common script (U+02BC, U+02B9, U+02C8,
 * ...): it belongs to no alphabet, so the one-script rule cannot see it,
 * and most of them are apostrophes, primes and accents in disguise. ASCII
 * ^ and ` (Sk) stay: they are plain RFC 5321 atext, visibly themselves.
 */
static int
email_common_modifier(ucs4_t c)
{
	return c >= 0x80 && uc_script(c) == uc_script_byname("Common") &&
	       (uc_is_general_category(c, UC_CATEGORY_Lm) || uc_is_general_category(c, UC_CATEGORY_Sk));
}

/* Outside ASCII: 1 when allowed, else 0 with the reason in *why. */
static int
email_nonascii_check(ucs4_t c, const char *where, const char **why)
{
	if (email_common_modifier(c)) {
		*why = "has a modifier letter or symbol (such as U+02BC), which is not allowed";
		return 0;
	}
	if (!email_nonascii_ok(c)) {
		*why = where;
		return 0;
	}
	return 1;
}

/* The local part (n bytes, case-folded): 1 to 64 bytes, no refused ASCII, one script. */
static bw_err
email_local_check(const uint8_t *s, size_t n, const char **why)
{
	if (n == 0 || n > EMAIL_LOCAL_MAX) {
		*why = "has a local part (before the @) that is empty or longer than 64 bytes";
		return BW_ERR_INVALID;
	}
	if (s[0] == '.' || s[n - 1] == '.') {
		*why = "has a local part that starts or ends with a dot";
		return BW_ERR_INVALID;
	}
	for (size_t i = 0; i < n;) {
		ucs4_t c;
		int k = u8_mbtouc(&c, s + i, n - i);
		if (k <= 0)
			return BW_ERR_INVALID;
		if (c < 0x80 && (c <= ' ' || c == 0x7f || strchr("<>,;\"\\()[]:", (int)c) != NULL)) {
			*why = "has a character that is not allowed in the local part";
			return BW_ERR_INVALID;
		}
		if (c >= 0x80 &&
		    !email_nonascii_check(c, "has a character that is not allowed in the local part", why))
			return BW_ERR_INVALID;
		i += (size_t)k;
	}
	if (!email_one_script(s, n)) {
		*why = "mixes scripts (alphabets) in the local part";
		return BW_ERR_INVALID;
	}
	return BW_OK;
}

/* The domain (n bytes, case-folded): two or more labels of letters, digits and hyphens. */
static bw_err
email_domain_check(const uint8_t *s, size_t n, unsigned flags, const char **why)
{
	size_t labels = 0, i = 0;
	while (i <= n) {
		size_t start = i, ascii = 1;
		while (i < n && s[i] != '.')
			i++;
		size_t len = i - start;
		const uint8_t *l = s + start;
		if (len == 0 || len > EMAIL_LABEL_MAX) {
			*why = "has an empty or over-long label in the domain";
			return BW_ERR_INVALID;
		}
		if (l[0] == '-' || l[len - 1] == '-') {
			*why = "has a domain label that starts or ends with a hyphen";
			return BW_ERR_INVALID;
		}
		/* An ACE label is an internationalised name in disguise: one form only. */
		if (len >= 4 && memcmp(l, "xn--", 4) == 0) {
			*why = "has an ACE (xn--) label in the domain";
			return BW_ERR_INVALID;
		}
		for (size_t j = 0; j < len;) {
			ucs4_t c;
			int k = u8_mbtouc(&c, l + j, len - j);
			if (k <= 0)
				return BW_ERR_INVALID;
			if (c < 0x80) {
				if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
					*why = "has a character that is not allowed in the domain";
					return BW_ERR_INVALID;
				}
			} else if (!email_nonascii_check(c, "has a character that is not allowed in the domain",
							 why)) {
				return BW_ERR_INVALID;
			} else {
				ascii = 0;
			}
			j += (size_t)k;
		}
		if (!ascii && !(flags & EMAIL_ALLOW_IDN)) {
			*why = "has a non-ASCII domain, which this tenant does not allow";
			return BW_ERR_INVALID;
		}
		if (!email_one_script(l, len)) {
			*why = "mixes scripts (alphabets) in a domain label";
			return BW_ERR_INVALID;
		}
		labels++;
		i++; /* past the dot (or the end) */
	}
	if (labels < 2) {
		*why = "has no dot in the domain";
		return BW_ERR_INVALID;
	}
	return BW_OK;
}

/*
 * The UTS #39 skeleton of key (klen bytes) into out (EMAIL_SKEL_MAX + 1):
 * two strings with one skeleton are confusable (admin, adm\u0131n and
 * \u0251dmin are all "adrnin"). A checker is opened per call: ICU shares
 * its confusables data between checkers, and there is then no global state.
 * BW_OK, BW_ERR_INVALID (too long, or a character no address may hold) or
 * BW_ERR_NOMEM (ICU failed), with the reason in *why.
 */
static bw_err
email_skeleton(const uint8_t *key, size_t klen, char *out, const char **why)
{
	UErrorCode st = U_ZERO_ERROR;
	USpoofChecker *sc = uspoof_open(&st);
	uint8_t k[EMAIL_MAX];
	size_t kn = 0;
	int32_t n = 0;
	bw_err e = BW_ERR_NOMEM;

	*why = "cannot be reduced to its confusable skeleton";
	/*
	 * A dot above on a soft-dotted letter (i, j, ...) replaces its own dot
	 * and cannot be seen: "admi\u0307n", and "ADM\u0130N" folded, read as
	 * "admin", which the confusables data does not say. Dropped here only.
	 */
	int dotted = 0; /* after a soft-dotted letter and only marks below it since */
	for (size_t i = 0; i < klen && klen <= sizeof(k);) {
		ucs4_t c;
		int m = u8_mbtouc(&c, key + i, klen - i);
		if (m <= 0)
			break;
		int cc = uc_combining_class(c);
		if (c == 0x307 && dotted) {
			i += (size_t)m;
			continue;
		}
		if (cc == 0 || cc == UC_CCC_A)
			dotted = cc == 0 && uc_is_property_soft_dotted(c);
		memcpy(k + kn, key + i, (size_t)m);
		kn += (size_t)m;
		i += (size_t)m;
	}
	if (U_SUCCESS(st) && klen <= sizeof(k))
		n = uspoof_getSkeletonUTF8(sc, 0, (const char *)k, (int32_t)kn, out,
					   (int32_t)EMAIL_SKEL_MAX + 1, &st);
	if (st == U_BUFFER_OVERFLOW_ERROR || st == U_STRING_NOT_TERMINATED_WARNING ||
	    (U_SUCCESS(st) && n > EMAIL_SKEL_MAX)) {
		*why = "is too long once reduced to its confusable skeleton";
		e = BW_ERR_INVALID;
	} else if (U_SUCCESS(st) && n > 0) {
		out[n] = '\0';
		/* Fail closed should a mapping ever bring in what no address may hold. */
		if (email_chars_ok((const uint8_t *)out, (size_t)n)) {
			e = BW_OK;
		} else {
			*why = "has a character whose confusable skeleton is not allowed";
			e = BW_ERR_INVALID;
		}
	}
	if (sc != NULL)
		uspoof_close(sc);
	if (e != BW_OK)
		memset(out, 0, EMAIL_SKEL_MAX + 1);
	return e;
}

bw_err
email_normalize(const char *in, unsigned flags, struct email_addr *out, const char **why)
{
	uint8_t nbuf[EMAIL_WORK], fbuf[EMAIL_WORK], lbuf[EMAIL_WORK];
	uint8_t *nf = NULL, *cf = NULL, *lc = NULL;
	size_t nlen = sizeof(nbuf), flen = sizeof(fbuf), llen = sizeof(lbuf), n;
	const char *dummy;
	bw_err e = BW_ERR_INVALID;

	if (why == NULL)
		why = &dummy;
	*why = "is not an e-mail address";
	memset(out, 0, sizeof(*out));
	if (in == NULL || (n = strlen(in)) == 0)
		return BW_ERR_INVALID;
	if (n > EMAIL_MAX) {
		*why = "is longer than 254 bytes";
		return BW_ERR_INVALID;
	}
	if (u8_check((const uint8_t *)in, n) != NULL) {
		*why = "is not valid UTF-8";
		return BW_ERR_INVALID;
	}
	/* Before NFKC too: it turns a no-break space into a plain one, and so on. */
	if (!email_chars_ok((const uint8_t *)in, n)) {
		*why = "contains an invisible, control or space character";
		return BW_ERR_INVALID;
	}
	nf = u8_normalize(UNINORM_NFKC, (const uint8_t *)in, n, nbuf, &nlen);
	if (nf == NULL) {
		*why = "cannot be normalised";
		return BW_ERR_NOMEM;
	}
	cf = u8_casefold(nf, nlen, NULL, UNINORM_NFKC, fbuf, &flen);
	if (cf == NULL) {
		*why = "cannot be normalised";
		e = BW_ERR_NOMEM;
		goto out;
	}
	if (nlen > EMAIL_MAX || flen > EMAIL_MAX) {
		*why = "is longer than 254 bytes once normalised";
		goto out;
	}
	if (!email_chars_ok(nf, nlen) || !email_chars_ok(cf, flen)) {
		*why = "contains an invisible, control or space character";
		goto out;
	}
	const uint8_t *at = memchr(cf, '@', flen);
	if (at == NULL || memchr(at + 1, '@', flen - (size_t)(at - cf) - 1) != NULL ||
	    memchr(nf, '@', nlen) == NULL) {
		*why = "must have exactly one @";
		goto out;
	}
	if ((e = email_local_check(cf, (size_t)(at - cf), why)) != BW_OK ||
	    (e = email_domain_check(at + 1, flen - (size_t)(at - cf) - 1, flags, why)) != BW_OK)
		goto out;
	/*
	 * Shown in lower case: the skeleton is of the folded key, so a capital
	 * shown as typed could pass for another letter it does not cover ('I'
	 * for 'l', 'O' for '0').
	 */
	lc = u8_tolower(nf, nlen, NULL, UNINORM_NFKC, lbuf, &llen);
	if (lc == NULL) {
		*why = "cannot be normalised";
		e = BW_ERR_NOMEM;
		goto out;
	}
	if (llen > EMAIL_MAX || !email_chars_ok(lc, llen) || memchr(lc, '@', llen) == NULL) {
		*why = "is longer than 254 bytes once normalised";
		e = BW_ERR_INVALID;
		goto out;
	}
	memcpy(out->display, lc, llen);
	out->display[llen] = '\0';
	memcpy(out->key, cf, flen);
	out->key[flen] = '\0';
	if ((e = email_skeleton(cf, flen, out->skel, why)) != BW_OK) {
		memset(out, 0, sizeof(*out));
		goto out;
	}
	/* The old plausibility rules still hold for what is shown. */
	if (!util_valid_email(out->display)) {
		memset(out, 0, sizeof(*out));
		*why = "is not an e-mail address";
		e = BW_ERR_INVALID;
		goto out;
	}
	*why = NULL;
	e = BW_OK;
out:
	if (nf != NULL && nf != nbuf)
		free(nf);
	if (cf != NULL && cf != fbuf)
		free(cf);
	if (lc != NULL && lc != lbuf)
		free(lc);
	return e;
}
