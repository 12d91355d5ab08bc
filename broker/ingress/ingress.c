/* The HTTP ingress on libmicrohttpd (epoll, a thread pool): the glue between MHD's callbacks and the
 * transport-independent request logic of request.c. A publish that completes later suspends the
 * connection and resumes it from the completion, so that no ingress thread waits on a backend. A
 * watchdog thread times each request from its first byte, which MHD 0.9 cannot do. */
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's lacks it) */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/buf.h"
#include "broker/clock.h"
#include "broker/error.h"
#include "broker/ingress/conn.h"
#include "broker/ingress/ingress.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/ingress/request.h"
#include "broker/ingress/tls.h"

static void hdr_list_init(struct hdr_list *l)
{
	l->h = l->inl;
	l->n = 0;
	l->cap = INLINE_HEADERS;
	l->oom = 0;
}

/* The headers a source adds to its requests' answers (none for a Broker's). */
struct extra_headers {
	const struct ceb_http_header *h;
	size_t n;
};

static enum MHD_Result queue(struct MHD_Connection *conn, struct ceb_daemon *dmn, int status,
                             const char *body, size_t len, const char *ctype, unsigned retry_after,
                             struct extra_headers extra)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	bool allow = false;
	char ra[16];

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	for (size_t i = 0; i < extra.n; i++) {
		MHD_add_response_header(resp, extra.h[i].name, extra.h[i].value);
		allow |= strcasecmp(extra.h[i].name, MHD_HTTP_HEADER_ALLOW) == 0;
	}
	if (status == 405 && !allow)
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

/* An answer to a request for an endpoint (a Broker...): its status and latency on /metrics; a
 * refusal of one that named none, the daemon's. */
static void observe(struct ceb_daemon *dmn, struct ceb_endpoint *brk, int status, uint64_t t0_us)
{
	uint64_t now = ceb_now_us();

	if (brk && brk->path[0])
		ceb_stats_observe(&brk->st, status, now > t0_us ? now - t0_us : 0);
	else if (!brk && status >= 400)
		ceb_stats_observe(&dmn->st, status, now > t0_us ? now - t0_us : 0);
}

/* The answer of a request: its reason as one line of text (nothing for 202). */
static enum MHD_Result answer(struct MHD_Connection *conn, const struct ceb_request *req,
                              struct MHD_Response *accepted)
{
	struct extra_headers extra = {req->ans_headers, req->nans_headers};
	char line[sizeof(req->reason) + 1];
	int n;

	observe(req->dmn, req->brk, req->status, req->t0_us);
	/* Most requests get the shared 202 (no allocation); while draining, a 202 also says
	 * Connection: close, and a source's answer has headers of its own, so those are built
	 * afresh. */
	if (req->status == 202 && accepted && !atomic_load(&req->dmn->draining) && !extra.n)
		return MHD_queue_response(conn, 202, accepted);
	if (req->status == 202)
		return queue(conn, req->dmn, 202, "", 0, "text/plain", 0, extra);
	if (req->status == 204) /* a source's CORS preflight: no body */
		return queue(conn, req->dmn, 204, "", 0, NULL, 0, extra);
	n = snprintf(line, sizeof(line), "%s\n",
	             req->reason[0] ? req->reason : ceb_status_text(req->status));
	return queue(conn, req->dmn, req->status, line, (size_t)n, "text/plain; charset=utf-8",
	             req->retry_after, extra);
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
	unsigned rd = ceb_daemon_read_begin(dmn); /* the lists a reload changes */

	ceb_daemon_metrics(dmn, &b);
	ceb_daemon_read_end(dmn, rd);
	ret = queue(conn, dmn, 200, b.p ? b.p : "", b.len, "text/plain; version=0.0.4", 0,
	            (struct extra_headers){NULL, 0});
	ceb_buf_free(&b);
	return ret;
}

static enum MHD_Result push_field(struct hdr_list *l, const char *key, const char *value)
{
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

/* The request's fields in one pass over MHD's list (header fields, query parameters, cookies):
 * header fields and query parameters kept in their order, cookies only counted, and the internal
 * header found by its length before its name is compared. */
static enum MHD_Result collect_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     size_t key_size, const char *value, size_t value_size)
{
	struct mhd_req *mr = cls;

