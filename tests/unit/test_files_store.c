/*
 * Attachments at rest (src/files/store.c) and storage quotas
 * (src/tenancy/quota.c), on both drivers, without HTTP: contents written
 * in chunks read back byte for byte at any offset; every chunk bound to
 * its file, index and place at the end, so a flipped byte, two chunks
 * swapped, a chunk moved to another file, a file cut short or a data key
 * moved to another file all fail to read rather than give other bytes; no
 * plaintext in the database file; key rotation re-wraps each file's key and
 * leaves its chunks untouched; quota reservations that cannot together
 * pass the plan's limit, even from many threads at once.
 */
#include "unit.h"

#include <openssl/evp.h>
#include <pthread.h>

#include "crypto/crypto.h"
#include "dbenv.h"
#include "files/store.h"
#include "op/op.h"
#include "tenancy/tenancy.h"

static char tmpdir[64];
static int seq;

struct fx {
	struct config cfg;
	struct tenancy *t;
	char slug[16];
	struct tenant tn;
	db *d;
	pool *pool;
	struct op op;
	int mariadb;
};

static int
group_setup(void **state)
{
	(void)state;
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "files-store");
}

static int
group_teardown(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

static struct tenant
get_tenant(struct fx *f)
{
	struct tenant *v, out;
	size_t n;
	char err[256];
	memset(&out, 0, sizeof(out));
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, f->slug) == 0)
			out = v[i];
	free(v);
	return out;
}

static int
open_driver(void **state, const char *driver)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512], otp[64];
	*state = NULL;
	if (strcmp(driver, "mariadb") == 0 && !dbenv_have_mariadb()) {
		free(f);
		return 0;
	}
	f->mariadb = strcmp(driver, "mariadb") == 0;
	if (dbenv_open(&f->cfg, driver, tmpdir, "saas_control_fst", ++seq, &f->t, err,
		       sizeof(err)) != BW_OK)
		fail_msg("setup: %s", err);
	snprintf(f->slug, sizeof(f->slug), "fs%d", seq);
	if (tenant_create(f->t, f->slug, "admin@files.example", NULL, NULL, otp, sizeof(otp), err,
			  sizeof(err)) != BW_OK)
		fail_msg("create: %s", err);
	f->tn = get_tenant(f);
	if (tenancy_connect_tenant(f->t, &f->tn, 0, &f->d, err, sizeof(err)) != BW_OK)
		fail_msg("connect: %s", err);
	assert_non_null(f->pool = pool_new(1 << 20));
	struct actor a = op_system("unit test");
	op_init(&f->op, f->pool, &f->cfg, f->t, &f->tn, f->d, &a);
	*state = f;
	return 0;
}

static int
open_sqlite(void **state)
{
	return open_driver(state, "sqlite");
}

static int
open_mariadb(void **state)
{
	return open_driver(state, "mariadb");
}

static int
close_fx(void **state)
{
	struct fx *f = *state;
	if (f == NULL)
		return 0;
	db_close(f->d);
	pool_free(f->pool);
	dbenv_destroy(f->t, &f->cfg);
	free(f);
	return 0;
}

#define NEED(f)                                                                         \
	do {                                                                            \
		if ((f) == NULL) {                                                      \
			print_message("MariaDB not started (run through make check)\n"); \
			skip();                                                         \
		}                                                                       \
	} while (0)

/* n bytes of a pattern no two offsets of which are alike for long, with a marker inside. */
#define MARKER "PLAINTEXT-MARKER-7f3a9c1e-PLAINTEXT-MARKER"
static unsigned char *
content(size_t n)
{
	unsigned char *b = malloc(n);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)((i * 2654435761u) >> 13);
	if (n > 1000)
		memcpy(b + 500, MARKER, strlen(MARKER));
	return b;
}

