/* The NATS family's resources: a NatsJetStreamBroker's ConfigMap (key eventing-nats: the connection
 * as eventing-natss's config-nats spells it; key config: stream and consumer settings as
 * eventing-natss's broker config shapes them), the same settings from the Broker's annotation
 * natsjetstream.eventing.knative.dev/config, and the NatsSource kind (sources.cebroker.dev). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/config/fields.h"
#include "broker/error.h"
#include "channels/nats/kinds.h"

extern const struct ceb_broker_config_reader ceb_broker_config_nats;
extern const struct ceb_channel_kind ceb_channel_kind_nats;

/* The one copy of the default URL: a connection whose url is this object does not own it (two
 * equal string literals need not be one object, so the comparison is with this array). */
static const char default_url[] = CEB_NATS_DEFAULT_URL;

void ceb_nats_conn_defaults(struct ceb_nats_conn *c)
{
	*c = (struct ceb_nats_conn){
	        .url = default_url, .max_reconnects = -1, .reconnect_wait_ms = 1000};
}

void ceb_nats_js_defaults(struct ceb_nats_js *js)
{
	*js = (struct ceb_nats_js){
	        .replicas = 1, .ack_wait_ms = 30000, .max_ack_pending = 1000, .nak_delay_ms = 1000};
}

/* Where errors go: the loader (located at the node), or one line into errbuf (an annotation read
 * when the channel is made, located at its resource). */
struct sink {
	struct ceb_config_res *r;
	char *errbuf;
	size_t errlen;
	const struct ceb_loc *at;
	const char *who, *base;
	int n;
};

__attribute__((format(printf, 4, 5))) static void
serr(struct sink *s, const struct ceb_yaml_node *n, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->r)
		ceb_config_err(s->r, n, path, "%s", msg);
	else if (!s->n)
		snprintf(s->errbuf, s->errlen, "%s:%d:%d: %s: %s: %s: %s", s->at->file, s->at->line,
		         s->at->col, s->who, s->base, path, msg);
	s->n++;
}

static const char *scalar(struct sink *s, const struct ceb_yaml_node *n, const char *path)
{
	if (ceb_yaml_type(n) == CEB_YAML_SCALAR && !ceb_yaml_is_null(n))
		return ceb_yaml_str(n);
	serr(s, n, path, "expected a scalar, got %s", ceb_yaml_describe(n));
	return NULL;
}

static bool get_i64(struct sink *s, const struct ceb_yaml_node *n, const char *path, int64_t min,
                    int64_t max, int64_t *out)
{
	const char *v = scalar(s, n, path);
	char *end;
	long long x;

	if (!v)
		return false;
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < min || x > max) {
		serr(s, n, path, "\"%.40s\" is not a whole number from %lld to %lld", v,
		     (long long)min, (long long)max);
		return false;
	}
	*out = x;
	return true;
}

/* A duration as Go writes it (eventing-natss's metav1.Duration: 30s, 1m30s, 500ms, 1h) or ISO 8601
 * (PT30S, Knative's DeliverySpec form). */
static bool get_dur(struct sink *s, const struct ceb_yaml_node *n, const char *path, int64_t *ms)
{
	const char *v = scalar(s, n, path), *p;
	double total = 0;
	uint64_t iso;

	if (!v)
		return false;
	if ((v[0] == 'P' || v[0] == 'p') && ceb_duration_parse(v, &iso) == 0) {
		*ms = (int64_t)iso;
		return true;
	}
	for (p = v; *p;) {
		char *end;
		double x;
		errno = 0;
		x = strtod(p, &end);
		if (end == p || errno || x < 0)
			goto bad;
		p = end;
		if (!strncmp(p, "ms", 2))
			total += x, p += 2;
		else if (!strncmp(p, "us", 2))
			total += x / 1000, p += 2;
		else if (!strncmp(p, "ns", 2))
			total += x / 1e6, p += 2;
		else if (*p == 'h')
			total += x * 3600000, p++;
		else if (*p == 'm')
			total += x * 60000, p++;
		else if (*p == 's')
			total += x * 1000, p++;
		else if (!*p && x == 0)
			break;
		else
			goto bad;
	}
	if (p == v)
		goto bad;
	*ms = (int64_t)total;
	return true;
bad:
	serr(s, n, path, "\"%.40s\" is not a duration (30s, 1m30s, 500ms, PT30S)", v);
	return false;
}

