#include "core.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/*
 * The level is written at start-up and on SIGHUP only; a torn read of an
 * int is not possible on the platforms we build for, so no lock.
 */
static volatile log_level log_threshold = LOG_LVL_INFO;

static const char *const log_names[] = {"debug", "info", "warn", "error"};

void
log_set_level(log_level l)
{
	log_threshold = l;
}

bw_err
log_level_parse(const char *s, log_level *out)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(log_names); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (log_level)i;
			return BW_OK;
		}
	}
	return BW_ERR_INVALID;
}

void
log_msg(log_level l, const char *fmt, ...)
{
	if (l < log_threshold)
		return;
	char ts[40], line[2048];
	util_rfc3339(ts, sizeof(ts));
	int off = snprintf(line, sizeof(line), "%s bulwark[%s] ", ts, log_names[l]);
	if (off < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line + off, sizeof(line) - (size_t)off - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = strlen(line);
	/* One write per line so concurrent threads do not interleave. */
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}
