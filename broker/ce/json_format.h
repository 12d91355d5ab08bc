/* The CloudEvents JSON event format (single events and batches): a strict decoder that keeps `data`
 * byte-identical, and a compact, deterministic encoder. */
#ifndef CEB_JSON_FORMAT_H
#define CEB_JSON_FORMAT_H

#include <stddef.h>

#include "broker/buf.h"
#include "broker/ce/event.h"

/* Decode one JSON-format event from buf (len bytes, not necessarily NUL-terminated) and validate it
 * (ceb_event_validate with lim; lim NULL means ceb_limits_default). The decoder is strict: RFC 8259
 * syntax, UTF-8 and \u escapes (unpaired surrogates rejected), no duplicate members, nesting at most
 * lim->max_json_depth. `null` members are unset. `data` with a JSON datacontenttype (or none) is kept
 * as the raw JSON text of the input (CEB_DATA_JSON); with another datacontenttype a string becomes its
 * UTF-8 bytes and any other value its raw JSON text; `data_base64` becomes its bytes
 * (CEB_DATA_BASE64).
 * Returns 0 and a new event (refcount 1, the caller unrefs) in *out; or CEB_EINVAL (bad JSON or a bad
 * event), CEB_ETOOBIG (over the size limit), CEB_EINVAL also for too deep or too many attributes, CEB_ENOMEM, with a one-line reason in errbuf; *out is untouched on
 * failure. Any thread. */
int ceb_json_decode(const char *buf, size_t len, const struct ceb_limits *lim,
                    struct ceb_event **out, char *errbuf, size_t errlen);

/* Decode a JSON batch (application/cloudevents-batch+json): an array of events, possibly empty, at
 * most lim->max_batch (else CEB_ETOOBIG), all with the same specversion. On success *out is a
 * malloc'd array of *n new events (NULL when *n is 0); the caller unrefs each and frees the array.
 * On failure nothing is returned and errbuf names the failing element ("event 3: ..."). */
int ceb_json_decode_batch(const char *buf, size_t len, const struct ceb_limits *lim,
                          struct ceb_event ***out, size_t *n, char *errbuf, size_t errlen);

/* Append the JSON-format form of ev to out: compact, attributes in ceb_event_attr_at() order, typed
 * extensions as JSON numbers and booleans. Data: CEB_DATA_BASE64 data as `data_base64`; a JSON
 * content type (or none, with CEB_DATA_JSON) and data that is exactly one JSON text without
 * surrounding whitespace as the `data` value itself; a non-JSON content type and UTF-8 data as a
 * `data` string; anything else as `data_base64`, so that decoding gives back the same bytes.
 * 0 or CEB_ENOMEM. The event is only read. */
int ceb_json_encode(const struct ceb_event *ev, struct ceb_buf *out);

/* Append a JSON batch (array) of n events. 0 or CEB_ENOMEM. */
int ceb_json_encode_batch(struct ceb_event *const *evs, size_t n, struct ceb_buf *out);

/* true if s is exactly one JSON text (RFC 8259, strict as above, no surrounding whitespace) nested at
 * most max_depth deep. */
bool ceb_json_valid(const char *s, size_t len, size_t max_depth);

/* Append s as a JSON string literal (quotes included), escaping '"', '\\' and control characters.
 * s must be valid UTF-8. 0 or CEB_ENOMEM. */
int ceb_json_put_string(struct ceb_buf *out, const char *s, size_t len);

#endif
