/* WebhookSource (TriggerMesh's sources.triggermesh.io/v1alpha1 kind): plain HTTP POSTs to
 * /<namespace>/<name> on the daemon's own listener become CloudEvents, as TriggerMesh's webhook
 * adapter makes them. The kind's fields are read here; the requests come through the ingress's
 * request logic (broker/ingress/request.c), which stores each event before answering 202. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "broker/buf.h"
#include "broker/ce/base64.h"
#include "broker/config/fields.h"
#include "broker/endpoint.h"
#include "broker/error.h"
#include "broker/log.h"
#include "sources/source.h"

#define WEBHOOK_KIND "WebhookSource"

/* What eventExtensionAttributes.from may name, as TriggerMesh names them. */
enum {
	FROM_METHOD = 1,
	FROM_PATH = 2,
	FROM_HOST = 4,
	FROM_QUERIES = 8,
	FROM_HEADERS = 16
};

struct webhook_cfg {
	char *ns, *name;
	char *event_type, *event_source;
	unsigned from; /* FROM_* */
	char *username;
	char *password;                   /* basicAuthPassword.value, or NULL */
	struct ceb_secret_ref secret_ref; /* basicAuthPassword.valueFromSecret */
	bool from_secret;
	char *cors_origin;
	struct ceb_dest sink;
	struct ceb_delivery delivery;
	char **ce_ext_keys, **ce_ext_values;
	size_t nce_ext;
	struct ceb_loc loc;
	struct ceb_source_cfg source;
};

/* ------------------------------------------------------------------------------------------------
 * The kind.
 */

static void webhook_cfg_free(void *own)
{
	struct webhook_cfg *wc = own;

	if (!wc)
		return;
	free(wc->ns);
	free(wc->name);
	free(wc->event_type);
	free(wc->event_source);
	free(wc->username);
	if (wc->password) {
		explicit_bzero(wc->password, strlen(wc->password));
		free(wc->password);
	}
	ceb_secret_ref_free(&wc->secret_ref);
	free(wc->cors_origin);
	ceb_config_dest_free(&wc->sink);
	ceb_config_delivery_free(&wc->delivery);
	ceb_config_strv_free(wc->ce_ext_keys, wc->nce_ext);
	ceb_config_strv_free(wc->ce_ext_values, wc->nce_ext);
	free(wc);
}

/* eventExtensionAttributes: {from: [method, path, host, queries, headers]} */
static void parse_ext_attrs(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                            struct webhook_cfg *wc)
{
	static const char *const fields[] = {"from", NULL};
	static const char *const names[] = {"method", "path", "host", "queries", "headers", NULL};
	const struct ceb_yaml_node *v[1];
	char p[96], q[80];

	if (!ceb_config_get_fields(r, n, "spec.eventExtensionAttributes", fields, v, NULL) ||
	    !v[0] || !ceb_config_want_seq(r, v[0], "spec.eventExtensionAttributes.from"))
		return;
	for (size_t i = 0; i < ceb_yaml_size(v[0]); i++) {
		const struct ceb_yaml_node *it = ceb_yaml_seq_item(v[0], i);
		char *s = NULL;
		size_t k = 0;

		ceb_config_path_idx(p, sizeof(p), "spec.eventExtensionAttributes.from", i);
		if (!ceb_config_get_str(r, it, p, &s) || !s)
			continue;
		while (names[k] && strcmp(names[k], s))
			k++;
		if (names[k])
			wc->from |= 1u << k;
		else
			ceb_config_err(r, it, p,
			               "\"%s\" is not a part of a request (method, path, host, "
			               "queries or headers)",
			               ceb_config_quoted(q, sizeof(q), s));
		free(s);
	}
}

