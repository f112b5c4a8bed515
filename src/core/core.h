/*
 * core: the pieces every subsystem shares — one error type, a per-request
 * memory pool, logging, time and randomness helpers.
 */
#ifndef BW_CORE_H
#define BW_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define BW_MUST_USE __attribute__((warn_unused_result))
#define BW_PRINTF(a, b) __attribute__((format(printf, a, b)))

/*
 * The one error type. Every fallible function returns one of these; the
 * HTTP layer maps it to a status in exactly one place (response.c).
 */
typedef enum bw_err {
	BW_OK = 0,
	BW_ERR_NOMEM,        /* allocation failed or a hard maximum was hit */
	BW_ERR_INVALID,      /* malformed input */
	BW_ERR_UNAUTHORIZED, /* no or bad credentials */
	BW_ERR_DENIED,       /* authenticated but not allowed */
	BW_ERR_NOTFOUND,
	BW_ERR_METHOD,       /* resource exists, method does not */
	BW_ERR_CONFLICT,
	BW_ERR_TOO_LARGE,    /* body over its limit */
	BW_ERR_HEADERS_TOO_LARGE,
	BW_ERR_RATE,         /* too many requests */
	BW_ERR_LOCKED,
	BW_ERR_UNAVAILABLE,  /* a dependency is down; fail closed */
	BW_ERR_DB,
	BW_ERR_IO,
	BW_ERR_CRYPTO,
	BW_ERR_CONFIG,
	BW_ERR_INTERNAL,
	BW_ERR_UNSUPPORTED,  /* a protocol feature we do not implement (501) */
	BW_ERR_LENGTH_REQUIRED, /* a body without a Content-Length (411) */
	BW_ERR_PRECONDITION, /* If-Match names a version that is no longer current (412) */
	BW_ERR_MEDIA_TYPE,   /* a body that is not of a type the route takes (415) */
	BW_ERR_UNPROCESSABLE, /* well-formed but refused as a whole (422: an Idempotency-Key reused) */
	BW_ERR_QUOTA,        /* the tenant's plan has no room for it (507) */
	BW_ERR_RANGE,        /* a Range no byte of the file satisfies (416) */
	BW_ERR__COUNT
} bw_err;

/* Human text for an error ("not found"); never NULL. */
const char *bw_strerror(bw_err e);
/* Stable machine code for an error ("not_found"); never NULL. */
const char *bw_errcode(bw_err e);

/*
 * pool: a request-scoped arena. Everything allocated from it is freed at
 * once by pool_free(). A pool has a hard maximum; past it allocations
 * return NULL, which callers report as BW_ERR_NOMEM.
 */
typedef struct pool pool;

/* New pool that may hold at most max_bytes; NULL on allocation failure. */
pool *pool_new(size_t max_bytes);
/* Wipe and free the pool and everything in it; accepts NULL. */
void pool_free(pool *p);
/* Aligned, zeroed memory from the pool; NULL past the maximum. */
void *pool_alloc(pool *p, size_t n);
/* Copy of s (or its first n bytes, NUL added); NULL past the maximum. */
char *pool_strdup(pool *p, const char *s);
char *pool_strndup(pool *p, const char *s, size_t n);
/* printf into the pool; NULL on failure. */
char *pool_printf(pool *p, const char *fmt, ...) BW_PRINTF(2, 3);
/* Bytes handed out so far (for tests and metrics). */
size_t pool_used(const pool *p);

/*
 * buf: a growable byte buffer with a hard maximum (curl's dynbuf). The
 * content is kept NUL-terminated; the NUL is counted neither in the length
 * nor against the maximum. The struct lives with its user (on the stack or
 * inside another struct); read it through buf_ptr()/buf_len() and never
 * free or keep p: the bytes leave the buffer only through buf_take().
 * A zeroed struct buf is a valid empty buffer whose maximum is 0.
 */
struct buf {
	char *p;    /* NULL until something is appended */
	size_t len; /* bytes held, without the NUL */
	size_t cap; /* bytes allocated, with the NUL */
	size_t max; /* len never exceeds it; fixed by buf_init() */
};

/* An empty buffer that will hold at most max bytes; allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Free the content and leave the buffer empty (same maximum); accepts NULL. */
void buf_free(struct buf *b);
/*
 * Append n bytes. BW_ERR_NOMEM when the maximum would be passed or memory
 * runs out; the content is then unchanged.
 */
bw_err buf_append(struct buf *b, const void *data, size_t n) BW_MUST_USE;
/* Append a NUL-terminated string; as buf_append(). */
bw_err buf_append_str(struct buf *b, const char *s) BW_MUST_USE;
/*
 * Append printf output. As buf_append(); BW_ERR_INVALID when the format
 * cannot be printed (vsnprintf fails). The content is unchanged on failure.
 */
