/* Typed access to the YAML tree for the resource loader: each field read either gives a value or
 * reports, at the node, what it expected and what it got, with the field's path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config/fields.h"
#include "broker/ce/event.h"
#include "broker/config/yaml.h"

const char *ceb_config_quoted(char *buf, size_t sz, const char *s)
{
	size_t i, j = 0;

	for (i = 0; s[i] && j + 4 < sz; i++)
		buf[j++] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	if (s[i] && sz > 4) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j] = '\0';
	return buf;
}

const char *ceb_config_path_key(char *buf, size_t sz, const char *base, const char *key)
{
	bool ident = *key != '\0';

	for (const char *p = key; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			ident = false;
	if (!*base)
		snprintf(buf, sz, ident ? "%s" : "[\"%s\"]", key);
	else
		snprintf(buf, sz, ident ? "%s.%s" : "%s[\"%s\"]", base, key);
	return buf;
}

const char *ceb_config_path_idx(char *buf, size_t sz, const char *base, size_t i)
{
	snprintf(buf, sz, "%s[%zu]", base, i);
	return buf;
}

/* ------------------------------------------------------------------------------------------------
 * Typed access to the tree. Each reports a wrong type at the node and returns false.
 */

bool ceb_config_want_map(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path)
{
	if (ceb_yaml_type(n) == CEB_YAML_MAP)
		return true;
	ceb_config_err(r, n, path, "expected a mapping, got %s", ceb_yaml_describe(n));
	return false;
}

bool ceb_config_want_seq(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path)
{
	if (ceb_yaml_type(n) == CEB_YAML_SEQ)
		return true;
	ceb_config_err(r, n, path, "expected a list, got %s", ceb_yaml_describe(n));
	return false;
}

bool ceb_config_get_fields(struct ceb_config_res *r, const struct ceb_yaml_node *map,
                           const char *path, const char *const *names,
                           const struct ceb_yaml_node **vals, const struct ceb_yaml_node **keys)
{
	return ceb_config_get_fields_shown(r, map, path, names, 16, vals, keys);
}

bool ceb_config_get_fields_shown(struct ceb_config_res *r, const struct ceb_yaml_node *map,
                                 const char *path, const char *const *names, size_t nshown,
                                 const struct ceb_yaml_node **vals,
                                 const struct ceb_yaml_node **keys)
{
	const struct ceb_yaml_node *seen[16];
	char p[512], known[256];
	size_t nn = 0, len = 0;

	if (!ceb_config_want_map(r, map, path))
		return false;
	for (nn = 0; names[nn] && nn < 16; nn++) {
		vals[nn] = NULL;
		seen[nn] = NULL;
		if (keys)
			keys[nn] = NULL;
	}
	for (size_t i = 0; i < ceb_yaml_size(map); i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(map, i);
		const struct ceb_yaml_node *v = ceb_yaml_map_value(map, i);
		size_t j;

		if (ceb_yaml_type(k) != CEB_YAML_SCALAR) {
			ceb_config_err(r, k, path, "keys must be strings, got %s",
			               ceb_yaml_describe(k));
			continue;
		}
		for (j = 0; j < nn && strcmp(names[j], ceb_yaml_str(k)); j++)
			;
		ceb_config_path_key(p, sizeof(p), path, ceb_yaml_str(k));
		if (j == nn) {
			known[0] = '\0';
			len = 0;
			for (size_t m = 0; m < nn && m < nshown && len < sizeof(known); m++)
				len += (size_t)snprintf(known + len, sizeof(known) - len, "%s%s",
				                        m ? ", " : "", names[m]);
			ceb_config_err(r, k, p, "unknown field (%s takes %s)",
			               *path ? path : "a resource", known);
		} else if (seen[j]) {
			ceb_config_err(r, k, p, "duplicate key (first at line %d)",
			               ceb_yaml_line(seen[j]));
		} else {
			seen[j] = k;
			vals[j] = ceb_yaml_is_null(v) ? NULL : v;
			if (keys)
				keys[j] = k;
		}
	}
	return true;
}

