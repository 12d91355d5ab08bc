/* Values that many kinds share: Knative's Destination (subscriber, sink, deadLetterSink) and
 * DeliverySpec, with the http(s) URIs and ISO 8601 durations inside them. */
#include <gnutls/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/error.h"
#include "broker/config/yaml.h"
#include "broker/log.h"

/* An absolute http or https URI with a host (and a numeric port if any): what libcurl will POST to. */
static bool http_uri(const char *s, const char **why)
{
	const char *p, *auth, *end, *host, *host_end, *colon = NULL;

	*why = "must be an absolute http:// or https:// URI";
	if (!strncasecmp(s, "http://", 7))
		auth = s + 7;
	else if (!strncasecmp(s, "https://", 8))
		auth = s + 8;
	else
		return false;
	for (p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			*why = "must not contain spaces or control characters";
			return false;
		}
	end = auth + strcspn(auth, "/?#");
	host = auth;
	for (p = auth; p < end; p++)
		if (*p == '@')
			host = p + 1;
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end || host_end == host + 1) {
			*why = "has a malformed IPv6 host";
			return false;
		}
		host_end++;
		if (host_end < end && *host_end != ':') {
			*why = "has a malformed IPv6 host";
			return false;
		}
		colon = host_end < end ? host_end : NULL;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		host_end = colon ? colon : end;
	}
	if (host_end == host) {
		*why = "has no host";
		return false;
	}
	if (colon) {
		long port = 0;

		if (colon + 1 == end || end - colon > 6) {
			*why = "has an invalid port";
			return false;
		}
		for (p = colon + 1; p < end; p++) {
			if (*p < '0' || *p > '9') {
				*why = "has an invalid port";
				return false;
			}
			port = port * 10 + (*p - '0');
		}
		if (port < 1 || port > 65535) {
			*why = "has an invalid port";
			return false;
		}
	}
	return true;
}

/* ISO 8601 durations as Knative's DeliverySpec takes them (github.com/rickb777/date's period.Parse,
 * then Duration()): [+]P[nY][nM][nW][nD][T[nH][nM][nS]], each number with an optional fraction
 * (PT0.5S, P1.5D), "P0" for zero. A year is 365.2425 days and a month a twelfth of a year, as
 * there. Negative durations are refused: Knative takes -PT1S as a backoffDelay, which means
 * nothing. */
static int duration_parse(const char *s, uint64_t *ms, const char **why)
{
	/* the date part's units, then the time part's: a unit must come after the one before it */
	static const char date_units[] = "YMWD", time_units[] = "HMS";
	static const uint64_t unit_ms[] = {31556952000ull, 2629746000ull, 604800000ull, 86400000ull,
	                                   3600000ull,     60000ull,      1000ull};
	const uint64_t max = (uint64_t)INT64_MAX;
	const char *p = s;
	bool in_time = false, any = false;
	int last = -1;
	uint64_t total = 0;

	*why = "not an ISO 8601 duration (e.g. PT10S, PT0.5S, PT1M30S, P1D)";
	if (*p == '-') {
		*why = "negative durations are not allowed";
		return CEB_EINVAL;
	}
	if (*p == '+')
		p++;
	if (!strcmp(p, "P0")) { /* period.Parse's zero */
		*ms = 0;
		return 0;
	}
	if (*p++ != 'P')
		return CEB_EINVAL;
	while (*p) {
		uint64_t ip = 0, frac = 0, scale = 1, v;
		const char *units = in_time ? time_units : date_units, *u;
		int k;

		if (*p == 'T') {
			if (in_time)
				return CEB_EINVAL;
			in_time = true;
			p++;
			continue;
		}
		if (*p < '0' || *p > '9')
			return CEB_EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (ip > max / 10) {
				*why = "duration too large";
				return CEB_EINVAL;
			}
			ip = ip * 10 + (uint64_t)(*p - '0');
		}
		if (*p == '.' || *p == ',') {
			p++;
			if (*p < '0' || *p > '9')
				return CEB_EINVAL;
			for (; *p >= '0' && *p <= '9'; p++)
				if (scale <
				    1000000000ull) { /* finer than a nanosecond of a week is noise */
					frac = frac * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
		}
		if (!*p || !(u = strchr(units, *p))) {
			if (*p && strchr(in_time ? date_units : time_units, *p) && *p != 'M')
				*why = in_time ? "years, weeks and days go before T (e.g. P1DT2H)"
				               : "hours and seconds go after T (e.g. PT2H, PT30S)";
			return CEB_EINVAL;
		}
		k = (int)(u - units) + (in_time ? 4 : 0);
		if (k <= last) {
			*why = "units must appear once each, largest first (e.g. P1DT2H3M4.5S)";
			return CEB_EINVAL;
		}
		last = k;
		if (ip > max / unit_ms[k]) {
			*why = "duration too large";
			return CEB_EINVAL;
		}
		/* every unit is whole seconds: frac x seconds stays far below 2^64 (10^9 x 3.2 10^7) */
		v = unit_ms[k] / 1000 * frac;
		v = scale >= 1000 ? v / (scale / 1000) : v * (1000 / scale);
		v += ip * unit_ms[k];
		if (v > max - total) {
			*why = "duration too large";
			return CEB_EINVAL;
		}
		total += v;
		any = true;
		p++;
	}
	/* "P1DT" is period.Parse's too; "PT" alone is not a duration */
	if (!any)
		return CEB_EINVAL;
	*ms = total;
	return 0;
}

