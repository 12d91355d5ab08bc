/* Unit tests for the Kafka family's resource kinds (KafkaSource, KafkaSink), and what `run` would
 * refuse of a Kafka Broker or a Broker class, found when the configuration loads. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig.h"
#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/error.h"
#include "channels/kafka/kinds.h"
#include "tests/unit/config_fixture.h"

/* ---- KafkaSource and KafkaSink ---- */

/* A KafkaSource default/src whose spec starts at line 6 (SOURCE_META then SOURCE_SPEC): 5 spec:
 * 6 bootstrapServers  7 sink:  8 uri; SOURCE_TOPICS then adds line 9. */
#define SOURCE_META                            \
	"apiVersion: sources.knative.dev/v1\n" \
	"kind: KafkaSource\n"                  \
	"metadata:\n"                          \
	"  name: src\n"
#define SOURCE_SPEC                          \
	"spec:\n"                            \
	"  bootstrapServers: [kafka:9092]\n" \
	"  sink:\n"                          \
	"    uri: http://127.0.0.1:9099/\n"
#define SOURCE_HEAD   SOURCE_META SOURCE_SPEC
#define SOURCE_TOPICS "  topics: [orders]\n"
/* A KafkaSink default/sink whose spec starts at line 6. */
#define SINK_HEAD                                     \
	"apiVersion: eventing.knative.dev/v1alpha1\n" \
	"kind: KafkaSink\n"                           \
	"metadata:\n"                                 \
	"  name: sink\n"                              \
	"spec:\n"                                     \
	"  bootstrapServers: [kafka:9092]\n"

/* The KafkaSource of Knative's docs (v1beta1), its sink changed from a Service to a Broker here. */

/* The Kafka kinds as the configuration holds them: generic views over the kinds' own structs. */
static const struct ceb_kafka_source_cfg *first_source(const struct ceb_config *cfg)
{
	return cfg->sources ? cfg->sources->own : NULL;
}

static const struct ceb_kafka_source_cfg *next_source(const struct ceb_kafka_source_cfg *src)
{
	return src->source.next ? src->source.next->own : NULL;
}

static const struct ceb_kafka_sink_cfg *first_sink(const struct ceb_config *cfg)
{
	return cfg->endpoints ? cfg->endpoints->own : NULL;
}

static const struct ceb_kafka_sink_cfg *next_sink(const struct ceb_kafka_sink_cfg *snk)
{
	return snk->endpoint.next ? snk->endpoint.next->own : NULL;
}

static const struct ceb_kafka_sink_cfg *find_sink(const struct ceb_config *cfg, const char *ns,
                                                  const char *name)
{
	const struct ceb_endpoint_cfg *ec = ceb_config_find_endpoint(cfg, "KafkaSink", ns, name);

	return ec ? ec->own : NULL;
}

#define KAFKA_BROKER(cm) ((const struct ceb_kafka_broker_cfg *)(cm)->backend)

