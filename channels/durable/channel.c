/* The durable channel: events kept on local disk inside the daemon (store.c, SQLite in WAL mode).
 * One writer thread stores what arrived together in one transaction, one sync, then answers every
 * publish of it and hands it to the subscriptions that are caught up; one reader thread hands the
 * others the events from their own position on; settled positions are written with a later
 * transaction (every 100 ms), so a crash redelivers, never loses. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/durable/internal.h"

uint64_t dur_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t dur_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The first position a subscription has not settled: its next, or an older message out. */
uint64_t dur_sub_pos(const struct dur_sub *sub)
{
	uint64_t pos = sub->next;

	for (const struct dur_msg *m = sub->msgs; m; m = m->next)
		if (m->seq < pos)
			pos = m->seq;
	return pos;
}

uint64_t dur_min_pos(const struct dur_channel *dc)
{
	uint64_t pos = dc->last + 1;

	for (size_t i = 0; i < dc->nsubs; i++) {
		uint64_t p = dur_sub_pos(dc->subs[i]);
		if (p < pos)
			pos = p;
	}
	return pos;
}

static void dur_stop(void *ctx);

/* ---- create, subscribe, destroy ---- */

static int dur_create(const struct ceb_channel_cfg *cfg, void **ctx, char *errbuf, size_t errlen)
{
	struct dur_channel *dc = calloc(1, sizeof(*dc));
	const struct ceb_msg_channel *mc = NULL;
	int rc;

	if (!dc || !(dc->cache = calloc(CACHE_SLOTS, sizeof(*dc->cache)))) {
		free(dc);
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	pthread_mutex_init(&dc->lock, NULL);
	pthread_mutex_init(&dc->wlock, NULL);
	pthread_cond_init(&dc->wake_writer, NULL);
	pthread_cond_init(&dc->wake_reader, NULL);
	pthread_cond_init(&dc->wake_ckpt, NULL);
	snprintf(dc->label, sizeof(dc->label), "channel %s/%s", cfg->ns, cfg->name);
	snprintf(dc->ns, sizeof(dc->ns), "%s", cfg->ns);
	snprintf(dc->name, sizeof(dc->name), "%s", cfg->name);
	dc->qtail = &dc->queue;
	dc->set.retention_ms = CEB_DURABLE_RETENTION_MS;
	dc->set.retention_bytes = CEB_DURABLE_RETENTION_BYTES;
	if (cfg->kind && !strcmp(cfg->kind, CEB_DURABLE_CHANNEL_KIND))
		mc = cfg->spec;
	if (mc && mc->backend_spec)
		dc->set = *(const struct ceb_durable_channel_cfg *)mc->backend_spec;
	dc->state_dir = cfg->state_dir && cfg->state_dir[0] ? cfg->state_dir : ".";
	*ctx = dc;
	rc = dur_store_open(&dc->wst, dc->state_dir, cfg->ns, cfg->name, dc->set.sync_os, errbuf,
	                    errlen);
	if (rc == 0)
		rc = dur_store_open(&dc->rst, dc->state_dir, cfg->ns, cfg->name, dc->set.sync_os,
		                    errbuf, errlen);
	if (rc == 0)
		rc = dur_store_open(&dc->cst, dc->state_dir, cfg->ns, cfg->name, dc->set.sync_os,
		                    errbuf, errlen);
	if (rc == 0)
		dur_store_manual_checkpoints(&dc->wst);
	if (rc == 0 && dur_store_bounds(&dc->wst, &dc->first, &dc->last, &dc->bytes) != 0) {
		snprintf(errbuf, errlen, "cannot read %s: %s", dc->wst.path,
		         dur_store_errmsg(&dc->wst));
		rc = CEB_EIO;
	}
	if (rc < 0) {
		*ctx = NULL;
		dur_store_close(&dc->wst);
		dur_store_close(&dc->rst);
		dur_store_close(&dc->cst);
		free(dc->cache);
		free(dc);
		return rc;
	}
	dc->last_ts = (int64_t)dur_now_ms();
	CEB_LOG_INFO(dc->label, "durable in %s: events %llu..%llu stored (%llu bytes)",
	             dc->wst.path, (unsigned long long)dc->first, (unsigned long long)dc->last,
	             (unsigned long long)dc->bytes);
	return 0;
}

static int dur_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out)
{
	struct dur_channel *dc = ctx;
	struct dur_sub *sub, **subs;
	uint64_t pos;

	if (dc->started)
		return CEB_ESTATE;
	sub = calloc(1, sizeof(*sub));
	subs = realloc(dc->subs, (dc->nsubs + 1) * sizeof(*subs));
	if (!sub || !subs) {
		free(sub);
		if (subs)
			dc->subs = subs;
		return CEB_ENOMEM;
	}
	dc->subs = subs;
	sub->cfg = *cfg;
	if (sub->cfg.max_inflight == 0)
		sub->cfg.max_inflight = 1;
	/* No partitions: ordered means one in flight for the whole subscription, in order. */
	if (sub->cfg.ordered)
		sub->cfg.max_inflight = 1;
	snprintf(sub->key, sizeof(sub->key), "%s/%s", cfg->ns, cfg->name);
	/* A subscription seen before goes on where it stopped; a new one starts with what comes
	 * after it (a new Trigger does not get the history: replay gives it that). */
	if (dur_store_get_pos(&dc->wst, sub->key, &pos)) {
		if (pos < dc->first) {
			/* positions on disk are settled ones: what lies before `first` was deleted
			 * by age before it was settled (handed and not settled when the daemon
			 * stopped or crashed) */
			CEB_LOG_WARN(dc->label,
			             "retention deleted events %llu..%llu before subscription %s "
			             "settled them: they are lost to it",
			             (unsigned long long)pos, (unsigned long long)dc->first - 1,
			             sub->key);
			dc->dropped += dc->first - pos;
		}
		sub->next = pos < dc->first ? dc->first : pos;
	} else
		sub->next = dc->last + 1;
	if (sub->next > dc->last + 1)
		sub->next = dc->last + 1;
	dc->dirty = true;
	dc->subs[dc->nsubs++] = sub;
	*out = sub;
	return 0;
}

