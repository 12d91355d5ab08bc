/* Values that many kinds share: Knative's Destination (subscriber, sink, deadLetterSink) and
 * DeliverySpec, with the http(s) URIs and ISO 8601 durations inside them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* ISO 8601 durations as Knative's DeliverySpec takes them. Years and months have no fixed length, so
 * they are refused rather than guessed; a fraction may end any number (PT0.5S, PT1.5H). */
static int duration_parse(const char *s, uint64_t *ms, const char **why)
{
	static const char units[] = "WDHMS";
	static const uint64_t unit_ms[] = {604800000ull, 86400000ull, 3600000ull, 60000ull,
	                                   1000ull};
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
	if (*p++ != 'P')
		return CEB_EINVAL;
	while (*p) {
		uint64_t ip = 0, frac = 0, scale = 1, v;
		int u;

		if (*p == 'T') {
			if (in_time || !p[1])
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
		if (!in_time && (*p == 'Y' || *p == 'M')) {
			*why = "years and months are not supported (their length varies); use "
			       "days, e.g. P30D";
			return CEB_EINVAL;
		}
		if (!*p || !strchr(units, *p))
			return CEB_EINVAL;
		u = (int)(strchr(units, *p) - units);
		if ((in_time && u < 2) || (!in_time && u >= 2)) {
			*why = in_time ? "days and weeks go before T (e.g. P1DT2H)"
			               : "hours, minutes and seconds go after T (e.g. PT2H, PT30S)";
			return CEB_EINVAL;
		}
		if (u <= last) {
			*why = "units must appear once each, largest first (e.g. P1DT2H3M4.5S)";
			return CEB_EINVAL;
		}
		last = u;
		if (ip > max / unit_ms[u]) {
			*why = "duration too large";
			return CEB_EINVAL;
		}
		v = ip * unit_ms[u] + frac * unit_ms[u] / scale;
		if (v > max - total) {
			*why = "duration too large";
			return CEB_EINVAL;
		}
		total += v;
		any = true;
		p++;
	}
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

/* *dst = a copy of src (NULL stays NULL); false when out of memory. */
static bool dup_opt(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return !src || *dst;
}

static bool dest_copy(struct ceb_dest *dst, const struct ceb_dest *src)
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

/* cebroker resolves refs only to what it serves: without Kubernetes there is no one else to ask. */
bool ceb_config_parse_dest(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                           const char *path, struct ceb_dest *d)
{
	static const char *const fields[] = {"uri", "ref", "CACerts", "audience", NULL};
	static const char *const ref_fields[] = {"apiVersion", "kind", "name", "namespace", NULL};
	const struct ceb_yaml_node *v[4], *rv[4];
	char p[512], fp[512], q[80], q2[80];
	const char *why;
	size_t nerr = r->nerr;

	memset(d, 0, sizeof(*d));
	d->loc = (struct ceb_loc){r->file, ceb_yaml_line(n), ceb_yaml_col(n)};
	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
		return false;
	ceb_config_get_str(r, v[2], ceb_config_path_key(p, sizeof(p), path, "CACerts"),
	                   &d->ca_certs);
	ceb_config_get_str(r, v[3], ceb_config_path_key(p, sizeof(p), path, "audience"),
	                   &d->audience);
	if (v[0] && v[1]) {
		ceb_config_err(r, n, path, "give either uri or ref, not both");
		goto out;
	}
	if (!v[0] && !v[1]) {
		ceb_config_err(r, n, path, "needs a uri (or a ref to a Broker or a KafkaSink)");
		goto out;
	}
	if (v[0]) {
		ceb_config_path_key(p, sizeof(p), path, "uri");
		d->loc = (struct ceb_loc){r->file, ceb_yaml_line(v[0]), ceb_yaml_col(v[0])};
		if (!ceb_config_get_str(r, v[0], p, &d->uri))
			goto out;
		if (!http_uri(d->uri, &why)) {
			char shown[512]; /* no credentials in an error message */

			ceb_config_err(r, v[0], p, "\"%s\" %s",
			               ceb_config_quoted(q, sizeof(q),
			                                 ceb_log_url(d->uri, shown, sizeof(shown))),
			               why);
		}
		goto out;
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
	if (!d->ref_ns)
		d->ref_ns = ceb_config_strdup(r, r->ns);
	if (!d->ref_ns)
		goto out;
	if (!strcmp(d->ref_kind, "Broker") && !strcmp(d->ref_api, CEB_EVENTING_V1)) {
		ceb_config_add_check(r, "Broker", d->ref_ns, d->ref_name, v[1], p, NULL, NULL);
	} else if (!strcmp(d->ref_kind, "KafkaSink") &&
	           !strcmp(d->ref_api, CEB_EVENTING_V1ALPHA1)) {
		ceb_config_add_check(r, "KafkaSink", d->ref_ns, d->ref_name, v[1], p, NULL, NULL);
	} else {
		ceb_config_err(r, v[1], p,
		               "cebroker cannot serve a ref to %s (%s): without Kubernetes it "
		               "resolves only its own Brokers (%s) and KafkaSinks (%s); give the "
		               "address as uri: instead (e.g. uri: http://127.0.0.1:8081/)",
		               ceb_config_quoted(q, sizeof(q), d->ref_kind),
		               ceb_config_quoted(q2, sizeof(q2), d->ref_api), CEB_EVENTING_V1,
		               CEB_EVENTING_V1ALPHA1);
	}
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
	if (src->has_dls && !dest_copy(&dst->dls, &src->dls)) {
		ceb_config_delivery_init(dst);
		return false;
	}
	return true;
}

void ceb_config_parse_delivery(struct ceb_config_res *r, const struct ceb_yaml_node *n,
                               const char *path, struct ceb_delivery *dl)
{
	static const char *const fields[] = {"deadLetterSink", "retry",   "backoffPolicy",
	                                     "backoffDelay",   "timeout", "retryAfterMax",
	                                     "format",         NULL};
	const struct ceb_yaml_node *v[7];
	char p[512], *s = NULL, q[80];
	uint64_t ms;

	if (!ceb_config_get_fields(r, n, path, fields, v, NULL))
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
