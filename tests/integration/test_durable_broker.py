#!/usr/bin/env python3
"""A Broker on a DurableChannel (an MTChannelBasedBroker whose channel-template-spec names it), end to
end on the real daemon with a state directory of its own: 8 senders post 20 000 events while the
daemon is killed with SIGKILL and restarted; every event that got a 202 is delivered (duplicates
printed, never an error); the same with the channel's disk bound reached (429s counted, nothing
accepted lost); `cebroker replay --since` gives a Trigger exactly the events of the window again, in
order; a Sequence and a Channel with a DurableChannel template keep what their subscriber did not
take across a SIGKILL; replay on a memory Broker and bad replay requests get clear refusals; senders
that hang up before their 202 do not hold up the daemon's stop."""

import datetime
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest

from cebtest import (Daemon, Subscriber, binary_headers, echo_appending, main, post, run_cli,
                     trigger_yaml, wait_for)
from test_kafka_durability import Senders

EVENTS = int(os.environ.get("CEB_DURABLE_EVENTS", "20000"))
KILLS = 3


def durable_broker_yaml(name="default", spec="retentionDuration: PT168H"):
    return ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s-channel, namespace: default}\n"
            "data:\n  channel-template-spec: |\n    apiVersion: messaging.cebroker.dev/v1alpha1\n"
            "    kind: DurableChannel\n    spec:\n      %s\n---\n"
            "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: %s\n"
            "  annotations: {eventing.knative.dev/broker.class: MTChannelBasedBroker}\n"
            "spec:\n  config: {apiVersion: v1, kind: ConfigMap, name: %s-channel}\n---\n"
            % (name, spec.replace("\n", "\n      "), name, name))


def ids_at(sub, path):
    return [r.ce("id") for r in sub.got(path)]


