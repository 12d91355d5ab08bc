/* What the Kafka family offers the rest of the tree: its backend's ops, its resource kinds
 * (KafkaSource, KafkaSink: their settings as channels/kafka/kinds.c reads them) whose names select
 * the channel's half (a KafkaSink: produce only; a KafkaSource: consume only), and a Kafka Broker's
 * ConfigMap as read at load. */
#ifndef CEB_KAFKA_KINDS_H
#define CEB_KAFKA_KINDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config/config.h"
#include "channels/channel.h"

struct ceb_config_res;
struct ceb_yaml_node;

#define CEB_KAFKA_SOURCE_KIND  "KafkaSource"
#define CEB_KAFKA_SINK_KIND    "KafkaSink"
#define CEB_KAFKA_CHANNEL_KIND "KafkaChannel"

/* Kafka credentials from Secrets, as Knative's eventing-kafka-broker takes them; channels/kafka/
 * auth.c reads them and maps them to librdkafka's properties. */
struct ceb_kafka_auth {
	/* A whole Secret (a KafkaSink's spec.auth.secret.ref.name, a Broker ConfigMap's
	 * auth.secret.ref.name) with Knative's keys: protocol, sasl.mechanism, user, password,
	 * ca.crt, user.crt, user.key. */
	bool whole;
	struct ceb_secret_ref secret;
	/* A KafkaSource's spec.net: sasl.{enable, user, password, type} and tls.{enable, cert, key,
	 * caCert}, each value a secretKeyRef (unset: key NULL). */
	bool sasl, tls;
	struct ceb_secret_ref user, password, type, cert, key, ca;
};

/* At most this many librdkafka properties come from a ceb_kafka_auth. */
#define CEB_KAFKA_AUTH_PROPS 8

struct ceb_kafka_prop {
	const char *name, *value;
};

/* The librdkafka properties a says (security.protocol, sasl.mechanisms, sasl.username,
 * sasl.password, ssl.ca.pem, ssl.certificate.pem, ssl.key.pem: PEM in memory, no files) into out
 * (room for CEB_KAFKA_AUTH_PROPS), *n of them; values point into the Secrets. 0, or CEB_ECONFIG
 * with "file:line:col: Secret ns/name: data.protocol: ..." in errbuf. After the load. */
int ceb_kafka_auth_props(const struct ceb_kafka_auth *a, struct ceb_kafka_prop *out, size_t *n,
                         char *errbuf, size_t errlen);
/* Read a KafkaSource's spec.net into a (its secretKeyRefs are checked once every file is loaded). */
void ceb_kafka_auth_parse_net(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                              struct ceb_kafka_auth *a);
/* Read a KafkaSink's spec.auth into a. */
void ceb_kafka_auth_parse_sink(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                               struct ceb_kafka_auth *a);
/* A Broker ConfigMap's auth.secret.ref.name (value at `at`) into a; once every file is loaded. */
void ceb_kafka_auth_broker_secret(struct ceb_config_res *r, const char *ns, const char *name,
                                  const struct ceb_loc *at, const char *path,
                                  struct ceb_kafka_auth *a);
/* Frees what a owns (the names of its references). */
void ceb_kafka_auth_free(struct ceb_kafka_auth *a);

/* A Kafka Broker's ConfigMap, as Knative's eventing-kafka-broker reads it (checked at load, so that
 * `validate` finds what `run` would). Strings point into the ConfigMap. */
struct ceb_kafka_broker_cfg {
	const char *bootstrap; /* bootstrap.servers, required */
	struct ceb_loc bootstrap_at;
	int partitions;             /* default.topic.partitions; 10 */
	int replication;            /* default.topic.replication.factor; 1 (-1: the cluster's) */
	int confirm_ms;             /* cebroker.confirm.timeout.ms; 10000 */
	int start_ms;               /* cebroker.start.timeout.ms; 30000 */
	const char *external_topic; /* external.topic, or NULL (the Broker annotation wins) */
	struct ceb_config_kv *topic_cfg; /* default.topic.config.<name>: settings of a new topic */
	size_t ntopic_cfg;
	/* librdkafka properties, in ConfigMap order: security.protocol, sasl.*, ssl.*,
	 * enable.ssl.certificate.verification, librdkafka.<property> */
	struct ceb_config_kv *client_cfg;
	size_t nclient_cfg;
	struct ceb_kafka_auth auth; /* auth.secret.ref.name */
};

