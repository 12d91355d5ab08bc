/* What the NATS family offers the rest of the tree: its backend's ops, the settings of a
 * NatsJetStreamBroker (its spec.config ConfigMap as read at load, and the annotation
 * natsjetstream.eventing.knative.dev/config) and the NatsSource kind (sources.cebroker.dev). */
#ifndef CEB_NATS_KINDS_H
#define CEB_NATS_KINDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config/config.h"
#include "channels/channel.h"

#define CEB_NATS_SOURCE_KIND  "NatsSource"
#define CEB_NATS_CHANNEL_KIND "NatsJetStreamChannel"
#define CEB_NATS_DEFAULT_URL  "nats://127.0.0.1:4222"
#define CEB_NATS_CONFIG_ANNOT "natsjetstream.eventing.knative.dev/config"

/* The connection, as eventing-natss's config-nats ConfigMap spells it (key eventing-nats). */
struct ceb_nats_conn {
	const char *url;    /* url; CEB_NATS_DEFAULT_URL */
	const char *ca_pem; /* tls.caBundle (PEM), or the ca.crt of tls.secret.name; or NULL */
	/* auth.tls.secret.name: a client certificate (tls.crt, tls.key), or NULL */
	const char *cert_pem, *key_pem;
	/* auth.credentialFile.secret: the user JWT and the nkey seed of a NATS creds file, or
	 * NULL; handed to libnats through callbacks (its creds reader takes only files) */
	const char *jwt, *seed;
	bool retry_on_failed_connect;
	int max_reconnects;    /* connOpts.maxReconnects; -1 (for ever) */
	int reconnect_wait_ms; /* connOpts.reconnectWaitMilliseconds; 1000 */
	int jitter_ms, jitter_tls_ms;
};

/* Stream and consumer settings, as eventing-natss's broker config shapes them. */
struct ceb_nats_js {
	int retention;                           /* 0 Limits (default), 1 Interest, 2 WorkQueue */
	int storage;                             /* 0 File (default), 1 Memory */
	int replicas;                            /* 1 */
	int64_t max_age_ms, max_bytes, max_msgs; /* 0: unlimited */
	int64_t dup_window_ms;                   /* 0: the server's (2 min) */
	int64_t ack_wait_ms;                     /* consumer.ackWait; 30 s */
	int64_t max_ack_pending;                 /* consumer.maxAckPending; 1000 */
	int64_t nak_delay_ms; /* consumer.nakDelay (cebroker's): first redelivery delay; 1 s */
};

/* A NatsJetStreamBroker's ConfigMap as the loader read it (cm->backend). */
struct ceb_nats_broker_cfg {
	struct ceb_nats_conn conn;
	struct ceb_nats_js js;
};

void ceb_nats_conn_defaults(struct ceb_nats_conn *c);
void ceb_nats_js_defaults(struct ceb_nats_js *js);

/* The annotation natsjetstream.eventing.knative.dev/config (JSON or YAML: {stream: {...},
 * consumer: {...}}) over *js. 0, or CEB_ECONFIG with one line in errbuf located at the Broker. */
int ceb_nats_js_annotation(const char *text, const struct ceb_loc *at, const char *who,
                           struct ceb_nats_js *js, char *errbuf, size_t errlen);

enum ceb_nats_deliver {
	CEB_NATS_DELIVER_ALL = 0,
	CEB_NATS_DELIVER_NEW,
	CEB_NATS_DELIVER_LAST,
	CEB_NATS_DELIVER_SEQ,
	CEB_NATS_DELIVER_TIME,
};

/* NatsSource (sources.cebroker.dev/v1alpha1): a core NATS subscription (at most once) or, with a
 * jetstream block, a durable JetStream consumer (at least once). */
struct ceb_nats_source_cfg {
	char *ns, *name;
	char *url, *subject, *queue;
	bool jetstream;
	char *stream, *consumer;
	enum ceb_nats_deliver deliver;
	uint64_t start_seq;
	int64_t start_time_ns;
	int64_t ack_wait_ms;
	struct ceb_dest sink;
	struct ceb_delivery delivery;
	char **ce_ext_keys, **ce_ext_values;
	size_t nce_ext;
	struct ceb_loc loc;
	struct ceb_source_cfg source;
};

/* NatsJetStreamChannel (messaging.knative.dev/v1alpha1), from its resource or a channelTemplate:
 * spec.stream (overrideName, config) and spec.consumerConfigTemplate, as eventing-natss spells them;
 * the connection from ConfigMap config-nats (key eventing-nats) of its namespace, else of
 * knative-eventing, else
 * nats://127.0.0.1:4222. Its channel gets the struct ceb_msg_channel as spec, whose backend_spec is
 * this. */
struct ceb_nats_channel_cfg {
	char *stream; /* spec.stream.overrideName, or NULL: KN_<NS>__<NAME> */
	struct ceb_nats_js js;
	const struct ceb_configmap *settings; /* config-nats, read (its ->backend), or NULL */
};

/* The backend (channels/channel_list.h). ceb_channel_cfg.spec is a struct ceb_broker_cfg for
 * "Broker", a struct ceb_nats_source_cfg for CEB_NATS_SOURCE_KIND, a struct ceb_msg_channel for
 * CEB_NATS_CHANNEL_KIND. */
extern const struct channel_ops ceb_channel_nats;

#endif
