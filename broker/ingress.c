/* The HTTP ingress on libmicrohttpd: routes POST /<namespace>/<broker> to the Broker, decodes the
 * CloudEvents, publishes them and answers 202 only when the channel stored every one. A publish that
 * completes later suspends the request and resumes it from the completion, so that no ingress thread
 * ever waits on a backend. */
#include <stdio.h>
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/http_binding.h"
#include "broker/ingress.h"
#include "broker/log.h"

struct ceb_ingress {
	struct MHD_Daemon *mhd;
	struct ceb_daemon *dmn;
};

enum req_state { REQ_BODY = 0, REQ_ERROR, REQ_PUBLISHING, REQ_DONE };

/* One POST to a Broker, from its headers to its answer. */
struct req {
	struct ceb_ingress *ing;
	struct ceb_broker *brk;
	struct MHD_Connection *conn;
	enum req_state state;
	struct ceb_buf body;
	uint64_t start_ms;
	int status;                  /* HTTP status once known */
	char reason[300];
	pthread_mutex_t lock;        /* guards the publish completion fields below */
	size_t pending;              /* publishes not completed */
	int worst;                   /* worst publish status so far (0, CEB_EFULL, CEB_EUNAVAIL) */
	int suspended;
};

static const char *status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return "";
}

/* Queue a text answer: the status line's reason or a given one, one line, with the headers a client
 * needs to act on it. */
static enum MHD_Result answer(struct MHD_Connection *conn, struct ceb_daemon *dmn, int code,
			      const char *reason, const char *ctype)
{
	struct MHD_Response *resp;
	struct ceb_buf b = CEB_BUF_INIT;
	enum MHD_Result ret;

	if (!reason)
		reason = status_text(code);
	ceb_buf_puts(&b, reason);
	if (!ctype)
		ceb_buf_putc(&b, '\n');
	resp = MHD_create_response_from_buffer(b.len, b.p ? b.p : (char *)"", MHD_RESPMEM_MUST_COPY);
	ceb_buf_free(&b);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype ? ctype : "text/plain; charset=utf-8");
	if (code == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST, OPTIONS");
	if (code == 429 || code == 503)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (atomic_load(&dmn->draining))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, (unsigned)code, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result answer_options(struct MHD_Connection *conn)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!resp)
		return MHD_NO;
	/* The CloudEvents webhook abuse-protection handshake, as Knative's ingress answers it. */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST, OPTIONS");
	MHD_add_response_header(resp, "WebHook-Allowed-Origin", "*");
	MHD_add_response_header(resp, "WebHook-Allowed-Rate", "*");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result answer_metrics(struct MHD_Connection *conn, struct ceb_daemon *dmn)
{
	struct ceb_buf b = CEB_BUF_INIT;
	enum MHD_Result ret;

	ceb_daemon_metrics(dmn, &b);
	ret = answer(conn, dmn, 200, b.p ? b.p : "", "text/plain; version=0.0.4");
	ceb_buf_free(&b);
	return ret;
}

/* "/ns/name" with two non-empty segments and nothing else. */
static int path_is_broker(const char *url)
{
	const char *p;

	if (url[0] != '/' || url[1] == '/' || url[1] == '\0')
		return 0;
	p = strchr(url + 1, '/');
	if (!p || p[1] == '\0' || strchr(p + 1, '/'))
		return 0;
	return 1;
}

struct hdr_list {
	struct ceb_http_header *h;
	size_t n, cap;
	int oom;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	struct hdr_list *l = cls;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 32;
		struct ceb_http_header *h = realloc(l->h, ncap * sizeof(*h));
		if (!h) {
			l->oom = 1;
			return MHD_NO;
		}
		l->h = h;
		l->cap = ncap;
	}
	l->h[l->n].name = key;
	l->h[l->n].value = value ? value : "";
	l->n++;
	return MHD_YES;
}

static int publish_status_rank(int st)
{
	return st == 0 ? 0 : st == CEB_EFULL ? 1 : 2;
}

static void publish_done(void *arg, int status)
{
	struct req *r = arg;
	int resume;

	pthread_mutex_lock(&r->lock);
	if (publish_status_rank(status) > publish_status_rank(r->worst))
		r->worst = status;
	r->pending--;
	resume = r->pending == 0 && r->suspended;
	if (resume)
		r->suspended = 0;
	pthread_mutex_unlock(&r->lock);
	if (resume)
		MHD_resume_connection(r->conn);
}

static void finish_publish(struct req *r)
{
	struct ceb_broker *brk = r->brk;

	r->state = REQ_DONE;
	switch (r->worst) {
	case 0:
		r->status = 202;
		snprintf(r->reason, sizeof(r->reason), "%s", "");
		break;
	case CEB_EFULL:
		r->status = 429;
		snprintf(r->reason, sizeof(r->reason), "broker %s/%s is full, retry later",
			 brk->cfg->ns, brk->cfg->name);
		atomic_fetch_add(&brk->cnt.rejected_full, 1);
		break;
	default:
		r->status = 503;
		snprintf(r->reason, sizeof(r->reason), "broker %s/%s cannot store events now",
			 brk->cfg->ns, brk->cfg->name);
		atomic_fetch_add(&brk->cnt.rejected_unavail, 1);
		break;
	}
}

