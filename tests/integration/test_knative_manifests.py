"""Manifests other people wrote (Knative's docs and repositories, tests/data/knative-manifests) through
`cebroker validate`, each with the result its `# expect` comments give: accepted, with the notes a user
sees (what was skipped, where each ref delivers), or refused with exactly the errors listed, each at
its file:line:col."""

import os
import re
import subprocess
import unittest

from cebtest import CEBROKER, Daemon, main

TOP = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(TOP, "tests", "data", "knative-manifests")
# The cluster domain is the machine's when it sits in a cluster (resolv.conf): the expectations say
# cluster.local, as $CLUSTER_DOMAIN makes it everywhere.
ENV = dict(os.environ, CLUSTER_DOMAIN="cluster.local")
LOCATED = re.compile(r"^(.+?):(\d+):(\d+): (.*)$")
EXPECT = re.compile(r"^# expect(-note)?: (ok|error (\d+):(\d+) (.*)|(\d+):(\d+) (.*))$")


def entries():
    """Each YAML file of the corpus, and each folder (validated as one directory)."""
    return sorted(e for e in os.listdir(CORPUS)
                  if e.endswith(".yaml") or os.path.isdir(os.path.join(CORPUS, e)))


def expectations(entry):
    """(errors, notes, declared): errors and notes as (file, line, col, fragment), file relative to
    the corpus; declared: how many files said anything."""
    path = os.path.join(CORPUS, entry)
    files = [entry] if os.path.isfile(path) else sorted(
        os.path.join(entry, f) for f in os.listdir(path) if f.endswith(".yaml"))
    errors, notes, declared = [], [], 0
    for f in files:
        said = False
        with open(os.path.join(CORPUS, f)) as fh:
            for line in fh:
                m = EXPECT.match(line.rstrip("\n"))
                if not m:
                    continue
                said = True
                if m.group(3):
                    errors.append((f, int(m.group(3)), int(m.group(4)), m.group(5)))
                elif m.group(6):
                    notes.append((f, int(m.group(6)), int(m.group(7)), m.group(8)))
        declared += said
    return errors, notes, declared, len(files)


def located(text):
    out = []
    for line in text.splitlines():
        m = LOCATED.match(line)
        if m:
            out.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)))
    return out


