/* The durable channel's writer (chan.h): one thread stores what arrived together in one transaction;
 * with sync: Fsync, syncer threads fsync the log behind it, two at a time, and answer each round
 * once an fsync that began after its commit ended, while the writer already commits the next. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/error.h"
#include "broker/log.h"
#include "channels/durable/chan.h"

#define RETENTION_MS 1000 /* how often age retention runs */
#define CKPT_MS      200  /* checkpoints at most this often while commits come */

void dur_pub_free(struct dur_pub *p)
{
	for (size_t i = 0; i < p->n; i++) {
		ceb_event_unref(p->evs[i]);
		ceb_buf_free(&p->enc[i]);
	}
	free(p);
}

void dur_pub_complete(struct dur_pub *p)
{
	if (p->done1)
		p->done1(p->arg, p->status);
	else
		p->doneb(p->arg, p->status, NULL, p->n);
	dur_pub_free(p);
}

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
		uint64_t now = dur_now_ms();
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
	hi = dc->written;
	pthread_mutex_unlock(&dc->lock);
	rc = dur_store_refresh(&dc->wst, &lo, &hi, &b);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&dc->lock);
	/* beyond what this writer wrote: another instance's commits, visible at once */
	if (hi > dc->written) {
		dc->written = hi;
		if (hi > dc->last) {
			dc->last = hi;
			pthread_cond_signal(&dc->wake_reader);
		}
	}
	dc->first = lo;
	dc->bytes = b;
	if (first)
		*first = dc->first;
	if (next)
		*next = dc->written + 1;
	if (bytes)
		*bytes = dc->bytes;
	pthread_mutex_unlock(&dc->lock);
	return 0;
}

/* Make a committed round visible to the reader (cached for it) once it is as durable as the sync
 * setting asks, then answer its publishes. Without the lock. */
static void complete(struct dur_channel *dc, struct dur_group *g, int status)
{
	uint64_t next = g->first;

	pthread_mutex_lock(&dc->lock);
	for (struct dur_pub *p = g->batch; p; p = p->next) {
		if (p->status != 0)
			continue;
		for (size_t i = 0; i < p->n; i++, next++) {
			struct dur_cache_slot *s = &dc->cache[next % CACHE_SLOTS];
			ceb_event_unref(s->ev);
			s->ev = p->enc[i].len <= CACHE_MAX_SIZE ? ceb_event_ref(p->evs[i]) : NULL;
			s->seq = s->ev ? next : 0;
		}
		/* stored, not known to be on disk: a 503, which a sender may retry (a duplicate) */
		p->status = status;
	}
	if (g->last >= g->first) {
		if (g->last > dc->last)
			dc->last = g->last;
		dc->committed_events += g->last + 1 - g->first;
		if (dc->walfd < 0)
			dc->commits++;
		pthread_cond_signal(&dc->wake_reader);
	}
	pthread_mutex_unlock(&dc->lock);
	while (g->batch) {
		struct dur_pub *p = g->batch;
		g->batch = p->next;
		dur_pub_complete(p);
	}
}

/* One round: what arrived since the last, the positions, retention; one commit. The publishes are
 * answered at once when it failed or with sync: OS; with sync: Fsync they go to the syncers. */