class DurableBroker(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="cebtest-state-")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.stop(signal.SIGKILL, check=False)
        shutil.rmtree(self.state, ignore_errors=True)

    def daemon(self, yaml_text):
        d = Daemon(yaml_text, args=("--state-dir", self.state), log_level="info")
        self.daemons.append(d)
        return d

    def test_1_no_event_that_got_a_202_is_lost_across_sigkills(self):
        sub = Subscriber()
        cfg = durable_broker_yaml() + trigger_yaml(
            "durable", sub.at("/durable"),
            delivery="retry: 10\nbackoffPolicy: linear\nbackoffDelay: PT0.2S")
        state = {"d": self.daemon(cfg)}
        try:
            ids = ["ev-%05d" % i for i in range(EVENTS)]
            moments = [EVENTS * (k + 1) // (KILLS + 1) for k in range(KILLS)]
            t0 = time.monotonic()
            senders = Senders(lambda: state["d"].url, ids, tries=400).start()
            for at in moments:
                wait_for(lambda: len(senders.acked) >= at or not any(
                    t.is_alive() for t in senders.threads), 120, what="%d acknowledged" % at)
                state["d"].stop(signal.SIGKILL, check=False)
                state["d"] = self.daemon(cfg)
            self.assertTrue(senders.join(240), "senders did not finish")
            posted = time.monotonic() - t0
            acked = senders.acked
            self.assertGreater(len(acked), EVENTS * 0.95, senders.statuses)
            wait_for(lambda: acked <= set(ids_at(sub, "/durable")), 120, interval=0.2,
                     what="every acknowledged event delivered (%d missing)" % len(
                         acked - set(ids_at(sub, "/durable"))))
            got = ids_at(sub, "/durable")
            lost = acked - set(got)
            print("\n  %d events, %d acknowledged (202) in %.1fs with %d SIGKILLs; answers %s; "
                  "all delivered %.1fs later: %d deliveries, %d unique, %d lost, %d duplicates" % (
                      EVENTS, len(acked), posted, KILLS, senders.statuses,
                      time.monotonic() - t0 - posted, len(got), len(set(got)), len(lost),
                      len(got) - len(set(got))), file=sys.stderr)
            self.assertEqual(lost, set())
            self.assertRegex(state["d"].log(), r"durable in .*default-kne-trigger\.db: events 1\.\.\d+")
            state["d"].stop()
        finally:
            sub.close()

    def test_2_at_the_disk_bound_refusals_are_429_and_nothing_accepted_is_lost(self):
        sub = Subscriber()
        accepting = {"on": False}
        sub.responses["/bound"] = lambda req: (202, {}, b"") if accepting["on"] else (503, {}, b"")
        # about 250 bytes stored per event: 64 KiB hold some 250 of the 2000
        cfg = durable_broker_yaml(spec="retentionSize: 64Ki") + trigger_yaml(
            "bound", sub.at("/bound"),
            delivery="retry: 1000\nbackoffPolicy: linear\nbackoffDelay: PT0.2S")
        d = self.daemon(cfg)
        try:
            senders = Senders(lambda: d.url, ["full-%04d" % i for i in range(2000)], tries=1).start()
            self.assertTrue(senders.join(120))
            refused = senders.statuses.get(429, 0)
            self.assertGreater(refused, 0, senders.statuses)
            self.assertGreater(len(senders.acked), 0, senders.statuses)
            self.assertEqual(set(senders.statuses) - {202, 429}, set(), senders.statuses)
            st, _, body = d.post("/default/default", binary_headers(id="one-more"), b"{}")
            self.assertEqual(st, 429, body)
            self.assertIn(b"full", body.lower())
            m = d.metrics()
            self.assertGreaterEqual(m['cebroker_rejected_full_total{namespace="default",broker="default"}'],
                                    refused)
            self.assertEqual(m['cebroker_channel_retention_dropped_total{namespace="default",broker="default"}'], 0)
            d.stop(signal.SIGKILL, check=False)
            d = self.daemon(cfg)
            accepting["on"] = True
            acked = senders.acked
            wait_for(lambda: acked <= set(ids_at(sub, "/bound")), 60, interval=0.2,
                     what="every acknowledged event delivered (%d missing)" % len(
                         acked - set(ids_at(sub, "/bound"))))
            # delivered and settled: room again
            wait_for(lambda: d.post("/default/default", binary_headers(id="after"), b"{}")[0] == 202,
                     20, interval=0.2, what="a 202 once the stored events were settled")
            got = ids_at(sub, "/bound")
            print("\n  disk bound: %d posted once each, %d acknowledged, %d refused with 429; "
                  "after SIGKILL all %d acknowledged delivered (%d deliveries with the refused "
                  "attempts before), 0 lost" % (2000, len(acked), refused, len(acked), len(got)),
                  file=sys.stderr)
            d.stop()
        finally:
            sub.close()

    def test_3_replay_since_a_time_delivers_exactly_that_window_again_in_order(self):
        sub = Subscriber()
        cfg = durable_broker_yaml() + trigger_yaml(
            "lost-a-day", sub.at("/lost"),
            annotations={"kafka.eventing.knative.dev/delivery.order": "ordered"})
        cfg += trigger_yaml("fine", sub.at("/fine"))
        d = self.daemon(cfg)
        try:
            for i in range(5):
                self.assertEqual(d.post("/default/default", binary_headers(id="old-%d" % i), b"{}")[0], 202)
            sub.wait("/lost", 5)
            time.sleep(0.05)
            since = datetime.datetime.now(datetime.timezone.utc)
            time.sleep(0.05)
            for i in range(5):
                self.assertEqual(d.post("/default/default", binary_headers(id="new-%d" % i), b"{}")[0], 202)
            sub.wait("/lost", 10)
            sub.wait("/fine", 10)
            rc, out, err = run_cli("replay", "--trigger", "default/lost-a-day", "--since",
                                   since.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                                   "--daemon", "127.0.0.1:%d" % d.port)
            self.assertEqual(rc, 0, err)
            self.assertIn("5 events to deliver again", out)
            sub.wait("/lost", 15)
            time.sleep(0.3)
            self.assertEqual(ids_at(sub, "/lost")[10:], ["new-%d" % i for i in range(5)])
            self.assertEqual(len(sub.got("/fine")), 10)  # the other Trigger: nothing again
            # by duration, from the first: everything again, in order
            rc, out, err = run_cli("replay", "--trigger", "default/lost-a-day", "--since", "1h",
                                   "--daemon", "127.0.0.1:%d" % d.port)
            self.assertEqual(rc, 0, err)
            sub.wait("/lost", 25)
            self.assertEqual(ids_at(sub, "/lost")[15:],
                             ["old-%d" % i for i in range(5)] + ["new-%d" % i for i in range(5)])
            # refusals: an unknown Trigger, a bad time, neither option
            rc, out, err = run_cli("replay", "--trigger", "default/nope", "--from-offset", "1",
                                   "--daemon", "127.0.0.1:%d" % d.port)
            self.assertEqual((rc, err.strip()), (1, "cebroker replay: 404: no Trigger default/nope"))
            rc, _, err = run_cli("replay", "--trigger", "default/lost-a-day", "--since", "yesterday")
            self.assertEqual(rc, 2)
            self.assertIn("neither an RFC 3339 time", err)
            st, _, body = post(d.url + "/admin/replay?trigger=default/lost-a-day", {}, b"")
            self.assertEqual(st, 400, body)
            st, _, body = post(d.url + "/admin/replay?trigger=default/lost-a-day&offset=1", {}, b"",
                               method="GET")
            self.assertEqual(st, 405, body)
            d.stop()
        finally:
            sub.close()

    def test_4_flows_on_durable_channels_keep_what_was_not_delivered_across_a_sigkill(self):
        sub = Subscriber()
        up = {"on": False}
        sub.responses["/ch"] = lambda req: (202, {}, b"") if up["on"] else (503, {}, b"")
        sub.responses["/step"] = echo_appending("-step")
        tpl = ("  channelTemplate:\n    apiVersion: messaging.cebroker.dev/v1alpha1\n"
               "    kind: DurableChannel\n    spec: {sync: OS}\n")
        y = ("apiVersion: messaging.knative.dev/v1\nkind: Channel\nmetadata: {name: dch}\nspec:\n" + tpl +
             "---\napiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata: {name: dch-sub}\n"
             "spec:\n  channel: {apiVersion: messaging.knative.dev/v1, kind: Channel, name: dch}\n"
             "  subscriber: {uri: %s}\n  delivery: {retry: 100, backoffPolicy: linear, "
             "backoffDelay: PT0.2S}\n---\n" % sub.at("/ch"))
        y += ("apiVersion: flows.knative.dev/v1\nkind: Sequence\nmetadata: {name: dseq}\nspec:\n" + tpl +
              "  steps:\n  - uri: %s\n  reply: {uri: %s}\n---\n" % (sub.at("/step"), sub.at("/seq-out")))
        y += ("apiVersion: messaging.cebroker.dev/v1alpha1\nkind: DurableChannel\nmetadata: {name: own}\n"
              "spec: {retentionDuration: PT1H, retentionSize: 10Mi}\n---\n"
              "apiVersion: messaging.knative.dev/v1\nkind: Subscription\nmetadata: {name: own-sub}\n"
              "spec:\n  channel: {apiVersion: messaging.cebroker.dev/v1alpha1, kind: DurableChannel, "
              "name: own}\n  subscriber: {uri: %s}\n---\n" % sub.at("/own"))
        d = self.daemon(y)
        try:
            for i in range(3):
                self.assertEqual(d.post("/default/dch", binary_headers(id="c-%d" % i), b"{}")[0], 202)
            self.assertEqual(d.post("/default/dseq", binary_headers(id="s-1"), b"{}")[0], 202)
            self.assertEqual(d.post("/default/own", binary_headers(id="o-1"), b"{}")[0], 202)
            sub.wait("/seq-out", 1)
            sub.wait("/own", 1)
            sub.wait("/ch", 3)  # refused so far
            d.stop(signal.SIGKILL, check=False)
            n = len(sub.got("/ch"))  # what the killed daemon sent, before the new one starts
            up["on"] = True
            d = self.daemon(y)
            sub.wait("/ch", n + 3, timeout=20)
            wait_for(lambda: {"c-0", "c-1", "c-2"} <= set(ids_at(sub, "/ch")[n - 3:]), 20,
                     what="the channel's events after the restart")
            time.sleep(0.3)
            # settled before the kill: at most once more (a position reaches the disk within
            # 100 ms of the settle; the unit test checks that a settled one never comes again)
            self.assertEqual(set(ids_at(sub, "/own")), {"o-1"})
            self.assertLessEqual(len(sub.got("/own")), 2)
            self.assertLessEqual(len(sub.got("/seq-out")), 2)
            self.assertEqual(sub.got("/seq-out")[0].body, b"{}-step")
            d.stop()
        finally:
            sub.close()

    def test_5_replay_on_a_memory_broker_says_it_keeps_no_history(self):
        sub = Subscriber()
        y = ("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: mem}\n---\n"
             + trigger_yaml("t", sub.at("/t"), broker="mem"))
        d = self.daemon(y)
        try:
            rc, out, err = run_cli("replay", "--trigger", "default/t", "--since", "24h",
                                   "--daemon", "127.0.0.1:%d" % d.port)
            self.assertEqual(rc, 1)
            self.assertIn("409", err)
            self.assertIn("keeps no history", err)
            d.stop()
        finally:
            sub.close()

    def test_7_senders_that_hang_up_before_their_202_do_not_hold_up_the_stop(self):
        # Each sender closes its connection right after its request: the publish completes and
        # resumes a request whose client has gone, which MHD ends without asking for the answer.
        sub = Subscriber()
        d = self.daemon(durable_broker_yaml() + trigger_yaml("t", sub.at("/t")))
        try:
            n = 20
            for i in range(n):
                body = b'{"n": %d}' % i
                head = "".join("%s: %s\r\n" % kv for kv in binary_headers(
                    id="gone-%d" % i, content_type="application/json").items())
                with socket.create_connection(("127.0.0.1", d.port)) as s:
                    s.sendall(("POST /default/default HTTP/1.1\r\nHost: x\r\n%s"
                               "Content-Length: %d\r\n\r\n" % (head, len(body))).encode() + body)
            wait_for(lambda: len(sub.got("/t")) == n, timeout=20)
            d.stop()
            self.assertNotIn("still suspended", d.log())
        finally:
            sub.close()

    def test_8_age_retention_counts_events_a_trigger_was_handed_and_had_not_settled(self):
        # The subscriber refuses, so the three events stay out with the dispatcher, retried:
        # retention by age (1 s) deletes them, says so and counts them.
        sub = Subscriber()
        accepting = {"on": False}
        sub.responses["/down"] = lambda req: (202, {}, b"") if accepting["on"] else (503, {}, b"")
        cfg = durable_broker_yaml(spec="retentionDuration: PT1S") + trigger_yaml(
            "down", sub.at("/down"), delivery="retry: 1000\nbackoffPolicy: linear\nbackoffDelay: PT0.2S")
        d = self.daemon(cfg)
        try:
            for i in range(3):
                self.assertEqual(d.post("/default/default", binary_headers(id="aged-%d" % i), b"{}")[0], 202)
            key = 'cebroker_channel_retention_dropped_total{namespace="default",broker="default"}'
            wait_for(lambda: d.metrics().get(key, 0) >= 3, 20, interval=0.2,
                     what="the three events counted as deleted before they were settled")
            self.assertEqual(d.metrics()[key], 3)
            self.assertRegex(d.log(), r"retention \(1000 ms\) deleted events that subscription "
                                      r"default/down had been handed and not settled \(\d\)")
            accepting["on"] = True
            sub.wait("/down", 4)
            d.stop()
        finally:
            sub.close()

    def test_6_bad_durable_channel_settings_are_errors_with_their_position(self):
        path = os.path.join(self.state, "bad.yaml")
        with open(path, "w") as f:
            f.write("apiVersion: messaging.cebroker.dev/v1alpha1\nkind: DurableChannel\n"
                    "metadata: {name: bad}\nspec:\n  retentionDuration: forever\n"
                    "  retentionSize: 10\n  sync: Sometimes\n  partitions: 3\n---\n"
                    "apiVersion: messaging.knative.dev/v1\nkind: Channel\nmetadata: {name: c}\n"
                    "spec:\n  channelTemplate:\n    apiVersion: messaging.cebroker.dev/v1alpha1\n"
                    "    kind: DurableChannel\n    spec: {retentionSize: 12Zi}\n")
        rc, out, err = run_cli("validate", "-f", path)
        self.assertEqual(rc, 1, out)
        self.assertEqual(err.replace(path, "bad.yaml").splitlines(), [
            'bad.yaml:5:22: DurableChannel default/bad: spec.retentionDuration: invalid duration '
            '"forever": not an ISO 8601 duration (e.g. PT10S, PT0.5S, PT1M30S, P1D)',
            "bad.yaml:6:18: DurableChannel default/bad: spec.retentionSize: not a size of at least "
            "64Ki (a quantity: 512Mi, 10Gi, 1G)",
            "bad.yaml:7:9: DurableChannel default/bad: spec.sync: must be Fsync (acknowledged once "
            "on disk, the default) or OS (once written to the operating system)",
            "bad.yaml:8:3: DurableChannel default/bad: spec.partitions: unknown field (spec takes "
            "subscribers, delivery, retentionDuration, retentionSize, sync)",
            "bad.yaml:17:27: Channel default/c: spec.channelTemplate.spec.retentionSize: not a size "
            "of at least 64Ki (a quantity: 512Mi, 10Gi, 1G)",
            "cebroker: 5 errors in the configuration"])
        # a state directory that cannot be made: run refuses to start, saying where
        rc, out, err = run_cli("run", "-f", os.path.join(os.path.dirname(__file__), "..", "..",
                                                         "samples", "durable-broker.yaml"),
                               "--listen", "127.0.0.1:0", "--state-dir", "/proc/nowhere")
        self.assertEqual(rc, 2, err)
        self.assertIn("cannot create the directories of /proc/nowhere/durable/default/"
                      "durable-kne-trigger.db", err)


if __name__ == "__main__":
    main()
