/*
 * The JSON writer (src/core/jsonw.c) against jansson as the oracle: every
 * ASCII byte escaped as json_dumps escapes it, UTF-8 passed through and
 * invalid UTF-8 refused (as jansson refuses it), structure errors caught,
 * the buffer's maximum kept. Then the row writer (src/modules/rowjson.c)
 * against engine_row() for a full and a sparse row of every module, on
 * both drivers: the same JSON, byte for byte.
 */
#include "unit.h"

#include <jansson.h>
#include <time.h>

#include "core/jsonw.h"
#include "crypto/crypto.h"
#include "dbenv.h"
#include "modules/engine.h"
#include "op/op.h"
#include "tenancy/tenancy.h"

/* What json_dumps writes for the string s[0..n). */
static char *
jansson_string(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j == NULL)
		return NULL;
	char *out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(j);
	return out;
}

static void
test_escapes_match_jansson(void **state)
{
	(void)state;
	/* every ASCII byte alone, then all of them in one string */
	char all[128];
	for (int c = 0; c < 128; c++) {
		char s[1] = {(char)c};
		all[c] = (char)c;
		struct buf b;
		struct jsonw w;
		buf_init(&b, 64);
		jsonw_init(&w, &b);
		jsonw_string(&w, s, 1);
		assert_int_equal(jsonw_finish(&w), BW_OK);
		char *want = jansson_string(s, 1);
		if (strcmp(buf_ptr(&b), want) != 0)
			fail_msg("byte 0x%02x: %s, jansson %s", c, buf_ptr(&b), want);
		free(want);
		buf_free(&b);
	}
	struct buf b;
	struct jsonw w;
	buf_init(&b, 4096);
	jsonw_init(&w, &b);
	jsonw_string(&w, all, sizeof(all));
	assert_int_equal(jsonw_finish(&w), BW_OK);
	char *want = jansson_string(all, sizeof(all));
	assert_string_equal(buf_ptr(&b), want);
	assert_non_null(strstr(buf_ptr(&b), "\\u0000\\u0001"));
	assert_non_null(strstr(buf_ptr(&b), "\\b\\t\\n\\u000B\\f\\r"));
	free(want);
	buf_free(&b);
}

static void
test_utf8_passes_and_invalid_is_refused(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "\xc2\x80",         /* U+0080 */
	    "\xdf\xbf",         /* U+07FF */
	    "\xe0\xa0\x80",     /* U+0800 */
	    "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
	    "\xee\x80\x80",     /* U+E000, just above */
	    "\xef\xbf\xbf",     /* U+FFFF */
	    "\xf0\x90\x80\x80", /* U+10000 */
	    "\xf4\x8f\xbf\xbf", /* U+10FFFF */
	    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89 \xe2\x80\xa8",
	};
	static const char *const bad[] = {
	    "\x80",             /* a lone continuation byte */
	    "a\xbf",            /* another */
	    "\xc0\x80",         /* overlong NUL */
	    "\xc1\xbf",         /* overlong */
	    "\xe0\x80\x80",     /* overlong 3-byte */
	    "\xf0\x80\x80\x80", /* overlong 4-byte */
	    "\xed\xa0\x80",     /* U+D800, a surrogate */
	    "\xed\xbf\xbf",     /* U+DFFF */
	    "\xf4\x90\x80\x80", /* U+110000 */
	    "\xf5\x80\x80\x80", /* past 0xf4 */
	    "\xff",
	    "\xe6\x97",         /* truncated */
	    "ok\xf0\x9f\x8e",   /* truncated at the end */
	    "\xc3(",            /* continuation missing */
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(good); i++) {
		struct buf b;
		buf_init(&b, 256);
		assert_int_equal(jsonw_escape(&b, good[i], strlen(good[i])), BW_OK);
		assert_string_equal(buf_ptr(&b), good[i]); /* unchanged */
		char *want = jansson_string(good[i], strlen(good[i]));
		assert_non_null(want);
		buf_free(&b);
		struct jsonw w;
		jsonw_init(&w, &b);
		buf_init(&b, 256);
		jsonw_string(&w, good[i], strlen(good[i]));
		assert_int_equal(jsonw_finish(&w), BW_OK);
		assert_string_equal(buf_ptr(&b), want);
		free(want);
		buf_free(&b);
	}
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		struct buf b;
		buf_init(&b, 256);
		assert_int_equal(buf_append_str(&b, "x"), BW_OK);
		if (jsonw_escape(&b, bad[i], strlen(bad[i])) != BW_ERR_INVALID)
			fail_msg("bad case %zu escaped", i);
		assert_string_equal(buf_ptr(&b), "x"); /* nothing appended */
		/* the oracle agrees it is not UTF-8 */
		if (json_stringn(bad[i], strlen(bad[i])) != NULL)
			fail_msg("bad case %zu: jansson takes it", i);
		struct jsonw w;
		jsonw_init(&w, &b);
		jsonw_array_open(&w);
		jsonw_string(&w, bad[i], strlen(bad[i]));
		jsonw_int(&w, 1); /* sticky: ignored */
		assert_int_equal(jsonw_finish(&w), BW_ERR_INVALID);
		buf_free(&b);
	}
}

