/*
 * search/fulltext: the full-text index of the modules' plain text fields.
 * One document per module row in search_docs (entity, row_id, label, and
 * on MariaDB the body under a FULLTEXT index); on SQLite the body lives
 * in the FTS5 table search_fts, whose rowid is the document's id. Bodies
 * are stored case-folded (NFKC), so both drivers match alike whatever
 * their collation. Sealed fields never enter it: they are found through
 * the blind index (blind.h) only.
 *
 * This sits with the database layer (it takes a connection and the module
 * descriptors, nothing else) so that the migration can fill it for rows
 * that existed before it.
 */
#ifndef BW_SEARCH_FULLTEXT_H
#define BW_SEARCH_FULLTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"
#include "../db/db.h"
#include "../modules/desc.h"

#define FULLTEXT_LABEL_MAX 255       /* bytes of a label (search_docs.label is @STR(255)) */
#define FULLTEXT_BODY_MAX (1u << 20) /* bytes of a document's body */
#define FULLTEXT_TERMS_MAX 8         /* words of a query that count */
#define FULLTEXT_TERM_MIN 3          /* characters: MariaDB's innodb_ft_min_token_size */
#define FULLTEXT_TERM_MAX 64         /* bytes of one word */

/*
 * NFKC case-folded copy of in[0..n) into a malloc'd, NUL-ended *out (an
 * invalid UTF-8 input is folded as ASCII). BW_ERR_NOMEM or BW_OK.
 */
bw_err fulltext_fold(const char *in, size_t n, char **out, size_t *outlen) BW_MUST_USE;

/* Whether field f of a module goes into its documents (plain text, shown). */
int fulltext_field(const struct field_desc *f);

/*
 * (Re)write the document of row id of m from what the row holds now, on d
 * (in the caller's transaction); a row that is gone loses its document.
 * BW_OK or the database's error.
 */
bw_err fulltext_put(db *d, const struct module_desc *m, int64_t id) BW_MUST_USE;
/* Remove the document of row id of m (there may be none). */
bw_err fulltext_remove(db *d, const struct module_desc *m, int64_t id) BW_MUST_USE;

/*
 * The query of the words of q (folded, split at anything but letters and
 * digits, words shorter than FULLTEXT_TERM_MIN characters dropped, at
 * most FULLTEXT_TERMS_MAX, every one a prefix, all required) in the
 * syntax of d's driver, into a malloc'd *out; *out NULL when no word is
 * left (nothing to look for). BW_OK or BW_ERR_NOMEM.
 */
bw_err fulltext_query(db *d, const char *q, char **out) BW_MUST_USE;
/*
 * The SQL condition that restricts search_docs (aliased "d") to the
 * documents matching one bound parameter (fulltext_query's text):
 * "d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)" on
 * SQLite, "MATCH (d.body) AGAINST (? IN BOOLEAN MODE)" on MariaDB.
 */
const char *fulltext_condition(db *d);

/*
 * Migration 14's data step: the driver's full-text table or index, then a
 * document for every row of every module. Safe to run again.
 */
bw_err fulltext_migrate(db *d, char *err, size_t errlen) BW_MUST_USE;

#endif
