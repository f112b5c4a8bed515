#include "unit.h"

#include <unistd.h>

#include "config/config.h"

static char tmpdir[256];
static char oldcwd[1024];

static int
group_setup(void **state)
{
	(void)state;
	assert_non_null(getcwd(oldcwd, sizeof(oldcwd)));
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "config");
}

static int
group_teardown(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

static const char *
write_conf(const char *name, const char *text)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_defaults(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	/* No -c and no ./bulwark.conf in this directory: defaults only. */
	assert_int_equal(chdir(tmpdir), 0);
	char *env[] = {NULL};
	assert_int_equal(config_load(&c, NULL, env, err, sizeof(err)), BW_OK);
	assert_int_equal(chdir(oldcwd), 0);
	assert_string_equal(c.source, "");
	assert_int_equal(c.port, 8443);
	assert_string_equal(c.base_domain, "localhost");
	assert_string_equal(c.var_dir, "./var");
	assert_int_equal(c.threads, 0);
	char p[CONFIG_STR];
	config_tls_cert(&c, p);
	assert_string_equal(p, "./var/tls/cert.pem");
	config_tls_key(&c, p);
	assert_string_equal(p, "./var/tls/key.pem");
}

static void
test_default_file_in_cwd(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	write_conf("bulwark.conf", "[server]\nport = 9000\n");
	assert_int_equal(chdir(tmpdir), 0);
	char *env[] = {NULL};
	bw_err e = config_load(&c, NULL, env, err, sizeof(err));
	assert_int_equal(chdir(oldcwd), 0);
	assert_int_equal(e, BW_OK);
	assert_int_equal(c.port, 9000);
	assert_string_equal(c.source, "bulwark.conf");
	char path[512];
	snprintf(path, sizeof(path), "%s/bulwark.conf", tmpdir);
	unlink(path);
}

static void
test_file_values(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	const char *p = write_conf("ok.conf", "; comment\n[server]\nport = 9443\nbind = ::\n"
					       "tls_cert = /etc/x.pem\n[limits]\nrate_per_second = 0\n"
					       "[log]\nlevel = warn\n");
	char *env[] = {NULL};
	assert_int_equal(config_load(&c, p, env, err, sizeof(err)), BW_OK);
	assert_int_equal(c.port, 9443);
	assert_string_equal(c.bind, "::");
	assert_int_equal(c.rate_per_second, 0);
	assert_string_equal(c.log_level, "warn");
	char cert[CONFIG_STR];
	config_tls_cert(&c, cert);
	assert_string_equal(cert, "/etc/x.pem");
}

/* Each bad file must fail naming the file, the line and the key. */
static void
test_errors_name_file_line_key(void **state)
{
	(void)state;
	static const struct {
		const char *text, *line, *needle;
	} cases[] = {
	    {"[server]\nport = 8443\nportt = 1\n", ":3:", "portt"},
	    {"[server]\n\nport = 99999\n", ":3:", "port"},
	    {"[server]\nport = abc\n", ":2:", "port"},
	    {"[server]\nport = -1\n", ":2:", "port"},
	    {"[server]\nport = 80 # comment\n", ":2:", "port"},
	    {"[nope]\nx = 1\n", ":2:", "[nope]"},
	    {"port = 1\n", ":1:", "port"},
	    {"[log]\nlevel = loud\n", ":2:", "level"},
	    {"[limits]\nrate_burst = 0\n", ":2:", "rate_burst"},
	    {"[server]\nthis is not ini\n", ":2:", "syntax"},
	};
	char *env[] = {NULL};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++) {
		struct config c;
		char err[512];
		const char *p = write_conf("bad.conf", cases[i].text);
		assert_int_equal(config_load(&c, p, env, err, sizeof(err)), BW_ERR_CONFIG);
		if (strstr(err, "bad.conf") == NULL || strstr(err, cases[i].line) == NULL ||
		    strstr(err, cases[i].needle) == NULL)
			fail_msg("case %zu: message '%s' lacks file, %s or %s", i, err, cases[i].line,
				 cases[i].needle);
	}
}

static void
test_missing_file(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	char *env[] = {NULL};
	assert_int_equal(config_load(&c, "/nonexistent/b.conf", env, err, sizeof(err)),
			 BW_ERR_CONFIG);
	assert_non_null(strstr(err, "/nonexistent/b.conf"));
}

static void
test_env_overrides(void **state)
{
	(void)state;
	struct config c;
	char err[512];
	const char *p = write_conf("env.conf", "[server]\nport = 9000\n");
	char *env[] = {"BULWARK_SERVER_PORT=9100", "BULWARK_LIMITS_RATE_PER_SECOND=7",
		       "BULWARK_KEYS=not-a-config-key", "HOME=/root", "BULWARK_log_LEVEL=debug", NULL};
	assert_int_equal(config_load(&c, p, env, err, sizeof(err)), BW_OK);
	assert_int_equal(c.port, 9100); /* environment beats the file */
	assert_int_equal(c.rate_per_second, 7);
	assert_string_equal(c.log_level, "debug");

	char *bad_key[] = {"BULWARK_SERVER_PROT=1", NULL};
	assert_int_equal(config_load(&c, p, bad_key, err, sizeof(err)), BW_ERR_CONFIG);
	assert_non_null(strstr(err, "BULWARK_SERVER_PROT"));

	char *bad_val[] = {"BULWARK_SERVER_PORT=0x10", NULL};
	assert_int_equal(config_load(&c, p, bad_val, err, sizeof(err)), BW_ERR_CONFIG);
	assert_non_null(strstr(err, "BULWARK_SERVER_PORT"));

	char *ctl[] = {"BULWARK_SERVER_BASE_DOMAIN=a\x01" "b", NULL};
	assert_int_equal(config_load(&c, p, ctl, err, sizeof(err)), BW_ERR_CONFIG);
}

/* The example documents every key, and loads as it stands. */
static void
test_example_documents_every_key(void **state)
{
	(void)state;
	FILE *f = fopen("bulwark.conf.example", "r");
	assert_non_null(f);
	char text[65536];
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	for (size_t i = 0; i < config_key_count(); i++) {
		const char *sec, *key;
		char hdr[64], line[96];
		config_key_name(i, &sec, &key);
		snprintf(hdr, sizeof(hdr), "[%s]", sec);
		snprintf(line, sizeof(line), "\n%s =", key);
		const char *s = strstr(text, hdr);
		if (s == NULL || strstr(s, line) == NULL)
			fail_msg("bulwark.conf.example does not document %s.%s", sec, key);
	}
	struct config c, d;
	char err[512];
	char *env[] = {NULL};
	assert_int_equal(config_load(&c, "bulwark.conf.example", env, err, sizeof(err)), BW_OK);
	/* and the values it shows are the defaults */
	config_defaults(&d);
	memset(c.source, 0, sizeof(c.source));
	assert_memory_equal(&c, &d, sizeof(c));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_default_file_in_cwd),
		cmocka_unit_test(test_file_values),
		cmocka_unit_test(test_errors_name_file_line_key),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_env_overrides),
		cmocka_unit_test(test_example_documents_every_key),
	};
	return cmocka_run_group_tests_name("config", tests, group_setup, group_teardown);
}
