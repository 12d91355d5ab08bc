/* Unit tests of the HTTP protocol binding (broker/http_binding.c): mode selection, binary-mode header
 * decoding and encoding, round trips of every fixture, and the cloudevents/conformance YAML events. */
#include <check.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "broker/ce/json_format.h"
#include "tests/unit/fixtures.h"

static char err[512];

#define MIN_JSON "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}"

/* Headers of a request, terminated by a NULL name. */
struct hdr {
	const char *name;
	const char *value;
};

static const struct hdr required[] = {
        {"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "/s"},
        {"ce-type", "t"},          {NULL, NULL},
};

/* Decodes a request made of the required ce- headers (when with_required), extra, and body. */
static int request(bool with_required, const struct hdr *extra, const char *body, size_t body_len,
                   const struct ceb_limits *lim, struct ceb_event ***evs, size_t *n,
                   enum ceb_http_mode *mode)
{
	struct ceb_http_header h[64];
	struct ceb_http_request req = {h, 0, body, body_len};

	for (int i = 0; with_required && required[i].name; i++)
		h[req.nheaders++] = (struct ceb_http_header){required[i].name, required[i].value};
	for (int i = 0; extra && extra[i].name; i++)
		h[req.nheaders++] = (struct ceb_http_header){extra[i].name, extra[i].value};
	err[0] = '\0';
	*evs = NULL;
	*n = 0;
	return ceb_http_decode(&req, lim, evs, n, mode, err, sizeof(err));
}

static void free_events(struct ceb_event **evs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		ceb_event_unref(evs[i]);
	free(evs);
}

/* A binary-mode event from the required headers plus extra; fails the test if rejected. */
static struct ceb_event *binary(const struct hdr *extra, const char *body)
{
	struct ceb_event **evs, *ev;
	enum ceb_http_mode mode;
	size_t n;
	int rc = request(true, extra, body, body ? strlen(body) : 0, NULL, &evs, &n, &mode);

	ck_assert_msg(rc == 0, "rejected: %s", err);
	ck_assert_int_eq(mode, CEB_HTTP_BINARY);
	ck_assert_uint_eq(n, 1);
	ev = evs[0];
	free(evs);
	return ev;
}

/* Asserts a request is rejected with rc and a message containing want. */
static void assert_request_rejected(bool with_required, const struct hdr *extra, const char *body,
                                    int rc, const char *want)
{
	struct ceb_event **evs;
	enum ceb_http_mode mode;
	size_t n;
	int got =
	        request(with_required, extra, body, body ? strlen(body) : 0, NULL, &evs, &n, &mode);

	ck_assert_msg(got == rc, "got %d (%s), want %d", got, err, rc);
	ck_assert_msg(strstr(err, want), "message '%s' lacks '%s'", err, want);
	ck_assert_ptr_null(evs);
	ck_assert_uint_eq(n, 0);
}

static void assert_ext(const char *header_value, const char *want)
{
	const struct hdr extra[] = {{"ce-myext", header_value}, {NULL, NULL}};
	struct ceb_event *ev = binary(extra, NULL);

	ck_assert_str_eq(ceb_event_get(ev, "myext")->value, want);
	ceb_event_unref(ev);
}

static void assert_ext_rejected(const char *header_value, const char *want)
{
	const struct hdr extra[] = {{"ce-myext", header_value}, {NULL, NULL}};

	assert_request_rejected(true, extra, NULL, CEB_EINVAL, want);
}

/* --- the conformance repo's HTTP feature scenarios --- */

static const char feature_body[] = "{\n    \"message\": \"Hello World!\"\n}";

START_TEST(test_binary_mode_maps_ce_headers_content_type_and_body)
{
	static const char *const cts[] = {"application/json", "application/json; charset=utf-8"};
	const struct hdr h[] = {
	        {"Host", "example.com"},
	        {"ce-specversion", "1.0"},
	        {"ce-type", "com.example.someevent"},
	        {"ce-time", "2018-04-05T03:56:24Z"},
	        {"ce-id", "1234-1234-1234"},
	        {"ce-source", "/mycontext/subcontext"},
	        {"Content-Type", cts[_i]},
	        {"Content-Length", "33"},
	        {NULL, NULL},
	};
	struct ceb_event **evs;
	enum ceb_http_mode mode;
	size_t n, len;
	const char *data;

	ck_assert_int_eq(
	        request(false, h, feature_body, strlen(feature_body), NULL, &evs, &n, &mode), 0);
	ck_assert_int_eq(mode, CEB_HTTP_BINARY);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ceb_event_attr_count(evs[0]), 6);
	ck_assert_str_eq(ceb_event_get(evs[0], "id")->value, "1234-1234-1234");
	ck_assert_str_eq(ceb_event_get(evs[0], "specversion")->value, "1.0");
	ck_assert_str_eq(ceb_event_get(evs[0], "type")->value, "com.example.someevent");
	ck_assert_str_eq(ceb_event_get(evs[0], "source")->value, "/mycontext/subcontext");
	ck_assert_str_eq(ceb_event_get(evs[0], "time")->value, "2018-04-05T03:56:24Z");
	ck_assert_str_eq(ceb_event_get(evs[0], "datacontenttype")->value, cts[_i]);
	data = ceb_event_data(evs[0], &len);
	ck_assert_uint_eq(len, strlen(feature_body));
	ck_assert_int_eq(memcmp(data, feature_body, len), 0);
	free_events(evs, n);
}
END_TEST

