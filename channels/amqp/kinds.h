/* What the RabbitMQ family offers the rest of the tree: its backend's ops, its resource kinds
 * (RabbitmqBrokerConfig: a RabbitMQBroker's settings; RabbitmqSource: a queue's messages to a sink),
 * as channels/amqp/kinds.c reads them, and how a connectionSecret becomes a connection. */
#ifndef CEB_AMQP_KINDS_H
#define CEB_AMQP_KINDS_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/config/config.h"
#include "channels/channel.h"

#define CEB_RABBITMQ_SOURCE_KIND        "RabbitmqSource"
#define CEB_RABBITMQ_BROKER_CONFIG_KIND "RabbitmqBrokerConfig"

/* Where a RabbitMQ is and how to log in: what a connectionSecret says, resolved. The caller owns
 * the strings (ceb_amqp_conn_free). password is never logged. */
struct ceb_amqp_conn {
	char *host;
	int port;
	char *user, *password;
	char *vhost;
	bool tls; /* amqps */
	/* amqps: PEM certificates trusted beside the system's (the Secret's key ca.crt), or NULL */
	char *ca_pem;
};

/* rabbitmqClusterReference: only connectionSecret is served (an operator's RabbitmqCluster is not
 * reachable without Kubernetes). */
struct ceb_rabbitmq_cluster_ref {
	struct ceb_secret_ref secret; /* the whole Secret: keys uri, username, password, port */
	const char *resource;         /* "RabbitmqBrokerConfig ns/name", for messages */
	char *resource_buf;
};

/* RabbitmqBrokerConfig (eventing.knative.dev/v1alpha1). */
struct ceb_rabbitmq_broker_config {
	char *ns, *name;
	struct ceb_rabbitmq_cluster_ref cluster;
	bool classic; /* queueType: classic; quorum (the default) when false */
	char *vhost;  /* spec.vhost, or NULL */
	struct ceb_loc loc;
	struct ceb_config_object object; /* the generic view, in ceb_config.objects */
	/* Tests only: connect here rather than where the Secret says (host NULL: the Secret). */
	struct ceb_amqp_conn direct;
};

/* RabbitmqSource (sources.knative.dev/v1alpha1): a queue's messages to a sink. */
struct ceb_rabbitmq_source_cfg {
	char *ns, *name;
	struct ceb_rabbitmq_cluster_ref cluster;
	char *queue;    /* rabbitmqResourcesConfig.queueName */
	char *exchange; /* exchangeName, or NULL when predeclared */
	bool predeclared;
	int parallelism; /* 1..1000, default 1 (FIFO) */
	char *vhost;
	struct ceb_dest sink;
	struct ceb_delivery delivery;
	char **ce_ext_keys, **ce_ext_values;
	size_t nce_ext;
	struct ceb_loc loc;
	struct ceb_source_cfg source; /* the generic view, in ceb_config.sources */
	struct ceb_amqp_conn direct;  /* tests only, as above */
};

/* The connection a cluster reference names, with vhost (NULL: the URI's, else "/"): the Secret's
 * `uri` (amqp:// or amqps:// taken whole; http:// or https:// as eventing-rabbitmq reads it: its host
 * only, with `port` (5672) and amqps for https), `username` and `password` (required with an http
 * uri; they win over the uri's). 0 and *out, or CEB_ECONFIG with a reason in errbuf (located at the
 * reference; never a value). */
int ceb_rabbitmq_conn(const struct ceb_rabbitmq_cluster_ref *ref, const char *vhost,
                      struct ceb_amqp_conn *out, char *errbuf, size_t errlen);
int ceb_amqp_conn_copy(struct ceb_amqp_conn *dst, const struct ceb_amqp_conn *src);
void ceb_amqp_conn_free(struct ceb_amqp_conn *c);

/* The backend (also listed in channels/channel_list.h). ceb_channel_cfg.spec is a struct
 * ceb_broker_cfg for "Broker" (its config_res a struct ceb_rabbitmq_broker_config), a struct
 * ceb_rabbitmq_source_cfg for CEB_RABBITMQ_SOURCE_KIND (consume only). */
extern const struct channel_ops ceb_channel_amqp;

#endif