int ceb_duration_parse(const char *s, uint64_t *ms)
{
	const char *why;

	if (!s || !ms)
		return CEB_EINVAL;
	return duration_parse(s, ms, &why);
}

bool ceb_config_get_duration(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                             const char *path, uint64_t *ms)
{
	const char *why;
	char q[80];

	if (ceb_yaml_type(n) != CEB_YAML_SCALAR) {
		ceb_config_err(r, n, path, "expected an ISO 8601 duration (e.g. PT10S), got %s",
		               ceb_yaml_describe(n));
		return false;
	}
	if (duration_parse(ceb_yaml_str(n), ms, &why) < 0) {
		ceb_config_err(r, n, path, "invalid duration \"%s\": %s",
		               ceb_config_quoted(q, sizeof(q), ceb_yaml_str(n)), why);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------------------------------------
 * Destination.
 */

void ceb_config_dest_free(struct ceb_dest *d)
{
	free(d->uri);
	free(d->ref_kind);
	free(d->ref_api);
	free(d->ref_ns);
	free(d->ref_name);
	free(d->ca_certs);
	free(d->audience);
	memset(d, 0, sizeof(*d));
}

const char *ceb_config_http_uri_why(const char *s)
{
	const char *why;

	return http_uri(s, &why) ? NULL : why;
}

/* *dst = a copy of src (NULL stays NULL); false when out of memory. */
static bool dup_opt(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return !src || *dst;
}

bool ceb_config_dest_copy(struct ceb_dest *dst, const struct ceb_dest *src)
{
	bool ok = true;

	*dst = (struct ceb_dest){.loc = src->loc};
	ok &= dup_opt(&dst->uri, src->uri);
	ok &= dup_opt(&dst->ref_kind, src->ref_kind);
	ok &= dup_opt(&dst->ref_api, src->ref_api);
	ok &= dup_opt(&dst->ref_ns, src->ref_ns);
	ok &= dup_opt(&dst->ref_name, src->ref_name);
	ok &= dup_opt(&dst->ca_certs, src->ca_certs);
	ok &= dup_opt(&dst->audience, src->audience);
	if (!ok)
		ceb_config_dest_free(dst);
	return ok;
}

/* A URI with a scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"). */
static bool has_scheme(const char *s)
{
	const char *p = s;

	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return false;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
	       *p == '+' || *p == '-' || *p == '.')
		p++;
	return *p == ':';
}

void ceb_config_bind_dest(struct ceb_config_res *r, struct ceb_dest *d, const char *path)
{
	char p[512];

	if (!d->ref_kind)
		return;
	if (!d->ref_ns && !(d->ref_ns = ceb_config_strdup(r, r->ns)))
		return;
	ceb_config_path_key(p, sizeof(p), path, "ref");
	if (ceb_config_addressable(d->ref_kind, strlen(d->ref_kind), d->ref_api)) {
		/* its address is this daemon's own ingress, /<ns>/<name>, which takes no other path */
		if (d->uri)
			ceb_config_err_at(
			        r, &d->loc, p,
			        "a ref to a %s of this daemon takes no uri beside it (its address "
			        "is its ingress path /%s/%s)",
			        d->ref_kind, d->ref_ns, d->ref_name);
		else
			ceb_config_add_check_at(r, d->ref_kind, d->ref_ns, d->ref_name, &d->loc, p,
			                        NULL, NULL);
		return;
	}
	ceb_config_refs_queue(r, d, p);
}

/* Knative's Destination: a uri; or a ref, which cebroker resolves once every file is loaded (its own
 * Brokers and KafkaSinks; any other kind through the address table, a Service by default to its
 * cluster DNS name), with a uri beside it taken relative to the ref's address. */
static bool parse_dest(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                       struct ceb_dest *d, const struct ceb_yaml_node **delivery);

bool ceb_config_parse_dest(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           const char *path, struct ceb_dest *d)
{
	return parse_dest(r, n, path, d, NULL);
}

bool ceb_config_parse_step(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           const char *path, struct ceb_dest *d,
                           const struct ceb_yaml_node **delivery)
{
	return parse_dest(r, n, path, d, delivery);
}

/* What is wrong with a CACerts value (PEM certificates, as Knative takes them), or NULL. */
static const char *pem_certs_fault(const char *pem)
{
	gnutls_datum_t in = {(unsigned char *)(uintptr_t)pem, (unsigned)strlen(pem)};
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0;
	int e = gnutls_x509_crt_list_import2(&crts, &n, &in, GNUTLS_X509_FMT_PEM, 0);

	for (unsigned i = 0; e >= 0 && i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (e < 0 || n == 0)
		return "not PEM certificates (expected one or more -----BEGIN CERTIFICATE----- "
		       "blocks)";
	return NULL;
}

static bool parse_dest(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                       struct ceb_dest *d, const struct ceb_yaml_node **delivery)
{
	static const char *const dest_fields[] = {"uri", "ref", "CACerts", "audience", NULL};
	static const char *const step_fields[] = {"uri",      "ref",      "CACerts",
	                                          "audience", "delivery", NULL};
	static const char *const ref_fields[] = {"apiVersion", "kind", "name", "namespace", NULL};
	const char *const *fields = delivery ? step_fields : dest_fields;
	const struct ceb_yaml_node *v[5], *rv[4];
	char p[512], fp[512], q[80];
	const char *why;
	size_t nerr = r->nerr;

	memset(d, 0, sizeof(*d));
	d->loc = (struct ceb_loc){r->file, ceb_yaml_line(n), ceb_yaml_col(n)};
	if (delivery)
		*delivery = NULL;
	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
		return false;
	if (delivery)
		*delivery = v[4];
	if (ceb_config_get_str(r, v[2], ceb_config_path_key(p, sizeof(p), path, "CACerts"),
	                       &d->ca_certs) &&
	    d->ca_certs && (why = pem_certs_fault(d->ca_certs)))
		ceb_config_err(r, v[2], p, "%s", why);
	ceb_config_get_str(r, v[3], ceb_config_path_key(p, sizeof(p), path, "audience"),
	                   &d->audience);
	if (!v[0] && !v[1]) {
		ceb_config_err(r, n, path,
		               "needs a uri or a ref (or a ref and a uri relative to it)");
		goto out;
	}
	if (v[0]) {
		ceb_config_path_key(p, sizeof(p), path, "uri");
		d->loc = (struct ceb_loc){r->file, ceb_yaml_line(v[0]), ceb_yaml_col(v[0])};
		if (!ceb_config_get_str(r, v[0], p, &d->uri))
			goto out;
		if (!v[1]) {
			char shown[512]; /* no credentials in an error message */

			if (!http_uri(d->uri, &why))
				ceb_config_err(r, v[0], p, "\"%s\" %s",
				               ceb_config_quoted(
				                       q, sizeof(q),
				                       ceb_log_url(d->uri, shown, sizeof(shown))),
				               why);
			goto out;
		}
		/* Knative: "absolute URI is not allowed when Ref ... exists" */
		if (has_scheme(d->uri) || !strncmp(d->uri, "//", 2)) {
			ceb_config_err(
			        r, v[0], p,
			        "\"%s\" is absolute, and a uri beside a ref must be relative to "
			        "the ref's address (e.g. /path); give one or the other",
			        ceb_config_quoted(q, sizeof(q), d->uri));
			goto out;
		}
		for (const char *c = d->uri; *c; c++)
			if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
				ceb_config_err(r, v[0], p,
				               "must not contain spaces or control characters");
				goto out;
			}
	}
	ceb_config_path_key(p, sizeof(p), path, "ref");
	d->loc = (struct ceb_loc){r->file, ceb_yaml_line(v[1]), ceb_yaml_col(v[1])};
	if (!ceb_config_get_fields(r, v[1], p, ref_fields, rv, NULL))
		goto out;
	for (int i = 0; i < 3; i++)
		if (!rv[i])
			ceb_config_err(r, v[1],
			               ceb_config_path_key(fp, sizeof(fp), p, ref_fields[i]),
			               "required field missing");
	if (r->nerr != nerr)
		goto out;
	if (!ceb_config_get_str(r, rv[0], ceb_config_path_key(fp, sizeof(fp), p, "apiVersion"),
	                        &d->ref_api) ||
	    !ceb_config_get_str(r, rv[1], ceb_config_path_key(fp, sizeof(fp), p, "kind"),
	                        &d->ref_kind) ||
	    !ceb_config_get_str(r, rv[2], ceb_config_path_key(fp, sizeof(fp), p, "name"),
	                        &d->ref_name) ||
	    !ceb_config_get_str(r, rv[3], ceb_config_path_key(fp, sizeof(fp), p, "namespace"),
	                        &d->ref_ns))
		goto out;
	if (!r->templ)
		ceb_config_bind_dest(r, d, path);
out:
	return r->nerr == nerr && !ceb_config_is_oom(r);
}

/* ------------------------------------------------------------------------------------------------
 * DeliverySpec.
 */

void ceb_config_delivery_init(struct ceb_delivery *dl)
{
	memset(dl, 0, sizeof(*dl));
	dl->backoff_policy = CEB_BACKOFF_EXPONENTIAL;
	dl->retry_after_max_ms = -1;
	dl->format = CEB_FORMAT_BINARY;
}

void ceb_config_delivery_free(struct ceb_delivery *dl)
{
	if (dl->has_dls)
		ceb_config_dest_free(&dl->dls);
	ceb_config_delivery_init(dl);
}

bool ceb_config_delivery_copy(struct ceb_delivery *dst, const struct ceb_delivery *src)
{
	*dst = *src;
	if (src->has_dls && !ceb_config_dest_copy(&dst->dls, &src->dls)) {
		ceb_config_delivery_init(dst);
		return false;
	}
	return true;
}

void ceb_config_parse_delivery(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                               const char *path, bool with_format, struct ceb_delivery *dl)
{
	/* format last: without it (a KafkaSource's CRD has none), format is an unknown field */
	static const char *const fields[] = {"deadLetterSink", "retry",   "backoffPolicy",
	                                     "backoffDelay",   "timeout", "retryAfterMax",
	                                     "format",         NULL};
	static const char *const fields_no_format[] = {
	        "deadLetterSink", "retry", "backoffPolicy", "backoffDelay", "timeout",
	        "retryAfterMax",  NULL};
	const struct ceb_yaml_node *v[7] = {NULL};
	char p[512], *s = NULL, q[80];
	uint64_t ms;

	if (!ceb_config_get_fields(r, n, path, with_format ? fields : fields_no_format, v, NULL))
		return;
	for (int i = 0; i < 7; i++)
		if (v[i])
			dl->set = true;
	if (v[0]) {
		dl->has_dls = true;
		ceb_config_parse_dest(r, v[0],
		                      ceb_config_path_key(p, sizeof(p), path, "deadLetterSink"),
		                      &dl->dls);
	}
	if (v[1])
		ceb_config_get_int(r, v[1], ceb_config_path_key(p, sizeof(p), path, "retry"), 0,
		                   INT32_MAX, &dl->retry);
	if (v[2] &&
	    ceb_config_get_str(r, v[2], ceb_config_path_key(p, sizeof(p), path, "backoffPolicy"),
	                       &s)) {
		if (!strcmp(s, "linear"))
			dl->backoff_policy = CEB_BACKOFF_LINEAR;
		else if (!strcmp(s, "exponential"))
			dl->backoff_policy = CEB_BACKOFF_EXPONENTIAL;
		else
			ceb_config_err(r, v[2], p,
			               "\"%s\" is not a backoff policy (linear or exponential)",
			               ceb_config_quoted(q, sizeof(q), s));
	}
	free(s);
	s = NULL;
	if (v[3] && ceb_config_get_duration(
	                    r, v[3], ceb_config_path_key(p, sizeof(p), path, "backoffDelay"), &ms))
		dl->backoff_delay_ms = ms;
	if (v[4] && ceb_config_get_duration(
	                    r, v[4], ceb_config_path_key(p, sizeof(p), path, "timeout"), &ms)) {
		if (ms == 0)
			ceb_config_err(r, v[4], p, "must be greater than zero");
		dl->timeout_ms = ms;
	}
	if (v[5] && ceb_config_get_duration(
	                    r, v[5], ceb_config_path_key(p, sizeof(p), path, "retryAfterMax"), &ms))
		dl->retry_after_max_ms = (int64_t)ms;
	if (v[6] &&
	    ceb_config_get_str(r, v[6], ceb_config_path_key(p, sizeof(p), path, "format"), &s)) {
		if (!strcmp(s, "json"))
			dl->format = CEB_FORMAT_JSON;
		else if (!strcmp(s, "binary"))
			dl->format = CEB_FORMAT_BINARY;
		else
			ceb_config_err(r, v[6], p, "\"%s\" is not a format (json or binary)",
			               ceb_config_quoted(q, sizeof(q), s));
	}
	free(s);
}

int ceb_rfc3339_parse(const char *s, int64_t *ms)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0;
	int64_t frac = 0, scale = 1000, t;
	const char *p;

	/* digits where RFC 3339 has them: sscanf's %d would take a sign or a space too */
	if (strlen(s) < 19)
		return CEB_EINVAL;
	for (int i = 0; i < 19; i++)
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (s[i] < '0' || s[i] > '9'))
			return CEB_EINVAL;
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
	    n != 19)
		return CEB_EINVAL;
	p = s + n;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return CEB_EINVAL;
		for (; *p >= '0' && *p <= '9'; p++)
			if (scale > 1) {
				scale /= 10;
				frac += (*p - '0') * scale;
			}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5)
			return CEB_EINVAL;
		p += 6;
		oh *= sign;
		om *= sign;
	} else {
		return CEB_EINVAL;
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return CEB_EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	t -= (int64_t)oh * 3600 + (int64_t)om * 60;
	if (t < 0)
		return CEB_EINVAL;
	*ms = t * 1000 + frac;
	return 0;
}
