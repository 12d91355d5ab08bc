/* Unit tests for the YAML resource loader (broker/config/): each rule, each error's exact
 * file:line:col and text, delivery inheritance, durations. Files and hostile YAML have test_config_files.c, the Kafka kinds test_config_kafka.c,
 * Knative's manifests as people write them test_config_knative.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autoconfig.h"
#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/error.h"
#include "tests/unit/config_fixture.h"

#define SUBSCRIBER        \
	"  subscriber:\n" \
	"    uri: http://127.0.0.1:9099/orders\n"
/* ---------------------------------------------------------------------------------------------- */

START_TEST(test_quickstart_sample_loads_a_broker_and_two_triggers)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	const char *paths[1] = {path};
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	const struct ceb_trigger_cfg *orders, *audit;
	const struct ceb_broker_cfg *b;
	int rc;

	snprintf(path, sizeof(path), "%s/samples/quickstart.yaml", top ? top : ".");
	rc = ceb_config_load(paths, 1, &cfg, &errs);
	ck_assert_msg(rc == 0, "%s", errs.text.p ? errs.text.p : "");
	ck_assert_uint_eq(cfg->nbrokers, 1);
	ck_assert_uint_eq(cfg->ntriggers, 2);
	b = ceb_config_find_broker(cfg, "default", "default");
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(b->broker_class, "MTChannelBasedBroker");
	ck_assert(b->delivery.set);
	ck_assert_int_eq(b->delivery.retry, 2);
	ck_assert_int_eq(b->delivery.backoff_policy, CEB_BACKOFF_EXPONENTIAL);
	ck_assert_uint_eq(b->delivery.backoff_delay_ms, 200);
	ck_assert(b->delivery.has_dls);
	ck_assert_str_eq(b->delivery.dls.uri, "http://127.0.0.1:9099/dead-letter");

	orders = trigger_named(cfg, "orders");
	ck_assert_ptr_eq(orders->broker_cfg, b);
	ck_assert_int_eq(ceb_filter_kind(orders->filter), CEB_FILTER_LEGACY);
	ck_assert_str_eq(ceb_filter_required_type(orders->filter), "com.example.order.created");
	ck_assert_str_eq(orders->subscriber.uri, "http://127.0.0.1:9099/orders");
	ck_assert_int_eq(orders->delivery.retry, 2); /* inherited from the Broker */
	ck_assert_str_eq(orders->delivery.dls.uri, "http://127.0.0.1:9099/dead-letter");

	audit = trigger_named(cfg, "audit");
	ck_assert_int_eq(ceb_filter_kind(audit->filter), CEB_FILTER_ALL);
	ck_assert_str_eq(audit->subscriber.uri, "http://127.0.0.1:9099/audit");
	ck_assert_str_eq(audit->loc.file, path);
	ceb_config_free(cfg);
	ceb_buf_free(&errs.text);
}
END_TEST

START_TEST(test_defaults_fill_namespace_class_filter_and_delivery)
{
	struct ceb_config *cfg = load_ok(BROKER TRIGGER_HEAD SUBSCRIBER);
	const struct ceb_trigger_cfg *t = cfg->triggers;

	ck_assert_str_eq(cfg->brokers->ns, "default");
	ck_assert_str_eq(cfg->brokers->broker_class, "MTChannelBasedBroker");
	ck_assert_ptr_null(cfg->brokers->config);
	ck_assert_str_eq(t->ns, "default");
	ck_assert_str_eq(t->broker, "default");
	ck_assert_ptr_eq(t->broker_cfg, cfg->brokers);
	ck_assert_int_eq(ceb_filter_kind(t->filter), CEB_FILTER_TRUE);
	ck_assert(!t->delivery.set);
	ck_assert_int_eq(t->delivery.retry, 0);
	ck_assert_int_eq(t->delivery.backoff_policy, CEB_BACKOFF_EXPONENTIAL);
	ck_assert_int_eq(t->delivery.retry_after_max_ms, -1);
	ck_assert_int_eq(t->delivery.format, CEB_FORMAT_BINARY);
	ck_assert(!t->delivery.has_dls);
	ck_assert(!t->ordered);
	ck_assert_str_eq(t->loc.file, "test.yaml");
	ck_assert_int_eq(t->loc.line, 6);
	ck_assert_int_eq(t->loc.col, 1);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_trigger_finds_only_the_broker_of_its_own_namespace)
{
	struct ceb_config *cfg;

	ck_errors(BROKER "---\n"
	                 "apiVersion: eventing.knative.dev/v1\n"
	                 "kind: Trigger\n"
	                 "metadata:\n"
	                 "  name: orders\n"
	                 "  namespace: team\n"
	                 "spec:\n"
	                 "  broker: default\n" SUBSCRIBER,
	          "test.yaml:12:11: Trigger team/orders: spec.broker: Broker team/default not "
	          "found\n");
	cfg = load_ok(BROKER "  namespace: team\n"
	                     "---\n"
	                     "apiVersion: eventing.knative.dev/v1\n"
	                     "kind: Trigger\n"
	                     "metadata: {name: orders, namespace: team}\n"
	                     "spec:\n"
	                     "  broker: default\n" SUBSCRIBER);
	ck_assert_str_eq(cfg->brokers->ns, "team");
	ck_assert_ptr_eq(cfg->triggers->broker_cfg, cfg->brokers);
	ck_assert_ptr_null(ceb_config_find_broker(cfg, "default", "default"));
	ck_assert_ptr_eq(ceb_config_find_broker(cfg, "team", "default"), cfg->brokers);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_trigger_naming_a_missing_broker_is_reported_at_spec_broker)
{
	ck_errors(
	        BROKER "---\n"
	               "apiVersion: eventing.knative.dev/v1\n"
	               "kind: Trigger\n"
	               "metadata:\n"
	               "  name: x\n"
	               "spec:\n"
	               "  broker: nope\n" SUBSCRIBER,
	        "test.yaml:11:11: Trigger default/x: spec.broker: Broker default/nope not found\n");
}
END_TEST

