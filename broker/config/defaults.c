/* What a Broker takes when its manifest says nothing: Knative's config-br-defaults (the class, config
 * and delivery its webhook fills in) and the channel template of an MTChannelBasedBroker's ConfigMap,
 * both YAML inside a ConfigMap value, read with their positions in the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/error.h"
#include "channels/channel.h"
#include "broker/config/yaml.h"

#define DEFAULTS_NAME "config-br-defaults"
#define DEFAULTS_KEY  "default-br-config"
#define SYSTEM_NS     "knative-eventing"
#define TEMPLATE_KEY  "channel-template-spec"
#define TEMPLATE_KEY_0 \
	"channelTemplateSpec" /* Knative's older key, read when the other is absent */
#define MESSAGING_CEB "messaging.cebroker.dev/" /* our own channel kinds (DurableChannel) */
#define MESSAGING "messaging.knative.dev/"

/* ------------------------------------------------------------------------------------------------
 * YAML inside a ConfigMap value.
 */

typedef void value_doc_f(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                         const char *path, void *arg);

struct value_read {
	struct ceb_config_res *r;
	const char *path;
	value_doc_f *fn;
	void *arg;
	int docs;
};

static int on_value_doc(void *arg, const struct ceb_yaml_node *root)
{
	struct value_read *vr = arg;

	if (++vr->docs == 2)
		ceb_config_err(vr->r, root, vr->path, "holds more than one YAML document");
	else if (vr->docs == 1)
		vr->fn(vr->r, root, vr->path, vr->arg);
	return ceb_config_is_oom(vr->r);
}

static int on_value_error(void *arg, int line, int col, const char *msg)
{
	struct value_read *vr = arg;
	struct ceb_loc at = {vr->r->file, line, col};

	ceb_config_err_at(vr->r, &at, vr->path, "%s", msg);
	return 0;
}

/* Read value i of cm as one YAML document, located in cm's file, and hand its root to fn. r reports
 * about cm (its file is cm's). */
static void read_value(struct ceb_config_res *r, const struct ceb_configmap *cm, size_t i,
                       const char *path, value_doc_f *fn, void *arg)
{
	struct value_read vr = {r, path, fn, arg, 0};
	const struct ceb_yaml_handler h = {on_value_doc, on_value_error, &vr};
	int rc = ceb_yaml_load_buffer_at(cm->values[i], strlen(cm->values[i]),
	                                 cm->at ? &cm->at[i] : NULL, &h);

	if (rc == CEB_ENOMEM)
		ceb_config_oom(r);
}

static size_t key_index(const struct ceb_configmap *cm, const char *key)
{
	size_t i;

	for (i = 0; i < cm->n && strcmp(cm->keys[i], key); i++)
		;
	return i;
}

static struct ceb_loc value_loc(const struct ceb_configmap *cm, size_t i)
{
	if (i < cm->n && cm->at)
		return (struct ceb_loc){cm->loc.file, cm->at[i].line, cm->at[i].col};
	return cm->loc;
}

/* ------------------------------------------------------------------------------------------------
 * config-br-defaults: pkg/apis/config/defaults.go in knative/eventing.
 */

struct brconfig { /* Knative's BrokerConfig: a config reference and a delivery */
	bool has_ref;
	struct ceb_config_default_ref ref; /* strings owned (ceb_config_strdup) */
	bool has_delivery;
	struct ceb_delivery delivery;
};

struct dconfig { /* Knative's DefaultConfig */
	char *broker_class;
	struct ceb_loc class_at;
	bool has_inline; /* its inline BrokerConfig: nil in Go unless one of its fields is set */
	struct brconfig inl;
	size_t nclasses; /* brokerClasses */
	char **class_names;
	struct brconfig **class_cfgs; /* NULL for a null entry */
	bool disallow;                /* disallowDifferentNamespaceConfig */
};

struct ceb_config_defaults {
	struct dconfig *cluster; /* clusterDefault, or NULL */
	size_t nns;              /* namespaceDefaults */
	char **ns_names;
	struct dconfig **ns_cfgs; /* NULL for a null entry */
};

