/* The Kafka channel's producer half (a Broker's and a KafkaSink's publishes): a publish is answered
 * 202 only when Kafka confirmed it, or 503 at its deadline when Kafka did not. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/log.h"
#include "channels/channel.h"
#include "channels/kafka/binding.h"
#include "channels/kafka/kafka.h"

/* A publish waiting for its delivery report. The event reference keeps the record value (not copied
 * into librdkafka) alive until then. */
struct kafka_pub {
	struct ceb_event *ev;
	char *value; /* structured mode: the encoded event, ours until the report */
	ceb_publish_done_f *done;
	void *arg;
	uint64_t deadline; /* answer 503 at this time if Kafka has not confirmed */
	int answered;      /* done() was called (by the report or by the deadline) */
	int queued;        /* on the deadline list */
	struct kafka_pub *prev, *next;
};

static void pub_unlink(struct kafka_channel *kc, struct kafka_pub *pub)
{
	if (pub->prev)
		pub->prev->next = pub->next;
	else
		kc->pub_head = pub->next;
	if (pub->next)
		pub->next->prev = pub->prev;
	else
		kc->pub_tail = pub->prev;
	pub->prev = pub->next = NULL;
	pub->queued = 0;
}

void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kafka_channel *kc = opaque;
	struct kafka_pub *pub = m->_private;
	int status = 0, answered;

	/* With acks=all and idempotence a report without error means stored by every in-sync replica.
	 * Anything else, possibly persisted included, is not a 202. */
	if (m->err) {
		status = CEB_EUNAVAIL;
		if (!atomic_exchange(&kc->failing, 1))
			CEB_LOG_WARN(
			        kc->label,
			        "Kafka did not confirm a publish (%s): answering 503 until it does",
			        rd_kafka_err2str(m->err));
		else
			CEB_LOG_DEBUG(kc->label, "publish not confirmed: %s",
			              rd_kafka_err2str(m->err));
	} else if (atomic_exchange(&kc->failing, 0)) {
		CEB_LOG_INFO(kc->label, "Kafka confirms publishes again");
	}
	pthread_mutex_lock(&kc->pub_lock);
	if (pub->queued)
		pub_unlink(kc, pub);
	answered = pub->answered;
	pub->answered = 1;
	pthread_mutex_unlock(&kc->pub_lock);
	if (!answered)
		pub->done(pub->arg, status);
	ceb_event_unref(pub->ev);
	free(pub->value);
	free(pub);
	atomic_fetch_sub(&kc->unconfirmed, 1);
}

/* Answer 503 for publishes past their deadline. librdkafka enforces message.timeout.ms only lazily
 * while every broker is down (seconds late): the sender gets its answer on time all the same. The
 * report still comes later and frees the publish; if it says stored, the sender's retry is a
 * duplicate, which at-least-once allows. */
static void pub_expire(struct kafka_channel *kc)
{
	struct {
		ceb_publish_done_f *done;
		void *arg;
	} due[128];
	size_t n;
	uint64_t now = ceb_now_ms();

	do {
		/* Only done and arg are used outside the lock: once answered, a publish may be freed by
		 * a failed producev() at any time. */
		n = 0;
		pthread_mutex_lock(&kc->pub_lock);
		while (n < 128 && kc->pub_head && kc->pub_head->deadline <= now) {
			struct kafka_pub *pub = kc->pub_head;
			pub_unlink(kc, pub);
			pub->answered = 1;
			due[n].done = pub->done;
			due[n++].arg = pub->arg;
		}
		pthread_mutex_unlock(&kc->pub_lock);
		for (size_t i = 0; i < n; i++)
			due[i].done(due[i].arg, CEB_EUNAVAIL);
		if (n && !atomic_exchange(&kc->failing, 1))
			CEB_LOG_WARN(kc->label,
			             "Kafka did not confirm a publish within %d ms: answering 503 "
			             "until it does",
			             kc->confirm_ms);
	} while (n == 128);
}

void *kafka_dr_main(void *arg)
{
	struct kafka_channel *kc = arg;

	while (!atomic_load(&kc->stop)) {
		rd_kafka_poll(kc->producer, 100);
		pub_expire(kc);
	}
	return NULL;
}

void kafka_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg)
{
	struct kafka_channel *kc = ctx;
	struct kafka_pub *pub;
	const struct ceb_attr *key;
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_resp_err_t err;
	const void *data = NULL;
	size_t len = 0;

	/* stop() waits for the calls past this check, so that none reaches librdkafka after it
	 * collected the last delivery reports. */
	atomic_fetch_add(&kc->publishing, 1);
	if (!kc->started || !kc->producer || atomic_load(&kc->stopping)) {
		atomic_fetch_sub(&kc->publishing, 1);
		done(arg, CEB_EUNAVAIL);
		return;
	}
	pub = calloc(1, sizeof(*pub));
	if (pub && kc->structured) {
		struct ceb_buf b = CEB_BUF_INIT;
		if (ceb_kafka_structured(ev, &b, &hdrs) == 0) {
			pub->value = ceb_buf_steal(&b, &len);
			data = pub->value;
		}
		ceb_buf_free(&b);
	} else if (pub) {
		hdrs = ceb_kafka_binary_headers(ev);
		data = ceb_event_data(ev, &len);
	}
	if (!pub || !hdrs) {
		atomic_fetch_sub(&kc->publishing, 1);
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		if (pub)
			free(pub->value);
		free(pub);
		done(arg, CEB_EFULL);
		return;
	}
	pub->ev = ceb_event_ref(ev);
	pub->done = done;
	pub->arg = arg;
	key = ceb_event_get(ev, "partitionkey");
	atomic_fetch_add(&kc->unconfirmed, 1);
	/* On the deadline list before librdkafka has it: its report may come at once. */
	pthread_mutex_lock(&kc->pub_lock);
	pub->deadline = ceb_now_ms() + (uint64_t)kc->confirm_ms;
	pub->queued = 1;
	pub->prev = kc->pub_tail;
	if (kc->pub_tail)
		kc->pub_tail->next = pub;
	else
		kc->pub_head = pub;
	kc->pub_tail = pub;
	pthread_mutex_unlock(&kc->pub_lock);
	/* The value is not copied: the event is immutable and our reference keeps it until the report. */
	err = rd_kafka_producev(kc->producer, RD_KAFKA_V_TOPIC(kc->topic),
	                        RD_KAFKA_V_VALUE((void *)data, data ? len : 0),
	                        RD_KAFKA_V_KEY(key ? key->value : NULL, key ? key->len : 0),
	                        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(pub), RD_KAFKA_V_END);
	atomic_fetch_sub(&kc->publishing, 1);
	if (err) {
		int answered;
		/* Not queued: headers and pub are still ours (unless the deadline answered already). */
		pthread_mutex_lock(&kc->pub_lock);
		if (pub->queued)
			pub_unlink(kc, pub);
		answered = pub->answered;
		pthread_mutex_unlock(&kc->pub_lock);
		atomic_fetch_sub(&kc->unconfirmed, 1);
		rd_kafka_headers_destroy(hdrs);
		ceb_event_unref(pub->ev);
		free(pub->value);
		free(pub);
		CEB_LOG_DEBUG(kc->label, "publish refused: %s", rd_kafka_err2str(err));
		/* A record over message.max.bytes never fits: 413, not a 503 to retry forever. */
		if (!answered)
			done(arg, err == RD_KAFKA_RESP_ERR__QUEUE_FULL          ? CEB_EFULL
			          : err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? CEB_ETOOBIG
			                                                        : CEB_EUNAVAIL);
	}
}
