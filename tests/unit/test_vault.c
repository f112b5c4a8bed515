/*
 * The vault's three providers. env and files against the real environment
 * and file system; infisical against tests/vault/infisical_mock.py, a MOCK
 * of Infisical's documented API (no real Infisical runs here), started per
 * test over HTTPS with a certificate this suite makes with the openssl CLI.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "vault/vault.h"

#define MOCK "tests/vault/infisical_mock.py"
#define CLIENT_ID "bulwark-test-client-id"
#define CLIENT_SECRET "mock-client-secret-7Qz9"
#define TOKEN "mock-access-token-Zx81pQ"
#define PROJECT "proj 42/x?y" /* characters that must be URL-escaped */
#define ENVIRONMENT "prod"
#define SECRET_PATH "/bulwark/a b&c+d=e"

static char tmpdir[256];
static pid_t mock_pid = -1;
static int mock_seq;

/* --- helpers ------------------------------------------------------------ */

static void
path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void
write_str(const char *path, const char *s, mode_t mode)
{
	write_file(path, s, strlen(s), mode);
}

/* A fresh directory for one files test. */
static void
fresh_dir(char *out, size_t len, const char *name)
{
	char cmd[600];
	path_in(out, len, name);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -m 700 '%s'", out, out);
	assert_int_equal(system(cmd), 0);
}

static int
env_has_secret_vars(void)
{
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, "BULWARK_SECRET_", 15) == 0)
			return 1;
	return 0;
}

static void
clear_secret_vars(void)
{
	char name[256];
	while (env_has_secret_vars()) {
		for (char **e = environ; *e != NULL; e++) {
			if (strncmp(*e, "BULWARK_SECRET_", 15) == 0) {
				size_t n = strcspn(*e, "=");
				snprintf(name, sizeof(name), "%.*s", (int)n, *e);
				unsetenv(name);
				break;
			}
		}
	}
}

/* The secret as a NUL-terminated string, asserting it exists. */
static const char *
get_str(struct vault *v, const char *name)
{
	static unsigned char buf[VAULT_SECRET_MAX + 1];
	size_t len = 0;
	bw_err e = vault_get(v, name, buf, VAULT_SECRET_MAX, &len);
	if (e != BW_OK)
		fail_msg("vault_get(%s): %s", name, bw_strerror(e));
	buf[len] = '\0';
	return (const char *)buf;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static void
assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle) != NULL)
		fail_msg("'%s' contains '%s'", hay, needle);
}

/* --- the mock ----------------------------------------------------------- */

/* Start the mock; returns its port. cert is "good" or "wrongname". */
static int
mock_start(const char *mode, const char *api, const char *cert)
{
	char ready[512], certp[512], keyp[512], logp[512], name[64];
	snprintf(name, sizeof(name), "ready-%d", mock_seq++);
	path_in(ready, sizeof(ready), name);
	snprintf(name, sizeof(name), "%s-cert.pem", cert);
	path_in(certp, sizeof(certp), name);
	snprintf(name, sizeof(name), "%s-key.pem", cert);
	path_in(keyp, sizeof(keyp), name);
	path_in(logp, sizeof(logp), "mock.log");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl("/usr/bin/python3", "python3", MOCK, "--cert", certp, "--key", keyp,
		      "--ready-file", ready, "--api", api, "--mode", mode, "--client-id", CLIENT_ID,
		      "--client-secret", CLIENT_SECRET, "--token", TOKEN, "--project", PROJECT,
		      "--environment", ENVIRONMENT, "--secret-path", SECRET_PATH, (char *)NULL);
		_exit(127);
	}
	mock_pid = pid;
	/* Bounded wait: 15 s for the interpreter to start and bind. */
	for (int i = 0; i < 1500; i++) {
		FILE *f = fopen(ready, "r");
		if (f != NULL) {
			int port = 0;
			int ok = fscanf(f, "%d", &port) == 1;
			fclose(f);
			if (ok && port > 0)
				return port;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			mock_pid = -1;
			fail_msg("the mock exited before it was ready (see %s)", logp);
		}
		usleep(10000);
	}
	fail_msg("the mock was not ready within 15 s");
	return -1;
}

