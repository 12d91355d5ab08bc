/* A Trigger's filters in YAML, compiled with filters/: the legacy spec.filter.attributes and the
 * Subscriptions API dialects of spec.filters (exact, prefix, suffix, all, any, not, cesql). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config/fields.h"
#include "broker/error.h"
#include "broker/config/yaml.h"
#include "filters/filter.h"

/* The filter module prefixes its messages with the dialect ("exact: ..."), which our path already
 * names: drop it so as not to say it twice. */
static const char *filter_reason(const char *path, const char *errbuf, int rc)
{
	const char *sep = strstr(errbuf, ": ");
	size_t plen = strlen(path), k;

	if (!*errbuf)
		return ceb_strerror(rc);
	if (!sep)
		return errbuf;
	k = (size_t)(sep - errbuf);
	if (k <= plen && !memcmp(path + plen - k, errbuf, k) &&
	    (k == plen || path[plen - k - 1] == '.'))
		return sep + 2;
	return errbuf;
}

static struct ceb_filter *filter_true(struct ceb_config_res *r)
{
	struct ceb_filter *flt = ceb_filter_true();

	if (!flt)
		ceb_config_oom(r);
	return flt;
}

static struct ceb_filter *parse_attr_filter(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                            const char *path, enum ceb_filter_kind kind)
{
	struct ceb_filter *flt = NULL;
	char **keys, **vals, errbuf[256] = "";
	size_t cnt;
	int rc;

	if (!ceb_config_get_strmap(r, n, path, &keys, &vals, &cnt))
		return NULL;
	if (cnt == 0 && kind == CEB_FILTER_LEGACY) {
		flt = filter_true(r); /* Knative: no attributes, no constraint */
		goto out;
	}
	if (cnt == 0) {
		ceb_config_err(r, n, path, "needs at least one attribute");
		goto out;
	}
	rc = ceb_filter_attrs(kind, cnt, (const char *const *)keys, (const char *const *)vals, &flt,
	                      errbuf, sizeof(errbuf));
	if (rc == CEB_ENOMEM)
		ceb_config_oom(r);
	else if (rc < 0)
		ceb_config_err(r, n, path, "%s", filter_reason(path, errbuf, rc));
	if (rc < 0)
		flt = NULL;
out:
	ceb_config_strv_free(keys, cnt);
	ceb_config_strv_free(vals, cnt);
	return flt;
}

static struct ceb_filter *parse_filter_obj(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                           const char *path);

/* all / any: a list of filter objects. An empty list constrains nothing, as in Knative. */
static struct ceb_filter *parse_filter_list(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                            const char *path, enum ceb_filter_kind kind)
{
	struct ceb_filter **kids = NULL, *flt = NULL;
	char p[512], errbuf[256] = "";
	size_t cnt = 0;
	bool bad = false;
	int rc;

	if (!ceb_config_want_seq(r, n, path))
		return NULL;
	if (ceb_yaml_size(n) == 0)
		return filter_true(r);
	kids = calloc(ceb_yaml_size(n), sizeof(*kids));
	if (!kids) {
		ceb_config_oom(r);
		return NULL;
	}
	for (size_t i = 0; i < ceb_yaml_size(n); i++) {
		kids[cnt] = parse_filter_obj(r, ceb_yaml_seq_item(n, i),
		                             ceb_config_path_idx(p, sizeof(p), path, i));
		if (kids[cnt])
			cnt++;
		else
			bad = true;
	}
	if (bad || ceb_config_is_oom(r)) {
		for (size_t i = 0; i < cnt; i++)
			ceb_filter_free(kids[i]);
		goto out;
	}
	if (cnt == 1 && kind == CEB_FILTER_ALL) {
		flt = kids[0];
		goto out;
	}
	rc = ceb_filter_group(kind, kids, cnt, &flt, errbuf, sizeof(errbuf));
	if (rc == CEB_ENOMEM)
		ceb_config_oom(r);
	else if (rc < 0)
		ceb_config_err(r, n, path, "%s", filter_reason(path, errbuf, rc));
	if (rc < 0)
		flt = NULL;
out:
	free(kids);
	return flt;
}

static struct ceb_filter *parse_cesql(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                      const char *path)
{
	struct ceb_filter *flt = NULL;
	char errbuf[256] = "";
	int rc, col = 0;

