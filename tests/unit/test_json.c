/* Unit tests of the JSON event format (broker/json_format.c): the sdk-java and sdk-javascript
 * fixtures, data handling, strictness, limits, batches, and encoding. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "broker/ce/json_format.h"
#include "tests/unit/fixtures.h"

static char err[512];

static int decode(const char *json, struct ceb_event **ev)
{
	err[0] = '\0';
	return ceb_json_decode(json, strlen(json), NULL, ev, err, sizeof(err));
}

/* Asserts that json is rejected with rc and a message containing want. */
static void assert_rejected(const char *json, int rc, const char *want)
{
	struct ceb_event *ev = NULL;
	int got = decode(json, &ev);

	ck_assert_msg(got == rc, "%s: got %d (%s), want %d", json, got, err, rc);
	ck_assert_msg(strstr(err, want), "%s: message '%s' lacks '%s'", json, err, want);
	ck_assert_ptr_null(ev);
}

#define HEAD "{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\""

static void assert_data(const struct ceb_event *ev, const char *want, size_t len, unsigned flags)
{
	size_t got_len;
	const char *got = ceb_event_data(ev, &got_len);

	ck_assert(ceb_event_has_data(ev));
	ck_assert_uint_eq(got_len, len);
	ck_assert_msg(memcmp(got, want, len) == 0, "data '%.*s' != '%.*s'", (int)got_len, got,
	              (int)len, want);
	ck_assert_uint_eq(ceb_event_data_flags(ev), flags);
}

static void assert_attr(const struct ceb_event *ev, const char *name, enum ceb_type type,
                        const char *value)
{
	const struct ceb_attr *a = ceb_event_get(ev, name);

	ck_assert_msg(a != NULL, "attribute %s missing", name);
	ck_assert_str_eq(a->value, value);
	ck_assert_int_eq(a->type, type);
}

/* --- fixtures --- */

struct ext {
	const char *name;
	enum ceb_type type;
	const char *value;
};

static const struct valid_fixture {
	const char *path;
	size_t nattrs;
	const char *data; /* NULL: no data */
	unsigned flags;
	const char *ct;
	const char *time;
	struct ext ext[4];
} valid[] = {
        {"sdk-java-json/v1/min.json", 4, NULL, 0, NULL, NULL, {{0}}},
        {"sdk-java-json/v1/min_subject_null.json", 4, NULL, 0, NULL, NULL, {{0}}},
        {"sdk-java-json/v1/json_data.json",
         8,
         "{}",
         CEB_DATA_JSON,
         "application/json",
         "2018-04-26T14:48:09+02:00",
         {{0}}},
        {"sdk-java-json/v1/json_data_with_ext.json",
         11,
         "{}",
         CEB_DATA_JSON,
         "application/json",
         "2018-04-26T14:48:09+02:00",
         {{"astring", CEB_TYPE_STRING, "aaa"},
          {"aboolean", CEB_TYPE_BOOLEAN, "true"},
          {"anumber", CEB_TYPE_INTEGER, "10"}}},
        {"sdk-java-json/v1/json_data_with_fractional_time.json",
         8,
         "{}",
         CEB_DATA_JSON,
         "application/json",
         "2018-04-26T14:48:09.1234Z",
         {{0}}},
        {"sdk-java-json/v1/base64_json_data.json",
         8,
         "{}",
         CEB_DATA_BASE64,
         "application/json",
         "2018-04-26T14:48:09+02:00",
         {{0}}},
        {"sdk-java-json/v1/base64_json_data_with_ext.json",
         11,
         "{}",
         CEB_DATA_BASE64,
         "application/json",
         "2018-04-26T14:48:09+02:00",
         {{"astring", CEB_TYPE_STRING, "aaa"},
          {"aboolean", CEB_TYPE_BOOLEAN, "true"},
          {"anumber", CEB_TYPE_INTEGER, "10"}}},
        {"sdk-java-json/v1/base64_text_data.json",
         7,
         "Hello World Lorena!",
         CEB_DATA_BASE64,
         "text/plain",
         "2018-04-26T14:48:09+02:00",
         {{0}}},
        {"sdk-java-json/v1/base64_xml_data.json",
         7,
         "<stuff></stuff>",
         CEB_DATA_BASE64,
         "application/xml",
         "2018-04-26T14:48:09+02:00",
         {{0}}},
        {"sdk-java-json/v1/text_data.json",
         7,
         "Hello World Lorena!",
         0,
         "text/plain",
         "2018-04-26T14:48:09+02:00",
         {{0}}},
        {"sdk-java-json/v1/xml_data.json",
         7,
         "<stuff></stuff>",
         0,
         "application/xml",
         "2018-04-26T14:48:09+02:00",
         {{0}}},
        {"sdk-java-json/v1/binary_attr.json",
         5,
         NULL,
         0,
         NULL,
         NULL,
         {{"binary", CEB_TYPE_STRING, "4P8ARKo="}}},
        {"sdk-java-json/v1/numeric_ext.json",
         8,
         NULL,
         0,
         NULL,
         NULL,
         {{"integer", CEB_TYPE_INTEGER, "42"},
          {"decimal", CEB_TYPE_STRING, "42.42"},
          {"float", CEB_TYPE_STRING, "4.2"},
          {"long", CEB_TYPE_STRING, "4200"}}},
        {"sdk-javascript/structured-event-0.json",
         6,
         "{\n    \"much\":\"wow\"\n  }",
         CEB_DATA_JSON,
         "application/json",
         "2019-11-06T11:08:00Z",
         {{0}}},
        {"sdk-javascript/structured-event-1.json",
         7,
         "{\n    \"much\":\"wow\"\n  }",
         CEB_DATA_JSON,
         "application/json",
         "2019-11-06T11:08:00Z",
         {{"myextension", CEB_TYPE_STRING, "something"}}},
        {"sdk-javascript/structured-event-2.json",
         7,
         "{\"much\":\"wow\"}",
         CEB_DATA_BASE64,
         "application/json",
         "2019-11-06T11:08:00Z",
         {{"myextension", CEB_TYPE_STRING, "something"}}},
};
#define NVALID (sizeof(valid) / sizeof(valid[0]))

