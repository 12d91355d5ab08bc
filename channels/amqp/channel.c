/* The RabbitMQ channel (AMQP 0-9-1 through rabbitmq-c), in two roles:
 * - a Broker of class "RabbitMQBroker": a durable headers exchange b.<ns>.<broker>, a durable queue
 *   t.<ns>.<broker>.<trigger> per Trigger (quorum unless the RabbitmqBrokerConfig says classic),
 *   bound with x-match all and the Trigger's required type, so that RabbitMQ drops what cannot
 *   match; publishes are persistent and answered 202 only after RabbitMQ's publisher confirm;
 * - a RabbitmqSource: the consume-only half on the source's queue, plain messages mapped to
 *   CloudEvents as eventing-rabbitmq maps them.
 * Each side has its own connection and thread, with heartbeats, and reconnects with backoff after
 * any close; a message is acked only once it was settled, so nothing is lost on a crash. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "broker/clock.h"
#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/amqp/kinds.h"
#include "channels/amqp/rabbit.h"
#include "channels/channel.h"

/* ---- connections ---- */

static const char *reply_text(amqp_rpc_reply_t r, char *buf, size_t sz)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL: snprintf(buf, sz, "ok"); break;
	case AMQP_RESPONSE_NONE: snprintf(buf, sz, "no reply"); break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(buf, sz, "%s", amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;
			snprintf(buf, sz, "connection closed by the server: %u %.*s", m->reply_code,
			         (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;
			snprintf(buf, sz, "channel closed by the server: %u %.*s", m->reply_code,
			         (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		} else {
			snprintf(buf, sz, "server error (method 0x%08x)", r.reply.id);
		}
		break;
	}
	return buf;
}

int amqp_link_reply(amqp_connection_state_t conn, const char *what, char *errbuf, size_t errlen)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	char why[300];

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	snprintf(errbuf, errlen, "%s: %s", what, reply_text(r, why, sizeof(why)));
	return CEB_EUNAVAIL;
}

/* TLS to the server: TLS 1.2 or later, the peer and its host name verified against the system's CAs
 * and the Secret's ca.crt (read from memory into the OpenSSL context rabbitmq-c uses: no file). */
static int tls_setup(amqp_socket_t *sock, const struct ceb_amqp_conn *c, char *errbuf,
                     size_t errlen)
{
	SSL_CTX *ctx = amqp_ssl_socket_get_context(sock);
	X509_STORE *store = ctx ? SSL_CTX_get_cert_store(ctx) : NULL;
	BIO *bio = NULL;
	X509 *crt;
	int n = 0, rc = CEB_ECONFIG;

	amqp_ssl_socket_set_verify_peer(sock, 1);
	amqp_ssl_socket_set_verify_hostname(sock, 1);
	amqp_ssl_socket_set_ssl_versions(sock, AMQP_TLSv1_2, AMQP_TLSvLATEST);
	if (!store || SSL_CTX_set_default_verify_paths(ctx) != 1) {
		snprintf(errbuf, errlen, "cannot set up TLS (no OpenSSL context)");
		return CEB_EIO;
	}
	if (!c->ca_pem)
		return 0;
	if (!(bio = BIO_new_mem_buf(c->ca_pem, -1))) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	while ((crt = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		X509_STORE_add_cert(store, crt);
		X509_free(crt);
		n++;
	}
	if (n == 0) {
		snprintf(errbuf, errlen, "the Secret's ca.crt holds no PEM certificate");
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	return rc;
}

amqp_connection_state_t amqp_link_open(const struct ceb_amqp_conn *c, char *errbuf, size_t errlen)
{
	amqp_connection_state_t conn = amqp_new_connection();
	struct timeval tv = {5, 0}, rpc = {10, 0};
	amqp_socket_t *sock = NULL;
	amqp_rpc_reply_t r;
	char why[300];
	int st;

	if (!conn) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	sock = c->tls ? amqp_ssl_socket_new(conn) : amqp_tcp_socket_new(conn);
	if (!sock) {
		snprintf(errbuf, errlen, "cannot create a socket");
		goto fail;
	}
	if (c->tls && tls_setup(sock, c, errbuf, errlen) < 0)
		goto fail;
	st = amqp_socket_open_noblock(sock, c->host, c->port, &tv);
	if (st != AMQP_STATUS_OK) {
		snprintf(errbuf, errlen, "cannot connect to %s:%d: %s", c->host, c->port,
		         amqp_error_string2(st));
		goto fail;
	}
	amqp_set_handshake_timeout(conn, &tv);
	amqp_set_rpc_timeout(conn, &rpc);
	r = amqp_login(conn, c->vhost, 0, 131072, HEARTBEAT_S, AMQP_SASL_METHOD_PLAIN, c->user,
	               c->password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		/* the user name is the Secret's, as the password: neither is shown */
		snprintf(errbuf, errlen, "login to %s:%d (vhost %s) failed: %s", c->host, c->port,
		         c->vhost, reply_text(r, why, sizeof(why)));
		goto fail;
	}
	amqp_channel_open(conn, AMQP_CH);
	if (amqp_link_reply(conn, "channel.open", errbuf, errlen) < 0)
		goto fail;
	return conn;
fail:
	amqp_destroy_connection(conn);
	return NULL;
}

void amqp_link_close(amqp_connection_state_t conn)
{
	struct timeval tv = {1, 0};

	if (!conn)
		return;
	/* a short wait for close-ok: the server may be gone already */
	amqp_set_rpc_timeout(conn, &tv);
	amqp_channel_close(conn, AMQP_CH, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
}

void amqp_wait(int fd, int wake, int ms)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = wake, .events = POLLIN}};
	uint64_t v;

	if (poll(p, 2, ms) > 0 && (p[1].revents & POLLIN))
		(void)!read(wake, &v, sizeof(v));
}

void amqp_wake(int wake)
{
	uint64_t one = 1;

	(void)!write(wake, &one, sizeof(one));
}

static amqp_bytes_t cstr(const char *s)
{
	return amqp_cstring_bytes(s);
}

int amqp_declare_exchange(struct amqp_channel *ac, amqp_connection_state_t conn, char *errbuf,
                          size_t errlen)
{
	char what[600];

	if (ac->role == ROLE_SOURCE && (ac->source->predeclared || !ac->source->exchange))
		return 0;
	amqp_exchange_declare(conn, AMQP_CH, cstr(ac->exchange), cstr("headers"), 0, 1, 0, 0,
	                      amqp_empty_table);
	snprintf(what, sizeof(what), "declaring exchange %s", ac->exchange);
	return amqp_link_reply(conn, what, errbuf, errlen);
}

int amqp_declare_queue(struct amqp_sub *sub, amqp_connection_state_t conn, char *errbuf,
                       size_t errlen)
{
	struct amqp_channel *ac = sub->ac;
	amqp_table_entry_t qargs[2], bargs[2 + AMQP_BIND_MAX];
	char bnames[AMQP_BIND_MAX][32];
	amqp_table_t qt = {0, qargs}, bt = {0, bargs};
	char what[1200];

	if (ac->role == ROLE_SOURCE && ac->source->predeclared) {
		/* the user's queue: only check that it is there */
		amqp_queue_declare(conn, AMQP_CH, cstr(sub->queue), 1, 0, 0, 0, amqp_empty_table);
		snprintf(what, sizeof(what), "queue %s (predeclared)", sub->queue);
		return amqp_link_reply(conn, what, errbuf, errlen);
	}
	qargs[qt.num_entries].key = cstr("x-queue-type");
	qargs[qt.num_entries].value.kind = AMQP_FIELD_KIND_UTF8;
	qargs[qt.num_entries++].value.value.bytes = cstr(ac->classic ? "classic" : "quorum");
	if (sub->single_active) {
		qargs[qt.num_entries].key = cstr("x-single-active-consumer");
		qargs[qt.num_entries].value.kind = AMQP_FIELD_KIND_BOOLEAN;
		qargs[qt.num_entries++].value.value.boolean = 1;
	}
	amqp_queue_declare(conn, AMQP_CH, cstr(sub->queue), 0, 1, 0, 0, qt);
	snprintf(what, sizeof(what), "declaring queue %s", sub->queue);
	if (amqp_link_reply(conn, what, errbuf, errlen) < 0)
		return CEB_EUNAVAIL;
	if (ac->role == ROLE_SOURCE && !ac->source->exchange)
		return 0;
	bargs[bt.num_entries].key = cstr("x-match");
	bargs[bt.num_entries].value.kind = AMQP_FIELD_KIND_UTF8;
	bargs[bt.num_entries++].value.value.bytes = cstr("all");
	if (ac->role == ROLE_BROKER) {
		/* x- keys take no part in matching: it keeps each Trigger's binding its own */
		bargs[bt.num_entries].key = cstr("x-knative-trigger");
		bargs[bt.num_entries].value.kind = AMQP_FIELD_KIND_UTF8;
		bargs[bt.num_entries++].value.value.bytes = cstr(sub->cfg.name);
	}
	for (size_t i = 0; i < sub->nbind; i++) {
		snprintf(bnames[i], sizeof(bnames[i]), "cloudEvents_%s", sub->bind_names[i]);
		bargs[bt.num_entries].key = cstr(bnames[i]);
		bargs[bt.num_entries].value.kind = AMQP_FIELD_KIND_UTF8;
		bargs[bt.num_entries++].value.value.bytes = cstr(sub->bind_values[i]);
	}
	amqp_queue_bind(conn, AMQP_CH, cstr(sub->queue), cstr(ac->exchange), amqp_empty_bytes, bt);
	snprintf(what, sizeof(what), "binding queue %s to exchange %s", sub->queue, ac->exchange);
	return amqp_link_reply(conn, what, errbuf, errlen);
}

/* ---- configuration ---- */

static const struct ceb_rabbitmq_broker_config *broker_config(const struct ceb_channel_cfg *cfg,
                                                              char *errbuf, size_t errlen)
{
	const struct ceb_broker_cfg *bc = cfg->spec;

	if (!bc || !bc->config_res_kind ||
	    strcmp(bc->config_res_kind, CEB_RABBITMQ_BROKER_CONFIG_KIND) ||
	    !bc->config_res) { /* the loader refuses such a Broker */
		snprintf(errbuf, errlen,
		         "Broker %s/%s: a RabbitMQBroker needs spec.config naming a "
		         "RabbitmqBrokerConfig",
		         cfg->ns, cfg->name);
		return NULL;
	}
	return bc->config_res;
}

/* Where the channel connects: the test override, else the connectionSecret. */
static int channel_conn(const struct ceb_channel_cfg *cfg, struct ceb_amqp_conn *out, bool *classic,
                        char *errbuf, size_t errlen)
{
	if (!strcmp(cfg->kind, "Broker")) {
		const struct ceb_rabbitmq_broker_config *rb = broker_config(cfg, errbuf, errlen);
		if (!rb)
			return CEB_ECONFIG;
		*classic = rb->classic;
		if (rb->direct.host)
			return ceb_amqp_conn_copy(out, &rb->direct);
		return ceb_rabbitmq_conn(&rb->cluster, rb->vhost, out, errbuf, errlen);
	}
	if (!strcmp(cfg->kind, CEB_RABBITMQ_SOURCE_KIND)) {
		const struct ceb_rabbitmq_source_cfg *src = cfg->spec;
		*classic = false;
		if (src->direct.host)
			return ceb_amqp_conn_copy(out, &src->direct);
		return ceb_rabbitmq_conn(&src->cluster, src->vhost, out, errbuf, errlen);
	}
	snprintf(errbuf, errlen, "%s %s/%s: not served by the amqp channel", cfg->kind, cfg->ns,
	         cfg->name);
	return CEB_ECONFIG;
}

static int amqp_check(const struct ceb_channel_cfg *cfg, char *errbuf, size_t errlen)
{
	struct ceb_amqp_conn c = {0};
	bool classic;
	int rc = channel_conn(cfg, &c, &classic, errbuf, errlen);

	ceb_amqp_conn_free(&c);
	return rc < 0 ? CEB_ECONFIG : 0;
}

static void amqp_destroy(void *ctx);

static int amqp_create(const struct ceb_channel_cfg *cfg, void **ctx, char *errbuf, size_t errlen)
{
	struct amqp_channel *ac = calloc(1, sizeof(*ac));
	int rc;

	if (!ac) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	pthread_mutex_init(&ac->pub_lock, NULL);
	ac->pub_wake = -1;
	ac->confirm_ms = CONFIRM_MS;
	rc = channel_conn(cfg, &ac->conn, &ac->classic, errbuf, errlen);
	if (rc < 0)
		goto fail;
	if (!strcmp(cfg->kind, "Broker")) {
		ac->role = ROLE_BROKER;
		snprintf(ac->label, sizeof(ac->label), "broker %s/%s", cfg->ns, cfg->name);
		snprintf(ac->exchange, sizeof(ac->exchange), "b.%s.%s", cfg->ns, cfg->name);
		ac->pub_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ac->pub_wake < 0) {
			snprintf(errbuf, errlen, "eventfd: %s", strerror(errno));
			rc = CEB_EIO;
			goto fail;
		}
	} else {
		ac->role = ROLE_SOURCE;
		ac->source = cfg->spec;
		snprintf(ac->label, sizeof(ac->label), "rabbitmqsource %s/%s", cfg->ns, cfg->name);
		snprintf(ac->exchange, sizeof(ac->exchange), "%s",
		         ac->source->exchange ? ac->source->exchange : "");
	}
	*ctx = ac;
	return 0;
fail:
	amqp_destroy(ac);
	return rc;
}

