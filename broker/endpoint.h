/* The runtime model every part of the daemon reads: the settings, the endpoints (a Broker, a
 * KafkaSink, a source: whatever owns a channel) and the subscriptions on them (a Trigger, a source's
 * delivery), with their counters. Built once at start-up by daemon.c on the main thread; read-only
 * afterwards except for atomic counters and flags. */
#ifndef CEB_ENDPOINT_H
#define CEB_ENDPOINT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/ce/event.h"
#include "broker/clock.h"
#include "broker/config/config.h"
#include "broker/stats.h"
#include "channels/channel.h"
#include "sources/source.h"

/* A request carrying this header with the daemon's token comes from the daemon itself (a delivery
 * to one of its own endpoints): served while not ready or draining, never rate-limited. */
#define CEB_INTERNAL_HEADER "Cebroker-Internal"
/* Sent beside it: which resource of this daemon delivers ("trigger ns/name", "pingsource ns/name",
 * "subscription ns/name"), the identity EventPolicies judge it by (broker/auth/auth.h). */
#define CEB_INTERNAL_SENDER_HEADER "Cebroker-Internal-Sender"

/* Room for a label: "kind namespace/name" of a Kubernetes resource (names are DNS labels of at most
 * 63 characters, kinds a few words). */
#define CEB_LABEL_MAX 300

struct ceb_ingress;
struct ceb_ratelimit;
struct ceb_gen;
struct lane;
struct ceb_dispatcher;
struct ceb_daemon;
struct ceb_auth;
struct ceb_auth_target;

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
	bool delivery_libcurl;       /* every delivery through libcurl, none through delivery/h1.c */
	size_t max_inflight;         /* per Trigger */
	uint64_t default_timeout_ms; /* per delivery attempt when the Trigger sets none */
	uint64_t drain_timeout_ms;   /* on SIGTERM */
	size_t channel_max_events;   /* memory channel bounds, per Broker */
	size_t channel_max_bytes;
	int max_ttl;       /* knativebrokerttl at first ingress */
	double rate_limit; /* requests per second per client; 0 = no limit */
	/* sender authentication: --auth-jwks FILE and --auth-issuer ISS (both or neither) */
	const char *auth_jwks, *auth_issuer;
	char state_dir[1024]; /* where durable channels keep their data (--state-dir) */
	/* --tls-cert, --tls-key: the listener serves HTTPS only (NULL: plain HTTP); a plain listener
	 * beside it only with --listen-plain (listen_plain_host not empty). */
	const char *tls_cert, *tls_key;
	char listen_plain_host[256];
	int listen_plain_port;
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
	atomic_ulong dead_lettered;  /* dead-letter sink accepted */
	atomic_ulong dropped;        /* retries spent and no dead-letter sink */
	atomic_ulong lost;           /* dead-letter sink failed too (memory channel) */
	atomic_ulong replies;        /* reply events published */
	atomic_ulong ttl_exhausted;  /* replies dropped by the loop guard */
	atomic_ulong left_in_source; /* durable source: refused to the last retry, no DLS, kept */
	/* 429 to a client over --rate-limit (rejected_full is the channel's); HTTP requests written
	 * to subscribers (at most one per attempt, none when no connection was made). */
	atomic_ulong rejected_rate_limited;
	atomic_ulong requests;
};

/* What owns a channel: a Broker, an endpoint of a backend's own kind (a KafkaSink takes events at its
 * path like a Broker), or a source (no path; its channel only feeds its one delivery). */