	(void)value_size;
	if (kind == MHD_HEADER_KIND) {
		if (!mr->internal && key_size == sizeof(CEB_INTERNAL_HEADER) - 1 &&
		    strcasecmp(key, CEB_INTERNAL_HEADER) == 0)
			mr->internal = value ? value : "";
		return push_field(&mr->hl, key, value);
	}
	if (kind == MHD_GET_ARGUMENT_KIND)
		return push_field(&mr->ql, key, value);
	return MHD_YES;
}

static struct conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

/* Write an answer straight to the socket and shut it down both ways, for the times MHD 0.9 cannot
 * queue one: in the middle of a header block or of a body. The bytes are those queue() makes for
 * an error (MHD's reason phrase, a Date, Connection: close, one line of text); MHD then sees the
 * end of the stream and closes the connection. Called with cn->lock held: the connection is
 * CONN_CLOSING, so MHD's thread writes nothing more. On a TLS connection the answer goes through its
 * session, which only MHD's own thread (mhd_thread) may use: the watchdog just closes it. */
static void answer_raw(struct conn *cn, int status, const char *reason, bool mhd_thread)
{
	char buf[sizeof(cn->ans_reason) + 256], date[64];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(buf, sizeof(buf),
	             "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n"
	             "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n\r\n%s\n",
	             status, MHD_get_reason_phrase_for((unsigned)status), date, strlen(reason) + 1,
	             reason);
	if (cn->secure) {
		if (!mhd_thread || !cn->tls || n <= 0 || (size_t)n >= sizeof(buf) ||
		    gnutls_record_send(cn->tls, buf, (size_t)n) < n)
			CEB_LOG_DEBUG("ingress",
			              "the %d answer could not be sent over TLS: "
			              "connection closed",
			              status);
	} else if (n > 0 && (size_t)n < sizeof(buf) &&
	           send(cn->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < n)
		CEB_LOG_DEBUG("ingress",
		              "the %d answer did not fit in the socket: connection closed", status);
	shutdown(cn->fd, SHUT_RDWR);
}

/* Counts a refusal made by the watchdog where request.c's refuse() would have. */
static void count_refused(struct ceb_daemon *dmn, struct ceb_endpoint *brk)
{
	atomic_fetch_add(&(brk ? &brk->cnt : &dmn->cnt)->rejected_4xx, 1);
}

/* The current request began (its first byte, or its line, is in). cn->lock held. */
static void conn_begin(struct conn *cn, uint64_t now)
{
	if (cn->phase != CONN_IDLE)
		return;
	cn->phase = CONN_HEAD;
	cn->start_ms = now;
}

/* Move cn to phase, unless the watchdog answered already: false then, and the request must end
 * without a word from MHD (its handler returns MHD_NO, which closes the connection). */
static bool conn_move(struct conn *cn, enum conn_phase phase)
{
	bool ok;

	pthread_mutex_lock(&cn->lock);
	ok = cn->phase != CONN_CLOSING;
	if (ok)
		cn->phase = phase;
	pthread_mutex_unlock(&cn->lock);
	return ok;
}

static uint64_t bytes_received(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
	    len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
		return RX_UNKNOWN;
	return ti.tcpi_bytes_received;
}

/* One connection at one tick of the watchdog; cn is in the list and ing->lock held. MHD says when a
 * request's line is in (on_uri), not when its first byte came: between requests the kernel's count
 * of received bytes tells, to within a tick. */
static void watch_conn(struct ceb_ingress *ing, struct conn *cn, uint64_t now, uint64_t limit)
{
	uint64_t rx;

	pthread_mutex_lock(&cn->lock);
	switch (cn->phase) {
	case CONN_IDLE:
		rx = bytes_received(cn->fd);
		if (rx == RX_UNKNOWN)
			break;
		if (cn->rx_mark == RX_UNKNOWN)
			cn->rx_mark = rx;
		else if (rx > cn->rx_mark)
			conn_begin(cn, now);
		break;
	case CONN_HEAD:
	case CONN_BODY:
	case CONN_DRAIN:
		if (now - cn->start_ms <= limit)
			break;
		if (cn->phase == CONN_DRAIN) {
			/* Refused earlier (the refusal was counted then); the body never ended. */
			answer_raw(cn, cn->ans_status, cn->ans_reason, false);
			observe(ing->dmn, cn->brk, cn->ans_status,
			        ceb_now_us() - (now - cn->start_ms) * 1000);
		} else {
			char reason[64];

			snprintf(reason, sizeof(reason), "request took longer than %u s",
			         ing->dmn->set.request_timeout_s);
			answer_raw(cn, 408, reason, false);
			count_refused(ing->dmn, cn->brk);
			observe(ing->dmn, cn->brk, 408, ceb_now_us() - (now - cn->start_ms) * 1000);
		}
		cn->phase = CONN_CLOSING;
		break;
	case CONN_OWNED:
	case CONN_CLOSING: break;
	}
	pthread_mutex_unlock(&cn->lock);
}

static void *watchdog(void *arg)
{
	struct ceb_ingress *ing = arg;
	uint64_t limit = (uint64_t)ing->dmn->set.request_timeout_s * 1000, tick = limit / 8;
	struct timespec until;

	if (tick < 50)
		tick = 50;
	if (tick > 1000)
		tick = 1000;
	pthread_mutex_lock(&ing->lock);
	while (!ing->stopping) {
		until = ceb_timespec_in_ms(CLOCK_MONOTONIC, (uint64_t)tick);
		pthread_cond_timedwait(&ing->wake, &ing->lock, &until);
		if (ing->stopping)
			break;
		for (struct conn *cn = ing->conns; cn; cn = cn->next)
			watch_conn(ing, cn, ceb_now_ms(), limit);
	}
	pthread_mutex_unlock(&ing->lock);
	return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	struct listener *lis = cls;
	struct ceb_ingress *ing = lis->ing;
	const union MHD_ConnectionInfo *ci, *ti;
	struct conn *cn;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		cn = calloc(1, sizeof(*cn));
		if (!cn || !ci) {
			/* on_request() refuses a connection without its record. */
			free(cn);
			return;
		}
		cn->fd = ci->connect_fd;
		cn->secure = lis->tls;
		if (lis->tls) {
			/* MHD writes an answer's head and body as two TLS records: without this,
			 * Nagle holds the second until the client's delayed ACK of the first. */
			int one = 1;

			setsockopt(cn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			ti = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
			cn->tls = ti ? ti->tls_session : NULL;
		}
		pthread_mutex_init(&cn->lock, NULL);
		cn->phase = CONN_IDLE;
		/* A new connection: every byte it received is of its first request. */
		cn->rx_mark = 0;
		pthread_mutex_lock(&ing->lock);
		cn->next = ing->conns;
		if (ing->conns)
			ing->conns->prev = cn;
		ing->conns = cn;
		pthread_mutex_unlock(&ing->lock);
		*socket_context = cn;
		return;
	}
	cn = *socket_context;
	if (!cn)
		return;
	pthread_mutex_lock(&ing->lock);
	if (cn->prev)
		cn->prev->next = cn->next;
	else
		ing->conns = cn->next;
	if (cn->next)
		cn->next->prev = cn->prev;
	pthread_mutex_unlock(&ing->lock);
	pthread_mutex_destroy(&cn->lock);
	ceb_mhd_req_free_spare(cn->spare);
	free(cn);
	*socket_context = NULL;
}

/* MHD's first word on a request: its line is in. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct conn *cn = conn_of(conn);

	(void)cls;
	(void)uri;
	if (cn) {
		pthread_mutex_lock(&cn->lock);
		conn_begin(cn, ceb_now_coarse_ms());
		cn->uri_ms = cn->phase != CONN_IDLE ? cn->start_ms : 0;
		pthread_mutex_unlock(&cn->lock);
	}
	return NULL; /* the request's context stays NULL until on_request() */
}

