/*
 * One incoming message taken apart (inbound.h "parse.c"): GMime reads the
 * MIME structure, libxml2's HTML parser turns an HTML-only body into text,
 * and the topmost Authentication-Results header is read by hand (RFC 8601).
 *
 * Every string that leaves this file is UTF-8 with no control characters
 * but line ends and tabs in the text (none at all in header values), and
 * bounded: the text and the HTML at MAIL_TEXT_MAX bytes, names and the
 * subject at MAIL_HEADER_MAX, MIME nesting at MAIL_IN_DEPTH_MAX levels.
 * Walks over the MIME tree recurse at most that deep; the walk over the
 * HTML tree is iterative, so no input decides how deep the C stack goes.
 * GMime itself stops nesting at 1024 levels (its MAX_LEVEL).
 *
 * GLib (and so GMime) aborts when memory runs out; BW_ERR_NOMEM is what
 * this file's own allocations report.
 */
#include "inbound.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#define MAIL_IN_DEPTH_MAX 20  /* multipart levels looked into; parts below are counted skipped */
#define MAIL_IN_NAME_MAX  255 /* bytes of an attachment's file name */
#define MAIL_IN_TYPE_MAX  127 /* bytes of "type/subtype" */
#define MAIL_AR_VALUE_MAX 255 /* bytes of one Authentication-Results value compared */

static const char utf8_replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* --- bounded, UTF-8 output ------------------------------------------------------------- */

/*
 * A buffer that stops taking bytes at max, on a character boundary, and
 * remembers that it did (full): a cut text is not an error. Only a failed
 * allocation is.
 */
struct mail_out {
	struct buf b;
	size_t max;
	int full;
};

static void
mail_out_init(struct mail_out *o, size_t max)
{
	buf_init(&o->b, max);
	o->max = max;
	o->full = 0;
}

/* Append n bytes of whole UTF-8 characters; past max, as many whole characters as fit. */
static bw_err
mail_out_put(struct mail_out *o, const void *p, size_t n)
{
	const unsigned char *s = p;
	if (o->full || n == 0)
		return BW_OK;
	size_t room = o->max - buf_len(&o->b);
	if (n > room) {
		n = room;
		while (n > 0 && (s[n] & 0xc0) == 0x80)
			n--;
		o->full = 1;
	}
	return n > 0 ? buf_append(&o->b, s, n) : BW_OK;
}

/* The content, malloc'd (its length into *len when len is not NULL). */
static bw_err
mail_out_take(struct mail_out *o, char **out, size_t *len)
{
	return buf_take(&o->b, out, len);
}

/*
 * Bytes of the well-formed UTF-8 character at s (n bytes left), 0 when
 * there is none: no overlong forms, no surrogates, nothing past U+10FFFF.
 */
static size_t
mail_utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	unsigned lo = 0x80, hi = 0xbf;
	size_t need;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return need;
}

/*
 * Append n bytes of in as clean UTF-8: a byte that is not part of a
 * well-formed character becomes U+FFFD. As text (header 0): CRLF and a
 * lone CR become LF, LF and tab stay, every other control goes. As a
 * header value (header 1): unfolded (a line end before a space or tab
 * goes), and every other control, a line end GMime decoded out of an
 * encoded word too, becomes a space.
 */
static bw_err
mail_clean(struct mail_out *o, const char *in, size_t n, int header)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t run = 0, i = 0;
	bw_err e = BW_OK;
	while (i < n && e == BW_OK && !o->full) {
		unsigned c = s[i];
		size_t k = mail_utf8_len(s + i, n - i), skip = 1;
		const char *rep;
		if (k == 0) {
			rep = utf8_replacement;
		} else if (c >= 0x20 && c != 0x7f) {
			i += k;
			continue;
		} else if (header) {
			/* Unfolded: a line end before white space goes; other controls are spaces.
			 */
			int fold =
			    (c == '\r' && i + 1 < n && s[i + 1] == '\n') ||
			    (c == '\n' && i + 1 < n && (s[i + 1] == ' ' || s[i + 1] == '\t'));
			rep = fold ? "" : " ";
		} else if (c == '\n' || c == '\t') {
			i++;
			continue;
		} else if (c == '\r') {
			rep = "\n";
			if (i + 1 < n && s[i + 1] == '\n')
				skip = 2;
		} else {
			rep = "";
		}
		e = mail_out_put(o, s + run, i - run);
		if (e == BW_OK)
			e = mail_out_put(o, rep, strlen(rep));
		i += skip;
		run = i;
	}
	if (e == BW_OK)
		e = mail_out_put(o, s + run, i - run);
	return e;
}

static int
mail_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

/* Spaces off both ends, in place. */
static void
mail_trim(char *s)
{
	size_t n = strlen(s), b = 0;
	while (n > 0 && mail_is_space(s[n - 1]))
		n--;
	while (b < n && mail_is_space(s[b]))
		b++;
	memmove(s, s + b, n - b);
	s[n - b] = '\0';
}

/* A header value made clean (as mail_clean with header 1), trimmed, cut at max: malloc'd. */
static bw_err
mail_header_dup(const char *v, size_t max, char **out)
{
	struct mail_out o;
	mail_out_init(&o, max);
	bw_err e = mail_clean(&o, v, strlen(v), 1);
	if (e == BW_OK)
		e = mail_out_take(&o, out, NULL);
	buf_free(&o.b);
	if (e == BW_OK)
		mail_trim(*out);
	return e;
}

