/* The channel contract: where a Broker stores events and how Triggers consume them. Every backend
 * (memory, kafka, amqp, nats) implements these operations; one contract test suite runs against each.
 *
 * publish() is asynchronous and completes exactly once, through its callback: 0 = stored (the
 * backend confirmed), CEB_EFULL = full (ingress answers 429), CEB_EUNAVAIL = unavailable (503),
 * CEB_ETOOBIG = larger than the channel can ever hold, however empty (413). The callback may run
 * before publish() returns (memory) or later from a backend thread.
 *
 * publish_batch() stores the events of one request (a CloudEvents batch) and completes once, with
 * each event's status. An atomic backend (CEB_CHANNEL_BATCH_ATOMIC: memory) stores all of them or none, so a
 * sender that retries a refused batch never causes duplicates. A backend that writes each event as
 * a record of its own (Kafka) cannot: it reports which events were stored, and the ingress says so.
 *
 * subscribe() opens one subscription per Trigger with its own progress. The channel hands messages to
 * the subscription's callback, at most `max_inflight` unsettled at a time (1 per partition key when
 * ordered). The consumer settles each message once; durable backends redeliver what was never settled. */
#ifndef CEB_CHANNEL_H
#define CEB_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/ce/event.h"
#include "filters/filter.h"

/* Completion of a publish; status is 0, CEB_EFULL, CEB_EUNAVAIL or CEB_ETOOBIG. Called once, from
 * any thread. */
typedef void ceb_publish_done_f(void *arg, int status);

/* Completion of a batch publish of n events. each == NULL: every event got `status` (always so
 * for a CEB_CHANNEL_BATCH_ATOMIC backend). Otherwise each[i] is event i's status, as for one publish, and
 * `status` is 0 when all were stored, else the first failure; the array is valid during the call
 * only. Called once, from any thread. */
typedef void ceb_batch_done_f(void *arg, int status, const int *each, size_t n);

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

/* What a channel is for. A Broker's channel comes from its class; other resources of a backend's
 * own family (a KafkaSink, the consume-only half under a KafkaSource) name the backend themselves.
 * The backend reads `spec` as the kind says: struct ceb_broker_cfg for "Broker" (its spec.config
 * ConfigMap and annotations), else the kind's own settings struct, which the backend defines. */
