/* libFuzzer target for PingSource's cron parser and next fire times: the input's first line is a
 * schedule, an optional second line spec.timezone. A schedule that parses must give fire times
 * strictly after the instant asked about, and the first fire time after (t - 1) of a fire time t is
 * t itself; one that does not parse must say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sources/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Instants around DST transitions, leap days and year ends. */
static const int64_t instants[] = {
        1331445600, /* 2012-03-11T06:00:00Z, New York springs forward */
        1352008800, /* 2012-11-04T06:00:00Z, New York falls back */
        1456704000, /* 2016-02-29T00:00:00Z */
        1735689599, /* 2024-12-31T23:59:59Z */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec, *zone = NULL, *nl, err[256] = "";
	struct ceb_cron *c = NULL;
	int rc;

	if (size > 256)
		return 0;
	if (!(spec = malloc(size + 1)))
		abort();
	memcpy(spec, data, size);
	spec[size] = 0;
	if (strlen(spec) != size) /* a NUL inside: YAML text has none */
		goto out;
	if ((nl = strchr(spec, '\n'))) {
		*nl = 0;
		zone = nl + 1;
	}
	rc = ceb_cron_parse(spec, zone, &c, err, sizeof(err));
	if (rc != 0) {
		if (c || !err[0])
			abort();
		goto out;
	}
	for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
		int64_t t = ceb_cron_next(c, instants[i]);
		if (t == -1)
			continue;
		if (t <= instants[i] || ceb_cron_next(c, t - 1) != t)
			abort();
		/* the next one after that comes later still */
		int64_t u = ceb_cron_next(c, t);
		if (u != -1 && u <= t)
			abort();
	}
out:
	ceb_cron_free(c);
	free(spec);
	return 0;
}