static int
mail_ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Equal with ASCII letters case-folded (and nothing else: bytes above 0x7f compare as they are). */
static int
mail_ascii_eq(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b);
	if (an != bn)
		return 0;
	for (size_t i = 0; i < an; i++)
		if (mail_ascii_lower((unsigned char)a[i]) != mail_ascii_lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* --- HTML to text ---------------------------------------------------------------------- */

enum mail_html_kind {
	HTML_INLINE, /* its text, nothing around it */
	HTML_DROP,   /* neither it nor what it holds */
	HTML_LINE,   /* on lines of its own */
	HTML_PARA,   /* with a blank line around it */
	HTML_PRE,    /* a paragraph whose spaces and line ends stay */
	HTML_CELL,   /* a space on either side */
	HTML_BR,
};

/*
 * <embed> is not here: it holds nothing (a void element), but libxml2
 * 2.9 does not know that and makes whatever follows it its children.
 * Read as inline, it shows nothing of itself (attributes never are).
 */
static const char *const html_drop[] = {
    "script", "style",  "head",  "title",    "template", "noscript", "iframe", "object", "svg",
    "math",   "applet", "frame", "frameset", "audio",    "video",    "canvas", "xml",
};
static const char *const html_line[] = {
    "div",      "li",     "tr",         "dt",     "dd",      "hr",      "dl",      "section",
    "article",  "header", "footer",     "nav",    "aside",   "main",    "address", "form",
    "fieldset", "figure", "figcaption", "center", "caption", "details", "summary", "legend",
    "body",     "html",   "thead",      "tbody",  "tfoot",
};
static const char *const html_para[] = {
    "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol",
};

static int
mail_html_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return 1;
	return 0;
}

/* libxml2's HTML parser gives element names in lower case. */
static enum mail_html_kind
mail_html_kind_of(const xmlNode *n)
{
	const char *name = (const char *)n->name;
	if (name == NULL)
		return HTML_INLINE;
	if (mail_html_in(name, html_drop, BW_ARRAY_LEN(html_drop)))
		return HTML_DROP;
	if (strcmp(name, "br") == 0)
		return HTML_BR;
	if (strcmp(name, "pre") == 0)
		return HTML_PRE;
	if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0)
		return HTML_CELL;
	if (mail_html_in(name, html_para, BW_ARRAY_LEN(html_para)))
		return HTML_PARA;
	if (mail_html_in(name, html_line, BW_ARRAY_LEN(html_line)))
		return HTML_LINE;
	return HTML_INLINE;
}

/*
 * The text as it is written: a space owed between words is written only
 * before the next word and never at the start of a line; nl counts the
 * line ends at the end of what is written, so blocks never make more
 * than one blank line.
 */
struct mail_html_out {
	struct mail_out o;
	int space;
	int nl;
	int pre; /* depth of <pre> */
};

static bw_err
mail_html_lines(struct mail_html_out *h, int k)
{
	bw_err e = BW_OK;
	h->space = 0;
	if (buf_len(&h->o.b) == 0)
		return BW_OK;
	while (e == BW_OK && h->nl < k) {
		e = mail_out_put(&h->o, "\n", 1);
		h->nl++;
	}
	return e;
}

/* Visible characters (a run of them): the owed space first. */
static bw_err
mail_html_word(struct mail_html_out *h, const unsigned char *s, size_t n)
{
	bw_err e = BW_OK;
	if (n == 0)
		return BW_OK;
	if (h->space && h->nl == 0 && buf_len(&h->o.b) > 0)
		e = mail_out_put(&h->o, " ", 1);
	h->space = 0;
	h->nl = 0;
	return e == BW_OK ? mail_out_put(&h->o, s, n) : e;
}

/* A text node: white space collapsed, but inside <pre>; controls dropped; U+00A0 a space. */
static bw_err
mail_html_chars(struct mail_html_out *h, const unsigned char *s)
{
	size_t n = strlen((const char *)s), i = 0, run = 0;
	bw_err e = BW_OK;
	while (i < n && e == BW_OK && !h->o.full) {
		unsigned c = s[i];
		size_t k = mail_utf8_len(s + i, n - i);
		int ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
			 (k == 2 && c == 0xc2 && s[i + 1] == 0xa0);
		if (k != 0 && !ws && c >= 0x20 && c != 0x7f) {
			i += k;
			continue;
		}
		e = mail_html_word(h, s + run, i - run);
		if (e != BW_OK)
			break;
		if (k == 0) {
			e = mail_html_word(h, (const unsigned char *)utf8_replacement, 3);
			k = 1;
		} else if (ws && h->pre > 0) {
			if (c == '\n') {
				e = mail_out_put(&h->o, "\n", 1);
				h->nl++;
				h->space = 0;
			} else if (c != '\r') {
				e = mail_html_word(h, (const unsigned char *)" ", 1);
			}
		} else if (ws) {
			h->space = 1;
		}
		i += k;
		run = i;
	}
	if (e == BW_OK)
		e = mail_html_word(h, s + run, i - run);
	return e;
}

static bw_err
mail_html_open(struct mail_html_out *h, enum mail_html_kind k)
{
	switch (k) {
	case HTML_INLINE:
	case HTML_DROP:
		return BW_OK;
	case HTML_LINE:
		return mail_html_lines(h, 1);
	case HTML_PARA:
		return mail_html_lines(h, 2);
	case HTML_PRE:
		h->pre++;
		return mail_html_lines(h, 2);
	case HTML_CELL:
		h->space = 1;
		return BW_OK;
	case HTML_BR:
		/* A line end each, at most one blank line; none at the very start. */
		if (buf_len(&h->o.b) == 0)
			return BW_OK;
		return mail_html_lines(h, h->nl < 2 ? h->nl + 1 : 2);
	default:
		abort();
	}
}

