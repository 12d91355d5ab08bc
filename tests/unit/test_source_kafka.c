/* KafkaSource: the source contract suite against it (the real daemon, records in librdkafka's mock
 * cluster, tests/tools/kafka_mock), and what only a KafkaSource does: records mapped to events as
 * Knative maps them, initialOffset, its place in the sources family. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/log.h"
#include "channels/kafka/kinds.h"
#include "sources/source.h"
#include "kafka_fixture.h"
#include "source_contract.h"

extern const struct source_ops ceb_source_kafka;

/* ---- the contract's driver: one topic and one consumer group per source ---- */

static void kafka_prepare(void *arg, const char *name)
{
	char cmd[256];

	(void)arg;
	/* One partition: inputs are read in the order they were fed. */
	snprintf(cmd, sizeof(cmd), "topic contract-%s 1", name);
	mock_cmd(cmd);
}

static void kafka_resource(void *arg, const char *name, const char *spec, char *out, size_t outlen)
{
	size_t n = 0;

	(void)arg;
	n += (size_t)snprintf(out + n, outlen - n,
	                      "apiVersion: sources.knative.dev/v1beta1\n"
	                      "kind: KafkaSource\n"
	                      "metadata:\n"
	                      "  name: %s\n"
	                      "  namespace: %s\n"
	                      "spec:\n"
	                      "  bootstrapServers:\n",
	                      name, SOURCE_CONTRACT_NS);
	for (const char *b = bootstrap; *b && n < outlen;) {
		size_t len = strcspn(b, ",");
		n += (size_t)snprintf(out + n, outlen - n, "  - %.*s\n", (int)len, b);
		b += len + (b[len] == ',');
	}
	if (n < outlen)
		n += (size_t)snprintf(out + n, outlen - n,
		                      "  topics:\n"
		                      "  - contract-%s\n"
		                      "  consumerGroup: contract-%s\n"
		                      "  initialOffset: earliest\n"
		                      "%s---\n",
		                      name, name, spec);
	ck_assert_uint_lt(n, outlen);
}

static int kafka_feed(void *arg, const char *name, const char *url, int n)
{
	static int seq;
	char topic[128], value[64];

	(void)arg;
	(void)url;
	snprintf(topic, sizeof(topic), "contract-%s", name);
	for (int i = 0; i < n; i++) {
		snprintf(value, sizeof(value), "{\"input\": %d}", ++seq);
		raw_produce(topic, 0, value, NULL);
	}
	return 0;
}

static const struct source_driver kafka_source = {
        .kind = "KafkaSource",
        .durable = true,
        /* a consumer group's first join takes 3 s on the mock; after a SIGKILL the dead member
         * holds the partition for its session timeout (10 s) */
        .wait_ms = 60000,
        /* records are fetched within fetch.wait.max.ms (500 ms) of being produced, offsets
         * committed every auto.commit.interval.ms (1 s) */
        .quiet_ms = 3000,
        .prepare = kafka_prepare,
        .resource = kafka_resource,
        .feed = kafka_feed,
};

/* ---- KafkaSource's own cases ---- */

