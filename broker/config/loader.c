/* The resource loader: Knative manifests from the YAML reader's trees, checked against the table of
 * kinds (broker/config/kinds.h), errors as file:line:col; what other API groups define skipped;
 * files and directories; the API of config.h. References and defaults are resolve.c's. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/loader.h"
#include "broker/config/yaml.h"
#include "broker/error.h"
#include "channels/channel.h"

static void check_free(struct check *c)
{
	free(c->ns);
	free(c->name);
	free(c->who);
	free(c->path);
}

/* Knative's own ConfigMap for the default channel: when a Broker names it and the files do not hold
 * it, it says what Knative installs, InMemoryChannel. */
bool ceb_ld_default_channel_cm(const char *ns, const char *name)
{
	return !strcmp(ns, SYSTEM_NAMESPACE) && !strcmp(name, DEFAULT_CHANNEL_CM);
}

/* The check that add_check added last, or NULL (out of memory). */
struct check *ceb_ld_add_check(struct ceb_config_res *r, const char *kind, const char *ns,
                               const char *name, const struct ceb_loc *at, const char *path,
                               const struct ceb_configmap **cm_out,
                               const struct ceb_broker_cfg **broker_out)
{
	struct ceb_config_loader *ld = r->ld;
	struct check c = {.kind = kind, .cm_out = cm_out, .broker_out = broker_out};

	if (ld->nchecks == ld->capchecks) {
		size_t cap = ld->capchecks ? 2 * ld->capchecks : 16;
		struct check *p = realloc(ld->checks, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return NULL;
		}
		ld->checks = p;
		ld->capchecks = cap;
	}
	c.ns = ceb_ld_xstrdup(ld, ns);
	c.name = ceb_ld_xstrdup(ld, name);
	c.who = ceb_ld_xstrdup(ld, r->who);
	c.path = ceb_ld_xstrdup(ld, path);
	c.loc = *at;
	if (!c.loc.file)
		c.loc.file = r->file;
	if (!c.ns || !c.name || !c.who || !c.path) {
		check_free(&c);
		return NULL;
	}
	c.optional = !strcmp(kind, "ConfigMap") && ceb_ld_default_channel_cm(c.ns, c.name);
	ld->checks[ld->nchecks] = c;
	return &ld->checks[ld->nchecks++];
}

void ceb_config_add_check_at(struct ceb_config_res *r, const char *kind, const char *ns,
                             const char *name, const struct ceb_loc *at, const char *path,
                             const struct ceb_configmap **cm_out,
                             const struct ceb_broker_cfg **broker_out)
{
	ceb_ld_add_check(r, kind, ns, name, at, path, cm_out, broker_out);
}

void ceb_config_add_check(struct ceb_config_res *r, const char *kind, const char *ns,
                          const char *name, const struct ceb_yaml_node *at, const char *path,
                          const struct ceb_configmap **cm_out,
                          const struct ceb_broker_cfg **broker_out)
{
	struct ceb_loc loc = ceb_config_loc(r, at);

	ceb_ld_add_check(r, kind, ns, name, &loc, path, cm_out, broker_out);
}

/* ------------------------------------------------------------------------------------------------
 * Resources: metadata, then one parse function per kind.
 */

static void meta_free(struct ceb_config_meta *md)
{
	free(md->name);
	free(md->ns);
	ceb_config_strv_free(md->akeys, md->nannot);
	ceb_config_strv_free(md->avals, md->nannot);
	ceb_config_strv_free(md->lkeys, md->nlabels);
	ceb_config_strv_free(md->lvals, md->nlabels);
	memset(md, 0, sizeof(*md));
}

/* A DNS-1123 label, as Kubernetes requires of most names: what the ingress path /ns/name carries. */
static bool dns_label(const char *s)
{
	return ceb_config_dns_label(s, strlen(s));
}

