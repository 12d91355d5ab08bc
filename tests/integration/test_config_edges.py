"""The edges a user hits, against the real daemon: a refused batch stores none of its events (and on
Kafka, which stores event by event, the answer says which were stored); a SIGHUP during the drain
(SIGHUP reloads: test_reload.py) neither reloads nor cuts the drain short; what can never fit gets 413, not a 429 to retry forever;
configuration files and directories (dangling links, nothing to serve, a file named twice); and the
README's commands, startup line, samples and Command line section as they really are."""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import unittest

from cebtest import (CEBROKER, Daemon, KafkaMock, Subscriber, binary_headers, broker_yaml,
                     kafka_broker_yaml, main, post, run_cli, trigger_yaml, wait_for, yaml_file)

TOP = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("top_builddir", os.path.join(os.path.dirname(__file__), "..", ".."))
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


run = run_cli


def batch(*ids, data=None):
    evs = [{"specversion": "1.0", "id": i, "source": "/edges", "type": "com.example.edge"}
           for i in ids]
    if data:
        for ev, d in zip(evs, data):
            if d is not None:
                ev["data"] = d
    return json.dumps(evs).encode()


class Gate:
    """A subscriber answer that waits until the test opens the gate: what the daemon accepted
    stays stored in its channel meanwhile."""

    def __init__(self):
        self.open = threading.Event()

    def __call__(self, req):
        self.open.wait(60)
        return (202, {}, b"")


def ids(sub, path):
    return [r.ce("id") for r in sub.got(path)]


class Batches(unittest.TestCase):
    def test_a_batch_refused_429_stores_none_of_its_events(self):
        sub, gate = Subscriber(), Gate()
        sub.responses["/s"] = gate
        d = Daemon(broker_yaml() + trigger_yaml("s", sub.at("/s")),
                   args=["--channel-max-events", "6", "--max-inflight", "1"])
        try:
            for i in ("one", "two", "three", "four"):
                self.assertEqual(d.post("/default/default", binary_headers(id=i))[0], 202)
            # Room for 2 more, a batch of 5: refused whole.
            st, h, body = d.post("/default/default", BATCH, batch("b1", "b2", "b3", "b4", "b5"))
            self.assertEqual(st, 429, body)
            self.assertEqual(h.get("retry-after"), "1")
            self.assertIn(b"none of the batch's events was stored", body)
            gate.open.set()
            sub.wait("/s", 4)
            # The sender retries the whole batch, then one more event. One delivery in flight,
            # in order: once "last" arrived, everything stored before it has arrived too.
            wait_for(lambda: d.post("/default/default", BATCH,
                                    batch("b1", "b2", "b3", "b4", "b5"))[0] == 202, 10,
                     what="the retried batch to be accepted")
            # "four" reached the subscriber before its settle freed its place: a 429 stores
            # nothing, and the sender sends again
            wait_for(lambda: d.post("/default/default", binary_headers(id="last"))[0] == 202, 10,
                     what="the last event to be accepted")
            wait_for(lambda: "last" in ids(sub, "/s"), 10, what="the last event")
            self.assertEqual(ids(sub, "/s"), ["one", "two", "three", "four",
                                              "b1", "b2", "b3", "b4", "b5", "last"])
        finally:
            gate.open.set()
            d.stop()
            sub.close()

    def test_a_batch_larger_than_the_whole_channel_gets_413_not_429(self):
        sub = Subscriber()
        d = Daemon(broker_yaml() + trigger_yaml("s", sub.at("/s")),
                   args=["--channel-max-events", "3"])
        try:
            st, h, body = d.post("/default/default", BATCH, batch("x1", "x2", "x3", "x4"))
            self.assertEqual(st, 413, body)
            self.assertNotIn("retry-after", h)
            self.assertIn(b"fewer events at once", body)
            st, h, body = d.post("/default/default", BATCH, batch("y1", "y2", "y3"))
            self.assertEqual(st, 202, body)
            wait_for(lambda: len(sub.got("/s")) == 3, 10, what="the batch that fits")
            self.assertEqual(sorted(ids(sub, "/s")), ["y1", "y2", "y3"])
        finally:
            d.stop()
            sub.close()

    @unittest.skipUnless(os.path.exists(os.path.join(BUILD, "tests", "tools", "kafka_mock")),
                         "built without librdkafka")
    def test_a_kafka_batch_stored_in_part_says_which_events_were_not_stored(self):
        # Kafka stores a batch as one record per event, each confirmed on its own. A record over
        # the producer's message.max.bytes is refused before it is sent: the events around it
        # are stored, and the answer must say exactly which one was not.
        kafka, sub = KafkaMock(), Subscriber()
        d = None
        try:
            d = Daemon(kafka_broker_yaml(kafka.bootstrap,
                                         config={"librdkafka.message.max.bytes": "4000"})
                       + trigger_yaml("s", sub.at("/s")))
            st, h, body = d.post("/default/default", BATCH,
                                 batch("k1", "k2", "k3", data=["small", "x" * 6000, "small"]))
            self.assertEqual(st, 413, body)
            self.assertIn(b"cannot hold an event this large: events 2 of 3 (counting from 1) "
                          b"were not stored, the other 2 were (do not send them again)", body)
            wait_for(lambda: len(sub.got("/s")) >= 2, 30, what="the two stored events")
            self.assertEqual(sorted(ids(sub, "/s")), ["k1", "k3"])
            self.assertEqual(
                d.metrics()['cebroker_accepted_total{namespace="default",broker="default"}'], 2)
        finally:
            if d:
                d.stop()
            sub.close()
            kafka.close()