struct ceb_endpoint {
	const struct ceb_broker_cfg *cfg;    /* NULL unless a Broker */
	const struct ceb_endpoint_cfg *ecfg; /* an endpoint of another kind: its resource */
	const char *kind;                    /* lower case, for logs and metric labels: "broker" */
	const char *ns, *name;
	struct ceb_daemon *dmn;
	char path[512]; /* "/<namespace>/<name>"; "" for a source (but one that takes requests) */
	char label
	        [CEB_LABEL_MAX]; /* "broker ns/name", "kafkasink ns/name"... for logs and answers */
	struct ceb_channel ch;
	const struct source_ops *src; /* a source: its kind's ops, instance and environment */
	void *src_ctx;
	struct ceb_source_env src_env;
	bool src_channel; /* ch is the source's own (it destroys it), not the daemon's */
	/* A source that takes requests at its path (source_ops.admit): where their events are stored,
	 * its sink when that is an endpoint of this daemon (a Broker), else this endpoint itself. */
	struct ceb_endpoint *store;
	char *kind_buf; /* kind, when made from a resource kind */
	struct ceb_counters cnt;
	struct ceb_endpoint *next;
	/* Reload (broker/reload.c), on the main thread only: the configuration it was built from, its
	 * fingerprint with its subscriptions' (equal: kept untouched), whether its channel was started
	 * and stopped, and, once retired, its drain. */
	struct ceb_gen *gen;
	uint64_t fp, own_fp; /* with its subscriptions, and alone (a Broker) */
	bool started, stopped;
	struct ceb_endpoint *rnext; /* the retired list */
	/* requests routed to it and not ended (they may still publish into it, or into store):
	   a retired endpoint stops only once there are none */
	atomic_ulong refs;
	uint64_t retired_at;        /* ms */
	bool drain_warned;
	/* With sender authentication: its audience and EventPolicies (broker/auth/auth.h), else NULL */
	const struct ceb_auth_target *auth;
	struct ceb_stats st; /* the ingress's answers (a Broker's mt_broker_ingress_* series) */
};

/* Where a delivery goes: a URL (a ref to a Broker of this daemon resolves to its ingress URL). */
struct ceb_target {
	char *url;
	bool internal; /* a ref to an endpoint of this daemon: sent with the internal token */
	/* The Destination's CACerts followed by the system's CA bundle: what an https URL's
	 * certificate must chain to (NULL without CACerts: the system's store alone). */
	char *ca_blob;
	size_t ca_len;
};

/* A delivery: a Trigger of a Broker, or a source to its sink (no filter, replies discarded). */
struct ceb_subscription {
	const struct ceb_trigger_cfg *cfg; /* NULL for a source */
	const char *ns, *name;
	const struct ceb_filter *filter; /* NULL: everything */
	const struct ceb_delivery *delivery;
	const struct ceb_dest *dest; /* the subscriber or the sink */
	bool ordered;
	unsigned max_inflight; /* a source's own limit; 0: the Trigger's or the daemon's */
	bool source; /* a source's delivery: a 200 body is not an event to publish */
	struct ceb_endpoint *brk;
	struct ceb_dispatcher *dsp;
	void *sub;        /* channel subscription */
	bool prefiltered; /* the channel applied the filter already */
	struct ceb_target subscriber;
	struct ceb_target dls; /* url NULL without a dead-letter sink */
	/* A Subscription (of a Channel, a Sequence, a Parallel): its subscriber's reply is sent on
	 * to reply_dest (reply.url NULL: dropped), not published into the endpoint. */
	bool flow;
	const struct ceb_dest *reply_dest;
	struct ceb_target reply;
	char label[CEB_LABEL_MAX]; /* "trigger ns/name", "kafkasource ns/name" */
	struct ceb_counters cnt;
	struct ceb_subscription *next;
	/* Its share of each dispatcher (ceb_dispatcher_attach: one per dispatcher, each touched only
	 * by its thread), the messages the dispatchers hold for it (a retired one is freed at 0),
	 * its fingerprint, and the retired list. */
	struct lane *lanes;
	atomic_size_t held;
	uint64_t fp;
	struct ceb_subscription *rnext;
	/* A Trigger a reload added to a running Broker (which keeps its own configuration): the
	 * configuration it was built from; and one a reload removed from a running Broker: draining
	 * (channel_ops.unsubscribe). */
	struct ceb_gen *gen;
	bool detached;
	struct ceb_stats st; /* the subscriber's answers, in-flight and queued (a Trigger's) */
};

