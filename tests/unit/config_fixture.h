/* What the resource loader's unit tests share: a Broker and a Trigger to build on, and loads that
 * must succeed or fail, asserting so (a failure ends the test with the loader's errors). */
#ifndef CEB_TEST_CONFIG_FIXTURE_H
#define CEB_TEST_CONFIG_FIXTURE_H

#include <stddef.h>
#include <stdlib.h>

#include "broker/config/config.h"

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
/* The kinds the loader names when a kind or an apiVersion is unknown. */
#define SUPPORTED                                                                               \
	"Broker (eventing.knative.dev/v1), Trigger (eventing.knative.dev/v1), ConfigMap (v1), " \
	"Secret (v1), InMemoryChannel (messaging.knative.dev/v1), Channel "                     \
	"(messaging.knative.dev/v1), Subscription (messaging.knative.dev/v1), Sequence "        \
	"(flows.knative.dev/v1), Parallel (flows.knative.dev/v1), KafkaSource "                 \
	"(sources.knative.dev/v1 or sources.knative.dev/v1beta1), KafkaSink "                   \
	"(eventing.knative.dev/v1alpha1), KafkaChannel (messaging.knative.dev/v1beta1 or "      \
	"messaging.knative.dev/v1), PingSource (sources.knative.dev/v1 or "                     \
	"sources.knative.dev/v1beta2), ContainerSource (sources.knative.dev/v1), "              \
	"WebhookSource (sources.triggermesh.io/v1alpha1), NatsSource "                         \
	"(sources.cebroker.dev/v1alpha1), NatsJetStreamChannel (messaging.knative.dev/v1alpha1), " \
	"RabbitmqBrokerConfig (eventing.knative.dev/v1alpha1), RabbitmqSource "                \
	"(sources.knative.dev/v1alpha1)"                                                      \
	", EventPolicy (eventing.knative.dev/v1alpha1)"                                         \
	", DurableChannel (messaging.cebroker.dev/v1alpha1)"

/* A configuration that must load without an error (the caller frees it). */
struct ceb_config *load_ok(const char *yaml);
/* Loads yaml that must be refused; returns the error text (caller frees) and the count. */
char *load_err(const char *yaml, size_t len, size_t *count);
/* The notes of a config, one line each, in a buffer of the caller's. */
const char *notes(const struct ceb_config *cfg, char *buf, size_t sz);
/* The Trigger of that name (the test fails without one). */
const struct ceb_trigger_cfg *trigger_named(const struct ceb_config *cfg, const char *name);

#define ck_errors(yaml, expected)                               \
	do {                                                    \
		size_t n_;                                      \
		char *t_ = load_err((yaml), strlen(yaml), &n_); \
		ck_assert_str_eq(t_, (expected));               \
		free(t_);                                       \
	} while (0)

/* A real PEM certificate (a self-signed test CA's), for CACerts values that must be PEM: as text
 * (TEST_CA_PEM) and as a YAML double-quoted scalar of the same text (TEST_CA_PEM_YAML). */
#define TEST_CA_PEM \
	"-----BEGIN CERTIFICATE-----\n" \
	"MIIBjjCCATOgAwIBAgIUK6JUmZcoK5MSZTAo4/SWndnltfkwCgYIKoZIzj0EAwIw\n" \
	"GzEZMBcGA1UEAwwQY2Vicm9rZXItdGVzdC1jYTAgFw0yNjEyMDcwMjE3NTFaGA8y\n" \
	"MTI2MTExMzAyMTc1MVowGzEZMBcGA1UEAwwQY2Vicm9rZXItdGVzdC1jYTBZMBMG\n" \
	"ByqGSM49AgEGCCqGSM49AwEHA0IABKmveRtdyXXQ5NpAGN6XN67ELRMezOOqGZvQ\n" \
	"66reCkM5cTaS52tpJZLl2ElE8g/wPoV11AHobRrlME609CpfP6+jUzBRMB0GA1Ud\n" \
	"DgQWBBT1Wt09coaAKx4qW02xwB/GrBxZBDAfBgNVHSMEGDAWgBT1Wt09coaAKx4q\n" \
	"W02xwB/GrBxZBDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDh\n" \
	"ymxbGFyqxbrxeoOGO5vMu4tgvi3jLD35g1xsW2oxgAIhAMZj4IXwwqNK+BL21rEg\n" \
	"XEDMaRFi9K5tXxPS9S/w7RQK\n" \
	"-----END CERTIFICATE-----\n"
#define TEST_CA_PEM_YAML \
	"\"-----BEGIN CERTIFICATE-----\\nMIIBjjCCATOgAwIBAgIUK6JUmZcoK5MSZTAo4/SWndnltfkwCgYIKoZIzj0EAwIw\\nGzEZMBcGA1UEAwwQY2Vicm9rZXItdGVzdC1jYTAgFw0yNjEyMDcwMjE3NTFaGA8y\\nMTI2MTExMzAyMTc1MVowGzEZMBcGA1UEAwwQY2Vicm9rZXItdGVzdC1jYTBZMBMG\\nByqGSM49AgEGCCqGSM49AwEHA0IABKmveRtdyXXQ5NpAGN6XN67ELRMezOOqGZvQ\\n66reCkM5cTaS52tpJZLl2ElE8g/wPoV11AHobRrlME609CpfP6+jUzBRMB0GA1Ud\\nDgQWBBT1Wt09coaAKx4qW02xwB/GrBxZBDAfBgNVHSMEGDAWgBT1Wt09coaAKx4q\\nW02xwB/GrBxZBDAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDh\\nymxbGFyqxbrxeoOGO5vMu4tgvi3jLD35g1xsW2oxgAIhAMZj4IXwwqNK+BL21rEg\\nXEDMaRFi9K5tXxPS9S/w7RQK\\n-----END CERTIFICATE-----\\n\""

#endif