static void brconfig_free(struct brconfig *bc)
{
	if (!bc)
		return;
	free((char *)bc->ref.api);
	free((char *)bc->ref.kind);
	free((char *)bc->ref.name);
	free((char *)bc->ref.ns);
	ceb_config_delivery_free(&bc->delivery);
}

static void dconfig_free(struct dconfig *dc)
{
	if (!dc)
		return;
	free(dc->broker_class);
	brconfig_free(&dc->inl);
	for (size_t i = 0; i < dc->nclasses; i++) {
		free(dc->class_names[i]);
		brconfig_free(dc->class_cfgs[i]);
		free(dc->class_cfgs[i]);
	}
	free(dc->class_names);
	free(dc->class_cfgs);
	free(dc);
}

void ceb_config_defaults_free(struct ceb_config_defaults *d)
{
	if (!d)
		return;
	dconfig_free(d->cluster);
	for (size_t i = 0; i < d->nns; i++) {
		free(d->ns_names[i]);
		dconfig_free(d->ns_cfgs[i]);
	}
	free(d->ns_names);
	free(d->ns_cfgs);
	free(d);
}

bool ceb_config_defaults_is(const struct ceb_configmap *cm)
{
	return !strcmp(cm->name, DEFAULTS_NAME) && !strcmp(cm->ns, SYSTEM_NS);
}

/* The fields a BrokerConfig and a DefaultConfig share (vals[0..4]: apiVersion, kind, name,
 * namespace, delivery) into bc. */
static void read_brconfig(struct ceb_config_res *r, const struct ceb_yaml_node *map,
                          const char *path, const struct ceb_yaml_node *const *vals,
                          struct brconfig *bc)
{
	char p[512];
	char *s[4] = {NULL, NULL, NULL, NULL};
	bool ok = true;

	if (vals[0] || vals[1] || vals[2] || vals[3]) {
		static const char *const names[] = {"apiVersion", "kind", "name", "namespace"};

		for (int i = 0; i < 4; i++)
			ok &= ceb_config_get_str(r, vals[i],
			                         ceb_config_path_key(p, sizeof(p), path, names[i]),
			                         &s[i]);
		if (ok && (!s[1] || !s[2])) {
			ceb_config_err(
			        r, map,
			        ceb_config_path_key(p, sizeof(p), path, !s[1] ? "kind" : "name"),
			        "required field missing (a config reference needs kind and name)");
			ok = false;
		}
		if (ok) {
			bc->has_ref = true;
			bc->ref = (struct ceb_config_default_ref){s[0], s[1], s[2], s[3],
			                                          ceb_config_loc(r, map)};
		} else {
			for (int i = 0; i < 4; i++)
				free(s[i]);
		}
	}
	ceb_config_delivery_init(&bc->delivery);
	if (vals[4]) {
		bc->has_delivery = true;
		ceb_config_parse_delivery(r, vals[4],
		                          ceb_config_path_key(p, sizeof(p), path, "delivery"), true,
		                          &bc->delivery);
	}
}

static bool known_class(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                        const char *cls)
{
	char q[80];

	if (ceb_channel_for_class(cls)) /* the classes of channels/channel.c */
		return true;
	ceb_config_err(r, n, path,
	               "unknown broker class \"%s\" (known: MTChannelBasedBroker, Kafka, "
	               "RabbitMQBroker, NatsJetStreamBroker)",
	               ceb_config_quoted(q, sizeof(q), cls));
	return false;
}

