/*
 * libFuzzer target for the archive walk (src/files/archive.c): the
 * first byte picks the type the name gave (an index into the
 * allowlist), the rest is the file, read as a memory source with small
 * limits. files_archive_check must return one of its errors, fill why
 * when it refuses, keep the counts within the limits (plus one chunk of
 * the read that passed them), and never read outside the source.
 *   build/fuzz/fuzz_archive -max_total_time=60 build/fuzz/corpus-fuzz_archive
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/files/check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct mem {
	const uint8_t *p;
	size_t n;
};

static long
mem_read(void *ud, uint64_t off, void *buf, size_t n)
{
	struct mem *m = ud;
	if (off > m->n)
		abort();
	size_t k = m->n - (size_t)off < n ? m->n - (size_t)off : n;
	memcpy(buf, m->p + off, k);
	return (long)k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t nt;
	const struct files_type *types = files_types(&nt);
	const struct files_type *t = &types[data[0] % nt];
	struct mem m = {data + 1, size - 1};
	struct files_source src = {mem_read, m.n, &m};
	struct files_limits lim = {.entries = 64, .unpacked = 4 << 20, .ratio = 200, .depth = 3};
	struct files_archive_result res;
	char why[256];
	bw_err e = files_archive_check(&src, t, &lim, &res, why, sizeof(why));
	if (e != BW_OK && e != BW_ERR_UNPROCESSABLE && e != BW_ERR_NOMEM && e != BW_ERR_IO &&
	    e != BW_ERR_INTERNAL)
		abort();
	if (e != BW_OK && why[0] == '\0')
		abort();
	if (memchr(why, '\0', sizeof(why)) == NULL || memchr(res.format, '\0', sizeof(res.format)) == NULL)
		abort();
	if (res.entries > lim.entries + 1 || res.unpacked > lim.unpacked + 64 * 1024 ||
	    res.depth > lim.depth || res.depth < 1)
		abort();
	if (e == BW_OK && t->kind == FILES_KIND_DOCUMENT && res.is_archive)
		abort();
	return 0;
}
