/* The daemon's runtime: Brokers with their channels, Triggers with their subscriptions, the
 * dispatchers and the ingress, built from a loaded configuration; start-up, drain and shutdown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/buf.h"
#include "broker/dispatcher.h"
#include "broker/error.h"
#include "broker/ingress.h"
#include "broker/log.h"
#include "broker/ratelimit.h"

const struct ceb_settings ceb_settings_default = {
        .listen_host = "127.0.0.1",
        .listen_port = 8080,
        .limits =
                {
                        .max_event_size = 1 << 20,
                        .max_attrs = 64,
                        .max_value_len = 4096,
                        .max_json_depth = 64,
                        .max_batch = 100,
                },
        .max_header_block = 64 * 1024,
        .max_connections = 10000,
        .max_conn_per_ip = 0,
        .idle_timeout_s = 15,
        .request_timeout_s = 30,
        .ingress_threads = 2,
        .dispatchers = 2,
        .max_inflight = 100,
        .default_timeout_ms = 30000,
        .drain_timeout_ms = 30000,
        .channel_max_events = 100000,
        .channel_max_bytes = (size_t)256 << 20,
        .max_ttl = 255,
};

uint64_t ceb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct ceb_broker *ceb_broker_find(struct ceb_daemon *dmn, const char *path, size_t len)
{
	for (struct ceb_broker *brk = dmn->brokers; brk; brk = brk->next)
		if (brk->path[0] && strlen(brk->path) == len && memcmp(brk->path, path, len) == 0)
			return brk;
	return NULL;
}

/* Events up to this wire size are stored as an exact-size copy in the memory channel. */
#define COMPACT_MAX 4096

void ceb_broker_publish(struct ceb_broker *brk, struct ceb_event *ev, ceb_publish_done_f *done,
                        void *arg)
{
	struct ceb_event *stored = NULL;

	/* A KafkaSink stores events as they come; only a Broker counts hops. */
	if (brk->kind == CEB_EP_BROKER && !ceb_event_get(ev, "knativebrokerttl") &&
	    ceb_event_set_int(ev, "knativebrokerttl", brk->dmn->set.max_ttl) < 0) {
		done(arg, CEB_EUNAVAIL);
		return;
	}
	/* A decoded event sits in an arena sized for any event (about 1.2 KiB). The memory channel
	 * may hold 100 000 of them, so it gets a copy without the slack: a 300-byte event then
	 * costs about 750 bytes instead of 1 250. Larger events keep their data in a buffer of
	 * their own, where the slack matters little and a copy would cost more. Without memory for
	 * the copy, the original does. */
	if (ceb_event_size(ev) <= COMPACT_MAX && strcmp(brk->ch.ops->name, "memory") == 0)
		stored = ceb_event_clone(ev);
	brk->ch.ops->publish(brk->ch.ctx, stored ? stored : ev, done, arg);
	ceb_event_unref(stored);
}

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

bool ceb_daemon_is_internal(const struct ceb_daemon *dmn, const char *value)
{
	unsigned char diff = 0;

	if (!value || strlen(value) != 32)
		return false;
	for (size_t i = 0; i < 32; i++) /* no early exit: the time says nothing about the token */
		diff |= (unsigned char)(value[i] ^ dmn->token[i]);
	return diff == 0;
}

/* A destination to a URL: a uri as given, a ref to a Broker of this daemon as its ingress URL. */
static int resolve_dest(struct ceb_daemon *dmn, const struct ceb_dest *d, struct ceb_target *t)
{
	struct ceb_buf b = CEB_BUF_INIT;
	const char *host = dmn->set.listen_host;

	if (d->uri) {
		t->url = strdup(d->uri);
		return t->url ? 0 : CEB_ENOMEM;
	}
	t->internal = true;
	/* A wildcard listen address is reached on loopback (an IPv6 wildcard binds IPv6 only). */
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "") == 0)
		host = "127.0.0.1";
	else if (strcmp(host, "::") == 0)
		host = "::1";
	if (strchr(host, ':'))
		ceb_buf_printf(&b, "http://[%s]:%d/%s/%s", host, dmn->port, d->ref_ns, d->ref_name);
	else
		ceb_buf_printf(&b, "http://%s:%d/%s/%s", host, dmn->port, d->ref_ns, d->ref_name);
	t->url = ceb_buf_steal(&b, NULL);
	return t->url ? 0 : CEB_ENOMEM;
}

/* Two KafkaSources in one consumer group that read a topic in common share its partitions: each
 * gets only part of the records. Legal in Kafka (and in Knative), rarely meant: say so. */
