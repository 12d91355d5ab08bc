/* The RabbitMQ channel's consumers: one thread and one connection per subscription (a Trigger's
 * queue, or a RabbitmqSource's), manual acks with a prefetch of the subscription's in-flight limit.
 * A message is acked only once it was settled DONE; one settled FAILED is returned to its queue
 * after REDELIVER_MS (never at once: no redelivery storm); one never settled comes back when the
 * connection closes. Settles from any thread are queued and applied by the consumer thread, which
 * alone uses the connection. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <amqp.h>

#include "broker/clock.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/amqp/binding.h"
#include "channels/amqp/rabbit.h"

/* A handle is the delivery tag and the connection's generation, in one pointer-sized value: a
 * settle for a connection that is gone is dropped (RabbitMQ returned the message to the queue
 * when it closed). */
#define TAG_BITS         48
#define HANDLE(gen, tag) ((void *)(uintptr_t)(((uint64_t)(gen) << TAG_BITS) | (tag)))
#define HANDLE_GEN(h)    ((uint16_t)((uint64_t)(uintptr_t)(h) >> TAG_BITS))
#define HANDLE_TAG(h)    ((uint64_t)(uintptr_t)(h) & ((UINT64_C(1) << TAG_BITS) - 1))

#define ACK_HOLD_MS 10 /* a settled message behind one still out waits this long for a joint ack */
/* With a prefetch of 8 or more, settles are applied (and acked) by the quarter of the prefetch, or
 * once the oldest waited ACK_DELAY_MS: one wake of the consumer thread and one ack frame (one
 * settle command of the quorum queue) for many messages instead of one each. A later ack is no
 * weaker: a message is still acked only after it was settled, and one not acked comes back. */
#define ACK_DELAY_MS 2
/* With a prefetch of 8 or more, a read that found fewer messages than a quarter of the prefetch
 * waits this long before the next: under load RabbitMQ delivers messages one by one as its queue
 * commits them, and reading each as it comes costs a wake of this thread and of a delivery thread
 * per message or two. The prefetch keeps the deliveries busy meanwhile; an ordered Trigger
 * (prefetch 1) never waits. */
#define COALESCE_MS 1

struct settle_req {
	void *handle;
	enum ceb_settle how;
};

struct redelivery {
	uint64_t tag;
	uint64_t due;
};

/* A message handed out on the current connection, in tag order, until RabbitMQ has its ack or its
 * reject. Settled ones at the front go out as one basic.ack with multiple set (one frame, and one
 * settle for the quorum queue, for the whole run); one settled behind a message still out is acked
 * alone at once, so that a slow message never holds back the prefetch. */
enum held_state {
	HELD_OUT,
	HELD_DONE,
	HELD_FAILED,
	HELD_GONE
};
struct held {
	uint64_t tag;
	enum held_state state;
};

/* The filter's fixed attributes that the binding can carry (see bind_names). */
static void bind_attrs(struct amqp_sub *sub, const struct ceb_filter *flt)
{
	static const char *const bindable[] = {"specversion", "id",      "source",
	                                       "type",        "subject", "dataschema"};
	const char *names[16], *values[16];
	size_t n = ceb_filter_required_attrs(flt, names, values, 16);

	for (size_t i = 0; i < n && sub->nbind < AMQP_BIND_MAX; i++) {
		for (size_t k = 0; k < sizeof(bindable) / sizeof(*bindable); k++) {
			if (strcmp(names[i], bindable[k]) == 0) {
				sub->bind_names[sub->nbind] = names[i];
				sub->bind_values[sub->nbind++] = values[i];
				break;
			}
		}
	}
}

