/* The EventPolicy kind (eventing.knative.dev/v1alpha1): its fields exactly as Knative's
 * (pkg/apis/eventing/v1alpha1/eventpolicy_types.go), checked as its webhook checks them, and the
 * matching rules of Knative's pkg/auth/event_policy.go. */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/auth/policy.h"
#include "broker/config/fields.h"
#include "broker/config/yaml.h"

/* What one spec.to entry holds. */
static void to_free(struct ceb_policy_to *t)
{
	free(t->group);
	free(t->kind);
	free(t->name);
	ceb_config_strv_free(t->lkeys, t->nlabels);
	ceb_config_strv_free(t->lvals, t->nlabels);
	for (size_t j = 0; j < t->nreqs; j++) {
		free(t->reqs[j].key);
		ceb_config_strv_free(t->reqs[j].values, t->reqs[j].nvalues);
	}
	free(t->reqs);
}

static void policy_free(void *own)
{
	struct ceb_event_policy *p = own;

	if (!p)
		return;
	for (size_t i = 0; i < p->nto; i++)
		to_free(&p->to[i]);
	free(p->to);
	ceb_config_strv_free(p->from, p->nfrom);
	ceb_filter_free(p->filter);
	free(p->ns);
	free(p->name);
	free(p);
}

/* The group of an apiVersion: "eventing.knative.dev/v1" -> "eventing.knative.dev", "v1" -> "". */
static char *api_group(struct ceb_config_res *r, const char *api)
{
	const char *slash = strchr(api, '/');
	char *g;

	if (!slash)
		return ceb_config_strdup(r, "");
	g = strndup(api, (size_t)(slash - api));
	if (!g)
		ceb_config_oom(r);
	return g;
}

/* kmeta.ChildName (knative.dev/pkg): parent + suffix when it fits in 63 characters, else a prefix
 * of the parent and an MD5 of it (or of both, when the suffix is long), as Knative names the
 * service accounts it makes. */