/* libmicrohttpd 0.9.75 keeps two defects of a header block to itself: a NUL byte in a field value
 * cuts the value there and drops the rest, and an obs-fold continuation line is glued onto the
 * field's name ("ce-region: eu" + "  more" becomes "ce-regionmore: eu"). Both show in where the
 * strings it hands out lie: it parses the block in place, in one buffer and in arrival order,
 * overwriting each CR, LF and colon with a NUL. So from the end of the version (or of a value) to
 * the next name there is exactly a line end, 1 or 2 bytes; from the last value to the end of the
 * block, 2 to 4; and a name lies inside the block. Anything else is bytes that MHD dropped. Only
 * distances are computed, no byte outside the strings is read; and only with the version whose
 * layout this describes (is_mhd_0975), since another could lay its buffer out otherwise. */
static const char *dropped_bytes(const char *method, const char *version, size_t header_size,
                                 const struct hdr_list *hl)
{
	uintptr_t lo = (uintptr_t)method, hi = lo + header_size, end, at;

	end = (uintptr_t)version + strlen(version);
	if (!header_size || (uintptr_t)version < lo || end > hi)
		return NULL; /* not the layout this knows: nothing to say */
	for (size_t i = 0; i < hl->n; i++) {
		at = (uintptr_t)hl->h[i].name;
		if (at < lo || at >= hi)
			return "a folded header line (obs-fold)";
		if (at - end < 1 || at - end > 2)
			return "a NUL byte in a header value, or a folded header line (obs-fold)";
		end = (uintptr_t)hl->h[i].value + strlen(hl->h[i].value);
		if (end < at || end > hi)
			return "a malformed header line";
	}
	if (hi - end < 2 || hi - end > 4)
		return "a NUL byte in a header value, or a folded header line (obs-fold)";
	return NULL;
}

