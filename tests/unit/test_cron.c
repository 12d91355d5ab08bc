/* The cron grammar of PingSource (robfig/cron v3 as Knative configures it): schedules and their next
 * fire times from the reference's own cases (robfig/cron spec_test.go and parser_test.go), time
 * zones and daylight-saving transitions with the clock given to ceb_cron_next (no waiting), and the
 * schedules Knative refuses. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sources/cron.h"

/* "2012-07-09T14:45:00-0400" into Unix seconds; "" is -1 (no next time). */
static int64_t at(const char *s)
{
	struct tm tm = {0};
	int off_h, off_m, sign;
	char c;

	if (!*s)
		return -1;
	ck_assert_int_eq(sscanf(s, "%d-%d-%dT%d:%d:%d%c%2d%2d", &tm.tm_year, &tm.tm_mon,
	                        &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &c, &off_h,
	                        &off_m),
	                 9);
	sign = c == '-' ? -1 : 1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) - sign * (off_h * 3600 + off_m * 60);
}

static const struct {
	const char *from, *spec, *next;
} nexts[] = {
        /* simple cases */
        {"2012-07-09T14:45:00+0000", "TZ=UTC 0 0/15 * * * *", "2012-07-09T15:00:00+0000"},
        {"2012-07-09T14:59:00+0000", "TZ=UTC 0 0/15 * * * *", "2012-07-09T15:00:00+0000"},
        {"2012-07-09T14:59:59+0000", "TZ=UTC 0 0/15 * * * *", "2012-07-09T15:00:00+0000"},
        /* 5 fields: minute first, seconds 0 */
        {"2012-07-09T14:45:10+0000", "TZ=UTC */15 * * * *", "2012-07-09T15:00:00+0000"},
        /* wrap around hours (robfig's older 5-field cases had seconds first and no dow: a
	 * trailing * makes them the same schedule in v3's grammar) */
        {"2012-07-09T15:45:00+0000", "TZ=UTC 0 20-35/15 * * * *", "2012-07-09T16:20:00+0000"},
        /* wrap around days */
        {"2012-07-09T23:46:00+0000", "TZ=UTC 0 */15 * * * *", "2012-07-10T00:00:00+0000"},
        {"2012-07-09T23:45:00+0000", "TZ=UTC 0 20-35/15 * * * *", "2012-07-10T00:20:00+0000"},
        {"2012-07-09T23:35:51+0000", "TZ=UTC 15/35 20-35/15 * * * *", "2012-07-10T00:20:15+0000"},
        {"2012-07-09T23:35:51+0000", "TZ=UTC 15/35 20-35/15 1/2 * * *", "2012-07-10T01:20:15+0000"},
        {"2012-07-09T23:35:51+0000", "TZ=UTC 15/35 20-35/15 10-12 * * *",
         "2012-07-10T10:20:15+0000"},
        {"2012-07-09T23:35:51+0000", "TZ=UTC 15/35 20-35/15 1/2 */2 * *",
         "2012-07-11T01:20:15+0000"},
        {"2012-07-09T23:35:51+0000", "TZ=UTC 15/35 20-35/15 * 9-20 * *",
         "2012-07-10T00:20:15+0000"},
        {"2012-07-09T23:35:51+0000", "TZ=UTC 15/35 20-35/15 * 9-20 Jul *",
         "2012-07-10T00:20:15+0000"},
        /* wrap around months */
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 0 9 Apr-Oct ?", "2012-08-09T00:00:00+0000"},
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 0 */5 Apr,Aug,Oct Mon",
         "2012-08-01T00:00:00+0000"},
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 0 */5 Oct Mon", "2012-10-01T00:00:00+0000"},
        /* wrap around years */
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 0 * Feb Mon", "2013-02-04T00:00:00+0000"},
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 0 * Feb Mon/2", "2013-02-01T00:00:00+0000"},
        /* wrap around minute, hour, day, month and year */
        {"2012-12-31T23:59:45+0000", "TZ=UTC 0 * * * * *", "2013-01-01T00:00:00+0000"},
        /* leap year */
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 0 29 Feb ?", "2016-02-29T00:00:00+0000"},
        /* unsatisfiable: none within five years */
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 0 30 Feb ?", ""},
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 0 31 Apr ?", ""},
        {"2012-07-09T23:35:00+0000", "TZ=UTC 0 0 30 2 *", ""},
        /* dom and dow: both restricted (a step is), either matches; one a star, both must */
        {"2012-07-14T00:00:30+0000", "TZ=UTC 0 * * 1,15 * Sun", "2012-07-15T00:00:00+0000"},
        {"2012-06-14T23:59:30+0000", "TZ=UTC 0 * * 1,15 * Sun", "2012-06-15T00:00:00+0000"},
        {"2012-07-09T00:00:00+0000", "TZ=UTC 0 0 0 * * Mon", "2012-07-16T00:00:00+0000"},
        {"2012-07-09T00:00:00+0000", "TZ=UTC 0 0 0 */2 * Sun", "2012-07-11T00:00:00+0000"},
        {"2012-07-09T00:00:00+0000", "TZ=UTC 0 0 0 1,15 * *", "2012-07-15T00:00:00+0000"},
        /* descriptors, on the wall clock */
        {"2012-07-09T15:04:00+0000", "TZ=UTC @hourly", "2012-07-09T16:00:00+0000"},
        {"2012-07-09T15:00:00+0000", "TZ=UTC @daily", "2012-07-10T00:00:00+0000"},
        {"2012-07-09T15:00:00+0000", "TZ=UTC @midnight", "2012-07-10T00:00:00+0000"},
        {"2012-07-09T00:00:00+0000", "TZ=UTC @weekly", "2012-07-15T00:00:00+0000"},
        {"2012-07-09T00:00:00+0000", "TZ=UTC @monthly", "2012-08-01T00:00:00+0000"},
        {"2012-07-09T00:00:00+0000", "TZ=UTC @yearly", "2013-01-01T00:00:00+0000"},
        {"2012-07-09T00:00:00+0000", "TZ=UTC @annually", "2013-01-01T00:00:00+0000"},
        /* names, any case; ? as * */
        {"2012-07-09T00:00:00+0000", "TZ=UTC 0 0 * JAN-mar SUN", "2013-01-06T00:00:00+0000"},
        /* Knative's e2e schedule: second 10 of every minute */
        {"2012-07-09T14:45:10+0000", "TZ=UTC 10 0/1 * * * ?", "2012-07-09T14:46:10+0000"},
        /* another zone: 09:00 in Tokyo is 00:00 UTC; in Kolkata (+05:30) 03:30 UTC */
        {"2024-05-01T12:00:00+0000", "CRON_TZ=Asia/Tokyo 0 9 * * *", "2024-05-02T00:00:00+0000"},
        {"2024-05-01T12:00:00+0000", "TZ=Asia/Kolkata 0 9 * * *", "2024-05-02T03:30:00+0000"},

        /* America/New_York, 2012-03-11: 02:00 EST jumps to 03:00 EDT (robfig spec_test.go) */
        {"2012-03-11T00:00:00-0500", "TZ=America/New_York 0 30 2 11 Mar ?",
         "2013-03-11T02:30:00-0400"},
        /* an hourly job skips the hour that does not exist */
        {"2012-03-11T00:00:00-0500", "TZ=America/New_York 0 0 * * * ?", "2012-03-11T01:00:00-0500"},
        {"2012-03-11T01:00:00-0500", "TZ=America/New_York 0 0 * * * ?", "2012-03-11T03:00:00-0400"},
        {"2012-03-11T03:00:00-0400", "TZ=America/New_York 0 0 * * * ?", "2012-03-11T04:00:00-0400"},
        {"2012-03-11T04:00:00-0400", "CRON_TZ=America/New_York 0 0 * * * ?",
         "2012-03-11T05:00:00-0400"},
        /* a 1am nightly job runs; a 2am one skips that day */
        {"2012-03-11T00:00:00-0500", "TZ=America/New_York 0 0 1 * * ?", "2012-03-11T01:00:00-0500"},
        {"2012-03-11T01:00:00-0500", "TZ=America/New_York 0 0 1 * * ?", "2012-03-12T01:00:00-0400"},
        {"2012-03-11T00:00:00-0500", "TZ=America/New_York 0 0 2 * * ?", "2012-03-12T02:00:00-0400"},
        /* 2012-11-04: 02:00 EDT falls back to 01:00 EST */
        {"2012-11-04T00:00:00-0400", "TZ=America/New_York 0 30 2 04 Nov ?",
         "2012-11-04T02:30:00-0500"},
        {"2012-11-04T01:45:00-0400", "TZ=America/New_York 0 30 1 04 Nov ?",
         "2012-11-04T01:30:00-0500"},
        /* an hourly job runs in both 1 o'clocks */
        {"2012-11-04T00:00:00-0400", "TZ=America/New_York 0 0 * * * ?", "2012-11-04T01:00:00-0400"},
        {"2012-11-04T01:00:00-0400", "TZ=America/New_York 0 0 * * * ?", "2012-11-04T01:00:00-0500"},
        {"2012-11-04T01:00:00-0500", "TZ=America/New_York 0 0 * * * ?", "2012-11-04T02:00:00-0500"},
        /* a 1am nightly job runs twice; 2am and 3am once */
        {"2012-11-04T00:00:00-0400", "TZ=America/New_York 0 0 1 * * ?", "2012-11-04T01:00:00-0400"},
        {"2012-11-04T01:00:00-0400", "TZ=America/New_York 0 0 1 * * ?", "2012-11-04T01:00:00-0500"},
        {"2012-11-04T01:00:00-0500", "TZ=America/New_York 0 0 1 * * ?", "2012-11-05T01:00:00-0500"},
        {"2012-11-04T00:00:00-0400", "TZ=America/New_York 0 0 2 * * ?", "2012-11-04T02:00:00-0500"},
        {"2012-11-04T02:00:00-0500", "TZ=America/New_York 0 0 2 * * ?", "2012-11-05T02:00:00-0500"},
        {"2012-11-04T00:00:00-0400", "TZ=America/New_York 0 0 3 * * ?", "2012-11-04T03:00:00-0500"},
        {"2012-11-04T03:00:00-0500", "TZ=America/New_York 0 0 3 * * ?", "2012-11-05T03:00:00-0500"},
        /* Europe/Berlin, 2024-03-31 02:00 CET -> 03:00 CEST: 02:30 skips; 10-27 repeats */
        {"2024-03-30T12:00:00+0100", "TZ=Europe/Berlin 30 2 * * *", "2024-04-01T02:30:00+0200"},
        {"2024-10-27T02:30:00+0200", "TZ=Europe/Berlin 30 2 * * *", "2024-10-27T02:30:00+0100"},
};

