/*
 * The access log: one JSON object per line per request. It records the
 * path but never the query string, headers, cookies or bodies, so tokens
 * and personal data cannot end up here.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct accesslog {
	int fd; /* -1 when off */
	int own;
};

static int
accesslog_fd(const char *where, int *own)
{
	*own = 0;
	if (strcmp(where, "off") == 0)
		return -1;
	if (strcmp(where, "-") == 0)
		return STDOUT_FILENO;
	*own = 1;
	return open(where, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

bw_err
accesslog_open(const char *where, struct accesslog **out)
{
	struct accesslog *al = calloc(1, sizeof(*al));
	if (al == NULL)
		return BW_ERR_NOMEM;
	al->fd = accesslog_fd(where, &al->own);
	if (al->own && al->fd < 0) {
		free(al);
		return BW_ERR_IO;
	}
	*out = al;
	return BW_OK;
}

bw_err
accesslog_reopen(struct accesslog *al, const char *where)
{
	int own;
	int fd = accesslog_fd(where, &own);
	if (own && fd < 0)
		return BW_ERR_IO;
	/*
	 * Writers read al->fd without a lock. dup2() onto the descriptor they
	 * already use swaps the file under them atomically; only a change
	 * between "off", stdout and a file swaps the number itself.
	 */
	if (al->own && own) {
		dup2(fd, al->fd);
		close(fd);
		return BW_OK;
	}
	int old = al->fd, oldown = al->own;
	al->fd = fd;
	al->own = own;
	if (oldown)
		close(old);
	return BW_OK;
}

void
accesslog_close(struct accesslog *al)
{
	if (al == NULL)
		return;
	if (al->own && al->fd >= 0)
		close(al->fd);
	free(al);
}

/* Append s as JSON string contents, escaping; stops at the buffer's end. */
static size_t
accesslog_esc(char *out, size_t off, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (; s != NULL && *s && off + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[off++] = '\\';
			out[off++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			/* Paths are ASCII once MHD has accepted them; be strict anyway. */
			memcpy(out + off, "\\u00", 4);
			out[off + 4] = hex[c >> 4];
			out[off + 5] = hex[c & 15];
			off += 6;
		} else {
			out[off++] = (char)c;
		}
	}
	return off;
}

void
accesslog_write(struct accesslog *al, const struct http_req *req, uint64_t duration_us)
{
	if (al == NULL || al->fd < 0)
		return;
	char line[1024], ts[40];
	size_t cap = sizeof(line) - 160, off;
	util_rfc3339(ts, sizeof(ts));
	int n = snprintf(line, sizeof(line), "{\"time\":\"%s\",\"request_id\":\"%s\",\"tenant\":",
			 ts, req->id);
	if (n < 0)
		return;
	off = (size_t)n;
	if (req->op.tenant != NULL) {
		line[off++] = '"';
		off = accesslog_esc(line, off, cap, req->op.tenant);
		line[off++] = '"';
	} else {
		memcpy(line + off, "null", 4);
		off += 4;
	}
	off += (size_t)snprintf(line + off, sizeof(line) - off, ",\"client\":\"%s\",\"method\":\"",
				req->client_ip);
	off = accesslog_esc(line, off, cap, req->method_name);
	memcpy(line + off, "\",\"path\":\"", 10);
	off += 10;
	off = accesslog_esc(line, off, cap, req->path);
	n = snprintf(line + off, sizeof(line) - off, "\",\"status\":%d,\"duration_us\":%llu}\n",
		     req->status, (unsigned long long)duration_us);
	if (n < 0 || (size_t)n >= sizeof(line) - off)
		return;
	off += (size_t)n;
	/* O_APPEND and one write per line keep lines whole across threads. */
	ssize_t w = write(al->fd, line, off);
	(void)w;
}
