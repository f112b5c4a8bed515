/*
 * Tenants' data keys: a new active key (at provisioning and rotation) and
 * crypto-shredding (at deletion).
 */
#include "tenancy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../search/blind.h"

bw_err
keys_tenant_new(struct tenancy *t, const char *slug, int64_t run_id, uint32_t *id, char *err,
		size_t errlen)
{
	db *c = tenancy_control(t);
	bw_err e;
	if ((e = db_begin(c)) != BW_OK)
		goto fail;
	if ((e = keyring_dek_create(tenancy_keyring(t), c, slug, run_id, id)) != BW_OK)
		goto fail;
	if ((e = DB_RUN(c,
			"UPDATE data_keys SET state = 'retired', retired_at = ? WHERE tenant_slug"
			" = ? AND state = 'active'",
			DB_INT(time(NULL)), DB_TEXT(slug))) != BW_OK ||
	    (e = DB_RUN(c, "UPDATE data_keys SET state = 'active' WHERE id = ?", DB_INT(*id))) !=
		BW_OK ||
	    (e = DB_RUN(c, "UPDATE tenants SET active_key_id = ? WHERE slug = ?", DB_INT(*id),
			DB_TEXT(slug))) != BW_OK ||
	    (e = tenancy_bump_registry(t)) != BW_OK)
		goto fail;
	if ((e = db_commit(c)) != BW_OK)
		goto fail;
	return BW_OK;
fail:
	snprintf(err, errlen, "new data key for tenant %s: %s", slug, db_errmsg(c));
	(void)db_rollback(c);
	return e;
}

bw_err
keys_tenant_destroy(struct tenancy *t, const char *slug)
{
	/* The wrapped keys are the only way to the tenant's sealed values. */
	bw_err e = DB_RUN(tenancy_control(t), "DELETE FROM data_keys WHERE tenant_slug = ?",
			  DB_TEXT(slug));
	keyring_forget_tenant(tenancy_keyring(t), slug);
	return e;
}

/* --- rotation ---------------------------------------------------------------- */

#define KEYS_BATCH 256

static int64_t
keys_now(void)
{
	return (int64_t)time(NULL);
}

static bw_err
keys_history(db *c, const char *secret, const char *action, const char *actor, int64_t started,
	     int64_t finished, const char *outcome, const char *detail)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(c,
			      "INSERT INTO secret_rotation_history (secret, action, actor, started_at,"
			      " finished_at, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
			      &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, secret)) == BW_OK &&
	    (e = db_bind_text(s, 2, action)) == BW_OK && (e = db_bind_text(s, 3, actor)) == BW_OK &&
	    (e = db_bind_int(s, 4, started)) == BW_OK &&
	    (e = finished ? db_bind_int(s, 5, finished) : db_bind_null(s, 5)) == BW_OK &&
	    (e = db_bind_text(s, 6, outcome)) == BW_OK && (e = db_bind_text(s, 7, detail)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	return e;
}

/* One int from a query with one int parameter (0 when no row). */
static bw_err
keys_query_int(db *c, const char *sql, int64_t param, int64_t *out)
{
	db_stmt *s;
	int row = 0;
	*out = 0;
	bw_err e = db_prepare(c, sql, &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, param)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row && !db_col_null(s, 0))
		*out = db_col_int(s, 0);
	db_finalize(s);
	return e;
}

/*
 * One audit row in tenant tn's log for a rotation step (its own
 * transaction): actor system, entity "keys", the run as entity id.
 */
static bw_err
keys_audit(db *d, struct tenancy *t, const struct tenant *tn, const char *kind, const char *step,
	   const char *operator, int64_t run, uint32_t target, int64_t values)
{
	char label[48], action[48];
	snprintf(label, sizeof(label), "bulwark keys %s", kind);
	snprintf(action, sizeof(action), "%s_%s", kind, step);
	json_t *after = json_pack("{s:I, s:I, s:s}", "run", (json_int_t)run, "data_key",
				  (json_int_t)target, "operator", operator ? operator : "");
	if (after == NULL)
		return BW_ERR_NOMEM;
	if (values >= 0 && json_object_set_new(after, "values_reencrypted", json_integer(values)) != 0) {
		json_decref(after);
		return BW_ERR_NOMEM;
	}
	struct audit_entry e = {
	    .actor = AUDIT_SYSTEM,
	    .actor_label = label,
	    .client_ip = "",
	    .request_id = "",
	    .entity = "keys",
	    .entity_id = run,
	    .action = action,
	    .after = after,
	};
	bw_err r = db_begin(d);
	if (r == BW_OK && (r = audit_record(d, t, tn, &e)) == BW_OK)
		r = db_commit(d);
	if (r != BW_OK)
		(void)db_rollback(d);
	json_decref(after);
	return r;
}

