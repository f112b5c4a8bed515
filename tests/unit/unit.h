/* Shared includes for the cmocka unit tests. */
#ifndef BW_UNIT_H
#define BW_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* A fresh directory under /tmp named after the suite; 0 on success. */
static inline int
unit_mkdtemp(char *buf, size_t len, const char *suite)
{
	snprintf(buf, len, "/tmp/bw-%s-XXXXXX", suite);
	return mkdtemp(buf) ? 0 : -1;
}

/* Remove a directory made by unit_mkdtemp(), with everything in it. */
static inline int
unit_rmtree(const char *dir)
{
	char cmd[512];
	if (strlen(dir) > 256 || strncmp(dir, "/tmp/bw-", 8) != 0 || strchr(dir, '\'') != NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