/* How a KafkaSource turns a record key into the `key` extension (the label
 * kafkasources.sources.knative.dev/key-type). */
enum ceb_key_type {
	CEB_KEY_STRING = 0, /* UTF-8 text (the default) */
	CEB_KEY_INT,        /* 4 or 8 bytes, big-endian signed */
	CEB_KEY_FLOAT,      /* 4 or 8 bytes, big-endian IEEE 754 */
	CEB_KEY_BYTES       /* any bytes, as base64 (byte-array) */
};

/* KafkaSource (sources.knative.dev/v1 or v1beta1): records of existing topics to a sink. */
struct ceb_kafka_source_cfg {
	char *ns, *name;
	char *bootstrap; /* spec.bootstrapServers joined with ',' */
	char **topics;   /* spec.topics, at least one */
	size_t ntopics;
	char *group;   /* spec.consumerGroup; default "knative-kafka-source-<ns>-<name>" */
	bool earliest; /* spec.initialOffset: earliest; latest (the default) when false */
	bool ordered;  /* spec.ordering: ordered (the default) or unordered */
	enum ceb_key_type key_type;
	struct ceb_dest sink;         /* spec.sink: uri, or ref to a Broker or KafkaSink here */
	struct ceb_delivery delivery; /* spec.delivery */
	char **ce_ext_keys, **ce_ext_values; /* spec.ceOverrides.extensions: set on every event */
	size_t nce_ext;
	char **annot_keys, **annot_values;
	size_t nannot;
	struct ceb_loc loc;
	struct ceb_kafka_auth auth;   /* spec.net */
	struct ceb_source_cfg source; /* the generic view, in ceb_config.sources */
};

/* KafkaSink (eventing.knative.dev/v1alpha1): events posted to /<ns>/<name> stored in a topic. */
struct ceb_kafka_sink_cfg {
	char *ns, *name;
	char *topic;     /* spec.topic */
	char *bootstrap; /* spec.bootstrapServers joined with ',' */
	int partitions;  /* spec.numPartitions; 0 when unset: the topic must exist */
	int replication; /* spec.replicationFactor; 0 when unset */
	bool structured; /* spec.contentMode: structured; binary (the default) when false */
	char **annot_keys, **annot_values;
	size_t nannot;
	struct ceb_loc loc;
	struct ceb_kafka_auth auth;       /* spec.auth.secret.ref */
	struct ceb_endpoint_cfg endpoint; /* the generic view, in ceb_config.endpoints */
};

/* KafkaChannel (messaging.knative.dev/v1beta1, v1): its own spec fields, from its resource or a
 * channelTemplate; the cluster's settings come from ConfigMap knative-eventing/kafka-channel-config
 * (the keys of a Kafka Broker's ConfigMap), as eventing-kafka-broker reads them. Its channel
 * (ceb_channel_cfg.kind CEB_KAFKA_CHANNEL_KIND) gets the struct ceb_msg_channel as spec, whose
 * backend_spec is this. */
struct ceb_kafka_channel_cfg {
	int partitions;                       /* spec.numPartitions; 1 */
	int replication;                      /* spec.replicationFactor; 1 */
	uint64_t retention_ms;                /* spec.retentionDuration; PT168H */
	const struct ceb_configmap *settings; /* kafka-channel-config, read (its ->backend) */
};

/* The backend (also listed in channels/channel_list.h). ceb_channel_cfg.spec is a struct
 * ceb_kafka_source_cfg for CEB_KAFKA_SOURCE_KIND, a struct ceb_kafka_sink_cfg for
 * CEB_KAFKA_SINK_KIND, a struct ceb_broker_cfg for "Broker". */
extern const struct channel_ops ceb_channel_kafka;

#endif
