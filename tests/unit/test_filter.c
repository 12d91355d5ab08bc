/* Unit tests of filters/: the attribute dialects with Knative's edge cases, all/any/not, the Trigger
 * index, and the CESQL compiler and evaluator beyond what the TCK covers (columns, limits, Unicode). */
#include <check.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "broker/error.h"
#include "broker/ce/event.h"
#include "filters/cesql/cesql.h"
#include "filters/filter.h"

/* ---- helpers ---- */

static struct ceb_event *make_event(const char *type)
{
	struct ceb_event *ev = ceb_event_new();
	char err[128];

	ck_assert_ptr_nonnull(ev);
	ck_assert_int_eq(
	        ceb_event_set(ev, "specversion", CEB_TYPE_STRING, "1.0", 3, err, sizeof(err)), 0);
	ck_assert_int_eq(ceb_event_set(ev, "id", CEB_TYPE_STRING, "e-1", 3, err, sizeof(err)), 0);
	ck_assert_int_eq(
	        ceb_event_set(ev, "source", CEB_TYPE_STRING, "/orders/eu", 10, err, sizeof(err)),
	        0);
	if (type)
		ck_assert_int_eq(ceb_event_set(ev, "type", CEB_TYPE_STRING, type, strlen(type), err,
		                               sizeof(err)),
		                 0);
	return ev;
}

static void set_str(struct ceb_event *ev, const char *name, const char *value)
{
	char err[128];

	ck_assert_msg(ceb_event_set(ev, name, CEB_TYPE_STRING, value, strlen(value), err,
	                            sizeof(err)) == 0,
	              "set %s: %s", name, err);
}

static struct ceb_filter *attrs1(enum ceb_filter_kind kind, const char *name, const char *value)
{
	struct ceb_filter *flt = NULL;
	char err[256];

	ck_assert_msg(ceb_filter_attrs(kind, 1, &name, &value, &flt, err, sizeof(err)) == 0, "%s",
	              err);
	return flt;
}

static struct ceb_filter *cesql(const char *expr)
{
	struct ceb_filter *flt = NULL;
	char err[256];

	ck_assert_msg(ceb_filter_cesql(expr, NULL, &flt, err, sizeof(err), NULL) == 0, "%s: %s",
	              expr, err);
	return flt;
}

static struct ceb_filter *group2(enum ceb_filter_kind kind, struct ceb_filter *a,
                                 struct ceb_filter *b)
{
	struct ceb_filter *kids[2] = {a, b}, *flt = NULL;
	char err[256];

	ck_assert_msg(ceb_filter_group(kind, kids, b ? 2 : 1, &flt, err, sizeof(err)) == 0, "%s",
	              err);
	return flt;
}

/* Evaluates expr against ev with the TCK-facing API. */
static enum ceb_cesql_error eval(const char *expr, const struct ceb_event *ev,
                                 struct ceb_cesql_value *out)
{
	struct ceb_cesql *q = NULL;
	enum ceb_cesql_error err;
	char msg[256];

	ck_assert_msg(ceb_cesql_compile(expr, strlen(expr), NULL, &q, msg, sizeof(msg), NULL) == 0,
	              "%s: %s", expr, msg);
	err = ceb_cesql_eval(q, ev, out);
	ceb_cesql_free(q);
	return err;
}

static void expect_str(const char *expr, const struct ceb_event *ev, const char *want)
{
	struct ceb_cesql_value v;
	enum ceb_cesql_error err = eval(expr, ev, &v);

	ck_assert_msg(err == CEB_CESQL_OK, "%s: error %s", expr, ceb_cesql_error_name(err));
	ck_assert_int_eq(v.type, CEB_CESQL_STRING);
	ck_assert_msg(strcmp(v.s, want) == 0, "%s: got '%s', want '%s'", expr, v.s, want);
	ceb_cesql_value_clear(&v);
}

