"""The RabbitMQ kinds as `cebroker validate` reads them: RabbitmqBrokerConfig, RabbitmqSource, a
Broker of class RabbitMQBroker naming one in spec.config, the Trigger parallelism annotation. Every
error located as file:line:col with the resource and the field; a connectionSecret's values never in a
message; the sample validates. No server is needed: validate reaches none."""

import os
import unittest

from cebtest import main, run_cli, yaml_file

TOP = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", ".."))

SECRET = """apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  uri: %s
  username: admin
  password: %s
---
"""

BAD = """apiVersion: eventing.knative.dev/v1alpha1
kind: RabbitmqBrokerConfig
metadata:
  name: operator
spec:
  rabbitmqClusterReference:
    name: my-cluster
  queueType: mirrored
---
apiVersion: eventing.knative.dev/v1alpha1
kind: RabbitmqBrokerConfig
metadata:
  name: nosecret
spec:
  rabbitmqClusterReference:
    connectionSecret:
      name: nope
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: noconfig
  annotations:
    eventing.knative.dev/broker.class: RabbitMQBroker
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: wrongclass
spec:
  config:
    apiVersion: eventing.knative.dev/v1alpha1
    kind: RabbitmqBrokerConfig
    name: operator
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: par
  annotations:
    rabbitmq.eventing.knative.dev/parallelism: "1001"
spec:
  broker: noconfig
  subscriber:
    uri: http://127.0.0.1:9/
---
apiVersion: sources.knative.dev/v1alpha1
kind: RabbitmqSource
metadata:
  name: src
spec:
  rabbitmqClusterReference:
    connectionSecret:
      name: nope
  rabbitmqResourcesConfig:
    parallelism: 0
  sink:
    uri: http://127.0.0.1:9/
"""

GOOD = SECRET + """apiVersion: eventing.knative.dev/v1alpha1
kind: RabbitmqBrokerConfig
metadata:
  name: cfg
spec:
  rabbitmqClusterReference:
    connectionSecret:
      name: creds
  queueType: classic
  vhost: orders
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: b
  annotations:
    eventing.knative.dev/broker.class: RabbitMQBroker
spec:
  config:
    apiVersion: eventing.knative.dev/v1alpha1
    kind: RabbitmqBrokerConfig
    name: cfg
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: t
  annotations:
    rabbitmq.eventing.knative.dev/parallelism: "100"
spec:
  broker: b
  subscriber:
    uri: http://127.0.0.1:9/
---
apiVersion: sources.knative.dev/v1alpha1
kind: RabbitmqSource
metadata:
  name: s
spec:
  rabbitmqClusterReference:
    connectionSecret:
      name: creds
  rabbitmqResourcesConfig:
    queueName: in
    predeclared: true
    parallelism: 10
  delivery:
    retry: 3
    deadLetterSink:
      uri: http://127.0.0.1:9/dls
  sink:
    uri: http://127.0.0.1:9/
"""


class RabbitMQConfig(unittest.TestCase):
    def validate(self, text):
        path = yaml_file(self, text)
        os.chmod(path, 0o600)
        st, out, err = run_cli("validate", "-f", path)
        return st, (out + err).replace(path, "F")

    def test_every_error_is_located_and_says_what_to_do(self):
        st, out = self.validate(BAD)
        self.assertEqual(st, 1, out)
        for line in [
            "F:7:11: RabbitmqBrokerConfig default/operator: spec.rabbitmqClusterReference.name: "
            "a RabbitmqCluster of the RabbitMQ operator is not reachable without Kubernetes: use "
            "connectionSecret",
            "F:8:14: RabbitmqBrokerConfig default/operator: spec.queueType: \"mirrored\" is not a "
            "queue type (quorum or classic)",
            "F:17:7: RabbitmqBrokerConfig default/nosecret: "
            "spec.rabbitmqClusterReference.connectionSecret: Secret default/nope not found",
            "F:22:9: Broker default/noconfig: spec.config: a Broker of class RabbitMQBroker needs "
            "spec.config naming a RabbitmqBrokerConfig (apiVersion eventing.knative.dev/v1alpha1)",
            "F:32:5: Broker default/wrongclass: spec.config: a RabbitmqBrokerConfig holds the "
            "settings of a Broker on the amqp channel, not of a MTChannelBasedBroker Broker",
            "Trigger default/par: metadata.annotations[\"rabbitmq.eventing.knative.dev/"
            "parallelism\"]: \"1001\" is not a parallelism (an integer from 1 to 1000)",
            "RabbitmqSource default/src: spec.rabbitmqResourcesConfig.queueName: required field "
            "missing",
            "RabbitmqSource default/src: spec.rabbitmqResourcesConfig.parallelism: 0 is out of "
            "range (1 to 1000)",
        ]:
            self.assertIn(line, out)

    def test_a_good_configuration_and_the_sample_validate(self):
        st, out = self.validate(GOOD % ("amqp://127.0.0.1:5672", "pw"))
        self.assertEqual(st, 0, out)
        sample = os.path.join(TOP, "samples", "rabbitmq-broker.yaml")
        st, out, err = run_cli("validate", "-f", sample)
        self.assertEqual(st, 0, out + err)

    def test_a_bad_connection_secret_is_located_and_its_values_never_shown(self):
        for uri, why in [("ftp://h", "key uri: not an amqp://, amqps://, http:// or https:// URI"),
                         ("amqp://h:99999", "key uri: a port that is not 1 to 65535")]:
            st, out = self.validate(GOOD % (uri, "hunter2-pw"))
            self.assertEqual(st, 1, out)
            self.assertIn("RabbitmqBrokerConfig default/cfg: spec.rabbitmqClusterReference."
                          "connectionSecret: Secret default/creds: " + why, out)
            self.assertNotIn("hunter2-pw", out)
            self.assertNotIn(uri, out)


if __name__ == "__main__":
    main()
