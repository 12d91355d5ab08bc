/* The Kafka family's resource kinds: KafkaSource (records of existing topics to a sink) and
 * KafkaSink (events posted to /<ns>/<name> stored in a topic), as Knative's eventing-kafka-broker
 * has them, and the reader of a Kafka Broker's ConfigMap; listed in broker/config/kinds.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/buf.h"
#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/yaml.h"
#include "broker/ce/event.h"
#include "channels/channel.h"
#include "channels/kafka/kinds.h"

extern const struct ceb_broker_config_reader ceb_broker_config_kafka;
extern const struct ceb_channel_kind ceb_channel_kind_kafka;

#define KEY_TYPE_LABEL "kafkasources.sources.knative.dev/key-type"
#define MAX_TOPIC      249 /* Kafka's limit (kafka.common.internals.Topic) */
#define MAX_GROUP_ID   255
/* What a Kafka Broker's ConfigMap leaves out, as Knative's eventing-kafka-broker has it */
#define DEFAULT_PARTITIONS  10
#define DEFAULT_REPLICATION 1
#define DEFAULT_CONFIRM_MS  10000 /* how long a POST waits for Kafka's acknowledgement */
#define DEFAULT_START_MS    30000 /* how long start-up waits for the cluster */

/* ------------------------------------------------------------------------------------------------
 * Values both kinds use.
 */

/* Kafka's rule for topic names: what a broker accepts. */
static bool topic_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MAX_TOPIC || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static bool check_topic(struct ceb_config_res *r, const struct ceb_yaml_node *at, const char *path,
                        const char *s)
{
	char q[80];

	if (topic_name(s))
		return true;
	ceb_config_err(r, at, path,
	               "\"%s\" is not a valid Kafka topic name (1 to 249 characters of a-z, A-Z, "
	               "0-9, '.', '_' and '-', but not \".\" or \"..\")",
	               ceb_config_quoted(q, sizeof(q), s));
	return false;
}

/* The text of a list item that must be a string, or NULL (reported). The reader owns it. */
static const char *item_str(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                            const char *path)
{
	if (ceb_yaml_type(n) == CEB_YAML_SCALAR && !ceb_yaml_is_null(n))
		return ceb_yaml_str(n);
	ceb_config_err(r, n, path, "expected a string, got %s", ceb_yaml_describe(n));
	return NULL;
}

/* The index of s in choices (NULL-terminated), or -1 after reporting at `at`: "\"s\" is not
 * <what> (a, b or c)". */
static int choose(struct ceb_config_res *r, const struct ceb_yaml_node *at, const char *path,
                  const char *what, const char *s, const char *const *choices)
{
	char list[128], q[80];
	size_t n, len = 0;

	for (n = 0; choices[n]; n++)
		if (!strcmp(s, choices[n]))
			return (int)n;
	list[0] = '\0';
	for (size_t i = 0; i < n && len < sizeof(list); i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";

		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", sep, choices[i]);
	}
	ceb_config_err(r, at, path, "\"%s\" is not %s (%s)", ceb_config_quoted(q, sizeof(q), s),
	               what, list);
	return -1;
}

/* A string field that must be one of choices: its index, or -1 (reported). n not NULL. */
static int get_choice(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                      const char *what, const char *const *choices)
{
	char *s = NULL;
	int i = -1;

	if (ceb_config_get_str(r, n, path, &s))
		i = choose(r, n, path, what, s, choices);
	free(s);
	return i;
}

/* spec.bootstrapServers: a non-empty list of non-empty host:port strings, into *out joined with ','
 * as librdkafka's bootstrap.servers takes them. *out is set only when all is well; the caller owns
 * it. A single string is refused rather than split: Knative's API has a list. */
