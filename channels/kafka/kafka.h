/* What the Kafka channel's files (kafka.c, kafka_consumer.c, kafka_producer.c) share: the
 * channel and subscription structs and the functions that cross files. Used nowhere else. */
#ifndef CEB_KAFKA_INTERNAL_H
#define CEB_KAFKA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "broker/clock.h"
#include "channels/channel.h"
#include "channels/kafka/kinds.h"

struct kafka_channel;
struct kpart;     /* kafka_consumer.c */
struct krec;      /* kafka_consumer.c */
struct kafka_pub; /* kafka_producer.c */

/* A librdkafka property and its value. */
struct kprop {
	const char *name, *value;
};

/* A partition of a new group and where it starts. */
struct kinit {
	const char *topic;
	int32_t part;
	int64_t offset;
};

/* A subscription (a Trigger's, or a KafkaSource's only one): a consumer group, its client and its
 * thread (kafka_consumer.c). label comes first in both structs: it is the librdkafka opaque that
 * log_cb prints. */
struct kafka_sub {
	char label[300];
	struct kafka_channel *kc;
	struct ceb_sub_cfg cfg;
	char group[300];
	rd_kafka_t *rk;
	rd_kafka_queue_t *q; /* the consumer queue: group events, errors */
	int wake[2];         /* a pipe: librdkafka queues and settles wake the consumer thread */
	atomic_int woken; /* kafka_sub_wake wrote to the pipe and the thread has not taken it yet */
	pthread_t thread;
	int running;
	atomic_int stop;
	pthread_mutex_t lock; /* guards everything below */
	struct kpart **parts;
	size_t nparts;
	size_t rr;            /* round-robin start for handing */
	size_t inflight;      /* INFLIGHT + FAILED, over all partitions and orphans */
	size_t held;          /* REC_HELD */
	size_t waiting;       /* REC_FAILED, waiting to be handed again */
	struct krec *timers;  /* REC_FAILED records, unordered */
	struct krec *orphans; /* INFLIGHT records of revoked partitions */
	struct kinit *init;   /* where a new group starts (offset -1: it has offsets) */
	size_t ninit;
	unsigned long skipped; /* records that were not CloudEvents */
	unsigned long
	        invalid; /* KafkaSource: records that claimed to be CloudEvents and were not */
	unsigned long redelivered;
	/* A rewind (cebroker replay) another thread asked for; the consumer thread does it. */
	pthread_cond_t rw_done;
	int rw_state; /* 0 none, 1 asked, 2 done */
	int64_t rw_since, rw_offset, rw_first;
	uint64_t rw_count;
	int rw_rc;
	char rw_err[256];
};

/* The role a channel plays (see the top of kafka.c). */
enum kafka_role {
	ROLE_BROKER = 0,
	ROLE_SINK,    /* produce only */
	ROLE_SOURCE,  /* consume only */
	ROLE_CHANNEL, /* a KafkaChannel: as a Broker's, with the channel's topic and groups */
};

/* A channel in one of its roles: its settings, its producer (Broker, KafkaSink) and its
 * subscriptions (Broker, KafkaSource). */
struct kafka_channel {
	char label[300];
	char name[256]; /* the resource's (a KafkaChannel's, in its groups' names) */
	enum kafka_role role;
	const struct ceb_kafka_source_cfg *source; /* ROLE_SOURCE */
	char *topic;                               /* where publishes go (Broker, KafkaSink) */
	char **topics; /* what subscriptions read: the Broker's topic or the source's topics */
	size_t ntopics;
	int external;   /* the topic is the user's: never create it */
	int structured; /* KafkaSink contentMode: structured */
	int partitions, replication;
	char **topic_keys, **topic_values; /* default.topic.config.* for topic creation */
	size_t ntopic_cfg;
	int confirm_ms, start_ms;
	char **pt_keys,
	        **pt_values; /* librdkafka settings from the ConfigMap, bootstrap.servers first */
	size_t npt;
	rd_kafka_t *producer;
	pthread_t dr_thread;
	int dr_running;
	atomic_int stop;
	atomic_size_t unconfirmed; /* publishes waiting for their delivery report */
	atomic_int stopping;       /* stop(): publishes are refused from now on */
	atomic_int publishing;     /* publish() calls between that check and librdkafka */
	int halted;                /* stop() has run */
	atomic_int failing; /* the last delivery report was a failure (log transitions only) */
	pthread_mutex_t
	        pub_lock; /* guards the deadline list: publishes in the order they were made,
				     so in deadline order */
	struct kafka_pub *pub_head, *pub_tail;
	struct kafka_sub **subs;
	size_t nsubs;
	int started;
};

/* ---- kafka.c ---- */

/* A client configuration: defaults, then the channel's settings from its ConfigMap or spec, then
 * forced; both lists end with a NULL name. A new configuration the caller owns, or NULL with the
 * reason in errbuf. */
rd_kafka_conf_t *kafka_client_conf(struct kafka_channel *kc, const struct kprop *defaults,
                                   const struct kprop *forced, char *errbuf, size_t errlen);

/* The channel's own copy of a topic name (it lives as long as the channel), or NULL. */
const char *kafka_chan_topic(const struct kafka_channel *kc, const char *topic);

/* ---- kafka_producer.c ---- */

/* The delivery report callback (rd_kafka_conf_set_dr_msg_cb; the opaque is the channel): answers
 * the publish, unless its deadline did, and frees it. The delivery report thread. */
void kafka_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* The delivery report thread of a channel (arg): polls the producer and answers publishes past
 * their deadline until kc->stop. */
void *kafka_dr_main(void *arg);

/* channel_ops.publish: takes its own reference to ev; done is called exactly once. Any thread. */
void kafka_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg);

/* ---- kafka_consumer.c ---- */

/* channel_ops.subscribe: a consumer for one Trigger (or the KafkaSource), before start. The channel
 * owns the subscription (*out) and frees it in kafka_sub_destroy. */
int kafka_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out);

/* channel_ops.settle: settles a record handed out by sub. Any thread. */
void kafka_settle(void *ctx, void *subp, void *handle, enum ceb_settle how);

/* channel_ops.rewind: seek the subscription's assigned partitions to the first record at or after
 * since_ms (rd_kafka_offsets_for_times), or to offset in each; done by its consumer thread, whose
 * answer it waits for (at most 30 s). Any thread but the consumer's. */
int kafka_rewind(void *ctx, void *subp, int64_t since_ms, int64_t offset, uint64_t *first,
                 uint64_t *count, char *errbuf, size_t errlen);

/* Wakes the subscription's consumer thread. Any thread. */
void kafka_sub_wake(struct kafka_sub *sub);

/* The consumer thread of a subscription (arg), until sub->stop. */
void *kafka_consumer_main(void *arg);

/* Stops the consumer thread if it runs, commits the settled prefix, leaves the group and frees sub.
 * From kafka_destroy only. */
void kafka_sub_destroy(struct kafka_sub *sub);

#endif
