/* The durable channel: events kept on local disk inside the daemon (store.c, SQLite in WAL mode).
 * One writer thread stores what arrived together in one transaction, one sync, then answers every
 * publish of it; one reader thread hands each subscription the events from its own position on;
 * settled positions are written with the next transaction, so a crash redelivers, never loses. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/buf.h"
#include "broker/ce/json_format.h"
#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/channel.h"
#include "channels/durable/durable.h"
#include "channels/durable/store.h"

#define CACHE_SLOTS    4096        /* recent events kept decoded, by position */
#define CACHE_MAX_SIZE (16 * 1024) /* larger events are read back from disk */
#define READ_BATCH     256
#define RETRY_MS       1000 /* a message settled FAILED comes again after this */
#define PERSIST_MS     100  /* settled positions reach the disk at least this often */
#define RETENTION_MS   1000 /* how often age retention runs */

/* A message handed to a subscription and not settled DONE yet. */
struct dur_msg {
	uint64_t seq;
	struct ceb_event *ev;
	uint64_t due_ms; /* FAILED: handed out again from then on; 0 while out */
	struct dur_msg *prev, *next;
};

struct dur_sub {
	struct ceb_sub_cfg cfg;
	char key[600];        /* "ns/name": its row in the store */
	uint64_t next;        /* the next position to hand out */
	struct dur_msg *msgs; /* handed out or waiting for a retry */
	size_t inflight;      /* handed out */
	size_t retries;       /* waiting in msgs with due_ms */
};

/* One publish (one event or a batch) waiting for the writer. */
struct dur_pub {
	size_t n;
	struct ceb_event **evs;
	struct ceb_buf *enc; /* each event's JSON form */
	size_t bytes;
	int status;
	ceb_publish_done_f *done1;
	ceb_batch_done_f *doneb;
	void *arg;
	struct dur_pub *next;
};

struct dur_cache_slot {
	uint64_t seq;
	struct ceb_event *ev;
};

