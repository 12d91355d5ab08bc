"""The delivery client (broker/delivery/h1.c, `--delivery-client native`, the default for plain
http:// subscribers at an IP address) against a raw subscriber that answers the way real servers
do: the request it writes, kept-alive and closed connections, chunked and close-delimited answers,
1xx interim answers, replies in each framing, answers that are not HTTP or stop short; and the same
deliveries through libcurl (`--delivery-client libcurl`)."""

import base64
import json
import unittest

from cebtest import (Daemon, RawServer, Subscriber, binary_headers, broker_yaml, main, run_cli,
                     trigger_counter, trigger_yaml, wait_for)

REPLY = (b"ce-specversion: 1.0\r\nce-id: reply-%s\r\nce-type: reply\r\nce-source: /raw\r\n"
         b"Content-Type: application/json\r\n")


def chunked(data, size=7):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += b"%x;ext=1\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


class ScriptedServer(RawServer):
    """A raw HTTP/1.1 subscriber: the answer to each request is chosen by the event's ce-id prefix
    (see answer()); records (connection number, head bytes, body) of every request read."""

    def at(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    @staticmethod
    def answer(id):
        """(bytes to send, close afterwards)"""
        data = json.dumps({"answer": id, "pad": "x" * 40}).encode()
        if id.startswith("big-reply"):
            data = json.dumps({"answer": id, "pad": "y" * 200000}).encode()
            return (b"HTTP/1.1 201 Created\r\n" + REPLY % id.encode() +
                    b"Transfer-Encoding: chunked\r\n\r\n" + chunked(data, 8191), False)
        if id.startswith("chunked-reply"):
            return (b"HTTP/1.1 200 OK\r\n" + REPLY % id.encode() +
                    b"Transfer-Encoding: chunked\r\n\r\n" + chunked(data), False)
        if id.startswith("close-reply"):
            return (b"HTTP/1.0 200 OK\r\n" + REPLY % id.encode() + b"\r\n" + data, True)
        if id.startswith("continue"):
            return (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", False)
        if id.startswith("conn-close"):
            return b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", True
        if id.startswith("garbage"):
            return b"SPDY/9 what\r\n\r\n", True
        if id.startswith("cut-chunk"):
            return (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked"
                    b"\r\n\r\n64\r\n0123456789", True)
        if id.startswith("error-body"):
            return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b"no such thing here"), False)
        return b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", False

    def serve(self, c, n):
        buf = b""
        try:
            while True:
                req, buf = self.read_request(c, buf)
                if req is None:
                    return
                head, headers, body = req
                id = headers.get("ce-id", "")
                with self.lock:
                    self.requests.append((n, head, body, id))
                data, close = self.answer(id)
                c.sendall(data)
                if close:
                    return
        except OSError:
            pass
        finally:
            c.close()

    def got(self, id):
        with self.lock:
            return [r for r in self.requests if r[3] == id]


counter = trigger_counter


