/* Helpers shared by the unit suites: fixture files, HTTP round trips, binary-mode equality. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/json_format.h"
#include "tests/unit/fixtures.h"

char *fixture_read(const char *relpath, size_t *len)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	char *buf = NULL;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", top ? top : ".", relpath);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)n + 1);
	if (!buf)
		goto out;
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	if (len)
		*len = (size_t)n;
out:
	fclose(f);
	return buf;
}

struct ceb_event *fixture_json_event(const char *json)
{
	struct ceb_event *ev = NULL;
	char err[256] = "";
	int rc;

	rc = ceb_json_decode(json, strlen(json), NULL, &ev, err, sizeof(err));
	ck_assert_msg(rc == 0, "decode failed (%s): %s", ceb_strerror(rc), err);
	return ev;
}

int fixture_headers_add(void *arg, const char *name, const char *value)
{
	struct fixture_headers *hs = arg;

	if (hs->n == FIXTURE_MAX_HEADERS)
		return CEB_ETOOBIG;
	hs->h[hs->n].name = strdup(name);
	hs->h[hs->n].value = strdup(value);
	if (!hs->h[hs->n].name || !hs->h[hs->n].value)
		return CEB_ENOMEM;
	hs->n++;
	return 0;
}

void fixture_headers_free(struct fixture_headers *hs)
{
	for (size_t i = 0; i < hs->n; i++) {
		free((char *)hs->h[i].name);
		free((char *)hs->h[i].value);
	}
	hs->n = 0;
}

const char *fixture_header(const struct fixture_headers *hs, const char *name)
{
	for (size_t i = 0; i < hs->n; i++)
		if (strcasecmp(hs->h[i].name, name) == 0)
			return hs->h[i].value;
	return NULL;
}

int fixture_http_roundtrip(const struct ceb_event *ev, enum ceb_http_mode mode,
			   struct ceb_event **out, char *errbuf, size_t errlen)
{
	struct fixture_headers hs = { 0 };
	struct ceb_buf body = CEB_BUF_INIT;
	struct ceb_http_request req = { 0 };
	struct ceb_event **evs = NULL;
	enum ceb_http_mode got;
	size_t n = 0;
	int rc;

	rc = ceb_http_encode_headers(ev, mode, fixture_headers_add, &hs);
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
	rc = ceb_http_decode(&req, NULL, &evs, &n, &got, errbuf, errlen);
	if (rc)
		goto out;
	ck_assert_int_eq(got, mode);
	ck_assert_uint_eq(n, 1);
	*out = evs[0];
	free(evs);
out:
	fixture_headers_free(&hs);
	ceb_buf_free(&body);
	return rc;
}

bool fixture_equal_after_binary(const struct ceb_event *orig, const struct ceb_event *back)
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
