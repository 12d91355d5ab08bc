/* Prometheus text exposition of the daemon's counters, per Broker and per Trigger. */
#include <stdio.h>
#include "broker/metrics.h"
#include "broker/buf.h"
#include "broker/auth/auth.h"

struct metric {
	const char *name;
	const char *help;
	size_t offset;
};

#define M(field, help)                                                                  \
	{                                                                               \
		"cebroker_" #field "_total", help, offsetof(struct ceb_counters, field) \
	}
static const struct metric broker_metrics[] = {
        M(accepted, "Events stored and answered 202."),
        M(rejected_4xx,
          "Requests refused with a 4xx status (bad event, unknown broker, too large...)."),
        M(rejected_full, "Requests refused with 429 because the channel was full."),
        M(rejected_unavail, "Requests refused with 503 (backend unavailable or shutting down)."),
        M(rejected_rate_limited,
          "Requests refused with 429 because the client was over --rate-limit."),
};
static const struct metric trigger_metrics[] = {
        M(delivered, "Events the subscriber accepted."),
        M(attempts, "Delivery attempts, retries and dead-letter attempts included; each makes at "
                    "most one HTTP request."),
        M(requests, "HTTP requests written to the subscriber or the dead-letter sink (an attempt "
                    "that could not connect makes none)."),
        M(retries, "Attempts that were retries, counted when made."),
        M(dead_lettered, "Events the dead-letter sink accepted."),
        M(dropped, "Events dropped after the last retry, with no dead-letter sink."),
        M(lost,
          "Events neither delivered nor dead-lettered (dead-letter sink failed, or shutdown)."),
        M(replies, "Reply events published into the broker."),
        M(ttl_exhausted, "Reply events dropped by the knativebrokerttl loop guard."),
        M(left_in_source, "Events of a durable source (KafkaSource) that its sink refused to the "
                          "last retry, with no dead-letter sink: left in the source, they come "
                          "again."),
};
#undef M

static unsigned long counter(const struct ceb_counters *c, size_t offset)
{
	return atomic_load((const atomic_ulong *)((const char *)c + offset));
}

/* The labels naming what a series counts: {namespace,broker}, {namespace,kafkasink} or
 * {namespace,kafkasource}: the owner's kind; a Trigger's series also name its Broker, a
 * Subscription's its channel ({namespace,subscription,inmemorychannel}). */
static void endpoint_labels(struct ceb_buf *out, const struct ceb_endpoint *brk)
{
	ceb_buf_printf(out, "namespace=\"%s\",%s=\"%s\"", brk->ns, brk->kind, brk->name);
}

void ceb_daemon_metrics(struct ceb_daemon *dmn, struct ceb_buf *out)
{
	for (size_t i = 0; i < sizeof(broker_metrics) / sizeof(broker_metrics[0]); i++) {
		const struct metric *m = &broker_metrics[i];
		ceb_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", m->name, m->help, m->name);
		for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next) {
			if (!brk->path[0])
				continue; /* a source: takes no requests */
			ceb_buf_printf(out, "%s{", m->name);
			endpoint_labels(out, brk);
			ceb_buf_printf(out, "} %lu\n", counter(&brk->cnt, m->offset));
		}
	}
	for (size_t i = 0; i < sizeof(trigger_metrics) / sizeof(trigger_metrics[0]); i++) {
		const struct metric *m = &trigger_metrics[i];
		ceb_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", m->name, m->help, m->name);
		for (struct ceb_subscription *trg = dmn->triggers; trg; trg = trg->next) {
			if (trg->source)
				ceb_buf_printf(out, "%s{namespace=\"%s\",%s=\"%s\"} %lu\n", m->name,
				               trg->ns, trg->brk->kind, trg->name,
				               counter(&trg->cnt, m->offset));
			else if (trg->flow) /* a Subscription names its channel */
				ceb_buf_printf(out,
				               "%s{namespace=\"%s\",subscription=\"%s\",%s=\"%s\"} "
				               "%lu\n",
				               m->name, trg->ns, trg->name, trg->brk->kind,
				               trg->brk->name, counter(&trg->cnt, m->offset));
			else
				ceb_buf_printf(out,
				               "%s{namespace=\"%s\",trigger=\"%s\",broker=\"%s\"} "
				               "%lu\n",
				               m->name, trg->ns, trg->name, trg->brk->name,
				               counter(&trg->cnt, m->offset));
		}
	}
	ceb_buf_puts(out,
	             "# HELP cebroker_channel_pending_events Events stored and not yet settled.\n"
	             "# TYPE cebroker_channel_pending_events gauge\n");
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next) {
		ceb_buf_puts(out, "cebroker_channel_pending_events{");
		endpoint_labels(out, brk);
		ceb_buf_printf(out, "} %zu\n", brk->ch.ops->pending(brk->ch.ctx));
	}
	/* reload (SIGHUP, run --watch: broker/reload.c) */
	ceb_buf_printf(
	        out,
	        "# HELP cebroker_reload_total Configuration reloads (SIGHUP, run --watch), "
	        "by result; a failure keeps the running configuration.\n"
	        "# TYPE cebroker_reload_total counter\n"
	        "cebroker_reload_total{result=\"success\"} %lu\n"
	        "cebroker_reload_total{result=\"failure\"} %lu\n"
	        "# HELP cebroker_reload_last_success_timestamp_seconds When the configuration "
	        "was last loaded successfully (Unix time): at the start, then at each "
	        "successful reload.\n"
	        "# TYPE cebroker_reload_last_success_timestamp_seconds gauge\n"
	        "cebroker_reload_last_success_timestamp_seconds %lld\n",
	        atomic_load(&dmn->reloads_ok), atomic_load(&dmn->reloads_failed),
	        atomic_load(&dmn->reload_last_ok));
	ceb_auth_metrics(dmn->auth, out);
	ceb_metrics_graph(dmn, out);
	/* channels with retention (DurableChannel): what it deleted before it was settled */
	ceb_buf_puts(out, "# HELP cebroker_channel_retention_dropped_total Events retention deleted "
	                  "before every subscription had settled them (each deletion is logged).\n"
	                  "# TYPE cebroker_channel_retention_dropped_total counter\n");
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next) {
		if (!brk->ch.ops || !brk->ch.ops->retention_dropped)
			continue;
		ceb_buf_puts(out, "cebroker_channel_retention_dropped_total{");
		endpoint_labels(out, brk);
		ceb_buf_printf(out, "} %llu\n",
		               (unsigned long long)brk->ch.ops->retention_dropped(brk->ch.ctx));
	}
}
