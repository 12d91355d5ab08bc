/* The CloudEvents HTTP binding: picks the mode from Content-Type, maps `ce-` headers to attributes
 * and back with the binding's percent-encoding, and hands structured bodies to the JSON format. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/error.h"
#include "broker/ce/http_binding.h"
#include "broker/ce/json_format.h"

#define MAX_NAME_LEN 64

static void trim(const char **s, size_t *len)
{
	while (*len && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*len)--;
	}
	while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

int ceb_percent_encode(const char *s, size_t len, struct ceb_buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *u = (const unsigned char *)s;
	char esc[3] = {'%', 0, 0};
	size_t i = 0, run;

	if (ceb_buf_reserve(out, len) < 0)
		return CEB_ENOMEM;
	while (i < len) {
		run = i;
		while (i < len && u[i] >= 0x21 && u[i] <= 0x7e && u[i] != '"' && u[i] != '%')
			i++;
		ceb_buf_append(out, s + run, i - run);
		if (i == len)
			break;
		esc[1] = hex[u[i] >> 4];
		esc[2] = hex[u[i] & 15];
		ceb_buf_append(out, esc, 3);
		i++;
	}
	return out->failed ? CEB_ENOMEM : 0;
}

/* ceb_percent_decode with the reason for a rejection in *why. */
static int decode_value(const char *s, size_t len, struct ceb_buf *out, const char **why)
{
	size_t start = out->len, i, r, w;
	int hi, lo;
	unsigned char c;

	trim(&s, &len);
	if (len && s[0] == '"') {
		/* RFC 7230 section 3.2.6 quoted-string, undone before percent-decoding. */
		for (i = 1; i < len; i++) {
			c = (unsigned char)s[i];
			if (c == '"')
				break;
			if (c == '\\') {
				if (++i == len)
					break;
				c = (unsigned char)s[i];
				if (c != '\t' && (c < 0x20 || c == 0x7f)) {
					*why = "invalid character in a quoted-string";
					return CEB_EINVAL;
				}
			} else if (c != '\t' && (c < 0x20 || c == 0x7f)) {
				*why = "invalid character in a quoted-string";
				return CEB_EINVAL;
			}
			ceb_buf_putc(out, (char)c);
		}
		if (i != len - 1 || s[i] != '"') {
			*why = "unterminated quoted-string or text after its closing quote";
			return CEB_EINVAL;
		}
	} else {
		ceb_buf_append(out, s, len);
	}
	if (ceb_buf_reserve(out, 0) < 0)
		return CEB_ENOMEM;
	/* One round of percent-decoding, in place: the result is never longer. */
	for (r = w = start; r < out->len; r++, w++) {
		c = (unsigned char)out->p[r];
		if (c == '%') {
			if (out->len - r < 3 || (hi = ceb_hex_digit(out->p[r + 1])) < 0 ||
			    (lo = ceb_hex_digit(out->p[r + 2])) < 0) {
				*why = "bad percent-escape (% must be followed by two hex digits)";
				out->len = w;
				out->p[w] = '\0';
				return CEB_EINVAL;
			}
			c = (unsigned char)(hi << 4 | lo);
			r += 2;
		}
		out->p[w] = (char)c;
	}
	out->len = w;
	out->p[w] = '\0';
	if (!ceb_utf8_valid(out->p + start, w - start)) {
		*why = "not valid UTF-8 after percent-decoding";
		return CEB_EINVAL;
	}
	return 0;
}

int ceb_percent_decode(const char *s, size_t len, struct ceb_buf *out)
{
	const char *why;

	return decode_value(s, len, out, &why);
}

/* The media type of a Content-Type value without parameters: *len bytes at the returned pointer. */
static const char *media_type(const char *ct, size_t *len)
{
	size_t n;

	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	*len = n;
	return ct;
}

