/* One request to the ingress, independent of the HTTP server that carries it: routing once the
 * headers are in, the body with its limits, then decoding, the loop guard and publishing. The
 * libmicrohttpd glue (ingress.c) and the whole-request fuzzer drive it the same way. */
#ifndef CEB_REQUEST_H
#define CEB_REQUEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "broker/endpoint.h"
#include "broker/buf.h"
#include "broker/ce/http_binding.h"

enum ceb_route {
	CEB_ROUTE_ANSWER = 0, /* answer now with status and reason */
	CEB_ROUTE_OPTIONS,    /* the CloudEvents webhook handshake */
	CEB_ROUTE_METRICS,    /* GET /metrics */
	CEB_ROUTE_BODY,       /* a POST to a Broker (or a source's path): feed the body, then
			   ceb_request_complete() */
};

/* suspend: called at most once, from ceb_request_complete() and under the request's lock, when the
 * answer must wait for a publish; resume: then called once, from the thread that completed the last
 * publish. Suspending under the lock guarantees that resume never runs before suspend. */
typedef void ceb_request_suspend_f(void *arg);
typedef void ceb_request_resume_f(void *arg);

struct ceb_request {
	struct ceb_daemon *dmn;
	struct ceb_endpoint *brk;
	int status;           /* the answer's HTTP status once known, else 0 */
	char reason[300];     /* one line for the client; empty for 202 */
	unsigned retry_after; /* seconds, sent with 429 and 503 */
	struct ceb_buf body;
	uint64_t t0_us; /* for the ingress latency: the head in, then the body in (monotonic us) */
	uint64_t start_ms; /* the request's first byte (ceb_request_init: now); the request timeout
			      counts from it */
	ceb_request_suspend_f *suspend;
	ceb_request_resume_f *resume;
	void *arg;
	size_t nevents;       /* events in the request, for the accepted counter */
	pthread_mutex_t lock; /* guards the publish completion fields below */
	size_t pending;
	int worst;
	size_t stored;      /* events of a batch stored, when some were and others not (Kafka) */
	char unstored[200]; /* then the positions of the others, "2-4, 7" */
	bool waiting;
	bool published; /* the publishes were started */
	bool internal;  /* a delivery of this daemon to one of its own Brokers or KafkaSinks
			   (header CEB_INTERNAL_HEADER with the daemon's token): served while not
			   ready or draining, never rate limited */
	size_t dropped; /* body bytes dropped after a refusal */
	/* A request to a source that takes plain requests (source_ops.admit): the parts of its head
	 * that to_event reads, borrowed from the server until the request ends, and the headers the
	 * source adds to every answer (CORS). */
	bool raw;
	const char *method, *path;
	const struct ceb_http_header *query;
	size_t nquery;
	struct ceb_http_header ans_headers[CEB_RAW_ANSWER_HEADERS];
	size_t nans_headers;
	/* references taken at routing on brk and on where it stores (brk->store), dropped at fini:
	   a reload does not stop or free them before the request ends */
	struct ceb_endpoint *ref, *ref_store;
	/* Sender authentication: the request's token was verified (its events then go through the
	 * address's EventPolicies' filters), and its subject. */
	bool authed;
	const struct ceb_auth_target *auth_t; /* the address's, read once when routed */
	char auth_sub[256];
};

/* Call fini for every init: it drops what routing holds (see ref). */
void ceb_request_init(struct ceb_request *req, struct ceb_daemon *dmn,
                      ceb_request_suspend_f *suspend, ceb_request_resume_f *resume, void *arg);
void ceb_request_fini(struct ceb_request *req);

/* Bytes of the HTTP server's memory that a header field costs besides its text (libmicrohttpd
 * keeps a 64-byte record per field, query parameter and cookie): the header block limit admits
 * max_header_block / CEB_HEADER_FIELD_COST fields, and the server is given room for both. */
#define CEB_HEADER_FIELD_COST 64

/* A request's line and header fields as the HTTP server parsed them, borrowed for the call. */
struct ceb_request_head {
	const char *method;
	const char *url;
	bool http10;                           /* HTTP/1.0: a body needs a Content-Length */
	const struct ceb_http_header *headers; /* the header fields, in the order received */
	size_t nheaders;
	size_t nfields; /* header fields, query parameters and cookies: each costs the server the
			   same bookkeeping; 0 to count only nheaders */
	size_t size;    /* bytes of the request line and header block; 0 if unknown */
	const struct sockaddr *client; /* the peer's address, or NULL (no rate limiting) */
	const char *defect; /* a defect of the header block that the server tolerated but saw (a
			       NUL byte in a value...): answered 400 with it; NULL when none */
	/* the query's parameters, decoded, in order (read by a source that takes plain requests);
	   they must live until the request ends */
	const struct ceb_http_header *query;
	size_t nquery;
};

/* Route a request whose header block is in, after the checks the HTTP server leaves to us: the size
 * and field count limits (431), header field syntax (head->defect, a name that is not a token, a
 * control byte in a value: 400), the body's framing (Content-Length twice, Transfer-Encoding with Content-Length or
 * not ending in chunked: 400; a coding other than chunked: 501; an HTTP/1.0 POST without
 * Content-Length: 411) and the request timeout (408). Refusals are counted and answered before
 * any body. */
enum ceb_route ceb_request_route(struct ceb_request *req, const struct ceb_request_head *head);

/* Append a piece of the body (CEB_ROUTE_BODY). Over the size limit the request is refused (status
 * set) and the rest of the body is read and dropped, so that the answer comes after it. Returns
 * false when the answer (status and reason) must go out at once, in the middle of the body, and the
 * connection be closed: the request timeout passed (408, or the earlier refusal), or the dropped
 * body grew past another max_event_size bytes. */
bool ceb_request_body(struct ceb_request *req, const char *data, size_t len);

/* The body is complete: decode, check and publish every event. Returns true when the answer is known
 * (status, reason). Returns false while a publish is pending: suspend(arg) was called and resume(arg)
 * follows once, after which ceb_request_complete() is called again and returns true. headers are only read on the
 * first call. */
bool ceb_request_complete(struct ceb_request *req, const struct ceb_http_header *headers,
                          size_t nheaders);

/* The reason phrase of a status ("Accepted"). */
const char *ceb_status_text(int status);

/* POST /admin/replay?trigger=NS/NAME&(since_ms=MS|offset=N) (broker/ingress/admin.c): rewinds the
 * Trigger on a channel that keeps history; loopback peers only (403). Answers at once. */
enum ceb_route ceb_admin_request(struct ceb_request *req, const struct ceb_request_head *head);

#endif
