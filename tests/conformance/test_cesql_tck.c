/* Runs the CloudEvents CESQL v1 TCK (the YAML files of tests/conformance/cesql) against filters/cesql,
 * taking the sdk-go/sdk-java erratum of the cases that contradict the spec (see below). */
#include <dirent.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ce/event.h"
#include "filters/cesql/cesql.h"

/* Cases where the spec repository's TCK disagrees with CESQL v1 §3.7 and the SDKs fixed their copy:
 * `NOT 10` (Integer -> Boolean is a valid cast) and the two `1 != 1 / 0` cases (their expected value
 * depends on the evaluation mode; sdk-java rewrote them as `1 = 1 / 0`). */
static const struct erratum {
	const char *file;
	const char *name;
	const char *errata_file;
} errata[] = {
        {"not_operator.yaml", "Invalid int cast", "sdk-java/not_operator.yaml"},
        {"binary_logical_operators.yaml",
         "AND operator is NOT short circuit evaluated when the first operand evaluates to true",
         "sdk-java/binary_logical_operators.yaml"},
        {"binary_logical_operators.yaml",
         "OR operator is NOT short circuit evaluated when the first operand evaluates to false",
         "sdk-java/binary_logical_operators.yaml"},
};

/* Whole errata files that must pass as well (they are the SDKs' versions of the same suites). */
static const char *const errata_files[] = {
        "sdk-go/not_operator.yaml",
        "sdk-java/not_operator.yaml",
        "sdk-java/binary_logical_operators.yaml",
};

static char topdir[2048];
static size_t errata_applied;

static const char *scalar(struct fy_node *node, const char *key, size_t *len)
{
	struct fy_node *v = fy_node_mapping_lookup_by_string(node, key, (size_t)-1);
	size_t dummy;

	if (!len)
		len = &dummy;
	if (!v || fy_node_get_type(v) != FYNT_SCALAR)
		return NULL;
	return fy_node_get_scalar(v, len);
}

static bool plain(struct fy_node *v)
{
	return fy_node_get_style(v) == FYNS_PLAIN;
}

/* YAML 1.2 core schema for plain scalars: the booleans and decimal integers that matter here. */
static int yaml_bool(const char *s, size_t len)
{
	static const char *const t[] = {"true", "True", "TRUE"}, *const f[] = {"false", "False",
	                                                                       "FALSE"};

	for (size_t i = 0; i < 3; i++) {
		if (len == strlen(t[i]) && memcmp(s, t[i], len) == 0)
			return 1;
		if (len == strlen(f[i]) && memcmp(s, f[i], len) == 0)
			return 0;
	}
	return -1;
}

static bool yaml_int(const char *s, size_t len, int32_t *out)
{
	char buf[32], *end;
	long v;

	if (len == 0 || len >= sizeof(buf))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (i == 0 && (s[i] == '-' || s[i] == '+'))))
			return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	v = strtol(buf, &end, 10);
	if (*end || v < INT32_MIN || v > INT32_MAX)
		return false;
	*out = (int32_t)v;
	return true;
}

/* Sets every key of a YAML map on the event: plain booleans and integers become typed extensions. */
static int apply_map(struct ceb_event *ev, struct fy_node *map, char *err, size_t errlen)
{
	struct fy_node_pair *pair;
	void *it = NULL;

	while ((pair = fy_node_mapping_iterate(map, &it)) != NULL) {
		struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
		size_t klen, vlen;
		const char *ks = fy_node_get_scalar(k, &klen), *vs = fy_node_get_scalar(v, &vlen);
		char name[128];
		int32_t iv;
		int b, rc;

		if (!ks || !vs || klen >= sizeof(name)) {
			snprintf(err, errlen, "bad event entry");
			return -1;
		}
		memcpy(name, ks, klen);
		name[klen] = '\0';
		if (plain(v) && (b = yaml_bool(vs, vlen)) >= 0)
			rc = ceb_event_set_bool(ev, name, b == 1);
		else if (plain(v) && yaml_int(vs, vlen, &iv))
			rc = ceb_event_set_int(ev, name, iv);
		else
			rc = ceb_event_set(ev, name, CEB_TYPE_STRING, vs, vlen, err, errlen);
		if (rc) {
			if (!*err)
				snprintf(err, errlen, "cannot set %s", name);
			return -1;
		}
	}
	return 0;
}

