/* What a resource kind's parse function uses to read its YAML with located errors, and what many
 * kinds share (metadata, Destination, DeliverySpec); the kind definition the loader's table lists. */
#ifndef CEB_CONFIG_PARSE_H
#define CEB_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config/config.h"
#include "broker/config/yaml.h"
#include "filters/filter.h"

#define CEB_EVENTING_V1       "eventing.knative.dev/v1"
#define CEB_EVENTING_V1ALPHA1 "eventing.knative.dev/v1alpha1"

/* Adding a kind (PingSource...): a `const struct ceb_kind ceb_kind_<name>` (below) in the kind's own
 * file, whose parse function keeps the resource (a source appends its struct ceb_source_cfg view to
 * the configuration, as kafka_kinds.c does, so that resources keep their file order), and one line
 * in broker/config/kinds.h. By the time parse runs the loader has
 * checked apiVersion, kind and the top-level field names, and parsed metadata for it. Every helper
 * below reports what is wrong itself (at the node, with the field's path) and goes on, so that one
 * run shows every error: a parse function keeps what it can and does not stop at the first problem.
 * One load runs on one thread; nothing here is shared between loads. */

struct ceb_config_loader; /* one load: files, resources, errors (loader.h) */

/* The resource being checked. */
struct ceb_config_res {
	struct ceb_config_loader *ld;
	const char *file; /* its file name, owned by the config being built */
	char who[256];    /* "Kind ns/name", the start of each of its messages */
	const char *ns;   /* its namespace, for what it refers to; owned by its meta */
	size_t nerr;      /* errors reported about it so far: compare to see if a part failed */
	/* Reading a template for other resources (config-br-defaults' delivery): a ref in it is
	 * neither checked nor resolved here, and its namespace is left NULL, for each Broker that
	 * takes it to fill in (ceb_config_bind_dest). */
	bool templ;
};

/* metadata, parsed for every kind. A parse function takes what it keeps (sets the pointer NULL);
 * the loader frees the rest after it returns. ns is "default" when not given. name is NULL when
 * missing or invalid (already reported): the resource is not kept then. */
struct ceb_config_meta {
	char *name, *ns;
	char **akeys, **avals; /* annotations, nannot pairs */
	size_t nannot;
	const struct ceb_yaml_node *annots; /* to point errors at an annotation's value */
	char **lkeys, **lvals;              /* labels, nlabels pairs */
	size_t nlabels;
	const struct ceb_yaml_node *labels;    /* to point errors at a label's value */
	const struct ceb_yaml_node *name_node; /* where duplicates are reported */
};

/* A kind's parse function: vals[i] is the value of the kind's fields[i] (NULL when absent or null).
 * root is the whole resource, for "required field missing" at its start. */
typedef void ceb_config_kind_f(struct ceb_config_res *r, struct ceb_config_meta *md,
                               const struct ceb_yaml_node *root,
                               const struct ceb_yaml_node *const *vals);

/* A resource kind, as broker/config/kinds.h lists them. */
struct ceb_kind {
	/* NULL-terminated: Knative serves some kinds under several versions */
	const char *const *api_versions;
	const char *kind;
	const char *const *fields; /* top-level fields besides apiVersion, kind, metadata */
	ceb_config_kind_f *parse;
	/* takes events at /<namespace>/<name> of this daemon's ingress (a Broker, a KafkaSink): a ref
	 * to one is delivered there */
	bool addressable;
};

/* A channel backend's reader of a Broker's spec.config ConfigMap, as broker/config/kinds.h lists
 * them (BROKER_CONFIG): run at load for each Broker on that backend, so that its errors are
 * located and `validate` finds what the channel would refuse. */
