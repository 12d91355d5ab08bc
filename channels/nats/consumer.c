/* Consuming: one durable pull consumer per Trigger (or a NatsSource's consumer, or its core
 * subscription), fetched by a thread of its own that hands at most max_inflight messages at a time.
 * A message is acknowledged only when the dispatcher settles it done; while the dispatcher holds it
 * (retrying, backing off) the thread sends in-progress acks so that JetStream does not hand it to
 * another process; one settled failed comes back after a growing delay (NAK with delay: never a
 * zero-delay loop). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/clock.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/nats/binding.h"
#include "channels/nats/nats.h"

#define FETCH_BATCH   64
#define FETCH_WAIT_MS 500
#define NAK_MAX_MS    60000

/* A message handed to the dispatcher. */
struct nats_held {
	natsMsg *m; /* NULL for core NATS (nothing to acknowledge) */
	struct nats_sub *sub;
	int64_t progress_ms; /* when JetStream last heard of it */
	struct nats_held *prev, *next;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A durable name from a resource, as eventing-natss names them: upper case, characters other than
 * [A-Z0-9_] ('-', '.') as '_'. */
static void durable_name(char *out, size_t n, const char *prefix, const char *ns, const char *name)
{
	size_t k;

	snprintf(out, n, "%s%s__%s", prefix, ns, name);
	for (k = 0; out[k]; k++) {
		char c = out[k];
		if (c >= 'a' && c <= 'z')
			out[k] = (char)(c - 32);
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			out[k] = '_';
	}
}

int nats_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out)
{
	struct nats_chan *nch = ctx;
	struct nats_sub *sub = calloc(1, sizeof(*sub)), **subs;

	if (!sub)
		return CEB_ENOMEM;
	subs = realloc(nch->subs, (nch->nsubs + 1) * sizeof(*subs));
	if (!subs) {
		free(sub);
		return CEB_ENOMEM;
	}
	nch->subs = subs;
	sub->nch = nch;
	sub->cfg = *cfg;
	if (sub->cfg.max_inflight < 1)
		sub->cfg.max_inflight = 1;
	pthread_mutex_init(&sub->lock, NULL);
	pthread_cond_init(&sub->cond, NULL);
	if (nch->role == NROLE_BROKER)
		/* eventing-natss: KN_SUB_<uid> for a channel's, KN_TRIGGER_<uid> for a Trigger's;
		 * the namespace and name stand for the uid */
		durable_name(sub->durable, sizeof(sub->durable),
		             nch->channel ? "KN_SUB_" : "KN_TRIGGER_", cfg->ns, cfg->name);
	else if (nch->src->consumer)
		snprintf(sub->durable, sizeof(sub->durable), "%s", nch->src->consumer);
	else
		durable_name(sub->durable, sizeof(sub->durable), "CEBROKER_NATSSOURCE_",
		             nch->src->ns, nch->src->name);
	snprintf(sub->label, sizeof(sub->label), "%s: %s", nch->label,
	         nch->role == NROLE_SOURCE_CORE ? nch->src->subject : sub->durable);
	nch->subs[nch->nsubs++] = sub;
	*out = sub;
	return 0;
}

