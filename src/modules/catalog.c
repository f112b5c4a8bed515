/* The module catalogue (filled in by the modules work). */
#include "module.h"

#include <string.h>

const struct module_desc *const module_catalog[] = {NULL};
const size_t module_catalog_count = 0;

const struct module_desc *
module_find(const char *name)
{
	for (size_t i = 0; i < module_catalog_count; i++)
		if (strcmp(module_catalog[i]->name, name) == 0)
			return module_catalog[i];
	return NULL;
}

const struct field_desc *
module_field(const struct module_desc *m, const char *name)
{
	for (size_t k = 0; k < m->nfields; k++)
		if (strcmp(m->fields[k].name, name) == 0)
			return &m->fields[k];
	return NULL;
}
