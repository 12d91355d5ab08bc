/* The memory channel: a bounded, non-durable store like Knative's InMemoryChannel. Publish applies the
 * Trigger index once and queues the shared event on the subscriptions it matches; nothing survives a
 * restart, a full channel answers CEB_EFULL (429) rather than grow, and a batch is stored whole or
 * not at all. */
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "broker/log.h"
#include "channels/channel.h"

/* Events up to this wire size are kept packed (ceb_event_pack: their bytes and no pointers, about
 * half of what the event itself costs); larger ones are kept as they came, whose data buffer
 * outweighs the difference and would cost a copy. */
#define PACK_MAX 4096

/* One stored event, referenced from every subscription queue it was routed to. A small event is
 * kept packed in the entry itself (one allocation) and unpacked when it is first handed out: the
 * subscriptions that hold it at the same time share that one event, which is dropped once none
 * holds it any more. */
struct mem_entry {
	struct mem_entry *prev, *next; /* every live entry, so that destroy finds those in flight */
	struct ceb_event *ev; /* the event while handed out, or always when not packed; else NULL */
	size_t size;          /* ceb_event_size(), for the channel's byte bound */
	uint32_t pending;     /* subscriptions that have not settled it yet */
	uint32_t out;         /* handed out and not settled yet */
	uint32_t plen;        /* bytes of packed (0: not packed) */
	unsigned char packed[];
};

/* A FIFO of entries waiting to be handed to one subscription. */
struct mem_sub {
	struct ceb_sub_cfg cfg;
	struct mem_entry **ring;
	size_t cap, head, count;
	size_t inflight;
	size_t lost;
	size_t want; /* entries a batch being stored will queue here (under the channel's lock) */
	bool gone;   /* unsubscribed: routed nothing more */
	bool unindexed; /* gone and out of the index, which no longer reads its filter */
};

struct mem_channel {
	pthread_mutex_t lock;
	char label[300];
	size_t max_events, max_bytes;
	size_t events, bytes;
	struct mem_sub **subs;
	size_t nsubs;
	struct ceb_filter_index *idx;
	struct mem_entry *live;
	int started;
	int stopped; /* no more publishes, nothing more handed out */
};

static void entry_link(struct mem_channel *mc, struct mem_entry *e)
{
	e->prev = NULL;
	e->next = mc->live;
	if (mc->live)
		mc->live->prev = e;
	mc->live = e;
}

/* Unlink, drop the channel's reference and free. */
static void entry_free(struct mem_channel *mc, struct mem_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		mc->live = e->next;
	if (e->next)
		e->next->prev = e->prev;
	ceb_event_unref(e->ev);
	free(e);
}

/* A new entry holding ev: packed when small, else a reference. NULL when out of memory. */
static struct mem_entry *entry_new(struct ceb_event *ev, size_t size)
{
	size_t plen = size <= PACK_MAX ? ceb_event_packed_size(ev) : 0;
	struct mem_entry *e = malloc(sizeof(*e) + plen);

	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->size = size;
	e->plen = (uint32_t)plen;
	if (plen)
		ceb_event_pack(ev, e->packed);
	else
		e->ev = ceb_event_ref(ev);
	return e;
}

/* Frees an entry that was never stored; accepts NULL. */
static void entry_discard(struct mem_entry *e)
{
	if (e)
		ceb_event_unref(e->ev);
	free(e);
}

/* The event of an entry being handed out, with a reference for the consumer; NULL when out of
 * memory for unpacking it. Called with the lock held. */
static struct ceb_event *entry_take(struct mem_entry *e)
{
	if (!e->ev && !(e->ev = ceb_event_unpack(e->packed, e->plen)))
		return NULL;
	e->out++;
	return ceb_event_ref(e->ev);
}

/* A consumer settled the entry: a packed entry drops its event once nobody holds it. Called
 * with the lock held. */
static void entry_return(struct mem_entry *e)
{
	if (--e->out == 0 && e->plen) {
		ceb_event_unref(e->ev);
		e->ev = NULL;
	}
}

static int mem_create(const struct ceb_channel_cfg *cfg, void **ctx, char *errbuf, size_t errlen)
{
	struct mem_channel *mc = calloc(1, sizeof(*mc));

	if (!mc) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	pthread_mutex_init(&mc->lock, NULL);
	snprintf(mc->label, sizeof(mc->label), "channel %s/%s", cfg->ns, cfg->name);
	mc->max_events = cfg->max_events ? cfg->max_events : 100000;
	mc->max_bytes = cfg->max_bytes ? cfg->max_bytes : (size_t)256 << 20;
	*ctx = mc;
	return 0;
}