static void parse_meta(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                       const struct ceb_yaml_node *n, struct ceb_config_meta *md)
{
	/* Kubernetes' ObjectMeta. What the API server fills in (uid, resourceVersion, managedFields...)
	 * is what `kubectl get -o yaml` prints: read and ignored, so that its output loads as it is. */
	static const char *const fields[] = {"name",
	                                     "namespace",
	                                     "labels",
	                                     "annotations",
	                                     "generateName",
	                                     "selfLink",
	                                     "uid",
	                                     "resourceVersion",
	                                     "generation",
	                                     "creationTimestamp",
	                                     "deletionTimestamp",
	                                     "deletionGracePeriodSeconds",
	                                     "ownerReferences",
	                                     "finalizers",
	                                     "managedFields",
	                                     NULL};
	const struct ceb_yaml_node *v[15];
	char q[80];

	if (!n) {
		ceb_config_err(r, root, "metadata.name", "required field missing");
		goto out;
	}
	if (!ceb_config_get_fields_shown(r, n, "metadata", fields, 4, v, NULL))
		goto out;
	md->name_node = v[0];
	if (!v[0])
		ceb_config_err(r, n, "metadata.name", "required field missing");
	else if (ceb_config_get_str(r, v[0], "metadata.name", &md->name) && !dns_label(md->name))
		ceb_config_err(r, v[0], "metadata.name",
		               "\"%s\" is not a valid name (lower-case letters, digits and '-', "
		               "starting and ending with a letter or digit, at most 63 characters)",
		               ceb_config_quoted(q, sizeof(q), md->name));
	if (v[1] && ceb_config_get_str(r, v[1], "metadata.namespace", &md->ns) &&
	    !dns_label(md->ns))
		ceb_config_err(r, v[1], "metadata.namespace",
		               "\"%s\" is not a valid namespace (lower-case letters, digits and "
		               "'-', starting and ending with a letter or digit, at most 63 "
		               "characters)",
		               ceb_config_quoted(q, sizeof(q), md->ns));
	/* labels are kept for the kinds that read one (a KafkaSource's key-type) */
	if (v[2]) {
		md->labels = v[2];
		ceb_config_get_strmap(r, v[2], "metadata.labels", &md->lkeys, &md->lvals,
		                      &md->nlabels);
	}
	if (v[3]) {
		md->annots = v[3];
		ceb_config_get_strmap(r, v[3], "metadata.annotations", &md->akeys, &md->avals,
		                      &md->nannot);
	}
out:
	if (!md->ns)
		md->ns = ceb_config_strdup(r, "default");
}

/* The value node of an annotation, for error positions. */
const struct ceb_yaml_node *ceb_ld_annot_node(const struct ceb_config_meta *md, const char *key)
{
	return ceb_yaml_map_get(md->annots, key);
}

void ceb_config_add_entry(struct ceb_config_res *r, const char *kind, const char *ns,
                          const char *name, const struct ceb_config_meta *md, void *obj)
{
	struct ceb_config_loader *ld = r->ld;
	struct ceb_loc loc = {r->file, ceb_yaml_line(md->name_node), ceb_yaml_col(md->name_node)};

	if (ld->nentries == ld->capentries) {
		size_t cap = ld->capentries ? 2 * ld->capentries : 16;
		struct entry *p = realloc(ld->entries, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return;
		}
		ld->entries = p;
		ld->capentries = cap;
	}
	ld->entries[ld->nentries] = (struct entry){kind, ns, name, loc, obj, ld->nentries};
	ld->nentries++;
	if (md->nlabels)
		ceb_ld_keep_labels(r, kind, ns, name, md);
}

void ceb_config_add_source(struct ceb_config_res *r, struct ceb_source_cfg *src)
{
	src->next = NULL;
	*r->ld->source_tail = src;
	r->ld->source_tail = &src->next;
	r->ld->cfg->nsources++;
}

void ceb_config_add_endpoint(struct ceb_config_res *r, struct ceb_endpoint_cfg *ep)
{
	ep->next = NULL;
	*r->ld->endpoint_tail = ep;
	r->ld->endpoint_tail = &ep->next;
	r->ld->cfg->nendpoints++;
}

void ceb_config_add_object(struct ceb_config_res *r, struct ceb_config_object *obj)
{
	obj->next = NULL;
	*r->ld->object_tail = obj;
	r->ld->object_tail = &obj->next;
}

/* The text of a present scalar, else NULL (no report: for names in messages). */
static const char *peek_str(const struct ceb_yaml_node *n)
{
	return ceb_yaml_is_null(n) ? NULL : ceb_yaml_str(n);
}

/* The kinds this build loads and the Broker settings readers of its backends, from
 * broker/config/kinds.h: the loader names none of them. */
#define KIND(x)          extern const struct ceb_kind ceb_kind_##x;
#define BROKER_CONFIG(x) extern const struct ceb_broker_config_reader ceb_broker_config_##x;
#define CHANNEL_KIND(x)  extern const struct ceb_channel_kind ceb_channel_kind_##x;
#include "broker/config/kinds.h"
#undef KIND
#undef BROKER_CONFIG
#undef CHANNEL_KIND

