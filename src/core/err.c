#include "core.h"

#include <stdlib.h>

static const struct {
	const char *code;
	const char *text;
} err_table[BW_ERR__COUNT] = {
	[BW_OK] = {"ok", "ok"},
	[BW_ERR_NOMEM] = {"out_of_memory", "out of memory or over a hard limit"},
	[BW_ERR_INVALID] = {"invalid", "invalid input"},
	[BW_ERR_UNAUTHORIZED] = {"unauthorized", "authentication required"},
	[BW_ERR_DENIED] = {"forbidden", "permission denied"},
	[BW_ERR_NOTFOUND] = {"not_found", "not found"},
	[BW_ERR_METHOD] = {"method_not_allowed", "method not allowed"},
	[BW_ERR_CONFLICT] = {"conflict", "conflict"},
	[BW_ERR_TOO_LARGE] = {"payload_too_large", "request body too large"},
	[BW_ERR_HEADERS_TOO_LARGE] = {"headers_too_large", "request headers too large"},
	[BW_ERR_RATE] = {"rate_limited", "too many requests"},
	[BW_ERR_LOCKED] = {"locked", "locked"},
	[BW_ERR_UNAVAILABLE] = {"unavailable", "service unavailable"},
	[BW_ERR_DB] = {"database_error", "database error"},
	[BW_ERR_IO] = {"io_error", "input/output error"},
	[BW_ERR_CRYPTO] = {"crypto_error", "cryptographic failure"},
	[BW_ERR_CONFIG] = {"config_error", "configuration error"},
	[BW_ERR_INTERNAL] = {"internal_error", "internal error"},
	[BW_ERR_UNSUPPORTED] = {"not_implemented", "not implemented"},
	[BW_ERR_LENGTH_REQUIRED] = {"length_required", "a Content-Length is required"},
	[BW_ERR_PRECONDITION] = {"precondition_failed", "the record has changed since it was read"},
	[BW_ERR_MEDIA_TYPE] = {"unsupported_media_type", "the body must be application/json"},
	[BW_ERR_UNPROCESSABLE] = {"unprocessable", "the request cannot be processed"},
	[BW_ERR_QUOTA] = {"insufficient_storage", "the plan's storage limit is reached"},
	[BW_ERR_RANGE] = {"range_not_satisfiable", "the range is outside the file"},
};

const char *
bw_strerror(bw_err e)
{
	if ((unsigned)e >= BW_ERR__COUNT)
		return "unknown error";
	return err_table[e].text;
}

const char *
bw_errcode(bw_err e)
{
	if ((unsigned)e >= BW_ERR__COUNT)
		return "internal_error";
	return err_table[e].code;
}
