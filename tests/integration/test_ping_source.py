#!/usr/bin/env python3
"""PingSource against the real daemon: Knative's e2e scenarios (test/rekt/features/pingsource: sink
ref and URI, text data in dataBase64, seconds in the schedule, a Broker as sink, Kn-Namespace), a
schedule in another time zone that fires at the right instant, the adapter's retry rule, and every
validation error at its file:line:col. No test waits minutes: schedules with seconds tick within
seconds."""

import base64
import datetime
import os
import re
import sys
import time
import unittest
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cebtest import (Daemon, Subscriber, broker_yaml, main, run_cli, trigger_yaml, wait_for,  # noqa: E402
                     yaml_file)

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def ping_yaml(name, spec, namespace="default", api="sources.knative.dev/v1"):
    return ("apiVersion: %s\nkind: PingSource\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n%s---\n"
            % (api, name, namespace, "".join("  " + l + "\n" for l in spec.strip("\n").split("\n"))))


def ce_time(req):
    t = req.headers["ce-time"]
    return datetime.datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp() + int(t[20:29]) / 1e9


def instant_ahead(seconds):
    """A whole second at least `seconds` from now (UTC, as a datetime)."""
    t = int(time.time()) + seconds
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)


class PingSourceScenarios(unittest.TestCase):
    """Knative's pingsource features, one daemon with one source per scenario."""

    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        s = cls.sub.url
        cls.yaml = (
            # SendsEventsWithSinkURI: no data, no content type, no body
            ping_yaml("uri", "schedule: '* * * * * *'\nsink:\n  uri: %s/uri" % s)
            # SendsEventsWithSinkRef: a Service ref, reached through the address table
            + ping_yaml("ref", "schedule: '* * * * * *'\ncontentType: application/json\n"
                        "data: '{\"message\": \"Hello world!\"}'\nsink:\n  ref:\n"
                        "    apiVersion: v1\n    kind: Service\n    name: event-display",
                        namespace="pingns")
            # SendsEventsWithCloudEventData: text in dataBase64; v1beta2 serves the same fields
            + ping_yaml("b64", "schedule: '* * * * * *'\ncontentType: text/plain\n"
                        "dataBase64: aGVsbG8sIHdvcmxkIQ==\nceOverrides:\n  extensions:\n"
                        "    team: blue\nsink:\n  uri: %s/b64" % s, api="sources.knative.dev/v1beta2")
            # SendsEventsWithEventTypes: a Broker of this daemon as the sink, a Trigger after it
            + "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n"
            "  namespace: pingns\n---\n"
            "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: pings\n"
            "  namespace: pingns\nspec:\n  broker: default\n  filter:\n    attributes:\n"
            "      type: dev.knative.sources.ping\n  subscriber:\n    uri: %s/via-broker\n---\n" % s
            + ping_yaml("to-broker", "schedule: '* * * * * *'\ndata: via a broker\nsink:\n  ref:\n"
                        "    apiVersion: eventing.knative.dev/v1\n    kind: Broker\n"
                        "    name: default", namespace="pingns"))
        cls.dmn = Daemon(cls.yaml, args=["--address", "Service pingns/event-display=%s/ref" % s],
                         log_level="info")

    @classmethod
    def tearDownClass(cls):
        cls.dmn.stop()
        cls.sub.close()

    def test_icu_is_loaded_once_a_schedule_needs_it(self):
        with open("/proc/%d/maps" % self.dmn.proc.pid) as f:
            self.assertIn("libicui18n", f.read())

    def test_a_daemon_without_a_pingsource_does_not_map_icu(self):
        dmn = Daemon(broker_yaml() + trigger_yaml("t", self.sub.url + "/t"))
        try:
            with open("/proc/%d/maps" % dmn.proc.pid) as f:
                maps = f.read()
            self.assertNotIn("libicu", maps)  # (nor its C++ runtime, but sanitizers bring that)
        finally:
            dmn.stop()

    def test_sink_uri_gets_knatives_event_in_binary_mode_with_kn_namespace(self):
        reqs = self.sub.wait("/uri", 2, timeout=30)
        for r in reqs[:2]:
            self.assertEqual(r.ce("type"), "dev.knative.sources.ping")
            self.assertEqual(r.ce("source"), "/apis/v1/namespaces/default/pingsources/uri")
            self.assertEqual(r.ce("specversion"), "1.0")
            self.assertRegex(r.ce("id"), UUID4)
            self.assertRegex(r.ce("time"), TIME)
            self.assertEqual(r.headers.get("kn-namespace"), "default")
            # no data: no body and no content type
            self.assertEqual(r.body, b"")
            self.assertNotIn("ce-datacontenttype", r.headers)
        self.assertNotEqual(reqs[0].ce("id"), reqs[1].ce("id"))

    def test_sink_ref_gets_the_json_data(self):
        r = self.sub.wait("/ref", 1, timeout=30)[0]
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.body, b'{"message": "Hello world!"}')
        self.assertEqual(r.ce("source"), "/apis/v1/namespaces/pingns/pingsources/ref")
        self.assertEqual(r.headers.get("kn-namespace"), "pingns")

    def test_text_data_in_databa64_arrives_decoded_with_the_overrides(self):
        r = self.sub.wait("/b64", 1, timeout=30)[0]
        self.assertEqual(r.body, b"hello, world!")
        self.assertEqual(r.headers.get("content-type"), "text/plain")
        self.assertEqual(r.ce("team"), "blue")

    def test_a_broker_as_sink_routes_the_ticks_to_its_triggers(self):
        r = self.sub.wait("/via-broker", 1, timeout=30)[0]
        self.assertEqual(r.ce("type"), "dev.knative.sources.ping")
        self.assertEqual(r.ce("source"), "/apis/v1/namespaces/pingns/pingsources/to-broker")
        self.assertEqual(r.body, b"via a broker")
        self.assertEqual(r.headers.get("kn-namespace"), "pingns")