static int get_choice(struct sink *s, const struct ceb_yaml_node *n, const char *path,
                      const char *const *names, const char *shown)
{
	const char *v = scalar(s, n, path);

	if (!v)
		return -1;
	for (int i = 0; names[i]; i++)
		if (strcasecmp(v, names[i]) == 0)
			return i;
	serr(s, n, path, "\"%.40s\" is not one of %s", v, shown);
	return -1;
}

/* Check a mapping's keys against names; vals[i] gets names[i]'s value. */
static bool fields(struct sink *s, const struct ceb_yaml_node *map, const char *path,
                   const char *const *names, const struct ceb_yaml_node **vals)
{
	size_t nn = 0;
	char p[256], known[512] = "";

	while (names[nn])
		vals[nn++] = NULL;
	if (ceb_yaml_type(map) != CEB_YAML_MAP) {
		serr(s, map, path, "expected a mapping, got %s", ceb_yaml_describe(map));
		return false;
	}
	for (size_t i = 0; i < nn; i++)
		snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
		         i ? ", " : "", names[i]);
	for (size_t i = 0; i < ceb_yaml_size(map); i++) {
		const struct ceb_yaml_node *k = ceb_yaml_map_key(map, i);
		const char *ks = ceb_yaml_type(k) == CEB_YAML_SCALAR ? ceb_yaml_str(k) : NULL;
		size_t f;
		for (f = 0; ks && f < nn && strcmp(ks, names[f]); f++)
			;
		if (ks && f < nn) {
			const struct ceb_yaml_node *v = ceb_yaml_map_value(map, i);
			vals[f] = ceb_yaml_is_null(v) ? NULL : v;
			continue;
		}
		snprintf(p, sizeof(p), "%s%s%s", path, *path ? "." : "", ks ? ks : "?");
		serr(s, k, p, "unknown field (known: %s)", known);
	}
	return true;
}

/* {stream: {...}, consumer: {...}} over *js. */
static void read_js(struct sink *s, const struct ceb_yaml_node *root, const char *base,
                    struct ceb_nats_js *js)
{
	static const char *const top[] = {"stream", "consumer", "ingress", "filter", NULL};
	static const char *const sf[] = {"retention", "storage", "replicas",        "maxAge",
	                                 "maxBytes",  "maxMsgs", "duplicateWindow", NULL};
	static const char *const cf[] = {"ackWait", "maxAckPending", "nakDelay", NULL};
	static const char *const retentions[] = {"Limits", "Interest", "WorkQueue", NULL};
	static const char *const storages[] = {"File", "Memory", NULL};
	const struct ceb_yaml_node *v[8], *sv[8], *cv[4];
	char p[256];
	int64_t x;
	int i;

