/* The resource loader: Knative Broker, Trigger, ConfigMap, KafkaSource and KafkaSink manifests from
 * the YAML reader's trees, checked against a table of kinds, errors as file:line:col; what other API
 * groups define skipped; references, config-br-defaults and the address table applied last. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker/config.h"
#include "broker/config_parse.h"
#include "broker/error.h"
#include "broker/yaml.h"
#include "channels/channel.h"

#define MAX_ERRORS           1000 /* a user fixes the first ones; beyond this we only burn memory */
#define MAX_NOTES            1000 /* the same for notes: a 16 MiB file of skipped documents */
#define DEFAULT_BROKER_CLASS "MTChannelBasedBroker"
#define CLASS_ANNOTATION     "eventing.knative.dev/broker.class"
#define SYSTEM_NAMESPACE     "knative-eventing" /* where Knative reads its own ConfigMaps */
#define DEFAULT_CHANNEL_CM   "config-br-default-channel"

/* ------------------------------------------------------------------------------------------------
 * The loader state and error reporting.
 */

struct entry { /* a loaded resource, for duplicates and references */
	const char *kind, *ns, *name;
	struct ceb_loc loc;
	void *obj;
	size_t seq;
};

struct check {            /* a reference to resolve once every file is loaded */
	const char *kind; /* what must exist: "Broker", "ConfigMap" or "KafkaSink" */
	char *ns, *name;
	char *who, *path; /* for the message */
	struct ceb_loc loc;
	const struct ceb_configmap **cm_out;
	const struct ceb_broker_cfg **broker_out;
	bool optional; /* absent is fine (Knative's own default channel ConfigMap) */
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
	struct ceb_broker_cfg **broker_tail;
	struct ceb_trigger_cfg **trigger_tail;
	struct ceb_kafka_source_cfg **kafka_source_tail;
	struct ceb_kafka_sink_cfg **kafka_sink_tail;
	struct entry *entries;
	size_t nentries, capentries;
	struct check *checks;
	size_t nchecks, capchecks;
	struct broker_rec *brecs;
	size_t nbrecs, capbrecs;
	struct noterec *notes;
	size_t nnotes, capnotes, notes_dropped;
	const struct ceb_config_opts *opts;
	struct ceb_config_refs *refs;
	struct ceb_config_defaults *defaults; /* knative-eventing/config-br-defaults, read */
	const struct ceb_configmap *defaults_cm;
};

static void verr(struct ceb_config_loader *ld, const char *file, int line, int col, const char *who,
                 const char *path, const char *fmt, va_list ap)
{
	struct ceb_buf b = CEB_BUF_INIT;
	struct errrec *rec;
	size_t fi;

	if (ld->stop || ld->enomem)
		return;
	if (ld->nerr == ld->caperr) {
		size_t cap = ld->caperr ? 2 * ld->caperr : 16;

		rec = realloc(ld->recs, cap * sizeof(*rec));
		if (!rec) {
			ld->enomem = true;
			return;
		}
		ld->recs = rec;
		ld->caperr = cap;
	}
	/* every file name was added to cfg->files before anything is reported about it */
	for (fi = 0; fi < ld->cfg->nfiles && ld->cfg->files[fi] != file; fi++)
		;
	ceb_buf_puts(&b, file);
	if (line > 0)
		ceb_buf_printf(&b, ":%d:%d", line, col);
	ceb_buf_puts(&b, ": ");
	if (ld->nerr + 1 == MAX_ERRORS) {
		ceb_buf_printf(&b, "too many errors, stopping after %d", MAX_ERRORS);
		ld->stop = true;
	} else {
		if (who && *who)
			ceb_buf_printf(&b, "%s: ", who);
		if (path && *path)
			ceb_buf_printf(&b, "%s: ", path);
		ceb_buf_vprintf(&b, fmt, ap);
	}
	/* one error, one line: a key or value with a newline in it must not split it */
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.p[i] < 0x20 || b.p[i] == 0x7f)
			b.p[i] = '?';
	ceb_buf_putc(&b, '\n');
	if (b.failed) {
		ceb_buf_free(&b);
		ld->enomem = true;
		return;
	}
	ld->recs[ld->nerr] = (struct errrec){fi, line, col, ld->nerr, b.p};
	ld->nerr++;
}

static int cmp_errrec(const void *a, const void *b)
{
	const struct errrec *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Write the errors, sorted, to the caller's buffer. */
static void flush_errors(struct ceb_config_loader *ld)
{
	if (ld->nerr > 1)
		qsort(ld->recs, ld->nerr, sizeof(*ld->recs), cmp_errrec);
	for (size_t i = 0; i < ld->nerr; i++) {
		if (ceb_buf_puts(&ld->errs->text, ld->recs[i].text) < 0)
			ld->enomem = true;
		free(ld->recs[i].text);
	}
	ld->errs->count += ld->nerr;
	free(ld->recs);
	ld->recs = NULL;
}

__attribute__((format(printf, 5, 6))) static void
file_err(struct ceb_config_loader *ld, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(ld, file, line, col, NULL, NULL, fmt, ap);
	va_end(ap);
}

void ceb_config_err(struct ceb_config_res *r, const struct ceb_yaml_node *at, const char *path,
                    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(r->ld, r->file, ceb_yaml_line(at), ceb_yaml_col(at), r->who, path, fmt, ap);
	va_end(ap);
	r->nerr++;
}

void ceb_config_err_at(struct ceb_config_res *r, const struct ceb_loc *at, const char *path,
                       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr(r->ld, at->file ? at->file : r->file, at->line, at->col, r->who, path, fmt, ap);
	va_end(ap);
	r->nerr++;
}

struct ceb_loc ceb_config_loc(const struct ceb_config_res *r, const struct ceb_yaml_node *n)
{
	return (struct ceb_loc){r->file, ceb_yaml_line(n), ceb_yaml_col(n)};
}

/* Notes are kept like errors, and sorted the same way when the load succeeds. */
static void vnote(struct ceb_config_loader *ld, bool warning, const struct ceb_loc *at,
                  const char *who, const char *path, const char *fmt, va_list ap)
{
	struct ceb_buf b = CEB_BUF_INIT;
	size_t fi;

	if (ld->enomem || ld->stop)
		return;
	if (ld->nnotes == MAX_NOTES) {
		ld->notes_dropped++;
		return;
	}
	if (ld->nnotes == ld->capnotes) {
		size_t cap = ld->capnotes ? 2 * ld->capnotes : 16;
		struct noterec *p = realloc(ld->notes, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return;
		}
		ld->notes = p;
		ld->capnotes = cap;
	}
	for (fi = 0; fi < ld->cfg->nfiles && ld->cfg->files[fi] != at->file; fi++)
		;
	ceb_buf_puts(&b, at->file);
	if (at->line > 0)
		ceb_buf_printf(&b, ":%d:%d", at->line, at->col);
	ceb_buf_puts(&b, warning ? ": warning: " : ": ");
	if (who)
		ceb_buf_printf(&b, "%s: ", who);
	if (path && *path)
		ceb_buf_printf(&b, "%s: ", path);
	ceb_buf_vprintf(&b, fmt, ap);
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.p[i] < 0x20 || b.p[i] == 0x7f)
			b.p[i] = '?';
	if (b.failed || !b.p) {
		ceb_buf_free(&b);
		ld->enomem = true;
		return;
	}
	ld->notes[ld->nnotes] = (struct noterec){fi, at->line, at->col, ld->nnotes, warning, b.p};
	ld->nnotes++;
}