START_TEST(test_spec_broker_is_required_and_broker_ref_is_not_supported)
{
	ck_errors(BROKER "---\n"
	                 "apiVersion: eventing.knative.dev/v1\n"
	                 "kind: Trigger\n"
	                 "metadata:\n"
	                 "  name: x\n"
	                 "spec:\n" SUBSCRIBER,
	          "test.yaml:11:3: Trigger default/x: spec.broker: required field missing\n");
	ck_errors(
	        BROKER "---\n"
	               "apiVersion: eventing.knative.dev/v1\n"
	               "kind: Trigger\n"
	               "metadata:\n"
	               "  name: x\n"
	               "spec:\n"
	               "  brokerRef:\n"
	               "    name: default\n" SUBSCRIBER,
	        "test.yaml:12:5: Trigger default/x: spec.brokerRef: not supported (cross-namespace "
	        "Triggers); use spec.broker with a Broker in the Trigger's namespace\n");
}
END_TEST

START_TEST(test_an_unknown_kind_names_the_supported_kinds)
{
	ck_errors("apiVersion: eventing.knative.dev/v1\n"
	          "kind: Triger\n"
	          "metadata:\n"
	          "  name: tick\n",
	          "test.yaml:2:7: Triger default/tick: kind: unknown kind \"Triger\" "
	          "(supported: " SUPPORTED ")\n");
	ck_errors("apiVersion: sources.knative.dev/v1\n"
	          "kind: ApiServerSource\n"
	          "metadata:\n"
	          "  name: tick\n",
	          "test.yaml:2:7: ApiServerSource default/tick: kind: ApiServerSource is a Knative "
	          "kind that "
	          "cebroker does not run yet (supported: " SUPPORTED ")\n");
	ck_errors("apiVersion: v1\n"
	          "metadata:\n"
	          "  name: tick\n",
	          "test.yaml:1:1: resource default/tick: kind: required field missing "
	          "(supported: " SUPPORTED ")\n");
}
END_TEST

START_TEST(test_a_known_kind_with_another_api_version_is_rejected)
{
	ck_errors("apiVersion: eventing.knative.dev/v1beta1\n"
	          "kind: Broker\n"
	          "metadata:\n"
	          "  name: default\n",
	          "test.yaml:1:13: Broker default/default: apiVersion: unknown apiVersion "
	          "\"eventing.knative.dev/v1beta1\" for Broker (supported: " SUPPORTED ")\n");
	ck_errors("kind: ConfigMap\n"
	          "metadata:\n"
	          "  name: c\n",
	          "test.yaml:1:1: ConfigMap default/c: apiVersion: required field missing "
	          "(supported: " SUPPORTED ")\n");
}
END_TEST

START_TEST(test_an_unknown_spec_field_is_named_with_the_known_ones)
{
	ck_errors(BROKER TRIGGER_HEAD SUBSCRIBER "  replicas: 3\n",
	          "test.yaml:14:3: Trigger default/orders: spec.replicas: unknown field (spec "
	          "takes broker, "
	          "brokerRef, filter, filters, subscriber, delivery)\n");
	ck_errors(
	        BROKER "spec:\n"
	               "  delivery:\n"
	               "    retries: 3\n",
	        "test.yaml:7:5: Broker default/default: spec.delivery.retries: unknown field "
	        "(spec.delivery takes deadLetterSink, retry, backoffPolicy, backoffDelay, timeout, "
	        "retryAfterMax, format)\n");
}
END_TEST

START_TEST(test_metadata_takes_only_name_namespace_labels_and_annotations)
{
	ck_errors(BROKER "  colour: blue\n"
	                 "  labels:\n"
	                 "    app: shop\n",
	          "test.yaml:5:3: Broker default/default: metadata.colour: unknown field (metadata "
	          "takes name, "
	          "namespace, labels, annotations)\n");
}
END_TEST

START_TEST(test_names_must_be_present_and_dns_labels)
{
	ck_errors("apiVersion: eventing.knative.dev/v1\n"
	          "kind: Broker\n"
	          "metadata:\n"
	          "  namespace: shop\n",
	          "test.yaml:4:3: Broker shop/(no name): metadata.name: required field missing\n");
	ck_errors(
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n",
	        "test.yaml:1:1: Broker default/(no name): metadata.name: required field missing\n");
	ck_errors("apiVersion: eventing.knative.dev/v1\n"
	          "kind: Broker\n"
	          "metadata:\n"
	          "  name: My_Broker\n"
	          "  namespace: -shop\n",
	          "test.yaml:4:9: Broker -shop/My_Broker: metadata.name: \"My_Broker\" is not a "
	          "valid name "
	          "(lower-case letters, digits and '-', starting and ending with a letter or "
	          "digit, at most "
	          "63 characters)\n"
	          "test.yaml:5:14: Broker -shop/My_Broker: metadata.namespace: \"-shop\" is not a "
	          "valid "
	          "namespace (lower-case letters, digits and '-', starting and ending with a "
	          "letter or digit, "
	          "at most 63 characters)\n");
}
END_TEST

