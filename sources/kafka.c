/* KafkaSource (Knative's sources.knative.dev kind): records of existing topics to a sink. The source
 * is the consume-only half of the Kafka backend (channels/kafka/): one consumer group over the
 * source's topics, plain records mapped to CloudEvents as Knative maps them, offsets committed only
 * for what the sink (or the dead-letter sink) accepted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/error.h"
#include "broker/log.h"
#include "channels/kafka/kinds.h"
#include "sources/source.h"

struct kafka_source {
	struct ceb_channel ch;
};

static void ks_destroy(void *ctx)
{
	struct kafka_source *ks = ctx;

	if (!ks)
		return;
	ceb_channel_destroy(&ks->ch);
	free(ks);
}

/* Two KafkaSources in one consumer group that read a topic in common share its partitions: each
 * gets only part of the records. Legal in Kafka (and in Knative), rarely meant: say so. Each pair is
 * told once, by its first source. */
static void warn_shared_group(const struct ceb_source_cfg *cfg)
{
	const struct ceb_kafka_source_cfg *a = cfg->own;

	for (const struct ceb_source_cfg *o = cfg->next; o; o = o->next) {
		const struct ceb_kafka_source_cfg *b = o->own;
		if (strcmp(o->kind, cfg->kind) || strcmp(a->group, b->group) ||
		    strcmp(a->bootstrap, b->bootstrap))
			continue;
		for (size_t i = 0; i < a->ntopics; i++)
			for (size_t j = 0; j < b->ntopics; j++)
				if (strcmp(a->topics[i], b->topics[j]) == 0)
					CEB_LOG_WARN(
					        "cebroker",
					        "KafkaSources %s/%s and %s/%s share consumer group "
					        "%s "
					        "on topic %s: each gets only part of its records",
					        a->ns, a->name, b->ns, b->name, a->group,
					        a->topics[i]);
	}
}

/* Its Secrets' settings, tried as the channel would take them. */
static int ks_check(const struct ceb_source_cfg *cfg, char *errbuf, size_t errlen)
{
	struct ceb_channel_cfg cc = {
	        .kind = CEB_KAFKA_SOURCE_KIND,
	        .ns = cfg->ns,
	        .name = cfg->name,
	        .spec = cfg->own,
	};

	return ceb_channel_kafka.check(&cc, errbuf, errlen);
}

static int ks_create(const struct ceb_source_cfg *cfg, const struct ceb_source_env *env, void **ctx,
                     char *errbuf, size_t errlen)
{
	struct ceb_channel_cfg cc = {
	        .kind = CEB_KAFKA_SOURCE_KIND,
	        .ns = cfg->ns,
	        .name = cfg->name,
	        .spec = cfg->own,
	};
	struct kafka_source *ks = calloc(1, sizeof(*ks));
	int rc;

	(void)env;
	warn_shared_group(cfg);
	if (!ks) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	rc = ceb_channel_create(&ks->ch, &ceb_channel_kafka, &cc, errbuf, errlen);
	if (rc < 0) {
		ks_destroy(ks);
		return rc;
	}
	*ctx = ks;
	return 0;
}

static struct ceb_channel *ks_channel(void *ctx)
{
	return &((struct kafka_source *)ctx)->ch;
}

/* The consumer threads start with the channel; stopping them is all a stop needs: records not
 * handed out stay in Kafka, and what was handed out is still delivered and committed. */
static void ks_stop(void *ctx)
{
	ceb_channel_stop(&((struct kafka_source *)ctx)->ch);
}

const struct source_ops ceb_source_kafka = {
        .kind = "KafkaSource",
        .label = "kafkasource",
        .create = ks_create,
        .channel = ks_channel,
        .stop = ks_stop,
        .destroy = ks_destroy,
        .check = ks_check,
};
