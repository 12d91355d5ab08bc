/* The ingress's request logic, without any HTTP server: Knative's routing (/<namespace>/<broker>,
 * 404, 405, OPTIONS), the size and time limits, the per-client rate limit, decoding, the
 * knativebrokerttl loop guard, and publishing with one answer for all events of a batch. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/auth/auth.h"
#include "broker/error.h"
#include "broker/ratelimit.h"
#include "broker/ingress/request.h"

const char *ceb_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	}
	return "";
}

void ceb_request_init(struct ceb_request *req, struct ceb_daemon *dmn,
                      ceb_request_suspend_f *suspend, ceb_request_resume_f *resume, void *arg)
{
	memset(req, 0, sizeof(*req));
	req->dmn = dmn;
	req->suspend = suspend;
	req->resume = resume;
	req->arg = arg;
	req->start_ms = ceb_now_coarse_ms();
	req->t0_us = ceb_now_us();
	pthread_mutex_init(&req->lock, NULL);
}

void ceb_request_fini(struct ceb_request *req)
{
	ceb_buf_free(&req->body);
	pthread_mutex_destroy(&req->lock);
	if (req->ref)
		atomic_fetch_sub(&req->ref->refs, 1);
	if (req->ref_store)
		atomic_fetch_sub(&req->ref_store->refs, 1);
}

static enum ceb_route refuse(struct ceb_request *req, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static enum ceb_route refuse(struct ceb_request *req, int status, const char *fmt, ...)
{
	va_list ap;
	atomic_ulong *cnt;

	req->status = status;
	va_start(ap, fmt);
	vsnprintf(req->reason, sizeof(req->reason), fmt, ap);
	va_end(ap);
	if (status == 429 || status == 503)
		req->retry_after = req->retry_after ? req->retry_after : 1;
	cnt = status == 429   ? &(req->brk ? &req->brk->cnt : &req->dmn->cnt)->rejected_full
	      : status == 503 ? &(req->brk ? &req->brk->cnt : &req->dmn->cnt)->rejected_unavail
	                      : &(req->brk ? &req->brk->cnt : &req->dmn->cnt)->rejected_4xx;
	atomic_fetch_add(cnt, 1);
	return CEB_ROUTE_ANSWER;
}

/* "/ns/name" with two non-empty segments and nothing else. */
static bool path_is_broker(const char *url)
{
	const char *p;

	if (url[0] != '/' || url[1] == '/' || url[1] == '\0')
		return false;
	p = strchr(url + 1, '/');
	return p && p[1] != '\0' && !strchr(p + 1, '/');
}

/* What each byte is in a header field, one table look-up a byte (every byte of every header comes
 * here): bit 0, RFC 9110 section 5.6.2's tchar (the letters, the digits and !#$%&'*+-.^_`|~);
 * bit 1, a byte that ends a field value's scan: its NUL, or a control byte other than tab (0x00 to
 * 0x1f, 0x7f). */
#define HB_TCHAR 1
#define HB_STOP  2
static const unsigned char hbyte[256] = {
        [0x00 ... 0x08] = HB_STOP, [0x0a ... 0x1f] = HB_STOP, /* tab (0x09) may be in a value */
        [0x7f] = HB_STOP,          ['0' ... '9'] = HB_TCHAR,  ['A' ... 'Z'] = HB_TCHAR,
        ['a' ... 'z'] = HB_TCHAR,  ['!'] = HB_TCHAR,          ['#'] = HB_TCHAR,
        ['$'] = HB_TCHAR,          ['%'] = HB_TCHAR,          ['&'] = HB_TCHAR,
        ['\''] = HB_TCHAR,         ['*'] = HB_TCHAR,          ['+'] = HB_TCHAR,
        ['-'] = HB_TCHAR,          ['.'] = HB_TCHAR,          ['^'] = HB_TCHAR,
        ['_'] = HB_TCHAR,          ['`'] = HB_TCHAR,          ['|'] = HB_TCHAR,
        ['~'] = HB_TCHAR,
};

static bool is_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* The value of a Transfer-Encoding, trimmed: its last coding in *last (len *llen). */
static void last_coding(const char *te, const char **last, size_t *llen)
{
	const char *p = strrchr(te, ',');
	size_t n;

	p = p ? p + 1 : te;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	*last = p;
	*llen = n;
}

