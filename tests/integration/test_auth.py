"""Sender authentication and EventPolicy against the real daemon, with tokens signed by an independent
signer (PyJWT over the cryptography module) with keys the test makes:
- every kind of bad token is refused with 401 and WWW-Authenticate: missing, malformed, expired, not
  yet valid, wrong issuer, another Broker's audience, a wrong key, an unknown kid, alg none, HS256
  with the public key as secret; valid RS256 and ES256 tokens are accepted and delivered;
- an EventPolicy that allows one sender one event type: that type 202, another type 403, another
  sender 403; a `sub` prefix pattern; a `from.ref` to a source (Knative's OIDC subject for it); a
  `to.selector` over the Broker's labels; a Broker no policy names admits any valid token;
- /healthz and /metrics need no token; refusals counted by reason in /metrics;
- SIGHUP re-reads the JWKS (a rotated key starts working), and a broken JWKS keeps the old keys;
- EventPolicies without --auth-jwks refuse to start, with file:line:col; bad policies as
  file:line:col errors from validate."""

import base64
import hashlib
import hmac
import json
import os
import signal
import tempfile
import time
import unittest

try:
    import jwt
except ImportError:
    # python3-jwt and python3-cryptography live in the system interpreter's dist-packages, which
    # another python3 may not search (as cebtest.pika_module says)
    import sys
    sys.path.append("/usr/lib/python3/dist-packages")
    import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cebtest import Daemon, Subscriber, binary_headers, main, run_cli, wait_for, yaml_file

ISSUER = "https://issuer.example.test"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_int(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def rsa_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u_int(pub.n),
            "e": b64u_int(pub.e)}


def ec_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(pub.x.to_bytes(32, "big")),
            "y": b64u(pub.y.to_bytes(32, "big"))}


def aud(kind, name, ns="default", group="eventing.knative.dev"):
    return "%s/%s/%s/%s" % (group, kind.lower(), ns, name)


RSA1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # rotated in by SIGHUP
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # never in the JWKS
EC1 = ec.generate_private_key(ec.SECP256R1())

POLICIES = """apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: only-a
  namespace: default
spec:
  to:
    - ref:
        apiVersion: eventing.knative.dev/v1
        kind: Broker
        name: policed
  from:
    - sub: system:serviceaccount:default:sender-a
    - sub: "system:serviceaccount:ops:*"
    - ref:
        apiVersion: sources.knative.dev/v1
        kind: PingSource
        name: my-source
  filters:
    - exact:
        type: com.example.allowed
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: by-label
spec:
  to:
    - selector:
        apiVersion: eventing.knative.dev/v1
        kind: Broker
        matchLabels:
          app: special
  from:
    - sub: system:serviceaccount:default:special-sender
---
"""


FLOWS = """apiVersion: messaging.knative.dev/v1
kind: InMemoryChannel
metadata:
  name: chan
---
apiVersion: messaging.knative.dev/v1
kind: Channel
metadata:
  name: plain
---
apiVersion: flows.knative.dev/v1
kind: Sequence
metadata:
  name: seq
spec:
  steps:
    - uri: %s
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: seq-senders
spec:
  to:
    - ref:
        apiVersion: flows.knative.dev/v1
        kind: Sequence
        name: seq
  from:
    - sub: system:serviceaccount:default:seq-sender
---
"""


WEBHOOK = """apiVersion: sources.triggermesh.io/v1alpha1
kind: WebhookSource
metadata:
  name: hook
spec:
  eventType: com.example.hook
  eventExtensionAttributes:
    from: [headers]
  sink:
    uri: %s
---
"""


# Deliveries of the daemon's own: a Trigger of "relay" forwards to the Broker "guarded", whose
# policy admits that Trigger (by Knative's identity for it) and one type; another Trigger sends to
# "policed", whose policy does not name it.
RELAY = """apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: relay
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: guarded
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: forward
spec:
  broker: relay
  filter:
    attributes:
      source: /forward
  subscriber:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: guarded}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: stray
spec:
  broker: relay
  filter:
    attributes:
      type: com.example.stray
  subscriber:
    ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: policed}
---
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata:
  name: guarded-t
spec:
  broker: guarded
  subscriber:
    uri: %s
---
apiVersion: eventing.knative.dev/v1alpha1
kind: EventPolicy
metadata:
  name: from-forward
spec:
  to:
    - ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: guarded}
  from:
    - ref: {apiVersion: eventing.knative.dev/v1, kind: Trigger, name: forward}
  filters:
    - exact: {type: com.example.allowed}
---
"""


