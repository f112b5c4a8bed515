/* The e-mail identity normaliser (src/core/email.c, ADR 0012). */
#include "unit.h"

#include "core/core.h"

/* in normalises to key (and is shown as display). */
static void
ok(const char *in, unsigned flags, const char *display, const char *key)
{
	struct email_addr a;
	const char *why = "unset";
	bw_err e = email_normalize(in, flags, &a, &why);
	if (e != BW_OK)
		fail_msg("'%s' refused: %s", in, why ? why : "(null)");
	assert_null(why);
	assert_string_equal(a.display, display);
	assert_string_equal(a.key, key);
}

/* in is refused, with a reason containing part (and out zeroed). */
static void
refused(const char *in, unsigned flags, const char *part)
{
	struct email_addr a;
	const char *why = NULL;
	memset(&a, 'x', sizeof(a));
	bw_err e = email_normalize(in, flags, &a, &why);
	if (e != BW_ERR_INVALID)
		fail_msg("'%s' accepted as '%s' (%d)", in, a.key, (int)e);
	assert_non_null(why);
	if (strstr(why, part) == NULL)
		fail_msg("'%s': reason '%s' lacks '%s'", in, why, part);
	assert_int_equal(a.key[0], 0);
	assert_int_equal(a.display[0], 0);
}

static void
test_case_and_compatibility_fold_to_one_key(void **state)
{
	(void)state;
	ok("admin@acme.test", 0, "admin@acme.test", "admin@acme.test");
	/* shown in lower case too (the skeleton is of the folded key: ADR 0012) */
	ok("ADMIN@acme.test", 0, "admin@acme.test", "admin@acme.test");
	ok("Admin@ACME.Test", 0, "admin@acme.test", "admin@acme.test");
	/* Full-width letters and at sign are the same characters under NFKC. */
	ok("\xef\xbd\x81\xef\xbd\x84\xef\xbd\x8d\xef\xbd\x89\xef\xbd\x8e\xef\xbc\xa0" "acme.test", 0,
	   "admin@acme.test", "admin@acme.test");
	/* A precomposed and a decomposed e-acute are one address. */
	ok("jos\xc3\xa9@acme.test", 0, "jos\xc3\xa9@acme.test", "jos\xc3\xa9@acme.test");
	ok("jose\xcc\x81@acme.test", 0, "jos\xc3\xa9@acme.test", "jos\xc3\xa9@acme.test");
	ok("JOS\xc3\x89@acme.test", 0, "jos\xc3\xa9@acme.test", "jos\xc3\xa9@acme.test");
	/* Full case folding: sharp s is ss. */
	ok("stra\xc3\x9f" "e@acme.test", 0, "stra\xc3\x9f" "e@acme.test", "strasse@acme.test");
	ok("o'brien+tag@mail.example.com", 0, "o'brien+tag@mail.example.com",
	   "o'brien+tag@mail.example.com");
}

static void
test_invisible_control_and_space_refused(void **state)
{
	(void)state;
	const char *why = "invisible, control or space";
	refused("admin\xe2\x80\x8b@acme.test", 0, why);      /* U+200B zero width space */
	refused("admin@acme.test\xc2\xa0", 0, why);          /* U+00A0 no-break space */
	refused("ad\xe2\x80\x8dmin@acme.test", 0, why);      /* U+200D zero width joiner */
	refused("admin\xef\xbb\xbf@acme.test", 0, why);      /* U+FEFF byte order mark */
	refused("\xe2\x80\xae" "admin@acme.test", 0, why);   /* U+202E right-to-left override */
	refused("adm\xc2\xadin@acme.test", 0, why);          /* U+00AD soft hyphen */
	refused("admin\xcd\x8f@acme.test", 0, why);          /* U+034F combining grapheme joiner */
	refused("admin\xe3\x85\xa4@acme.test", 0, why);      /* U+3164 hangul filler */
	refused("admin\xef\xb8\x8f@acme.test", 0, why);      /* U+FE0F variation selector */
	refused("admin\xe2\x80\xa8@acme.test", 0, why);      /* U+2028 line separator */
	refused("admin\xe3\x80\x80@acme.test", 0, why);      /* U+3000 ideographic space */
	refused("admin\x01@acme.test", 0, why);
	refused("admin@acme.test\x7f", 0, why);
	refused("admin @acme.test", 0, why);
	refused("admin\t@acme.test", 0, why);
	refused(" admin@acme.test", 0, why);
	refused("admin\xee\x80\x80@acme.test", 0, why);      /* U+E000 private use */
	refused("admin\xf0\x9f\xbf\xbf@acme.test", 0, why);  /* U+1FFFF unassigned */
}