static void parse_bootstrap(struct ceb_config_res *r, const struct ceb_yaml_node *spec,
                            const struct ceb_yaml_node *n, char **out)
{
	static const char path[] = "spec.bootstrapServers";
	struct ceb_buf b = CEB_BUF_INIT;
	size_t nerr = r->nerr;
	const char *s;
	char p[64];

	if (!n) {
		ceb_config_err(r, spec, path, "required field missing");
		goto out;
	}
	if (ceb_yaml_type(n) != CEB_YAML_SEQ) {
		ceb_config_err(r, n, path,
		               "must be a list of host:port strings, one server per item (e.g. "
		               "[a:9092, b:9092]), got %s",
		               ceb_yaml_describe(n));
		goto out;
	}
	if (ceb_yaml_size(n) == 0) {
		ceb_config_err(r, n, path, "needs at least one server (host:port)");
		goto out;
	}
	for (size_t i = 0; i < ceb_yaml_size(n); i++) {
		const struct ceb_yaml_node *it = ceb_yaml_seq_item(n, i);

		ceb_config_path_idx(p, sizeof(p), path, i);
		if (!(s = item_str(r, it, p)))
			continue;
		if (!*s) {
			ceb_config_err(r, it, p, "must not be empty (host:port)");
			continue;
		}
		if (b.len)
			ceb_buf_putc(&b, ',');
		ceb_buf_puts(&b, s);
	}
	if (r->nerr == nerr && !(*out = ceb_buf_steal(&b, NULL)))
		ceb_config_oom(r);
out:
	ceb_buf_free(&b);
}

struct topic_ref {
	const char *name;
	size_t idx;
};

