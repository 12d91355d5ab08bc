"""An event posted in binary, structured and batched mode reaches exactly the Triggers that match,
with every attribute and byte-identical data, in the mode each Trigger asks for."""

import json
import time
import unittest

from cebtest import Daemon, Subscriber, binary_headers, broker_yaml, main, trigger_yaml


class EndToEndModes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        cfg = broker_yaml()
        cfg += trigger_yaml("orders-binary", cls.sub.at("/orders-binary"),
                            filter_attrs={"type": "com.example.order"})
        cfg += trigger_yaml("orders-structured", cls.sub.at("/orders-structured"),
                            filter_attrs={"type": "com.example.order"}, delivery="format: json")
        cfg += trigger_yaml("by-ext", cls.sub.at("/by-ext"), filter_attrs={"region": "eu"})
        cfg += trigger_yaml("never", cls.sub.at("/never"), filter_attrs={"type": "com.example.nothing"})
        cfg += trigger_yaml("everything", cls.sub.at("/everything"))
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def find(self, path, id):
        return [r for r in self.sub.got(path) if r.event().get("id") == id]

    def wait_id(self, path, id, count=1):
        from cebtest import wait_for
        return wait_for(lambda: (lambda r: r if len(r) >= count else None)(self.find(path, id)),
                        10, what="event %s on %s" % (id, path))

    def test_binary_event_reaches_matching_triggers_with_every_attribute(self):
        data = b'{"order": 1, "price": 1.50, "note": "caf\xc3\xa9"}'
        h = binary_headers(id="bin-1", type="com.example.order", source="/shop/eu",
                           subject="order-1", time="2026-11-27T10:00:00.123Z",
                           dataschema="https://example.com/schema", region="eu",
                           comment="caf%C3%A9%20au%20lait", content_type="application/json")
        st, _, body = self.d.post("/default/default", h, data)
        self.assertEqual(st, 202, body)
        r = self.wait_id("/orders-binary", "bin-1")[0]
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.ce("specversion"), "1.0")
        self.assertEqual(r.ce("type"), "com.example.order")
        self.assertEqual(r.ce("source"), "/shop/eu")
        self.assertEqual(r.ce("subject"), "order-1")
        self.assertEqual(r.ce("time"), "2026-11-27T10:00:00.123Z")
        self.assertEqual(r.ce("dataschema"), "https://example.com/schema")
        self.assertEqual(r.ce("region"), "eu")
        self.assertEqual(r.ce("comment"), "caf%C3%A9%20au%20lait")
        self.assertIsNone(r.ce("knativebrokerttl"), "the loop guard must not leave the broker")
        self.assertIsNone(r.ce("datacontenttype"))
        self.assertEqual(r.headers.get("prefer"), "reply")
        self.assertEqual(r.headers.get("kn-namespace"), "default")
        # The structured Trigger gets the same event as JSON.
        s = self.wait_id("/orders-structured", "bin-1")[0]
        self.assertTrue(s.headers["content-type"].startswith("application/cloudevents+json"))
        doc = json.loads(s.body)
        self.assertEqual(doc["data"], {"order": 1, "price": 1.50, "note": "café"})
        self.assertIn(b'"price": 1.50', s.body, "JSON data must pass byte for byte, not re-encoded")
        self.assertEqual(doc["comment"], "café au lait")
        self.assertNotIn("knativebrokerttl", doc)
        self.wait_id("/by-ext", "bin-1")
        self.wait_id("/everything", "bin-1")
        time.sleep(0.3)
        self.assertEqual(self.find("/never", "bin-1"), [])
        self.assertEqual(len(self.find("/orders-binary", "bin-1")), 1, "exactly one delivery per Trigger")

    def test_structured_event_is_delivered_in_binary_mode_byte_identical(self):
        ev = {"specversion": "1.0", "id": "str-1", "type": "com.example.order", "source": "/shop",
              "datacontenttype": "application/json", "myint": 42, "mybool": True,
              "data": {"a": [1, 2.0, "x"], "b": None}}
        raw = json.dumps(ev, indent=1).encode()
        st, _, body = self.d.post("/default/default",
                                  {"Content-Type": "application/cloudevents+json; charset=UTF-8"}, raw)
        self.assertEqual(st, 202, body)
        r = self.wait_id("/orders-binary", "str-1")[0]
        # The data member's text exactly as sent (with its whitespace), as the binary body.
        start = raw.index(b'"data": ') + len(b'"data": ')
        self.assertEqual(r.body, raw[start:raw.rindex(b"}")].rstrip())
        self.assertEqual(r.ce("myint"), "42")
        self.assertEqual(r.ce("mybool"), "true")
        s = self.wait_id("/orders-structured", "str-1")[0]
        doc = json.loads(s.body)
        self.assertEqual(doc["myint"], 42, "an Integer extension stays an Integer")
        self.assertIs(doc["mybool"], True)
        self.assertEqual(doc["data"], ev["data"])
        self.assertEqual(self.find("/by-ext", "str-1"), [])

    def test_batch_events_are_each_routed(self):
        batch = [{"specversion": "1.0", "id": "batch-%d" % i, "type": "com.example.order",
                  "source": "/b", "data_base64": "AAEC/w=="} for i in range(3)]
        st, _, body = self.d.post("/default/default",
                                  {"Content-Type": "application/cloudevents-batch+json"},
                                  json.dumps(batch).encode())
        self.assertEqual(st, 202, body)
        for i in range(3):
            r = self.wait_id("/orders-binary", "batch-%d" % i)[0]
            self.assertEqual(r.body, b"\x00\x01\x02\xff")
            self.assertNotIn("content-type", r.headers, "no datacontenttype: no Content-Type invented")
            s = self.wait_id("/orders-structured", "batch-%d" % i)[0]
            self.assertEqual(json.loads(s.body)["data_base64"], "AAEC/w==")

    def test_binary_data_with_nul_bytes_is_byte_identical(self):
        data = bytes(range(256)) * 4
        st, _, _ = self.d.post("/default/default",
                               binary_headers(id="octets", type="com.example.order",
                                              content_type="application/octet-stream"), data)
        self.assertEqual(st, 202)
        self.assertEqual(self.wait_id("/orders-binary", "octets")[0].body, data)
        s = self.wait_id("/orders-structured", "octets")[0]
        import base64
        self.assertEqual(base64.b64decode(json.loads(s.body)["data_base64"]), data)

    def test_unmatched_event_is_accepted_and_delivered_only_to_the_catch_all(self):
        st, _, _ = self.d.post("/default/default", binary_headers(id="other-1", type="com.example.other"))
        self.assertEqual(st, 202)
        self.wait_id("/everything", "other-1")
        time.sleep(0.2)
        for p in ("/orders-binary", "/orders-structured", "/by-ext", "/never"):
            self.assertEqual(self.find(p, "other-1"), [], p)


if __name__ == "__main__":
    main()
