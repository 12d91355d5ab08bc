"""Knative's messaging and flows against the real daemon: InMemoryChannel, Channel and Subscription,
Sequence and Parallel, the scenarios of Knative's own e2e tests (channel/features.go, data_plane.go,
sequence/feature.go, parallel/features.go): a chain of 10 channels, dead-letter sinks on a channel and
a channel as a dead-letter sink, an event transformed through a reply, binary and structured, Prefer:
reply, the dead-letter extensions, CloudEvents 0.3 kept, the delivery matrix (exact counts at the
subscriber, the reply destination and the dead-letter sink), a Sequence of three steps and a Parallel
of two branches."""

import base64
import json
import unittest

from cebtest import (Daemon, Subscriber, binary_headers, echo_appending, main, run_cli, wait_for,
                     yaml_file)

IMC = "apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"


def imc(name, delivery=None):
    y = "---\n" + IMC + "metadata: {name: %s}\n" % name
    if delivery:
        y += "spec:\n  delivery:\n" + "".join("    " + l + "\n" for l in delivery.splitlines())
    return y


def subscription(name, channel, subscriber, reply=None, delivery=None, kind="InMemoryChannel"):
    y = ("---\napiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata: {name: %s}\n"
         "spec:\n  channel: {apiVersion: messaging.knative.dev/v1, kind: %s, name: %s}\n"
         "  subscriber: %s\n" % (name, kind, channel, subscriber))
    if reply:
        y += "  reply: %s\n" % reply
    if delivery:
        y += "  delivery:\n" + "".join("    " + l + "\n" for l in delivery.splitlines())
    return y


def uri(u):
    return "{uri: %s}" % u


def ref(kind, name, api="messaging.knative.dev/v1"):
    return "{ref: {apiVersion: %s, kind: %s, name: %s}}" % (api, kind, name)


def reply_with(type, id, data=b"r"):
    return (200, {"ce-specversion": "1.0", "ce-id": id, "ce-type": type, "ce-source": "/replier",
                  "Content-Type": "text/plain"}, data)



FAIL = (500, {}, b"")
OK = (202, {}, b"")
MATRIX = "retry: 1\nbackoffDelay: PT0.1S\ndeadLetterSink: {uri: %s}"


