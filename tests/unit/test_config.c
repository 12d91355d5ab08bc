/* Unit tests for the YAML resource loader (broker/config.c): each rule, each error's exact
 * file:line:col and text, directory loading, delivery inheritance, durations and hostile YAML. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autoconfig.h"
#include "broker/config.h"
#include "broker/error.h"

/* A Broker default/default (lines 1-4), then a Trigger default/orders whose spec starts at line 10:
 *   6 apiVersion  7 kind  8 metadata:  9 name  10 spec:  11 broker  12 subscriber:  13 uri */
#define BROKER                                  \
	"apiVersion: eventing.knative.dev/v1\n" \
	"kind: Broker\n"                        \
	"metadata:\n"                           \
	"  name: default\n"
#define TRIGGER_HEAD                            \
	"---\n"                                 \
	"apiVersion: eventing.knative.dev/v1\n" \
	"kind: Trigger\n"                       \
	"metadata:\n"                           \
	"  name: orders\n"                      \
	"spec:\n"                               \
	"  broker: default\n"
#define SUBSCRIBER        \
	"  subscriber:\n" \
	"    uri: http://127.0.0.1:9099/orders\n"
/* The kinds the loader names when a kind or an apiVersion is unknown. */
#define SUPPORTED                                                                               \
	"Broker (eventing.knative.dev/v1), Trigger (eventing.knative.dev/v1), ConfigMap (v1), " \
	"KafkaSource (sources.knative.dev/v1 or sources.knative.dev/v1beta1), KafkaSink "       \
	"(eventing.knative.dev/v1alpha1)"

static struct ceb_config *load_ok(const char *yaml)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc = ceb_config_load_string("test.yaml", yaml, strlen(yaml), &cfg, &errs);

	ck_assert_msg(rc == 0, "load failed (%d):\n%s", rc, errs.text.p ? errs.text.p : "");
	ck_assert_uint_eq(errs.count, 0);
	ck_assert_ptr_nonnull(cfg);
	ceb_buf_free(&errs.text);
	return cfg;
}

/* Loads yaml that must be refused; returns the error text (caller frees) and the count. */
static char *load_err(const char *yaml, size_t len, size_t *count)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc = ceb_config_load_string("test.yaml", yaml, len, &cfg, &errs);

	ck_assert_int_eq(rc, CEB_ECONFIG);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(errs.text.p);
	if (count)
		*count = errs.count;
	return ceb_buf_steal(&errs.text, NULL);
}

#define ck_errors(yaml, expected)                               \
	do {                                                    \
		size_t n_;                                      \
		char *t_ = load_err((yaml), strlen(yaml), &n_); \
		ck_assert_str_eq(t_, (expected));               \
		free(t_);                                       \
	} while (0)

static const struct ceb_trigger_cfg *trigger_named(const struct ceb_config *cfg, const char *name)
{
	for (const struct ceb_trigger_cfg *t = cfg->triggers; t; t = t->next)
		if (!strcmp(t->name, name))
			return t;
	ck_abort_msg("no trigger %s", name);
	return NULL;
}

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
	          "kind: PingSource\n"
	          "metadata:\n"
	          "  name: tick\n",
	          "test.yaml:2:7: PingSource default/tick: kind: PingSource is a Knative kind that "
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
	                 "    apiVersion: eventing.knative.dev/v1alpha1\n"
	                 "    kind: RabbitmqBrokerConfig\n"
	                 "    name: rmq\n",
	          "test.yaml:7:5: Broker default/default: spec.config: only a ConfigMap "
	          "(apiVersion v1) can "
	          "hold a Broker's config, got RabbitmqBrokerConfig\n");
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
	                            "    CACerts: pem\n",
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
	                                  "    CACerts: |\n"
	                                  "      -----BEGIN CERTIFICATE-----\n"
	                                  "    audience: my-service\n");
	ck_assert_str_eq(cfg->triggers->subscriber.uri, "HTTPS://user@[::1]:8443/a?b#c");
	ck_assert_str_eq(cfg->triggers->subscriber.ca_certs, "-----BEGIN CERTIFICATE-----\n");
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

/* ---- KafkaSource and KafkaSink ---- */

