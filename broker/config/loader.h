/* The resource loader's own state, shared by its files and nothing else: loader.c (files,
 * directories, the kinds table, metadata, the API), report.c (errors and notes, sorted by place),
 * resolve.c (references, config-br-defaults and channel templates, once every file is loaded) and
 * core_kinds.c (ConfigMap, Broker, Trigger). One load runs on one thread. */
#ifndef CEB_CONFIG_LOADER_H
#define CEB_CONFIG_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"

#define MAX_ERRORS           1000 /* a user fixes the first ones; beyond this we only burn memory */
#define MAX_NOTES            1000 /* the same for notes: a 16 MiB file of skipped documents */
#define DEFAULT_BROKER_CLASS "MTChannelBasedBroker"
#define CLASS_ANNOTATION     "eventing.knative.dev/broker.class"
#define SYSTEM_NAMESPACE     "knative-eventing" /* where Knative reads its own ConfigMaps */
#define DEFAULT_CHANNEL_CM   "config-br-default-channel"

struct entry { /* a loaded resource, for duplicates and references */
	const char *kind, *ns, *name;
	struct ceb_loc loc;
	void *obj;
	size_t seq;
};

struct seen_file { /* a file read, by identity: one path, another path or a link to it */
	dev_t dev;
	ino_t ino;
};

struct check {            /* a reference to resolve once every file is loaded */
	const char *kind; /* what must exist: "Broker", "ConfigMap" or "KafkaSink" */
	char *ns, *name;
	char *who, *path; /* for the message */
	struct ceb_loc loc;
	const struct ceb_configmap **cm_out;
	const struct ceb_broker_cfg **broker_out;
	struct ceb_secret_ref *secret_out; /* a Secret: filled (key checked) when found */
	const void **obj_out; /* any other kind: its object (a RabbitmqBrokerConfig's struct) */
	bool optional;        /* absent is fine (Knative's own default channel ConfigMap) */
};

/* What resolve() needs of a Broker besides what it keeps: Knative fills in a Broker's class, config
 * and delivery from config-br-defaults only where the manifest says nothing. */
struct broker_rec {
	struct ceb_broker_cfg *b;
	const char *file;
	bool config_given, delivery_given;
	bool class_defaulted; /* its class came from config-br-defaults */
	/* spec.config.kind: Knative looks a Broker's defaults up by it (ceb_config_defaults_for) */
	char *config_kind;
	bool config_bad;               /* its config reference was refused (reported) */
	char *config_ns, *config_name; /* the ConfigMap it refers to, when it does */
	struct ceb_loc at;             /* metadata.name, where the Broker's own errors go */
	/* the class annotation's value, or config-br-defaults' brokerClass (line 0 for neither) */
	struct ceb_loc class_at;
	struct ceb_loc config_at; /* spec.config, or config-br-defaults' reference */
};

struct noterec {
	size_t file;
	int line, col;
	size_t seq;
	bool warning;
	char *text;
};

/* Errors are kept until the end and written sorted by file, line and column: the checks run in
 * passes (fields, then references) but a user reads a file from the top. */
struct errrec {
	size_t file; /* index in cfg->files */
	int line, col;
	size_t seq;
	char *text;
};

struct ceb_config_loader {
	struct ceb_config *cfg;
	struct ceb_config_errors *errs;
	struct errrec *recs;
	size_t nerr, caperr;
	bool enomem, stop;
	struct ceb_configmap **cm_tail;
	struct ceb_secret **secret_tail;
	struct ceb_broker_cfg **broker_tail;
	struct ceb_trigger_cfg **trigger_tail;
	struct ceb_source_cfg **source_tail;
	struct ceb_endpoint_cfg **endpoint_tail;
	struct ceb_subscription_cfg **subscription_tail;
	struct ceb_config_object **object_tail;
	struct entry *entries;
	size_t nentries, capentries;
	struct check *checks;
	size_t nchecks, capchecks;
	struct seen_file *seen; /* files read, so that one named twice is read once */
	size_t nseen, capseen;
	struct broker_rec *brecs;
	size_t nbrecs, capbrecs;
	struct noterec *notes;
	size_t nnotes, capnotes, notes_dropped;
	const struct ceb_config_opts *opts;
	struct ceb_config_refs *refs;
	struct ceb_config_defaults *defaults; /* knative-eventing/config-br-defaults, read */
	const struct ceb_configmap *defaults_cm;
};