int nats_sub_prepare(struct nats_sub *sub, char *errbuf, size_t errlen)
{
	struct nats_chan *nch = sub->nch;
	const struct ceb_nats_source_cfg *src = nch->src;
	jsConsumerInfo *ci = NULL;
	jsConsumerConfig cc;
	jsErrCode jerr = 0;
	natsStatus s;

	if (nch->role == NROLE_SOURCE_CORE)
		return 0;
	s = js_GetConsumerInfo(&ci, nch->cjsc, nch->stream, sub->durable, NULL, &jerr);
	if (s == NATS_OK) {
		CEB_LOG_INFO(sub->label, "durable consumer %s on stream %s exists: it resumes",
		             sub->durable, nch->stream);
		jsConsumerInfo_Destroy(ci);
		return 0;
	}
	if (s != NATS_NOT_FOUND && jerr != JSConsumerNotFoundErr) {
		snprintf(errbuf, errlen, "%s: cannot read consumer %s of stream %s: %s", sub->label,
		         sub->durable, nch->stream, natsStatus_GetText(s));
		return CEB_EUNAVAIL;
	}
	jsConsumerConfig_Init(&cc);
	cc.Durable = sub->durable;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = nch->js.ack_wait_ms * 1000000;
	cc.MaxAckPending = nch->js.max_ack_pending;
	cc.MaxDeliver = -1; /* the dispatcher owns retries and dead letters: never drop */
	cc.DeliverPolicy = js_DeliverNew;
	if (src) {
		static const jsDeliverPolicy pol[] = {js_DeliverAll, js_DeliverNew, js_DeliverLast,
		                                      js_DeliverByStartSequence,
		                                      js_DeliverByStartTime};
		cc.DeliverPolicy = pol[src->deliver];
		cc.OptStartSeq = src->deliver == CEB_NATS_DELIVER_SEQ ? src->start_seq : 0;
		cc.OptStartTime = src->deliver == CEB_NATS_DELIVER_TIME ? src->start_time_ns : 0;
		cc.FilterSubject = src->subject;
	}
	s = js_AddConsumer(&ci, nch->cjsc, nch->stream, &cc, NULL, &jerr);
	if (s != NATS_OK) {
		snprintf(errbuf, errlen, "%s: cannot create consumer %s on stream %s: %s (%d)",
		         sub->label, sub->durable, nch->stream, nats_GetLastError(NULL), (int)jerr);
		return CEB_EUNAVAIL;
	}
	jsConsumerInfo_Destroy(ci);
	CEB_LOG_INFO(sub->label, "created durable pull consumer %s on stream %s", sub->durable,
	             nch->stream);
	return 0;
}

/* Hand one message to the dispatcher (the caller counted it in inflight). */
static void hand(struct nats_sub *sub, natsMsg *m, bool keep)
{
	struct nats_chan *nch = sub->nch;
	struct ceb_event *ev = NULL;
	struct nats_held *h = NULL;
	char err[256];
	int rc = ceb_nats_decode(m, &ev, err, sizeof(err));

	if (rc < 0 && nch->role != NROLE_BROKER) {
		jsMsgMetaData *md = NULL;
		uint64_t seq = 0;
		if (keep && natsMsg_GetMetaData(&md, m) == NATS_OK) {
			seq = md->Sequence.Stream;
			jsMsgMetaData_Destroy(md);
		}
		rc = ceb_nats_map_plain(m, nch->src->ns, nch->src->name, keep ? nch->stream : NULL,
		                        seq, &ev);
		if (rc < 0)
			snprintf(err, sizeof(err), "out of memory");
	}
	/* A source's ceOverrides.extensions, on every event it emits. */
	for (size_t i = 0; rc == 0 && nch->src && i < nch->src->nce_ext; i++)
		if (ceb_event_set(ev, nch->src->ce_ext_keys[i], CEB_TYPE_STRING,
		                  nch->src->ce_ext_values[i], strlen(nch->src->ce_ext_values[i]),
		                  err, sizeof(err)) == CEB_ENOMEM)
			rc = CEB_ENOMEM;
	if (rc == 0 && !(h = calloc(1, sizeof(*h))))
		rc = CEB_ENOMEM;
	if (rc < 0) {
		/* Not something any subscriber could take: acknowledged (terminated), never looped. */
		pthread_mutex_lock(&sub->lock);
		sub->inflight--;
		sub->skipped++;
		pthread_mutex_unlock(&sub->lock);
		CEB_LOG_WARN(sub->label, "skipped a message on %s that is not a CloudEvent: %s",
		             natsMsg_GetSubject(m), err);
		if (keep)
			natsMsg_Term(m, NULL);
		natsMsg_Destroy(m);
		ceb_event_unref(ev);
		return;
	}
	h->sub = sub;
	h->m = keep ? m : NULL;
	h->progress_ms = now_ms();
	pthread_mutex_lock(&sub->lock);
	h->next = sub->held;
	if (sub->held)
		sub->held->prev = h;
	sub->held = h;
	pthread_mutex_unlock(&sub->lock);
	if (!keep)
		natsMsg_Destroy(m);
	sub->cfg.on_msg(sub->cfg.arg, ev, h);
}

/* In-progress acks for what the dispatcher has held for a third of the ack wait. */
static void keep_alive(struct nats_sub *sub)
{
	int64_t now = now_ms(), every = sub->nch->js.ack_wait_ms / 3;

	if (every < 100)
		every = 100;
	pthread_mutex_lock(&sub->lock);
	for (struct nats_held *h = sub->held; h; h = h->next) {
		if (h->m && now - h->progress_ms >= every) {
			natsMsg_InProgress(h->m, NULL);
			h->progress_ms = now;
		}
	}
	pthread_mutex_unlock(&sub->lock);
}

