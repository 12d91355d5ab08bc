"""Knative manifests as people write them, run by the real daemon: a Trigger whose subscriber is a
Kubernetes or Knative Service reaches a real HTTP server through the address table (--address or the
cebroker-addresses ConfigMap), with a uri beside the ref as the path; a Broker that says nothing takes
its class and its delivery (retries, backoff, a dead-letter sink that is a Service too) from Knative's
config-br-defaults; documents of other API groups and what kubectl adds are passed over."""

import os
import unittest

from cebtest import Daemon, Subscriber, binary_headers, main, wait_for

TOP = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", ".."))

# Knative's helloworld-go sample, as its docs give it, with the Trigger's ref relative to a path.
SAMPLE = """apiVersion: v1
kind: Namespace
metadata:
  name: knative-samples
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: default
  namespace: knative-samples
  annotations:
    eventing.knative.dev/broker.class: MTChannelBasedBroker
spec: {}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: helloworld-go
  namespace: knative-samples
spec:
  replicas: 1
  selector:
    matchLabels: &labels
      app: helloworld-go
  template:
    metadata:
      labels: *labels
    spec:
      containers:
        - name: helloworld-go
          image: docker.io/{username}/helloworld-go
---
apiVersion: v1
kind: Service
metadata:
  name: helloworld-go
  namespace: knative-samples
spec:
  selector:
    app: helloworld-go
  ports:
    - protocol: TCP
      port: 80
      targetPort: 8080
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: helloworld-go
  namespace: knative-samples
spec:
  broker: default
  filter:
    attributes:
      type: dev.knative.samples.helloworld
      source: dev.knative.samples/helloworldsource
  subscriber:
    ref:
      apiVersion: v1
      kind: Service
      name: helloworld-go
    uri: /hello
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: event-display
  namespace: knative-samples
spec:
  broker: default
  subscriber:
    ref:
      apiVersion: serving.knative.dev/v1
      kind: Service
      name: event-display
"""

# Knative's stock config-br-defaults with a dead-letter sink (a Knative Service) added, and a Broker
# that gives nothing but its name (the blog post's `spec: {}`).
DEFAULTS = """apiVersion: v1
kind: ConfigMap
metadata:
  name: config-br-defaults
  namespace: knative-eventing
data:
  default-br-config: |
    clusterDefault:
      brokerClass: MTChannelBasedBroker
      apiVersion: v1
      kind: ConfigMap
      name: config-br-default-channel
      namespace: knative-eventing
      delivery:
        retry: 2
        backoffPolicy: exponential
        backoffDelay: PT0.1S
        deadLetterSink:
          ref:
            apiVersion: serving.knative.dev/v1
            kind: Service
            name: dead-letters
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: orders
spec: {}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: flaky
spec:
  broker: orders
  subscriber:
    ref:
      apiVersion: v1
      kind: Service
      name: flaky
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cebroker-addresses
data:
  addresses: |
    # where this machine's services listen
    Service default/flaky = %(sub)s/flaky
    Service default/dead-letters = %(sub)s/dls/
"""


def hello(id, type="dev.knative.samples.helloworld"):
    return binary_headers(id=id, type=type, source="dev.knative.samples/helloworldsource",
                          content_type="application/json")


class ServiceRefs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        cls.d = Daemon(SAMPLE, args=[
            "--address", "Service knative-samples/helloworld-go=%s/svc/" % cls.sub.url,
            "--address", "Service knative-samples/event-display = %s/display" % cls.sub.url])

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def test_a_service_ref_delivers_to_its_address_with_the_uri_beside_it_as_the_path(self):
        st, _, body = self.d.post("/knative-samples/default", hello("h-1"), b'{"msg": "hi"}')
        self.assertEqual(st, 202, body)
        got = self.sub.wait("/hello", 1)
        self.assertEqual(got[0].ce("id"), "h-1")
        self.assertEqual(got[0].body, b'{"msg": "hi"}')
        self.assertEqual(got[0].headers.get("kn-namespace"), "knative-samples")
        # a Knative Service ref without a uri: the address as the table gives it
        self.assertEqual(self.sub.wait("/display", 1)[0].ce("id"), "h-1")

    def test_the_log_says_what_was_skipped_and_where_each_ref_delivers(self):
        log = self.d.log()
        self.assertRegex(log, r"skipped Namespace knative-samples \(v1\)")
        self.assertRegex(log, r"skipped Deployment knative-samples/helloworld-go \(apps/v1\)")
        self.assertRegex(log, r"skipped Service knative-samples/helloworld-go \(v1\)")
        self.assertIn("Service knative-samples/helloworld-go is %s/hello (from --address)"
                      % self.sub.url, log)


class ClusterDefaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        cls.sub.responses["/flaky"] = [(500, {}, b"down"), (503, {}, b"down"), (202, {}, b"")]
        cls.sub.responses["/flaky-always"] = [(500, {}, b"still down")]
        cls.d = Daemon(DEFAULTS % {"sub": cls.sub.url})

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def test_a_broker_that_says_nothing_takes_class_and_retries_from_config_br_defaults(self):
        self.assertRegex(self.d.log(), r"Broker default/orders: spec.config "
                         r"knative-eventing/config-br-default-channel, spec.delivery, class "
                         r"MTChannelBasedBroker from config-br-defaults")
        st, _, body = self.d.post("/default/orders", binary_headers(id="r-1"), b"x")
        self.assertEqual(st, 202, body)
        got = self.sub.wait("/flaky", 3)
        self.assertEqual([r.ce("id") for r in got], ["r-1"] * 3)
        # the third attempt was accepted: delivered once, after two retries, nothing dead-lettered
        series = '{namespace="default",trigger="flaky",broker="orders"}'
        m = wait_for(lambda: (lambda m: m if m.get("cebroker_delivered_total" + series) else None)(
            self.d.metrics()), what="the delivery to be counted")
        self.assertEqual(m["cebroker_delivered_total" + series], 1)
        self.assertEqual(m["cebroker_retries_total" + series], 2)
        self.assertEqual(m["cebroker_dead_lettered_total" + series], 0)
        self.assertEqual(len(self.sub.got("/flaky")), 3)
        self.assertEqual(self.sub.got("/dls/"), [])


class ClusterDefaultsDeadLetters(unittest.TestCase):
    """The dead-letter sink of config-br-defaults is bound in the Broker's namespace, then resolved
    through the address table like any other ref."""

    def test_retries_spent_go_to_the_defaults_dead_letter_service(self):
        sub = Subscriber()
        sub.responses["/flaky"] = [(500, {}, b"still down")]
        d = Daemon(DEFAULTS % {"sub": sub.url})
        try:
            st, _, body = d.post("/default/orders", binary_headers(id="d-1"), b"x")
            self.assertEqual(st, 202, body)
            dls = sub.wait("/dls/", 1)
            self.assertEqual(dls[0].ce("id"), "d-1")
            self.assertEqual(dls[0].ce("knativeerrorcode"), "500")
            self.assertEqual(dls[0].ce("knativeerrordest"), sub.url + "/flaky")
            self.assertEqual(len(sub.got("/flaky")), 3)
        finally:
            d.stop()
            sub.close()


class KubectlOutput(unittest.TestCase):
    def test_what_kubectl_prints_runs_as_it_is(self):
        sub = Subscriber()
        path = os.path.join(TOP, "tests", "data", "knative-manifests", "kubectl-get-list.yaml")
        with open(path) as f:
            text = f.read()
        d = Daemon(text, args=["--address",
                               "Service knative-samples/helloworld-go=%s/kubectl" % sub.url])
        try:
            st, _, body = d.post("/knative-samples/default", hello("k-1"), b"{}")
            self.assertEqual(st, 202, body)
            self.assertEqual(sub.wait("/kubectl", 1)[0].ce("id"), "k-1")
        finally:
            d.stop()
            sub.close()


if __name__ == "__main__":
    main()
