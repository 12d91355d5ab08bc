"""A RabbitMQ Broker end to end on a rabbitmq-server of the test's own: posts reach Triggers with
exact, prefix and CESQL filters; retries, the dead-letter sink and replies work as on the memory
channel; an independent AMQP client (python3-pika) finds the CloudEvent in what the Broker stored;
parallelism 1 keeps FIFO; a RabbitmqSource turns plain and CloudEvent messages that pika publishes
into the right events."""

import json
import threading
import time
import unittest

from cebtest import (Daemon, RabbitMQ, Subscriber, binary_headers, main, pika_module,
                     rabbitmq_broker_yaml, rabbitmq_source_yaml, trigger_yaml, wait_for)

PAR = {"rabbitmq.eventing.knative.dev/parallelism": '"20"'}


class RabbitMQBroker(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rmq = RabbitMQ()
        cls.pika = pika_module()
        cls.sub = s = Subscriber()
        dls = "deadLetterSink:\n  uri: %s\n" % s.at("/dls")
        cfg = rabbitmq_broker_yaml(cls.rmq.port)
        cfg += trigger_yaml("exact", s.at("/exact"), filter_attrs={"type": "com.example.order"},
                            annotations=PAR)
        cfg += trigger_yaml("prefix", s.at("/prefix"), filters="- prefix:\n    type: com.example.",
                            annotations=PAR)
        cfg += trigger_yaml("sql", s.at("/sql"),
                            filters="- cesql: \"region = 'eu' AND type LIKE '%.order'\"",
                            annotations=PAR)
        cfg += trigger_yaml("flaky", s.at("/flaky"), filter_attrs={"type": "flaky"},
                            delivery="retry: 2\nbackoffPolicy: linear\nbackoffDelay: PT0.2S\n" + dls)
        cfg += trigger_yaml("broken", s.at("/broken"), filter_attrs={"type": "broken"},
                            delivery="retry: 1\nbackoffDelay: PT0.1S\n" + dls)
        cfg += trigger_yaml("asks", s.at("/asks"), filter_attrs={"type": "question"})
        cfg += trigger_yaml("answers", s.at("/answers"), filter_attrs={"type": "answer"})
        cfg += trigger_yaml("fifo", s.at("/fifo"), filter_attrs={"type": "fifo"})
        s.responses["/flaky"] = [(500, {}, b"no"), (503, {}, b"no"), (200, {}, b"")]
        s.responses["/broken"] = [(500, {"Content-Type": "text/plain"}, b"it broke")]
        s.responses["/asks"] = [(200, {"ce-specversion": "1.0", "ce-id": "reply-1",
                                       "ce-source": "/answerer", "ce-type": "answer"}, b"42")]
        cfg += trigger_yaml("shared", s.at("/shared"), filter_attrs={"type": "shared"},
                            annotations=PAR)
        cfg += trigger_yaml("fifo2", s.at("/fifo2"), filter_attrs={"type": "fifo2"})
        # neither the subscriber nor the dead-letter sink takes it, twice; the third try does
        cfg += trigger_yaml("dlsdown", s.at("/dlsdown"), filter_attrs={"type": "dlsdown"},
                            delivery="retry: 0\ndeadLetterSink:\n  uri: %s\n" % s.at("/dls-down"))
        s.responses["/dlsdown"] = [(500, {}, b"")]
        s.responses["/dls-down"] = [(500, {}, b""), (500, {}, b""), (202, {}, b"")]
        cls.cfg = cfg
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        cls.rmq.close()

    def test_two_processes_share_a_triggers_queue_and_keep_fifo_across_them(self):
        d2 = Daemon(self.cfg)
        try:
            accepted = []
            for i in range(300):
                d = (self.d, d2)[i % 2]
                st, _, _ = d.post("/default/default", binary_headers(id="s-%d" % i, type="shared"))
                self.assertEqual(st, 202)
                st, _, _ = d.post("/default/default", binary_headers(id="o-%d" % i, type="fifo2"))
                self.assertEqual(st, 202)
                accepted.append("o-%d" % i)
            wait_for(lambda: len(self.sub.got("/shared")) >= 300 and
                     len(self.sub.got("/fifo2")) >= 300, 60, what="300 + 300 deliveries")
            time.sleep(1)
            shared = [r.ce("id") for r in self.sub.got("/shared")]
            self.assertEqual(sorted(shared), sorted("s-%d" % i for i in range(300)),
                             "each event once, over both processes")
            self.assertEqual([r.ce("id") for r in self.sub.got("/fifo2")], accepted)
            key = 'cebroker_delivered_total{namespace="default",trigger="shared",broker="default"}'
            n1, n2 = self.d.metrics().get(key, 0), d2.metrics().get(key, 0)
            self.assertGreater(min(n1, n2), 0, "both processes consumed: %d and %d" % (n1, n2))
        finally:
            d2.stop()

    def test_what_it_declares_in_rabbitmq_is_eventing_rabbitmqs_topology(self):
        self.assertIn(["b.default.default", "headers", "true"],
                      self.rmq.ctl("list_exchanges", "name", "type", "durable"))
        queues = {r[0]: r[1:] for r in
                  self.rmq.ctl("list_queues", "name", "type", "durable", "arguments")}
        self.assertEqual(queues["t.default.default.exact"][:2], ["quorum", "true"])
        self.assertNotIn("x-single-active-consumer", queues["t.default.default.exact"][2])
        # parallelism 1 (the default): one active consumer across processes, for FIFO
        self.assertIn('{"x-single-active-consumer",true}', queues["t.default.default.fifo"][2])
        binds = {r[1]: r[2] for r in
                 self.rmq.ctl("list_bindings", "source_name", "destination_name", "arguments")
                 if r[0] == "b.default.default"}
        self.assertIn('{"x-match","all"}', binds["t.default.default.exact"])
        self.assertIn('{"cloudEvents_type","com.example.order"}', binds["t.default.default.exact"])
        self.assertIn('{"x-knative-trigger","exact"}', binds["t.default.default.exact"])
        # what RabbitMQ cannot test stays with cebroker: no attribute in these bindings
        for t in ("prefix", "sql"):
            self.assertNotIn("cloudEvents_", binds["t.default.default." + t])

    def post(self, headers, body=b""):
        st, _, rbody = self.d.post("/default/default", headers, body)
        self.assertEqual(st, 202, rbody)

    def with_id(self, path, id, count=1, timeout=20):
        return wait_for(lambda: (lambda r: r if len(r) >= count else None)(
            [r for r in self.sub.got(path) if r.event().get("id") == id]), timeout,
            what="event %s on %s" % (id, path))

    def test_posts_reach_triggers_with_exact_prefix_and_cesql_filters(self):
        data = b'{"order": 7}'
        self.post(binary_headers(id="r-eu", type="com.example.order", source="/shop",
                                 region="eu", content_type="application/json"), data)
        doc = {"specversion": "1.0", "id": "r-us", "type": "com.example.order", "source": "/shop",
               "datacontenttype": "text/plain", "data": "plain", "region": "us"}
        self.post({"Content-Type": "application/cloudevents+json"}, json.dumps(doc))
        self.post(binary_headers(id="r-other", type="com.example.refund", region="eu"), b"x")
        self.post(binary_headers(id="r-none", type="org.other", region="eu"), b"x")
        r = self.with_id("/exact", "r-eu")[0]
        self.assertEqual(r.body, data)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual((r.ce("region"), r.ce("source")), ("eu", "/shop"))
        self.assertEqual(self.with_id("/exact", "r-us")[0].body, b"plain")
        for id in ("r-eu", "r-us", "r-other"):
            self.with_id("/prefix", id)
        self.with_id("/sql", "r-eu")
        time.sleep(1)
        got = lambda p: sorted(r.ce("id") for r in self.sub.got(p) if r.ce("id").startswith("r-"))
        self.assertEqual(got("/exact"), ["r-eu", "r-us"])
        self.assertEqual(got("/prefix"), ["r-eu", "r-other", "r-us"])
        self.assertEqual(got("/sql"), ["r-eu"])

    def test_retries_dead_letter_and_replies_as_on_the_memory_channel(self):
        self.post(binary_headers(id="r-flaky", type="flaky"), b"x")
        self.post(binary_headers(id="r-broken", type="broken"), b"y")
        self.post(binary_headers(id="r-ask", type="question"), b"?")
        reqs = self.with_id("/flaky", "r-flaky", 3)
        self.assertGreaterEqual(reqs[1].time - reqs[0].time, 0.19)
        self.assertGreaterEqual(reqs[2].time - reqs[1].time, 0.39)
        self.with_id("/broken", "r-broken", 2)
        dl = self.with_id("/dls", "r-broken")[0]
        self.assertEqual(dl.ce("knativeerrorcode"), "500")
        self.assertEqual(dl.ce("knativeerrordest"), self.sub.at("/broken"))
        self.assertEqual(dl.body, b"y")
        ans = self.with_id("/answers", "reply-1")[0]
        self.assertEqual(ans.body, b"42")
        time.sleep(1)
        self.assertEqual(len([r for r in self.sub.got("/flaky") if r.ce("id") == "r-flaky"]), 3)
        self.assertEqual([r for r in self.sub.got("/dls") if r.ce("id") == "r-flaky"], [])

    def test_what_neither_subscriber_nor_dead_letter_sink_took_comes_back_later_and_is_not_lost(
            self):
        # eventing-rabbitmq's users saw DLQ messages acked while the dead-letter sink was down
        self.post(binary_headers(id="r-dlsdown", type="dlsdown"), b"w")
        reqs = self.with_id("/dlsdown", "r-dlsdown", 3, timeout=30)
        self.with_id("/dls-down", "r-dlsdown", 3, timeout=30)
        # back in the queue about a second later each time, never at once (no redelivery storm)
        self.assertGreaterEqual(reqs[1].time - reqs[0].time, 0.9)
        self.assertGreaterEqual(reqs[2].time - reqs[1].time, 0.9)
        time.sleep(2)  # the third dead-letter delivery took it: it is acked, and comes no more
        self.assertEqual(len([r for r in self.sub.got("/dlsdown") if r.ce("id") == "r-dlsdown"]), 3)

    def test_eventing_rabbitmqs_secret_form_and_a_vhost_created_later(self):
        # eventing-rabbitmq's Secret: the management uri (its host is kept), port, username and
        # password; and the RabbitmqBrokerConfig's vhost, which does not exist yet
        sec = ("apiVersion: v1\nkind: Secret\nmetadata:\n  name: rabbitmq\n  namespace: mgmt\n"
               "stringData:\n  uri: http://127.0.0.1:15672\n  port: \"%d\"\n  username: guest\n"
               "  password: guest\n---\n" % self.rmq.port)
        cfg = sec + rabbitmq_broker_yaml(self.rmq.port, name="m", namespace="mgmt", secret=False)
        cfg = cfg.replace("      name: rabbitmq\n", "      name: rabbitmq\n  vhost: orders\n", 1)
        cfg += trigger_yaml("t", self.sub.at("/vhost"), broker="m", namespace="mgmt")
        d = Daemon(cfg, log_level="info")
        try:
            st, _, body = d.post("/mgmt/m", binary_headers(id="v-0"), b"{}")
            self.assertEqual(st, 503, body)
            wait_for(lambda: "vhost orders" in d.log(), 10, what="the missing vhost in the log")
            self.rmq.ctl("add_vhost", "orders")
            self.rmq.ctl("set_permissions", "-p", "orders", "guest", ".*", ".*", ".*")
            wait_for(lambda: d.post("/mgmt/m", binary_headers(id="v-1"), b"{}")[0] == 202, 30,
                     what="202 once the vhost exists")
            wait_for(lambda: [r for r in self.sub.got("/vhost") if r.ce("id") == "v-1"], 30,
                     what="delivery in the vhost")
            self.assertIn(["b.mgmt.m"], self.rmq.ctl("list_exchanges", "-p", "orders", "name"))
        finally:
            d.stop()

    def test_an_independent_amqp_client_finds_the_cloudevent_in_what_the_broker_stored(self):
        pika = self.pika
        conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.rmq.port))
        try:
            ch = conn.channel()
            ch.queue_declare("pika-tap", durable=False, exclusive=True)
            ch.queue_bind("pika-tap", "b.default.default", arguments={"x-match": "all"})
            self.post(binary_headers(id="w-wire", type="com.example.wire", source="/wire",
                                     note="a b", content_type="application/json"), b'{"x":1}')
            # a 202 means stored: the message is there now
            method, props, body = ch.basic_get("pika-tap", auto_ack=True)
            self.assertIsNotNone(method)
            h = props.headers
            self.assertEqual(h["cloudEvents_id"], "w-wire")
            self.assertEqual(h["cloudEvents_type"], "com.example.wire")
            self.assertEqual(h["cloudEvents_source"], "/wire")
            self.assertEqual(h["cloudEvents_specversion"], "1.0")
            self.assertEqual(h["cloudEvents_note"], "a b")
            self.assertNotIn("cloudEvents_datacontenttype", h)
            self.assertEqual(props.content_type, "application/json")
            self.assertEqual(props.message_id, "w-wire")
            self.assertEqual(props.delivery_mode, 2)
            self.assertEqual(body, b'{"x":1}')
            # the Trigger queue of each Trigger is there, durable, named after the Broker
            ok = ch.queue_declare("t.default.default.exact", passive=True)
            self.assertIsNotNone(ok)
        finally:
            conn.close()

    def test_parallelism_1_delivers_1000_events_in_the_order_they_were_accepted(self):
        accepted = []
        lock = threading.Lock()

        def sender(k):
            for i in range(250):
                id = "f-%d-%d" % (k, i)
                with lock:  # the order of the 202s is the order of the store
                    st, _, _ = self.d.post("/default/default", binary_headers(id=id, type="fifo"))
                    self.assertEqual(st, 202)
                    accepted.append(id)
        ts = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wait_for(lambda: len(self.sub.got("/fifo")) >= 1000, 120, what="1000 FIFO deliveries")
        got = [r.ce("id") for r in self.sub.got("/fifo")]
        self.assertEqual(got, accepted)


    def test_a_refused_login_is_a_503_and_its_credentials_are_never_shown(self):
        cfg = rabbitmq_broker_yaml(self.rmq.port, name="locked").replace(
            "password: guest", "password: wr0ng-pw-123").replace(
            "username: guest", "username: us3r-n4me-77")
        self.assertIn("us3r-n4me-77", cfg)
        d = Daemon(cfg)
        try:
            st, _, body = d.post("/default/locked", binary_headers(id="x"), b"x")
            self.assertEqual(st, 503, body)
            st, _, body = d.post("/readyz", {}, b"", "GET")
            self.assertEqual(st, 503, body)
            wait_for(lambda: "login to" in d.log(), 10, what="the refused login in the log")
            _, _, metrics = d.post("/metrics", {}, b"", "GET")
        finally:
            d.stop()
        self.assertIn("login to 127.0.0.1:%d (vhost /) failed" % self.rmq.port, d.log())
        for secret in ("wr0ng-pw-123", "us3r-n4me-77"):
            self.assertNotIn(secret, d.log())
            self.assertNotIn(secret.encode(), metrics + body)


