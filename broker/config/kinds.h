/* The resource kinds this build loads: one line each (X-macro), the kind's definition
 * `const struct ceb_kind ceb_kind_<name>` in its own file (the core's in broker/config/, a family's
 * with the family). The order is the order of "supported kinds" in messages. */
KIND(broker)
KIND(trigger)
KIND(configmap)
KIND(kafka_source)
KIND(kafka_sink)
