/*
 * The front door's framing check: what libmicrohttpd 0.9.75 lets through
 * and RFC 9110/9112 say must be refused, checked before any other stage.
 *
 * libmicrohttpd parses the request head in place: each CRLF becomes two
 * NULs, each field's colon one NUL, and the name and value pointers it hands
 * out point into that one buffer. So a well-formed head is a chain with no
 * gap: version, NUL NUL, name, NUL, OWS, value, NUL NUL, name, ..., value,
 * NUL NUL, NUL NUL, end. Every leniency of the parser leaves a mark on that
 * chain: an obs-folded line moves or overwrites a name, a NUL in a value
 * cuts the value short of the next line, a bare LF leaves one NUL instead of
 * two. Checking the chain, the name and value characters, and the framing
 * fields (Host, Content-Length, Transfer-Encoding) refuses each of them
 * without a parser of our own (ADR 0010).
 */
#include "http.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 5.6.2: tchar. */
static int
framing_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value may hold visible characters, SP, HTAB and obs-text, no other control. */
static int
framing_value_ok(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

/* p, as an address, lies exactly at q. Pointers into different objects compare as integers. */
static int
framing_at(const char *p, const char *q)
{
	return (uintptr_t)p == (uintptr_t)q;
}

/*
 * A NUL at p, read only when p lies inside the head (before end, when end
 * is known): nothing past the head is ever read.
 */
static int
framing_nul(const char *p, const char *end)
{
	return (end == NULL || (uintptr_t)p < (uintptr_t)end) && *p == '\0';
}

/*
 * The field's line in the buffer: name, the colon (now NUL), optional
 * white space, the value, then CR LF (now NUL NUL). Returns the first byte
 * after the line, or NULL when the field is not laid out as one line.
 */
static const char *
framing_line(const struct http_field *f, const char *end)
{
	const char *colon = f->name + f->name_len;
	uintptr_t from = (uintptr_t)(colon + 1), to = (uintptr_t)f->value;
	if (*colon != '\0' || to < from || to - from > FRAMING_OWS_MAX ||
	    (end != NULL && to > (uintptr_t)end))
		return NULL;
	for (const char *p = colon + 1; !framing_at(p, f->value); p++)
		if (*p != ' ' && *p != '\t')
			return NULL;
	const char *eol = f->value + f->value_len;
	if (!framing_nul(eol, end) || !framing_nul(eol + 1, end))
		return NULL;
	return eol + 2;
}

int
framing_target_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

static int
framing_is(const struct http_field *f, const char *name)
{
	return f->name_len == strlen(name) && strncasecmp(f->name, name, f->name_len) == 0;
}

bw_err
framing_check(const char *version, const struct http_field *f, size_t n, const char *end,
	      struct framing *out, const char **why)
{
	int http11 = version != NULL && strcmp(version, "HTTP/1.1") == 0;
	size_t hosts = 0, cls = 0, tes = 0;
	const struct http_field *cl = NULL, *te = NULL;
	memset(out, 0, sizeof(*out));
	*why = NULL;

	/*
	 * Each name must start where the line before it ended, checked before
	 * its line is read: so every byte read lies between two pointers into
	 * the head. The parser hands over only HTTP/1.x, so a version is there.
	 */
	if (version == NULL || version[0] == '\0') {
		*why = "malformed request line";
		return BW_ERR_INVALID;
	}
	size_t vl = strlen(version);
	if (!framing_nul(version + vl + 1, end)) {
		*why = "malformed request line";
		return BW_ERR_INVALID;
	}
	const char *next = version + vl + 2;
	for (size_t i = 0; i < n; i++) {
		if (!framing_at(f[i].name, next)) {
			*why = "header lines are not CRLF-separated fields (folded line, NUL or bare LF)";
			return BW_ERR_INVALID;
		}
		if (f[i].name_len == 0) {
			*why = "empty header field name";
			return BW_ERR_INVALID;
		}
		for (size_t j = 0; j < f[i].name_len; j++)
			if (!framing_tchar((unsigned char)f[i].name[j])) {
				*why = "header field name is not a token (white space before the colon?)";
				return BW_ERR_INVALID;
			}
		if (!framing_value_ok(f[i].value, f[i].value_len)) {
			*why = "control character in a header field value";
			return BW_ERR_INVALID;
		}
		if ((next = framing_line(&f[i], end)) == NULL) {
			*why = "header lines are not CRLF-separated fields (folded line, NUL or bare LF)";
			return BW_ERR_INVALID;
		}
		if (framing_is(&f[i], "Host"))
			hosts++;
		else if (framing_is(&f[i], "Content-Length"))
			cls++, cl = &f[i];
		else if (framing_is(&f[i], "Transfer-Encoding"))
			tes++, te = &f[i];
	}
	/* The head ends with an empty line: NUL NUL once more, then end. */
	if (end != NULL &&
	    (!framing_at(next + 2, end) || !framing_nul(next, end) || !framing_nul(next + 1, end))) {
		*why = "header lines are not CRLF-separated fields (folded line, NUL or bare LF)";
		return BW_ERR_INVALID;
	}
	if (hosts > 1) {
		*why = "more than one Host header";
		return BW_ERR_INVALID;
	}
	if (hosts == 0 && http11) {
		*why = "an HTTP/1.1 request needs a Host header";
		return BW_ERR_INVALID;
	}
	/* Two framings for one body is how requests get smuggled (RFC 9112 6.3). */
	if (cls > 1 || tes > 1 || (cl != NULL && te != NULL)) {
		*why = "conflicting Content-Length/Transfer-Encoding";
		return BW_ERR_INVALID;
	}
	/*
	 * No request body is taken chunked: libmicrohttpd 0.9.75 parses chunk
	 * lines and trailers as leniently as it once parsed heads (bare LF,
	 * any byte in an extension, folded or framing trailers), and no check
	 * of ours can see them. Every client we serve knows its body's length
	 * (RFC 9110 15.5.12: 411). Other codings are not implemented at all.
	 */
	if (te != NULL) {
		if (te->value_len == 7 && strncasecmp(te->value, "chunked", 7) == 0) {
			*why = "send the body with a Content-Length: chunked request bodies are not "
			       "accepted";
			return BW_ERR_LENGTH_REQUIRED;
		}
		*why = "only the chunked transfer coding is implemented, and only for replies";
		return BW_ERR_UNSUPPORTED;
	}
	if (cl != NULL) {
		size_t v = 0;
		if (cl->value_len == 0) {
			*why = "malformed Content-Length";
			return BW_ERR_INVALID;
		}
		for (size_t j = 0; j < cl->value_len; j++) {
			char c = cl->value[j];
			if (c < '0' || c > '9' || v > (SIZE_MAX - 9) / 10) {
				*why = "malformed Content-Length";
				return BW_ERR_INVALID;
			}
			v = v * 10 + (size_t)(c - '0');
		}
		out->has_length = 1;
		out->length = v;
	}
	return BW_OK;
}
