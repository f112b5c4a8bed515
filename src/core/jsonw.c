/*
 * A JSON writer over struct buf. Output matches json_dumps(JSON_COMPACT)
 * byte for byte (same escapes, same integer format), so a reply written
 * here is the reply jansson would have written; the gain is no tree: no
 * allocation per value, no copy of every string into a node and out again.
 *
 * The writer reaches into struct buf (same layer, core) only to take back
 * a string it began and could not finish: the length goes back to the mark
 * and the bytes past it are wiped.
 */
#include "jsonw.h"

#include <string.h>

/*
 * Per byte: 0 stands for itself, 1 needs an escape (quote, backslash,
 * control), 2 starts or continues a multi-byte sequence.
 */
static unsigned char
jsonw_class(unsigned char c)
{
	if (c >= 0x80)
		return 2;
	return c < 0x20 || c == '"' || c == '\\';
}

/* Length of the UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t
jsonw_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp, min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0; /* a continuation byte, 0xc0/0xc1 (always overlong) or past 0xf4 */
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Bytes c takes escaped: 1 when it stands for itself. */
static size_t
jsonw_esc_len(unsigned char c)
{
	if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
		return 2;
	return c < 0x20 ? 6 : 1;
}

/* Write the escape of c (jsonw_esc_len(c) > 1) at out. */
static void
jsonw_esc_put(unsigned char c, char *out)
{
	static const char hex[] = "0123456789ABCDEF"; /* as jansson writes them */
	out[0] = '\\';
	switch (c) {
	case '"':
	case '\\':
		out[1] = (char)c;
		return;
	case '\b':
		out[1] = 'b';
		return;
	case '\f':
		out[1] = 'f';
		return;
	case '\n':
		out[1] = 'n';
		return;
	case '\r':
		out[1] = 'r';
		return;
	case '\t':
		out[1] = 't';
		return;
	default:
		out[1] = 'u', out[2] = '0', out[3] = '0';
		out[4] = hex[c >> 4], out[5] = hex[c & 15];
		return;
	}
}

/* Validate s as UTF-8 and size its escape: BW_ERR_INVALID, or BW_OK with *esc set. */
static bw_err
jsonw_scan(const unsigned char *s, size_t n, size_t *esc)
{
	size_t out = 0;
	for (size_t i = 0; i < n;) {
		/* the common case: a run of bytes that stand for themselves */
		size_t start = i;
		while (i < n && jsonw_class(s[i]) == 0)
			i++;
		out += i - start;
		if (i == n)
			break;
		if (s[i] < 0x80) {
			out += jsonw_esc_len(s[i]);
			i++;
			continue;
		}
		size_t l = jsonw_utf8_len(s + i, n - i);
		if (l == 0)
			return BW_ERR_INVALID;
		out += l;
		i += l;
	}
	*esc = out;
	return BW_OK;
}

bw_err
jsonw_escape(struct buf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t esc;
	bw_err e = jsonw_scan(s, n, &esc);
	if (e != BW_OK)
		return e;
	if (esc == n)
		return buf_append(b, s, n);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		if (jsonw_esc_len(s[i]) == 1)
			continue;
		char q[6];
		if ((e = buf_append(b, s + run, i - run)) != BW_OK)
			return e;
		jsonw_esc_put(s[i], q);
		if ((e = buf_append(b, q, jsonw_esc_len(s[i]))) != BW_OK)
			return e;
		run = i + 1;
	}
	return buf_append(b, s + run, n - run);
}

void
jsonw_init(struct jsonw *w, struct buf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
}

static void
jsonw_fail(struct jsonw *w, bw_err e)
{
	if (w->err == BW_OK)
		w->err = e;
}

static void
jsonw_put(struct jsonw *w, const void *p, size_t n)
{
	bw_err e;
	if (w->err == BW_OK && (e = buf_append(w->b, p, n)) != BW_OK)
		jsonw_fail(w, e);
}