static bw_err
mail_html_close(struct mail_html_out *h, enum mail_html_kind k)
{
	switch (k) {
	case HTML_INLINE:
	case HTML_DROP:
	case HTML_BR:
		return BW_OK;
	case HTML_LINE:
		return mail_html_lines(h, 1);
	case HTML_PARA:
		return mail_html_lines(h, 2);
	case HTML_PRE:
		h->pre--;
		return mail_html_lines(h, 2);
	case HTML_CELL:
		h->space = 1;
		return BW_OK;
	default:
		abort();
	}
}

/* Walk the tree in document order without recursion: down, across, and back up. */
static bw_err
mail_html_walk(struct mail_html_out *h, xmlDoc *doc)
{
	xmlNode *n = doc->children;
	bw_err e = BW_OK;
	while (n != NULL && e == BW_OK && !h->o.full) {
		int down = 0;
		if (n->type == XML_ELEMENT_NODE) {
			enum mail_html_kind k = mail_html_kind_of(n);
			if (k != HTML_DROP) {
				e = mail_html_open(h, k);
				down = n->children != NULL;
				if (!down && e == BW_OK)
					e = mail_html_close(h, k);
			}
		} else if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) &&
			   n->content != NULL) {
			e = mail_html_chars(h, n->content);
		}
		if (down) {
			n = n->children;
			continue;
		}
		while (n != NULL && n->next == NULL && e == BW_OK) {
			n = n->parent;
			if (n == NULL || n == (xmlNode *)doc) {
				n = NULL;
				break;
			}
			if (n->type == XML_ELEMENT_NODE)
				e = mail_html_close(h, mail_html_kind_of(n));
		}
		if (n != NULL)
			n = n->next;
	}
	return e;
}

/*
 * See inbound.h. The HTML is read as UTF-8 (invalid bytes made U+FFFD
 * first, so that libxml2 never switches to Latin-1 half-way), at most
 * MAIL_TEXT_MAX bytes of it, and so is the text made. Attributes are
 * never looked at: no link target, image address or handler survives,
 * only the text a link shows. Entities are decoded, so the text may hold
 * a literal "<" that the page showed as one: it is text, to be escaped by
 * whatever displays it.
 */
char *
mail_html_text(const char *html, size_t len)
{
	struct mail_out in;
	struct mail_html_out h = {.space = 0};
	char *src = NULL, *text = NULL;
	size_t n = 0;
	xmlDoc *doc = NULL;
	mail_out_init(&in, MAIL_TEXT_MAX);
	mail_out_init(&h.o, MAIL_TEXT_MAX);
	if (html == NULL) {
		html = "";
		len = 0;
	}
	if (mail_clean(&in, html, len, 0) != BW_OK || mail_out_take(&in, &src, &n) != BW_OK)
		goto done;
	if (n > 0)
		doc = htmlReadMemory(src, (int)n, NULL, "UTF-8",
				     HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
					 HTML_PARSE_RECOVER);
	if (doc != NULL && mail_html_walk(&h, doc) != BW_OK)
		goto done;
	if (mail_out_take(&h.o, &text, &n) == BW_OK) {
		while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
			text[--n] = '\0';
	}
done:
	xmlFreeDoc(doc);
	free(src);
	buf_free(&in.b);
	buf_free(&h.o.b);
	return text;
}

/* --- the MIME structure ---------------------------------------------------------------- */

/* Bytes written by fill into a new memory stream: its byte array into *data (malloc'd). */
static bw_err
mail_stream_copy(GMimeStream *ms, unsigned char **data, size_t *len)
{
	GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
	size_t n = ba != NULL ? ba->len : 0;
	*data = malloc(n > 0 ? n : 1);
	if (*data == NULL)
		return BW_ERR_NOMEM;
	if (n > 0)
		memcpy(*data, ba->data, n);
	*len = n;
	return BW_OK;
}

/*
 * The decoded content of a leaf part (its transfer encoding undone), into
 * a new memory stream; with utf8, converted from its declared charset to
 * UTF-8 as well (left as it is when none is declared or iconv does not
 * know it: mail_clean makes it UTF-8 then).
 */
static GMimeStream *
mail_part_content(GMimePart *part, int utf8)
{
	GMimeStream *ms = g_mime_stream_mem_new();
	GMimeDataWrapper *dw = g_mime_part_get_content(part);
	if (dw == NULL)
		return ms;
	const char *cs =
	    utf8 ? g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset") : NULL;
	GMimeFilter *f = NULL;
	if (cs != NULL && g_ascii_strcasecmp(cs, "utf-8") != 0 &&
	    g_ascii_strcasecmp(cs, "us-ascii") != 0)
		f = g_mime_filter_charset_new(cs, "utf-8");
	if (f != NULL) {
		GMimeStream *fs = g_mime_stream_filter_new(ms);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
		g_object_unref(f);
		(void)g_mime_data_wrapper_write_to_stream(dw, fs);
		(void)g_mime_stream_flush(fs);
		g_object_unref(fs);
	} else {
		(void)g_mime_data_wrapper_write_to_stream(dw, ms);
	}
	return ms;
}

static int
mail_is_type(GMimeObject *o, const char *type, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	return ct != NULL && g_mime_content_type_is_type(ct, type, subtype);
}

/* Marked as an attachment by its sender: Content-Disposition attachment, or a file name. */
static int
mail_marked_attachment(GMimeObject *o)
{
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
	if (d != NULL && g_mime_content_disposition_is_attachment(d))
		return 1;
	const char *name = GMIME_IS_PART(o) ? g_mime_part_get_filename(GMIME_PART(o)) : NULL;
	return name != NULL && name[0] != '\0';
}