bool ceb_config_get_str(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                        char **out)
{
	*out = NULL;
	if (!n)
		return true;
	if (ceb_yaml_type(n) != CEB_YAML_SCALAR) {
		ceb_config_err(r, n, path, "expected a string, got %s", ceb_yaml_describe(n));
		return false;
	}
	*out = ceb_config_strdup(r, ceb_yaml_str(n));
	return *out != NULL;
}

bool ceb_config_get_bool(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                         bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", NULL};
	static const char *const no[] = {"false", "False", "FALSE", NULL};
	const char *s = ceb_yaml_str(n);
	char q[80];

	if (!ceb_yaml_plain(n)) {
		ceb_config_err(r, n, path, "expected true or false, got %s", ceb_yaml_describe(n));
		return false;
	}
	for (size_t i = 0; yes[i]; i++) {
		if (!strcmp(s, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcmp(s, no[i])) {
			*out = false;
			return true;
		}
	}
	ceb_config_err(r, n, path, "expected true or false, got \"%s\"",
	               ceb_config_quoted(q, sizeof(q), s));
	return false;
}

bool ceb_config_get_int(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                        long min, long max, int *out)
{
	const char *s = ceb_yaml_str(n);
	char *end;
	long v;

	if (!ceb_yaml_plain(n)) {
		ceb_config_err(r, n, path, "expected an integer, got %s", ceb_yaml_describe(n));
		return false;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end || errno || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '+')) {
		char q[80];

		ceb_config_err(r, n, path, "expected an integer, got \"%s\"",
		               ceb_config_quoted(q, sizeof(q), s));
		return false;
	}
	if (v < min || v > max) {
		ceb_config_err(r, n, path, "%ld is out of range (%ld to %ld)", v, min, max);
		return false;
	}
	*out = (int)v;
	return true;
}

struct keyref {
	const char *key;
	size_t idx;
};

