/*
 * bench/rowjson: a page of 100 customers (phone, address and e-mail
 * sealed: 300 openings) made into the list reply two ways, in the same run
 * on the same rows:
 *   jansson: engine_row per row into a json_t array, the envelope packed,
 *            json_dumps (what list_api.c and server_respond do today)
 *   writer:  engine_row_write per row straight into one bounded buffer
 *            (src/modules/rowjson.c, src/core/jsonw.c)
 * The query runs in both (the statement cached, as a request would).
 * Prints pages/s, rows/s, the ratio and the process's VmHWM before and
 * after; with --soak N, N more seconds of the writer with VmHWM checked
 * every second (it must stay flat).
 * usage: rowjson [--seconds N] [--soak N] --var DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core/jsonw.h"
#include "../src/db/migrate.h"
#include "../src/modules/engine.h"
#include "../src/op/op.h"
#include "../src/tenancy/tenancy.h"
#include "bench.h"

#define ROWS 100

static const char *sql;

static int
page_jansson(struct op *op, const struct module_desc *m, size_t *bytes)
{
	db_stmt *s;
	int row;
	json_t *data = json_array();
	if (data == NULL || db_prepare_cached(op->d, sql, &s) != BW_OK)
		return -1;
	int n = 0;
	while (db_step(s, &row) == BW_OK && row) {
		json_t *o;
		if (engine_row(op, m, s, 0, &o) != BW_OK || json_array_append_new(data, o) != 0)
			break;
		n++;
	}
	db_done(s);
	json_t *env = json_pack("{s:o, s:i, s:i, s:b, s:n}", "data", data, "total", n, "limit",
				ROWS, "has_more", 0, "next_cursor");
	char *body = env ? json_dumps(env, JSON_COMPACT) : NULL;
	json_decref(env);
	if (body == NULL || n != ROWS) {
		fprintf(stderr, "rowjson: jansson page: %d rows\n", n);
		free(body);
		return -1;
	}
	*bytes = strlen(body);
	free(body);
	return 0;
}

static int
page_writer(struct op *op, const struct module_desc *m, size_t *bytes)
{
	db_stmt *s;
	int row, n = 0;
	struct buf b;
	struct jsonw w;
	buf_init(&b, 16u << 20);
	jsonw_init(&w, &b);
	if (db_prepare_cached(op->d, sql, &s) != BW_OK)
		return -1;
	jsonw_object_open(&w);
	jsonw_key(&w, "data");
	jsonw_array_open(&w);
	while (db_step(s, &row) == BW_OK && row) {
		if (engine_row_jsonw(op, m, s, &w) != BW_OK)
			break;
		n++;
	}
	db_done(s);
	jsonw_array_close(&w);
	jsonw_key(&w, "total");
	jsonw_int(&w, n);
	jsonw_key(&w, "limit");
	jsonw_int(&w, ROWS);
	jsonw_key(&w, "has_more");
	jsonw_bool(&w, 0);
	jsonw_key(&w, "next_cursor");
	jsonw_null(&w);
	jsonw_object_close(&w);
	char *body;
	size_t len;
	if (jsonw_finish(&w) != BW_OK || n != ROWS || buf_take(&b, &body, &len) != BW_OK) {
		fprintf(stderr, "rowjson: writer page: %d rows (%s)\n", n, bw_strerror(jsonw_error(&w)));
		buf_free(&b);
		return -1;
	}
	*bytes = len;
	free(body); /* server_respond would hand it to libmicrohttpd */
	return 0;
}

static double
run(int (*page)(struct op *, const struct module_desc *, size_t *), struct op *op,
    const struct module_desc *m, double secs, size_t *bytes)
{
	uint64_t n = 0, t0 = util_now_us(), el, budget = (uint64_t)(secs * 1e6);
	while ((el = util_now_us() - t0) < budget) {
		if (page(op, m, bytes) != 0) {
			fprintf(stderr, "rowjson: a page failed\n");
			exit(1);
		}
		n++;
	}
	return (double)n * 1e6 / (double)el;
}