bw_err buf_printf(struct buf *b, const char *fmt, ...) BW_PRINTF(2, 3) BW_MUST_USE;
bw_err buf_vprintf(struct buf *b, const char *fmt, va_list ap) BW_PRINTF(2, 0) BW_MUST_USE;
/* The content ("" when empty; valid until the next change) and its length. */
const char *buf_ptr(const struct buf *b);
size_t buf_len(const struct buf *b);
/*
 * Move the content out: *out becomes a malloc'd NUL-terminated copy owned
 * by the caller ("" when the buffer is empty) and *len (when len is not
 * NULL) its length; the buffer is left empty with the same maximum.
 * BW_ERR_NOMEM (with *out NULL) only when an empty buffer cannot allocate
 * its "".
 */
bw_err buf_take(struct buf *b, char **out, size_t *len) BW_MUST_USE;

/* Logging: human-readable lines on stderr. Never pass secrets. */
typedef enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR } log_level;
void log_set_level(log_level l);
/* Parse "debug|info|warn|error"; BW_ERR_INVALID otherwise. */
bw_err log_level_parse(const char *s, log_level *out) BW_MUST_USE;
void log_msg(log_level l, const char *fmt, ...) BW_PRINTF(2, 3);
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

struct timespec;
/* CLOCK_REALTIME now + ms into ts, for pthread_cond_timedwait(). */
void util_deadline_ms(struct timespec *ts, long ms);
/* Monotonic clock in microseconds. */
uint64_t util_now_us(void);
/* Wall clock as RFC 3339 UTC with milliseconds into out (>= 32 bytes). */
void util_rfc3339(char *out, size_t outlen);
/*
 * Unix seconds t as RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ", into out (the
 * form every timestamp in the API's JSON takes); returns out. Times before
 * year 0 or after 9999 are shown as the nearest of those bounds.
 */
#define UTIL_TIME_LEN 21
char *util_time_rfc3339(int64_t t, char out[UTIL_TIME_LEN]);
/*
 * Parse an RFC 3339 date-time ("2026-12-02T03:31:18Z", "...T04:31:18+01:00",
 * optional fraction of a second, dropped) into Unix seconds. Anything else
 * is BW_ERR_INVALID: a date alone, a missing offset, an impossible day,
 * second 60, trailing text. "T" and "Z" may be lower case (RFC 3339 5.6).
 */
bw_err util_parse_rfc3339(const char *s, int64_t *out) BW_MUST_USE;
/* Fill buf with n bytes from the kernel CSPRNG; BW_ERR_IO on failure. */
bw_err util_random(void *buf, size_t n) BW_MUST_USE;
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void util_hex(const void *in, size_t n, char *out);
/* The value of one character of the standard base64 alphabet (RFC 4648 section 4), or -1. */
int util_b64_value(int c);
/* Strict decimal parse of a whole string into [min,max]. */
bw_err util_parse_long(const char *s, long min, long max, long *out) BW_MUST_USE;
/* Number of online CPUs, at least 1. */
int util_ncpu(void);
/*
 * A plausible e-mail address: one '@' with text before it, a dot in the
 * domain (not first or last), at most 254 bytes, no spaces, controls,
 * double quotes, backslashes, angle brackets, commas or semicolons (an
 * apostrophe is allowed: o'brien@example.com). 1 or 0.
 */
int util_valid_email(const char *s);

/*
 * email.c: an e-mail address as an identity (policy: ADR 0012). NFKC, then
 * case-folded; refused when it has an invisible, control, separator or
 * space character, mixes scripts in the local part or in a domain label,
 * has an ACE (xn--) label, or a non-ASCII domain without EMAIL_ALLOW_IDN.
 * Modifier letters and symbols of the Common script are refused too.
 * On success out->display is the NFKC lower-case form (what is shown),
 * out->key the case-folded one (what sign-in and unlock look up by) and
 * out->skel the UTS #39 confusable skeleton of the key (unique per tenant,
 * so that no two accounts read alike; never used to find an account).
 * BW_ERR_INVALID with the reason in *why (a phrase after "the address"),
 * BW_ERR_NOMEM when normalising ran out of memory; out is zeroed on failure.
 */
#define EMAIL_MAX 254
#define EMAIL_SKEL_MAX 512 /* bytes; users.email_skel is @STR(512) */
#define EMAIL_ALLOW_IDN 1u
struct email_addr {
	char display[EMAIL_MAX + 1];
	char key[EMAIL_MAX + 1];
	char skel[EMAIL_SKEL_MAX + 1];
};
bw_err email_normalize(const char *in, unsigned flags, struct email_addr *out,
		       const char **why) BW_MUST_USE;

#define BW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
