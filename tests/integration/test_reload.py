#!/usr/bin/env python3
"""Reload against the real daemon (SIGHUP, run --watch): a new configuration with an error leaves the
running one serving, logs every error as file:line:col and counts the failure; a Trigger added to a
running Broker gets the next event and the others nothing twice; a Trigger removed with 100
deliveries in flight finishes them and is sent nothing new; a Broker removed answers 404 while one
that stays (changed in place, or replaced) never answers anything but 202 and loses nothing; layout
and comments change nothing, and a changed Trigger changes only itself; a Subscription added to a
channel replaces that channel while a Sequence keeps running; --watch sees an edit in place and an
editor's rename over the file."""

import os
import signal
import socket
import threading
import unittest

from cebtest import (Daemon, Subscriber, binary_headers, broker_yaml, main, post, trigger_yaml,
                     wait_for)


class Gate:
    """A subscriber answer that waits until the test opens the gate: its deliveries stay in flight."""

    def __init__(self):
        self.open = threading.Event()

    def __call__(self, req):
        self.open.wait(60)
        return (202, {}, b"")


def ids(sub, path):
    return [r.ce("id") for r in sub.got(path)]


def reloads(d, result):
    return d.metrics().get('cebroker_reload_total{result="%s"}' % result, 0)


def rewrite(d, text):
    """Replace the configuration file as an editor does: write another, rename it over."""
    tmp = d.config + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, d.config)


def reload(d, text, result="success"):
    """Rewrite the configuration, send SIGHUP, wait until the reload is counted."""
    before = reloads(d, result)
    rewrite(d, text)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(d, result) > before, 20, what="a reload counted as " + result)


def send(d, path, id, **ext):
    return d.post(path, binary_headers(id=id, **ext))[0]


