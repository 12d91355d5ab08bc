"""WebhookSource (TriggerMesh's kind) against the real daemon and a real HTTP sink:
- JSON, form and binary bodies become the event's data with the request's Content-Type;
- method, path, host, queries and headers as extensions named as TriggerMesh names them, Ce-Id and
  Ce-Subject honoured, Authorization never copied;
- basic auth (inline and from a Secret): 400 without credentials, 401 with wrong ones;
- 413 over the size limit, 405 for other methods, a CORS preflight answered;
- 429 when the source's own bounded channel is full, and 202 only once stored;
- a Broker of this daemon as sink: stored straight into its channel, its Triggers deliver; on a
  Kafka Broker the 202 waits for Kafka's confirmation, and no broker up means 503, not 202;
- validation errors as file:line:col, and a name that is a Broker's address refused."""

import base64
import re
import threading
import unittest

import os

from cebtest import (Daemon, KafkaMock, Subscriber, broker_yaml, kafka_broker_yaml, main, run_cli,
                     trigger_yaml, wait_for, yaml_file)


def webhook_yaml(name, sink, namespace="default", extra=""):
    return ("apiVersion: sources.triggermesh.io/v1alpha1\nkind: WebhookSource\n"
            "metadata:\n  name: %s\n  namespace: %s\nspec:\n  eventType: com.example.webhook\n"
            "%s  sink:\n%s---\n" % (name, namespace, extra, sink))


def uri_sink(url):
    return "    uri: %s\n" % url


