/* The RabbitMQ family's resource kinds, as Knative's eventing-rabbitmq has them: RabbitmqBrokerConfig
 * (a RabbitMQBroker's settings, named by its spec.config) and RabbitmqSource (a queue's messages to a
 * sink); and how their connectionSecret becomes a connection. Listed in broker/config/kinds.h.
 * Compiled in every build (no rabbitmq-c here): a build without the amqp channel says so where a
 * resource needs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/config/config.h"
#include "broker/config/fields.h"
#include "broker/config/yaml.h"
#include "broker/error.h"
#include "channels/amqp/kinds.h"
#include "channels/channel.h"

#define SECRET_PATH "spec.rabbitmqClusterReference.connectionSecret"

/* ---- connections ---- */

void ceb_amqp_conn_free(struct ceb_amqp_conn *c)
{
	free(c->host);
	free(c->user);
	if (c->password)
		memset(c->password, 0, strlen(c->password));
	free(c->password);
	free(c->vhost);
	free(c->ca_pem);
	memset(c, 0, sizeof(*c));
}

int ceb_amqp_conn_copy(struct ceb_amqp_conn *dst, const struct ceb_amqp_conn *src)
{
	*dst = (struct ceb_amqp_conn){
	        .host = strdup(src->host),
	        .port = src->port,
	        .user = strdup(src->user ? src->user : "guest"),
	        .password = strdup(src->password ? src->password : "guest"),
	        .vhost = strdup(src->vhost ? src->vhost : "/"),
	        .tls = src->tls,
	        .ca_pem = src->ca_pem ? strdup(src->ca_pem) : NULL,
	};
	if (!dst->host || !dst->user || !dst->password || !dst->vhost ||
	    (src->ca_pem && !dst->ca_pem)) {
		ceb_amqp_conn_free(dst);
		return CEB_ENOMEM;
	}
	return 0;
}

/* A percent-decoded copy of s[0..n). */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t k = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && ceb_hex_digit(s[i + 1]) >= 0 &&
		    ceb_hex_digit(s[i + 2]) >= 0) {
			out[k++] = (char)(ceb_hex_digit(s[i + 1]) * 16 + ceb_hex_digit(s[i + 2]));
			i += 2;
		} else {
			out[k++] = s[i];
		}
	}
	out[k] = '\0';
	return out;
}

/* scheme://[user[:password]@]host[:port][/vhost]. 0, or why not (never the value). */
static const char *parse_uri(const char *uri, struct ceb_amqp_conn *c, bool *http)
{
	const char *p, *auth_end, *host, *host_end, *path;
	size_t slen;

	if (!strncasecmp(uri, "amqp://", 7)) {
		c->tls = false;
		*http = false;
		slen = 7;
	} else if (!strncasecmp(uri, "amqps://", 8)) {
		c->tls = true;
		*http = false;
		slen = 8;
	} else if (!strncasecmp(uri, "http://", 7)) {
		c->tls = false;
		*http = true;
		slen = 7;
	} else if (!strncasecmp(uri, "https://", 8)) {
		c->tls = true;
		*http = true;
		slen = 8;
	} else {
		return "not an amqp://, amqps://, http:// or https:// URI";
	}
	p = uri + slen;
	path = p + strcspn(p, "/?#");
	auth_end = memchr(p, '@', (size_t)(path - p));
	host = auth_end ? auth_end + 1 : p;
	if (auth_end && !*http) {
		const char *colon = memchr(p, ':', (size_t)(auth_end - p));
		c->user = pct_decode(p, (size_t)((colon ? colon : auth_end) - p));
		if (colon)
			c->password = pct_decode(colon + 1, (size_t)(auth_end - colon - 1));
	}
	if (*host == '[') { /* an IPv6 literal */
		const char *end = memchr(host, ']', (size_t)(path - host));
		if (!end)
			return "an IPv6 host without its closing ']'";
		c->host = pct_decode(host + 1, (size_t)(end - host - 1));
		host_end = end + 1;
	} else {
		host_end = memchr(host, ':', (size_t)(path - host));
		if (!host_end)
			host_end = path;
		c->host = pct_decode(host, (size_t)(host_end - host));
	}
	if (!c->host || !*c->host)
		return "no host";
	if (host_end < path && *host_end == ':' && !*http) {
		char *end;
		long port = strtol(host_end + 1, &end, 10);
		if (end != path || port < 1 || port > 65535)
			return "a port that is not 1 to 65535";
		c->port = (int)port;
	}
	if (*path == '/' && path[1] && !*http) {
		size_t n = strcspn(path + 1, "?#");
		c->vhost = pct_decode(path + 1, n);
	}
	return NULL;
}

