/* Unit tests for what the resource loader does with Knative manifests as people write them: refs to
 * Services (the address table, cluster DNS names, a uri relative to the ref), documents of other API
 * groups, what kubectl prints, anchors and aliases, Knative's durations, config-br-defaults, channel
 * templates, and the Kafka Broker checks that `validate` shares with `run`. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig.h"
#include "broker/buf.h"
#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/error.h"
#include "channels/kafka/kinds.h"
#include "tests/unit/config_fixture.h"

/* A Trigger of the Broker above, lines 5 to 11; its subscriber (line 12 on) is the test's. */
#define TRIGGER_T_HEAD                          \
	"---\n"                                 \
	"apiVersion: eventing.knative.dev/v1\n" \
	"kind: Trigger\n"                       \
	"metadata:\n"                           \
	"  name: t\n"                           \
	"spec:\n"                               \
	"  broker: default\n"

static struct ceb_config *load_opts(const char *yaml, const struct ceb_config_opts *opts)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc = ceb_config_load_string_opts("test.yaml", yaml, strlen(yaml), opts, &cfg, &errs);

	ck_assert_msg(rc == 0, "load failed (%d):\n%s", rc, errs.text.p ? errs.text.p : "");
	ck_assert_uint_eq(errs.count, 0);
	ceb_buf_free(&errs.text);
	return cfg;
}

/* The errors of a load that must fail; the caller frees them. */
static char *load_err_opts(const char *yaml, const struct ceb_config_opts *opts)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc = ceb_config_load_string_opts("test.yaml", yaml, strlen(yaml), opts, &cfg, &errs);

	ck_assert_msg(rc == CEB_ECONFIG, "rc %d", rc);
	ck_assert_ptr_null(cfg);
	ck_assert_ptr_nonnull(errs.text.p);
	return ceb_buf_steal(&errs.text, NULL);
}

#define ck_errors_opts(yaml, opts, expected)              \
	do {                                              \
		char *t_ = load_err_opts((yaml), (opts)); \
		ck_assert_str_eq(t_, (expected));         \
		free(t_);                                 \
	} while (0)

/* ------------------------------------------------------------------------------------------------
 * Refs to Services.
 */