START_TEST(test_the_docs_kafka_source_v1beta1_loads_with_every_default)
{
	struct ceb_config *cfg = load_ok(
	        BROKER "---\n"
	               "apiVersion: sources.knative.dev/v1beta1\n"
	               "kind: KafkaSource\n"
	               "metadata:\n"
	               "  name: kafka-source\n"
	               "spec:\n"
	               "  consumerGroup: knative-group\n"
	               "  bootstrapServers:\n"
	               "  - my-cluster-kafka-bootstrap.kafka:9092 # note the kafka namespace\n"
	               "  topics:\n"
	               "  - knative-demo-topic\n"
	               "  sink:\n"
	               "    ref:\n"
	               "      apiVersion: eventing.knative.dev/v1\n"
	               "      kind: Broker\n"
	               "      name: default\n"
	               "---\n" SOURCE_HEAD SOURCE_TOPICS);
	const struct ceb_kafka_source_cfg *src = first_source(cfg);

	ck_assert_uint_eq(cfg->nsources, 2);
	ck_assert_uint_eq(cfg->nendpoints, 0);
	ck_assert_str_eq(src->ns, "default");
	ck_assert_str_eq(src->name, "kafka-source");
	ck_assert_str_eq(src->bootstrap, "my-cluster-kafka-bootstrap.kafka:9092");
	ck_assert_uint_eq(src->ntopics, 1);
	ck_assert_str_eq(src->topics[0], "knative-demo-topic");
	ck_assert_str_eq(src->group, "knative-group");
	ck_assert(!src->earliest);
	ck_assert(src->ordered);
	ck_assert_int_eq(src->key_type, CEB_KEY_STRING);
	ck_assert_ptr_null(src->sink.uri);
	ck_assert_str_eq(src->sink.ref_kind, "Broker");
	ck_assert_str_eq(src->sink.ref_api, "eventing.knative.dev/v1");
	ck_assert_str_eq(src->sink.ref_ns, "default");
	ck_assert_str_eq(src->sink.ref_name, "default");
	ck_assert(!src->delivery.set);
	ck_assert(!src->delivery.has_dls);
	ck_assert_int_eq(src->delivery.retry_after_max_ms, -1);
	ck_assert_uint_eq(src->nce_ext, 0);
	ck_assert_ptr_null(src->ce_ext_keys);
	ck_assert_uint_eq(src->nannot, 0);
	ck_assert_str_eq(src->loc.file, "test.yaml");
	ck_assert_int_eq(src->loc.line, 6);

	/* the second, in file order: no consumerGroup, so Knative's default name */
	src = next_source(src);
	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_null(next_source(src));
	ck_assert_str_eq(src->name, "src");
	ck_assert_str_eq(src->group, "knative-kafka-source-default-src");
	ck_assert_str_eq(src->sink.uri, "http://127.0.0.1:9099/");
	ck_assert_ptr_null(src->sink.ref_kind);
	ck_assert_int_eq(src->loc.line, 22);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_v1_kafka_source_reads_every_field)
{
	struct ceb_config *cfg = load_ok("apiVersion: eventing.knative.dev/v1alpha1\n"
	                                 "kind: KafkaSink\n"
	                                 "metadata:\n"
	                                 "  name: dead-letters\n"
	                                 "  namespace: shop\n"
	                                 "spec:\n"
	                                 "  topic: dead-letters\n"
	                                 "  bootstrapServers:\n"
	                                 "   - my-cluster-kafka-bootstrap.kafka:9092\n"
	                                 "---\n"
	                                 "apiVersion: sources.knative.dev/v1\n"
	                                 "kind: KafkaSource\n"
	                                 "metadata:\n"
	                                 "  name: kafka-source\n"
	                                 "  namespace: shop\n"
	                                 "  labels:\n"
	                                 "    kafkasources.sources.knative.dev/key-type: int\n"
	                                 "  annotations:\n"
	                                 "    example.com/team: payments\n"
	                                 "spec:\n"
	                                 "  bootstrapServers:\n"
	                                 "    - a.kafka:9092\n"
	                                 "    - b.kafka:9092\n"
	                                 "  topics:\n"
	                                 "    - orders\n"
	                                 "    - payments.v1_eu-west\n"
	                                 "  initialOffset: earliest\n"
	                                 "  ordering: unordered\n"
	                                 "  consumers: 3\n"
	                                 "  net:\n"
	                                 "    sasl:\n"
	                                 "      enable: false\n"
	                                 "      user:\n"
	                                 "        secretKeyRef: {name: kafka-auth, key: user}\n"
	                                 "    tls:\n"
	                                 "      enable: false\n"
	                                 "  ceOverrides:\n"
	                                 "    extensions:\n"
	                                 "      extra: this is an extra attribute\n"
	                                 "      additional: 42\n"
	                                 "  delivery:\n"
	                                 "    retry: 3\n"
	                                 "    deadLetterSink:\n"
	                                 "      ref:\n"
	                                 "        apiVersion: eventing.knative.dev/v1alpha1\n"
	                                 "        kind: KafkaSink\n"
	                                 "        name: dead-letters\n"
	                                 "  sink:\n"
	                                 "    uri: http://event-display.shop.svc.cluster.local\n");
	const struct ceb_kafka_source_cfg *src = first_source(cfg);

	ck_assert_uint_eq(cfg->nsources, 1);
	ck_assert_uint_eq(cfg->nendpoints, 1);
	ck_assert_str_eq(src->ns, "shop");
	ck_assert_str_eq(src->name, "kafka-source");
	ck_assert_str_eq(src->bootstrap, "a.kafka:9092,b.kafka:9092");
	ck_assert_uint_eq(src->ntopics, 2);
	ck_assert_str_eq(src->topics[0], "orders");
	ck_assert_str_eq(src->topics[1], "payments.v1_eu-west");
	ck_assert_str_eq(src->group, "knative-kafka-source-shop-kafka-source");
	ck_assert(src->earliest);
	ck_assert(!src->ordered);
	ck_assert_int_eq(src->key_type, CEB_KEY_INT);
	ck_assert_str_eq(src->sink.uri, "http://event-display.shop.svc.cluster.local");
	ck_assert(src->delivery.set);
	ck_assert_int_eq(src->delivery.retry, 3);
	ck_assert(src->delivery.has_dls);
	ck_assert_str_eq(src->delivery.dls.ref_kind, "KafkaSink");
	ck_assert_str_eq(src->delivery.dls.ref_api, "eventing.knative.dev/v1alpha1");
	ck_assert_str_eq(src->delivery.dls.ref_ns, "shop");
	ck_assert_str_eq(src->delivery.dls.ref_name, "dead-letters");
	ck_assert_ptr_eq(find_sink(cfg, "shop", "dead-letters"), first_sink(cfg));
	ck_assert_uint_eq(src->nce_ext, 2);
	ck_assert_str_eq(src->ce_ext_keys[0], "extra");
	ck_assert_str_eq(src->ce_ext_values[0], "this is an extra attribute");
	ck_assert_str_eq(src->ce_ext_keys[1], "additional");
	ck_assert_str_eq(src->ce_ext_values[1], "42");
	ck_assert_uint_eq(src->nannot, 1);
	ck_assert_str_eq(
	        ceb_annotation(src->annot_keys, src->annot_values, src->nannot, "example.com/team"),
	        "payments");
	ck_assert_int_eq(src->loc.line, 11);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_every_key_type_label_value_is_read)
{
	static const struct {
		const char *label;
		enum ceb_key_type type;
	} types[] = {
	        {"string", CEB_KEY_STRING},
	        {"int", CEB_KEY_INT},
	        {"float", CEB_KEY_FLOAT},
	        {"byte-array", CEB_KEY_BYTES},
	};
	char yaml[1024];

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct ceb_config *cfg;

		snprintf(yaml, sizeof(yaml),
		         SOURCE_META
		         "  labels:\n"
		         "    app: shop\n"
		         "    kafkasources.sources.knative.dev/key-type: %s\n" SOURCE_SPEC
		                 SOURCE_TOPICS,
		         types[i].label);
		cfg = load_ok(yaml);
		ck_assert_int_eq(first_source(cfg)->key_type, types[i].type);
		ceb_config_free(cfg);
	}
}
END_TEST