static void
test_structure_matches_jansson(void **state)
{
	(void)state;
	struct buf b;
	struct jsonw w;
	buf_init(&b, 1024);
	jsonw_init(&w, &b);
	jsonw_object_open(&w);
	jsonw_key(&w, "data");
	jsonw_array_open(&w);
	for (int i = 0; i < 3; i++) {
		jsonw_object_open(&w);
		jsonw_key(&w, "id");
		jsonw_int(&w, i == 2 ? INT64_MIN : i * 1000000000000LL);
		jsonw_key(&w, "na\"me");
		jsonw_cstring(&w, i == 1 ? NULL : "line\none");
		jsonw_key(&w, "ok");
		jsonw_bool(&w, i);
		jsonw_key(&w, "empty");
		jsonw_array_open(&w);
		jsonw_array_close(&w);
		jsonw_key(&w, "o");
		jsonw_object_open(&w);
		jsonw_object_close(&w);
		jsonw_object_close(&w);
	}
	jsonw_array_close(&w);
	jsonw_key(&w, "total");
	jsonw_int(&w, INT64_MAX);
	jsonw_key(&w, "next_cursor");
	jsonw_null(&w);
	jsonw_key(&w, "raw");
	jsonw_raw(&w, "[1,2]", 5);
	jsonw_object_close(&w);
	assert_int_equal(jsonw_finish(&w), BW_OK);

	json_t *data = json_array();
	for (int i = 0; i < 3; i++)
		json_array_append_new(
		    data, json_pack("{s:I, s:o, s:b, s:[], s:{}}", "id",
				    (json_int_t)(i == 2 ? INT64_MIN : i * 1000000000000LL), "na\"me",
				    i == 1 ? json_null() : json_string("line\none"), "ok", i, "empty",
				    "o"));
	json_t *o = json_pack("{s:o, s:I, s:n, s:[i,i]}", "data", data, "total",
			      (json_int_t)INT64_MAX, "next_cursor", "raw", 1, 2);
	char *want = json_dumps(o, JSON_COMPACT);
	assert_string_equal(buf_ptr(&b), want);
	free(want);
	json_decref(o);
	buf_free(&b);
}

