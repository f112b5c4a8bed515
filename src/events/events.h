/*
 * events: the outbox. Every change a subscriber can care about writes an
 * event row in the transaction of the change and its audit row (the audit
 * layer calls events_from_change() for every row it appends), so an event
 * exists exactly when its change committed. The event is kept as it will
 * be delivered (Standard Webhooks' shape: id, type, timestamp, data),
 * sealed with the tenant's data key; the job runner fans it out to the
 * subscriptions (src/webhooks) and marks it dispatched.
 */
#ifndef BW_EVENTS_H
#define BW_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../op/op.h"

#define EVENT_TYPE_MAX 96

/*
 * The events of one change that audit row (entity, entity_id, action,
 * before, after, effects) records, written in op's transaction. object
 * (borrowed, or NULL) is the row as the API shows it after the change.
 * Changes nobody subscribes to (sign-ins, exports, key rotation) write
 * nothing. BW_OK, or the error (recorded in op) on which the caller rolls
 * the change back.
 */
bw_err events_from_change(struct op *op, const char *entity, int64_t entity_id,
			  const char *action, json_t *before, json_t *after, json_t *effects,
			  json_t *object) BW_MUST_USE;

/*
 * Write one event of type (a name events_catalog() lists) about (entity,
 * entity_id) with data (borrowed), in op's transaction; its id into *id
 * when id is not NULL.
 */
bw_err event_emit(struct op *op, const char *type, const char *entity, int64_t entity_id,
		  json_t *data, int64_t *id) BW_MUST_USE;

/* The event id of row id as the API and deliveries show it: "evt_<id>". */
void event_public_id(int64_t id, char out[32]);

/*
 * Event id's delivered body (the opened payload, malloc'd, NUL-ended) and
 * its type into type (EVENT_TYPE_MAX + 1 bytes). BW_ERR_NOTFOUND, BW_ERR_CRYPTO
 * for a payload that does not open.
 */
bw_err event_body(struct op *op, int64_t id, char **body, size_t *len, char *type) BW_MUST_USE;

/* Every event type one may subscribe to, sorted (a new JSON array of strings). */
json_t *events_catalog(void);
/*
 * 1 when pattern is a type of the catalogue, "<prefix>.*" of one, or "*";
 * 0 otherwise.
 */
int events_pattern_valid(const char *pattern);
/*
 * The permission that reads what an event of type carries (see
 * events_may_subscribe): a static name, or buf (n bytes) filled.
 */
const char *events_type_permission(const char *type, char *buf, size_t n);
/*
 * Whether the actor of op may receive every event pattern matches: each
 * type's data is what a permission reads (<module>.view for a module's
 * rows, users.view, roles.view, settings.view, audit.view for files,
 * webhooks.view for inbound events), asked of may_fn (rbac's may(), which
 * this layer cannot name). BW_OK, or BW_ERR_DENIED with *denied saying
 * which type needs which permission (pool text). Nothing recorded.
 */
bw_err events_may_subscribe(struct op *op, const char *pattern,
			    int (*may_fn)(struct op *, const char *), const char **denied) BW_MUST_USE;
/* 1 when type matches pattern ("*", "tickets.*", or equal). */
int events_pattern_match(const char *pattern, const char *type);

#endif
