/* Knative-style YAML resources (Broker, Trigger, ConfigMap...) loaded from files and directories,
 * checked strictly, with every error located as file:line:col and the resource it belongs to.
 * A loaded configuration is immutable; the daemon builds its runtime objects from it. */
#ifndef CEB_CONFIG_H
#define CEB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/buf.h"
#include "filters/filter.h"

/* Where a resource or a field was declared. file points into the config (owned by it). */
struct ceb_loc {
	const char *file;
	int line, col; /* 1-based */
};

enum ceb_backoff {
	CEB_BACKOFF_EXPONENTIAL = 0,
	CEB_BACKOFF_LINEAR
};
enum ceb_format {
	CEB_FORMAT_BINARY = 0,
	CEB_FORMAT_JSON
};

/* A destination: spec.subscriber, deadLetterSink, a source's sink. uri is where to deliver: the
 * absolute http(s) URI given, or the address resolved from a ref to something this daemon does not
 * serve (a Service: from the address table, else its cluster DNS name). uri is NULL for a ref to a
 * Broker or KafkaSink of this daemon (ref_kind "Broker" or "KafkaSink"): its own ingress. */
struct ceb_dest {
	char *uri;      /* absolute http(s) URI, or NULL for a ref to this daemon's own endpoint */
	char *ref_kind; /* the ref's kind when given by ref, else NULL */
	char *ref_api;  /* its apiVersion */
	char *ref_ns;   /* namespace, defaulted to the referring resource's */
	char *ref_name;
	char *ca_certs; /* CACerts: PEM the subscriber's certificate must chain to, or NULL */
	char *audience; /* OIDC audience, or NULL (kept for when OIDC is supported) */
	struct ceb_loc loc;
};

/* Knative's DeliverySpec. A Trigger that sets any field replaces its Broker's delivery as a whole. */
struct ceb_delivery {
	bool set;                        /* any field given */
	int retry;                       /* retries after the first attempt; 0 when unset */
	enum ceb_backoff backoff_policy; /* exponential when unset */
	uint64_t backoff_delay_ms;       /* ISO 8601 backoffDelay; 0 when unset */
	uint64_t timeout_ms;        /* per attempt; 0 when unset (the daemon default applies) */
	int64_t retry_after_max_ms; /* -1 when unset (Retry-After ignored); 0 = PT0S = ignored too */
	bool has_dls;
	struct ceb_dest dls;    /* deadLetterSink */
	enum ceb_format format; /* `format: json` sends structured mode */
	/* NULL: Knative's delivery rule (5xx, 404, 408, 409, 429 and network errors are retried).
	 * Else the only statuses retried, 0-terminated, network errors still retried: the rule of a
	 * source adapter built on the CloudEvents SDK (PingSource's). Points to static data. */
	const int *retry_statuses;
};

struct ceb_yaml_origin;
struct ceb_channel_template;
struct ceb_broker_config_reader;

/* A setting read from a ConfigMap key: pointers into the ConfigMap, which owns them. */
struct ceb_config_kv {
	/* the setting: the key, or what follows a prefix such as librdkafka. */
	const char *name;
	const char *value;
	const char *key;   /* the ConfigMap key, for messages */
	struct ceb_loc at; /* where its value is */
};

struct ceb_configmap {
	char *ns, *name;
	size_t n;
	char **keys, **values; /* data: n pairs */
	/* where each value is (YAML inside a value is read from there) */
	struct ceb_yaml_origin *at;
	struct ceb_loc loc;
	/* read as a Broker's settings by its channel backend's reader (a Kafka Broker's), or NULL */
	void *backend;
	const struct ceb_broker_config_reader *backend_reader; /* which one, to free it */
	/* read as an MTChannelBasedBroker's channel template (the loader's), or NULL */
	struct ceb_channel_template *channel_tpl;
	struct ceb_configmap *next;
};

/* A Secret (v1): data (base64, decoded here) and stringData (which wins for a key in both, as in
 * Kubernetes). Values are bytes, NUL-terminated for convenience; they are never written to a log
 * line, a message or /metrics, and are wiped when the configuration is freed. */
struct ceb_secret {
	char *ns, *name;
	size_t n;
	char **keys;
	char **values;
	size_t *lens;
	struct ceb_loc loc;
	struct ceb_secret *next;
};

