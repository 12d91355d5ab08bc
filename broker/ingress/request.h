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
	CEB_ROUTE_BODY,       /* a POST to a Broker: feed the body, then ceb_request_complete() */
};

/* suspend: called at most once, from ceb_request_complete() and under the request's lock, when the
 * answer must wait for a publish; resume: then called once, from the thread that completed the last
 * publish. Suspending under the lock guarantees that resume never runs before suspend. */
typedef void ceb_request_suspend_f(void *arg);
typedef void ceb_request_resume_f(void *arg);

struct ceb_request {
	struct ceb_daemon *dmn;
	struct ceb_broker *brk;
	int status;           /* the answer's HTTP status once known, else 0 */
	char reason[300];     /* one line for the client; empty for 202 */
	unsigned retry_after; /* seconds, sent with 429 and 503 */
	struct ceb_buf body;
	uint64_t start_ms;
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
};


void ceb_request_init(struct ceb_request *req, struct ceb_daemon *dmn,
                      ceb_request_suspend_f *suspend, ceb_request_resume_f *resume, void *arg);
void ceb_request_fini(struct ceb_request *req);

/* Route a request whose headers are in. content_length is the header's value or NULL; client is the
 * peer's address or NULL (rate limiting). Refusals are counted and answered before any body. */
enum ceb_route ceb_request_route(struct ceb_request *req, const char *method, const char *url,
                                 const char *content_length, const struct sockaddr *client);

/* Append a piece of the body (CEB_ROUTE_BODY). Over a limit the request is refused (status set) and
 * the rest of the body is dropped. Returns false when the connection should be closed at once: a
 * refused body still streaming in at twice the request timeout, or past another max_event_size
 * bytes. */
bool ceb_request_body(struct ceb_request *req, const char *data, size_t len);

/* The body is complete: decode, check and publish every event. Returns true when the answer is known
 * (status, reason). Returns false while a publish is pending: suspend(arg) was called and resume(arg)
 * follows once, after which ceb_request_complete() is called again and returns true. headers are only read on the
 * first call. */
bool ceb_request_complete(struct ceb_request *req, const struct ceb_http_header *headers,
                          size_t nheaders);

/* The reason phrase of a status ("Accepted"). */
const char *ceb_status_text(int status);

#endif