/* What the HTTP server leaves to us in a header block: its limits, the syntax of each field and
 * the body's framing (RFC 9112 sections 5 and 6). A request whose body length is ambiguous is
 * refused, never guessed: behind a proxy that frames it the other way, a guess smuggles a request.
 * *cl and *te are set to the Content-Length and Transfer-Encoding values (NULL when absent). */
static enum ceb_route check_head(struct ceb_request *req, const struct ceb_request_head *head,
                                 const char **cl, const char **te)
{
	const struct ceb_settings *set = &req->dmn->set;
	size_t max_fields = set->max_header_block / CEB_HEADER_FIELD_COST, nfields;
	char ex[48];

	*cl = *te = NULL;
	if (head->size > set->max_header_block)
		return refuse(req, 431,
		              "request line and headers are %zu bytes, over the limit of %zu bytes",
		              head->size, set->max_header_block);
	nfields = head->nfields ? head->nfields : head->nheaders;
	if (nfields > max_fields)
		return refuse(req, 431,
		              "%zu header fields (query parameters and cookies included), over the "
		              "limit of %zu",
		              nfields, max_fields);
	if (head->defect)
		return refuse(req, 400, "malformed header block: %s", head->defect);
	for (size_t i = 0; i < head->nheaders; i++) {
		const char *name = head->headers[i].name, *value = head->headers[i].value;
		const unsigned char *c;
		size_t nlen;

		for (c = (const unsigned char *)name; hbyte[*c] & HB_TCHAR; c++)
			;
		nlen = (size_t)(c - (const unsigned char *)name);
		if (*c || !name[0])
			return refuse(
			        req, 400,
			        "header name '%s' is not a token (whitespace before the colon, "
			        "or a folded line?)",
			        ceb_excerpt(ex, sizeof(ex), name, strlen(name)));
		for (c = (const unsigned char *)value; !(hbyte[*c] & HB_STOP); c++)
			;
		if (*c)
			return refuse(req, 400, "header '%s': control byte 0x%02x in the value",
			              ceb_excerpt(ex, sizeof(ex), name, strlen(name)), *c);
		/* the whole name compared only where its length fits */
		if (nlen == 14 && strcasecmp(name, "content-length") == 0) {
			if (*cl)
				return refuse(req, 400, "Content-Length appears more than once");
			*cl = value;
		} else if (nlen == 17 && strcasecmp(name, "transfer-encoding") == 0) {
			if (*te)
				return refuse(req, 400, "Transfer-Encoding appears more than once");
			*te = value;
		}
	}
	if (*cl && *te)
		return refuse(req, 400,
		              "both Transfer-Encoding and Content-Length: the body's length is "
		              "ambiguous");
	if (*cl && !is_digits(*cl))
		return refuse(req, 400, "Content-Length '%s' is not a number of bytes",
		              ceb_excerpt(ex, sizeof(ex), *cl, strlen(*cl)));
	if (*te) {
		const char *last;
		size_t llen;

		last_coding(*te, &last, &llen);
		if (llen != 7 || strncasecmp(last, "chunked", 7) != 0)
			return refuse(
			        req, 400,
			        "Transfer-Encoding '%s' does not end with chunked: the body's "
			        "length is unknown",
			        ceb_excerpt(ex, sizeof(ex), *te, strlen(*te)));
		if (last != *te)
			return refuse(req, 501,
			              "transfer coding '%s' is not supported; send the body with "
			              "only chunked, or with a Content-Length",
			              ceb_excerpt(ex, sizeof(ex), *te, strlen(*te)));
	}
	return CEB_ROUTE_BODY;
}

/* A request to a source that takes plain requests: what it says once the head is in. Its answer
 * headers go with every answer; a status below 400 (a CORS preflight's 204) is no refusal. */
static enum ceb_route admit_raw(struct ceb_request *req, const struct ceb_request_head *head)
{
	struct ceb_endpoint *brk = req->brk;
	struct ceb_raw_request rq = {
	        .method = head->method,
	        .path = head->url,
	        .headers = head->headers,
	        .nheaders = head->nheaders,
	        .query = head->query,
	        .nquery = head->query ? head->nquery : 0,
	        .body = "",
	        .internal = req->internal,
	};
	struct ceb_raw_answer ans;

