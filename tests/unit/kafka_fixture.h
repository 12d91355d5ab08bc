/* What the Kafka unit suites (test_channel_kafka, test_source_kafka, test_sink_kafka) share: the
 * mock cluster helper, Kafka channels whose subscriptions collect what they get, plain librdkafka
 * clients.
 * Everything here fails the running Check test on error (ck_assert), so call it from a test's own
 * thread, or from a fixture. */
#ifndef CEB_TEST_KAFKA_FIXTURE_H
#define CEB_TEST_KAFKA_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include "broker/config/config.h"
#include "broker/ce/event.h"
#include "channels/kafka/kinds.h"
#include "tests/unit/collector.h"

#define WAIT_MS 20000 /* a consumer group's first join alone takes 3 s on the mock */

/* ---- the mock cluster helper ---- */

/* The mock's bootstrap.servers, set by mock_start. */
extern char bootstrap[1024];

/* Start $top_builddir/tests/tools/kafka_mock (once per test program; it outlives forked test
 * cases and killed daemons) and read its bootstrap servers. Exits the program if it cannot. */
void mock_start(void);
/* Close its stdin (it exits) and reap it. */
void mock_stop(void);
/* Send one command to the mock (see tests/tools/kafka_mock.c); fails the test unless it answers
 * "ok". */
void mock_cmd(const char *cmd);
/* A checked fixture: every test starts on a healthy cluster, whatever the one before left. */
void mock_reset(void);

/* ---- ConfigMaps ---- */

/* A Kafka Broker's ConfigMap as the configuration loader reads it (the channel takes the settings
 * the loader checked): the ConfigMap and a Broker naming it, loaded from YAML. */
struct cm {
	struct ceb_config *cfg;
	char err[512]; /* the loader's errors when it refused */
};

/* A Kafka Broker whose ConfigMap has bootstrap.servers and the given key, value pairs
 * (NULL-terminated), or NULL when the loader refused it (cm->err says why). Frees what cm held
 * before; cm_free frees the rest. */
const struct ceb_broker_cfg *cm_make(struct cm *cm, const char *const *pairs);
void cm_free(struct cm *cm);

/* ---- a channel with subscriptions that collect what they get ---- */

struct chan {
	struct ceb_channel ch;
	struct cm cm;
	struct ceb_filter *all;
};

/* A Kafka Broker channel (topic knative-broker-kafka-<name>) with those ConfigMap pairs. */
void chan_open(struct chan *ch, const char *name, const char *const *pairs);
/* Subscribe c (emptied first) as Trigger name, with no filter. */
void chan_sub(struct chan *ch, const char *name, size_t max_inflight, bool ordered, struct coll *c);
void chan_start(struct chan *ch);
/* Settle message i of c (once: a second settle fails the test). */
void settle(struct chan *ch, struct coll *c, size_t i, enum ceb_settle how);
/* Settle DONE every message of c not settled yet. */
void settle_all(struct chan *ch, struct coll *c);
void chan_close(struct chan *ch);

/* ---- publishing ---- */

/* A publish completion: pub_done counts the calls and keeps the status. */
struct pubwait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls, status;
};

void pub_done(void *arg, int status);
/* A new event (the caller unrefs it) with that id, type t, source /test, data = the id, and
 * partitionkey key unless NULL. */
struct ceb_event *event(const char *id, const char *key);
/* Publish ev and wait for the completion; returns its status. Fails the test unless it completes
 * within ms, and exactly once. *elapsed_ms (unless NULL): how long it took. */
int publish_ms(struct chan *ch, struct ceb_event *ev, int ms, int *elapsed_ms);
/* Publish event(id, key) and fail the test unless it is stored. */
void publish_ok(struct chan *ch, const char *id, const char *key);

/* ---- plain librdkafka clients, to see and write the topic as another client would ---- */

/* A producer (group NULL) or a consumer of group, from the earliest offset, no auto-commit. */
rd_kafka_t *raw_client(rd_kafka_type_t type, const char *group);
/* Produce one record to a partition, with a key of any bytes (key may be NULL); headers: name,
 * value pairs, NULL-terminated. Returns once Kafka stored it. */
void raw_produce_key(const char *topic, int32_t part, const void *key, size_t keylen,
                     const char *value, const char *const *hdrs);
void raw_produce(const char *topic, int32_t part, const char *value, const char *const *hdrs);

/* A record as read back, copied out of librdkafka (whose messages must not outlive the client). */
struct rawrec {
	char key[64], value[256];
	size_t keylen, len;
	rd_kafka_headers_t *hdrs;
};

/* Read every record of the topic from the start for ms; returns how many (at most max). */
int raw_read(const char *topic, struct rawrec *out, int max, int ms);
void raw_free(struct rawrec *r, int n);
/* The last value of header name of r, copied into buf; NULL when it has none. */
const char *header(const struct rawrec *r, const char *name, char *buf, size_t len);

#endif
