/* What the NATS channel's files (channel.c, producer.c, consumer.c) share. Used nowhere else. */
#ifndef CEB_NATS_INTERNAL_H
#define CEB_NATS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "channels/channel.h"
#include "channels/nats/kinds.h"

enum nats_role {
	NROLE_BROKER = 0,
	NROLE_SOURCE_CORE, /* a NatsSource on a core NATS subject: at most once */
	NROLE_SOURCE_JS,   /* a NatsSource on a JetStream durable consumer */
};

struct nats_pub;
struct nats_held;

/* A subscription: a Trigger's durable pull consumer (or a NatsSource's consumer or core
 * subscription) and the thread that fetches for it. */
struct nats_sub {
	char label[900];
	struct nats_chan *nch;
	struct ceb_sub_cfg cfg;
	char durable[256];
	natsSubscription *ps; /* pull subscription, or the core subscription */
	pthread_t thread;
	int running;
	int drained; /* core NATS: the subscription was drained */
	atomic_int stop;
	pthread_mutex_t lock;   /* guards what follows */
	pthread_cond_t cond;    /* a settle made room */
	size_t inflight;        /* handed and not settled */
	struct nats_held *held; /* handed JetStream messages, for in-progress acks */
	unsigned long skipped;
};

struct nats_chan {
	char label[300];
	enum nats_role role;
	int channel; /* NROLE_BROKER for a NatsJetStreamChannel: its stream, subject and consumers */
	const struct ceb_nats_source_cfg *src;
	char stream[256];   /* the Broker's stream, or the source's */
	char subject[512];  /* where publishes go */
	char subjects[512]; /* the stream's subjects (Broker) */
	struct ceb_nats_conn conn;
	struct ceb_nats_js js;
	natsConnection *nc; /* publishing (SendAsap), and stream management */
	jsCtx *jsc;
	natsConnection *cnc; /* consuming: a Broker's Triggers' own (flusher), a source's = nc */
	jsCtx *cjsc;
	/* nats.c runs the connection callbacks on a thread of its own, also after Close returns:
	 * destroy waits for the closed callback, the last one, before it frees the channel */
	pthread_mutex_t cb_lock;
	pthread_cond_t cb_cond;
	int closed;                /* connections closed (the closed callback ran) */
	atomic_int nconns;         /* connections opened */
	atomic_int connected;      /* of those, connected now */
	atomic_size_t unconfirmed; /* publishes waiting for their PubAck */
	atomic_int stopping;
	atomic_int publishing;
	int halted;
	pthread_mutex_t pub_lock; /* guards the publish table */
	struct nats_pub **pubtab; /* natsMsg pointer -> its publish */
	size_t pubtab_size;
	struct nats_sub **subs;
	size_t nsubs;
	int started;
};

/* Largest number of publishes waiting for PubAcks; beyond it, publish answers CEB_EFULL. */
#define NATS_MAX_UNCONFIRMED 65536
/* How long a publish waits for its PubAck before it is answered 503. */
#define NATS_CONFIRM_MS 10000
#define NATS_WRITE_DEADLINE_MS 2000 /* a write the server does not take within this fails */
#define NATS_PING_MS 2000          /* two PINGs unanswered: the server is gone */

/* ---- producer.c ---- */
int nats_producer_init(struct nats_chan *nch);
void nats_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg);
void nats_ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);
/* Answer every publish still waiting with CEB_EUNAVAIL (stop). */
void nats_producer_fail_all(struct nats_chan *nch);

/* ---- consumer.c ---- */
int nats_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out);
void nats_settle(void *ctx, void *subp, void *handle, enum ceb_settle how);
/* Create the durable consumer when missing (before the ingress is ready). */
int nats_sub_prepare(struct nats_sub *sub, char *errbuf, size_t errlen);
int nats_sub_start(struct nats_sub *sub, char *errbuf, size_t errlen);
void nats_sub_stop(struct nats_sub *sub);
void nats_sub_destroy(struct nats_sub *sub);
size_t nats_sub_pending(struct nats_sub *sub);

#endif