	memset(&ans, 0, sizeof(ans));
	req->raw = true;
	req->method = rq.method;
	req->path = rq.path;
	req->query = rq.query;
	req->nquery = rq.nquery;
	brk->src->admit(brk->src_ctx, &rq, &ans);
	for (size_t i = 0; i < ans.nheaders && i < CEB_RAW_ANSWER_HEADERS; i++)
		req->ans_headers[req->nans_headers++] = ans.headers[i];
	if (!ans.status)
		return CEB_ROUTE_BODY;
	if (ans.status < 400) {
		req->status = ans.status;
		snprintf(req->reason, sizeof(req->reason), "%s", ans.reason);
		return CEB_ROUTE_ANSWER;
	}
	return refuse(req, ans.status, "%s",
	              ans.reason[0] ? ans.reason : ceb_status_text(ans.status));
}

/* Sender authentication, once the head is in (before any body is read): the bearer token, and
 * whether any EventPolicy of the address admits its subject. A 401 says how to authenticate. */
static enum ceb_route auth_token(struct ceb_request *req, const struct ceb_request_head *head)
{
	char reason[200];
	bool given = false;
	int st;

	st = ceb_auth_check_token(req->dmn->auth, req->auth_t, req->brk->label, head->headers,
	                          head->nheaders, req->auth_sub, sizeof(req->auth_sub), reason,
	                          sizeof(reason));
	if (st == 0) {
		req->authed = true;
		return CEB_ROUTE_BODY;
	}
	for (size_t i = 0; i < head->nheaders; i++)
		given |= strcasecmp(head->headers[i].name, "authorization") == 0;
	if (st == 401 && req->nans_headers < CEB_RAW_ANSWER_HEADERS)
		req->ans_headers[req->nans_headers++] = (struct ceb_http_header){
		        "WWW-Authenticate",
		        given ? "Bearer realm=\"cebroker\", error=\"invalid_token\""
		              : "Bearer realm=\"cebroker\""};
	return refuse(req, st, "%s", reason);
}

/* A delivery of this daemon's own: EventPolicies judge the resource that delivers (a Trigger, a
 * source, a Subscription) by the identity Knative gives it, as Knative's dispatchers send its token. */
static enum ceb_route auth_sender(struct ceb_request *req, const struct ceb_request_head *head)
{
	const char *sender = "";
	char reason[200];
	int st;

	for (size_t i = 0; i < head->nheaders; i++)
		if (strcasecmp(head->headers[i].name, CEB_INTERNAL_SENDER_HEADER) == 0)
			sender = head->headers[i].value;
	st = ceb_auth_check_sender(req->dmn->auth, req->auth_t, req->brk->label, sender,
	                           req->auth_sub, sizeof(req->auth_sub), reason, sizeof(reason));
	if (st)
		return refuse(req, st, "%s", reason);
	req->authed = true;
	return CEB_ROUTE_BODY;
}

/* Step two of sender authentication: each decoded event through the address's EventPolicies. */
static int auth_events(struct ceb_request *req, struct ceb_event *const *evs, size_t nevs)
{
	char reason[200];

	for (size_t i = 0; req->authed && i < nevs; i++) {
		int st = ceb_auth_check_event(req->dmn->auth, req->auth_t, req->brk->label,
		                              req->auth_sub, evs[i], reason, sizeof(reason));
		if (st) {
			refuse(req, st, "%s", reason);
			return -1;
		}
	}
	return 0;
}

/* The request timeout passed since the request's first byte. The coarse clock is enough against a
 * limit of seconds; start_ms may come from the precise one, a tick ahead of it. */
static bool late(const struct ceb_request *req)
{
	uint64_t limit = (uint64_t)req->dmn->set.request_timeout_s * 1000, now;

	if (!limit)
		return false;
	now = ceb_now_coarse_ms();
	return now > req->start_ms && now - req->start_ms > limit;
}

static enum ceb_route route(struct ceb_request *req, const struct ceb_request_head *head);

/* Routing reads the daemon's endpoint lists, which a reload changes: in a read section, and what
 * the request goes on to use is referenced before it ends. */
