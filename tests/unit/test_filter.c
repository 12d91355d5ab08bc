/* Unit tests of filters/: the attribute dialects with Knative's edge cases, all/any/not and the
 * Trigger index. CESQL has its own file (test_cesql.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "tests/unit/filter_fixture.h"

/* ---- exact, prefix, suffix ---- */

START_TEST(test_exact_matches_only_the_identical_value_case_sensitively)
{
	struct ceb_filter *flt = attrs1(CEB_FILTER_EXACT, "type", "com.example.order");
	struct ceb_event *yes = make_event("com.example.order");
	struct ceb_event *upper = make_event("com.example.Order");
	struct ceb_event *longer = make_event("com.example.orders");

	ck_assert(ceb_filter_match(flt, yes));
	ck_assert(!ceb_filter_match(flt, upper));
	ck_assert(!ceb_filter_match(flt, longer));
	ck_assert_int_eq(ceb_filter_kind(flt), CEB_FILTER_EXACT);
	ceb_filter_free(flt);
	ceb_event_unref(yes);
	ceb_event_unref(upper);
	ceb_event_unref(longer);
}
END_TEST

START_TEST(test_exact_requires_every_named_attribute_to_match)
{
	const char *names[] = {"type", "source", "region"};
	const char *values[] = {"t", "/orders/eu", "eu-west"};
	struct ceb_filter *flt = NULL;
	struct ceb_event *ev = make_event("t");
	char err[128];

	ck_assert_int_eq(
	        ceb_filter_attrs(CEB_FILTER_EXACT, 3, names, values, &flt, err, sizeof(err)), 0);
	ck_assert(!ceb_filter_match(flt, ev)); /* extension `region` missing */
	set_str(ev, "region", "eu-west");
	ck_assert(ceb_filter_match(flt, ev));
	set_str(ev, "region", "eu-central");
	ck_assert(!ceb_filter_match(flt, ev));
	ceb_filter_free(flt);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_missing_attribute_fails_exact_prefix_and_suffix)
{
	enum ceb_filter_kind kinds[] = {CEB_FILTER_EXACT, CEB_FILTER_PREFIX, CEB_FILTER_SUFFIX};
	struct ceb_event *ev = make_event("t");

	for (size_t i = 0; i < 3; i++) {
		struct ceb_filter *flt = attrs1(kinds[i], "subject", "x");

		ck_assert(!ceb_filter_match(flt, ev));
		set_str(ev, "subject", "x");
		ck_assert(ceb_filter_match(flt, ev));
		ck_assert_int_eq(ceb_event_unset(ev, "subject"), 0);
		ceb_filter_free(flt);
	}
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_prefix_matches_the_leading_text_case_sensitively)
{
	struct ceb_filter *flt = attrs1(CEB_FILTER_PREFIX, "type", "com.example.");
	struct ceb_event *a = make_event("com.example.order"), *b = make_event("com.example.");
	struct ceb_event *c = make_event("Com.example.order"), *d = make_event("com.example");

	ck_assert(ceb_filter_match(flt, a));
	ck_assert(ceb_filter_match(flt, b));
	ck_assert(!ceb_filter_match(flt, c));
	ck_assert(!ceb_filter_match(flt, d)); /* shorter than the prefix */
	ceb_filter_free(flt);
	ceb_event_unref(a);
	ceb_event_unref(b);
	ceb_event_unref(c);
	ceb_event_unref(d);
}
END_TEST

START_TEST(test_suffix_matches_the_trailing_text_case_sensitively)
{
	struct ceb_filter *flt = attrs1(CEB_FILTER_SUFFIX, "type", ".error");
	struct ceb_event *a = make_event("com.github.error"), *b = make_event(".error");
	struct ceb_event *c = make_event("com.github.ERROR"), *d = make_event("error");

	ck_assert(ceb_filter_match(flt, a));
	ck_assert(ceb_filter_match(flt, b));
	ck_assert(!ceb_filter_match(flt, c));
	ck_assert(!ceb_filter_match(flt, d));
	ceb_filter_free(flt);
	ceb_event_unref(a);
	ceb_event_unref(b);
	ceb_event_unref(c);
	ceb_event_unref(d);
}
END_TEST

