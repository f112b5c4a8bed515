/*
 * vault: boot-time secrets from one configured provider (environment,
 * files, or Infisical), all loaded at open and held in memory that is
 * locked, kept out of core dumps and wiped on close. See docs/vault.md.
 */
#ifndef BW_VAULT_H
#define BW_VAULT_H

#include <stddef.h>

#include "../config/config.h"
#include "../core/core.h"

#define VAULT_MAX_SECRETS 64   /* secrets one vault holds */
#define VAULT_SECRET_MAX 8192  /* bytes of one secret value */
#define VAULT_NAME_MAX 64      /* characters of a name: [A-Z0-9_]{1,64} */

struct vault;

/*
 * Load every secret from the provider cfg names, now. On success *out owns
 * them and BW_OK is returned. On any failure nothing is kept (fail closed),
 * *out is NULL and err holds a reason naming the provider and what failed
 * (a file, variable, secret name, endpoint or HTTP status; never a value):
 * BW_ERR_CONFIG (settings, files, permissions), BW_ERR_INVALID (bad names
 * or a malformed answer), BW_ERR_TOO_LARGE / BW_ERR_NOMEM (a maximum
 * passed), BW_ERR_UNAUTHORIZED (credentials refused), BW_ERR_UNAVAILABLE
 * (network, TLS, timeout, other HTTP errors), BW_ERR_DENIED (a value the
 * identity may not read). Call it before starting threads: the env
 * provider removes variables from the environment.
 */
bw_err vault_open(const struct config *cfg, struct vault **out, char *err,
		  size_t errlen) BW_MUST_USE;

/*
 * Copy secret `name` into buf and its length into *len. BW_ERR_INVALID for
 * a name outside [A-Z0-9_]{1,64}, BW_ERR_NOTFOUND when the provider had no
 * such secret, BW_ERR_TOO_LARGE when cap is smaller than the value (*len is
 * then the size needed and buf is untouched).
 */
bw_err vault_get(struct vault *v, const char *name, unsigned char *buf, size_t cap,
		 size_t *len) BW_MUST_USE;

/* "env", "files" or "infisical". */
const char *vault_provider_name(const struct vault *v);

/* Wipe and free everything; accepts NULL. */
void vault_close(struct vault *v);

#endif
