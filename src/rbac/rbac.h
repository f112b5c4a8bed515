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
#include "../http/http.h"

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
 * The same from what the session or token lookup read along (the pipeline's
 * one statement per request): 1 if the roles in ctx grant perm, else 0.
 */
int rbac_ctx_has(const struct auth_ctx *ctx, const char *perm);

/* Every permission the live route table uses, sorted, without duplicates (pool-allocated). */
bw_err rbac_catalog(struct http_req *req, const char ***out, size_t *n) BW_MUST_USE;

/*
 * Whether the signed-in user may act on user uid (change, delete, unlock,
 * sign out): only someone who holds everything uid holds. BW_OK, or 403
 * (reply set).
 */
bw_err rbac_may_manage(struct http_req *req, db *d, int64_t uid) BW_MUST_USE;

/* Roles and users: /api/v1/roles..., /api/v1/users... */
extern const struct route rbac_routes[];
extern const size_t rbac_routes_count;

#endif