START_TEST(test_a_service_ref_resolves_to_its_cluster_dns_name_as_knative_resolves_it)
{
	struct ceb_config *cfg = load_ok(BROKER TRIGGER_T_HEAD
	                                 "  subscriber:\n"
	                                 "    ref: {apiVersion: v1, kind: Service, name: svc}\n"
	                                 "---\n"
	                                 "apiVersion: eventing.knative.dev/v1\n"
	                                 "kind: Trigger\n"
	                                 "metadata: {name: ksvc}\n"
	                                 "spec:\n"
	                                 "  broker: default\n"
	                                 "  subscriber:\n"
	                                 "    ref:\n"
	                                 "      apiVersion: serving.knative.dev/v1\n"
	                                 "      kind: Service\n"
	                                 "      name: event-display\n"
	                                 "      namespace: shop\n"
	                                 "    uri: /events?x=1\n"
	                                 "---\n"
	                                 "apiVersion: eventing.knative.dev/v1\n"
	                                 "kind: Trigger\n"
	                                 "metadata: {name: tls}\n"
	                                 "spec:\n"
	                                 "  broker: default\n"
	                                 "  subscriber:\n"
	                                 "    ref: {apiVersion: v1, kind: Service, name: svc}\n"
	                                 "    CACerts: " TEST_CA_PEM_YAML "\n");
	const struct ceb_trigger_cfg *t = trigger_named(cfg, "t");
	char buf[4096];

	ck_assert_str_eq(t->subscriber.uri, "http://svc.default.svc.cluster.local");
	ck_assert_str_eq(t->subscriber.ref_kind, "Service");
	ck_assert_str_eq(trigger_named(cfg, "ksvc")->subscriber.uri,
	                 "http://event-display.shop.svc.cluster.local/events?x=1");
	/* Knative: a v1 Service with CACerts is https */
	ck_assert_str_eq(trigger_named(cfg, "tls")->subscriber.uri,
	                 "https://svc.default.svc.cluster.local");
	ck_assert_ptr_nonnull(
	        strstr(notes(cfg, buf, sizeof(buf)),
	               "test.yaml:13:10: Trigger default/t: spec.subscriber.ref: Service "
	               "default/svc is http://svc.default.svc.cluster.local (its cluster "
	               "DNS name;"));
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_the_cluster_domain_comes_from_the_options)
{
	struct ceb_config_opts opts = {.cluster_domain = "corp.example"};
	struct ceb_config *cfg = load_opts(BROKER TRIGGER_T_HEAD
	                                   "  subscriber:\n"
	                                   "    ref: {apiVersion: v1, kind: Service, name: svc}\n",
	                                   &opts);

	ck_assert_str_eq(cfg->triggers->subscriber.uri, "http://svc.default.svc.corp.example");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_the_address_table_resolves_refs_from_options_and_from_its_configmap)
{
	static const char *const addrs[] = {"Service default/svc=http://127.0.0.1:9099/base/",
	                                    " JobSink  shop/job  =  http://127.0.0.1:9100 "};
	struct ceb_config_opts opts = {.addresses = addrs, .naddresses = 2};
	struct ceb_config *cfg =
	        load_opts(BROKER TRIGGER_T_HEAD
	                  "  subscriber:\n"
	                  "    ref: {apiVersion: v1, kind: Service, name: svc}\n"
	                  "    uri: x/y\n"
	                  "  delivery:\n"
	                  "    deadLetterSink:\n"
	                  "      ref:\n"
	                  "        apiVersion: sinks.knative.dev/v1alpha1\n"
	                  "        kind: JobSink\n"
	                  "        name: job\n"
	                  "        namespace: shop\n"
	                  "---\n"
	                  "apiVersion: eventing.knative.dev/v1\n"
	                  "kind: Trigger\n"
	                  "metadata: {name: from-map}\n"
	                  "spec:\n"
	                  "  broker: default\n"
	                  "  subscriber:\n"
	                  "    ref: {apiVersion: serving.knative.dev/v1, kind: Service, "
	                  "name: display}\n"
	                  "---\n"
	                  "apiVersion: v1\n"
	                  "kind: ConfigMap\n"
	                  "metadata: {name: cebroker-addresses, namespace: tools}\n"
	                  "data:\n"
	                  "  addresses: |\n"
	                  "    # the display runs here\n"
	                  "\n"
	                  "    Service default/display = http://[::1]:8081\n"
	                  "    Service default/svc = http://overridden:1/\n",
	                  &opts);
	const struct ceb_trigger_cfg *t = trigger_named(cfg, "t");
	char buf[4096];

	/* relative to the table's address; --address wins over the ConfigMap */
	ck_assert_str_eq(t->subscriber.uri, "http://127.0.0.1:9099/base/x/y");
	ck_assert_str_eq(t->delivery.dls.uri, "http://127.0.0.1:9100");
	ck_assert_str_eq(trigger_named(cfg, "from-map")->subscriber.uri, "http://[::1]:8081");
	notes(cfg, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "Service default/display is http://[::1]:8081 (from the "
	                                  "address table at test.yaml:38)"));
	ck_assert_ptr_nonnull(strstr(buf, "JobSink shop/job is http://127.0.0.1:9100 (from "
	                                  "--address)"));
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_bad_address_table_entries_are_reported_on_their_line)
{
	static const char *const addrs[] = {"Service default/x",
	                                    "Broker default/default=http://h/"};
	struct ceb_config_opts opts = {.addresses = addrs, .naddresses = 2};

	ck_errors_opts(
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: cebroker-addresses}\n"
	        "data:\n"
	        "  addresses: |\n"
	        "    Service default/a = http://127.0.0.1:1/\n"
	        "    Service Default/b = http://127.0.0.1:1/\n"
	        "      Service default/c = ftp://x/\n"
	        "    Service default/a = http://127.0.0.1:2/\n"
	        "  extra: x\n",
	        &opts,
	        "test.yaml:7:5: ConfigMap default/cebroker-addresses: data.addresses: \"Service "
	        "Default/b = http://127.0.0.1:1/\": namespace and name must be DNS labels "
	        "(lower-case letters, digits and '-')\n"
	        "test.yaml:8:7: ConfigMap default/cebroker-addresses: data.addresses: \"Service "
	        "default/c = ftp://x/\": the address \"ftp://x/\" must be an absolute http:// or "
	        "https:// URI\n"
	        "test.yaml:9:5: address table: Service default/a is given twice (first at "
	        "test.yaml:6)\n"
	        "test.yaml:10:10: ConfigMap default/cebroker-addresses: data.extra: unknown key "
	        "(cebroker-addresses takes addresses: one \"KIND NAMESPACE/NAME=URL\" a line)\n"
	        "--address: \"Service default/x\" is not an address table entry: write KIND "
	        "NAMESPACE/NAME=URL, e.g. Service default/event-display=http://127.0.0.1:9099\n"
	        "--address: \"Broker default/default=http://h/\": a Broker of this daemon is "
	        "served at its own ingress, not through the address table\n");
}
END_TEST

START_TEST(test_a_uri_beside_a_ref_must_be_relative_and_not_to_our_own_broker)
{
	ck_errors(BROKER TRIGGER_T_HEAD
	          "  subscriber:\n"
	          "    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: default}\n"
	          "    uri: /sub\n",
	          "test.yaml:13:10: Trigger default/t: spec.subscriber.ref: a ref to a Broker of "
	          "this "
	          "daemon takes no uri beside it (its address is its ingress path "
	          "/default/default)\n");
	ck_errors(BROKER TRIGGER_T_HEAD "  subscriber:\n"
	                                "    ref: {apiVersion: v1, kind: Service, name: s}\n"
	                                "    uri: //elsewhere/x\n",
	          "test.yaml:14:10: Trigger default/t: spec.subscriber.uri: \"//elsewhere/x\" is "
	          "absolute, and a uri beside a ref must be relative to the ref's address (e.g. "
	          "/path); give one or the other\n");
}
END_TEST

