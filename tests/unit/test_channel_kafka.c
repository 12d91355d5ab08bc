/* The channel contract suite against the Kafka backend, on librdkafka's mock cluster in its own
 * process (tests/tools/kafka_mock), plus what only Kafka does: the binding on the wire, records from
 * other producers, new groups starting at the end, ordered partitions, rebalances, faults. The
 * KafkaSource and KafkaSink kinds have suites of their own (test_source_kafka, test_sink_kafka). */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/log.h"
#include "channels/kafka/kinds.h"
#include "channel_contract.h"
#include "kafka_fixture.h"

static struct cm contract_cm;

static void kafka_cfg(struct ceb_channel_cfg *cfg, const char *name)
{
	cfg->spec = cm_make(&contract_cm, NULL);
	ck_assert_msg(cfg->spec, "%s", contract_cm.err);
}

static const struct contract_backend kafka = {
        .ops = &ceb_channel_kafka,
        .setup_cfg = kafka_cfg,
        .bounded = 0,
        .wait_ms = WAIT_MS,
};

/* ---- tests ---- */

START_TEST(test_kafka_backend_is_found_by_name_and_broker_class)
{
	ck_assert_ptr_eq(ceb_channel_ops_find("kafka"), &ceb_channel_kafka);
	ck_assert_str_eq(ceb_channel_for_class("Kafka"), "kafka");
	ck_assert_uint_eq(ceb_channel_kafka.flags & CEB_CHANNEL_PREFILTERS, 0);
}
END_TEST

static int create_fails(const char *const *pairs, int with_config, char *err, size_t errlen)
{
	struct ceb_channel_cfg cfg = {.ns = "kafka", .name = "bad"};
	struct cm cm = {0};
	void *ctx = NULL;
	int rc;

	if (with_config && !(cfg.spec = cm_make(&cm, pairs))) {
		snprintf(err, errlen, "%s", cm.err);
		return CEB_ECONFIG;
	}
	rc = ceb_channel_kafka.create(&cfg, &ctx, err, errlen);
	if (rc == 0)
		ceb_channel_kafka.destroy(ctx);
	cm_free(&cm);
	return rc;
}

START_TEST(test_configuration_errors_name_the_configmap_and_the_key)
{
	char err[512];

	ck_assert_int_eq(create_fails(NULL, 0, err, sizeof(err)), CEB_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "spec.config"));
	ck_assert_int_eq(
	        create_fails((const char *const[]){"default.topic.partitions", "ten", NULL}, 1, err,
	                     sizeof(err)),
	        CEB_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "test.yaml:6:29: ConfigMap kafka/kafka-broker-config: "
	                                  "data[\"default.topic.partitions\"]: \"ten\""));
	ck_assert_int_eq(create_fails((const char *const[]){"auth.secret.ref.name", "creds", NULL},
	                              1, err, sizeof(err)),
	                 CEB_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "auth.secret.ref.name"));
	ck_assert_int_eq(
	        create_fails((const char *const[]){"librdkafka.no.such.property", "1", NULL}, 1,
	                     err, sizeof(err)),
	        CEB_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "test.yaml:6:32: ConfigMap kafka/kafka-broker-config: "
	                                  "no.such.property"));
	ck_assert_int_eq(
	        create_fails((const char *const[]){"cebroker.confirm.timeout.ms", "-5", NULL}, 1,
	                     err, sizeof(err)),
	        CEB_ECONFIG);
	ck_assert_int_eq(
	        create_fails((const char *const[]){"security.protocol", "SASL_PLAINTEXT",
	                                           "sasl.mechanism", "PLAIN", "sasl.username", "u",
	                                           "sasl.password", "p", NULL},
	                     1, err, sizeof(err)),
	        0);
}
END_TEST

