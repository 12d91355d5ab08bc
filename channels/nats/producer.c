/* Publishing into a Broker's stream: asynchronous JetStream publishes, each answered from its
 * PubAck (stored), or 503 when JetStream refused it, did not answer within NATS_CONFIRM_MS, or the
 * connection is down. The ingress thread never waits: it hands the message to nats.c and returns. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/ce/event.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/nats/binding.h"
#include "channels/nats/nats.h"

struct nats_pub {
	natsMsg *msg; /* the key: the message nats.c gives back to the ack handler */
	ceb_publish_done_f *done;
	void *arg;
	struct nats_pub *next;
};

static size_t slot(const struct nats_chan *nch, const natsMsg *m)
{
	uintptr_t p = (uintptr_t)m;

	return (size_t)((p >> 4) ^ (p >> 13)) & (nch->pubtab_size - 1);
}

int nats_producer_init(struct nats_chan *nch)
{
	nch->pubtab_size = 4096;
	nch->pubtab = calloc(nch->pubtab_size, sizeof(*nch->pubtab));
	return nch->pubtab ? 0 : CEB_ENOMEM;
}

static void pub_put(struct nats_chan *nch, struct nats_pub *p)
{
	size_t i = slot(nch, p->msg);

	pthread_mutex_lock(&nch->pub_lock);
	p->next = nch->pubtab[i];
	nch->pubtab[i] = p;
	pthread_mutex_unlock(&nch->pub_lock);
}

static struct nats_pub *pub_take(struct nats_chan *nch, const natsMsg *m)
{
	struct nats_pub **pp, *p = NULL;

	pthread_mutex_lock(&nch->pub_lock);
	for (pp = &nch->pubtab[slot(nch, m)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->msg == m) {
			p = *pp;
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&nch->pub_lock);
	return p;
}

static void pub_finish(struct nats_chan *nch, struct nats_pub *p, int status)
{
	atomic_fetch_sub(&nch->unconfirmed, 1);
	p->done(p->arg, status);
	free(p);
}

void nats_ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct nats_chan *nch = closure;
	struct nats_pub *p = pub_take(nch, msg);

	(void)js;
	if (p) {
		if (!pa)
			CEB_LOG_WARN(nch->label, "JetStream did not store an event: %s",
			             pae && pae->ErrText ? pae->ErrText : "no PubAck");
		pub_finish(nch, p, pa ? 0 : CEB_EUNAVAIL);
	}
	natsMsg_Destroy(msg);
}

void nats_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg)
{
	struct nats_chan *nch = ctx;
	natsMsg *msg = NULL;
	struct nats_pub *p = NULL;
	jsPubOptions po;
	size_t len = 0;
	const void *data = ceb_event_data(ev, &len);
	natsStatus s;

	atomic_fetch_add(&nch->publishing, 1);
	if (atomic_load(&nch->stopping) || !nch->jsc ||
	    natsConnection_Status(nch->nc) != NATS_CONN_STATUS_CONNECTED) {
		atomic_fetch_sub(&nch->publishing, 1);
		done(arg, CEB_EUNAVAIL);
		return;
	}
	if (atomic_load(&nch->unconfirmed) >= NATS_MAX_UNCONFIRMED) {
		atomic_fetch_sub(&nch->publishing, 1);
		done(arg, CEB_EFULL);
		return;
	}
	if (natsMsg_Create(&msg, nch->subject, NULL, data, (int)len) != NATS_OK ||
	    ceb_nats_set_headers(msg, ev) < 0 || !(p = calloc(1, sizeof(*p)))) {
		natsMsg_Destroy(msg);
		atomic_fetch_sub(&nch->publishing, 1);
		done(arg, CEB_EUNAVAIL);
		return;
	}
	p->msg = msg;
	p->done = done;
	p->arg = arg;
	atomic_fetch_add(&nch->unconfirmed, 1);
	pub_put(nch, p);
	jsPubOptions_Init(&po);
	po.MaxWait = NATS_CONFIRM_MS;
	po.ExpectStream = nch->stream;
	s = js_PublishMsgAsync(nch->jsc, &msg, &po);
	if (s != NATS_OK) {
		/* nats.c kept nothing: the message is still ours, unless its ack already came */
		struct nats_pub *q = pub_take(nch, p->msg);
		if (q) {
			CEB_LOG_WARN(nch->label, "cannot publish: %s", natsStatus_GetText(s));
			natsMsg_Destroy(msg);
			pub_finish(nch, q, CEB_EUNAVAIL);
		}
	}
	atomic_fetch_sub(&nch->publishing, 1);
}

void nats_producer_fail_all(struct nats_chan *nch)
{
	for (;;) {
		struct nats_pub *p = NULL;

		pthread_mutex_lock(&nch->pub_lock);
		for (size_t i = 0; i < nch->pubtab_size && !p; i++) {
			if ((p = nch->pubtab[i]))
				nch->pubtab[i] = p->next;
		}
		pthread_mutex_unlock(&nch->pub_lock);
		if (!p)
			return;
		/* The message is nats.c's: it frees it when the context goes. */
		pub_finish(nch, p, CEB_EUNAVAIL);
	}
}