START_TEST(test_uri_references_resolve_as_rfc_3986_says)
{
	static const struct {
		const char *base, *ref, *want;
	} cases[] = {
	        /* Knative's own: a Service's address has no path */
	        {"http://svc.ns.svc.cluster.local", "/my-custom-path",
	         "http://svc.ns.svc.cluster.local/my-custom-path"},
	        {"http://svc.ns.svc.cluster.local", "example-uri",
	         "http://svc.ns.svc.cluster.local/example-uri"},
	        /* RFC 3986, 5.4.1 and 5.4.2, against its base */
	        {"http://a/b/c/d;p?q", "g", "http://a/b/c/g"},
	        {"http://a/b/c/d;p?q", "./g", "http://a/b/c/g"},
	        {"http://a/b/c/d;p?q", "g/", "http://a/b/c/g/"},
	        {"http://a/b/c/d;p?q", "/g", "http://a/g"},
	        {"http://a/b/c/d;p?q", "//g", "http://g"},
	        {"http://a/b/c/d;p?q", "?y", "http://a/b/c/d;p?y"},
	        {"http://a/b/c/d;p?q", "g?y", "http://a/b/c/g?y"},
	        {"http://a/b/c/d;p?q", "#s", "http://a/b/c/d;p?q#s"},
	        {"http://a/b/c/d;p?q", "", "http://a/b/c/d;p?q"},
	        {"http://a/b/c/d;p?q", ".", "http://a/b/c/"},
	        {"http://a/b/c/d;p?q", "..", "http://a/b/"},
	        {"http://a/b/c/d;p?q", "../g", "http://a/b/g"},
	        {"http://a/b/c/d;p?q", "../..", "http://a/"},
	        {"http://a/b/c/d;p?q", "../../../g", "http://a/g"},
	        {"http://a/b/c/d;p?q", "/./g", "http://a/g"},
	        {"http://a/b/c/d;p?q", "/../g", "http://a/g"},
	        {"http://a/b/c/d;p?q", "g.", "http://a/b/c/g."},
	        {"http://a/b/c/d;p?q", "./g/.", "http://a/b/c/g/"},
	        {"http://a/b/c/d;p?q", "g;x=1/../y", "http://a/b/c/y"},
	        {"http://a/b/c/d;p?q", "http://x/y", "http://x/y"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = ceb_config_uri_resolve(cases[i].base, cases[i].ref);

		ck_assert_msg(got && !strcmp(got, cases[i].want), "%s + %s: %s, not %s",
		              cases[i].base, cases[i].ref, got ? got : "NULL", cases[i].want);
		free(got);
	}
}
END_TEST

/* ------------------------------------------------------------------------------------------------
 * Other documents, kubectl's output, anchors.
 */

START_TEST(test_documents_of_other_groups_are_skipped_with_a_note)
{
	struct ceb_config *cfg = load_ok("apiVersion: v1\n"
	                                 "kind: Namespace\n"
	                                 "metadata: {name: shop}\n"
	                                 "---\n"
	                                 "apiVersion: apps/v1\n"
	                                 "kind: Deployment\n"
	                                 "metadata: {name: web, namespace: shop}\n"
	                                 "spec: {replicas: 1}\n"
	                                 "---\n"
	                                 "apiVersion: serving.knative.dev/v1\n"
	                                 "kind: Service\n"
	                                 "metadata: {name: web}\n"
	                                 "---\n"
	                                 "apiVersion: v1\n"
	                                 "kind: Secret\n"
	                                 "metadata: {name: creds}\n"
	                                 "stringData: {password: hunter2}\n"
	                                 "---\n" BROKER);
	char buf[4096];

	ck_assert_uint_eq(cfg->nbrokers, 1);
	ck_assert_str_eq(
	        notes(cfg, buf, sizeof(buf)),
	        "test.yaml:1:1: skipped Namespace shop (v1): not a kind cebroker serves\n"
	        "test.yaml:5:1: skipped Deployment shop/web (apps/v1): not a kind cebroker "
	        "serves\n"
	        "test.yaml:10:1: skipped Service web (serving.knative.dev/v1): not a kind "
	        "cebroker serves\n");
	/* a Secret is a kind cebroker reads (credentials other resources name) */
	ck_assert_str_eq(
	        ceb_secret_get(ceb_config_find_secret(cfg, "default", "creds"), "password", NULL),
	        "hunter2");
	ck_assert(!cfg->notes[0].warning);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_notes_stop_at_a_thousand)
{
	struct ceb_buf y = CEB_BUF_INIT;
	struct ceb_config *cfg;

	for (int i = 0; i < 1002; i++)
		ceb_buf_printf(
		        &y, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d%d}\n",
		        i);
	ck_assert(!y.failed);
	cfg = load_ok(y.p);
	ck_assert_uint_eq(cfg->nnotes, 1001);
	ck_assert_str_eq(cfg->notes[1000].text, "cebroker: 2 more notes not shown");
	ceb_config_free(cfg);
	ceb_buf_free(&y);
}
END_TEST

START_TEST(test_unknown_kinds_of_eventing_groups_are_still_errors)
{
	ck_errors(
	        "apiVersion: sources.knative.dev/v1\n"
	        "kind: ApiServerSource\n"
	        "metadata: {name: c}\n"
	        "---\n"
	        "apiVersion: sinks.knative.dev/v1alpha1\n"
	        "kind: JobSink\n"
	        "metadata: {name: s}\n"
	        "---\n"
	        "apiVersion: sources.cebroker.dev/v1alpha1\n"
	        "kind: NatsSorce\n"
	        "metadata: {name: n}\n"
	        "---\n"
	        "apiVersion: v1\n"
	        "kind: Trigger\n"
	        "metadata: {name: t}\n",
	        "test.yaml:2:7: ApiServerSource default/c: kind: ApiServerSource is a Knative kind "
	        "that cebroker does not run yet (supported: " SUPPORTED ")\n"
	        "test.yaml:6:7: JobSink default/s: kind: JobSink is a Knative kind that cebroker "
	        "does not run yet (supported: " SUPPORTED ")\n"
	        "test.yaml:10:7: NatsSorce default/n: kind: unknown kind \"NatsSorce\" "
	        "(supported: " SUPPORTED ")\n"
	        "test.yaml:13:13: Trigger default/t: apiVersion: unknown apiVersion \"v1\" for "
	        "Trigger (supported: " SUPPORTED ")\n");
}
END_TEST

