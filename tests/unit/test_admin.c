/* The admin endpoint's refusals, through the ingress's transport-free request logic (as the ingress
 * fuzzer drives it): only loopback peers (IPv4 127/8, ::1, ::ffff:127.x) get past 403; then the
 * method (405), the parameters (400) and the Trigger (404). Rewinding itself is tested against the
 * durable channel (test_channel_durable) and end to end (test_durable_broker.py). */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/endpoint.h"
#include "broker/ingress/request.h"

static struct ceb_daemon dmn;

static void no_suspend(void *arg)
{
	(void)arg;
}

/* Route POST|GET url from the peer at `addr` (NULL: unknown); the status and reason. */
static int route(const char *method, const char *url, const char *addr, const char *query_name,
                 const char *query_value, char *reason, size_t len)
{
	struct sockaddr_storage ss;
	struct ceb_http_header q[1] = {{query_name, query_value}};
	struct ceb_request_head head = {.method = method, .url = url};
	struct ceb_request req;
	int status;

	memset(&ss, 0, sizeof(ss));
	if (addr && strchr(addr, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		ck_assert_int_eq(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
	} else if (addr) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, addr, &in->sin_addr), 1);
	}
	head.client = addr ? (const struct sockaddr *)&ss : NULL;
	if (query_name) {
		head.query = q;
		head.nquery = 1;
	}
	ceb_request_init(&req, &dmn, no_suspend, no_suspend, NULL);
	ck_assert_int_eq(ceb_request_route(&req, &head), CEB_ROUTE_ANSWER);
	status = req.status;
	snprintf(reason, len, "%s", req.reason);
	ceb_request_fini(&req);
	return status;
}

START_TEST(test_only_loopback_peers_get_past_403)
{
	char why[300];
	static const char *const refused[] = {"10.1.2.3", "192.168.0.1", "::ffff:10.0.0.1",
	                                      "fe80::1",  "2001:db8::1", NULL};
	static const char *const loopback[] = {"127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		ck_assert_int_eq(route("POST", "/admin/replay", refused[i], "trigger", "default/t",
		                       why, sizeof(why)),
		                 403);
		ck_assert_str_eq(why, "the admin endpoint answers only loopback clients");
	}
	for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
		ck_assert_int_eq(route("POST", "/admin/replay", loopback[i], "trigger", "default/t",
		                       why, sizeof(why)),
		                 400); /* past the peer check: no since_ms nor offset */
}
END_TEST

START_TEST(test_a_loopback_request_is_checked_before_anything_is_rewound)
{
	char why[300];

	ck_assert_int_eq(route("GET", "/admin/replay", "127.0.0.1", NULL, NULL, why, sizeof(why)),
	                 405);
	ck_assert_int_eq(route("POST", "/admin/replay", "127.0.0.1", NULL, NULL, why, sizeof(why)),
	                 400);
	ck_assert_str_eq(why, "give the Trigger as ?trigger=NAMESPACE/NAME");
	ck_assert_int_eq(
	        route("POST", "/admin/replay", "127.0.0.1", "trigger", "noslash", why, sizeof(why)),
	        400);
	ck_assert_int_eq(
	        route("POST", "/admin/replay", "::1", "trigger", "default/", why, sizeof(why)),
	        400);
	ck_assert_int_eq(route("POST", "/admin/replay", "::1", "offset", "3", why, sizeof(why)),
	                 400);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("replay");
	SRunner *sr;
	int failed;

	dmn.set = ceb_settings_default;
	tcase_add_test(tc, test_only_loopback_peers_get_past_403);
	tcase_add_test(tc, test_a_loopback_request_is_checked_before_anything_is_rewound);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
