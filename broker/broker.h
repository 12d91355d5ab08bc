/* The running daemon's objects, built from a loaded configuration: Brokers with their channel,
 * Triggers with their subscription and dispatcher, and the settings every part reads.
 * Built once at start-up on the main thread; read-only afterwards except for atomic counters. */
#ifndef CEB_BROKER_H
#define CEB_BROKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/event.h"
#include "channels/channel.h"

struct ceb_dispatcher;
struct ceb_daemon;

/* Settings from the command line, with safe defaults (ceb_settings_default). */
struct ceb_settings {
	char listen_host[256];
	int listen_port;          /* 0 picks a free port */
	struct ceb_limits limits; /* event decoding limits */
	size_t max_header_block;  /* bytes of request line + headers per connection */
	unsigned max_connections; /* in total */
	unsigned max_conn_per_ip;
	unsigned idle_timeout_s;    /* inactivity */
	unsigned request_timeout_s; /* whole request */
	unsigned ingress_threads;
	unsigned dispatchers;        /* delivery threads */
	size_t max_inflight;         /* per Trigger */
	uint64_t default_timeout_ms; /* per delivery attempt when the Trigger sets none */
	uint64_t drain_timeout_ms;   /* on SIGTERM */
	size_t channel_max_events;   /* memory channel bounds, per Broker */
	size_t channel_max_bytes;
	int max_ttl;       /* knativebrokerttl at first ingress */
	double rate_limit; /* requests per second per client; 0 = no limit */
};

extern const struct ceb_settings ceb_settings_default;

/* Counters shown on /metrics. */
struct ceb_counters {
	atomic_ulong accepted; /* events stored (202) */
	atomic_ulong rejected_4xx;
	atomic_ulong rejected_full;    /* 429 */
	atomic_ulong rejected_unavail; /* 503 */
	atomic_ulong delivered;        /* subscriber accepted */
	atomic_ulong attempts;
	atomic_ulong retries;
	atomic_ulong dead_lettered; /* dead-letter sink accepted */
	atomic_ulong dropped;       /* retries spent and no dead-letter sink */
	atomic_ulong lost;          /* dead-letter sink failed too (memory channel) */
	atomic_ulong replies;       /* reply events published */
	atomic_ulong ttl_exhausted; /* replies dropped by the loop guard */
};

/* What owns a channel: a Broker, or a Kafka endpoint (a KafkaSink takes events at its path like a
 * Broker; a KafkaSource has no path, its channel only feeds its one delivery). */
enum ceb_endpoint {
	CEB_EP_BROKER = 0,
	CEB_EP_KAFKA_SINK,
	CEB_EP_KAFKA_SOURCE,
};

struct ceb_broker {
	const struct ceb_broker_cfg *cfg; /* NULL unless a Broker */
	enum ceb_endpoint kind;
	const char *ns, *name;
	struct ceb_daemon *dmn;
	char path[512];  /* "/<namespace>/<name>"; "" for a KafkaSource */
	char label[300]; /* "broker ns/name", "kafkasink ns/name"... for logs and answers */
	struct ceb_channel ch;
	struct ceb_counters cnt;
	struct ceb_broker *next;
};

/* Where a delivery goes: a URL (a ref to a Broker of this daemon resolves to its ingress URL). */
struct ceb_target {
	char *url;
	bool internal; /* a ref to an endpoint of this daemon: sent with the internal token */
};

/* A delivery: a Trigger of a Broker, or a KafkaSource to its sink (no filter, replies discarded). */
struct ceb_trigger {
	const struct ceb_trigger_cfg *cfg; /* NULL for a KafkaSource */
	const char *ns, *name;
	const struct ceb_filter *filter; /* NULL: everything */
	const struct ceb_delivery *delivery;
	const struct ceb_dest *dest; /* the subscriber or the sink */
	bool ordered;
	bool discard_reply; /* a source: a 200 body is not an event to publish */
	struct ceb_broker *brk;
	struct ceb_dispatcher *dsp;
	void *sub;        /* channel subscription */
	bool prefiltered; /* the channel applied the filter already */
	struct ceb_target subscriber;
	struct ceb_target dls; /* url NULL without a dead-letter sink */
	char label[300];       /* "trigger ns/name", "kafkasource ns/name" */
	struct ceb_counters cnt;
	struct ceb_trigger *next;
};

struct ceb_daemon {
	struct ceb_settings set;
	struct ceb_config *cfg;
	struct ceb_broker *brokers;
	struct ceb_trigger *triggers;
	struct ceb_dispatcher **dsp;
	size_t ndsp;
	struct ceb_ingress *ing;
	struct ceb_ratelimit *rl; /* NULL without --rate-limit */
	int port;                 /* the port actually bound */
	atomic_int draining;      /* SIGTERM seen: ingress answers 503 */
	char token[33];           /* random, for deliveries to ourselves (CEB_INTERNAL_HEADER) */
	atomic_int ready;
	struct ceb_counters cnt; /* daemon-wide */
};

/* Find a Broker by its ingress path "/ns/name" (len bytes). */
struct ceb_broker *ceb_broker_find(struct ceb_daemon *dmn, const char *path, size_t len);

/* Publish an event into a Broker's channel, applying the knativebrokerttl loop guard: an event
 * without the extension gets max_ttl. Takes its own reference. done runs once (maybe before return). */
void ceb_broker_publish(struct ceb_broker *brk, struct ceb_event *ev, ceb_publish_done_f *done,
                        void *arg);

/* The whole daemon: build from a configuration (which it then owns), start, drain, stop. */
int ceb_daemon_create(const struct ceb_settings *set, struct ceb_config *cfg,
                      struct ceb_daemon **out, char *errbuf, size_t errlen);
int ceb_daemon_start(struct ceb_daemon *dmn, char *errbuf, size_t errlen);
struct ceb_buf;

/* What the channels would refuse at create that the configuration loader cannot know (settings a
 * backend library checks), found without starting anything: one line each appended to errs. Returns
 * their number. For `cebroker validate`. */
size_t ceb_daemon_check(const struct ceb_settings *set, const struct ceb_config *cfg,
                        struct ceb_buf *errs);
/* For tests and fuzzers: start the channels only (no listening socket, no delivery threads) and
 * mark the daemon ready, so that requests can be driven through broker/request.h; messages then
 * wait in the dispatchers until ceb_dispatcher_abandon(). */
int ceb_daemon_start_offline(struct ceb_daemon *dmn, char *errbuf, size_t errlen);
/* Events stored and not settled, plus deliveries held by dispatchers. Any thread. */
size_t ceb_daemon_pending(struct ceb_daemon *dmn);
/* SIGTERM: the ingress answers 503 from now on and KafkaSources hand out no more records (what they
 * hold is still delivered; what fails now is left uncommitted for the next start, not retried). */
void ceb_daemon_drain(struct ceb_daemon *dmn);
void ceb_daemon_destroy(struct ceb_daemon *dmn);

/* Write Prometheus text metrics. */
struct ceb_buf;
void ceb_daemon_metrics(struct ceb_daemon *dmn, struct ceb_buf *out);

/* Whether a request header value is this daemon's internal token (NULL: no). */
bool ceb_daemon_is_internal(const struct ceb_daemon *dmn, const char *value);

/* Monotonic milliseconds. */
uint64_t ceb_now_ms(void);

#endif