START_TEST(test_what_kubectl_prints_is_read_and_its_system_fields_ignored)
{
	struct ceb_config *cfg = load_ok(
	        "apiVersion: v1\n"
	        "kind: List\n"
	        "metadata: {resourceVersion: \"\"}\n"
	        "items:\n"
	        "- apiVersion: eventing.knative.dev/v1\n"
	        "  kind: Broker\n"
	        "  metadata:\n"
	        "    name: default\n"
	        "    namespace: default\n"
	        "    uid: 9f4c2a5e-6b1d-4c7e-a0f3-2d8e5b7c1a90\n"
	        "    resourceVersion: \"48213\"\n"
	        "    generation: 1\n"
	        "    creationTimestamp: \"2026-03-02T09:14:07Z\"\n"
	        "    finalizers: [brokers.eventing.knative.dev]\n"
	        "    selfLink: /apis/eventing.knative.dev/v1/namespaces/default/brokers/default\n"
	        "    managedFields:\n"
	        "    - apiVersion: eventing.knative.dev/v1\n"
	        "      fieldsType: FieldsV1\n"
	        "      fieldsV1: {f:spec: {}}\n"
	        "      manager: kubectl-client-side-apply\n"
	        "  spec: {delivery: {retry: 10, backoffPolicy: exponential, backoffDelay: "
	        "PT0.2S}}\n"
	        "  status:\n"
	        "    address: {url: http://broker-ingress.knative-eventing.svc.cluster.local/d/d}\n"
	        "    conditions: [{type: Ready, status: \"True\"}]\n"
	        "- apiVersion: eventing.knative.dev/v1\n"
	        "  kind: Trigger\n"
	        "  metadata:\n"
	        "    name: t\n"
	        "    labels: {eventing.knative.dev/broker: default}\n"
	        "    ownerReferences: [{apiVersion: eventing.knative.dev/v1, kind: Broker, name: "
	        "default, uid: x}]\n"
	        "  spec:\n"
	        "    broker: default\n"
	        "    filter: {}\n"
	        "    subscriber: {uri: \"http://127.0.0.1:9099/\"}\n"
	        "  status: {subscriberUri: \"http://127.0.0.1:9099/\"}\n"
	        "---\n"
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: c}\n"
	        "immutable: true\n"
	        "binaryData: {blob: AAEC}\n"
	        "data: {k: v}\n");

	ck_assert_uint_eq(cfg->nbrokers, 1);
	ck_assert_uint_eq(cfg->ntriggers, 1);
	ck_assert_int_eq(cfg->brokers->delivery.retry, 10);
	ck_assert_int_eq(cfg->brokers->loc.line, 5);
	ck_assert_int_eq(cfg->triggers->delivery.retry, 10); /* inherited */
	ck_assert_str_eq(ceb_configmap_get(cfg->configmaps, "k"), "v");
	ceb_config_free(cfg);
	ck_errors("apiVersion: v1\n"
	          "kind: List\n"
	          "items:\n"
	          "- 3\n"
	          "- apiVersion: eventing.knative.dev/v1\n"
	          "  kind: Brokr\n"
	          "  metadata: {name: b}\n",
	          "test.yaml:4:3: List: items[0]: expected a resource (a mapping), got a string\n"
	          "test.yaml:6:9: Brokr default/b: kind: unknown kind \"Brokr\" "
	          "(supported: " SUPPORTED ")\n");
}
END_TEST

START_TEST(test_anchors_and_aliases_share_what_they_name)
{
	struct ceb_config *cfg = load_ok(BROKER "---\n"
	                                        "apiVersion: eventing.knative.dev/v1\n"
	                                        "kind: Trigger\n"
	                                        "metadata: {name: t}\n"
	                                        "spec:\n"
	                                        "  broker: default\n"
	                                        "  subscriber: &s {uri: \"http://127.0.0.1:1/\"}\n"
	                                        "  delivery: {deadLetterSink: *s, retry: &n 2}\n");

	ck_assert_str_eq(cfg->triggers->subscriber.uri, "http://127.0.0.1:1/");
	ck_assert_str_eq(cfg->triggers->delivery.dls.uri, "http://127.0.0.1:1/");
	ck_assert_int_eq(cfg->triggers->delivery.retry, 2);
	ceb_config_free(cfg);
	/* within one document: the Deployment of Knative's helloworld samples */
	cfg = load_ok(
	        "apiVersion: apps/v1\n"
	        "kind: Deployment\n"
	        "metadata: {name: helloworld-go}\n"
	        "spec:\n"
	        "  selector:\n"
	        "    matchLabels: &labels\n"
	        "      app: helloworld-go\n"
	        "  template:\n"
	        "    metadata:\n"
	        "      labels: *labels\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata:\n"
	        "  name: default\n"
	        "  annotations: &a {eventing.knative.dev/broker.class: MTChannelBasedBroker}\n"
	        "  labels: *a\n");
	ck_assert_uint_eq(cfg->brokers->nannot, 1);
	ceb_config_free(cfg);
	/* what an alias holds is checked where it is used, and reported where it was written */
	ck_errors(
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata: &m {name: b, colour: red}\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata: {name: c, labels: &l {a: b}}\n"
	        "spec: *l\n",
	        "test.yaml:3:24: Broker default/b: metadata.colour: unknown field (metadata takes "
	        "name, namespace, labels, annotations)\n"
	        "test.yaml:7:33: Broker default/c: spec.a: unknown field (spec takes config, "
	        "delivery)\n");
}
END_TEST

