/*
 * Shared pieces of the benchmark programs: process memory figures and a
 * configuration with a throw-away master key beside the var dir.
 */
#ifndef BW_BENCH_H
#define BW_BENCH_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/config/config.h"

/* A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), -1 if absent. */
static inline long
bench_status_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0)
			v = atol(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

/*
 * Defaults for driver with state under var, a master key file at
 * <var>.keys, and MariaDB from BULWARK_TEST_MARIADB_SOCKET/_DIR. 0 or -1
 * with a message on stderr.
 */
static inline int
bench_config(struct config *cfg, const char *driver, const char *var)
{
	static const char key[] = "1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n";
	config_defaults(cfg);
	log_set_level(LOG_LVL_ERROR);
	snprintf(cfg->var_dir, sizeof(cfg->var_dir), "%s", var);
	snprintf(cfg->db_driver, sizeof(cfg->db_driver), "%s", driver);
	snprintf(cfg->keys_file, sizeof(cfg->keys_file), "%.1000s.keys", var);
	int fd = open(cfg->keys_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, key, sizeof(key) - 1) != (ssize_t)sizeof(key) - 1) {
		fprintf(stderr, "bench: cannot write %s\n", cfg->keys_file);
		return -1;
	}
	close(fd);
	if (strcmp(driver, "mariadb") == 0) {
		const char *sock = getenv("BULWARK_TEST_MARIADB_SOCKET");
		const char *dir = getenv("BULWARK_TEST_MARIADB_DIR");
		if (!sock || !dir) {
			fprintf(stderr, "bench: MariaDB needs BULWARK_TEST_MARIADB_SOCKET and _DIR "
					"(scripts/mariadb-test start DIR)\n");
			return -1;
		}
		snprintf(cfg->db_socket, sizeof(cfg->db_socket), "%s", sock);
		snprintf(cfg->db_password_file, sizeof(cfg->db_password_file), "%.1000s/control.pw",
			 dir);
	}
	return 0;
}

#endif
