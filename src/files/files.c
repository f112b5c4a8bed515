/*
 * Attachments: the upload with its checks in order (check.h, docs/files.md),
 * and the reads and deletes of stored files. Every refusal is recorded with
 * "check" naming the step that refused, and leaves nothing behind: the
 * pending row and its chunks are discarded, the quota reservation dropped.
 */
#include "files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../modules/module.h"

struct file_upload {
	struct op *op;
	const struct module_desc *m;
	int64_t row_id;
	uint64_t declared, max;
	int64_t reservation;
	struct clamd *clamd;
	struct file_writer *w;
	const struct files_type *type;
	char name[FILES_NAME_MAX + 1];
	int normalised;
	char claimed[FILES_MIME_MAX + 1]; /* "" when none */
	unsigned char *head;              /* the first FILES_SNIFF_BYTES, for libmagic */
	size_t head_len;
	int sniffed;
	char mime[FILES_MIME_MAX + 1];
	uint64_t size;
	int finished;
};

/* A refusal at step check, with more members (detail: an object, stolen, or NULL). */
static bw_err
files_refuse(struct op *op, bw_err e, const char *check, const char *msg, json_t *detail)
{
	if (detail == NULL)
		detail = json_object();
	if (detail != NULL)
		json_object_set_new(detail, "check", json_string(check));
	/* Reasons come from stack and thread buffers: the sink keeps them in the pool. */
	const char *kept = msg != NULL ? pool_strdup(op->pool, msg) : NULL;
	return op_fail_detail(op, e, kept != NULL ? kept : msg == NULL ? NULL : "refused", detail);
}