START_TEST(test_extension_attributes_are_matched_like_context_attributes)
{
	struct ceb_filter *ex = attrs1(CEB_FILTER_EXACT, "tenant", "acme");
	struct ceb_filter *px = attrs1(CEB_FILTER_PREFIX, "tenant", "ac");
	struct ceb_filter *sx = attrs1(CEB_FILTER_SUFFIX, "tenant", "me");
	struct ceb_event *ev = make_event("t");

	ck_assert(!ceb_filter_match(ex, ev));
	set_str(ev, "tenant", "acme");
	ck_assert(ceb_filter_match(ex, ev));
	ck_assert(ceb_filter_match(px, ev));
	ck_assert(ceb_filter_match(sx, ev));
	set_str(ev, "tenant", "ACME");
	ck_assert(!ceb_filter_match(ex, ev));
	ck_assert(!ceb_filter_match(px, ev));
	ck_assert(!ceb_filter_match(sx, ev));
	ceb_filter_free(ex);
	ceb_filter_free(px);
	ceb_filter_free(sx);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_integer_and_boolean_extensions_compare_by_their_canonical_string)
{
	struct ceb_filter *i42 = attrs1(CEB_FILTER_EXACT, "myint", "42");
	struct ceb_filter *i4 = attrs1(CEB_FILTER_PREFIX, "myint", "4");
	struct ceb_filter *neg = attrs1(CEB_FILTER_EXACT, "myint", "-7");
	struct ceb_filter *btrue = attrs1(CEB_FILTER_EXACT, "mybool", "true");
	struct ceb_filter *bTrue = attrs1(CEB_FILTER_EXACT, "mybool", "True");
	struct ceb_event *ev = make_event("t");

	ck_assert_int_eq(ceb_event_set_int(ev, "myint", 42), 0);
	ck_assert_int_eq(ceb_event_set_bool(ev, "mybool", true), 0);
	ck_assert(ceb_filter_match(i42, ev));
	ck_assert(ceb_filter_match(i4, ev));
	ck_assert(!ceb_filter_match(neg, ev));
	ck_assert(ceb_filter_match(btrue, ev));
	ck_assert(!ceb_filter_match(bTrue, ev));
	ck_assert_int_eq(ceb_event_set_int(ev, "myint", -7), 0);
	ck_assert(ceb_filter_match(neg, ev));
	ck_assert(!ceb_filter_match(i42, ev));
	ceb_filter_free(i42);
	ceb_filter_free(i4);
	ceb_filter_free(neg);
	ceb_filter_free(btrue);
	ceb_filter_free(bTrue);
	ceb_event_unref(ev);
}
END_TEST

/* ---- legacy filter.attributes ---- */

START_TEST(test_legacy_empty_value_means_present_with_any_non_empty_value)
{
	struct ceb_filter *flt = attrs1(CEB_FILTER_LEGACY, "tenant", "");
	struct ceb_event *ev = make_event("t");

	ck_assert(!ceb_filter_match(flt, ev));
	set_str(ev, "tenant", "");
	ck_assert_msg(!ceb_filter_match(flt, ev), "an empty value is not a value");
	set_str(ev, "tenant", "anything");
	ck_assert(ceb_filter_match(flt, ev));
	ck_assert_int_eq(ceb_event_set_int(ev, "tenant", 0), 0);
	ck_assert(ceb_filter_match(flt, ev));
	ck_assert_ptr_null(ceb_filter_required_type(flt));
	ceb_filter_free(flt);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_legacy_non_empty_values_match_exactly)
{
	const char *names[] = {"type", "tenant"}, *values[] = {"order.created", ""};
	struct ceb_filter *flt = NULL;
	struct ceb_event *ev = make_event("order.created"), *other = make_event("order.Created");
	char err[128];

	ck_assert_int_eq(
	        ceb_filter_attrs(CEB_FILTER_LEGACY, 2, names, values, &flt, err, sizeof(err)), 0);
	set_str(ev, "tenant", "acme");
	set_str(other, "tenant", "acme");
	ck_assert(ceb_filter_match(flt, ev));
	ck_assert(!ceb_filter_match(flt, other));
	ck_assert_str_eq(ceb_filter_required_type(flt), "order.created");
	ceb_filter_free(flt);
	ceb_event_unref(ev);
	ceb_event_unref(other);
}
END_TEST