/* brokerClasses: class name -> BrokerConfig. */
static void read_classes(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                         struct dconfig *dc)
{
	static const char *const fields[] = {"apiVersion", "kind",     "name",
	                                     "namespace",  "delivery", NULL};
	size_t cnt = ceb_yaml_size(n);
	char p[512];

	if (!ceb_config_want_map(r, n, path))
		return;
	dc->class_names = calloc(cnt ? cnt : 1, sizeof(*dc->class_names));
	dc->class_cfgs = calloc(cnt ? cnt : 1, sizeof(*dc->class_cfgs));
	if (!dc->class_names || !dc->class_cfgs) {
		ceb_config_oom(r);
		return;
	}
	for (size_t i = 0; i < cnt; i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(n, i),
		                           *v = ceb_yaml_map_value(n, i);
		const struct ceb_yaml_node *vals[5];
		const char *name = ceb_yaml_str(k);
		struct brconfig *bc;

		if (ceb_yaml_type(k) != CEB_YAML_SCALAR) {
			ceb_config_err(r, k, path, "keys must be strings, got %s",
			               ceb_yaml_describe(k));
			continue;
		}
		ceb_config_path_key(p, sizeof(p), path, name);
		known_class(r, k, p, name);
		if (!(dc->class_names[dc->nclasses] = ceb_config_strdup(r, name)))
			return;
		dc->nclasses++;
		if (ceb_yaml_is_null(v) || !ceb_config_get_fields(r, v, p, fields, vals, NULL))
			continue;
		if (!(bc = calloc(1, sizeof(*bc)))) {
			ceb_config_oom(r);
			return;
		}
		dc->class_cfgs[dc->nclasses - 1] = bc;
		read_brconfig(r, v, p, vals, bc);
	}
}

static struct dconfig *read_dconfig(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                    const char *path)
{
	static const char *const fields[] = {
	        "apiVersion", "kind",        "name",          "namespace",
	        "delivery",   "brokerClass", "brokerClasses", "disallowDifferentNamespaceConfig",
	        NULL};
	const struct ceb_yaml_node *vals[8];
	struct dconfig *dc;
	char p[512];

	if (ceb_yaml_is_null(n) || !ceb_config_get_fields(r, n, path, fields, vals, NULL))
		return NULL;
	if (!(dc = calloc(1, sizeof(*dc)))) {
		ceb_config_oom(r);
		return NULL;
	}
	dc->has_inline = vals[0] || vals[1] || vals[2] || vals[3] || vals[4];
	read_brconfig(r, n, path, vals, &dc->inl);
	ceb_config_path_key(p, sizeof(p), path, "brokerClass");
	if (vals[5] && ceb_config_get_str(r, vals[5], p, &dc->broker_class)) {
		dc->class_at = ceb_config_loc(r, vals[5]);
		if (*dc->broker_class)
			known_class(r, vals[5], p, dc->broker_class);
	}
	if (vals[6])
		read_classes(r, vals[6], ceb_config_path_key(p, sizeof(p), path, "brokerClasses"),
		             dc);
	if (vals[7])
		ceb_config_get_bool(
		        r, vals[7],
		        ceb_config_path_key(p, sizeof(p), path, "disallowDifferentNamespaceConfig"),
		        &dc->disallow);
	return dc;
}

static void read_defaults_doc(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                              const char *path, void *arg)
{
	static const char *const fields[] = {"clusterDefault", "namespaceDefaults", NULL};
	struct ceb_config_defaults *d = arg;
	const struct ceb_yaml_node *vals[2];
	char p[512], q[512];
	size_t cnt;

	if (!ceb_config_get_fields(r, root, path, fields, vals, NULL))
		return;
	if (vals[0])
		d->cluster = read_dconfig(
		        r, vals[0], ceb_config_path_key(p, sizeof(p), path, "clusterDefault"));
	if (!vals[1])
		return;
	ceb_config_path_key(p, sizeof(p), path, "namespaceDefaults");
	if (!ceb_config_want_map(r, vals[1], p))
		return;
	cnt = ceb_yaml_size(vals[1]);
	d->ns_names = calloc(cnt ? cnt : 1, sizeof(*d->ns_names));
	d->ns_cfgs = calloc(cnt ? cnt : 1, sizeof(*d->ns_cfgs));
	if (!d->ns_names || !d->ns_cfgs) {
		ceb_config_oom(r);
		return;
	}
	for (size_t i = 0; i < cnt; i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(vals[1], i);

		if (ceb_yaml_type(k) != CEB_YAML_SCALAR) {
			ceb_config_err(r, k, p, "keys must be strings, got %s",
			               ceb_yaml_describe(k));
			continue;
		}
		if (!(d->ns_names[d->nns] = ceb_config_strdup(r, ceb_yaml_str(k))))
			return;
		d->ns_cfgs[d->nns] =
		        read_dconfig(r, ceb_yaml_map_value(vals[1], i),
		                     ceb_config_path_key(q, sizeof(q), p, ceb_yaml_str(k)));
		d->nns++;
	}
}