START_TEST(test_structured_mode_accepts_cloudevents_json_with_or_without_charset)
{
	static const char *const cts[] = {
	        "application/cloudevents+json",
	        "application/cloudevents+json; charset=utf-8",
	        "Application/CloudEvents+JSON; Charset=UTF-8",
	        "application/cloudevents+json;charset=\"utf-8\"",
	};
	static const char body[] = "{\n"
	                           "    \"specversion\": \"1.0\",\n"
	                           "    \"type\": \"com.example.someevent\",\n"
	                           "    \"time\": \"2018-04-05T03:56:24Z\",\n"
	                           "    \"id\": \"1234-1234-1234\",\n"
	                           "    \"source\": \"/mycontext/subcontext\",\n"
	                           "    \"datacontenttype\": \"application/json\",\n"
	                           "    \"data\": {\n"
	                           "        \"message\": \"Hello World!\"\n"
	                           "    }\n"
	                           "}";
	static const char data_want[] = "{\n        \"message\": \"Hello World!\"\n    }";
	const struct hdr h[] = {{"Content-Type", cts[_i]}, {"ce-id", "ignored"}, {NULL, NULL}};
	struct ceb_event **evs;
	enum ceb_http_mode mode;
	size_t n, len;
	const char *data;

	ck_assert_int_eq(request(false, h, body, strlen(body), NULL, &evs, &n, &mode), 0);
	ck_assert_int_eq(mode, CEB_HTTP_STRUCTURED);
	ck_assert_uint_eq(ceb_event_attr_count(evs[0]), 6);
	/* ce- headers MAY accompany structured mode; the body is what counts. */
	ck_assert_str_eq(ceb_event_get(evs[0], "id")->value, "1234-1234-1234");
	ck_assert_str_eq(ceb_event_get(evs[0], "datacontenttype")->value, "application/json");
	data = ceb_event_data(evs[0], &len);
	ck_assert_uint_eq(len, strlen(data_want));
	ck_assert_int_eq(memcmp(data, data_want, len), 0);
	free_events(evs, n);
}
END_TEST

/* --- mode selection --- */

START_TEST(test_batch_mode_is_tested_first_and_case_insensitively)
{
	const char *body = "[" MIN_JSON "," MIN_JSON "]";
	const struct hdr h[] = {{"CONTENT-TYPE", "Application/CloudEvents-Batch+Json"},
	                        {NULL, NULL}};
	struct ceb_event **evs;
	enum ceb_http_mode mode;
	size_t n;

	ck_assert_int_eq(request(false, h, body, strlen(body), NULL, &evs, &n, &mode), 0);
	ck_assert_int_eq(mode, CEB_HTTP_BATCH);
	ck_assert_uint_eq(n, 2);
	free_events(evs, n);
	ck_assert_int_eq(request(false, h, "[]", 2, NULL, &evs, &n, &mode), 0);
	ck_assert_int_eq(mode, CEB_HTTP_BATCH);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(evs);
}
END_TEST

START_TEST(test_other_event_formats_are_unsupported_media_types)
{
	static const char *const cts[] = {
	        "application/cloudevents+avro",
	        "application/cloudevents+xml",
	        "application/cloudevents",
	        "application/cloudevents-batch+xml",
	        "application/cloudevents-batch",
	        "application/cloudeventsjson",
	        "application/cloudevents+json; charset=iso-8859-1",
	        "application/cloudevents-batch+json; charset=utf-16",
	};
	const struct hdr h[] = {{"Content-Type", cts[_i]}, {NULL, NULL}};

	assert_request_rejected(false, h, MIN_JSON, CEB_EUNSUPPORTED, "is not supported");
}
END_TEST

START_TEST(test_structured_and_batch_errors_are_reported)
{
	const struct hdr st[] = {{"Content-Type", "application/cloudevents+json"}, {NULL, NULL}};
	const struct hdr bt[] = {{"Content-Type", "application/cloudevents-batch+json"},
	                         {NULL, NULL}};

	assert_request_rejected(false, st, "{\"id\":\"1\"}", CEB_EINVAL,
	                        "missing required attribute 'specversion'");
	assert_request_rejected(false, st, "", CEB_EINVAL, "invalid JSON");
	/* An empty body may come as NULL (a fuzzer finding: NULL + 0 is undefined). */
	assert_request_rejected(false, st, NULL, CEB_EINVAL, "empty body");
	assert_request_rejected(false, bt, NULL, CEB_EINVAL, "empty body");
	assert_request_rejected(false, bt, MIN_JSON, CEB_EINVAL, "must be an array of events");
	assert_request_rejected(false, bt, "[" MIN_JSON ",{}]", CEB_EINVAL,
	                        "event 2: missing required attribute");
}
END_TEST

START_TEST(test_more_than_one_content_type_is_rejected)
{
	const struct hdr h[] = {
	        {"Content-Type", "text/plain"}, {"content-type", "text/plain"}, {NULL, NULL}};

	assert_request_rejected(true, h, "x", CEB_EINVAL, "more than one Content-Type header");
}
END_TEST

/* --- binary mode headers --- */