/* basicAuthPassword: TriggerMesh's ValueFromField, {value} or {valueFromSecret: secretKeyRef}. */
static void parse_password(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           struct webhook_cfg *wc)
{
	static const char *const fields[] = {"value", "valueFromSecret", NULL};
	const struct ceb_yaml_node *v[2];

	if (!ceb_config_get_fields(r, n, "spec.basicAuthPassword", fields, v, NULL))
		return;
	if (v[0] && v[1]) {
		ceb_config_err(r, n, "spec.basicAuthPassword",
		               "value and valueFromSecret are exclusive: give one");
		return;
	}
	if (v[0])
		ceb_config_get_str(r, v[0], "spec.basicAuthPassword.value", &wc->password);
	else if (v[1])
		wc->from_secret = ceb_config_get_secret_key_ref(
		        r, v[1], "spec.basicAuthPassword.valueFromSecret", &wc->secret_ref);
	else
		ceb_config_err(r, n, "spec.basicAuthPassword",
		               "required field missing (value or valueFromSecret)");
}

static void parse_webhook_source(struct ceb_config_res *r, struct ceb_config_meta *md,
                                 const struct ceb_yaml_node *root,
                                 const struct ceb_yaml_node *const *vals)
{
	/* TriggerMesh's WebhookSourceSpec (duckv1.SourceSpec inline: sink, ceOverrides), and
	 * Knative's DeliverySpec as cebroker's addition (the retries of the delivery to the sink) */
	static const char *const spec_fields[] = {"eventType",
	                                          "eventSource",
	                                          "eventExtensionAttributes",
	                                          "basicAuthUsername",
	                                          "basicAuthPassword",
	                                          "corsAllowOrigin",
	                                          "sink",
	                                          "ceOverrides",
	                                          "adapterOverrides",
	                                          "delivery",
	                                          NULL};
	const struct ceb_yaml_node *v[10];
	struct webhook_cfg *wc;
	struct ceb_buf b = CEB_BUF_INIT;
	char q[80];

	if (!md->name)
		return;
	wc = calloc(1, sizeof(*wc));
	if (!wc) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&wc->delivery);
	wc->ns = md->ns;
	wc->name = md->name;
	md->ns = md->name = NULL;
	wc->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	wc->source.own = wc;
	wc->source.own_free = webhook_cfg_free;
	ceb_config_add_source(r, &wc->source);
	ceb_config_add_entry(r, WEBHOOK_KIND, wc->ns, wc->name, md, wc);

	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a WebhookSource needs spec.eventType and "
		               "spec.sink)");
		goto out;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		goto out;
	if (!v[0])
		ceb_config_err(r, vals[0], "spec.eventType", "required field missing");
	else if (ceb_config_get_str(r, v[0], "spec.eventType", &wc->event_type) &&
	         !wc->event_type[0])
		ceb_config_err(r, v[0], "spec.eventType", "must not be empty");
	if (v[1] && ceb_config_get_str(r, v[1], "spec.eventSource", &wc->event_source) &&
	    (!wc->event_source[0] || !ceb_uriref_valid(wc->event_source, strlen(wc->event_source))))
		/* every event's source: a sender would get a 400 for each request otherwise */
		ceb_config_err(r, v[1], "spec.eventSource",
		               "\"%s\" is not a URI-reference (CloudEvents' source attribute)",
		               ceb_config_quoted(q, sizeof(q), wc->event_source));
	if (!v[1]) { /* TriggerMesh's default: <namespace>.<name> */
		ceb_buf_printf(&b, "%s.%s", wc->ns, wc->name);
		if (!(wc->event_source = ceb_buf_steal(&b, NULL)))
			ceb_config_oom(r);
	}
	if (v[2])
		parse_ext_attrs(r, v[2], wc);
	if (v[3])
		ceb_config_get_str(r, v[3], "spec.basicAuthUsername", &wc->username);
	if (v[4])
		parse_password(r, v[4], wc);
	/* TriggerMesh checks credentials only when both are set: one without the other would leave
	 * the webhook open while its manifest looks protected */
	if (v[3] && !v[4])
		ceb_config_err(r, v[3], "spec.basicAuthUsername",
		               "needs spec.basicAuthPassword too (without it anyone may post)");
	else if (v[4] && !v[3])
		ceb_config_err(r, v[4], "spec.basicAuthPassword",
		               "needs spec.basicAuthUsername too (without it anyone may post)");
	else if (wc->username && !wc->username[0])
		ceb_config_err(r, v[3], "spec.basicAuthUsername", "must not be empty");
	else if (wc->username && strchr(wc->username, ':'))
		/* RFC 7617: the first colon ends the user name, so no request could match */
		ceb_config_err(r, v[3], "spec.basicAuthUsername",
		               "a user name of Basic authentication cannot contain ':'");
	if (wc->password && !wc->password[0])
		ceb_config_err(r, v[4], "spec.basicAuthPassword.value", "must not be empty");
	if (v[5] && ceb_config_get_str(r, v[5], "spec.corsAllowOrigin", &wc->cors_origin)) {
		for (const char *c = wc->cors_origin; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f) {
				ceb_config_err(r, v[5], "spec.corsAllowOrigin",
				               "control characters cannot go in a header");
				break;
			}
	}
	if (!v[6])
		ceb_config_err(r, vals[0], "spec.sink", "required field missing");
	else
		ceb_config_parse_dest(r, v[6], "spec.sink", &wc->sink);
	if (v[7])
		ceb_config_parse_ce_overrides(r, v[7], &wc->ce_ext_keys, &wc->ce_ext_values,
		                              &wc->nce_ext);
	/* v[8], adapterOverrides: the Kubernetes Service's public flag, resources, labels... of
	 * TriggerMesh's adapter, which has no counterpart in a daemon: taken and not used */
	if (v[9])
		ceb_config_parse_delivery(r, v[9], "spec.delivery", false, &wc->delivery);