# The corpus holds Kafka Brokers, sources and sinks: its expectations are a build's with the kafka
# channel (without it, `validate` refuses them, as `run` would).
@unittest.skipIf(os.environ.get("CEB_KAFKA") == "no", "this build has no kafka channel")
class KnativeManifests(unittest.TestCase):
    def test_the_corpus_holds_manifests_of_every_kind_cebroker_claims(self):
        text = ""
        for root, _, files in os.walk(CORPUS):
            for f in files:
                if f.endswith(".yaml"):
                    with open(os.path.join(root, f)) as fh:
                        text += fh.read()
        for kind in ("Broker", "Trigger", "ConfigMap", "KafkaSource", "KafkaSink", "List"):
            self.assertRegex(text, r"(?m)^\s*-?\s*kind: %s$" % kind)
        self.assertRegex(text, r"(?m)^kind: EventPolicy$")  # sender authorization's kind
        for what in ("config-br-defaults", "config-br-default-channel", "MTChannelBasedBroker",
                     "eventing.knative.dev/broker.class: Kafka", "managedFields", "status:",
                     "kind: Namespace", "kind: Deployment", "*labels", "exact:", "prefix:",
                     "suffix:", "all:", "any:", "not:", "cesql:", "filter:", "deadLetterSink:"):
            self.assertIn(what, text)
        self.assertGreaterEqual(len(entries()), 50)

    def test_every_manifest_gets_the_result_it_expects(self):
        for entry in entries():
            with self.subTest(entry=entry):
                errors, notes, declared, nfiles = expectations(entry)
                self.assertEqual(declared, nfiles, "%s: a file without # expect comments" % entry)
                # --allow-empty: some files hold only ConfigMaps, valid but with nothing to serve
                # alone (what run and validate refuse without it is test_config_edges' to check).
                p = subprocess.run([CEBROKER, "validate", "--allow-empty", "-f", entry],
                                   cwd=CORPUS, env=ENV, capture_output=True, timeout=30)
                out, err = p.stdout.decode(), p.stderr.decode()
                if errors:
                    self.assertEqual(p.returncode, 1, out + err)
                    got = located(err)
                    for f, line, col, frag in errors:
                        hits = [g for g in got if g[:3] == (f, line, col) and frag in g[3]]
                        self.assertTrue(hits, "%s: no error %s:%d:%d: ...%s\ngot:\n%s" % (
                            entry, f, line, col, frag, err))
                    self.assertEqual(len(got), len(errors), "%s: other errors:\n%s" % (entry, err))
                    self.assertIn("%d error" % len(errors), err)
                else:
                    self.assertEqual(p.returncode, 0, err)
                    self.assertEqual(err, "")
                    self.assertRegex(out, r"(?m)^ok: \d+ broker")
                    got = located(out)
                    for f, line, col, frag in notes:
                        self.assertTrue([g for g in got if g[:3] == (f, line, col) and frag in g[3]],
                                        "%s: no note %s:%d:%d: ...%s\ngot:\n%s" % (
                                            entry, f, line, col, frag, out))
                    self.assertEqual(len(got), len(notes), "%s: other notes:\n%s" % (entry, out))

    def test_the_cluster_domain_is_the_flag_else_the_environment(self):
        entry = "docs-kafka-source.yaml"
        p = subprocess.run([CEBROKER, "validate", "-f", entry], cwd=CORPUS, capture_output=True,
                           env=dict(os.environ, CLUSTER_DOMAIN="corp.example"), timeout=30)
        self.assertIn("Service default/event-display is "
                      "http://event-display.default.svc.corp.example", p.stdout.decode())
        p = subprocess.run([CEBROKER, "validate", "--cluster-domain", "flag.example", "-f", entry],
                           cwd=CORPUS, capture_output=True,
                           env=dict(os.environ, CLUSTER_DOMAIN="corp.example"), timeout=30)
        self.assertIn("Service default/event-display is "
                      "http://event-display.default.svc.flag.example", p.stdout.decode())

    def test_run_starts_on_what_validate_accepts_and_refuses_what_it_refuses(self):
        """validate checks what run would short of reaching a server: on a refused file run exits 2
        with the same first error; an accepted memory-channel file starts."""
        for entry in ("docs-kafka-broker-auth-secret.yaml", "docs-kafka-broker-external-topic.yaml",
                      "docs-channel-based-broker-kafka-channel.yaml"):
            with self.subTest(entry=entry):
                v = subprocess.run([CEBROKER, "validate", "-f", entry], cwd=CORPUS, env=ENV,
                                   capture_output=True, timeout=30)
                r = subprocess.run([CEBROKER, "run", "-f", entry, "--listen", "127.0.0.1:0"],
                                   cwd=CORPUS, env=ENV, capture_output=True, timeout=30)
                self.assertEqual(v.returncode, 1)
                self.assertEqual(r.returncode, 2)
                self.assertEqual(v.stderr.decode().splitlines()[0],
                                 r.stderr.decode().splitlines()[0])
        with open(os.path.join(CORPUS, "docs-helloworld-go.yaml")) as f:
            d = Daemon(f.read())
        try:
            st, _, _ = d.post("/knative-samples/default", {"ce-specversion": "1.0", "ce-id": "1",
                                                            "ce-type": "t", "ce-source": "/s"})
            self.assertEqual(st, 202)
            self.assertIn("skipped Deployment knative-samples/helloworld-go (apps/v1)", d.log())
        finally:
            d.stop()


if __name__ == "__main__":
    main()