/* A file of n bytes, written in pieces of step, published; its id. */
static int64_t
store(struct fx *f, const unsigned char *b, size_t n, size_t step)
{
	struct file_writer *w;
	uint64_t size;
	char sha[65], want[65];
	unsigned char md[32];
	unsigned int mdlen;
	assert_int_equal(file_store_begin(&f->op, "tickets", 1, "x.bin", 0, &w), BW_OK);
	for (size_t off = 0; off < n; off += step)
		assert_int_equal(file_store_write(w, b + off, n - off < step ? n - off : step), BW_OK);
	assert_int_equal(file_store_close(w, &size, sha), BW_OK);
	assert_int_equal(size, n);
	assert_int_equal(EVP_Digest(b, n, md, &mdlen, EVP_sha256(), NULL), 1);
	util_hex(md, sizeof(md), want);
	assert_string_equal(sha, want);
	int64_t id = file_writer_id(w);
	file_writer_free(w);
	assert_int_equal(db_begin(f->d), BW_OK);
	assert_int_equal(file_store_publish(&f->op, id, "application/octet-stream", size, sha), BW_OK);
	assert_int_equal(db_commit(f->d), BW_OK);
	return id;
}

/* Read all of file id at pieces of step from off; the bytes or NULL on a failed read. */
static unsigned char *
load(struct fx *f, int64_t id, size_t *n, bw_err *err)
{
	struct file_reader *r;
	*err = file_store_open(&f->op, id, &r);
	if (*err != BW_OK)
		return NULL;
	size_t size = (size_t)file_reader_size(r), got = 0;
	unsigned char *b = malloc(size + 1);
	assert_non_null(b);
	while (got < size) {
		long k = file_reader_read_at(r, got, b + got, 7777);
		if (k <= 0) {
			*err = file_reader_err(r);
			file_reader_free(r);
			free(b);
			return NULL;
		}
		got += (size_t)k;
	}
	*n = size;
	*err = BW_OK;
	file_reader_free(r);
	return b;
}

static void
exec(struct fx *f, const char *sql, int64_t a, int64_t b)
{
	assert_int_equal(DB_RUN(f->d, sql, DB_INT(a), DB_INT(b)), BW_OK);
}

static void
test_roundtrip_any_offset(void **state)
{
	struct fx *f = *state;
	NEED(f);
	/* exactly two chunks, a chunk and a byte, and less than one */
	size_t sizes[] = {2 * FILE_CHUNK_BYTES, FILE_CHUNK_BYTES + 1, 1000, 3 * FILE_CHUNK_BYTES - 5};
	for (size_t i = 0; i < BW_ARRAY_LEN(sizes); i++) {
		unsigned char *b = content(sizes[i]);
		int64_t id = store(f, b, sizes[i], i % 2 ? 65536 : 4093);
		size_t n;
		bw_err e;
		unsigned char *got = load(f, id, &n, &e);
		assert_int_equal(e, BW_OK);
		assert_int_equal(n, sizes[i]);
		assert_memory_equal(got, b, n);
		free(got);
		/* reads across a chunk boundary, at the last byte, past the end */
		struct file_reader *r;
		unsigned char buf[64];
		assert_int_equal(file_store_open(&f->op, id, &r), BW_OK);
		if (sizes[i] > FILE_CHUNK_BYTES + 8) {
			long k = file_reader_read_at(r, FILE_CHUNK_BYTES - 4, buf, 8);
			assert_int_equal(k, 4); /* up to the chunk's end... */
			assert_memory_equal(buf, b + FILE_CHUNK_BYTES - 4, 4);
			assert_int_equal(file_reader_read_at(r, FILE_CHUNK_BYTES, buf, 8), 8);
			assert_memory_equal(buf, b + FILE_CHUNK_BYTES, 8);
		}
		assert_int_equal(file_reader_read_at(r, sizes[i] - 1, buf, 8), 1);
		assert_int_equal(buf[0], b[sizes[i] - 1]);
		assert_int_equal(file_reader_read_at(r, sizes[i], buf, 8), 0);
		file_reader_free(r);
		free(b);
	}
}

/* Each tampering must make the read fail: never other bytes. */
static void
expect_unreadable(struct fx *f, int64_t id)
{
	size_t n;
	bw_err e;
	unsigned char *got = load(f, id, &n, &e);
	assert_null(got);
	assert_int_equal(e, BW_ERR_CRYPTO);
}

