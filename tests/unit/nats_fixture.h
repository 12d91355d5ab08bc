/* What the NATS unit suites share: a real nats-server -js started once per test program on
 * loopback with a free port and a temporary store, stopped by its pid; Broker settings pointing at
 * it. */
#ifndef CEB_TEST_NATS_FIXTURE_H
#define CEB_TEST_NATS_FIXTURE_H

#include "broker/config/config.h"
#include "channels/nats/kinds.h"

#define NATS_WAIT_MS 20000

/* nats://127.0.0.1:PORT of the server, once nats_server_start ran. */
extern char nats_url[64];

/* Start nats-server (exits the program if it cannot) / stop it (SIGTERM, then reap) / kill it
 * with SIGKILL and start it again on the same port and store. */
void nats_server_start(void);
void nats_server_stop(void);
void nats_server_restart(void);

/* A Broker's settings whose ConfigMap points at the server, as the loader would read them. */
struct nats_broker {
	struct ceb_broker_cfg broker;
	struct ceb_configmap cm;
	struct ceb_nats_broker_cfg nb;
};
const struct ceb_broker_cfg *nats_broker_make(struct nats_broker *b);

#endif
