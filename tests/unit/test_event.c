/* Unit tests of the event model (broker/event.c): storage, the CloudEvents type system's rules,
 * validation and limits; and of Base64 (broker/base64.c), which the Binary type uses. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ce/base64.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "tests/unit/fixtures.h"

static char err[256];

/* A valid event with the four required attributes. */
static struct ceb_event *minimal(void)
{
	struct ceb_event *ev = ceb_event_new();

	ck_assert_ptr_nonnull(ev);
	ck_assert_int_eq(
	        ceb_event_set(ev, "specversion", CEB_TYPE_STRING, "1.0", 3, err, sizeof(err)), 0);
	ck_assert_int_eq(ceb_event_set(ev, "id", CEB_TYPE_STRING, "1", 1, err, sizeof(err)), 0);
	ck_assert_int_eq(ceb_event_set(ev, "source", CEB_TYPE_STRING, "/src", 4, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(ceb_event_set(ev, "type", CEB_TYPE_STRING, "t", 1, err, sizeof(err)), 0);
	return ev;
}

static int set(struct ceb_event *ev, const char *name, enum ceb_type type, const char *value)
{
	err[0] = '\0';
	return ceb_event_set(ev, name, type, value, strlen(value), err, sizeof(err));
}

/* Asserts that setting value fails with a message containing want. */
static void assert_rejected(const char *name, enum ceb_type type, const char *value,
                            const char *want)
{
	struct ceb_event *ev = ceb_event_new();
	int rc = set(ev, name, type, value);

	ck_assert_msg(rc == CEB_EINVAL, "'%s' = '%s' was accepted", name, value);
	ck_assert_msg(strstr(err, want), "'%s' = '%s': message '%s' lacks '%s'", name, value, err,
	              want);
	ck_assert_ptr_null(ceb_event_get(ev, name));
	ceb_event_unref(ev);
}

static void assert_accepted(const char *name, enum ceb_type type, const char *value)
{
	struct ceb_event *ev = ceb_event_new();
	int rc = set(ev, name, type, value);

	ck_assert_msg(rc == 0, "'%s' = '%s' rejected: %s", name, value, err);
	ck_assert_str_eq(ceb_event_get(ev, name)->value, value);
	ceb_event_unref(ev);
}

START_TEST(test_default_limits_match_the_design)
{
	ck_assert_uint_eq(ceb_limits_default.max_event_size, 1024 * 1024);
	ck_assert_uint_eq(ceb_limits_default.max_attrs, 64);
	ck_assert_uint_eq(ceb_limits_default.max_value_len, 4096);
	ck_assert_uint_eq(ceb_limits_default.max_json_depth, 64);
	ck_assert_uint_eq(ceb_limits_default.max_batch, 100);
}
END_TEST

START_TEST(test_new_event_has_no_attributes_and_no_data)
{
	struct ceb_event *ev = ceb_event_new();
	size_t len = 99;

	ck_assert_uint_eq(ceb_event_attr_count(ev), 0);
	ck_assert_ptr_null(ceb_event_attr_at(ev, 0));
	ck_assert_ptr_null(ceb_event_get(ev, "id"));
	ck_assert_ptr_null(ceb_event_data(ev, &len));
	ck_assert_uint_eq(len, 0);
	ck_assert(!ceb_event_has_data(ev));
	ck_assert_ptr_null(ceb_event_content_type(ev));
	ceb_event_unref(ev);
	ceb_event_unref(NULL);
}
END_TEST

START_TEST(test_attributes_are_listed_core_first_then_extensions_in_set_order)
{
	static const char *const want[] = {
	        "specversion", "id",      "source", "type", "datacontenttype",
	        "dataschema",  "subject", "time",   "zext", "aext"};
	struct ceb_event *ev = ceb_event_new();

	ck_assert_int_eq(set(ev, "zext", CEB_TYPE_STRING, "z"), 0);
	ck_assert_int_eq(set(ev, "time", CEB_TYPE_STRING, "2018-04-05T17:31:00Z"), 0);
	ck_assert_int_eq(set(ev, "subject", CEB_TYPE_STRING, "s"), 0);
	ck_assert_int_eq(set(ev, "aext", CEB_TYPE_STRING, "a"), 0);
	ck_assert_int_eq(set(ev, "dataschema", CEB_TYPE_STRING, "http://x/s"), 0);
	ck_assert_int_eq(set(ev, "datacontenttype", CEB_TYPE_STRING, "text/plain"), 0);
	ck_assert_int_eq(set(ev, "type", CEB_TYPE_STRING, "t"), 0);
	ck_assert_int_eq(set(ev, "source", CEB_TYPE_STRING, "/s"), 0);
	ck_assert_int_eq(set(ev, "id", CEB_TYPE_STRING, "i"), 0);
	ck_assert_int_eq(set(ev, "specversion", CEB_TYPE_STRING, "1.0"), 0);
	ck_assert_uint_eq(ceb_event_attr_count(ev), 10);
	for (size_t i = 0; i < 10; i++)
		ck_assert_str_eq(ceb_event_attr_at(ev, i)->name, want[i]);
	ck_assert_ptr_null(ceb_event_attr_at(ev, 10));
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_core_attributes_take_their_spec_type)
{
	struct ceb_event *ev = ceb_event_new();

	/* The type argument is ignored for core attributes. */
	ck_assert_int_eq(set(ev, "source", CEB_TYPE_INTEGER, "/x"), 0);
	ck_assert_int_eq(ceb_event_get(ev, "source")->type, CEB_TYPE_URIREF);
	ck_assert_int_eq(set(ev, "time", CEB_TYPE_STRING, "2018-04-05T17:31:00Z"), 0);
	ck_assert_int_eq(ceb_event_get(ev, "time")->type, CEB_TYPE_TIMESTAMP);
	ck_assert_int_eq(set(ev, "dataschema", CEB_TYPE_BOOLEAN, "urn:x"), 0);
	ck_assert_int_eq(ceb_event_get(ev, "dataschema")->type, CEB_TYPE_URI);
	ck_assert_int_eq(set(ev, "id", CEB_TYPE_INTEGER, "abc"), 0);
	ck_assert_int_eq(ceb_event_get(ev, "id")->type, CEB_TYPE_STRING);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_set_replaces_an_existing_attribute)
{
	struct ceb_event *ev = minimal();
	char longv[300];

	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	ck_assert_int_eq(set(ev, "id", CEB_TYPE_STRING, "a-much-longer-id"), 0);
	ck_assert_int_eq(set(ev, "id", CEB_TYPE_STRING, "b"), 0);
	ck_assert_str_eq(ceb_event_get(ev, "id")->value, "b");
	ck_assert_uint_eq(ceb_event_get(ev, "id")->len, 1);
	ck_assert_int_eq(set(ev, "ext", CEB_TYPE_STRING, "v1"), 0);
	ck_assert_int_eq(set(ev, "ext", CEB_TYPE_STRING, longv), 0);
	ck_assert_str_eq(ceb_event_get(ev, "ext")->value, longv);
	ck_assert_int_eq(ceb_event_set_int(ev, "ext", 7), 0);
	ck_assert_int_eq(ceb_event_get(ev, "ext")->type, CEB_TYPE_INTEGER);
	ck_assert_str_eq(ceb_event_get(ev, "ext")->value, "7");
	ck_assert_uint_eq(ceb_event_attr_count(ev), 5);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_unset_removes_core_attributes_and_extensions)
{
	struct ceb_event *ev = minimal();

	ck_assert_int_eq(set(ev, "e1", CEB_TYPE_STRING, "1"), 0);
	ck_assert_int_eq(set(ev, "e2", CEB_TYPE_STRING, "2"), 0);
	ck_assert_int_eq(set(ev, "e3", CEB_TYPE_STRING, "3"), 0);
	ck_assert_int_eq(ceb_event_unset(ev, "e2"), 0);
	ck_assert_int_eq(ceb_event_unset(ev, "e2"), CEB_ENOTFOUND);
	ck_assert_int_eq(ceb_event_unset(ev, "id"), 0);
	ck_assert_int_eq(ceb_event_unset(ev, "id"), CEB_ENOTFOUND);
	ck_assert_int_eq(ceb_event_unset(ev, "subject"), CEB_ENOTFOUND);
	ck_assert_uint_eq(ceb_event_attr_count(ev), 5);
	ck_assert_str_eq(ceb_event_attr_at(ev, 3)->name, "e1");
	ck_assert_str_eq(ceb_event_attr_at(ev, 4)->name, "e3");
	ck_assert_ptr_null(ceb_event_get(ev, "id"));
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_many_long_extensions_outgrow_the_inline_storage)
{
	struct ceb_event *ev = minimal();
	char name[16], value[1200];

	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "ext%d", i);
		value[0] = (char)('a' + i % 26);
		ck_assert_int_eq(set(ev, name, CEB_TYPE_STRING, i % 10 ? "short" : value), 0);
	}
	ck_assert_uint_eq(ceb_event_attr_count(ev), 104);
	ck_assert_str_eq(ceb_event_get(ev, "ext99")->value, "short");
	ck_assert_uint_eq(ceb_event_get(ev, "ext90")->len, sizeof(value) - 1);
	ck_assert_int_eq(ceb_event_get(ev, "ext90")->value[0], 'a' + 90 % 26);
	ck_assert_str_eq(ceb_event_attr_at(ev, 4)->name, "ext0");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_clone_is_a_deep_equal_copy)
{
	struct ceb_event *ev = minimal(), *cp;
	static const char data[] = "{\"a\":1}";

	ck_assert_int_eq(ceb_event_set_int(ev, "num", -5), 0);
	ck_assert_int_eq(ceb_event_set_bool(ev, "flag", true), 0);
	ck_assert_int_eq(ceb_event_set_data(ev, data, 7, CEB_DATA_JSON), 0);
	cp = ceb_event_clone(ev);
	ck_assert_ptr_nonnull(cp);
	ck_assert(ceb_event_equal(ev, cp));
	ck_assert_uint_eq(ceb_event_data_flags(cp), CEB_DATA_JSON);
	ck_assert_int_eq(ceb_event_get(cp, "num")->ival, -5);
	ck_assert_int_eq(ceb_event_get(cp, "flag")->ival, 1);
	ck_assert_int_eq(set(cp, "id", CEB_TYPE_STRING, "other"), 0);
	ck_assert(!ceb_event_equal(ev, cp));
	ck_assert_str_eq(ceb_event_get(ev, "id")->value, "1");
	ceb_event_unref(ev);
	ck_assert_str_eq(ceb_event_get(cp, "source")->value, "/src");
	ceb_event_unref(cp);
}
END_TEST

