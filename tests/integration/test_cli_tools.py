#!/usr/bin/env python3
"""cebroker send and cebroker display: the exact output of display for events that send posts in
both modes, and the exact request send puts on the wire, checked against a plain Python server."""

import datetime
import http.server
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import unittest
import urllib.error
import urllib.request

CEBROKER = os.environ.get("CEBROKER", "./cebroker")
TIMEOUT = 20

# The headers that curl adds to every request besides the ones the event is encoded into.
TRANSPORT_HEADERS = {"host", "user-agent", "accept", "content-length"}

CLOUD = "\u2601\ufe0f  cloudevents.Event\n"


def check_sanitizers(stderr):
    """In a sanitizer build a report can come with an exit status that a test expects anyway."""
    for mark in (b"Sanitizer", b"runtime error:"):
        if mark in stderr:
            raise AssertionError(stderr.decode("utf-8", "replace"))


def run(*args, stdin=None):
    r = subprocess.run([CEBROKER, *args], input=stdin, capture_output=True, timeout=TIMEOUT)
    check_sanitizers(r.stderr)
    return r


def run_send(*args, stdin=None):
    return run("send", *args, stdin=stdin)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Display:
    """`cebroker display` on an ephemeral port, with its stdout and stderr collected."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [CEBROKER, "display", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = []
        self.err = []
        lines = queue.Queue()

        def read_err():
            for line in self.proc.stderr:
                self.err.append(line)
                lines.put(line)
            lines.put(b"")

        self.threads = [threading.Thread(target=read_err, daemon=True),
                        threading.Thread(target=lambda: self.out.append(self.proc.stdout.read()),
                                         daemon=True)]
        for t in self.threads:
            t.start()
        try:
            first = lines.get(timeout=TIMEOUT)
        except queue.Empty:
            first = b""
        m = re.fullmatch(rb"listening on http://127\.0\.0\.1:(\d+)\n", first)
        if not m:
            self.proc.kill()
            self.finish()
            raise AssertionError("display did not report its port: %r" % first)
        self.url = "http://127.0.0.1:%d" % int(m.group(1))

    def finish(self):
        """Waits for display to exit; returns (exit status, stdout, stderr) as text."""
        rc = self.proc.wait(timeout=TIMEOUT)
        for t in self.threads:
            t.join(TIMEOUT)
        self.proc.stdout.close()
        self.proc.stderr.close()
        err = b"".join(self.err)
        check_sanitizers(err)
        return rc, b"".join(self.out).decode("utf-8"), err.decode("utf-8")

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        return self.finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.finish()


class CaptureHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append((self.path, self.headers, body))
        status, reply = self.server.answer
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


class CaptureServer:
    """A subscriber that records every request and answers with a chosen status and body."""

    def __init__(self, status=202, reply=b""):
        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), CaptureHandler)
        self.httpd.requests = []
        self.httpd.answer = (status, reply)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def event_headers(headers):
    """The request headers other than curl's own, names lower-cased."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in TRANSPORT_HEADERS}


ORDER_ARGS = ["--id", "1234", "--source", "/shop", "--type", "com.example.order.created",
              "--time", "2026-01-02T03:04:05Z", "--ext", "myext=value",
              "--data", '{"order": 42, "items": ["a", "b"], "empty": {}}']

NOTE_ARGS = ["--id", "5678", "--source", "/notes", "--type", "com.example.note",
             "--subject", "Euro \u20ac \U0001F600", "--ext", "region=eu", "--ext", "count:int=5",
             "--ext", "flag:bool=true", "--content-type", "text/plain", "--data", "hello world"]

ORDER_TEXT = (CLOUD +
              "Context Attributes,\n"
              "  specversion: 1.0\n"
              "  type: com.example.order.created\n"
              "  source: /shop\n"
              "  id: 1234\n"
              "  time: 2026-01-02T03:04:05Z\n"
              "  datacontenttype: application/json\n"
              "Extensions,\n"
              "  myext: value\n"
              "Data,\n"
              "  {\n"
              "    \"order\": 42,\n"
              "    \"items\": [\n"
              "      \"a\",\n"
              "      \"b\"\n"
              "    ],\n"
              "    \"empty\": {}\n"
              "  }\n")