static void dur_destroy(void *ctx)
{
	struct dur_channel *dc = ctx;

	if (!dc)
		return;
	dur_stop(dc);
	/* Positions settled since the last transaction (the dispatchers gave back their messages
	 * after stop). */
	if (dc->dirty && dc->wst.db && dur_store_begin(&dc->wst) == 0) {
		for (size_t i = 0; i < dc->nsubs; i++)
			dur_store_set_pos(&dc->wst, dc->subs[i]->key, dur_sub_pos(dc->subs[i]));
		if (dur_store_commit(&dc->wst) != 0)
			dur_store_rollback(&dc->wst);
	}
	for (size_t i = 0; i < dc->nsubs; i++) {
		struct dur_sub *sub = dc->subs[i];
		while (sub->msgs) {
			struct dur_msg *m = sub->msgs;
			sub->msgs = m->next;
			ceb_event_unref(m->ev);
			free(m);
		}
		free(sub);
	}
	free(dc->subs);
	while (dc->queue) {
		struct dur_pub *p = dc->queue;
		dc->queue = p->next;
		p->status = CEB_EUNAVAIL;
		dur_pub_complete(p);
	}
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		ceb_event_unref(dc->cache[i].ev);
	free(dc->cache);
	dur_store_close(&dc->wst);
	dur_store_close(&dc->rst);
	dur_store_close(&dc->cst);
	pthread_cond_destroy(&dc->wake_writer);
	pthread_cond_destroy(&dc->wake_reader);
	pthread_cond_destroy(&dc->wake_ckpt);
	pthread_mutex_destroy(&dc->lock);
	pthread_mutex_destroy(&dc->wlock);
	free(dc);
}

/* ---- start, stop, the optional operations ---- */

static int dur_start(void *ctx, char *errbuf, size_t errlen)
{
	struct dur_channel *dc = ctx;
	bool w, r = false, c = false;

	dc->started = true;
	w = pthread_create(&dc->writer, NULL, dur_writer_main, dc) == 0;
	r = w && pthread_create(&dc->reader, NULL, dur_reader_main, dc) == 0;
	c = r && pthread_create(&dc->ckpt, NULL, dur_ckpt_main, dc) == 0;
	if (c) {
		/* names that top -H, perf and tests/bench/bench_durable --threads show */
		pthread_setname_np(dc->writer, "ceb-dur-writer");
		pthread_setname_np(dc->reader, "ceb-dur-reader");
		pthread_setname_np(dc->ckpt, "ceb-dur-ckpt");
		return 0;
	}
	pthread_mutex_lock(&dc->lock);
	dc->stopping = true;
	pthread_cond_signal(&dc->wake_writer);
	pthread_cond_broadcast(&dc->wake_reader);
	pthread_mutex_unlock(&dc->lock);
	if (w)
		pthread_join(dc->writer, NULL);
	if (r)
		pthread_join(dc->reader, NULL);
	dc->started = false;
	snprintf(errbuf, errlen, "cannot start the channel's threads");
	return CEB_ENOMEM;
}