START_TEST(test_broker_class_defaults_and_unknown_classes_are_refused)
{
	struct ceb_config *cfg =
	        load_ok(BROKER "  annotations:\n"
	                       "    eventing.knative.dev/broker.class: MTChannelBasedBroker\n"
	                       "    example.com/owner: shop\n");

	ck_assert_str_eq(cfg->brokers->broker_class, "MTChannelBasedBroker");
	ck_assert_uint_eq(cfg->brokers->nannot, 2);
	ck_assert_str_eq(ceb_annotation(cfg->brokers->annot_keys, cfg->brokers->annot_values,
	                                cfg->brokers->nannot, "example.com/owner"),
	                 "shop");
	ck_assert_ptr_null(ceb_annotation(cfg->brokers->annot_keys, cfg->brokers->annot_values,
	                                  cfg->brokers->nannot, "nope"));
	ceb_config_free(cfg);
	ck_errors(BROKER "  annotations:\n"
	                 "    eventing.knative.dev/broker.class: Redis\n",
	          "test.yaml:6:40: Broker default/default: "
	          "metadata.annotations[\"eventing.knative.dev/broker.class\"]: unknown broker "
	          "class \"Redis\" "
	          "(known: MTChannelBasedBroker, Kafka, RabbitMQBroker, NatsJetStreamBroker)\n");
}
END_TEST

START_TEST(test_broker_config_resolves_a_configmap_in_the_brokers_namespace)
{
	struct ceb_config *cfg = load_ok("apiVersion: v1\n"
	                                 "kind: ConfigMap\n"
	                                 "metadata:\n"
	                                 "  name: kafka-broker-config\n"
	                                 "  namespace: shop\n"
	                                 "data:\n"
	                                 "  bootstrap.servers: localhost:9092\n"
	                                 "  default.topic.partitions: 10\n"
	                                 "  empty:\n"
	                                 "  channel-template-spec: |\n"
	                                 "    apiVersion: messaging.knative.dev/v1\n"
	                                 "    kind: InMemoryChannel\n"
	                                 "---\n"
	                                 "apiVersion: eventing.knative.dev/v1\n"
	                                 "kind: Broker\n"
	                                 "metadata:\n"
	                                 "  name: default\n"
	                                 "  namespace: shop\n"
	                                 "spec:\n"
	                                 "  config:\n"
	                                 "    apiVersion: v1\n"
	                                 "    kind: ConfigMap\n"
	                                 "    name: kafka-broker-config\n");
	const struct ceb_configmap *cm = cfg->brokers->config;

	ck_assert_ptr_eq(cm, cfg->configmaps);
	ck_assert_str_eq(ceb_configmap_get(cm, "bootstrap.servers"), "localhost:9092");
	ck_assert_str_eq(ceb_configmap_get(cm, "default.topic.partitions"), "10");
	ck_assert_str_eq(ceb_configmap_get(cm, "empty"), "");
	ck_assert_ptr_null(ceb_configmap_get(cm, "nope"));
	ck_assert_str_eq(cfg->brokers->channel, "memory"); /* what its template names */
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_broker_config_must_name_an_existing_configmap)
{
	ck_errors(BROKER "spec:\n"
	                 "  config:\n"
	                 "    apiVersion: v1\n"
	                 "    kind: ConfigMap\n"
	                 "    name: missing\n"
	                 "    namespace: knative-eventing\n",
	          "test.yaml:7:5: Broker default/default: spec.config: ConfigMap "
	          "knative-eventing/missing "
	          "not found\n");
	ck_errors(BROKER "spec:\n"
	                 "  config:\n"
	                 "    apiVersion: v1\n"
	                 "    kind: Secret\n"
	                 "    name: rmq\n",
	          "test.yaml:7:5: Broker default/default: spec.config: only a ConfigMap "
	          "(apiVersion v1) or a RabbitmqBrokerConfig (eventing.knative.dev/v1alpha1) can "
	          "hold a Broker's config, got Secret\n");
	/* a backend's own settings kind serves that backend's Brokers only */
	ck_errors(BROKER "spec:\n"
	                 "  config:\n"
	                 "    apiVersion: eventing.knative.dev/v1alpha1\n"
	                 "    kind: RabbitmqBrokerConfig\n"
	                 "    name: rmq\n",
	          "test.yaml:7:5: Broker default/default: spec.config: RabbitmqBrokerConfig "
	          "default/rmq not found\n");
}
END_TEST

START_TEST(test_configmap_data_must_be_strings)
{
	ck_errors("apiVersion: v1\n"
	          "kind: ConfigMap\n"
	          "metadata:\n"
	          "  name: c\n"
	          "data:\n"
	          "  a: \"1\"\n"
	          "  b:\n"
	          "    nested: map\n"
	          "  c: [1, 2]\n",
	          "test.yaml:8:5: ConfigMap default/c: data.b: expected a string, got a mapping\n"
	          "test.yaml:9:6: ConfigMap default/c: data.c: expected a string, got a list\n");
}
END_TEST