/* The first text/<subtype> leaf not marked an attachment, depth first, in order; or NULL. */
static GMimeObject *
mail_find_body(GMimeObject *o, const char *subtype, int depth)
{
	if (GMIME_IS_MULTIPART(o)) {
		if (depth >= MAIL_IN_DEPTH_MAX)
			return NULL;
		int n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
		for (int i = 0; i < n; i++) {
			GMimeObject *c = g_mime_multipart_get_part(GMIME_MULTIPART(o), i);
			GMimeObject *b = c != NULL ? mail_find_body(c, subtype, depth + 1) : NULL;
			if (b != NULL)
				return b;
		}
		return NULL;
	}
	if (GMIME_IS_PART(o) && mail_is_type(o, "text", subtype) && !mail_marked_attachment(o))
		return o;
	return NULL;
}

/* A MIME token: what may stand as a type or subtype here. */
static int
mail_type_token(const char *t)
{
	if (t == NULL || t[0] == '\0')
		return 0;
	for (const char *p = t; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("!#$&^_.+-", *p) != NULL))
			return 0;
	return 1;
}

/* "type/subtype" in lower case, or application/octet-stream for what is not one: malloc'd. */
static bw_err
mail_type_dup(GMimeObject *o, char **out)
{
	GMimeContentType *ct = g_mime_object_get_content_type(o);
	const char *t = ct != NULL ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *s = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
	if (!mail_type_token(t) || !mail_type_token(s) ||
	    strlen(t) + 1 + strlen(s) > MAIL_IN_TYPE_MAX) {
		t = "application";
		s = "octet-stream";
	}
	size_t n = strlen(t) + 1 + strlen(s);
	if ((*out = malloc(n + 1)) == NULL)
		return BW_ERR_NOMEM;
	snprintf(*out, n + 1, "%s/%s", t, s);
	for (char *p = *out; *p; p++)
		*p = (char)mail_ascii_lower((unsigned char)*p);
	return BW_OK;
}

/*
 * A file name that is only a name: what follows the last '/' or '\',
 * controls made spaces, spaces and dots off the end (Windows drops
 * them, "x.exe." is "x.exe"), cut at MAIL_IN_NAME_MAX bytes; fallback
 * when nothing is left of it (or it was "." or ".."). malloc'd.
 */
static bw_err
mail_filename_dup(const char *name, const char *fallback, char **out)
{
	*out = NULL;
	if (name != NULL) {
		const char *base = name;
		for (const char *p = name; *p; p++)
			if (*p == '/' || *p == '\\')
				base = p + 1;
		bw_err e = mail_header_dup(base, MAIL_IN_NAME_MAX, out);
		if (e != BW_OK)
			return e;
		size_t n = strlen(*out);
		while (n > 0 && ((*out)[n - 1] == '.' || (*out)[n - 1] == ' '))
			(*out)[--n] = '\0';
		if (n > 0)
			return BW_OK;
		free(*out);
		*out = NULL;
	}
	return (*out = strdup(fallback)) != NULL ? BW_OK : BW_ERR_NOMEM;
}

static void
mail_part_free(struct mail_in_part *p)
{
	free(p->filename);
	free(p->content_type);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

/* One attachment into m->parts: a leaf part decoded, or a message/rfc822 part written out whole. */
static bw_err
mail_add_part(struct mail_in *m, GMimeObject *o)
{
	struct mail_in_part p = {0};
	char fallback[32];
	GMimeStream *ms = NULL;
	const char *name;
	bw_err e;
	if (m->nparts >= MAIL_IN_PARTS_MAX) {
		m->nskipped++;
		return BW_OK;
	}
	if (GMIME_IS_MESSAGE_PART(o)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
		ms = g_mime_stream_mem_new();
		if (inner != NULL)
			(void)g_mime_object_write_to_stream(GMIME_OBJECT(inner), NULL, ms);
		name = g_mime_object_get_content_disposition_parameter(o, "filename");
		if (name == NULL)
			name = g_mime_object_get_content_type_parameter(o, "name");
		snprintf(fallback, sizeof(fallback), "message.eml");
	} else {
		ms = mail_part_content(GMIME_PART(o), 0);
		name = g_mime_part_get_filename(GMIME_PART(o));
		snprintf(fallback, sizeof(fallback), "part-%zu", m->nparts + 1);
	}
	if ((e = mail_stream_copy(ms, &p.data, &p.len)) != BW_OK ||
	    (e = mail_type_dup(o, &p.content_type)) != BW_OK ||
	    (e = mail_filename_dup(name, fallback, &p.filename)) != BW_OK)
		goto fail;
	g_object_unref(ms);
	m->parts[m->nparts++] = p;
	return BW_OK;
fail:
	g_object_unref(ms);
	mail_part_free(&p);
	return e;
}

/*
 * Every attachment, depth first: a leaf marked as one or not text/plain
 * or text/html (inline images are attachments), a message/rfc822 part as
 * one attachment, never the part the text came from. A multipart deeper
 * than MAIL_IN_DEPTH_MAX is not looked into: it counts as one skipped.
 */
static bw_err
mail_collect(struct mail_in *m, GMimeObject *o, GMimeObject *body, int depth)
{
	if (GMIME_IS_MULTIPART(o)) {
		if (depth >= MAIL_IN_DEPTH_MAX) {
			m->nskipped++;
			return BW_OK;
		}
		int n = g_mime_multipart_get_count(GMIME_MULTIPART(o));
		for (int i = 0; i < n; i++) {
			GMimeObject *c = g_mime_multipart_get_part(GMIME_MULTIPART(o), i);
			bw_err e = c != NULL ? mail_collect(m, c, body, depth + 1) : BW_OK;
			if (e != BW_OK)
				return e;
		}
		return BW_OK;
	}
	if (o == body)
		return BW_OK;
	if (GMIME_IS_MESSAGE_PART(o))
		return mail_add_part(m, o);
	if (GMIME_IS_PART(o) && (mail_marked_attachment(o) || !(mail_is_type(o, "text", "plain") ||
								mail_is_type(o, "text", "html"))))
		return mail_add_part(m, o);
	return BW_OK;
}

/* The text: the first text/plain leaf, else the first text/html one made text, else "". */
static bw_err
mail_body(struct mail_in *m, GMimeObject *top, GMimeObject **body)
{
	*body = NULL;
	if (top == NULL)
		return (m->text = strdup("")) != NULL ? BW_OK : BW_ERR_NOMEM;
	GMimeObject *b = mail_find_body(top, "plain", 0);
	int html = 0;
	if (b == NULL && (b = mail_find_body(top, "html", 0)) != NULL)
		html = 1;
	*body = b;
	if (b == NULL)
		return (m->text = strdup("")) != NULL ? BW_OK : BW_ERR_NOMEM;
	GMimeStream *ms = mail_part_content(GMIME_PART(b), 1);
	GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
	int have = ba != NULL && ba->data != NULL && ba->len > 0;
	const char *data = have ? (const char *)ba->data : "";
	size_t n = have ? ba->len : 0;
	bw_err e = BW_OK;
	if (html) {
		m->from_html = 1;
		if ((m->text = mail_html_text(data, n)) == NULL)
			e = BW_ERR_NOMEM;
	} else {
		struct mail_out o;
		mail_out_init(&o, MAIL_TEXT_MAX);
		e = mail_clean(&o, data, n, 0);
		if (e == BW_OK)
			e = mail_out_take(&o, &m->text, NULL);
		buf_free(&o.b);
	}
	g_object_unref(ms);
	return e;
}

/* --- headers --------------------------------------------------------------------------- */

/* A message id without its <> as GMime gives it: "<id>" when it is printable ASCII, else NULL. */
static bw_err
mail_msgid_dup(const char *id, char **out)
{
	*out = NULL;
	size_t n = id != NULL ? strlen(id) : 0;
	if (n == 0 || n + 2 >= MAIL_ID_MAX)
		return BW_OK;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f || id[i] == '<' ||
		    id[i] == '>')
			return BW_OK;
	if ((*out = malloc(n + 3)) == NULL)
		return BW_ERR_NOMEM;
	snprintf(*out, n + 3, "<%s>", id);
	return BW_OK;
}

