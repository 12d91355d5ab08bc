"""TLS to RabbitMQ and NATS with a CA (and a client certificate) from Secrets (issue 18), against a
real rabbitmq-server with an amqps listener and a real nats-server -js --tls --tlsverify, both with
certificates the test makes with openssl: events go through over TLS; without the CA the
connection is refused for its certificate, and the reason is in the log. And NATS credentials (a
creds file in a Secret) against a nats-server in operator mode with JWTs the test makes."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from cebtest import (Daemon, Subscriber, binary_headers, free_port, main, run_cli, trigger_yaml,
                     wait_for, _rabbitmq_tool)
from natsjwt import Authority
from tlstest import CA


def indent(text, n):
    return "".join(" " * n + line + "\n" for line in text.strip().splitlines())


def secret_yaml(name, data):
    y = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: default\nstringData:\n" % name
    for k, v in data.items():
        y += ("  %s: |\n" % k + indent(v, 4)) if "\n" in v.strip() else "  %s: %s\n" % (k, v)
    return y + "---\n"


def read(path):
    with open(path) as f:
        return f.read()


class BackendTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ca = CA()
        cls.srv_cert, cls.srv_key = cls.ca.issue()
        cls.client_cert, cls.client_key = cls.ca.issue(cn="cebroker")
        cls.sub = Subscriber()
        # rabbitmq-server with an amqps listener (tests/tools/rabbitmq_server.py reads extra.conf)
        cls.rmq_tool = _rabbitmq_tool()
        cls.rmq_dir = tempfile.mkdtemp(prefix="cebtest-rmq-")
        cls.amqps_port = free_port()
        with open(os.path.join(cls.rmq_dir, "extra.conf"), "w") as f:
            f.write("listeners.ssl.default = 127.0.0.1:%d\nssl_options.cacertfile = %s\n"
                    "ssl_options.certfile = %s\nssl_options.keyfile = %s\n"
                    "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n"
                    % (cls.amqps_port, cls.ca.cert, cls.srv_cert, cls.srv_key))
        cls.rmq_tool.start(cls.rmq_dir)
        # nats-server -js that speaks TLS only and wants a client certificate of the test's CA
        cls.nats_dir = tempfile.mkdtemp(prefix="cebtest-nats-")
        cls.nats_port = free_port()
        cls.nats = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(cls.nats_port), "-sd", cls.nats_dir,
             "--tls", "--tlscert", cls.srv_cert, "--tlskey", cls.srv_key, "--tlsverify",
             "--tlscacert", cls.ca.cert],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def nats_up():
            import socket
            try:
                socket.create_connection(("127.0.0.1", cls.nats_port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(nats_up, 20, interval=0.05, what="nats-server with TLS")
        # nats-server in operator mode: users authenticate with JWTs of this operator
        cls.auth = Authority()
        cls.jwt_port = free_port()
        conf = os.path.join(cls.nats_dir, "operator.conf")
        with open(conf, "w") as f:
            f.write(cls.auth.server_conf(cls.jwt_port, os.path.join(cls.nats_dir, "jwt-store")))
        cls.nats_jwt = subprocess.Popen(["nats-server", "-c", conf], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

        def jwt_up():
            import socket
            try:
                socket.create_connection(("127.0.0.1", cls.jwt_port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(jwt_up, 20, interval=0.05, what="nats-server in operator mode")

    @classmethod
    def tearDownClass(cls):
        cls.sub.close()
        for p in (cls.nats, cls.nats_jwt):
            if p.poll() is None:
                p.terminate()
                p.wait(10)
        shutil.rmtree(cls.nats_dir, ignore_errors=True)
        cls.rmq_tool.stop(cls.rmq_dir)
        shutil.rmtree(cls.rmq_dir, ignore_errors=True)
        cls.ca.close()

    def start(self, cfg):
        d = Daemon(cfg)
        self.addCleanup(d.stop)
        return d

    def round_trip(self, d, path, id_):
        wait_for(lambda: d.post("/readyz", {}, method="GET")[0] == 200, 30,
                 what="/readyz 200:\n" + d.log())
        st, _, body = d.post("/default/default", binary_headers(id=id_), b'{"tls": true}')
        self.assertEqual(st, 202, body)
        got = wait_for(lambda: [r for r in self.sub.got(path) if r.ce("id") == id_],
                       what="event %s through the backend" % id_)
        self.assertEqual(got[0].body, b'{"tls": true}')

    # ---- RabbitMQ ----

    def rabbit_yaml(self, ca=True, path="/rmq"):
        data = {"uri": "amqps://localhost:%d" % self.amqps_port, "username": "guest",
                "password": "guest"}
        if ca:
            data["ca.crt"] = self.ca.pem()
        y = secret_yaml("rabbitmq", data)
        y += ("apiVersion: eventing.knative.dev/v1alpha1\nkind: RabbitmqBrokerConfig\nmetadata:\n"
              "  name: cfg\nspec:\n  rabbitmqClusterReference:\n    connectionSecret:\n"
              "      name: rabbitmq\n---\n"
              "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n"
              "  annotations:\n    eventing.knative.dev/broker.class: RabbitMQBroker\n"
              "spec:\n  config:\n    apiVersion: eventing.knative.dev/v1alpha1\n"
              "    kind: RabbitmqBrokerConfig\n    name: cfg\n---\n")
        return y + trigger_yaml("t", self.sub.at(path))

    def test_a_rabbitmq_broker_over_amqps_with_the_ca_of_its_secret(self):
        self.round_trip(self.start(self.rabbit_yaml()), "/rmq", "amqps-1")

    def test_without_the_ca_rabbitmq_is_unreachable_for_its_certificate(self):
        d = self.start(self.rabbit_yaml(ca=False))
        wait_for(lambda: "SSL peer cert verification failed" in d.log(), 20,
                 what="the certificate failure in the log")
        self.assertEqual(d.post("/readyz", {}, method="GET")[0], 503)

    def test_rabbitmq_ca_problems_are_configuration_errors(self):
        y = self.rabbit_yaml().replace("  ca.crt: |\n" + indent(self.ca.pem(), 4),
                                       "  ca.crt: hello\n")
        rc, out, err = run_cli("validate", "-f", self.file(y))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("key ca.crt: not PEM certificates", err)
        y = self.rabbit_yaml(ca=False).replace("  password: guest\n",
                                               "  password: guest\n  caSecretName: my-ca\n")
        rc, out, err = run_cli("validate", "-f", self.file(y))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("key caSecretName: not supported: put the CA's PEM under the key ca.crt", err)

    # ---- NATS ----

    def nats_yaml(self, ca=True, client=True, path="/nats", creds=None, url=None):
        y = secret_yaml("nats-ca", {"ca.crt": self.ca.pem()})
        y += secret_yaml("nats-client", {"tls.crt": read(self.client_cert),
                                         "tls.key": read(self.client_key)})
        conn = "url: %s\n" % (url or "tls://localhost:%d" % self.nats_port)
        if ca:
            conn += "tls:\n  secret:\n    name: nats-ca\n"
        if client or creds:
            conn += "auth:\n"
        if client:
            conn += "  tls:\n    secret:\n      name: nats-client\n"
        if creds:
            y += secret_yaml("nats-creds", {"user.creds": creds})
            conn += "  credentialFile:\n    secret:\n      name: nats-creds\n      key: user.creds\n"
        y += ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nats-config\ndata:\n"
              "  eventing-nats: |\n" + indent(conn, 4) + "---\n"
              "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n"
              "  annotations:\n    eventing.knative.dev/broker.class: NatsJetStreamBroker\n"
              "spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n    name: nats-config\n---\n")
        return y + trigger_yaml("t", self.sub.at(path))

    def test_a_nats_broker_over_mutual_tls_from_secrets(self):
        self.round_trip(self.start(self.nats_yaml()), "/nats", "nats-tls-1")

    def test_without_the_ca_or_the_client_certificate_nats_refuses(self):
        for cfg in (self.nats_yaml(ca=False), self.nats_yaml(client=False)):
            path = self.file(cfg)
            p = subprocess.run([self.cebroker(), "run", "-f", path, "--listen", "127.0.0.1:0"],
                               capture_output=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertRegex(p.stderr.decode(), r"(?i)ssl|tls|certificate|handshake|EOF")

    def test_a_nats_broker_authenticates_with_the_creds_file_of_its_secret(self):
        url = "nats://127.0.0.1:%d" % self.jwt_port
        cfg = self.nats_yaml(ca=False, client=False, creds=self.auth.creds(), url=url,
                             path="/nats-jwt")
        self.round_trip(self.start(cfg), "/nats-jwt", "nats-jwt-1")
        # a user of another operator is refused by the server
        cfg = self.nats_yaml(ca=False, client=False, creds=Authority().creds(), url=url)
        p = subprocess.run([self.cebroker(), "run", "-f", self.file(cfg), "--listen",
                            "127.0.0.1:0"], capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("Authentication Violation", p.stderr.decode())

    def test_nats_secret_problems_are_configuration_errors(self):
        rc, out, err = run_cli("validate", "-f", self.file(self.nats_yaml(creds="just text\n")))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("key user.creds: not a NATS creds file", err)
        y = self.nats_yaml().replace("      name: nats-client\n", "      name: nope\n")
        rc, out, err = run_cli("validate", "-f", self.file(y))
        self.assertEqual(rc, 1, out + err)
        self.assertIn("auth.tls.secret.name: Secret default/nope not found", err)

    # ----

    def cebroker(self):
        from cebtest import CEBROKER
        return CEBROKER

    def file(self, text):
        fd, path = tempfile.mkstemp(suffix=".yaml")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path


if __name__ == "__main__":
    main()
