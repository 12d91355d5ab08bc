/* The Kafka channel, in three roles:
 * - a Broker of class "Kafka": events stored in a topic with the CloudEvents Kafka binding (binary
 *   mode), 202 only after an idempotent acks=all producer confirmed, one consumer group per Trigger
 *   that commits only offsets whose every earlier record is settled;
 * - a KafkaSink: the producer half, on the sink's topic, in binary or structured mode;
 * - a KafkaSource: the consumer half, one group over the source's topics, whose plain records become
 *   CloudEvents as Knative maps them.
 * Nothing is lost on a crash: what was not settled comes back. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/channel.h"
#include "channels/kafka_binding.h"

#define DEFAULT_PARTITIONS  10 /* Knative's default.topic.partitions */
#define DEFAULT_REPLICATION 1
#define DEFAULT_CONFIRM_MS  10000 /* message.timeout.ms: the longest a publish waits for Kafka */
#define DEFAULT_START_MS    30000 /* reaching the cluster at start-up */
#define REDELIVER_FIRST_MS  1000  /* a record settled FAILED comes back after this, doubling... */
#define REDELIVER_MAX_MS    60000 /* ...up to this */
#define AHEAD_ORDERED       4     /* ordered: records taken ahead per partition */
#define SKIP_LOG_FIRST      10    /* non-CloudEvent records: log the first few, then every 1000th */

enum rec_state {
	REC_HELD = 0, /* fetched, waiting for in-flight credit */
	REC_INFLIGHT, /* handed to the subscription, not settled */
	REC_FAILED,   /* settled FAILED: keeps its credit and comes back at `due` */
	REC_DONE,     /* settled, filtered or skipped: its offset may be committed */
};

struct kpart;

/* One record of one assigned partition: the handle a subscription settles. */
struct krec {
	struct kpart *part; /* NULL once its partition was revoked (an orphan) */
	int64_t offset;
	struct ceb_event *ev; /* our reference while not DONE; NULL for a skipped record */
	enum rec_state state;
	int attempts;             /* times handed out */
	uint64_t due;             /* REC_FAILED: when to hand it again */
	struct krec *prev, *next; /* the timer list (REC_FAILED) or the orphan list */
};

/* An assigned partition: its records in offset order, from the oldest not yet committable. */
struct kpart {
	const char *topic; /* one of the channel's topics */
	int32_t id;
	struct krec **ring;
	size_t cap, head, count;
	size_t handed;   /* records at the front of the ring that were handed out at least once */
	size_t inflight; /* INFLIGHT + FAILED */
	rd_kafka_queue_t
	        *q; /* its own fetch queue: records stay in librdkafka until there is room */
};

struct kafka_channel;

/* A partition of a new group and where it starts. */
struct kinit {
	const char *topic;
	int32_t part;
	int64_t offset;
};

/* label comes first in both structs: it is the librdkafka opaque that log_cb prints. */
struct kafka_sub {
	char label[300];
	struct kafka_channel *kc;
	struct ceb_sub_cfg cfg;
	char group[300];
	rd_kafka_t *rk;
	rd_kafka_queue_t *q; /* the consumer queue: group events, errors */
	int wake[2];         /* a pipe: librdkafka queues and settles wake the consumer thread */
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
	unsigned long redelivered;
};

enum kafka_role {
	ROLE_BROKER = 0,
	ROLE_SINK,   /* produce only */
	ROLE_SOURCE, /* consume only */
};

