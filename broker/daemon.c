/* The daemon's runtime: Brokers with their channels, Triggers with their subscriptions, the
 * dispatchers and the ingress, built from a loaded configuration; start-up, drain and shutdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/daemon.h"
#include "broker/delivery/dispatcher.h"
#include "broker/error.h"
#include "broker/ingress/ingress.h"
#include "broker/log.h"
#include "broker/ratelimit.h"
#include "broker/runtime.h"
#include "sources/source.h"

/* 128 random bits as hex: proves a request comes from this daemon (a delivery to its own ingress). */
static int make_token(char *out, size_t sz)
{
	unsigned char r[16];

	if (sz < 2 * sizeof(r) + 1 || getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* A destination to a URL: a uri as given, a ref to a Broker of this daemon as its ingress URL. */
static int resolve_dest(struct ceb_daemon *dmn, const struct ceb_dest *d, struct ceb_target *t)
{
	struct ceb_buf b = CEB_BUF_INIT;
	const char *host = dmn->set.listen_host;

	if (d->uri) {
		t->url = strdup(d->uri);
		if (t->url && d->ca_certs && !strncasecmp(d->uri, "https:", 6))
			return ceb_delivery_ca_blob(d->ca_certs, &t->ca_blob, &t->ca_len);
		return t->url ? 0 : CEB_ENOMEM;
	}
	t->internal = true;
	/* A wildcard listen address is reached on loopback (an IPv6 wildcard binds IPv6 only). */
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	if (dmn->internal_port) /* TLS: the loopback listener that takes our own deliveries */
		ceb_buf_printf(&b, "http://127.0.0.1:%d/%s/%s", dmn->internal_port, d->ref_ns,
		               d->ref_name);
	else if (strchr(host, ':'))
		ceb_buf_printf(&b, "http://[%s]:%d/%s/%s", host, dmn->port, d->ref_ns, d->ref_name);
	else
		ceb_buf_printf(&b, "http://%s:%d/%s/%s", host, dmn->port, d->ref_ns, d->ref_name);
	t->url = ceb_buf_steal(&b, NULL);
	return t->url ? 0 : CEB_ENOMEM;
}

/* A new endpoint at the end of the daemon's list (kind: "broker", "kafkasink", "kafkasource"...);
 * a source has no path. NULL when out of memory. */
static struct ceb_endpoint *endpoint_new(struct ceb_daemon *dmn, struct ceb_endpoint ***tail,
                                         const char *kind, bool has_path, const char *ns,
                                         const char *name)
{
	struct ceb_endpoint *brk = calloc(1, sizeof(*brk));

	if (!brk)
		return NULL;
	**tail = brk;
	*tail = &brk->next;
	brk->kind = kind;
	brk->ns = ns;
	brk->name = name;
	brk->dmn = dmn;
	if (has_path)
		snprintf(brk->path, sizeof(brk->path), "/%s/%s", ns, name);
	if (kind) /* else the caller names it */
		snprintf(brk->label, sizeof(brk->label), "%s %s/%s", kind, ns, name);
	return brk;
}

/* Create an endpoint's channel of backend chname; an error names the resource (what, at loc). */
static int endpoint_channel(struct ceb_endpoint *brk, const char *chname,
                            const struct ceb_channel_cfg *cc, const struct ceb_loc *loc,
                            const char *what, const char *cls, char *errbuf, size_t errlen)
{
	const struct channel_ops *ops = chname ? ceb_channel_ops_find(chname) : NULL;

	if (!ops) {
		if (cls)
			snprintf(errbuf, errlen,
			         "%s:%d:%d: %s %s/%s: class %s needs the %s channel, which this "
			         "build does not include",
			         loc->file, loc->line, loc->col, what, brk->ns, brk->name, cls,
			         chname ? chname : "?");
		else
			snprintf(errbuf, errlen,
			         "%s:%d:%d: %s %s/%s: needs the %s channel, which this build does "
			         "not include",
			         loc->file, loc->line, loc->col, what, brk->ns, brk->name, chname);
		return CEB_ENOTCOMPILED;
	}
	return ceb_channel_create(&brk->ch, ops, cc, errbuf, errlen);
}

/* A source without a channel of its own publishes into the daemon's memory channel for it. */
static void emit_done(void *arg, int status)
{
	*(int *)arg = status;
}

static int source_emit(void *arg, struct ceb_event *ev)
{
	struct ceb_endpoint *brk = arg;
	int status = CEB_EUNAVAIL;

	/* The in-process backend completes before publish returns. */
	brk->ch.ops->publish(brk->ch.ctx, ev, emit_done, &status);
	return status;
}

/* The delivery of a source whose kind gives none: one attempt, no dead-letter sink. */
static const struct ceb_delivery no_delivery = {.retry_after_max_ms = -1};

/* A source and the endpoint its channel hangs on; its one delivery is added by the caller. */
static struct ceb_endpoint *find_path(struct ceb_endpoint *list, const char *path)
{
	for (struct ceb_endpoint *brk = list; brk; brk = brk->next)
		if (brk->path[0] && !strcmp(brk->path, path))
			return brk;
	return NULL;
}

static int source_new(struct ceb_daemon *dmn, struct ceb_endpoint *built,
                      struct ceb_endpoint ***tail, const struct ceb_source_cfg *sc,
                      struct ceb_endpoint **out, char *errbuf, size_t errlen)
{
	const struct source_ops *ops = ceb_source_ops_find(sc->kind);
	struct ceb_endpoint *brk;
	struct ceb_channel *own;
	int rc;

	if (!ops) {
		snprintf(errbuf, errlen,
		         "%s:%d:%d: %s %s/%s: this build does not include the %s source",
		         sc->loc.file, sc->loc.line, sc->loc.col, sc->kind, sc->ns, sc->name,
		         sc->kind);
		return CEB_ENOTCOMPILED;
	}
	brk = endpoint_new(dmn, tail, ops->label, ops->admit && ops->to_event, sc->ns, sc->name);
	if (!brk)
		goto nomem;
	brk->src = ops;
	brk->src_env = (struct ceb_source_env){
	        .label = brk->label,
	        .max_events = dmn->set.channel_max_events,
	        .max_bytes = dmn->set.channel_max_bytes,
	        .emit = source_emit,
	        .emit_arg = brk,
	};
	rc = ops->create(sc, &brk->src_env, &brk->src_ctx, errbuf, errlen);
	if (rc < 0) {
		brk->src = NULL;
		return rc;
	}
	own = ops->channel ? ops->channel(brk->src_ctx) : NULL;
	if (own) {
		brk->ch = *own;
		brk->src_channel = true;
	} else {
		struct ceb_channel_cfg cc = {
		        .kind = sc->kind,
		        .ns = sc->ns,
		        .name = sc->name,
		        .max_events = dmn->set.channel_max_events,
		        .max_bytes = dmn->set.channel_max_bytes,
		};
		rc = ceb_channel_create(&brk->ch, ceb_channel_ops_default(), &cc, errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	/* A source that takes requests stores their events straight into its sink when that is an
	 * endpoint of this daemon which is no source (a Broker, created before every source): the
	 * 202 then means stored where the sink keeps them (durably on a durable Broker). */
	brk->store = brk;
	if (brk->path[0] && sc->sink && !sc->sink->uri && sc->sink->ref_ns && sc->sink->ref_name) {
		char path[sizeof(brk->path)];
		struct ceb_endpoint *to;

		snprintf(path, sizeof(path), "/%s/%s", sc->sink->ref_ns, sc->sink->ref_name);
		/* one built with it, else one that a reload keeps running */
		to = find_path(built, path);
		if (!to)
			to = find_path(dmn->brokers, path);
		if (to && !to->src)
			brk->store = to;
	}
	*out = brk;
	return 0;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	return CEB_ENOMEM;
}

/* Open a delivery's subscription on its channel. */
static int trigger_subscribe_how(struct ceb_subscription *trg, const struct ceb_settings *set,
                                 bool live, char *errbuf, size_t errlen)
{
	const struct ceb_trigger_cfg *tc = trg->source ? NULL : trg->cfg;
	struct ceb_sub_cfg sc;
	int rc;

	/* A Trigger's parallelism annotation: that many deliveries in flight, 1 in order; a
	 * backend ordered by default (RabbitMQ) keeps FIFO where the Trigger says nothing. */
	if (tc && tc->parallelism)
		trg->ordered = trg->ordered || tc->parallelism == 1;
	else if (tc && ceb_channel_has(&trg->brk->ch, CEB_CHANNEL_ORDERED_DEFAULT))
		trg->ordered = true;
	sc = (struct ceb_sub_cfg){
	        .ns = trg->ns,
	        .name = trg->name,
	        .filter = trg->filter,
	        .max_inflight = tc && tc->parallelism ? (size_t)tc->parallelism
	                        : trg->max_inflight ? trg->max_inflight
	                                            : set->max_inflight,
	        .ordered = trg->ordered,
	        .on_msg = ceb_dispatcher_on_msg,
	        .arg = trg,
	};
	/* before: a live subscription may be handed messages at once */
	trg->prefiltered = !trg->filter || ceb_channel_has(&trg->brk->ch, CEB_CHANNEL_PREFILTERS);
	rc = (live ? trg->brk->ch.ops->subscribe_live
	           : trg->brk->ch.ops->subscribe)(trg->brk->ch.ctx, &sc, &trg->sub);
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s: cannot subscribe: %s", trg->label, ceb_strerror(rc));
		return rc;
	}
	return 0;
}

static int trigger_subscribe(struct ceb_subscription *trg, const struct ceb_settings *set,
                             char *errbuf, size_t errlen)
{
	return trigger_subscribe_how(trg, set, false, errbuf, errlen);
}

int ceb_rt_subscribe_live(struct ceb_daemon *dmn, struct ceb_subscription *trg, char *errbuf,
                          size_t errlen)
{
	return trigger_subscribe_how(trg, &dmn->set, true, errbuf, errlen);
}

/* A Broker's channel: the backend the loader chose (the class's, or its channel template's). */
static const char *broker_channel_name(const struct ceb_broker_cfg *bc)
{
	return bc->channel ? bc->channel : ceb_channel_for_class(bc->broker_class);
}

static void broker_channel_cfg(const struct ceb_settings *set, const struct ceb_broker_cfg *bc,
                               struct ceb_channel_cfg *cc)
{
	*cc = (struct ceb_channel_cfg){
	        .kind = "Broker",
	        .ns = bc->ns,
	        .name = bc->name,
	        .spec = bc,
	        .max_events = set->channel_max_events,
	        .max_bytes = set->channel_max_bytes,
	        .state_dir = set->state_dir,
	};
	if (bc->channel_res) { /* a channel of a backend's kind (KafkaChannel) backs it */
		cc->kind = bc->channel_res->backing_kind;
		cc->name = bc->channel_res->name;
		cc->spec = bc->channel_res;
	}
}

size_t ceb_daemon_check(const struct ceb_settings *set, const struct ceb_config *cfg,
                        struct ceb_buf *errs)
{
	struct ceb_channel_cfg cc;
	char err[1024];
	size_t n = 0;

	for (const struct ceb_broker_cfg *bc = cfg->brokers; bc; bc = bc->next) {
		const char *chname = broker_channel_name(bc);
		const struct channel_ops *ops = chname ? ceb_channel_ops_find(chname) : NULL;

		if (!ops || !ops->check)
			continue;
		broker_channel_cfg(set, bc, &cc);
		err[0] = '\0';
		if (ops->check(&cc, err, sizeof(err)) < 0) {
			ceb_buf_printf(errs, "%s\n", err);
			n++;
		}
	}
	/* endpoints and sources of a backend's kinds (a KafkaSink's, a KafkaSource's Secrets) */
	for (const struct ceb_endpoint_cfg *ec = cfg->endpoints; ec; ec = ec->next) {
		const struct channel_ops *ops =
		        ec->backend ? ceb_channel_ops_find(ec->backend) : NULL;

		cc = (struct ceb_channel_cfg){.kind = ec->channel_kind ? ec->channel_kind
		                                                       : ec->kind,
		                              .ns = ec->ns,
		                              .name = ec->name,
		                              .spec = ec->own};
		err[0] = '\0';
		if (ops && ops->check && ops->check(&cc, err, sizeof(err)) < 0) {
			ceb_buf_printf(errs, "%s\n", err);
			n++;
		}
	}
	for (const struct ceb_source_cfg *sc = cfg->sources; sc; sc = sc->next) {
		const struct source_ops *sops = ceb_source_ops_find(sc->kind);

		err[0] = '\0';
		if (sops && sops->check && sops->check(sc, err, sizeof(err)) < 0) {
			ceb_buf_printf(errs, "%s\n", err);
			n++;
		}
	}
	return n;
}

static struct ceb_endpoint *broker_of(struct ceb_endpoint *list, const struct ceb_broker_cfg *bc)
{
	for (struct ceb_endpoint *brk = list; brk; brk = brk->next)
		if (brk->cfg == bc)
			return brk;
	return NULL;
}

struct ceb_gen *ceb_gen_new(struct ceb_config *cfg)
{
	struct ceb_gen *gen = calloc(1, sizeof(*gen));

	if (gen) {
		gen->cfg = cfg;
		gen->refs = 1;
	}
	return gen;
}

void ceb_gen_unref(struct ceb_gen *gen)
{
	if (gen && --gen->refs == 0) {
		ceb_config_free(gen->cfg);
		free(gen);
	}
}

/* A new subscription at the end of *tail, given its share of the dispatchers. */
static struct ceb_subscription *subscription_new(struct ceb_daemon *dmn,
                                                 struct ceb_subscription ***tail)
{
	struct ceb_subscription *trg = calloc(1, sizeof(*trg));

	if (!trg)
		return NULL;
	**tail = trg;
	*tail = &trg->next;
	trg->dsp = dmn->dsp[dmn->nsubs_made++ % dmn->ndsp];
	if (ceb_dispatcher_attach(dmn, trg) < 0)
		return NULL;
	return trg;
}

struct ceb_subscription *ceb_rt_trigger_new(struct ceb_daemon *dmn, const struct ceb_config *cfg,
                                            const struct ceb_trigger_cfg *tc,
                                            struct ceb_endpoint *brk,
                                            struct ceb_subscription ***tail)
{
	struct ceb_subscription *trg = subscription_new(dmn, tail);

	if (!trg)
		return NULL;
	trg->cfg = tc;
	trg->ns = tc->ns;
	trg->name = tc->name;
	trg->filter = tc->filter;
	trg->delivery = &tc->delivery;
	trg->dest = &tc->subscriber;
	trg->ordered = tc->ordered;
	trg->brk = brk;
	trg->fp = ceb_rt_fp_trigger(cfg, tc);
	snprintf(trg->label, sizeof(trg->label), "trigger %s/%s", tc->ns, tc->name);
	return trg;
}

/* The end of a list, to append to. */
#define LIST_TAIL(head, tail)                  \
	do {                                   \
		tail = head;                   \
		while (*tail)                  \
			tail = &(*tail)->next; \
	} while (0)

int ceb_rt_build(struct ceb_daemon *dmn, struct ceb_gen *gen, ceb_rt_keep_f *keep, void *arg,
                 struct ceb_endpoint **eps, struct ceb_subscription **subs, char *errbuf,
                 size_t errlen)
{
	const struct ceb_config *cfg = gen->cfg;
	const struct ceb_settings *set = &dmn->set;
	struct ceb_endpoint **btail;
	struct ceb_subscription **ttail;
	char label[CEB_LABEL_MAX], path[512];
	int rc = CEB_ENOMEM;

	LIST_TAIL(eps, btail);
	LIST_TAIL(subs, ttail);
	for (const struct ceb_broker_cfg *bc = cfg->brokers; bc; bc = bc->next) {
		const char *chname = broker_channel_name(bc);
		uint64_t fp = ceb_rt_fp_broker(cfg, bc);
		struct ceb_channel_cfg cc;
		struct ceb_endpoint *brk;

		snprintf(label, sizeof(label), "broker %s/%s", bc->ns, bc->name);
		snprintf(path, sizeof(path), "/%s/%s", bc->ns, bc->name);
		if (keep && keep(arg, label, path, fp, ceb_rt_fp_broker_own(cfg, bc)))
			continue;
		brk = endpoint_new(dmn, &btail, "broker", true, bc->ns, bc->name);
		broker_channel_cfg(set, bc, &cc);
		if (!brk)
			goto nomem;
		brk->cfg = bc;
		brk->fp = fp;
		brk->own_fp = ceb_rt_fp_broker_own(cfg, bc);
		brk->gen = gen;
		gen->refs++;
		rc = endpoint_channel(brk, chname, &cc, &bc->loc, "Broker", bc->broker_class,
		                      errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	/* Endpoints of a backend's own kinds (a KafkaSink): the kind's backend reads its settings. */
	for (const struct ceb_endpoint_cfg *ec = cfg->endpoints; ec; ec = ec->next) {
		struct ceb_channel_cfg cc = {
		        .kind = ec->channel_kind ? ec->channel_kind : ec->kind,
		        .ns = ec->ns,
		        .name = ec->name,
		        .spec = ec->own,
		        .max_events = set->channel_max_events,
		        .max_bytes = set->channel_max_bytes,
		        .state_dir = set->state_dir,
		};
		uint64_t fp = ceb_rt_fp_endpoint(cfg, ec);
		char kind[64];
		struct ceb_endpoint *brk;
		size_t k = 0;

		for (; ec->kind[k] && k + 1 < sizeof(kind); k++)
			kind[k] = (char)(ec->kind[k] >= 'A' && ec->kind[k] <= 'Z' ? ec->kind[k] + 32
			                                                          : ec->kind[k]);
		kind[k] = '\0';
		snprintf(label, sizeof(label), "%s %s/%s", kind, ec->ns, ec->name);
		snprintf(path, sizeof(path), "/%s/%s", ec->ns,
		         ec->address ? ec->address : ec->name);
		if (keep && keep(arg, label, path, fp, 0))
			continue;
		if (!(brk = endpoint_new(dmn, &btail, NULL, true, ec->ns,
		                         ec->address ? ec->address : ec->name)))
			goto nomem;
		brk->name = ec->name;
		brk->ecfg = ec;
		brk->fp = fp;
		brk->gen = gen;
		gen->refs++;
		if (!(brk->kind_buf = strdup(kind)))
			goto nomem;
		brk->kind = brk->kind_buf;
		snprintf(brk->label, sizeof(brk->label), "%s", label);
		rc = endpoint_channel(brk, ec->backend, &cc, &ec->loc, ec->kind, NULL, errbuf,
		                      errlen);
		if (rc < 0)
			goto fail;
	}

	for (const struct ceb_trigger_cfg *tc = cfg->triggers; tc; tc = tc->next) {
		struct ceb_endpoint *brk = broker_of(*eps, tc->broker_cfg);
		struct ceb_subscription *trg;

		if (!brk && keep)
			continue; /* its Broker is kept, with its Triggers */
		if (!(trg = ceb_rt_trigger_new(dmn, cfg, tc, brk, &ttail)))
			goto nomem;
		rc = trigger_subscribe(trg, set, errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	/* Knative's Subscriptions (a user's, a Sequence's, a Parallel's): everything on their
	 * channel to the subscriber, replies on to their reply destination. */
	for (const struct ceb_subscription_cfg *sc = cfg->subscriptions; sc; sc = sc->next) {
		struct ceb_endpoint *on = NULL;
		struct ceb_subscription *trg;

		for (struct ceb_endpoint *brk = *eps; brk && !on; brk = brk->next)
			if (brk->ecfg == &sc->channel->ep)
				on = brk;
		if (!on && keep)
			continue; /* its channel is kept, with its Subscriptions */
		if (!(trg = subscription_new(dmn, &ttail)))
			goto nomem;
		trg->ns = sc->ns;
		trg->name = sc->name;
		trg->delivery = &sc->delivery;
		trg->dest = &sc->subscriber;
		trg->flow = true;
		trg->reply_dest = sc->has_reply ? &sc->reply : NULL;
		trg->brk = on;
		snprintf(trg->label, sizeof(trg->label), "subscription %s/%s", sc->ns, sc->name);
		if (!trg->brk) {
			snprintf(errbuf, errlen, "%s: its channel is missing", trg->label);
			rc = CEB_EINVAL;
			goto fail;
		}
		rc = trigger_subscribe(trg, set, errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	/* A source is a channel of its own with one delivery to its sink: no filter, and what the
	 * sink answers is not an event to publish. */
	for (const struct ceb_source_cfg *sc = cfg->sources; sc; sc = sc->next) {
		const struct source_ops *ops = ceb_source_ops_find(sc->kind);
		struct ceb_endpoint *brk = NULL;
		struct ceb_subscription *trg;
		uint64_t fp = ceb_rt_fp_source(cfg, sc, ops && ops->admit && ops->to_event);

		if (ops) {
			snprintf(label, sizeof(label), "%s %s/%s", ops->label, sc->ns, sc->name);
			snprintf(path, sizeof(path), "/%s/%s", sc->ns, sc->name);
			if (keep &&
			    keep(arg, label, ops->admit && ops->to_event ? path : "", fp, 0))
				continue;
		}
		rc = source_new(dmn, *eps, &btail, sc, &brk, errbuf, errlen);
		if (brk) {
			brk->fp = fp;
			brk->gen = gen;
			gen->refs++;
		}
		if (rc < 0)
			goto fail;
		if (!(trg = subscription_new(dmn, &ttail)))
			goto nomem;
		trg->ns = sc->ns;
		trg->name = sc->name;
		trg->delivery = sc->delivery ? sc->delivery : &no_delivery;
		trg->dest = sc->sink;
		trg->ordered = sc->ordered;
		trg->max_inflight = sc->max_inflight;
		trg->source = true;
		trg->brk = brk;
		snprintf(trg->label, sizeof(trg->label), "%s", brk->label);
		rc = trigger_subscribe(trg, set, errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	return 0;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	rc = CEB_ENOMEM;
fail:
	return rc;
}

int ceb_daemon_create(const struct ceb_settings *set, struct ceb_config *cfg,
                      struct ceb_daemon **out, char *errbuf, size_t errlen)
{
	struct ceb_daemon *dmn = calloc(1, sizeof(*dmn));
	int rc = CEB_ENOMEM;
	size_t i = 0;

	if (!dmn) {
		snprintf(errbuf, errlen, "out of memory");
		ceb_config_free(cfg);
		return CEB_ENOMEM;
	}
	dmn->set = *set;
	dmn->cfg = cfg;
	atomic_store(&dmn->reload_last_ok, (long long)time(NULL));
	dmn->gen = ceb_gen_new(cfg);
	if (!dmn->gen) {
		ceb_config_free(cfg);
		dmn->cfg = NULL;
		goto nomem;
	}
	if (make_token(dmn->token, sizeof(dmn->token)) < 0) {
		snprintf(errbuf, errlen, "no random bytes for the internal token");
		ceb_daemon_destroy(dmn);
		return CEB_EIO;
	}
	if (set->rate_limit > 0 &&
	    !(dmn->rl = ceb_ratelimit_new(set->rate_limit, 2 * set->rate_limit, 65536)))
		goto nomem;
	dmn->ndsp = set->dispatchers ? set->dispatchers : 1;
	dmn->dsp = calloc(dmn->ndsp, sizeof(*dmn->dsp));
	if (!dmn->dsp)
		goto nomem;
	for (i = 0; i < dmn->ndsp; i++)
		if (!(dmn->dsp[i] = ceb_dispatcher_new(dmn, (int)i)))
			goto nomem;
	rc = ceb_rt_build(dmn, dmn->gen, NULL, NULL, &dmn->brokers, &dmn->triggers, errbuf, errlen);
	if (rc < 0)
		goto fail;
	*out = dmn;
	return 0;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	rc = CEB_ENOMEM;
fail:
	ceb_daemon_destroy(dmn);
	return rc;
}

int ceb_rt_resolve(struct ceb_daemon *dmn, struct ceb_subscription *subs, bool all, char *errbuf,
                   size_t errlen)
{
	for (struct ceb_subscription *trg = subs; trg; trg = trg->next) {
		const struct ceb_delivery *dlv = trg->delivery;

		if (!all && trg->subscriber.url)
			continue;
		if (resolve_dest(dmn, trg->dest, &trg->subscriber) < 0 ||
		    (dlv->has_dls && resolve_dest(dmn, &dlv->dls, &trg->dls) < 0) ||
		    (trg->reply_dest && resolve_dest(dmn, trg->reply_dest, &trg->reply) < 0)) {
			snprintf(errbuf, errlen, "out of memory");
			return CEB_ENOMEM;
		}
		if (trg->source)
			trg->brk->src_env.sink_url = trg->subscriber.url;
	}
	return 0;
}

int ceb_rt_start(struct ceb_endpoint *brk, char *errbuf, size_t errlen)
{
	int rc = ceb_channel_start(&brk->ch, errbuf, errlen);

	if (rc == 0 && brk->src && brk->src->start)
		rc = brk->src->start(brk->src_ctx, errbuf, errlen);
	if (rc == 0)
		brk->started = true;
	return rc;
}

void ceb_rt_stop(struct ceb_endpoint *brk)
{
	if (brk->stopped)
		return;
	brk->stopped = true;
	if (brk->src && brk->src->stop)
		brk->src->stop(brk->src_ctx);
	ceb_channel_stop(&brk->ch);
}

void ceb_rt_free_endpoint(struct ceb_endpoint *brk)
{
	/* the source first: destroying it may stop a thread that still emits into the daemon's
	 * channel for it */
	if (brk->src)
		brk->src->destroy(brk->src_ctx);
	if (!brk->src_channel)
		ceb_channel_destroy(&brk->ch);
	ceb_gen_unref(brk->gen);
	free(brk->kind_buf);
	free(brk);
}

void ceb_rt_free_subscription(struct ceb_subscription *trg)
{
	ceb_dispatcher_detach(trg);
	ceb_gen_unref(trg->gen);
	free(trg->subscriber.url);
	free(trg->dls.url);
	free(trg->reply.url);
	free(trg->subscriber.ca_blob);
	free(trg->dls.ca_blob);
	free(trg->reply.ca_blob);
	free(trg);
}

int ceb_daemon_start(struct ceb_daemon *dmn, char *errbuf, size_t errlen)
{
	int rc;

	/* Bind first: destinations need the bound port (a ref to a Broker goes through our own
	 * ingress), and until `ready` the ingress answers 503 to every POST. */
	rc = ceb_ingress_start(dmn, &dmn->ing, &dmn->port, errbuf, errlen);
	if (rc < 0)
		return rc;
	rc = ceb_rt_resolve(dmn, dmn->triggers, true, errbuf, errlen);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < dmn->ndsp; i++) {
		if (ceb_dispatcher_start(dmn->dsp[i]) < 0) {
			snprintf(errbuf, errlen, "cannot start a delivery thread");
			return CEB_EIO;
		}
	}
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next) {
		if (brk->src)
			continue;
		rc = ceb_rt_start(brk, errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	/* Sources last, once what they feed runs (their deliveries to our own Brokers and
	 * KafkaSinks carry the internal token, which the ingress serves before it is ready). Ready
	 * only when everything started: a start that fails must not have answered any 202. */
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next) {
		if (!brk->src)
			continue;
		rc = ceb_rt_start(brk, errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next)
		ceb_channel_committed(&brk->ch);
	atomic_store(&dmn->ready, 1);
	return 0;
}

int ceb_daemon_start_offline(struct ceb_daemon *dmn, char *errbuf, size_t errlen)
{
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next) {
		int rc = ceb_channel_start(&brk->ch, errbuf, errlen);
		if (rc < 0)
			return rc;
		brk->started = true;
	}
	atomic_store(&dmn->ready, 1);
	return 0;
}

size_t ceb_daemon_pending(struct ceb_daemon *dmn)
{
	size_t n = 0, held = 0;

	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next)
		n += brk->ch.ops ? brk->ch.ops->pending(brk->ch.ctx) : 0;
	for (struct ceb_endpoint *brk = dmn->retired; brk; brk = brk->rnext)
		n += brk->ch.ops ? brk->ch.ops->pending(brk->ch.ctx) : 0;
	/* A message a dispatcher holds is one its channel handed out and counts until it is settled:
	 * adding the two counted every delivery in flight twice. The larger one still waits for a
	 * dispatcher whose channel would not count what it handed out. */
	for (size_t i = 0; i < dmn->ndsp; i++)
		held += ceb_dispatcher_busy(dmn->dsp[i]);
	return n > held ? n : held;
}

void ceb_daemon_drain(struct ceb_daemon *dmn)
{
	atomic_store(&dmn->draining, 1);
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next)
		if (brk->src && brk->src->stop)
			brk->src->stop(brk->src_ctx);
}

void ceb_daemon_destroy(struct ceb_daemon *dmn)
{
	size_t held;

	if (!dmn)
		return;
	atomic_store(&dmn->draining, 1);
	/* What a reload retired and still drains is torn down with the rest. */
	for (struct ceb_endpoint **pp = &dmn->brokers;; pp = &(*pp)->next)
		if (!*pp) {
			for (struct ceb_endpoint *brk = dmn->retired; brk; brk = brk->rnext)
				brk->next = brk->rnext;
			*pp = dmn->retired;
			dmn->retired = NULL;
			break;
		}
	for (struct ceb_subscription **pp = &dmn->triggers;; pp = &(*pp)->next)
		if (!*pp) {
			for (struct ceb_subscription *trg = dmn->retired_subs; trg;
			     trg = trg->rnext)
				trg->next = trg->rnext;
			*pp = dmn->retired_subs;
			dmn->retired_subs = NULL;
			break;
		}
	/* The order matters. 1: channels complete every pending publish and hand out nothing more,
	 * which resumes the requests suspended on them. 2: the ingress stops (MHD must have no
	 * suspended connection). 3: every dispatcher thread stops, then what they hold is given back,
	 * over and over until nothing is left, since settling on one dispatcher may have handed a
	 * message to another. 4: only then channels and Triggers go away. */
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next)
		ceb_rt_stop(brk);
	ceb_ingress_stop(dmn->ing);
	for (size_t i = 0; dmn->dsp && i < dmn->ndsp; i++)
		ceb_dispatcher_stop(dmn->dsp[i]);
	do {
		held = 0;
		for (size_t i = 0; dmn->dsp && i < dmn->ndsp; i++)
			held += ceb_dispatcher_give_back(dmn->dsp[i]);
	} while (held);
	for (struct ceb_endpoint *brk = dmn->brokers, *next; brk; brk = next) {
		next = brk->next;
		ceb_rt_free_endpoint(brk);
	}
	for (struct ceb_subscription *trg = dmn->triggers, *next; trg; trg = next) {
		next = trg->next;
		ceb_rt_free_subscription(trg);
	}
	for (size_t i = 0; dmn->dsp && i < dmn->ndsp; i++)
		ceb_dispatcher_free(dmn->dsp[i]);
	free(dmn->dsp);
	ceb_ratelimit_free(dmn->rl);
	ceb_rt_auth_free(dmn);
	ceb_gen_unref(dmn->gen);
	free(dmn);
}
