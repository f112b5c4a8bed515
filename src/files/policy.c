/*
 * files/policy: steps 1 and 2 of an upload, its name and its extension.
 * The allowlist (with what libmagic 5.44 says of each type, measured on
 * real files) and the blocklist are the tables docs/files.md shows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uninorm.h>

#include "check.h"

/* --- the allowlist ------------------------------------------------------------ */

/*
 * mimes: what libmagic says of such a file given its first
 * FILES_SNIFF_BYTES (MAGIC_MIME_TYPE). Text types take text/plain too:
 * JSON cut at 256 KiB no longer parses, and a CSV or XML file without a
 * header line is just text. OLE2 files (doc, xls, ppt, msg) whose
 * directory lies past the first 256 KiB are only "application/x-ole-storage"
 * (or "application/CDFV2" when the directory is read but names no
 * application); an Office Open XML or ODF file whose parts are not in the
 * order libmagic looks for is only "application/zip" (it is walked as a
 * container either way).
 * claims: what clients also send as the type of such a file (Chrome on
 * Windows says application/x-zip-compressed, old IE image/pjpeg...).
 */
#define M(...) ((const char *const[]){__VA_ARGS__, NULL})
#define TEXT_MIMES "text/plain", "application/x-empty"
#define OLE_MIMES "application/CDFV2", "application/x-ole-storage"
#define ZIP_MIMES "application/zip"

