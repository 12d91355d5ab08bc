#!/usr/bin/env python3
"""The memory channel's end-to-end suites, unchanged, with their Broker on a DurableChannel (an
MTChannelBasedBroker whose channel-template-spec names it; a state directory of its own for each
daemon, given as systemd's StateDirectory= gives it): every filter dialect, retries with
exponential and linear backoff, Retry-After, timeouts, the dead-letter sink with its error
extensions, dropping without one, and replies with their TTL, as on the memory channel; and the
group commit: eight senders posting at once share their fsyncs; and Knative's other ways to a
DurableChannel: config-br-defaults and a Parallel's channelTemplate."""

import os
import re
import shutil
import tempfile
import threading
import unittest

from cebtest import Daemon, Subscriber, binary_headers, main, memory_suites_on
import test_delivery
import test_filters_e2e
import test_reply

STATES = []


def fresh_state():
    """A new state directory for the daemons started from now on ($STATE_DIRECTORY, which
    cebroker takes when --state-dir is not given)."""
    STATES.append(tempfile.mkdtemp(prefix="cebtest-state-"))
    os.environ["STATE_DIRECTORY"] = STATES[-1]


def durable_broker(name="default", namespace="default", delivery=None):
    y = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-channel\n  namespace: %s\n"
         "data:\n  channel-template-spec: |\n    apiVersion: messaging.cebroker.dev/v1alpha1\n"
         "    kind: DurableChannel\n---\n"
         "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: %s\n"
         "  namespace: %s\n  annotations:\n"
         "    eventing.knative.dev/broker.class: MTChannelBasedBroker\n"
         "spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n    name: %s-channel\n"
         % (name, namespace, name, namespace, name))
    if delivery:
        y += "  delivery:\n" + "".join("    " + line + "\n" for line in delivery.splitlines())
    return y + "---\n"


def setUpModule():
    memory_suites_on(durable_broker)


def tearDownModule():
    os.environ.pop("STATE_DIRECTORY", None)
    for d in STATES:
        shutil.rmtree(d, ignore_errors=True)


class DurableFilters(test_filters_e2e.FiltersEndToEnd):
    def setUp(self):
        fresh_state()


class DurableReplies(test_reply.Replies):
    @classmethod
    def setUpClass(cls):
        fresh_state()
        super().setUpClass()


class DurableDelivery(test_delivery.Delivery):
    @classmethod
    def setUpClass(cls):
        fresh_state()
        super().setUpClass()


class DurableGroupCommit(unittest.TestCase):
    def test_senders_posting_at_once_share_their_syncs(self):
        # 202 only once on disk, but one fsync for the events that arrived together, never one
        # per event when many post at once
        fresh_state()
        d = Daemon(durable_broker(), log_level="info")
        try:
            def send(k):
                for i in range(150):
                    st, _, body = d.post("/default/default",
                                         binary_headers(id="g%d-%d" % (k, i)), b"{}")
                    self.assertEqual(st, 202, body)
            ts = [threading.Thread(target=send, args=(k,)) for k in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(120)
        finally:
            d.stop()
        m = re.search(r"(\d+) events in (\d+) syncs", d.log())
        self.assertIsNotNone(m, d.log())
        events, syncs = int(m.group(1)), int(m.group(2))
        self.assertEqual(events, 1200)
        print("\n8 senders, 1 200 events: %d syncs (%.1f events a sync)" % (syncs, events / syncs))
        self.assertLess(syncs, events)


KNATIVE_DEFAULTS = """apiVersion: v1
kind: ConfigMap
metadata: {name: config-br-defaults, namespace: knative-eventing}
data:
  default-br-config: |
    clusterDefault:
      brokerClass: MTChannelBasedBroker
      apiVersion: v1
      kind: ConfigMap
      name: dur-channel
      namespace: knative-eventing
---
apiVersion: v1
kind: ConfigMap
metadata: {name: dur-channel, namespace: knative-eventing}
data:
  channel-template-spec: |
    apiVersion: messaging.cebroker.dev/v1alpha1
    kind: DurableChannel
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: viadefaults}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: t}
spec:
  broker: viadefaults
  subscriber: {uri: "%s"}
---
apiVersion: flows.knative.dev/v1
kind: Parallel
metadata: {name: par}
spec:
  channelTemplate:
    apiVersion: messaging.cebroker.dev/v1alpha1
    kind: DurableChannel
    spec: {sync: OS}
  branches:
  - subscriber: {uri: "%s"}
"""


class DurableThroughKnativesPaths(unittest.TestCase):
    def test_config_br_defaults_and_a_parallels_channel_template(self):
        # a Broker with no spec.config gets the cluster default's channel; a Parallel's
        # channelTemplate names the DurableChannel: both keep their events on disk
        fresh_state()
        sub = Subscriber()
        d = Daemon(KNATIVE_DEFAULTS % (sub.at("/t"), sub.at("/branch")), log_level="info")
        try:
            for path, id in (("/default/viadefaults", "b-1"), ("/default/par", "p-1")):
                st, _, body = d.post(path, binary_headers(id=id), b"{}")
                self.assertEqual(st, 202, body)
            self.assertEqual(sub.wait("/t", 1)[0].ce("id"), "b-1")
            self.assertEqual(sub.wait("/branch", 1)[0].ce("id"), "p-1")
            for ch in ("viadefaults-kne-trigger", "par-kn-parallel", "par-kn-parallel-0"):
                self.assertTrue(os.path.exists(os.path.join(
                    os.environ["STATE_DIRECTORY"], "durable", "default", ch + ".db")), ch)
                self.assertIn("[channel default/%s] durable in " % ch, d.log())
        finally:
            d.stop()
            sub.close()


if __name__ == "__main__":
    main()