static void warn_shared_groups(const struct ceb_config *cfg)
{
	for (const struct ceb_kafka_source_cfg *a = cfg->kafka_sources; a; a = a->next)
		for (const struct ceb_kafka_source_cfg *b = a->next; b; b = b->next) {
			if (strcmp(a->group, b->group) || strcmp(a->bootstrap, b->bootstrap))
				continue;
			for (size_t i = 0; i < a->ntopics; i++)
				for (size_t j = 0; j < b->ntopics; j++)
					if (strcmp(a->topics[i], b->topics[j]) == 0)
						LOG_WARN("cebroker",
						         "KafkaSources %s/%s and %s/%s share "
						         "consumer "
						         "group %s on topic %s: each gets only "
						         "part of "
						         "its records",
						         a->ns, a->name, b->ns, b->name, a->group,
						         a->topics[i]);
		}
}

/* A new Broker or Kafka endpoint at the end of the daemon's list; NULL when out of memory. */
static struct ceb_broker *endpoint_new(struct ceb_daemon *dmn, struct ceb_broker ***tail,
                                       enum ceb_endpoint kind, const char *ns, const char *name)
{
	static const char *const labels[] = {"broker", "kafkasink", "kafkasource"};
	struct ceb_broker *brk = calloc(1, sizeof(*brk));

	if (!brk)
		return NULL;
	**tail = brk;
	*tail = &brk->next;
	brk->kind = kind;
	brk->ns = ns;
	brk->name = name;
	brk->dmn = dmn;
	if (kind != CEB_EP_KAFKA_SOURCE)
		snprintf(brk->path, sizeof(brk->path), "/%s/%s", ns, name);
	snprintf(brk->label, sizeof(brk->label), "%s %s/%s", labels[kind], ns, name);
	return brk;
}

/* Create an endpoint's channel; an error names the resource (what, declared at loc). */
static int endpoint_channel(struct ceb_broker *brk, const char *chname,
                            const struct ceb_channel_cfg *cc, const struct ceb_loc *loc,
                            const char *what, const char *cls, char *errbuf, size_t errlen)
{
	int rc;

	brk->ch.ops = chname ? ceb_channel_ops_find(chname) : NULL;
	if (!brk->ch.ops) {
		if (cls)
			snprintf(errbuf, errlen,
			         "%s:%d:%d: %s %s/%s: class %s needs the %s channel, which this "
			         "build does not include",
			         loc->file, loc->line, loc->col, what, brk->ns, brk->name, cls,
			         chname ? chname : "?");
		else
			snprintf(errbuf, errlen,
			         "%s:%d:%d: %s %s/%s: needs the %s channel, which this build does "
			         "not include (configure found no librdkafka)",
			         loc->file, loc->line, loc->col, what, brk->ns, brk->name, chname);
		return CEB_ENOTCOMPILED;
	}
	rc = brk->ch.ops->create(cc, &brk->ch.ctx, errbuf, errlen);
	if (rc < 0)
		brk->ch.ops = NULL;
	return rc;
}

/* Open a delivery's subscription on its channel. */
static int trigger_subscribe(struct ceb_trigger *trg, const struct ceb_settings *set, char *errbuf,
                             size_t errlen)
{
	struct ceb_sub_cfg sc = {
	        .ns = trg->ns,
	        .name = trg->name,
	        .filter = trg->filter,
	        .max_inflight = set->max_inflight,
	        .ordered = trg->ordered,
	        .on_msg = ceb_dispatcher_on_msg,
	        .arg = trg,
	};
	int rc = trg->brk->ch.ops->subscribe(trg->brk->ch.ctx, &sc, &trg->sub);

	if (rc < 0) {
		snprintf(errbuf, errlen, "%s: cannot subscribe: %s", trg->label, ceb_strerror(rc));
		return rc;
	}
	trg->prefiltered = !trg->filter || trg->brk->ch.ops->prefilters(trg->brk->ch.ctx);
	return 0;
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
	        .ns = bc->ns,
	        .name = bc->name,
	        .config = bc->config,
	        .max_events = set->channel_max_events,
	        .max_bytes = set->channel_max_bytes,
	        .external_topic = ceb_annotation(bc->annot_keys, bc->annot_values, bc->nannot,
	                                         "kafka.eventing.knative.dev/external.topic"),
	};
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
	return n;
}

static struct ceb_broker *broker_of(struct ceb_daemon *dmn, const struct ceb_broker_cfg *bc)
{
	for (struct ceb_broker *brk = dmn->brokers; brk; brk = brk->next)
		if (brk->kind == CEB_EP_BROKER && brk->cfg == bc)
			return brk;
	return NULL;
}