/* Knative's docs: a KafkaSink as given, and one with the optional fields. */
START_TEST(test_the_docs_kafka_sinks_load_with_and_without_content_mode)
{
	struct ceb_config *cfg = load_ok("apiVersion: eventing.knative.dev/v1alpha1\n"
	                                 "kind: KafkaSink\n"
	                                 "metadata:\n"
	                                 "  name: my-kafka-sink\n"
	                                 "  namespace: default\n"
	                                 "spec:\n"
	                                 "  topic: mytopic\n"
	                                 "  bootstrapServers:\n"
	                                 "   - my-cluster-kafka-bootstrap.kafka:9092\n"
	                                 "---\n"
	                                 "apiVersion: eventing.knative.dev/v1alpha1\n"
	                                 "kind: KafkaSink\n"
	                                 "metadata:\n"
	                                 "  name: my-structured-sink\n"
	                                 "  namespace: default\n"
	                                 "  annotations:\n"
	                                 "    example.com/owner: shop\n"
	                                 "spec:\n"
	                                 "  topic: my-topic\n"
	                                 "  bootstrapServers:\n"
	                                 "   - a:9092\n"
	                                 "   - b:9092\n"
	                                 "  contentMode: structured\n"
	                                 "  numPartitions: 10\n"
	                                 "  replicationFactor: 3\n"
	                                 "  auth:\n"
	                                 "    secret:\n"
	                                 "      ref: {}\n"
	                                 "---\n"
	                                 "apiVersion: eventing.knative.dev/v1alpha1\n"
	                                 "kind: KafkaSink\n"
	                                 "metadata: {name: binary-sink}\n"
	                                 "spec: {topic: t, bootstrapServers: [k:9092], "
	                                 "contentMode: binary}\n");
	const struct ceb_kafka_sink_cfg *snk = first_sink(cfg);

	ck_assert_uint_eq(cfg->nendpoints, 3);
	ck_assert_uint_eq(cfg->nsources, 0);
	ck_assert_ptr_eq(find_sink(cfg, "default", "my-kafka-sink"), snk);
	ck_assert_str_eq(snk->topic, "mytopic");
	ck_assert_str_eq(snk->bootstrap, "my-cluster-kafka-bootstrap.kafka:9092");
	ck_assert_int_eq(snk->partitions, 0);
	ck_assert_int_eq(snk->replication, 0);
	ck_assert(!snk->structured);
	ck_assert_uint_eq(snk->nannot, 0);
	ck_assert_int_eq(snk->loc.line, 1);

	snk = next_sink(snk);
	ck_assert_ptr_eq(find_sink(cfg, "default", "my-structured-sink"), snk);
	ck_assert_str_eq(snk->topic, "my-topic");
	ck_assert_str_eq(snk->bootstrap, "a:9092,b:9092");
	ck_assert_int_eq(snk->partitions, 10);
	ck_assert_int_eq(snk->replication, 3);
	ck_assert(snk->structured);
	ck_assert_str_eq(ceb_annotation(snk->annot_keys, snk->annot_values, snk->nannot,
	                                "example.com/owner"),
	                 "shop");
	ck_assert_int_eq(snk->loc.line, 11);

	snk = next_sink(snk);
	ck_assert_str_eq(snk->name, "binary-sink");
	ck_assert(!snk->structured);
	ck_assert_ptr_null(next_sink(snk));
	ck_assert_ptr_null(find_sink(cfg, "shop", "my-kafka-sink"));
	ck_assert_ptr_null(find_sink(cfg, "default", "nope"));
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_kafka_source_takes_v1_and_v1beta1_and_names_both)
{
	ck_errors("apiVersion: sources.knative.dev/v1alpha1\n"
	          "kind: KafkaSource\n"
	          "metadata:\n"
	          "  name: src\n",
	          "test.yaml:1:13: KafkaSource default/src: apiVersion: unknown apiVersion "
	          "\"sources.knative.dev/v1alpha1\" for KafkaSource (supported: " SUPPORTED ")\n");
	ck_errors("apiVersion: eventing.knative.dev/v1\n"
	          "kind: KafkaSink\n"
	          "metadata:\n"
	          "  name: sink\n",
	          "test.yaml:1:13: KafkaSink default/sink: apiVersion: unknown apiVersion "
	          "\"eventing.knative.dev/v1\" for KafkaSink (supported: " SUPPORTED ")\n");
}
END_TEST

START_TEST(test_a_kafka_source_needs_topics)
{
	ck_errors(SOURCE_HEAD,
	          "test.yaml:6:3: KafkaSource default/src: spec.topics: required field missing\n");
	ck_errors(
	        SOURCE_HEAD "  topics: []\n",
	        "test.yaml:9:11: KafkaSource default/src: spec.topics: needs at least one topic\n");
	ck_errors(SOURCE_META,
	          "test.yaml:1:1: KafkaSource default/src: spec: required field missing (a "
	          "KafkaSource needs spec.bootstrapServers, spec.topics and spec.sink)\n");
}
END_TEST

START_TEST(test_a_kafka_topic_name_must_be_valid_and_listed_once)
{
	ck_errors(SOURCE_HEAD "  topics: [orders, \"bad topic\", \"..\", ok]\n",
	          "test.yaml:9:20: KafkaSource default/src: spec.topics[1]: \"bad topic\" is not a "
	          "valid Kafka topic name (1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', "
	          "but not \".\" or \"..\")\n"
	          "test.yaml:9:33: KafkaSource default/src: spec.topics[2]: \"..\" is not a valid "
	          "Kafka topic name (1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', but "
	          "not \".\" or \"..\")\n");
	ck_errors(SOURCE_HEAD "  topics: [a, b, a, {c: d}]\n",
	          "test.yaml:9:18: KafkaSource default/src: spec.topics[2]: duplicate topic \"a\" "
	          "(first at spec.topics[0])\n"
	          "test.yaml:9:21: KafkaSource default/src: spec.topics[3]: expected a string, got "
	          "a mapping\n");
}
END_TEST

