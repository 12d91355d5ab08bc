/* The durable channel: events kept on local disk inside the daemon (store.c, SQLite in WAL mode).
 * One writer thread stores what arrived together in one transaction, one sync, then answers every
 * publish of it (writer.c); one reader thread hands each subscription the events from its own
 * position on; settled positions are written with the next transaction, so a crash redelivers,
 * never loses. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/ce/json_format.h"
#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/channel.h"
#include "channels/durable/chan.h"
#include "channels/durable/durable.h"
#include "channels/durable/store.h"

#define READ_BATCH 256
#define RETRY_MS   1000 /* a message settled FAILED comes again after this */

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
	pthread_cond_init(&dc->wake_writer, NULL);
	pthread_cond_init(&dc->wake_reader, NULL);
	pthread_cond_init(&dc->wake_ckpt, NULL);
	pthread_cond_init(&dc->wake_sync, NULL);
	dc->walfd = -1;
	dc->ptail = &dc->pending;
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
	if (rc == 0 && !dc->set.sync_os)
		rc = dur_store_sync_by_caller(&dc->wst, &dc->walfd, errbuf, errlen);
	if (rc == 0 && dur_store_bounds(&dc->wst, &dc->first, &dc->last, &dc->bytes) != 0) {
		snprintf(errbuf, errlen, "cannot read %s: %s", dc->wst.path,
		         dur_store_errmsg(&dc->wst));
		rc = CEB_EIO;
	}
	if (rc < 0) {
		*ctx = NULL;
		if (dc->walfd >= 0)
			close(dc->walfd);
		dur_store_close(&dc->wst);
		dur_store_close(&dc->rst);
		dur_store_close(&dc->cst);
		free(dc->cache);
		free(dc);
		return rc;
	}
	dc->written = dc->last;
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
	if (dur_store_get_pos(&dc->wst, sub->key, &pos))
		sub->next = pos < dc->first ? dc->first : pos;
	else
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
	pthread_cond_destroy(&dc->wake_sync);
	if (dc->walfd >= 0)
		close(dc->walfd);
	pthread_mutex_destroy(&dc->lock);
	free(dc);
}

/* ---- publish ---- */

static void enqueue(struct dur_channel *dc, struct dur_pub *p)
{
	pthread_mutex_lock(&dc->lock);
	if (!dc->started || dc->stopping) {
		pthread_mutex_unlock(&dc->lock);
		p->status = CEB_EUNAVAIL;
		dur_pub_complete(p);
		return;
	}
	*dc->qtail = p;
	dc->qtail = &p->next;
	pthread_cond_signal(&dc->wake_writer);
	pthread_mutex_unlock(&dc->lock);
}

/* A publish record with each event encoded (in the sender's thread, not the writer's). */
static struct dur_pub *pub_new(struct ceb_event *const *evs, size_t n)
{
	struct dur_pub *p = calloc(1, sizeof(*p) + n * (sizeof(*p->evs) + sizeof(*p->enc)));

	if (!p)
		return NULL;
	p->evs = (struct ceb_event **)(p + 1);
	p->enc = (struct ceb_buf *)(p->evs + n);
	for (size_t i = 0; i < n; i++) {
		p->enc[i] = (struct ceb_buf)CEB_BUF_INIT;
		if (ceb_json_encode(evs[i], &p->enc[i]) < 0) {
			p->n = i + 1;
			dur_pub_free(p);
			return NULL;
		}
		p->evs[i] = ceb_event_ref(evs[i]);
		p->n = i + 1;
		p->bytes += p->enc[i].len;
	}
	return p;
}

static void dur_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg)
{
	struct dur_pub *p = pub_new(&ev, 1);

	if (!p) {
		done(arg, CEB_EFULL);
		return;
	}
	p->done1 = done;
	p->arg = arg;
	enqueue(ctx, p);
}

