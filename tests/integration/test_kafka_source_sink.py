"""KafkaSource and KafkaSink end to end on librdkafka's mock cluster (its own process), with kcat as an
independent Kafka client on the other side:
- topic -> KafkaSource -> Broker -> Trigger -> subscriber: plain records become the events Knative
  makes of them, CloudEvent records (binary and structured) pass as they are;
- initialOffset earliest and latest; offsets committed only after the sink accepted (a record the
  sink refused comes back after a restart, an accepted one does not);
- Kafka Broker -> Trigger -> KafkaSink (ref) -> topic, read back with kcat, in binary and structured
  content mode; a KafkaSink as dead-letter sink; POST /<ns>/<sink> answered 202 only once stored;
  topic -> KafkaSource -> KafkaSink -> topic keeps the record key; SIGTERM does not cut the daemon's
  own deliveries to its KafkaSink."""

import json
import os
import shutil
import time
import unittest

from cebtest import (Daemon, KafkaMock, Subscriber, binary_headers, broker_yaml, kafka_broker_yaml,
                     kafka_sink_yaml, kafka_source_yaml, kcat_read, kcat_write, main, trigger_yaml,
                     wait_for)

NEEDS_KCAT = unittest.skipUnless(shutil.which("kcat") or os.environ.get("CI") == "true",
                                 "kcat is not installed (scripts/install-deps)")