static int cmp_topic_ref(const void *a, const void *b)
{
	const struct topic_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

/* spec.topics: a non-empty list of distinct topic names. *out and *nout are set only when all is
 * well; the caller owns the array (ceb_config_strv_free). Duplicates are found by sorting, so a
 * hostile list of a million topics costs n log n, not n squared. */
static void parse_topics(struct ceb_config_res *r, const struct ceb_yaml_node *spec,
                         const struct ceb_yaml_node *n, char ***out, size_t *nout)
{
	static const char path[] = "spec.topics";
	size_t cnt = ceb_yaml_size(n), nvalid = 0, nerr = r->nerr, *first = NULL;
	struct topic_ref *sorted = NULL;
	char **topics = NULL, p[64];
	const char *s;

	if (!n) {
		ceb_config_err(r, spec, path, "required field missing");
		goto out;
	}
	if (!ceb_config_want_seq(r, n, path))
		goto out;
	if (cnt == 0) {
		ceb_config_err(r, n, path, "needs at least one topic");
		goto out;
	}
	sorted = malloc(cnt * sizeof(*sorted));
	first = malloc(cnt * sizeof(*first));
	topics = calloc(cnt, sizeof(*topics));
	if (!sorted || !first || !topics) {
		ceb_config_oom(r);
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		const struct ceb_yaml_node *it = ceb_yaml_seq_item(n, i);

		first[i] = i;
		ceb_config_path_idx(p, sizeof(p), path, i);
		if ((s = item_str(r, it, p)) && check_topic(r, it, p, s))
			sorted[nvalid++] = (struct topic_ref){s, i};
	}
	if (nvalid > 1)
		qsort(sorted, nvalid, sizeof(*sorted), cmp_topic_ref);
	for (size_t i = 1; i < nvalid; i++)
		if (!strcmp(sorted[i].name, sorted[i - 1].name))
			first[sorted[i].idx] = first[sorted[i - 1].idx];
	for (size_t i = 0; i < cnt; i++) {
		char q[80];

		if (first[i] == i)
			continue;
		ceb_config_err(
		        r, ceb_yaml_seq_item(n, i), ceb_config_path_idx(p, sizeof(p), path, i),
		        "duplicate topic \"%s\" (first at %s[%zu])",
		        ceb_config_quoted(q, sizeof(q), ceb_yaml_str(ceb_yaml_seq_item(n, i))),
		        path, first[i]);
	}
	if (r->nerr != nerr)
		goto out;
	for (size_t i = 0; i < cnt; i++)
		if (!(topics[i] = ceb_config_strdup(r, ceb_yaml_str(ceb_yaml_seq_item(n, i)))))
			goto out;
	*out = topics;
	*nout = cnt;
	topics = NULL;
out:
	ceb_config_strv_free(topics, cnt);
	free(sorted);
	free(first);
}

/* Without librdkafka there is no Kafka channel: `validate` says so where `run` would. */
static void kafka_compiled(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                           const char *kind)
{
	if (!ceb_channel_ops_find("kafka"))
		ceb_config_err(r, ceb_yaml_map_get(root, "kind"), "kind",
		               "a %s needs the kafka channel, which this build does not include "
		               "(configure found no librdkafka)",
		               kind);
}

/* ------------------------------------------------------------------------------------------------
 * KafkaSource.
 */

static void kafka_source_free(void *own)
{
	struct ceb_kafka_source_cfg *src = own;

	if (!src)
		return;
	free(src->ns);
	free(src->name);
	free(src->bootstrap);
	ceb_config_strv_free(src->topics, src->ntopics);
	free(src->group);
	ceb_config_dest_free(&src->sink);
	ceb_config_delivery_free(&src->delivery);
	ceb_config_strv_free(src->ce_ext_keys, src->nce_ext);
	ceb_config_strv_free(src->ce_ext_values, src->nce_ext);
	ceb_config_strv_free(src->annot_keys, src->nannot);
	ceb_config_strv_free(src->annot_values, src->nannot);
	ceb_kafka_auth_free(&src->auth);
	free(src);
}

/* spec.consumerGroup, or Knative's default for a source of that name. */
static void parse_group(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                        struct ceb_kafka_source_cfg *src)
{
	struct ceb_buf b = CEB_BUF_INIT;
	char *s = NULL, q[80];

	if (n) {
		if (!ceb_config_get_str(r, n, "spec.consumerGroup", &s))
			goto out;
		if (!*s || strlen(s) > MAX_GROUP_ID) {
			ceb_config_err(r, n, "spec.consumerGroup",
			               "\"%s\" is not a valid consumer group id (1 to 255 bytes)",
			               ceb_config_quoted(q, sizeof(q), s));
			goto out;
		}
		src->group = s;
		s = NULL;
		goto out;
	}
	ceb_buf_printf(&b, "knative-kafka-source-%s-%s", src->ns, src->name);
	if (!(src->group = ceb_buf_steal(&b, NULL)))
		ceb_config_oom(r);
out:
	free(s);
	ceb_buf_free(&b);
}

/* A CloudEvents extension name: lower-case letters and digits, as long as the event model takes
 * (the specification only advises 20 at most: longer ones get a warning). */
static void parse_kafka_source(struct ceb_config_res *r, struct ceb_config_meta *md,
                               const struct ceb_yaml_node *root,
                               const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"bootstrapServers",
	                                          "topics",
	                                          "consumerGroup",
	                                          "initialOffset",
	                                          "ordering",
	                                          "consumers",
	                                          "sink",
	                                          "delivery",
	                                          "ceOverrides",
	                                          "net",
	                                          NULL};
	static const char *const offsets[] = {"earliest", "latest", NULL};
	static const char *const orderings[] = {"ordered", "unordered", NULL};
	static const char *const key_types[] = {"string", "int", "float", "byte-array",
	                                        NULL}; /* in enum ceb_key_type order */
	const char *key_type = ceb_annotation(md->lkeys, md->lvals, md->nlabels, KEY_TYPE_LABEL);
	const struct ceb_yaml_node *v[10];
	struct ceb_kafka_source_cfg *src;
	char p[512];
	int i, consumers;

	if (!md->name)
		return;
	src = calloc(1, sizeof(*src));
	if (!src) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&src->delivery);
	src->ns = md->ns;
	src->name = md->name;
	src->annot_keys = md->akeys;
	src->annot_values = md->avals;
	src->nannot = md->nannot;
	md->ns = md->name = NULL;
	md->akeys = md->avals = NULL;
	src->ordered = true;
	src->key_type = CEB_KEY_STRING;
	src->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	/* kept at once, in file order; its generic view is filled once every field was read */
	src->source.own = src;
	src->source.own_free = kafka_source_free;
	ceb_config_add_source(r, &src->source);
	ceb_config_add_entry(r, "KafkaSource", src->ns, src->name, md, src);
	kafka_compiled(r, root, "KafkaSource");

	if (key_type) {
		i = choose(r, ceb_yaml_map_get(md->labels, KEY_TYPE_LABEL),
		           ceb_config_path_key(p, sizeof(p), "metadata.labels", KEY_TYPE_LABEL),
		           "a key type", key_type, key_types);
		if (i >= 0)
			src->key_type = (enum ceb_key_type)i;
	}

	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a KafkaSource needs "
		               "spec.bootstrapServers, spec.topics and spec.sink)");
		goto out;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		goto out;
	parse_bootstrap(r, vals[0], v[0], &src->bootstrap);
	parse_topics(r, vals[0], v[1], &src->topics, &src->ntopics);
	parse_group(r, v[2], src);
	if (v[3] &&
	    (i = get_choice(r, v[3], "spec.initialOffset", "an initial offset", offsets)) >= 0)
		src->earliest = i == 0;
	if (v[4] && (i = get_choice(r, v[4], "spec.ordering", "an ordering", orderings)) >= 0)
		src->ordered = i == 0;
	/* one process consumes each partition: there are no consumer replicas to scale */
	if (v[5])
		ceb_config_get_int(r, v[5], "spec.consumers", 1, INT32_MAX, &consumers);
	if (!v[6])
		ceb_config_err(r, vals[0], "spec.sink", "required field missing");
	else
		ceb_config_parse_dest(r, v[6], "spec.sink", &src->sink);
	if (v[7]) /* the KafkaSource CRD's DeliverySpec has no format */
		ceb_config_parse_delivery(r, v[7], "spec.delivery", false, &src->delivery);
	if (v[8])
		ceb_config_parse_ce_overrides(r, v[8], &src->ce_ext_keys, &src->ce_ext_values,
		                              &src->nce_ext);
	if (v[9])
		ceb_kafka_auth_parse_net(r, v[9], &src->auth);