START_TEST(test_binary_mode_percent_decodes_header_values)
{
	assert_ext("Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro \xe2\x82\xac \xf0\x9f\x98\x80");
	/* Lower-case hex and unnecessary escapes are fine. */
	assert_ext("Euro%20%e2%82%ac%20%f0%9f%98%80", "Euro \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_ext("%41%42c", "ABc");
	/* Exactly one round. */
	assert_ext("%2541", "%41");
	/* Raw UTF-8 from a lax sender is accepted when it is valid. */
	assert_ext("caf\xc3\xa9", "caf\xc3\xa9");
	/* Surrounding whitespace is not part of the value. */
	assert_ext("  v  ", "v");
	assert_ext("", "");
}
END_TEST

START_TEST(test_binary_mode_undoes_quoted_strings_before_percent_decoding)
{
	assert_ext("\"Euro%20%E2%82%AC\"", "Euro \xe2\x82\xac");
	assert_ext("\"a \\\"b\\\" c\"", "a \"b\" c");
	assert_ext("\"back\\\\slash\"", "back\\slash");
	assert_ext("\"%25\"", "%");
	assert_ext("\"\"", "");
	assert_ext_rejected("\"unterminated", "header 'ce-myext': unterminated quoted-string");
	assert_ext_rejected("\"a\"b", "text after its closing quote");
	assert_ext_rejected("\"a\\\"", "unterminated quoted-string");
}
END_TEST

START_TEST(test_binary_mode_rejects_invalid_utf8_after_decoding)
{
	assert_ext_rejected("%C0%A0", "header 'ce-myext': not valid UTF-8 after percent-decoding");
	assert_ext_rejected("%FF", "not valid UTF-8");
	assert_ext_rejected("%ED%A0%80", "not valid UTF-8");
	assert_ext_rejected("%E2%82", "not valid UTF-8");
	assert_ext_rejected("\xc0\xa0", "not valid UTF-8");
}
END_TEST

START_TEST(test_binary_mode_rejects_bad_percent_escapes)
{
	assert_ext_rejected("%G1", "header 'ce-myext': bad percent-escape");
	assert_ext_rejected("%4", "bad percent-escape");
	assert_ext_rejected("abc%", "bad percent-escape");
	assert_ext_rejected("%%41", "bad percent-escape");
}
END_TEST

START_TEST(test_binary_mode_applies_the_type_system_after_decoding)
{
	assert_ext_rejected("a%0Ab", "attribute 'myext': control character U+000A");
	assert_ext_rejected("%EF%BF%BE", "noncharacter U+FFFE");
	{
		const struct hdr h[] = {{"ce-time", "2018-02-30T00:00:00Z"}, {NULL, NULL}};

		assert_request_rejected(true, h, NULL, CEB_EINVAL,
		                        "attribute 'time': not an RFC 3339 timestamp");
	}
	{
		const struct hdr h[] = {{"ce-subject", ""}, {NULL, NULL}};

		assert_request_rejected(true, h, NULL, CEB_EINVAL,
		                        "attribute 'subject': must not be empty");
	}
	{
		const struct hdr h[] = {{"Content-Type", "not a media type"}, {NULL, NULL}};

		assert_request_rejected(true, h, "x", CEB_EINVAL, "attribute 'datacontenttype'");
	}
}
END_TEST

START_TEST(test_binary_mode_header_names_are_case_insensitive_and_stored_lower_case)
{
	const struct hdr h[] = {
	        {"CE-SPECVERSION", "1.0"}, {"Ce-Id", "1"},          {"cE-sOuRcE", "/s"},
	        {"ce-type", "t"},          {"CE-MyExtension", "x"}, {NULL, NULL},
	};
	struct ceb_event **evs;
	enum ceb_http_mode mode;
	size_t n;

	ck_assert_int_eq(request(false, h, NULL, 0, NULL, &evs, &n, &mode), 0);
	ck_assert_str_eq(ceb_event_get(evs[0], "myextension")->value, "x");
	ck_assert_str_eq(ceb_event_attr_at(evs[0], 4)->name, "myextension");
	ck_assert(!ceb_event_has_data(evs[0]));
	free_events(evs, n);
}
END_TEST

START_TEST(test_binary_mode_rejects_ce_datacontenttype)
{
	const struct hdr h[] = {{"ce-datacontenttype", "text/plain"}, {NULL, NULL}};
	const struct hdr h2[] = {
	        {"Content-Type", "text/plain"}, {"CE-DataContentType", "text/plain"}, {NULL, NULL}};

	assert_request_rejected(
	        true, h, "x", CEB_EINVAL,
	        "header 'ce-datacontenttype' is not allowed in binary mode; send the "
	        "media type in Content-Type");
	assert_request_rejected(true, h2, "x", CEB_EINVAL, "'ce-datacontenttype' is not allowed");
}
END_TEST

START_TEST(test_binary_mode_rejects_duplicate_ce_headers)
{
	const struct hdr h[] = {{"ce-id", "2"}, {NULL, NULL}};
	const struct hdr h2[] = {{"ce-x", "1"}, {"CE-X", "2"}, {NULL, NULL}};

	assert_request_rejected(true, h, NULL, CEB_EINVAL, "header 'ce-id' appears more than once");
	assert_request_rejected(true, h2, NULL, CEB_EINVAL, "header 'ce-x' appears more than once");
}
END_TEST

START_TEST(test_binary_mode_rejects_invalid_attribute_names)
{
	static const char *const names[] = {"ce-my_ext", "ce-", "ce-data", "ce-a.b", "ce-\xc3\xa9"};
	const struct hdr h[] = {{names[_i], "v"}, {NULL, NULL}};

	assert_request_rejected(true, h, NULL, CEB_EINVAL, "not a valid attribute name");
}
END_TEST

START_TEST(test_binary_mode_keeps_the_body_bytes_exactly)
{
	static const char body[] = "\x00\xff binary \r\n\x00";
	struct ceb_event **evs;
	enum ceb_http_mode mode;
	size_t n, len;
	const char *data;

	ck_assert_int_eq(request(true, NULL, body, sizeof(body) - 1, NULL, &evs, &n, &mode), 0);
	data = ceb_event_data(evs[0], &len);
	ck_assert_uint_eq(len, sizeof(body) - 1);
	ck_assert_int_eq(memcmp(data, body, len), 0);
	ck_assert_uint_eq(ceb_event_data_flags(evs[0]), 0);
	/* No Content-Type: no datacontenttype, and none is implied. */
	ck_assert_ptr_null(ceb_event_get(evs[0], "datacontenttype"));
	ck_assert_ptr_null(ceb_event_content_type(evs[0]));
	free_events(evs, n);
}
END_TEST

START_TEST(test_a_request_without_ce_headers_is_not_a_cloudevent)
{
	const struct hdr h[] = {{"Content-Type", "application/json"}, {NULL, NULL}};

	assert_request_rejected(false, h, "{}", CEB_EINVAL, "not a CloudEvent: no ce- headers");
}
END_TEST

START_TEST(test_binary_mode_names_a_missing_required_attribute)
{
	const struct hdr h[] = {
	        {"ce-specversion", "1.0"}, {"ce-source", "/s"}, {"ce-type", "t"}, {NULL, NULL}};

	assert_request_rejected(false, h, NULL, CEB_EINVAL, "missing required attribute 'id'");
}
END_TEST

START_TEST(test_limits_give_too_big)
{
	struct ceb_limits lim = ceb_limits_default;
	const struct hdr st[] = {{"Content-Type", "application/cloudevents+json"}, {NULL, NULL}};
	const struct hdr ext[] = {{"ce-a", "1"}, {"ce-b", "2"}, {NULL, NULL}};
	const struct hdr bt[] = {{"Content-Type", "application/cloudevents-batch+json"},
	                         {NULL, NULL}};
	struct ceb_event **evs;
	enum ceb_http_mode mode;
	size_t n;
	char body[200];

	memset(body, 'b', sizeof(body));
	lim.max_event_size = 100;
	ck_assert_int_eq(request(true, NULL, body, sizeof(body), &lim, &evs, &n, &mode),
	                 CEB_ETOOBIG);
	ck_assert_ptr_nonnull(strstr(err, "event is over 100 bytes"));
	ck_assert_int_eq(request(false, st, body, sizeof(body), &lim, &evs, &n, &mode),
	                 CEB_ETOOBIG);
	lim = ceb_limits_default;
	lim.max_attrs = 5;
	/* Too many attributes or too long a value is a bad event (400), not a big one (413). */
	ck_assert_int_eq(request(true, ext, NULL, 0, &lim, &evs, &n, &mode), CEB_EINVAL);
	ck_assert_str_eq(err, "too many ce- headers (limit 5 attributes)");
	lim = ceb_limits_default;
	lim.max_value_len = 3;
	ck_assert_int_eq(request(true, (const struct hdr[]){{"ce-a", "%41%42%43%44"}, {NULL, NULL}},
	                         NULL, 0, &lim, &evs, &n, &mode),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "attribute 'a': value is 4 bytes (limit 3)");
	lim = ceb_limits_default;
	lim.max_batch = 1;
	ck_assert_int_eq(request(false, bt, "[" MIN_JSON "," MIN_JSON "]", 2 * strlen(MIN_JSON) + 3,
	                         &lim, &evs, &n, &mode),
	                 CEB_ETOOBIG);
	ck_assert_ptr_null(evs);
}
END_TEST

/* --- encoding --- */

START_TEST(test_percent_encoding_escapes_what_the_binding_requires)
{
	struct ceb_buf out = CEB_BUF_INIT;
	char all[256], want[1024], *p = want;

	ck_assert_int_eq(ceb_percent_encode("Euro \xe2\x82\xac \xf0\x9f\x98\x80", 13, &out), 0);
	ck_assert_str_eq(out.p, "Euro%20%E2%82%AC%20%F0%9F%98%80");
	/* Every byte: 0x21-0x7E except '"' and '%' stay, everything else is %XX upper case. */
	for (int i = 0; i < 256; i++) {
		all[i] = (char)i;
		if (i >= 0x21 && i <= 0x7e && i != '"' && i != '%')
			*p++ = (char)i;
		else
			p += snprintf(p, 4, "%%%02X", i);
	}
	*p = '\0';
	ceb_buf_reset(&out);
	ck_assert_int_eq(ceb_percent_encode(all, 256, &out), 0);
	ck_assert_str_eq(out.p, want);
	ceb_buf_reset(&out);
	ck_assert_int_eq(ceb_percent_decode("Euro%20%E2%82%AC%20%F0%9F%98%80", 31, &out), 0);
	ck_assert_str_eq(out.p, "Euro \xe2\x82\xac \xf0\x9f\x98\x80");
	ceb_buf_reset(&out);
	ck_assert_int_eq(ceb_percent_decode("%C0%A0", 6, &out), CEB_EINVAL);
	ceb_buf_free(&out);
}
END_TEST

START_TEST(test_binary_encoding_writes_one_ce_header_per_attribute)
{
	struct ceb_event *ev = fixture_json_event(
	        "{\"specversion\":\"1.0\",\"id\":\"Euro \xe2\x82\xac "
	        "\xf0\x9f\x98\x80\",\"source\":\"/s\","
	        "\"type\":\"t\",\"datacontenttype\":\"text/plain; charset=\\\"utf-8\\\"\","
	        "\"subject\":\"100% \\\"quoted\\\"\",\"n\":42,\"b\":true,\"data\":\"x\"}");
	struct rt_headers hs = {0};

	ck_assert_int_eq(ceb_http_encode_headers(ev, CEB_HTTP_BINARY, rt_headers_add, &hs), 0);
	ck_assert_uint_eq(hs.n, 8);
	ck_assert_str_eq(hs.h[0].name, "ce-specversion");
	ck_assert_str_eq(fixture_header(&hs, "ce-id"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
	ck_assert_str_eq(fixture_header(&hs, "ce-subject"), "100%25%20%22quoted%22");
	ck_assert_str_eq(fixture_header(&hs, "ce-n"), "42");
	ck_assert_str_eq(fixture_header(&hs, "ce-b"), "true");
	/* datacontenttype travels as Content-Type, not percent-encoded, never as a ce- header. */
	ck_assert_ptr_null(fixture_header(&hs, "ce-datacontenttype"));
	ck_assert_str_eq(hs.h[hs.n - 1].name, "Content-Type");
	ck_assert_str_eq(hs.h[hs.n - 1].value, "text/plain; charset=\"utf-8\"");
	rt_headers_free(&hs);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_binary_encoding_sets_application_json_for_json_data_without_a_type)
{
	struct ceb_event *ev = fixture_json_event(MIN_JSON);
	struct rt_headers hs = {0};

	ck_assert_int_eq(ceb_http_encode_headers(ev, CEB_HTTP_BINARY, rt_headers_add, &hs), 0);
	ck_assert_ptr_null(fixture_header(&hs, "Content-Type"));
	rt_headers_free(&hs);
	ceb_event_unref(ev);
	ev = fixture_json_event(
	        "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
	        "\"data\":\"I'm just a string\"}");
	ck_assert_int_eq(ceb_http_encode_headers(ev, CEB_HTTP_BINARY, rt_headers_add, &hs), 0);
	ck_assert_str_eq(fixture_header(&hs, "Content-Type"), "application/json");
	rt_headers_free(&hs);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_structured_encoding_sends_only_the_format_content_type)
{
	struct ceb_event *ev = fixture_json_event(MIN_JSON);
	struct rt_headers hs = {0};

	ck_assert_int_eq(ceb_http_encode_headers(ev, CEB_HTTP_STRUCTURED, rt_headers_add, &hs), 0);
	ck_assert_uint_eq(hs.n, 1);
	ck_assert_str_eq(hs.h[0].name, "Content-Type");
	ck_assert_str_eq(hs.h[0].value, "application/cloudevents+json; charset=utf-8");
	rt_headers_free(&hs);
	ck_assert_int_eq(ceb_http_encode_headers(ev, CEB_HTTP_BATCH, rt_headers_add, &hs), 0);
	ck_assert_str_eq(hs.h[0].value, "application/cloudevents-batch+json; charset=utf-8");
	rt_headers_free(&hs);
	ceb_event_unref(ev);
}
END_TEST

static int stop_at_third(void *arg, const char *name, const char *value)
{
	int *calls = arg;

	return ++*calls == 3 ? 42 : 0;
}

START_TEST(test_encoding_stops_when_the_callback_fails)
{
	struct ceb_event *ev = fixture_json_event(MIN_JSON);
	int calls = 0;

	ck_assert_int_eq(ceb_http_encode_headers(ev, CEB_HTTP_BINARY, stop_at_third, &calls), 42);
	ck_assert_int_eq(calls, 3);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_data_typed_application_cloudevents_cannot_go_in_binary_mode)
{
	struct ceb_event *ev = fixture_json_event(
	        "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
	        "\"datacontenttype\":\"application/cloudevents+json\",\"data\":" MIN_JSON "}");
	struct rt_headers hs = {0};
	struct ceb_event *back = NULL;

	/* A receiver would take such a body for a structured event, so binary mode refuses it. */
	ck_assert(!ceb_http_binary_possible(ev));
	ck_assert_int_eq(ceb_http_encode_headers(ev, CEB_HTTP_BINARY, rt_headers_add, &hs),
	                 CEB_EUNSUPPORTED);
	ck_assert_uint_eq(hs.n, 0);
	ck_assert_int_eq(fixture_http_roundtrip(ev, CEB_HTTP_STRUCTURED, &back, err, sizeof(err)),
	                 0);
	ck_assert(ceb_event_equal(ev, back));
	ceb_event_unref(back);
	ceb_event_unref(ev);
	ev = fixture_json_event(MIN_JSON);
	ck_assert(ceb_http_binary_possible(ev));
	ceb_event_unref(ev);
}
END_TEST

/* --- round trips --- */

static const char *const fixtures[] = {
        "tests/data/sdk-java-json/v1/min.json",
        "tests/data/sdk-java-json/v1/min_subject_null.json",
        "tests/data/sdk-java-json/v1/json_data.json",
        "tests/data/sdk-java-json/v1/json_data_with_ext.json",
        "tests/data/sdk-java-json/v1/json_data_with_fractional_time.json",
        "tests/data/sdk-java-json/v1/base64_json_data.json",
        "tests/data/sdk-java-json/v1/base64_json_data_with_ext.json",
        "tests/data/sdk-java-json/v1/base64_text_data.json",
        "tests/data/sdk-java-json/v1/base64_xml_data.json",
        "tests/data/sdk-java-json/v1/text_data.json",
        "tests/data/sdk-java-json/v1/xml_data.json",
        "tests/data/sdk-java-json/v1/binary_attr.json",
        "tests/data/sdk-java-json/v1/numeric_ext.json",
        "tests/data/sdk-javascript/structured-event-0.json",
        "tests/data/sdk-javascript/structured-event-1.json",
        "tests/data/sdk-javascript/structured-event-2.json",
};

START_TEST(test_every_valid_fixture_survives_both_modes)
{
	struct ceb_event *ev, *back = NULL;
	size_t len;
	char *json = fixture_read(fixtures[_i], &len);

	ck_assert_msg(json != NULL, "cannot read %s", fixtures[_i]);
	ev = fixture_json_event(json);
	/* Structured mode carries everything, types included. */
	ck_assert_msg(fixture_http_roundtrip(ev, CEB_HTTP_STRUCTURED, &back, err, sizeof(err)) == 0,
	              "%s: %s", fixtures[_i], err);
	ck_assert_msg(ceb_event_equal(ev, back), "%s changed in structured mode", fixtures[_i]);
	ceb_event_unref(back);
	back = NULL;
	/* Binary mode: equal up to what headers cannot carry (see fixture_equal_after_binary): JSON
	 * data without datacontenttype comes back with application/json, typed extensions as
	 * Strings with the same canonical value. */
	ck_assert_msg(fixture_http_roundtrip(ev, CEB_HTTP_BINARY, &back, err, sizeof(err)) == 0,
	              "%s: %s", fixtures[_i], err);
	ck_assert_msg(fixture_equal_after_binary(ev, back), "%s changed in binary mode",
	              fixtures[_i]);
	ceb_event_unref(back);
	ceb_event_unref(ev);
	free(json);
}
END_TEST

START_TEST(test_binary_round_trip_adds_application_json_and_loses_types_only)
{
	struct ceb_event *ev = fixture_json_event(
	        "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\",\"n\":7,"
	        "\"data\":[1]}");
	struct ceb_event *back = NULL;

	ck_assert_int_eq(fixture_http_roundtrip(ev, CEB_HTTP_BINARY, &back, err, sizeof(err)), 0);
	ck_assert_str_eq(ceb_event_get(back, "datacontenttype")->value, "application/json");
	ck_assert_int_eq(ceb_event_get(back, "n")->type, CEB_TYPE_STRING);
	ck_assert_str_eq(ceb_event_get(back, "n")->value, "7");
	ck_assert(!ceb_event_equal(ev, back));
	ck_assert(fixture_equal_after_binary(ev, back));
	/* The relaxed comparison still sees a changed value. */
	ck_assert_int_eq(ceb_event_set(back, "n", CEB_TYPE_STRING, "8", 1, err, sizeof(err)), 0);
	ck_assert(!fixture_equal_after_binary(ev, back));
	ceb_event_unref(back);
	ceb_event_unref(ev);
}
END_TEST

/* --- cloudevents/conformance YAML events --- */

struct conf_event {
	char mode[16];
	struct ceb_buf attrs; /* name\0value\0 pairs, core attributes and extensions */
	size_t nattrs;
	struct ceb_buf transport; /* name\0value\0 pairs */
	size_t ntransport;
	char *data;
	size_t data_len;
	char *ct;
};

static const char *scalar(struct fy_node *n, size_t *len)
{
	const char *s = n ? fy_node_get_scalar(n, len) : NULL;

	ck_assert_msg(s != NULL, "expected a YAML scalar");
	return s;
}

static void add_pair(struct ceb_buf *b, const char *k, size_t kl, const char *v, size_t vl)
{
	ceb_buf_append(b, k, kl);
	ceb_buf_putc(b, '\0');
	ceb_buf_append(b, v, vl);
	ceb_buf_putc(b, '\0');
}

/* Reads the documents of a conformance YAML file into events[]; returns how many. */
static size_t conf_load(const char *rel, struct conf_event *events, size_t max)
{
	const char *top = getenv("top_srcdir");
	struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET};
	struct fy_parser *fyp = fy_parser_create(&cfg);
	struct fy_document *fyd;
	char path[4096];
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", top ? top : ".", rel);
	ck_assert_int_eq(fy_parser_set_input_file(fyp, path), 0);
	while ((fyd = fy_parse_load_document(fyp)) != NULL) {
		struct fy_node *root = fy_document_root(fyd), *ca, *ext, *tr, *m, *d;
		struct fy_node_pair *pair;
		struct conf_event *e = &events[n];
		void *it = NULL;
		const char *k, *v;
		size_t kl, vl;

		ck_assert_uint_lt(n, max);
		memset(e, 0, sizeof(*e));
		m = fy_node_mapping_lookup_by_string(root, "Mode", FY_NT);
		if (m) {
			v = fy_node_get_scalar(m, &vl);
			snprintf(e->mode, sizeof(e->mode), "%.*s", (int)vl, v ? v : "");
		}
		ca = fy_node_mapping_lookup_by_string(root, "ContextAttributes", FY_NT);
		ck_assert_ptr_nonnull(ca);
		while ((pair = fy_node_mapping_iterate(ca, &it)) != NULL) {
			k = scalar(fy_node_pair_key(pair), &kl);
			if (kl == 10 && memcmp(k, "Extensions", 10) == 0)
				continue;
			v = scalar(fy_node_pair_value(pair), &vl);
			add_pair(&e->attrs, k, kl, v, vl);
			e->nattrs++;
			if (kl == 15 && memcmp(k, "datacontenttype", 15) == 0)
				e->ct = strndup(v, vl);
		}
		ext = fy_node_mapping_lookup_by_string(ca, "Extensions", FY_NT);
		it = NULL;
		while (ext && (pair = fy_node_mapping_iterate(ext, &it)) != NULL) {
			k = scalar(fy_node_pair_key(pair), &kl);
			v = scalar(fy_node_pair_value(pair), &vl);
			add_pair(&e->attrs, k, kl, v, vl);
			e->nattrs++;
		}
		tr = fy_node_mapping_lookup_by_string(root, "TransportExtensions", FY_NT);
		it = NULL;
		while (tr && (pair = fy_node_mapping_iterate(tr, &it)) != NULL) {
			k = scalar(fy_node_pair_key(pair), &kl);
			v = scalar(fy_node_pair_value(pair), &vl);
			add_pair(&e->transport, k, kl, v, vl);
			e->ntransport++;
		}
		d = fy_node_mapping_lookup_by_string(root, "Data", FY_NT);
		if (d) {
			v = scalar(d, &vl);
			e->data = malloc(vl + 1);
			memcpy(e->data, v, vl);
			e->data[vl] = '\0';
			e->data_len = vl;
		}
		fy_parse_document_destroy(fyp, fyd);
		n++;
	}
	fy_parser_destroy(fyp);
	return n;
}

static void conf_free(struct conf_event *e)
{
	ceb_buf_free(&e->attrs);
	ceb_buf_free(&e->transport);
	free(e->data);
	free(e->ct);
}

/* Next name\0value\0 pair of a list. */
static const char *next_pair(const char **p, const char **v)
{
	const char *k = *p;

	*v = k + strlen(k) + 1;
	*p = *v + strlen(*v) + 1;
	return k;
}

/* Builds the request the conformance tool sends for e in binary or structured mode, decodes it, and
 * checks every attribute and the exact data bytes; or, with want_err, that it is rejected with a
 * message containing want_err. */
static void conf_check(const struct conf_event *e, bool structured, const char *want_err)
{
	struct ceb_http_header h[32];
	struct ceb_http_request req = {h, 0, NULL, 0};
	struct ceb_buf vals[32], body = CEB_BUF_INIT;
	struct ceb_event **evs = NULL;
	enum ceb_http_mode mode;
	const char *p, *k, *v, *data, *want = e->data;
	size_t i, n, len, want_len = e->data_len;
	bool json = !e->ct || ceb_media_type_is_json(e->ct);
	char names[32][80];

	ck_assert_uint_lt(e->nattrs + e->ntransport + 1, 32);
	for (i = 0; i < 32; i++)
		vals[i] = (struct ceb_buf)CEB_BUF_INIT;
	p = e->transport.p;
	for (i = 0; i < e->ntransport; i++) {
		k = next_pair(&p, &v);
		h[req.nheaders++] = (struct ceb_http_header){k, v};
	}
	p = e->attrs.p;
	if (structured) {
		ceb_buf_putc(&body, '{');
		for (i = 0; i < e->nattrs; i++) {
			k = next_pair(&p, &v);
			ceb_json_put_string(&body, k, strlen(k));
			ceb_buf_putc(&body, ':');
			ceb_json_put_string(&body, v, strlen(v));
			ceb_buf_putc(&body, ',');
		}
		/* The data member: a JSON value for JSON types (the YAML text, which ends in a
		 * newline, trimmed of surrounding whitespace: that is what a JSON document holds and
		 * what the decoder keeps); a string for other types. */
		ceb_buf_puts(&body, "\"data\":");
		if (json) {
			while (want_len &&
			       (want[want_len - 1] == '\n' || want[want_len - 1] == ' '))
				want_len--;
			while (want_len && (*want == ' ' || *want == '\n')) {
				want++;
				want_len--;
			}
			ceb_buf_append(&body, want, want_len);
		} else {
			ceb_json_put_string(&body, want, want_len);
		}
		ceb_buf_putc(&body, '}');
		h[req.nheaders++] =
		        (struct ceb_http_header){"Content-Type", "application/cloudevents+json"};
	} else {
		for (i = 0; i < e->nattrs; i++) {
			k = next_pair(&p, &v);
			if (strcmp(k, "datacontenttype") == 0) {
				h[req.nheaders++] = (struct ceb_http_header){"Content-Type", v};
				continue;
			}
			snprintf(names[i], sizeof(names[i]), "ce-%s", k);
			ck_assert_int_eq(ceb_percent_encode(v, strlen(v), &vals[i]), 0);
			ck_assert_int_eq(ceb_buf_reserve(&vals[i], 0), 0);
			h[req.nheaders++] = (struct ceb_http_header){names[i], vals[i].p};
		}
		ceb_buf_append(&body, e->data, e->data_len);
	}
	req.body = body.p;
	req.body_len = body.len;
	if (want_err) {
		ck_assert_int_eq(ceb_http_decode(&req, NULL, &evs, &n, &mode, err, sizeof(err)),
		                 CEB_EINVAL);
		ck_assert_msg(strstr(err, want_err), "'%s' lacks '%s'", err, want_err);
		goto out;
	}
	ck_assert_msg(ceb_http_decode(&req, NULL, &evs, &n, &mode, err, sizeof(err)) == 0,
	              "conformance event rejected (%s mode): %s",
	              structured ? "structured" : "binary", err);
	ck_assert_int_eq(mode, structured ? CEB_HTTP_STRUCTURED : CEB_HTTP_BINARY);
	ck_assert_uint_eq(ceb_event_attr_count(evs[0]), e->nattrs);
	p = e->attrs.p;
	for (i = 0; i < e->nattrs; i++) {
		const struct ceb_attr *a;

		k = next_pair(&p, &v);
		a = ceb_event_get(evs[0], k);
		ck_assert_msg(a != NULL, "attribute %s missing", k);
		ck_assert_str_eq(a->value, v);
	}
	data = ceb_event_data(evs[0], &len);
	ck_assert_uint_eq(len, want_len);
	ck_assert_msg(memcmp(data, want, len) == 0, "data '%.*s' != '%.*s'", (int)len, data,
	              (int)want_len, want);
	free_events(evs, n);
out:
	ceb_buf_free(&body);
	for (i = 0; i < 32; i++)
		ceb_buf_free(&vals[i]);
}

/* Strips trailing newlines from attribute values; true if there were any. */
static bool conf_strip_newlines(struct conf_event *e)
{
	struct ceb_buf b = CEB_BUF_INIT;
	const char *p = e->attrs.p, *k, *v;
	bool changed = false;
	size_t vl;

	for (size_t i = 0; i < e->nattrs; i++) {
		k = next_pair(&p, &v);
		vl = strlen(v);
		while (vl && v[vl - 1] == '\n') {
			vl--;
			changed = true;
		}
		add_pair(&b, k, strlen(k), v, vl);
	}
	ceb_buf_free(&e->attrs);
	e->attrs = b;
	return changed;
}

START_TEST(test_conformance_yaml_events_decode_in_both_modes)
{
	static const struct {
		const char *path;
		size_t count;
		size_t with_newline;
	} files[] = {
	        {"tests/data/conformance/v1.yaml", 2, 2},
	        {"tests/data/conformance/v1_minimum.yaml", 6, 0},
	};
	struct conf_event events[8];
	size_t n = conf_load(files[_i].path, events, 8), with_newline = 0;

	ck_assert_uint_eq(n, files[_i].count);
	for (size_t i = 0; i < n; i++) {
		struct conf_event *e = &events[i];
		struct conf_event stripped = *e;

		ck_assert_uint_ge(e->nattrs, 5);
		/* v1.yaml writes the extension comexampleextension2 as a YAML block scalar, so its
		 * value ends in a newline, which the String type forbids (core spec, Type System:
		 * U+000A is named as unusable in HTTP headers). The broker rejects it, naming the
		 * attribute; the event without that newline (what the file evidently means) must
		 * then decode exactly. */
		stripped.attrs = (struct ceb_buf)CEB_BUF_INIT;
		ceb_buf_append(&stripped.attrs, e->attrs.p, e->attrs.len);
		if (conf_strip_newlines(&stripped)) {
			with_newline++;
			conf_check(e, false,
			           "attribute 'comexampleextension2': control character U+000A");
			conf_check(e, true,
			           "attribute 'comexampleextension2': control character U+000A");
		}
		conf_check(&stripped, false, NULL);
		conf_check(&stripped, true, NULL);
		ceb_buf_free(&stripped.attrs);
		conf_free(e);
	}
	ck_assert_uint_eq(with_newline, files[_i].with_newline);
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http_binding");
	TCase *tc = tcase_create("modes");

	tcase_add_loop_test(tc, test_binary_mode_maps_ce_headers_content_type_and_body, 0, 2);
	tcase_add_loop_test(
	        tc, test_structured_mode_accepts_cloudevents_json_with_or_without_charset, 0, 4);
	tcase_add_test(tc, test_batch_mode_is_tested_first_and_case_insensitively);
	tcase_add_loop_test(tc, test_other_event_formats_are_unsupported_media_types, 0, 8);
	tcase_add_test(tc, test_structured_and_batch_errors_are_reported);
	tcase_add_test(tc, test_more_than_one_content_type_is_rejected);
	tcase_add_test(tc, test_limits_give_too_big);
	suite_add_tcase(s, tc);

	tc = tcase_create("binary headers");
	tcase_add_test(tc, test_binary_mode_percent_decodes_header_values);
	tcase_add_test(tc, test_binary_mode_undoes_quoted_strings_before_percent_decoding);
	tcase_add_test(tc, test_binary_mode_rejects_invalid_utf8_after_decoding);
	tcase_add_test(tc, test_binary_mode_rejects_bad_percent_escapes);
	tcase_add_test(tc, test_binary_mode_applies_the_type_system_after_decoding);
	tcase_add_test(tc,
	               test_binary_mode_header_names_are_case_insensitive_and_stored_lower_case);
	tcase_add_test(tc, test_binary_mode_rejects_ce_datacontenttype);
	tcase_add_test(tc, test_binary_mode_rejects_duplicate_ce_headers);
	tcase_add_loop_test(tc, test_binary_mode_rejects_invalid_attribute_names, 0, 5);
	tcase_add_test(tc, test_binary_mode_keeps_the_body_bytes_exactly);
	tcase_add_test(tc, test_a_request_without_ce_headers_is_not_a_cloudevent);
	tcase_add_test(tc, test_binary_mode_names_a_missing_required_attribute);
	suite_add_tcase(s, tc);

	tc = tcase_create("encoding");
	tcase_add_test(tc, test_percent_encoding_escapes_what_the_binding_requires);
	tcase_add_test(tc, test_binary_encoding_writes_one_ce_header_per_attribute);
	tcase_add_test(tc, test_binary_encoding_sets_application_json_for_json_data_without_a_type);
	tcase_add_test(tc, test_structured_encoding_sends_only_the_format_content_type);
	tcase_add_test(tc, test_encoding_stops_when_the_callback_fails);
	tcase_add_test(tc, test_data_typed_application_cloudevents_cannot_go_in_binary_mode);
	suite_add_tcase(s, tc);

	tc = tcase_create("round trips and conformance");
	tcase_add_loop_test(tc, test_every_valid_fixture_survives_both_modes, 0,
	                    sizeof(fixtures) / sizeof(fixtures[0]));
	tcase_add_test(tc, test_binary_round_trip_adds_application_json_and_loses_types_only);
	tcase_add_loop_test(tc, test_conformance_yaml_events_decode_in_both_modes, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(http_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