START_TEST(test_next_fire_times_match_the_reference_table)
{
	struct ceb_cron *c = NULL;
	char err[256] = "";
	int64_t got, want = at(nexts[_i].next);

	ck_assert_msg(ceb_cron_parse(nexts[_i].spec, NULL, &c, err, sizeof(err)) == 0, "%s: %s",
	              nexts[_i].spec, err);
	got = ceb_cron_next(c, at(nexts[_i].from));
	ck_assert_msg(got == want, "%s after %s: got %lld, want %lld (%s), off by %lld s",
	              nexts[_i].spec, nexts[_i].from, (long long)got, (long long)want,
	              nexts[_i].next, (long long)(got - want));
	ceb_cron_free(c);
}
END_TEST

START_TEST(test_timezone_field_applies_as_a_cron_tz_prefix)
{
	struct ceb_cron *c = NULL;
	char err[256];

	ck_assert_int_eq(ceb_cron_parse("0 9 * * *", "Asia/Tokyo", &c, err, sizeof(err)), 0);
	ck_assert_str_eq(ceb_cron_zone(c), "Asia/Tokyo");
	ck_assert_int_eq(ceb_cron_next(c, at("2024-05-01T12:00:00+0000")),
	                 at("2024-05-02T00:00:00+0000"));
	ceb_cron_free(c);
	c = NULL;
	ck_assert_int_eq(ceb_cron_parse("0 9 * * *", "Mars/Olympus", &c, err, sizeof(err)),
	                 CEB_CRON_EZONE);
	ck_assert_ptr_null(c);
	ck_assert_ptr_nonnull(strstr(err, "Mars/Olympus"));
	ck_assert_int_eq(ceb_cron_parse("TZ=UTC 0 9 * * *", "Asia/Tokyo", &c, err, sizeof(err)),
	                 CEB_CRON_ESYNTAX);
	ck_assert_ptr_null(c);
}
END_TEST

