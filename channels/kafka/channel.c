/* The Kafka channel, in three roles:
 * - a Broker of class "Kafka": events stored in a topic with the CloudEvents Kafka binding (binary
 *   mode), 202 only after an idempotent acks=all producer confirmed, one consumer group per Trigger
 *   that commits only offsets whose every earlier record is settled;
 * - a KafkaSink: the producer half, on the sink's topic, in binary or structured mode;
 * - a KafkaSource: the consumer half, one group over the source's topics, whose plain records become
 *   CloudEvents as Knative maps them.
 * Nothing is lost on a crash: what was not settled comes back. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "broker/clock.h"
#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/channel.h"
#include "channels/kafka/kafka.h"
#include "channels/kafka/kinds.h"

#define DEFAULT_CONFIRM_MS 10000 /* message.timeout.ms: the longest a publish waits for Kafka */
#define DEFAULT_START_MS   30000 /* reaching the cluster at start-up */

/* ---- configuration ---- */

/* Values of these keys never reach a log line or an error message. */
static int key_is_secret(const char *key)
{
	return strstr(key, "password") || strstr(key, "secret") || strstr(key, "ssl.key.pem") ||
	       strstr(key, "sasl.oauthbearer.config") || strstr(key, "ssl_key");
}

/* Set one property; errors name the property, and its value only when it is not a secret. */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, const char *where,
                    char *errbuf, size_t errlen)
{
	char rerr[512];

	if (rd_kafka_conf_set(conf, name, value, rerr, sizeof(rerr)) == RD_KAFKA_CONF_OK)
		return 0;
	if (key_is_secret(name))
		snprintf(errbuf, errlen, "%s%s: librdkafka refused the value of %s", where, name,
		         name);
	else
		snprintf(errbuf, errlen, "%s%s: %s", where, name, rerr);
	return CEB_ECONFIG;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	const char *comp = rd_kafka_opaque(rk);

	/* A consumer whose offset is gone from the topic (deleted by retention before it was read)
	 * starts again at the earliest record left: those records are lost to it, say so loudly. */
	if (strcmp(fac, "OFFSET") == 0 && strstr(buf, "offset reset") &&
	    strstr(buf, "out of range")) {
		CEB_LOG_WARN(
		        comp ? comp : "kafka",
		        "records were deleted from the topic before they were read (retention too "
		        "short for the backlog?): %s",
		        buf);
		return;
	}
	if (level <= 3)
		CEB_LOG_WARN(comp ? comp : "kafka", "librdkafka %s: %s", fac, buf);
	else if (level <= 5)
		CEB_LOG_INFO(comp ? comp : "kafka", "librdkafka %s: %s", fac, buf);
	else
		CEB_LOG_DEBUG(comp ? comp : "kafka", "librdkafka %s: %s", fac, buf);
}

static int strv_add(char ***keys, char ***values, size_t *n, const char *k, const char *v)
{
	char **nk = realloc(*keys, (*n + 1) * sizeof(*nk)), **nv;

	if (!nk)
		return CEB_ENOMEM;
	*keys = nk;
	nv = realloc(*values, (*n + 1) * sizeof(*nv));
	if (!nv)
		return CEB_ENOMEM;
	*values = nv;
	nk[*n] = strdup(k);
	nv[*n] = strdup(v);
	(*n)++;
	return nk[*n - 1] && nv[*n - 1] ? 0 : CEB_ENOMEM;
}

static void strv_free(char **keys, char **values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(keys[i]);
		free(values[i]);
	}
	free(keys);
	free(values);
}

/* The librdkafka properties of a's Secrets, tried on a scratch configuration (so that `validate`
 * finds a value librdkafka refuses, a PEM it cannot read) and added to kc's. */
static int auth_config(struct kafka_channel *kc, const struct ceb_kafka_auth *a, const char *who,
                       char *errbuf, size_t errlen)
{
	struct ceb_kafka_prop props[CEB_KAFKA_AUTH_PROPS];
	rd_kafka_conf_t *scratch = NULL;
	char where[400];
	size_t n;
	int rc = ceb_kafka_auth_props(a, props, &n, errbuf, errlen);

	if (rc < 0 || n == 0)
		return rc;
	if (!(scratch = rd_kafka_conf_new())) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	snprintf(where, sizeof(where), "%s: credentials from its Secret: ", who);
	for (size_t i = 0; i < n && rc == 0; i++) {
		rc = conf_set(scratch, props[i].name, props[i].value, where, errbuf, errlen);
		if (rc == 0 && strv_add(&kc->pt_keys, &kc->pt_values, &kc->npt, props[i].name,
		                        props[i].value) < 0) {
			snprintf(errbuf, errlen, "out of memory");
			rc = CEB_ENOMEM;
		}
	}
	rd_kafka_conf_destroy(scratch);
	return rc;
}