struct ceb_broker_config_reader {
	const char *channel; /* the backend: "kafka" */
	/* Read cm for the Broker whose resource r is, reporting what is wrong, into cm->backend (once
	 * per ConfigMap: a second Broker finds it read). cm NULL: the Broker names none (at: where
	 * its spec.config would be), which the backend may refuse. */
	void (*read)(struct ceb_config_res *r, struct ceb_configmap *cm, const struct ceb_loc *at);
	void (*free)(void *parsed);
	/* The kind (and its apiVersion) that holds this backend's Broker settings instead of a
	 * ConfigMap (a RabbitMQBroker's RabbitmqBrokerConfig), or NULL: a Broker of the backend must
	 * then name one in spec.config, found in ceb_broker_cfg.config_res; read is not called. */
	const char *kind, *api;
};

/* A channel kind of Knative's messaging that a backend brings (KafkaChannel), as broker/config/kinds.h
 * lists them (CHANNEL_KIND). Its resource (apiVersion, kind, metadata, spec with subscribers,
 * delivery and the kind's own fields) is read by ceb_config_parse_channel_kind, called from the
 * kind's parse function; a Channel's, Sequence's or Parallel's channelTemplate of this kind by the
 * same reader of its own fields. */
struct ceb_channel_kind {
	const char *kind;               /* "KafkaChannel" */
	const char *const *spec_fields; /* its own spec fields, NULL-terminated (at most 12) */
	/* Its own fields (vals[i] for spec_fields[i], NULL when absent) under path ("spec",
	 * "spec.channelTemplate.spec"): the backend's settings, or NULL (reported). */
	void *(*read_spec)(struct ceb_config_res *r, const struct ceb_yaml_node *const *vals,
	                   const char *path);
	void (*free_spec)(void *spec);
	/* Once every file is loaded, for each channel of the kind (c->backend_spec read, maybe
	 * NULL): what comes from elsewhere (a ConfigMap of the cluster), errors about r. Optional. */
	void (*resolve)(struct ceb_config_res *r, struct ceb_msg_channel *c,
	                const struct ceb_config *cfg);
};

/* The channel kind a backend brings, or NULL (InMemoryChannel is the core's). */
const struct ceb_channel_kind *ceb_config_channel_kind(const char *kind);
/* Their names for messages, into buf: Knative's ", "-separated and "of messaging.knative.dev", then
 * those of other groups ("KafkaChannel of messaging.knative.dev, or DurableChannel of
 * messaging.cebroker.dev"); buf returned. */
const char *ceb_config_channel_kind_names(char *buf, size_t sz);
/* A resource of channel kind ck (its parse function's arguments); the channel is kept. */
void ceb_config_parse_channel_kind(struct ceb_config_res *r, struct ceb_config_meta *md,
                                   const struct ceb_yaml_node *root,
                                   const struct ceb_yaml_node *const *vals,
                                   const struct ceb_channel_kind *ck, const char *api);

/* A Broker's ConfigMap's channel-template-spec of channel kind ck: its spec at n (may be NULL) read
 * into *spec (freed with *spec_free). */
void ceb_config_read_template_spec(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                   const char *path, const struct ceb_channel_kind *ck, void **spec,
                                   void (**spec_free)(void *spec));
/* The channel Knative makes for an MTChannelBasedBroker whose template names a backend's kind:
 * <broker>-kne-trigger, its settings resolved; spec is the template's (kept by it). NULL when out of
 * memory. */
struct ceb_msg_channel *ceb_config_broker_channel(struct ceb_config_res *r, const char *ns,
                                                  const char *broker, const char *api,
                                                  const char *kind, void *spec,
                                                  const struct ceb_loc *at);
void ceb_config_msg_channel_free(struct ceb_msg_channel *c);
/* The kind and spec a ConfigMap's channel template named (read for a Broker before), or false. */
bool ceb_config_channel_template_kind(const struct ceb_configmap *cm, const char **api,
                                      const char **kind, void **spec);

/* Whether kind (klen bytes) is an addressable kind of the table served under api (NULL: any). */
bool ceb_config_addressable(const char *kind, size_t klen, const char *api);

/* ---- errors and memory ---- */