struct ceb_config_defaults *ceb_config_defaults_read(struct ceb_config_res *r,
                                                     const struct ceb_configmap *cm)
{
	struct ceb_config_defaults *d = calloc(1, sizeof(*d));
	size_t i = key_index(cm, DEFAULTS_KEY), nerr = r->nerr;
	struct ceb_loc at = value_loc(cm, i);
	bool templ = r->templ;

	/* a dead-letter sink given here is bound for each Broker that takes it, in its namespace */
	r->templ = true;
	if (!d) {
		ceb_config_oom(r);
		r->templ = templ;
		return NULL;
	}
	if (i == cm->n || !*cm->values[i]) {
		ceb_config_err_at(r, &at, "data." DEFAULTS_KEY,
		                  "%s: Knative's config-br-defaults holds its defaults there",
		                  i == cm->n ? "required field missing" : "must not be empty");
	} else {
		read_value(r, cm, i, "data." DEFAULTS_KEY, read_defaults_doc, d);
	}
	r->templ = templ;
	if (r->nerr != nerr || ceb_config_is_oom(r)) {
		ceb_config_defaults_free(d);
		return NULL;
	}
	return d;
}

static const struct dconfig *ns_config(const struct ceb_config_defaults *d, const char *ns)
{
	for (size_t i = 0; i < d->nns; i++)
		if (!strcmp(d->ns_names[i], ns))
			return d->ns_cfgs[i];
	return NULL;
}

static const struct brconfig *class_config(const struct dconfig *dc, const char *cls)
{
	for (size_t i = 0; dc && i < dc->nclasses; i++)
		if (!strcmp(dc->class_names[i], cls))
			return dc->class_cfgs[i];
	return NULL;
}

/* getClusterDefaultBrokerConfig */
static const struct brconfig *cluster_config(const struct ceb_config_defaults *d, const char *cls)
{
	const struct dconfig *c = d->cluster;
	const struct brconfig *bc;

	if (!c || !c->has_inline)
		return NULL; /* Knative: "Defaults for Broker Configurations ... have not been set up" */
	if ((bc = class_config(c, cls)))
		return bc;
	return &c->inl;
}

/* getBrokerConfigByClassName */
static const struct brconfig *config_by_class(const struct ceb_config_defaults *d, const char *ns,
                                              const char *cls)
{
	const struct dconfig *nc = ns_config(d, ns);
	const struct brconfig *bc;

	if (nc) {
		if ((bc = class_config(nc, cls)))
			return bc;
		if (nc->broker_class && !strcmp(nc->broker_class, cls) && nc->has_inline)
			return &nc->inl;
	}
	return cluster_config(d, cls);
}

void ceb_config_defaults_for(const struct ceb_config_defaults *d, const char *ns,
                             const char *annot_class, const char *config_kind,
                             struct ceb_config_broker_defaults *out)
{
	const struct dconfig *nc;
	const struct brconfig *bc;

	memset(out, 0, sizeof(*out));
	if (!d)
		return;
	nc = ns_config(d, ns);
	/* GetBrokerConfig: by the class given, else by the namespace's default class, else the
	 * cluster's; a Broker with a spec.config is looked up by that config's kind, as Knative's
	 * BrokerSpec.SetDefaults does (which in practice gives the cluster default's delivery). */
	if (config_kind && *config_kind)
		bc = config_by_class(d, ns, config_kind);
	else if (annot_class && *annot_class)
		bc = config_by_class(d, ns, annot_class);
	else if (nc && nc->broker_class && *nc->broker_class)
		bc = config_by_class(d, ns, nc->broker_class);
	else
		bc = cluster_config(d, "");
	if (bc && bc->has_ref)
		out->ref = &bc->ref;
	if (bc && bc->has_delivery)
		out->delivery = &bc->delivery;
	/* GetBrokerClass, for a Broker without the annotation */
	if (!annot_class) {
		if (nc && nc->broker_class && *nc->broker_class) {
			out->broker_class = nc->broker_class;
			out->class_at = nc->class_at;
		} else if (d->cluster && d->cluster->broker_class && *d->cluster->broker_class) {
			out->broker_class = d->cluster->broker_class;
			out->class_at = d->cluster->class_at;
		}
	}
	/* determineNamespaceAllowance */
	out->same_namespace = (nc && nc->disallow) || (d->cluster && d->cluster->disallow);
}