START_TEST(test_legacy_filter_without_attributes_matches_every_event)
{
	struct ceb_filter *flt = NULL;
	struct ceb_event *ev = make_event("t");
	char err[128];

	ck_assert_int_eq(ceb_filter_attrs(CEB_FILTER_LEGACY, 0, NULL, NULL, &flt, err, sizeof(err)),
	                 0);
	ck_assert(ceb_filter_match(flt, ev));
	ceb_filter_free(flt);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_empty_names_and_values_are_rejected_when_compiling)
{
	struct ceb_filter *flt = NULL;
	const char *empty = "", *type = "type", *v = "x", *upper = "Type", *dup[] = {"id", "id"};
	char err[128];

	ck_assert_int_eq(
	        ceb_filter_attrs(CEB_FILTER_EXACT, 1, &type, &empty, &flt, err, sizeof(err)),
	        CEB_EINVAL);
	ck_assert_str_eq(err, "exact: attribute 'type' has an empty value");
	ck_assert_int_eq(ceb_filter_attrs(CEB_FILTER_PREFIX, 1, &empty, &v, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "prefix: empty attribute name");
	ck_assert_int_eq(ceb_filter_attrs(CEB_FILTER_SUFFIX, 0, NULL, NULL, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "suffix: needs at least one attribute");
	ck_assert_int_eq(ceb_filter_attrs(CEB_FILTER_LEGACY, 1, &empty, &v, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_int_eq(ceb_filter_attrs(CEB_FILTER_EXACT, 1, &upper, &v, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "exact: attribute name 'Type' must be lower-case letters and digits");
	ck_assert_int_eq(ceb_filter_attrs(CEB_FILTER_EXACT, 2, dup, dup, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_int_eq(ceb_filter_attrs(CEB_FILTER_ALL, 1, &type, &v, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_ptr_null(flt);
}
END_TEST

/* ---- all, any, not, true ---- */

START_TEST(test_all_requires_every_child_and_any_at_least_one)
{
	struct ceb_filter *all = group2(CEB_FILTER_ALL, attrs1(CEB_FILTER_PREFIX, "type", "com."),
	                                attrs1(CEB_FILTER_SUFFIX, "type", ".error"));
	struct ceb_filter *any = group2(CEB_FILTER_ANY, attrs1(CEB_FILTER_PREFIX, "type", "com."),
	                                attrs1(CEB_FILTER_SUFFIX, "type", ".error"));
	struct ceb_event *both = make_event("com.x.error"), *one = make_event("com.x.ok");
	struct ceb_event *none = make_event("org.x.ok");

	ck_assert(ceb_filter_match(all, both));
	ck_assert(!ceb_filter_match(all, one));
	ck_assert(!ceb_filter_match(all, none));
	ck_assert(ceb_filter_match(any, both));
	ck_assert(ceb_filter_match(any, one));
	ck_assert(!ceb_filter_match(any, none));
	ceb_filter_free(all);
	ceb_filter_free(any);
	ceb_event_unref(both);
	ceb_event_unref(one);
	ceb_event_unref(none);
}
END_TEST

START_TEST(test_not_negates_its_child_including_a_missing_attribute)
{
	struct ceb_filter *flt =
	        group2(CEB_FILTER_NOT, attrs1(CEB_FILTER_EXACT, "tenant", "acme"), NULL);
	struct ceb_event *ev = make_event("t");

	ck_assert(ceb_filter_match(flt, ev)); /* missing: the child fails, so `not` passes */
	set_str(ev, "tenant", "acme");
	ck_assert(!ceb_filter_match(flt, ev));
	set_str(ev, "tenant", "other");
	ck_assert(ceb_filter_match(flt, ev));
	ceb_filter_free(flt);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_groups_with_the_wrong_number_of_children_are_rejected)
{
	struct ceb_filter *kids[2], *flt = NULL;
	char err[128];

	ck_assert_int_eq(ceb_filter_group(CEB_FILTER_ALL, NULL, 0, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "all: needs at least one filter");
	ck_assert_int_eq(ceb_filter_group(CEB_FILTER_ANY, NULL, 0, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "any: needs at least one filter");
	/* The children are freed on failure too (the sanitizer build checks for leaks). */
	kids[0] = ceb_filter_true();
	kids[1] = ceb_filter_true();
	ck_assert_int_eq(ceb_filter_group(CEB_FILTER_NOT, kids, 2, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "not: takes exactly one filter, got 2");
	kids[0] = ceb_filter_true();
	ck_assert_int_eq(ceb_filter_group(CEB_FILTER_EXACT, kids, 1, &flt, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_ptr_null(flt);
}
END_TEST

START_TEST(test_true_filter_matches_every_event)
{
	struct ceb_filter *flt = ceb_filter_true();
	struct ceb_event *ev = make_event(NULL);

	ck_assert(ceb_filter_match(flt, ev));
	ck_assert_int_eq(ceb_filter_kind(flt), CEB_FILTER_TRUE);
	ck_assert_ptr_null(ceb_filter_required_type(flt));
	ceb_filter_free(flt);
	ceb_filter_free(NULL);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_required_type_comes_from_exact_legacy_or_an_all_group)
{
	struct ceb_filter *flt;

	flt = attrs1(CEB_FILTER_EXACT, "type", "a");
	ck_assert_str_eq(ceb_filter_required_type(flt), "a");
	ceb_filter_free(flt);
	flt = attrs1(CEB_FILTER_LEGACY, "type", "b");
	ck_assert_str_eq(ceb_filter_required_type(flt), "b");
	ceb_filter_free(flt);
	flt = attrs1(CEB_FILTER_EXACT, "source", "a");
	ck_assert_ptr_null(ceb_filter_required_type(flt));
	ceb_filter_free(flt);
	flt = attrs1(CEB_FILTER_PREFIX, "type", "a");
	ck_assert_ptr_null(ceb_filter_required_type(flt));
	ceb_filter_free(flt);
	flt = group2(CEB_FILTER_ALL, attrs1(CEB_FILTER_PREFIX, "source", "/"),
	             attrs1(CEB_FILTER_EXACT, "type", "c"));
	ck_assert_str_eq(ceb_filter_required_type(flt), "c");
	ceb_filter_free(flt);
	flt = group2(CEB_FILTER_ANY, attrs1(CEB_FILTER_EXACT, "type", "d"),
	             attrs1(CEB_FILTER_EXACT, "type", "e"));
	ck_assert_ptr_null(ceb_filter_required_type(flt));
	ceb_filter_free(flt);
	flt = group2(CEB_FILTER_NOT, attrs1(CEB_FILTER_EXACT, "type", "f"), NULL);
	ck_assert_ptr_null(ceb_filter_required_type(flt));
	ceb_filter_free(flt);
	flt = cesql("type = 'g'");
	ck_assert_ptr_null(ceb_filter_required_type(flt));
	ceb_filter_free(flt);
}
END_TEST

START_TEST(test_required_attrs_are_the_fixed_values_of_exact_legacy_and_all)
{
	struct ceb_filter *flt;
	const char *n[8], *v[8];

	/* exact and legacy under all, nested; the first value of a name wins; a legacy "" (any
	 * value) is none; prefix adds nothing */
	flt = group2(CEB_FILTER_ALL, attrs1(CEB_FILTER_EXACT, "type", "a"),
	             group2(CEB_FILTER_ALL, attrs1(CEB_FILTER_LEGACY, "source", "/s"),
	                    group2(CEB_FILTER_ALL, attrs1(CEB_FILTER_EXACT, "type", "other"),
	                           attrs1(CEB_FILTER_PREFIX, "subject", "x"))));
	ck_assert_uint_eq(ceb_filter_required_attrs(flt, n, v, 8), 2);
	ck_assert_str_eq(n[0], "type");
	ck_assert_str_eq(v[0], "a");
	ck_assert_str_eq(n[1], "source");
	ck_assert_str_eq(v[1], "/s");
	ck_assert_uint_eq(ceb_filter_required_attrs(flt, n, v, 1), 1); /* bounded by max */
	ceb_filter_free(flt);
	flt = attrs1(CEB_FILTER_LEGACY, "subject", "");
	ck_assert_uint_eq(ceb_filter_required_attrs(flt, n, v, 8), 0);
	ceb_filter_free(flt);
	flt = group2(CEB_FILTER_ANY, attrs1(CEB_FILTER_EXACT, "type", "d"),
	             attrs1(CEB_FILTER_EXACT, "type", "d"));
	ck_assert_uint_eq(ceb_filter_required_attrs(flt, n, v, 8), 0);
	ceb_filter_free(flt);
	flt = group2(CEB_FILTER_NOT, attrs1(CEB_FILTER_EXACT, "type", "f"), NULL);
	ck_assert_uint_eq(ceb_filter_required_attrs(flt, n, v, 8), 0);
	ceb_filter_free(flt);
	flt = cesql("type = 'g'");
	ck_assert_uint_eq(ceb_filter_required_attrs(flt, n, v, 8), 0);
	ceb_filter_free(flt);
	ck_assert_uint_eq(ceb_filter_required_attrs(NULL, n, v, 8), 0);
}
END_TEST

/* ---- the Trigger index ---- */

struct collect {
	void *got[64];
	size_t n;
	size_t stop_after; /* 0: never */
};

static int collect_cb(void *arg, void *item)
{
	struct collect *c = arg;

	ck_assert_uint_lt(c->n, 64);
	c->got[c->n++] = item;
	return c->stop_after && c->n == c->stop_after ? 7 : 0;
}

/* n Triggers with `type = type.<i>` (every third one inside an `all`), plus untyped ones spread in
 * between; checks that the index yields exactly what a linear scan yields, in the same order. */
static void check_index(size_t n)
{
	struct ceb_filter_index *idx = ceb_filter_index_new();
	size_t total = n + 4, k = 0;
	struct ceb_filter **flts = calloc(total, sizeof(*flts));
	const char *types[] = {"type.0", NULL, NULL, "nobody", "other"};
	char buf[32], mid[32], last[32];

	ck_assert_ptr_nonnull(idx);
	ck_assert_ptr_nonnull(flts);
	for (size_t i = 0; i < n; i++) {
		if (i == n / 2) {
			flts[k++] = attrs1(CEB_FILTER_PREFIX, "type", "type.");
			flts[k++] = cesql("source LIKE '/orders/%'");
		}
		snprintf(buf, sizeof(buf), "type.%zu", i);
		flts[k++] = i % 3 == 2
		                    ? group2(CEB_FILTER_ALL, attrs1(CEB_FILTER_EXACT, "type", buf),
		                             attrs1(CEB_FILTER_PREFIX, "id", "e-"))
		                    : attrs1(CEB_FILTER_EXACT, "type", buf);
	}
	flts[k++] = ceb_filter_true();
	flts[k++] = attrs1(CEB_FILTER_EXACT, "type", "nobody"); /* typed, never an event's type */
	ck_assert_uint_eq(k, total);
	for (size_t i = 0; i < total; i++)
		ck_assert_int_eq(ceb_filter_index_add(idx, flts[i], flts[i]), 0);
	snprintf(mid, sizeof(mid), "type.%zu", n / 2);
	snprintf(last, sizeof(last), "type.%zu", n - 1);
	types[1] = mid;
	types[2] = last;
	for (size_t t = 0; t < 6; t++) {
		struct ceb_event *ev = make_event(t < 5 ? types[t] : NULL);
		struct collect c = {0};
		void *want[64];
		size_t nwant = 0;

		for (size_t i = 0; i < total; i++)
			if (ceb_filter_match(flts[i], ev))
				want[nwant++] = flts[i];
		ck_assert_int_eq(ceb_filter_index_match(idx, ev, collect_cb, &c), 0);
		ck_assert_uint_eq(c.n, nwant);
		for (size_t i = 0; i < nwant; i++)
			ck_assert_ptr_eq(c.got[i], want[i]);
		ceb_event_unref(ev);
	}
	ceb_filter_index_free(idx);
	for (size_t i = 0; i < total; i++)
		ceb_filter_free(flts[i]);
	free(flts);
}

START_TEST(test_index_returns_exactly_the_matching_items_with_1_trigger)
{
	check_index(1);
}
END_TEST

START_TEST(test_index_returns_exactly_the_matching_items_with_100_triggers)
{
	check_index(100);
}
END_TEST

START_TEST(test_index_returns_exactly_the_matching_items_with_10000_triggers)
{
	check_index(10000);
}
END_TEST

START_TEST(test_index_keeps_insertion_order_and_stops_when_the_callback_says_so)
{
	struct ceb_filter_index *idx = ceb_filter_index_new();
	struct ceb_filter *a = attrs1(CEB_FILTER_EXACT, "type", "t");
	struct ceb_filter *b = ceb_filter_true();
	struct ceb_filter *c = attrs1(CEB_FILTER_LEGACY, "type", "t");
	struct ceb_event *ev = make_event("t");
	struct collect col = {0};
	int items[3];

	ck_assert_int_eq(ceb_filter_index_add(idx, a, &items[0]), 0);
	ck_assert_int_eq(ceb_filter_index_add(idx, b, &items[1]), 0);
	ck_assert_int_eq(ceb_filter_index_add(idx, c, &items[2]), 0);
	ck_assert_int_eq(ceb_filter_index_match(idx, ev, collect_cb, &col), 0);
	ck_assert_uint_eq(col.n, 3);
	ck_assert_ptr_eq(col.got[0], &items[0]);
	ck_assert_ptr_eq(col.got[1], &items[1]);
	ck_assert_ptr_eq(col.got[2], &items[2]);
	memset(&col, 0, sizeof(col));
	col.stop_after = 2;
	ck_assert_int_eq(ceb_filter_index_match(idx, ev, collect_cb, &col), 7);
	ck_assert_uint_eq(col.n, 2);
	ceb_filter_index_free(idx);
	ceb_filter_index_free(NULL);
	ceb_filter_free(a);
	ceb_filter_free(b);
	ceb_filter_free(c);
	ceb_event_unref(ev);
}
END_TEST

static Suite *filter_suite(void)
{
	Suite *s = suite_create("filter");
	TCase *attrs = tcase_create("attribute dialects");
	TCase *groups = tcase_create("groups");
	TCase *index = tcase_create("index");

	tcase_add_test(attrs, test_exact_matches_only_the_identical_value_case_sensitively);
	tcase_add_test(attrs, test_exact_requires_every_named_attribute_to_match);
	tcase_add_test(attrs, test_missing_attribute_fails_exact_prefix_and_suffix);
	tcase_add_test(attrs, test_prefix_matches_the_leading_text_case_sensitively);
	tcase_add_test(attrs, test_suffix_matches_the_trailing_text_case_sensitively);
	tcase_add_test(attrs, test_extension_attributes_are_matched_like_context_attributes);
	tcase_add_test(attrs,
	               test_integer_and_boolean_extensions_compare_by_their_canonical_string);
	tcase_add_test(attrs, test_legacy_empty_value_means_present_with_any_non_empty_value);
	tcase_add_test(attrs, test_legacy_non_empty_values_match_exactly);
	tcase_add_test(attrs, test_legacy_filter_without_attributes_matches_every_event);
	tcase_add_test(attrs, test_empty_names_and_values_are_rejected_when_compiling);
	suite_add_tcase(s, attrs);

	tcase_add_test(groups, test_all_requires_every_child_and_any_at_least_one);
	tcase_add_test(groups, test_not_negates_its_child_including_a_missing_attribute);
	tcase_add_test(groups, test_groups_with_the_wrong_number_of_children_are_rejected);
	tcase_add_test(groups, test_true_filter_matches_every_event);
	tcase_add_test(groups, test_required_type_comes_from_exact_legacy_or_an_all_group);
	tcase_add_test(groups, test_required_attrs_are_the_fixed_values_of_exact_legacy_and_all);
	suite_add_tcase(s, groups);

	tcase_add_test(index, test_index_returns_exactly_the_matching_items_with_1_trigger);
	tcase_add_test(index, test_index_returns_exactly_the_matching_items_with_100_triggers);
	tcase_add_test(index, test_index_returns_exactly_the_matching_items_with_10000_triggers);
	tcase_add_test(index, test_index_keeps_insertion_order_and_stops_when_the_callback_says_so);
	tcase_set_timeout(index, 60);
	suite_add_tcase(s, index);

	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(filter_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
