/* RabbitmqSource: the source contract suite against it (the real daemon, messages in a private
 * rabbitmq-server), and its place in the sources family. What the source makes of each kind of
 * message is checked end to end with an independent client (tests/integration/
 * test_rabbitmq_broker.py). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "broker/log.h"
#include "channels/amqp/kinds.h"
#include "sources/source.h"
#include "tests/unit/amqp_fixture.h"
#include "source_contract.h"

extern const struct source_ops ceb_source_amqp;

/* ---- the contract's driver: one exchange and one queue per source ---- */

static void amqp_prepare(void *arg, const char *name)
{
	amqp_connection_state_t cli = rmq_client();
	amqp_table_entry_t q[2] = {
	        {.key = amqp_cstring_bytes("x-queue-type"),
	         .value = {.kind = AMQP_FIELD_KIND_UTF8,
	                   .value.bytes = amqp_cstring_bytes("quorum")}},
	        {.key = amqp_cstring_bytes("x-single-active-consumer"),
	         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}}};
	amqp_table_entry_t b = {
	        .key = amqp_cstring_bytes("x-match"),
	        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("all")}};
	char queue[128], exchange[128];

	(void)arg;
	/* as the source declares them (parallelism 1: one active consumer), so that inputs fed
	 * before the first daemon runs are kept */
	snprintf(queue, sizeof(queue), "contract.%s", name);
	snprintf(exchange, sizeof(exchange), "contract.%s.x", name);
	amqp_exchange_declare(cli, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("headers"),
	                      0, 1, 0, 0, amqp_empty_table);
	ck_assert_int_eq(amqp_get_rpc_reply(cli).reply_type, AMQP_RESPONSE_NORMAL);
	amqp_queue_declare(cli, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, (amqp_table_t){2, q});
	ck_assert_int_eq(amqp_get_rpc_reply(cli).reply_type, AMQP_RESPONSE_NORMAL);
	amqp_queue_bind(cli, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
	                amqp_empty_bytes, (amqp_table_t){1, &b});
	ck_assert_int_eq(amqp_get_rpc_reply(cli).reply_type, AMQP_RESPONSE_NORMAL);
	rmq_client_close(cli);
}

static void amqp_resource(void *arg, const char *name, const char *spec, char *out, size_t outlen)
{
	size_t n;

	(void)arg;
	n = (size_t)snprintf(out, outlen,
	                     "apiVersion: v1\n"
	                     "kind: Secret\n"
	                     "metadata:\n"
	                     "  name: rmq-%s\n"
	                     "  namespace: %s\n"
	                     "stringData:\n"
	                     "  uri: amqp://127.0.0.1:%d\n"
	                     "  username: guest\n"
	                     "  password: guest\n"
	                     "---\n"
	                     "apiVersion: sources.knative.dev/v1alpha1\n"
	                     "kind: RabbitmqSource\n"
	                     "metadata:\n"
	                     "  name: %s\n"
	                     "  namespace: %s\n"
	                     "spec:\n"
	                     "  rabbitmqClusterReference:\n"
	                     "    connectionSecret:\n"
	                     "      name: rmq-%s\n"
	                     "  rabbitmqResourcesConfig:\n"
	                     "    queueName: contract.%s\n"
	                     "    exchangeName: contract.%s.x\n"
	                     "%s---\n",
	                     name, SOURCE_CONTRACT_NS, rmq_port, name, SOURCE_CONTRACT_NS, name,
	                     name, name, spec);
	ck_assert_uint_lt(n, outlen);
}

static int amqp_feed(void *arg, const char *name, const char *url, int n)
{
	static int seq;
	amqp_connection_state_t cli = rmq_client();
	char exchange[128], value[64], id[64];

	(void)arg;
	(void)url;
	snprintf(exchange, sizeof(exchange), "contract.%s.x", name);
	for (int i = 0; i < n; i++) {
		/* with a message_id, as producers that want a stable id set it (the event's id is a
		 * new UUID at each delivery of a message without one, as in eventing-rabbitmq) */
		snprintf(value, sizeof(value), "{\"input\": %d}", ++seq);
		snprintf(id, sizeof(id), "input-%d", seq);
		rmq_publish(cli, exchange, "", "application/json", id, NULL, 0, value);
	}
	rmq_client_close(cli);
	return 0;
}

static const struct source_driver amqp_source = {
        .kind = "RabbitmqSource",
        .durable = true,
        .wait_ms = 30000,
        /* a message is handed out within milliseconds; acks are sent when settled */
        .quiet_ms = 1500,
        .prepare = amqp_prepare,
        .resource = amqp_resource,
        .feed = amqp_feed,
};

/* ---- RabbitmqSource's own cases ---- */

START_TEST(test_rabbitmq_source_is_found_by_kind_and_hands_its_consume_only_channel)
{
	struct ceb_rabbitmq_source_cfg src;
	struct ceb_source_cfg sc = {.kind = "RabbitmqSource", .ns = "amqp", .name = "ops"};
	struct ceb_source_env env = {.label = "rabbitmqsource amqp/ops"};
	const struct source_ops *ops = ceb_source_ops_find("RabbitmqSource");
	struct ceb_channel *ch;
	char err[512];
	void *ctx = NULL;

	rmq_source_cfg(&src, "ops", 1);
	sc.own = &src;
	ck_assert_ptr_eq(ops, &ceb_source_amqp);
	ck_assert_str_eq(ops->label, "rabbitmqsource");
	ck_assert_msg(ops->create(&sc, &env, &ctx, err, sizeof(err)) == 0, "create: %s", err);
	ch = ops->channel(ctx);
	ck_assert_ptr_nonnull(ch);
	ck_assert_ptr_eq(ch->ops, &ceb_channel_amqp);
	ops->destroy(ctx);
}
END_TEST

int main(void)
{
	Suite *units = suite_create("source_amqp");
	Suite *contract = suite_create("source_amqp_contract");
	TCase *tu = tcase_create("rabbitmqsource");
	TCase *tc = tcase_create("contract");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	ceb_log_setup(CEB_LOGLEVEL_WARN, 0);
	rmq_start();
	tcase_add_test(tu,
	               test_rabbitmq_source_is_found_by_kind_and_hands_its_consume_only_channel);
	suite_add_tcase(units, tu);
	sr = srunner_create(units);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	/* The contract runs the daemon against a sink server in this process: no fork. */
	source_contract_add_tests(tc, &amqp_source);
	suite_add_tcase(contract, tc);
	sr = srunner_create(contract);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed += srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
