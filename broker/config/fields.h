/* Internal to the resource loader (broker/config*.c): what a kind's parse function uses to read its
 * YAML with located errors, and what many kinds share (metadata, Destination, DeliverySpec). */
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

/* Adding a kind (PingSource...): its struct in config.h, a list for it in struct ceb_config (freed
 * by ceb_config_free), a parse function of type ceb_config_kind_f in config.c or a file of its own
 * like config_kafka.c (which appends to that list through a tail pointer in the loader, as
 * parse_broker does or through a ceb_config_append_* function, so that resources keep their file
 * order), and one line in the kinds table in config.c. By then the loader has
 * checked apiVersion, kind and the top-level field names, and parsed metadata for it. Every helper
 * below reports what is wrong itself (at the node, with the field's path) and goes on, so that one
 * run shows every error: a parse function keeps what it can and does not stop at the first problem.
 * One load runs on one thread; nothing here is shared between loads. */

struct ceb_config_loader; /* one load: files, resources, errors (config.c) */

/* The resource being checked. */
struct ceb_config_res {
	struct ceb_config_loader *ld;
	const char *file; /* its file name, owned by the config being built */
	char who[256];    /* "Kind ns/name", the start of each of its messages */
	const char *ns;   /* its namespace, for what it refers to; owned by its meta */
	size_t nerr;      /* errors reported about it so far: compare to see if a part failed */
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

/* ---- errors and memory ---- */

/* Report "file:line:col: who: path: message" at node `at`, and count it in r->nerr. */
__attribute__((format(printf, 4, 5))) void ceb_config_err(struct ceb_config_res *r,
                                                          const struct ceb_yaml_node *at,
                                                          const char *path, const char *fmt, ...);
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

/* Append a parsed resource to its list in the config being built (which then owns it), in file
 * order, and count it. */
void ceb_config_append_kafka_source(struct ceb_config_res *r, struct ceb_kafka_source_cfg *src);
void ceb_config_append_kafka_sink(struct ceb_config_res *r, struct ceb_kafka_sink_cfg *snk);

/* ---- Destination and DeliverySpec (config_delivery.c) ---- */

/* A Knative Destination (a subscriber, a sink, a deadLetterSink): exactly one of uri or ref, and a
 * ref only to a Broker or a KafkaSink of this daemon (checked once every file is loaded). Fills *d
 * (which the caller frees with ceb_config_dest_free, also after a failure). True when nothing was
 * wrong. */
bool ceb_config_parse_dest(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           const char *path, struct ceb_dest *d);
void ceb_config_dest_free(struct ceb_dest *d);

/* The unset DeliverySpec (exponential, Retry-After ignored, binary). */
void ceb_config_delivery_init(struct ceb_delivery *dl);
/* Knative's DeliverySpec into *dl, which ceb_config_delivery_init prepared; the caller frees it
 * with ceb_config_delivery_free, also after errors. dl->set tells whether any field was given. */
void ceb_config_parse_delivery(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                               const char *path, struct ceb_delivery *dl);
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

/* ---- Kafka kinds (config_kafka.c) ---- */

/* KafkaSource (sources.knative.dev/v1 and v1beta1) and KafkaSink (eventing.knative.dev/v1alpha1):
 * parse functions of the kinds table (ceb_config_kind_f). */
void ceb_config_parse_kafka_source(struct ceb_config_res *r, struct ceb_config_meta *md,
                                   const struct ceb_yaml_node *root,
                                   const struct ceb_yaml_node *const *vals);
void ceb_config_parse_kafka_sink(struct ceb_config_res *r, struct ceb_config_meta *md,
                                 const struct ceb_yaml_node *root,
                                 const struct ceb_yaml_node *const *vals);
/* Free a resource and all it holds; NULL and half-built ones are fine. */
void ceb_config_kafka_source_free(struct ceb_kafka_source_cfg *src);
void ceb_config_kafka_sink_free(struct ceb_kafka_sink_cfg *snk);

#endif