START_TEST(test_bootstrap_servers_must_be_a_list_of_servers)
{
	ck_errors(SOURCE_META "spec:\n"
	                      "  bootstrapServers: a:9092,b:9092\n"
	                      "  topics: [t]\n"
	                      "  sink: {uri: \"http://h/\"}\n",
	          "test.yaml:6:21: KafkaSource default/src: spec.bootstrapServers: must be a list "
	          "of host:port strings, one server per item (e.g. [a:9092, b:9092]), got a "
	          "string\n");
	ck_errors(SOURCE_META "spec:\n"
	                      "  bootstrapServers: [\"\", ~]\n"
	                      "  topics: [t]\n"
	                      "  sink: {uri: \"http://h/\"}\n",
	          "test.yaml:6:22: KafkaSource default/src: spec.bootstrapServers[0]: must not be "
	          "empty (host:port)\n"
	          "test.yaml:6:26: KafkaSource default/src: spec.bootstrapServers[1]: expected a "
	          "string, got null\n");
	ck_errors(SOURCE_META "spec:\n"
	                      "  topics: [t]\n"
	                      "  sink: {uri: \"http://h/\"}\n",
	          "test.yaml:6:3: KafkaSource default/src: spec.bootstrapServers: required field "
	          "missing\n");
}
END_TEST

START_TEST(test_initial_offset_is_earliest_or_latest)
{
	struct ceb_config *cfg = load_ok(SOURCE_HEAD SOURCE_TOPICS "  initialOffset: latest\n");

	ck_assert(!first_source(cfg)->earliest);
	ceb_config_free(cfg);
	ck_errors(SOURCE_HEAD SOURCE_TOPICS "  initialOffset: oldest\n",
	          "test.yaml:10:18: KafkaSource default/src: spec.initialOffset: \"oldest\" is not "
	          "an initial offset (earliest or latest)\n");
}
END_TEST

START_TEST(test_ordering_is_ordered_or_unordered)
{
	struct ceb_config *cfg = load_ok(SOURCE_HEAD SOURCE_TOPICS "  ordering: ordered\n");

	ck_assert(first_source(cfg)->ordered);
	ck_assert(cfg->sources->ordered);
	ceb_config_free(cfg);
	/* the daemon reads the generic view: it must say unordered too (it once kept the default) */
	cfg = load_ok(SOURCE_HEAD SOURCE_TOPICS "  ordering: unordered\n"
	                                        "  ceOverrides:\n"
	                                        "    extensions: {team: shop}\n");
	ck_assert(!first_source(cfg)->ordered);
	ck_assert(!cfg->sources->ordered);
	ck_assert_uint_eq(cfg->sources->nce_ext, 1);
	ck_assert_str_eq(cfg->sources->ce_ext_keys[0], "team");
	ck_assert_str_eq(cfg->sources->kind, "KafkaSource");
	ceb_config_free(cfg);
	ck_errors(SOURCE_HEAD SOURCE_TOPICS "  ordering: fifo\n",
	          "test.yaml:10:13: KafkaSource default/src: spec.ordering: \"fifo\" is not an "
	          "ordering (ordered or unordered)\n");
}
END_TEST

START_TEST(test_a_bad_key_type_label_is_reported_at_its_value)
{
	ck_errors(
	        SOURCE_META
	        "  labels:\n"
	        "    kafkasources.sources.knative.dev/key-type: long\n" SOURCE_SPEC SOURCE_TOPICS,
	        "test.yaml:6:48: KafkaSource default/src: "
	        "metadata.labels[\"kafkasources.sources.knative.dev/key-type\"]: \"long\" is not a "
	        "key type (string, int, float or byte-array)\n");
}
END_TEST

/* "name=value,name=value" of a's librdkafka properties, PEM shown as "PEM". */
static const char *props_text(const struct ceb_kafka_auth *a, char *buf, size_t sz)
{
	struct ceb_kafka_prop props[CEB_KAFKA_AUTH_PROPS];
	char err[512];
	size_t n, len = 0;

	buf[0] = '\0';
	if (ceb_kafka_auth_props(a, props, &n, err, sizeof(err)) < 0) {
		snprintf(buf, sz, "error: %s", err);
		return buf;
	}
	for (size_t i = 0; i < n && len < sz; i++)
		len += (size_t)snprintf(buf + len, sz - len, "%s%s=%s", i ? "," : "", props[i].name,
		                        strstr(props[i].value, "-----BEGIN") ? "PEM"
		                                                             : props[i].value);
	return buf;
}

