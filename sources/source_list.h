/* The source kinds compiled into this build: one line each (X-macro). A source that needs a library
 * is listed inside its HAVE_* guard. */
#ifdef HAVE_RDKAFKA
SOURCE(kafka)
#endif
SOURCE(ping)
SOURCE(container)
SOURCE(webhook)
#ifdef HAVE_NATS
SOURCE(nats)
#endif
#ifdef HAVE_RABBITMQ
SOURCE(amqp)
#endif
