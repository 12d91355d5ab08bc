/* Resources' metadata.labels, kept in the configuration for what selects resources by their labels
 * (an EventPolicy's spec.to selector). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/loader.h"

void ceb_ld_labels_free(struct ceb_config_labels *l)
{
	while (l) {
		struct ceb_config_labels *next = l->next;

		ceb_config_strv_free(l->keys, l->n);
		ceb_config_strv_free(l->values, l->n);
		free(l->kind);
		free(l->ns);
		free(l->name);
		free(l);
		l = next;
	}
}

void ceb_ld_keep_labels(struct ceb_config_res *r, const char *kind, const char *ns,
                        const char *name, const struct ceb_config_meta *md)
{
	struct ceb_config_labels *l = calloc(1, sizeof(*l));
	bool ok = l && (l->keys = calloc(md->nlabels, sizeof(char *))) &&
	          (l->values = calloc(md->nlabels, sizeof(char *))) && (l->kind = strdup(kind)) &&
	          (l->ns = strdup(ns)) && (l->name = strdup(name));

	/* l->n counts the pairs begun, so that a key copied without its value is freed too */
	for (size_t i = 0; ok && i < md->nlabels; i++) {
		l->n++;
		ok = (l->keys[i] = strdup(md->lkeys[i])) && (l->values[i] = strdup(md->lvals[i]));
	}
	if (!ok) {
		ceb_ld_labels_free(l);
		ceb_config_oom(r);
		return;
	}
	l->next = r->ld->cfg->labels;
	r->ld->cfg->labels = l;
}

bool ceb_config_find_labels(const struct ceb_config *cfg, const char *kind, const char *ns,
                            const char *name, char *const **keys, char *const **values, size_t *n)
{
	for (const struct ceb_config_labels *l = cfg ? cfg->labels : NULL; l; l = l->next)
		if (!strcasecmp(l->kind, kind) && !strcmp(l->ns, ns) && !strcmp(l->name, name)) {
			*keys = l->keys;
			*values = l->values;
			*n = l->n;
			return true;
		}
	return false;
}
