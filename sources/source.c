/* The registry of source kinds compiled into this build, built from sources/source_list.h. */
#include <stddef.h>
#include <string.h>

#include "autoconfig.h"
#include "sources/source.h"

#define SOURCE(x) extern const struct source_ops ceb_source_##x;
#include "sources/source_list.h"
#undef SOURCE

static const struct source_ops *const sources[] = {
#define SOURCE(x) &ceb_source_##x,
#include "sources/source_list.h"
#undef SOURCE
        NULL,
};

const struct source_ops *ceb_source_ops_find(const char *kind)
{
	for (size_t i = 0; sources[i]; i++)
		if (strcmp(sources[i]->kind, kind) == 0)
			return sources[i];
	return NULL;
}