static const struct ceb_kind *const kinds[] = {
#define KIND(x) &ceb_kind_##x,
#define BROKER_CONFIG(x)
#define CHANNEL_KIND(x)
#include "broker/config/kinds.h"
#undef KIND
#undef BROKER_CONFIG
#undef CHANNEL_KIND
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct ceb_broker_config_reader *const broker_configs[] = {
#define KIND(x)
#define BROKER_CONFIG(x) &ceb_broker_config_##x,
#define CHANNEL_KIND(x)
#include "broker/config/kinds.h"
#undef KIND
#undef BROKER_CONFIG
#undef CHANNEL_KIND
        NULL,
};

static const struct ceb_channel_kind *const channel_kinds[] = {
#define KIND(x)
#define BROKER_CONFIG(x)
#define CHANNEL_KIND(x) &ceb_channel_kind_##x,
#include "broker/config/kinds.h"
#undef KIND
#undef BROKER_CONFIG
#undef CHANNEL_KIND
        NULL,
};

const struct ceb_channel_kind *ceb_config_channel_kind(const char *kind)
{
	for (size_t i = 0; channel_kinds[i]; i++)
		if (!strcmp(channel_kinds[i]->kind, kind))
			return channel_kinds[i];
	return NULL;
}

/* The apiVersion of a channel kind of another group than messaging.knative.dev (DurableChannel's
 * messaging.cebroker.dev/v1alpha1), from the kinds table; NULL for Knative's. */
static const char *channel_kind_group(const char *kind)
{
	for (size_t i = 0; kinds[i]; i++)
		if (!strcmp(kinds[i]->kind, kind))
			return strncmp(kinds[i]->api_versions[0], "messaging.knative.dev/",
			               strlen("messaging.knative.dev/"))
			               ? kinds[i]->api_versions[0]
			               : NULL;
	return NULL;
}

const char *ceb_config_channel_kind_names(char *buf, size_t sz)
{
	size_t len = 0, n = 0;

	buf[0] = '\0';
	for (size_t i = 0; channel_kinds[i] && len < sz; i++)
		if (!channel_kind_group(channel_kinds[i]->kind))
			len += (size_t)snprintf(buf + len, sz - len, "%s%s", n++ ? ", " : "",
			                        channel_kinds[i]->kind);
	if (len < sz)
		len += (size_t)snprintf(buf + len, sz - len, " of messaging.knative.dev");
	for (size_t i = 0; channel_kinds[i] && len < sz; i++) {
		const char *api = channel_kind_group(channel_kinds[i]->kind);
		if (api)
			len += (size_t)snprintf(buf + len, sz - len, ", or %s of %.*s",
			                        channel_kinds[i]->kind, (int)strcspn(api, "/"),
			                        api);
	}
	return buf;
}

const struct ceb_broker_config_reader *ceb_ld_broker_config_reader(const char *channel)
{
	for (size_t i = 0; broker_configs[i]; i++)
		if (!strcmp(broker_configs[i]->channel, channel))
			return broker_configs[i];
	return NULL;
}

const struct ceb_broker_config_reader *ceb_ld_broker_config_reader_of(const char *kind)
{
	for (size_t i = 0; broker_configs[i]; i++)
		if (broker_configs[i]->kind && !strcmp(broker_configs[i]->kind, kind))
			return broker_configs[i];
	return NULL;
}

const char *ceb_ld_broker_config_kinds(char *buf, size_t sz)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; broker_configs[i] && len < sz; i++)
		if (broker_configs[i]->kind)
			len += (size_t)snprintf(buf + len, sz - len, " or a %s (%s)",
			                        broker_configs[i]->kind, broker_configs[i]->api);
	return buf;
}

bool ceb_config_addressable(const char *kind, size_t klen, const char *api)
{
	for (size_t i = 0; i < NKINDS; i++) {
		if (!kinds[i]->addressable || strlen(kinds[i]->kind) != klen ||
		    memcmp(kinds[i]->kind, kind, klen))
			continue;
		if (!api)
			return true;
		for (size_t j = 0; kinds[i]->api_versions[j]; j++)
			if (!strcmp(kinds[i]->api_versions[j], api))
				return true;
	}
	return false;
}

/* API groups that are cebroker's to serve: an unknown kind in one of them is an error (so that a typo
 * such as Triger is caught), where a document of any other group (a Namespace, a Deployment, a
 * Service, a Knative Service...) is skipped with a note: manifests put them in the same files. */
