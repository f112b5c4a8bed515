/*
 * files/sniff: step 3, the type the bytes say (libmagic) against the one
 * the extension and the client say, and which types are executables.
 */
#include <magic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "check.h"

/*
 * One cookie per thread (a magic_t is not safe to share), freed by the
 * key's destructor when the thread ends. Flags: MAGIC_NO_CHECK_COMPRESS
 * so that libmagic never decompresses what it is given (no bomb, and no
 * fork of an external decompressor: libarchive opens compressed files,
 * within limits); MAGIC_NO_COMPRESS_FORK too where it exists, for the
 * same reason should the first flag change; MAGIC_ERROR so that a
 * failure is a NULL we refuse on, not a description. CDF (OLE2), tar,
 * JSON, CSV and the text encodings stay on: the allowlist tells doc from
 * xls and JSON from text by them.
 */
#ifndef MAGIC_NO_COMPRESS_FORK
#define MAGIC_NO_COMPRESS_FORK 0
#endif
#define SNIFF_FLAGS (MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS | MAGIC_NO_COMPRESS_FORK | MAGIC_ERROR)

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t cookie_key;
static int key_ok;

static void
cookie_free(void *p)
{
	magic_close(p);
}

static void
key_make(void)
{
	key_ok = pthread_key_create(&cookie_key, cookie_free) == 0;
}

/*
 * The calling thread's cookie, opened on first use; NULL when libmagic
 * cannot be loaded. The main thread's cookie is also held in a
 * thread-local pointer: destructors do not run when main returns, and
 * LeakSanitizer sees what static TLS points to.
 */
static _Thread_local magic_t tls_cookie;

static magic_t
cookie(void)
{
	if (tls_cookie != NULL)
		return tls_cookie;
	if (pthread_once(&key_once, key_make) != 0 || !key_ok)
		return NULL;
	magic_t m = magic_open(SNIFF_FLAGS);
	if (m == NULL)
		return NULL;
	if (magic_load(m, NULL) != 0 || pthread_setspecific(cookie_key, m) != 0) {
		magic_close(m);
		return NULL;
	}
	tls_cookie = m;
	return m;
}

bw_err
files_sniff(const void *buf, size_t n, char mime[FILES_MIME_MAX + 1])
{
	mime[0] = '\0';
	magic_t m = cookie();
	if (m == NULL)
		return BW_ERR_INTERNAL;
	const char *r = magic_buffer(m, buf, n);
	if (r == NULL)
		return BW_ERR_INTERNAL;
	/* MAGIC_MIME_TYPE has no parameters; cut at one anyway. */
	size_t len = strcspn(r, "; \t");
	if (len == 0 || len > FILES_MIME_MAX)
		return BW_ERR_INTERNAL;
	memcpy(mime, r, len);
	mime[len] = '\0';
	return BW_OK;
}

/* 1 if mime (len bytes) is in the NULL-ended list l (MIME types are case-insensitive). */
static int
in_list(const char *const *l, const char *mime, size_t len)
{
	for (; l != NULL && *l != NULL; l++)
		if (strlen(*l) == len && strncasecmp(*l, mime, len) == 0)
			return 1;
	return 0;
}

static _Thread_local char why_buf[320];

/* Printable ASCII of s, cut, for a reason shown to a client. */
static void
clean(char *out, size_t outlen, const char *s)
{
	size_t k = 0;
	for (; s[k] != '\0' && k + 1 < outlen; k++)
		out[k] = (s[k] >= 0x20 && s[k] < 0x7f && s[k] != '"') ? s[k] : '?';
	out[k] = '\0';
}

