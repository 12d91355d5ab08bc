/* PingSource: the source contract suite against it (the real daemon, a schedule that ticks every
 * second), and what only a PingSource does: the event of a tick exactly as Knative's adapter makes
 * it, the adapter's retry policy given to the dispatcher, its place in the sources family. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/ce/event.h"
#include "broker/config/config.h"
#include "broker/error.h"
#include "sources/source.h"
#include "source_contract.h"

extern const struct source_ops ceb_source_ping;

/* ---- the contract's driver: a schedule with seconds, ticking every second ---- */

static void ping_resource(void *arg, const char *name, const char *spec, char *out, size_t outlen)
{
	int n;

	(void)arg;
	n = snprintf(out, outlen,
	             "apiVersion: sources.knative.dev/v1\n"
	             "kind: PingSource\n"
	             "metadata:\n"
	             "  name: %s\n"
	             "  namespace: %s\n"
	             "spec:\n"
	             "  schedule: \"* * * * * *\"\n"
	             "  contentType: application/json\n"
	             "  data: '{\"source\": \"%s\"}'\n"
	             "%s---\n",
	             name, SOURCE_CONTRACT_NS, name, spec);
	ck_assert_int_lt(n, (int)outlen);
}

/* Ticks come by themselves. */
static int ping_feed(void *arg, const char *name, const char *url, int n)
{
	(void)arg;
	(void)name;
	(void)url;
	(void)n;
	return 0;
}

static const struct source_driver ping_source = {
        .kind = "PingSource",
        .durable = false,
        .wait_ms = 30000,
        /* a tick every second, sent within its 0.5 s jitter */
        .quiet_ms = 2500,
        .resource = ping_resource,
        .feed = ping_feed,
        .no_delivery = true,
};

/* ---- PingSource's own cases, in process: the source with an emit that collects ---- */

struct coll {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ceb_event *evs[16];
	size_t n;
	int answer; /* what emit returns */
};

static int coll_emit(void *arg, struct ceb_event *ev)
{
	struct coll *c = arg;

	pthread_mutex_lock(&c->lock);
	if (c->answer == 0 && c->n < 16)
		c->evs[c->n++] = ceb_event_ref(ev);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return c->answer;
}

/* Wait up to ms for n events. */
static size_t coll_wait(struct coll *c, size_t n, int ms)
{
	struct timespec due;
	size_t got;

	clock_gettime(CLOCK_REALTIME, &due);
	due.tv_sec += ms / 1000;
	pthread_mutex_lock(&c->lock);
	while (c->n < n && pthread_cond_timedwait(&c->cond, &c->lock, &due) == 0)
		;
	got = c->n;
	pthread_mutex_unlock(&c->lock);
	return got;
}

/* Load one PingSource (spec lines at the spec mapping's indent) into *cfg. */
static const struct ceb_source_cfg *load(struct ceb_config **cfg, const char *spec)
{
	char yaml[2048], path[] = "/tmp/ceb-ping-XXXXXX";
	const char *paths[] = {path};
	struct ceb_config_errors errs = {.count = 0};
	FILE *f;
	int fd = mkstemp(path), rc;

	ck_assert_int_ge(fd, 0);
	snprintf(yaml, sizeof(yaml),
	         "apiVersion: sources.knative.dev/v1\nkind: PingSource\n"
	         "metadata: {name: beat, namespace: prod}\nspec:\n%s"
	         "  sink: {uri: http://127.0.0.1:9/}\n",
	         spec);
	f = fdopen(fd, "w");
	fputs(yaml, f);
	fclose(f);
	rc = ceb_config_load(paths, 1, cfg, &errs);
	unlink(path);
	ck_assert_msg(rc == 0, "%s", errs.text.p ? errs.text.p : "");
	ck_assert_ptr_nonnull((*cfg)->sources);
	return (*cfg)->sources;
}