START_TEST(test_kafka_source_is_found_by_kind_and_hands_its_consume_only_channel)
{
	static char *topics[] = {"src-ops"};
	struct ceb_kafka_source_cfg ks = {
	        .ns = "kafka",
	        .name = "ops",
	        .bootstrap = bootstrap,
	        .topics = topics,
	        .ntopics = 1,
	        .group = "g-ops",
	};
	struct ceb_source_cfg sc = {
	        .kind = "KafkaSource", .ns = "kafka", .name = "ops", .own = &ks};
	struct ceb_source_env env = {.label = "kafkasource kafka/ops"};
	const struct source_ops *ops = ceb_source_ops_find("KafkaSource");
	struct pubwait pw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	struct ceb_event *ev = event("x", NULL);
	struct ceb_channel *ch;
	struct coll c = {.n = 0};
	char err[512];
	void *ctx = NULL, *sub = NULL;

	ck_assert_ptr_eq(ops, &ceb_source_kafka);
	ck_assert_str_eq(ops->label, "kafkasource");
	ck_assert_ptr_null(ceb_source_ops_find("NoSuchSource"));
	ck_assert_msg(ops->create(&sc, &env, &ctx, err, sizeof(err)) == 0, "create: %s", err);
	/* its own channel, of the Kafka backend, durable: the daemon makes none for it */
	ch = ops->channel(ctx);
	ck_assert_ptr_nonnull(ch);
	ck_assert_ptr_eq(ch->ops, &ceb_channel_kafka);
	ck_assert(ceb_channel_has(ch, CEB_CHANNEL_DURABLE));
	/* one subscription (the daemon's, to the sink), and nothing to publish */
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	ck_assert_int_eq(ch->ops->subscribe(ch->ctx,
	                                    &(struct ceb_sub_cfg){.ns = "kafka",
	                                                          .name = "ops",
	                                                          .max_inflight = 1,
	                                                          .on_msg = coll_on_msg,
	                                                          .arg = &c},
	                                    &sub),
	                 0);
	ck_assert_int_eq(ch->ops->subscribe(ch->ctx,
	                                    &(struct ceb_sub_cfg){.ns = "kafka",
	                                                          .name = "second",
	                                                          .max_inflight = 1,
	                                                          .on_msg = coll_on_msg,
	                                                          .arg = &c},
	                                    &(void *){NULL}),
	                 CEB_ESTATE);
	ch->ops->publish(ch->ctx, ev, pub_done, &pw);
	ck_assert_int_eq(pw.calls, 1);
	ck_assert_int_eq(pw.status, CEB_EUNAVAIL);
	ceb_event_unref(ev);
	/* stop before start, then destroy: both fine; destroy takes NULL */
	ops->stop(ctx);
	ops->destroy(ctx);
	ops->destroy(NULL);
}
END_TEST

static void source_open(struct chan *ch, struct ceb_kafka_source_cfg *src, struct coll *c)
{
	struct ceb_channel_cfg cfg = {
	        .ns = src->ns, .name = src->name, .kind = CEB_KAFKA_SOURCE_KIND, .spec = src};
	char err[512];

	memset(ch, 0, sizeof(*ch));
	ch->ch.ops = &ceb_channel_kafka;
	ck_assert_msg(ch->ch.ops->create(&cfg, &ch->ch.ctx, err, sizeof(err)) == 0, "create: %s",
	              err);
	chan_sub(ch, src->name, 10, src->ordered, c);
	/* a source takes one subscription, and publishes nothing */
	ck_assert_int_eq(ch->ch.ops->subscribe(ch->ch.ctx,
	                                       &(struct ceb_sub_cfg){.ns = "kafka",
	                                                             .name = "second",
	                                                             .max_inflight = 1,
	                                                             .on_msg = coll_on_msg,
	                                                             .arg = c},
	                                       &(void *){NULL}),
	                 CEB_ESTATE);
}

static const char *attr(struct coll *c, size_t i, const char *name)
{
	const struct ceb_attr *a = ceb_event_get(c->evs[i], name);
	return a ? a->value : "(none)";
}