/* In-Reply-To (its first id) and References (the last MAIL_IN_REFS_MAX of its ids). */
static bw_err
mail_threading(struct mail_in *m, GMimeObject *o)
{
	const char *irt = g_mime_object_get_header(o, "In-Reply-To");
	const char *refs = g_mime_object_get_header(o, "References");
	bw_err e = BW_OK;
	if (irt != NULL) {
		GMimeReferences *r = g_mime_references_parse(NULL, irt);
		int n = r != NULL ? g_mime_references_length(r) : 0;
		for (int i = 0; i < n && m->in_reply_to == NULL && e == BW_OK; i++)
			e = mail_msgid_dup(g_mime_references_get_message_id(r, i), &m->in_reply_to);
		if (r != NULL)
			g_mime_references_free(r);
	}
	if (refs != NULL && e == BW_OK) {
		GMimeReferences *r = g_mime_references_parse(NULL, refs);
		int n = r != NULL ? g_mime_references_length(r) : 0;
		int first = n > MAIL_IN_REFS_MAX ? n - MAIL_IN_REFS_MAX : 0;
		for (int i = first; i < n && e == BW_OK; i++) {
			char *id = NULL;
			e = mail_msgid_dup(g_mime_references_get_message_id(r, i), &id);
			if (id != NULL)
				m->references[m->nrefs++] = id;
		}
		if (r != NULL)
			g_mime_references_free(r);
	}
	return e;
}

/* The first word of a header value: up to a space, ';', ',' or comment. */
static size_t
mail_first_word(const char *v, const char **start)
{
	while (mail_is_space(*v))
		v++;
	*start = v;
	size_t n = 0;
	while (v[n] != '\0' && !mail_is_space(v[n]) && v[n] != ';' && v[n] != ',' && v[n] != '(')
		n++;
	return n;
}

/* Whether a comma or space separated list holds word (ASCII case folded). */
static int
mail_list_has(const char *v, const char *word)
{
	while (*v != '\0') {
		while (*v == ',' || mail_is_space(*v))
			v++;
		size_t n = 0;
		while (v[n] != '\0' && v[n] != ',' && !mail_is_space(v[n]))
			n++;
		if (n > 0 && mail_ascii_eq(v, n, word))
			return 1;
		v += n;
	}
	return 0;
}

/* Return-Path: <> with any white space: the null sender of a bounce. */
static int
mail_null_path(const char *v)
{
	char seen[3] = {0};
	size_t n = 0;
	for (; *v != '\0'; v++) {
		if (mail_is_space(*v))
			continue;
		if (n == 2)
			return 0;
		seen[n++] = *v;
	}
	return n == 2 && seen[0] == '<' && seen[1] == '>';
}

/* Why a message is not to be answered (see struct mail_in), from its header fields. */
struct mail_loop {
	int auto_submitted, precedence, auto_reply, bounce;
};

static void
mail_loop_header(struct mail_loop *l, const char *name, const char *value)
{
	const char *w;
	size_t n;
	if (g_ascii_strcasecmp(name, "Auto-Submitted") == 0) {
		n = mail_first_word(value, &w);
		if (!mail_ascii_eq(w, n, "no"))
			l->auto_submitted = 1;
	} else if (g_ascii_strcasecmp(name, "Precedence") == 0) {
		n = mail_first_word(value, &w);
		if (mail_ascii_eq(w, n, "bulk") || mail_ascii_eq(w, n, "junk") ||
		    mail_ascii_eq(w, n, "list"))
			l->precedence = 1;
	} else if (g_ascii_strcasecmp(name, "X-Autoreply") == 0 ||
		   g_ascii_strcasecmp(name, "X-Autorespond") == 0 ||
		   g_ascii_strcasecmp(name, "List-Id") == 0) {
		l->auto_reply = 1;
	} else if (g_ascii_strcasecmp(name, "X-Auto-Response-Suppress") == 0) {
		if (mail_list_has(value, "All") || mail_list_has(value, "OOF"))
			l->auto_reply = 1;
	} else if (g_ascii_strcasecmp(name, "Return-Path") == 0) {
		if (mail_null_path(value))
			l->bounce = 1;
	}
}