out:
	wc->source = (struct ceb_source_cfg){
	        .kind = WEBHOOK_KIND,
	        .ns = wc->ns,
	        .name = wc->name,
	        .sink = &wc->sink,
	        .delivery = &wc->delivery,
	        .ce_ext_keys = wc->ce_ext_keys,
	        .ce_ext_values = wc->ce_ext_values,
	        .nce_ext = wc->nce_ext,
	        .own = wc,
	        .own_free = webhook_cfg_free,
	        .loc = wc->loc,
	        .next = wc->source.next,
	};
}

static const char *const spec_only[] = {"spec", NULL};
static const char *const triggermesh_v1alpha1[] = {"sources.triggermesh.io/v1alpha1", NULL};

/* Addressable: it takes requests at /<namespace>/<name>, which a Broker of the same name would
 * take too (the loader refuses the clash), and a ref to it delivers there. */
const struct ceb_kind ceb_kind_webhook_source = {triggermesh_v1alpha1, WEBHOOK_KIND, spec_only,
                                                 parse_webhook_source, true};

/* ------------------------------------------------------------------------------------------------
 * The source.
 */

struct webhook {
	const struct webhook_cfg *cfg;
	const struct ceb_source_env *env;
	char *expect; /* "user:password", when credentials are required */
	size_t expect_len;
	char allow[16];      /* the Allow header: POST, and OPTIONS with CORS */
	char realm[300];     /* WWW-Authenticate */
	atomic_bool stopped; /* refuse what comes after stop */
};

static void wh_destroy(void *ctx)
{
	struct webhook *wh = ctx;

	if (!wh)
		return;
	if (wh->expect) {
		explicit_bzero(wh->expect, wh->expect_len);
		free(wh->expect);
	}
	free(wh);
}

static int wh_create(const struct ceb_source_cfg *cfg, const struct ceb_source_env *env, void **ctx,
                     char *errbuf, size_t errlen)
{
	const struct webhook_cfg *wc = cfg->own;
	struct webhook *wh = calloc(1, sizeof(*wh));
	const char *pw = wc->password;
	size_t pwlen = pw ? strlen(pw) : 0, ulen;

	if (!wh)
		goto nomem;
	wh->cfg = wc;
	wh->env = env;
	snprintf(wh->allow, sizeof(wh->allow), "%s", wc->cors_origin ? "POST, OPTIONS" : "POST");
	snprintf(wh->realm, sizeof(wh->realm), "Basic realm=\"%s/%s\", charset=\"UTF-8\"", wc->ns,
	         wc->name);
	if (wc->from_secret) {
		pw = wc->secret_ref.value;
		pwlen = wc->secret_ref.len;
	}
	if (wc->username) {
		/* an optional Secret that is absent, or an empty key: TriggerMesh would then take
		 * every request; a webhook meant to be protected must not open silently */
		if (!pw || !pwlen) {
			snprintf(errbuf, errlen,
			         "%s:%d:%d: WebhookSource %s/%s: spec.basicAuthPassword: the "
			         "password is empty (Secret %s/%s key %s)",
			         wc->loc.file, wc->loc.line, wc->loc.col, wc->ns, wc->name,
			         wc->secret_ref.ns ? wc->secret_ref.ns : "",
			         wc->secret_ref.name ? wc->secret_ref.name : "",
			         wc->secret_ref.key ? wc->secret_ref.key : "");
			wh_destroy(wh);
			return CEB_ECONFIG;
		}
		ulen = strlen(wc->username);
		wh->expect_len = ulen + 1 + pwlen;
		if (!(wh->expect = malloc(wh->expect_len + 1)))
			goto nomem;
		memcpy(wh->expect, wc->username, ulen);
		wh->expect[ulen] = ':';
		memcpy(wh->expect + ulen + 1, pw, pwlen);
		wh->expect[wh->expect_len] = '\0';
	}
	*ctx = wh;
	return 0;
nomem:
	wh_destroy(wh);
	snprintf(errbuf, errlen, "out of memory");
	return CEB_ENOMEM;
}

