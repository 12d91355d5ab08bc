/* Knative's messaging and flows: InMemoryChannel, Channel and Subscription
 * (messaging.knative.dev/v1), Sequence and Parallel (flows.knative.dev/v1). Each is built from the
 * same two parts as a Broker and its Triggers: channels (struct ceb_msg_channel, an endpoint at an
 * address) and subscriptions (struct ceb_subscription_cfg). A Sequence and a Parallel are wired as
 * Knative's reconcilers wire them (pkg/reconciler/sequence/resources, .../parallel/resources), with
 * the same channel and subscription names, which logs and metrics show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/loader.h"
#include "broker/config/yaml.h"
#include "channels/channel.h"

#define MESSAGING_V1 "messaging.knative.dev/v1"
#define MESSAGING_CEB "messaging.cebroker.dev/" /* our own channel kinds (DurableChannel) */
#define MESSAGING    "messaging.knative.dev/"
#define FLOWS_V1     "flows.knative.dev/v1"
#define SUBSCRIBERS_SET                                                                   \
	"set by Knative's controller from the Subscriptions, never by a user (declare a " \
	"Subscription instead)"

static void msg_channel_free(void *own)
{
	struct ceb_msg_channel *c = own;

	if (!c)
		return;
	free(c->kind);
	free(c->ns);
	free(c->name);
	free(c->address);
	free(c->backing_api);
	free(c->backing_kind);
	free(c->owner);
	ceb_config_delivery_free(&c->delivery);
	if (c->backend_spec_free)
		c->backend_spec_free(c->backend_spec);
	free(c);
}

static void subscription_free(struct ceb_subscription_cfg *s)
{
	if (!s)
		return;
	free(s->ns);
	free(s->name);
	free(s->channel_api);
	free(s->channel_kind);
	free(s->channel_name);
	ceb_config_dest_free(&s->subscriber);
	if (s->has_reply)
		ceb_config_dest_free(&s->reply);
	ceb_config_delivery_free(&s->delivery);
	free(s->owner);
	free(s);
}

void ceb_ld_subscriptions_free(struct ceb_subscription_cfg *s)
{
	while (s) {
		struct ceb_subscription_cfg *next = s->next;

		subscription_free(s);
		s = next;
	}
}

/* A channel of the configuration being loaded (kept in file order with the endpoints). NULL when
 * out of memory (reported). kind NULL: its backing kind, known once every file is loaded. */
static struct ceb_msg_channel *channel_new(struct ceb_config_res *r, const char *kind,
                                           const char *ns, const char *name, const char *address,
                                           const char *owner, const struct ceb_loc *loc)
{
	struct ceb_msg_channel *c = calloc(1, sizeof(*c));

	if (!c) {
		ceb_config_oom(r);
		return NULL;
	}
	ceb_config_delivery_init(&c->delivery);
	c->kind = ceb_config_strdup(r, kind);
	c->ns = ceb_config_strdup(r, ns);
	c->name = ceb_config_strdup(r, name);
	c->address = ceb_config_strdup(r, address);
	c->owner = ceb_config_strdup(r, owner);
	if ((kind && !c->kind) || !c->ns || !c->name || (address && !c->address) ||
	    (owner && !c->owner)) {
		msg_channel_free(c);
		return NULL;
	}
	c->ep = (struct ceb_endpoint_cfg){.kind = c->kind,
	                                  .ns = c->ns,
	                                  .name = c->name,
	                                  .address = c->address,
	                                  .owner = c->owner,
	                                  .own = c,
	                                  .own_free = msg_channel_free,
	                                  .loc = *loc};
	ceb_config_add_endpoint(r, &c->ep);
	return c;
}

static struct ceb_subscription_cfg *subscription_new(struct ceb_config_res *r, const char *ns,
                                                     const char *name, const char *owner,
                                                     const struct ceb_loc *loc)
{
	struct ceb_subscription_cfg *s = calloc(1, sizeof(*s));

	if (!s) {
		ceb_config_oom(r);
		return NULL;
	}
	ceb_config_delivery_init(&s->delivery);
	s->ns = ceb_config_strdup(r, ns);
	s->name = ceb_config_strdup(r, name);
	s->owner = ceb_config_strdup(r, owner);
	s->loc = *loc;
	if (!s->ns || !s->name || (owner && !s->owner)) {
		subscription_free(s);
		return NULL;
	}
	*r->ld->subscription_tail = s;
	r->ld->subscription_tail = &s->next;
	r->ld->cfg->nsubscriptions++;
	return s;
}

