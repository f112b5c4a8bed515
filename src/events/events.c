/*
 * The outbox: which changes are events, their names, and the row each
 * writes (docs/webhooks.md).
 */
#include "events.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../db/db.h"
#include "../modules/desc.h"
#include "../tenancy/tenancy.h"

/* Changes of the system's own entities that are events, and their names. */
static const struct {
	const char *entity, *action, *type;
} events_system[] = {
    {"api_tokens", "create", "api_tokens.created"},
    {"api_tokens", "revoke", "api_tokens.revoked"},
    {"files", "malware_refused", "files.malware_refused"},
    {"roles", "create", "roles.created"},
    {"roles", "delete", "roles.deleted"},
    {"roles", "update", "roles.updated"},
    {"settings", "update", "settings.updated"},
    {"users", "create", "users.created"},
    {"users", "delete", "users.deleted"},
    {"users", "mfa_disabled", "users.mfa_disabled"},
    {"users", "mfa_enrolled", "users.mfa_enabled"},
    {"users", "password_changed", "users.password_changed"},
    {"users", "unlock", "users.unlocked"},
    {"users", "update", "users.updated"},
};

/* Types that are not a module's row change. */
static const char *const events_other[] = {
    "files.deleted",  /* an attachment removed from a record */
    "files.uploaded", /* an attachment published on a record */
    "hooks.received", /* an inbound provider event, verified and recorded */
};

/* Module actions by the name their event takes (the past tense). */
static const struct {
	const char *action, *past;
} events_past[] = {
    {"accept", "accepted"}, {"assign", "assigned"}, {"decline", "declined"},
    {"reveal_credential", "credential_revealed"}, {"send", "sent"}, {"void", "voided"},
};

static const char *
events_action_past(const char *action)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(events_past); i++)
		if (strcmp(events_past[i].action, action) == 0)
			return events_past[i].past;
	return action;
}

static int
events_has_status(const struct module_desc *m)
{
	for (size_t k = 0; k < m->nfields; k++)
		if (strcmp(m->fields[k].name, "status") == 0)
			return 1;
	return 0;
}

/* --- the catalogue ------------------------------------------------------- */

static char **events_types;
static size_t events_ntypes;
static pthread_once_t events_once = PTHREAD_ONCE_INIT;

static int
events_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
events_add(size_t *n, const char *a, const char *b)
{
	char *s = malloc(strlen(a) + strlen(b) + 2);
	if (s == NULL)
		abort(); /* at start-up, a few KiB: nothing sensible to do */
	strcpy(s, a);
	if (*b != '\0') {
		strcat(s, ".");
		strcat(s, b);
	}
	events_types[(*n)++] = s;
}

static void
events_build(void)
{
	size_t cap = BW_ARRAY_LEN(events_system) + BW_ARRAY_LEN(events_other), n = 0;
	for (size_t i = 0; i < module_catalog_count; i++)
		cap += 4 + module_catalog[i]->nactions;
	events_types = calloc(cap, sizeof(*events_types));
	if (events_types == NULL)
		abort();
	for (size_t i = 0; i < BW_ARRAY_LEN(events_system); i++)
		events_add(&n, events_system[i].type, "");
	for (size_t i = 0; i < BW_ARRAY_LEN(events_other); i++)
		events_add(&n, events_other[i], "");
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		events_add(&n, m->name, "created");
		events_add(&n, m->name, "updated");
		events_add(&n, m->name, "deleted");
		if (events_has_status(m))
			events_add(&n, m->name, "status_changed");
		for (size_t k = 0; k < m->nactions; k++)
			events_add(&n, m->name, events_action_past(m->actions[k].name));
	}
	qsort(events_types, n, sizeof(*events_types), events_cmp);
	/* Two sources naming one type would be one type: keep it once. */
	size_t w = 0;
	for (size_t r = 0; r < n; r++) {
		if (w > 0 && strcmp(events_types[w - 1], events_types[r]) == 0) {
			free(events_types[r]);
			continue;
		}
		events_types[w++] = events_types[r];
	}
	events_ntypes = w;
}