/* Without librdkafka the loader refuses the Kafka kinds, as `run` would: their tests are a Kafka
 * build's. */
#ifdef HAVE_RDKAFKA

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
	const struct ceb_kafka_source_cfg *src = cfg->kafka_sources;

	ck_assert_uint_eq(cfg->nkafka_sources, 2);
	ck_assert_uint_eq(cfg->nkafka_sinks, 0);
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
	src = src->next;
	ck_assert_ptr_nonnull(src);
	ck_assert_ptr_null(src->next);
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
	const struct ceb_kafka_source_cfg *src = cfg->kafka_sources;

	ck_assert_uint_eq(cfg->nkafka_sources, 1);
	ck_assert_uint_eq(cfg->nkafka_sinks, 1);
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
	ck_assert_ptr_eq(ceb_config_find_kafka_sink(cfg, "shop", "dead-letters"), cfg->kafka_sinks);
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
		ck_assert_int_eq(cfg->kafka_sources->key_type, types[i].type);
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
	const struct ceb_kafka_sink_cfg *snk = cfg->kafka_sinks;

	ck_assert_uint_eq(cfg->nkafka_sinks, 3);
	ck_assert_uint_eq(cfg->nkafka_sources, 0);
	ck_assert_ptr_eq(ceb_config_find_kafka_sink(cfg, "default", "my-kafka-sink"), snk);
	ck_assert_str_eq(snk->topic, "mytopic");
	ck_assert_str_eq(snk->bootstrap, "my-cluster-kafka-bootstrap.kafka:9092");
	ck_assert_int_eq(snk->partitions, 0);
	ck_assert_int_eq(snk->replication, 0);
	ck_assert(!snk->structured);
	ck_assert_uint_eq(snk->nannot, 0);
	ck_assert_int_eq(snk->loc.line, 1);

	snk = snk->next;
	ck_assert_ptr_eq(ceb_config_find_kafka_sink(cfg, "default", "my-structured-sink"), snk);
	ck_assert_str_eq(snk->topic, "my-topic");
	ck_assert_str_eq(snk->bootstrap, "a:9092,b:9092");
	ck_assert_int_eq(snk->partitions, 10);
	ck_assert_int_eq(snk->replication, 3);
	ck_assert(snk->structured);
	ck_assert_str_eq(ceb_annotation(snk->annot_keys, snk->annot_values, snk->nannot,
	                                "example.com/owner"),
	                 "shop");
	ck_assert_int_eq(snk->loc.line, 11);

	snk = snk->next;
	ck_assert_str_eq(snk->name, "binary-sink");
	ck_assert(!snk->structured);
	ck_assert_ptr_null(snk->next);
	ck_assert_ptr_null(ceb_config_find_kafka_sink(cfg, "shop", "my-kafka-sink"));
	ck_assert_ptr_null(ceb_config_find_kafka_sink(cfg, "default", "nope"));
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

	ck_assert(!cfg->kafka_sources->earliest);
	ceb_config_free(cfg);
	ck_errors(SOURCE_HEAD SOURCE_TOPICS "  initialOffset: oldest\n",
	          "test.yaml:10:18: KafkaSource default/src: spec.initialOffset: \"oldest\" is not "
	          "an initial offset (earliest or latest)\n");
}
END_TEST

