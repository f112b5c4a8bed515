/*
 * E-mail addresses as identities: the one place an address is turned into
 * the form it is shown in and the key it is unique and looked up by. The
 * policy is ADR 0012; libunistring supplies the Unicode data (normalisation,
 * case folding, categories, scripts), so there are no tables here.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

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
		if (c < 0x80 ? (c <= ' ' || c == 0x7f || strchr("<>,;\"\\()[]:", (int)c) != NULL)
			     : !email_nonascii_ok(c)) {
			*why = "has a character that is not allowed in the local part";
			return BW_ERR_INVALID;
		}
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
			} else if (!email_nonascii_ok(c)) {
				*why = "has a character that is not allowed in the domain";
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

bw_err
email_normalize(const char *in, unsigned flags, struct email_addr *out, const char **why)
{
	uint8_t nbuf[EMAIL_WORK], fbuf[EMAIL_WORK];
	uint8_t *nf = NULL, *cf = NULL;
	size_t nlen = sizeof(nbuf), flen = sizeof(fbuf), n;
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
	memcpy(out->display, nf, nlen);
	out->display[nlen] = '\0';
	memcpy(out->key, cf, flen);
	out->key[flen] = '\0';
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
	return e;
}