static void expect_int(const char *expr, const struct ceb_event *ev, int32_t want,
                       enum ceb_cesql_error want_err)
{
	struct ceb_cesql_value v;
	enum ceb_cesql_error err = eval(expr, ev, &v);

	ck_assert_msg(err == want_err, "%s: error '%s'", expr, ceb_cesql_error_name(err));
	ck_assert_int_eq(v.type, CEB_CESQL_INTEGER);
	ck_assert_msg(v.i == want, "%s: got %d, want %d", expr, (int)v.i, (int)want);
	ceb_cesql_value_clear(&v);
}

static void expect_bool(const char *expr, const struct ceb_event *ev, bool want,
                        enum ceb_cesql_error want_err)
{
	struct ceb_cesql_value v;
	enum ceb_cesql_error err = eval(expr, ev, &v);

	ck_assert_msg(err == want_err, "%s: error '%s'", expr, ceb_cesql_error_name(err));
	ck_assert_int_eq(v.type, CEB_CESQL_BOOLEAN);
	ck_assert_msg(v.b == want, "%s: got %d", expr, v.b);
	ceb_cesql_value_clear(&v);
}

/* Compiles expr expecting a syntax error; returns the column and checks the message. */
static int expect_parse_error(const char *expr, const char *want_msg,
                              const struct ceb_cesql_limits *lim)
{
	struct ceb_cesql *q = NULL;
	char msg[256];
	int col = -1;

	ck_assert_int_eq(ceb_cesql_compile(expr, strlen(expr), lim, &q, msg, sizeof(msg), &col),
	                 CEB_EINVAL);
	ck_assert_ptr_null(q);
	if (want_msg)
		ck_assert_msg(strcmp(msg, want_msg) == 0, "%s: got \"%s\", want \"%s\"", expr, msg,
		              want_msg);
	return col;
}

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

/* ---- CESQL ---- */

START_TEST(test_cesql_filter_passes_only_boolean_true_without_error)
{
	const char *pass[] = {"TRUE", "type = 'order'", "EXISTS id", "myint > 1"};
	const char *fail[] = {"FALSE",        "1",
	                      "'true'",       "missing = 1",
	                      "NOT missing",  "true AND (1 = 1 / 0)",
	                      "INT('x') = 0", "type = 'Order'"};
	struct ceb_event *ev = make_event("order");

	ck_assert_int_eq(ceb_event_set_int(ev, "myint", 42), 0);
	for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
		struct ceb_filter *flt = cesql(pass[i]);

		ck_assert_msg(ceb_filter_match(flt, ev), "%s should pass", pass[i]);
		ck_assert_int_eq(ceb_filter_kind(flt), CEB_FILTER_CESQL);
		ceb_filter_free(flt);
	}
	for (size_t i = 0; i < sizeof(fail) / sizeof(fail[0]); i++) {
		struct ceb_filter *flt = cesql(fail[i]);

		ck_assert_msg(!ceb_filter_match(flt, ev), "%s should not pass", fail[i]);
		ceb_filter_free(flt);
	}
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_cesql_parse_errors_name_the_column)
{
	ck_assert_int_eq(
	        expect_parse_error("(type = 'a'))", "unexpected token ')' at column 13", NULL), 13);
	ck_assert_int_eq(
	        expect_parse_error("type = 'a' AND )", "unexpected token ')' at column 16", NULL),
	        16);
	ck_assert_int_eq(
	        expect_parse_error("ABC(", "unexpected end of expression at column 5", NULL), 5);
	ck_assert_int_eq(expect_parse_error("x LIKE 123",
	                                    "expected a string literal after LIKE, "
	                                    "got token '123' at column 8",
	                                    NULL),
	                 8);
	ck_assert_int_eq(
	        expect_parse_error("id = 'abc", "unterminated string literal at column 6", NULL),
	        6);
	ck_assert_int_eq(expect_parse_error("1 # 2", "unexpected character '#' at column 3", NULL),
	                 3);
	ck_assert_int_eq(
	        expect_parse_error("2147483648", "integer literal out of range at column 1", NULL),
	        1);
	ck_assert_int_eq(expect_parse_error("x IN ()", "unexpected token ')' at column 7", NULL),
	                 7);
	ck_assert_int_eq(expect_parse_error("a NOT b", "unexpected token 'b' at column 7", NULL),
	                 7);
	ck_assert_int_eq(expect_parse_error("EXISTS 1", NULL, NULL), 8);
	ck_assert_int_eq(expect_parse_error("my_ext = 1",
	                                    "invalid attribute name 'my_ext' at column 1", NULL),
	                 1);
	ck_assert_int_eq(expect_parse_error("", "unexpected end of expression at column 1", NULL),
	                 1);
	/* Columns count characters, not bytes. */
	ck_assert_int_eq(expect_parse_error("'\xc3\xa9\xc3\xa9' = )", NULL, NULL), 8);
}
END_TEST