START_TEST(test_aliases_cannot_nest_deeper_than_any_yaml)
{
	char yaml[8192];
	size_t len = 0;
	char *text;

	/* 40 levels anchored, then an alias of it 40 levels down: 80 once expanded */
	len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "a: &deep ");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "[");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "]");
	len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "\nb: ");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "[");
	len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "*deep");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "]");
	len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "\n");
	text = load_err_opts(yaml, NULL);
	ck_assert_str_eq(text,
	                 "test.yaml:2:44: YAML nesting deeper than 64 levels once aliases are "
	                 "expanded\n");
	free(text);
}
END_TEST

/* ------------------------------------------------------------------------------------------------
 * Durations and extension names.
 */

START_TEST(test_durations_are_read_as_knative_reads_them)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
	        {"P0", 0},
	        {"+PT1S", 1000},
	        {"P1DT", 86400000},
	        {"P1M", 2629746000ull},  /* a twelfth of 365.2425 days */
	        {"P1Y", 31556952000ull}, /* 365.2425 days */
	        {"P1Y2M3W4DT5H6M7.5S", 31556952000ull + 2 * 2629746000ull + 3 * 604800000ull +
	                                       4 * 86400000ull + 5 * 3600000ull + 6 * 60000ull +
	                                       7500},
	        {"P0.5Y", 15778476000ull},
	        {"PT0.25S", 250},
	        {"P0Y", 0},
	        {"PT0M", 0},
	};
	uint64_t ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 12345;
		ck_assert_msg(ceb_duration_parse(good[i].s, &ms) == 0, "%s refused", good[i].s);
		ck_assert_msg(ms == good[i].ms, "%s: %llu ms", good[i].s, (unsigned long long)ms);
	}
	ck_assert_int_eq(ceb_duration_parse("P1H", &ms), CEB_EINVAL);
	ck_assert_int_eq(ceb_duration_parse("PT1Y", &ms), CEB_EINVAL);
	ck_assert_int_eq(ceb_duration_parse("-P1M", &ms), CEB_EINVAL);
}
END_TEST

#ifdef HAVE_RDKAFKA
START_TEST(test_a_long_extension_name_is_taken_with_a_warning)
{
	struct ceb_config *cfg = load_ok("apiVersion: sources.knative.dev/v1\n"
	                                 "kind: KafkaSource\n"
	                                 "metadata: {name: src}\n"
	                                 "spec:\n"
	                                 "  bootstrapServers: [kafka:9092]\n"
	                                 "  topics: [orders]\n"
	                                 "  sink: {uri: \"http://127.0.0.1:9099/\"}\n"
	                                 "  ceOverrides:\n"
	                                 "    extensions:\n"
	                                 "      averyveryverylongextensionname: x\n");
	char buf[1024];

	ck_assert_str_eq(cfg->sources->ce_ext_keys[0], "averyveryverylongextensionname");
	ck_assert_uint_eq(cfg->nnotes, 1);
	ck_assert(cfg->notes[0].warning);
	ck_assert_str_eq(
	        notes(cfg, buf, sizeof(buf)),
	        "test.yaml:10:7: warning: KafkaSource default/src: "
	        "spec.ceOverrides.extensions.averyveryverylongextensionname: longer than 20 "
	        "characters, which CloudEvents advises against (some receivers may refuse "
	        "it)\n");
	ceb_config_free(cfg);
}
END_TEST
#endif

#ifdef HAVE_RDKAFKA
START_TEST(test_a_kafka_source_delivery_has_no_format)
{
	ck_errors(
	        "apiVersion: sources.knative.dev/v1\n"
	        "kind: KafkaSource\n"
	        "metadata: {name: src}\n"
	        "spec:\n"
	        "  bootstrapServers: [kafka:9092]\n"
	        "  topics: [orders]\n"
	        "  sink: {uri: \"http://127.0.0.1:9099/\"}\n"
	        "  net: {sasl: {enable: false, roleARN: arn, tokenProvider: "
	        "MSKAccessTokenProvider}}\n"
	        "  delivery:\n"
	        "    retry: 1\n"
	        "    format: json\n",
	        "test.yaml:11:5: KafkaSource default/src: spec.delivery.format: unknown field "
	        "(spec.delivery takes deadLetterSink, retry, backoffPolicy, backoffDelay, timeout, "
	        "retryAfterMax)\n");
}
END_TEST
#endif

/* ------------------------------------------------------------------------------------------------
 * config-br-defaults.
 */