struct dur_channel {
	pthread_mutex_t lock;
	pthread_cond_t wake_writer, wake_reader, wake_ckpt;
	char label[300];
	struct ceb_durable_channel_cfg set;
	const char *state_dir;
	char ns[256], name[256];
	struct dur_store wst, rst, cst; /* the writer's, the reader's, the checkpointer's */
	uint64_t first, last;           /* stored positions (first > last: none) */
	uint64_t bytes;                 /* what they take */
	int64_t last_ts;
	struct dur_pub *queue, **qtail;
	struct dur_sub **subs;
	size_t nsubs;
	struct dur_cache_slot *cache;
	uint64_t dropped; /* deleted by retention before every subscription settled them */
	bool dirty;       /* positions changed since they were written */
	bool started, stopping, stopped;
	pthread_t writer, reader, ckpt;
	uint64_t unchecked;                 /* commits since the last checkpoint */
	uint64_t commits, committed_events; /* events per sync, for the benchmark's log line */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pub_free(struct dur_pub *p)
{
	for (size_t i = 0; i < p->n; i++) {
		ceb_event_unref(p->evs[i]);
		ceb_buf_free(&p->enc[i]);
	}
	free(p);
}

static void pub_complete(struct dur_pub *p)
{
	if (p->done1)
		p->done1(p->arg, p->status);
	else
		p->doneb(p->arg, p->status, NULL, p->n);
	pub_free(p);
}

/* The first position a subscription has not settled: its next, or an older message out. */
static uint64_t sub_pos(const struct dur_sub *sub)
{
	uint64_t pos = sub->next;

	for (const struct dur_msg *m = sub->msgs; m; m = m->next)
		if (m->seq < pos)
			pos = m->seq;
	return pos;
}

static uint64_t min_pos(const struct dur_channel *dc)
{
	uint64_t pos = dc->last + 1;

	for (size_t i = 0; i < dc->nsubs; i++) {
		uint64_t p = sub_pos(dc->subs[i]);
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
	dc->last_ts = (int64_t)now_ms();
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
			dur_store_set_pos(&dc->wst, dc->subs[i]->key, sub_pos(dc->subs[i]));
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
		pub_complete(p);
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
	free(dc);
}

/* ---- the writer: group commit, positions, retention ---- */

struct cut_scan {
	struct dur_channel *dc;
	uint64_t cutoff_ts; /* delete what arrived before (0: none by age) */
	uint64_t need;      /* bytes to free from settled events */
	uint64_t settled;   /* positions below are settled by every subscription */
	uint64_t cut;       /* the last position to delete (0: none) */
	uint64_t freed;
	bool more;
};

static int cut_row(void *arg, const struct dur_row *row)
{
	struct cut_scan *cs = arg;
	bool old = cs->cutoff_ts && (uint64_t)row->ts_ms < cs->cutoff_ts;
	bool room = cs->freed < cs->need && row->seq < cs->settled;

	if (!old && !room) {
		cs->more = false;
		return 1;
	}
	cs->cut = row->seq;
	cs->freed += row->size;
	return 0;
}

/* Delete from the front what is older than the retention, and settled events while `need` bytes
 * are to be freed. Called by the writer inside its transaction, without the lock; the lock is taken
 * to move positions of subscriptions that lose unsettled events. 0 or a SQLite code. */
static int retention(struct dur_channel *dc, uint64_t need, uint64_t first, uint64_t settled)
{
	struct cut_scan cs = {dc, 0, need, settled, 0, 0, true};
	uint64_t from = first, lost = 0;
	int rc = 0;

	if (dc->set.retention_ms) {
		uint64_t now = now_ms();
		cs.cutoff_ts = now > dc->set.retention_ms ? now - dc->set.retention_ms : 0;
	}
	while (cs.more) {
		uint64_t before = cs.cut;
		rc = dur_store_scan(&dc->wst, from, 1024, false, cut_row, &cs);
		if (rc != 0 || cs.cut == before)
			break;
		from = cs.cut + 1;
	}
	if (rc != 0 || !cs.cut)
		return rc;
	rc = dur_store_cut(&dc->wst, cs.cut);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&dc->lock);
	dc->first = cs.cut + 1;
	dc->bytes = dc->bytes > cs.freed ? dc->bytes - cs.freed : 0;
	for (size_t i = 0; i < dc->nsubs; i++) {
		struct dur_sub *sub = dc->subs[i];
		if (sub->next <= cs.cut) {
			lost += cs.cut + 1 - sub->next;
			CEB_LOG_WARN(
			        dc->label,
			        "retention (%llu ms) deleted events %llu..%llu that subscription "
			        "%s had not been handed yet: they are lost to it",
			        (unsigned long long)dc->set.retention_ms,
			        (unsigned long long)sub->next, (unsigned long long)cs.cut,
			        sub->key);
			sub->next = cs.cut + 1;
			dc->dirty = true;
		}
	}
	dc->dropped += lost;
	pthread_mutex_unlock(&dc->lock);
	return 0;
}

/* Store one publish, inside the round's transaction, without the lock; *next is the position for
 * its first event. A publish that does not fit is refused alone; a failed write (the disk full)
 * returns its SQLite code, and the whole round is then rolled back and refused. */
static int store_pub(struct dur_channel *dc, struct dur_pub *p, uint64_t *next, int64_t ts,
                     uint64_t *bytes, uint64_t first, uint64_t settled)
{
	int rc;

	if (p->bytes > dc->set.retention_bytes) {
		p->status = CEB_ETOOBIG;
		return 0;
	}
	if (*bytes + p->bytes > dc->set.retention_bytes) {
		uint64_t before = dc->bytes;
		rc = retention(dc, *bytes + p->bytes - dc->set.retention_bytes, first, settled);
		pthread_mutex_lock(&dc->lock);
		*bytes -= before - dc->bytes;
		pthread_mutex_unlock(&dc->lock);
		if (rc != 0)
			return rc;
		if (*bytes + p->bytes > dc->set.retention_bytes) {
			p->status = CEB_EFULL;
			return 0;
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		rc = dur_store_append(&dc->wst, *next + i, ts, p->enc[i].p, p->enc[i].len);
		if (rc != 0)
			return rc;
	}
	p->status = 0;
	*next += p->n;
	*bytes += p->bytes;
	return 0;
}

/* Take the stored run as the store has it: another instance of this channel (the replacement a
 * reload starts beside the running one, or the one it replaces) may have committed since. Writer
 * thread; inside its transaction when a round calls it, so that the positions it then gives are
 * the store's. 0 or a SQLite code. */
static int sync_bounds(struct dur_channel *dc, uint64_t *first, uint64_t *next, uint64_t *bytes)
{
	uint64_t lo, hi, b;
	int rc;

	pthread_mutex_lock(&dc->lock);
	lo = dc->first;
	hi = dc->last;
	pthread_mutex_unlock(&dc->lock);
	rc = dur_store_refresh(&dc->wst, &lo, &hi, &b);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&dc->lock);
	if (hi > dc->last || lo != dc->first || b != dc->bytes) {
		if (hi > dc->last)
			pthread_cond_signal(&dc->wake_reader);
		dc->first = lo;
		dc->last = hi > dc->last ? hi : dc->last;
		dc->bytes = b;
	}
	if (first)
		*first = dc->first;
	if (next)
		*next = dc->last + 1;
	if (bytes)
		*bytes = dc->bytes;
	pthread_mutex_unlock(&dc->lock);
	return 0;
}

/* One round: what arrived since the last, the positions, retention; one commit. */
static void write_round(struct dur_channel *dc, struct dur_pub *batch, bool age_due)
{
	uint64_t first, next, bytes, settled, stored = 0;
	int64_t ts;
	size_t npos = 0;
	struct {
		const char *key;
		uint64_t pos;
	} *pos = NULL;
	int rc;

	pthread_mutex_lock(&dc->lock);
	first = dc->first;
	next = dc->last + 1;
	bytes = dc->bytes;
	settled = min_pos(dc);
	ts = (int64_t)now_ms();
	if (ts < dc->last_ts)
		ts = dc->last_ts; /* arrival times never go back: replay by time searches them */
	dc->last_ts = ts;
	if (dc->dirty && (pos = calloc(dc->nsubs ? dc->nsubs : 1, sizeof(*pos)))) {
		for (size_t i = 0; i < dc->nsubs; i++) {
			pos[npos].key = dc->subs[i]->key;
			pos[npos++].pos = sub_pos(dc->subs[i]);
		}
		dc->dirty = false;
	}
	pthread_mutex_unlock(&dc->lock);

	rc = dur_store_begin(&dc->wst);
	if (rc == 0)
		rc = sync_bounds(dc, &first, &next, &bytes);
	for (struct dur_pub *p = batch; p && rc == 0; p = p->next)
		rc = store_pub(dc, p, &next, ts, &bytes, first, settled);
	for (size_t i = 0; rc == 0 && i < npos; i++)
		rc = dur_store_set_pos(&dc->wst, pos[i].key, pos[i].pos);
	if (rc == 0 && age_due)
		rc = retention(dc, 0, first, settled);
	if (rc == 0)
		rc = dur_store_set_bytes(&dc->wst, bytes);
	if (rc == 0)
		rc = dur_store_commit(&dc->wst);
	if (rc != 0) {
		CEB_LOG_ERR(dc->label, "cannot commit to %s: %s", dc->wst.path,
		            dur_store_errmsg(&dc->wst));
		dur_store_rollback(&dc->wst);
		for (struct dur_pub *p = batch; p; p = p->next)
			if (p->status == 0 || p->status == CEB_EFULL)
				p->status = dur_store_is_full(rc) ? CEB_EFULL : CEB_EUNAVAIL;
		pthread_mutex_lock(&dc->lock);
		dc->dirty = dc->dirty || npos > 0;
		/* what retention did in memory was rolled back on disk too: read the truth */
		dur_store_bounds(&dc->wst, &dc->first, &dc->last, &dc->bytes);
		pthread_mutex_unlock(&dc->lock);
		free(pos);
		return;
	}
	free(pos);
	/* On disk: visible to the reader, cached for it, answered. */
	pthread_mutex_lock(&dc->lock);
	next = dc->last + 1;
	for (struct dur_pub *p = batch; p; p = p->next) {
		if (p->status != 0)
			continue;
		for (size_t i = 0; i < p->n; i++, next++) {
			struct dur_cache_slot *s = &dc->cache[next % CACHE_SLOTS];
			ceb_event_unref(s->ev);
			s->ev = p->enc[i].len <= CACHE_MAX_SIZE ? ceb_event_ref(p->evs[i]) : NULL;
			s->seq = s->ev ? next : 0;
			stored++;
		}
	}
	dc->last = next - 1;
	dc->bytes = bytes;
	if (++dc->unchecked == 1)
		pthread_cond_signal(&dc->wake_ckpt);
	if (stored) {
		dc->commits++;
		dc->committed_events += stored;
		pthread_cond_signal(&dc->wake_reader);
	}
	pthread_mutex_unlock(&dc->lock);
}

static void *writer_main(void *arg)
{
	struct dur_channel *dc = arg;
	uint64_t last_age = mono_ms(), last_persist = mono_ms();

	pthread_mutex_lock(&dc->lock);
	for (;;) {
		struct dur_pub *batch;
		uint64_t now = mono_ms();
		bool age_due = now - last_age >= RETENTION_MS;
		bool persist = dc->dirty && now - last_persist >= PERSIST_MS;

		if (!dc->queue && !age_due && !persist) {
			struct timespec ts;
			if (dc->stopping)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += PERSIST_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&dc->wake_writer, &dc->lock, &ts) != 0 &&
			    !dc->queue) {
				/* idle: what another instance stored is handed out too */
				pthread_mutex_unlock(&dc->lock);
				sync_bounds(dc, NULL, NULL, NULL);
				pthread_mutex_lock(&dc->lock);
			}
			continue;
		}
		batch = dc->queue;
		dc->queue = NULL;
		dc->qtail = &dc->queue;
		pthread_mutex_unlock(&dc->lock);
		write_round(dc, batch, age_due);
		if (age_due)
			last_age = now;
		last_persist = now;
		while (batch) {
			struct dur_pub *p = batch;
			batch = p->next;
			pub_complete(p);
		}
		pthread_mutex_lock(&dc->lock);
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}