class Reload(unittest.TestCase):
    def test_a_configuration_with_errors_keeps_the_running_one_and_says_where(self):
        sub = Subscriber()
        good = broker_yaml() + trigger_yaml("t1", sub.at("/t1"))
        d = Daemon(good)
        try:
            last = d.metrics()["cebroker_reload_last_success_timestamp_seconds"]
            self.assertGreater(last, 0)
            # two errors: a Trigger of a Broker that does not exist, and an unknown field
            bad = (good + trigger_yaml("t2", sub.at("/t2"), broker="nope")
                   + "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: b2\n"
                     "spec:\n  colour: blue\n")
            reload(d, bad, "failure")
            self.assertEqual(reloads(d, "success"), 0)
            log = d.log()
            self.assertRegex(log, r"config\.yaml:\d+:\d+: Trigger default/t2: spec\.broker")
            self.assertRegex(log, r"config\.yaml:\d+:\d+: Broker default/b2: spec\.colour")
            self.assertIn("2 errors in the new configuration; the running configuration stays", log)
            self.assertEqual(d.metrics()["cebroker_reload_last_success_timestamp_seconds"], last)
            # the running configuration still serves, untouched
            self.assertEqual(send(d, "/default/default", "after-bad"), 202)
            sub.wait("/t1", 1)
            self.assertEqual(ids(sub, "/t1"), ["after-bad"])
            self.assertEqual(sub.got("/t2"), [])
            self.assertEqual(send(d, "/default/b2", "x"), 404)
            # and a good one after it applies
            reload(d, good + trigger_yaml("t2", sub.at("/t2")))
            self.assertEqual(send(d, "/default/default", "after-good"), 202)
            sub.wait("/t2", 1)
        finally:
            d.stop()
            sub.close()

    def test_a_trigger_added_gets_the_next_event_and_the_others_no_duplicate(self):
        sub = Subscriber()
        base = broker_yaml() + trigger_yaml("t1", sub.at("/t1"))
        d = Daemon(base)
        try:
            for i in range(5):
                self.assertEqual(send(d, "/default/default", "a%d" % i), 202)
            sub.wait("/t1", 5)
            reload(d, base + trigger_yaml("t2", sub.at("/t2"), filter_attrs={"type": "com.example.test"}))
            wait_for(lambda: d._find(r"reloaded \(configuration \d+\): 0 unchanged, 1 changed in place "
                                      r"\(1 Triggers added, 0 removed\), 0 replaced, 0 removed, 0 added"), 10, what="the reload's log line")
            self.assertEqual(send(d, "/default/default", "next"), 202)
            sub.wait("/t2", 1)
            sub.wait("/t1", 6)
            self.assertEqual(ids(sub, "/t2"), ["next"])
            self.assertEqual(sorted(ids(sub, "/t1")), ["a0", "a1", "a2", "a3", "a4", "next"])
        finally:
            d.stop()
            sub.close()

    def test_a_trigger_removed_with_100_in_flight_finishes_them_and_gets_nothing_new(self):
        sub, gate = Subscriber(), Gate()
        sub.responses["/slow"] = gate
        keep = broker_yaml() + trigger_yaml("fast", sub.at("/fast"))
        d = Daemon(keep + trigger_yaml("slow", sub.at("/slow")), args=["--max-inflight", "100"])
        try:
            for i in range(100):
                self.assertEqual(send(d, "/default/default", "old%d" % i), 202)
            sub.wait("/slow", 100, timeout=30)  # all 100 in flight, none answered
            reload(d, keep)
            for i in range(10):
                self.assertEqual(send(d, "/default/default", "new%d" % i), 202)
            sub.wait("/fast", 110, timeout=30)
            self.assertIsNone(d._find(r"trigger default/slow \(configuration 0\): drained"))
            gate.open.set()
            wait_for(lambda: d._find(r"trigger default/slow \(configuration 0\): drained and removed"), 30,
                     what="the old Broker channel to drain")
            slow = ids(sub, "/slow")
            self.assertEqual(sorted(slow), sorted("old%d" % i for i in range(100)))
            self.assertEqual(sorted(ids(sub, "/fast")),
                             sorted(["old%d" % i for i in range(100)] + ["new%d" % i for i in range(10)]))
            # nothing more for the removed Trigger after the removal completed
            self.assertEqual(send(d, "/default/default", "late"), 202)
            sub.wait("/fast", 111)
            self.assertEqual(len(sub.got("/slow")), 100)
            self.assertNotIn('trigger="slow"', "".join(d.metrics().keys()))
        finally:
            gate.open.set()
            d.stop()
            sub.close()

    def test_a_removed_broker_answers_404_and_one_that_stays_never_fails_nor_loses(self):
        sub = Subscriber()
        stay = broker_yaml("stay") + trigger_yaml("s", sub.at("/s"), broker="stay")
        gone = broker_yaml("gone") + trigger_yaml("g", sub.at("/g"), broker="gone")
        d = Daemon(stay + gone)
        stop, answers, lock = threading.Event(), [], threading.Lock()

        def load(n):
            i = 0
            while not stop.is_set():
                st = post(d.url + "/default/stay", binary_headers(id="l%d-%d" % (n, i)))[0]
                with lock:
                    answers.append(("l%d-%d" % (n, i), st))
                i += 1

        threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        try:
            for t in threads:
                t.start()
            wait_for(lambda: len(answers) > 50, 20, what="load")
            reload(d, stay)
            self.assertEqual(send(d, "/default/gone", "x"), 404)
            reload(d, stay + gone)  # back: a new Broker at the same path
            reload(d, stay + broker_yaml("third") + trigger_yaml("s3", sub.at("/s3"), broker="stay"))
            self.assertEqual(send(d, "/default/gone", "y"), 404)
            self.assertEqual(send(d, "/default/third", "z"), 202)
            # the Broker's own spec changes: its channel is replaced under the load
            reload(d, broker_yaml("stay", delivery="retry: 2")
                   + trigger_yaml("s", sub.at("/s"), broker="stay"))
            wait_for(lambda: d._find(r"reloaded \(configuration 4\): 0 unchanged, 0 changed in "
                                      r"place \(0 Triggers added, 0 removed\), 1 replaced"), 10, what="the reload's log line")
            reload(d, stay)
            n = len(answers)
            wait_for(lambda: len(answers) > n + 50, 20, what="load after the reloads")
            stop.set()
            for t in threads:
                t.join(30)
            bad = [a for a in answers if a[1] != 202]
            self.assertEqual(bad, [], "non-202 answers for the Broker that stays")
            accepted = [i for i, st in answers]
            wait_for(lambda: len(sub.got("/s")) >= len(accepted), 30, what="every event delivered")
            self.assertEqual(sorted(ids(sub, "/s")), sorted(accepted))
        finally:
            stop.set()
            d.stop()
            sub.close()

    def test_only_what_changed_is_replaced_and_layout_or_comments_change_nothing(self):
        sub = Subscriber()
        a = broker_yaml("a") + trigger_yaml("ta", sub.at("/ta"), broker="a")
        b = broker_yaml("b") + trigger_yaml("tb", sub.at("/tb"), broker="b")
        d = Daemon(a + b)
        try:
            # the same resources: keys in another order, a comment, flow style, quotes
            same = ("# the same Broker a\nkind: Broker\napiVersion: eventing.knative.dev/v1\n"
                    "metadata: {namespace: default, name: \"a\"}\n---\n"
                    + trigger_yaml("ta", sub.at("/ta"), broker="a") + b)
            reload(d, same)
            wait_for(lambda: d._find(r"reloaded \(configuration 1\): 2 unchanged, 0 changed in place "
                                      r"\(0 Triggers added, 0 removed\), 0 replaced, "
                                      r"0 removed, 0 added"), 10, what="the reload's log line")
            # a Trigger's filter changes: that Trigger only, on its running Broker
            reload(d, a + broker_yaml("b") + trigger_yaml("tb", sub.at("/tb"), broker="b",
                                                          filter_attrs={"type": "only.this"}))
            wait_for(lambda: d._find(r"reloaded \(configuration 2\): 1 unchanged, 1 changed in place "
                                      r"\(1 Triggers added, 1 removed\), 0 replaced, "
                                      r"0 removed, 0 added"), 10, what="the reload's log line")
            self.assertEqual(send(d, "/default/b", "b1"), 202)
            self.assertEqual(send(d, "/default/b", "b2", type="only.this"), 202)
            self.assertEqual(send(d, "/default/a", "a1"), 202)
            sub.wait("/tb", 1)
            sub.wait("/ta", 1)
            self.assertEqual(ids(sub, "/tb"), ["b2"])
        finally:
            d.stop()
            sub.close()

    def test_a_subscription_added_to_a_channel_gets_the_next_event_and_a_sequence_keeps_running(self):
        sub = Subscriber()
        imc = ("apiVersion: messaging.knative.dev/v1\nkind: InMemoryChannel\n"
               "metadata: {name: ch}\n---\n")

        def subscription(name):
            return ("apiVersion: messaging.knative.dev/v1\nkind: Subscription\n"
                    "metadata: {name: %s}\nspec:\n  channel: {apiVersion: messaging.knative.dev/v1, "
                    "kind: InMemoryChannel, name: ch}\n  subscriber: {uri: %s}\n---\n"
                    % (name, sub.at("/" + name)))
        seq = ("apiVersion: flows.knative.dev/v1\nkind: Sequence\nmetadata: {name: seq}\nspec:\n"
               "  steps:\n  - uri: %s\n" % sub.at("/step"))
        d = Daemon(imc + subscription("s1") + seq)
        try:
            self.assertEqual(send(d, "/default/ch", "c1"), 202)
            self.assertEqual(send(d, "/default/seq", "q1"), 202)
            sub.wait("/s1", 1)
            sub.wait("/step", 1)
            reload(d, imc + subscription("s1") + subscription("s2") + seq)
            wait_for(lambda: d._find(r"reloaded \(configuration 1\): \d+ unchanged, 0 changed in "
                                     r"place \(0 Triggers added, 0 removed\), 1 replaced, 0 removed"),
                     10, what="the reload's log line")
            self.assertEqual(send(d, "/default/ch", "c2"), 202)
            self.assertEqual(send(d, "/default/seq", "q2"), 202)
            sub.wait("/s2", 1)
            sub.wait("/s1", 2)
            sub.wait("/step", 2)
            self.assertEqual(ids(sub, "/s2"), ["c2"])
            self.assertEqual(sorted(ids(sub, "/s1")), ["c1", "c2"])
            self.assertEqual(sorted(ids(sub, "/step")), ["q1", "q2"])
        finally:
            d.stop()
            sub.close()

    def test_a_request_stalled_in_its_body_holds_no_reload_up_and_is_answered_after(self):
        sub = Subscriber()
        base = broker_yaml() + trigger_yaml("t1", sub.at("/t1"))
        d = Daemon(base, args=["--request-timeout", "0"])
        body = b"0123456789" * 10
        s = socket.create_connection(("127.0.0.1", d.port))
        try:
            head = ("POST /default/default HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\n"
                    "ce-id: stalled\r\nce-type: t\r\nce-source: /s\r\n"
                    "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body))
            s.sendall(head.encode() + body[:10])
            # the Broker's Triggers change while the request waits for the rest of its body
            reload(d, base + trigger_yaml("t2", sub.at("/t2")))
            reload(d, broker_yaml(delivery="retry: 1") + trigger_yaml("t2", sub.at("/t2")))
            s.sendall(body[10:])
            s.settimeout(10)
            self.assertIn(b"HTTP/1.1 202", s.recv(4096))
            sub.wait("/t2", 1)
            self.assertEqual(ids(sub, "/t2"), ["stalled"])
        finally:
            s.close()
            d.stop()
            sub.close()

    def test_watch_reloads_on_an_edit_in_place_and_on_a_rename_over_the_file(self):
        sub = Subscriber()
        base = broker_yaml() + trigger_yaml("t1", sub.at("/t1"))
        d = Daemon(base, args=["--watch"])
        try:
            with open(d.config, "a") as f:  # in place
                f.write(trigger_yaml("t2", sub.at("/t2")))
            wait_for(lambda: reloads(d, "success") == 1, 20, what="the edit to reload")
            self.assertEqual(send(d, "/default/default", "e1"), 202)
            sub.wait("/t2", 1)
            rewrite(d, base + trigger_yaml("t3", sub.at("/t3")))  # rename over
            wait_for(lambda: reloads(d, "success") == 2, 20, what="the rename to reload")
            self.assertEqual(send(d, "/default/default", "e2"), 202)
            sub.wait("/t3", 1)
            self.assertEqual(ids(sub, "/t2"), ["e1"])
            self.assertIn("the configuration files changed: reloading", d.log())
            # a file of another name in the directory is no change
            with open(os.path.join(os.path.dirname(d.config), "notes.txt"), "w") as f:
                f.write("x")
            self.assertEqual(reloads(d, "success"), 2)
        finally:
            d.stop()
            sub.close()


if __name__ == "__main__":
    main()
