/* The channel contract suite against the Kafka backend, on librdkafka's mock cluster in its own
 * process (tests/tools/kafka_mock), plus what only Kafka does: the binding on the wire, records from
 * other producers, new groups starting at the end, ordered partitions, rebalances, faults. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "broker/buf.h"
#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/ce/event.h"
#include "broker/log.h"
#include "channels/kafka/kinds.h"
#include "channel_contract.h"


#define WAIT_MS 20000 /* a consumer group's first join alone takes 3 s on the mock */

static char bootstrap[1024];
static FILE *mock_in, *mock_out;
static pid_t mock_pid;

/* ---- the mock cluster helper ---- */

static void mock_start(void)
{
	const char *top = getenv("top_builddir");
	char path[1024], line[1024];
	int in[2], out[2];

	snprintf(path, sizeof(path), "%s/tests/tools/kafka_mock", top ? top : ".");
	if (pipe(in) < 0 || pipe(out) < 0) {
		perror("pipe");
		exit(1);
	}
	mock_pid = fork();
	if (mock_pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(path, path, (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	fcntl(in[1], F_SETFD, FD_CLOEXEC);
	fcntl(out[0], F_SETFD, FD_CLOEXEC);
	mock_in = fdopen(in[1], "w");
	mock_out = fdopen(out[0], "r");
	if (!fgets(line, sizeof(line), mock_out) || strncmp(line, "bootstrap.servers=", 18) != 0) {
		fprintf(stderr, "%s did not print its bootstrap servers\n", path);
		exit(1);
	}
	line[strcspn(line, "\n")] = '\0';
	snprintf(bootstrap, sizeof(bootstrap), "%s", line + 18);
}

static void mock_stop(void)
{
	fclose(mock_in);
	fclose(mock_out);
	waitpid(mock_pid, NULL, 0);
}

/* Send one command to the mock; fails the test unless it answers "ok". */
static void mock_cmd(const char *cmd)
{
	char line[512];

	fprintf(mock_in, "%s\n", cmd);
	fflush(mock_in);
	ck_assert_msg(fgets(line, sizeof(line), mock_out) != NULL, "kafka_mock exited");
	ck_assert_msg(strncmp(line, "ok", 2) == 0, "kafka_mock: %s: %s", cmd, line);
}

/* Every test starts on a healthy cluster, whatever the one before left behind. */
static void mock_reset(void)
{
	mock_cmd("up all");
	mock_cmd("clear Produce");
	mock_cmd("rtt all 0");
}

/* ---- ConfigMaps ---- */

/* A Kafka Broker's ConfigMap as the configuration loader reads it (the channel takes the settings
 * the loader checked): the ConfigMap and a Broker naming it, loaded from YAML. */
struct cm {
	struct ceb_config *cfg;
	char err[512]; /* the loader's errors when it refused */
};

/* A Kafka Broker whose ConfigMap has bootstrap.servers and the given key, value pairs
 * (NULL-terminated), or NULL when the loader refused it (cm->err says why). Frees what cm held
 * before. */
static const struct ceb_broker_cfg *cm_make(struct cm *cm, const char *const *pairs)
{
	struct ceb_config_errors errs = {CEB_BUF_INIT, 0};
	struct ceb_buf y = CEB_BUF_INIT;

	ceb_config_free(cm->cfg);
	memset(cm, 0, sizeof(*cm));
	ceb_buf_printf(&y,
	               "apiVersion: v1\n"
	               "kind: ConfigMap\n"
	               "metadata: {name: kafka-broker-config, namespace: kafka}\n"
	               "data:\n"
	               "  bootstrap.servers: \"%s\"\n",
	               bootstrap);
	for (size_t i = 0; pairs && pairs[i]; i += 2)
		ceb_buf_printf(&y, "  %s: \"%s\"\n", pairs[i], pairs[i + 1]);
	ceb_buf_puts(
	        &y,
	        "---\n"
	        "apiVersion: eventing.knative.dev/v1\n"
	        "kind: Broker\n"
	        "metadata:\n"
	        "  name: b\n"
	        "  namespace: kafka\n"
	        "  annotations: {eventing.knative.dev/broker.class: Kafka}\n"
	        "spec: {config: {apiVersion: v1, kind: ConfigMap, name: kafka-broker-config}}\n");
	ck_assert(!y.failed);
	if (ceb_config_load_string("test.yaml", y.p, y.len, &cm->cfg, &errs) < 0)
		snprintf(cm->err, sizeof(cm->err), "%s", errs.text.p ? errs.text.p : "?");
	ceb_buf_free(&y);
	ceb_buf_free(&errs.text);
	return cm->cfg ? cm->cfg->brokers : NULL;
}

static void cm_free(struct cm *cm)
{
	ceb_config_free(cm->cfg);
	cm->cfg = NULL;
}

static struct cm contract_cm;

static void kafka_cfg(struct ceb_channel_cfg *cfg, const char *name)
{
	cfg->spec = cm_make(&contract_cm, NULL);
	ck_assert_msg(cfg->spec, "%s", contract_cm.err);
}

static const struct contract_backend kafka = {
        .ops = &ceb_channel_kafka,
        .setup_cfg = kafka_cfg,
        .bounded = 0,
        .wait_ms = WAIT_MS,
};

/* ---- a channel with subscriptions that collect what they get ---- */

#define MAXMSG 256

struct coll {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct ceb_event *evs[MAXMSG];
	void *handles[MAXMSG];
	int settled[MAXMSG];
	size_t n;
	void *sub;
};

static void coll_on_msg(void *arg, struct ceb_event *ev, void *handle)
{
	struct coll *c = arg;

	pthread_mutex_lock(&c->lock);
	if (c->n < MAXMSG) {
		c->evs[c->n] = ev;
		c->handles[c->n++] = handle;
	} else {
		ceb_event_unref(ev);
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Wait until c holds at least n messages; returns how many it holds. */
static size_t coll_wait(struct coll *c, size_t n, int ms)
{
	struct timespec ts;
	size_t got;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&c->lock);
	while (c->n < n && pthread_cond_timedwait(&c->cond, &c->lock, &ts) == 0)
		;
	got = c->n;
	pthread_mutex_unlock(&c->lock);
	return got;
}

static const char *coll_id(struct coll *c, size_t i)
{
	return ceb_event_get(c->evs[i], "id")->value;
}

/* How many times id arrived. */
static int coll_count(struct coll *c, const char *id)
{
	int k = 0;

	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->n; i++)
		k += strcmp(coll_id(c, i), id) == 0;
	pthread_mutex_unlock(&c->lock);
	return k;
}

struct chan {
	struct ceb_channel ch;
	struct cm cm;
	struct ceb_filter *all;
};

static void chan_open(struct chan *ch, const char *name, const char *const *pairs)
{
	struct ceb_channel_cfg cfg = {.ns = "kafka", .name = name};
	char err[512];

	memset(ch, 0, sizeof(*ch));
	cfg.spec = cm_make(&ch->cm, pairs);
	ck_assert_msg(cfg.spec, "%s", ch->cm.err);
	ch->ch.ops = &ceb_channel_kafka;
	ck_assert_msg(ch->ch.ops->create(&cfg, &ch->ch.ctx, err, sizeof(err)) == 0, "create: %s",
	              err);
	ch->all = ceb_filter_true();
}

static void chan_sub(struct chan *ch, const char *name, size_t max_inflight, bool ordered,
                     struct coll *c)
{
	struct ceb_sub_cfg sc = {.ns = "kafka",
	                         .name = name,
	                         .filter = ch->all,
	                         .max_inflight = max_inflight,
	                         .ordered = ordered,
	                         .on_msg = coll_on_msg,
	                         .arg = c};

	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	ck_assert_int_eq(ch->ch.ops->subscribe(ch->ch.ctx, &sc, &c->sub), 0);
}

static void chan_start(struct chan *ch)
{
	char err[512];

	ck_assert_msg(ch->ch.ops->start(ch->ch.ctx, err, sizeof(err)) == 0, "start: %s", err);
}

static void settle(struct chan *ch, struct coll *c, size_t i, enum ceb_settle how)
{
	ck_assert_int_eq(c->settled[i], 0);
	c->settled[i] = 1;
	ch->ch.ops->settle(ch->ch.ctx, c->sub, c->handles[i], how);
}

static void settle_all(struct chan *ch, struct coll *c)
{
	for (size_t i = 0; i < c->n; i++)
		if (!c->settled[i])
			settle(ch, c, i, CEB_SETTLE_DONE);
}

static void coll_free(struct coll *c)
{
	for (size_t i = 0; i < c->n; i++)
		ceb_event_unref(c->evs[i]);
	c->n = 0;
}

static void chan_close(struct chan *ch)
{
	ch->ch.ops->destroy(ch->ch.ctx);
	ceb_filter_free(ch->all);
	cm_free(&ch->cm);
}

struct pubwait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls, status;
};

static void pub_done(void *arg, int status)
{
	struct pubwait *p = arg;

	pthread_mutex_lock(&p->lock);
	p->calls++;
	p->status = status;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

static struct ceb_event *event(const char *id, const char *key)
{
	struct ceb_event *ev = ceb_event_new();
	char err[128];

	ck_assert_int_eq(
	        ceb_event_set(ev, "specversion", CEB_TYPE_STRING, "1.0", 3, err, sizeof(err)), 0);
	ck_assert_int_eq(ceb_event_set(ev, "id", CEB_TYPE_STRING, id, strlen(id), err, sizeof(err)),
	                 0);
	ck_assert_int_eq(ceb_event_set(ev, "source", CEB_TYPE_URIREF, "/test", 5, err, sizeof(err)),
	                 0);
	ck_assert_int_eq(ceb_event_set(ev, "type", CEB_TYPE_STRING, "t", 1, err, sizeof(err)), 0);
	if (key)
		ck_assert_int_eq(ceb_event_set(ev, "partitionkey", CEB_TYPE_STRING, key,
		                               strlen(key), err, sizeof(err)),
		                 0);
	ck_assert_int_eq(ceb_event_set_data(ev, id, strlen(id), 0), 0);
	return ev;
}

/* Publish ev and wait for the completion; returns its status. Fails the test unless it completes
 * within ms, and exactly once. */
static int publish_ms(struct chan *ch, struct ceb_event *ev, int ms, int *elapsed_ms)
{
	struct pubwait p = {.calls = 0};
	struct timespec ts, t0, t1;
	int st;

	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000 + 1;
	ch->ch.ops->publish(ch->ch.ctx, ev, pub_done, &p);
	pthread_mutex_lock(&p.lock);
	while (p.calls == 0 && pthread_cond_timedwait(&p.cond, &p.lock, &ts) == 0)
		;
	st = p.status;
	pthread_mutex_unlock(&p.lock);
	ck_assert_msg(p.calls > 0, "publish did not complete within %d ms", ms);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (elapsed_ms)
		*elapsed_ms =
		        (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	usleep(100 * 1000);
	ck_assert_int_le(p.calls, 1);
	return st;
}

static void publish_ok(struct chan *ch, const char *id, const char *key)
{
	struct ceb_event *ev = event(id, key);

	ck_assert_int_eq(publish_ms(ch, ev, WAIT_MS, NULL), 0);
	ceb_event_unref(ev);
}

/* ---- plain librdkafka clients, to see and write the topic as another client would ---- */

static rd_kafka_t *raw_client(rd_kafka_type_t type, const char *group)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)),
	                 0);
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
	if (group) {
		rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
		rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
		rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
		rd_kafka_conf_set(conf, "session.timeout.ms", "6000", err, sizeof(err));
		rd_kafka_conf_set(conf, "heartbeat.interval.ms", "500", err, sizeof(err));
	}
	rk = rd_kafka_new(type, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	return rk;
}

/* Produce one record to a partition, with a key of any bytes (key may be NULL); headers: name,
 * value pairs, NULL-terminated. */
static void raw_produce_key(const char *topic, int32_t part, const void *key, size_t keylen,
                            const char *value, const char *const *hdrs)
{
	rd_kafka_t *rk = raw_client(RD_KAFKA_PRODUCER, NULL);
	rd_kafka_headers_t *h = rd_kafka_headers_new(8);

	for (size_t i = 0; hdrs && hdrs[i]; i += 2)
		rd_kafka_header_add(h, hdrs[i], -1, hdrs[i + 1], -1);
	ck_assert_int_eq(
	        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
	                          RD_KAFKA_V_KEY(key, keylen),
	                          RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
	                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
	                          RD_KAFKA_V_END),
	        0);
	ck_assert_int_eq(rd_kafka_flush(rk, 10000), 0);
	rd_kafka_destroy(rk);
}