static void dur_stop(void *ctx)
{
	struct dur_channel *dc = ctx;
	bool join;

	pthread_mutex_lock(&dc->lock);
	join = dc->started && !dc->stopping;
	dc->stopping = true;
	pthread_cond_signal(&dc->wake_writer);
	pthread_cond_broadcast(&dc->wake_reader);
	pthread_cond_signal(&dc->wake_ckpt);
	pthread_mutex_unlock(&dc->lock);
	if (join) {
		/* the writer stores what is queued, then ends */
		pthread_join(dc->writer, NULL);
		pthread_join(dc->reader, NULL);
		pthread_join(dc->ckpt, NULL);
		if (dc->commits)
			CEB_LOG_INFO(dc->label, "%llu events in %llu syncs (%.1f per sync)",
			             (unsigned long long)dc->committed_events,
			             (unsigned long long)dc->commits,
			             (double)dc->committed_events / (double)dc->commits);
	}
	pthread_mutex_lock(&dc->lock);
	dc->stopped = true;
	pthread_mutex_unlock(&dc->lock);
}

static size_t dur_pending(void *ctx)
{
	struct dur_channel *dc = ctx;
	size_t n = 0;

	/* What a drain waits for: messages out with the dispatchers. The rest is on disk. */
	pthread_mutex_lock(&dc->lock);
	for (size_t i = 0; i < dc->nsubs; i++)
		n += dc->subs[i]->inflight;
	pthread_mutex_unlock(&dc->lock);
	return n;
}

static uint64_t dur_retention_dropped(void *ctx)
{
	struct dur_channel *dc = ctx;
	uint64_t n;

	pthread_mutex_lock(&dc->lock);
	n = dc->dropped;
	pthread_mutex_unlock(&dc->lock);
	return n;
}

static int dur_rewind(void *ctx, void *subp, int64_t since_ms, int64_t offset, uint64_t *first,
                      uint64_t *count, char *errbuf, size_t errlen)
{
	struct dur_channel *dc = ctx;
	struct dur_sub *sub = subp;
	uint64_t lo, hi, target;
	int rc;

	pthread_mutex_lock(&dc->lock);
	lo = dc->first;
	hi = dc->last;
	pthread_mutex_unlock(&dc->lock);
	if (since_ms >= 0) {
		rc = dur_store_find_time(dc->state_dir, dc->ns, dc->name, since_ms, lo, hi, &target,
		                         errbuf, errlen);
		if (rc < 0)
			return rc;
	} else {
		if (offset < 0) {
			snprintf(errbuf, errlen, "offset %lld is negative", (long long)offset);
			return CEB_EINVAL;
		}
		target = (uint64_t)offset < lo ? lo : (uint64_t)offset;
	}
	pthread_mutex_lock(&dc->lock);
	if (dc->stopping) {
		pthread_mutex_unlock(&dc->lock);
		snprintf(errbuf, errlen, "the channel is stopping");
		return CEB_EUNAVAIL;
	}
	if (target > dc->last + 1)
		target = dc->last + 1;
	if (target < dc->first)
		target = dc->first;
	sub->next = target;
	*first = target;
	*count = dc->last + 1 - target;
	dc->dirty = true;
	dc->persist_now = true; /* the rewind is answered: a crash must not forget it */
	CEB_LOG_INFO(dc->label, "subscription %s rewound to position %llu (%llu events to deliver)",
	             sub->key, (unsigned long long)target, (unsigned long long)*count);
	pthread_cond_signal(&dc->wake_reader);
	pthread_cond_signal(&dc->wake_writer);
	pthread_mutex_unlock(&dc->lock);
	return 0;
}

const struct channel_ops ceb_channel_durable = {
        .name = "durable",
        .flags = CEB_CHANNEL_DURABLE | CEB_CHANNEL_IN_MEMORY | CEB_CHANNEL_BATCH_ATOMIC,
        .create = dur_create,
        .destroy = dur_destroy,
        .start = dur_start,
        .publish = dur_publish,
        .publish_batch = dur_publish_batch,
        .subscribe = dur_subscribe,
        .settle = dur_settle,
        .pending = dur_pending,
        .stop = dur_stop,
        .rewind = dur_rewind,
        .retention_dropped = dur_retention_dropped,
};
