/* The /metrics page: Prometheus text for every endpoint and subscription of the runtime. */
#ifndef CEB_METRICS_H
#define CEB_METRICS_H

#include "broker/buf.h"
#include "broker/endpoint.h"

/* Appends the whole page to out. Any thread (counters are atomic). */
void ceb_daemon_metrics(struct ceb_daemon *dmn, struct ceb_buf *out);

/* Appends the series operators graph (metrics_graph.c): Knative's event counts by response code
 * and dispatch latency histograms, the in-flight and queued gauges, build info. Any thread. */
void ceb_metrics_graph(struct ceb_daemon *dmn, struct ceb_buf *out);

#endif