static void
test_tampering_is_caught(void **state)
{
	struct fx *f = *state;
	NEED(f);
	size_t n = 3 * FILE_CHUNK_BYTES;
	unsigned char *b = content(n);

	/* a flipped byte in the middle chunk */
	int64_t a = store(f, b, n, 65536);
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(f->d, "SELECT data FROM file_chunks WHERE file_id = ? AND idx = 1",
				    &s),
			 BW_OK);
	assert_int_equal(db_bind_int(s, 1, a), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	size_t len;
	const unsigned char *v = db_col_blob(s, 0, &len);
	unsigned char *copy = malloc(len);
	memcpy(copy, v, len);
	db_finalize(s);
	copy[100] ^= 1;
	assert_int_equal(DB_RUN(f->d, "UPDATE file_chunks SET data = ? WHERE file_id = ? AND idx = 1",
				DB_BLOB(copy, len), DB_INT(a)),
			 BW_OK);
	free(copy);
	expect_unreadable(f, a);

	/* two chunks swapped */
	int64_t c = store(f, b, n, 65536);
	exec(f, "UPDATE file_chunks SET idx = 99 WHERE file_id = ? AND idx = ?", c, 0);
	exec(f, "UPDATE file_chunks SET idx = 0 WHERE file_id = ? AND idx = ?", c, 1);
	exec(f, "UPDATE file_chunks SET idx = 1 WHERE file_id = ? AND idx = ?", c, 99);
	expect_unreadable(f, c);

	/* cut short: the last chunk dropped, size and count made to match */
	int64_t d = store(f, b, n, 65536);
	exec(f, "DELETE FROM file_chunks WHERE file_id = ? AND idx = ?", d, 2);
	exec(f, "UPDATE files SET chunks = 2, size = ? WHERE id = ?", 2 * FILE_CHUNK_BYTES, d);
	expect_unreadable(f, d);

	/* a chunk of another file (same index) put in place */
	int64_t e1 = store(f, b, n, 65536), e2 = store(f, b, n, 65536);
	exec(f, "DELETE FROM file_chunks WHERE file_id = ? AND idx = ?", e2, 1);
	exec(f, "UPDATE file_chunks SET file_id = ? WHERE file_id = ? AND idx = 1", e2, e1);
	expect_unreadable(f, e2);

	/* another file's data key put in place */
	int64_t g1 = store(f, b, n, 65536), g2 = store(f, b, n, 65536);
	assert_int_equal(db_prepare(f->d, "SELECT dek FROM files WHERE id = ?", &s), BW_OK);
	assert_int_equal(db_bind_int(s, 1, g1), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	v = db_col_blob(s, 0, &len);
	copy = malloc(len);
	memcpy(copy, v, len);
	db_finalize(s);
	assert_int_equal(DB_RUN(f->d, "UPDATE files SET dek = ? WHERE id = ?", DB_BLOB(copy, len),
				DB_INT(g2)),
			 BW_OK);
	free(copy);
	struct file_reader *r = NULL;
	assert_int_equal(file_store_open(&f->op, g2, &r), BW_ERR_CRYPTO);
	assert_null(r);
	op_clear(&f->op);

	/* an untouched file still reads */
	size_t m;
	bw_err err;
	unsigned char *ok = load(f, g1, &m, &err);
	assert_int_equal(err, BW_OK);
	assert_memory_equal(ok, b, n);
	free(ok);
	free(b);
}

static void
test_no_plaintext_at_rest(void **state)
{
	struct fx *f = *state;
	NEED(f);
	if (f->mariadb)
		return; /* MariaDB's files are its own: the HTTP suite reads its dump instead */
	unsigned char *b = content(FILE_CHUNK_BYTES + 5000);
	(void)store(f, b, FILE_CHUNK_BYTES + 5000, 65536);
	free(b);
	assert_int_equal(db_exec(f->d, "PRAGMA wal_checkpoint(TRUNCATE)"), BW_OK);
	char path[CONFIG_STR + 64];
	snprintf(path, sizeof(path), "%s/tenants/%s.db", f->cfg.var_dir, f->slug);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	static unsigned char all[8 << 20];
	size_t n = fread(all, 1, sizeof(all), fp);
	fclose(fp);
	assert_true(n > 0);
	assert_null(memmem(all, n, MARKER, strlen(MARKER)));
}

static void
test_rotation_rewraps_keys_only(void **state)
{
	struct fx *f = *state;
	NEED(f);
	size_t n = FILE_CHUNK_BYTES + 17;
	unsigned char *b = content(n);
	int64_t id = store(f, b, n, 65536);
	db_stmt *s;
	int row;
	size_t len;
	unsigned char before[64];
	uint32_t kid_before, kid_after;
	/* the first chunk's bytes, and the key id sealing the file's key */
	assert_int_equal(db_prepare(f->d,
				    "SELECT c.data, f.dek FROM file_chunks c JOIN files f ON f.id = "
				    "c.file_id WHERE c.file_id = ? AND c.idx = 0",
				    &s),
			 BW_OK);
	assert_int_equal(db_bind_int(s, 1, id), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	memcpy(before, db_col_blob(s, 0, &len), sizeof(before));
	const unsigned char *dek = db_col_blob(s, 1, &len);
	assert_int_equal(seal_key_id(dek, len, &kid_before), BW_OK);
	db_finalize(s);

	struct keys_report rep;
	char err[512];
	assert_int_equal(keys_rotate(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	f->tn = get_tenant(f);
	assert_int_not_equal(f->tn.active_key_id, kid_before);

	assert_int_equal(db_prepare(f->d,
				    "SELECT c.data, f.dek FROM file_chunks c JOIN files f ON f.id = "
				    "c.file_id WHERE c.file_id = ? AND c.idx = 0",
				    &s),
			 BW_OK);
	assert_int_equal(db_bind_int(s, 1, id), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_memory_equal(db_col_blob(s, 0, &len), before, sizeof(before)); /* not re-encrypted */
	dek = db_col_blob(s, 1, &len);
	assert_int_equal(seal_key_id(dek, len, &kid_after), BW_OK);
	db_finalize(s);
	assert_int_equal(kid_after, f->tn.active_key_id); /* re-wrapped */
	f->op.tn = f->tn;
	size_t m;
	bw_err e;
	unsigned char *got = load(f, id, &m, &e);
	assert_int_equal(e, BW_OK);
	assert_memory_equal(got, b, n);
	free(got);
	free(b);
}

static void
test_discard_and_sweep(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct file_writer *w;
	unsigned char *b = content(FILE_CHUNK_BYTES * 2);
	assert_int_equal(file_store_begin(&f->op, "tickets", 1, "cut.bin", 42, &w), BW_OK);
	assert_int_equal(file_store_write(w, b, FILE_CHUNK_BYTES * 2), BW_OK);
	int64_t id = file_writer_id(w);
	file_writer_free(w);
	int64_t n = -1;
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT COUNT(*) FROM file_chunks WHERE file_id = ?",
				      DB_INT(id)),
			 BW_OK);
	assert_int_equal(n, 1); /* the second chunk is held until it is known to be the last */
	file_store_discard(&f->op, id);
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT COUNT(*) FROM file_chunks WHERE file_id = ?",
				      DB_INT(id)),
			 BW_OK);
	assert_int_equal(n, 0);
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT COUNT(*) FROM files WHERE id = ?", DB_INT(id)),
			 BW_OK);
	assert_int_equal(n, 0);

	/* a pending file a crash left a day ago goes with the sweep; a ready one stays */
	assert_int_equal(file_store_begin(&f->op, "tickets", 1, "old.bin", 43, &w), BW_OK);
	assert_int_equal(file_store_write(w, b, 10), BW_OK);
	int64_t old = file_writer_id(w);
	file_writer_free(w);
	int64_t ready = store(f, b, 10, 10);
	exec(f, "UPDATE files SET created_at = created_at - ? WHERE id = ?", 90000, old);
	exec(f, "UPDATE files SET created_at = created_at - ? WHERE id = ?", 90000, ready);
	int64_t res[4];
	size_t swept;
	assert_int_equal(file_store_sweep(&f->op, 86400, 4, res, &swept), BW_OK);
	assert_int_equal(swept, 1);
	assert_int_equal(res[0], 43);
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT COUNT(*) FROM files WHERE id = ?", DB_INT(old)),
			 BW_OK);
	assert_int_equal(n, 0);
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT COUNT(*) FROM files WHERE id = ?",
				      DB_INT(ready)),
			 BW_OK);
	assert_int_equal(n, 1);
	free(b);
}