static void
test_structure_errors(void **state)
{
	(void)state;
	struct buf b;
	struct jsonw w;
	buf_init(&b, 1024);
	/* a value where a key is due */
	jsonw_init(&w, &b);
	jsonw_object_open(&w);
	jsonw_int(&w, 1);
	assert_int_equal(jsonw_finish(&w), BW_ERR_INVALID);
	/* a key in an array, a key without its value, closing the wrong kind */
	jsonw_init(&w, &b);
	jsonw_array_open(&w);
	jsonw_key(&w, "k");
	assert_int_equal(jsonw_finish(&w), BW_ERR_INVALID);
	jsonw_init(&w, &b);
	jsonw_object_open(&w);
	jsonw_key(&w, "k");
	jsonw_object_close(&w);
	assert_int_equal(jsonw_finish(&w), BW_ERR_INVALID);
	jsonw_init(&w, &b);
	jsonw_array_open(&w);
	jsonw_object_close(&w);
	assert_int_equal(jsonw_finish(&w), BW_ERR_INVALID);
	jsonw_init(&w, &b);
	jsonw_array_close(&w);
	assert_int_equal(jsonw_finish(&w), BW_ERR_INVALID);
	/* left open */
	jsonw_init(&w, &b);
	jsonw_array_open(&w);
	assert_int_equal(jsonw_finish(&w), BW_ERR_INVALID);
	/* a key that is not UTF-8 */
	jsonw_init(&w, &b);
	jsonw_object_open(&w);
	jsonw_key(&w, "\xc0\xaf");
	assert_int_equal(jsonw_error(&w), BW_ERR_INVALID);
	/* nesting: the maximum works, one more does not */
	jsonw_init(&w, &b);
	for (int i = 0; i < JSONW_DEPTH_MAX; i++)
		jsonw_array_open(&w);
	for (int i = 0; i < JSONW_DEPTH_MAX; i++)
		jsonw_array_close(&w);
	assert_int_equal(jsonw_finish(&w), BW_OK);
	jsonw_init(&w, &b);
	for (int i = 0; i <= JSONW_DEPTH_MAX; i++)
		jsonw_array_open(&w);
	assert_int_equal(jsonw_error(&w), BW_ERR_INVALID);
	/* two top-level values */
	buf_free(&b);
	jsonw_init(&w, &b);
	jsonw_int(&w, 1);
	assert_int_equal(jsonw_finish(&w), BW_OK);
	buf_free(&b);
}

static void
test_buffer_maximum_is_kept(void **state)
{
	(void)state;
	struct buf b;
	struct jsonw w;
	buf_init(&b, 16);
	jsonw_init(&w, &b);
	jsonw_array_open(&w);
	jsonw_cstring(&w, "0123456789");
	assert_int_equal(jsonw_error(&w), BW_OK);
	jsonw_cstring(&w, "0123456789"); /* would pass 16 bytes */
	assert_int_equal(jsonw_error(&w), BW_ERR_NOMEM);
	jsonw_array_close(&w);
	assert_int_equal(jsonw_finish(&w), BW_ERR_NOMEM);
	assert_true(buf_len(&b) <= 16);
	buf_free(&b);
	/* escapes count against it too: 3 quotes become 6 bytes */
	buf_init(&b, 7);
	jsonw_init(&w, &b);
	jsonw_string(&w, "\"\"\"", 3);
	assert_int_equal(jsonw_finish(&w), BW_ERR_NOMEM);
	buf_free(&b);
	buf_init(&b, 8);
	jsonw_init(&w, &b);
	jsonw_string(&w, "\"\"\"", 3);
	assert_int_equal(jsonw_finish(&w), BW_OK);
	assert_string_equal(buf_ptr(&b), "\"\\\"\\\"\\\"\"");
	buf_free(&b);
}

/* Fill n bytes in place, as a sealed field is opened into the reply. */
static bw_err
in_place(struct buf *b, struct jsonw *w, const char *s, size_t n, int abort_it)
{
	unsigned char *p;
	jsonw_string_begin(w, n, &p);
	if (p == NULL)
		return jsonw_error(w);
	memcpy(p, s, n);
	if (abort_it)
		jsonw_string_abort(w, BW_ERR_CRYPTO);
	else
		jsonw_string_end(w);
	(void)b;
	return jsonw_error(w);
}