START_TEST(test_a_secret_decodes_data_and_takes_string_data_over_it)
{
	struct ceb_config *cfg = load_ok("apiVersion: v1\n"
	                                 "kind: Secret\n"
	                                 "metadata:\n"
	                                 "  name: rabbit\n"
	                                 "  namespace: prod\n"
	                                 "type: Opaque\n"
	                                 "data:\n"
	                                 "  username: Z3Vlc3Q=\n"
	                                 "  password: b2xk\n"
	                                 "  bin: AAEC\n"
	                                 "stringData:\n"
	                                 "  password: s3cr3t\n"
	                                 "  uri: amqp://127.0.0.1:5672\n");
	const struct ceb_secret *sec = ceb_config_find_secret(cfg, "prod", "rabbit");
	size_t len = 0;

	ck_assert_ptr_nonnull(sec);
	ck_assert_ptr_null(ceb_config_find_secret(cfg, "default", "rabbit"));
	ck_assert_str_eq(ceb_secret_get(sec, "username", NULL), "guest");
	ck_assert_str_eq(ceb_secret_get(sec, "password", NULL), "s3cr3t");
	ck_assert_str_eq(ceb_secret_get(sec, "uri", NULL), "amqp://127.0.0.1:5672");
	ck_assert_ptr_nonnull(ceb_secret_get(sec, "bin", &len));
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(ceb_secret_get(sec, "bin", NULL), "\0\1\2", 3), 0);
	ck_assert_ptr_null(ceb_secret_get(sec, "port", NULL));
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_secrets_errors_name_the_key_never_the_value)
{
	char *errs;
	size_t n = 0;
	const char *yaml = "apiVersion: v1\n"
	                   "kind: Secret\n"
	                   "metadata:\n"
	                   "  name: s\n"
	                   "data:\n"
	                   "  password: hunter2-not-base64!\n"
	                   "  \"bad key\": eA==\n"
	                   "stringData:\n"
	                   "  token:\n"
	                   "    nested: hunter3\n";

	errs = load_err(yaml, strlen(yaml), &n);
	ck_assert_str_eq(
	        errs, "test.yaml:6:13: Secret default/s: data.password: not base64 (data holds "
	              "base64; put plain text in stringData)\n"
	              "test.yaml:7:3: Secret default/s: data[\"bad key\"]: \"bad key\" is not a "
	              "valid Secret key (letters, digits, '-', '_' and '.', at most 253)\n"
	              "test.yaml:10:5: Secret default/s: stringData.token: expected a string, got "
	              "a mapping\n");
	ck_assert_ptr_null(strstr(errs, "hunter"));
	ck_assert_uint_eq(n, 3);
	free(errs);
}
END_TEST

START_TEST(test_filter_attributes_compile_to_a_legacy_filter)
{
	struct ceb_config *cfg =
	        load_ok(BROKER TRIGGER_HEAD SUBSCRIBER "  filter:\n"
	                                               "    attributes:\n"
	                                               "      type: com.example.order.created\n"
	                                               "      myext: \"\"\n");
	const struct ceb_trigger_cfg *t = cfg->triggers;

	ck_assert_int_eq(ceb_filter_kind(t->filter), CEB_FILTER_LEGACY);
	ck_assert_str_eq(ceb_filter_required_type(t->filter), "com.example.order.created");
	ceb_config_free(cfg);

	cfg = load_ok(BROKER TRIGGER_HEAD SUBSCRIBER "  filter:\n"
	                                             "    attributes: {}\n");
	ck_assert_int_eq(ceb_filter_kind(cfg->triggers->filter), CEB_FILTER_TRUE);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_filters_win_over_filter_when_both_are_set)
{
	struct ceb_config *cfg = load_ok(BROKER TRIGGER_HEAD SUBSCRIBER "  filter:\n"
	                                                                "    attributes:\n"
	                                                                "      type: a\n"
	                                                                "  filters:\n"
	                                                                "    - prefix:\n"
	                                                                "        type: com.\n");

	ck_assert_int_eq(ceb_filter_kind(cfg->triggers->filter), CEB_FILTER_PREFIX);
	ceb_config_free(cfg);
	/* an empty filters list constrains nothing, so the legacy filter stays in force (Knative) */
	cfg = load_ok(BROKER TRIGGER_HEAD SUBSCRIBER "  filter:\n"
	                                             "    attributes:\n"
	                                             "      type: a\n"
	                                             "  filters: []\n");
	ck_assert_int_eq(ceb_filter_kind(cfg->triggers->filter), CEB_FILTER_LEGACY);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_filter_dialects_nest_into_one_tree)
{
	struct ceb_config *cfg = load_ok(BROKER TRIGGER_HEAD SUBSCRIBER
	                                 "  filters:\n"
	                                 "    - exact: {type: com.example.a}\n"
	                                 "    - suffix: {source: /web}\n"
	                                 "    - any:\n"
	                                 "        - not:\n"
	                                 "            exact: {subject: x}\n"
	                                 "        - all:\n"
	                                 "            - cesql: \"source LIKE '/shop/%'\"\n"
	                                 "            - prefix: {type: com.}\n");

	ck_assert_int_eq(ceb_filter_kind(cfg->triggers->filter), CEB_FILTER_ALL);
	ck_assert_str_eq(ceb_filter_required_type(cfg->triggers->filter), "com.example.a");
	ceb_config_free(cfg);
	cfg = load_ok(BROKER TRIGGER_HEAD SUBSCRIBER "  filters:\n"
	                                             "    - not: {cesql: \"type = 'x'\"}\n");
	ck_assert_int_eq(ceb_filter_kind(cfg->triggers->filter), CEB_FILTER_NOT);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_filter_object_takes_exactly_one_known_dialect)
{
	ck_errors(BROKER TRIGGER_HEAD SUBSCRIBER "  filters:\n"
	                                         "    - exact: {type: a}\n"
	                                         "      prefix: {source: b}\n"
	                                         "    - {}\n"
	                                         "    - regex: {type: a.*}\n"
	                                         "    - all:\n"
	                                         "        - exact: {}\n",
	          "test.yaml:15:7: Trigger default/orders: spec.filters[0]: a filter takes exactly "
	          "one "
	          "dialect, found 2 (exact, prefix); combine them with all:\n"
	          "test.yaml:17:7: Trigger default/orders: spec.filters[1]: a filter needs one "
	          "dialect: "
	          "exact, prefix, suffix, all, any, not or cesql\n"
	          "test.yaml:18:7: Trigger default/orders: spec.filters[2].regex: unknown field "
	          "(spec.filters[2] takes exact, prefix, suffix, all, any, not, cesql)\n"
	          "test.yaml:20:18: Trigger default/orders: spec.filters[3].all[0].exact: needs at "
	          "least one "
	          "attribute\n");
}
END_TEST