int amqp_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out)
{
	struct amqp_channel *ac = ctx;
	struct amqp_sub *sub, **subs;

	if (ac->started || (ac->role == ROLE_SOURCE && ac->nsubs))
		return CEB_ESTATE;
	sub = calloc(1, sizeof(*sub));
	subs = realloc(ac->subs, (ac->nsubs + 1) * sizeof(*subs));
	if (subs)
		ac->subs = subs;
	if (!sub || !subs) {
		free(sub);
		return CEB_ENOMEM;
	}
	sub->ac = ac;
	sub->cfg = *cfg;
	sub->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sub->wake < 0) {
		free(sub);
		return CEB_EIO;
	}
	pthread_mutex_init(&sub->lock, NULL);
	if (ac->role == ROLE_BROKER) {
		snprintf(sub->queue, sizeof(sub->queue), "t.%s.%s.%s", cfg->ns,
		         ac->exchange + 2 + strlen(cfg->ns) + 1, cfg->name);
		snprintf(sub->label, sizeof(sub->label), "trigger %s/%s", cfg->ns, cfg->name);
		bind_attrs(sub, cfg->filter);
	} else {
		snprintf(sub->queue, sizeof(sub->queue), "%s", ac->source->queue);
		snprintf(sub->label, sizeof(sub->label), "%s", ac->label);
	}
	/* ordered (parallelism 1): one at a time, and one active consumer of the queue across
	 * every process that shares it, so that FIFO holds */
	sub->single_active = cfg->ordered;
	sub->prefetch = cfg->ordered ? 1 : (unsigned)(cfg->max_inflight ? cfg->max_inflight : 1);
	if (sub->prefetch > 65535)
		sub->prefetch = 65535;
	sub->ack_batch = sub->prefetch >= 8 ? sub->prefetch / 4 : 1;
	ac->subs[ac->nsubs++] = sub;
	*out = sub;
	return 0;
}

void amqp_settle(void *ctx, void *subp, void *handle, enum ceb_settle how)
{
	struct amqp_sub *sub = subp;
	bool wake;

	(void)ctx;
	pthread_mutex_lock(&sub->lock);
	if (sub->nsettles == sub->capsettles) {
		size_t cap = sub->capsettles ? 2 * sub->capsettles : 64;
		struct settle_req *p = realloc(sub->settles, cap * sizeof(*p));
		if (!p) {
			/* not acked: it comes back when the connection closes (a duplicate, not a
			 * loss) */
			pthread_mutex_unlock(&sub->lock);
			atomic_fetch_sub(&sub->inflight, 1);
			return;
		}
		sub->settles = p;
		sub->capsettles = cap;
	}
	sub->settles[sub->nsettles++] = (struct settle_req){handle, how};
	if (sub->nsettles == 1)
		sub->settle_since = ceb_now_ms();
	/* the consumer takes the whole list: a wake when it waits with no timer for settles, or when
	 * a batch is complete; else its timer (ACK_DELAY_MS) takes them */
	wake = sub->need_wake || sub->nsettles == sub->ack_batch;
	if (wake)
		sub->need_wake = 0;
	pthread_mutex_unlock(&sub->lock);
	atomic_fetch_sub(&sub->inflight, 1);
	if (wake)
		amqp_wake(sub->wake);
}

static bool add_redelivery(struct amqp_sub *sub, uint64_t tag)
{
	if (sub->nredeliver == sub->capredeliver) {
		size_t cap = sub->capredeliver ? 2 * sub->capredeliver : 16;
		struct redelivery *p = realloc(sub->redeliver, cap * sizeof(*p));
		if (!p)
			return false;
		sub->redeliver = p;
		sub->capredeliver = cap;
	}
	sub->redeliver[sub->nredeliver++] = (struct redelivery){tag, ceb_now_ms() + REDELIVER_MS};
	return true;
}

static bool held_add(struct amqp_sub *sub, uint64_t tag)
{
	if (sub->nheld == sub->capheld) {
		size_t cap = sub->capheld ? 2 * sub->capheld : 64;
		struct held *p = realloc(sub->held, cap * sizeof(*p));
		if (!p)
			return false;
		sub->held = p;
		sub->capheld = cap;
	}
	sub->held[sub->nheld++] = (struct held){tag, HELD_OUT};
	return true;
}

static struct held *held_find(struct amqp_sub *sub, uint64_t tag)
{
	size_t lo = 0, hi = sub->nheld;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sub->held[mid].tag < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < sub->nheld && sub->held[lo].tag == tag ? &sub->held[lo] : NULL;
}