START_TEST(test_cesql_accepts_the_extremes_of_integer_literals)
{
	struct ceb_event *ev = make_event("t");

	expect_int("-2147483648", ev, INT32_MIN, CEB_CESQL_OK);
	expect_int("2147483647", ev, INT32_MAX, CEB_CESQL_OK);
	expect_int("- 5", ev, -5, CEB_CESQL_OK);
	expect_int("4-1", ev, 3, CEB_CESQL_OK);
	expect_parse_error("-2147483649", "integer literal out of range at column 1", NULL);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_unknown_functions_are_rejected_by_the_filter_not_the_evaluator)
{
	struct ceb_filter *flt = NULL;
	struct ceb_event *ev = make_event("t");
	char err[128];
	int col = 0;

	ck_assert_int_eq(
	        ceb_filter_cesql("TRUE AND NOPE(1, 2)", NULL, &flt, err, sizeof(err), &col),
	        CEB_EINVAL);
	ck_assert_str_eq(err, "unknown function NOPE/2 at column 10");
	ck_assert_int_eq(col, 10);
	ck_assert_int_eq(ceb_filter_cesql("LENGTH()", NULL, &flt, err, sizeof(err), &col),
	                 CEB_EINVAL);
	ck_assert_ptr_null(flt);
	expect_bool("NOPE(1)", ev, false, CEB_CESQL_EMISSING_FUNCTION);
	expect_bool("concat_ws()", ev, false, CEB_CESQL_EMISSING_FUNCTION);
	expect_str("concat_ws('-', 'a', 1, TRUE)", ev, "a-1-true");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_cesql_expressions_over_the_length_limit_are_rejected)
{
	char *expr = malloc(5000);
	struct ceb_cesql *q = NULL;
	struct ceb_cesql_limits small = {.max_length = 10, .max_depth = 64};
	char err[128];

	ck_assert_ptr_nonnull(expr);
	/* 'aaa...a' of exactly 4096 bytes compiles; one more byte does not. */
	expr[0] = '\'';
	memset(expr + 1, 'a', 4094);
	expr[4095] = '\'';
	ck_assert_int_eq(ceb_cesql_compile(expr, 4096, NULL, &q, err, sizeof(err), NULL), 0);
	ceb_cesql_free(q);
	q = NULL;
	memmove(expr + 1, expr, 4096);
	expr[0] = ' ';
	ck_assert_int_eq(ceb_cesql_compile(expr, 4097, NULL, &q, err, sizeof(err), NULL),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "expression longer than 4096 bytes");
	ck_assert_int_eq(ceb_cesql_compile("1 + 2 + 3 + 4", 13, &small, &q, err, sizeof(err), NULL),
	                 CEB_EINVAL);
	ck_assert_int_eq(ceb_cesql_compile("1 + 2 + 3", 9, &small, &q, err, sizeof(err), NULL), 0);
	ceb_cesql_free(q);
	free(expr);
}
END_TEST