/* Report "file:line:col: who: path: message" at node `at`, and count it in r->nerr. */
__attribute__((format(printf, 4, 5))) void ceb_config_err(struct ceb_config_res *r,
                                                          const struct ceb_yaml_node *at,
                                                          const char *path, const char *fmt, ...);
/* The same at a position rather than a node (what was read earlier, or from another file). */
__attribute__((format(printf, 4, 5))) void ceb_config_err_at(struct ceb_config_res *r,
                                                             const struct ceb_loc *at,
                                                             const char *path, const char *fmt,
                                                             ...);
/* A note (struct ceb_config_note) about r, at `at`: what was skipped or resolved, or a warning. */
__attribute__((format(printf, 5, 6))) void
ceb_config_note_at(struct ceb_config_res *r, bool warning, const struct ceb_loc *at,
                   const char *path, const char *fmt, ...);
/* The position of a node in r's file. */
struct ceb_loc ceb_config_loc(const struct ceb_config_res *r, const struct ceb_yaml_node *n);
/* Out of memory: the whole load then fails with CEB_ENOMEM; callers just return what they have. */
void ceb_config_oom(struct ceb_config_res *r);
bool ceb_config_is_oom(const struct ceb_config_res *r);
/* strdup that flags out of memory; NULL for NULL. The caller owns the copy. */
char *ceb_config_strdup(struct ceb_config_res *r, const char *s);

/* ---- message pieces, written into the caller's buf and returned ---- */

/* A user's value inside a message: cut short, control characters shown as '?'. */
const char *ceb_config_quoted(char *buf, size_t sz, const char *s);
/* "base.key", or base["key"] when the key is not a plain identifier (annotation names, say). */
const char *ceb_config_path_key(char *buf, size_t sz, const char *base, const char *key);
/* "base[i]" */
const char *ceb_config_path_idx(char *buf, size_t sz, const char *base, size_t i);

/* ---- typed access: each reports a wrong type at the node and returns false ---- */

bool ceb_config_want_map(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path);
bool ceb_config_want_seq(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path);
/* Check a mapping against its known fields (a NULL-terminated list of at most 16): unknown,
 * duplicate and non-string keys are reported, and the rest is still returned. vals[i] gets the
 * value of names[i], or NULL when absent or null; keys[i] (keys may be NULL) its key. False only
 * when map is not a mapping. The nodes stay the YAML reader's. */
bool ceb_config_get_fields(struct ceb_config_res *r, const struct ceb_yaml_node *map,
                           const char *path, const char *const *names,
                           const struct ceb_yaml_node **vals, const struct ceb_yaml_node **keys);
/* The same, naming only the first nshown fields in the message for an unknown one (the others are
 * read past, not offered). */
bool ceb_config_get_fields_shown(struct ceb_config_res *r, const struct ceb_yaml_node *map,
                                 const char *path, const char *const *names, size_t nshown,
                                 const struct ceb_yaml_node **vals,
                                 const struct ceb_yaml_node **keys);
/* A string field: any scalar is taken as its text. n NULL (absent) leaves *out NULL and is true.
 * The caller owns *out. */
bool ceb_config_get_str(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                        char **out);
/* A YAML boolean (true, True, TRUE, false, False, FALSE) as a plain scalar; n not NULL. *out set
 * only on success. */
bool ceb_config_get_bool(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                         bool *out);
/* A decimal integer in [min, max], as a plain scalar; n not NULL. *out set only on success. */
bool ceb_config_get_int(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                        long min, long max, int *out);
/* A map of strings (labels, annotations, ConfigMap data, filter attributes): any scalar value is
 * taken as its text (10 is "10"), null as "". Duplicate keys are reported in document order. On
 * success the caller owns both arrays (ceb_config_strv_free each with *n_out); on failure they are
 * NULL. */
bool ceb_config_get_strmap(struct ceb_config_res *r, const struct ceb_yaml_node *map,
                           const char *path, char ***keys_out, char ***vals_out, size_t *n_out);