/* Ack what was settled DONE: the run at the front with one multiple ack, which covers no message
 * still out (every lower tag was handed out and settled, or acked or rejected when it came); the
 * rest, behind a message still out, one by one once they waited ACK_HOLD_MS for the front to catch
 * up or fill half the prefetch (at once when forced). False when the connection failed. */
static bool flush_acks(struct amqp_sub *sub, bool force)
{
	size_t p = 0, k = 0, behind = 0;
	uint64_t hi = 0, now;
	unsigned long n = 0;
	bool ok = true;

	for (; p < sub->nheld; p++) {
		if (sub->held[p].state == HELD_DONE) {
			hi = sub->held[p].tag;
			n++;
		} else if (sub->held[p].state != HELD_GONE) {
			break;
		}
	}
	if (hi) {
		ok = amqp_basic_ack(sub->conn, AMQP_CH, hi, 1) == AMQP_STATUS_OK;
		sub->acks++;
		sub->acked += n;
	}
	for (size_t i = p; i < sub->nheld; i++)
		behind += sub->held[i].state == HELD_DONE;
	if (!behind) {
		sub->hold_since = 0;
		force = true; /* nothing to hold: compact only */
	} else if (!force) {
		now = ceb_now_ms();
		if (!sub->hold_since)
			sub->hold_since = now;
		force = now - sub->hold_since >= ACK_HOLD_MS || 2 * behind >= sub->prefetch;
	}
	if (!force) {
		memmove(sub->held, sub->held + p, (sub->nheld - p) * sizeof(*sub->held));
		sub->nheld -= p;
		return ok;
	}
	sub->hold_since = 0;
	for (size_t i = p; i < sub->nheld; i++) {
		if (ok && sub->held[i].state == HELD_DONE) {
			ok = amqp_basic_ack(sub->conn, AMQP_CH, sub->held[i].tag, 0) ==
			     AMQP_STATUS_OK;
			sub->acks++;
			sub->acked++;
			continue; /* gone */
		}
		if (sub->held[i].state != HELD_GONE)
			sub->held[k++] = sub->held[i];
	}
	sub->nheld = k;
	return ok;
}

/* Apply the settles queued by other threads: ack what is done, schedule the return of what failed;
 * unless forced, only a batch of them or one that waited ACK_DELAY_MS. False when the connection
 * failed. */
static bool apply_settles(struct amqp_sub *sub, bool force)
{
	struct settle_req *list = NULL;
	size_t n = 0;
	bool ok = true;

	pthread_mutex_lock(&sub->lock);
	if (force || sub->nsettles >= sub->ack_batch ||
	    (sub->nsettles && ceb_now_ms() - sub->settle_since >= ACK_DELAY_MS)) {
		list = sub->settles;
		n = sub->nsettles;
		sub->settles = NULL;
		sub->nsettles = sub->capsettles = 0;
	}
	pthread_mutex_unlock(&sub->lock);
	for (size_t i = 0; i < n && ok; i++) {
		uint64_t tag = HANDLE_TAG(list[i].handle);
		struct held *h;

		if (!sub->conn || HANDLE_GEN(list[i].handle) != sub->gen)
			continue; /* its connection is gone: RabbitMQ has it back already */
		h = held_find(sub, tag);
		if (!h)
			continue; /* settled twice: acked already */
		if (list[i].how == CEB_SETTLE_DONE) {
			h->state = HELD_DONE;
		} else if (add_redelivery(sub, tag)) {
			h->state = HELD_FAILED;
		} else {
			h->state = HELD_GONE;
			ok = amqp_basic_reject(sub->conn, AMQP_CH, tag, 1) == AMQP_STATUS_OK;
		}
	}
	free(list);
	return ok && (!sub->conn || flush_acks(sub, force));
}

