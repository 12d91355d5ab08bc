/* The channel backends compiled into this build: one line each (X-macro). A backend that needs a
 * library is listed inside its HAVE_* guard. The first is the in-process default. */
CHANNEL(memory)
#ifdef HAVE_RDKAFKA
CHANNEL(kafka)
#endif
#ifdef HAVE_NATS
CHANNEL(nats)
#endif
#ifdef HAVE_RABBITMQ
CHANNEL(amqp)
#endif
#ifdef HAVE_SQLITE
CHANNEL(durable)
#endif