void ceb_config_note_at(struct ceb_config_res *r, bool warning, const struct ceb_loc *at,
                        const char *path, const char *fmt, ...)
{
	va_list ap;
	struct ceb_loc loc = *at;

	if (!loc.file)
		loc.file = r->file;
	va_start(ap, fmt);
	vnote(r->ld, warning, &loc, r->who[0] ? r->who : NULL, path, fmt, ap);
	va_end(ap);
}

static int cmp_noterec(const void *a, const void *b)
{
	const struct noterec *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Hand the notes to the config (sorted, and how many more there were), or drop them when there is
 * no config. */
static void flush_notes(struct ceb_config_loader *ld, struct ceb_config *cfg)
{
	if (cfg && ld->nnotes) {
		cfg->notes = calloc(ld->nnotes + 1, sizeof(*cfg->notes));
		if (!cfg->notes) {
			ld->enomem = true;
		} else {
			qsort(ld->notes, ld->nnotes, sizeof(*ld->notes), cmp_noterec);
			for (size_t i = 0; i < ld->nnotes; i++) {
				cfg->notes[i] = (struct ceb_config_note){ld->notes[i].warning,
				                                         ld->notes[i].text};
				ld->notes[i].text = NULL;
			}
			cfg->nnotes = ld->nnotes;
			if (ld->notes_dropped) {
				struct ceb_buf b = CEB_BUF_INIT;

				ceb_buf_printf(&b, "cebroker: %zu more note%s not shown",
				               ld->notes_dropped,
				               ld->notes_dropped == 1 ? "" : "s");
				if (!(cfg->notes[cfg->nnotes].text = ceb_buf_steal(&b, NULL)))
					ld->enomem = true;
				else
					cfg->nnotes++;
			}
		}
	}
	for (size_t i = 0; i < ld->nnotes; i++)
		free(ld->notes[i].text);
	free(ld->notes);
	ld->notes = NULL;
	ld->nnotes = 0;
}

struct ceb_config_refs *ceb_config_loader_refs(struct ceb_config_loader *ld)
{
	return ld->refs;
}

static char *xstrdup(struct ceb_config_loader *ld, const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = strdup(s);
	if (!p)
		ld->enomem = true;
	return p;
}

char *ceb_config_strdup(struct ceb_config_res *r, const char *s)
{
	return xstrdup(r->ld, s);
}

void ceb_config_oom(struct ceb_config_res *r)
{
	r->ld->enomem = true;
}

bool ceb_config_is_oom(const struct ceb_config_res *r)
{
	return r->ld->enomem;
}

/* ------------------------------------------------------------------------------------------------
 * References, resolved once every file is loaded.
 */

static void check_free(struct check *c)
{
	free(c->ns);
	free(c->name);
	free(c->who);
	free(c->path);
}

/* Knative's own ConfigMap for the default channel: when a Broker names it and the files do not hold
 * it, it says what Knative installs, InMemoryChannel. */
static bool default_channel_cm(const char *ns, const char *name)
{
	return !strcmp(ns, SYSTEM_NAMESPACE) && !strcmp(name, DEFAULT_CHANNEL_CM);
}

/* The check that add_check added last, or NULL (out of memory). */
static struct check *add_check(struct ceb_config_res *r, const char *kind, const char *ns,
                               const char *name, const struct ceb_loc *at, const char *path,
                               const struct ceb_configmap **cm_out,
                               const struct ceb_broker_cfg **broker_out)
{
	struct ceb_config_loader *ld = r->ld;
	struct check c = {.kind = kind, .cm_out = cm_out, .broker_out = broker_out};

	if (ld->nchecks == ld->capchecks) {
		size_t cap = ld->capchecks ? 2 * ld->capchecks : 16;
		struct check *p = realloc(ld->checks, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return NULL;
		}
		ld->checks = p;
		ld->capchecks = cap;
	}
	c.ns = xstrdup(ld, ns);
	c.name = xstrdup(ld, name);
	c.who = xstrdup(ld, r->who);
	c.path = xstrdup(ld, path);
	c.loc = *at;
	if (!c.loc.file)
		c.loc.file = r->file;
	if (!c.ns || !c.name || !c.who || !c.path) {
		check_free(&c);
		return NULL;
	}
	c.optional = !strcmp(kind, "ConfigMap") && default_channel_cm(c.ns, c.name);
	ld->checks[ld->nchecks] = c;
	return &ld->checks[ld->nchecks++];
}

void ceb_config_add_check_at(struct ceb_config_res *r, const char *kind, const char *ns,
                             const char *name, const struct ceb_loc *at, const char *path,
                             const struct ceb_configmap **cm_out,
                             const struct ceb_broker_cfg **broker_out)
{
	add_check(r, kind, ns, name, at, path, cm_out, broker_out);
}

void ceb_config_add_check(struct ceb_config_res *r, const char *kind, const char *ns,
                          const char *name, const struct ceb_yaml_node *at, const char *path,
                          const struct ceb_configmap **cm_out,
                          const struct ceb_broker_cfg **broker_out)
{
	struct ceb_loc loc = ceb_config_loc(r, at);

	add_check(r, kind, ns, name, &loc, path, cm_out, broker_out);
}

/* ------------------------------------------------------------------------------------------------
 * Resources: metadata, then one parse function per kind.
 */

static void meta_free(struct ceb_config_meta *md)
{
	free(md->name);
	free(md->ns);
	ceb_config_strv_free(md->akeys, md->nannot);
	ceb_config_strv_free(md->avals, md->nannot);
	ceb_config_strv_free(md->lkeys, md->nlabels);
	ceb_config_strv_free(md->lvals, md->nlabels);
	memset(md, 0, sizeof(*md));
}

/* A DNS-1123 label, as Kubernetes requires of most names: what the ingress path /ns/name carries. */
static bool dns_label(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static void parse_meta(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                       const struct ceb_yaml_node *n, struct ceb_config_meta *md)
{
	/* Kubernetes' ObjectMeta. What the API server fills in (uid, resourceVersion, managedFields...)
	 * is what `kubectl get -o yaml` prints: read and ignored, so that its output loads as it is. */
	static const char *const fields[] = {"name",
	                                     "namespace",
	                                     "labels",
	                                     "annotations",
	                                     "generateName",
	                                     "selfLink",
	                                     "uid",
	                                     "resourceVersion",
	                                     "generation",
	                                     "creationTimestamp",
	                                     "deletionTimestamp",
	                                     "deletionGracePeriodSeconds",
	                                     "ownerReferences",
	                                     "finalizers",
	                                     "managedFields",
	                                     NULL};
	const struct ceb_yaml_node *v[15];
	char q[80];

	if (!n) {
		ceb_config_err(r, root, "metadata.name", "required field missing");
		goto out;
	}
	if (!ceb_config_get_fields_shown(r, n, "metadata", fields, 4, v, NULL))
		goto out;
	md->name_node = v[0];
	if (!v[0])
		ceb_config_err(r, n, "metadata.name", "required field missing");
	else if (ceb_config_get_str(r, v[0], "metadata.name", &md->name) && !dns_label(md->name))
		ceb_config_err(r, v[0], "metadata.name",
		               "\"%s\" is not a valid name (lower-case letters, digits and '-', "
		               "starting and ending with a letter or digit, at most 63 characters)",
		               ceb_config_quoted(q, sizeof(q), md->name));
	if (v[1] && ceb_config_get_str(r, v[1], "metadata.namespace", &md->ns) &&
	    !dns_label(md->ns))
		ceb_config_err(r, v[1], "metadata.namespace",
		               "\"%s\" is not a valid namespace (lower-case letters, digits and "
		               "'-', starting and ending with a letter or digit, at most 63 "
		               "characters)",
		               ceb_config_quoted(q, sizeof(q), md->ns));
	/* labels are kept for the kinds that read one (a KafkaSource's key-type) */
	if (v[2]) {
		md->labels = v[2];
		ceb_config_get_strmap(r, v[2], "metadata.labels", &md->lkeys, &md->lvals,
		                      &md->nlabels);
	}
	if (v[3]) {
		md->annots = v[3];
		ceb_config_get_strmap(r, v[3], "metadata.annotations", &md->akeys, &md->avals,
		                      &md->nannot);
	}
out:
	if (!md->ns)
		md->ns = ceb_config_strdup(r, "default");
}

/* The value node of an annotation, for error positions. */
static const struct ceb_yaml_node *annot_node(const struct ceb_config_meta *md, const char *key)
{
	return ceb_yaml_map_get(md->annots, key);
}

void ceb_config_add_entry(struct ceb_config_res *r, const char *kind, const char *ns,
                          const char *name, const struct ceb_config_meta *md, void *obj)
{
	struct ceb_config_loader *ld = r->ld;
	struct ceb_loc loc = {r->file, ceb_yaml_line(md->name_node), ceb_yaml_col(md->name_node)};

	if (ld->nentries == ld->capentries) {
		size_t cap = ld->capentries ? 2 * ld->capentries : 16;
		struct entry *p = realloc(ld->entries, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return;
		}
		ld->entries = p;
		ld->capentries = cap;
	}
	ld->entries[ld->nentries] = (struct entry){kind, ns, name, loc, obj, ld->nentries};
	ld->nentries++;
}

void ceb_config_append_kafka_source(struct ceb_config_res *r, struct ceb_kafka_source_cfg *src)
{
	*r->ld->kafka_source_tail = src;
	r->ld->kafka_source_tail = &src->next;
	r->ld->cfg->nkafka_sources++;
}

void ceb_config_append_kafka_sink(struct ceb_config_res *r, struct ceb_kafka_sink_cfg *snk)
{
	*r->ld->kafka_sink_tail = snk;
	r->ld->kafka_sink_tail = &snk->next;
	r->ld->cfg->nkafka_sinks++;
}

static void configmap_free(struct ceb_configmap *cm)
{
	if (!cm)
		return;
	free(cm->ns);
	free(cm->name);
	ceb_config_strv_free(cm->keys, cm->n);
	ceb_config_strv_free(cm->values, cm->n);
	free(cm->at);
	ceb_config_kafka_broker_free(cm->kafka);
	ceb_config_channel_template_free(cm->channel_tpl);
	free(cm);
}

static void broker_free(struct ceb_broker_cfg *b)
{
	if (!b)
		return;
	free(b->ns);
	free(b->name);
	free(b->broker_class);
	ceb_config_delivery_free(&b->delivery);
	ceb_config_strv_free(b->annot_keys, b->nannot);
	ceb_config_strv_free(b->annot_values, b->nannot);
	free(b);
}

static void trigger_free(struct ceb_trigger_cfg *t)
{
	if (!t)
		return;
	free(t->ns);
	free(t->name);
	free(t->broker);
	ceb_filter_free(t->filter);
	ceb_config_dest_free(&t->subscriber);
	ceb_config_delivery_free(&t->delivery);
	ceb_config_strv_free(t->annot_keys, t->nannot);
	ceb_config_strv_free(t->annot_values, t->nannot);
	free(t);
}

/* A kind's parse function gets the metadata (and takes what it keeps from it) and the values of its
 * own top-level fields, in the order of its fields list (see config_parse.h). */
struct kind_def {
	/* NULL-terminated: Knative serves some kinds under several versions */
	const char *const *api_versions;
	const char *kind;
	const char *const *fields; /* top-level fields besides apiVersion, kind, metadata */
	ceb_config_kind_f *parse;
};

/* data (binaryData and immutable are read and ignored: nothing here reads bytes). Each value's
 * position is kept: ConfigMaps that hold settings (a Kafka Broker's, config-br-defaults, a channel
 * template) are read once every file is loaded, and their errors point at the value. */
static void parse_configmap(struct ceb_config_res *r, struct ceb_config_meta *md,
                            const struct ceb_yaml_node *root,
                            const struct ceb_yaml_node *const *vals)
{
	struct ceb_configmap *cm;

	if (!md->name)
		return;
	cm = calloc(1, sizeof(*cm));
	if (!cm) {
		ceb_config_oom(r);
		return;
	}
	cm->ns = md->ns;
	cm->name = md->name;
	md->ns = md->name = NULL;
	cm->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	if (vals[0] && ceb_config_get_strmap(r, vals[0], "data", &cm->keys, &cm->values, &cm->n) &&
	    cm->n) {
		/* get_strmap succeeded: pair i of the map is keys[i] */
		cm->at = calloc(cm->n, sizeof(*cm->at));
		if (!cm->at)
			ceb_config_oom(r);
		for (size_t i = 0; cm->at && i < cm->n; i++)
			ceb_yaml_origin(ceb_yaml_map_value(vals[0], i), &cm->at[i]);
	}
	if (vals[2] && ceb_yaml_type(vals[2]) == CEB_YAML_SCALAR) {
		bool b;

		ceb_config_get_bool(r, vals[2], "immutable", &b);
	}
	*r->ld->cm_tail = cm;
	r->ld->cm_tail = &cm->next;
	ceb_config_add_entry(r, "ConfigMap", cm->ns, cm->name, md, cm);
}

static const char *const broker_classes[] = {"MTChannelBasedBroker", "Kafka", "RabbitMQBroker",
                                             "NatsJetStreamBroker", NULL};

/* The record resolve() keeps for a Broker, or NULL (out of memory). */
static struct broker_rec *add_broker_rec(struct ceb_config_res *r, struct ceb_broker_cfg *b,
                                         const struct ceb_config_meta *md)
{
	struct ceb_config_loader *ld = r->ld;

	if (ld->nbrecs == ld->capbrecs) {
		size_t cap = ld->capbrecs ? 2 * ld->capbrecs : 16;
		struct broker_rec *p = realloc(ld->brecs, cap * sizeof(*p));

		if (!p) {
			ld->enomem = true;
			return NULL;
		}
		ld->brecs = p;
		ld->capbrecs = cap;
	}
	ld->brecs[ld->nbrecs] = (struct broker_rec){.b = b, .file = r->file};
	ld->brecs[ld->nbrecs].at = ceb_config_loc(r, md->name_node);
	return &ld->brecs[ld->nbrecs++];
}

/* A Broker's config reference (spec.config, or config-br-defaults' at br->config_at): a ConfigMap
 * that must exist once every file is loaded (but Knative's own default channel's). ns NULL: the
 * Broker's. */
static void broker_config_ref(struct ceb_config_res *r, struct broker_rec *br, const char *api,
                              const char *kind, const char *name, const char *ns, const char *path)
{
	char q[80];

	if (strcmp(kind, "ConfigMap") || (api && strcmp(api, "v1"))) {
		ceb_config_err_at(
		        r, &br->config_at, path,
		        "only a ConfigMap (apiVersion v1) can hold a Broker's config, got %s",
		        ceb_config_quoted(q, sizeof(q), kind));
		br->config_bad = true;
		return;
	}
	br->config_ns = ceb_config_strdup(r, ns ? ns : br->b->ns);
	br->config_name = ceb_config_strdup(r, name);
	if (br->config_ns && br->config_name)
		add_check(r, "ConfigMap", br->config_ns, br->config_name, &br->config_at, path,
		          &br->b->config, NULL);
}

/* The class, spec.config and spec.delivery as the manifest gives them; resolve() fills in what it
 * leaves out from config-br-defaults, as Knative's webhook does, and checks the class's channel. */
static void parse_broker(struct ceb_config_res *r, struct ceb_config_meta *md,
                         const struct ceb_yaml_node *root, const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"config", "delivery", NULL};
	static const char *const ref_fields[] = {"apiVersion", "kind", "name", "namespace", NULL};
	const char *cls = ceb_annotation(md->akeys, md->avals, md->nannot, CLASS_ANNOTATION);
	const struct ceb_yaml_node *v[2], *rv[4];
	struct ceb_broker_cfg *b;
	struct broker_rec *br;
	char q[80], *api = NULL, *kind = NULL, *name = NULL, *ns = NULL;
	size_t i;

	if (!md->name)
		return;
	b = calloc(1, sizeof(*b));
	if (!b) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&b->delivery);
	b->ns = md->ns;
	b->name = md->name;
	b->annot_keys = md->akeys;
	b->annot_values = md->avals;
	b->nannot = md->nannot;
	md->ns = md->name = NULL;
	md->akeys = md->avals = NULL;
	b->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	*r->ld->broker_tail = b;
	r->ld->broker_tail = &b->next;
	r->ld->cfg->nbrokers++;
	ceb_config_add_entry(r, "Broker", b->ns, b->name, md, b);
	if (!(br = add_broker_rec(r, b, md)))
		return;

	if (cls) {
		br->class_at = ceb_config_loc(r, annot_node(md, CLASS_ANNOTATION));
		for (i = 0; broker_classes[i] && strcmp(cls, broker_classes[i]); i++)
			;
		if (!broker_classes[i])
			ceb_config_err(
			        r, annot_node(md, CLASS_ANNOTATION),
			        "metadata.annotations[\"" CLASS_ANNOTATION "\"]",
			        "unknown broker class \"%s\" (known: MTChannelBasedBroker, Kafka, "
			        "RabbitMQBroker, NatsJetStreamBroker)",
			        ceb_config_quoted(q, sizeof(q), cls));
		b->broker_class = ceb_config_strdup(r, cls);
	}

	if (!vals[0] || !ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	if (v[0] && ceb_config_get_fields(r, v[0], "spec.config", ref_fields, rv, NULL)) {
		br->config_given = true;
		br->config_at = ceb_config_loc(r, v[0]);
		if (!rv[1] || !rv[2]) {
			ceb_config_err(r, v[0], !rv[1] ? "spec.config.kind" : "spec.config.name",
			               "required field missing");
			br->config_bad = true;
		} else if (ceb_config_get_str(r, rv[0], "spec.config.apiVersion", &api) &&
		           ceb_config_get_str(r, rv[1], "spec.config.kind", &kind) &&
		           ceb_config_get_str(r, rv[2], "spec.config.name", &name) &&
		           ceb_config_get_str(r, rv[3], "spec.config.namespace", &ns)) {
			broker_config_ref(r, br, api, kind, name, ns, "spec.config");
			br->config_kind = kind;
			kind = NULL;
		} else {
			br->config_bad = true;
		}
		free(api);
		free(kind);
		free(name);
		free(ns);
	}
	if (v[1]) {
		br->delivery_given = true;
		ceb_config_parse_delivery(r, v[1], "spec.delivery", true, &b->delivery);
	}
}

static void parse_trigger(struct ceb_config_res *r, struct ceb_config_meta *md,
                          const struct ceb_yaml_node *root, const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"broker",     "brokerRef", "filter", "filters",
	                                          "subscriber", "delivery",  NULL};
	const char *order = ceb_annotation(md->akeys, md->avals, md->nannot,
	                                   "kafka.eventing.knative.dev/delivery.order");
	const struct ceb_yaml_node *v[6];
	struct ceb_trigger_cfg *t;
	char q[80], p[512];

	if (!md->name)
		return;
	t = calloc(1, sizeof(*t));
	if (!t) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&t->delivery);
	t->ns = md->ns;
	t->name = md->name;
	t->annot_keys = md->akeys;
	t->annot_values = md->avals;
	t->nannot = md->nannot;
	md->ns = md->name = NULL;
	md->akeys = md->avals = NULL;
	t->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	*r->ld->trigger_tail = t;
	r->ld->trigger_tail = &t->next;
	r->ld->cfg->ntriggers++;
	ceb_config_add_entry(r, "Trigger", t->ns, t->name, md, t);

	if (order && !strcmp(order, "ordered"))
		t->ordered = true;
	else if (order && strcmp(order, "unordered"))
		ceb_config_err(
		        r, annot_node(md, "kafka.eventing.knative.dev/delivery.order"),
		        "metadata.annotations[\"kafka.eventing.knative.dev/delivery.order\"]",
		        "\"%s\" is not a delivery order (ordered or unordered)",
		        ceb_config_quoted(q, sizeof(q), order));

	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a Trigger needs spec.broker and "
		               "spec.subscriber)");
		return;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	if (v[1])
		ceb_config_err(r, v[1], "spec.brokerRef",
		               "not supported (cross-namespace Triggers); use spec.broker with a "
		               "Broker in the Trigger's namespace");
	else if (!v[0])
		ceb_config_err(r, vals[0], "spec.broker", "required field missing");
	else if (ceb_config_get_str(r, v[0], "spec.broker", &t->broker))
		ceb_config_add_check(r, "Broker", t->ns, t->broker, v[0], "spec.broker", NULL,
		                     &t->broker_cfg);

	t->filter = ceb_config_parse_filters(r, v[2], v[3]);

	if (!v[4])
		ceb_config_err(r, vals[0], "spec.subscriber", "required field missing");
	else
		ceb_config_parse_dest(r, v[4], "spec.subscriber", &t->subscriber);
	if (v[5])
		ceb_config_parse_delivery(r, v[5],
		                          ceb_config_path_key(p, sizeof(p), "spec", "delivery"),
		                          true, &t->delivery);
}