enum ceb_route ceb_request_route(struct ceb_request *req, const struct ceb_request_head *head)
{
	unsigned rd = ceb_daemon_read_begin(req->dmn);
	enum ceb_route r = route(req, head);

	if (req->brk && !req->ref) {
		req->ref = req->brk;
		atomic_fetch_add(&req->ref->refs, 1);
		if (req->brk->store && req->brk->store != req->brk) {
			req->ref_store = req->brk->store;
			atomic_fetch_add(&req->ref_store->refs, 1);
		}
	}
	ceb_daemon_read_end(req->dmn, rd);
	return r;
}

static enum ceb_route route(struct ceb_request *req, const struct ceb_request_head *head)
{
	struct ceb_daemon *dmn = req->dmn;
	const char *method = head->method, *url = head->url, *cl, *te;

	if (check_head(req, head, &cl, &te) == CEB_ROUTE_ANSWER)
		return CEB_ROUTE_ANSWER;
	if (late(req))
		return refuse(req, 408, "request took longer than %u s",
		              dmn->set.request_timeout_s);
	if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) {
		if (strcmp(url, "/healthz") == 0) {
			req->status = 200;
			snprintf(req->reason, sizeof(req->reason), "ok");
			return CEB_ROUTE_ANSWER;
		}
		if (strcmp(url, "/readyz") == 0) {
			bool ok = atomic_load(&dmn->ready) && !atomic_load(&dmn->draining);
			const struct ceb_endpoint *down = NULL;
			/* a channel whose server is out of reach (a NATS Broker's): not ready */
			for (const struct ceb_endpoint *ep = dmn->brokers; ok && ep && !down;
			     ep = ep->next)
				if (ep->ch.ops && ep->ch.ops->connected &&
				    !ep->ch.ops->connected(ep->ch.ctx))
					down = ep;
			ok = ok && !down;
			req->status = ok ? 200 : 503;
			if (down)
				snprintf(req->reason, sizeof(req->reason),
				         "not ready: %.200s cannot reach its server", down->label);
			else
				snprintf(req->reason, sizeof(req->reason),
				         ok ? "ready" : "not ready");
			return CEB_ROUTE_ANSWER;
		}
		if (strcmp(url, "/metrics") == 0)
			return CEB_ROUTE_METRICS;
	}
	/* the admin endpoint (broker/ingress/admin.c): shadows a Broker admin/replay */
	if (strcmp(url, "/admin/replay") == 0)
		return ceb_admin_request(req, head);
	if (!path_is_broker(url))
		return refuse(req, 404,
		              "no broker here: the ingress path is /<namespace>/<broker>");
	req->brk = ceb_endpoint_find(dmn, url, strlen(url));
	if (!req->brk)
		return refuse(req, 404, "no broker at %.250s", url);
	if (req->brk->src) {
		/* a source that takes plain requests (only such a source has a path) */
		if (admit_raw(req, head) == CEB_ROUTE_ANSWER)
			return CEB_ROUTE_ANSWER;
	} else if (strcmp(method, "OPTIONS") == 0) {
		return CEB_ROUTE_OPTIONS;
	}
	if (strcmp(method, "POST") != 0)
		return req->raw ? refuse(req, 405, "only POST is allowed on %s", req->brk->label)
		                : refuse(req, 405, "only POST is allowed on a broker");
	/* HTTP/1.0 has no chunked bodies: without a length the body would run to the end of the
	 * connection, which the server does not read as a body. */
	if (head->http10 && !cl)
		return refuse(req, 411, "an HTTP/1.0 POST needs a Content-Length header");
	/* A delivery of our own is served while draining: refusing it would fail an event this
	 * daemon already acknowledged (a Trigger to a KafkaSink here, a KafkaSource to a Broker). */
	if ((!atomic_load(&dmn->ready) || atomic_load(&dmn->draining)) && !req->internal)
		return refuse(req, 503,
		              atomic_load(&dmn->draining) ? "shutting down" : "not ready yet");
	if (dmn->rl && !req->internal &&
	    !ceb_ratelimit_allow(dmn->rl, head->client, ceb_now_ms(), &req->retry_after)) {
		/* Not through refuse(), which counts a 429 as a full channel: an operator must tell
		 * a client over its limit from a Broker out of room. */
		req->status = 429;
		snprintf(req->reason, sizeof(req->reason),
		         "too many requests from this client (limit %g per second)",
		         dmn->set.rate_limit);
		atomic_fetch_add(&req->brk->cnt.rejected_rate_limited, 1);
		return CEB_ROUTE_ANSWER;
	}
	if (dmn->auth) {
		/* An address with no target yet cannot be judged: refused, never let through. */
		req->auth_t = ceb_endpoint_auth(req->brk);
		if (!req->auth_t) {
			refuse(req, 503, "%s is not ready to authenticate senders",
			       req->brk->label);
			return CEB_ROUTE_ANSWER;
		}
		if (!req->internal && auth_token(req, head) == CEB_ROUTE_ANSWER)
			return CEB_ROUTE_ANSWER;
		if (req->internal && auth_sender(req, head) == CEB_ROUTE_ANSWER)
			return CEB_ROUTE_ANSWER;
	}
	if (cl) {
		unsigned long long n = 0, max = dmn->set.limits.max_event_size;

		/* digits only (check_head): read until past the limit, without strtoull's locale */
		for (const char *p = cl; *p && n <= max; p++)
			n = n > (ULLONG_MAX - 9) / 10 ? ULLONG_MAX : n * 10 + (unsigned)(*p - '0');
		/* Refused before reading (or inviting, with 100-continue) the body. */
		if (n > max)
			return refuse(req, 413,
			              "body of %.40s bytes is over the limit of %zu bytes", cl,
			              dmn->set.limits.max_event_size);
	}
	return CEB_ROUTE_BODY;
}

