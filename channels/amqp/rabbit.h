/* What the RabbitMQ channel's files (channel.c, producer.c, consumer.c) share: the channel and
 * subscription structs and the functions that cross files. Used nowhere else. */
#ifndef CEB_AMQP_RABBIT_H
#define CEB_AMQP_RABBIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "channels/amqp/kinds.h"
#include "channels/channel.h"

#define AMQP_CH         1     /* the one AMQP channel of each connection */
#define HEARTBEAT_S     10    /* AMQP heartbeat, as the Go client's default */
#define CONFIRM_MS      10000 /* the longest a publish waits for RabbitMQ's confirm */
#define REDELIVER_MS    1000  /* a message settled FAILED goes back to its queue after this */
#define BACKOFF_MIN_MS  100   /* reconnect backoff: doubles up to BACKOFF_MAX_MS */
#define BACKOFF_MAX_MS  5000
#define MAX_QUEUED_PUBS 65536 /* publishes waiting for the publisher thread: beyond, 429 */

enum amqp_role {
	ROLE_BROKER = 0, /* publish into the Broker's exchange, a queue per Trigger */
	ROLE_SOURCE,     /* consume only: the RabbitmqSource's queue */
};

struct amqp_pub;   /* producer.c */
struct settle_req; /* consumer.c */
struct redelivery; /* consumer.c */
struct held;       /* consumer.c */

#define AMQP_BIND_MAX 6 /* specversion, id, source, type, subject, dataschema */

/* A subscription: a queue, its connection and its consumer thread (consumer.c). */
struct amqp_sub {
	char label[300];
	struct amqp_channel *ac;
	struct ceb_sub_cfg cfg;
	char queue[512];
	/* The Trigger's exact attributes that RabbitMQ can test (string context attributes), bound
	 * as cloudEvents_<name> so that RabbitMQ drops what cannot match; names and values are the
	 * filter's. Extensions are left to cebroker: an Integer or Boolean one travels typed, and a
	 * string in the binding would not equal it. */
	const char *bind_names[AMQP_BIND_MAX], *bind_values[AMQP_BIND_MAX];
	size_t nbind;
	unsigned prefetch;
	bool single_active; /* x-single-active-consumer: FIFO across processes */
	pthread_t thread;
	int running;
	int wake; /* eventfd: settles and stop wake the thread */
	atomic_int stop;
	atomic_int paused;      /* channel stop(): hand out nothing more, still ack settles */
	atomic_size_t inflight; /* handed out and not settled */
	atomic_int consuming;   /* its connection is up and consuming */
	atomic_int tried;       /* its first connection attempt is over */
	pthread_mutex_t lock;   /* guards the settle requests, settle_since and need_wake */
	struct settle_req *settles;
	size_t nsettles, capsettles;
	size_t ack_batch;      /* this many settles are applied at once; fewer wait ACK_DELAY_MS */
	uint64_t settle_since; /* ms: when the oldest settle queued came */
	int need_wake; /* the consumer waits with no timer for settles: the next one wakes it */
	/* the consumer thread's own */
	amqp_connection_state_t conn;
	uint16_t gen; /* the connection's generation, in every handle it hands out */
	struct redelivery *redeliver;
	size_t nredeliver, capredeliver;
	struct held *held; /* handed out and not acked yet, by tag: acks go out coalesced */
	size_t nheld, capheld;
	uint64_t hold_since;       /* ms: settled messages wait behind one still out */
	unsigned long acks, acked; /* ack frames sent, messages they acked */
	char ctag[256];            /* the consumer tag, to cancel at stop() */
	int cancelled;
	unsigned long skipped, redelivered;
};

/* A channel in one of its roles. */
struct amqp_channel {
	char label[300];
	enum amqp_role role;
	struct ceb_amqp_conn conn;
	char exchange[512];
	bool classic;
	const struct ceb_rabbitmq_source_cfg *source; /* ROLE_SOURCE */
	int confirm_ms;
	/* the publisher (ROLE_BROKER) */
	pthread_t pub_thread;
	int pub_running;
	int pub_wake;             /* eventfd */
	pthread_mutex_t pub_lock; /* guards the queue of publishes not sent yet, and closed */
	struct amqp_pub *in_head, *in_tail;
	size_t nin;
	int closed;       /* stop(): publishes answered 503 from now on */
	atomic_int up;    /* the publisher's connection is open: publishes are taken */
	atomic_int tried; /* the publisher's first connection attempt is over */
	atomic_int stop;  /* the publisher thread ends */
	unsigned long published,
	        batches; /* the publisher thread's own: publishes sent, in batches */
	struct amqp_sub **subs;
	size_t nsubs;
	int started, halted;
};

/* ---- channel.c ---- */

/* Open a connection (TCP or TLS, login, heartbeats, channel AMQP_CH). NULL with the reason in errbuf
 * (never the password). */
amqp_connection_state_t amqp_link_open(const struct ceb_amqp_conn *c, char *errbuf, size_t errlen);
/* Close (best effort: the server may be gone) and free. Accepts NULL. */
void amqp_link_close(amqp_connection_state_t conn);
/* The last RPC's outcome: 0, or CEB_EUNAVAIL with what failed in errbuf. */
int amqp_link_reply(amqp_connection_state_t conn, const char *what, char *errbuf, size_t errlen);
/* Declare the channel's exchange (durable headers), unless a predeclared source's. */
int amqp_declare_exchange(struct amqp_channel *ac, amqp_connection_state_t conn, char *errbuf,
                          size_t errlen);
/* Declare a subscription's queue (durable; quorum unless classic) and bind it to the exchange. */
int amqp_declare_queue(struct amqp_sub *sub, amqp_connection_state_t conn, char *errbuf,
                       size_t errlen);
/* Wait until fd is readable or the wake eventfd is signalled, at most ms; drains the eventfd. */
void amqp_wait(int fd, int wake, int ms);
void amqp_wake(int wake);

/* ---- producer.c ---- */

void *amqp_pub_main(void *arg);
/* channel_ops.publish: takes its own reference to ev; done is called exactly once. Any thread. */
void amqp_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg);
/* stop(): no more publishes; the publisher thread answers what it holds and ends. */
void amqp_pub_close(struct amqp_channel *ac);

/* ---- consumer.c ---- */

int amqp_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out);
void amqp_settle(void *ctx, void *subp, void *handle, enum ceb_settle how);
void *amqp_sub_main(void *arg);
/* Ends the consumer thread (acking what was settled before), closes its connection, frees sub. */
void amqp_sub_destroy(struct amqp_sub *sub);

#endif