	if (!fields(s, root, base, top, v))
		return;
#define P(f) (snprintf(p, sizeof(p), "%s%s%s", base, *base ? "." : "", f), p)
	if (v[0] && fields(s, v[0], P("stream"), sf, sv)) {
		if (sv[0] && (i = get_choice(s, sv[0], P("stream.retention"), retentions,
		                             "Limits, Interest, WorkQueue")) >= 0)
			js->retention = i;
		if (sv[1] &&
		    (i = get_choice(s, sv[1], P("stream.storage"), storages, "File, Memory")) >= 0)
			js->storage = i;
		if (sv[2] && get_i64(s, sv[2], P("stream.replicas"), 1, 5, &x))
			js->replicas = (int)x;
		if (sv[3])
			get_dur(s, sv[3], P("stream.maxAge"), &js->max_age_ms);
		if (sv[4])
			get_i64(s, sv[4], P("stream.maxBytes"), -1, INT64_MAX, &js->max_bytes);
		if (sv[5])
			get_i64(s, sv[5], P("stream.maxMsgs"), -1, INT64_MAX, &js->max_msgs);
		if (sv[6])
			get_dur(s, sv[6], P("stream.duplicateWindow"), &js->dup_window_ms);
	}
	if (v[1] && fields(s, v[1], P("consumer"), cf, cv)) {
		if (cv[0] && get_dur(s, cv[0], P("consumer.ackWait"), &x)) {
			if (x < 1000)
				serr(s, cv[0], p, "must be at least 1s");
			else
				js->ack_wait_ms = x;
		}
		if (cv[1])
			get_i64(s, cv[1], P("consumer.maxAckPending"), 1, 1000000,
			        &js->max_ack_pending);
		if (cv[2] && get_dur(s, cv[2], P("consumer.nakDelay"), &x)) {
			if (x < 100)
				serr(s, cv[2], p,
				     "must be at least 100ms: a NAK never loops at once");
			else
				js->nak_delay_ms = x;
		}
	}
#undef P
}

struct doc {
	struct sink *s;
	const char *base;
	void (*fn)(struct sink *s, const struct ceb_yaml_node *root, const char *base, void *arg);
	void *arg;
	int docs;
};

static int on_doc(void *arg, const struct ceb_yaml_node *root)
{
	struct doc *d = arg;

	if (d->docs++ == 0)
		d->fn(d->s, root, d->base, d->arg);
	return 0;
}

static int on_error(void *arg, int line, int col, const char *msg)
{
	struct doc *d = arg;

	if (d->s->r) {
		struct ceb_loc at = {d->s->r->file, line, col};
		ceb_config_err_at(d->s->r, &at, d->base, "%s", msg);
		d->s->n++;
	} else {
		serr(d->s, NULL, d->base, "%s", msg);
	}
	return 0;
}

static void js_doc(struct sink *s, const struct ceb_yaml_node *root, const char *base, void *arg)
{
	(void)base;
	read_js(s, root, base, arg);
}

int ceb_nats_js_annotation(const char *text, const struct ceb_loc *at, const char *who,
                           struct ceb_nats_js *js, char *errbuf, size_t errlen)
{
	struct sink s = {NULL, errbuf, errlen,
	                 at,   who,    "metadata.annotations[\"" CEB_NATS_CONFIG_ANNOT "\"]",
	                 0};
	struct doc d = {&s, "", js_doc, js, 0};
	const struct ceb_yaml_handler h = {on_doc, on_error, &d};

	ceb_yaml_load_buffer(text, strlen(text), &h);
	return s.n ? CEB_ECONFIG : 0;
}

/* ---- the ConfigMap ---- */

static void broker_free(void *parsed)
{
	struct ceb_nats_broker_cfg *nb = parsed;

	if (!nb)
		return;
	if (nb->conn.url != default_url)
		free((char *)nb->conn.url);
	free((char *)nb->conn.ca_pem);
	free((char *)nb->conn.cert_pem);
	if (nb->conn.key_pem)
		memset((char *)nb->conn.key_pem, 0, strlen(nb->conn.key_pem));
	free((char *)nb->conn.key_pem);
	free((char *)nb->conn.jwt);
	if (nb->conn.seed)
		memset((char *)nb->conn.seed, 0, strlen(nb->conn.seed));
	free((char *)nb->conn.seed);
	free(nb);
}

/* The Secret a config-nats value names (in the ConfigMap's namespace), or NULL (reported). */
static const struct ceb_secret *named_secret(struct sink *s, const struct ceb_yaml_node *n,
                                             const char *path)
{
	const struct ceb_secret *sec;
	const char *name = scalar(s, n, path);

	if (!name)
		return NULL;
	if (!s->r) {
		serr(s, n, path, "a Secret is read only from a ConfigMap");
		return NULL;
	}
	sec = ceb_config_loaded_secret(s->r, s->r->ns, name);
	if (!sec)
		serr(s, n, path, "Secret %s/%s not found", s->r->ns, name);
	return sec;
}

