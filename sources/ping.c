/* PingSource (Knative's sources.knative.dev/v1 and v1beta2): a cron schedule that emits a fixed
 * event to a sink on every tick, exactly as Knative's mtping adapter makes it. The source publishes
 * into the daemon's memory channel for it; the dispatcher delivers with the adapter's policy (the
 * CloudEvents SDK's retries and status set), so a source never delivers itself. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "broker/buf.h"
#include "broker/ce/base64.h"
#include "broker/ce/event.h"
#include "broker/config/fields.h"
#include "broker/error.h"
#include "broker/log.h"
#include "sources/cron.h"
#include "sources/source.h"

#define PING_KIND "PingSource"
#define PING_TYPE "dev.knative.sources.ping"
#define JITTER_MS 500 /* a tick waits a random 0-499 ms before it sends, as Knative's does */

/* The resource as loaded. */
struct ceb_ping_cfg {
	char *ns, *name;
	char *schedule;     /* spec.schedule; Knative's default "* * * * *" */
	char *timezone;     /* spec.timezone, or NULL: the schedule's prefix or the local zone */
	char *content_type; /* spec.contentType, or NULL */
	char *data;         /* spec.data, or dataBase64 decoded; NULL without data */
	size_t data_len;
	bool data_json; /* application/json data (checked to be a JSON object) */
	struct ceb_dest sink;
	struct ceb_delivery delivery; /* the adapter's policy, not a field of the kind */
	char **ce_ext_keys, **ce_ext_values;
	size_t nce_ext;
	struct ceb_loc loc;
	struct ceb_source_cfg source;
};

/* ------------------------------------------------------------------------------------------------
 * The kind.
 */

/* Knative's adapter sends with the CloudEvents SDK: ContextWithRetriesExponentialBackoff(50ms, 5),
 * so at most 6 attempts 100, 200, 400, 800 and 1600 ms apart, and only these statuses (and network
 * errors) retried. 500 is not. No dead-letter sink: a PingSource has no delivery. */
static const int sdk_retry_statuses[] = {404, 413, 425, 429, 502, 503, 504, 0};

static void ping_cfg_free(void *own)
{
	struct ceb_ping_cfg *pc = own;

	if (!pc)
		return;
	free(pc->ns);
	free(pc->name);
	free(pc->schedule);
	free(pc->timezone);
	free(pc->content_type);
	free(pc->data);
	ceb_config_dest_free(&pc->sink);
	ceb_config_delivery_free(&pc->delivery);
	ceb_config_strv_free(pc->ce_ext_keys, pc->nce_ext);
	ceb_config_strv_free(pc->ce_ext_values, pc->nce_ext);
	free(pc);
}

/* The schedule and its zone, as Knative's validation reads them: a bad zone is an error on
 * spec.timezone, anything else on spec.schedule. */
static void check_schedule(struct ceb_config_res *r, const struct ceb_yaml_node *sched,
                           const struct ceb_yaml_node *tz, const struct ceb_ping_cfg *pc)
{
	struct ceb_cron *c = NULL;
	char err[256], q[80];
	int rc = ceb_cron_parse(pc->schedule, pc->timezone, &c, err, sizeof(err));

	if (rc == CEB_CRON_ENOMEM)
		ceb_config_oom(r);
	else if (rc == CEB_CRON_EZONE)
		ceb_config_err(r, tz, "spec.timezone",
		               "\"%s\" is not a time zone of the time zone database (an IANA name "
		               "such as Europe/Paris)",
		               ceb_config_quoted(q, sizeof(q), pc->timezone));
	else if (rc < 0 && sched)
		ceb_config_err(r, sched, "spec.schedule", "invalid schedule: %s", err);
	else if (rc < 0) /* the default schedule with a timezone prefix clash cannot happen */
		ceb_config_err(r, tz, "spec.timezone", "%s", err);
	ceb_cron_free(c);
}

