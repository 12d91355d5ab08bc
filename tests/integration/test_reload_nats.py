#!/usr/bin/env python3
"""Reload with a NatsJetStreamBroker on a real nats-server -js (started once here, on loopback, with a
temporary store): a Broker given one more Trigger is replaced (its channel cannot add a subscription
while it runs) under steady load: the Broker answers 202 to every request through the reload, the
Trigger it had gets every accepted event (at least once: what its old consumer held unsettled at the
switch may come again), and the new Trigger gets what is posted after."""

import os
import signal
import threading
import unittest

from cebtest import (Daemon, NatsServer, Subscriber, binary_headers, main, nats_broker_yaml, post,
                     trigger_yaml, wait_for)

NATS = None


def setUpModule():
    global NATS
    NATS = NatsServer()


def tearDownModule():
    NATS.close()


def reloads(d):
    return d.metrics().get('cebroker_reload_total{result="success"}', 0)


class ReloadNats(unittest.TestCase):
    def test_a_replaced_nats_broker_answers_202_throughout_and_loses_nothing(self):
        sub = Subscriber()
        base = nats_broker_yaml(NATS.url, name="n1") + trigger_yaml("t1", sub.at("/t1"), broker="n1")
        d = Daemon(base)
        stop, answers, lock = threading.Event(), [], threading.Lock()

        def load(n):
            i = 0
            while not stop.is_set():
                id = "l%d-%d" % (n, i)
                st = post(d.url + "/default/n1", binary_headers(id=id))[0]
                with lock:
                    answers.append((id, st))
                i += 1

        threads = [threading.Thread(target=load, args=(n,)) for n in range(2)]
        try:
            for t in threads:
                t.start()
            wait_for(lambda: len(answers) > 30, 20, what="load")
            with open(d.config + ".tmp", "w") as f:
                f.write(base + trigger_yaml("t2", sub.at("/t2"), broker="n1"))
            os.replace(d.config + ".tmp", d.config)
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: reloads(d) == 1, 30, what="the reload")
            wait_for(lambda: d._find(r"reloaded \(configuration 1\): 0 unchanged, 0 changed in place "
                                     r"\(0 Triggers added, 0 removed\), 1 replaced"), 10,
                     what="the reload's log line")
            n = len(answers)
            wait_for(lambda: len(answers) > n + 30, 20, what="load after the reload")
            stop.set()
            for t in threads:
                t.join(30)
            self.assertEqual([a for a in answers if a[1] != 202], [], "non-202 answers")
            accepted = set(i for i, st in answers)
            wait_for(lambda: accepted <= set(r.ce("id") for r in sub.got("/t1")), 30,
                     what="every accepted event at the Trigger that stayed")
            after = [i for i, st in answers[n:]]
            wait_for(lambda: set(after) <= set(r.ce("id") for r in sub.got("/t2")), 30,
                     what="what was posted after the reload at the new Trigger")
            wait_for(lambda: d._find(r"broker default/n1 \(configuration 0\): drained and removed"),
                     30, what="the old channel gone")
        finally:
            stop.set()
            d.stop()
            sub.close()

    def test_a_trigger_removed_and_added_again_starts_anew(self):
        # As in Knative, where a re-created Trigger is a new one: it does not get what was
        # posted while it did not exist (its old consumer would have kept those).
        sub = Subscriber()
        base = nats_broker_yaml(NATS.url, name="n2") + trigger_yaml("keep", sub.at("/keep"),
                                                                    broker="n2")
        with_t = base + trigger_yaml("again", sub.at("/again"), broker="n2")
        d = Daemon(with_t)

        def reload_to(cfg, n):
            with open(d.config + ".tmp", "w") as f:
                f.write(cfg)
            os.replace(d.config + ".tmp", d.config)
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: reloads(d) == n, 30, what="reload %d" % n)

        def ids(path):
            return [r.ce("id") for r in sub.got(path)]
        try:
            self.assertEqual(d.post("/default/n2", binary_headers(id="e1"))[0], 202)
            wait_for(lambda: "e1" in ids("/again"), 20, what="e1 at the Trigger")
            reload_to(base, 1)
            wait_for(lambda: d._find(r"deleted consumer KN_TRIGGER_DEFAULT__AGAIN of stream "
                                     r"KN_BROKER_DEFAULT__N2"), 20, what="its consumer deleted")
            self.assertEqual(d.post("/default/n2", binary_headers(id="e2"))[0], 202)
            wait_for(lambda: "e2" in ids("/keep"), 20, what="e2 at the Trigger that stayed")
            reload_to(with_t, 2)
            self.assertEqual(d.post("/default/n2", binary_headers(id="e3"))[0], 202)
            wait_for(lambda: "e3" in ids("/again") and "e3" in ids("/keep"), 20,
                     what="e3 at both")
            self.assertNotIn("e2", ids("/again"), "posted while the Trigger did not exist")
            # a restart keeps the Trigger's place: the consumer is not swept while it is there
            self.assertEqual(d.post("/default/n2", binary_headers(id="e4"))[0], 202)
            wait_for(lambda: "e4" in ids("/again"), 20, what="e4")
            self.assertFalse(d._find(r"deleted consumer KN_TRIGGER_DEFAULT__KEEP"))
        finally:
            d.stop()
            sub.close()


if __name__ == "__main__":
    main()