START_TEST(test_a_tick_is_knatives_event_exactly)
{
	struct ceb_config *cfg = NULL;
	const struct ceb_source_cfg *sc =
	        load(&cfg, "  schedule: \"* * * * * *\"\n  contentType: text/plain\n"
	                   "  dataBase64: aGVsbG8sIHdvcmxkIQ==\n"
	                   "  ceOverrides: {extensions: {team: blue}}\n");
	struct coll c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL}, 0, 0};
	struct ceb_source_env env = {
	        .label = "pingsource prod/beat", .emit = coll_emit, .emit_arg = &c};
	const struct source_ops *ops = ceb_source_ops_find("PingSource");
	char err[512], verr[256];
	const void *data;
	size_t len;
	void *ctx = NULL;

	ck_assert_ptr_eq(ops, &ceb_source_ping);
	ck_assert_ptr_null(ops->channel); /* it publishes into the daemon's memory channel */
	ck_assert_msg(ops->create(sc, &env, &ctx, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(ops->start(ctx, err, sizeof(err)), 0);
	ck_assert_uint_ge(coll_wait(&c, 2, 10000), 2);
	ops->stop(ctx);
	ops->destroy(ctx);

	for (size_t i = 0; i < 2; i++) {
		struct ceb_event *ev = c.evs[i];
		ck_assert_int_eq(ceb_event_validate(ev, NULL, verr, sizeof(verr)), 0);
		ck_assert_str_eq(ceb_event_get(ev, "type")->value, "dev.knative.sources.ping");
		ck_assert_str_eq(ceb_event_get(ev, "source")->value,
		                 "/apis/v1/namespaces/prod/pingsources/beat");
		ck_assert_str_eq(ceb_event_get(ev, "specversion")->value, "1.0");
		ck_assert_uint_eq(ceb_event_get(ev, "id")->len, 36);
		ck_assert_int_eq(ceb_event_get(ev, "id")->value[14], '4'); /* UUID v4 */
		/* RFC 3339 in UTC with nanoseconds: 2026-01-02T03:04:05.123456789Z */
		ck_assert_uint_eq(ceb_event_get(ev, "time")->len, 30);
		ck_assert_str_eq(ceb_event_get(ev, "datacontenttype")->value, "text/plain");
		ck_assert_str_eq(ceb_event_get(ev, "team")->value, "blue");
		data = ceb_event_data(ev, &len);
		ck_assert_uint_eq(len, 13);
		ck_assert_int_eq(memcmp(data, "hello, world!", 13), 0);
	}
	ck_assert_str_ne(ceb_event_get(c.evs[0], "id")->value,
	                 ceb_event_get(c.evs[1], "id")->value);
	for (size_t i = 0; i < c.n; i++)
		ceb_event_unref(c.evs[i]);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_without_data_there_is_no_content_type)
{
	struct ceb_config *cfg = NULL;
	const struct ceb_source_cfg *sc =
	        load(&cfg, "  schedule: \"* * * * * *\"\n  contentType: application/json\n");
	struct coll c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL}, 0, 0};
	struct ceb_source_env env = {
	        .label = "pingsource prod/beat", .emit = coll_emit, .emit_arg = &c};
	char err[512];
	void *ctx = NULL;

	ck_assert_int_eq(ceb_source_ping.create(sc, &env, &ctx, err, sizeof(err)), 0);
	ck_assert_int_eq(ceb_source_ping.start(ctx, err, sizeof(err)), 0);
	ck_assert_uint_ge(coll_wait(&c, 1, 10000), 1);
	ceb_source_ping.destroy(ctx); /* stops first */
	ck_assert_ptr_null(ceb_event_get(c.evs[0], "datacontenttype"));
	ck_assert(!ceb_event_has_data(c.evs[0]));
	for (size_t i = 0; i < c.n; i++)
		ceb_event_unref(c.evs[i]);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_the_delivery_is_the_adapters_policy)
{
	struct ceb_config *cfg = NULL;
	const struct ceb_source_cfg *sc = load(&cfg, "");
	const int *s;
	bool has500 = false, has503 = false;

	/* 5 retries, 100 ms doubling (the SDK's 50 ms exponential), no dead-letter sink */
	ck_assert_ptr_nonnull(sc->delivery);
	ck_assert_int_eq(sc->delivery->retry, 5);
	ck_assert_int_eq(sc->delivery->backoff_policy, CEB_BACKOFF_EXPONENTIAL);
	ck_assert_uint_eq(sc->delivery->backoff_delay_ms, 100);
	ck_assert(!sc->delivery->has_dls);
	for (s = sc->delivery->retry_statuses; s && *s; s++) {
		has500 |= *s == 500;
		has503 |= *s == 503;
	}
	ck_assert(has503 && !has500);
	ceb_config_free(cfg);
}
END_TEST

START_TEST(test_a_schedule_that_never_fires_is_loaded_and_never_ticks)
{
	struct ceb_config *cfg = NULL;
	const struct ceb_source_cfg *sc = load(&cfg, "  schedule: \"0 0 30 2 *\"\n");
	struct coll c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {NULL}, 0, 0};
	struct ceb_source_env env = {
	        .label = "pingsource prod/beat", .emit = coll_emit, .emit_arg = &c};
	char err[512];
	void *ctx = NULL;

	ck_assert_int_eq(ceb_source_ping.create(sc, &env, &ctx, err, sizeof(err)), 0);
	ck_assert_int_eq(ceb_source_ping.start(ctx, err, sizeof(err)), 0);
	ceb_source_ping.stop(ctx); /* returns at once: the thread waits for nothing else */
	ceb_source_ping.destroy(ctx);
	ck_assert_uint_eq(c.n, 0);
	ceb_config_free(cfg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("source_ping");
	TCase *own = tcase_create("ping"), *contract = tcase_create("contract");
	SRunner *sr;
	int failed;

	tcase_set_timeout(own, 60);
	tcase_add_test(own, test_a_tick_is_knatives_event_exactly);
	tcase_add_test(own, test_without_data_there_is_no_content_type);
	tcase_add_test(own, test_the_delivery_is_the_adapters_policy);
	tcase_add_test(own, test_a_schedule_that_never_fires_is_loaded_and_never_ticks);
	source_contract_add_tests(contract, &ping_source);
	suite_add_tcase(s, own);
	suite_add_tcase(s, contract);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