/* A key of a Secret, copied, or NULL (reported at n). */
static const char *secret_key(struct sink *s, const struct ceb_yaml_node *n, const char *path,
                              const struct ceb_secret *sec, const char *key)
{
	const char *v = ceb_secret_get(sec, key, NULL);

	if (!v) {
		serr(s, n, path, "Secret %s/%s has no key \"%s\"", sec->ns, sec->name, key);
		return NULL;
	}
	return ceb_config_strdup(s->r, v);
}

/* The text between a creds file's "-----BEGIN <what>-----" line and its end marker, as one token
 * (a JWT or a seed), copied; NULL when absent. */
static char *creds_part(const char *text, const char *what)
{
	char begin[64];
	const char *p, *e;
	char *out;

	snprintf(begin, sizeof(begin), "-----BEGIN %s-----", what);
	if (!(p = strstr(text, begin)))
		return NULL;
	p += strlen(begin);
	p += strspn(p, " \t\r\n");
	e = p + strcspn(p, " \t\r\n"); /* a JWT holds - and _ */
	if (e == p || !(out = malloc((size_t)(e - p) + 1)))
		return NULL;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return out;
}

/* auth: credentialFile.secret {name, key} (a NATS creds file), tls.secret.name (mTLS). */
static void auth_doc(struct sink *s, const struct ceb_yaml_node *n, const char *base,
                     struct ceb_nats_conn *c)
{
	static const char *const af[] = {"credentialFile", "tls", NULL};
	static const char *const sf[] = {"secret", NULL};
	static const char *const nk[] = {"name", "key", NULL};
	static const char *const nf[] = {"name", NULL};
	const struct ceb_yaml_node *av[2], *sv[1], *kv[2];
	const struct ceb_secret *sec;
	const char *text, *key;
	char p[320];

#define P(f) (snprintf(p, sizeof(p), "%s.%s", base, f), p)
	if (!fields(s, n, base, af, av))
		return;
	if (av[0] && fields(s, av[0], P("credentialFile"), sf, sv) && sv[0] &&
	    fields(s, sv[0], P("credentialFile.secret"), nk, kv)) {
		if (!kv[0] || !kv[1]) {
			serr(s, sv[0], P("credentialFile.secret"), "needs name and key");
		} else if ((sec = named_secret(s, kv[0], P("credentialFile.secret.name"))) &&
		           (key = scalar(s, kv[1], P("credentialFile.secret.key")))) {
			text = ceb_secret_get(sec, key, NULL);
			if (!text) {
				serr(s, kv[1], p, "Secret %s/%s has no key \"%s\"", sec->ns,
				     sec->name, key);
			} else {
				c->jwt = creds_part(text, "NATS USER JWT");
				c->seed = creds_part(text, "USER NKEY SEED");
				if (!c->jwt || !c->seed)
					serr(s, kv[1], p,
					     "Secret %s/%s key %s: not a NATS creds file (a user "
					     "JWT "
					     "and an nkey seed, as nsc writes it)",
					     sec->ns, sec->name, key);
			}
		}
	}
	if (av[1] && fields(s, av[1], P("tls"), sf, sv) && sv[0] &&
	    fields(s, sv[0], P("tls.secret"), nf, kv) && kv[0] &&
	    (sec = named_secret(s, kv[0], P("tls.secret.name")))) {
		c->cert_pem = secret_key(s, kv[0], p, sec, "tls.crt");
		c->key_pem = secret_key(s, kv[0], p, sec, "tls.key");
	}
#undef P
}