/* Say where it takes requests, once the listener is up (its port is in the daemon's own line). */
static int wh_start(void *ctx, char *errbuf, size_t errlen)
{
	const struct webhook *wh = ctx;
	const struct webhook_cfg *wc = wh->cfg;

	(void)errbuf;
	(void)errlen;
	CEB_LOG_INFO(wh->env->label, "POSTs to /%s/%s become events of type %s%s%s", wc->ns,
	             wc->name, wc->event_type, wh->expect ? ", with basic auth" : "",
	             wc->cors_origin ? ", CORS allowed" : "");
	return 0;
}

static void wh_stop(void *ctx)
{
	atomic_store(&((struct webhook *)ctx)->stopped, true);
}

/* The first header named name (any case), or NULL. */
static const char *header(const struct ceb_raw_request *rq, const char *name)
{
	for (size_t i = 0; i < rq->nheaders; i++)
		if (strcasecmp(rq->headers[i].name, name) == 0)
			return rq->headers[i].value;
	return NULL;
}

static void add_header(struct ceb_raw_answer *ans, const char *name, const char *value)
{
	if (ans->nheaders < CEB_RAW_ANSWER_HEADERS)
		ans->headers[ans->nheaders++] = (struct ceb_http_header){name, value};
}

/* Equal, in a time that depends on the lengths only. */
static bool same_secret(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char diff = alen != blen;
	size_t n = alen > blen ? alen : blen;

	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)((i < alen ? a[i] : 0) ^ (i < blen ? b[i] : 0));
	return diff == 0;
}

/* Basic credentials as Go's Request.BasicAuth reads them: 0 when they are the expected ones, 400
 * when there are none or they do not parse, 401 when they are wrong. */
static int check_credentials(const struct webhook *wh, const struct ceb_raw_request *rq,
                             struct ceb_raw_answer *ans)
{
	const char *auth = header(rq, "Authorization");
	struct ceb_buf b = CEB_BUF_INIT;
	int status = 0;

	if (!auth || strncasecmp(auth, "Basic ", 6) != 0 ||
	    ceb_base64_decode(auth + 6, strlen(auth + 6), &b) < 0 || !b.p ||
	    !memchr(b.p, ':', b.len)) {
		status = 400;
		snprintf(ans->reason, sizeof(ans->reason),
		         "wrong authentication header: Basic credentials are required");
	} else if (!same_secret(b.p, b.len, wh->expect, wh->expect_len)) {
		status = 401;
		snprintf(ans->reason, sizeof(ans->reason), "credentials are not valid");
		add_header(ans, "WWW-Authenticate", wh->realm);
	}
	if (b.p)
		explicit_bzero(b.p, b.len);
	ceb_buf_free(&b);
	return status;
}