START_TEST(test_secret_values_never_reach_the_log_or_an_error)
{
	static const char canary[] = "canary-7f3a9c";
	char err[512], logbuf[65536];
	char path[] = "/tmp/ceb-kafka-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	dup2(fd, 2);
	ceb_log_setup(CEB_LOGLEVEL_DEBUG, 0);
	create_fails((const char *const[]){"security.protocol", "SASL_PLAINTEXT", "sasl.mechanism",
	                                   "PLAIN", "sasl.username", "u", "sasl.password", canary,
	                                   "librdkafka.debug", "conf,security", NULL},
	             1, err, sizeof(err));
	ck_assert_ptr_null(strstr(err, canary));
	/* A value librdkafka refuses: the error names the key, never the value. */
	create_fails((const char *const[]){"sasl.password", canary, "librdkafka.sasl.password",
	                                   canary, "librdkafka.ssl.key.password", canary,
	                                   "sasl.oauthbearer.config", canary,
	                                   "librdkafka.linger.ms", "never", NULL},
	             1, err, sizeof(err));
	ck_assert_ptr_null(strstr(err, canary));
	ck_assert_ptr_nonnull(strstr(err, "linger.ms"));
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, logbuf, sizeof(logbuf) - 1, 0);
	close(fd);
	ck_assert_int_ge(n, 0);
	logbuf[n] = '\0';
	ck_assert_msg(strstr(logbuf, canary) == NULL, "the secret was logged:\n%s", logbuf);
	ceb_log_setup(CEB_LOGLEVEL_WARN, 0);
}
END_TEST

START_TEST(test_records_follow_the_kafka_binding_in_binary_mode)
{
	struct chan ch;
	struct ceb_event *ev = event("bin-1", "user-42");
	struct rawrec m[8];
	char err[128], buf[256];
	int n, found = -1;

	chan_open(&ch, "binding", NULL);
	chan_start(&ch);
	ck_assert_int_eq(ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, "text/plain", 10,
	                               err, sizeof(err)),
	                 0);
	ck_assert_int_eq(
	        ceb_event_set(ev, "myext", CEB_TYPE_STRING, "a b%20\xc3\xa4", 8, err, sizeof(err)),
	        0);
	ck_assert_int_eq(publish_ms(&ch, ev, WAIT_MS, NULL), 0);
	ceb_event_unref(ev);
	n = raw_read("knative-broker-kafka-binding", m, 8, 3000);
	for (int i = 0; i < n; i++)
		if (header(&m[i], "ce_id", buf, sizeof(buf)) && strcmp(buf, "bin-1") == 0)
			found = i;
	ck_assert_int_ge(found, 0);
	ck_assert_str_eq(header(&m[found], "ce_specversion", buf, sizeof(buf)), "1.0");
	ck_assert_str_eq(header(&m[found], "ce_source", buf, sizeof(buf)), "/test");
	ck_assert_str_eq(header(&m[found], "ce_type", buf, sizeof(buf)), "t");
	/* UTF-8 as it is: the Kafka binding has no percent-encoding */
	ck_assert_str_eq(header(&m[found], "ce_myext", buf, sizeof(buf)), "a b%20\xc3\xa4");
	/* the key mapper must not change the event: partitionkey still travels */
	ck_assert_str_eq(header(&m[found], "ce_partitionkey", buf, sizeof(buf)), "user-42");
	ck_assert_str_eq(header(&m[found], "content-type", buf, sizeof(buf)), "text/plain");
	ck_assert_ptr_null(header(&m[found], "ce_datacontenttype", buf, sizeof(buf)));
	ck_assert_int_eq((int)m[found].keylen, 7);
	ck_assert_int_eq(memcmp(m[found].key, "user-42", 7), 0);
	ck_assert_int_eq((int)m[found].len, 5);
	ck_assert_int_eq(memcmp(m[found].value, "bin-1", 5), 0);
	raw_free(m, n);
	chan_close(&ch);
}
END_TEST