class PingSourceInstants(unittest.TestCase):
    """A tick comes at its scheduled instant, in the schedule's zone, and not before."""

    def setUp(self):
        self.sub = Subscriber()
        self.dmn = None

    def tearDown(self):
        if self.dmn:
            self.dmn.stop()
        self.sub.close()

    def fires_at(self, make):
        """make(at) gives the spec for a tick at instant `at`. A daemon that was not ready a second
        before the instant (a loaded machine) cannot show anything: tried again further ahead."""
        for ahead in (4, 8, 16):
            at = instant_ahead(ahead)
            self.dmn = Daemon(ping_yaml("at", make(at) % {"sink": self.sub.url + "/at"}),
                              log_level="info")
            if time.time() < at.timestamp() - 1:
                break
            self.dmn.stop()
            self.dmn = None
            with self.sub.lock:  # a tick of the daemon stopped, if it made one, does not count
                self.sub.requests.clear()
        self.assertIsNotNone(self.dmn, "the daemon was never ready 1 s before the tick")
        try:
            r = self.sub.wait("/at", 1, timeout=30)[0]
        except AssertionError as e:
            raise AssertionError("%s; tick due at %s; the daemon's log:\n%s"
                                 % (e, at.isoformat(), self.dmn.log()[-3000:]))
        t = ce_time(r)
        # never early; late only by the jitter and a loaded machine, never by a zone's offset
        self.assertGreaterEqual(t, at.timestamp(), r.ce("time"))
        self.assertLess(t, at.timestamp() + 5, r.ce("time"))
        self.assertEqual(len(self.sub.got("/at")), 1)

    def test_seconds_in_the_schedule(self):
        # SendsEventsWithSecondsInSchedule's form ("10 0/1 * * * ?"), at a second a few ahead
        self.fires_at(lambda at: "schedule: '%d 0/1 * * * ?'\nsink:\n  uri: %%(sink)s" % at.second)

    def test_timezone_field_in_a_half_hour_zone(self):
        def make(at):
            loc = at.astimezone(ZoneInfo("Asia/Kolkata"))  # UTC+05:30
            return ("schedule: '%d %d %d %d %d *'\ntimezone: Asia/Kolkata\nsink:\n"
                    "  uri: %%(sink)s" % (loc.second, loc.minute, loc.hour, loc.day, loc.month))
        self.fires_at(make)

    def test_cron_tz_prefix(self):
        def make(at):
            loc = at.astimezone(ZoneInfo("America/New_York"))
            return ("schedule: 'CRON_TZ=America/New_York %d %d %d * * *'\nsink:\n"
                    "  uri: %%(sink)s" % (loc.second, loc.minute, loc.hour))
        self.fires_at(make)


