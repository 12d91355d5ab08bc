#!/usr/bin/env python3
"""ContainerSource against the real daemon: Knative's scenarios (sink ref to a Broker of this daemon,
sink URI, ceOverrides applied from K_CE_OVERRIDES, args) with a program that posts to K_SINK, the
env contract (values, a Secret's key), supervision (a crashing program restarted with backoff, its output in the daemon's
log under the source's name), SIGTERM at shutdown, and no process left after a SIGKILL of the
daemon."""

import json
import os
import signal
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cebtest import Daemon, Subscriber, main, run_cli, wait_for, yaml_file  # noqa: E402

# A heartbeat in the manner of Knative's cmd/heartbeats: posts a binary-mode event to K_SINK,
# applying K_CE_OVERRIDES itself, with what it was given as data.
POSTER = r"""
import json, os, sys, urllib.request
ov = os.environ["K_CE_OVERRIDES"]
ext = json.loads(ov)["extensions"] if ov else {}
data = {k: os.environ.get(k) for k in ("K_SINK", "K_CE_OVERRIDES", "NAME", "NAMESPACE", "POD_NAME", "TOKEN")}
data["cwd"] = os.getcwd()
data["args"] = sys.argv[1:]
headers = {"ce-specversion": "1.0", "ce-id": "beat-%d" % os.getpid(), "ce-type": "dev.knative.eventing.samples.heartbeat",
           "ce-source": "https://knative.dev/eventing/cmd/heartbeats/#%s/%s" % (os.environ["NAMESPACE"], os.environ["NAME"]),
           "content-type": "application/json"}
headers.update({"ce-" + k: v for k, v in ext.items()})
req = urllib.request.Request(os.environ["K_SINK"], json.dumps(data).encode(), headers, method="POST")
print("posted:", urllib.request.urlopen(req).status, flush=True)
import time; time.sleep(3600)
"""