static void raw_produce(const char *topic, int32_t part, const char *value, const char *const *hdrs)
{
	raw_produce_key(topic, part, NULL, 0, value, hdrs);
}

/* A record as read back, copied out of librdkafka (whose messages must not outlive the client). */
struct rawrec {
	char key[64], value[256];
	size_t keylen, len;
	rd_kafka_headers_t *hdrs;
};

/* Read every record of the topic from the start for ms; returns how many. */
static int raw_read(const char *topic, struct rawrec *out, int max, int ms)
{
	rd_kafka_t *rk = raw_client(RD_KAFKA_CONSUMER, "raw-reader");
	rd_kafka_topic_partition_list_t *l;
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	struct timespec t0, t;
	int n = 0, nparts;

	ck_assert_int_eq(rd_kafka_metadata(rk, 0, rkt, &md, 5000), 0);
	ck_assert_int_eq(md->topic_cnt, 1);
	nparts = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	l = rd_kafka_topic_partition_list_new(nparts);
	for (int p = 0; p < nparts; p++)
		rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		rd_kafka_headers_t *h;
		if (m && !m->err && n < max) {
			struct rawrec *r = &out[n++];
			memset(r, 0, sizeof(*r));
			r->keylen = m->key_len < sizeof(r->key) ? m->key_len : sizeof(r->key);
			if (m->key)
				memcpy(r->key, m->key, r->keylen);
			r->len = m->len < sizeof(r->value) ? m->len : sizeof(r->value);
			if (m->payload)
				memcpy(r->value, m->payload, r->len);
			if (rd_kafka_message_headers(m, &h) == 0)
				r->hdrs = rd_kafka_headers_copy(h);
		}
		if (m)
			rd_kafka_message_destroy(m);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			break;
	}
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return n;
}

