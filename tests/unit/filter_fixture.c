/* Helpers shared by the filter and CESQL unit tests (filter_fixture.h). */
#include <check.h>
#include <string.h>

#include "broker/error.h"
#include "tests/unit/filter_fixture.h"

struct ceb_event *make_event(const char *type)
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

void set_str(struct ceb_event *ev, const char *name, const char *value)
{
	char err[128];

	ck_assert_msg(ceb_event_set(ev, name, CEB_TYPE_STRING, value, strlen(value), err,
	                            sizeof(err)) == 0,
	              "set %s: %s", name, err);
}

struct ceb_filter *attrs1(enum ceb_filter_kind kind, const char *name, const char *value)
{
	struct ceb_filter *flt = NULL;
	char err[256];

	ck_assert_msg(ceb_filter_attrs(kind, 1, &name, &value, &flt, err, sizeof(err)) == 0, "%s",
	              err);
	return flt;
}

struct ceb_filter *cesql(const char *expr)
{
	struct ceb_filter *flt = NULL;
	char err[256];

	ck_assert_msg(ceb_filter_cesql(expr, NULL, &flt, err, sizeof(err), NULL) == 0, "%s: %s",
	              expr, err);
	return flt;
}

struct ceb_filter *group2(enum ceb_filter_kind kind, struct ceb_filter *a, struct ceb_filter *b)
{
	struct ceb_filter *kids[2] = {a, b}, *flt = NULL;
	char err[256];

	ck_assert_msg(ceb_filter_group(kind, kids, b ? 2 : 1, &flt, err, sizeof(err)) == 0, "%s",
	              err);
	return flt;
}

/* Evaluates expr against ev with the TCK-facing API. */
enum ceb_cesql_error eval(const char *expr, const struct ceb_event *ev, struct ceb_cesql_value *out)
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

void expect_str(const char *expr, const struct ceb_event *ev, const char *want)
{
	struct ceb_cesql_value v;
	enum ceb_cesql_error err = eval(expr, ev, &v);

	ck_assert_msg(err == CEB_CESQL_OK, "%s: error %s", expr, ceb_cesql_error_name(err));
	ck_assert_int_eq(v.type, CEB_CESQL_STRING);
	ck_assert_msg(strcmp(v.s, want) == 0, "%s: got '%s', want '%s'", expr, v.s, want);
	ceb_cesql_value_clear(&v);
}

void expect_int(const char *expr, const struct ceb_event *ev, int32_t want,
                enum ceb_cesql_error want_err)
{
	struct ceb_cesql_value v;
	enum ceb_cesql_error err = eval(expr, ev, &v);

	ck_assert_msg(err == want_err, "%s: error '%s'", expr, ceb_cesql_error_name(err));
	ck_assert_int_eq(v.type, CEB_CESQL_INTEGER);
	ck_assert_msg(v.i == want, "%s: got %d, want %d", expr, (int)v.i, (int)want);
	ceb_cesql_value_clear(&v);
}

void expect_bool(const char *expr, const struct ceb_event *ev, bool want,
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
int expect_parse_error(const char *expr, const char *want_msg, const struct ceb_cesql_limits *lim)
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
