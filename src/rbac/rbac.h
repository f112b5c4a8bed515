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

#endif