START_TEST(test_ordering_is_ordered_or_unordered)
{
	struct ceb_config *cfg = load_ok(SOURCE_HEAD SOURCE_TOPICS "  ordering: ordered\n");

	ck_assert(cfg->kafka_sources->ordered);
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

START_TEST(test_sasl_or_tls_enabled_is_refused_as_cebroker_reads_no_secrets)
{
	ck_errors(SOURCE_HEAD SOURCE_TOPICS "  net:\n"
	                                    "    sasl:\n"
	                                    "      enable: true\n"
	                                    "    tls:\n"
	                                    "      enable: true\n"
	                                    "      caCert:\n"
	                                    "        secretKeyRef: {name: ca, key: ca.crt}\n",
	          "test.yaml:12:15: KafkaSource default/src: spec.net.sasl.enable: not supported: "
	          "cebroker reads no Secrets; SASL/TLS for KafkaSource is not available yet\n"
	          "test.yaml:14:15: KafkaSource default/src: spec.net.tls.enable: not supported: "
	          "cebroker reads no Secrets; SASL/TLS for KafkaSource is not available yet\n");
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

START_TEST(test_a_kafka_sink_auth_secret_is_refused_as_cebroker_reads_no_secrets)
{
	ck_errors(SINK_HEAD "  topic: events\n"
	                    "  auth:\n"
	                    "    secret:\n"
	                    "      ref:\n"
	                    "        name: my-secret\n",
	          "test.yaml:11:15: KafkaSink default/sink: spec.auth.secret.ref.name: not "
	          "supported: cebroker reads no Secrets\n");
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
	ck_assert_ptr_nonnull(ceb_config_find_kafka_sink(cfg, "shop", "default"));
	ck_assert_ptr_null(ceb_config_find_kafka_sink(cfg, "default", "default"));
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
	ck_assert_ptr_nonnull(ceb_config_find_kafka_sink(cfg, "default", "sink"));
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
#endif /* HAVE_RDKAFKA */

START_TEST(test_an_alias_needs_an_anchor_before_it_outside_itself)
{
	ck_errors(BROKER "spec:\n"
	                 "  delivery: *d\n",
	          "test.yaml:6:13: YAML alias *d names no anchor before it\n");
	/* anchors belong to their document */
	ck_errors(BROKER "  labels: &l {a: b}\n---\n" BROKER "  labels: *l\n",
	          "test.yaml:11:11: YAML alias *l names no anchor before it\n");
	ck_errors("a: &x [1, *x]\n", "test.yaml:1:11: YAML alias *x is inside what it names\n");
}
END_TEST

/* Billion laughs: ten levels of ten aliases each would be 10^10 nodes if anything expanded them.
 * Aliases share their node, nothing is copied, but each counts as all it holds: the alias that
 * takes the document past a million nodes (in a6) is refused, and the test case's timeout is what
 * "refused quickly" means. */
START_TEST(test_an_alias_bomb_is_refused_before_anything_expands)
{
	char yaml[4096];
	size_t len = 0, n;
	char *text;

	len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "a0: &a0 [lol]\n");
	for (int i = 1; i <= 10; i++) {
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "a%d: &a%d [", i, i);
		for (int j = 0; j < 10; j++)
			len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "%s*a%d",
			                        j ? ", " : "", i - 1);
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "]\n");
	}
	ck_assert_uint_lt(len, sizeof(yaml));
	text = load_err(yaml, len, &n);
	ck_assert_str_eq(text, "test.yaml:7:25: document has more than 1000000 YAML nodes once "
	                       "aliases are expanded\n");
	ck_assert_uint_eq(n, 1);
	free(text);
}
END_TEST

