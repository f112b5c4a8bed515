/*
 * files/store: an attachment's contents, in the tenant database (ADR
 * 0017). Each file has a data key of its own (32 random bytes), kept in
 * files.dek sealed with the tenant's data key (so `bulwark keys rotate`
 * re-wraps it and never touches the contents). The contents are cut into
 * FILE_CHUNK_BYTES chunks, each sealed with AES-256-GCM under the file's
 * key and bound to tenant, file id, chunk index and whether it is the last:
 * chunks cannot be moved, reordered, dropped or the file cut short
 * without the read failing.
 */
#ifndef BW_FILES_STORE_H
#define BW_FILES_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"
#include "../op/op.h"

#define FILE_CHUNK_BYTES (256 * 1024)

struct file_writer;
/*
 * A new pending file of row row_id of module (a files row, state
 * "pending", in a transaction of its own): shown nowhere until
 * file_store_publish. reservation: the quota reservation it holds.
 */
bw_err file_store_begin(struct op *op, const char *module, int64_t row_id, const char *name,
			int64_t reservation, struct file_writer **out) BW_MUST_USE;
int64_t file_writer_id(const struct file_writer *w);
/* Bytes so far. */
uint64_t file_writer_size(const struct file_writer *w);
/*
 * More of the contents. Each full chunk is sealed and stored in a
 * transaction of its own, the connection given back in between (the last
 * chunk is held until file_store_close: only then is it known to be last).
 */
bw_err file_store_write(struct file_writer *w, const void *p, size_t n) BW_MUST_USE;
/* Store the last chunk; the whole file's size and SHA-256 (hex). */
bw_err file_store_close(struct file_writer *w, uint64_t *size, char sha256[65]) BW_MUST_USE;
/* Free the writer (its key wiped); the rows stay (publish or discard them). */
void file_writer_free(struct file_writer *w);

/*
 * In the caller's transaction: make pending file id "ready" with its type
 * and checked size and digest. BW_ERR_NOTFOUND when it is not pending.
 */
bw_err file_store_publish(struct op *op, int64_t id, const char *mime, uint64_t size,
			  const char *sha256) BW_MUST_USE;
/* Delete file id and its chunks, in the caller's transaction (any state). */
bw_err file_store_delete(db *d, int64_t id) BW_MUST_USE;
/*
 * Delete a pending file and its chunks in a transaction of its own (an
 * upload refused or cut off); errors are logged, and the sweep removes
 * what is left.
 */
void file_store_discard(struct op *op, int64_t id);
/*
 * Pending files older than max_age seconds (uploads a crash cut off), at
 * most limit of them: deleted, with their chunks; how many into *n, their
 * quota reservations into res (up to limit ids) for the caller to release.
 */
bw_err file_store_sweep(struct op *op, int64_t max_age, size_t limit, int64_t *res,
			size_t *n) BW_MUST_USE;

struct file_reader;
/*
 * Read file id's contents (any state: the checks read pending files). The
 * file's key is opened now. BW_ERR_NOTFOUND, BW_ERR_CRYPTO (recorded) when
 * its key does not open.
 */
bw_err file_store_open(struct op *op, int64_t id, struct file_reader **out) BW_MUST_USE;
uint64_t file_reader_size(const struct file_reader *r);
/*
 * Up to n bytes at off into buf: bytes read (0 at the end), or -1 on
 * failure (a chunk missing, moved or tampered with, the database gone):
 * file_reader_err says which (BW_ERR_CRYPTO for tampering). Reads one
 * chunk from the database at a time; the connection is given back
 * between reads. The signature of files_source.read_at (check.h).
 */
long file_reader_read_at(void *r, uint64_t off, void *buf, size_t n);
bw_err file_reader_err(const struct file_reader *r);
void file_reader_free(struct file_reader *r);

#endif
