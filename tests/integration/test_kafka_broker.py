"""A Kafka Broker end to end on librdkafka's mock cluster (its own process, tests/tools/kafka_mock):
binary and structured posts reach Triggers, retries and the dead-letter sink work as on the memory
channel, the topic holds records in the CloudEvents Kafka binding (read back with kcat), ordered
Triggers have one event in flight per partition, and a Trigger's offsets survive restarts."""

import json
import os
import shutil
import signal
import threading
import time
import unittest

from cebtest import (Daemon, KafkaMock, Subscriber, binary_headers, kafka_broker_yaml, kcat_read,
                     main, trigger_yaml, wait_for)

ORDERED = {"kafka.eventing.knative.dev/delivery.order": "ordered"}


class Concurrency:
    """A subscriber answer that takes `delay` seconds and records, per partitionkey, how many
    deliveries were in flight at once and the order they came in."""

    def __init__(self, delay):
        self.delay = delay
        self.lock = threading.Lock()
        self.inflight = {}
        self.max_inflight = {}
        self.max_total = 0
        self.total = 0
        self.order = {}

    def __call__(self, req):
        key = req.ce("partitionkey")
        with self.lock:
            self.inflight[key] = self.inflight.get(key, 0) + 1
            self.total += 1
            self.max_inflight[key] = max(self.max_inflight.get(key, 0), self.inflight[key])
            self.max_total = max(self.max_total, self.total)
            self.order.setdefault(key, []).append(req.ce("id"))
        time.sleep(self.delay)
        with self.lock:
            self.inflight[key] -= 1
            self.total -= 1
        return (202, {}, b"")


class KafkaBroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kafka = KafkaMock()
        cls.sub = s = Subscriber()
        dls = "deadLetterSink:\n  uri: %s\n" % s.at("/dls")
        cfg = kafka_broker_yaml(cls.kafka.bootstrap, config={"cebroker.confirm.timeout.ms": "5000"})
        cfg += trigger_yaml("orders", s.at("/orders"), filter_attrs={"type": "com.example.order"})
        cfg += trigger_yaml("orders-json", s.at("/orders-json"),
                            filter_attrs={"type": "com.example.order"}, delivery="format: json")
        cfg += trigger_yaml("flaky", s.at("/flaky"), filter_attrs={"type": "flaky"},
                            delivery="retry: 2\nbackoffPolicy: linear\nbackoffDelay: PT0.2S\n" + dls)
        cfg += trigger_yaml("broken", s.at("/broken"), filter_attrs={"type": "broken"},
                            delivery="retry: 1\nbackoffDelay: PT0.1S\n" + dls)
        cfg += trigger_yaml("ordered", s.at("/ordered"), filter_attrs={"type": "ordered"},
                            annotations=ORDERED)
        cfg += trigger_yaml("unordered", s.at("/unordered"), filter_attrs={"type": "ordered"})
        cfg += trigger_yaml("replayed", s.at("/replayed"), filter_attrs={"type": "replayed"},
                            annotations=ORDERED)
        s.responses["/flaky"] = [(500, {}, b"no"), (503, {}, b"no"), (200, {}, b"")]
        s.responses["/broken"] = [(500, {"Content-Type": "text/plain"}, b"it broke")]
        cls.ordered = Concurrency(0.15)
        cls.unordered = Concurrency(0.15)
        s.responses["/ordered"] = cls.ordered
        s.responses["/unordered"] = cls.unordered
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        cls.kafka.close()

    def post(self, headers, body=b""):
        st, _, rbody = self.d.post("/default/default", headers, body)
        self.assertEqual(st, 202, rbody)

    def with_id(self, path, id, count=1, timeout=20):
        return wait_for(lambda: (lambda r: r if len(r) >= count else None)(
            [r for r in self.sub.got(path) if r.event().get("id") == id]), timeout,
            what="event %s on %s" % (id, path))

    def test_replay_from_an_offset_seeks_the_triggers_consumer_group_back(self):
        ids = ["replay-%d" % i for i in range(4)]
        for id in ids:
            self.post(dict(binary_headers(id=id, type="replayed"), **{"ce-partitionkey": "k1"}),
                      b"{}")
        self.sub.wait("/replayed", 4, timeout=30)
        from cebtest import run_cli
        rc, out, err = run_cli("replay", "--trigger", "default/replayed", "--from-offset", "0",
                               "--daemon", "127.0.0.1:%d" % self.d.port, timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^Trigger default/replayed rewound to position 0: \d+ events to "
                              r"deliver again\n$")
        self.sub.wait("/replayed", 8, timeout=30)
        got = [r.ce("id") for r in self.sub.got("/replayed")]
        self.assertEqual(got[:4], ids)
        self.assertEqual(got[4:], ids)  # the same records again, in their partition's order
        time.sleep(0.3)
        self.assertEqual(len(self.sub.got("/replayed")), 8)

    def test_binary_and_structured_posts_reach_triggers_in_both_delivery_modes(self):
        data = b'{"order": 7, "note": "caf\xc3\xa9"}'
        self.post(binary_headers(id="k-bin", type="com.example.order", source="/shop",
                                 subject="o-7", region="eu", content_type="application/json"), data)
        doc = {"specversion": "1.0", "id": "k-str", "type": "com.example.order", "source": "/shop",
               "datacontenttype": "text/plain", "data": "plain text", "region": "us"}
        self.post({"Content-Type": "application/cloudevents+json"}, json.dumps(doc))
        r = self.with_id("/orders", "k-bin")[0]
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual((r.ce("subject"), r.ce("region"), r.ce("source")), ("o-7", "eu", "/shop"))
        self.assertIsNone(r.ce("knativebrokerttl"))
        r = self.with_id("/orders", "k-str")[0]
        self.assertEqual(r.body, b"plain text")
        self.assertEqual(r.headers["content-type"], "text/plain")
        self.assertEqual(r.ce("region"), "us")
        ev = self.with_id("/orders-json", "k-bin")[0].event()
        self.assertEqual(ev["_mode"], "structured")
        self.assertEqual(json.loads(ev["data"]), {"order": 7, "note": "caf\u00e9"})
        self.assertEqual(ev["region"], "eu")
        ev = self.with_id("/orders-json", "k-str")[0].event()
        self.assertEqual(ev["data"], b"plain text")
        time.sleep(0.5)
        self.assertEqual(len([r for r in self.sub.got("/orders") if r.ce("id") == "k-bin"]), 1)

    def test_retries_then_success_and_dead_letter_as_on_the_memory_channel(self):
        self.post(binary_headers(id="k-flaky", type="flaky"), b"x")
        self.post(binary_headers(id="k-broken", type="broken"), b"y")
        reqs = self.with_id("/flaky", "k-flaky", 3)
        self.assertGreaterEqual(reqs[1].time - reqs[0].time, 0.19)   # linear: 0.2 s, then 0.4 s
        self.assertGreaterEqual(reqs[2].time - reqs[1].time, 0.39)
        self.with_id("/broken", "k-broken", 2)
        dl = self.with_id("/dls", "k-broken")[0]
        self.assertEqual(dl.ce("knativeerrorcode"), "500")
        self.assertEqual(dl.ce("knativeerrordest"), self.sub.at("/broken"))
        self.assertEqual(dl.ce("knativeerrordata"), "aXQgYnJva2U=")  # base64("it broke")
        self.assertEqual(dl.body, b"y")
        time.sleep(1)
        self.assertEqual([r for r in self.sub.got("/dls") if r.ce("id") == "k-flaky"], [])
        self.assertEqual(len([r for r in self.sub.got("/flaky") if r.ce("id") == "k-flaky"]), 3)

    # CI installs kcat: there the test runs (and fails) rather than skip without it.
    @unittest.skipUnless(shutil.which("kcat") or os.environ.get("CI") == "true",
                         "kcat is not installed (scripts/install-deps)")
    def test_records_in_the_topic_follow_the_kafka_binding(self):
        self.post(binary_headers(id="k-wire", type="com.example.wire", source="/wire",
                                 partitionkey="customer-9", note="a%20b",
                                 content_type="application/json"), b'{"x":1}')
        # posts are answered 202 only once stored: the record is there now
        mine = [(rec, rec["headers"])
                for rec in kcat_read(self.kafka.bootstrap, "knative-broker-default-default")
                if rec["headers"].get("ce_id") == "k-wire"]
        self.assertEqual(len(mine), 1, "exactly one record: the idempotent producer stored it once")
        rec, hd = mine[0]
        self.assertEqual(rec["key"], "customer-9")
        self.assertEqual(rec["payload"], '{"x":1}')
        self.assertEqual(hd["content-type"], "application/json")
        self.assertEqual(hd["ce_specversion"], "1.0")
        self.assertEqual(hd["ce_type"], "com.example.wire")
        self.assertEqual(hd["ce_source"], "/wire")
        self.assertEqual(hd["ce_partitionkey"], "customer-9")
        self.assertEqual(hd["ce_note"], "a b", "percent-decoded at ingress, raw UTF-8 in Kafka")
        self.assertNotIn("ce_datacontenttype", hd)

    def test_ordered_trigger_has_one_event_in_flight_per_partition_and_keeps_order(self):
        keys = ["k%d" % i for i in range(4)]
        for n in range(5):
            for k in keys:
                self.post(binary_headers(id="%s-%d" % (k, n), type="ordered", partitionkey=k), b"o")
        wait_for(lambda: sum(len(v) for v in self.ordered.order.values()) >= 20, 60,
                 what="20 ordered deliveries")
        wait_for(lambda: sum(len(v) for v in self.unordered.order.values()) >= 20, 60,
                 what="20 unordered deliveries")
        for k in keys:
            self.assertEqual(self.ordered.max_inflight[k], 1, "key %s had two in flight" % k)
            self.assertEqual(self.ordered.order[k], ["%s-%d" % (k, n) for n in range(5)])
        # The same events without the annotation go out many at a time: the check can fail.
        self.assertGreater(max(self.unordered.max_inflight.values()), 1)