int ceb_rabbitmq_conn(const struct ceb_rabbitmq_cluster_ref *ref, const char *vhost,
                      struct ceb_amqp_conn *out, char *errbuf, size_t errlen)
{
	const struct ceb_secret *s = ref->secret.secret;
	const char *uri, *user, *password, *port, *ca, *why = NULL;
	struct ceb_amqp_conn c = {0};
	bool http = false;
	char where[700];
	int rc = CEB_ECONFIG;

	snprintf(where, sizeof(where), "%s:%d:%d: %s: " SECRET_PATH ": Secret %s/%s",
	         ref->secret.at.file ? ref->secret.at.file : "?", ref->secret.at.line,
	         ref->secret.at.col, ref->resource ? ref->resource : "?",
	         ref->secret.ns ? ref->secret.ns : "?", ref->secret.name ? ref->secret.name : "?");
	if (!s) { /* the loader reported it */
		snprintf(errbuf, errlen, "%s: not found", where);
		return CEB_ECONFIG;
	}
	uri = ceb_secret_get(s, "uri", NULL);
	user = ceb_secret_get(s, "username", NULL);
	password = ceb_secret_get(s, "password", NULL);
	port = ceb_secret_get(s, "port", NULL);
	ca = ceb_secret_get(s, "ca.crt", NULL);
	if (ceb_secret_get(s, "caSecretName", NULL)) {
		/* eventing-rabbitmq mounts that Secret as a CA directory of the pod */
		snprintf(errbuf, errlen,
		         "%s: key caSecretName: not supported: put the CA's PEM under the key "
		         "ca.crt "
		         "of this Secret",
		         where);
		return CEB_ECONFIG;
	}
	if (!uri) {
		snprintf(errbuf, errlen,
		         "%s: no key uri (the AMQP URI amqp[s]://user:password@host:port, or the "
		         "management URI http[s]://host with keys username, password and port)",
		         where);
		return CEB_ECONFIG;
	}
	c.port = 0;
	why = parse_uri(uri, &c, &http);
	if (why) {
		snprintf(errbuf, errlen, "%s: key uri: %s", where, why);
		goto out;
	}
	if (http && (!user || !password)) {
		snprintf(errbuf, errlen,
		         "%s: a management (http) uri needs the keys username and password", where);
		goto out;
	}
	if (user) {
		free(c.user);
		c.user = strdup(user);
	}
	if (password) {
		if (c.password)
			memset(c.password, 0, strlen(c.password));
		free(c.password);
		c.password = strdup(password);
	}
	if (port && (http || !c.port)) {
		char *end;
		long v = strtol(port, &end, 10);
		if (!*port || *end || v < 1 || v > 65535) {
			snprintf(errbuf, errlen, "%s: key port: not a port (1 to 65535)", where);
			goto out;
		}
		c.port = (int)v;
	}
	if (!c.port)
		c.port = c.tls && !http ? 5671 : 5672;
	if (vhost) {
		free(c.vhost);
		c.vhost = strdup(vhost);
	}
	if (ca && !strstr(ca, "-----BEGIN CERTIFICATE-----")) {
		snprintf(errbuf, errlen, "%s: key ca.crt: not PEM certificates", where);
		goto out;
	}
	if (ca && !c.tls) {
		snprintf(errbuf, errlen,
		         "%s: key ca.crt: given for a connection without TLS (the uri is not "
		         "amqps:// or https://)",
		         where);
		goto out;
	}
	c.ca_pem = ca ? strdup(ca) : NULL;
	rc = ceb_amqp_conn_copy(out, &c);
	if (rc < 0)
		snprintf(errbuf, errlen, "out of memory");
out:
	ceb_amqp_conn_free(&c);
	return rc;
}