/* ------------------------------------------------------------------------------------------------
 * Channel templates: pkg/reconciler/broker/config.go in knative/eventing.
 */

struct ceb_channel_template {
	bool bad;  /* the template could not be read (reported about the ConfigMap) */
	char *api; /* its apiVersion and kind */
	char *kind;
	struct ceb_loc kind_at;
	void *spec; /* a backend's kind: its spec as read (a KafkaChannel's numPartitions...) */
	void (*spec_free)(void *spec);
};

void ceb_config_channel_template_free(struct ceb_channel_template *tpl)
{
	if (!tpl)
		return;
	free(tpl->api);
	free(tpl->kind);
	if (tpl->spec_free)
		tpl->spec_free(tpl->spec);
	free(tpl);
}

bool ceb_config_channel_template_kind(const struct ceb_configmap *cm, const char **api,
                                      const char **kind, void **spec)
{
	const struct ceb_channel_template *tpl = cm ? cm->channel_tpl : NULL;

	if (!tpl || tpl->bad || !tpl->kind)
		return false;
	*api = tpl->api;
	*kind = tpl->kind;
	*spec = tpl->spec;
	return true;
}

static void read_template_doc(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                              const char *path, void *arg)
{
	static const char *const fields[] = {"apiVersion", "kind", "spec", NULL};
	struct ceb_channel_template *tpl = arg;
	const struct ceb_yaml_node *vals[3];
	char p[512];
	size_t nerr = r->nerr;

	if (!ceb_config_get_fields(r, root, path, fields, vals, NULL))
		return;
	for (int i = 0; i < 2; i++)
		if (!vals[i])
			ceb_config_err(r, root, ceb_config_path_key(p, sizeof(p), path, fields[i]),
			               "required field missing");
	if (r->nerr != nerr ||
	    !ceb_config_get_str(r, vals[0], ceb_config_path_key(p, sizeof(p), path, "apiVersion"),
	                        &tpl->api) ||
	    !ceb_config_get_str(r, vals[1], ceb_config_path_key(p, sizeof(p), path, "kind"),
	                        &tpl->kind))
		return;
	tpl->kind_at = ceb_config_loc(r, vals[1]);
	if (ceb_config_channel_kind(tpl->kind)) {
		ceb_config_read_template_spec(
		        r, vals[2], ceb_config_path_key(p, sizeof(p), path, "spec"),
		        ceb_config_channel_kind(tpl->kind), &tpl->spec, &tpl->spec_free);
		return;
	}
	/* An InMemoryChannel of cebroker is its memory channel, bounded by the command line: its
	 * spec (a channel-wide delivery) has nothing to set. Other kinds are refused per Broker. */
	if (!strcmp(tpl->kind, "InMemoryChannel") && vals[2] && ceb_yaml_size(vals[2]))
		ceb_config_err(
		        r, vals[2], ceb_config_path_key(p, sizeof(p), path, "spec"),
		        "not supported for an InMemoryChannel (give the delivery on the Broker "
		        "or its Triggers)");
}