/* The text of a present scalar, else NULL (no report: for names in messages). */
static const char *peek_str(const struct ceb_yaml_node *n)
{
	return ceb_yaml_is_null(n) ? NULL : ceb_yaml_str(n);
}

static const char *const spec_only[] = {"spec", NULL};
static const char *const configmap_fields[] = {"data", "binaryData", "immutable", NULL};
static const char *const eventing_v1[] = {CEB_EVENTING_V1, NULL};
static const char *const eventing_v1alpha1[] = {CEB_EVENTING_V1ALPHA1, NULL};
static const char *const core_v1[] = {"v1", NULL};
static const char *const sources_v1[] = {"sources.knative.dev/v1", "sources.knative.dev/v1beta1",
                                         NULL};

/* The kinds this build loads. A new kind is one entry here and its parse function (see
 * config_parse.h). */
static const struct kind_def kinds[] = {
        {eventing_v1, "Broker", spec_only, parse_broker},
        {eventing_v1, "Trigger", spec_only, parse_trigger},
        {core_v1, "ConfigMap", configmap_fields, parse_configmap},
        {sources_v1, "KafkaSource", spec_only, ceb_config_parse_kafka_source},
        {eventing_v1alpha1, "KafkaSink", spec_only, ceb_config_parse_kafka_sink},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* API groups that are cebroker's to serve: an unknown kind in one of them is an error (so that a typo
 * such as Triger is caught), where a document of any other group (a Namespace, a Deployment, a
 * Service, a Knative Service...) is skipped with a note: manifests put them in the same files. */