/* A value taken from a Secret: a Kubernetes secretKeyRef ({name, key, optional}), or a whole Secret
 * (key NULL) such as a RabbitmqBrokerConfig's connectionSecret. Lives in a kind's own struct;
 * registered with ceb_config_secret_ref and filled once every file is loaded: a missing Secret or
 * key is an error at `at` unless optional. secret and value then point into the configuration's
 * Secret, valid as long as the configuration. */
struct ceb_secret_ref {
	char *ns, *name, *key;
	bool optional;
	const struct ceb_secret *secret; /* NULL: not resolved, or optional and absent */
	const char *value;               /* the key's value (NUL-terminated), or NULL */
	size_t len;
	struct ceb_loc at;
};

struct ceb_broker_cfg {
	char *ns, *name;
	/* eventing.knative.dev/broker.class, else config-br-defaults', else "MTChannelBasedBroker" */
	char *broker_class;
	/* The channel backend that stores its events ("memory", "kafka"...): the class's, or for
	 * MTChannelBasedBroker its ConfigMap's channel-template-spec (InMemoryChannel: memory).
	 * Compiled into this build (checked at load). */
	const char *channel;
	/* spec.config (else config-br-defaults') resolved, or NULL (also for Knative's own
	 * knative-eventing/config-br-default-channel when not given: InMemoryChannel) */
	const struct ceb_configmap *config;
	/* An MTChannelBasedBroker whose channel template names a backend's kind (KafkaChannel):
	 * the channel Knative makes for it, <name>-kne-trigger; else NULL */
	struct ceb_msg_channel *channel_res;
	struct ceb_delivery delivery; /* spec.delivery, else config-br-defaults' */
	/* spec.config naming a kind other than ConfigMap that a backend's reader takes (a
	 * RabbitmqBrokerConfig): its kind and the kind's own struct, resolved; else NULL */
	const char *config_res_kind;
	const void *config_res;
	char **annot_keys, **annot_values;
	size_t nannot; /* metadata.annotations */
	struct ceb_loc loc;
	struct ceb_broker_cfg *next;
};

struct ceb_trigger_cfg {
	char *ns, *name;
	char *broker;                            /* spec.broker */
	const struct ceb_broker_cfg *broker_cfg; /* resolved */
	struct ceb_filter
	        *filter; /* compiled from spec.filters, else spec.filter.attributes, else true */
	struct ceb_dest subscriber;
	struct ceb_delivery delivery; /* effective: the Trigger's own if set, else the Broker's */
	bool ordered;                 /* kafka.eventing.knative.dev/delivery.order: ordered */
	/* rabbitmq.eventing.knative.dev/parallelism (1..1000): deliveries in flight, 1 = ordered;
	 * 0 when not given */
	int parallelism;
	char **annot_keys, **annot_values;
	size_t nannot;
	struct ceb_loc loc;
	struct ceb_trigger_cfg *next;
};

/* What the core reads of every source (Knative's SourceSpec: sink, ceOverrides; with the source's
 * delivery and ordering), whatever its kind; sources/source.h builds the source from it. The
 * pointers go into the kind's own settings (`own`), which hold the values. */
struct ceb_source_cfg {
	const char *kind; /* "KafkaSource" */
	const char *ns, *name;
	const struct ceb_dest *sink;
	const struct ceb_delivery *delivery; /* NULL: one attempt, no dead-letter sink */
	char *const *ce_ext_keys, *const *ce_ext_values; /* ceOverrides.extensions */
	size_t nce_ext;
	bool ordered;                /* one delivery in flight per partition key */
	unsigned max_inflight;       /* deliveries in flight (a RabbitmqSource's parallelism); 0:
	                              * the daemon's --max-inflight */
	const void *own;             /* the kind's own settings */
	void (*own_free)(void *own); /* frees them with the configuration */
	struct ceb_loc loc;
	struct ceb_source_cfg *next;
};

/* A resource other than a Broker that takes events at /<ns>/<name> into a channel of a backend's
 * own kind (a KafkaSink): the daemon creates that backend's channel with the kind and `own`. */
struct ceb_endpoint_cfg {
	const char *kind;    /* "KafkaSink" */
	const char *backend; /* "kafka": the channel backend that serves the kind */
	const char *ns, *name;
	/* the last segment of its path when not its name (a Sequence's first channel takes events
	 * at the Sequence's address), else NULL */
	const char *address;
	/* "Sequence ns/name" for a channel a flow made (the flow's address is its first channel's
	 * `address`), else NULL */
	const char *owner;
	/* the kind its backend is created with when not kind (a Channel backed by a KafkaChannel:
	 * "KafkaChannel", its spec then the struct ceb_msg_channel), else NULL */
	const char *channel_kind;
	const void *own;             /* the kind's own settings, read by the backend */
	void (*own_free)(void *own); /* frees them with the configuration */
	struct ceb_loc loc;
	struct ceb_endpoint_cfg *next;
};