static const char *const eventing_groups[] = {"eventing.knative.dev",
                                              "messaging.knative.dev",
                                              "sources.knative.dev",
                                              "flows.knative.dev",
                                              "sinks.knative.dev",
                                              "sources.cebroker.dev",
                                              NULL};

/* Knative kinds this build cannot run yet: refused as such, not as unknown. */
static const char *const later_kinds[] = {
        "SinkBinding", "ApiServerSource", "JobSink",        "IntegrationSink", "IntegrationSource",
        "EventType",   "EventPolicy",     "EventTransform", "RequestReply",    NULL};

static bool in_list(const char *const *list, const char *s, size_t len)
{
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == len && !memcmp(list[i], s, len))
			return true;
	return false;
}

/* The group of an apiVersion ("" for the core group's "v1"). */
static bool eventing_group(const char *api)
{
	const char *slash = strchr(api, '/');

	return slash && in_list(eventing_groups, api, (size_t)(slash - api));
}

/* "Broker (eventing.knative.dev/v1), ..., KafkaSource (sources.knative.dev/v1 or ...v1beta1), ..." */
static const char *supported_kinds(char *buf, size_t sz)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NKINDS && len < sz; i++) {
		len += (size_t)snprintf(buf + len, sz - len, "%s%s (", i ? ", " : "",
		                        kinds[i]->kind);
		for (size_t j = 0; kinds[i]->api_versions[j] && len < sz; j++)
			len += (size_t)snprintf(buf + len, sz - len, "%s%s", j ? " or " : "",
			                        kinds[i]->api_versions[j]);
		if (len < sz)
			len += (size_t)snprintf(buf + len, sz - len, ")");
	}
	return buf;
}

static bool kind_serves(const struct ceb_kind *def, const char *api)
{
	for (size_t j = 0; def->api_versions[j]; j++)
		if (!strcmp(api, def->api_versions[j]))
			return true;
	return false;
}

static void load_resource(struct ceb_config_loader *ld, const char *file,
                          const struct ceb_yaml_node *root);

/* What `kubectl get -o yaml` prints for several objects: a v1 List whose items are resources. */
static void load_list(struct ceb_config_loader *ld, struct ceb_config_res *r,
                      const struct ceb_yaml_node *root)
{
	static const char *const fields[] = {"apiVersion", "kind", "metadata", "items", NULL};
	const struct ceb_yaml_node *v[4];
	char p[64];

	snprintf(r->who, sizeof(r->who), "List");
	if (!ceb_config_get_fields(r, root, "", fields, v, NULL) || !v[3])
		return;
	if (!ceb_config_want_seq(r, v[3], "items"))
		return;
	for (size_t i = 0; i < ceb_yaml_size(v[3]) && !ld->enomem && !ld->stop; i++) {
		const struct ceb_yaml_node *it = ceb_yaml_seq_item(v[3], i);

		if (ceb_yaml_type(it) != CEB_YAML_MAP)
			ceb_config_err(r, it, ceb_config_path_idx(p, sizeof(p), "items", i),
			               "expected a resource (a mapping), got %s",
			               ceb_yaml_describe(it));
		else
			load_resource(ld, r->file, it);
	}
}

/* A document of a group cebroker does not serve: one line saying so, and nothing else. */
static void skip_resource(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                          const char *kind, const char *api, const char *ns, const char *name)
{
	struct ceb_loc at = ceb_config_loc(r, root);
	char q[80], q2[80], q3[80], q4[80];

	r->who[0] = '\0';
	ceb_config_note_at(r, false, &at, NULL,
	                   "skipped %s %s%s%s (%s): not a kind cebroker serves",
	                   ceb_config_quoted(q, sizeof(q), kind),
	                   ns ? ceb_config_quoted(q2, sizeof(q2), ns) : "", ns ? "/" : "",
	                   name ? ceb_config_quoted(q3, sizeof(q3), name) : "(no name)",
	                   ceb_config_quoted(q4, sizeof(q4), api));
}