/* Builds `prefix` x n, `core`, `suffix` x n. */
static char *nest(const char *prefix, const char *core, const char *suffix, size_t n)
{
	size_t lp = strlen(prefix), ls = strlen(suffix), lc = strlen(core);
	char *s = malloc(n * (lp + ls) + lc + 1), *p = s;

	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i < n; i++, p += lp)
		memcpy(p, prefix, lp);
	memcpy(p, core, lc);
	p += lc;
	for (size_t i = 0; i < n; i++, p += ls)
		memcpy(p, suffix, ls);
	*p = '\0';
	return s;
}

START_TEST(test_cesql_nesting_deeper_than_the_limit_is_rejected)
{
	struct ceb_event *ev = make_event("t");
	struct ceb_cesql *q = NULL;
	char *s, err[128];

	s = nest("(", "TRUE", ")", 64);
	ck_assert_int_eq(ceb_cesql_compile(s, strlen(s), NULL, &q, err, sizeof(err), NULL), 0);
	ceb_cesql_free(q);
	q = NULL;
	free(s);
	s = nest("(", "TRUE", ")", 65);
	ck_assert_int_eq(ceb_cesql_compile(s, strlen(s), NULL, &q, err, sizeof(err), NULL),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "expression nested deeper than 64 levels at column 65");
	free(s);
	s = nest("NOT ", "TRUE", "", 100);
	ck_assert_int_eq(ceb_cesql_compile(s, strlen(s), NULL, &q, err, sizeof(err), NULL),
	                 CEB_EINVAL);
	free(s);
	s = nest("ABS(", "1", ")", 500);
	ck_assert_int_eq(ceb_cesql_compile(s, strlen(s), NULL, &q, err, sizeof(err), NULL),
	                 CEB_EINVAL);
	free(s);
	/* Left-associative sums deepen the tree: 80 terms is too deep. */
	s = nest("1 + ", "1", "", 80);
	ck_assert_int_eq(ceb_cesql_compile(s, strlen(s), NULL, &q, err, sizeof(err), NULL),
	                 CEB_EINVAL);
	free(s);
	/* A chain of 250 ANDs is one n-ary node, not 250 levels. */
	s = nest("EXISTS id AND ", "TRUE", "", 250);
	ck_assert_int_eq(ceb_cesql_compile(s, strlen(s), NULL, &q, err, sizeof(err), NULL), 0);
	ck_assert(ceb_cesql_match(q, ev));
	ceb_cesql_free(q);
	free(s);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_like_with_many_wildcards_against_a_long_value_stays_linear)
{
	struct ceb_event *ev = make_event("t");
	char *value = malloc(4097), *expr = malloc(4200);
	struct ceb_filter *no, *yes;
	size_t n = 0;

	ck_assert_ptr_nonnull(value);
	ck_assert_ptr_nonnull(expr);
	memset(value, 'a', 4096);
	value[4096] = '\0';
	set_str(ev, "blob", value);
	/* blob LIKE '%a%a%a...%a%b': a backtracking matcher needs ~4096^k steps to say no. */
	n += (size_t)snprintf(expr, 4200, "blob LIKE '");
	for (int i = 0; i < 1000; i++)
		n += (size_t)snprintf(expr + n, 4200 - n, "%%a");
	snprintf(expr + n, 4200 - n, "%%b'");
	no = cesql(expr);
	expr[strlen(expr) - 3] = '\'';
	expr[strlen(expr) - 2] = '\0';
	yes = cesql(expr);
	for (int i = 0; i < 100; i++) {
		ck_assert(!ceb_filter_match(no, ev));
		ck_assert(ceb_filter_match(yes, ev));
	}
	ceb_filter_free(no);
	ceb_filter_free(yes);
	free(value);
	free(expr);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_like_wildcards_escapes_and_characters)
{
	struct ceb_event *ev = make_event("t");

	expect_bool("'\xc3\xa9t\xc3\xa9' LIKE '_t_'", ev, true, CEB_CESQL_OK);
	expect_bool("'\xc3\xa9t\xc3\xa9' LIKE '__t__'", ev, false, CEB_CESQL_OK);
	expect_bool("'50%' LIKE '50\\%'", ev, true, CEB_CESQL_OK);
	expect_bool("'500' LIKE '50\\%'", ev, false, CEB_CESQL_OK);
	expect_bool("'a\\b' LIKE 'a\\b'", ev, true, CEB_CESQL_OK);
	expect_bool("'' LIKE '%'", ev, true, CEB_CESQL_OK);
	expect_bool("'' LIKE '_'", ev, false, CEB_CESQL_OK);
	expect_bool("'abcabd' LIKE '%ab_'", ev, true, CEB_CESQL_OK);
	expect_bool("'mississippi' LIKE '%iss%ppi'", ev, true, CEB_CESQL_OK);
	expect_bool("'mississippi' NOT LIKE 'm%x'", ev, true, CEB_CESQL_OK);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_cesql_keywords_are_case_insensitive_and_names_are_lowered)
{
	struct ceb_event *ev = make_event("Order");

	expect_bool("tRuE aNd NoT fAlSe", ev, true, CEB_CESQL_OK);
	expect_bool("EXISTS SOURCE AND Type = 'Order'", ev, true, CEB_CESQL_OK);
	expect_bool("type = 'order'", ev, false, CEB_CESQL_OK);
	expect_bool("type iN ('x', 'Order')", ev, true, CEB_CESQL_OK);
	expect_int("length(type)", ev, 5, CEB_CESQL_OK);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_cesql_logical_operators_are_right_associative_and_short_circuit)
{
	struct ceb_event *ev = make_event("t");

	/* (TRUE OR FALSE) AND FALSE would be false; the grammar groups to the right. */
	expect_bool("TRUE OR FALSE AND FALSE", ev, true, CEB_CESQL_OK);
	expect_bool("FALSE AND missing", ev, false, CEB_CESQL_OK);
	expect_bool("TRUE OR missing", ev, true, CEB_CESQL_OK);
	expect_bool("TRUE XOR TRUE XOR TRUE", ev, true, CEB_CESQL_OK);
	expect_bool("TRUE XOR FALSE AND missing", ev, true, CEB_CESQL_OK);
	expect_bool("FALSE XOR TRUE AND missing", ev, false, CEB_CESQL_EMISSING_ATTRIBUTE);
	expect_bool("TRUE AND 'yes'", ev, false, CEB_CESQL_ECAST);
	expect_bool("NOT type = 'x'", ev, false, CEB_CESQL_ECAST); /* (NOT type) = 'x' */
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_cesql_integer_arithmetic_wraps_and_division_by_zero_is_a_math_error)
{
	struct ceb_event *ev = make_event("t");

	expect_int("2147483647 + 1", ev, INT32_MIN, CEB_CESQL_OK);
	expect_int("-2147483648 - 1", ev, INT32_MAX, CEB_CESQL_OK);
	expect_int("65536 * 65536", ev, 0, CEB_CESQL_OK);
	expect_int("-2147483648 / -1", ev, INT32_MIN, CEB_CESQL_OK);
	expect_int("-2147483648 % -1", ev, 0, CEB_CESQL_OK);
	expect_int("-(-2147483648)", ev, INT32_MIN, CEB_CESQL_OK);
	expect_int("-7 / 2", ev, -3, CEB_CESQL_OK);
	expect_int("-7 % 2", ev, -1, CEB_CESQL_OK);
	expect_int("7 % 0", ev, 0, CEB_CESQL_EMATH);
	expect_int("ABS(-2147483648)", ev, INT32_MAX, CEB_CESQL_EMATH);
	expect_int("'x' + 1", ev, 0, CEB_CESQL_ECAST);
	expect_int("'99999999999' + 1", ev, 0, CEB_CESQL_ECAST);
	expect_int("'+12' + 1", ev, 13, CEB_CESQL_OK);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_cesql_integer_and_boolean_attributes_keep_their_types)
{
	struct ceb_event *ev = make_event("t");

	ck_assert_int_eq(ceb_event_set_int(ev, "myint", 42), 0);
	ck_assert_int_eq(ceb_event_set_bool(ev, "mybool", true), 0);
	expect_int("myint + 1", ev, 43, CEB_CESQL_OK);
	expect_bool("mybool AND TRUE", ev, true, CEB_CESQL_OK);
	expect_bool("myint = '42'", ev, true, CEB_CESQL_OK); /* right side String: "42" = "42" */
	expect_bool("'42' = myint", ev, true, CEB_CESQL_OK); /* right side Integer: 42 = 42 */
	expect_bool("mybool = 'true'", ev, true, CEB_CESQL_OK);
	expect_bool("myint IN ('41', '42')", ev, true, CEB_CESQL_OK);
	expect_str("STRING(myint)", ev, "42");
	expect_int("missing + myint", ev, 0, CEB_CESQL_EMISSING_ATTRIBUTE);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_cesql_string_functions_count_characters_not_bytes)
{
	struct ceb_event *ev = make_event("t");

	expect_int("LENGTH('h\xc3\xa9llo')", ev, 5, CEB_CESQL_OK);
	expect_int("LENGTH('\xf0\x9f\x98\x80')", ev, 1, CEB_CESQL_OK);
	expect_str("LEFT('\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e', 2)", ev,
	           "\xe6\x97\xa5\xe6\x9c\xac");
	expect_str("RIGHT('\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e', 1)", ev, "\xe8\xaa\x9e");
	expect_str("SUBSTRING('\xc3\xb1"
	           "and\xc3\xba', 2, 3)",
	           ev, "and");
	expect_str("SUBSTRING('\xc3\xb1"
	           "and\xc3\xba', -2)",
	           ev, "d\xc3\xba");
	expect_str("SUBSTRING('abc', 2, 100)", ev, "bc");
	{
		struct ceb_cesql_value v;

		ck_assert_int_eq(eval("SUBSTRING('abc', 1, -1)", ev, &v),
		                 CEB_CESQL_EFUNCTION_EVALUATION);
		ck_assert_str_eq(v.s, "");
		ceb_cesql_value_clear(&v);
		ck_assert_int_eq(eval("RIGHT('abc', -1)", ev, &v), CEB_CESQL_EFUNCTION_EVALUATION);
		ck_assert_str_eq(v.s, "abc");
		ceb_cesql_value_clear(&v);
		ck_assert_int_eq(eval("LENGTH(missing)", ev, &v), CEB_CESQL_EMISSING_ATTRIBUTE);
		ck_assert_int_eq(v.type, CEB_CESQL_INTEGER);
		ck_assert_int_eq(v.i, 0);
		ceb_cesql_value_clear(&v);
	}
	expect_str("CONCAT('a', 1, TRUE, -2)", ev, "a1true-2");
	expect_str("CONCAT()", ev, "");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_lower_and_upper_map_latin1_greek_and_cyrillic)
{
	struct ceb_event *ev = make_event("t");

	expect_str("UPPER('stra\xc3\x9f"
	           "e \xc3\xa9t\xc3\xa9 \xc3\xbf')",
	           ev,
	           "STRA\xc3\x9f"
	           "E \xc3\x89T\xc3\x89 \xc5\xb8");
	expect_str("LOWER('\xce\x91\xce\x92\xce\x93 \xce\xa3')", ev,
	           "\xce\xb1\xce\xb2\xce\xb3 \xcf\x83");
	expect_str("UPPER('\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82')", ev,
	           "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x92\xd0\x95\xd0\xa2");
	expect_str("LOWER('\xc4\xb0I')", ev, "ii"); /* U+0130 to i: one byte shorter */
	expect_str("UPPER('\xc4\xb1')", ev, "I");   /* U+0131 dotless i */
	expect_str("UPPER('a\xff"
	           "b')",
	           ev,
	           "A\xff"
	           "B"); /* invalid bytes pass through */
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_case_table_agrees_with_the_c_utf8_locale)
{
	locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	const uint32_t ranges[][2] = {{0, 0x17F}, {0x370, 0x3FF}, {0x400, 0x4FF}};
	size_t checked = 0;

	if (!loc)
		return; /* nothing to compare with on this machine */
	for (size_t r = 0; r < 3; r++) {
		for (uint32_t c = ranges[r][0]; c <= ranges[r][1]; c++) {
			uint32_t up = ceb_cesql_case_table(c, true);
			uint32_t lo = ceb_cesql_case_table(c, false);

			/* The table maps a subset; where it maps, it must agree with glibc. */
			if (up != c)
				ck_assert_msg(up == (uint32_t)towupper_l(c, loc), "upper U+%04X",
				              c);
			if (lo != c)
				ck_assert_msg(lo == (uint32_t)towlower_l(c, loc), "lower U+%04X",
				              c);
			checked += up != c || lo != c;
		}
	}
	ck_assert_uint_gt(checked, 400);
	/* And it covers the basic alphabets completely. */
	for (uint32_t c = 0x410; c <= 0x42F; c++)
		ck_assert_uint_eq(ceb_cesql_case_table(c, false), (uint32_t)towlower_l(c, loc));
	for (uint32_t c = 0x3B1; c <= 0x3C9; c++)
		ck_assert_uint_eq(ceb_cesql_case_table(c, true), (uint32_t)towupper_l(c, loc));
	for (uint32_t c = 0xC0; c <= 0xFF; c++)
		ck_assert_uint_eq(ceb_cesql_case_table(c, true), (uint32_t)towupper_l(c, loc));
	freelocale(loc);
}
END_TEST