static void
mock_stop(void)
{
	if (mock_pid <= 0)
		return;
	kill(mock_pid, SIGTERM);
	for (int i = 0; i < 300; i++) { /* 3 s, then no more asking */
		if (waitpid(mock_pid, NULL, WNOHANG) == mock_pid) {
			mock_pid = -1;
			return;
		}
		usleep(10000);
	}
	kill(mock_pid, SIGKILL);
	waitpid(mock_pid, NULL, 0);
	mock_pid = -1;
}

static int
mock_teardown(void **state)
{
	(void)state;
	mock_stop();
	return 0;
}

static void
infisical_cfg(struct config *c, int port, const char *api)
{
	char p[512];
	config_defaults(c);
	snprintf(c->vault_provider, sizeof(c->vault_provider), "infisical");
	snprintf(c->vault_infisical_url, sizeof(c->vault_infisical_url), "https://127.0.0.1:%d/",
		 port);
	snprintf(c->vault_infisical_api, sizeof(c->vault_infisical_api), "%s", api);
	snprintf(c->vault_infisical_project_id, sizeof(c->vault_infisical_project_id), "%s",
		 PROJECT);
	snprintf(c->vault_infisical_environment, sizeof(c->vault_infisical_environment), "%s",
		 ENVIRONMENT);
	snprintf(c->vault_infisical_secret_path, sizeof(c->vault_infisical_secret_path), "%s",
		 SECRET_PATH);
	path_in(p, sizeof(p), "client_id");
	snprintf(c->vault_infisical_client_id_file, CONFIG_STR, "%s", p);
	path_in(p, sizeof(p), "client_secret");
	snprintf(c->vault_infisical_client_secret_file, CONFIG_STR, "%s", p);
	path_in(p, sizeof(p), "good-cert.pem");
	snprintf(c->vault_infisical_ca_file, CONFIG_STR, "%s", p);
	c->vault_timeout = 5;
}

/* Open against the mock and expect failure e; err is returned for checks. */
static const char *
infisical_fails(const struct config *c, bw_err want)
{
	static char err[1024];
	struct vault *v = (struct vault *)1;
	bw_err e = vault_open(c, &v, err, sizeof(err));
	if (e == BW_OK)
		fail_msg("vault_open succeeded; expected %s", bw_strerror(want));
	assert_null(v);
	if (e != want)
		fail_msg("vault_open: %s (%s); expected %s", bw_strerror(e), err, bw_strerror(want));
	print_message("    %s\n", err); /* for the log: what an operator would read */
	assert_contains(err, "vault provider infisical: ");
	/* Whatever failed, no credential appears in the message. */
	assert_lacks(err, CLIENT_SECRET);
	assert_lacks(err, TOKEN);
	return err;
}

static int
group_setup(void **state)
{
	(void)state;
	char cmd[2048], p[512];
	clear_secret_vars();
	if (unit_mkdtemp(tmpdir, sizeof(tmpdir), "vault") != 0)
		return -1;
	/* "good": for 127.0.0.1; "wrongname": valid, trusted, for another name. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
		 "-keyout good-key.pem -out good-cert.pem 2>/dev/null && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-days 2 -subj /CN=other.example -addext subjectAltName=DNS:other.example "
		 "-keyout wrongname-key.pem -out wrongname-cert.pem 2>/dev/null",
		 tmpdir);
	if (system(cmd) != 0)
		return -1;
	path_in(p, sizeof(p), "client_id");
	write_str(p, CLIENT_ID "\n", 0600);
	path_in(p, sizeof(p), "client_secret");
	write_str(p, CLIENT_SECRET "\n", 0600);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	mock_stop();
	clear_secret_vars();
	return unit_rmtree(tmpdir);
}

/* --- the interface ------------------------------------------------------ */

static void
test_close_null_and_unknown_provider(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	struct vault *v = (struct vault *)1;
	vault_close(NULL);
	config_defaults(&c);
	assert_string_equal(c.vault_provider, "env");
	snprintf(c.vault_provider, sizeof(c.vault_provider), "vaultish");
	assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_CONFIG);
	assert_null(v);
	assert_contains(err, "vaultish");
}