static void *pull_main(void *arg)
{
	struct nats_sub *sub = arg;
	int failing = 0;

	while (!atomic_load(&sub->stop)) {
		natsMsgList list = {0};
		jsErrCode jerr = 0;
		size_t room;
		natsStatus s;

		keep_alive(sub);
		pthread_mutex_lock(&sub->lock);
		room = sub->cfg.max_inflight - sub->inflight;
		if (room == 0) {
			struct timespec ts = ceb_timespec_in_ms(CLOCK_REALTIME, 200);
			pthread_cond_timedwait(&sub->cond, &sub->lock, &ts);
			pthread_mutex_unlock(&sub->lock);
			continue;
		}
		pthread_mutex_unlock(&sub->lock);
		if (room > FETCH_BATCH)
			room = FETCH_BATCH;
		/* What is there now, up to room, without waiting; when nothing is, wait for the
		 * next one alone (a fetch waits for its whole batch: a long poll for one keeps the
		 * latency of an idle Trigger low). Under load one pull request brings about 28
		 * events (nats-server's /connz: 2 438 requests for 70 390 events).
		 *
		 * Keep this shape with nats.c before 3.10 (Debian 12 has 3.4.1): its fetch writes
		 * past the list it allocated when messages of an earlier request are still pending
		 * and outnumber half the batch (nats.c #749). Here the only earlier requests that
		 * can leave one behind are the waits for one message, so at most one is pending, and
		 * a no-wait request's answer is bounded by its batch. A waiting request for a batch
		 * with a short expiry overflowed within seconds under load (seen under ASan). */
		{
			jsFetchRequest fr;
			jsFetchRequest_Init(&fr);
			fr.Batch = (int)room;
			fr.NoWait = true;
			fr.Expires = (int64_t)FETCH_WAIT_MS * 1000000;
			s = natsSubscription_FetchRequest(&list, sub->ps, &fr);
		}
		if (list.Count == 0 && !atomic_load(&sub->stop) &&
		    (s == NATS_OK || s == NATS_TIMEOUT || s == NATS_NOT_FOUND)) {
			natsMsgList_Destroy(&list);
			s = natsSubscription_Fetch(&list, sub->ps, 1, FETCH_WAIT_MS, &jerr);
		}
		if (s == NATS_TIMEOUT || (s == NATS_NOT_FOUND && list.Count == 0))
			continue;
		if (s != NATS_OK && list.Count == 0) {
			if (!failing++)
				CEB_LOG_WARN(sub->label, "cannot fetch: %s (retrying)",
				             natsStatus_GetText(s));
			nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
			continue;
		}
		if (failing)
			CEB_LOG_INFO(sub->label, "fetching again");
		failing = 0;
		pthread_mutex_lock(&sub->lock);
		sub->inflight += (size_t)list.Count;
		pthread_mutex_unlock(&sub->lock);
		for (int i = 0; i < list.Count; i++) {
			hand(sub, list.Msgs[i], true);
			list.Msgs[i] = NULL;
		}
		natsMsgList_Destroy(&list);
	}
	return NULL;
}

/* Core NATS: nats.c's delivery thread. Waits for room (core NATS has no flow control: what piles
 * up behind it beyond nats.c's pending limits is dropped, as core NATS is at most once). */
static void core_cb(natsConnection *nc, natsSubscription *ns, natsMsg *m, void *closure)
{
	struct nats_sub *sub = closure;

	(void)nc;
	(void)ns;
	pthread_mutex_lock(&sub->lock);
	while (sub->inflight >= sub->cfg.max_inflight && !atomic_load(&sub->stop))
		pthread_cond_wait(&sub->cond, &sub->lock);
	if (atomic_load(&sub->stop)) {
		pthread_mutex_unlock(&sub->lock);
		natsMsg_Destroy(m);
		return;
	}
	sub->inflight++;
	pthread_mutex_unlock(&sub->lock);
	hand(sub, m, false);
}