const char *ceb_config_channel_template(struct ceb_config_res *r, struct ceb_configmap *cm,
                                        const struct ceb_loc *at)
{
	struct ceb_channel_template *tpl;
	const char *path;
	size_t i;
	char q[80], q2[80], names[256];

	if (!cm)
		return "memory"; /* the channel Knative's own default configuration names */
	i = key_index(cm, TEMPLATE_KEY);
	path = "data." TEMPLATE_KEY;
	if (i == cm->n) {
		i = key_index(cm, TEMPLATE_KEY_0);
		path = "data." TEMPLATE_KEY_0;
	}
	if (i == cm->n) {
		ceb_config_err_at(
		        r, at, "spec.config",
		        "ConfigMap %s/%s has no " TEMPLATE_KEY
		        ": the ConfigMap of an MTChannelBasedBroker names its channel there "
		        "(e.g. \"apiVersion: messaging.knative.dev/v1\\nkind: "
		        "InMemoryChannel\")",
		        cm->ns, cm->name);
		return NULL;
	}
	if (!cm->channel_tpl) { /* read once, however many Brokers name it */
		struct ceb_config_res cr = {.ld = r->ld, .file = cm->loc.file, .ns = cm->ns};

		snprintf(cr.who, sizeof(cr.who), "ConfigMap %s/%s", cm->ns, cm->name);
		if (!(tpl = cm->channel_tpl = calloc(1, sizeof(*tpl)))) {
			ceb_config_oom(r);
			return NULL;
		}
		read_value(&cr, cm, i, path, read_template_doc, tpl);
		tpl->bad = cr.nerr != 0 || !tpl->kind;
	}
	tpl = cm->channel_tpl;
	if (tpl->bad)
		return NULL;
	if (tpl->api && (!strncmp(tpl->api, MESSAGING, strlen(MESSAGING)) ||
	     !strncmp(tpl->api, MESSAGING_CEB, strlen(MESSAGING_CEB))) &&
	    ceb_channel_for_kind(tpl->kind))
		return ceb_channel_for_kind(tpl->kind);
	/* a backend's channel kind (broker/config/kinds.h) whose backend this build lacks */
	if (ceb_config_channel_kind(tpl->kind) && tpl->api &&
	    (!strncmp(tpl->api, MESSAGING, strlen(MESSAGING)) ||
	     !strncmp(tpl->api, MESSAGING_CEB, strlen(MESSAGING_CEB))))
		ceb_config_err_at(
		        r, at, "spec.config",
		        "ConfigMap %s/%s (%s:%d:%d) asks for a %s, which this build cannot "
		        "back (it does not include its backend, and does not fall back to "
		        "memory)",
		        cm->ns, cm->name, tpl->kind_at.file, tpl->kind_at.line, tpl->kind_at.col,
		        tpl->kind);
	else
		ceb_config_err_at(
		        r, at, "spec.config",
		        "ConfigMap %s/%s (%s:%d:%d) asks for channel %s (%s), which is not a "
		        "channel kind cebroker knows (InMemoryChannel, %s)",
		        cm->ns, cm->name, tpl->kind_at.file, tpl->kind_at.line, tpl->kind_at.col,
		        ceb_config_quoted(q, sizeof(q), tpl->kind),
		        tpl->api ? ceb_config_quoted(q2, sizeof(q2), tpl->api) : "?",
		        ceb_config_channel_kind_names(names, sizeof(names)));
	return NULL;
}

/* ------------------------------------------------------------------------------------------------
 * The default channel of a Channel, Sequence or Parallel without a channelTemplate: Knative's
 * default-ch-webhook ConfigMap (key default-ch-config: clusterDefault and namespaceDefaults),
 * else InMemoryChannel (config/core/configmaps/default-channel.yaml).
 */

#define DEFAULT_CH_CM  "default-ch-webhook"
#define DEFAULT_CH_KEY "default-ch-config"

struct ceb_default_channels {
	char *cluster_api, *cluster_kind;
	struct ceb_loc cluster_at;
	size_t n;
	char **ns, **api, **kind;
	struct ceb_loc *at;
};

void ceb_config_default_channels_free(struct ceb_default_channels *d)
{
	if (!d)
		return;
	free(d->cluster_api);
	free(d->cluster_kind);
	for (size_t i = 0; i < d->n; i++) {
		free(d->ns[i]);
		free(d->api[i]);
		free(d->kind[i]);
	}
	free(d->ns);
	free(d->api);
	free(d->kind);
	free(d->at);
	free(d);
}