/* --- env ------------------------------------------------------------------ */

static void
test_env_loads_and_removes(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	struct vault *v = NULL;
	/* putenv: the string stays ours, so we can see that it was wiped. */
	static char var[] = "BULWARK_SECRET_API_KEY=k3y-value with spaces";
	clear_secret_vars();
	assert_int_equal(putenv(var), 0);
	assert_int_equal(setenv("BULWARK_SECRET_DB_PASSWORD", "hunter2=x", 1), 0);
	assert_int_equal(setenv("BULWARK_SECRETS", "not a secret variable", 1), 0);
	config_defaults(&c);
	if (vault_open(&c, &v, err, sizeof(err)) != BW_OK)
		fail_msg("vault_open: %s", err);
	assert_string_equal(vault_provider_name(v), "env");
	assert_string_equal(get_str(v, "API_KEY"), "k3y-value with spaces");
	assert_string_equal(get_str(v, "DB_PASSWORD"), "hunter2=x");
	/* gone from the environment, so no child process inherits them */
	assert_null(getenv("BULWARK_SECRET_API_KEY"));
	assert_null(getenv("BULWARK_SECRET_DB_PASSWORD"));
	assert_false(env_has_secret_vars());
	/* and the value was wiped where it lay, not just unlinked */
	assert_string_equal(var, "BULWARK_SECRET_API_KEY=");
	for (size_t i = strlen("BULWARK_SECRET_API_KEY="); i < sizeof(var) - 1; i++)
		assert_int_equal(var[i], 0);
	/* other variables are left alone */
	assert_string_equal(getenv("BULWARK_SECRETS"), "not a secret variable");
	unsetenv("BULWARK_SECRETS");
	vault_close(v);
}

static void
test_env_get_errors(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	unsigned char buf[64];
	size_t len = 0;
	struct vault *v = NULL;
	clear_secret_vars();
	assert_int_equal(setenv("BULWARK_SECRET_TOKEN", "0123456789", 1), 0);
	config_defaults(&c);
	if (vault_open(&c, &v, err, sizeof(err)) != BW_OK)
		fail_msg("vault_open: %s", err);
	assert_int_equal(vault_get(v, "MISSING", buf, sizeof(buf), &len), BW_ERR_NOTFOUND);
	assert_int_equal(vault_get(v, "token", buf, sizeof(buf), &len), BW_ERR_INVALID);
	assert_int_equal(vault_get(v, "", buf, sizeof(buf), &len), BW_ERR_INVALID);
	memset(buf, 0xAA, sizeof(buf));
	assert_int_equal(vault_get(v, "TOKEN", buf, 9, &len), BW_ERR_TOO_LARGE);
	assert_int_equal(len, 10); /* the size needed */
	assert_int_equal(buf[0], 0xAA); /* and nothing partial copied */
	assert_int_equal(vault_get(v, "TOKEN", buf, 10, &len), BW_OK);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, "0123456789", 10);
	vault_close(v);
}

/*
 * Invalid names are refused, not ignored: a misspelt variable stops
 * start-up and says which, and every BULWARK_SECRET_* is still removed.
 */
static void
test_env_invalid_name_refused(void **state)
{
	(void)state;
	static const char *bad[] = {"BULWARK_SECRET_db_password", "BULWARK_SECRET_DB-PASSWORD",
				    "BULWARK_SECRET_"};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		struct config c;
		char err[512];
		struct vault *v = (struct vault *)1;
		clear_secret_vars();
		assert_int_equal(setenv("BULWARK_SECRET_GOOD", "good-value", 1), 0);
		assert_int_equal(setenv(bad[i], "the-bad-value", 1), 0);
		config_defaults(&c);
		assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_INVALID);
		assert_null(v);
		assert_contains(err, "vault provider env: ");
		assert_contains(err, bad[i]);
		assert_lacks(err, "the-bad-value");
		assert_false(env_has_secret_vars());
	}
}