static int ingress_status(int err)
{
	switch (err) {
	case CEB_ETOOBIG: return 413;
	case CEB_EUNSUPPORTED: return 415;
	case CEB_ENOMEM: return 503;
	default: return 400;
	}
}

/* Decode the body and publish every event; sets r->state to REQ_DONE or REQ_PUBLISHING. */
static void decode_and_publish(struct req *r)
{
	struct ceb_daemon *dmn = r->ing->dmn;
	struct hdr_list hl = { 0 };
	struct ceb_http_request hr;
	struct ceb_event **evs = NULL;
	size_t nevs = 0;
	enum ceb_http_mode mode;
	char err[256];
	int rc;

	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_header, &hl);
	if (hl.oom) {
		r->state = REQ_ERROR;
		r->status = 503;
		snprintf(r->reason, sizeof(r->reason), "out of memory");
		goto out;
	}
	hr.headers = hl.h;
	hr.nheaders = hl.n;
	hr.body = r->body.p ? r->body.p : "";
	hr.body_len = r->body.len;
	rc = ceb_http_decode(&hr, &dmn->set.limits, &evs, &nevs, &mode, err, sizeof(err));
	if (rc < 0) {
		r->state = REQ_ERROR;
		r->status = ingress_status(rc);
		snprintf(r->reason, sizeof(r->reason), "%s", err);
		goto out;
	}
	for (size_t i = 0; i < nevs; i++) {
		const struct ceb_attr *ttl = ceb_event_get(evs[i], "knativebrokerttl");
		if (ttl && (ttl->type != CEB_TYPE_INTEGER ? strtol(ttl->value, NULL, 10) : ttl->ival) <= 0) {
			r->state = REQ_ERROR;
			r->status = 400;
			snprintf(r->reason, sizeof(r->reason),
				 "event %s: knativebrokerttl is exhausted (loop guard)",
				 ceb_event_get(evs[i], "id")->value);
			goto out;
		}
	}
	r->state = REQ_PUBLISHING;
	r->pending = nevs + 1; /* +1 held until every publish was started */
	for (size_t i = 0; i < nevs; i++)
		ceb_broker_publish(r->brk, evs[i], publish_done, r);
	pthread_mutex_lock(&r->lock);
	r->pending--;
	if (r->pending == 0) {
		finish_publish(r);
	} else {
		r->suspended = 1;
		MHD_suspend_connection(r->conn);
	}
	pthread_mutex_unlock(&r->lock);
