"""Helpers for cebroker's integration tests: start the real daemon on an ephemeral loopback port with
a given configuration, run real HTTP subscribers, post CloudEvents, and wait for what arrives.

Python standard library only. Each test file is a unittest module run as a script."""

import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

CEBROKER = os.environ.get("CEBROKER") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "cebroker")


def wait_for(cond, timeout=10.0, interval=0.01, what="condition"):
    """Poll cond() until it returns a true value; return it, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Request:
    """One request as a subscriber received it."""

    def __init__(self, method, path, headers, body, t):
        self.method = method
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.header_list = list(headers.items())
        self.body = body
        self.time = t

    def ce(self, name):
        return self.headers.get("ce-" + name)

    def event(self):
        """The event as a dict of attribute -> string value plus 'data' (bytes), whatever the mode."""
        ct = self.headers.get("content-type", "")
        if ct.lower().startswith("application/cloudevents+json"):
            doc = json.loads(self.body)
            ev = {k: v for k, v in doc.items() if k not in ("data", "data_base64")}
            if "data_base64" in doc:
                import base64
                ev["data"] = base64.b64decode(doc["data_base64"])
            elif "data" in doc:
                d = doc["data"]
                ev["data"] = d.encode() if isinstance(d, str) and not _is_json_ct(doc.get("datacontenttype")) \
                    else json.dumps(d, separators=(",", ":")).encode()
            ev["_mode"] = "structured"
            return ev
        from urllib.parse import unquote
        ev = {k[3:]: unquote(v) for k, v in self.headers.items() if k.startswith("ce-")}
        if ct:
            ev["datacontenttype"] = ct
        ev["data"] = self.body
        ev["_mode"] = "binary"
        return ev


def _is_json_ct(ct):
    if ct is None:
        return True
    ct = ct.split(";")[0].strip().lower()
    return ct.endswith("/json") or ct.endswith("+json")


class Subscriber:
    """A real HTTP server on 127.0.0.1 that records every request. Answers come from
    `responses[path]`: a list consumed one per request (the last one repeats), each
    (status, headers, body) or a callable(req) returning one; default 202. `hang` paths never answer."""

    def __init__(self):
        self.requests = []
        self.responses = {}
        self.hang = set()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        sub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def setup(self):
                super().setup()
                # Headers and body go out in two writes: without this, Nagle and delayed ACKs
                # add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request("POST", self.path, dict(self.headers.items()), body, time.monotonic())
                with sub.cond:
                    sub.requests.append(req)
                    sub.cond.notify_all()
                    queue = sub.responses.get(self.path)
                    if queue is None:
                        resp = (202, {}, b"")
                    elif callable(queue):
                        resp = None
                    elif len(queue) > 1:
                        resp = queue.pop(0)
                    else:
                        resp = queue[0]
                if self.path in sub.hang:
                    time.sleep(3600)
                    return
                if resp is None:
                    resp = queue(req)
                status, headers, rbody = resp
                if isinstance(rbody, str):
                    rbody = rbody.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(rbody)))
                self.end_headers()
                self.wfile.write(rbody)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def at(self, path):
        return self.url + path

    def got(self, path=None):
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]

    def wait(self, path, count, timeout=10.0):
        """Wait until `path` received at least count requests; return them."""
        return wait_for(lambda: (lambda r: r if len(r) >= count else None)(self.got(path)),
                        timeout, what="%d request(s) on %s (got %d)" % (count, path, len(self.got(path))))

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """The real cebroker daemon, on a free loopback port, with `yaml` as its configuration."""

    def __init__(self, yaml_text, args=(), log_level="debug", env=None):
        self.dir = tempfile.mkdtemp(prefix="cebtest-")
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(yaml_text)
        self.log_lines = []
        self.proc = subprocess.Popen(
            [CEBROKER, "run", "-f", self.config, "--listen", "127.0.0.1:0", "--log-level", log_level]
            + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=dict(os.environ, **(env or {})))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        m = wait_for(lambda: self._find(r"listening on http://127\.0\.0\.1:(\d+)")
                     or (self.proc.poll() is not None and "exited"), 10, what="daemon start")
        if m == "exited":
            raise AssertionError("cebroker exited at start (%s):\n%s" % (self.proc.returncode, self.log()))
        self.port = int(m.group(1))
        self.url = "http://127.0.0.1:%d" % self.port

    def _read(self):
        for line in iter(self.proc.stderr.readline, b""):
            self.log_lines.append(line.decode("utf-8", "replace"))

    def _find(self, pattern):
        for line in list(self.log_lines):
            m = re.search(pattern, line)
            if m:
                return m
        return None

    def log(self):
        return "".join(self.log_lines)

    def post(self, path, headers, body=b"", method="POST"):
        return post(self.url + path, headers, body, method)

    def metrics(self):
        st, _, body = post(self.url + "/metrics", {}, b"", "GET")
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=30, check=True):
        """Signal the daemon and wait for it. With check, a clean exit is part of the test: status 0
        and no sanitizer report in its log (ASan, LeakSanitizer, UBSan)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("cebroker did not exit within %ss after %s" % (timeout, sig))
        self._reader.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)
        if check:
            log = self.log()
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in log:
                    raise AssertionError("sanitizer report from cebroker:\n" + log[-6000:])
            if self.proc.returncode != 0:
                raise AssertionError("cebroker exited with %s:\n%s" % (self.proc.returncode, log[-4000:]))
        return self.proc.returncode