/* The Broker's ConfigMap, as the configuration loader read and checked it (Knative's keys and
 * cebroker's), into kc. The librdkafka properties are tried on a scratch configuration so that a
 * wrong one fails here (and in `validate`, through kafka_check), at its ConfigMap key. */
static int read_config(struct kafka_channel *kc, const struct ceb_channel_cfg *cfg, char *errbuf,
                       size_t errlen)
{
	const struct ceb_broker_cfg *bc = kc->role == ROLE_BROKER ? cfg->spec : NULL;
	const struct ceb_msg_channel *mc = kc->role == ROLE_CHANNEL ? cfg->spec : NULL;
	const struct ceb_kafka_channel_cfg *kcc = mc ? mc->backend_spec : NULL;
	const struct ceb_configmap *cm = bc ? bc->config : kcc ? kcc->settings : NULL;
	const struct ceb_kafka_broker_cfg *kb = cm ? cm->backend : NULL;
	rd_kafka_conf_t *scratch = NULL;
	char where[700];
	int rc = CEB_ECONFIG;

	if (!kb || !kb->bootstrap) { /* the loader refuses a Kafka Broker without them */
		snprintf(errbuf, errlen,
		         mc ? "KafkaChannel %s/%s: needs ConfigMap knative-eventing/"
		              "kafka-channel-config with bootstrap.servers"
		            : "Broker %s/%s: a Kafka Broker needs spec.config naming a "
		              "ConfigMap with bootstrap.servers",
		         cfg->ns, cfg->name);
		return CEB_ECONFIG;
	}
	kc->partitions = kcc ? kcc->partitions : kb->partitions;
	kc->replication = kcc ? kcc->replication : kb->replication;
	kc->confirm_ms = kb->confirm_ms;
	kc->start_ms = kb->start_ms;
	scratch = rd_kafka_conf_new();
	if (!scratch || strv_add(&kc->pt_keys, &kc->pt_values, &kc->npt, "bootstrap.servers",
	                         kb->bootstrap) < 0)
		goto nomem;
	snprintf(where, sizeof(where), "%s:%d:%d: ConfigMap %s/%s: ", kb->bootstrap_at.file,
	         kb->bootstrap_at.line, kb->bootstrap_at.col, cm->ns, cm->name);
	if (conf_set(scratch, "bootstrap.servers", kb->bootstrap, where, errbuf, errlen) < 0)
		goto out;
	snprintf(where, sizeof(where), "ConfigMap %s/%s", cm->ns, cm->name);
	if ((rc = auth_config(kc, &kb->auth, where, errbuf, errlen)) < 0)
		goto out;
	rc = CEB_ECONFIG;
	for (size_t i = 0; i < kb->nclient_cfg; i++) {
		const struct ceb_config_kv *kv = &kb->client_cfg[i];

		snprintf(where, sizeof(where), "%s:%d:%d: ConfigMap %s/%s: ", kv->at.file,
		         kv->at.line, kv->at.col, cm->ns, cm->name);
		if (conf_set(scratch, kv->name, kv->value, where, errbuf, errlen) < 0)
			goto out;
		if (strv_add(&kc->pt_keys, &kc->pt_values, &kc->npt, kv->name, kv->value) < 0)
			goto nomem;
	}
	for (size_t i = 0; i < kb->ntopic_cfg; i++)
		if (strv_add(&kc->topic_keys, &kc->topic_values, &kc->ntopic_cfg,
		             kb->topic_cfg[i].name, kb->topic_cfg[i].value) < 0)
			goto nomem;
	if (kcc) { /* spec.retentionDuration: the topic's retention.ms */
		char ms[32];

		snprintf(ms, sizeof(ms), "%llu", (unsigned long long)kcc->retention_ms);
		if (strv_add(&kc->topic_keys, &kc->topic_values, &kc->ntopic_cfg, "retention.ms",
		             ms) < 0)
			goto nomem;
	}
	if (kb->external_topic) {
		/* The same as the Broker annotation kafka.eventing.knative.dev/external.topic, which
		 * wins when both are set (kafka_create). */
		free(kc->topic);
		if (!(kc->topic = strdup(kb->external_topic)))
			goto nomem;
		kc->external = 1;
	}
	rc = 0;
	goto out;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	rc = CEB_ENOMEM;
out:
	if (scratch)
		rd_kafka_conf_destroy(scratch);
	return rc;
}