static const struct files_type types[] = {
    {"pdf", "PDF document", FILES_KIND_DOCUMENT, M("application/pdf"),
     M("application/x-pdf")},
    {"txt", "Text", FILES_KIND_DOCUMENT, M(TEXT_MIMES, "text/csv", "application/json", "text/xml"),
     M("text/x-log")},
    {"log", "Log file", FILES_KIND_DOCUMENT,
     M(TEXT_MIMES, "text/csv", "application/json", "text/xml"), M("text/x-log")},
    {"csv", "Comma-separated values", FILES_KIND_DOCUMENT, M("text/csv", TEXT_MIMES),
     M("application/csv", "text/comma-separated-values", "application/vnd.ms-excel")},
    {"json", "JSON", FILES_KIND_DOCUMENT, M("application/json", TEXT_MIMES), M("text/json")},
    {"xml", "XML", FILES_KIND_DOCUMENT, M("text/xml", "application/xml", "text/plain"),
     M("application/x-xml")},
    {"md", "Markdown", FILES_KIND_DOCUMENT, M(TEXT_MIMES, "text/markdown"), M("text/x-markdown")},
    {"rtf", "Rich Text Format", FILES_KIND_DOCUMENT, M("text/rtf", "application/rtf"),
     M("application/x-rtf")},
    {"png", "PNG image", FILES_KIND_DOCUMENT, M("image/png"), M("image/x-png")},
    {"jpg", "JPEG image", FILES_KIND_DOCUMENT, M("image/jpeg"), M("image/pjpeg", "image/jpg")},
    {"jpeg", "JPEG image", FILES_KIND_DOCUMENT, M("image/jpeg"), M("image/pjpeg", "image/jpg")},
    {"gif", "GIF image", FILES_KIND_DOCUMENT, M("image/gif"), NULL},
    {"webp", "WebP image", FILES_KIND_DOCUMENT, M("image/webp"), NULL},
    {"bmp", "BMP image", FILES_KIND_DOCUMENT, M("image/bmp", "image/x-ms-bmp"),
     M("image/x-bmp")},
    {"tif", "TIFF image", FILES_KIND_DOCUMENT, M("image/tiff"), M("image/x-tiff")},
    {"tiff", "TIFF image", FILES_KIND_DOCUMENT, M("image/tiff"), M("image/x-tiff")},
    {"heic", "HEIC image", FILES_KIND_DOCUMENT, M("image/heic", "image/heif"),
     M("image/heic-sequence", "image/heif-sequence")},
    {"doc", "Word 97-2003 document", FILES_KIND_DOCUMENT, M("application/msword", OLE_MIMES),
     NULL},
    {"xls", "Excel 97-2003 workbook", FILES_KIND_DOCUMENT,
     M("application/vnd.ms-excel", OLE_MIMES), M("application/msexcel")},
    {"ppt", "PowerPoint 97-2003 presentation", FILES_KIND_DOCUMENT,
     M("application/vnd.ms-powerpoint", OLE_MIMES), M("application/mspowerpoint")},
    {"msg", "Outlook message", FILES_KIND_DOCUMENT, M("application/vnd.ms-outlook", OLE_MIMES),
     M("application/x-outlook-msg")},
    {"eml", "E-mail message", FILES_KIND_DOCUMENT, M("message/rfc822", "text/plain"), NULL},
    {"docx", "Word document", FILES_KIND_CONTAINER,
     M("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ZIP_MIMES),
     NULL},
    {"xlsx", "Excel workbook", FILES_KIND_CONTAINER,
     M("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ZIP_MIMES), NULL},
    {"pptx", "PowerPoint presentation", FILES_KIND_CONTAINER,
     M("application/vnd.openxmlformats-officedocument.presentationml.presentation", ZIP_MIMES),
     NULL},
    {"odt", "OpenDocument text", FILES_KIND_CONTAINER,
     M("application/vnd.oasis.opendocument.text", ZIP_MIMES), NULL},
    {"ods", "OpenDocument spreadsheet", FILES_KIND_CONTAINER,
     M("application/vnd.oasis.opendocument.spreadsheet", ZIP_MIMES), NULL},
    {"odp", "OpenDocument presentation", FILES_KIND_CONTAINER,
     M("application/vnd.oasis.opendocument.presentation", ZIP_MIMES), NULL},
    {"zip", "ZIP archive", FILES_KIND_ARCHIVE, M(ZIP_MIMES),
     M("application/x-zip-compressed", "application/x-zip", "multipart/x-zip")},
    {"7z", "7-Zip archive", FILES_KIND_ARCHIVE, M("application/x-7z-compressed"), NULL},
    {"tar", "tar archive", FILES_KIND_ARCHIVE, M("application/x-tar"), M("application/x-gtar")},
    {"tar.gz", "gzip-compressed tar archive", FILES_KIND_ARCHIVE, M("application/gzip"),
     M("application/x-gzip", "application/x-gtar", "application/x-compressed",
       "application/x-tar")},
    {"tgz", "gzip-compressed tar archive", FILES_KIND_ARCHIVE, M("application/gzip"),
     M("application/x-gzip", "application/x-gtar", "application/x-compressed",
       "application/x-tar")},
    {"tar.bz2", "bzip2-compressed tar archive", FILES_KIND_ARCHIVE, M("application/x-bzip2"),
     M("application/x-bzip", "application/x-gtar", "application/x-tar")},
    {"tar.xz", "xz-compressed tar archive", FILES_KIND_ARCHIVE, M("application/x-xz"),
     M("application/x-gtar", "application/x-tar")},
    {"gz", "gzip-compressed file", FILES_KIND_ARCHIVE, M("application/gzip"),
     M("application/x-gzip")},
    {"rar", "RAR archive", FILES_KIND_ARCHIVE, M("application/x-rar", "application/vnd.rar"),
     M("application/x-rar-compressed")},
};

/*
 * The blocklist: executables, installers, scripts, shortcuts, disk
 * images, macro-enabled Office files, and what a browser would run
 * (HTML, SVG). Refused wherever they appear among a name's extensions.
 */
static const char *const blocked[] = {
    /* Windows executables, libraries, drivers, installers */
    "exe", "dll", "scr", "com", "pif", "cpl", "ocx", "sys", "drv", "efi", "msi", "msp", "mst",
    "msix", "msixbundle", "appx", "appxbundle", "appinstaller", "application", "appref-ms",
    "xbap", "vsto", "gadget", "diagcab", "xll", "wll",
    /* Windows scripts, shortcuts, settings */
    "bat", "cmd", "ps1", "ps1xml", "ps2", "ps2xml", "psc1", "psc2", "psd1", "psm1", "pssc",
    "vb", "vbs", "vbe", "js", "jse", "mjs", "cjs", "wsf", "wsh", "wsc", "ws", "hta", "sct",
    "scf", "lnk", "url", "website", "reg", "inf", "ins", "isp", "job", "msc", "shb", "shs",
    "chm", "hlp", "settingcontent-ms", "library-ms", "search-ms", "iqy", "slk", "one",
    "onepkg", "jnlp",
    /* Unix and macOS executables, scripts, packages */
    "sh", "bash", "zsh", "csh", "ksh", "fish", "command", "tool", "desktop", "run",
    "elf", "so", "ko", "dylib", "app", "action", "workflow", "scpt", "applescript", "dmg",
    "pkg", "mpkg", "deb", "rpm", "apk", "xapk", "aab", "ipa", "snap", "flatpak", "appimage",
    /* disk images (mounted by a double click) */
    "iso", "img", "vhd", "vhdx", "vmdk",
    /* interpreters' sources and bytecode */
    "jar", "class", "war", "ear", "py", "pyc", "pyo", "pyw", "pyz", "pl", "pm", "rb", "lua",
    "tcl", "php", "php3", "php4", "php5", "php7", "phtml", "phar", "asp", "aspx", "jsp",
    "cgi", "wasm", "swf", "xpi", "crx",
    /* macro-enabled Office files */
    "docm", "dotm", "xlsm", "xltm", "xlam", "xla", "pptm", "potm", "ppam", "ppsm", "sldm",
    /* what a browser renders and runs */
    "html", "htm", "xhtml", "xht", "shtml", "mht", "mhtml", "htc", "svg", "svgz", "xsl",
    "xslt",
};

const struct files_type *
files_types(size_t *n)
{
	*n = BW_ARRAY_LEN(types);
	return types;
}

const char *const *
files_blocked(size_t *n)
{
	*n = BW_ARRAY_LEN(blocked);
	return blocked;
}

/* Compare n bytes of s to the NUL-terminated lower-case word w, ASCII case-insensitively. */
static int
word_eq(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

static int
blocked_n(const char *ext, size_t n)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(blocked); i++)
		if (word_eq(ext, n, blocked[i]))
			return 1;
	return 0;
}

int
files_ext_blocked(const char *ext)
{
	return ext != NULL && blocked_n(ext, strlen(ext));
}

static const struct files_type *
type_n(const char *ext, size_t n)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(types); i++)
		if (word_eq(ext, n, types[i].ext))
			return &types[i];
	return NULL;
}