static void mem_destroy(void *ctx)
{
	struct mem_channel *mc = ctx;

	if (!mc)
		return;
	/* Entries still queued or handed out and never settled: the consumers own their own
	 * references, the channel drops its own. */
	while (mc->live)
		entry_free(mc, mc->live);
	for (size_t i = 0; i < mc->nsubs; i++) {
		free(mc->subs[i]->ring);
		free(mc->subs[i]);
	}
	free(mc->subs);
	ceb_filter_index_free(mc->idx);
	pthread_mutex_destroy(&mc->lock);
	free(mc);
}

static int mem_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out)
{
	struct mem_channel *mc = ctx;
	struct mem_sub *sub, **subs;

	if (mc->started)
		return CEB_ESTATE;
	sub = calloc(1, sizeof(*sub));
	subs = realloc(mc->subs, (mc->nsubs + 1) * sizeof(*subs));
	if (!sub || !subs) {
		free(sub);
		if (subs)
			mc->subs = subs;
		return CEB_ENOMEM;
	}
	sub->cfg = *cfg;
	if (sub->cfg.max_inflight == 0)
		sub->cfg.max_inflight = 1;
	/* The memory channel keeps no partitions: ordered means one in flight per Trigger. */
	if (sub->cfg.ordered)
		sub->cfg.max_inflight = 1;
	mc->subs = subs;
	mc->subs[mc->nsubs++] = sub;
	*out = sub;
	return 0;
}

static int mem_start(void *ctx, char *errbuf, size_t errlen)
{
	struct mem_channel *mc = ctx;

	mc->idx = ceb_filter_index_new();
	if (!mc->idx)
		goto nomem;
	for (size_t i = 0; i < mc->nsubs; i++)
		if (!mc->subs[i]->gone &&
		    ceb_filter_index_add(mc->idx, mc->subs[i]->cfg.filter, mc->subs[i]) < 0)
			goto nomem;
	mc->started = 1;
	return 0;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	return CEB_ENOMEM;
}

/* Hand queued entries to the subscription while it has credit. Called with the lock held. */
static void sub_pump(struct mem_channel *mc, struct mem_sub *sub)
{
	while (!mc->stopped && sub->count && sub->inflight < sub->cfg.max_inflight) {
		struct mem_entry *e = sub->ring[sub->head];
		struct ceb_event *ev = entry_take(e);

		if (!ev)
			break; /* out of memory: it stays queued, the next settle or publish tries again */
		sub->head = (sub->head + 1) % sub->cap;
		sub->count--;
		sub->inflight++;
		sub->cfg.on_msg(sub->cfg.arg, ev, e);
	}
}

/* Make room for `more` entries in the subscription's queue. */
static int sub_grow(struct mem_sub *sub, size_t more)
{
	size_t ncap = sub->cap ? sub->cap : 64;
	struct mem_entry **ring;

	if (sub->count + more <= sub->cap)
		return 0;
	while (ncap < sub->count + more)
		ncap *= 2;
	ring = malloc(ncap * sizeof(*ring));
	if (!ring)
		return CEB_ENOMEM;
	for (size_t k = 0; k < sub->count; k++)
		ring[k] = sub->ring[(sub->head + k) % sub->cap];
	free(sub->ring);
	sub->ring = ring;
	sub->cap = ncap;
	sub->head = 0;
	return 0;
}

static int sub_push(struct mem_sub *sub, struct mem_entry *e)
{
	if (sub_grow(sub, 1) < 0)
		return CEB_ENOMEM;
	sub->ring[(sub->head + sub->count) % sub->cap] = e;
	sub->count++;
	return 0;
}

struct route_ctx {
	struct mem_channel *mc;
	struct mem_entry *e;
	int err;
};

static int route_one(void *arg, void *item)
{
	struct route_ctx *rc = arg;
	struct mem_sub *sub = item;

	if (sub->gone)
		return 0;
	if (sub_push(sub, rc->e) < 0) {
		rc->err = CEB_ENOMEM;
		return 1;
	}
	rc->e->pending++;
	sub_pump(rc->mc, sub);
	return 0;
}