out:
	src->source = (struct ceb_source_cfg){
	        .kind = CEB_KAFKA_SOURCE_KIND,
	        .ns = src->ns,
	        .name = src->name,
	        .sink = &src->sink,
	        .delivery = &src->delivery,
	        .ce_ext_keys = src->ce_ext_keys,
	        .ce_ext_values = src->ce_ext_values,
	        .nce_ext = src->nce_ext,
	        .ordered = src->ordered,
	        .own = src,
	        .own_free = kafka_source_free,
	        .loc = src->loc,
	        .next = src->source.next,
	};
}

/* ------------------------------------------------------------------------------------------------
 * KafkaSink.
 */

static void kafka_sink_free(void *own)
{
	struct ceb_kafka_sink_cfg *snk = own;

	if (!snk)
		return;
	free(snk->ns);
	free(snk->name);
	free(snk->topic);
	free(snk->bootstrap);
	ceb_config_strv_free(snk->annot_keys, snk->nannot);
	ceb_config_strv_free(snk->annot_values, snk->nannot);
	ceb_kafka_auth_free(&snk->auth);
	free(snk);
}

static void parse_kafka_sink(struct ceb_config_res *r, struct ceb_config_meta *md,
                             const struct ceb_yaml_node *root,
                             const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"topic",
	                                          "bootstrapServers",
	                                          "numPartitions",
	                                          "replicationFactor",
	                                          "contentMode",
	                                          "auth",
	                                          NULL};
	static const char *const modes[] = {"binary", "structured", NULL};
	const struct ceb_yaml_node *v[6];
	struct ceb_kafka_sink_cfg *snk;
	char *topic = NULL;
	int i;

	if (!md->name)
		return;
	snk = calloc(1, sizeof(*snk));
	if (!snk) {
		ceb_config_oom(r);
		return;
	}
	snk->ns = md->ns;
	snk->name = md->name;
	snk->annot_keys = md->akeys;
	snk->annot_values = md->avals;
	snk->nannot = md->nannot;
	md->ns = md->name = NULL;
	md->akeys = md->avals = NULL;
	snk->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	snk->endpoint = (struct ceb_endpoint_cfg){
	        .kind = CEB_KAFKA_SINK_KIND,
	        .backend = "kafka",
	        .ns = snk->ns,
	        .name = snk->name,
	        .own = snk,
	        .own_free = kafka_sink_free,
	        .loc = snk->loc,
	};
	ceb_config_add_endpoint(r, &snk->endpoint);
	ceb_config_add_entry(r, "KafkaSink", snk->ns, snk->name, md, snk);
	kafka_compiled(r, root, "KafkaSink");

	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a KafkaSink needs spec.topic and "
		               "spec.bootstrapServers)");
		return;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	if (!v[0])
		ceb_config_err(r, vals[0], "spec.topic", "required field missing");
	else if (ceb_config_get_str(r, v[0], "spec.topic", &topic) &&
	         check_topic(r, v[0], "spec.topic", topic)) {
		snk->topic = topic;
		topic = NULL;
	}
	free(topic);
	parse_bootstrap(r, vals[0], v[1], &snk->bootstrap);
	if (v[2])
		ceb_config_get_int(r, v[2], "spec.numPartitions", 1, 100000, &snk->partitions);
	if (v[3])
		ceb_config_get_int(r, v[3], "spec.replicationFactor", 1, 32767, &snk->replication);
	if (v[4] && (i = get_choice(r, v[4], "spec.contentMode", "a content mode", modes)) >= 0)
		snk->structured = i == 1;
	if (v[5])
		ceb_kafka_auth_parse_sink(r, v[5], &snk->auth);
}