/* A resource that is neither a source nor an endpoint, kept in the kind's own struct (a
 * RabbitmqBrokerConfig, which Brokers name in spec.config). */
struct ceb_config_object {
	const char *kind, *ns, *name;
	void *own;
	void (*own_free)(void *own); /* frees it with the configuration */
	struct ceb_config_object *next;
};

/* A channel of Knative's messaging: an InMemoryChannel, a Channel (backed by its template's kind),
 * or one a Sequence or Parallel is made of. It is an endpoint (ep, in cfg->endpoints, with own
 * pointing here): it takes events at its address into a channel of its backend, and its
 * Subscriptions deliver them. */
struct ceb_msg_channel {
	struct ceb_endpoint_cfg ep;
	char *kind, *ns, *name, *address; /* what ep points to */
	/* The channel kind that backs it (a Channel's or a flow's template, else Knative's default
	 * channel) and its apiVersion; filled once every file is loaded. */
	char *backing_api, *backing_kind;
	struct ceb_loc template_at;   /* where the template's kind is (line 0: none given) */
	struct ceb_delivery delivery; /* spec.delivery: for its Subscriptions that give none */
	char *owner;                  /* "Sequence ns/name" when a flow made it, else NULL */
	/* where errors about its settings go (a Broker's channel: at its spec.config), and the
	 * field they name there ("kind" for a channel's own resource) */
	const char *at_path;
	/* what the backend of its kind read (a KafkaChannel's numPartitions...), or NULL */
	void *backend_spec;
	void (*backend_spec_free)(void *spec);
};

/* A Subscription, or one a Sequence or Parallel is made of: a channel's events to a subscriber,
 * whose replies go to `reply` (none: dropped). */
struct ceb_subscription_cfg {
	char *ns, *name;
	char *channel_api, *channel_kind, *channel_name; /* spec.channel */
	struct ceb_loc channel_at;
	const struct ceb_msg_channel *channel; /* resolved once every file is loaded */
	struct ceb_dest subscriber;
	bool has_reply;
	struct ceb_dest reply;
	/* its own (as a whole), else its channel's once every file is loaded */
	struct ceb_delivery delivery;
	char *owner; /* "Sequence ns/name" when a flow made it, else NULL */
	struct ceb_loc loc;
	struct ceb_subscription_cfg *next;
};

/* Something a user should know that is no error, one line each: a document skipped, what a ref
 * resolved to, a warning. "file:line:col: Kind ns/name: ..." ("warning: " after the position for
 * warnings). */
struct ceb_config_note {
	bool warning;
	char *text; /* no newline */
};

/* A resource's document in canonical form (broker/config/canon.c): what a reload compares. */
struct ceb_config_doc {
	const char *file;  /* one of the configuration's files */
	int first, last;   /* the lines it spans */
	char *kind, *ns, *name;
	char *canon;
	size_t len;
};

/* The labels of a resource that has any (an EventPolicy's spec.to selectors match them). */
struct ceb_config_labels {
	char *kind, *ns, *name;
	char **keys, **values;
	size_t n;
	struct ceb_config_labels *next;
};

struct ceb_config {
	struct ceb_configmap *configmaps;
	struct ceb_secret *secrets;
	struct ceb_broker_cfg *brokers;
	struct ceb_trigger_cfg *triggers;
	size_t nbrokers, ntriggers;
	/* Every source and every endpoint that is not a Broker, whatever their kind. */
	struct ceb_source_cfg *sources;
	struct ceb_endpoint_cfg *endpoints;
	size_t nsources, nendpoints;
	struct ceb_subscription_cfg *subscriptions; /* Knative's messaging and flows */
	size_t nsubscriptions;
	struct ceb_config_object *objects; /* other kinds' resources */
	char **files;
	size_t nfiles;                 /* file names the locations point to */
	struct ceb_config_note *notes; /* sorted by file, line and column */
	size_t nnotes;
	struct ceb_config_doc *docs; /* every resource's document, in the order read */
	size_t ndocs;
	struct ceb_config_labels *labels; /* resources' metadata.labels, those that have some */
};