/* spec.data or spec.dataBase64 (not both), checked against spec.contentType. */
static void parse_data(struct ceb_config_res *r, const struct ceb_yaml_node *data,
                       const struct ceb_yaml_node *b64, struct ceb_ping_cfg *pc)
{
	const struct ceb_yaml_node *at = data ? data : b64;
	const char *path = data ? "spec.data" : "spec.dataBase64";
	struct ceb_buf b = CEB_BUF_INIT;
	char *s = NULL;
	cJSON *json;

	if (data && b64) {
		ceb_config_err(r, b64, "spec.dataBase64",
		               "expected exactly one, got both: spec.data and spec.dataBase64");
		return;
	}
	if (!at || !ceb_config_get_str(r, at, path, &s))
		return;
	if (b64) {
		int rc = ceb_base64_decode(s, strlen(s), &b);
		if (rc == CEB_ENOMEM) {
			ceb_config_oom(r);
			goto out;
		}
		if (rc < 0) {
			ceb_config_err(r, b64, path, "not standard base64 (RFC 4648, padded)");
			goto out;
		}
		free(s);
		s = ceb_buf_steal(&b, &pc->data_len);
		if (!s && pc->data_len) {
			ceb_config_oom(r);
			goto out;
		}
	} else {
		pc->data_len = strlen(s);
	}
	if (pc->data_len == 0)
		goto out;
	/* Knative checks the exact content type application/json: the data must be an object. */
	if (pc->content_type && strcmp(pc->content_type, "application/json") == 0) {
		json = cJSON_ParseWithLength(s, pc->data_len);
		if (!cJSON_IsObject(json))
			ceb_config_err(r, at, path,
			               "with contentType application/json the data must be a JSON "
			               "object");
		cJSON_Delete(json);
		pc->data_json = true;
	} else if (pc->content_type && ceb_media_type_is_json(pc->content_type)) {
		json = cJSON_ParseWithLength(s, pc->data_len);
		pc->data_json = json != NULL;
		cJSON_Delete(json);
	}
	pc->data = s;
	s = NULL;
out:
	free(s);
	ceb_buf_free(&b);
}

static void parse_ping_source(struct ceb_config_res *r, struct ceb_config_meta *md,
                              const struct ceb_yaml_node *root,
                              const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"schedule",   "timezone", "contentType", "data",
	                                          "dataBase64", "sink",     "ceOverrides", NULL};
	const struct ceb_yaml_node *v[7];
	struct ceb_ping_cfg *pc;
	char q[80];

	if (!md->name)
		return;
	pc = calloc(1, sizeof(*pc));
	if (!pc) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&pc->delivery);
	pc->delivery.retry = 5;
	pc->delivery.backoff_policy = CEB_BACKOFF_EXPONENTIAL;
	pc->delivery.backoff_delay_ms = 100;
	pc->delivery.retry_statuses = sdk_retry_statuses;
	pc->ns = md->ns;
	pc->name = md->name;
	md->ns = md->name = NULL;
	pc->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	pc->source.own = pc;
	pc->source.own_free = ping_cfg_free;
	ceb_config_add_source(r, &pc->source);
	ceb_config_add_entry(r, PING_KIND, pc->ns, pc->name, md, pc);

	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a PingSource needs spec.sink)");
		goto out;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		goto out;
	if (v[0])
		ceb_config_get_str(r, v[0], "spec.schedule", &pc->schedule);
	if (v[1])
		ceb_config_get_str(r, v[1], "spec.timezone", &pc->timezone);
	if (pc->timezone && !*pc->timezone) { /* "" is Knative's unset */
		free(pc->timezone);
		pc->timezone = NULL;
	}
	if (!pc->schedule || !*pc->schedule) {
		free(pc->schedule);
		if (!(pc->schedule = ceb_config_strdup(r, "* * * * *")))
			goto out;
	}
	check_schedule(r, v[0], v[1], pc);
	if (v[2] && ceb_config_get_str(r, v[2], "spec.contentType", &pc->content_type) &&
	    *pc->content_type && !ceb_media_type_valid(pc->content_type, strlen(pc->content_type)))
		ceb_config_err(r, v[2], "spec.contentType", "\"%s\" is not a media type",
		               ceb_config_quoted(q, sizeof(q), pc->content_type));
	parse_data(r, v[3], v[4], pc);
	if (!v[5])
		ceb_config_err(r, vals[0], "spec.sink", "required field missing");
	else
		ceb_config_parse_dest(r, v[5], "spec.sink", &pc->sink);
	if (v[6])
		ceb_config_parse_ce_overrides(r, v[6], &pc->ce_ext_keys, &pc->ce_ext_values,
		                              &pc->nce_ext);
out:
	pc->source = (struct ceb_source_cfg){
	        .kind = PING_KIND,
	        .ns = pc->ns,
	        .name = pc->name,
	        .sink = &pc->sink,
	        .delivery = &pc->delivery,
	        .ce_ext_keys = pc->ce_ext_keys,
	        .ce_ext_values = pc->ce_ext_values,
	        .nce_ext = pc->nce_ext,
	        .ordered = false, /* each tick is sent on its own, as the adapter's goroutines */
	        .own = pc,
	        .own_free = ping_cfg_free,
	        .loc = pc->loc,
	        .next = pc->source.next,
	};
}