/* A client configuration: defaults, then the ConfigMap's settings (so that a user may tune what is
 * not part of the guarantees), then forced (so that nothing weakens them). Both lists end with a
 * NULL name. */
rd_kafka_conf_t *kafka_client_conf(struct kafka_channel *kc, const struct kprop *defaults,
                                   const struct kprop *forced, char *errbuf, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	if (!conf) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; defaults[i].name; i++)
		if (conf_set(conf, defaults[i].name, defaults[i].value, "", errbuf, errlen) < 0)
			goto fail;
	for (size_t i = 0; i < kc->npt; i++)
		if (conf_set(conf, kc->pt_keys[i], kc->pt_values[i], "", errbuf, errlen) < 0)
			goto fail;
	for (size_t i = 0; forced[i].name; i++)
		if (conf_set(conf, forced[i].name, forced[i].value, "", errbuf, errlen) < 0)
			goto fail;
	rd_kafka_conf_set_log_cb(conf, log_cb);
	return conf;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* A KafkaSource's or a KafkaSink's settings: their spec names the servers and the topics. */
static int endpoint_config(struct kafka_channel *kc, const struct ceb_channel_cfg *cfg,
                           char *errbuf, size_t errlen)
{
	const struct ceb_kafka_source_cfg *src =
	        kc->role == ROLE_SOURCE ? (const struct ceb_kafka_source_cfg *)cfg->spec : NULL;
	const struct ceb_kafka_sink_cfg *snk =
	        kc->role == ROLE_SINK ? (const struct ceb_kafka_sink_cfg *)cfg->spec : NULL;
	const char *bootstrap = src ? src->bootstrap : snk->bootstrap;

	kc->confirm_ms = DEFAULT_CONFIRM_MS;
	kc->start_ms = DEFAULT_START_MS;
	char who[300];
	int rc;

	if (strv_add(&kc->pt_keys, &kc->pt_values, &kc->npt, "bootstrap.servers", bootstrap) < 0)
		goto nomem;
	snprintf(who, sizeof(who), "%s %s/%s", src ? "KafkaSource" : "KafkaSink", cfg->ns,
	         cfg->name);
	if ((rc = auth_config(kc, src ? &src->auth : &snk->auth, who, errbuf, errlen)) < 0)
		return rc;
	if (src) {
		kc->source = src;
		kc->topics = calloc(src->ntopics, sizeof(*kc->topics));
		if (!kc->topics)
			goto nomem;
		for (size_t i = 0; i < src->ntopics; i++)
			if (!(kc->topics[kc->ntopics++] = strdup(src->topics[i])))
				goto nomem;
		return 0;
	}
	/* A KafkaSink's topic is created only when numPartitions and replicationFactor say how
	 * (Knative's rule); otherwise it must exist. */
	kc->topic = strdup(snk->topic);
	if (!kc->topic)
		goto nomem;
	kc->external = !(snk->partitions && snk->replication);
	if (kc->external && (snk->partitions || snk->replication))
		CEB_LOG_WARN(
		        kc->label,
		        "spec.%s without spec.%s: topic %s is not created when missing (both are "
		        "needed, as in Knative)",
		        snk->partitions ? "numPartitions" : "replicationFactor",
		        snk->partitions ? "replicationFactor" : "numPartitions", snk->topic);
	kc->partitions = snk->partitions;
	kc->replication = snk->replication;
	kc->structured = snk->structured;
	return 0;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	return CEB_ENOMEM;
}

/* ---- topic and groups at start-up ---- */

/* The partition count of a topic, 0 when it does not exist, or a negative error. rk is any client
 * of the channel. */
static int topic_partitions(struct kafka_channel *kc, rd_kafka_t *rk, const char *topic,
                            int *controller, char *errbuf, size_t errlen)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_resp_err_t err;
	int n = 0, ctl;

	err = rd_kafka_metadata(rk, 1, NULL, &md, kc->start_ms);
	if (err) {
		snprintf(errbuf, errlen, "%s: cannot reach Kafka: %s", kc->label,
		         rd_kafka_err2str(err));
		return CEB_EUNAVAIL;
	}
	for (int i = 0; i < md->topic_cnt; i++)
		if (strcmp(md->topics[i].topic, topic) == 0 && !md->topics[i].err)
			n = md->topics[i].partition_cnt;
	/* A real cluster names one of its brokers as controller; the librdkafka mock names none. */
	ctl = rd_kafka_controllerid(rk, 0);
	*controller = 0;
	for (int i = 0; i < md->broker_cnt; i++)
		if (md->brokers[i].id == ctl)
			*controller = 1;
	rd_kafka_metadata_destroy(md);
	return n;
}

