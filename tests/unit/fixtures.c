/* Helpers shared by the unit suites: fixture files, HTTP round trips, binary-mode equality. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/ce/json_format.h"
#include "tests/fuzz/roundtrip.h"
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

const char *fixture_header(const struct rt_headers *hs, const char *name)
{
	for (size_t i = 0; i < hs->n; i++)
		if (strcasecmp(hs->h[i].name, name) == 0)
			return hs->h[i].value;
	return NULL;
}

int fixture_http_roundtrip(const struct ceb_event *ev, enum ceb_http_mode mode,
                           struct ceb_event **out, char *errbuf, size_t errlen)
{
	enum ceb_http_mode got = mode;
	int rc = rt_http(ev, mode, NULL, out, &got, errbuf, errlen);

	if (rc == 0)
		ck_assert_int_eq(got, mode);
	return rc;
}

bool fixture_equal_after_binary(const struct ceb_event *orig, const struct ceb_event *back)
{
	return rt_equal_after_binary(orig, back);
}