struct ceb_channel_cfg {
	const char *kind;      /* "Broker", or a kind of the backend's family */
	const char *ns, *name; /* the resource */
	const void *spec;      /* its settings, as above; owned by the configuration */
	size_t max_events;     /* bounds for a backend that keeps events in memory */
	size_t max_bytes;
	const char *state_dir; /* where a backend that keeps data on local disk keeps it (--state-dir) */
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
/* Publish n >= 1 events; takes its own references. Completes through done exactly once. With
 * CEB_CHANNEL_BATCH_ATOMIC, each is NULL and status 0 (all stored) or one failure (none stored).
 * Optional: a backend without it gets ceb_channel_publish_batch()'s event-by-event publish. */
typedef void channel_publish_batch_f(void *ctx, struct ceb_event *const *evs, size_t n,
                                     ceb_batch_done_f *done, void *arg);
typedef int channel_subscribe_f(void *ctx, const struct ceb_sub_cfg *cfg, void **sub);
/* Settle one message handed to `sub`. May be called from any thread, concurrently for the same
 * subscription (dispatchers spread a Trigger's messages over their threads). */
typedef void channel_settle_f(void *ctx, void *sub, void *handle, enum ceb_settle how);
/* Messages stored and not yet settled by every subscription (for drain and metrics). */
typedef size_t channel_pending_f(void *ctx);
/* Shutdown, before destroy: complete every pending publish (stored, or CEB_EUNAVAIL), stop the
 * background threads, and hand no more messages to subscriptions; later publishes complete at once
 * with CEB_EUNAVAIL. Settle still works (the dispatchers give back what they hold). */
typedef void channel_stop_f(void *ctx);
/* Optional (NULL: create refuses nothing that the configuration loader did not): what create would
 * refuse in cfg (a library's own checks of settings), found without starting anything or reaching a
 * server, for `cebroker validate`. 0, or CEB_ECONFIG with one line in errbuf, located
 * (file:line:col: ...) where the setting is. Any thread. */
typedef int channel_check_f(const struct ceb_channel_cfg *cfg, char *errbuf, size_t errlen);

/* Properties of a backend that the core acts on (channel_ops.flags). */
enum {
	/* Survives a restart: what was not settled is handed out again. */
	CEB_CHANNEL_DURABLE = 1 << 0,
	/* publish()/settle() apply the subscription filters (ceb_sub_cfg.filter): the dispatcher
	 * need not. */
	CEB_CHANNEL_PREFILTERS = 1 << 1,
	/* Keeps events in this process's memory: a publisher hands it a compact copy
	 * (ceb_event_clone) rather than the decoder's arena. */
	CEB_CHANNEL_IN_MEMORY = 1 << 2,
	/* publish_batch stores all of a batch or none of it. */
	CEB_CHANNEL_BATCH_ATOMIC = 1 << 3,
	/* A Trigger's subscription is ordered (one in flight, FIFO) unless the Trigger sets a
	 * parallelism (eventing-rabbitmq's default). */
	CEB_CHANNEL_ORDERED_DEFAULT = 1 << 4,
};

/* The operations of one backend. All are required but start and stop, which may be NULL (nothing
 * to start; nothing to stop before destroy). */
struct channel_ops {
	const char *name; /* "memory", "kafka", ... */
	unsigned flags;   /* CEB_CHANNEL_* */
	channel_create_f *create;
	channel_destroy_f *destroy;
	channel_start_f *start;
	channel_publish_f *publish;
	channel_publish_batch_f *publish_batch; /* NULL: event by event */
	channel_subscribe_f *subscribe;
	channel_settle_f *settle;
	channel_pending_f *pending;
	channel_stop_f *stop;
	channel_check_f *check;
	/* Optional (NULL: always): whether the backend's server is reachable now. While it is not,
	 * /readyz answers 503 (publishes answer 503 by themselves). Any thread, cheap. */
	bool (*connected)(void *ctx);
	/* Optional, both or neither (NULL: a channel's subscriptions are fixed once it started, and a
	 * reload that changes them replaces the channel). For a reload, on the main thread:
	 * subscribe_live is subscribe() on a started channel (the subscription gets what is
	 * published from then on); unsubscribe routes nothing more to sub, hands out what it had
	 * queued, and returns how many of its messages are not settled yet: the caller calls it
	 * again until it returns 0, after which sub is gone (no more calls with it). */
	channel_subscribe_f *subscribe_live;
	size_t (*unsubscribe)(void *ctx, void *sub);
	/* Optional (NULL: this backend cannot replay): rewind one subscription so that the events
	 * stored at or after since_ms (wall clock, ms since the epoch) are handed out again; with
	 * since_ms < 0, those from position `offset` on. Already settled events come again; nothing
	 * else changes. 0, or CEB_EINVAL / CEB_EUNAVAIL with one line in errbuf. *first is the
	 * position delivery restarts at, *count the events from there to the end. Any thread. */
	int (*rewind)(void *ctx, void *sub, int64_t since_ms, int64_t offset, uint64_t *first,
	              uint64_t *count, char *errbuf, size_t errlen);
	/* Optional: events that retention deleted before every subscription had settled them (they
	 * were logged when it happened), for /metrics. Any thread. */
	uint64_t (*retention_dropped)(void *ctx);
	/* Optional: the configuration this channel was built for is now the one in force: after
	 * start when the daemon starts, after the swap when a reload built it, never for a build that
	 * a failed reload throws away. What may only be undone once the configuration is certain
	 * (deleting a removed Trigger's state on the server) goes here. Main thread. */
	void (*committed)(void *ctx);
};

/* The backends compiled into this build (see channels/channel_list.h). */
const struct channel_ops *ceb_channel_ops_find(const char *name);
/* The in-process backend, always compiled in (the first line of channels/channel_list.h): what a
 * source without a channel of its own publishes into. */
const struct channel_ops *ceb_channel_ops_default(void);
/* The i-th backend compiled into this build, in channels/channel_list.h's order; NULL past the
 * last. For what a build holds (cebroker_build_info on /metrics). */
const struct channel_ops *ceb_channel_ops_at(size_t i);
/* A Broker class annotation to a backend name: MTChannelBasedBroker -> memory, Kafka -> kafka,
 * RabbitMQBroker -> amqp, NatsJetStreamBroker -> nats; NULL if the class is unknown. */
const char *ceb_channel_for_class(const char *broker_class);
/* A Knative channel kind (a channel template's kind, messaging.knative.dev) to the backend that backs
 * it here: InMemoryChannel -> memory; NULL for one no backend backs (yet). */
const char *ceb_channel_for_kind(const char *channel_kind);

/* A channel instance: ops + ctx. */
struct ceb_channel {
	const struct channel_ops *ops;
	void *ctx;
};

/* Calls through a channel instance, for the optional operations too. A channel whose ops are NULL
 * (never created) is ignored by start, stop and destroy. */
int ceb_channel_create(struct ceb_channel *ch, const struct channel_ops *ops,
                       const struct ceb_channel_cfg *cfg, char *errbuf, size_t errlen);
int ceb_channel_start(struct ceb_channel *ch, char *errbuf, size_t errlen);
void ceb_channel_stop(struct ceb_channel *ch);
void ceb_channel_destroy(struct ceb_channel *ch);
void ceb_channel_committed(struct ceb_channel *ch);
static inline bool ceb_channel_has(const struct ceb_channel *ch, unsigned flag)
{
	return ch->ops && (ch->ops->flags & flag);
}
/* Publish a batch through ch->ops->publish_batch, or, for a backend without one, event by event
 * through publish: done then runs once, after the last event completed, with each event's status
 * (some may be stored and others not). Takes its own references; any thread. */
void ceb_channel_publish_batch(const struct ceb_channel *ch, struct ceb_event *const *evs, size_t n,
                               ceb_batch_done_f *done, void *arg);

#endif
