/* The job kinds of every feature (see kinds.h). */
#include "kinds.h"

#include <string.h>

#include "../intake/intake.h"
#include "../notify/notify.h"
#include "../webhooks/webhooks.h"

void
job_table_build(const struct config *cfg, int configure, struct job_table *t)
{
	memset(t, 0, sizeof(*t));
	struct webhook_settings ws = {
	    .connect_timeout_ms = cfg->webhooks_connect_timeout_ms,
	    .timeout_ms = cfg->webhooks_timeout_ms,
	    .disable_after_s = cfg->webhooks_disable_after_hours * 3600,
	    .ca_file = cfg->webhooks_ca_file,
	    .allow_loopback = cfg->webhooks_test_allow_loopback != 0,
	    .resolve = NULL,
	    .test_retry_s = cfg->webhooks_test_retry_seconds,
	};
	if (configure)
		webhooks_configure(&ws);
	size_t nk = 0, nt = 0;
	webhooks_jobs(t->kinds + t->nkinds, &nk, t->ticks + t->nticks, &nt);
	t->nkinds += nk;
	t->nticks += nt;
	notify_jobs(t->kinds + t->nkinds, &nk, t->ticks + t->nticks, &nt);
	t->nkinds += nk;
	t->nticks += nt;
	intake_jobs(t->kinds + t->nkinds, &nk, t->ticks + t->nticks, &nt);
	t->nkinds += nk;
	t->nticks += nt;
}