START_TEST(test_secrets_become_librdkafkas_security_properties)
{
	struct ceb_config *cfg = load_ok(
	        "apiVersion: v1\nkind: Secret\nmetadata: {name: src}\n"
	        "stringData: {user: alice, password: pw1, type: SCRAM-SHA-512}\n"
	        "---\n"
	        "apiVersion: v1\nkind: Secret\nmetadata: {name: snk}\n"
	        "stringData: {protocol: SASL_PLAINTEXT, user: bob, password: pw2}\n"
	        "---\n"
	        "apiVersion: v1\nkind: Secret\nmetadata: {name: brk, namespace: knative-eventing}\n"
	        "stringData: {protocol: ssl, sasl.mechanism: PLAIN}\n"
	        "---\n"
	        "apiVersion: sources.knative.dev/v1\nkind: KafkaSource\nmetadata: {name: s}\n"
	        "spec:\n  bootstrapServers: [k:9092]\n  topics: [t]\n"
	        "  sink: {uri: 'http://127.0.0.1:9/'}\n"
	        "  net:\n    sasl:\n      enable: true\n"
	        "      user: {secretKeyRef: {name: src, key: user}}\n"
	        "      password: {secretKeyRef: {name: src, key: password}}\n"
	        "      type: {secretKeyRef: {name: src, key: type}}\n"
	        "    tls: {enable: true}\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata: {name: k}\n"
	        "spec:\n  topic: t\n  bootstrapServers: [k:9092]\n"
	        "  auth: {secret: {ref: {name: snk}}}\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b\n"
	        "  annotations: {eventing.knative.dev/broker.class: Kafka}\n"
	        "spec: {config: {apiVersion: v1, kind: ConfigMap, name: c, namespace: "
	        "knative-eventing}}\n"
	        "---\n"
	        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: "
	        "knative-eventing}\n"
	        "data: {bootstrap.servers: 'k:9092', auth.secret.ref.name: brk}\n");
	char buf[1024];

	ck_assert_str_eq(props_text(&first_source(cfg)->auth, buf, sizeof(buf)),
	                 "security.protocol=sasl_ssl,sasl.mechanisms=SCRAM-SHA-512,"
	                 "sasl.username=alice,sasl.password=pw1");
	ck_assert_str_eq(props_text(&first_sink(cfg)->auth, buf, sizeof(buf)),
	                 "security.protocol=sasl_plaintext,sasl.mechanisms=PLAIN,"
	                 "sasl.username=bob,sasl.password=pw2");
	/* a protocol in lower case is Knative's too; sasl.mechanism means nothing without SASL */
	ck_assert_str_eq(props_text(&KAFKA_BROKER(cfg->brokers->config)->auth, buf, sizeof(buf)),
	                 "security.protocol=ssl");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_sasl_and_tls_take_their_values_from_secrets)
{
	ck_errors(
	        SOURCE_HEAD SOURCE_TOPICS "  net:\n"
	                                  "    sasl:\n"
	                                  "      enable: true\n"
	                                  "      tokenProvider: MSK\n"
	                                  "    tls:\n"
	                                  "      enable: true\n"
	                                  "      cert:\n"
	                                  "        secretKeyRef: {name: ca, key: tls.crt}\n"
	                                  "      caCert:\n"
	                                  "        secretKeyRef: {name: ca, key: ca.crt}\n",
	        "test.yaml:12:7: KafkaSource default/src: spec.net.sasl.user: required field "
	        "missing when SASL is enabled\n"
	        "test.yaml:12:7: KafkaSource default/src: spec.net.sasl.password: required field "
	        "missing when SASL is enabled\n"
	        "test.yaml:13:22: KafkaSource default/src: spec.net.sasl.tokenProvider: not "
	        "supported (AWS MSK IAM): cebroker speaks SASL PLAIN, SCRAM-SHA-256 and "
	        "SCRAM-SHA-512\n"
	        "test.yaml:15:7: KafkaSource default/src: spec.net.tls.key: cert and key go "
	        "together (a client certificate and its key)\n"
	        "test.yaml:17:23: KafkaSource default/src: spec.net.tls.cert.secretKeyRef: Secret "
	        "default/ca not found\n"
	        "test.yaml:19:23: KafkaSource default/src: spec.net.tls.caCert.secretKeyRef: "
	        "Secret default/ca not found\n");
	ck_errors(
	        SOURCE_HEAD SOURCE_TOPICS "  net:\n"
	                                  "    sasl:\n"
	                                  "      enable: \"yes\"\n"
	                                  "    ssl: {}\n",
	        "test.yaml:12:15: KafkaSource default/src: spec.net.sasl.enable: expected true or "
	        "false, got a string\n"
	        "test.yaml:13:5: KafkaSource default/src: spec.net.ssl: unknown field (spec.net "
	        "takes sasl, tls)\n");
}
END_TEST

START_TEST(test_a_kafka_source_sink_ref_to_a_missing_kafka_sink_is_reported)
{
	ck_errors(SOURCE_META "spec:\n"
	                      "  bootstrapServers: [kafka:9092]\n"
	                      "  topics: [orders]\n"
	                      "  sink:\n"
	                      "    ref:\n"
	                      "      apiVersion: eventing.knative.dev/v1alpha1\n"
	                      "      kind: KafkaSink\n"
	                      "      name: nope\n",
	          "test.yaml:10:7: KafkaSource default/src: spec.sink.ref: KafkaSink default/nope "
	          "not found\n");
	ck_errors(SOURCE_META "spec:\n"
	                      "  bootstrapServers: [kafka:9092]\n"
	                      "  topics: [orders]\n",
	          "test.yaml:6:3: KafkaSource default/src: spec.sink: required field missing\n");
}
END_TEST

START_TEST(test_a_kafka_source_sink_ref_to_a_job_sink_says_cebroker_cannot_serve_it)
{
	ck_errors(SOURCE_META "spec:\n"
	                      "  bootstrapServers: [kafka:9092]\n"
	                      "  topics: [orders]\n"
	                      "  sink:\n"
	                      "    ref:\n"
	                      "      apiVersion: sinks.knative.dev/v1alpha1\n"
	                      "      kind: JobSink\n"
	                      "      name: job\n",
	          "test.yaml:10:7: KafkaSource default/src: spec.sink.ref: cebroker cannot serve a "
	          "ref to JobSink (sinks.knative.dev/v1alpha1) default/job: it runs only its own "
	          "Brokers and KafkaSinks; give the address in the address table (--address "
	          "'JobSink default/job=http://HOST:PORT/' or the cebroker-addresses ConfigMap), "
	          "or use uri:\n");
	/* a KafkaSink under the wrong apiVersion is not one of ours either */
	ck_errors(SOURCE_META "spec:\n"
	                      "  bootstrapServers: [kafka:9092]\n"
	                      "  topics: [orders]\n"
	                      "  sink:\n"
	                      "    ref: {apiVersion: eventing.knative.dev/v1, kind: KafkaSink, "
	                      "name: s}\n",
	          "test.yaml:9:10: KafkaSource default/src: spec.sink.ref: cebroker cannot serve a "
	          "ref to KafkaSink (eventing.knative.dev/v1) default/s: it runs only its own "
	          "Brokers and KafkaSinks; give the address in the address table (--address "
	          "'KafkaSink default/s=http://HOST:PORT/' or the cebroker-addresses ConfigMap), "
	          "or use uri:\n");
}
END_TEST

