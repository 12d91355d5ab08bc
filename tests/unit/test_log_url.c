/* URLs as logs, errors and dead-letter extensions show them: the userinfo hidden, the rest kept as
 * it was, whatever characters the path and query hold. And the log header lives beside <syslog.h>,
 * which a syslog or journald output will include: no macro of ours may collide with its LOG_*. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "broker/log.h"

static void assert_shown(const char *url, const char *want)
{
	char buf[256];

	ck_assert_str_eq(ceb_log_url(url, buf, sizeof(buf)), want);
}

START_TEST(test_the_log_macros_leave_syslog_names_alone)
{
	/* With a collision this file would not compile ("redefined"), or LOG_ERR would not be 3. */
	ck_assert_int_eq(LOG_ERR, 3);
	ck_assert_int_eq(LOG_WARNING, 4);
	ck_assert_int_eq(LOG_INFO, 6);
	ck_assert_int_eq(LOG_DEBUG, 7);
	CEB_LOG_DEBUG("test", "%s", "never shown at the default level");
}
END_TEST

START_TEST(test_a_user_and_password_are_hidden)
{
	assert_shown("http://alice:s3cret@example.com:8080/hook?x=1",
	             "http://***@example.com:8080/hook?x=1");
	assert_shown("https://token@example.com/", "https://***@example.com/");
	assert_shown("http://@example.com", "http://***@example.com");
	assert_shown("http://u:p@[::1]:9/x", "http://***@[::1]:9/x");
}
END_TEST

START_TEST(test_a_password_holding_an_at_sign_is_hidden_whole)
{
	assert_shown("http://alice:p@ss@example.com/x", "http://***@example.com/x");
}
END_TEST

START_TEST(test_a_url_without_userinfo_is_returned_as_it_is)
{
	const char *url = "http://example.com/users/@me?mail=a@b#c@d";
	char buf[8];

	ck_assert_ptr_eq(ceb_log_url(url, buf, sizeof(buf)), url);
	url = "/path/http://a@b";
	ck_assert_ptr_eq(ceb_log_url(url, buf, sizeof(buf)), url);
	url = "example.com";
	ck_assert_ptr_eq(ceb_log_url(url, buf, sizeof(buf)), url);
}
END_TEST

START_TEST(test_a_short_buffer_cuts_the_url_never_shows_the_secret)
{
	const char *url = "http://alice:s3cret@example.com/a/long/path";
	char buf[20], big[64];

	ck_assert_str_eq(ceb_log_url(url, buf, sizeof(buf)), "http://***@example.");
	ck_assert_str_eq(ceb_log_url(url, buf, 0), "***");
	/* strlen(url) + 4 always holds it all, even for the shortest userinfo. */
	url = "http://@h";
	memset(big, 'x', sizeof(big));
	ck_assert_str_eq(ceb_log_url(url, big, strlen(url) + 4), "http://***@h");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log_url");
	TCase *tc = tcase_create("redaction");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_the_log_macros_leave_syslog_names_alone);
	tcase_add_test(tc, test_a_user_and_password_are_hidden);
	tcase_add_test(tc, test_a_password_holding_an_at_sign_is_hidden_whole);
	tcase_add_test(tc, test_a_url_without_userinfo_is_returned_as_it_is);
	tcase_add_test(tc, test_a_short_buffer_cuts_the_url_never_shows_the_secret);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