static void conn_doc(struct sink *s, const struct ceb_yaml_node *root, const char *base, void *arg)
{
	static const char *const top[] = {"url", "auth", "tls", "connOpts", NULL};
	static const char *const tf[] = {"caBundle", "secret", NULL};
	static const char *const of[] = {
	        "retryOnFailedConnect",           "maxReconnects",
	        "reconnectWaitMilliseconds",      "reconnectJitterMilliseconds",
	        "reconnectJitterTLSMilliseconds", NULL};
	struct ceb_nats_conn *c = arg;
	const struct ceb_yaml_node *v[4], *tv[2], *ov[5];
	const char *u;
	char p[256];
	int64_t x;

#define P(f) (snprintf(p, sizeof(p), "%s.%s", base, f), p)
	if (!fields(s, root, base, top, v))
		return;
	if (v[0] && (u = scalar(s, v[0], P("url")))) {
		if (strncmp(u, "nats://", 7) && strncmp(u, "tls://", 6))
			serr(s, v[0], p, "\"%.60s\" is not a nats:// or tls:// URL", u);
		else if (!(c->url = ceb_config_strdup(s->r, u)))
			c->url = default_url;
	}
	if (v[1])
		auth_doc(s, v[1], P("auth"), c);
	if (v[2] && fields(s, v[2], P("tls"), tf, tv)) {
		static const char *const nf[] = {"name", NULL};
		const struct ceb_yaml_node *nv[1];
		const struct ceb_secret *sec;

		if (tv[0] && (u = scalar(s, tv[0], P("tls.caBundle"))))
			c->ca_pem = ceb_config_strdup(s->r, u);
		if (tv[1] && fields(s, tv[1], P("tls.secret"), nf, nv) && nv[0] &&
		    (sec = named_secret(s, nv[0], P("tls.secret.name")))) {
			if (c->ca_pem)
				serr(s, tv[1], P("tls.secret"),
				     "give tls.caBundle or tls.secret, not both");
			else
				c->ca_pem = secret_key(s, nv[0], p, sec, "ca.crt");
		}
	}
	if (v[3] && fields(s, v[3], P("connOpts"), of, ov)) {
		if (ov[0] && (u = scalar(s, ov[0], P("connOpts.retryOnFailedConnect")))) {
			if (strcmp(u, "true") && strcmp(u, "false"))
				serr(s, ov[0], p, "expected true or false");
			c->retry_on_failed_connect = !strcmp(u, "true");
		}
		if (ov[1] && get_i64(s, ov[1], P("connOpts.maxReconnects"), -1, 1000000, &x))
			c->max_reconnects = (int)x;
		if (ov[2] &&
		    get_i64(s, ov[2], P("connOpts.reconnectWaitMilliseconds"), 0, 3600000, &x))
			c->reconnect_wait_ms = (int)x;
		if (ov[3] &&
		    get_i64(s, ov[3], P("connOpts.reconnectJitterMilliseconds"), 0, 3600000, &x))
			c->jitter_ms = (int)x;
		if (ov[4] &&
		    get_i64(s, ov[4], P("connOpts.reconnectJitterTLSMilliseconds"), 0, 3600000, &x))
			c->jitter_tls_ms = (int)x;
	}
#undef P
}

static void
read_value(struct sink *s, const struct ceb_configmap *cm, size_t i, const char *base,
           void (*fn)(struct sink *, const struct ceb_yaml_node *, const char *, void *), void *arg)
{
	struct doc d = {s, base, fn, arg, 0};
	const struct ceb_yaml_handler h = {on_doc, on_error, &d};
	struct ceb_yaml_origin o = {cm->loc.line, cm->loc.col, false};

	if (cm->at)
		o = cm->at[i];
	ceb_yaml_load_buffer_at(cm->values[i], strlen(cm->values[i]), &o, &h);
}

