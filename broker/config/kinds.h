/* The resource kinds this build loads, one line each (X-macros), each defined in its own file as
 * `const struct ceb_kind ceb_kind_<name>` (the core's in broker/config/, a family's with the
 * family); and the readers of a Broker's spec.config ConfigMap that channel backends bring
 * (`const struct ceb_broker_config_reader ceb_broker_config_<name>`). The includer defines both
 * KIND and BROKER_CONFIG. The order of kinds is the order of "supported kinds" in messages. Kinds
 * are parsed in every build: a build without a backend says so where the resource names it. */
KIND(broker)
KIND(trigger)
KIND(configmap)
KIND(secret)
KIND(kafka_source)
KIND(kafka_sink)
KIND(rabbitmq_broker_config)
KIND(rabbitmq_source)

BROKER_CONFIG(kafka)
BROKER_CONFIG(amqp)