/* Return to the queue what failed REDELIVER_MS ago; the time to the next one (at most `cap`). */
static int return_due(struct amqp_sub *sub, int cap, bool *ok)
{
	uint64_t now = ceb_now_ms();
	size_t k = 0;
	int next = cap;

	for (size_t i = 0; i < sub->nredeliver; i++) {
		struct redelivery *r = &sub->redeliver[i];
		if (r->due <= now && *ok) {
			struct held *h = held_find(sub, r->tag);
			if (h)
				h->state = HELD_GONE;
			*ok = amqp_basic_reject(sub->conn, AMQP_CH, r->tag, 1) == AMQP_STATUS_OK;
			sub->redelivered++;
			continue;
		}
		if (r->due > now && r->due - now < (uint64_t)next)
			next = (int)(r->due - now);
		sub->redeliver[k++] = *r;
	}
	sub->nredeliver = *ok ? k : 0;
	return next;
}

/* A RabbitmqSource's event: a CloudEvent message as it is, anything else (a message that claims to
 * be one and is not, too) as eventing-rabbitmq maps it; with the source's ceOverrides. */
static int source_event(struct amqp_sub *sub, amqp_envelope_t *env, struct ceb_event **out)
{
	const struct ceb_rabbitmq_source_cfg *src = sub->ac->source;
	amqp_basic_properties_t *props = &env->message.properties;
	struct ceb_event *ev = NULL;
	char err[300];
	int rc = 0;

	if (ceb_amqp_is_cloudevent(props)) {
		rc = ceb_amqp_decode(props, &env->message.body, &ev, err, sizeof(err));
		if (rc < 0 && (!sub->skipped++ || sub->skipped % 1000 == 0))
			CEB_LOG_WARN(
			        sub->label,
			        "a message of queue %s claims to be a CloudEvent but is not (%s): "
			        "sent as a plain message (%lu so far)",
			        sub->queue, err, sub->skipped);
	}
	if (!ev && (rc = ceb_amqp_map_message(props, &env->message.body, src->ns, src->name,
	                                      src->queue, &ev)) < 0)
		return rc;
	for (size_t i = 0; i < src->nce_ext; i++) {
		rc = ceb_event_set(ev, src->ce_ext_keys[i], CEB_TYPE_STRING, src->ce_ext_values[i],
		                   strlen(src->ce_ext_values[i]), err, sizeof(err));
		if (rc == CEB_ENOMEM) {
			ceb_event_unref(ev);
			return rc;
		}
	}
	*out = ev;
	return 0;
}

/* One delivered message to the subscription, as a CloudEvent; what is none is acked and dropped
 * (a Broker's queue) or mapped as eventing-rabbitmq maps it (a RabbitmqSource). False when the
 * connection failed. */
static bool hand(struct amqp_sub *sub, amqp_envelope_t *env)
{
	struct amqp_channel *ac = sub->ac;
	amqp_basic_properties_t *props = &env->message.properties;
	struct ceb_event *ev = NULL;
	char err[300];
	int rc;

	if (env->delivery_tag >= (UINT64_C(1) << TAG_BITS))
		return false;          /* reconnect: tags start again at 1 */
	if (atomic_load(&sub->paused)) /* came before the cancel: back to the queue */
		return amqp_basic_reject(sub->conn, AMQP_CH, env->delivery_tag, 1) ==
		       AMQP_STATUS_OK;
	if (ac->role == ROLE_SOURCE)
		rc = source_event(sub, env, &ev);
	else
		rc = ceb_amqp_decode(props, &env->message.body, &ev, err, sizeof(err));
	if (rc == CEB_ENOMEM || (rc == 0 && !held_add(sub, env->delivery_tag))) {
		/* not acked: RabbitMQ has it back when the message is rejected */
		ceb_event_unref(ev);
		return amqp_basic_reject(sub->conn, AMQP_CH, env->delivery_tag, 1) ==
		       AMQP_STATUS_OK;
	}
	if (rc < 0) {
		if (!sub->skipped++ || sub->skipped % 1000 == 0)
			CEB_LOG_WARN(
			        sub->label,
			        "dropped a message of queue %s that is no valid CloudEvent (%s); "
			        "%lu so far",
			        sub->queue, err, sub->skipped);
		return amqp_basic_ack(sub->conn, AMQP_CH, env->delivery_tag, 0) == AMQP_STATUS_OK;
	}
	atomic_fetch_add(&sub->inflight, 1);
	sub->cfg.on_msg(sub->cfg.arg, ev, HANDLE(sub->gen, env->delivery_tag));
	return true;
}

