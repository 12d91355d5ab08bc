/* libFuzzer target for the HTTP binding. Input: the Content-Type on the first line (empty: none),
 * then `name: value` header lines up to an empty line, then the body. Whatever decodes must survive
 * a round trip through binary and structured mode (and a batch through batched mode), else abort. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/ce/http_binding.h"
#include "broker/ce/json_format.h"
#include "tests/fuzz/roundtrip.h"

#define MAX_HEADERS 64

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_http: %s: %s\n", what, detail);
	abort();
}

static void check_event(const struct ceb_event *ev)
{
	struct ceb_event *back = NULL;
	enum ceb_http_mode got;
	char err[256];
	int rc;

	rc = rt_http(ev, CEB_HTTP_STRUCTURED, NULL, &back, &got, err, sizeof(err));
	if (rc != 0)
		fail("structured round trip rejected", err);
	if (got != CEB_HTTP_STRUCTURED || !rt_equal_after_structured(ev, back))
		fail("structured round trip changed the event", "");
	ceb_event_unref(back);
	back = NULL;
	rc = rt_http(ev, CEB_HTTP_BINARY, NULL, &back, &got, err, sizeof(err));
	if (rc == CEB_EUNSUPPORTED && !ceb_http_binary_possible(ev))
		return;
	if (rc != 0)
		fail("binary round trip rejected", err);
	if (got != CEB_HTTP_BINARY || !rt_equal_after_binary(ev, back))
		fail("binary round trip changed the event", "");
	ceb_event_unref(back);
}

static void check_batch(struct ceb_event **evs, size_t n)
{
	struct ceb_buf body = CEB_BUF_INIT;
	struct ceb_http_header h = {"Content-Type", CEB_HTTP_BATCH_CT};
	struct ceb_http_request req = {&h, 1, NULL, 0};
	struct ceb_event **back = NULL;
	enum ceb_http_mode got;
	size_t m = 0;
	char err[256];

	if (ceb_json_encode_batch(evs, n, &body) != 0)
		fail("batch encode failed", "");
	req.body = body.p;
	req.body_len = body.len;
	if (ceb_http_decode(&req, NULL, &back, &m, &got, err, sizeof(err)) != 0)
		fail("batch round trip rejected", err);
	if (got != CEB_HTTP_BATCH || m != n)
		fail("batch round trip changed the count", body.p);
	for (size_t i = 0; i < m; i++) {
		if (!rt_equal_after_structured(evs[i], back[i]))
			fail("batch round trip changed an event", body.p);
		ceb_event_unref(back[i]);
	}
	free(back);
	ceb_buf_free(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ceb_http_header h[MAX_HEADERS];
	struct ceb_http_request req = {h, 0, NULL, 0};
	struct ceb_event **evs = NULL;
	enum ceb_http_mode mode;
	char *buf, *p, *end, *nl, *colon;
	size_t n = 0;
	char err[256];

	/* A NUL-terminated copy whose lines become the header strings. */
	buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	p = buf;
	end = buf + size;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (!nl) {
		free(buf);
		return 0;
	}
	*nl = '\0';
	if (nl > p)
		h[req.nheaders++] = (struct ceb_http_header){"Content-Type", p};
	p = nl + 1;
	while (p < end && *p != '\n') {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		*nl = '\0';
		colon = strchr(p, ':');
		if (colon && req.nheaders < MAX_HEADERS) {
			*colon = '\0';
			h[req.nheaders++] = (struct ceb_http_header){p, colon + 1};
		}
		p = nl + 1;
	}
	if (p < end)
		p++;
	req.body = p < end ? p : NULL;
	req.body_len = p < end ? (size_t)(end - p) : 0;
	if (ceb_http_decode(&req, NULL, &evs, &n, &mode, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < n; i++)
			check_event(evs[i]);
		if (mode == CEB_HTTP_BATCH)
			check_batch(evs, n);
		for (size_t i = 0; i < n; i++)
			ceb_event_unref(evs[i]);
		free(evs);
	}
	free(buf);
	return 0;
}