class Client:
    """The cases, run against one daemon; the subclasses choose the client."""

    args = ()

    @classmethod
    def setUpClass(cls):
        cls.raw = ScriptedServer()
        cls.sub = Subscriber()
        cfg = broker_yaml()
        cfg += trigger_yaml("raw", cls.raw.at("/deliver/here?q=1#frag"), filter_attrs={"type": "raw"},
                            delivery="retry: 0\ndeadLetterSink:\n  uri: %s\n" % cls.sub.at("/dls"))
        cfg += trigger_yaml("replies", cls.sub.at("/replies"), filter_attrs={"type": "reply"})
        cfg += trigger_yaml("named", "http://localhost:%d/named" % cls.raw.port,
                            filter_attrs={"type": "named"})
        cls.d = Daemon(cfg, args=["--dispatchers", "1"] + list(cls.args))

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        cls.raw.close()

    def send(self, id, data=b'{"n":1}', **ext):
        h = binary_headers(id=id, type="raw", **ext)
        if data:
            h["Content-Type"] = "application/json"
        st, _, body = self.d.post("/default/default", h, data)
        self.assertEqual(st, 202, body)

    def delivered(self, id):
        return wait_for(lambda: self.raw.got(id), 10, what="the delivery of " + id)[0]

    def reply(self, id):
        return wait_for(lambda: [r for r in self.sub.got("/replies") if r.ce("id") == "reply-" + id],
                        10, what="the reply to " + id)[0]

    def dls(self, id):
        return wait_for(lambda: [r for r in self.sub.got("/dls") if r.ce("id") == id], 10,
                        what="the dead letter of " + id)[0]

    def test_the_request_is_a_plain_http_1_1_post(self):
        self.send("shape-1", b'{"shape":1}', myext="v")
        n, head, body, _ = self.delivered("shape-1")
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"POST /deliver/here?q=1 HTTP/1.1")
        fields = [l.split(b":", 1)[0].lower() for l in lines[1:]]
        self.assertEqual(len(fields), len(set(fields)), "a header sent twice: %r" % head)
        h = {l.split(b":", 1)[0].lower(): l.split(b":", 1)[1].strip() for l in lines[1:]}
        self.assertEqual(h[b"host"], b"127.0.0.1:%d" % self.raw.port)
        self.assertEqual(h[b"content-length"], b"%d" % len(body))
        self.assertEqual(h[b"content-type"], b"application/json")
        self.assertEqual(h[b"ce-myext"], b"v")
        self.assertEqual(h[b"ce-id"], b"shape-1")
        self.assertNotIn(b"expect", h)
        self.assertNotIn(b"ce-knativebrokerttl", h)
        self.assertEqual(body, b'{"shape":1}')

    def test_attribute_values_that_end_in_a_colon_are_sent(self):
        h = binary_headers(id="colon-1", type="raw", source="urn:acme:", subject="a:")
        self.assertEqual(self.d.post("/default/default", h, b"")[0], 202)
        head = self.delivered("colon-1")[1]
        self.assertIn(b"\r\nce-source: urn:acme:\r\n", head)
        self.assertIn(b"\r\nce-subject: a:\r\n", head)

    def test_an_event_without_data_goes_without_a_content_type(self):
        self.send("nodata-1", b"")
        _, head, body, _ = self.delivered("nodata-1")
        self.assertNotIn(b"content-type:", head.lower())
        self.assertIn(b"Content-Length: 0", head)
        self.assertEqual(body, b"")

    def test_kept_alive_connections_are_reused(self):
        # Each answer is taken before the next event goes, so that the connection is free again.
        before = counter(self.d, "delivered", "raw")
        self.send("reuse-a")
        first = self.delivered("reuse-a")[0]
        wait_for(lambda: counter(self.d, "delivered", "raw") == before + 1, 10, what="counted")
        for i in range(5):
            self.send("reuse-%d" % i)
            self.assertEqual(self.delivered("reuse-%d" % i)[0], first)
            wait_for(lambda: counter(self.d, "delivered", "raw") == before + 2 + i, 10,
                     what="counted")

    def test_a_host_name_goes_where_libcurl_resolved_it(self):
        # libcurl resolves localhost for the first delivery; the native client sends the next ones
        # to the address libcurl connected to, on a connection of its own kept alive.
        conns = []
        for i in range(3):
            h = binary_headers(id="named-%d" % i, type="named")
            self.assertEqual(self.d.post("/default/default", h, b"")[0], 202)
            conns.append(self.delivered("named-%d" % i)[0])
            # the answer taken before the next one starts, so that its connection is free
            wait_for(lambda: counter(self.d, "delivered", "named") == i + 1, 10, what="counted")
            head = self.raw.got("named-%d" % i)[0][1]
            self.assertIn(b"\r\nHost: localhost:%d\r\n" % self.raw.port, head)
        self.assertEqual(conns[1], conns[2])
        self.assertEqual(len(set(conns)), self.named_connections)

    def test_connection_close_opens_a_new_connection(self):
        self.send("conn-close-1")
        a = self.delivered("conn-close-1")[0]
        self.send("after-close-1")
        b = self.delivered("after-close-1")[0]
        self.assertNotEqual(a, b)

    def test_a_chunked_reply_is_published_whole(self):
        self.send("chunked-reply-1")
        r = self.reply("chunked-reply-1")
        self.assertEqual(json.loads(r.event()["data"])["answer"], "chunked-reply-1")

    def test_a_reply_of_200_kb_in_chunks_is_published_whole(self):
        self.send("big-reply-1")
        r = self.reply("big-reply-1")
        self.assertEqual(len(json.loads(r.event()["data"])["pad"]), 200000)

    def test_a_close_delimited_http_1_0_reply_is_published_whole(self):
        self.send("close-reply-1")
        r = self.reply("close-reply-1")
        self.assertEqual(json.loads(r.event()["data"])["answer"], "close-reply-1")

    def test_interim_1xx_answers_are_skipped(self):
        before = counter(self.d, "delivered", "raw")
        self.send("continue-1")
        self.delivered("continue-1")
        wait_for(lambda: counter(self.d, "delivered", "raw") > before, 10, what="delivered")

    def test_an_answer_that_is_not_http_is_a_failed_attempt(self):
        self.send("garbage-1")
        d = self.dls("garbage-1")
        self.assertIsNone(d.ce("knativeerrorcode"))
        self.assertEqual(len(self.raw.got("garbage-1")), 1)

    def test_a_2xx_cut_short_is_dead_lettered_as_502(self):
        self.send("cut-chunk-1")
        d = self.dls("cut-chunk-1")
        self.assertEqual(d.ce("knativeerrorcode"), "502")

    def test_an_error_body_in_chunks_is_the_dead_letters_error_data(self):
        self.send("error-body-1")
        d = self.dls("error-body-1")
        self.assertEqual(d.ce("knativeerrorcode"), "400")
        self.assertEqual(base64.b64decode(d.ce("knativeerrordata")), b"no such thing here")