static amqp_connection_state_t connect_consumer(struct amqp_sub *sub, char *err, size_t errlen)
{
	struct amqp_channel *ac = sub->ac;
	amqp_connection_state_t conn = amqp_link_open(&ac->conn, err, errlen);
	amqp_basic_consume_ok_t *ok;

	if (!conn)
		return NULL;
	if (amqp_declare_exchange(ac, conn, err, errlen) < 0 ||
	    amqp_declare_queue(sub, conn, err, errlen) < 0)
		goto fail;
	amqp_basic_qos(conn, AMQP_CH, 0, (uint16_t)sub->prefetch, 0);
	if (amqp_link_reply(conn, "basic.qos", err, errlen) < 0)
		goto fail;
	ok = amqp_basic_consume(conn, AMQP_CH, amqp_cstring_bytes(sub->queue), amqp_empty_bytes, 0,
	                        0, 0, amqp_empty_table);
	if (amqp_link_reply(conn, "basic.consume", err, errlen) < 0 || !ok)
		goto fail;
	snprintf(sub->ctag, sizeof(sub->ctag), "%.*s", (int)ok->consumer_tag.len,
	         (const char *)ok->consumer_tag.bytes);
	sub->cancelled = 0;
	return conn;
fail:
	amqp_link_close(conn);
	return NULL;
}

static void link_down(struct amqp_sub *sub, const char *why)
{
	CEB_LOG_WARN(sub->label,
	             "RabbitMQ connection of queue %s lost (%s): what it held goes back to the "
	             "queue; reconnecting",
	             sub->queue, why);
	amqp_link_close(sub->conn);
	sub->conn = NULL;
	sub->nredeliver = 0; /* returned by the close */
	sub->nheld = 0;
	atomic_store(&sub->consuming, 0);
}

/* Receive what is there without waiting, counting the messages in *got. False when the connection
 * failed (why set). */
static bool receive(struct amqp_sub *sub, int *got, char *why, size_t whylen)
{
	struct timeval zero = {0, 0};

	*got = 0;
	for (int i = 0; i < 256; i++) {
		amqp_envelope_t env;
		amqp_rpc_reply_t r;
		amqp_frame_t f;

		if (atomic_load(&sub->stop))
			return true; /* unacked: back to the queue when the connection closes */
		amqp_maybe_release_buffers(sub->conn);
		r = amqp_consume_message(sub->conn, &env, &zero, 0);
		if (r.reply_type == AMQP_RESPONSE_NORMAL) {
			bool ok = hand(sub, &env);
			amqp_destroy_envelope(&env);
			(*got)++;
			if (!ok) {
				snprintf(why, whylen, "ack failed");
				return false;
			}
			continue;
		}
		if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION) {
			snprintf(why, whylen, "consume failed");
			return false;
		}
		if (r.library_error == AMQP_STATUS_TIMEOUT)
			return true;
		if (r.library_error != AMQP_STATUS_UNEXPECTED_STATE) {
			snprintf(why, whylen, "%s", amqp_error_string2(r.library_error));
			return false;
		}
		/* a frame other than a delivery: a close, a cancel by the server (queue deleted) */
		if (amqp_simple_wait_frame_noblock(sub->conn, &f, &zero) != AMQP_STATUS_OK)
			continue;
		if (f.frame_type == AMQP_FRAME_METHOD &&
		    (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
		     f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
			amqp_channel_close_t *m = f.payload.method.decoded;
			snprintf(why, whylen, "closed by the server: %u %.*s", m->reply_code,
			         (int)m->reply_text.len, (const char *)m->reply_text.bytes);
			return false;
		}
		if (f.frame_type == AMQP_FRAME_METHOD &&
		    f.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
			snprintf(why, whylen, "consumer cancelled by the server");
			return false;
		}
	}
	return true;
}