/* For the structured and batched formats: only UTF-8 (or its subset US-ASCII) is understood. */
static int check_charset(const char *ct, char *errbuf, size_t errlen)
{
	const char *p = strchr(ct, ';'), *v;
	size_t n;
	char ex[48];

	while (p) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, ";");
		if (n >= 8 && strncasecmp(p, "charset=", 8) == 0) {
			v = p + 8;
			n -= 8;
			trim(&v, &n);
			if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
				v++;
				n -= 2;
			}
			if (!((n == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
			      (n == 8 && strncasecmp(v, "us-ascii", 8) == 0))) {
				ceb_seterr(errbuf, errlen,
				           "charset '%s' is not supported; send the event as UTF-8",
				           ceb_excerpt(ex, sizeof(ex), v, n));
				return CEB_EUNSUPPORTED;
			}
		}
		p = strchr(p, ';');
	}
	return 0;
}

static bool has_prefix_ci(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && strncasecmp(s, prefix, n) == 0;
}

static int decode_binary(const struct ceb_http_request *req, const char *ct,
                         const struct ceb_limits *lim, struct ceb_event **out, char *errbuf,
                         size_t errlen)
{
	struct ceb_event *ev = ceb_event_new();
	struct ceb_buf val = CEB_BUF_INIT;
	char name[MAX_NAME_LEN + 1], ex[48];
	const char *hname, *why, *v;
	size_t i, j, nlen, ce = 0, size = req->body_len, vlen;
	int rc = 0;

	if (!ev) {
		rc = CEB_ENOMEM;
		goto out;
	}
	if (size > lim->max_event_size) {
		ceb_seterr(errbuf, errlen, "event is over %zu bytes (body and ce- headers)",
		           lim->max_event_size);
		rc = CEB_ETOOBIG;
		goto out;
	}
	for (i = 0; i < req->nheaders; i++) {
		hname = req->headers[i].name;
		/* "ce-" in any case, without a call per header */
		if ((hname[0] | 0x20) != 'c' || (hname[1] | 0x20) != 'e' || hname[2] != '-')
			continue;
		nlen = strlen(hname + 3);
		if (nlen > MAX_NAME_LEN) {
			ceb_seterr(errbuf, errlen,
			           "header '%s': attribute name longer than %d characters",
			           ceb_excerpt(ex, sizeof(ex), hname, strlen(hname)), MAX_NAME_LEN);
			rc = CEB_EINVAL;
			goto out;
		}
		/* lower-cased and checked (a-z and 0-9) in one pass */
		for (j = 0; j < nlen; j++) {
			unsigned char c = (unsigned char)hname[3 + j];

			if ((unsigned)(c - 'a') < 26 || (unsigned)(c - '0') < 10)
				name[j] = (char)c;
			else if ((unsigned)(c - 'A') < 26)
				name[j] = (char)(c - 'A' + 'a');
			else
				break;
		}
		name[j] = '\0';
		if (j != nlen || nlen == 0 || (nlen == 4 && memcmp(name, "data", 4) == 0)) {
			ceb_seterr(
			        errbuf, errlen,
			        "header '%s': not a valid attribute name (after 'ce-': a-z and 0-9 "
			        "only, not 'data')",
			        ceb_excerpt(ex, sizeof(ex), hname, strlen(hname)));
			rc = CEB_EINVAL;
			goto out;
		}
		if (nlen == 15 && memcmp(name, "datacontenttype", 15) == 0) {
			ceb_seterr(
			        errbuf, errlen,
			        "header 'ce-datacontenttype' is not allowed in binary mode; send "
			        "the "
			        "media type in Content-Type");
			rc = CEB_EINVAL;
			goto out;
		}
		if (ceb_event_get_n(ev, name, nlen)) {
			ceb_seterr(errbuf, errlen, "header 'ce-%s' appears more than once", name);
			rc = CEB_EINVAL;
			goto out;
		}
		if (++ce > lim->max_attrs) {
			ceb_seterr(errbuf, errlen, "too many ce- headers (limit %zu attributes)",
			           lim->max_attrs);
			rc = CEB_EINVAL;
			goto out;
		}
		v = req->headers[i].value;
		vlen = strlen(v);
		size += nlen + vlen;
		if (size > lim->max_event_size) {
			ceb_seterr(errbuf, errlen, "event is over %zu bytes (body and ce- headers)",
			           lim->max_event_size);
			rc = CEB_ETOOBIG;
			goto out;
		}
		trim(&v, &vlen);
		if ((!vlen || v[0] != '"') && !memchr(v, '%', vlen)) {
			/* Nothing to undo (most values): checked where they lie, copied once, by
			 * ceb_event_set(). */
			if (!ceb_utf8_valid(v, vlen)) {
				ceb_seterr(errbuf, errlen, "header 'ce-%s': %s", name,
				           "not valid UTF-8 after percent-decoding");
				rc = CEB_EINVAL;
				goto out;
			}
		} else {
			ceb_buf_reset(&val);
			rc = decode_value(v, vlen, &val, &why);
			if (rc < 0) {
				if (rc == CEB_EINVAL)
					ceb_seterr(errbuf, errlen, "header 'ce-%s': %s", name, why);
				goto out;
			}
			v = val.p;
			vlen = val.len;
		}
		if (vlen > lim->max_value_len) {
			ceb_seterr(errbuf, errlen, "attribute '%s': value is %zu bytes (limit %zu)",
			           name, vlen, lim->max_value_len);
			rc = CEB_EINVAL;
			goto out;
		}
		rc = ceb_event_set_n(ev, name, nlen, CEB_TYPE_STRING, v, vlen, errbuf, errlen);
		if (rc < 0)
			goto out;
	}
	if (ce == 0) {
		ceb_seterr(errbuf, errlen,
		           "not a CloudEvent: no ce- headers (binary mode needs ce-specversion, "
		           "ce-id, "
		           "ce-source and ce-type; structured mode needs Content-Type: "
		           "application/cloudevents+json)");
		rc = CEB_EINVAL;
		goto out;
	}
	if (ct) {
		vlen = strlen(ct);
		trim(&ct, &vlen);
		size += vlen;
		if (size > lim->max_event_size) {
			ceb_seterr(errbuf, errlen, "event is over %zu bytes (body and ce- headers)",
			           lim->max_event_size);
			rc = CEB_ETOOBIG;
			goto out;
		}
		if (vlen > lim->max_value_len) {
			ceb_seterr(errbuf, errlen, "Content-Type is %zu bytes (limit %zu)", vlen,
			           lim->max_value_len);
			rc = CEB_ETOOBIG;
			goto out;
		}
		rc = ceb_event_set_n(ev, "datacontenttype", 15, CEB_TYPE_STRING, ct, vlen, errbuf,
		                     errlen);
		if (rc < 0)
			goto out;
	}
	if (req->body_len) {
		rc = ceb_event_set_data(ev, req->body, req->body_len, 0);
		if (rc < 0)
			goto out;
	}
	rc = ceb_event_validate(ev, lim, errbuf, errlen);
	if (rc < 0)
		goto out;
	*out = ev;
	ev = NULL;
out:
	if (rc == CEB_ENOMEM)
		ceb_seterr(errbuf, errlen, "out of memory");
	ceb_buf_free(&val);
	ceb_event_unref(ev);
	return rc;
}

