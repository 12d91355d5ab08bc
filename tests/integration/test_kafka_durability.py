"""Durability of a Kafka Broker on librdkafka's mock cluster (its own process, so that it outlives
cebroker): events posted at full speed while cebroker is killed with SIGKILL at random moments and
restarted each time, then every mock broker down at once. Every event that got a 202 must be
delivered at least once; duplicates are counted and printed, never an error. A 202 while Kafka is
down is an error, and so is a 503 that comes later than the confirm timeout."""

import http.client
import os
import random
import signal
import sys
import threading
import time
import unittest

from cebtest import Daemon, KafkaMock, Subscriber, kafka_broker_yaml, main, trigger_yaml, wait_for

EVENTS = int(os.environ.get("CEB_KAFKA_EVENTS", "20000"))
KILLS = int(os.environ.get("CEB_KAFKA_KILLS", "10"))
SENDERS = 8
CONFIRM_MS = 2000
SLACK = 1.5  # seconds an answer may come after the confirm timeout on a busy machine


class Senders:
    """SENDERS threads posting ids in binary mode on keep-alive connections to whatever daemon is
    current, as fast as answers come. An id is retried until it gets a 202 (or `tries` answers
    that were not 202): what counts is the set of ids that got one."""

    def __init__(self, url_fn, ids, tries=50, record=None):
        self.url_fn = url_fn
        self.ids = list(ids)
        self.tries = tries
        self.record = record
        self.lock = threading.Lock()
        self.acked = set()
        self.statuses = {}
        self.stop = False
        self.threads = [threading.Thread(target=self.run, args=(self.ids[i::SENDERS],), daemon=True)
                        for i in range(SENDERS)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def run(self, ids):
        conn, url = None, None
        for id in ids:
            for _ in range(self.tries):
                if self.stop:
                    return
                try:
                    if conn is None or url != self.url_fn():
                        url = self.url_fn()
                        host, port = url.split("//")[1].split(":")
                        conn = http.client.HTTPConnection(host, int(port), timeout=10)
                    t0 = time.monotonic()
                    conn.request("POST", "/default/default", body=b"payload-" + id.encode(), headers={
                        "ce-specversion": "1.0", "ce-id": id, "ce-type": "durable",
                        "ce-source": "/durability", "ce-partitionkey": id[-2:],
                        "Content-Type": "text/plain"})
                    r = conn.getresponse()
                    r.read()
                    st = r.status
                    if self.record:
                        self.record(st, t0, time.monotonic())
                except (OSError, http.client.HTTPException):
                    st = "conn"
                    if conn is not None:
                        conn.close()
                    conn = None
                    time.sleep(0.05)
                with self.lock:
                    self.statuses[st] = self.statuses.get(st, 0) + 1
                    if st == 202:
                        self.acked.add(id)
                if st == 202:
                    break
                if st != "conn":
                    time.sleep(0.02)
        if conn is not None:
            conn.close()


def delivered_ids(sub):
    return [r.ce("id") for r in sub.got("/durable")]


class KafkaDurability(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kafka = KafkaMock()

    @classmethod
    def tearDownClass(cls):
        cls.kafka.close()

    def config(self, sub):
        cfg = kafka_broker_yaml(self.kafka.bootstrap, config={
            "cebroker.confirm.timeout.ms": str(CONFIRM_MS),
            # a killed daemon's consumer leaves the group after this: its successor gets the
            # partitions back sooner
            "librdkafka.session.timeout.ms": "6000",
            "librdkafka.heartbeat.interval.ms": "500"})
        cfg += trigger_yaml("durable", sub.at("/durable"),
                            delivery="retry: 10\nbackoffPolicy: linear\nbackoffDelay: PT0.2S")
        return cfg

    def test_1_no_event_that_got_a_202_is_lost_across_sigkills(self):
        sub = Subscriber()
        rng = random.Random(os.environ.get("CEB_SEED") or time.time())
        state = {"d": Daemon(self.config(sub), log_level="info")}
        kills = 0
        try:
            ids = ["ev-%05d" % i for i in range(EVENTS)]
            # The moments: when so many events were acknowledged, drawn at random.
            moments = sorted(rng.sample(range(EVENTS // 20, EVENTS - EVENTS // 20), KILLS))
            t0 = time.monotonic()
            senders = Senders(lambda: state["d"].url, ids, tries=400).start()
            for at in moments:
                wait_for(lambda: len(senders.acked) >= at or not any(
                    t.is_alive() for t in senders.threads), 120, what="%d acknowledged" % at)
                state["d"].stop(signal.SIGKILL, check=False)
                kills += 1
                state["d"] = Daemon(self.config(sub), log_level="info")
            self.assertTrue(senders.join(240), "senders did not finish")
            posted = time.monotonic() - t0
            acked = senders.acked
            self.assertGreater(len(acked), EVENTS * 0.9, senders.statuses)
            wait_for(lambda: acked <= set(delivered_ids(sub)), 150, interval=0.5,
                     what="every acknowledged event delivered (%d missing)" % len(
                         acked - set(delivered_ids(sub))))
            got = delivered_ids(sub)
            lost = acked - set(got)
            dups = len(got) - len(set(got))
            print("\n  %d events, %d acknowledged (202) in %.1fs with %d SIGKILLs; answers %s; "
                  "all delivered %.1fs later: %d deliveries, %d unique, %d lost, %d duplicates" % (
                      EVENTS, len(acked), posted, kills, senders.statuses,
                      time.monotonic() - t0 - posted, len(got), len(set(got)), len(lost), dups),
                  file=sys.stderr)
            self.assertEqual(kills, KILLS)
            self.assertEqual(lost, set())
            state["d"].stop()
        finally:
            if state["d"].proc.poll() is None:
                state["d"].stop(signal.SIGKILL, check=False)
            sub.close()

    def test_2_every_broker_down_gives_503_in_time_never_202_and_nothing_is_lost(self):
        sub = Subscriber()
        d = Daemon(self.config(sub), log_level="info")
        answers = []
        lock = threading.Lock()
        phase = {"down": False}

        def record(st, t0, t1):
            with lock:
                answers.append((phase["down"], st, t1 - t0, t0))

        try:
            before = Senders(lambda: d.url, ["pre-%03d" % i for i in range(200)]).start()
            self.assertTrue(before.join(60))
            self.kafka.cmd("down all")
            phase["down"] = True
            t_down = time.monotonic()
            during = Senders(lambda: d.url, ["out-%04d" % i for i in range(5000)], tries=1,
                             record=record).start()
            time.sleep(10)
            phase["down"] = False
            during.stop = True
            self.assertTrue(during.join(CONFIRM_MS / 1000 + 10))
            self.kafka.cmd("up all")
            t_up = time.monotonic()
            out = [a for a in answers if a[0] and a[3] >= t_down]
            self.assertGreater(len(out), 0)
            self.assertEqual([a for a in out if a[1] == 202], [], "202 while every broker was down")
            self.assertEqual(set(a[1] for a in out) - {503, 429}, set())
            slowest = max(a[2] for a in out)
            self.assertLessEqual(slowest, CONFIRM_MS / 1000 + SLACK,
                                 "a 503 came %.2fs after the request" % slowest)
            after = Senders(lambda: d.url, ["post-%03d" % i for i in range(200)]).start()
            self.assertTrue(after.join(120))
            acked = before.acked | during.acked | after.acked
            self.assertEqual(len(after.acked), 200)
            wait_for(lambda: acked <= set(delivered_ids(sub)), 90, interval=0.5,
                     what="every acknowledged event delivered after the outage")
            print("\n  outage: %d answers while down, all 503/429, slowest %.2fs; recovered %.1fs "
                  "after up; %d acknowledged, 0 lost" % (len(out), slowest,
                                                        time.monotonic() - t_up, len(acked)),
                  file=sys.stderr)
            d.stop()
        finally:
            if d.proc.poll() is None:
                d.stop(signal.SIGKILL, check=False)
            sub.close()


if __name__ == "__main__":
    main()