void ceb_policy_oidc_account(const char *group, const char *kind, const char *name, char *buf,
                             size_t sz)
{
	enum {
		LONGEST = 63,
		MD5LEN = 32,
		HEAD = LONGEST - MD5LEN
	};
	char suffix[512], whole[1024], hex[MD5LEN + 1], out[1100];
	unsigned char md5[16];
	size_t plen = strlen(name), slen, n;

	snprintf(suffix, sizeof(suffix), "-oidc-%s-%s", group, kind);
	slen = strlen(suffix);
	if (plen <= (size_t)LONGEST - (slen < LONGEST ? slen : LONGEST) && slen <= LONGEST) {
		snprintf(out, sizeof(out), "%s%s", name, suffix);
	} else if ((int)HEAD - (int)slen <= 0) {
		snprintf(whole, sizeof(whole), "%s%s", name, suffix);
		gnutls_hash_fast(GNUTLS_DIG_MD5, whole, strlen(whole), md5);
		for (int i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", md5[i]);
		snprintf(out, sizeof(out), "%.*s%s", (int)(plen < HEAD ? plen : HEAD), name, hex);
		n = strlen(out);
		if (n < LONGEST) /* pad with the beginning of the suffix */
			snprintf(out + n, sizeof(out) - n, "%.*s", (int)(LONGEST - n), suffix);
	} else {
		gnutls_hash_fast(GNUTLS_DIG_MD5, name, plen, md5);
		for (int i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", md5[i]);
		snprintf(out, sizeof(out), "%.*s%s%s", (int)(HEAD - slen), name, hex, suffix);
	}
	/* makeValidName: a DNS label ends in a letter or digit */
	n = strlen(out);
	while (n && !((out[n - 1] >= 'a' && out[n - 1] <= 'z') ||
	              (out[n - 1] >= 'A' && out[n - 1] <= 'Z') ||
	              (out[n - 1] >= '0' && out[n - 1] <= '9')))
		out[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] + 32);
	snprintf(buf, sz, "%s", out);
}

/* A list of strings (matchExpressions' values). */
static bool get_strlist(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                        char ***out, size_t *nout)
{
	size_t cnt = ceb_yaml_size(n);
	char **v, p[256];

	*out = NULL;
	*nout = 0;
	if (!ceb_config_want_seq(r, n, path))
		return false;
	v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (!v) {
		ceb_config_oom(r);
		return false;
	}
	for (size_t i = 0; i < cnt; i++) {
		ceb_config_path_idx(p, sizeof(p), path, i);
		if (!ceb_config_get_str(r, ceb_yaml_seq_item(n, i), p, &v[i]) || !v[i]) {
			ceb_config_strv_free(v, cnt);
			return false;
		}
	}
	*out = v;
	*nout = cnt;
	return true;
}

static void parse_expressions(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                              const char *path, struct ceb_policy_to *t)
{
	static const char *const fields[] = {"key", "operator", "values", NULL};
	static const char *const ops[] = {"In", "NotIn", "Exists", "DoesNotExist"};
	size_t cnt = ceb_yaml_size(n);
	char p[256], q[300], *op = NULL;

	if (!ceb_config_want_seq(r, n, path))
		return;
	t->reqs = calloc(cnt ? cnt : 1, sizeof(*t->reqs));
	if (!t->reqs) {
		ceb_config_oom(r);
		return;
	}
	for (size_t i = 0; i < cnt; i++) {
		const struct ceb_yaml_node *item = ceb_yaml_seq_item(n, i), *v[3];
		struct ceb_label_req *rq = &t->reqs[t->nreqs];
		size_t k;

		ceb_config_path_idx(p, sizeof(p), path, i);
		if (!ceb_config_get_fields(r, item, p, fields, v, NULL))
			continue;
		if (!v[0] || !v[1]) {
			ceb_config_err(r, item, p, "needs key and operator");
			continue;
		}
		snprintf(q, sizeof(q), "%s.key", p);
		if (!ceb_config_get_str(r, v[0], q, &rq->key))
			continue;
		snprintf(q, sizeof(q), "%s.operator", p);
		free(op);
		op = NULL;
		if (!ceb_config_get_str(r, v[1], q, &op))
			goto bad;
		for (k = 0; k < 4 && strcmp(op, ops[k]) != 0; k++)
			;
		if (k == 4) {
			ceb_config_err(r, v[1], q,
			               "'%s' is not an operator: In, NotIn, Exists or DoesNotExist",
			               op);
			goto bad;
		}
		rq->op = (enum ceb_label_op)k;
		snprintf(q, sizeof(q), "%s.values", p);
		if (v[2] && !get_strlist(r, v[2], q, &rq->values, &rq->nvalues))
			goto bad;
		if ((k <= 1) != (rq->nvalues > 0)) {
			ceb_config_err(r, v[2] ? v[2] : item, q,
			               k <= 1 ? "In and NotIn need values"
			                      : "Exists and DoesNotExist take no values");
			goto bad;
		}
		t->nreqs++;
		continue;
bad:
		free(rq->key);
		ceb_config_strv_free(rq->values, rq->nvalues);
		memset(rq, 0, sizeof(*rq));
	}
	free(op);
}

/* spec.to[i]: {ref: {apiVersion, kind, name}} or {selector: {apiVersion, kind, matchLabels,
 * matchExpressions}}. */
static void parse_to(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                     struct ceb_event_policy *p)
{
	static const char *const fields[] = {"ref", "selector", NULL};
	static const char *const ref_fields[] = {"apiVersion", "kind", "name", NULL};
	static const char *const sel_fields[] = {"apiVersion", "kind", "matchLabels",
	                                         "matchExpressions", NULL};
	const struct ceb_yaml_node *v[2], *rv[4];
	struct ceb_policy_to *t = &p->to[p->nto];
	char q[300], *api = NULL;
	bool sel;
	size_t nerr = r->nerr;

	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
		return;
	if (!v[0] == !v[1]) {
		ceb_config_err(r, n, path,
		               v[0] ? "give ref or selector, not both" : "needs ref or selector");
		return;
	}
	sel = v[1] != NULL;
	snprintf(q, sizeof(q), "%s.%s", path, sel ? "selector" : "ref");
	if (!ceb_config_get_fields(r, v[sel], q, sel ? sel_fields : ref_fields, rv, NULL))
		return;
	if (!rv[0] || !rv[1] || (!sel && !rv[2])) {
		ceb_config_err(r, v[sel], q,
		               sel ? "needs apiVersion and kind"
		                   : "needs apiVersion, kind and name");
		return;
	}
	snprintf(q, sizeof(q), "%s.%s.apiVersion", path, sel ? "selector" : "ref");
	if (!ceb_config_get_str(r, rv[0], q, &api))
		return;
	t->group = api_group(r, api);
	free(api);
	snprintf(q, sizeof(q), "%s.%s.kind", path, sel ? "selector" : "ref");
	ceb_config_get_str(r, rv[1], q, &t->kind);
	if (!sel) {
		snprintf(q, sizeof(q), "%s.ref.name", path);
		ceb_config_get_str(r, rv[2], q, &t->name);
	} else {
		snprintf(q, sizeof(q), "%s.selector.matchLabels", path);
		if (rv[2])
			ceb_config_get_strmap(r, rv[2], q, &t->lkeys, &t->lvals, &t->nlabels);
		snprintf(q, sizeof(q), "%s.selector.matchExpressions", path);
		if (rv[3])
			parse_expressions(r, rv[3], q, t);
	}
	if (r->nerr != nerr || !t->group || !t->kind || (!sel && !t->name)) {
		to_free(t);
		memset(t, 0, sizeof(*t));
		return;
	}
	p->nto++;
}

/* spec.from[i]: {ref: {apiVersion, kind, name, namespace}} or {sub: "..."}, '*' only at the end. */
static void parse_from(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                       struct ceb_event_policy *p)
{
	static const char *const fields[] = {"ref", "sub", NULL};
	static const char *const ref_fields[] = {"apiVersion", "kind", "name", "namespace", NULL};
	const struct ceb_yaml_node *v[2], *rv[4];
	char q[300], *api = NULL, *kind = NULL, *name = NULL, *ns = NULL, *group = NULL,
	             *sub = NULL;
	char sa[128], subject[512];
	const char *star;

	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
		return;
	if (!v[0] == !v[1]) {
		ceb_config_err(r, n, path, v[0] ? "give ref or sub, not both" : "needs ref or sub");
		return;
	}
	if (v[1]) {
		snprintf(q, sizeof(q), "%s.sub", path);
		if (!ceb_config_get_str(r, v[1], q, &sub))
			return;
		star = strchr(sub, '*');
		if (!sub[0]) {
			ceb_config_err(r, v[1], q, "is empty");
		} else if (star && star[1]) {
			ceb_config_err(r, v[1], q, "'*' is only allowed as suffix");
		} else {
			p->from[p->nfrom++] = sub;
			sub = NULL;
		}
		free(sub);
		return;
	}
	snprintf(q, sizeof(q), "%s.ref", path);
	if (!ceb_config_get_fields(r, v[0], q, ref_fields, rv, NULL))
		return;
	if (!rv[0] || !rv[1] || !rv[2]) {
		ceb_config_err(r, v[0], q, "needs apiVersion, kind and name");
		return;
	}
	snprintf(q, sizeof(q), "%s.ref.apiVersion", path);
	ceb_config_get_str(r, rv[0], q, &api);
	snprintf(q, sizeof(q), "%s.ref.kind", path);
	ceb_config_get_str(r, rv[1], q, &kind);
	snprintf(q, sizeof(q), "%s.ref.name", path);
	ceb_config_get_str(r, rv[2], q, &name);
	snprintf(q, sizeof(q), "%s.ref.namespace", path);
	if (rv[3])
		ceb_config_get_str(r, rv[3], q, &ns);
	if (api && kind && name && (group = api_group(r, api))) {
		/* Knative resolves the ref to the OIDC identity of that resource (its service
		 * account), defaulting its namespace to the policy's. */
		ceb_policy_oidc_account(group, kind, name, sa, sizeof(sa));
		snprintf(subject, sizeof(subject), "system:serviceaccount:%s:%s",
		         ns && ns[0] ? ns : p->ns, sa);
		if ((p->from[p->nfrom] = ceb_config_strdup(r, subject)))
			p->nfrom++;
	}
	free(api);
	free(kind);
	free(name);
	free(ns);
	free(group);
}

static void parse_policy(struct ceb_config_res *r, struct ceb_config_meta *md,
                         const struct ceb_yaml_node *root, const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"to", "from", "filters", NULL};
	const struct ceb_yaml_node *v[3];
	struct ceb_event_policy *p;
	char path[64];

	if (!md->name)
		return;
	p = calloc(1, sizeof(*p));
	if (!p) {
		ceb_config_oom(r);
		return;
	}
	p->ns = md->ns;
	p->name = md->name;
	md->ns = md->name = NULL;
	p->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	p->object = (struct ceb_config_object){.kind = CEB_EVENT_POLICY_KIND,
	                                       .ns = p->ns,
	                                       .name = p->name,
	                                       .own = p,
	                                       .own_free = policy_free};
	ceb_config_add_object(r, &p->object);
	ceb_config_add_entry(r, CEB_EVENT_POLICY_KIND, p->ns, p->name, md, p);
	/* Knative's webhook takes an EventPolicy without spec (it then admits no one) */
	if (!vals[0] || !ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	if (v[0] && ceb_config_want_seq(r, v[0], "spec.to")) {
		p->to = calloc(ceb_yaml_size(v[0]) + 1, sizeof(*p->to));
		if (!p->to) {
			ceb_config_oom(r);
			return;
		}
		for (size_t i = 0; i < ceb_yaml_size(v[0]); i++)
			parse_to(r, ceb_yaml_seq_item(v[0], i),
			         ceb_config_path_idx(path, sizeof(path), "spec.to", i), p);
	}
	if (v[1] && ceb_config_want_seq(r, v[1], "spec.from")) {
		p->from = calloc(ceb_yaml_size(v[1]) + 1, sizeof(*p->from));
		if (!p->from) {
			ceb_config_oom(r);
			return;
		}
		for (size_t i = 0; i < ceb_yaml_size(v[1]); i++)
			parse_from(r, ceb_yaml_seq_item(v[1], i),
			           ceb_config_path_idx(path, sizeof(path), "spec.from", i), p);
	}
	if (v[2] && ceb_config_want_seq(r, v[2], "spec.filters") && ceb_yaml_size(v[2]))
		p->filter = ceb_config_parse_filters(r, NULL, v[2]);
}

const struct ceb_event_policy *ceb_policy_first(const struct ceb_config *cfg)
{
	for (const struct ceb_config_object *o = cfg ? cfg->objects : NULL; o; o = o->next)
		if (!strcmp(o->kind, CEB_EVENT_POLICY_KIND))
			return o->own;
	return NULL;
}

const struct ceb_event_policy *ceb_policy_next(const struct ceb_event_policy *p)
{
	for (const struct ceb_config_object *o = p->object.next; o; o = o->next)
		if (!strcmp(o->kind, CEB_EVENT_POLICY_KIND))
			return o->own;
	return NULL;
}

static const char *label_get(const char *key, char *const *keys, char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(keys[i], key))
			return values[i];
	return NULL;
}