START_TEST(test_a_kafka_source_maps_plain_records_keys_and_headers_as_knative_does)
{
	static char *topics[] = {"src-keys"};
	static char *ext_k[] = {"origin"}, *ext_v[] = {"kafka-lab"};
	struct ceb_kafka_source_cfg ints = {
	        .ns = "kafka",
	        .name = "ints",
	        .bootstrap = bootstrap,
	        .topics = topics,
	        .ntopics = 1,
	        .group = "g-ints",
	        .earliest = true,
	        .ordered = true,
	        .key_type = CEB_KEY_INT,
	        .ce_ext_keys = ext_k,
	        .ce_ext_values = ext_v,
	        .nce_ext = 1,
	};
	struct ceb_kafka_source_cfg floats = ints, bytes = ints;
	struct chan ci, cf, cb;
	struct coll c_int, c_float, c_bytes;
	const unsigned char k4[] = {0xff, 0xff, 0xff, 0xfe}, k8[] = {0, 0, 0, 1, 0, 0, 0, 0},
	                    k3[] = {1, 2, 3},
	                    kd[] = {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18};
	const void *data;
	size_t len;

	floats.name = "floats";
	floats.group = "g-floats";
	floats.key_type = CEB_KEY_FLOAT;
	floats.nce_ext = 0;
	bytes.name = "bytes";
	bytes.group = "g-bytes";
	bytes.key_type = CEB_KEY_BYTES;
	bytes.nce_ext = 0;
	mock_cmd("topic src-keys 1");
	raw_produce_key("src-keys", 0, k4, 4, "{\"n\": 1}",
	                (const char *const[]){"X-Trace_ID", "t-1", "bin", "\x01\x02", NULL});
	raw_produce_key("src-keys", 0, k8, 8, "plain text", NULL);
	raw_produce_key("src-keys", 0, k3, 3, "odd key", NULL);
	raw_produce_key("src-keys", 0, kd, 8, "pi",
	                (const char *const[]){"content-type", "text/x-pi", NULL});
	/* claims to be a CloudEvent (ce_specversion) but has no id: sent as a plain record */
	raw_produce("src-keys", 0, "half",
	            (const char *const[]){"ce_specversion", "1.0", "ce_type", "t", NULL});
	source_open(&ci, &ints, &c_int);
	source_open(&cf, &floats, &c_float);
	source_open(&cb, &bytes, &c_bytes);
	chan_start(&ci);
	chan_start(&cf);
	chan_start(&cb);
	/* ordered: one record at a time per partition, so settle as they come */
	for (size_t i = 0; i < 5; i++) {
		ck_assert_uint_eq(coll_wait(&c_int, i + 1, WAIT_MS), i + 1);
		settle(&ci, &c_int, i, CEB_SETTLE_DONE);
		ck_assert_uint_eq(coll_wait(&c_float, i + 1, WAIT_MS), i + 1);
		settle(&cf, &c_float, i, CEB_SETTLE_DONE);
		ck_assert_uint_eq(coll_wait(&c_bytes, i + 1, WAIT_MS), i + 1);
		settle(&cb, &c_bytes, i, CEB_SETTLE_DONE);
	}
	ck_assert_str_eq(attr(&c_int, 0, "type"), "dev.knative.kafka.event");
	ck_assert_str_eq(attr(&c_int, 0, "source"),
	                 "/apis/v1/namespaces/kafka/kafkasources/ints#src-keys");
	ck_assert_str_eq(attr(&c_int, 0, "id"), "partition:0/offset:0");
	ck_assert_str_eq(attr(&c_int, 0, "subject"), "partition:0#0");
	ck_assert_str_eq(attr(&c_int, 0, "datacontenttype"), "application/json");
	ck_assert(ceb_event_data_flags(c_int.evs[0]) & CEB_DATA_JSON);
	ck_assert_int_eq(ceb_event_get(c_int.evs[0], "key")->type, CEB_TYPE_INTEGER);
	ck_assert_str_eq(attr(&c_int, 0, "key"), "-2");
	ck_assert_str_eq(attr(&c_int, 0, "kafkaheaderxtraceid"), "t-1");
	/* a header value that is no CloudEvents String goes as base64 */
	ck_assert_int_eq(ceb_event_get(c_int.evs[0], "kafkaheaderbin")->type, CEB_TYPE_BINARY);
	ck_assert_str_eq(attr(&c_int, 0, "kafkaheaderbin"), "AQI=");
	ck_assert_str_eq(attr(&c_int, 0, "origin"), "kafka-lab");
	{
		char verr[256];
		ck_assert_msg(ceb_event_validate(c_int.evs[0], NULL, verr, sizeof(verr)) == 0, "%s",
		              verr);
	}
	ck_assert_str_eq(attr(&c_int, 1, "key"), "4294967296");
	ck_assert_str_eq(attr(&c_int, 1, "datacontenttype"), "(none)");
	data = ceb_event_data(c_int.evs[1], &len);
	ck_assert_int_eq((int)len, 10);
	ck_assert_int_eq(memcmp(data, "plain text", len), 0);
	ck_assert_str_eq(attr(&c_int, 2, "key"), "AQID"); /* 3 bytes: no int, byte-array */
	ck_assert_str_eq(attr(&c_int, 0, "partitionkey"), "-2");
	ck_assert_str_eq(attr(&c_int, 3, "datacontenttype"), "text/x-pi");
	ck_assert_str_eq(attr(&c_int, 3, "kafkaheadercontenttype"), "(none)");
	ck_assert_str_eq(attr(&c_int, 4, "type"), "dev.knative.kafka.event");
	ck_assert_str_eq(attr(&c_int, 4, "kafkaheadercetype"), "t");
	ck_assert_str_eq(attr(&c_int, 4, "key"), "(none)");
	ck_assert_str_eq(attr(&c_float, 3, "key"), "3.1415926535897931");
	ck_assert_str_eq(attr(&c_float, 3, "origin"), "(none)");
	ck_assert_str_eq(attr(&c_bytes, 0, "key"), "/////g==");
	ck_assert_str_eq(attr(&c_bytes, 0, "source"),
	                 "/apis/v1/namespaces/kafka/kafkasources/bytes#src-keys");
	/* a source publishes nothing */
	{
		struct pubwait pw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
		struct ceb_event *ev = event("x", NULL);
		ci.ch.ops->publish(ci.ch.ctx, ev, pub_done, &pw);
		ck_assert_int_eq(pw.calls, 1);
		ck_assert_int_eq(pw.status, CEB_EUNAVAIL);
		ceb_event_unref(ev);
	}
	coll_free(&c_int);
	coll_free(&c_float);
	coll_free(&c_bytes);
	ci.ch.ops->destroy(ci.ch.ctx);
	cf.ch.ops->destroy(cf.ch.ctx);
	cb.ch.ops->destroy(cb.ch.ctx);
}
END_TEST