static void mem_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg)
{
	struct mem_channel *mc = ctx;
	struct route_ctx rc = {mc, NULL, 0};
	size_t size = ceb_event_size(ev);
	struct mem_entry *e = size <= mc->max_bytes ? entry_new(ev, size) : NULL;
	int status = 0;

	/* Packed before taking the lock: the ingress threads copy in parallel. */
	pthread_mutex_lock(&mc->lock);
	if (!mc->started || mc->stopped) {
		status = CEB_EUNAVAIL;
		goto out;
	}
	if (size > mc->max_bytes) {
		/* It would not fit an empty channel either: 413, not a 429 to retry forever. */
		status = CEB_ETOOBIG;
		goto out;
	}
	if (mc->events + 1 > mc->max_events || mc->bytes + size > mc->max_bytes) {
		status = CEB_EFULL;
		goto out;
	}
	if (!e) {
		status = CEB_EFULL;
		goto out;
	}
	rc.e = e;
	e = NULL;
	entry_link(mc, rc.e);
	mc->events++;
	mc->bytes += size;
	/* Settle cannot run before we return (it takes the lock), so handing the entry out while
	 * routing is safe. */
	ceb_filter_index_match(mc->idx, ev, route_one, &rc);
	if (rc.err) {
		/* Out of memory half-way: the event was queued on some subscriptions and is kept there;
		 * the sender still gets a failure and may send it again (at-least-once allows that). */
		status = CEB_EFULL;
	}
	if (rc.e->pending == 0) {
		/* No Trigger matches: accepted and dropped, as Knative does. */
		mc->events--;
		mc->bytes -= size;
		entry_free(mc, rc.e);
	}
out:
	pthread_mutex_unlock(&mc->lock);
	entry_discard(e);
	done(arg, status);
}

static int count_one(void *arg, void *item)
{
	struct mem_sub *sub = item;

	(void)arg;
	if (!sub->gone)
		sub->want++;
	return 0;
}

/* Queue an entry whose room sub_grow() reserved: cannot fail, and hands nothing out yet. */
static int push_reserved(void *arg, void *item)
{
	struct mem_entry *e = arg;
	struct mem_sub *sub = item;

	if (sub->gone)
		return 0;
	sub->ring[(sub->head + sub->count) % sub->cap] = e;
	sub->count++;
	e->pending++;
	return 0;
}

/* A batch is stored whole or not at all, so that a sender that retries a refused batch never causes
 * duplicates: the room for every event is checked, every entry allocated and every queue grown
 * before the first event is queued, and nothing is handed out before the last one is. */
static void mem_publish_batch(void *ctx, struct ceb_event *const *evs, size_t n,
                              ceb_batch_done_f *done, void *arg)
{
	struct mem_channel *mc = ctx;
	struct mem_entry **es = calloc(n, sizeof(*es));
	size_t bytes = 0, i;
	int status = 0;

	for (i = 0; es && i < n; i++) {
		es[i] = entry_new(evs[i], ceb_event_size(evs[i]));
		if (!es[i])
			break;
		bytes += es[i]->size;
	}
	pthread_mutex_lock(&mc->lock);
	if (!mc->started || mc->stopped) {
		status = CEB_EUNAVAIL;
		goto out;
	}
	if (!es || i < n) {
		status = CEB_EFULL; /* out of memory, as for one event */
		goto out;
	}
	if (n > mc->max_events || bytes > mc->max_bytes) {
		status = CEB_ETOOBIG; /* not even into an empty channel */
		goto out;
	}
	if (mc->events + n > mc->max_events || mc->bytes + bytes > mc->max_bytes) {
		status = CEB_EFULL;
		goto out;
	}
	for (i = 0; i < n; i++)
		ceb_filter_index_match(mc->idx, evs[i], count_one, NULL);
	for (size_t k = 0; k < mc->nsubs; k++) {
		if (mc->subs[k]->want && sub_grow(mc->subs[k], mc->subs[k]->want) < 0) {
			status = CEB_EFULL;
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		struct mem_entry *e = es[i];

		es[i] = NULL;
		entry_link(mc, e);
		ceb_filter_index_match(mc->idx, evs[i], push_reserved, e);
		if (e->pending == 0) {
			/* No Trigger matches: accepted and dropped, as Knative does. */
			entry_free(mc, e);
			continue;
		}
		mc->events++;
		mc->bytes += e->size;
	}
	/* Settle cannot run before we unlock, so handing out now cannot free what we still use. */
	for (size_t k = 0; k < mc->nsubs; k++)
		if (mc->subs[k]->want)
			sub_pump(mc, mc->subs[k]);
out:
	for (size_t k = 0; k < mc->nsubs; k++)
		mc->subs[k]->want = 0;
	pthread_mutex_unlock(&mc->lock);
	for (i = 0; es && i < n; i++)
		entry_discard(es[i]); /* entries that were never stored */
	free(es);
	done(arg, status, NULL, n);
}

static void mem_settle(void *ctx, void *subp, void *handle, enum ceb_settle how)
{
	struct mem_channel *mc = ctx;
	struct mem_sub *sub = subp;
	struct mem_entry *e = handle;

	pthread_mutex_lock(&mc->lock);
	sub->inflight--;
	entry_return(e);
	if (how == CEB_SETTLE_FAILED)
		sub->lost++;
	if (--e->pending == 0) {
		mc->events--;
		mc->bytes -= e->size;
		entry_free(mc, e);
	}
	sub_pump(mc, sub);
	pthread_mutex_unlock(&mc->lock);
}

static size_t mem_pending(void *ctx)
{
	struct mem_channel *mc = ctx;
	size_t n;

	pthread_mutex_lock(&mc->lock);
	n = mc->events;
	pthread_mutex_unlock(&mc->lock);
	return n;
}

/* A subscription added while the channel runs (a reload): routed what is published from now on. */
static int mem_subscribe_live(void *ctx, const struct ceb_sub_cfg *cfg, void **out)
{
	struct mem_channel *mc = ctx;
	struct mem_sub *sub = calloc(1, sizeof(*sub)), **subs;
	int rc = CEB_ENOMEM;

	if (!sub)
		return CEB_ENOMEM;
	sub->cfg = *cfg;
	if (sub->cfg.max_inflight == 0 || sub->cfg.ordered)
		sub->cfg.max_inflight = 1;
	pthread_mutex_lock(&mc->lock);
	subs = realloc(mc->subs, (mc->nsubs + 1) * sizeof(*subs));
	if (!subs)
		goto out;
	mc->subs = subs;
	if (mc->idx && ceb_filter_index_add(mc->idx, sub->cfg.filter, sub) < 0)
		goto out;
	mc->subs[mc->nsubs++] = sub;
	*out = sub;
	sub = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&mc->lock);
	free(sub);
	return rc;
}