START_TEST(test_trim_removes_unicode_white_space_but_not_control_characters)
{
	struct ceb_event *ev = make_event("t");

	expect_str("TRIM(' \t\xc2\xa0"
	           "a b\xe3\x80\x80\n')",
	           ev, "a b");
	expect_str("TRIM('\x01 a \x01')", ev, "\x01 a \x01");
	expect_str("TRIM('   ')", ev, "");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_string_growth_is_bounded_per_evaluation)
{
	struct ceb_event *ev = make_event("t");
	char *value = malloc(4097), *expr = malloc(4096);
	struct ceb_cesql_value v;
	size_t n;

	ck_assert_ptr_nonnull(value);
	ck_assert_ptr_nonnull(expr);
	memset(value, 'x', 4096);
	value[4096] = '\0';
	set_str(ev, "b", value);
	/* CONCAT of 1100 copies of a 4 KiB attribute: about 4.5 MB, over the 4 MiB scratch cap. */
	n = (size_t)snprintf(expr, 4096, "LENGTH(CONCAT(b");
	for (int i = 1; i < 1100; i++)
		n += (size_t)snprintf(expr + n, 4096 - n, ",b");
	snprintf(expr + n, 4096 - n, "))");
	ck_assert_int_eq(eval(expr, ev, &v), CEB_CESQL_EFUNCTION_EVALUATION);
	ck_assert_int_eq(v.i, 0);
	ceb_cesql_value_clear(&v);
	/* 100 copies fit. */
	n = (size_t)snprintf(expr, 4096, "LENGTH(LOWER(CONCAT(b");
	for (int i = 1; i < 100; i++)
		n += (size_t)snprintf(expr + n, 4096 - n, ",b");
	snprintf(expr + n, 4096 - n, ")))");
	ck_assert_int_eq(eval(expr, ev, &v), CEB_CESQL_OK);
	ck_assert_int_eq(v.i, 409600);
	ceb_cesql_value_clear(&v);
	free(value);
	free(expr);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_cesql_error_names_match_the_tck)
{
	ck_assert_str_eq(ceb_cesql_error_name(CEB_CESQL_OK), "");
	ck_assert_str_eq(ceb_cesql_error_name(CEB_CESQL_EPARSE), "parse");
	ck_assert_str_eq(ceb_cesql_error_name(CEB_CESQL_EMATH), "math");
	ck_assert_str_eq(ceb_cesql_error_name(CEB_CESQL_ECAST), "cast");
	ck_assert_str_eq(ceb_cesql_error_name(CEB_CESQL_EMISSING_ATTRIBUTE), "missingAttribute");
	ck_assert_str_eq(ceb_cesql_error_name(CEB_CESQL_EMISSING_FUNCTION), "missingFunction");
	ck_assert_str_eq(ceb_cesql_error_name(CEB_CESQL_EFUNCTION_EVALUATION),
	                 "functionEvaluation");
	ck_assert_str_eq(ceb_cesql_error_name(CEB_CESQL_EGENERIC), "generic");
}
END_TEST