def container_yaml(name, sink, command, args=None, env=None, namespace="default", overrides=None,
                   workdir=None):
    """env: name -> a value, or a dict (a valueFrom)."""
    c = {"name": "main", "image": "gcr.io/knative-releases/heartbeats", "command": command}
    if args:
        c["args"] = args
    if env:
        c["env"] = [{"name": k, "valueFrom": v} if isinstance(v, dict) else {"name": k, "value": v}
                    for k, v in env.items()]
    if workdir:
        c["workingDir"] = workdir
    spec = {"sink": sink, "template": {"spec": {"containers": [c]}}}
    if overrides:
        spec["ceOverrides"] = {"extensions": overrides}
    doc = {"apiVersion": "sources.knative.dev/v1", "kind": "ContainerSource",
           "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    return json.dumps(doc) + "\n---\n"  # JSON is YAML


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class ContainerSourceScenarios(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        cls.tmp = tempfile.mkdtemp(prefix="cebtest-container-")
        broker = ("apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata:\n  name: default\n"
                  "  namespace: beats\n---\n"
                  "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: all\n"
                  "  namespace: beats\nspec:\n  broker: default\n  subscriber:\n"
                  "    uri: %s/via-broker\n---\n" % cls.sub.url)
        cls.yaml = (
            broker
            + container_yaml("to-broker", {"ref": {"apiVersion": "eventing.knative.dev/v1",
                                                   "kind": "Broker", "name": "default"}},
                             ["python3", "-c", POSTER], args=["--period", "1"],
                             env={"POD_NAME": "heartbeats-pod"}, namespace="beats",
                             overrides={"team": "blue"}, workdir=cls.tmp)
            + "apiVersion: v1\nkind: Secret\nmetadata:\n  name: beat-token\n  namespace: default\n"
            "stringData:\n  token: s3cr3t\n---\n"
            + container_yaml("to-uri", {"uri": cls.sub.url + "/direct"}, ["python3", "-c", POSTER],
                             env={"TOKEN": {"secretKeyRef": {"name": "beat-token", "key": "token"}},
                                  "ABSENT": {"secretKeyRef": {"name": "beat-token", "key": "x",
                                                              "optional": True}}}))
        cls.dmn = Daemon(cls.yaml, log_level="info")

    @classmethod
    def tearDownClass(cls):
        cls.dmn.stop()
        cls.sub.close()
        os.rmdir(cls.tmp)

    def test_a_broker_of_this_daemon_is_k_sink_and_the_env_is_knatives(self):
        r = self.sub.wait("/via-broker", 1, timeout=30)[0]
        got = json.loads(r.body)
        self.assertEqual(got["K_SINK"], self.dmn.url + "/beats/default")
        self.assertEqual(got["K_CE_OVERRIDES"], '{"extensions":{"team":"blue"}}')
        self.assertEqual(got["NAME"], "to-broker")
        self.assertEqual(got["NAMESPACE"], "beats")
        self.assertEqual(got["POD_NAME"], "heartbeats-pod")
        self.assertEqual(got["cwd"], self.tmp)
        self.assertEqual(got["args"], ["--period", "1"])
        # the overrides, applied by the program as Knative's adapters do
        self.assertEqual(r.ce("team"), "blue")
        self.assertEqual(r.ce("type"), "dev.knative.eventing.samples.heartbeat")

    def test_a_sink_uri_is_k_sink_as_is_and_overrides_are_set_empty(self):
        r = self.sub.wait("/direct", 1, timeout=30)[0]
        got = json.loads(r.body)
        self.assertEqual(got["K_SINK"], self.sub.url + "/direct")
        self.assertEqual(got["K_CE_OVERRIDES"], "")
        self.assertIsNone(got["POD_NAME"])  # nothing of the daemon's own environment but basics
        self.assertEqual(got["TOKEN"], "s3cr3t")  # env[].valueFrom.secretKeyRef

    def test_output_lines_are_in_the_daemons_log_under_the_source(self):
        wait_for(lambda: "[containersource beats/to-broker] main: posted: 202" in self.dmn.log(),
                 timeout=30, what="the program's output in the log")


class ContainerSourceSupervision(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cebtest-container-")

    def tearDown(self):
        for f in os.listdir(self.tmp):
            os.unlink(os.path.join(self.tmp, f))
        os.rmdir(self.tmp)

    def test_a_crashing_program_is_restarted_with_backoff(self):
        dmn = Daemon(container_yaml("crashy", {"uri": "http://127.0.0.1:9/"},
                                    ["sh", "-c", "echo run $$ >> runs; echo crashing; exit 3"],
                                    workdir=self.tmp), log_level="info")
        try:
            wait_for(lambda: dmn.log().count("exited with status 3") >= 3, timeout=30,
                     what="three crashes")
        finally:
            dmn.stop()
        log = dmn.log()
        self.assertIn("[containersource default/crashy] main: crashing", log)
        self.assertIn("exited with status 3; restarting in 500 ms", log)
        self.assertIn("exited with status 3; restarting in 1000 ms", log)
        self.assertIn("exited with status 3; restarting in 2000 ms", log)
        with open(os.path.join(self.tmp, "runs")) as f:
            self.assertGreaterEqual(len(f.read().splitlines()), 3)

    def test_shutdown_sends_sigterm_and_the_daemon_exits_cleanly(self):
        script = ("trap 'echo got TERM > term; exit 0' TERM; echo ready > ready; "
                  "while :; do sleep 0.1; done")
        dmn = Daemon(container_yaml("graceful", {"uri": "http://127.0.0.1:9/"}, ["sh", "-c", script],
                                    workdir=self.tmp), log_level="info")
        wait_for(lambda: os.path.exists(os.path.join(self.tmp, "ready")), timeout=30,
                 what="the program to start")
        self.assertEqual(dmn.stop(), 0)
        with open(os.path.join(self.tmp, "term")) as f:
            self.assertEqual(f.read(), "got TERM\n")
        self.assertIn("main: stopped (status 0)", dmn.log())

    def test_a_program_that_ignores_sigterm_is_killed_after_the_grace(self):
        doc = json.loads(container_yaml("stubborn", {"uri": "http://127.0.0.1:9/"},
                                        ["sh", "-c", "trap '' TERM; echo $$ > pid; "
                                         "while :; do sleep 0.1; done"],
                                        workdir=self.tmp).split("\n---")[0])
        doc["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
        dmn = Daemon(json.dumps(doc) + "\n", log_level="info")
        wait_for(lambda: os.path.exists(os.path.join(self.tmp, "pid")), timeout=30,
                 what="the program to start")
        self.assertEqual(dmn.stop(), 0)
        self.assertIn("still running 1 s after SIGTERM: SIGKILL", dmn.log())
        with open(os.path.join(self.tmp, "pid")) as f:
            self.assertFalse(alive(int(f.read())))

    def test_nothing_outlives_a_daemon_killed_with_sigkill(self):
        # the program and a grandchild of its own (in the background), each writing its pid
        script = "echo $$ > pid; sleep 300 & echo $! > child; wait"
        dmn = Daemon(container_yaml("orphans", {"uri": "http://127.0.0.1:9/"}, ["sh", "-c", script],
                                    workdir=self.tmp), log_level="info")
        wait_for(lambda: read(os.path.join(self.tmp, "child")).strip(), timeout=30,
                 what="the program and its child")
        pids = [int(read(os.path.join(self.tmp, f))) for f in ("pid", "child")]
        self.assertTrue(all(alive(p) for p in pids))
        dmn.proc.send_signal(signal.SIGKILL)
        dmn.proc.wait(10)
        dmn.stop(check=False)
        wait_for(lambda: not any(alive(p) for p in pids), timeout=10,
                 what="the daemon's processes to die with it")


class ContainerSourceValidation(unittest.TestCase):
    def test_a_container_without_command_and_a_sinkbinding_are_errors(self):
        path = yaml_file(self, container_yaml("noc", {"uri": "http://127.0.0.1:9/"}, None)
                         .replace(', "command": null', "")
                         + "apiVersion: sources.knative.dev/v1\nkind: SinkBinding\nmetadata:\n"
                         "  name: bind\nspec:\n  subject:\n    apiVersion: apps/v1\n"
                         "    kind: Deployment\n    name: app\n  sink:\n    uri: http://x.example/\n")
        rc, out, err = run_cli("validate", "-f", path)
        self.assertNotEqual(rc, 0)
        self.assertRegex(out + err, r"ContainerSource default/noc: spec\.template\.spec\."
                         r"containers\[0\]\.command: required field missing: cebroker runs a "
                         r"container's command .* gcr\.io/knative-releases/heartbeats")
        self.assertRegex(out + err, r":\d+:\d+: SinkBinding default/bind: kind: .*ContainerSource")


if __name__ == "__main__":
    main()
