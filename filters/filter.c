/* Trigger filters: the compiled tree of Subscriptions API dialects (exact, prefix, suffix, all, any,
 * not, cesql) and Knative's legacy filter.attributes, matched against events without allocating. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "filters/cesql/cesql.h"
#include "filters/filter.h"

struct filter_attr {
	char *name;
	char *value;
	size_t len;
};

struct ceb_filter {
	enum ceb_filter_kind kind;
	size_t n;                     /* attrs or children */
	struct filter_attr *attrs;    /* EXACT, PREFIX, SUFFIX, LEGACY */
	struct ceb_filter **children; /* ALL, ANY, NOT */
	struct ceb_cesql *cesql;      /* CESQL */
	const char *required_type;    /* points into attrs or a child; NULL when none */
};

static const char *kind_name(enum ceb_filter_kind kind)
{
	switch (kind) {
	case CEB_FILTER_TRUE: return "true";
	case CEB_FILTER_EXACT: return "exact";
	case CEB_FILTER_PREFIX: return "prefix";
	case CEB_FILTER_SUFFIX: return "suffix";
	case CEB_FILTER_LEGACY: return "filter.attributes";
	case CEB_FILTER_ALL: return "all";
	case CEB_FILTER_ANY: return "any";
	case CEB_FILTER_NOT: return "not";
	case CEB_FILTER_CESQL: return "cesql";
	}
	return "?";
}

struct ceb_filter *ceb_filter_true(void)
{
	struct ceb_filter *flt = calloc(1, sizeof(*flt));

	if (flt)
		flt->kind = CEB_FILTER_TRUE;
	return flt;
}

/* CloudEvents attribute names: lower-case letters and digits. A name outside that set could never
 * match, so it is a configuration mistake worth reporting. */
static bool name_valid(const char *name)
{
	if (!*name)
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
			return false;
	return true;
}

int ceb_filter_attrs(enum ceb_filter_kind kind, size_t n, const char *const *names,
                     const char *const *values, struct ceb_filter **out, char *errbuf,
                     size_t errlen)
{
	struct ceb_filter *flt = NULL;
	int rc = CEB_EINVAL;

	if (kind != CEB_FILTER_EXACT && kind != CEB_FILTER_PREFIX && kind != CEB_FILTER_SUFFIX &&
	    kind != CEB_FILTER_LEGACY) {
		snprintf(errbuf, errlen, "filter kind %d does not take attributes", (int)kind);
		goto out;
	}
	/* The Subscriptions API wants at least one attribute; Knative's legacy map may be empty. */
	if (n == 0 && kind != CEB_FILTER_LEGACY) {
		snprintf(errbuf, errlen, "%s: needs at least one attribute", kind_name(kind));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!names[i] || !*names[i]) {
			snprintf(errbuf, errlen, "%s: empty attribute name", kind_name(kind));
			goto out;
		}
		if (!name_valid(names[i])) {
			snprintf(errbuf, errlen,
			         "%s: attribute name '%.64s' must be lower-case letters and digits",
			         kind_name(kind), names[i]);
			goto out;
		}
		if (!values[i] || (!*values[i] && kind != CEB_FILTER_LEGACY)) {
			snprintf(errbuf, errlen, "%s: attribute '%.64s' has an empty value",
			         kind_name(kind), names[i]);
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(names[i], names[j]) == 0) {
				snprintf(errbuf, errlen, "%s: attribute '%.64s' given twice",
				         kind_name(kind), names[i]);
				goto out;
			}
		}
	}
	rc = CEB_ENOMEM;
	flt = calloc(1, sizeof(*flt));
	if (!flt || (n && !(flt->attrs = calloc(n, sizeof(*flt->attrs))))) {
		snprintf(errbuf, errlen, "out of memory");
		goto out;
	}
	flt->kind = kind;
	for (size_t i = 0; i < n; i++) {
		flt->attrs[i].name = strdup(names[i]);
		flt->attrs[i].value = strdup(values[i]);
		flt->n = i + 1;
		if (!flt->attrs[i].name || !flt->attrs[i].value) {
			snprintf(errbuf, errlen, "out of memory");
			goto out;
		}
		flt->attrs[i].len = strlen(values[i]);
		if ((kind == CEB_FILTER_EXACT || kind == CEB_FILTER_LEGACY) &&
		    strcmp(names[i], "type") == 0 && flt->attrs[i].len > 0)
			flt->required_type = flt->attrs[i].value;
	}
	rc = 0;