def broker(name, labels=None):
    meta = "metadata:\n  name: %s\n  namespace: default\n" % name
    if labels:
        meta += "  labels:\n" + "".join("    %s: %s\n" % kv for kv in labels.items())
    return "apiVersion: eventing.knative.dev/v1\nkind: Broker\n%sspec: {}\n---\n" % meta


def trigger(name, brk, url):
    return ("apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata:\n  name: %s\n"
            "spec:\n  broker: %s\n  subscriber:\n    uri: %s\n---\n" % (name, brk, url))


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sub = Subscriber()
        cls.dir = tempfile.mkdtemp(prefix="cebtest-auth-")
        cls.jwks = os.path.join(cls.dir, "jwks.json")
        cls.write_jwks([rsa_jwk(RSA1, "rsa1"), ec_jwk(EC1, "ec1"),
                        {"kty": "oct", "kid": "hmac", "k": b64u(b"secret")}])
        cfg = (broker("open") + broker("policed") + broker("labelled", {"app": "special"}) +
               trigger("open-t", "open", cls.sub.at("/open")) +
               trigger("policed-t", "policed", cls.sub.at("/policed")) + POLICIES +
               FLOWS % cls.sub.at("/seq") + WEBHOOK % cls.sub.at("/hook") +
               RELAY % cls.sub.at("/guarded"))
        cls.d = Daemon(cfg, args=("--auth-jwks", cls.jwks, "--auth-issuer", ISSUER))

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.sub.close()
        for f in os.listdir(cls.dir):
            os.unlink(os.path.join(cls.dir, f))
        os.rmdir(cls.dir)

    @classmethod
    def write_jwks(cls, keys):
        tmp = cls.jwks + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"keys": keys}, f)
        os.replace(tmp, cls.jwks)

    def token(self, key=RSA1, kid="rsa1", alg="RS256", **claims):
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": aud("Broker", "open"), "sub": "system:serviceaccount:default:x",
                   "iat": now, "exp": now + 300}
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid} if kid else None)

    def send(self, path, token=None, type="com.example.test", id="1", auth=None):
        h = binary_headers(id=id, type=type)
        h["Content-Type"] = "application/json"
        if auth is not None:
            h["Authorization"] = auth
        elif token is not None:
            h["Authorization"] = "Bearer " + token
        return self.d.post(path, h, b'{"n":1}')

    def assert401(self, path, token=None, auth=None, why=None):
        st, hdrs, body = self.send(path, token, auth=auth)
        self.assertEqual(st, 401, body)
        self.assertTrue(hdrs.get("www-authenticate", "").startswith("Bearer"), hdrs)
        if why:  # the debug line, once the log reader has it
            wait_for(lambda: why in self.d.log(), 5, what="'%s' in the log" % why)
        return body

    # ---- tokens ----

    def test_a_valid_rs256_token_is_accepted_and_the_event_delivered(self):
        st, _, body = self.send("/default/open", self.token(), id="rs256-ok")
        self.assertEqual(st, 202, body)
        got = wait_for(lambda: [r for r in self.sub.got("/open") if r.ce("id") == "rs256-ok"],
                       what="the event at the subscriber")
        # the token is not forwarded to the subscriber
        self.assertTrue(all("authorization" not in r.headers for r in got))

    def test_a_valid_es256_token_is_accepted(self):
        st, _, body = self.send("/default/open", self.token(EC1, "ec1", "ES256"))
        self.assertEqual(st, 202, body)

    def test_an_audience_in_a_list_is_accepted(self):
        tok = self.token(aud=["someone-else", aud("Broker", "open")])
        self.assertEqual(self.send("/default/open", tok)[0], 202)

    def test_no_token_is_401_with_www_authenticate(self):
        st, hdrs, body = self.send("/default/open")
        self.assertEqual(st, 401)
        self.assertEqual(hdrs.get("www-authenticate"), 'Bearer realm="cebroker"')
        self.assertIn(b"bearer token is required", body)

    def test_another_scheme_is_401(self):
        self.assert401("/default/open", auth="Basic dXNlcjpwYXNz")

    def test_a_malformed_token_is_401(self):
        st, hdrs, _ = self.send("/default/open", "not-a-jwt")
        self.assertEqual(st, 401)
        self.assertIn('error="invalid_token"', hdrs.get("www-authenticate", ""))
        self.assert401("/default/open", "a.b.c")

    def test_an_expired_token_is_401(self):
        now = int(time.time())
        body = self.assert401("/default/open", self.token(exp=now - 3600, iat=now - 7200),
                              why="expired")
        self.assertIn(b"expired", body)

    def test_a_token_without_exp_is_401(self):
        self.assert401("/default/open", self.token(exp=None), why="no exp claim")

    def test_a_token_not_valid_yet_is_401(self):
        now = int(time.time())
        self.assert401("/default/open", self.token(nbf=now + 3600, exp=now + 7200),
                       why="not valid yet")

    def test_a_token_of_another_issuer_is_401(self):
        self.assert401("/default/open", self.token(iss="https://evil.example.test"),
                       why="issuer 'https://evil.example.test'")

    def test_a_token_for_another_broker_is_401(self):
        body = self.assert401("/default/open", self.token(aud=aud("Broker", "policed")),
                              why="audience is not 'eventing.knative.dev/broker/default/open'")
        self.assertIn(b"not for this address", body)

    def test_a_token_signed_by_a_wrong_key_is_401(self):
        self.assert401("/default/open", self.token(key=OTHER), why="signature does not verify")

    def test_a_token_with_an_unknown_kid_is_401(self):
        self.assert401("/default/open", self.token(kid="nobody"), why="no key with kid 'nobody'")

    def test_alg_none_is_401(self):
        now = int(time.time())
        header = b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa1"}).encode())
        payload = b64u(json.dumps({"iss": ISSUER, "aud": aud("Broker", "open"), "exp": now + 300,
                                   "sub": "x"}).encode())
        self.assert401("/default/open", "%s.%s." % (header, payload), why="algorithm 'none'")
        self.assert401("/default/open", "%s.%s.%s" % (header, payload, b64u(b"x")))

    def test_hs256_with_the_public_key_as_secret_is_401(self):
        now = int(time.time())
        pem = RSA1.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        header = b64u(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa1"}).encode())
        payload = b64u(json.dumps({"iss": ISSUER, "aud": aud("Broker", "open"), "exp": now + 300,
                                   "sub": "x"}).encode())
        signing = ("%s.%s" % (header, payload)).encode()
        sig = b64u(hmac.new(pem, signing, hashlib.sha256).digest())
        self.assert401("/default/open", "%s.%s" % (signing.decode(), sig), why="algorithm 'HS256'")
        # nor with the JWKS's own shared secret (an oct key is never used)
        sig = b64u(hmac.new(b"secret", signing, hashlib.sha256).digest())
        header = b64u(json.dumps({"alg": "HS256", "kid": "hmac"}).encode())
        self.assert401("/default/open", "%s.%s.%s" % (header, payload, sig))

    def test_an_rs256_token_naming_an_ec_key_is_401(self):
        self.assert401("/default/open", self.token(RSA1, "ec1", "RS256"),
                       why="does not fit key 'ec1'")

    def test_health_and_metrics_need_no_token(self):
        for path in ("/healthz", "/readyz", "/metrics"):
            st, _, _ = self.d.post(path, {}, b"", "GET")
            self.assertEqual(st, 200, path)

    def test_refusals_are_counted_by_reason(self):
        self.send("/default/open")
        self.send("/default/open", self.token(kid="nobody"))
        m = self.d.metrics()
        self.assertGreaterEqual(m['cebroker_auth_rejected_total{reason="missing"}'], 1)
        self.assertGreaterEqual(m['cebroker_auth_rejected_total{reason="unknown_key"}'], 1)
        self.assertIn('cebroker_auth_rejected_total{reason="forbidden"}', m)

    # ---- EventPolicy ----

    def policed(self, sub, type, id="p"):
        return self.send("/default/policed", self.token(aud=aud("Broker", "policed"), sub=sub),
                         type=type, id=id)

    def test_a_policy_admits_its_sender_with_its_type(self):
        st, _, body = self.policed("system:serviceaccount:default:sender-a", "com.example.allowed",
                                   id="policed-ok")
        self.assertEqual(st, 202, body)
        wait_for(lambda: [r for r in self.sub.got("/policed") if r.ce("id") == "policed-ok"],
                 what="the event at the subscriber")

    def test_a_policy_refuses_another_type_from_its_sender(self):
        st, _, body = self.policed("system:serviceaccount:default:sender-a", "com.example.other",
                                   id="policed-type")
        self.assertEqual(st, 403, body)
        self.assertIn(b"no EventPolicy", body)
        wait_for(lambda: "passes the filters of no EventPolicy" in self.d.log(), 5,
                 what="the reason in the log")

    def test_a_policy_refuses_another_sender(self):
        st, _, body = self.policed("system:serviceaccount:default:sender-b", "com.example.allowed")
        self.assertEqual(st, 403, body)
        wait_for(lambda: "'system:serviceaccount:default:sender-b' is in none" in self.d.log(), 5,
                 what="the reason in the log")

    def test_a_sub_prefix_pattern_admits_the_namespace(self):
        st, _, body = self.policed("system:serviceaccount:ops:anyone", "com.example.allowed")
        self.assertEqual(st, 202, body)
        st, _, _ = self.policed("system:serviceaccount:opsx:anyone", "com.example.allowed")
        self.assertEqual(st, 403)

    def test_a_from_ref_stands_for_knatives_oidc_subject_of_the_source(self):
        sub = "system:serviceaccount:default:my-source-oidc-sources.knative.dev-pingsource"
        st, _, body = self.policed(sub, "com.example.allowed")
        self.assertEqual(st, 202, body)

    def test_a_selector_applies_a_policy_by_the_brokers_labels(self):
        tok = lambda sub: self.token(aud=aud("Broker", "labelled"), sub=sub)
        self.assertEqual(self.send("/default/labelled",
                                   tok("system:serviceaccount:default:special-sender"))[0], 202)
        self.assertEqual(self.send("/default/labelled", tok("system:serviceaccount:default:x"))[0],
                         403)

    def test_channels_take_knatives_channel_audiences(self):
        imc = aud("InMemoryChannel", "chan", group="messaging.knative.dev")
        self.assertEqual(self.send("/default/chan", self.token(aud=imc))[0], 202)
        self.assertEqual(self.send("/default/chan", self.token(aud=aud("Broker", "chan")))[0], 401)
        # a Channel's address is its backing channel's, and so is its audience
        backing = aud("InMemoryChannel", "plain", group="messaging.knative.dev")
        self.assertEqual(self.send("/default/plain", self.token(aud=backing))[0], 202)

    def test_a_policy_to_a_sequence_guards_its_address(self):
        first = aud("InMemoryChannel", "seq-kn-sequence-0", group="messaging.knative.dev")
        ok = self.token(aud=first, sub="system:serviceaccount:default:seq-sender")
        self.assertEqual(self.send("/default/seq", ok, id="seq-ok")[0], 202)
        wait_for(lambda: [r for r in self.sub.got("/seq") if r.ce("id") == "seq-ok"],
                 what="the event at the step")
        other = self.token(aud=first, sub="system:serviceaccount:default:x")
        self.assertEqual(self.send("/default/seq", other)[0], 403)

    def test_a_webhook_source_takes_a_token_for_its_own_audience(self):
        hook = aud("WebhookSource", "hook", group="sources.triggermesh.io")
        st, hdrs, _ = self.d.post("/default/hook", {"Content-Type": "application/json"}, b"{}")
        self.assertEqual(st, 401)
        self.assertIn("www-authenticate", hdrs)
        tok = self.token(aud=hook)
        st, _, body = self.d.post("/default/hook", {"Content-Type": "application/json",
                                                    "Authorization": "Bearer " + tok,
                                                    "X-Marker": "hook-ok"}, b"{}")
        self.assertEqual(st, 202, body)
        got = wait_for(lambda: [r for r in self.sub.got("/hook")
                                if "hook-ok" in json.dumps(r.headers)], what="the webhook's event")
        # its headers become extensions, the token never
        self.assertNotIn(tok, json.dumps(got[0].headers))

    def relay(self, type, id):
        h = binary_headers(id=id, type=type, source="/forward")
        h["Authorization"] = "Bearer " + self.token(aud=aud("Broker", "relay"))
        return self.d.post("/default/relay", h, b"")[0]

    def test_a_trigger_delivering_to_a_broker_here_is_judged_by_its_knative_identity(self):
        self.assertEqual(self.relay("com.example.allowed", "fw-ok"), 202)
        wait_for(lambda: [r for r in self.sub.got("/guarded") if r.ce("id") == "fw-ok"],
                 what="the forwarded event")
        # another type: the policy's filters refuse the Trigger's delivery
        self.assertEqual(self.relay("com.example.other", "fw-no"), 202)
        wait_for(lambda: "event fw-no of type com.example.other from 'system:serviceaccount:"
                         "default:forward-oidc-eventing.knative.dev-trigger'" in self.d.log(), 10,
                 what="the refusal of the forwarded event")
        self.assertFalse([r for r in self.sub.got("/guarded") if r.ce("id") == "fw-no"])

    def test_a_trigger_no_policy_names_is_refused(self):
        h = binary_headers(id="stray-1", type="com.example.stray")
        h["Authorization"] = "Bearer " + self.token(aud=aud("Broker", "relay"))
        self.assertEqual(self.d.post("/default/relay", h, b"")[0], 202)
        wait_for(lambda: "subject 'system:serviceaccount:default:stray-oidc-eventing.knative.dev-"
                         "trigger' is in none" in self.d.log(), 10, what="the refusal logged")

    def test_a_broker_without_policy_admits_any_valid_token(self):
        st, _, body = self.send("/default/open",
                                self.token(sub="system:serviceaccount:elsewhere:whoever"))
        self.assertEqual(st, 202, body)

    def test_a_policed_broker_still_wants_a_valid_token(self):
        st, _, _ = self.send("/default/policed")
        self.assertEqual(st, 401)

    # ---- JWKS reload ----

    def test_z_sighup_rereads_the_jwks(self):
        tok = self.token(RSA2, "rsa2")
        self.assertEqual(self.send("/default/open", tok)[0], 401)
        # a broken file keeps the old keys
        with open(self.jwks, "w") as f:
            f.write("{")
        self.d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "JWKS not reloaded" in self.d.log(), what="failed reload logged")
        self.assertEqual(self.send("/default/open", self.token())[0], 202)
        self.write_jwks([rsa_jwk(RSA1, "rsa1"), rsa_jwk(RSA2, "rsa2"), ec_jwk(EC1, "ec1")])
        self.d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "JWKS reloaded" in self.d.log(), what="reload logged")
        self.assertEqual(self.send("/default/open", tok)[0], 202)
        old = self.token()
        self.assertEqual(self.send("/default/open", old)[0], 202)
        self.assertEqual(self.send("/default/open", old)[0], 202)  # verified once, remembered
        # a key rotated out: what it signed is refused at once, remembered or not
        self.write_jwks([rsa_jwk(RSA2, "rsa2")])
        self.d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "JWKS reloaded from %s: 1 key\n" % self.jwks in self.d.log(),
                 what="second reload logged")
        self.assertEqual(self.send("/default/open", old)[0], 401)
        self.assertEqual(self.send("/default/open", tok)[0], 202)