static const struct {
	const char *spec, *why;
} bad[] = {
        {"@every 1m", "@every"},
        {"* * * * * * *", "expected 5 to 6 fields, found 7"},
        {"* * * *", "expected 5 to 6 fields, found 4"},
        {"", "empty spec string"},
        {"* * * * 7", "above maximum (6)"},
        {"60 * * * *", "above maximum (59)"},
        {"* 24 * * *", "above maximum (23)"},
        {"* * 0 * *", "below minimum (1)"},
        {"* * * 13 *", "above maximum (12)"},
        {"5-1 * * * *", "beginning of range (5) beyond end of range (1)"},
        {"*/0 * * * *", "step of range should be a positive number"},
        {"1/2/3 * * * *", "too many slashes"},
        {"1-2-3 * * * *", "too many hyphens"},
        {"-5 * * * *", "negative number"},
        {"x * * * *", "failed to parse int from x"},
        {"* * * foo *", "failed to parse int from foo"},
        {"* * L * *", "failed to parse int from L"},
        {"* * * * 1#2", "failed to parse int"},
        {"@reboot", "unrecognized descriptor"},
        {"TZ=Nowhere/Land * * * * *", "provided bad location Nowhere/Land"},
        {"CRON_TZ=UTC", "followed by a space"},
        {"CRON_TZ=UTC TZ=UTC * * * * *", "failed to parse int from TZ=UTC"},
};

