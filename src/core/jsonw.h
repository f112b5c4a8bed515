/*
 * jsonw: JSON written straight into a bounded buffer (struct buf), for
 * replies too large to be worth a jansson tree (lists of rows). Compact
 * output, byte for byte what json_dumps(JSON_COMPACT) gives for the same
 * values in the same order: strings escaped per RFC 8259 (the quote, the
 * backslash and every control character below 0x20; \b \f \n \r \t by
 * name, the rest as \u00XX), UTF-8 passed through unchanged.
 *
 * Errors are sticky: the first failure (the buffer's maximum reached, a
 * string that is not UTF-8, nesting too deep, a value where a key is due)
 * is kept, every later call does nothing, and jsonw_finish() returns it.
 * The caller checks once at the end.
 */
#ifndef BW_JSONW_H
#define BW_JSONW_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

#define JSONW_DEPTH_MAX 32

struct jsonw {
	struct buf *b;
	bw_err err;
	int depth;
	/* per open container: 'o' object or 'a' array; and whether a member came yet */
	char kind[JSONW_DEPTH_MAX];
	unsigned char count[JSONW_DEPTH_MAX];
	int want_value; /* in an object, after a key */
	int in_string;  /* between jsonw_string_begin and _end */
	size_t str_mark, str_off, str_n; /* buffer length before it, its bytes' offset and length */
	unsigned char str_count; /* the container's count before it */
};

/* Start writing at the end of b (which keeps what it holds). */
void jsonw_init(struct jsonw *w, struct buf *b);
void jsonw_object_open(struct jsonw *w);
void jsonw_object_close(struct jsonw *w);
void jsonw_array_open(struct jsonw *w);
void jsonw_array_close(struct jsonw *w);
/* A member's name (NUL-terminated, UTF-8); a value must follow. */
void jsonw_key(struct jsonw *w, const char *key);
/* A string of n bytes (may hold NUL, written \u0000); BW_ERR_INVALID unless UTF-8. */
void jsonw_string(struct jsonw *w, const char *s, size_t n);
void jsonw_cstring(struct jsonw *w, const char *s); /* NULL writes null */
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_bool(struct jsonw *w, int v);
void jsonw_null(struct jsonw *w);
/*
 * A value already encoded as JSON (e.g. from json_dumps), appended as it
 * is; the caller vouches for it.
 */
void jsonw_raw(struct jsonw *w, const char *json, size_t n);
/*
 * A string value whose n bytes the caller writes itself: *out points at n
 * writable bytes at the end of the buffer (NULL after an error), to be
 * filled before the next call on w, which is jsonw_string_end(): it checks
 * the bytes are UTF-8 and escapes them in place. (Sealed fields open into
 * the reply this way, without a copy or an allocation per field.) On any
 * failure, jsonw_string_end wipes the bytes and leaves the buffer as it
 * was before jsonw_string_begin.
 */
void jsonw_string_begin(struct jsonw *w, size_t n, unsigned char **out);
void jsonw_string_end(struct jsonw *w);
/* Drop the string begun, wiping its bytes (the caller could not fill them); sets err. */
void jsonw_string_abort(struct jsonw *w, bw_err e);
/*
 * The first error, or BW_ERR_INVALID when containers are still open or a
 * key lacks its value; BW_OK when the buffer holds complete JSON.
 */
bw_err jsonw_finish(struct jsonw *w) BW_MUST_USE;
/* The first error so far (BW_OK while all went well). */
bw_err jsonw_error(const struct jsonw *w);

/*
 * Escape n bytes of UTF-8 as the inside of a JSON string (no quotes) onto
 * b. BW_ERR_INVALID (nothing appended) when s is not UTF-8: overlong
 * forms, surrogates, code points past U+10FFFF and truncated sequences are
 * all refused. BW_ERR_NOMEM at b's maximum.
 */
bw_err jsonw_escape(struct buf *b, const char *s, size_t n) BW_MUST_USE;

#endif