class AuthAcrossReloads(unittest.TestCase):
    """A configuration reload (SIGHUP) with sender authentication on: a Broker it adds needs a
    token from its first request, an EventPolicy it adds to a Broker that keeps running is enforced
    at once, one it removes stops refusing; without --auth-jwks, a reload that adds a policy fails
    and the running configuration stays."""

    def reload(self, d, text, result="success"):
        key = 'cebroker_reload_total{result="%s"}' % result
        before = d.metrics().get(key, 0)
        tmp = d.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, d.config)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: d.metrics().get(key, 0) > before, 20, what="a reload counted as " + result)

    def post(self, d, path, key=RSA1, kid="rsa1", type="com.example.test", **claims):
        now = int(time.time())
        payload = {"iss": ISSUER, "aud": aud("Broker", path.split("/")[2]),
                   "sub": "system:serviceaccount:default:x", "iat": now, "exp": now + 300}
        payload.update(claims)
        h = binary_headers(id="r%d" % time.monotonic_ns(), type=type)
        h["Content-Type"] = "application/json"
        if key is not None:
            h["Authorization"] = "Bearer " + jwt.encode(payload, key, algorithm="RS256",
                                                        headers={"kid": kid})
        return d.post(path, h, b'{"n":1}')[0]

    def test_added_brokers_and_policies_are_guarded_from_the_first_request(self):
        sub = Subscriber()
        tmp = tempfile.mkdtemp(prefix="cebtest-auth-")
        jwks = os.path.join(tmp, "jwks.json")
        with open(jwks, "w") as f:
            json.dump({"keys": [rsa_jwk(RSA1, "rsa1")]}, f)
        base = broker("a") + trigger("a-t", "a", sub.at("/a"))
        d = Daemon(base, args=("--auth-jwks", jwks, "--auth-issuer", ISSUER))
        try:
            self.assertEqual(self.post(d, "/default/a", key=None), 401)
            self.assertEqual(self.post(d, "/default/a"), 202)
            policy = ("apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\n"
                      "metadata:\n  name: only-y\nspec:\n  to:\n    - ref:\n"
                      "        apiVersion: eventing.knative.dev/v1\n        kind: Broker\n"
                      "        name: a\n  from:\n    - sub: system:serviceaccount:default:y\n"
                      "---\n")
            self.reload(d, base + broker("b") + trigger("b-t", "b", sub.at("/b")) + policy)
            # the new Broker: a token from the first request, for its own audience
            self.assertEqual(self.post(d, "/default/b", key=None), 401)
            self.assertEqual(self.post(d, "/default/b", aud=aud("Broker", "a")), 401)
            self.assertEqual(self.post(d, "/default/b"), 202)
            # the kept Broker: the policy holds at once
            self.assertEqual(self.post(d, "/default/a"), 403)
            self.assertEqual(self.post(d, "/default/a", sub="system:serviceaccount:default:y"),
                             202)
            # the policy removed: any valid token again
            self.reload(d, base + broker("b") + trigger("b-t", "b", sub.at("/b")))
            self.assertEqual(self.post(d, "/default/a"), 202)
            self.assertEqual(self.post(d, "/default/b", key=None), 401)
        finally:
            d.stop()
            sub.close()
            os.unlink(jwks)
            os.rmdir(tmp)

    def test_without_auth_a_reload_that_adds_a_policy_fails_and_keeps_serving(self):
        sub = Subscriber()
        base = broker("a") + trigger("a-t", "a", sub.at("/a"))
        d = Daemon(base)
        try:
            self.reload(d, base + POLICIES, result="failure")
            wait_for(lambda: "EventPolicies need sender authentication" in d.log(),
                     what="the reason logged")
            self.assertEqual(self.post(d, "/default/a", key=None), 202)
        finally:
            d.stop()
            sub.close()