class RawServer:
    """A raw HTTP/1.1 subscriber on 127.0.0.1 for answers no ordinary server gives: accepts
    connections (numbered from 1, counted in `conns`) and runs serve(socket, number) on each in a
    thread of its own; read_request() reads one request off a connection."""

    def __init__(self):
        self.requests = []
        self.conns = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns += 1
                n = self.conns
            threading.Thread(target=self.serve, args=(c, n), daemon=True).start()

    @staticmethod
    def read_request(c, buf):
        """((head bytes, lower-case headers, body), what follows it), or (None, buf) when the
        connection ended first."""
        while b"\r\n\r\n" not in buf:
            chunk = c.recv(65536)
            if not chunk:
                return None, buf
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        n = int(headers.get("content-length", "0"))
        while len(buf) < n:
            chunk = c.recv(65536)
            if not chunk:
                return None, buf
            buf += chunk
        return (head, headers, buf[:n]), buf[n:]

    def serve(self, c, n):
        raise NotImplementedError

    def close(self):
        self.sock.close()


def trigger_counter(d, name, trigger):
    """A Trigger's cebroker_<name>_total in the default namespace and Broker."""
    return d.metrics().get('cebroker_%s_total{namespace="default",trigger="%s",broker="default"}'
                           % (name, trigger), 0)


def post(url, headers, body=b"", method="POST", timeout=10):
    """Send one request on a new connection; return (status, headers dict lower-cased, body)."""
    from urllib.parse import urlsplit
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, u.path or "/", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()



