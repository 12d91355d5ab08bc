/* The per-client rate limiter: bursts, refill over time, clients independent, bounded table. */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ratelimit.h"

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in in;

	memset(&in, 0, sizeof(in));
	in.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &in.sin_addr);
	return in;
}

START_TEST(test_a_client_gets_its_burst_then_is_refused_with_a_retry_after)
{
	struct ceb_ratelimit *rl = ceb_ratelimit_new(10, 5, 64);
	struct sockaddr_in a = v4("192.0.2.1");
	unsigned ra = 0;

	for (int i = 0; i < 5; i++)
		ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 1000, &ra));
	ck_assert(!ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 1000, &ra));
	ck_assert_uint_eq(ra, 1);
	ceb_ratelimit_free(rl);
}
END_TEST

START_TEST(test_tokens_come_back_at_the_configured_rate)
{
	struct ceb_ratelimit *rl = ceb_ratelimit_new(10, 1, 64);
	struct sockaddr_in a = v4("192.0.2.1");
	unsigned ra;

	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 0, &ra));
	ck_assert(!ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 50, &ra));
	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 100, &ra));
	ck_assert(!ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 100, &ra));
	ceb_ratelimit_free(rl);
}
END_TEST

START_TEST(test_slow_rates_ask_for_a_longer_wait)
{
	struct ceb_ratelimit *rl = ceb_ratelimit_new(0.2, 1, 64);
	struct sockaddr_in a = v4("192.0.2.1");
	unsigned ra = 0;

	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 0, &ra));
	ck_assert(!ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 0, &ra));
	ck_assert_uint_eq(ra, 5);
	ceb_ratelimit_free(rl);
}
END_TEST

START_TEST(test_clients_are_limited_independently)
{
	struct ceb_ratelimit *rl = ceb_ratelimit_new(1, 1, 4096);
	struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct sockaddr_in6 c;
	unsigned ra;

	memset(&c, 0, sizeof(c));
	c.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &c.sin6_addr);
	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 0, &ra));
	ck_assert(!ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 0, &ra));
	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&b, 0, &ra));
	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&c, 0, &ra));
	ck_assert(!ceb_ratelimit_allow(rl, (struct sockaddr *)&c, 0, &ra));
	ceb_ratelimit_free(rl);
}
END_TEST

START_TEST(test_a_full_table_never_grows_and_errs_towards_letting_through)
{
	struct ceb_ratelimit *rl = ceb_ratelimit_new(1, 1, 1);
	struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
	unsigned ra;

	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 0, &ra));
	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&b, 0, &ra)); /* takes a's slot */
	ck_assert(ceb_ratelimit_allow(rl, (struct sockaddr *)&a, 0, &ra)); /* a starts afresh */
	ceb_ratelimit_free(rl);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("buckets");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_a_client_gets_its_burst_then_is_refused_with_a_retry_after);
	tcase_add_test(tc, test_tokens_come_back_at_the_configured_rate);
	tcase_add_test(tc, test_slow_rates_ask_for_a_longer_wait);
	tcase_add_test(tc, test_clients_are_limited_independently);
	tcase_add_test(tc, test_a_full_table_never_grows_and_errs_towards_letting_through);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