int ceb_http_decode(const struct ceb_http_request *req, const struct ceb_limits *lim,
                    struct ceb_event ***evs, size_t *nevs, enum ceb_http_mode *mode, char *errbuf,
                    size_t errlen)
{
	struct ceb_event *ev = NULL, **one = NULL;
	const char *ct = NULL, *mt;
	size_t i, mlen;
	char ex[48];
	int rc;

	if (!lim)
		lim = &ceb_limits_default;
	for (i = 0; i < req->nheaders; i++) {
		/* not "ce-...": the second letter before a call */
		if ((req->headers[i].name[0] | 0x20) != 'c' ||
		    (req->headers[i].name[1] | 0x20) != 'o' ||
		    strcasecmp(req->headers[i].name, "content-type") != 0)
			continue;
		if (ct) {
			ceb_seterr(errbuf, errlen, "more than one Content-Type header");
			return CEB_EINVAL;
		}
		ct = req->headers[i].value;
	}
	mt = ct ? media_type(ct, &mlen) : "";
	if (!ct)
		mlen = 0;
	if (has_prefix_ci(mt, mlen, "application/cloudevents-batch")) {
		*mode = CEB_HTTP_BATCH;
		if (mlen != 34 || strncasecmp(mt, "application/cloudevents-batch+json", 34) != 0) {
			ceb_seterr(errbuf, errlen,
			           "batch format '%s' is not supported; use "
			           "application/cloudevents-batch+json",
			           ceb_excerpt(ex, sizeof(ex), mt, mlen));
			return CEB_EUNSUPPORTED;
		}
		rc = check_charset(ct, errbuf, errlen);
		if (rc < 0)
			return rc;
		return ceb_json_decode_batch(req->body, req->body_len, lim, evs, nevs, errbuf,
		                             errlen);
	}
	one = malloc(sizeof(*one));
	if (!one) {
		ceb_seterr(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	if (has_prefix_ci(mt, mlen, "application/cloudevents")) {
		*mode = CEB_HTTP_STRUCTURED;
		if (mlen != 28 || strncasecmp(mt, "application/cloudevents+json", 28) != 0) {
			ceb_seterr(errbuf, errlen,
			           "event format '%s' is not supported; use "
			           "application/cloudevents+json "
			           "or binary mode",
			           ceb_excerpt(ex, sizeof(ex), mt, mlen));
			rc = CEB_EUNSUPPORTED;
			goto out;
		}
		rc = check_charset(ct, errbuf, errlen);
		if (rc == 0)
			rc = ceb_json_decode(req->body, req->body_len, lim, &ev, errbuf, errlen);
	} else {
		*mode = CEB_HTTP_BINARY;
		rc = decode_binary(req, ct, lim, &ev, errbuf, errlen);
	}
	if (rc < 0)
		goto out;
	one[0] = ev;
	*evs = one;
	*nevs = 1;
	one = NULL;
out:
	free(one);
	return rc;
}

bool ceb_http_binary_possible(const struct ceb_event *ev)
{
	const char *ct = ceb_event_content_type(ev);

	return !ct || strncasecmp(ct, "application/cloudevents", 23) != 0;
}

int ceb_http_encode_headers(const struct ceb_event *ev, enum ceb_http_mode mode,
                            ceb_http_header_f *cb, void *arg)
{
	struct ceb_buf val = CEB_BUF_INIT;
	char name[3 + MAX_NAME_LEN + 1];
	const struct ceb_attr *a;
	const char *ct;
	size_t i, n;
	int rc = 0;

	if (mode == CEB_HTTP_STRUCTURED)
		return cb(arg, "Content-Type", CEB_HTTP_STRUCTURED_CT);
	if (mode == CEB_HTTP_BATCH)
		return cb(arg, "Content-Type", CEB_HTTP_BATCH_CT);
	if (!ceb_http_binary_possible(ev))
		return CEB_EUNSUPPORTED;
	n = ceb_event_attr_count(ev);
	for (i = 0; i < n; i++) {
		a = ceb_event_attr_at(ev, i);
		if (strcmp(a->name, "datacontenttype") == 0)
			continue;
		snprintf(name, sizeof(name), "ce-%s", a->name);
		ceb_buf_reset(&val);
		if (ceb_percent_encode(a->value, a->len, &val) < 0 ||
		    ceb_buf_reserve(&val, 0) < 0) {
			rc = CEB_ENOMEM;
			goto out;
		}
		rc = cb(arg, name, val.p);
		if (rc)
			goto out;
	}
	ct = ceb_event_content_type(ev);
	if (ct)
		rc = cb(arg, "Content-Type", ct);
out:
	ceb_buf_free(&val);
	return rc;
}
