"""Resource abuse against the running daemon: clients dripping their headers, idle connections,
10 000 bad requests in a row, and one hung subscriber next to a healthy one."""

import json
import os
import socket
import threading
import sys
import time
import unittest
import http.client

from cebtest import Daemon, Subscriber, binary_headers, broker_yaml, main, trigger_yaml, wait_for


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def p99(values):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * 0.99))]


class Hardening(unittest.TestCase):
    def test_slow_header_drippers_do_not_starve_a_normal_sender(self):
        sub = Subscriber()
        d = Daemon(broker_yaml() + trigger_yaml("all", sub.at("/all")), log_level="info")
        drippers, stop = [], threading.Event()
        try:
            for _ in range(500):
                s = socket.create_connection(("127.0.0.1", d.port))
                s.sendall(b"POST /default/default HTTP/1.1\r\n")
                drippers.append(s)

            def drip():
                while not stop.is_set():
                    for s in drippers:
                        try:
                            s.sendall(b"x")
                        except OSError:
                            pass
                    stop.wait(0.5)
            t = threading.Thread(target=drip)
            t.start()
            ok = failed = 0
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
            for i in range(2000):
                try:
                    conn.request("POST", "/default/default", b"x", binary_headers(id="n%d" % i))
                    r = conn.getresponse()
                    r.read()
                    ok += r.status == 202
                    failed += r.status != 202
                except (OSError, http.client.HTTPException):
                    failed += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
            stop.set()
            t.join()
            self.assertLessEqual(failed, 2, "at most 0.1%% of 2000 may fail; %d did" % failed)
            wait_for(lambda: len(sub.got("/all")) >= ok, 10, what="deliveries")
        finally:
            for s in drippers:
                s.close()
            d.stop()
            sub.close()

    def test_idle_connections_are_closed_at_the_idle_timeout(self):
        d = Daemon(broker_yaml(), args=["--idle-timeout", "1"], log_level="info")
        try:
            s = socket.create_connection(("127.0.0.1", d.port))
            s.settimeout(5)
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"", "the daemon closes an idle connection")
            self.assertLess(time.monotonic() - t0, 4.5)
            self.assertGreaterEqual(time.monotonic() - t0, 0.9)
            s.close()
        finally:
            d.stop()

    def test_ten_thousand_bad_requests_leave_memory_and_descriptors_as_they_were(self):
        sub = Subscriber()
        # Under AddressSanitizer freed memory sits in a quarantine and RSS only grows; without the
        # quarantine RSS measures what the daemon really keeps.
        asan = os.environ.get("ASAN_OPTIONS", "")
        d = Daemon(broker_yaml() + trigger_yaml("all", sub.at("/all")), log_level="info",
                   env={"ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=0"})
        bad = [
            ({"Content-Type": "application/cloudevents+json"}, b'{"specversion": "1.0", "id": '),
            ({"Content-Type": "application/cloudevents+json"}, b'{"specversion":"1.0","id":"x","type":"t","source":"/s","id":"y"}'),
            (binary_headers(time="not-a-time"), b"x"),
            (binary_headers(subject="%C0%A0"), b"x"),
            ({"Content-Type": "application/cloudevents-batch+json"}, b'[{"specversion":"1.0"}]'),
            ({"Content-Type": "application/cloudevents+avro"}, b"\x00"),
            (dict(binary_headers(), **{"ce-Data": "x"}), b""),
        ]

        def hammer(n):
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
            codes = {}
            for i in range(n):
                h, body = bad[i % len(bad)]
                conn.request("POST", "/default/default", body, h)
                r = conn.getresponse()
                r.read()
                codes[r.status] = codes.get(r.status, 0) + 1
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
            conn.close()
            return codes
        try:
            hammer(1000)  # warm up allocator caches
            time.sleep(0.3)
            rss0, fds0 = rss_kb(d.proc.pid), fd_count(d.proc.pid)
            codes = hammer(10000)
            self.assertEqual(set(codes), {400, 415}, codes)
            time.sleep(0.5)
            rss1, fds1 = rss_kb(d.proc.pid), fd_count(d.proc.pid)
            self.assertLessEqual(rss1, rss0 * 1.10 + 256, "RSS %d kB -> %d kB" % (rss0, rss1))
            self.assertEqual(fds1, fds0)
            self.assertEqual(sub.got("/all"), [], "nothing was enqueued")
            st, _, _ = d.post("/default/default", binary_headers(id="after"))
            self.assertEqual(st, 202)
            sub.wait("/all", 1)
        finally:
            d.stop()
            sub.close()

    def test_a_hung_subscriber_does_not_slow_another_trigger(self):
        sub = Subscriber()
        sub.hang.add("/hung")
        cfg = broker_yaml()
        cfg += trigger_yaml("hung", sub.at("/hung"), filter_attrs={"type": "both"})
        cfg += trigger_yaml("healthy", sub.at("/healthy"), filters="- suffix:\n    type: both")
        d = Daemon(cfg, args=["--drain-timeout", "500"], log_level="info")

        def latencies(prefix, type, n=300):
            sent = {}
            for i in range(n):
                id = "%s-%d" % (prefix, i)
                sent[id] = time.monotonic()
                st, _, _ = d.post("/default/default", binary_headers(id=id, type=type))
                self.assertEqual(st, 202)
                time.sleep(0.003)
            wait_for(lambda: len([r for r in sub.got("/healthy") if r.ce("id").startswith(prefix + "-")]) >= n,
                     10, what="healthy deliveries")
            return [r.time - sent[r.ce("id")] for r in sub.got("/healthy") if r.ce("id").startswith(prefix + "-")]
        try:
            base = p99(latencies("base", "only-both"))     # matches "healthy" only
            loaded = p99(latencies("loaded", "both"))      # matches both; "hung" never answers
            # Every event reached the healthy Trigger while the hung one held its deliveries:
            # latencies() waited for all of them. The figures are for the reader, not a threshold
            # (the machines are shared: a timing bound here fails on load, not on a defect).
            self.assertGreater(len(sub.got("/hung")), 50, "the hung subscriber really was hung with work")
            sys.stderr.write("healthy p99 %.1f ms loaded vs %.1f ms alone\n" % (loaded * 1e3, base * 1e3))
        finally:
            d.stop(timeout=60)
            sub.close()

    def test_H9_a_body_dripped_past_the_request_timeout_is_refused_and_not_enqueued(self):
        sub = Subscriber()
        d = Daemon(broker_yaml() + trigger_yaml("all", sub.at("/all")),
                   args=["--request-timeout", "1"], log_level="info")
        try:
            s = socket.create_connection(("127.0.0.1", d.port))
            s.settimeout(10)
            s.sendall(b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 15\r\n"
                      b"ce-specversion: 1.0\r\nce-id: slow\r\nce-type: t\r\nce-source: /s\r\n\r\n")
            answer = b""
            for _ in range(15):
                try:
                    s.sendall(b"x")
                except OSError:
                    break
                time.sleep(0.1)
            try:
                answer = s.recv(200)
            except OSError:
                pass
            s.close()
            self.assertTrue(answer.startswith(b"HTTP/1.1 408"), answer)
            time.sleep(0.3)
            self.assertEqual(sub.got("/all"), [])
        finally:
            d.stop()
            sub.close()

    def test_H9_a_body_that_never_ends_gets_the_connection_closed(self):
        d = Daemon(broker_yaml(), args=["--request-timeout", "1"], log_level="info")
        try:
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(b"POST /default/default HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"ce-specversion: 1.0\r\nce-id: endless\r\nce-type: t\r\nce-source: /s\r\n\r\n")
            t0 = time.monotonic()
            closed = False
            while time.monotonic() - t0 < 10:
                try:
                    s.sendall(b"1\r\nx\r\n")
                except OSError:
                    closed = True
                    break
                time.sleep(0.05)
            s.close()
            self.assertTrue(closed, "a body dripping for ever keeps the connection")
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            d.stop()

    def test_H12_connections_over_the_per_client_cap_are_refused_others_keep_working(self):
        d = Daemon(broker_yaml(), args=["--max-connections-per-ip", "10"], log_level="info")
        held = []
        try:
            for _ in range(10):
                held.append(socket.create_connection(("127.0.0.1", d.port)))
            extra = socket.create_connection(("127.0.0.1", d.port))
            extra.settimeout(3)
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                got = extra.recv(100)
            except OSError:
                got = b""
            self.assertEqual(got, b"", "the 11th connection from one address is closed")
            extra.close()
            held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(held[0].recv(100).startswith(b"HTTP/1.1 200"))
        finally:
            for s in held:
                s.close()
            d.stop()

    def test_H16_client_gone_after_a_full_body_is_harmless(self):
        sub = Subscriber()
        d = Daemon(broker_yaml() + trigger_yaml("all", sub.at("/all")), log_level="info")
        try:
            for i in range(50):
                s = socket.create_connection(("127.0.0.1", d.port))
                s.sendall(b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                          b"ce-specversion: 1.0\r\nce-id: gone-%d\r\nce-type: t\r\nce-source: /s\r\n\r\nx" % i)
                s.close()
            st, _, _ = d.post("/default/default", binary_headers(id="after-gone"))
            self.assertEqual(st, 202)
            wait_for(lambda: [r for r in sub.got("/all") if r.ce("id") == "after-gone"], 5)
        finally:
            d.stop()
            sub.close()

    def test_H13_a_client_over_the_rate_limit_gets_429_and_nothing_is_enqueued(self):
        sub = Subscriber()
        d = Daemon(broker_yaml() + trigger_yaml("all", sub.at("/all")), args=["--rate-limit", "5"],
                   log_level="info")
        try:
            answers = [d.post("/default/default", binary_headers(id="r%d" % i)) for i in range(30)]
            codes = [a[0] for a in answers]
            # A burst of 2 x 5 passes (a little more if the clock moved meanwhile), then 429.
            self.assertGreaterEqual(codes.count(202), 10)
            self.assertLess(codes.count(202), 20)
            refused = [a for a in answers if a[0] == 429]
            self.assertTrue(refused)
            self.assertEqual(refused[0][1].get("retry-after"), "1")
            self.assertIn(b"too many requests from this client", refused[0][2])
            time.sleep(0.5)
            self.assertEqual(len(sub.got("/all")), codes.count(202), "only accepted events are delivered")
            self.assertEqual(d.post("/healthz", {}, b"", "GET")[0], 200)
        finally:
            d.stop()
            sub.close()


if __name__ == "__main__":
    main()