/* The index again without the subscriptions gone, whose filters belong to configurations about to
 * be freed. Called with the lock held. */
static void reindex(struct mem_channel *mc)
{
	struct ceb_filter_index *idx = mc->idx ? ceb_filter_index_new() : NULL;

	for (size_t i = 0; idx && i < mc->nsubs; i++)
		if (!mc->subs[i]->gone &&
		    ceb_filter_index_add(idx, mc->subs[i]->cfg.filter, mc->subs[i]) < 0) {
			ceb_filter_index_free(idx);
			return; /* out of memory: the next call tries again */
		}
	if (idx) {
		ceb_filter_index_free(mc->idx);
		mc->idx = idx;
	}
	if (idx || !mc->idx)
		for (size_t i = 0; i < mc->nsubs; i++)
			if (mc->subs[i]->gone)
				mc->subs[i]->unindexed = true;
}

/* A subscription removed while the channel runs: nothing more is routed to it, what it queued is
 * still handed out; it is freed once all of it was settled and the index no longer holds it. */
static size_t mem_unsubscribe(void *ctx, void *subp)
{
	struct mem_channel *mc = ctx;
	struct mem_sub *sub = subp;
	size_t n;

	pthread_mutex_lock(&mc->lock);
	sub->gone = true;
	if (!sub->unindexed)
		reindex(mc);
	n = sub->count + sub->inflight + !sub->unindexed;
	if (n == 0) { /* nothing refers to it any more: gone for good */
		for (size_t i = 0; i < mc->nsubs; i++)
			if (mc->subs[i] == sub) {
				mc->subs[i] = mc->subs[--mc->nsubs];
				break;
			}
		free(sub->ring);
		free(sub);
	}
	pthread_mutex_unlock(&mc->lock);
	return n;
}

static void mem_stop(void *ctx)
{
	struct mem_channel *mc = ctx;

	pthread_mutex_lock(&mc->lock);
	mc->stopped = 1;
	pthread_mutex_unlock(&mc->lock);
}

/* Not CEB_CHANNEL_IN_MEMORY: the channel packs what it keeps, so a publisher's compact copy
 * would only be copied again. */
const struct channel_ops ceb_channel_memory = {
        .name = "memory",
        .flags = CEB_CHANNEL_PREFILTERS | CEB_CHANNEL_BATCH_ATOMIC,
        .create = mem_create,
        .destroy = mem_destroy,
        .start = mem_start,
        .publish = mem_publish,
        .publish_batch = mem_publish_batch,
        .subscribe = mem_subscribe,
        .subscribe_live = mem_subscribe_live,
        .unsubscribe = mem_unsubscribe,
        .settle = mem_settle,
        .pending = mem_pending,
        .stop = mem_stop,
};
