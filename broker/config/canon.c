/* The canonical text of each resource's document, kept with the configuration so that a reload can
 * tell which resources changed: mapping keys sorted, scalars quoted, fields the API server fills in
 * (status, metadata.resourceVersion...) left out; comments, layout and key order do not count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/buf.h"
#include "broker/config/loader.h"
#include "broker/config/yaml.h"

/* metadata fields a change of which changes nothing cebroker runs */
static bool ignored_meta(const char *key)
{
	static const char *const keys[] = {
	        "resourceVersion", "generation", "uid", "creationTimestamp",
	        "managedFields",   "selfLink",   NULL};

	for (size_t i = 0; keys[i]; i++)
		if (!strcmp(key, keys[i]))
			return true;
	return false;
}

/* Whether a plain scalar reads as something other than a string under YAML 1.2's core schema (a
 * boolean, a number): then `1` and "1" differ, while `a` and "a" are the same string. */
static bool plain_typed(const char *v)
{
	static const char *const words[] = {"true",  "True", "TRUE", "false", "False",
	                                    "FALSE", ".inf", ".Inf", ".INF",  "-.inf",
	                                    "+.inf", ".nan", ".NaN", ".NAN",  NULL};
	char *end;

	for (size_t i = 0; words[i]; i++)
		if (!strcmp(v, words[i]))
			return true;
	if (!*v)
		return false;
	(void)strtod(v, &end);
	if (!*end)
		return true;
	(void)strtoll(v, &end, 0); /* 0x1f, 0o17 reads as 0 then "o17": close enough */
	return !*end;
}

struct pair {
	char *text; /* "key:value" in canonical form */
	size_t len;
};

static int cmp_pairs(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->text, y->text, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Appends n's canonical text to out; *last is raised to the last line seen. depth: 0 for the root
 * (whose status is left out), 1 for its metadata. Returns false when out of memory. */
static bool canon(struct ceb_buf *out, const struct ceb_yaml_node *n, int depth, int *last)
{
	size_t size = ceb_yaml_size(n);
	struct pair *pairs;
	size_t m = 0;
	bool ok = true;

	if (ceb_yaml_line(n) > *last)
		*last = ceb_yaml_line(n);
	switch (ceb_yaml_type(n)) {
	case CEB_YAML_SCALAR:
		if (ceb_yaml_is_null(n)) {
			ceb_buf_puts(out, "~");
			return true;
		}
		/* a plain scalar may be a number or a boolean, a quoted one is a string */
		ceb_buf_printf(out, "%c%zu:",
		               ceb_yaml_plain(n) && plain_typed(ceb_yaml_str(n)) ? 'p' : 's',
		               strlen(ceb_yaml_str(n)));
		ceb_buf_puts(out, ceb_yaml_str(n));
		return true;
	case CEB_YAML_SEQ:
		ceb_buf_puts(out, "[");
		for (size_t i = 0; i < size && ok; i++) {
			ok = canon(out, ceb_yaml_seq_item(n, i), -1, last);
			ceb_buf_puts(out, ",");
		}
		ceb_buf_puts(out, "]");
		return ok;
	case CEB_YAML_MAP: break;
	}
	pairs = calloc(size ? size : 1, sizeof(*pairs));
	if (!pairs)
		return false;
	for (size_t i = 0; i < size && ok; i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(n, i);
		const char *ks = ceb_yaml_str(k);
		struct ceb_buf b = CEB_BUF_INIT;
		int d = -1;

		if (ks && depth == 0 && !strcmp(ks, "status"))
			continue;
		if (ks && depth == 1 && ignored_meta(ks))
			continue;
		if (ks && depth == 0 && !strcmp(ks, "metadata"))
			d = 1;
		ok = canon(&b, k, -1, last);
		ceb_buf_puts(&b, "=");
		ok = ok && canon(&b, ceb_yaml_map_value(n, i), d, last);
		pairs[m].text = ceb_buf_steal(&b, &pairs[m].len);
		ok = ok && pairs[m++].text;
	}
	if (ok) {
		qsort(pairs, m, sizeof(*pairs), cmp_pairs);
		ceb_buf_puts(out, "{");
		for (size_t i = 0; i < m; i++) {
			ceb_buf_append(out, pairs[i].text, pairs[i].len);
			ceb_buf_puts(out, ";");
		}
		ceb_buf_puts(out, "}");
	}
	for (size_t i = 0; i < m; i++)
		free(pairs[i].text);
	free(pairs);
	return ok;
}

void ceb_ld_keep_doc(struct ceb_config_loader *ld, const char *file,
                     const struct ceb_yaml_node *root, const char *kind, const char *ns,
                     const char *name)
{
	struct ceb_config *cfg = ld->cfg;
	struct ceb_config_doc *docs, *d;
	struct ceb_buf b = CEB_BUF_INIT;
	int last = ceb_yaml_line(root);

	if (!canon(&b, root, 0, &last) || !b.p) {
		ceb_buf_free(&b);
		ld->enomem = true;
		return;
	}
	docs = realloc(cfg->docs, (cfg->ndocs + 1) * sizeof(*docs));
	if (!docs) {
		ceb_buf_free(&b);
		ld->enomem = true;
		return;
	}
	cfg->docs = docs;
	d = &docs[cfg->ndocs];
	memset(d, 0, sizeof(*d));
	d->file = file;
	d->first = ceb_yaml_line(root);
	d->last = last;
	d->kind = ceb_ld_xstrdup(ld, kind);
	d->ns = ceb_ld_xstrdup(ld, ns ? ns : "default");
	d->name = ceb_ld_xstrdup(ld, name ? name : "");
	d->canon = ceb_buf_steal(&b, &d->len);
	cfg->ndocs++;
}

void ceb_ld_docs_free(struct ceb_config *cfg)
{
	for (size_t i = 0; i < cfg->ndocs; i++) {
		free(cfg->docs[i].kind);
		free(cfg->docs[i].ns);
		free(cfg->docs[i].name);
		free(cfg->docs[i].canon);
	}
	free(cfg->docs);
}

const struct ceb_config_doc *ceb_config_doc_at(const struct ceb_config *cfg,
                                               const struct ceb_loc *loc)
{
	const struct ceb_config_doc *best = NULL;

	if (!loc->file)
		return NULL;
	/* the innermost: a List's item rather than the List */
	for (size_t i = 0; i < cfg->ndocs; i++) {
		const struct ceb_config_doc *d = &cfg->docs[i];

		if (strcmp(d->file, loc->file) || loc->line < d->first || loc->line > d->last)
			continue;
		if (!best || d->first >= best->first)
			best = d;
	}
	return best;
}