START_TEST(test_a_filter_the_filter_module_refuses_is_reported_at_its_map)
{
	ck_errors(BROKER TRIGGER_HEAD SUBSCRIBER "  filters:\n"
	                                         "    - exact:\n"
	                                         "        Type: com.example\n",
	          "test.yaml:16:9: Trigger default/orders: spec.filters[0].exact: attribute name "
	          "'Type' must "
	          "be lower-case letters and digits\n");
}
END_TEST

START_TEST(test_a_cesql_error_points_at_the_expression_and_its_column)
{
	ck_errors(BROKER TRIGGER_HEAD SUBSCRIBER "  filters:\n"
	                                         "    - cesql: \"source =)\"\n",
	          "test.yaml:15:14: Trigger default/orders: spec.filters[0].cesql: unexpected "
	          "token ')' at "
	          "column 9\n");
	ck_errors(
	        BROKER TRIGGER_HEAD SUBSCRIBER "  filters:\n"
	                                       "    - cesql: [type]\n",
	        "test.yaml:15:14: Trigger default/orders: spec.filters[0].cesql: expected a CESQL "
	        "expression string, got a list\n");
}
END_TEST

START_TEST(test_a_subscriber_needs_a_uri_or_a_ref)
{
	ck_errors(
	        BROKER TRIGGER_HEAD "  subscriber:\n"
	                            "    CACerts: " TEST_CA_PEM_YAML "\n",
	        "test.yaml:13:5: Trigger default/orders: spec.subscriber: needs a uri or a ref (or "
	        "a ref and a uri relative to it)\n");
	/* beside a ref, a uri is relative to the ref's address (Knative refuses an absolute one) */
	ck_errors(BROKER TRIGGER_HEAD
	          "  subscriber:\n"
	          "    uri: http://127.0.0.1:9099/\n"
	          "    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}\n",
	          "test.yaml:13:10: Trigger default/orders: spec.subscriber.uri: "
	          "\"http://127.0.0.1:9099/\" is absolute, and a uri beside a ref must be relative "
	          "to "
	          "the ref's address (e.g. /path); give one or the other\n");
	ck_errors(BROKER TRIGGER_HEAD, "test.yaml:11:3: Trigger default/orders: spec.subscriber: "
	                               "required field missing\n");
}
END_TEST

START_TEST(test_a_subscriber_uri_must_be_absolute_http_or_https)
{
	static const struct {
		const char *uri, *why;
	} bad[] = {
	        {"ftp://host/x", "must be an absolute http:// or https:// URI"},
	        {"/orders", "must be an absolute http:// or https:// URI"},
	        {"http:///x", "has no host"},
	        {"http://host:99999/", "has an invalid port"},
	        {"http://host:/", "has an invalid port"},
	        {"http://[::1/", "has a malformed IPv6 host"},
	};
	char yaml[1024], want[1024];
	struct ceb_config *cfg;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), BROKER TRIGGER_HEAD "  subscriber:\n    uri: \"%s\"\n",
		         bad[i].uri);
		snprintf(
		        want, sizeof(want),
		        "test.yaml:13:10: Trigger default/orders: spec.subscriber.uri: \"%s\" %s\n",
		        bad[i].uri, bad[i].why);
		ck_errors(yaml, want);
	}
	cfg = load_ok(BROKER TRIGGER_HEAD "  subscriber:\n"
	                                  "    uri: HTTPS://user@[::1]:8443/a?b#c\n"
	                                  "    CACerts: " TEST_CA_PEM_YAML "\n"
	                                  "    audience: my-service\n");
	ck_assert_str_eq(cfg->triggers->subscriber.uri, "HTTPS://user@[::1]:8443/a?b#c");
	ck_assert_str_eq(cfg->triggers->subscriber.ca_certs, TEST_CA_PEM);
	ck_assert_str_eq(cfg->triggers->subscriber.audience, "my-service");
	ck_assert_int_eq(cfg->triggers->subscriber.loc.line, 13);
	ck_assert_int_eq(cfg->triggers->subscriber.loc.col, 10);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_ref_to_a_job_sink_says_cebroker_cannot_serve_it)
{
	ck_errors(BROKER TRIGGER_HEAD "  subscriber:\n"
	                              "    ref:\n"
	                              "      apiVersion: sinks.knative.dev/v1alpha1\n"
	                              "      kind: JobSink\n"
	                              "      name: job-sink-logger\n",
	          "test.yaml:14:7: Trigger default/orders: spec.subscriber.ref: cebroker cannot "
	          "serve a ref to JobSink (sinks.knative.dev/v1alpha1) default/job-sink-logger: it "
	          "runs only its own Brokers and KafkaSinks; give the address in the address table "
	          "(--address 'JobSink default/job-sink-logger=http://HOST:PORT/' or the "
	          "cebroker-addresses ConfigMap), or use uri:\n");
}
END_TEST

