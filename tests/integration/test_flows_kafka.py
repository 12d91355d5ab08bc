"""Knative's channels on Kafka (librdkafka's mock cluster in its own process): the Sequence of
test_flows.py on KafkaChannels gives the same result, an MTChannelBasedBroker whose ConfigMap names
KafkaChannel stores its events in the topic Knative names (read back with kcat), and a SIGKILL in the
middle of a 2 000-event Sequence loses no event any step had accepted."""

import signal
import threading
import unittest

from cebtest import (Daemon, KafkaMock, Subscriber, binary_headers, echo_appending, kcat_read, main,
                     post, wait_for)

SETTINGS = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kafka-channel-config, namespace: "
            "knative-eventing}\ndata:\n  bootstrap.servers: \"%s\"\n---\n")


def sequence(name, steps, reply, partitions=3):
    y = ("apiVersion: flows.knative.dev/v1\nkind: Sequence\nmetadata: {name: %s}\nspec:\n"
         "  channelTemplate:\n    apiVersion: messaging.knative.dev/v1beta1\n    kind: KafkaChannel\n"
         "    spec: {numPartitions: %d, replicationFactor: 1, retentionDuration: PT1H}\n  steps:\n"
         % (name, partitions))
    y += "".join("  - uri: %s\n" % s for s in steps)
    return y + "  reply: {uri: %s}\n---\n" % reply



class KafkaFlows(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kafka = KafkaMock()
        cls.sub = Subscriber()

    @classmethod
    def tearDownClass(cls):
        cls.sub.close()
        cls.kafka.close()

    def test_a_sequence_on_kafka_channels_appends_each_step(self):
        s = self.sub
        for n in (1, 2, 3):
            s.responses["/k-step%d" % n] = echo_appending("-step%d" % n)
        d = Daemon(SETTINGS % self.kafka.bootstrap +
                   sequence("kseq", [s.at("/k-step%d" % n) for n in (1, 2, 3)], s.at("/k-sink")))
        try:
            st, _, body = d.post("/default/kseq", dict(binary_headers(id="k-1"),
                                                        **{"Content-Type": "text/plain"}), b"hello")
            self.assertEqual(st, 202, body)
            r = wait_for(lambda: s.got("/k-sink"), 30, what="the sequence's reply")[0]
            self.assertEqual(r.body, b"hello-step1-step2-step3")
            self.assertEqual(r.ce("id"), "k-1")
            # each step's channel is a topic of Knative's name, holding the step's input
            recs = kcat_read(self.kafka.bootstrap, "knative-messaging-kafka.default.kseq-kn-sequence-2")
            self.assertEqual([x["payload"] for x in recs], ["hello-step1-step2"])
            self.assertEqual(recs[0]["headers"]["ce_id"], "k-1")
        finally:
            d.stop()

    def test_a_channel_based_broker_on_kafkachannel(self):
        s = self.sub
        y = SETTINGS % self.kafka.bootstrap
        y += ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kafka-channel, namespace: knative-eventing}\n"
              "data:\n  channel-template-spec: |\n    apiVersion: messaging.knative.dev/v1beta1\n"
              "    kind: KafkaChannel\n    spec: {numPartitions: 3, replicationFactor: 1}\n---\n"
              "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: mt\n  annotations:\n"
              "    eventing.knative.dev/broker.class: MTChannelBasedBroker\nspec:\n  config:\n"
              "    {apiVersion: v1, kind: ConfigMap, name: kafka-channel, namespace: knative-eventing}\n---\n"
              "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: mt-t}\nspec:\n"
              "  broker: mt\n  filter: {attributes: {type: order}}\n  subscriber: {uri: %s}\n"
              % s.at("/mt"))
        d = Daemon(y)
        try:
            for i, t in enumerate(("order", "other", "order")):
                st, _, body = d.post("/default/mt", binary_headers(id="mt-%d" % i, type=t), b"{}")
                self.assertEqual(st, 202, body)
            wait_for(lambda: len(s.got("/mt")) == 2, 30, what="two orders")
            recs = kcat_read(self.kafka.bootstrap, "knative-messaging-kafka.default.mt-kne-trigger")
            self.assertEqual(sorted(x["headers"]["ce_id"] for x in recs), ["mt-0", "mt-1", "mt-2"])
            self.assertIn("kafkachannel default/mt-kne-trigger", d.log())
        finally:
            d.stop()

    def test_sigkill_in_the_middle_of_a_sequence_loses_nothing(self):
        n = 2000
        s = self.sub
        s.responses["/d-step1"] = echo_appending("-a")
        s.responses["/d-step2"] = echo_appending("-b", delay=0.002)
        cfg = SETTINGS % self.kafka.bootstrap + sequence(
            "dseq", [s.at("/d-step1"), s.at("/d-step2")], s.at("/d-sink"), partitions=4)
        d = Daemon(cfg, log_level="info")
        accepted = set()
        lock = threading.Lock()

        def sender(k):
            for i in range(k, n, 8):
                try:
                    st, _, _ = post(d.url + "/default/dseq",
                                    dict(binary_headers(id="d-%d" % i), **{"Content-Type": "text/plain"}),
                                    b"x", timeout=10)
                except OSError:
                    return  # the daemon is gone
                if st == 202:
                    with lock:
                        accepted.add("d-%d" % i)

        threads = [threading.Thread(target=sender, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        wait_for(lambda: len(s.got("/d-sink")) >= n // 4, 60, what="a quarter through")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        for t in threads:
            t.join(30)
        at_kill = len(s.got("/d-sink"))
        d2 = Daemon(cfg, log_level="info")
        try:
            def done():
                got = {r.ce("id") for r in s.got("/d-sink")}
                return accepted <= got
            wait_for(done, 120, what="every accepted event through both steps")
            sink = s.got("/d-sink")
            ids = [r.ce("id") for r in sink]
            dups = len(ids) - len(set(ids))
            print("\n%d accepted before the SIGKILL, %d had reached the sink at the kill; after the "
                  "restart all %d arrived, %d duplicate(s)" % (len(accepted), at_kill, len(accepted), dups))
            self.assertTrue(all(r.body == b"x-a-b" for r in sink))
            self.assertGreater(len(accepted), at_kill)  # the kill caught events in the middle
        finally:
            d2.stop()


if __name__ == "__main__":
    main()