/* ------------------------------------------------------------------------------------------------
 * A Kafka Broker's ConfigMap (Knative's keys, and cebroker's own).
 */

static void kafka_broker_free(void *parsed)
{
	struct ceb_kafka_broker_cfg *kb = parsed;

	if (!kb)
		return;
	free(kb->topic_cfg);
	free(kb->client_cfg);
	ceb_kafka_auth_free(&kb->auth);
	free(kb);
}

/* ConfigMap keys handed to librdkafka as they are: security settings (Knative's Kafka broker takes
 * them from the Secret of auth.secret.ref.name, which cebroker reads too; these come after it and
 * win), and any librdkafka property with the prefix "librdkafka." removed. NULL when the key is not one of them. */
static const char *client_property(const char *key)
{
	if (!strncmp(key, "librdkafka.", 11))
		return key[11] ? key + 11 : NULL;
	if (!strcmp(key, "security.protocol") || !strncmp(key, "sasl.", 5) ||
	    !strncmp(key, "ssl.", 4) || !strcmp(key, "enable.ssl.certificate.verification"))
		return key;
	return NULL;
}

static bool add_kv(struct ceb_config_res *r, struct ceb_config_kv **v, size_t *n,
                   const struct ceb_config_kv *kv)
{
	struct ceb_config_kv *p = realloc(*v, (*n + 1) * sizeof(*p));

	if (!p) {
		ceb_config_oom(r);
		return false;
	}
	p[(*n)++] = *kv;
	*v = p;
	return true;
}

/* A number setting in [min, max] (0 excluded when zero_ok is false). */
static bool setting_int(struct ceb_config_res *r, const struct ceb_loc *at, const char *path,
                        const char *s, long min, long max, bool zero_ok, int *out)
{
	char *end, q[80];
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || *s == ' ' || v < min || v > max || (!zero_ok && v == 0)) {
		ceb_config_err_at(r, at, path, "\"%s\" is not a whole number from %ld to %ld%s",
		                  ceb_config_quoted(q, sizeof(q), s), min, max,
		                  zero_ok ? "" : ", other than 0");
		return false;
	}
	*out = (int)v;
	return true;
}