int nats_sub_start(struct nats_sub *sub, char *errbuf, size_t errlen)
{
	struct nats_chan *nch = sub->nch;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;

	if (nch->role == NROLE_SOURCE_CORE) {
		const char *q = nch->src->queue;
		s = q ? natsConnection_QueueSubscribe(&sub->ps, nch->cnc, nch->src->subject, q,
		                                      core_cb, sub)
		      : natsConnection_Subscribe(&sub->ps, nch->cnc, nch->src->subject, core_cb,
		                                 sub);
		if (s == NATS_OK)
			natsSubscription_SetPendingLimits(sub->ps, 65536, 64 * 1024 * 1024);
	} else {
		jsSubOptions_Init(&so);
		so.Stream = nch->stream;
		so.Consumer = sub->durable;
		s = js_PullSubscribe(&sub->ps, nch->cjsc, NULL, sub->durable, NULL, &so, &jerr);
	}
	if (s != NATS_OK) {
		snprintf(errbuf, errlen, "%s: cannot subscribe: %s", sub->label,
		         nats_GetLastError(NULL));
		return CEB_EUNAVAIL;
	}
	if (nch->role != NROLE_SOURCE_CORE) {
		if (pthread_create(&sub->thread, NULL, pull_main, sub) != 0) {
			snprintf(errbuf, errlen, "%s: cannot start a thread", sub->label);
			return CEB_EIO;
		}
		pthread_setname_np(sub->thread, "ceb-nats-pull");
		sub->running = 1;
	}
	return 0;
}

void nats_sub_stop(struct nats_sub *sub)
{
	atomic_store(&sub->stop, 1);
	pthread_mutex_lock(&sub->lock);
	pthread_cond_broadcast(&sub->cond);
	pthread_mutex_unlock(&sub->lock);
	if (sub->running)
		pthread_join(sub->thread, NULL);
	sub->running = 0;
	/* Core NATS: no callback runs once the drain completed (what was pending is dropped by the
	 * callback, which sees stop), so destroy may free sub. */
	if (sub->ps && sub->nch->role == NROLE_SOURCE_CORE && !sub->drained) {
		sub->drained = 1;
		if (natsSubscription_Drain(sub->ps) == NATS_OK)
			natsSubscription_WaitForDrainCompletion(sub->ps, 10000);
	}
}

void nats_settle(void *ctx, void *subp, void *handle, enum ceb_settle how)
{
	struct nats_sub *sub = subp;
	struct nats_held *h = handle;

	(void)ctx;
	pthread_mutex_lock(&sub->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		sub->held = h->next;
	if (h->next)
		h->next->prev = h->prev;
	sub->inflight--;
	pthread_cond_broadcast(&sub->cond);
	pthread_mutex_unlock(&sub->lock);
	if (h->m) {
		if (how == CEB_SETTLE_DONE) {
			natsMsg_Ack(h->m, NULL);
		} else {
			/* Back after a delay that doubles with each delivery, up to a minute. */
			jsMsgMetaData *md = NULL;
			int64_t delay = sub->nch->js.nak_delay_ms;
			if (natsMsg_GetMetaData(&md, h->m) == NATS_OK) {
				for (uint64_t k = 1; k < md->NumDelivered && delay < NAK_MAX_MS;
				     k++)
					delay *= 2;
				jsMsgMetaData_Destroy(md);
			}
			if (delay > NAK_MAX_MS)
				delay = NAK_MAX_MS;
			natsMsg_NakWithDelay(h->m, delay, NULL);
		}
		natsMsg_Destroy(h->m);
	}
	free(h);
}

size_t nats_sub_pending(struct nats_sub *sub)
{
	size_t n;

	pthread_mutex_lock(&sub->lock);
	n = sub->inflight;
	pthread_mutex_unlock(&sub->lock);
	return n;
}

/* What the dispatcher never settled goes back to JetStream at once (a NAK without delay, once: the
 * next process takes it without waiting for the ack wait). */
void nats_sub_destroy(struct nats_sub *sub)
{
	nats_sub_stop(sub);
	for (struct nats_held *h = sub->held, *next; h; h = next) {
		next = h->next;
		if (h->m) {
			natsMsg_Nak(h->m, NULL);
			natsMsg_Destroy(h->m);
		}
		free(h);
	}
	natsSubscription_Destroy(sub->ps);
	pthread_mutex_destroy(&sub->lock);
	pthread_cond_destroy(&sub->cond);
	free(sub);
}