static void
test_string_in_place(void **state)
{
	(void)state;
	static const char *const cases[] = {"", "plain", "a\"b\\c\nd\x01\x1f\x7f", "\"\"\"\"",
					    "caf\xc3\xa9\t\xf0\x9f\x8e\x89"};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++) {
		struct buf b, ref;
		struct jsonw w, rw;
		buf_init(&b, 1 << 16);
		buf_init(&ref, 1 << 16);
		jsonw_init(&w, &b);
		jsonw_init(&rw, &ref);
		jsonw_array_open(&w);
		jsonw_array_open(&rw);
		for (int k = 0; k < 3; k++) {
			assert_int_equal(in_place(&b, &w, cases[i], strlen(cases[i]), 0), BW_OK);
			jsonw_string(&rw, cases[i], strlen(cases[i]));
		}
		jsonw_array_close(&w);
		jsonw_array_close(&rw);
		assert_int_equal(jsonw_finish(&w), BW_OK);
		assert_int_equal(jsonw_finish(&rw), BW_OK);
		assert_string_equal(buf_ptr(&b), buf_ptr(&ref));
		buf_free(&b);
		buf_free(&ref);
	}
	/* a long value growing past a 256-byte step while escaped */
	char big[2000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = i % 3 ? 'x' : '\n';
	struct buf b, ref;
	struct jsonw w;
	buf_init(&b, 1 << 16);
	buf_init(&ref, 1 << 16);
	jsonw_init(&w, &b);
	assert_int_equal(in_place(&b, &w, big, sizeof(big), 0), BW_OK);
	assert_int_equal(jsonw_escape(&ref, big, sizeof(big)), BW_OK);
	assert_int_equal(buf_len(&b), buf_len(&ref) + 2);
	assert_memory_equal(buf_ptr(&b) + 1, buf_ptr(&ref), buf_len(&ref));
	buf_free(&b);
	buf_free(&ref);

	/* invalid UTF-8, or an abort: the buffer as before, the bytes wiped */
	for (int abort_it = 0; abort_it < 2; abort_it++) {
		buf_init(&b, 1 << 16);
		jsonw_init(&w, &b);
		jsonw_array_open(&w);
		jsonw_int(&w, 7);
		size_t before = buf_len(&b);
		const char *secret = abort_it ? "secret value" : "secret \xff value";
		assert_int_not_equal(in_place(&b, &w, secret, strlen(secret), abort_it), BW_OK);
		assert_int_equal(jsonw_error(&w), abort_it ? BW_ERR_CRYPTO : BW_ERR_INVALID);
		assert_int_equal(buf_len(&b), before);
		assert_string_equal(buf_ptr(&b), "[7");
		/* the bytes past the end (still inside the allocation) are zero */
		for (size_t i = before; i < before + strlen(secret) + 2; i++)
			assert_int_equal(buf_ptr(&b)[i], 0);
		jsonw_int(&w, 8); /* sticky */
		assert_string_equal(buf_ptr(&b), "[7");
		buf_free(&b);
	}
}

/* --- the row writer against engine_row ----------------------------------- */

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
};

static int
group_setup(void **state)
{
	(void)state;
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "jsonw");
}

static int
group_teardown(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

static int
open_driver(void **state, const char *driver)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512], otp[64];
	struct tenant *v;
	size_t n;
	*state = NULL;
	if (strcmp(driver, "mariadb") == 0 && !dbenv_have_mariadb()) {
		free(f);
		return 0;
	}
	if (dbenv_open(&f->cfg, driver, tmpdir, "saas_control_jsonw", ++seq, &f->t, err,
		       sizeof(err)) != BW_OK)
		fail_msg("setup: %s", err);
	snprintf(f->slug, sizeof(f->slug), "jw%d", seq);
	if (tenant_create(f->t, f->slug, "admin@jsonw.example", NULL, NULL, otp, sizeof(otp), err,
			  sizeof(err)) != BW_OK)
		fail_msg("create: %s", err);
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, f->slug) == 0)
			f->tn = v[i];
	free(v);
	if (tenancy_connect_tenant(f->t, &f->tn, 0, &f->d, err, sizeof(err)) != BW_OK)
		fail_msg("connect: %s", err);
	assert_non_null(f->pool = pool_new(1 << 20));
	struct actor a = op_system("unit test");
	a.by = "cli:tester";
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

/* Valid UTF-8 with everything that needs escaping, and more. */
#define SAMPLE "Tab\there \"q\" b\\s \x01\x1f caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x8e\x89"

/* The text stored for f in a full row. */
static const char *
sample_text(const struct field_desc *f)
{
	switch (f->type) {
	case FT_ENUM:
		return f->enum_values[0];
	case FT_DATE:
		return "2026-12-02";
	case FT_EMAIL:
		return "ops@example.com";
	default:
		return f->max_len == 0 || f->max_len >= (int)sizeof(SAMPLE) ? SAMPLE : "x";
	}
}

static int64_t
sample_int(const struct field_desc *f)
{
	switch (f->type) {
	case FT_BOOL:
		return 1;
	case FT_MONEY:
		return 123456;
	case FT_REF:
		return 7;
	default:
		if (f->max > f->min)
			return 42 < f->min ? f->min : 42 > f->max ? f->max : 42;
		return 42;
	}
}

static int
is_int_type(const struct field_desc *f)
{
	return f->type == FT_BOOL || f->type == FT_INT || f->type == FT_MONEY || f->type == FT_REF;
}