/* The request's header fields (kept in mr for decoding) and its route. */
static enum ceb_route route_head(struct ceb_ingress *ing, struct mhd_req *mr,
                                 struct MHD_Connection *conn, const char *url, const char *method,
                                 const char *version)
{
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const union MHD_ConnectionInfo *hs =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	struct ceb_request_head head;
	int nfields;

	nfields = MHD_get_connection_values_n(
	        conn, MHD_HEADER_KIND | MHD_COOKIE_KIND | MHD_GET_ARGUMENT_KIND, collect_field, mr);
	if (mr->hl.oom || mr->ql.oom) {
		mr->req.status = 503;
		snprintf(mr->req.reason, sizeof(mr->req.reason), "out of memory");
		return CEB_ROUTE_ANSWER;
	}
	mr->req.internal = ceb_daemon_is_internal(ing->dmn, mr->internal);
	head.method = method;
	head.url = url;
	head.http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
	head.headers = mr->hl.h;
	head.nheaders = mr->hl.n;
	head.nfields = nfields > 0 ? (size_t)nfields : 0;
	head.size = hs ? hs->header_size : 0;
	head.client = ci ? ci->client_addr : NULL;
	head.defect = ing->mhd_0975 ? dropped_bytes(method, version, head.size, &mr->hl) : NULL;
	head.query = mr->ql.h;
	head.nquery = mr->ql.n;
	return ceb_request_route(&mr->req, &head);
}

