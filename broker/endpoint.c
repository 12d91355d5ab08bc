/* The runtime model's shared services: the default settings, finding an endpoint by its path,
 * publishing into an endpoint's channel with the loop guard, and telling the daemon's own requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/endpoint.h"
#include "broker/error.h"

const struct ceb_settings ceb_settings_default = {
        .listen_host = "127.0.0.1",
        .listen_port = 8080,
        .limits =
                {
                        .max_event_size = 1 << 20,
                        .max_attrs = 64,
                        .max_value_len = 4096,
                        .max_json_depth = 64,
                        .max_batch = 100,
                },
        .max_header_block = 16 * 1024,
        .max_connections = 10000,
        .max_conn_per_ip = 0,
        .idle_timeout_s = 15,
        .request_timeout_s = 30,
        .ingress_threads = 2,
        .dispatchers = 2,
        .max_inflight = 100,
        .default_timeout_ms = 30000,
        .drain_timeout_ms = 30000,
        .channel_max_events = 100000,
        .channel_max_bytes = (size_t)256 << 20,
        .max_ttl = 255,
};

struct ceb_endpoint *ceb_endpoint_find(struct ceb_daemon *dmn, const char *path, size_t len)
{
	for (struct ceb_endpoint *brk = dmn->brokers; brk; brk = brk->next)
		if (brk->path[0] && strlen(brk->path) == len && memcmp(brk->path, path, len) == 0)
			return brk;
	return NULL;
}

/* Events up to this wire size are stored as an exact-size copy in the memory channel. */
#define COMPACT_MAX 4096

/* The event as the channel stores it: the loop guard applied, compacted for an in-memory channel.
 * Returns a new reference, or NULL when out of memory. */
static struct ceb_event *to_store(struct ceb_endpoint *brk, struct ceb_event *ev)
{
	struct ceb_event *stored = NULL;

	/* A KafkaSink stores events as they come; only a Broker counts hops. */
	if (brk->cfg && !ceb_event_get(ev, "knativebrokerttl") &&
	    ceb_event_set_int(ev, "knativebrokerttl", brk->dmn->set.max_ttl) < 0)
		return NULL;
	/* A decoded event sits in an arena sized for any event (about 1.2 KiB). The memory channel
	 * may hold 100 000 of them, so it gets a copy without the slack: a 300-byte event then
	 * costs about 750 bytes instead of 1 250. Larger events keep their data in a buffer of
	 * their own, where the slack matters little and a copy would cost more. Without memory for
	 * the copy, the original does. */
	if (ceb_channel_has(&brk->ch, CEB_CHANNEL_IN_MEMORY) && ceb_event_size(ev) <= COMPACT_MAX)
		stored = ceb_event_clone(ev);
	return stored ? stored : ceb_event_ref(ev);
}

void ceb_endpoint_publish(struct ceb_endpoint *brk, struct ceb_event *ev, ceb_publish_done_f *done,
                          void *arg)
{
	struct ceb_event *stored = to_store(brk, ev);

	if (!stored) {
		done(arg, CEB_EUNAVAIL);
		return;
	}
	brk->ch.ops->publish(brk->ch.ctx, stored, done, arg);
	ceb_event_unref(stored);
}

void ceb_endpoint_publish_batch(struct ceb_endpoint *brk, struct ceb_event *const *evs, size_t n,
                                ceb_batch_done_f *done, void *arg)
{
	struct ceb_event **stored = calloc(n, sizeof(*stored));
	size_t i = 0;

	for (; stored && i < n; i++)
		if (!(stored[i] = to_store(brk, evs[i])))
			break;
	if (stored && i == n)
		ceb_channel_publish_batch(&brk->ch, stored, n, done, arg);
	else
		done(arg, CEB_EUNAVAIL, NULL, n); /* out of memory: nothing was published */
	for (size_t k = 0; stored && k < i; k++)
		ceb_event_unref(stored[k]);
	free(stored);
}

bool ceb_daemon_is_internal(const struct ceb_daemon *dmn, const char *value)
{
	unsigned char diff = 0;

	if (!value || strlen(value) != 32)
		return false;
	for (size_t i = 0; i < 32; i++) /* no early exit: the time says nothing about the token */
		diff |= (unsigned char)(value[i] ^ dmn->token[i]);
	return diff == 0;
}

unsigned ceb_daemon_read_begin(struct ceb_daemon *dmn)
{
	/* seq_cst: a reload that saw this slot empty after it switched epochs has made its changes
	 * visible before this reader reads a list (see broker/reload.c, synchronize). */
	unsigned e = atomic_load(&dmn->rcu_epoch) & 1;

	atomic_fetch_add(&dmn->rcu_readers[e], 1);
	return e;
}

void ceb_daemon_read_end(struct ceb_daemon *dmn, unsigned token)
{
	atomic_fetch_sub(&dmn->rcu_readers[token & 1], 1);
}