/* Insert row id of m: every field (full) or only the required ones and defaults. */
static void
insert_row(struct fx *f, const struct module_desc *m, int64_t id, int full)
{
	char *sql = pool_printf(f->pool, "INSERT INTO %s (id, created_at, updated_at, created_by,"
					 " updated_by", m->name);
	char *qs = pool_strdup(f->pool, "?, ?, ?, ?, ?");
	for (size_t k = 0; k < m->nfields; k++) {
		sql = pool_printf(f->pool, "%s, %s", sql, m->fields[k].name);
		qs = pool_printf(f->pool, "%s, ?", qs);
	}
	sql = pool_printf(f->pool, "%s) VALUES (%s)", sql, qs);
	db_stmt *s;
	int row, idx = 6;
	assert_int_equal(db_prepare(f->d, sql, &s), BW_OK);
	assert_int_equal(DB_BIND(s, DB_INT(id), DB_INT(1764646278 + id), DB_INT(1764646338 + id),
				 DB_INT(1), DB_INT(2)),
			 BW_OK);
	for (size_t k = 0; k < m->nfields; k++, idx++) {
		const struct field_desc *fd = &m->fields[k];
		int set = full || (fd->flags & FF_REQUIRED) || fd->def != NULL;
		if (!set) {
			assert_int_equal(db_bind_null(s, idx), BW_OK);
		} else if (fd->flags & FF_ENCRYPTED) {
			const char *v = sample_text(fd);
			unsigned char *sealed;
			size_t len;
			assert_int_equal(field_seal(f->t, &f->tn, m->name, fd->name, id, v, strlen(v),
						    &sealed, &len),
					 BW_OK);
			assert_int_equal(db_bind_blob(s, idx, sealed, len), BW_OK);
			free(sealed);
		} else if (is_int_type(fd)) {
			assert_int_equal(db_bind_int(s, idx, sample_int(fd)), BW_OK);
		} else {
			assert_int_equal(db_bind_text(s, idx, sample_text(fd)), BW_OK);
		}
	}
	if (db_step(s, &row) != BW_OK)
		fail_msg("%s row %lld: %s", m->name, (long long)id, db_errmsg(f->d));
	db_finalize(s);
}

/* engine_row's timestamps as RFC 3339 strings where they are still integers. */
static void
normalise(json_t *o)
{
	static const char *const ts[] = {"created_at", "updated_at"};
	for (size_t i = 0; i < BW_ARRAY_LEN(ts); i++) {
		json_t *v = json_object_get(o, ts[i]);
		if (!json_is_integer(v))
			continue;
		time_t t = (time_t)json_integer_value(v);
		struct tm tm;
		char out[32];
		assert_non_null(gmtime_r(&t, &tm));
		snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		json_object_set_new(o, ts[i], json_string(out));
	}
}