/* Pack ev and unpack it again; checks the size pack promised. */
static struct ceb_event *pack_round_trip(const struct ceb_event *ev)
{
	size_t n = ceb_event_packed_size(ev);
	unsigned char *buf = malloc(n + 1);
	struct ceb_event *cp;

	ck_assert_ptr_nonnull(buf);
	buf[n] = 0xa5;
	ceb_event_pack(ev, buf);
	ck_assert_uint_eq(buf[n], 0xa5); /* wrote no more than it said */
	cp = ceb_event_unpack(buf, n);
	free(buf);
	return cp;
}

START_TEST(test_a_packed_event_unpacks_equal_with_types_numbers_and_data_flags)
{
	struct ceb_event *ev = minimal(), *cp;
	static const char data[] = "{\"a\":1}";
	char big[3000];

	ck_assert_int_eq(set(ev, "time", CEB_TYPE_STRING, "2018-04-05T17:31:00Z"), 0);
	ck_assert_int_eq(set(ev, "dataschema", CEB_TYPE_STRING, "https://x/s"), 0);
	ck_assert_int_eq(ceb_event_set_int(ev, "num", -5), 0);
	ck_assert_int_eq(ceb_event_set_bool(ev, "flag", true), 0);
	ck_assert_int_eq(set(ev, "bin", CEB_TYPE_BINARY, "AQID"), 0);
	memset(big, 'x', sizeof(big));
	ck_assert_int_eq(ceb_event_set(ev, "long", CEB_TYPE_STRING, big, 200, err, sizeof(err)), 0);
	ck_assert_int_eq(ceb_event_set_data(ev, data, 7, CEB_DATA_JSON), 0);
	cp = pack_round_trip(ev);
	ck_assert_ptr_nonnull(cp);
	ck_assert(ceb_event_equal(ev, cp));
	ck_assert_uint_eq(ceb_event_data_flags(cp), CEB_DATA_JSON);
	ck_assert_int_eq(ceb_event_get(cp, "num")->ival, -5);
	ck_assert_int_eq(ceb_event_get(cp, "num")->type, CEB_TYPE_INTEGER);
	ck_assert_int_eq(ceb_event_get(cp, "flag")->ival, 1);
	ck_assert_int_eq(ceb_event_get(cp, "bin")->type, CEB_TYPE_BINARY);
	ck_assert_int_eq(ceb_event_get(cp, "time")->type, CEB_TYPE_TIMESTAMP);
	/* extensions keep their order, and the copy is mutable like a clone */
	ck_assert_str_eq(ceb_event_attr_at(cp, ceb_event_attr_count(cp) - 1)->name, "long");
	ck_assert_int_eq(ceb_event_set_int(cp, "ttl", 3), 0);
	ck_assert_int_eq(ceb_event_unset(cp, "num"), 0);
	ck_assert(!ceb_event_equal(ev, cp));
	ceb_event_unref(cp);
	/* large data (outside the arena), and then no data, and empty data */
	ck_assert_int_eq(ceb_event_set_data(ev, big, sizeof(big), CEB_DATA_BASE64), 0);
	cp = pack_round_trip(ev);
	ck_assert(ceb_event_equal(ev, cp));
	ck_assert_uint_eq(ceb_event_data_flags(cp), CEB_DATA_BASE64);
	ceb_event_unref(cp);
	ck_assert_int_eq(ceb_event_set_data(ev, NULL, 0, 0), 0);
	cp = pack_round_trip(ev);
	ck_assert(!ceb_event_has_data(cp));
	ck_assert(ceb_event_equal(ev, cp));
	ceb_event_unref(cp);
	ck_assert_int_eq(ceb_event_set_data(ev, "", 0, 0), 0);
	cp = pack_round_trip(ev);
	ck_assert(ceb_event_has_data(cp));
	ck_assert(ceb_event_equal(ev, cp));
	ceb_event_unref(cp);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_unpack_refuses_bytes_that_are_not_a_whole_packed_event)
{
	struct ceb_event *ev = minimal();
	size_t n;
	unsigned char *buf;

	ck_assert_int_eq(ceb_event_set_data(ev, "abc", 3, 0), 0);
	n = ceb_event_packed_size(ev);
	buf = malloc(n + 1);
	ceb_event_pack(ev, buf);
	for (size_t k = 0; k < n; k++)
		ck_assert_ptr_null(ceb_event_unpack(buf, k)); /* every truncation */
	buf[n] = 'x';
	ck_assert_ptr_null(ceb_event_unpack(buf, n + 1)); /* trailing bytes */
	buf[4] = 200;                                     /* a known index out of range */
	ck_assert_ptr_null(ceb_event_unpack(buf, n));
	free(buf);
	ceb_event_unref(ev);
}
END_TEST

