"""What operators read: /metrics after real traffic (Knative's mt_broker_ingress and mt_broker_filter
event counts by response code and latency histograms, the in-flight and queued gauges, build info)
passes `promtool check metrics` and counts exactly what happened; every series the Grafana dashboard
in samples/ queries is on a real page; --log-json writes one JSON object per line."""

import json
import os
import re
import shutil
import subprocess
import unittest

from cebtest import (CEBROKER, Daemon, Subscriber, binary_headers, broker_yaml, main, trigger_yaml,
                     wait_for)

TOP = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
B = 'namespace_name="default",broker_name="default"'


def page(d):
    from cebtest import post
    st, hdrs, body = post(d.url + "/metrics", {}, b"", "GET")
    assert st == 200, st
    return body.decode()


def samples(text):
    """{'name{labels}': value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def filter_labels(trigger):
    return B + ',trigger_name="%s"' % trigger


class Metrics(unittest.TestCase):
    """One daemon for the whole class, with traffic of every kind: 202s, a 400, a 404; a Trigger
    whose subscriber answers 500 twice then 202; one that matches nothing; one that hangs."""

    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        cls.sub.responses["/flaky"] = [(500, {}, b""), (500, {}, b""), (202, {}, b"")]
        cls.sub.hang.add("/stuck")
        cls.sub.responses["/later"] = [(503, {}, b"")]
        delivery = "retry: 3\nbackoffDelay: PT0.01S\nbackoffPolicy: linear\n"
        yaml_text = (broker_yaml()
                     + trigger_yaml("ok", cls.sub.at("/ok"), filter_attrs={"type": "com.example.ok"})
                     + trigger_yaml("flaky", cls.sub.at("/flaky"), filter_attrs={"type": "com.example.flaky"},
                                    delivery=delivery)
                     + trigger_yaml("never", cls.sub.at("/never"), filter_attrs={"type": "com.example.none"})
                     + trigger_yaml("stuck", cls.sub.at("/stuck"), filter_attrs={"type": "com.example.stuck"})
                     + trigger_yaml("later", cls.sub.at("/later"), filter_attrs={"type": "com.example.later"},
                                    delivery="retry: 1\nbackoffDelay: PT1H\n"))
        cls.d = Daemon(yaml_text, args=["--max-inflight", "2", "--drain-timeout", "200"], log_level="info")
        for i in range(5):
            st, _, _ = cls.d.post("/default/default", binary_headers(id="ok-%d" % i, type="com.example.ok"), b"{}")
            assert st == 202, st
        st, _, _ = cls.d.post("/default/default", binary_headers(id="f", type="com.example.flaky"), b"{}")
        assert st == 202, st
        for i in range(5):
            st, _, _ = cls.d.post("/default/default", binary_headers(id="s-%d" % i, type="com.example.stuck"), b"{}")
            assert st == 202, st
        st, _, _ = cls.d.post("/default/default", binary_headers(id="l", type="com.example.later"), b"{}")
        assert st == 202, st
        st, _, _ = cls.d.post("/default/default", {"content-type": "application/json"}, b"not an event")
        assert st == 400, st
        st, _, _ = cls.d.post("/default/missing", binary_headers(), b"{}")
        assert st == 404, st
        cls.sub.wait("/ok", 5)
        cls.sub.wait("/flaky", 3)
        cls.sub.wait("/stuck", 2)
        key = "mt_broker_filter_event_count_total{%s,response_code=\"202\",response_code_class=\"2xx\"}" \
            % filter_labels("flaky")
        wait_for(lambda: samples(page(cls.d)).get(key) == 1, 10, what="the flaky Trigger's 202 counted")
        key = "mt_broker_filter_event_count_total{%s,response_code=\"503\",response_code_class=\"5xx\"}" \
            % filter_labels("later")
        wait_for(lambda: samples(page(cls.d)).get(key) == 1, 10, what="the later Trigger's 503 counted")
        cls.text = page(cls.d)
        cls.m = samples(cls.text)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()

    def test_promtool_finds_nothing_to_fix_on_a_page_after_traffic(self):
        self.assertTrue(shutil.which("promtool"), "promtool not found (Debian: prometheus; scripts/install-deps)")
        p = subprocess.run(["promtool", "check", "metrics"], input=self.text.encode(), capture_output=True,
                           timeout=60)
        out = (p.stdout + p.stderr).decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertEqual(out.strip(), "")
        # and promtool does look: a counter without _total is reported
        bad = self.text.replace("mt_broker_ingress_event_count_total", "mt_broker_ingress_event_count")
        p = subprocess.run(["promtool", "check", "metrics"], input=bad.encode(), capture_output=True,
                           timeout=60)
        self.assertIn("_total", (p.stdout + p.stderr).decode())

    def test_the_ingress_counts_each_answer_by_its_status_and_class(self):
        codes = {k: v for k, v in self.m.items() if k.startswith("mt_broker_ingress_event_count_total{")}
        self.assertEqual(codes, {
            'mt_broker_ingress_event_count_total{%s,response_code="202",response_code_class="2xx"}' % B: 12,
            'mt_broker_ingress_event_count_total{%s,response_code="400",response_code_class="4xx"}' % B: 1,
        })
        # the 404 names no Broker of the files: the daemon's series has it
        self.assertEqual(self.m['cebroker_ingress_unrouted_total{response_code="404",response_code_class="4xx"}'], 1)
        self.assertEqual([k for k in self.m if k.startswith("cebroker_ingress_unrouted_total")],
                         ['cebroker_ingress_unrouted_total{response_code="404",response_code_class="4xx"}'])

    def test_the_ingress_latency_histogram_counts_every_answer(self):
        name = "mt_broker_ingress_event_dispatch_latencies"
        self.assertIn("# TYPE %s histogram" % name, self.text)
        self.assertEqual(self.m["%s_count{%s}" % (name, B)], 13)
        self.assertEqual(self.m['%s_bucket{%s,le="+Inf"}' % (name, B)], 13)
        self.assertGreater(self.m["%s_sum{%s}" % (name, B)], 0)
        bounds = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
        counts = [self.m['%s_bucket{%s,le="%d"}' % (name, B, b)] for b in bounds]
        self.assertEqual(counts, sorted(counts))  # cumulative

    def test_the_filter_counts_each_request_to_the_subscriber_by_status(self):
        def codes(trigger):
            pre = "mt_broker_filter_event_count_total{%s," % filter_labels(trigger)
            return {re.search(r'response_code="(\d+)"', k).group(1): v
                    for k, v in self.m.items() if k.startswith(pre)}
        self.assertEqual(codes("ok"), {"202": 5})
        self.assertEqual(codes("flaky"), {"500": 2, "202": 1})
        self.assertEqual(codes("never"), {})
        self.assertIn('response_code="500",response_code_class="5xx"', self.text)

    def test_the_dispatch_latency_histogram_is_per_trigger(self):
        name = "mt_broker_filter_event_dispatch_latencies"
        self.assertEqual(self.m["%s_count{%s}" % (name, filter_labels("ok"))], 5)
        self.assertEqual(self.m["%s_count{%s}" % (name, filter_labels("flaky"))], 3)
        self.assertEqual(self.m["%s_count{%s}" % (name, filter_labels("never"))], 0)
        self.assertEqual(self.m['%s_bucket{%s,le="+Inf"}' % (name, filter_labels("ok"))], 5)

    def test_the_processing_latency_counts_each_event_once_at_its_first_request(self):
        name = "mt_broker_filter_event_processing_latencies"
        self.assertIn("# TYPE %s histogram" % name, self.text)
        counts = {t: self.m["%s_count{%s}" % (name, filter_labels(t))]
                  for t in ("ok", "flaky", "never", "stuck", "later")}
        # retries are not counted again; of the stuck Trigger's five, two have been sent
        self.assertEqual(counts, {"ok": 5, "flaky": 1, "never": 0, "stuck": 2, "later": 1})

    def test_the_process_series_are_those_of_every_prometheus_client(self):
        import time
        self.assertGreater(self.m["process_resident_memory_bytes"], 1 << 20)
        self.assertGreater(self.m["process_virtual_memory_bytes"], self.m["process_resident_memory_bytes"])
        self.assertGreater(self.m["process_open_fds"], 3)
        self.assertGreaterEqual(self.m["process_max_fds"], self.m["process_open_fds"])
        self.assertGreaterEqual(self.m["process_cpu_seconds_total"], 0)
        started = self.m["process_start_time_seconds"]
        self.assertLess(abs(time.time() - started), 600)
        self.assertIn("# TYPE process_cpu_seconds_total counter", self.text)

    def test_in_flight_and_queued_gauges_per_trigger_and_channel(self):
        def gauge(name, trigger):
            return self.m['%s{namespace="default",trigger="%s",broker="default"}' % (name, trigger)]
        # --max-inflight 2: two requests hang at the subscriber, three wait in the channel
        self.assertEqual(gauge("cebroker_delivery_inflight_requests", "stuck"), 2)
        self.assertEqual(gauge("cebroker_delivery_queued_events", "stuck"), 0)
        # answered 503, the retry waits an hour: queued, not in flight
        self.assertEqual(gauge("cebroker_delivery_inflight_requests", "later"), 0)
        self.assertEqual(gauge("cebroker_delivery_queued_events", "later"), 1)
        self.assertEqual(gauge("cebroker_delivery_inflight_requests", "ok"), 0)
        self.assertEqual(gauge("cebroker_delivery_queued_events", "ok"), 0)
        self.assertEqual(self.m['cebroker_channel_inflight_requests{namespace="default",broker="default"}'], 2)
        self.assertEqual(self.m['cebroker_channel_pending_events{namespace="default",broker="default"}'], 6)

    def test_build_info_names_the_version_and_the_channels(self):
        version = subprocess.run([CEBROKER, "version"], capture_output=True).stdout.decode().split()[1]
        info = [k for k in self.m if k.startswith("cebroker_build_info{")]
        self.assertEqual(len(info), 1)
        self.assertEqual(self.m[info[0]], 1)
        self.assertIn('version="%s"' % version, info[0])
        self.assertRegex(info[0], r'channels="memory(,\w+)*"')

    def test_the_existing_series_stay(self):
        self.assertEqual(self.m['cebroker_accepted_total{namespace="default",broker="default"}'], 12)
        self.assertEqual(self.m['cebroker_delivered_total{namespace="default",trigger="flaky",broker="default"}'], 1)
        self.assertEqual(self.m['cebroker_retries_total{namespace="default",trigger="flaky",broker="default"}'], 2)

    def test_every_series_the_grafana_dashboard_queries_is_on_the_page(self):
        with open(os.path.join(TOP, "samples", "grafana-dashboard.json")) as f:
            dash = json.load(f)
        exprs = []

        def walk(panels):
            for p in panels:
                exprs.extend(t["expr"] for t in p.get("targets", []))
                walk(p.get("panels", []))
        walk(dash["panels"])
        exprs.extend(v["definition"] for v in dash["templating"]["list"] if "definition" in v)
        self.assertGreater(len(exprs), 15)
        on_page = {k.split("{")[0] for k in self.m}
        # and job, instance: the labels Prometheus gives every series of a scrape target
        labels_on_page = set(re.findall(r'(\w+)="', self.text)) | {"job", "instance"}
        used, missing = set(), []
        for e in exprs:
            for name in re.findall(r"\b((?:mt_broker|cebroker|process)_\w+)", e):
                used.add(name)
                if name not in on_page:
                    missing.append(name)
            for label in re.findall(r"(\w+)\s*(?:=~|!=|!~|=)\s*\"", e):
                if label not in labels_on_page:
                    missing.append("label " + label)
            for group in re.findall(r"by \(([^)]*)\)", e):
                for label in (l.strip() for l in group.split(",")):
                    if label not in labels_on_page and label != "le":
                        missing.append("label " + label)
        self.assertEqual(missing, [])
        for name in ("mt_broker_ingress_event_count_total", "mt_broker_ingress_event_dispatch_latencies_bucket",
                     "mt_broker_filter_event_count_total", "mt_broker_filter_event_dispatch_latencies_bucket",
                     "cebroker_delivery_inflight_requests", "cebroker_delivery_queued_events",
                     "cebroker_build_info", "mt_broker_filter_event_processing_latencies_bucket",
                     "process_resident_memory_bytes", "process_cpu_seconds_total"):
            self.assertIn(name, used)

    def test_every_series_is_in_the_readme_metrics_table(self):
        with open(os.path.join(TOP, "README.md")) as f:
            readme = f.read()
        section = re.search(r"(?ms)^## Metrics\n(.*?)(?=^## )", readme).group(1)
        names = set(re.findall(r"^# TYPE (\S+) ", self.text, re.M))
        missing = sorted(n for n in names if "`%s`" % n not in section)
        self.assertEqual(missing, [])


class LogJson(unittest.TestCase):
    def test_every_line_is_a_json_object_with_time_level_component_and_msg(self):
        sub = Subscriber()
        sub.responses["/no"] = [(400, {}, b"")]
        d = Daemon(broker_yaml() + trigger_yaml("no", sub.at("/no")),
                   args=["--log-json"], log_level="debug")
        try:
            st, _, _ = d.post("/default/default", binary_headers(id='a "quoted" id'), b"{}")
            self.assertEqual(st, 202)
            wait_for(lambda: any("not delivered" in l or "dropped" in l for l in d.log_lines), 10,
                     what="the refused delivery logged")
        finally:
            d.stop()
            sub.close()
        levels = set()
        self.assertGreater(len(d.log_lines), 3)
        for line in d.log_lines:
            self.assertTrue(line.endswith("\n"))
            obj = json.loads(line)
            self.assertEqual(sorted(obj), ["component", "level", "msg", "time"], line)
            self.assertRegex(obj["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(obj["level"], ("error", "warn", "info", "debug"))
            levels.add(obj["level"])
        self.assertTrue({"info", "debug"} <= levels, levels)
        msgs = [json.loads(l)["msg"] for l in d.log_lines]
        self.assertTrue(any('a "quoted" id' in m for m in msgs), msgs)
        self.assertTrue(any(m.startswith("listening on http://127.0.0.1:") for m in msgs))

    def test_without_the_option_lines_are_text(self):
        d = Daemon(broker_yaml(), log_level="info")
        d.stop()
        self.assertRegex(d.log_lines[0], r"^\d{4}-\d\d-\d\dT\S+Z info  \[cebroker\] listening on ")


class Journal(unittest.TestCase):
    """Under systemd, stderr is the journal's stream and $JOURNAL_STREAM says so ("dev:inode"): each
    line then starts with its syslog priority, which journald takes off and files the line under."""

    def run_daemon(self, journal_stream, args=()):
        import signal
        import tempfile
        from cebtest import yaml_file
        config = yaml_file(self, broker_yaml())
        r, w = os.pipe()
        st = os.fstat(w)
        stream = "%d:%d" % (st.st_dev, st.st_ino) if journal_stream == "same" else journal_stream
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if stream:
            env["JOURNAL_STREAM"] = stream
        p = subprocess.Popen([CEBROKER, "run", "-f", config, "--listen", "127.0.0.1:0", "--log-level",
                              "debug"] + list(args), stdout=subprocess.DEVNULL, stderr=w, env=env)
        os.close(w)
        lines = []
        with os.fdopen(r, "r") as f:
            for line in f:
                lines.append(line)
                if "listening on" in line:
                    p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(30), 0, "".join(lines))
        return lines

    def test_each_line_starts_with_its_priority_when_stderr_is_the_journal(self):
        lines = self.run_daemon("same")
        priority = {"error": "<3>", "warn": "<4>", "info": "<6>", "debug": "<7>"}
        self.assertGreater(len(lines), 2)
        for line in lines:
            m = re.match(r"^(<\d>)\S+Z (\w+) ", line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group(1), priority[m.group(2)], line)

    def test_json_lines_get_the_priority_too(self):
        for line in self.run_daemon("same", ["--log-json"]):
            self.assertEqual(line[:3], {"info": "<6>", "debug": "<7>", "warn": "<4>", "error": "<3>"}[
                json.loads(line[3:])["level"]], line)

    def test_no_prefix_when_stderr_is_not_the_stream_named(self):
        for stream in (None, "1:2", "junk"):
            for line in self.run_daemon(stream):
                self.assertRegex(line, r"^\d{4}-", stream)


if __name__ == "__main__":
    main()