/* --- the reason, in a buffer of the calling thread -------------------------------- */

static _Thread_local char why_buf[256];

/* pre, then n bytes of s as printable ASCII (the rest as '?', cut at 40), then post. */
static const char *
why_with(const char *pre, const char *s, size_t n, const char *post)
{
	char clean[48];
	size_t k = 0;
	for (size_t i = 0; i < n && k < 40; i++)
		clean[k++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	if (n > 40 && k == 40)
		memcpy(clean + 37, "...", 3);
	clean[k] = '\0';
	snprintf(why_buf, sizeof(why_buf), "%s%s%s", pre, clean, post);
	return why_buf;
}

/* --- UTF-8 and the characters a name may not hold ----------------------------------- */

/*
 * Decode one UTF-8 character of s[0..n) into *cp; its length, or 0 when
 * the bytes are not UTF-8 (overlong forms, surrogates, past U+10FFFF).
 */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0];
	size_t len;
	uint32_t min;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2, min = 0x80, c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, min = 0x800, c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/*
 * Why the character cp may not be in a name, or NULL. Bidi controls
 * reorder what a user sees ("invoice\u202Eexe.pdf" shows as
 * "invoicefdp.exe"); the invisible ones hide what a name is; line
 * separators and controls break logs and headers. ZWJ and ZWNJ stay:
 * Persian, the Indic scripts and emoji need them.
 */