void ceb_config_strv_free(char **v, size_t n);
/* An ISO 8601 duration (ceb_duration_parse) into *ms; n not NULL. *ms set only on success. */
bool ceb_config_get_duration(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                             const char *path, uint64_t *ms);

/* Knative's SourceSpec spec.ceOverrides at n: its extensions (set on every event a source emits)
 * into the three outputs, set only when every name is a valid extension name and none is a core
 * attribute; a name over 20 characters is taken with a warning (CloudEvents advises against it).
 * The caller owns the arrays (ceb_config_strv_free each with *n_out). Every source kind calls it. */
void ceb_config_parse_ce_overrides(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                   char ***keys_out, char ***values_out, size_t *n_out);

/* An RFC 1123 label, as Kubernetes names namespaces and Services: [a-z0-9-], at most 63, no '-' at
 * either end. */
bool ceb_config_dns_label(const char *s, size_t n);

/* ---- resources and references ---- */

/* Register a loaded resource (obj, owned by the config) for duplicate checks and for the references
 * to it; located at md->name_node. kind, ns and name must live as long as the config. */
void ceb_config_add_entry(struct ceb_config_res *r, const char *kind, const char *ns,
                          const char *name, const struct ceb_config_meta *md, void *obj);
/* Require that kind ns/name ("Broker", "ConfigMap" or "KafkaSink") exists once every file is loaded
 * ("not found" reported at node `at`, field `path`, otherwise). When it does, *cm_out or *broker_out
 * (either may be NULL; both NULL for any other kind) is pointed at it. The strings are copied. */
void ceb_config_add_check(struct ceb_config_res *r, const char *kind, const char *ns,
                          const char *name, const struct ceb_yaml_node *at, const char *path,
                          const struct ceb_configmap **cm_out,
                          const struct ceb_broker_cfg **broker_out);
void ceb_config_add_check_at(struct ceb_config_res *r, const char *kind, const char *ns,
                             const char *name, const struct ceb_loc *at, const char *path,
                             const struct ceb_configmap **cm_out,
                             const struct ceb_broker_cfg **broker_out);

/* Secrets. Record that ref (in the kind's own struct) takes key of Secret ns/name (ns NULL: the
 * resource's; key NULL: the whole Secret), checked and filled once every file is loaded; a missing
 * Secret or key is reported at node `at`, field `path`, unless ref->optional. Names are copied into
 * ref (ceb_secret_ref_free). */
void ceb_config_secret_ref(struct ceb_config_res *r, const struct ceb_yaml_node *at,
                           const char *path, const char *ns, const char *name, const char *key,
                           struct ceb_secret_ref *ref);
/* A Secret of the configuration being loaded, or NULL: for a reader that runs once every file is
 * loaded (a Broker's ConfigMap reader), which finds a Secret named in a ConfigMap value. */
const struct ceb_secret *ceb_config_loaded_secret(struct ceb_config_res *r, const char *ns,
                                                  const char *name);
/* A Kubernetes secretKeyRef map at n ({name, key, optional}), recorded as above. False (reported)
 * when it is not one. */
bool ceb_config_get_secret_key_ref(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                                   const char *path, struct ceb_secret_ref *ref);

/* Append a parsed resource to its list in the config being built (which then owns it), in file
 * order, and count it. */
/* Keep a source (its generic view, which points into the kind's own struct: src->own) or an
 * endpoint of a backend's kind, in file order; the configuration frees them with own_free. */
void ceb_config_add_source(struct ceb_config_res *r, struct ceb_source_cfg *src);
/* Keep a resource that is neither a source nor an endpoint (a RabbitmqBrokerConfig): the
 * configuration frees it with obj->own_free. */
void ceb_config_add_object(struct ceb_config_res *r, struct ceb_config_object *obj);
void ceb_config_add_endpoint(struct ceb_config_res *r, struct ceb_endpoint_cfg *ep);

/* ---- Destination and DeliverySpec (config_delivery.c) ---- */

