/*
 * libFuzzer target for the If-Match parser (src/http/ifmatch.c): every
 * PATCH, DELETE and action may send one, and what it returns decides
 * whether a write goes ahead. The input is split on '\n' into field lines
 * (NUL bytes kept: lengths are explicit). Holds http_if_match_parse() to
 * a second, plainer reading written here as a character state machine
 * (RFC 9110 13.1.1 and the #rule of 5.6.1), and to its own contract:
 *   - accepted and refused alike by both; on acceptance the same versions
 *     in the same order (first appearance), at most HTTP_IF_MATCH_MAX;
 *   - no header or "*" alone: one try at 0; tags naming no version: one
 *     try at -1; otherwise only positive, distinct versions, each written
 *     in the input as a strong tag "<decimal>";
 *   - the versions accepted, written back as a list, read as the same.
 *   build/fuzz/fuzz_ifmatch -max_total_time=600 build/fuzz/corpus-fuzz_ifmatch
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 4096

struct ref {
	int lines, star, tags, bad, too_many;
	size_t n;
	int64_t v[HTTP_IF_MATCH_MAX];
};

/* A tag's content as our ETags write a version, by strtoll; 0 for none. */
static int64_t
ref_version(const char *p, size_t n)
{
	char buf[32];
	if (n == 0 || n >= sizeof(buf) || p[0] == '0')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	long long v = strtoll(buf, NULL, 10);
	return errno == ERANGE || v <= 0 ? 0 : (int64_t)v;
}

static void
ref_add(struct ref *r, int64_t v)
{
	for (size_t k = 0; k < r->n; k++)
		if (r->v[k] == v)
			return;
	if (r->n == HTTP_IF_MATCH_MAX)
		r->too_many = 1;
	else
		r->v[r->n++] = v;
}

enum { S_ELEM, S_W, S_QUOTE, S_TAG, S_AFTER };

static void
ref_line(struct ref *r, const char *p, size_t n)
{
	size_t a = 0, b = n;
	r->lines++;
	while (a < b && (p[a] == ' ' || p[a] == '\t'))
		a++;
	while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
		b--;
	if (b - a == 1 && p[a] == '*') {
		r->star = 1;
		return;
	}
	int state = S_ELEM, weak = 0;
	size_t start = 0;
	for (size_t i = a; i < b; i++) {
		unsigned char c = (unsigned char)p[i];
		switch (state) {
		case S_ELEM:
			if (c == ' ' || c == '\t' || c == ',')
				break;
			weak = c == 'W';
			if (c == 'W')
				state = S_W;
			else if (c == '"')
				state = S_TAG, start = i + 1;
			else
				r->bad = 1;
			break;
		case S_W:
			if (c == '/')
				state = S_QUOTE;
			else
				r->bad = 1;
			break;
		case S_QUOTE:
			if (c == '"')
				state = S_TAG, start = i + 1;
			else
				r->bad = 1;
			break;
		case S_TAG:
			if (c == '"') {
				r->tags++;
				int64_t v = weak ? 0 : ref_version(p + start, i - start);
				if (v > 0)
					ref_add(r, v);
				state = S_AFTER;
			} else if (!(c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80)) {
				r->bad = 1;
			}
			break;
		case S_AFTER:
			if (c == ',')
				state = S_ELEM;
			else if (c != ' ' && c != '\t')
				r->bad = 1;
			break;
		default:
			abort();
		}
		if (r->bad)
			return;
	}
	if (state != S_ELEM && state != S_AFTER)
		r->bad = 1;
}

/* Whether "<v>" appears in the input as a strong tag (not right after W/). */
static int
written_strong(const char *in, size_t n, int64_t v)
{
	char tag[32];
	int tl = snprintf(tag, sizeof(tag), "\"%lld\"", (long long)v);
	for (size_t i = 0; i + (size_t)tl <= n; i++)
		if (memcmp(in + i, tag, (size_t)tl) == 0 && !(i >= 2 && in[i - 2] == 'W' && in[i - 1] == '/'))
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *lines[HTTP_IF_MATCH_LINES];
	size_t lens[HTTP_IF_MATCH_LINES], nl = 0;
	const char *in = (const char *)data;
	if (size > FUZZ_MAX)
		return 0;
	for (size_t i = 0, s = 0; i <= size && nl < HTTP_IF_MATCH_LINES; i++)
		if (i == size || in[i] == '\n') {
			lines[nl] = in + s;
			lens[nl++] = i - s;
			s = i + 1;
		}
	if (size == 0)
		nl = 0; /* no field at all */

	struct http_if_match m;
	const char *why = NULL;
	bw_err e = http_if_match_parse(lines, lens, nl, &m, &why);

	struct ref r = {0};
	for (size_t i = 0; i < nl; i++)
		ref_line(&r, lines[i], lens[i]);
	int none = r.lines == 0 || (r.star && r.lines == 1 && r.tags == 0);
	int invalid = !none && (r.bad || r.star || r.tags == 0 || r.too_many);

	if (invalid != (e == BW_ERR_INVALID) || (e != BW_OK && e != BW_ERR_INVALID))
		abort();
	if (e != BW_OK) {
		if (why == NULL || strncmp(why, "If-Match: ", 10) != 0 || m.n != 0)
			abort();
		return 0;
	}
	if (why != NULL || m.n < 1 || m.n > HTTP_IF_MATCH_MAX)
		abort();
	if (none) {
		if (m.n != 1 || m.version[0] != 0)
			abort();
		return 0;
	}
	if (r.n == 0) {
		if (m.n != 1 || m.version[0] != -1)
			abort();
		return 0;
	}
	if (m.n != r.n)
		abort();
	for (size_t k = 0; k < m.n; k++) {
		if (m.version[k] != r.v[k] || m.version[k] <= 0 || !written_strong(in, size, m.version[k]))
			abort();
		for (size_t j = 0; j < k; j++)
			if (m.version[j] == m.version[k])
				abort();
	}
	/* Written back as a list, they read the same. */
	char back[HTTP_IF_MATCH_MAX * 24];
	size_t off = 0;
	for (size_t k = 0; k < m.n; k++)
		off += (size_t)snprintf(back + off, sizeof(back) - off, "%s\"%lld\"", k ? ", " : "",
					(long long)m.version[k]);
	const char *bl = back;
	struct http_if_match again;
	if (http_if_match_parse(&bl, &off, 1, &again, &why) != BW_OK || again.n != m.n ||
	    memcmp(again.version, m.version, m.n * sizeof(m.version[0])) != 0)
		abort();
	return 0;
}