START_TEST(test_a_ref_to_a_broker_must_exist_and_defaults_its_namespace)
{
	struct ceb_config *cfg =
	        load_ok(BROKER TRIGGER_HEAD "  subscriber:\n"
	                                    "    ref:\n"
	                                    "      apiVersion: eventing.knative.dev/v1\n"
	                                    "      kind: Broker\n"
	                                    "      name: default\n");

	ck_assert_ptr_null(cfg->triggers->subscriber.uri);
	ck_assert_str_eq(cfg->triggers->subscriber.ref_kind, "Broker");
	ck_assert_str_eq(cfg->triggers->subscriber.ref_api, "eventing.knative.dev/v1");
	ck_assert_str_eq(cfg->triggers->subscriber.ref_ns, "default");
	ck_assert_str_eq(cfg->triggers->subscriber.ref_name, "default");
	ceb_config_free(cfg);
	ck_errors(BROKER TRIGGER_HEAD "  subscriber:\n"
	                              "    ref:\n"
	                              "      apiVersion: eventing.knative.dev/v1\n"
	                              "      kind: Broker\n"
	                              "      name: other\n"
	                              "      namespace: shop\n",
	          "test.yaml:14:7: Trigger default/orders: spec.subscriber.ref: Broker shop/other "
	          "not "
	          "found\n");
	ck_errors(BROKER TRIGGER_HEAD "  subscriber:\n"
	                              "    ref:\n"
	                              "      kind: Broker\n"
	                              "      name: default\n",
	          "test.yaml:14:7: Trigger default/orders: spec.subscriber.ref.apiVersion: "
	          "required field "
	          "missing\n");
}
END_TEST

START_TEST(test_the_delivery_order_annotation_sets_ordered)
{
	struct ceb_config *cfg =
	        load_ok(BROKER "---\n"
	                       "apiVersion: eventing.knative.dev/v1\n"
	                       "kind: Trigger\n"
	                       "metadata:\n"
	                       "  name: a\n"
	                       "  annotations:\n"
	                       "    kafka.eventing.knative.dev/delivery.order: ordered\n"
	                       "spec: {broker: default, subscriber: {uri: \"http://h/\"}}\n"
	                       "---\n"
	                       "apiVersion: eventing.knative.dev/v1\n"
	                       "kind: Trigger\n"
	                       "metadata:\n"
	                       "  name: b\n"
	                       "  annotations:\n"
	                       "    kafka.eventing.knative.dev/delivery.order: unordered\n"
	                       "spec: {broker: default, subscriber: {uri: \"http://h/\"}}\n");

	ck_assert(trigger_named(cfg, "a")->ordered);
	ck_assert(!trigger_named(cfg, "b")->ordered);
	ceb_config_free(cfg);
	ck_errors(BROKER "---\n"
	                 "apiVersion: eventing.knative.dev/v1\n"
	                 "kind: Trigger\n"
	                 "metadata:\n"
	                 "  name: a\n"
	                 "  annotations:\n"
	                 "    kafka.eventing.knative.dev/delivery.order: fifo\n"
	                 "spec: {broker: default, subscriber: {uri: \"http://h/\"}}\n",
	          "test.yaml:11:48: Trigger default/a: "
	          "metadata.annotations[\"kafka.eventing.knative.dev/delivery.order\"]: \"fifo\" "
	          "is not a "
	          "delivery order (ordered or unordered)\n");
}
END_TEST

START_TEST(test_every_delivery_field_is_read)
{
	struct ceb_config *cfg = load_ok(
	        BROKER TRIGGER_HEAD SUBSCRIBER
	        "  delivery:\n"
	        "    retry: 5\n"
	        "    backoffPolicy: linear\n"
	        "    backoffDelay: PT0.5S\n"
	        "    timeout: PT30S\n"
	        "    retryAfterMax: PT2M\n"
	        "    format: json\n"
	        "    deadLetterSink:\n"
	        "      ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}\n");
	const struct ceb_delivery *dl = &cfg->triggers->delivery;

	ck_assert(dl->set);
	ck_assert_int_eq(dl->retry, 5);
	ck_assert_int_eq(dl->backoff_policy, CEB_BACKOFF_LINEAR);
	ck_assert_uint_eq(dl->backoff_delay_ms, 500);
	ck_assert_uint_eq(dl->timeout_ms, 30000);
	ck_assert_int_eq(dl->retry_after_max_ms, 120000);
	ck_assert_int_eq(dl->format, CEB_FORMAT_JSON);
	ck_assert(dl->has_dls);
	ck_assert_str_eq(dl->dls.ref_name, "default");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_bad_delivery_values_are_each_reported)
{
	ck_errors(BROKER "spec:\n"
	                 "  delivery:\n"
	                 "    retry: -1\n"
	                 "    backoffPolicy: fibonacci\n"
	                 "    backoffDelay: 5s\n"
	                 "    timeout: PT0S\n"
	                 "    retryAfterMax: -PT1S\n"
	                 "    format: xml\n"
	                 "    deadLetterSink:\n"
	                 "      uri: mailto:ops@example.com\n",
	          "test.yaml:7:12: Broker default/default: spec.delivery.retry: -1 is out of range "
	          "(0 to "
	          "2147483647)\n"
	          "test.yaml:8:20: Broker default/default: spec.delivery.backoffPolicy: "
	          "\"fibonacci\" is not a "
	          "backoff policy (linear or exponential)\n"
	          "test.yaml:9:19: Broker default/default: spec.delivery.backoffDelay: invalid "
	          "duration "
	          "\"5s\": not an ISO 8601 duration (e.g. PT10S, PT0.5S, PT1M30S, P1D)\n"
	          "test.yaml:10:14: Broker default/default: spec.delivery.timeout: must be greater "
	          "than "
	          "zero\n"
	          "test.yaml:11:20: Broker default/default: spec.delivery.retryAfterMax: invalid "
	          "duration \"-PT1S\": negative durations are not allowed\n"
	          "test.yaml:12:13: Broker default/default: spec.delivery.format: \"xml\" is not a "
	          "format "
	          "(json or binary)\n"
	          "test.yaml:14:12: Broker default/default: spec.delivery.deadLetterSink.uri: "
	          "\"mailto:ops@example.com\" must be an absolute http:// or https:// URI\n");
	ck_errors(BROKER "spec:\n"
	                 "  delivery:\n"
	                 "    retry: \"3\"\n"
	                 "    backoffDelay: 10\n",
	          "test.yaml:7:12: Broker default/default: spec.delivery.retry: expected an "
	          "integer, got a "
	          "string\n"
	          "test.yaml:8:19: Broker default/default: spec.delivery.backoffDelay: invalid "
	          "duration "
	          "\"10\": not an ISO 8601 duration (e.g. PT10S, PT0.5S, PT1M30S, P1D)\n");
}
END_TEST