/* A Knative Destination (a subscriber, a sink, a deadLetterSink): a uri, a ref, or a ref and a uri
 * relative to it (Knative's rule: the path is resolved against the ref's address). A ref to a
 * Broker or a KafkaSink of this daemon must exist once every file is loaded; any other ref is
 * resolved then through the address table (config_refs.c). Fills *d (which the caller frees with
 * ceb_config_dest_free, also after a failure). True when nothing was wrong so far. */
bool ceb_config_parse_dest(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           const char *path, struct ceb_dest *d);
/* What parse_dest does with a ref once its namespace is known: check it (Broker, KafkaSink) or queue
 * it for the address table. For a dest copied from a template (r->templ was set when it was read),
 * its ref_ns NULL taken as r->ns. d must live until the load ends. */
void ceb_config_bind_dest(struct ceb_config_res *r, struct ceb_dest *d, const char *path);
/* A Sequence's step: a Destination with a `delivery` beside it (*delivery: its node, or NULL). */
bool ceb_config_parse_step(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           const char *path, struct ceb_dest *d,
                           const struct ceb_yaml_node **delivery);
void ceb_config_dest_free(struct ceb_dest *d);
/* A deep copy; false when out of memory (then *dst owns nothing). */
bool ceb_config_dest_copy(struct ceb_dest *dst, const struct ceb_dest *src);

/* The unset DeliverySpec (exponential, Retry-After ignored, binary). */
void ceb_config_delivery_init(struct ceb_delivery *dl);
/* Knative's DeliverySpec into *dl, which ceb_config_delivery_init prepared; the caller frees it
 * with ceb_config_delivery_free, also after errors. dl->set tells whether any field was given.
 * with_format: the resource's CRD has delivery.format (a Broker's and a Trigger's do, a
 * KafkaSource's does not: there it is an unknown field). */
void ceb_config_parse_delivery(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                               const char *path, bool with_format, struct ceb_delivery *dl);
/* Free what *dl holds and make it unset again. */
void ceb_config_delivery_free(struct ceb_delivery *dl);
/* A deep copy; false when out of memory (then *dst is unset and owns nothing). */
bool ceb_config_delivery_copy(struct ceb_delivery *dst, const struct ceb_delivery *src);

/* ---- Trigger filters (config_filter.c) ---- */

/* A Trigger's filter from its spec.filter (the legacy attributes map, may be NULL) and spec.filters
 * (the Subscriptions API dialects, may be NULL), as Knative combines them: a non-empty filters list
 * wins, and no filter at all matches everything. Errors are reported with spec.filter... paths, and
 * the result is then what did compile (the load fails anyway). The caller owns the result
 * (ceb_filter_free); NULL only when out of memory. */
struct ceb_filter *ceb_config_parse_filters(struct ceb_config_res *r,
                                            const struct ceb_yaml_node *filter,
                                            const struct ceb_yaml_node *filters);

/* ---- Where refs go (config_refs.c): the address table, Services' DNS names ---- */

/* The address table and the refs waiting for it, one per load (the loader owns it). */
struct ceb_config_refs;
struct ceb_config_refs *ceb_config_refs_new(const struct ceb_config_opts *opts);
void ceb_config_refs_free(struct ceb_config_refs *refs);
struct ceb_config_refs *ceb_config_loader_refs(struct ceb_config_loader *ld);
/* The --address entries (reported as file `--address`, which must be a name kept by the loader). */
void ceb_config_refs_read_options(struct ceb_config_res *r, struct ceb_config_refs *refs);
/* A ConfigMap of cebroker's own, cebroker-addresses: its `addresses` value, one entry a line. */
bool ceb_config_refs_is_table(const struct ceb_configmap *cm);
void ceb_config_refs_read_table(struct ceb_config_res *r, struct ceb_config_refs *refs,
                                const struct ceb_configmap *cm);