def run_cli(*args, timeout=20):
    """Run the cebroker command (validate, run...) to its end: (status, stdout, stderr)."""
    p = subprocess.run([CEBROKER] + list(args), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def yaml_file(case, text):
    """A temporary .yaml file holding text, removed when the test case ends; its path."""
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.write(text)
    f.close()
    case.addCleanup(os.unlink, f.name)
    return f.name


def raw(port, data, timeout=5, until_close=False):
    """Send raw bytes on a new connection; return the first answer (or, with until_close, everything
    the server sent before closing)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out and not until_close:
                head, _, rest = out.partition(b"\r\n\r\n")
                if b"content-length:" in head.lower():
                    n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    if len(rest) >= n:
                        break
        return out
    finally:
        s.close()

def binary_headers(id="1", type="com.example.test", source="/test", **ext):
    h = {"ce-specversion": "1.0", "ce-id": id, "ce-type": type, "ce-source": source}
    for k, v in ext.items():
        if k == "content_type":
            h["Content-Type"] = v
        else:
            h["ce-" + k] = v
    return h


def echo_appending(suffix, delay=0.0):
    """A Subscriber answer like Knative's appender (a step of its SequenceTest): 200 with the event
    it got, suffix appended to the data; after `delay` seconds."""
    def answer(req):
        if delay:
            time.sleep(delay)
        h = {k: v for k, v in req.headers.items() if k.lower().startswith("ce-")}
        h["Content-Type"] = req.headers.get("content-type", "text/plain")
        return (200, h, req.body + suffix.encode())
    return answer


def broker_yaml(name="default", namespace="default", delivery=None, annotations=None):
    y = "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: %s\n  namespace: %s\n" % (
        name, namespace)
    if annotations:
        y += "  annotations:\n" + "".join("    %s: %s\n" % (k, v) for k, v in annotations.items())
    if delivery:
        y += "spec:\n  delivery:\n" + _indent(delivery, 4)
    return y + "---\n"


def trigger_yaml(name, subscriber_uri, broker="default", namespace="default", filter_attrs=None,
                 filters=None, delivery=None, annotations=None):
    y = "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n  namespace: %s\n" % (
        name, namespace)
    if annotations:
        y += "  annotations:\n" + "".join("    %s: %s\n" % (k, v) for k, v in annotations.items())
    y += "spec:\n  broker: %s\n" % broker
    if filter_attrs:
        y += "  filter:\n    attributes:\n" + "".join(
            "      %s: %s\n" % (k, json.dumps(v)) for k, v in filter_attrs.items())
    if filters:
        y += "  filters:\n" + _indent(filters, 4)
    if delivery:
        y += "  delivery:\n" + _indent(delivery, 4)
    y += "  subscriber:\n    uri: %s\n" % subscriber_uri
    return y + "---\n"


def _indent(text, n):
    return "".join(" " * n + line + "\n" for line in text.strip("\n").splitlines())


class KafkaMock:
    """librdkafka's mock cluster in its own process (tests/tools/kafka_mock): it outlives any number
    of cebroker restarts. cmd() sends a fault command ("down all", "up 2", "err Produce 3
    NOT_ENOUGH_REPLICAS", "topic NAME PARTITIONS"...) and returns the answer."""

    def __init__(self, brokers=3):
        top = os.environ.get("top_builddir") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..")
        path = os.path.join(top, "tests", "tools", "kafka_mock")
        self.proc = subprocess.Popen([path, "-b", str(brokers)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("bootstrap.servers="):
            raise AssertionError("kafka_mock did not start: %r" % line)
        self.bootstrap = line.strip().split("=", 1)[1]
        self.lock = threading.Lock()

    def cmd(self, line):
        with self.lock:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().decode().strip()
        if answer != "ok":
            raise AssertionError("kafka_mock: %s: %s" % (line, answer))
        return answer

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)
        self.proc.stdout.close()


def kafka_broker_yaml(bootstrap, name="default", namespace="default", delivery=None, config=None):
    """A Broker of class Kafka with its ConfigMap (Knative's keys plus any in `config`)."""
    data = {"bootstrap.servers": bootstrap, "default.topic.partitions": "10",
            "default.topic.replication.factor": "1"}
    data.update(config or {})
    y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-kafka\n  namespace: %s\ndata:\n" % (
        name, namespace)
    y += "".join("  %s: %s\n" % (k, json.dumps(v)) for k, v in data.items())
    y += "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: %s\n" % name
    y += "  namespace: %s\n  annotations:\n    eventing.knative.dev/broker.class: Kafka\n" % namespace
    y += "spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n    name: %s-kafka\n" % name
    if delivery:
        y += "  delivery:\n" + _indent(delivery, 4)
    return y + "---\n"


def kafka_source_yaml(name, bootstrap, topics, sink, namespace="default", api="v1beta1",
                      extra=None, labels=None, delivery=None):
    """A KafkaSource; sink is a uri string or a (kind, name) ref to a Broker or KafkaSink."""
    y = "apiVersion: sources.knative.dev/%s\nkind: KafkaSource\nmetadata:\n  name: %s\n" % (api, name)
    y += "  namespace: %s\n" % namespace
    if labels:
        y += "  labels:\n" + "".join("    %s: %s\n" % (k, json.dumps(v)) for k, v in labels.items())
    y += "spec:\n  bootstrapServers:\n" + "".join("  - %s\n" % b for b in bootstrap.split(","))
    y += "  topics:\n" + "".join("  - %s\n" % t for t in topics)
    if extra:
        y += _indent(extra, 2)
    if delivery:
        y += "  delivery:\n" + _indent(delivery, 4)
    if isinstance(sink, str):
        y += "  sink:\n    uri: %s\n" % sink
    else:
        api_of = {"Broker": "eventing.knative.dev/v1", "KafkaSink": "eventing.knative.dev/v1alpha1"}
        y += "  sink:\n    ref:\n      apiVersion: %s\n      kind: %s\n      name: %s\n" % (
            api_of[sink[0]], sink[0], sink[1])
    return y + "---\n"


def kafka_sink_yaml(name, bootstrap, topic, namespace="default", content_mode=None,
                    partitions=None, replication=None):
    y = "apiVersion: eventing.knative.dev/v1alpha1\nkind: KafkaSink\nmetadata:\n  name: %s\n" % name
    y += "  namespace: %s\nspec:\n  topic: %s\n  bootstrapServers:\n" % (namespace, topic)
    y += "".join("  - %s\n" % b for b in bootstrap.split(","))
    if content_mode:
        y += "  contentMode: %s\n" % content_mode
    if partitions:
        y += "  numPartitions: %d\n" % partitions
    if replication:
        y += "  replicationFactor: %d\n" % replication
    return y + "---\n"


def kcat_read(bootstrap, topic, timeout=30):
    """Every record of a topic, as kcat (an independent Kafka client) sees it: a list of dicts with
    key, payload, partition, offset and headers (a dict)."""
    out = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J",
                          "-q"], capture_output=True, timeout=timeout, check=True).stdout.decode()
    recs = []
    for line in out.splitlines():
        if line.strip():
            rec = json.loads(line)
            h = rec.get("headers") or []
            rec["headers"] = dict(zip(h[0::2], h[1::2]))
            recs.append(rec)
    return recs


