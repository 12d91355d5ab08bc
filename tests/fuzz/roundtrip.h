/* Round-trip checks shared by the fuzz targets and the unit tests: send an event through the HTTP
 * binding in one mode, decode it again, and compare modulo what binary mode cannot carry. */
#ifndef CEB_TEST_ROUNDTRIP_H
#define CEB_TEST_ROUNDTRIP_H

#include <stdlib.h>
#include <string.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/ce/http_binding.h"
#include "broker/ce/json_format.h"

#define RT_MAX_HEADERS 160

struct rt_headers {
	size_t n;
	struct ceb_http_header h[RT_MAX_HEADERS];
};

static inline int rt_headers_add(void *arg, const char *name, const char *value)
{
	struct rt_headers *hs = arg;

	if (hs->n == RT_MAX_HEADERS)
		return CEB_ETOOBIG;
	hs->h[hs->n].name = strdup(name);
	hs->h[hs->n].value = strdup(value);
	hs->n++;
	if (!hs->h[hs->n - 1].name || !hs->h[hs->n - 1].value)
		return CEB_ENOMEM;
	return 0;
}

static inline void rt_headers_free(struct rt_headers *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		free((char *)hs->h[i].name);
		free((char *)hs->h[i].value);
	}
	hs->n = 0;
}

/* Encodes ev for HTTP in mode and decodes the request again (lim NULL: the defaults). Returns what
 * ceb_http_encode_headers or ceb_http_decode returned; on success *out is the one decoded event and
 * *got the mode the receiver saw. */
static inline int rt_http(const struct ceb_event *ev, enum ceb_http_mode mode,
                          const struct ceb_limits *lim, struct ceb_event **out,
                          enum ceb_http_mode *got, char *errbuf, size_t errlen)
{
	struct rt_headers hs = {0};
	struct ceb_buf body = CEB_BUF_INIT;
	struct ceb_http_request req = {0};
	struct ceb_event **evs = NULL;
	size_t n = 0;
	int rc;

	rc = ceb_http_encode_headers(ev, mode, rt_headers_add, &hs);
	if (rc)
		goto out;
	if (mode == CEB_HTTP_BINARY) {
		req.body = ceb_event_data(ev, &req.body_len);
	} else {
		rc = ceb_json_encode(ev, &body);
		if (rc)
			goto out;
		req.body = body.p;
		req.body_len = body.len;
	}
	req.headers = hs.h;
	req.nheaders = hs.n;
	rc = ceb_http_decode(&req, lim, &evs, &n, got, errbuf, errlen);
	if (rc)
		goto out;
	if (n != 1) {
		rc = CEB_EINVAL;
		goto out;
	}
	*out = evs[0];
	n = 0;
out:
	for (size_t i = 0; i < n; i++)
		ceb_event_unref(evs[i]);
	free(evs);
	rt_headers_free(&hs);
	ceb_buf_free(&body);
	return rc;
}

/* Equality after a binary-mode round trip, which cannot carry everything: header values are strings,
 * so an extension's type may become String (its canonical string must stay the same); JSON data
 * without datacontenttype comes back with datacontenttype application/json (JSON format 3.1.2 says a
 * translator SHOULD set it); an empty body is no data, so zero-length data and no data are equal.
 * Everything else must match exactly. */
static inline bool rt_equal_after_binary(const struct ceb_event *orig, const struct ceb_event *back)
{
	const struct ceb_attr *a, *b;
	const void *da, *db;
	size_t i, n, la, lb, extra = 0;

	n = ceb_event_attr_count(orig);
	for (i = 0; i < n; i++) {
		a = ceb_event_attr_at(orig, i);
		b = ceb_event_get(back, a->name);
		if (!b || a->len != b->len || memcmp(a->value, b->value, a->len) != 0)
			return false;
	}
	if (!ceb_event_get(orig, "datacontenttype")) {
		b = ceb_event_get(back, "datacontenttype");
		if (b) {
			if (!ceb_event_content_type(orig) ||
			    strcmp(b->value, ceb_event_content_type(orig)) != 0)
				return false;
			extra = 1;
		}
	}
	if (ceb_event_attr_count(back) != n + extra)
		return false;
	da = ceb_event_data(orig, &la);
	db = ceb_event_data(back, &lb);
	if (la != lb || (la && memcmp(da, db, la) != 0))
		return false;
	return la != 0 || !ceb_event_has_data(back);
}

/* After a structured round trip: the same event, except that a CloudEvents 0.3 event whose data
 * had to travel as Base64 (binary data that came in binary mode) gains datacontentencoding
 * "base64": 0.3's JSON format has no data_base64 and says it that way (json_encode.c), and the
 * decoder keeps the attribute so that the event goes out again as it came. */
static inline bool rt_equal_after_structured(const struct ceb_event *orig,
                                             const struct ceb_event *back)
{
	const struct ceb_attr *sv = ceb_event_get(orig, "specversion");
	const struct ceb_attr *enc = ceb_event_get(back, "datacontentencoding");
	struct ceb_event *plain;
	bool same;

	if (ceb_event_equal(orig, back))
		return true;
	if (!sv || strcmp(sv->value, "0.3") != 0 || ceb_event_get(orig, "datacontentencoding") ||
	    !enc || strcmp(enc->value, "base64") != 0)
		return false;
	plain = ceb_event_clone(back);
	if (!plain)
		return false;
	ceb_event_unset(plain, "datacontentencoding");
	same = ceb_event_equal(orig, plain);
	ceb_event_unref(plain);
	return same;
}

#endif