/* A destination to a channel this configuration made (a step's next channel): this daemon's own
 * address /<ns>/<name>. */
static bool internal_dest(struct ceb_config_res *r, struct ceb_dest *d,
                          const struct ceb_msg_channel *c)
{
	memset(d, 0, sizeof(*d));
	d->ref_api = ceb_config_strdup(r, MESSAGING_V1);
	d->ref_kind = ceb_config_strdup(r, "Channel");
	d->ref_ns = ceb_config_strdup(r, c->ns);
	d->ref_name = ceb_config_strdup(r, c->address ? c->address : c->name);
	d->loc = c->ep.loc;
	return d->ref_api && d->ref_kind && d->ref_ns && d->ref_name;
}

/* The spec of a channel of a backend's kind at n (NULL: none; path names it): subscribers (refused),
 * delivery, and the kind's own fields, which its reader keeps in c->backend_spec. */
static void read_kind_spec(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           const char *path, const struct ceb_channel_kind *ck,
                           struct ceb_msg_channel *c, bool delivery_ok)
{
	const char *names[16];
	const struct ceb_yaml_node *v[16] = {0};
	size_t k = 0;
	char p[512];

	names[k++] = "subscribers";
	names[k++] = "delivery";
	for (size_t i = 0; ck->spec_fields[i] && k < 15; i++)
		names[k++] = ck->spec_fields[i];
	names[k] = NULL;
	if (n && !ceb_config_get_fields(r, n, path, names, v, NULL))
		return;
	if (v[0])
		ceb_config_err(r, v[0], ceb_config_path_key(p, sizeof(p), path, "subscribers"),
		               SUBSCRIBERS_SET);
	if (v[1] && !delivery_ok) {
		ceb_config_err(r, v[1], ceb_config_path_key(p, sizeof(p), path, "delivery"),
		               "not supported in a Broker's channel template (give the delivery on "
		               "the Broker or its Triggers)");
	} else if (v[1]) {
		ceb_config_delivery_free(&c->delivery);
		ceb_config_parse_delivery(r, v[1],
		                          ceb_config_path_key(p, sizeof(p), path, "delivery"), true,
		                          &c->delivery);
	}
	c->backend_spec = ck->read_spec(r, v + 2, path);
	c->backend_spec_free = ck->free_spec;
}

void ceb_config_parse_channel_kind(struct ceb_config_res *r, struct ceb_config_meta *md,
                                   const struct ceb_yaml_node *root,
                                   const struct ceb_yaml_node *const *vals,
                                   const struct ceb_channel_kind *ck, const char *api)
{
	struct ceb_loc loc = ceb_config_loc(r, root);
	struct ceb_msg_channel *c;

	if (!md->name)
		return;
	c = channel_new(r, ck->kind, md->ns, md->name, NULL, NULL, &loc);
	if (!c)
		return;
	c->backing_api = ceb_config_strdup(r, api);
	c->backing_kind = ceb_config_strdup(r, ck->kind);
	ceb_config_add_entry(r, ck->kind, c->ns, c->name, md, c);
	read_kind_spec(r, vals[0], "spec", ck, c, true);
}

void ceb_config_read_template_spec(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                   const char *path, const struct ceb_channel_kind *ck, void **spec,
                                   void (**spec_free)(void *spec))
{
	struct ceb_msg_channel c = {0};

	ceb_config_delivery_init(&c.delivery);
	read_kind_spec(r, n, path, ck, &c, false);
	*spec = c.backend_spec;
	*spec_free = c.backend_spec_free;
	ceb_config_delivery_free(&c.delivery);
}

void ceb_config_msg_channel_free(struct ceb_msg_channel *c)
{
	msg_channel_free(c);
}

struct ceb_msg_channel *ceb_config_broker_channel(struct ceb_config_res *r, const char *ns,
                                                  const char *broker, const char *api,
                                                  const char *kind, void *spec,
                                                  const struct ceb_loc *at)
{
	const struct ceb_channel_kind *ck = ceb_config_channel_kind(kind);
	struct ceb_msg_channel *c = calloc(1, sizeof(*c));
	char name[512];

	if (!c) {
		ceb_config_oom(r);
		return NULL;
	}
	ceb_config_delivery_init(&c->delivery);
	snprintf(name, sizeof(name), "%s-kne-trigger", broker);
	c->kind = ceb_config_strdup(r, kind);
	c->ns = ceb_config_strdup(r, ns);
	c->name = ceb_config_strdup(r, name);
	c->backing_api = ceb_config_strdup(r, api);
	c->backing_kind = ceb_config_strdup(r, kind);
	c->backend_spec = spec; /* the ConfigMap's template's: not freed with c */
	c->ep.loc = *at;
	c->at_path = "spec.config";
	if (!c->kind || !c->ns || !c->name || !c->backing_api || !c->backing_kind) {
		msg_channel_free(c);
		return NULL;
	}
	if (ck && ck->resolve)
		ck->resolve(r, c, r->ld->cfg);
	return c;
}