/* Any valid event without the names the TCK treats as missing. */
static struct ceb_event *base_event(void)
{
	static const char *const attrs[][2] = {
	        {"specversion", "1.0"},
	        {"id", "full-event"},
	        {"source", "http://example.com/source"},
	        {"type", "com.example.FullEvent"},
	        {"subject", "topic"},
	        {"time", "2018-04-26T14:48:09+02:00"},
	        {"dataschema", "http://example.com/schema"},
	        {"datacontenttype", "text/plain"},
	        {"exstring", "a string"},
	};
	struct ceb_event *ev = ceb_event_new();
	char err[128];

	for (size_t i = 0; ev && i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (ceb_event_set(ev, attrs[i][0], CEB_TYPE_STRING, attrs[i][1],
		                  strlen(attrs[i][1]), err, sizeof(err)) != 0) {
			fprintf(stderr, "base event: %s\n", err);
			ceb_event_unref(ev);
			return NULL;
		}
	}
	if (ev && (ceb_event_set_int(ev, "exint", 42) || ceb_event_set_bool(ev, "exbool", true))) {
		ceb_event_unref(ev);
		return NULL;
	}
	return ev;
}

static void describe(const struct ceb_cesql_value *v, char *buf, size_t len)
{
	switch (v->type) {
	case CEB_CESQL_BOOLEAN: snprintf(buf, len, "Boolean %s", v->b ? "true" : "false"); break;
	case CEB_CESQL_INTEGER: snprintf(buf, len, "Integer %d", (int)v->i); break;
	case CEB_CESQL_STRING: snprintf(buf, len, "String '%s'", v->s ? v->s : ""); break;
	}
}

/* Runs one case; 0 if it passed. */
static int run_case(const char *file, struct fy_node *tc)
{
	size_t elen, rlen, xlen;
	const char *name = scalar(tc, "name", NULL);
	const char *expr = scalar(tc, "expression", &elen);
	const char *experr = scalar(tc, "error", NULL);
	struct fy_node *res = fy_node_mapping_lookup_by_string(tc, "result", (size_t)-1);
	struct fy_node *evnode = fy_node_mapping_lookup_by_string(tc, "event", (size_t)-1);
	struct fy_node *over = fy_node_mapping_lookup_by_string(tc, "eventOverrides", (size_t)-1);
	struct ceb_cesql_value got = {0}, want = {0};
	struct ceb_cesql *q = NULL;
	struct ceb_event *ev = NULL;
	enum ceb_cesql_error err;
	char msg[768] = "", gotd[300], wantd[300];
	const char *rs;
	int rc = -1;

	if (!name || !expr) {
		snprintf(msg, sizeof(msg), "case without name or expression");
		goto out;
	}
	if (res) {
		int b;

		rs = fy_node_get_scalar(res, &rlen);
		if (!rs) {
			snprintf(msg, sizeof(msg), "result is not a scalar");
			goto out;
		}
		if (plain(res) && (b = yaml_bool(rs, rlen)) >= 0) {
			want.type = CEB_CESQL_BOOLEAN;
			want.b = b == 1;
		} else if (plain(res) && yaml_int(rs, rlen, &want.i)) {
			want.type = CEB_CESQL_INTEGER;
		} else {
			want.type = CEB_CESQL_STRING;
			want.s = strndup(rs, rlen);
			want.len = rlen;
		}
	}
	ev = evnode ? ceb_event_new() : base_event();
	if (!ev || (evnode && apply_map(ev, evnode, msg, sizeof(msg))) ||
	    (over && apply_map(ev, over, msg, sizeof(msg)))) {
		if (!*msg)
			snprintf(msg, sizeof(msg), "cannot build the event");
		goto out;
	}
	if (ceb_cesql_compile(expr, elen, NULL, &q, msg, sizeof(msg), NULL) != 0) {
		err = CEB_CESQL_EPARSE;
		got.type = CEB_CESQL_BOOLEAN;
	} else {
		err = ceb_cesql_eval(q, ev, &got);
	}
	msg[0] = '\0';
	xlen = experr ? strlen(experr) : 0;
	if (strlen(ceb_cesql_error_name(err)) != xlen ||
	    strncmp(ceb_cesql_error_name(err), experr ? experr : "", xlen) != 0) {
		snprintf(msg, sizeof(msg), "error: expected '%s', got '%s'", experr ? experr : "",
		         ceb_cesql_error_name(err));
		goto out;
	}
	if (res && (got.type != want.type || got.b != want.b || got.i != want.i ||
	            (want.type == CEB_CESQL_STRING &&
	             (got.len != want.len || memcmp(got.s, want.s, want.len) != 0)))) {
		describe(&want, wantd, sizeof(wantd));
		describe(&got, gotd, sizeof(gotd));
		snprintf(msg, sizeof(msg), "result: expected %s, got %s", wantd, gotd);
		goto out;
	}
	rc = 0;
out:
	if (rc)
		printf("  FAIL %s: %s: `%.*s`: %s\n", file, name ? name : "?", expr ? (int)elen : 0,
		       expr ? expr : "", msg);
	ceb_cesql_value_clear(&got);
	ceb_cesql_value_clear(&want);
	ceb_cesql_free(q);
	ceb_event_unref(ev);
	return rc;
}

