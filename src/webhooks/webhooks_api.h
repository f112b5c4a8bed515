/*
 * The webhook routes: subscriptions and their deliveries, inbound
 * endpoints, and the public route providers post to
 * (/api/v1/hooks/:provider/:endpoint).
 */
#ifndef BW_WEBHOOKS_API_H
#define BW_WEBHOOKS_API_H

#include "../http/http.h"

extern const struct route webhooks_routes[];
extern const size_t webhooks_routes_count;

/* The largest inbound body a route takes; [webhooks] inbound_body_max sets the limit under it. */
#define HOOKS_ROUTE_BODY_MAX 1048576

#endif