/* --- quotas ------------------------------------------------------------------------- */

static void
set_limit(struct fx *f, int64_t bytes)
{
	assert_int_equal(DB_RUN(tenancy_control(f->t),
				"UPDATE plans SET storage_bytes = ? WHERE id = (SELECT plan_id FROM "
				"tenants WHERE slug = ?)",
				DB_INT(bytes), DB_TEXT(f->slug)),
			 BW_OK);
}

static void
test_quota_reserve_commit_release(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct quota_usage u;
	int64_t r1, r2, r3;
	set_limit(f, 1000);
	assert_int_equal(quota_reserve(f->t, f->slug, 600, &r1, &u), BW_OK);
	assert_int_equal(quota_reserve(f->t, f->slug, 401, &r2, &u), BW_ERR_QUOTA);
	assert_int_equal(r2, 0);
	assert_int_equal(u.limit, 1000);
	assert_int_equal(u.reserved, 600);
	assert_int_equal(quota_reserve(f->t, f->slug, 400, &r2, &u), BW_OK);
	/* the upload stored fewer bytes than it reserved: only those count */
	assert_int_equal(quota_commit(f->t, f->slug, r1, 500), BW_OK);
	assert_int_equal(quota_release(f->t, f->slug, r2), BW_OK);
	assert_int_equal(quota_usage(f->t, f->slug, &u), BW_OK);
	assert_int_equal(u.used, 500);
	assert_int_equal(u.reserved, 0);
	assert_int_equal(quota_reserve(f->t, f->slug, 501, &r3, &u), BW_ERR_QUOTA);
	assert_int_equal(quota_return(f->t, f->slug, 500), BW_OK);
	assert_int_equal(quota_reserve(f->t, f->slug, 1000, &r3, &u), BW_OK);
	assert_int_equal(quota_release(f->t, f->slug, r3), BW_OK);
	/* a reservation past its time no longer counts */
	assert_int_equal(quota_reserve(f->t, f->slug, 1000, &r3, &u), BW_OK);
	assert_int_equal(DB_RUN(tenancy_control(f->t),
				"UPDATE storage_reservations SET expires_at = 1 WHERE id = ?", DB_INT(r3)),
			 BW_OK);
	assert_int_equal(quota_reserve(f->t, f->slug, 1000, &r3, &u), BW_OK);
	assert_int_equal(quota_usage(f->t, "no-such-tenant", &u), BW_ERR_NOTFOUND);
}

