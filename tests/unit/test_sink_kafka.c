/* KafkaSink, the produce-only kind of the Kafka family: what it writes to its topic, read back with
 * a plain librdkafka client from librdkafka's mock cluster (tests/tools/kafka_mock). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/kafka/kinds.h"
#include "kafka_fixture.h"

START_TEST(test_a_kafka_sink_writes_structured_mode_and_refuses_subscriptions)
{
	struct ceb_kafka_sink_cfg snk = {
	        .ns = "kafka",
	        .name = "out",
	        .topic = "sink-structured",
	        .bootstrap = bootstrap,
	        .structured = true,
	};
	struct ceb_channel_cfg cfg = {
	        .ns = "kafka", .name = "out", .kind = CEB_KAFKA_SINK_KIND, .spec = &snk};
	struct ceb_channel ch = {.ops = &ceb_channel_kafka};
	struct coll c;
	struct rawrec r[4];
	char err[512], buf[128];
	void *sub = NULL;
	int n;

	mock_cmd("topic sink-structured 1");
	ck_assert_msg(ch.ops->create(&cfg, &ch.ctx, err, sizeof(err)) == 0, "create: %s", err);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ch.ops->subscribe(ch.ctx,
	                                   &(struct ceb_sub_cfg){.ns = "kafka",
	                                                         .name = "t",
	                                                         .max_inflight = 1,
	                                                         .on_msg = coll_on_msg,
	                                                         .arg = &c},
	                                   &sub),
	                 CEB_ESTATE);
	ck_assert_msg(ch.ops->start(ch.ctx, err, sizeof(err)) == 0, "start: %s", err);
	{
		struct chan wrap = {.ch = ch};
		publish_ok(&wrap, "st-1", "key-1");
	}
	n = raw_read("sink-structured", r, 4, 3000);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(header(&r[0], "content-type", buf, sizeof(buf)),
	                 "application/cloudevents+json; charset=UTF-8");
	ck_assert(strstr(r[0].value, "\"id\":\"st-1\"") != NULL);
	ck_assert_int_eq((int)r[0].keylen, 5);
	ck_assert_int_eq(memcmp(r[0].key, "key-1", 5), 0);
	raw_free(r, n);
	ch.ops->destroy(ch.ctx);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sink_kafka");
	TCase *tk = tcase_create("kafkasink");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	ceb_log_setup(CEB_LOGLEVEL_WARN, 0);
	mock_start();
	tcase_set_timeout(tk, 120);
	tcase_add_checked_fixture(tk, mock_reset, NULL);
	tcase_add_test(tk, test_a_kafka_sink_writes_structured_mode_and_refuses_subscriptions);
	suite_add_tcase(s, tk);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	mock_stop();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