static void
test_env_value_limits(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	struct vault *v = NULL;
	static char big[VAULT_SECRET_MAX + 2];
	config_defaults(&c);

	clear_secret_vars();
	assert_int_equal(setenv("BULWARK_SECRET_EMPTY", "", 1), 0);
	assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_INVALID);
	assert_contains(err, "EMPTY");

	memset(big, 'b', VAULT_SECRET_MAX + 1);
	clear_secret_vars();
	assert_int_equal(setenv("BULWARK_SECRET_BIG", big, 1), 0);
	assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_TOO_LARGE);
	assert_contains(err, "BIG");
	assert_false(env_has_secret_vars());

	big[VAULT_SECRET_MAX] = '\0'; /* exactly the maximum is fine */
	assert_int_equal(setenv("BULWARK_SECRET_BIG", big, 1), 0);
	if (vault_open(&c, &v, err, sizeof(err)) != BW_OK)
		fail_msg("vault_open: %s", err);
	assert_int_equal(strlen(get_str(v, "BIG")), VAULT_SECRET_MAX);
	vault_close(v);

	/* at most VAULT_MAX_SECRETS */
	clear_secret_vars();
	for (int i = 0; i <= VAULT_MAX_SECRETS; i++) {
		char name[64];
		snprintf(name, sizeof(name), "BULWARK_SECRET_S%d", i);
		assert_int_equal(setenv(name, "v", 1), 0);
	}
	assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_NOMEM);
	assert_contains(err, "more than 64 secrets");
	assert_false(env_has_secret_vars());
}

/*
 * The store is left out of core dumps (VmFlags "dd") and locked ("lo"),
 * as /proc/self/smaps shows; both go when the vault is closed.
 */
static void
smaps_kb(long *dd, long *lo)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	long size = 0;
	*dd = *lo = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "Size:", 5) == 0)
			size = strtol(line + 5, NULL, 10);
		else if (strncmp(line, "VmFlags:", 8) == 0) {
			if (strstr(line, " dd") != NULL)
				*dd += size;
			if (strstr(line, " lo") != NULL)
				*lo += size;
		}
	}
	fclose(f);
}

static void
test_store_locked_and_not_dumped(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	struct vault *v = NULL;
	long dd0, lo0, dd1, lo1, dd2, lo2;
	const long need_kb = (long)VAULT_MAX_SECRETS * VAULT_SECRET_MAX / 1024;
	struct rlimit rl;
	clear_secret_vars();
	assert_int_equal(setenv("BULWARK_SECRET_X", "x", 1), 0);
	config_defaults(&c);
	smaps_kb(&dd0, &lo0);
	if (vault_open(&c, &v, err, sizeof(err)) != BW_OK)
		fail_msg("vault_open: %s", err);
	smaps_kb(&dd1, &lo1);
	vault_close(v);
	smaps_kb(&dd2, &lo2);
	if (dd1 - dd0 < need_kb)
		fail_msg("MADV_DONTDUMP memory grew by %ld kB, expected >= %ld", dd1 - dd0, need_kb);
	assert_true(dd1 - dd2 >= need_kb);
	/* mlock is best effort: only expect it where the limit allows it. */
	assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &rl), 0);
	if (geteuid() == 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= (rlim_t)(lo0 + 2 * need_kb) * 1024) {
		if (lo1 - lo0 < need_kb)
			fail_msg("locked memory grew by %ld kB, expected >= %ld", lo1 - lo0, need_kb);
		assert_true(lo1 - lo2 >= need_kb);
	}
}

/* --- files ---------------------------------------------------------------- */

static void
files_cfg(struct config *c, const char *dir)
{
	config_defaults(c);
	snprintf(c->vault_provider, sizeof(c->vault_provider), "files");
	snprintf(c->vault_files_dir, sizeof(c->vault_files_dir), "%s", dir);
}

