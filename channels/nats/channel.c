/* The NATS JetStream channel, in two roles:
 * - a Broker of class NatsJetStreamBroker: one stream per Broker, KN_BROKER_<NS>__<NAME> on subjects
 *   <ns>.<name>._knative_broker.> (eventing-natss's names), created if missing and checked if
 *   present; events published in binary mode with Nats-Msg-Id, 202 only after the PubAck; one
 *   durable pull consumer KN_TRIGGER_<NS>__<NAME> per Trigger;
 * - a NatsSource: the consume-only half, on a stream's durable consumer or a core subject.
 * nats.c reconnects by itself; publishes answer 503 while the connection is down. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker/config/config.h"
#include "broker/error.h"
#include "broker/log.h"
#include "channels/nats/nats.h"

static void upper_name(char *out, size_t n, const char *prefix, const char *ns, const char *name)
{
	snprintf(out, n, "%s%s__%s", prefix, ns, name);
	for (size_t k = 0; out[k]; k++) {
		char c = out[k];
		if (c >= 'a' && c <= 'z')
			out[k] = (char)(c - 32);
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			out[k] = '_';
	}
}

/* The Broker's settings: defaults, its ConfigMap's (read at load), then the annotation's. */
static int broker_settings(struct nats_chan *nch, const struct ceb_channel_cfg *cfg, char *errbuf,
                           size_t errlen)
{
	const struct ceb_broker_cfg *bc = cfg->spec;
	const struct ceb_configmap *cm = bc ? bc->config : NULL;
	const struct ceb_nats_broker_cfg *nb = cm ? cm->backend : NULL;
	const char *annot;

	ceb_nats_conn_defaults(&nch->conn);
	ceb_nats_js_defaults(&nch->js);
	if (nb) {
		nch->conn = nb->conn;
		nch->js = nb->js;
	}
	annot = bc ? ceb_annotation(bc->annot_keys, bc->annot_values, bc->nannot,
	                            CEB_NATS_CONFIG_ANNOT)
	           : NULL;
	if (annot) {
		char who[600];
		snprintf(who, sizeof(who), "Broker %s/%s", cfg->ns, cfg->name);
		return ceb_nats_js_annotation(annot, &bc->loc, who, &nch->js, errbuf, errlen);
	}
	return 0;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct nats_chan *nch = closure;

	(void)nc;
	/* one warning when the first of the channel's connections goes */
	if (atomic_fetch_sub(&nch->connected, 1) == atomic_load(&nch->nconns) &&
	    !atomic_load(&nch->stopping))
		CEB_LOG_WARN(nch->label,
		             "lost the connection to NATS: publishes answer 503 until it is back");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct nats_chan *nch = closure;

	(void)nc;
	if (atomic_fetch_add(&nch->connected, 1) + 1 == atomic_load(&nch->nconns))
		CEB_LOG_INFO(nch->label, "connected to NATS again");
}

static void on_closed(natsConnection *nc, void *closure)
{
	struct nats_chan *nch = closure;

	(void)nc;
	pthread_mutex_lock(&nch->cb_lock);
	nch->closed++;
	pthread_cond_broadcast(&nch->cb_cond);
	pthread_mutex_unlock(&nch->cb_lock);
	/* nothing of nch after this point: destroy may free it */
}

/* A creds file's user JWT, for libnats (which frees the copy). */
static natsStatus user_jwt(char **jwt, char **err, void *closure)
{
	const struct ceb_nats_conn *c = closure;

	(void)err;
	*jwt = strdup(c->jwt);
	return *jwt ? NATS_OK : NATS_NO_MEMORY;
}

/* The server's nonce signed with the creds file's nkey seed. */
static natsStatus sign_nonce(char **err, unsigned char **sig, int *len, const char *nonce,
                             void *closure)
{
	const struct ceb_nats_conn *c = closure;

	(void)err;
	return nats_Sign(c->seed, nonce, sig, len);
}

/* One connection and its JetStream context. asap: every write goes out at once (the publishing
 * connection: each publish holds an HTTP request until its PubAck, so latency is throughput there);
 * otherwise nats.c's flusher sends what gathered within a millisecond in one write (the consuming
 * connection: acks and pull requests, which nobody waits for, then cost the daemon and the server
 * one write and one read for many instead of one each). */
