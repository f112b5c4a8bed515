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

int
auth_cookie_find(const char *h, char secret[48])
{
	static const char name[] = AUTH_SESSION_COOKIE "=";
	const size_t nl = sizeof(name) - 1;
	while (h != NULL && *h) {
		while (*h == ' ' || *h == ';')
			h++;
		if (strncmp(h, name, nl) == 0) {
			const char *v = h + nl;
			size_t n = strcspn(v, "; ");
			if (n == 0 || n >= 48)
				return 0;
			for (size_t i = 0; i < n; i++) {
				char c = v[i];
				if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
				      c == '-' || c == '_'))
					return 0;
			}
			memcpy(secret, v, n);
			secret[n] = '\0';
			return 1;
		}
		h = strchr(h, ';');
	}
	return 0;
}
