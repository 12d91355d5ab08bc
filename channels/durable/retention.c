/* The durable channel's retention (by age, and by size to make room for new events) and the
 * stored bounds as the store has them; both run in the writer's transaction. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/log.h"
#include "channels/durable/internal.h"

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

/* A warning of the round being written (see ret_notes); beyond four, the last says more came. */
__attribute__((format(printf, 2, 3))) static void note(struct dur_channel *dc, const char *fmt,
                                                        ...)
{
	size_t n = sizeof(dc->ret_notes) / sizeof(dc->ret_notes[0]);
	va_list ap;

	if (dc->nret_notes == n) {
		snprintf(dc->ret_notes[n - 1], sizeof(dc->ret_notes[n - 1]),
		         "retention deleted unsettled events of more subscriptions (see the metric "
		         "cebroker_channel_retention_dropped_total)");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(dc->ret_notes[dc->nret_notes++], sizeof(dc->ret_notes[0]), fmt, ap);
	va_end(ap);
}

/* Delete from the front what is older than the retention, and settled events while `need` bytes
 * are to be freed. Called by the writer inside its transaction, without the lock; the lock is taken
 * to move positions of subscriptions that lose unsettled events, which are logged and counted
 * (those not handed yet, and those handed and not settled). 0 or a SQLite code. */
int dur_retention(struct dur_channel *dc, uint64_t need, uint64_t first, uint64_t settled)
{
	struct cut_scan cs = {dc, 0, need, settled, 0, 0, true};
	uint64_t from = first, lost = 0, was;
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
	was = dc->first;
	dc->first = cs.cut + 1;
	dc->bytes = dc->bytes > cs.freed ? dc->bytes - cs.freed : 0;
	for (size_t i = 0; i < dc->nsubs; i++) {
		struct dur_sub *sub = dc->subs[i];
		uint64_t out = 0;

		/* Handed out and not settled (in flight, or waiting for a retry): still handed from
		 * memory, but its position on disk is now before the first event stored, and a
		 * restart before it is settled goes on after it. */
		for (const struct dur_msg *m = sub->msgs; m; m = m->next)
			out += m->seq >= was && m->seq <= cs.cut;
		if (out) {
			lost += out;
			note(dc,
			     "retention (%llu ms) deleted events that subscription %s had been "
			     "handed and not settled (%llu): lost to it if the daemon stops before "
			     "they are",
			     (unsigned long long)dc->set.retention_ms, sub->key,
			     (unsigned long long)out);
		}
		if (sub->next <= cs.cut) {
			lost += cs.cut + 1 - sub->next;
			note(dc,
			     "retention (%llu ms) deleted events %llu..%llu that subscription %s had "
			     "not been handed yet: they are lost to it",
			     (unsigned long long)dc->set.retention_ms, (unsigned long long)sub->next,
			     (unsigned long long)cs.cut, sub->key);
			sub->next = cs.cut + 1;
			dc->dirty = true;
		}
	}
	dc->ret_lost += lost; /* counted when the round commits (dur_retention_said) */
	pthread_mutex_unlock(&dc->lock);
	return 0;
}

void dur_retention_said(struct dur_channel *dc, bool committed)
{
	if (committed) {
		for (size_t i = 0; i < dc->nret_notes; i++)
			CEB_LOG_WARN(dc->label, "%s", dc->ret_notes[i]);
		pthread_mutex_lock(&dc->lock);
		dc->dropped += dc->ret_lost;
		pthread_mutex_unlock(&dc->lock);
	}
	dc->nret_notes = 0;
	dc->ret_lost = 0;
}

/* Take the stored run as the store has it: another instance of this channel (the replacement a
 * reload starts beside the running one, or the one it replaces) may have committed since. Writer
 * thread; inside its transaction when a round calls it, so that the positions it then gives are
 * the store's. 0 or a SQLite code. */
int dur_sync_bounds(struct dur_channel *dc, uint64_t *first, uint64_t *next, uint64_t *bytes)
{
	uint64_t lo, hi, b;
	bool changed;
	int rc;

	/* What this connection committed is known already: the three queries only when another
	 * connection committed (a round costs one PRAGMA instead of three SELECTs). */
	changed = dur_store_changed(&dc->wst);
	pthread_mutex_lock(&dc->lock);
	lo = dc->first;
	hi = dc->last;
	b = dc->bytes;
	pthread_mutex_unlock(&dc->lock);
	if (changed) {
		rc = dur_store_refresh(&dc->wst, &lo, &hi, &b);
		if (rc != 0)
			return rc;
	}
	pthread_mutex_lock(&dc->lock);
	if (changed && (hi > dc->last || lo != dc->first || b != dc->bytes)) {
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
