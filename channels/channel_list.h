/* The channel backends compiled into this build: one line each (X-macro). */
CHANNEL(memory)
#ifdef HAVE_RDKAFKA
CHANNEL(kafka)
#endif
