/* The RabbitMQ channel's publisher (a Broker's): one thread owns the connection, in confirm mode;
 * a publish is answered 202 only on RabbitMQ's basic.ack, 503 on a nack, a closed connection or no
 * confirm within the deadline. Ingress threads only queue and wake the thread: never block. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <amqp.h>

#include "broker/clock.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/amqp/binding.h"
#include "channels/amqp/rabbit.h"

/* A publish, queued (in_*) and then waiting for its confirm (the thread's own list). */
struct amqp_pub {
	struct ceb_event *ev;
	ceb_publish_done_f *done;
	void *arg;
	uint64_t tag;      /* its delivery tag on the connection, once sent */
	uint64_t deadline; /* 503 at this time without a confirm */
	int answered;
	struct amqp_pub *next;
};

/* The thread's unconfirmed publishes, in tag order. */
struct unconfirmed {
	struct amqp_pub *head, *tail;
};

static void answer(struct amqp_pub *pub, int status)
{
	if (!pub->answered) {
		pub->answered = 1;
		pub->done(pub->arg, status);
	}
}

static void pub_free(struct amqp_pub *pub)
{
	ceb_event_unref(pub->ev);
	free(pub);
}

void amqp_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg)
{
	struct amqp_channel *ac = ctx;
	struct amqp_pub *pub;
	int status = 0;
	bool first;

	if (ac->role != ROLE_BROKER || !ac->started || !atomic_load(&ac->up)) {
		done(arg, CEB_EUNAVAIL);
		return;
	}
	pub = calloc(1, sizeof(*pub));
	if (!pub) {
		done(arg, CEB_EFULL);
		return;
	}
	pub->ev = ceb_event_ref(ev);
	pub->done = done;
	pub->arg = arg;
	pub->deadline = ceb_now_ms() + (uint64_t)ac->confirm_ms;
	pthread_mutex_lock(&ac->pub_lock);
	if (ac->closed)
		status = CEB_EUNAVAIL;
	else if (ac->nin >= MAX_QUEUED_PUBS)
		status = CEB_EFULL;
	/* the publisher thread takes the whole queue: one wake for what comes before it does */
	first = ac->nin == 0;
	if (!status) {
		if (ac->in_tail)
			ac->in_tail->next = pub;
		else
			ac->in_head = pub;
		ac->in_tail = pub;
		ac->nin++;
	}
	pthread_mutex_unlock(&ac->pub_lock);
	if (status) {
		pub_free(pub);
		done(arg, status);
		return;
	}
	if (first)
		amqp_wake(ac->pub_wake);
}

void amqp_pub_close(struct amqp_channel *ac)
{
	pthread_mutex_lock(&ac->pub_lock);
	ac->closed = 1;
	pthread_mutex_unlock(&ac->pub_lock);
	amqp_wake(ac->pub_wake);
}

/* Take the queue of publishes not sent yet. */
static struct amqp_pub *take_queued(struct amqp_channel *ac)
{
	struct amqp_pub *list;

	pthread_mutex_lock(&ac->pub_lock);
	list = ac->in_head;
	ac->in_head = ac->in_tail = NULL;
	ac->nin = 0;
	pthread_mutex_unlock(&ac->pub_lock);
	return list;
}

static void fail_list(struct amqp_pub *list, int status)
{
	while (list) {
		struct amqp_pub *next = list->next;
		answer(list, status);
		pub_free(list);
		list = next;
	}
}

/* Answer and free the unconfirmed publishes with tags up to `tag` (every one when multiple, else
 * only that one). */
static void confirm(struct unconfirmed *u, uint64_t tag, bool multiple, int status)
{
	struct amqp_pub **pp = &u->head, *prev = NULL;

	while (*pp) {
		struct amqp_pub *pub = *pp;
		if (pub->tag > tag)
			break;
		if (multiple || pub->tag == tag) {
			*pp = pub->next;
			if (u->tail == pub)
				u->tail = prev;
			answer(pub, status);
			pub_free(pub);
			if (!multiple)
				break;
			continue;
		}
		prev = pub;
		pp = &pub->next;
	}
}

/* The connection is gone: whatever was not confirmed may or may not be stored; the sender is told
 * 503 and may send again (at-least-once: a duplicate, never a loss). */