out:
	if (rc) {
		ceb_filter_free(flt);
		return rc;
	}
	*out = flt;
	return 0;
}

int ceb_filter_group(enum ceb_filter_kind kind, struct ceb_filter **children, size_t n,
                     struct ceb_filter **out, char *errbuf, size_t errlen)
{
	struct ceb_filter *flt = NULL;
	int rc = CEB_EINVAL;

	if (kind != CEB_FILTER_ALL && kind != CEB_FILTER_ANY && kind != CEB_FILTER_NOT) {
		snprintf(errbuf, errlen, "filter kind %d does not take sub-filters", (int)kind);
		goto out;
	}
	if (kind == CEB_FILTER_NOT && n != 1) {
		snprintf(errbuf, errlen, "not: takes exactly one filter, got %zu", n);
		goto out;
	}
	if (n == 0) {
		snprintf(errbuf, errlen, "%s: needs at least one filter", kind_name(kind));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!children[i]) {
			snprintf(errbuf, errlen, "%s: filter %zu is missing", kind_name(kind), i);
			goto out;
		}
	}
	rc = CEB_ENOMEM;
	flt = calloc(1, sizeof(*flt));
	if (!flt || !(flt->children = calloc(n, sizeof(*flt->children)))) {
		snprintf(errbuf, errlen, "out of memory");
		goto out;
	}
	flt->kind = kind;
	flt->n = n;
	for (size_t i = 0; i < n; i++) {
		flt->children[i] = children[i];
		/* Every event an `all` matches passes each child, so one child's required type holds
		 * for the whole group. */
		if (kind == CEB_FILTER_ALL && !flt->required_type &&
		    (children[i]->kind == CEB_FILTER_EXACT ||
		     children[i]->kind == CEB_FILTER_LEGACY))
			flt->required_type = children[i]->required_type;
	}
	rc = 0;
out:
	if (rc) {
		/* The children are ours also on failure; none has moved into flt yet. */
		for (size_t i = 0; i < n; i++)
			ceb_filter_free(children[i]);
		free(flt);
		return rc;
	}
	*out = flt;
	return 0;
}

int ceb_filter_cesql(const char *expr, const struct ceb_cesql_limits *lim, struct ceb_filter **out,
                     char *errbuf, size_t errlen, int *errcol)
{
	struct ceb_filter *flt = NULL;
	struct ceb_cesql *q = NULL;
	const char *call;
	int rc, col;

	rc = ceb_cesql_compile(expr, strlen(expr), lim, &q, errbuf, errlen, errcol);
	if (rc)
		goto out;
	/* A call no built-in matches evaluates to false with an error on every event: such a
	 * filter can never pass, so say so now rather than drop every event silently. */
	call = ceb_cesql_unresolved_call(q, &col);
	if (call) {
		snprintf(errbuf, errlen, "unknown function %s at column %d", call, col);
		if (errcol)
			*errcol = col;
		rc = CEB_EINVAL;
		goto out;
	}
	flt = calloc(1, sizeof(*flt));
	if (!flt) {
		snprintf(errbuf, errlen, "out of memory");
		rc = CEB_ENOMEM;
		goto out;
	}
	flt->kind = CEB_FILTER_CESQL;
	flt->cesql = q;
	q = NULL;
	rc = 0;
out:
	ceb_cesql_free(q);
	if (rc)
		return rc;
	*out = flt;
	return 0;
}