/*
 * Re-encrypt every sealed value of tenant tn that is not under key target.
 * Each batch is one transaction and each row is replaced only if it still
 * holds what was read (an application write in between wins), so at every
 * moment every value is sealed under a key that exists.
 */
static bw_err
keys_reencrypt(struct tenancy *t, const struct tenant *tn, uint32_t target, const char *kind,
	       const char *actor, int64_t run, keys_progress_fn cb, void *ud, size_t ti,
	       size_t tcount, int64_t *fields, char *err, size_t errlen)
{
	struct keyring *kr = tenancy_keyring(t);
	db *d = NULL;
	char sql[256];
	int64_t total = 0, done = 0, before = *fields;
	size_t ncols;
	const struct field_column *cols = field_columns(&ncols);
	bw_err e = tenancy_connect_tenant(t, tn, 0, &d, err, errlen);
	if (e != BW_OK)
		return e;
	/* Sealed under target already, so this row needs no re-encryption. */
	if ((e = keys_audit(d, t, tn, kind, "started", actor, run, target, -1)) != BW_OK) {
		snprintf(err, errlen, "tenant %s: cannot write the audit row (%s): %s", tn->slug,
			 bw_strerror(e), db_errmsg(d));
		goto out;
	}
	for (size_t c = 0; c < ncols; c++) {
		int64_t n;
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE %s IS NOT NULL AND id > ?",
			 cols[c].table, cols[c].column);
		if ((e = keys_query_int(d, sql, 0, &n)) != BW_OK)
			goto out;
		total += n;
	}
	if (cb && total > 0)
		cb(ud, tn->slug, ti, tcount, 0, total);
	for (size_t c = 0; c < ncols; c++) {
		const char *table = cols[c].table, *col = cols[c].column;
		char sel[256], upd[256];
		int64_t last = 0;
		snprintf(sel, sizeof(sel),
			 "SELECT id, %s FROM %s WHERE id > ? AND %s IS NOT NULL ORDER BY id LIMIT %d", col,
			 table, col, KEYS_BATCH);
		snprintf(upd, sizeof(upd), "UPDATE %s SET %s = ? WHERE id = ? AND %s = ?", table, col,
			 col);
		for (;;) {
			db_stmt *s = NULL, *u = NULL;
			int row, got = 0;
			if ((e = db_begin(d)) != BW_OK)
				goto out;
			if ((e = db_prepare(d, sel, &s)) != BW_OK || (e = db_bind_int(s, 1, last)) != BW_OK ||
			    (e = db_prepare(d, upd, &u)) != BW_OK)
				goto batch_fail;
			while ((e = db_step(s, &row)) == BW_OK && row) {
				size_t len;
				int64_t id = db_col_int(s, 0);
				const unsigned char *v = db_col_blob(s, 1, &len);
				uint32_t kid;
				got++;
				last = id;
				done++;
				if (seal_key_id(v, len, &kid) != BW_OK) {
					snprintf(err, errlen, "tenant %s: %s.%s row %lld is not a sealed value",
						 tn->slug, table, col, (long long)id);
					e = BW_ERR_CRYPTO;
					goto batch_fail;
				}
				if (kid == target)
					continue;
				struct seal_place pl = {tn->slug, table, col, id};
				size_t n = len - SEAL_OVERHEAD;
				unsigned char *pt = malloc(n + 1), *nv = malloc(seal_len(n));
				if (pt == NULL || nv == NULL) {
					free(pt), free(nv);
					e = BW_ERR_NOMEM;
					goto batch_fail;
				}
				e = keyring_open_sealed(kr, &pl, v, len, pt);
				if (e == BW_OK)
					e = keyring_seal(kr, target, &pl, pt, n, nv);
				crypto_wipe(pt, n);
				if (e == BW_OK && (e = db_reset(u)) == BW_OK &&
				    (e = db_bind_blob(u, 1, nv, seal_len(n))) == BW_OK &&
				    (e = db_bind_int(u, 2, id)) == BW_OK && (e = db_bind_blob(u, 3, v, len)) == BW_OK)
					e = db_step(u, &row);
				if (e == BW_OK && db_changes(u) == 1)
					(*fields)++;
				free(pt), free(nv);
				if (e != BW_OK) {
					snprintf(err, errlen, "tenant %s: %s.%s row %lld: %s", tn->slug, table, col,
						 (long long)id,
						 e == BW_ERR_CRYPTO ? "does not open (tampered with?)" : db_errmsg(d));
					goto batch_fail;
				}
			}
			if (e != BW_OK)
				goto batch_fail;
			db_finalize(s);
			db_finalize(u);
			if ((e = db_commit(d)) != BW_OK)
				goto out;
			if (cb)
				cb(ud, tn->slug, ti, tcount, done, total);
			if (got < KEYS_BATCH)
				break;
			continue;
		batch_fail:
			db_finalize(s);
			db_finalize(u);
			(void)db_rollback(d);
			if (err[0] == '\0')
				snprintf(err, errlen, "tenant %s: %s", tn->slug, db_errmsg(d));
			goto out;
		}
	}
	/* The blind indexes follow the values: MACs under the target's own index key. */
	int64_t entries = 0;
	if ((e = blind_rekey(t, tn, d, target, &entries, err, errlen)) != BW_OK)
		goto out;
	if (entries > 0)
		log_info("tenant %s: %lld blind index entries now under data key %u", tn->slug,
			 (long long)entries, target);
	if ((e = keys_audit(d, t, tn, kind, "completed", actor, run, target, *fields - before)) !=
	    BW_OK)
		snprintf(err, errlen, "tenant %s: cannot write the audit row (%s): %s", tn->slug,
			 bw_strerror(e), db_errmsg(d));