/*
 * Before a value: the comma between members, and in an object the check
 * that a key came first. 0 when the writer has failed.
 */
static int
jsonw_value_start(struct jsonw *w)
{
	if (w->err != BW_OK)
		return 0;
	if (w->in_string) {
		jsonw_fail(w, BW_ERR_INTERNAL); /* jsonw_string_end was not called */
		return 0;
	}
	if (w->depth > 0 && w->kind[w->depth - 1] == 'o') {
		if (!w->want_value) {
			jsonw_fail(w, BW_ERR_INVALID); /* a value where a key is due */
			return 0;
		}
		w->want_value = 0;
		return 1;
	}
	if (w->depth > 0) {
		if (w->count[w->depth - 1])
			jsonw_put(w, ",", 1);
		w->count[w->depth - 1] = 1;
	}
	return w->err == BW_OK;
}

static void
jsonw_open(struct jsonw *w, char kind)
{
	if (!jsonw_value_start(w))
		return;
	if (w->depth == JSONW_DEPTH_MAX) {
		jsonw_fail(w, BW_ERR_INVALID);
		return;
	}
	jsonw_put(w, kind == 'o' ? "{" : "[", 1);
	w->kind[w->depth] = kind;
	w->count[w->depth] = 0;
	w->depth++;
}

static void
jsonw_close(struct jsonw *w, char kind)
{
	if (w->err != BW_OK)
		return;
	if (w->in_string || w->depth == 0 || w->kind[w->depth - 1] != kind || w->want_value) {
		jsonw_fail(w, BW_ERR_INVALID);
		return;
	}
	w->depth--;
	jsonw_put(w, kind == 'o' ? "}" : "]", 1);
}

void
jsonw_object_open(struct jsonw *w)
{
	jsonw_open(w, 'o');
}

void
jsonw_object_close(struct jsonw *w)
{
	jsonw_close(w, 'o');
}

void
jsonw_array_open(struct jsonw *w)
{
	jsonw_open(w, 'a');
}

void
jsonw_array_close(struct jsonw *w)
{
	jsonw_close(w, 'a');
}

void
jsonw_key(struct jsonw *w, const char *key)
{
	bw_err e;
	if (w->err != BW_OK)
		return;
	if (w->in_string || w->depth == 0 || w->kind[w->depth - 1] != 'o' || w->want_value) {
		jsonw_fail(w, BW_ERR_INVALID);
		return;
	}
	char q[80];
	size_t n = strlen(key), i = 0, o = 0;
	if (w->count[w->depth - 1])
		q[o++] = ',';
	w->count[w->depth - 1] = 1;
	w->want_value = 1;
	q[o++] = '"';
	/* Names are mostly short and plain (column names): one append for all of it. */
	if (n <= sizeof(q) - 4) {
		while (i < n && jsonw_class((unsigned char)key[i]) == 0)
			q[o++] = key[i++];
		if (i == n) {
			q[o++] = '"', q[o++] = ':';
			jsonw_put(w, q, o);
			return;
		}
	}
	jsonw_put(w, q, o - i);
	if (w->err == BW_OK && (e = jsonw_escape(w->b, key, n)) != BW_OK)
		jsonw_fail(w, e);
	jsonw_put(w, "\":", 2);
}

void
jsonw_string(struct jsonw *w, const char *s, size_t n)
{
	bw_err e;
	if (!jsonw_value_start(w))
		return;
	jsonw_put(w, "\"", 1);
	if (w->err == BW_OK && (e = jsonw_escape(w->b, s, n)) != BW_OK)
		jsonw_fail(w, e);
	jsonw_put(w, "\"", 1);
}

void
jsonw_cstring(struct jsonw *w, const char *s)
{
	if (s == NULL)
		jsonw_null(w);
	else
		jsonw_string(w, s, strlen(s));
}

