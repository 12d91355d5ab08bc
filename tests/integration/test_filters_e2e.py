"""Trigger filters on a running daemon: Triggers using each dialect (legacy attributes, exact, prefix,
suffix, all, any, not, cesql) receive exactly the events they match."""

import json
import time
import unittest

from cebtest import Daemon, Subscriber, binary_headers, broker_yaml, main, trigger_yaml, wait_for

EVENTS = [
    # id, type, source, extensions
    ("e1", "com.example.order.created", "/shop/eu", {"region": "eu", "priority": "5"}),
    ("e2", "com.example.order.deleted", "/shop/us", {"region": "us"}),
    ("e3", "org.other.ping", "/monitor", {}),
    ("e4", "com.example.order.created", "/warehouse", {"region": ""}),
]

TRIGGERS = {
    # name: (filter_attrs, filters, expected ids)
    "legacy": ({"type": "com.example.order.created"}, None, {"e1", "e4"}),
    "legacy-exists": ({"region": ""}, None, {"e1", "e2"}),  # "" = present with a non-empty value
    "exact": (None, "- exact:\n    type: com.example.order.deleted", {"e2"}),
    "prefix": (None, "- prefix:\n    type: com.example.", {"e1", "e2", "e4"}),
    "suffix": (None, "- suffix:\n    source: /eu", {"e1"}),
    "all": (None, "- all:\n    - prefix:\n        type: com.example.\n    - exact:\n        region: us",
            {"e2"}),
    "any": (None, "- any:\n    - exact:\n        type: org.other.ping\n    - suffix:\n        source: /us",
            {"e2", "e3"}),
    "not": (None, "- not:\n    prefix:\n      type: com.example.", {"e3"}),
    "cesql": (None, "- cesql: \"source LIKE '/shop/%' AND region = 'eu' AND INT(priority) > 3\"",
              {"e1"}),
    "cesql-exists": (None, "- cesql: \"EXISTS region AND NOT (type = 'com.example.order.deleted')\"",
                     {"e1", "e4"}),
    # filters wins over filter when both are set (Knative).
    "both": ({"type": "org.other.ping"}, "- exact:\n    source: /warehouse", {"e4"}),
    # A list of filters is an AND.
    "list": (None, "- prefix:\n    type: com.example.order\n- exact:\n    source: /shop/eu", {"e1"}),
}


class FiltersEndToEnd(unittest.TestCase):
    def test_each_dialect_receives_exactly_what_it_matches(self):
        sub = Subscriber()
        cfg = broker_yaml()
        for name, (attrs, filters, _) in TRIGGERS.items():
            cfg += trigger_yaml(name, sub.at("/" + name), filter_attrs=attrs, filters=filters)
        d = Daemon(cfg)
        try:
            for id, type, source, ext in EVENTS:
                st, _, body = d.post("/default/default", binary_headers(id=id, type=type, source=source, **ext))
                self.assertEqual(st, 202, body)
            # A marker every Trigger with a type-blind filter could see last.
            total = sum(len(v[2]) for v in TRIGGERS.values())
            wait_for(lambda: len(sub.got()) >= total, 10,
                     what="%d deliveries (got %d)" % (total, len(sub.got())))
            time.sleep(0.5)
            for name, (_, _, expected) in TRIGGERS.items():
                got = sorted(r.ce("id") for r in sub.got("/" + name))
                self.assertEqual(got, sorted(expected), "trigger %s" % name)
        finally:
            d.stop()
            sub.close()

    def test_typed_extensions_are_compared_by_their_canonical_string(self):
        sub = Subscriber()
        cfg = broker_yaml()
        cfg += trigger_yaml("int", sub.at("/int"), filters="- exact:\n    count: \"42\"")
        cfg += trigger_yaml("bool", sub.at("/bool"), filter_attrs={"flag": "true"})
        cfg += trigger_yaml("sql-int", sub.at("/sql-int"), filters="- cesql: \"count + 1 = 43\"")
        d = Daemon(cfg)
        try:
            ev = {"specversion": "1.0", "id": "typed", "type": "t", "source": "/s", "count": 42, "flag": True}
            st, _, body = d.post("/default/default", {"Content-Type": "application/cloudevents+json"},
                                 json.dumps(ev).encode())
            self.assertEqual(st, 202, body)
            for p in ("/int", "/bool", "/sql-int"):
                sub.wait(p, 1)
        finally:
            d.stop()
            sub.close()


if __name__ == "__main__":
    main()