static const char *
char_refused(uint32_t cp)
{
	if (cp == 0)
		return "the name holds a NUL byte";
	if (cp == '/' || cp == '\\')
		return "the name holds a path separator";
	if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
		return "the name holds a control character";
	if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
	    cp == 0x200f || cp == 0x061c)
		return "the name holds a bidirectional control character";
	if (cp == 0x200b || (cp >= 0x2060 && cp <= 0x2064) || cp == 0xfeff ||
	    (cp >= 0xfff9 && cp <= 0xfffb) || (cp >= 0xe0000 && cp <= 0xe007f) || cp == 0x180e)
		return "the name holds an invisible formatting character";
	if (cp == 0x2028 || cp == 0x2029)
		return "the name holds a line separator";
	if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe)
		return "the name holds a Unicode noncharacter";
	return NULL;
}

/* NULL when s[0..n) is UTF-8 without a refused character, else why not. */
static const char *
chars_check(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = utf8_next(u + i, n - i, &cp);
		if (l == 0)
			return "the name is not valid UTF-8";
		const char *w = char_refused(cp);
		if (w != NULL)
			return w;
		i += l;
	}
	return NULL;
}

/*
 * The extensions of one segment s[0..n) (already without trailing dots
 * and spaces): every dot-separated part after the first is checked
 * against the blocklist, each without the spaces around it (Windows
 * drops them: "a.exe .pdf"). *ext, *extn: the last part, or the last two
 * when they make a compound extension of the allowlist ("tar.gz").
 * NULL, or why the segment is refused.
 */
static const char *
exts_check(const char *s, size_t n, const char **ext, size_t *extn)
{
	const char *dot = memchr(s, '.', n);
	*ext = NULL, *extn = 0;
	if (dot == NULL)
		return NULL;
	const char *prev = NULL;
	const char *p = dot + 1, *end = s + n;
	for (;;) {
		const char *q = memchr(p, '.', (size_t)(end - p));
		const char *e = q ? q : end;
		const char *a = p, *b = e;
		while (a < b && *a == ' ')
			a++;
		while (b > a && b[-1] == ' ')
			b--;
		if (blocked_n(a, (size_t)(b - a)))
			return why_with("the extension .", a, (size_t)(b - a),
					" is blocked (executable or script)");
		if (q == NULL) {
			*ext = p, *extn = (size_t)(end - p);
			if (prev != NULL && type_n(prev, (size_t)(end - prev)) != NULL)
				*ext = prev, *extn = (size_t)(end - prev);
			return NULL;
		}
		prev = p;
		p = q + 1;
	}
}

/* --- names ---------------------------------------------------------------------- */

/* Bytes looked at before a name is refused as over-long, normalisation or not. */
#define NAME_IN_MAX (4 * FILES_NAME_MAX)

bw_err
files_name_check(const char *name, size_t len, char out[FILES_NAME_MAX + 1],
		 const struct files_type **type, int *normalised, const char **why)
{
	*type = NULL, *normalised = 0, *why = NULL;
	out[0] = '\0';
	if (len > NAME_IN_MAX) {
		*why = "the name is longer than 200 bytes";
		return BW_ERR_INVALID;
	}
	const char *w = chars_check(name, len);
	if (w != NULL) {
		*why = w;
		return BW_ERR_INVALID;
	}
	/* Windows drops trailing dots and spaces: "a.exe." is a.exe. */
	const char *s = name;
	size_t n = len;
	int trimmed = 0;
	while (n > 0 && s[0] == ' ')
		s++, n--, trimmed = 1;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '.'))
		n--, trimmed = 1;
	if (n == 0) {
		*why = len == 0 ? "the name is empty" : "the name is empty without its dots and spaces";
		return BW_ERR_INVALID;
	}
	/* NFC: one spelling for what looks the same; the checks run on it. */
	uint8_t nbuf[NAME_IN_MAX + 16];
	size_t nlen = sizeof(nbuf);
	uint8_t *nfc = u8_normalize(UNINORM_NFC, (const uint8_t *)s, n, nbuf, &nlen);
	if (nfc == NULL) {
		*why = "the name cannot be normalised";
		return BW_ERR_INVALID;
	}
	int changed = nlen != n || memcmp(nfc, s, n) != 0;
	bw_err e = BW_ERR_INVALID;
	if (nlen > FILES_NAME_MAX) {
		*why = "the name is longer than 200 bytes";
		goto done;
	}
	/* NFC of valid characters is valid, but say so rather than assume it. */
	w = chars_check((const char *)nfc, nlen);
	if (w != NULL) {
		*why = w;
		goto done;
	}
	memcpy(out, nfc, nlen);
	out[nlen] = '\0';
	if (strcmp(out, ".") == 0 || strcmp(out, "..") == 0) {
		*why = "the name is a directory reference";
		goto done;
	}
	const char *ext;
	size_t extn;
	e = BW_ERR_MEDIA_TYPE;
	w = exts_check(out, nlen, &ext, &extn);
	if (w != NULL) {
		*why = w;
		goto done;
	}
	if (ext == NULL) {
		*why = "the name has no extension: the type cannot be told";
		goto done;
	}
	*type = type_n(ext, extn);
	if (*type == NULL) {
		*why = why_with("the extension .", ext, extn, " is not one of the allowed types");
		goto done;
	}
	e = BW_OK;
	*normalised = trimmed || changed;
	if (trimmed && changed)
		*why = "leading or trailing spaces and trailing dots removed; Unicode NFC applied";
	else if (trimmed)
		*why = "leading or trailing spaces and trailing dots removed";
	else if (changed)
		*why = "Unicode NFC applied";
