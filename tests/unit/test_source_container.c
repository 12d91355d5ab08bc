/* ContainerSource: the source contract suite against it (the real daemon; each source's container
 * is a shell script that posts every line of its feed file to K_SINK with curl), and what only a
 * ContainerSource does: the kind's errors, its place in the sources family. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "sources/source.h"
#include "source_contract.h"

extern const struct source_ops ceb_source_container;

static char feed_dir[64] = "/tmp/ceb-container-feed-XXXXXX";

/* ---- the contract's driver: a feed file per source, its lines posted to K_SINK ---- */

/* Every line of $FEED (kept open, as tail -F does) becomes one binary-mode event. */
#define POSTER                                                                          \
	"tail -n +1 -F \"$FEED\" 2>/dev/null | while IFS= read -r l; do "               \
	"curl -sS -o /dev/null -X POST \"$K_SINK\" -H \"ce-specversion: 1.0\" "         \
	"-H \"ce-type: dev.cebroker.contract.line\" -H \"ce-source: /contract/$NAME\" " \
	"-H \"ce-id: $l\" -H \"content-type: text/plain\" --data-binary \"$l\"; done"

static void feed_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s.feed", feed_dir, name);
}

static void container_prepare(void *arg, const char *name)
{
	char path[128];
	FILE *f;

	(void)arg;
	feed_path(path, sizeof(path), name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
}

static void container_resource(void *arg, const char *name, const char *spec, char *out,
                               size_t outlen)
{
	char path[128];
	int n;

	(void)arg;
	feed_path(path, sizeof(path), name);
	n = snprintf(out, outlen,
	             "apiVersion: sources.knative.dev/v1\n"
	             "kind: ContainerSource\n"
	             "metadata:\n"
	             "  name: %s\n"
	             "  namespace: %s\n"
	             "spec:\n"
	             "%s"
	             "  template:\n"
	             "    spec:\n"
	             "      containers:\n"
	             "      - name: poster\n"
	             "        image: example.com/poster\n"
	             "        command: [sh, -c]\n"
	             "        args: ['" POSTER "']\n"
	             "        env: [{name: FEED, value: %s}]\n"
	             "---\n",
	             name, SOURCE_CONTRACT_NS, spec, path);
	ck_assert_int_lt(n, (int)outlen);
}

static int container_feed(void *arg, const char *name, const char *url, int n)
{
	static int seq;
	char path[128];
	FILE *f;

	(void)arg;
	(void)url;
	feed_path(path, sizeof(path), name);
	f = fopen(path, "a");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s-%d\n", name, ++seq);
	fclose(f);
	return 0;
}

static const struct source_driver container_source = {
        .kind = "ContainerSource",
        .durable = false,
        .wait_ms = 30000,
        /* tail -F looks at its file every second */
        .quiet_ms = 3000,
        .prepare = container_prepare,
        .resource = container_resource,
        .feed = container_feed,
        .no_delivery = true,
        .posts_itself = true,
};

/* ---- ContainerSource's own cases ---- */

static int load_text(const char *yaml, struct ceb_config **cfg, struct ceb_config_errors *errs)
{
	char path[] = "/tmp/ceb-container-XXXXXX";
	const char *paths[] = {path};
	int fd = mkstemp(path), rc;
	FILE *f;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(yaml, f);
	fclose(f);
	rc = ceb_config_load(paths, 1, cfg, errs);
	unlink(path);
	return rc;
}

START_TEST(test_container_source_is_found_by_kind_and_publishes_nothing_itself)
{
	const struct source_ops *ops = ceb_source_ops_find("ContainerSource");

	ck_assert_ptr_eq(ops, &ceb_source_container);
	ck_assert_str_eq(ops->label, "containersource");
	ck_assert_ptr_null(ops->channel);
	ck_assert_ptr_null(ceb_source_ops_find("SinkBinding"));
}
END_TEST

START_TEST(test_what_a_local_process_cannot_be_is_an_error_at_its_field)
{
	static const char yaml[] =
	        "apiVersion: sources.knative.dev/v1\nkind: ContainerSource\n"
	        "metadata: {name: bad}\nspec:\n"
	        "  sink: {uri: http://127.0.0.1:9/}\n"
	        "  template:\n"
	        "    spec:\n"
	        "      initContainers: [{name: i, command: [true]}]\n"
	        "      containers:\n"
	        "      - name: noc\n"
	        "        image: gcr.io/knative-releases/heartbeats\n"
	        "      - name: secret\n"
	        "        command: [sh]\n"
	        "        env: [{name: X, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]\n"
	        "      - name: odd\n"
	        "        command: [sh]\n"
	        "        stdin: true\n"
	        "---\n"
	        "apiVersion: sources.knative.dev/v1\nkind: SinkBinding\n"
	        "metadata: {name: bind}\nspec:\n"
	        "  subject: {apiVersion: apps/v1, kind: Deployment, name: app}\n"
	        "  sink: {uri: http://127.0.0.1:9/}\n";
	struct ceb_config_errors errs = {.count = 0};
	struct ceb_config *cfg = NULL;
	const char *t;

	ck_assert_int_eq(load_text(yaml, &cfg, &errs), CEB_ECONFIG);
	t = errs.text.p;
	ck_assert_ptr_nonnull(strstr(t, ":8:23: ContainerSource default/bad: "
	                                "spec.template.spec.initContainers: not supported"));
	ck_assert_ptr_nonnull(strstr(t, ":10:9: ContainerSource default/bad: "
	                                "spec.template.spec.containers[0].command: required field "
	                                "missing: cebroker runs a container's command"));
	ck_assert_ptr_nonnull(strstr(t, "gcr.io/knative-releases/heartbeats"));
	ck_assert_ptr_nonnull(strstr(t,
	                             ":14:47: ContainerSource default/bad: "
	                             "spec.template.spec.containers[1].env[0].valueFrom.fieldRef: "
	                             "not supported"));
	ck_assert_ptr_nonnull(strstr(t, ":17:9: ContainerSource default/bad: "
	                                "spec.template.spec.containers[2]"));
	ck_assert_ptr_nonnull(strstr(t, "SinkBinding default/bind: kind: a SinkBinding binds "
	                                "Kubernetes workloads"));
	ck_assert_ptr_nonnull(strstr(t, "run the program as a ContainerSource"));
	free(errs.text.p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("source_container");
	TCase *own = tcase_create("container"), *contract = tcase_create("contract");
	SRunner *sr;
	int failed;

	if (!mkdtemp(feed_dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	tcase_add_test(own, test_container_source_is_found_by_kind_and_publishes_nothing_itself);
	tcase_add_test(own, test_what_a_local_process_cannot_be_is_an_error_at_its_field);
	source_contract_add_tests(contract, &container_source);
	suite_add_tcase(s, own);
	suite_add_tcase(s, contract);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* the feed files */
	{
		static const char *const names[] = {"emits",        "progress", "stops",
		                                    "stops-holder", "retries",  "retries-dls",
		                                    "crash"};
		char path[128];
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			feed_path(path, sizeof(path), names[i]);
			unlink(path);
		}
		rmdir(feed_dir);
	}
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
