/*
 * The module tables, generated from the descriptors as migration steps.
 * Every module table has the same frame (id, created/updated time and
 * user) around its declared fields; encrypted fields are blobs, references
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

char **
module_schema_steps(int version)
{
	struct steps s = {0};
	char col[160];
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		if (m->since == version) {
			size_t cap = 4096, off = 0;
			char *sql = malloc(cap);
			if (sql == NULL) {
				s.failed = 1;
				break;
			}
			off += (size_t)snprintf(sql + off, cap - off, "CREATE TABLE %s ( id @ID",
						m->name);
			for (size_t k = 0; k < m->nfields; k++) {
				if (m->fields[k].since > version)
					continue;
				if (schema_column(&m->fields[k], 1, col, sizeof(col)) != 0)
					abort(); /* a descriptor bug: caught by the unit tests */
				off += (size_t)snprintf(sql + off, cap - off, ", %s", col);
			}
			off += (size_t)snprintf(sql + off, cap - off,
						", created_at @INT NOT NULL, updated_at @INT NOT NULL,"
						" created_by @INT NOT NULL, updated_by @INT NOT NULL)@OPTS");
			if (off >= cap)
				abort();
			steps_add(&s, "%s", sql);
			free(sql);
			for (size_t k = 0; k < m->nfields; k++)
				if (m->fields[k].since <= version)
					schema_indexes(&s, m, &m->fields[k]);
			steps_add(&s, "CREATE INDEX %s_updated ON %s (updated_at)", m->name, m->name);
		} else if (m->since < version) {
			for (size_t k = 0; k < m->nfields; k++) {
				if (m->fields[k].since != version)
					continue;
				if (schema_column(&m->fields[k], 0, col, sizeof(col)) != 0)
					abort();
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

void
module_schema_free(char **steps)
{
	if (steps == NULL)
		return;
	for (size_t i = 0; steps[i] != NULL; i++)
		free(steps[i]);
	free(steps);
}
