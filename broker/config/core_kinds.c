/* The core's resource kinds: ConfigMap (settings other resources name), Broker (an ingress address
 * and a channel) and Trigger (a subscription with filters and a subscriber), each parsed and checked
 * field by field. */
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

void ceb_ld_configmap_free(struct ceb_configmap *cm)
{
	if (!cm)
		return;
	free(cm->ns);
	free(cm->name);
	ceb_config_strv_free(cm->keys, cm->n);
	ceb_config_strv_free(cm->values, cm->n);
	free(cm->at);
	if (cm->backend_reader)
		cm->backend_reader->free(cm->backend);
	ceb_config_channel_template_free(cm->channel_tpl);
	free(cm);
}

void ceb_ld_broker_free(struct ceb_broker_cfg *b)
{
	if (!b)
		return;
	free(b->ns);
	free(b->name);
	free(b->broker_class);
	ceb_config_msg_channel_free(b->channel_res);
	ceb_config_delivery_free(&b->delivery);
	ceb_config_strv_free(b->annot_keys, b->nannot);
	ceb_config_strv_free(b->annot_values, b->nannot);
	free(b);
}

void ceb_ld_trigger_free(struct ceb_trigger_cfg *t)
{
	if (!t)
		return;
	free(t->ns);
	free(t->name);
	free(t->broker);
	ceb_filter_free(t->filter);
	ceb_config_dest_free(&t->subscriber);
	ceb_config_delivery_free(&t->delivery);
	ceb_config_strv_free(t->annot_keys, t->nannot);
	ceb_config_strv_free(t->annot_values, t->nannot);
	free(t);
}

/* data (binaryData and immutable are read and ignored: nothing here reads bytes). Each value's
 * position is kept: ConfigMaps that hold settings (a Kafka Broker's, config-br-defaults, a channel
 * template) are read once every file is loaded, and their errors point at the value. */
static void ceb_ld_parse_configmap(struct ceb_config_res *r, struct ceb_config_meta *md,
                                   const struct ceb_yaml_node *root,
                                   const struct ceb_yaml_node *const *vals)
{
	struct ceb_configmap *cm;

	if (!md->name)
		return;
	cm = calloc(1, sizeof(*cm));
	if (!cm) {
		ceb_config_oom(r);
		return;
	}
	cm->ns = md->ns;
	cm->name = md->name;
	md->ns = md->name = NULL;
	cm->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	if (vals[0] && ceb_config_get_strmap(r, vals[0], "data", &cm->keys, &cm->values, &cm->n) &&
	    cm->n) {
		/* get_strmap succeeded: pair i of the map is keys[i] */
		cm->at = calloc(cm->n, sizeof(*cm->at));
		if (!cm->at)
			ceb_config_oom(r);
		for (size_t i = 0; cm->at && i < cm->n; i++)
			ceb_yaml_origin(ceb_yaml_map_value(vals[0], i), &cm->at[i]);
	}
	if (vals[2] && ceb_yaml_type(vals[2]) == CEB_YAML_SCALAR) {
		bool b;

		ceb_config_get_bool(r, vals[2], "immutable", &b);
	}
	*r->ld->cm_tail = cm;
	r->ld->cm_tail = &cm->next;
	ceb_config_add_entry(r, "ConfigMap", cm->ns, cm->name, md, cm);
}

/* The record ceb_ld_resolve() keeps for a Broker, or NULL (out of memory). */
static struct broker_rec *add_broker_rec(struct ceb_config_res *r, struct ceb_broker_cfg *b,
                                         const struct ceb_config_meta *md)
{
	struct ceb_config_loader *ld = r->ld;

	if (ld->nbrecs == ld->capbrecs) {
		size_t cap = ld->capbrecs ? 2 * ld->capbrecs : 16;
		struct broker_rec *p = realloc(ld->brecs, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return NULL;
		}
		ld->brecs = p;
		ld->capbrecs = cap;
	}
	ld->brecs[ld->nbrecs] = (struct broker_rec){.b = b, .file = r->file};
	ld->brecs[ld->nbrecs].at = ceb_config_loc(r, md->name_node);
	return &ld->brecs[ld->nbrecs++];
}

/* A Broker's config reference (spec.config, or config-br-defaults' at br->config_at): a ConfigMap
 * that must exist once every file is loaded (but Knative's own default channel's). ns NULL: the
 * Broker's. */
