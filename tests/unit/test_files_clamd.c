/*
 * The clamd client (src/files/clamd.c) against a real clamd: the one of
 * tests/run-all ($BULWARK_TEST_CLAMD_SOCKET) or, run by hand, one of our
 * own from scripts/clamd-test; a clamd with a small StreamMaxLength and one
 * to kill are always our own. Fake clamds (a thread on a unix socket) that
 * never answer, never read, or answer garbage show the client failing
 * closed within its timeout.
 */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "files/check.h"

#define TIMEOUT_MS 5000
#define SHORT_MS 500
#define TESTFILES "/usr/share/clamav-testfiles"

static const char eicar[] =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/* --- a clamd of our own (scripts/clamd-test) ------------------------------------- */

struct clamd_proc {
	char dir[128];
	char sock[256];
	int own; /* started here: stop it and remove dir */
};

static struct clamd_proc shared; /* the clamd most tests scan with */

/* scripts/clamd-test from the repository root, or from build/san/tests/<this>. */
static void
script_path(char *out, size_t outlen)
{
	if (access("scripts/clamd-test", X_OK) == 0) {
		snprintf(out, outlen, "scripts/clamd-test");
		return;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	assert_non_null(slash);
	*slash = '\0';
	snprintf(out, outlen, "%s/../../../scripts/clamd-test", exe);
	assert_int_equal(access(out, X_OK), 0);
}

/* Start a clamd (extra: more options for clamd-test start) into p; 0 on success. */
static int
clamd_proc_start(struct clamd_proc *p, const char *extra)
{
	char script[PATH_MAX + 64], cmd[PATH_MAX + 512], line[512];
	memset(p, 0, sizeof(*p));
	script_path(script, sizeof(script));
	if (unit_mkdtemp(p->dir, sizeof(p->dir), "clamd") != 0)
		return -1;
	p->own = 1;
	snprintf(cmd, sizeof(cmd), "'%s' start '%s' %s", script, p->dir, extra);
	FILE *f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	static const char key[] = "BULWARK_TEST_CLAMD_SOCKET='";
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, strlen(key)) == 0) {
			char *v = line + strlen(key), *q = strchr(v, '\'');
			if (q != NULL)
				*q = '\0';
			snprintf(p->sock, sizeof(p->sock), "%.200s", v);
		}
	}
	int rc = pclose(f);
	return rc == 0 && p->sock[0] != '\0' ? 0 : -1;
}

static void
clamd_proc_stop(struct clamd_proc *p)
{
	if (!p->own)
		return;
	char script[PATH_MAX + 64], cmd[PATH_MAX + 512];
	script_path(script, sizeof(script));
	snprintf(cmd, sizeof(cmd), "'%s' stop '%s'", script, p->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "clamd-test stop %s failed\n", p->dir);
	(void)unit_rmtree(p->dir);
	p->own = 0;
}

static long
clamd_proc_pid(const struct clamd_proc *p)
{
	char path[256], text[32] = "";
	snprintf(path, sizeof(path), "%s/clamd.pid", p->dir);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	return strtol(text, NULL, 10);
}