static void
test_mixed_scripts_refused(void **state)
{
	(void)state;
	refused("\xd0\xb0" "dmin@acme.test", 0, "local part");        /* Cyrillic a + Latin */
	refused("admin@\xd0\xb0" "cme.test", EMAIL_ALLOW_IDN, "domain label");
	refused("p\xce\xb1ypal@acme.test", 0, "local part");          /* Greek alpha */
	/* One script each is fine; digits and punctuation are common to all. */
	ok("\xd0\xb0\xd0\xb4\xd0\xbc\xd0\xb8\xd0\xbd.2@acme.test", 0,
	   "\xd0\xb0\xd0\xb4\xd0\xbc\xd0\xb8\xd0\xbd.2@acme.test",
	   "\xd0\xb0\xd0\xb4\xd0\xbc\xd0\xb8\xd0\xbd.2@acme.test");
	/* Japanese writes Han, Hiragana and Katakana together. */
	ok("\xe5\xb1\xb1\xe7\x94\xb0\xe3\x81\x9f\xe3\x82\xab@acme.test", 0,
	   "\xe5\xb1\xb1\xe7\x94\xb0\xe3\x81\x9f\xe3\x82\xab@acme.test",
	   "\xe5\xb1\xb1\xe7\x94\xb0\xe3\x81\x9f\xe3\x82\xab@acme.test");
	/* ...but not with Latin. */
	refused("\xe5\xb1\xb1\xe7\x94\xb0x@acme.test", 0, "local part");
}

static void
test_idn_only_when_allowed(void **state)
{
	(void)state;
	/* пример.com: one script per label. */
	const char *idn = "a@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.com";
	refused(idn, 0, "non-ASCII domain");
	ok(idn, EMAIL_ALLOW_IDN, idn, idn);
	ok("a@\xd0\x9f\xd0\xa0\xd0\x98\xd0\x9c\xd0\x95\xd0\xa0.com", EMAIL_ALLOW_IDN, idn, idn);
	/* ACE labels are refused whatever the setting: the U-label is the one form. */
	refused("a@xn--e1afmkfd.com", 0, "xn--");
	refused("a@XN--e1afmkfd.com", EMAIL_ALLOW_IDN, "xn--");
	/* Symbols and punctuation look-alikes are not letters. */
	refused("a@acme\xe2\x88\x95x.test", EMAIL_ALLOW_IDN, "not allowed in the domain");
	refused("a@acme\xe3\x80\x82test", EMAIL_ALLOW_IDN, "not allowed in the domain");
}

static void
test_syntax(void **state)
{
	(void)state;
	refused(NULL, 0, "not an e-mail");
	refused("", 0, "not an e-mail");
	refused("admin", 0, "exactly one @");
	refused("a@b@acme.test", 0, "exactly one @");
	refused("a\xef\xbc\xa0" "b@acme.test", 0, "exactly one @"); /* a full-width @ too */
	refused("@acme.test", 0, "local part");
	refused("admin@", 0, "label");
	refused("admin@acme", 0, "no dot");
	refused("admin@.acme.test", 0, "label");
	refused("admin@acme.test.", 0, "label");
	refused("admin@acme..test", 0, "label");
	refused("admin@-acme.test", 0, "hyphen");
	refused("admin@acme_x.test", 0, "not allowed in the domain");
	refused(".admin@acme.test", 0, "dot");
	refused("ad<min@acme.test", 0, "local part");
	refused("ad\"min@acme.test", 0, "local part");
	refused("a\xe2\x98\x83@acme.test", 0, "local part"); /* a snowman is a symbol */
	refused("\xff" "admin@acme.test", 0, "UTF-8");
	refused("admin@acme.test\xc3", 0, "UTF-8");
	refused("\xc0\xa0@acme.test", 0, "UTF-8"); /* over-long encoding */
	char lng[300];
	memset(lng, 'a', 65);
	snprintf(lng + 65, sizeof(lng) - 65, "@acme.test");
	refused(lng, 0, "64 bytes");
	memset(lng, 'a', sizeof(lng));
	lng[0] = 'b';
	lng[1] = '@';
	lng[200] = '.';
	lng[255] = '\0';
	refused(lng, 0, "254 bytes");
	/* U+FDFA is one character that NFKC turns into eighteen. */
	char grow[256];
	size_t n = 0;
	for (int i = 0; i < 14; i++) {
		memcpy(grow + n, "\xef\xb7\xba", 3);
		n += 3;
	}
	snprintf(grow + n, sizeof(grow) - n, "@acme.test");
	refused(grow, 0, "254 bytes once normalised");
}

/* The confusable skeleton of in, which must be accepted (flags 0). */
static const char *
skel(const char *in, char *buf, size_t len)
{
	struct email_addr a;
	const char *why = "unset";
	if (email_normalize(in, 0, &a, &why) != BW_OK)
		fail_msg("'%s' refused: %s", in, why ? why : "(null)");
	assert_true(a.skel[0] != '\0' && strlen(a.skel) <= EMAIL_SKEL_MAX);
	snprintf(buf, len, "%s", a.skel);
	return buf;
}