/*
 * The message's own header fields in order: Authentication-Results
 * (raw, then unfolded: never RFC 2047 decoded) and what says it is
 * automatic. GMime keeps the Content-* fields with the MIME part, not here.
 */
static bw_err
mail_header_fields(struct mail_in *m, GMimeObject *o, struct mail_loop *l)
{
	static const char *const once[] = {"From",	 "Sender",	"Subject",
					   "Message-ID", "In-Reply-To", "References"};
	int seen[BW_ARRAY_LEN(once)] = {0};
	GMimeHeaderList *hl = g_mime_object_get_header_list(o);
	int n = hl != NULL ? g_mime_header_list_get_count(hl) : 0;
	for (int i = 0; i < n; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = h != NULL ? g_mime_header_get_name(h) : NULL;
		if (name == NULL)
			continue;
		for (size_t k = 0; k < BW_ARRAY_LEN(once); k++)
			if (g_ascii_strcasecmp(name, once[k]) == 0 && ++seen[k] > 1)
				m->ambiguous = 1;
		if (g_ascii_strcasecmp(name, "Authentication-Results") == 0) {
			const char *raw = g_mime_header_get_raw_value(h);
			if (raw == NULL || m->nauth >= MAIL_IN_AUTH_MAX)
				continue;
			/* Never cut: cut, a value could read as another (header.d=example.com.x).
			 */
			bw_err e = mail_header_dup(raw, SIZE_MAX - 1, &m->auth_results[m->nauth]);
			if (e != BW_OK)
				return e;
			m->nauth++;
			continue;
		}
		const char *value = g_mime_header_get_value(h);
		if (value != NULL)
			mail_loop_header(l, name, value);
	}
	return BW_OK;
}

/* The first mailbox of an address list, looking into a group (one level: groups do not nest). */
static InternetAddressMailbox *
mail_first_mailbox(InternetAddressList *list, int in_group)
{
	int n = list != NULL ? internet_address_list_length(list) : 0;
	for (int i = 0; i < n; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a))
			return INTERNET_ADDRESS_MAILBOX(a);
		if (INTERNET_ADDRESS_IS_GROUP(a) && !in_group) {
			InternetAddressMailbox *mb = mail_first_mailbox(
			    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), 1);
			if (mb != NULL)
				return mb;
		}
	}
	return NULL;
}

/* The From address (and its name); BW_ERR_INVALID with why when there is none to be used. */
static bw_err
mail_from(struct mail_in *m, GMimeMessage *msg, struct mail_loop *l, const char **why)
{
	InternetAddressList *from = g_mime_message_get_from(msg);
	InternetAddressMailbox *mb = mail_first_mailbox(from, 0);
	/* More than one address (or a group): the one read may not be the one signed. */
	if (from != NULL && (internet_address_list_length(from) != 1 ||
			     !INTERNET_ADDRESS_IS_MAILBOX(internet_address_list_get_address(from, 0))))
		m->ambiguous = 1;
	const char *addr = mb != NULL ? internet_address_mailbox_get_addr(mb) : NULL;
	size_t n = addr != NULL ? strlen(addr) : 0;
	if (n == 0) {
		*why = "no sender";
		return BW_ERR_INVALID;
	}
	if (n > EMAIL_MAX) {
		*why = "sender address too long";
		return BW_ERR_INVALID;
	}
	if (!g_utf8_validate(addr, (gssize)n, NULL)) {
		*why = "sender address not UTF-8";
		return BW_ERR_INVALID;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)addr[i] <= 0x20 || addr[i] == 0x7f) {
			*why = "sender address with a space or control character";
			return BW_ERR_INVALID;
		}
	memcpy(m->from_addr, addr, n + 1);
	const char *at = strrchr(addr, '@');
	size_t local = at != NULL ? (size_t)(at - addr) : n;
	if (mail_ascii_eq(addr, local, "mailer-daemon") || mail_ascii_eq(addr, local, "postmaster"))
		l->bounce = 1;
	const char *name = internet_address_get_name(INTERNET_ADDRESS(mb));
	if (name != NULL && name[0] != '\0') {
		bw_err e = mail_header_dup(name, MAIL_HEADER_MAX, &m->from_name);
		if (e != BW_OK)
			return e;
		if (m->from_name[0] == '\0') {
			free(m->from_name);
			m->from_name = NULL;
		}
	}
	return BW_OK;
}

void
mail_in_free(struct mail_in *m)
{
	if (m == NULL)
		return;
	free(m->from_name);
	free(m->subject);
	free(m->message_id);
	free(m->in_reply_to);
	for (size_t i = 0; i < m->nrefs; i++)
		free(m->references[i]);
	for (size_t i = 0; i < m->nauth; i++)
		free(m->auth_results[i]);
	free(m->text);
	for (size_t i = 0; i < m->nparts; i++)
		mail_part_free(&m->parts[i]);
	free(m);
}