static void nats_broker_read(struct ceb_config_res *r, struct ceb_configmap *cm,
                             const struct ceb_loc *config_at)
{
	struct ceb_config_res cr;
	struct ceb_nats_broker_cfg *nb;
	struct sink s = {0};
	char p[512];

	(void)config_at;
	if (!cm || cm->backend_reader == &ceb_broker_config_nats)
		return; /* no spec.config: the defaults (nats://127.0.0.1:4222) */
	if (cm->backend) {
		ceb_config_err_at(r, config_at, "spec.config",
		                  "ConfigMap %s/%s holds another backend's Broker settings; a "
		                  "NatsJetStreamBroker needs a ConfigMap of its own",
		                  cm->ns, cm->name);
		return;
	}
	if (!(nb = calloc(1, sizeof(*nb)))) {
		ceb_config_oom(r);
		return;
	}
	ceb_nats_conn_defaults(&nb->conn);
	ceb_nats_js_defaults(&nb->js);
	cm->backend = nb;
	cm->backend_reader = &ceb_broker_config_nats;
	cr = (struct ceb_config_res){.ld = r->ld, .file = cm->loc.file, .ns = cm->ns};
	snprintf(cr.who, sizeof(cr.who), "ConfigMap %s/%s", cm->ns, cm->name);
	s.r = &cr;
	for (size_t i = 0; i < cm->n && !ceb_config_is_oom(r); i++) {
		struct ceb_loc at = cm->loc;
		if (cm->at)
			at = (struct ceb_loc){cm->loc.file, cm->at[i].line, cm->at[i].col};
		ceb_config_path_key(p, sizeof(p), "data", cm->keys[i]);
		if (!strcmp(cm->keys[i], "eventing-nats"))
			read_value(&s, cm, i, p, conn_doc, &nb->conn);
		else if (!strcmp(cm->keys[i], "config"))
			read_value(&s, cm, i, p, js_doc, &nb->js);
		else
			ceb_config_note_at(&cr, true, &at, p,
			                   "not a NatsJetStreamBroker setting, ignored (keys: "
			                   "eventing-nats, config)");
	}
}

const struct ceb_broker_config_reader ceb_broker_config_nats = {
        .channel = "nats", .read = nats_broker_read, .free = broker_free};

/* ---- NatsJetStreamChannel ---- */

static void nats_channel_free(void *spec)
{
	struct ceb_nats_channel_cfg *c = spec;

	if (c)
		free(c->stream);
	free(c);
}

