/* What the RabbitMQ unit suites share: a private rabbitmq-server for the test program
 * (tests/tools/rabbitmq_server.py: loopback, free ports, a temporary directory, stopped by its pid),
 * RabbitmqBrokerConfigs that point at it, and a plain rabbitmq-c client that reads and writes
 * queues and exchanges as another program would. */
#ifndef CEB_TEST_AMQP_FIXTURE_H
#define CEB_TEST_AMQP_FIXTURE_H

#include <stdbool.h>

#include <amqp.h>

#include "broker/config/config.h"
#include "channels/amqp/kinds.h"

#define WAIT_MS 20000

extern int rmq_port;

/* Start the server once for the program (exit 77 when this machine has none: a developer's
 * machine; CI installs it). rmq_stop stops it and removes its directory; registered with atexit
 * by the parent only. */
void rmq_start(void);
void rmq_stop(void);
/* SIGKILL the server; rmq_restart starts it again on the same port with the same data. */
void rmq_kill(void);
void rmq_restart(void);

/* A Broker's settings as the loader would give them: a RabbitmqBrokerConfig on the server. The
 * struct lives in the caller's storage. */
struct rmq_broker {
	struct ceb_rabbitmq_broker_config rb;
	struct ceb_broker_cfg bc;
};
const struct ceb_broker_cfg *rmq_broker_cfg(struct rmq_broker *b, bool classic);
/* A RabbitmqSource's settings on the server (queue and exchange named after `name`). */
void rmq_source_cfg(struct ceb_rabbitmq_source_cfg *src, const char *name, int parallelism);

/* A plain client (channel 1 open), or a failed check. */
amqp_connection_state_t rmq_client(void);
void rmq_client_close(amqp_connection_state_t conn);
/* Publish one message with a confirm; headers as n (name, value) string pairs. */
void rmq_publish(amqp_connection_state_t conn, const char *exchange, const char *routing_key,
                 const char *content_type, const char *message_id, const char *const *headers,
                 int n, const char *body);
/* Declare a classic queue bound to exchange with x-match all (and nothing more: every message). */
void rmq_tap(amqp_connection_state_t conn, const char *queue, const char *exchange);
/* basic.get one message (acked); false when the queue stays empty for ms. */
bool rmq_get(amqp_connection_state_t conn, const char *queue, amqp_message_t *msg, int ms);
/* A header of a message as a string (long strings only), or NULL; into buf. */
const char *rmq_header(const amqp_message_t *msg, const char *name, char *buf, size_t sz);

#endif