def kcat_write(bootstrap, topic, value, key=None, headers=None, partition=None):
    """Produce one record with kcat."""
    cmd = ["kcat", "-P", "-b", bootstrap, "-t", topic]
    if key is not None:
        cmd += ["-k", key]
    if partition is not None:
        cmd += ["-p", str(partition)]
    for k, v in (headers or {}).items():
        cmd += ["-H", "%s=%s" % (k, v)]
    subprocess.run(cmd, input=value if isinstance(value, bytes) else value.encode(), timeout=30,
                   check=True, capture_output=True)


def main():
    """Run the calling module's tests; exit 0 on success, 1 on failure."""
    prog = unittest.main(module="__main__", verbosity=2, exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


# ---- NATS: a real nats-server -js, and a small client of the NATS text protocol (independent of
# the daemon's nats.c) ----

def memory_suites_on(broker_yaml):
    """Point the memory channel's end-to-end suites (test_filters_e2e, test_reply, test_delivery)
    at another Broker: broker_yaml(name=, namespace=, delivery=) gives its YAML. From a test
    program's setUpModule; its classes then subclass the suites' unchanged."""
    import test_delivery
    import test_filters_e2e
    import test_reply
    for suite in (test_delivery, test_filters_e2e, test_reply):
        suite.broker_yaml = broker_yaml


class TcpRelay:
    """A TCP relay on 127.0.0.1 to a local port, which the test can cut as a network would be cut:
    cut() keeps every connection open and drops what either side sends (nothing arrives, nothing
    is refused or reset), also on connections made meanwhile; mend() relays again, for the
    connections made after it. Only loopback, and it stops with close()."""

    def __init__(self, target_port):
        self.target = target_port
        self.cut_at = None  # time.monotonic() of the cut, None while relaying
        self.epoch = 0      # a connection made before the last mend stays silent
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.socks = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self):
        self.cut_at = time.monotonic()

    def mend(self):
        self.epoch += 1
        self.cut_at = None

    def _accept(self):
        while not self.closed:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                a.close()
                continue
            self.socks += [a, b]
            epoch = self.epoch
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst, epoch), daemon=True).start()

    def _pump(self, src, dst, epoch):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if self.cut_at is not None or epoch != self.epoch:
                continue  # cut: dropped on the floor
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self):
        self.closed = True
        for s in [self.lsock] + self.socks:
            try:
                s.close()
            except OSError:
                pass


def free_port():
    """A port below the kernel's ephemeral range (tests/tools/freeport.py): a server killed and
    started again on it finds it free."""
    _tools_path()
    import freeport
    return freeport.free_port()