struct kafka_channel {
	char label[300];
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

/* A publish waiting for its delivery report. The event reference keeps the record value (not copied
 * into librdkafka) alive until then. */
struct kafka_pub {
	struct ceb_event *ev;
	char *value; /* structured mode: the encoded event, ours until the report */
	ceb_publish_done_f *done;
	void *arg;
	uint64_t deadline; /* answer 503 at this time if Kafka has not confirmed */
	int answered;      /* done() was called (by the report or by the deadline) */
	int queued;        /* on the deadline list */
	struct kafka_pub *prev, *next;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- configuration ---- */

/* Values of these keys never reach a log line or an error message. */
static int key_is_secret(const char *key)
{
	return strstr(key, "password") || strstr(key, "secret") || strstr(key, "ssl.key.pem") ||
	       strstr(key, "sasl.oauthbearer.config") || strstr(key, "ssl_key");
}

/* ConfigMap keys handed to librdkafka as they are: security settings (Knative's Kafka broker takes
 * them from a Secret; cebroker reads no Secrets, so they sit in the ConfigMap), and any librdkafka
 * property with the prefix "librdkafka." removed. NULL when the key is not one of them. */
static const char *passthrough_name(const char *key)
{
	if (strncmp(key, "librdkafka.", 11) == 0)
		return key + 11;
	if (strcmp(key, "security.protocol") == 0 || strncmp(key, "sasl.", 5) == 0 ||
	    strncmp(key, "ssl.", 4) == 0 || strcmp(key, "enable.ssl.certificate.verification") == 0)
		return key;
	return NULL;
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

static int parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	const char *comp = rd_kafka_opaque(rk);

	if (level <= 3)
		LOG_WARN(comp ? comp : "kafka", "librdkafka %s: %s", fac, buf);
	else if (level <= 5)
		LOG_INFO(comp ? comp : "kafka", "librdkafka %s: %s", fac, buf);
	else
		LOG_DEBUG(comp ? comp : "kafka", "librdkafka %s: %s", fac, buf);
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

/* Read the Broker's ConfigMap into kc. Pass-through settings are tried on a scratch configuration so
 * that a wrong one fails here, with the ConfigMap's location, rather than later. */
static int read_config(struct kafka_channel *kc, const struct ceb_channel_cfg *cfg, char *errbuf,
                       size_t errlen)
{
	const struct ceb_configmap *cm = cfg->config;
	rd_kafka_conf_t *scratch = NULL;
	char where[600];
	const char *bootstrap = NULL;
	size_t bad = 0;
	long v;
	int rc = CEB_ECONFIG;

	if (!cm) {
		snprintf(errbuf, errlen,
		         "Broker %s/%s: a Kafka Broker needs spec.config naming a "
		         "ConfigMap with bootstrap.servers",
		         cfg->ns, cfg->name);
		return CEB_ECONFIG;
	}
	snprintf(where, sizeof(where),
	         "%s:%d:%d: ConfigMap %s/%s: ", cm->loc.file ? cm->loc.file : "?", cm->loc.line,
	         cm->loc.col, cm->ns, cm->name);
	kc->partitions = DEFAULT_PARTITIONS;
	kc->replication = DEFAULT_REPLICATION;
	kc->confirm_ms = DEFAULT_CONFIRM_MS;
	kc->start_ms = DEFAULT_START_MS;
	for (size_t i = 0; i < cm->n; i++)
		if (strcmp(cm->keys[i], "bootstrap.servers") == 0)
			bootstrap = cm->values[i];
	if (!bootstrap || !bootstrap[0]) {
		snprintf(errbuf, errlen, "%sbootstrap.servers: required by a Kafka Broker", where);
		return CEB_ECONFIG;
	}
	scratch = rd_kafka_conf_new();
	if (!scratch ||
	    strv_add(&kc->pt_keys, &kc->pt_values, &kc->npt, "bootstrap.servers", bootstrap) < 0)
		goto nomem;
	if (conf_set(scratch, "bootstrap.servers", bootstrap, where, errbuf, errlen) < 0)
		goto out;
	for (size_t i = 0; i < cm->n; i++) {
		const char *k = cm->keys[i], *val = cm->values[i], *pt;
		bad = i;
		if (strcmp(k, "bootstrap.servers") == 0) {
			continue;
		} else if (strcmp(k, "default.topic.partitions") == 0) {
			if (parse_int(val, 1, 100000, &v) < 0)
				goto bad_number;
			kc->partitions = (int)v;
		} else if (strcmp(k, "default.topic.replication.factor") == 0) {
			if (parse_int(val, -1, 1000, &v) < 0 || v == 0)
				goto bad_number;
			kc->replication = (int)v;
		} else if (strncmp(k, "default.topic.config.", 21) == 0) {
			if (strv_add(&kc->topic_keys, &kc->topic_values, &kc->ntopic_cfg, k + 21,
			             val) < 0)
				goto nomem;
		} else if (strcmp(k, "auth.secret.ref.name") == 0) {
			snprintf(errbuf, errlen,
			         "%sauth.secret.ref.name: cebroker reads no Secrets; put "
			         "security.protocol and the sasl.* / ssl.* settings in this "
			         "ConfigMap",
			         where);
			goto out;
		} else if (strcmp(k, "cebroker.confirm.timeout.ms") == 0) {
			if (parse_int(val, 100, 3600000, &v) < 0)
				goto bad_number;
			kc->confirm_ms = (int)v;
		} else if (strcmp(k, "cebroker.start.timeout.ms") == 0) {
			if (parse_int(val, 100, 3600000, &v) < 0)
				goto bad_number;
			kc->start_ms = (int)v;
		} else if (strcmp(k, "external.topic") == 0) {
			/* The same as the Broker annotation kafka.eventing.knative.dev/external.topic, which
			 * wins when both are set. */
			free(kc->topic);
			kc->topic = strdup(val);
			if (!kc->topic)
				goto nomem;
			kc->external = 1;
		} else if ((pt = passthrough_name(k))) {
			if (conf_set(scratch, pt, val, where, errbuf, errlen) < 0)
				goto out;
			if (strv_add(&kc->pt_keys, &kc->pt_values, &kc->npt, pt, val) < 0)
				goto nomem;
		} else {
			LOG_WARN(kc->label,
			         "ConfigMap %s/%s: key %s is not a Kafka Broker setting; ignored "
			         "(librdkafka properties go in as librdkafka.<property>)",
			         cm->ns, cm->name, k);
		}
	}
	rc = 0;
	goto out;
bad_number:
	snprintf(errbuf, errlen, "%s%s: '%s' is not a valid number here", where, cm->keys[bad],
	         cm->values[bad]);
	goto out;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	rc = CEB_ENOMEM;
out:
	if (scratch)
		rd_kafka_conf_destroy(scratch);
	return rc;
}

/* A librdkafka property and its value. */
struct kprop {
	const char *name, *value;
};

/* A client configuration: defaults, then the ConfigMap's settings (so that a user may tune what is
 * not part of the guarantees), then forced (so that nothing weakens them). Both lists end with a
 * NULL name. */
static rd_kafka_conf_t *client_conf(struct kafka_channel *kc, const struct kprop *defaults,
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
	const struct ceb_kafka_source_cfg *src = cfg->kafka_source;
	const struct ceb_kafka_sink_cfg *snk = cfg->kafka_sink;
	const char *bootstrap = src ? src->bootstrap : snk->bootstrap;

	kc->confirm_ms = DEFAULT_CONFIRM_MS;
	kc->start_ms = DEFAULT_START_MS;
	if (strv_add(&kc->pt_keys, &kc->pt_values, &kc->npt, "bootstrap.servers", bootstrap) < 0)
		goto nomem;
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
	/* A KafkaSink's topic is created only when numPartitions says how (Knative's rule). */
	kc->topic = strdup(snk->topic);
	if (!kc->topic)
		goto nomem;
	kc->external = snk->partitions == 0;
	kc->partitions = snk->partitions;
	kc->replication = snk->replication ? snk->replication : DEFAULT_REPLICATION;
	kc->structured = snk->structured;
	return 0;
nomem:
	snprintf(errbuf, errlen, "out of memory");
	return CEB_ENOMEM;
}

/* ---- producer ---- */

static void pub_unlink(struct kafka_channel *kc, struct kafka_pub *pub)
{
	if (pub->prev)
		pub->prev->next = pub->next;
	else
		kc->pub_head = pub->next;
	if (pub->next)
		pub->next->prev = pub->prev;
	else
		kc->pub_tail = pub->prev;
	pub->prev = pub->next = NULL;
	pub->queued = 0;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kafka_channel *kc = opaque;
	struct kafka_pub *pub = m->_private;
	int status = 0, answered;

	/* With acks=all and idempotence a report without error means stored by every in-sync replica.
	 * Anything else, possibly persisted included, is not a 202. */
	if (m->err) {
		status = CEB_EUNAVAIL;
		if (!atomic_exchange(&kc->failing, 1))
			LOG_WARN(
			        kc->label,
			        "Kafka did not confirm a publish (%s): answering 503 until it does",
			        rd_kafka_err2str(m->err));
		else
			LOG_DEBUG(kc->label, "publish not confirmed: %s", rd_kafka_err2str(m->err));
	} else if (atomic_exchange(&kc->failing, 0)) {
		LOG_INFO(kc->label, "Kafka confirms publishes again");
	}
	pthread_mutex_lock(&kc->pub_lock);
	if (pub->queued)
		pub_unlink(kc, pub);
	answered = pub->answered;
	pub->answered = 1;
	pthread_mutex_unlock(&kc->pub_lock);
	if (!answered)
		pub->done(pub->arg, status);
	ceb_event_unref(pub->ev);
	free(pub->value);
	free(pub);
	atomic_fetch_sub(&kc->unconfirmed, 1);
}

/* Answer 503 for publishes past their deadline. librdkafka enforces message.timeout.ms only lazily
 * while every broker is down (seconds late): the sender gets its answer on time all the same. The
 * report still comes later and frees the publish; if it says stored, the sender's retry is a
 * duplicate, which at-least-once allows. */
static void pub_expire(struct kafka_channel *kc)
{
	struct {
		ceb_publish_done_f *done;
		void *arg;
	} due[128];
	size_t n;
	uint64_t now = now_ms();

	do {
		/* Only done and arg are used outside the lock: once answered, a publish may be freed by
		 * a failed producev() at any time. */
		n = 0;
		pthread_mutex_lock(&kc->pub_lock);
		while (n < 128 && kc->pub_head && kc->pub_head->deadline <= now) {
			struct kafka_pub *pub = kc->pub_head;
			pub_unlink(kc, pub);
			pub->answered = 1;
			due[n].done = pub->done;
			due[n++].arg = pub->arg;
		}
		pthread_mutex_unlock(&kc->pub_lock);
		for (size_t i = 0; i < n; i++)
			due[i].done(due[i].arg, CEB_EUNAVAIL);
		if (n && !atomic_exchange(&kc->failing, 1))
			LOG_WARN(kc->label,
			         "Kafka did not confirm a publish within %d ms: answering 503 "
			         "until it does",
			         kc->confirm_ms);
	} while (n == 128);
}

static void *dr_main(void *arg)
{
	struct kafka_channel *kc = arg;

	while (!atomic_load(&kc->stop)) {
		rd_kafka_poll(kc->producer, 100);
		pub_expire(kc);
	}
	return NULL;
}

static void kafka_publish(void *ctx, struct ceb_event *ev, ceb_publish_done_f *done, void *arg)
{
	struct kafka_channel *kc = ctx;
	struct kafka_pub *pub;
	const struct ceb_attr *key;
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_resp_err_t err;
	const void *data = NULL;
	size_t len = 0;

	/* stop() waits for the calls past this check, so that none reaches librdkafka after it
	 * collected the last delivery reports. */
	atomic_fetch_add(&kc->publishing, 1);
	if (!kc->started || !kc->producer || atomic_load(&kc->stopping)) {
		atomic_fetch_sub(&kc->publishing, 1);
		done(arg, CEB_EUNAVAIL);
		return;
	}
	pub = calloc(1, sizeof(*pub));
	if (pub && kc->structured) {
		struct ceb_buf b = CEB_BUF_INIT;
		if (ceb_kafka_structured(ev, &b, &hdrs) == 0) {
			pub->value = ceb_buf_steal(&b, &len);
			data = pub->value;
		}
		ceb_buf_free(&b);
	} else if (pub) {
		hdrs = ceb_kafka_binary_headers(ev);
		data = ceb_event_data(ev, &len);
	}
	if (!pub || !hdrs) {
		atomic_fetch_sub(&kc->publishing, 1);
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		if (pub)
			free(pub->value);
		free(pub);
		done(arg, CEB_EFULL);
		return;
	}
	pub->ev = ceb_event_ref(ev);
	pub->done = done;
	pub->arg = arg;
	key = ceb_event_get(ev, "partitionkey");
	atomic_fetch_add(&kc->unconfirmed, 1);
	/* On the deadline list before librdkafka has it: its report may come at once. */
	pthread_mutex_lock(&kc->pub_lock);
	pub->deadline = now_ms() + (uint64_t)kc->confirm_ms;
	pub->queued = 1;
	pub->prev = kc->pub_tail;
	if (kc->pub_tail)
		kc->pub_tail->next = pub;
	else
		kc->pub_head = pub;
	kc->pub_tail = pub;
	pthread_mutex_unlock(&kc->pub_lock);
	/* The value is not copied: the event is immutable and our reference keeps it until the report. */
	err = rd_kafka_producev(kc->producer, RD_KAFKA_V_TOPIC(kc->topic),
	                        RD_KAFKA_V_VALUE((void *)data, data ? len : 0),
	                        RD_KAFKA_V_KEY(key ? key->value : NULL, key ? key->len : 0),
	                        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(pub), RD_KAFKA_V_END);
	atomic_fetch_sub(&kc->publishing, 1);
	if (err) {
		int answered;
		/* Not queued: headers and pub are still ours (unless the deadline answered already). */
		pthread_mutex_lock(&kc->pub_lock);
		if (pub->queued)
			pub_unlink(kc, pub);
		answered = pub->answered;
		pthread_mutex_unlock(&kc->pub_lock);
		atomic_fetch_sub(&kc->unconfirmed, 1);
		rd_kafka_headers_destroy(hdrs);
		ceb_event_unref(pub->ev);
		free(pub->value);
		free(pub);
		LOG_DEBUG(kc->label, "publish refused: %s", rd_kafka_err2str(err));
		if (!answered)
			done(arg, err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? CEB_EFULL : CEB_EUNAVAIL);
	}
}

/* ---- records and partitions of a subscription (sub->lock held) ---- */

static void list_remove(struct krec **head, struct krec *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void list_push(struct krec **head, struct krec *r)
{
	r->prev = NULL;
	r->next = *head;
	if (*head)
		(*head)->prev = r;
	*head = r;
}

static void rec_free(struct krec *r)
{
	ceb_event_unref(r->ev);
	free(r);
}

static struct krec *part_at(const struct kpart *p, size_t i)
{
	return p->ring[(p->head + i) % p->cap];
}

static int part_push(struct kpart *p, struct krec *r)
{
	if (p->count == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 64;
		struct krec **ring = malloc(ncap * sizeof(*ring));
		if (!ring)
			return CEB_ENOMEM;
		for (size_t i = 0; i < p->count; i++)
			ring[i] = part_at(p, i);
		free(p->ring);
		p->ring = ring;
		p->cap = ncap;
		p->head = 0;
	}
	p->ring[(p->head + p->count) % p->cap] = r;
	p->count++;
	return 0;
}

static struct kpart *sub_part(struct kafka_sub *sub, const char *topic, int32_t id)
{
	for (size_t i = 0; i < sub->nparts; i++)
		if (sub->parts[i]->id == id && strcmp(sub->parts[i]->topic, topic) == 0)
			return sub->parts[i];
	return NULL;
}

/* The channel's own copy of a topic name (partitions point to it), or NULL. */
static const char *chan_topic(const struct kafka_channel *kc, const char *topic)
{
	for (size_t i = 0; i < kc->ntopics; i++)
		if (strcmp(kc->topics[i], topic) == 0)
			return kc->topics[i];
	return NULL;
}

/* Drop the DONE records at the front of p; returns the offset to commit (the first record not yet
 * settled, or one past the last settled), or -1 when nothing moved. */
static int64_t part_advance(struct kpart *p)
{
	int64_t next = -1;

	while (p->count && part_at(p, 0)->state == REC_DONE) {
		struct krec *r = part_at(p, 0);
		next = r->offset + 1;
		p->head = (p->head + 1) % p->cap;
		p->count--;
		if (p->handed)
			p->handed--;
		rec_free(r);
	}
	return next;
}

/* Let go of a revoked partition: settled records are freed, records a dispatcher still holds become
 * orphans (their settle only returns credit), the rest is forgotten: the next owner reads them again
 * from the committed offset. */
static void part_release(struct kafka_sub *sub, struct kpart *p)
{
	for (size_t i = 0; i < p->count; i++) {
		struct krec *r = part_at(p, i);
		switch (r->state) {
		case REC_INFLIGHT:
			r->part = NULL;
			list_push(&sub->orphans, r);
			continue;
		case REC_FAILED:
			list_remove(&sub->timers, r);
			sub->inflight--;
			sub->waiting--;
			break;
		case REC_HELD: sub->held--; break;
		case REC_DONE: break;
		}
		rec_free(r);
	}
	if (p->q)
		rd_kafka_queue_destroy(p->q);
	free(p->ring);
	free(p);
}

/* ---- consumer ---- */

static void offsets_add(rd_kafka_topic_partition_list_t **list, const char *topic, int32_t part,
                        int64_t offset)
{
	if (!*list)
		*list = rd_kafka_topic_partition_list_new(8);
	rd_kafka_topic_partition_list_add(*list, topic, part)->offset = offset;
}

/* Store the settled prefix of every partition (librdkafka commits stored offsets every
 * auto.commit.interval.ms, on revoke and on close). Consumer thread only, or after it stopped. */
static void sub_store(struct kafka_sub *sub)
{
	rd_kafka_topic_partition_list_t *store = NULL;

	pthread_mutex_lock(&sub->lock);
	for (size_t i = 0; i < sub->nparts; i++) {
		int64_t next = part_advance(sub->parts[i]);
		if (next >= 0)
			offsets_add(&store, sub->parts[i]->topic, sub->parts[i]->id, next);
	}
	pthread_mutex_unlock(&sub->lock);
	if (store) {
		rd_kafka_offsets_store(sub->rk, store);
		rd_kafka_topic_partition_list_destroy(store);
	}
}

/* Where a partition of a new group starts, or NULL when it keeps its committed offset. */
static struct kinit *sub_init(struct kafka_sub *sub, const char *topic, int32_t part)
{
	for (size_t i = 0; i < sub->ninit; i++)
		if (sub->init[i].part == part && sub->init[i].offset >= 0 &&
		    strcmp(sub->init[i].topic, topic) == 0)
			return &sub->init[i];
	return NULL;
}

/* A new group whose starting offsets could not be committed before it joined (a group that exists
 * without offsets for this topic refuses commits from outside it: the librdkafka mock does): start the
 * partitions that still have no committed offset at the end offsets read at start-up. Sets them in
 * parts and returns them (the caller stores them), or NULL. Consumer thread (rebalance). */
static rd_kafka_topic_partition_list_t *group_start(struct kafka_sub *sub,
                                                    rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *committed, *start = NULL;
	int any = 0;

	for (int i = 0; i < parts->cnt; i++)
		if (sub_init(sub, parts->elems[i].topic, parts->elems[i].partition))
			any = 1;
	if (!any)
		return NULL;
	committed = rd_kafka_topic_partition_list_copy(parts);
	if (rd_kafka_committed(sub->rk, committed, sub->kc->start_ms) == 0) {
		for (int i = 0; i < committed->cnt; i++) {
			rd_kafka_topic_partition_t *tp = &committed->elems[i];
			struct kinit *in = sub_init(sub, tp->topic, tp->partition);
			if (!in)
				continue;
			if (tp->offset < 0) {
				parts->elems[i].offset = in->offset;
				offsets_add(&start, in->topic, in->part, in->offset);
			}
			in->offset = -1;
		}
	}
	rd_kafka_topic_partition_list_destroy(committed);
	return start;
}

static void sub_wake(struct kafka_sub *sub)
{
	char c = 'w';

	/* A full pipe is a pending wake-up already. */
	if (write(sub->wake[1], &c, 1) < 0 && errno != EAGAIN)
		LOG_DEBUG(sub->label, "wake-up: %s", strerror(errno));
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct kafka_sub *sub = opaque;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_topic_partition_list_t *start = group_start(sub, parts);
		pthread_mutex_lock(&sub->lock);
		for (int i = 0; i < parts->cnt; i++) {
			struct kpart *p, **np;
			const char *topic = chan_topic(sub->kc, parts->elems[i].topic);
			if (!topic || sub_part(sub, topic, parts->elems[i].partition))
				continue;
			p = calloc(1, sizeof(*p));
			np = p ? realloc(sub->parts, (sub->nparts + 1) * sizeof(*np)) : NULL;
			if (!np) {
				/* Untracked: its records reach the consumer queue and are dropped there,
				 * never committed, so read again after the next rebalance or restart. */
				free(p);
				LOG_ERR(sub->label, "out of memory: partition %d is not consumed",
				        (int)parts->elems[i].partition);
				continue;
			}
			p->topic = topic;
			p->id = parts->elems[i].partition;
			/* Records of each partition wait in its own queue, not the consumer queue, until
			 * there is credit for them: librdkafka stops fetching a partition whose queue is
			 * full (queued.min.messages), which bounds memory without pausing (a resume costs
			 * a fetch cycle in librdkafka 2.0). */
			p->q = rd_kafka_queue_get_partition(rk, topic, p->id);
			if (p->q) {
				rd_kafka_queue_forward(p->q, NULL);
				rd_kafka_queue_io_event_enable(p->q, sub->wake[1], "p", 1);
			}
			sub->parts = np;
			sub->parts[sub->nparts++] = p;
		}
		pthread_mutex_unlock(&sub->lock);
		LOG_INFO(sub->label, "assigned %d partition(s) of %s%s", parts->cnt,
		         sub->kc->topics[0], sub->kc->ntopics > 1 ? " and more topics" : "");
		rd_kafka_assign(rk, parts);
		if (start) {
			/* Commit the starting point at the next auto-commit, as if settled. */
			rd_kafka_offsets_store(rk, start);
			rd_kafka_topic_partition_list_destroy(start);
		}
		sub_wake(sub);
		return;
	}
	/* Revoked (or lost): store only the prefix that is settled, never what is still in flight
	 * (eventing-kafka-broker#4460), then forget the partitions. */
	sub_store(sub);
	rd_kafka_assign(rk, NULL);
	pthread_mutex_lock(&sub->lock);
	for (size_t i = 0; i < sub->nparts; i++)
		part_release(sub, sub->parts[i]);
	free(sub->parts);
	sub->parts = NULL;
	sub->nparts = 0;
	pthread_mutex_unlock(&sub->lock);
	if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
		LOG_WARN(sub->label, "rebalance error: %s", rd_kafka_err2str(err));
	else
		LOG_INFO(sub->label, "partitions of %s%s revoked%s", sub->kc->topics[0],
		         sub->kc->ntopics > 1 ? " and more topics" : "",
		         rd_kafka_assignment_lost(rk) ? " (assignment lost)" : "");
}

/* A record as the event to hand out. A Broker's records are CloudEvents (others are skipped); a
 * KafkaSource passes CloudEvents as they are and maps any other record as Knative does (a record
 * that claims to be a CloudEvent and is not valid is mapped too: a source never drops a record). Its
 * ceOverrides extensions go on every event. */
static int sub_decode(struct kafka_sub *sub, const rd_kafka_message_t *m, struct ceb_event **out,
                      char *err, size_t errlen)
{
	const struct ceb_kafka_source_cfg *src = sub->kc->source;
	struct ceb_event *ev = NULL;
	int rc;

	if (!src)
		return ceb_kafka_decode(m, out, err, errlen);
	if (ceb_kafka_is_cloudevent(m)) {
		rc = ceb_kafka_decode(m, &ev, err, errlen);
		if (rc < 0)
			LOG_WARN(sub->label,
			         "record %s/%d/%lld claims to be a CloudEvent but is not (%s): "
			         "sent as a plain record",
			         rd_kafka_topic_name(m->rkt), (int)m->partition,
			         (long long)m->offset, err);
	}
	if (!ev && (rc = ceb_kafka_map_record(m, src->ns, src->name, src->key_type, &ev)) < 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	for (size_t i = 0; i < src->nce_ext; i++) {
		rc = ceb_event_set(ev, src->ce_ext_keys[i], CEB_TYPE_STRING, src->ce_ext_values[i],
		                   strlen(src->ce_ext_values[i]), err, errlen);
		if (rc == CEB_ENOMEM) {
			ceb_event_unref(ev);
			return rc;
		}
	}
	*out = ev;
	return 0;
}

/* A record from the consumer: decoded and queued (HELD) on its partition. */
static void sub_take(struct kafka_sub *sub, rd_kafka_message_t *m)
{
	struct ceb_event *ev = NULL;
	const char *topic = rd_kafka_topic_name(m->rkt);
	struct kpart *p;
	struct krec *r;
	char err[256];
	int rc = sub_decode(sub, m, &ev, err, sizeof(err));

	r = calloc(1, sizeof(*r));
	pthread_mutex_lock(&sub->lock);
	p = sub_part(sub, topic, m->partition);
	if (!p || !r || rc == CEB_ENOMEM || part_push(p, r) < 0) {
		/* Revoked meanwhile: not tracked, the next owner reads it. Out of memory: fetch the
		 * partition again from this record, so that no later record is committed past it. */
		pthread_mutex_unlock(&sub->lock);
		if (p) {
			LOG_ERR(sub->label, "out of memory: record %s/%d/%lld will be read again",
			        topic, (int)m->partition, (long long)m->offset);
			rd_kafka_seek(m->rkt, m->partition, m->offset, 0);
		}
		free(r);
		ceb_event_unref(ev);
		return;
	}
	r->part = p;
	r->offset = m->offset;
	if (rc < 0) {
		/* Not a CloudEvent: nobody can deliver it, so it counts as settled. */
		r->state = REC_DONE;
		sub->skipped++;
		if (sub->skipped <= SKIP_LOG_FIRST || sub->skipped % 1000 == 0)
			LOG_WARN(sub->label,
			         "record %s/%d/%lld is not a CloudEvent (%s): skipped (%lu so far)",
			         topic, (int)m->partition, (long long)m->offset, err, sub->skipped);
	} else {
		r->ev = ev;
		r->state = REC_HELD;
		sub->held++;
	}
	pthread_mutex_unlock(&sub->lock);
}

/* Whether the subscription has room for another record of p. sub->lock held. */
static int sub_room(const struct kafka_sub *sub, const struct kpart *p)
{
	if (sub->held >= sub->cfg.max_inflight)
		return 0;
	return !sub->cfg.ordered || p->count - p->handed < AHEAD_ORDERED;
}

/* Take records from the partition queues while the subscription has room for them: unordered, up to
 * its in-flight cap beyond what is in flight; ordered, a few per partition. Consumer thread (the
 * only one that changes the partition list). */
static void sub_fill(struct kafka_sub *sub)
{
	for (size_t i = 0; i < sub->nparts; i++) {
		struct kpart *p = sub->parts[i];
		rd_kafka_message_t *m;
		int room;

		pthread_mutex_lock(&sub->lock);
		room = sub_room(sub, p);
		pthread_mutex_unlock(&sub->lock);
		while (p->q && room && (m = rd_kafka_consume_queue(p->q, 0))) {
			if (!m->err)
				sub_take(sub, m);
			else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				LOG_WARN(sub->label, "consumer: %s", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			pthread_mutex_lock(&sub->lock);
			room = sub_room(sub, p);
			pthread_mutex_unlock(&sub->lock);
		}
	}
}

struct handout {
	struct ceb_event *ev;
	struct krec *r;
};

/* Commit what can be committed, hand out what credit allows. Consumer thread only. Returns how many
 * were handed out; *wait_ms is the time until the next redelivery is due (-1: none). */
static size_t sub_pump(struct kafka_sub *sub, int *wait_ms)
{
	rd_kafka_topic_partition_list_t *store = NULL;
	struct handout out[64];
	size_t nout = 0, max = sub->cfg.max_inflight;
	uint64_t now = now_ms(), next_due = 0;
	int more = 1;

	pthread_mutex_lock(&sub->lock);
	for (size_t i = 0; i < sub->nparts; i++) {
		int64_t next = part_advance(sub->parts[i]);
		if (next >= 0)
			offsets_add(&store, sub->parts[i]->topic, sub->parts[i]->id, next);
	}
	/* Redeliveries keep the credit they had. */
	for (struct krec *r = sub->timers, *nx; r && nout < 64; r = nx) {
		nx = r->next;
		if (r->due > now) {
			if (!next_due || r->due < next_due)
				next_due = r->due;
			continue;
		}
		list_remove(&sub->timers, r);
		r->state = REC_INFLIGHT;
		r->attempts++;
		sub->waiting--;
		sub->redelivered++;
		out[nout].ev = ceb_event_ref(r->ev);
		out[nout++].r = r;
	}
	/* New records, one partition after the other so that none starves. */
	while (more && sub->inflight < max && nout < 64) {
		more = 0;
		for (size_t k = 0; k < sub->nparts && sub->inflight < max && nout < 64; k++) {
			struct kpart *p = sub->parts[(sub->rr + k) % sub->nparts];
			struct krec *r;
			while (p->handed < p->count && part_at(p, p->handed)->state == REC_DONE)
				p->handed++; /* skipped records: not CloudEvents */
			if (p->handed == p->count || (sub->cfg.ordered && p->inflight))
				continue;
			r = part_at(p, p->handed++);
			r->state = REC_INFLIGHT;
			r->attempts++;
			p->inflight++;
			sub->inflight++;
			sub->held--;
			out[nout].ev = ceb_event_ref(r->ev);
			out[nout++].r = r;
			more = 1;
		}
		sub->rr++;
	}
	pthread_mutex_unlock(&sub->lock);

	if (store) {
		rd_kafka_offsets_store(sub->rk, store);
		rd_kafka_topic_partition_list_destroy(store);
	}
	/* Outside the lock: a receiver may settle from inside on_msg. */
	for (size_t i = 0; i < nout; i++)
		sub->cfg.on_msg(sub->cfg.arg, out[i].ev, out[i].r);
	*wait_ms = -1;
	if (next_due) {
		now = now_ms();
		*wait_ms = next_due <= now ? 0 : (int)(next_due - now);
	}
	return nout;
}

static void *consumer_main(void *arg)
{
	struct kafka_sub *sub = arg;
	int wait = 0;

	while (!atomic_load(&sub->stop)) {
		struct pollfd pfd = {.fd = sub->wake[0], .events = POLLIN};
		rd_kafka_message_t *m;
		char buf[256];

		if (wait < 0 || wait > 500)
			wait = 500; /* the consumer is polled at least this often (max.poll.interval.ms) */
		poll(&pfd, 1, wait);
		while (read(sub->wake[0], buf, sizeof(buf)) > 0)
			;
		/* Group events (rebalances run in here), errors, and the records of partitions that
		 * have no queue of their own. */
		while ((m = rd_kafka_consumer_poll(sub->rk, 0))) {
			if (!m->err)
				sub_take(sub, m);
			else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				LOG_WARN(sub->label, "consumer: %s", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
		}
		/* Keep the subscription busy, but come back to the group's events now and then. */
		for (int round = 0; round < 16 && !atomic_load(&sub->stop); round++) {
			sub_fill(sub);
			if (sub_pump(sub, &wait) == 0)
				break;
			wait = 0;
		}
	}
	return NULL;
}

static void kafka_settle(void *ctx, void *subp, void *handle, enum ceb_settle how)
{
	struct kafka_sub *sub = subp;
	struct krec *r = handle;

	pthread_mutex_lock(&sub->lock);
	if (r->state != REC_INFLIGHT) {
		pthread_mutex_unlock(&sub->lock);
		LOG_ERR(sub->label, "a message was settled twice; ignored");
		return;
	}
	if (!r->part) {
		/* Its partition went to another consumer, which reads it again from the committed
		 * offset: this settle only gives back the credit. */
		list_remove(&sub->orphans, r);
		sub->inflight--;
		rec_free(r);
	} else if (how == CEB_SETTLE_DONE) {
		r->state = REC_DONE;
		ceb_event_unref(r->ev);
		r->ev = NULL;
		r->part->inflight--;
		sub->inflight--;
	} else {
		int shift = r->attempts < 7 ? r->attempts - 1 : 6;
		uint64_t delay = (uint64_t)REDELIVER_FIRST_MS << (shift > 0 ? shift : 0);
		r->state = REC_FAILED;
		r->due = now_ms() + (delay < REDELIVER_MAX_MS ? delay : REDELIVER_MAX_MS);
		list_push(&sub->timers, r);
		sub->waiting++;
	}
	pthread_mutex_unlock(&sub->lock);
	sub_wake(sub);
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
		LOG_INFO(kc->label, "created topic %s (%d partitions, replication factor %d)",
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
		         kc->role == ROLE_SINK ? " (set spec.numPartitions to have it created)"
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
		LOG_WARN(kc->label,
		         "the cluster has no controller for CreateTopics: topic %s is created "
		         "with the cluster's defaults, not %s",
		         kc->topic,
		         kc->role == ROLE_SINK ? "spec.numPartitions" : "default.topic.partitions");
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
			sub->init[sub->ninit++] = (struct kinit){chan_topic(kc, tp->topic),
			                                         tp->partition, tp->offset};
			rd_kafka_topic_partition_list_add(commit, tp->topic, tp->partition)
			        ->offset = tp->offset;
		}
		err = rd_kafka_commit(sub->rk, commit, 0);
		rd_kafka_topic_partition_list_destroy(commit);
		if (err)
			LOG_INFO(sub->label,
			         "group %s has no offsets on %s and cannot take them before it "
			         "joins (%s): it starts at the end when it joins",
			         sub->group, kc->topics[0], rd_kafka_err2str(err));
		else
			LOG_INFO(sub->label, "new consumer group %s starts at the end of %s%s",
			         sub->group, kc->topics[0],
			         kc->ntopics > 1 ? " and its other topics" : "");
	}
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* ---- the channel ---- */

static void kafka_destroy(void *ctx);

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
	        /* a sender waits for the acknowledgement: batch only what arrives meanwhile */
	        {"linger.ms", "1"},
	        {NULL, NULL},
	};
	struct kafka_channel *kc = calloc(1, sizeof(*kc));
	rd_kafka_conf_t *conf = NULL;
	char rerr[512], confirm[16];
	int rc;

	if (!kc) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	pthread_mutex_init(&kc->pub_lock, NULL);
	kc->role = cfg->kafka_source ? ROLE_SOURCE : cfg->kafka_sink ? ROLE_SINK : ROLE_BROKER;
	snprintf(kc->label, sizeof(kc->label), "%s %s/%s",
	         kc->role == ROLE_SOURCE ? "kafkasource"
	         : kc->role == ROLE_SINK ? "kafkasink"
	                                 : "broker",
	         cfg->ns, cfg->name);
	rc = kc->role == ROLE_BROKER ? read_config(kc, cfg, errbuf, errlen)
	                             : endpoint_config(kc, cfg, errbuf, errlen);
	if (rc < 0)
		goto fail;
	if (kc->role == ROLE_SOURCE) {
		/* Consume only: no producer. */
		LOG_INFO(kc->label, "KafkaSource on %zu topic(s), group %s, from the %s",
		         kc->ntopics, cfg->kafka_source->group,
		         cfg->kafka_source->earliest ? "earliest" : "latest");
		*ctx = kc;
		return 0;
	}
	if (cfg->external_topic && kc->role == ROLE_BROKER) {
		/* Knative's annotation: an existing topic instead of knative-broker-<ns>-<name>. */
		free(kc->topic);
		kc->topic = strdup(cfg->external_topic);
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
		snprintf(kc->topic, n, "knative-broker-%s-%s", cfg->ns, cfg->name);
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
		conf = client_conf(kc, defaults, forced, errbuf, errlen);
	}
	rc = CEB_ECONFIG;
	if (!conf)
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_opaque(conf, kc);
	kc->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rerr, sizeof(rerr));
	if (!kc->producer) {
		rd_kafka_conf_destroy(conf);
		snprintf(errbuf, errlen, "%s: cannot create the Kafka producer: %s", kc->label,
		         rerr);
		goto fail;
	}
	LOG_INFO(kc->label, "Kafka %s on topic %s%s, confirm timeout %d ms",
	         kc->role == ROLE_SINK ? "sink" : "channel", kc->topic,
	         kc->external && kc->role == ROLE_BROKER ? " (external)" : "", kc->confirm_ms);
	*ctx = kc;
	return 0;
fail:
	kafka_destroy(kc);
	return rc;
}

static int kafka_subscribe(void *ctx, const struct ceb_sub_cfg *cfg, void **out)
{
	static const struct kprop defaults[] = {
	        {"client.id", "cebroker"},
	        /* fewer duplicates after a crash */
	        {"auto.commit.interval.ms", "1000"},
	        /* a restarted daemon gets its partitions back soon */
	        {"session.timeout.ms", "10000"},
	        {"heartbeat.interval.ms", "1000"},
	        /* what librdkafka fetches ahead per partition: memory under lag */
	        {"queued.min.messages", "1000"},
	        {"queued.max.messages.kbytes", "8192"},
	        {"log.connection.close", "false"},
	        {"reconnect.backoff.max.ms", "1000"},
	        {NULL, NULL},
	};
	struct kafka_channel *kc = ctx;
	struct kafka_sub *sub, **subs;
	rd_kafka_conf_t *conf;
	char err[512];

	if (kc->started || kc->role == ROLE_SINK || (kc->source && kc->nsubs))
		return CEB_ESTATE;
	sub = calloc(1, sizeof(*sub));
	subs = sub ? realloc(kc->subs, (kc->nsubs + 1) * sizeof(*subs)) : NULL;
	if (!subs) {
		free(sub);
		return CEB_ENOMEM;
	}
	kc->subs = subs;
	sub->kc = kc;
	sub->cfg = *cfg;
	if (sub->cfg.max_inflight == 0)
		sub->cfg.max_inflight = 1;
	if (pipe2(sub->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
		free(sub);
		return CEB_EIO;
	}
	pthread_mutex_init(&sub->lock, NULL);
	if (kc->source) {
		snprintf(sub->label, sizeof(sub->label), "%s", kc->label);
		snprintf(sub->group, sizeof(sub->group), "%s", kc->source->group);
	} else {
		snprintf(sub->label, sizeof(sub->label), "trigger %s/%s", cfg->ns, cfg->name);
		snprintf(sub->group, sizeof(sub->group), "knative-trigger-%s-%s", cfg->ns,
		         cfg->name);
	}
	{
		const struct kprop forced[] = {
		        {"group.id", sub->group},
		        {"enable.auto.commit", "true"},
		        /* we store only the settled prefix */
		        {"enable.auto.offset.store", "false"},
		        /* see group_init */
		        {"auto.offset.reset", "earliest"},
		        {"enable.partition.eof", "false"},
		        {NULL, NULL},
		};
		conf = client_conf(kc, defaults, forced, err, sizeof(err));
	}
	if (!conf) {
		LOG_ERR(sub->label, "cannot configure the Kafka consumer: %s", err);
		goto fail;
	}
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_opaque(conf, sub);
	sub->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!sub->rk) {
		rd_kafka_conf_destroy(conf);
		LOG_ERR(sub->label, "cannot create the Kafka consumer: %s", err);
		goto fail;
	}
	rd_kafka_poll_set_consumer(sub->rk);
	sub->q = rd_kafka_queue_get_consumer(sub->rk);
	rd_kafka_queue_io_event_enable(sub->q, sub->wake[1], "c", 1);
	kc->subs[kc->nsubs++] = sub;
	*out = sub;
	return 0;
fail:
	close(sub->wake[0]);
	close(sub->wake[1]);
	pthread_mutex_destroy(&sub->lock);
	free(sub);
	return CEB_ECONFIG;
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
		if (pthread_create(&kc->dr_thread, NULL, dr_main, kc) != 0)
			goto nothread;
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
		if (pthread_create(&sub->thread, NULL, consumer_main, sub) != 0) {
			rd_kafka_topic_partition_list_destroy(topics);
			goto nothread;
		}
		sub->running = 1;
	}
	rd_kafka_topic_partition_list_destroy(topics);
	kc->started = 1;
	return 0;
nothread:
	snprintf(errbuf, errlen, "%s: cannot start a thread", kc->label);
	return CEB_EIO;
}

static void sub_destroy(struct kafka_sub *sub)
{
	if (sub->running) {
		atomic_store(&sub->stop, 1);
		sub_wake(sub);
		pthread_join(sub->thread, NULL);
	}
	if (sub->rk) {
		/* Store the settled prefix; close commits it, leaves the group (its partitions go to
		 * another member at once) and revokes: rebalance_cb frees the tracking. The queues we
		 * hold must go first, or close waits for them. */
		sub_store(sub);
		pthread_mutex_lock(&sub->lock);
		for (size_t i = 0; i < sub->nparts; i++) {
			if (sub->parts[i]->q)
				rd_kafka_queue_destroy(sub->parts[i]->q);
			sub->parts[i]->q = NULL;
		}
		pthread_mutex_unlock(&sub->lock);
		if (sub->q)
			rd_kafka_queue_destroy(sub->q);
		sub->q = NULL;
		rd_kafka_consumer_close(sub->rk);
	}
	for (size_t i = 0; i < sub->nparts; i++)
		part_release(sub, sub->parts[i]);
	free(sub->parts);
	while (sub->orphans) {
		struct krec *r = sub->orphans;
		list_remove(&sub->orphans, r);
		rec_free(r);
	}
	free(sub->init);
	if (sub->q)
		rd_kafka_queue_destroy(sub->q);
	if (sub->rk)
		rd_kafka_destroy(sub->rk);
	close(sub->wake[0]);
	close(sub->wake[1]);
	if (sub->skipped || sub->redelivered)
		LOG_INFO(sub->label, "%lu record(s) skipped (not CloudEvents), %lu redelivered",
		         sub->skipped, sub->redelivered);
	pthread_mutex_destroy(&sub->lock);
	free(sub);
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
			LOG_ERR(kc->label, "%zu publish(es) never got a delivery report",
			        (size_t)atomic_load(&kc->unconfirmed));
	}
	for (size_t i = 0; i < kc->nsubs; i++) {
		struct kafka_sub *sub = kc->subs[i];
		if (!sub->running)
			continue;
		atomic_store(&sub->stop, 1);
		sub_wake(sub);
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
		sub_destroy(kc->subs[i]);
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

static bool kafka_prefilters(void *ctx)
{
	return false;
}

const struct channel_ops ceb_channel_kafka = {
        .name = "kafka",
        .create = kafka_create,
        .destroy = kafka_destroy,
        .start = kafka_start,
        .publish = kafka_publish,
        .subscribe = kafka_subscribe,
        .settle = kafka_settle,
        .pending = kafka_pending,
        .prefilters = kafka_prefilters,
        .stop = kafka_stop,
};