class PingSourceRetries(unittest.TestCase):
    """The adapter's rule: 6 attempts 100 ms doubling for 404/413/425/429/502/503/504, with the
    same id; 500 and other statuses are final; no dead-letter sink."""

    def test_503_is_retried_five_times_with_the_same_id_and_500_not_at_all(self):
        sub = Subscriber()
        sub.responses["/busy"] = [(503, {}, b"busy")]
        sub.responses["/broken"] = [(500, {}, b"broken")]
        yaml = (ping_yaml("busy", "schedule: '* * * * * *'\nsink:\n  uri: %s/busy" % sub.url)
                + ping_yaml("broken", "schedule: '* * * * * *'\nsink:\n  uri: %s/broken" % sub.url))
        dmn = Daemon(yaml, log_level="info")
        try:
            first = sub.wait("/busy", 1, timeout=30)[0].ce("id")
            wait_for(lambda: len([r for r in sub.got("/busy") if r.ce("id") == first]) >= 6,
                     timeout=30, what="6 attempts of %s" % first)
            broken = sub.wait("/broken", 3, timeout=30)
        finally:
            dmn.stop()
            sub.close()
        attempts = [r for r in sub.got("/busy") if r.ce("id") == first]
        self.assertEqual(len(attempts), 6)
        gaps = [b.time - a.time for a, b in zip(attempts, attempts[1:])]
        for gap, want in zip(gaps, (0.1, 0.2, 0.4, 0.8, 1.6)):
            self.assertGreaterEqual(gap, want * 0.9)
        ids = [r.ce("id") for r in sub.got("/broken")]
        self.assertEqual(len(ids), len(set(ids)), "a 500 was retried")
        self.assertGreaterEqual(len(broken), 3)


class PingSourceValidation(unittest.TestCase):
    """Every error at its field, file:line:col, all in one run."""

    def validate(self, spec):
        path = yaml_file(self, ping_yaml("bad", spec + "\nsink:\n  uri: http://127.0.0.1:9/"))
        rc, out, err = run_cli("validate", "-f", path)
        self.assertNotEqual(rc, 0, out + err)
        return path, out + err

    def test_each_bad_field_is_reported_where_it_is(self):
        cases = [
            ("schedule: '@every 1m'", 7, "spec.schedule", "@every"),
            ("schedule: '* * * * * * *'", 7, "spec.schedule", "expected 5 to 6 fields, found 7"),
            ("schedule: '* * * * 7'", 7, "spec.schedule", "above maximum (6)"),
            ("schedule: 'TZ=Nowhere/Land * * * * *'", 7, "spec.schedule", "Nowhere/Land"),
            ("timezone: Mars/Olympus", 7, "spec.timezone", "Mars/Olympus"),
            ("schedule: 'CRON_TZ=UTC * * * * *'\ntimezone: Europe/Paris", 7, "spec.schedule",
             "spec.timezone is set too"),
            ("data: x\ndataBase64: eA==", 8, "spec.dataBase64", "got both"),
            ("dataBase64: '***'", 7, "spec.dataBase64", "base64"),
            ("contentType: application/json\ndata: '[1, 2]'", 8, "spec.data", "JSON object"),
            ("contentType: application/json\ndataBase64: '%s'"
             % base64.b64encode(b"42").decode(), 8, "spec.dataBase64", "JSON object"),
            ("ceOverrides:\n  extensions:\n    type: x", 9, "spec.ceOverrides.extensions", "type"),
            ("ceOverrides:\n  extensions:\n    Bad-Key: x", 9, "spec.ceOverrides.extensions", "Bad-Key"),
        ]
        for spec, line, field, why in cases:
            with self.subTest(spec=spec):
                path, out = self.validate(spec)
                m = re.search(r"%s:(\d+):\d+: PingSource default/bad: %s[^:]*: .*%s"
                              % (re.escape(path), re.escape(field), re.escape(why)), out)
                self.assertTrue(m, out)
                self.assertEqual(int(m.group(1)), line, out)

    def test_a_sink_is_required_and_good_sources_validate(self):
        path = yaml_file(self, ping_yaml("nosink", "schedule: '@hourly'"))
        rc, out, err = run_cli("validate", "-f", path)
        self.assertNotEqual(rc, 0)
        self.assertIn("PingSource default/nosink: spec.sink: required field missing", out + err)
        path = yaml_file(self, ping_yaml("good", "schedule: '*/2 * * * *'\ntimezone: Europe/Paris\n"
                                         "contentType: application/json\ndata: '{\"a\": 1}'\n"
                                         "sink:\n  uri: http://127.0.0.1:9/"))
        rc, out, err = run_cli("validate", "-f", path)
        self.assertEqual(rc, 0, out + err)


if __name__ == "__main__":
    main()
