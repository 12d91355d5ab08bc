/* What the Kafka unit suites share: librdkafka's mock cluster in its own process
 * (tests/tools/kafka_mock), Kafka channels with collecting subscriptions, and plain librdkafka
 * clients that read and write topics. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/kafka_fixture.h"

char bootstrap[1024];
static FILE *mock_in, *mock_out;
static pid_t mock_pid;

/* ---- the mock cluster helper ---- */

void mock_start(void)
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

void mock_stop(void)
{
	fclose(mock_in);
	fclose(mock_out);
	waitpid(mock_pid, NULL, 0);
}

/* Send one command to the mock; fails the test unless it answers "ok". */
void mock_cmd(const char *cmd)
{
	char line[512];

	fprintf(mock_in, "%s\n", cmd);
	fflush(mock_in);
	ck_assert_msg(fgets(line, sizeof(line), mock_out) != NULL, "kafka_mock exited");
	ck_assert_msg(strncmp(line, "ok", 2) == 0, "kafka_mock: %s: %s", cmd, line);
}

/* Every test starts on a healthy cluster, whatever the one before left behind. */
void mock_reset(void)
{
	mock_cmd("up all");
	mock_cmd("clear Produce");
	mock_cmd("rtt all 0");
}

/* ---- ConfigMaps ---- */

const struct ceb_broker_cfg *cm_make(struct cm *cm, const char *const *pairs)
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

void cm_free(struct cm *cm)
{
	ceb_config_free(cm->cfg);
	cm->cfg = NULL;
}

/* ---- a channel with subscriptions that collect what they get ---- */

void chan_open(struct chan *ch, const char *name, const char *const *pairs)
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

void chan_sub(struct chan *ch, const char *name, size_t max_inflight, bool ordered, struct coll *c)
{
	struct ceb_sub_cfg sc = {.ns = "kafka",
	                         .name = name,
	                         .filter = ch->all,
	                         .max_inflight = max_inflight,
	                         .ordered = ordered,
	                         .on_msg = coll_on_msg,
	                         .arg = c};

	coll_init(c);
	ck_assert_int_eq(ch->ch.ops->subscribe(ch->ch.ctx, &sc, &c->sub), 0);
}

void chan_start(struct chan *ch)
{
	char err[512];

	ck_assert_msg(ch->ch.ops->start(ch->ch.ctx, err, sizeof(err)) == 0, "start: %s", err);
}

void settle(struct chan *ch, struct coll *c, size_t i, enum ceb_settle how)
{
	ck_assert_int_eq(c->settled[i], 0);
	c->settled[i] = 1;
	ch->ch.ops->settle(ch->ch.ctx, c->sub, c->handles[i], how);
}

/* Settles what had arrived when called: an event handed out while the loop runs (the settles
 * themselves can cause one) is left for the test to see. */
void settle_all(struct chan *ch, struct coll *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->n;
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < n; i++)
		if (!c->settled[i])
			settle(ch, c, i, CEB_SETTLE_DONE);
}

void chan_close(struct chan *ch)
{
	ch->ch.ops->destroy(ch->ch.ctx);
	ceb_filter_free(ch->all);
	cm_free(&ch->cm);
}

void pub_done(void *arg, int status)
{
	struct pubwait *p = arg;

	pthread_mutex_lock(&p->lock);
	p->calls++;
	p->status = status;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

struct ceb_event *event(const char *id, const char *key)
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
int publish_ms(struct chan *ch, struct ceb_event *ev, int ms, int *elapsed_ms)
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

void publish_ok(struct chan *ch, const char *id, const char *key)
{
	struct ceb_event *ev = event(id, key);

	ck_assert_int_eq(publish_ms(ch, ev, WAIT_MS, NULL), 0);
	ceb_event_unref(ev);
}

/* ---- plain librdkafka clients, to see and write the topic as another client would ---- */

rd_kafka_t *raw_client(rd_kafka_type_t type, const char *group)
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
void raw_produce_key(const char *topic, int32_t part, const void *key, size_t keylen,
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

void raw_produce(const char *topic, int32_t part, const char *value, const char *const *hdrs)
{
	raw_produce_key(topic, part, NULL, 0, value, hdrs);
}

/* Read every record of the topic from the start for ms; returns how many. */
int raw_read(const char *topic, struct rawrec *out, int max, int ms)
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

void raw_free(struct rawrec *r, int n)
{
	for (int i = 0; i < n; i++)
		if (r[i].hdrs)
			rd_kafka_headers_destroy(r[i].hdrs);
}

const char *header(const struct rawrec *r, const char *name, char *buf, size_t len)
{
	const void *v;
	size_t vlen;

	if (!r->hdrs || rd_kafka_header_get_last(r->hdrs, name, &v, &vlen))
		return NULL;
	snprintf(buf, len, "%.*s", (int)vlen, (const char *)v);
	return buf;
}