/* ---- what both kinds read ---- */

static void amqp_compiled(struct ceb_config_res *r, const struct ceb_yaml_node *root,
                          const char *kind)
{
	if (!ceb_channel_ops_find("amqp"))
		ceb_config_err(r, ceb_yaml_map_get(root, "kind"), "kind",
		               "a %s needs the amqp channel, which this build does not include "
		               "(configure found no librabbitmq)",
		               kind);
}

/* spec.rabbitmqClusterReference at n: connectionSecret only. */
static void parse_cluster_ref(struct ceb_config_res *r, const struct ceb_yaml_node *spec,
                              const struct ceb_yaml_node *n, struct ceb_rabbitmq_cluster_ref *ref)
{
	static const char *const fields[] = {"name", "namespace", "connectionSecret", NULL};
	static const char *const secret_fields[] = {"name", NULL};
	const struct ceb_yaml_node *v[3], *sv[1];
	char *ns = NULL, *name = NULL;

	ref->resource_buf = ceb_config_strdup(r, r->who);
	ref->resource = ref->resource_buf;
	if (!n) {
		ceb_config_err(r, spec, "spec.rabbitmqClusterReference", "required field missing");
		return;
	}
	if (!ceb_config_get_fields(r, n, "spec.rabbitmqClusterReference", fields, v, NULL))
		return;
	if (v[0]) {
		ceb_config_err(
		        r, v[0], "spec.rabbitmqClusterReference.name",
		        "a RabbitmqCluster of the RabbitMQ operator is not reachable without "
		        "Kubernetes: use connectionSecret, a Secret with the keys uri, username, "
		        "password and port");
		return;
	}
	if (!v[2]) {
		ceb_config_err(r, n, SECRET_PATH, "required field missing");
		return;
	}
	if (v[1] && !ceb_config_get_str(r, v[1], "spec.rabbitmqClusterReference.namespace", &ns))
		return;
	if (ceb_config_get_fields(r, v[2], SECRET_PATH, secret_fields, sv, NULL)) {
		if (!sv[0])
			ceb_config_err(r, v[2], SECRET_PATH ".name", "required field missing");
		else if (ceb_config_get_str(r, sv[0], SECRET_PATH ".name", &name))
			ceb_config_secret_ref(r, v[2], SECRET_PATH, ns, name, NULL, &ref->secret);
	}
	free(ns);
	free(name);
}

static void cluster_ref_free(struct ceb_rabbitmq_cluster_ref *ref)
{
	ceb_secret_ref_free(&ref->secret);
	free(ref->resource_buf);
}

/* A RabbitMQ name (exchange, queue, vhost): at most 255 bytes, as AMQP's short strings. */
static void get_amqp_name(struct ceb_config_res *r, const struct ceb_yaml_node *n, const char *path,
                          bool nonempty, char **out)
{
	char *s = NULL;

	if (!ceb_config_get_str(r, n, path, &s))
		return;
	if (strlen(s) > 255 || (nonempty && !*s)) {
		ceb_config_err(r, n, path, "%s", *s ? "longer than 255 bytes" : "empty");
		free(s);
		return;
	}
	free(*out);
	*out = s;
}

/* ---- RabbitmqBrokerConfig ---- */

static void broker_config_free(void *own)
{
	struct ceb_rabbitmq_broker_config *rb = own;

	if (!rb)
		return;
	free(rb->ns);
	free(rb->name);
	cluster_ref_free(&rb->cluster);
	free(rb->vhost);
	ceb_amqp_conn_free(&rb->direct);
	free(rb);
}

