/*
 * files/archive: step 4, what an archive holds (libarchive), and the
 * polyglot check of documents. Every entry is read to its end through
 * one counter, so the limits hold for what is unpacked, never for what
 * headers claim; nested archives are read as a stream from their parent.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"

#define CHUNK (64 * 1024)
/* A zip's end of central directory record: 22 bytes and a comment of at most 64 KiB - 1. */
#define EOCD_LEN 22
#define TAIL_LEN (65535 + EOCD_LEN)
#define NAME_SHOWN 60
#define LEVELS_MAX 16
/*
 * A 7z keeps its directory at its end and libarchive's reader seeks to
 * it: a nested one is read into memory first, up to this size (a
 * bigger one is refused), not streamed.
 */
#define SEEKABLE_NESTED_MAX (32u << 20)

/*
 * How a stream is opened. DETECT (is a document also an archive?) reads
 * headers only and enables every format that says so by its own magic,
 * but not mtree (a text format whose reader opens files named in it),
 * raw and empty (they take anything), nor any filter (nothing is
 * decompressed to answer). WALK enables what the allowlist holds (zip,
 * 7z, tar, rar) and the three filters of its compressed tars, built in
 * (filter_all would add programs libarchive forks, and uudecode, which
 * finds archives in text). COMPRESSED is WALK and raw, for a .gz of
 * a single file; raw without a filter is then no archive at all.
 */
enum mode { MODE_DETECT, MODE_WALK, MODE_COMPRESSED };

struct walk {
	const struct files_limits *lim;
	uint64_t size; /* of the file: the ratio's denominator */
	struct files_archive_result *res;
	char *why;
	size_t whylen;
	bw_err err; /* the first failure, kept over what libarchive says after it */
	int level;  /* names[0..level) are the entries being read, outermost first */
	char names[LEVELS_MAX][NAME_SHOWN + 4];
	unsigned char *scratch; /* TAIL_LEN bytes for the EOCD scans */
};