static void
test_files_loads(void **state)
{
	(void)state;
	char dir[512], p[700], err[1024];
	struct config c;
	struct vault *v = NULL;
	static const unsigned char bin[] = {0, 1, 2, 0xff, '\n', 'x', '\n'};
	unsigned char buf[16];
	size_t len = 0;
	fresh_dir(dir, sizeof(dir), "creds");
	snprintf(p, sizeof(p), "%s/DB_PASSWORD", dir);
	write_str(p, "s3cret\n", 0600);
	snprintf(p, sizeof(p), "%s/API_KEY", dir);
	write_str(p, "two-newlines\n\n", 0400); /* only one is stripped */
	snprintf(p, sizeof(p), "%s/NO_NEWLINE", dir);
	write_str(p, "as-is", 0600);
	snprintf(p, sizeof(p), "%s/BINARY", dir);
	write_file(p, bin, sizeof(bin), 0600);
	/* not secrets: names outside [A-Z0-9_], even when others may read them */
	snprintf(p, sizeof(p), "%s/readme.txt", dir);
	write_str(p, "x", 0644);
	snprintf(p, sizeof(p), "%s/db_password", dir);
	write_str(p, "x", 0644);
	snprintf(p, sizeof(p), "%s/.HIDDEN", dir);
	write_str(p, "x", 0644);
	snprintf(p, sizeof(p), "%s/SUBDIR", dir); /* a valid name, not a file */
	assert_int_equal(mkdir(p, 0755), 0);

	files_cfg(&c, dir);
	if (vault_open(&c, &v, err, sizeof(err)) != BW_OK)
		fail_msg("vault_open: %s", err);
	assert_string_equal(vault_provider_name(v), "files");
	assert_string_equal(get_str(v, "DB_PASSWORD"), "s3cret");
	assert_string_equal(get_str(v, "API_KEY"), "two-newlines\n");
	assert_string_equal(get_str(v, "NO_NEWLINE"), "as-is");
	assert_int_equal(vault_get(v, "BINARY", buf, sizeof(buf), &len), BW_OK);
	assert_int_equal(len, sizeof(bin) - 1); /* binary kept, inner newline too */
	assert_memory_equal(buf, bin, sizeof(bin) - 1);
	assert_int_equal(vault_get(v, "db_password", buf, sizeof(buf), &len), BW_ERR_INVALID);
	assert_int_equal(vault_get(v, "SUBDIR", buf, sizeof(buf), &len), BW_ERR_NOTFOUND);
	assert_int_equal(vault_get(v, "HIDDEN", buf, sizeof(buf), &len), BW_ERR_NOTFOUND);
	vault_close(v);
}

static void
test_files_group_or_world_readable_refused(void **state)
{
	(void)state;
	static const mode_t modes[] = {0640, 0604, 0660, 0602};
	for (size_t i = 0; i < BW_ARRAY_LEN(modes); i++) {
		char dir[512], p[700], err[1024];
		struct config c;
		struct vault *v = (struct vault *)1;
		fresh_dir(dir, sizeof(dir), "creds-perm");
		snprintf(p, sizeof(p), "%s/OK_ONE", dir);
		write_str(p, "fine", 0600);
		snprintf(p, sizeof(p), "%s/SHARED_KEY", dir);
		write_str(p, "leaky-value", modes[i]);
		files_cfg(&c, dir);
		assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_CONFIG);
		assert_null(v);
		assert_contains(err, "vault provider files: ");
		assert_contains(err, p); /* names the file */
		assert_contains(err, "chmod 600");
		assert_lacks(err, "leaky-value");
	}
}

static void
test_files_missing_dir(void **state)
{
	(void)state;
	char dir[512], err[1024];
	struct config c;
	struct vault *v = (struct vault *)1;
	path_in(dir, sizeof(dir), "no-such-dir");
	files_cfg(&c, dir);
	assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_CONFIG);
	assert_null(v);
	assert_contains(err, "vault provider files: ");
	assert_contains(err, dir);
}

