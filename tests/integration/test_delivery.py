"""Delivery semantics as DESIGN.md states them: which statuses are retried, how many attempts, the
waits between them, the dead-letter sink with the knativeerror* extensions, timeouts, Retry-After."""

import base64
import time
import unittest

from cebtest import Daemon, Subscriber, binary_headers, broker_yaml, main, trigger_yaml

SLACK = 1.5  # seconds a wait may run over on a busy machine; never under


class Delivery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        s = cls.sub
        dls = "deadLetterSink:\n  uri: %s\n" % s.at("/dls")
        cfg = broker_yaml(delivery="retry: 1\n" + dls)
        cfg += trigger_yaml("flaky-exp", s.at("/flaky-exp"), filter_attrs={"type": "flaky-exp"},
                            delivery="retry: 2\nbackoffPolicy: exponential\nbackoffDelay: PT0.3S\n" + dls)
        cfg += trigger_yaml("flaky-lin", s.at("/flaky-lin"), filter_attrs={"type": "flaky-lin"},
                            delivery="retry: 3\nbackoffPolicy: linear\nbackoffDelay: PT0.2S\n" + dls)
        cfg += trigger_yaml("bad-request", s.at("/bad-request"), filter_attrs={"type": "bad-request"},
                            delivery="retry: 5\nbackoffDelay: PT0.1S\n" + dls)
        cfg += trigger_yaml("hangs", s.at("/hangs"), filter_attrs={"type": "hangs"},
                            delivery="retry: 1\ntimeout: PT0.5S\n" + dls)
        cfg += trigger_yaml("retry-after", s.at("/retry-after"), filter_attrs={"type": "retry-after"},
                            delivery="retry: 1\nbackoffDelay: PT0.1S\nretryAfterMax: PT1.5S\n" + dls)
        cfg += trigger_yaml("redirect", s.at("/redirect"), filter_attrs={"type": "redirect"},
                            delivery="retry: 3\n" + dls)
        cfg += trigger_yaml("not-found", s.at("/not-found"), filter_attrs={"type": "not-found"},
                            delivery="retry: 2\n" + dls)
        # Inherits the Broker's delivery (retry 1 + dead-letter sink) because it sets none.
        cfg += trigger_yaml("inherits", s.at("/inherits"), filter_attrs={"type": "inherits"})
        cfg += trigger_yaml("no-dls", s.at("/no-dls"), filter_attrs={"type": "no-dls"},
                            delivery="retry: 1")
        s.responses["/flaky-exp"] = [(500, {}, b"oops"), (500, {}, b"oops"), (200, {}, b"")]
        s.responses["/flaky-lin"] = [(503, {}, b""), (429, {}, b""), (408, {}, b""), (202, {}, b"")]
        s.responses["/bad-request"] = [(400, {"Content-Type": "text/plain"}, b"field 'x' is wrong")]
        s.responses["/retry-after"] = [(429, {"Retry-After": "1"}, b""), (202, {}, b"")]
        s.responses["/redirect"] = [(302, {"Location": s.at("/flaky-exp")}, b"")]
        s.responses["/not-found"] = [(404, {}, b"")]
        s.responses["/inherits"] = [(500, {}, b"")]
        s.responses["/no-dls"] = [(500, {}, b"")]
        s.hang.add("/hangs")
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop(timeout=60)
        cls.sub.close()

    def send(self, type, id):
        st, _, body = self.d.post("/default/default", binary_headers(id=id, type=type), b"payload")
        self.assertEqual(st, 202, body)

    def dls_for(self, id):
        return [r for r in self.sub.got("/dls") if r.ce("id") == id]

    def assertWait(self, got, expected):
        self.assertGreaterEqual(got, expected - 0.02, "waited %.3fs, expected %.3fs" % (got, expected))
        self.assertLess(got, expected + SLACK, "waited %.3fs, expected %.3fs" % (got, expected))

    def test_500_500_200_gives_three_attempts_with_exponential_waits(self):
        self.send("flaky-exp", "e1")
        reqs = self.sub.wait("/flaky-exp", 3)
        time.sleep(0.5)
        self.assertEqual(len(self.sub.got("/flaky-exp")), 3)
        # exponential: backoffDelay * 2^(k-1) before retry k
        self.assertWait(reqs[1].time - reqs[0].time, 0.3)
        self.assertWait(reqs[2].time - reqs[1].time, 0.6)
        self.assertEqual(self.dls_for("e1"), [], "delivered in the end: nothing dead-lettered")

    def test_linear_backoff_retries_503_429_408(self):
        self.send("flaky-lin", "l1")
        reqs = self.sub.wait("/flaky-lin", 4)
        time.sleep(0.3)
        self.assertEqual(len(self.sub.got("/flaky-lin")), 4)
        for k in (1, 2, 3):  # linear: backoffDelay * k
            self.assertWait(reqs[k].time - reqs[k - 1].time, 0.2 * k)

    def test_400_is_not_retried_and_reaches_the_dead_letter_sink(self):
        self.send("bad-request", "b1")
        d = self.sub.wait("/dls", 1) and self.dls_for("b1")
        from cebtest import wait_for
        d = wait_for(lambda: self.dls_for("b1"), 5, what="dead-lettered b1")
        time.sleep(0.5)
        self.assertEqual(len(self.sub.got("/bad-request")), 1, "a 400 is never retried")
        self.assertEqual(len(self.dls_for("b1")), 1, "dead-lettered exactly once")
        r = d[0]
        self.assertEqual(r.ce("knativeerrordest"), self.sub.at("/bad-request"))
        self.assertEqual(r.ce("knativeerrorcode"), "400")
        self.assertEqual(base64.b64decode(r.ce("knativeerrordata")), b"field 'x' is wrong")
        self.assertEqual(r.ce("type"), "bad-request")
        self.assertEqual(r.body, b"payload")

    def test_a_subscriber_that_never_answers_is_cut_off_at_the_timeout(self):
        t0 = time.monotonic()
        self.send("hangs", "h1")
        from cebtest import wait_for
        d = wait_for(lambda: self.dls_for("h1"), 10, what="dead-lettered h1")
        self.assertEqual(len(self.sub.got("/hangs")), 2, "1 + retry attempts")
        elapsed = d[0].time - t0
        self.assertGreaterEqual(elapsed, 1.0 - 0.05, "two attempts of 0.5 s each")
        self.assertLess(elapsed, 1.0 + SLACK)
        self.assertEqual(d[0].ce("knativeerrordest"), self.sub.at("/hangs"))
        self.assertIsNone(d[0].ce("knativeerrorcode"), "no response, no status")

    def test_retry_after_raises_the_wait_up_to_retry_after_max(self):
        self.send("retry-after", "r1")
        reqs = self.sub.wait("/retry-after", 2)
        self.assertWait(reqs[1].time - reqs[0].time, 1.0)

    def test_redirects_are_never_followed_and_not_retried(self):
        self.send("redirect", "x1")
        from cebtest import wait_for
        d = wait_for(lambda: self.dls_for("x1"), 5, what="dead-lettered x1")
        time.sleep(0.3)
        self.assertEqual(len(self.sub.got("/redirect")), 1)
        self.assertEqual(d[0].ce("knativeerrorcode"), "302")
        self.assertFalse([r for r in self.sub.got("/flaky-exp") if r.ce("id") == "x1"])

    def test_404_is_retried(self):
        self.send("not-found", "n1")
        from cebtest import wait_for
        d = wait_for(lambda: self.dls_for("n1"), 5, what="dead-lettered n1")
        self.assertEqual(len(self.sub.got("/not-found")), 3)
        self.assertEqual(d[0].ce("knativeerrorcode"), "404")

    def test_trigger_without_delivery_inherits_the_brokers(self):
        self.send("inherits", "i1")
        from cebtest import wait_for
        wait_for(lambda: self.dls_for("i1"), 5, what="dead-lettered i1")
        self.assertEqual(len(self.sub.got("/inherits")), 2)

    def test_without_dead_letter_sink_the_event_is_dropped_and_counted(self):
        self.send("no-dls", "z1")
        self.sub.wait("/no-dls", 2)
        from cebtest import wait_for
        wait_for(lambda: self.d.metrics().get(
            'cebroker_dropped_total{namespace="default",trigger="no-dls",broker="default"}') == 1,
            5, what="dropped counter")
        # written before the counter moves, but read from the pipe by another thread of the test
        wait_for(lambda: "event z1 dropped" in self.d.log(), 5, what="the dropped line")
        self.assertEqual(self.dls_for("z1"), [])


if __name__ == "__main__":
    main()