/* config-nats's url: one server, or several separated by commas (eventing-natss passes it to
 * nats.go, which takes such a list); nats.c 3.4's SetURL takes one, SetServers the list. */
static natsStatus set_servers(natsOptions *o, const char *url)
{
	const char *list[32];
	char *copy, *save = NULL;
	int n = 0;
	natsStatus s;

	if (!strchr(url, ','))
		return natsOptions_SetURL(o, url);
	if (!(copy = strdup(url)))
		return NATS_NO_MEMORY;
	for (char *tok = strtok_r(copy, ", ", &save); tok && n < 32; tok = strtok_r(NULL, ", ", &save))
		list[n++] = tok;
	s = n ? natsOptions_SetServers(o, list, n) : NATS_INVALID_ARG;
	free(copy);
	return s;
}

static int nats_connect(struct nats_chan *nch, bool asap, natsConnection **ncp, jsCtx **jsp,
                        char *errbuf, size_t errlen)
{
	natsOptions *o = NULL;
	jsOptions jo;
	natsStatus s;

	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = set_servers(o, nch->conn.url);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, "cebroker");
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, nch->conn.max_reconnects);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, nch->conn.reconnect_wait_ms);
	if (s == NATS_OK && (nch->conn.jitter_ms || nch->conn.jitter_tls_ms))
		s = natsOptions_SetReconnectJitter(o, nch->conn.jitter_ms, nch->conn.jitter_tls_ms);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectBufSize(o, 64 * 1024 * 1024);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, on_disconnected, nch);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_reconnected, nch);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, on_closed, nch);
	if (s == NATS_OK && nch->conn.ca_pem)
		s = natsOptions_SetCATrustedCertificates(o, nch->conn.ca_pem);
	if (s == NATS_OK && nch->conn.cert_pem && nch->conn.key_pem)
		s = natsOptions_SetCertificatesChain(o, nch->conn.cert_pem, nch->conn.key_pem);
	if (s == NATS_OK && nch->conn.jwt && nch->conn.seed)
		s = natsOptions_SetUserCredentialsCallbacks(o, user_jwt, &nch->conn, sign_nonce,
		                                            &nch->conn);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, 5000);
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, asap);
	/* A server that stops reading (stalled, or cut off without a reset) must not hold the
	 * ingress thread that publishes, nor look connected for minutes: a write that cannot go out
	 * within NATS_WRITE_DEADLINE_MS fails and the connection reconnects (posts get 503 at
	 * once meanwhile), and a server that answers no PING for NATS_PING_MS * 2 is given up. */
	if (s == NATS_OK)
		s = natsOptions_SetWriteDeadline(o, NATS_WRITE_DEADLINE_MS);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, NATS_PING_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(o, 2);
	if (s != NATS_OK) {
		snprintf(errbuf, errlen, "%s: NATS options: %s", nch->label,
		         nats_GetLastError(NULL));
		natsOptions_Destroy(o);
		return CEB_ECONFIG;
	}
	atomic_fetch_add(&nch->nconns, 1);
	s = natsConnection_Connect(ncp, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK) {
		atomic_fetch_sub(&nch->nconns, 1);
		snprintf(errbuf, errlen, "%s: cannot connect to NATS at %s: %s", nch->label,
		         nch->conn.url, natsStatus_GetText(s));
		return CEB_EUNAVAIL;
	}
	atomic_fetch_add(&nch->connected, 1);
	jsOptions_Init(&jo);
	jo.Wait = 5000;
	jo.PublishAsync.AckHandler = nats_ack_handler;
	jo.PublishAsync.AckHandlerClosure = nch;
	if (natsConnection_JetStream(jsp, *ncp, &jo) != NATS_OK) {
		snprintf(errbuf, errlen, "%s: no JetStream context: %s", nch->label,
		         nats_GetLastError(NULL));
		return CEB_EUNAVAIL;
	}
	return 0;
}