bool ceb_request_body(struct ceb_request *req, const char *data, size_t len)
{
	struct ceb_daemon *dmn = req->dmn;

	if (req->status) {
		/* Refused already: the rest of the body is read and dropped so that the client can read
		 * the answer after it, until the request timeout or one more body at most. */
		req->dropped += len;
		return !late(req) && req->dropped <= dmn->set.limits.max_event_size;
	}
	if (late(req)) {
		refuse(req, 408, "request took longer than %u s", dmn->set.request_timeout_s);
		ceb_buf_free(&req->body);
		return false;
	}
	if (req->body.len + len > dmn->set.limits.max_event_size) {
		refuse(req, 413, "body is over the limit of %zu bytes",
		       dmn->set.limits.max_event_size);
		ceb_buf_free(&req->body);
		return true;
	}
	if (ceb_buf_append(&req->body, data, len) < 0)
		refuse(req, 503, "out of memory");
	return true;
}

/* Which failure answers a request: one that retrying cannot cure beats one that it may. */
static int rank(int st)
{
	switch (st) {
	case 0: return 0;
	case CEB_EFULL: return 1;
	case CEB_ETOOBIG: return 3;
	default: return 2;
	}
}

/* One completion counted, under req->lock, which it releases: the last one resumes the request
 * if it is waiting suspended. */
static void completed_unlock(struct ceb_request *req)
{
	bool resume;

	req->pending--;
	resume = req->pending == 0 && req->waiting;
	if (resume)
		req->waiting = false;
	pthread_mutex_unlock(&req->lock);
	if (resume && req->resume)
		req->resume(req->arg);
}

static void publish_done(void *arg, int status)
{
	struct ceb_request *req = arg;

	pthread_mutex_lock(&req->lock);
	if (rank(status) > rank(req->worst))
		req->worst = status;
	completed_unlock(req);
}

/* "1-3, 5": the 1-based positions of the batch's events that were not stored. Cut with "..." when
 * it does not fit (a batch holds at most 100 events, so it nearly always does). */
static void positions(char *out, size_t sz, const int *each, size_t n)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *sep = len ? ", " : "";
		size_t j = i;
		int w;

		if (each[i] == 0)
			continue;
		while (j + 1 < n && each[j + 1] != 0)
			j++;
		w = j > i ? snprintf(out + len, sz - len, "%s%zu-%zu", sep, i + 1, j + 1)
		          : snprintf(out + len, sz - len, "%s%zu", sep, i + 1);
		if (w < 0 || (size_t)w >= sz - len) {
			snprintf(out + (sz > 4 ? sz - 4 : 0), sz > 4 ? 4 : sz, "...");
			return;
		}
		len += (size_t)w;
		i = j;
	}
}