static void
test_files_credentials_directory(void **state)
{
	(void)state;
	char dir[512], p[700], err[1024];
	struct config c;
	struct vault *v = NULL;
	fresh_dir(dir, sizeof(dir), "systemd-creds");
	snprintf(p, sizeof(p), "%s/FROM_SYSTEMD", dir);
	write_str(p, "loaded-credential\n", 0400);
	files_cfg(&c, ""); /* empty: $CREDENTIALS_DIRECTORY */
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);
	bw_err e = vault_open(&c, &v, err, sizeof(err));
	unsetenv("CREDENTIALS_DIRECTORY");
	if (e != BW_OK)
		fail_msg("vault_open: %s", err);
	assert_string_equal(get_str(v, "FROM_SYSTEMD"), "loaded-credential");
	vault_close(v);

	/* neither set: a clear error, not the current directory */
	v = (struct vault *)1;
	assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_CONFIG);
	assert_null(v);
	assert_contains(err, "CREDENTIALS_DIRECTORY");
	/* files_dir wins over the variable */
	files_cfg(&c, dir);
	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", "/nonexistent", 1), 0);
	e = vault_open(&c, &v, err, sizeof(err));
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(e, BW_OK);
	vault_close(v);
}

static void
test_files_size_limit(void **state)
{
	(void)state;
	char dir[512], p[700], err[1024];
	struct config c;
	struct vault *v = NULL;
	static char big[VAULT_SECRET_MAX + 2];
	fresh_dir(dir, sizeof(dir), "creds-size");
	snprintf(p, sizeof(p), "%s/BIG", dir);
	memset(big, 'z', sizeof(big));
	big[VAULT_SECRET_MAX] = '\n'; /* the maximum plus its newline: fine */
	write_file(p, big, VAULT_SECRET_MAX + 1, 0600);
	files_cfg(&c, dir);
	if (vault_open(&c, &v, err, sizeof(err)) != BW_OK)
		fail_msg("vault_open: %s", err);
	assert_int_equal(strlen(get_str(v, "BIG")), VAULT_SECRET_MAX);
	vault_close(v);
	big[VAULT_SECRET_MAX] = 'z'; /* one byte more: refused */
	write_file(p, big, VAULT_SECRET_MAX + 1, 0600);
	v = (struct vault *)1;
	assert_int_equal(vault_open(&c, &v, err, sizeof(err)), BW_ERR_TOO_LARGE);
	assert_null(v);
	assert_contains(err, p);
}

/* --- infisical (against the mock) --------------------------------------- */

static void
check_mock_secrets(struct vault *v)
{
	assert_string_equal(vault_provider_name(v), "infisical");
	assert_string_equal(get_str(v, "DB_PASSWORD"), "pa ss&word=1?%2F\"quoted\"\\");
	assert_string_equal(get_str(v, "SIGNING_KEY"), "line one\nline two\n");
	assert_string_equal(get_str(v, "UNICODE_VALUE"), "gr\xc3\xbc\xc3\x9f" "e \xe2\x98\x83");
}

static void
test_infisical_v3(void **state)
{
	(void)state;
	struct config c;
	char err[1024];
	struct vault *v = NULL;
	infisical_cfg(&c, mock_start("ok", "v3", "good"), "v3");
	if (vault_open(&c, &v, err, sizeof(err)) != BW_OK)
		fail_msg("vault_open: %s", err);
	check_mock_secrets(v);
	vault_close(v);
	/* the v4 endpoint does not exist on this (v3) mock: the setting is obeyed */
	snprintf(c.vault_infisical_api, sizeof(c.vault_infisical_api), "v4");
	const char *e = infisical_fails(&c, BW_ERR_UNAVAILABLE);
	assert_contains(e, "/api/v4/secrets: HTTP 404");
}

static void
test_infisical_v4(void **state)
{
	(void)state;
	struct config c;
	char err[1024];
	struct vault *v = NULL;
	infisical_cfg(&c, mock_start("ok", "v4", "good"), "v4");
	if (vault_open(&c, &v, err, sizeof(err)) != BW_OK)
		fail_msg("vault_open: %s", err);
	check_mock_secrets(v);
	vault_close(v);
}