class Flows(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        s = cls.sub = Subscriber()
        y = ""
        # ChannelChain(10): subscription i delivers channel i into channel i+1, the last to a sink
        for i in range(10):
            y += imc("chain-%d" % i)
            y += subscription("chain-%d" % i, "chain-%d" % i,
                              ref("InMemoryChannel", "chain-%d" % (i + 1)) if i < 9 else uri(s.at("/chain")))
        # a Channel's dead-letter sink: its Subscription gives no delivery, so the channel's applies
        y += ("---\napiVersion: messaging.knative.dev/v1\nkind: Channel\nmetadata: {name: dlsch}\n"
              "spec:\n  channelTemplate: {apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel}\n"
              "  delivery: {deadLetterSink: {uri: %s}}\n" % s.at("/dlsch-dls"))
        y += subscription("dlsch", "dlsch", uri(s.at("/drop-first")), kind="Channel")
        s.responses["/drop-first"] = [FAIL, OK]
        # a channel as the dead-letter sink of another
        y += imc("asdls") + subscription("asdls", "asdls", uri(s.at("/asdls-sink")))
        y += imc("failing") + subscription("failing", "failing", uri(s.at("/always-fails")),
                                           delivery="deadLetterSink: %s" % ref("InMemoryChannel", "asdls"))
        s.responses["/always-fails"] = [FAIL]
        # EventTransformation: a reply flows into the second channel, then to the sink
        y += imc("t1") + subscription("t1", "t1", uri(s.at("/transform")), reply=ref("InMemoryChannel", "t2"))
        y += imc("t2") + subscription("t2", "t2", uri(s.at("/t-sink")))
        s.responses["/transform"] = [reply_with("transformed", "t-1", b"new data")]
        # encodings, Prefer: reply, 0.3
        y += imc("enc") + subscription("enc", "enc", uri(s.at("/enc")))
        # the dead-letter extensions
        y += imc("unreach") + subscription("unreach", "unreach", uri("http://127.0.0.1:1/nobody"),
                                           delivery="deadLetterSink: {uri: %s}" % s.at("/ext-dls"))
        y += imc("e422") + subscription("e422", "e422", uri(s.at("/422")),
                                        delivery="deadLetterSink: {uri: %s}" % s.at("/ext-dls"))
        s.responses["/422"] = [(422, {}, b"")]
        y += imc("e422b") + subscription("e422b", "e422b", uri(s.at("/422b")),
                                         delivery="deadLetterSink: {uri: %s}" % s.at("/ext-dls"))
        s.responses["/422b"] = [(422, {"Content-Type": "text/html"}, b"<html>no</html>")]
        # the delivery matrix (retry: 1): subscriber failures, replies, reply failures
        cases = {
            "m1": ([OK], None),
            "m2": ([FAIL, OK], None),
            "m3": ([FAIL], None),
            "m4": ([reply_with("r", "r4")], [FAIL, OK]),
            "m5": ([reply_with("r", "r5")], [FAIL]),
            "m6": ([FAIL, reply_with("r", "r6")], [OK]),
        }
        for name, (sub_answers, reply_answers) in cases.items():
            s.responses["/%s" % name] = sub_answers
            rep = None
            if reply_answers is not None:
                s.responses["/%s-reply" % name] = reply_answers
                rep = uri(s.at("/%s-reply" % name))
            y += imc(name) + subscription(name, name, uri(s.at("/%s" % name)), reply=rep,
                                          delivery=MATRIX % s.at("/%s-dls" % name))
        # a Sequence of three steps (sequence/feature.go)
        y += ("---\napiVersion: flows.knative.dev/v1\nkind: Sequence\nmetadata: {name: seq}\n"
              "spec:\n  channelTemplate: {apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel}\n"
              "  steps:\n  - uri: %s\n  - uri: %s\n  - uri: %s\n  reply: {uri: %s}\n"
              % (s.at("/step1"), s.at("/step2"), s.at("/step3"), s.at("/seq-sink")))
        for n in (1, 2, 3):
            s.responses["/step%d" % n] = echo_appending("-step%d" % n)
        # a Parallel of two branches (parallel/features.go): filter 2 lets nothing through
        y += ("---\napiVersion: flows.knative.dev/v1\nkind: Parallel\nmetadata: {name: par}\n"
              "spec:\n  channelTemplate: {apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel}\n"
              "  branches:\n"
              "  - {filter: {uri: %s}, subscriber: {uri: %s}}\n"
              "  - {filter: {uri: %s}, subscriber: {uri: %s}}\n"
              "  - {subscriber: {uri: %s}, reply: {uri: %s}}\n"
              "  reply: {uri: %s}\n"
              % (s.at("/pf1"), s.at("/pb1"), s.at("/pf2"), s.at("/pb2"), s.at("/pb3"),
                 s.at("/pb3-reply"), s.at("/par-sink")))
        s.responses["/pf1"] = lambda req: reply_with("filtered", "f-" + req.ce("id"), b"from filter 1")
        s.responses["/pf2"] = [OK]
        s.responses["/pb1"] = lambda req: reply_with("branch1", "b1-" + req.ce("id"), req.body)
        s.responses["/pb2"] = lambda req: reply_with("branch2", "b2-" + req.ce("id"))
        s.responses["/pb3"] = lambda req: reply_with("branch3", "b3-" + req.ce("id"))
        cls.d = Daemon(y)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def send(self, path, id, type="com.example.test", body=b"", headers=None):
        h = binary_headers(id=id, type=type)
        h.update(headers or {})
        st, _, answer = self.d.post(path, h, body)
        self.assertEqual(st, 202, answer)

    def one(self, path, id):
        return wait_for(lambda: [r for r in self.sub.got(path) if r.ce("id") == id], 10,
                        what="%s on %s" % (id, path))[0]

    def test_a_chain_of_ten_channels_carries_the_event_to_the_end(self):
        self.send("/default/chain-0", "heartbeat")
        r = self.one("/chain", "heartbeat")
        self.assertEqual(r.headers.get("kn-namespace"), "default")
        self.assertEqual(len(self.sub.got("/chain")), 1)

    def test_the_channels_dead_letter_sink_gets_what_its_subscriber_dropped(self):
        self.send("/default/dlsch", "d-1")
        r = self.one("/dlsch-dls", "d-1")
        self.assertEqual(r.headers.get("kn-namespace"), "default")
        self.assertEqual(r.ce("knativeerrorcode"), "500")
        # no delivery on the Subscription and none but the sink on the channel: no retry
        self.assertEqual(len([x for x in self.sub.got("/drop-first") if x.ce("id") == "d-1"]), 1)
        self.send("/default/dlsch", "d-2")
        self.one("/drop-first", "d-2")

    def test_a_channel_is_a_dead_letter_sink(self):
        self.send("/default/failing", "f-1")
        r = self.one("/asdls-sink", "f-1")
        self.assertEqual(r.ce("knativeerrorcode"), "500")
        self.assertTrue(r.ce("knativeerrordest").endswith("/always-fails"))

    def test_a_reply_is_transformed_into_the_next_channel(self):
        self.send("/default/t1", "t-0", body=b"old data")
        r = self.one("/t-sink", "t-1")
        self.assertEqual(r.ce("type"), "transformed")
        self.assertEqual(r.body, b"new data")
        self.assertEqual(self.sub.got("/t-sink")[0].ce("id"), "t-1")

    def test_binary_and_structured_arrive_with_prefer_reply(self):
        self.send("/default/enc", "bin-1", body=b'{"a":1}', headers={"Content-Type": "application/json"})
        ev = {"specversion": "1.0", "id": "str-1", "type": "t", "source": "/s", "data": {"a": 2}}
        st, _, body = self.d.post("/default/enc", {"Content-Type": "application/cloudevents+json"},
                                  json.dumps(ev).encode())
        self.assertEqual(st, 202, body)
        for id, data in (("bin-1", {"a": 1}), ("str-1", {"a": 2})):
            r = self.one("/enc", id)
            self.assertEqual(r.headers.get("prefer"), "reply")
            self.assertEqual(r.headers.get("kn-namespace"), "default")
            self.assertEqual(json.loads(r.body), data)

    def test_cloudevents_0_3_arrive_as_0_3(self):
        h = binary_headers(id="v03-bin")
        h["ce-specversion"] = "0.3"
        h["ce-schemaurl"] = "http://example.com/schema"
        st, _, body = self.d.post("/default/enc", h, b"x")
        self.assertEqual(st, 202, body)
        ev = {"specversion": "0.3", "id": "v03-str", "type": "t", "source": "/s",
              "datacontentencoding": "base64", "datacontenttype": "application/octet-stream",
              "data": base64.b64encode(b"\x00\x01").decode()}
        st, _, body = self.d.post("/default/enc", {"Content-Type": "application/cloudevents+json"},
                                  json.dumps(ev).encode())
        self.assertEqual(st, 202, body)
        r = self.one("/enc", "v03-bin")
        self.assertEqual(r.ce("specversion"), "0.3")
        self.assertEqual(r.ce("schemaurl"), "http://example.com/schema")
        r = self.one("/enc", "v03-str")
        self.assertEqual(r.ce("specversion"), "0.3")
        self.assertEqual(r.body, b"\x00\x01")

    def test_the_dead_letter_extensions_say_what_failed(self):
        self.send("/default/unreach", "x-1")
        self.send("/default/e422", "x-2")
        self.send("/default/e422b", "x-3")
        r = self.one("/ext-dls", "x-1")
        self.assertEqual(r.ce("knativeerrordest"), "http://127.0.0.1:1/nobody")
        self.assertIsNone(r.ce("knativeerrorcode"))
        r = self.one("/ext-dls", "x-2")
        self.assertEqual(r.ce("knativeerrorcode"), "422")
        self.assertIsNone(r.ce("knativeerrordata"))
        r = self.one("/ext-dls", "x-3")
        self.assertEqual(r.ce("knativeerrorcode"), "422")
        self.assertEqual(base64.b64decode(r.ce("knativeerrordata")), b"<html>no</html>")

    def test_the_delivery_matrix_counts_exactly(self):
        for name in ("m1", "m2", "m3", "m4", "m5", "m6"):
            self.send("/default/" + name, name + "-ev")
        # (subscriber, reply destination, dead-letter sink), retry: 1
        want = {"m1": (1, 0, 0), "m2": (2, 0, 0), "m3": (2, 0, 1),
                "m4": (1, 2, 0), "m5": (1, 2, 1), "m6": (2, 1, 0)}
        for name, (ns, nr, nd) in want.items():
            wait_for(lambda: len(self.sub.got("/%s" % name)) >= ns and
                     len(self.sub.got("/%s-reply" % name)) >= nr and
                     len(self.sub.got("/%s-dls" % name)) >= nd, 10, what=name)
        # everything settled: nothing more comes
        for name in want:
            wait_for(lambda: self.d.metrics()['cebroker_channel_pending_events{namespace="default",'
                                              'inmemorychannel="%s"}' % name] == 0, 10, what=name)
        for name, (ns, nr, nd) in want.items():
            got = (len(self.sub.got("/%s" % name)), len(self.sub.got("/%s-reply" % name)),
                   len(self.sub.got("/%s-dls" % name)))
            self.assertEqual(got, (ns, nr, nd), name)
        # a failed reply send: the dead-letter sink gets the original event, and where it failed
        d = self.sub.got("/m5-dls")[0]
        self.assertEqual(d.ce("id"), "m5-ev")
        self.assertTrue(d.ce("knativeerrordest").endswith("/m5-reply"))
        self.assertEqual(d.ce("knativeerrorcode"), "500")
        self.assertEqual([r.ce("id") for r in self.sub.got("/m4-reply")], ["r4", "r4"])

    def test_a_sequence_of_three_steps_appends_each_step(self):
        self.send("/default/seq", "s-1", type="dev.knative.sources.ping", body=b"hello",
                  headers={"Content-Type": "text/plain"})
        r = self.one("/seq-sink", "s-1")
        self.assertEqual(r.body, b"hello-step1-step2-step3")
        self.assertEqual(r.ce("type"), "dev.knative.sources.ping")
        self.assertEqual(r.headers.get("content-type"), "text/plain")
        self.assertEqual([len(self.sub.got("/step%d" % n)) for n in (1, 2, 3)], [1, 1, 1])
        # Knative's names, in the metrics
        self.assertEqual(self.d.metrics()['cebroker_delivered_total{namespace="default",'
                                          'subscription="seq-kn-sequence-2",'
                                          'inmemorychannel="seq-kn-sequence-2"}'], 1)

    def test_a_parallel_delivers_what_each_filter_returns_and_replies_per_branch(self):
        self.send("/default/par", "p-1", body=b"original")
        self.one("/pb1", "f-p-1")
        r = self.one("/par-sink", "b1-f-p-1")
        self.assertEqual(r.ce("type"), "branch1")
        self.assertEqual(r.body, b"from filter 1")  # what the filter returned reached the branch
        self.one("/pb3-reply", "b3-p-1")  # no filter: always; its own reply wins over spec.reply
        for ch in ("par-kn-parallel", "par-kn-parallel-0", "par-kn-parallel-1"):
            wait_for(lambda: self.d.metrics()['cebroker_channel_pending_events{namespace="default",'
                                              'inmemorychannel="%s"}' % ch] == 0, 10, what=ch)
        self.assertEqual(len(self.sub.got("/par-sink")), 1)
        self.assertEqual(self.sub.got("/pb2"), [])


class FlowErrors(unittest.TestCase):
    def validate(self, text):
        return run_cli("validate", "-f", yaml_file(self, text))

    def test_what_knative_refuses_is_refused_where_it_is(self):
        rc, out, err = self.validate(
            IMC + "metadata: {name: c}\nspec:\n  subscribers: [{subscriberUri: http://x}]\n"
            + subscription("s", "c", "{uri: http://127.0.0.1:1/}").replace(
                "name: c}", "name: c, namespace: other}")
            + subscription("s2", "nope", "{uri: http://127.0.0.1:1/}")
            + "---\napiVersion: flows.knative.dev/v1\nkind: Sequence\nmetadata: {name: q}\nspec:\n  steps: []\n"
            + "---\napiVersion: flows.knative.dev/v1\nkind: Parallel\nmetadata: {name: p}\nspec:\n"
            "  channelTemplate: {apiVersion: messaging.knative.dev/v1, kind: GooseChannel}\n"
            "  branches: [{subscriber: {uri: http://127.0.0.1:1/}}]\n")
        self.assertEqual(rc, 1, err)
        lines = err.splitlines()
        self.assertIn(":5:16: InMemoryChannel default/c: spec.subscribers: set by Knative's controller", err)
        self.assertIn("Subscription default/s: spec.channel.namespace: a channel of another namespace "
                      "is not supported", err)
        self.assertIn("Subscription default/s2: spec.channel: InMemoryChannel default/nope not found", err)
        self.assertIn("Sequence default/q: spec.steps: needs at least one entry", err)
        self.assertIn("Parallel default/p: spec.channelTemplate.kind: channel kind \"GooseChannel\" "
                      "(messaging.knative.dev/v1) is not one this build can back", err)
        self.assertEqual(len(lines), 6, err)  # one error for the Parallel's template

    def test_the_default_channel_comes_from_default_ch_webhook(self):
        rc, out, err = self.validate(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: default-ch-webhook, namespace: knative-eventing}\n"
            "data:\n  default-ch-config: |\n    clusterDefault:\n      apiVersion: messaging.knative.dev/v1\n"
            "      kind: InMemoryChannel\n    namespaceDefaults:\n      kafka-ns:\n"
            "        apiVersion: messaging.knative.dev/v1beta1\n        kind: OtherChannel\n"
            "---\napiVersion: messaging.knative.dev/v1\nkind: Channel\nmetadata: {name: c}\n"
            "---\napiVersion: messaging.knative.dev/v1\nkind: Channel\nmetadata: {name: c, namespace: kafka-ns}\n")
        self.assertEqual(rc, 1, err)
        self.assertIn(":12:15: Channel kafka-ns/c: spec: channel kind \"OtherChannel\" "
                      "(messaging.knative.dev/v1beta1) is not one this build can back", err)
        self.assertEqual(len(err.splitlines()), 2, err)  # the one in default is an InMemoryChannel

    def test_one_address_one_owner(self):
        rc, out, err = self.validate(
            "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: x}\n"
            "---\napiVersion: flows.knative.dev/v1\nkind: Sequence\nmetadata: {name: x}\n"
            "spec:\n  steps: [{uri: http://127.0.0.1:1/}]\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("Sequence default/x: metadata.name: /default/x is already the address of Broker "
                      "default/x", err)


if __name__ == "__main__":
    main()