done:
	if (nfc != nbuf)
		free(nfc);
	if (e != BW_OK) {
		out[0] = '\0';
		*type = NULL;
	}
	return e;
}

bw_err
files_entry_check(const char *path, const struct files_type **type, const char **why)
{
	*type = NULL, *why = NULL;
	size_t len = strlen(path);
	if (len == 0) {
		*why = "the entry has no name";
		return BW_ERR_INVALID;
	}
	if (len > FILES_PATH_MAX) {
		*why = "the entry's path is longer than 1024 bytes";
		return BW_ERR_INVALID;
	}
	if (path[0] == '/' || path[0] == '\\') {
		*why = "the entry's path is absolute";
		return BW_ERR_INVALID;
	}
	if (len >= 2 && path[1] == ':' &&
	    ((path[0] >= 'a' && path[0] <= 'z') || (path[0] >= 'A' && path[0] <= 'Z'))) {
		*why = "the entry's path starts with a drive letter";
		return BW_ERR_INVALID;
	}
	/* A directory's trailing slash is not an empty segment. */
	size_t end = len;
	if (path[end - 1] == '/')
		end--;
	const char *ext = NULL;
	size_t extn = 0;
	for (size_t i = 0; i <= end;) {
		const char *seg = path + i;
		const char *sl = memchr(seg, '/', end - i);
		size_t n = sl ? (size_t)(sl - seg) : end - i;
		i = sl ? i + n + 1 : end + 1;
		if (n == 0) {
			*why = "the entry's path has an empty segment";
			return BW_ERR_INVALID;
		}
		if (word_eq(seg, n, ".") || word_eq(seg, n, "..")) {
			*why = "the entry's path climbs out of the archive (. or ..)";
			return BW_ERR_INVALID;
		}
		if (n > FILES_NAME_MAX) {
			*why = "a segment of the entry's path is longer than 200 bytes";
			return BW_ERR_INVALID;
		}
		const char *w = chars_check(seg, n);
		if (w != NULL) {
			*why = w;
			return BW_ERR_INVALID;
		}
		while (n > 0 && (seg[n - 1] == ' ' || seg[n - 1] == '.'))
			n--;
		if (n == 0) {
			*why = "a segment of the entry's path is only dots and spaces";
			return BW_ERR_INVALID;
		}
		w = exts_check(seg, n, &ext, &extn);
		if (w != NULL) {
			*why = w;
			return BW_ERR_MEDIA_TYPE;
		}
	}
	/* A directory has no type; a file's is its last segment's extension. */
	if (end == len && ext != NULL)
		*type = type_n(ext, extn);
	return BW_OK;
}