/* What the command line adds to the files. Every field may be NULL or 0. */
struct ceb_config_opts {
	/* The cluster domain of Services' DNS names (<name>.<namespace>.svc.<domain>); cluster.local
	 * when NULL. */
	const char *cluster_domain;
	/* Address table entries, "Kind namespace/name=URL" (the --address option), beside those of
	 * cebroker-addresses ConfigMaps: where a ref to that resource delivers. */
	const char *const *addresses;
	size_t naddresses;
};

/* Every error found, one line each: "file:line:col: Kind ns/name: field.path: reason". */
struct ceb_config_errors {
	struct ceb_buf text;
	size_t count;
};

/* Load and check the YAML files; a directory loads its *.yaml and *.yml files in name order (not
 * recursive, hidden files skipped). Returns 0 and *out, or CEB_ECONFIG with every error appended to
 * errs (sorted by file, line and column; at most 1000) and errs->count raised by their number (and
 * *out untouched), or CEB_ENOMEM. errs may be NULL. Refused outright: files over 16 MiB, text that
 * is not UTF-8 or holds control characters, YAML tags (but !!str), nesting deeper than 64, aliases
 * that expand past the YAML reader's bounds. Documents of API groups that cebroker does not serve
 * (Namespace, Deployment, a Service...) are skipped with a note; an unknown kind in an eventing
 * group is an error. Caller owns *out (ceb_config_free) and errs->text (ceb_buf_free). Any thread. */
int ceb_config_load(const char *const *paths, size_t npaths, struct ceb_config **out,
                    struct ceb_config_errors *errs);
/* The same with what the command line adds (opts may be NULL). */
int ceb_config_load_opts(const char *const *paths, size_t npaths,
                         const struct ceb_config_opts *opts, struct ceb_config **out,
                         struct ceb_config_errors *errs);
/* The same from one in-memory document, named `name` in messages (tests, fuzzers). */
int ceb_config_load_string(const char *name, const char *yaml, size_t len, struct ceb_config **out,
                           struct ceb_config_errors *errs);
int ceb_config_load_string_opts(const char *name, const char *yaml, size_t len,
                                const struct ceb_config_opts *opts, struct ceb_config **out,
                                struct ceb_config_errors *errs);
void ceb_config_free(struct ceb_config *cfg);

const struct ceb_broker_cfg *ceb_config_find_broker(const struct ceb_config *cfg, const char *ns,
                                                    const char *name);
/* An endpoint of another kind than Broker (a KafkaSink), or NULL. */
const struct ceb_endpoint_cfg *ceb_config_find_endpoint(const struct ceb_config *cfg,
                                                        const char *kind, const char *ns,
                                                        const char *name);
/* The labels of resource kind ns/name (kind compared without case): true and the n pairs, or false
 * when it has none. */
bool ceb_config_find_labels(const struct ceb_config *cfg, const char *kind, const char *ns,
                            const char *name, char *const **keys, char *const **values, size_t *n);
/* A Secret, or NULL. */
const struct ceb_secret *ceb_config_find_secret(const struct ceb_config *cfg, const char *ns,
                                                const char *name);
/* A Secret's value for key (NUL-terminated; *len, when len is not NULL, its length in bytes), or
 * NULL. */
const char *ceb_secret_get(const struct ceb_secret *s, const char *key, size_t *len);
/* Frees what a ceb_secret_ref owns (its names), not the Secret it points to. */
void ceb_secret_ref_free(struct ceb_secret_ref *ref);

/* The innermost resource document that holds loc (a resource's location), or NULL. */
const struct ceb_config_doc *ceb_config_doc_at(const struct ceb_config *cfg,
                                               const struct ceb_loc *loc);

/* Value of a ConfigMap key, or NULL. */
const char *ceb_configmap_get(const struct ceb_configmap *cm, const char *key);
/* Value of an annotation, or NULL. */
const char *ceb_annotation(char *const *keys, char *const *values, size_t n, const char *key);

/* Parse an ISO 8601 duration into milliseconds as Knative reads it (PT1S, PT0.5S, P1DT2H, PT1M30S,
 * P1W, P0, +PT1S; a year is 365.2425 days and a month a twelfth of that). 0 or CEB_EINVAL (also for
 * negative durations). */
int ceb_duration_parse(const char *s, uint64_t *ms);

/* Parse an RFC 3339 time (2026-12-07T09:00:00Z, with a fraction of a second, an offset +01:00, 't'
 * or ' ' for 'T') into milliseconds since the epoch. 0 or CEB_EINVAL (also before 1970). */
int ceb_rfc3339_parse(const char *s, int64_t *ms);

#endif
