/* The status counts and latency histograms of /metrics: Knative's bucket bounds, inclusive, each
 * observation counted once whatever thread makes it, a status table that never loses a count. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>

#include "broker/stats.h"

static unsigned long count_of(const struct ceb_stats *st, long status)
{
	for (unsigned i = 0; i < CEB_CODES; i++)
		if (atomic_load(&st->codes.code[i]) == status + 1)
			return atomic_load(&st->codes.n[i]);
	return 0;
}

static unsigned long hist_total(const struct ceb_hist *h)
{
	unsigned long n = 0;

	for (unsigned b = 0; b <= CEB_HIST_BOUNDS; b++)
		n += atomic_load(&h->bucket[b]);
	return n;
}

START_TEST(test_a_bucket_holds_observations_up_to_its_bound_inclusive)
{
	struct ceb_stats *st = calloc(1, sizeof(*st));

	ceb_stats_observe(st, 202, 0);
	ceb_stats_observe(st, 202, 1000);     /* 1 ms: le="1" */
	ceb_stats_observe(st, 202, 1001);     /* le="2" */
	ceb_stats_observe(st, 202, 10000000); /* 10 s: le="10000" */
	ceb_stats_observe(st, 202, 10000001); /* +Inf */
	ck_assert_uint_eq(atomic_load(&st->latency.bucket[0]), 2);
	ck_assert_uint_eq(atomic_load(&st->latency.bucket[1]), 1);
	ck_assert_uint_eq(atomic_load(&st->latency.bucket[CEB_HIST_BOUNDS - 1]), 1);
	ck_assert_uint_eq(atomic_load(&st->latency.bucket[CEB_HIST_BOUNDS]), 1);
	ck_assert_uint_eq(atomic_load(&st->latency.sum_us), 20002002);
	ck_assert_uint_eq(ceb_hist_bounds_ms[0], 1);
	ck_assert_uint_eq(ceb_hist_bounds_ms[CEB_HIST_BOUNDS - 1], 10000);
	ck_assert_uint_eq(count_of(st, 202), 5);
	free(st);
}
END_TEST

START_TEST(test_no_answer_counts_as_status_zero_and_odd_statuses_too)
{
	struct ceb_stats *st = calloc(1, sizeof(*st));

	ceb_stats_observe(st, 0, 5);
	ceb_stats_observe(st, -1, 5);
	ceb_stats_observe(st, 100000, 5);
	ck_assert_uint_eq(count_of(st, 0), 3);
	ck_assert_uint_eq(count_of(st, 202), 0);
	free(st);
}
END_TEST

START_TEST(test_statuses_past_the_table_count_as_other)
{
	struct ceb_stats *st = calloc(1, sizeof(*st));

	for (long s = 200; s < 200 + CEB_CODES + 3; s++)
		ceb_stats_observe(st, s, 1);
	ceb_stats_observe(st, 200, 1);
	ck_assert_uint_eq(count_of(st, 200), 2);
	ck_assert_uint_eq(count_of(st, 200 + CEB_CODES - 1), 1);
	ck_assert_uint_eq(atomic_load(&st->codes.other), 3);
	free(st);
}
END_TEST

#define THREADS 4
#define EACH    20000

static void *observe_many(void *arg)
{
	struct ceb_stats *st = arg;

	for (int i = 0; i < EACH; i++)
		ceb_stats_observe(st, 200 + i % 20, (uint64_t)(i % 7) * 700);
	return NULL;
}

START_TEST(test_threads_observing_at_once_lose_no_count)
{
	struct ceb_stats *st = calloc(1, sizeof(*st));
	pthread_t t[THREADS];
	unsigned long total = atomic_load(&st->codes.other);

	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, observe_many, st), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* 20 statuses, 16 slots: each status has one slot at most, and nothing is lost */
	total = atomic_load(&st->codes.other);
	for (unsigned i = 0; i < CEB_CODES; i++) {
		ck_assert_int_ne(atomic_load(&st->codes.code[i]), 0);
		for (unsigned j = 0; j < i; j++)
			ck_assert_int_ne(atomic_load(&st->codes.code[i]),
			                 atomic_load(&st->codes.code[j]));
		total += atomic_load(&st->codes.n[i]);
	}
	ck_assert_uint_eq(total, THREADS * EACH);
	ck_assert_uint_eq(atomic_load(&st->codes.other), THREADS * EACH / 20 * 4);
	ck_assert_uint_eq(hist_total(&st->latency), THREADS * EACH);
	free(st);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("stats");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_a_bucket_holds_observations_up_to_its_bound_inclusive);
	tcase_add_test(tc, test_no_answer_counts_as_status_zero_and_odd_statuses_too);
	tcase_add_test(tc, test_statuses_past_the_table_count_as_other);
	tcase_add_test(tc, test_threads_observing_at_once_lose_no_count);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
