/* The Kafka channel's consumer half (a Broker's Triggers, a KafkaSource): one consumer group and
 * thread per subscription, records handed out as credit allows, offsets committed once settled. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/log.h"
#include "channels/channel.h"
#include "channels/kafka/binding.h"
#include "channels/kafka/kafka.h"

#define REDELIVER_FIRST_MS 1000  /* a record settled FAILED comes back after this, doubling... */
#define REDELIVER_MAX_MS   60000 /* ...up to this */
#define AHEAD_ORDERED      4     /* ordered: records taken ahead per partition */
#define SKIP_LOG_FIRST     10    /* non-CloudEvent records: log the first few, then every 1000th */

enum rec_state {
	REC_HELD = 0, /* fetched, waiting for in-flight credit */
	REC_INFLIGHT, /* handed to the subscription, not settled */
	REC_FAILED,   /* settled FAILED: keeps its credit and comes back at `due` */
	REC_DONE,     /* settled, filtered or skipped: its offset may be committed */
};

/* One record of one assigned partition: the handle a subscription settles. */
struct krec {
	struct kpart *part; /* NULL once its partition was revoked (an orphan) */
	const char *topic;  /* its partition, also once an orphan */
	int32_t pid;
	int64_t offset;
	struct ceb_event *ev; /* our reference while not DONE; NULL for a skipped record */
	enum rec_state state;
	int attempts;             /* times handed out */
	uint64_t due;             /* REC_FAILED: when to hand it again */
	struct krec *prev, *next; /* the timer list (REC_FAILED) or the orphan list */
};

/* An assigned partition: its records in offset order, from the oldest not yet committable. */
struct kpart {
	const char *topic; /* one of the channel's topics */
	int32_t id;
	struct krec **ring;
	size_t cap, head, count;
	size_t handed;   /* records at the front of the ring that were handed out at least once */
	size_t inflight; /* INFLIGHT + FAILED */
	size_t orphans;  /* records of an earlier assignment of this partition still in flight */
	rd_kafka_queue_t
	        *q; /* its own fetch queue: records stay in librdkafka until there is room */
};

/* ---- records and partitions of a subscription (sub->lock held) ---- */