static void
compare_row(struct fx *f, const struct module_desc *m, int64_t id)
{
	const struct engine_mod *em = engine_mod_of(m);
	char *sql = pool_printf(f->pool, "SELECT %s FROM %s WHERE id = ?", em->select_cols, m->name);
	db_stmt *s;
	int row = 0;
	json_t *tree;
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(db_prepare(f->d, sql, &s), BW_OK);
	assert_int_equal(db_bind_int(s, 1, id), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_true(row);
	assert_int_equal(engine_row(&f->op, m, s, 0, &tree), BW_OK);
	assert_int_equal(engine_row_write(&f->op, m, s, &b), BW_OK);
	db_finalize(s);
	json_error_t je;
	json_t *got = json_loads(buf_ptr(&b), 0, &je);
	if (got == NULL)
		fail_msg("%s row %lld: writer gave bad JSON (%s): %s", m->name, (long long)id, je.text,
			 buf_ptr(&b));
	normalise(tree);
	normalise(got);
	char *want = json_dumps(tree, JSON_COMPACT), *have = json_dumps(got, JSON_COMPACT);
	if (!json_equal(tree, got) || strcmp(want, have) != 0)
		fail_msg("%s row %lld:\n engine_row %s\n writer     %s", m->name, (long long)id, want,
			 buf_ptr(&b));
	/* the writer's own bytes are what json_dumps makes of the same tree */
	if (m->present == NULL)
		assert_string_equal(buf_ptr(&b), have);
	free(want);
	free(have);
	json_decref(tree);
	json_decref(got);
	buf_free(&b);
}

static void
test_rows_match_engine_row(void **state)
{
	struct fx *f = *state;
	if (f == NULL) {
		print_message("MariaDB not started (run through make check)\n");
		skip();
	}
	size_t sealed = 0;
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		for (size_t k = 0; k < m->nfields; k++)
			sealed += (m->fields[k].flags & FF_ENCRYPTED) != 0;
		insert_row(f, m, 101, 1);
		insert_row(f, m, 102, 0);
		compare_row(f, m, 101);
		compare_row(f, m, 102);
	}
	assert_true(sealed > 0);
	/* timestamps across the calendar: epoch, before it, leap days, centuries, the last second */
	static const int64_t times[] = {0, -1, -86400, -2208988800LL, 951782400, 951868799,
					1709164800, 4107542399LL, 253402300799LL, 1, 59, 3600};
	const struct module_desc *cm = module_find("customers");
	for (size_t i = 0; i < BW_ARRAY_LEN(times); i++) {
		assert_int_equal(DB_RUN(f->d, "UPDATE customers SET created_at = ?, updated_at = ?"
					      " WHERE id = 101",
					DB_INT(times[i]), DB_INT(times[BW_ARRAY_LEN(times) - 1 - i])),
				 BW_OK);
		compare_row(f, cm, 101);
	}
	print_message("%zu modules, %zu sealed fields: writer == engine_row\n", module_catalog_count,
		      sealed);
}

/* A sealed value moved to another row does not open: the row fails, nothing half-written. */
static void
test_row_with_a_moved_sealed_value_fails(void **state)
{
	struct fx *f = *state;
	if (f == NULL)
		skip();
	const struct module_desc *m = module_find("customers");
	const struct field_desc *fd = NULL;
	for (size_t k = 0; k < m->nfields && fd == NULL; k++)
		if (m->fields[k].flags & FF_ENCRYPTED)
			fd = &m->fields[k];
	assert_non_null(fd);
	insert_row(f, m, 201, 1);
	insert_row(f, m, 202, 1);
	char *sql = pool_printf(f->pool, "UPDATE %s SET %s = (SELECT x FROM (SELECT %s AS x FROM %s"
					 " WHERE id = 201) t) WHERE id = 202",
				m->name, fd->name, fd->name, m->name);
	assert_int_equal(db_exec(f->d, sql), BW_OK);
	const struct engine_mod *em = engine_mod_of(m);
	db_stmt *s;
	int row;
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_append_str(&b, "[{\"ok\":1},"), BW_OK);
	assert_int_equal(
	    db_prepare(f->d, pool_printf(f->pool, "SELECT %s FROM %s WHERE id = 202",
					 em->select_cols, m->name),
		       &s),
	    BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(engine_row_write(&f->op, m, s, &b), BW_ERR_CRYPTO);
	db_finalize(s);
	/* the plain fields before it were written; the moved value was not */
	assert_non_null(strstr(buf_ptr(&b), "\"name\":\"Tab"));
	assert_null(strstr(buf_ptr(&b), "ops@example.com"));
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest writer[] = {
		cmocka_unit_test(test_escapes_match_jansson),
		cmocka_unit_test(test_utf8_passes_and_invalid_is_refused),
		cmocka_unit_test(test_structure_matches_jansson),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_buffer_maximum_is_kept),
		cmocka_unit_test(test_string_in_place),
	};
	const struct CMUnitTest rows[] = {
		cmocka_unit_test_setup_teardown(test_rows_match_engine_row, open_sqlite, close_fx),
		cmocka_unit_test_setup_teardown(test_row_with_a_moved_sealed_value_fails, open_sqlite,
						close_fx),
		cmocka_unit_test_setup_teardown(test_rows_match_engine_row, open_mariadb, close_fx),
		cmocka_unit_test_setup_teardown(test_row_with_a_moved_sealed_value_fails, open_mariadb,
						close_fx),
	};
	int r = cmocka_run_group_tests_name("jsonw", writer, NULL, NULL);
	return r | cmocka_run_group_tests_name("rowjson", rows, group_setup, group_teardown);
}
