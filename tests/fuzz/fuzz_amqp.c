/* libFuzzer target for the AMQP binding: what a Trigger's consumer or a RabbitmqSource reads off a
 * queue, as rabbitmq-c hands it over. The input is a message: a 2-byte big-endian length, that many
 * bytes of basic properties in their wire form (the content header's flags and fields, which
 * rabbitmq-c decodes as it does a frame's), then the body. ceb_amqp_decode and ceb_amqp_map_message
 * must neither crash nor leak, and what they return must be a valid event. */
#include <amqp.h>
#include <amqp_framing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/ce/event.h"
#include "channels/amqp/binding.h"

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_amqp: %s: %s\n", what, detail);
	abort();
}

static void check(const struct ceb_event *ev, const char *what)
{
	char err[256];

	if (ceb_event_validate(ev, NULL, err, sizeof(err)) != 0)
		fail(what, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	amqp_pool_t pool;
	void *decoded = NULL;
	amqp_bytes_t enc, body;
	size_t plen;
	struct ceb_event *ev = NULL;
	char err[256];

	if (size < 2)
		return 0;
	plen = (size_t)data[0] << 8 | data[1];
	if (plen > size - 2)
		return 0;
	enc.bytes = (void *)(data + 2);
	enc.len = plen;
	body.bytes = (void *)(data + 2 + plen);
	body.len = size - 2 - plen;
	init_amqp_pool(&pool, 4096);
	if (amqp_decode_properties(AMQP_BASIC_CLASS, &pool, enc, &decoded) == 0 && decoded) {
		const amqp_basic_properties_t *props = decoded;

		(void)ceb_amqp_is_cloudevent(props);
		if (ceb_amqp_decode(props, &body, &ev, err, sizeof(err)) == 0) {
			check(ev, "a decoded event is not valid");
			ceb_event_unref(ev);
			ev = NULL;
		}
		if (ceb_amqp_map_message(props, &body, "default", "fuzz", "queue", &ev) == 0) {
			check(ev, "a mapped message is not a valid event");
			ceb_event_unref(ev);
		}
	}
	empty_amqp_pool(&pool);
	return 0;
}