static const char *const eventing_groups[] = {"eventing.knative.dev",
                                              "messaging.knative.dev",
                                              "sources.knative.dev",
                                              "flows.knative.dev",
                                              "sinks.knative.dev",
                                              "sources.cebroker.dev",
                                              NULL};

/* Knative kinds this build cannot run yet: refused as such, not as unknown. */
static const char *const later_kinds[] = {"PingSource",
                                          "ContainerSource",
                                          "SinkBinding",
                                          "ApiServerSource",
                                          "Channel",
                                          "InMemoryChannel",
                                          "KafkaChannel",
                                          "NatsJetStreamChannel",
                                          "Subscription",
                                          "Sequence",
                                          "Parallel",
                                          "JobSink",
                                          "IntegrationSink",
                                          "IntegrationSource",
                                          "EventType",
                                          "EventPolicy",
                                          "EventTransform",
                                          "RequestReply",
                                          "RabbitmqBrokerConfig",
                                          "RabbitmqSource",
                                          NULL};

static bool in_list(const char *const *list, const char *s, size_t len)
{
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == len && !memcmp(list[i], s, len))
			return true;
	return false;
}

/* The group of an apiVersion ("" for the core group's "v1"). */
static bool eventing_group(const char *api)
{
	const char *slash = strchr(api, '/');

	return slash && in_list(eventing_groups, api, (size_t)(slash - api));
}

