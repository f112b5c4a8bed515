/*
 * Encrypted columns. The catalogue lists every column whose values are
 * sealed, so key rotation can find them all; the module engine and identity
 * add theirs here. A sealed value is bound to tenant, table, column and row
 * (see seal.c), so it cannot be copied anywhere else.
 */
#include "tenancy.h"

#include <pthread.h>
#include <stdio.h>
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
	{"files", "dek"}, /* src/files/store.c: each file's data key; its chunks stay as they are */
	{"events", "payload"},             /* src/events/outbox.c */
	{"webhook_subscriptions", "url"},  /* src/webhooks/subscriptions.c */
	{"webhook_subscriptions", "secret"},
	{"webhook_subscriptions", "prev_secret"},
	{"hook_endpoints", "secret"},      /* src/webhooks/inbound.c */
	{"hook_events", "body"},
	{"saml_config", "sp_key"},         /* src/saml/saml.c */
	{"saml_config", "idp_certs"},
	{"mail_settings", "smtp_password"}, /* src/notify/notify.c */
	{"mail_settings", "dkim_key"},
	{"mail_settings", "mac_key"},
	{"mail_outbox", "message"},
	{"mailbox_settings", "password"}, /* src/intake/intake.c */
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

bw_err
field_tenant_key(struct tenancy *t, const struct tenant *tn, db *d, const char *table,
		 unsigned char *key, size_t len)
{
	char sel[128], upd[160];
	if (snprintf(sel, sizeof(sel), "SELECT mac_key FROM %s WHERE id = 1", table) >=
		(int)sizeof(sel) ||
	    snprintf(upd, sizeof(upd), "UPDATE %s SET mac_key = ? WHERE id = 1 AND mac_key IS NULL",
		     table) >= (int)sizeof(upd))
		return BW_ERR_INTERNAL;
	for (int attempt = 0; attempt < 2; attempt++) {
		db_stmt *s = NULL;
		int row = 0, have = 0;
		char *pt = NULL;
		size_t ptlen = 0;
		bw_err e = db_prepare_cached(d, sel, &s);
		if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row && !db_col_null(s, 0)) {
			size_t n;
			const unsigned char *v = db_col_blob(s, 0, &n);
			have = 1;
			e = field_open(t, tn->slug, table, "mac_key", 1, v, n, &pt, &ptlen);
			if (e == BW_OK && ptlen != len)
				e = BW_ERR_CRYPTO;
			if (e == BW_OK)
				memcpy(key, pt, len);
		}
		db_done(s);
		if (pt != NULL) {
			crypto_wipe(pt, ptlen);
			free(pt);
		}
		if (e != BW_OK || have)
			return e;
		if (!row)
			return BW_ERR_DB; /* the key row is gone: fail closed */
		/* First use: a fresh key; if another request stores one first, use that. */
		unsigned char *sealed = NULL;
		size_t slen = 0;
		if ((e = util_random(key, len)) != BW_OK ||
		    (e = field_seal(t, tn, table, "mac_key", 1, key, len, &sealed, &slen)) != BW_OK) {
			crypto_wipe(key, len);
			return e;
		}
		e = db_prepare(d, upd, &s);
		if (e == BW_OK && (e = db_bind_blob(s, 1, sealed, slen)) == BW_OK)
			e = db_step(s, &row);
		int64_t stored = e == BW_OK ? db_changes(s) : 0;
		db_finalize(s);
		free(sealed);
		if (e == BW_OK && stored == 1)
			return BW_OK;
		crypto_wipe(key, len);
		if (e != BW_OK)
			return e;
	}
	return BW_ERR_CONFLICT;
}