/* Knative's stock config-br-defaults (config/core/configmaps/default-broker.yaml), lines 1 to 15 */
#define STOCK_DEFAULTS                              \
	"apiVersion: v1\n"                          \
	"kind: ConfigMap\n"                         \
	"metadata:\n"                               \
	"  name: config-br-defaults\n"              \
	"  namespace: knative-eventing\n"           \
	"data:\n"                                   \
	"  default-br-config: |\n"                  \
	"    clusterDefault:\n"                     \
	"      brokerClass: MTChannelBasedBroker\n" \
	"      apiVersion: v1\n"                    \
	"      kind: ConfigMap\n"                   \
	"      name: config-br-default-channel\n"   \
	"      namespace: knative-eventing\n"       \
	"      delivery:\n"                         \
	"        retry: 10\n"                       \
	"        backoffPolicy: exponential\n"      \
	"        backoffDelay: PT0.2S\n"

START_TEST(test_a_broker_without_class_config_or_delivery_takes_knatives_defaults)
{
	struct ceb_config *cfg = load_ok(STOCK_DEFAULTS "---\n" BROKER "spec: {}\n"
	                                                "---\n"
	                                                "apiVersion: eventing.knative.dev/v1\n"
	                                                "kind: Broker\n"
	                                                "metadata: {name: own}\n"
	                                                "spec:\n"
	                                                "  delivery: {retry: 1}\n");
	const struct ceb_broker_cfg *b = ceb_config_find_broker(cfg, "default", "default");
	const struct ceb_broker_cfg *own = ceb_config_find_broker(cfg, "default", "own");
	char buf[4096];

	ck_assert_str_eq(b->broker_class, "MTChannelBasedBroker");
	ck_assert_str_eq(b->channel, "memory");
	ck_assert_ptr_null(b->config); /* Knative's own default channel, not in the files */
	ck_assert(b->delivery.set);
	ck_assert_int_eq(b->delivery.retry, 10);
	ck_assert_int_eq(b->delivery.backoff_policy, CEB_BACKOFF_EXPONENTIAL);
	ck_assert_uint_eq(b->delivery.backoff_delay_ms, 200);
	/* its own delivery stays whole */
	ck_assert_int_eq(own->delivery.retry, 1);
	ck_assert_uint_eq(own->delivery.backoff_delay_ms, 0);
	ck_assert_str_eq(notes(cfg, buf, sizeof(buf)),
	                 "test.yaml:22:9: Broker default/default: spec.config "
	                 "knative-eventing/config-br-default-channel, spec.delivery, class "
	                 "MTChannelBasedBroker from config-br-defaults (test.yaml:1:1)\n"
	                 "test.yaml:27:18: Broker default/own: spec.config "
	                 "knative-eventing/config-br-default-channel, class MTChannelBasedBroker "
	                 "from config-br-defaults (test.yaml:1:1)\n");
	ceb_config_free(cfg);
}
END_TEST

#ifdef HAVE_RDKAFKA
START_TEST(test_namespace_defaults_and_broker_classes_are_looked_up_as_knative_does)
{
	struct ceb_config *cfg = load_ok(
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: config-br-defaults, namespace: knative-eventing}\n"
	        "data:\n"
	        "  default-br-config: |\n"
	        "    clusterDefault:\n"
	        "      brokerClass: MTChannelBasedBroker\n"
	        "      apiVersion: v1\n"
	        "      kind: ConfigMap\n"
	        "      name: config-br-default-channel\n"
	        "      namespace: knative-eventing\n"
	        "      delivery: {retry: 10, timeout: PT9S}\n"
	        "    namespaceDefaults:\n"
	        "      kafka-ns:\n"
	        "        brokerClass: Kafka\n"
	        "        brokerClasses:\n"
	        "          Kafka:\n"
	        "            apiVersion: v1\n"
	        "            kind: ConfigMap\n"
	        "            name: kafka-broker-config\n"
	        "            namespace: knative-eventing\n"
	        "            delivery:\n"
	        "              retry: 3\n"
	        "              deadLetterSink:\n"
	        "                ref: {apiVersion: v1, kind: Service, name: dls}\n"
	        "---\n"
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: kafka-broker-config, namespace: knative-eventing}\n"
	        "data: {bootstrap.servers: \"k:9092\"}\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata: {name: k, namespace: kafka-ns}\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata:\n"
	        "  name: m\n"
	        "  namespace: kafka-ns\n"
	        "  annotations: {eventing.knative.dev/broker.class: MTChannelBasedBroker}\n");
	const struct ceb_broker_cfg *k = ceb_config_find_broker(cfg, "kafka-ns", "k");
	const struct ceb_broker_cfg *m = ceb_config_find_broker(cfg, "kafka-ns", "m");

#ifdef HAVE_RDKAFKA
	ck_assert_str_eq(k->broker_class, "Kafka");
	ck_assert_str_eq(k->channel, "kafka");
	ck_assert_str_eq(k->config->name, "kafka-broker-config");
	ck_assert_str_eq(((const struct ceb_kafka_broker_cfg *)k->config->backend)->bootstrap,
	                 "k:9092");