bw_err
mail_parse(const char *raw, size_t len, struct mail_in **out, const char **why)
{
	const char *reason = NULL;
	struct mail_loop loop = {0};
	struct mail_in *m = NULL;
	GMimeMessage *msg = NULL;
	GMimeObject *top, *body;
	bw_err e = BW_ERR_INVALID;
	*out = NULL;
	if (why != NULL)
		*why = NULL;
	if (raw == NULL || len == 0) {
		reason = "empty message";
		goto done;
	}
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(raw, len);
	GMimeParser *p = g_mime_parser_new_with_stream(s);
	msg = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(s);
	if (msg == NULL) {
		reason = "not a message";
		goto done;
	}
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	if (hl == NULL || g_mime_header_list_get_count(hl) == 0) {
		reason = "no header";
		goto done;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		e = BW_ERR_NOMEM;
		goto done;
	}
	if ((e = mail_from(m, msg, &loop, &reason)) != BW_OK)
		goto done;
	const char *subject = g_mime_message_get_subject(msg);
	if ((e = mail_header_dup(subject != NULL ? subject : "", MAIL_HEADER_MAX, &m->subject)) !=
		BW_OK ||
	    (e = mail_msgid_dup(g_mime_message_get_message_id(msg), &m->message_id)) != BW_OK ||
	    (e = mail_threading(m, GMIME_OBJECT(msg))) != BW_OK ||
	    (e = mail_header_fields(m, GMIME_OBJECT(msg), &loop)) != BW_OK)
		goto done;
	top = g_mime_message_get_mime_part(msg);
	if (top != NULL && mail_is_type(top, "multipart", "report"))
		loop.bounce = 1;
	if ((e = mail_body(m, top, &body)) != BW_OK ||
	    (top != NULL && (e = mail_collect(m, top, body, 0)) != BW_OK))
		goto done;
	/* One reason, the first that applies, in the order inbound.h lists them. */
	if (loop.auto_submitted)
		m->loop = "auto-submitted";
	else if (loop.precedence)
		m->loop = "precedence";
	else if (loop.auto_reply)
		m->loop = "auto-reply";
	else if (loop.bounce)
		m->loop = "bounce";
	*out = m;
	m = NULL;
done:
	if (msg != NULL)
		g_object_unref(msg);
	mail_in_free(m);
	if (e == BW_ERR_INVALID && why != NULL)
		*why = reason != NULL ? reason : "not a message";
	return e;
}

/* --- Authentication-Results (RFC 8601) ------------------------------------------------- */

/* A reader over one header value; bad once it is seen not to follow the grammar. */
struct mail_ar {
	const char *s;
	size_t i, n;
	int bad;
};

/* One value read: its first MAIL_AR_VALUE_MAX bytes, and whether there were more. */
struct mail_ar_value {
	char v[MAIL_AR_VALUE_MAX + 1];
	size_t n;
	int over;
	int set;
};

static int
mail_ar_end(const struct mail_ar *a)
{
	return a->bad || a->i >= a->n;
}

/* CFWS: white space and comments, which nest and may quote a character with '\'. */
static void
mail_ar_cfws(struct mail_ar *a)
{
	while (!mail_ar_end(a)) {
		char c = a->s[a->i];
		if (mail_is_space(c)) {
			a->i++;
			continue;
		}
		if (c != '(')
			return;
		size_t depth = 0;
		while (a->i < a->n) {
			c = a->s[a->i++];
			if (c == '\\' && a->i < a->n)
				a->i++;
			else if (c == '(')
				depth++;
			else if (c == ')' && --depth == 0)
				break;
		}
		if (depth > 0)
			a->bad = 1; /* a comment never closed */
	}
}

static void
mail_ar_keep(struct mail_ar_value *v, char c)
{
	if (v->n < MAIL_AR_VALUE_MAX)
		v->v[v->n++] = c;
	else
		v->over = 1;
	v->v[v->n] = '\0';
}

/*
 * A token, or (with quoted) a quoted-string, unquoted. A token stops at
 * white space, a comment, ';', '"' and, unless it is a property value
 * (pvalue: "@example.com", base64 with '='), at '='. A token that would
 * be empty sets bad.
 */
static void
mail_ar_value(struct mail_ar *a, struct mail_ar_value *v, int quoted, int pvalue)
{
	memset(v, 0, sizeof(*v));
	v->set = 1;
	if (mail_ar_end(a)) {
		a->bad = 1;
		return;
	}
	if (quoted && a->s[a->i] == '"') {
		a->i++;
		while (a->i < a->n && a->s[a->i] != '"') {
			if (a->s[a->i] == '\\' && a->i + 1 < a->n)
				a->i++;
			mail_ar_keep(v, a->s[a->i++]);
		}
		if (a->i >= a->n) {
			a->bad = 1; /* never closed */
			return;
		}
		a->i++;
		/* A property value may be a quoted local-part and its domain: "a b"@example.com. */
		if (!pvalue || a->i >= a->n || a->s[a->i] != '@')
			return;
	}
	while (a->i < a->n) {
		char c = a->s[a->i];
		if (mail_is_space(c) || c == '(' || c == ')' || c == ';' || c == '"' ||
		    (c == '=' && !pvalue))
			break;
		mail_ar_keep(v, c);
		a->i++;
	}
	if (v->n == 0)
		a->bad = 1;
}

static int
mail_ar_is(const struct mail_ar_value *v, const char *s)
{
	return v->set && !v->over && mail_ascii_eq(v->v, v->n, s);
}

/* Expect the character c (after CFWS); bad when it is not there. */
static void
mail_ar_expect(struct mail_ar *a, char c)
{
	mail_ar_cfws(a);
	if (mail_ar_end(a) || a->s[a->i] != c)
		a->bad = 1;
	else
		a->i++;
}

/* A property, taken when it is one of the three read and seen once (twice is not believed). */
static void
mail_ar_prop(struct mail_ar_value *slot, const struct mail_ar_value *v, int *dup)
{
	if (slot->set)
		*dup = 1;
	*slot = *v;
}