static void list_remove(struct krec **head, struct krec *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void list_push(struct krec **head, struct krec *r)
{
	r->prev = NULL;
	r->next = *head;
	if (*head)
		(*head)->prev = r;
	*head = r;
}

static void rec_free(struct krec *r)
{
	ceb_event_unref(r->ev);
	free(r);
}

static struct krec *part_at(const struct kpart *p, size_t i)
{
	return p->ring[(p->head + i) % p->cap];
}

static int part_push(struct kpart *p, struct krec *r)
{
	if (p->count == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 64;
		struct krec **ring = malloc(ncap * sizeof(*ring));
		if (!ring)
			return CEB_ENOMEM;
		for (size_t i = 0; i < p->count; i++)
			ring[i] = part_at(p, i);
		free(p->ring);
		p->ring = ring;
		p->cap = ncap;
		p->head = 0;
	}
	p->ring[(p->head + p->count) % p->cap] = r;
	p->count++;
	return 0;
}

static struct kpart *sub_part(struct kafka_sub *sub, const char *topic, int32_t id)
{
	for (size_t i = 0; i < sub->nparts; i++)
		if (sub->parts[i]->id == id && strcmp(sub->parts[i]->topic, topic) == 0)
			return sub->parts[i];
	return NULL;
}

/* Drop the DONE records at the front of p; returns the offset to commit (the first record not yet
 * settled, or one past the last settled), or -1 when nothing moved. */
static int64_t part_advance(struct kpart *p)
{
	int64_t next = -1;

	while (p->count && part_at(p, 0)->state == REC_DONE) {
		struct krec *r = part_at(p, 0);
		next = r->offset + 1;
		p->head = (p->head + 1) % p->cap;
		p->count--;
		if (p->handed)
			p->handed--;
		rec_free(r);
	}
	return next;
}

/* Let go of a revoked partition: settled records are freed, records a dispatcher still holds become
 * orphans (their settle only returns credit), the rest is forgotten: the next owner reads them again
 * from the committed offset. */
static void part_release(struct kafka_sub *sub, struct kpart *p)
{
	for (size_t i = 0; i < p->count; i++) {
		struct krec *r = part_at(p, i);
		switch (r->state) {
		case REC_INFLIGHT:
			r->part = NULL;
			list_push(&sub->orphans, r);
			continue;
		case REC_FAILED:
			list_remove(&sub->timers, r);
			sub->inflight--;
			sub->waiting--;
			break;
		case REC_HELD: sub->held--; break;
		case REC_DONE: break;
		}
		rec_free(r);
	}
	if (p->q)
		rd_kafka_queue_destroy(p->q);
	free(p->ring);
	free(p);
}

/* ---- consumer ---- */

static void offsets_add(rd_kafka_topic_partition_list_t **list, const char *topic, int32_t part,
                        int64_t offset)
{
	if (!*list)
		*list = rd_kafka_topic_partition_list_new(8);
	rd_kafka_topic_partition_list_add(*list, topic, part)->offset = offset;
}

/* Store the settled prefix of every partition (librdkafka commits stored offsets every
 * auto.commit.interval.ms, on revoke and on close). Consumer thread only, or after it stopped. */
static void sub_store(struct kafka_sub *sub)
{
	rd_kafka_topic_partition_list_t *store = NULL;

	pthread_mutex_lock(&sub->lock);
	for (size_t i = 0; i < sub->nparts; i++) {
		int64_t next = part_advance(sub->parts[i]);
		if (next >= 0)
			offsets_add(&store, sub->parts[i]->topic, sub->parts[i]->id, next);
	}
	pthread_mutex_unlock(&sub->lock);
	if (store) {
		rd_kafka_offsets_store(sub->rk, store);
		rd_kafka_topic_partition_list_destroy(store);
	}
}

/* Where a partition of a new group starts, or NULL when it keeps its committed offset. */
static struct kinit *sub_init(struct kafka_sub *sub, const char *topic, int32_t part)
{
	for (size_t i = 0; i < sub->ninit; i++)
		if (sub->init[i].part == part && sub->init[i].offset >= 0 &&
		    strcmp(sub->init[i].topic, topic) == 0)
			return &sub->init[i];
	return NULL;
}

/* A new group whose starting offsets could not be committed before it joined (a group that exists
 * without offsets for this topic refuses commits from outside it: the librdkafka mock does): start the
 * partitions that still have no committed offset at the end offsets read at start-up. Sets them in
 * parts and returns them (the caller stores them), or NULL. Consumer thread (rebalance). */
static rd_kafka_topic_partition_list_t *group_start(struct kafka_sub *sub,
                                                    rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *committed, *start = NULL;
	int any = 0;

	for (int i = 0; i < parts->cnt; i++)
		if (sub_init(sub, parts->elems[i].topic, parts->elems[i].partition))
			any = 1;
	if (!any)
		return NULL;
	committed = rd_kafka_topic_partition_list_copy(parts);
	if (rd_kafka_committed(sub->rk, committed, sub->kc->start_ms) == 0) {
		for (int i = 0; i < committed->cnt; i++) {
			rd_kafka_topic_partition_t *tp = &committed->elems[i];
			struct kinit *in = sub_init(sub, tp->topic, tp->partition);
			if (!in)
				continue;
			if (tp->offset < 0) {
				parts->elems[i].offset = in->offset;
				offsets_add(&start, in->topic, in->part, in->offset);
			}
			in->offset = -1;
		}
	}
	rd_kafka_topic_partition_list_destroy(committed);
	return start;
}

void kafka_sub_wake(struct kafka_sub *sub)
{
	char c = 'w';

	/* One byte per wake-up the thread has not taken yet, not one per settle: a syscall and a
	 * thread switch saved per event under load. The thread clears the flag after it emptied the
	 * pipe and before it looks at the records, so a change made before a skipped write is seen. */
	if (atomic_exchange(&sub->woken, 1))
		return;
	/* A full pipe is a pending wake-up already. */
	if (write(sub->wake[1], &c, 1) < 0 && errno != EAGAIN)
		CEB_LOG_DEBUG(sub->label, "wake-up: %s", strerror(errno));
}

/* Track a newly assigned partition (its own fetch queue, the orphans of an earlier assignment it
 * must wait for). sub->lock held; consumer thread (rebalance, rewind). */
static void sub_add_part(struct kafka_sub *sub, rd_kafka_t *rk, const char *topic, int32_t id)
{
	struct kpart *p = calloc(1, sizeof(*p)), **np;

	np = p ? realloc(sub->parts, (sub->nparts + 1) * sizeof(*np)) : NULL;
	if (!np) {
		/* Untracked: its records reach the consumer queue and are dropped there, never
		 * committed, so read again after the next rebalance or restart. */
		free(p);
		CEB_LOG_ERR(sub->label, "out of memory: partition %d is not consumed", (int)id);
		return;
	}
	p->topic = topic;
	p->id = id;
	/* Got back while deliveries of its previous assignment are in flight: an ordered
	 * subscription waits for them, or a record would overtake them. */
	for (struct krec *o = sub->orphans; o; o = o->next)
		if (o->pid == p->id && strcmp(o->topic, topic) == 0)
			p->orphans++;
	/* Records of each partition wait in its own queue, not the consumer queue, until there is
	 * credit for them: librdkafka stops fetching a partition whose queue is full
	 * (queued.min.messages), which bounds memory without pausing (a resume costs a fetch cycle
	 * in librdkafka 2.0). */
	p->q = rd_kafka_queue_get_partition(rk, topic, p->id);
	if (p->q) {
		rd_kafka_queue_forward(p->q, NULL);
		rd_kafka_queue_io_event_enable(p->q, sub->wake[1], "p", 1);
	}
	sub->parts = np;
	sub->parts[sub->nparts++] = p;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kafka_sub *sub = opaque;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_topic_partition_list_t *start = group_start(sub, parts);
		pthread_mutex_lock(&sub->lock);
		for (int i = 0; i < parts->cnt; i++) {
			const char *topic = kafka_chan_topic(sub->kc, parts->elems[i].topic);
			if (!topic || sub_part(sub, topic, parts->elems[i].partition))
				continue;
			sub_add_part(sub, rk, topic, parts->elems[i].partition);
		}
		pthread_mutex_unlock(&sub->lock);
		CEB_LOG_INFO(sub->label, "assigned %d partition(s) of %s%s", parts->cnt,
		             sub->kc->topics[0], sub->kc->ntopics > 1 ? " and more topics" : "");
		rd_kafka_assign(rk, parts);
		if (start) {
			/* Commit the starting point at the next auto-commit, as if settled. */
			rd_kafka_offsets_store(rk, start);
			rd_kafka_topic_partition_list_destroy(start);
		}
		kafka_sub_wake(sub);
		return;
	}
	/* Revoked (or lost): store only the prefix that is settled, never what is still in flight
	 * (eventing-kafka-broker#4460), then forget the partitions. */
	sub_store(sub);
	rd_kafka_assign(rk, NULL);
	pthread_mutex_lock(&sub->lock);
	for (size_t i = 0; i < sub->nparts; i++)
		part_release(sub, sub->parts[i]);
	free(sub->parts);
	sub->parts = NULL;
	sub->nparts = 0;
	pthread_mutex_unlock(&sub->lock);
	if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
		CEB_LOG_WARN(sub->label, "rebalance error: %s", rd_kafka_err2str(err));
	else
		CEB_LOG_INFO(sub->label, "partitions of %s%s revoked%s", sub->kc->topics[0],
		             sub->kc->ntopics > 1 ? " and more topics" : "",
		             rd_kafka_assignment_lost(rk) ? " (assignment lost)" : "");
}