START_TEST(test_nesting_deeper_than_64_is_refused)
{
	char yaml[8192];
	size_t len = 0;
	char *text;

	/* block nesting: 70 mappings, the 65th key at line 65 */
	for (int i = 0; i < 70; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "%*sk:\n", i, "");
	text = load_err(yaml, len, NULL);
	ck_assert_str_eq(text, "test.yaml:65:65: YAML nesting deeper than 64 levels\n");
	free(text);
	/* flow nesting on one line, caught by the events */
	len = (size_t)snprintf(yaml, sizeof(yaml), "a: %.100s%.100s\n",
	                       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	                       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
	                       "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
	                       "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	text = load_err(yaml, len, NULL);
	ck_assert_str_eq(text, "test.yaml:1:67: YAML nesting deeper than 64 levels\n");
	free(text);
}
END_TEST

/* Thousands of open brackets on one line: refused from the bytes, before libfyaml buffers them. */
START_TEST(test_a_long_line_of_open_brackets_is_refused_before_parsing)
{
	size_t len = 3 + 100000;
	char *yaml = malloc(len), *text;

	ck_assert_ptr_nonnull(yaml);
	memcpy(yaml, "a: ", 3);
	memset(yaml + 3, '[', len - 3);
	text = load_err(yaml, len, NULL);
	ck_assert_str_eq(text, "test.yaml:1:68: YAML nesting deeper than 64 levels\n");
	free(text);
	free(yaml);
}
END_TEST

/* Found by fuzzing: these crash libfyaml 0.7.12 in fy_parser_destroy(), so the loader refuses a tab
 * before a block indicator from the bytes. A tab elsewhere still parses. */
START_TEST(test_a_tab_before_a_block_indicator_is_refused_before_parsing)
{
	static const char *const bad[] = {"? k:\t-", "? k:\t?x", "? -:\t:u",
	                                  "? k:\t|", "? k:\t>-", "a:\n  ? k: \t-\n"};
	struct ceb_config *cfg;
	char want[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *at = strchr(bad[i], '\t') + 1, *bol = bad[i];
		int line = 1;

		for (const char *p = bad[i]; p < at; p++)
			if (*p == '\n')
				line++, bol = p + 1;
		snprintf(want, sizeof(want),
		         "test.yaml:%d:%d: a tab before a block indicator is not supported; use "
		         "spaces\n",
		         line, (int)(at - bol) + 1);
		ck_errors(bad[i], want);
	}
	cfg = load_ok(BROKER "  annotations:\n"
	                     "    a:\t-5\n"
	                     "    b: \"x:\t-\"\n"
	                     "    c: x # y:\t-\n");
	ck_assert_str_eq(ceb_annotation(cfg->brokers->annot_keys, cfg->brokers->annot_values,
	                                cfg->brokers->nannot, "a"),
	                 "-5");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_yaml_syntax_errors_have_a_position)
{
	ck_errors("apiVersion: v1\n"
	          "kind: ConfigMap\n"
	          "metadata: {name: c\n",
	          "test.yaml:4:1: invalid YAML: missing comma in flow mapping\n");
	ck_errors("a: b: c\n",
	          "test.yaml:1:5: invalid YAML: invalid nested block mapping on the same line\n");
	/* documents before the error are still checked */
	ck_errors("kind: Nope\n"
	          "---\n"
	          "\tx: 1\n",
	          "test.yaml:1:7: Nope default/(no name): kind: unknown kind \"Nope\" "
	          "(supported: " SUPPORTED ")\n"
	          "test.yaml:3:1: invalid YAML: invalid tab as indendation in a mapping\n");
}
END_TEST

START_TEST(test_tags_other_than_str_control_characters_and_invalid_utf8_are_refused)
{
	struct ceb_config *cfg;
	static const char nul[] = "a: \"x\\0y\"\n";

	ck_errors("apiVersion: !custom v1\n",
	          "test.yaml:1:13: YAML tags are not supported (except !!str)\n");
	ck_errors(nul, "test.yaml:1:4: NUL characters are not allowed in strings\n");
	ck_errors("a: b\nc: \xc3\x28\n",
	          "test.yaml:2:4: invalid UTF-8 (YAML files must be UTF-8)\n");
	ck_errors("\xff\xfe"
	          "a:", /* a UTF-16 byte order mark */
	          "test.yaml:1:1: invalid UTF-8 (YAML files must be UTF-8)\n");
	ck_errors("a: \xed\xa0\x80\n", "test.yaml:1:4: invalid UTF-8 (YAML files must be UTF-8)\n");
	ck_errors("a: b\x01\n",
	          "test.yaml:1:5: control characters are not allowed in YAML (write them "
	          "as escapes in a double-quoted string)\n");
	{
		/* a raw NUL: found by fuzzing, it crashes libfyaml 0.7.12 when the parser is destroyed */
		static const char raw_nul[] = "? k:\t\0";
		size_t n;
		char *text = load_err(raw_nul, sizeof(raw_nul) - 1, &n);

		ck_assert_str_eq(text,
		                 "test.yaml:1:6: control characters are not allowed in YAML (write "
		                 "them as escapes in a double-quoted string)\n");
		free(text);
	}
	cfg = load_ok(BROKER "  annotations:\n"
	                     "    example.com/port: !!str 8080\n"
	                     "    example.com/team: \"caf\xc3\xa9 \xf0\x9f\x9a\x80\"\n");
	ck_assert_str_eq(cfg->brokers->annot_values[0], "8080");
	ceb_config_free(cfg);
}
END_TEST

/* Single-quoted scalars are decoded by the loader itself (libfyaml 0.7.12 leaks on runs of ''). */
START_TEST(test_single_quoted_strings_unescape_quotes_and_fold_lines)
{
	struct ceb_config *cfg = load_ok(BROKER "  annotations:\n"
	                                        "    a: 'it''s'\n"
	                                        "    b: 'x''''''''y'\n"
	                                        "    c: ' one\n"
	                                        "\n"
	                                        "      two \n"
	                                        "      three '\n"
	                                        "    d: ''\n");
	const struct ceb_broker_cfg *b = cfg->brokers;

	ck_assert_str_eq(ceb_annotation(b->annot_keys, b->annot_values, b->nannot, "a"), "it's");
	ck_assert_str_eq(ceb_annotation(b->annot_keys, b->annot_values, b->nannot, "b"), "x''''y");
	ck_assert_str_eq(ceb_annotation(b->annot_keys, b->annot_values, b->nannot, "c"),
	                 " one\ntwo three ");
	ck_assert_str_eq(ceb_annotation(b->annot_keys, b->annot_values, b->nannot, "d"), "");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_empty_documents_are_skipped)
{
	struct ceb_config *cfg = load_ok("---\n"
	                                 "---\n"
	                                 "# only a comment\n"
	                                 "---\n"
	                                 "~\n"
	                                 "---\n" BROKER "---\n");

	ck_assert_uint_eq(cfg->nbrokers, 1);
	ck_assert_int_eq(cfg->brokers->loc.line, 7);
	ceb_config_free(cfg);
	cfg = load_ok("");
	ck_assert_uint_eq(cfg->nbrokers, 0);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_several_errors_in_one_file_are_all_reported_in_order)
{
	size_t n;
	char *text;
	const char *yaml = BROKER "  annotations:\n"
	                          "    eventing.knative.dev/broker.class: Nope\n"
	                          "---\n"
	                          "apiVersion: eventing.knative.dev/v1\n"
	                          "kind: Trigger\n"
	                          "metadata:\n"
	                          "  name: orders\n"
	                          "spec:\n"
	                          "  broker: missing\n"
	                          "  filters:\n"
	                          "    - cesql: \"type =\"\n"
	                          "  subscriber:\n"
	                          "    uri: nowhere\n"
	                          "  extra: 1\n";

	text = load_err(yaml, strlen(yaml), &n);
	ck_assert_str_eq(
	        text,
	        "test.yaml:6:40: Broker default/default: "
	        "metadata.annotations[\"eventing.knative.dev/broker.class\"]: unknown broker class "
	        "\"Nope\" (known: MTChannelBasedBroker, Kafka, RabbitMQBroker, "
	        "NatsJetStreamBroker)\n"
	        "test.yaml:13:11: Trigger default/orders: spec.broker: Broker default/missing not "
	        "found\n"
	        "test.yaml:15:14: Trigger default/orders: spec.filters[0].cesql: unexpected end of "
	        "expression at column 7\n"
	        "test.yaml:17:10: Trigger default/orders: spec.subscriber.uri: \"nowhere\" must be "
	        "an "
	        "absolute http:// or https:// URI\n"
	        "test.yaml:18:3: Trigger default/orders: spec.extra: unknown field (spec takes "
	        "broker, "
	        "brokerRef, filter, filters, subscriber, delivery)\n");
	ck_assert_uint_eq(n, 5);
	free(text);
}
END_TEST

START_TEST(test_errors_stop_at_a_thousand)
{
	struct ceb_buf yaml = CEB_BUF_INIT;
	size_t n;
	char *text, *last;

	for (int i = 0; i < 1500; i++)
		ceb_buf_puts(&yaml, "kind: Nope\n---\n");
	text = load_err(yaml.p, yaml.len, &n);
	ck_assert_uint_eq(n, 1000);
	last = strrchr(text, '\n');
	*last = '\0';
	last = strrchr(text, '\n');
	ck_assert_str_eq(last + 1, "test.yaml:1999:7: too many errors, stopping after 1000");
	free(text);
	ceb_buf_free(&yaml);
}
END_TEST

/* ---------------------------------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Remove the named entries (files, or emptied directories) and then dir itself. */
static void remove_tree(const char *dir, const char *const *names, size_t n)
{
	char path[4096];

	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path) != 0)
			rmdir(path);
	}
	rmdir(dir);
}