START_TEST(test_binary_and_structured_records_of_other_producers_become_events)
{
	static const char structured[] = "{\"specversion\":\"1.0\",\"type\":\"com.example."
	                                 "someevent\",\"time\":\"2018-04-05T03:56:24Z\","
	                                 "\"id\":\"%s\",\"source\":\"/mycontext/"
	                                 "subcontext\",\"datacontenttype\":\"application/json\","
	                                 "\"data\":{\"message\":\"Hello World!\"}}";
	const char *topic = "knative-broker-kafka-foreign";
	struct chan ch;
	struct coll c;
	char s1[512], s2[512];
	const struct ceb_attr *a;
	const void *data;
	size_t len;

	mock_cmd("topic knative-broker-kafka-foreign 1");
	chan_open(&ch, "foreign", NULL);
	chan_sub(&ch, "reader", 10, false, &c);
	chan_start(&ch);
	/* The conformance scenarios of the CloudEvents Kafka binding (tck/conformance). */
	raw_produce(topic, 0, "{\"message\": \"Hello World!\"}",
	            (const char *const[]){"ce_specversion", "1.0", "ce_id", "1234-1234-1234",
	                                  "ce_type", "com.example.someevent", "ce_source",
	                                  "/mycontext/subcontext", "ce_time",
	                                  "2018-04-05T03:56:24Z", "content-type",
	                                  "application/json", NULL});
	snprintf(s1, sizeof(s1), structured, "s-1");
	snprintf(s2, sizeof(s2), structured, "s-2");
	raw_produce(topic, 0, s1,
	            (const char *const[]){"content-type", "application/cloudevents+json", NULL});
	raw_produce(topic, 0, s2,
	            (const char *const[]){"content-type",
	                                  "application/cloudevents+json; charset=utf-8", NULL});
	ck_assert_uint_eq(coll_wait(&c, 3, WAIT_MS), 3);
	ck_assert_str_eq(coll_id(&c, 0), "1234-1234-1234");
	ck_assert_str_eq(ceb_event_get(c.evs[0], "time")->value, "2018-04-05T03:56:24Z");
	ck_assert_str_eq(ceb_event_get(c.evs[0], "datacontenttype")->value, "application/json");
	ck_assert_str_eq(ceb_event_get(c.evs[0], "source")->value, "/mycontext/subcontext");
	data = ceb_event_data(c.evs[0], &len);
	ck_assert_int_eq((int)len, 27);
	ck_assert_int_eq(memcmp(data, "{\"message\": \"Hello World!\"}", len), 0);
	for (size_t i = 1; i < 3; i++) {
		ck_assert_str_eq(coll_id(&c, i), i == 1 ? "s-1" : "s-2");
		a = ceb_event_get(c.evs[i], "type");
		ck_assert_str_eq(a->value, "com.example.someevent");
		ck_assert_str_eq(ceb_event_get(c.evs[i], "datacontenttype")->value,
		                 "application/json");
		data = ceb_event_data(c.evs[i], &len);
		ck_assert_int_eq((int)len, 26);
		ck_assert_int_eq(memcmp(data, "{\"message\":\"Hello World!\"}", len), 0);
	}
	settle_all(&ch, &c);
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

START_TEST(test_records_that_are_not_cloudevents_are_skipped_and_committed)
{
	const char *topic = "knative-broker-kafka-junk";
	struct chan ch;
	struct coll c;

	mock_cmd("topic knative-broker-kafka-junk 1");
	chan_open(&ch, "junk", NULL);
	chan_sub(&ch, "reader", 10, false, &c);
	chan_start(&ch);
	raw_produce(topic, 0, "plain bytes", NULL);
	raw_produce(topic, 0, "{not json",
	            (const char *const[]){"content-type", "application/cloudevents+json", NULL});
	raw_produce(
	        topic, 0, "[]",
	        (const char *const[]){"content-type", "application/cloudevents-batch+json", NULL});
	raw_produce(topic, 0, "x",
	            (const char *const[]){"ce_specversion", "1.0", "ce_type", "t", "ce_source",
	                                  "/s", NULL}); /* no id */
	raw_produce(topic, 0, "x",
	            (const char *const[]){"ce_specversion", "1.0", "ce_id", "bad name", "ce_type",
	                                  "t", "ce_source", "/s", "ce_Bad-Name", "v", NULL});
	raw_produce(topic, 0, "ok",
	            (const char *const[]){"ce_specversion", "1.0", "ce_id", "good-1", "ce_type",
	                                  "t", "ce_source", "/s", NULL});
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ck_assert_uint_eq(coll_wait(&c, 2, 500), 1);
	ck_assert_str_eq(coll_id(&c, 0), "good-1");
	settle_all(&ch, &c);
	ck_assert_uint_eq(ch.ch.ops->pending(ch.ch.ctx), 0);
	coll_free(&c);
	chan_close(&ch);

	/* Committed past the junk too: a restart does not read it (nor good-1) again. */
	chan_open(&ch, "junk", NULL);
	chan_sub(&ch, "reader", 10, false, &c);
	chan_start(&ch);
	publish_ok(&ch, "good-2", NULL);
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ck_assert_uint_eq(coll_wait(&c, 2, 500), 1);
	ck_assert_str_eq(coll_id(&c, 0), "good-2");
	settle_all(&ch, &c);
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

START_TEST(test_a_new_subscription_starts_at_the_end_and_misses_nothing_accepted_after_start)
{
	struct chan ch;
	struct coll early, late, fresh;

	chan_open(&ch, "k8", NULL);
	chan_sub(&ch, "early", 10, false, &early);
	chan_start(&ch);
	publish_ok(&ch, "old-0", NULL);
	publish_ok(&ch, "old-1", NULL);
	ck_assert_uint_eq(coll_wait(&early, 2, WAIT_MS), 2);
	settle_all(&ch, &early);
	coll_free(&early);
	chan_close(&ch);

	/* A Trigger added to a running Broker: the topic has history it must not replay, and the
	 * events accepted right after start, before its group even joined, must all reach it. */
	chan_open(&ch, "k8", NULL);
	chan_sub(&ch, "early", 10, false, &early);
	chan_sub(&ch, "late", 10, false, &late);
	chan_sub(&ch, "fresh", 10, false, &fresh);
	chan_start(&ch);
	publish_ok(&ch, "new-0", NULL);
	publish_ok(&ch, "new-1", NULL);
	publish_ok(&ch, "new-2", NULL);
	ck_assert_uint_eq(coll_wait(&late, 3, WAIT_MS), 3);
	ck_assert_uint_eq(coll_wait(&early, 3, WAIT_MS), 3);
	ck_assert_uint_eq(coll_wait(&late, 4, 500), 3);
	ck_assert_int_eq(coll_count(&late, "old-0") + coll_count(&late, "old-1"), 0);
	ck_assert_int_eq(coll_count(&early, "old-0") + coll_count(&early, "old-1"), 0);
	settle_all(&ch, &late);
	settle_all(&ch, &early);
	/* fresh settles nothing and the daemon stops: its group never committed on its own. */
	coll_free(&late);
	coll_free(&early);
	coll_free(&fresh);
	chan_close(&ch);

	chan_open(&ch, "k8", NULL);
	chan_sub(&ch, "fresh", 10, false, &fresh);
	chan_start(&ch);
	ck_assert_uint_eq(coll_wait(&fresh, 3, WAIT_MS), 3);
	ck_assert_int_eq(coll_count(&fresh, "new-0"), 1);
	ck_assert_int_eq(coll_count(&fresh, "new-1"), 1);
	ck_assert_int_eq(coll_count(&fresh, "new-2"), 1);
	settle_all(&ch, &fresh);
	coll_free(&fresh);
	chan_close(&ch);
}
END_TEST

START_TEST(test_ordered_subscription_hands_one_record_per_partition_at_a_time)
{
	static const char *const keys[] = {"alpha", "beta", "gamma"};
	struct chan ch;
	struct coll c;
	char id[32];
	size_t settled = 0;

	mock_cmd("topic knative-broker-kafka-ordered 2");
	chan_open(&ch, "ordered", NULL);
	chan_sub(&ch, "inorder", 100, true, &c);
	chan_start(&ch);
	for (int i = 0; i < 12; i++) {
		snprintf(id, sizeof(id), "%s-%d", keys[i % 3], i / 3);
		publish_ok(&ch, id, keys[i % 3]);
	}
	while (settled < 12) {
		size_t n = coll_wait(&c, settled + 1, WAIT_MS);
		ck_assert_uint_gt(n, settled);
		coll_wait(&c, settled + 3,
		          300); /* give a second or third one the chance to show up */
		pthread_mutex_lock(&c.lock);
		n = c.n;
		pthread_mutex_unlock(&c.lock);
		/* Two partitions: never more than two unsettled, and never two of one key. */
		ck_assert_uint_le(n - settled, 2);
		if (n - settled == 2)
			ck_assert_str_ne(ceb_event_get(c.evs[settled], "partitionkey")->value,
			                 ceb_event_get(c.evs[settled + 1], "partitionkey")->value);
		for (size_t i = settled; i < n; i++)
			settle(&ch, &c, i, CEB_SETTLE_DONE);
		settled = n;
	}
	/* Per key, in the order they were published. */
	for (int k = 0; k < 3; k++) {
		int next = 0;
		for (size_t i = 0; i < c.n; i++) {
			if (strcmp(ceb_event_get(c.evs[i], "partitionkey")->value, keys[k]))
				continue;
			snprintf(id, sizeof(id), "%s-%d", keys[k], next++);
			ck_assert_str_eq(coll_id(&c, i), id);
		}
		ck_assert_int_eq(next, 4);
	}
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

START_TEST(test_publish_is_refused_when_kafka_does_not_confirm_in_time)
{
	struct chan ch;
	struct ceb_event *ev = event("outage-1", NULL), *ev2 = event("outage-2", NULL);
	struct pubwait first = {.calls = 0};
	struct timespec t0, t1, deadline;
	int ms = 0, st;

	pthread_mutex_init(&first.lock, NULL);
	pthread_cond_init(&first.cond, NULL);
	chan_open(&ch, "outage",
	          (const char *const[]){"cebroker.confirm.timeout.ms", "1500",
	                                "librdkafka.queue.buffering.max.messages", "1", NULL});
	chan_start(&ch);
	publish_ok(&ch, "before", NULL);
	mock_cmd("down all");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ch.ch.ops->publish(ch.ch.ctx, ev, pub_done, &first);
	/* librdkafka's local queue holds one, and that one waits for Kafka: the next is refused as
	 * full at once (429). */
	ck_assert_int_eq(publish_ms(&ch, ev2, 1000, &ms), CEB_EFULL);
	ck_assert_int_le(ms, 200);
	/* The first gets its 503 once the confirm timeout passed, not later (librdkafka alone can
	 * take seconds more with every broker down). */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	pthread_mutex_lock(&first.lock);
	while (first.calls == 0 && pthread_cond_timedwait(&first.cond, &first.lock, &deadline) == 0)
		;
	pthread_mutex_unlock(&first.lock);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	ck_assert_int_eq(first.calls, 1);
	ck_assert_int_eq(first.status, CEB_EUNAVAIL);
	ck_assert_int_ge(ms, 1000);
	ck_assert_int_le(ms, 2500);
	mock_cmd("up all");
	/* Recovery: publishes are confirmed again once librdkafka reconnected. */
	for (int i = 0; i < 30 && (st = publish_ms(&ch, ev2, 3000, NULL)) != 0; i++)
		usleep(200 * 1000);
	ck_assert_int_eq(st, 0);
	ck_assert_int_eq(first.calls, 1);
	ceb_event_unref(ev);
	ceb_event_unref(ev2);
	chan_close(&ch);
}
END_TEST

START_TEST(test_produce_errors_are_retried_without_duplicates_in_the_topic)
{
	struct rawrec m[32];
	struct chan ch;
	char id[32];
	int n;

	mock_cmd("topic knative-broker-kafka-retries 2");
	chan_open(&ch, "retries", NULL);
	chan_start(&ch);
	mock_cmd("err Produce 3 NOT_ENOUGH_REPLICAS");
	mock_cmd("err Produce 1 _TRANSPORT");
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "r-%d", i);
		publish_ok(&ch, id, NULL);
	}
	chan_close(&ch);
	n = raw_read("knative-broker-kafka-retries", m, 32, 3000);
	ck_assert_int_eq(n, 6);
	raw_free(m, n);
}
END_TEST

START_TEST(test_a_confirmation_later_than_the_timeout_is_a_503_and_never_a_duplicate)
{
	struct rawrec m[16];
	struct chan ch;
	struct ceb_event *ev = event("late-1", NULL);
	char buf[64];
	int ms = 0, n, late = 0;

	mock_cmd("topic knative-broker-kafka-late 1");
	chan_open(&ch, "late", (const char *const[]){"cebroker.confirm.timeout.ms", "1500", NULL});
	chan_start(&ch);
	publish_ok(&ch, "warm", NULL);
	/* Every broker answers the next Produce request 3 s late ("possibly persisted", K3). */
	for (int b = 1; b <= 3; b++) {
		snprintf(buf, sizeof(buf), "berr %d Produce 1 NO_ERROR 3000", b);
		mock_cmd(buf);
	}
	ck_assert_int_eq(publish_ms(&ch, ev, 5000, &ms), CEB_EUNAVAIL);
	ck_assert_int_le(ms, 2500);
	sleep(4); /* the late answer arrives; the idempotent producer never writes it twice */
	chan_close(&ch);
	n = raw_read("knative-broker-kafka-late", m, 16, 3000);
	for (int i = 0; i < n; i++)
		late += header(&m[i], "ce_id", buf, sizeof(buf)) && strcmp(buf, "late-1") == 0;
	ck_assert_int_le(late, 1);
	ck_assert_int_ge(n, 1);
	raw_free(m, n);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_stop_refuses_publishes_hands_out_nothing_more_and_still_takes_settles)
{
	struct chan ch;
	struct coll c;
	struct ceb_event *ev = event("after-stop", NULL);
	int ms = 0;

	chan_open(&ch, "stopping", NULL);
	chan_sub(&ch, "one-at-a-time", 1, false, &c);
	chan_start(&ch);
	publish_ok(&ch, "s-1", NULL);
	publish_ok(&ch, "s-2", NULL);
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ch.ch.ops->stop(ch.ch.ctx);
	ck_assert_int_eq(publish_ms(&ch, ev, 1000, &ms), CEB_EUNAVAIL);
	ck_assert_int_le(ms, 200);
	settle(&ch, &c, 0, CEB_SETTLE_DONE);
	ck_assert_uint_eq(coll_wait(&c, 2, 1000), 1); /* s-2 stays in Kafka for the next start */
	ck_assert_uint_eq(ch.ch.ops->pending(ch.ch.ctx), 0);
	ceb_event_unref(ev);
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

static void raw_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		rd_kafka_assign(rk, parts);
	else
		rd_kafka_assign(rk, NULL);
}

/* A consumer in the group of `group`, subscribed to topic: a second member. */
static rd_kafka_t *other_member(const char *group, const char *topic)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *sub;
	rd_kafka_t *rk;
	char err[256];

	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)),
	                 0);
	rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
	rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
	rd_kafka_conf_set(conf, "session.timeout.ms", "6000", err, sizeof(err));
	rd_kafka_conf_set(conf, "heartbeat.interval.ms", "500", err, sizeof(err));
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
	rd_kafka_conf_set_rebalance_cb(conf, raw_rebalance);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_ptr_nonnull(rk);
	rd_kafka_poll_set_consumer(rk);
	sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	ck_assert_int_eq(rd_kafka_subscribe(rk, sub), 0);
	rd_kafka_topic_partition_list_destroy(sub);
	return rk;
}