class NatsServer:
    """nats-server -js on loopback, a free port and a temporary store; stopped by its pid."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="cebtest-nats-")
        self.port = free_port()
        self.url = "nats://127.0.0.1:%d" % self.port
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                c = NatsClient(self.url, timeout=1)
                ok = c.request("$JS.API.INFO", b"", timeout=1)
                c.close()
                return ok is not None
            except OSError:
                return False
        wait_for(up, 20, interval=0.05, what="nats-server on port %d" % self.port)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class NatsClient:
    """A blocking client of the NATS text protocol: publish (with headers), subscribe, request."""

    def __init__(self, url, timeout=10):
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""
        self.sid = 0
        self.info = json.loads(self._line().split(b" ", 1)[1])
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,'
                          b'"no_responders":true,"protocol":1}\r\nPING\r\n')
        while self._line() != b"PONG":
            pass

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise OSError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out

    def subscribe(self, subject):
        self.sid += 1
        self.sock.sendall(b"SUB %s %d\r\n" % (subject.encode(), self.sid))
        return self.sid

    def publish(self, subject, payload=b"", headers=None, reply=None):
        if isinstance(payload, str):
            payload = payload.encode()
        r = (b" " + reply.encode()) if reply else b""
        if headers:
            h = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                           for k, v in headers.items()) + b"\r\n"
            self.sock.sendall(b"HPUB %s%s %d %d\r\n%s%s\r\n" % (
                subject.encode(), r, len(h), len(h) + len(payload), h, payload))
        else:
            self.sock.sendall(b"PUB %s%s %d\r\n%s\r\n" % (subject.encode(), r, len(payload), payload))

    def next_msg(self, timeout=10):
        """(subject, headers dict, payload) of the next message, or None after timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                line = self._line()
                if line == b"PING":
                    self.sock.sendall(b"PONG\r\n")
                    continue
                parts = line.split(b" ")
                if parts[0] == b"MSG":
                    return parts[1].decode(), {}, self._bytes(int(parts[-1]))
                if parts[0] == b"HMSG":
                    hlen, total = int(parts[-2]), int(parts[-1])
                    raw_ = self._bytes(total)
                    hdrs = {}
                    for hl in raw_[:hlen].split(b"\r\n")[1:]:
                        if b":" in hl:
                            k, v = hl.split(b":", 1)
                            hdrs[k.decode()] = v.strip().decode()
                    return parts[1].decode(), hdrs, raw_[hlen:]
                if parts[0].startswith(b"-ERR"):
                    raise OSError(line.decode())
        except socket.timeout:
            return None

    def request(self, subject, payload=b"", headers=None, timeout=10):
        """Publish with a fresh inbox as reply subject; the payload (and headers) of the answer."""
        inbox = "_INBOX.cebtest.%d.%d" % (os.getpid(), self.sid + 1)
        self.subscribe(inbox)
        self.publish(subject, payload, headers, reply=inbox)
        m = self.next_msg(timeout)
        self.sock.sendall(b"UNSUB %d\r\n" % self.sid)
        return m

    def js(self, api, doc=None, timeout=10):
        """A JetStream API call ($JS.API.<api>) with a JSON body; the JSON answer."""
        m = self.request("$JS.API." + api, json.dumps(doc).encode() if doc is not None else b"",
                         timeout=timeout)
        return json.loads(m[2]) if m else None

    def stream_msg(self, stream, seq):
        """Message seq of a stream: (subject, headers dict, data bytes), or None."""
        import base64
        doc = self.js("STREAM.MSG.GET." + stream, {"seq": seq})
        if not doc or "message" not in doc:
            return None
        m = doc["message"]
        hdrs = {}
        raw_h = base64.b64decode(m.get("hdrs", "")) if m.get("hdrs") else b""
        for hl in raw_h.split(b"\r\n")[1:]:
            if b":" in hl:
                k, v = hl.split(b":", 1)
                hdrs[k.decode()] = v.strip().decode()
        return m["subject"], hdrs, base64.b64decode(m.get("data", ""))

    def close(self):
        self.sock.close()


