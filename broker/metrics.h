/* The /metrics page: Prometheus text for every endpoint and subscription of the runtime. */
#ifndef CEB_METRICS_H
#define CEB_METRICS_H

#include "broker/buf.h"
#include "broker/endpoint.h"

/* Appends the whole page to out. Any thread (counters are atomic). */
void ceb_daemon_metrics(struct ceb_daemon *dmn, struct ceb_buf *out);

#endif