static void wh_admit(void *ctx, const struct ceb_raw_request *rq, struct ceb_raw_answer *ans)
{
	const struct webhook *wh = ctx;
	const struct webhook_cfg *wc = wh->cfg;

	if (wc->cors_origin)
		add_header(ans, "Access-Control-Allow-Origin", wc->cors_origin);
	if (strcmp(rq->method, "OPTIONS") == 0 && wc->cors_origin) {
		/* a browser's preflight, sent without credentials */
		const char *want = header(rq, "Access-Control-Request-Headers");

		add_header(ans, "Access-Control-Allow-Methods", "POST, OPTIONS");
		if (want && *want)
			add_header(ans, "Access-Control-Allow-Headers", want);
		add_header(ans, "Access-Control-Max-Age", "600");
		ans->status = 204;
		return;
	}
	if (strcmp(rq->method, "POST") != 0) {
		add_header(ans, "Allow", wh->allow);
		ans->status = 405;
		snprintf(ans->reason, sizeof(ans->reason), "only POST is allowed on %s",
		         wh->env->label);
		return;
	}
	/* the daemon's own delivery (a Trigger whose subscriber is this source) proved itself with
	 * its token: whoever wrote the Trigger wrote the credentials too */
	if (wh->expect && !rq->internal)
		ans->status = check_credentials(wh, rq, ans);
}

/* TriggerMesh's attribute name for a query parameter or a header: lower case, [a-z0-9] only, at most
 * 20 characters, and data0 for a name the event has already. */
static void sanitize(char *out, size_t sz, const char *prefix, const char *name, long idx)
{
	char raw[CEB_ATTR_NAME_MAX * 4];
	size_t n = 0;

	if (idx >= 0)
		snprintf(raw, sizeof(raw), "%s%s%ld", prefix, name, idx);
	else
		snprintf(raw, sizeof(raw), "%s%s", prefix, name);
	for (const char *c = raw; *c && n < 20 && n + 1 < sz; c++) {
		char l = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
		if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9'))
			out[n++] = l;
	}
	out[n] = '\0';
	if (!strcmp(out, "data") || !strcmp(out, "path") || !strcmp(out, "method") ||
	    !strcmp(out, "host"))
		snprintf(out, sz, "data0");
}

static bool skipped_header(const char *name)
{
	/* Go's server keeps Host and Transfer-Encoding out of Request.Header; the credentials, and
	 * this daemon's token on its own deliveries, never go into an event */
	return !strcasecmp(name, "Authorization") || !strcasecmp(name, "Host") ||
	       !strcasecmp(name, "Transfer-Encoding") || !strcasecmp(name, CEB_INTERNAL_HEADER) ||
	       !strcasecmp(name, "Ce-Id") || !strcasecmp(name, "Ce-Subject") ||
	       !strcasecmp(name, CEB_INTERNAL_SENDER_HEADER);
}

/* Each name once, its values as extensions: <p><name> for one value, <p><name><i> for several. */
static int set_grouped(struct ceb_event *ev, const struct ceb_http_header *h, size_t n,
                       const char *prefix, bool headers, struct ceb_raw_answer *ans)
{
	char name[32], err[200];

	for (size_t i = 0; i < n; i++) {
		size_t count = 0, k = 0;
		bool seen = false;

		if (headers && skipped_header(h[i].name))
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = headers ? !strcasecmp(h[j].name, h[i].name)
			               : !strcmp(h[j].name, h[i].name);
		if (seen)
			continue;
		for (size_t j = i; j < n; j++)
			count += headers ? !strcasecmp(h[j].name, h[i].name)
			                 : !strcmp(h[j].name, h[i].name);
		for (size_t j = i; j < n; j++) {
			if (headers ? strcasecmp(h[j].name, h[i].name)
			            : strcmp(h[j].name, h[i].name))
				continue;
			sanitize(name, sizeof(name), prefix, h[i].name, count > 1 ? (long)k : -1);
			k++;
			if (ceb_event_set(ev, name, CEB_TYPE_STRING, h[j].value, strlen(h[j].value),
			                  err, sizeof(err)) < 0) {
				ans->status = 400;
				snprintf(ans->reason, sizeof(ans->reason), "%s '%.40s': %.150s",
				         headers ? "header" : "query parameter", h[i].name, err);
				return CEB_EINVAL;
			}
		}
	}
	return 0;
}

