/* The channel contract suite against the memory backend, plus what only the memory channel does. */
#include <check.h>
#include <stdlib.h>

#include "channel_contract.h"

extern const struct channel_ops ceb_channel_memory;

static void memory_cfg(struct ceb_channel_cfg *cfg, const char *name)
{
	cfg->max_events = 1000;
	cfg->max_bytes = 1 << 20;
}

static const struct contract_backend memory = {
        .ops = &ceb_channel_memory,
        .setup_cfg = memory_cfg,
        .bounded = 1,
        .wait_ms = 2000,
};

START_TEST(test_memory_backend_is_found_by_name_and_broker_class)
{
	ck_assert_ptr_eq(ceb_channel_ops_find("memory"), &ceb_channel_memory);
	ck_assert_str_eq(ceb_channel_for_class("MTChannelBasedBroker"), "memory");
	ck_assert_str_eq(ceb_channel_for_class("Kafka"), "kafka");
	ck_assert_ptr_null(ceb_channel_for_class("NoSuchBroker"));
	ck_assert_ptr_null(ceb_channel_ops_find("carrier-pigeon"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("channel_memory");
	TCase *tc = tcase_create("contract");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 30);
	contract_add_tests(tc, &memory);
	tcase_add_test(tc, test_memory_backend_is_found_by_name_and_broker_class);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