/* The test case named `name` in an errata file (a document the caller destroys). */
static struct fy_node *erratum_case(const char *errata_file, const char *name,
                                    struct fy_document **doc)
{
	char path[4096];
	struct fy_node *tests, *tc;
	void *it = NULL;

	snprintf(path, sizeof(path), "%s/cesql-errata/%s", topdir, errata_file);
	*doc = fy_document_build_from_file(NULL, path);
	if (!*doc)
		return NULL;
	tests = fy_node_mapping_lookup_by_string(fy_document_root(*doc), "tests", (size_t)-1);
	while (tests && (tc = fy_node_sequence_iterate(tests, &it)) != NULL) {
		const char *n = scalar(tc, "name", NULL);

		if (n && strcmp(n, name) == 0)
			return tc;
	}
	return NULL;
}

/* Runs every case of one file; with_errata swaps in the errata cases. Returns the failures. */
static int run_file(const char *dir, const char *file, bool with_errata, int *passed)
{
	char path[4096];
	struct fy_document *doc;
	struct fy_node *tests, *tc;
	void *it = NULL;
	int failed = 0;

	*passed = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	doc = fy_document_build_from_file(NULL, path);
	tests = doc ? fy_node_mapping_lookup_by_string(fy_document_root(doc), "tests", (size_t)-1)
	            : NULL;
	if (!tests) {
		printf("%s: cannot read the test list\n", path);
		fy_document_destroy(doc);
		return 1;
	}
	while ((tc = fy_node_sequence_iterate(tests, &it)) != NULL) {
		const char *name = scalar(tc, "name", NULL);
		struct fy_document *edoc = NULL;
		struct fy_node *use = tc;

		for (size_t i = 0; with_errata && name && i < sizeof(errata) / sizeof(errata[0]);
		     i++) {
			if (strcmp(errata[i].file, file) != 0 || strcmp(errata[i].name, name) != 0)
				continue;
			use = erratum_case(errata[i].errata_file, name, &edoc);
			if (!use) {
				printf("  FAIL %s: erratum for '%s' not found in %s\n", file, name,
				       errata[i].errata_file);
				use = tc;
				failed++;
			} else {
				errata_applied++;
			}
		}
		if (run_case(file, use) == 0)
			(*passed)++;
		else
			failed++;
		fy_document_destroy(edoc);
	}
	fy_document_destroy(doc);
	return failed;
}

static int yaml_only(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0;
}

int main(void)
{
	const char *top = getenv("top_srcdir");
	char dir[4096];
	struct dirent **names;
	int n, passed, failed, total_passed = 0, total_failed = 0;

	snprintf(topdir, sizeof(topdir), "%s/tests/conformance", top ? top : ".");
	snprintf(dir, sizeof(dir), "%s/cesql", topdir);
	n = scandir(dir, &names, yaml_only, alphasort);
	if (n <= 0) {
		printf("no TCK files in %s (is top_srcdir set?)\n", dir);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		failed = run_file(dir, names[i]->d_name, true, &passed);
		printf("%s: %d passed, %d failed\n", names[i]->d_name, passed, failed);
		total_passed += passed;
		total_failed += failed;
		free(names[i]);
	}
	free(names);
	printf("total: %d passed, %d failed (%zu errata cases applied)\n", total_passed,
	       total_failed, errata_applied);
	if (errata_applied != sizeof(errata) / sizeof(errata[0]))
		total_failed++;
	for (size_t i = 0; i < sizeof(errata_files) / sizeof(errata_files[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/cesql-errata", topdir);
		failed = run_file(dir, errata_files[i], false, &passed);
		printf("errata %s: %d passed, %d failed\n", errata_files[i], passed, failed);
		total_failed += failed;
	}
	return total_failed ? 1 : 0;
}