@NEEDS_KCAT
class Source(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kafka = k = KafkaMock()
        for topic, parts in (("src-plain", 3), ("src-ce", 1), ("src-pre", 1)):
            k.cmd("topic %s %d" % (topic, parts))
        # Records that exist before cebroker starts: only a source reading from the earliest
        # offset sees them.
        kcat_write(k.bootstrap, "src-pre", "before-1")
        kcat_write(k.bootstrap, "src-pre", "before-2")
        cls.sub = s = Subscriber()
        cfg = broker_yaml("default")
        cfg += trigger_yaml("plain", s.at("/plain"), filter_attrs={"type": "dev.knative.kafka.event"})
        cfg += trigger_yaml("ce", s.at("/ce"), filter_attrs={"type": "com.example.kafka"})
        cfg += kafka_source_yaml("orders", k.bootstrap, ["src-plain", "src-ce"], ("Broker", "default"),
                                 extra="consumerGroup: knative-group\n")
        cfg += kafka_source_yaml("early", k.bootstrap, ["src-pre"], s.at("/early"), api="v1",
                                 extra="initialOffset: earliest\n")
        cfg += kafka_source_yaml("late", k.bootstrap, ["src-pre"], s.at("/late"))
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        cls.kafka.close()

    def test_plain_record_becomes_the_event_knative_makes_of_it(self):
        kcat_write(self.kafka.bootstrap, "src-plain", '{"msg": "This is a test!"}', key="customer-7",
                   headers={"X-Trace-Id": "abc-1", "retries": "2"})
        r = self.sub.wait("/plain", 1, timeout=30)[0]
        p = r.ce("subject").split("#")[0]
        off = r.ce("subject").split("#")[1]
        self.assertRegex(r.ce("subject"), r"^partition:[0-2]#[0-9]+$")
        self.assertEqual(r.ce("id"), "%s/offset:%s" % (p, off))
        self.assertEqual(r.ce("type"), "dev.knative.kafka.event")
        self.assertEqual(r.ce("source"), "/apis/v1/namespaces/default/kafkasources/orders#src-plain")
        self.assertEqual(r.ce("specversion"), "1.0")
        self.assertEqual(r.ce("key"), "customer-7")
        self.assertEqual(r.ce("partitionkey"), "customer-7", "as Knative: the key is the partition key")
        self.assertEqual(r.ce("kafkaheaderxtraceid"), "abc-1")
        self.assertEqual(r.ce("kafkaheaderretries"), "2")
        self.assertRegex(r.ce("time"), r"^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.body, b'{"msg": "This is a test!"}')
        # it went through the Broker: the loop guard was stripped on delivery, the Trigger counted it
        self.assertIsNone(r.ce("knativebrokerttl"))
        m = self.d.metrics()
        self.assertGreaterEqual(m['cebroker_delivered_total{namespace="default",kafkasource="orders"}'], 1)

    def test_cloudevent_records_pass_as_they_are(self):
        kcat_write(self.kafka.bootstrap, "src-ce", "hello", key="k",
                   headers={"ce_specversion": "1.0", "ce_id": "bin-1", "ce_type": "com.example.kafka",
                            "ce_source": "/producer", "ce_tenant": "acme", "content-type": "text/plain"})
        structured = {"specversion": "1.0", "id": "str-1", "type": "com.example.kafka",
                      "source": "/producer", "datacontenttype": "application/json", "data": {"n": 1}}
        kcat_write(self.kafka.bootstrap, "src-ce", json.dumps(structured),
                   headers={"content-type": "application/cloudevents+json"})
        got = {r.ce("id"): r for r in self.sub.wait("/ce", 2, timeout=30)}
        b = got["bin-1"]
        self.assertEqual((b.ce("type"), b.ce("source"), b.ce("tenant")),
                         ("com.example.kafka", "/producer", "acme"))
        self.assertEqual(b.headers.get("content-type"), "text/plain")
        self.assertEqual(b.body, b"hello")
        self.assertIsNone(b.ce("key"), "a CloudEvent record is not mapped")
        s = got["str-1"]
        self.assertEqual(s.ce("source"), "/producer")
        self.assertEqual(json.loads(s.body), {"n": 1})

    def test_initial_offset_earliest_reads_what_was_there_latest_does_not(self):
        kcat_write(self.kafka.bootstrap, "src-pre", "after-1")
        early = self.sub.wait("/early", 3, timeout=30)
        self.assertEqual(sorted(r.body for r in early), [b"after-1", b"before-1", b"before-2"])
        late = self.sub.wait("/late", 1, timeout=30)
        time.sleep(1)
        self.assertEqual([r.body for r in self.sub.got("/late")], [b"after-1"])
        self.assertEqual(late[0].ce("source"), "/apis/v1/namespaces/default/kafkasources/late#src-pre")


@NEEDS_KCAT
class SourceCommits(unittest.TestCase):
    def test_offsets_are_committed_only_after_the_sink_accepted(self):
        kafka = KafkaMock()
        sub = Subscriber()
        try:
            kafka.cmd("topic commits 1")
            cfg = kafka_source_yaml("c", kafka.bootstrap, ["commits"], sub.at("/sink"),
                                    delivery="retry: 1000\nbackoffPolicy: linear\nbackoffDelay: PT0.1S\n")
            sub.responses["/sink"] = lambda req: (202, {}, b"") if req.body == b"ok-1" else (503, {}, b"")
            d = Daemon(cfg, args=["--drain-timeout", "500"])
            kcat_write(kafka.bootstrap, "commits", "ok-1")
            sub.wait("/sink", 1, timeout=30)
            kcat_write(kafka.bootstrap, "commits", "refused-2")
            wait_for(lambda: len([r for r in sub.got("/sink") if r.body == b"refused-2"]) >= 3, 30,
                     what="refused-2 retried")
            time.sleep(1.5)  # past the auto-commit interval: ok-1 is committed by now
            d.stop()
            # The sink takes everything now: only the record it never accepted comes back.
            sub.responses["/sink"] = lambda req: (202, {}, b"")
            n = len(sub.got("/sink"))
            d = Daemon(cfg)
            wait_for(lambda: len(sub.got("/sink")) > n, 30, what="redelivery after restart")
            time.sleep(1.5)
            again = [r.body for r in sub.got("/sink")[n:]]
            d.stop()
            self.assertEqual(again, [b"refused-2"])
        finally:
            sub.close()
            kafka.close()


    def test_a_record_refused_for_good_without_dead_letter_sink_comes_again_and_is_counted(self):
        kafka = KafkaMock()
        sub = Subscriber()
        try:
            kafka.cmd("topic kept 1")
            cfg = kafka_source_yaml("k", kafka.bootstrap, ["kept"], sub.at("/sink"),
                                    extra="initialOffset: earliest\n")
            sub.responses["/sink"] = lambda req: (400, {}, b"no")
            kcat_write(kafka.bootstrap, "kept", "poison")
            d = Daemon(cfg, args=["--drain-timeout", "500"])
            # retry 0 and no dead-letter sink: Knative would commit it; cebroker hands it again
            wait_for(lambda: len(sub.got("/sink")) >= 2, 30, what="the refused record again")
            self.assertEqual({r.body for r in sub.got("/sink")}, {b"poison"})
            m = d.metrics()
            self.assertGreaterEqual(
                m.get('cebroker_left_in_source_total{namespace="default",kafkasource="k"}', 0), 1, m)
            self.assertEqual(m.get('cebroker_dropped_total{namespace="default",kafkasource="k"}'), 0)
            d.stop()
        finally:
            sub.close()
            kafka.close()

    def test_sigterm_while_a_source_feeds_its_own_broker_drains_and_loses_nothing(self):
        kafka = KafkaMock()
        sub = Subscriber()
        try:
            kafka.cmd("topic feed 2")
            for i in range(30):
                kcat_write(kafka.bootstrap, "feed", "rec-%02d" % i, partition=i % 2)

            def slow(req):
                time.sleep(0.1)
                return (202, {}, b"")
            sub.responses["/slow"] = slow
            cfg = broker_yaml("default") + trigger_yaml("slow", sub.at("/slow"))
            cfg += kafka_source_yaml("feed", kafka.bootstrap, ["feed"], ("Broker", "default"),
                                     extra="initialOffset: earliest\n",
                                     delivery="retry: 100\nbackoffDelay: PT0.2S\n")
            d = Daemon(cfg, args=["--drain-timeout", "60000"])
            sub.wait("/slow", 3, timeout=30)
            d.stop()  # within its 30 s: the drain does not wait for retries against our own 503s
            self.assertIn("drained; exiting", d.log())
            d = Daemon(cfg)
            wait_for(lambda: len({r.body for r in sub.got("/slow")}) == 30, 60,
                     what="every record delivered after the restart")
            d.stop()
            got = [r.body for r in sub.got("/slow")]
            self.assertEqual(sorted(set(got)), [b"rec-%02d" % i for i in range(30)])
        finally:
            sub.close()
            kafka.close()


@NEEDS_KCAT
class Sink(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kafka = k = KafkaMock()
        k.cmd("topic sink-bin 3")
        k.cmd("topic sink-str 1")
        k.cmd("topic sink-dls 1")
        k.cmd("topic bridge-in 2")
        k.cmd("topic bridge-out 1")
        cls.sub = s = Subscriber()
        s.responses["/broken"] = [(400, {"Content-Type": "text/plain"}, b"bad order")]
        cfg = kafka_broker_yaml(k.bootstrap)
        cfg += kafka_sink_yaml("bin", k.bootstrap, "sink-bin")
        cfg += kafka_sink_yaml("str", k.bootstrap, "sink-str", content_mode="structured")
        cfg += kafka_sink_yaml("dls", k.bootstrap, "sink-dls")
        cfg += kafka_sink_yaml("made", k.bootstrap, "sink-made", partitions=2, replication=1)
        # topic to topic: a KafkaSource whose sink is a KafkaSink of the same daemon
        cfg += kafka_sink_yaml("bridge-out", k.bootstrap, "bridge-out")
        cfg += kafka_source_yaml("bridge", k.bootstrap, ["bridge-in"], ("KafkaSink", "bridge-out"))
        cfg += trigger_yaml("to-sink", s.at("/unused"), filter_attrs={"type": "com.example.order"})
        cfg = cfg.replace("    uri: %s\n" % s.at("/unused"),
                          "    ref:\n      apiVersion: eventing.knative.dev/v1alpha1\n"
                          "      kind: KafkaSink\n      name: bin\n")
        cfg += trigger_yaml("broken", s.at("/broken"), filter_attrs={"type": "com.example.broken"},
                            delivery="deadLetterSink:\n  ref:\n    apiVersion: eventing.knative.dev/v1alpha1\n"
                                     "    kind: KafkaSink\n    name: dls\n")
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        cls.kafka.close()

    def find(self, topic, ce_id, timeout=30):
        def look():
            recs = [r for r in kcat_read(self.kafka.bootstrap, topic)
                    if r["headers"].get("ce_id") == ce_id or ('"id":"%s"' % ce_id) in (r["payload"] or "")]
            return recs or None
        return wait_for(look, timeout, interval=0.5, what="record %s in %s" % (ce_id, topic))

    def test_broker_trigger_to_kafka_sink_writes_the_kafka_binding(self):
        st, _, body = self.d.post("/default/default", binary_headers(
            id="o-1", type="com.example.order", source="/shop", partitionkey="cust-1", note="a%20b",
            content_type="application/json"), b'{"total":12}')
        self.assertEqual(st, 202, body)
        recs = self.find("sink-bin", "o-1")
        self.assertEqual(len(recs), 1)
        rec, hd = recs[0], recs[0]["headers"]
        self.assertEqual(rec["payload"], '{"total":12}')
        self.assertEqual(rec["key"], "cust-1")
        self.assertEqual((hd["ce_specversion"], hd["ce_type"], hd["ce_source"], hd["ce_note"]),
                         ("1.0", "com.example.order", "/shop", "a b"))
        self.assertEqual(hd["content-type"], "application/json")
        self.assertNotIn("ce_knativebrokerttl", hd, "the loop guard is stripped before delivery")
        m = self.d.metrics()
        self.assertGreaterEqual(m['cebroker_accepted_total{namespace="default",kafkasink="bin"}'], 1)

    def test_post_to_a_sink_is_acknowledged_once_kafka_holds_it(self):
        st, _, body = self.d.post("/default/bin", binary_headers(id="direct-1", partitionkey="p"), b"d")
        self.assertEqual(st, 202, body)
        recs = [r for r in kcat_read(self.kafka.bootstrap, "sink-bin")
                if r["headers"].get("ce_id") == "direct-1"]
        self.assertEqual(len(recs), 1, "the 202 came after the record was stored")
        self.assertEqual(recs[0]["payload"], "d")

    def test_structured_content_mode(self):
        st, _, body = self.d.post("/default/str", binary_headers(
            id="s-1", type="com.example.s", partitionkey="kk", content_type="application/json"), b'{"a":[1,2]}')
        self.assertEqual(st, 202, body)
        recs = [r for r in kcat_read(self.kafka.bootstrap, "sink-str")]
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["headers"], {"content-type": "application/cloudevents+json; charset=UTF-8"})
        self.assertEqual(recs[0]["key"], "kk")
        ev = json.loads(recs[0]["payload"])
        self.assertEqual((ev["id"], ev["type"], ev["specversion"], ev["data"]),
                         ("s-1", "com.example.s", "1.0", {"a": [1, 2]}))

    def test_kafka_sink_as_dead_letter_sink(self):
        st, _, body = self.d.post("/default/default", binary_headers(id="b-1", type="com.example.broken"), b"x")
        self.assertEqual(st, 202, body)
        hd = self.find("sink-dls", "b-1")[0]["headers"]
        self.assertEqual(hd["ce_knativeerrorcode"], "400")
        self.assertEqual(hd["ce_knativeerrordata"], "YmFkIG9yZGVy")  # base64("bad order")

    def test_sigterm_still_delivers_to_a_kafka_sink_of_the_same_daemon(self):
        # Kafka answers slowly: the ordered Trigger still has events to hand to the KafkaSink when
        # SIGTERM comes. The ingress refuses outside posts from then on, not the daemon's own.
        kafka = KafkaMock(brokers=1)
        try:
            kafka.cmd("topic drain-out 1")
            cfg = broker_yaml("default") + trigger_yaml("t", "http://unused/", annotations={
                "kafka.eventing.knative.dev/delivery.order": "ordered"}).replace(
                "    uri: http://unused/\n", "    ref:\n      apiVersion: eventing.knative.dev/v1alpha1\n"
                "      kind: KafkaSink\n      name: out\n")
            cfg += kafka_sink_yaml("out", kafka.bootstrap, "drain-out")
            d = Daemon(cfg, args=["--drain-timeout", "20000"])
            kafka.cmd("rtt all 600")
            for i in range(5):
                st, _, body = d.post("/default/default", binary_headers(id="drain-%d" % i), b"x")
                self.assertEqual(st, 202, body)
            time.sleep(0.5)
            d.stop()
            self.assertNotIn("dropped", d.log())
            kafka.cmd("rtt all 0")
            ids = sorted(r["headers"]["ce_id"] for r in kcat_read(kafka.bootstrap, "drain-out"))
            self.assertEqual(ids, ["drain-%d" % i for i in range(5)])
        finally:
            kafka.close()

    def test_a_source_bridges_a_topic_to_a_kafka_sink_with_its_key(self):
        kcat_write(self.kafka.bootstrap, "bridge-in", "payload-1", key="acct-3",
                   headers={"origin": "billing"})
        rec = wait_for(lambda: kcat_read(self.kafka.bootstrap, "bridge-out") or None, 30,
                       interval=0.5, what="a record in bridge-out")[0]
        hd = rec["headers"]
        self.assertEqual(rec["key"], "acct-3", "the record key survives the hop (partitionkey)")
        self.assertEqual(rec["payload"], "payload-1")
        self.assertEqual(hd["ce_type"], "dev.knative.kafka.event")
        self.assertEqual(hd["ce_source"], "/apis/v1/namespaces/default/kafkasources/bridge#bridge-in")
        self.assertEqual(hd["ce_kafkaheaderorigin"], "billing")
        self.assertEqual(hd["ce_key"], "acct-3")

    def test_sink_with_num_partitions_gets_its_topic(self):
        st, _, body = self.d.post("/default/made", binary_headers(id="m-1"), b"m")
        self.assertEqual(st, 202, body)
        self.assertEqual(len(kcat_read(self.kafka.bootstrap, "sink-made")), 1)


class StartErrors(unittest.TestCase):
    def test_a_missing_topic_stops_the_start_with_its_name(self):
        kafka = KafkaMock()
        try:
            with self.assertRaises(AssertionError) as cm:
                Daemon(kafka_sink_yaml("nope", kafka.bootstrap, "no-such-topic"))
            self.assertIn("kafkasink default/nope: topic no-such-topic does not exist (set "
                          "spec.numPartitions and spec.replicationFactor to have it created)",
                          str(cm.exception))
            with self.assertRaises(AssertionError) as cm:
                Daemon(kafka_source_yaml("src", kafka.bootstrap, ["absent"], "http://127.0.0.1:1/"))
            self.assertIn("kafkasource default/src: topic absent does not exist", str(cm.exception))
        finally:
            kafka.close()


class SharedGroup(unittest.TestCase):
    def test_two_sources_sharing_a_group_on_a_topic_get_a_warning(self):
        kafka = KafkaMock()
        try:
            kafka.cmd("topic shared 2")
            cfg = kafka_source_yaml("a", kafka.bootstrap, ["shared"], "http://127.0.0.1:1/a",
                                    extra="consumerGroup: g\n")
            cfg += kafka_source_yaml("b", kafka.bootstrap, ["other", "shared"], "http://127.0.0.1:1/b",
                                     extra="consumerGroup: g\n")
            cfg += kafka_source_yaml("c", kafka.bootstrap, ["shared"], "http://127.0.0.1:1/c")
            kafka.cmd("topic other 1")
            d = Daemon(cfg)
            d.stop()
            warnings = [l for l in d.log().splitlines() if "share consumer group" in l]
            self.assertEqual(len(warnings), 1, d.log())
            self.assertIn("KafkaSources default/a and default/b share consumer group g on topic shared",
                          warnings[0])
        finally:
            kafka.close()


if __name__ == "__main__":
    main()