#endif
	ck_assert_int_eq(k->delivery.retry, 3);
	/* the dead-letter sink of the defaults, in the Broker's namespace */
	ck_assert_str_eq(k->delivery.dls.uri, "http://dls.kafka-ns.svc.cluster.local");
	/* an MTChannelBasedBroker of that namespace takes the cluster default; of its delivery only
	 * the dead-letter sink, retry and backoff (Knative copies no timeout) */
	ck_assert_str_eq(m->broker_class, "MTChannelBasedBroker");
	ck_assert_str_eq(m->channel, "memory");
	ck_assert_int_eq(m->delivery.retry, 10);
	ck_assert_uint_eq(m->delivery.timeout_ms, 0);
	ceb_config_free(cfg);
}
END_TEST
#endif

START_TEST(test_a_bad_config_br_defaults_is_reported_where_it_is_written)
{
	ck_errors("apiVersion: v1\n"
	          "kind: ConfigMap\n"
	          "metadata: {name: config-br-defaults, namespace: knative-eventing}\n"
	          "data:\n"
	          "  default-br-config: |\n"
	          "    clusterDefault:\n"
	          "      brokerClass: KafkaBroker\n"
	          "      kind: ConfigMap\n"
	          "      delivery: {retry: many}\n"
	          "    namespaceDefault: {}\n",
	          "test.yaml:7:7: ConfigMap knative-eventing/config-br-defaults: "
	          "data.default-br-config.clusterDefault.name: required field missing (a config "
	          "reference needs kind and name)\n"
	          "test.yaml:7:20: ConfigMap knative-eventing/config-br-defaults: "
	          "data.default-br-config.clusterDefault.brokerClass: unknown broker class "
	          "\"KafkaBroker\" (known: MTChannelBasedBroker, Kafka, RabbitMQBroker, "
	          "NatsJetStreamBroker)\n"
	          "test.yaml:9:25: ConfigMap knative-eventing/config-br-defaults: "
	          "data.default-br-config.clusterDefault.delivery.retry: expected an integer, got "
	          "\"many\"\n"
	          "test.yaml:10:5: ConfigMap knative-eventing/config-br-defaults: "
	          "data.default-br-config.namespaceDefault: unknown field (data.default-br-config "
	          "takes clusterDefault, namespaceDefaults)\n");
	ck_errors(
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: config-br-defaults, namespace: knative-eventing}\n"
	        "data:\n"
	        "  default-br-config: |\n"
	        "    clusterDefault: [\n",
	        "test.yaml:7:5: ConfigMap knative-eventing/config-br-defaults: "
	        "data.default-br-config: invalid YAML: flow sequence without a closing bracket\n");
	ck_errors("apiVersion: v1\n"
	          "kind: ConfigMap\n"
	          "metadata: {name: config-br-defaults, namespace: knative-eventing}\n"
	          "data: {_example: x}\n",
	          "test.yaml:1:1: ConfigMap knative-eventing/config-br-defaults: "
	          "data.default-br-config: required field missing: Knative's config-br-defaults "
	          "holds "
	          "its defaults there\n");
}
END_TEST

START_TEST(test_config_br_defaults_outside_knative_eventing_is_not_read)
{
	struct ceb_config *cfg = load_ok("apiVersion: v1\n"
	                                 "kind: ConfigMap\n"
	                                 "metadata: {name: config-br-defaults}\n"
	                                 "data:\n"
	                                 "  default-br-config: |\n"
	                                 "    clusterDefault: {brokerClass: Kafka}\n"
	                                 "---\n" BROKER);
	char buf[1024];

	ck_assert_str_eq(cfg->brokers->broker_class, "MTChannelBasedBroker");
	ck_assert_str_eq(notes(cfg, buf, sizeof(buf)),
	                 "test.yaml:1:1: warning: ConfigMap default/config-br-defaults: not read: "
	                 "Knative reads config-br-defaults from namespace knative-eventing only\n");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_disallow_different_namespace_config_is_enforced)
{
	ck_errors(
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: config-br-defaults, namespace: knative-eventing}\n"
	        "data:\n"
	        "  default-br-config: |\n"
	        "    clusterDefault:\n"
	        "      disallowDifferentNamespaceConfig: true\n"
	        "      brokerClass: MTChannelBasedBroker\n"
	        "      kind: ConfigMap\n"
	        "      name: config-br-default-channel\n"
	        "      namespace: knative-eventing\n"
	        "---\n" BROKER,
	        "test.yaml:7:7: Broker default/default: spec.config.namespace: knative-eventing is "
	        "not the Broker's namespace, and config-br-defaults sets "
	        "disallowDifferentNamespaceConfig\n");
}
END_TEST

/* ------------------------------------------------------------------------------------------------
 * Channel templates.
 */

