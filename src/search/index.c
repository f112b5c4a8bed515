/*
 * The search indexes kept in step with module rows (see index.h).
 */
#include "index.h"

#include "blind.h"
#include "fulltext.h"

bw_err
search_index_fields(struct op *op, const struct module_desc *m, int64_t id, json_t *values)
{
	const char *key;
	json_t *v;
	int text = 0;
	bw_err e = BW_OK;
	json_object_foreach(values, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		if (f == NULL)
			return BW_ERR_INTERNAL; /* validated before */
		text |= fulltext_field(f);
		if (blind_field(m->name, f->name) != f)
			continue;
		const char *s = json_is_string(v) ? json_string_value(v) : NULL;
		e = blind_put(op->d, tenancy_keyring(op->ten), op->tn.slug, op->tn.active_key_id, m, f,
			      id, s, s ? json_string_length(v) : 0);
		if (e != BW_OK) {
			log_error("tenant %s: blind index of %s.%s row %lld: %s", op->tn.slug, m->name,
				  f->name, (long long)id, bw_strerror(e));
			return e;
		}
	}
	return text ? fulltext_put(op->d, m, id) : BW_OK;
}

bw_err
search_index_created(struct op *op, const struct module_desc *m, int64_t id)
{
	return fulltext_put(op->d, m, id);
}

bw_err
search_index_deleted(struct op *op, const struct module_desc *m, int64_t id)
{
	bw_err e = blind_remove_row(op->d, m, id);
	return e == BW_OK ? fulltext_remove(op->d, m, id) : e;
}
