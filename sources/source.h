/* The source contract: how an external feed (a cron schedule, Kafka topics, an AMQP queue, a NATS
 * subject, a command's output, webhooks) becomes CloudEvents for a sink. Every source implements
 * these operations; one contract test suite (tests/unit/source_contract.h) runs against each.
 *
 * A source never delivers. It puts events into a channel, and the daemon opens one subscription on
 * that channel (no filter) that the dispatcher delivers to the source's sink with the source's
 * delivery settings, exactly as it delivers for a Trigger: retries, backoff, timeouts, dead-letter
 * sinks and metrics live in one place. A source has its channel one of two ways:
 *  - backed by a log (KafkaSource, RabbitmqSource, a NATS source): `channel` returns the consume-only
 *    half of the source's backend. Its progress (offset, ack) moves only when the dispatcher settles,
 *    that is after the sink or the dead-letter sink accepted; a crash before that redelivers;
 *  - any other source (PingSource, ContainerSource, WebhookSource) leaves `channel` NULL: the daemon
 *    gives it a bounded channel of the in-process backend and env->emit to publish into it. emit
 *    answers CEB_EFULL when that channel is full, and the source says what that means for its feed
 *    (a webhook answers 429; a tick is counted and logged).
 *
 * Threads: create, channel, start, stop and destroy run on the main thread, in that order; stop may
 * be skipped (destroy stops too). emit may be called from any thread between start and stop. */
#ifndef CEB_SOURCE_H
#define CEB_SOURCE_H

#include <stddef.h>

#include "broker/ce/event.h"
#include "broker/config/config.h"
#include "channels/channel.h"

/* What the daemon gives a source. Valid from create until destroy returns. */
struct ceb_source_env {
	const char *label; /* "kafkasource default/orders": the prefix of the source's log lines */
	size_t max_events; /* bounds of the memory channel the daemon makes for a source without */
	size_t max_bytes; /* a channel of its own (also a sensible bound for the source's buffers) */
	/* Publish one event into the source's memory channel (sources whose `channel` is NULL). Takes
	 * its own reference to ev. Returns 0 (stored), CEB_EFULL or CEB_EUNAVAIL (stopping). */
	int (*emit)(void *emit_arg, struct ceb_event *ev);
	void *emit_arg;
	/* The sink's resolved URL, set before start (a Broker of this daemon: its ingress URL):
	 * what a source whose program posts by itself is told (ContainerSource's K_SINK). */
	const char *sink_url;
};

/* The operations of one source kind. create and destroy are required, the others optional. */
struct source_ops {
	const char *kind;  /* the resource kind it serves: "KafkaSource" */
	const char *label; /* lower case, for logs and metric labels: "kafkasource" */
	/* Build the source from its resource (cfg->own is the kind's own settings; cfg and env outlive
	 * the source). 0 and *ctx, or a negative CEB_E* with a reason in errbuf. */
	int (*create)(const struct ceb_source_cfg *cfg, const struct ceb_source_env *env,
	              void **ctx, char *errbuf, size_t errlen);
	/* The consume-only channel the source's events come out of, owned by the source; NULL (or no
	 * op): the daemon makes a memory channel and the source publishes with env->emit. The daemon
	 * subscribes once, starts the channel and stops it; the source destroys it. */
	struct ceb_channel *(*channel)(void *ctx);
	/* Start reading the feed, once the subscription is open and what the sink is runs. */
	int (*start)(void *ctx, char *errbuf, size_t errlen);
	/* SIGTERM: emit nothing more; what was emitted still goes out during the drain. */
	void (*stop)(void *ctx);
	/* Frees everything, stopping first if needed; accepts NULL and a half-built ctx. */
	void (*destroy)(void *ctx);
};

/* The source kinds compiled into this build (sources/source_list.h), or NULL. */
const struct source_ops *ceb_source_ops_find(const char *kind);

#endif