/* {apiVersion, kind, spec} of a channel template, both strings required. */
static bool read_ch_template(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                             const char *path, char **api, char **kind, struct ceb_loc *at)
{
	static const char *const fields[] = {"apiVersion", "kind", "spec", NULL};
	const struct ceb_yaml_node *v[3];
	char p[512];
	size_t nerr = r->nerr;

	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
		return false;
	for (int i = 0; i < 2; i++)
		if (!v[i])
			ceb_config_err(r, n, ceb_config_path_key(p, sizeof(p), path, fields[i]),
			               "required field missing");
	if (r->nerr != nerr)
		return false;
	ceb_config_get_str(r, v[0], ceb_config_path_key(p, sizeof(p), path, "apiVersion"), api);
	ceb_config_get_str(r, v[1], ceb_config_path_key(p, sizeof(p), path, "kind"), kind);
	*at = ceb_config_loc(r, v[1]);
	return r->nerr == nerr;
}

static void read_default_ch_doc(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                                const char *path, void *arg)
{
	static const char *const fields[] = {"clusterDefault", "namespaceDefaults", NULL};
	struct ceb_default_channels *d = arg;
	const struct ceb_yaml_node *v[2];
	char p[512], p2[512];
	size_t n;

	if (!ceb_config_get_fields(r, root, path, fields, v, NULL))
		return;
	if (v[0])
		read_ch_template(r, v[0], ceb_config_path_key(p, sizeof(p), path, "clusterDefault"),
		                 &d->cluster_api, &d->cluster_kind, &d->cluster_at);
	if (!v[1] || !ceb_config_want_map(
	                     r, v[1], ceb_config_path_key(p, sizeof(p), path, "namespaceDefaults")))
		return;
	n = ceb_yaml_size(v[1]);
	d->ns = calloc(n ? n : 1, sizeof(*d->ns));
	d->api = calloc(n ? n : 1, sizeof(*d->api));
	d->kind = calloc(n ? n : 1, sizeof(*d->kind));
	d->at = calloc(n ? n : 1, sizeof(*d->at));
	if (!d->ns || !d->api || !d->kind || !d->at) {
		ceb_config_oom(r);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *ns = ceb_yaml_str(ceb_yaml_map_key(v[1], i));

		if (!ns)
			continue;
		ceb_config_path_key(p2, sizeof(p2), p, ns);
		if (read_ch_template(r, ceb_yaml_map_value(v[1], i), p2, &d->api[d->n],
		                     &d->kind[d->n], &d->at[d->n])) {
			d->ns[d->n] = ceb_config_strdup(r, ns);
			d->n++;
		} else {
			free(d->api[d->n]);
			free(d->kind[d->n]);
			d->api[d->n] = d->kind[d->n] = NULL;
		}
	}
}

struct ceb_default_channels *ceb_config_default_channels_read(struct ceb_config_res *r,
                                                              const struct ceb_config *cfg)
{
	struct ceb_default_channels *d = calloc(1, sizeof(*d));
	const struct ceb_configmap *cm = NULL;
	size_t i;

	if (!d) {
		ceb_config_oom(r);
		return NULL;
	}
	for (const struct ceb_configmap *c = cfg->configmaps; c && !cm; c = c->next)
		if (!strcmp(c->ns, "knative-eventing") && !strcmp(c->name, DEFAULT_CH_CM))
			cm = c;
	if (!cm || (i = key_index(cm, DEFAULT_CH_KEY)) == cm->n)
		return d;
	{
		struct ceb_config_res cr = {.ld = r->ld, .file = cm->loc.file, .ns = cm->ns};

		snprintf(cr.who, sizeof(cr.who), "ConfigMap %s/%s", cm->ns, cm->name);
		read_value(&cr, cm, i, "data." DEFAULT_CH_KEY, read_default_ch_doc, d);
	}
	return d;
}

void ceb_config_default_channel(const struct ceb_default_channels *d, const char *ns,
                                const char **api, const char **kind, const struct ceb_loc **at)
{
	for (size_t i = 0; d && i < d->n; i++)
		if (!strcmp(d->ns[i], ns) && d->kind[i]) {
			*api = d->api[i];
			*kind = d->kind[i];
			*at = &d->at[i];
			return;
		}
	if (d && d->cluster_kind) {
		*api = d->cluster_api;
		*kind = d->cluster_kind;
		*at = &d->cluster_at;
		return;
	}
	*api = "messaging.knative.dev/v1";
	*kind = "InMemoryChannel";
	*at = NULL;
}
