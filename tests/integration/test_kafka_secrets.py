"""Kafka credentials from Secrets (issue 18), as Knative's manifests give them: a KafkaSource's
spec.net.sasl/tls secretKeyRefs, a KafkaSink's spec.auth.secret.ref, a Kafka Broker ConfigMap's
auth.secret.ref.name. librdkafka's mock cluster speaks plaintext only (no SASL, no TLS), so what is
checked is the mapping: `validate` on every value, and the daemon against the mock, whose librdkafka
log shows the protocol and mechanism it was given; a password never shows."""

import os
import re
import subprocess
import tempfile
import threading
import time
import unittest

from cebtest import CEBROKER, KafkaMock, main, run_cli, wait_for
from tlstest import CA

CANARY = "pw-canary-7f3a9"


def secret_yaml(name, data, namespace="default"):
    y = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\nstringData:\n" % (
        name, namespace)
    for k, v in data.items():
        if "\n" in v:
            y += "  %s: |\n" % k + "".join("    %s\n" % l for l in v.strip().splitlines())
        else:
            y += "  %s: %s\n" % (k, v)
    return y + "---\n"


def source_yaml(bootstrap, net):
    return ("apiVersion: sources.knative.dev/v1\nkind: KafkaSource\nmetadata:\n  name: src\n"
            "spec:\n  bootstrapServers: [%s]\n  topics: [orders]\n  net:\n%s"
            "  sink:\n    uri: http://127.0.0.1:9/\n---\n" % (bootstrap, net))


def sink_yaml(bootstrap, secret="sink-creds"):
    return ("apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata:\n  name: snk\n"
            "spec:\n  topic: orders\n  numPartitions: 1\n  replicationFactor: 1\n"
            "  bootstrapServers: [%s]\n  auth:\n    secret:\n      ref:\n        name: %s\n---\n"
            % (bootstrap, secret))


def broker_yaml(bootstrap, secret="broker-creds"):
    return ("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: kb\n"
            "  annotations: {eventing.knative.dev/broker.class: Kafka}\n"
            "spec:\n  config: {apiVersion: v1, kind: ConfigMap, name: kafka-broker-config,"
            " namespace: knative-eventing}\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kafka-broker-config\n"
            "  namespace: knative-eventing\ndata:\n  bootstrap.servers: %s\n"
            "  auth.secret.ref.name: %s\n---\n" % (bootstrap, secret))


SASL_NET = ("    sasl:\n      enable: true\n"
            "      user: {secretKeyRef: {name: source-creds, key: user}}\n"
            "      password: {secretKeyRef: {name: source-creds, key: password}}\n"
            "      type: {secretKeyRef: {name: source-creds, key: saslType}}\n")


def tls_net(ca=True, client=True):
    y = "    tls:\n      enable: true\n"
    if client:
        y += ("      cert: {secretKeyRef: {name: source-tls, key: tls.crt}}\n"
              "      key: {secretKeyRef: {name: source-tls, key: tls.key}}\n")
    if ca:
        y += "      caCert: {secretKeyRef: {name: source-tls, key: ca.crt}}\n"
    return y