/* The completion of a batch (a request of several events). */
static void batch_done(void *arg, int status, const int *each, size_t n)
{
	struct ceb_request *req = arg;

	pthread_mutex_lock(&req->lock);
	req->stored = 0;
	for (size_t i = 0; i < n; i++) {
		int st = each ? each[i] : status;
		if (rank(st) > rank(req->worst))
			req->worst = st;
		req->stored += st == 0;
	}
	if (each && req->stored && req->stored < n)
		positions(req->unstored, sizeof(req->unstored), each, n);
	completed_unlock(req);
}

/* Every publish completed: the one answer for all events of the request. */
static void finish(struct ceb_request *req)
{
	/* where the events went: a source's request stores into its sink's Broker, maybe */
	const struct ceb_endpoint *brk = req->raw ? req->brk->store : req->brk;
	int status = req->worst == CEB_EFULL ? 429 : req->worst == CEB_ETOOBIG ? 413 : 503;
	const char *why = req->worst == CEB_EFULL     ? "is full"
	                  : req->worst == CEB_ETOOBIG ? "cannot hold an event this large"
	                                              : "cannot store events now";

	if (req->worst == 0) {
		req->status = 202;
		req->reason[0] = '\0';
		atomic_fetch_add(&req->brk->cnt.accepted, req->nevents);
	} else if (req->stored) {
		/* Part of a batch, on a channel that stores event by event (Kafka): the sender must
		 * know which events to send again, and that the others must not be. */
		atomic_fetch_add(&req->brk->cnt.accepted, req->stored);
		refuse(req, status,
		       "%s %s: events %s of %zu (counting from 1) were not stored, the other %zu "
		       "were (do not send them again)",
		       brk->label, why, req->unstored, req->nevents, req->stored);
	} else if (req->worst == CEB_ETOOBIG) {
		refuse(req, 413, "%s cannot hold %s, however empty: send %s", brk->label,
		       req->nevents > 1 ? "a batch this large" : "an event this large",
		       req->nevents > 1 ? "fewer events at once (nothing was stored)"
		                        : "a smaller event");
	} else {
		refuse(req, status, "%s %s, retry later%s", brk->label, why,
		       req->nevents > 1 ? " (none of the batch's events was stored)" : "");
	}
}

static int decode_status(int err)
{
	switch (err) {
	case CEB_ETOOBIG: return 413;
	case CEB_EUNSUPPORTED: return 415;
	case CEB_ENOMEM: return 503;
	default: return 400;
	}
}

/* The loop guard as the sender set it: an Integer (or its string form, as binary mode carries it)
 * from 1 up; above --max-ttl it is lowered to it, so that a sender cannot buy a longer loop. The
 * event is still ours alone here, before publishing. 0 or -1 with the request refused. */
static int check_ttl(struct ceb_request *req, struct ceb_event *ev)
{
	const struct ceb_attr *ttl = ceb_event_get(ev, "knativebrokerttl");
	const char *id;
	long long v;
	char *end, ex[48];

	if (!ttl)
		return 0;
	id = ceb_event_get(ev, "id")->value;
	if (ttl->type == CEB_TYPE_INTEGER) {
		v = ttl->ival;
	} else {
		errno = 0;
		v = strtoll(ttl->value, &end, 10);
		/* Out of range (errno ERANGE) is still an integer: clamped below. */
		if (ttl->type != CEB_TYPE_STRING || end == ttl->value || *end ||
		    !(ttl->value[0] == '-' || (ttl->value[0] >= '0' && ttl->value[0] <= '9'))) {
			refuse(req, 400, "event %.100s: knativebrokerttl '%s' is not an integer",
			       id, ceb_excerpt(ex, sizeof(ex), ttl->value, ttl->len));
			return -1;
		}
	}
	if (v <= 0) {
		refuse(req, 400, "event %.100s: knativebrokerttl is exhausted (loop guard)", id);
		return -1;
	}
	if ((ttl->type != CEB_TYPE_INTEGER || v > req->dmn->set.max_ttl) &&
	    ceb_event_set_int(ev, "knativebrokerttl",
	                      (int32_t)(v > req->dmn->set.max_ttl ? req->dmn->set.max_ttl : v)) <
	            0) {
		refuse(req, 503, "out of memory");
		return -1;
	}
	return 0;
}