START_TEST(test_a_kafka_source_with_initial_offset_latest_starts_at_the_end)
{
	static char *topics[] = {"src-late-a", "src-late-b"};
	struct ceb_kafka_source_cfg late = {
	        .ns = "kafka",
	        .name = "late",
	        .bootstrap = bootstrap,
	        .topics = topics,
	        .ntopics = 2,
	        .group = "g-late",
	};
	struct chan ch;
	struct coll c;

	mock_cmd("topic src-late-a 2");
	mock_cmd("topic src-late-b 1");
	raw_produce("src-late-a", 0, "old", NULL);
	source_open(&ch, &late, &c);
	chan_start(&ch);
	/* started: what comes now is read, on either topic, whenever the group joins */
	raw_produce("src-late-b", 0, "new-b", NULL);
	raw_produce("src-late-a", 0, "new-a", NULL);
	ck_assert_uint_eq(coll_wait(&c, 2, WAIT_MS), 2);
	ck_assert_uint_eq(coll_wait(&c, 3, 2000), 2);
	for (size_t i = 0; i < 2; i++) {
		size_t len;
		const char *d = ceb_event_data(c.evs[i], &len);
		ck_assert(len == 5 && (memcmp(d, "new-a", 5) == 0 || memcmp(d, "new-b", 5) == 0));
	}
	settle_all(&ch, &c);
	coll_free(&c);
	ch.ch.ops->destroy(ch.ch.ctx);
}
END_TEST

int main(void)
{
	Suite *units = suite_create("source_kafka");
	Suite *contract = suite_create("source_kafka_contract");
	TCase *tk = tcase_create("kafkasource");
	TCase *tc = tcase_create("contract");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	ceb_log_setup(CEB_LOGLEVEL_WARN, 0);
	mock_start();
	tcase_set_timeout(tk, 120);
	tcase_add_checked_fixture(tk, mock_reset, NULL);
	tcase_add_test(tk, test_kafka_source_is_found_by_kind_and_hands_its_consume_only_channel);
	tcase_add_test(tk, test_a_kafka_source_maps_plain_records_keys_and_headers_as_knative_does);
	tcase_add_test(tk, test_a_kafka_source_with_initial_offset_latest_starts_at_the_end);
	suite_add_tcase(units, tk);
	sr = srunner_create(units);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	/* The contract runs the daemon against a sink server in this process: no fork. */
	source_contract_add_tests(tc, &kafka_source);
	suite_add_tcase(contract, tc);
	sr = srunner_create(contract);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed += srunner_ntests_failed(sr);
	srunner_free(sr);
	mock_stop();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