class Signals(unittest.TestCase):
    def test_sighup_while_draining_neither_reloads_nor_cuts_the_drain_short(self):
        sub, gate = Subscriber(), Gate()
        sub.responses["/s"] = gate
        d = Daemon(broker_yaml() + trigger_yaml("s", sub.at("/s")), args=["--max-inflight", "1"])
        try:
            for i in range(3):
                self.assertEqual(d.post("/default/default", binary_headers(id="h%d" % i))[0], 202)
            sub.wait("/s", 1)
            d.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: d._find(r"draining"), 10, what="the drain to start")
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: d._find(r"SIGHUP while draining: no reload"), 10,
                     what="the SIGHUP to be seen")
            self.assertIsNone(d.proc.poll(), "SIGHUP cut the drain short:\n" + d.log())
            gate.open.set()
            wait_for(lambda: len(sub.got("/s")) == 3, 10, what="every accepted event")
            d.proc.wait(30)  # drained: it exits on its own
            self.assertEqual(d.stop(), 0)
            self.assertEqual(ids(sub, "/s"), ["h0", "h1", "h2"])
            self.assertNotIn("reloading", d.log())
        finally:
            gate.open.set()
            if d.proc.poll() is None:
                d.stop(check=False)
            sub.close()


class Limits(unittest.TestCase):
    def write(self, text):
        return yaml_file(self, text)

    def test_run_refuses_a_channel_smaller_than_the_largest_event(self):
        path = self.write(broker_yaml())
        rc, out, err = run("run", "-f", path, "--listen", "127.0.0.1:0",
                           "--channel-max-bytes", "4096")
        self.assertEqual(rc, 2, err)
        self.assertIn("--channel-max-bytes 4096 is below --max-event-size 1048576", err)
        rc, out, err = run("run", "-f", path, "--listen", "127.0.0.1:0",
                           "--channel-max-bytes", "4096", "--max-event-size", "8192")
        self.assertEqual(rc, 2, err)
        self.assertIn("--channel-max-bytes 4096 is below --max-event-size 8192", err)

    def test_an_event_that_can_never_fit_the_channel_gets_413_not_429(self):
        # The largest event accepted, once the broker added knativebrokerttl, is a few bytes
        # over a channel exactly as large: no amount of waiting makes it fit.
        sub = Subscriber()
        d = Daemon(broker_yaml() + trigger_yaml("s", sub.at("/s")),
                   args=["--max-event-size", "65536", "--channel-max-bytes", "65536"])
        try:
            # What the daemon counts (broker/event.c): the data, and name + value + 6 for each
            # attribute: specversion 20, id 9, source 14, type 11.
            data = b"x" * (65536 - 54 - 5)
            st, h, body = d.post("/default/default",
                                 {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/t",
                                  "ce-type": "t"}, data)
            self.assertEqual(st, 413, body)
            self.assertNotIn("retry-after", h)
            self.assertIn(b"cannot hold an event this large, however empty", body)
            self.assertEqual(d.post("/default/default", binary_headers(id="small"), b"{}")[0], 202)
        finally:
            d.stop()
            sub.close()

    def test_an_extension_name_of_64_characters_is_accepted_and_65_refused(self):
        sub = Subscriber()
        d = Daemon(broker_yaml() + trigger_yaml("s", sub.at("/s")))
        try:
            st, h, body = d.post("/default/default", binary_headers(id="n64", **{"a" * 64: "v"}))
            self.assertEqual(st, 202, body)
            st, h, body = d.post("/default/default", binary_headers(id="n65", **{"a" * 65: "v"}))
            self.assertEqual(st, 400, body)
            self.assertIn(b"longer than 64 characters", body)
        finally:
            d.stop()
            sub.close()