/* Headers are complete: check them and route before reading any body. */
static enum MHD_Result on_head(struct ceb_ingress *ing, struct MHD_Connection *conn,
                               const char *url, const char *method, const char *version,
                               void **con_cls)
{
	struct conn *cn = conn_of(conn);
	struct ceb_buf body = CEB_BUF_INIT;
	enum MHD_Result ret = MHD_NO;
	struct mhd_req *mr;
	enum ceb_route route;
	bool ok;

	if (cn && cn->spare) {
		/* the previous request's record on this connection, and its body buffer */
		mr = cn->spare;
		cn->spare = NULL;
		body = mr->req.body;
	} else {
		/* Not calloc: the inline field arrays (1 KiB) need no zeroes; every other field
		 * is set. */
		mr = malloc(sizeof(*mr));
		if (!mr)
			return MHD_NO;
	}
	mr->conn = conn;
	mr->ing = ing;
	mr->cn = cn;
	hdr_list_init(&mr->hl);
	hdr_list_init(&mr->ql);
	mr->internal = NULL;
	mr->suspended = false;
	mr->owned = false;
	mr->q = NULL;
	ceb_request_init(&mr->req, ing->dmn, ceb_mhd_suspend, ceb_mhd_resume, mr);
	mr->req.body = body;
	if (!mr->cn)
		goto out; /* no memory for its record when it connected: closed */
	if (mr->cn->uri_ms)
		mr->req.start_ms = mr->cn->uri_ms;
	route = route_head(ing, mr, conn, url, method, version);
	/* Unless the watchdog answered already (MHD_NO then closes without a word from MHD). */
	pthread_mutex_lock(&mr->cn->lock);
	ok = mr->cn->phase != CONN_CLOSING;
	if (ok) {
		mr->cn->phase = route == CEB_ROUTE_BODY ? CONN_BODY : CONN_OWNED;
		mr->cn->brk = mr->req.brk;
	}
	pthread_mutex_unlock(&mr->cn->lock);
	if (!ok)
		goto out;
	if (route == CEB_ROUTE_BODY) {
		*con_cls = mr;
		mr = NULL;
		ret = MHD_YES;
		goto out;
	}
	ret = route == CEB_ROUTE_OPTIONS   ? answer_options(conn)
	      : route == CEB_ROUTE_METRICS ? answer_metrics(conn, ing->dmn)
	                                   : answer(conn, &mr->req, ing->accepted);
out:
	if (mr)
		ceb_mhd_req_end(mr, mr->cn);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct listener *lis = cls;
	struct ceb_ingress *ing = lis->ing;
	struct mhd_req *mr = *con_cls;
	struct conn *cn;
	bool ready;

	if (!mr && lis->internal_only &&
	    !ceb_daemon_is_internal(ing->dmn, MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	                                                                  CEB_INTERNAL_HEADER))) {
		static const char why[] = "this listener takes only the daemon's own deliveries; "
		                          "send to its HTTPS address\n";

		atomic_fetch_add(&ing->dmn->cnt.rejected_4xx, 1);
		return queue(conn, ing->dmn, 403, why, sizeof(why) - 1, "text/plain; charset=utf-8",
		             0, (struct extra_headers){NULL, 0});
	}
	if (!mr)
		return on_head(ing, conn, url, method, version, con_cls);
	cn = mr->cn;
	if (*upload_data_size) {
		bool keep = ceb_request_body(&mr->req, upload_data, *upload_data_size), ok;

		*upload_data_size = 0;
		/* A piece kept, nothing refused: nothing for the watchdog to know. Had it answered
		 * meanwhile, the socket is shut and the end of the body finds CONN_CLOSING. */
		if (keep && !mr->req.status)
			return MHD_YES;
		pthread_mutex_lock(&cn->lock);
		ok = cn->phase != CONN_CLOSING;
		if (ok && !keep) {
			/* MHD 0.9 cannot answer in the middle of a body: the answer goes out now, on
			 * the socket, and the connection closes. */
			answer_raw(cn, mr->req.status, mr->req.reason, true);
			observe(ing->dmn, mr->req.brk, mr->req.status, mr->req.t0_us);
			cn->phase = CONN_CLOSING;
		} else if (ok && mr->req.status && cn->phase == CONN_BODY) {
			/* Refused: the watchdog gives this answer if the rest of the body is late. */
			cn->ans_status = mr->req.status;
			snprintf(cn->ans_reason, sizeof(cn->ans_reason), "%s", mr->req.reason);
			cn->phase = CONN_DRAIN;
		}
		pthread_mutex_unlock(&cn->lock);
		return ok && keep ? MHD_YES : MHD_NO;
	}
	if (mr->suspended) {
		/* Resumed after the last publish completed. */
		mr->suspended = false;
		ceb_mhd_drain(mr->q);
		atomic_fetch_sub(&ing->suspended, 1);
	} else if (!mr->owned) {
		if (!conn_move(cn, CONN_OWNED))
			return MHD_NO; /* answered by the watchdog as the body ended */
		mr->owned = true;
	}
	ready = ceb_request_complete(&mr->req, mr->hl.h, mr->hl.n);
	if (!ready)
		return MHD_YES; /* suspended; resume() comes from the last publish completion */
	return answer(conn, &mr->req, ing->accepted);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct mhd_req *mr = *con_cls;
	struct conn *cn = conn_of(conn);

	(void)cls;
	(void)toe;
	if (cn) {
		/* The next request on the connection is timed from its own first byte. */
		pthread_mutex_lock(&cn->lock);
		if (cn->phase != CONN_CLOSING) {
			cn->phase = CONN_IDLE;
			cn->start_ms = 0;
			cn->rx_mark = RX_UNKNOWN;
			cn->brk = NULL;
		}
		pthread_mutex_unlock(&cn->lock);
	}
	if (!mr)
		return;
	/* Resumed, but the client had gone (wrk closing its connections at the end of a run): MHD
	 * ends the request without calling on_request again, and stop must not wait for it. */
	if (mr->suspended) {
		ceb_mhd_drain(mr->q);
		atomic_fetch_sub(&mr->ing->suspended, 1);
	}
	ceb_mhd_req_end(mr, cn);
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