static void parse_broker_config(struct ceb_config_res *r, struct ceb_config_meta *md,
                                const struct ceb_yaml_node *root,
                                const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"rabbitmqClusterReference", "queueType", "vhost",
	                                          NULL};
	static const char *const queue_types[] = {"quorum", "classic", NULL};
	const struct ceb_yaml_node *v[3];
	struct ceb_rabbitmq_broker_config *rb;
	char *qt = NULL, q[80];

	if (!md->name)
		return;
	rb = calloc(1, sizeof(*rb));
	if (!rb) {
		ceb_config_oom(r);
		return;
	}
	rb->ns = md->ns;
	rb->name = md->name;
	md->ns = md->name = NULL;
	rb->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	rb->object = (struct ceb_config_object){.kind = CEB_RABBITMQ_BROKER_CONFIG_KIND,
	                                        .ns = rb->ns,
	                                        .name = rb->name,
	                                        .own = rb,
	                                        .own_free = broker_config_free};
	ceb_config_add_object(r, &rb->object);
	ceb_config_add_entry(r, CEB_RABBITMQ_BROKER_CONFIG_KIND, rb->ns, rb->name, md, rb);
	amqp_compiled(r, root, CEB_RABBITMQ_BROKER_CONFIG_KIND);
	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a RabbitmqBrokerConfig needs "
		               "spec.rabbitmqClusterReference.connectionSecret)");
		return;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		return;
	parse_cluster_ref(r, vals[0], v[0], &rb->cluster);
	if (v[1] && ceb_config_get_str(r, v[1], "spec.queueType", &qt)) {
		if (!strcmp(qt, "classic"))
			rb->classic = true;
		else if (strcmp(qt, queue_types[0]))
			ceb_config_err(r, v[1], "spec.queueType",
			               "\"%s\" is not a queue type (quorum or classic)",
			               ceb_config_quoted(q, sizeof(q), qt));
		free(qt);
	}
	if (v[2])
		get_amqp_name(r, v[2], "spec.vhost", true, &rb->vhost);
}

/* ---- RabbitmqSource ---- */

static void source_free(void *own)
{
	struct ceb_rabbitmq_source_cfg *src = own;

	if (!src)
		return;
	free(src->ns);
	free(src->name);
	cluster_ref_free(&src->cluster);
	free(src->queue);
	free(src->exchange);
	free(src->vhost);
	ceb_config_dest_free(&src->sink);
	ceb_config_delivery_free(&src->delivery);
	ceb_config_strv_free(src->ce_ext_keys, src->nce_ext);
	ceb_config_strv_free(src->ce_ext_values, src->nce_ext);
	ceb_amqp_conn_free(&src->direct);
	free(src);
}

static void parse_resources(struct ceb_config_res *r, const struct ceb_yaml_node *spec,
                            const struct ceb_yaml_node *n, struct ceb_rabbitmq_source_cfg *src)
{
	static const char *const fields[] = {"queueName",   "exchangeName", "predeclared",
	                                     "parallelism", "vhost",        NULL};
	const struct ceb_yaml_node *v[5];
	const char *base = "spec.rabbitmqResourcesConfig";
	char p[128];

	if (!n) {
		ceb_config_err(r, spec, base, "required field missing (queueName at least)");
		return;
	}
	if (!ceb_config_get_fields(r, n, base, fields, v, NULL))
		return;
	if (v[2])
		ceb_config_get_bool(r, v[2], ceb_config_path_key(p, sizeof(p), base, "predeclared"),
		                    &src->predeclared);
	if (!v[0])
		ceb_config_err(r, n, ceb_config_path_key(p, sizeof(p), base, "queueName"),
		               "required field missing");
	else
		get_amqp_name(r, v[0], ceb_config_path_key(p, sizeof(p), base, "queueName"), true,
		              &src->queue);
	if (v[1])
		get_amqp_name(r, v[1], ceb_config_path_key(p, sizeof(p), base, "exchangeName"),
		              false, &src->exchange);
	if (src->exchange && !*src->exchange) {
		free(src->exchange);
		src->exchange = NULL;
	}
	if (!src->exchange && !src->predeclared)
		ceb_config_err(r, n, ceb_config_path_key(p, sizeof(p), base, "exchangeName"),
		               "required unless predeclared is true (the exchange the source's "
		               "queue is bound to)");
	if (v[3])
		ceb_config_get_int(r, v[3], ceb_config_path_key(p, sizeof(p), base, "parallelism"),
		                   1, 1000, &src->parallelism);
	if (v[4])
		get_amqp_name(r, v[4], ceb_config_path_key(p, sizeof(p), base, "vhost"), true,
		              &src->vhost);
}

