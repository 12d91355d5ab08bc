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


if __name__ == "__main__":
    main()