int
main(int argc, char **argv)
{
	double secs = 3.0, soak = 0;
	const char *var = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (strcmp(argv[i], "--soak") == 0 && i + 1 < argc)
			soak = atof(argv[++i]);
		else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc)
			var = argv[++i];
		else
			var = NULL, i = argc;
	}
	if (var == NULL) {
		fprintf(stderr, "usage: rowjson [--seconds N] [--soak N] --var DIR\n");
		return 2;
	}
	struct config cfg;
	struct tenancy *t;
	char err[512], otp[64];
	int from, to;
	if (bench_config(&cfg, "sqlite", var) != 0)
		return 2;
	if (tenancy_open(&cfg, 1, &t, err, sizeof(err)) != BW_OK ||
	    migrate_run(tenancy_control(t), &migrate_control, &from, &to, err, sizeof(err)) != BW_OK ||
	    tenant_create(t, "acme", "a@b.co", "bench-password-0123", NULL, otp, sizeof(otp), err,
			  sizeof(err)) != BW_OK) {
		fprintf(stderr, "rowjson: %s\n", err);
		return 1;
	}
	struct tenant *v;
	size_t nt;
	db *d;
	if (tenant_list(t, &v, &nt, err, sizeof(err)) != BW_OK || nt != 1 ||
	    tenancy_connect_tenant(t, &v[0], 0, &d, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "rowjson: %s\n", err);
		return 1;
	}
	pool *p = pool_new(1 << 20);
	struct actor a = op_system("bench");
	a.by = "cli:bench";
	struct op op;
	op_init(&op, p, &cfg, t, &v[0], d, &a);
	const struct module_desc *m = module_find("customers");
	for (int i = 0; i < ROWS; i++) {
		char name[64], phone[32], addr[96], email[64];
		snprintf(name, sizeof(name), "Customer %03d Holdings", i);
		snprintf(phone, sizeof(phone), "+1 555 01%02d", i);
		snprintf(addr, sizeof(addr), "%d Long Street, Suite %d, Springfield, 12345", i, i);
		snprintf(email, sizeof(email), "ops%d@customer%d.example", i, i);
		json_t *in = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "phone", phone, "address",
				       addr, "email", email), *row = NULL;
		if (module_create(&op, m, in, &row) != BW_OK) {
			fprintf(stderr, "rowjson: seeding failed\n");
			return 1;
		}
		json_decref(in);
		json_decref(row);
		op_clear(&op);
	}
	static char q[4096];
	snprintf(q, sizeof(q), "SELECT %s FROM customers ORDER BY id LIMIT %d",
		 engine_mod_of(m)->select_cols, ROWS);
	sql = q;
	size_t bj = 0, bw = 0;
	long hwm0 = bench_status_kib("VmHWM:");
	double pj = run(page_jansson, &op, m, secs, &bj);
	long hwm1 = bench_status_kib("VmHWM:");
	double pw = run(page_writer, &op, m, secs, &bw);
	long hwm2 = bench_status_kib("VmHWM:");
	printf("== a page of %d customers, 3 sealed fields each (%zu / %zu bytes)\n", ROWS, bj, bw);
	printf("jansson (engine_row + json_dumps): %8.0f pages/s  %9.0f rows/s\n", pj, pj * ROWS);
	printf("writer  (engine_row_write):        %8.0f pages/s  %9.0f rows/s\n", pw, pw * ROWS);
	printf("writer / jansson:                  %8.2f\n", pw / pj);
	printf("VmHWM: %ld kB at start, %ld kB after jansson, %ld kB after the writer\n", hwm0, hwm1,
	       hwm2);
	if (soak > 0) {
		long first = 0, last = 0;
		for (int sec = 0; sec < (int)soak; sec++) {
			(void)run(page_writer, &op, m, 1.0, &bw);
			last = bench_status_kib("VmHWM:");
			if (sec == 0)
				first = last;
		}
		printf("soak: %.0f s of the writer: VmHWM %ld kB after 1 s, %ld kB at the end (%+ld kB)\n",
		       soak, first, last, last - first);
	}
	db_close(d);
	pool_free(p);
	free(v);
	tenancy_close(t);
	return 0;
}