/* channelTemplate {apiVersion, kind, spec}: the kind that backs the channel(s). An InMemoryChannel's
 * spec may give the delivery of its Subscriptions; nothing else is read from a spec. */
static void parse_template(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           const char *path, struct ceb_msg_channel *c)
{
	static const char *const fields[] = {"apiVersion", "kind", "spec", NULL};
	static const char *const imc_fields[] = {"delivery", NULL};
	const struct ceb_yaml_node *v[3], *sv[1];
	const struct ceb_channel_kind *ck;
	char p[512];
	size_t nerr = r->nerr;

	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
		return;
	for (int i = 0; i < 2; i++)
		if (!v[i])
			ceb_config_err(r, n, ceb_config_path_key(p, sizeof(p), path, fields[i]),
			               "required field missing");
	if (r->nerr != nerr)
		return;
	ceb_config_get_str(r, v[0], ceb_config_path_key(p, sizeof(p), path, "apiVersion"),
	                   &c->backing_api);
	ceb_config_get_str(r, v[1], ceb_config_path_key(p, sizeof(p), path, "kind"),
	                   &c->backing_kind);
	c->template_at = ceb_config_loc(r, v[1]);
	if (!c->backing_kind)
		return;
	ceb_config_path_key(p, sizeof(p), path, "spec");
	if (!strcmp(c->backing_kind, "InMemoryChannel")) {
		if (v[2] && ceb_config_get_fields(r, v[2], p, imc_fields, sv, NULL) && sv[0])
			ceb_config_parse_delivery(r, sv[0],
			                          ceb_config_path_key(p, sizeof(p), p, "delivery"),
			                          true, &c->delivery);
		return;
	}
	/* a backend's kind reads its own fields; an unknown kind is reported once every file is
	 * loaded (it might come from a build with more backends) */
	if ((ck = ceb_config_channel_kind(c->backing_kind)))
		read_kind_spec(r, v[2], p, ck, c, true);
}

/* InMemoryChannel: spec {subscribers, delivery}. */
static void parse_imc(struct ceb_config_res *r, struct ceb_config_meta *md,
                      const struct ceb_yaml_node *root, const struct ceb_yaml_node *const *vals)
{
	static const char *const fields[] = {"subscribers", "delivery", NULL};
	struct ceb_loc loc = ceb_config_loc(r, root);
	const struct ceb_yaml_node *v[2];
	struct ceb_msg_channel *c;

	if (!md->name)
		return;
	c = channel_new(r, "InMemoryChannel", md->ns, md->name, NULL, NULL, &loc);
	if (!c)
		return;
	c->backing_api = ceb_config_strdup(r, MESSAGING_V1);
	c->backing_kind = ceb_config_strdup(r, "InMemoryChannel");
	ceb_config_add_entry(r, "InMemoryChannel", c->ns, c->name, md, c);
	if (!vals[0] || !ceb_config_get_fields(r, vals[0], "spec", fields, v, NULL))
		return;
	if (v[0])
		ceb_config_err(r, v[0], "spec.subscribers", SUBSCRIBERS_SET);
	if (v[1])
		ceb_config_parse_delivery(r, v[1], "spec.delivery", true, &c->delivery);
}

/* Channel: spec {channelTemplate, subscribers, delivery}; no template: Knative's default. */
static void parse_channel(struct ceb_config_res *r, struct ceb_config_meta *md,
                          const struct ceb_yaml_node *root, const struct ceb_yaml_node *const *vals)
{
	static const char *const fields[] = {"channelTemplate", "subscribers", "delivery", NULL};
	struct ceb_loc loc = ceb_config_loc(r, root);
	const struct ceb_yaml_node *v[3];
	struct ceb_msg_channel *c;

	if (!md->name)
		return;
	c = channel_new(r, "Channel", md->ns, md->name, NULL, NULL, &loc);
	if (!c)
		return;
	ceb_config_add_entry(r, "Channel", c->ns, c->name, md, c);
	if (!vals[0] || !ceb_config_get_fields(r, vals[0], "spec", fields, v, NULL))
		return;
	if (v[0])
		parse_template(r, v[0], "spec.channelTemplate", c);
	if (v[1])
		ceb_config_err(r, v[1], "spec.subscribers", SUBSCRIBERS_SET);
	if (v[2]) {
		ceb_config_delivery_free(&c->delivery);
		ceb_config_parse_delivery(r, v[2], "spec.delivery", true, &c->delivery);
	}
}

