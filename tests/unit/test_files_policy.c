/*
 * Upload names and types (src/files/policy.c, src/files/sniff.c): every
 * blocked extension refused wherever it stands, the name tricks (double
 * extensions, the right-to-left override, NUL, controls, over-long,
 * invalid UTF-8) refused, what is normalised said, entry paths
 * (traversal, absolute, drive letters), and libmagic's verdicts on bytes
 * made here (PNG named .pdf, a claimed type that disagrees, ELF, PE,
 * scripts).
 */
#include "unit.h"

#include <pthread.h>
#include <strings.h>

#include "files/check.h"

/* files_name_check on a C string. */
static bw_err
name(const char *s, char out[FILES_NAME_MAX + 1], const struct files_type **t, int *norm,
     const char **why)
{
	return files_name_check(s, strlen(s), out, t, norm, why);
}

static void
assert_name_refused(const char *s, bw_err want)
{
	char out[FILES_NAME_MAX + 1];
	const struct files_type *t;
	int norm;
	const char *why = NULL;
	bw_err e = name(s, out, &t, &norm, &why);
	if (e != want)
		fail_msg("\"%s\": %s, not %s (%s)", s, bw_errcode(e), bw_errcode(want),
			 why ? why : "-");
	assert_non_null(why);
	assert_null(t);
	assert_string_equal(out, "");
}

static const struct files_type *
assert_name_ok(const char *s, const char *stored, int normalised)
{
	char out[FILES_NAME_MAX + 1];
	const struct files_type *t = NULL;
	int norm = -1;
	const char *why = NULL;
	bw_err e = name(s, out, &t, &norm, &why);
	if (e != BW_OK)
		fail_msg("\"%s\" refused: %s", s, why ? why : "-");
	assert_string_equal(out, stored);
	assert_int_equal(norm, normalised);
	if (normalised)
		assert_non_null(why);
	assert_non_null(t);
	return t;
}

/* --- the tables ------------------------------------------------------------------- */

static void
test_tables(void **state)
{
	(void)state;
	size_t nt, nb;
	const struct files_type *t = files_types(&nt);
	const char *const *b = files_blocked(&nb);
	assert_true(nb >= 50);
	static const char *const required[] = {
	    "exe", "dll", "scr", "com", "pif", "bat", "cmd", "msi", "msp", "ps1", "psm1",
	    "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta", "jar", "lnk", "reg", "cpl",
	    "sh", "app", "dmg", "pkg", "deb", "rpm", "apk", "iso", "img", "docm", "xlsm",
	    "pptm", "svg", "html", "htm", "php", "py", "pl"};
	for (size_t i = 0; i < BW_ARRAY_LEN(required); i++)
		if (!files_ext_blocked(required[i]))
			fail_msg(".%s is not blocked", required[i]);
	for (size_t i = 0; i < nb; i++) {
		assert_true(files_ext_blocked(b[i]));
		for (size_t j = 0; j < nt; j++)
			if (strcasecmp(b[i], t[j].ext) == 0)
				fail_msg(".%s is both allowed and blocked", b[i]);
	}
	for (size_t j = 0; j < nt; j++) {
		assert_non_null(t[j].mimes);
		assert_non_null(t[j].mimes[0]);
		for (const char *const *m = t[j].mimes; *m != NULL; m++) {
			assert_false(files_mime_executable(*m));
			assert_true(files_mime_allowed(*m));
		}
	}
	assert_true(files_ext_blocked("EXE"));
	assert_false(files_ext_blocked("pdf"));
	assert_false(files_ext_blocked(""));
	assert_false(files_ext_blocked(NULL));
}

/* --- names ----------------------------------------------------------------------------- */

