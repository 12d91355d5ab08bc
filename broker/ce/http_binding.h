/* The CloudEvents HTTP protocol binding: events from HTTP requests (binary, structured and batched
 * mode) and the headers to deliver one, with the binding's percent-encoding of header values. */
#ifndef CEB_HTTP_BINDING_H
#define CEB_HTTP_BINDING_H

#include <stddef.h>

#include "broker/buf.h"
#include "broker/ce/event.h"

struct ceb_http_header {
	const char *name;  /* NUL-terminated, any case */
	const char *value; /* NUL-terminated, as received (surrounding whitespace is ignored) */
};

/* A received request, borrowed from the HTTP server for the duration of the call. */
struct ceb_http_request {
	const struct ceb_http_header *headers;
	size_t nheaders;
	const char *body;
	size_t body_len;
};

enum ceb_http_mode {
	CEB_HTTP_BINARY,
	CEB_HTTP_STRUCTURED,
	CEB_HTTP_BATCH
};

/* The media types of structured and batched mode that this binding writes. */
#define CEB_HTTP_STRUCTURED_CT "application/cloudevents+json; charset=utf-8"
#define CEB_HTTP_BATCH_CT      "application/cloudevents-batch+json; charset=utf-8"

/* Decode the events of a request. The mode comes from Content-Type (case-insensitive):
 * application/cloudevents-batch... is batched, application/cloudevents... structured (only +json is
 * supported, with an optional charset utf-8), anything else (or none) binary: `ce-` headers (names
 * stored lower-case; values unquoted, then percent-decoded once, and must be UTF-8), Content-Type as
 * datacontenttype, the body (copied once) as data; an empty body is no data. Every event is validated
 * with lim (NULL: ceb_limits_default).
 * Returns 0 with a malloc'd array of *nevs new events in *evs (NULL when *nevs is 0, which only an
 * empty batch gives); the caller unrefs each event and frees the array. Errors, with a one-line
 * reason for the sender in errbuf and nothing returned: CEB_EINVAL (400, also for too many attributes or too long a value), CEB_ETOOBIG (413: size, batch count),
 * CEB_EUNSUPPORTED (415), CEB_ENOMEM. *mode is set whenever the mode was recognised. Any thread. */
int ceb_http_decode(const struct ceb_http_request *req, const struct ceb_limits *lim,
                    struct ceb_event ***evs, size_t *nevs, enum ceb_http_mode *mode, char *errbuf,
                    size_t errlen);

/* Receives one header to send; a non-zero return stops ceb_http_encode_headers, which returns it. */
typedef int ceb_http_header_f(void *arg, const char *name, const char *value);

/* false when ev cannot travel in binary mode: its content type starts with application/cloudevents,
 * so a receiver would take the data for a structured or batched event. Send it structured. */
bool ceb_http_binary_possible(const struct ceb_event *ev);

/* Produce the headers to deliver ev in mode through cb (name and value are only valid during the
 * call). Binary: `ce-<name>` per attribute except datacontenttype, value percent-encoded, then
 * `Content-Type` = ceb_event_content_type(ev) when there is one. Structured (and batch): only
 * `Content-Type` with CEB_HTTP_STRUCTURED_CT (CEB_HTTP_BATCH_CT). The body is ceb_event_data() in
 * binary mode, ceb_json_encode() in structured mode. 0, CEB_ENOMEM, CEB_EUNSUPPORTED for binary mode
 * when ceb_http_binary_possible() is false (nothing was emitted), or cb's non-zero return. */
int ceb_http_encode_headers(const struct ceb_event *ev, enum ceb_http_mode mode,
                            ceb_http_header_f *cb, void *arg);

/* Append the binding's percent-encoding of s: space, '"', '%' and every byte outside 0x21-0x7E as
 * %XX (upper-case hex). 0 or CEB_ENOMEM. */
int ceb_percent_encode(const char *s, size_t len, struct ceb_buf *out);

/* Append the decoding of one header value: RFC 7230 quoted-string unescaping when the value is quoted,
 * then exactly one round of percent-decoding (either hex case); the result must be valid UTF-8.
 * Surrounding whitespace is ignored. 0, CEB_EINVAL (a bad escape, bad quoting, not UTF-8; out then
 * holds a partial result) or CEB_ENOMEM. */
int ceb_percent_decode(const char *s, size_t len, struct ceb_buf *out);

#endif