/* "Broker (eventing.knative.dev/v1), ..., KafkaSource (sources.knative.dev/v1 or ...v1beta1), ..." */
static const char *supported_kinds(char *buf, size_t sz)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NKINDS && len < sz; i++) {
		len += (size_t)snprintf(buf + len, sz - len, "%s%s (", i ? ", " : "",
		                        kinds[i].kind);
		for (size_t j = 0; kinds[i].api_versions[j] && len < sz; j++)
			len += (size_t)snprintf(buf + len, sz - len, "%s%s", j ? " or " : "",
			                        kinds[i].api_versions[j]);
		if (len < sz)
			len += (size_t)snprintf(buf + len, sz - len, ")");
	}
	return buf;
}

static bool kind_serves(const struct kind_def *def, const char *api)
{
	for (size_t j = 0; def->api_versions[j]; j++)
		if (!strcmp(api, def->api_versions[j]))
			return true;
	return false;
}

static void load_resource(struct ceb_config_loader *ld, const char *file,
                          const struct ceb_yaml_node *root);

/* What `kubectl get -o yaml` prints for several objects: a v1 List whose items are resources. */
static void load_list(struct ceb_config_loader *ld, struct ceb_config_res *r,
                      const struct ceb_yaml_node *root)
{
	static const char *const fields[] = {"apiVersion", "kind", "metadata", "items", NULL};
	const struct ceb_yaml_node *v[4];
	char p[64];

	snprintf(r->who, sizeof(r->who), "List");
	if (!ceb_config_get_fields(r, root, "", fields, v, NULL) || !v[3])
		return;
	if (!ceb_config_want_seq(r, v[3], "items"))
		return;
	for (size_t i = 0; i < ceb_yaml_size(v[3]) && !ld->enomem && !ld->stop; i++) {
		const struct ceb_yaml_node *it = ceb_yaml_seq_item(v[3], i);

		if (ceb_yaml_type(it) != CEB_YAML_MAP)
			ceb_config_err(r, it, ceb_config_path_idx(p, sizeof(p), "items", i),
			               "expected a resource (a mapping), got %s",
			               ceb_yaml_describe(it));
		else
			load_resource(ld, r->file, it);
	}
}

/* A document of a group cebroker does not serve: one line saying so, and nothing else. */
static void skip_resource(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                          const char *kind, const char *api, const char *ns, const char *name)
{
	struct ceb_loc at = ceb_config_loc(r, root);
	char q[80], q2[80], q3[80], q4[80];

	r->who[0] = '\0';
	ceb_config_note_at(r, false, &at, NULL,
	                   "skipped %s %s%s%s (%s): not a kind cebroker serves",
	                   ceb_config_quoted(q, sizeof(q), kind),
	                   ns ? ceb_config_quoted(q2, sizeof(q2), ns) : "", ns ? "/" : "",
	                   name ? ceb_config_quoted(q3, sizeof(q3), name) : "(no name)",
	                   ceb_config_quoted(q4, sizeof(q4), api));
}

static void load_resource(struct ceb_config_loader *ld, const char *file,
                          const struct ceb_yaml_node *root)
{
	const struct ceb_yaml_node *kn, *an, *mn, *vals[8], *keys[8];
	const char *names[8], *kind, *api, *name, *ns;
	const struct kind_def *def = NULL;
	struct ceb_config_res r = {.ld = ld, .file = file};
	struct ceb_config_meta md = {0};
	char q[80], q2[80], sup[512];
	bool kind_known = false;
	size_t nf = 0;

	if (ceb_yaml_is_null(root))
		return; /* an empty document */
	if (ceb_yaml_type(root) != CEB_YAML_MAP) {
		file_err(ld, file, ceb_yaml_line(root), ceb_yaml_col(root),
		         "a resource must be a mapping with apiVersion, kind and metadata, got %s",
		         ceb_yaml_describe(root));
		return;
	}
	kn = ceb_yaml_map_get(root, "kind");
	an = ceb_yaml_map_get(root, "apiVersion");
	mn = ceb_yaml_map_get(root, "metadata");
	kind = peek_str(kn);
	api = peek_str(an);
	name = peek_str(ceb_yaml_map_get(mn, "name"));
	ns = peek_str(ceb_yaml_map_get(mn, "namespace"));
	snprintf(r.who, sizeof(r.who), "%s %s/%s",
	         kind ? ceb_config_quoted(q, sizeof(q), kind) : "resource", ns ? ns : "default",
	         name ? ceb_config_quoted(q2, sizeof(q2), name) : "(no name)");
	for (size_t i = 0; kind && i < NKINDS; i++)
		if (!strcmp(kind, kinds[i].kind)) {
			kind_known = true;
			if (api && kind_serves(&kinds[i], api))
				def = &kinds[i];
		}
	if (!kind) {
		ceb_config_err(&r, kn ? kn : root, "kind", "required field missing (supported: %s)",
		               supported_kinds(sup, sizeof(sup)));
		return;
	}
	if (!kind_known && api && !strcmp(kind, "List") && !strcmp(api, "v1")) {
		load_list(ld, &r, root);
		return;
	}
	if (!kind_known && api && !eventing_group(api)) {
		skip_resource(&r, root, kind, api, ns, name);
		return;
	}
	if (!kind_known) {
		if (in_list(later_kinds, kind, strlen(kind)))
			ceb_config_err(&r, kn, "kind",
			               "%s is a Knative kind that cebroker does not run yet "
			               "(supported: %s)",
			               kind, supported_kinds(sup, sizeof(sup)));
		else
			ceb_config_err(&r, kn, "kind", "unknown kind \"%s\" (supported: %s)",
			               ceb_config_quoted(q, sizeof(q), kind),
			               supported_kinds(sup, sizeof(sup)));
		return;
	}
	if (!def) {
		if (!api)
			ceb_config_err(&r, an ? an : root, "apiVersion",
			               "required field missing (supported: %s)",
			               supported_kinds(sup, sizeof(sup)));
		else
			ceb_config_err(&r, an, "apiVersion",
			               "unknown apiVersion \"%s\" for %s (supported: %s)",
			               ceb_config_quoted(q, sizeof(q), api), kind,
			               supported_kinds(sup, sizeof(sup)));
		return;
	}

	/* status is what the system reports (kubectl prints it): read past, like the metadata that
	 * the API server fills in */
	names[nf++] = "apiVersion";
	names[nf++] = "kind";
	names[nf++] = "metadata";
	names[nf++] = "status";
	for (size_t i = 0; def->fields[i] && nf < 7; i++)
		names[nf++] = def->fields[i];
	names[nf] = NULL;
	ceb_config_get_fields(&r, root, "", names, vals, keys);
	parse_meta(&r, root, vals[2], &md);
	r.ns = md.ns;
	if (!ld->enomem && md.ns)
		def->parse(&r, &md, root, vals + 4);
	meta_free(&md);
}

