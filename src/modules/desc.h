/*
 * modules/desc: PSA modules described as data, and the DDL made from them.
 * One descriptor per module (fields, types, encryption, parent scope,
 * sortable and filterable fields, extra actions) gives the schema for both
 * database drivers, the routes, the permissions, input validation,
 * transparent field encryption and the metadata the web UI renders from.
 * Behaviour beyond CRUD comes as small hooks on the descriptor (module.h),
 * never as a second engine. This header is data only: the schema
 * migrations and field encryption read it from below the engine.
 */
#ifndef BW_MODULE_DESC_H
#define BW_MODULE_DESC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

enum field_type {
	FT_STRING = 1, /* one line of text, at most max_len bytes (required > 0) */
	FT_TEXT,       /* long text, at most max_len bytes */
	FT_INT,        /* integer within [min, max] */
	FT_MONEY,      /* integer cents, never negative, at most max (0: 10^13) */
	FT_BOOL,       /* true/false, stored 0/1 */
	FT_ENUM,       /* one of enum_values */
	FT_REF,        /* id of a row of the table named by ref (a module or "users") */
	FT_DATE,       /* "YYYY-MM-DD", a real calendar date */
	FT_EMAIL,      /* an e-mail address, at most max_len bytes */
};

enum field_flag {
	FF_REQUIRED = 1 << 0,  /* must be given on create; never null */
	FF_ENCRYPTED = 1 << 1, /* sealed at rest (AES-256-GCM, bound to its row) */
	FF_PII = 1 << 2,       /* personal data: exports, erasure; implies nothing else */
	FF_SORT = 1 << 3,      /* ?sort=field allowed (never with FF_ENCRYPTED) */
	FF_FILTER = 1 << 4,    /* ?field=value allowed (never with FF_ENCRYPTED) */
	FF_READONLY = 1 << 5,  /* computed or set by the server; refused in input */
	FF_IMMUTABLE = 1 << 6, /* given on create only; refused on PATCH */
	FF_WRITEONLY = 1 << 7, /* accepted in input, never shown (shown as <name>_set) */
	FF_ACTION = 1 << 8,    /* changed only through an action (e.g. tickets.assign) */
	/*
	 * Sealed and found by exact value: a blind index keeps a keyed MAC of
	 * the normalised value (docs/search.md). Only with FF_ENCRYPTED, never
	 * with FF_WRITEONLY. It reveals which rows hold equal values.
	 */
	FF_BLIND = 1 << 9,
	FF_PHONE = 1 << 10,    /* a telephone number: its blind index keeps digits and a leading + */
};

struct field_desc {
	const char *name;  /* column name: [a-z_][a-z0-9_]* */
	const char *label; /* for the UI */
	enum field_type type;
	unsigned flags;                  /* FF_* */
	int max_len;                     /* FT_STRING/FT_TEXT/FT_EMAIL: bytes */
	int64_t min, max;                /* FT_INT bounds; FT_MONEY max (0: default) */
	const char *const *enum_values;  /* FT_ENUM: NULL-ended */
	const char *ref;                 /* FT_REF: the table referred to */
	const char *same;                /* FT_REF: a field the referred row must share (customer_id) */
	const char *def;                 /* default on create when not given (text form), or NULL */
	int since;                       /* tenant schema version adding the column */
};

/*
 * An action beyond CRUD: POST /api/v1/<module>/:id/<name>, permission
 * "<module>.<name>". It runs in the request's transaction with the row
 * locked; on success it sets *reply (a JSON object, or NULL for the row).
 */
enum action_flag {
	ACTION_DESTRUCTIVE = 1 << 0, /* undoes or destroys (void): guarded like a delete */
	ACTION_ADMIN = 1 << 1,       /* an admin act (revealing a credential): always guarded */
	ACTION_ROUTINE = 1 << 2,     /* ordinary record work (assign, accept): guarded as an edit */
};
struct module_ctx;
struct action_desc {
	const char *name;   /* "assign" */
	const char *label;  /* for the UI */
	unsigned flags;     /* ACTION_*: how the admin IP allowlist treats it */
	bw_err (*run)(struct module_ctx *ctx, json_t *body, json_t **reply);
};

struct module_desc {
	const char *name;   /* table, route segment and permission prefix: "tickets" */
	const char *label;  /* "Tickets" */
	const char *parent; /* name of the FT_REF field naming the parent row, or NULL */
	const struct field_desc *fields;
	size_t nfields;
	const struct action_desc *actions;
	size_t nactions;
	int since; /* tenant schema version creating the table */
	/*
	 * Rows take attachments (docs/files.md): the file routes under
	 * /api/v1/<module>/:id/files and the permissions <module>.attach and
	 * <module>.download come from this flag alone.
	 */
	int attachments;
	/*
	 * Hooks, all optional, all inside the transaction of the change.
	 *
	 * check: after field validation. On create ctx->id is 0, ctx->before
	 * NULL and ctx->input holds every given field plus defaults; on update
	 * ctx->before is the stored row (decrypted, write-only fields too) and
	 * ctx->input only the fields being changed. It may refuse (return
	 * op_fail(ctx->op, ...)) or add/replace members of ctx->input,
	 * read-only ones included (computed totals), which are then written.
	 *
	 * after_write: once the row is created, updated or deleted (delete:
	 * ctx->input NULL, ctx->before the row as it was), e.g. totals on a
	 * parent. It may write other rows with SQL on ctx->d.
	 *
	 * present: adds derived members (warnings) to a row about to be shown.
	 *
	 * can_delete: refuses a delete (reply set) beyond what references
	 * already refuse (a row still referred to is never deleted: 409).
	 */
	bw_err (*check)(struct module_ctx *ctx);
	bw_err (*after_write)(struct module_ctx *ctx);
	void (*present)(const struct module_desc *m, json_t *row);
	bw_err (*can_delete)(struct module_ctx *ctx);
};

/* --- catalog.c: every module ------------------------------------------------ */
extern const struct module_desc *const module_catalog[];
extern const size_t module_catalog_count;
/* The module called name, or NULL. */
const struct module_desc *module_find(const char *name);
/* The field of m called name, or NULL. */
const struct field_desc *module_field(const struct module_desc *m, const char *name);

/* --- schema.c: the tables, as migration steps -------------------------------- */
/*
 * The tenant schema version that gives every module row its "version"
 * (optimistic concurrency: 1 on create, one more on every write). Tables
 * created from then on have the column in their CREATE TABLE; older ones
 * get it added by that version's steps.
 */
#define MODULE_ROW_VERSION_SINCE 12
/*
 * The portable DDL for tenant schema version v: CREATE TABLE for modules
 * with since == v, ALTER TABLE ADD COLUMN for fields with since == v in
 * older modules, their indexes (and at MODULE_ROW_VERSION_SINCE the version
 * column of every older module). NULL-ended, malloc'd (free with
 * module_schema_free), NULL on OOM or when a statement would pass 1 MiB.
 */
char **module_schema_steps(int version);
/* The same for the modules given instead of the catalogue (unit tests). */
char **module_schema_steps_of(const struct module_desc *const *mods, size_t n, int version);
void module_schema_free(char **steps);
#endif