def send(d, target, headers, body=b"", method="POST"):
    """One request with its query string (cebtest's post sends the path only)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class Webhook(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sub = s = Subscriber()
        cfg = broker_yaml("default")
        cfg += trigger_yaml("from-hook", s.at("/via-broker"),
                            filter_attrs={"type": "com.example.webhook"})
        cfg += ("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: to-hook\n"
                "spec:\n  broker: default\n  filter:\n    attributes:\n      type: com.example.forward\n"
                "  subscriber:\n    ref:\n      apiVersion: sources.triggermesh.io/v1alpha1\n"
                "      kind: WebhookSource\n      name: ext\n---\n")
        cfg += webhook_yaml("plain", uri_sink(s.at("/plain")))
        cfg += webhook_yaml("ext", uri_sink(s.at("/ext")),
                            extra="  eventSource: https://example.com/hooks\n"
                                  "  eventExtensionAttributes:\n"
                                  "    from: [method, path, host, queries, headers]\n"
                                  "  ceOverrides:\n    extensions:\n      team: blue\n")
        cfg += webhook_yaml("auth", uri_sink(s.at("/auth")),
                            extra="  basicAuthUsername: alice\n"
                                  "  basicAuthPassword:\n    value: s3cret\n")
        cfg += ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: hook-creds\n"
                "stringData:\n  password: fr0m-secret\n---\n")
        cfg += webhook_yaml("secret", uri_sink(s.at("/secret")),
                            extra="  basicAuthUsername: bob\n  basicAuthPassword:\n"
                                  "    valueFromSecret:\n      name: hook-creds\n      key: password\n")
        cfg += webhook_yaml("cors", uri_sink(s.at("/cors")),
                            extra="  corsAllowOrigin: https://app.example\n")
        cfg += webhook_yaml("to-broker", "    ref:\n      apiVersion: eventing.knative.dev/v1\n"
                                         "      kind: Broker\n      name: default\n")
        cls.d = Daemon(cfg, args=["--max-event-size", "65536"])

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def test_a_json_body_becomes_the_data_with_its_content_type(self):
        body = b'{"order": 42, "items": ["a", "b"]}'
        st, _, msg = self.d.post("/default/plain", {"Content-Type": "application/json"}, body)
        self.assertEqual(st, 202, msg)
        got = wait_for(lambda: [r for r in self.sub.got("/plain") if r.body == body],
                       what="the JSON event")
        ev = got[0].event()
        self.assertEqual(ev["specversion"], "1.0")
        self.assertEqual(ev["type"], "com.example.webhook")
        self.assertEqual(ev["source"], "default.plain")  # TriggerMesh's default: <ns>.<name>
        self.assertRegex(ev["id"], UUID)
        self.assertRegex(ev["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual(ev["datacontenttype"], "application/json")
        self.assertEqual(ev["data"], body)
        # without eventExtensionAttributes, nothing of the request besides the body
        for k in ("method", "path", "host", "hcontenttype"):
            self.assertNotIn(k, ev)

    def test_a_form_body_is_kept_as_sent(self):
        body = b"name=caf%C3%A9&qty=2&qty=3"
        st, _, msg = send(self.d, "/default/ext?src=form",
                                 {"Content-Type": "application/x-www-form-urlencoded"}, body)
        self.assertEqual(st, 202, msg)
        got = wait_for(lambda: [r for r in self.sub.got("/ext") if r.event().get("qsrc") == "form"],
                       what="the form event")
        ev = got[0].event()
        self.assertEqual(ev["datacontenttype"], "application/x-www-form-urlencoded")
        self.assertEqual(ev["data"], body)

    def test_a_binary_body_arrives_byte_for_byte(self):
        body = bytes(range(256)) * 4
        st, _, msg = send(self.d, "/default/plain?x=1",
                                 {"Content-Type": "application/octet-stream", "Ce-Id": "bin-1"},
                                 body)
        self.assertEqual(st, 202, msg)
        got = wait_for(lambda: [r for r in self.sub.got("/plain")
                                if r.event().get("datacontenttype") == "application/octet-stream"],
                       what="the binary event")
        ev = got[0].event()
        self.assertEqual(ev["data"], body)
        # Ce-Id is honoured only with headers in eventExtensionAttributes, as TriggerMesh does
        self.assertNotEqual(ev["id"], "bin-1")

    def test_headers_and_queries_become_extensions_named_as_triggermesh_names_them(self):
        headers = [("Content-Type", "text/plain"), ("X-Request-Source", "billing"),
                   ("X-Multi", "one"), ("X-Multi", "two"), ("Ce-Id", "order-7"),
                   ("Ce-Subject", "orders/7"), ("Authorization", "Bearer not-to-be-copied"),
                   ("X-A-Very-Long-Header-Name-Indeed", "long")]
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=10)
        conn.putrequest("POST", "/default/ext?region=eu-west&tag=a&tag=b&Weird_Key%21=v%20w")
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("Content-Length", "5")
        conn.endheaders(b"hello")
        r = conn.getresponse()
        self.assertEqual(r.status, 202, r.read())
        conn.close()
        got = wait_for(lambda: [r for r in self.sub.got("/ext") if r.event().get("id") == "order-7"],
                       what="the event with Ce-Id order-7")
        ev = got[0].event()
        self.assertEqual(ev["subject"], "orders/7")
        self.assertEqual(ev["source"], "https://example.com/hooks")
        self.assertEqual(ev["method"], "POST")
        self.assertEqual(ev["path"], "/default/ext")
        self.assertEqual(ev["host"], "127.0.0.1:%d" % self.d.port)
        self.assertEqual(ev["qregion"], "eu-west")
        self.assertEqual((ev["qtag0"], ev["qtag1"]), ("a", "b"))
        self.assertEqual(ev["qweirdkey"], "v w")
        self.assertEqual(ev["hxrequestsource"], "billing")
        self.assertEqual((ev["hxmulti0"], ev["hxmulti1"]), ("one", "two"))
        self.assertEqual(ev["hcontenttype"], "text/plain")
        self.assertEqual(ev["hcontentlength"], "5")
        self.assertEqual(ev["hxaverylongheadernam"], "long")  # cut at 20 characters
        self.assertEqual(ev["team"], "blue")  # ceOverrides
        for k in ev:
            self.assertNotIn("authorization", k)
            self.assertNotEqual(k, "hceid")
            self.assertNotEqual(k, "hcebrokerinternal")
        self.assertEqual(ev["data"], b"hello")

    def test_basic_auth_refuses_missing_and_wrong_credentials(self):
        st, _, msg = self.d.post("/default/auth", {}, b"x")
        self.assertEqual(st, 400, msg)
        st, h, msg = self.d.post("/default/auth", {"Authorization": basic("alice", "wrong")}, b"x")
        self.assertEqual(st, 401, msg)
        self.assertIn("Basic", h.get("www-authenticate", ""))
        st, _, msg = self.d.post("/default/auth", {"Authorization": basic("alicex", "s3cret")}, b"x")
        self.assertEqual(st, 401, msg)
        st, _, msg = self.d.post("/default/auth", {"Authorization": basic("alice", "s3cret")}, b"ok")
        self.assertEqual(st, 202, msg)
        reqs = self.sub.wait("/auth", 1)
        self.assertEqual([r.body for r in reqs], [b"ok"])  # the refused ones stored nothing
        m = self.d.metrics()
        self.assertGreaterEqual(m['cebroker_rejected_4xx_total{namespace="default",webhooksource="auth"}'], 3)

    def test_the_password_may_come_from_a_secret(self):
        st, _, msg = self.d.post("/default/secret", {"Authorization": basic("bob", "wrong")}, b"x")
        self.assertEqual(st, 401, msg)
        st, _, msg = self.d.post("/default/secret", {"Authorization": basic("bob", "fr0m-secret")},
                                 b"from secret")
        self.assertEqual(st, 202, msg)
        self.assertEqual(self.sub.wait("/secret", 1)[0].body, b"from secret")
        self.assertNotIn("fr0m-secret", self.d.log())

    def test_over_the_size_limit_is_413_and_other_methods_405(self):
        st, _, msg = self.d.post("/default/plain", {"Content-Type": "text/plain"}, b"x" * 70000)
        self.assertEqual(st, 413, msg)
        st, h, msg = self.d.post("/default/plain", {}, b"", method="GET")
        self.assertEqual(st, 405, msg)
        self.assertEqual(h.get("allow"), "POST")
        st, h, msg = self.d.post("/default/plain", {}, b"", method="PUT")
        self.assertEqual(st, 405, msg)

    def test_cors_preflight_and_allow_origin(self):
        st, h, _ = self.d.post("/default/cors", {"Origin": "https://app.example",
                                                 "Access-Control-Request-Method": "POST",
                                                 "Access-Control-Request-Headers": "content-type"},
                               b"", method="OPTIONS")
        self.assertEqual(st, 204)
        self.assertEqual(h.get("access-control-allow-origin"), "https://app.example")
        self.assertIn("POST", h.get("access-control-allow-methods", ""))
        self.assertEqual(h.get("access-control-allow-headers"), "content-type")
        st, h, msg = self.d.post("/default/cors", {"Content-Type": "text/plain"}, b"from a browser")
        self.assertEqual(st, 202, msg)
        self.assertEqual(h.get("access-control-allow-origin"), "https://app.example")
        # without corsAllowOrigin there is no preflight
        st, _, _ = self.d.post("/default/plain", {}, b"", method="OPTIONS")
        self.assertEqual(st, 405)

    def test_a_broker_of_this_daemon_as_sink_stores_straight_into_its_channel(self):
        st, _, msg = self.d.post("/default/to-broker", {"Content-Type": "text/plain"}, b"via broker")
        self.assertEqual(st, 202, msg)
        ev = self.sub.wait("/via-broker", 1)[0].event()
        self.assertEqual(ev["source"], "default.to-broker")
        self.assertEqual(ev["data"], b"via broker")
        m = self.d.metrics()
        self.assertEqual(m['cebroker_accepted_total{namespace="default",webhooksource="to-broker"}'], 1)


    def test_a_trigger_delivers_to_a_webhook_source_by_ref(self):
        h = {"ce-specversion": "1.0", "ce-id": "fw-1", "ce-type": "com.example.forward",
             "ce-source": "/test", "Content-Type": "text/plain"}
        st, _, msg = self.d.post("/default/default", h, b"forwarded")
        self.assertEqual(st, 202, msg)
        got = wait_for(lambda: [r for r in self.sub.got("/ext") if r.event()["data"] == b"forwarded"],
                       what="the forwarded event")
        ev = got[0].event()
        self.assertEqual(ev["type"], "com.example.webhook")
        self.assertEqual(ev["id"], "fw-1")  # the delivery's ce-id header, with headers in from
        self.assertEqual(ev["hcetype"], "com.example.forward")
        self.assertNotIn("hcebrokerinternal", ev)  # the daemon's token stays out of events


class FullQueue(unittest.TestCase):
    def test_a_full_queue_answers_429_and_stores_nothing_more(self):
        sub = Subscriber()
        release = threading.Event()

        def held(req):
            release.wait(30)
            return (202, {}, b"")

        sub.responses["/slow"] = held
        d = Daemon(webhook_yaml("slow", uri_sink(sub.at("/slow"))),
                   args=["--channel-max-events", "2", "--max-inflight", "1"])
        try:
            codes = []
            for i in range(6):
                st, h, msg = d.post("/default/slow", {"Content-Type": "text/plain"}, b"n%d" % i)
                codes.append(st)
                if st == 429:
                    self.assertIn("retry-after", h)
                    self.assertIn(b"full", msg)
            self.assertIn(429, codes)
            self.assertEqual(codes[0], 202)
            accepted = codes.count(202)
            self.assertLessEqual(accepted, 3)
            release.set()
            sub.wait("/slow", accepted)
            d.stop()
            self.assertEqual(sorted(r.body for r in sub.got("/slow")),
                             sorted(b"n%d" % i for i, c in enumerate(codes) if c == 202))
        finally:
            release.set()
            if d.proc.poll() is None:
                d.stop(check=False)
            sub.close()


@unittest.skipIf(os.environ.get("CEB_KAFKA") == "no", "this build has no kafka channel")
class KafkaBrokerSink(unittest.TestCase):
    def test_stored_in_kafka_before_202_and_503_when_kafka_is_down(self):
        kafka = KafkaMock()
        sub = Subscriber()
        d = None
        try:
            cfg = kafka_broker_yaml(kafka.bootstrap, name="durable",
                                    config={"cebroker.confirm.timeout.ms": "2000"})
            cfg += trigger_yaml("all", sub.at("/kafka"), broker="durable")
            cfg += webhook_yaml("to-kafka", "    ref:\n      apiVersion: eventing.knative.dev/v1\n"
                                            "      kind: Broker\n      name: durable\n")
            d = Daemon(cfg)
            st, _, msg = d.post("/default/to-kafka", {"Content-Type": "text/plain"}, b"kept in kafka")
            self.assertEqual(st, 202, msg)
            ev = sub.wait("/kafka", 1, timeout=30)[0].event()
            self.assertEqual(ev["data"], b"kept in kafka")
            self.assertEqual(ev["source"], "default.to-kafka")
            kafka.cmd("down all")
            st, _, msg = d.post("/default/to-kafka", {"Content-Type": "text/plain"}, b"not kept")
            self.assertEqual(st, 503, msg)
            self.assertIn(b"broker default/durable", msg)
            kafka.cmd("up all")
            d.stop()
            d = None
        finally:
            if d:
                d.stop(check=False)
            sub.close()
            kafka.close()


class Validation(unittest.TestCase):
    def test_errors_are_located_at_the_field(self):
        text = (broker_yaml("clash") +
                "apiVersion: sources.triggermesh.io/v1alpha1\nkind: WebhookSource\n"
                "metadata:\n  name: bad\nspec:\n"
                "  eventExtensionAttributes:\n    from: [method, cookies]\n"
                "  basicAuthUsername: alice\n"
                "  sink:\n    uri: http://127.0.0.1:9/x\n---\n" +
                webhook_yaml("clash", uri_sink("http://127.0.0.1:9/x")) +
                webhook_yaml("badsrc", uri_sink("http://127.0.0.1:9/x"),
                             extra="  eventSource: not a uri\n  basicAuthUsername: a:b\n"
                                   "  basicAuthPassword:\n    value: p\n") +
                webhook_yaml("nopass", uri_sink("http://127.0.0.1:9/x"),
                             extra="  basicAuthUsername: carol\n  basicAuthPassword:\n    valueFromSecret:\n"
                                   "      name: missing\n      key: k\n"))
        f = yaml_file(self, text)
        st, out, err = run_cli("validate", "-f", f)
        self.assertNotEqual(st, 0)
        name = re.escape(f)
        self.assertRegex(err, name + r":\d+:\d+: WebhookSource default/bad: spec.eventType: required field missing")
        self.assertRegex(err, name + r":\d+:\d+: WebhookSource default/bad: "
                         r"spec.eventExtensionAttributes.from\[1\]: \"cookies\" is not a part")
        self.assertRegex(err, name + r":\d+:\d+: WebhookSource default/bad: spec.basicAuthUsername: "
                         r"needs spec.basicAuthPassword")
        self.assertRegex(err, name + r":\d+:\d+: WebhookSource default/clash: metadata.name: "
                         r"/default/clash is already the address of Broker default/clash")
        self.assertRegex(err, name + r":\d+:\d+: WebhookSource default/badsrc: spec.eventSource: "
                         r"\"not a uri\" is not a URI-reference")
        self.assertRegex(err, name + r":\d+:\d+: WebhookSource default/badsrc: spec.basicAuthUsername: "
                         r".*cannot contain ':'")
        self.assertRegex(err, name + r":\d+:\d+: WebhookSource default/nopass: "
                         r"spec.basicAuthPassword.valueFromSecret.*missing")

    def test_a_kafka_sink_at_the_same_address_is_refused(self):
        import os
        if os.environ.get("CEB_KAFKA") == "no":
            self.skipTest("this build has no kafka channel")
        text = ("apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata:\n  name: both\n"
                "spec:\n  topic: t\n  bootstrapServers: [127.0.0.1:9092]\n---\n" +
                webhook_yaml("both", uri_sink("http://127.0.0.1:9/x")))
        st, out, err = run_cli("validate", "-f", yaml_file(self, text))
        self.assertNotEqual(st, 0)
        self.assertRegex(err, r":\d+:\d+: WebhookSource default/both: metadata.name: /default/both is "
                         r"already the address of KafkaSink default/both")

    def test_the_sample_validates(self):
        import os
        sample = os.path.join(os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", "..")),
                              "samples", "webhook-source.yaml")
        st, out, err = run_cli("validate", "-f", sample)
        self.assertEqual(st, 0, err)


if __name__ == "__main__":
    main()
