/* The resource kinds this build loads, one line each (X-macros), each defined in its own file as
 * `const struct ceb_kind ceb_kind_<name>` (the core's in broker/config/, a family's with the
 * family); and the readers of a Broker's spec.config ConfigMap that channel backends bring
 * (`const struct ceb_broker_config_reader ceb_broker_config_<name>`); and the channel kinds of
 * Knative's messaging that a backend brings (KafkaChannel: `const struct ceb_channel_kind
 * ceb_channel_kind_<name>`, read by Channel, Sequence and Parallel templates too). The includer
 * defines KIND, BROKER_CONFIG and CHANNEL_KIND. The order of kinds is the order of "supported kinds" in messages. Kinds
 * are parsed in every build: a build without a backend says so where the resource names it. */
KIND(broker)
KIND(trigger)
KIND(configmap)
KIND(secret)
KIND(in_memory_channel)
KIND(channel)
KIND(subscription)
KIND(sequence)
KIND(parallel)
KIND(kafka_source)
KIND(kafka_sink)
KIND(kafka_channel)
KIND(ping_source)
KIND(container_source)
KIND(webhook_source)
KIND(nats_source)
KIND(nats_jetstream_channel)
KIND(rabbitmq_broker_config)
KIND(rabbitmq_source)
KIND(event_policy)
KIND(durable_channel)

BROKER_CONFIG(kafka)
BROKER_CONFIG(nats)
BROKER_CONFIG(amqp)

CHANNEL_KIND(kafka)
CHANNEL_KIND(nats)
CHANNEL_KIND(durable)
