/*
 * files/check: the checks every upload passes before it is accepted, in
 * order, each failing closed (docs/files.md): the file name, its type
 * (extension allow- and blocklists, magic bytes through libmagic), what
 * an archive holds (libarchive, with limits), and ClamAV (clamd INSTREAM).
 * Nothing here touches a database: the upload (files.c) runs them.
 */
#ifndef BW_FILES_CHECK_H
#define BW_FILES_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

/* --- policy.c: names and types ------------------------------------------------ */

#define FILES_NAME_MAX 200  /* bytes of a stored file name (UTF-8), and of a path segment */
#define FILES_PATH_MAX 1024 /* bytes of an archive entry's path */
#define FILES_MIME_MAX 127 /* bytes of a MIME type */

enum files_kind {
	FILES_KIND_DOCUMENT,  /* its bytes must not also be an archive (polyglots) */
	FILES_KIND_ARCHIVE,   /* zip, 7z, tar and compressed tars: opened and walked */
	FILES_KIND_CONTAINER, /* documents that are zips (docx, xlsx, odt...): walked too */
};

/* One allowed extension: docs/files.md has the same table. */
struct files_type {
	const char *ext;   /* lower case, without the dot: "pdf", "tar.gz" */
	const char *label; /* "PDF document" */
	enum files_kind kind;
	const char *const *mimes;  /* what libmagic may say of such a file, NULL-ended */
	const char *const *claims; /* what clients also claim for it (NULL-ended, or NULL) */
};

/* The allowlist and the blocklist (at least 50 executable and script types), for docs and tests. */
const struct files_type *files_types(size_t *n);
const char *const *files_blocked(size_t *n);
/* 1 if ext (any case, no dot) is on the blocklist. */
int files_ext_blocked(const char *ext);

/*
 * Step 1 and 2 for an uploaded file's name (len bytes of what the client
 * sent, not NUL-terminated). Refused as a bad name (BW_ERR_INVALID, a 400
 * "name"; *why a sentence for the client): not UTF-8, NUL, '/', '\\',
 * control characters (C0, DEL, C1), bidi controls (U+202A-202E,
 * U+2066-2069, U+200E-200F, U+061C), invisible format characters (U+200B,
 * U+2060-2064, U+FEFF, U+FFF9-FFFB, U+180E, tags U+E0000-E007F), line
 * separators (U+2028-2029), noncharacters, "." or "..", empty, longer than
 * FILES_NAME_MAX bytes (after normalising). Refused for its type
 * (BW_ERR_MEDIA_TYPE, a 415 "type"): a blocked extension among the parts
 * after the first dot (invoice.pdf.exe, setup.exe.pdf; "img.png" is fine,
 * "photo.img.png" is not), no extension, or one not on the allowlist.
 * Normalised (BW_OK, *normalised 1, *why says what): leading spaces,
 * trailing spaces and dots removed, Unicode NFC. out: the name to store
 * (NUL-terminated; "" on refusal); *type: its entry in the allowlist.
 * *why, when not a literal, is in a buffer of the calling thread that the
 * next check in that thread overwrites.
 */
bw_err files_name_check(const char *name, size_t len, char out[FILES_NAME_MAX + 1],
			const struct files_type **type, int *normalised,
			const char **why) BW_MUST_USE;

/*
 * The same for an entry of an archive (a path, NUL-terminated, '/'
 * between segments; a directory's trailing '/' is allowed): refused
 * (BW_ERR_INVALID) for every character files_name_check refuses ('\\'
 * included), a segment over FILES_NAME_MAX bytes or empty or only dots
 * and spaces, a path over FILES_PATH_MAX, an absolute path, a drive
 * letter, "." or ".." segments (traversal); (BW_ERR_MEDIA_TYPE) a blocked
 * extension in any segment, directories included ("Evil.app/x"), trailing
 * dots and spaces ignored as Windows does. Nothing is normalised. An
 * extension not on the allowlist is not refused here (logs have none):
 * *type is then NULL and the entry's bytes decide (files_mime_allowed).
 * *why as above.
 */
bw_err files_entry_check(const char *path, const struct files_type **type,
			 const char **why) BW_MUST_USE;

/* --- sniff.c: magic bytes (libmagic) --------------------------------------------- */

/*
 * libmagic's MIME type (no parameters) of the first n bytes of a file into
 * mime. One magic cookie per thread, opened on first use. BW_ERR_INTERNAL
 * when libmagic cannot be loaded or fails (fail closed: the caller refuses).
 */