START_TEST(test_what_knative_refuses_is_refused_with_its_reason)
{
	struct ceb_cron *c = NULL;
	char err[256] = "";

	ck_assert_msg(ceb_cron_parse(bad[_i].spec, NULL, &c, err, sizeof(err)) < 0,
	              "\"%s\" was taken", bad[_i].spec);
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, bad[_i].why) != NULL, "\"%s\": \"%s\" does not say \"%s\"",
	              bad[_i].spec, err, bad[_i].why);
}
END_TEST

START_TEST(test_consecutive_ticks_of_a_seconds_schedule)
{
	struct ceb_cron *c = NULL;
	char err[256];
	int64_t t = at("2024-01-01T00:00:58+0000");

	ck_assert_int_eq(ceb_cron_parse("*/2 * * * * *", "UTC", &c, err, sizeof(err)), 0);
	for (int i = 0; i < 5; i++) {
		int64_t n = ceb_cron_next(c, t);
		ck_assert_int_eq(n, t + 2);
		t = n;
	}
	ceb_cron_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cron");
	TCase *tc = tcase_create("schedules");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_next_fire_times_match_the_reference_table, 0,
	                    (int)(sizeof(nexts) / sizeof(nexts[0])));
	tcase_add_test(tc, test_timezone_field_applies_as_a_cron_tz_prefix);
	tcase_add_loop_test(tc, test_what_knative_refuses_is_refused_with_its_reason, 0,
	                    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, test_consecutive_ticks_of_a_seconds_schedule);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
