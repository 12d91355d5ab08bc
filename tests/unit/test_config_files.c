/* Unit tests for how the resource loader reads files: directories, sizes, errors in order, and hostile
 * YAML (alias bombs, deep nesting, syntax errors) refused with a position. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "tests/unit/config_fixture.h"

#define SUBSCRIBER        \
	"  subscriber:\n" \
	"    uri: http://127.0.0.1:9099/orders\n"
/* ---------------------------------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Remove the named entries (files, or emptied directories) and then dir itself. */
static void remove_tree(const char *dir, const char *const *names, size_t n)
{
	char path[4096];

	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path) != 0)
			rmdir(path);
	}
	rmdir(dir);
}

START_TEST(test_a_directory_loads_its_yaml_files_in_name_order)
{
	char dir[] = "test_config.XXXXXX", sub[4096], a[4096];
	static const char *const names[] = {"20-triggers.yml", "10-broker.yaml", "05-cm.yaml",
	                                    "notes.txt",       ".hidden.yaml",   "sub.yaml/x.yaml",
	                                    "sub.yaml"};
	const char *paths[1] = {dir};
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	write_file(dir, "20-triggers.yml", TRIGGER_HEAD SUBSCRIBER);
	write_file(dir, "10-broker.yaml", BROKER);
	write_file(dir, "notes.txt", "not: [yaml\n");
	write_file(dir, ".hidden.yaml", "not: [yaml\n");
	snprintf(sub, sizeof(sub), "%s/sub.yaml", dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	write_file(sub, "x.yaml", "not: [yaml\n");

	rc = ceb_config_load(paths, 1, &cfg, &errs);
	ck_assert_msg(rc == 0, "%s", errs.text.p ? errs.text.p : "");
	snprintf(a, sizeof(a), "%s/10-broker.yaml", dir);
	ck_assert_str_eq(cfg->brokers->loc.file, a);
	snprintf(a, sizeof(a), "%s/20-triggers.yml", dir);
	ck_assert_str_eq(cfg->triggers->loc.file, a);
	ck_assert_int_eq(cfg->triggers->loc.line, 2);
	ck_assert_ptr_eq(cfg->triggers->broker_cfg, cfg->brokers);
	ceb_config_free(cfg);
	cfg = NULL;

	/* errors come in file order, whichever pass found them */
	write_file(dir, "10-broker.yaml", BROKER "  bogus: 1\n");
	write_file(dir, "20-triggers.yml", TRIGGER_HEAD "  subscriber: {uri: x}\n");
	write_file(dir, "05-cm.yaml",
	           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: 1\n");
	rc = ceb_config_load(paths, 1, &cfg, &errs);
	ck_assert_int_eq(rc, CEB_ECONFIG);
	snprintf(a, sizeof(a),
	         "%s/05-cm.yaml:4:7: ConfigMap default/c: data: expected a mapping, got a string\n"
	         "%s/10-broker.yaml:5:3: Broker default/default: metadata.bogus: unknown field "
	         "(metadata "
	         "takes name, namespace, labels, annotations)\n"
	         "%s/20-triggers.yml:8:21: Trigger default/orders: spec.subscriber.uri: \"x\" must "
	         "be an "
	         "absolute http:// or https:// URI\n",
	         dir, dir, dir);
	ck_assert_str_eq(errs.text.p, a);
	ck_assert_uint_eq(errs.count, 3);
	ceb_buf_free(&errs.text);
	remove_tree(dir, names, sizeof(names) / sizeof(names[0]));
}
END_TEST

START_TEST(test_a_secret_in_a_file_others_can_read_is_taken_with_a_warning)
{
	char dir[] = "test_config.XXXXXX", path[512], want[2048], buf[8192];
	static const char *const names[] = {"secret.yaml"};
	const char *paths[1] = {path};
	struct ceb_config *cfg = NULL;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/secret.yaml", dir);
	write_file(dir, "secret.yaml",
	           "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: "
	           "pw}\n");
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(ceb_config_load(paths, 1, &cfg, NULL), 0);
	snprintf(want, sizeof(want),
	         "%s:1:1: warning: Secret default/s: metadata.name: Secret read from %s, which any "
	         "user of this machine can read (chmod o-r it)\n",
	         path, path);
	ck_assert_str_eq(notes(cfg, buf, sizeof(buf)), want);
	ck_assert_str_eq(
	        ceb_secret_get(ceb_config_find_secret(cfg, "default", "s"), "password", NULL),
	        "pw");
	ceb_config_free(cfg);
	/* readable by its owner (and group) only: nothing to say */
	ck_assert_int_eq(chmod(path, 0640), 0);
	ck_assert_int_eq(ceb_config_load(paths, 1, &cfg, NULL), 0);
	ck_assert_str_eq(notes(cfg, buf, sizeof(buf)), "");
	ceb_config_free(cfg);
	remove_tree(dir, names, 1);
}
END_TEST

START_TEST(test_an_empty_directory_and_a_missing_file_are_errors)
{
	char dir[] = "test_config.XXXXXX", want[4096];
	const char *paths[2] = {dir, "no-such-file.yaml"};
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(ceb_config_load(paths, 2, &cfg, &errs), CEB_ECONFIG);
	ck_assert_ptr_null(cfg);
	snprintf(want, sizeof(want),
	         "%s: no *.yaml or *.yml files in this directory\n"
	         "no-such-file.yaml: cannot read: No such file or directory\n",
	         dir);
	ck_assert_str_eq(errs.text.p, want);
	ck_assert_uint_eq(errs.count, 2);
	ceb_buf_free(&errs.text);
	rmdir(dir);
}
END_TEST

START_TEST(test_files_over_16_mib_are_refused)
{
	char dir[] = "test_config.XXXXXX", path[4096], want[4096];
	const char *paths[1] = {path};
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	int fd;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/big.yaml", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (16 << 20) + 1), 0); /* sparse: costs no disk */
	close(fd);
	ck_assert_int_eq(ceb_config_load(paths, 1, &cfg, &errs), CEB_ECONFIG);
	snprintf(want, sizeof(want), "%.200s: larger than 16 MiB\n", path);
	ck_assert_str_eq(errs.text.p, want);
	ceb_buf_free(&errs.text);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(test_errors_append_to_what_the_caller_already_has)
{
	struct ceb_config *cfg = NULL;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	const char *bad = "kind: Nope\n";

	ck_assert_int_eq(ceb_config_load_string("a.yaml", bad, strlen(bad), &cfg, &errs),
	                 CEB_ECONFIG);
	ck_assert_int_eq(ceb_config_load_string("b.yaml", bad, strlen(bad), &cfg, &errs),
	                 CEB_ECONFIG);
	ck_assert_uint_eq(errs.count, 2);
	ck_assert_ptr_nonnull(strstr(errs.text.p, "a.yaml:1:7: "));
	ck_assert_ptr_nonnull(strstr(errs.text.p, "\nb.yaml:1:7: "));
	ceb_buf_free(&errs.text);
	/* and a caller that wants no messages may pass NULL */
	ck_assert_int_eq(ceb_config_load_string("c.yaml", bad, strlen(bad), &cfg, NULL),
	                 CEB_ECONFIG);
	ck_assert_ptr_null(cfg);
	ceb_config_free(NULL);
}
END_TEST

START_TEST(test_an_alias_needs_an_anchor_before_it_outside_itself)
{
	ck_errors(BROKER "spec:\n"
	                 "  delivery: *d\n",
	          "test.yaml:6:13: YAML alias *d names no anchor before it\n");
	/* anchors belong to their document */
	ck_errors(BROKER "  labels: &l {a: b}\n---\n" BROKER "  labels: *l\n",
	          "test.yaml:11:11: YAML alias *l names no anchor before it\n");
	ck_errors("a: &x [1, *x]\n", "test.yaml:1:11: YAML alias *x is inside what it names\n");
}
END_TEST

/* Billion laughs: ten levels of ten aliases each would be 10^10 nodes if anything expanded them.
 * Aliases share their node, nothing is copied, but each counts as all it holds: the alias that
 * takes the document past a million nodes (in a6) is refused, and the test case's timeout is what
 * "refused quickly" means. */
START_TEST(test_an_alias_bomb_is_refused_before_anything_expands)
{
	char yaml[4096];
	size_t len = 0, n;
	char *text;

	len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "a0: &a0 [lol]\n");
	for (int i = 1; i <= 10; i++) {
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "a%d: &a%d [", i, i);
		for (int j = 0; j < 10; j++)
			len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "%s*a%d",
			                        j ? ", " : "", i - 1);
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "]\n");
	}
	ck_assert_uint_lt(len, sizeof(yaml));
	text = load_err(yaml, len, &n);
	ck_assert_str_eq(text, "test.yaml:7:25: document has more than 1000000 YAML nodes once "
	                       "aliases are expanded\n");
	ck_assert_uint_eq(n, 1);
	free(text);
}
END_TEST