START_TEST(test_an_mt_broker_runs_on_the_channel_its_template_names)
{
	struct ceb_config *cfg = load_ok("apiVersion: v1\n"
	                                 "kind: ConfigMap\n"
	                                 "metadata: {name: imc}\n"
	                                 "data:\n"
	                                 "  channelTemplateSpec: |\n"
	                                 "    apiVersion: messaging.knative.dev/v1\n"
	                                 "    kind: InMemoryChannel\n"
	                                 "---\n" BROKER "spec:\n"
	                                 "  config: {apiVersion: v1, kind: ConfigMap, name: imc}\n"
	                                 "---\n"
	                                 "apiVersion: eventing.knative.dev/v1\n"
	                                 "kind: Broker\n"
	                                 "metadata: {name: stock}\n"
	                                 "spec:\n"
	                                 "  config:\n"
	                                 "    apiVersion: v1\n"
	                                 "    kind: ConfigMap\n"
	                                 "    name: config-br-default-channel\n"
	                                 "    namespace: knative-eventing\n");

	ck_assert_str_eq(ceb_config_find_broker(cfg, "default", "default")->channel, "memory");
	ck_assert_str_eq(ceb_config_find_broker(cfg, "default", "stock")->channel, "memory");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_channel_this_build_cannot_back_is_an_error_never_memory)
{
	ck_errors(
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: kafka-channel, namespace: knative-eventing}\n"
	        "data:\n"
	        "  channel-template-spec: |\n"
	        "    apiVersion: messaging.knative.dev/v1\n"
	        "    kind: GooseChannel\n"
	        "    spec: {}\n"
	        "---\n"
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: other}\n"
	        "data:\n"
	        "  channel-template-spec: |\n"
	        "    apiVersion: messaging.knative.dev/v1\n"
	        "    kind: InMemoryChannel\n"
	        "    spec: {delivery: {retry: 2}}\n"
	        "---\n"
	        "apiVersion: v1\n"
	        "kind: ConfigMap\n"
	        "metadata: {name: none}\n"
	        "data: {bootstrap.servers: \"k:9092\"}\n"
	        "---\n" BROKER "spec:\n"
	        "  config: {apiVersion: v1, kind: ConfigMap, name: kafka-channel, namespace: "
	        "knative-eventing}\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata: {name: b}\n"
	        "spec: {config: {apiVersion: v1, kind: ConfigMap, name: other}}\n"
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata: {name: c}\n"
	        "spec: {config: {apiVersion: v1, kind: ConfigMap, name: none}}\n",
	        "test.yaml:17:11: ConfigMap default/other: data.channel-template-spec.spec: not "
	        "supported for an InMemoryChannel (give the delivery on the Broker or its "
	        "Triggers)\n"
	        "test.yaml:29:11: Broker default/default: spec.config: ConfigMap "
	        "knative-eventing/kafka-channel (test.yaml:7:11) asks for channel GooseChannel "
	        "(messaging.knative.dev/v1), which is not a channel kind cebroker knows "
	        "(InMemoryChannel, KafkaChannel, NatsJetStreamChannel of messaging.knative.dev, or "
	        "DurableChannel of messaging.cebroker.dev)\n"
	        "test.yaml:39:16: Broker default/c: spec.config: ConfigMap default/none has no "
	        "channel-template-spec: the ConfigMap of an MTChannelBasedBroker names its channel "
	        "there (e.g. \"apiVersion: messaging.knative.dev/v1\\nkind: InMemoryChannel\")\n");
}
END_TEST

static Suite *config_knative_suite(void)
{
	Suite *s = suite_create("config_knative");
	TCase *refs = tcase_create("refs"), *docs = tcase_create("documents"),
	      *vals = tcase_create("values"), *dflt = tcase_create("defaults");

	tcase_add_test(refs,
	               test_a_service_ref_resolves_to_its_cluster_dns_name_as_knative_resolves_it);
	tcase_add_test(refs, test_the_cluster_domain_comes_from_the_options);
	tcase_add_test(refs,
	               test_the_address_table_resolves_refs_from_options_and_from_its_configmap);
	tcase_add_test(refs, test_bad_address_table_entries_are_reported_on_their_line);
	tcase_add_test(refs, test_a_uri_beside_a_ref_must_be_relative_and_not_to_our_own_broker);
	tcase_add_test(refs, test_uri_references_resolve_as_rfc_3986_says);
	tcase_add_test(docs, test_documents_of_other_groups_are_skipped_with_a_note);
	tcase_add_test(docs, test_notes_stop_at_a_thousand);
	tcase_add_test(docs, test_unknown_kinds_of_eventing_groups_are_still_errors);
	tcase_add_test(docs, test_what_kubectl_prints_is_read_and_its_system_fields_ignored);
	tcase_add_test(docs, test_anchors_and_aliases_share_what_they_name);
	tcase_add_test(docs, test_aliases_cannot_nest_deeper_than_any_yaml);
	tcase_add_test(vals, test_durations_are_read_as_knative_reads_them);
	tcase_add_test(dflt,
	               test_a_broker_without_class_config_or_delivery_takes_knatives_defaults);
	/* without librdkafka the loader refuses the Kafka kinds and class, as `run` would */
#ifdef HAVE_RDKAFKA
	tcase_add_test(vals, test_a_long_extension_name_is_taken_with_a_warning);
	tcase_add_test(vals, test_a_kafka_source_delivery_has_no_format);
	tcase_add_test(dflt,
	               test_namespace_defaults_and_broker_classes_are_looked_up_as_knative_does);
#endif
	tcase_add_test(dflt, test_a_bad_config_br_defaults_is_reported_where_it_is_written);
	tcase_add_test(dflt, test_config_br_defaults_outside_knative_eventing_is_not_read);
	tcase_add_test(dflt, test_disallow_different_namespace_config_is_enforced);
	tcase_add_test(dflt, test_an_mt_broker_runs_on_the_channel_its_template_names);
	tcase_add_test(dflt, test_a_channel_this_build_cannot_back_is_an_error_never_memory);
	suite_add_tcase(s, refs);
	suite_add_tcase(s, docs);
	suite_add_tcase(s, vals);
	suite_add_tcase(s, dflt);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_knative_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