/* 64 characters: with one more, a name longer than the event model takes */
#define LONG64                                                            \
	"123456789012345678901234567890123456789012345678901234567890123" \
	"4"

START_TEST(test_ce_overrides_need_valid_extension_names)
{
	ck_errors(
	        SOURCE_HEAD SOURCE_TOPICS "  ceOverrides:\n"
	                                  "    extensions:\n"
	                                  "      Bad_Name: x\n"
	                                  "      type: y\n"
	                                  "      a" LONG64 ": z\n"
	                                  "      ok1: fine\n",
	        "test.yaml:12:7: KafkaSource default/src: spec.ceOverrides.extensions.Bad_Name: "
	        "\"Bad_Name\" is not a valid CloudEvents extension name (lower-case letters and "
	        "digits, at most 64)\n"
	        "test.yaml:13:7: KafkaSource default/src: spec.ceOverrides.extensions.type: "
	        "\"type\" is a core CloudEvents attribute, not an extension\n"
	        "test.yaml:14:7: KafkaSource default/src: spec.ceOverrides.extensions.a" LONG64 ": "
	        "\"a" LONG64 "\" "
	        "is not a valid CloudEvents extension name (lower-case letters and digits, at most "
	        "64)\n");
	ck_errors(SOURCE_HEAD SOURCE_TOPICS "  ceOverrides:\n"
	                                    "    source: /mine\n",
	          "test.yaml:11:5: KafkaSource default/src: spec.ceOverrides.source: unknown field "
	          "(spec.ceOverrides takes extensions)\n");
}
END_TEST

START_TEST(test_bad_kafka_numbers_are_reported)
{
	ck_errors(SOURCE_HEAD SOURCE_TOPICS "  consumers: 0\n",
	          "test.yaml:10:14: KafkaSource default/src: spec.consumers: 0 is out of range (1 "
	          "to 2147483647)\n");
	ck_errors(
	        SINK_HEAD "  topic: t\n"
	                  "  numPartitions: 0\n"
	                  "  replicationFactor: 40000\n",
	        "test.yaml:8:18: KafkaSink default/sink: spec.numPartitions: 0 is out of range (1 "
	        "to 100000)\n"
	        "test.yaml:9:22: KafkaSink default/sink: spec.replicationFactor: 40000 is out of "
	        "range (1 to 32767)\n");
}
END_TEST

START_TEST(test_a_kafka_sink_needs_a_valid_topic)
{
	ck_errors(SINK_HEAD,
	          "test.yaml:6:3: KafkaSink default/sink: spec.topic: required field missing\n");
	ck_errors(SINK_HEAD "  topic: my/topic\n",
	          "test.yaml:7:10: KafkaSink default/sink: spec.topic: \"my/topic\" is not a valid "
	          "Kafka topic name (1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', but "
	          "not \".\" or \"..\")\n");
	ck_errors(
	        "apiVersion: eventing.knative.dev/v1alpha1\n"
	        "kind: KafkaSink\n"
	        "metadata:\n"
	        "  name: sink\n",
	        "test.yaml:1:1: KafkaSink default/sink: spec: required field missing (a KafkaSink "
	        "needs spec.topic and spec.bootstrapServers)\n");
}
END_TEST

START_TEST(test_a_kafka_sink_content_mode_is_binary_or_structured)
{
	ck_errors(
	        SINK_HEAD "  topic: events\n"
	                  "  contentMode: cloudevents\n",
	        "test.yaml:8:16: KafkaSink default/sink: spec.contentMode: \"cloudevents\" is not "
	        "a content mode (binary or structured)\n");
}
END_TEST

START_TEST(test_a_kafka_sink_auth_secret_names_a_secret_of_its_namespace)
{
	ck_errors(SINK_HEAD "  topic: events\n"
	                    "  auth:\n"
	                    "    secret:\n"
	                    "      ref:\n"
	                    "        name: my-secret\n",
	          "test.yaml:11:15: KafkaSink default/sink: spec.auth.secret.ref.name: Secret "
	          "default/my-secret not found\n");
}
END_TEST

START_TEST(test_a_kafka_sink_cannot_take_the_address_of_a_broker)
{
	struct ceb_config *cfg;

	ck_errors(BROKER "---\n"
	                 "apiVersion: eventing.knative.dev/v1alpha1\n"
	                 "kind: KafkaSink\n"
	                 "metadata:\n"
	                 "  name: default\n"
	                 "spec: {topic: t, bootstrapServers: [k:9092]}\n",
	          "test.yaml:9:9: KafkaSink default/default: metadata.name: /default/default is "
	          "already the address of Broker default/default\n");
	/* reported at the KafkaSink whichever comes first */
	ck_errors("apiVersion: eventing.knative.dev/v1alpha1\n"
	          "kind: KafkaSink\n"
	          "metadata: {name: default}\n"
	          "spec: {topic: t, bootstrapServers: [k:9092]}\n"
	          "---\n" BROKER,
	          "test.yaml:3:18: KafkaSink default/default: metadata.name: /default/default is "
	          "already the address of Broker default/default\n");
	/* another namespace is another address */
	cfg = load_ok(BROKER "---\n"
	                     "apiVersion: eventing.knative.dev/v1alpha1\n"
	                     "kind: KafkaSink\n"
	                     "metadata: {name: default, namespace: shop}\n"
	                     "spec: {topic: t, bootstrapServers: [k:9092]}\n");
	ck_assert_ptr_nonnull(find_sink(cfg, "shop", "default"));
	ck_assert_ptr_null(find_sink(cfg, "default", "default"));
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_duplicate_kafka_sources_and_sinks_are_refused)
{
	ck_errors(SOURCE_HEAD SOURCE_TOPICS "---\n" SOURCE_HEAD SOURCE_TOPICS,
	          "test.yaml:14:9: KafkaSource default/src: metadata.name: duplicate KafkaSource "
	          "(first defined at test.yaml:4:9)\n");
	ck_errors(SINK_HEAD "  topic: t\n"
	                    "---\n" SINK_HEAD "  topic: t\n",
	          "test.yaml:12:9: KafkaSink default/sink: metadata.name: duplicate KafkaSink "
	          "(first defined at test.yaml:4:9)\n");
}
END_TEST

