/*
 * search/index: keeping the search indexes in step with module rows. The
 * module engine (rows.c) calls these inside the transaction of every
 * change, so a row and its index entries commit or roll back together:
 * the blind index entries of its FF_BLIND fields (blind.h) and its
 * full-text document (fulltext.h).
 */
#ifndef BW_SEARCH_INDEX_H
#define BW_SEARCH_INDEX_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../modules/desc.h"
#include "../op/op.h"

/*
 * The fields in values (a JSON object of field -> value, as validated)
 * were just written to row id of m: their blind index entries under the
 * tenant's active data key, and the row's document when a plain text
 * field is among them. BW_OK or the key ring's / database's error.
 */
bw_err search_index_fields(struct op *op, const struct module_desc *m, int64_t id,
			   json_t *values) BW_MUST_USE;
/* Row id of m was just inserted: its document. */
bw_err search_index_created(struct op *op, const struct module_desc *m, int64_t id) BW_MUST_USE;
/* Row id of m was just deleted: its entries and its document go. */
bw_err search_index_deleted(struct op *op, const struct module_desc *m, int64_t id) BW_MUST_USE;

#endif