	if (ceb_yaml_type(n) != CEB_YAML_SCALAR) {
		ceb_config_err(r, n, path, "expected a CESQL expression string, got %s",
		               ceb_yaml_describe(n));
		return NULL;
	}
	rc = ceb_filter_cesql(ceb_yaml_str(n), NULL, &flt, errbuf, sizeof(errbuf), &col);
	if (rc == CEB_ENOMEM) {
		ceb_config_oom(r);
	} else if (rc < 0) {
		/* the node's position is the scalar's; the column inside the expression says where */
		if (col > 0 && !strstr(errbuf, "column"))
			ceb_config_err(r, n, path, "%s at column %d",
			               *errbuf ? errbuf : "syntax error", col);
		else
			ceb_config_err(r, n, path, "%s", *errbuf ? errbuf : ceb_strerror(rc));
	}
	return rc < 0 ? NULL : flt;
}

/* One element of spec.filters: an object with exactly one dialect key. */
static struct ceb_filter *parse_filter_obj(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                           const char *path)
{
	static const char *const dialects[] = {"exact", "prefix", "suffix", "all",
	                                       "any",   "not",    "cesql",  NULL};
	const struct ceb_yaml_node *v[7], *k[7];
	struct ceb_filter *flt = NULL, *kid;
	char p[512], errbuf[256] = "", found[128] = "";
	size_t cnt = 0, len = 0;
	int which = -1, rc;
	size_t nerr = r->nerr;

	if (!ceb_config_get_fields(r, n, path, dialects, v, k) || r->nerr != nerr)
		return NULL;
	for (int i = 0; i < 7; i++)
		if (k[i]) {
			which = i;
			cnt++;
			/* seven short names always fit */
			len += (size_t)snprintf(found + len, sizeof(found) - len, "%s%s",
			                        cnt > 1 ? ", " : "", dialects[i]);
		}
	if (cnt != 1) {
		if (cnt == 0)
			ceb_config_err(r, n, path,
			               "a filter needs one dialect: exact, prefix, "
			               "suffix, all, any, not or cesql");
		else
			ceb_config_err(r, n, path,
			               "a filter takes exactly one dialect, found %zu "
			               "(%s); combine them with all:",
			               cnt, found);
		return NULL;
	}
	ceb_config_path_key(p, sizeof(p), path, dialects[which]);
	if (!v[which]) {
		ceb_config_err(r, k[which], p, "expected a value, got null");
		return NULL;
	}
	switch (which) {
	case 0: return parse_attr_filter(r, v[which], p, CEB_FILTER_EXACT);
	case 1: return parse_attr_filter(r, v[which], p, CEB_FILTER_PREFIX);
	case 2: return parse_attr_filter(r, v[which], p, CEB_FILTER_SUFFIX);
	case 3: return parse_filter_list(r, v[which], p, CEB_FILTER_ALL);
	case 4: return parse_filter_list(r, v[which], p, CEB_FILTER_ANY);
	case 6: return parse_cesql(r, v[which], p);
	}
	kid = parse_filter_obj(r, v[which], p);
	if (!kid)
		return NULL;
	rc = ceb_filter_group(CEB_FILTER_NOT, &kid, 1, &flt, errbuf, sizeof(errbuf));
	if (rc == CEB_ENOMEM)
		ceb_config_oom(r);
	else if (rc < 0)
		ceb_config_err(r, v[which], p, "%s", filter_reason(p, errbuf, rc));
	return rc < 0 ? NULL : flt;
}

struct ceb_filter *ceb_config_parse_filters(struct ceb_config_res *r,
                                            const struct ceb_yaml_node *filter,
                                            const struct ceb_yaml_node *filters)
{
	static const char *const filter_fields[] = {"attributes", NULL};
	const struct ceb_yaml_node *fv[1];
	struct ceb_filter *legacy = NULL, *flt = NULL;

	if (filter && ceb_config_get_fields(r, filter, "spec.filter", filter_fields, fv, NULL) &&
	    fv[0])
		legacy = parse_attr_filter(r, fv[0], "spec.filter.attributes", CEB_FILTER_LEGACY);
	/* Knative: a non-empty filters list wins over filter */
	if (filters && ceb_config_want_seq(r, filters, "spec.filters") && ceb_yaml_size(filters))
		flt = parse_filter_list(r, filters, "spec.filters", CEB_FILTER_ALL);
	if (flt) {
		ceb_filter_free(legacy);
		return flt;
	}
	return legacy ? legacy : filter_true(r);
}