static int topic_create(struct kafka_channel *kc, char *errbuf, size_t errlen)
{
	rd_kafka_NewTopic_t *nt;
	rd_kafka_AdminOptions_t *opt;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	const rd_kafka_topic_result_t **res;
	size_t nres = 0;
	char rerr[512];
	int rc = 0;

	nt = rd_kafka_NewTopic_new(kc->topic, kc->partitions, kc->replication, rerr, sizeof(rerr));
	if (!nt) {
		snprintf(errbuf, errlen, "%s: topic %s: %s", kc->label, kc->topic, rerr);
		return CEB_ECONFIG;
	}
	for (size_t i = 0; i < kc->ntopic_cfg; i++)
		rd_kafka_NewTopic_set_config(nt, kc->topic_keys[i], kc->topic_values[i]);
	q = rd_kafka_queue_new(kc->producer);
	opt = rd_kafka_AdminOptions_new(kc->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_AdminOptions_set_request_timeout(opt, kc->start_ms, rerr, sizeof(rerr));
	rd_kafka_AdminOptions_set_operation_timeout(opt, kc->start_ms, rerr, sizeof(rerr));
	rd_kafka_CreateTopics(kc->producer, &nt, 1, opt, q);
	ev = rd_kafka_queue_poll(q, kc->start_ms + 1000);
	if (!ev || rd_kafka_event_error(ev)) {
		snprintf(errbuf, errlen, "%s: cannot create topic %s: %s", kc->label, kc->topic,
		         ev ? rd_kafka_event_error_string(ev) : "timed out");
		rc = CEB_EUNAVAIL;
		goto out;
	}
	res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &nres);
	for (size_t i = 0; i < nres; i++) {
		rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
		if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			snprintf(errbuf, errlen, "%s: cannot create topic %s: %s", kc->label,
			         kc->topic,
			         rd_kafka_topic_result_error_string(res[i])
			                 ? rd_kafka_topic_result_error_string(res[i])
			                 : rd_kafka_err2str(err));
			rc = CEB_EUNAVAIL;
		}
	}
	if (!rc)
		CEB_LOG_INFO(kc->label, "created topic %s (%d partitions, replication factor %d)",
		             kc->topic, kc->partitions, kc->replication);
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	return rc;
}