/* ---- report.c ---- */

/* An error about a whole file (or a place in it without a resource), counted like any other. */
__attribute__((format(printf, 5, 6))) void ceb_ld_file_err(struct ceb_config_loader *ld,
                                                           const char *file, int line, int col,
                                                           const char *fmt, ...);
/* Sort the errors (notes) kept and append them to the caller's list (the configuration). */
void ceb_ld_flush_errors(struct ceb_config_loader *ld);
void ceb_ld_flush_notes(struct ceb_config_loader *ld, struct ceb_config *cfg);
/* A copy in the loader's care; NULL (and out of memory noted) when none can be made. */
char *ceb_ld_xstrdup(struct ceb_config_loader *ld, const char *s);

/* ---- loader.c ---- */

/* A reference to resolve once every file is loaded (what must exist, and where to put it). */
struct check *ceb_ld_add_check(struct ceb_config_res *r, const char *kind, const char *ns,
                               const char *name, const struct ceb_loc *at, const char *path,
                               const struct ceb_configmap **cm_out,
                               const struct ceb_broker_cfg **broker_out);
/* A file name the configuration keeps, for locations; NULL when out of memory. */
const char *ceb_ld_add_file(struct ceb_config_loader *ld, const char *name);
/* The node of an annotation's value, for errors about it. */
const struct ceb_yaml_node *ceb_ld_annot_node(const struct ceb_config_meta *md, const char *key);
/* Knative's own config-br-default-channel ConfigMap, which may be absent. */
bool ceb_ld_default_channel_cm(const char *ns, const char *name);

/* The Broker settings reader of a channel backend (broker/config/kinds.h), or NULL. */
const struct ceb_broker_config_reader *ceb_ld_broker_config_reader(const char *channel);
/* The reader whose Broker settings kind is `kind` (a RabbitmqBrokerConfig), or NULL. */
const struct ceb_broker_config_reader *ceb_ld_broker_config_reader_of(const char *kind);
/* Those kinds for a message, into buf: " or a RabbitmqBrokerConfig (eventing.knative.dev/v1alpha1)",
 * or "". */
const char *ceb_ld_broker_config_kinds(char *buf, size_t sz);

/* ---- core_kinds.c ---- */

/* A Broker's spec.config reference, kept for resolve. */
void ceb_ld_broker_config_ref(struct ceb_config_res *r, struct broker_rec *br, const char *api,
                              const char *kind, const char *name, const char *ns, const char *path);
void ceb_ld_broker_free(struct ceb_broker_cfg *b);
void ceb_ld_configmap_free(struct ceb_configmap *cm);
void ceb_ld_trigger_free(struct ceb_trigger_cfg *t);

/* ---- secret.c ---- */

void ceb_ld_secret_free(struct ceb_secret *s);
/* Point the reference of check c at Secret s, reporting a missing key. */
void ceb_ld_secret_bind(struct ceb_config_loader *ld, const struct check *c,
                        const struct ceb_secret *s);

/* ---- labels.c ---- */

/* Keep a resource's metadata.labels in the configuration (EventPolicy selectors match them). */
void ceb_ld_keep_labels(struct ceb_config_res *r, const char *kind, const char *ns,
                        const char *name, const struct ceb_config_meta *md);
void ceb_ld_labels_free(struct ceb_config_labels *l);

/* ---- flow_kinds.c ---- */

/* What backs each channel of Knative's messaging and flows, each Subscription's channel and
 * delivery, once every file is loaded. */
void ceb_ld_resolve_flows(struct ceb_config_loader *ld);
void ceb_ld_subscriptions_free(struct ceb_subscription_cfg *s);
/* Every address /<ns>/<name> has one owner (a Broker first of all): a second is an error. */
void ceb_ld_check_addresses(struct ceb_config_loader *ld);

/* ---- resolve.c ---- */

/* References, defaults and templates, once every file is loaded. */
void ceb_ld_resolve(struct ceb_config_loader *ld);

/* ---- canon.c ---- */

/* Keep the canonical text of a resource's document (root) in the configuration. */
void ceb_ld_keep_doc(struct ceb_config_loader *ld, const char *file,
                     const struct ceb_yaml_node *root, const char *kind, const char *ns,
                     const char *name);
void ceb_ld_docs_free(struct ceb_config *cfg);

#endif