/* The Broker's stream: created when missing; when present, it must take the Broker's subjects. */
static int stream_ensure(struct nats_chan *nch, char *errbuf, size_t errlen)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	const char *subjects[1] = {nch->subjects};
	natsStatus s = js_GetStreamInfo(&si, nch->jsc, nch->stream, NULL, &jerr);

	if (s == NATS_OK) {
		bool ok = false;
		for (int i = 0; i < si->Config->SubjectsLen; i++)
			ok |= strcmp(si->Config->Subjects[i], nch->subjects) == 0;
		jsStreamInfo_Destroy(si);
		if (!ok) {
			snprintf(errbuf, errlen, "%s: stream %s exists without subject %s",
			         nch->label, nch->stream, nch->subjects);
			return CEB_ECONFIG;
		}
		CEB_LOG_INFO(nch->label, "stream %s exists", nch->stream);
		return 0;
	}
	if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
		snprintf(errbuf, errlen, "%s: cannot read stream %s: %s", nch->label, nch->stream,
		         nats_GetLastError(NULL));
		return CEB_EUNAVAIL;
	}
	jsStreamConfig_Init(&sc);
	sc.Name = nch->stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Retention = (jsRetentionPolicy)nch->js.retention;
	sc.Storage = (jsStorageType)nch->js.storage;
	sc.Replicas = nch->js.replicas;
	sc.MaxAge = nch->js.max_age_ms * 1000000;
	sc.MaxBytes = nch->js.max_bytes ? nch->js.max_bytes : -1;
	sc.MaxMsgs = nch->js.max_msgs ? nch->js.max_msgs : -1;
	sc.Duplicates = nch->js.dup_window_ms * 1000000;
	s = js_AddStream(&si, nch->jsc, &sc, NULL, &jerr);
	if (s != NATS_OK) {
		snprintf(errbuf, errlen, "%s: cannot create stream %s: %s", nch->label, nch->stream,
		         nats_GetLastError(NULL));
		return CEB_EUNAVAIL;
	}
	jsStreamInfo_Destroy(si);
	CEB_LOG_INFO(nch->label, "created stream %s on %s", nch->stream, nch->subjects);
	return 0;
}

static void nats_destroy(void *ctx);