static void raw_free(struct rawrec *r, int n)
{
	for (int i = 0; i < n; i++)
		if (r[i].hdrs)
			rd_kafka_headers_destroy(r[i].hdrs);
}

static const char *header(const struct rawrec *r, const char *name, char *buf, size_t len)
{
	const void *v;
	size_t vlen;

	if (!r->hdrs || rd_kafka_header_get_last(r->hdrs, name, &v, &vlen))
		return NULL;
	snprintf(buf, len, "%.*s", (int)vlen, (const char *)v);
	return buf;
}

/* ---- tests ---- */

START_TEST(test_kafka_backend_is_found_by_name_and_broker_class)
{
	ck_assert_ptr_eq(ceb_channel_ops_find("kafka"), &ceb_channel_kafka);
	ck_assert_str_eq(ceb_channel_for_class("Kafka"), "kafka");
	ck_assert_uint_eq(ceb_channel_kafka.flags & CEB_CHANNEL_PREFILTERS, 0);
}
END_TEST

/* Create a Broker's channel on a ConfigMap with these settings: what refuses them, the loader (which
 * `validate` runs too) or the channel (librdkafka's own checks), says why in err. */
static int create_fails(const char *const *pairs, int with_config, char *err, size_t errlen)
{
	struct ceb_channel_cfg cfg = {.ns = "kafka", .name = "bad"};
	struct cm cm = {0};
	void *ctx = NULL;
	int rc;

	if (with_config && !(cfg.spec = cm_make(&cm, pairs))) {
		snprintf(err, errlen, "%s", cm.err);
		return CEB_ECONFIG;
	}
	rc = ceb_channel_kafka.create(&cfg, &ctx, err, errlen);
	if (rc == 0)
		ceb_channel_kafka.destroy(ctx);
	cm_free(&cm);
	return rc;
}

START_TEST(test_configuration_errors_name_the_configmap_and_the_key)
{
	char err[512];

	ck_assert_int_eq(create_fails(NULL, 0, err, sizeof(err)), CEB_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "spec.config"));
	ck_assert_int_eq(
	        create_fails((const char *const[]){"default.topic.partitions", "ten", NULL}, 1, err,
	                     sizeof(err)),
	        CEB_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "test.yaml:6:29: ConfigMap kafka/kafka-broker-config: "
	                                  "data[\"default.topic.partitions\"]: \"ten\""));
	ck_assert_int_eq(create_fails((const char *const[]){"auth.secret.ref.name", "creds", NULL},
	                              1, err, sizeof(err)),
	                 CEB_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "auth.secret.ref.name"));
	ck_assert_int_eq(
	        create_fails((const char *const[]){"librdkafka.no.such.property", "1", NULL}, 1,
	                     err, sizeof(err)),
	        CEB_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "test.yaml:6:32: ConfigMap kafka/kafka-broker-config: "
	                                  "no.such.property"));
	ck_assert_int_eq(
	        create_fails((const char *const[]){"cebroker.confirm.timeout.ms", "-5", NULL}, 1,
	                     err, sizeof(err)),
	        CEB_ECONFIG);
	ck_assert_int_eq(
	        create_fails((const char *const[]){"security.protocol", "SASL_PLAINTEXT",
	                                           "sasl.mechanism", "PLAIN", "sasl.username", "u",
	                                           "sasl.password", "p", NULL},
	                     1, err, sizeof(err)),
	        0);
}
END_TEST

START_TEST(test_secret_values_never_reach_the_log_or_an_error)
{
	static const char canary[] = "canary-7f3a9c";
	char err[512], logbuf[65536];
	char path[] = "/tmp/ceb-kafka-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	dup2(fd, 2);
	ceb_log_setup(CEB_LOGLEVEL_DEBUG, 0);
	create_fails((const char *const[]){"security.protocol", "SASL_PLAINTEXT", "sasl.mechanism",
	                                   "PLAIN", "sasl.username", "u", "sasl.password", canary,
	                                   "librdkafka.debug", "conf,security", NULL},
	             1, err, sizeof(err));
	ck_assert_ptr_null(strstr(err, canary));
	/* A value librdkafka refuses: the error names the key, never the value. */
	create_fails((const char *const[]){"sasl.password", canary, "librdkafka.sasl.password",
	                                   canary, "librdkafka.ssl.key.password", canary,
	                                   "sasl.oauthbearer.config", canary,
	                                   "librdkafka.linger.ms", "never", NULL},
	             1, err, sizeof(err));
	ck_assert_ptr_null(strstr(err, canary));
	ck_assert_ptr_nonnull(strstr(err, "linger.ms"));
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, logbuf, sizeof(logbuf) - 1, 0);
	close(fd);
	ck_assert_int_ge(n, 0);
	logbuf[n] = '\0';
	ck_assert_msg(strstr(logbuf, canary) == NULL, "the secret was logged:\n%s", logbuf);
	ceb_log_setup(CEB_LOGLEVEL_WARN, 0);
}
END_TEST

START_TEST(test_records_follow_the_kafka_binding_in_binary_mode)
{
	struct chan ch;
	struct ceb_event *ev = event("bin-1", "user-42");
	struct rawrec m[8];
	char err[128], buf[256];
	int n, found = -1;

	chan_open(&ch, "binding", NULL);
	chan_start(&ch);
	ck_assert_int_eq(ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, "text/plain", 10,
	                               err, sizeof(err)),
	                 0);
	ck_assert_int_eq(
	        ceb_event_set(ev, "myext", CEB_TYPE_STRING, "a b%20\xc3\xa4", 8, err, sizeof(err)),
	        0);
	ck_assert_int_eq(publish_ms(&ch, ev, WAIT_MS, NULL), 0);
	ceb_event_unref(ev);
	n = raw_read("knative-broker-kafka-binding", m, 8, 3000);
	for (int i = 0; i < n; i++)
		if (header(&m[i], "ce_id", buf, sizeof(buf)) && strcmp(buf, "bin-1") == 0)
			found = i;
	ck_assert_int_ge(found, 0);
	ck_assert_str_eq(header(&m[found], "ce_specversion", buf, sizeof(buf)), "1.0");
	ck_assert_str_eq(header(&m[found], "ce_source", buf, sizeof(buf)), "/test");
	ck_assert_str_eq(header(&m[found], "ce_type", buf, sizeof(buf)), "t");
	/* UTF-8 as it is: the Kafka binding has no percent-encoding */
	ck_assert_str_eq(header(&m[found], "ce_myext", buf, sizeof(buf)), "a b%20\xc3\xa4");
	/* the key mapper must not change the event: partitionkey still travels */
	ck_assert_str_eq(header(&m[found], "ce_partitionkey", buf, sizeof(buf)), "user-42");
	ck_assert_str_eq(header(&m[found], "content-type", buf, sizeof(buf)), "text/plain");
	ck_assert_ptr_null(header(&m[found], "ce_datacontenttype", buf, sizeof(buf)));
	ck_assert_int_eq((int)m[found].keylen, 7);
	ck_assert_int_eq(memcmp(m[found].key, "user-42", 7), 0);
	ck_assert_int_eq((int)m[found].len, 5);
	ck_assert_int_eq(memcmp(m[found].value, "bin-1", 5), 0);
	raw_free(m, n);
	chan_close(&ch);
}
END_TEST