static void dur_publish_batch(void *ctx, struct ceb_event *const *evs, size_t n,
                              ceb_batch_done_f *done, void *arg)
{
	struct dur_pub *p = pub_new(evs, n);

	if (!p) {
		done(arg, CEB_EFULL, NULL, n);
		return;
	}
	p->doneb = done;
	p->arg = arg;
	enqueue(ctx, p);
}

/* ---- the reader: each subscription from its position ---- */

static const struct ceb_limits stored_limits = {
        .max_event_size = (size_t)1 << 30,
        .max_attrs = 4096,
        .max_value_len = (size_t)1 << 30,
        .max_json_depth = 4096,
        .max_batch = 1,
};

struct read_batch {
	struct dur_channel *dc;
	uint64_t seq[READ_BATCH];
	struct ceb_event *ev[READ_BATCH];
	size_t n;
};

static int read_row(void *arg, const struct dur_row *row)
{
	struct read_batch *rb = arg;
	char err[200];
	struct ceb_event *ev = NULL;

	if (ceb_json_decode(row->blob, row->size, &stored_limits, &ev, err, sizeof(err)) < 0) {
		/* Never written by us so: skipped, said once, rather than block the channel. */
		CEB_LOG_ERR(rb->dc->label, "event %llu in the store cannot be read (%s): skipped",
		            (unsigned long long)row->seq, err);
	}
	rb->seq[rb->n] = row->seq;
	rb->ev[rb->n++] = ev;
	return rb->n == READ_BATCH;
}

static void hand_out(struct dur_channel *dc, struct dur_sub *sub, struct dur_msg *m)
{
	m->due_ms = 0;
	sub->inflight++;
	sub->cfg.on_msg(sub->cfg.arg, ceb_event_ref(m->ev), m);
}

/* Hand out what a subscription has credit for; called with the lock held, which it may drop to
 * read from disk. Returns true if it did something. */
static bool pump(struct dur_channel *dc, struct dur_sub *sub, uint64_t now)
{
	bool did = false;

	if (sub->retries) {
		for (struct dur_msg *m = sub->msgs; m && sub->inflight < sub->cfg.max_inflight;
		     m = m->next) {
			if (m->due_ms && m->due_ms <= now) {
				sub->retries--;
				hand_out(dc, sub, m);
				did = true;
			}
		}
	}
	while (!dc->stopping && sub->inflight < sub->cfg.max_inflight && sub->next <= dc->last) {
		uint64_t s = sub->next;
		struct dur_cache_slot *c = &dc->cache[s % CACHE_SLOTS];
		struct ceb_event *ev = NULL;
		struct dur_msg *m;

		if (s < dc->first) {
			sub->next = dc->first;
			continue;
		}
		if (c->seq == s && c->ev) {
			ev = ceb_event_ref(c->ev);
		} else {
			/* From disk: a batch, without the lock (the writer goes on). */
			struct read_batch *rb = calloc(1, sizeof(*rb));
			size_t want = sub->cfg.max_inflight - sub->inflight, k = 0;
			uint64_t expect = s;

			if (!rb)
				break;
			rb->dc = dc;
			pthread_mutex_unlock(&dc->lock);
			dur_store_scan(&dc->rst, s, want < READ_BATCH ? want : READ_BATCH, true,
			               read_row, rb);
			pthread_mutex_lock(&dc->lock);
			/* Use what still applies: the subscription may have been rewound meanwhile. */
			for (; k < rb->n; k++) {
				if (sub->next != expect || dc->stopping ||
				    sub->inflight >= sub->cfg.max_inflight || rb->seq[k] > dc->last)
					break;
				sub->next = expect = rb->seq[k] + 1;
				if (!rb->ev[k] || !(m = calloc(1, sizeof(*m))))
					continue; /* unreadable: skipped (logged) */
				m->seq = rb->seq[k];
				m->ev = rb->ev[k];
				rb->ev[k] = NULL;
				m->next = sub->msgs;
				if (sub->msgs)
					sub->msgs->prev = m;
				sub->msgs = m;
				hand_out(dc, sub, m);
				did = true;
			}
			for (k = 0; k < rb->n; k++)
				ceb_event_unref(rb->ev[k]);
			free(rb);
			if (k == 0 && sub->next == s && s >= dc->first)
				break; /* nothing read: a read error; tried again on the next wake */
			continue;
		}
		m = calloc(1, sizeof(*m));
		if (!m) {
			ceb_event_unref(ev);
			break;
		}
		m->seq = s;
		m->ev = ev;
		m->next = sub->msgs;
		if (sub->msgs)
			sub->msgs->prev = m;
		sub->msgs = m;
		sub->next = s + 1;
		hand_out(dc, sub, m);
		did = true;
	}
	return did;
}