/* The publisher (a Broker's) and every consumer tried to connect once. */
static bool all_tried(struct amqp_channel *ac)
{
	if (ac->role == ROLE_BROKER && !atomic_load(&ac->tried))
		return false;
	for (size_t i = 0; i < ac->nsubs; i++)
		if (!atomic_load(&ac->subs[i]->tried))
			return false;
	return true;
}

/* The publisher (a Broker's) and every consumer are connected. */
static bool all_up(struct amqp_channel *ac)
{
	if (ac->role == ROLE_BROKER && !atomic_load(&ac->up))
		return false;
	for (size_t i = 0; i < ac->nsubs; i++)
		if (!atomic_load(&ac->subs[i]->consuming))
			return false;
	return true;
}

static int amqp_start(void *ctx, char *errbuf, size_t errlen)
{
	struct amqp_channel *ac = ctx;
	uint64_t until = ceb_now_ms() + 10000;

	if (ac->role == ROLE_BROKER) {
		if (pthread_create(&ac->pub_thread, NULL, amqp_pub_main, ac) != 0) {
			snprintf(errbuf, errlen, "cannot start the publisher thread");
			return CEB_EIO;
		}
		pthread_setname_np(ac->pub_thread, "ceb-amqp-pub");
		ac->pub_running = 1;
	}
	for (size_t i = 0; i < ac->nsubs; i++) {
		struct amqp_sub *sub = ac->subs[i];
		if (pthread_create(&sub->thread, NULL, amqp_sub_main, sub) != 0) {
			snprintf(errbuf, errlen, "cannot start a consumer thread");
			return CEB_EIO;
		}
		pthread_setname_np(sub->thread, "ceb-amqp-sub");
		sub->running = 1;
	}
	ac->started = 1;
	/* Up to 10 s for the first connection attempts (the publisher's declares every Trigger's queue; a
	 * source's consumer declares its queue and exchange), so that the first POSTs are stored
	 * rather than refused. RabbitMQ down is no reason not to start: publishes are refused (503)
	 * until it is back. */
	while (!all_tried(ac) && ceb_now_ms() < until)
		usleep(20000);
	if (!all_up(ac))
		CEB_LOG_WARN(
		        ac->label,
		        "RabbitMQ at %s:%d: not every connection is up yet (/readyz answers 503 "
		        "until they are)",
		        ac->conn.host, ac->conn.port);
	return 0;
}