/* metav1.LabelSelectorAsSelector's meaning: every matchLabels pair and every requirement. */
static bool selector_matches(const struct ceb_policy_to *t, char *const *keys, char *const *values,
                             size_t n)
{
	for (size_t i = 0; i < t->nlabels; i++) {
		const char *v = label_get(t->lkeys[i], keys, values, n);
		if (!v || strcmp(v, t->lvals[i]) != 0)
			return false;
	}
	for (size_t i = 0; i < t->nreqs; i++) {
		const struct ceb_label_req *rq = &t->reqs[i];
		const char *v = label_get(rq->key, keys, values, n);
		bool in = false;

		for (size_t j = 0; v && j < rq->nvalues; j++)
			in |= !strcmp(v, rq->values[j]);
		switch (rq->op) {
		case CEB_LABEL_IN:
			if (!in)
				return false;
			break;
		case CEB_LABEL_NOT_IN:
			if (in)
				return false;
			break;
		case CEB_LABEL_EXISTS:
			if (!v)
				return false;
			break;
		case CEB_LABEL_NOT_EXISTS:
			if (v)
				return false;
			break;
		}
	}
	return true;
}

bool ceb_policy_applies(const struct ceb_event_policy *p, const char *group, const char *kind,
                        const char *ns, const char *name, char *const *keys, char *const *values,
                        size_t n)
{
	if (strcmp(p->ns, ns) != 0)
		return false;
	if (p->nto == 0)
		return true;
	for (size_t i = 0; i < p->nto; i++) {
		const struct ceb_policy_to *t = &p->to[i];

		if (strcasecmp(t->group, group) != 0 || strcasecmp(t->kind, kind) != 0)
			continue;
		if (t->name ? !strcasecmp(t->name, name) : selector_matches(t, keys, values, n))
			return true;
	}
	return false;
}

bool ceb_policy_allows_sub(const struct ceb_event_policy *p, const char *sub)
{
	for (size_t i = 0; i < p->nfrom; i++) {
		const char *s = p->from[i];
		size_t len = strlen(s);

		if (!strcasecmp(s, sub))
			return true;
		if (len && s[len - 1] == '*' && !strncmp(sub, s, len - 1))
			return true;
	}
	return false;
}

static const char *const spec_only[] = {"spec", NULL};
static const char *const eventing_v1alpha1[] = {CEB_EVENTING_V1ALPHA1, NULL};

const struct ceb_kind ceb_kind_event_policy = {eventing_v1alpha1, CEB_EVENT_POLICY_KIND, spec_only,
                                               parse_policy, false};