bw_err files_sniff(const void *buf, size_t n, char mime[FILES_MIME_MAX + 1]) BW_MUST_USE;
/* Bytes files_sniff should be given when the file has them (the start of a file). */
#define FILES_SNIFF_BYTES (256 * 1024)

/*
 * Step 3: the bytes (detected) must be of type t, and the client's
 * claimed type, when it claims one, must be one of t's types too (NULL,
 * "" and application/octet-stream claim nothing). BW_ERR_UNPROCESSABLE
 * with *why naming both.
 */
bw_err files_type_agrees(const struct files_type *t, const char *claimed, const char *detected,
			 const char **why) BW_MUST_USE;
/* 1 if mime is an executable or a script (PE, ELF, Mach-O, shell, batch, ...). */
int files_mime_executable(const char *mime);
/* 1 if mime is a type some allowed extension accepts (an archive entry without one). */
int files_mime_allowed(const char *mime);

/* --- archive.c: what an archive holds (libarchive) ----------------------------------- */

/* Where the bytes come from: read up to n at offset off; bytes read (0: the end) or -1. */
struct files_source {
	long (*read_at)(void *ud, uint64_t off, void *buf, size_t n);
	uint64_t size;
	void *ud;
};

/* The limits of step 4 ([files] in the configuration); clamd's own are not relied on. */
struct files_limits {
	long entries;         /* entries in the archive and every nested one, together */
	uint64_t unpacked;    /* bytes unpacked from all of them together */
	uint64_t ratio;       /* unpacked bytes per byte of the file, at most */
	int depth;            /* archives within archives: 1 = the file itself only */
};
/*
 * The ratio applies once this many bytes are unpacked: a small, very
 * compressible file (a log of repeated lines) is no bomb, and a bomb is
 * stopped after at most this much more than ratio times the file.
 */
#define FILES_RATIO_GRACE (1024 * 1024)

struct files_archive_result {
	int is_archive;  /* libarchive read it as an archive */
	char format[32]; /* libarchive's format name, "" when none */
	long entries;
	uint64_t unpacked;
	int depth; /* deepest nesting seen: 1 = the file itself */
};

/*
 * Step 4 over src, whose name gave type t. libarchive tries every format
 * and filter it reads, seeking through src (so a zip appended to a GIF or
 * a PDF is found from its end). A DOCUMENT that reads as an archive is a
 * polyglot: refused. An ARCHIVE or CONTAINER is walked: every entry passes
 * files_entry_check and (by its first bytes) files_sniff with
 * files_type_agrees or, without a type, files_mime_allowed, and never
 * files_mime_executable; nested archives are walked the same way up to
 * lim->depth; symlinks, hard links, devices and encrypted entries are
 * refused, and so is passing any limit (checked while unpacking, never
 * after). BW_ERR_UNPROCESSABLE with the reason (naming the entry) in why;
 * BW_ERR_NOMEM; BW_ERR_IO when src fails.
 */
bw_err files_archive_check(const struct files_source *src, const struct files_type *t,
			   const struct files_limits *lim, struct files_archive_result *res,
			   char *why, size_t whylen) BW_MUST_USE;

/* --- clamd.c: ClamAV over clamd's unix socket ------------------------------------------ */

struct clamd;
#define CLAMD_SIG_MAX 255

/*
 * Begin an INSTREAM scan on the unix socket at path; every read and write
 * waits at most timeout_ms. BW_ERR_UNAVAILABLE (why says: not running,
 * refused, timed out) when it cannot.
 */
bw_err clamd_begin(const char *path, long timeout_ms, struct clamd **out, char *why,
		   size_t whylen) BW_MUST_USE;
/* Send n more bytes of the file (any size; cut into INSTREAM chunks). BW_ERR_UNAVAILABLE. */
bw_err clamd_send(struct clamd *c, const void *buf, size_t n, char *why, size_t whylen) BW_MUST_USE;
/*
 * End the stream and read the verdict. BW_OK: clean. BW_ERR_UNPROCESSABLE:
 * FOUND, its signature in sig. BW_ERR_UNAVAILABLE: clamd gone, too slow,
 * "size limit exceeded", any other error or reply it could not read (why
 * says which). A send that failed earlier makes this read whatever clamd
 * said before it hung up (its size limit, usually).
 */
bw_err clamd_end(struct clamd *c, char sig[CLAMD_SIG_MAX + 1], char *why,
		 size_t whylen) BW_MUST_USE;
/* Close (accepts NULL). */
void clamd_free(struct clamd *c);
/* PING/PONG: BW_OK when clamd answers in time, else BW_ERR_UNAVAILABLE with why. */
bw_err clamd_ping(const char *path, long timeout_ms, char *why, size_t whylen) BW_MUST_USE;

#endif