static int nats_create(const struct ceb_channel_cfg *cfg, void **ctx, char *errbuf, size_t errlen)
{
	struct nats_chan *nch = calloc(1, sizeof(*nch));
	int rc;

	if (!nch || nats_producer_init(nch) < 0) {
		free(nch);
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	pthread_mutex_init(&nch->pub_lock, NULL);
	pthread_mutex_init(&nch->cb_lock, NULL);
	pthread_cond_init(&nch->cb_cond, NULL);
	if (cfg->kind && strcmp(cfg->kind, CEB_NATS_SOURCE_KIND) == 0) {
		nch->src = cfg->spec;
		nch->role = nch->src->jetstream ? NROLE_SOURCE_JS : NROLE_SOURCE_CORE;
		snprintf(nch->label, sizeof(nch->label), "natssource %s/%s", cfg->ns, cfg->name);
		ceb_nats_conn_defaults(&nch->conn);
		ceb_nats_js_defaults(&nch->js);
		nch->conn.url = nch->src->url;
		if (nch->src->ack_wait_ms)
			nch->js.ack_wait_ms = nch->src->ack_wait_ms;
		if (nch->src->stream)
			snprintf(nch->stream, sizeof(nch->stream), "%s", nch->src->stream);
	} else if (cfg->kind && strcmp(cfg->kind, CEB_NATS_CHANNEL_KIND) == 0) {
		/* eventing-natss: stream KN_<NS>__<NAME> (or overrideName) on <ns>.<name>._knative */
		const struct ceb_msg_channel *mc = cfg->spec;
		const struct ceb_nats_channel_cfg *cc = mc ? mc->backend_spec : NULL;
		const struct ceb_nats_broker_cfg *nb =
		        cc && cc->settings ? cc->settings->backend : NULL;

		nch->channel = 1;
		snprintf(nch->label, sizeof(nch->label), "natsjetstreamchannel %s/%s", cfg->ns,
		         cfg->name);
		ceb_nats_conn_defaults(&nch->conn);
		ceb_nats_js_defaults(&nch->js);
		if (nb)
			nch->conn = nb->conn;
		if (cc)
			nch->js = cc->js;
		if (cc && cc->stream)
			snprintf(nch->stream, sizeof(nch->stream), "%s", cc->stream);
		else
			upper_name(nch->stream, sizeof(nch->stream), "KN_", cfg->ns, cfg->name);
		snprintf(nch->subjects, sizeof(nch->subjects), "%s.%s._knative", cfg->ns,
		         cfg->name);
		snprintf(nch->subject, sizeof(nch->subject), "%s.%s._knative", cfg->ns, cfg->name);
	} else {
		snprintf(nch->label, sizeof(nch->label), "broker %s/%s", cfg->ns, cfg->name);
		if ((rc = broker_settings(nch, cfg, errbuf, errlen)) < 0) {
			nats_destroy(nch);
			return rc;
		}
		upper_name(nch->stream, sizeof(nch->stream), "KN_BROKER_", cfg->ns, cfg->name);
		snprintf(nch->subjects, sizeof(nch->subjects), "%s.%s._knative_broker.>", cfg->ns,
		         cfg->name);
		snprintf(nch->subject, sizeof(nch->subject), "%s.%s._knative_broker.events",
		         cfg->ns, cfg->name);
	}
	/* A source only consumes: its one connection is a consuming one. */
	if ((rc = nats_connect(nch, nch->role == NROLE_BROKER, &nch->nc, &nch->jsc, errbuf,
	                       errlen)) < 0 ||
	    (nch->role == NROLE_BROKER && (rc = stream_ensure(nch, errbuf, errlen)) < 0)) {
		nats_destroy(nch);
		return rc;
	}
	CEB_LOG_INFO(nch->label, "NATS%s at %s%s%s",
	             nch->role == NROLE_BROKER || nch->stream[0] ? " JetStream" : "", nch->conn.url,
	             nch->stream[0] ? ", stream " : "", nch->stream);
	*ctx = nch;
	return 0;
}

/* The consumers of a Broker's (or a Channel's) stream that no subscription of this configuration
 * has: what a Trigger removed from it left behind. eventing-natss deletes a Trigger's consumer
 * with the Trigger; here the configuration is the only record, so they go once it is in force, at
 * start and at each reload (which replaces the channel): a Trigger added again then starts at the events accepted
 * after it, as a new Trigger does, and an Interest stream keeps nothing for nobody. Only names of
 * cebroker's own shape are touched; any other consumer of the stream is left alone. */
static void sweep_consumers(struct nats_chan *nch)
{
	const char *prefix = nch->channel ? "KN_SUB_" : "KN_TRIGGER_";
	jsConsumerNamesList *names = NULL;
	jsErrCode jerr = 0;

	if (js_ConsumerNames(&names, nch->cjsc, nch->stream, NULL, &jerr) != NATS_OK || !names)
		return; /* none (NATS_NOT_FOUND), or the server is away: the next start sweeps */
	for (int i = 0; i < names->Count; i++) {
		const char *n = names->List[i];
		bool kept = false;

		if (strncmp(n, prefix, strlen(prefix)) != 0)
			continue;
		for (size_t k = 0; k < nch->nsubs && !kept; k++)
			kept = strcmp(nch->subs[k]->durable, n) == 0;
		if (kept)
			continue;
		if (js_DeleteConsumer(nch->cjsc, nch->stream, n, NULL, &jerr) == NATS_OK)
			CEB_LOG_INFO(nch->label,
			             "deleted consumer %s of stream %s: no Trigger of the configuration "
			             "has it",
			             n, nch->stream);
		else
			CEB_LOG_WARN(nch->label, "cannot delete consumer %s of stream %s: %s", n,
			             nch->stream, nats_GetLastError(NULL));
	}
	jsConsumerNamesList_Destroy(names);
}

/* The sweep waits for the configuration to be in force: a reload that fails after starting this
 * channel keeps the Triggers it would have removed. */
static void nats_committed(void *ctx)
{
	struct nats_chan *nch = ctx;

	if (nch->role == NROLE_BROKER && nch->started)
		sweep_consumers(nch);
}

static int nats_start(void *ctx, char *errbuf, size_t errlen)
{
	struct nats_chan *nch = ctx;
	int rc;

	/* A Broker's Triggers consume on a connection of their own (see nats_connect). */
	if (nch->role == NROLE_BROKER && nch->nsubs > 0 && !nch->cnc &&
	    (rc = nats_connect(nch, false, &nch->cnc, &nch->cjsc, errbuf, errlen)) < 0)
		return rc;
	if (!nch->cnc) {
		nch->cnc = nch->nc;
		nch->cjsc = nch->jsc;
	}

	for (size_t i = 0; i < nch->nsubs; i++)
		if ((rc = nats_sub_prepare(nch->subs[i], errbuf, errlen)) < 0)
			return rc;
	for (size_t i = 0; i < nch->nsubs; i++)
		if ((rc = nats_sub_start(nch->subs[i], errbuf, errlen)) < 0)
			return rc;
	nch->started = 1;
	return 0;
}

static void nats_stop(void *ctx)
{
	struct nats_chan *nch = ctx;

	if (!nch || nch->halted)
		return;
	nch->halted = 1;
	atomic_store(&nch->stopping, 1);
	while (atomic_load(&nch->publishing))
		nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
	if (nch->jsc && atomic_load(&nch->unconfirmed)) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = NATS_CONFIRM_MS;
		js_PublishAsyncComplete(nch->jsc, &po);
	}
	nats_producer_fail_all(nch);
	for (size_t i = 0; i < nch->nsubs; i++)
		nats_sub_stop(nch->subs[i]);
}

