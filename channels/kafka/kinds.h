/* What the Kafka family offers the rest of the tree: its backend's ops and the names of its own
 * kinds, which select the channel's half (a KafkaSink: produce only; a KafkaSource: consume only). */
#ifndef CEB_KAFKA_KINDS_H
#define CEB_KAFKA_KINDS_H

#include "channels/channel.h"

#define CEB_KAFKA_SOURCE_KIND "KafkaSource"
#define CEB_KAFKA_SINK_KIND   "KafkaSink"

/* The backend (also listed in channels/channel_list.h). ceb_channel_cfg.spec is a struct
 * ceb_kafka_source_cfg for CEB_KAFKA_SOURCE_KIND, a struct ceb_kafka_sink_cfg for
 * CEB_KAFKA_SINK_KIND, a struct ceb_broker_cfg for "Broker". */
extern const struct channel_ops ceb_channel_kafka;

#endif