bw_err
files_type_agrees(const struct files_type *t, const char *claimed, const char *detected,
		  const char **why)
{
	char d[FILES_MIME_MAX + 1], c[FILES_MIME_MAX + 1];
	*why = NULL;
	clean(d, sizeof(d), detected != NULL ? detected : "");
	if (detected == NULL || !in_list(t->mimes, detected, strlen(detected))) {
		snprintf(why_buf, sizeof(why_buf), "the bytes are %s, not a %s (.%s)",
			 d[0] ? d : "of no known type", t->label, t->ext);
		*why = why_buf;
		return BW_ERR_UNPROCESSABLE;
	}
	if (claimed == NULL)
		return BW_OK;
	/* "Text/Plain; charset=utf-8" claims text/plain. */
	while (*claimed == ' ' || *claimed == '\t')
		claimed++;
	size_t len = strcspn(claimed, "; \t");
	if (len == 0 || (len == 24 && strncasecmp(claimed, "application/octet-stream", 24) == 0))
		return BW_OK;
	if (in_list(t->mimes, claimed, len) || in_list(t->claims, claimed, len))
		return BW_OK;
	clean(c, len + 1 < sizeof(c) ? len + 1 : sizeof(c), claimed);
	snprintf(why_buf, sizeof(why_buf), "the claimed type %s is not a %s (.%s); the bytes are %s",
		 c, t->label, t->ext, d);
	*why = why_buf;
	return BW_ERR_UNPROCESSABLE;
}

/*
 * What libmagic 5.44 calls programs, scripts, installers and shortcuts
 * (PE is application/vnd.microsoft.portable-executable there, a PIE
 * given as a buffer application/x-sharedlib; a .class file
 * application/x-java-applet). Prefixes below catch the families.
 */
static const char *const executables[] = {
    "application/x-dosexec", "application/vnd.microsoft.portable-executable",
    "application/x-msdownload", "application/x-ms-ne-executable",
    "application/x-lx-executable", "application/x-ms-w3-executable",
    "application/x-ms-w4-executable", "application/x-dosdriver", "sys/dos",
    "application/x-executable", "application/x-sharedlib", "application/x-pie-executable",
    "application/x-elf", "application/x-object", "application/x-coredump",
    "application/x-mach-binary", "application/x-mach-o", "application/x-mach-o-executable",
    "application/x-msi", "application/vnd.ms-msi", "application/x-ms-installer",
    "application/x-installshield", "application/x-setupscript", "application/x-ms-shortcut",
    "application/java-archive", "application/x-java-archive", "application/x-java-applet",
    "application/x-java-jmod", "application/x-java-pack200", "application/x-java-jnlp-file",
    "application/vnd.android.package-archive", "application/vnd.debian.binary-package",
    "application/x-debian-package", "application/x-rpm", "application/x-redhat-package-manager",
    "application/x-xar", "application/x-apple-diskimage", "application/x-iso9660-image",
    "application/x-svr4-package", "application/vnd.symbian.install",
    "application/x-chrome-extension", "application/x-xpinstall", "application/x-shockwave-flash",
    "application/wasm", "application/x-bytecode.python", "application/javascript",
    "application/x-javascript", "application/ecmascript", "application/x-sh",
    "application/x-csh", "application/x-shellscript", "application/x-bat",
    "application/x-httpd-php", "application/x-perl", "application/x-python",
    "application/x-ruby", "application/hta", "application/xhtml+xml", "application/x-ms-application",
    "image/svg+xml", "text/html", "text/javascript", "text/ecmascript", "text/x-shellscript",
    "text/x-msdos-batch", "text/x-ms-regedit", "text/x-wine-extension-reg", "text/x-ms-scf",
    "text/x-php", "text/x-perl", "text/x-script.python", "text/x-python", "text/x-ruby",
    "text/x-lua", "text/x-luatex", "text/x-tcl", "text/x-awk", "text/x-gawk", "text/x-nawk",
    "text/x-execline", "text/x-systemtap", "text/x-vbscript", "text/vbscript",
    "text/x-powershell", NULL,
};

int
files_mime_executable(const char *mime)
{
	if (mime == NULL)
		return 0;
	size_t len = strcspn(mime, "; \t");
	if (in_list(executables, mime, len))
		return 1;
	/* Families libmagic may spell otherwise in a later database. */
	static const char *const prefixes[] = {"application/x-ms-dos", "application/x-mach",
					       "text/x-script.", "application/x-executable"};
	for (size_t i = 0; i < BW_ARRAY_LEN(prefixes); i++)
		if (strncasecmp(mime, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

int
files_mime_allowed(const char *mime)
{
	if (mime == NULL || files_mime_executable(mime))
		return 0;
	size_t len = strcspn(mime, "; \t");
	size_t n;
	const struct files_type *t = files_types(&n);
	for (size_t i = 0; i < n; i++)
		if (in_list(t[i].mimes, mime, len))
			return 1;
	return 0;
}
