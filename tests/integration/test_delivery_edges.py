"""Delivery edges a user hits (issue 20, items 2, 9, 10, 11): one attempt is at most one POST that
reached the subscriber, and /metrics counts the requests made; a password in a subscriber URL never
leaves the daemon; the counters and log lines say what happened (rate limit apart from a full
channel, retries made, each delivery counted once at drain, a bad reply's status in the dead letter,
a reply the Broker could not store); a CloudEvent in any 2xx answer but 202 is a reply."""

import base64
import os
import re
import subprocess
import tempfile
import time
import unittest

from cebtest import (CEBROKER, Daemon, RawServer, Subscriber, binary_headers, broker_yaml, main,
                     trigger_counter, trigger_yaml, wait_for)


class KeepAliveServer(RawServer):
    """A raw HTTP/1.1 subscriber that keeps connections alive and misbehaves by event id:
    `drop` ids are read whole and their connection closed without an answer; `close-after` ids are
    answered 202 and their connection then closed (no `Connection: close`, as a server whose idle
    timeout struck); `cut` ids get a 200 whose body stops short before the connection closes. Every
    other id is answered 202. Records (connection number, ce-id, body) for each request read."""

    def __init__(self):
        super().__init__()
        self.closed = 0
        self.url = "http://127.0.0.1:%d/raw" % self.port

    def serve(self, c, n):
        buf = b""
        try:
            while True:
                req, buf = self.read_request(c, buf)
                if req is None:
                    return
                _, headers, body = req
                id = headers.get("ce-id", "")
                with self.lock:
                    self.requests.append((n, id, body))
                if id.startswith("drop"):
                    return
                if id.startswith("cut"):
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                              b"Content-Length: 100\r\n\r\n0123456789")
                    return
                c.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                if id.startswith("close-after"):
                    return
        except OSError:
            pass
        finally:
            c.close()
            with self.lock:
                self.closed += 1

    def got(self, id):
        with self.lock:
            return [r for r in self.requests if r[1] == id]


counter = trigger_counter


def reply(status, type, id):
    return (status, {"ce-specversion": "1.0", "ce-id": id, "ce-type": type, "ce-source": "/replier",
                     "Content-Type": "application/json"}, b'{"ok":true}')


class OnePostPerAttempt(unittest.TestCase):
    """Item 2. One delivery thread, so that the second event reuses the first one's connection."""

    @classmethod
    def setUpClass(cls):
        s = cls.sub = Subscriber()
        cls.raw = {name: KeepAliveServer() for name in ("drop", "dropempty", "stale")}
        cfg = broker_yaml()
        for name, raw in cls.raw.items():
            cfg += trigger_yaml(name, raw.url, filter_attrs={"type": name},
                                delivery="retry: 0\ndeadLetterSink:\n  uri: %s\n" % s.at("/dls"))
        cls.d = Daemon(cfg, args=["--dispatchers", "1"])

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        for raw in cls.raw.values():
            raw.close()

    def send(self, type, id, data=b'{"n":1}'):
        h = binary_headers(id=id, type=type)
        if data:
            h["Content-Type"] = "application/json"
        st, _, body = self.d.post("/default/default", h, data)
        self.assertEqual(st, 202, body)

    def dls(self, id):
        return wait_for(lambda: [r for r in self.sub.got("/dls") if r.ce("id") == id], 10,
                        what="dead letter of " + id)

    def drop_after_keepalive(self, type, data):
        raw = self.raw[type]
        self.send(type, "first-" + type, data)
        wait_for(lambda: counter(self.d, "delivered", type) == 1, 10, what="first delivery")
        self.send(type, "drop-" + type, data)
        d = self.dls("drop-" + type)[0]
        # The dead letter comes after the attempt ended: any second POST of it came before.
        got = raw.got("drop-" + type)
        self.assertEqual(len(got), 1, "the subscriber got the event %d times" % len(got))
        self.assertEqual(got[0][0], raw.got("first-" + type)[0][0], "sent on the kept-alive connection")
        self.assertIsNone(d.ce("knativeerrorcode"))
        # Two requests reached the subscriber, one the dead-letter sink. The sink may have the
        # dead letter before the daemon has taken that transfer's end: wait for the counters.
        wait_for(lambda: counter(self.d, "dead_lettered", type) == 1, 10, what="the dead letter counted")
        wait_for(lambda: counter(self.d, "requests", type) >= 3, 10, what="three requests counted")
        self.assertEqual(counter(self.d, "requests", type), 3)
        self.assertEqual(counter(self.d, "attempts", type), 3)
        self.assertEqual(counter(self.d, "retries", type), 0)
        self.assertEqual(counter(self.d, "dead_lettered", type), 1)

    def test_a_dropped_kept_alive_connection_does_not_get_the_event_again(self):
        self.drop_after_keepalive("drop", b'{"n":1}')

    def test_an_event_without_data_is_not_sent_again_either(self):
        self.drop_after_keepalive("dropempty", b"")

    def test_a_pooled_connection_the_subscriber_closed_is_replaced_before_sending(self):
        raw = self.raw["stale"]
        self.send("stale", "close-after-1")
        wait_for(lambda: raw.closed == 1, 10, what="the subscriber closing its connection")
        self.send("stale", "second")
        wait_for(lambda: counter(self.d, "delivered", "stale") == 2, 10, what="both delivered")
        self.assertEqual(len(raw.got("second")), 1)
        self.assertEqual(raw.conns, 2)
        self.assertEqual(counter(self.d, "requests", "stale"), 2)
        self.assertEqual(counter(self.d, "attempts", "stale"), 2)
        self.assertFalse([r for r in self.sub.got("/dls") if r.ce("id") == "second"])


