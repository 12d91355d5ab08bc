/* The HTTP ingress (libmicrohttpd): POST /<namespace>/<broker> in every CloudEvents mode, answered 202
 * only once the Broker's channel stored the events; /healthz, /readyz and /metrics beside it. */
#ifndef CEB_INGRESS_H
#define CEB_INGRESS_H

#include "broker/endpoint.h"

struct ceb_ingress;

/* Bind and start serving; *port is the port bound. 0 or an error with a reason in errbuf. */
int ceb_ingress_start(struct ceb_daemon *dmn, struct ceb_ingress **out, int *port, char *errbuf,
                      size_t errlen);
/* Read the TLS certificate and key again (SIGHUP): new connections get the new pair, those open keep
 * theirs; on failure the old pair stays and the reason is logged. 0 also without TLS. Main thread. */
int ceb_ingress_tls_reload(struct ceb_ingress *ing);
/* Stop serving. Call after the channels stopped (every publish completed), so that no request is
 * left suspended. */
void ceb_ingress_stop(struct ceb_ingress *ing);

#endif
