/* The CloudEvents NATS protocol binding (binary mode with ce- headers, percent-encoded; structured
 * JSON with or without a Content-Type) and cebroker's mapping of plain NATS messages to CloudEvents
 * (NatsSource). Pure functions over nats.c messages: no connection, no thread. */
#ifndef CEB_NATS_BINDING_H
#define CEB_NATS_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "broker/buf.h"
#include "broker/ce/event.h"

/* Messages may come from any publisher: bounded, but never below what our ingress accepts. */
extern const struct ceb_limits ceb_nats_limits;

/* Binary mode on msg: ce-<attr> headers (values percent-encoded), Content-Type for the data's
 * media type, Nats-Msg-Id = percent-encoded source, a space, percent-encoded id (so that two
 * sources' equal ids never collide and a retried publish is stored once). 0 or CEB_ENOMEM. */
int ceb_nats_set_headers(natsMsg *msg, const struct ceb_event *ev);

/* A message as a CloudEvent: structured when Content-Type says application/cloudevents+json or, with
 * no ce-specversion header, when the body is a JSON CloudEvent (what eventing-natss, Argo Events and
 * sdk-go write, often with no Content-Type); binary otherwise. 0 and a new event, CEB_ENOTFOUND when
 * the message does not claim to be a CloudEvent at all, or another error with errbuf. */
int ceb_nats_decode(natsMsg *msg, struct ceb_event **out, char *errbuf, size_t errlen);

/* A plain message as NatsSource maps it: type dev.cebroker.nats.message, source
 * /apis/v1alpha1/namespaces/<ns>/natssources/<name>, subject the NATS subject, id
 * <stream>:<sequence> for JetStream (a redelivery keeps it) or a fresh unique id for core NATS,
 * headers as natsheader<name> extensions, the body as data (datacontenttype from Content-Type, or
 * application/json for a JSON body). 0 and a new event, or CEB_ENOMEM. */
int ceb_nats_map_plain(natsMsg *msg, const char *ns, const char *name, const char *stream,
                       uint64_t seq, struct ceb_event **out);

#endif
