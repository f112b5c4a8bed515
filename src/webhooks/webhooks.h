/*
 * webhooks: outbound subscriptions and their deliveries, and inbound
 * provider endpoints (docs/webhooks.md). Operations on struct op, shared by
 * the API (webhooks_api.c), the CLI and the job kinds the runner is given.
 */
#ifndef BW_WEBHOOKS_H
#define BW_WEBHOOKS_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../jobs/jobs.h"
#include "../jobs/runner.h"
#include "../op/op.h"

#define WEBHOOK_TYPES_MAX 64              /* event types (patterns) one subscription names */
#define WEBHOOK_ROTATE_OVERLAP_MAX 604800 /* seconds both secrets may be signed with */
#define WEBHOOK_DESCRIPTION_MAX 500
#define WEBHOOK_SUBS_MAX 100              /* subscriptions one tenant may have */

/* --- subscriptions (subscriptions.c) --------------------------------------- */

/*
 * Create a subscription from in ({"url", "event_types": [...],
 * "description", "enabled"}): the URL must be https on a public host, each
 * type a name or pattern of events_catalog(). *out is the subscription as
 * shown, with "secret" (whsec_...), the one time it is shown.
 */
bw_err webhook_sub_create(struct op *op, json_t *in, json_t **out) BW_MUST_USE;
/* A subscription as shown (never a secret); BW_ERR_NOTFOUND recorded. */
bw_err webhook_sub_get(struct op *op, int64_t id, json_t **out) BW_MUST_USE;
/*
 * Change url, event_types, description or enabled (if_version: 0 for
 * none). Enabling a disabled subscription clears why it was disabled.
 */
bw_err webhook_sub_update(struct op *op, int64_t id, json_t *in, int64_t if_version,
			  json_t **out) BW_MUST_USE;
/* Delete it with its deliveries; jobs still queued for them end as nothing to do. */
bw_err webhook_sub_delete(struct op *op, int64_t id, int64_t if_version) BW_MUST_USE;
/*
 * A new secret; the old one is still signed with for overlap seconds
 * (0..WEBHOOK_ROTATE_OVERLAP_MAX), so receivers can switch without a gap.
 * *out as webhook_sub_create's, with the new "secret".
 */
bw_err webhook_sub_rotate(struct op *op, int64_t id, int64_t overlap, json_t **out) BW_MUST_USE;

/* --- deliveries (deliver.c) ------------------------------------------------ */

/* Delivery did of subscription sub as the log shows it; BW_ERR_NOTFOUND recorded. */
bw_err webhook_delivery_get(struct op *op, int64_t sub, int64_t did, json_t **out) BW_MUST_USE;
/* Send delivery did of subscription sub again (same webhook-id), now. */
bw_err webhook_redeliver(struct op *op, int64_t sub, int64_t did) BW_MUST_USE;

/* How deliveries go out: from the configuration, set once at start-up. */
struct webhook_settings {
	long connect_timeout_ms, timeout_ms;
	long disable_after_s;
	const char *ca_file;        /* "" or NULL: the system's */
	int allow_loopback;         /* tests only */
	const char *const *resolve; /* tests only: CURLOPT_RESOLVE entries, or NULL */
	long test_retry_s;          /* tests only: every retry after this many seconds (0: the schedule) */
};
void webhooks_configure(const struct webhook_settings *s);

/* The runner's share: job kinds and ticks. */
#define WEBHOOK_JOB_DELIVER "webhook.deliver"
#define WEBHOOK_JOB_INBOUND "hooks.process"
/* The retry schedule of deliveries, seconds before attempts 2, 3, ...; about a day in all. */
extern const int webhook_backoff[];
extern const size_t webhook_backoff_n;
/* kinds: room for 2; ticks: room for 3. Their counts into *nk, *nt (after webhooks_configure). */
void webhooks_jobs(struct job_kind *kinds, size_t *nk, struct jobs_tick *ticks, size_t *nt);

/* --- inbound endpoints (inbound.c) ------------------------------------------- */

enum hook_provider { HOOK_STRIPE = 1, HOOK_QUICKBOOKS, HOOK_STANDARD };
const char *hook_provider_name(enum hook_provider p);
bw_err hook_provider_parse(const char *s, enum hook_provider *out) BW_MUST_USE;

/*
 * Create an endpoint from in ({"provider", "secret", "description",
 * "enabled"}); the secret is the provider's (Stripe's whsec_..., Intuit's
 * verifier token, a Standard Webhooks sender's whsec_...), kept sealed and
 * never shown again. *out has "path", the URL path to give the provider.
 */
bw_err hook_endpoint_create(struct op *op, json_t *in, json_t **out) BW_MUST_USE;
/* Endpoint id as shown (never its secret); BW_ERR_NOTFOUND recorded. */
bw_err hook_endpoint_get(struct op *op, int64_t id, json_t **out) BW_MUST_USE;
bw_err hook_endpoint_update(struct op *op, int64_t id, json_t *in, json_t **out) BW_MUST_USE;
bw_err hook_endpoint_delete(struct op *op, int64_t id) BW_MUST_USE;

/* An inbound request, as the API hands it over. */
struct hook_request {
	const char *provider; /* the path's */
	const char *endpoint; /* the path's public id */
	const char *body;
	size_t len;
	long body_max;  /* [webhooks] inbound_body_max */
	long tolerance; /* [webhooks] inbound_tolerance */
	/* the headers that carry signatures (NULL when absent) */
	const char *stripe_signature, *intuit_signature;
	const char *wh_id, *wh_timestamp, *wh_signature;
};
/*
 * Verify and record an inbound provider event: BW_OK once it is durably
 * recorded with a job to process it (*duplicate 1 when this event had
 * been recorded before: nothing more is done). Refusals (recorded in op,
 * each with a security audit row): BW_ERR_NOTFOUND (no such endpoint for
 * this provider in this tenant, or disabled), BW_ERR_TOO_LARGE,
 * BW_ERR_INVALID (a header missing or malformed, a body that is not a
 * provider event), BW_ERR_UNAUTHORIZED (a signature that does not verify,
 * a timestamp out of tolerance), BW_ERR_CONFLICT (a replay).
 */
bw_err hook_receive(struct op *op, const struct hook_request *r, int *duplicate) BW_MUST_USE;

#endif