out:
	db_close(d);
	return e;
}

/* The data key run made for tenant slug, or 0. */
static bw_err
keys_made_by(db *c, const char *slug, int64_t run, int64_t *id)
{
	db_stmt *s;
	int row = 0;
	*id = 0;
	bw_err e = db_prepare(c, "SELECT id FROM data_keys WHERE tenant_slug = ? AND run_id = ?", &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, slug)) == BW_OK && (e = db_bind_int(s, 2, run)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row)
		*id = db_col_int(s, 0);
	db_finalize(s);
	return e;
}

/* The running run of kind, or 0. */
static bw_err
keys_running(db *c, const char *kind, int64_t *id, int64_t *reverts)
{
	db_stmt *s;
	int row = 0;
	*id = *reverts = 0;
	bw_err e = db_prepare(c,
			      "SELECT id, reverts FROM key_rotation_runs WHERE state = 'running' AND kind"
			      " = ? ORDER BY id LIMIT 1",
			      &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, kind)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row) {
		*id = db_col_int(s, 0);
		*reverts = db_col_int(s, 1);
	}
	db_finalize(s);
	return e;
}

static bw_err
keys_run_start(db *c, const char *kind, const char *actor, int64_t reverts, int64_t *id)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(c,
			      "INSERT INTO key_rotation_runs (kind, state, reverts, actor, started_at,"
			      " fields_done) VALUES (?, 'running', ?, ?, ?, 0)",
			      &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, kind)) == BW_OK &&
	    (e = db_bind_int(s, 2, reverts)) == BW_OK && (e = db_bind_text(s, 3, actor)) == BW_OK &&
	    (e = db_bind_int(s, 4, keys_now())) == BW_OK)
		e = db_step(s, &row);
	*id = e == BW_OK ? db_last_id(s) : 0;
	db_finalize(s);
	return e;
}

static bw_err
keys_run_finish(db *c, int64_t id, int64_t fields)
{
	return DB_RUN(c,
		      "UPDATE key_rotation_runs SET state = 'done', finished_at = ?,"
		      " fields_done = fields_done + ? WHERE id = ?",
		      DB_INT(keys_now()), DB_INT(fields), DB_INT(id));
}