void ceb_ld_broker_config_ref(struct ceb_config_res *r, struct broker_rec *br, const char *api,
                              const char *kind, const char *name, const char *ns, const char *path)
{
	const struct ceb_broker_config_reader *reader = ceb_ld_broker_config_reader_of(kind);
	struct check *c;
	char q[80], kinds[256];

	if (reader && (!api || !strcmp(api, reader->api))) {
		/* a backend's own settings kind (a RabbitmqBrokerConfig) */
		br->config_ns = ceb_config_strdup(r, ns ? ns : br->b->ns);
		br->config_name = ceb_config_strdup(r, name);
		br->b->config_res_kind = reader->kind;
		if (br->config_ns && br->config_name &&
		    (c = ceb_ld_add_check(r, reader->kind, br->config_ns, br->config_name,
		                          &br->config_at, path, NULL, NULL)))
			c->obj_out = &br->b->config_res;
		return;
	}
	if (strcmp(kind, "ConfigMap") || (api && strcmp(api, "v1"))) {
		ceb_config_err_at(
		        r, &br->config_at, path,
		        "only a ConfigMap (apiVersion v1)%s can hold a Broker's config, got "
		        "%s",
		        ceb_ld_broker_config_kinds(kinds, sizeof(kinds)),
		        ceb_config_quoted(q, sizeof(q), kind));
		br->config_bad = true;
		return;
	}
	br->config_ns = ceb_config_strdup(r, ns ? ns : br->b->ns);
	br->config_name = ceb_config_strdup(r, name);
	if (br->config_ns && br->config_name)
		ceb_ld_add_check(r, "ConfigMap", br->config_ns, br->config_name, &br->config_at,
		                 path, &br->b->config, NULL);
}

/* The class, spec.config and spec.delivery as the manifest gives them; ceb_ld_resolve() fills in what it
 * leaves out from config-br-defaults, as Knative's webhook does, and checks the class's channel. */
static void ceb_ld_parse_broker(struct ceb_config_res *r, struct ceb_config_meta *md,
                                const struct ceb_yaml_node *root,
                                const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"config", "delivery", NULL};
	static const char *const ref_fields[] = {"apiVersion", "kind", "name", "namespace", NULL};
	const char *cls = ceb_annotation(md->akeys, md->avals, md->nannot, CLASS_ANNOTATION);
	const struct ceb_yaml_node *v[2], *rv[4];
	struct ceb_broker_cfg *b;
	struct broker_rec *br;
	char q[80], *api = NULL, *kind = NULL, *name = NULL, *ns = NULL;

	if (!md->name)
		return;
	b = calloc(1, sizeof(*b));
	if (!b) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&b->delivery);
	b->ns = md->ns;
	b->name = md->name;
	b->annot_keys = md->akeys;
	b->annot_values = md->avals;
	b->nannot = md->nannot;
	md->ns = md->name = NULL;
	md->akeys = md->avals = NULL;
	b->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	*r->ld->broker_tail = b;
	r->ld->broker_tail = &b->next;
	r->ld->cfg->nbrokers++;
	ceb_config_add_entry(r, "Broker", b->ns, b->name, md, b);
	if (!(br = add_broker_rec(r, b, md)))
		return;

	if (cls) {
		br->class_at = ceb_config_loc(r, ceb_ld_annot_node(md, CLASS_ANNOTATION));
		if (!ceb_channel_for_class(cls)) /* the classes of channels/channel.c */
			ceb_config_err(
			        r, ceb_ld_annot_node(md, CLASS_ANNOTATION),
			        "metadata.annotations[\"" CLASS_ANNOTATION "\"]",
			        "unknown broker class \"%s\" (known: MTChannelBasedBroker, Kafka, "
			        "RabbitMQBroker, NatsJetStreamBroker)",
			        ceb_config_quoted(q, sizeof(q), cls));
		b->broker_class = ceb_config_strdup(r, cls);
	}

	if (!vals[0] || !ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	if (v[0] && ceb_config_get_fields(r, v[0], "spec.config", ref_fields, rv, NULL)) {
		br->config_given = true;
		br->config_at = ceb_config_loc(r, v[0]);
		if (!rv[1] || !rv[2]) {
			ceb_config_err(r, v[0], !rv[1] ? "spec.config.kind" : "spec.config.name",
			               "required field missing");
			br->config_bad = true;
		} else if (ceb_config_get_str(r, rv[0], "spec.config.apiVersion", &api) &&
		           ceb_config_get_str(r, rv[1], "spec.config.kind", &kind) &&
		           ceb_config_get_str(r, rv[2], "spec.config.name", &name) &&
		           ceb_config_get_str(r, rv[3], "spec.config.namespace", &ns)) {
			ceb_ld_broker_config_ref(r, br, api, kind, name, ns, "spec.config");
			br->config_kind = kind;
			kind = NULL;
		} else {
			br->config_bad = true;
		}
		free(api);
		free(kind);
		free(name);
		free(ns);
	}
	if (v[1]) {
		br->delivery_given = true;
		ceb_config_parse_delivery(r, v[1], "spec.delivery", true, &b->delivery);
	}
}