NOTE_TEXT = (CLOUD +
             "Context Attributes,\n"
             "  specversion: 1.0\n"
             "  type: com.example.note\n"
             "  source: /notes\n"
             "  subject: Euro \u20ac \U0001F600\n"
             "  id: 5678\n"
             "  datacontenttype: text/plain\n"
             "Extensions,\n"
             "  count: 5\n"
             "  flag: true\n"
             "  region: eu\n"
             "Data,\n"
             "  hello world\n")


class SendTest(unittest.TestCase):
    def test_binary_mode_sends_percent_encoded_ce_headers_and_the_data_as_body(self):
        with CaptureServer() as srv:
            r = run_send("--to", srv.url + "/default/default", *ORDER_ARGS,
                         "--subject", "Euro \u20ac \U0001F600", "--ext", "note=a b%\"c")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"202 Accepted\n")
        self.assertEqual(len(srv.requests), 1)
        path, headers, body = srv.requests[0]
        self.assertEqual(path, "/default/default")
        self.assertEqual(event_headers(headers), {
            "ce-specversion": "1.0",
            "ce-id": "1234",
            "ce-source": "/shop",
            "ce-type": "com.example.order.created",
            "ce-subject": "Euro%20%E2%82%AC%20%F0%9F%98%80",
            "ce-time": "2026-01-02T03:04:05Z",
            "ce-myext": "value",
            "ce-note": "a%20b%25%22c",
            "content-type": "application/json",
        })
        self.assertEqual(body, b'{"order": 42, "items": ["a", "b"], "empty": {}}')

    def test_structured_mode_sends_the_event_as_one_json_document(self):
        with CaptureServer() as srv:
            r = run_send("--to", srv.url + "/", "--mode", "structured", *ORDER_ARGS,
                         "--ext", "count:int=5", "--ext", "flag:bool=true")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"202 Accepted\n")
        _, headers, body = srv.requests[0]
        self.assertEqual(event_headers(headers),
                         {"content-type": "application/cloudevents+json; charset=utf-8"})
        self.assertEqual(json.loads(body), {
            "specversion": "1.0",
            "id": "1234",
            "source": "/shop",
            "type": "com.example.order.created",
            "time": "2026-01-02T03:04:05Z",
            "datacontenttype": "application/json",
            "myext": "value",
            "count": 5,
            "flag": True,
            "data": {"order": 42, "items": ["a", "b"], "empty": {}},
        })

    def test_defaults_are_a_uuid_v4_id_and_source_cebroker_send_and_no_data(self):
        with CaptureServer() as srv:
            r = run_send("--to", srv.url, "--type", "com.example.ping")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, headers, body = srv.requests[0]
        h = event_headers(headers)
        self.assertRegex(h.pop("ce-id"),
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertEqual(h, {"ce-specversion": "1.0", "ce-source": "cebroker/send",
                             "ce-type": "com.example.ping"})
        self.assertEqual(body, b"")

    def test_time_now_is_the_current_utc_time_in_rfc3339(self):
        with CaptureServer() as srv:
            r = run_send("--to", srv.url, "--type", "t", "--time", "now")
        self.assertEqual(r.returncode, 0, r.stderr)
        t = srv.requests[0][1]["ce-time"]
        self.assertRegex(t, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        sent = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - sent).total_seconds()), 300)

    def test_data_file_dash_reads_the_data_from_stdin(self):
        with CaptureServer() as srv:
            r = run_send("--to", srv.url, "--type", "t", "--content-type", "text/plain",
                         "--data-file", "-", stdin=b"line one\nline two\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        _, headers, body = srv.requests[0]
        self.assertEqual(headers["Content-Type"], "text/plain")
        self.assertEqual(body, b"line one\nline two\n")

    def test_another_status_exits_1_and_prints_the_status_and_the_body(self):
        with CaptureServer(status=500, reply=b"broker on fire") as srv:
            r = run_send("--to", srv.url, "--type", "t")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, b"500 Internal Server Error\nbroker on fire\n")

    def test_a_refused_connection_exits_2_with_a_clear_message(self):
        url = "http://127.0.0.1:%d/default/default" % free_port()
        r = run_send("--to", url, "--type", "t")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr.decode(), "cebroker send: connection refused: %s\n" % url)
        self.assertEqual(r.stdout, b"")

    def test_usage_errors_exit_2_and_say_what_is_wrong(self):
        cases = [
            (["--to", "http://127.0.0.1:1/"], "--type is required"),
            (["--type", "t"], "--to URL is required"),
            (["--to", "http://x/", "--type", "t", "--bogus"], "unknown option '--bogus'"),
            (["--to", "http://x/", "--type", "t", "--mode", "fancy"], "--mode must be"),
            (["--to", "http://x/", "--type", "t", "--ext", "noequals"], "NAME=VALUE"),
            (["--to", "http://x/", "--type", "t", "--ext", "n:float=1"], "unknown type"),
            (["--to", "http://x/", "--type", "t", "--ext", "n:int=abc"], "'n'"),
            (["--to", "http://x/", "--type", "t", "--time", "yesterday"], "time"),
            (["--to", "http://x/", "--type", "t", "--data", "x", "--data-file", "-"],
             "cannot both"),
            (["--to", "http://x/", "--type", "t", "--mode", "structured", "--data", "{bad"],
             "not valid JSON"),
            (["--to", "http://x/", "--type"], "needs a value"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = run_send(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr.decode())
                self.assertTrue(r.stderr.startswith(b"cebroker send: "), r.stderr)

    def test_verbose_prints_the_request_headers_on_stderr(self):
        with CaptureServer() as srv:
            r = run_send("--to", srv.url + "/x", "--type", "com.example.v", "-v")
        self.assertEqual(r.returncode, 0, r.stderr)
        err = r.stderr.decode()
        self.assertIn("> POST /x HTTP/1.1\n", err)
        self.assertIn("> ce-type: com.example.v\n", err)
        self.assertIn("< HTTP/1.0 202 Accepted\n", err)

    def test_help_prints_the_usage_with_an_example(self):
        for tool in ("send", "display"):
            with self.subTest(tool=tool):
                r = run(tool, "--help")
                self.assertEqual(r.returncode, 0)
                self.assertTrue(r.stdout.startswith(b"Usage: cebroker " + tool.encode()))
                self.assertIn(b"Example:", r.stdout)


class DisplayTest(unittest.TestCase):
    def test_prints_events_from_send_in_both_modes_in_the_event_display_format(self):
        with Display("--count", "2") as d:
            r1 = run_send("--to", d.url + "/default/default", *ORDER_ARGS)
            r2 = run_send("--to", d.url + "/default/default", "--mode", "structured", *NOTE_ARGS)
            rc, out, err = d.finish()
        self.assertEqual((r1.returncode, r1.stdout), (0, b"202 Accepted\n"), r1.stderr)
        self.assertEqual((r2.returncode, r2.stdout), (0, b"202 Accepted\n"), r2.stderr)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, ORDER_TEXT + NOTE_TEXT)

    def test_json_mode_prints_each_event_as_one_json_line(self):
        with Display("--count", "2", "--json") as d:
            run_send("--to", d.url, *ORDER_ARGS)
            run_send("--to", d.url, "--mode", "structured", *NOTE_ARGS)
            rc, out, err = d.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "".join(line + "\n" for line in [
            '{"specversion":"1.0","id":"1234","source":"/shop",'
            '"type":"com.example.order.created","datacontenttype":"application/json",'
            '"time":"2026-01-02T03:04:05Z","myext":"value",'
            '"data":{"order": 42, "items": ["a", "b"], "empty": {}}}',
            '{"specversion":"1.0","id":"5678","source":"/notes","type":"com.example.note",'
            '"datacontenttype":"text/plain","subject":"Euro \u20ac \U0001F600",'
            '"region":"eu","count":5,"flag":true,"data":"hello world"}',
        ]))

    def test_prints_every_event_of_a_batch_with_binary_data_in_base64(self):
        batch = [
            {"specversion": "1.0", "id": "b1", "source": "/batch", "type": "t.text",
             "datacontenttype": "text/plain", "data": "plain text"},
            {"specversion": "1.0", "id": "b2", "source": "/batch", "type": "t.bytes",
             "data_base64": "AP+A"},
        ]
        with Display("--count", "2") as d:
            req = urllib.request.Request(
                d.url + "/", data=json.dumps(batch).encode(), method="POST",
                headers={"Content-Type": "application/cloudevents-batch+json"})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                self.assertEqual(resp.status, 202)
            rc, out, err = d.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out,
                         CLOUD + "Context Attributes,\n  specversion: 1.0\n  type: t.text\n"
                         "  source: /batch\n  id: b1\n  datacontenttype: text/plain\n"
                         "Data,\n  plain text\n" +
                         CLOUD + "Context Attributes,\n  specversion: 1.0\n  type: t.bytes\n"
                         "  source: /batch\n  id: b2\n"
                         "Data (binary, 3 bytes, shown in base64),\n  AP+A\n")

    def test_an_invalid_request_gets_400_with_the_reason_and_is_reported_on_stderr(self):
        with Display() as d:
            req = urllib.request.Request(
                d.url + "/default/default", data=b"{}", method="POST",
                headers={"Content-Type": "application/json", "ce-specversion": "1.0",
                         "ce-source": "/s", "ce-type": "t"})
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req, timeout=TIMEOUT)
            reason = cm.exception.read().decode()
            self.assertEqual(cm.exception.code, 400)
            rc, out, err = d.stop()
        self.assertEqual(rc, 0)
        self.assertEqual(out, "")
        self.assertIn("id", reason)
        self.assertIn("cebroker display: rejected POST /default/default (400): " + reason, err)

    def test_answers_the_webhook_options_handshake(self):
        with Display() as d:
            req = urllib.request.Request(d.url + "/", method="OPTIONS",
                                         headers={"WebHook-Request-Origin": "example.com"})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.headers["WebHook-Allowed-Origin"], "*")
                self.assertEqual(resp.headers["WebHook-Allowed-Rate"], "*")
                self.assertIn("POST", resp.headers["Allow"])
            d.stop()

    def test_status_option_answers_every_event_with_that_status(self):
        with Display("--status", "503", "--count", "1") as d:
            r = run_send("--to", d.url, "--type", "com.example.retry", "--id", "r1")
            rc, out, err = d.finish()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, b"503 Service Unavailable\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("  id: r1\n", out)

    def test_append_replies_like_knatives_appender(self):
        with Display("--append", " - step 1") as d:
            req = urllib.request.Request(d.url + "/", method="POST", data=b'{"message": "hi", "n": 1}',
                                         headers={"ce-specversion": "1.0", "ce-id": "a1",
                                                  "ce-type": "t", "ce-source": "/s",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                self.assertEqual(r.status, 200)
                self.assertEqual(r.headers["ce-id"], "a1")
                self.assertEqual(json.loads(r.read()), {"message": "hi - step 1", "n": 1})
            req = urllib.request.Request(d.url + "/", method="POST", data=b"plain",
                                         headers={"ce-specversion": "1.0", "ce-id": "a2",
                                                  "ce-type": "t", "ce-source": "/s",
                                                  "Content-Type": "text/plain"})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                self.assertEqual(r.read(), b"plain - step 1")
            rc, out, err = d.stop()
        self.assertEqual(rc, 0, err)

    def test_sigint_and_sigterm_stop_it_cleanly(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(sig=sig), Display() as d:
                rc, out, err = d.stop(sig)
                self.assertEqual(rc, 0, err)

    def test_a_busy_port_is_reported(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            where = "127.0.0.1:%d" % s.getsockname()[1]
            r = run("display", "--listen", where)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode(),
                         "cebroker display: cannot listen on %s: Address already in use\n" % where)

    def test_usage_errors_exit_2(self):
        for args in (["--bogus"], ["--status", "99"], ["--count", "0"], ["--listen", "nope"],
                     ["extra"]):
            with self.subTest(args=args):
                r = run("display", *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.startswith(b"cebroker display: "), r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