class RabbitMQSource(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rmq = RabbitMQ()
        cls.pika = pika_module()
        cls.sub = Subscriber()
        cfg = rabbitmq_broker_yaml(cls.rmq.port, name="unused")
        cfg += rabbitmq_source_yaml("feed", "feed-q", "feed-x", cls.sub.at("/sink"),
                                    extra="  ceOverrides:\n    extensions:\n      origin: rmq\n")
        cfg += rabbitmq_source_yaml("wide", "wide-q", "wide-x", cls.sub.at("/wide"), parallelism=5)
        cls.d = Daemon(cfg)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        cls.rmq.close()

    def test_plain_and_cloudevent_messages_become_the_right_events(self):
        pika = self.pika
        conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.rmq.port))
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish("feed-x", "", b'{"n":1}', pika.BasicProperties(
                content_type="application/json", message_id="m-1", timestamp=1700000000,
                delivery_mode=2))
            ch.basic_publish("feed-x", "", b"no id", pika.BasicProperties(delivery_mode=2))
            ch.basic_publish("feed-x", "", b"ce", pika.BasicProperties(
                content_type="text/plain", headers={
                    "cloudEvents_specversion": "1.0", "cloudEvents_id": "ce-1",
                    "cloudEvents_source": "/producer", "cloudEvents_type": "com.example.ce"}))
            ch.basic_publish("feed-x", "", json.dumps({
                "specversion": "1.0", "id": "ce-2", "source": "/producer",
                "type": "com.example.structured", "data": {"k": "v"}}).encode(),
                pika.BasicProperties(content_type="application/cloudevents+json"))
        finally:
            conn.close()
        reqs = wait_for(lambda: (lambda r: r if len(r) >= 4 else None)(self.sub.got("/sink")), 30,
                        what="4 events at the sink")
        by = {r.ce("id") or r.event().get("id"): r for r in reqs}
        r = by["m-1"]
        self.assertEqual(r.ce("type"), "dev.knative.rabbitmq.event")
        self.assertEqual(r.ce("source"), "/apis/v1/namespaces/default/rabbitmqsources/feed#feed-q")
        self.assertEqual(r.ce("subject"), "m-1")
        self.assertEqual(r.ce("time"), "2023-11-14T22:13:20Z")
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.body, b'{"n":1}')
        self.assertEqual(r.ce("origin"), "rmq")
        plain = [x for x in reqs if x.body == b"no id"][0]
        self.assertRegex(plain.ce("id"), r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-")
        self.assertEqual(plain.ce("subject"), plain.ce("id"))
        r = by["ce-1"]
        self.assertEqual((r.ce("type"), r.ce("source")), ("com.example.ce", "/producer"))
        self.assertEqual(r.body, b"ce")
        r = by["ce-2"]
        self.assertEqual(r.event()["type"], "com.example.structured")

    def test_a_sources_parallelism_is_its_prefetch(self):
        prefetch = {r[0]: r[1] for r in
                    self.rmq.ctl("list_consumers", "queue_name", "prefetch_count")}
        self.assertEqual(prefetch["wide-q"], "5")
        self.assertEqual(prefetch["feed-q"], "1", "1, FIFO, by default")


if __name__ == "__main__":
    main()
