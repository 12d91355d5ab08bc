/* WebhookSource: the source contract suite against it (the real daemon, fed with real HTTP POSTs to
 * /<namespace>/<name> on its listener), and what only a WebhookSource does, driven without sockets
 * through its operations: the event TriggerMesh's adapter makes of a request, the names it gives
 * queries and headers, basic credentials, CORS. */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/buf.h"
#include "broker/ce/event.h"
#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "sources/source.h"
#include "source_contract.h"

extern const struct source_ops ceb_source_webhook;

/* ---- the contract's driver: POSTs to the source's path ---- */

static void webhook_resource(void *arg, const char *name, const char *spec, char *out,
                             size_t outlen)
{
	int n;

	(void)arg;
	n = snprintf(out, outlen,
	             "apiVersion: sources.triggermesh.io/v1alpha1\n"
	             "kind: WebhookSource\n"
	             "metadata:\n"
	             "  name: %s\n"
	             "  namespace: %s\n"
	             "spec:\n"
	             "  eventType: com.example.contract\n"
	             "%s---\n",
	             name, SOURCE_CONTRACT_NS, spec);
	ck_assert_int_lt(n, (int)outlen);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static int webhook_feed(void *arg, const char *name, const char *url, int n)
{
	static int seq;
	char target[256], body[64];
	int rc = 0;

	(void)arg;
	if (!url)
		return -1; /* nothing listens: a webhook takes inputs only from a running daemon */
	snprintf(target, sizeof(target), "%s/%s/%s", url, SOURCE_CONTRACT_NS, name);
	for (int i = 0; i < n && rc == 0; i++) {
		CURL *c = curl_easy_init();
		struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
		long status = 0;

		snprintf(body, sizeof(body), "{\"input\": %d}", ++seq);
		curl_easy_setopt(c, CURLOPT_URL, target);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
		if (curl_easy_perform(c) != CURLE_OK ||
		    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
		    status != 202)
			rc = status ? -(int)status : -1;
		curl_slist_free_all(h);
		curl_easy_cleanup(c);
	}
	return rc;
}

static const struct source_driver webhook_source = {
        .kind = "WebhookSource",
        .durable = false,
        .wait_ms = 20000,
        /* a POST answered 202 is in the channel: the dispatcher hands it out at once */
        .quiet_ms = 1000,
        .resource = webhook_resource,
        .feed = webhook_feed,
};

/* ---- WebhookSource's own cases, through its operations ---- */

struct loaded {
	struct ceb_config *cfg;
	void *ctx;
	struct ceb_source_env env;
};

static int no_emit(void *arg, struct ceb_event *ev)
{
	(void)arg;
	(void)ev;
	return CEB_EUNAVAIL;
}

/* Load one WebhookSource (spec lines after eventType, already indented) and create it. */
static void load(struct loaded *l, const char *spec)
{
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	char yaml[2048], err[512] = "";

	snprintf(yaml, sizeof(yaml),
	         "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: shop\n"
	         "stringData:\n  pw: from-secret\n---\n"
	         "apiVersion: sources.triggermesh.io/v1alpha1\nkind: WebhookSource\n"
	         "metadata:\n  name: hook\n  namespace: shop\nspec:\n"
	         "  eventType: com.example.order\n%s"
	         "  sink:\n    uri: http://127.0.0.1:9/sink\n",
	         spec);
	memset(l, 0, sizeof(*l));
	ck_assert_msg(ceb_config_load_string("hook.yaml", yaml, strlen(yaml), &l->cfg, &errs) == 0,
	              "%s", errs.text.p ? errs.text.p : "");
	ceb_buf_free(&errs.text);
	ck_assert_ptr_nonnull(l->cfg->sources);
	l->env = (struct ceb_source_env){.label = "webhooksource shop/hook", .emit = no_emit};
	ck_assert_msg(
	        ceb_source_webhook.create(l->cfg->sources, &l->env, &l->ctx, err, sizeof(err)) == 0,
	        "%s", err);
}

static void unload(struct loaded *l)
{
	ceb_source_webhook.destroy(l->ctx);
	ceb_config_free(l->cfg);
}

static const char *attr(const struct ceb_event *ev, const char *name)
{
	const struct ceb_attr *a = ceb_event_get(ev, name);

	return a ? a->value : NULL;
}

#define NH(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_webhook_source_is_found_by_kind_and_takes_plain_requests)
{
	const struct source_ops *ops = ceb_source_ops_find("WebhookSource");

	ck_assert_ptr_eq(ops, &ceb_source_webhook);
	ck_assert_ptr_nonnull(ops->admit);
	ck_assert_ptr_nonnull(ops->to_event);
	/* not backed by a log: the daemon gives it a bounded memory channel */
	ck_assert_ptr_null(ops->channel);
}
END_TEST

START_TEST(test_a_request_becomes_the_event_triggermesh_makes_of_it)
{
	static const struct ceb_http_header h[] = {
	        {"Host", "hooks.example:8080"},
	        {"Content-Type", "application/json"},
	        {"X-Multi", "one"},
	        {"x-multi", "two"},
	        {"Ce-Id", "order-7"},
	        {"ce-subject", "orders/7"},
	        {"Authorization", "Basic eDp5"},
	        {"Cebroker-Internal", "0123456789abcdef0123456789abcdef"},
	        {"X-A-Very-Long-Header-Name", "long"},
	        {"Data", "reserved?"},
	};
	static const struct ceb_http_header q[] = {
	        {"region", "eu"}, {"tag", "a"}, {"Tag", "c"}, {"tag", "b"}, {"a_b!", "x y"}};
	struct ceb_raw_request rq = {"POST", "/shop/hook", h, NH(h), q,
	                             NH(q),  "{\"id\":7}", 8, false};
	struct ceb_raw_answer ans = {0};
	struct ceb_event *ev = NULL;
	struct loaded l;
	const void *data;
	size_t len;

	load(&l, "  eventExtensionAttributes:\n    from: [method, path, host, queries, headers]\n"
	         "  ceOverrides:\n    extensions:\n      team: blue\n");
	ck_assert_int_eq(ceb_source_webhook.to_event(l.ctx, &rq, &ev, &ans), 0);
	ck_assert_str_eq(attr(ev, "specversion"), "1.0");
	ck_assert_str_eq(attr(ev, "id"), "order-7");
	ck_assert_str_eq(attr(ev, "subject"), "orders/7");
	ck_assert_str_eq(attr(ev, "source"), "shop.hook");
	ck_assert_str_eq(attr(ev, "type"), "com.example.order");
	ck_assert_str_eq(attr(ev, "datacontenttype"), "application/json");
	ck_assert_ptr_nonnull(attr(ev, "time"));
	ck_assert_str_eq(attr(ev, "method"), "POST");
	ck_assert_str_eq(attr(ev, "path"), "/shop/hook");
	ck_assert_str_eq(attr(ev, "host"), "hooks.example:8080");
	ck_assert_str_eq(attr(ev, "qregion"), "eu");
	/* repeated names are numbered; names differing in case are different queries */
	ck_assert_str_eq(attr(ev, "qtag0"), "a");
	ck_assert_str_eq(attr(ev, "qtag1"), "b");
	ck_assert_str_eq(attr(ev, "qtag"), "c");
	ck_assert_str_eq(attr(ev, "qab"), "x y");
	/* header names in any case are one header */
	ck_assert_str_eq(attr(ev, "hxmulti0"), "one");
	ck_assert_str_eq(attr(ev, "hxmulti1"), "two");
	ck_assert_str_eq(attr(ev, "hcontenttype"), "application/json");
	ck_assert_str_eq(attr(ev, "hxaverylongheadernam"), "long");
	ck_assert_str_eq(attr(ev, "hdata"), "reserved?");
	ck_assert_str_eq(attr(ev, "team"), "blue");
	ck_assert_ptr_null(attr(ev, "hauthorization"));
	ck_assert_ptr_null(attr(ev, "hcebrokerinternal"));
	ck_assert_ptr_null(attr(ev, "hhost"));
	ck_assert_ptr_null(attr(ev, "hceid"));
	data = ceb_event_data(ev, &len);
	ck_assert_uint_eq(len, 8);
	ck_assert_int_eq(memcmp(data, "{\"id\":7}", 8), 0);
	ceb_event_unref(ev);
	unload(&l);
}
END_TEST

START_TEST(test_without_extension_attributes_only_the_body_and_its_type_are_taken)
{
	static const struct ceb_http_header h[] = {{"Ce-Id", "ignored"}, {"X-Foo", "bar"}};
	static const struct ceb_http_header q[] = {{"a", "1"}};
	struct ceb_raw_request rq = {"POST", "/shop/hook", h, NH(h), q, NH(q), "", 0, false};
	struct ceb_raw_answer ans = {0};
	struct ceb_event *ev = NULL, *ev2 = NULL;
	struct loaded l;

	load(&l, "  eventSource: https://example.com/x\n");
	ck_assert_int_eq(ceb_source_webhook.to_event(l.ctx, &rq, &ev, &ans), 0);
	ck_assert_int_eq(ceb_source_webhook.to_event(l.ctx, &rq, &ev2, &ans), 0);
	ck_assert_str_ne(attr(ev, "id"), "ignored");
	ck_assert_str_ne(attr(ev, "id"), attr(ev2, "id")); /* a new UUID each */
	ck_assert_str_eq(attr(ev, "source"), "https://example.com/x");
	ck_assert_uint_eq(ceb_event_attr_count(ev), 5); /* specversion id source type time */
	ck_assert(!ceb_event_has_data(ev));
	ceb_event_unref(ev);
	ceb_event_unref(ev2);
	unload(&l);
}
END_TEST

static int admit(struct loaded *l, const char *method, const char *auth, struct ceb_raw_answer *ans)
{
	struct ceb_http_header h[] = {{"Authorization", auth ? auth : ""}};
	struct ceb_raw_request rq = {method, "/shop/hook", h, auth ? 1 : 0, NULL, 0, "", 0, false};

	memset(ans, 0, sizeof(*ans));
	ceb_source_webhook.admit(l->ctx, &rq, ans);
	return ans->status;
}

static const char *answer_header(const struct ceb_raw_answer *ans, const char *name)
{
	for (size_t i = 0; i < ans->nheaders; i++)
		if (strcmp(ans->headers[i].name, name) == 0)
			return ans->headers[i].value;
	return NULL;
}

START_TEST(test_basic_credentials_are_checked_as_triggermesh_checks_them)
{
	struct ceb_raw_answer ans;
	struct loaded l;

	load(&l, "  basicAuthUsername: alice\n  basicAuthPassword:\n    value: s3cret\n");
	ck_assert_int_eq(admit(&l, "POST", NULL, &ans), 400);
	ck_assert_int_eq(admit(&l, "POST", "Bearer abc", &ans), 400);
	ck_assert_int_eq(admit(&l, "POST", "Basic !!!", &ans), 400);
	ck_assert_int_eq(admit(&l, "POST", "Basic YWxpY2U=", &ans), 400); /* "alice": no colon */
	ck_assert_int_eq(admit(&l, "POST", "Basic YWxpY2U6d3Jvbmc=", &ans), 401); /* alice:wrong */
	ck_assert_ptr_nonnull(answer_header(&ans, "WWW-Authenticate"));
	ck_assert_int_eq(admit(&l, "POST", "Basic YWxpY2U6czNjcmV0eA==", &ans), 401); /* s3cretx */
	ck_assert_int_eq(admit(&l, "POST", "Basic YWxpY2U6czNjcmV0", &ans), 0); /* alice:s3cret */
	ck_assert_int_eq(admit(&l, "POST", "basic YWxpY2U6czNjcmV0", &ans), 0);
	/* the daemon's own delivery (a Trigger's ref to the source) carries its token instead */
	{
		struct ceb_raw_request rq = {"POST", "/shop/hook", NULL, 0, NULL, 0, "", 0, true};
		memset(&ans, 0, sizeof(ans));
		ceb_source_webhook.admit(l.ctx, &rq, &ans);
		ck_assert_int_eq(ans.status, 0);
	}
	/* another method: 405 before any credentials */
	ck_assert_int_eq(admit(&l, "GET", NULL, &ans), 405);
	ck_assert_str_eq(answer_header(&ans, "Allow"), "POST");
	unload(&l);

	load(&l, "  basicAuthUsername: bob\n  basicAuthPassword:\n"
	         "    valueFromSecret:\n      name: creds\n      key: pw\n");
	ck_assert_int_eq(admit(&l, "POST", "Basic Ym9iOnMzY3JldA==", &ans), 401); /* bob:s3cret */
	ck_assert_int_eq(admit(&l, "POST", "Basic Ym9iOmZyb20tc2VjcmV0", &ans),
	                 0); /* from-secret */
	unload(&l);
}
END_TEST

START_TEST(test_cors_answers_the_preflight_and_marks_every_answer)
{
	struct ceb_raw_answer ans;
	struct loaded l;

	load(&l, "  corsAllowOrigin: https://app.example\n"
	         "  basicAuthUsername: alice\n  basicAuthPassword:\n    value: s3cret\n");
	/* a preflight carries no credentials */
	ck_assert_int_eq(admit(&l, "OPTIONS", NULL, &ans), 204);
	ck_assert_str_eq(answer_header(&ans, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_ptr_nonnull(answer_header(&ans, "Access-Control-Allow-Methods"));
	ck_assert_int_eq(admit(&l, "POST", NULL, &ans), 400);
	ck_assert_str_eq(answer_header(&ans, "Access-Control-Allow-Origin"), "https://app.example");
	ck_assert_int_eq(admit(&l, "DELETE", NULL, &ans), 405);
	ck_assert_str_eq(answer_header(&ans, "Allow"), "POST, OPTIONS");
	unload(&l);
	load(&l, "");
	ck_assert_int_eq(admit(&l, "OPTIONS", NULL, &ans), 405);
	ck_assert_ptr_null(answer_header(&ans, "Access-Control-Allow-Origin"));
	unload(&l);
}
END_TEST

START_TEST(test_a_stopped_webhook_makes_no_more_events)
{
	struct ceb_raw_request rq = {"POST", "/shop/hook", NULL, 0, NULL, 0, "x", 1, false};
	struct ceb_raw_answer ans = {0};
	struct ceb_event *ev = NULL;
	struct loaded l;

	load(&l, "");
	ceb_source_webhook.stop(l.ctx);
	ck_assert_int_lt(ceb_source_webhook.to_event(l.ctx, &rq, &ev, &ans), 0);
	ck_assert_ptr_null(ev);
	ck_assert_int_eq(ans.status, 503);
	unload(&l);
}
END_TEST

START_TEST(test_a_value_the_event_model_refuses_is_a_400)
{
	static const struct ceb_http_header h[] = {{"Content-Type", "not a media type"}};
	struct ceb_raw_request rq = {"POST", "/shop/hook", h, NH(h), NULL, 0, "x", 1, false};
	struct ceb_raw_answer ans = {0};
	struct ceb_event *ev = NULL;
	struct loaded l;

	load(&l, "");
	ck_assert_int_lt(ceb_source_webhook.to_event(l.ctx, &rq, &ev, &ans), 0);
	ck_assert_ptr_null(ev);
	ck_assert_int_eq(ans.status, 400);
	ck_assert_ptr_nonnull(strstr(ans.reason, "Content-Type"));
	unload(&l);
}
END_TEST

int main(void)
{
	Suite *units = suite_create("source_webhook");
	Suite *contract = suite_create("source_webhook_contract");
	TCase *tw = tcase_create("webhooksource");
	TCase *tc = tcase_create("contract");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	ceb_log_setup(CEB_LOGLEVEL_WARN, 0);
	curl_global_init(CURL_GLOBAL_ALL);
	tcase_add_test(tw, test_webhook_source_is_found_by_kind_and_takes_plain_requests);
	tcase_add_test(tw, test_a_request_becomes_the_event_triggermesh_makes_of_it);
	tcase_add_test(tw, test_without_extension_attributes_only_the_body_and_its_type_are_taken);
	tcase_add_test(tw, test_basic_credentials_are_checked_as_triggermesh_checks_them);
	tcase_add_test(tw, test_cors_answers_the_preflight_and_marks_every_answer);
	tcase_add_test(tw, test_a_stopped_webhook_makes_no_more_events);
	tcase_add_test(tw, test_a_value_the_event_model_refuses_is_a_400);
	suite_add_tcase(units, tw);
	sr = srunner_create(units);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	/* The contract runs the daemon against a sink server in this process: no fork. */
	source_contract_add_tests(tc, &webhook_source);
	suite_add_tcase(contract, tc);
	sr = srunner_create(contract);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed += srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
