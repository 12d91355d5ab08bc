/* Dispatchers: delivery threads, each with a libcurl multi handle and a timer heap for backoff. They
 * take messages from the channels, deliver them to subscribers with retries, dead-letter what fails,
 * publish replies, and settle each message with its channel. */
#ifndef CEB_DISPATCHER_H
#define CEB_DISPATCHER_H

#include <stddef.h>

#include "broker/endpoint.h"

struct ceb_dispatcher;

/* Create (not yet running). NULL on failure. */
/* The CA bundle a delivery with CACerts trusts: the PEM ca_certs, then libcurl's default bundle
 * file (the system's store; its CA directory is searched as well). *out is malloc'd, the caller's.
 * 0 or CEB_ENOMEM. */
int ceb_delivery_ca_blob(const char *ca_certs, char **out, size_t *len);
struct ceb_dispatcher *ceb_dispatcher_new(struct ceb_daemon *dmn, int index);
/* The channel calls this (through ceb_sub_cfg.on_msg with arg = the subscription) from any thread. */
void ceb_dispatcher_on_msg(void *subscription, struct ceb_event *ev, void *handle);
int ceb_dispatcher_start(struct ceb_dispatcher *dsp);
/* Deliveries queued, waiting for a retry or in flight. */
size_t ceb_dispatcher_busy(struct ceb_dispatcher *dsp);
/* Stop the thread and wait for it; what it holds stays held (see give_back). */
void ceb_dispatcher_stop(struct ceb_dispatcher *dsp);
/* After stop: give every message held back to its channel (settle FAILED: a durable channel hands it
 * again at the next start; the memory channel counts it lost). Settling may hand messages to other
 * dispatchers, so the daemon repeats this over all of them until it returns 0 everywhere. Returns
 * how many messages were held. */
size_t ceb_dispatcher_give_back(struct ceb_dispatcher *dsp);
void ceb_dispatcher_free(struct ceb_dispatcher *dsp);

#endif