/* Make sure the topic exists; returns its partition count or a negative error. */
static int topic_ensure(struct kafka_channel *kc, char *errbuf, size_t errlen)
{
	int n, controller, rc;

	n = topic_partitions(kc, kc->producer, kc->topic, &controller, errbuf, errlen);
	if (n != 0)
		return n;
	if (kc->external) {
		snprintf(errbuf, errlen, "%s: %stopic %s does not exist%s", kc->label,
		         kc->role == ROLE_SINK ? "" : "external ", kc->topic,
		         kc->role == ROLE_SINK
		                 ? " (set spec.numPartitions and spec.replicationFactor "
		                   "to have it created)"
		                 : "");
		return CEB_ECONFIG;
	}
	if (controller) {
		rc = topic_create(kc, errbuf, errlen);
		if (rc < 0)
			return rc;
	} else {
		/* No controller to send CreateTopics to (the librdkafka mock cluster): a metadata
		 * request for the topic lets the cluster create it with its own defaults. */
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(kc->producer, kc->topic, NULL);
		const struct rd_kafka_metadata *md = NULL;
		if (rkt && rd_kafka_metadata(kc->producer, 0, rkt, &md, kc->start_ms) == 0)
			rd_kafka_metadata_destroy(md);
		if (rkt)
			rd_kafka_topic_destroy(rkt);
		CEB_LOG_WARN(kc->label,
		             "the cluster has no controller for CreateTopics: topic %s is created "
		             "with the cluster's defaults, not %s",
		             kc->topic,
		             kc->role == ROLE_SINK || kc->role == ROLE_CHANNEL
		                     ? "spec.numPartitions"
		                     : "default.topic.partitions");
	}
	for (int tries = 0; tries < 50; tries++) {
		n = topic_partitions(kc, kc->producer, kc->topic, &controller, errbuf, errlen);
		if (n != 0)
			return n;
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	snprintf(errbuf, errlen, "%s: topic %s was not created", kc->label, kc->topic);
	return CEB_EUNAVAIL;
}

/* The channel's own copy of a topic name (partitions point to it), or NULL. */
const char *kafka_chan_topic(const struct kafka_channel *kc, const char *topic)
{
	for (size_t i = 0; i < kc->ntopics; i++)
		if (strcmp(kc->topics[i], topic) == 0)
			return kc->topics[i];
	return NULL;
}

/* A group with no committed offsets is new: a Trigger's (and a KafkaSource's with initialOffset
 * latest) starts at the end of its topics. Commit the end offsets now, before the ingress is ready,
 * so that every event accepted afterwards is at or past them, whenever the group actually joins (K8:
 * a later auto.offset.reset=latest would resolve "the end" only at join time and silently skip what
 * was accepted in between, eventing-kafka#549). A group that has offsets keeps them.
 * auto.offset.reset=earliest then only applies when committed offsets are gone (deleted by
 * retention): replay rather than skip. partitions[i] is the partition count of kc->topics[i]. */
static int group_init(struct kafka_sub *sub, const int *partitions, char *errbuf, size_t errlen)
{
	struct kafka_channel *kc = sub->kc;
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
	rd_kafka_resp_err_t err;
	int fresh = 0, rc = 0;

	for (size_t t = 0; t < kc->ntopics; t++)
		for (int i = 0; i < partitions[t]; i++)
			rd_kafka_topic_partition_list_add(parts, kc->topics[t], i)->offset =
			        RD_KAFKA_OFFSET_INVALID;
	err = rd_kafka_committed(sub->rk, parts, kc->start_ms);
	if (err) {
		snprintf(errbuf, errlen, "%s: cannot read the offsets of group %s: %s", sub->label,
		         sub->group, rd_kafka_err2str(err));
		rc = CEB_EUNAVAIL;
		goto out;
	}
	for (int i = 0; i < parts->cnt; i++) {
		int64_t lo, hi;
		rd_kafka_topic_partition_t *tp = &parts->elems[i];
		if (tp->offset >= 0) {
			tp->offset = RD_KAFKA_OFFSET_INVALID; /* keep it: not committed again */
			continue;
		}
		err = rd_kafka_query_watermark_offsets(sub->rk, tp->topic, tp->partition, &lo, &hi,
		                                       kc->start_ms);
		if (err) {
			snprintf(errbuf, errlen, "%s: cannot read the end of %s/%d: %s", sub->label,
			         tp->topic, (int)tp->partition, rd_kafka_err2str(err));
			rc = CEB_EUNAVAIL;
			goto out;
		}
		tp->offset = hi;
		fresh++;
	}
	if (fresh) {
		rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(fresh);
		sub->init = calloc((size_t)fresh, sizeof(*sub->init));
		if (!sub->init) {
			rd_kafka_topic_partition_list_destroy(commit);
			snprintf(errbuf, errlen, "out of memory");
			rc = CEB_ENOMEM;
			goto out;
		}
		for (int i = 0; i < parts->cnt; i++) {
			rd_kafka_topic_partition_t *tp = &parts->elems[i];
			if (tp->offset < 0)
				continue;
			sub->init[sub->ninit++] = (struct kinit){kafka_chan_topic(kc, tp->topic),
			                                         tp->partition, tp->offset};
			rd_kafka_topic_partition_list_add(commit, tp->topic, tp->partition)
			        ->offset = tp->offset;
		}
		err = rd_kafka_commit(sub->rk, commit, 0);
		rd_kafka_topic_partition_list_destroy(commit);
		if (err)
			CEB_LOG_INFO(sub->label,
			             "group %s has no offsets on %s and cannot take them before it "
			             "joins (%s): it starts at the end when it joins",
			             sub->group, kc->topics[0], rd_kafka_err2str(err));
		else
			CEB_LOG_INFO(sub->label, "new consumer group %s starts at the end of %s%s",
			             sub->group, kc->topics[0],
			             kc->ntopics > 1 ? " and its other topics" : "");
	}
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* ---- the channel ---- */

static void kafka_destroy(void *ctx);

/* A Kafka Broker's annotation kafka.eventing.knative.dev/external.topic, or NULL. */
static const char *broker_external_topic(const struct ceb_broker_cfg *bc)
{
	return bc ? ceb_annotation(bc->annot_keys, bc->annot_values, bc->nannot,
	                           "kafka.eventing.knative.dev/external.topic")
	          : NULL;
}

static int kafka_create(const struct ceb_channel_cfg *cfg, void **ctx, char *errbuf, size_t errlen)
{
	static const struct kprop defaults[] = {
	        {"client.id", "cebroker"},
	        /* the Java client's partitioner: same key, same partition as Knative's producers */
	        {"partitioner", "murmur2_random"},
	        /* the largest --max-event-size plus headers */
	        {"message.max.bytes", "67174400"},
	        {"log.connection.close", "false"},
	        /* back to work within a second of an outage */
	        {"reconnect.backoff.max.ms", "1000"},
	        /* a sender waits for the acknowledgement: batch only what arrives meanwhile. 0.5 ms:
	         * on tests/bench/bench_kafka (32 senders) 4-13 % more events/s than 1 ms in three
	         * alternating pairs, at the same CPU per event; 0 sends a request per record and
	         * costs about 40 % more CPU per event for a lower rate. */
	        {"linger.ms", "0.5"},
	        {NULL, NULL},
	};
	struct kafka_channel *kc = calloc(1, sizeof(*kc));
	rd_kafka_conf_t *conf = NULL;
	char rerr[512], confirm[16];
	const char *external;
	int rc;

	if (!kc) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	pthread_mutex_init(&kc->pub_lock, NULL);
	/* The kind says which half: a Broker's channel, or a kind of the Kafka family. */
	kc->role = !cfg->kind                                       ? ROLE_BROKER
	           : strcmp(cfg->kind, CEB_KAFKA_SOURCE_KIND) == 0  ? ROLE_SOURCE
	           : strcmp(cfg->kind, CEB_KAFKA_SINK_KIND) == 0    ? ROLE_SINK
	           : strcmp(cfg->kind, CEB_KAFKA_CHANNEL_KIND) == 0 ? ROLE_CHANNEL
	                                                            : ROLE_BROKER;
	snprintf(kc->name, sizeof(kc->name), "%s", cfg->name);
	snprintf(kc->label, sizeof(kc->label), "%s %s/%s",
	         kc->role == ROLE_SOURCE    ? "kafkasource"
	         : kc->role == ROLE_SINK    ? "kafkasink"
	         : kc->role == ROLE_CHANNEL ? "kafkachannel"
	                                    : "broker",
	         cfg->ns, cfg->name);
	rc = kc->role == ROLE_BROKER || kc->role == ROLE_CHANNEL
	             ? read_config(kc, cfg, errbuf, errlen)
	             : endpoint_config(kc, cfg, errbuf, errlen);
	if (rc < 0)
		goto fail;
	if (kc->role == ROLE_SOURCE) {
		/* Consume only: no producer. */
		CEB_LOG_INFO(kc->label, "KafkaSource on %zu topic(s), group %s, from the %s",
		             kc->ntopics, kc->source->group,
		             kc->source->earliest ? "earliest" : "latest");
		*ctx = kc;
		return 0;
	}
	if (kc->role == ROLE_BROKER && (external = broker_external_topic(cfg->spec))) {
		/* Knative's annotation: an existing topic instead of knative-broker-<ns>-<name>. */
		free(kc->topic);
		kc->topic = strdup(external);
		if (!kc->topic) {
			snprintf(errbuf, errlen, "out of memory");
			rc = CEB_ENOMEM;
			goto fail;
		}
		kc->external = 1;
	}
	if (!kc->topic) {
		size_t n = strlen(cfg->ns) + strlen(cfg->name) + 32;
		kc->topic = malloc(n);
		if (!kc->topic) {
			snprintf(errbuf, errlen, "out of memory");
			rc = CEB_ENOMEM;
			goto fail;
		}
		/* eventing-kafka-broker's names: a KafkaChannel's topic, a Broker's */
		snprintf(kc->topic, n,
		         kc->role == ROLE_CHANNEL ? "knative-messaging-kafka.%s.%s"
		                                  : "knative-broker-%s-%s",
		         cfg->ns, cfg->name);
	}
	kc->topics = calloc(1, sizeof(*kc->topics));
	if (!kc->topics || !(kc->topics[0] = strdup(kc->topic))) {
		snprintf(errbuf, errlen, "out of memory");
		rc = CEB_ENOMEM;
		goto fail;
	}
	kc->ntopics = 1;
	snprintf(confirm, sizeof(confirm), "%d", kc->confirm_ms);
	{
		/* Idempotence: producer retries neither duplicate nor reorder records. A publish is
		 * answered within the confirm timeout. */
		const struct kprop forced[] = {
		        {"enable.idempotence", "true"},
		        {"acks", "all"},
		        {"message.timeout.ms", confirm},
		        {NULL, NULL},
		};
		conf = kafka_client_conf(kc, defaults, forced, errbuf, errlen);
	}
	rc = CEB_ECONFIG;
	if (!conf)
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr_cb);
	rd_kafka_conf_set_opaque(conf, kc);
	kc->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rerr, sizeof(rerr));
	if (!kc->producer) {
		rd_kafka_conf_destroy(conf);
		snprintf(errbuf, errlen, "%s: cannot create the Kafka producer: %s", kc->label,
		         rerr);
		goto fail;
	}
	CEB_LOG_INFO(kc->label, "Kafka %s on topic %s%s, confirm timeout %d ms",
	             kc->role == ROLE_SINK ? "sink" : "channel", kc->topic,
	             kc->external && kc->role == ROLE_BROKER ? " (external)" : "", kc->confirm_ms);
	*ctx = kc;
	return 0;
fail:
	kafka_destroy(kc);
	return rc;
}

