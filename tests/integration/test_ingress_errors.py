"""The HTTP and CloudEvents rows of the bad-input catalogue (shared reference reliability.md, 2.1 and
2.2): each gets its status and a one-line reason, nothing is enqueued, and the daemon keeps serving."""

import json
import socket
import time
import unittest

from cebtest import Daemon, Subscriber, binary_headers, broker_yaml, main, post, raw, trigger_yaml, wait_for

GOOD = {"specversion": "1.0", "id": "x", "type": "t", "source": "/s"}
STRUCT = {"Content-Type": "application/cloudevents+json"}


class IngressErrors(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        cls.d = Daemon(broker_yaml() + trigger_yaml("all", cls.sub.at("/all")),
                       args=["--max-event-size", "65536", "--channel-max-events", "100000"])

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def setUp(self):
        self.seen = len(self.sub.got("/all"))

    def tearDown(self):
        # Nothing bad was enqueued: every event delivered during the test is one it meant to accept.
        time.sleep(0.1)
        bad = [r.event().get("id") for r in self.sub.got("/all")[self.seen:]
               if not str(r.event().get("id", "")).startswith("ok-")]
        self.assertEqual(bad, [], "refused input reached a subscriber")
        # The daemon keeps serving.
        st, _, _ = self.d.post("/default/default", binary_headers(id="ok-alive"))
        self.assertEqual(st, 202)

    def expect(self, status, headers, body=b"", path="/default/default", method="POST", reason=None):
        st, h, b = self.d.post(path, headers, body, method)
        self.assertEqual(st, status, b)
        if reason:
            self.assertIn(reason, b.decode())
        return h, b

    def structured(self, status, doc, reason=None):
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return self.expect(status, STRUCT, body, reason=reason)

    # --- 2.1 HTTP framing ---
    def test_H1_other_methods_get_405_with_allow(self):
        for m in ("GET", "PUT", "DELETE", "PATCH"):
            h, _ = self.expect(405, {}, b"", method=m)
            self.assertIn("POST", h["allow"])
        self.assertEqual(self.d.post("/healthz", {}, b"", "GET")[0], 200)

    def test_H2_unknown_path_or_broker_gets_404(self):
        self.expect(404, binary_headers(), path="/default/nope", reason="no broker at /default/nope")
        self.expect(404, binary_headers(), path="/")
        self.expect(404, binary_headers(), path="/default/default/extra")

    def test_H3_options_answers_the_webhook_handshake(self):
        h, _ = self.expect(200, {"WebHook-Request-Origin": "example.com"}, method="OPTIONS")
        self.assertIn("POST", h["allow"])
        self.assertEqual(h["webhook-allowed-origin"], "*")

    def test_H4_body_over_the_limit_with_content_length_gets_413_before_the_body(self):
        out = raw(self.d.port, b"POST /default/default HTTP/1.1\r\nHost: x\r\nce-id: 1\r\n"
                  b"Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:100])
        self.assertNotIn(b"100 Continue", out)

    def test_H5_chunked_body_over_the_limit_gets_413(self):
        chunk = b"x" * 8192
        req = b"POST /default/default HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" \
              b"ce-specversion: 1.0\r\nce-id: big\r\nce-type: t\r\nce-source: /s\r\n\r\n"
        req += (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 10 + b"0\r\n\r\n"
        out = raw(self.d.port, req)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:100])

    def test_H6_huge_header_block_is_refused_without_crashing(self):
        out = raw(self.d.port, b"POST /default/default HTTP/1.1\r\nHost: x\r\n" +
                  b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 100) for i in range(2000)) + b"\r\n")
        self.assertRegex(out[:12].decode(), r"HTTP/1\.1 (431|413|400)")

    def test_H6b_the_default_header_limit_is_16_kib(self):
        # 16 KiB of request line and headers pass; one byte more gets cebroker's own 431 in text.
        base = (b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                b"ce-specversion: 1.0\r\nce-id: %s\r\nce-type: t\r\nce-source: /s\r\n")
        for total, id, want in ((16384, b"ok-16k", b"HTTP/1.1 202 "), (16385, b"big-16k", b"HTTP/1.1 431 ")):
            head = base % id
            pad = total - len(head) - len(b"x-pad: \r\n\r\n")
            req = head + b"x-pad: " + b"v" * pad + b"\r\n\r\n"
            self.assertEqual(len(req), total)
            out = raw(self.d.port, req)
            self.assertTrue(out.startswith(want), out[:200])
            if want.startswith(b"HTTP/1.1 431"):
                self.assertIn(b"16385 bytes, over the limit of 16384 bytes", out)

    def test_H7_huge_request_line_is_refused(self):
        out = raw(self.d.port, b"POST /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertRegex(out[:12].decode(), r"HTTP/1\.1 (414|431|413|400)")

    def test_H14_conflicting_framing_never_makes_two_events(self):
        body = b"x"
        req = (b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
               b"Transfer-Encoding: chunked\r\nce-specversion: 1.0\r\nce-id: smuggle\r\nce-type: t\r\n"
               b"ce-source: /s\r\n\r\n1\r\nx\r\n0\r\n\r\n"
               b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
               b"ce-specversion: 1.0\r\nce-id: smuggled\r\nce-type: t\r\nce-source: /s\r\n\r\n")
        raw(self.d.port, req, until_close=True, timeout=2)
        time.sleep(0.3)
        ids = [r.ce("id") for r in self.sub.got("/all")]
        self.assertLessEqual(ids.count("smuggle") + ids.count("smuggled"), 2)
        # Whatever MHD made of it, only well-formed events could be accepted; drop them from the
        # "nothing bad enqueued" check.
        self.seen = len(self.sub.got("/all"))

    def test_H15_client_reset_mid_body_enqueues_nothing(self):
        s = socket.create_connection(("127.0.0.1", self.d.port))
        s.sendall(b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                  b"ce-specversion: 1.0\r\nce-id: reset\r\nce-type: t\r\nce-source: /s\r\n\r\nabc")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        time.sleep(0.2)

    def test_H17_pipelined_requests_are_each_processed_once(self):
        one = (b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
               b"ce-specversion: 1.0\r\nce-id: ok-pipe-%d\r\nce-type: t\r\nce-source: /s\r\n\r\n")
        out = raw(self.d.port, b"".join(one % i for i in range(3)) +
                  b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=3,
                  until_close=True)
        self.assertEqual(out.count(b"HTTP/1.1 202"), 3)
        for i in range(3):
            wait_for(lambda: [r for r in self.sub.got("/all") if r.ce("id") == "ok-pipe-%d" % i], 5)

    def test_H18_control_bytes_in_header_values_are_refused(self):
        out = raw(self.d.port, b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                  b"ce-specversion: 1.0\r\nce-id: a\x01b\r\nce-type: t\r\nce-source: /s\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:100])

    # --- 2.2 CloudEvents content ---
    def test_C1_malformed_json_gets_400(self):
        for body in (b'{"specversion": "1.0", "id": "x"', b'{"id": "x"} trailing', b'{"n": NaN}',
                     b"{'id': 'x'}", b""):
            self.structured(400, body)

    def test_C2_json_that_is_not_an_object_gets_400(self):
        for body in (b"[]", b'"event"', b"42", b"null"):
            self.structured(400, body)

    def test_C3_missing_required_attribute_is_named(self):
        for attr in ("id", "source", "specversion", "type"):
            doc = dict(GOOD)
            del doc[attr]
            _, b = self.structured(400, doc)
            self.assertIn(attr, b.decode())
            h = binary_headers()
            del h["ce-" + attr]
            _, b = self.expect(400, h)
            self.assertIn(attr, b.decode())

    def test_C4_empty_required_attribute_gets_400(self):
        self.structured(400, dict(GOOD, id=""), reason="id")
        self.expect(400, binary_headers(id=""), reason="id")

    def test_C5_wrong_specversion_gets_400(self):
        for v in ("2.0", "1", 1.0, "0.2"):
            self.structured(400, dict(GOOD, specversion=v), reason="specversion")

    def test_C6_wrong_attribute_types_get_400(self):
        self.structured(400, dict(GOOD, time="yesterday"), reason="time")
        self.structured(400, dict(GOOD, time="2026-02-30T00:00:00Z"), reason="time")
        self.structured(400, dict(GOOD, source="not a uri ref"), reason="source")
        self.structured(400, dict(GOOD, dataschema="/relative"), reason="dataschema")
        self.structured(400, dict(GOOD, myint=4247483647))
        self.structured(400, dict(GOOD, myint=42.42))
        self.expect(400, binary_headers(time="2026-13-01T00:00:00Z"), reason="time")

    def test_C7_invalid_attribute_names_get_400(self):
        # ("data" is the data member in JSON; as a ce- header it is a forbidden attribute name.)
        for name in ("Foo", "a_b", "a-b", "caf\u00e9", ""):
            self.structured(400, dict(GOOD, **{name: "v"}))
        self.expect(400, dict(binary_headers(), **{"ce-data": "v"}))
        self.expect(400, dict(binary_headers(), **{"ce-a_b": "v"}))

    def test_C8_data_and_data_base64_together_or_bad_base64_get_400(self):
        self.structured(400, dict(GOOD, data="x", data_base64="eA=="))
        self.structured(400, dict(GOOD, data_base64="not base64!"))

    def test_C9_json_string_data_is_not_parsed_again(self):
        self.structured(202, dict(GOOD, id="ok-c9", datacontenttype="application/json", data='{"a":1}'))
        r = wait_for(lambda: [x for x in self.sub.got("/all") if x.ce("id") == "ok-c9"], 5)[0]
        self.assertEqual(r.body, b'"{\\"a\\":1}"')

    def test_C10_ce_datacontenttype_in_binary_mode_gets_400(self):
        self.expect(400, dict(binary_headers(), **{"ce-datacontenttype": "text/plain"}),
                    reason="datacontenttype")

    def test_C11_duplicate_json_members_get_400(self):
        self.structured(400, b'{"specversion":"1.0","id":"x","id":"y","type":"t","source":"/s"}')

    def test_C12_duplicate_ce_headers_get_400(self):
        out = raw(self.d.port, b"POST /default/default HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                  b"ce-specversion: 1.0\r\nce-id: a\r\nce-id: b\r\nce-type: t\r\nce-source: /s\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out[:100])

    def test_C13_invalid_percent_encoding_gets_400(self):
        for v in ("%ZZ", "%E", "%E2%82", "%C0%A0", "%ED%A0%80", "%00", "%EF%BF%BF"):
            self.expect(400, binary_headers(subject=v))

    def test_C14_legal_odd_encodings_are_decoded(self):
        self.expect(202, binary_headers(id="ok-c14", subject="caf%c3%a9%41", comment='"a b"'))
        r = wait_for(lambda: [x for x in self.sub.got("/all") if x.ce("id") == "ok-c14"], 5)[0]
        self.assertEqual(r.ce("subject"), "caf%C3%A9A")
        self.assertEqual(r.ce("comment"), "a%20b")

    def test_C15_non_utf8_json_gets_400(self):
        self.structured(400, b'{"specversion":"1.0","id":"\xff","type":"t","source":"/s"}')

    def test_C17_deeply_nested_data_gets_400(self):
        self.structured(400, b'{"specversion":"1.0","id":"x","type":"t","source":"/s","data":' +
                        b"[" * 10000 + b"]" * 10000 + b"}")
        self.structured(202, b'{"specversion":"1.0","id":"ok-c17","type":"t","source":"/s","data":' +
                        b"[" * 20 + b"]" * 20 + b"}")

    def test_C18_too_many_extensions_or_huge_values_get_400(self):
        doc = dict(GOOD)
        for i in range(100):
            doc["ext%d" % i] = "v"
        self.structured(400, doc)
        self.structured(400, dict(GOOD, subject="s" * 5000))

    def test_C19_a_batch_with_one_bad_event_is_refused_whole(self):
        batch = [dict(GOOD, id="ok-never-%d" % i) for i in range(3)] + [dict(GOOD, id="")]
        self.expect(400, {"Content-Type": "application/cloudevents-batch+json"},
                    json.dumps(batch).encode())
        with self.sub.lock:
            self.assertFalse([r for r in self.sub.requests if (r.ce("id") or "").startswith("ok-never")])

    def test_C20_empty_batch_gets_202(self):
        self.expect(202, {"Content-Type": "application/cloudevents-batch+json"}, b"[]")

    def test_C21_batch_over_the_limit_gets_413(self):
        batch = [dict(GOOD, id="b%d" % i) for i in range(101)]
        self.expect(413, {"Content-Type": "application/cloudevents-batch+json"}, json.dumps(batch).encode())

    def test_C23_unknown_structured_format_gets_415(self):
        self.expect(415, {"Content-Type": "application/cloudevents+avro"}, b"\x00\x01")
        self.expect(415, {"Content-Type": "application/cloudevents+xml"}, b"<e/>")

    def test_C24_binary_mode_without_content_type_is_accepted(self):
        self.expect(202, binary_headers(id="ok-c24"), b"\x00raw")
        r = wait_for(lambda: [x for x in self.sub.got("/all") if x.ce("id") == "ok-c24"], 5)[0]
        self.assertEqual(r.body, b"\x00raw")
        self.assertNotIn("content-type", r.headers)

    def test_C25_same_source_and_id_twice_are_both_accepted(self):
        self.expect(202, binary_headers(id="ok-c25"))
        self.expect(202, binary_headers(id="ok-c25"))
        wait_for(lambda: len([x for x in self.sub.got("/all") if x.ce("id") == "ok-c25"]) == 2, 5)

    def test_ttl_exhausted_at_ingress_gets_400(self):
        self.expect(400, binary_headers(knativebrokerttl="0"), reason="knativebrokerttl")

    def test_full_memory_channel_answers_429_with_retry_after(self):
        sub = Subscriber()
        sub.hang.add("/stall")
        d = Daemon(broker_yaml() + trigger_yaml("stall", sub.at("/stall")),
                   args=["--channel-max-events", "5", "--max-inflight", "1", "--drain-timeout", "500"])
        try:
            codes = [d.post("/default/default", binary_headers(id="f%d" % i))[0] for i in range(7)]
            self.assertEqual(codes[:5], [202] * 5)
            st, h, body = d.post("/default/default", binary_headers(id="f-over"))
            self.assertEqual(st, 429, body)
            self.assertEqual(h.get("retry-after"), "1")
        finally:
            d.stop(timeout=60)
            sub.close()


if __name__ == "__main__":
    main()