static void parse_source(struct ceb_config_res *r, struct ceb_config_meta *md,
                         const struct ceb_yaml_node *root, const struct ceb_yaml_node *const *vals)
{
	static const char *const spec_fields[] = {"rabbitmqClusterReference",
	                                          "rabbitmqResourcesConfig",
	                                          "delivery",
	                                          "sink",
	                                          "ceOverrides",
	                                          "serviceAccountName",
	                                          "adapterContainerName",
	                                          NULL};
	const struct ceb_yaml_node *v[7];
	struct ceb_rabbitmq_source_cfg *src;

	if (!md->name)
		return;
	src = calloc(1, sizeof(*src));
	if (!src) {
		ceb_config_oom(r);
		return;
	}
	ceb_config_delivery_init(&src->delivery);
	src->ns = md->ns;
	src->name = md->name;
	md->ns = md->name = NULL;
	src->parallelism = 1;
	src->loc = (struct ceb_loc){r->file, ceb_yaml_line(root), ceb_yaml_col(root)};
	src->source.own = src;
	src->source.own_free = source_free;
	ceb_config_add_source(r, &src->source);
	ceb_config_add_entry(r, CEB_RABBITMQ_SOURCE_KIND, src->ns, src->name, md, src);
	amqp_compiled(r, root, CEB_RABBITMQ_SOURCE_KIND);
	if (!vals[0]) {
		ceb_config_err(r, root, "spec",
		               "required field missing (a RabbitmqSource needs "
		               "spec.rabbitmqClusterReference, spec.rabbitmqResourcesConfig and "
		               "spec.sink)");
		goto out;
	}
	if (!ceb_config_get_fields(r, vals[0], "spec", spec_fields, v, NULL))
		goto out;
	parse_cluster_ref(r, vals[0], v[0], &src->cluster);
	parse_resources(r, vals[0], v[1], src);
	/* eventing-rabbitmq's delivery has retry and backoff only; a deadLetterSink and a timeout
	 * are taken too (users asked for them) */
	if (v[2])
		ceb_config_parse_delivery(r, v[2], "spec.delivery", false, &src->delivery);
	if (!v[3])
		ceb_config_err(r, vals[0], "spec.sink", "required field missing");
	else
		ceb_config_parse_dest(r, v[3], "spec.sink", &src->sink);
	if (v[4])
		ceb_config_parse_ce_overrides(r, v[4], &src->ce_ext_keys, &src->ce_ext_values,
		                              &src->nce_ext);
out:
	src->source = (struct ceb_source_cfg){
	        .kind = CEB_RABBITMQ_SOURCE_KIND,
	        .ns = src->ns,
	        .name = src->name,
	        .sink = &src->sink,
	        .delivery = &src->delivery,
	        .ce_ext_keys = src->ce_ext_keys,
	        .ce_ext_values = src->ce_ext_values,
	        .nce_ext = src->nce_ext,
	        .ordered = src->parallelism == 1,
	        .max_inflight = (unsigned)src->parallelism,
	        .own = src,
	        .own_free = source_free,
	        .loc = src->loc,
	        .next = src->source.next,
	};
}

static const char *const spec_only[] = {"spec", NULL};
static const char *const eventing_v1alpha1[] = {CEB_EVENTING_V1ALPHA1, NULL};
static const char *const sources_v1alpha1[] = {"sources.knative.dev/v1alpha1", NULL};

const struct ceb_kind ceb_kind_rabbitmq_broker_config = {
        eventing_v1alpha1, CEB_RABBITMQ_BROKER_CONFIG_KIND, spec_only, parse_broker_config, false};
const struct ceb_kind ceb_kind_rabbitmq_source = {sources_v1alpha1, CEB_RABBITMQ_SOURCE_KIND,
                                                  spec_only, parse_source, false};
/* A RabbitMQBroker takes its settings from a RabbitmqBrokerConfig, not a ConfigMap. */
static void no_configmap(struct ceb_config_res *r, struct ceb_configmap *cm,
                         const struct ceb_loc *at)
{
	(void)r;
	(void)cm;
	(void)at;
}
const struct ceb_broker_config_reader ceb_broker_config_amqp = {
        .channel = "amqp",
        .read = no_configmap,
        .free = NULL,
        .kind = CEB_RABBITMQ_BROKER_CONFIG_KIND,
        .api = CEB_EVENTING_V1ALPHA1,
};