class DefaultModes(unittest.TestCase):
    """--auth-default-mode: what an address no EventPolicy applies to admits (Knative's
    default-authorization-mode)."""

    def start(self, mode):
        d = tempfile.mkdtemp(prefix="cebtest-auth-")
        jwks = os.path.join(d, "jwks.json")
        with open(jwks, "w") as f:
            json.dump({"keys": [rsa_jwk(RSA1, "rsa1")]}, f)
        self.addCleanup(lambda: (os.unlink(jwks), os.rmdir(d)))
        daemon = Daemon(broker("open") + broker("policed") + POLICIES,
                        args=("--auth-jwks", jwks, "--auth-issuer", ISSUER,
                              "--auth-default-mode", mode))
        self.addCleanup(daemon.stop)
        return daemon

    def send(self, d, brk, sub, type="com.example.allowed"):
        now = int(time.time())
        tok = jwt.encode({"iss": ISSUER, "aud": aud("Broker", brk), "sub": sub, "exp": now + 60},
                         RSA1, algorithm="RS256", headers={"kid": "rsa1"})
        h = binary_headers(type=type)
        h["Authorization"] = "Bearer " + tok
        return d.post("/default/" + brk, h, b"")[0]

    def test_deny_all_refuses_where_no_policy_applies(self):
        d = self.start("deny-all")
        self.assertEqual(self.send(d, "open", "system:serviceaccount:default:x"), 403)
        self.assertEqual(self.send(d, "policed", "system:serviceaccount:default:sender-a"), 202)

    def test_allow_same_namespace_admits_the_addresss_namespace_only(self):
        d = self.start("allow-same-namespace")
        self.assertEqual(self.send(d, "open", "system:serviceaccount:default:x"), 202)
        self.assertEqual(self.send(d, "open", "system:serviceaccount:other:x"), 403)
        wait_for(lambda: "is not of namespace default" in d.log(), 5, what="the reason logged")


