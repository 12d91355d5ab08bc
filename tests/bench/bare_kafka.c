/* The bare librdkafka baseline that tests/bench/bench_kafka measures a Kafka Broker against, on the
 * same cluster, topic layout and record size: one process, an idempotent acks=all producer that
 * produces as fast as its queue allows and polls its delivery reports, and a consumer in a group of
 * its own on the same topic that stores each consumed offset and auto-commits them, with the
 * settings cebroker's Kafka Broker uses (channels/kafka/channel.c and consumer.c) but its prefetch
 * cap (see consumer_new). No HTTP, no CloudEvents decoding: what the cluster and the client
 * library cost alone.
 *
 * Usage: bare_kafka --bootstrap SERVERS --topic TOPIC [--seconds S] [--size BYTES] [--window N]
 * The topic must exist (bench_kafka creates a new one per round) and be empty, so that the group,
 * which starts at the earliest offset, reads exactly what the producer wrote. Records carry the
 * headers cebroker writes for a binary-mode event (ce_specversion, ce_id, ce_source, ce_type,
 * content-type), so that both write records of the same size. --window bounds the records waiting
 * for their delivery report (0, the default: only the producer queue does).
 * Prints "name value" lines: bare_kafka_produced, bare_kafka_consumed, bare_kafka_events_per_s (the
 * records consumed divided by the time from the first produce to the last consume). */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static const char *bootstrap, *topic;
static int seconds = 5, size = 300;
static long window, max_lag = 20000;
static atomic_long delivered, failed, consumed;
static atomic_int assigned, producing_done, stalled;
static double t_last; /* when the last record was consumed (consumer thread) */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char err[512];

	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "bare_kafka: %s: %s\n", name, err);
		exit(1);
	}
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	atomic_fetch_add(m->err ? &failed : &delivered, 1);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	(void)opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_assign(rk, parts);
		atomic_store(&assigned, 1);
	} else {
		rd_kafka_assign(rk, NULL);
	}
}

/* The consumer as cebroker's Trigger consumer is set up: auto commit every second of the offsets
 * stored explicitly once a record is processed, the same group timeouts. */
static rd_kafka_t *consumer_new(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *sub;
	rd_kafka_t *rk;
	char group[128], err[512];

	snprintf(group, sizeof(group), "bare-kafka-%d-%s", (int)getpid(), topic);
	set(conf, "bootstrap.servers", bootstrap);
	set(conf, "client.id", "bare-kafka");
	set(conf, "group.id", group);
	set(conf, "enable.auto.commit", "true");
	set(conf, "enable.auto.offset.store", "false");
	set(conf, "auto.commit.interval.ms", "1000");
	set(conf, "auto.offset.reset", "earliest");
	set(conf, "session.timeout.ms", "10000");
	set(conf, "heartbeat.interval.ms", "1000");
	/* Not cebroker's prefetch cap (queued.min.messages 1000 per partition, which bounds its
	 * memory under lag): librdkafka's defaults, as a plain client has them. With the cap, a
	 * partition whose queue holds one large batch is not fetched again until it is consumed,
	 * and a producer that runs ahead writes large batches: 8 000 records/s end to end on the
	 * mock against 61 000 without it. */
	set(conf, "log.connection.close", "false");
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "bare_kafka: consumer: %s\n", err);
		exit(1);
	}
	rd_kafka_poll_set_consumer(rk);
	sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	if (rd_kafka_subscribe(rk, sub) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "bare_kafka: cannot subscribe to %s\n", topic);
		exit(1);
	}
	rd_kafka_topic_partition_list_destroy(sub);
	return rk;
}

static void *consume(void *arg)
{
	rd_kafka_t *rk = arg;
	double last_progress = now();
	long last = 0;

	while (!atomic_load(&producing_done) || atomic_load(&consumed) < atomic_load(&delivered)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

		if (!m) {
			/* A record deleted before it was read (the mock keeps about 5 MB per
			 * partition) never comes: say so rather than wait forever. */
			if (atomic_load(&consumed) != last ||
			    atomic_load(&consumed) >= atomic_load(&delivered)) {
				last = atomic_load(&consumed);
				last_progress = now();
			} else if (now() - last_progress > 20) {
				atomic_store(&stalled, 1);
				break;
			}
			continue;
		}
		if (!m->err) {
			/* processed: its offset may be committed */
			rd_kafka_offset_store(m->rkt, m->partition, m->offset);
			if (atomic_fetch_add(&consumed, 1) + 1 >= atomic_load(&delivered))
				t_last = now();
		}
		rd_kafka_message_destroy(m);
	}
	if (t_last == 0)
		t_last = now();
	return NULL;
}

