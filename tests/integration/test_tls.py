"""TLS in and out (issue 18), with certificates the test makes with openssl: HTTPS on the ingress
(TLS 1.2+, no plain HTTP on its port, --listen-plain beside it, the certificate swapped on SIGHUP with
open connections kept), and HTTPS delivery: a subscriber behind a private CA named in CACerts gets the
event; a wrong CA, an expired certificate, a wrong host, or no CACerts at all fail the delivery, which
goes to the dead-letter sink with libcurl's reason in the log."""

import base64
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import unittest

from cebtest import (Daemon, Subscriber, binary_headers, broker_yaml, main, post, run_cli,
                     trigger_yaml, wait_for, yaml_file)
from tlstest import CA, TlsDaemon, TlsSubscriber, client_context, https_post, peer_cn


def dest_yaml(uri, ca_pem=None):
    y = "uri: %s\n" % uri
    if ca_pem:
        y += "CACerts: |\n" + "".join("  " + line + "\n" for line in ca_pem.strip().splitlines())
    return y


def trigger_with(name, type_, subscriber, dls, retry=1):
    """A Trigger for events of type_, its subscriber and dead-letter sink given as Destination
    YAML (dest_yaml)."""
    y = ("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n"
         "spec:\n  broker: default\n  filter:\n    attributes:\n      type: %s\n" % (name, type_))
    y += "  subscriber:\n" + "".join("    " + l + "\n" for l in subscriber.strip().splitlines())
    y += "  delivery:\n    retry: %d\n    backoffDelay: PT0.1S\n    deadLetterSink:\n" % retry
    y += "".join("      " + l + "\n" for l in dls.strip().splitlines())
    return y + "---\n"


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ca = CA()
        cls.other = CA("another CA")
        cls.srv_cert, cls.srv_key = cls.ca.issue()
        cls.plain = Subscriber()
        cls.good = TlsSubscriber(*cls.ca.issue())
        cls.dls = TlsSubscriber(*cls.ca.issue())
        cls.wrong_ca = TlsSubscriber(*cls.other.issue())
        cls.expired = TlsSubscriber(*cls.ca.issue(expired=True))
        cls.wrong_host = TlsSubscriber(*cls.ca.issue(cn="other.example",
                                                     sans=("DNS:other.example",)))
        pem = cls.ca.pem()
        dls = dest_yaml(cls.dls.at("/dls"), pem)
        cfg = broker_yaml() + broker_yaml(name="second")
        cfg += trigger_yaml("plain", cls.plain.at("/plain"), filter_attrs={"type": "plain"})
        cfg += trigger_with("secure", "secure", dest_yaml(cls.good.at("/secure"), pem), dls)
        cfg += trigger_with("wrong-ca", "wrong-ca", dest_yaml(cls.wrong_ca.at("/x"), pem), dls)
        cfg += trigger_with("expired", "expired", dest_yaml(cls.expired.at("/x"), pem), dls)
        cfg += trigger_with("wrong-host", "wrong-host", dest_yaml(cls.wrong_host.at("/x"), pem), dls)
        cfg += trigger_with("no-cacerts", "no-cacerts", dest_yaml(cls.good.at("/no-cacerts")), dls)
        # A ref to a Broker of this daemon: delivered to its loopback listener, no certificate.
        cfg += ("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: via-ref\n"
                "spec:\n  broker: default\n  filter:\n    attributes:\n      type: via-ref\n"
                "  subscriber:\n    ref:\n      apiVersion: eventing.knative.dev/v1\n"
                "      kind: Broker\n      name: second\n---\n")
        cfg += trigger_yaml("on-second", cls.plain.at("/second"), broker="second")
        # A source's sink over HTTPS, with CACerts as on any Destination (and the webhook's own
        # address served over HTTPS like every other).
        cfg += ("apiVersion: sources.triggermesh.io/v1alpha1\nkind: WebhookSource\nmetadata:\n"
                "  name: hook\nspec:\n  eventType: com.example.webhook\n  sink:\n"
                + "".join("    " + l + "\n" for l in
                          dest_yaml(cls.good.at("/from-hook"), pem).strip().splitlines())
                + "---\n")
        cls.cfg = cfg
        cls.d = TlsDaemon(cfg, cls.srv_cert, cls.srv_key, args=["--listen-plain", "127.0.0.1:0"])
        cls.ctx = client_context(cls.ca)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        for s in (cls.plain, cls.good, cls.dls, cls.wrong_ca, cls.expired, cls.wrong_host):
            s.close()
        cls.ca.close()
        cls.other.close()

    def send(self, id_, type_):
        st, _, body = https_post(self.d.port, self.ctx, "/default/default",
                                 binary_headers(id=id_, type=type_), b'{"n": 1}')
        self.assertEqual(st, 202, body)

    # ---- the ingress ----

    def test_curl_posts_over_https_with_the_tests_ca(self):
        p = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}",
             "--cacert", self.ca.cert, "https://localhost:%d/default/default" % self.d.port,
             "-H", "ce-specversion: 1.0", "-H", "ce-id: curl-1", "-H", "ce-source: /curl",
             "-H", "ce-type: plain", "-H", "content-type: application/json", "-d", '{"a": 1}'],
            capture_output=True, timeout=20)
        self.assertEqual(p.stdout.decode(), "202 0", p.stderr.decode())
        got = wait_for(lambda: [r for r in self.plain.got("/plain") if r.ce("id") == "curl-1"],
                       what="the event posted with curl")
        self.assertEqual(got[0].body, b'{"a": 1}')

    def test_the_cloudevents_js_sdk_sends_over_https_with_the_tests_ca(self):
        # tests/js: the SDK installed by scripts/install-deps; Node trusts NODE_EXTRA_CA_CERTS
        send = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "js", "send.js")
        url = "https://localhost:%d/default/default" % self.d.port
        for mode in ("binary", "structured"):
            p = subprocess.run(["node", send, url, mode, "js-" + mode], capture_output=True,
                               timeout=60, env=dict(os.environ, NODE_EXTRA_CA_CERTS=self.ca.cert))
            self.assertEqual((p.returncode, p.stdout.decode().strip()), (0, "202"),
                             p.stderr.decode())
            got = wait_for(lambda: [r for r in self.plain.got("/plain")
                                    if r.ce("id") == "js-" + mode], what="the SDK's event")
            self.assertEqual(got[0].ce("source"), "/js-sdk")
        env = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
        p = subprocess.run(["node", send, url, "binary", "js-untrusted"], capture_output=True,
                           timeout=60, env=env)
        self.assertEqual(p.returncode, 1)
        self.assertIn("certificate", p.stderr.decode())

    def test_cebroker_send_takes_the_ca_with_cacert(self):
        url = "https://localhost:%d/default/default" % self.d.port
        rc, out, err = run_cli("send", "--to", url, "--type", "plain", "--id", "send-1",
                               "--cacert", self.ca.cert)
        self.assertEqual((rc, out.split("\n")[0]), (0, "202 Accepted"), err)
        wait_for(lambda: [r for r in self.plain.got("/plain") if r.ce("id") == "send-1"],
                 what="the event sent with cebroker send")
        rc, out, err = run_cli("send", "--to", url, "--type", "plain")
        self.assertEqual(rc, 2)
        self.assertIn("SSL certificate problem", err)

    def test_curl_refuses_the_ingress_without_the_ca(self):
        # The certificate is the test CA's: a client that does not trust it does not talk.
        p = subprocess.run(["curl", "-sS", "https://localhost:%d/healthz" % self.d.port],
                           capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 60, p.stderr.decode())

    def test_plain_http_to_the_https_port_gets_no_http_answer(self):
        with socket.create_connection(("127.0.0.1", self.d.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        self.assertFalse(data.startswith(b"HTTP/"), data)
        st, _, _ = https_post(self.d.port, self.ctx, "/healthz", {}, method="GET")
        self.assertEqual(st, 200)

    def test_tls_1_1_is_refused_and_1_2_is_served(self):
        def handshake(version):
            ctx = client_context(self.ca, minimum=version, maximum=version)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer what it can
            with socket.create_connection(("127.0.0.1", self.d.port), timeout=10) as s:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    return t.version()

        with self.assertRaises(ssl.SSLError):
            handshake(ssl.TLSVersion.TLSv1_1)
        self.assertEqual(handshake(ssl.TLSVersion.TLSv1_2), "TLSv1.2")
        self.assertEqual(handshake(ssl.TLSVersion.TLSv1_3), "TLSv1.3")

    def test_listen_plain_serves_plain_http_beside(self):
        self.assertIsNotNone(self.d.plain_port)
        st, _, body = post("http://127.0.0.1:%d/default/default" % self.d.plain_port,
                           binary_headers(id="plain-1", type="plain"), b"{}")
        self.assertEqual(st, 202, body)
        wait_for(lambda: [r for r in self.plain.got("/plain") if r.ce("id") == "plain-1"],
                 what="the event posted over plain HTTP")

    def test_the_loopback_listener_takes_only_the_daemons_own_deliveries(self):
        m = self.d.wait_log(r"go to http://127\.0\.0\.1:(\d+), which takes nothing else")
        st, _, body = post("http://127.0.0.1:%s/default/default" % m.group(1),
                           binary_headers(id="sneak", type="plain"), b"{}")
        self.assertEqual(st, 403, body)

    def test_a_ref_to_a_broker_of_this_daemon_is_delivered_with_tls_on(self):
        self.send("ref-1", "via-ref")
        got = wait_for(lambda: [r for r in self.plain.got("/second") if r.ce("id") == "ref-1"],
                       what="the event through the second Broker")
        self.assertEqual(got[0].ce("type"), "via-ref")

    # ---- delivery over HTTPS ----

    def dead_lettered(self, id_):
        return wait_for(lambda: [r for r in self.dls.got("/dls") if r.ce("id") == id_],
                        what="event %s at the dead-letter sink" % id_)

    def test_a_subscriber_behind_a_private_ca_in_cacerts_gets_the_event(self):
        self.send("sec-1", "secure")
        got = self.good.wait("/secure", 1)
        self.assertEqual(got[0].ce("id"), "sec-1")
        self.assertEqual(got[0].body, b'{"n": 1}')

    def check_failed(self, type_, reason):
        self.send(type_ + "-1", type_)
        got = self.dead_lettered(type_ + "-1")
        self.assertIn("https://", got[0].ce("knativeerrordest"))
        self.assertIsNone(got[0].ce("knativeerrorcode"))  # no HTTP status: the handshake failed
        self.d.wait_log(reason)

    def test_a_subscriber_with_a_certificate_of_another_ca_is_dead_lettered(self):
        self.check_failed("wrong-ca", r"SSL certificate problem: unable to get local issuer")

    def test_a_subscriber_with_an_expired_certificate_is_dead_lettered(self):
        self.check_failed("expired", r"SSL certificate problem: certificate has expired")

    def test_a_subscriber_whose_certificate_names_another_host_is_dead_lettered(self):
        self.check_failed("wrong-host", r"(?i)no alternative certificate subject name matches")

    def test_a_sources_sink_behind_a_private_ca_in_cacerts_gets_the_event(self):
        st, _, body = https_post(self.d.port, self.ctx, "/default/hook",
                                 {"Content-Type": "application/json"}, b'{"hook": 1}')
        self.assertEqual(st, 202, body)
        got = self.good.wait("/from-hook", 1)
        self.assertEqual(got[0].ce("type"), "com.example.webhook")
        self.assertEqual(got[0].body, b'{"hook": 1}')

    def test_without_cacerts_a_private_ca_is_not_trusted(self):
        self.send("nocerts-1", "no-cacerts")
        self.dead_lettered("nocerts-1")
        self.assertEqual(self.good.got("/no-cacerts"), [])

    # ---- configuration ----

    def test_cacerts_that_are_not_pem_is_a_configuration_error(self):
        cfg = broker_yaml() + trigger_with("t", "t", "uri: https://localhost:1/\nCACerts: hello\n",
                                           "uri: http://127.0.0.1:1/")
        rc, out, err = run_cli("validate", "-f", yaml_file(self, cfg))
        self.assertEqual(rc, 1, out + err)
        self.assertRegex(err, r":\d+:\d+: Trigger default/t: spec\.subscriber\.CACerts: not PEM "
                              r"certificates")

    def test_run_refuses_an_expired_certificate_a_wrong_key_and_a_lone_cert(self):
        cfg = yaml_file(self, broker_yaml())
        exp_cert, exp_key = self.ca.issue(expired=True)
        other_cert, other_key = self.ca.issue()
        cases = [
            (["--tls-cert", exp_cert, "--tls-key", exp_key], r"the certificate \(CN localhost\) expired"),
            (["--tls-cert", self.srv_cert, "--tls-key", other_key], r"is not the one of the certificate"),
            (["--tls-cert", self.srv_cert], r"--tls-cert and --tls-key go together"),
            (["--listen-plain", "127.0.0.1:0"], r"--listen-plain adds a plain HTTP listener"),
        ]
        for args, why in cases:
            rc, out, err = run_cli("run", "-f", cfg, "--listen", "127.0.0.1:0", *args)
            self.assertEqual(rc, 2, err)
            self.assertRegex(err, why)


class Reload(unittest.TestCase):
    """SIGHUP re-reads the certificate: new connections get the new one, open ones go on."""

    def test_sighup_swaps_the_certificate_and_a_bad_one_keeps_the_old(self):
        ca = CA()
        self.addCleanup(ca.close)
        first = ca.issue(cn="localhost")
        second = ca.issue(cn="127.0.0.1")
        cert, key = ca.path("live.pem"), ca.path("live.key")
        shutil.copy(first[0], cert)
        shutil.copy(first[1], key)
        d = TlsDaemon(broker_yaml() + trigger_yaml("t", "http://127.0.0.1:9/"), cert, key)
        self.addCleanup(d.stop)
        ctx = client_context(ca)
        self.assertEqual(peer_cn(d.port, ctx), "localhost")
        kept = http.client.HTTPSConnection("localhost", d.port, context=ctx, timeout=10)
        self.addCleanup(kept.close)
        self.assertEqual(https_post(d.port, ctx, "/healthz", {}, method="GET", conn=kept)[0], 200)

        shutil.copy(second[0], cert)
        shutil.copy(second[1], key)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"TLS certificate reloaded \(CN 127\.0\.0\.1")
        self.assertEqual(peer_cn(d.port, ctx), "127.0.0.1")
        # The connection opened before the swap still serves.
        self.assertEqual(https_post(d.port, ctx, "/healthz", {}, method="GET", conn=kept)[0], 200)

        with open(cert, "w") as f:
            f.write("not a certificate\n")
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"TLS certificate not reloaded, the previous one stays: .*live\.pem: not a PEM")
        self.assertEqual(peer_cn(d.port, ctx), "127.0.0.1")
        self.assertIsNone(d.proc.poll())


if __name__ == "__main__":
    main()
