/* Helpers shared by the unit suites: fixture files under $top_srcdir, HTTP round trips, and event
 * comparison modulo what binary mode cannot carry. */
#ifndef CEB_TEST_FIXTURES_H
#define CEB_TEST_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>

#include "broker/ce/event.h"
#include "broker/ce/http_binding.h"
#include "tests/fuzz/roundtrip.h"

/* The contents of $top_srcdir/relpath (NUL-terminated, malloc'd, *len bytes), or NULL. */
char *fixture_read(const char *relpath, size_t *len);

/* Decodes a JSON-format event, failing the test (with the decoder's reason) when it does not. */
struct ceb_event *fixture_json_event(const char *json);

/* Headers collected from ceb_http_encode_headers() are a struct rt_headers (rt_headers_add,
 * rt_headers_free in tests/fuzz/roundtrip.h). The value of the first header of that name
 * (case-insensitive), or NULL. */
const char *fixture_header(const struct rt_headers *hs, const char *name);

/* Encodes ev for HTTP in mode (binary: headers + data; structured: Content-Type + JSON) and decodes
 * the request again with the default limits. Returns what ceb_http_decode returns. */
int fixture_http_roundtrip(const struct ceb_event *ev, enum ceb_http_mode mode,
                           struct ceb_event **out, char *errbuf, size_t errlen);

/* Equality after a binary-mode round trip: see rt_equal_after_binary() in tests/fuzz/roundtrip.h
 * (extension types may become String, JSON data gains datacontenttype application/json, empty data
 * and no data are the same). */
bool fixture_equal_after_binary(const struct ceb_event *orig, const struct ceb_event *back);

#endif