/* Printable ASCII only, cut at NAME_SHOWN bytes: entry names are attacker text. */
static void
sanitise(char *out, const char *s)
{
	size_t k = 0, i = 0;
	for (; s[i] != '\0' && k < NAME_SHOWN; i++)
		out[k++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
	if (s[i] != '\0') {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
}

/* Refuse with why: 'entry "a" in "b.zip": ...' naming the entries being read. */
static bw_err BW_PRINTF(3, 4)
refuse(struct walk *w, bw_err e, const char *fmt, ...)
{
	if (w->err != BW_OK)
		return w->err;
	w->err = e;
	if (w->why == NULL || w->whylen == 0)
		return e;
	size_t off = 0;
	w->why[0] = '\0';
	for (int i = w->level - 1; i >= 0 && off < w->whylen; i--) {
		int r = snprintf(w->why + off, w->whylen - off, i == w->level - 1 ? "entry \"%s\"" : " in \"%s\"",
				 w->names[i]);
		if (r < 0)
			break;
		off += (size_t)r;
	}
	if (w->level > 0 && off < w->whylen) {
		int r = snprintf(w->why + off, w->whylen - off, ": ");
		off += r > 0 ? (size_t)r : 0;
	}
	if (off < w->whylen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->why + off, w->whylen - off, fmt, ap);
		va_end(ap);
	}
	return e;
}

/* libarchive's message, sanitised (it may quote an entry's name). */
static const char *
la_error(struct archive *a, char buf[NAME_SHOWN * 2])
{
	const char *s = archive_error_string(a);
	char tmp[NAME_SHOWN + 4];
	sanitise(tmp, s != NULL ? s : "unknown error");
	snprintf(buf, NAME_SHOWN * 2, "%s", tmp);
	return buf;
}

/* Count n more unpacked bytes; refuses past a limit. */
static bw_err
account(struct walk *w, size_t n)
{
	const struct files_limits *lim = w->lim;
	w->res->unpacked += n;
	uint64_t u = w->res->unpacked;
	if (u > lim->unpacked)
		return refuse(w, BW_ERR_UNPROCESSABLE,
			      "the archive unpacks to more than %llu bytes (a zip bomb?)",
			      (unsigned long long)lim->unpacked);
	uint64_t cap = lim->ratio != 0 && w->size > UINT64_MAX / lim->ratio ? UINT64_MAX
									     : lim->ratio * w->size;
	if (u > FILES_RATIO_GRACE && u > cap)
		return refuse(w, BW_ERR_UNPROCESSABLE,
			      "the archive unpacks to more than %llu times its size (a zip bomb?)",
			      (unsigned long long)lim->ratio);
	return BW_OK;
}

/*
 * An end of central directory record in the last n bytes (buf) of a
 * stream of total bytes: the signature, one disk, as many entries on it
 * as in all, a central directory that ends before the record, a comment
 * that fits. Data after the comment is allowed: many readers take it.
 */
static int
eocd_find(const unsigned char *buf, size_t n, uint64_t total)
{
	if (n < EOCD_LEN)
		return 0;
	for (size_t i = n - EOCD_LEN + 1; i-- > 0;) {
		const unsigned char *p = buf + i;
		if (p[0] != 'P' || p[1] != 'K' || p[2] != 5 || p[3] != 6)
			continue;
		unsigned disk = p[4] | p[5] << 8, cddisk = p[6] | p[7] << 8;
		unsigned here = p[8] | p[9] << 8, all = p[10] | p[11] << 8;
		uint64_t cdsize = (uint64_t)p[12] | (uint64_t)p[13] << 8 | (uint64_t)p[14] << 16 |
				  (uint64_t)p[15] << 24;
		uint64_t cdoff = (uint64_t)p[16] | (uint64_t)p[17] << 8 | (uint64_t)p[18] << 16 |
				 (uint64_t)p[19] << 24;
		size_t comment = p[20] | p[21] << 8;
		uint64_t pos = total - n + i;
		int zip64 = cdsize == 0xffffffff || cdoff == 0xffffffff || all == 0xffff;
		if (!zip64 && (disk != 0 || cddisk != 0 || here != all || cdoff + cdsize > pos))
			continue;
		if (comment > n - i - EOCD_LEN)
			continue;
		return 1;
	}
	return 0;
}

/* --- the file itself: a seekable source ----------------------------------------------- */

struct src_reader {
	const struct files_source *src;
	struct walk *w;
	uint64_t off;
	unsigned char buf[CHUNK];
};

static la_ssize_t
src_read(struct archive *a, void *ud, const void **out)
{
	struct src_reader *r = ud;
	*out = r->buf;
	if (r->off >= r->src->size)
		return 0;
	uint64_t left = r->src->size - r->off;
	long got = r->src->read_at(r->src->ud, r->off, r->buf, left < CHUNK ? (size_t)left : CHUNK);
	if (got < 0 || (uint64_t)got > left) {
		refuse(r->w, BW_ERR_IO, "the file cannot be read");
		archive_set_error(a, EIO, "source read failed");
		return -1;
	}
	r->off += (uint64_t)got;
	return got;
}

static la_int64_t
src_seek(struct archive *a, void *ud, la_int64_t off, int whence)
{
	struct src_reader *r = ud;
	(void)a;
	la_int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (la_int64_t)r->off
								  : (la_int64_t)r->src->size;
	if ((off > 0 && base > INT64_MAX - off) || base + off < 0)
		return ARCHIVE_FATAL;
	uint64_t to = (uint64_t)(base + off);
	r->off = to > r->src->size ? r->src->size : to;
	return (la_int64_t)r->off;
}

static la_int64_t
src_skip(struct archive *a, void *ud, la_int64_t n)
{
	struct src_reader *r = ud;
	(void)a;
	if (n <= 0)
		return 0;
	uint64_t left = r->src->size - r->off;
	uint64_t k = (uint64_t)n < left ? (uint64_t)n : left;
	r->off += k;
	return (la_int64_t)k;
}

/* --- an entry: read through the counter, its first bytes kept for libmagic -------------- */

struct entry_stream {
	struct walk *w;
	struct archive *parent;
	unsigned char *pre; /* the first FILES_SNIFF_BYTES, counted already */
	size_t pre_len, pre_off;
	unsigned char *tail; /* the last TAIL_LEN bytes, a ring */
	size_t tail_len, tail_pos;
	uint64_t total;
	int eof;
	unsigned char chunk[CHUNK];
};

/* Up to n bytes of the entry from its archive: bytes, 0 at its end, -1 (w->err set). */
static long
es_pull(struct entry_stream *es, unsigned char *buf, size_t n)
{
	if (es->eof)
		return 0;
	la_ssize_t got = archive_read_data(es->parent, buf, n);
	if (got < 0) {
		char m[NAME_SHOWN * 2];
		if (archive_read_has_encrypted_entries(es->parent) > 0)
			refuse(es->w, BW_ERR_UNPROCESSABLE, "encrypted archives are refused by policy");
		refuse(es->w, BW_ERR_UNPROCESSABLE, "cannot be read: %s", la_error(es->parent, m));
		return -1;
	}
	if (got == 0) {
		es->eof = 1;
		return 0;
	}
	if (account(es->w, (size_t)got) != BW_OK)
		return -1;
	es->total += (uint64_t)got;
	/* The ring keeps the tail, where a zip appended to a document ends. */
	size_t k = (size_t)got, from = 0;
	if (k > TAIL_LEN)
		from = k - TAIL_LEN, k = TAIL_LEN;
	while (k > 0) {
		size_t c = TAIL_LEN - es->tail_pos < k ? TAIL_LEN - es->tail_pos : k;
		memcpy(es->tail + es->tail_pos, buf + from, c);
		es->tail_pos = (es->tail_pos + c) % TAIL_LEN;
		from += c, k -= c;
		if (es->tail_len < TAIL_LEN)
			es->tail_len = es->tail_len + c > TAIL_LEN ? TAIL_LEN : es->tail_len + c;
	}
	return (long)got;
}

/* A child archive's read callback: the kept first bytes, then the rest from the parent. */
static la_ssize_t
es_read(struct archive *a, void *ud, const void **out)
{
	struct entry_stream *es = ud;
	if (es->pre_off < es->pre_len) {
		*out = es->pre + es->pre_off;
		size_t n = es->pre_len - es->pre_off;
		es->pre_off = es->pre_len;
		return (la_ssize_t)n;
	}
	*out = es->chunk;
	long got = es_pull(es, es->chunk, sizeof(es->chunk));
	if (got < 0) {
		archive_set_error(a, EIO, "entry read failed");
		return -1;
	}
	return got;
}

/* Read the rest of the entry (counted: never a skip that unpacks unseen). */
static bw_err
es_drain(struct entry_stream *es)
{
	long got;
	while ((got = es_pull(es, es->chunk, sizeof(es->chunk))) > 0)
		;
	return got < 0 ? es->w->err : BW_OK;
}

/* The tail in order into w->scratch; its length. */
static size_t
es_tail(struct entry_stream *es)
{
	unsigned char *d = es->w->scratch;
	if (es->tail_len < TAIL_LEN) {
		memcpy(d, es->tail, es->tail_len);
	} else {
		memcpy(d, es->tail + es->tail_pos, TAIL_LEN - es->tail_pos);
		memcpy(d + TAIL_LEN - es->tail_pos, es->tail, es->tail_pos);
	}
	return es->tail_len;
}

/* --- libarchive readers ------------------------------------------------------------- */

static struct archive *
reader_new(enum mode m)
{
	struct archive *a = archive_read_new();
	if (a == NULL)
		return NULL;
	int r = ARCHIVE_OK, k;
#define EN(call)                                                                                   \
	do {                                                                                       \
		k = call;                                                                          \
		if (k < r)                                                                         \
			r = k;                                                                     \
	} while (0)
	EN(archive_read_support_format_zip(a));
	EN(archive_read_support_format_7zip(a));
	EN(archive_read_support_format_rar(a));
	EN(archive_read_support_format_rar5(a));
	EN(archive_read_support_format_tar(a));
	if (m == MODE_DETECT) {
		EN(archive_read_support_format_cpio(a));
		EN(archive_read_support_format_ar(a));
		EN(archive_read_support_format_iso9660(a));
		EN(archive_read_support_format_cab(a));
		EN(archive_read_support_format_lha(a));
	} else {
		/* ARCHIVE_WARN would mean an external program: refused below. */
		EN(archive_read_support_filter_gzip(a));
		EN(archive_read_support_filter_bzip2(a));
		EN(archive_read_support_filter_xz(a));
	}
	if (m == MODE_COMPRESSED)
		EN(archive_read_support_format_raw(a));
#undef EN
	if (r != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	/* Names that say no charset are taken as UTF-8 (and then checked as such). */
	(void)archive_read_set_options(a, "hdrcharset=UTF-8");
	return a;
}

static int
format_counts(struct archive *a)
{
	int f = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
	return f != 0 && f != ARCHIVE_FORMAT_RAW && f != ARCHIVE_FORMAT_EMPTY;
}

/* --- the walk -------------------------------------------------------------------------- */

static const char *const walk_mimes[] = {
    "application/zip", "application/x-7z-compressed", "application/x-tar", "application/x-rar",
    "application/vnd.rar", NULL};
static const char *const compressed_mimes[] = {"application/gzip", "application/x-gzip",
					       "application/x-bzip2", "application/x-xz", NULL};

static int
mime_in(const char *const *l, const char *mime)
{
	for (; *l != NULL; l++)
		if (strcasecmp(*l, mime) == 0)
			return 1;
	return 0;
}

/* The type whose libmagic MIME is mime and whose kind is CONTAINER, or NULL. */
static int
mime_container(const char *mime)
{
	size_t n;
	const struct files_type *t = files_types(&n);
	for (size_t i = 0; i < n; i++)
		if (t[i].kind == FILES_KIND_CONTAINER && strcasecmp(t[i].mimes[0], mime) == 0)
			return 1;
	return 0;
}

static bw_err walk_archive(struct walk *w, struct archive *a, int depth, int container);
static bw_err nested_in_memory(struct walk *w, struct entry_stream *es, int depth);

/* Is the entry (its stream) also an archive? A polyglot when it holds an entry or breaks. */
static bw_err
detect_stream(struct walk *w, struct archive *a, const char *what)
{
	struct archive_entry *e;
	int r = archive_read_next_header(a, &e);
	if (w->err != BW_OK)
		return w->err;
	if (format_counts(a) && r != ARCHIVE_EOF)
		return refuse(w, BW_ERR_UNPROCESSABLE, "%s is also a %s archive (a polyglot)", what,
			      archive_format_name(a));
	return BW_OK;
}

/* Open a child reader over es in mode m: the reader, or NULL (w->err set). */
static struct archive *
child_open(struct walk *w, struct entry_stream *es, enum mode m)
{
	struct archive *c = reader_new(m);
	if (c == NULL) {
		refuse(w, BW_ERR_NOMEM, "the archive reader cannot be made");
		return NULL;
	}
	es->pre_off = 0;
	if (archive_read_open(c, es, NULL, es_read, NULL) != ARCHIVE_OK) {
		/* Nothing recognised at all: for DETECT, no archive; w->err if a limit hit. */
		archive_read_free(c);
		return NULL;
	}
	return c;
}

/* A nested archive that must be seeked: the whole entry, counted, into memory, then walked. */
static bw_err
nested_in_memory(struct walk *w, struct entry_stream *es, int depth)
{
	size_t cap = es->pre_len + CHUNK, n = es->pre_len;
	unsigned char *buf = malloc(cap);
	if (buf == NULL)
		return refuse(w, BW_ERR_NOMEM, "out of memory");
	memcpy(buf, es->pre, n);
	bw_err e = BW_OK;
	for (;;) {
		if (cap - n < CHUNK) {
			if (cap >= SEEKABLE_NESTED_MAX) {
				e = refuse(w, BW_ERR_UNPROCESSABLE,
					   "a nested 7z archive over %u MiB is refused",
					   SEEKABLE_NESTED_MAX >> 20);
				goto out;
			}
			unsigned char *b = realloc(buf, cap * 2);
			if (b == NULL) {
				e = refuse(w, BW_ERR_NOMEM, "out of memory");
				goto out;
			}
			buf = b, cap *= 2;
		}
		long got = es_pull(es, buf + n, CHUNK);
		if (got < 0) {
			e = w->err;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	struct archive *c = reader_new(MODE_WALK);
	if (c == NULL) {
		e = refuse(w, BW_ERR_NOMEM, "the archive reader cannot be made");
		goto out;
	}
	if (archive_read_open_memory(c, buf, n) != ARCHIVE_OK)
		e = refuse(w, BW_ERR_UNPROCESSABLE, "a 7z archive libarchive cannot read");
	else
		e = walk_archive(w, c, depth + 1, 0);
	archive_read_free(c);
out:
	free(buf);
	return e;
}

static bw_err
entry_regular(struct walk *w, struct entry_stream *es, const struct files_type *t, int depth,
	      int container, int svg_part, int raw)
{
	/* The first bytes, for libmagic. */
	es->pre_len = es->pre_off = 0, es->tail_len = es->tail_pos = 0, es->total = 0, es->eof = 0;
	while (es->pre_len < FILES_SNIFF_BYTES) {
		size_t want = FILES_SNIFF_BYTES - es->pre_len;
		long got = es_pull(es, es->pre + es->pre_len, want < CHUNK ? want : CHUNK);
		if (got < 0)
			return w->err;
		if (got == 0)
			break;
		es->pre_len += (size_t)got;
	}
	if (es->pre_len == 0)
		return BW_OK; /* empty: nothing to run */
	char mime[FILES_MIME_MAX + 1];
	if (files_sniff(es->pre, es->pre_len, mime) != BW_OK)
		return refuse(w, BW_ERR_INTERNAL, "its type cannot be told (libmagic failed)");
	if (svg_part) {
		/* An Office icon: SVG that only Office renders (docs/files.md). */
		if (strcasecmp(mime, "image/svg+xml") != 0 && strcasecmp(mime, "text/xml") != 0)
			return refuse(w, BW_ERR_UNPROCESSABLE, "an .svg part that is %s", mime);
		return es_drain(es);
	}
	if (files_mime_executable(mime))
		return refuse(w, BW_ERR_UNPROCESSABLE, "an executable or a script (%s)", mime);
	if (t != NULL) {
		const char *why;
		if (files_type_agrees(t, NULL, mime, &why) != BW_OK)
			return refuse(w, BW_ERR_UNPROCESSABLE, "%s", why);
	} else if (!container && !raw && !files_mime_allowed(mime)) {
		return refuse(w, BW_ERR_UNPROCESSABLE, "its type %s is not allowed", mime);
	} else if (raw && !files_mime_allowed(mime)) {
		return refuse(w, BW_ERR_UNPROCESSABLE, "the compressed file is %s, not allowed",
			      mime);
	}
	int walkable = mime_in(walk_mimes, mime) || mime_container(mime);
	int compressed = mime_in(compressed_mimes, mime);
	if (walkable || compressed) {
		if (depth >= w->lim->depth)
			return refuse(w, BW_ERR_UNPROCESSABLE,
				      "archives nested deeper than %d are refused", w->lim->depth);
		if (strcasecmp(mime, "application/x-7z-compressed") == 0)
			return nested_in_memory(w, es, depth);
		struct archive *c = child_open(w, es, compressed ? MODE_COMPRESSED : MODE_WALK);
		bw_err e = c == NULL ? refuse(w, BW_ERR_UNPROCESSABLE, "a %s libarchive cannot read",
					      mime)
				     : walk_archive(w, c, depth + 1,
						    mime_container(mime) ||
							(t != NULL && t->kind == FILES_KIND_CONTAINER));
		if (c != NULL)
			archive_read_free(c);
		return e != BW_OK ? e : es_drain(es);
	}
	/* Not an archive by its type: is it one all the same? */
	struct archive *c = child_open(w, es, MODE_DETECT);
	if (w->err != BW_OK) {
		archive_read_free(c);
		return w->err;
	}
	if (c != NULL) {
		bw_err e = detect_stream(w, c, "it");
		archive_read_free(c);
		if (e != BW_OK)
			return e;
	}
	bw_err e = es_drain(es);
	if (e != BW_OK)
		return e;
	if (eocd_find(w->scratch, es_tail(es), es->total))
		return refuse(w, BW_ERR_UNPROCESSABLE, "it is also a zip archive (a polyglot)");
	return BW_OK;
}

/* The entry's last segment is vbaProject.bin (macros) / ends in ".svg". */
static int
base_is(const char *path, const char *name)
{
	const char *b = strrchr(path, '/');
	return strcasecmp(b != NULL ? b + 1 : path, name) == 0;
}

static int
ends_svg(const char *path)
{
	size_t n = strlen(path);
	return n > 4 && strcasecmp(path + n - 4, ".svg") == 0;
}

static bw_err
walk_archive(struct walk *w, struct archive *a, int depth, int container)
{
	if (depth > w->res->depth)
		w->res->depth = depth;
	if (w->level >= LEVELS_MAX)
		return refuse(w, BW_ERR_UNPROCESSABLE, "archives nested too deep");
	struct entry_stream *es = calloc(1, sizeof(*es));
	unsigned char *pre = malloc(FILES_SNIFF_BYTES), *tail = malloc(TAIL_LEN);
	bw_err e = BW_OK;
	if (es == NULL || pre == NULL || tail == NULL) {
		e = refuse(w, BW_ERR_NOMEM, "out of memory");
		goto out;
	}
	es->w = w, es->parent = a, es->pre = pre, es->tail = tail;
	int slot = w->level++;
	for (;;) {
		struct archive_entry *ent;
		w->names[slot][0] = '\0';
		int r = archive_read_next_header(a, &ent);
		if (r == ARCHIVE_EOF)
			break;
		if (w->err != BW_OK) {
			e = w->err;
			break;
		}
		if (r < ARCHIVE_WARN) {
			char m[NAME_SHOWN * 2];
			w->level--;
			if (archive_read_has_encrypted_entries(a) > 0)
				e = refuse(w, BW_ERR_UNPROCESSABLE,
					   "encrypted archives are refused by policy");
			else
				e = refuse(w, BW_ERR_UNPROCESSABLE, "%s cannot be read: %s",
					   depth == 1 ? "the archive" : "a nested archive",
					   la_error(a, m));
			w->level++;
			break;
		}
		int raw = (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_RAW;
		if (raw && archive_filter_count(a) < 2) {
			w->level--;
			e = refuse(w, BW_ERR_UNPROCESSABLE, "not a compressed file libarchive reads");
			w->level++;
			break;
		}
		const char *path = archive_entry_pathname_utf8(ent);
		sanitise(w->names[slot], path != NULL ? path : "?");
		if (++w->res->entries > w->lim->entries) {
			e = refuse(w, BW_ERR_UNPROCESSABLE, "more than %ld entries", w->lim->entries);
			break;
		}
		if (path == NULL) {
			e = refuse(w, BW_ERR_UNPROCESSABLE, "its name is not UTF-8");
			break;
		}
		if (archive_entry_is_encrypted(ent)) {
			e = refuse(w, BW_ERR_UNPROCESSABLE, "encrypted archives are refused by policy");
			break;
		}
		if (archive_entry_hardlink(ent) != NULL) {
			e = refuse(w, BW_ERR_UNPROCESSABLE, "a hard link");
			break;
		}
		mode_t ft = archive_entry_filetype(ent);
		if (archive_entry_symlink(ent) != NULL || ft == AE_IFLNK) {
			e = refuse(w, BW_ERR_UNPROCESSABLE, "a symbolic link");
			break;
		}
		if (ft != AE_IFREG && ft != AE_IFDIR) {
			e = refuse(w, BW_ERR_UNPROCESSABLE, "a device, FIFO or socket");
			break;
		}
		const struct files_type *t = NULL;
		int svg_part = 0;
		if (!raw) {
			const char *why;
			/* In an Office file an .svg is an icon: the rest of its path is checked. */
			char cut[FILES_PATH_MAX + 1];
			const char *check = path;
			if (container && ft == AE_IFREG && ends_svg(path) && strlen(path) <= FILES_PATH_MAX) {
				memcpy(cut, path, strlen(path) - 4);
				cut[strlen(path) - 4] = '\0';
				check = cut, svg_part = 1;
			}
			if (files_entry_check(check, &t, &why) != BW_OK) {
				e = refuse(w, BW_ERR_UNPROCESSABLE, "%s", why);
				break;
			}
			if (svg_part)
				t = NULL;
			if (container && base_is(path, "vbaProject.bin")) {
				e = refuse(w, BW_ERR_UNPROCESSABLE,
					   "an Office file with macros (vbaProject.bin)");
				break;
			}
		}
		if (ft == AE_IFDIR)
			continue;
		e = entry_regular(w, es, t, depth, container, svg_part, raw);
		if (e != BW_OK)
			break;
	}
	w->level--;
out:
	free(tail);
	free(pre);
	free(es);
	return e;
}

/* --- step 4 ---------------------------------------------------------------------------- */

/* The last TAIL_LEN bytes of src into w->scratch: their count, or -1. */
static long
src_tail(struct walk *w, const struct files_source *src)
{
	uint64_t n = src->size < TAIL_LEN ? src->size : TAIL_LEN;
	size_t have = 0;
	while (have < n) {
		long got = src->read_at(src->ud, src->size - n + have, w->scratch + have, n - have);
		if (got <= 0 || (uint64_t)got > n - have)
			return -1;
		have += (size_t)got;
	}
	return (long)have;
}

bw_err
files_archive_check(const struct files_source *src, const struct files_type *t,
		    const struct files_limits *lim, struct files_archive_result *res, char *why,
		    size_t whylen)
{
	memset(res, 0, sizeof(*res));
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	struct files_limits l = *lim;
	if (l.depth < 1)
		l.depth = 1;
	struct walk w = {.lim = &l, .size = src->size, .res = res, .why = why, .whylen = whylen};
	/*
	 * libarchive converts entry names through the thread's locale: in the
	 * server's "C" every non-ASCII name would be unreadable. C.UTF-8 for
	 * this call only (without it, such names are refused).
	 */
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	locale_t old = utf8 != (locale_t)0 ? uselocale(utf8) : (locale_t)0;
	res->depth = 1;
	struct src_reader *sr = calloc(1, sizeof(*sr));
	w.scratch = malloc(TAIL_LEN);
	struct archive *a = NULL;
	bw_err e = BW_OK;
	if (sr == NULL || w.scratch == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	sr->src = src, sr->w = &w;
	int document = t == NULL || t->kind == FILES_KIND_DOCUMENT;
	enum mode m = MODE_DETECT;
	if (!document)
		m = mime_in(compressed_mimes, t->mimes[0]) ? MODE_COMPRESSED : MODE_WALK;
	a = reader_new(m);
	if (a == NULL) {
		e = refuse(&w, BW_ERR_NOMEM, "the archive reader cannot be made");
		goto out;
	}
	if (archive_read_set_read_callback(a, src_read) != ARCHIVE_OK ||
	    archive_read_set_seek_callback(a, src_seek) != ARCHIVE_OK ||
	    archive_read_set_skip_callback(a, src_skip) != ARCHIVE_OK ||
	    archive_read_set_callback_data(a, sr) != ARCHIVE_OK) {
		e = refuse(&w, BW_ERR_NOMEM, "the archive reader cannot be made");
		goto out;
	}
	int opened = archive_read_open1(a) == ARCHIVE_OK;
	if (w.err != BW_OK) {
		e = w.err;
		goto out;
	}
	if (document) {
		if (opened) {
			e = detect_stream(&w, a, "the file");
			if (format_counts(a)) {
				res->is_archive = 1;
				snprintf(res->format, sizeof(res->format), "%s", archive_format_name(a));
			}
			if (e != BW_OK)
				goto out;
			/*
			 * Read as an archive but holding no entry it could give (a
			 * damaged zip after a GIF): still a polyglot, refused (fuzz_archive).
			 * An empty tar (zero blocks, which any run of NULs is) holds nothing.
			 */
			if (res->is_archive &&
			    (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_TAR) {
				e = refuse(&w, BW_ERR_UNPROCESSABLE,
					   "the file is also an archive (a polyglot)");
				goto out;
			}
			/* ...and so is not an archive (fuzz_archive: NULs, then other bytes). */
			if (res->is_archive) {
				res->is_archive = 0;
				res->format[0] = '\0';
			}
		}
		/* libarchive finds an appended zip; this scan is the second opinion. */
		long n = src_tail(&w, src);
		if (n < 0) {
			e = refuse(&w, BW_ERR_IO, "the file cannot be read");
			goto out;
		}
		if (eocd_find(w.scratch, (size_t)n, src->size)) {
			res->is_archive = 1;
			if (res->format[0] == '\0')
				snprintf(res->format, sizeof(res->format), "ZIP");
			e = refuse(&w, BW_ERR_UNPROCESSABLE, "the file is also a zip archive (a polyglot)");
		}
		goto out;
	}
	if (!opened) {
		e = refuse(&w, BW_ERR_UNPROCESSABLE, "the file is not an archive libarchive reads");
		goto out;
	}
	e = walk_archive(&w, a, 1, t->kind == FILES_KIND_CONTAINER);
	if (format_counts(a) || archive_filter_count(a) > 1) {
		res->is_archive = 1;
		snprintf(res->format, sizeof(res->format), "%s", archive_format_name(a));
	}
	if (e != BW_OK)
		goto out;
	if (!format_counts(a) && archive_filter_count(a) < 2) {
		e = refuse(&w, BW_ERR_UNPROCESSABLE, "the file is not an archive libarchive reads");
		goto out;
	}
	/* A tar or 7z with a zip at its end opens as a zip elsewhere. */
	if ((archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_ZIP) {
		long n = src_tail(&w, src);
		if (n < 0) {
			e = refuse(&w, BW_ERR_IO, "the file cannot be read");
			goto out;
		}
		if (eocd_find(w.scratch, (size_t)n, src->size))
			e = refuse(&w, BW_ERR_UNPROCESSABLE,
				   "the file is also a zip archive (a polyglot)");
	}
out:
	if (a != NULL)
		archive_read_free(a);
	free(w.scratch);
	free(sr);
	if (utf8 != (locale_t)0) {
		uselocale(old);
		freelocale(utf8);
	}
	return e;
}