static void
test_infisical_wrong_client_secret(void **state)
{
	(void)state;
	struct config c;
	char p[512];
	infisical_cfg(&c, mock_start("ok", "v3", "good"), "v3");
	path_in(p, sizeof(p), "wrong_secret");
	write_str(p, "not-the-secret\n", 0600);
	snprintf(c.vault_infisical_client_secret_file, CONFIG_STR, "%s", p);
	const char *e = infisical_fails(&c, BW_ERR_UNAUTHORIZED);
	assert_contains(e, "HTTP 401");
	assert_contains(e, "/api/v1/auth/universal-auth/login");
	assert_lacks(e, "not-the-secret");
}

static void
test_infisical_token_refused(void **state)
{
	(void)state;
	struct config c;
	infisical_cfg(&c, mock_start("status401", "v3", "good"), "v3");
	const char *e = infisical_fails(&c, BW_ERR_UNAUTHORIZED);
	assert_contains(e, "GET https://127.0.0.1:");
	assert_contains(e, "/api/v3/secrets/raw: HTTP 401");
}

static void
test_infisical_server_error(void **state)
{
	(void)state;
	struct config c;
	infisical_cfg(&c, mock_start("status500", "v3", "good"), "v3");
	const char *e = infisical_fails(&c, BW_ERR_UNAVAILABLE);
	assert_contains(e, "/api/v3/secrets/raw: HTTP 500");
}

static void
test_infisical_bad_json(void **state)
{
	(void)state;
	struct config c;
	infisical_cfg(&c, mock_start("badjson", "v3", "good"), "v3");
	const char *e = infisical_fails(&c, BW_ERR_INVALID);
	assert_contains(e, "not valid JSON");
	mock_stop();
	infisical_cfg(&c, mock_start("badshape", "v3", "good"), "v3");
	e = infisical_fails(&c, BW_ERR_INVALID);
	assert_contains(e, "\"secrets\" array");
}

static void
test_infisical_hidden_value(void **state)
{
	(void)state;
	struct config c;
	infisical_cfg(&c, mock_start("hidden", "v3", "good"), "v3");
	const char *e = infisical_fails(&c, BW_ERR_DENIED);
	assert_contains(e, "DB_PASSWORD is hidden");
}

static void
test_infisical_huge_answer(void **state)
{
	(void)state;
	struct config c;
	infisical_cfg(&c, mock_start("huge", "v3", "good"), "v3");
	const char *e = infisical_fails(&c, BW_ERR_TOO_LARGE);
	assert_contains(e, "larger than 1048576 bytes");
}

static void
test_infisical_unreachable(void **state)
{
	(void)state;
	struct config c;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd); /* nothing listens there now */
	infisical_cfg(&c, ntohs(a.sin_port), "v3");
	double t0 = now_s();
	const char *e = infisical_fails(&c, BW_ERR_UNAVAILABLE);
	assert_true(now_s() - t0 < 3.0);
	assert_contains(e, "/api/v1/auth/universal-auth/login");
}

/* No CA file: the system's CAs do not know the mock's certificate. */
static void
test_infisical_untrusted_certificate(void **state)
{
	(void)state;
	struct config c;
	infisical_cfg(&c, mock_start("ok", "v3", "good"), "v3");
	c.vault_infisical_ca_file[0] = '\0';
	const char *e = infisical_fails(&c, BW_ERR_UNAVAILABLE);
	assert_contains(e, "certificate");
}

/* A trusted certificate for another name: the host name check is on too. */
static void
test_infisical_wrong_host_name(void **state)
{
	(void)state;
	struct config c;
	char p[512];
	infisical_cfg(&c, mock_start("ok", "v3", "wrongname"), "v3");
	path_in(p, sizeof(p), "wrongname-cert.pem");
	snprintf(c.vault_infisical_ca_file, CONFIG_STR, "%s", p);
	const char *e = infisical_fails(&c, BW_ERR_UNAVAILABLE);
	assert_contains(e, "127.0.0.1");
}

