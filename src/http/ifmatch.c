/*
 * If-Match (RFC 9110 13.1.1) as this server reads it: "*" alone, or a
 * list of entity tags (the #rule of 5.6.1: commas, optional white space,
 * empty elements) over one or more field lines. Only strong tags in the
 * form our ETags take ("<version>": a positive decimal, no leading zero,
 * within int64) name a version; weak tags never match. A parser of its
 * own, with nothing but the header's bytes, so that a fuzz target builds
 * from it alone (tests/fuzz/fuzz_ifmatch.c); http_req_if_match (req.c)
 * hands it the request's lines.
 */
#include "http.h"

/* What the If-Match field lines of one request have said so far. */
struct ifmatch {
	struct http_if_match *out;
	int lines;     /* If-Match lines seen */
	int any;       /* one of them was "*" */
	int tags;      /* entity tags seen, of any kind */
	int malformed; /* a line that is not "*" or a list of entity tags */
	int too_many;  /* more distinct versions than HTTP_IF_MATCH_MAX */
};

static int
ifmatch_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* etagc (RFC 9110 8.8.3): %x21 / %x23-7E / obs-text. */
static int
ifmatch_etagc(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/*
 * The version a strong tag's opaque content names: our ETags are a
 * positive decimal without leading zeros, so anything else (and any
 * value past INT64_MAX) names none and can never match (0).
 */
static int64_t
ifmatch_version(const char *p, size_t n)
{
	int64_t v = 0;
	if (n == 0 || n > 19 || p[0] == '0')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (INT64_MAX - (p[i] - '0')) / 10)
			return 0;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* One If-Match field line: "*" alone, or a comma-separated list of entity tags. */
static void
ifmatch_line(struct ifmatch *st, const char *p, size_t n)
{
	size_t i = 0;
	st->lines++;
	while (n > 0 && ifmatch_ows(p[n - 1]))
		n--;
	while (i < n && ifmatch_ows(p[i]))
		i++;
	if (n - i == 1 && p[i] == '*') {
		st->any = 1;
		return;
	}
	while (i < n) {
		int weak = 0;
		if (p[i] == ',') { /* empty list elements are allowed (RFC 9110 5.6.1) */
			i++;
			while (i < n && ifmatch_ows(p[i]))
				i++;
			continue;
		}
		if (n - i >= 2 && p[i] == 'W' && p[i + 1] == '/') {
			weak = 1;
			i += 2;
		}
		if (i >= n || p[i] != '"')
			goto bad;
		size_t start = ++i;
		while (i < n && ifmatch_etagc((unsigned char)p[i]))
			i++;
		if (i >= n || p[i] != '"')
			goto bad;
		int64_t v = weak ? 0 : ifmatch_version(p + start, i - start);
		i++;
		st->tags++;
		/* Weak tags never match (the strong comparison of RFC 9110 13.1.1). */
		if (v > 0) {
			size_t k = 0;
			while (k < st->out->n && st->out->version[k] != v)
				k++;
			if (k == st->out->n) {
				if (st->out->n == HTTP_IF_MATCH_MAX)
					st->too_many = 1;
				else
					st->out->version[st->out->n++] = v;
			}
		}
		while (i < n && ifmatch_ows(p[i]))
			i++;
		if (i < n && p[i] != ',')
			goto bad;
	}
	return;
bad:
	st->malformed = 1;
}

/* The lines seen, judged: BW_OK with st->out filled, or BW_ERR_INVALID and why. */
static bw_err
ifmatch_verdict(struct ifmatch *st, const char **why)
{
	struct http_if_match *out = st->out;
	*why = NULL;
	if (st->lines == 0 || (st->any && st->lines == 1 && st->tags == 0)) {
		/* No precondition: none was given, or "*" (the row must exist, as it must anyway). */
		out->n = 1;
		out->version[0] = 0;
		return BW_OK;
	}
	if (st->malformed || st->any || st->tags == 0)
		*why = "If-Match: give \"*\" alone, or a list of entity tags (\"3\", as ETag sends)";
	else if (st->too_many)
		*why = "If-Match: too many entity tags";
	if (*why != NULL) {
		out->n = 0;
		return BW_ERR_INVALID;
	}
	if (out->n == 0) {
		/* Only weak tags, or tags naming no version of ours: none can match. */
		out->n = 1;
		out->version[0] = -1;
	}
	return BW_OK;
}

bw_err
http_if_match_parse(const char *const *lines, const size_t *lens, size_t nlines,
		    struct http_if_match *out, const char **why)
{
	struct ifmatch st = {.out = out};
	out->n = 0;
	for (size_t i = 0; i < nlines; i++)
		ifmatch_line(&st, lines[i], lens[i]);
	return ifmatch_verdict(&st, why);
}

