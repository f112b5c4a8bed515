/*
 * A bump allocator in chunks. Requests allocate many small strings and a
 * few larger buffers and free all of them together, so there is no
 * per-object free; the hard maximum bounds what one request may consume.
 */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_CHUNK 4096
#define POOL_ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size, used;
	_Alignas(POOL_ALIGN) unsigned char data[];
};

struct pool {
	struct chunk *head;
	size_t max, total;
};

pool *
pool_new(size_t max_bytes)
{
	pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->max = max_bytes;
	return p;
}

void
pool_free(pool *p)
{
	if (p == NULL)
		return;
	struct chunk *c = p->head;
	while (c != NULL) {
		struct chunk *n = c->next;
		/*
		 * Wiped before it is freed: a request's pool holds what it was
		 * sent and what it answered (the session cookie's value among them).
		 */
		explicit_bzero(c->data, c->used);
		free(c);
		c = n;
	}
	free(p);
}

void *
pool_alloc(pool *p, size_t n)
{
	if (p == NULL)
		return NULL;
	if (n == 0)
		n = 1;
	if (n > SIZE_MAX - POOL_ALIGN)
		return NULL;
	size_t need = (n + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
	if (need > p->max || p->total > p->max - need)
		return NULL;

	struct chunk *c = p->head;
	if (c == NULL || c->size - c->used < need) {
		size_t sz = need > POOL_CHUNK ? need : POOL_CHUNK;
		c = malloc(sizeof(*c) + sz);
		if (c == NULL)
			return NULL;
		c->size = sz;
		c->used = 0;
		/* A big one-off goes behind the head so the head keeps its room. */
		if (p->head != NULL && need > POOL_CHUNK) {
			c->next = p->head->next;
			p->head->next = c;
		} else {
			c->next = p->head;
			p->head = c;
		}
	}
	void *r = c->data + c->used;
	c->used += need;
	p->total += need;
	memset(r, 0, n);
	return r;
}

char *
pool_strndup(pool *p, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *r = pool_alloc(p, n + 1);
	if (r == NULL)
		return NULL;
	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

char *
pool_strdup(pool *p, const char *s)
{
	return pool_strndup(p, s, strlen(s));
}

char *
pool_printf(pool *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *r = pool_alloc(p, (size_t)n + 1);
	if (r == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(r, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return r;
}

size_t
pool_used(const pool *p)
{
	return p == NULL ? 0 : p->total;
}