static int uuid4(char *out, size_t sz)
{
	unsigned char b[16];

	if (sz < 37 || getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, sz, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
	return 0;
}

static int now_rfc3339(char *out, size_t sz)
{
	struct timespec ts;
	struct tm tm;
	char s[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	if (!gmtime_r(&ts.tv_sec, &tm) || !strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm))
		return -1;
	snprintf(out, sz, "%.20s.%06dZ", s, (int)(ts.tv_nsec / 1000) % 1000000);
	return 0;
}

/* One attribute from a value of the request; a value the event model refuses is a 400. */
static int set_attr(struct ceb_event *ev, const char *name, const char *value, const char *what,
                    struct ceb_raw_answer *ans)
{
	char err[200];

	if (ceb_event_set(ev, name, CEB_TYPE_STRING, value, strlen(value), err, sizeof(err)) == 0)
		return 0;
	ans->status = 400;
	snprintf(ans->reason, sizeof(ans->reason), "%.40s: %.200s", what, err);
	return CEB_EINVAL;
}

static int wh_to_event(void *ctx, const struct ceb_raw_request *rq, struct ceb_event **out,
                       struct ceb_raw_answer *ans)
{
	const struct webhook *wh = ctx;
	const struct webhook_cfg *wc = wh->cfg;
	const char *ct = header(rq, "Content-Type"), *id = NULL, *subject = NULL, *host;
	struct ceb_event *ev = NULL;
	char uuid[40], now[48];
	int rc = CEB_EINVAL;

	if (atomic_load(&wh->stopped)) {
		ans->status = 503;
		snprintf(ans->reason, sizeof(ans->reason), "shutting down");
		return CEB_EUNAVAIL;
	}
	if (wc->from & FROM_HEADERS) { /* TriggerMesh reads them with the other headers */
		id = header(rq, "Ce-Id");
		subject = header(rq, "Ce-Subject");
	}
	if (!(ev = ceb_event_new()) || uuid4(uuid, sizeof(uuid)) < 0 ||
	    now_rfc3339(now, sizeof(now)) < 0)
		goto oom;
	if (set_attr(ev, "specversion", "1.0", "specversion", ans) < 0 ||
	    set_attr(ev, "id", id && *id ? id : uuid, "Ce-Id", ans) < 0 ||
	    set_attr(ev, "source", wc->event_source, "source", ans) < 0 ||
	    set_attr(ev, "type", wc->event_type, "type", ans) < 0 ||
	    set_attr(ev, "time", now, "time", ans) < 0 ||
	    (subject && *subject && set_attr(ev, "subject", subject, "Ce-Subject", ans) < 0) ||
	    (ct && *ct && set_attr(ev, "datacontenttype", ct, "Content-Type", ans) < 0))
		goto out;
	if ((wc->from & FROM_PATH) && set_attr(ev, "path", rq->path, "path", ans) < 0)
		goto out;
	if ((wc->from & FROM_METHOD) && set_attr(ev, "method", rq->method, "method", ans) < 0)
		goto out;
	host = header(rq, "Host");
	if ((wc->from & FROM_HOST) && host && *host && set_attr(ev, "host", host, "Host", ans) < 0)
		goto out;
	if ((wc->from & FROM_QUERIES) &&
	    set_grouped(ev, rq->query, rq->nquery, "q", false, ans) < 0)
		goto out;
	if ((wc->from & FROM_HEADERS) &&
	    set_grouped(ev, rq->headers, rq->nheaders, "h", true, ans) < 0)
		goto out;
	for (size_t i = 0; i < wc->nce_ext; i++)
		if (set_attr(ev, wc->ce_ext_keys[i], wc->ce_ext_values[i], "ceOverrides", ans) < 0)
			goto out;
	if (rq->body_len && ceb_event_set_data(ev, rq->body, rq->body_len, 0) < 0)
		goto oom;
	*out = ev;
	ev = NULL;
	rc = 0;
	goto out;
oom:
	ans->status = 503;
	snprintf(ans->reason, sizeof(ans->reason), "out of memory");
	rc = CEB_ENOMEM;
out:
	ceb_event_unref(ev);
	return rc;
}

const struct source_ops ceb_source_webhook = {
        .kind = WEBHOOK_KIND,
        .label = "webhooksource",
        .create = wh_create,
        .start = wh_start,
        .stop = wh_stop,
        .admit = wh_admit,
        .to_event = wh_to_event,
        .destroy = wh_destroy,
};