START_TEST(test_a_trigger_delivery_replaces_the_brokers_as_a_whole)
{
	struct ceb_config *cfg = load_ok(
	        BROKER
	        "spec:\n"
	        "  delivery:\n"
	        "    retry: 3\n"
	        "    format: json\n"
	        "    deadLetterSink: {uri: \"http://127.0.0.1:9099/dls\"}\n" TRIGGER_HEAD SUBSCRIBER
	        "  delivery:\n"
	        "    timeout: PT5S\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Trigger\n"
	        "metadata: {name: inherits}\n"
	        "spec: {broker: default, subscriber: {uri: \"http://h/\"}, delivery: {}}\n");
	const struct ceb_trigger_cfg *own = trigger_named(cfg, "orders");
	const struct ceb_trigger_cfg *inh = trigger_named(cfg, "inherits");

	/* sets one field, so none of the Broker's applies: no retries, no dead-letter sink */
	ck_assert(own->delivery.set);
	ck_assert_uint_eq(own->delivery.timeout_ms, 5000);
	ck_assert_int_eq(own->delivery.retry, 0);
	ck_assert(!own->delivery.has_dls);
	ck_assert_int_eq(own->delivery.format, CEB_FORMAT_BINARY);
	/* sets nothing: the Broker's delivery, copied */
	ck_assert(inh->delivery.set);
	ck_assert_int_eq(inh->delivery.retry, 3);
	ck_assert_int_eq(inh->delivery.format, CEB_FORMAT_JSON);
	ck_assert(inh->delivery.has_dls);
	ck_assert_str_eq(inh->delivery.dls.uri, "http://127.0.0.1:9099/dls");
	ck_assert_ptr_ne(inh->delivery.dls.uri, cfg->brokers->delivery.dls.uri);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_durations_parse_iso8601)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
	        {"PT1S", 1000},    {"PT0.5S", 500},    {"PT0,25S", 250},
	        {"PT0S", 0},       {"PT1M30S", 90000}, {"PT1.5H", 5400000},
	        {"P1D", 86400000}, {"P1W", 604800000}, {"P1DT2H3M4.5S", 93784500},
	        {"PT10M", 600000}, {"PT0.0001S", 0},   {"P2W1D", 1296000000},
	};
	uint64_t ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 12345;
		ck_assert_msg(ceb_duration_parse(good[i].s, &ms) == 0, "%s refused", good[i].s);
		ck_assert_msg(ms == good[i].ms, "%s: %llu ms", good[i].s, (unsigned long long)ms);
	}
}
END_TEST

START_TEST(test_durations_refuse_negatives_and_garbage)
{
	static const char *const bad[] = {
	        "",
	        "P",
	        "PT",
	        "1S",
	        "PT1",
	        "-PT1S",
	        "-P0",
	        "P1M1Y",
	        "PT1D",
	        "P1H",
	        "PT1S1M",
	        "PT1S2S",
	        "pt1s",
	        "PT.5S",
	        "PT1.S",
	        "PT1SX",
	        "P1DT1H ",
	        "PT99999999999999999999S",
	        "P9999999999999W",
	        "10",
	        "PT-1S",
	};
	uint64_t ms = 7;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ceb_duration_parse(bad[i], &ms) == CEB_EINVAL, "%s accepted", bad[i]);
	ck_assert_uint_eq(ms, 7);
	ck_assert_int_eq(ceb_duration_parse(NULL, &ms), CEB_EINVAL);
}
END_TEST

START_TEST(test_wrong_types_are_reported_where_they_are)
{
	ck_errors("apiVersion: eventing.knative.dev/v1\n"
	          "kind: Broker\n"
	          "metadata:\n"
	          "  - name: default\n",
	          "test.yaml:4:3: Broker default/(no name): metadata: expected a mapping, got a "
	          "list\n");
	ck_errors(
	        BROKER "  labels: [a, b]\n"
	               "spec: nothing\n",
	        "test.yaml:5:11: Broker default/default: metadata.labels: expected a mapping, got "
	        "a list\n"
	        "test.yaml:6:7: Broker default/default: spec: expected a mapping, got a string\n");
	ck_errors(BROKER TRIGGER_HEAD "  subscriber: http://127.0.0.1/\n"
	                              "  filters:\n"
	                              "    type: a\n",
	          "test.yaml:12:15: Trigger default/orders: spec.subscriber: expected a mapping, "
	          "got a "
	          "string\n"
	          "test.yaml:14:5: Trigger default/orders: spec.filters: expected a list, got a "
	          "mapping\n");
	ck_errors(BROKER TRIGGER_HEAD SUBSCRIBER "  filter:\n"
	                                         "    attributes:\n"
	                                         "      type: [a]\n",
	          "test.yaml:16:13: Trigger default/orders: spec.filter.attributes.type: expected "
	          "a string, "
	          "got a list\n");
	ck_errors("- apiVersion: v1\n",
	          "test.yaml:1:1: a resource must be a mapping with apiVersion, "
	          "kind and metadata, got a list\n");
	/* a key with a newline in it still makes one line of error */
	ck_errors(BROKER "  \"a\\nb\": 1\n", "test.yaml:5:3: Broker default/default: "
	                                     "metadata[\"a?b\"]: unknown field (metadata takes "
	                                     "name, namespace, labels, annotations)\n");
}
END_TEST

