/* The source contract test suite: Check test cases that every source kind must pass, run against
 * the real daemon (`cebroker run`, $CEBROKER) and a real HTTP sink in the test program.
 *
 * A source's test program fills a struct source_driver, adds the cases to a TCase of its own and
 * runs that TCase's suite with srunner_set_fork_status(sr, CK_NOFORK): the sink server starts once
 * for the TCase (an unchecked fixture), and its threads would not exist in a forked test case.
 * Without fork, Check's timeouts do not apply; every wait of the suite has its own deadline
 * (driver->wait_ms). */
#ifndef CEB_SOURCE_CONTRACT_H
#define CEB_SOURCE_CONTRACT_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

/* The namespace of every source the suite configures. */
#define SOURCE_CONTRACT_NS "contract"

/* What the suite needs to know about a source kind. Each case configures sources of its own, with
 * names no other case uses ("emits", "progress"...): a driver keys a source's feed (topic, queue,
 * subject, file) on its name, so cases never see each other's inputs. Callbacks run on the test's
 * own thread and may use ck_assert. */
struct source_driver {
	const char *kind; /* "KafkaSource", for messages */
	/* Progress survives a restart and a crash (Kafka, AMQP, NATS): what the sink did not accept
	 * comes again after one, what it accepted does not come again after a clean stop, and one
	 * source's inputs are read in the order they were fed (Kafka: one partition). Not durable
	 * (ping, webhook): the cases that restart are skipped. */
	bool durable;
	/* The deadline of every wait for something that must happen (an event at the sink, the
	 * daemon's start or exit): generous, never a measure of speed. */
	int wait_ms;
	/* How long a case gives the source to do what it must not (deliver an input fed after stop,
	 * move its progress while the sink holds a delivery): at least as long as the source takes
	 * to turn a new input into a delivery, and to save its progress, when it runs. */
	int quiet_ms;
	void *arg; /* passed to the callbacks */
	/* Optional: make the feed of source `name` ready before its case starts a daemon (create a
	 * topic, a queue). */
	void (*prepare)(void *arg, const char *name);
	/* Write into out (outlen bytes, NUL-terminated) the resource of one source of this kind named
	 * `name` in SOURCE_CONTRACT_NS, ending with "---\n". `spec` is YAML of Knative's SourceSpec
	 * parts the suite chooses (spec.sink, spec.delivery), already indented for the spec mapping:
	 * put it under "spec:" as it is, beside the kind's own fields. A durable source must start at
	 * the beginning of its feed the first time (Kafka: initialOffset earliest), so that inputs fed
	 * while no daemon runs are read once it does. */
	void (*resource)(void *arg, const char *name, const char *spec, char *out, size_t outlen);
	/* Make the feed of source `name` produce n inputs, each of which the source turns into one
	 * event (Kafka: n records into its topic; a webhook: n POSTs to url; a container source: n
	 * lines for its command). url is the running daemon's "http://127.0.0.1:PORT", or NULL when
	 * none runs. A feed that produces by itself (ping ticks) does nothing. Returns 0, or a
	 * negative number when the feed refused the inputs (a draining daemon's webhook answers 503):
	 * the stop case then only checks that nothing arrives. */
	int (*feed)(void *arg, const char *name, const char *url, int n);
	/* The kind has no spec.delivery (PingSource, ContainerSource: Knative gives them none, and
	 * a kind's fields are never invented): the case of retries and a dead-letter sink, which
	 * configures one, is skipped; the kind's own tests cover how it retries. */
	bool no_delivery;
	/* The source's own program posts to the sink (ContainerSource's K_SINK), not the daemon's
	 * dispatcher: a drain has no delivery of it to wait for, and the daemon may exit while the
	 * sink still holds one of the program's requests. */
	bool posts_itself;
};

/* Add the contract cases, run against drv (which must outlive the run), to tc, with the fixtures
 * they need. */
void source_contract_add_tests(TCase *tc, const struct source_driver *drv);

#endif