static bool match_attrs(const struct ceb_filter *flt, const struct ceb_event *ev)
{
	for (size_t i = 0; i < flt->n; i++) {
		const struct filter_attr *fa = &flt->attrs[i];
		const struct ceb_attr *attr = ceb_event_get(ev, fa->name);

		/* A missing attribute fails every dialect (the spec is silent; all SDKs agree). */
		if (!attr)
			return false;
		switch (flt->kind) {
		case CEB_FILTER_LEGACY:
			if (fa->len == 0) {
				/* "" means present with a non-empty value, any value (Knative). */
				if (attr->len == 0)
					return false;
				break;
			}
			/* fall through */
		case CEB_FILTER_EXACT:
			if (attr->len != fa->len || memcmp(attr->value, fa->value, fa->len) != 0)
				return false;
			break;
		case CEB_FILTER_PREFIX:
			if (attr->len < fa->len || memcmp(attr->value, fa->value, fa->len) != 0)
				return false;
			break;
		case CEB_FILTER_SUFFIX:
			if (attr->len < fa->len ||
			    memcmp(attr->value + attr->len - fa->len, fa->value, fa->len) != 0)
				return false;
			break;
		default: return false;
		}
	}
	return true;
}

bool ceb_filter_match(const struct ceb_filter *flt, const struct ceb_event *ev)
{
	if (!flt) /* no filter (a Subscription, a source's delivery): everything */
		return true;
	switch (flt->kind) {
	case CEB_FILTER_TRUE: return true;
	case CEB_FILTER_EXACT:
	case CEB_FILTER_PREFIX:
	case CEB_FILTER_SUFFIX:
	case CEB_FILTER_LEGACY: return match_attrs(flt, ev);
	case CEB_FILTER_ALL:
		for (size_t i = 0; i < flt->n; i++)
			if (!ceb_filter_match(flt->children[i], ev))
				return false;
		return true;
	case CEB_FILTER_ANY:
		for (size_t i = 0; i < flt->n; i++)
			if (ceb_filter_match(flt->children[i], ev))
				return true;
		return false;
	case CEB_FILTER_NOT: return !ceb_filter_match(flt->children[0], ev);
	case CEB_FILTER_CESQL: return ceb_cesql_match(flt->cesql, ev);
	}
	return false;
}

const char *ceb_filter_required_type(const struct ceb_filter *flt)
{
	return flt ? flt->required_type : NULL;
}

static size_t required_attrs(const struct ceb_filter *flt, const char **names,
                             const char **values, size_t n, size_t max)
{
	if (flt->kind == CEB_FILTER_ALL) {
		for (size_t i = 0; i < flt->n; i++)
			n = required_attrs(flt->children[i], names, values, n, max);
		return n;
	}
	if (flt->kind != CEB_FILTER_EXACT && flt->kind != CEB_FILTER_LEGACY)
		return n;
	for (size_t i = 0; i < flt->n && n < max; i++) {
		size_t j = 0;

		if (flt->attrs[i].len == 0) /* legacy "": present, with any value */
			continue;
		while (j < n && strcmp(names[j], flt->attrs[i].name) != 0)
			j++;
		if (j == n) {
			names[n] = flt->attrs[i].name;
			values[n++] = flt->attrs[i].value;
		}
	}
	return n;
}

size_t ceb_filter_required_attrs(const struct ceb_filter *flt, const char **names,
                                 const char **values, size_t max)
{
	return flt ? required_attrs(flt, names, values, 0, max) : 0;
}

enum ceb_filter_kind ceb_filter_kind(const struct ceb_filter *flt)
{
	return flt->kind;
}

void ceb_filter_free(struct ceb_filter *flt)
{
	if (!flt)
		return;
	if (flt->attrs) {
		for (size_t i = 0; i < flt->n; i++) {
			free(flt->attrs[i].name);
			free(flt->attrs[i].value);
		}
		free(flt->attrs);
	}
	if (flt->children) {
		for (size_t i = 0; i < flt->n; i++)
			ceb_filter_free(flt->children[i]);
		free(flt->children);
	}
	ceb_cesql_free(flt->cesql);
	free(flt);
}