/* Data keys not under the newest master key get re-wrapped under it. */
static bw_err
keys_rewrap_all(struct tenancy *t, size_t *count)
{
	db *c = tenancy_control(t);
	db_stmt *s;
	int row;
	uint32_t ids[1024];
	size_t n;
	bw_err e;
	*count = 0;
	do {
		n = 0;
		e = db_prepare(c,
			       "SELECT id FROM data_keys WHERE wrapped IS NOT NULL AND master_id <> ?"
			       " ORDER BY id LIMIT 1024",
			       &s);
		if (e == BW_OK && (e = db_bind_int(s, 1, keyring_master_id(tenancy_keyring(t)))) == BW_OK)
			while ((e = db_step(s, &row)) == BW_OK && row)
				ids[n++] = (uint32_t)db_col_int(s, 0);
		db_finalize(s);
		for (size_t i = 0; e == BW_OK && i < n; i++)
			e = keyring_dek_rewrap(tenancy_keyring(t), c, ids[i]);
		*count += e == BW_OK ? n : 0;
	} while (e == BW_OK && n == 1024);
	if (e != BW_OK)
		return e;
	/* The tenants' database passwords likewise: same password, new wrapping. */
	struct tenant *v;
	size_t nt;
	char err[256];
	if ((e = tenant_list(t, &v, &nt, err, sizeof(err))) != BW_OK)
		return e;
	for (size_t i = 0; e == BW_OK && i < nt; i++) {
		if (v[i].db_secret_len == 0 || v[i].db_secret_master == keyring_master_id(tenancy_keyring(t)))
			continue;
		if ((e = tenancy_tenant_rewrap_password(t, &v[i])) != BW_OK)
			log_error("tenant %s: cannot re-wrap its database password", v[i].slug);
		else
			(*count)++;
	}
	if (e == BW_OK && nt > 0)
		e = tenancy_bump_registry(t);
	free(v);
	return e;
}

/* Tenants a rotation covers: active and suspended ones. */
static bw_err
keys_tenants(struct tenancy *t, struct tenant **v, size_t *n, char *err, size_t errlen)
{
	bw_err e = tenant_list(t, v, n, err, errlen);
	if (e != BW_OK)
		return e;
	size_t k = 0;
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].state == TENANT_ACTIVE || (*v)[i].state == TENANT_SUSPENDED)
			(*v)[k++] = (*v)[i];
	*n = k;
	return BW_OK;
}

bw_err
keys_rotate(struct tenancy *t, const char *actor, keys_progress_fn cb, void *ud,
	    struct keys_report *rep, char *err, size_t errlen)
{
	db *c = tenancy_control(t);
	struct tenant *v = NULL;
	size_t n = 0;
	int64_t run, unused, started = keys_now();
	char detail[256];
	bw_err e;

	memset(rep, 0, sizeof(*rep));
	err[0] = '\0';
	if ((e = keys_running(c, "rollback", &run, &unused)) != BW_OK)
		goto dberr;
	if (run != 0) {
		snprintf(err, errlen, "rollback run %lld is unfinished: run 'bulwark keys rollback' to "
				      "finish it first",
			 (long long)run);
		return BW_ERR_CONFLICT;
	}
	if ((e = keys_purge(t, keys_now(), actor, &rep->purged, err, errlen)) != BW_OK)
		return e;
	if ((e = keys_running(c, "rotate", &run, &unused)) != BW_OK)
		goto dberr;
	rep->resumed = run != 0;
	if (run == 0) {
		if ((e = keys_run_start(c, "rotate", actor, 0, &run)) != BW_OK)
			goto dberr;
		snprintf(detail, sizeof(detail), "run %lld started", (long long)run);
		if ((e = keys_history(c, "tenant data keys", "rotate", actor, started, 0, "started",
				      detail)) != BW_OK)
			goto dberr;
	}
	rep->run_id = run;
	if ((e = keys_rewrap_all(t, &rep->rewrapped)) != BW_OK)
		goto dberr;
	if ((e = keys_tenants(t, &v, &n, err, errlen)) != BW_OK)
		return e;
	for (size_t i = 0; i < n; i++) {
		int64_t have;
		uint32_t target;
		/* A key made by this run already (resuming)? Then it is the target. */
		if ((e = keys_made_by(c, v[i].slug, run, &have)) != BW_OK)
			goto dberr;
		if (have != 0) {
			target = (uint32_t)have;
		} else if ((e = keys_tenant_new(t, v[i].slug, run, &target, err, errlen)) != BW_OK) {
			goto out;
		}
		v[i].active_key_id = target;
		if ((e = keys_reencrypt(t, &v[i], target, "rotate", actor, run, cb, ud, i, n, &rep->fields, err,
					   errlen)) !=
		    BW_OK)
			goto out;
		rep->tenants++;
	}
	if ((e = keys_run_finish(c, run, rep->fields)) != BW_OK)
		goto dberr;
	snprintf(detail, sizeof(detail), "run %lld: %zu tenants, %lld values re-encrypted, %zu keys "
					 "re-wrapped%s",
		 (long long)run, rep->tenants, (long long)rep->fields, rep->rewrapped,
		 rep->resumed ? " (resumed)" : "");
	e = keys_history(c, "tenant data keys", "rotate", actor, started, keys_now(), "done", detail);
	if (e != BW_OK)
		goto dberr;
	goto out;
dberr:
	snprintf(err, errlen, "control database: %s", db_errmsg(c));
out:
	free(v);
	return e;
}

