/*
 * Tenant names and the Host header that names one. Kept apart from
 * tenant.c (provisioning: databases, keys, accounts) so that the Host
 * parser, which reads untrusted input on every request, builds on its own
 * for the fuzz target (tests/fuzz/fuzz_host.c).
 */
#include "tenancy.h"

#include <string.h>
#include <strings.h>

/* Names that would collide with infrastructure hosts or confuse users. */
static const char *const tenant_reserved[] = {
	"www",     "api",     "admin",  "control", "app",      "mail",    "smtp",   "imap",
	"pop",     "ftp",     "ns1",    "ns2",     "portal",   "static",  "assets", "cdn",
	"status",  "help",    "support", "docs",   "blog",     "billing", "login",  "auth",
	"sso",     "saml",    "webhooks", "root",  "system",   "saas",    "bulwark", "internal",
	"localhost", "metrics", "health", "mx",    "webmail",  "autodiscover", "dashboard",
};

bw_err
tenant_slug_check(const char *slug, const char **why)
{
	size_t n = slug ? strlen(slug) : 0;
	*why = NULL;
	if (n < 3 || n > TENANT_SLUG_MAX) {
		*why = "must be 3 to 32 characters";
		return BW_ERR_INVALID;
	}
	for (size_t i = 0; i < n; i++) {
		char c = slug[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && !(c == '-' && i > 0 && i < n - 1)) {
			*why = "may hold only a-z, 0-9 and inner '-'";
			return BW_ERR_INVALID;
		}
	}
	for (size_t i = 0; i < BW_ARRAY_LEN(tenant_reserved); i++) {
		if (strcmp(slug, tenant_reserved[i]) == 0) {
			*why = "is a reserved name";
			return BW_ERR_INVALID;
		}
	}
	return BW_OK;
}

bw_err
tenant_from_host(const char *host, const char *base, char slug[TENANT_SLUG_MAX + 1])
{
	if (host == NULL || base == NULL || base[0] == '\0')
		return BW_ERR_NOTFOUND;
	const char *dot = strchr(host, '.');
	if (dot == NULL || dot == host || (size_t)(dot - host) > TENANT_SLUG_MAX)
		return BW_ERR_NOTFOUND;
	size_t blen = strlen(base);
	const char *rest = dot + 1;
	if (strncasecmp(rest, base, blen) != 0)
		return BW_ERR_NOTFOUND;
	const char *tail = rest + blen;
	if (tail[0] == '.' && (tail[1] == '\0' || tail[1] == ':'))
		tail++; /* absolute form "demo.example.com." (a port may follow) */
	if (tail[0] == ':') {
		/* A port: digits only. */
		const char *d = tail + 1;
		if (*d == '\0' || strlen(d) > 5)
			return BW_ERR_NOTFOUND;
		for (; *d; d++)
			if (*d < '0' || *d > '9')
				return BW_ERR_NOTFOUND;
	} else if (tail[0] != '\0') {
		return BW_ERR_NOTFOUND;
	}
	size_t n = (size_t)(dot - host);
	for (size_t i = 0; i < n; i++) {
		char c = host[i];
		slug[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	slug[n] = '\0';
	const char *why;
	return tenant_slug_check(slug, &why) == BW_OK ? BW_OK : BW_ERR_NOTFOUND;
}