static void link_down(struct amqp_channel *ac, amqp_connection_state_t *conn, struct unconfirmed *u,
                      const char *why)
{
	atomic_store(&ac->up, 0);
	CEB_LOG_WARN(ac->label, "RabbitMQ connection lost (%s): answering 503 until it is back",
	             why);
	fail_list(u->head, CEB_EUNAVAIL);
	u->head = u->tail = NULL;
	amqp_link_close(*conn);
	*conn = NULL;
}

/* Connect, declare the exchange and every Trigger's queue and binding (so that nothing is accepted
 * that no queue would keep), and enter confirm mode. */
static amqp_connection_state_t connect_publisher(struct amqp_channel *ac, char *err, size_t errlen)
{
	amqp_connection_state_t conn = amqp_link_open(&ac->conn, err, errlen);

	if (!conn)
		return NULL;
	if (amqp_declare_exchange(ac, conn, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < ac->nsubs; i++)
		if (amqp_declare_queue(ac->subs[i], conn, err, errlen) < 0)
			goto fail;
	amqp_confirm_select(conn, AMQP_CH);
	if (amqp_link_reply(conn, "confirm.select", err, errlen) < 0)
		goto fail;
	return conn;
fail:
	amqp_link_close(conn);
	return NULL;
}

/* Hold back partial segments while a batch is written (TCP_CORK), so that the publishes of one
 * batch leave in as few segments as fit instead of one per publish: rabbitmq-c writes each publish
 * as three sends (method, header, body), and each segment costs a wake-up and a read on RabbitMQ's
 * side too. Uncorking sends what is held at once. Best effort: without it, only slower. */
static void cork(amqp_connection_state_t conn, int on)
{
	int fd = amqp_get_sockfd(conn);

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

/* Send what was queued; false when the connection failed. */
static bool send_queued(struct amqp_channel *ac, amqp_connection_state_t conn,
                        struct unconfirmed *u, uint64_t *seq)
{
	struct amqp_pub *list = take_queued(ac);
	amqp_bytes_t exchange = amqp_cstring_bytes(ac->exchange);
	bool ok = true, corked = list && list->next;

	if (corked)
		cork(conn, 1);
	if (list)
		ac->batches++;

	while (list) {
		struct amqp_pub *pub = list;
		struct ceb_amqp_out out;
		amqp_bytes_t body = amqp_empty_bytes;
		const void *data;
		size_t len = 0;
		int st;

		list = pub->next;
		pub->next = NULL;
		if (!ok || ceb_amqp_encode(pub->ev, &out) < 0) {
			if (ok)
				ceb_amqp_out_free(&out);
			answer(pub, ok ? CEB_EFULL : CEB_EUNAVAIL);
			pub_free(pub);
			continue;
		}
		data = ceb_event_data(pub->ev, &len);
		if (data) {
			body.bytes = (void *)data;
			body.len = len;
		}
		st = amqp_basic_publish(conn, AMQP_CH, exchange, amqp_empty_bytes, 0, 0, &out.props,
		                        body);
		ceb_amqp_out_free(&out);
		if (st != AMQP_STATUS_OK) {
			ok = false;
			answer(pub, CEB_EUNAVAIL);
			pub_free(pub);
			continue;
		}
		pub->tag = ++*seq;
		ac->published++;
		if (u->tail)
			u->tail->next = pub;
		else
			u->head = pub;
		u->tail = pub;
	}
	if (corked)
		cork(conn, 0);
	return ok;
}

/* Read what the server sent: confirms, or a close. False when the connection failed. */
static bool read_frames(struct amqp_channel *ac, amqp_connection_state_t conn,
                        struct unconfirmed *u, char *why, size_t whylen)
{
	struct timeval zero = {0, 0};
	amqp_frame_t f;
	int st;

	for (;;) {
		st = amqp_simple_wait_frame_noblock(conn, &f, &zero);
		if (st == AMQP_STATUS_TIMEOUT)
			return true;
		if (st != AMQP_STATUS_OK) {
			snprintf(why, whylen, "%s", amqp_error_string2(st));
			return false;
		}
		if (f.frame_type != AMQP_FRAME_METHOD)
			continue;
		switch (f.payload.method.id) {
		case AMQP_BASIC_ACK_METHOD: {
			amqp_basic_ack_t *m = f.payload.method.decoded;
			confirm(u, m->delivery_tag, m->multiple, 0);
			break;
		}
		case AMQP_BASIC_NACK_METHOD: {
			amqp_basic_nack_t *m = f.payload.method.decoded;
			CEB_LOG_WARN(ac->label, "RabbitMQ refused to store a publish (basic.nack)");
			confirm(u, m->delivery_tag, m->multiple, CEB_EUNAVAIL);
			break;
		}
		case AMQP_CHANNEL_CLOSE_METHOD:
		case AMQP_CONNECTION_CLOSE_METHOD: {
			amqp_channel_close_t *m =
			        f.payload.method.decoded; /* same leading fields */
			snprintf(why, whylen, "closed by the server: %u %.*s", m->reply_code,
			         (int)m->reply_text.len, (const char *)m->reply_text.bytes);
			return false;
		}
		default: break;
		}
	}
}

/* Answer 503 for publishes past their deadline; they stay on the list until their confirm. */
static int expire(struct amqp_channel *ac, struct unconfirmed *u)
{
	uint64_t now = ceb_now_ms();
	int n = 0, next = 200;

	for (struct amqp_pub *pub = u->head; pub; pub = pub->next) {
		if (pub->answered)
			continue;
		if (pub->deadline > now) {
			if (pub->deadline - now < (uint64_t)next)
				next = (int)(pub->deadline - now);
			break;
		}
		answer(pub, CEB_EUNAVAIL);
		n++;
	}
	if (n)
		CEB_LOG_WARN(ac->label, "RabbitMQ did not confirm %d publishes within %d ms: 503",
		             n, ac->confirm_ms);
	return next;
}

void *amqp_pub_main(void *arg)
{
	struct amqp_channel *ac = arg;
	amqp_connection_state_t conn = NULL;
	struct unconfirmed u = {NULL, NULL};
	uint64_t seq = 0, drain_until = 0;
	int backoff = BACKOFF_MIN_MS, logged = 0;
	char err[600];

	for (;;) {
		int closed, wait_ms;

		pthread_mutex_lock(&ac->pub_lock);
		closed = ac->closed;
		pthread_mutex_unlock(&ac->pub_lock);
		if (closed && !drain_until)
			drain_until = ceb_now_ms() + 2000;
		if (atomic_load(&ac->stop) ||
		    (closed && (!u.head || !conn || ceb_now_ms() >= drain_until)))
			break;
		if (!conn) {
			fail_list(take_queued(ac), CEB_EUNAVAIL);
			if (closed)
				break;
			conn = connect_publisher(ac, err, sizeof(err));
			atomic_store(&ac->tried, 1);
			if (!conn) {
				if (!logged++)
					CEB_LOG_WARN(ac->label, "RabbitMQ unreachable: %s", err);
				amqp_wait(-1, ac->pub_wake, backoff);
				backoff =
				        backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			seq = 0;
			backoff = BACKOFF_MIN_MS;
			logged = 0;
			CEB_LOG_INFO(ac->label, "connected to RabbitMQ at %s:%d, exchange %s",
			             ac->conn.host, ac->conn.port, ac->exchange);
			atomic_store(&ac->up, 1);
		}
		/* decoded confirms live in the connection's pool until released */
		amqp_maybe_release_buffers(conn);
		if (!send_queued(ac, conn, &u, &seq)) {
			link_down(ac, &conn, &u, "publish failed");
			continue;
		}
		if (!read_frames(ac, conn, &u, err, sizeof(err))) {
			link_down(ac, &conn, &u, err);
			continue;
		}
		wait_ms = expire(ac, &u);
		if (!amqp_frames_enqueued(conn) && !amqp_data_in_buffer(conn))
			amqp_wait(amqp_get_sockfd(conn), ac->pub_wake, wait_ms);
	}
	atomic_store(&ac->up, 0);
	fail_list(take_queued(ac), CEB_EUNAVAIL);
	fail_list(u.head, CEB_EUNAVAIL);
	amqp_link_close(conn);
	if (ac->batches)
		CEB_LOG_DEBUG(ac->label, "%lu messages published in %lu batches", ac->published,
		              ac->batches);
	return NULL;
}