static int cmp_keyref(const void *a, const void *b)
{
	const struct keyref *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

void ceb_config_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

bool ceb_config_get_strmap(struct ceb_config_res *r, const struct ceb_yaml_node *map,
                           const char *path, char ***keys_out, char ***vals_out, size_t *n_out)
{
	struct keyref *sorted = NULL;
	size_t *first = NULL; /* per pair: the index of the first pair with its key */
	char **keys = NULL, **vals = NULL, p[512];
	bool ok = false, bad = false;
	size_t n = 0, pairs = ceb_yaml_size(map);

	*keys_out = *vals_out = NULL;
	*n_out = 0;
	if (!ceb_config_want_map(r, map, path))
		return false;
	if (pairs) {
		sorted = malloc(pairs * sizeof(*sorted));
		first = malloc(pairs * sizeof(*first));
		keys = calloc(pairs, sizeof(*keys));
		vals = calloc(pairs, sizeof(*vals));
		if (!sorted || !first || !keys || !vals) {
			ceb_config_oom(r);
			goto out;
		}
	}
	for (size_t i = 0; i < pairs; i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(map, i);

		if (ceb_yaml_type(k) != CEB_YAML_SCALAR) {
			ceb_config_err(r, k, path, "keys must be strings, got %s",
			               ceb_yaml_describe(k));
			bad = true;
		}
	}
	if (bad)
		goto out;
	/* Duplicates: sort the key nodes (O(n log n) even for a hostile map), then flag repeats. */
	for (size_t i = 0; i < pairs; i++) {
		sorted[i] = (struct keyref){ceb_yaml_str(ceb_yaml_map_key(map, i)), i};
		first[i] = i;
	}
	if (pairs > 1)
		qsort(sorted, pairs, sizeof(*sorted), cmp_keyref);
	for (size_t i = 1; i < pairs; i++)
		if (!strcmp(sorted[i].key, sorted[i - 1].key))
			first[sorted[i].idx] = first[sorted[i - 1].idx];
	for (size_t i = 0; i < pairs; i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(map, i);
		const struct ceb_yaml_node *v = ceb_yaml_map_value(map, i);

		ceb_config_path_key(p, sizeof(p), path, ceb_yaml_str(k));
		if (first[i] != i) {
			ceb_config_err(r, k, p, "duplicate key (first at line %d)",
			               ceb_yaml_line(ceb_yaml_map_key(map, first[i])));
			bad = true;
			continue;
		}
		if (ceb_yaml_type(v) != CEB_YAML_SCALAR) {
			ceb_config_err(r, v, p, "expected a string, got %s", ceb_yaml_describe(v));
			bad = true;
			continue;
		}
		keys[n] = ceb_config_strdup(r, ceb_yaml_str(k));
		vals[n] = ceb_config_strdup(r, ceb_yaml_is_null(v) ? "" : ceb_yaml_str(v));
		n++;
		if (!keys[n - 1] || !vals[n - 1])
			goto out;
	}
	if (bad)
		goto out;
	*keys_out = keys;
	*vals_out = vals;
	*n_out = n;
	keys = vals = NULL;
	ok = true;
out:
	ceb_config_strv_free(keys, n);
	ceb_config_strv_free(vals, n);
	free(sorted);
	free(first);
	return ok;
}

bool ceb_config_dns_label(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* Knative's SourceSpec, read the same way for every source. */

#define ADVISED_EXT 20 /* CloudEvents: extension names SHOULD NOT exceed 20 characters */

static bool ext_name(const char *s)
{
	size_t n = strlen(s);

	if (!ceb_attr_name_valid(s, n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static bool core_attribute(const char *s)
{
	static const char *const core[] = {
	        "id",   "source", "specversion", "type", "datacontenttype", "dataschema", "subject",
	        "time", "data",   "data_base64", NULL};

	for (size_t i = 0; core[i]; i++)
		if (!strcmp(s, core[i]))
			return true;
	return false;
}

void ceb_config_parse_ce_overrides(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                   char ***keys_out, char ***values_out, size_t *n_out)
{
	static const char *const fields[] = {"extensions", NULL};
	static const char path[] = "spec.ceOverrides.extensions";
	const struct ceb_yaml_node *v[1];
	char **keys = NULL, **vals = NULL, p[512], q[80];
	size_t cnt = 0, nerr = r->nerr;

	if (!ceb_config_get_fields(r, n, "spec.ceOverrides", fields, v, NULL) || !v[0])
		goto out;
	if (!ceb_config_get_strmap(r, v[0], path, &keys, &vals, &cnt))
		goto out;
	/* get_strmap succeeded: pair i of the map is keys[i] */
	for (size_t i = 0; i < cnt; i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(v[0], i);

		ceb_config_path_key(p, sizeof(p), path, keys[i]);
		if (!ext_name(keys[i])) {
			ceb_config_err(
			        r, k, p,
			        "\"%s\" is not a valid CloudEvents extension name (lower-case "
			        "letters and digits, at most 64)",
			        ceb_config_quoted(q, sizeof(q), keys[i]));
		} else if (core_attribute(keys[i])) {
			ceb_config_err(r, k, p,
			               "\"%s\" is a core CloudEvents attribute, not an extension",
			               keys[i]);
		} else if (strlen(keys[i]) > ADVISED_EXT) {
			struct ceb_loc at = ceb_config_loc(r, k);

			ceb_config_note_at(r, true, &at, p,
			                   "longer than %d characters, which CloudEvents advises "
			                   "against (some receivers may refuse it)",
			                   ADVISED_EXT);
		}
	}
	if (r->nerr != nerr)
		goto out;
	*keys_out = keys;
	*values_out = vals;
	*n_out = cnt;
	keys = vals = NULL;
out:
	ceb_config_strv_free(keys, cnt);
	ceb_config_strv_free(vals, cnt);
}
