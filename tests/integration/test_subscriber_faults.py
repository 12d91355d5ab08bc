"""Subscriber faults (shared reference reliability.md, 2.4): for each, the exact attempt count, the
waits within tolerance, the dead-letter sink reached exactly once, and no event lost without a trace
(a log line and a counter)."""

import base64
import email.utils
import socket
import threading
import time
import unittest

from cebtest import Daemon, Subscriber, binary_headers, broker_yaml, main, trigger_yaml, wait_for

SLACK = 1.5


class RawServer:
    """A TCP server that misbehaves on purpose: `reset` closes every connection with a RST once the
    request arrived; `drip` answers 200 headers and then one body byte per 0.3 s."""

    def __init__(self, mode):
        self.mode = mode
        self.times = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d/raw" % self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.times.append(time.monotonic())
            if self.mode == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
                return
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\n")
            for _ in range(100):
                time.sleep(0.3)
                c.sendall(b"x")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.sock.close()


class SubscriberFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        s = cls.sub = Subscriber()
        cls.reset = RawServer("reset")
        cls.drip = RawServer("drip")
        dls = "deadLetterSink:\n  uri: %s\n" % s.at("/dls")
        cfg = broker_yaml()
        common = "backoffPolicy: linear\nbackoffDelay: PT0.2S\n"
        triggers = {
            "e5xx": (s.at("/e5xx"), "retry: 2\n"),
            "e409": (s.at("/e409"), "retry: 2\n"),
            "e429secs": (s.at("/e429secs"), "retry: 1\nretryAfterMax: PT5S\n"),
            "e429date": (s.at("/e429date"), "retry: 1\nretryAfterMax: PT5S\n"),
            "e429capped": (s.at("/e429capped"), "retry: 1\nretryAfterMax: PT0.5S\n"),
            "e400": (s.at("/e400"), "retry: 3\n"),
            "timeout": (s.at("/timeout"), "retry: 1\ntimeout: PT0.4S\n"),
            "reset": (cls.reset.url, "retry: 2\n"),
            "bigreply": (s.at("/bigreply"), "retry: 1\n"),
            "drip": (cls.drip.url, "retry: 1\ntimeout: PT1S\n"),
        }
        for name, (url, dlv) in triggers.items():
            cfg += trigger_yaml(name, url, filter_attrs={"type": name}, delivery=dlv + common + dls)
        s.responses["/e5xx"] = [(500, {}, b"a"), (502, {}, b"b"), (504, {}, b"gateway timeout")]
        s.responses["/e409"] = [(409, {}, b""), (409, {}, b""), (200, {}, b"")]
        s.responses["/e429secs"] = [(429, {"Retry-After": "2"}, b""), (202, {}, b"")]
        s.responses["/e429date"] = [lambda: None]
        s.responses["/e429date"] = lambda req: (429, {"Retry-After": email.utils.formatdate(
            time.time() + 3, usegmt=True)}, b"") if len(s.got("/e429date")) == 1 else (202, {}, b"")
        s.responses["/e429capped"] = [(429, {"Retry-After": "30"}, b""), (202, {}, b"")]
        s.responses["/e400"] = [(400, {}, b"no")]
        s.responses["/bigreply"] = [(200, {"Content-Type": "text/plain"}, b"x" * 70000)]
        s.hang.add("/timeout")
        cls.d = Daemon(cfg, args=["--max-event-size", "65536"])

    @classmethod
    def tearDownClass(cls):
        cls.d.stop(timeout=60)
        cls.sub.close()
        cls.reset.close()
        cls.drip.close()

    def send(self, type):
        self.t0 = time.monotonic()
        st, _, body = self.d.post("/default/default", binary_headers(id="id-" + type, type=type), b"p")
        self.assertEqual(st, 202, body)

    def dls(self, type, count=1):
        return wait_for(lambda: (lambda r: r if len(r) >= count else None)(
            [r for r in self.sub.got("/dls") if r.ce("type") == type]), 15, what="dead letter of " + type)

    def assertOnce(self, type):
        time.sleep(0.5)
        self.assertEqual(len([r for r in self.sub.got("/dls") if r.ce("type") == type]), 1,
                         "dead-lettered exactly once")

    def assertGap(self, a, b, expected):
        # The times are when requests reached the subscriber, the daemon's clocks start when an
        # attempt starts: on a loaded machine the first request's connect can lag by tens of ms.
        self.assertGreaterEqual(b - a, expected - 0.1)
        self.assertLess(b - a, expected + SLACK)

    def counter(self, name, trigger):
        return self.d.metrics().get('cebroker_%s_total{namespace="default",trigger="%s",broker="default"}'
                                    % (name, trigger), 0)

    def test_5xx_is_retried_then_dead_lettered_with_the_last_status(self):
        self.send("e5xx")
        d = self.dls("e5xx")[0]
        reqs = self.sub.got("/e5xx")
        self.assertEqual(len(reqs), 3)
        self.assertGap(reqs[0].time, reqs[1].time, 0.2)
        self.assertGap(reqs[1].time, reqs[2].time, 0.4)
        self.assertEqual(d.ce("knativeerrorcode"), "504")
        self.assertEqual(base64.b64decode(d.ce("knativeerrordata")), b"gateway timeout")
        self.assertOnce("e5xx")
        self.assertEqual(self.counter("dead_lettered", "e5xx"), 1)

    def test_409_is_retried_until_it_succeeds(self):
        self.send("e409")
        self.sub.wait("/e409", 3)
        time.sleep(0.5)
        self.assertEqual(len(self.sub.got("/e409")), 3)
        self.assertFalse([r for r in self.sub.got("/dls") if r.ce("type") == "e409"])
        wait_for(lambda: self.counter("delivered", "e409") == 1, 5, what="delivered counter")

    def test_429_retry_after_in_seconds_is_honoured(self):
        self.send("e429secs")
        r = self.sub.wait("/e429secs", 2)
        self.assertGap(r[0].time, r[1].time, 2.0)

    def test_429_retry_after_as_an_http_date_is_honoured(self):
        self.send("e429date")
        r = self.sub.wait("/e429date", 2)
        # The date has one-second resolution: the wait is between 2 and 3 seconds.
        self.assertGreaterEqual(r[1].time - r[0].time, 1.9)
        self.assertLess(r[1].time - r[0].time, 3.0 + SLACK)

    def test_retry_after_is_capped_by_retry_after_max(self):
        self.send("e429capped")
        r = self.sub.wait("/e429capped", 2)
        self.assertGap(r[0].time, r[1].time, 0.5)

    def test_400_goes_to_the_dead_letter_sink_after_one_attempt(self):
        self.send("e400")
        self.dls("e400")
        self.assertEqual(len(self.sub.got("/e400")), 1)
        self.assertOnce("e400")

    def test_a_hanging_subscriber_times_out_on_every_attempt(self):
        self.send("timeout")
        d = self.dls("timeout")[0]
        self.assertEqual(len(self.sub.got("/timeout")), 2)
        self.assertGreaterEqual(d.time - self.t0, 0.4 * 2 + 0.2 - 0.05)
        self.assertIsNone(d.ce("knativeerrorcode"))
        self.assertOnce("timeout")

    def test_connection_reset_is_retried(self):
        self.send("reset")
        d = self.dls("reset")[0]
        self.assertEqual(len(self.reset.times), 3)
        self.assertGap(self.reset.times[0], self.reset.times[1], 0.2)
        self.assertEqual(d.ce("knativeerrordest"), self.reset.url)
        self.assertOnce("reset")

    def test_an_oversized_reply_is_a_failed_delivery(self):
        self.send("bigreply")
        self.dls("bigreply")
        self.assertEqual(len(self.sub.got("/bigreply")), 2)
        self.assertOnce("bigreply")
        self.assertIn("reply from %s is over 65536 bytes" % self.sub.at("/bigreply"), self.d.log())

    def test_a_slow_drip_answer_is_cut_off_at_the_timeout(self):
        self.send("drip")
        self.dls("drip")
        self.assertEqual(len(self.drip.times), 2)
        self.assertGap(self.drip.times[0], self.drip.times[1], 1.0 + 0.2)
        self.assertOnce("drip")


if __name__ == "__main__":
    main()
