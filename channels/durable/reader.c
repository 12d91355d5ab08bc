/* The durable channel's reader: one thread hands each subscription that is behind (a restart, a
 * replay, credit spent, a retry) the events from its own position on (recent ones from a cache,
 * older ones read back from disk; the writer hands a caught-up one its round itself); settle moves
 * positions, which the writer writes. */
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

static void hand_out(struct dur_sub *sub, struct dur_msg *m, struct dur_handouts *ho)
{
	m->due_ms = 0;
	sub->inflight++;
	ho->h[ho->n].sub = sub;
	ho->h[ho->n].m = m;
	ho->h[ho->n++].ev = ceb_event_ref(m->ev);
}

void dur_give(struct dur_channel *dc, struct dur_handouts *ho)
{
	if (!ho->n)
		return;
	pthread_mutex_unlock(&dc->lock);
	for (size_t i = 0; i < ho->n; i++)
		ho->h[i].sub->cfg.on_msg(ho->h[i].sub->cfg.arg, ho->h[i].ev, ho->h[i].m);
	ho->n = 0;
	pthread_mutex_lock(&dc->lock);
}

bool dur_pump(struct dur_channel *dc, struct dur_sub *sub, uint64_t now, bool cached_only,
              struct dur_handouts *ho)
{
	bool did = false;

	if (sub->retries && !cached_only) {
		for (struct dur_msg *m = sub->msgs;
		     m && sub->inflight < sub->cfg.max_inflight && ho->n < HAND_MAX; m = m->next) {
			if (m->due_ms && m->due_ms <= now) {
				sub->retries--;
				hand_out(sub, m, ho);
				did = true;
			}
		}
	}
	/* Ordered: an event waiting for its retry holds up the whole subscription (handing out the
	 * next position meanwhile delivered id-1 before id-0 came again). */
	while (!dc->stopping && sub->inflight < sub->cfg.max_inflight && sub->next <= dc->last &&
	       ho->n < HAND_MAX && !(sub->cfg.ordered && sub->retries)) {
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
		} else if (cached_only) {
			break;
		} else {
			/* From disk: a batch, without the lock (the writer goes on). */
			struct read_batch *rb = calloc(1, sizeof(*rb));
			size_t want = sub->cfg.max_inflight - sub->inflight, k = 0;
			uint64_t expect = s;

			if (want > HAND_MAX - ho->n)
				want = HAND_MAX - ho->n;
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
				    sub->inflight >= sub->cfg.max_inflight || ho->n >= HAND_MAX)
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
				hand_out(sub, m, ho);
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
		hand_out(sub, m, ho);
		did = true;
	}
	return did;
}

void *dur_reader_main(void *arg)
{
	struct dur_channel *dc = arg;
	struct dur_handouts hos, *ho = &hos;

	hos.n = 0;
	pthread_mutex_lock(&dc->lock);
	while (!dc->stopping) {
		uint64_t now = dur_mono_ms();
		bool did = false, retrying = false;

		for (size_t i = 0; i < dc->nsubs && !dc->stopping; i++) {
			did |= dur_pump(dc, dc->subs[i], now, false, ho);
			dur_give(dc, ho);
			retrying |= dc->subs[i]->retries > 0;
		}
		if (did || dc->stopping)
			continue;
		if (retrying) {
			struct timespec ts = ceb_timespec_in_ms(CLOCK_REALTIME, 100);
			pthread_cond_timedwait(&dc->wake_reader, &dc->lock, &ts);
		} else {
			pthread_cond_wait(&dc->wake_reader, &dc->lock);
		}
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}

void dur_settle(void *ctx, void *subp, void *handle, enum ceb_settle how)
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