static void load_resource(struct ceb_config_loader *ld, const char *file,
                          const struct ceb_yaml_node *root)
{
	/* apiVersion, kind, metadata, status and a kind's top-level fields (at most 12: get_fields
	 * takes 16 names) */
	const struct ceb_yaml_node *kn, *an, *mn, *vals[17], *keys[17];
	const char *names[17], *kind, *api, *name, *ns;
	const struct ceb_kind *def = NULL;
	struct ceb_config_res r = {.ld = ld, .file = file};
	struct ceb_config_meta md = {0};
	char q[80], q2[80], sup[2048];
	bool kind_known = false;
	size_t nf = 0;

	if (ceb_yaml_is_null(root))
		return; /* an empty document */
	if (ceb_yaml_type(root) != CEB_YAML_MAP) {
		ceb_ld_file_err(
		        ld, file, ceb_yaml_line(root), ceb_yaml_col(root),
		        "a resource must be a mapping with apiVersion, kind and metadata, got %s",
		        ceb_yaml_describe(root));
		return;
	}
	kn = ceb_yaml_map_get(root, "kind");
	an = ceb_yaml_map_get(root, "apiVersion");
	mn = ceb_yaml_map_get(root, "metadata");
	kind = peek_str(kn);
	api = peek_str(an);
	name = peek_str(ceb_yaml_map_get(mn, "name"));
	ns = peek_str(ceb_yaml_map_get(mn, "namespace"));
	snprintf(r.who, sizeof(r.who), "%s %s/%s",
	         kind ? ceb_config_quoted(q, sizeof(q), kind) : "resource", ns ? ns : "default",
	         name ? ceb_config_quoted(q2, sizeof(q2), name) : "(no name)");
	for (size_t i = 0; kind && i < NKINDS; i++)
		if (!strcmp(kind, kinds[i]->kind)) {
			kind_known = true;
			if (api && kind_serves(kinds[i], api))
				def = kinds[i];
		}
	if (!kind) {
		ceb_config_err(&r, kn ? kn : root, "kind", "required field missing (supported: %s)",
		               supported_kinds(sup, sizeof(sup)));
		return;
	}
	if (!kind_known && api && !strcmp(kind, "List") && !strcmp(api, "v1")) {
		load_list(ld, &r, root);
		return;
	}
	if (!kind_known && api && !eventing_group(api)) {
		skip_resource(&r, root, kind, api, ns, name);
		return;
	}
	if (!kind_known) {
		if (!strcmp(kind, "SinkBinding") && api &&
		    !strncmp(api, "sources.knative.dev/", 20))
			ceb_config_err(
			        &r, kn, "kind",
			        "a SinkBinding binds Kubernetes workloads, which cebroker does "
			        "not run: run the program as a ContainerSource "
			        "(spec.template.spec.containers[].command), which gets K_SINK "
			        "and K_CE_OVERRIDES the same way");
		else if (in_list(later_kinds, kind, strlen(kind)))
			ceb_config_err(&r, kn, "kind",
			               "%s is a Knative kind that cebroker does not run yet "
			               "(supported: %s)",
			               kind, supported_kinds(sup, sizeof(sup)));
		else
			ceb_config_err(&r, kn, "kind", "unknown kind \"%s\" (supported: %s)",
			               ceb_config_quoted(q, sizeof(q), kind),
			               supported_kinds(sup, sizeof(sup)));
		return;
	}
	if (!def) {
		if (!api)
			ceb_config_err(&r, an ? an : root, "apiVersion",
			               "required field missing (supported: %s)",
			               supported_kinds(sup, sizeof(sup)));
		else
			ceb_config_err(&r, an, "apiVersion",
			               "unknown apiVersion \"%s\" for %s (supported: %s)",
			               ceb_config_quoted(q, sizeof(q), api), kind,
			               supported_kinds(sup, sizeof(sup)));
		return;
	}

	/* status is what the system reports (kubectl prints it): read past, like the metadata that
	 * the API server fills in */
	names[nf++] = "apiVersion";
	names[nf++] = "kind";
	names[nf++] = "metadata";
	names[nf++] = "status";
	for (size_t i = 0; def->fields[i] && nf < 16; i++)
		names[nf++] = def->fields[i];
	names[nf] = NULL;
	ceb_config_get_fields(&r, root, "", names, vals, keys);
	parse_meta(&r, root, vals[2], &md);
	r.ns = md.ns;
	/* before parse, which may take the names */
	if (!ld->enomem && md.ns)
		ceb_ld_keep_doc(ld, file, root, kind, md.ns, md.name);
	if (!ld->enomem && md.ns)
		def->parse(&r, &md, root, vals + 4);
	meta_free(&md);
}

/* ------------------------------------------------------------------------------------------------
 * Files, directories, and the checks that need every resource.
 */