def nats_broker_yaml(url, name="default", namespace="default", delivery=None, annotations=None,
                     config=None):
    """A NatsJetStreamBroker with a ConfigMap of its own (key eventing-nats: url; key config:
    stream and consumer settings)."""
    cm = "%s-nats-config" % name
    y = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n"
         "  eventing-nats: |\n    url: %s\n" % (cm, namespace, url))
    if config:
        y += "  config: |\n" + _indent(config, 4)
    y += "---\napiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: %s\n" \
         "  namespace: %s\n  annotations:\n    eventing.knative.dev/broker.class: NatsJetStreamBroker\n" % (
             name, namespace)
    for k, v in (annotations or {}).items():
        y += "    %s: %s\n" % (k, json.dumps(v) if not isinstance(v, str) else "'%s'" % v)
    y += "spec:\n  config:\n    apiVersion: v1\n    kind: ConfigMap\n    name: %s\n" % cm
    if delivery:
        y += "  delivery:\n" + _indent(delivery, 4)
    return y + "---\n"


# ---- RabbitMQ: a private rabbitmq-server, its kinds, and an independent client (python3-pika) ----

def _tools_path():
    tools = os.path.join(os.environ.get("top_srcdir", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")), "tests", "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)


def _rabbitmq_tool():
    _tools_path()
    import rabbitmq_server
    return rabbitmq_server


class RabbitMQ:
    """A rabbitmq-server of the test's own (tests/tools/rabbitmq_server.py): loopback, free ports, a
    temporary directory, stopped by its pid. kill() is a crash; start() again keeps port and data."""

    def __init__(self):
        self.tool = _rabbitmq_tool()
        if not self.tool.available():
            raise unittest.SkipTest("rabbitmq-server is not installed (scripts/install-deps)")
        self.dir = tempfile.mkdtemp(prefix="cebtest-rmq-")
        self.port = self.tool.start(self.dir)

    def start(self):
        self.port = self.tool.start(self.dir)

    def kill(self):
        self.tool.kill(self.dir)

    def pid(self):
        return self.tool._state(self.dir)["pid"]

    def ctl(self, *args):
        """rabbitmqctl ARGS against this server; its output as rows of tab-separated fields."""
        return [line.split("\t") for line in self.tool.ctl(self.dir, *args).splitlines()]

    def close(self):
        self.tool.stop(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


def pika_module():
    """python3-pika, the independent AMQP client the tests check the wire with (Debian's package
    lives in the system interpreter's dist-packages, which another python3 may not search)."""
    try:
        import pika
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        import pika
    return pika


def rabbitmq_secret_yaml(port, name="rabbitmq", namespace="default"):
    return ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n"
            "stringData:\n  uri: amqp://127.0.0.1:%d\n  username: guest\n  password: guest\n---\n"
            % (name, namespace, port))


def rabbitmq_broker_yaml(port, name="default", namespace="default", delivery=None,
                         queue_type=None, secret=True):
    y = rabbitmq_secret_yaml(port, namespace=namespace) if secret else ""
    y += ("apiVersion: eventing.knative.dev/v1alpha1\nkind: RabbitmqBrokerConfig\nmetadata:\n"
          "  name: %s-config\n  namespace: %s\nspec:\n  rabbitmqClusterReference:\n"
          "    connectionSecret:\n      name: rabbitmq\n" % (name, namespace))
    if queue_type:
        y += "  queueType: %s\n" % queue_type
    y += "---\n"
    y += ("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: %s\n"
          "  namespace: %s\n  annotations:\n    eventing.knative.dev/broker.class: RabbitMQBroker\n"
          "spec:\n  config:\n    apiVersion: eventing.knative.dev/v1alpha1\n"
          "    kind: RabbitmqBrokerConfig\n    name: %s-config\n" % (name, namespace, name))
    if delivery:
        y += "  delivery:\n" + _indent(delivery, 4)
    return y + "---\n"


def rabbitmq_source_yaml(name, queue, exchange, sink, namespace="default", parallelism=None,
                         extra=""):
    y = ("apiVersion: sources.knative.dev/v1alpha1\nkind: RabbitmqSource\nmetadata:\n  name: %s\n"
         "  namespace: %s\nspec:\n  rabbitmqClusterReference:\n    connectionSecret:\n"
         "      name: rabbitmq\n  rabbitmqResourcesConfig:\n    queueName: %s\n"
         "    exchangeName: %s\n" % (name, namespace, queue, exchange))
    if parallelism:
        y += "    parallelism: %d\n" % parallelism
    y += "  sink:\n    uri: %s\n" % sink
    return y + extra + "---\n"