static void *reader_main(void *arg)
{
	struct dur_channel *dc = arg;

	pthread_mutex_lock(&dc->lock);
	while (!dc->stopping) {
		uint64_t now = dur_mono_ms();
		bool did = false, retrying = false;

		for (size_t i = 0; i < dc->nsubs && !dc->stopping; i++) {
			did |= pump(dc, dc->subs[i], now);
			retrying |= dc->subs[i]->retries > 0;
		}
		if (did || dc->stopping)
			continue;
		if (retrying) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&dc->wake_reader, &dc->lock, &ts);
		} else {
			pthread_cond_wait(&dc->wake_reader, &dc->lock);
		}
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}

static void dur_settle(void *ctx, void *subp, void *handle, enum ceb_settle how)
{
	struct dur_channel *dc = ctx;
	struct dur_sub *sub = subp;
	struct dur_msg *m = handle;

	pthread_mutex_lock(&dc->lock);
	sub->inflight--;
	if (how == CEB_SETTLE_FAILED && !dc->stopped) {
		/* kept, and handed out again later (after a restart at the latest) */
		m->due_ms = dur_mono_ms() + RETRY_MS;
		sub->retries++;
	} else if (how == CEB_SETTLE_FAILED) {
		m->due_ms = UINT64_MAX; /* stopped: stays unsettled, its position is written */
	} else {
		if (m->prev)
			m->prev->next = m->next;
		else
			sub->msgs = m->next;
		if (m->next)
			m->next->prev = m->prev;
		ceb_event_unref(m->ev);
		free(m);
		dc->dirty = true;
	}
	pthread_cond_signal(&dc->wake_reader);
	pthread_mutex_unlock(&dc->lock);
}

/* ---- start, stop, the optional operations ---- */

static int dur_start(void *ctx, char *errbuf, size_t errlen)
{
	struct dur_channel *dc = ctx;
	bool w, r = false, c = false;
	size_t ns = 0;

	dc->started = true;
	w = pthread_create(&dc->writer, NULL, dur_writer_main, dc) == 0;
	r = w && pthread_create(&dc->reader, NULL, reader_main, dc) == 0;
	c = r && pthread_create(&dc->ckpt, NULL, dur_ckpt_main, dc) == 0;
	while (c && dc->walfd >= 0 && ns < SYNCERS &&
	       pthread_create(&dc->syncer[ns], NULL, dur_sync_main, dc) == 0)
		ns++;
	if (c && (dc->walfd < 0 || ns == SYNCERS))
		return 0;
	pthread_mutex_lock(&dc->lock);
	dc->stopping = true;
	pthread_cond_signal(&dc->wake_writer);
	pthread_cond_broadcast(&dc->wake_reader);
	pthread_cond_signal(&dc->wake_ckpt);
	if (!w)
		dc->writer_done = true;
	pthread_cond_broadcast(&dc->wake_sync);
	pthread_mutex_unlock(&dc->lock);
	if (w)
		pthread_join(dc->writer, NULL);
	if (r)
		pthread_join(dc->reader, NULL);
	if (c)
		pthread_join(dc->ckpt, NULL);
	while (ns)
		pthread_join(dc->syncer[--ns], NULL);
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
		for (size_t i = 0; dc->walfd >= 0 && i < SYNCERS; i++)
			pthread_join(dc->syncer[i], NULL);
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