/* Keep a file name for the locations (and the error order) that point to it. */
const char *ceb_ld_add_file(struct ceb_config_loader *ld, const char *name)
{
	struct ceb_config *cfg = ld->cfg;
	char **files, *copy;

	files = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*files));
	if (!files) {
		ld->enomem = true;
		return NULL;
	}
	cfg->files = files;
	copy = ceb_ld_xstrdup(ld, name);
	if (!copy)
		return NULL;
	cfg->files[cfg->nfiles++] = copy;
	return copy;
}

/* The YAML reader hands over documents and its own errors, located in the file being read. */
struct reading {
	struct ceb_config_loader *ld;
	const char *file;
};

static int on_document(void *arg, const struct ceb_yaml_node *root)
{
	struct reading *rd = arg;

	load_resource(rd->ld, rd->file, root);
	return rd->ld->stop || rd->ld->enomem;
}

static int on_yaml_error(void *arg, int line, int col, const char *msg)
{
	struct reading *rd = arg;

	ceb_ld_file_err(rd->ld, rd->file, line, col, "%s", msg);
	return rd->ld->stop || rd->ld->enomem;
}

/* file is the name ceb_ld_add_file() kept; data NULL reads the file of that name. */
static void load_yaml(struct ceb_config_loader *ld, const char *file, const char *data, size_t len)
{
	struct reading rd = {ld, file};
	const struct ceb_yaml_handler h = {on_document, on_yaml_error, &rd};
	int rc = data ? ceb_yaml_load_buffer(data, len, &h) : ceb_yaml_load_file(file, &h);

	if (rc == CEB_ENOMEM)
		ld->enomem = true;
}

/* Whether the file was read already (a -f given twice, or a directory and a file in it); else note
 * it. Its resources would otherwise be reported as duplicates of themselves. */
static bool seen_before(struct ceb_config_loader *ld, const struct stat *st)
{
	struct seen_file *grown;

	for (size_t i = 0; i < ld->nseen; i++)
		if (ld->seen[i].dev == st->st_dev && ld->seen[i].ino == st->st_ino)
			return true;
	if (ld->nseen == ld->capseen) {
		size_t cap = ld->capseen ? 2 * ld->capseen : 16;

		grown = realloc(ld->seen, cap * sizeof(*grown));
		if (!grown) {
			ld->enomem = true;
			return true;
		}
		ld->seen = grown;
		ld->capseen = cap;
	}
	ld->seen[ld->nseen++] = (struct seen_file){st->st_dev, st->st_ino};
	return false;
}

/* A file named with -f or found in a directory: the same error either way when it cannot be read,
 * and a dangling symbolic link says where it points. */