out:
	for (size_t i = 0; i < nevs; i++)
		ceb_event_unref(evs[i]);
	free(evs);
	free(hl.h);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct ceb_ingress *ing = cls;
	struct ceb_daemon *dmn = ing->dmn;
	struct req *r = *con_cls;
	struct ceb_broker *brk;
	const char *cl;
	enum MHD_Result ret;

	if (!r) {
		/* Headers are complete: route before reading any body. */
		if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
			if (strcmp(url, "/healthz") == 0)
				return answer(conn, dmn, 200, "ok", NULL);
			if (strcmp(url, "/readyz") == 0) {
				int ok = atomic_load(&dmn->ready) && !atomic_load(&dmn->draining);
				return answer(conn, dmn, ok ? 200 : 503, ok ? "ready" : "not ready", NULL);
			}
			if (strcmp(url, "/metrics") == 0)
				return answer_metrics(conn, dmn);
		}
		if (!path_is_broker(url)) {
			atomic_fetch_add(&dmn->cnt.rejected_4xx, 1);
			return answer(conn, dmn, 404, "no broker here: the ingress path is /<namespace>/<broker>", NULL);
		}
		brk = ceb_broker_find(dmn, url, strlen(url));
		if (!brk) {
			char msg[600];
			snprintf(msg, sizeof(msg), "no broker at %.500s", url);
			atomic_fetch_add(&dmn->cnt.rejected_4xx, 1);
			return answer(conn, dmn, 404, msg, NULL);
		}
		if (strcmp(method, "OPTIONS") == 0)
			return answer_options(conn);
		if (strcmp(method, "POST") != 0) {
			atomic_fetch_add(&brk->cnt.rejected_4xx, 1);
			return answer(conn, dmn, 405, "only POST is allowed on a broker", NULL);
		}
		if (atomic_load(&dmn->draining)) {
			atomic_fetch_add(&brk->cnt.rejected_unavail, 1);
			return answer(conn, dmn, 503, "shutting down", NULL);
		}
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end, msg[200];
			unsigned long long n = strtoull(cl, &end, 10);
			if (*end == '\0' && n > dmn->set.limits.max_event_size) {
				/* Answer now, before reading (or inviting, with 100-continue) the body. */
				snprintf(msg, sizeof(msg), "body of %llu bytes is over the limit of %zu bytes",
					 n, dmn->set.limits.max_event_size);
				atomic_fetch_add(&brk->cnt.rejected_4xx, 1);
				return answer(conn, dmn, 413, msg, NULL);
			}
		}
		r = calloc(1, sizeof(*r));
		if (!r)
			return answer(conn, dmn, 503, "out of memory", NULL);
		r->ing = ing;
		r->brk = brk;
		r->conn = conn;
		r->start_ms = ceb_now_ms();
		pthread_mutex_init(&r->lock, NULL);
		*con_cls = r;
		return MHD_YES;
	}

	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->state != REQ_BODY)
			return MHD_YES; /* discard the rest of a refused body */
		if (dmn->set.request_timeout_s &&
		    ceb_now_ms() - r->start_ms > (uint64_t)dmn->set.request_timeout_s * 1000) {
			r->state = REQ_ERROR;
			r->status = 408;
			snprintf(r->reason, sizeof(r->reason), "request took longer than %u s",
				 dmn->set.request_timeout_s);
			return MHD_YES;
		}
		if (r->body.len + n > dmn->set.limits.max_event_size) {
			r->state = REQ_ERROR;
			r->status = 413;
			snprintf(r->reason, sizeof(r->reason), "body is over the limit of %zu bytes",
				 dmn->set.limits.max_event_size);
			ceb_buf_free(&r->body);
			return MHD_YES;
		}
		if (ceb_buf_append(&r->body, upload_data, n) < 0) {
			r->state = REQ_ERROR;
			r->status = 503;
			snprintf(r->reason, sizeof(r->reason), "out of memory");
		}
		return MHD_YES;
	}

	/* The whole request is in (or the request resumed after its publish completed). */
	if (r->state == REQ_BODY)
		decode_and_publish(r);
	if (r->state == REQ_PUBLISHING) {
		pthread_mutex_lock(&r->lock);
		if (r->pending == 0)
			finish_publish(r);
		pthread_mutex_unlock(&r->lock);
		if (r->state == REQ_PUBLISHING)
			return MHD_YES; /* suspended; resumed by publish_done */
	}
	if (r->status == 202) {
		atomic_fetch_add(&r->brk->cnt.accepted, 1);
		return answer(conn, dmn, 202, "", "text/plain");
	}
	if (r->status >= 400 && r->status < 500 && r->status != 429)
		atomic_fetch_add(&r->brk->cnt.rejected_4xx, 1);
	ret = answer(conn, dmn, r->status, r->reason, NULL);
	return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	if (!r)
		return;
	ceb_buf_free(&r->body);
	pthread_mutex_destroy(&r->lock);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	LOG_DEBUG("ingress", "%s", msg);
}

int ceb_ingress_start(struct ceb_daemon *dmn, struct ceb_ingress **out, int *port, char *errbuf,
		      size_t errlen)
{
	struct ceb_ingress *ing = calloc(1, sizeof(*ing));
	struct addrinfo hints = { 0 }, *ai = NULL;
	char portstr[16];
	const union MHD_DaemonInfo *info;
	unsigned flags;
	int rc = CEB_EIO;

	if (!ing) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	ing->dmn = dmn;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", dmn->set.listen_port);
	if (getaddrinfo(dmn->set.listen_host, portstr, &hints, &ai) != 0 || !ai) {
		snprintf(errbuf, errlen, "cannot resolve listen address %s", dmn->set.listen_host);
		goto out;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
		MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	ing->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, ing,
		MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)dmn->set.ingress_threads,
		MHD_OPTION_CONNECTION_LIMIT, dmn->set.max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, dmn->set.max_conn_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, dmn->set.idle_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, dmn->set.max_header_block,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, ing,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_END);
	if (!ing->mhd) {
		snprintf(errbuf, errlen, "cannot listen on %s:%d (in use, or not an address of this host)",
			 dmn->set.listen_host, dmn->set.listen_port);
		goto out;
	}
	info = MHD_get_daemon_info(ing->mhd, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : dmn->set.listen_port;
	*out = ing;
	ing = NULL;
	rc = 0;
out:
	if (ai)
		freeaddrinfo(ai);
	free(ing);
	return rc;
}

void ceb_ingress_quiesce(struct ceb_ingress *ing)
{
	/* Keep the listening socket: new connections get a quick 503 rather than a refused connect,
	 * which clients treat as retryable. The daemon's draining flag does the rest. */
	(void)ing;
}

void ceb_ingress_stop(struct ceb_ingress *ing)
{
	if (!ing)
		return;
	if (ing->mhd)
		MHD_stop_daemon(ing->mhd);
	free(ing);
}
