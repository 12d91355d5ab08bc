/* The CloudEvents Kafka protocol binding (binary and structured mode) and Knative's mapping of plain
 * Kafka records to CloudEvents (KafkaSource). Pure functions over librdkafka messages and headers:
 * no client, no thread. */
#ifndef CEB_KAFKA_BINDING_H
#define CEB_KAFKA_BINDING_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "broker/buf.h"
#include "broker/config/config.h"
#include "channels/kafka/kinds.h"
#include "broker/ce/event.h"

/* Records may come from any producer: bound them, but never below what our own ingress accepts
 * (--max-event-size goes up to 64 MiB), or a stored event could not be read back. */
extern const struct ceb_limits ceb_kafka_limits;

/* Binary mode: ce_<name> headers with the canonical strings (no percent-encoding: Kafka headers are
 * UTF-8) and content-type for the data's media type. NULL when out of memory. */
rd_kafka_headers_t *ceb_kafka_binary_headers(const struct ceb_event *ev);

/* Structured mode: the JSON event format as the value (appended to out) and a content-type header
 * application/cloudevents+json. 0, or CEB_ENOMEM (then *hdrs is NULL). */
int ceb_kafka_structured(const struct ceb_event *ev, struct ceb_buf *value,
                         rd_kafka_headers_t **hdrs);

/* Whether a record says it carries a CloudEvent: a ce_specversion header, or a content-type of
 * application/cloudevents (any format). */
bool ceb_kafka_is_cloudevent(const rd_kafka_message_t *m);

/* A record as a CloudEvent: structured mode when content-type says application/cloudevents+json,
 * binary mode otherwise. 0 and a new event, or an error with the reason in errbuf. */
int ceb_kafka_decode(const rd_kafka_message_t *m, struct ceb_event **out, char *errbuf,
                     size_t errlen);

/* A plain record as Knative's KafkaSource maps it: type dev.knative.kafka.event, source
 * /apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>, subject partition:<p>#<offset>, id
 * partition:<p>/offset:<offset>, time the record's timestamp, the key as extension `key` (typed by
 * key_type; a key that does not fit its type goes as byte-array) and as `partitionkey`, each header
 * but content-type as extension kafkaheader<name> (name lower-cased, characters other than [a-z0-9]
 * dropped), the value as data with the content-type header as datacontenttype (application/json for
 * a JSON value without one).
 * 0 and a new event, or CEB_ENOMEM. */
int ceb_kafka_map_record(const rd_kafka_message_t *m, const char *ns, const char *name,
                         enum ceb_key_type key_type, struct ceb_event **out);

#endif