START_TEST(test_binary_and_structured_records_of_other_producers_become_events)
{
	static const char structured[] = "{\"specversion\":\"1.0\",\"type\":\"com.example."
	                                 "someevent\",\"time\":\"2018-04-05T03:56:24Z\","
	                                 "\"id\":\"%s\",\"source\":\"/mycontext/"
	                                 "subcontext\",\"datacontenttype\":\"application/json\","
	                                 "\"data\":{\"message\":\"Hello World!\"}}";
	const char *topic = "knative-broker-kafka-foreign";
	struct chan ch;
	struct coll c;
	char s1[512], s2[512];
	const struct ceb_attr *a;
	const void *data;
	size_t len;

	mock_cmd("topic knative-broker-kafka-foreign 1");
	chan_open(&ch, "foreign", NULL);
	chan_sub(&ch, "reader", 10, false, &c);
	chan_start(&ch);
	/* The conformance scenarios of the CloudEvents Kafka binding (tck/conformance). */
	raw_produce(topic, 0, "{\"message\": \"Hello World!\"}",
	            (const char *const[]){"ce_specversion", "1.0", "ce_id", "1234-1234-1234",
	                                  "ce_type", "com.example.someevent", "ce_source",
	                                  "/mycontext/subcontext", "ce_time",
	                                  "2018-04-05T03:56:24Z", "content-type",
	                                  "application/json", NULL});
	snprintf(s1, sizeof(s1), structured, "s-1");
	snprintf(s2, sizeof(s2), structured, "s-2");
	raw_produce(topic, 0, s1,
	            (const char *const[]){"content-type", "application/cloudevents+json", NULL});
	raw_produce(topic, 0, s2,
	            (const char *const[]){"content-type",
	                                  "application/cloudevents+json; charset=utf-8", NULL});
	ck_assert_uint_eq(coll_wait(&c, 3, WAIT_MS), 3);
	ck_assert_str_eq(coll_id(&c, 0), "1234-1234-1234");
	ck_assert_str_eq(ceb_event_get(c.evs[0], "time")->value, "2018-04-05T03:56:24Z");
	ck_assert_str_eq(ceb_event_get(c.evs[0], "datacontenttype")->value, "application/json");
	ck_assert_str_eq(ceb_event_get(c.evs[0], "source")->value, "/mycontext/subcontext");
	data = ceb_event_data(c.evs[0], &len);
	ck_assert_int_eq((int)len, 27);
	ck_assert_int_eq(memcmp(data, "{\"message\": \"Hello World!\"}", len), 0);
	for (size_t i = 1; i < 3; i++) {
		ck_assert_str_eq(coll_id(&c, i), i == 1 ? "s-1" : "s-2");
		a = ceb_event_get(c.evs[i], "type");
		ck_assert_str_eq(a->value, "com.example.someevent");
		ck_assert_str_eq(ceb_event_get(c.evs[i], "datacontenttype")->value,
		                 "application/json");
		data = ceb_event_data(c.evs[i], &len);
		ck_assert_int_eq((int)len, 26);
		ck_assert_int_eq(memcmp(data, "{\"message\":\"Hello World!\"}", len), 0);
	}
	settle_all(&ch, &c);
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

START_TEST(test_records_that_are_not_cloudevents_are_skipped_and_committed)
{
	const char *topic = "knative-broker-kafka-junk";
	struct chan ch;
	struct coll c;

	mock_cmd("topic knative-broker-kafka-junk 1");
	chan_open(&ch, "junk", NULL);
	chan_sub(&ch, "reader", 10, false, &c);
	chan_start(&ch);
	raw_produce(topic, 0, "plain bytes", NULL);
	raw_produce(topic, 0, "{not json",
	            (const char *const[]){"content-type", "application/cloudevents+json", NULL});
	raw_produce(
	        topic, 0, "[]",
	        (const char *const[]){"content-type", "application/cloudevents-batch+json", NULL});
	raw_produce(topic, 0, "x",
	            (const char *const[]){"ce_specversion", "1.0", "ce_type", "t", "ce_source",
	                                  "/s", NULL}); /* no id */
	raw_produce(topic, 0, "x",
	            (const char *const[]){"ce_specversion", "1.0", "ce_id", "bad name", "ce_type",
	                                  "t", "ce_source", "/s", "ce_Bad-Name", "v", NULL});
	raw_produce(topic, 0, "ok",
	            (const char *const[]){"ce_specversion", "1.0", "ce_id", "good-1", "ce_type",
	                                  "t", "ce_source", "/s", NULL});
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ck_assert_uint_eq(coll_wait(&c, 2, 500), 1);
	ck_assert_str_eq(coll_id(&c, 0), "good-1");
	settle_all(&ch, &c);
	ck_assert_uint_eq(ch.ch.ops->pending(ch.ch.ctx), 0);
	coll_free(&c);
	chan_close(&ch);

	/* Committed past the junk too: a restart does not read it (nor good-1) again. */
	chan_open(&ch, "junk", NULL);
	chan_sub(&ch, "reader", 10, false, &c);
	chan_start(&ch);
	publish_ok(&ch, "good-2", NULL);
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ck_assert_uint_eq(coll_wait(&c, 2, 500), 1);
	ck_assert_str_eq(coll_id(&c, 0), "good-2");
	settle_all(&ch, &c);
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

START_TEST(test_a_new_subscription_starts_at_the_end_and_misses_nothing_accepted_after_start)
{
	struct chan ch;
	struct coll early, late, fresh;

	chan_open(&ch, "k8", NULL);
	chan_sub(&ch, "early", 10, false, &early);
	chan_start(&ch);
	publish_ok(&ch, "old-0", NULL);
	publish_ok(&ch, "old-1", NULL);
	ck_assert_uint_eq(coll_wait(&early, 2, WAIT_MS), 2);
	settle_all(&ch, &early);
	coll_free(&early);
	chan_close(&ch);

	/* A Trigger added to a running Broker: the topic has history it must not replay, and the
	 * events accepted right after start, before its group even joined, must all reach it. */
	chan_open(&ch, "k8", NULL);
	chan_sub(&ch, "early", 10, false, &early);
	chan_sub(&ch, "late", 10, false, &late);
	chan_sub(&ch, "fresh", 10, false, &fresh);
	chan_start(&ch);
	publish_ok(&ch, "new-0", NULL);
	publish_ok(&ch, "new-1", NULL);
	publish_ok(&ch, "new-2", NULL);
	ck_assert_uint_eq(coll_wait(&late, 3, WAIT_MS), 3);
	ck_assert_uint_eq(coll_wait(&early, 3, WAIT_MS), 3);
	ck_assert_uint_eq(coll_wait(&late, 4, 500), 3);
	ck_assert_int_eq(coll_count(&late, "old-0") + coll_count(&late, "old-1"), 0);
	ck_assert_int_eq(coll_count(&early, "old-0") + coll_count(&early, "old-1"), 0);
	settle_all(&ch, &late);
	settle_all(&ch, &early);
	/* fresh settles nothing and the daemon stops: its group never committed on its own. */
	coll_free(&late);
	coll_free(&early);
	coll_free(&fresh);
	chan_close(&ch);

	chan_open(&ch, "k8", NULL);
	chan_sub(&ch, "fresh", 10, false, &fresh);
	chan_start(&ch);
	ck_assert_uint_eq(coll_wait(&fresh, 3, WAIT_MS), 3);
	ck_assert_int_eq(coll_count(&fresh, "new-0"), 1);
	ck_assert_int_eq(coll_count(&fresh, "new-1"), 1);
	ck_assert_int_eq(coll_count(&fresh, "new-2"), 1);
	settle_all(&ch, &fresh);
	coll_free(&fresh);
	chan_close(&ch);
}
END_TEST

START_TEST(test_ordered_subscription_hands_one_record_per_partition_at_a_time)
{
	static const char *const keys[] = {"alpha", "beta", "gamma"};
	struct chan ch;
	struct coll c;
	char id[32];
	size_t settled = 0;

	mock_cmd("topic knative-broker-kafka-ordered 2");
	chan_open(&ch, "ordered", NULL);
	chan_sub(&ch, "inorder", 100, true, &c);
	chan_start(&ch);
	for (int i = 0; i < 12; i++) {
		snprintf(id, sizeof(id), "%s-%d", keys[i % 3], i / 3);
		publish_ok(&ch, id, keys[i % 3]);
	}
	while (settled < 12) {
		size_t n = coll_wait(&c, settled + 1, WAIT_MS);
		ck_assert_uint_gt(n, settled);
		coll_wait(&c, settled + 3,
		          300); /* give a second or third one the chance to show up */
		pthread_mutex_lock(&c.lock);
		n = c.n;
		pthread_mutex_unlock(&c.lock);
		/* Two partitions: never more than two unsettled, and never two of one key. */
		ck_assert_uint_le(n - settled, 2);
		if (n - settled == 2)
			ck_assert_str_ne(ceb_event_get(c.evs[settled], "partitionkey")->value,
			                 ceb_event_get(c.evs[settled + 1], "partitionkey")->value);
		for (size_t i = settled; i < n; i++)
			settle(&ch, &c, i, CEB_SETTLE_DONE);
		settled = n;
	}
	/* Per key, in the order they were published. */
	for (int k = 0; k < 3; k++) {
		int next = 0;
		for (size_t i = 0; i < c.n; i++) {
			if (strcmp(ceb_event_get(c.evs[i], "partitionkey")->value, keys[k]))
				continue;
			snprintf(id, sizeof(id), "%s-%d", keys[k], next++);
			ck_assert_str_eq(coll_id(&c, i), id);
		}
		ck_assert_int_eq(next, 4);
	}
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

START_TEST(test_publish_is_refused_when_kafka_does_not_confirm_in_time)
{
	struct chan ch;
	struct ceb_event *ev = event("outage-1", NULL), *ev2 = event("outage-2", NULL);
	struct pubwait first = {.calls = 0};
	struct timespec t0, t1, deadline;
	int ms = 0, st;

	pthread_mutex_init(&first.lock, NULL);
	pthread_cond_init(&first.cond, NULL);
	chan_open(&ch, "outage",
	          (const char *const[]){"cebroker.confirm.timeout.ms", "1500",
	                                "librdkafka.queue.buffering.max.messages", "1", NULL});
	chan_start(&ch);
	publish_ok(&ch, "before", NULL);
	mock_cmd("down all");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ch.ch.ops->publish(ch.ch.ctx, ev, pub_done, &first);
	/* librdkafka's local queue holds one, and that one waits for Kafka: the next is refused as
	 * full at once (429). */
	ck_assert_int_eq(publish_ms(&ch, ev2, 1000, &ms), CEB_EFULL);
	ck_assert_int_le(ms, 200);
	/* The first gets its 503 once the confirm timeout passed, not later (librdkafka alone can
	 * take seconds more with every broker down). */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	pthread_mutex_lock(&first.lock);
	while (first.calls == 0 && pthread_cond_timedwait(&first.cond, &first.lock, &deadline) == 0)
		;
	pthread_mutex_unlock(&first.lock);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
	ck_assert_int_eq(first.calls, 1);
	ck_assert_int_eq(first.status, CEB_EUNAVAIL);
	ck_assert_int_ge(ms, 1000);
	ck_assert_int_le(ms, 2500);
	mock_cmd("up all");
	/* Recovery: publishes are confirmed again once librdkafka reconnected. */
	for (int i = 0; i < 30 && (st = publish_ms(&ch, ev2, 3000, NULL)) != 0; i++)
		usleep(200 * 1000);
	ck_assert_int_eq(st, 0);
	ck_assert_int_eq(first.calls, 1);
	ceb_event_unref(ev);
	ceb_event_unref(ev2);
	chan_close(&ch);
}
END_TEST

START_TEST(test_produce_errors_are_retried_without_duplicates_in_the_topic)
{
	struct rawrec m[32];
	struct chan ch;
	char id[32];
	int n;

	mock_cmd("topic knative-broker-kafka-retries 2");
	chan_open(&ch, "retries", NULL);
	chan_start(&ch);
	mock_cmd("err Produce 3 NOT_ENOUGH_REPLICAS");
	mock_cmd("err Produce 1 _TRANSPORT");
	for (int i = 0; i < 6; i++) {
		snprintf(id, sizeof(id), "r-%d", i);
		publish_ok(&ch, id, NULL);
	}
	chan_close(&ch);
	n = raw_read("knative-broker-kafka-retries", m, 32, 3000);
	ck_assert_int_eq(n, 6);
	raw_free(m, n);
}
END_TEST

START_TEST(test_a_confirmation_later_than_the_timeout_is_a_503_and_never_a_duplicate)
{
	struct rawrec m[16];
	struct chan ch;
	struct ceb_event *ev = event("late-1", NULL);
	char buf[64];
	int ms = 0, n, late = 0;

	mock_cmd("topic knative-broker-kafka-late 1");
	chan_open(&ch, "late", (const char *const[]){"cebroker.confirm.timeout.ms", "1500", NULL});
	chan_start(&ch);
	publish_ok(&ch, "warm", NULL);
	/* Every broker answers the next Produce request 3 s late ("possibly persisted", K3). */
	for (int b = 1; b <= 3; b++) {
		snprintf(buf, sizeof(buf), "berr %d Produce 1 NO_ERROR 3000", b);
		mock_cmd(buf);
	}
	ck_assert_int_eq(publish_ms(&ch, ev, 5000, &ms), CEB_EUNAVAIL);
	ck_assert_int_le(ms, 2500);
	sleep(4); /* the late answer arrives; the idempotent producer never writes it twice */
	chan_close(&ch);
	n = raw_read("knative-broker-kafka-late", m, 16, 3000);
	for (int i = 0; i < n; i++)
		late += header(&m[i], "ce_id", buf, sizeof(buf)) && strcmp(buf, "late-1") == 0;
	ck_assert_int_le(late, 1);
	ck_assert_int_ge(n, 1);
	raw_free(m, n);
	ceb_event_unref(ev);
}
END_TEST

START_TEST(test_stop_refuses_publishes_hands_out_nothing_more_and_still_takes_settles)
{
	struct chan ch;
	struct coll c;
	struct ceb_event *ev = event("after-stop", NULL);
	int ms = 0;

	chan_open(&ch, "stopping", NULL);
	chan_sub(&ch, "one-at-a-time", 1, false, &c);
	chan_start(&ch);
	publish_ok(&ch, "s-1", NULL);
	publish_ok(&ch, "s-2", NULL);
	ck_assert_uint_eq(coll_wait(&c, 1, WAIT_MS), 1);
	ch.ch.ops->stop(ch.ch.ctx);
	ck_assert_int_eq(publish_ms(&ch, ev, 1000, &ms), CEB_EUNAVAIL);
	ck_assert_int_le(ms, 200);
	settle(&ch, &c, 0, CEB_SETTLE_DONE);
	ck_assert_uint_eq(coll_wait(&c, 2, 1000), 1); /* s-2 stays in Kafka for the next start */
	ck_assert_uint_eq(ch.ch.ops->pending(ch.ch.ctx), 0);
	ceb_event_unref(ev);
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

/* ---- KafkaSource ---- */

static void source_open(struct chan *ch, struct ceb_kafka_source_cfg *src, struct coll *c)
{
	struct ceb_channel_cfg cfg = {.ns = src->ns, .name = src->name, .kind = CEB_KAFKA_SOURCE_KIND, .spec = src};
	char err[512];

	memset(ch, 0, sizeof(*ch));
	ch->ch.ops = &ceb_channel_kafka;
	ck_assert_msg(ch->ch.ops->create(&cfg, &ch->ch.ctx, err, sizeof(err)) == 0, "create: %s",
	              err);
	chan_sub(ch, src->name, 10, src->ordered, c);
	/* a source takes one subscription, and publishes nothing */
	ck_assert_int_eq(ch->ch.ops->subscribe(ch->ch.ctx,
	                                       &(struct ceb_sub_cfg){.ns = "kafka",
	                                                             .name = "second",
	                                                             .max_inflight = 1,
	                                                             .on_msg = coll_on_msg,
	                                                             .arg = c},
	                                       &(void *){NULL}),
	                 CEB_ESTATE);
}

static const char *attr(struct coll *c, size_t i, const char *name)
{
	const struct ceb_attr *a = ceb_event_get(c->evs[i], name);
	return a ? a->value : "(none)";
}

START_TEST(test_a_kafka_source_maps_plain_records_keys_and_headers_as_knative_does)
{
	static char *topics[] = {"src-keys"};
	static char *ext_k[] = {"origin"}, *ext_v[] = {"kafka-lab"};
	struct ceb_kafka_source_cfg ints = {
	        .ns = "kafka",
	        .name = "ints",
	        .bootstrap = bootstrap,
	        .topics = topics,
	        .ntopics = 1,
	        .group = "g-ints",
	        .earliest = true,
	        .ordered = true,
	        .key_type = CEB_KEY_INT,
	        .ce_ext_keys = ext_k,
	        .ce_ext_values = ext_v,
	        .nce_ext = 1,
	};
	struct ceb_kafka_source_cfg floats = ints, bytes = ints;
	struct chan ci, cf, cb;
	struct coll c_int, c_float, c_bytes;
	const unsigned char k4[] = {0xff, 0xff, 0xff, 0xfe}, k8[] = {0, 0, 0, 1, 0, 0, 0, 0},
	                    k3[] = {1, 2, 3},
	                    kd[] = {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18};
	const void *data;
	size_t len;

	floats.name = "floats";
	floats.group = "g-floats";
	floats.key_type = CEB_KEY_FLOAT;
	floats.nce_ext = 0;
	bytes.name = "bytes";
	bytes.group = "g-bytes";
	bytes.key_type = CEB_KEY_BYTES;
	bytes.nce_ext = 0;
	mock_cmd("topic src-keys 1");
	raw_produce_key("src-keys", 0, k4, 4, "{\"n\": 1}",
	                (const char *const[]){"X-Trace_ID", "t-1", "bin", "\x01\x02", NULL});
	raw_produce_key("src-keys", 0, k8, 8, "plain text", NULL);
	raw_produce_key("src-keys", 0, k3, 3, "odd key", NULL);
	raw_produce_key("src-keys", 0, kd, 8, "pi",
	                (const char *const[]){"content-type", "text/x-pi", NULL});
	/* claims to be a CloudEvent (ce_specversion) but has no id: sent as a plain record */
	raw_produce("src-keys", 0, "half",
	            (const char *const[]){"ce_specversion", "1.0", "ce_type", "t", NULL});
	source_open(&ci, &ints, &c_int);
	source_open(&cf, &floats, &c_float);
	source_open(&cb, &bytes, &c_bytes);
	chan_start(&ci);
	chan_start(&cf);
	chan_start(&cb);
	/* ordered: one record at a time per partition, so settle as they come */
	for (size_t i = 0; i < 5; i++) {
		ck_assert_uint_eq(coll_wait(&c_int, i + 1, WAIT_MS), i + 1);
		settle(&ci, &c_int, i, CEB_SETTLE_DONE);
		ck_assert_uint_eq(coll_wait(&c_float, i + 1, WAIT_MS), i + 1);
		settle(&cf, &c_float, i, CEB_SETTLE_DONE);
		ck_assert_uint_eq(coll_wait(&c_bytes, i + 1, WAIT_MS), i + 1);
		settle(&cb, &c_bytes, i, CEB_SETTLE_DONE);
	}
	ck_assert_str_eq(attr(&c_int, 0, "type"), "dev.knative.kafka.event");
	ck_assert_str_eq(attr(&c_int, 0, "source"),
	                 "/apis/v1/namespaces/kafka/kafkasources/ints#src-keys");
	ck_assert_str_eq(attr(&c_int, 0, "id"), "partition:0/offset:0");
	ck_assert_str_eq(attr(&c_int, 0, "subject"), "partition:0#0");
	ck_assert_str_eq(attr(&c_int, 0, "datacontenttype"), "application/json");
	ck_assert(ceb_event_data_flags(c_int.evs[0]) & CEB_DATA_JSON);
	ck_assert_int_eq(ceb_event_get(c_int.evs[0], "key")->type, CEB_TYPE_INTEGER);
	ck_assert_str_eq(attr(&c_int, 0, "key"), "-2");
	ck_assert_str_eq(attr(&c_int, 0, "kafkaheaderxtraceid"), "t-1");
	/* a header value that is no CloudEvents String goes as base64 */
	ck_assert_int_eq(ceb_event_get(c_int.evs[0], "kafkaheaderbin")->type, CEB_TYPE_BINARY);
	ck_assert_str_eq(attr(&c_int, 0, "kafkaheaderbin"), "AQI=");
	ck_assert_str_eq(attr(&c_int, 0, "origin"), "kafka-lab");
	{
		char verr[256];
		ck_assert_msg(ceb_event_validate(c_int.evs[0], NULL, verr, sizeof(verr)) == 0, "%s",
		              verr);
	}
	ck_assert_str_eq(attr(&c_int, 1, "key"), "4294967296");
	ck_assert_str_eq(attr(&c_int, 1, "datacontenttype"), "(none)");
	data = ceb_event_data(c_int.evs[1], &len);
	ck_assert_int_eq((int)len, 10);
	ck_assert_int_eq(memcmp(data, "plain text", len), 0);
	ck_assert_str_eq(attr(&c_int, 2, "key"), "AQID"); /* 3 bytes: no int, byte-array */
	ck_assert_str_eq(attr(&c_int, 0, "partitionkey"), "-2");
	ck_assert_str_eq(attr(&c_int, 3, "datacontenttype"), "text/x-pi");
	ck_assert_str_eq(attr(&c_int, 3, "kafkaheadercontenttype"), "(none)");
	ck_assert_str_eq(attr(&c_int, 4, "type"), "dev.knative.kafka.event");
	ck_assert_str_eq(attr(&c_int, 4, "kafkaheadercetype"), "t");
	ck_assert_str_eq(attr(&c_int, 4, "key"), "(none)");
	ck_assert_str_eq(attr(&c_float, 3, "key"), "3.1415926535897931");
	ck_assert_str_eq(attr(&c_float, 3, "origin"), "(none)");
	ck_assert_str_eq(attr(&c_bytes, 0, "key"), "/////g==");
	ck_assert_str_eq(attr(&c_bytes, 0, "source"),
	                 "/apis/v1/namespaces/kafka/kafkasources/bytes#src-keys");
	/* a source publishes nothing */
	{
		struct pubwait pw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
		struct ceb_event *ev = event("x", NULL);
		ci.ch.ops->publish(ci.ch.ctx, ev, pub_done, &pw);
		ck_assert_int_eq(pw.calls, 1);
		ck_assert_int_eq(pw.status, CEB_EUNAVAIL);
		ceb_event_unref(ev);
	}
	coll_free(&c_int);
	coll_free(&c_float);
	coll_free(&c_bytes);
	ci.ch.ops->destroy(ci.ch.ctx);
	cf.ch.ops->destroy(cf.ch.ctx);
	cb.ch.ops->destroy(cb.ch.ctx);
}
END_TEST

START_TEST(test_a_kafka_source_with_initial_offset_latest_starts_at_the_end)
{
	static char *topics[] = {"src-late-a", "src-late-b"};
	struct ceb_kafka_source_cfg late = {
	        .ns = "kafka",
	        .name = "late",
	        .bootstrap = bootstrap,
	        .topics = topics,
	        .ntopics = 2,
	        .group = "g-late",
	};
	struct chan ch;
	struct coll c;

	mock_cmd("topic src-late-a 2");
	mock_cmd("topic src-late-b 1");
	raw_produce("src-late-a", 0, "old", NULL);
	source_open(&ch, &late, &c);
	chan_start(&ch);
	/* started: what comes now is read, on either topic, whenever the group joins */
	raw_produce("src-late-b", 0, "new-b", NULL);
	raw_produce("src-late-a", 0, "new-a", NULL);
	ck_assert_uint_eq(coll_wait(&c, 2, WAIT_MS), 2);
	ck_assert_uint_eq(coll_wait(&c, 3, 2000), 2);
	for (size_t i = 0; i < 2; i++) {
		size_t len;
		const char *d = ceb_event_data(c.evs[i], &len);
		ck_assert(len == 5 && (memcmp(d, "new-a", 5) == 0 || memcmp(d, "new-b", 5) == 0));
	}
	settle_all(&ch, &c);
	coll_free(&c);
	ch.ch.ops->destroy(ch.ch.ctx);
}
END_TEST

START_TEST(test_a_kafka_sink_writes_structured_mode_and_refuses_subscriptions)
{
	struct ceb_kafka_sink_cfg snk = {
	        .ns = "kafka",
	        .name = "out",
	        .topic = "sink-structured",
	        .bootstrap = bootstrap,
	        .structured = true,
	};
	struct ceb_channel_cfg cfg = {.ns = "kafka", .name = "out", .kind = CEB_KAFKA_SINK_KIND, .spec = &snk};
	struct ceb_channel ch = {.ops = &ceb_channel_kafka};
	struct coll c;
	struct rawrec r[4];
	char err[512], buf[128];
	void *sub = NULL;
	int n;

	mock_cmd("topic sink-structured 1");
	ck_assert_msg(ch.ops->create(&cfg, &ch.ctx, err, sizeof(err)) == 0, "create: %s", err);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(ch.ops->subscribe(ch.ctx,
	                                   &(struct ceb_sub_cfg){.ns = "kafka",
	                                                         .name = "t",
	                                                         .max_inflight = 1,
	                                                         .on_msg = coll_on_msg,
	                                                         .arg = &c},
	                                   &sub),
	                 CEB_ESTATE);
	ck_assert_msg(ch.ops->start(ch.ctx, err, sizeof(err)) == 0, "start: %s", err);
	{
		struct chan wrap = {.ch = ch};
		publish_ok(&wrap, "st-1", "key-1");
	}
	n = raw_read("sink-structured", r, 4, 3000);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(header(&r[0], "content-type", buf, sizeof(buf)),
	                 "application/cloudevents+json; charset=UTF-8");
	ck_assert(strstr(r[0].value, "\"id\":\"st-1\"") != NULL);
	ck_assert_int_eq((int)r[0].keylen, 5);
	ck_assert_int_eq(memcmp(r[0].key, "key-1", 5), 0);
	raw_free(r, n);
	ch.ops->destroy(ch.ctx);
}
END_TEST

static void raw_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
		rd_kafka_assign(rk, parts);
	else
		rd_kafka_assign(rk, NULL);
}

/* A consumer in the group of `group`, subscribed to topic: a second member. */
static rd_kafka_t *other_member(const char *group, const char *topic)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *sub;
	rd_kafka_t *rk;
	char err[256];

	ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)),
	                 0);
	rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
	rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof(err));
	rd_kafka_conf_set(conf, "session.timeout.ms", "6000", err, sizeof(err));
	rd_kafka_conf_set(conf, "heartbeat.interval.ms", "500", err, sizeof(err));
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
	rd_kafka_conf_set_rebalance_cb(conf, raw_rebalance);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_ptr_nonnull(rk);
	rd_kafka_poll_set_consumer(rk);
	sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	ck_assert_int_eq(rd_kafka_subscribe(rk, sub), 0);
	rd_kafka_topic_partition_list_destroy(sub);
	return rk;
}