/* What was written (acks, NAKs) goes out before the connection closes. */
static void close_conn(natsConnection *nc, jsCtx *js)
{
	if (nc)
		natsConnection_FlushTimeout(nc, 2000);
	jsCtx_Destroy(js);
	if (nc)
		natsConnection_Close(nc);
}

static void nats_destroy(void *ctx)
{
	struct nats_chan *nch = ctx;

	if (!nch)
		return;
	nats_stop(nch);
	for (size_t i = 0; i < nch->nsubs; i++)
		nats_sub_destroy(nch->subs[i]);
	free(nch->subs);
	atomic_store(&nch->stopping, 1);
	if (nch->cnc && nch->cnc != nch->nc)
		close_conn(nch->cnc, nch->cjsc);
	close_conn(nch->nc, nch->jsc);
	pthread_mutex_lock(&nch->cb_lock);
	while (nch->closed < atomic_load(&nch->nconns))
		pthread_cond_wait(&nch->cb_cond, &nch->cb_lock);
	pthread_mutex_unlock(&nch->cb_lock);
	if (nch->cnc && nch->cnc != nch->nc)
		natsConnection_Destroy(nch->cnc);
	natsConnection_Destroy(nch->nc);
	pthread_mutex_destroy(&nch->cb_lock);
	pthread_cond_destroy(&nch->cb_cond);
	nats_producer_fail_all(nch);
	free(nch->pubtab);
	pthread_mutex_destroy(&nch->pub_lock);
	free(nch);
}

static size_t nats_pending(void *ctx)
{
	struct nats_chan *nch = ctx;
	size_t n = atomic_load(&nch->unconfirmed);

	for (size_t i = 0; i < nch->nsubs; i++)
		n += nats_sub_pending(nch->subs[i]);
	return n;
}

/* What create would refuse without reaching a server: the annotation. */
static int nats_check(const struct ceb_channel_cfg *cfg, char *errbuf, size_t errlen)
{
	struct nats_chan nch;

	if (cfg->kind && strcmp(cfg->kind, "Broker") != 0)
		return 0;
	memset(&nch, 0, sizeof(nch));
	return broker_settings(&nch, cfg, errbuf, errlen);
}

static bool nats_connected(void *ctx)
{
	struct nats_chan *nch = ctx;

	return atomic_load(&nch->connected) == atomic_load(&nch->nconns);
}

const struct channel_ops ceb_channel_nats = {
        .name = "nats",
        .flags = CEB_CHANNEL_DURABLE,
        .create = nats_create,
        .destroy = nats_destroy,
        .start = nats_start,
        .publish = nats_publish,
        .subscribe = nats_subscribe,
        .settle = nats_settle,
        .pending = nats_pending,
        .stop = nats_stop,
        .check = nats_check,
        .connected = nats_connected,
        .committed = nats_committed,
};