/* The partition count of each topic a KafkaSource reads; they must exist (a source never creates
 * its topics). */
static int source_topics(struct kafka_channel *kc, int *partitions, char *errbuf, size_t errlen)
{
	int controller;

	if (!kc->nsubs) {
		snprintf(errbuf, errlen, "%s: no subscription", kc->label);
		return CEB_ESTATE;
	}
	for (size_t t = 0; t < kc->ntopics; t++) {
		partitions[t] = topic_partitions(kc, kc->subs[0]->rk, kc->topics[t], &controller,
		                                 errbuf, errlen);
		if (partitions[t] < 0)
			return partitions[t];
		if (partitions[t] == 0) {
			snprintf(errbuf, errlen, "%s: topic %s does not exist", kc->label,
			         kc->topics[t]);
			return CEB_ECONFIG;
		}
	}
	return 0;
}

static int kafka_start(void *ctx, char *errbuf, size_t errlen)
{
	struct kafka_channel *kc = ctx;
	rd_kafka_topic_partition_list_t *topics;
	int *partitions = calloc(kc->ntopics ? kc->ntopics : 1, sizeof(*partitions));
	int rc = 0;

	if (!partitions) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	if (kc->role == ROLE_SOURCE)
		rc = source_topics(kc, partitions, errbuf, errlen);
	else if ((partitions[0] = topic_ensure(kc, errbuf, errlen)) < 0)
		rc = partitions[0];
	/* A KafkaSource with initialOffset earliest starts a new group at the beginning:
	 * auto.offset.reset=earliest does that. */
	for (size_t i = 0; rc == 0 && i < kc->nsubs; i++)
		if (!kc->source || !kc->source->earliest)
			rc = group_init(kc->subs[i], partitions, errbuf, errlen);
	free(partitions);
	if (rc < 0)
		return rc;
	if (kc->producer) {
		if (pthread_create(&kc->dr_thread, NULL, kafka_dr_main, kc) != 0)
			goto nothread;
		pthread_setname_np(kc->dr_thread, "ceb-kafka-dr");
		kc->dr_running = 1;
	}
	topics = rd_kafka_topic_partition_list_new((int)kc->ntopics);
	for (size_t t = 0; t < kc->ntopics; t++)
		rd_kafka_topic_partition_list_add(topics, kc->topics[t], RD_KAFKA_PARTITION_UA);
	for (size_t i = 0; i < kc->nsubs; i++) {
		struct kafka_sub *sub = kc->subs[i];
		rd_kafka_resp_err_t err = rd_kafka_subscribe(sub->rk, topics);
		if (err) {
			rd_kafka_topic_partition_list_destroy(topics);
			snprintf(errbuf, errlen, "%s: cannot subscribe to %s: %s", sub->label,
			         kc->topics[0], rd_kafka_err2str(err));
			return CEB_EUNAVAIL;
		}
		if (pthread_create(&sub->thread, NULL, kafka_consumer_main, sub) != 0) {
			rd_kafka_topic_partition_list_destroy(topics);
			goto nothread;
		}
		pthread_setname_np(sub->thread, "ceb-kafka-sub");
		sub->running = 1;
	}
	rd_kafka_topic_partition_list_destroy(topics);
	kc->started = 1;
	return 0;
nothread:
	snprintf(errbuf, errlen, "%s: cannot start a thread", kc->label);
	return CEB_EIO;
}