static void *ref_unref_loop(void *arg)
{
	struct ceb_event *ev = arg;

	for (int i = 0; i < 100000; i++)
		ceb_event_unref(ceb_event_ref(ev));
	return NULL;
}

START_TEST(test_references_are_counted_atomically_across_threads)
{
	struct ceb_event *ev = minimal();
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, ref_unref_loop, ev), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	/* Still exactly one reference: this unref frees it (ASan reports a leak otherwise). */
	ck_assert_ptr_eq(ceb_event_ref(ev), ev);
	ceb_event_unref(ev);
	ck_assert_str_eq(ceb_event_get(ev, "id")->value, "1");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_validate_names_each_missing_required_attribute)
{
	static const char *const req[] = {"specversion", "id", "source", "type"};
	char want[64];

	for (int i = 0; i < 4; i++) {
		struct ceb_event *ev = minimal();

		ck_assert_int_eq(ceb_event_unset(ev, req[i]), 0);
		ck_assert_int_eq(ceb_event_validate(ev, NULL, err, sizeof(err)), CEB_EINVAL);
		snprintf(want, sizeof(want), "missing required attribute '%s'", req[i]);
		ck_assert_str_eq(err, want);
		ceb_event_unref(ev);
	}
	{
		struct ceb_event *ev = minimal();

		ck_assert_int_eq(ceb_event_validate(ev, &ceb_limits_default, err, sizeof(err)), 0);
		ceb_event_unref(ev);
	}
}
END_TEST