class Config(unittest.TestCase):
    def test_policies_without_auth_jwks_refuse_to_start_with_their_place(self):
        path = yaml_file(self, broker("default") + POLICIES)
        rc, _, err = run_cli("run", "-f", path, "--listen", "127.0.0.1:0")
        self.assertEqual(rc, 2)
        self.assertRegex(err, r"%s:8:1: EventPolicy default/only-a: EventPolicies need sender "
                              r"authentication" % path)

    def test_a_default_mode_is_one_of_knatives_and_needs_auth(self):
        path = yaml_file(self, broker("default"))
        rc, _, err = run_cli("run", "-f", path, "--auth-default-mode", "allow-same-namespace")
        self.assertEqual(rc, 2)
        self.assertIn("needs --auth-jwks", err)
        rc, _, err = run_cli("run", "-f", path, "--auth-default-mode", "allow-some")
        self.assertEqual(rc, 2)
        self.assertIn("allow-all, allow-same-namespace or deny-all", err)

    def test_validate_notes_policies_and_checks_the_jwks_it_is_given(self):
        path = yaml_file(self, broker("default") + POLICIES)
        rc, out, err = run_cli("validate", "-f", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("%s:8:1: EventPolicy default/only-a: enforced only by a run with "
                      "--auth-jwks" % path, out)
        jwks = yaml_file(self, json.dumps({"keys": [rsa_jwk(RSA1, "rsa1")]}))
        rc, out, err = run_cli("validate", "-f", path, "--auth-jwks", jwks, "--auth-issuer",
                               ISSUER)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("enforced only", out)
        rc, _, err = run_cli("validate", "-f", path, "--auth-jwks", path, "--auth-issuer", ISSUER)
        self.assertEqual(rc, 1)
        self.assertIn("not a JSON object", err)

    def test_auth_jwks_needs_an_issuer(self):
        path = yaml_file(self, broker("default"))
        rc, _, err = run_cli("run", "-f", path, "--auth-jwks", path)
        self.assertEqual(rc, 2)
        self.assertIn("go together", err)

    def test_a_broken_jwks_refuses_to_start(self):
        path = yaml_file(self, broker("default"))
        jwks = yaml_file(self, '{"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]}')
        rc, _, err = run_cli("run", "-f", path, "--listen", "127.0.0.1:0", "--auth-jwks", jwks,
                             "--auth-issuer", ISSUER)
        self.assertEqual(rc, 2)
        self.assertIn("keys[0] (kid 'k')", err)

    def test_bad_policies_are_errors_at_their_place(self):
        text = ("apiVersion: eventing.knative.dev/v1alpha1\nkind: EventPolicy\nmetadata:\n"
                "  name: bad\nspec:\n  to:\n    - ref:\n        kind: Broker\n        name: x\n"
                "  from:\n    - sub: \"a*b\"\n    - ref:\n        apiVersion: v1\n        kind: A\n"
                "        name: n\n      sub: both\n  filters:\n    - cesql: \"type = \"\n")
        path = yaml_file(self, broker("default") + text)
        rc, _, err = run_cli("validate", "-f", path)
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r":15:9: EventPolicy default/bad: spec\.to\[0\]\.ref: needs "
                              r"apiVersion, kind and name")
        self.assertRegex(err, r":18:12: EventPolicy default/bad: spec\.from\[0\]\.sub: '\*' is "
                              r"only allowed as suffix")
        self.assertRegex(err, r":19:7: EventPolicy default/bad: spec\.from\[1\]: give ref or sub, not "
                              r"both")
        self.assertRegex(err, r":25:14: EventPolicy default/bad: spec\.filters\[0\]\.cesql: ")


if __name__ == "__main__":
    main()