START_TEST(test_a_directory_loads_its_yaml_files_in_name_order)
{
	char dir[] = "test_config.XXXXXX", sub[4096], a[4096];
	static const char *const names[] = {"20-triggers.yml", "10-broker.yaml", "05-cm.yaml",
	                                    "notes.txt",       ".hidden.yaml",   "sub.yaml/x.yaml",
	                                    "sub.yaml"};
	const char *paths[1] = {dir};
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_file(dir, "20-triggers.yml", TRIGGER_HEAD SUBSCRIBER);
	write_file(dir, "10-broker.yaml", BROKER);
	write_file(dir, "notes.txt", "not: [yaml\n");
	write_file(dir, ".hidden.yaml", "not: [yaml\n");
	snprintf(sub, sizeof(sub), "%s/sub.yaml", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	write_file(sub, "x.yaml", "not: [yaml\n");

	rc = ceb_config_load(paths, 1, &cfg, &errs);
	ck_assert_msg(rc == 0, "%s", errs.text.p ? errs.text.p : "");
	snprintf(a, sizeof(a), "%s/10-broker.yaml", dir);
	ck_assert_str_eq(cfg->brokers->loc.file, a);
	snprintf(a, sizeof(a), "%s/20-triggers.yml", dir);
	ck_assert_str_eq(cfg->triggers->loc.file, a);
	ck_assert_int_eq(cfg->triggers->loc.line, 2);
	ck_assert_ptr_eq(cfg->triggers->broker_cfg, cfg->brokers);
	ceb_config_free(cfg);
	cfg = NULL;

	/* errors come in file order, whichever pass found them */
	write_file(dir, "10-broker.yaml", BROKER "  bogus: 1\n");
	write_file(dir, "20-triggers.yml", TRIGGER_HEAD "  subscriber: {uri: x}\n");
	write_file(dir, "05-cm.yaml",
	           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: 1\n");
	rc = ceb_config_load(paths, 1, &cfg, &errs);
	ck_assert_int_eq(rc, CEB_ECONFIG);
	snprintf(a, sizeof(a),
	         "%s/05-cm.yaml:4:7: ConfigMap default/c: data: expected a mapping, got a string\n"
	         "%s/10-broker.yaml:5:3: Broker default/default: metadata.bogus: unknown field "
	         "(metadata "
	         "takes name, namespace, labels, annotations)\n"
	         "%s/20-triggers.yml:8:21: Trigger default/orders: spec.subscriber.uri: \"x\" must "
	         "be an "
	         "absolute http:// or https:// URI\n",
	         dir, dir, dir);
	ck_assert_str_eq(errs.text.p, a);
	ck_assert_uint_eq(errs.count, 3);
	ceb_buf_free(&errs.text);
	remove_tree(dir, names, sizeof(names) / sizeof(names[0]));
}
END_TEST

START_TEST(test_an_empty_directory_and_a_missing_file_are_errors)
{
	char dir[] = "test_config.XXXXXX", want[4096];
	const char *paths[2] = {dir, "no-such-file.yaml"};
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(ceb_config_load(paths, 2, &cfg, &errs), CEB_ECONFIG);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof(want),
	         "%s: no *.yaml or *.yml files in this directory\n"
	         "no-such-file.yaml: cannot read: No such file or directory\n",
	         dir);
	ck_assert_str_eq(errs.text.p, want);
	ck_assert_uint_eq(errs.count, 2);
	ceb_buf_free(&errs.text);
	rmdir(dir);
}
END_TEST

START_TEST(test_files_over_16_mib_are_refused)
{
	char dir[] = "test_config.XXXXXX", path[4096], want[4096];
	const char *paths[1] = {path};
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/big.yaml", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (16 << 20) + 1), 0); /* sparse: costs no disk */
	close(fd);
	ck_assert_int_eq(ceb_config_load(paths, 1, &cfg, &errs), CEB_ECONFIG);
	snprintf(want, sizeof(want), "%.200s: larger than 16 MiB\n", path);
	ck_assert_str_eq(errs.text.p, want);
	ceb_buf_free(&errs.text);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_errors_append_to_what_the_caller_already_has)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	const char *bad = "kind: Nope\n";

	ck_assert_int_eq(ceb_config_load_string("a.yaml", bad, strlen(bad), &cfg, &errs),
	                 CEB_ECONFIG);
	ck_assert_int_eq(ceb_config_load_string("b.yaml", bad, strlen(bad), &cfg, &errs),
	                 CEB_ECONFIG);
	ck_assert_uint_eq(errs.count, 2);
	ck_assert_ptr_nonnull(strstr(errs.text.p, "a.yaml:1:7: "));
	ck_assert_ptr_nonnull(strstr(errs.text.p, "\nb.yaml:1:7: "));
	ceb_buf_free(&errs.text);
	/* and a caller that wants no messages may pass NULL */
	ck_assert_int_eq(ceb_config_load_string("c.yaml", bad, strlen(bad), &cfg, NULL),
	                 CEB_ECONFIG);
	ck_assert_ptr_null(cfg);
	ceb_config_free(NULL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("resources");
	TCase *hostile = tcase_create("hostile");
#ifdef HAVE_RDKAFKA
	TCase *kafka = tcase_create("kafka");
#endif

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
	tcase_add_test(tc, test_single_quoted_strings_unescape_quotes_and_fold_lines);
	tcase_add_test(tc, test_empty_documents_are_skipped);
	tcase_add_test(tc, test_several_errors_in_one_file_are_all_reported_in_order);
	tcase_add_test(tc, test_errors_append_to_what_the_caller_already_has);
	tcase_add_test(tc, test_a_directory_loads_its_yaml_files_in_name_order);
	tcase_add_test(tc, test_an_empty_directory_and_a_missing_file_are_errors);
	tcase_add_test(tc, test_files_over_16_mib_are_refused);
	suite_add_tcase(s, tc);
	/* without librdkafka the loader refuses the Kafka kinds, as `run` would */
#ifdef HAVE_RDKAFKA
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
	tcase_add_test(kafka, test_sasl_or_tls_enabled_is_refused_as_cebroker_reads_no_secrets);
	tcase_add_test(kafka, test_a_kafka_source_sink_ref_to_a_missing_kafka_sink_is_reported);
	tcase_add_test(kafka,
	               test_a_kafka_source_sink_ref_to_a_job_sink_says_cebroker_cannot_serve_it);
	tcase_add_test(kafka, test_ce_overrides_need_valid_extension_names);
	tcase_add_test(kafka, test_bad_kafka_numbers_are_reported);
	tcase_add_test(kafka, test_a_kafka_sink_needs_a_valid_topic);
	tcase_add_test(kafka, test_a_kafka_sink_content_mode_is_binary_or_structured);
	tcase_add_test(kafka,
	               test_a_kafka_sink_auth_secret_is_refused_as_cebroker_reads_no_secrets);
	tcase_add_test(kafka, test_a_kafka_sink_cannot_take_the_address_of_a_broker);
	tcase_add_test(kafka, test_duplicate_kafka_sources_and_sinks_are_refused);
	tcase_add_test(kafka, test_a_trigger_subscriber_may_ref_a_kafka_sink_of_this_daemon);
	suite_add_tcase(s, kafka);
#endif

	/* a tight timeout: these must be refused without doing the work the input asks for */
	tcase_set_timeout(hostile, 10);
	tcase_add_test(hostile, test_an_alias_needs_an_anchor_before_it_outside_itself);
	tcase_add_test(hostile, test_an_alias_bomb_is_refused_before_anything_expands);
	tcase_add_test(hostile, test_nesting_deeper_than_64_is_refused);
	tcase_add_test(hostile, test_a_long_line_of_open_brackets_is_refused_before_parsing);
	tcase_add_test(hostile, test_a_tab_before_a_block_indicator_is_refused_before_parsing);
	tcase_add_test(hostile, test_yaml_syntax_errors_have_a_position);
	tcase_add_test(hostile,
	               test_tags_other_than_str_control_characters_and_invalid_utf8_are_refused);
	tcase_add_test(hostile, test_errors_stop_at_a_thousand);
	suite_add_tcase(s, hostile);
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