static void
same_skel(const char *x, const char *y)
{
	char a[EMAIL_SKEL_MAX + 1], b[EMAIL_SKEL_MAX + 1];
	if (strcmp(skel(x, a, sizeof(a)), skel(y, b, sizeof(b))) != 0)
		fail_msg("'%s' (%s) and '%s' (%s) should read alike", x, a, y, b);
}

static void
other_skel(const char *x, const char *y)
{
	char a[EMAIL_SKEL_MAX + 1], b[EMAIL_SKEL_MAX + 1];
	if (strcmp(skel(x, a, sizeof(a)), skel(y, b, sizeof(b))) == 0)
		fail_msg("'%s' and '%s' should differ, both are '%s'", x, y, a);
}

static void
test_lookalikes_share_a_skeleton(void **state)
{
	(void)state;
	same_skel("admin@acme.test", "adm\xc4\xb1n@acme.test");    /* U+0131 dotless i */
	same_skel("admin@acme.test", "\xc9\x91" "dmin@acme.test"); /* U+0251 Latin alpha */
	same_skel("greg@acme.test", "\xc9\xa1" "reg@acme.test");   /* U+0261 script g */
	same_skel("o'brien@acme.test", "o\xea\x9e\x8c" "brien@acme.test"); /* U+A78C saltillo */
	same_skel("o'brien@acme.test", "o`brien@acme.test");
	same_skel("ADMIN@acme.test", "adm\xc4\xb1n@acme.test");    /* after case folding */
	same_skel("mary@acme.test", "rnary@acme.test");            /* rn reads as m */
	same_skel("bill@acme.test", "bi11@acme.test");
	same_skel("admin@acme.test", "admin@acrne.test");          /* the domain too */
	/* A dot above on i replaces its dot: unseen, so not in the skeleton. */
	same_skel("admin@acme.test", "admi\xcc\x87n@acme.test");
	same_skel("admin@acme.test", "ADM\xc4\xb0N@acme.test");    /* U+0130 folds to i + U+0307 */
	same_skel("adm\xe1\xbb\x8bn@acme.test", "admi\xcc\xa3\xcc\x87n@acme.test"); /* dot below first */
	other_skel("admin@acme.test", "adm\xc3\xafn@acme.test");   /* i diaeresis is no i */
	/* Whole-script: all-Cyrillic "асе" is one script, and reads as "ace". */
	same_skel("ace@acme.test", "\xd0\xb0\xd1\x81\xd0\xb5@acme.test");
	/* Distinct letters stay distinct names. */
	other_skel("s\xc3\xb8ren@acme.test", "soren@acme.test");   /* ø */
	other_skel("\xc5\x82ukasz@acme.test", "lukasz@acme.test"); /* ł */
	other_skel("jos\xc3\xa9@acme.test", "jose@acme.test");     /* é */
	other_skel("admin@acme.test", "admins@acme.test");
	other_skel("j0hn@acme.test", "john@acme.test");           /* UTS #39: 0 reads as O, not o */
	/* A Turkish name with a dotless i is fine where it has no ASCII twin. */
	char b[EMAIL_SKEL_MAX + 1];
	assert_string_equal(skel("\xc4\xb1lg\xc4\xb1n@acme.test", b, sizeof(b)), "ilgin@acrne.test");
}

static void
test_common_modifiers_refused(void **state)
{
	(void)state;
	const char *why = "modifier letter or symbol";
	refused("o\xca\xbc" "brien@acme.test", 0, why); /* U+02BC modifier letter apostrophe */
	refused("o\xca\xb9" "brien@acme.test", 0, why); /* U+02B9 modifier letter prime */
	refused("o\xcb\x88" "brien@acme.test", 0, why); /* U+02C8 modifier letter vertical line */
	refused("a\xea\x9e\x88" "b@acme.test", 0, why); /* U+A788 modifier letter low circumflex */
	refused("a\xcb\x82" "b@acme.test", 0, why);     /* U+02C2 modifier letter left arrowhead (Sk) */
	refused("a@acme\xca\xbc" "x.test", EMAIL_ALLOW_IDN, why);
	/* ASCII ^ and ` are atext, visibly themselves (and ` reads as ' in the skeleton). */
	ok("o`brien^x@acme.test", 0, "o`brien^x@acme.test", "o`brien^x@acme.test");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_case_and_compatibility_fold_to_one_key),
		cmocka_unit_test(test_invisible_control_and_space_refused),
		cmocka_unit_test(test_mixed_scripts_refused),
		cmocka_unit_test(test_idn_only_when_allowed),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_lookalikes_share_a_skeleton),
		cmocka_unit_test(test_common_modifiers_refused),
	};
	return cmocka_run_group_tests_name("email", tests, NULL, NULL);
}