class ConfigFiles(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cebtest-cfg-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])

    def file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_a_dangling_link_in_a_directory_is_an_error_as_when_named(self):
        self.file("broker.yaml", broker_yaml())
        link = os.path.join(self.dir, "triggers.yaml")
        os.symlink(os.path.join(self.dir, "gone.yaml"), link)
        expect = "triggers.yaml: cannot read: a symbolic link to '%s', which does not exist" % (
            os.path.join(self.dir, "gone.yaml"))
        for how in (["-f", self.dir], ["-f", link]):
            rc, out, err = run("validate", *how)
            self.assertEqual(rc, 1, err)
            self.assertIn(expect, err)
            rc, out, err = run("run", *how, "--listen", "127.0.0.1:0")
            self.assertEqual(rc, 2, err)
            self.assertIn(expect, err)

    def test_a_configuration_that_serves_nothing_is_refused_unless_allowed(self):
        path = self.file("empty.yaml", "# nothing yet\n")
        cm = self.file("only-a-configmap.yaml",
                       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n")
        for p in (path, cm, self.dir):
            rc, out, err = run("run", "-f", p, "--listen", "127.0.0.1:0")
            self.assertEqual(rc, 2, err)
            self.assertIn("declares no Broker, KafkaSink or KafkaSource", err)
            self.assertIn("--allow-empty", err)
            rc, out, err = run("validate", "-f", p)
            self.assertEqual(rc, 1, err)
            self.assertIn("nothing to serve", err)
        rc, out, err = run("validate", "-f", path, "--allow-empty")
        self.assertEqual(rc, 0, err)
        with open(path) as f:
            d = Daemon(f.read(), args=["--allow-empty"])
        try:
            self.assertEqual(post(d.url + "/readyz", {}, b"", "GET")[0], 200)
            self.assertIn("nothing to serve (--allow-empty)", d.log())
        finally:
            d.stop()

    def test_a_file_given_twice_is_read_once(self):
        path = self.file("all.yaml", broker_yaml() + trigger_yaml("t", "http://127.0.0.1:9/x"))
        link = os.path.join(self.dir, "again.yml")
        os.symlink(path, link)
        for how in (["-f", path, "-f", path], ["-f", self.dir, "-f", path],
                    ["-f", path, "-f", os.path.join(self.dir, ".", "all.yaml")]):
            rc, out, err = run("validate", *how)
            self.assertEqual(rc, 0, err)
            self.assertNotIn("duplicate", err)
            self.assertIn("ok: 1 broker, 1 trigger\n", out)
        # Two files with the same resource are still duplicates.
        other = self.file("other.yaml", broker_yaml())
        rc, out, err = run("validate", "-f", path, "-f", other)
        self.assertEqual(rc, 1, err)
        self.assertIn("duplicate Broker", err)


class Readme(unittest.TestCase):
    """What the README shows a new user, checked against the daemon."""

    @classmethod
    def setUpClass(cls):
        with open(os.path.join(TOP, "README.md")) as f:
            cls.readme = f.read()

    def section(self, title):
        m = re.search(r"^## %s\n(.*?)(?=^## )" % re.escape(title), self.readme, re.S | re.M)
        self.assertIsNotNone(m, title)
        return m.group(1)

    def test_every_sample_validates_alone_and_all_together(self):
        rc, out, err = run("validate", "-f", os.path.join(TOP, "samples"))
        self.assertEqual(rc, 0, err)
        self.assertIn("ok: 10 brokers, 15 triggers, 1 ContainerSource, 1 KafkaSource, 2 NatsSources, "
                      "2 PingSources, 1 WebhookSource, 1 Sequence, 1 Parallel, 1 Channel, 1 KafkaSink, "
                      "1 Subscription", out)
        for name in os.listdir(os.path.join(TOP, "samples")):
            if not name.endswith(".yaml"):
                continue  # the Grafana dashboard
            rc, out, err = run("validate", "-f", os.path.join(TOP, "samples", name))
            self.assertEqual(rc, 0, name + ": " + err)

    def test_the_startup_line_is_the_one_the_walkthrough_shows(self):
        shown = re.search(r"listening on http://127\.0\.0\.1:8080 (\(.*\))", self.readme)
        self.assertIsNotNone(shown)
        with open(os.path.join(TOP, "samples", "quickstart.yaml")) as f:
            d = Daemon(f.read())
        try:
            self.assertTrue(d._find(r"listening on http://127\.0\.0\.1:\d+ %s$"
                                    % re.escape(shown.group(1))), d.log())
        finally:
            d.stop()

    def test_the_command_line_section_names_every_option_of_run(self):
        rc, out, err = run("run", "--help")
        self.assertEqual(rc, 0)
        options = set(re.findall(r"--[a-z][a-z-]+", out)) - {"--help"}
        section = self.section("Command line")
        missing = sorted(o for o in options if "`%s" % o not in section)
        self.assertEqual(missing, [])

    def test_display_shows_which_path_each_copy_came_to(self):
        proc = subprocess.Popen([CEBROKER, "display", "--listen", "127.0.0.1:0", "--count", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            port = int(re.search(rb":(\d+)", proc.stderr.readline()).group(1))
            url = "http://127.0.0.1:%d" % port
            for path in ("/orders", "/audit"):
                st, h, body = post(url + path, binary_headers(id="1"), b"{}")
                self.assertEqual(st, 202, body)
            out, err = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(err.decode(), "POST /orders\nPOST /audit\n")
        self.assertEqual(out.decode().count("cloudevents.Event"), 2)


if __name__ == "__main__":
    main()