class Redaction(unittest.TestCase):
    """Item 9: the userinfo of a subscriber URL is used to authenticate, and shown nowhere."""

    def test_a_password_in_a_subscriber_url_never_leaves_the_daemon(self):
        s = Subscriber()
        port = s.port
        secret = "http://alice:s3cr3t-pw@127.0.0.1:%d/hook" % port
        s.responses["/hook"] = [(503, {}, b"busy")]
        cfg = broker_yaml() + trigger_yaml(
            "private", secret, delivery="retry: 1\nbackoffDelay: PT0.05S\n"
            "deadLetterSink:\n  uri: http://bob:dl-pw@127.0.0.1:%d/dls\n" % port)
        cfg += trigger_yaml("private-dls-fails", secret, filter_attrs={"type": "x"},
                            delivery="retry: 0\ndeadLetterSink:\n  uri: http://bob:dl-pw@127.0.0.1:1/dls\n")
        d = Daemon(cfg)
        try:
            st, _, _ = d.post("/default/default", binary_headers(id="p-1"), b"x")
            self.assertEqual(st, 202)
            dl = s.wait("/dls", 1)[0]
            st, _, _ = d.post("/default/default", binary_headers(id="p-2", type="x"), b"x")
            self.assertEqual(st, 202)
            wait_for(lambda: "dead-letter sink" in d.log() and "failed too" in d.log(), 10,
                     what="the dead-letter sink failing")
            metrics = d.post("/metrics", {}, b"", "GET")[2].decode()
        finally:
            d.stop()
            s.close()
        # The credentials still reach the subscriber, as Basic authentication.
        auth = s.got("/hook")[0].headers.get("authorization", "")
        self.assertEqual(base64.b64decode(auth.split()[1]), b"alice:s3cr3t-pw")
        self.assertEqual(dl.ce("knativeerrordest"), "http://***@127.0.0.1:%d/hook" % port)
        log = d.log()
        self.assertIn("event p-1: HTTP 503 after 2 attempt(s) to http://***@127.0.0.1:%d/hook; "
                      "sending to the dead-letter sink" % port, log)
        self.assertIn("attempt 1 to http://***@127.0.0.1:%d/hook failed (HTTP 503)" % port, log)
        self.assertIn("dead-letter sink http://***@127.0.0.1:1/dls failed too", log)
        for text in (log, metrics, str(dl.headers)):
            for word in ("s3cr3t", "alice", "dl-pw", "bob:"):
                self.assertNotIn(word, text)

    def test_a_configuration_error_does_not_show_the_password(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "c.yaml")
            with open(path, "w") as f:
                f.write(broker_yaml() + trigger_yaml("t", "http://alice:s3cr3t@127.0.0.1:99999/x"))
            out = subprocess.run([CEBROKER, "validate", "-f", path], capture_output=True)
        self.assertEqual(out.returncode, 1)
        text = (out.stdout + out.stderr).decode()
        self.assertIn("invalid port", text)
        self.assertIn("***@127.0.0.1:99999", text)
        self.assertNotIn("s3cr3t", text)


