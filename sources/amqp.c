/* RabbitmqSource (eventing-rabbitmq's sources.knative.dev kind): a queue's messages to a sink. The
 * source is the consume-only half of the RabbitMQ backend (channels/amqp/): CloudEvent messages pass
 * as they are, plain ones are mapped as eventing-rabbitmq maps them, and a message is acked only once
 * the sink (or the dead-letter sink) accepted it. */
#include <stdio.h>
#include <stdlib.h>

#include "broker/error.h"
#include "channels/amqp/kinds.h"
#include "sources/source.h"

struct amqp_source {
	struct ceb_channel ch;
};

static void as_destroy(void *ctx)
{
	struct amqp_source *as = ctx;

	if (!as)
		return;
	ceb_channel_destroy(&as->ch);
	free(as);
}

static int as_create(const struct ceb_source_cfg *cfg, const struct ceb_source_env *env, void **ctx,
                     char *errbuf, size_t errlen)
{
	struct ceb_channel_cfg cc = {
	        .kind = CEB_RABBITMQ_SOURCE_KIND,
	        .ns = cfg->ns,
	        .name = cfg->name,
	        .spec = cfg->own,
	};
	struct amqp_source *as = calloc(1, sizeof(*as));
	int rc;

	(void)env;
	if (!as) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	rc = ceb_channel_create(&as->ch, &ceb_channel_amqp, &cc, errbuf, errlen);
	if (rc < 0) {
		as_destroy(as);
		return rc;
	}
	*ctx = as;
	return 0;
}

static struct ceb_channel *as_channel(void *ctx)
{
	return &((struct amqp_source *)ctx)->ch;
}

/* Messages not handed out stay in the queue; what was handed out is still delivered and acked. */
static void as_stop(void *ctx)
{
	ceb_channel_stop(&((struct amqp_source *)ctx)->ch);
}

const struct source_ops ceb_source_amqp = {
        .kind = "RabbitmqSource",
        .label = "rabbitmqsource",
        .create = as_create,
        .channel = as_channel,
        .stop = as_stop,
        .destroy = as_destroy,
};