/* ------------------------------------------------------------------------------------------------
 * Files, directories, and the checks that need every resource.
 */

/* Keep a file name for the locations (and the error order) that point to it. */
static const char *add_file(struct ceb_config_loader *ld, const char *name)
{
	struct ceb_config *cfg = ld->cfg;
	char **files, *copy;

	files = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*files));
	if (!files) {
		ld->enomem = true;
		return NULL;
	}
	cfg->files = files;
	copy = xstrdup(ld, name);
	if (!copy)
		return NULL;
	cfg->files[cfg->nfiles++] = copy;
	return copy;
}

/* The YAML reader hands over documents and its own errors, located in the file being read. */
struct reading {
	struct ceb_config_loader *ld;
	const char *file;
};

static int on_document(void *arg, const struct ceb_yaml_node *root)
{
	struct reading *rd = arg;

	load_resource(rd->ld, rd->file, root);
	return rd->ld->stop || rd->ld->enomem;
}

static int on_yaml_error(void *arg, int line, int col, const char *msg)
{
	struct reading *rd = arg;

	file_err(rd->ld, rd->file, line, col, "%s", msg);
	return rd->ld->stop || rd->ld->enomem;
}

/* file is the name add_file() kept; data NULL reads the file of that name. */
static void load_yaml(struct ceb_config_loader *ld, const char *file, const char *data, size_t len)
{
	struct reading rd = {ld, file};
	const struct ceb_yaml_handler h = {on_document, on_yaml_error, &rd};
	int rc = data ? ceb_yaml_load_buffer(data, len, &h) : ceb_yaml_load_file(file, &h);

	if (rc == CEB_ENOMEM)
		ld->enomem = true;
}