class TruthfulCounters(unittest.TestCase):
    """Item 10, the parts that share one daemon."""

    @classmethod
    def setUpClass(cls):
        s = cls.sub = Subscriber()
        cls.raw = KeepAliveServer()
        dls = "deadLetterSink:\n  uri: %s\n" % s.at("/dls")
        cfg = broker_yaml()
        cfg += trigger_yaml("slow-retry", s.at("/slow-retry"), filter_attrs={"type": "slow-retry"},
                            delivery="retry: 3\nbackoffDelay: PT1H\n" + dls)
        cfg += trigger_yaml("fast-retry", s.at("/fast-retry"), filter_attrs={"type": "fast-retry"},
                            delivery="retry: 2\nbackoffPolicy: linear\nbackoffDelay: PT0.05S\n" + dls)
        cfg += trigger_yaml("bigreply", s.at("/bigreply"), filter_attrs={"type": "bigreply"},
                            delivery="retry: 0\n" + dls)
        cfg += trigger_yaml("cutreply", cls.raw.url, filter_attrs={"type": "cutreply"},
                            delivery="retry: 0\n" + dls)
        cfg += trigger_yaml("notce", s.at("/notce"), filter_attrs={"type": "notce"},
                            delivery="retry: 0\n" + dls)
        s.responses["/slow-retry"] = [(503, {}, b"")]
        s.responses["/fast-retry"] = [(500, {}, b"")]
        s.responses["/bigreply"] = [(200, {"Content-Type": "text/plain"}, b"x" * 5000)]
        s.responses["/notce"] = [(200, {"Content-Type": "text/plain"}, b"hello")]
        cls.d = Daemon(cfg, args=["--rate-limit", "1", "--max-event-size", "2048",
                                  "--drain-timeout", "300"])

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        cls.raw.close()

    def send(self, type, id):
        st, _, body = self.d.post("/default/default", binary_headers(id=id, type=type), b"{}")
        return st

    def dls(self, id):
        return wait_for(lambda: [r for r in self.sub.got("/dls") if r.ce("id") == id], 10,
                        what="dead letter of " + id)[0]

    def broker_counter(self, name):
        return self.d.metrics().get('cebroker_%s_total{namespace="default",broker="default"}' % name, 0)

    # Runs first (unittest sorts by name), while the rate limiter's bucket is full; the other tests
    # post again while they are refused.
    def test_0_rate_limited_requests_have_their_own_counter(self):
        answers = [self.send("nothing", "rl-%d" % i) for i in range(10)]
        self.assertIn(429, answers)
        self.assertEqual(self.broker_counter("rejected_rate_limited"), answers.count(429))
        self.assertEqual(self.broker_counter("rejected_full"), 0)

    def test_retries_count_retries_made_not_scheduled(self):
        while self.send("slow-retry", "sr-1") == 429:
            time.sleep(0.5)
        wait_for(lambda: re.search(r"attempt 1 to \S+/slow-retry failed \(HTTP 503\), retrying",
                                   self.d.log()), 10, what="the first attempt failing")
        self.assertEqual(counter(self.d, "attempts", "slow-retry"), 1)
        self.assertEqual(counter(self.d, "retries", "slow-retry"), 0, "the retry waits an hour")
        while self.send("fast-retry", "fr-1") == 429:
            time.sleep(0.5)
        self.dls("fr-1")
        self.assertEqual(len(self.sub.got("/fast-retry")), 3)
        self.assertEqual(counter(self.d, "retries", "fast-retry"), 2)

    def assertBadReply(self, type, id, why):
        while self.send(type, id) == 429:
            time.sleep(0.5)
        d = self.dls(id)
        self.assertEqual(d.ce("knativeerrorcode"), "502")
        m = wait_for(lambda: re.search(r"event %s: (.*) after 1 attempt\(s\)" % id, self.d.log()), 5,
                     what="the failure logged")
        self.assertIn(why, m.group(1))

    def test_an_oversized_reply_to_a_200_is_dead_lettered_with_a_status(self):
        self.assertBadReply("bigreply", "br-1", "reply over 2048 bytes")

    def test_a_200_cut_short_is_dead_lettered_with_a_status(self):
        self.assertBadReply("cutreply", "cut-1", "answer cut short")

    def test_a_200_body_that_is_not_an_event_is_dead_lettered_with_a_status(self):
        self.assertBadReply("notce", "n-1", "reply is not a CloudEvent")