static const char *const spec_only[] = {"spec", NULL};
static const char *const ping_versions[] = {"sources.knative.dev/v1", "sources.knative.dev/v1beta2",
                                            NULL};

const struct ceb_kind ceb_kind_ping_source = {ping_versions, PING_KIND, spec_only,
                                              parse_ping_source, false};

/* ------------------------------------------------------------------------------------------------
 * The source: one thread that sleeps until the next tick (and its jitter), then emits.
 */

struct ping {
	const struct ceb_ping_cfg *pc;
	const struct ceb_source_env *env;
	struct ceb_cron *cron;
	char source[512]; /* /apis/v1/namespaces/<ns>/pingsources/<name> */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	atomic_ulong emitted, dropped;
};

/* A random (version 4) UUID. */
static void uuid4(char out[37])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i % 4 * 8)) ^
			       (unsigned char)rand();
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

/* Now as RFC 3339 in UTC with nanoseconds, as the SDK's WithTimeNow writes it. */
static void now_rfc3339(char *out, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char s[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%09ldZ", s, ts.tv_nsec);
}

/* The event of one tick (Knative's makeEvent), or NULL with a reason. */
static struct ceb_event *make_event(const struct ping *pg, char *err, size_t errlen)
{
	const struct ceb_ping_cfg *pc = pg->pc;
	struct ceb_event *ev = ceb_event_new();
	char id[37], now[64];
	int rc;

	if (!ev) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	uuid4(id);
	now_rfc3339(now, sizeof(now));
	rc = ceb_event_set(ev, "specversion", CEB_TYPE_STRING, "1.0", 3, err, errlen);
	if (!rc)
		rc = ceb_event_set(ev, "id", CEB_TYPE_STRING, id, strlen(id), err, errlen);
	if (!rc)
		rc = ceb_event_set(ev, "source", CEB_TYPE_URIREF, pg->source, strlen(pg->source),
		                   err, errlen);
	if (!rc)
		rc = ceb_event_set(ev, "type", CEB_TYPE_STRING, PING_TYPE, strlen(PING_TYPE), err,
		                   errlen);
	if (!rc)
		rc = ceb_event_set(ev, "time", CEB_TYPE_TIMESTAMP, now, strlen(now), err, errlen);
	if (!rc && pc->data_len && pc->content_type && *pc->content_type)
		rc = ceb_event_set(ev, "datacontenttype", CEB_TYPE_STRING, pc->content_type,
		                   strlen(pc->content_type), err, errlen);
	if (!rc && pc->data_len)
		rc = ceb_event_set_data(ev, pc->data, pc->data_len,
		                        pc->data_json ? CEB_DATA_JSON : 0);
	for (size_t i = 0; !rc && i < pc->nce_ext; i++)
		rc = ceb_event_set(ev, pc->ce_ext_keys[i], CEB_TYPE_STRING, pc->ce_ext_values[i],
		                   strlen(pc->ce_ext_values[i]), err, errlen);
	if (rc) {
		if (rc == CEB_ENOMEM)
			snprintf(err, errlen, "out of memory");
		ceb_event_unref(ev);
		return NULL;
	}
	return ev;
}

static void tick(struct ping *pg)
{
	char err[256] = "";
	struct ceb_event *ev = make_event(pg, err, sizeof(err));
	int rc;

	if (!ev) {
		CEB_LOG_ERR(pg->env->label, "tick not sent: %s", err);
		return;
	}
	rc = pg->env->emit(pg->env->emit_arg, ev);
	if (rc == 0) {
		atomic_fetch_add(&pg->emitted, 1);
		CEB_LOG_DEBUG(pg->env->label, "tick %s", ceb_event_get(ev, "id")->value);
	} else if (rc == CEB_EFULL) {
		atomic_fetch_add(&pg->dropped, 1);
		CEB_LOG_WARN(pg->env->label,
		             "tick dropped: the source's queue is full (its sink is slow or down)");
	}
	ceb_event_unref(ev);
}

static void *ping_thread(void *arg)
{
	struct ping *pg = arg;
	struct timespec now;
	int64_t next;
	unsigned short jitter;

	clock_gettime(CLOCK_REALTIME, &now);
	next = ceb_cron_next(pg->cron, now.tv_sec);
	pthread_mutex_lock(&pg->lock);
	while (!pg->stopping) {
		struct timespec due;
		int rc = 0;

		if (next < 0) {
			CEB_LOG_WARN(
			        pg->env->label,
			        "schedule \"%s\" has no fire time within five years: the source "
			        "never ticks",
			        pg->pc->schedule);
			while (!pg->stopping)
				pthread_cond_wait(&pg->cond, &pg->lock);
			break;
		}
		if (getrandom(&jitter, sizeof(jitter), 0) != (ssize_t)sizeof(jitter))
			jitter = (unsigned short)rand();
		due.tv_sec = (time_t)next;
		due.tv_nsec = (long)(jitter % JITTER_MS) * 1000000L;
		while (!pg->stopping && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&pg->cond, &pg->lock, &due);
		if (pg->stopping)
			break;
		pthread_mutex_unlock(&pg->lock);
		tick(pg);
		/* the next tick after this one, or after now when the clock jumped or the process
		 * stalled: missed ticks are never sent late (no catch-up, as Knative) */
		clock_gettime(CLOCK_REALTIME, &now);
		next = ceb_cron_next(pg->cron, now.tv_sec > next ? now.tv_sec : next);
		pthread_mutex_lock(&pg->lock);
	}
	pthread_mutex_unlock(&pg->lock);
	return NULL;
}

static void ping_stop(void *ctx)
{
	struct ping *pg = ctx;

	if (!pg || !pg->started)
		return;
	pthread_mutex_lock(&pg->lock);
	pg->stopping = true;
	pthread_cond_broadcast(&pg->cond);
	pthread_mutex_unlock(&pg->lock);
	pthread_join(pg->thread, NULL);
	pg->started = false;
}

static void ping_destroy(void *ctx)
{
	struct ping *pg = ctx;

	if (!pg)
		return;
	ping_stop(pg);
	ceb_cron_free(pg->cron);
	pthread_mutex_destroy(&pg->lock);
	pthread_cond_destroy(&pg->cond);
	free(pg);
}

static int ping_create(const struct ceb_source_cfg *cfg, const struct ceb_source_env *env,
                       void **ctx, char *errbuf, size_t errlen)
{
	const struct ceb_ping_cfg *pc = cfg->own;
	struct ping *pg = calloc(1, sizeof(*pg));
	char err[256];
	int rc;

	if (!pg) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	pthread_mutex_init(&pg->lock, NULL);
	pthread_cond_init(&pg->cond, NULL);
	pg->pc = pc;
	pg->env = env;
	snprintf(pg->source, sizeof(pg->source), "/apis/v1/namespaces/%s/pingsources/%s", pc->ns,
	         pc->name);
	rc = ceb_cron_parse(pc->schedule, pc->timezone, &pg->cron, err, sizeof(err));
	if (rc < 0) {
		snprintf(errbuf, errlen, "%s:%d:%d: PingSource %s/%s: spec.schedule: %s",
		         pc->loc.file, pc->loc.line, pc->loc.col, pc->ns, pc->name, err);
		ping_destroy(pg);
		return rc == CEB_CRON_ENOMEM ? CEB_ENOMEM : CEB_ECONFIG;
	}
	*ctx = pg;
	return 0;
}

static int ping_start(void *ctx, char *errbuf, size_t errlen)
{
	struct ping *pg = ctx;
	char at[32] = "never (none within five years)";
	int64_t next;
	struct tm tm;
	time_t t;
	int rc;

	/* before the thread starts: the schedule's ICU calendar is the thread's from then on (a
	 * UCalendar is not thread-safe; used from both at once, it gave a tick a day late) */
	next = ceb_cron_next(pg->cron, (int64_t)time(NULL));
	if (next >= 0) {
		t = (time_t)next;
		gmtime_r(&t, &tm);
		strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	rc = pthread_create(&pg->thread, NULL, ping_thread, pg);
	if (rc) {
		snprintf(errbuf, errlen, "cannot start the PingSource thread: %s", strerror(rc));
		return CEB_EIO;
	}
	pg->started = true;
	CEB_LOG_INFO(pg->env->label, "schedule \"%s\" in %s, first tick %s", pg->pc->schedule,
	             ceb_cron_zone(pg->cron), at);
	return 0;
}

const struct source_ops ceb_source_ping = {
        .kind = PING_KIND,
        .label = "pingsource",
        .create = ping_create,
        .start = ping_start,
        .stop = ping_stop,
        .destroy = ping_destroy,
};
