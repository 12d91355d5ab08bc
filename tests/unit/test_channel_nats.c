/* The channel contract suite against the NATS JetStream backend on a real nats-server -js (started
 * once for the program), plus what only NATS does: the stream and consumer names, the binding on
 * the wire as another client reads it, messages of other publishers, settings errors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "broker/error.h"
#include "broker/ce/event.h"
#include "channels/nats/kinds.h"
#include "channel_contract.h"
#include "nats_fixture.h"

static struct nats_broker contract_broker;

static void nats_cfg(struct ceb_channel_cfg *cfg, const char *name)
{
	(void)name;
	cfg->spec = nats_broker_make(&contract_broker);
}

static const struct contract_backend nats_be = {
        .ops = &ceb_channel_nats,
        .setup_cfg = nats_cfg,
        .bounded = 0,
        .wait_ms = NATS_WAIT_MS,
};

START_TEST(test_nats_backend_is_found_by_name_and_broker_class)
{
	ck_assert_ptr_eq(ceb_channel_ops_find("nats"), &ceb_channel_nats);
	ck_assert_str_eq(ceb_channel_for_class("NatsJetStreamBroker"), "nats");
	ck_assert(ceb_channel_nats.flags & CEB_CHANNEL_DURABLE);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("channel_nats");
	TCase *tc = tcase_create("contract");
	TCase *tn = tcase_create("nats");
	SRunner *sr;
	int failed;

	nats_server_start();
	contract_add_tests(tc, &nats_be);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tn, 120);
	tcase_add_test(tn, test_nats_backend_is_found_by_name_and_broker_class);
	suite_add_tcase(s, tn);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nats_server_stop();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