struct ceb_daemon {
	struct ceb_settings set;
	struct ceb_config *cfg;
	struct ceb_endpoint *brokers;
	struct ceb_subscription *triggers;
	struct ceb_dispatcher **dsp;
	size_t ndsp;
	struct ceb_ingress *ing;
	struct ceb_ratelimit *rl; /* NULL without --rate-limit */
	int port;                 /* the port actually bound */
	atomic_int draining;      /* SIGTERM seen: ingress answers 503 */
	char token[33];           /* random, for deliveries to ourselves (CEB_INTERNAL_HEADER) */
	atomic_int ready;
	struct ceb_counters cnt; /* daemon-wide */
	/* Reload. The endpoint and subscription lists are changed only by the main thread, in place
	 * (a pointer store replaces or unlinks one, so that a reader always finds every path that
	 * stays); a reader (an ingress request's routing, /metrics, /readyz) holds a short read
	 * section (ceb_daemon_read_begin/end) and, to keep an endpoint beyond it, a reference
	 * (ceb_endpoint.refs); what a reload unlinked is stopped and freed only after every reader
	 * that could see it left and no reference is held. */
	atomic_uint rcu_epoch;
	atomic_ulong rcu_readers[2];
	struct ceb_endpoint *retired; /* unlinked, draining */
	struct ceb_subscription *retired_subs;
	struct ceb_gen *gen; /* the configuration in force (cfg is its) */
	size_t nsubs_made;   /* spreads subscriptions over the dispatchers */
	atomic_ulong reloads_ok, reloads_failed;
	atomic_llong reload_last_ok; /* unix time in seconds of the last success; 0: none */
	struct ceb_auth *auth;   /* sender authentication (--auth-jwks), or NULL */
	/* the targets of each ceb_auth_attach (broker/reload.c): the one in force first, then
	 * those a reload replaced, freed once no request can still hold one */
	struct ceb_auth_hold *auth_held;
	struct ceb_stats st;     /* refusals of requests that named no endpoint (404...) */
	/* --listen-plain's port as bound; with TLS, the loopback plain listener that takes the
	 * daemon's deliveries to itself (0: none). */
	int plain_port, internal_port;
};

/* A reader of the endpoint lists (routing a request, /metrics, /readyz): keep it short, never
 * across waiting for a client. Returns what ceb_daemon_read_end takes. Any thread. */
unsigned ceb_daemon_read_begin(struct ceb_daemon *dmn);
void ceb_daemon_read_end(struct ceb_daemon *dmn, unsigned token);

/* The endpoint's sender-authentication target as a request reads it: once, when routed (a reload
 * replaces it with one store). */
static inline const struct ceb_auth_target *ceb_endpoint_auth(const struct ceb_endpoint *ep)
{
	return __atomic_load_n(&ep->auth, __ATOMIC_ACQUIRE);
}

/* Find a Broker by its ingress path "/ns/name" (len bytes). */
struct ceb_endpoint *ceb_endpoint_find(struct ceb_daemon *dmn, const char *path, size_t len);

/* Publish an event into a Broker's channel, applying the knativebrokerttl loop guard: an event
 * without the extension gets max_ttl. Takes its own reference. done runs once (maybe before return). */
void ceb_endpoint_publish(struct ceb_endpoint *brk, struct ceb_event *ev, ceb_publish_done_f *done,
                          void *arg);
/* The same for the n events of one request: all or nothing where the channel is
 * CEB_CHANNEL_BATCH_ATOMIC, else event by event, with each event's status (see ceb_batch_done_f).
 * done runs once (maybe before return). */
void ceb_endpoint_publish_batch(struct ceb_endpoint *brk, struct ceb_event *const *evs, size_t n,
                                ceb_batch_done_f *done, void *arg);

/* Whether a request header value is this daemon's internal token (NULL: no). */
bool ceb_daemon_is_internal(const struct ceb_daemon *dmn, const char *value);

#endif