/* A ref this daemon does not serve, to resolve once every file is loaded. */
void ceb_config_refs_queue(struct ceb_config_res *r, struct ceb_dest *d, const char *path);
/* Resolve every queued ref into its dest's uri (errors for refs nothing can resolve). */
void ceb_config_refs_resolve(struct ceb_config_loader *ld, struct ceb_config_refs *refs);
/* Resolve `ref` (a URI reference, RFC 3986) against the absolute `base`: a newly allocated absolute
 * URI, or NULL when out of memory. */
char *ceb_config_uri_resolve(const char *base, const char *ref);
/* An absolute http or https URI with a host: NULL, or why not. */
const char *ceb_config_http_uri_why(const char *s);

/* ---- config-br-defaults and channel templates (config_defaults.c) ---- */

/* Knative's default-ch-webhook ConfigMap (knative-eventing), read once per load: the channel kind
 * of a Channel, Sequence or Parallel that gives no channelTemplate. */
struct ceb_default_channels;
struct ceb_default_channels *ceb_config_default_channels_read(struct ceb_config_res *r,
                                                              const struct ceb_config *cfg);
void ceb_config_default_channels_free(struct ceb_default_channels *d);
/* The default for namespace ns: the namespace's, else the cluster's, else InMemoryChannel (at
 * NULL: no ConfigMap said so). */
void ceb_config_default_channel(const struct ceb_default_channels *d, const char *ns,
                                const char **api, const char **kind, const struct ceb_loc **at);

/* Knative's ConfigMap knative-eventing/config-br-defaults (its default-br-config), as read. */
struct ceb_config_defaults;
bool ceb_config_defaults_is(const struct ceb_configmap *cm);
/* Read it; NULL after errors (reported about r, the ConfigMap) or when out of memory. The caller
 * frees it with ceb_config_defaults_free once the load is over: what it gives points into it. */
struct ceb_config_defaults *ceb_config_defaults_read(struct ceb_config_res *r,
                                                     const struct ceb_configmap *cm);
void ceb_config_defaults_free(struct ceb_config_defaults *d);

/* A config reference given in config-br-defaults (ns NULL: the Broker's namespace). */
struct ceb_config_default_ref {
	const char *api, *kind, *name, *ns;
	struct ceb_loc at;
};
/* What config-br-defaults has for one Broker; each NULL when it has nothing. */
struct ceb_config_broker_defaults {
	const char *broker_class; /* for a Broker without the class annotation */
	struct ceb_loc class_at;
	const struct ceb_config_default_ref *ref; /* for a Broker without spec.config */
	/* for a Broker without spec.delivery: a template (read with r->templ), its dead-letter
	 * sink's ref not bound yet */
	const struct ceb_delivery *delivery;
	bool same_namespace; /* disallowDifferentNamespaceConfig: spec.config in the Broker's ns */
};
/* Knative's lookup (pkg/apis/config/defaults.go): the namespace's entry, then the cluster default,
 * by the Broker's class (annot_class, NULL without the annotation) or, when the Broker has a
 * spec.config, by that config's kind (config_kind), as Knative's webhook does. */
void ceb_config_defaults_for(const struct ceb_config_defaults *d, const char *ns,
                             const char *annot_class, const char *config_kind,
                             struct ceb_config_broker_defaults *out);
/* The channel an MTChannelBasedBroker's ConfigMap asks for (channel-template-spec, or Knative's
 * older key channelTemplateSpec): "memory" for an InMemoryChannel. NULL after an error, about r (the
 * Broker) at `at` when the ConfigMap has no template or one this build cannot back (KafkaChannel),
 * about the ConfigMap where the template itself is wrong (once per ConfigMap: the template read is
 * kept in cm->channel_tpl). cm NULL: Knative's default channel, InMemoryChannel. */
const char *ceb_config_channel_template(struct ceb_config_res *r, struct ceb_configmap *cm,
                                        const struct ceb_loc *at);
void ceb_config_channel_template_free(struct ceb_channel_template *tpl);

#endif
