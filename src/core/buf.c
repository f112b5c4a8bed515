/*
 * A growable byte buffer with a hard maximum. Capacity doubles (so n
 * appends cost O(n) copies) but never beyond what the maximum can use, and
 * every size is checked before it is computed, so no append can wrap a
 * size_t or pass the maximum by a byte.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 64

void
buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	/* One byte always stays for the NUL, so cap = max + 1 cannot wrap. */
	b->max = max < SIZE_MAX ? max : SIZE_MAX - 1;
}

void
buf_free(struct buf *b)
{
	if (b == NULL)
		return;
	if (b->p != NULL)
		explicit_bzero(b->p, b->cap); /* it may have held opened secrets */
	free(b->p);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

/*
 * Make room for n more bytes and their NUL. BW_ERR_NOMEM past the maximum
 * or when memory runs out; the content is untouched either way.
 */
static bw_err
buf_reserve(struct buf *b, size_t n)
{
	if (b->len > b->max || n > b->max - b->len)
		return BW_ERR_NOMEM;
	size_t need = b->len + n + 1; /* <= max + 1, which buf_init keeps below SIZE_MAX */
	if (need <= b->cap)
		return BW_OK;
	size_t cap = b->cap > BUF_MIN_CAP ? b->cap : BUF_MIN_CAP;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	/*
	 * Not realloc: a buffer may hold opened secrets (a list's sealed
	 * fields, an export), and realloc would leave the old block's copy in
	 * freed memory. The old block is copied, wiped, then freed.
	 */
	char *np = malloc(cap);
	if (np == NULL)
		return BW_ERR_NOMEM;
	if (b->p != NULL) {
		memcpy(np, b->p, b->len + 1);
		explicit_bzero(b->p, b->cap);
		free(b->p);
	}
	b->p = np;
	b->cap = cap;
	return BW_OK;
}

bw_err
buf_append(struct buf *b, const void *data, size_t n)
{
	if (n == 0)
		return BW_OK;
	bw_err e = buf_reserve(b, n);
	if (e != BW_OK)
		return e;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return BW_OK;
}

bw_err
buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

bw_err
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list again;
	va_copy(again, ap);
	/*
	 * First into the room already there, which is enough most of the time;
	 * cap never exceeds max + 1, so what fits the room fits the maximum.
	 */
	size_t room = b->p != NULL ? b->cap - b->len : 0;
	int r = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
	bw_err e = BW_OK;
	if (r < 0) {
		e = BW_ERR_INVALID;
	} else if ((size_t)r < room) {
		b->len += (size_t)r;
	} else if ((e = buf_reserve(b, (size_t)r)) == BW_OK) {
		if (vsnprintf(b->p + b->len, (size_t)r + 1, fmt, again) == r)
			b->len += (size_t)r;
		else
			e = BW_ERR_INVALID;
	}
	va_end(again);
	/* A failed attempt may have written past len: put the terminator back. */
	if (b->p != NULL)
		b->p[b->len] = '\0';
	return e;
}

bw_err
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bw_err e = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return e;
}

const char *
buf_ptr(const struct buf *b)
{
	return b->p != NULL ? b->p : "";
}

size_t
buf_len(const struct buf *b)
{
	return b->len;
}

bw_err
buf_take(struct buf *b, char **out, size_t *len)
{
	char *p = b->p;
	size_t n = b->len;
	if (p == NULL) {
		p = malloc(1);
		if (p == NULL) {
			*out = NULL;
			if (len != NULL)
				*len = 0;
			return BW_ERR_NOMEM;
		}
		p[0] = '\0';
		n = 0;
	}
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	*out = p;
	if (len != NULL)
		*len = n;
	return BW_OK;
}