/* Bind host:port and start serving on it; *port is the port bound. */
static int listener_start(struct ceb_ingress *ing, const char *host, int port, bool tls,
                          bool internal_only, int *bound, char *errbuf, size_t errlen)
{
	struct ceb_daemon *dmn = ing->dmn;
	struct listener *lis = &ing->lis[ing->nlis];
	struct addrinfo hints = {0}, *ai = NULL;
	/* Options some listeners take: TLS, and a thread pool (the loopback listener has none: MHD
	 * warns on stderr about a pool size it ignores). */
	struct MHD_OptionItem opts[4];
	size_t nopts = 0;
	const union MHD_DaemonInfo *info;
	char portstr[16];
	unsigned flags;
	size_t pool;
	int rc = CEB_EIO;

	lis->ing = ing;
	lis->tls = tls;
	lis->internal_only = internal_only;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai) {
		snprintf(errbuf, errlen, "cannot resolve listen address %s", host);
		goto out;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	        MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (tls) {
		flags |= MHD_USE_TLS;
		opts[nopts++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
		                                        ceb_tls_callback()};
		opts[nopts++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
		                                        (void *)CEB_TLS_PRIORITIES};
	}
	if (!internal_only)
		opts[nopts++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
		                                        (intptr_t)dmn->set.ingress_threads, NULL};
	opts[nopts] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
	/* MHD keeps the header block in a per-connection pool, with a 64-byte record per field: room
	 * for --max-header-size bytes and max_header_block / CEB_HEADER_FIELD_COST records (and a
	 * little for the answer's headers), so that a request within the limits reaches
	 * ceb_request_route(), which refuses one beyond them with its own 431. */
	pool = 2 * dmn->set.max_header_block + 4096;
	lis->mhd = MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, lis, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	        MHD_OPTION_CONNECTION_LIMIT, dmn->set.max_connections,
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, internal_only ? 0U : dmn->set.max_conn_per_ip,
	        MHD_OPTION_CONNECTION_TIMEOUT, dmn->set.idle_timeout_s,
	        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
	        ing, MHD_OPTION_NOTIFY_CONNECTION, on_connection, lis, MHD_OPTION_URI_LOG_CALLBACK,
	        on_uri, ing, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_ARRAY, opts,
	        MHD_OPTION_END);
	if (!lis->mhd) {
		snprintf(errbuf, errlen,
		         "cannot listen on %s:%d (in use, or not an address of this host)", host,
		         port);
		goto out;
	}
	info = MHD_get_daemon_info(lis->mhd, MHD_DAEMON_INFO_BIND_PORT);
	*bound = info ? info->port : port;
	ing->nlis++;
	rc = 0;
out:
	if (ai)
		freeaddrinfo(ai);
	return rc;
}

