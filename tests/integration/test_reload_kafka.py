#!/usr/bin/env python3
"""Reload with a Kafka Broker on librdkafka's mock cluster (its own process): a Kafka Broker whose
spec and Triggers did not change keeps its consumers (their positions and connections) across a
reload that changes other resources, deliveries in flight through the reload finish, and no event
comes twice; a Kafka Broker given one more Trigger is replaced, and the Trigger it had resumes at
its committed position: nothing delivered before comes again."""

import os
import signal
import threading
import time
import unittest

from cebtest import (Daemon, KafkaMock, Subscriber, binary_headers, broker_yaml, kafka_broker_yaml,
                     main, trigger_yaml, wait_for)


class Gate:
    def __init__(self):
        self.open = threading.Event()

    def __call__(self, req):
        self.open.wait(60)
        return (202, {}, b"")


def ids(sub, path):
    return [r.ce("id") for r in sub.got(path)]


def reloads(d):
    return d.metrics().get('cebroker_reload_total{result="success"}', 0)


def reload(d, text):
    before = reloads(d)
    with open(d.config + ".tmp", "w") as f:
        f.write(text)
    os.replace(d.config + ".tmp", d.config)
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: reloads(d) > before, 30, what="the reload")


class ReloadKafka(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kafka = KafkaMock(brokers=1)

    @classmethod
    def tearDownClass(cls):
        cls.kafka.close()

    def post(self, d, path, id):
        self.assertEqual(d.post(path, binary_headers(id=id))[0], 202)

    def test_an_unchanged_kafka_trigger_keeps_its_consumer_and_gets_no_duplicate(self):
        sub, gate = Subscriber(), Gate()
        sub.responses["/held"] = gate
        k = (kafka_broker_yaml(self.kafka.bootstrap, name="k1")
             + trigger_yaml("kt", sub.at("/kt"), broker="k1")
             + trigger_yaml("held", sub.at("/held"), broker="k1",
                            filter_attrs={"type": "com.example.held"}))
        m = broker_yaml("m") + trigger_yaml("mt", sub.at("/mt"), broker="m")
        d = Daemon(k + m)
        try:
            for i in range(20):
                self.post(d, "/default/k1", "a%d" % i)
            self.assertEqual(d.post("/default/k1", binary_headers(id="h0", type="com.example.held"))[0], 202)
            sub.wait("/kt", 21, timeout=30)
            sub.wait("/held", 1, timeout=30)  # in flight across the reload
            reload(d, k + m + trigger_yaml("mt2", sub.at("/mt2"), broker="m") + broker_yaml("m2"))
            wait_for(lambda: d._find(r"reloaded \(configuration \d+\): 1 unchanged, 1 changed in place "
                             r"\(1 Triggers added, 0 removed\), 0 replaced, 0 removed, 1 added"), 10, what="the reload's log line")
            for i in range(20):
                self.post(d, "/default/k1", "b%d" % i)
            self.post(d, "/default/m", "m0")
            sub.wait("/mt2", 1)
            sub.wait("/kt", 41, timeout=30)
            gate.open.set()
            time.sleep(1)  # what would come twice comes now
            got = ids(sub, "/kt")
            self.assertEqual(len(got), len(set(got)), "a duplicate after the reload")
            self.assertEqual(sorted(got), sorted(["a%d" % i for i in range(20)] + ["h0"]
                                                 + ["b%d" % i for i in range(20)]))
            self.assertEqual(ids(sub, "/held"), ["h0"])
            self.assertEqual(ids(sub, "/mt2"), ["m0"])
            # the same consumer all along: assigned its partitions once, never again
            self.assertEqual(d.log().count("[trigger default/kt] assigned"), 1, d.log())
        finally:
            gate.open.set()
            d.stop()
            sub.close()

    def test_a_kafka_broker_given_one_more_trigger_resumes_the_old_trigger_where_it_was(self):
        sub = Subscriber()
        k = kafka_broker_yaml(self.kafka.bootstrap, name="k2") + trigger_yaml("kt", sub.at("/kt"), broker="k2")
        d = Daemon(k)
        try:
            for i in range(20):
                self.post(d, "/default/k2", "a%d" % i)
            sub.wait("/kt", 20, timeout=30)
            time.sleep(1)  # the offsets committed
            reload(d, k + trigger_yaml("kt2", sub.at("/kt2"), broker="k2"))
            wait_for(lambda: d._find(r"reloaded \(configuration \d+\): 0 unchanged, 0 changed in place "
                             r"\(0 Triggers added, 0 removed\), 1 replaced"), 10, what="the reload's log line")
            for i in range(20):
                self.post(d, "/default/k2", "b%d" % i)
            sub.wait("/kt", 40, timeout=30)
            sub.wait("/kt2", 20, timeout=30)
            time.sleep(1)
            got = ids(sub, "/kt")
            self.assertEqual(sorted(got), sorted(["a%d" % i for i in range(20)]
                                                 + ["b%d" % i for i in range(20)]))
            self.assertEqual(sorted(ids(sub, "/kt2")), sorted("b%d" % i for i in range(20)))
        finally:
            d.stop()
            sub.close()


if __name__ == "__main__":
    main()