START_TEST(test_nesting_deeper_than_64_is_refused)
{
	char yaml[8192];
	size_t len = 0;
	char *text;

	/* block nesting: 70 mappings, the 65th key at line 65 */
	for (int i = 0; i < 70; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len, "%*sk:\n", i, "");
	text = load_err(yaml, len, NULL);
	ck_assert_str_eq(text, "test.yaml:65:65: YAML nesting deeper than 64 levels\n");
	free(text);
	/* flow nesting on one line, caught by the events */
	len = (size_t)snprintf(yaml, sizeof(yaml), "a: %.100s%.100s\n",
	                       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
	                       "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
	                       "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
	                       "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	text = load_err(yaml, len, NULL);
	ck_assert_str_eq(text, "test.yaml:1:67: YAML nesting deeper than 64 levels\n");
	free(text);
}
END_TEST

/* Thousands of open brackets on one line: refused from the bytes, before libfyaml buffers them. */
START_TEST(test_a_long_line_of_open_brackets_is_refused_before_parsing)
{
	size_t len = 3 + 100000;
	char *yaml = malloc(len), *text;

	ck_assert_ptr_nonnull(yaml);
	memcpy(yaml, "a: ", 3);
	memset(yaml + 3, '[', len - 3);
	text = load_err(yaml, len, NULL);
	ck_assert_str_eq(text, "test.yaml:1:68: YAML nesting deeper than 64 levels\n");
	free(text);
	free(yaml);
}
END_TEST

/* Found by fuzzing: these crash libfyaml 0.7.12 in fy_parser_destroy(), so the loader refuses a tab
 * before a block indicator from the bytes. A tab elsewhere still parses. */
START_TEST(test_a_tab_before_a_block_indicator_is_refused_before_parsing)
{
	static const char *const bad[] = {"? k:\t-", "? k:\t?x", "? -:\t:u",
	                                  "? k:\t|", "? k:\t>-", "a:\n  ? k: \t-\n"};
	struct ceb_config *cfg;
	char want[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *at = strchr(bad[i], '\t') + 1, *bol = bad[i];
		int line = 1;

		for (const char *p = bad[i]; p < at; p++)
			if (*p == '\n')
				line++, bol = p + 1;
		snprintf(want, sizeof(want),
		         "test.yaml:%d:%d: a tab before a block indicator is not supported; use "
		         "spaces\n",
		         line, (int)(at - bol) + 1);
		ck_errors(bad[i], want);
	}
	cfg = load_ok(BROKER "  annotations:\n"
	                     "    a:\t-5\n"
	                     "    b: \"x:\t-\"\n"
	                     "    c: x # y:\t-\n");
	ck_assert_str_eq(ceb_annotation(cfg->brokers->annot_keys, cfg->brokers->annot_values,
	                                cfg->brokers->nannot, "a"),
	                 "-5");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_yaml_syntax_errors_have_a_position)
{
	ck_errors("apiVersion: v1\n"
	          "kind: ConfigMap\n"
	          "metadata: {name: c\n",
	          "test.yaml:4:1: invalid YAML: missing comma in flow mapping\n");
	ck_errors("a: b: c\n",
	          "test.yaml:1:5: invalid YAML: invalid nested block mapping on the same line\n");
	/* documents before the error are still checked */
	ck_errors("kind: Nope\n"
	          "---\n"
	          "\tx: 1\n",
	          "test.yaml:1:7: Nope default/(no name): kind: unknown kind \"Nope\" "
	          "(supported: " SUPPORTED ")\n"
	          "test.yaml:3:1: invalid YAML: invalid tab as indendation in a mapping\n");
}
END_TEST

START_TEST(test_tags_other_than_str_control_characters_and_invalid_utf8_are_refused)
{
	struct ceb_config *cfg;
	static const char nul[] = "a: \"x\\0y\"\n";

	ck_errors("apiVersion: !custom v1\n",
	          "test.yaml:1:13: YAML tags are not supported (except !!str)\n");
	ck_errors(nul, "test.yaml:1:4: NUL characters are not allowed in strings\n");
	ck_errors("a: b\nc: \xc3\x28\n",
	          "test.yaml:2:4: invalid UTF-8 (YAML files must be UTF-8)\n");
	ck_errors("\xff\xfe"
	          "a:", /* a UTF-16 byte order mark */
	          "test.yaml:1:1: invalid UTF-8 (YAML files must be UTF-8)\n");
	ck_errors("a: \xed\xa0\x80\n", "test.yaml:1:4: invalid UTF-8 (YAML files must be UTF-8)\n");
	ck_errors("a: b\x01\n",
	          "test.yaml:1:5: control characters are not allowed in YAML (write them "
	          "as escapes in a double-quoted string)\n");
	{
		/* a raw NUL: found by fuzzing, it crashes libfyaml 0.7.12 when the parser is destroyed */
		static const char raw_nul[] = "? k:\t\0";
		size_t n;
		char *text = load_err(raw_nul, sizeof(raw_nul) - 1, &n);

		ck_assert_str_eq(text,
		                 "test.yaml:1:6: control characters are not allowed in YAML (write "
		                 "them as escapes in a double-quoted string)\n");
		free(text);
	}
	cfg = load_ok(BROKER "  annotations:\n"
	                     "    example.com/port: !!str 8080\n"
	                     "    example.com/team: \"caf\xc3\xa9 \xf0\x9f\x9a\x80\"\n");
	ck_assert_str_eq(cfg->brokers->annot_values[0], "8080");
	ceb_config_free(cfg);
}
END_TEST

/* Single-quoted scalars are decoded by the loader itself (libfyaml 0.7.12 leaks on runs of ''). */
START_TEST(test_single_quoted_strings_unescape_quotes_and_fold_lines)
{
	struct ceb_config *cfg = load_ok(BROKER "  annotations:\n"
	                                        "    a: 'it''s'\n"
	                                        "    b: 'x''''''''y'\n"
	                                        "    c: ' one\n"
	                                        "\n"
	                                        "      two \n"
	                                        "      three '\n"
	                                        "    d: ''\n");
	const struct ceb_broker_cfg *b = cfg->brokers;

	ck_assert_str_eq(ceb_annotation(b->annot_keys, b->annot_values, b->nannot, "a"), "it's");
	ck_assert_str_eq(ceb_annotation(b->annot_keys, b->annot_values, b->nannot, "b"), "x''''y");
	ck_assert_str_eq(ceb_annotation(b->annot_keys, b->annot_values, b->nannot, "c"),
	                 " one\ntwo three ");
	ck_assert_str_eq(ceb_annotation(b->annot_keys, b->annot_values, b->nannot, "d"), "");
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_empty_documents_are_skipped)
{
	struct ceb_config *cfg = load_ok("---\n"
	                                 "---\n"
	                                 "# only a comment\n"
	                                 "---\n"
	                                 "~\n"
	                                 "---\n" BROKER "---\n");

	ck_assert_uint_eq(cfg->nbrokers, 1);
	ck_assert_int_eq(cfg->brokers->loc.line, 7);
	ceb_config_free(cfg);
	cfg = load_ok("");
	ck_assert_uint_eq(cfg->nbrokers, 0);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_several_errors_in_one_file_are_all_reported_in_order)
{
	size_t n;
	char *text;
	const char *yaml = BROKER "  annotations:\n"
	                          "    eventing.knative.dev/broker.class: Nope\n"
	                          "---\n"
	                          "apiVersion: eventing.knative.dev/v1\n"
	                          "kind: Trigger\n"
	                          "metadata:\n"
	                          "  name: orders\n"
	                          "spec:\n"
	                          "  broker: missing\n"
	                          "  filters:\n"
	                          "    - cesql: \"type =\"\n"
	                          "  subscriber:\n"
	                          "    uri: nowhere\n"
	                          "  extra: 1\n";

	text = load_err(yaml, strlen(yaml), &n);
	ck_assert_str_eq(
	        text,
	        "test.yaml:6:40: Broker default/default: "
	        "metadata.annotations[\"eventing.knative.dev/broker.class\"]: unknown broker class "
	        "\"Nope\" (known: MTChannelBasedBroker, Kafka, RabbitMQBroker, "
	        "NatsJetStreamBroker)\n"
	        "test.yaml:13:11: Trigger default/orders: spec.broker: Broker default/missing not "
	        "found\n"
	        "test.yaml:15:14: Trigger default/orders: spec.filters[0].cesql: unexpected end of "
	        "expression at column 7\n"
	        "test.yaml:17:10: Trigger default/orders: spec.subscriber.uri: \"nowhere\" must be "
	        "an "
	        "absolute http:// or https:// URI\n"
	        "test.yaml:18:3: Trigger default/orders: spec.extra: unknown field (spec takes "
	        "broker, "
	        "brokerRef, filter, filters, subscriber, delivery)\n");
	ck_assert_uint_eq(n, 5);
	free(text);
}
END_TEST

START_TEST(test_errors_stop_at_a_thousand)
{
	struct ceb_buf yaml = CEB_BUF_INIT;
	size_t n;
	char *text, *last;

	for (int i = 0; i < 1500; i++)
		ceb_buf_puts(&yaml, "kind: Nope\n---\n");
	text = load_err(yaml.p, yaml.len, &n);
	ck_assert_uint_eq(n, 1000);
	last = strrchr(text, '\n');
	*last = '\0';
	last = strrchr(text, '\n');
	ck_assert_str_eq(last + 1, "test.yaml:1999:7: too many errors, stopping after 1000");
	free(text);
	ceb_buf_free(&yaml);
}
END_TEST

static Suite *config_files_suite(void)
{
	Suite *s = suite_create("config_files");
	TCase *files = tcase_create("files");
	TCase *hostile = tcase_create("hostile");

	tcase_add_test(files, test_errors_append_to_what_the_caller_already_has);
	tcase_add_test(files, test_a_directory_loads_its_yaml_files_in_name_order);
	tcase_add_test(files, test_an_empty_directory_and_a_missing_file_are_errors);
	tcase_add_test(files, test_files_over_16_mib_are_refused);
	tcase_add_test(files, test_a_secret_in_a_file_others_can_read_is_taken_with_a_warning);
	suite_add_tcase(s, files);
	tcase_set_timeout(hostile, 10);
	tcase_add_test(hostile, test_single_quoted_strings_unescape_quotes_and_fold_lines);
	tcase_add_test(hostile, test_empty_documents_are_skipped);
	tcase_add_test(hostile, test_several_errors_in_one_file_are_all_reported_in_order);
	tcase_add_test(hostile, test_an_alias_needs_an_anchor_before_it_outside_itself);
	tcase_add_test(hostile, test_an_alias_bomb_is_refused_before_anything_expands);
	tcase_add_test(hostile, test_nesting_deeper_than_64_is_refused);
	tcase_add_test(hostile, test_a_long_line_of_open_brackets_is_refused_before_parsing);
	tcase_add_test(hostile, test_a_tab_before_a_block_indicator_is_refused_before_parsing);
	tcase_add_test(hostile, test_yaml_syntax_errors_have_a_position);
	tcase_add_test(hostile,
	               test_tags_other_than_str_control_characters_and_invalid_utf8_are_refused);
	tcase_add_test(hostile, test_errors_stop_at_a_thousand);
	suite_add_tcase(s, hostile);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_files_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
