/* The CloudEvents AMQP binding on AMQP 0-9-1 messages (rabbitmq-c): what a RabbitMQ Broker writes
 * and every form it reads, and eventing-rabbitmq's mapping of plain messages (RabbitmqSource). Pure
 * functions over rabbitmq-c's properties and bodies: no connection, no thread. */
#ifndef CEB_AMQP_BINDING_H
#define CEB_AMQP_BINDING_H

#include <stdbool.h>
#include <stddef.h>

#include <amqp.h>

#include "broker/ce/event.h"

/* Messages may come from any producer: bound them, but never below what our own ingress accepts. */
extern const struct ceb_limits ceb_amqp_limits;

/* A message being written: its properties point into `hdr` and into the event, which must outlive
 * the publish call. */
struct ceb_amqp_out {
	amqp_basic_properties_t props;
	amqp_table_entry_t *hdr; /* cloudEvents_<attr> headers */
	size_t nhdr;
	char *names; /* the header names, one block */
};

/* Binary mode: each attribute but datacontenttype as a header cloudEvents_<name> (a long string),
 * content_type = datacontenttype, message_id = id, delivery_mode 2 (persistent). 0 or CEB_ENOMEM;
 * free with ceb_amqp_out_free (also after a failure). The body is the event's data. */
int ceb_amqp_encode(const struct ceb_event *ev, struct ceb_amqp_out *out);
void ceb_amqp_out_free(struct ceb_amqp_out *out);

/* Whether a message carries a CloudEvent: a specversion header under any of the names read (bare,
 * ce-, cloudEvents_, cloudEvents:), or a content_type of application/cloudevents. */
bool ceb_amqp_is_cloudevent(const amqp_basic_properties_t *props);

/* A message as a CloudEvent: structured mode when content_type is application/cloudevents+json,
 * else binary mode from the headers (bare names, ce-, cloudEvents_ and cloudEvents: prefixes, any
 * case; x-* headers and trace headers other than traceparent/tracestate are skipped), with
 * content_type as datacontenttype. 0 and a new event, or an error with the reason in errbuf. */
int ceb_amqp_decode(const amqp_basic_properties_t *props, const amqp_bytes_t *body,
                    struct ceb_event **out, char *errbuf, size_t errlen);

/* A plain message as eventing-rabbitmq's RabbitmqSource maps it: type dev.knative.rabbitmq.event,
 * source /apis/v1/namespaces/<ns>/rabbitmqsources/<name>#<queue>, id from message_id or a new UUID,
 * subject the same as id, time from the timestamp property, datacontenttype from content_type, the
 * body as data. 0 and a new event, or CEB_ENOMEM. */
int ceb_amqp_map_message(const amqp_basic_properties_t *props, const amqp_bytes_t *body,
                         const char *ns, const char *name, const char *queue,
                         struct ceb_event **out);

#endif