static void
test_infisical_https_only(void **state)
{
	(void)state;
	struct config c;
	infisical_cfg(&c, 1, "v3");
	snprintf(c.vault_infisical_url, sizeof(c.vault_infisical_url), "http://127.0.0.1:1");
	const char *e = infisical_fails(&c, BW_ERR_CONFIG);
	assert_contains(e, "must be an https:// URL");
	/* credentials in the URL: refused and not repeated */
	snprintf(c.vault_infisical_url, sizeof(c.vault_infisical_url),
		 "https://user:url-password@127.0.0.1:1");
	e = infisical_fails(&c, BW_ERR_CONFIG);
	assert_lacks(e, "url-password");
}

static void
test_infisical_hang_times_out(void **state)
{
	(void)state;
	struct config c;
	infisical_cfg(&c, mock_start("hang", "v3", "good"), "v3");
	c.vault_timeout = 1;
	double t0 = now_s();
	const char *e = infisical_fails(&c, BW_ERR_UNAVAILABLE);
	double dt = now_s() - t0;
	if (dt > 4.0)
		fail_msg("took %.1f s with a 1 s timeout", dt);
	assert_contains(e, "no answer within 1 s");
}

static void
test_infisical_credential_files(void **state)
{
	(void)state;
	struct config c;
	char p[512];
	infisical_cfg(&c, 1, "v3"); /* never contacted: the files fail first */
	path_in(p, sizeof(p), "client_secret_shared");
	write_str(p, CLIENT_SECRET "\n", 0640);
	snprintf(c.vault_infisical_client_secret_file, CONFIG_STR, "%s", p);
	const char *e = infisical_fails(&c, BW_ERR_CONFIG);
	assert_contains(e, p);
	assert_contains(e, "chmod 600");

	infisical_cfg(&c, 1, "v3");
	path_in(p, sizeof(p), "client_id_missing");
	snprintf(c.vault_infisical_client_id_file, CONFIG_STR, "%s", p);
	e = infisical_fails(&c, BW_ERR_CONFIG);
	assert_contains(e, p);

	infisical_cfg(&c, 1, "v3");
	c.vault_infisical_project_id[0] = '\0';
	e = infisical_fails(&c, BW_ERR_CONFIG);
	assert_contains(e, "infisical_project_id");
}

#define MOCK_TEST(t) cmocka_unit_test_teardown(t, mock_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_null_and_unknown_provider),
		cmocka_unit_test(test_env_loads_and_removes),
		cmocka_unit_test(test_env_get_errors),
		cmocka_unit_test(test_env_invalid_name_refused),
		cmocka_unit_test(test_env_value_limits),
		cmocka_unit_test(test_store_locked_and_not_dumped),
		cmocka_unit_test(test_files_loads),
		cmocka_unit_test(test_files_group_or_world_readable_refused),
		cmocka_unit_test(test_files_missing_dir),
		cmocka_unit_test(test_files_credentials_directory),
		cmocka_unit_test(test_files_size_limit),
		MOCK_TEST(test_infisical_v3),
		MOCK_TEST(test_infisical_v4),
		MOCK_TEST(test_infisical_wrong_client_secret),
		MOCK_TEST(test_infisical_token_refused),
		MOCK_TEST(test_infisical_server_error),
		MOCK_TEST(test_infisical_bad_json),
		MOCK_TEST(test_infisical_hidden_value),
		MOCK_TEST(test_infisical_huge_answer),
		MOCK_TEST(test_infisical_unreachable),
		MOCK_TEST(test_infisical_untrusted_certificate),
		MOCK_TEST(test_infisical_wrong_host_name),
		MOCK_TEST(test_infisical_https_only),
		MOCK_TEST(test_infisical_hang_times_out),
		MOCK_TEST(test_infisical_credential_files),
	};
	return cmocka_run_group_tests_name("vault", tests, group_setup, group_teardown);
}
