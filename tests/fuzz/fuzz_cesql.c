/* libFuzzer target for the CESQL compiler and evaluator: compiles the input as an expression and, if
 * it compiles, evaluates it against two fixed events (one with Integer and Boolean extensions). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "broker/ce/event.h"
#include "filters/cesql/cesql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ceb_event *events[2];

static struct ceb_event *make_event(bool typed)
{
	static const char *const attrs[][2] = {
	        {"specversion", "1.0"},
	        {"id", "fuzz-1"},
	        {"source", "http://example.com/source"},
	        {"type", "com.example.fuzz"},
	        {"subject", "topic"},
	        {"time", "2018-04-26T14:48:09+02:00"},
	        {"myext", "customext"},
	        {"hop", "5"},
	        {"ttl", "10"},
	        {"uni", "\xc3\xb1"
	                "and\xc3\xba \xce\x91\xce\x92 \xe6\x97\xa5\xe6\x9c\xac"},
	};
	struct ceb_event *ev = ceb_event_new();
	char err[128];

	if (!ev)
		abort();
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
		if (ceb_event_set(ev, attrs[i][0], CEB_TYPE_STRING, attrs[i][1],
		                  strlen(attrs[i][1]), err, sizeof(err)) != 0)
			abort();
	if (typed && (ceb_event_set_int(ev, "myint", -2147483647 - 1) != 0 ||
	              ceb_event_set_bool(ev, "mybool", true) != 0 ||
	              ceb_event_set_int(ev, "sequence", 10) != 0))
		abort();
	return ev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ceb_cesql *q = NULL;
	struct ceb_cesql_value v;
	char err[256];
	int col, rc;

	if (!events[0]) {
		events[0] = make_event(false);
		events[1] = make_event(true);
	}
	rc = ceb_cesql_compile((const char *)data, size, NULL, &q, err, sizeof(err), &col);
	if (rc != 0) {
		/* Every syntax error must say where. */
		if (rc == CEB_EINVAL && (col < 1 || (size_t)col > size + 1 || !err[0]))
			abort();
		return 0;
	}
	for (size_t i = 0; i < 2; i++) {
		enum ceb_cesql_error e = ceb_cesql_eval(q, events[i], &v);
		bool pass = ceb_cesql_match(q, events[i]);

		/* The filter verdict and the full evaluation must agree. */
		if (pass != (e == CEB_CESQL_OK && v.type == CEB_CESQL_BOOLEAN && v.b))
			abort();
		if (v.type == CEB_CESQL_STRING && (!v.s || strlen(v.s) > v.len))
			abort();
		ceb_cesql_value_clear(&v);
	}
	ceb_cesql_free(q);
	return 0;
}