#define PARALLELISM_ANNOTATION "rabbitmq.eventing.knative.dev/parallelism"

static void ceb_ld_parse_trigger(struct ceb_config_res *r, struct ceb_config_meta *md,
                                 const struct ceb_yaml_node *root,
                                 const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"broker",     "brokerRef", "filter", "filters",
	                                          "subscriber", "delivery",  NULL};
	const char *order = ceb_annotation(md->akeys, md->avals, md->nannot,
	                                   "kafka.eventing.knative.dev/delivery.order");
	const char *par = ceb_annotation(md->akeys, md->avals, md->nannot, PARALLELISM_ANNOTATION);
	const struct ceb_yaml_node *v[6];
	struct ceb_trigger_cfg *t;
	char q[80], p[512];

	if (!md->name)
		return;
	t = calloc(1, sizeof(*t));
	if (!t) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&t->delivery);
	t->ns = md->ns;
	t->name = md->name;
	t->annot_keys = md->akeys;
	t->annot_values = md->avals;
	t->nannot = md->nannot;
	md->ns = md->name = NULL;
	md->akeys = md->avals = NULL;
	t->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	*r->ld->trigger_tail = t;
	r->ld->trigger_tail = &t->next;
	r->ld->cfg->ntriggers++;
	ceb_config_add_entry(r, "Trigger", t->ns, t->name, md, t);

	if (par) {
		/* eventing-rabbitmq's: deliveries in flight (1 to 1000); 1 is FIFO */
		char *end;
		long n = strtol(par, &end, 10);

		if (!*par || *end || n < 1 || n > 1000)
			ceb_config_err(r, ceb_ld_annot_node(md, PARALLELISM_ANNOTATION),
			               "metadata.annotations[\"" PARALLELISM_ANNOTATION "\"]",
			               "\"%s\" is not a parallelism (an integer from 1 to 1000)",
			               ceb_config_quoted(q, sizeof(q), par));
		else
			t->parallelism = (int)n;
	}
	if (order && !strcmp(order, "ordered"))
		t->ordered = true;
	else if (order && strcmp(order, "unordered"))
		ceb_config_err(
		        r, ceb_ld_annot_node(md, "kafka.eventing.knative.dev/delivery.order"),
		        "metadata.annotations[\"kafka.eventing.knative.dev/delivery.order\"]",
		        "\"%s\" is not a delivery order (ordered or unordered)",
		        ceb_config_quoted(q, sizeof(q), order));

	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a Trigger needs spec.broker and "
		               "spec.subscriber)");
		return;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	if (v[1])
		ceb_config_err(r, v[1], "spec.brokerRef",
		               "not supported (cross-namespace Triggers); use spec.broker with a "
		               "Broker in the Trigger's namespace");
	else if (!v[0])
		ceb_config_err(r, vals[0], "spec.broker", "required field missing");
	else if (ceb_config_get_str(r, v[0], "spec.broker", &t->broker))
		ceb_config_add_check(r, "Broker", t->ns, t->broker, v[0], "spec.broker", NULL,
		                     &t->broker_cfg);

	t->filter = ceb_config_parse_filters(r, v[2], v[3]);

	if (!v[4])
		ceb_config_err(r, vals[0], "spec.subscriber", "required field missing");
	else
		ceb_config_parse_dest(r, v[4], "spec.subscriber", &t->subscriber);
	if (v[5])
		ceb_config_parse_delivery(r, v[5],
		                          ceb_config_path_key(p, sizeof(p), "spec", "delivery"),
		                          true, &t->delivery);
}

static const char *const spec_only[] = {"spec", NULL};
static const char *const configmap_fields[] = {"data", "binaryData", "immutable", NULL};
static const char *const eventing_v1[] = {CEB_EVENTING_V1, NULL};
static const char *const core_v1[] = {"v1", NULL};

const struct ceb_kind ceb_kind_configmap = {core_v1, "ConfigMap", configmap_fields,
                                            ceb_ld_parse_configmap, false};
const struct ceb_kind ceb_kind_broker = {eventing_v1, "Broker", spec_only, ceb_ld_parse_broker,
                                         true};
const struct ceb_kind ceb_kind_trigger = {eventing_v1, "Trigger", spec_only, ceb_ld_parse_trigger,
                                          false};
