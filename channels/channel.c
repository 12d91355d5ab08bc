/* The registry of channel backends compiled into this build (channels/channel_list.h), the mapping
 * from Knative Broker classes to backends, and batches for backends that store event by event. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig.h"
#include "broker/error.h"
#include "channels/channel.h"

#define CHANNEL(x) extern const struct channel_ops ceb_channel_##x;
#include "channels/channel_list.h"
#undef CHANNEL

static const struct channel_ops *const channels[] = {
#define CHANNEL(x) &ceb_channel_##x,
#include "channels/channel_list.h"
#undef CHANNEL
        NULL,
};

const struct channel_ops *ceb_channel_ops_find(const char *name)
{
	for (size_t i = 0; channels[i]; i++)
		if (strcmp(channels[i]->name, name) == 0)
			return channels[i];
	return NULL;
}

const struct channel_ops *ceb_channel_ops_default(void)
{
	return channels[0];
}

const struct channel_ops *ceb_channel_ops_at(size_t i)
{
	return i < sizeof(channels) / sizeof(channels[0]) ? channels[i] : NULL;
}

static const struct {
	const char *broker_class;
	const char *channel;
} classes[] = {
        {"MTChannelBasedBroker", "memory"},
        {"Kafka", "kafka"},
        {"RabbitMQBroker", "amqp"},
        {"NatsJetStreamBroker", "nats"},
};

const char *ceb_channel_for_class(const char *broker_class)
{
	if (!broker_class)
		return "memory";
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
		if (strcmp(classes[i].broker_class, broker_class) == 0)
			return classes[i].channel;
	return NULL;
}

int ceb_channel_create(struct ceb_channel *ch, const struct channel_ops *ops,
                       const struct ceb_channel_cfg *cfg, char *errbuf, size_t errlen)
{
	int rc = ops->create(cfg, &ch->ctx, errbuf, errlen);

	ch->ops = rc < 0 ? NULL : ops;
	return rc;
}

int ceb_channel_start(struct ceb_channel *ch, char *errbuf, size_t errlen)
{
	return ch->ops && ch->ops->start ? ch->ops->start(ch->ctx, errbuf, errlen) : 0;
}

void ceb_channel_committed(struct ceb_channel *ch)
{
	if (ch->ops && ch->ops->committed)
		ch->ops->committed(ch->ctx);
}

void ceb_channel_stop(struct ceb_channel *ch)
{
	if (ch->ops && ch->ops->stop)
		ch->ops->stop(ch->ctx);
}

void ceb_channel_destroy(struct ceb_channel *ch)
{
	if (ch->ops)
		ch->ops->destroy(ch->ctx);
	ch->ops = NULL;
	ch->ctx = NULL;
}

/* A batch published event by event: one completion per event, the batch's after the last. */
struct each_slot {
	struct each_batch *batch;
	size_t i;
};

struct each_batch {
	pthread_mutex_t lock;
	size_t left; /* completions still due, plus one until every publish was started */
	ceb_batch_done_f *done;
	void *arg;
	size_t n;
	int *status;
	struct each_slot *slots;
};

static void each_release(struct each_batch *b, size_t i, int status, bool record)
{
	bool last;
	int first = 0;

	pthread_mutex_lock(&b->lock);
	if (record)
		b->status[i] = status;
	last = --b->left == 0;
	pthread_mutex_unlock(&b->lock);
	if (!last)
		return;
	for (size_t k = 0; k < b->n && !first; k++)
		first = b->status[k];
	b->done(b->arg, first, b->status, b->n);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static void each_done(void *arg, int status)
{
	struct each_slot *slot = arg;

	each_release(slot->batch, slot->i, status, true);
}

void ceb_channel_publish_batch(const struct ceb_channel *ch, struct ceb_event *const *evs, size_t n,
                               ceb_batch_done_f *done, void *arg)
{
	struct each_batch *b;

	if (ch->ops->publish_batch) {
		ch->ops->publish_batch(ch->ctx, evs, n, done, arg);
		return;
	}
	/* One block for the batch, its statuses and its slots: a completion frees it at once. */
	b = calloc(1, sizeof(*b) + n * (sizeof(*b->status) + sizeof(*b->slots)));
	if (!b) {
		done(arg, CEB_EFULL, NULL, n); /* nothing was published */
		return;
	}
	pthread_mutex_init(&b->lock, NULL);
	b->slots = (struct each_slot *)(b + 1);
	b->status = (int *)(b->slots + n);
	b->done = done;
	b->arg = arg;
	b->n = n;
	/* The extra count keeps completions that run at once, inside publish, from finishing the
	 * batch before its last event was even published. */
	b->left = n + 1;
	for (size_t i = 0; i < n; i++) {
		b->slots[i] = (struct each_slot){b, i};
		ch->ops->publish(ch->ctx, evs[i], each_done, &b->slots[i]);
	}
	each_release(b, 0, 0, false);
}

/* Knative's channel kinds (messaging.knative.dev) that a backend here can back. */
static const struct {
	const char *kind;
	const char *channel;
} channel_kinds[] = {
        {"InMemoryChannel", "memory"},
#ifdef HAVE_RDKAFKA
        {"KafkaChannel", "kafka"},
#endif
#ifdef HAVE_NATS
        {"NatsJetStreamChannel", "nats"},
#endif
#ifdef HAVE_SQLITE
        {"DurableChannel", "durable"},
#endif
};

const char *ceb_channel_for_kind(const char *channel_kind)
{
	for (size_t i = 0; i < sizeof(channel_kinds) / sizeof(channel_kinds[0]); i++)
		if (strcmp(channel_kinds[i].kind, channel_kind) == 0)
			return channel_kinds[i].channel;
	return NULL;
}
