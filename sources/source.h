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

#include <stdbool.h>
#include <stddef.h>

#include "broker/ce/event.h"
#include "broker/ce/http_binding.h"
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

/* A plain HTTP request to a source that takes them (see source_ops.admit), as the ingress parsed it;
 * everything is borrowed for the call. */
struct ceb_raw_request {
	const char *method;
	const char *path;                      /* decoded, without the query: "/<ns>/<name>" */
	const struct ceb_http_header *headers; /* the header fields, in the order received */
	size_t nheaders;
	const struct ceb_http_header *query; /* the query's parameters, decoded, in order */
	size_t nquery;
	const char *body; /* the whole body (to_event only; "" when empty) */
	size_t body_len;
	bool internal; /* a delivery of this daemon (a Trigger's ref to the source): trusted */
};

/* Headers a source adds to the answer of a request, at most this many. */
#define CEB_RAW_ANSWER_HEADERS 6

/* What a source says about a request: a status to answer at once (0: go on), a reason for the
 * client, and headers every answer of the request gets (CORS), whose strings must live until the
 * request ends (the source's settings, or the request's own header values). */
struct ceb_raw_answer {
	int status;
	char reason[256];
	struct ceb_http_header headers[CEB_RAW_ANSWER_HEADERS];
	size_t nheaders;
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
	/* Optional, both or neither: the source takes plain HTTP requests (a webhook) at
	 * /<namespace>/<name> of the daemon's listener, through the ingress's request logic (its
	 * limits, drain and rate limit apply). admit runs once the header block is in: it answers at
	 * once by setting ans->status (405, 401, a CORS preflight), or leaves it 0 to read the body.
	 * to_event runs once the body is in: 0 and a new event in *ev (a new reference), or a status
	 * in ans (4xx) and no event. The event is stored before the request is answered 202: in the
	 * channel of the sink when that is an endpoint of this daemon (a Broker), else in the
	 * source's own. Both run on the ingress's threads, concurrently, between create and
	 * destroy. */
	void (*admit)(void *ctx, const struct ceb_raw_request *rq, struct ceb_raw_answer *ans);
	int (*to_event)(void *ctx, const struct ceb_raw_request *rq, struct ceb_event **ev,
	                struct ceb_raw_answer *ans);
	/* Frees everything, stopping first if needed; accepts NULL and a half-built ctx. */
	void (*destroy)(void *ctx);
	/* Optional: what create would refuse without reaching a server (`validate`): 0, or a
	 * negative CEB_E* with a reason in errbuf. */
	int (*check)(const struct ceb_source_cfg *cfg, char *errbuf, size_t errlen);
};

/* The source kinds compiled into this build (sources/source_list.h), or NULL. */
const struct source_ops *ceb_source_ops_find(const char *kind);

#endif