int ceb_ingress_start(struct ceb_daemon *dmn, struct ceb_ingress **out, int *port, char *errbuf,
                      size_t errlen)
{
	struct ceb_ingress *ing = calloc(1, sizeof(*ing));
	pthread_condattr_t cattr;
	const struct ceb_settings *set = &dmn->set;
	bool tls = set->tls_cert != NULL;
	char desc[256];
	int rc = CEB_EIO;

	if (!ing) {
		snprintf(errbuf, errlen, "out of memory");
		return CEB_ENOMEM;
	}
	ing->dmn = dmn;
	ing->mhd_0975 = strcmp(MHD_get_version(), "0.9.75") == 0;
	pthread_mutex_init(&ing->lock, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&ing->wake, &cattr);
	pthread_condattr_destroy(&cattr);
	/* The bytes queue() builds for a 202 (no body, Content-Type: text/plain), made once. */
	ing->accepted = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!ing->accepted || MHD_add_response_header(ing->accepted, MHD_HTTP_HEADER_CONTENT_TYPE,
	                                              "text/plain") != MHD_YES) {
		snprintf(errbuf, errlen, "out of memory");
		rc = CEB_ENOMEM;
		goto out;
	}
	if (tls) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
		    MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
			snprintf(errbuf, errlen,
			         "--tls-cert: this libmicrohttpd was built without "
			         "HTTPS (GnuTLS) support");
			goto out;
		}
		if ((rc = ceb_tls_create(set->tls_cert, set->tls_key, &ing->tls, errbuf, errlen)) <
		    0)
			goto out;
		rc = CEB_EIO;
	}
	if (listener_start(ing, set->listen_host, set->listen_port, tls, false, port, errbuf,
	                   errlen) < 0)
		goto out;
	if (set->listen_plain_host[0] &&
	    listener_start(ing, set->listen_plain_host, set->listen_plain_port, false, false,
	                   &dmn->plain_port, errbuf, errlen) < 0)
		goto out;
	if (tls && listener_start(ing, "127.0.0.1", 0, false, true, &dmn->internal_port, errbuf,
	                          errlen) < 0)
		goto out;
	if (dmn->set.request_timeout_s) {
		if (pthread_create(&ing->watchdog, NULL, watchdog, ing) != 0) {
			snprintf(errbuf, errlen, "cannot start the request timeout's thread");
			goto out;
		}
		ing->watching = true;
	}
	if (tls) {
		ceb_tls_describe(ing->tls, desc, sizeof(desc));
		CEB_LOG_INFO("ingress", "TLS certificate %s (%s)", set->tls_cert, desc);
		CEB_LOG_DEBUG(
		        "ingress",
		        "deliveries to this daemon's own addresses go to http://127.0.0.1:%d, "
		        "which takes nothing else",
		        dmn->internal_port);
	}
	*out = ing;
	ing = NULL;
	rc = 0;
out:
	if (ing) {
		for (size_t i = 0; i < ing->nlis; i++)
			MHD_stop_daemon(ing->lis[i].mhd);
		if (ing->accepted)
			MHD_destroy_response(ing->accepted);
		ceb_tls_destroy(ing->tls);
		pthread_cond_destroy(&ing->wake);
		pthread_mutex_destroy(&ing->lock);
	}
	free(ing);
	return rc;
}

int ceb_ingress_tls_reload(struct ceb_ingress *ing)
{
	char err[512], desc[256];
	int rc;

	if (!ing || !ing->tls)
		return 0;
	rc = ceb_tls_reload(ing->tls, err, sizeof(err));
	if (rc < 0) {
		CEB_LOG_ERR("ingress", "TLS certificate not reloaded, the previous one stays: %s",
		            err);
		return rc;
	}
	ceb_tls_describe(ing->tls, desc, sizeof(desc));
	CEB_LOG_INFO("ingress", "TLS certificate reloaded (%s)", desc);
	return 0;
}

void ceb_ingress_stop(struct ceb_ingress *ing)
{
	uint64_t deadline;

	if (!ing)
		return;
	if (ing->watching) {
		pthread_mutex_lock(&ing->lock);
		ing->stopping = true;
		pthread_cond_signal(&ing->wake);
		pthread_mutex_unlock(&ing->lock);
		pthread_join(ing->watchdog, NULL);
		ing->watching = false;
	}
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
	for (size_t i = 0; i < ing->nlis; i++)
		MHD_stop_daemon(ing->lis[i].mhd);
	if (ing->accepted)
		MHD_destroy_response(ing->accepted);
	ceb_tls_destroy(ing->tls);
	ceb_mhd_queues_free(ing);
	pthread_cond_destroy(&ing->wake);
	pthread_mutex_destroy(&ing->lock);
	free(ing);
}