/* spec.stream {overrideName, config {...}} and spec.consumerConfigTemplate {...}. */
static void *nats_channel_read(struct ceb_config_res *r, const struct ceb_yaml_node *const *vals,
                               const char *path)
{
	static const char *const stf[] = {"overrideName", "config", NULL};
	static const char *const scf[] = {"retention", "storage", "replicas",        "maxAge",
	                                  "maxBytes",  "maxMsgs", "duplicateWindow", NULL};
	/* maxDeliver, consumerType, fetchMaxWait and fetchBatchSize are read past, as
	 * eventing-natss's dispatcher does (retries are the Subscription's delivery; consumers
	 * here pull) */
	static const char *const cf[] = {
	        "deliverPolicy", "ackWait",      "maxAckPending",  "maxDeliver",
	        "consumerType",  "fetchMaxWait", "fetchBatchSize", NULL};
	static const char *const retentions[] = {"Limits", "Interest", "Work", NULL};
	static const char *const storages[] = {"File", "Memory", NULL};
	static const char *const policies[] = {"All", "New", NULL};
	struct ceb_nats_channel_cfg *c = calloc(1, sizeof(*c));
	const struct ceb_yaml_node *sv[2], *cv[8], *kv[8];
	struct sink s = {.r = r};
	const char *u;
	char p[512];
	int64_t x;
	int i;

	if (!c) {
		ceb_config_oom(r);
		return NULL;
	}
	ceb_nats_js_defaults(&c->js);
#define P(f) (snprintf(p, sizeof(p), "%s.%s", path, f), p)
	if (vals[0] && fields(&s, vals[0], P("stream"), stf, sv)) {
		if (sv[0] && (u = scalar(&s, sv[0], P("stream.overrideName"))))
			c->stream = ceb_config_strdup(r, u);
		if (sv[1] && fields(&s, sv[1], P("stream.config"), scf, cv)) {
			if (cv[0] && (i = get_choice(&s, cv[0], P("stream.config.retention"),
			                             retentions, "Limits, Interest, Work")) >= 0)
				c->js.retention = i;
			if (cv[1] && (i = get_choice(&s, cv[1], P("stream.config.storage"),
			                             storages, "File, Memory")) >= 0)
				c->js.storage = i;
			if (cv[2] && get_i64(&s, cv[2], P("stream.config.replicas"), 1, 5, &x))
				c->js.replicas = (int)x;
			if (cv[3])
				get_dur(&s, cv[3], P("stream.config.maxAge"), &c->js.max_age_ms);
			if (cv[4])
				get_i64(&s, cv[4], P("stream.config.maxBytes"), -1, INT64_MAX,
				        &c->js.max_bytes);
			if (cv[5])
				get_i64(&s, cv[5], P("stream.config.maxMsgs"), -1, INT64_MAX,
				        &c->js.max_msgs);
			if (cv[6])
				get_dur(&s, cv[6], P("stream.config.duplicateWindow"),
				        &c->js.dup_window_ms);
		}
	}
	if (vals[1] && fields(&s, vals[1], P("consumerConfigTemplate"), cf, kv)) {
		/* a Subscription's consumer is made with the channel: All and New start alike */
		if (kv[0])
			get_choice(&s, kv[0], P("consumerConfigTemplate.deliverPolicy"), policies,
			           "All, New");
		if (kv[1] && get_dur(&s, kv[1], P("consumerConfigTemplate.ackWait"), &x)) {
			if (x < 1000)
				serr(&s, kv[1], p, "must be at least 1s");
			else
				c->js.ack_wait_ms = x;
		}
		if (kv[2])
			get_i64(&s, kv[2], P("consumerConfigTemplate.maxAckPending"), 1, 1000000,
			        &c->js.max_ack_pending);
	}
#undef P
	return c;
}

/* The connection: config-nats (key eventing-nats) of the channel's namespace, else of
 * knative-eventing, read as a Broker's ConfigMap; without one, the defaults (nats://127.0.0.1:4222). */
static void nats_channel_resolve(struct ceb_config_res *r, struct ceb_msg_channel *ch,
                                 const struct ceb_config *cfg)
{
	struct ceb_nats_channel_cfg *c = ch->backend_spec;

	if (!c)
		return; /* reported */
	/* the channel's namespace first (eventing-natss's namespace-scoped dispatchers) */
	for (int pass = 0; pass < 2; pass++)
		for (struct ceb_configmap *m = cfg->configmaps; m; m = m->next)
			if (!strcmp(m->ns, pass ? "knative-eventing" : ch->ns) &&
			    !strcmp(m->name, "config-nats")) {
				nats_broker_read(r, m, &ch->ep.loc);
				if (m->backend_reader == &ceb_broker_config_nats)
					c->settings = m;
				return;
			}
}

static void parse_nats_channel(struct ceb_config_res *r, struct ceb_config_meta *md,
                               const struct ceb_yaml_node *root,
                               const struct ceb_yaml_node *const *vals)
{
	ceb_config_parse_channel_kind(r, md, root, vals, &ceb_channel_kind_nats,
	                              "messaging.knative.dev/v1alpha1");
}

static const char *const nats_channel_fields[] = {"stream", "consumerConfigTemplate", NULL};
static const char *const messaging_v1alpha1[] = {"messaging.knative.dev/v1alpha1", NULL};
static const char *const nats_channel_top[] = {"spec", NULL};

const struct ceb_channel_kind ceb_channel_kind_nats = {CEB_NATS_CHANNEL_KIND, nats_channel_fields,
                                                       nats_channel_read, nats_channel_free,
                                                       nats_channel_resolve};
const struct ceb_kind ceb_kind_nats_jetstream_channel = {
        messaging_v1alpha1, CEB_NATS_CHANNEL_KIND, nats_channel_top, parse_nats_channel, true};
