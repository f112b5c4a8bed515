/*
 * rbac: roles and permissions per tenant. A permission is "<module>.<verb>"
 * (customers.view, tickets.assign) or a system one (users.edit,
 * roles.create, settings.edit, audit.view, admin.keys). Every route names
 * the permission it needs and the pipeline checks it before the handler,
 * on every request, against the roles the user holds at that moment.
 *
 * Built-in roles (admin, staff, billing, sales, dispatch, read_only) are
 * rules over the permission catalogue, so a module added later is covered
 * without a migration; custom roles hold explicit permission lists.
 * "self.*" permissions (one's own account) belong to every signed-in user.
 */
#ifndef BW_RBAC_H
#define BW_RBAC_H

#include <stdint.h>

#include "../core/core.h"
#include "../db/db.h"
#include "../op/op.h"

#define RBAC_PERM_MAX 100 /* bytes of a permission name */
#define RBAC_ROLE_PERMS_MAX 1024
#define RBAC_ROLES_PER_USER 16

/* The built-in roles, by key (also their names in the roles table). */
extern const char *const rbac_builtin_names[];
extern const size_t rbac_builtin_count;

/* 1 if built-in role key grants perm, 0 if not (unknown key: 0). */
int rbac_builtin_grants(const char *key, const char *perm);
/* A permission name is well-formed: [a-z_]+ "." [a-z_]+ (or "*" when star_ok). */
int rbac_perm_valid(const char *perm, int star_ok);

/*
 * Whether user_id holds perm now, through any role: 1 yes, 0 no, -1 on a
 * database error (the caller refuses: fail closed). self.* is always 1.
 */
int rbac_user_has(db *d, int64_t user_id, const char *perm);

/*
 * The one permission rule: whether op's actor may do perm now. A system
 * actor (the operator's CLI, a job) may; nobody else may without a
 * session or token. self.* belongs to every signed-in user; the route's
 * own permission is answered from the roles read with the session or
 * token, any other from the roles held now (one statement, so a request
 * under way when its user was demoted grants nothing the user lost); a
 * token also needs perm in its scopes, whoever owns it.
 * 1 yes, 0 no, -1 when the database could not say (refuse: fail closed).
 */
int may(struct op *op, const char *perm);
/*
 * may() as an error: BW_OK, BW_ERR_DENIED with why (a token's scopes or
 * the permission it needs) or BW_ERR_UNAVAILABLE, recorded in op.
 */
bw_err may_or_fail(struct op *op, const char *perm) BW_MUST_USE;
/* Every permission the live route table uses, sorted, without duplicates (op->perms). */
bw_err rbac_catalog(struct op *op, const char *const **out, size_t *n) BW_MUST_USE;
/*
 * Whether op's actor may act on user uid (change, delete, unlock, sign
 * out): only someone who holds everything uid holds (a system actor
 * does). BW_OK, or BW_ERR_DENIED / the database's error, recorded in op.
 */
bw_err rbac_may_manage(struct op *op, int64_t uid) BW_MUST_USE;

/* A row of the roles table; builtin is the built-in key, "" for a custom role. */
struct rbac_role {
	int64_t id;
	int64_t version; /* 1 when made, one more with every change (ETag, If-Match) */
	char name[65];
	char description[256];
	char builtin[33];
};

/* Role id into *r: BW_OK, BW_ERR_NOTFOUND (nothing recorded) or the database's error. */
bw_err rbac_role_get(db *d, int64_t id, struct rbac_role *r) BW_MUST_USE;
/*
 * The permissions role r holds now, as a new JSON array: a built-in
 * role's from op's catalogue (self.* left out), a custom role's rows.
 * BW_OK, or BW_ERR_NOMEM / the database's error.
 */
bw_err rbac_role_perms(struct op *op, const struct rbac_role *r, json_t **out) BW_MUST_USE;
/*
 * Whether op's actor may hand out every permission in perms (a JSON
 * array): they must hold each one themselves (may(): a token only what it
 * is scoped for too, so a token scoped to users.create cannot mint an
 * admin). BW_OK, or BW_ERR_DENIED naming the first one they lack /
 * BW_ERR_UNAVAILABLE, recorded in op.
 */
bw_err rbac_may_grant(struct op *op, json_t *perms) BW_MUST_USE;
/*
 * For a change that hands out everything in effect (who may sign in as
 * anyone, where reset links go): op's actor must be able to grant "*"
 * (an admin; a token only when scoped "*"). BW_OK, or BW_ERR_DENIED
 * recorded with why (client-safe), or BW_ERR_UNAVAILABLE.
 */
bw_err rbac_may_grant_all(struct op *op, const char *why) BW_MUST_USE;
/* The names of the roles user id holds, sorted, as a new JSON array. */
bw_err rbac_user_roles(db *d, int64_t id, json_t **out) BW_MUST_USE;
/*
 * Resolve roles (a JSON array of at most RBAC_ROLES_PER_USER role names)
 * into ids[0..*n-1], without duplicates, checking that op's actor may
 * grant every permission of each (the built-in admin role stands for
 * "*": only an admin gives it). BW_OK; BW_ERR_INVALID (recorded) for a
 * malformed array or an unknown name; rbac_may_grant()'s refusals.
 */
bw_err rbac_resolve_roles(struct op *op, json_t *roles, int64_t ids[RBAC_ROLES_PER_USER],
			  size_t *n) BW_MUST_USE;
/* Replace the roles user uid holds by ids[0..n-1]. BW_OK or the database's error. */
bw_err rbac_set_user_roles(db *d, int64_t uid, const int64_t *ids, size_t n) BW_MUST_USE;
/*
 * Take the tenant's one lock for changes of who holds what (the built-in
 * admin role's row), in a transaction, before counting admins: on
 * MariaDB two transactions that each count the other admins would
 * otherwise both see one left and both go ahead. BW_OK or the database's
 * error.
 */
bw_err rbac_serialise(db *d) BW_MUST_USE;

#endif