/* A record as the event to hand out. A Broker's records are CloudEvents (others are skipped); a
 * KafkaSource passes CloudEvents as they are and maps any other record as Knative does (a record
 * that claims to be a CloudEvent and is not valid is mapped too: a source never drops a record). Its
 * ceOverrides extensions go on every event. */
static int sub_decode(struct kafka_sub *sub, const rd_kafka_message_t *m, struct ceb_event **out,
                      char *err, size_t errlen)
{
	const struct ceb_kafka_source_cfg *src = sub->kc->source;
	struct ceb_event *ev = NULL;
	int rc;

	if (!src)
		return ceb_kafka_decode(m, out, err, errlen);
	if (ceb_kafka_is_cloudevent(m)) {
		rc = ceb_kafka_decode(m, &ev, err, errlen);
		/* Consumer thread only: no lock for the counter. */
		if (rc < 0 && (++sub->invalid <= SKIP_LOG_FIRST || sub->invalid % 1000 == 0))
			CEB_LOG_WARN(sub->label,
			             "record %s/%d/%lld claims to be a CloudEvent but is not (%s): "
			             "sent as a plain record (%lu so far)",
			             rd_kafka_topic_name(m->rkt), (int)m->partition,
			             (long long)m->offset, err, sub->invalid);
	}
	if (!ev && (rc = ceb_kafka_map_record(m, src->ns, src->name, src->key_type, &ev)) < 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	for (size_t i = 0; i < src->nce_ext; i++) {
		rc = ceb_event_set(ev, src->ce_ext_keys[i], CEB_TYPE_STRING, src->ce_ext_values[i],
		                   strlen(src->ce_ext_values[i]), err, errlen);
		if (rc == CEB_ENOMEM) {
			ceb_event_unref(ev);
			return rc;
		}
	}
	*out = ev;
	return 0;
}

/* A record from the consumer: decoded and queued (HELD) on its partition. */
static void sub_take(struct kafka_sub *sub, rd_kafka_message_t *m)
{
	struct ceb_event *ev = NULL;
	const char *topic = rd_kafka_topic_name(m->rkt);
	struct kpart *p;
	struct krec *r;
	char err[256];
	int rc = sub_decode(sub, m, &ev, err, sizeof(err));

	r = calloc(1, sizeof(*r));
	pthread_mutex_lock(&sub->lock);
	p = sub_part(sub, topic, m->partition);
	if (!p || !r || rc == CEB_ENOMEM || part_push(p, r) < 0) {
		/* Revoked meanwhile: not tracked, the next owner reads it. Out of memory: fetch the
		 * partition again from this record, so that no later record is committed past it. */
		pthread_mutex_unlock(&sub->lock);
		if (p) {
			CEB_LOG_ERR(sub->label,
			            "out of memory: record %s/%d/%lld will be read again", topic,
			            (int)m->partition, (long long)m->offset);
			rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
		}
		free(r);
		ceb_event_unref(ev);
		return;
	}
	r->part = p;
	r->topic = p->topic;
	r->pid = p->id;
	r->offset = m->offset;
	if (rc < 0) {
		/* Not a CloudEvent: nobody can deliver it, so it counts as settled. */
		r->state = REC_DONE;
		sub->skipped++;
		if (sub->skipped <= SKIP_LOG_FIRST || sub->skipped % 1000 == 0)
			CEB_LOG_WARN(
			        sub->label,
			        "record %s/%d/%lld is not a CloudEvent (%s): skipped (%lu so far)",
			        topic, (int)m->partition, (long long)m->offset, err, sub->skipped);
	} else {
		r->ev = ev;
		r->state = REC_HELD;
		sub->held++;
	}
	pthread_mutex_unlock(&sub->lock);
}

/* Whether the subscription has room for another record of p. sub->lock held. */
static int sub_room(const struct kafka_sub *sub, const struct kpart *p)
{
	if (sub->held >= sub->cfg.max_inflight)
		return 0;
	return !sub->cfg.ordered || p->count - p->handed < AHEAD_ORDERED;
}

/* Take records from the partition queues while the subscription has room for them: unordered, up to
 * its in-flight cap beyond what is in flight; ordered, a few per partition. Consumer thread (the
 * only one that changes the partition list). */
static void sub_fill(struct kafka_sub *sub)
{
	for (size_t i = 0; i < sub->nparts; i++) {
		struct kpart *p = sub->parts[i];
		rd_kafka_message_t *m;
		int room;

		pthread_mutex_lock(&sub->lock);
		room = sub_room(sub, p);
		pthread_mutex_unlock(&sub->lock);
		while (p->q && room && (m = rd_kafka_consume_queue(p->q, 0))) {
			if (!m->err)
				sub_take(sub, m);
			else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				CEB_LOG_WARN(sub->label, "consumer: %s",
				             rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			pthread_mutex_lock(&sub->lock);
			room = sub_room(sub, p);
			pthread_mutex_unlock(&sub->lock);
		}
	}
}

struct handout {
	struct ceb_event *ev;
	struct krec *r;
};

/* Commit what can be committed, hand out what credit allows. Consumer thread only. Returns how many
 * were handed out; *wait_ms is the time until the next redelivery is due (-1: none). */
static size_t sub_pump(struct kafka_sub *sub, int *wait_ms)
{
	rd_kafka_topic_partition_list_t *store = NULL;
	struct handout out[64];
	size_t nout = 0, max = sub->cfg.max_inflight;
	uint64_t now = ceb_now_ms(), next_due = 0;
	int more = 1;

	pthread_mutex_lock(&sub->lock);
	for (size_t i = 0; i < sub->nparts; i++) {
		int64_t next = part_advance(sub->parts[i]);
		if (next >= 0)
			offsets_add(&store, sub->parts[i]->topic, sub->parts[i]->id, next);
	}
	/* Redeliveries keep the credit they had. */
	for (struct krec *r = sub->timers, *nx; r && nout < 64; r = nx) {
		nx = r->next;
		if (r->due > now) {
			if (!next_due || r->due < next_due)
				next_due = r->due;
			continue;
		}
		list_remove(&sub->timers, r);
		r->state = REC_INFLIGHT;
		r->attempts++;
		sub->waiting--;
		sub->redelivered++;
		out[nout].ev = ceb_event_ref(r->ev);
		out[nout++].r = r;
	}
	/* New records, one partition after the other so that none starves. */
	while (more && sub->inflight < max && nout < 64) {
		more = 0;
		for (size_t k = 0; k < sub->nparts && sub->inflight < max && nout < 64; k++) {
			struct kpart *p = sub->parts[(sub->rr + k) % sub->nparts];
			struct krec *r;
			while (p->handed < p->count && part_at(p, p->handed)->state == REC_DONE)
				p->handed++; /* skipped records: not CloudEvents */
			if (p->handed == p->count ||
			    (sub->cfg.ordered && (p->inflight || p->orphans)))
				continue;
			r = part_at(p, p->handed++);
			r->state = REC_INFLIGHT;
			r->attempts++;
			p->inflight++;
			sub->inflight++;
			sub->held--;
			out[nout].ev = ceb_event_ref(r->ev);
			out[nout++].r = r;
			more = 1;
		}
		sub->rr++;
	}
	pthread_mutex_unlock(&sub->lock);

	if (store) {
		rd_kafka_offsets_store(sub->rk, store);
		rd_kafka_topic_partition_list_destroy(store);
	}
	/* Outside the lock: a receiver may settle from inside on_msg. */
	for (size_t i = 0; i < nout; i++)
		sub->cfg.on_msg(sub->cfg.arg, out[i].ev, out[i].r);
	*wait_ms = -1;
	if (next_due) {
		now = ceb_now_ms();
		*wait_ms = next_due <= now ? 0 : (int)(next_due - now);
	}
	return nout;
}

/* A rewind asked by kafka_rewind, in the consumer thread: the target offset of every assigned
 * partition (by time: rd_kafka_offsets_for_times; none at or after it: the end), the settled prefix
 * stored as on a revoke, the partitions tracked afresh (records still out become orphans, as after a
 * revoke: their settles only return credit), then a seek. Settling the records read again stores
 * their offsets, lower than the committed ones: a crash during the replay goes on with it. */
static void sub_rewind(struct kafka_sub *sub)
{
	rd_kafka_topic_partition_list_t *cur = NULL, *to = NULL;
	int64_t since = sub->rw_since, offset = sub->rw_offset, first = -1;
	struct {
		const char *topic;
		int32_t id;
	} * ids;
	size_t nids;
	uint64_t count = 0;
	rd_kafka_error_t *error;
	rd_kafka_resp_err_t err;
	int rc = 0;
	char msg[256] = "";

	err = rd_kafka_assignment(sub->rk, &cur);
	if (err || !cur || cur->cnt == 0) {
		rc = CEB_EUNAVAIL;
		snprintf(msg, sizeof(msg),
		         "its consumer has no partitions assigned yet: try again");
		goto out;
	}
	to = rd_kafka_topic_partition_list_copy(cur);
	for (int i = 0; i < to->cnt; i++)
		to->elems[i].offset = since >= 0 ? since : offset;
	if (since >= 0 && (err = rd_kafka_offsets_for_times(sub->rk, to, sub->kc->start_ms)) != 0) {
		rc = CEB_EUNAVAIL;
		snprintf(msg, sizeof(msg), "cannot look the time up in Kafka: %s",
		         rd_kafka_err2str(err));
		goto out;
	}
	for (int i = 0; i < to->cnt; i++) {
		rd_kafka_topic_partition_t *tp = &to->elems[i];
		int64_t lo = 0, hi = 0;

		if (tp->err) {
			rc = CEB_EUNAVAIL;
			snprintf(msg, sizeof(msg), "partition %d: %s", (int)tp->partition,
			         rd_kafka_err2str(tp->err));
			goto out;
		}
		if (rd_kafka_query_watermark_offsets(sub->rk, tp->topic, tp->partition, &lo, &hi,
		                                     sub->kc->start_ms) != 0)
			lo = hi = -1;
		if (tp->offset < 0 || (hi >= 0 && tp->offset > hi))
			tp->offset = hi >= 0 ? hi : RD_KAFKA_OFFSET_END; /* nothing at or after */
		if (lo >= 0 && tp->offset < lo)
			tp->offset = lo;
		if (hi >= 0 && tp->offset >= 0)
			count += (uint64_t)(hi - tp->offset);
		if (tp->offset >= 0 && (first < 0 || tp->offset < first))
			first = tp->offset;
	}
	sub_store(sub);
	pthread_mutex_lock(&sub->lock);
	ids = calloc(sub->nparts ? sub->nparts : 1, sizeof(*ids));
	if (!ids) {
		pthread_mutex_unlock(&sub->lock);
		rc = CEB_ENOMEM;
		snprintf(msg, sizeof(msg), "out of memory");
		goto out;
	}
	nids = sub->nparts;
	for (size_t i = 0; i < nids; i++) {
		ids[i].topic = sub->parts[i]->topic;
		ids[i].id = sub->parts[i]->id;
		part_release(sub, sub->parts[i]);
	}
	sub->nparts = 0;
	for (size_t i = 0; i < nids; i++)
		sub_add_part(sub, sub->rk, ids[i].topic, ids[i].id);
	pthread_mutex_unlock(&sub->lock);
	free(ids);
	error = rd_kafka_seek_partitions(sub->rk, to, sub->kc->start_ms);
	if (error) {
		rc = CEB_EUNAVAIL;
		snprintf(msg, sizeof(msg), "seek: %s", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		goto out;
	}
	for (int i = 0; i < to->cnt && !rc; i++)
		if (to->elems[i].err) {
			rc = CEB_EUNAVAIL;
			snprintf(msg, sizeof(msg), "seek of partition %d: %s",
			         (int)to->elems[i].partition, rd_kafka_err2str(to->elems[i].err));
		}
	if (!rc)
		CEB_LOG_INFO(sub->label, "rewound %d partition(s) (%llu records to deliver again)",
		             to->cnt, (unsigned long long)count);
out:
	if (cur)
		rd_kafka_topic_partition_list_destroy(cur);
	if (to)
		rd_kafka_topic_partition_list_destroy(to);
	pthread_mutex_lock(&sub->lock);
	sub->rw_rc = rc;
	sub->rw_first = first < 0 ? 0 : first;
	sub->rw_count = count;
	snprintf(sub->rw_err, sizeof(sub->rw_err), "%s", msg);
	sub->rw_state = 2;
	pthread_cond_broadcast(&sub->rw_done);
	pthread_mutex_unlock(&sub->lock);
}

int kafka_rewind(void *ctx, void *subp, int64_t since_ms, int64_t offset, uint64_t *first,
                 uint64_t *count, char *errbuf, size_t errlen)
{
	struct kafka_sub *sub = subp;
	struct timespec ts;
	int rc = 0;

	(void)ctx;
	if (!sub->running || atomic_load(&sub->stop)) {
		snprintf(errbuf, errlen, "the Trigger's consumer is not running");
		return CEB_EUNAVAIL;
	}
	if (since_ms < 0 && offset < 0) {
		snprintf(errbuf, errlen, "offset %lld is negative", (long long)offset);
		return CEB_EINVAL;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 30;
	pthread_mutex_lock(&sub->lock);
	if (sub->rw_state == 1) {
		pthread_mutex_unlock(&sub->lock);
		snprintf(errbuf, errlen, "a replay of this Trigger is under way: try again");
		return CEB_EUNAVAIL;
	}
	sub->rw_state = 1;
	sub->rw_since = since_ms;
	sub->rw_offset = offset;
	pthread_mutex_unlock(&sub->lock);
	kafka_sub_wake(sub);
	pthread_mutex_lock(&sub->lock);
	while (sub->rw_state != 2 && pthread_cond_timedwait(&sub->rw_done, &sub->lock, &ts) == 0)
		;
	if (sub->rw_state != 2) {
		/* it will still happen; the next ask waits for it */
		rc = CEB_EUNAVAIL;
		snprintf(errbuf, errlen, "the consumer did not answer within 30 s");
	} else {
		rc = sub->rw_rc;
		*first = (uint64_t)sub->rw_first;
		*count = sub->rw_count;
		if (rc)
			snprintf(errbuf, errlen, "%s", sub->rw_err);
		sub->rw_state = 0;
	}
	pthread_mutex_unlock(&sub->lock);
	return rc;
}

void *kafka_consumer_main(void *arg)
{
	struct kafka_sub *sub = arg;
	int wait = 0;
	bool rewind;

	while (!atomic_load(&sub->stop)) {
		struct pollfd pfd = {.fd = sub->wake[0], .events = POLLIN};
		rd_kafka_message_t *m;
		char buf[256];

		if (wait < 0 || wait > 500)
			wait = 500; /* the consumer is polled at least this often (max.poll.interval.ms) */
		poll(&pfd, 1, wait);
		while (read(sub->wake[0], buf, sizeof(buf)) > 0)
			;
		atomic_store(&sub->woken, 0); /* see kafka_sub_wake */
		/* Group events (rebalances run in here), errors, and the records of partitions that
		 * have no queue of their own. */
		while ((m = rd_kafka_consumer_poll(sub->rk, 0))) {
			if (!m->err)
				sub_take(sub, m);
			else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				CEB_LOG_WARN(sub->label, "consumer: %s",
				             rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
		}
		pthread_mutex_lock(&sub->lock);
		rewind = sub->rw_state == 1;
		pthread_mutex_unlock(&sub->lock);
		if (rewind)
			sub_rewind(sub);
		/* Keep the subscription busy, but come back to the group's events now and then. */
		for (int round = 0; round < 16 && !atomic_load(&sub->stop); round++) {
			sub_fill(sub);
			if (sub_pump(sub, &wait) == 0)
				break;
			wait = 0;
		}
	}
	return NULL;
}

void kafka_settle(void *ctx, void *subp, void *handle, enum ceb_settle how)
{
	struct kafka_sub *sub = subp;
	struct krec *r = handle;
	bool wake;

	pthread_mutex_lock(&sub->lock);
	/* The consumer thread must act at once when this settle lets it hand out a record: an
	 * ordered partition is free again, the subscription was at its in-flight cap (records wait
	 * for credit), or a redelivery needs a timer. A delivered record of an unordered
	 * subscription with credit to spare only moves the committable offset: it is stored at the
	 * thread's next turn (a record fetched, or its 500 ms tick), well within the auto-commit
	 * interval, instead of one wake-up of the thread per event. */
	wake = sub->cfg.ordered || how != CEB_SETTLE_DONE || !r->part || sub->held ||
	       sub->inflight >= sub->cfg.max_inflight;
	if (r->state != REC_INFLIGHT) {
		pthread_mutex_unlock(&sub->lock);
		CEB_LOG_ERR(sub->label, "a message was settled twice; ignored");
		return;
	}
	if (!r->part) {
		/* Its partition went to another consumer, which reads it again from the committed
		 * offset: this settle only gives back the credit. */
		struct kpart *p = sub_part(sub, r->topic, r->pid);
		list_remove(&sub->orphans, r);
		sub->inflight--;
		if (p && p->orphans)
			p->orphans--;
		rec_free(r);
	} else if (how == CEB_SETTLE_DONE) {
		r->state = REC_DONE;
		ceb_event_unref(r->ev);
		r->ev = NULL;
		r->part->inflight--;
		sub->inflight--;
	} else {
		int shift = r->attempts < 7 ? r->attempts - 1 : 6;
		uint64_t delay = (uint64_t)REDELIVER_FIRST_MS << (shift > 0 ? shift : 0);
		r->state = REC_FAILED;
		r->due = ceb_now_ms() + (delay < REDELIVER_MAX_MS ? delay : REDELIVER_MAX_MS);
		list_push(&sub->timers, r);
		sub->waiting++;
	}
	pthread_mutex_unlock(&sub->lock);
	if (wake)
		kafka_sub_wake(sub);
}

int kafka_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out)
{
	static const struct kprop defaults[] = {
	        {"client.id", "cebroker"},
	        /* fewer duplicates after a crash */
	        {"auto.commit.interval.ms", "1000"},
	        /* a restarted daemon gets its partitions back soon */
	        {"session.timeout.ms", "10000"},
	        {"heartbeat.interval.ms", "1000"},
	        /* what librdkafka fetches ahead per partition: memory under lag */
	        {"queued.min.messages", "1000"},
	        {"queued.max.messages.kbytes", "8192"},
	        {"log.connection.close", "false"},
	        {"reconnect.backoff.max.ms", "1000"},
	        {NULL, NULL},
	};
	struct kafka_channel *kc = ctx;
	struct kafka_sub *sub, **subs;
	rd_kafka_conf_t *conf;
	char err[512];

	if (kc->started || kc->role == ROLE_SINK || (kc->source && kc->nsubs))
		return CEB_ESTATE;
	sub = calloc(1, sizeof(*sub));
	subs = sub ? realloc(kc->subs, (kc->nsubs + 1) * sizeof(*subs)) : NULL;
	if (!subs) {
		free(sub);
		return CEB_ENOMEM;
	}
	kc->subs = subs;
	sub->kc = kc;
	sub->cfg = *cfg;
	if (sub->cfg.max_inflight == 0)
		sub->cfg.max_inflight = 1;
	if (pipe2(sub->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(sub);
		return CEB_EIO;
	}
	pthread_mutex_init(&sub->lock, NULL);
	pthread_cond_init(&sub->rw_done, NULL);
	if (kc->source) {
		snprintf(sub->label, sizeof(sub->label), "%s", kc->label);
		snprintf(sub->group, sizeof(sub->group), "%s", kc->source->group);
	} else if (kc->role == ROLE_CHANNEL) {
		/* eventing-kafka-broker: kafka.<ns>.<channel>.<subscription uid>; the name stands
		 * for the uid here */
		snprintf(sub->label, sizeof(sub->label), "subscription %s/%s", cfg->ns, cfg->name);
		snprintf(sub->group, sizeof(sub->group), "kafka.%s.%s.%s", cfg->ns, kc->name,
		         cfg->name);
	} else {
		snprintf(sub->label, sizeof(sub->label), "trigger %s/%s", cfg->ns, cfg->name);
		snprintf(sub->group, sizeof(sub->group), "knative-trigger-%s-%s", cfg->ns,
		         cfg->name);
	}
	{
		const struct kprop forced[] = {
		        {"group.id", sub->group},
		        {"enable.auto.commit", "true"},
		        /* we store only the settled prefix */
		        {"enable.auto.offset.store", "false"},
		        /* see group_init (kafka.c) */
		        {"auto.offset.reset", "earliest"},
		        {"enable.partition.eof", "false"},
		        {NULL, NULL},
		};
		conf = kafka_client_conf(kc, defaults, forced, err, sizeof(err));
	}
	if (!conf) {
		CEB_LOG_ERR(sub->label, "cannot configure the Kafka consumer: %s", err);
		goto fail;
	}
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_opaque(conf, sub);
	sub->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!sub->rk) {
		rd_kafka_conf_destroy(conf);
		CEB_LOG_ERR(sub->label, "cannot create the Kafka consumer: %s", err);
		goto fail;
	}
	rd_kafka_poll_set_consumer(sub->rk);
	sub->q = rd_kafka_queue_get_consumer(sub->rk);
	rd_kafka_queue_io_event_enable(sub->q, sub->wake[1], "c", 1);
	kc->subs[kc->nsubs++] = sub;
	*out = sub;
	return 0;
fail:
	close(sub->wake[0]);
	close(sub->wake[1]);
	pthread_cond_destroy(&sub->rw_done);
	pthread_mutex_destroy(&sub->lock);
	free(sub);
	return CEB_ECONFIG;
}

void kafka_sub_destroy(struct kafka_sub *sub)
{
	if (sub->running) {
		atomic_store(&sub->stop, 1);
		kafka_sub_wake(sub);
		pthread_join(sub->thread, NULL);
	}
	if (sub->rk) {
		/* Store the settled prefix; close commits it, leaves the group (its partitions go to
		 * another member at once) and revokes: rebalance_cb frees the tracking. The queues we
		 * hold must go first, or close waits for them. */
		sub_store(sub);
		pthread_mutex_lock(&sub->lock);
		for (size_t i = 0; i < sub->nparts; i++) {
			if (sub->parts[i]->q)
				rd_kafka_queue_destroy(sub->parts[i]->q);
			sub->parts[i]->q = NULL;
		}
		pthread_mutex_unlock(&sub->lock);
		if (sub->q)
			rd_kafka_queue_destroy(sub->q);
		sub->q = NULL;
		rd_kafka_consumer_close(sub->rk);
	}
	for (size_t i = 0; i < sub->nparts; i++)
		part_release(sub, sub->parts[i]);
	free(sub->parts);
	while (sub->orphans) {
		struct krec *r = sub->orphans;
		list_remove(&sub->orphans, r);
		rec_free(r);
	}
	free(sub->init);
	if (sub->q)
		rd_kafka_queue_destroy(sub->q);
	if (sub->rk)
		rd_kafka_destroy(sub->rk);
	close(sub->wake[0]);
	close(sub->wake[1]);
	if (sub->skipped || sub->redelivered)
		CEB_LOG_INFO(sub->label, "%lu record(s) skipped (not CloudEvents), %lu redelivered",
		             sub->skipped, sub->redelivered);
	pthread_cond_destroy(&sub->rw_done);
	pthread_mutex_destroy(&sub->lock);
	free(sub);
}
