/* Helpers shared by the filter and CESQL unit tests: events to match and filters to build, each
 * asserting success (a failure ends the test with the reason). */
#ifndef CEB_TEST_FILTER_FIXTURE_H
#define CEB_TEST_FILTER_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/ce/event.h"
#include "filters/cesql/cesql.h"
#include "filters/filter.h"

/* An event with specversion, id, source and (unless NULL) type. */
struct ceb_event *make_event(const char *type);
void set_str(struct ceb_event *ev, const char *name, const char *value);
struct ceb_filter *attrs1(enum ceb_filter_kind kind, const char *name, const char *value);
struct ceb_filter *cesql(const char *expr);
struct ceb_filter *group2(enum ceb_filter_kind kind, struct ceb_filter *a, struct ceb_filter *b);
/* Evaluates expr against ev with the TCK-facing API. */
enum ceb_cesql_error eval(const char *expr, const struct ceb_event *ev,
                          struct ceb_cesql_value *out);
void expect_str(const char *expr, const struct ceb_event *ev, const char *want);
void expect_int(const char *expr, const struct ceb_event *ev, int32_t want,
                enum ceb_cesql_error want_err);
void expect_bool(const char *expr, const struct ceb_event *ev, bool want,
                 enum ceb_cesql_error want_err);
/* Compiles expr expecting a syntax error; returns the column and checks the message. */
int expect_parse_error(const char *expr, const char *want_msg, const struct ceb_cesql_limits *lim);

#endif