class NativeClient(Client, unittest.TestCase):
    args = ()
    named_connections = 2


class LibcurlClient(Client, unittest.TestCase):
    args = ("--delivery-client", "libcurl")
    named_connections = 1


class LibcurlOnDemand(unittest.TestCase):
    """libcurl is opened by the first delivery that needs it (a host name here), not at start: a
    daemon whose subscribers are plain http at addresses never maps it (about 3.5 MB resident with
    what it brings and its init)."""

    def mapped(self):
        with open("/proc/%d/maps" % self.d.proc.pid) as f:
            return "libcurl" in f.read()

    def test_libcurl_is_opened_by_the_first_delivery_that_needs_it(self):
        sub = Subscriber()
        cfg = broker_yaml()
        cfg += trigger_yaml("addr", sub.at("/addr"), filter_attrs={"type": "addr"})
        cfg += trigger_yaml("named", "http://localhost:%d/named" % sub.port,
                            filter_attrs={"type": "named"})
        self.d = Daemon(cfg)
        try:
            for i in range(3):
                h = binary_headers(id="a%d" % i, type="addr")
                self.assertEqual(self.d.post("/default/default", h, b"")[0], 202)
            wait_for(lambda: len(sub.got("/addr")) == 3, 10, what="3 deliveries by address")
            self.assertFalse(self.mapped(), "libcurl mapped before any delivery needed it")
            h = binary_headers(id="n0", type="named")
            self.assertEqual(self.d.post("/default/default", h, b"")[0], 202)
            wait_for(lambda: sub.got("/named"), 10, what="the delivery to localhost")
            self.assertTrue(self.mapped(), "a delivery to a host name went without libcurl")
        finally:
            self.d.stop()
            sub.close()


class Option(unittest.TestCase):
    def test_an_unknown_client_is_refused(self):
        st, _, err = run_cli("run", "-f", "/dev/null", "--delivery-client", "wget")
        self.assertEqual(st, 2)
        self.assertIn("--delivery-client: native or libcurl", err)


if __name__ == "__main__":
    main()