/* Polls a second member for as long as a test runs: a member that stops polling cannot take part
 * in the next rebalance and is dropped from the group, which would hand its partitions back. */
struct poller {
	rd_kafka_t *rk;
	atomic_int first_partition; /* of the first record it read; -1 before */
	atomic_int stop;
	pthread_t thread;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;

	while (!atomic_load(&p->stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(p->rk, 100);
		if (m && !m->err && atomic_load(&p->first_partition) < 0)
			atomic_store(&p->first_partition, m->partition);
		if (m)
			rd_kafka_message_destroy(m);
	}
	return NULL;
}

START_TEST(test_ordered_partition_got_back_waits_for_the_deliveries_of_its_previous_assignment)
{
	const char *topic = "knative-broker-kafka-back";
	struct chan ch;
	struct coll c;
	struct poller other = {.first_partition = -1};
	int mine;
	char id[32];
	struct timespec t0, t;

	mock_cmd("topic knative-broker-kafka-back 2");
	chan_open(&ch, "back",
	          (const char *const[]){"librdkafka.session.timeout.ms", "6000",
	                                "librdkafka.heartbeat.interval.ms", "500", NULL});
	chan_sub(&ch, "back", 100, true, &c);
	chan_start(&ch);
	for (int p = 0; p < 2; p++)
		for (int o = 0; o < 3; o++) {
			snprintf(id, sizeof(id), "p%d-%d", p, o);
			raw_produce(topic, p, "x",
			            (const char *const[]){"ce_specversion", "1.0", "ce_id", id,
			                                  "ce_type", "t", "ce_source", "/s", NULL});
		}
	/* ordered: the first record of each partition, and nothing more until they settle */
	ck_assert_uint_eq(coll_wait(&c, 2, WAIT_MS), 2);
	ck_assert_uint_eq(coll_wait(&c, 3, 1000), 2);
	/* A second member joins: both partitions are revoked while p0-0 and p1-0 are in flight,
	 * then one comes back to us. */
	other.rk = other_member("knative-trigger-kafka-back", topic);
	ck_assert_int_eq(pthread_create(&other.thread, NULL, poller_main, &other), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&other.first_partition) < 0) {
		usleep(50 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_int_lt(t.tv_sec - t0.tv_sec, 30);
	}
	mine = 1 - atomic_load(&other.first_partition);
	/* Our partition came back, its first record still in flight from before: nothing of it
	 * may be handed out now, or it would overtake (and duplicate) that delivery. */
	ck_assert_uint_eq(coll_wait(&c, 3, 3000), 2);
	settle_all(&ch, &c);
	/* Settled: the partition goes on from its committed offset, in order. */
	ck_assert_uint_eq(coll_wait(&c, 3, WAIT_MS), 3);
	snprintf(id, sizeof(id), "p%d-0", mine);
	ck_assert_str_eq(coll_id(&c, 2), id);
	atomic_store(&other.stop, 1);
	pthread_join(other.thread, NULL);
	rd_kafka_consumer_close(other.rk);
	rd_kafka_destroy(other.rk);
	/* Closed before the collector lets go: a settle now would hand out the next record, which
	 * could arrive after the collector was emptied and stay referenced. */
	chan_close(&ch);
	coll_free(&c);
}
END_TEST

START_TEST(test_after_a_rebalance_only_the_settled_prefix_is_committed_and_late_settles_are_ignored)
{
	const char *topic = "knative-broker-kafka-k9";
	struct chan ch;
	struct coll c;
	rd_kafka_t *other;
	int64_t first[2] = {-1, -1};
	char id[32];
	struct timespec t0, t;

	mock_cmd("topic knative-broker-kafka-k9 2");
	chan_open(&ch, "k9",
	          (const char *const[]){"librdkafka.session.timeout.ms", "6000",
	                                "librdkafka.heartbeat.interval.ms", "500", NULL});
	chan_sub(&ch, "k9", 100, false, &c);
	chan_start(&ch);
	for (int p = 0; p < 2; p++) {
		for (int o = 0; o < 5; o++) {
			snprintf(id, sizeof(id), "p%d-%d", p, o);
			raw_produce(topic, p, "x",
			            (const char *const[]){"ce_specversion", "1.0", "ce_id", id,
			                                  "ce_type", "t", "ce_source", "/s", NULL});
		}
	}
	ck_assert_uint_eq(coll_wait(&c, 10, WAIT_MS), 10);
	/* Settle everything but p0-2 and p1-0: partition 0 may commit up to offset 2, partition 1
	 * nothing, whatever was settled after the gaps. */
	for (size_t i = 0; i < 10; i++)
		if (strcmp(coll_id(&c, i), "p0-2") && strcmp(coll_id(&c, i), "p1-0"))
			settle(&ch, &c, i, CEB_SETTLE_DONE);
	usleep(1500 * 1000); /* an auto-commit interval */

	/* A second member joins the group: the eager protocol revokes both partitions, then gives
	 * one to each. */
	other = other_member("knative-trigger-kafka-k9", topic);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(other, 100);
		if (m && !m->err && first[m->partition] < 0)
			first[m->partition] = m->offset;
		if (m)
			rd_kafka_message_destroy(m);
		if (first[0] >= 0 || first[1] >= 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		ck_assert_int_lt(t.tv_sec - t0.tv_sec, 30);
	}
	/* Whichever partition the newcomer got, it starts at the first record never settled. */
	if (first[0] >= 0)
		ck_assert_int_eq(first[0], 2);
	if (first[1] >= 0)
		ck_assert_int_eq(first[1], 0);
	/* The late settles concern partitions this consumer may no longer own: ignored, no crash,
	 * and the credit comes back. */
	for (size_t i = 0; i < 10; i++)
		if (!c.settled[i])
			settle(&ch, &c, i, CEB_SETTLE_DONE);
	rd_kafka_consumer_close(other);
	rd_kafka_destroy(other);
	coll_free(&c);
	chan_close(&ch);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("channel_kafka");
	TCase *tc = tcase_create("contract");
	TCase *tk = tcase_create("kafka");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	ceb_log_setup(CEB_LOGLEVEL_WARN, 0);
	mock_start();
	tcase_set_timeout(tc, 120);
	contract_add_tests(tc, &kafka);
	suite_add_tcase(s, tc);
	tcase_set_timeout(tk, 120);
	tcase_add_checked_fixture(tk, mock_reset, NULL);
	tcase_add_test(tk, test_kafka_backend_is_found_by_name_and_broker_class);
	tcase_add_test(tk, test_configuration_errors_name_the_configmap_and_the_key);
	tcase_add_test(tk, test_secret_values_never_reach_the_log_or_an_error);
	tcase_add_test(tk, test_records_follow_the_kafka_binding_in_binary_mode);
	tcase_add_test(tk, test_binary_and_structured_records_of_other_producers_become_events);
	tcase_add_test(tk, test_records_that_are_not_cloudevents_are_skipped_and_committed);
	tcase_add_test(
	        tk,
	        test_a_new_subscription_starts_at_the_end_and_misses_nothing_accepted_after_start);
	tcase_add_test(tk, test_ordered_subscription_hands_one_record_per_partition_at_a_time);
	tcase_add_test(tk, test_publish_is_refused_when_kafka_does_not_confirm_in_time);
	tcase_add_test(tk, test_produce_errors_are_retried_without_duplicates_in_the_topic);
	tcase_add_test(tk,
	               test_a_confirmation_later_than_the_timeout_is_a_503_and_never_a_duplicate);
	tcase_add_test(tk,
	               test_stop_refuses_publishes_hands_out_nothing_more_and_still_takes_settles);
	tcase_add_test(
	        tk,
	        test_after_a_rebalance_only_the_settled_prefix_is_committed_and_late_settles_are_ignored);
	tcase_add_test(
	        tk,
	        test_ordered_partition_got_back_waits_for_the_deliveries_of_its_previous_assignment);
	tcase_add_test(tk, test_a_kafka_source_maps_plain_records_keys_and_headers_as_knative_does);
	tcase_add_test(tk, test_a_kafka_source_with_initial_offset_latest_starts_at_the_end);
	tcase_add_test(tk, test_a_kafka_sink_writes_structured_mode_and_refuses_subscriptions);
	suite_add_tcase(s, tk);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	mock_stop();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