START_TEST(test_a_trigger_subscriber_may_ref_a_kafka_sink_of_this_daemon)
{
	struct ceb_config *cfg = load_ok(
	        BROKER TRIGGER_HEAD "  subscriber:\n"
	                            "    ref:\n"
	                            "      apiVersion: eventing.knative.dev/v1alpha1\n"
	                            "      kind: KafkaSink\n"
	                            "      name: sink\n"
	                            "  delivery:\n"
	                            "    deadLetterSink:\n"
	                            "      ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: "
	                            "KafkaSink, name: sink}\n"
	                            "---\n" SINK_HEAD "  topic: t\n");
	const struct ceb_trigger_cfg *t = cfg->triggers;

	ck_assert_str_eq(t->subscriber.ref_kind, "KafkaSink");
	ck_assert_str_eq(t->subscriber.ref_api, "eventing.knative.dev/v1alpha1");
	ck_assert_str_eq(t->subscriber.ref_ns, "default");
	ck_assert_str_eq(t->subscriber.ref_name, "sink");
	ck_assert_str_eq(t->delivery.dls.ref_kind, "KafkaSink");
	ck_assert_ptr_nonnull(find_sink(cfg, "default", "sink"));
	ceb_config_free(cfg);
	ck_errors(BROKER TRIGGER_HEAD "  subscriber:\n"
	                              "    ref:\n"
	                              "      apiVersion: eventing.knative.dev/v1alpha1\n"
	                              "      kind: KafkaSink\n"
	                              "      name: nope\n",
	          "test.yaml:14:7: Trigger default/orders: spec.subscriber.ref: KafkaSink "
	          "default/nope not found\n");
	/* a Broker's deadLetterSink too */
	ck_errors(BROKER "spec:\n"
	                 "  delivery:\n"
	                 "    deadLetterSink:\n"
	                 "      ref: {apiVersion: eventing.knative.dev/v1alpha1, kind: KafkaSink, "
	                 "name: gone}\n",
	          "test.yaml:8:12: Broker default/default: spec.delivery.deadLetterSink.ref: "
	          "KafkaSink default/gone not found\n");
}
END_TEST

/* ------------------------------------------------------------------------------------------------
 * What `run` would refuse, found at load: Kafka Brokers and classes.
 */

START_TEST(test_a_kafka_brokers_configmap_is_checked_at_load)
{
#ifdef HAVE_RDKAFKA
	struct ceb_config *cfg;
	char buf[1024];

	ck_errors(
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata:\n"
	        "  name: k\n"
	        "  annotations: {eventing.knative.dev/broker.class: Kafka}\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata:\n"
	        "  name: k2\n"
	        "  annotations: {eventing.knative.dev/broker.class: Kafka}\n"
	        "spec: {config: {apiVersion: v1, kind: ConfigMap, name: kcm}}\n"
	        "---\n"
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: kcm}\n"
	        "data:\n"
	        "  default.topic.partitions: ten\n"
	        "  default.topic.replication.factor: \"0\"\n"
	        "  auth.secret.ref.name: creds\n",
	        "test.yaml:4:9: Broker default/k: spec.config: a Kafka Broker needs spec.config "
	        "naming a ConfigMap with bootstrap.servers\n"
	        "test.yaml:14:1: ConfigMap default/kcm: data[\"bootstrap.servers\"]: required "
	        "field "
	        "missing: the ConfigMap of Kafka Broker default/k2 names the Kafka cluster there\n"
	        "test.yaml:18:29: ConfigMap default/kcm: data[\"default.topic.partitions\"]: "
	        "\"ten\" "
	        "is not a whole number from 1 to 100000\n"
	        "test.yaml:19:37: ConfigMap default/kcm: "
	        "data[\"default.topic.replication.factor\"]: "
	        "\"0\" is not a whole number from -1 to 32767, other than 0\n"
	        "test.yaml:20:25: ConfigMap default/kcm: data[\"auth.secret.ref.name\"]: Secret "
	        "default/creds not found\n");
	cfg = load_ok("apiVersion: eventing.knative.dev/v1\n"
	              "kind: Broker\n"
	              "metadata:\n"
	              "  name: k\n"
	              "  annotations: {eventing.knative.dev/broker.class: Kafka}\n"
	              "spec: {config: {apiVersion: v1, kind: ConfigMap, name: kcm}}\n"
	              "---\n"
	              "apiVersion: v1\n"
	              "kind: ConfigMap\n"
	              "metadata: {name: kcm}\n"
	              "data:\n"
	              "  bootstrap.servers: \"a:9092,b:9092\"\n"
	              "  default.topic.partitions: \"3\"\n"
	              "  default.topic.config.retention.ms: \"3600\"\n"
	              "  librdkafka.linger.ms: \"5\"\n"
	              "  security.protocol: SASL_SSL\n"
	              "  colour: blue\n");
	ck_assert_str_eq(KAFKA_BROKER(cfg->brokers->config)->bootstrap, "a:9092,b:9092");
	ck_assert_int_eq(KAFKA_BROKER(cfg->brokers->config)->partitions, 3);
	ck_assert_int_eq(KAFKA_BROKER(cfg->brokers->config)->replication, 1);
	ck_assert_uint_eq(KAFKA_BROKER(cfg->brokers->config)->ntopic_cfg, 1);
	ck_assert_str_eq(KAFKA_BROKER(cfg->brokers->config)->topic_cfg[0].name, "retention.ms");
	ck_assert_uint_eq(KAFKA_BROKER(cfg->brokers->config)->nclient_cfg, 2);
	ck_assert_str_eq(KAFKA_BROKER(cfg->brokers->config)->client_cfg[0].name, "linger.ms");
	ck_assert_int_eq(KAFKA_BROKER(cfg->brokers->config)->client_cfg[0].at.line, 15);
	ck_assert_str_eq(
	        notes(cfg, buf, sizeof(buf)),
	        "test.yaml:17:11: warning: ConfigMap default/kcm: data.colour: not a Kafka "
	        "Broker setting, ignored (librdkafka properties go in as "
	        "librdkafka.<property>)\n");
	ceb_config_free(cfg);