static int
group_setup(void **state)
{
	(void)state;
	const char *s = getenv("BULWARK_TEST_CLAMD_SOCKET");
	if (s != NULL && s[0] != '\0') {
		snprintf(shared.sock, sizeof(shared.sock), "%s", s);
		return 0;
	}
	if (clamd_proc_start(&shared, "") != 0) {
		fprintf(stderr, "could not start a clamd with scripts/clamd-test\n");
		clamd_proc_stop(&shared);
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	clamd_proc_stop(&shared);
	return 0;
}

/* --- helpers --------------------------------------------------------------------- */

struct scan {
	bw_err begin, send, end;
	char sig[CLAMD_SIG_MAX + 1];
	char why[256];
	uint64_t ms; /* how long the whole scan took */
};

/* Scan n bytes, piece bytes per clamd_send (0: all at once), on the socket at path. */
static struct scan
scan(const char *path, long timeout_ms, const void *data, size_t n, size_t piece)
{
	struct scan r = {.begin = BW_ERR_INTERNAL, .send = BW_ERR_INTERNAL,
			 .end = BW_ERR_INTERNAL};
	uint64_t t0 = util_now_us();
	struct clamd *c = NULL;
	r.begin = clamd_begin(path, timeout_ms, &c, r.why, sizeof(r.why));
	if (r.begin != BW_OK) {
		assert_null(c);
		r.ms = (util_now_us() - t0) / 1000;
		return r;
	}
	r.send = BW_OK;
	const unsigned char *p = data;
	size_t step = piece == 0 ? n : piece;
	for (size_t off = 0; off < n && r.send == BW_OK; off += step) {
		size_t k = n - off < step ? n - off : step;
		r.send = clamd_send(c, p + off, k, r.why, sizeof(r.why));
	}
	char why[256];
	r.end = clamd_end(c, r.sig, why, sizeof(why));
	if (r.send == BW_OK)
		snprintf(r.why, sizeof(r.why), "%s", why);
	else /* a failed send's reason is the final one */
		assert_string_equal(why, r.why);
	/* A second clamd_end says the same. */
	char sig2[CLAMD_SIG_MAX + 1];
	assert_int_equal(clamd_end(c, sig2, why, sizeof(why)), r.end);
	assert_string_equal(sig2, r.sig);
	clamd_free(c);
	r.ms = (util_now_us() - t0) / 1000;
	return r;
}

static void *
read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("%s: %s (clamav-testfiles installed?)", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long len = ftell(f);
	assert_true(len > 0);
	rewind(f);
	void *buf = malloc((size_t)len);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	*n = (size_t)len;
	return buf;
}

static int
all_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* --- the real clamd -------------------------------------------------------------- */

static void
test_ping(void **state)
{
	(void)state;
	char why[256];
	assert_int_equal(clamd_ping(shared.sock, TIMEOUT_MS, why, sizeof(why)), BW_OK);
}

static void
test_clean(void **state)
{
	(void)state;
	static const char text[] = "Quarterly report, nothing to see here.\n";
	struct scan r = scan(shared.sock, TIMEOUT_MS, text, strlen(text), 0);
	assert_int_equal(r.begin, BW_OK);
	assert_int_equal(r.send, BW_OK);
	assert_int_equal(r.end, BW_OK);
	assert_string_equal(r.sig, "");
	/* An empty file is clean too. */
	r = scan(shared.sock, TIMEOUT_MS, "", 0, 0);
	assert_int_equal(r.end, BW_OK);
}

/*
 * [files] max_bytes (100 MiB) and a margin go through the test clamd:
 * many 64 KiB chunks, sends of 1 MiB at a time.
 */
static void
test_clean_large(void **state)
{
	(void)state;
	size_t piece = 1024 * 1024, total = 101 * piece;
	unsigned char *buf = malloc(piece);
	assert_non_null(buf);
	for (size_t i = 0; i < piece; i++)
		buf[i] = (unsigned char)(i * 7 + i / 251);
	struct clamd *c = NULL;
	char why[256], sig[CLAMD_SIG_MAX + 1];
	assert_int_equal(clamd_begin(shared.sock, 30000, &c, why, sizeof(why)), BW_OK);
	for (size_t off = 0; off < total; off += piece)
		assert_int_equal(clamd_send(c, buf, piece, why, sizeof(why)), BW_OK);
	bw_err e = clamd_end(c, sig, why, sizeof(why));
	if (e != BW_OK)
		fail_msg("101 MiB: %s", why);
	clamd_free(c);
	free(buf);
}

static void
test_eicar(void **state)
{
	(void)state;
	struct scan r = scan(shared.sock, TIMEOUT_MS, eicar, strlen(eicar), 0);
	assert_int_equal(r.send, BW_OK);
	assert_int_equal(r.end, BW_ERR_UNPROCESSABLE);
	/* An unofficial (unsigned) database's names carry ".UNOFFICIAL". */
	assert_true(strncmp(r.sig, "Eicar-Test-Signature", 20) == 0);
	assert_non_null(strstr(r.why, r.sig));
}

/* One byte, then seven, per clamd_send; empty sends between (never a chunk: one would end the stream). */
static void
test_eicar_pieces(void **state)
{
	(void)state;
	size_t pieces[] = {1, 7, 67};
	for (size_t i = 0; i < BW_ARRAY_LEN(pieces); i++) {
		struct scan r = scan(shared.sock, TIMEOUT_MS, eicar, strlen(eicar), pieces[i]);
		assert_int_equal(r.end, BW_ERR_UNPROCESSABLE);
		assert_true(strncmp(r.sig, "Eicar-Test-Signature", 20) == 0);
	}
	struct clamd *c = NULL;
	char why[256], sig[CLAMD_SIG_MAX + 1];
	assert_int_equal(clamd_begin(shared.sock, TIMEOUT_MS, &c, why, sizeof(why)), BW_OK);
	for (size_t i = 0; i < strlen(eicar); i++) {
		assert_int_equal(clamd_send(c, "", 0, why, sizeof(why)), BW_OK);
		assert_int_equal(clamd_send(c, eicar + i, 1, why, sizeof(why)), BW_OK);
	}
	assert_int_equal(clamd_end(c, sig, why, sizeof(why)), BW_ERR_UNPROCESSABLE);
	assert_true(strncmp(sig, "Eicar-Test-Signature", 20) == 0);
	clamd_free(c);
}

/* One ustar entry (name, n bytes of data) appended at out; the bytes written. */
static size_t
tar_entry(unsigned char *out, const char *name, const void *data, size_t n)
{
	unsigned char *h = out;
	memset(h, 0, 512);
	snprintf((char *)h, 100, "%s", name);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	snprintf((char *)h + 124, 12, "%011zo", n);
	snprintf((char *)h + 136, 12, "%011o", 0);
	memset(h + 148, ' ', 8);
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	unsigned sum = 0;
	for (size_t i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	memcpy(out + 512, data, n);
	size_t padded = (n + 511) / 512 * 512;
	memset(out + 512 + n, 0, padded - n);
	return 512 + padded;
}

/* EICAR in a tar after 300 KiB of another entry: what comes after the first chunks is scanned too. */
static void
test_eicar_late(void **state)
{
	(void)state;
	size_t pad = 300 * 1024;
	unsigned char *filler = malloc(pad), *tar = calloc(1, pad + 4096);
	assert_non_null(filler);
	assert_non_null(tar);
	for (size_t i = 0; i < pad; i++)
		filler[i] = (unsigned char)("log line\n"[i % 9]);
	size_t n = tar_entry(tar, "notes.txt", filler, pad);
	n += tar_entry(tar + n, "eicar.com", eicar, strlen(eicar));
	n += 1024; /* two empty blocks end the archive */
	struct scan r = scan(shared.sock, TIMEOUT_MS, tar, n, 0);
	assert_int_equal(r.end, BW_ERR_UNPROCESSABLE);
	assert_true(strncmp(r.sig, "Eicar-Test-Signature", 20) == 0);
	/* The same archive without EICAR is clean. */
	n = tar_entry(tar, "notes.txt", filler, pad) + 1024;
	memset(tar + n - 1024, 0, 1024);
	assert_int_equal(scan(shared.sock, TIMEOUT_MS, tar, n, 0).end, BW_OK);
	free(filler);
	free(tar);
}

/* clamav-testfiles: the sample itself and in archives clamd unpacks. */
static void
test_samples(void **state)
{
	(void)state;
	static const char *const names[] = {"clam.exe", "clam.zip", "clam.7z", "clam.tar.gz",
					    "clam.exe.bz2"};
	for (size_t i = 0; i < BW_ARRAY_LEN(names); i++) {
		char path[256];
		size_t n;
		snprintf(path, sizeof(path), "%s/%s", TESTFILES, names[i]);
		void *buf = read_file(path, &n);
		struct scan r = scan(shared.sock, TIMEOUT_MS, buf, n, 4096);
		if (r.end != BW_ERR_UNPROCESSABLE)
			fail_msg("%s: %d %s", names[i], r.end, r.why);
		assert_true(strncmp(r.sig, "ClamAV-Test-File", 16) == 0);
		free(buf);
	}
}

/* --- clamd's StreamMaxLength ----------------------------------------------------- */

static void
test_size_limit(void **state)
{
	(void)state;
	struct clamd_proc small;
	if (clamd_proc_start(&small, "--stream-max 1000") != 0) {
		clamd_proc_stop(&small);
		fail_msg("could not start a clamd with --stream-max 1000");
	}
	char buf[5000];
	memset(buf, 'a', sizeof(buf));
	/* Under its limit it scans. */
	struct scan r = scan(small.sock, TIMEOUT_MS, buf, 900, 0);
	assert_int_equal(r.end, BW_OK);
	/* Over it: one chunk of 5000, chunks of 100, and one big send. */
	size_t pieces[] = {0, 100, 999};
	for (size_t i = 0; i < BW_ARRAY_LEN(pieces); i++) {
		r = scan(small.sock, TIMEOUT_MS, buf, sizeof(buf), pieces[i]);
		if (r.end != BW_ERR_UNAVAILABLE || strstr(r.why, "size limit") == NULL)
			fail_msg("pieces of %zu: %d %s", pieces[i], r.end, r.why);
		assert_true(r.ms < TIMEOUT_MS);
	}
	/* Far over it (2 MiB): clamd hangs up while we send; its reason still comes back. */
	size_t big = 2 * 1024 * 1024;
	char *large = calloc(1, big);
	assert_non_null(large);
	r = scan(small.sock, TIMEOUT_MS, large, big, 0);
	free(large);
	clamd_proc_stop(&small);
	if (r.send != BW_ERR_UNAVAILABLE || strstr(r.why, "size limit") == NULL)
		fail_msg("2 MiB: send %d end %d %s", r.send, r.end, r.why);
	assert_int_equal(r.end, BW_ERR_UNAVAILABLE);
}

/* --- no clamd -------------------------------------------------------------------- */

static void
test_not_running(void **state)
{
	(void)state;
	char dir[64], path[128], why[256];
	assert_int_equal(unit_mkdtemp(dir, sizeof(dir), "clamd-none"), 0);
	snprintf(path, sizeof(path), "%s/clamd.sock", dir);
	/* Nothing at the path. */
	struct scan r = scan(path, TIMEOUT_MS, eicar, strlen(eicar), 0);
	assert_int_equal(r.begin, BW_ERR_UNAVAILABLE);
	assert_non_null(strstr(r.why, "not running"));
	assert_null(strstr(r.why, dir)); /* no path in a reason a client may see */
	assert_int_equal(clamd_ping(path, TIMEOUT_MS, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	/* A socket left behind with nobody listening. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", path);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	r = scan(path, TIMEOUT_MS, eicar, strlen(eicar), 0);
	assert_int_equal(r.begin, BW_ERR_UNAVAILABLE);
	assert_true(r.ms < 1000);
	/* A regular file, a path longer than sun_path, no path, a bad timeout. */
	unlink(path);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(scan(path, TIMEOUT_MS, "x", 1, 0).begin, BW_ERR_UNAVAILABLE);
	char longpath[300];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(scan(longpath, TIMEOUT_MS, "x", 1, 0).begin, BW_ERR_UNAVAILABLE);
	assert_int_equal(scan("", TIMEOUT_MS, "x", 1, 0).begin, BW_ERR_UNAVAILABLE);
	struct clamd *c = NULL;
	assert_int_equal(clamd_begin(NULL, TIMEOUT_MS, &c, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	assert_int_equal(clamd_begin(shared.sock, 0, &c, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	assert_int_equal(clamd_ping(shared.sock, -1, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	assert_null(c);
	clamd_free(NULL);
	assert_int_equal(unit_rmtree(dir), 0);
}

/* --- fake clamds ------------------------------------------------------------------- */

enum fake_mode {
	FAKE_SILENT, /* reads everything, never answers */
	FAKE_NOREAD, /* accepts, never reads */
	FAKE_REPLY,  /* reads the command and the stream to its end, then writes reply */
	FAKE_EARLY,  /* writes reply as soon as it has the command, then reads on */
};

struct fake {
	char dir[64];
	char path[128];
	int lfd;
	int stop[2]; /* written to when the test is done with it */
	enum fake_mode mode;
	const char *reply;
	size_t reply_len;
	pthread_t th;
};

/* n bytes from fd unless told to stop; 0, or -1 at the end or the stop. */
static int
fake_read(struct fake *f, int fd, void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = f->stop[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0)
			return -1;
		if (p[1].revents)
			return -1;
		ssize_t k = read(fd, (char *)buf + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

/* The command up to its NUL; for INSTREAM (and unless only the command), the chunks up to the empty one. */
static int
fake_read_request(struct fake *f, int fd, int command_only)
{
	char cmd[32];
	size_t len = 0;
	do {
		if (len == sizeof(cmd) || fake_read(f, fd, cmd + len, 1) != 0)
			return -1;
	} while (cmd[len++] != '\0');
	if (command_only || strcmp(cmd, "zINSTREAM") != 0)
		return 0;
	for (;;) {
		unsigned char hdr[4];
		if (fake_read(f, fd, hdr, 4) != 0)
			return -1;
		uint32_t chunk = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
				 (uint32_t)hdr[2] << 8 | hdr[3];
		if (chunk == 0)
			return 0;
		if (chunk > 64 * 1024) /* the client promises chunks of at most 64 KiB */
			return -1;
		char skip[4096];
		while (chunk > 0) {
			uint32_t k = chunk < sizeof(skip) ? chunk : (uint32_t)sizeof(skip);
			if (fake_read(f, fd, skip, k) != 0)
				return -1;
			chunk -= k;
		}
	}
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd p[2] = {{.fd = f->lfd, .events = POLLIN}, {.fd = f->stop[0], .events = POLLIN}};
	while (poll(p, 2, -1) > 0 && !p[1].revents) {
		int fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			break;
		char junk[4096];
		switch (f->mode) {
		case FAKE_SILENT:
			while (fake_read(f, fd, junk, 1) == 0)
				;
			break;
		case FAKE_NOREAD: {
			struct pollfd s = {.fd = f->stop[0], .events = POLLIN};
			(void)poll(&s, 1, -1);
			break;
		}
		case FAKE_REPLY:
			if (fake_read_request(f, fd, 0) == 0)
				(void)!write(fd, f->reply, f->reply_len);
			break;
		case FAKE_EARLY:
			if (fake_read_request(f, fd, 1) == 0) {
				(void)!write(fd, f->reply, f->reply_len);
				while (fake_read(f, fd, junk, 1) == 0)
					;
			}
			break;
		}
		close(fd);
		if (f->mode == FAKE_NOREAD)
			break;
	}
	return NULL;
}

static void
fake_start(struct fake *f, enum fake_mode mode, const char *reply, size_t reply_len)
{
	memset(f, 0, sizeof(*f));
	f->mode = mode;
	f->reply = reply;
	f->reply_len = reply_len;
	assert_int_equal(unit_mkdtemp(f->dir, sizeof(f->dir), "clamd-fake"), 0);
	snprintf(f->path, sizeof(f->path), "%s/clamd.sock", f->dir);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", f->path);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(pipe(f->stop), 0);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	assert_int_equal(write(f->stop[1], "x", 1), 1);
	assert_int_equal(pthread_join(f->th, NULL), 0);
	close(f->stop[0]);
	close(f->stop[1]);
	close(f->lfd);
	assert_int_equal(unit_rmtree(f->dir), 0);
}

/* Within about the timeout: not before it, and not long after. */
static void
assert_about(uint64_t ms, long timeout_ms)
{
	if ((long)ms < timeout_ms - 50 || (long)ms > timeout_ms + 1500)
		fail_msg("took %llu ms with a timeout of %ld ms", (unsigned long long)ms, timeout_ms);
}

static void
test_slow(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f, FAKE_SILENT, NULL, 0);
	struct scan r = scan(f.path, SHORT_MS, eicar, strlen(eicar), 0);
	assert_int_equal(r.begin, BW_OK);
	assert_int_equal(r.send, BW_OK);
	assert_int_equal(r.end, BW_ERR_UNAVAILABLE);
	assert_non_null(strstr(r.why, "did not answer"));
	assert_about(r.ms, SHORT_MS);
	char why[256];
	uint64_t t0 = util_now_us();
	assert_int_equal(clamd_ping(f.path, SHORT_MS, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	assert_about((util_now_us() - t0) / 1000, SHORT_MS);
	fake_stop(&f);
}

/* A clamd that takes nothing: the send itself times out (the socket buffer fills). */
static void
test_not_reading(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f, FAKE_NOREAD, NULL, 0);
	size_t n = 16 * 1024 * 1024;
	char *buf = calloc(1, n);
	assert_non_null(buf);
	struct clamd *c = NULL;
	char why[256], sig[CLAMD_SIG_MAX + 1];
	assert_int_equal(clamd_begin(f.path, SHORT_MS, &c, why, sizeof(why)), BW_OK);
	uint64_t t0 = util_now_us();
	assert_int_equal(clamd_send(c, buf, n, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	assert_about((util_now_us() - t0) / 1000, SHORT_MS);
	assert_non_null(strstr(why, "did not answer"));
	/* Every later call says the same at once. */
	t0 = util_now_us();
	assert_int_equal(clamd_send(c, "x", 1, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	assert_int_equal(clamd_end(c, sig, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	assert_true((util_now_us() - t0) / 1000 < 100);
	assert_string_equal(sig, "");
	clamd_free(c);
	free(buf);
	fake_stop(&f);
}

#define REPLY(s) s, sizeof(s) - 1 /* with the NUL of a "z" reply when s has one */

static void
test_garbage(void **state)
{
	(void)state;
	char toolong[3000];
	memset(toolong, 'A', sizeof(toolong));
	memcpy(toolong, "stream: ", 8);
	memcpy(toolong + sizeof(toolong) - 7, " FOUND", 7); /* its NUL, far out */
	static const struct {
		const char *reply;
		size_t len;
	} bad[] = {
	    {REPLY("garbage\0")},
	    {REPLY("stream: OK")}, /* no NUL: the connection closes first */
	    {REPLY("\0")},
	    {REPLY("OK\0")},
	    {REPLY("stream: OKAY\0")},
	    {REPLY("stream: OK \0")},
	    {REPLY(" stream: OK\0")},
	    {REPLY("stream:  FOUND\0")},
	    {REPLY("stream: FOUND\0")},
	    {REPLY("stream: Eicar FOUND")}, /* no NUL */
	    {REPLY("PONG\0")},
	    {REPLY("stream: Can't create temporary file ERROR\0")},
	    {REPLY("\xff\xfe\x01\0")},
	    {REPLY("")}, /* closes without a word */
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		struct fake f;
		fake_start(&f, FAKE_REPLY, bad[i].reply, bad[i].len);
		struct scan r = scan(f.path, TIMEOUT_MS, "hello", 5, 0);
		fake_stop(&f);
		if (r.end != BW_ERR_UNAVAILABLE)
			fail_msg("reply %zu \"%.*s\": %d %s", i, (int)bad[i].len, bad[i].reply, r.end,
				 r.why);
		assert_true(all_printable(r.why));
		assert_string_equal(r.sig, "");
		assert_true(r.ms < TIMEOUT_MS);
	}
	/* Far too long, with and without its NUL. */
	for (int nul = 0; nul < 2; nul++) {
		struct fake f;
		fake_start(&f, FAKE_REPLY, toolong, sizeof(toolong) - (size_t)(1 - nul));
		struct scan r = scan(f.path, TIMEOUT_MS, "hello", 5, 0);
		fake_stop(&f);
		assert_int_equal(r.end, BW_ERR_UNAVAILABLE);
		assert_non_null(strstr(r.why, "too long"));
	}
	/* The fake itself is believed when it says the right thing. */
	struct fake f;
	fake_start(&f, FAKE_REPLY, REPLY("stream: OK\0"));
	assert_int_equal(scan(f.path, TIMEOUT_MS, "hello", 5, 0).end, BW_OK);
	fake_stop(&f);
	fake_start(&f, FAKE_REPLY, REPLY("PONG\0"));
	char why[256];
	assert_int_equal(clamd_ping(f.path, TIMEOUT_MS, why, sizeof(why)), BW_OK);
	fake_stop(&f);
	fake_start(&f, FAKE_REPLY, REPLY("PONK\0"));
	assert_int_equal(clamd_ping(f.path, TIMEOUT_MS, why, sizeof(why)), BW_ERR_UNAVAILABLE);
	fake_stop(&f);
}

/* A FOUND is believed; its name is cut to CLAMD_SIG_MAX and made printable. */
static void
test_found_sanitised(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f, FAKE_REPLY, REPLY("stream: Evil\x1b[31m\xc3\xa9Sig FOUND\0"));
	struct scan r = scan(f.path, TIMEOUT_MS, "hello", 5, 0);
	fake_stop(&f);
	assert_int_equal(r.end, BW_ERR_UNPROCESSABLE);
	assert_string_equal(r.sig, "Evil?[31m??Sig");
	assert_true(all_printable(r.why));
	char reply[600];
	memset(reply, 'S', sizeof(reply));
	memcpy(reply, "stream: ", 8);
	memcpy(reply + sizeof(reply) - 7, " FOUND", 7);
	fake_start(&f, FAKE_REPLY, reply, sizeof(reply));
	r = scan(f.path, TIMEOUT_MS, "hello", 5, 0);
	fake_stop(&f);
	assert_int_equal(r.end, BW_ERR_UNPROCESSABLE);
	assert_int_equal(strlen(r.sig), CLAMD_SIG_MAX);
}

/*
 * An answer before the end of the stream is no verdict on it: "stream: OK"
 * then is UNAVAILABLE (and so is a FOUND); only a refusal is believed.
 */
static void
test_early_answer(void **state)
{
	(void)state;
	static const struct {
		const char *reply;
		size_t len;
		const char *why;
	} v[] = {
	    {REPLY("stream: OK\0"), "before the end"},
	    {REPLY("stream: Eicar-Test-Signature FOUND\0"), "before the end"},
	    {REPLY("INSTREAM size limit exceeded. ERROR\0"), "size limit"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(v); i++) {
		struct fake f;
		fake_start(&f, FAKE_EARLY, v[i].reply, v[i].len);
		struct clamd *c = NULL;
		char why[256], sig[CLAMD_SIG_MAX + 1];
		assert_int_equal(clamd_begin(f.path, TIMEOUT_MS, &c, why, sizeof(why)), BW_OK);
		usleep(100 * 1000); /* the answer is there before we send */
		bw_err s = clamd_send(c, "hello", 5, why, sizeof(why));
		bw_err e = clamd_end(c, sig, why, sizeof(why));
		clamd_free(c);
		fake_stop(&f);
		assert_int_equal(s, BW_ERR_UNAVAILABLE);
		assert_int_equal(e, BW_ERR_UNAVAILABLE);
		if (strstr(why, v[i].why) == NULL)
			fail_msg("reply %zu: %s", i, why);
		assert_string_equal(sig, "");
	}
}

/* --- clamd killed mid-stream ------------------------------------------------------- */

static void
test_killed(void **state)
{
	(void)state;
	struct clamd_proc victim;
	if (clamd_proc_start(&victim, "") != 0) {
		clamd_proc_stop(&victim);
		fail_msg("could not start a clamd to kill");
	}
	size_t n = 256 * 1024;
	char *buf = calloc(1, n);
	assert_non_null(buf);
	struct clamd *c = NULL;
	char why[256], sig[CLAMD_SIG_MAX + 1];
	assert_int_equal(clamd_begin(victim.sock, TIMEOUT_MS, &c, why, sizeof(why)), BW_OK);
	assert_int_equal(clamd_send(c, buf, n, why, sizeof(why)), BW_OK);
	long pid = clamd_proc_pid(&victim);
	assert_true(pid > 1);
	assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
	uint64_t t0 = util_now_us();
	bw_err s = BW_OK;
	/* Send on until the send fails or 2 s have passed; then the verdict. */
	while (s == BW_OK && util_now_us() - t0 < 2000000)
		s = clamd_send(c, buf, n, why, sizeof(why));
	bw_err e = clamd_end(c, sig, why, sizeof(why));
	clamd_free(c);
	free(buf);
	clamd_proc_stop(&victim);
	assert_int_equal(s, BW_ERR_UNAVAILABLE);
	assert_int_equal(e, BW_ERR_UNAVAILABLE);
	assert_non_null(strstr(why, "closed the connection"));
	assert_true((util_now_us() - t0) / 1000 < TIMEOUT_MS);
	/* And now nothing is there. */
	assert_int_equal(clamd_ping(victim.sock, TIMEOUT_MS, why, sizeof(why)), BW_ERR_UNAVAILABLE);
}

int
main(void)
{
	signal(SIGPIPE, SIG_DFL); /* a send that raised it would kill the test */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ping),
	    cmocka_unit_test(test_clean),
	    cmocka_unit_test(test_clean_large),
	    cmocka_unit_test(test_eicar),
	    cmocka_unit_test(test_eicar_pieces),
	    cmocka_unit_test(test_eicar_late),
	    cmocka_unit_test(test_samples),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_not_running),
	    cmocka_unit_test(test_slow),
	    cmocka_unit_test(test_not_reading),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_found_sanitised),
	    cmocka_unit_test(test_early_answer),
	    cmocka_unit_test(test_killed),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
