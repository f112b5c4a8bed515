/*
 * The hooks and actions of the catalogue's modules (hooks.c), internal to
 * src/modules: catalog.c puts them on the descriptors. Semantics and what
 * each may do are in module.h; every function returns BW_OK or the error
 * it recorded with op_fail().
 */
#ifndef BW_MODULE_HOOKS_H
#define BW_MODULE_HOOKS_H

#include "desc.h"

struct module_ctx;

/* tickets: the status workflow, and assign. */
bw_err hooks_ticket_check(struct module_ctx *ctx) BW_MUST_USE;
bw_err hooks_ticket_assign(struct module_ctx *ctx, json_t *body, json_t **reply) BW_MUST_USE;

/* time_entries: the signed-in user logs the time. */
bw_err hooks_time_entry_check(struct module_ctx *ctx) BW_MUST_USE;

/* contracts: the end is not before the start. */
bw_err hooks_contract_check(struct module_ctx *ctx) BW_MUST_USE;

/*
 * invoices and estimates, and their lines: one set of hooks for both,
 * finding the tables from ctx->m. Only drafts change; lines compute their
 * amount and the document's totals; status actions.
 */
bw_err hooks_doc_check(struct module_ctx *ctx) BW_MUST_USE;
bw_err hooks_doc_can_delete(struct module_ctx *ctx) BW_MUST_USE;
bw_err hooks_doc_send(struct module_ctx *ctx, json_t *body, json_t **reply) BW_MUST_USE;
bw_err hooks_invoice_void(struct module_ctx *ctx, json_t *body, json_t **reply) BW_MUST_USE;
bw_err hooks_estimate_accept(struct module_ctx *ctx, json_t *body, json_t **reply) BW_MUST_USE;
bw_err hooks_estimate_decline(struct module_ctx *ctx, json_t *body, json_t **reply) BW_MUST_USE;
bw_err hooks_line_check(struct module_ctx *ctx) BW_MUST_USE;
bw_err hooks_line_after_write(struct module_ctx *ctx) BW_MUST_USE;
bw_err hooks_line_can_delete(struct module_ctx *ctx) BW_MUST_USE;

/* payments: checks, and marking the invoice paid. */
bw_err hooks_payment_check(struct module_ctx *ctx) BW_MUST_USE;
bw_err hooks_payment_after_write(struct module_ctx *ctx) BW_MUST_USE;

/* network_devices: address check, password warning, credential reveal. */
bw_err hooks_network_device_check(struct module_ctx *ctx) BW_MUST_USE;
void hooks_network_device_present(const struct module_desc *m, json_t *row);
bw_err hooks_network_device_reveal(struct module_ctx *ctx, json_t *body, json_t **reply) BW_MUST_USE;

#endif
