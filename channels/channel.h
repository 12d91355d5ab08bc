/* The channel contract: where a Broker stores events and how Triggers consume them. Every backend
 * (memory, kafka, amqp, nats) implements these operations; one contract test suite runs against each.
 *
 * publish() is asynchronous and completes exactly once, through its callback: 0 = stored (the backend
 * confirmed), CEB_EFULL = full (ingress answers 429), CEB_EUNAVAIL = unavailable (503). The callback
 * may run before publish() returns (memory) or later from a backend thread.
 *
 * subscribe() opens one subscription per Trigger with its own progress. The channel hands messages to
 * the subscription's callback, at most `max_inflight` unsettled at a time (1 per partition key when
 * ordered). The consumer settles each message once; durable backends redeliver what was never settled. */
#ifndef CEB_CHANNEL_H
#define CEB_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/event.h"
#include "filters/filter.h"

struct ceb_configmap;
struct ceb_kafka_source_cfg;
struct ceb_kafka_sink_cfg;

/* Completion of a publish; status is 0, CEB_EFULL or CEB_EUNAVAIL. Called once, from any thread. */
typedef void ceb_publish_done_f(void *arg, int status);

/* A message handed to a subscription: the event (a reference the receiver owns and must unref) and an
 * opaque handle for settle(). Called from a channel thread or from inside publish()/settle(): the
 * receiver must only queue the message and return quickly, never call back into the channel. */
typedef void ceb_channel_msg_f(void *arg, struct ceb_event *ev, void *handle);

/* Settles a subscription's message. */
enum ceb_settle {
	CEB_SETTLE_DONE = 0, /* delivered, filtered out or dead-lettered: never again */
	CEB_SETTLE_FAILED, /* could not be delivered nor dead-lettered: a durable channel keeps it and
				 redelivers later; the memory channel counts it as lost */
};

struct ceb_channel_cfg {
	const char *ns, *name;              /* the Broker */
	const struct ceb_configmap *config; /* its spec.config ConfigMap, or NULL */
	size_t max_events;                  /* memory: bound on stored events */
	size_t max_bytes;                   /* memory: bound on stored bytes */
	const char *external_topic;         /* kafka: the Broker's annotation
					       kafka.eventing.knative.dev/external.topic, or NULL */
	/* kafka: instead of a Broker, the channel is a KafkaSource (consume only, one subscription)
	 * or a KafkaSink (publish only); ns and name are then the source's or the sink's. */
	const struct ceb_kafka_source_cfg *kafka_source;
	const struct ceb_kafka_sink_cfg *kafka_sink;
};

struct ceb_sub_cfg {
	const char *ns, *name; /* the Trigger */
	const struct ceb_filter
	        *filter;     /* the Trigger's filter: a channel may apply it early (memory
					    does, at publish); the dispatcher then skips it */
	size_t max_inflight; /* unsettled messages at most (>= 1) */
	bool ordered;        /* one in flight per partition key */
	ceb_channel_msg_f *on_msg;
	void *arg;
};

struct ceb_channel;
struct ceb_sub;

/* The operations of one backend. */
typedef int channel_create_f(const struct ceb_channel_cfg *cfg, void **ctx, char *errbuf,
                             size_t errlen);
typedef void channel_destroy_f(void *ctx);
/* Start background work once every subscription is open (e.g. consumer threads). */
typedef int channel_start_f(void *ctx, char *errbuf, size_t errlen);
/* Publish; takes its own reference to ev. Completes through done exactly once. */
typedef void channel_publish_f(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done,
                               void *arg);
typedef int channel_subscribe_f(void *ctx, const struct ceb_sub_cfg *cfg, void **sub);
/* Settle one message handed to `sub`. May be called from any thread, concurrently for the same
 * subscription (dispatchers spread a Trigger's messages over their threads). */
typedef void channel_settle_f(void *ctx, void *sub, void *handle, enum ceb_settle how);
/* Messages stored and not yet settled by every subscription (for drain and metrics). */
typedef size_t channel_pending_f(void *ctx);
/* True if publish/settle already applied the subscription filters (see ceb_sub_cfg.filter). */
typedef bool channel_prefilters_f(void *ctx);
/* Shutdown, before destroy: complete every pending publish (stored, or CEB_EUNAVAIL), stop the
 * background threads, and hand no more messages to subscriptions; later publishes complete at once
 * with CEB_EUNAVAIL. Settle still works (the dispatchers give back what they hold). */
typedef void channel_stop_f(void *ctx);
/* Optional (NULL: create refuses nothing that the configuration loader did not): what create would
 * refuse in cfg (a library's own checks of settings), found without starting anything or reaching a
 * server, for `cebroker validate`. 0, or CEB_ECONFIG with one line in errbuf, located
 * (file:line:col: ...) where the setting is. Any thread. */
typedef int channel_check_f(const struct ceb_channel_cfg *cfg, char *errbuf, size_t errlen);

struct channel_ops {
	const char *name; /* "memory", "kafka", ... */
	channel_create_f *create;
	channel_destroy_f *destroy;
	channel_start_f *start;
	channel_publish_f *publish;
	channel_subscribe_f *subscribe;
	channel_settle_f *settle;
	channel_pending_f *pending;
	channel_prefilters_f *prefilters;
	channel_stop_f *stop;
	channel_check_f *check;
};

/* The backends compiled into this build (see channels/channel_list.h). */
const struct channel_ops *ceb_channel_ops_find(const char *name);
/* A Broker class annotation to a backend name: MTChannelBasedBroker -> memory, Kafka -> kafka,
 * RabbitMQBroker -> amqp, NatsJetStreamBroker -> nats; NULL if the class is unknown. */
const char *ceb_channel_for_class(const char *broker_class);

/* A channel instance: ops + ctx. */
struct ceb_channel {
	const struct channel_ops *ops;
	void *ctx;
};

#endif