/* Shutdown: every publish completes, no thread of ours runs afterwards; settle still works. */
static void kafka_stop(void *ctx)
{
	struct kafka_channel *kc = ctx;

	if (!kc || kc->halted)
		return;
	kc->halted = 1;
	atomic_store(&kc->stopping, 1);
	while (atomic_load(&kc->publishing))
		nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
	atomic_store(&kc->stop, 1);
	if (kc->dr_running)
		pthread_join(kc->dr_thread, NULL);
	kc->dr_running = 0;
	if (kc->producer) {
		/* Every publish completes exactly once: wait for the reports still due, then fail what
		 * Kafka has not confirmed (purged messages report at the next poll). */
		rd_kafka_flush(kc->producer, kc->confirm_ms + 1000);
		rd_kafka_purge(kc->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		for (int i = 0; i < 300 && atomic_load(&kc->unconfirmed); i++)
			rd_kafka_poll(kc->producer, 10);
		if (atomic_load(&kc->unconfirmed))
			CEB_LOG_ERR(kc->label, "%zu publish(es) never got a delivery report",
			            (size_t)atomic_load(&kc->unconfirmed));
	}
	for (size_t i = 0; i < kc->nsubs; i++) {
		struct kafka_sub *sub = kc->subs[i];
		if (!sub->running)
			continue;
		atomic_store(&sub->stop, 1);
		kafka_sub_wake(sub);
		pthread_join(sub->thread, NULL);
		sub->running = 0;
	}
}

static void kafka_destroy(void *ctx)
{
	struct kafka_channel *kc = ctx;

	if (!kc)
		return;
	kafka_stop(kc);
	if (kc->producer)
		rd_kafka_destroy(kc->producer);
	for (size_t i = 0; i < kc->nsubs; i++)
		kafka_sub_destroy(kc->subs[i]);
	free(kc->subs);
	strv_free(kc->topic_keys, kc->topic_values, kc->ntopic_cfg);
	strv_free(kc->pt_keys, kc->pt_values, kc->npt);
	pthread_mutex_destroy(&kc->pub_lock);
	for (size_t i = 0; i < kc->ntopics; i++)
		free(kc->topics[i]);
	free(kc->topics);
	free(kc->topic);
	free(kc);
}

static size_t kafka_pending(void *ctx)
{
	struct kafka_channel *kc = ctx;
	/* What a drain must wait for: publishes not yet answered and messages a dispatcher holds.
	 * Records fetched ahead or waiting to be handed again stay in Kafka: a restart reads them
	 * again, so a drain need not wait for them. */
	size_t n = atomic_load(&kc->unconfirmed);

	for (size_t i = 0; i < kc->nsubs; i++) {
		pthread_mutex_lock(&kc->subs[i]->lock);
		n += kc->subs[i]->inflight - kc->subs[i]->waiting;
		pthread_mutex_unlock(&kc->subs[i]->lock);
	}
	return n;
}

/* A Broker's librdkafka settings, tried as create tries them; nothing is started. */
static int kafka_check(const struct ceb_channel_cfg *cfg, char *errbuf, size_t errlen)
{
	struct kafka_channel *kc;
	int rc;

	char who[300];
	bool endpoint = cfg->kind && (!strcmp(cfg->kind, CEB_KAFKA_SOURCE_KIND) ||
	                              !strcmp(cfg->kind, CEB_KAFKA_SINK_KIND));

	if (cfg->kind && strcmp(cfg->kind, "Broker") != 0 && !endpoint)
		return 0; /* a KafkaChannel's spec was checked by the loader */
	if (!(kc = calloc(1, sizeof(*kc)))) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	/* a KafkaSource's or KafkaSink's spec was checked by the loader, but for its Secrets */
	snprintf(who, sizeof(who), "%s %s/%s", cfg->kind ? cfg->kind : "Broker", cfg->ns,
	         cfg->name);
	if (endpoint)
		rc = auth_config(kc,
		                 !strcmp(cfg->kind, CEB_KAFKA_SOURCE_KIND)
		                         ? &((const struct ceb_kafka_source_cfg *)cfg->spec)->auth
		                         : &((const struct ceb_kafka_sink_cfg *)cfg->spec)->auth,
		                 who, errbuf, errlen);
	else
		rc = read_config(kc, cfg, errbuf, errlen);
	strv_free(kc->topic_keys, kc->topic_values, kc->ntopic_cfg);
	strv_free(kc->pt_keys, kc->pt_values, kc->npt);
	free(kc->topic);
	free(kc);
	return rc;
}

const struct channel_ops ceb_channel_kafka = {
        .name = "kafka",
        .flags = CEB_CHANNEL_DURABLE,
        .create = kafka_create,
        .destroy = kafka_destroy,
        .start = kafka_start,
        .publish = kafka_publish,
        .subscribe = kafka_subscribe,
        .settle = kafka_settle,
        .pending = kafka_pending,
        .stop = kafka_stop,
        .check = kafka_check,
        .rewind = kafka_rewind,
};