/* Produce one record with the headers cebroker writes for a binary-mode event. 0, or the error. */
static rd_kafka_resp_err_t produce(rd_kafka_t *producer, const char *body, long n)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(5);
	rd_kafka_resp_err_t rerr;
	char id[32];

	snprintf(id, sizeof(id), "bare-%ld", n);
	rd_kafka_header_add(hdrs, "ce_specversion", -1, "1.0", -1);
	rd_kafka_header_add(hdrs, "ce_id", -1, id, -1);
	rd_kafka_header_add(hdrs, "ce_source", -1, "/cebroker/bench", -1);
	rd_kafka_header_add(hdrs, "ce_type", -1, "dev.cebroker.bench", -1);
	rd_kafka_header_add(hdrs, "content-type", -1, "application/json", -1);
	rerr = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
	                         RD_KAFKA_V_VALUE((void *)body, (size_t)size),
	                         RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
	if (rerr)
		rd_kafka_headers_destroy(hdrs);
	return rerr;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"bootstrap", 1, 0, 'b'},
	                                     {"topic", 1, 0, 't'},
	                                     {"seconds", 1, 0, 's'},
	                                     {"size", 1, 0, 'z'},
	                                     {"window", 1, 0, 'w'},
	                                     {"max-lag", 1, 0, 'l'},
	                                     {0, 0, 0, 0}};
	rd_kafka_conf_t *conf;
	rd_kafka_t *producer, *consumer;
	pthread_t th;
	long produced = 0, warm;
	double t0, end, wait_end, t_prod;
	char err[512], *body;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'b': bootstrap = optarg; break;
		case 't': topic = optarg; break;
		case 's': seconds = (int)strtol(optarg, NULL, 10); break;
		case 'z': size = (int)strtol(optarg, NULL, 10); break;
		case 'w': window = strtol(optarg, NULL, 10); break;
		case 'l': max_lag = strtol(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (!bootstrap || !topic || seconds < 1 || size < 1 || window < 0 || max_lag < 1) {
		fprintf(stderr, "usage: bare_kafka --bootstrap SERVERS --topic TOPIC [--seconds S] "
		                "[--size BYTES] [--window N] [--max-lag N]\n");
		return 2;
	}
	body = malloc((size_t)size);
	memset(body, 'x', (size_t)size);

	/* The producer as cebroker's Kafka Broker sets it up (kafka_create). */
	conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", bootstrap);
	set(conf, "client.id", "bare-kafka");
	set(conf, "partitioner", "murmur2_random");
	set(conf, "log.connection.close", "false");
	set(conf, "linger.ms", "0.5");
	set(conf, "enable.idempotence", "true");
	set(conf, "acks", "all");
	set(conf, "message.timeout.ms", "10000");
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!producer) {
		fprintf(stderr, "bare_kafka: producer: %s\n", err);
		return 1;
	}

	/* The group joins before the clock starts, as cebroker's Trigger has joined before a round. */
	consumer = consumer_new();
	wait_end = now() + 30;
	while (!atomic_load(&assigned)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 100);
		if (m) {
			/* the topic is empty: nothing to consume yet, but count it if there is */
			if (!m->err) {
				rd_kafka_offset_store(m->rkt, m->partition, m->offset);
				atomic_fetch_add(&consumed, 1);
			}
			rd_kafka_message_destroy(m);
		}
		if (now() > wait_end) {
			fprintf(stderr, "bare_kafka: the consumer got no partitions within 30 s\n");
			return 1;
		}
	}
	pthread_create(&th, NULL, consume, consumer);

	/* Warm-up, not timed: the producer gets its id and the leaders, the consumer its fetch
	 * positions, as cebroker's clients have before a round. */
	for (long i = 0; i < 100; i++)
		produce(producer, body, -1);
	rd_kafka_flush(producer, 30000);
	wait_end = now() + 30;
	while (atomic_load(&consumed) < atomic_load(&delivered) && now() < wait_end)
		usleep(1000);
	warm = atomic_load(&delivered);
	if (atomic_load(&consumed) < warm) {
		fprintf(stderr, "bare_kafka: the warm-up records were not consumed within 30 s\n");
		return 1;
	}

	t0 = now();
	end = t0 + seconds;
	while (now() < end) {
		rd_kafka_resp_err_t rerr;

		/* --window: records waiting for their report; max_lag: records not consumed yet */
		if ((window &&
		     produced + warm - atomic_load(&delivered) - atomic_load(&failed) >= window) ||
		    produced + warm - atomic_load(&consumed) >= max_lag) {
			rd_kafka_poll(producer, 1);
			continue;
		}
		rerr = produce(producer, body, produced);
		if (rerr) {
			if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				fprintf(stderr, "bare_kafka: produce: %s\n",
				        rd_kafka_err2str(rerr));
				return 1;
			}
			rd_kafka_poll(producer, 1); /* the queue is full: wait for reports */
			continue;
		}
		produced++;
		rd_kafka_poll(producer, 0);
	}
	t_prod = now();
	rd_kafka_flush(producer, 30000);
	atomic_store(&producing_done, 1);
	pthread_join(th, NULL);

	if (atomic_load(&stalled)) {
		fprintf(stderr,
		        "bare_kafka: %ld of %ld records never came: deleted by the cluster's "
		        "retention "
		        "before they were read (lower --max-lag)\n",
		        atomic_load(&delivered) - atomic_load(&consumed), atomic_load(&delivered));
		return 1;
	}
	printf("bare_kafka_produced %ld\n", atomic_load(&delivered) - warm);
	printf("bare_kafka_failed %ld\n", atomic_load(&failed));
	printf("bare_kafka_consumed %ld\n", atomic_load(&consumed) - warm);
	printf("bare_kafka_produce_per_s %.0f\n", (double)produced / (t_prod - t0));
	printf("bare_kafka_events_per_s %.0f\n",
	       (double)(atomic_load(&consumed) - warm) / (t_last - t0));
	rd_kafka_consumer_close(consumer);
	rd_kafka_destroy(consumer);
	rd_kafka_destroy(producer);
	free(body);
	return 0;
}