class KafkaSecrets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ca = CA()
        cert, key = cls.ca.issue(cn="cebroker-client")
        with open(cert) as f:
            cls.cert = f.read()
        with open(key) as f:
            cls.key = f.read()
        cls.secrets = (
            secret_yaml("source-creds", {"user": "alice", "password": CANARY,
                                         "saslType": "SCRAM-SHA-512"})
            + secret_yaml("source-tls", {"tls.crt": cls.cert, "tls.key": cls.key,
                                         "ca.crt": cls.ca.pem()})
            + secret_yaml("sink-creds", {"protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
                                         "user": "bob", "password": CANARY,
                                         "ca.crt": cls.ca.pem()})
            + secret_yaml("broker-creds", {"protocol": "SSL", "ca.crt": cls.ca.pem(),
                                           "user.crt": cls.cert, "user.key": cls.key},
                          namespace="knative-eventing"))
        cls.mock = KafkaMock(brokers=1)

    @classmethod
    def tearDownClass(cls):
        cls.mock.close()
        cls.ca.close()

    def write(self, text):
        # A Secret in a file others can read gets a warning: the tests' files are private.
        fd, path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def validate(self, text):
        return run_cli("validate", "-f", self.write(text))

    # ---- validate ----

    def test_knatives_three_forms_are_accepted(self):
        cfg = (self.secrets + source_yaml("k:9092", SASL_NET + tls_net())
               + sink_yaml("k:9092") + broker_yaml("k:9092"))
        rc, out, err = self.validate(cfg)
        self.assertEqual(rc, 0, err)
        self.assertIn("ok: 1 broker, 0 triggers, 1 KafkaSource, 1 KafkaSink", out)
        self.assertNotIn(CANARY, out + err)

    def check_error(self, cfg, pattern):
        rc, out, err = self.validate(cfg)
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, pattern)
        self.assertNotIn(CANARY, out + err)

    def test_a_protocol_kafka_does_not_have_is_an_error_at_the_secret(self):
        cfg = secret_yaml("sink-creds", {"protocol": "SASL_TLS", "user": "u", "password": CANARY})
        self.check_error(cfg + sink_yaml("k:9092"),
                         r"\.yaml:1:1: Secret default/sink-creds: data\.protocol: not a Kafka "
                         r"security protocol \(PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL\)")

    def test_a_mechanism_librdkafka_is_not_given_is_an_error(self):
        cfg = secret_yaml("source-creds", {"user": "u", "password": CANARY, "saslType": "GSSAPI"})
        self.check_error(cfg + source_yaml("k:9092", SASL_NET),
                         r"Secret default/source-creds: data\.saslType: not a SASL mechanism "
                         r"cebroker supports \(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512\)")

    def test_sasl_without_a_password_is_an_error(self):
        cfg = secret_yaml("sink-creds", {"protocol": "SASL_PLAINTEXT", "user": "u"})
        self.check_error(cfg + sink_yaml("k:9092"),
                         r"Secret default/sink-creds: data\.password: required key missing "
                         r"for SASL")

    def test_pem_that_is_not_pem_is_an_error(self):
        cfg = secret_yaml("broker-creds", {"protocol": "SSL", "ca.crt": "hello"},
                          namespace="knative-eventing")
        self.check_error(cfg + broker_yaml("k:9092"),
                         r"Secret knative-eventing/broker-creds: data\.ca\.crt: not PEM "
                         r"certificates")
        cfg = secret_yaml("source-tls", {"tls.crt": self.cert, "tls.key": self.cert,
                                         "ca.crt": self.ca.pem()})
        self.check_error(cfg + source_yaml("k:9092", tls_net()),
                         r"Secret default/source-tls: data\.tls\.key: not an unencrypted PEM "
                         r"private key")

    def test_a_missing_secret_or_key_is_an_error_at_the_reference(self):
        self.check_error(sink_yaml("k:9092", secret="nope"),
                         r"\.yaml:\d+:\d+: KafkaSink default/snk: spec\.auth\.secret\.ref\.name: "
                         r"Secret default/nope not found")
        cfg = secret_yaml("source-creds", {"user": "u", "password": CANARY})
        self.check_error(cfg + source_yaml("k:9092", SASL_NET),
                         r"spec\.net\.sasl\.type\.secretKeyRef: Secret default/source-creds has "
                         r"no key \"saslType\"")

    # ---- what librdkafka is given ----

    def run_until(self, cfg, pattern):
        """Start the daemon on cfg and wait for a log line matching pattern; the daemon is then
        killed (it is still waiting for the cluster, which cannot speak its protocol)."""
        path = self.write(cfg)
        proc = subprocess.Popen([CEBROKER, "run", "-f", path, "--listen", "127.0.0.1:0"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        lines = []

        def read():
            for line in iter(proc.stderr.readline, b""):
                lines.append(line.decode("utf-8", "replace"))

        t = threading.Thread(target=read, daemon=True)
        t.start()
        try:
            wait_for(lambda: any(re.search(pattern, l) for l in lines) or proc.poll() is not None,
                     30, what="/%s/ in the log" % pattern)
        finally:
            proc.kill()
            proc.wait()
            t.join(5)
            proc.stderr.close()
        log = "".join(lines)
        self.assertRegex(log, pattern)
        self.assertNotIn(CANARY, log)
        return log

    def test_a_kafka_sink_speaks_sasl_ssl_with_its_mechanism(self):
        self.run_until(self.secrets + sink_yaml(self.mock.bootstrap),
                       r"sasl_ssl://127\.0\.0\.1:\d+/bootstrap: .*SSL_HANDSHAKE")

    def test_a_kafka_source_speaks_sasl_with_the_type_of_its_secret(self):
        self.run_until(self.secrets + source_yaml(self.mock.bootstrap, SASL_NET),
                       r"sasl_plaintext://127\.0\.0\.1:\d+/bootstrap: .*SCRAM-SHA-512")

    def test_a_kafka_broker_speaks_tls_from_its_configmaps_secret(self):
        self.run_until(self.secrets + broker_yaml(self.mock.bootstrap),
                       r"(?<!sasl_)ssl://127\.0\.0\.1:\d+/bootstrap: .*SSL_HANDSHAKE")


if __name__ == "__main__":
    main()
