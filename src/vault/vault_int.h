/*
 * Private to src/vault: the locked secret store the providers fill, and
 * the helpers they share. Nothing outside src/vault includes this.
 */
#ifndef BW_VAULT_INT_H
#define BW_VAULT_INT_H

#include "vault.h"

/*
 * One secret. val has two bytes beyond the maximum so that a file reader
 * can see one trailing newline plus one byte too many, and so tell "too
 * large" from "exactly the maximum, newline-terminated".
 */
struct vault_secret {
	char name[VAULT_NAME_MAX + 1];
	size_t len;
	unsigned char val[VAULT_SECRET_MAX + 2];
};

/* Lives in vault_secure_alloc() memory; s[n] is the next free slot. */
struct vault_store {
	size_t n;
	struct vault_secret s[VAULT_MAX_SECRETS];
};

/*
 * n bytes of zeroed anonymous memory, locked against swap and left out of
 * core dumps where the kernel allows (best effort); NULL on failure.
 */
void *vault_secure_alloc(size_t n);
/* Wipe, unlock and unmap what vault_secure_alloc() gave; accepts NULL. */
void vault_secure_free(void *p, size_t n);

/* 1 when s[0..n) is [A-Z0-9_]{1,64}. */
int vault_name_ok(const char *s, size_t n);

/*
 * Add a secret: name valid and new, room left, value 1..VAULT_SECRET_MAX
 * bytes. The value is copied into the store. On failure a reason naming
 * the secret (never its value) is in why.
 */
bw_err vault_store_add(struct vault_store *st, const char *name, size_t namelen, const void *val,
		       size_t len, char *why, size_t whylen) BW_MUST_USE;

/*
 * Read a whole secret file, at most max bytes after one trailing newline
 * is stripped; buf must hold max + 2 bytes. dirfd is AT_FDCWD or an open
 * directory; shown is the path to name in messages. Refuses a file that
 * group or others may access (BW_ERR_CONFIG), is longer than max
 * (BW_ERR_TOO_LARGE) or cannot be read (BW_ERR_CONFIG). A path that is not
 * a regular file gives BW_ERR_NOTFOUND with a reason, so that a caller may
 * skip it. On failure buf is wiped.
 */
bw_err vault_read_file(int dirfd, const char *path, const char *shown, unsigned char *buf,
		       size_t max, size_t *len, char *why, size_t whylen) BW_MUST_USE;

/* The Infisical provider (vault_infisical.c, the only file with curl). */
bw_err vault_infisical_load(const struct config *cfg, struct vault_store *st, char *why,
			    size_t whylen) BW_MUST_USE;

#endif
