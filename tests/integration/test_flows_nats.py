"""Knative's channels on NATS JetStream (a real nats-server -js, started once): the Sequence of
test_flows.py on NatsJetStreamChannels gives the same result, each step's channel is the stream
eventing-natss names (read back with a client of the NATS text protocol, not the project's code),
a Channel and a Subscription on a NatsJetStreamChannel deliver with the channel's dead-letter sink, and
an MTChannelBasedBroker whose template names NatsJetStreamChannel runs on it."""

import unittest

from cebtest import (Daemon, NatsClient, NatsServer, Subscriber, binary_headers, echo_appending, main,
                     wait_for)

TEMPLATE = ("  channelTemplate:\n    apiVersion: messaging.knative.dev/v1alpha1\n"
            "    kind: NatsJetStreamChannel\n    spec:\n      stream: {config: {storage: File}}\n"
            "      consumerConfigTemplate: {ackWait: 5s, maxAckPending: 100}\n")



class NatsFlows(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.nats = NatsServer()
        s = cls.sub = Subscriber()
        for n in (1, 2, 3):
            s.responses["/step%d" % n] = echo_appending("-step%d" % n)
        s.responses["/refuses"] = [(500, {}, b"")]
        y = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config-nats, namespace: knative-eventing}\n"
             "data:\n  eventing-nats: |\n    url: %s\n---\n" % cls.nats.url)
        y += ("apiVersion: flows.knative.dev/v1\nkind: Sequence\nmetadata: {name: nseq}\nspec:\n" + TEMPLATE +
              "  steps:\n  - uri: %s\n  - uri: %s\n  - uri: %s\n  reply: {uri: %s}\n---\n"
              % (s.at("/step1"), s.at("/step2"), s.at("/step3"), s.at("/seq-sink")))
        y += ("apiVersion: messaging.knative.dev/v1\nkind: Channel\nmetadata: {name: nch}\nspec:\n" + TEMPLATE +
              "  delivery: {deadLetterSink: {uri: %s}}\n---\n" % s.at("/nch-dls"))
        y += ("apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata: {name: nch-sub}\nspec:\n"
              "  channel: {apiVersion: messaging.knative.dev/v1, kind: Channel, name: nch}\n"
              "  subscriber: {uri: %s}\n---\n" % s.at("/refuses"))
        y += ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: nats-channel, namespace: knative-eventing}\n"
              "data:\n  channel-template-spec: |\n    apiVersion: messaging.knative.dev/v1alpha1\n"
              "    kind: NatsJetStreamChannel\n---\n"
              "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: mt}\nspec:\n  config:\n"
              "    {apiVersion: v1, kind: ConfigMap, name: nats-channel, namespace: knative-eventing}\n---\n"
              "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: mt-t}\nspec:\n"
              "  broker: mt\n  subscriber: {uri: %s}\n" % s.at("/mt"))
        cls.d = Daemon(y)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        cls.nats.close()

    def test_a_sequence_on_nats_channels_appends_each_step(self):
        st, _, body = self.d.post("/default/nseq", dict(binary_headers(id="n-1"),
                                                        **{"Content-Type": "text/plain"}), b"hello")
        self.assertEqual(st, 202, body)
        r = wait_for(lambda: self.sub.got("/seq-sink"), 20, what="the sequence's reply")[0]
        self.assertEqual(r.body, b"hello-step1-step2-step3")
        self.assertEqual(r.ce("id"), "n-1")
        # an independent client finds step 2's input in the stream eventing-natss names
        c = NatsClient(self.nats.url)
        try:
            subject, hdrs, data = c.stream_msg("KN_DEFAULT__NSEQ_KN_SEQUENCE_2", 1)
            self.assertEqual(subject, "default.nseq-kn-sequence-2._knative")
            self.assertEqual(data, b"hello-step1-step2")
            self.assertEqual(hdrs.get("ce-id"), "n-1")
            info = c.js("CONSUMER.INFO.KN_DEFAULT__NSEQ_KN_SEQUENCE_2.KN_SUB_DEFAULT__NSEQ_KN_SEQUENCE_2")
            self.assertEqual(info["config"]["ack_wait"], 5 * 10**9)
            self.assertEqual(info["config"]["max_ack_pending"], 100)
        finally:
            c.close()

    def test_a_channel_on_nats_sends_what_its_subscriber_refuses_to_its_dead_letter_sink(self):
        st, _, body = self.d.post("/default/nch", binary_headers(id="d-1"), b"{}")
        self.assertEqual(st, 202, body)
        r = wait_for(lambda: self.sub.got("/nch-dls"), 20, what="the dead-letter sink")[0]
        self.assertEqual(r.ce("id"), "d-1")
        self.assertEqual(r.ce("knativeerrorcode"), "500")
        self.assertEqual(len(self.sub.got("/refuses")), 1)  # no delivery spec: no retry

    def test_a_channel_based_broker_on_nats(self):
        st, _, body = self.d.post("/default/mt", binary_headers(id="mt-1"), b"{}")
        self.assertEqual(st, 202, body)
        wait_for(lambda: self.sub.got("/mt"), 20, what="the trigger")
        c = NatsClient(self.nats.url)
        try:
            subject, hdrs, _ = c.stream_msg("KN_DEFAULT__MT_KNE_TRIGGER", 1)
            self.assertEqual(subject, "default.mt-kne-trigger._knative")
            self.assertEqual(hdrs.get("ce-id"), "mt-1")
        finally:
            c.close()


if __name__ == "__main__":
    main()