START_TEST(test_required_and_subject_values_must_not_be_empty)
{
	assert_rejected("id", CEB_TYPE_STRING, "", "attribute 'id': must not be empty");
	assert_rejected("source", CEB_TYPE_STRING, "", "attribute 'source': must not be empty");
	assert_rejected("type", CEB_TYPE_STRING, "", "attribute 'type': must not be empty");
	assert_rejected("specversion", CEB_TYPE_STRING, "",
	                "attribute 'specversion': must not be empty");
	assert_rejected("subject", CEB_TYPE_STRING, "", "attribute 'subject': must not be empty");
	assert_rejected("dataschema", CEB_TYPE_STRING, "", "attribute 'dataschema'");
	assert_rejected("time", CEB_TYPE_STRING, "", "attribute 'time'");
	/* Extensions may be empty strings. */
	assert_accepted("myext", CEB_TYPE_STRING, "");
}
END_TEST

START_TEST(test_specversion_must_be_1_0_or_0_3)
{
	struct ceb_event *ev = minimal();

	ck_assert_int_eq(set(ev, "specversion", CEB_TYPE_STRING, "0.3"), 0);
	ck_assert_int_eq(ceb_event_validate(ev, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(set(ev, "specversion", CEB_TYPE_STRING, "0.2"), 0);
	ck_assert_int_eq(ceb_event_validate(ev, NULL, err, sizeof(err)), CEB_EINVAL);
	ck_assert_str_eq(err,
	                 "attribute 'specversion': '0.2' is not supported, only '1.0' and '0.3'");
	ck_assert_int_eq(set(ev, "specversion", CEB_TYPE_STRING, "1.0.2"), 0);
	ck_assert_int_eq(ceb_event_validate(ev, NULL, err, sizeof(err)), CEB_EINVAL);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_attribute_names_must_be_lower_case_letters_and_digits)
{
	char name65[66], name64[65];

	memset(name65, 'a', 65);
	name65[65] = '\0';
	memset(name64, 'b', 64);
	name64[64] = '\0';
	assert_rejected("Foo", CEB_TYPE_STRING, "v", "attribute name 'Foo' is invalid");
	assert_rejected("a_b", CEB_TYPE_STRING, "v", "only lower-case letters a-z and digits 0-9");
	assert_rejected("a-b", CEB_TYPE_STRING, "v", "attribute name 'a-b' is invalid");
	assert_rejected("", CEB_TYPE_STRING, "v", "attribute name must not be empty");
	assert_rejected("data", CEB_TYPE_STRING, "v", "attribute name 'data' is reserved");
	assert_rejected(name65, CEB_TYPE_STRING, "v", "longer than 64 characters");
	assert_accepted(name64, CEB_TYPE_STRING, "v");
	assert_accepted("a1", CEB_TYPE_STRING, "v");
	assert_accepted("1a", CEB_TYPE_STRING, "v");
	assert_accepted("datax", CEB_TYPE_STRING, "v");
	ck_assert(!ceb_attr_name_valid("data", 4));
	ck_assert(ceb_attr_name_valid("data", 3));
	{
		struct ceb_event *ev = ceb_event_new();

		ck_assert_int_eq(ceb_event_set_int(ev, "Bad", 1), CEB_EINVAL);
		ck_assert_int_eq(ceb_event_set_bool(ev, "a_b", true), CEB_EINVAL);
		/* Core attributes are Strings, never Integers or Booleans. */
		ck_assert_int_eq(ceb_event_set_int(ev, "id", 1), CEB_EINVAL);
		ck_assert_int_eq(ceb_event_set_bool(ev, "subject", true), CEB_EINVAL);
		ck_assert_uint_eq(ceb_event_attr_count(ev), 0);
		ceb_event_unref(ev);
	}
}
END_TEST

START_TEST(test_time_must_be_an_rfc3339_timestamp)
{
	static const char *const good[] = {
	        "2018-04-05T17:31:00Z", "2018-04-26T14:48:09+02:00",   "2018-04-26T14:48:09.1234Z",
	        "2020-02-29T00:00:00Z", "2000-02-29T23:59:59-05:30",   "1990-12-31T23:59:60Z",
	        "2018-04-05t17:31:00z", "0000-01-01T00:00:00.0+00:00", "2018-01-31T10:00:00Z",
	};
	static const char *const bad[] = {
	        "2019-02-29T00:00:00Z",      "1900-02-29T00:00:00Z",
	        "2018-13-01T00:00:00Z",      "2018-00-01T00:00:00Z",
	        "2018-01-32T00:00:00Z",      "2018-04-31T00:00:00Z",
	        "2018-01-00T00:00:00Z",      "2018-01-01T24:00:00Z",
	        "2018-01-01T00:60:00Z",      "2018-01-01T00:00:61Z",
	        "2018-01-01T00:00:00",       "2018-01-01 00:00:00Z",
	        "2018-01-01T00:00:00.Z",     "2018-01-01T00:00:00+2:00",
	        "2018-01-01T00:00:00+24:00", "2018-01-01T00:00:00+02:60",
	        "2018-01-01T00:00:00Zjunk",  "2018-01-01",
	        "18-01-01T00:00:00Z",        "2018-1-01T00:00:00Z",
	        "2018-01-01T00:00:00+0200",  "now",
	        "2018-01-01T0a:00:00Z",      "2018-01-01T00:00:00.123",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_accepted("time", CEB_TYPE_TIMESTAMP, good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rejected("time", CEB_TYPE_TIMESTAMP, bad[i],
		                "attribute 'time': not an RFC 3339 timestamp");
	/* The same rule for a Timestamp extension. */
	assert_rejected("when", CEB_TYPE_TIMESTAMP, "2019-02-29T00:00:00Z",
	                "attribute 'when': not an RFC 3339 timestamp");
}
END_TEST

START_TEST(test_dataschema_must_be_an_absolute_uri)
{
	assert_accepted("dataschema", CEB_TYPE_URI, "http://localhost/schema");
	assert_accepted("dataschema", CEB_TYPE_URI, "urn:example:schema");
	assert_accepted("dataschema", CEB_TYPE_URI, "https://x.example/s.json#/defs/a");
	assert_accepted("dataschema", CEB_TYPE_URI, "http://[::1]:8080/a%20b?q=1");
	assert_rejected("dataschema", CEB_TYPE_URI, "/relative/schema", "not an absolute URI");
	assert_rejected("dataschema", CEB_TYPE_URI, "schema.json", "not an absolute URI");
	assert_rejected("dataschema", CEB_TYPE_URI, "http://x/a b", "not an absolute URI");
	assert_rejected("dataschema", CEB_TYPE_URI, "1http://x", "not an absolute URI");
	assert_rejected("dataschema", CEB_TYPE_URI, "http://x/%zz", "not an absolute URI");
	assert_rejected("dataschema", CEB_TYPE_URI, "http://x/#a#b", "not an absolute URI");
	assert_rejected("myuri", CEB_TYPE_URI, "relative",
	                "attribute 'myuri': 'relative' is not an absolute URI");
}
END_TEST

START_TEST(test_source_must_be_a_uri_reference)
{
	static const char *const good[] = {
	        "/cloudevents/spec/pull/123",
	        "1-555-123-4567",
	        "urn:event:from:myapi/resource/123",
	        "https://github.com/cloudevents",
	        "mailto:cncf-wg-serverless@lists.cncf.io",
	        "%20x",
	        "//host/path?q=a&b=c#frag",
	        "a",
	        ".",
	        "?q",
	        "#f",
	        "x/y:z",
	};
	static const char *const bad[] = {
	        "a b", "http://x/%G1", "http://x/%4", ":foo", "a\"b", "a#b#c",        "\xc3\xbc",
	        "a<b", "a\\b",         "a^b",         "{x}",  "1a:b", "http://x/a|b",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_accepted("source", CEB_TYPE_URIREF, good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rejected("source", CEB_TYPE_URIREF, bad[i], "attribute 'source': '");
	assert_rejected("source", CEB_TYPE_URIREF, "a b", "is not a URI-reference (RFC 3986");
}
END_TEST

START_TEST(test_integers_are_canonical_and_within_int32)
{
	struct ceb_event *ev = ceb_event_new();

	assert_accepted("n", CEB_TYPE_INTEGER, "0");
	assert_accepted("n", CEB_TYPE_INTEGER, "-2147483648");
	assert_accepted("n", CEB_TYPE_INTEGER, "2147483647");
	assert_accepted("n", CEB_TYPE_INTEGER, "42");
	assert_rejected("n", CEB_TYPE_INTEGER, "2147483648",
	                "attribute 'n': '2147483648' is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "-2147483649", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "4247483647", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "99999999999", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "01", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "+1", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "1.0", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "42.42", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "1e3", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, "-", "is not an Integer");
	assert_rejected("n", CEB_TYPE_INTEGER, " 1", "is not an Integer");
	/* -0 matches the spec's pattern; it is stored as its canonical 0. */
	ck_assert_int_eq(set(ev, "n", CEB_TYPE_INTEGER, "-0"), 0);
	ck_assert_str_eq(ceb_event_get(ev, "n")->value, "0");
	ck_assert_int_eq(set(ev, "n", CEB_TYPE_INTEGER, "-17"), 0);
	ck_assert_int_eq(ceb_event_get(ev, "n")->ival, -17);
	ck_assert_int_eq(ceb_event_set_int(ev, "m", INT32_MIN), 0);
	ck_assert_str_eq(ceb_event_get(ev, "m")->value, "-2147483648");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_booleans_are_true_or_false_only)
{
	struct ceb_event *ev = ceb_event_new();

	assert_accepted("b", CEB_TYPE_BOOLEAN, "true");
	assert_accepted("b", CEB_TYPE_BOOLEAN, "false");
	assert_rejected("b", CEB_TYPE_BOOLEAN, "True",
	                "attribute 'b': a Boolean must be 'true' or 'false'");
	assert_rejected("b", CEB_TYPE_BOOLEAN, "1", "a Boolean must be");
	assert_rejected("b", CEB_TYPE_BOOLEAN, "", "a Boolean must be");
	ck_assert_int_eq(ceb_event_set_bool(ev, "b", false), 0);
	ck_assert_str_eq(ceb_event_get(ev, "b")->value, "false");
	ck_assert_int_eq(ceb_event_get(ev, "b")->ival, 0);
	ck_assert_int_eq(ceb_event_get(ev, "b")->type, CEB_TYPE_BOOLEAN);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_strings_reject_controls_noncharacters_and_bad_utf8)
{
	assert_accepted("s", CEB_TYPE_STRING, "Euro \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_accepted("s", CEB_TYPE_STRING, "nbsp\xc2\xa0ok");
	assert_accepted("s", CEB_TYPE_STRING, "\xef\xbf\xbd");     /* U+FFFD */
	assert_accepted("s", CEB_TYPE_STRING, "\xf4\x8f\xbf\xbd"); /* U+10FFFD */
	assert_rejected("s", CEB_TYPE_STRING, "a\x01", "attribute 's': control character U+0001");
	assert_rejected("s", CEB_TYPE_STRING, "tab\there", "control character U+0009");
	assert_rejected("s", CEB_TYPE_STRING, "a\x7f", "control character U+007F");
	assert_rejected("s", CEB_TYPE_STRING, "\xc2\x80", "control character U+0080");
	assert_rejected("s", CEB_TYPE_STRING, "\xc2\x9f", "control character U+009F");
	assert_rejected("s", CEB_TYPE_STRING, "\xef\xb7\x90", "noncharacter U+FDD0");
	assert_rejected("s", CEB_TYPE_STRING, "\xef\xb7\xaf", "noncharacter U+FDEF");
	assert_rejected("s", CEB_TYPE_STRING, "\xef\xbf\xbe", "noncharacter U+FFFE");
	assert_rejected("s", CEB_TYPE_STRING, "\xef\xbf\xbf", "noncharacter U+FFFF");
	assert_rejected("s", CEB_TYPE_STRING, "\xf0\x9f\xbf\xbe", "noncharacter U+1FFFE");
	assert_rejected("s", CEB_TYPE_STRING, "\xf4\x8f\xbf\xbf", "noncharacter U+10FFFF");
	assert_rejected("s", CEB_TYPE_STRING, "\xc0\xa0", "not valid UTF-8");
	assert_rejected("s", CEB_TYPE_STRING, "\xed\xa0\x80", "not valid UTF-8");
	assert_rejected("s", CEB_TYPE_STRING, "\xe2\x82", "not valid UTF-8");
	assert_rejected("s", CEB_TYPE_STRING, "\xf5\x80\x80\x80", "not valid UTF-8");
	assert_rejected("id", CEB_TYPE_STRING, "a\nb", "attribute 'id': control character U+000A");
	{
		/* NUL inside the value (len counts it) is a control character too. */
		struct ceb_event *ev = ceb_event_new();

		ck_assert_int_eq(
		        ceb_event_set(ev, "s", CEB_TYPE_STRING, "a\0b", 3, err, sizeof(err)),
		        CEB_EINVAL);
		ck_assert_ptr_nonnull(strstr(err, "U+0000"));
		ceb_event_unref(ev);
	}
}
END_TEST

START_TEST(test_utf8_validation_is_strict)
{
	ck_assert(ceb_utf8_valid("", 0));
	ck_assert(ceb_utf8_valid("abc\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 12));
	ck_assert(!ceb_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
	ck_assert(!ceb_utf8_valid("\xe0\x80\xaf", 3));     /* overlong */
	ck_assert(!ceb_utf8_valid("\xf0\x80\x80\xaf", 4)); /* overlong */
	ck_assert(!ceb_utf8_valid("\xed\xbf\xbf", 3));     /* surrogate U+DFFF */
	ck_assert(!ceb_utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
	ck_assert(!ceb_utf8_valid("\x80", 1));             /* lone continuation */
	ck_assert(!ceb_utf8_valid("\xe2\x82", 2));         /* truncated */
	ck_assert(!ceb_utf8_valid("\xe2\x28\xa1", 3));     /* bad continuation */
	ck_assert(!ceb_utf8_valid("\xff", 1));
}
END_TEST

START_TEST(test_datacontenttype_must_be_a_media_type)
{
	static const char *const good[] = {
	        "application/json",
	        "text/plain; charset=utf-8",
	        "text/plain;charset=UTF-8",
	        "multipart/form-data; boundary=\"a b\"",
	        "application/cloudevents+json; charset=utf-8",
	        "application/vnd.api+json",
	        "text/plain; a=1; b=2",
	        "text/plain; x=\"q\\\"uote\"",
	};
	static const char *const bad[] = {
	        "json",
	        "text/",
	        "/plain",
	        "text/plain;",
	        "text/plain; charset",
	        "text plain",
	        "text/plain ",
	        " text/plain",
	        "text/pl@in",
	        "text/plain; charset=",
	        "a/b/c",
	        "text/plain; x=\"unterminated",
	        "text/plain; x=a b",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_accepted("datacontenttype", CEB_TYPE_STRING, good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rejected("datacontenttype", CEB_TYPE_STRING, bad[i],
		                "attribute 'datacontenttype': '");
	assert_rejected("datacontenttype", CEB_TYPE_STRING, "json",
	                "'json' is not a media type (RFC 2046");
	assert_rejected("datacontenttype", CEB_TYPE_STRING, "", "is not a media type");
}
END_TEST

START_TEST(test_media_types_are_recognised_as_json)
{
	ck_assert(ceb_media_type_is_json("application/json"));
	ck_assert(ceb_media_type_is_json("APPLICATION/JSON; charset=utf-8"));
	ck_assert(ceb_media_type_is_json("text/json"));
	ck_assert(ceb_media_type_is_json("application/cloudevents+json"));
	ck_assert(ceb_media_type_is_json("application/vnd.foo+JSON ;x=1"));
	ck_assert(!ceb_media_type_is_json("text/plain"));
	ck_assert(!ceb_media_type_is_json("application/jsonx"));
	ck_assert(!ceb_media_type_is_json("application/json-seq"));
	ck_assert(!ceb_media_type_is_json("application/+json"));
	ck_assert(!ceb_media_type_is_json("json"));
	ck_assert(!ceb_media_type_is_json("/json"));
	ck_assert(!ceb_media_type_is_json(NULL));
}
END_TEST

START_TEST(test_binary_extensions_must_be_base64)
{
	assert_accepted("bin", CEB_TYPE_BINARY, "4P8ARKo=");
	assert_accepted("bin", CEB_TYPE_BINARY, "");
	assert_rejected("bin", CEB_TYPE_BINARY, "4P8ARKo", "attribute 'bin': not valid Base64");
	assert_rejected("bin", CEB_TYPE_BINARY, "4P8A RKo=", "not valid Base64");
}
END_TEST

START_TEST(test_content_type_is_implied_only_for_json_data)
{
	struct ceb_event *ev = minimal();

	ck_assert_ptr_null(ceb_event_content_type(ev));
	ck_assert_int_eq(ceb_event_set_data(ev, "{}", 2, CEB_DATA_JSON), 0);
	ck_assert_str_eq(ceb_event_content_type(ev), "application/json");
	ck_assert_int_eq(ceb_event_set_data(ev, "xx", 2, 0), 0);
	ck_assert_ptr_null(ceb_event_content_type(ev));
	ck_assert_int_eq(set(ev, "datacontenttype", CEB_TYPE_STRING, "text/plain"), 0);
	ck_assert_str_eq(ceb_event_content_type(ev), "text/plain");
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_data_can_be_copied_taken_empty_or_absent)
{
	struct ceb_event *ev = minimal();
	char big[5000];
	const char *p;
	size_t len;
	char *owned = malloc(3);

	memcpy(owned, "abc", 3);
	ck_assert_int_eq(ceb_event_take_data(ev, owned, 3, 0), 0);
	p = ceb_event_data(ev, &len);
	ck_assert_ptr_eq(p, owned);
	ck_assert_uint_eq(len, 3);
	memset(big, 'z', sizeof(big));
	ck_assert_int_eq(ceb_event_set_data(ev, big, sizeof(big), 0), 0);
	p = ceb_event_data(ev, &len);
	ck_assert_uint_eq(len, sizeof(big));
	ck_assert_int_eq(memcmp(p, big, len), 0);
	ck_assert_int_eq(ceb_event_set_data(ev, "", 0, 0), 0);
	ck_assert(ceb_event_has_data(ev));
	ck_assert_ptr_nonnull(ceb_event_data(ev, &len));
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(ceb_event_set_data(ev, NULL, 0, 0), 0);
	ck_assert(!ceb_event_has_data(ev));
	ck_assert_ptr_null(ceb_event_data(ev, &len));
	ck_assert_int_eq(ceb_event_set_data(ev, NULL, 1, 0), CEB_EINVAL);
	len = ceb_event_size(ev);
	ck_assert_uint_gt(len, 0);
	ck_assert_int_eq(ceb_event_set_data(ev, big, 1000, 0), 0);
	ck_assert_uint_eq(ceb_event_size(ev), len + 1000);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_equal_compares_types_and_values_but_not_extension_order)
{
	struct ceb_event *a = minimal(), *b = minimal();

	ck_assert(ceb_event_equal(a, b));
	ck_assert_int_eq(set(a, "x", CEB_TYPE_STRING, "1"), 0);
	ck_assert_int_eq(set(a, "y", CEB_TYPE_STRING, "2"), 0);
	ck_assert_int_eq(set(b, "y", CEB_TYPE_STRING, "2"), 0);
	ck_assert(!ceb_event_equal(a, b));
	ck_assert_int_eq(set(b, "x", CEB_TYPE_INTEGER, "1"), 0);
	ck_assert(!ceb_event_equal(a, b));
	ck_assert_int_eq(set(b, "x", CEB_TYPE_STRING, "1"), 0);
	ck_assert(ceb_event_equal(a, b));
	ck_assert_int_eq(ceb_event_set_data(a, "", 0, 0), 0);
	ck_assert(!ceb_event_equal(a, b));
	ck_assert_int_eq(ceb_event_set_data(b, "", 0, CEB_DATA_JSON), 0);
	ck_assert(ceb_event_equal(a, b));
	ck_assert_int_eq(ceb_event_set_data(b, "x", 1, 0), 0);
	ck_assert(!ceb_event_equal(a, b));
	ceb_event_unref(a);
	ceb_event_unref(b);
}
END_TEST

START_TEST(test_validate_enforces_limits)
{
	struct ceb_limits lim = ceb_limits_default;
	struct ceb_event *ev = minimal();
	char big[100];

	lim.max_attrs = 5;
	ck_assert_int_eq(ceb_event_validate(ev, &lim, err, sizeof(err)), 0);
	ck_assert_int_eq(set(ev, "e1", CEB_TYPE_STRING, "v"), 0);
	ck_assert_int_eq(set(ev, "e2", CEB_TYPE_STRING, "v"), 0);
	ck_assert_int_eq(ceb_event_validate(ev, &lim, err, sizeof(err)), CEB_EINVAL);
	ck_assert_str_eq(err, "too many attributes: 6 (limit 5)");
	lim.max_attrs = 64;
	lim.max_value_len = 10;
	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(set(ev, "e2", CEB_TYPE_STRING, big), 0);
	ck_assert_int_eq(ceb_event_validate(ev, &lim, err, sizeof(err)), CEB_EINVAL);
	ck_assert_str_eq(err, "attribute 'e2': value is 99 bytes (limit 10)");
	lim.max_value_len = 4096;
	lim.max_event_size = 100;
	ck_assert_int_eq(ceb_event_set_data(ev, big, sizeof(big), 0), 0);
	ck_assert_int_eq(ceb_event_validate(ev, &lim, err, sizeof(err)), CEB_ETOOBIG);
	ck_assert_ptr_nonnull(strstr(err, "(limit 100)"));
	ck_assert_int_eq(ceb_event_validate(ev, NULL, err, sizeof(err)), 0);
	ceb_event_unref(ev);
}
END_TEST

/* --- base64 --- */

static void b64_roundtrip(const char *raw, size_t len, const char *text)
{
	struct ceb_buf out = CEB_BUF_INIT;

	ck_assert_int_eq(ceb_base64_encode(raw, len, &out), 0);
	ck_assert_str_eq(out.p, text);
	ck_assert_uint_eq(ceb_base64_encoded_len(len), strlen(text));
	ceb_buf_reset(&out);
	ck_assert_int_eq(ceb_base64_decode(text, strlen(text), &out), 0);
	ck_assert_uint_eq(out.len, len);
	ck_assert_int_eq(memcmp(out.p, raw, len), 0);
	ceb_buf_free(&out);
}

START_TEST(test_base64_encodes_and_decodes_rfc4648_vectors)
{
	b64_roundtrip("", 0, "");
	b64_roundtrip("f", 1, "Zg==");
	b64_roundtrip("fo", 2, "Zm8=");
	b64_roundtrip("foo", 3, "Zm9v");
	b64_roundtrip("foob", 4, "Zm9vYg==");
	b64_roundtrip("fooba", 5, "Zm9vYmE=");
	b64_roundtrip("foobar", 6, "Zm9vYmFy");
	b64_roundtrip("\xe0\xff\x00\x44\xaa", 5, "4P8ARKo=");
	b64_roundtrip("\xfb\xff", 2, "+/8=");
}
END_TEST

START_TEST(test_base64_rejects_malformed_text)
{
	static const char *const bad[] = {"Zg",   "Zg=",  "Z===", "Zg==Zg==", "Zm9v\n", "Zm 9",
	                                  "Zm9-", "Zm9_", "=Zm9", "Zm=v",     "@@@@"};
	struct ceb_buf out = CEB_BUF_INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(!ceb_base64_valid(bad[i], strlen(bad[i])), "'%s' accepted", bad[i]);
		ck_assert_int_eq(ceb_base64_decode(bad[i], strlen(bad[i]), &out), CEB_EINVAL);
	}
	/* Unused bits of the last group are ignored (RFC 4648 3.5 allows either). */
	ck_assert(ceb_base64_valid("Zh==", 4));
	ceb_buf_free(&out);
}
END_TEST

static Suite *event_suite(void)
{
	Suite *s = suite_create("event");
	TCase *tc = tcase_create("model");

	tcase_add_test(tc, test_default_limits_match_the_design);
	tcase_add_test(tc, test_new_event_has_no_attributes_and_no_data);
	tcase_add_test(tc, test_attributes_are_listed_core_first_then_extensions_in_set_order);
	tcase_add_test(tc, test_core_attributes_take_their_spec_type);
	tcase_add_test(tc, test_set_replaces_an_existing_attribute);
	tcase_add_test(tc, test_unset_removes_core_attributes_and_extensions);
	tcase_add_test(tc, test_many_long_extensions_outgrow_the_inline_storage);
	tcase_add_test(tc, test_clone_is_a_deep_equal_copy);
	tcase_add_test(tc, test_a_packed_event_unpacks_equal_with_types_numbers_and_data_flags);
	tcase_add_test(tc, test_unpack_refuses_bytes_that_are_not_a_whole_packed_event);
	tcase_add_test(tc, test_references_are_counted_atomically_across_threads);
	tcase_add_test(tc, test_content_type_is_implied_only_for_json_data);
	tcase_add_test(tc, test_data_can_be_copied_taken_empty_or_absent);
	tcase_add_test(tc, test_equal_compares_types_and_values_but_not_extension_order);
	suite_add_tcase(s, tc);

	tc = tcase_create("validation");
	tcase_add_test(tc, test_validate_names_each_missing_required_attribute);
	tcase_add_test(tc, test_required_and_subject_values_must_not_be_empty);
	tcase_add_test(tc, test_specversion_must_be_1_0_or_0_3);
	tcase_add_test(tc, test_attribute_names_must_be_lower_case_letters_and_digits);
	tcase_add_test(tc, test_time_must_be_an_rfc3339_timestamp);
	tcase_add_test(tc, test_dataschema_must_be_an_absolute_uri);
	tcase_add_test(tc, test_source_must_be_a_uri_reference);
	tcase_add_test(tc, test_integers_are_canonical_and_within_int32);
	tcase_add_test(tc, test_booleans_are_true_or_false_only);
	tcase_add_test(tc, test_strings_reject_controls_noncharacters_and_bad_utf8);
	tcase_add_test(tc, test_utf8_validation_is_strict);
	tcase_add_test(tc, test_datacontenttype_must_be_a_media_type);
	tcase_add_test(tc, test_media_types_are_recognised_as_json);
	tcase_add_test(tc, test_binary_extensions_must_be_base64);
	tcase_add_test(tc, test_validate_enforces_limits);
	suite_add_tcase(s, tc);

	tc = tcase_create("base64");
	tcase_add_test(tc, test_base64_encodes_and_decodes_rfc4648_vectors);
	tcase_add_test(tc, test_base64_rejects_malformed_text);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(event_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
