/* libFuzzer target for the JSON event format: decodes the input as one event and as a batch; whatever
 * decodes must encode and decode again to an equal event (abort otherwise). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/ce/json_format.h"
#include "tests/fuzz/roundtrip.h"

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_json: %s: %s\n", what, detail);
	abort();
}

static void check_single(const char *buf, size_t len)
{
	struct ceb_event *ev = NULL, *back = NULL;
	struct ceb_buf out = CEB_BUF_INIT;
	enum ceb_http_mode got;
	char err[256];

	if (ceb_json_decode(buf, len, NULL, &ev, err, sizeof(err)) != 0)
		return;
	if (ceb_json_encode(ev, &out) != 0)
		fail("encode failed", "");
	if (ceb_json_decode(out.p, out.len, NULL, &back, err, sizeof(err)) != 0)
		fail("re-encoded event rejected", err);
	if (!rt_equal_after_structured(ev, back))
		fail("JSON round trip changed the event", out.p);
	ceb_event_unref(back);
	back = NULL;
	/* The same event through HTTP binary mode, where the binding allows it. */
	if (ceb_http_binary_possible(ev)) {
		if (rt_http(ev, CEB_HTTP_BINARY, NULL, &back, &got, err, sizeof(err)) != 0)
			fail("binary round trip rejected", err);
		if (!rt_equal_after_binary(ev, back))
			fail("binary round trip changed the event", out.p);
	}
	ceb_event_unref(back);
	ceb_event_unref(ev);
	ceb_buf_free(&out);
}

static void check_batch(const char *buf, size_t len)
{
	struct ceb_event **evs = NULL, **back = NULL;
	struct ceb_buf out = CEB_BUF_INIT;
	size_t n = 0, m = 0;
	char err[256];

	if (ceb_json_decode_batch(buf, len, NULL, &evs, &n, err, sizeof(err)) != 0)
		return;
	if (ceb_json_encode_batch(evs, n, &out) != 0)
		fail("batch encode failed", "");
	if (ceb_json_decode_batch(out.p, out.len, NULL, &back, &m, err, sizeof(err)) != 0)
		fail("re-encoded batch rejected", err);
	if (m != n)
		fail("batch round trip changed the count", out.p);
	for (size_t i = 0; i < n; i++) {
		if (!rt_equal_after_structured(evs[i], back[i]))
			fail("batch round trip changed an event", out.p);
		ceb_event_unref(evs[i]);
		ceb_event_unref(back[i]);
	}
	free(evs);
	free(back);
	ceb_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_single((const char *)data, size);
	check_batch((const char *)data, size);
	return 0;
}
