/*
 * Encrypted columns. The catalogue lists every column whose values are
 * sealed, so key rotation can find them all; the module engine and identity
 * add theirs here. A sealed value is bound to tenant, table, column and row
 * (see seal.c), so it cannot be copied anywhere else.
 */
#include "tenancy.h"

#include <stdlib.h>
#include <string.h>

#include "../crypto/crypto.h"

const struct field_column field_columns[] = {
	{"integrations", "secret"},
	{"users", "mfa_secret"},
	{"users", "mfa_pending"},
};
const size_t field_columns_count = BW_ARRAY_LEN(field_columns);

bw_err
field_seal(struct tenancy *t, const struct tenant *tn, const char *table, const char *column,
	   int64_t row_id, const void *value, size_t len, unsigned char **out, size_t *outlen)
{
	struct seal_place pl = {tn->slug, table, column, row_id};
	*out = NULL;
	if (len > SEAL_MAX_PLAINTEXT)
		return BW_ERR_TOO_LARGE;
	unsigned char *buf = malloc(seal_len(len));
	if (buf == NULL)
		return BW_ERR_NOMEM;
	bw_err e = keyring_seal(tenancy_keyring(t), tn->active_key_id, &pl, value, len, buf);
	if (e != BW_OK) {
		free(buf);
		return e;
	}
	*out = buf;
	*outlen = seal_len(len);
	return BW_OK;
}

bw_err
field_open(struct tenancy *t, const char *slug, const char *table, const char *column,
	   int64_t row_id, const unsigned char *sealed, size_t len, char **out, size_t *outlen)
{
	struct seal_place pl = {slug, table, column, row_id};
	*out = NULL;
	if (sealed == NULL || len < SEAL_OVERHEAD)
		return BW_ERR_CRYPTO;
	size_t n = len - SEAL_OVERHEAD;
	char *buf = malloc(n + 1);
	if (buf == NULL)
		return BW_ERR_NOMEM;
	bw_err e = keyring_open_sealed(tenancy_keyring(t), &pl, sealed, len, (unsigned char *)buf);
	if (e != BW_OK) {
		free(buf);
		return e;
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return BW_OK;
}