struct racer {
	struct fx *f;
	int ok;
};

static void *
race(void *arg)
{
	struct racer *r = arg;
	int64_t id;
	r->ok = quota_reserve(r->f->t, r->f->slug, 100, &id, NULL) == BW_OK;
	return NULL;
}

static void
test_quota_concurrent(void **state)
{
	struct fx *f = *state;
	NEED(f);
	enum { N = 12 };
	pthread_t th[N];
	struct racer r[N];
	set_limit(f, 550); /* room for five of the twelve */
	for (int i = 0; i < N; i++) {
		r[i] = (struct racer){f, 0};
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	int ok = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ok += r[i].ok;
	}
	assert_int_equal(ok, 5);
	struct quota_usage u;
	assert_int_equal(quota_usage(f->t, f->slug, &u), BW_OK);
	assert_int_equal(u.reserved, 500);
}

int
main(void)
{
#define BOTH(fn)                                                   \
	cmocka_unit_test_setup_teardown(fn, open_sqlite, close_fx), \
	    cmocka_unit_test_setup_teardown(fn, open_mariadb, close_fx)
	const struct CMUnitTest tests[] = {
		BOTH(test_roundtrip_any_offset),
		BOTH(test_tampering_is_caught),
		BOTH(test_no_plaintext_at_rest),
		BOTH(test_rotation_rewraps_keys_only),
		BOTH(test_discard_and_sweep),
		BOTH(test_quota_reserve_commit_release),
		BOTH(test_quota_concurrent),
	};
	return cmocka_run_group_tests_name("files_store", tests, group_setup, group_teardown);
}