bw_err
keys_rollback(struct tenancy *t, const char *actor, keys_progress_fn cb, void *ud,
	      struct keys_report *rep, char *err, size_t errlen)
{
	db *c = tenancy_control(t);
	struct tenant *v = NULL;
	size_t n = 0;
	int64_t run, reverts = 0, started = keys_now(), when;
	char detail[256];
	bw_err e;

	memset(rep, 0, sizeof(*rep));
	err[0] = '\0';
	if ((e = keys_running(c, "rotate", &run, &reverts)) != BW_OK)
		goto dberr;
	if (run != 0) {
		snprintf(err, errlen, "rotation run %lld is unfinished: finish it with 'bulwark keys "
				      "rotate', then roll back",
			 (long long)run);
		return BW_ERR_CONFLICT;
	}
	if ((e = keys_running(c, "rollback", &run, &reverts)) != BW_OK)
		goto dberr;
	rep->resumed = run != 0;
	if (run == 0) {
		/* The last completed rotation, if it is recent enough. */
		if ((e = keys_query_int(c,
					"SELECT MAX(id) FROM key_rotation_runs WHERE kind = 'rotate' AND"
					" state = 'done' AND id > ?",
					0, &reverts)) != BW_OK)
			goto dberr;
		if (reverts != 0 && (e = keys_query_int(c,
							 "SELECT finished_at FROM key_rotation_runs WHERE"
							 " id = ?",
							 reverts, &when)) != BW_OK)
			goto dberr;
		if (reverts == 0 || when < keys_now() - KEYS_RETENTION_SECONDS) {
			snprintf(err, errlen, "nothing to roll back: no rotation finished in the last %d "
					      "days",
				 KEYS_RETENTION_SECONDS / 86400);
			return BW_ERR_NOTFOUND;
		}
		if ((e = keys_run_start(c, "rollback", actor, reverts, &run)) != BW_OK)
			goto dberr;
		snprintf(detail, sizeof(detail), "run %lld undoes rotation %lld", (long long)run,
			 (long long)reverts);
		if ((e = keys_history(c, "tenant data keys", "rollback", actor, started, 0, "started",
				      detail)) != BW_OK)
			goto dberr;
	}
	rep->run_id = run;
	if ((e = keys_tenants(t, &v, &n, err, errlen)) != BW_OK)
		return e;
	for (size_t i = 0; i < n; i++) {
		int64_t made, prev = 0;
		db_stmt *s;
		int row = 0;
		/* The key the rotation made, and the one it replaced. */
		if ((e = keys_made_by(c, v[i].slug, reverts, &made)) != BW_OK)
			goto dberr;
		if (made == 0)
			continue; /* created after that rotation: nothing to undo */
		e = db_prepare(c,
			       "SELECT MAX(id) FROM data_keys WHERE tenant_slug = ? AND id < ? AND"
			       " wrapped IS NOT NULL",
			       &s);
		if (e == BW_OK && (e = db_bind_text(s, 1, v[i].slug)) == BW_OK &&
		    (e = db_bind_int(s, 2, made)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row &&
		    !db_col_null(s, 0))
			prev = db_col_int(s, 0);
		db_finalize(s);
		if (e != BW_OK)
			goto dberr;
		if (prev == 0) {
			snprintf(err, errlen, "tenant %s: the key before rotation %lld is gone (purged)",
				 v[i].slug, (long long)reverts);
			e = BW_ERR_NOTFOUND;
			goto out;
		}
		if (v[i].active_key_id != (uint32_t)prev) {
			if ((e = db_begin(c)) != BW_OK ||
			    (e = DB_RUN(c,
					"UPDATE data_keys SET state = 'retired', retired_at = ?"
					" WHERE id = ?",
					DB_INT(keys_now()), DB_INT(made))) != BW_OK ||
			    (e = DB_RUN(c,
					"UPDATE data_keys SET state = 'active', retired_at = NULL"
					" WHERE id = ?",
					DB_INT(prev))) != BW_OK ||
			    (e = DB_RUN(c, "UPDATE tenants SET active_key_id = ? WHERE slug = ?",
					DB_INT(prev), DB_TEXT(v[i].slug))) != BW_OK ||
			    (e = tenancy_bump_registry(t)) != BW_OK || (e = db_commit(c)) != BW_OK) {
				(void)db_rollback(c);
				goto dberr;
			}
		}
		v[i].active_key_id = (uint32_t)prev;
		if ((e = keys_reencrypt(t, &v[i], (uint32_t)prev, "rollback", actor, run, cb, ud, i, n,
					&rep->fields, err, errlen)) != BW_OK)
			goto out;
		rep->tenants++;
	}
	if ((e = keys_run_finish(c, run, rep->fields)) != BW_OK ||
	    (e = DB_RUN(c, "UPDATE key_rotation_runs SET state = 'rolled_back' WHERE id = ?",
			DB_INT(reverts))) != BW_OK)
		goto dberr;
	snprintf(detail, sizeof(detail), "run %lld undid rotation %lld: %zu tenants, %lld values%s",
		 (long long)run, (long long)reverts, rep->tenants, (long long)rep->fields,
		 rep->resumed ? " (resumed)" : "");
	if ((e = keys_history(c, "tenant data keys", "rollback", actor, started, keys_now(), "done",
			      detail)) != BW_OK)
		goto dberr;
	goto out;
dberr:
	snprintf(err, errlen, "control database: %s", db_errmsg(c));
out:
	free(v);
	return e;
}

/* How many values of tenant tn are sealed with key id (-1: unreachable). */
static int64_t
keys_count_uses(struct tenancy *t, const struct tenant *tn, uint32_t id)
{
	db *d = NULL;
	char err[256], sql[256];
	int64_t count = 0;
	size_t ncols;
	const struct field_column *cols = field_columns(&ncols);
	if (tenancy_connect_tenant(t, tn, 0, &d, err, sizeof(err)) != BW_OK)
		return -1;
	for (size_t c = 0; c < ncols && count >= 0; c++) {
		db_stmt *s;
		int row;
		snprintf(sql, sizeof(sql), "SELECT %s FROM %s WHERE %s IS NOT NULL",
			 cols[c].column, cols[c].table, cols[c].column);
		if (db_prepare(d, sql, &s) != BW_OK) {
			count = -1;
			break;
		}
		bw_err e;
		while ((e = db_step(s, &row)) == BW_OK && row) {
			size_t len;
			uint32_t kid;
			const unsigned char *v = db_col_blob(s, 0, &len);
			if (seal_key_id(v, len, &kid) == BW_OK && kid == id)
				count++;
		}
		db_finalize(s);
		if (e != BW_OK) {
			count = -1; /* unknown is not zero: never purge on a failed read */
			break;
		}
	}
	/* Blind index entries made with it are uses too (their MACs need it). */
	if (count >= 0) {
		int64_t entries = blind_count_key(d, id);
		count = entries < 0 ? -1 : count + entries;
	}
	db_close(d);
	return count;
}

bw_err
keys_purge(struct tenancy *t, int64_t now, const char *actor, size_t *purged, char *err,
	   size_t errlen)
{
	db *c = tenancy_control(t);
	struct tenant *v = NULL;
	size_t n = 0;
	db_stmt *s;
	int row;
	struct {
		uint32_t id;
		char slug[TENANT_SLUG_MAX + 1];
	} due[256];
	size_t ndue = 0;
	bw_err e;
	*purged = 0;
	e = db_prepare(c,
		       "SELECT id, tenant_slug FROM data_keys WHERE state = 'retired' AND retired_at < ?"
		       " ORDER BY id LIMIT 256",
		       &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, now - KEYS_RETENTION_SECONDS)) == BW_OK)
		while ((e = db_step(s, &row)) == BW_OK && row) {
			due[ndue].id = (uint32_t)db_col_int(s, 0);
			snprintf(due[ndue].slug, sizeof(due[ndue].slug), "%s", db_col_text(s, 1));
			ndue++;
		}
	db_finalize(s);
	if (e != BW_OK) {
		snprintf(err, errlen, "control database: %s", db_errmsg(c));
		return e;
	}
	if (ndue == 0)
		return BW_OK;
	if ((e = tenant_list(t, &v, &n, err, errlen)) != BW_OK)
		return e;
	for (size_t i = 0; i < ndue; i++) {
		const struct tenant *tn = NULL;
		char detail[160], secret[96];
		for (size_t k = 0; k < n; k++)
			if (strcmp(v[k].slug, due[i].slug) == 0)
				tn = &v[k];
		int64_t uses = tn ? keys_count_uses(t, tn, due[i].id) : 0;
		snprintf(secret, sizeof(secret), "data key %u of tenant %s", due[i].id, due[i].slug);
		if (uses != 0) {
			/* Still needed (an unfinished rotation): keep it, say so. */
			log_warn("%s is past retention but still seals %lld value(s); not purged (run "
				 "'bulwark keys rotate')",
				 secret, (long long)uses);
			continue;
		}
		if ((e = DB_RUN(c,
				"UPDATE data_keys SET wrapped = NULL, state = 'purged', purged_at = ?"
				" WHERE id = ? AND state = 'retired'",
				DB_INT(now), DB_INT(due[i].id))) != BW_OK)
			break;
		snprintf(detail, sizeof(detail), "retired more than %d days ago",
			 KEYS_RETENTION_SECONDS / 86400);
		if ((e = keys_history(c, secret, "purge", actor, now, now, "done", detail)) != BW_OK)
			break;
		(*purged)++;
	}
	free(v);
	if (e != BW_OK)
		snprintf(err, errlen, "control database: %s", db_errmsg(c));
	return e;
}