/* Polls a second member for as long as a test runs: a member that stops polling cannot take part
 * in the next rebalance and is dropped from the group, which would hand its partitions back. */
struct poller {
	rd_kafka_t *rk;
	atomic_int first_partition; /* of the first record it read; -1 before */
	atomic_int stop;
	pthread_t thread;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;

	while (!atomic_load(&p->stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(p->rk, 100);
		if (m && !m->err && atomic_load(&p->first_partition) < 0)
			atomic_store(&p->first_partition, m->partition);
		if (m)
			rd_kafka_message_destroy(m);
	}
	return NULL;
}

START_TEST(test_ordered_partition_got_back_waits_for_the_deliveries_of_its_previous_assignment)
{
	const char *topic = "knative-broker-kafka-back";
	struct chan ch;
	struct coll c;
	struct poller other = {.first_partition = -1};
	int mine;
	char id[32];
	struct timespec t0, t;

	mock_cmd("topic knative-broker-kafka-back 2");
	chan_open(&ch, "back",
	          (const char *const[]){"librdkafka.session.timeout.ms", "6000",
	                                "librdkafka.heartbeat.interval.ms", "500", NULL});
	chan_sub(&ch, "back", 100, true, &c);
	chan_start(&ch);
	for (int p = 0; p < 2; p++)
		for (int o = 0; o < 3; o++) {
			snprintf(id, sizeof(id), "p%d-%d", p, o);
			raw_produce(topic, p, "x",
			            (const char *const[]){"ce_specversion", "1.0", "ce_id", id,
			                                  "ce_type", "t", "ce_source", "/s", NULL});
		}
	/* ordered: the first record of each partition, and nothing more until they settle */
	ck_assert_uint_eq(coll_wait(&c, 2, WAIT_MS), 2);
	ck_assert_uint_eq(coll_wait(&c, 3, 1000), 2);
	/* A second member joins: both partitions are revoked while p0-0 and p1-0 are in flight,
	 * then one comes back to us. */
	other.rk = other_member("knative-trigger-kafka-back", topic);
	ck_assert_int_eq(pthread_create(&other.thread, NULL, poller_main, &other), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&other.first_partition) < 0) {
		usleep(50 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_int_lt(t.tv_sec - t0.tv_sec, 30);
	}
	mine = 1 - atomic_load(&other.first_partition);
	/* Our partition came back, its first record still in flight from before: nothing of it
	 * may be handed out now, or it would overtake (and duplicate) that delivery. */
	ck_assert_uint_eq(coll_wait(&c, 3, 3000), 2);
	settle_all(&ch, &c);
	/* Settled: the partition goes on from its committed offset, in order. */
	ck_assert_uint_eq(coll_wait(&c, 3, WAIT_MS), 3);
	snprintf(id, sizeof(id), "p%d-0", mine);
	ck_assert_str_eq(coll_id(&c, 2), id);
	atomic_store(&other.stop, 1);
	pthread_join(other.thread, NULL);
	rd_kafka_consumer_close(other.rk);
	rd_kafka_destroy(other.rk);
	/* Closed before the collector lets go: a settle now would hand out the next record, which
	 * could arrive after the collector was emptied and stay referenced. */
	chan_close(&ch);
	coll_free(&c);
}
END_TEST

START_TEST(test_after_a_rebalance_only_the_settled_prefix_is_committed_and_late_settles_are_ignored)
{
	const char *topic = "knative-broker-kafka-k9";
	struct chan ch;
	struct coll c;
	rd_kafka_t *other;
	int64_t first[2] = {-1, -1};
	char id[32];
	struct timespec t0, t;

	mock_cmd("topic knative-broker-kafka-k9 2");
	chan_open(&ch, "k9",
	          (const char *const[]){"librdkafka.session.timeout.ms", "6000",
	                                "librdkafka.heartbeat.interval.ms", "500", NULL});
	chan_sub(&ch, "k9", 100, false, &c);
	chan_start(&ch);
	for (int p = 0; p < 2; p++) {
		for (int o = 0; o < 5; o++) {
			snprintf(id, sizeof(id), "p%d-%d", p, o);
			raw_produce(topic, p, "x",
			            (const char *const[]){"ce_specversion", "1.0", "ce_id", id,
			                                  "ce_type", "t", "ce_source", "/s", NULL});
		}
	}
	ck_assert_uint_eq(coll_wait(&c, 10, WAIT_MS), 10);
	/* Settle everything but p0-2 and p1-0: partition 0 may commit up to offset 2, partition 1
	 * nothing, whatever was settled after the gaps. */
	for (size_t i = 0; i < 10; i++)
		if (strcmp(coll_id(&c, i), "p0-2") && strcmp(coll_id(&c, i), "p1-0"))
			settle(&ch, &c, i, CEB_SETTLE_DONE);
	usleep(1500 * 1000); /* an auto-commit interval */

	/* A second member joins the group: the eager protocol revokes both partitions, then gives
	 * one to each. */
	other = other_member("knative-trigger-kafka-k9", topic);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(other, 100);
		if (m && !m->err && first[m->partition] < 0)
			first[m->partition] = m->offset;
		if (m)
			rd_kafka_message_destroy(m);
		if (first[0] >= 0 || first[1] >= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_int_lt(t.tv_sec - t0.tv_sec, 30);
	}
	/* Whichever partition the newcomer got, it starts at the first record never settled. */
	if (first[0] >= 0)
		ck_assert_int_eq(first[0], 2);
	if (first[1] >= 0)
		ck_assert_int_eq(first[1], 0);
	/* The late settles concern partitions this consumer may no longer own: ignored, no crash,
	 * and the credit comes back. */
	for (size_t i = 0; i < 10; i++)
		if (!c.settled[i])
			settle(&ch, &c, i, CEB_SETTLE_DONE);
	rd_kafka_consumer_close(other);
	rd_kafka_destroy(other);
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("channel_kafka");
	TCase *tc = tcase_create("contract");
	TCase *tk = tcase_create("kafka");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	ceb_log_setup(CEB_LOGLEVEL_WARN, 0);
	mock_start();
	tcase_set_timeout(tc, 120);
	contract_add_tests(tc, &kafka);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tk, 120);
	tcase_add_checked_fixture(tk, mock_reset, NULL);
	tcase_add_test(tk, test_kafka_backend_is_found_by_name_and_broker_class);
	tcase_add_test(tk, test_configuration_errors_name_the_configmap_and_the_key);
	tcase_add_test(tk, test_secret_values_never_reach_the_log_or_an_error);
	tcase_add_test(tk, test_records_follow_the_kafka_binding_in_binary_mode);
	tcase_add_test(tk, test_binary_and_structured_records_of_other_producers_become_events);
	tcase_add_test(tk, test_records_that_are_not_cloudevents_are_skipped_and_committed);
	tcase_add_test(
	        tk,
	        test_a_new_subscription_starts_at_the_end_and_misses_nothing_accepted_after_start);
	tcase_add_test(tk, test_ordered_subscription_hands_one_record_per_partition_at_a_time);
	tcase_add_test(tk, test_publish_is_refused_when_kafka_does_not_confirm_in_time);
	tcase_add_test(tk, test_produce_errors_are_retried_without_duplicates_in_the_topic);
	tcase_add_test(tk,
	               test_a_confirmation_later_than_the_timeout_is_a_503_and_never_a_duplicate);
	tcase_add_test(tk,
	               test_stop_refuses_publishes_hands_out_nothing_more_and_still_takes_settles);
	tcase_add_test(
	        tk,
	        test_after_a_rebalance_only_the_settled_prefix_is_committed_and_late_settles_are_ignored);
	tcase_add_test(
	        tk,
	        test_ordered_partition_got_back_waits_for_the_deliveries_of_its_previous_assignment);
	suite_add_tcase(s, tk);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	mock_stop();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