class ReplyNotStored(unittest.TestCase):
    """Item 10: a reply refused by the Broker's own full channel is not the subscriber's 429."""

    def test_a_reply_the_full_channel_refused_is_logged_as_such(self):
        s = Subscriber()
        s.responses["/ask"] = [reply(200, "answer", "a-1")]
        cfg = broker_yaml() + trigger_yaml(
            "ask", s.at("/ask"), filter_attrs={"type": "question"},
            delivery="retry: 0\ndeadLetterSink:\n  uri: %s\n" % s.at("/dls"))
        d = Daemon(cfg, args=["--channel-max-events", "1"])
        try:
            st, _, _ = d.post("/default/default", binary_headers(id="q-1", type="question"), b"{}")
            self.assertEqual(st, 202)
            dl = s.wait("/dls", 1)[0]
            line = wait_for(lambda: d._find(r"event q-1: .*"), 5, what="the failure logged").group(0)
        finally:
            d.stop()
            s.close()
        self.assertEqual(dl.ce("knativeerrorcode"), "429")
        self.assertNotIn("HTTP 429", d.log())
        self.assertIn("reply not stored", line)
        self.assertIn("full", line)


class DrainWarning(unittest.TestCase):
    """Item 10: a delivery still in flight at exit is counted once."""

    def test_an_unfinished_delivery_is_counted_once_at_exit(self):
        s = Subscriber()
        s.hang.add("/hang")
        d = Daemon(broker_yaml() + trigger_yaml("hang", s.at("/hang")),
                   args=["--drain-timeout", "300"])
        try:
            st, _, _ = d.post("/default/default", binary_headers(id="h-1"), b"{}")
            self.assertEqual(st, 202)
            s.wait("/hang", 1)
        finally:
            d.stop()
            s.close()
        m = re.search(r"(\d+) event deliveries not finished at exit", d.log())
        self.assertIsNotNone(m, d.log())
        self.assertEqual(m.group(1), "1")


class RepliesFromAny2xx(unittest.TestCase):
    """Item 11: a CloudEvent in a 200, 201, 203... answer is a reply; in a 202 it is not."""

    @classmethod
    def setUpClass(cls):
        s = cls.sub = Subscriber()
        cfg = broker_yaml()
        for status in (200, 201, 203, 202):
            cfg += trigger_yaml("ask%d" % status, s.at("/ask%d" % status),
                                filter_attrs={"type": "question%d" % status})
            s.responses["/ask%d" % status] = [reply(status, "answer", "a-%d" % status)]
        cfg += trigger_yaml("answers", s.at("/answers"), filter_attrs={"type": "answer"})
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def ask(self, status):
        st, _, _ = self.d.post("/default/default",
                               binary_headers(id="q-%d" % status, type="question%d" % status), b"{}")
        self.assertEqual(st, 202)

    def answered(self, status):
        return [r for r in self.sub.got("/answers") if r.ce("id") == "a-%d" % status]

    def test_a_cloudevent_in_a_201_or_203_answer_is_published(self):
        for status in (201, 203, 200):
            self.ask(status)
            wait_for(lambda: self.answered(status), 5, what="the reply to the %d" % status)
            self.assertEqual(counter(self.d, "replies", "ask%d" % status), 1)

    def test_a_cloudevent_in_a_202_answer_is_not(self):
        self.ask(202)
        # A reply is counted before the delivery it came from.
        wait_for(lambda: counter(self.d, "delivered", "ask202") == 1, 5, what="the 202 delivery")
        self.assertEqual(counter(self.d, "replies", "ask202"), 0)
        self.assertEqual(self.answered(202), [])


if __name__ == "__main__":
    main()