static void
test_each_blocked_extension(void **state)
{
	(void)state;
	size_t nb;
	const char *const *b = files_blocked(&nb);
	char s[128];
	for (size_t i = 0; i < nb; i++) {
		snprintf(s, sizeof(s), "file.%s", b[i]);
		assert_name_refused(s, BW_ERR_MEDIA_TYPE);
		/* Any case, and hidden behind an allowed one. */
		snprintf(s, sizeof(s), "FILE.%s", b[i]);
		for (char *p = s; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		assert_name_refused(s, BW_ERR_MEDIA_TYPE);
		snprintf(s, sizeof(s), "setup.%s.pdf", b[i]);
		assert_name_refused(s, BW_ERR_MEDIA_TYPE);
		snprintf(s, sizeof(s), "invoice.pdf.%s", b[i]);
		assert_name_refused(s, BW_ERR_MEDIA_TYPE);
		/* An entry too, in a file or a directory name. */
		const struct files_type *t;
		const char *why;
		snprintf(s, sizeof(s), "dir/file.%s", b[i]);
		assert_int_equal(files_entry_check(s, &t, &why), BW_ERR_MEDIA_TYPE);
		snprintf(s, sizeof(s), "x.%s/readme.txt", b[i]);
		assert_int_equal(files_entry_check(s, &t, &why), BW_ERR_MEDIA_TYPE);
	}
}

static void
test_each_allowed_type(void **state)
{
	(void)state;
	size_t nt;
	const struct files_type *t = files_types(&nt);
	char s[64];
	for (size_t i = 0; i < nt; i++) {
		snprintf(s, sizeof(s), "Report 2026.%s", t[i].ext);
		assert_ptr_equal(assert_name_ok(s, s, 0), &t[i]);
	}
	assert_string_equal(assert_name_ok("backup.tar.gz", "backup.tar.gz", 0)->ext, "tar.gz");
	assert_string_equal(assert_name_ok("BACKUP.TAR.XZ", "BACKUP.TAR.XZ", 0)->ext, "tar.xz");
	assert_string_equal(assert_name_ok("notes.2026.gz", "notes.2026.gz", 0)->ext, "gz");
	assert_string_equal(assert_name_ok("Scan.PDF", "Scan.PDF", 0)->ext, "pdf");
}

static void
test_double_extensions(void **state)
{
	(void)state;
	assert_name_refused("invoice.pdf.exe", BW_ERR_MEDIA_TYPE);
	assert_name_refused("setup.exe.pdf", BW_ERR_MEDIA_TYPE);
	assert_name_refused("a.exe .pdf", BW_ERR_MEDIA_TYPE);
	assert_name_refused("a. EXE.pdf", BW_ERR_MEDIA_TYPE);
	assert_name_refused("a.pdf.exe.", BW_ERR_MEDIA_TYPE);   /* Windows drops the dot */
	assert_name_refused("a.pdf.exe . .", BW_ERR_MEDIA_TYPE); /* and the spaces */
	assert_name_refused(".exe.txt", BW_ERR_MEDIA_TYPE);
	assert_name_refused("photo.img.png", BW_ERR_MEDIA_TYPE);
	/* The stem is no extension. */
	assert_name_ok("img.png", "img.png", 0);
	assert_name_ok("app.log", "app.log", 0);
	assert_name_ok("exe.pdf", "exe.pdf", 0);
	assert_name_ok("v1.2.3.txt", "v1.2.3.txt", 0);
	const char *why;
	char out[FILES_NAME_MAX + 1];
	const struct files_type *t;
	int norm;
	assert_int_equal(name("invoice.pdf.exe", out, &t, &norm, &why), BW_ERR_MEDIA_TYPE);
	assert_non_null(strstr(why, ".exe"));
}

static void
test_not_allowed(void **state)
{
	(void)state;
	assert_name_refused("README", BW_ERR_MEDIA_TYPE);
	assert_name_refused("main.c", BW_ERR_MEDIA_TYPE);
	assert_name_refused(".bashrc", BW_ERR_MEDIA_TYPE);
	assert_name_refused("a.pdf\xe3\x80\x80", BW_ERR_MEDIA_TYPE); /* ideographic space */
	assert_name_refused("drawing.svg", BW_ERR_MEDIA_TYPE);
	assert_name_refused("page.html", BW_ERR_MEDIA_TYPE);
}

static void
test_bidi_and_controls(void **state)
{
	(void)state;
	/* "invoice<RLO>fdp.exe" shows as "invoiceexe.pdf". */
	assert_name_refused("invoice\xe2\x80\xae" "fdp.exe", BW_ERR_INVALID);
	assert_name_refused("invoice\xe2\x80\xae" "fdp.txt", BW_ERR_INVALID);
	static const char *const bad[] = {
	    "a\xe2\x80\xaa.pdf", "a\xe2\x80\xab.pdf", "a\xe2\x80\xac.pdf", "a\xe2\x80\xad.pdf",
	    "a\xe2\x81\xa6.pdf", "a\xe2\x81\xa7.pdf", "a\xe2\x81\xa8.pdf", "a\xe2\x81\xa9.pdf",
	    "a\xe2\x80\x8e.pdf", "a\xe2\x80\x8f.pdf", "a\xd8\x9c.pdf",     /* LRM RLM ALM */
	    "a\xe2\x80\x8b.pdf", "a\xef\xbb\xbf.pdf", "a\xe2\x81\xa0.pdf", /* ZWSP BOM WJ */
	    "a\xe2\x80\xa8.pdf", "a\xe2\x80\xa9.pdf", "a\xf3\xa0\x80\x81.pdf",
	    "a\xef\xbf\xbe.pdf", "a\tb.pdf", "a\nb.pdf", "a\rb.pdf", "a\x1b[31m.pdf",
	    "a\x7f.pdf", "a\xc2\x85.pdf", "a\xc2\x9b.pdf", "a/b.pdf", "a\\b.pdf", "../a.pdf",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
		assert_name_refused(bad[i], BW_ERR_INVALID);
	/* ZWJ and ZWNJ are letters' glue, not tricks. */
	assert_name_ok("\xd9\x85\xe2\x80\x8c\xd9\x86.pdf", "\xd9\x85\xe2\x80\x8c\xd9\x86.pdf", 0);
	const struct files_type *t;
	const char *why;
	assert_int_equal(files_entry_check("docs/invoice\xe2\x80\xae" "fdp.txt", &t, &why),
			 BW_ERR_INVALID);
	assert_non_null(strstr(why, "bidirectional"));
}

static void
test_nul_and_utf8(void **state)
{
	(void)state;
	char out[FILES_NAME_MAX + 1];
	const struct files_type *t;
	int norm;
	const char *why;
	assert_int_equal(files_name_check("a\0.exe.pdf", 10, out, &t, &norm, &why), BW_ERR_INVALID);
	assert_non_null(strstr(why, "NUL"));
	assert_int_equal(files_name_check("a.pdf\0", 6, out, &t, &norm, &why), BW_ERR_INVALID);
	static const char *const bad[] = {
	    "\xc0\xaf.pdf", "\xe0\x80\xaf.pdf", "\xed\xa0\x80.pdf", "\xf4\x90\x80\x80.pdf",
	    "\xff.pdf", "a\xe2\x80.pdf", "a.pdf\xc3", "\x80.pdf",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
		assert_name_refused(bad[i], BW_ERR_INVALID);
	assert_name_ok("r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac.pdf",
		       "r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac.pdf", 0);
}

static void
test_lengths_and_empty(void **state)
{
	(void)state;
	char s[FILES_NAME_MAX + 64];
	memset(s, 'a', FILES_NAME_MAX - 4);
	memcpy(s + FILES_NAME_MAX - 4, ".pdf", 5);
	assert_int_equal(strlen(s), FILES_NAME_MAX);
	assert_name_ok(s, s, 0);
	memset(s, 'a', FILES_NAME_MAX - 3);
	memcpy(s + FILES_NAME_MAX - 3, ".pdf", 5);
	assert_name_refused(s, BW_ERR_INVALID);
	/* Over-long before normalising, within after it: the stored name decides. */
	memset(s, 'a', FILES_NAME_MAX - 4);
	memcpy(s + FILES_NAME_MAX - 4, ".pdf          ", 15);
	char want[FILES_NAME_MAX + 1];
	memcpy(want, s, FILES_NAME_MAX);
	want[FILES_NAME_MAX] = '\0';
	assert_name_ok(s, want, 1);
	char big[8192];
	memset(big, 'a', sizeof(big) - 5);
	memcpy(big + sizeof(big) - 5, ".pdf", 5);
	assert_name_refused(big, BW_ERR_INVALID);
	static const char *const bad[] = {"", " ", ".", "..", "...", " . ", "   .  "};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
		assert_name_refused(bad[i], BW_ERR_INVALID);
}

static void
test_normalised(void **state)
{
	(void)state;
	assert_name_ok("  invoice.pdf  ", "invoice.pdf", 1);
	assert_name_ok("invoice.pdf...", "invoice.pdf", 1);
	assert_name_ok("invoice.pdf . .", "invoice.pdf", 1);
	/* NFD e + U+0301 becomes NFC U+00E9. */
	assert_name_ok("facture_e\xcc\x81.pdf", "facture_\xc3\xa9.pdf", 1);
	char out[FILES_NAME_MAX + 1];
	const struct files_type *t;
	int norm;
	const char *why;
	assert_int_equal(name(" e\xcc\x81.pdf.", out, &t, &norm, &why), BW_OK);
	assert_int_equal(norm, 1);
	assert_non_null(strstr(why, "NFC"));
	assert_non_null(strstr(why, "dots"));
	assert_int_equal(name("plain.pdf", out, &t, &norm, &why), BW_OK);
	assert_int_equal(norm, 0);
	assert_null(why);
}

/* --- entry paths ------------------------------------------------------------------------- */

static void
test_entry_paths(void **state)
{
	(void)state;
	const struct files_type *t;
	const char *why;
	static const char *const bad[] = {
	    "../evil.txt", "a/../../evil.txt", "a/..", "./a.txt", "a/./b.txt", "/etc/passwd",
	    "/abs.txt", "\\\\server\\share.txt", "C:/Windows/x.txt", "c:x.txt", "a//b.txt",
	    "a\\..\\b.txt", "", "a/.../b", "a/ . /b", "dir//",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		bw_err e = files_entry_check(bad[i], &t, &why);
		if (e == BW_OK)
			fail_msg("entry \"%s\" accepted", bad[i]);
		assert_non_null(why);
		assert_null(t);
	}
	assert_int_equal(files_entry_check("../evil.txt", &t, &why), BW_ERR_INVALID);
	assert_non_null(strstr(why, ".."));
	assert_int_equal(files_entry_check("/etc/passwd", &t, &why), BW_ERR_INVALID);
	assert_non_null(strstr(why, "absolute"));
	assert_int_equal(files_entry_check("Evil.app/Contents/MacOS/run", &t, &why),
			 BW_ERR_MEDIA_TYPE);
	assert_int_equal(files_entry_check("payload.exe.", &t, &why), BW_ERR_MEDIA_TYPE);
	assert_int_equal(files_entry_check("payload.exe ", &t, &why), BW_ERR_MEDIA_TYPE);

	assert_int_equal(files_entry_check("docs/", &t, &why), BW_OK);
	assert_null(t);
	assert_int_equal(files_entry_check("docs/sub/report.pdf", &t, &why), BW_OK);
	assert_string_equal(t->ext, "pdf");
	assert_int_equal(files_entry_check("logs/syslog", &t, &why), BW_OK);
	assert_null(t);
	assert_int_equal(files_entry_check("data/archive.tar.gz", &t, &why), BW_OK);
	assert_string_equal(t->ext, "tar.gz");
	assert_int_equal(files_entry_check("src/main.c", &t, &why), BW_OK);
	assert_null(t); /* not allowed, not refused: its bytes decide */

	char p[FILES_PATH_MAX + 16];
	memset(p, 'a', sizeof(p));
	for (size_t i = 100; i < sizeof(p); i += 101)
		p[i] = '/';
	p[FILES_PATH_MAX] = '\0';
	assert_int_equal(files_entry_check(p, &t, &why), BW_OK);
	p[FILES_PATH_MAX] = 'a';
	p[FILES_PATH_MAX + 1] = '\0';
	assert_int_equal(files_entry_check(p, &t, &why), BW_ERR_INVALID);
	memset(p, 'a', FILES_NAME_MAX + 1);
	p[FILES_NAME_MAX + 1] = '\0';
	assert_int_equal(files_entry_check(p, &t, &why), BW_ERR_INVALID);
}

/* --- magic bytes ------------------------------------------------------------------------- */

static const unsigned char png[] = {
    0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1,
    0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae,
    0x42, 0x60, 0x82};

static const struct files_type *
type_of(const char *ext)
{
	size_t n;
	const struct files_type *t = files_types(&n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].ext, ext) == 0)
			return &t[i];
	fail_msg("no type %s", ext);
	return NULL;
}

static void
sniff_is(const void *buf, size_t n, const char *want)
{
	char mime[FILES_MIME_MAX + 1];
	assert_int_equal(files_sniff(buf, n, mime), BW_OK);
	assert_string_equal(mime, want);
}

/* A 64-bit ELF executable's header. */
static void
make_elf(unsigned char *b, size_t n)
{
	memset(b, 0, n);
	memcpy(b, "\x7f" "ELF\x02\x01\x01", 7);
	b[16] = 2;  /* ET_EXEC */
	b[18] = 62; /* x86-64 */
	b[20] = 1;
}

/* A DOS header pointing at a PE header (what every Windows program starts with). */
static void
make_pe(unsigned char *b, size_t n)
{
	memset(b, 0, n);
	b[0] = 'M', b[1] = 'Z', b[2] = 0x90, b[4] = 3, b[8] = 4, b[0x18] = 0x40, b[0x3c] = 0x80;
	memcpy(b + 0x80, "PE\0\0\x4c\x01\x01\0", 8);
	b[0x94] = 0xe0, b[0x96] = 0x02, b[0x97] = 0x01, b[0x98] = 0x0b, b[0x99] = 0x01;
}

static void
test_sniff(void **state)
{
	(void)state;
	sniff_is(png, sizeof(png), "image/png");
	sniff_is("%PDF-1.4\n1 0 obj\n<< >>\nendobj\ntrailer\n<< >>\n%%EOF\n", 47, "application/pdf");
	sniff_is("hello world\n", 12, "text/plain");
	sniff_is("", 0, "application/x-empty");
	sniff_is("#!/bin/sh\necho hi\n", 18, "text/x-shellscript");
	sniff_is("@echo off\r\necho hi\r\n", 20, "text/x-msdos-batch");
	unsigned char b[512];
	make_elf(b, sizeof(b));
	char mime[FILES_MIME_MAX + 1];
	assert_int_equal(files_sniff(b, 64, mime), BW_OK);
	assert_true(files_mime_executable(mime));
	make_pe(b, sizeof(b));
	sniff_is(b, sizeof(b), "application/vnd.microsoft.portable-executable");
	assert_true(files_mime_executable("application/vnd.microsoft.portable-executable"));
	static const char *const ex[] = {
	    "application/x-dosexec", "application/x-executable", "application/x-sharedlib",
	    "application/x-pie-executable", "application/x-mach-binary", "text/x-shellscript",
	    "text/x-msdos-batch", "application/x-ms-shortcut", "application/java-archive",
	    "application/x-java-applet", "application/x-msi", "text/html", "image/svg+xml",
	    "text/x-php", "text/x-script.python", "APPLICATION/X-DOSEXEC; x=y"};
	for (size_t i = 0; i < BW_ARRAY_LEN(ex); i++) {
		assert_true(files_mime_executable(ex[i]));
		assert_false(files_mime_allowed(ex[i]));
	}
	assert_false(files_mime_executable("text/plain"));
	assert_false(files_mime_executable(NULL));
	assert_true(files_mime_allowed("text/plain"));
	assert_true(files_mime_allowed("Image/PNG"));
	assert_false(files_mime_allowed("application/octet-stream"));
	assert_false(files_mime_allowed("text/x-c"));
}

static void
test_type_agrees(void **state)
{
	(void)state;
	const char *why;
	char mime[FILES_MIME_MAX + 1];
	assert_int_equal(files_sniff(png, sizeof(png), mime), BW_OK);
	/* PNG bytes named .pdf. */
	assert_int_equal(files_type_agrees(type_of("pdf"), NULL, mime, &why), BW_ERR_UNPROCESSABLE);
	assert_non_null(strstr(why, "image/png"));
	assert_non_null(strstr(why, "PDF"));
	assert_int_equal(files_type_agrees(type_of("png"), NULL, mime, &why), BW_OK);
	assert_int_equal(files_type_agrees(type_of("png"), "", mime, &why), BW_OK);
	assert_int_equal(files_type_agrees(type_of("png"), "application/octet-stream", mime, &why),
			 BW_OK);
	assert_int_equal(files_type_agrees(type_of("png"), "image/png", mime, &why), BW_OK);
	assert_int_equal(files_type_agrees(type_of("png"), " Image/PNG; q=1", mime, &why), BW_OK);
	assert_int_equal(files_type_agrees(type_of("png"), "image/x-png", mime, &why), BW_OK);
	/* The claimed type disagreeing with both. */
	assert_int_equal(files_type_agrees(type_of("png"), "application/pdf", mime, &why),
			 BW_ERR_UNPROCESSABLE);
	assert_non_null(strstr(why, "application/pdf"));
	assert_int_equal(files_type_agrees(type_of("png"), "text/html", mime, &why),
			 BW_ERR_UNPROCESSABLE);
	assert_int_equal(files_type_agrees(type_of("txt"), "application/x-msdownload", "text/plain",
					   &why),
			 BW_ERR_UNPROCESSABLE);
	/* What browsers claim for zips. */
	assert_int_equal(files_type_agrees(type_of("zip"), "application/x-zip-compressed",
					   "application/zip", &why),
			 BW_OK);
	assert_int_equal(files_type_agrees(type_of("zip"), NULL, "application/java-archive", &why),
			 BW_ERR_UNPROCESSABLE);
	assert_int_equal(files_type_agrees(type_of("doc"), NULL, "application/CDFV2", &why), BW_OK);
	assert_int_equal(files_type_agrees(type_of("txt"), NULL, NULL, &why), BW_ERR_UNPROCESSABLE);
	/* A script named .txt. */
	assert_int_equal(files_type_agrees(type_of("txt"), "text/plain", "text/x-shellscript", &why),
			 BW_ERR_UNPROCESSABLE);
}

/* The real OLE2 and PE samples of clamav-testfiles, when present. */
static void
test_sniff_testfiles(void **state)
{
	(void)state;
	static const struct {
		const char *path, *ext;
	} v[] = {{"/usr/share/clamav-testfiles/clam.ole.doc", "doc"},
		 {"/usr/share/clamav-testfiles/clam.ppt", "ppt"},
		 {"/usr/share/clamav-testfiles/clam.pdf", "pdf"},
		 {"/usr/share/clamav-testfiles/clam.zip", "zip"},
		 {"/usr/share/clamav-testfiles/clam.7z", "7z"},
		 {"/usr/share/clamav-testfiles/clam.tar.gz", "tar.gz"}};
	static unsigned char buf[FILES_SNIFF_BYTES];
	for (size_t i = 0; i < BW_ARRAY_LEN(v); i++) {
		FILE *f = fopen(v[i].path, "rb");
		if (f == NULL)
			continue;
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		char mime[FILES_MIME_MAX + 1];
		const char *why;
		assert_int_equal(files_sniff(buf, n, mime), BW_OK);
		if (files_type_agrees(type_of(v[i].ext), NULL, mime, &why) != BW_OK)
			fail_msg("%s: %s", v[i].path, why);
		/* An OLE2 file cut before its directory is still a doc. */
		if (strcmp(v[i].ext, "doc") == 0) {
			assert_int_equal(files_sniff(buf, 512, mime), BW_OK);
			assert_int_equal(files_type_agrees(type_of("doc"), NULL, mime, &why), BW_OK);
		}
	}
	FILE *f = fopen("/usr/share/clamav-testfiles/clam.exe", "rb");
	if (f != NULL) {
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		char mime[FILES_MIME_MAX + 1];
		assert_int_equal(files_sniff(buf, n, mime), BW_OK);
		assert_true(files_mime_executable(mime));
	}
}

/* A cookie per thread, freed when it ends (ASan's leak check says so). */
static void *
sniff_thread(void *arg)
{
	char mime[FILES_MIME_MAX + 1];
	*(bw_err *)arg = files_sniff(png, sizeof(png), mime);
	if (*(bw_err *)arg == BW_OK && strcmp(mime, "image/png") != 0)
		*(bw_err *)arg = BW_ERR_INTERNAL;
	return NULL;
}

static void
test_sniff_threads(void **state)
{
	(void)state;
	pthread_t th[4];
	bw_err r[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, sniff_thread, &r[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(r[i], BW_OK);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tables),
	    cmocka_unit_test(test_each_blocked_extension),
	    cmocka_unit_test(test_each_allowed_type),
	    cmocka_unit_test(test_double_extensions),
	    cmocka_unit_test(test_not_allowed),
	    cmocka_unit_test(test_bidi_and_controls),
	    cmocka_unit_test(test_nul_and_utf8),
	    cmocka_unit_test(test_lengths_and_empty),
	    cmocka_unit_test(test_normalised),
	    cmocka_unit_test(test_entry_paths),
	    cmocka_unit_test(test_sniff),
	    cmocka_unit_test(test_type_agrees),
	    cmocka_unit_test(test_sniff_testfiles),
	    cmocka_unit_test(test_sniff_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
