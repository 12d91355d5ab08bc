/* What needs every resource loaded first: references between resources (a Trigger's Broker, a
 * Broker's ConfigMap, refs), Knative's config-br-defaults and channel templates, and the checks of
 * the resources together. */
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

static int cmp_entries(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);

	if (!c)
		c = strcmp(x->ns, y->ns);
	if (!c)
		c = strcmp(x->name, y->name);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static const struct entry *find_entry(const struct entry *sorted, size_t n, const char *kind,
                                      const char *ns, const char *name)
{
	struct entry key = {.kind = kind, .ns = ns, .name = name, .seq = 0};
	size_t lo = 0, hi = n;

	/* lower bound: the first definition wins when there are duplicates */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_entries(&sorted[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && !strcmp(sorted[lo].kind, kind) && !strcmp(sorted[lo].ns, ns) &&
	    !strcmp(sorted[lo].name, name))
		return &sorted[lo];
	return NULL;
}

/* ConfigMaps that hold settings rather than a Broker's config: cebroker's address tables and
 * Knative's config-br-defaults (from its own namespace only, as Knative reads it). */
static void read_settings(struct ceb_config_loader *ld)
{
	const char *opt_file = NULL;

	for (struct ceb_configmap *cm = ld->cfg->configmaps; cm && !ld->enomem; cm = cm->next) {
		struct ceb_config_res r = {.ld = ld, .file = cm->loc.file, .ns = cm->ns};

		snprintf(r.who, sizeof(r.who), "ConfigMap %s/%s", cm->ns, cm->name);
		if (ceb_config_refs_is_table(cm)) {
			ceb_config_refs_read_table(&r, ld->refs, cm);
		} else if (ceb_config_defaults_is(cm)) {
			ld->defaults = ceb_config_defaults_read(&r, cm);
			ld->defaults_cm = cm;
		} else if (!strcmp(cm->name, "config-br-defaults")) {
			ceb_config_note_at(&r, true, &cm->loc, NULL,
			                   "not read: Knative reads config-br-defaults from "
			                   "namespace " SYSTEM_NAMESPACE " only");
		}
	}
	if (ld->opts && ld->opts->naddresses && (opt_file = ceb_ld_add_file(ld, "--address"))) {
		struct ceb_config_res r = {.ld = ld, .file = opt_file, .ns = "default"};

		ceb_config_refs_read_options(&r, ld->refs);
	}
}

static void broker_res(struct ceb_config_loader *ld, const struct broker_rec *br,
                       struct ceb_config_res *r)
{
	*r = (struct ceb_config_res){.ld = ld, .file = br->file, .ns = br->b->ns};
	snprintf(r->who, sizeof(r->who), "Broker %s/%s", br->b->ns, br->b->name);
}

/* What config-br-defaults gives a Broker that leaves its class, config or delivery out, as Knative's
 * webhook fills them in: the config reference and the delivery (its dead-letter sink, retry and
 * backoff only) when the Broker has none, the class when it has no annotation. */
static void broker_defaults(struct ceb_config_loader *ld, struct broker_rec *br)
{
	struct ceb_config_broker_defaults dflt;
	struct ceb_broker_cfg *b = br->b;
	struct ceb_config_res r;
	struct ceb_delivery *dl = &b->delivery;
	char what[256] = "";
	size_t len = 0;

	if (!ld->defaults)
		return;
	broker_res(ld, br, &r);
	ceb_config_defaults_for(ld->defaults, b->ns, b->broker_class,
	                        br->config_given ? br->config_kind : NULL, &dflt);
	if (!br->config_given && dflt.ref) {
		br->config_at = dflt.ref->at;
		ceb_ld_broker_config_ref(&r, br, dflt.ref->api, dflt.ref->kind, dflt.ref->name,
		                         dflt.ref->ns, "spec.config (from config-br-defaults)");
		len += (size_t)snprintf(what + len, sizeof(what) - len, "spec.config %s/%s",
		                        dflt.ref->ns ? dflt.ref->ns : b->ns, dflt.ref->name);
	}
	if (!br->delivery_given && dflt.delivery && len < sizeof(what)) {
		const struct ceb_delivery *src = dflt.delivery;

		/* unset fields hold the values that mean unset (0 retries, exponential), so a
		 * delivery of only unset fields is the same as none, as in Knative */
		ceb_config_delivery_free(dl);
		dl->retry = src->retry;
		dl->backoff_policy = src->backoff_policy;
		dl->backoff_delay_ms = src->backoff_delay_ms;
		dl->set = src->has_dls || src->retry || src->backoff_delay_ms ||
		          src->backoff_policy != CEB_BACKOFF_EXPONENTIAL;
		if (src->has_dls) {
			if (!ceb_config_dest_copy(&dl->dls, &src->dls)) {
				ceb_config_oom(&r);
				return;
			}
			dl->has_dls = true;
			ceb_config_bind_dest(&r, &dl->dls, "spec.delivery.deadLetterSink");
		}
		len += (size_t)snprintf(what + len, sizeof(what) - len, "%sspec.delivery",
		                        len ? ", " : "");
	}
	if (!b->broker_class && dflt.broker_class && len < sizeof(what)) {
		if (!(b->broker_class = ceb_config_strdup(&r, dflt.broker_class)))
			return;
		br->class_at = dflt.class_at;
		br->class_defaulted = true;
		len += (size_t)snprintf(what + len, sizeof(what) - len, "%sclass %s",
		                        len ? ", " : "", dflt.broker_class);
	}
	if (dflt.same_namespace && br->config_ns && strcmp(br->config_ns, b->ns))
		ceb_config_err_at(&r, &br->config_at, "spec.config.namespace",
		                  "%s is not the Broker's namespace, and config-br-defaults sets "
		                  "disallowDifferentNamespaceConfig",
		                  br->config_ns);
	if (len)
		ceb_config_note_at(&r, false, &br->at, NULL,
		                   "%s from config-br-defaults (%s:%d:%d)", what,
		                   ld->defaults_cm->loc.file, ld->defaults_cm->loc.line,
		                   ld->defaults_cm->loc.col);
}

/* The channel that stores a Broker's events, which this build must include: the class's, or for
 * MTChannelBasedBroker the one its ConfigMap's channel template names. The backend's reader of the
 * Broker's ConfigMap (a Kafka Broker's) runs here, so that `validate` finds what the channel would
 * refuse at start. */
static void broker_channel(struct ceb_config_loader *ld, struct broker_rec *br)
{
	struct ceb_broker_cfg *b = br->b;
	struct ceb_config_res r;
	const struct ceb_loc *cls_at = br->class_at.line ? &br->class_at : &br->at;
	const char *path = br->class_defaulted ? "class (from config-br-defaults)"
	                   : br->class_at.line ? "metadata.annotations[\"" CLASS_ANNOTATION "\"]"
	                                       : "class";
	const struct ceb_broker_config_reader *reader;

	broker_res(ld, br, &r);
	if (!b->broker_class && !(b->broker_class = ceb_config_strdup(&r, DEFAULT_BROKER_CLASS)))
		return;
	if (!ceb_channel_for_class(b->broker_class))
		return; /* reported where the class was given */
	/* a config reference that was refused, or named a ConfigMap that is missing, was reported;
	 * Knative's own default channel ConfigMap, missing, means InMemoryChannel */
	if (br->config_bad || (br->config_name && b->config_res_kind && !b->config_res) ||
	    (br->config_name && !b->config_res_kind && !b->config &&
	     !ceb_ld_default_channel_cm(br->config_ns, br->config_name)))
		return;
	/* a backend's own settings kind (a RabbitmqBrokerConfig) serves that backend's Brokers only */
	reader = b->config_res_kind ? ceb_ld_broker_config_reader_of(b->config_res_kind) : NULL;
	if (reader && strcmp(reader->channel, ceb_channel_for_class(b->broker_class) ?: "")) {
		ceb_config_err_at(&r, &br->config_at, "spec.config",
		                  "a %s holds the settings of a Broker on the %s channel, not of a "
		                  "%s Broker",
		                  reader->kind, reader->channel, b->broker_class);
		return;
	}
	if (!strcmp(b->broker_class, DEFAULT_BROKER_CLASS)) {
		const char *api, *kind;
		void *spec;

		b->channel = ceb_config_channel_template(&r, (struct ceb_configmap *)b->config,
		                                         &br->config_at);
		/* a backend's channel kind (KafkaChannel): the channel Knative makes for it */
		if (b->channel && strcmp(b->channel, "memory") &&
		    ceb_config_channel_template_kind(b->config, &api, &kind, &spec))
			b->channel_res = ceb_config_broker_channel(&r, b->ns, b->name, api, kind,
			                                           spec, &br->config_at);
		return;
	}
	b->channel = ceb_channel_for_class(b->broker_class);
	if (!b->channel || !ceb_channel_ops_find(b->channel)) {
		ceb_config_err_at(
		        &r, cls_at, path,
		        "class %s needs the %s channel, which this build does not include",
		        b->broker_class, b->channel ? b->channel : "?");
		b->channel = NULL;
		return;
	}
	/* the backend reads the Broker's settings itself (a Kafka Broker's ConfigMap) */
	reader = ceb_ld_broker_config_reader(b->channel);
	if (reader && reader->kind && !b->config_res)
		ceb_config_err_at(
		        &r, br->config_name ? &br->config_at : &br->at, "spec.config",
		        "a Broker of class %s needs spec.config naming a %s (apiVersion %s)%s",
		        b->broker_class, reader->kind, reader->api,
		        br->config_name ? ", not a ConfigMap" : "");
	else if (reader && !reader->kind)
		reader->read(&r, (struct ceb_configmap *)b->config,
		             br->config_name ? &br->config_at : &br->at);
}

void ceb_ld_resolve(struct ceb_config_loader *ld)
{
	struct entry *sorted = NULL;
	size_t n = ld->nentries, *dup_of = NULL;

	if (n) {
		sorted = malloc(n * sizeof(*sorted));
		dup_of = malloc(n * sizeof(*dup_of));
		if (!sorted || !dup_of) {
			ld->enomem = true;
			goto out;
		}
		memcpy(sorted, ld->entries, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_entries);
	}
	/* duplicates, reported in the order they were defined */
	for (size_t i = 0; i < n; i++)
		dup_of[i] = SIZE_MAX;
	for (size_t i = 1; i < n; i++)
		if (!strcmp(sorted[i].kind, sorted[i - 1].kind) &&
		    !strcmp(sorted[i].ns, sorted[i - 1].ns) &&
		    !strcmp(sorted[i].name, sorted[i - 1].name))
			dup_of[sorted[i].seq] = sorted[i - 1].seq;
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = &ld->entries[i], *first;
		struct ceb_buf who = CEB_BUF_INIT;

		if (dup_of[i] == SIZE_MAX)
			continue;
		while (dup_of[dup_of[i]] != SIZE_MAX)
			dup_of[i] = dup_of[dup_of[i]];
		first = &ld->entries[dup_of[i]];
		ceb_buf_printf(&who, "%s %s/%s", e->kind, e->ns, e->name);
		ceb_ld_file_err(ld, e->loc.file, e->loc.line, e->loc.col,
		                "%s: metadata.name: duplicate %s (first defined at %s:%d:%d)",
		                who.p ? who.p : e->kind, e->kind, first->loc.file, first->loc.line,
		                first->loc.col);
		ceb_buf_free(&who);
	}
	read_settings(ld);
	for (size_t i = 0; i < ld->nbrecs && !ld->enomem; i++)
		broker_defaults(ld, &ld->brecs[i]);
	for (size_t i = 0; i < ld->nchecks; i++) {
		const struct check *c = &ld->checks[i];
		const struct entry *e = find_entry(sorted, n, c->kind, c->ns, c->name);

		if (!e && c->optional) {
			if (c->secret_out)
				c->secret_out->secret = NULL;
			continue;
		}
		if (!e) {
			ceb_ld_file_err(ld, c->loc.file, c->loc.line, c->loc.col,
			                "%s: %s: %s %s/%s not found", c->who, c->path, c->kind,
			                c->ns, c->name);
			continue;
		}
		if (c->cm_out)
			*c->cm_out = e->obj;
		if (c->broker_out)
			*c->broker_out = e->obj;
		if (c->secret_out)
			ceb_ld_secret_bind(ld, c, e->obj);
		if (c->obj_out)
			*c->obj_out = e->obj;
	}
	for (size_t i = 0; i < ld->nbrecs && !ld->enomem; i++)
		broker_channel(ld, &ld->brecs[i]);
	ceb_config_refs_resolve(ld, ld->refs);
	/* what backs Knative's channels, and what each Subscription's channel is */
	ceb_ld_resolve_flows(ld);
	/* one path, one owner: Brokers, KafkaSinks, channels and flows share the ingress */
	ceb_ld_check_addresses(ld);
	/* Knative: a Trigger that sets any delivery field ignores its Broker's delivery as a whole */
	for (struct ceb_trigger_cfg *t = ld->cfg->triggers; t && !ld->enomem; t = t->next) {
		if (t->delivery.set || !t->broker_cfg)
			continue;
		ceb_config_delivery_free(&t->delivery);
		if (!ceb_config_delivery_copy(&t->delivery, &t->broker_cfg->delivery))
			ld->enomem = true;
	}
out:
	free(sorted);
	free(dup_of);
}