/* Checkpoints on a connection of their own: the log's pages go into the database (and its fsync)
 * beside the writer's commits, not in their way. At most every CKPT_MS while commits come. */
#define CKPT_MS 200

static void *ckpt_main(void *arg)
{
	struct dur_channel *dc = arg;

	pthread_mutex_lock(&dc->lock);
	while (!dc->stopping) {
		struct timespec ts;

		if (!dc->unchecked) {
			pthread_cond_wait(&dc->wake_ckpt, &dc->lock);
			continue;
		}
		dc->unchecked = 0;
		pthread_mutex_unlock(&dc->lock);
		dur_store_checkpoint(&dc->cst);
		pthread_mutex_lock(&dc->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += CKPT_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!dc->stopping && pthread_cond_timedwait(&dc->wake_ckpt, &dc->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}

/* ---- publish ---- */

static void enqueue(struct dur_channel *dc, struct dur_pub *p)
{
	pthread_mutex_lock(&dc->lock);
	if (!dc->started || dc->stopping) {
		pthread_mutex_unlock(&dc->lock);
		p->status = CEB_EUNAVAIL;
		pub_complete(p);
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
			pub_free(p);
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
				    sub->inflight >= sub->cfg.max_inflight)
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
		uint64_t now = mono_ms();
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
	/* the reader is woken only when this settle gives it work: credit for events waiting, or a
	 * retry to time (not on every settle: a wake that finds nothing costs a context switch) */
	bool wake;

	pthread_mutex_lock(&dc->lock);
	wake = how == CEB_SETTLE_FAILED ||
	       (sub->inflight >= sub->cfg.max_inflight && sub->next <= dc->last);
	sub->inflight--;
	if (how == CEB_SETTLE_FAILED && !dc->stopped) {
		/* kept, and handed out again later (after a restart at the latest) */
		m->due_ms = mono_ms() + RETRY_MS;
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
		dc->dirty = true;
	}
	if (wake)
		pthread_cond_signal(&dc->wake_reader);
	pthread_mutex_unlock(&dc->lock);
	if (how != CEB_SETTLE_FAILED) {
		ceb_event_unref(m->ev);
		free(m);
	}
}

/* ---- start, stop, the optional operations ---- */

static int dur_start(void *ctx, char *errbuf, size_t errlen)
{
	struct dur_channel *dc = ctx;
	bool w, r = false, c = false;

	dc->started = true;
	w = pthread_create(&dc->writer, NULL, writer_main, dc) == 0;
	r = w && pthread_create(&dc->reader, NULL, reader_main, dc) == 0;
	c = r && pthread_create(&dc->ckpt, NULL, ckpt_main, dc) == 0;
	if (c)
		return 0;
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
