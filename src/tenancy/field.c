/*
 * Encrypted columns. The catalogue lists every column whose values are
 * sealed, so key rotation can find them all; the module engine and identity
 * add theirs here. A sealed value is bound to tenant, table, column and row
 * (see seal.c), so it cannot be copied anywhere else.
 */
#include "tenancy.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/crypto.h"
#include "../modules/desc.h"

static const struct field_column field_system[] = {
	{"integrations", "secret"},
	{"users", "mfa_secret"},
	{"users", "mfa_pending"},
	{"audit_log", "details"},
	{"audit_head", "mac_key"},
	{"login_attempts_key", "mac_key"},
	{"idempotency_mac", "mac_key"},     /* src/server/idempotency.c */
	{"idempotency_keys", "response"},
};

static struct field_column *field_all;
static size_t field_all_n;
static pthread_once_t field_once = PTHREAD_ONCE_INIT;

/* The system columns, then every encrypted field of every module. */
static void
field_build(void)
{
	size_t n = BW_ARRAY_LEN(field_system);
	for (size_t i = 0; i < module_catalog_count; i++)
		for (size_t k = 0; k < module_catalog[i]->nfields; k++)
			n += (module_catalog[i]->fields[k].flags & FF_ENCRYPTED) != 0;
	field_all = calloc(n, sizeof(*field_all));
	if (field_all == NULL)
		abort(); /* at start-up, a few hundred bytes: nothing sensible to do */
	memcpy(field_all, field_system, sizeof(field_system));
	n = BW_ARRAY_LEN(field_system);
	for (size_t i = 0; i < module_catalog_count; i++)
		for (size_t k = 0; k < module_catalog[i]->nfields; k++)
			if (module_catalog[i]->fields[k].flags & FF_ENCRYPTED)
				field_all[n++] = (struct field_column){
				    module_catalog[i]->name, module_catalog[i]->fields[k].name};
	field_all_n = n;
}

const struct field_column *
field_columns(size_t *n)
{
	pthread_once(&field_once, field_build);
	*n = field_all_n;
	return field_all;
}

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