static void write_round(struct dur_channel *dc, struct dur_pub *batch, bool age_due)
{
	struct dur_group *g = NULL;
	uint64_t first, next, start, bytes, settled, hi;
	int64_t ts;
	size_t npos = 0;
	struct {
		const char *key;
		uint64_t pos;
	} *pos = NULL;
	int rc;

	pthread_mutex_lock(&dc->lock);
	first = dc->first;
	next = dc->written + 1;
	bytes = dc->bytes;
	settled = dur_min_pos(dc);
	ts = (int64_t)dur_now_ms();
	if (ts < dc->last_ts)
		ts = dc->last_ts; /* arrival times never go back: replay by time searches them */
	dc->last_ts = ts;
	if (dc->dirty && (pos = calloc(dc->nsubs ? dc->nsubs : 1, sizeof(*pos)))) {
		for (size_t i = 0; i < dc->nsubs; i++) {
			pos[npos].key = dc->subs[i]->key;
			pos[npos++].pos = dur_sub_pos(dc->subs[i]);
		}
		dc->dirty = false;
	}
	pthread_mutex_unlock(&dc->lock);

	if (!(g = calloc(1, sizeof(*g)))) {
		/* nothing stored: a 429 (retry later); positions and retention still go on */
		for (struct dur_pub *p = batch; p; p = p->next)
			p->status = CEB_EFULL;
		complete(dc, &(struct dur_group){.first = 1, .last = 0, .batch = batch}, 0);
		batch = NULL;
	}
	rc = dur_store_begin(&dc->wst);
	if (rc == 0)
		rc = sync_bounds(dc, &first, &next, &bytes);
	start = next;
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
		if (dur_store_bounds(&dc->wst, &dc->first, &hi, &dc->bytes) == 0) {
			if (hi < dc->last)
				dc->last = hi;
			dc->written = hi > dc->last ? hi : dc->last;
		}
		pthread_mutex_unlock(&dc->lock);
		free(pos);
		if (g)
			complete(dc, &(struct dur_group){.first = 1, .last = 0, .batch = batch}, 0);
		free(g);
		return;
	}
	free(pos);
	pthread_mutex_lock(&dc->lock);
	dc->written = next - 1;
	dc->bytes = bytes;
	if (++dc->unchecked == 1)
		pthread_cond_signal(&dc->wake_ckpt);
	if (!g) {
		pthread_mutex_unlock(&dc->lock);
		return;
	}
	g->first = start;
	g->last = next - 1;
	g->batch = batch;
	if (dc->walfd >= 0) {
		/* committed to the OS: the syncers answer it once an fsync covers it */
		g->gen = ++dc->gen_written;
		*dc->ptail = g;
		dc->ptail = &g->next;
		pthread_cond_signal(&dc->wake_sync);
		pthread_mutex_unlock(&dc->lock);
		return;
	}
	pthread_mutex_unlock(&dc->lock);
	complete(dc, g, 0);
	free(g);
}

void *dur_writer_main(void *arg)
{
	struct dur_channel *dc = arg;
	uint64_t last_age = dur_mono_ms(), last_persist = dur_mono_ms();

	pthread_mutex_lock(&dc->lock);
	for (;;) {
		struct dur_pub *batch;
		uint64_t now = dur_mono_ms();
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
		pthread_mutex_lock(&dc->lock);
	}
	dc->writer_done = true;
	pthread_cond_broadcast(&dc->wake_sync);
	pthread_mutex_unlock(&dc->lock);
	/* what comes after (the last positions at destroy) is synced by SQLite itself */
	if (dc->walfd >= 0)
		dur_store_exec(&dc->wst, "PRAGMA synchronous=FULL");
	return NULL;
}

/* sync: Fsync. The writer commits with synchronous=NORMAL (the log reaches the OS, SQLite syncs it
 * only around checkpoints); a syncer fsyncs the log and then answers every round committed before
 * that fsync began. With SYNCERS of them, a round committed while an fsync runs does not wait for
 * it to end: the next fsync starts at once (the kernel merges the device flushes). */
void *dur_sync_main(void *arg)
{
	struct dur_channel *dc = arg;

	pthread_mutex_lock(&dc->lock);
	for (;;) {
		uint64_t target;
		bool counted;
		int rc;

		if (dc->gen_written > dc->gen_syncing && dc->nsyncing < SYNCERS) {
			target = dc->gen_syncing = dc->gen_written;
			dc->nsyncing++;
			pthread_mutex_unlock(&dc->lock);
			rc = dur_store_wal_sync(dc->walfd);
			pthread_mutex_lock(&dc->lock);
			dc->nsyncing--;
			if (rc < 0) {
				CEB_LOG_ERR(dc->label,
				            "cannot fsync the log of %s: %s: answering 503",
				            dc->wst.path, strerror(-rc));
				if (target > dc->gen_failed)
					dc->gen_failed = target;
			}
			if (target > dc->gen_synced)
				dc->gen_synced = target;
			counted = false;
			while (dc->pending && dc->pending->gen <= dc->gen_synced) {
				struct dur_group *g = dc->pending;
				int status = g->gen <= dc->gen_failed ? CEB_EUNAVAIL : 0;

				if (g->last >= g->first && !counted) {
					dc->commits++; /* fsyncs that stored events */
					counted = true;
				}
				dc->pending = g->next;
				if (!dc->pending)
					dc->ptail = &dc->pending;
				pthread_mutex_unlock(&dc->lock);
				complete(dc, g, status);
				free(g);
				pthread_mutex_lock(&dc->lock);
			}
			pthread_cond_broadcast(&dc->wake_sync);
			continue;
		}
		if (dc->writer_done && !dc->pending && !dc->nsyncing)
			break;
		pthread_cond_wait(&dc->wake_sync, &dc->lock);
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}

/* Checkpoints on a connection of their own: the log's pages go into the database (and its fsync)
 * beside the writer's commits, not in their way. At most every CKPT_MS while commits come. */

void *dur_ckpt_main(void *arg)
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