static struct ceb_event *load(const char *path)
{
	char rel[256];
	struct ceb_event *ev = NULL;
	size_t len;
	char *json;
	int rc;

	snprintf(rel, sizeof(rel), "tests/data/%s", path);
	json = fixture_read(rel, &len);
	ck_assert_msg(json != NULL, "cannot read %s (is top_srcdir set?)", rel);
	rc = ceb_json_decode(json, len, NULL, &ev, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s rejected: %s", path, err);
	free(json);
	return ev;
}

START_TEST(test_valid_sdk_fixtures_are_accepted_with_every_attribute)
{
	const struct valid_fixture *f = &valid[_i];
	struct ceb_event *ev = load(f->path);
	const struct ceb_attr *a;

	ck_assert_uint_eq(ceb_event_attr_count(ev), f->nattrs);
	ck_assert_str_eq(ceb_event_get(ev, "specversion")->value, "1.0");
	ck_assert_ptr_nonnull(ceb_event_get(ev, "id"));
	ck_assert_ptr_nonnull(ceb_event_get(ev, "source"));
	ck_assert_ptr_nonnull(ceb_event_get(ev, "type"));
	if (f->data)
		assert_data(ev, f->data, strlen(f->data), f->flags);
	else
		ck_assert(!ceb_event_has_data(ev));
	a = ceb_event_get(ev, "datacontenttype");
	if (f->ct)
		ck_assert_str_eq(a->value, f->ct);
	else
		ck_assert_ptr_null(a);
	a = ceb_event_get(ev, "time");
	if (f->time)
		ck_assert_str_eq(a->value, f->time);
	else
		ck_assert_ptr_null(a);
	for (int i = 0; i < 4 && f->ext[i].name; i++)
		assert_attr(ev, f->ext[i].name, f->ext[i].type, f->ext[i].value);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_valid_fixtures_survive_a_json_round_trip)
{
	struct ceb_event *ev = load(valid[_i].path), *back = NULL;
	struct ceb_buf out = CEB_BUF_INIT;
	int rc;

	ck_assert_int_eq(ceb_json_encode(ev, &out), 0);
	rc = ceb_json_decode(out.p, out.len, NULL, &back, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s re-encoded as %s: %s", valid[_i].path, out.p, err);
	ck_assert_msg(ceb_event_equal(ev, back), "%s changed: %s", valid[_i].path, out.p);
	ck_assert_uint_eq(ceb_event_data_flags(back), ceb_event_data_flags(ev));
	ceb_buf_free(&out);
	ceb_event_unref(ev);
	ceb_event_unref(back);
}
END_TEST

static const struct {
	const char *path;
	const char *want;
} invalid[] = {
        {"sdk-java-json/v1/fail_numeric_decimal.json",
         "attribute 'decimal': 42.42 is not an Integer (no fraction or exponent allowed)"},
        {"sdk-java-json/v1/fail_numeric_long.json",
         "attribute 'long': 4247483647 is outside the Integer range"},
        {"sdk-java-json/v1/json_data_with_ext_invalid.json",
         "attribute name 'a_invalid_name' is invalid"},
        {"sdk-java-json/v1/json_data_with_ext_upper_case.json",
         "attribute name 'aString' is invalid"},
};

START_TEST(test_invalid_sdk_java_fixtures_are_rejected_with_a_reason)
{
	char rel[256];
	struct ceb_event *ev = NULL;
	size_t len;
	char *json;

	snprintf(rel, sizeof(rel), "tests/data/%s", invalid[_i].path);
	json = fixture_read(rel, &len);
	ck_assert_ptr_nonnull(json);
	ck_assert_int_eq(ceb_json_decode(json, len, NULL, &ev, err, sizeof(err)), CEB_EINVAL);
	ck_assert_ptr_null(ev);
	ck_assert_msg(strstr(err, invalid[_i].want), "'%s' lacks '%s'", err, invalid[_i].want);
	free(json);
}
END_TEST

START_TEST(test_null_subject_is_the_same_as_no_subject)
{
	struct ceb_event *a = load("sdk-java-json/v1/min.json");
	struct ceb_event *b = load("sdk-java-json/v1/min_subject_null.json");

	ck_assert(ceb_event_equal(a, b));
	ceb_event_unref(a);
	ceb_event_unref(b);
}
END_TEST

/* --- data --- */

START_TEST(test_json_data_is_kept_byte_identical)
{
	static const char data[] =
	        "{ \"n\" : 1.000000000000000000001, \"big\": 123456789012345678901234567890,\n"
	        "\t\"s\": \"\\u00e9\\n\", \"a\": [ 1e400, -0, true, null ] }";
	char json[512];
	struct ceb_event *ev;

	snprintf(json, sizeof(json),
	         HEAD ",\"datacontenttype\":\"application/json\",\"data\": %s }", data);
	ev = fixture_json_event(json);
	assert_data(ev, data, strlen(data), CEB_DATA_JSON);
	ceb_event_unref(ev);
	/* Without datacontenttype the data is JSON too, and the implied type is application/json. */
	snprintf(json, sizeof(json), HEAD ",\"data\":%s}", data);
	ev = fixture_json_event(json);
	assert_data(ev, data, strlen(data), CEB_DATA_JSON);
	ck_assert_ptr_null(ceb_event_get(ev, "datacontenttype"));
	ck_assert_str_eq(ceb_event_content_type(ev), "application/json");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_json_string_data_is_not_parsed_again)
{
	struct ceb_event *ev = fixture_json_event(HEAD ",\"data\":\"I'm just a string\"}");

	assert_data(ev, "\"I'm just a string\"", 19, CEB_DATA_JSON);
	ceb_event_unref(ev);
	ev = fixture_json_event(HEAD ",\"datacontenttype\":\"application/vnd.x+json\","
	                             "\"data\":\"{\\\"a\\\":1}\"}");
	assert_data(ev, "\"{\\\"a\\\":1}\"", 11, CEB_DATA_JSON);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_text_data_string_becomes_its_utf8_bytes)
{
	struct ceb_event *ev = fixture_json_event(
	        HEAD ",\"datacontenttype\":\"text/plain; charset=utf-8\","
	             "\"data\":\"a\\nb\\u00e9\\ud83d\\ude00\\\"\\\\\\/\\u0000\"}");

	assert_data(ev, "a\nb\xc3\xa9\xf0\x9f\x98\x80\"\\/\0", 13, 0);
	ceb_event_unref(ev);
	ev = fixture_json_event(HEAD ",\"datacontenttype\":\"text/plain\",\"data\":\"\"}");
	assert_data(ev, "", 0, 0);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_non_string_data_with_a_text_type_keeps_its_json_text)
{
	struct ceb_event *ev = fixture_json_event(
	        HEAD ",\"datacontenttype\":\"text/plain\",\"data\":{ \"a\" : [1, 2] }}");

	assert_data(ev, "{ \"a\" : [1, 2] }", 16, 0);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_null_data_is_an_explicit_null_payload)
{
	struct ceb_event *ev = fixture_json_event(HEAD ",\"data\":null}");

	assert_data(ev, "null", 4, CEB_DATA_JSON);
	ceb_event_unref(ev);
	/* data_base64: null is no data at all. */
	ev = fixture_json_event(HEAD ",\"data_base64\":null}");
	ck_assert(!ceb_event_has_data(ev));
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_data_base64_is_decoded_to_bytes)
{
	struct ceb_event *ev = fixture_json_event(HEAD ",\"data_base64\":\"4P8ARKo=\"}");

	assert_data(ev, "\xe0\xff\x00\x44\xaa", 5, CEB_DATA_BASE64);
	/* No datacontenttype is assumed for data_base64. */
	ck_assert_ptr_null(ceb_event_content_type(ev));
	ceb_event_unref(ev);
	/* Some encoders escape '/' as "\/". */
	ev = fixture_json_event(HEAD ",\"data_base64\":\"+\\/8=\"}");
	assert_data(ev, "\xfb\xff", 2, CEB_DATA_BASE64);
	ceb_event_unref(ev);
	ev = fixture_json_event(HEAD ",\"data_base64\":\"\"}");
	assert_data(ev, "", 0, CEB_DATA_BASE64);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_bad_data_base64_is_rejected)
{
	assert_rejected(HEAD ",\"data_base64\":\"e30\"}", CEB_EINVAL,
	                "'data_base64': not valid Base64");
	assert_rejected(HEAD ",\"data_base64\":\"e3=0\"}", CEB_EINVAL, "not valid Base64");
	assert_rejected(HEAD ",\"data_base64\":\"e30= \"}", CEB_EINVAL, "not valid Base64");
	assert_rejected(HEAD ",\"data_base64\":\"@@@@\"}", CEB_EINVAL, "not valid Base64");
	assert_rejected(HEAD ",\"data_base64\":12}", CEB_EINVAL,
	                "'data_base64' must be a JSON string");
	assert_rejected(HEAD ",\"data_base64\":{}}", CEB_EINVAL,
	                "'data_base64' must be a JSON string");
}
END_TEST

START_TEST(test_data_and_data_base64_together_are_rejected)
{
	assert_rejected(HEAD ",\"data\":{},\"data_base64\":\"e30=\"}", CEB_EINVAL,
	                "'data' and 'data_base64' must not both be present");
	assert_rejected(HEAD ",\"data_base64\":\"e30=\",\"data\":null}", CEB_EINVAL,
	                "must not both be present");
}
END_TEST

/* --- attributes --- */

START_TEST(test_null_attributes_are_unset)
{
	struct ceb_event *ev = fixture_json_event(
	        HEAD ",\"subject\":null,\"time\":null,\"myext\":null,\"datacontenttype\":null}");

	ck_assert_uint_eq(ceb_event_attr_count(ev), 4);
	ceb_event_unref(ev);
	assert_rejected("{\"specversion\":\"1.0\",\"id\":null,\"source\":\"/s\",\"type\":\"t\"}",
	                CEB_EINVAL, "missing required attribute 'id'");
}
END_TEST

START_TEST(test_typed_extensions_are_kept)
{
	struct ceb_event *ev = fixture_json_event(
	        HEAD ",\"i\":-2147483648,\"j\":2147483647,\"z\":-0,\"b\":true,\"f\":false,"
	             "\"s\":\"true\",\"n\":\"42\"}");

	assert_attr(ev, "i", CEB_TYPE_INTEGER, "-2147483648");
	ck_assert_int_eq(ceb_event_get(ev, "i")->ival, INT32_MIN);
	assert_attr(ev, "j", CEB_TYPE_INTEGER, "2147483647");
	assert_attr(ev, "z", CEB_TYPE_INTEGER, "0");
	assert_attr(ev, "b", CEB_TYPE_BOOLEAN, "true");
	ck_assert_int_eq(ceb_event_get(ev, "b")->ival, 1);
	assert_attr(ev, "f", CEB_TYPE_BOOLEAN, "false");
	assert_attr(ev, "s", CEB_TYPE_STRING, "true");
	assert_attr(ev, "n", CEB_TYPE_STRING, "42");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_extension_numbers_must_be_int32_integers)
{
	assert_rejected(HEAD ",\"x\":42.42}", CEB_EINVAL,
	                "attribute 'x': 42.42 is not an Integer (no fraction or exponent allowed)");
	assert_rejected(HEAD ",\"x\":1e3}", CEB_EINVAL, "1e3 is not an Integer");
	assert_rejected(HEAD ",\"x\":1.0}", CEB_EINVAL, "1.0 is not an Integer");
	assert_rejected(
	        HEAD ",\"x\":4247483647}", CEB_EINVAL,
	        "attribute 'x': 4247483647 is outside the Integer range (-2147483648..2147483647)");
	assert_rejected(HEAD ",\"x\":-2147483649}", CEB_EINVAL, "outside the Integer range");
	assert_rejected(HEAD ",\"x\":123456789012345678901234567890}", CEB_EINVAL,
	                "outside the Integer range");
}
END_TEST

START_TEST(test_attributes_of_the_wrong_json_type_are_rejected)
{
	assert_rejected("{\"specversion\":\"1.0\",\"id\":5,\"source\":\"/s\",\"type\":\"t\"}",
	                CEB_EINVAL, "attribute 'id': must be a JSON string");
	assert_rejected(HEAD ",\"subject\":{}}", CEB_EINVAL,
	                "attribute 'subject': a JSON object is not an attribute value");
	assert_rejected(HEAD ",\"time\":true}", CEB_EINVAL,
	                "attribute 'time': must be a JSON string");
	assert_rejected("{\"specversion\":1.0,\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}",
	                CEB_EINVAL, "attribute 'specversion': must be a JSON string");
	assert_rejected(HEAD ",\"ext\":[1]}", CEB_EINVAL, "attribute 'ext': a JSON array is not");
	assert_rejected(HEAD ",\"ext\":{\"a\":1}}", CEB_EINVAL, "attribute 'ext': a JSON object");
}
END_TEST

START_TEST(test_attribute_values_are_validated)
{
	assert_rejected(HEAD ",\"time\":\"2019-02-29T00:00:00Z\"}", CEB_EINVAL,
	                "attribute 'time': not an RFC 3339 timestamp");
	assert_rejected(HEAD ",\"dataschema\":\"/relative\"}", CEB_EINVAL,
	                "attribute 'dataschema': '/relative' is not an absolute URI");
	assert_rejected(HEAD ",\"subject\":\"\"}", CEB_EINVAL,
	                "attribute 'subject': must not be empty");
	assert_rejected(HEAD ",\"datacontenttype\":\"json\"}", CEB_EINVAL,
	                "attribute 'datacontenttype': 'json' is not a media type");
	assert_rejected(HEAD ",\"ext\":\"a\\u0007b\"}", CEB_EINVAL,
	                "attribute 'ext': control character U+0007");
	assert_rejected(HEAD ",\"ext\":\"\\ufdd0\"}", CEB_EINVAL, "noncharacter U+FDD0");
	assert_rejected("{\"specversion\":\"1.0\",\"id\":\"1\",\"source\":\"a b\",\"type\":\"t\"}",
	                CEB_EINVAL, "attribute 'source': 'a b' is not a URI-reference");
	assert_rejected("{\"specversion\":\"0.2\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\"}",
	                CEB_EINVAL, "attribute 'specversion': '0.2' is not supported");
	assert_rejected("{\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\"}", CEB_EINVAL,
	                "missing required attribute 'id'");
	assert_rejected("{\"specversion\":\"1.0\",\"id\":\"\",\"source\":\"/s\",\"type\":\"t\"}",
	                CEB_EINVAL, "attribute 'id': must not be empty");
	assert_rejected(HEAD ",\"\":\"x\"}", CEB_EINVAL, "attribute name must not be empty");
	assert_rejected(HEAD ",\"Data\":\"x\"}", CEB_EINVAL, "attribute name 'Data' is invalid");
}
END_TEST

START_TEST(test_duplicate_members_are_rejected)
{
	assert_rejected(HEAD ",\"id\":\"2\"}", CEB_EINVAL, "member 'id' appears more than once");
	assert_rejected(HEAD ",\"\\u0069d\":\"2\"}", CEB_EINVAL,
	                "member 'id' appears more than once");
	assert_rejected(HEAD ",\"e\":1,\"e\":1}", CEB_EINVAL, "member 'e' appears more than once");
	assert_rejected(HEAD ",\"e\":null,\"e\":\"x\"}", CEB_EINVAL,
	                "member 'e' appears more than once");
	assert_rejected(HEAD ",\"e\":\"x\",\"e\":null}", CEB_EINVAL,
	                "member 'e' appears more than once");
	assert_rejected(HEAD ",\"data\":1,\"data\":2}", CEB_EINVAL,
	                "member 'data' appears more than once");
	assert_rejected(HEAD ",\"data_base64\":\"\",\"data_base64\":\"\"}", CEB_EINVAL,
	                "member 'data_base64' appears more than once");
}
END_TEST

/* --- JSON strictness --- */

START_TEST(test_json_syntax_is_strict)
{
	static const char *const bad[] = {
	        HEAD ",}",
	        HEAD ",\"e\":'x'}",
	        HEAD ",\"e\":1,/* c */\"f\":2}",
	        HEAD ",\"e\":01}",
	        HEAD ",\"e\":-}",
	        HEAD ",\"e\":1.}",
	        HEAD ",\"e\":1e}",
	        HEAD ",\"e\":NaN}",
	        HEAD ",\"e\":tru}",
	        HEAD ",\"e\":\"a\tb\"}",
	        HEAD ",\"e\":\"\\x41\"}",
	        HEAD ",\"e\":\"\\u12G4\"}",
	        HEAD ",\"e\":\"abc}",
	        HEAD ",\"data\":[1,]}",
	        HEAD ",\"data\":{\"a\"}}",
	        HEAD ",\"data\":{\"a\":1,}}",
	        HEAD ",\"data\":{a:1}}",
	        HEAD ",\"data\":[1 2]}",
	        HEAD ",\"data\":+1}",
	        HEAD ",\"data\":.5}",
	        HEAD ",\"data\":\"\x01\"}",
	        HEAD "} x",
	        HEAD "}}",
	        HEAD,
	        HEAD " \"e\":1}",
	        "\xef\xbb\xbf" HEAD "}",
	        "",
	        "   ",
	        "[]",
	        "\"event\"",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ceb_event *ev = NULL;

		ck_assert_msg(decode(bad[i], &ev) == CEB_EINVAL, "accepted: %s", bad[i]);
		ck_assert_msg(strncmp(err, "invalid JSON", 12) == 0, "%s: message '%s'", bad[i],
		              err);
	}
	/* Whitespace of every JSON kind around tokens is fine. */
	ceb_event_unref(fixture_json_event(" \t\r\n{ \"specversion\" :\"1.0\" , \"id\":\"1\",\r\n"
	                                   "\"source\":\"/s\",\"type\":\"t\" }\n"));
}
END_TEST

START_TEST(test_strings_must_be_utf8_with_paired_surrogates)
{
	struct ceb_event *ev;

	assert_rejected(HEAD ",\"e\":\"\xc0\xa0\"}", CEB_EINVAL, "invalid UTF-8 in a string");
	assert_rejected(HEAD ",\"e\":\"\xed\xa0\x80\"}", CEB_EINVAL, "invalid UTF-8");
	assert_rejected(HEAD ",\"data\":\"\xff\"}", CEB_EINVAL, "invalid UTF-8");
	assert_rejected(HEAD ",\"e\":\"\\ud800\"}", CEB_EINVAL, "unpaired surrogate");
	assert_rejected(HEAD ",\"e\":\"\\udc00\\ud800\"}", CEB_EINVAL, "unpaired surrogate");
	assert_rejected(HEAD ",\"e\":\"\\ud800\\u0041\"}", CEB_EINVAL, "unpaired surrogate");
	assert_rejected(HEAD ",\"data\":{\"\\ud800x\":1}}", CEB_EINVAL, "unpaired surrogate");
	ev = fixture_json_event(HEAD ",\"e\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80\"}");
	assert_attr(ev, "e", CEB_TYPE_STRING, "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80");
	ceb_event_unref(ev);
}
END_TEST

static char *nested(const char *prefix, size_t levels, const char *suffix)
{
	size_t n = strlen(prefix) + 2 * levels + strlen(suffix) + 1;
	char *s = malloc(n), *p = s;

	p += snprintf(p, n, "%s", prefix);
	for (size_t i = 0; i < levels; i++)
		*p++ = '[';
	for (size_t i = 0; i < levels; i++)
		*p++ = ']';
	snprintf(p, n - (size_t)(p - s), "%s", suffix);
	return s;
}

START_TEST(test_nesting_deeper_than_the_limit_is_rejected)
{
	struct ceb_limits lim = ceb_limits_default;
	struct ceb_event *ev = NULL;
	char *ok = nested(HEAD ",\"data\":", 63, "}");
	char *deep = nested(HEAD ",\"data\":", 64, "}");
	char *huge = nested(HEAD ",\"data\":", 100000, "}");

	/* The envelope is level 1, so data may nest 63 more under the default 64. */
	ck_assert_int_eq(decode(ok, &ev), 0);
	ceb_event_unref(ev);
	ev = NULL;
	/* Too deep is a bad event (400), not a big one (413). */
	ck_assert_int_eq(decode(deep, &ev), CEB_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "JSON nested deeper than 64 levels"));
	ck_assert_int_eq(decode(huge, &ev), CEB_EINVAL);
	lim.max_json_depth = 3;
	ck_assert_int_eq(ceb_json_decode(ok, strlen(ok), &lim, &ev, err, sizeof(err)), CEB_EINVAL);
	ck_assert_int_eq(ceb_json_decode(HEAD ",\"data\":[[]]}", strlen(HEAD) + 13, &lim, &ev, err,
	                                 sizeof(err)),
	                 0);
	ceb_event_unref(ev);
	free(ok);
	free(deep);
	free(huge);
}
END_TEST

START_TEST(test_size_and_batch_limits_give_too_big_and_count_limits_invalid)
{
	struct ceb_limits lim = ceb_limits_default;
	struct ceb_event *ev = NULL;
	char json[4096], *p;
	const char *one = HEAD "}";

	lim.max_event_size = strlen(one) - 1;
	ck_assert_int_eq(ceb_json_decode(one, strlen(one), &lim, &ev, err, sizeof(err)),
	                 CEB_ETOOBIG);
	ck_assert_ptr_nonnull(strstr(err, "bytes (limit"));
	lim = ceb_limits_default;
	lim.max_value_len = 3;
	ck_assert_int_eq(ceb_json_decode(HEAD ",\"e\":\"abcd\"}", strlen(HEAD) + 13, &lim, &ev, err,
	                                 sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "attribute 'e': value is 4 bytes (limit 3)");
	lim = ceb_limits_default;
	lim.max_attrs = 6;
	/* Null members count as members, so a flood of them cannot cost quadratic time. */
	p = json + snprintf(json, sizeof(json), "%s", HEAD);
	for (int i = 0; i < 10; i++)
		p += snprintf(p, sizeof(json) - (size_t)(p - json), ",\"e%d\":null", i);
	snprintf(p, sizeof(json) - (size_t)(p - json), "}");
	ck_assert_int_eq(ceb_json_decode(json, strlen(json), &lim, &ev, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "too many members"));
	ck_assert_ptr_null(ev);
}
END_TEST

START_TEST(test_json_valid_accepts_one_bare_json_text)
{
	ck_assert(ceb_json_valid("{}", 2, 64));
	ck_assert(ceb_json_valid("\"x\"", 3, 64));
	ck_assert(ceb_json_valid("-1.5e+3", 7, 64));
	ck_assert(ceb_json_valid("[[1]]", 5, 2));
	ck_assert(!ceb_json_valid("[[1]]", 5, 1));
	ck_assert(!ceb_json_valid("{} ", 3, 64));
	ck_assert(!ceb_json_valid(" {}", 3, 64));
	ck_assert(!ceb_json_valid("{}{}", 4, 64));
	ck_assert(!ceb_json_valid("", 0, 64));
	ck_assert(!ceb_json_valid("hello", 5, 64));
}
END_TEST

/* --- encoding --- */

static char *encode(const struct ceb_event *ev)
{
	struct ceb_buf out = CEB_BUF_INIT;

	ck_assert_int_eq(ceb_json_encode(ev, &out), 0);
	return ceb_buf_steal(&out, NULL);
}

START_TEST(test_encoding_is_compact_ordered_and_typed)
{
	struct ceb_event *ev;
	char *out;

	/* Insignificant whitespace goes, member order becomes the canonical one, data stays. */
	ev = fixture_json_event(
	        "{ \"zz\" : \"q\\\"\\\\/\",\"n\": 10, \"b\" : false, \"time\":"
	        "\"2018-04-05T17:31:00Z\", \"type\":\"t\", \"source\":\"/s\", \"id\":\"\xc3\xa9\","
	        "\"specversion\":\"1.0\", \"data\" : { \"a\" : 1 } }");
	out = encode(ev);
	ck_assert_str_eq(out,
	                 "{\"specversion\":\"1.0\",\"id\":\"\xc3\xa9\",\"source\":\"/s\","
	                 "\"type\":\"t\",\"time\":\"2018-04-05T17:31:00Z\",\"zz\":\"q\\\"\\\\/\","
	                 "\"n\":10,\"b\":false,\"data\":{ \"a\" : 1 }}");
	free(out);
	ceb_event_unref(ev);
}
END_TEST

/* Encodes an event with the given content type and data, and checks the output's data part. */
static void assert_data_form(const char *ct, const char *data, size_t len, unsigned flags,
                             const char *want_tail)
{
	struct ceb_event *ev = fixture_json_event(HEAD "}"), *back = NULL;
	char *out;
	size_t n;

	if (ct)
		ck_assert_int_eq(ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, ct,
		                               strlen(ct), err, sizeof(err)),
		                 0);
	ck_assert_int_eq(ceb_event_set_data(ev, data, len, flags), 0);
	out = encode(ev);
	n = strlen(out);
	ck_assert_msg(n > strlen(want_tail) && strcmp(out + n - strlen(want_tail), want_tail) == 0,
	              "%s does not end with %s", out, want_tail);
	/* Whatever the form, decoding gives the same bytes back. */
	ck_assert_int_eq(ceb_json_decode(out, n, NULL, &back, err, sizeof(err)), 0);
	ck_assert(ceb_event_equal(ev, back));
	free(out);
	ceb_event_unref(ev);
	ceb_event_unref(back);
}

START_TEST(test_data_is_encoded_in_the_form_that_keeps_its_bytes)
{
	/* JSON type and a JSON text: the value itself. */
	assert_data_form("application/json", "[1, 2]", 6, 0, ",\"data\":[1, 2]}");
	assert_data_form("application/json", "\"s\"", 3, 0, ",\"data\":\"s\"}");
	assert_data_form(NULL, "{}", 2, CEB_DATA_JSON, ",\"data\":{}}");
	/* JSON type but not exactly one JSON text (a trailing newline, or not JSON): Base64. */
	assert_data_form("application/json", "{}\n", 3, 0, ",\"data_base64\":\"e30K\"}");
	assert_data_form("application/json", "nope", 4, 0, ",\"data_base64\":\"bm9wZQ==\"}");
	/* Text types: a string. */
	assert_data_form("text/plain", "a\"b\n\x01\xc3\xa9", 7, 0,
	                 ",\"data\":\"a\\\"b\\n\\u0001\xc3\xa9\"}");
	assert_data_form("application/xml", "<a/>", 4, 0, ",\"data\":\"<a/>\"}");
	/* Bytes that are not UTF-8, no type at all, or data that came as data_base64: Base64. */
	assert_data_form("application/octet-stream", "\xff\x00", 2, 0,
	                 ",\"data_base64\":\"/wA=\"}");
	assert_data_form(NULL, "hi", 2, 0, ",\"data_base64\":\"aGk=\"}");
	assert_data_form("application/json", "{}", 2, CEB_DATA_BASE64,
	                 ",\"data_base64\":\"e30=\"}");
	assert_data_form("text/plain", "", 0, 0, ",\"data\":\"\"}");
}
END_TEST

/* --- batches --- */

START_TEST(test_empty_batch_is_valid)
{
	struct ceb_event **evs = (void *)1;
	size_t n = 99;

	ck_assert_int_eq(ceb_json_decode_batch(" [ ] ", 5, NULL, &evs, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(evs);
}
END_TEST

START_TEST(test_batch_decodes_every_event)
{
	const char *json = "[" HEAD ",\"datacontenttype\":\"text/plain\",\"data\":\"x\"},\n"
	                   "{\"specversion\":\"1.0\",\"id\":\"2\",\"source\":\"/s\",\"type\":\"t\","
	                   "\"data\":{\"deep\":[1]}} ]";
	struct ceb_event **evs = NULL;
	struct ceb_buf out = CEB_BUF_INIT;
	struct ceb_event **back = NULL;
	size_t n = 0, m = 0;

	ck_assert_int_eq(
	        ceb_json_decode_batch(json, strlen(json), NULL, &evs, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(ceb_event_get(evs[1], "id")->value, "2");
	assert_data(evs[0], "x", 1, 0);
	assert_data(evs[1], "{\"deep\":[1]}", 12, CEB_DATA_JSON);
	ck_assert_int_eq(ceb_json_encode_batch(evs, n, &out), 0);
	ck_assert_int_eq(ceb_json_decode_batch(out.p, out.len, NULL, &back, &m, err, sizeof(err)),
	                 0);
	ck_assert_uint_eq(m, 2);
	for (size_t i = 0; i < n; i++) {
		ck_assert(ceb_event_equal(evs[i], back[i]));
		ceb_event_unref(evs[i]);
		ceb_event_unref(back[i]);
	}
	free(evs);
	free(back);
	ceb_buf_reset(&out);
	ck_assert_int_eq(ceb_json_encode_batch(NULL, 0, &out), 0);
	ck_assert_str_eq(out.p, "[]");
	ceb_buf_free(&out);
}
END_TEST

START_TEST(test_batch_over_max_batch_is_too_big)
{
	struct ceb_limits lim = ceb_limits_default;
	struct ceb_event **evs = NULL;
	char json[1024], *p = json;
	size_t n = 0;

	lim.max_batch = 3;
	*p++ = '[';
	for (int i = 0; i < 4; i++)
		p += snprintf(p, sizeof(json) - (size_t)(p - json), "%s%s}", i ? "," : "", HEAD);
	snprintf(p, sizeof(json) - (size_t)(p - json), "]");
	ck_assert_int_eq(
	        ceb_json_decode_batch(json, strlen(json), &lim, &evs, &n, err, sizeof(err)),
	        CEB_ETOOBIG);
	ck_assert_str_eq(err, "batch has more than 3 events");
	ck_assert_ptr_null(evs);
	lim.max_batch = 4;
	ck_assert_int_eq(
	        ceb_json_decode_batch(json, strlen(json), &lim, &evs, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		ceb_event_unref(evs[i]);
	free(evs);
}
END_TEST

START_TEST(test_batch_names_the_bad_element)
{
	struct ceb_event **evs = NULL;
	size_t n = 0;
	const char *json = "[" HEAD "},{\"specversion\":\"1.0\",\"source\":\"/s\",\"type\":\"t\"}]";

	ck_assert_int_eq(
	        ceb_json_decode_batch(json, strlen(json), NULL, &evs, &n, err, sizeof(err)),
	        CEB_EINVAL);
	ck_assert_str_eq(err, "event 2: missing required attribute 'id'");
	json = "[" HEAD "}, 5]";
	ck_assert_int_eq(
	        ceb_json_decode_batch(json, strlen(json), NULL, &evs, &n, err, sizeof(err)),
	        CEB_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "event 2: invalid JSON at byte"));
	json = "[" HEAD "} " HEAD "}]";
	ck_assert_int_eq(
	        ceb_json_decode_batch(json, strlen(json), NULL, &evs, &n, err, sizeof(err)),
	        CEB_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "expected ',' or ']'"));
	json = HEAD "}";
	ck_assert_int_eq(
	        ceb_json_decode_batch(json, strlen(json), NULL, &evs, &n, err, sizeof(err)),
	        CEB_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "must be an array"));
	ck_assert_ptr_null(evs);
}
END_TEST

START_TEST(test_a_0_3_event_keeps_its_version_and_its_base64_data)
{
	struct ceb_event *ev = NULL;
	struct ceb_buf out = CEB_BUF_INIT;
	const char *json = "{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"/s\","
	                   "\"type\":\"t\",\"datacontenttype\":\"application/octet-stream\","
	                   "\"schemaurl\":\"http://example.com/s.json\","
	                   "\"datacontentencoding\":\"base64\",\"data\":\"AAEC\"}";
	const char *data;
	size_t len;

	ck_assert_int_eq(ceb_json_decode(json, strlen(json), NULL, &ev, err, sizeof(err)), 0);
	ck_assert_str_eq(ceb_event_get(ev, "specversion")->value, "0.3");
	ck_assert_str_eq(ceb_event_get(ev, "schemaurl")->value, "http://example.com/s.json");
	data = ceb_event_data(ev, &len);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(data, "\0\1\2", 3), 0);
	/* out as it came: no data_base64, which 0.3 does not have */
	ck_assert_int_eq(ceb_json_encode(ev, &out), 0);
	ck_assert_str_eq(out.p, json);
	ceb_buf_free(&out);
	ceb_event_unref(ev);
	json = "{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
	       "\"datacontentencoding\":\"base64\",\"data\":{\"a\":1}}";
	ck_assert_int_eq(ceb_json_decode(json, strlen(json), NULL, &ev, err, sizeof(err)),
	                 CEB_EINVAL);
	ck_assert_str_eq(err, "'data' must be a Base64 string when datacontentencoding is base64");
	/* read as data_base64 is: '/' may come escaped */
	json = "{\"specversion\":\"0.3\",\"id\":\"1\",\"source\":\"/s\",\"type\":\"t\","
	       "\"datacontentencoding\":\"base64\",\"data\":\"AA\\/+\"}";
	ck_assert_int_eq(ceb_json_decode(json, strlen(json), NULL, &ev, err, sizeof(err)), 0);
	data = ceb_event_data(ev, &len);
	ck_assert_uint_eq(len, 3);
	ck_assert_int_eq(memcmp(data, "\x00\x0f\xfe", 3), 0);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_batch_with_mixed_specversions_is_rejected)
{
	struct ceb_event **evs = NULL;
	size_t n = 0;
	const char *json = "[" HEAD "},{\"specversion\":\"0.3\",\"id\":\"2\",\"source\":\"/s\","
	                   "\"type\":\"t\"}]";

	ck_assert_int_eq(
	        ceb_json_decode_batch(json, strlen(json), NULL, &evs, &n, err, sizeof(err)),
	        CEB_EINVAL);
	ck_assert_str_eq(err, "event 2: specversion differs from the first event's; a batch holds "
	                      "one specversion");
	ck_assert_ptr_null(evs);
}
END_TEST

static Suite *json_suite(void)
{
	Suite *s = suite_create("json_format");
	TCase *tc = tcase_create("fixtures");

	tcase_add_loop_test(tc, test_valid_sdk_fixtures_are_accepted_with_every_attribute, 0,
	                    NVALID);
	tcase_add_loop_test(tc, test_valid_fixtures_survive_a_json_round_trip, 0, NVALID);
	tcase_add_loop_test(tc, test_invalid_sdk_java_fixtures_are_rejected_with_a_reason, 0,
	                    sizeof(invalid) / sizeof(invalid[0]));
	tcase_add_test(tc, test_null_subject_is_the_same_as_no_subject);
	suite_add_tcase(s, tc);

	tc = tcase_create("data");
	tcase_add_test(tc, test_json_data_is_kept_byte_identical);
	tcase_add_test(tc, test_json_string_data_is_not_parsed_again);
	tcase_add_test(tc, test_text_data_string_becomes_its_utf8_bytes);
	tcase_add_test(tc, test_non_string_data_with_a_text_type_keeps_its_json_text);
	tcase_add_test(tc, test_null_data_is_an_explicit_null_payload);
	tcase_add_test(tc, test_data_base64_is_decoded_to_bytes);
	tcase_add_test(tc, test_bad_data_base64_is_rejected);
	tcase_add_test(tc, test_data_and_data_base64_together_are_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("attributes");
	tcase_add_test(tc, test_null_attributes_are_unset);
	tcase_add_test(tc, test_typed_extensions_are_kept);
	tcase_add_test(tc, test_extension_numbers_must_be_int32_integers);
	tcase_add_test(tc, test_attributes_of_the_wrong_json_type_are_rejected);
	tcase_add_test(tc, test_attribute_values_are_validated);
	tcase_add_test(tc, test_duplicate_members_are_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("strictness");
	tcase_add_test(tc, test_json_syntax_is_strict);
	tcase_add_test(tc, test_strings_must_be_utf8_with_paired_surrogates);
	tcase_add_test(tc, test_nesting_deeper_than_the_limit_is_rejected);
	tcase_add_test(tc, test_size_and_batch_limits_give_too_big_and_count_limits_invalid);
	tcase_add_test(tc, test_json_valid_accepts_one_bare_json_text);
	suite_add_tcase(s, tc);

	tc = tcase_create("encoding");
	tcase_add_test(tc, test_encoding_is_compact_ordered_and_typed);
	tcase_add_test(tc, test_data_is_encoded_in_the_form_that_keeps_its_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("batch");
	tcase_add_test(tc, test_empty_batch_is_valid);
	tcase_add_test(tc, test_batch_decodes_every_event);
	tcase_add_test(tc, test_batch_over_max_batch_is_too_big);
	tcase_add_test(tc, test_batch_names_the_bad_element);
	tcase_add_test(tc, test_batch_with_mixed_specversions_is_rejected);
	tcase_add_test(tc, test_a_0_3_event_keeps_its_version_and_its_base64_data);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