/* Subscription: spec {channel, subscriber, reply, delivery}. */
static void parse_subscription(struct ceb_config_res *r, struct ceb_config_meta *md,
                               const struct ceb_yaml_node *root,
                               const struct ceb_yaml_node *const *vals)
{
	static const char *const fields[] = {"channel", "subscriber", "reply", "delivery", NULL};
	static const char *const ch_fields[] = {"apiVersion", "kind", "name", "namespace", NULL};
	struct ceb_loc loc = ceb_config_loc(r, root);
	const struct ceb_yaml_node *v[4], *cv[4];
	struct ceb_subscription_cfg *s;
	char p[512];
	size_t nerr;

	if (!md->name)
		return;
	s = subscription_new(r, md->ns, md->name, NULL, &loc);
	if (!s)
		return;
	ceb_config_add_entry(r, "Subscription", s->ns, s->name, md, s);
	if (!vals[0]) {
		ceb_config_err(r, root, "spec", "required field missing");
		return;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", fields, v, NULL))
		return;
	if (!v[0]) {
		ceb_config_err(r, vals[0], "spec.channel", "required field missing");
	} else if (ceb_config_get_fields(r, v[0], "spec.channel", ch_fields, cv, NULL)) {
		nerr = r->nerr;
		for (int i = 0; i < 3; i++)
			if (!cv[i])
				ceb_config_err(r, v[0],
				               ceb_config_path_key(p, sizeof(p), "spec.channel",
				                                   ch_fields[i]),
				               "required field missing");
		if (cv[3] && ceb_yaml_str(cv[3]) && strcmp(ceb_yaml_str(cv[3]), s->ns))
			ceb_config_err(r, cv[3], "spec.channel.namespace",
			               "a channel of another namespace is not supported (Knative "
			               "allows it only with its cross-namespace feature)");
		if (r->nerr == nerr) {
			ceb_config_get_str(r, cv[0], "spec.channel.apiVersion", &s->channel_api);
			ceb_config_get_str(r, cv[1], "spec.channel.kind", &s->channel_kind);
			ceb_config_get_str(r, cv[2], "spec.channel.name", &s->channel_name);
			s->channel_at = ceb_config_loc(r, v[0]);
		}
	}
	if (!v[1])
		ceb_config_err(r, vals[0], "spec.subscriber", "required field missing");
	else
		ceb_config_parse_dest(r, v[1], "spec.subscriber", &s->subscriber);
	if (v[2]) {
		s->has_reply = true;
		ceb_config_parse_dest(r, v[2], "spec.reply", &s->reply);
	}
	if (v[3])
		ceb_config_parse_delivery(r, v[3], "spec.delivery", true, &s->delivery);
}

/* Knative's names for a flow's parts: <name>-kn-sequence-<i>, <name>-kn-parallel[-<i>],
 * <name>-kn-parallel-filter-<i>. */
static void part_name(char *buf, size_t sz, const char *name, const char *what, long i)
{
	if (i < 0)
		snprintf(buf, sz, "%s-kn-%s", name, what);
	else
		snprintf(buf, sz, "%s-kn-%s-%ld", name, what, i);
}

/* A flow's channel: its template's kind (or the default, once every file is loaded). */
static struct ceb_msg_channel *flow_channel(struct ceb_config_res *r, const char *ns,
                                            const char *name, const char *address,
                                            const char *owner, const struct ceb_loc *loc,
                                            struct ceb_msg_channel *tpl)
{
	struct ceb_msg_channel *c = channel_new(r, NULL, ns, name, address, owner, loc);

	if (!c)
		return NULL;
	c->template_at = tpl->template_at;
	/* the template's settings, shared by the flow's channels: its first channel frees them */
	c->backend_spec = tpl->backend_spec;
	c->backend_spec_free = tpl->backend_spec_free;
	tpl->backend_spec_free = NULL;
	if ((tpl->backing_api && !(c->backing_api = ceb_config_strdup(r, tpl->backing_api))) ||
	    (tpl->backing_kind && !(c->backing_kind = ceb_config_strdup(r, tpl->backing_kind))) ||
	    !ceb_config_delivery_copy(&c->delivery, &tpl->delivery))
		ceb_config_oom(r);
	return c;
}

/* What every flow has: steps or branches (a non-empty list), a channelTemplate, a reply. */
struct flow {
	const struct ceb_yaml_node *list, *tpl, *reply;
	struct ceb_msg_channel t; /* the template, read once (only its backing and delivery) */
	struct ceb_dest reply_dest;
	bool has_reply;
	char owner[300]; /* "Sequence ns/name" */
};

static bool flow_begin(struct ceb_config_res *r, struct ceb_config_meta *md,
                       const struct ceb_yaml_node *root, const struct ceb_yaml_node *spec,
                       const char *kind, const char *list, struct flow *f)
{
	const char *fields[] = {list, "channelTemplate", "reply", NULL};
	const struct ceb_yaml_node *v[3];
	char p[64];

	memset(f, 0, sizeof(*f));
	ceb_config_delivery_init(&f->t.delivery);
	snprintf(f->owner, sizeof(f->owner), "%s %s/%s", kind, md->ns, md->name);
	if (!spec) {
		ceb_config_err(r, root, "spec", "required field missing");
		return false;
	}
	if (!ceb_config_get_fields(r, spec, "spec", fields, v, NULL))
		return false;
	snprintf(p, sizeof(p), "spec.%s", list);
	if (!v[0]) {
		ceb_config_err(r, spec, p, "required field missing");
		return false;
	}
	if (!ceb_config_want_seq(r, v[0], p))
		return false;
	if (!ceb_yaml_size(v[0])) {
		ceb_config_err(r, v[0], p, "needs at least one entry");
		return false;
	}
	f->list = v[0];
	if (v[1])
		parse_template(r, v[1], "spec.channelTemplate", &f->t);
	if (v[2]) {
		f->has_reply = true;
		ceb_config_parse_dest(r, v[2], "spec.reply", &f->reply_dest);
	}
	return true;
}

static void flow_end(struct flow *f)
{
	if (f->t.backend_spec_free) /* no channel took them */
		f->t.backend_spec_free(f->t.backend_spec);
	free(f->t.backing_api);
	free(f->t.backing_kind);
	ceb_config_delivery_free(&f->t.delivery);
	if (f->has_reply)
		ceb_config_dest_free(&f->reply_dest);
}

/* Sequence: step i is channel <seq>-kn-sequence-<i> and a Subscription of the same name to
 * steps[i], whose reply goes to channel i+1, the last one's to spec.reply. The Sequence's address is
 * its first channel. */
static void parse_sequence(struct ceb_config_res *r, struct ceb_config_meta *md,
                           const struct ceb_yaml_node *root,
                           const struct ceb_yaml_node *const *vals)
{
	struct ceb_loc loc = ceb_config_loc(r, root);
	struct ceb_msg_channel **ch = NULL;
	struct flow f;
	char name[512], p[512];
	size_t n;

	if (!md->name)
		return;
	if (!flow_begin(r, md, root, vals[0], "Sequence", "steps", &f))
		goto out;
	n = ceb_yaml_size(f.list);
	if (!(ch = calloc(n, sizeof(*ch)))) {
		ceb_config_oom(r);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		part_name(name, sizeof(name), md->name, "sequence", (long)i);
		if (!(ch[i] = flow_channel(r, md->ns, name, i ? NULL : md->name, f.owner, &loc,
		                           &f.t)))
			goto out;
		/* the Sequence is its first channel's address (the entry's names live as long) */
		if (!i)
			ceb_config_add_entry(r, "Sequence", ch[0]->ns, ch[0]->address, md, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		const struct ceb_yaml_node *step = ceb_yaml_seq_item(f.list, i), *dl = NULL;
		struct ceb_subscription_cfg *s;

		part_name(name, sizeof(name), md->name, "sequence", (long)i);
		if (!(s = subscription_new(r, md->ns, name, f.owner, &loc)))
			goto out;
		s->channel = ch[i];
		ceb_config_path_idx(p, sizeof(p), "spec.steps", i);
		ceb_config_parse_step(r, step, p, &s->subscriber, &dl);
		if (dl)
			ceb_config_parse_delivery(r, dl,
			                          ceb_config_path_key(p, sizeof(p), p, "delivery"),
			                          true, &s->delivery);
		if (i + 1 < n) {
			s->has_reply = true;
			if (!internal_dest(r, &s->reply, ch[i + 1]))
				ceb_config_oom(r);
		} else if (f.has_reply) {
			s->has_reply = true;
			if (!ceb_config_dest_copy(&s->reply, &f.reply_dest))
				ceb_config_oom(r);
		}
	}
out:
	free(ch);
	flow_end(&f);
}

/* Parallel: an ingress channel <p>-kn-parallel (the Parallel's address); per branch i a channel
 * <p>-kn-parallel-<i>, a filter Subscription <p>-kn-parallel-filter-<i> on the ingress channel (to
 * the filter, replying into the branch channel; without a filter, straight to the branch channel;
 * never a delivery) and a Subscription <p>-kn-parallel-<i> on the branch channel to the subscriber
 * (its delivery, its reply, else spec.reply). */
static void parse_parallel(struct ceb_config_res *r, struct ceb_config_meta *md,
                           const struct ceb_yaml_node *root,
                           const struct ceb_yaml_node *const *vals)
{
	static const char *const fields[] = {"filter", "subscriber", "reply", "delivery", NULL};
	struct ceb_loc loc = ceb_config_loc(r, root);
	struct ceb_msg_channel *in, *bch;
	struct flow f;
	char name[512], p[512], fp[512];

	if (!md->name)
		return;
	if (!flow_begin(r, md, root, vals[0], "Parallel", "branches", &f))
		goto out;
	part_name(name, sizeof(name), md->name, "parallel", -1);
	if (!(in = flow_channel(r, md->ns, name, md->name, f.owner, &loc, &f.t)))
		goto out;
	ceb_config_add_entry(r, "Parallel", in->ns, in->address, md, NULL);
	for (size_t i = 0; i < ceb_yaml_size(f.list); i++) {
		const struct ceb_yaml_node *br = ceb_yaml_seq_item(f.list, i), *v[4];
		struct ceb_subscription_cfg *fs, *bs;

		ceb_config_path_idx(p, sizeof(p), "spec.branches", i);
		part_name(name, sizeof(name), md->name, "parallel", (long)i);
		if (!(bch = flow_channel(r, md->ns, name, NULL, f.owner, &loc, &f.t)))
			goto out;
		part_name(name, sizeof(name), md->name, "parallel-filter", (long)i);
		if (!(fs = subscription_new(r, md->ns, name, f.owner, &loc)))
			goto out;
		fs->channel = in;
		part_name(name, sizeof(name), md->name, "parallel", (long)i);
		if (!(bs = subscription_new(r, md->ns, name, f.owner, &loc)))
			goto out;
		bs->channel = bch;
		if (!ceb_config_get_fields(r, br, p, fields, v, NULL))
			continue;
		if (v[0]) {
			ceb_config_parse_dest(r, v[0],
			                      ceb_config_path_key(fp, sizeof(fp), p, "filter"),
			                      &fs->subscriber);
			fs->has_reply = true;
			if (!internal_dest(r, &fs->reply, bch))
				ceb_config_oom(r);
		} else if (!internal_dest(r, &fs->subscriber, bch)) {
			ceb_config_oom(r);
		}
		if (!v[1])
			ceb_config_err(r, br, ceb_config_path_key(fp, sizeof(fp), p, "subscriber"),
			               "required field missing");
		else
			ceb_config_parse_dest(r, v[1],
			                      ceb_config_path_key(fp, sizeof(fp), p, "subscriber"),
			                      &bs->subscriber);
		if (v[2]) {
			bs->has_reply = true;
			ceb_config_parse_dest(r, v[2],
			                      ceb_config_path_key(fp, sizeof(fp), p, "reply"),
			                      &bs->reply);
		} else if (f.has_reply) {
			bs->has_reply = true;
			if (!ceb_config_dest_copy(&bs->reply, &f.reply_dest))
				ceb_config_oom(r);
		}
		if (v[3])
			ceb_config_parse_delivery(
			        r, v[3], ceb_config_path_key(fp, sizeof(fp), p, "delivery"), true,
			        &bs->delivery);
	}
out:
	flow_end(&f);
}

/* ------------------------------------------------------------------------------------------------
 * Once every file is loaded: what backs each channel, each Subscription's channel and delivery.
 */

static bool is_msg_channel(const struct ceb_endpoint_cfg *ec)
{
	return ec->own_free == msg_channel_free;
}

static void res_for(struct ceb_config_loader *ld, struct ceb_config_res *r, const char *kind,
                    const char *ns, const char *name, const struct ceb_loc *loc)
{
	*r = (struct ceb_config_res){.ld = ld, .file = loc->file, .ns = ns};
	snprintf(r->who, sizeof(r->who), "%s %s/%s", kind, ns, name);
}

static void resolve_channel(struct ceb_config_loader *ld, struct ceb_msg_channel *c,
                            struct ceb_default_channels **defaults, struct ceb_loc *reported)
{
	struct ceb_config_res r;
	const struct ceb_loc *at = c->template_at.line ? &c->template_at : &c->ep.loc;
	const struct ceb_channel_kind *ck;
	const char *backend;

	if (c->owner) {
		r = (struct ceb_config_res){.ld = ld, .file = c->ep.loc.file, .ns = c->ns};
		snprintf(r.who, sizeof(r.who), "%s", c->owner);
	} else {
		res_for(ld, &r, c->kind, c->ns, c->name, &c->ep.loc);
	}
	if (!c->backing_kind) {
		const char *api, *kind;
		const struct ceb_loc *dat;

		if (!*defaults)
			*defaults = ceb_config_default_channels_read(&r, ld->cfg);
		if (!*defaults)
			return;
		ceb_config_default_channel(*defaults, c->ns, &api, &kind, &dat);
		c->backing_api = ceb_config_strdup(&r, api);
		c->backing_kind = ceb_config_strdup(&r, kind);
		if (!c->backing_api || !c->backing_kind)
			return;
		if (dat)
			at = dat;
	}
	backend = c->backing_api && (!strncmp(c->backing_api, MESSAGING, strlen(MESSAGING)) ||
	     !strncmp(c->backing_api, MESSAGING_CEB, strlen(MESSAGING_CEB)))
	                  ? ceb_channel_for_kind(c->backing_kind)
	                  : NULL;
	if (!backend) {
		char q[80], names[256];

		/* a flow's channels share one template: one error for it */
		if (at->file == reported->file && at->line == reported->line &&
		    at->col == reported->col)
			return;
		*reported = *at;
		ceb_config_err_at(&r, at,
		                  c->template_at.line ? "spec.channelTemplate.kind" : "spec",
		                  "channel kind \"%s\" (%s) is not one this build can back "
		                  "(InMemoryChannel, or %s, with its "
		                  "backend)",
		                  ceb_config_quoted(q, sizeof(q), c->backing_kind),
		                  c->backing_api ? c->backing_api : "?",
		                  ceb_config_channel_kind_names(names, sizeof(names)));
		return;
	}
	c->ep.backend = backend;
	c->ep.channel_kind = c->backing_kind;
	if (!c->kind) { /* a flow's channel: of its template's kind */
		c->kind = ceb_config_strdup(&r, c->backing_kind);
		c->ep.kind = c->kind;
	}
	ck = ceb_config_channel_kind(c->backing_kind);
	if (ck && ck->resolve)
		ck->resolve(&r, c, ld->cfg);
}

static void resolve_subscription(struct ceb_config_loader *ld, struct ceb_subscription_cfg *s)
{
	struct ceb_config_res r;

	if (!s->channel) {
		if (!s->channel_kind || !s->channel_name)
			return; /* reported */
		res_for(ld, &r, "Subscription", s->ns, s->name, &s->loc);
		for (const struct ceb_endpoint_cfg *ec = ld->cfg->endpoints; ec; ec = ec->next) {
			const struct ceb_msg_channel *c = ec->own;

			if (!is_msg_channel(ec) || c->owner || strcmp(c->ns, s->ns) ||
			    strcmp(c->name, s->channel_name))
				continue;
			if (!strcmp(c->kind, s->channel_kind) ||
			    (c->backing_kind && !strcmp(c->backing_kind, s->channel_kind)))
				s->channel = c;
		}
		if (!s->channel) {
			ceb_config_err_at(&r, &s->channel_at, "spec.channel", "%s %s/%s not found",
			                  s->channel_kind, s->ns, s->channel_name);
			return;
		}
	}
	/* Knative's deliverySpec(): the Subscription's own delivery as a whole, else the channel's */
	if (!s->delivery.set && s->channel->delivery.set) {
		ceb_config_delivery_free(&s->delivery);
		if (!ceb_config_delivery_copy(&s->delivery, &s->channel->delivery))
			ld->enomem = true;
	}
}

void ceb_ld_resolve_flows(struct ceb_config_loader *ld)
{
	struct ceb_default_channels *defaults = NULL;
	struct ceb_loc reported = {0};

	for (struct ceb_endpoint_cfg *ec = ld->cfg->endpoints; ec && !ld->enomem; ec = ec->next)
		if (is_msg_channel(ec))
			resolve_channel(ld, (struct ceb_msg_channel *)ec->own, &defaults,
			                &reported);
	for (struct ceb_subscription_cfg *s = ld->cfg->subscriptions; s && !ld->enomem; s = s->next)
		resolve_subscription(ld, s);
	ceb_config_default_channels_free(defaults);
}

struct addr {
	const char *kind, *ns, *name, *addr;
	const char *who; /* a flow's channel: its owner */
	struct ceb_loc loc;
	size_t order;
};

static int cmp_addr(const void *a, const void *b)
{
	const struct addr *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);

	if (!c)
		c = strcmp(x->addr, y->addr);
	if (!c)
		c = (strcmp(y->kind, "Broker") == 0) - (strcmp(x->kind, "Broker") == 0);
	if (!c)
		c = (x->order > y->order) - (x->order < y->order);
	return c;
}

void ceb_ld_check_addresses(struct ceb_config_loader *ld)
{
	size_t n = 0, cap = ld->nentries;
	struct addr *v;

	for (const struct ceb_endpoint_cfg *ec = ld->cfg->endpoints; ec; ec = ec->next)
		cap++;
	if (!cap)
		return;
	if (!(v = calloc(cap, sizeof(*v)))) {
		ld->enomem = true;
		return;
	}
	for (size_t i = 0; i < ld->nentries; i++) {
		const struct entry *e = &ld->entries[i];

		if (ceb_config_addressable(e->kind, strlen(e->kind), NULL))
			v[n++] = (struct addr){e->kind, e->ns, e->name, e->name, NULL, e->loc, i};
	}
	/* a flow's other channels have addresses of their own */
	for (const struct ceb_endpoint_cfg *ec = ld->cfg->endpoints; ec; ec = ec->next) {
		const struct ceb_msg_channel *c = ec->own;

		if (is_msg_channel(ec) && c->owner && !c->address && c->kind) {
			size_t at = ld->nentries + n; /* read before n++: the two are unsequenced */
			v[n++] = (struct addr){c->kind,  c->ns,   c->name, c->name,
			                       c->owner, ec->loc, at};
		}
	}
	qsort(v, n, sizeof(*v), cmp_addr);
	for (size_t i = 1; i < n; i++) {
		const struct addr *a = &v[i], *first;
		size_t j = i;

		while (j && !strcmp(v[j - 1].ns, a->ns) && !strcmp(v[j - 1].addr, a->addr))
			j--;
		if (j == i)
			continue;
		first = &v[j];
		if (!a->who && !first->who && !strcmp(a->kind, first->kind))
			continue; /* a duplicate, reported as such */
		char of[640], whose[640];

		if (first->who)
			snprintf(of, sizeof(of), "channel %s of %s", first->name, first->who);
		else
			snprintf(of, sizeof(of), "%s %s/%s", first->kind, first->ns, first->name);
		if (a->who)
			snprintf(whose, sizeof(whose), "%s: its channel %s", a->who, a->name);
		else
			snprintf(whose, sizeof(whose), "%s %s/%s: metadata.name", a->kind, a->ns,
			         a->name);
		ceb_ld_file_err(ld, a->loc.file, a->loc.line, a->loc.col,
		                "%s: /%s/%s is already the address of %s", whose, a->ns, a->addr,
		                of);
	}
	free(v);
}

static const char *const messaging_v1[] = {MESSAGING_V1, NULL};
static const char *const flows_v1[] = {FLOWS_V1, NULL};
static const char *const spec_only[] = {"spec", NULL};

const struct ceb_kind ceb_kind_in_memory_channel = {messaging_v1, "InMemoryChannel", spec_only,
                                                    parse_imc, true};
const struct ceb_kind ceb_kind_channel = {messaging_v1, "Channel", spec_only, parse_channel, true};
const struct ceb_kind ceb_kind_subscription = {messaging_v1, "Subscription", spec_only,
                                               parse_subscription, false};
const struct ceb_kind ceb_kind_sequence = {flows_v1, "Sequence", spec_only, parse_sequence, true};
const struct ceb_kind ceb_kind_parallel = {flows_v1, "Parallel", spec_only, parse_parallel, true};
