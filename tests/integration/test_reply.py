"""Replies: a 200 whose body is a CloudEvent goes back into the same Broker and reaches the Trigger
that matches it; 202 is never a reply; a 200 body that is not an event is a failed delivery; a reply
loop stops at the knativebrokerttl."""

import json
import time
import unittest

from cebtest import Daemon, Subscriber, binary_headers, broker_yaml, main, trigger_yaml, wait_for


def reply(type, id, data=b'{"ok":true}'):
    return (200, {"ce-specversion": "1.0", "ce-id": id, "ce-type": type, "ce-source": "/replier",
                  "Content-Type": "application/json"}, data)


class Replies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        s = cls.sub = Subscriber()
        dls = "deadLetterSink:\n  uri: %s\n" % s.at("/dls")
        cfg = broker_yaml()
        cfg += trigger_yaml("ask", s.at("/ask"), filter_attrs={"type": "question"})
        cfg += trigger_yaml("answers", s.at("/answers"), filter_attrs={"type": "answer"})
        cfg += trigger_yaml("structured-reply", s.at("/structured-reply"),
                            filter_attrs={"type": "question2"})
        cfg += trigger_yaml("accepted", s.at("/accepted"), filter_attrs={"type": "accepted-with-body"})
        cfg += trigger_yaml("garbage", s.at("/garbage"), filter_attrs={"type": "garbage"},
                            delivery="retry: 1\n" + dls)
        cfg += trigger_yaml("loop", s.at("/loop"), filter_attrs={"type": "loop"})
        cfg += trigger_yaml("empty-reply", s.at("/empty-reply"), filter_attrs={"type": "question3"})
        s.responses["/ask"] = [reply("answer", "a-1")]
        s.responses["/structured-reply"] = [(200, {"Content-Type": "application/cloudevents+json"},
                                             json.dumps({"specversion": "1.0", "id": "a-2",
                                                         "type": "answer", "source": "/r",
                                                         "data": {"n": 2}}).encode())]
        s.responses["/accepted"] = [(202, {"ce-specversion": "1.0", "ce-id": "nope", "ce-type": "answer",
                                           "ce-source": "/r"}, b"{}")]
        s.responses["/garbage"] = [(200, {"Content-Type": "text/html"}, b"<html>hello</html>")]
        s.responses["/loop"] = lambda req: reply("loop", "again")
        s.responses["/empty-reply"] = [(200, {"ce-specversion": "1.0", "ce-id": "a-3", "ce-type": "answer",
                                              "ce-source": "/r"}, b"")]
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def post(self, type, id):
        st, _, body = self.d.post("/default/default", binary_headers(id=id, type=type))
        self.assertEqual(st, 202, body)

    def test_binary_reply_is_routed_to_the_trigger_that_matches_it(self):
        self.post("question", "q-1")
        a = wait_for(lambda: [x for x in self.sub.got("/answers") if x.ce("id") == "a-1"], 5,
                     what="a-1")[0]
        self.assertEqual(a.ce("source"), "/replier")
        self.assertEqual(a.body, b'{"ok":true}')
        self.assertIsNone(a.ce("knativebrokerttl"))

    def test_structured_reply_is_routed_too(self):
        self.post("question2", "q-2")
        wait_for(lambda: [x for x in self.sub.got("/answers") if x.ce("id") == "a-2"], 5, what="a-2")

    def test_a_binary_reply_without_data_is_a_reply_too(self):
        self.post("question3", "q-3")
        a = wait_for(lambda: [x for x in self.sub.got("/answers") if x.ce("id") == "a-3"], 5, what="a-3")
        self.assertEqual(a[0].body, b"")

    def test_202_with_a_body_is_never_a_reply(self):
        self.post("accepted-with-body", "acc-1")
        self.sub.wait("/accepted", 1)
        time.sleep(0.5)
        self.assertFalse([x for x in self.sub.got("/answers") if x.ce("id") == "nope"])

    def test_a_200_body_that_is_not_an_event_is_a_failed_delivery(self):
        self.post("garbage", "g-1")
        d = wait_for(lambda: [x for x in self.sub.got("/dls") if x.ce("id") == "g-1"], 5, what="dls")
        self.assertEqual(len(self.sub.got("/garbage")), 2, "retried like a failure")
        self.assertEqual(d[0].ce("knativeerrorcode"), "502")

    def test_a_reply_loop_stops_at_the_ttl(self):
        self.post("loop", "loop-start")
        # 255 passes: the event itself, then 254 replies; the 255th reply is dropped.
        wait_for(lambda: len(self.sub.got("/loop")) >= 255, 30, what="255 loop deliveries")
        time.sleep(1.0)
        self.assertEqual(len(self.sub.got("/loop")), 255)
        wait_for(lambda: "knativebrokerttl exhausted" in self.d.log(), 5, what="loop guard log line")


if __name__ == "__main__":
    main()