START_TEST(test_null_fields_count_as_absent)
{
	struct ceb_config *cfg = load_ok(BROKER "  namespace:\n"
	                                        "  labels: ~\n"
	                                        "spec: null\n");

	ck_assert_str_eq(cfg->brokers->ns, "default");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_duplicate_keys_are_refused)
{
	ck_errors(BROKER TRIGGER_HEAD SUBSCRIBER "  broker: other\n",
	          "test.yaml:14:3: Trigger default/orders: spec.broker: duplicate key (first at "
	          "line 11)\n");
	ck_errors(BROKER "  annotations:\n"
	                 "    a: 1\n"
	                 "    b: 2\n"
	                 "    a: 3\n",
	          "test.yaml:8:5: Broker default/default: metadata.annotations.a: duplicate key "
	          "(first at "
	          "line 6)\n");
}
END_TEST

START_TEST(test_duplicate_resources_are_refused_at_the_second_name)
{
	struct ceb_config *cfg;

	ck_errors(BROKER "---\n"
	                 "apiVersion: eventing.knative.dev/v1\n"
	                 "kind: Broker\n"
	                 "metadata: {name: default}\n",
	          "test.yaml:8:18: Broker default/default: metadata.name: duplicate Broker (first "
	          "defined at "
	          "test.yaml:4:9)\n");
	/* same name, another namespace or another kind: fine */
	cfg = load_ok(BROKER "---\n"
	                     "apiVersion: eventing.knative.dev/v1\n"
	                     "kind: Broker\n"
	                     "metadata: {name: default, namespace: shop}\n"
	                     "---\n"
	                     "apiVersion: v1\n"
	                     "kind: ConfigMap\n"
	                     "metadata: {name: default}\n");
	ck_assert_uint_eq(cfg->nbrokers, 2);
	ceb_config_free(cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("resources");

	tcase_add_test(tc, test_quickstart_sample_loads_a_broker_and_two_triggers);
	tcase_add_test(tc, test_defaults_fill_namespace_class_filter_and_delivery);
	tcase_add_test(tc, test_a_trigger_finds_only_the_broker_of_its_own_namespace);
	tcase_add_test(tc, test_a_trigger_naming_a_missing_broker_is_reported_at_spec_broker);
	tcase_add_test(tc, test_spec_broker_is_required_and_broker_ref_is_not_supported);
	tcase_add_test(tc, test_an_unknown_kind_names_the_supported_kinds);
	tcase_add_test(tc, test_a_known_kind_with_another_api_version_is_rejected);
	tcase_add_test(tc, test_an_unknown_spec_field_is_named_with_the_known_ones);
	tcase_add_test(tc, test_metadata_takes_only_name_namespace_labels_and_annotations);
	tcase_add_test(tc, test_names_must_be_present_and_dns_labels);
	tcase_add_test(tc, test_broker_class_defaults_and_unknown_classes_are_refused);
	tcase_add_test(tc, test_broker_config_resolves_a_configmap_in_the_brokers_namespace);
	tcase_add_test(tc, test_broker_config_must_name_an_existing_configmap);
	tcase_add_test(tc, test_configmap_data_must_be_strings);
	tcase_add_test(tc, test_filter_attributes_compile_to_a_legacy_filter);
	tcase_add_test(tc, test_filters_win_over_filter_when_both_are_set);
	tcase_add_test(tc, test_filter_dialects_nest_into_one_tree);
	tcase_add_test(tc, test_a_filter_object_takes_exactly_one_known_dialect);
	tcase_add_test(tc, test_a_filter_the_filter_module_refuses_is_reported_at_its_map);
	tcase_add_test(tc, test_a_cesql_error_points_at_the_expression_and_its_column);
	tcase_add_test(tc, test_a_subscriber_needs_a_uri_or_a_ref);
	tcase_add_test(tc, test_a_subscriber_uri_must_be_absolute_http_or_https);
	tcase_add_test(tc, test_a_ref_to_a_job_sink_says_cebroker_cannot_serve_it);
	tcase_add_test(tc, test_a_ref_to_a_broker_must_exist_and_defaults_its_namespace);
	tcase_add_test(tc, test_the_delivery_order_annotation_sets_ordered);
	tcase_add_test(tc, test_every_delivery_field_is_read);
	tcase_add_test(tc, test_bad_delivery_values_are_each_reported);
	tcase_add_test(tc, test_a_trigger_delivery_replaces_the_brokers_as_a_whole);
	tcase_add_test(tc, test_durations_parse_iso8601);
	tcase_add_test(tc, test_durations_refuse_negatives_and_garbage);
	tcase_add_test(tc, test_wrong_types_are_reported_where_they_are);
	tcase_add_test(tc, test_null_fields_count_as_absent);
	tcase_add_test(tc, test_duplicate_keys_are_refused);
	tcase_add_test(tc, test_duplicate_resources_are_refused_at_the_second_name);
	tcase_add_test(tc, test_a_secret_decodes_data_and_takes_string_data_over_it);
	tcase_add_test(tc, test_a_secrets_errors_name_the_key_never_the_value);
	suite_add_tcase(s, tc);

	/* a tight timeout: these must be refused without doing the work the input asks for */
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