bw_err
keys_status(struct tenancy *t, struct keys_status_row **rows, size_t *n, char *err, size_t errlen)
{
	db *c = tenancy_control(t);
	struct tenant *v = NULL;
	size_t nt = 0, cnt = 0;
	struct keys_status_row *r = NULL, x;
	struct buf b;
	db_stmt *s;
	int row;
	*rows = NULL;
	*n = 0;
	bw_err e = tenant_list(t, &v, &nt, err, errlen);
	if (e != BW_OK)
		return e;
	buf_init(&b, KEYS_STATUS_MAX * sizeof(x));
	e = db_prepare(c,
		       "SELECT id, tenant_slug, state, master_id, encryptions, created_at, retired_at,"
		       " purged_at FROM data_keys ORDER BY tenant_slug, id",
		       &s);
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		memset(&x, 0, sizeof(x));
		x.id = (uint32_t)db_col_int(s, 0);
		snprintf(x.slug, sizeof(x.slug), "%s", db_col_text(s, 1));
		snprintf(x.state, sizeof(x.state), "%s", db_col_text(s, 2));
		x.master_id = (uint32_t)db_col_int(s, 3);
		x.encryptions = db_col_int(s, 4);
		x.created_at = db_col_int(s, 5);
		x.retired_at = db_col_null(s, 6) ? 0 : db_col_int(s, 6);
		x.purged_at = db_col_null(s, 7) ? 0 : db_col_int(s, 7);
		if ((e = buf_append(&b, &x, sizeof(x))) != BW_OK)
			break;
		cnt++;
	}
	db_finalize(s);
	if (e == BW_OK && cnt > 0) {
		char *p;
		if ((e = buf_take(&b, &p, NULL)) == BW_OK)
			r = (struct keys_status_row *)(void *)p;
	}
	if (e != BW_OK) {
		if (cnt == KEYS_STATUS_MAX)
			snprintf(err, errlen, "control database: more than %d data keys", KEYS_STATUS_MAX);
		else
			snprintf(err, errlen, "control database: %s", db_errmsg(c));
		buf_free(&b);
		free(v);
		return e;
	}
	for (size_t i = 0; i < cnt; i++) {
		const struct tenant *tn = NULL;
		for (size_t k = 0; k < nt; k++)
			if (strcmp(v[k].slug, r[i].slug) == 0)
				tn = &v[k];
		r[i].fields = tn && strcmp(r[i].state, "purged") != 0 ? keys_count_uses(t, tn, r[i].id) : 0;
	}
	free(v);
	*rows = r;
	*n = cnt;
	return BW_OK;
}