void
jsonw_int(struct jsonw *w, int64_t v)
{
	char num[24];
	size_t o = sizeof(num);
	if (!jsonw_value_start(w))
		return;
	/* magnitude as unsigned, so INT64_MIN works */
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		num[--o] = (char)('0' + u % 10);
		u /= 10;
	} while (u > 0);
	if (v < 0)
		num[--o] = '-';
	jsonw_put(w, num + o, sizeof(num) - o);
}

void
jsonw_bool(struct jsonw *w, int v)
{
	if (jsonw_value_start(w))
		jsonw_put(w, v ? "true" : "false", v ? 4 : 5);
}

void
jsonw_null(struct jsonw *w)
{
	if (jsonw_value_start(w))
		jsonw_put(w, "null", 4);
}

void
jsonw_raw(struct jsonw *w, const char *json, size_t n)
{
	if (jsonw_value_start(w))
		jsonw_put(w, json, n);
}

/* Back to length mark, wiping what was past it. */
static void
jsonw_rewind(struct buf *b, size_t mark)
{
	if (b->p == NULL || b->len < mark)
		return;
	memset(b->p + mark, 0, b->len - mark);
	b->len = mark;
}

void
jsonw_string_begin(struct jsonw *w, size_t n, unsigned char **out)
{
	static const unsigned char zeros[256];
	*out = NULL;
	size_t mark = buf_len(w->b);
	unsigned char count = w->depth > 0 ? w->count[w->depth - 1] : 0;
	if (!jsonw_value_start(w))
		return;
	jsonw_put(w, "\"", 1);
	size_t off = buf_len(w->b);
	for (size_t left = n; left > 0 && w->err == BW_OK;) {
		size_t k = left < sizeof(zeros) ? left : sizeof(zeros);
		jsonw_put(w, zeros, k);
		left -= k;
	}
	if (w->err != BW_OK) {
		jsonw_rewind(w->b, mark);
		return;
	}
	w->in_string = 1;
	w->str_mark = mark;
	w->str_off = off;
	w->str_n = n;
	w->str_count = count;
	*out = (unsigned char *)w->b->p + off;
}

void
jsonw_string_abort(struct jsonw *w, bw_err e)
{
	if (!w->in_string)
		return;
	jsonw_rewind(w->b, w->str_mark);
	w->in_string = 0;
	jsonw_fail(w, e);
}

void
jsonw_string_end(struct jsonw *w)
{
	static const unsigned char zeros[256];
	if (!w->in_string) {
		jsonw_fail(w, BW_ERR_INTERNAL);
		return;
	}
	struct buf *b = w->b;
	size_t n = w->str_n, esc;
	bw_err e = jsonw_scan((unsigned char *)b->p + w->str_off, n, &esc);
	if (e == BW_OK && esc > n) {
		/* Grow by the escapes' extra bytes, then escape in place from the back. */
		size_t extra = esc - n;
		while (extra > 0 && e == BW_OK) {
			size_t k = extra < sizeof(zeros) ? extra : sizeof(zeros);
			e = buf_append(b, zeros, k);
			extra -= k;
		}
		if (e == BW_OK) {
			unsigned char *p = (unsigned char *)b->p + w->str_off;
			size_t dst = esc;
			for (size_t i = n; i-- > 0;) {
				size_t l = jsonw_esc_len(p[i]);
				dst -= l;
				if (l == 1)
					p[dst] = p[i];
				else
					jsonw_esc_put(p[i], (char *)p + dst);
			}
		}
	}
	w->in_string = 0;
	if (e != BW_OK) {
		jsonw_rewind(b, w->str_mark);
		if (w->depth > 0)
			w->count[w->depth - 1] = w->str_count;
		jsonw_fail(w, e);
		return;
	}
	jsonw_put(w, "\"", 1);
}

bw_err
jsonw_error(const struct jsonw *w)
{
	return w->err;
}

bw_err
jsonw_finish(struct jsonw *w)
{
	if (w->err == BW_OK && (w->depth != 0 || w->want_value || w->in_string))
		w->err = BW_ERR_INVALID;
	return w->err;
}
