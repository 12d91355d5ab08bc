/* Whole requests through the ingress logic, without sockets: the input is a request
 *   METHOD URL\n  name: value\n ... \n  \n  body
 * routed, fed in chunks and completed against a real daemon (brokers, memory channels, Triggers
 * with every filter dialect, WebhookSources that take plain requests: with credentials, CORS and
 * every extension, and one storing into a Broker), whose dispatchers then give every message back.
 * The URL's query (after '?', split at '&' and '=') is the request's parameters. Checks that the
 * answer is always a status the ingress documents and that nothing stays held. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth/auth.h"
#include "broker/daemon.h"
#include "broker/buf.h"
#include "broker/config/config.h"
#include "broker/delivery/dispatcher.h"
#include "broker/ingress/request.h"
#include "fuzz_keys.h"

static const char config_yaml[] =
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: other\n  namespace: "
        "ns\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: a\nspec:\n"
        "  broker: default\n  filter:\n    attributes:\n      type: t\n"
        "  subscriber:\n    uri: http://127.0.0.1:9/a\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: b\nspec:\n"
        "  broker: default\n  filters:\n    - any:\n        - prefix:\n            type: com.\n"
        "        - cesql: \"source LIKE '/s%' AND EXISTS x\"\n"
        "  subscriber:\n    uri: http://127.0.0.1:9/b\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: c\n  namespace: "
        "ns\nspec:\n"
        "  broker: other\n  subscriber:\n    uri: http://127.0.0.1:9/c\n---\n"
        "apiVersion: sources.triggermesh.io/v1alpha1\nkind: WebhookSource\nmetadata:\n"
        "  name: hook\nspec:\n  eventType: com.example.hook\n"
        "  eventExtensionAttributes:\n    from: [method, path, host, queries, headers]\n"
        "  basicAuthUsername: u\n  basicAuthPassword:\n    value: p\n"
        "  corsAllowOrigin: https://app.example\n"
        "  sink:\n    uri: http://127.0.0.1:9/hook\n---\n"
        "apiVersion: sources.triggermesh.io/v1alpha1\nkind: WebhookSource\nmetadata:\n"
        "  name: open\n  namespace: ns\nspec:\n  eventType: com.example.open\n"
        "  eventExtensionAttributes:\n    from: [headers, queries]\n"
        "  sink:\n    ref:\n      apiVersion: eventing.knative.dev/v1\n      kind: Broker\n"
        "      name: other\n"
        /* sender authentication on one Broker only (auth/guarded), so that the other seeds
         * still reach decoding: tokens of tests/fuzz/fuzz_keys.h, and a policy (one sender,
         * one type) */
        "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: guarded\n"
        "  namespace: auth\n---\n"
        "apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata:\n  name: one\n"
        "  namespace: auth\nspec:\n  to:\n    - ref: {apiVersion: eventing.knative.dev/v1, "
        "kind: Broker, name: guarded}\n  from:\n    - sub: system:serviceaccount:auth:sender\n"
        "  filters:\n    - exact: {type: com.example.allowed}\n";

static struct ceb_daemon *dmn;
static struct ceb_auth *auth; /* the daemon's for requests to /auth/..., else none */

static void setup(void)
{
	struct ceb_settings set = ceb_settings_default;
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	struct ceb_config *cfg;
	char err[512];

	set.limits.max_event_size = 16384;
	set.channel_max_events = 64;
	set.dispatchers = 1;
	set.request_timeout_s = 0;
	if (ceb_config_load_string("fuzz.yaml", config_yaml, sizeof(config_yaml) - 1, &cfg, &errs) <
	            0 ||
	    ceb_daemon_create(&set, cfg, &dmn, err, sizeof(err)) < 0 ||
	    ceb_auth_create_json(fuzz_jwks, sizeof(fuzz_jwks) - 1, FUZZ_ISSUER, &auth, err,
	                         sizeof(err)) < 0 ||
	    ceb_daemon_auth(dmn, auth, err, sizeof(err)) < 0 ||
	    ceb_daemon_start_offline(dmn, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz_ingress: setup failed: %s %s\n",
		        errs.text.p ? errs.text.p : "", err);
		abort();
	}
	ceb_buf_free(&errs.text);
}

static int documented(int status)
{
	static const int ok[] = {200, 202, 204, 400, 401, 403, 404, 405,
	                         408, 411, 413, 415, 429, 431, 501, 503};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (status == ok[i])
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ceb_http_header hdrs[64], query[16];
	struct ceb_request_head head;
	struct ceb_request req;
	char *buf, *p, *end, *line, *method, *url, *qs;
	size_t nh = 0, nq = 0, chunk;
	enum ceb_route route;

	if (!dmn)
		setup();
	if (size < 2)
		return 0;
	chunk = 1 + data[0] % 64; /* the first byte picks the body's piece size */
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	end = buf + size - 1;
	p = buf;
	line = p;
	p = memchr(p, '\n', (size_t)(end - p));
	if (!p)
		goto out;
	*p++ = '\0';
	method = line;
	url = strchr(line, ' ');
	if (!url)
		goto out;
	*url++ = '\0';
	qs = strchr(url, '?');
	if (qs) {
		*qs++ = '\0';
		while (qs && nq < 16) {
			char *amp = strchr(qs, '&'), *eq;
			if (amp)
				*amp++ = '\0';
			eq = strchr(qs, '=');
			if (eq)
				*eq++ = '\0';
			query[nq].name = qs;
			query[nq].value = eq ? eq : "";
			nq++;
			qs = amp;
		}
	}
	while (p < end && *p != '\n' && nh < 64) {
		char *nl = memchr(p, '\n', (size_t)(end - p)), *colon;
		if (!nl)
			break;
		*nl = '\0';
		colon = strchr(p, ':');
		if (colon) {
			*colon++ = '\0';
			while (*colon == ' ')
				colon++;
			hdrs[nh].name = p;
			hdrs[nh].value = colon;
			nh++;
		}
		p = nl + 1;
	}
	if (p < end && *p == '\n')
		p++;
	/* with authentication every address needs a token: only the auth namespace's requests get
	 * it, so that the other seeds still reach decoding */
	dmn->auth = strncmp(url, "/auth/", 6) == 0 ? auth : NULL;
	ceb_request_init(&req, dmn, NULL, NULL, NULL);
	head.method = method;
	head.url = url;
	head.http10 = false;
	head.headers = hdrs;
	head.nheaders = nh;
	head.nfields = 0;
	head.size = (size_t)(p - buf);
	head.client = NULL;
	head.defect = NULL;
	head.query = query;
	head.nquery = nq;
	route = ceb_request_route(&req, &head);
	if (route == CEB_ROUTE_BODY) {
		for (char *b = p; b < end; b += chunk)
			if (!ceb_request_body(
			            &req, b, (size_t)(end - b) < chunk ? (size_t)(end - b) : chunk))
				break;
		/* The memory channel stores at once: the answer is always ready. */
		if (!ceb_request_complete(&req, hdrs, nh))
			abort();
	}
	if (route == CEB_ROUTE_ANSWER || route == CEB_ROUTE_BODY) {
		if (!documented(req.status)) {
			fprintf(stderr, "undocumented status %d: %s\n", req.status, req.reason);
			abort();
		}
	}
	ceb_request_fini(&req);
	/* Give every message back so that the channels never fill up between inputs. */
	while (ceb_dispatcher_give_back(dmn->dsp[0]))
		;
	if (ceb_daemon_pending(dmn) != 0)
		abort();
out:
	free(buf);
	return 0;
}