static int
events_known(const char *type)
{
	pthread_once(&events_once, events_build);
	return bsearch(&type, events_types, events_ntypes, sizeof(*events_types), events_cmp) != NULL;
}

json_t *
events_catalog(void)
{
	pthread_once(&events_once, events_build);
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < events_ntypes; i++)
		if (json_array_append_new(a, json_string(events_types[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

int
events_pattern_match(const char *pattern, const char *type)
{
	if (strcmp(pattern, "*") == 0)
		return 1;
	size_t n = strlen(pattern);
	if (n >= 2 && strcmp(pattern + n - 2, ".*") == 0)
		return strncmp(pattern, type, n - 1) == 0;
	return strcmp(pattern, type) == 0;
}

int
events_pattern_valid(const char *pattern)
{
	if (pattern == NULL || strlen(pattern) > EVENT_TYPE_MAX)
		return 0;
	if (strcmp(pattern, "*") == 0)
		return 1;
	size_t n = strlen(pattern);
	if (n >= 3 && strcmp(pattern + n - 2, ".*") == 0) {
		pthread_once(&events_once, events_build);
		for (size_t i = 0; i < events_ntypes; i++)
			if (events_pattern_match(pattern, events_types[i]))
				return 1;
		return 0;
	}
	return events_known(pattern);
}

const char *
events_type_permission(const char *type, char *buf, size_t n)
{
	static const struct {
		const char *prefix, *perm;
	} sys[] = {
	    {"users.", "users.view"},     {"api_tokens.", "users.view"},
	    {"roles.", "roles.view"},     {"settings.", "settings.view"},
	    {"files.", "audit.view"},     {"hooks.", "webhooks.view"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(sys); i++)
		if (strncmp(type, sys[i].prefix, strlen(sys[i].prefix)) == 0)
			return sys[i].perm;
	size_t m = strcspn(type, ".");
	snprintf(buf, n, "%.*s.view", (int)m, type);
	return buf;
}

bw_err
events_may_subscribe(struct op *op, const char *pattern, int (*may_fn)(struct op *, const char *),
		     const char **denied)
{
	pthread_once(&events_once, events_build);
	*denied = NULL;
	for (size_t i = 0; i < events_ntypes; i++) {
		char buf[EVENT_TYPE_MAX + 8];
		if (!events_pattern_match(pattern, events_types[i]))
			continue;
		const char *perm = events_type_permission(events_types[i], buf, sizeof(buf));
		if (may_fn(op, perm) != 1) { /* 0 no, -1 unknown: refused either way */
			*denied = pool_printf(op->pool, "%s needs %s", events_types[i], perm);
			return BW_ERR_DENIED;
		}
	}
	return BW_OK;
}

/* --- writing ---------------------------------------------------------------- */

void
event_public_id(int64_t id, char out[32])
{
	snprintf(out, 32, "evt_%lld", (long long)id);
}

static json_t *
events_actor(const struct op *op)
{
	const struct actor *a = &op->actor;
	switch (a->kind) {
	case ACTOR_SESSION:
		return json_pack("{s:s, s:I, s:s}", "kind", "user", "id", (json_int_t)a->user.id,
				 "label", a->user.email);
	case ACTOR_TOKEN:
		return json_pack("{s:s, s:I, s:I, s:s}", "kind", "token", "id",
				 (json_int_t)a->token_id, "user_id", (json_int_t)a->user.id, "label",
				 a->user.email);
	case ACTOR_SYSTEM:
		return json_pack("{s:s, s:s}", "kind", "system", "label",
				 a->label != NULL ? a->label : "system");
	case ACTOR_NONE:
		return json_pack("{s:s}", "kind", "none");
	default:
		abort();
	}
}

static int64_t
events_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bw_err
event_emit(struct op *op, const char *type, const char *entity, int64_t entity_id, json_t *data,
	   int64_t *id)
{
	db *d;
	int64_t eid = 0, at = events_now_ms();
	char pub[32], ts[UTIL_TIME_LEN];
	char *text = NULL;
	unsigned char *sealed = NULL;
	size_t slen = 0;
	json_t *body = NULL;
	if (id != NULL)
		*id = 0;
	if (!events_known(type) || op->tenant == NULL)
		return op_fail(op, BW_ERR_INTERNAL, NULL);
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	e = DB_INSERT(d, &eid,
		      "INSERT INTO events (type, entity, entity_id, at_ms, payload, dispatched)"
		      " VALUES (?, ?, ?, ?, NULL, 0)",
		      DB_TEXT(type), DB_TEXT(entity), DB_INT(entity_id), DB_INT(at));
	if (e != BW_OK)
		goto out;
	event_public_id(eid, pub);
	body = json_pack("{s:s, s:s, s:s, s:s, s:O}", "id", pub, "type", type, "timestamp",
			 util_time_rfc3339(at / 1000, ts), "tenant", op->tn.slug, "data", data);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if ((e = field_seal(op->ten, &op->tn, "events", "payload", eid, text, strlen(text), &sealed,
			    &slen)) != BW_OK)
		goto out;
	e = DB_RUN(d, "UPDATE events SET payload = ? WHERE id = ?", DB_BLOB(sealed, slen),
		   DB_INT(eid));
out:
	free(sealed);
	free(text);
	json_decref(body);
	if (e != BW_OK) {
		log_error("tenant %s: event %s not written: %s", op->tn.slug, type, bw_strerror(e));
		return op_fail(op, e, NULL);
	}
	if (id != NULL)
		*id = eid;
	return BW_OK;
}

/* One event with the common members of a change: entity, id, actor, changes, object. */
static bw_err
events_write(struct op *op, const char *type, const char *entity, int64_t entity_id,
	     json_t *before, json_t *after, json_t *object, json_t *extra)
{
	json_t *data = json_pack("{s:s, s:I, s:o}", "entity", entity, "id", (json_int_t)entity_id,
				 "actor", events_actor(op));
	if (data == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	int bad = 0;
	if (before != NULL || after != NULL) {
		json_t *ch = json_object();
		bad |= ch == NULL;
		if (ch != NULL) {
			if (before != NULL)
				bad |= json_object_set(ch, "before", before) != 0;
			if (after != NULL)
				bad |= json_object_set(ch, "after", after) != 0;
			bad |= json_object_set_new(data, "changes", ch) != 0;
		}
	}
	if (object != NULL)
		bad |= json_object_set(data, "object", object) != 0;
	if (extra != NULL)
		bad |= json_object_update(data, extra) != 0;
	bw_err e = bad ? op_fail(op, BW_ERR_NOMEM, NULL)
		       : event_emit(op, type, entity, entity_id, data, NULL);
	json_decref(data);
	return e;
}

/* "<entity>.status_changed" when the change moved a status field. */
static bw_err
events_status(struct op *op, const struct module_desc *m, int64_t id, json_t *before,
	      json_t *after)
{
	json_t *to = json_object_get(after, "status");
	if (m == NULL || !events_has_status(m) || !json_is_string(to))
		return BW_OK;
	json_t *from = json_object_get(before, "status");
	if (json_is_string(from) && json_equal(from, to))
		return BW_OK;
	char type[EVENT_TYPE_MAX + 1];
	snprintf(type, sizeof(type), "%s.status_changed", m->name);
	json_t *extra = json_pack("{s:O?, s:O}", "from", from, "to", to);
	if (extra == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	bw_err e = events_write(op, type, m->name, id, NULL, NULL, NULL, extra);
	json_decref(extra);
	return e;
}

/* The other rows a change touched (a payment marking its invoice paid): updated. */
static bw_err
events_effects(struct op *op, json_t *effects)
{
	size_t i;
	json_t *fx;
	json_array_foreach(effects, i, fx)
	{
		const char *ent = json_string_value(json_object_get(fx, "entity"));
		json_t *eid = json_object_get(fx, "entity_id");
		const struct module_desc *m = ent != NULL ? module_find(ent) : NULL;
		if (m == NULL || !json_is_integer(eid))
			continue;
		json_t *b = json_object_get(fx, "before"), *a = json_object_get(fx, "after");
		char type[EVENT_TYPE_MAX + 1];
		snprintf(type, sizeof(type), "%s.updated", m->name);
		bw_err e = events_write(op, type, m->name, json_integer_value(eid), b, a, NULL, NULL);
		if (e == BW_OK)
			e = events_status(op, m, json_integer_value(eid), b, a);
		if (e != BW_OK)
			return e;
	}
	return BW_OK;
}

bw_err
events_from_change(struct op *op, const char *entity, int64_t entity_id, const char *action,
		   json_t *before, json_t *after, json_t *effects, json_t *object)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(events_system); i++)
		if (strcmp(events_system[i].entity, entity) == 0 &&
		    strcmp(events_system[i].action, action) == 0)
			return events_write(op, events_system[i].type, entity, entity_id, before,
					    after, object, NULL);
	const struct module_desc *m = module_find(entity);
	if (m == NULL)
		return BW_OK; /* sign-ins, keys, jobs, webhooks themselves: not events */
	char type[EVENT_TYPE_MAX + 1];
	bw_err e = BW_OK;
	if (strcmp(action, "attach") == 0 || strcmp(action, "detach") == 0) {
		json_t *extra = json_pack("{s:s, s:I}", "record_module", m->name, "record_id",
					  (json_int_t)entity_id);
		if (extra == NULL)
			return op_fail(op, BW_ERR_NOMEM, NULL);
		e = events_write(op, *action == 'a' ? "files.uploaded" : "files.deleted", m->name,
				 entity_id, before, after, NULL, extra);
		json_decref(extra);
		return e;
	}
	if (strcmp(action, "create") == 0 || strcmp(action, "update") == 0 ||
	    strcmp(action, "delete") == 0) {
		snprintf(type, sizeof(type), "%s.%s", m->name,
			 *action == 'c' ? "created" : *action == 'u' ? "updated" : "deleted");
	} else {
		int found = 0;
		for (size_t k = 0; k < m->nactions; k++)
			found |= strcmp(m->actions[k].name, action) == 0;
		if (!found)
			return BW_OK; /* an export, a read: not a change */
		snprintf(type, sizeof(type), "%s.%s", m->name, events_action_past(action));
	}
	e = events_write(op, type, m->name, entity_id, before, after, object, NULL);
	/* A status set at creation is the row's first, not a change of it. */
	if (e == BW_OK && strcmp(action, "delete") != 0 && strcmp(action, "create") != 0)
		e = events_status(op, m, entity_id, before, after);
	if (e == BW_OK)
		e = events_effects(op, effects);
	return e;
}

bw_err
event_body(struct op *op, int64_t id, char **body, size_t *len, char *type)
{
	db *d;
	db_stmt *s;
	int row;
	*body = NULL;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	if ((e = db_prepare_cached(d, "SELECT type, payload FROM events WHERE id = ?", &s)) != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		size_t n = 0;
		const void *p = row ? db_col_blob(s, 1, &n) : NULL;
		const char *t = row ? db_col_text(s, 0) : NULL;
		if (p == NULL || t == NULL)
			e = BW_ERR_NOTFOUND;
		else {
			snprintf(type, EVENT_TYPE_MAX + 1, "%s", t);
			e = field_open(op->ten, op->tn.slug, "events", "payload", id, p, n, body, len);
		}
	}
	db_done(s);
	return e;
}
