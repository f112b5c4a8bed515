/*
 * The session cookie, written and read. Kept apart from session.c (which
 * needs the database and OpenSSL) so that the Cookie header parser, which
 * reads untrusted input on every request, builds on its own for the fuzz
 * target (tests/fuzz/fuzz_cookie.c).
 */
#include "auth.h"

#include <stdio.h>
#include <string.h>

void
auth_cookie(const struct config *cfg, const char *secret, char *out, size_t outlen)
{
	/* __Host-: Secure, Path=/, no Domain, so it is bound to this very host. */
	if (secret != NULL)
		snprintf(out, outlen, "%s=%s; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=%ld",
			 AUTH_SESSION_COOKIE, secret, cfg->auth_session_absolute_hours * 3600);
	else
		snprintf(out, outlen, "%s=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
			 AUTH_SESSION_COOKIE);
}

static int
auth_cookie_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int
auth_cookie_b64url(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/*
 * The header is "name=value" pairs split by ';' with optional white space
 * around each pair (RFC 6265 4.2.1). The first pair named exactly
 * AUTH_SESSION_COOKIE decides: its whole value, up to the ';' or the end
 * less trailing white space, must be a secret as auth_secret_new() makes
 * them, or there is none. A value is never cut short to make it fit ("S x"
 * is not the secret S), so what is looked up is what the client sent.
 */
int
auth_cookie_find(const char *h, char secret[48])
{
	static const char name[] = AUTH_SESSION_COOKIE "=";
	const size_t nl = sizeof(name) - 1;
	while (h != NULL && *h) {
		while (*h == ';' || auth_cookie_ows(*h))
			h++;
		if (strncmp(h, name, nl) == 0) {
			const char *v = h + nl, *t;
			size_t n = 0;
			while (n <= AUTH_SECRET_CHARS && auth_cookie_b64url(v[n]))
				n++;
			for (t = v + n; auth_cookie_ows(*t); t++)
				;
			if (n != AUTH_SECRET_CHARS || (*t != ';' && *t != '\0'))
				return 0;
			memcpy(secret, v, n);
			secret[n] = '\0';
			return 1;
		}
		h = strchr(h, ';');
	}
	return 0;
}