static size_t amqp_pending(void *ctx)
{
	struct amqp_channel *ac = ctx;
	size_t n = 0;

	for (size_t i = 0; i < ac->nsubs; i++)
		n += atomic_load(&ac->subs[i]->inflight);
	return n;
}

/* The publisher's connection is up (a Broker), every consumer's too. */
static bool amqp_ready(void *ctx)
{
	return all_up(ctx);
}

static void amqp_stop(void *ctx)
{
	struct amqp_channel *ac = ctx;

	if (ac->halted)
		return;
	ac->halted = 1;
	/* the publisher answers what it holds (confirms for up to 2 s) and ends */
	if (ac->pub_running) {
		amqp_pub_close(ac);
		pthread_join(ac->pub_thread, NULL);
		ac->pub_running = 0;
	}
	/* consumers hand out nothing more, and keep acking what the dispatchers settle */
	for (size_t i = 0; i < ac->nsubs; i++) {
		atomic_store(&ac->subs[i]->paused, 1);
		amqp_wake(ac->subs[i]->wake);
	}
}

static void amqp_destroy(void *ctx)
{
	struct amqp_channel *ac = ctx;

	if (!ac)
		return;
	if (ac->pub_running) {
		amqp_pub_close(ac);
		pthread_join(ac->pub_thread, NULL);
	}
	for (size_t i = 0; i < ac->nsubs; i++)
		amqp_sub_destroy(ac->subs[i]);
	free(ac->subs);
	if (ac->pub_wake >= 0)
		close(ac->pub_wake);
	ceb_amqp_conn_free(&ac->conn);
	pthread_mutex_destroy(&ac->pub_lock);
	free(ac);
}

const struct channel_ops ceb_channel_amqp = {
        .name = "amqp",
        .flags = CEB_CHANNEL_DURABLE | CEB_CHANNEL_ORDERED_DEFAULT,
        .create = amqp_create,
        .destroy = amqp_destroy,
        .start = amqp_start,
        .publish = amqp_publish,
        .subscribe = amqp_subscribe,
        .settle = amqp_settle,
        .pending = amqp_pending,
        .stop = amqp_stop,
        .check = amqp_check,
        .connected = amqp_ready,
};