static Suite *filter_suite(void)
{
	Suite *s = suite_create("filter");
	TCase *attrs = tcase_create("attribute dialects");
	TCase *groups = tcase_create("groups");
	TCase *index = tcase_create("index");
	TCase *sql = tcase_create("cesql");

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
	suite_add_tcase(s, groups);

	tcase_add_test(index, test_index_returns_exactly_the_matching_items_with_1_trigger);
	tcase_add_test(index, test_index_returns_exactly_the_matching_items_with_100_triggers);
	tcase_add_test(index, test_index_returns_exactly_the_matching_items_with_10000_triggers);
	tcase_add_test(index, test_index_keeps_insertion_order_and_stops_when_the_callback_says_so);
	tcase_set_timeout(index, 60);
	suite_add_tcase(s, index);

	tcase_add_test(sql, test_cesql_filter_passes_only_boolean_true_without_error);
	tcase_add_test(sql, test_cesql_parse_errors_name_the_column);
	tcase_add_test(sql, test_cesql_accepts_the_extremes_of_integer_literals);
	tcase_add_test(sql, test_unknown_functions_are_rejected_by_the_filter_not_the_evaluator);
	tcase_add_test(sql, test_cesql_expressions_over_the_length_limit_are_rejected);
	tcase_add_test(sql, test_cesql_nesting_deeper_than_the_limit_is_rejected);
	tcase_add_test(sql, test_like_with_many_wildcards_against_a_long_value_stays_linear);
	tcase_add_test(sql, test_like_wildcards_escapes_and_characters);
	tcase_add_test(sql, test_cesql_keywords_are_case_insensitive_and_names_are_lowered);
	tcase_add_test(sql, test_cesql_logical_operators_are_right_associative_and_short_circuit);
	tcase_add_test(sql,
	               test_cesql_integer_arithmetic_wraps_and_division_by_zero_is_a_math_error);
	tcase_add_test(sql, test_cesql_integer_and_boolean_attributes_keep_their_types);
	tcase_add_test(sql, test_cesql_string_functions_count_characters_not_bytes);
	tcase_add_test(sql, test_lower_and_upper_map_latin1_greek_and_cyrillic);
	tcase_add_test(sql, test_case_table_agrees_with_the_c_utf8_locale);
	tcase_add_test(sql, test_trim_removes_unicode_white_space_but_not_control_characters);
	tcase_add_test(sql, test_string_growth_is_bounded_per_evaluation);
	tcase_add_test(sql, test_cesql_error_names_match_the_tck);
	tcase_set_timeout(sql, 60);
	suite_add_tcase(s, sql);
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