/* The longest the consumer may wait: until the oldest settle queued is due, or when none is, as
 * long as it likes, with the next settle to wake it. */
static int settle_wait(struct amqp_sub *sub, int wait_ms)
{
	pthread_mutex_lock(&sub->lock);
	if (sub->nsettles) {
		uint64_t age = ceb_now_ms() - sub->settle_since;
		int left = age >= ACK_DELAY_MS ? 0 : (int)(ACK_DELAY_MS - age);
		if (left < wait_ms)
			wait_ms = left;
	} else {
		sub->need_wake = 1;
	}
	pthread_mutex_unlock(&sub->lock);
	return wait_ms;
}

void *amqp_sub_main(void *arg)
{
	struct amqp_sub *sub = arg;
	int backoff = BACKOFF_MIN_MS, logged = 0;
	char err[600];

	while (!atomic_load(&sub->stop)) {
		bool ok = true;
		int wait_ms, got;

		if (!sub->conn) {
			if (atomic_load(&sub->paused)) {
				amqp_wait(-1, sub->wake, 200);
				apply_settles(sub, true); /* drops them: nothing to ack on */
				continue;
			}
			sub->conn = connect_consumer(sub, err, sizeof(err));
			atomic_store(&sub->tried, 1);
			if (!sub->conn) {
				if (!logged++)
					CEB_LOG_WARN(sub->label, "RabbitMQ unreachable: %s", err);
				amqp_wait(-1, sub->wake, backoff);
				backoff =
				        backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			if (++sub->gen == 0)
				sub->gen = 1;
			atomic_store(&sub->consuming, 1);
			backoff = BACKOFF_MIN_MS;
			if (logged)
				CEB_LOG_INFO(sub->label, "consuming queue %s again", sub->queue);
			logged = 0;
		}
		if (!apply_settles(sub, false)) {
			link_down(sub, "ack failed");
			continue;
		}
		if (atomic_load(&sub->paused) && !sub->cancelled) {
			/* stop(): RabbitMQ keeps the rest for the next consumer */
			sub->cancelled = 1;
			amqp_basic_cancel(sub->conn, AMQP_CH, amqp_cstring_bytes(sub->ctag));
			if (amqp_link_reply(sub->conn, "basic.cancel", err, sizeof(err)) < 0) {
				link_down(sub, err);
				continue;
			}
		}
		wait_ms = return_due(sub, 1000, &ok);
		if (sub->hold_since) {
			uint64_t held_ms = ceb_now_ms() - sub->hold_since;
			int left = held_ms >= ACK_HOLD_MS ? 1 : (int)(ACK_HOLD_MS - held_ms);
			if (left < wait_ms)
				wait_ms = left;
		}
		if (!ok) {
			link_down(sub, "reject failed");
			continue;
		}
		if (!receive(sub, &got, err, sizeof(err))) {
			link_down(sub, err);
			continue;
		}
		if (got && (size_t)got < sub->ack_batch)
			/* a few came one by one: let more gather before the next read (see
			 * COALESCE_MS); a stop or a batch of settles still wakes at once */
			amqp_wait(-1, sub->wake, COALESCE_MS);
		if (!amqp_frames_enqueued(sub->conn) && !amqp_data_in_buffer(sub->conn))
			amqp_wait(amqp_get_sockfd(sub->conn), sub->wake, settle_wait(sub, wait_ms));
	}
	if (sub->conn)
		apply_settles(sub, true);
	if (sub->acks)
		CEB_LOG_DEBUG(sub->label, "%lu messages acked in %lu frames", sub->acked,
		              sub->acks);
	amqp_link_close(sub->conn);
	sub->conn = NULL;
	return NULL;
}

void amqp_sub_destroy(struct amqp_sub *sub)
{
	if (!sub)
		return;
	if (sub->running) {
		atomic_store(&sub->stop, 1);
		amqp_wake(sub->wake);
		pthread_join(sub->thread, NULL);
	}
	close(sub->wake);
	free(sub->settles);
	free(sub->redeliver);
	free(sub->held);
	pthread_mutex_destroy(&sub->lock);
	free(sub);
}
