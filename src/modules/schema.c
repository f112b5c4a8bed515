/*
 * The module tables, generated from the descriptors as migration steps.
 * Every module table has the same frame (id, version, created/updated time
 * and user) around its declared fields; encrypted fields are blobs, references
 * are indexed (deletes check them), sortable and filterable fields too.
 */
#include "desc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The portable column type of a field. */
static const char *
schema_type(const struct field_desc *f, char *buf, size_t len)
{
	if (f->flags & FF_ENCRYPTED)
		return "@BLOB";
	switch (f->type) {
	case FT_STRING:
	case FT_EMAIL:
		snprintf(buf, len, "@STR(%d)", f->max_len);
		return buf;
	case FT_ENUM:
		return "@STR(32)";
	case FT_DATE:
		return "@STR(10)";
	case FT_TEXT:
		return "@TEXT";
	case FT_INT:
	case FT_MONEY:
	case FT_BOOL:
	case FT_REF:
		return "@INT";
	default:
		abort();
	}
}

/* " name TYPE [NOT NULL]" for a column; required fields are NOT NULL only in new tables. */
static int
schema_column(const struct field_desc *f, int in_create, char *out, size_t len)
{
	char tb[32];
	/* Blobs and TEXT cannot take defaults on every MariaDB version: leave them nullable. */
	int notnull = in_create && (f->flags & FF_REQUIRED) && !(f->flags & FF_ENCRYPTED);
	int n = snprintf(out, len, "%s %s%s", f->name, schema_type(f, tb, sizeof(tb)),
			 notnull ? " NOT NULL" : "");
	return n > 0 && (size_t)n < len ? 0 : -1;
}

struct steps {
	char **v;
	size_t n, cap;
	int failed;
};

static void
steps_add(struct steps *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
steps_add(struct steps *s, const char *fmt, ...)
{
	if (s->failed)
		return;
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **nv = realloc(s->v, cap * sizeof(*nv));
		if (nv == NULL) {
			s->failed = 1;
			return;
		}
		s->v = nv;
		s->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s->v[s->n], fmt, ap);
	va_end(ap);
	if (r < 0) {
		s->v[s->n] = NULL; /* undefined after a failure: keep the list NULL-ended */
		s->failed = 1;
		return;
	}
	s->v[++s->n] = NULL;
}

/* Indexes for one field of m: references, sort and filter fields. */
static void
schema_indexes(struct steps *s, const struct module_desc *m, const struct field_desc *f)
{
	if (f->flags & FF_ENCRYPTED)
		return;
	if (f->type == FT_REF || (f->flags & (FF_SORT | FF_FILTER)))
		if (f->type != FT_TEXT)
			steps_add(s, "CREATE INDEX %s_%s ON %s (%s)", m->name, f->name, m->name,
				  f->name);
}

/*
 * A CREATE TABLE statement grows with its fields: a buffer that grows as
 * needed (doubling), up to SCHEMA_SQL_MAX bytes, past which the statement
 * fails instead of being cut. The old fixed 4 KiB buffer let `cap - off`
 * wrap once a table outgrew it, and snprintf then wrote past its end.
 */
#define SCHEMA_SQL_MAX (1024u * 1024u)

struct sqlbuf {
	char *p;
	size_t len, cap;
	int failed;
};

static void
sqlbuf_add(struct sqlbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sqlbuf_add(struct sqlbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->failed)
		return;
	va_start(ap, fmt);
	int r = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	/* len < cap always holds, so neither sum below can overflow. */
	if (r < 0 || (size_t)r >= SCHEMA_SQL_MAX - b->len) {
		b->failed = 1;
		return;
	}
	size_t need = b->len + (size_t)r + 1;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < need)
			cap *= 2; /* need <= SCHEMA_SQL_MAX: cannot overflow */
		char *np = realloc(b->p, cap);
		if (np == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)r;
}

/* The CREATE TABLE of m at version, or NULL (no memory, too long, a field too long). */
static char *
schema_create_table(const struct module_desc *m, int version)
{
	struct sqlbuf b = {0};
	char col[160];
	sqlbuf_add(&b, "CREATE TABLE %s ( id @ID", m->name);
	if (version >= MODULE_ROW_VERSION_SINCE)
		sqlbuf_add(&b, ", version @INT NOT NULL DEFAULT 1");
	for (size_t k = 0; k < m->nfields && !b.failed; k++) {
		if (m->fields[k].since > version)
			continue;
		if (schema_column(&m->fields[k], 1, col, sizeof(col)) != 0)
			b.failed = 1; /* a descriptor bug: caught by the unit tests */
		else
			sqlbuf_add(&b, ", %s", col);
	}
	sqlbuf_add(&b,
		   ", created_at @INT NOT NULL, updated_at @INT NOT NULL,"
		   " created_by @INT NOT NULL, updated_by @INT NOT NULL)@OPTS");
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

char **
module_schema_steps_of(const struct module_desc *const *mods, size_t nmods, int version)
{
	struct steps s = {0};
	char col[160];
	for (size_t i = 0; i < nmods && !s.failed; i++) {
		const struct module_desc *m = mods[i];
		if (m->since == version) {
			char *sql = schema_create_table(m, version);
			if (sql == NULL) {
				s.failed = 1;
				break;
			}
			steps_add(&s, "%s", sql);
			free(sql);
			for (size_t k = 0; k < m->nfields; k++)
				if (m->fields[k].since <= version)
					schema_indexes(&s, m, &m->fields[k]);
			steps_add(&s, "CREATE INDEX %s_updated ON %s (updated_at)", m->name, m->name);
		} else if (m->since < version) {
			/* Tables made before row versions existed: every row starts at 1. */
			if (version == MODULE_ROW_VERSION_SINCE)
				steps_add(&s, "ALTER TABLE %s ADD COLUMN version @INT NOT NULL DEFAULT 1",
					  m->name);
			for (size_t k = 0; k < m->nfields; k++) {
				if (m->fields[k].since != version)
					continue;
				if (schema_column(&m->fields[k], 0, col, sizeof(col)) != 0) {
					s.failed = 1;
					break;
				}
				steps_add(&s, "ALTER TABLE %s ADD COLUMN %s", m->name, col);
				schema_indexes(&s, m, &m->fields[k]);
			}
		}
	}
	if (!s.failed && s.v == NULL && (s.v = calloc(1, sizeof(*s.v))) == NULL)
		s.failed = 1; /* a version with no module changes: an empty list */
	if (s.failed) {
		module_schema_free(s.v);
		return NULL;
	}
	return s.v;
}

char **
module_schema_steps(int version)
{
	return module_schema_steps_of(module_catalog, module_catalog_count, version);
}

void
module_schema_free(char **steps)
{
	if (steps == NULL)
		return;
	for (size_t i = 0; steps[i] != NULL; i++)
		free(steps[i]);
	free(steps);
}
