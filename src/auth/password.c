/*
 * Passwords: argon2id through libsodium at OWASP's parameters (m=19 MiB,
 * t=2, p=1), PHC strings, rehash on login when the parameters change. A
 * counting semaphore bounds how many hashes run at once, so a login flood
 * cannot use more than max x 19 MiB.
 */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024u * 1024u)

struct auth_hasher {
	sem_t slots;
	long wait_ms;
	char dummy[crypto_pwhash_STRBYTES]; /* unknown users are checked against this */
};

bw_err
password_hasher_new(long max_concurrent, long wait_ms, struct auth_hasher **out)
{
	struct auth_hasher *h = calloc(1, sizeof(*h));
	unsigned char rnd[16];
	char pw[33];
	*out = NULL;
	if (h == NULL)
		return BW_ERR_NOMEM;
	if (sodium_init() < 0) {
		free(h);
		return BW_ERR_CRYPTO;
	}
	if (max_concurrent <= 0)
		max_concurrent = 2L * util_ncpu();
	sem_init(&h->slots, 0, (unsigned)max_concurrent);
	h->wait_ms = wait_ms;
	/* A hash of a random password nobody knows, with today's parameters. */
	if (util_random(rnd, sizeof(rnd)) != BW_OK ||
	    (util_hex(rnd, sizeof(rnd), pw), crypto_pwhash_str_alg(h->dummy, pw, strlen(pw), PW_OPSLIMIT,
								   PW_MEMLIMIT,
								   crypto_pwhash_ALG_ARGON2ID13)) != 0) {
		password_hasher_free(h);
		return BW_ERR_CRYPTO;
	}
	sodium_memzero(pw, sizeof(pw));
	*out = h;
	return BW_OK;
}

void
password_hasher_free(struct auth_hasher *h)
{
	if (h == NULL)
		return;
	sem_destroy(&h->slots);
	free(h);
}

static bw_err
pw_acquire(struct auth_hasher *h)
{
	struct timespec ts;
	util_deadline_ms(&ts, h->wait_ms);
	while (sem_timedwait(&h->slots, &ts) != 0) {
		if (errno == EINTR)
			continue;
		log_warn("password hashing: all slots busy for %ldms; refusing (login flood?)",
			 h->wait_ms);
		return BW_ERR_UNAVAILABLE;
	}
	return BW_OK;
}

bw_err
password_hash(struct auth_hasher *h, const char *password, char *out, size_t outlen)
{
	if (outlen < crypto_pwhash_STRBYTES)
		return BW_ERR_INVALID;
	bw_err e = pw_acquire(h);
	if (e != BW_OK)
		return e;
	int r = crypto_pwhash_str_alg(out, password, strlen(password), PW_OPSLIMIT, PW_MEMLIMIT,
				      crypto_pwhash_ALG_ARGON2ID13);
	sem_post(&h->slots);
	return r == 0 ? BW_OK : BW_ERR_NOMEM;
}

bw_err
password_verify(struct auth_hasher *h, const char *phc, const char *password, int *rehash)
{
	*rehash = 0;
	bw_err e = pw_acquire(h);
	if (e != BW_OK)
		return e;
	int r = crypto_pwhash_str_verify(phc, password, strlen(password));
	sem_post(&h->slots);
	if (r != 0)
		return BW_ERR_UNAUTHORIZED;
	*rehash = crypto_pwhash_str_needs_rehash(phc, PW_OPSLIMIT, PW_MEMLIMIT) != 0;
	return BW_OK;
}

bw_err
password_verify_dummy(struct auth_hasher *h, const char *password)
{
	int rehash;
	bw_err e = password_verify(h, h->dummy, password, &rehash);
	if (e == BW_OK)
		log_error("dummy password hash matched: impossible");
	return e == BW_ERR_UNAVAILABLE ? e : BW_ERR_UNAUTHORIZED;
}

/* The most common passwords of 12 characters or more (lower case). */
static const char *const pw_common[] = {
	"123456789012", "1234567890123", "12345678901234", "123456123456", "qwertyuiopas",
	"qwertyuiop123", "qwerty123456", "1q2w3e4r5t6y", "1qaz2wsx3edc", "password1234",
	"password123!", "passwordpassword", "iloveyou1234", "administrator", "admin1234567",
	"welcome12345", "letmein12345", "changeme1234", "000000000000", "111111111111",
	"aaaaaaaaaaaa", "abcdefghijkl", "abc123abc123", "trustno1trustno1", "football1234",
	"baseball1234", "princess1234", "sunshine1234", "superman1234", "qwertyqwerty",
	"asdfghjkl123", "zxcvbnm12345", "passw0rd1234", "p@ssw0rd1234", "p@ssword1234",
	"welcome2024!", "welcome2025!", "welcome2026!", "summer2024!!", "winter2024!!",
	"company12345", "master123456", "dragon123456", "monkey123456", "starwars1234",
	"correcthorsebatterystaple", "mypassword123", "secret123456", "password12345",
	"helloworld123",
};

bw_err
password_policy(const char *password, const char *email, const char **why)
{
	size_t n = strlen(password);
	char low[AUTH_PASSWORD_MAX + 1];
	*why = NULL;
	if (n < AUTH_PASSWORD_MIN) {
		*why = "must be at least 12 characters";
		return BW_ERR_INVALID;
	}
	if (n > AUTH_PASSWORD_MAX) {
		*why = "must be at most 1024 characters";
		return BW_ERR_INVALID;
	}
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)password[i]);
	for (size_t i = 0; i < BW_ARRAY_LEN(pw_common); i++) {
		if (strcmp(low, pw_common[i]) == 0) {
			*why = "is one of the most common passwords";
			sodium_memzero(low, sizeof(low));
			return BW_ERR_INVALID;
		}
	}
	/* One character repeated, or the e-mail address itself. */
	size_t same = 1;
	for (size_t i = 1; i < n; i++)
		same += password[i] == password[0];
	int is_email = email != NULL && strcasecmp(password, email) == 0;
	sodium_memzero(low, sizeof(low));
	if (same == n || is_email) {
		*why = same == n ? "is one character repeated" : "is the e-mail address";
		return BW_ERR_INVALID;
	}
	return BW_OK;
}
