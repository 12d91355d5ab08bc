/* The registry of channel backends compiled into this build, built from channels/channel_list.h, and
 * the mapping from Knative Broker classes to backends. */
#include <string.h>

#include "autoconfig.h"
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