static void load_file(struct ceb_config_loader *ld, const char *name)
{
	struct stat st;
	const char *path;
	char target[512];
	ssize_t n;
	int err;

	if (stat(name, &st) == 0) {
		if (seen_before(ld, &st))
			return;
	} else {
		err = errno;
		if (lstat(name, &st) == 0 && S_ISLNK(st.st_mode)) {
			n = readlink(name, target, sizeof(target) - 1);
			target[n > 0 ? n : 0] = '\0';
			if ((path = ceb_ld_add_file(ld, name)))
				ceb_ld_file_err(ld, path, 0, 0,
				                "cannot read: a symbolic link to '%s', which %s",
				                target,
				                err == ENOENT ? "does not exist" : strerror(err));
			return;
		}
	}
	path = ceb_ld_add_file(ld, name);
	if (path)
		load_yaml(ld, path, NULL, 0);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool yaml_name(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.') /* editors' and tools' hidden files */
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static void load_dir(struct ceb_config_loader *ld, const char *name)
{
	const char *path = ceb_ld_add_file(ld, name);
	DIR *dir = path ? opendir(path) : NULL;
	struct dirent *de;
	char **names = NULL, **grown;
	size_t n = 0, cap = 0, found = 0;
	bool slash;

	if (!path)
		return;
	slash = *path && path[strlen(path) - 1] == '/';
	if (!dir) {
		ceb_ld_file_err(ld, path, 0, 0, "cannot read: %s", strerror(errno));
		return;
	}
	while ((de = readdir(dir))) {
		if (!yaml_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(names, cap * sizeof(*names));
			if (!grown) {
				ld->enomem = true;
				goto out;
			}
			names = grown;
		}
		if (!(names[n] = ceb_ld_xstrdup(ld, de->d_name)))
			goto out;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n && !ld->enomem && !ld->stop; i++) {
		struct stat st;
		struct ceb_buf full = CEB_BUF_INIT;

		ceb_buf_printf(&full, "%s%s%s", path, slash ? "" : "/", names[i]);
		if (full.failed) {
			ld->enomem = true;
			ceb_buf_free(&full);
			break;
		}
		/* Not recursive. A name that cannot be followed (a dangling link) is an error, as
		 * when it is named with -f: skipping it would drop its resources unseen. */
		if (stat(full.p, &st) != 0 || S_ISREG(st.st_mode)) {
			load_file(ld, full.p);
			found++;
		}
		ceb_buf_free(&full);
	}
	if (!found && !ld->enomem)
		ceb_ld_file_err(ld, path, 0, 0, "no *.yaml or *.yml files in this directory");
out:
	ceb_config_strv_free(names, n);
	closedir(dir);
}

/* ------------------------------------------------------------------------------------------------
 * The API.
 */

void ceb_config_free(struct ceb_config *cfg)
{
	if (!cfg)
		return;
	while (cfg->configmaps) {
		struct ceb_configmap *next = cfg->configmaps->next;

		ceb_ld_configmap_free(cfg->configmaps);
		cfg->configmaps = next;
	}
	while (cfg->secrets) {
		struct ceb_secret *next = cfg->secrets->next;

		ceb_ld_secret_free(cfg->secrets);
		cfg->secrets = next;
	}
	while (cfg->brokers) {
		struct ceb_broker_cfg *next = cfg->brokers->next;

		ceb_ld_broker_free(cfg->brokers);
		cfg->brokers = next;
	}
	while (cfg->triggers) {
		struct ceb_trigger_cfg *next = cfg->triggers->next;

		ceb_ld_trigger_free(cfg->triggers);
		cfg->triggers = next;
	}
	/* the generic views live inside the kinds' own structs: take next before freeing */
	while (cfg->sources) {
		struct ceb_source_cfg *sc = cfg->sources;

		cfg->sources = sc->next;
		sc->own_free((void *)sc->own);
	}
	ceb_ld_subscriptions_free(cfg->subscriptions);
	while (cfg->endpoints) {
		struct ceb_endpoint_cfg *ec = cfg->endpoints;

		cfg->endpoints = ec->next;
		ec->own_free((void *)ec->own);
	}
	while (cfg->objects) {
		struct ceb_config_object *obj = cfg->objects;

		cfg->objects = obj->next;
		obj->own_free(obj->own);
	}
	ceb_ld_docs_free(cfg);
	ceb_ld_labels_free(cfg->labels);
	ceb_config_strv_free(cfg->files, cfg->nfiles);
	for (size_t i = 0; i < cfg->nnotes; i++)
		free(cfg->notes[i].text);
	free(cfg->notes);
	free(cfg);
}

static int loader_begin(struct ceb_config_loader *ld, struct ceb_config_errors *errs,
                        const struct ceb_config_opts *opts)
{
	memset(ld, 0, sizeof(*ld));
	ld->errs = errs;
	ld->opts = opts;
	ld->cfg = calloc(1, sizeof(*ld->cfg));
	ld->refs = ceb_config_refs_new(opts);
	if (!ld->cfg || !ld->refs)
		return CEB_ENOMEM;
	ld->cm_tail = &ld->cfg->configmaps;
	ld->secret_tail = &ld->cfg->secrets;
	ld->broker_tail = &ld->cfg->brokers;
	ld->trigger_tail = &ld->cfg->triggers;
	ld->source_tail = &ld->cfg->sources;
	ld->endpoint_tail = &ld->cfg->endpoints;
	ld->subscription_tail = &ld->cfg->subscriptions;
	ld->object_tail = &ld->cfg->objects;
	return 0;
}

static int loader_end(struct ceb_config_loader *ld, struct ceb_config **out)
{
	int rc;

	if (!ld->enomem && !ld->stop)
		ceb_ld_resolve(ld);
	ceb_ld_flush_errors(ld);
	if (ld->enomem)
		rc = CEB_ENOMEM;
	else if (ld->nerr || ld->stop)
		rc = CEB_ECONFIG;
	else
		rc = 0;
	if (rc == 0) {
		ceb_ld_flush_notes(ld, ld->cfg);
		if (ld->enomem)
			rc = CEB_ENOMEM;
	}
	ceb_ld_flush_notes(ld, NULL);
	if (rc == 0) {
		*out = ld->cfg;
		ld->cfg = NULL;
	}
	ceb_config_free(ld->cfg);
	for (size_t i = 0; i < ld->nchecks; i++)
		check_free(&ld->checks[i]);
	free(ld->checks);
	free(ld->entries);
	free(ld->seen);
	for (size_t i = 0; i < ld->nbrecs; i++) {
		free(ld->brecs[i].config_kind);
		free(ld->brecs[i].config_ns);
		free(ld->brecs[i].config_name);
	}
	free(ld->brecs);
	ceb_config_refs_free(ld->refs);
	ceb_config_defaults_free(ld->defaults);
	return rc;
}

/* errs may be NULL (nobody reads the messages); the loader still needs somewhere to count. */
static int load(const char *const *paths, size_t npaths, const char *name, const char *yaml,
                size_t len, const struct ceb_config_opts *opts, struct ceb_config **out,
                struct ceb_config_errors *errs)
{
	struct ceb_config_errors scratch = {CEB_BUF_INIT, 0};
	struct ceb_config_errors *e = errs ? errs : &scratch;
	struct ceb_config_loader ld;
	int rc;

	if (!out)
		return CEB_EINVAL;
	rc = loader_begin(&ld, e, opts);
	if (rc < 0) {
		free(ld.cfg);
		ceb_config_refs_free(ld.refs);
		return rc;
	}
	if (yaml) {
		const char *file = ceb_ld_add_file(&ld, name ? name : "<string>");

		if (file)
			load_yaml(&ld, file, yaml, len);
	} else if (npaths == 0) {
		const char *file = ceb_ld_add_file(&ld, "cebroker");

		if (file)
			ceb_ld_file_err(&ld, file, 0, 0, "no configuration files given");
	}
	for (size_t i = 0; !yaml && i < npaths && !ld.enomem && !ld.stop; i++) {
		struct stat st;

		if (stat(paths[i], &st) != 0)
			load_file(&ld, paths[i]); /* reports why it cannot be read */
		else if (S_ISDIR(st.st_mode))
			load_dir(&ld, paths[i]);
		else
			load_file(&ld, paths[i]);
	}
	rc = loader_end(&ld, out);
	ceb_buf_free(&scratch.text);
	return rc;
}

int ceb_config_load(const char *const *paths, size_t npaths, struct ceb_config **out,
                    struct ceb_config_errors *errs)
{
	return load(paths, npaths, NULL, NULL, 0, NULL, out, errs);
}

int ceb_config_load_opts(const char *const *paths, size_t npaths,
                         const struct ceb_config_opts *opts, struct ceb_config **out,
                         struct ceb_config_errors *errs)
{
	return load(paths, npaths, NULL, NULL, 0, opts, out, errs);
}

int ceb_config_load_string(const char *name, const char *yaml, size_t len, struct ceb_config **out,
                           struct ceb_config_errors *errs)
{
	if (!yaml)
		return CEB_EINVAL;
	return load(NULL, 0, name, yaml, len, NULL, out, errs);
}

int ceb_config_load_string_opts(const char *name, const char *yaml, size_t len,
                                const struct ceb_config_opts *opts, struct ceb_config **out,
                                struct ceb_config_errors *errs)
{
	if (!yaml)
		return CEB_EINVAL;
	return load(NULL, 0, name, yaml, len, opts, out, errs);
}

const struct ceb_broker_cfg *ceb_config_find_broker(const struct ceb_config *cfg, const char *ns,
                                                    const char *name)
{
	for (const struct ceb_broker_cfg *b = cfg ? cfg->brokers : NULL; b; b = b->next)
		if (!strcmp(b->ns, ns) && !strcmp(b->name, name))
			return b;
	return NULL;
}

const struct ceb_endpoint_cfg *ceb_config_find_endpoint(const struct ceb_config *cfg,
                                                        const char *kind, const char *ns,
                                                        const char *name)
{
	for (const struct ceb_endpoint_cfg *ec = cfg ? cfg->endpoints : NULL; ec; ec = ec->next)
		if (!strcmp(ec->kind, kind) && !strcmp(ec->ns, ns) && !strcmp(ec->name, name))
			return ec;
	return NULL;
}

const char *ceb_configmap_get(const struct ceb_configmap *cm, const char *key)
{
	for (size_t i = 0; cm && i < cm->n; i++)
		if (!strcmp(cm->keys[i], key))
			return cm->values[i];
	return NULL;
}

const char *ceb_annotation(char *const *keys, char *const *values, size_t n, const char *key)
{
	for (size_t i = 0; keys && i < n; i++)
		if (!strcmp(keys[i], key))
			return values[i];
	return NULL;
}