static void kafka_broker_read(struct ceb_config_res *r, struct ceb_configmap *cm,
                              const struct ceb_loc *config_at)
{
	struct ceb_config_res cr;
	struct ceb_kafka_broker_cfg *kb;
	char p[512], q[80];

	if (!cm) {
		ceb_config_err_at(r, config_at, "spec.config",
		                  "a Kafka Broker needs spec.config naming a ConfigMap with "
		                  "bootstrap.servers");
		return;
	}
	if (cm->backend_reader == &ceb_broker_config_kafka) /* read for another Broker already */
		return;
	if (cm->backend) {
		ceb_config_err_at(
		        r, config_at, "spec.config",
		        "ConfigMap %s/%s holds another backend's Broker settings; a Kafka "
		        "Broker needs a ConfigMap of its own",
		        cm->ns, cm->name);
		return;
	}
	if (!(kb = calloc(1, sizeof(*kb)))) {
		ceb_config_oom(r);
		return;
	}
	cm->backend = kb;
	cm->backend_reader = &ceb_broker_config_kafka;
	cr = (struct ceb_config_res){.ld = r->ld, .file = cm->loc.file, .ns = cm->ns};
	snprintf(cr.who, sizeof(cr.who), "ConfigMap %s/%s", cm->ns, cm->name);
	kb->partitions = DEFAULT_PARTITIONS;
	kb->replication = DEFAULT_REPLICATION;
	kb->confirm_ms = DEFAULT_CONFIRM_MS;
	kb->start_ms = DEFAULT_START_MS;
	for (size_t i = 0; i < cm->n && !ceb_config_is_oom(r); i++) {
		const char *k = cm->keys[i], *v = cm->values[i], *prop;
		struct ceb_loc at = cm->loc;

		if (cm->at)
			at = (struct ceb_loc){cm->loc.file, cm->at[i].line, cm->at[i].col};
		ceb_config_path_key(p, sizeof(p), "data", k);
		if (!strcmp(k, "bootstrap.servers")) {
			if (!*v)
				ceb_config_err_at(&cr, &at, p,
				                  "must not be empty (host:port, ...)");
			kb->bootstrap = v;
			kb->bootstrap_at = at;
		} else if (!strcmp(k, "default.topic.partitions")) {
			setting_int(&cr, &at, p, v, 1, 100000, true, &kb->partitions);
		} else if (!strcmp(k, "default.topic.replication.factor")) {
			/* -1: the cluster's default.replication.factor */
			setting_int(&cr, &at, p, v, -1, 32767, false, &kb->replication);
		} else if (!strncmp(k, "default.topic.config.", 21) && k[21]) {
			add_kv(&cr, &kb->topic_cfg, &kb->ntopic_cfg,
			       &(struct ceb_config_kv){k + 21, v, k, at});
		} else if (!strcmp(k, "auth.secret.ref.name")) {
			/* the Secret's keys as Knative's: protocol, sasl.mechanism, user... */
			ceb_kafka_auth_broker_secret(&cr, cm->ns, v, &at, p, &kb->auth);
		} else if (!strcmp(k, "cebroker.confirm.timeout.ms")) {
			setting_int(&cr, &at, p, v, 100, 3600000, true, &kb->confirm_ms);
		} else if (!strcmp(k, "cebroker.start.timeout.ms")) {
			setting_int(&cr, &at, p, v, 100, 3600000, true, &kb->start_ms);
		} else if (!strcmp(k, "external.topic")) {
			/* the Broker annotation kafka.eventing.knative.dev/external.topic wins */
			if (topic_name(v))
				kb->external_topic = v;
			else
				ceb_config_err_at(&cr, &at, p,
				                  "\"%s\" is not a valid Kafka topic name",
				                  ceb_config_quoted(q, sizeof(q), v));
		} else if ((prop = client_property(k))) {
			add_kv(&cr, &kb->client_cfg, &kb->nclient_cfg,
			       &(struct ceb_config_kv){prop, v, k, at});
		} else {
			ceb_config_note_at(
			        &cr, true, &at, p,
			        "not a Kafka Broker setting, ignored (librdkafka properties go "
			        "in as librdkafka.<property>)");
		}
	}
	if (!kb->bootstrap)
		ceb_config_err_at(
		        &cr, &cm->loc, "data[\"bootstrap.servers\"]",
		        "required field missing: the ConfigMap of Kafka %s names the Kafka "
		        "cluster there",
		        r->who);
}

/* ---- KafkaChannel ---- */

#define CHANNEL_CM           "kafka-channel-config"
#define CHANNEL_RETENTION_MS (168ULL * 3600 * 1000) /* eventing-kafka-broker's PT168H */

static void kafka_channel_free(void *spec)
{
	free(spec);
}

