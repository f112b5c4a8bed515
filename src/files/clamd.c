/*
 * files/clamd: a ClamAV client over clamd's unix socket (INSTREAM), failing
 * closed: only clamd's own "stream: OK" for the whole stream is BW_OK; a
 * clamd that is down, slow, over its size limit, or says anything else is
 * BW_ERR_UNAVAILABLE. Every wait is bounded by the caller's timeout and no
 * send can raise SIGPIPE. Texts put in why never hold a path and only
 * printable ASCII of clamd's, so they may be shown to a client.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"

/*
 * Bytes per INSTREAM chunk. The 4-byte length header is then noise (under
 * 0.01 %) and a 100 MiB upload is 1600 chunks, while one chunk fits in a
 * unix socket's default send buffer (about 208 KiB) so a send rarely blocks
 * half-way through one. clamd checks StreamMaxLength on each chunk's
 * header, so it refuses at most one chunk past its limit.
 */
#define CLAMD_CHUNK (64 * 1024)
/* A verdict is "stream: <signature> FOUND"; anything longer is not one. */
#define CLAMD_REPLY_MAX 1024
/* How long to wait between connects while clamd's listen queue is full. */
#define CLAMD_BUSY_RETRY_MS 10

enum clamd_state {
	CLAMD_OPEN,   /* the stream is going */
	CLAMD_FAILED, /* a send failed: result and why are final */
	CLAMD_ENDED,  /* clamd_end has run: result, why and sig are final */
};

struct clamd {
	int fd;
	long timeout_ms;
	enum clamd_state state;
	bw_err result;
	char why[256];
	char sig[CLAMD_SIG_MAX + 1];
};

/* What one bounded socket operation came to. */
enum clamd_io {
	CLAMD_IO_OK,
	CLAMD_IO_TIMEOUT,
	CLAMD_IO_HANGUP, /* the peer closed (EPIPE, ECONNRESET, end of file) */
	CLAMD_IO_EARLY,  /* clamd spoke (or hung up) while we were still sending */
	CLAMD_IO_TOOLONG,
	CLAMD_IO_ERROR, /* any other errno */
};