bw_err
file_row_exists(struct op *op, const struct module_desc *m, int64_t row_id)
{
	db *d;
	int64_t n = 0;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	char *sql = pool_printf(op->pool, "SELECT COUNT(*) FROM %s WHERE id = ?", m->name);
	if (sql == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	if ((e = DB_QUERY_INT(d, &n, sql, DB_INT(row_id))) != BW_OK)
		return op_unavailable(op);
	return n > 0 ? BW_OK : op_fail(op, BW_ERR_NOTFOUND, "no such record");
}

/* Uploads a crash cut off: their rows, chunks and reservations go (a few at a time). */
static void
files_sweep(struct op *op)
{
	int64_t res[16];
	size_t n = 0;
	if (file_store_sweep(op, FILES_PENDING_MAX_AGE, BW_ARRAY_LEN(res), res, &n) != BW_OK) {
		op_clear(op);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (quota_release(op->ten, op->tn.slug, res[i]) != BW_OK)
			break;
	if (n > 0)
		log_info("tenant %s: %zu pending upload(s) older than a day removed", op->tn.slug, n);
}

static void
files_usage_detail(json_t *o, const struct quota_usage *u)
{
	json_object_set_new(o, "plan", json_string(u->plan));
	json_object_set_new(o, "limit", json_integer(u->limit));
	json_object_set_new(o, "used", json_integer(u->used));
	json_object_set_new(o, "reserved", json_integer(u->reserved));
}

bw_err
file_upload_start(struct op *op, const struct module_desc *m, int64_t row_id, uint64_t declared,
		  struct file_upload **out)
{
	const struct config *cfg = op->cfg;
	char why[256] = "";
	bw_err e;
	*out = NULL;
	if (!m->attachments)
		return op_fail(op, BW_ERR_NOTFOUND, "this kind of record takes no attachments");
	if ((e = file_row_exists(op, m, row_id)) != BW_OK)
		return e;
	op_db_release(op);
	if (declared > (uint64_t)cfg->files_max_bytes + 65536)
		return files_refuse(op, BW_ERR_TOO_LARGE, "size",
				    pool_printf(op->pool, "a file may have at most %ld bytes",
						cfg->files_max_bytes),
				    json_pack("{s:I}", "limit", (json_int_t)cfg->files_max_bytes));
	files_sweep(op);
	struct file_upload *u = calloc(1, sizeof(*u));
	if (u == NULL || (u->head = malloc(FILES_SNIFF_BYTES)) == NULL) {
		file_upload_free(u);
		return op_fail(op, BW_ERR_NOMEM, NULL);
	}
	u->op = op;
	u->m = m;
	u->row_id = row_id;
	u->declared = declared;
	u->max = (uint64_t)cfg->files_max_bytes;
	u->finished = 0;
	struct quota_usage q;
	e = quota_reserve(op->ten, op->tn.slug, (int64_t)declared, &u->reservation, &q);
	if (e == BW_ERR_QUOTA) {
		json_t *d = json_object();
		if (d != NULL)
			files_usage_detail(d, &q);
		e = files_refuse(op, BW_ERR_QUOTA, "quota",
				 pool_printf(op->pool,
					     "the %s plan's storage limit of %lld bytes is reached "
					     "(%lld used, %lld reserved by uploads under way): this "
					     "upload of up to %llu bytes does not fit",
					     q.plan, (long long)q.limit, (long long)q.used,
					     (long long)q.reserved, (unsigned long long)declared),
				 d);
	} else if (e != BW_OK) {
		e = files_refuse(op, BW_ERR_UNAVAILABLE, "quota",
				 "storage quotas cannot be checked right now; try again shortly", NULL);
	} else if ((e = clamd_begin(cfg->files_clamd_socket, cfg->files_clamd_timeout * 1000,
				    &u->clamd, why, sizeof(why))) != BW_OK) {
		log_warn("tenant %s: upload refused: virus scanner: %s", op->tn.slug, why);
		e = files_refuse(op, BW_ERR_UNAVAILABLE, "antivirus",
				 "the virus scanner is unavailable, so no file can be accepted now; "
				 "try again shortly",
				 NULL);
	}
	if (e != BW_OK) {
		file_upload_free(u);
		return e;
	}
	*out = u;
	return BW_OK;
}

bw_err
file_upload_name(struct file_upload *u, const char *name, size_t len, const char *claimed)
{
	struct op *op = u->op;
	const char *why = NULL;
	bw_err e = files_name_check(name, len, u->name, &u->type, &u->normalised, &why);
	if (e != BW_OK) {
		/* An extension blocked or not allowed is the type's refusal (415); the rest the name's. */
		int type = e == BW_ERR_MEDIA_TYPE;
		return files_refuse(op, type ? BW_ERR_MEDIA_TYPE : BW_ERR_INVALID, type ? "type" : "name",
				    why ? why : "this file name is refused", NULL);
	}
	if (claimed != NULL) {
		size_t n = strcspn(claimed, "; \t");
		if (n > FILES_MIME_MAX)
			n = FILES_MIME_MAX;
		memcpy(u->claimed, claimed, n);
		u->claimed[n] = '\0';
		for (char *c = u->claimed; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
	}
	return file_store_begin(op, u->m->name, u->row_id, u->name, u->reservation, &u->w);
}

/* Step 3 on the head of the file: libmagic's type against the extension and the claim. */
static bw_err
files_magic(struct file_upload *u)
{
	const char *why = NULL;
	u->sniffed = 1;
	if (files_sniff(u->head, u->head_len, u->mime) != BW_OK)
		return files_refuse(u->op, BW_ERR_UNAVAILABLE, "magic",
				    "the file's type cannot be determined right now; try again", NULL);
	if (files_type_agrees(u->type, u->claimed[0] ? u->claimed : NULL, u->mime, &why) != BW_OK)
		return files_refuse(u->op, BW_ERR_MEDIA_TYPE, "magic",
				    why ? why : "the file's bytes are not of the type its name says",
				    json_pack("{s:s}", "detected", u->mime));
	return BW_OK;
}

bw_err
file_upload_data(struct file_upload *u, const void *p, size_t n)
{
	char why[256] = "";
	bw_err e;
	if (u->w == NULL)
		return op_fail(u->op, BW_ERR_INTERNAL, NULL);
	if (n > u->max - u->size)
		return files_refuse(u->op, BW_ERR_TOO_LARGE, "size",
				    pool_printf(u->op->pool, "a file may have at most %llu bytes",
						(unsigned long long)u->max),
				    json_pack("{s:I}", "limit", (json_int_t)u->max));
	u->size += n;
	if (!u->sniffed) {
		size_t take = FILES_SNIFF_BYTES - u->head_len;
		if (take > n)
			take = n;
		memcpy(u->head + u->head_len, p, take);
		u->head_len += take;
		if (u->head_len == FILES_SNIFF_BYTES && (e = files_magic(u)) != BW_OK)
			return e;
	}
	if ((e = clamd_send(u->clamd, p, n, why, sizeof(why))) != BW_OK) {
		/* clamd may have hung up over its size limit: clamd_end says what it said. */
		char sig[CLAMD_SIG_MAX + 1];
		char why2[256] = "";
		if (clamd_end(u->clamd, sig, why2, sizeof(why2)) == BW_OK)
			why2[0] = '\0'; /* cannot be: the stream was cut */
		log_warn("tenant %s: upload refused: virus scanner: %s%s%s", u->op->tn.slug, why,
			 why2[0] ? "; " : "", why2);
		return files_refuse(u->op, BW_ERR_UNAVAILABLE, "antivirus",
				    "the virus scanner failed while the file arrived, so it was not "
				    "accepted; try again shortly",
				    NULL);
	}
	return file_store_write(u->w, p, n);
}

/* The security audit row of a file refused for malware, in a transaction of its own. */
struct files_found {
	struct file_upload *u;
	const char *sig, *sha256;
};

static bw_err
files_found_tx(struct op *op, void *arg)
{
	struct files_found *f = arg;
	json_t *after = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I}", "module", f->u->m->name, "row_id",
				  (json_int_t)f->u->row_id, "name", f->u->name, "signature", f->sig,
				  "sha256", f->sha256, "size", (json_int_t)f->u->size);
	if (after == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	bw_err e = audit_op(op, "files", 0, "malware_refused", NULL, after);
	json_decref(after);
	return e;
}

struct files_publish {
	struct file_upload *u;
	const char *sha256;
	json_t *file;
};

static bw_err
files_publish_tx(struct op *op, void *arg)
{
	struct files_publish *p = arg;
	struct file_upload *u = p->u;
	db_stmt *s;
	int row = 0;
	/* The row must still be there: a delete that raced the upload wins. */
	bw_err e = module_lock(op->d, u->m, u->row_id);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "the record was deleted while the file arrived");
	if (e != BW_OK || (e = file_store_publish(op, file_writer_id(u->w), u->mime, u->size,
						  p->sha256)) != BW_OK)
		return e;
	if ((e = db_prepare_cached(op->d, "SELECT " FILE_COLUMNS " FROM files WHERE id = ?", &s)) !=
	    BW_OK)
		return e;
	json_decref(p->file);
	p->file = NULL;
	if ((e = DB_BIND(s, DB_INT(file_writer_id(u->w)))) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row)
		p->file = file_json(s);
	db_done(s);
	if (e == BW_OK && p->file == NULL)
		e = op_fail(op, BW_ERR_NOMEM, NULL);
	if (e != BW_OK)
		return e;
	json_t *after = json_pack("{s:I, s:s, s:s, s:I, s:s}", "file_id",
				  (json_int_t)file_writer_id(u->w), "name", u->name, "type", u->mime,
				  "size", (json_int_t)u->size, "sha256", p->sha256);
	if (after == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	e = audit_op(op, u->m->name, u->row_id, "attach", NULL, after);
	json_decref(after);
	return e;
}

bw_err
file_upload_finish(struct file_upload *u, json_t **file)
{
	struct op *op = u->op;
	const struct config *cfg = op->cfg;
	char sha256[65], why[512] = "", sig[CLAMD_SIG_MAX + 1] = "";
	uint64_t size = 0;
	bw_err e;
	*file = NULL;
	if (u->w == NULL)
		return op_fail(op, BW_ERR_INTERNAL, NULL);
	if (u->size == 0)
		return files_refuse(op, BW_ERR_INVALID, "size", "the file is empty", NULL);
	if ((e = file_store_close(u->w, &size, sha256)) != BW_OK)
		return e;
	/* 3. magic bytes, when the file is shorter than the head */
	if (!u->sniffed && (e = files_magic(u)) != BW_OK)
		return e;
	/* 4. what the file holds, read back from storage: archives walked, polyglots caught */
	struct file_reader *rd = NULL;
	if ((e = file_store_open(op, file_writer_id(u->w), &rd)) != BW_OK)
		return e;
	struct files_source src = {file_reader_read_at, file_reader_size(rd), rd};
	struct files_limits lim = {
	    .entries = cfg->files_archive_entries,
	    .unpacked = (uint64_t)cfg->files_archive_unpacked,
	    .ratio = (uint64_t)cfg->files_archive_ratio,
	    .depth = (int)cfg->files_archive_depth,
	};
	struct files_archive_result res;
	memset(&res, 0, sizeof(res));
	e = files_archive_check(&src, u->type, &lim, &res, why, sizeof(why));
	bw_err rerr = file_reader_err(rd);
	file_reader_free(rd);
	if (rerr != BW_OK)
		return op_fail(op, rerr == BW_ERR_CRYPTO ? BW_ERR_CRYPTO : BW_ERR_UNAVAILABLE, NULL);
	if (e == BW_ERR_NOMEM)
		return op_fail(op, e, NULL);
	if (e != BW_OK)
		return files_refuse(op, BW_ERR_UNPROCESSABLE, "archive",
				    why[0] ? why : "the file's contents are refused", NULL);
	/* 5. ClamAV's verdict on the whole stream */
	e = clamd_end(u->clamd, sig, why, sizeof(why));
	clamd_free(u->clamd);
	u->clamd = NULL;
	if (e == BW_ERR_UNPROCESSABLE) {
		struct files_found f = {u, sig, sha256};
		log_warn("tenant %s: upload %s to %s %lld refused: malware %s", op->tn.slug, u->name,
			 u->m->name, (long long)u->row_id, sig);
		if (op_tx(op, files_found_tx, &f) != BW_OK) {
			log_error("tenant %s: the audit row of refused malware was not written",
				  op->tn.slug);
			op_clear(op);
		}
		return files_refuse(op, BW_ERR_UNPROCESSABLE, "antivirus",
				    pool_printf(op->pool, "the file holds malware (%s)", sig),
				    json_pack("{s:s}", "signature", sig));
	}
	if (e != BW_OK) {
		log_warn("tenant %s: upload refused: virus scanner: %s", op->tn.slug, why);
		return files_refuse(op, BW_ERR_UNAVAILABLE, "antivirus",
				    "the virus scanner could not check the file, so it was not "
				    "accepted; try again shortly",
				    NULL);
	}
	/* Visible now: usage first (an error there refuses), then the row with its audit. */
	if (quota_commit(op->ten, op->tn.slug, u->reservation, (int64_t)u->size) != BW_OK)
		return files_refuse(op, BW_ERR_UNAVAILABLE, "quota",
				    "storage quotas cannot be updated right now; try again shortly", NULL);
	u->reservation = 0;
	struct files_publish p = {u, sha256, NULL};
	if ((e = op_tx(op, files_publish_tx, &p)) != BW_OK) {
		json_decref(p.file);
		if (quota_return(op->ten, op->tn.slug, (int64_t)u->size) != BW_OK)
			log_warn("tenant %s: %llu bytes stay counted as used (quota update failed)",
				 op->tn.slug, (unsigned long long)u->size);
		return e;
	}
	op_db_release(op);
	json_object_set_new(p.file, "normalised", json_boolean(u->normalised));
	u->finished = 1;
	*file = p.file;
	return BW_OK;
}

void
file_upload_free(struct file_upload *u)
{
	if (u == NULL)
		return;
	clamd_free(u->clamd);
	if (!u->finished) {
		if (u->w != NULL)
			file_store_discard(u->op, file_writer_id(u->w));
		if (u->reservation != 0 && quota_release(u->op->ten, u->op->tn.slug, u->reservation) !=
						BW_OK)
			log_warn("tenant %s: a quota reservation stays until it lapses", u->op->tn.slug);
	}
	file_writer_free(u->w);
	if (u->head != NULL) {
		crypto_wipe(u->head, FILES_SNIFF_BYTES);
		free(u->head);
	}
	free(u);
}

/* --- stored files --------------------------------------------------------------- */

json_t *
file_json(db_stmt *s)
{
	char when[UTIL_TIME_LEN];
	return json_pack("{s:I, s:s, s:I, s:s, s:s, s:I, s:s, s:I, s:s}", "id",
			 (json_int_t)db_col_int(s, 0), "module", db_col_text(s, 1), "row_id",
			 (json_int_t)db_col_int(s, 2), "name", db_col_text(s, 3), "type",
			 db_col_text(s, 4), "size", (json_int_t)db_col_int(s, 5), "sha256",
			 db_col_text(s, 6), "created_by", (json_int_t)db_col_int(s, 7), "created_at",
			 util_time_rfc3339(db_col_int(s, 8), when));
}

/* The ready file id of row row_id of m, read on d. */
static bw_err
files_read(struct op *op, db *d, const struct module_desc *m, int64_t row_id, int64_t id,
	   json_t **file)
{
	db_stmt *s;
	int row = 0;
	*file = NULL;
	bw_err e = db_prepare_cached(d,
				     "SELECT " FILE_COLUMNS " FROM files WHERE id = ? AND module = ?"
				     " AND row_id = ? AND state = 'ready'",
				     &s);
	if (e != BW_OK)
		return op_unavailable(op);
	if ((e = DB_BIND(s, DB_INT(id), DB_TEXT(m->name), DB_INT(row_id))) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row && (*file = file_json(s)) == NULL)
		e = BW_ERR_NOMEM;
	db_done(s);
	if (e != BW_OK)
		return e == BW_ERR_NOMEM ? op_fail(op, e, NULL) : op_unavailable(op);
	return row ? BW_OK : op_fail(op, BW_ERR_NOTFOUND, "no such file");
}

bw_err
file_get(struct op *op, const struct module_desc *m, int64_t row_id, int64_t id, json_t **file)
{
	db *d;
	bw_err e = op_db(op, &d);
	return e != BW_OK ? e : files_read(op, d, m, row_id, id, file);
}

struct files_del {
	const struct module_desc *m;
	int64_t row_id, id, size;
};

static bw_err
files_delete_tx(struct op *op, void *arg)
{
	struct files_del *x = arg;
	json_t *f = NULL;
	bw_err e = module_lock(op->d, x->m, x->row_id);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such record");
	if (e != BW_OK || (e = files_read(op, op->d, x->m, x->row_id, x->id, &f)) != BW_OK)
		return e;
	x->size = (int64_t)json_integer_value(json_object_get(f, "size"));
	json_t *before = json_pack("{s:I, s:O, s:O, s:O, s:O}", "file_id", (json_int_t)x->id, "name",
				   json_object_get(f, "name"), "type", json_object_get(f, "type"),
				   "size", json_object_get(f, "size"), "sha256",
				   json_object_get(f, "sha256"));
	json_decref(f);
	if (before == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	if ((e = file_store_delete(op->d, x->id)) == BW_OK)
		e = audit_op(op, x->m->name, x->row_id, "detach", before, NULL);
	json_decref(before);
	return e;
}

bw_err
file_delete(struct op *op, const struct module_desc *m, int64_t row_id, int64_t id)
{
	struct files_del x = {m, row_id, id, 0};
	bw_err e = op_tx(op, files_delete_tx, &x);
	if (e == BW_OK && quota_return(op->ten, op->tn.slug, x.size) != BW_OK)
		log_warn("tenant %s: %lld bytes of a deleted file stay counted as used", op->tn.slug,
			 (long long)x.size);
	return e;
}

bw_err
file_open(struct op *op, const struct module_desc *m, int64_t row_id, int64_t id, json_t **file,
	  struct file_reader **reader)
{
	*reader = NULL;
	bw_err e = file_get(op, m, row_id, id, file);
	if (e != BW_OK)
		return e;
	if ((e = file_store_open(op, id, reader)) != BW_OK) {
		json_decref(*file);
		*file = NULL;
	}
	return e;
}