class KafkaExternalTopic(unittest.TestCase):
    @unittest.skipUnless(shutil.which("kcat") or os.environ.get("CI") == "true",
                         "kcat is not installed (scripts/install-deps)")
    def test_the_external_topic_annotation_uses_an_existing_topic(self):
        kafka = KafkaMock()
        sub = Subscriber()
        try:
            self.assertEqual(kafka.cmd("topic orders-in 3"), "ok")
            cfg = kafka_broker_yaml(kafka.bootstrap, name="ext").replace(
                "    eventing.knative.dev/broker.class: Kafka\n",
                "    eventing.knative.dev/broker.class: Kafka\n"
                "    kafka.eventing.knative.dev/external.topic: orders-in\n")
            cfg += trigger_yaml("t", sub.at("/t"), broker="ext")
            d = Daemon(cfg)
            try:
                st, _, body = d.post("/default/ext", binary_headers(id="ext-1"), b"x")
                self.assertEqual(st, 202, body)
                sub.wait("/t", 1, timeout=30)
                ids = [rec["headers"].get("ce_id") for rec in kcat_read(kafka.bootstrap, "orders-in")]
                self.assertIn("ext-1", ids)
            finally:
                d.stop()
        finally:
            sub.close()
            kafka.close()


class KafkaRestarts(unittest.TestCase):
    """A Trigger's consumer group keeps its offsets across cebroker restarts; the mock cluster
    (the "Kafka") stays up the whole time."""

    @classmethod
    def setUpClass(cls):
        cls.kafka = KafkaMock()

    @classmethod
    def tearDownClass(cls):
        cls.kafka.close()

    def config(self, sub):
        cfg = kafka_broker_yaml(self.kafka.bootstrap, name="restart")
        cfg += trigger_yaml("keeper", sub.at("/keep"), broker="restart",
                            delivery="retry: 5\nbackoffPolicy: linear\nbackoffDelay: PT10S")
        return cfg

    def test_settled_events_are_not_redelivered_and_unsettled_ones_are_after_a_kill(self):
        sub = Subscriber()
        try:
            d = Daemon(self.config(sub))
            for i in (1, 2):
                st, _, _ = d.post("/default/restart", binary_headers(id="r-%d" % i), b"x")
                self.assertEqual(st, 202)
            sub.wait("/keep", 2, timeout=20)
            time.sleep(1.5)  # an auto-commit interval
            d.stop()          # SIGTERM: drains, commits, leaves the group

            d = Daemon(self.config(sub))
            st, _, _ = d.post("/default/restart", binary_headers(id="r-3"), b"x")
            self.assertEqual(st, 202)
            sub.wait("/keep", 3, timeout=20)
            time.sleep(1)
            self.assertEqual(sorted(r.ce("id") for r in sub.got("/keep")), ["r-1", "r-2", "r-3"],
                             "settled before the restart: not delivered again")

            # Now the subscriber fails and the next attempt is 10 s away when the daemon dies.
            sub.responses["/keep"] = [(500, {}, b"")]
            st, _, _ = d.post("/default/restart", binary_headers(id="r-4"), b"x")
            self.assertEqual(st, 202)
            sub.wait("/keep", 4, timeout=20)
            d.stop(signal.SIGKILL, check=False)

            sub.responses["/keep"] = [(202, {}, b"")]
            d = Daemon(self.config(sub))
            wait_for(lambda: len([r for r in sub.got("/keep") if r.ce("id") == "r-4"]) >= 2, 40,
                     what="r-4 delivered again after the kill")
            d.stop()
        finally:
            sub.close()


if __name__ == "__main__":
    main()
