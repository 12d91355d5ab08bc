/* Unit tests of the CESQL compiler and evaluator beyond what the TCK covers: columns, limits,
 * operators, Unicode case mapping and string functions. */
#include <check.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "broker/error.h"
#include "tests/unit/filter_fixture.h"

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

static Suite *cesql_suite(void)
{
	Suite *s = suite_create("cesql");
	TCase *sql = tcase_create("cesql");

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
	SRunner *sr = srunner_create(cesql_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