int ceb_daemon_create(const struct ceb_settings *set, struct ceb_config *cfg,
                      struct ceb_daemon **out, char *errbuf, size_t errlen)
{
	struct ceb_daemon *dmn = calloc(1, sizeof(*dmn));
	struct ceb_broker **btail;
	struct ceb_trigger **ttail;
	int rc = CEB_ENOMEM;
	size_t i = 0;

	if (!dmn) {
		snprintf(errbuf, errlen, "out of memory");
		ceb_config_free(cfg);
		return CEB_ENOMEM;
	}
	dmn->set = *set;
	dmn->cfg = cfg;
	if (make_token(dmn->token, sizeof(dmn->token)) < 0) {
		snprintf(errbuf, errlen, "no random bytes for the internal token");
		ceb_config_free(cfg);
		free(dmn);
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

	btail = &dmn->brokers;
	for (const struct ceb_broker_cfg *bc = cfg->brokers; bc; bc = bc->next) {
		const char *chname = broker_channel_name(bc);
		struct ceb_channel_cfg cc;
		struct ceb_broker *brk = endpoint_new(dmn, &btail, CEB_EP_BROKER, bc->ns, bc->name);

		broker_channel_cfg(set, bc, &cc);
		if (!brk)
			goto nomem;
		brk->cfg = bc;
		rc = endpoint_channel(brk, chname, &cc, &bc->loc, "Broker", bc->broker_class,
		                      errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	for (const struct ceb_kafka_sink_cfg *kc = cfg->kafka_sinks; kc; kc = kc->next) {
		struct ceb_channel_cfg cc = {.ns = kc->ns, .name = kc->name, .kafka_sink = kc};
		struct ceb_broker *brk =
		        endpoint_new(dmn, &btail, CEB_EP_KAFKA_SINK, kc->ns, kc->name);
		if (!brk)
			goto nomem;
		rc = endpoint_channel(brk, "kafka", &cc, &kc->loc, "KafkaSink", NULL, errbuf,
		                      errlen);
		if (rc < 0)
			goto fail;
	}

	ttail = &dmn->triggers;
	i = 0;
	for (const struct ceb_trigger_cfg *tc = cfg->triggers; tc; tc = tc->next, i++) {
		struct ceb_trigger *trg = calloc(1, sizeof(*trg));
		if (!trg)
			goto nomem;
		*ttail = trg;
		ttail = &trg->next;
		trg->cfg = tc;
		trg->ns = tc->ns;
		trg->name = tc->name;
		trg->filter = tc->filter;
		trg->delivery = &tc->delivery;
		trg->dest = &tc->subscriber;
		trg->ordered = tc->ordered;
		trg->brk = broker_of(dmn, tc->broker_cfg);
		trg->dsp = dmn->dsp[i % dmn->ndsp];
		snprintf(trg->label, sizeof(trg->label), "trigger %s/%s", tc->ns, tc->name);
		rc = trigger_subscribe(trg, set, errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	/* A KafkaSource is a channel of its own with one delivery to its sink: no filter, and what
	 * the sink answers is not an event to publish. */
	warn_shared_groups(cfg);
	for (const struct ceb_kafka_source_cfg *kc = cfg->kafka_sources; kc; kc = kc->next, i++) {
		struct ceb_channel_cfg cc = {.ns = kc->ns, .name = kc->name, .kafka_source = kc};
		struct ceb_broker *brk =
		        endpoint_new(dmn, &btail, CEB_EP_KAFKA_SOURCE, kc->ns, kc->name);
		struct ceb_trigger *trg;
		if (!brk)
			goto nomem;
		rc = endpoint_channel(brk, "kafka", &cc, &kc->loc, "KafkaSource", NULL, errbuf,
		                      errlen);
		if (rc < 0)
			goto fail;
		if (!(trg = calloc(1, sizeof(*trg))))
			goto nomem;
		*ttail = trg;
		ttail = &trg->next;
		trg->ns = kc->ns;
		trg->name = kc->name;
		trg->delivery = &kc->delivery;
		trg->dest = &kc->sink;
		trg->ordered = kc->ordered;
		trg->discard_reply = true;
		trg->brk = brk;
		trg->dsp = dmn->dsp[i % dmn->ndsp];
		snprintf(trg->label, sizeof(trg->label), "kafkasource %s/%s", kc->ns, kc->name);
		rc = trigger_subscribe(trg, set, errbuf, errlen);
		if (rc < 0)
			goto fail;
	}
	*out = dmn;
	return 0;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	rc = CEB_ENOMEM;
fail:
	ceb_daemon_destroy(dmn);
	return rc;
}

int ceb_daemon_start(struct ceb_daemon *dmn, char *errbuf, size_t errlen)
{
	int rc;

	/* Bind first: destinations need the bound port (a ref to a Broker goes through our own
	 * ingress), and until `ready` the ingress answers 503 to every POST. */
	rc = ceb_ingress_start(dmn, &dmn->ing, &dmn->port, errbuf, errlen);
	if (rc < 0)
		return rc;
	for (struct ceb_trigger *trg = dmn->triggers; trg; trg = trg->next) {
		const struct ceb_delivery *dlv = trg->delivery;
		if (resolve_dest(dmn, trg->dest, &trg->subscriber) < 0 ||
		    (dlv->has_dls && resolve_dest(dmn, &dlv->dls, &trg->dls) < 0)) {
			snprintf(errbuf, errlen, "out of memory");
			return CEB_ENOMEM;
		}
	}
	for (size_t i = 0; i < dmn->ndsp; i++) {
		if (ceb_dispatcher_start(dmn->dsp[i]) < 0) {
			snprintf(errbuf, errlen, "cannot start a delivery thread");
			return CEB_EIO;
		}
	}
	for (struct ceb_broker *brk = dmn->brokers; brk; brk = brk->next) {
		if (brk->kind == CEB_EP_KAFKA_SOURCE)
			continue;
		rc = brk->ch.ops->start(brk->ch.ctx, errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	/* Sources last, once what they feed runs (their deliveries to our own Brokers and
	 * KafkaSinks carry the internal token, which the ingress serves before it is ready). Ready
	 * only when everything started: a start that fails must not have answered any 202. */
	for (struct ceb_broker *brk = dmn->brokers; brk; brk = brk->next) {
		if (brk->kind != CEB_EP_KAFKA_SOURCE)
			continue;
		rc = brk->ch.ops->start(brk->ch.ctx, errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	atomic_store(&dmn->ready, 1);
	return 0;
}

int ceb_daemon_start_offline(struct ceb_daemon *dmn, char *errbuf, size_t errlen)
{
	for (struct ceb_broker *brk = dmn->brokers; brk; brk = brk->next) {
		int rc = brk->ch.ops->start(brk->ch.ctx, errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	atomic_store(&dmn->ready, 1);
	return 0;
}

size_t ceb_daemon_pending(struct ceb_daemon *dmn)
{
	size_t n = 0;

	for (struct ceb_broker *brk = dmn->brokers; brk; brk = brk->next)
		n += brk->ch.ops->pending(brk->ch.ctx);
	for (size_t i = 0; i < dmn->ndsp; i++)
		n += ceb_dispatcher_busy(dmn->dsp[i]);
	return n;
}

void ceb_daemon_drain(struct ceb_daemon *dmn)
{
	atomic_store(&dmn->draining, 1);
	for (struct ceb_broker *brk = dmn->brokers; brk; brk = brk->next)
		if (brk->kind == CEB_EP_KAFKA_SOURCE && brk->ch.ops->stop)
			brk->ch.ops->stop(brk->ch.ctx);
}

void ceb_daemon_destroy(struct ceb_daemon *dmn)
{
	size_t held;

	if (!dmn)
		return;
	atomic_store(&dmn->draining, 1);
	/* The order matters. 1: channels complete every pending publish and hand out nothing more,
	 * which resumes the requests suspended on them. 2: the ingress stops (MHD must have no
	 * suspended connection). 3: every dispatcher thread stops, then what they hold is given back,
	 * over and over until nothing is left, since settling on one dispatcher may have handed a
	 * message to another. 4: only then channels and Triggers go away. */
	for (struct ceb_broker *brk = dmn->brokers; brk; brk = brk->next)
		if (brk->ch.ops && brk->ch.ops->stop)
			brk->ch.ops->stop(brk->ch.ctx);
	ceb_ingress_stop(dmn->ing);
	for (size_t i = 0; dmn->dsp && i < dmn->ndsp; i++)
		ceb_dispatcher_stop(dmn->dsp[i]);
	do {
		held = 0;
		for (size_t i = 0; dmn->dsp && i < dmn->ndsp; i++)
			held += ceb_dispatcher_abandon(dmn->dsp[i]);
	} while (held);
	for (struct ceb_broker *brk = dmn->brokers, *next; brk; brk = next) {
		next = brk->next;
		if (brk->ch.ops)
			brk->ch.ops->destroy(brk->ch.ctx);
		free(brk);
	}
	for (struct ceb_trigger *trg = dmn->triggers, *next; trg; trg = next) {
		next = trg->next;
		free(trg->subscriber.url);
		free(trg->dls.url);
		free(trg);
	}
	for (size_t i = 0; dmn->dsp && i < dmn->ndsp; i++)
		ceb_dispatcher_free(dmn->dsp[i]);
	free(dmn->dsp);
	ceb_ratelimit_free(dmn->rl);
	ceb_config_free(dmn->cfg);
	free(dmn);
}
