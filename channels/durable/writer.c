/* The durable channel's writer: publishes queue up, one thread stores what arrived together in one
 * transaction with one sync (group commit), settled positions with one every 100 ms, then answers
 * every publish of the round and hands it to the subscriptions that are caught up; the
 * checkpointer copies the log into the database beside it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/ce/json_format.h"
#include "broker/clock.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/durable/internal.h"

static void pub_free(struct dur_pub *p)
{
	for (size_t i = 0; i < p->n; i++) {
		ceb_event_unref(p->evs[i]);
		ceb_buf_free(&p->enc[i]);
	}
	free(p);
}

static void pub_answer(struct dur_pub *p)
{
	if (p->done1)
		p->done1(p->arg, p->status);
	else
		p->doneb(p->arg, p->status, NULL, p->n);
}

void dur_pub_complete(struct dur_pub *p)
{
	pub_answer(p);
	pub_free(p);
}

/* Retention inside the round's transaction for `need` bytes (settled events, oldest first), with the
 * round's count of bytes kept right. 0 or a SQLite code. */
static int free_bytes(struct dur_channel *dc, uint64_t need, uint64_t first, uint64_t settled,
                      uint64_t *bytes)
{
	uint64_t before = dc->bytes;
	int rc = dur_retention(dc, need, first, settled);

	pthread_mutex_lock(&dc->lock);
	*bytes -= before - dc->bytes;
	pthread_mutex_unlock(&dc->lock);
	return rc;
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
		rc = free_bytes(dc, *bytes + p->bytes - dc->set.retention_bytes, first, settled,
		                bytes);
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

/* A failed commit, said at once, then at most every FAIL_LOG_MS with how many failed meanwhile: a
 * full disk fails every round, and a line each time flooded the log (560 000 lines a minute).
 * Before the rollback, which would change SQLite's message. Writer thread. */
static void commit_failed(struct dur_channel *dc)
{
	uint64_t now = dur_mono_ms();

	dc->fails++;
	if (dc->fail_said_ms && now - dc->fail_said_ms < FAIL_LOG_MS) {
		dc->fails_unsaid++;
		return;
	}
	if (dc->fails_unsaid)
		CEB_LOG_ERR(dc->label,
		            "cannot commit to %s: %s (%llu more failed commits since "
		            "the last such line)",
		            dc->wst.path, dur_store_errmsg(&dc->wst),
		            (unsigned long long)dc->fails_unsaid);
	else
		CEB_LOG_ERR(dc->label, "cannot commit to %s: %s", dc->wst.path,
		            dur_store_errmsg(&dc->wst));
	dc->fail_said_ms = now;
	dc->fails_unsaid = 0;
	dc->fail_said = true;
}

/* One round: what arrived since the last, the positions (with persist), retention (by age with
 * age_due; `room` bytes of settled events after the disk was full); one commit. Returns 0, and then
 * the bytes stored with it in *stored_bytes, or the SQLite code of the failure: the round's
 * publishes are then refused (FULL when the disk is). */
static int write_round(struct dur_channel *dc, struct dur_pub *batch, bool age_due, bool persist,
                       uint64_t room, uint64_t *stored_bytes)
{
	uint64_t first, next, bytes, settled, room_to = 0;
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
	settled = dur_min_pos(dc);
	ts = (int64_t)dur_now_ms();
	if (ts < dc->last_ts)
		ts = dc->last_ts; /* arrival times never go back: replay by time searches them */
	dc->last_ts = ts;
	if (persist && dc->dirty && (pos = calloc(dc->nsubs ? dc->nsubs : 1, sizeof(*pos)))) {
		for (size_t i = 0; i < dc->nsubs; i++) {
			pos[npos].key = dc->subs[i]->key;
			pos[npos++].pos = dur_sub_pos(dc->subs[i]);
		}
		dc->dirty = false;
		dc->persist_now = false;
	} else if (dc->dirty && settled > dc->settled_on_disk) {
		settled =
		        dc->settled_on_disk; /* this round leaves the positions on disk as they are */
	}
	pthread_mutex_unlock(&dc->lock);

	rc = dur_store_begin(&dc->wst);
	if (rc == 0)
		rc = dur_sync_bounds(dc, &first, &next, &bytes);
	if (rc == 0 && room) {
		rc = free_bytes(dc, room, first, settled, &bytes);
		pthread_mutex_lock(&dc->lock);
		room_to = dc->first;
		pthread_mutex_unlock(&dc->lock);
	}
	for (struct dur_pub *p = batch; p && rc == 0; p = p->next)
		rc = store_pub(dc, p, &next, ts, &bytes, first, settled);
	for (size_t i = 0; rc == 0 && i < npos; i++)
		rc = dur_store_set_pos(&dc->wst, pos[i].key, pos[i].pos);
	if (rc == 0 && age_due)
		rc = dur_retention(dc, 0, first, settled);
	if (rc == 0)
		rc = dur_store_set_bytes(&dc->wst, bytes);
	if (rc == 0)
		rc = dur_store_commit(&dc->wst);
	dur_retention_said(dc, rc == 0);
	if (rc != 0) {
		commit_failed(dc);
		dur_store_rollback(&dc->wst);
		for (struct dur_pub *p = batch; p; p = p->next)
			if (p->status == 0 || p->status == CEB_EFULL)
				p->status = dur_store_is_full(rc) ? CEB_EFULL : CEB_EUNAVAIL;
		pthread_mutex_lock(&dc->lock);
		dc->failed_commits++;
		dc->dirty = dc->dirty || npos > 0;
		/* what retention did in memory was rolled back on disk too: read the truth */
		dur_store_bounds(&dc->wst, &dc->first, &dc->last, &dc->bytes);
		pthread_mutex_unlock(&dc->lock);
		free(pos);
		return rc;
	}
	if (pos) {
		pthread_mutex_lock(&dc->lock);
		dc->settled_on_disk = settled;
		pthread_mutex_unlock(&dc->lock);
	}
	if (room_to > first)
		CEB_LOG_WARN(dc->label, "%s was full: settled events %llu..%llu deleted for room",
		             dc->wst.path, (unsigned long long)first,
		             (unsigned long long)room_to - 1);
	free(pos);
	*stored_bytes = bytes;
	return 0;
}

/* A committed round's events (from position round on, in the cache) go from the writer straight to
 * the subscriptions that had been handed everything before them, as far as their credit goes: the
 * reader is woken only for what is left (a subscription behind, one with a retry to time, an event
 * too large for the cache), not once per commit (its wake-up cost about 2 us of CPU per event, a
 * context switch per commit on two cores). Handed out only now: after the commit, and under
 * `sync: Fsync` after its fsync, as the reader would. Called with the lock, which it drops to give. */
static void hand_round(struct dur_channel *dc, uint64_t round)
{
	struct dur_handouts ho = {.n = 0};
	bool wake = false;

	for (size_t i = 0; i < dc->nsubs; i++) {
		struct dur_sub *sub = dc->subs[i];

		if (!sub->retries && sub->next == round)
			while (dur_pump(dc, sub, 0, true, &ho))
				dur_give(dc, &ho);
		wake |= sub->retries > 0 ||
		        (sub->next <= dc->last && sub->inflight < sub->cfg.max_inflight);
	}
	if (wake)
		pthread_cond_signal(&dc->wake_reader);
}

/* A committed round, once answered: visible to the subscriptions, cached for the reader. */
static void post_round(struct dur_channel *dc, struct dur_pub *batch, uint64_t bytes)
{
	uint64_t next, round, stored = 0;

	pthread_mutex_lock(&dc->lock);
	next = round = dc->last + 1;
	for (struct dur_pub *p = batch; p; p = p->next) {
		if (p->status != 0)
			continue;
		for (size_t i = 0; i < p->n; i++, next++) {
			struct dur_cache_slot *s = &dc->cache[next % CACHE_SLOTS];
			struct ceb_event *old = s->ev;

			if (p->enc[i].len <= CACHE_MAX_SIZE) {
				/* the publish's reference moves into the cache, and the slot's old
				 * event into the publish, which frees it after the lock */
				s->ev = p->evs[i];
				p->evs[i] = old;
			} else {
				s->ev = NULL;
				ceb_event_unref(old);
			}
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
		hand_round(dc, round);
	}
	pthread_mutex_unlock(&dc->lock);
}

/* Answer publishes with status and free them. */
static void refuse_all(struct dur_pub *batch, int status)
{
	while (batch) {
		struct dur_pub *p = batch;
		batch = p->next;
		p->status = status;
		dur_pub_complete(p);
	}
}

void *dur_writer_main(void *arg)
{
	struct dur_channel *dc = arg;
	uint64_t last_age = dur_mono_ms(), last_persist = 0;
	/* Positions go to disk at most every PERSIST_MS, not with every commit (a page of the log
	 * and an upsert each time: what a crash costs is at most PERSIST_MS more of duplicates), but
	 * at once on the first round: a new subscription's start must be on disk before any event
	 * it is to get is acknowledged, or a crash would make it start after them. */
	bool persisted = false;
	/* After a failed commit (a full disk), no round until retry_at, and what is published
	 * meanwhile is refused at once with the failure's status: the wait doubles from
	 * BACKOFF_MIN_MS to BACKOFF_MAX_MS while commits fail (without it the writer retried the
	 * round at once, forever: a core spent, and a stop that never came). After SQLITE_FULL the
	 * next try is a round of its own that deletes `room` bytes of settled events: the pages it
	 * frees take new events, so the channel recovers by itself once subscribers settle. */
	uint64_t backoff = 0, retry_at = 0, room = 0;
	int refusal = CEB_EUNAVAIL;

	pthread_mutex_lock(&dc->lock);
	for (;;) {
		struct dur_pub *batch = NULL;
		uint64_t now = dur_mono_ms(), bytes = 0, round_bytes = 0;
		bool waiting = now < retry_at;
		bool making_room = !waiting && room > 0;
		bool age_due = !waiting && now - last_age >= RETENTION_MS;
		bool persist = !waiting && dc->dirty &&
		               (!persisted || dc->persist_now || now - last_persist >= PERSIST_MS);
		bool stored = false;
		int rc;

		if (waiting && dc->queue) {
			batch = dc->queue;
			dc->queue = NULL;
			dc->qtail = &dc->queue;
			pthread_mutex_unlock(&dc->lock);
			refuse_all(batch, refusal);
			pthread_mutex_lock(&dc->lock);
			continue;
		}
		/* checked on every pass: a stop ends the writer whatever the disk does */
		if (dc->stopping && !dc->queue && (waiting || !persist))
			break;
		if (!dc->queue && !age_due && !persist && !making_room) {
			struct timespec ts = ceb_timespec_in_ms(CLOCK_REALTIME, PERSIST_MS);
			if (pthread_cond_timedwait(&dc->wake_writer, &dc->lock, &ts) != 0 &&
			    !dc->queue) {
				/* idle: what another instance stored is handed out too */
				pthread_mutex_unlock(&dc->lock);
				dur_sync_bounds(dc, NULL, NULL, NULL);
				pthread_mutex_lock(&dc->lock);
			}
			continue;
		}
		if (!making_room) {
			batch = dc->queue;
			dc->queue = NULL;
			dc->qtail = &dc->queue;
		}
		pthread_mutex_unlock(&dc->lock);
		for (struct dur_pub *p = batch; p; p = p->next)
			round_bytes += p->bytes;
		pthread_mutex_lock(&dc->wlock);
		if (making_room)
			rc = write_round(dc, NULL, false, true, room, &bytes);
		else
			rc = write_round(dc, batch, age_due, persist, 0, &bytes);
		pthread_mutex_unlock(&dc->wlock);
		if (age_due && !making_room)
			last_age = now;
		if (rc == 0 && (persist || making_room)) {
			last_persist = now;
			persisted = true;
		}
		if (rc == 0 && making_room)
			room = 0;
		for (struct dur_pub *p = batch; p; p = p->next)
			stored |= rc == 0 && p->status == 0;
		if (stored) {
			if (dc->fail_said)
				CEB_LOG_INFO(dc->label,
				             "%s takes events again (after %llu failed commits)",
				             dc->wst.path, (unsigned long long)dc->fails);
			dc->fails = 0;
			dc->fail_said = false;
			dc->fail_said_ms = 0; /* a new failure is said at once, counted afresh */
			dc->fails_unsaid = 0;
		}
		if (rc == 0)
			backoff = 0; /* any commit, a persist-only round's too, ends the back-off */
		else {
			backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
			if (backoff > BACKOFF_MAX_MS)
				backoff = BACKOFF_MAX_MS;
			retry_at = dur_mono_ms() + backoff;
			refusal = dur_store_is_full(rc) ? CEB_EFULL : CEB_EUNAVAIL;
			if (dur_store_is_full(rc) && !making_room)
				room = round_bytes > ROOM_MIN ? round_bytes : ROOM_MIN;
		}
		/* The senders first (on disk: their 202s), then the reader: an answer waits for
		 * nothing it does not need. */
		for (struct dur_pub *p = batch; p; p = p->next)
			pub_answer(p);
		if (rc == 0)
			post_round(dc, batch, bytes);
		while (batch) {
			struct dur_pub *p = batch;
			batch = p->next;
			pub_free(p);
		}
		pthread_mutex_lock(&dc->lock);
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}

/* Checkpoints on a connection of their own: the log's pages go into the database (and its fsync)
 * beside the writer's commits, not in their way. At most every CKPT_MS while commits come.
 *
 * A first pass copies what the log holds beside the commits. Under steady load it never copies all
 * of it (the writer has committed more meanwhile), and SQLite starts the log again from its
 * beginning only when a write transaction begins on a log that is all in the database: the log then
 * grew without end (281 MB in a 20 s benchmark), each commit wrote to new blocks of the file, and
 * each fdatasync had to write the file's metadata too (its new blocks and size: ext4's journal, or
 * its inode and extent blocks without one) beside the data. So a second pass copies the few frames
 * committed meanwhile while the writer waits between two of its transactions (wlock; no SQLite busy
 * handler, which sleeps milliseconds): the writer's next transaction then writes the log from its
 * start again, over blocks the file already has, and its fdatasync writes the data and flushes the
 * disk's cache, nothing more. A reader that holds an old snapshot leaves the pass short of the end:
 * the log goes on growing until the next pass. This changes nothing of what a commit makes durable:
 * the restart is SQLite's own (new salts in the log's header, so that frames of the log's previous
 * run are never read as committed). */
#define CKPT_MS 200

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
		pthread_mutex_lock(&dc->wlock);
		dur_store_checkpoint(&dc->cst);
		pthread_mutex_unlock(&dc->wlock);
		pthread_mutex_lock(&dc->lock);
		ts = ceb_timespec_in_ms(CLOCK_REALTIME, CKPT_MS);
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
		/* one allocation for the JSON form (about the event's size; data_base64 grows it) */
		if (ceb_buf_reserve(&p->enc[i], ceb_event_size(evs[i]) + 64) < 0 ||
		    ceb_json_encode(evs[i], &p->enc[i]) < 0) {
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

void dur_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg)
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

void dur_publish_batch(void *ctx, struct ceb_event *const *evs, size_t n, ceb_batch_done_f *done,
                       void *arg)
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