/* numPartitions, replicationFactor, retentionDuration (vals in kafka_channel_fields' order). */
static void *kafka_channel_read(struct ceb_config_res *r, const struct ceb_yaml_node *const *vals,
                                const char *path)
{
	struct ceb_kafka_channel_cfg *kc = calloc(1, sizeof(*kc));
	char p[512];

	if (!kc) {
		ceb_config_oom(r);
		return NULL;
	}
	kc->partitions = 1;
	kc->replication = 1;
	kc->retention_ms = CHANNEL_RETENTION_MS;
	if (vals[0])
		ceb_config_get_int(r, vals[0],
		                   ceb_config_path_key(p, sizeof(p), path, "numPartitions"), 1,
		                   100000, &kc->partitions);
	if (vals[1])
		ceb_config_get_int(r, vals[1],
		                   ceb_config_path_key(p, sizeof(p), path, "replicationFactor"), 1,
		                   32767, &kc->replication);
	if (vals[2])
		ceb_config_get_duration(
		        r, vals[2], ceb_config_path_key(p, sizeof(p), path, "retentionDuration"),
		        &kc->retention_ms);
	return kc;
}

/* The cluster's settings: knative-eventing/kafka-channel-config, read as a Kafka Broker's. */
static void kafka_channel_resolve(struct ceb_config_res *r, struct ceb_msg_channel *c,
                                  const struct ceb_config *cfg)
{
	struct ceb_kafka_channel_cfg *kc = c->backend_spec;
	struct ceb_configmap *cm = NULL;

	if (!kc)
		return; /* reported */
	for (struct ceb_configmap *m = cfg->configmaps; m && !cm; m = m->next)
		if (!strcmp(m->ns, "knative-eventing") && !strcmp(m->name, CHANNEL_CM))
			cm = m;
	if (!cm) {
		ceb_config_err_at(
		        r, &c->ep.loc, c->at_path ? c->at_path : "kind",
		        "a KafkaChannel needs ConfigMap knative-eventing/" CHANNEL_CM
		        " with bootstrap.servers (the keys of a Kafka Broker's ConfigMap, "
		        "as eventing-kafka-broker reads them)");
		return;
	}
	ceb_broker_config_kafka.read(r, cm, &c->ep.loc);
	if (cm->backend_reader == &ceb_broker_config_kafka)
		kc->settings = cm;
}

static void parse_kafka_channel(struct ceb_config_res *r, struct ceb_config_meta *md,
                                const struct ceb_yaml_node *root,
                                const struct ceb_yaml_node *const *vals)
{
	const struct ceb_yaml_node *api = ceb_yaml_map_get(root, "apiVersion");

	ceb_config_parse_channel_kind(r, md, root, vals, &ceb_channel_kind_kafka,
	                              api ? ceb_yaml_str(api) : "messaging.knative.dev/v1beta1");
}

static const char *const kafka_channel_fields[] = {"numPartitions", "replicationFactor",
                                                   "retentionDuration", NULL};
static const char *const messaging_kafka[] = {"messaging.knative.dev/v1beta1",
                                              "messaging.knative.dev/v1", NULL};

const struct ceb_channel_kind ceb_channel_kind_kafka = {CEB_KAFKA_CHANNEL_KIND,
                                                        kafka_channel_fields, kafka_channel_read,
                                                        kafka_channel_free, kafka_channel_resolve};

static const char *const spec_only[] = {"spec", NULL};
static const char *const sources_v1[] = {"sources.knative.dev/v1", "sources.knative.dev/v1beta1",
                                         NULL};
static const char *const eventing_v1alpha1[] = {CEB_EVENTING_V1ALPHA1, NULL};

const struct ceb_kind ceb_kind_kafka_source = {sources_v1, "KafkaSource", spec_only,
                                               parse_kafka_source, false};
const struct ceb_kind ceb_kind_kafka_sink = {eventing_v1alpha1, "KafkaSink", spec_only,
                                             parse_kafka_sink, true};
const struct ceb_broker_config_reader ceb_broker_config_kafka = {
        .channel = "kafka", .read = kafka_broker_read, .free = kafka_broker_free};
const struct ceb_kind ceb_kind_kafka_channel = {messaging_kafka, CEB_KAFKA_CHANNEL_KIND, spec_only,
                                                parse_kafka_channel, true};
