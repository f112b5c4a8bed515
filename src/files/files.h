/*
 * files: attachments of module rows (docs/files.md). An upload runs every
 * check of check.h in order, each failing closed, while its bytes arrive:
 * name and type before the first byte is stored, magic bytes from the
 * first FILES_SNIFF_BYTES, ClamAV fed as the bytes come, the archive walk
 * over the stored (sealed) file at the end; only then does the file become
 * visible, with its quota reservation turned into usage and its audit row.
 * Operations take the operation context, never the HTTP request.
 */
#ifndef BW_FILES_H
#define BW_FILES_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../modules/desc.h"
#include "../op/op.h"
#include "check.h"
#include "store.h"

/* Pending files older than this are uploads a crash cut off: swept. */
#define FILES_PENDING_MAX_AGE QUOTA_RESERVATION_SECONDS

struct file_upload;
/*
 * Begin an upload of at most declared bytes to row row_id of m: the row
 * must exist (404), the plan must have room for declared bytes (507,
 * reserved now), clamd must answer (503). Refusals are recorded with a
 * "check" member naming the step.
 */
bw_err file_upload_start(struct op *op, const struct module_desc *m, int64_t row_id,
			 uint64_t declared, struct file_upload **out) BW_MUST_USE;
/* The file's name as sent (len bytes) and the claimed type (NULL: none): steps 1 and 2. */
bw_err file_upload_name(struct file_upload *u, const char *name, size_t len,
			const char *claimed) BW_MUST_USE;
/* More bytes: step 3 once the head is in, ClamAV and storage as they come. */
bw_err file_upload_data(struct file_upload *u, const void *p, size_t n) BW_MUST_USE;
/* The end: steps 3 to 5 finished; the file published; *file its metadata. */
bw_err file_upload_finish(struct file_upload *u, json_t **file) BW_MUST_USE;
/* Undo whatever was not finished (nothing after a finish) and free; accepts NULL. */
void file_upload_free(struct file_upload *u);

/* BW_OK when row row_id of m exists; BW_ERR_NOTFOUND ("no such record") otherwise. */
bw_err file_row_exists(struct op *op, const struct module_desc *m, int64_t row_id) BW_MUST_USE;
/* One ready file of row row_id of m as shown; BW_ERR_NOTFOUND (recorded). */
bw_err file_get(struct op *op, const struct module_desc *m, int64_t row_id, int64_t id,
		json_t **file) BW_MUST_USE;
/* Delete it (audited on the row; its bytes return to the quota). */
bw_err file_delete(struct op *op, const struct module_desc *m, int64_t row_id,
		   int64_t id) BW_MUST_USE;
/* Its contents, to read (file_reader_read_at); *file its metadata. */
bw_err file_open(struct op *op, const struct module_desc *m, int64_t row_id, int64_t id,
		 json_t **file, struct file_reader **reader) BW_MUST_USE;
/* A row of files (id, module, row_id, name, mime, size, sha256, created_by, created_at) as shown. */
json_t *file_json(db_stmt *s);
#define FILE_COLUMNS "id, module, row_id, name, mime, size, sha256, created_by, created_at"

#endif
