/* Shared by the files of src/webhooks (not part of its interface). */
#ifndef BW_WEBHOOKS_INT_H
#define BW_WEBHOOKS_INT_H

#include <jansson.h>
#include <stdint.h>

#include "../op/op.h"
#include "webhooks.h"

/* A subscription as read, secrets open (wh_sub_clear wipes them). */
struct wh_sub {
	int64_t id, version;
	char *url;
	char host[256];
	char description[WEBHOOK_DESCRIPTION_MAX + 1];
	json_t *types;
	int enabled;
	char *secret, *prev_secret; /* whsec_...; prev_secret NULL when none */
	int64_t prev_until;         /* prev_secret is signed with until then */
	int64_t failing_since;      /* 0: the last delivery succeeded */
	char disabled_reason[501];
	int64_t created_at, updated_at;
};

/* Read subscription id (lock: FOR UPDATE on MariaDB); BW_ERR_NOTFOUND recorded. */
bw_err wh_sub_read(struct op *op, int64_t id, int lock, struct wh_sub *out) BW_MUST_USE;
void wh_sub_clear(struct wh_sub *s);
/* As the API shows it: never a secret. */
json_t *wh_sub_json(const struct wh_sub *s, int64_t now);
/* The settings webhooks_configure() was given (defaults before). */
const struct webhook_settings *wh_settings(void);

#endif
