/* libFuzzer target for the NATS binding: what a Trigger's pull consumer or a NatsSource reads off a
 * subject, as nats.c hands it over. The input is a message: header lines ("Name: value") up to the
 * first empty line, then the body (no empty line: a body alone, no headers). ceb_nats_decode and
 * ceb_nats_map_plain (JetStream and core NATS) must neither crash nor leak, and what they return must
 * be a valid event. */
#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ce/event.h"
#include "broker/error.h"
#include "channels/nats/binding.h"

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_nats: %s: %s\n", what, detail);
	abort();
}

static void check(struct ceb_event *ev, const char *what)
{
	char err[256];

	if (ceb_event_validate(ev, NULL, err, sizeof(err)) != 0)
		fail(what, err);
	ceb_event_unref(ev);
}

/* Each "Name: value" line of [p, end) as a header of m; lines without a colon are skipped. */
static void add_headers(natsMsg *m, const char *p, const char *end)
{
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *colon;
		size_t len = (size_t)((nl ? nl : end) - p);
		char line[4096];

		if (len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = '\0';
			if (strlen(line) == len && (colon = strchr(line, ':')) != NULL) {
				char *v = (char *)colon + 1;
				line[colon - line] = '\0';
				if (*v == ' ')
					v++;
				natsMsgHeader_Add(m, line, v);
			}
		}
		p += len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool opened;
	const char *in = (const char *)data, *sep = NULL;
	natsMsg *m = NULL;
	struct ceb_event *ev = NULL;
	size_t hlen = 0;
	char err[256];

	if (!opened) {
		nats_Open(-1);
		opened = true;
	}
	for (size_t i = 0; i + 1 < size; i++)
		if (in[i] == '\n' && in[i + 1] == '\n') {
			sep = in + i;
			break;
		}
	if (sep)
		hlen = (size_t)(sep - in);
	{
		const char *body = sep ? sep + 2 : in;
		size_t blen = size - (size_t)(body - in);
		if (blen > INT32_MAX ||
		    natsMsg_Create(&m, "default.fuzz.events", NULL, body, (int)blen) != NATS_OK)
			return 0;
	}
	if (sep)
		add_headers(m, in, in + hlen);
	if (ceb_nats_decode(m, &ev, err, sizeof(err)) == 0)
		check(ev, "a decoded event is not valid");
	ev = NULL;
	if (ceb_nats_map_plain(m, "default", "fuzz", "STREAM", 7, &ev) == 0)
		check(ev, "a mapped message is not a valid event (JetStream)");
	ev = NULL;
	if (ceb_nats_map_plain(m, "default", "fuzz", NULL, 0, &ev) == 0)
		check(ev, "a mapped message is not a valid event (core NATS)");
	natsMsg_Destroy(m);
	return 0;
}