static void load_file(struct ceb_config_loader *ld, const char *name)
{
	const char *path = add_file(ld, name);

	if (path)
		load_yaml(ld, path, NULL, 0);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool yaml_name(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.') /* editors' and tools' hidden files */
		return false;
	return (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
	       (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static void load_dir(struct ceb_config_loader *ld, const char *name)
{
	const char *path = add_file(ld, name);
	DIR *dir = path ? opendir(path) : NULL;
	struct dirent *de;
	char **names = NULL, **grown;
	size_t n = 0, cap = 0, found = 0;
	bool slash;

	if (!path)
		return;
	slash = *path && path[strlen(path) - 1] == '/';
	if (!dir) {
		file_err(ld, path, 0, 0, "cannot read: %s", strerror(errno));
		return;
	}
	while ((de = readdir(dir))) {
		if (!yaml_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(names, cap * sizeof(*names));
			if (!grown) {
				ld->enomem = true;
				goto out;
			}
			names = grown;
		}
		if (!(names[n] = xstrdup(ld, de->d_name)))
			goto out;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n && !ld->enomem && !ld->stop; i++) {
		struct stat st;
		struct ceb_buf full = CEB_BUF_INIT;

		ceb_buf_printf(&full, "%s%s%s", path, slash ? "" : "/", names[i]);
		if (full.failed) {
			ld->enomem = true;
			ceb_buf_free(&full);
			break;
		}
		if (stat(full.p, &st) == 0 && S_ISREG(st.st_mode)) { /* not recursive */
			load_file(ld, full.p);
			found++;
		}
		ceb_buf_free(&full);
	}
	if (!found && !ld->enomem)
		file_err(ld, path, 0, 0, "no *.yaml or *.yml files in this directory");
out:
	ceb_config_strv_free(names, n);
	closedir(dir);
}

static int cmp_entries(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->kind, y->kind);

	if (!c)
		c = strcmp(x->ns, y->ns);
	if (!c)
		c = strcmp(x->name, y->name);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static const struct entry *find_entry(const struct entry *sorted, size_t n, const char *kind,
                                      const char *ns, const char *name)
{
	struct entry key = {.kind = kind, .ns = ns, .name = name, .seq = 0};
	size_t lo = 0, hi = n;

	/* lower bound: the first definition wins when there are duplicates */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cmp_entries(&sorted[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && !strcmp(sorted[lo].kind, kind) && !strcmp(sorted[lo].ns, ns) &&
	    !strcmp(sorted[lo].name, name))
		return &sorted[lo];
	return NULL;
}

/* ConfigMaps that hold settings rather than a Broker's config: cebroker's address tables and
 * Knative's config-br-defaults (from its own namespace only, as Knative reads it). */
static void read_settings(struct ceb_config_loader *ld)
{
	const char *opt_file = NULL;

	for (struct ceb_configmap *cm = ld->cfg->configmaps; cm && !ld->enomem; cm = cm->next) {
		struct ceb_config_res r = {.ld = ld, .file = cm->loc.file, .ns = cm->ns};

		snprintf(r.who, sizeof(r.who), "ConfigMap %s/%s", cm->ns, cm->name);
		if (ceb_config_refs_is_table(cm)) {
			ceb_config_refs_read_table(&r, ld->refs, cm);
		} else if (ceb_config_defaults_is(cm)) {
			ld->defaults = ceb_config_defaults_read(&r, cm);
			ld->defaults_cm = cm;
		} else if (!strcmp(cm->name, "config-br-defaults")) {
			ceb_config_note_at(&r, true, &cm->loc, NULL,
			                   "not read: Knative reads config-br-defaults from "
			                   "namespace " SYSTEM_NAMESPACE " only");
		}
	}
	if (ld->opts && ld->opts->naddresses && (opt_file = add_file(ld, "--address"))) {
		struct ceb_config_res r = {.ld = ld, .file = opt_file, .ns = "default"};

		ceb_config_refs_read_options(&r, ld->refs);
	}
}

static void broker_res(struct ceb_config_loader *ld, const struct broker_rec *br,
                       struct ceb_config_res *r)
{
	*r = (struct ceb_config_res){.ld = ld, .file = br->file, .ns = br->b->ns};
	snprintf(r->who, sizeof(r->who), "Broker %s/%s", br->b->ns, br->b->name);
}

/* What config-br-defaults gives a Broker that leaves its class, config or delivery out, as Knative's
 * webhook fills them in: the config reference and the delivery (its dead-letter sink, retry and
 * backoff only) when the Broker has none, the class when it has no annotation. */
static void broker_defaults(struct ceb_config_loader *ld, struct broker_rec *br)
{
	struct ceb_config_broker_defaults dflt;
	struct ceb_broker_cfg *b = br->b;
	struct ceb_config_res r;
	struct ceb_delivery *dl = &b->delivery;
	char what[256] = "";
	size_t len = 0;

	if (!ld->defaults)
		return;
	broker_res(ld, br, &r);
	ceb_config_defaults_for(ld->defaults, b->ns, b->broker_class,
	                        br->config_given ? br->config_kind : NULL, &dflt);
	if (!br->config_given && dflt.ref) {
		br->config_at = dflt.ref->at;
		broker_config_ref(&r, br, dflt.ref->api, dflt.ref->kind, dflt.ref->name,
		                  dflt.ref->ns, "spec.config (from config-br-defaults)");
		len += (size_t)snprintf(what + len, sizeof(what) - len, "spec.config %s/%s",
		                        dflt.ref->ns ? dflt.ref->ns : b->ns, dflt.ref->name);
	}
	if (!br->delivery_given && dflt.delivery && len < sizeof(what)) {
		const struct ceb_delivery *src = dflt.delivery;

		/* unset fields hold the values that mean unset (0 retries, exponential), so a
		 * delivery of only unset fields is the same as none, as in Knative */
		ceb_config_delivery_free(dl);
		dl->retry = src->retry;
		dl->backoff_policy = src->backoff_policy;
		dl->backoff_delay_ms = src->backoff_delay_ms;
		dl->set = src->has_dls || src->retry || src->backoff_delay_ms ||
		          src->backoff_policy != CEB_BACKOFF_EXPONENTIAL;
		if (src->has_dls) {
			if (!ceb_config_dest_copy(&dl->dls, &src->dls)) {
				ceb_config_oom(&r);
				return;
			}
			dl->has_dls = true;
			ceb_config_bind_dest(&r, &dl->dls, "spec.delivery.deadLetterSink");
		}
		len += (size_t)snprintf(what + len, sizeof(what) - len, "%sspec.delivery",
		                        len ? ", " : "");
	}
	if (!b->broker_class && dflt.broker_class && len < sizeof(what)) {
		if (!(b->broker_class = ceb_config_strdup(&r, dflt.broker_class)))
			return;
		br->class_at = dflt.class_at;
		br->class_defaulted = true;
		len += (size_t)snprintf(what + len, sizeof(what) - len, "%sclass %s",
		                        len ? ", " : "", dflt.broker_class);
	}
	if (dflt.same_namespace && br->config_ns && strcmp(br->config_ns, b->ns))
		ceb_config_err_at(&r, &br->config_at, "spec.config.namespace",
		                  "%s is not the Broker's namespace, and config-br-defaults sets "
		                  "disallowDifferentNamespaceConfig",
		                  br->config_ns);
	if (len)
		ceb_config_note_at(&r, false, &br->at, NULL,
		                   "%s from config-br-defaults (%s:%d:%d)", what,
		                   ld->defaults_cm->loc.file, ld->defaults_cm->loc.line,
		                   ld->defaults_cm->loc.col);
}

/* The channel that stores a Broker's events, which this build must include: the class's, or for
 * MTChannelBasedBroker the one its ConfigMap's channel template names. A Kafka Broker's ConfigMap is
 * read here, so that `validate` finds what the channel would refuse at start. */
static void broker_channel(struct ceb_config_loader *ld, struct broker_rec *br)
{
	struct ceb_broker_cfg *b = br->b;
	struct ceb_config_res r;
	const struct ceb_loc *cls_at = br->class_at.line ? &br->class_at : &br->at;
	const char *path = br->class_defaulted ? "class (from config-br-defaults)"
	                   : br->class_at.line ? "metadata.annotations[\"" CLASS_ANNOTATION "\"]"
	                                       : "class";
	size_t i;

	broker_res(ld, br, &r);
	if (!b->broker_class && !(b->broker_class = ceb_config_strdup(&r, DEFAULT_BROKER_CLASS)))
		return;
	for (i = 0; broker_classes[i] && strcmp(b->broker_class, broker_classes[i]); i++)
		;
	if (!broker_classes[i])
		return; /* reported where the class was given */
	/* a config reference that was refused, or named a ConfigMap that is missing, was reported;
	 * Knative's own default channel ConfigMap, missing, means InMemoryChannel */
	if (br->config_bad ||
	    (br->config_name && !b->config && !default_channel_cm(br->config_ns, br->config_name)))
		return;
	if (!strcmp(b->broker_class, DEFAULT_BROKER_CLASS)) {
		b->channel = ceb_config_channel_template(&r, (struct ceb_configmap *)b->config,
		                                         &br->config_at);
		return;
	}
	b->channel = ceb_channel_for_class(b->broker_class);
	if (!b->channel || !ceb_channel_ops_find(b->channel)) {
		ceb_config_err_at(
		        &r, cls_at, path,
		        "class %s needs the %s channel, which this build does not include%s",
		        b->broker_class, b->channel ? b->channel : "?",
		        b->channel && !strcmp(b->channel, "kafka")
		                ? " (configure found no librdkafka)"
		                : "");
		b->channel = NULL;
		return;
	}
	if (!strcmp(b->broker_class, "Kafka")) {
		if (b->config)
			ceb_config_kafka_broker_read(&r, (struct ceb_configmap *)b->config);
		else
			ceb_config_err_at(
			        &r, br->config_name ? &br->config_at : &br->at, "spec.config",
			        "a Kafka Broker needs spec.config naming a ConfigMap with "
			        "bootstrap.servers");
	}
}

static void resolve(struct ceb_config_loader *ld)
{
	struct entry *sorted = NULL;
	size_t n = ld->nentries, *dup_of = NULL;

	if (n) {
		sorted = malloc(n * sizeof(*sorted));
		dup_of = malloc(n * sizeof(*dup_of));
		if (!sorted || !dup_of) {
			ld->enomem = true;
			goto out;
		}
		memcpy(sorted, ld->entries, n * sizeof(*sorted));
		qsort(sorted, n, sizeof(*sorted), cmp_entries);
	}
	/* duplicates, reported in the order they were defined */
	for (size_t i = 0; i < n; i++)
		dup_of[i] = SIZE_MAX;
	for (size_t i = 1; i < n; i++)
		if (!strcmp(sorted[i].kind, sorted[i - 1].kind) &&
		    !strcmp(sorted[i].ns, sorted[i - 1].ns) &&
		    !strcmp(sorted[i].name, sorted[i - 1].name))
			dup_of[sorted[i].seq] = sorted[i - 1].seq;
	for (size_t i = 0; i < n; i++) {
		const struct entry *e = &ld->entries[i], *first;
		struct ceb_buf who = CEB_BUF_INIT;

		if (dup_of[i] == SIZE_MAX)
			continue;
		while (dup_of[dup_of[i]] != SIZE_MAX)
			dup_of[i] = dup_of[dup_of[i]];
		first = &ld->entries[dup_of[i]];
		ceb_buf_printf(&who, "%s %s/%s", e->kind, e->ns, e->name);
		file_err(ld, e->loc.file, e->loc.line, e->loc.col,
		         "%s: metadata.name: duplicate %s (first defined at %s:%d:%d)",
		         who.p ? who.p : e->kind, e->kind, first->loc.file, first->loc.line,
		         first->loc.col);
		ceb_buf_free(&who);
	}
	read_settings(ld);
	for (size_t i = 0; i < ld->nbrecs && !ld->enomem; i++)
		broker_defaults(ld, &ld->brecs[i]);
	for (size_t i = 0; i < ld->nchecks; i++) {
		const struct check *c = &ld->checks[i];
		const struct entry *e = find_entry(sorted, n, c->kind, c->ns, c->name);

		if (!e && c->optional)
			continue;
		if (!e) {
			file_err(ld, c->loc.file, c->loc.line, c->loc.col,
			         "%s: %s: %s %s/%s not found", c->who, c->path, c->kind, c->ns,
			         c->name);
			continue;
		}
		if (c->cm_out)
			*c->cm_out = e->obj;
		if (c->broker_out)
			*c->broker_out = e->obj;
	}
	for (size_t i = 0; i < ld->nbrecs && !ld->enomem; i++)
		broker_channel(ld, &ld->brecs[i]);
	ceb_config_refs_resolve(ld, ld->refs);
	/* a KafkaSink takes events at /<ns>/<name> on the Brokers' ingress: one path, one owner */
	for (size_t i = 0; i < ld->nentries; i++) {
		const struct entry *e = &ld->entries[i];

		if (strcmp(e->kind, "KafkaSink") ||
		    !find_entry(sorted, n, "Broker", e->ns, e->name))
			continue;
		file_err(ld, e->loc.file, e->loc.line, e->loc.col,
		         "KafkaSink %s/%s: metadata.name: /%s/%s is already the address of Broker "
		         "%s/%s",
		         e->ns, e->name, e->ns, e->name, e->ns, e->name);
	}
	/* Knative: a Trigger that sets any delivery field ignores its Broker's delivery as a whole */
	for (struct ceb_trigger_cfg *t = ld->cfg->triggers; t && !ld->enomem; t = t->next) {
		if (t->delivery.set || !t->broker_cfg)
			continue;
		ceb_config_delivery_free(&t->delivery);
		if (!ceb_config_delivery_copy(&t->delivery, &t->broker_cfg->delivery))
			ld->enomem = true;
	}
out:
	free(sorted);
	free(dup_of);
}

/* ------------------------------------------------------------------------------------------------
 * The API.
 */

void ceb_config_free(struct ceb_config *cfg)
{
	if (!cfg)
		return;
	while (cfg->configmaps) {
		struct ceb_configmap *next = cfg->configmaps->next;

		configmap_free(cfg->configmaps);
		cfg->configmaps = next;
	}
	while (cfg->brokers) {
		struct ceb_broker_cfg *next = cfg->brokers->next;

		broker_free(cfg->brokers);
		cfg->brokers = next;
	}
	while (cfg->triggers) {
		struct ceb_trigger_cfg *next = cfg->triggers->next;

		trigger_free(cfg->triggers);
		cfg->triggers = next;
	}
	while (cfg->kafka_sources) {
		struct ceb_kafka_source_cfg *next = cfg->kafka_sources->next;

		ceb_config_kafka_source_free(cfg->kafka_sources);
		cfg->kafka_sources = next;
	}
	while (cfg->kafka_sinks) {
		struct ceb_kafka_sink_cfg *next = cfg->kafka_sinks->next;

		ceb_config_kafka_sink_free(cfg->kafka_sinks);
		cfg->kafka_sinks = next;
	}
	ceb_config_strv_free(cfg->files, cfg->nfiles);
	for (size_t i = 0; i < cfg->nnotes; i++)
		free(cfg->notes[i].text);
	free(cfg->notes);
	free(cfg);
}

static int loader_begin(struct ceb_config_loader *ld, struct ceb_config_errors *errs,
                        const struct ceb_config_opts *opts)
{
	memset(ld, 0, sizeof(*ld));
	ld->errs = errs;
	ld->opts = opts;
	ld->cfg = calloc(1, sizeof(*ld->cfg));
	ld->refs = ceb_config_refs_new(opts);
	if (!ld->cfg || !ld->refs)
		return CEB_ENOMEM;
	ld->cm_tail = &ld->cfg->configmaps;
	ld->broker_tail = &ld->cfg->brokers;
	ld->trigger_tail = &ld->cfg->triggers;
	ld->kafka_source_tail = &ld->cfg->kafka_sources;
	ld->kafka_sink_tail = &ld->cfg->kafka_sinks;
	return 0;
}

static int loader_end(struct ceb_config_loader *ld, struct ceb_config **out)
{
	int rc;

	if (!ld->enomem && !ld->stop)
		resolve(ld);
	flush_errors(ld);
	if (ld->enomem)
		rc = CEB_ENOMEM;
	else if (ld->nerr || ld->stop)
		rc = CEB_ECONFIG;
	else
		rc = 0;
	if (rc == 0) {
		flush_notes(ld, ld->cfg);
		if (ld->enomem)
			rc = CEB_ENOMEM;
	}
	flush_notes(ld, NULL);
	if (rc == 0) {
		*out = ld->cfg;
		ld->cfg = NULL;
	}
	ceb_config_free(ld->cfg);
	for (size_t i = 0; i < ld->nchecks; i++)
		check_free(&ld->checks[i]);
	free(ld->checks);
	free(ld->entries);
	for (size_t i = 0; i < ld->nbrecs; i++) {
		free(ld->brecs[i].config_kind);
		free(ld->brecs[i].config_ns);
		free(ld->brecs[i].config_name);
	}
	free(ld->brecs);
	ceb_config_refs_free(ld->refs);
	ceb_config_defaults_free(ld->defaults);
	return rc;
}

/* errs may be NULL (nobody reads the messages); the loader still needs somewhere to count. */
static int load(const char *const *paths, size_t npaths, const char *name, const char *yaml,
                size_t len, const struct ceb_config_opts *opts, struct ceb_config **out,
                struct ceb_config_errors *errs)
{
	struct ceb_config_errors scratch = {CEB_BUF_INIT, 0};
	struct ceb_config_errors *e = errs ? errs : &scratch;
	struct ceb_config_loader ld;
	int rc;

	if (!out)
		return CEB_EINVAL;
	rc = loader_begin(&ld, e, opts);
	if (rc < 0) {
		free(ld.cfg);
		ceb_config_refs_free(ld.refs);
		return rc;
	}
	if (yaml) {
		const char *file = add_file(&ld, name ? name : "<string>");

		if (file)
			load_yaml(&ld, file, yaml, len);
	} else if (npaths == 0) {
		const char *file = add_file(&ld, "cebroker");

		if (file)
			file_err(&ld, file, 0, 0, "no configuration files given");
	}
	for (size_t i = 0; !yaml && i < npaths && !ld.enomem && !ld.stop; i++) {
		struct stat st;

		if (stat(paths[i], &st) != 0)
			load_file(&ld, paths[i]); /* reports why it cannot be read */
		else if (S_ISDIR(st.st_mode))
			load_dir(&ld, paths[i]);
		else
			load_file(&ld, paths[i]);
	}
	rc = loader_end(&ld, out);
	ceb_buf_free(&scratch.text);
	return rc;
}

int ceb_config_load(const char *const *paths, size_t npaths, struct ceb_config **out,
                    struct ceb_config_errors *errs)
{
	return load(paths, npaths, NULL, NULL, 0, NULL, out, errs);
}

int ceb_config_load_opts(const char *const *paths, size_t npaths,
                         const struct ceb_config_opts *opts, struct ceb_config **out,
                         struct ceb_config_errors *errs)
{
	return load(paths, npaths, NULL, NULL, 0, opts, out, errs);
}

int ceb_config_load_string(const char *name, const char *yaml, size_t len, struct ceb_config **out,
                           struct ceb_config_errors *errs)
{
	if (!yaml)
		return CEB_EINVAL;
	return load(NULL, 0, name, yaml, len, NULL, out, errs);
}

int ceb_config_load_string_opts(const char *name, const char *yaml, size_t len,
                                const struct ceb_config_opts *opts, struct ceb_config **out,
                                struct ceb_config_errors *errs)
{
	if (!yaml)
		return CEB_EINVAL;
	return load(NULL, 0, name, yaml, len, opts, out, errs);
}

const struct ceb_broker_cfg *ceb_config_find_broker(const struct ceb_config *cfg, const char *ns,
                                                    const char *name)
{
	for (const struct ceb_broker_cfg *b = cfg ? cfg->brokers : NULL; b; b = b->next)
		if (!strcmp(b->ns, ns) && !strcmp(b->name, name))
			return b;
	return NULL;
}

const struct ceb_kafka_sink_cfg *ceb_config_find_kafka_sink(const struct ceb_config *cfg,
                                                            const char *ns, const char *name)
{
	for (const struct ceb_kafka_sink_cfg *snk = cfg ? cfg->kafka_sinks : NULL; snk;
	     snk = snk->next)
		if (!strcmp(snk->ns, ns) && !strcmp(snk->name, name))
			return snk;
	return NULL;
}

const char *ceb_configmap_get(const struct ceb_configmap *cm, const char *key)
{
	for (size_t i = 0; cm && i < cm->n; i++)
		if (!strcmp(cm->keys[i], key))
			return cm->values[i];
	return NULL;
}

const char *ceb_annotation(char *const *keys, char *const *values, size_t n, const char *key)
{
	for (size_t i = 0; keys && i < n; i++)
		if (!strcmp(keys[i], key))
			return values[i];
	return NULL;
}