/* Publish the request's events (where the request's endpoint stores them) and finish it, now or,
 * suspended, from the last completion. */
static void publish(struct ceb_request *req, struct ceb_event *const *evs, size_t nevs)
{
	struct ceb_endpoint *to = req->raw ? req->brk->store : req->brk;
	bool ready;

	/* One extra count, held until the publish was started, so that a completion running on
	 * another thread cannot finish the request before it is suspended. */
	req->pending = nevs ? 2 : 1; /* an empty batch stores nothing and is accepted */
	req->nevents = nevs;
	req->published = true;
	/* A batch as one: all or nothing where the channel can (memory), else each event on its
	 * own, and the answer says which were stored. */
	if (nevs == 1)
		ceb_endpoint_publish(to, evs[0], publish_done, req);
	else if (nevs > 1)
		ceb_endpoint_publish_batch(to, evs, nevs, batch_done, req);
	pthread_mutex_lock(&req->lock);
	req->pending--;
	ready = req->pending == 0;
	if (!ready) {
		req->waiting = true;
		if (req->suspend)
			req->suspend(req->arg);
	}
	pthread_mutex_unlock(&req->lock);
	if (ready)
		finish(req);
}

/* The body of a request to a source that takes plain requests is in: the source makes the event,
 * which is checked against the event limits like any other, then stored. */
static bool complete_raw(struct ceb_request *req, const struct ceb_http_header *headers,
                         size_t nheaders)
{
	struct ceb_endpoint *brk = req->brk;
	struct ceb_raw_request rq = {
	        .method = req->method,
	        .path = req->path,
	        .headers = headers,
	        .nheaders = nheaders,
	        .query = req->query,
	        .nquery = req->nquery,
	        .body = req->body.p ? req->body.p : "",
	        .body_len = req->body.len,
	        .internal = req->internal,
	};
	struct ceb_raw_answer ans;
	struct ceb_event *ev = NULL;
	char err[256];
	int rc;

	memset(&ans, 0, sizeof(ans));
	rc = brk->src->to_event(brk->src_ctx, &rq, &ev, &ans);
	if (rc < 0 || !ev) {
		refuse(req, ans.status >= 400 ? ans.status : 503, "%s",
		       ans.reason[0] ? ans.reason : "out of memory");
		goto out;
	}
	rc = ceb_event_validate(ev, &req->dmn->set.limits, err, sizeof(err));
	if (rc < 0) {
		refuse(req, rc == CEB_ETOOBIG ? 413 : 400, "%s", err);
		goto out;
	}
	if (auth_events(req, &ev, 1) < 0)
		goto out;
	publish(req, &ev, 1);
out:
	ceb_event_unref(ev);
	return req->status != 0;
}

bool ceb_request_complete(struct ceb_request *req, const struct ceb_http_header *headers,
                          size_t nheaders)
{
	struct ceb_http_request hr;
	struct ceb_event **evs = NULL;
	enum ceb_http_mode mode;
	size_t nevs = 0;
	char err[256];
	int rc;

	if (req->status)
		return true;
	if (!req->published)
		req->t0_us = ceb_now_us(); /* the latency of an event: from its whole body in */
	if (req->published) {
		/* Resumed: every publish has completed. */
		finish(req);
		return true;
	}
	if (req->raw)
		return complete_raw(req, headers, nheaders);
	hr.headers = headers;
	hr.nheaders = nheaders;
	hr.body = req->body.p ? req->body.p : "";
	hr.body_len = req->body.len;
	rc = ceb_http_decode(&hr, &req->dmn->set.limits, &evs, &nevs, &mode, err, sizeof(err));
	if (rc < 0) {
		refuse(req, decode_status(rc), "%s", err);
		return true;
	}
	/* only a Broker counts hops: a KafkaSink stores events as they come */
	for (size_t i = 0; req->brk->cfg && i < nevs; i++)
		if (check_ttl(req, evs[i]) < 0)
			goto out;
	if (auth_events(req, evs, nevs) < 0)
		goto out;
	publish(req, evs, nevs);
out:
	for (size_t i = 0; i < nevs; i++)
		ceb_event_unref(evs[i]);
	free(evs);
	return req->status != 0;
}
