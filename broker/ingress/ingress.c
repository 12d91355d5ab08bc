/* The HTTP ingress on libmicrohttpd (epoll, a thread pool): the glue between MHD's callbacks and the
 * transport-independent request logic of request.c. A publish that completes later suspends the
 * connection and resumes it from the completion, so that no ingress thread waits on a backend. */
#include <microhttpd.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/error.h"
#include "broker/ingress/ingress.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/ingress/request.h"

struct ceb_ingress {
	struct MHD_Daemon *mhd;
	struct ceb_daemon *dmn;
	atomic_int suspended; /* requests waiting for a publish: MHD must not stop while any is */
	struct MHD_Response *accepted; /* the 202 answer, built once and shared by every request */
};

/* A request in MHD's hands: the logic's state plus its connection, for resuming. */
struct mhd_req {
	struct ceb_request req;
	struct MHD_Connection *conn;
	struct ceb_ingress *ing;
	bool suspended;
};

static enum MHD_Result queue(struct MHD_Connection *conn, struct ceb_daemon *dmn, int status,
                             const char *body, size_t len, const char *ctype, unsigned retry_after)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char ra[16];

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST, OPTIONS");
	if (retry_after) {
		snprintf(ra, sizeof(ra), "%u", retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (atomic_load(&dmn->draining))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* The answer of a request: its reason as one line of text (nothing for 202). */
static enum MHD_Result answer(struct MHD_Connection *conn, const struct ceb_request *req,
                              struct MHD_Response *accepted)
{
	char line[sizeof(req->reason) + 1];
	int n;

	/* Most requests get the shared 202 (no allocation); while draining, a 202 also says
	 * Connection: close, so it is built afresh. */
	if (req->status == 202 && accepted && !atomic_load(&req->dmn->draining))
		return MHD_queue_response(conn, 202, accepted);
	if (req->status == 202)
		return queue(conn, req->dmn, 202, "", 0, "text/plain", 0);
	n = snprintf(line, sizeof(line), "%s\n",
	             req->reason[0] ? req->reason : ceb_status_text(req->status));
	return queue(conn, req->dmn, req->status, line, (size_t)n, "text/plain; charset=utf-8",
	             req->retry_after);
}

static enum MHD_Result answer_options(struct MHD_Connection *conn)
{
	struct MHD_Response *resp =
	        MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
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
	ret = queue(conn, dmn, 200, b.p ? b.p : "", b.len, "text/plain; version=0.0.4", 0);
	ceb_buf_free(&b);
	return ret;
}

#define INLINE_HEADERS 32

struct hdr_list {
	struct ceb_http_header *h; /* inl, until a request has more headers */
	size_t n, cap;
	int oom;
	struct ceb_http_header inl[INLINE_HEADERS];
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
	struct hdr_list *l = cls;

	if (l->n == l->cap) {
		size_t ncap = l->cap * 2;
		struct ceb_http_header *h = malloc(ncap * sizeof(*h));
		if (!h) {
			l->oom = 1;
			return MHD_NO;
		}
		memcpy(h, l->h, l->n * sizeof(*h));
		if (l->h != l->inl)
			free(l->h);
		l->h = h;
		l->cap = ncap;
	}
	l->h[l->n].name = key;
	l->h[l->n].value = value ? value : "";
	l->n++;
	return MHD_YES;
}

static void suspend(void *arg)
{
	struct mhd_req *mr = arg;

	mr->suspended = true;
	atomic_fetch_add(&mr->ing->suspended, 1);
	MHD_suspend_connection(mr->conn);
}

static void resume(void *arg)
{
	MHD_resume_connection(((struct mhd_req *)arg)->conn);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct ceb_ingress *ing = cls;
	struct mhd_req *mr = *con_cls;
	struct hdr_list hl;
	bool ready;

	if (!mr) {
		/* Headers are complete: route before reading any body. */
		const union MHD_ConnectionInfo *ci =
		        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		enum ceb_route route;
		enum MHD_Result ret;

		mr = calloc(1, sizeof(*mr));
		if (!mr)
			return MHD_NO;
		mr->conn = conn;
		mr->ing = ing;
		ceb_request_init(&mr->req, ing->dmn, suspend, resume, mr);
		mr->req.internal = ceb_daemon_is_internal(
		        ing->dmn,
		        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, CEB_INTERNAL_HEADER));
		route = ceb_request_route(&mr->req, method, url, cl, ci ? ci->client_addr : NULL);
		if (route == CEB_ROUTE_BODY) {
			*con_cls = mr;
			return MHD_YES;
		}
		ret = route == CEB_ROUTE_OPTIONS   ? answer_options(conn)
		      : route == CEB_ROUTE_METRICS ? answer_metrics(conn, ing->dmn)
		                                   : answer(conn, &mr->req, ing->accepted);
		ceb_request_fini(&mr->req);
		free(mr);
		return ret;
	}
	hl.h = hl.inl;
	hl.n = 0;
	hl.cap = INLINE_HEADERS;
	hl.oom = 0;
	if (*upload_data_size) {
		bool keep = ceb_request_body(&mr->req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		/* MHD 0.9 cannot answer in the middle of a body: a refused body that keeps coming past
		 * the deadline or the size limit gets the connection closed instead. */
		return keep ? MHD_YES : MHD_NO;
	}
	if (mr->suspended) {
		/* Resumed after the last publish completed. */
		mr->suspended = false;
		atomic_fetch_sub(&ing->suspended, 1);
	} else if (!mr->req.status) {
		MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &hl);
		if (hl.oom) {
			if (hl.h != hl.inl)
				free(hl.h);
			mr->req.status = 503;
			snprintf(mr->req.reason, sizeof(mr->req.reason), "out of memory");
			return answer(conn, &mr->req, ing->accepted);
		}
	}
	ready = ceb_request_complete(&mr->req, hl.h, hl.n);
	if (hl.h != hl.inl)
		free(hl.h);
	if (!ready)
		return MHD_YES; /* suspended; resume() comes from the last publish completion */
	return answer(conn, &mr->req, ing->accepted);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct mhd_req *mr = *con_cls;

	if (!mr)
		return;
	ceb_request_fini(&mr->req);
	free(mr);
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
	CEB_LOG_DEBUG("ingress", "%s", msg);
}

int ceb_ingress_start(struct ceb_daemon *dmn, struct ceb_ingress **out, int *port, char *errbuf,
                      size_t errlen)
{
	struct ceb_ingress *ing = calloc(1, sizeof(*ing));
	struct addrinfo hints = {0}, *ai = NULL;
	char portstr[16];
	const union MHD_DaemonInfo *info;
	unsigned flags;
	int rc = CEB_EIO;

	if (!ing) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	ing->dmn = dmn;
	/* The bytes queue() builds for a 202 (no body, Content-Type: text/plain), made once. */
	ing->accepted = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!ing->accepted || MHD_add_response_header(ing->accepted, MHD_HTTP_HEADER_CONTENT_TYPE,
	                                              "text/plain") != MHD_YES) {
		snprintf(errbuf, errlen, "out of memory");
		rc = CEB_ENOMEM;
		goto out;
	}
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
	ing->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, ing, MHD_OPTION_SOCK_ADDR,
	                            ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
	                            (unsigned)dmn->set.ingress_threads, MHD_OPTION_CONNECTION_LIMIT,
	                            dmn->set.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	                            dmn->set.max_conn_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
	                            dmn->set.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	                            dmn->set.max_header_block, MHD_OPTION_NOTIFY_COMPLETED,
	                            on_completed, ing, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	                            MHD_OPTION_END);
	if (!ing->mhd) {
		snprintf(errbuf, errlen,
		         "cannot listen on %s:%d (in use, or not an address of this host)",
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
	if (ing && ing->accepted)
		MHD_destroy_response(ing->accepted);
	free(ing);
	return rc;
}

void ceb_ingress_stop(struct ceb_ingress *ing)
{
	uint64_t deadline;

	if (!ing)
		return;
	/* The channels have completed every publish by now (ceb_daemon_destroy stops them first), so
	 * suspended requests are being resumed: give MHD's threads a moment to answer them, since
	 * MHD_stop_daemon() must not run while a connection is suspended. */
	deadline = ceb_now_ms() + 2000;
	while (atomic_load(&ing->suspended) > 0 && ceb_now_ms() < deadline)
		usleep(1000);
	if (atomic_load(&ing->suspended) > 0) {
		CEB_LOG_ERR("ingress",
		        "%d requests still suspended at exit; leaving the server to the OS",
		        atomic_load(&ing->suspended));
		return;
	}
	if (ing->mhd)
		MHD_stop_daemon(ing->mhd);
	if (ing->accepted)
		MHD_destroy_response(ing->accepted);
	free(ing);
}