/*
 * One resinfo after its ';': methodspec [reasonspec] *propspec. Whether
 * it authenticates domain: dkim=pass with header.d, or header.i's domain,
 * equal to it; dmarc=pass with no header.from or one equal to it.
 */
static int
mail_ar_resinfo(struct mail_ar *a, const char *domain, int *dmarc_bad)
{
	struct mail_ar_value method, result, name, prop, v;
	struct mail_ar_value d = {0}, i = {0}, from = {0};
	int dup = 0;
	mail_ar_cfws(a);
	mail_ar_value(a, &method, 0, 0);
	if (a->bad)
		return 0;
	/* method-version: "dkim/1" read as one token, or with CFWS around the '/'. */
	char *slash = strchr(method.v, '/');
	if (slash != NULL) {
		*slash = '\0';
		method.n = (size_t)(slash - method.v);
	} else {
		mail_ar_cfws(a);
		if (!mail_ar_end(a) && a->s[a->i] == '/') {
			a->i++;
			mail_ar_cfws(a);
			mail_ar_value(a, &v, 0, 0);
		}
	}
	if (mail_ar_is(&method, "none")) {
		a->bad = 1; /* "none" stands alone: there is nothing to believe */
		return 0;
	}
	mail_ar_expect(a, '=');
	mail_ar_cfws(a);
	mail_ar_value(a, &result, 0, 0);
	for (;;) {
		mail_ar_cfws(a);
		if (mail_ar_end(a) || a->s[a->i] == ';')
			break;
		mail_ar_value(a, &name, 0, 0);
		mail_ar_cfws(a);
		if (!mail_ar_end(a) && a->s[a->i] == '.' && strchr(name.v, '.') == NULL) {
			/* ptype CFWS "." CFWS property */
			a->i++;
			mail_ar_cfws(a);
			mail_ar_value(a, &prop, 0, 0);
			mail_ar_keep(&name, '.');
			for (size_t k = 0; k < prop.n; k++)
				mail_ar_keep(&name, prop.v[k]);
			name.over |= prop.over;
		}
		mail_ar_expect(a, '=');
		mail_ar_cfws(a);
		mail_ar_value(a, &v, 1, 1);
		if (a->bad)
			return 0;
		/* reason=..., and properties not read (smtp.mailfrom, header.s, Microsoft's
		 * action=): skipped. */
		if (mail_ar_is(&name, "header.d"))
			mail_ar_prop(&d, &v, &dup);
		else if (mail_ar_is(&name, "header.i"))
			mail_ar_prop(&i, &v, &dup);
		else if (mail_ar_is(&name, "header.from"))
			mail_ar_prop(&from, &v, &dup);
	}
	if (mail_ar_is(&method, "dmarc") &&
	    (a->bad || dup || !mail_ar_is(&result, "pass") || !from.set || from.over ||
	     !mail_ar_is(&from, domain))) {
		*dmarc_bad = 1; /* DMARC did not pass for this From: no DKIM pass may stand */
		return 0;
	}
	if (a->bad || dup || !mail_ar_is(&result, "pass"))
		return 0;
	if (mail_ar_is(&method, "dmarc"))
		return 1;
	if (mail_ar_is(&method, "dkim")) {
		if (mail_ar_is(&d, domain))
			return 1;
		const char *at = i.set && !i.over ? strrchr(i.v, '@') : NULL;
		return at != NULL && mail_ascii_eq(at + 1, strlen(at + 1), domain);
	}
	return 0;
}

/*
 * See inbound.h. The whole header must follow RFC 8601's grammar, or
 * nothing in it is believed; a syntax error after a pass undoes the pass.
 */
int
mail_auth_verified(const struct mail_in *m, const char *authserv_id)
{
	if (m == NULL || authserv_id == NULL || authserv_id[0] == '\0' || m->nauth == 0 ||
	    m->auth_results[0] == NULL || m->ambiguous)
		return 0;
	/* A lower header naming the trusted server too: forgeries are not removed there. */
	for (size_t k = 1; k < m->nauth; k++) {
		struct mail_ar b = {.s = m->auth_results[k], .n = strlen(m->auth_results[k])};
		struct mail_ar_value bid;
		mail_ar_cfws(&b);
		mail_ar_value(&b, &bid, 1, 0);
		if (mail_ar_is(&bid, authserv_id))
			return 0;
	}
	const char *at = strrchr(m->from_addr, '@');
	if (at == NULL || at[1] == '\0')
		return 0;
	const char *domain = at + 1;
	struct mail_ar a = {.s = m->auth_results[0], .n = strlen(m->auth_results[0])};
	struct mail_ar_value id;
	mail_ar_cfws(&a);
	mail_ar_value(&a, &id, 1, 0);
	if (a.bad || !mail_ar_is(&id, authserv_id))
		return 0;
	/* authres-version: digits before the first ';'. */
	mail_ar_cfws(&a);
	if (!mail_ar_end(&a) && a.s[a.i] >= '0' && a.s[a.i] <= '9') {
		while (a.i < a.n && a.s[a.i] >= '0' && a.s[a.i] <= '9')
			a.i++;
	}
	int ok = 0, dmarc_bad = 0;
	for (;;) {
		mail_ar_cfws(&a);
		if (mail_ar_end(&a))
			break;
		if (a.s[a.i] != ';')
			return 0;
		a.i++;
		mail_ar_cfws(&a);
		if (mail_ar_end(&a))
			break; /* a ';' at the very end, as some servers write */
		if (mail_ar_resinfo(&a, domain, &dmarc_bad))
			ok = 1;
	}
	return a.bad || dmarc_bad ? 0 : ok;
}