#endif
}
END_TEST

/* Only a build without a backend has a class to refuse: configure --without-nats (or
 * --without-rabbitmq) builds run the first two checks; a build with every backend checks that the
 * classes load. */
START_TEST(test_a_class_whose_channel_this_build_lacks_is_an_error_at_load)
{
#ifndef HAVE_NATS
	ck_errors(
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata:\n"
	        "  name: r\n"
	        "  annotations: {eventing.knative.dev/broker.class: NatsJetStreamBroker}\n",
	        "test.yaml:5:52: Broker default/r: "
	        "metadata.annotations[\"eventing.knative.dev/broker.class\"]: class "
	        "NatsJetStreamBroker needs the nats channel, which this build does not include\n");
#endif
#ifndef HAVE_RABBITMQ
	/* from config-br-defaults: reported where the defaults say so */
	ck_errors("apiVersion: v1\n"
	          "kind: ConfigMap\n"
	          "metadata: {name: config-br-defaults, namespace: knative-eventing}\n"
	          "data:\n"
	          "  default-br-config: |\n"
	          "    clusterDefault:\n"
	          "      brokerClass: RabbitMQBroker\n"
	          "---\n" BROKER,
	          "test.yaml:7:20: Broker default/default: class (from config-br-defaults): class "
	          "RabbitMQBroker needs the amqp channel, which this build does not include\n");
#endif
#if defined(HAVE_NATS) && defined(HAVE_RABBITMQ)
	{
		struct ceb_config *cfg = load_ok("apiVersion: eventing.knative.dev/v1\n"
		                                 "kind: Broker\n"
		                                 "metadata:\n"
		                                 "  name: r\n"
		                                 "  annotations: {eventing.knative.dev/broker.class: "
		                                 "NatsJetStreamBroker}\n");

		ck_assert_str_eq(cfg->brokers->channel, "nats");
		ceb_config_free(cfg);
	}
#endif
}
END_TEST

static Suite *config_kafka_suite(void)
{
	Suite *s = suite_create("config_kafka");
	TCase *kafka = tcase_create("kafka");
	TCase *run = tcase_create("run");

	tcase_add_test(kafka, test_the_docs_kafka_source_v1beta1_loads_with_every_default);
	tcase_add_test(kafka, test_a_v1_kafka_source_reads_every_field);
	tcase_add_test(kafka, test_every_key_type_label_value_is_read);
	tcase_add_test(kafka, test_the_docs_kafka_sinks_load_with_and_without_content_mode);
	tcase_add_test(kafka, test_a_kafka_source_takes_v1_and_v1beta1_and_names_both);
	tcase_add_test(kafka, test_a_kafka_source_needs_topics);
	tcase_add_test(kafka, test_a_kafka_topic_name_must_be_valid_and_listed_once);
	tcase_add_test(kafka, test_bootstrap_servers_must_be_a_list_of_servers);
	tcase_add_test(kafka, test_initial_offset_is_earliest_or_latest);
	tcase_add_test(kafka, test_ordering_is_ordered_or_unordered);
	tcase_add_test(kafka, test_a_bad_key_type_label_is_reported_at_its_value);
	tcase_add_test(kafka, test_sasl_and_tls_take_their_values_from_secrets);
	tcase_add_test(kafka, test_secrets_become_librdkafkas_security_properties);
	tcase_add_test(kafka, test_a_kafka_source_sink_ref_to_a_missing_kafka_sink_is_reported);
	tcase_add_test(kafka,
	               test_a_kafka_source_sink_ref_to_a_job_sink_says_cebroker_cannot_serve_it);
	tcase_add_test(kafka, test_ce_overrides_need_valid_extension_names);
	tcase_add_test(kafka, test_bad_kafka_numbers_are_reported);
	tcase_add_test(kafka, test_a_kafka_sink_needs_a_valid_topic);
	tcase_add_test(kafka, test_a_kafka_sink_content_mode_is_binary_or_structured);
	tcase_add_test(kafka,
	               test_a_kafka_sink_auth_secret_names_a_secret_of_its_namespace);
	tcase_add_test(kafka, test_a_kafka_sink_cannot_take_the_address_of_a_broker);
	tcase_add_test(kafka, test_duplicate_kafka_sources_and_sinks_are_refused);
	tcase_add_test(kafka, test_a_trigger_subscriber_may_ref_a_kafka_sink_of_this_daemon);
	suite_add_tcase(s, kafka);
	tcase_add_test(run, test_a_kafka_brokers_configmap_is_checked_at_load);
	tcase_add_test(run, test_a_class_whose_channel_this_build_lacks_is_an_error_at_load);
	suite_add_tcase(s, run);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_kafka_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