static void BW_PRINTF(3, 4)
clamd_say(char *why, size_t whylen, const char *fmt, ...)
{
	if (why == NULL || whylen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static uint64_t
clamd_deadline(long timeout_ms)
{
	return util_now_us() + (uint64_t)timeout_ms * 1000u;
}

/* Milliseconds left until deadline, rounded up; 0 once it has passed. */
static int
clamd_left_ms(uint64_t deadline)
{
	uint64_t now = util_now_us();
	if (now >= deadline)
		return 0;
	uint64_t ms = (deadline - now + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Printable ASCII of n bytes of s into out (outlen > 0), others as '?'. */
static void
clamd_printable(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i = 0;
	for (; i < n && i + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)s[i];
		out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[i] = '\0';
}

/*
 * A connected, non-blocking socket to path in *fd, within the deadline.
 * A full listen queue (EAGAIN) is retried until then: clamd is busy, not
 * down.
 */
static bw_err
clamd_connect(const char *path, uint64_t deadline, int *fd, char *why, size_t whylen)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(sa.sun_path)) {
		clamd_say(why, whylen, "the virus scanner's socket path is empty or too long");
		return BW_ERR_UNAVAILABLE;
	}
	memcpy(sa.sun_path, path, len + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		clamd_say(why, whylen, "cannot make a socket for the virus scanner: %s",
			  strerror(errno));
		return BW_ERR_UNAVAILABLE;
	}
	for (;;) {
		if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		int err = errno;
		if (err == EINTR)
			continue;
		if ((err == EAGAIN || err == EINPROGRESS) && clamd_left_ms(deadline) > 0) {
			int ms = clamd_left_ms(deadline);
			(void)poll(NULL, 0, ms < CLAMD_BUSY_RETRY_MS ? ms : CLAMD_BUSY_RETRY_MS);
			continue;
		}
		close(s);
		if (err == ENOENT || err == ECONNREFUSED || err == ENOTSOCK)
			clamd_say(why, whylen, "the virus scanner (clamd) is not running");
		else if (err == EACCES || err == EPERM)
			clamd_say(why, whylen, "the virus scanner (clamd) refused the connection "
					       "(socket permissions)");
		else if (err == EAGAIN || err == EINPROGRESS)
			clamd_say(why, whylen, "the virus scanner (clamd) is too busy: no connection "
					       "in time");
		else
			clamd_say(why, whylen, "cannot connect to the virus scanner (clamd): %s",
				  strerror(err));
		return BW_ERR_UNAVAILABLE;
	}
	*fd = s;
	return BW_OK;
}

/*
 * Send every byte of iov[0..cnt) before the deadline. With early set, clamd
 * saying anything (or hanging up) while we still send is CLAMD_IO_EARLY:
 * during INSTREAM it answers only at the end, or to refuse.
 */
static enum clamd_io
clamd_send_all(int fd, struct iovec *iov, int cnt, uint64_t deadline, int early, int *err)
{
	while (cnt > 0) {
		if (iov->iov_len == 0) {
			iov++;
			cnt--;
			continue;
		}
		struct pollfd p = {.fd = fd, .events = POLLOUT | (early ? POLLIN : 0)};
		int ms = clamd_left_ms(deadline);
		if (ms == 0)
			return CLAMD_IO_TIMEOUT;
		int r = poll(&p, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = errno;
			return CLAMD_IO_ERROR;
		}
		if (r == 0)
			return CLAMD_IO_TIMEOUT;
		if (early && (p.revents & (POLLIN | POLLHUP | POLLERR)))
			return CLAMD_IO_EARLY;
		if (p.revents & (POLLHUP | POLLERR))
			return CLAMD_IO_HANGUP;
		if (!(p.revents & POLLOUT))
			continue;
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
		ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return CLAMD_IO_HANGUP;
			*err = errno;
			return CLAMD_IO_ERROR;
		}
		size_t left = (size_t)n;
		while (cnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return CLAMD_IO_OK;
}

/*
 * One NUL-terminated reply (clamd's "z" commands) into buf, without its NUL,
 * before the deadline. Bytes after the NUL are not read: the connection is
 * closed after one reply.
 */
static enum clamd_io
clamd_read_reply(int fd, char buf[CLAMD_REPLY_MAX + 1], uint64_t deadline, int *err)
{
	size_t len = 0;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int ms = clamd_left_ms(deadline);
		if (ms == 0)
			return CLAMD_IO_TIMEOUT;
		int r = poll(&p, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = errno;
			return CLAMD_IO_ERROR;
		}
		if (r == 0)
			return CLAMD_IO_TIMEOUT;
		/* Read what is there even on POLLHUP: clamd writes, then closes. */
		ssize_t n = recv(fd, buf + len, CLAMD_REPLY_MAX + 1 - len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			if (errno == ECONNRESET || errno == EPIPE)
				return CLAMD_IO_HANGUP;
			*err = errno;
			return CLAMD_IO_ERROR;
		}
		if (n == 0)
			return CLAMD_IO_HANGUP;
		char *nul = memchr(buf + len, '\0', (size_t)n);
		len += (size_t)n;
		if (nul != NULL)
			return CLAMD_IO_OK; /* buf is now a C string */
		if (len > CLAMD_REPLY_MAX)
			return CLAMD_IO_TOOLONG;
	}
}

static int
clamd_ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/*
 * What reply means. complete: the whole stream and its end were sent;
 * otherwise clamd answered early and only a refusal is believed.
 */
static bw_err
clamd_verdict(const char *reply, int complete, char sig[CLAMD_SIG_MAX + 1], char *why,
	      size_t whylen)
{
	static const char pre[] = "stream: ", found[] = " FOUND", error[] = " ERROR";
	size_t len = strlen(reply);
	char text[160];
	if (clamd_ends_with(reply, len, error)) {
		if (strstr(reply, "size limit exceeded") != NULL) {
			clamd_say(why, whylen, "the file is over the virus scanner's size limit "
					       "(clamd StreamMaxLength): not scanned");
		} else {
			clamd_printable(reply, len - strlen(error), text, sizeof(text));
			clamd_say(why, whylen, "the virus scanner (clamd) failed: %s", text);
		}
		return BW_ERR_UNAVAILABLE;
	}
	if (!complete) {
		clamd_say(why, whylen, "the virus scanner (clamd) answered before the end of the "
				       "file: no verdict");
		return BW_ERR_UNAVAILABLE;
	}
	if (strcmp(reply, "stream: OK") == 0) {
		clamd_say(why, whylen, "clean");
		return BW_OK;
	}
	if (len > strlen(pre) + strlen(found) && strncmp(reply, pre, strlen(pre)) == 0 &&
	    clamd_ends_with(reply, len, found)) {
		size_t n = len - strlen(pre) - strlen(found);
		if (n > CLAMD_SIG_MAX)
			n = CLAMD_SIG_MAX;
		clamd_printable(reply + strlen(pre), n, sig, CLAMD_SIG_MAX + 1);
		clamd_say(why, whylen, "malware found: %s", sig);
		return BW_ERR_UNPROCESSABLE;
	}
	clamd_printable(reply, len < 60 ? len : 60, text, sizeof(text));
	clamd_say(why, whylen, "the virus scanner (clamd) gave a reply that is not a verdict: "
			       "\"%s%s\"", text, len > 60 ? "..." : "");
	return BW_ERR_UNAVAILABLE;
}

/* Why an I/O outcome other than OK keeps us from a verdict. */
static void
clamd_io_why(enum clamd_io io, int err, long timeout_ms, char *why, size_t whylen)
{
	switch (io) {
	case CLAMD_IO_TIMEOUT:
		clamd_say(why, whylen, "the virus scanner (clamd) did not answer within %ld ms",
			  timeout_ms);
		break;
	case CLAMD_IO_HANGUP:
	case CLAMD_IO_EARLY:
		clamd_say(why, whylen, "the virus scanner (clamd) closed the connection without a "
				       "verdict");
		break;
	case CLAMD_IO_TOOLONG:
		clamd_say(why, whylen, "the virus scanner's (clamd) reply is too long to be a "
				       "verdict");
		break;
	case CLAMD_IO_ERROR:
		clamd_say(why, whylen, "talking to the virus scanner (clamd) failed: %s",
			  strerror(err));
		break;
	case CLAMD_IO_OK:
	default:
		clamd_say(why, whylen, "the virus scanner (clamd) gave no verdict");
		break;
	}
}

/*
 * After a send that clamd cut short (it hung up or spoke first): read what
 * it said before the deadline and keep it as the final result; whatever it
 * was, the stream is not wholly scanned, so never BW_OK.
 */
static bw_err
clamd_fail_early(struct clamd *c, enum clamd_io io, int err, uint64_t deadline)
{
	char reply[CLAMD_REPLY_MAX + 1];
	c->state = CLAMD_FAILED;
	c->sig[0] = '\0';
	if (io == CLAMD_IO_HANGUP || io == CLAMD_IO_EARLY) {
		int rerr = 0;
		enum clamd_io rio = clamd_read_reply(c->fd, reply, deadline, &rerr);
		if (rio == CLAMD_IO_OK) {
			char sig[CLAMD_SIG_MAX + 1] = "";
			c->result = clamd_verdict(reply, 0, sig, c->why, sizeof(c->why));
			if (c->result == BW_OK) /* cannot be: clamd_verdict(..., 0, ...) */
				c->result = BW_ERR_UNAVAILABLE;
			return c->result;
		}
		if (rio != CLAMD_IO_HANGUP) {
			io = rio;
			err = rerr;
		}
	}
	clamd_io_why(io, err, c->timeout_ms, c->why, sizeof(c->why));
	c->result = BW_ERR_UNAVAILABLE;
	return c->result;
}

static bw_err
clamd_final(const struct clamd *c, char *why, size_t whylen)
{
	clamd_say(why, whylen, "%s", c->why);
	return c->result;
}

bw_err
clamd_begin(const char *path, long timeout_ms, struct clamd **out, char *why, size_t whylen)
{
	*out = NULL;
	if (path == NULL || timeout_ms <= 0 || timeout_ms > 24L * 3600 * 1000) {
		clamd_say(why, whylen, "the virus scanner is not configured (socket or timeout)");
		return BW_ERR_UNAVAILABLE;
	}
	struct clamd *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		clamd_say(why, whylen, "out of memory");
		return BW_ERR_NOMEM;
	}
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	uint64_t deadline = clamd_deadline(timeout_ms);
	bw_err e = clamd_connect(path, deadline, &c->fd, why, whylen);
	if (e != BW_OK)
		goto fail;
	static const char cmd[] = "zINSTREAM"; /* sent with its NUL */
	struct iovec iov = {.iov_base = (void *)cmd, .iov_len = sizeof(cmd)};
	int err = 0;
	enum clamd_io io = clamd_send_all(c->fd, &iov, 1, deadline, 1, &err);
	if (io != CLAMD_IO_OK) {
		e = clamd_fail_early(c, io, err, deadline);
		clamd_say(why, whylen, "%s", c->why);
		goto fail;
	}
	c->state = CLAMD_OPEN;
	*out = c;
	return BW_OK;
fail:
	clamd_free(c);
	return e;
}

bw_err
clamd_send(struct clamd *c, const void *buf, size_t n, char *why, size_t whylen)
{
	if (c->state != CLAMD_OPEN)
		return clamd_final(c, why, whylen);
	/* Nothing to send is not a chunk: a zero-length chunk would end the stream. */
	const unsigned char *p = buf;
	uint64_t deadline = clamd_deadline(c->timeout_ms);
	while (n > 0) {
		size_t k = n < CLAMD_CHUNK ? n : CLAMD_CHUNK;
		unsigned char hdr[4] = {(unsigned char)(k >> 24), (unsigned char)(k >> 16),
					(unsigned char)(k >> 8), (unsigned char)k};
		struct iovec iov[2] = {{.iov_base = hdr, .iov_len = sizeof(hdr)},
				       {.iov_base = (void *)p, .iov_len = k}};
		int err = 0;
		enum clamd_io io = clamd_send_all(c->fd, iov, 2, deadline, 1, &err);
		if (io != CLAMD_IO_OK) {
			(void)clamd_fail_early(c, io, err, deadline);
			return clamd_final(c, why, whylen);
		}
		p += k;
		n -= k;
	}
	return BW_OK;
}

bw_err
clamd_end(struct clamd *c, char sig[CLAMD_SIG_MAX + 1], char *why, size_t whylen)
{
	sig[0] = '\0';
	if (c->state == CLAMD_ENDED) {
		snprintf(sig, CLAMD_SIG_MAX + 1, "%s", c->sig);
		return clamd_final(c, why, whylen);
	}
	if (c->state == CLAMD_FAILED)
		return clamd_final(c, why, whylen);
	uint64_t deadline = clamd_deadline(c->timeout_ms);
	unsigned char end[4] = {0, 0, 0, 0};
	struct iovec iov = {.iov_base = end, .iov_len = sizeof(end)};
	int err = 0;
	enum clamd_io io = clamd_send_all(c->fd, &iov, 1, deadline, 1, &err);
	if (io != CLAMD_IO_OK) {
		(void)clamd_fail_early(c, io, err, deadline);
		return clamd_final(c, why, whylen);
	}
	char reply[CLAMD_REPLY_MAX + 1];
	io = clamd_read_reply(c->fd, reply, deadline, &err);
	c->state = CLAMD_ENDED;
	if (io != CLAMD_IO_OK) {
		clamd_io_why(io, err, c->timeout_ms, c->why, sizeof(c->why));
		c->result = BW_ERR_UNAVAILABLE;
		return clamd_final(c, why, whylen);
	}
	c->result = clamd_verdict(reply, 1, c->sig, c->why, sizeof(c->why));
	snprintf(sig, CLAMD_SIG_MAX + 1, "%s", c->sig);
	return clamd_final(c, why, whylen);
}

void
clamd_free(struct clamd *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

bw_err
clamd_ping(const char *path, long timeout_ms, char *why, size_t whylen)
{
	if (path == NULL || timeout_ms <= 0 || timeout_ms > 24L * 3600 * 1000) {
		clamd_say(why, whylen, "the virus scanner is not configured (socket or timeout)");
		return BW_ERR_UNAVAILABLE;
	}
	uint64_t deadline = clamd_deadline(timeout_ms);
	int fd = -1;
	bw_err e = clamd_connect(path, deadline, &fd, why, whylen);
	if (e != BW_OK)
		return e;
	static const char cmd[] = "zPING";
	struct iovec iov = {.iov_base = (void *)cmd, .iov_len = sizeof(cmd)};
	char reply[CLAMD_REPLY_MAX + 1];
	int err = 0;
	enum clamd_io io = clamd_send_all(fd, &iov, 1, deadline, 0, &err);
	if (io == CLAMD_IO_OK)
		io = clamd_read_reply(fd, reply, deadline, &err);
	close(fd);
	if (io != CLAMD_IO_OK) {
		clamd_io_why(io, err, timeout_ms, why, whylen);
		return BW_ERR_UNAVAILABLE;
	}
	if (strcmp(reply, "PONG") != 0) {
		char text[64];
		clamd_printable(reply, strlen(reply), text, sizeof(text));
		clamd_say(why, whylen, "the virus scanner (clamd) answered PING with \"%s\"", text);
		return BW_ERR_UNAVAILABLE;
	}
	clamd_say(why, whylen, "clamd answers");
	return BW_OK;
}
